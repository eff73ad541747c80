/*
 * test_sched.c - CUnit suite for the scheduler's rules and its store work:
 * destinations (lower case, relayhost, local domains), exponential backoff
 * with its jitter bounds, queue_lifetime expiry and its bounce text, slow
 * start and dead marking on a fake clock (queue-mgr/policy.c); the result
 * stage of the committer on a temporary LMDB (results applied, a finished
 * message removed, one with a bounced recipient kept, a late result
 * dropped); and scheduler_flush by message, domain and queue.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../queue-mgr/committer.h"
#include "../../queue-mgr/policy.h"
#include "../../queue-mgr/scheduler.h"
#include "config_impl.h"
#include "proto.h"
#include "suites.h"

static void sc_cfg(struct config *c)
{
    config_defaults(c);
    config_strlist_add(&c->local_domains, "local.example");
}

static void test_dest(void)
{
    struct config c;
    char d[DEST_MAX];

    sc_cfg(&c);
    CU_ASSERT_EQUAL(policy_dest(&c, "User@Mixed.EXAMPLE", d, sizeof(d)), DEST_REMOTE);
    CU_ASSERT_STRING_EQUAL(d, "mixed.example");
    CU_ASSERT_EQUAL(policy_dest(&c, "x@LOCAL.example", d, sizeof(d)), DEST_LOCAL);
    CU_ASSERT_EQUAL(policy_dest(&c, "no-domain", d, sizeof(d)), DEST_BAD);
    CU_ASSERT_EQUAL(policy_dest(&c, "a@b.example", d, 4), DEST_BAD);
    strcpy(c.relayhost, "[smart.example]:587");
    CU_ASSERT_EQUAL(policy_dest(&c, "a@far.example", d, sizeof(d)), DEST_REMOTE);
    CU_ASSERT_STRING_EQUAL(d, "[smart.example]:587");
    CU_ASSERT_EQUAL(policy_dest(&c, "a@local.example", d, sizeof(d)), DEST_LOCAL);
    config_free(&c);
}

static void test_backoff(void)
{
    /* min 300, max 3600: 300, 600, 1200, 2400, 3600, 3600 ... times [0.75, 1.0] */
    static const uint64_t base[] = { 300, 600, 1200, 2400, 3600, 3600, 3600 };

    for (unsigned a = 1; a <= 7; a++) {
        CU_ASSERT_EQUAL(policy_backoff(a, 300, 3600, 0.0), base[a - 1] * 3 / 4);
        CU_ASSERT_EQUAL(policy_backoff(a, 300, 3600, 0.999999), base[a - 1] - 1);
    }
    CU_ASSERT_EQUAL(policy_backoff(1000, 300, 3600, 0.0), 2700); /* no overflow */
    CU_ASSERT_EQUAL(policy_backoff(0, 300, 3600, 0.0), 225);
    /* every draw within the bounds, and the draws spread out */
    uint64_t lo = UINT64_MAX, hi = 0;
    srandom(42);
    for (int i = 0; i < 10000; i++) {
        double r = (double)random() / ((double)RAND_MAX + 1.0);
        uint64_t v = policy_backoff(2, 300, 3600, r);
        CU_ASSERT(v >= 450 && v <= 600);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    CU_ASSERT(lo < 460 && hi > 590);
    CU_ASSERT_EQUAL(policy_backoff(1, 300, 3600, 5.0), 225);   /* a bad draw is 0 */
    CU_ASSERT_EQUAL(policy_backoff(3, 1, 1, 0.0), 1);          /* never 0 */
}

static void test_expiry(void)
{
    char dsn[16], reply[QREC_REPLY_MAX + 1];

    CU_ASSERT_FALSE(policy_expired(1000, 1000 + 5 * 86400 - 1, 5 * 86400));
    CU_ASSERT_TRUE(policy_expired(1000, 1000 + 5 * 86400, 5 * 86400));
    policy_expire_text(1000, 1000 + 5 * 86400 + 7, "4.4.1", "connect to mx[192.0.2.1]:25: Connection refused",
                       dsn, sizeof(dsn), reply, sizeof(reply));
    CU_ASSERT_STRING_EQUAL(dsn, "4.4.1");
    CU_ASSERT_STRING_EQUAL(reply, "message expired after 5 days in the queue; last error: "
                                  "connect to mx[192.0.2.1]:25: Connection refused");
    policy_expire_text(1000, 1001, "", NULL, dsn, sizeof(dsn), reply, sizeof(reply));
    CU_ASSERT_STRING_EQUAL(dsn, "4.4.7");
    CU_ASSERT_STRING_EQUAL(reply, "message expired after 1 second in the queue");
    policy_expire_text(1000, 1000 + 86400, "x.y", "451 no", dsn, sizeof(dsn), reply, sizeof(reply));
    CU_ASSERT_STRING_EQUAL(dsn, "4.4.7");
    CU_ASSERT_STRING_EQUAL(reply, "message expired after 1 day in the queue; last error: 451 no");
}

static void test_slow_start_and_dead(void)
{
    struct dest_limits l = { 5, 7, 300 };
    struct dest d;
    uint64_t now = 1000000;

    dest_init(&d, "slow.example", &l);
    CU_ASSERT_EQUAL(d.limit, 5);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_TRUE(dest_can_start(&d, now));
        d.active++;
    }
    CU_ASSERT_FALSE(dest_can_start(&d, now));
    /* successes: +1 each, up to the limit of 7 */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(dest_job_done(&d, D_F_DEST_REACHED, NULL, now, &l), 0);
        d.active++;
    }
    CU_ASSERT_EQUAL(d.limit, 7);
    /* failed connections: -1 each, down to 1 */
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(dest_job_done(&d, D_F_DEST_UNREACHABLE, "connect: refused", now, &l), 0);
    CU_ASSERT_EQUAL(d.limit, 1);
    CU_ASSERT_EQUAL(d.active, 0);
    CU_ASSERT_FALSE(dest_dead(&d, now));
    /* a deferral that reached the server is no connection failure */
    d.active = 1;
    CU_ASSERT_EQUAL(dest_job_done(&d, 0, "451 later", now, &l), 0);
    CU_ASSERT_EQUAL(d.limit, 1);
    /* at 1, one more failure: dead for dead_time, with the reason kept */
    d.active = 1;
    CU_ASSERT_EQUAL(dest_job_done(&d, D_F_DEST_UNREACHABLE, "connect: timed out", now, &l), 1);
    CU_ASSERT_TRUE(dest_dead(&d, now));
    CU_ASSERT_TRUE(dest_dead(&d, now + 299));
    CU_ASSERT_FALSE(dest_can_start(&d, now + 299));
    CU_ASSERT_STRING_EQUAL(d.reason, "connect: timed out");
    /* the dead time ends: alive again, at 1 (a probe) */
    CU_ASSERT_FALSE(dest_dead(&d, now + 300));
    CU_ASSERT_EQUAL(d.limit, 1);
    CU_ASSERT_TRUE(dest_can_start(&d, now + 300));
    /* dead again, then a flush revives it at once */
    d.active = 1;
    CU_ASSERT_EQUAL(dest_job_done(&d, D_F_DEST_UNREACHABLE, NULL, now + 300, &l), 1);
    CU_ASSERT_TRUE(dest_dead(&d, now + 301));
    dest_revive(&d);
    CU_ASSERT_TRUE(dest_can_start(&d, now + 301));
    /* the initial concurrency never exceeds the limit */
    struct dest_limits l2 = { 10, 3, 60 };
    dest_init(&d, "x", &l2);
    CU_ASSERT_EQUAL(d.limit, 3);
}

/* ---- on a temporary LMDB ---- */

static char sc_dir[64];

static struct qstore *sc_store(void)
{
    struct qstore *q = NULL;
    char err[256];

    snprintf(sc_dir, sizeof(sc_dir), "/tmp/postern-sched-XXXXXX");
    if (!mkdtemp(sc_dir))
        return NULL;
    if (qstore_open(&q, sc_dir, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "\nqstore_open: %s\n", err);
        return NULL;
    }
    return q;
}

static void sc_store_done(struct qstore *q)
{
    char cmd[128];

    qstore_close(q);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sc_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "\ncould not remove %s\n", sc_dir);
}

/* A record qid with the given recipients, each deferred to next_try. */
static int sc_put(struct qstore *q, const char *qid, const char *const *rcpts, size_t n, uint64_t next_try)
{
    struct qrec r;
    struct ipc_out m;
    struct qstore_item it;
    char err[256];
    int rc = -1;

    qrec_init(&r);
    snprintf(r.qid, sizeof(r.qid), "%s", qid);
    strcpy(r.sender, "s@example.org");
    strcpy(r.proto, "ESMTP");
    r.arrival = (uint64_t)time(NULL);
    r.size = 10;
    for (size_t i = 0; i < n; i++) {
        if (qrec_add_rcpt(&r, rcpts[i]) < 0)
            goto out;
        r.rcpt[i].status = next_try ? RCPT_DEFERRED : RCPT_PENDING;
        r.rcpt[i].attempts = next_try ? 1 : 0;
        r.rcpt[i].next_try = next_try;
    }
    ipc_body_begin(&m);
    qrec_encode(&r, &m);
    if (ipc_out_finish(&m) == 0) {
        it.qid = r.qid;
        it.val = buf_head(&m.b);
        it.len = m.b.len;
        rc = qstore_put_batch(q, &it, 1, err, sizeof(err));
    }
    ipc_out_free(&m);
out:
    qrec_free(&r);
    return rc;
}

static unsigned sc_status(struct qstore *q, const char *qid, uint32_t i, uint64_t *next)
{
    struct qrcpt rc;
    unsigned s;

    if (qstore_get_rcpt(q, qid, i, &rc) != 0)
        return 99;
    s = rc.status;
    if (next)
        *next = rc.next_try;
    qrcpt_free(&rc);
    return s;
}

static void test_result_stage(void)
{
    static const char *const two[] = { "a@x.example", "b@x.example" };
    struct qstore *q = sc_store();
    struct commit_ops ops;
    char removed[4][QID_LEN + 1], err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    committer_default_ops(&ops, q);
    CU_ASSERT_EQUAL_FATAL(sc_put(q, "0000000000A1", two, 2, 0), 0);
    CU_ASSERT_EQUAL_FATAL(sc_put(q, "0000000000A2", two, 2, 0), 0);
    struct qstore_rcpt_update u[4] = {
        { "0000000000A1", 0, RCPT_SENT, 0, 0, "2.0.0", "250 ok", NULL, 0 },
        { "0000000000A1", 1, RCPT_SENT, 0, 0, "2.0.0", "250 ok", NULL, 0 },
        { "0000000000A2", 0, RCPT_BOUNCED, 0, 0, "5.1.1", "550 no", NULL, 0 },
        { "0000000000A2", 1, RCPT_SENT, 0, 0, "2.0.0", "250 ok", NULL, 0 },
    };
    struct commit_job j = { .updates = u, .nupdates = 4, .removed = removed };
    CU_ASSERT_EQUAL(ops.update(ops.arg, &j, err, sizeof(err)), 0);
    /* A1 is done: removed; A2 has a bounce to notify: kept */
    CU_ASSERT_EQUAL(j.nremoved, 1);
    CU_ASSERT_STRING_EQUAL(removed[0], "0000000000A1");
    CU_ASSERT_EQUAL(qstore_undelivered(q, "0000000000A1"), 0);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000A1", 0, NULL), 99);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000A2", 0, NULL), RCPT_BOUNCED);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000A2", 1, NULL), RCPT_SENT);
    /* a late result for a recipient already done changes nothing */
    struct qstore_rcpt_update late = { "0000000000A2", 0, RCPT_DEFERRED, 1, 5, "4.0.0", "451 late", NULL, 0 };
    struct commit_job j2 = { .updates = &late, .nupdates = 1, .removed = removed };
    CU_ASSERT_EQUAL(ops.update(ops.arg, &j2, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000A2", 0, NULL), RCPT_BOUNCED);
    CU_ASSERT_EQUAL(j2.nremoved, 0);
    sc_store_done(q);
}

static void test_flush(void)
{
    static const char *const mixed[] = { "a@a.example", "b@b.example", "c@A.Example" };
    struct qstore *q = sc_store();
    struct evloop *ev = ev_new();
    struct config c;
    uint64_t far = (uint64_t)time(NULL) + 86400, next;

    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    sc_cfg(&c);
    CU_ASSERT_EQUAL_FATAL(sc_put(q, "0000000000B1", mixed, 3, far), 0);
    CU_ASSERT_EQUAL_FATAL(sc_put(q, "0000000000B2", mixed, 1, far), 0);
    CU_ASSERT_EQUAL_FATAL(sc_put(q, "0000000000B3", mixed + 1, 1, far), 0);
    scheduler_start(ev, q, &c);
    /* a domain: every deferred recipient of it, in any case */
    CU_ASSERT_EQUAL(scheduler_flush(NULL, "A.EXAMPLE"), 3);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000B1", 0, &next), RCPT_DEFERRED);
    CU_ASSERT(next <= (uint64_t)time(NULL));
    CU_ASSERT_EQUAL(sc_status(q, "0000000000B1", 1, &next), RCPT_DEFERRED);
    CU_ASSERT_EQUAL(next, far);
    CU_ASSERT_EQUAL(scheduler_flush(NULL, "a.example"), 0); /* due already */
    /* a message */
    CU_ASSERT_EQUAL(scheduler_flush("0000000000B1", NULL), 1);
    CU_ASSERT_EQUAL(scheduler_flush("0000000000ZZ", NULL), 0);
    /* the queue */
    CU_ASSERT_EQUAL(scheduler_flush(NULL, NULL), 1);
    CU_ASSERT_EQUAL(sc_status(q, "0000000000B3", 0, &next), RCPT_DEFERRED);
    CU_ASSERT(next <= (uint64_t)time(NULL));
    CU_ASSERT_EQUAL(scheduler_flush(NULL, NULL), 0);
    CU_ASSERT_FALSE(scheduler_msg_active("0000000000B1"));
    scheduler_stop();
    ev_free(ev);
    config_free(&c);
    sc_store_done(q);
}

void suite_sched(void)
{
    CU_pSuite s = CU_add_suite("sched", NULL, NULL);

    CU_add_test(s, "destinations: lower case, relayhost, local, bad", test_dest);
    CU_add_test(s, "backoff doubles to the cap, jitter in [0.75, 1.0]", test_backoff);
    CU_add_test(s, "queue_lifetime expiry and its bounce text", test_expiry);
    CU_add_test(s, "slow start, dead marking, revival", test_slow_start_and_dead);
    CU_add_test(s, "result stage: applied, finished message removed, bounce kept, late dropped",
                test_result_stage);
    CU_add_test(s, "flush by domain, message and queue", test_flush);
}
