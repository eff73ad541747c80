/*
 * server.c - the resolver's socket, its clients and their look-ups
 * (server.h).
 *
 * Each request becomes a job with one or more libunbound queries in flight;
 * answers come back through ub_fd() in the event loop, never blocking it.
 * Every request is validated as if it came from the network; a client that
 * sends a bad request gets R_ERROR, one that breaks the framing is cut off
 * (the socket and its clients are rpcsrv.c's).
 * A job outlives a client that disconnects (its answer warms the cache) but
 * never writes to it. Nothing here may turn a temporary DNS failure into a
 * permanent one.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "dnsclient.h"
#include "log.h"
#include "nexthop.h"
#include "proto.h"
#include "rpcsrv.h"
#include "util.h"

#define JOB_TIMEOUT_MS 30000u       /* a job answers by then, with what it has */
#define MAX_JOBS_PER_CLIENT 2048u   /* one client cannot fill libunbound's 8192 */
#define MAX_JOBS 65536u
#define CLIENT_OUT_MAX (16u << 20)  /* a client that does not read is cut off */
#define HOP_FAMILY_MAX (DNS_HOP_MAX_ADDR / 2)
#define JOB_MAX_Q (1 + 2 * DNS_MAX_HOPS)

enum job_kind { JOB_LOOKUP, JOB_NEXTHOPS };

struct job;
struct query {
    struct job *job;
    int async_id;
    int active;
    uint16_t type;
    int hop;                        /* -1: the job's own question */
};

/* Per-hop state while its AAAA and A answers arrive. */
struct hopstate {
    enum dns_status st[2];          /* [0] AAAA, [1] A */
    enum dns_security sec[2];
    size_t n[2];
    char addr[2][HOP_FAMILY_MAX][DNS_ADDR_MAX];
};

struct job {
    enum job_kind kind;
    uint64_t client;                /* rpcsrv_later(); 0 once settled */
    uint32_t reqid;
    uint16_t type;
    char name[DNS_NAME_MAX + 1];
    uint64_t deadline;
    unsigned pending;
    struct query q[JOB_MAX_Q];
    struct dns_hops *hops;          /* JOB_NEXTHOPS */
    struct hopstate *hs;            /* JOB_NEXTHOPS, DNS_MAX_HOPS of them */
    struct job *prev, *next;
};

static struct ub_ctx *ub;
static struct rpcsrv *srv;          /* on RUN/resolver and in deliver's jail */
static char self[DNS_NAME_MAX + 1];
static struct job *jobs;
static unsigned njobs;
static struct dns_answer scratch;   /* one answer at a time: callbacks run in the loop */

/* ---------------------------------------------------------------- clients */

/* Queues m (freed here) when it was built (built == 0); a client it
 * cannot go to is cut off, and so is one that does not read (rpcsrv_send). */
static void client_send(struct rpc_client *c, struct ipc_out *m, int built)
{
    int r = built == 0 ? rpcsrv_send(c, m) : -1;

    ipc_out_free(m);
    if (r < 0)
        rpcsrv_close(c, built == 0 ? "cannot queue an answer" : "answer does not fit a frame");
}

static void send_error(struct rpc_client *c, uint32_t reqid, const char *code, const char *text)
{
    struct ipc_out m;

    dnsc_error_encode(&m, reqid, code, text);
    client_send(c, &m, 0);
}

/* ---------------------------------------------------------------- jobs */

/* The job's answer is settled: its client, or NULL when it has gone. */
static struct rpc_client *job_settle(struct job *j)
{
    struct rpc_client *c = j->client ? rpcsrv_settle(srv, j->client) : NULL;

    j->client = 0;
    return c;
}

static void job_free(struct job *j)
{
    for (size_t i = 0; i < JOB_MAX_Q; i++)
        if (j->q[i].active) {
            ub_cancel(ub, j->q[i].async_id);
            j->q[i].active = 0;
        }
    job_settle(j);
    if (j->prev)
        j->prev->next = j->next;
    else
        jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    njobs--;
    free(j->hops);
    free(j->hs);
    free(j);
}

static void on_result(void *arg, int err, struct ub_result *res);

/* Starts query idx; -1 (nothing in flight) when libunbound refuses it. */
static int query_start(struct job *j, size_t idx, const char *name, uint16_t type, int hop)
{
    struct query *q = &j->q[idx];
    int r;

    q->job = j;
    q->type = type;
    q->hop = hop;
    r = ub_resolve_async(ub, name, type, 1, q, on_result, &q->async_id);
    if (r != 0) {
        log_warning("%s %s: cannot start the look-up: %s", name, dns_type_name(type), ub_strerror(r));
        return -1;
    }
    q->active = 1;
    j->pending++;
    return 0;
}

static void lookup_answer(struct job *j, const struct dns_answer *a)
{
    struct rpc_client *c = job_settle(j);
    struct ipc_out m;
    int built;

    if (c) {
        built = dnsc_answer_encode(&m, j->reqid, a);
        client_send(c, &m, built);
    }
    job_free(j);
}

static void hops_fail(struct job *j, enum dns_status st, const char *dsn, const char *text)
{
    j->hops->status = st;
    j->hops->nhop = 0;
    str_copy(j->hops->dsn, dsn, sizeof j->hops->dsn);
    str_copy(j->hops->text, text, sizeof j->hops->text);
}

static void hops_answer(struct job *j)
{
    struct dns_hops *h = j->hops;
    struct rpc_client *c;
    struct ipc_out m;
    int built;

    if (h->status == DNS_OK) {
        for (size_t i = 0; i < h->nhop; i++) {
            struct dns_hop *p = &h->hop[i];
            struct hopstate *s = &j->hs[i];
            p->naddr = 0;
            for (int f = 0; f < 2; f++)
                for (size_t k = 0; k < s->n[f]; k++)
                    str_copy(p->addr[p->naddr++], s->addr[f][k], DNS_ADDR_MAX);
            if (p->naddr)
                p->status = DNS_OK;
            else if (s->st[0] == DNS_TEMPFAIL || s->st[1] == DNS_TEMPFAIL)
                p->status = DNS_TEMPFAIL;
            else if (s->st[0] == DNS_NXDOMAIN && s->st[1] == DNS_NXDOMAIN)
                p->status = DNS_NXDOMAIN;
            else
                p->status = DNS_NODATA;
            if (s->sec[0] == DNS_BOGUS || s->sec[1] == DNS_BOGUS)
                p->security = DNS_BOGUS;
            else if (s->sec[0] == DNS_SECURE && s->sec[1] == DNS_SECURE)
                p->security = DNS_SECURE;
            else
                p->security = DNS_INSECURE;
        }
        nexthop_verdict(h);
    }
    log_debug("next hops for %s: %s%s%s, %zu host(s)", h->domain, dns_status_name(h->status),
              h->dsn[0] ? " " : "", h->dsn, h->nhop);
    if ((c = job_settle(j))) {
        built = dnsc_hops_encode(&m, j->reqid, h);
        client_send(c, &m, built);
    }
    job_free(j);
}

/* The MX answer is in: decide the hosts, then ask for their addresses. */
static void hops_mx(struct job *j, const struct dns_answer *a)
{
    struct dns_hops *h = j->hops;
    struct nh_mx mx[DNS_MAX_RR];
    size_t n = 0, kept = 0;
    char text[DNS_TEXT_MAX];

    h->security = a->security;
    switch (a->status) {
    case DNS_NXDOMAIN:
        snprintf(text, sizeof text, "Host or domain name not found: %.160s does not exist (NXDOMAIN)", j->name);
        hops_fail(j, DNS_PERMFAIL, "5.1.2", text);
        return;
    case DNS_TEMPFAIL:
    case DNS_PERMFAIL:
        snprintf(text, sizeof text, "temporary failure looking up the MX of %.60s: %.150s", j->name, a->text);
        hops_fail(j, DNS_TEMPFAIL, "4.4.3", text);
        return;
    case DNS_NODATA:
        if (strcmp(j->name, self) == 0) {
            snprintf(text, sizeof text, "mail for %.180s loops back to myself", j->name);
            hops_fail(j, DNS_PERMFAIL, "5.4.6", text);
            return;
        }
        str_copy(h->hop[0].host, j->name, sizeof h->hop[0].host);
        h->hop[0].pref = 0;
        h->hop[0].implicit = 1;
        kept = 1;
        break;
    case DNS_OK:
        for (size_t i = 0; i < a->nrr && n < DNS_MAX_RR; i++) {
            mx[n].pref = a->rr[i].pref;
            str_copy(mx[n].host, a->rr[i].host, sizeof mx[n].host);
            n++;
        }
        switch (nexthop_order(mx, n, self, NULL, NULL, &kept)) {
        case NH_NULLMX:
            snprintf(text, sizeof text, "%.180s does not accept mail (null MX)", j->name);
            hops_fail(j, DNS_PERMFAIL, "5.1.10", text);
            return;
        case NH_LOOP:
            snprintf(text, sizeof text, "mail for %.180s loops back to myself", j->name);
            hops_fail(j, DNS_PERMFAIL, "5.4.6", text);
            return;
        case NH_USE:
            break;
        }
        for (size_t i = 0; i < kept; i++) {
            str_copy(h->hop[i].host, mx[i].host, sizeof h->hop[i].host);
            h->hop[i].pref = mx[i].pref;
        }
        break;
    }
    h->nhop = kept;
    for (size_t i = 0; i < kept; i++) {
        j->hs[i].st[0] = j->hs[i].st[1] = DNS_TEMPFAIL;
        if (query_start(j, 1 + 2 * i, h->hop[i].host, DNS_T_AAAA, (int)i) < 0)
            j->hs[i].st[0] = DNS_TEMPFAIL;
        if (query_start(j, 2 + 2 * i, h->hop[i].host, DNS_T_A, (int)i) < 0)
            j->hs[i].st[1] = DNS_TEMPFAIL;
    }
}

static void hops_addr(struct job *j, const struct query *q, const struct dns_answer *a)
{
    struct hopstate *s = &j->hs[q->hop];
    int f = q->type == DNS_T_AAAA ? 0 : 1;

    s->st[f] = a->status;
    s->sec[f] = a->security;
    for (size_t i = 0; i < a->nrr && s->n[f] < HOP_FAMILY_MAX; i++)
        str_copy(s->addr[f][s->n[f]++], a->rr[i].addr, DNS_ADDR_MAX);
}

static void on_result(void *arg, int err, struct ub_result *res)
{
    struct query *q = arg;
    struct job *j = q->job;

    q->active = 0;
    j->pending--;
    str_copy(scratch.name, q->hop < 0 ? j->name : j->hops->hop[q->hop].host, sizeof scratch.name);
    answer_from_ub(err, res, q->type, &scratch);
    if (res)
        ub_resolve_free(res);
    log_debug("%s %s: %s, %s, %zu record(s)%s%s", scratch.name, dns_type_name(q->type),
              dns_status_name(scratch.status), dns_security_name(scratch.security), scratch.nrr,
              scratch.text[0] ? ": " : "", scratch.text);
    if (j->kind == JOB_LOOKUP) {
        lookup_answer(j, &scratch);
        return;
    }
    if (q->hop < 0)
        hops_mx(j, &scratch);
    else
        hops_addr(j, q, &scratch);
    if (j->pending == 0)
        hops_answer(j);
}

static struct job *job_new(struct rpc_client *c, enum job_kind kind, uint32_t reqid)
{
    struct job *j = calloc(1, sizeof *j);

    if (!j)
        return NULL;
    if (kind == JOB_NEXTHOPS) {
        j->hops = calloc(1, sizeof *j->hops);
        j->hs = calloc(DNS_MAX_HOPS, sizeof *j->hs);
        if (!j->hops || !j->hs) {
            free(j->hops);
            free(j->hs);
            free(j);
            return NULL;
        }
    }
    j->kind = kind;
    j->client = rpcsrv_later(c);
    j->reqid = reqid;
    j->deadline = now_ms() + JOB_TIMEOUT_MS;
    j->next = jobs;
    if (jobs)
        jobs->prev = j;
    jobs = j;
    njobs++;
    return j;
}

static void handle_request(struct rpc_client *c, const struct ipc_msg *m, void *arg)
{
    char why[128], name[DNS_NAME_MAX + 1];
    uint16_t type = DNS_T_MX;
    struct job *j;
    int r;

    (void)arg;
    if (m->type == R_LOOKUP)
        r = dnsc_parse_lookup(m, name, &type, why, sizeof why);
    else if (m->type == R_NEXTHOPS)
        r = dnsc_parse_nexthops(m, name, why, sizeof why);
    else {
        snprintf(why, sizeof why, "unexpected message type %u", m->type);
        r = -1;
    }
    if (r < 0) {
        log_warning("client uid %lu pid %ld: bad request: %s", (unsigned long)rpcsrv_uid(c), (long)rpcsrv_pid(c), why);
        send_error(c, m->reqid, "501 5.5.4", why);
        return;
    }
    if (rpcsrv_pending(c) >= MAX_JOBS_PER_CLIENT || njobs >= MAX_JOBS) {
        send_error(c, m->reqid, "451 4.3.2", "too many look-ups in flight; try again");
        return;
    }
    j = job_new(c, m->type == R_LOOKUP ? JOB_LOOKUP : JOB_NEXTHOPS, m->reqid);
    if (!j) {
        send_error(c, m->reqid, "451 4.3.0", "out of memory");
        return;
    }
    str_copy(j->name, name, sizeof j->name);
    j->type = type;
    if (j->hops)
        str_copy(j->hops->domain, name, sizeof j->hops->domain);
    if (query_start(j, 0, name, type, -1) < 0) {
        job_free(j);
        send_error(c, m->reqid, "451 4.3.0", "the look-up could not be started");
    }
}

static void ub_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    int r;

    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    if ((r = ub_process(ub)) != 0)
        log_error("libunbound: %s", ub_strerror(r));
}

/* Once a second: jobs past their deadline answer with what they have. */
static void sweep(struct evloop *loop, void *arg)
{
    uint64_t now = now_ms();
    struct job *j, *next;

    (void)arg;
    for (j = jobs; j; j = next) {
        next = j->next;
        if (j->deadline > now)
            continue;
        for (size_t i = 0; i < JOB_MAX_Q; i++)
            if (j->q[i].active) {
                ub_cancel(ub, j->q[i].async_id);
                j->q[i].active = 0;
                j->pending--;
            }
        if (j->kind == JOB_LOOKUP) {
            memset(&scratch, 0, offsetof(struct dns_answer, arena));
            str_copy(scratch.name, j->name, sizeof scratch.name);
            scratch.type = j->type;
            scratch.status = DNS_TEMPFAIL;
            snprintf(scratch.text, sizeof scratch.text, "%.180s %s: timed out", j->name, dns_type_name(j->type));
            lookup_answer(j, &scratch);
        } else {
            if (j->hops->nhop == 0 && j->hops->status == DNS_OK) {
                char text[DNS_TEXT_MAX];
                snprintf(text, sizeof text, "timed out looking up the MX of %.180s", j->name);
                hops_fail(j, DNS_TEMPFAIL, "4.4.3", text);
            }
            hops_answer(j);     /* unanswered families stay DNS_TEMPFAIL */
        }
    }
    ev_timer(loop, 1000, sweep, NULL);
}

int rsv_start(struct evloop *loop, struct ub_ctx *ctx, const int *listen_fd, size_t nlisten,
              const struct config *c, const uid_t *peers, size_t npeers, char *err, size_t errlen)
{
    uid_t allowed[RPCSRV_UIDS_MAX];
    struct rpcsrv_conf conf = {
        .peer = "client", .max_clients = 0, .out_max = CLIENT_OUT_MAX,
        .allowed = allowed, .on_frame = handle_request, /* any type: a wrong one gets R_ERROR */
    };

    ub = ctx;
    if (dns_name_normalize(c->hostname, strlen(c->hostname), self) < 0)
        self[0] = '\0';
    allowed[conf.nallowed++] = 0;   /* root: the master's checks, the tools run as root */
    for (size_t i = 0; i < npeers && conf.nallowed < ARRAY_LEN(allowed); i++)
        allowed[conf.nallowed++] = peers[i];
    if (!(srv = rpcsrv_new(loop, &conf))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nlisten && i < 2; i++)
        if (rpcsrv_listen(srv, listen_fd[i]) < 0) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
    if (ev_add(loop, ub_fd(ub), EPOLLIN, ub_cb, NULL) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    ev_timer(loop, 1000, sweep, NULL);
    return 0;
}

void rsv_close_listener(void)
{
    if (srv)
        rpcsrv_close_listeners(srv);
}

unsigned rsv_jobs(void)
{
    return njobs;
}

void rsv_stop(void)
{
    rsv_close_listener();
    while (jobs)
        job_free(jobs);
    rpcsrv_free(srv);
    srv = NULL;
}
