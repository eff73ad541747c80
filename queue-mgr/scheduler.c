/*
 * scheduler.c - the delivery scheduler (scheduler.h). Runs in the event
 * loop; must never block it for long: a pass reads at most SCAN_MAX
 * schedule entries, writes go through the committer's threads (results)
 * and a flush writes in slices. Never gives deliver a writable descriptor
 * of a queue file, never believes a deliver frame before it is validated,
 * and never dispatches a recipient twice at once (the in-flight set holds
 * it from dispatch until its result is durable).
 */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "bounce.h"
#include "committer.h"
#include "localroute.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proto.h"
#include "qops.h"
#include "qrecord.h"
#include "spool.h"
#include "util.h"

#define SCAN_SLICE 256
#define SCAN_MAX 4096               /* schedule entries read in one pass */
#define GROUPS_MAX 32               /* destinations of one message per pass */
#define RESULT_BATCH 512            /* results in one commit job */
#define HASH_SIZE 4096
#define WANTS_MAX 4096              /* free slots one deliver may hold */
#define RETRY_MS 2

#define REASON_LOST "lost connection with deliver"
#define REASON_NORESULT "deliver gave no result for this recipient"
#define REASON_NOFILE "queue file is missing or unreadable"

static struct evloop *loop;
static struct qstore *store;
static const struct config *cfg;
static uint64_t reader_timer, tick_timer, kick_timer, retry_timer;
static int stopping;

/* ---- a set of (qid, recipient) keys ---- */

struct key {
    char qid[QID_LEN + 1];
    uint32_t rcpt;
    struct key *next;
};
struct keyset {
    struct key *b[HASH_SIZE];
    size_t n;
};

static unsigned key_hash(const char *qid, uint32_t rcpt)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < QID_LEN && qid[i]; i++)
        h = (h ^ (unsigned char)qid[i]) * 16777619u;
    h = (h ^ rcpt) * 16777619u;
    return h % HASH_SIZE;
}

static int ks_has(const struct keyset *s, const char *qid, uint32_t rcpt)
{
    for (struct key *k = s->b[key_hash(qid, rcpt)]; k; k = k->next)
        if (k->rcpt == rcpt && strcmp(k->qid, qid) == 0)
            return 1;
    return 0;
}

static int ks_add(struct keyset *s, const char *qid, uint32_t rcpt)
{
    unsigned h = key_hash(qid, rcpt);
    struct key *k = malloc(sizeof(*k));

    if (!k)
        return -1;
    str_copy(k->qid, qid, sizeof(k->qid));
    k->rcpt = rcpt;
    k->next = s->b[h];
    s->b[h] = k;
    s->n++;
    return 0;
}

static void ks_del(struct keyset *s, const char *qid, uint32_t rcpt)
{
    for (struct key **pp = &s->b[key_hash(qid, rcpt)]; *pp; pp = &(*pp)->next)
        if ((*pp)->rcpt == rcpt && strcmp((*pp)->qid, qid) == 0) {
            struct key *k = *pp;
            *pp = k->next;
            free(k);
            s->n--;
            return;
        }
}

static void ks_clear(struct keyset *s)
{
    for (size_t i = 0; i < HASH_SIZE && s->n; i++)
        while (s->b[i]) {
            struct key *k = s->b[i];
            s->b[i] = k->next;
            free(k);
            s->n--;
        }
}

static struct keyset inflight;      /* dispatched, or result not yet durable */
static struct keyset seen;          /* messages looked at in this pass */

/* Where the last pass stopped in the time index. Everything before it was
 * dispatched, deferred or blocked then; what became due since sorts after
 * it. A pass starts from the beginning only when capacity changed (a new
 * slot, a result, a flush, the tick) and there is a free slot; else it
 * goes on from here, so new mail costs one read, not a rescan. */
static struct qstore_due cursor;
static int have_cursor, rescan = 1;
/* Which pools' capacity changed since the last pass from the start: only
 * their waiting recipients before the cursor can have become sendable. */
static int rescan_pool[POOL_COUNT] = { 1, 1 };

/* Messages whose due recipients all wait for one destination at its
 * limit: skipped without reading the record while it stays so. */
#define BLOCKED_MAX 200000
struct blocked {
    char qid[QID_LEN + 1];
    struct dest *dest;
    struct blocked *next;
};
static struct blocked *blocked[HASH_SIZE];
static size_t nblocked;

/* ---- destinations ---- */

static struct dest *dests[HASH_SIZE];
static size_t ndests;
#define DESTS_KEEP 10000            /* past this, idle destinations are forgotten */

static void limits(struct dest_limits *l)
{
    l->initial = cfg->initial_destination_concurrency;
    l->max = cfg->destination_concurrency_limit;
    l->dead_time = cfg->min_backoff;
}

static struct dest *dest_get(const char *name)
{
    unsigned h = key_hash(name, 0);
    struct dest_limits l;
    struct dest *d;

    for (d = dests[h]; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    d = malloc(sizeof(*d));
    if (!d)
        return NULL;
    limits(&l);
    dest_init(d, name, &l);
    d->next = dests[h];
    dests[h] = d;
    ndests++;
    return d;
}

/* Orders two schedule positions as the time index does. */
static int qstore_due_cmp(const struct qstore_due *a, const struct qstore_due *b)
{
    int c;

    if (a->next_try != b->next_try)
        return a->next_try < b->next_try ? -1 : 1;
    if ((c = strcmp(a->qid, b->qid)) != 0)
        return c;
    return a->rcpt < b->rcpt ? -1 : a->rcpt > b->rcpt;
}

static struct blocked **blocked_find(const char *qid)
{
    struct blocked **pp = &blocked[key_hash(qid, 0)];

    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->qid, qid) == 0)
            return pp;
    return pp;
}

static void blocked_set(const char *qid, struct dest *d)
{
    struct blocked **pp = blocked_find(qid), *b = *pp;

    if (!d) {
        if (b) {
            *pp = b->next;
            free(b);
            nblocked--;
        }
        return;
    }
    if (!b) {
        if (nblocked >= BLOCKED_MAX)
            return;
        if (!(b = malloc(sizeof(*b))))
            return;
        str_copy(b->qid, qid, sizeof(b->qid));
        b->next = NULL;
        *pp = b;
        nblocked++;
    }
    b->dest = d;
}

/* ---- deliver clients and jobs ---- */

struct deliverer {
    struct client *c;
    enum sched_pool pool;           /* deliver (remote, LMTP) or the local role */
    uint32_t wants[WANTS_MAX];      /* request ids of its D_WANTs, a ring */
    size_t whead, nwants;
    struct deliverer *next;
};
static struct deliverer *deliverers, *rr_next;

struct job {
    uint64_t id;
    struct deliverer *dl;
    enum sched_pool pool;
    struct dest *dest;
    char qid[QID_LEN + 1];
    char sender[ADDR_MAX + 1];
    uint64_t arrival;
    size_t n;
    uint32_t rcpt[SCHED_JOB_RCPTS];
    unsigned attempts[SCHED_JOB_RCPTS];
    struct job *next;
};
static struct job *jobs;
static size_t njobs[POOL_COUNT];
static uint64_t next_job_id = 1;

static struct deliverer *deliverer_of(struct client *c)
{
    for (struct deliverer *d = deliverers; d; d = d->next)
        if (d->c == c)
            return d;
    return NULL;
}

/* A deliver of the pool with a free slot, round robin. */
static struct deliverer *free_deliverer(enum sched_pool pool)
{
    struct deliverer *d = rr_next ? rr_next : deliverers;

    for (struct deliverer *start = d; d;) {
        if (d->nwants && !d->c->dead && d->pool == pool) {
            rr_next = d->next;
            return d;
        }
        d = d->next ? d->next : deliverers;
        if (d == start)
            break;
    }
    return NULL;
}

/* Whether a job may start: a free slot, and a queue index that records
 * results (while writes fail, a delivery's result could not be kept, and
 * the recipient would be delivered again and again). */
static int jammed[POOL_COUNT];     /* in this pass: a deliverer's queue is full */

static int slots_free(enum sched_pool pool)
{
    const char *code, *text;

    return !jammed[pool] && njobs[pool] < localroute_pool_limit(cfg, pool) && free_deliverer(pool) != NULL &&
           batcher_refusal(&code, &text) == 0;
}

/* A free slot in one of the pools flagged. */
static int flagged_slots_free(const int *flag)
{
    for (int p = 0; p < POOL_COUNT; p++)
        if (flag[p] && slots_free((enum sched_pool)p))
            return 1;
    return 0;
}

int scheduler_msg_active(const char *qid)
{
    for (struct job *j = jobs; j; j = j->next)
        if (strcmp(j->qid, qid) == 0)
            return 1;
    return 0;
}

size_t scheduler_njobs(void)
{
    size_t n = 0;

    for (int p = 0; p < POOL_COUNT; p++)
        n += njobs[p];
    return n;
}

void scheduler_each_job_qid(void (*fn)(const char *qid, void *arg), void *arg)
{
    for (struct job *j = jobs; j; j = j->next)
        fn(j->qid, arg);
}

/* ---- results waiting for the committer ---- */

struct pend {
    struct qstore_rcpt_update u;
    char reply[QREC_REPLY_MAX + 1];
    char relay[QREC_RELAY_MAX + 1];
};
static struct pend *pends;
static size_t npend, pend_cap;

struct rjob {
    struct commit_job job;
    struct qstore_rcpt_update *u;
    struct pend *p;
    char (*removed)[QID_LEN + 1];
};

static void submit_results(void);
static void scheduler_rescan_pool(enum sched_pool pool);

static void retry_cb(struct evloop *ev, void *arg)
{
    (void)ev;
    (void)arg;
    retry_timer = 0;
    submit_results();
}

static void rjob_done(struct commit_job *job)
{
    struct rjob *r = (struct rjob *)job;

    if (job->status != COMMIT_OK)
        log_error("recording %zu delivery result(s) failed: %s; they are tried again",
                  job->nupdates, job->err);
    for (size_t i = 0; i < job->nupdates; i++) {
        ks_del(&inflight, r->u[i].qid, r->u[i].rcpt);
        if (job->status == COMMIT_OK && (i == 0 || strcmp(r->u[i].qid, r->u[i - 1].qid) != 0))
            bounce_check(r->u[i].qid); /* a notice to write? (bounce.c) */
    }
    if (job->status == COMMIT_OK)
        for (size_t i = 0; i < job->nremoved; i++) {
            /* the record is gone and durable: now the file (a crash in
             * between leaves a file without a record: reconcile removes it) */
            spool_remove(r->removed[i]);
            log_info("%s: removed", r->removed[i]);
        }
    if (job->status != COMMIT_OK)
        scheduler_rescan_pool(POOL_COUNT); /* released while still due: before the cursor */
    free(r->u);
    free(r->p);
    free(r->removed);
    free(r);
    submit_results();
    scheduler_kick();
}

static void submit_results(void)
{
    struct rjob *r;
    size_t n;

    if (!npend)
        return;
    if (!committer_ready()) {
        if (!retry_timer && !stopping)
            retry_timer = ev_timer(loop, RETRY_MS, retry_cb, NULL);
        if (!stopping)
            return;
    }
    n = npend < RESULT_BATCH ? npend : RESULT_BATCH;
    r = calloc(1, sizeof(*r));
    if (r) {
        r->u = calloc(n, sizeof(*r->u));
        r->p = calloc(n, sizeof(*r->p));
        r->removed = calloc(n, sizeof(*r->removed));
    }
    if (!r || !r->u || !r->p || !r->removed) {
        if (r) {
            free(r->u);
            free(r->p);
            free(r->removed);
        }
        free(r);
        if (!retry_timer && !stopping)
            retry_timer = ev_timer(loop, 100, retry_cb, NULL);
        return;
    }
    memcpy(r->p, pends, n * sizeof(*pends));
    memmove(pends, pends + n, (npend - n) * sizeof(*pends));
    npend -= n;
    for (size_t i = 0; i < n; i++) {
        r->u[i] = r->p[i].u;
        r->u[i].reply = r->p[i].reply;
        r->u[i].relay = r->p[i].relay[0] ? r->p[i].relay : NULL;
    }
    r->job.updates = r->u;
    r->job.nupdates = n;
    r->job.removed = r->removed;
    r->job.done = rjob_done;
    committer_submit(&r->job);
}

/* Queues one recipient's new state; the recipient must be in `inflight`
 * already (it stays there until the state is durable). relay (or NULL)
 * and notice (QN_* bits) are for the notices (bounce.c). */
static void queue_result(const char *qid, uint32_t rcpt, unsigned status, unsigned attempts,
                         uint64_t next_try, const char *dsn, const char *reply, const char *relay,
                         unsigned notice)
{
    struct pend *p;

    if (npend == pend_cap) {
        size_t cap = pend_cap ? pend_cap * 2 : 256;
        struct pend *np = realloc(pends, cap * sizeof(*np));
        if (!np) {
            log_error("%s: out of memory recording a delivery result; tried again later", qid);
            ks_del(&inflight, qid, rcpt);
            return;
        }
        pends = np;
        pend_cap = cap;
    }
    p = &pends[npend++];
    memset(&p->u, 0, sizeof(p->u));
    str_copy(p->u.qid, qid, sizeof(p->u.qid));
    p->u.rcpt = rcpt;
    p->u.status = status;
    p->u.attempts = attempts;
    p->u.next_try = next_try;
    str_copy(p->u.dsn, dsn ? dsn : "", sizeof(p->u.dsn));
    str_copy(p->reply, reply ? reply : "", sizeof(p->reply));
    str_copy(p->relay, relay ? relay : "", sizeof(p->relay));
    p->u.notice_set = notice;
}

static void queue_update(const char *qid, uint32_t rcpt, unsigned status, unsigned attempts,
                         uint64_t next_try, const char *dsn, const char *reply)
{
    queue_result(qid, rcpt, status, attempts, next_try, dsn, reply, NULL, 0);
}

static double jitter(void)
{
    return (double)random() / ((double)RAND_MAX + 1.0);
}

/* The SPEC 6 delivery line of a recipient that expired in the queue (no
 * relay: queue-mgr decided it), so that grep QUEUEID tells its end. */
static void log_expired_rcpt(const char *qid, uint32_t rcpt, uint64_t arrival, uint64_t now,
                             const char *dsn, const char *reply)
{
    struct qrcpt rc;
    char addr[ADDR_MAX + 1], why[QREC_REPLY_MAX + 1];
    unsigned long d = now > arrival ? (unsigned long)(now - arrival) : 0;

    memset(&rc, 0, sizeof(rc));
    str_copy(addr, "?", sizeof(addr));
    if (qstore_get_rcpt(store, qid, rcpt, &rc) == 0) {
        str_copy(addr, rc.addr, sizeof(addr));
        qrcpt_free(&rc);
    }
    log_sanitize(reply, strlen(reply), why, sizeof(why));
    log_info("%s: to=<%s>, relay=none, delay=%lu, delays=0/%lu/0/0, dsn=%s, status=bounced (%s)",
             qid, addr, d, d, dsn, why);
}

/* A deferral at now after `attempts` failed tries (counted already), or
 * the bounce when the message has outlived queue_lifetime. Returns 1 when
 * it expired. */
static int defer_or_expire(const char *qid, uint32_t rcpt, unsigned attempts, uint64_t arrival,
                           uint64_t now, const char *dsn, const char *reply, const char *relay)
{
    if (policy_expired(arrival, now, cfg->queue_lifetime)) {
        char xdsn[16], xreply[QREC_REPLY_MAX + 1];
        policy_expire_text(arrival, now, dsn, reply, xdsn, sizeof(xdsn), xreply, sizeof(xreply));
        queue_update(qid, rcpt, RCPT_BOUNCED, attempts, 0, xdsn, xreply);
        log_expired_rcpt(qid, rcpt, arrival, now, xdsn, xreply);
        return 1;
    }
    queue_result(qid, rcpt, RCPT_DEFERRED, attempts,
                 now + policy_backoff(attempts ? attempts : 1, cfg->min_backoff, cfg->max_backoff,
                                      jitter()),
                 dsn, reply, relay, 0);
    return 0;
}

static void log_expired(const char *qid, const char *sender)
{
    log_info("%s: from=<%s>, status=expired, returned to sender", qid, sender);
}

/* ---- the pass ---- */

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

struct group {
    char dest[DEST_MAX];
    enum dest_kind kind;
    size_t n;
    uint32_t *idx;
};

/* 0 sent, -1 not (out of memory, or the connection's descriptor queue is
 * full until it drains): the recipients stay due for a later pass. */
static int send_job(struct deliverer *dl, const struct qrec *r, struct dest *d, const struct group *g,
                    size_t from, size_t n, int fd)
{
    struct job *j = calloc(1, sizeof(*j));
    struct ipc_out m;
    uint32_t reqid;

    if (!j)
        return -1;
    reqid = dl->wants[dl->whead];
    j->id = next_job_id++;
    j->dl = dl;
    j->pool = dl->pool;
    j->dest = d;
    str_copy(j->qid, r->qid, sizeof(j->qid));
    str_copy(j->sender, r->sender, sizeof(j->sender));
    j->arrival = r->arrival;
    ipc_out_begin(&m, D_JOB, reqid);
    ipc_out_u64(&m, T_D_JOB, j->id);
    ipc_out_str(&m, T_QID, r->qid);
    ipc_out_str(&m, T_D_DEST, d->name);
    ipc_out_str(&m, T_SENDER, r->sender);
    if (r->envid[0])
        ipc_out_str(&m, T_ENVID, r->envid);
    ipc_out_u64(&m, T_RET, r->ret);
    ipc_out_u64(&m, T_BODY, r->body);
    ipc_out_u64(&m, T_FLAGS, r->flags);
    ipc_out_u64(&m, T_ARRIVAL, r->arrival);
    ipc_out_u64(&m, T_SIZE, r->size);
    ipc_out_u64(&m, T_D_DISPATCH, wall_ms());
    for (size_t i = 0; i < n; i++) {
        const struct qrcpt *rc = &r->rcpt[g->idx[from + i]];
        struct ipc_out one;
        ipc_body_begin(&one);
        ipc_out_u64(&one, T_R_INDEX, g->idx[from + i]);
        ipc_out_str(&one, T_R_ADDR, rc->addr);
        if (rc->orcpt)
            ipc_out_str(&one, T_R_ORCPT, rc->orcpt);
        if (rc->alias)
            ipc_out_str(&one, T_R_ALIAS, rc->alias);
        ipc_out_u64(&one, T_R_NOTIFY, rc->notify);
        ipc_out_u64(&one, T_R_ATTEMPTS, rc->attempts);
        ipc_out_nested(&m, T_RCPT, &one);
        ipc_out_free(&one);
        j->rcpt[i] = g->idx[from + i];
        j->attempts[i] = rc->attempts;
    }
    j->n = n;
    if (client_send(dl->c, &m, fd) < 0) {
        free(j);
        return -1;
    }
    dl->whead = (dl->whead + 1) % WANTS_MAX;
    dl->nwants--;
    for (size_t i = 0; i < n; i++)
        ks_add(&inflight, j->qid, j->rcpt[i]);
    d->active++;
    j->next = jobs;
    jobs = j;
    njobs[j->pool]++;
    return 0;
}

/* Returns the destination when it left recipients waiting at its limit. */
static struct dest *handle_group(const struct qrec *r, const struct group *g, uint64_t now, int *fd)
{
    enum sched_pool pool = localroute_pool(cfg, g->kind);
    struct dest *d;
    size_t from;

    if (g->kind == DEST_BAD) {
        for (size_t i = 0; i < g->n; i++) {
            const struct qrcpt *rc = &r->rcpt[g->idx[i]];
            if (ks_add(&inflight, r->qid, g->idx[i]) == 0)
                queue_update(r->qid, g->idx[i], RCPT_DEFERRED, rc->attempts, now + cfg->max_backoff,
                             "4.3.0", "bad recipient address");
        }
        log_info("%s: %zu recipient(s) of %s deferred: %s", r->qid, g->n, g->dest, "bad recipient address");
        return NULL;
    }
    d = g->kind == DEST_LOCAL ? localroute_dest(cfg, dest_get) : dest_get(g->dest);
    if (!d)
        return NULL;
    if (dest_dead(d, now)) {
        char why[QREC_REPLY_MAX + 1];
        int expired = 0;
        snprintf(why, sizeof(why), "delivery temporarily suspended: %s",
                 d->reason[0] ? d->reason : "destination not reachable");
        for (size_t i = 0; i < g->n; i++) {
            const struct qrcpt *rc = &r->rcpt[g->idx[i]];
            if (ks_add(&inflight, r->qid, g->idx[i]) < 0)
                continue;
            if (policy_expired(r->arrival, now, cfg->queue_lifetime)) {
                expired |= defer_or_expire(r->qid, g->idx[i], rc->attempts, r->arrival, now,
                                           rc->dsn, rc->reply, NULL);
                continue;
            }
            uint64_t next = now + policy_backoff(rc->attempts ? rc->attempts : 1, cfg->min_backoff,
                                                 cfg->max_backoff, jitter());
            if (next < d->dead_until)
                next = d->dead_until;
            queue_update(r->qid, g->idx[i], RCPT_DEFERRED, rc->attempts, next,
                         rc->dsn[0] ? rc->dsn : "4.4.1", why);
        }
        if (expired)
            log_expired(r->qid, r->sender);
        return NULL;
    }
    for (from = 0; from < g->n && dest_can_start(d, now) && slots_free(pool);) {
        size_t n = g->n - from < SCHED_JOB_RCPTS ? g->n - from : SCHED_JOB_RCPTS;
        if (*fd < 0)
            *fd = openat(spool_dir_fd(), r->qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (*fd < 0) {
            log_warning("%s: cannot open the queue file: %s; deferred", r->qid, strerror(errno));
            for (size_t i = from; i < g->n; i++)
                if (ks_add(&inflight, r->qid, g->idx[i]) == 0)
                    queue_update(r->qid, g->idx[i], RCPT_DEFERRED, r->rcpt[g->idx[i]].attempts,
                                 now + cfg->max_backoff, "4.3.0", REASON_NOFILE);
            return NULL;
        }
        /* a full descriptor queue (64 a connection) drains when written;
         * if it does not, the pool takes nothing more in this pass (no
         * spool file opened in vain for every message that follows) */
        if (send_job(free_deliverer(pool), r, d, g, from, n, *fd) < 0 &&
            (clients_flush(), send_job(free_deliverer(pool), r, d, g, from, n, *fd) < 0)) {
            jammed[pool] = 1;
            return NULL;
        }
        from += n;
    }
    return from < g->n && !dest_can_start(d, now) ? d : NULL;
}

static void handle_message(const char *qid, uint64_t now)
{
    struct group g[GROUPS_MAX];
    size_t ng = 0;
    struct qrec r;
    char err[128];
    int fd = -1;

    if (qstore_get(store, qid, &r, err, sizeof(err)) != 0)
        return;
    if (r.flags & QF_HOLD)
        goto out;
    for (size_t i = 0; i < r.nrcpt; i++) {
        const struct qrcpt *rc = &r.rcpt[i];
        char dest[DEST_MAX];
        enum dest_kind kind;
        size_t k;
        if ((rc->status != RCPT_PENDING && rc->status != RCPT_DEFERRED) || rc->next_try > now ||
            ks_has(&inflight, qid, (uint32_t)i))
            continue;
        kind = policy_dest(cfg, rc->addr, dest, sizeof(dest));
        for (k = 0; k < ng; k++)
            if (strcmp(g[k].dest, dest) == 0)
                break;
        if (k == ng) {
            if (ng == GROUPS_MAX)
                continue; /* the next pass */
            str_copy(g[k].dest, dest, sizeof(g[k].dest));
            g[k].kind = kind;
            g[k].n = 0;
            g[k].idx = malloc(r.nrcpt * sizeof(*g[k].idx));
            if (!g[k].idx)
                continue;
            ng++;
        }
        g[k].idx[g[k].n++] = (uint32_t)i;
    }
    struct dest *wait = NULL;
    for (size_t k = 0; k < ng; k++) {
        struct dest *b = handle_group(&r, &g[k], now, &fd);
        if (k == 0)
            wait = b;
    }
    blocked_set(qid, ng == 1 ? wait : NULL);
out:
    for (size_t k = 0; k < ng; k++)
        free(g[k].idx);
    if (fd >= 0)
        close(fd);
    qrec_free(&r);
}

static void pass(void)
{
    struct qstore_due due[SCAN_SLICE], after;
    uint64_t now = now_s();
    size_t visited = 0;
    int have_after = 0, from_start, out_of_slots = 0;

    if (stopping)
        return;
    memset(jammed, 0, sizeof(jammed));
    int flagged[POOL_COUNT];
    memcpy(flagged, rescan_pool, sizeof(flagged));
    from_start = !have_cursor || (rescan && flagged_slots_free(flagged));
    if (from_start) {
        rescan = 0;
        memset(rescan_pool, 0, sizeof(rescan_pool));
    } else {
        after = cursor;
        have_after = 1;
    }
    while (visited < SCAN_MAX && !out_of_slots) {
        long n = qstore_scan_due(store, now, have_after ? &after : NULL, due, SCAN_SLICE);
        if (n < 0) {
            log_warning("queue index: schedule read failed");
            break;
        }
        for (long i = 0; i < n; i++) {
            struct blocked **b;
            if (ks_has(&inflight, due[i].qid, due[i].rcpt) || ks_has(&seen, due[i].qid, UINT32_MAX))
                continue;
            if (*(b = blocked_find(due[i].qid)) && !dest_can_start((*b)->dest, now))
                continue;
            if (ks_add(&seen, due[i].qid, UINT32_MAX) < 0)
                break;
            handle_message(due[i].qid, now);
        }
        visited += (size_t)n;
        if (n > 0) {
            after = due[n - 1];
            have_after = 1;
        }
        if (n < SCAN_SLICE)
            break;
        /* from the start and out of slots: what follows, up to the
         * cursor, was looked at before */
        out_of_slots = from_start && have_cursor && !flagged_slots_free(flagged) &&
                       qstore_due_cmp(&after, &cursor) < 0;
    }
    if (have_after && !out_of_slots) {
        cursor = after;
        have_cursor = 1;
    }
    ks_clear(&seen);
    submit_results();
    clients_flush();
}

static void kick_cb(struct evloop *ev, void *arg)
{
    (void)ev;
    (void)arg;
    kick_timer = 0;
    pass();
}

/* Capacity changed: the next pass looks from the start again. */
static void scheduler_rescan_pool(enum sched_pool pool)
{
    for (int p = 0; p < POOL_COUNT; p++)
        if (pool == POOL_COUNT || p == (int)pool)
            rescan_pool[p] = 1;
    rescan = 1;
    scheduler_kick();
}

void scheduler_rescan(void)
{
    rescan_pool[POOL_REMOTE] = rescan_pool[POOL_LOCAL] = 1;
    rescan = 1;
    scheduler_kick();
}

void scheduler_kick(void)
{
    if (!kick_timer && !stopping && loop)
        kick_timer = ev_timer(loop, SCHED_KICK_MS, kick_cb, NULL);
}

static void blocked_clear(void)
{
    for (size_t i = 0; i < HASH_SIZE; i++)
        while (blocked[i]) {
            struct blocked *b = blocked[i];
            blocked[i] = b->next;
            free(b);
        }
    nblocked = 0;
}

/* Many destinations known: forget the idle ones (no job in flight, not
 * dead), as Postfix drops idle queues. The blocked cache points at
 * destinations, so it goes too (it is only a shortcut). */
static void dests_sweep(void)
{
    if (ndests <= DESTS_KEEP)
        return;
    blocked_clear();
    for (size_t i = 0; i < HASH_SIZE; i++)
        for (struct dest **pp = &dests[i]; *pp;) {
            struct dest *d = *pp;
            if (d->active == 0 && !d->dead_until) {
                *pp = d->next;
                free(d);
                ndests--;
            } else {
                pp = &d->next;
            }
        }
}

static void tick_cb(struct evloop *ev, void *arg)
{
    (void)arg;
    tick_timer = ev_timer(ev, SCHED_TICK_MS, tick_cb, NULL);
    dests_sweep();
    rescan = 1;
    rescan_pool[POOL_REMOTE] = rescan_pool[POOL_LOCAL] = 1;
    pass();
}

/* ---- deliver frames ---- */

static void job_free(struct job *j)
{
    for (struct job **pp = &jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    njobs[j->pool]--;
    qops_job_ended(j->qid); /* a deleted message's file goes once unread */
    free(j);
}

struct result {
    uint32_t rcpt;
    unsigned status;
    char dsn[16];
    char reply[QREC_REPLY_MAX + 1];
};

static int dsn_valid(const char *s)
{
    /* empty, or "c.s.d" with class 2, 4 or 5 and 1-3 digit parts */
    int parts = 0, digits = 0;

    if (!*s)
        return 1;
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    for (const char *p = s;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 3)
                return 0;
        } else if (*p == '.' || !*p) {
            if (!digits)
                return 0;
            parts++;
            digits = 0;
            if (!*p)
                break;
        } else {
            return 0;
        }
    }
    return parts == 3;
}

/* "host[ip]:port": printable ASCII without spaces (it goes into notices). */
static int relay_valid(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int parse_rcpt_result(const struct ipc_field *f, struct result *res)
{
    struct ipc_iter it;
    struct ipc_field g;
    uint64_t v;
    int rc, have_idx = 0, have_status = 0;

    memset(res, 0, sizeof(*res));
    ipc_iter_init(&it, f->val, f->len);
    while ((rc = ipc_iter_next(&it, &g)) == 1) {
        switch (g.tag) {
        case T_R_INDEX:
            if (ipc_field_u64(&g, &v) < 0 || v >= QREC_MAX_RCPT)
                return -1;
            res->rcpt = (uint32_t)v;
            have_idx = 1;
            break;
        case T_R_STATUS:
            if (ipc_field_u64(&g, &v) < 0 ||
                (v != RCPT_SENT && v != RCPT_DEFERRED && v != RCPT_BOUNCED))
                return -1;
            res->status = (unsigned)v;
            have_status = 1;
            break;
        case T_R_DSN:
            if (ipc_field_str(&g, res->dsn, sizeof(res->dsn)) < 0 || !dsn_valid(res->dsn))
                return -1;
            break;
        case T_R_REPLY:
            if (ipc_field_str(&g, res->reply, sizeof(res->reply)) < 0)
                return -1;
            break;
        }
    }
    return rc < 0 || !have_idx || !have_status ? -1 : 0;
}

/* Where a job's results came from (D_RELAY, D_HOP_DSN): for notices. */
struct origin {
    const char *relay;      /* NULL: no session answered (DNS, local) */
    int hop_dsn;
};

/* Applies one validated result at now; attempts are the recipient's
 * failed tries before this one. Returns 1 when it expired the recipient.
 * A success through a hop that offered DSN is that hop's to report (RFC
 * 3461 6.2.6.2): no success notice of ours; through one that did not,
 * ours says "relayed"; without a session (local delivery), "delivered". */
static int apply(const char *qid, const struct result *res, unsigned attempts, uint64_t arrival,
                 uint64_t now, const struct origin *o)
{
    switch (res->status) {
    case RCPT_SENT:
        queue_result(qid, res->rcpt, RCPT_SENT, attempts, 0, res->dsn, res->reply, o->relay,
                     o->hop_dsn ? QN_SUCCESS : o->relay ? QN_RELAYED : 0);
        return 0;
    case RCPT_BOUNCED:
        queue_result(qid, res->rcpt, RCPT_BOUNCED, attempts, 0, res->dsn, res->reply, o->relay, 0);
        return 0;
    default:
        return defer_or_expire(qid, res->rcpt, attempts + 1, arrival, now, res->dsn, res->reply, o->relay);
    }
}

/* A result for a job this queue-mgr does not know (it outlived a restart,
 * or its deliver reconnected): applied when the recipient is still to
 * deliver and not in flight in another job. */
static void apply_unknown(const char *qid, const struct result *res, uint64_t now, const struct origin *o)
{
    struct qrcpt rc;
    struct qrec r;
    char err[64];
    int expired;

    if (ks_has(&inflight, qid, res->rcpt) || qstore_get_rcpt(store, qid, res->rcpt, &rc) != 0)
        return;
    unsigned status = rc.status, attempts = rc.attempts;
    qrcpt_free(&rc);
    if (status != RCPT_PENDING && status != RCPT_DEFERRED)
        return;
    if (qstore_get(store, qid, &r, err, sizeof(err)) != 0)
        return;
    if (ks_add(&inflight, qid, res->rcpt) == 0) {
        expired = apply(qid, res, attempts, r.arrival, now, o);
        if (expired)
            log_expired(qid, r.sender);
    }
    qrec_free(&r);
}

static void handle_result(struct deliverer *dl, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    struct result *res = NULL;
    size_t nres = 0, cap = 0;
    uint64_t jobid = 0, flags = 0, now = now_s();
    char qid[QID_LEN + 1] = "", relay[QREC_RELAY_MAX + 1] = "";
    struct origin o = { NULL, 0 };
    uint64_t hop_dsn = 0;
    const char *why = NULL;
    int rc;

    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1 && !why) {
        switch (f.tag) {
        case T_D_JOB:
            if (ipc_field_u64(&f, &jobid) < 0)
                why = "bad job id";
            break;
        case T_QID:
            if (ipc_field_str(&f, qid, sizeof(qid)) < 0 || !qid_valid(qid))
                why = "bad queue id";
            break;
        case T_D_FLAGS:
            if (ipc_field_u64(&f, &flags) < 0 || (flags & ~(uint64_t)(D_F_DEST_UNREACHABLE | D_F_DEST_REACHED)))
                why = "bad flags";
            break;
        case T_D_RELAY:
            if (ipc_field_str(&f, relay, sizeof(relay)) < 0 || !relay_valid(relay))
                why = "bad relay";
            break;
        case T_D_HOP_DSN:
            if (ipc_field_u64(&f, &hop_dsn) < 0 || hop_dsn > 1)
                why = "bad hop DSN flag";
            break;
        case T_RCPT:
            if (nres == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct result *nr = nc <= QREC_MAX_RCPT ? realloc(res, nc * sizeof(*nr)) : NULL;
                if (!nr) {
                    why = "too many results";
                    break;
                }
                res = nr;
                cap = nc;
            }
            if (parse_rcpt_result(&f, &res[nres]) < 0)
                why = "bad recipient result";
            else
                nres++;
            break;
        }
    }
    if (!why && rc < 0)
        why = "malformed D_RESULT";
    if (!why && !qid[0])
        why = "D_RESULT without a queue id";
    if (why) {
        free(res);
        client_close(dl->c, why);
        return;
    }
    o.relay = relay[0] ? relay : NULL;
    o.hop_dsn = (int)hop_dsn;
    struct job *j;
    for (j = jobs; j; j = j->next)
        if (j->id == jobid)
            break;
    if (j && (j->dl != dl || strcmp(j->qid, qid) != 0))
        j = NULL; /* not that deliver's, or not that message: as unknown */
    if (!j) {
        for (size_t i = 0; i < nres; i++)
            apply_unknown(qid, &res[i], now, &o);
        free(res);
        submit_results();
        return;
    }
    const char *reason = NULL;
    int expired = 0;
    for (size_t i = 0; i < j->n; i++) {
        size_t k;
        for (k = 0; k < nres; k++)
            if (res[k].rcpt == j->rcpt[i])
                break;
        /* the in-flight mark stays until the result is durable */
        if (k < nres) {
            metrics_delivery(j->dest->name, res[k].status);
            expired |= apply(qid, &res[k], j->attempts[i], j->arrival, now, &o);
            if (res[k].status == RCPT_DEFERRED && !reason && res[k].reply[0])
                reason = res[k].reply;
        } else {
            struct result none = { .rcpt = j->rcpt[i], .status = RCPT_DEFERRED, .dsn = "4.3.0" };
            str_copy(none.reply, REASON_NORESULT, sizeof(none.reply));
            expired |= apply(qid, &none, j->attempts[i], j->arrival, now, &o);
        }
    }
    if (expired)
        log_expired(qid, j->sender);
    struct dest_limits l;
    limits(&l);
    if (dest_job_done(j->dest, (unsigned)flags, reason, now, &l))
        log_info("%s: destination %s is not reachable: delivery suspended for %us", qid,
                 j->dest->name, l.dead_time);
    enum sched_pool pool = j->pool;
    job_free(j);
    free(res);
    submit_results();
    scheduler_rescan_pool(pool);
}

void scheduler_deliver_frame(struct client *c, const struct ipc_msg *m)
{
    struct deliverer *dl = deliverer_of(c);
    char why[64];

    if (!dl) {
        dl = calloc(1, sizeof(*dl));
        if (!dl) {
            client_close(c, "out of memory");
            return;
        }
        dl->c = c;
        dl->pool = localroute_pool_of(c->kind);
        dl->next = deliverers;
        deliverers = dl;
    }
    switch (m->type) {
    case D_WANT:
        if (dl->nwants == WANTS_MAX) {
            client_close(c, "too many D_WANT frames");
            return;
        }
        dl->wants[(dl->whead + dl->nwants) % WANTS_MAX] = m->reqid;
        dl->nwants++;
        scheduler_rescan_pool(dl->pool);
        return;
    case D_RESULT:
        handle_result(dl, m);
        return;
    }
    snprintf(why, sizeof(why), "unexpected message type %u", m->type);
    client_close(c, why);
}

void scheduler_deliver_gone(struct client *c)
{
    struct deliverer *dl = deliverer_of(c);
    size_t released = 0;

    if (!dl)
        return;
    for (struct job *j = jobs, *jn; j; j = jn) {
        jn = j->next;
        if (j->dl != dl)
            continue;
        /* due again at once: nothing was recorded for them */
        for (size_t i = 0; i < j->n; i++)
            ks_del(&inflight, j->qid, j->rcpt[i]);
        if (j->dest->active)
            j->dest->active--;
        released++;
        job_free(j);
    }
    if (released)
        log_warning("%s: %zu job(s) released, their recipients are due again", REASON_LOST, released);
    for (struct deliverer **pp = &deliverers; *pp; pp = &(*pp)->next)
        if (*pp == dl) {
            *pp = dl->next;
            break;
        }
    if (rr_next == dl)
        rr_next = NULL;
    enum sched_pool pool = dl->pool;
    free(dl);
    scheduler_rescan_pool(pool);
}

/* ---- flush ---- */

static void revive_all(void)
{
    for (size_t i = 0; i < HASH_SIZE; i++)
        for (struct dest *d = dests[i]; d; d = d->next)
            dest_revive(d);
}

/* Makes one recipient due now when it is deferred to later; 1 if it was. */
static int flush_one(const char *qid, uint32_t idx, uint64_t now, struct qstore_rcpt_update *u,
                     char *reply, size_t *nu)
{
    struct qrcpt rc;

    if (ks_has(&inflight, qid, idx) || qstore_get_rcpt(store, qid, idx, &rc) != 0)
        return 0;
    int due = (rc.status == RCPT_PENDING || rc.status == RCPT_DEFERRED) && rc.next_try > now;
    if (due) {
        struct qstore_rcpt_update *x = &u[*nu];
        memset(x, 0, sizeof(*x));
        str_copy(x->qid, qid, sizeof(x->qid));
        x->rcpt = idx;
        x->status = rc.status;
        x->attempts = rc.attempts;
        x->next_try = now;
        memcpy(x->dsn, rc.dsn, sizeof(x->dsn));
        str_copy(reply + *nu * (QREC_REPLY_MAX + 1), rc.reply ? rc.reply : "", QREC_REPLY_MAX + 1);
        x->reply = reply + *nu * (QREC_REPLY_MAX + 1);
        ++*nu;
    }
    qrcpt_free(&rc);
    return due;
}

static int flush_write(struct qstore_rcpt_update *u, size_t *nu)
{
    char err[256];
    int rc = *nu ? qstore_update_rcpts(store, u, *nu, NULL, err, sizeof(err)) : 0;

    if (rc != 0)
        log_warning("flush: %s", err);
    *nu = 0;
    return rc;
}

long scheduler_flush(const char *qid, const char *domain)
{
    enum { FB = 256 };
    struct qstore_rcpt_update *u = calloc(FB, sizeof(*u));
    char *reply = malloc((size_t)FB * (QREC_REPLY_MAX + 1));
    uint64_t now = now_s();
    size_t nu = 0;
    long count = 0;
    int failed = 0;

    if (!u || !reply) {
        free(u);
        free(reply);
        return -1;
    }
    if (qid) {
        struct qrec r;
        char err[64];
        if (qstore_get(store, qid, &r, err, sizeof(err)) == 0) {
            for (size_t i = 0; i < r.nrcpt && !failed; i++) {
                char dest[DEST_MAX];
                if (nu == FB)
                    failed = flush_write(u, &nu) != 0;
                count += flush_one(qid, (uint32_t)i, now, u, reply, &nu);
                if (policy_dest(cfg, r.rcpt[i].addr, dest, sizeof(dest)) == DEST_REMOTE) {
                    struct dest *d = dest_get(dest);
                    if (d)
                        dest_revive(d);
                }
            }
            qrec_free(&r);
        }
    } else {
        struct qstore_due due[SCAN_SLICE], after;
        int have_after = 0;
        char low[DEST_MAX] = "";
        if (domain) {
            for (size_t i = 0; domain[i] && i + 1 < sizeof(low); i++)
                low[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
            low[strnlen(domain, sizeof(low) - 1)] = 0;
        }
        /* the whole schedule, in slices: every recipient still to deliver */
        for (;;) {
            long n = qstore_scan_due(store, UINT64_MAX, have_after ? &after : NULL, due, SCAN_SLICE);
            if (n < 0) {
                failed = 1;
                break;
            }
            for (long i = 0; i < n && !failed; i++) {
                if (due[i].next_try <= now)
                    continue;
                if (domain) {
                    struct qrcpt rc;
                    if (qstore_get_rcpt(store, due[i].qid, due[i].rcpt, &rc) != 0)
                        continue;
                    const char *at = strrchr(rc.addr, '@');
                    int match = at && strcasecmp(at + 1, low) == 0;
                    qrcpt_free(&rc);
                    if (!match)
                        continue;
                }
                if (nu == FB)
                    failed = flush_write(u, &nu) != 0;
                count += flush_one(due[i].qid, due[i].rcpt, now, u, reply, &nu);
            }
            if (n < SCAN_SLICE || failed)
                break;
            after = due[n - 1];
            have_after = 1;
        }
        if (domain) {
            char dest[DEST_MAX], addr[DEST_MAX + 2];
            snprintf(addr, sizeof(addr), "x@%s", low);
            if (policy_dest(cfg, addr, dest, sizeof(dest)) == DEST_REMOTE) {
                struct dest *d = dest_get(dest);
                if (d)
                    dest_revive(d);
            }
        } else {
            revive_all();
        }
    }
    if (!failed)
        failed = flush_write(u, &nu) != 0;
    free(u);
    free(reply);
    scheduler_rescan();
    return failed ? -1 : count;
}

/* ---- start and stop ---- */

static void reader_check(struct evloop *ev, void *arg)
{
    int n = qstore_reader_check(store);

    (void)arg;
    if (n < 0)
        log_warning("queue index reader check failed");
    else if (n > 0)
        log_info("queue index: cleared %d stale reader slot(s)", n);
    reader_timer = ev_timer(ev, READER_CHECK_MS, reader_check, NULL);
}

void scheduler_start(struct evloop *ev, struct qstore *q, const struct config *conf)
{
    loop = ev;
    store = q;
    cfg = conf;
    stopping = 0;
    srandom((unsigned)(now_ms() ^ (uint64_t)getpid()));
    reader_timer = ev_timer(ev, READER_CHECK_MS, reader_check, NULL);
    tick_timer = ev_timer(ev, SCHED_TICK_MS, tick_cb, NULL);
    scheduler_kick();
}

void scheduler_set_config(const struct config *conf)
{
    cfg = conf;
}

void scheduler_stop(void)
{
    uint64_t *t[] = { &reader_timer, &tick_timer, &kick_timer, &retry_timer };

    stopping = 1;
    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        if (*t[i])
            ev_timer_cancel(loop, *t[i]);
        *t[i] = 0;
    }
    /* results already received are recorded: the committer takes them
     * before it stops (handoff_stop waits for every job) */
    while (npend)
        submit_results();
    blocked_clear();
    ks_clear(&seen);
}
