/*
 * server.c - the auth socket (server.h). Every A_CHECK is validated as if
 * it came from the network. Must never log a password or a hash, never
 * hash on the event loop, and never tell an unknown user from a wrong
 * password by the answer or its timing (unknown users cost a dummy hash).
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "authproto.h"
#include "ipc.h"
#include "log.h"
#include "mapdb.h"
#include "net.h"
#include "passwd.h"
#include "pool.h"
#include "proto.h"
#include "failures.h"
#include "util.h"

#define CLIENT_JOBS_MAX 512     /* checks in flight per smtpd connection */
#define QUEUE_MAX 4096          /* checks waiting for a thread, in all */
#define TABLE_MAX 200000        /* addresses, users and pairs remembered */

struct client {
    struct ipc_conn conn;
    uint64_t serial;
    uid_t uid;
    pid_t pid;
    uint32_t events;
    unsigned jobs;
    struct client *prev, *next;
};

/* What a job needs besides the password, to answer and to count. */
struct req {
    uint64_t client;            /* serial: the client may be gone by the answer */
    uint32_t reqid;
    char key[AUTH_USER_MAX + 1];     /* mailbox key, or the name as given */
    char shown[AUTH_USER_MAX * 4 + 1]; /* the name as given, escaped for logs */
    char ip[AUTH_CLIENT_MAX + 8];    /* the client's address, or its /64 */
};

static struct evloop *ev;
static struct client *clients;
static uint64_t next_serial = 1;
static struct failures *thr;
static uid_t allowed[8];
static size_t nallowed;
static int listen_fd = -1, pool_fd = -1;
static unsigned in_flight;

static void limits_of(const struct config *c, struct failure_limits *l)
{
    l->delay_ms = c->smtpd_auth_failure_delay_ms;
    l->ip_limit = c->smtpd_auth_failure_limit;
    l->user_limit = c->smtpd_auth_user_failure_limit;
    l->block_ms = (uint64_t)c->smtpd_auth_block_time * 1000;
    l->max_entries = TABLE_MAX;
}

unsigned authsrv_in_flight(void)
{
    return in_flight;
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
        log_warning("smtpd uid %lu pid %ld: %s; disconnecting", (unsigned long)c->uid, (long)c->pid, why);
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

static struct client *client_by_serial(uint64_t serial)
{
    for (struct client *c = clients; c; c = c->next)
        if (c->serial == serial)
            return c;
    return NULL;
}

static void answer(struct client *c, uint32_t reqid, enum auth_status st, uint64_t delay, const char *user)
{
    struct auth_result r = { .status = st, .delay_ms = delay };
    struct ipc_out m;

    if (user)
        str_copy(r.user, user, sizeof(r.user));
    if (authp_build_result(&m, reqid, &r) == 0 && ipc_conn_send(&c->conn, &m, -1) < 0)
        log_warning("smtpd pid %ld: cannot queue an answer", (long)c->pid);
    ipc_out_free(&m);
}

/* The failure tables' key of a client address: an IPv6 address counts by its
 * /64 (one customer's network: rotating inside it buys nothing). */
static void client_key(const char *ip, char *out, size_t outlen)
{
    unsigned char a[16];

    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, a) == 1 && !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a)) {
        char text[INET6_ADDRSTRLEN];
        memset(a + 8, 0, 8);
        inet_ntop(AF_INET6, a, text, sizeof(text));
        snprintf(out, outlen, "%s/64", text);
        return;
    }
    str_copy(out, ip, outlen);
}

/* The mailbox key of a login name ("John@Example.COM" -> "john@example.com"),
 * or -1 when it cannot be an address of a mailbox. */
static int login_key(const char *user, char *key, size_t keylen)
{
    char path[AUTH_USER_MAX + 3];
    struct addr a;
    size_t end;

    if ((size_t)snprintf(path, sizeof(path), "<%s>", user) >= sizeof(path) ||
        addr_parse_path(path, strlen(path), ADDR_UTF8, &a, &end) != ADDR_OK || path[end] || !a.domain[0])
        return -1;
    return maps_addr_key(&a, key, keylen);
}

static void handle_check(struct client *c, const struct ipc_msg *m)
{
    struct auth_check ck;
    struct pool_job *j;
    struct req *q;
    uint64_t now = now_ms();
    int r;

    if (authp_parse_check(m, &ck) < 0) {
        OPENSSL_cleanse(&ck, sizeof(ck));
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        log_warning("smtpd pid %ld: malformed A_CHECK", (long)c->pid);
        return;
    }
    q = calloc(1, sizeof(*q));
    j = calloc(1, sizeof(*j));
    if (!q || !j || c->jobs >= CLIENT_JOBS_MAX) {
        free(q);
        free(j);
        OPENSSL_cleanse(&ck, sizeof(ck));
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        return;
    }
    q->client = c->serial;
    q->reqid = m->reqid;
    client_key(ck.client, q->ip, sizeof(q->ip));
    log_sanitize(ck.user, strlen(ck.user), q->shown, sizeof(q->shown));
    if (login_key(ck.user, q->key, sizeof(q->key)) < 0)
        str_copy(q->key, ck.user, sizeof(q->key));
    if (failures_blocked(thr, q->ip, q->key, now)) {
        log_warning("AUTH for %s from %s refused: too many failures", q->shown, q->ip);
        answer(c, m->reqid, AUTH_BLOCKED, 0, NULL);
        OPENSSL_cleanse(&ck, sizeof(ck));
        free(q);
        free(j);
        return;
    }
    r = passwd_lookup(q->key, j->hash, sizeof(j->hash));
    if (r < 0) {
        log_warning("password map unavailable: AUTH for %s from %s deferred", q->shown, q->ip);
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        OPENSSL_cleanse(&ck, sizeof(ck));
        free(q);
        free(j);
        return;
    }
    if (r == 0)
        j->hash[0] = 0; /* no such user, or no hash: a dummy check, the same time */
    memcpy(j->pass, ck.pass, ck.passlen);
    j->passlen = ck.passlen;
    OPENSSL_cleanse(&ck, sizeof(ck));
    j->arg = q;
    if (pool_submit(j) < 0) {
        log_warning("AUTH for %s from %s deferred: %d checks waiting", q->shown, q->ip, QUEUE_MAX);
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        OPENSSL_cleanse(j, sizeof(*j));
        free(j);
        free(q);
        return;
    }
    c->jobs++;
    in_flight++;
}

static void on_pool(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    for (struct pool_job *j = pool_done(), *n; j; j = n) {
        struct req *q = j->arg;
        struct client *c = client_by_serial(q->client);
        uint64_t now = now_ms(), delay = 0;

        n = j->next;
        in_flight--;
        if (j->ok) {
            failures_success(thr, q->ip, q->key, now);
        } else {
            delay = failures_failure(thr, q->ip, q->key, now);
        }
        if (c) {
            c->jobs--;
            answer(c, q->reqid, j->ok ? AUTH_OK : AUTH_FAIL, delay, j->ok ? q->key : NULL);
            if (ipc_conn_flush(&c->conn) < 0)
                client_close(c, "write error");
            else
                client_update(c);
        }
        OPENSSL_cleanse(j->hash, sizeof(j->hash));
        free(j);
        free(q);
    }
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
            if (m.type != A_CHECK) {
                client_close(c, "unexpected message type");
                return;
            }
            handle_check(c, &m);
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
                log_warning("accept: %s", strerror(errno));
            return;
        }
        if (!(c = calloc(1, sizeof(*c)))) {
            close(cfd);
            continue;
        }
        c->uid = uid;
        c->pid = pid;
        c->serial = next_serial++;
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

static void sweep(struct evloop *loop, void *arg)
{
    (void)arg;
    failures_sweep(thr, now_ms());
    ev_timer(loop, 60000, sweep, NULL);
}

int authsrv_start(struct evloop *loop, int lfd, int pfd, const struct config *c, const uid_t *peers, size_t npeers,
                  char *err, size_t errlen)
{
    struct failure_limits l;

    ev = loop;
    limits_of(c, &l);
    if (!(thr = failures_new(&l))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < npeers && nallowed < ARRAY_LEN(allowed); i++)
        allowed[nallowed++] = peers[i];
    listen_fd = lfd;
    pool_fd = pfd;
    if (ev_add(ev, lfd, EPOLLIN, accept_cb, NULL) < 0 || ev_add(ev, pfd, EPOLLIN, on_pool, NULL) < 0) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    ev_timer(ev, 60000, sweep, NULL);
    return 0;
}

void authsrv_config(const struct config *c)
{
    struct failure_limits l;

    limits_of(c, &l);
    failures_set_limits(thr, &l);
}

void authsrv_stop(void)
{
    while (clients)
        client_close(clients, NULL);
    if (listen_fd >= 0) {
        ev_del(ev, listen_fd);
        close(listen_fd);
        listen_fd = -1;
    }
    if (pool_fd >= 0)
        ev_del(ev, pool_fd);
    pool_fd = -1;
    failures_free(thr);
    thr = NULL;
}
