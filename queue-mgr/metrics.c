/*
 * metrics.c - counters, census and the Prometheus text (metrics.h).
 *
 * Counters live in memory (they restart at 0 with queue-mgr, as
 * Prometheus counters may). The per-destination delivery counters are
 * capped at DEST_MAX_TRACKED destinations, the rest is "other", so that
 * a queue of a million domains cannot blow up the scrape. The census
 * reads the index in one short read transaction per call, peeking at
 * fields without decoding records. Must never print a byte of queued
 * data unescaped: destinations are label values (escaped), addresses are
 * never printed.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "listing.h"
#include "log.h"
#include "metrics_http.h"
#include "policy.h"
#include "proto.h"
#include "qrecord.h"
#include "scheduler.h"
#include "util.h"

#define DEST_MAX_TRACKED 100
#define TOP_DOMAINS 10
#define DOM_HASH 65536
#define DOM_MAX 200000
#define RING 3600

static struct qstore *store;
static char run_dir[CONF_MAX_STR];

/* ---- delivery counters ---- */

static const char *const status_name[] = { "pending", "deferred", "sent", "bounced" };

struct dcount {
    char name[DEST_MAX];
    uint64_t n[4];
};
static struct dcount dests[DEST_MAX_TRACKED + 1]; /* the last one is "other" */
static size_t ndests;

/* per-second counts of the last hour: received, sent, deferred, bounced */
enum { R_RECEIVED, R_SENT, R_DEFERRED, R_BOUNCED, R_N };
static struct {
    uint64_t sec;
    uint32_t n[R_N];
} ring[RING];

static void ring_add(int what, uint32_t n)
{
    uint64_t now = (uint64_t)time(NULL);
    size_t i = now % RING;

    if (ring[i].sec != now) {
        memset(&ring[i], 0, sizeof(ring[i]));
        ring[i].sec = now;
    }
    ring[i].n[what] += n;
}

static uint64_t ring_sum(int what, uint64_t seconds)
{
    uint64_t now = (uint64_t)time(NULL), sum = 0;

    for (size_t i = 0; i < RING; i++)
        if (ring[i].sec && ring[i].sec + seconds > now && ring[i].sec <= now)
            sum += ring[i].n[what];
    return sum;
}

void metrics_delivery(const char *dest, unsigned status)
{
    size_t i;

    if (status > RCPT_BOUNCED)
        return;
    for (i = 0; i < ndests; i++)
        if (strcmp(dests[i].name, dest) == 0)
            break;
    if (i == ndests) {
        if (ndests < DEST_MAX_TRACKED) {
            str_copy(dests[i].name, dest, sizeof(dests[i].name));
            ndests++;
        } else {
            i = DEST_MAX_TRACKED;
            str_copy(dests[i].name, "other", sizeof(dests[i].name));
        }
    }
    dests[i].n[status]++;
    ring_add(status == RCPT_SENT ? R_SENT : status == RCPT_BOUNCED ? R_BOUNCED : R_DEFERRED, 1);
}

/* ---- commits ---- */

static const uint64_t batch_le[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
static const uint64_t ms_le[] = { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500 };
#define NB (sizeof(batch_le) / sizeof(batch_le[0]))
static uint64_t batch_bucket[NB + 1], batch_sum, batch_count;
static uint64_t ms_bucket[NB + 1], ms_sum, commit_failed;
static uint64_t received[2][2]; /* [tls][auth] */

static void observe(uint64_t *bucket, const uint64_t *le, uint64_t v)
{
    size_t i;

    for (i = 0; i < NB && v > le[i]; i++)
        ;
    bucket[i]++;
}

/* A text field of a record body, without decoding the rest. */
static int peek_str(const void *body, size_t len, uint16_t tag, char *out, size_t outlen)
{
    struct ipc_iter it;
    struct ipc_field f;

    out[0] = 0;
    ipc_iter_init(&it, body, len);
    while (ipc_iter_next(&it, &f) == 1)
        if (f.tag == tag)
            return ipc_field_str(&f, out, outlen);
    return 1;
}

void metrics_commit(const struct commit_job *job)
{
    if (!job->n)
        return;
    if (job->status != COMMIT_OK) {
        commit_failed++;
        return;
    }
    observe(batch_bucket, batch_le, job->n);
    batch_sum += job->n;
    batch_count++;
    observe(ms_bucket, ms_le, job->elapsed_ms);
    ms_sum += job->elapsed_ms;
    for (size_t i = 0; i < job->n; i++) {
        char proto[16], auth[8];
        peek_str(job->items[i].val, job->items[i].len, T_PROTO, proto, sizeof(proto));
        /* an identity longer than auth[] is still an identity */
        int a = peek_str(job->items[i].val, job->items[i].len, T_AUTH, auth, sizeof(auth)) < 0 || auth[0];
        received[strstr(proto, "ESMTPS") != NULL][a]++;
    }
    ring_add(R_RECEIVED, (uint32_t)job->n);
}

/* ---- census ---- */

struct dom {
    char *name;
    uint64_t n;
    struct dom *next;
};

struct census {
    uint64_t msgs[4];           /* incoming, active, deferred, hold */
    uint64_t rcpts[3];          /* pending, deferred, held */
    uint64_t bytes, oldest;
    struct dom *dom[DOM_HASH];
    size_t ndom;
    uint64_t dom_other;
};

static unsigned dom_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % DOM_HASH;
}

static void dom_count(struct census *cs, const char *addr)
{
    const char *at = strrchr(addr, '@');
    char low[256];
    size_t i;

    str_copy(low, at ? at + 1 : "", sizeof(low));
    for (i = 0; low[i]; i++)
        if (low[i] >= 'A' && low[i] <= 'Z')
            low[i] = (char)(low[i] + 32);
    unsigned h = dom_hash(low);
    struct dom *d;
    for (d = cs->dom[h]; d; d = d->next)
        if (strcmp(d->name, low) == 0)
            break;
    if (!d && cs->ndom < DOM_MAX && (d = calloc(1, sizeof(*d))) != NULL) {
        if (!(d->name = strdup(low))) {
            free(d);
            d = NULL;
        } else {
            d->next = cs->dom[h];
            cs->dom[h] = d;
            cs->ndom++;
        }
    }
    if (d)
        d->n++;
    else
        cs->dom_other++;
}

static int census_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct census *cs = arg;
    struct ipc_iter it, ri;
    struct ipc_field f, g;
    uint64_t flags = 0, arrival = 0, size = 0, v;
    int tried = 0, left = 0;

    ipc_iter_init(&it, val, len);
    while (ipc_iter_next(&it, &f) == 1) {
        switch (f.tag) {
        case T_FLAGS: ipc_field_u64(&f, &flags); break;
        case T_ARRIVAL: ipc_field_u64(&f, &arrival); break;
        case T_SIZE: ipc_field_u64(&f, &size); break;
        case T_RCPT: {
            uint64_t status = 0, attempts = 0;
            char addr[ADDR_MAX + 1] = "";
            ipc_iter_init(&ri, f.val, f.len);
            while (ipc_iter_next(&ri, &g) == 1) {
                if (g.tag == T_R_STATUS && ipc_field_u64(&g, &v) == 0)
                    status = v;
                else if (g.tag == T_R_ATTEMPTS && ipc_field_u64(&g, &v) == 0)
                    attempts = v;
                else if (g.tag == T_R_ADDR && ipc_field_str(&g, addr, sizeof(addr)) < 0)
                    addr[0] = 0;
            }
            if (status != RCPT_PENDING && status != RCPT_DEFERRED)
                break;
            left++;
            tried |= attempts > 0 || status == RCPT_DEFERRED;
            cs->rcpts[(flags & QF_HOLD) ? 2 : status == RCPT_DEFERRED ? 1 : 0]++;
            dom_count(cs, addr);
            break;
        }
        }
    }
    if (!left)
        return 0; /* only bounced ones, kept for the notice: not listed by mailq either */
    cs->msgs[(flags & QF_HOLD) ? 3 : listing_active(qid) ? 1 : tried ? 2 : 0]++;
    cs->bytes += size;
    if (!cs->oldest || (arrival && arrival < cs->oldest))
        cs->oldest = arrival;
    return 0;
}

static void census_free(struct census *cs)
{
    for (size_t i = 0; i < DOM_HASH; i++)
        while (cs->dom[i]) {
            struct dom *d = cs->dom[i];
            cs->dom[i] = d->next;
            free(d->name);
            free(d);
        }
}

/* ---- rendering ---- */

void metrics_label(struct buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\' || ch == '"')
            buf_printf(out, "\\%c", ch);
        else if (ch == '\n')
            buf_printf(out, "\\n");
        else if (ch < 0x20 || ch > 0x7e)
            buf_printf(out, "?");
        else
            buf_printf(out, "%c", ch);
    }
}

static void head(struct buf *o, const char *name, const char *type, const char *help)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct buf *o, const char *name, const char *help, const uint64_t *le,
                      const uint64_t *bucket, uint64_t sum, uint64_t count, double scale)
{
    uint64_t cum = 0;

    head(o, name, "histogram", help);
    for (size_t i = 0; i < NB; i++) {
        cum += bucket[i];
        buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)le[i] * scale, (unsigned long long)cum);
    }
    cum += bucket[NB];
    buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
               (unsigned long long)cum, name, (double)sum * scale, name, (unsigned long long)count);
}

static int dom_cmp(const void *a, const void *b)
{
    const struct dom *x = *(struct dom *const *)a, *y = *(struct dom *const *)b;

    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->name, y->name);
}

static void top_domains(struct buf *o, struct census *cs)
{
    struct dom *top[TOP_DOMAINS];
    size_t n = 0;

    for (size_t i = 0; i < DOM_HASH; i++)
        for (struct dom *d = cs->dom[i]; d; d = d->next) {
            if (n < TOP_DOMAINS) {
                top[n++] = d;
                qsort(top, n, sizeof(top[0]), dom_cmp);
            } else if (dom_cmp(&d, &top[n - 1]) < 0) {
                top[n - 1] = d;
                qsort(top, n, sizeof(top[0]), dom_cmp);
            }
        }
    head(o, "postern_queue_domain_recipients", "gauge",
         "Recipients still to deliver, by recipient domain (the 10 largest).");
    for (size_t i = 0; i < n; i++) {
        buf_printf(o, "postern_queue_domain_recipients{domain=\"");
        metrics_label(o, top[i]->name);
        buf_printf(o, "\"} %llu\n", (unsigned long long)top[i]->n);
    }
}

/* Per-role restarts, from RUN_DIR/restarts ("role count" lines) when the
 * master writes it; absent: nothing is printed. */
static void restarts(struct buf *o)
{
    char path[CONF_MAX_STR + 16], line[128], role[32];
    unsigned long long n;
    int first = 1;
    FILE *f;

    snprintf(path, sizeof(path), "%s/restarts", run_dir);
    if (!(f = fopen(path, "re")))
        return;
    for (int lines = 0; lines < 64 && fgets(line, sizeof(line), f); lines++) {
        if (sscanf(line, "%31[a-z_-] %llu", role, &n) != 2)
            continue;
        if (first)
            head(o, "postern_process_restarts_total", "counter",
                 "Restarts of each role by the master since it started.");
        first = 0;
        buf_printf(o, "postern_process_restarts_total{role=\"%s\"} %llu\n", role, n);
    }
    fclose(f);
}

int metrics_render(struct buf *o)
{
    static const char *const mstate[] = { "incoming", "active", "deferred", "hold" };
    static const char *const rstate[] = { "pending", "deferred", "held" };
    struct census *cs = calloc(1, sizeof(*cs));
    uint64_t now = (uint64_t)time(NULL);

    listing_active_build();
    if (!cs || !store || qstore_scan(store, NULL, census_visit, cs) < 0) {
        if (cs)
            census_free(cs);
        free(cs);
        return -1;
    }
    head(o, "postern_queue_messages", "gauge", "Messages in the queue, by mailq's queue name.");
    for (size_t i = 0; i < 4; i++)
        buf_printf(o, "postern_queue_messages{state=\"%s\"} %llu\n", mstate[i],
                   (unsigned long long)cs->msgs[i]);
    head(o, "postern_queue_recipients", "gauge", "Recipients still to deliver, by state.");
    for (size_t i = 0; i < 3; i++)
        buf_printf(o, "postern_queue_recipients{state=\"%s\"} %llu\n", rstate[i],
                   (unsigned long long)cs->rcpts[i]);
    head(o, "postern_queue_bytes", "gauge", "Bytes of the queued messages.");
    buf_printf(o, "postern_queue_bytes %llu\n", (unsigned long long)cs->bytes);
    head(o, "postern_queue_oldest_message_age_seconds", "gauge",
         "Age of the oldest queued message (0: the queue is empty).");
    buf_printf(o, "postern_queue_oldest_message_age_seconds %llu\n",
               (unsigned long long)(cs->oldest && cs->oldest < now ? now - cs->oldest : 0));
    top_domains(o, cs);
    census_free(cs);
    free(cs);

    head(o, "postern_deliveries_total", "counter",
         "Delivery results of recipients, by status and destination (the first 100; then other).");
    for (size_t i = 0; i <= DEST_MAX_TRACKED; i++) {
        if (i == ndests && i < DEST_MAX_TRACKED)
            i = DEST_MAX_TRACKED;
        if (!dests[i].name[0])
            continue;
        for (unsigned s = RCPT_DEFERRED; s <= RCPT_BOUNCED; s++) {
            buf_printf(o, "postern_deliveries_total{status=\"%s\",destination=\"", status_name[s]);
            metrics_label(o, dests[i].name);
            buf_printf(o, "\"} %llu\n", (unsigned long long)dests[i].n[s]);
        }
    }
    head(o, "postern_received_messages_total", "counter",
         "Messages committed to the queue, by TLS and SMTP AUTH of their session.");
    for (int t = 0; t < 2; t++)
        for (int a = 0; a < 2; a++)
            buf_printf(o, "postern_received_messages_total{tls=\"%s\",auth=\"%s\"} %llu\n",
                       t ? "yes" : "no", a ? "yes" : "no", (unsigned long long)received[t][a]);
    head(o, "postern_rate_last_minute", "gauge", "Events in the last 60 seconds.");
    static const char *const rname[] = { "received", "sent", "deferred", "bounced" };
    for (int i = 0; i < R_N; i++)
        buf_printf(o, "postern_rate_last_minute{event=\"%s\"} %llu\n", rname[i],
                   (unsigned long long)ring_sum(i, 60));
    head(o, "postern_rate_last_hour", "gauge", "Events in the last 3600 seconds.");
    for (int i = 0; i < R_N; i++)
        buf_printf(o, "postern_rate_last_hour{event=\"%s\"} %llu\n", rname[i],
                   (unsigned long long)ring_sum(i, 3600));
    histogram(o, "postern_commit_batch_messages", "Messages in each group commit.", batch_le,
              batch_bucket, batch_sum, batch_count, 1);
    histogram(o, "postern_commit_seconds",
              "Time of each group commit, from submission to durable (LMDB write and syncfs).",
              ms_le, ms_bucket, ms_sum, batch_count, 0.001);
    head(o, "postern_commit_failures_total", "counter", "Group commits that failed.");
    buf_printf(o, "postern_commit_failures_total %llu\n", (unsigned long long)commit_failed);
    head(o, "postern_deliveries_in_flight", "gauge", "Delivery jobs handed to deliver, not finished.");
    buf_printf(o, "postern_deliveries_in_flight %zu\n", scheduler_njobs());
    restarts(o);
    return o->len ? 0 : -1;
}

int metrics_start(struct evloop *ev, const struct config *cfg, struct qstore *q, char *err, size_t errlen)
{
    store = q;
    str_copy(run_dir, cfg->run_dir, sizeof(run_dir));
    if (cfg->metrics_listen.n == 0)
        return 0;
    return metrics_http_start(ev, &cfg->metrics_listen.v[0], err, errlen);
}

void metrics_stop(void)
{
    metrics_http_stop();
}
