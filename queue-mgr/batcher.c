/*
 * batcher.c - batches of commits and the admission state (batcher.h).
 *
 * Order of the durable path for one batch (committer.c does the work):
 * the records go into LMDB in one transaction, then one syncfs covers the
 * batch's spool files and the index's meta page, and only then are the
 * results reported here. Never reports success for a batch whose status
 * is not COMMIT_OK, and never submits a batch while the committer is
 * broken. Runs in the event loop only.
 */
#include "batcher.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "metrics.h"

#define CODE_FAILED "451 4.3.0"
#define TEXT_FAILED "queue file write error"
#define CODE_FULL "452 4.3.1"
#define TEXT_FULL "Insufficient system storage"

struct pending {
    void *owner;
    uint32_t reqid;
    struct qrec rec;
    struct pending *next;
};

struct batch {
    struct pending *head;
    size_t n;
    struct qstore_item *items;
    struct ipc_out *bodies;
    struct commit_job job;
};

enum admit { ADMIT_OK, ADMIT_BROKEN, ADMIT_FULL };

static struct {
    struct pending *head, **tail;
    size_t n;
} collecting;

static struct evloop *ev;
static struct batcher_hooks hooks;
static enum admit admit;
static uint64_t epoch;
static unsigned probe_ms;
static uint64_t probe_timer;
static struct commit_job probe_job;
static int probe_in_flight, stopping;

static void report(struct pending *p, const char *code, const char *text)
{
    hooks.result(p->owner, p->reqid, &p->rec, code, text);
    qrec_free(&p->rec);
    free(p);
}

/* Refuses everything collected and not yet submitted. */
static void fail_collected(const char *code, const char *text)
{
    struct pending *p = collecting.head, *next;

    collecting.head = NULL;
    collecting.tail = &collecting.head;
    collecting.n = 0;
    for (; p; p = next) {
        next = p->next;
        report(p, code, text);
    }
}

static void probe_arm(void);

static void set_broken(const char *why)
{
    if (admit != ADMIT_BROKEN)
        log_error("queue writes failed (%s): refusing mail with " CODE_FAILED
                  " until a sync succeeds again", why);
    admit = ADMIT_BROKEN;
    epoch++;
    fail_collected(CODE_FAILED, TEXT_FAILED);
    probe_arm();
}

static void set_full(void)
{
    if (admit == ADMIT_BROKEN)
        return;
    if (admit != ADMIT_FULL)
        log_error("queue index is full and cannot grow: refusing mail with " CODE_FULL
                  " until a batch fits again");
    admit = ADMIT_FULL;
    fail_collected(CODE_FULL, TEXT_FULL);
    probe_arm();
}

static void probe_cb(struct evloop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    probe_timer = 0;
    if (stopping)
        return;
    if (admit == ADMIT_FULL) {
        /* Whether space is back only a real batch can tell: let the next
         * one try; EFULL again puts us back here. */
        log_info("queue index was full: trying again");
        admit = ADMIT_OK;
    } else if (admit == ADMIT_BROKEN) {
        if (!committer_idle() || probe_in_flight) {
            probe_arm();
            return;
        }
        memset(&probe_job, 0, sizeof(probe_job));
        probe_in_flight = 1;
        committer_submit(&probe_job);
    }
}

static void probe_arm(void)
{
    if (!probe_timer && !stopping)
        probe_timer = ev_timer(ev, probe_ms, probe_cb, NULL);
}

static void probe_done(struct commit_job *job)
{
    probe_in_flight = 0;
    if (job->status == COMMIT_OK) {
        log_info("queue writes work again: accepting mail");
        admit = ADMIT_OK;
    } else {
        log_debug("probe sync failed: %s", job->err);
        probe_arm();
    }
}

static void batch_free(struct batch *b)
{
    if (b->bodies)
        for (size_t i = 0; i < b->n; i++)
            ipc_out_free(&b->bodies[i]);
    free(b->items);
    free(b->bodies);
    free(b);
}

static void batch_report(struct batch *b, const char *code, const char *text)
{
    struct pending *p, *next;

    for (p = b->head; p; p = next) {
        next = p->next;
        report(p, code, text);
    }
    b->head = NULL;
}

/* Takes up to BATCH_MAX collected commits as a batch with their records
 * encoded; NULL (after refusing them) when memory runs out. */
static struct batch *batch_take(void)
{
    struct batch *b = calloc(1, sizeof(*b));
    struct pending *p, **pp;
    size_t i;

    if (!b) {
        fail_collected(CODE_FAILED, "out of memory");
        return NULL;
    }
    b->head = collecting.head;
    for (pp = &collecting.head, i = 0; *pp && i < BATCH_MAX; pp = &(*pp)->next, i++)
        ;
    collecting.head = *pp;
    *pp = NULL;
    if (!collecting.head)
        collecting.tail = &collecting.head;
    collecting.n -= i;
    b->n = i;
    b->items = calloc(b->n, sizeof(*b->items));
    b->bodies = calloc(b->n, sizeof(*b->bodies));
    if (!b->items || !b->bodies)
        goto fail;
    for (p = b->head, i = 0; p; p = p->next, i++) {
        ipc_body_begin(&b->bodies[i]);
        qrec_encode(&p->rec, &b->bodies[i]);
        if (b->bodies[i].failed)
            goto fail;
        b->items[i].qid = p->rec.qid;
        b->items[i].val = buf_head(&b->bodies[i].b);
        b->items[i].len = b->bodies[i].b.len;
    }
    b->job.items = b->items;
    b->job.n = b->n;
    return b;
fail:
    log_error("group commit of %zu message(s) failed: out of memory", b->n);
    batch_report(b, CODE_FAILED, "out of memory");
    batch_free(b);
    return NULL;
}

static void commit_done(struct commit_job *job)
{
    if (job == &probe_job) {
        probe_done(job);
        return;
    }
    struct batch *b = (struct batch *)((char *)job - offsetof(struct batch, job));

    log_debug("group commit: %zu message(s) in %llu ms", job->n, (unsigned long long)job->elapsed_ms);
    metrics_commit(job);
    switch (job->status) {
    case COMMIT_OK:
        if (admit == ADMIT_FULL) {
            log_info("queue index has room again: accepting mail");
            admit = ADMIT_OK;
        }
        batch_report(b, NULL, NULL);
        break;
    case COMMIT_FULL:
        log_error("group commit of %zu message(s) refused: %s", b->n, job->err);
        batch_report(b, CODE_FULL, TEXT_FULL);
        set_full();
        break;
    default:
        log_error("group commit of %zu message(s) failed: %s", b->n, job->err);
        batch_report(b, CODE_FAILED, TEXT_FAILED);
        set_broken(job->err);
        break;
    }
    batch_free(b);
    if (hooks.batch_done)
        hooks.batch_done();
}

/* After every event-loop round: what arrived since the last batch left
 * becomes the next batch, as soon as the index stage is free. */
static void on_idle(struct evloop *loop, void *arg)
{
    struct batch *b;

    (void)loop;
    (void)arg;
    if (!collecting.head || admit != ADMIT_OK || !committer_ready())
        return;
    if ((b = batch_take()))
        committer_submit(&b->job);
    else if (hooks.batch_done)
        hooks.batch_done();
}

int batcher_start(struct evloop *loop, struct qstore *q, const struct commit_ops *ops,
                  unsigned probe, const struct batcher_hooks *h)
{
    struct commit_ops def;

    ev = loop;
    hooks = *h;
    probe_ms = probe ? probe : BATCH_PROBE_MS;
    admit = ADMIT_OK;
    stopping = probe_in_flight = 0;
    probe_timer = 0;
    collecting.head = NULL;
    collecting.tail = &collecting.head;
    collecting.n = 0;
    if (!ops) {
        committer_default_ops(&def, q);
        ops = &def;
    }
    if (committer_start(loop, ops, commit_done) < 0)
        return -1;
    ev_set_idle(loop, on_idle, NULL);
    return 0;
}

int batcher_refusal(const char **code, const char **text)
{
    switch (admit) {
    case ADMIT_BROKEN:
        *code = CODE_FAILED;
        *text = TEXT_FAILED;
        return -1;
    case ADMIT_FULL:
        *code = CODE_FULL;
        *text = TEXT_FULL;
        return -1;
    default:
        return 0;
    }
}

uint64_t batcher_epoch(void)
{
    return epoch;
}

int batcher_add(void *owner, uint32_t reqid, struct qrec *rec, uint64_t when_opened,
                const char **code, const char **text)
{
    struct pending *p;

    if (batcher_refusal(code, text) < 0)
        return -1;
    if (when_opened != epoch || stopping) {
        /* Its file was written while a sync failed: its pages may be gone. */
        *code = CODE_FAILED;
        *text = TEXT_FAILED;
        return -1;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        *code = CODE_FAILED;
        *text = "out of memory";
        return -1;
    }
    p->owner = owner;
    p->reqid = reqid;
    p->rec = *rec;
    qrec_init(rec);
    *collecting.tail = p;
    collecting.tail = &p->next;
    collecting.n++;
    return 0;
}

void batcher_stop(void)
{
    stopping = 1;
    if (probe_timer) {
        ev_timer_cancel(ev, probe_timer);
        probe_timer = 0;
    }
    ev_set_idle(ev, NULL, NULL);
    /* The committer takes jobs in order whether or not its index stage is
     * free: queue the rest, then let it finish everything. */
    while (collecting.head && admit == ADMIT_OK) {
        struct batch *b = batch_take();
        if (b)
            committer_submit(&b->job);
    }
    fail_collected(CODE_FAILED, TEXT_FAILED);
    committer_stop();
}
