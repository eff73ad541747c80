/*
 * unixpeer.c - the fake peer of the link suites (unixpeer.h). Never blocks
 * the loop: every socket is non-blocking and served by its callbacks.
 */
#include "unixpeer.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

struct evloop *unixpeer_open(struct unixpeer *p, const char *name, ipc_limit_fn limit,
                             void (*on_frame)(struct unixpeer *p, const struct ipc_msg *m))
{
    memset(p, 0, sizeof(*p));
    p->lfd = p->cfd = -1;
    p->limit = limit;
    p->on_frame = on_frame;
    str_copy(p->dir, "/tmp/postern-peer.XXXXXX", sizeof(p->dir));
    if (!mkdtemp(p->dir))
        return NULL;
    snprintf(p->path, sizeof(p->path), "%s/%s", p->dir, name);
    if (!(p->ev = ev_new()))
        rmdir(p->dir);
    return p->ev;
}

void unixpeer_close(struct unixpeer *p)
{
    if (p->cfd >= 0) {
        ev_del(p->ev, p->cfd);
        ipc_conn_close(&p->conn);
        p->cfd = -1;
    }
}

static void peer_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct unixpeer *p = arg;
    struct ipc_msg m;

    (void)loop, (void)fd, (void)events;
    if (ipc_conn_read(&p->conn) < 0) {
        unixpeer_close(p);
        return;
    }
    while (p->cfd >= 0 && ipc_conn_next(&p->conn, &m) == 1)
        p->on_frame(p, &m);
}

static void peer_accept(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct unixpeer *p = arg;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    (void)events;
    if (c < 0)
        return;
    unixpeer_close(p);
    p->cfd = c;
    ipc_conn_init(&p->conn, c, p->limit);
    ev_add(loop, c, EPOLLIN, peer_io, p);
}

void unixpeer_listen(struct unixpeer *p)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    str_copy(sa.sun_path, p->path, sizeof(sa.sun_path));
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(p->lfd >= 0);
    CU_ASSERT_FATAL(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(listen(p->lfd, 8) == 0);
    ev_add(p->ev, p->lfd, EPOLLIN, peer_accept, p);
}

void unixpeer_stop(struct unixpeer *p)
{
    unixpeer_close(p);
    if (p->lfd >= 0) {
        ev_del(p->ev, p->lfd);
        close(p->lfd);
        p->lfd = -1;
    }
    unlink(p->path);
}

void unixpeer_free(struct unixpeer *p)
{
    unixpeer_stop(p);
    rmdir(p->dir);
    ev_free(p->ev);
    p->ev = NULL;
}

void unixpeer_send(struct unixpeer *p, struct ipc_out *m)
{
    ipc_conn_send(&p->conn, m, -1);
    ipc_conn_flush(&p->conn);
}
