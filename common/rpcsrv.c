/*
 * rpcsrv.c - the request server of auth, the quota server and the resolver
 * (rpcsrv.h).
 *
 * Everything a client sends is untrusted: a descriptor is closed and the
 * client cut off, a frame of a type the server does not take or one that
 * breaks the framing cuts it off, and a client that does not read its
 * answers is cut off past out_max. Must never block the loop (every socket
 * is non-blocking), never hand a frame of a closed client to on_frame, and
 * never free a client while on_frame runs on it (closing then only marks
 * it; the memory goes when the frame loop is done).
 */
#include "rpcsrv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proto.h"
#include "util.h"

struct rpc_client {
    struct rpcsrv *srv;
    struct ipc_conn conn;
    uint64_t id;
    uid_t uid;
    pid_t pid;
    uint32_t events;
    unsigned pending;           /* rpcsrv_later() not settled */
    int busy;                   /* on_frame runs on it: closing is deferred */
    int dead;                   /* closed, freed when no longer busy */
    struct rpc_client *prev, *next;
};

struct rpcsrv {
    struct evloop *ev;
    struct rpcsrv_conf conf;
    uint16_t types[16];
    uid_t allowed[RPCSRV_UIDS_MAX];
    int lfd[RPCSRV_LISTEN_MAX];
    size_t nlisten;
    struct rpc_client *clients;
    unsigned nclients;
    uint64_t next_id;
};

struct rpcsrv *rpcsrv_new(struct evloop *ev, const struct rpcsrv_conf *conf)
{
    struct rpcsrv *s;

    if (conf->ntypes > ARRAY_LEN(s->types)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s))))
        return NULL;
    s->ev = ev;
    s->conf = *conf;
    if (conf->ntypes)
        memcpy(s->types, conf->types, conf->ntypes * sizeof(*s->types));
    s->conf.types = s->types;
    s->conf.nallowed = 0;
    for (size_t i = 0; i < conf->nallowed && i < ARRAY_LEN(s->allowed); i++)
        s->allowed[s->conf.nallowed++] = conf->allowed[i];
    s->conf.allowed = s->allowed;
    if (!s->conf.limit)
        s->conf.limit = proto_limit;
    s->next_id = 1;
    return s;
}

static void client_update(struct rpc_client *c)
{
    uint32_t e = EPOLLIN | (ipc_conn_want_write(&c->conn) ? EPOLLOUT : 0);

    if (e != c->events && ev_mod(c->srv->ev, c->conn.fd, e) == 0)
        c->events = e;
}

void rpcsrv_close(struct rpc_client *c, const char *why)
{
    struct rpcsrv *s = c->srv;

    if (c->dead)
        return;
    if (why)
        log_warning("%s uid %lu pid %ld: %s; disconnecting", s->conf.peer, (unsigned long)c->uid, (long)c->pid,
                    why);
    ev_del(s->ev, c->conn.fd);
    ipc_conn_close(&c->conn);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclients--;
    c->dead = 1;
    if (!c->busy)
        free(c);
}

int rpcsrv_send(struct rpc_client *c, const struct ipc_out *m)
{
    size_t max = c->srv->conf.out_max;

    if (c->dead || ipc_conn_send(&c->conn, m, -1) < 0)
        return -1;
    if ((!c->busy || (max && c->conn.out.len > max)) && ipc_conn_flush(&c->conn) < 0) {
        rpcsrv_close(c, NULL);
        return 0;
    }
    if (max && c->conn.out.len > max) {
        rpcsrv_close(c, "does not read its answers");
        return 0;
    }
    if (!c->busy)
        client_update(c);
    return 0;
}

static int type_taken(const struct rpcsrv *s, uint16_t type)
{
    if (s->conf.ntypes == 0)
        return 1;
    for (size_t i = 0; i < s->conf.ntypes; i++)
        if (s->types[i] == type)
            return 1;
    return 0;
}

/* The frames at hand, each validated and handed over; -1 when c was closed. */
static int client_frames(struct rpc_client *c)
{
    struct rpcsrv *s = c->srv;
    struct ipc_msg m;
    int r = 0;

    c->busy = 1;
    while (!c->dead && (r = ipc_conn_next(&c->conn, &m)) == 1) {
        if (m.fd >= 0) {
            close(m.fd);
            rpcsrv_close(c, "unexpected descriptor");
        } else if (!type_taken(s, m.type)) {
            rpcsrv_close(c, "unexpected message type");
        } else {
            s->conf.on_frame(c, &m, s->conf.arg);
        }
    }
    c->busy = 0;
    if (c->dead) {
        free(c);
        return -1;
    }
    if (r < 0) {
        rpcsrv_close(c, "malformed frame");
        return -1;
    }
    return 0;
}

static void client_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct rpc_client *c = arg;

    (void)loop;
    (void)fd;
    if (events & EPOLLIN) {
        if (ipc_conn_read(&c->conn) < 0) {
            rpcsrv_close(c, NULL);
            return;
        }
        if (client_frames(c) < 0)
            return;
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        rpcsrv_close(c, NULL);
        return;
    }
    if (ipc_conn_flush(&c->conn) < 0) {
        rpcsrv_close(c, NULL);
        return;
    }
    client_update(c);
}

static void accept_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct rpcsrv *s = arg;
    const char *sock = s->conf.sock ? s->conf.sock : "", *colon = s->conf.sock ? ": " : "";

    (void)events;
    for (;;) {
        struct rpc_client *c;
        uid_t uid;
        pid_t pid;
        int cfd = net_accept_from(fd, s->allowed, s->conf.nallowed, &uid, &pid);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warning("%s%saccept: %s", sock, colon, strerror(errno));
            return;
        }
        if (s->conf.max_clients && s->nclients >= s->conf.max_clients) {
            log_warning("%s%s%u clients already: refusing pid %ld", sock, colon, s->nclients, (long)pid);
            close(cfd);
            continue;
        }
        if (!(c = calloc(1, sizeof(*c)))) {
            close(cfd);
            continue;
        }
        c->srv = s;
        c->uid = uid;
        c->pid = pid;
        c->id = s->next_id++;
        c->events = EPOLLIN;
        if (ipc_conn_watch(&c->conn, cfd, s->conf.limit, loop, client_cb, c) < 0) {
            free(c);
            continue;
        }
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->nclients++;
    }
}

int rpcsrv_listen(struct rpcsrv *s, int lfd)
{
    if (s->nlisten >= ARRAY_LEN(s->lfd)) {
        errno = ENOSPC;
        return -1;
    }
    if (ev_add(s->ev, lfd, EPOLLIN, accept_cb, s) < 0)
        return -1;
    s->lfd[s->nlisten++] = lfd;
    return 0;
}

void rpcsrv_close_listeners(struct rpcsrv *s)
{
    for (size_t i = 0; i < s->nlisten; i++) {
        ev_del(s->ev, s->lfd[i]);
        close(s->lfd[i]);
    }
    s->nlisten = 0;
}

void rpcsrv_free(struct rpcsrv *s)
{
    if (!s)
        return;
    rpcsrv_close_listeners(s);
    while (s->clients) {
        ipc_conn_flush(&s->clients->conn);
        rpcsrv_close(s->clients, NULL);
    }
    free(s);
}

uint64_t rpcsrv_later(struct rpc_client *c)
{
    c->pending++;
    return c->id;
}

struct rpc_client *rpcsrv_settle(struct rpcsrv *s, uint64_t id)
{
    for (struct rpc_client *c = s->clients; c; c = c->next)
        if (c->id == id) {
            if (c->pending)
                c->pending--;
            return c;
        }
    return NULL;
}

unsigned rpcsrv_pending(const struct rpc_client *c)
{
    return c->pending;
}

uid_t rpcsrv_uid(const struct rpc_client *c)
{
    return c->uid;
}

pid_t rpcsrv_pid(const struct rpc_client *c)
{
    return c->pid;
}

unsigned rpcsrv_clients(const struct rpcsrv *s)
{
    return s->nclients;
}
