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
#include "passwd.h"
#include "pool.h"
#include "proto.h"
#include "rpcsrv.h"
#include "failures.h"
#include "util.h"

#define CLIENT_JOBS_MAX 512     /* checks in flight per smtpd connection */
#define QUEUE_MAX 4096          /* checks waiting for a thread, in all */
#define TABLE_MAX 200000        /* addresses, users and pairs remembered */

/* What a job needs besides the password, to answer and to count. */
struct req {
    uint64_t client;            /* rpcsrv_later(): the client may be gone by the answer */
    uint32_t reqid;
    char key[AUTH_USER_MAX + 1];     /* mailbox key, or the name as given */
    char shown[AUTH_USER_MAX * 4 + 1]; /* the name as given, escaped for logs */
    char ip[AUTH_CLIENT_MAX + 8];    /* the client's address, or its /64 */
};

static struct evloop *ev;
static struct rpcsrv *srv;
static struct failures *thr;
static int pool_fd = -1;
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

static void answer(struct rpc_client *c, uint32_t reqid, enum auth_status st, uint64_t delay, const char *user)
{
    struct auth_result r = { .status = st, .delay_ms = delay };
    struct ipc_out m;

    if (user)
        str_copy(r.user, user, sizeof(r.user));
    if (authp_build_result(&m, reqid, &r) == 0 && rpcsrv_send(c, &m) < 0)
        log_warning("smtpd pid %ld: cannot queue an answer", (long)rpcsrv_pid(c));
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

static void handle_check(struct rpc_client *c, const struct ipc_msg *m, void *arg)
{
    struct auth_check ck;
    struct pool_job *j;
    struct req *q;
    uint64_t now = now_ms();
    int r;

    (void)arg;
    if (authp_parse_check(m, &ck) < 0) {
        OPENSSL_cleanse(&ck, sizeof(ck));
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        log_warning("smtpd pid %ld: malformed A_CHECK", (long)rpcsrv_pid(c));
        return;
    }
    q = calloc(1, sizeof(*q));
    j = calloc(1, sizeof(*j));
    if (!q || !j || rpcsrv_pending(c) >= CLIENT_JOBS_MAX) {
        free(q);
        free(j);
        OPENSSL_cleanse(&ck, sizeof(ck));
        answer(c, m->reqid, AUTH_TEMPFAIL, 0, NULL);
        return;
    }
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
    q->client = rpcsrv_later(c);
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
        struct rpc_client *c = rpcsrv_settle(srv, q->client);
        uint64_t now = now_ms(), delay = 0;

        n = j->next;
        in_flight--;
        if (j->ok) {
            failures_success(thr, q->ip, q->key, now);
        } else {
            delay = failures_failure(thr, q->ip, q->key, now);
        }
        if (c)
            answer(c, q->reqid, j->ok ? AUTH_OK : AUTH_FAIL, delay, j->ok ? q->key : NULL);
        OPENSSL_cleanse(j->hash, sizeof(j->hash));
        free(j);
        free(q);
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
    static const uint16_t types[] = { A_CHECK };
    struct rpcsrv_conf conf = {
        .peer = "smtpd", .types = types, .ntypes = ARRAY_LEN(types),
        .allowed = peers, .nallowed = npeers, .on_frame = handle_check,
    };
    struct failure_limits l;

    ev = loop;
    limits_of(c, &l);
    if (!(thr = failures_new(&l)) || !(srv = rpcsrv_new(ev, &conf))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pool_fd = pfd;
    if (rpcsrv_listen(srv, lfd) < 0 || ev_add(ev, pfd, EPOLLIN, on_pool, NULL) < 0) {
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
    rpcsrv_free(srv);
    srv = NULL;
    if (pool_fd >= 0)
        ev_del(ev, pool_fd);
    pool_fd = -1;
    failures_free(thr);
    thr = NULL;
}
