/*
 * link.c - a client link to another Postern process (link.h).
 *
 * Must never block: connecting is a non-blocking connect(2) to a UNIX
 * socket, which either succeeds at once or fails; writes queue in the
 * ipc_conn and go out as the socket takes them. Must never trust a reply:
 * one that matches no request drops the link.
 */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define RETRY_FIRST_MS 100      /* reconnect backoff while nobody waits */
#define RETRY_MAX_MS 2000
#define HELD_TICK_MS 50         /* retry and deadline check while requests wait */

struct req {
    uint32_t id;
    link_cb cb;                 /* NULL once cancelled */
    void *arg;
    uint64_t deadline;          /* held requests only */
    struct ipc_out frame;       /* held requests only: a copy of the frame */
    int fd;                     /* held requests only: a dup, or -1 */
    struct req *next;
};

struct rlist { struct req *head, **tail; unsigned n; };

struct link {
    struct evloop *ev;
    char name[32];
    char path[512];
    ipc_limit_fn limit;
    link_orphan_fn orphan;
    struct ipc_conn conn;
    uint32_t events;
    int up;
    unsigned generation;
    uint32_t next_id;
    uint64_t timer, backoff;
    struct rlist sent, held;
};

static void try_connect(struct link *l);

static void rl_init(struct rlist *r)
{
    r->head = NULL;
    r->tail = &r->head;
    r->n = 0;
}

static void rl_push(struct rlist *r, struct req *q)
{
    q->next = NULL;
    *r->tail = q;
    r->tail = &q->next;
    r->n++;
}

/* Unlinks the entry *pp points at. */
static struct req *rl_take(struct rlist *r, struct req **pp)
{
    struct req *q = *pp;

    *pp = q->next;
    if (!*pp)
        r->tail = pp;
    r->n--;
    return q;
}

static void req_free(struct req *q)
{
    ipc_out_free(&q->frame);
    if (q->fd >= 0)
        close(q->fd);
    free(q);
}

static void on_timer(struct evloop *ev, void *arg);

static void arm(struct link *l)
{
    uint64_t delay;

    if (l->timer || (l->up && l->held.n == 0))
        return;
    delay = l->held.n ? HELD_TICK_MS : l->backoff;
    l->timer = ev_timer(l->ev, delay, on_timer, l);
}

/* Fails every held request whose time is up. */
static void expire_held(struct link *l, uint64_t now)
{
    struct req **pp = &l->held.head, *q, *done = NULL;

    while ((q = *pp)) {
        if (q->deadline <= now) {
            rl_take(&l->held, pp);
            q->next = done;
            done = q;
        } else {
            pp = &q->next;
        }
    }
    /* Callbacks last, from a list nobody else sees: they may make new requests. */
    while ((q = done)) {
        done = q->next;
        if (q->cb)
            q->cb(q->arg, NULL);
        req_free(q);
    }
}

static void on_timer(struct evloop *ev, void *arg)
{
    struct link *l = arg;

    (void)ev;
    l->timer = 0;
    if (!l->up) {
        try_connect(l);
        if (!l->up && l->held.n == 0 && l->backoff < RETRY_MAX_MS)
            l->backoff = l->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff * 2;
    }
    expire_held(l, now_ms());
    arm(l);
}

static void link_down(struct link *l, const char *why)
{
    struct req *q, *n;

    if (l->up)
        log_warning("lost connection to %s: %s", l->name, why);
    l->up = 0;
    if (l->conn.fd >= 0)
        ev_del(l->ev, l->conn.fd);
    ipc_conn_close(&l->conn);
    q = l->sent.head;
    rl_init(&l->sent);
    for (; q; q = n) {
        n = q->next;
        if (q->cb)
            q->cb(q->arg, NULL);
        req_free(q);
    }
    arm(l);
}

static void update_events(struct link *l)
{
    uint32_t events = EPOLLIN | (ipc_conn_want_write(&l->conn) ? EPOLLOUT : 0);

    if (events != l->events && ev_mod(l->ev, l->conn.fd, events) == 0)
        l->events = events;
}

static void dispatch(struct link *l, const struct ipc_msg *m)
{
    struct req **pp, *q;

    for (pp = &l->sent.head; (q = *pp); pp = &q->next)
        if (q->id == m->reqid)
            break;
    if (!q) {
        if (m->fd >= 0)
            close(m->fd);
        link_down(l, "reply to a request never sent");
        return;
    }
    rl_take(&l->sent, pp);
    if (q->cb) {
        q->cb(q->arg, m);
    } else {
        if (l->orphan)
            l->orphan(l, m);
        if (m->fd >= 0)
            close(m->fd);
    }
    req_free(q);
}

static void link_io(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct link *l = arg;
    struct ipc_msg m;
    int r;

    (void)ev;
    (void)fd;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (ipc_conn_read(&l->conn) < 0) {
            link_down(l, "connection closed");
            return;
        }
        unsigned gen = l->generation;
        while ((r = ipc_conn_next(&l->conn, &m)) == 1) {
            dispatch(l, &m);
            if (gen != l->generation || !l->up)
                return;
        }
        if (r < 0) {
            char why[64];
            snprintf(why, sizeof(why), "malformed frame from %s", l->name);
            link_down(l, why);
            return;
        }
    }
    if (ipc_conn_flush(&l->conn) < 0) {
        link_down(l, "write failed");
        return;
    }
    update_events(l);
}

/* Queues a frame on the connection; the reply is awaited under q. */
static int send_frame(struct link *l, const struct ipc_out *m, int fd)
{
    if (ipc_conn_send(&l->conn, m, fd) < 0)
        return -1;
    /* A write error shows up as EPOLLERR/EOF in link_io, from a clean stack. */
    ipc_conn_flush(&l->conn);
    update_events(l);
    return 0;
}

static void send_held(struct link *l)
{
    struct req *q;

    while (l->up && (q = l->held.head)) {
        rl_take(&l->held, &l->held.head);
        if (send_frame(l, &q->frame, q->fd) < 0) {
            /* Could not even queue it: it hears the failure like the rest. */
            rl_push(&l->sent, q);
            link_down(l, "write failed");
            return;
        }
        ipc_out_free(&q->frame);
        if (q->fd >= 0)
            close(q->fd);
        q->fd = -1;
        rl_push(&l->sent, q);
    }
}

static void try_connect(struct link *l)
{
    int fd = ipc_connect_unix(l->path);

    if (fd < 0)
        return;
    ipc_conn_init(&l->conn, fd, l->limit);
    l->events = EPOLLIN;
    if (ev_add(l->ev, fd, EPOLLIN, link_io, l) < 0) {
        ipc_conn_close(&l->conn);
        return;
    }
    l->up = 1;
    l->generation++;
    l->backoff = RETRY_FIRST_MS;
    if (l->timer && l->held.n == 0) {
        ev_timer_cancel(l->ev, l->timer);
        l->timer = 0;
    }
    log_debug("connected to %s", l->name);
    send_held(l);
}

struct link *link_new(struct evloop *ev, const char *name, const char *path, ipc_limit_fn limit)
{
    struct link *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->ev = ev;
    str_copy(l->name, name, sizeof(l->name));
    str_copy(l->path, path, sizeof(l->path));
    l->limit = limit;
    l->conn.fd = -1;
    l->backoff = RETRY_FIRST_MS;
    rl_init(&l->sent);
    rl_init(&l->held);
    try_connect(l);
    arm(l);
    return l;
}

static void free_list(struct req *q)
{
    for (struct req *n; q; q = n) {
        n = q->next;
        req_free(q);
    }
}

void link_free(struct link *l)
{
    if (!l)
        return;
    if (l->timer)
        ev_timer_cancel(l->ev, l->timer);
    if (l->conn.fd >= 0)
        ev_del(l->ev, l->conn.fd);
    ipc_conn_close(&l->conn);
    free_list(l->sent.head);
    free_list(l->held.head);
    free(l);
}

void link_set_orphan(struct link *l, link_orphan_fn fn)
{
    l->orphan = fn;
}

int link_up(const struct link *l)
{
    return l->up;
}

unsigned link_generation(const struct link *l)
{
    return l->generation;
}

uint32_t link_new_id(struct link *l)
{
    if (++l->next_id == 0)
        l->next_id = 1;
    return l->next_id;
}

static struct req *req_new(uint32_t reqid, link_cb cb, void *arg)
{
    struct req *q = calloc(1, sizeof(*q));

    if (!q)
        return NULL;
    q->id = reqid;
    q->cb = cb;
    q->arg = arg;
    q->fd = -1;
    return q;
}

/* Keeps a copy of the frame (and descriptor) until the link is back. */
static int hold(struct link *l, const struct ipc_out *m, int fd, uint64_t wait_ms, struct req *q)
{
    q->frame.framed = 1;
    buf_init(&q->frame.b, m->b.len);
    if (buf_append(&q->frame.b, buf_head(&m->b), m->b.len) < 0)
        return -1;
    if (fd >= 0 && (q->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    q->deadline = now_ms() + wait_ms;
    if (l->held.n == 0)
        log_info("%s not connected: waiting up to %llu ms for it", l->name, (unsigned long long)wait_ms);
    rl_push(&l->held, q);
    if (l->timer) {
        /* The idle backoff may be long: retry at the held pace from now. */
        ev_timer_cancel(l->ev, l->timer);
        l->timer = 0;
    }
    arm(l);
    return 0;
}

int link_request(struct link *l, struct ipc_out *m, int fd, uint32_t reqid, uint64_t wait_ms,
                 link_cb cb, void *arg)
{
    struct req *q;

    if (!l->up)
        try_connect(l); /* the peer may just have started: do not wait for the timer */
    if (ipc_out_finish(m) < 0 || !(q = req_new(reqid, cb, arg)))
        return -1;
    if (!l->up) {
        if (wait_ms == 0 || hold(l, m, fd, wait_ms, q) < 0) {
            req_free(q);
            return -1;
        }
        return 0;
    }
    if (send_frame(l, m, fd) < 0) {
        req_free(q);
        return -1;
    }
    rl_push(&l->sent, q);
    return 0;
}

int link_notify(struct link *l, struct ipc_out *m)
{
    if (!l->up || ipc_out_finish(m) < 0)
        return -1;
    return send_frame(l, m, -1);
}

void link_cancel(struct link *l, uint32_t reqid)
{
    struct req **pp, *q;

    for (pp = &l->held.head; (q = *pp); pp = &q->next)
        if (q->id == reqid) {
            req_free(rl_take(&l->held, pp));
            return;
        }
    for (q = l->sent.head; q; q = q->next)
        if (q->id == reqid)
            q->cb = NULL;
}

unsigned link_pending(const struct link *l)
{
    return l->sent.n + l->held.n;
}
