/*
 * qlink.c - the link from an smtpd worker to queue-mgr (qlink.h).
 *
 * Replies are matched to requests by id, never by order alone, and a reply
 * for an id we did not send is a protocol error that drops the link.
 */
#include "qlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "queueid.h"
#include "util.h"

#define RETRY_MS 100

struct waiter {
    uint32_t id;
    qlink_cb cb;            /* NULL once cancelled */
    void *arg;
    struct waiter *next;
};

static struct evloop *ev;
static char sock_path[512];
static struct ipc_conn conn = { .fd = -1 };
static int up;
static unsigned generation;
static uint32_t next_id;
static struct waiter *waiters, **waiters_tail = &waiters;
static uint64_t retry_timer;

static void qlink_connect(struct evloop *loop, void *arg);

static uint32_t conn_events;

static void update_events(void)
{
    uint32_t events = EPOLLIN | (ipc_conn_want_write(&conn) ? EPOLLOUT : 0);

    if (events != conn_events && ev_mod(ev, conn.fd, events) == 0)
        conn_events = events;
}

static void schedule_retry(void)
{
    if (!retry_timer)
        retry_timer = ev_timer(ev, RETRY_MS, qlink_connect, NULL);
}

static void qlink_down(const char *why)
{
    struct waiter *w, *n;

    if (up)
        log_warning("lost connection to queue-mgr: %s", why);
    up = 0;
    if (conn.fd >= 0)
        ev_del(ev, conn.fd);
    ipc_conn_close(&conn);
    /* Detach the list first: a callback may start a new request. */
    w = waiters;
    waiters = NULL;
    waiters_tail = &waiters;
    for (; w; w = n) {
        n = w->next;
        if (w->cb)
            w->cb(w->arg, NULL);
        free(w);
    }
    schedule_retry();
}

static void send_abort(const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "";

    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1)
        if (f.tag == T_QID)
            ipc_field_str(&f, qid, sizeof(qid));
    if (qid[0]) {
        struct ipc_out out;
        ipc_out_begin(&out, Q_ABORT, 0);
        ipc_out_str(&out, T_QID, qid);
        qlink_notify(&out);
        ipc_out_free(&out);
    }
}

static void dispatch(const struct ipc_msg *m)
{
    struct waiter **pp, *w;

    for (pp = &waiters; (w = *pp); pp = &w->next)
        if (w->id == m->reqid)
            break;
    if (!w) {
        if (m->fd >= 0)
            close(m->fd);
        qlink_down("reply to a request never sent");
        return;
    }
    *pp = w->next;
    if (!*pp)
        waiters_tail = pp;
    if (w->cb) {
        w->cb(w->arg, m);
    } else {
        /* The session went away while queue-mgr made its spool file. */
        if (m->type == Q_OPENED)
            send_abort(m);
        if (m->fd >= 0)
            close(m->fd);
    }
    free(w);
}

static void qlink_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct ipc_msg m;
    int r;

    (void)loop;
    (void)fd;
    (void)arg;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (ipc_conn_read(&conn) < 0) {
            qlink_down("connection closed");
            return;
        }
        unsigned gen = generation;
        while ((r = ipc_conn_next(&conn, &m)) == 1) {
            dispatch(&m);
            if (gen != generation || !up)
                return;
        }
        if (r < 0) {
            qlink_down("malformed frame from queue-mgr");
            return;
        }
    }
    if (ipc_conn_flush(&conn) < 0) {
        qlink_down("write failed");
        return;
    }
    update_events();
}

static void qlink_connect(struct evloop *loop, void *arg)
{
    int fd;

    (void)arg;
    retry_timer = 0;
    fd = ipc_connect_unix(sock_path);
    if (fd < 0) {
        schedule_retry();
        return;
    }
    ipc_conn_init(&conn, fd, proto_limit);
    conn_events = EPOLLIN;
    if (ev_add(loop, fd, EPOLLIN, qlink_io, NULL) < 0) {
        ipc_conn_close(&conn);
        schedule_retry();
        return;
    }
    up = 1;
    generation++;
    log_debug("connected to queue-mgr");
}

void qlink_init(struct evloop *loop, const char *path)
{
    ev = loop;
    str_copy(sock_path, path, sizeof(sock_path));
    qlink_connect(loop, NULL);
}

int qlink_up(void)
{
    return up;
}

/* A session needs the link now: when it is down, try at once rather than
 * make the session wait for the retry timer (queue-mgr may just have
 * started). */
static int qlink_ensure(void)
{
    if (!up) {
        if (retry_timer) {
            ev_timer_cancel(ev, retry_timer);
            retry_timer = 0;
        }
        qlink_connect(ev, NULL);
    }
    return up;
}

unsigned qlink_generation(void)
{
    return generation;
}

uint32_t qlink_new_id(void)
{
    if (++next_id == 0)
        next_id = 1;
    return next_id;
}

static int qlink_send(struct ipc_out *m)
{
    if (!up || ipc_out_finish(m) < 0 || ipc_conn_send(&conn, m, -1) < 0)
        return -1;
    if (ipc_conn_flush(&conn) < 0) {
        /* Report through the waiters, from a clean stack. */
        return -1;
    }
    update_events();
    return 0;
}

int qlink_request(struct ipc_out *m, uint32_t reqid, qlink_cb cb, void *arg)
{
    struct waiter *w;

    if (!qlink_ensure())
        return -1;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    if (qlink_send(m) < 0) {
        free(w);
        return -1;
    }
    w->id = reqid;
    w->cb = cb;
    w->arg = arg;
    *waiters_tail = w;
    waiters_tail = &w->next;
    return 0;
}

void qlink_notify(struct ipc_out *m)
{
    qlink_send(m);
}

void qlink_cancel(uint32_t reqid)
{
    for (struct waiter *w = waiters; w; w = w->next)
        if (w->id == reqid)
            w->cb = NULL;
}
