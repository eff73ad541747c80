/*
 * test_batcher.c - CUnit suite for queue-mgr's batcher and committer
 * (queue-mgr/batcher.c, committer.c) with their stages replaced by fakes
 * that the tests fail on purpose: a good batch is reported committed; a
 * failed syncfs fails its batch AND the next batch already indexed (whose
 * own syncfs says 0), refuses new transactions with 451 until a probe sync
 * succeeds, and refuses for good a transaction opened before the failure;
 * a failed LMDB stage does the same; a full index gives 452 4.3.1 until a
 * batch fits; batches hold at most BATCH_MAX; the stop path commits what
 * is collected through the committer. No sleeps: the event loop runs
 * until a condition holds, with a deadline.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../queue-mgr/batcher.h"
#include "suites.h"
#include "util.h"

#define BT_MAX_RESULTS 4096

static struct evloop *bt_ev;

/* ---- the fake stages ---- */

static pthread_mutex_t bt_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bt_cv = PTHREAD_COND_INITIALIZER;
static int bt_gate_closed;          /* sync waits while set */
static int bt_sync_fail;            /* this many next syncs fail */
static int bt_index_rc;             /* next index result (then 0) */
static size_t bt_index_calls, bt_index_items, bt_index_max, bt_unindexed, bt_syncs;

static int bt_index(void *arg, const struct qstore_item *items, size_t n, char *err, size_t errlen)
{
    int rc;

    (void)arg;
    (void)items;
    pthread_mutex_lock(&bt_mu);
    bt_index_calls++;
    bt_index_items += n;
    if (n > bt_index_max)
        bt_index_max = n;
    rc = bt_index_rc;
    bt_index_rc = 0;
    pthread_mutex_unlock(&bt_mu);
    if (rc)
        snprintf(err, errlen, "fake index failure %d", rc);
    return rc;
}

static void bt_unindex(void *arg, const struct qstore_item *items, size_t n)
{
    (void)arg;
    (void)items;
    pthread_mutex_lock(&bt_mu);
    bt_unindexed += n;
    pthread_mutex_unlock(&bt_mu);
}

static int bt_sync(void *arg)
{
    int fail;

    (void)arg;
    pthread_mutex_lock(&bt_mu);
    while (bt_gate_closed)
        pthread_cond_wait(&bt_cv, &bt_mu);
    bt_syncs++;
    fail = bt_sync_fail > 0;
    if (fail)
        bt_sync_fail--;
    pthread_mutex_unlock(&bt_mu);
    if (fail)
        errno = EIO;
    return fail ? -1 : 0;
}

static void bt_gate(int closed)
{
    pthread_mutex_lock(&bt_mu);
    bt_gate_closed = closed;
    pthread_cond_broadcast(&bt_cv);
    pthread_mutex_unlock(&bt_mu);
}

static size_t bt_get(size_t *v)
{
    size_t x;

    pthread_mutex_lock(&bt_mu);
    x = *v;
    pthread_mutex_unlock(&bt_mu);
    return x;
}

/* ---- results ---- */

static struct {
    uint32_t reqid;
    char code[16];
} bt_res[BT_MAX_RESULTS];
static size_t bt_nres;

static void bt_result(void *owner, uint32_t reqid, const struct qrec *rec, const char *code,
                      const char *text)
{
    (void)owner;
    (void)rec;
    (void)text;
    if (bt_nres < BT_MAX_RESULTS) {
        bt_res[bt_nres].reqid = reqid;
        str_copy(bt_res[bt_nres].code, code ? code : "", sizeof(bt_res[0].code));
    }
    bt_nres++;
}

/* The result of request reqid, "" for committed, NULL for none yet. */
static const char *bt_code(uint32_t reqid)
{
    for (size_t i = 0; i < bt_nres && i < BT_MAX_RESULTS; i++)
        if (bt_res[i].reqid == reqid)
            return bt_res[i].code;
    return NULL;
}

/* ---- running the loop until something holds ---- */

static int (*bt_pred)(void);
static uint64_t bt_deadline;

static void bt_tick(struct evloop *ev, void *arg)
{
    (void)arg;
    if (bt_pred() || now_ms() > bt_deadline)
        ev_stop(ev);
    else
        ev_timer(ev, 1, bt_tick, NULL);
}

static int bt_run_until(int (*pred)(void))
{
    bt_pred = pred;
    bt_deadline = now_ms() + 10000;
    ev_timer(bt_ev, 0, bt_tick, NULL);
    ev_run(bt_ev);
    return pred();
}

static size_t bt_want;
static int bt_have_results(void) { return bt_nres >= bt_want; }
static int bt_indexed(void) { return bt_get(&bt_index_calls) >= bt_want; }
static int bt_admitting(void)
{
    const char *c, *t;
    return batcher_refusal(&c, &t) == 0;
}

/* ---- set-up ---- */

static void bt_start(void)
{
    static const struct batcher_hooks hooks = { bt_result, NULL };
    struct commit_ops ops = { .index = bt_index, .unindex = bt_unindex, .sync = bt_sync };

    bt_nres = 0;
    bt_index_calls = bt_index_items = bt_index_max = bt_unindexed = bt_syncs = 0;
    bt_sync_fail = bt_index_rc = 0;
    bt_gate(0);
    bt_ev = ev_new();
    CU_ASSERT_FATAL(bt_ev != NULL);
    CU_ASSERT_FATAL(batcher_start(bt_ev, NULL, &ops, 20, &hooks) == 0);
}

static void bt_finish(void)
{
    bt_gate(0);
    batcher_stop();
    ev_free(bt_ev);
    bt_ev = NULL;
}

/* Adds a one-recipient commit; returns batcher_add's result. */
static int bt_add(uint32_t reqid, uint64_t epoch, const char **code)
{
    struct qrec r;
    const char *text;
    int rc;

    qrec_init(&r);
    snprintf(r.qid, sizeof(r.qid), "00000000%04X", (unsigned)(reqid & 0xffff));
    str_copy(r.sender, "a@example.com", sizeof(r.sender));
    qrec_add_rcpt(&r, "b@example.com");
    rc = batcher_add(NULL, reqid, &r, epoch, code, &text);
    qrec_free(&r);
    return rc;
}

/* ---- tests ---- */

static void test_bt_commit_ok(void)
{
    const char *code;

    bt_start();
    for (uint32_t i = 1; i <= 3; i++)
        CU_ASSERT(bt_add(i, batcher_epoch(), &code) == 0);
    bt_want = 3;
    CU_ASSERT(bt_run_until(bt_have_results));
    for (uint32_t i = 1; i <= 3; i++)
        CU_ASSERT(bt_code(i) && strcmp(bt_code(i), "") == 0);
    CU_ASSERT(bt_get(&bt_syncs) >= 1);
    bt_finish();
}

/* Batch 1 syncs and fails; batch 2 was indexed meanwhile and its own sync
 * would say 0: both must be refused, and their records taken back. */
static void test_bt_sync_failure_fails_next_batch_too(void)
{
    const char *code, *text;
    uint64_t e0;

    bt_start();
    e0 = batcher_epoch();
    bt_gate(1);
    CU_ASSERT(bt_add(1, e0, &code) == 0);
    bt_want = 1;
    CU_ASSERT_FATAL(bt_run_until(bt_indexed));
    CU_ASSERT(bt_add(2, e0, &code) == 0);
    bt_want = 2;
    CU_ASSERT_FATAL(bt_run_until(bt_indexed));      /* batch 2 waits behind batch 1's sync */
    pthread_mutex_lock(&bt_mu);
    bt_sync_fail = 1;                               /* only batch 1's sync fails */
    pthread_mutex_unlock(&bt_mu);
    bt_gate(0);
    bt_want = 2;
    CU_ASSERT_FATAL(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(1) && strcmp(bt_code(1), "451 4.3.0") == 0);
    CU_ASSERT(bt_code(2) && strcmp(bt_code(2), "451 4.3.0") == 0);
    CU_ASSERT(bt_get(&bt_unindexed) == 2);
    /* no new transaction until a sync works again */
    CU_ASSERT(batcher_refusal(&code, &text) == -1 && strcmp(code, "451 4.3.0") == 0);
    CU_ASSERT(bt_add(3, batcher_epoch(), &code) == -1 && strcmp(code, "451 4.3.0") == 0);
    CU_ASSERT(batcher_epoch() != e0);
    /* the probe syncs (0 now) and lets mail in again */
    CU_ASSERT_FATAL(bt_run_until(bt_admitting));
    /* opened before the failure: its file's pages may be gone */
    CU_ASSERT(bt_add(4, e0, &code) == -1 && strcmp(code, "451 4.3.0") == 0);
    CU_ASSERT(bt_add(5, batcher_epoch(), &code) == 0);
    bt_want = 3;
    CU_ASSERT(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(5) && strcmp(bt_code(5), "") == 0);
    bt_finish();
}

/* While the probe's sync keeps failing, mail stays refused. */
static void test_bt_probe_keeps_refusing_while_sync_fails(void)
{
    const char *code;

    bt_start();
    pthread_mutex_lock(&bt_mu);
    bt_sync_fail = 4;                   /* the batch and three probes */
    pthread_mutex_unlock(&bt_mu);
    CU_ASSERT(bt_add(1, batcher_epoch(), &code) == 0);
    bt_want = 1;
    CU_ASSERT_FATAL(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(1) && strcmp(bt_code(1), "451 4.3.0") == 0);
    CU_ASSERT_FATAL(bt_run_until(bt_admitting));
    CU_ASSERT(bt_get(&bt_syncs) >= 5);  /* admitted only after the 5th sync, the first good one */
    bt_finish();
}

static void test_bt_index_failure(void)
{
    const char *code;

    bt_start();
    bt_index_rc = -1;
    CU_ASSERT(bt_add(1, batcher_epoch(), &code) == 0);
    bt_want = 1;
    CU_ASSERT_FATAL(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(1) && strcmp(bt_code(1), "451 4.3.0") == 0);
    CU_ASSERT(bt_add(2, batcher_epoch(), &code) == -1 && strcmp(code, "451 4.3.0") == 0);
    CU_ASSERT_FATAL(bt_run_until(bt_admitting));
    bt_finish();
}

static void test_bt_full_index_452(void)
{
    const char *code, *text;

    bt_start();
    bt_index_rc = QSTORE_EFULL;
    CU_ASSERT(bt_add(1, batcher_epoch(), &code) == 0);
    bt_want = 1;
    CU_ASSERT_FATAL(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(1) && strcmp(bt_code(1), "452 4.3.1") == 0);
    CU_ASSERT(batcher_refusal(&code, &text) == -1 && strcmp(code, "452 4.3.1") == 0 &&
              strcmp(text, "Insufficient system storage") == 0);
    CU_ASSERT(bt_add(2, batcher_epoch(), &code) == -1 && strcmp(code, "452 4.3.1") == 0);
    CU_ASSERT(bt_get(&bt_unindexed) == 0);  /* nothing was written */
    /* the probe lets the next batch try; it fits, so mail flows */
    CU_ASSERT_FATAL(bt_run_until(bt_admitting));
    CU_ASSERT(bt_add(3, batcher_epoch(), &code) == 0);
    bt_want = 2;
    CU_ASSERT(bt_run_until(bt_have_results));
    CU_ASSERT(bt_code(3) && strcmp(bt_code(3), "") == 0);
    CU_ASSERT(bt_admitting());
    bt_finish();
}

static void test_bt_batch_bound(void)
{
    const char *code;
    size_t n = 2 * BATCH_MAX + 100;

    bt_start();
    for (uint32_t i = 1; i <= n; i++)
        CU_ASSERT_FATAL(bt_add(i, batcher_epoch(), &code) == 0);
    bt_want = n;
    CU_ASSERT_FATAL(bt_run_until(bt_have_results));
    CU_ASSERT(bt_get(&bt_index_max) <= BATCH_MAX);
    CU_ASSERT(bt_get(&bt_index_items) == n);
    CU_ASSERT(bt_get(&bt_index_calls) >= 3);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT(strcmp(bt_res[i].code, "") == 0);
    bt_finish();
}

/* The stop path: collected commits go through the committer. */
static void test_bt_stop_commits_collected(void)
{
    const char *code;

    bt_start();
    for (uint32_t i = 1; i <= 5; i++)
        CU_ASSERT(bt_add(i, batcher_epoch(), &code) == 0);
    batcher_stop();
    CU_ASSERT(bt_nres == 5);
    CU_ASSERT(bt_get(&bt_index_items) == 5);
    CU_ASSERT(bt_get(&bt_syncs) >= 1);
    for (uint32_t i = 1; i <= 5; i++)
        CU_ASSERT(bt_code(i) && strcmp(bt_code(i), "") == 0);
    ev_free(bt_ev);
    bt_ev = NULL;
}

void suite_batcher(void)
{
    CU_pSuite s = CU_add_suite("batcher", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "a good batch is committed", test_bt_commit_ok);
    CU_add_test(s, "failed syncfs fails the next indexed batch too", test_bt_sync_failure_fails_next_batch_too);
    CU_add_test(s, "refused until a probe sync succeeds", test_bt_probe_keeps_refusing_while_sync_fails);
    CU_add_test(s, "failed LMDB stage", test_bt_index_failure);
    CU_add_test(s, "full index: 452 4.3.1 until a batch fits", test_bt_full_index_452);
    CU_add_test(s, "batches hold at most BATCH_MAX", test_bt_batch_bound);
    CU_add_test(s, "stop commits what is collected", test_bt_stop_commits_collected);
}
