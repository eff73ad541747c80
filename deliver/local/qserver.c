/*
 * qserver.c - the quota server (qserver.h).
 *
 * Every L_QUOTA is validated as if it came from the network (quotaproto.c);
 * a frame that breaks the framing, carries a descriptor or is of another
 * type cuts the client off. Must never turn a key into a path but through
 * maps_path_component(), never create a Maildir or write anything but a
 * recalculated maildirsize, and never hold the event loop for long: a
 * recalculation here counts at most QSRV_SCAN_MAX names and answers
 * QUOTA_TEMPFAIL beyond (smtpd accepts, delivery decides and recounts).
 */
#include "qserver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "quota.h"
#include "util.h"

struct client {
    struct ipc_conn conn;
    uint32_t events;
    uid_t uid;
    pid_t pid;
    struct client *prev, *next;
};

static struct evloop *ev;
static struct client *clients;
static unsigned nclients;
static uid_t allowed[8];
static size_t nallowed;
static int listen_fd = -1, mbox_fd = -1;
static struct mapdb *map;

void qsrv_answer(struct mapdb *db, int root_fd, const char *key, uint64_t size, time_t now,
                 struct quota_answer *a)
{
    struct mapdb_quota q;
    struct mdq_usage u = { 0, 0 };
    char comp[MAPDB_KEY_MAX + 8];
    int r, md;

    memset(a, 0, sizeof(*a));
    if ((r = mapdb_quota(db, key, &q)) < 0) {
        a->verdict = QUOTA_TEMPFAIL;
        return;
    }
    if (r == 0 || maps_path_component(key, comp, sizeof(comp)) < 0) {
        a->verdict = QUOTA_NONE;
        return;
    }
    a->limit_bytes = q.bytes;
    a->limit_msgs = q.msgs;
    md = mdq_open_maildir(root_fd, comp);
    if (md < 0 && errno != ENOENT) {
        a->verdict = QUOTA_TEMPFAIL;
        return;
    }
    if (md >= 0) {
        r = mdq_usage(md, &q, now, QSRV_SCAN_MAX, &u);
        close(md);
        if (r < 0) {
            a->verdict = QUOTA_TEMPFAIL;
            return;
        }
    }
    /* no Maildir yet: nothing used */
    a->used_bytes = u.bytes;
    a->used_msgs = u.msgs;
    a->verdict = mdq_verdict(&q, &u, size);
}

static void client_update(struct client *c)
{
    uint32_t e = EPOLLIN | (ipc_conn_want_write(&c->conn) ? EPOLLOUT : 0);

    if (e != c->events && ev_mod(ev, c->conn.fd, e) == 0)
        c->events = e;
}

static void client_close(struct client *c, const char *why)
{
    if (why)
        log_warning("quota client uid %lu pid %ld: %s; disconnecting", (unsigned long)c->uid, (long)c->pid, why);
    ev_del(ev, c->conn.fd);
    ipc_conn_close(&c->conn);
    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nclients--;
    free(c);
}

static void handle_ask(struct client *c, const struct ipc_msg *m)
{
    struct quota_ask ask;
    struct quota_answer a;
    struct ipc_out out;
    char shown[MAPDB_KEY_MAX * 4];

    if (quotap_parse_ask(m, &ask) < 0) {
        log_warning("quota client pid %ld: malformed L_QUOTA", (long)c->pid);
        memset(&a, 0, sizeof(a));
        a.verdict = QUOTA_TEMPFAIL;
    } else {
        qsrv_answer(map, mbox_fd, ask.key, ask.size, time(NULL), &a);
        if (a.verdict == QUOTA_TEMPFAIL) {
            log_sanitize(ask.key, strlen(ask.key), shown, sizeof(shown));
            log_warning("quota of %s: the map or maildirsize cannot be read now: answered TEMPFAIL", shown);
        }
    }
    if (quotap_build_answer(&out, m->reqid, &a) == 0 && ipc_conn_send(&c->conn, &out, -1) < 0)
        log_warning("quota client pid %ld: cannot queue an answer", (long)c->pid);
    ipc_out_free(&out);
}

static void client_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct client *c = arg;
    struct ipc_msg m;
    int r;

    (void)loop;
    (void)fd;
    if (events & EPOLLIN) {
        if (ipc_conn_read(&c->conn) < 0) {
            client_close(c, NULL);
            return;
        }
        while ((r = ipc_conn_next(&c->conn, &m)) == 1) {
            if (m.fd >= 0) {
                close(m.fd);
                client_close(c, "unexpected descriptor");
                return;
            }
            if (m.type != L_QUOTA) {
                client_close(c, "unexpected message type");
                return;
            }
            handle_ask(c, &m);
            if (c->conn.out.len > QSRV_OUT_MAX) {
                client_close(c, "does not read its answers");
                return;
            }
        }
        if (r < 0) {
            client_close(c, "malformed frame");
            return;
        }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        client_close(c, NULL);
        return;
    }
    if (ipc_conn_flush(&c->conn) < 0) {
        client_close(c, NULL);
        return;
    }
    client_update(c);
}

static void accept_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    for (;;) {
        struct client *c;
        uid_t uid;
        pid_t pid;
        int cfd = net_accept_from(fd, allowed, nallowed, &uid, &pid);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warning("quota socket: accept: %s", strerror(errno));
            return;
        }
        if (nclients >= QSRV_CLIENTS_MAX) {
            log_warning("quota socket: %u clients already: refusing pid %ld", nclients, (long)pid);
            close(cfd);
            continue;
        }
        if (!(c = calloc(1, sizeof(*c)))) {
            close(cfd);
            continue;
        }
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
        nclients++;
    }
}

int qsrv_start(struct evloop *loop, int lfd, const uid_t *peers, size_t npeers, struct mapdb *db, int root_fd,
               char *err, size_t errlen)
{
    ev = loop;
    map = db;
    mbox_fd = root_fd;
    nallowed = 0;
    for (size_t i = 0; i < npeers && nallowed < ARRAY_LEN(allowed); i++)
        allowed[nallowed++] = peers[i];
    listen_fd = lfd;
    if (ev_add(ev, lfd, EPOLLIN, accept_cb, NULL) < 0) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void qsrv_stop(void)
{
    while (clients)
        client_close(clients, NULL);
    if (listen_fd >= 0) {
        ev_del(ev, listen_fd);
        close(listen_fd);
        listen_fd = -1;
    }
}
