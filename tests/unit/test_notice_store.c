/*
 * test_notice_store.c - CUnit suite for qstore_put_notice (common/qstore.c):
 * the notice's record and the original's marks land in one transaction,
 * the original goes when asked, a refused notice changes nothing, and the
 * new record fields (T_R_NOTICE, T_R_RELAY, T_NOTICE_KIND)
 * survive a result update and a scan.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qstore.h"
#include "suites.h"

static char ns_dir[64];

static int ns_rm(void)
{
    char cmd[128];

    if (!ns_dir[0])
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ns_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct qstore *ns_open(void)
{
    struct qstore *q = NULL;
    char err[256];

    ns_rm();
    snprintf(ns_dir, sizeof(ns_dir), "/tmp/postern-nstore.XXXXXX");
    if (!mkdtemp(ns_dir))
        return NULL;
    if (qstore_open(&q, ns_dir, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "qstore_open: %s\n", err);
        return NULL;
    }
    return q;
}

/* A record: qid, sender, n recipients r0@x.example..., the first bounced. */
static void ns_put(struct qstore *q, const char *qid, const char *sender, size_t n, unsigned kind)
{
    struct qrec r;
    struct ipc_out m;
    char err[256];

    qrec_init(&r);
    snprintf(r.qid, sizeof(r.qid), "%s", qid);
    snprintf(r.sender, sizeof(r.sender), "%s", sender);
    r.arrival = 100;
    r.size = 10;
    r.notice_kind = kind;
    for (size_t i = 0; i < n; i++) {
        char a[64];
        snprintf(a, sizeof(a), "r%zu@x.example", i);
        CU_ASSERT_EQUAL_FATAL(qrec_add_rcpt(&r, a), 0);
    }
    r.rcpt[0].status = RCPT_BOUNCED;
    ipc_body_begin(&m);
    qrec_encode(&r, &m);
    CU_ASSERT_EQUAL_FATAL(ipc_out_finish(&m), 0);
    struct qstore_item it = { qid, buf_head(&m.b), m.b.len };
    CU_ASSERT_EQUAL(qstore_put_batch(q, &it, 1, err, sizeof(err)), 0);
    ipc_out_free(&m);
    qrec_free(&r);
}

static void ns_item(const char *qid, struct ipc_out *m, struct qstore_item *it)
{
    struct qrec r;

    qrec_init(&r);
    snprintf(r.qid, sizeof(r.qid), "%s", qid);
    r.notice_kind = NOTICE_DSN;
    r.arrival = 200;
    qrec_add_rcpt(&r, "alice@example.com");
    ipc_body_begin(m);
    qrec_encode(&r, m);
    ipc_out_finish(m);
    qrec_free(&r);
    it->qid = qid;
    it->val = buf_head(&m->b);
    it->len = m->b.len;
}

static void test_notice_one_transaction(void)
{
    struct qstore *q = ns_open();
    struct ipc_out m;
    struct qstore_item it;
    struct qrec r;
    char err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    ns_put(q, "00000000000A", "alice@example.com", 2, NOTICE_NONE);
    ns_item("00000000000B", &m, &it);
    struct qstore_notice_mark mk = { 0, QN_FAILURE };
    CU_ASSERT_EQUAL(qstore_put_notice(q, &it, "00000000000A", &mk, 1, 0, err, sizeof(err)), 0);
    /* both: the notice queued and due, the bounced recipient marked */
    CU_ASSERT_EQUAL_FATAL(qstore_get(q, "00000000000B", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.notice_kind, NOTICE_DSN);
    CU_ASSERT_STRING_EQUAL(r.sender, "");
    qrec_free(&r);
    struct qstore_due d[4];
    CU_ASSERT_EQUAL(qstore_scan_due(q, UINT64_MAX, NULL, d, 4), 2); /* A's second and B */
    CU_ASSERT_EQUAL_FATAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.rcpt[0].notice, QN_FAILURE);
    CU_ASSERT_EQUAL(r.rcpt[1].notice, 0);
    qrec_free(&r);
    ipc_out_free(&m);

    /* the original is gone for an unknown recipient index: nothing changes */
    ns_item("00000000000C", &m, &it);
    struct qstore_notice_mark bad = { 7, QN_FAILURE };
    CU_ASSERT_EQUAL(qstore_put_notice(q, &it, "00000000000A", &bad, 1, 1, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000C", &r, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 0);
    qrec_free(&r);
    /* a missing original refuses the notice too */
    CU_ASSERT_EQUAL(qstore_put_notice(q, &it, "00000000000Z", &mk, 1, 0, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000C", &r, err, sizeof(err)), 1);

    /* marks without a notice, and the original removed with them */
    struct qstore_notice_mark mk2 = { 1, QN_SUCCESS };
    CU_ASSERT_EQUAL(qstore_put_notice(q, NULL, "00000000000A", &mk2, 1, 1, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(qstore_scan_due(q, UINT64_MAX, NULL, d, 4), 1); /* B alone */
    ipc_out_free(&m);
    qstore_close(q);
    ns_rm();
}

static void test_new_fields_survive_updates(void)
{
    struct qstore *q = ns_open();
    struct qrec r;
    char err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    ns_put(q, "00000000000A", "alice@example.com", 2, NOTICE_DOUBLE);
    struct qstore_rcpt_update u = { "00000000000A", 1, RCPT_DEFERRED, 1, 500, "4.4.1", "connect refused",
                                    "mx.x.example[192.0.2.1]:25", QN_DELAY };
    CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
    /* an update without them keeps them */
    struct qstore_rcpt_update u2 = { "00000000000A", 1, RCPT_DEFERRED, 2, 600, "4.4.1", "again", NULL, 0 };
    CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u2, 1, NULL, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.notice_kind, NOTICE_DOUBLE);
    CU_ASSERT_EQUAL(r.rcpt[1].notice, QN_DELAY);
    CU_ASSERT_STRING_EQUAL(r.rcpt[1].relay, "mx.x.example[192.0.2.1]:25");
    CU_ASSERT_EQUAL(r.rcpt[1].attempts, 2);
    qrec_free(&r);
    /* a relay with a control character is refused */
    struct qstore_rcpt_update u3 = { "00000000000A", 1, RCPT_DEFERRED, 2, 600, "4.4.1", "x", "a\r\nb", 0 };
    CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u3, 1, NULL, err, sizeof(err)), -1);
    qstore_close(q);
    ns_rm();
}

void suite_notice_store(void)
{
    CU_pSuite s = CU_add_suite("notice_store", NULL, ns_rm);

    if (!s)
        return;
    CU_add_test(s, "qstore_put_notice: one transaction", test_notice_one_transaction);
    CU_add_test(s, "new record fields survive updates", test_new_fields_survive_updates);
}
