/*
 * clients.c - connections and peer credentials (clients.h).
 *
 * The peer's uid and pid come from SO_PEERCRED once, at accept: whatever a
 * client later says about itself is not believed. A peer that breaks the
 * protocol (a frame of a type its socket does not take, a descriptor it
 * was not asked for, a malformed frame) is disconnected, and its open
 * transactions are removed. Never blocks: replies are queued and flushed
 * as the socket allows.
 */
#include "clients.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "handoff.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "scheduler.h"

static struct evloop *ev;
static struct client *clients;
static uid_t smtpd_uid, deliver_uid, local_uid;

const char *client_kind_name(enum queue_listener k)
{
    return k == QL_SMTPD ? "smtpd" : k == QL_PICKUP ? "pickup" : k == QL_DELIVER ? "deliver" :
           k == QL_LOCAL ? "local" : "control";
}

static void update_events(struct client *c)
{
    /* a listing in progress is pumped on writability, even once its
     * queued output is gone (clients_flush may have written it all) */
    uint32_t events = EPOLLIN | (ipc_conn_want_write(&c->conn) || c->listing ? EPOLLOUT : 0);

    if (events != c->events && ev_mod(ev, c->conn.fd, events) == 0)
        c->events = events;
}

static void client_free(struct client *c)
{
    /* Whatever it opened and never committed is not mail anyone accepted. */
    handoff_forget_all(c);
    if (c->kind == QL_CONTROL)
        control_gone(c);
    if (c->kind == QL_DELIVER || c->kind == QL_LOCAL)
        scheduler_deliver_gone(c);
    if (c->conn.fd >= 0)
        ev_del(ev, c->conn.fd);
    ipc_conn_close(&c->conn);
    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

void client_close(struct client *c, const char *why)
{
    if (why)
        log_warning("%s client pid %ld: %s; disconnecting", client_kind_name(c->kind),
                    (long)c->pid, why);
    c->dead = 1;
    c->listing = 0;
    if (c->conn.fd >= 0) {
        ev_del(ev, c->conn.fd);
        close(c->conn.fd);
        c->conn.fd = -1;
    }
    if (!c->pending)
        client_free(c);
}

void client_release(struct client *c)
{
    c->pending--;
    if (c->dead && !c->pending)
        client_free(c);
}

int client_send(struct client *c, struct ipc_out *m, int fd)
{
    int r = -1;

    if (!c->dead && ipc_out_finish(m) == 0)
        r = ipc_conn_send(&c->conn, m, fd);
    ipc_out_free(m);
    return r;
}

void client_error(struct client *c, uint32_t reqid, const char *code, const char *text)
{
    struct ipc_out m;

    ipc_out_begin(&m, Q_ERROR, reqid);
    ipc_out_str(&m, T_CODE, code);
    ipc_out_str(&m, T_TEXT, text);
    client_send(c, &m, -1);
}

void clients_flush(void)
{
    for (struct client *c = clients, *cn; c; c = cn) {
        cn = c->next;
        if (c->dead || !ipc_conn_want_write(&c->conn))
            continue;
        if (ipc_conn_flush(&c->conn) < 0) {
            client_close(c, NULL);
            continue;
        }
        /* a listing waits for its output to drain: if this flush drained
         * it, no EPOLLOUT will come to pump the rest (mailq would wait) */
        if (c->listing) {
            control_pump(c);
            if (ipc_conn_flush(&c->conn) < 0) {
                client_close(c, NULL);
                continue;
            }
        }
        update_events(c);
    }
}

static void client_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct client *c = arg;
    struct ipc_msg m;
    int r = 0;

    (void)loop;
    (void)fd;
    /* Hold c while its frames are handled: a handler may close it. */
    c->pending++;
    if (events & EPOLLIN) {
        if (ipc_conn_read(&c->conn) < 0) {
            client_close(c, NULL);
            goto out;
        }
        while (!c->dead && (r = ipc_conn_next(&c->conn, &m)) == 1) {
            if (m.fd >= 0) {
                /* No frame of a client carries a descriptor. */
                close(m.fd);
                client_close(c, "unexpected descriptor");
                goto out;
            }
            if (c->kind == QL_CONTROL)
                control_frame(c, &m);
            else if (c->kind == QL_DELIVER || c->kind == QL_LOCAL)
                scheduler_deliver_frame(c, &m);
            else
                handoff_frame(c, &m);
        }
        if (c->dead)
            goto out;
        if (r < 0) {
            client_close(c, "malformed frame");
            goto out;
        }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        client_close(c, NULL);
        goto out;
    }
    if (c->listing)
        control_pump(c);
    if (ipc_conn_flush(&c->conn) < 0) {
        client_close(c, NULL);
        goto out;
    }
    if (c->listing)
        control_pump(c);
    update_events(c);
out:
    client_release(c);
}

static void accept_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    enum queue_listener kind = (enum queue_listener)(long)arg;

    (void)events;
    for (;;) {
        struct client *c;
        uid_t uid;
        pid_t pid;
        int cfd = net_accept_peer(fd, &uid, &pid);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warning("accept on %s socket: %s", client_kind_name(kind), strerror(errno));
            return;
        }
        /* Only smtpd may hand off network mail on the smtpd socket. */
        if (kind == QL_SMTPD && uid != smtpd_uid && uid != 0 && uid != getuid()) {
            log_warning("smtpd socket: refused connection from uid %lu pid %ld",
                        (unsigned long)uid, (long)pid);
            close(cfd);
            continue;
        }
        /* Only deliver may take jobs (and queue file descriptors). */
        if (kind == QL_DELIVER && uid != deliver_uid) {
            log_warning("deliver socket: refused connection from uid %lu pid %ld",
                        (unsigned long)uid, (long)pid);
            close(cfd);
            continue;
        }
        /* the local role connects as root, before it chroots into mailbox_dir */
        if (kind == QL_LOCAL && uid != local_uid && uid != 0) {
            log_warning("local socket: refused connection from uid %lu pid %ld",
                        (unsigned long)uid, (long)pid);
            close(cfd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->kind = kind;
        c->uid = uid;
        c->pid = pid;
        c->events = EPOLLIN;
        if (ipc_conn_watch(&c->conn, cfd, proto_limit, loop, client_cb, c) < 0) {
            free(c);
            continue;
        }
        c->next = clients;
        if (clients)
            clients->prev = c;
        clients = c;
    }
}

int clients_listen(struct evloop *loop, enum queue_listener kind, const char *path,
                   uid_t peer_uid, char *err, size_t errlen)
{
    int fd;

    ev = loop;
    if (kind == QL_DELIVER)
        deliver_uid = peer_uid;
    else if (kind == QL_SMTPD)
        smtpd_uid = peer_uid;
    else if (kind == QL_LOCAL)
        local_uid = peer_uid;
    /* Anyone may connect; SO_PEERCRED decides what each peer may do. */
    fd = net_listen_unix(path, 0666, err, errlen);
    if (fd < 0)
        return -1;
    if (ev_add(loop, fd, EPOLLIN, accept_cb, (void *)(long)kind) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void clients_close_all(void)
{
    while (clients) {
        struct client *c = clients;
        if (c->conn.fd >= 0)
            ipc_conn_flush(&c->conn);
        c->pending = 0;
        client_free(c);
    }
}
