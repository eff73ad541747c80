/*
 * test_rcptquota.c - CUnit suite for smtpd's mailbox quota checks: the
 * decisions (smtpd/rcptquota.c: SIZE= against the map's quota, the local
 * role's verdicts as RCPT replies, the end-of-DATA rule that refuses only
 * when no recipient's quota can hold the message), the quota each
 * recipient carries in the transaction (smtpd/txn.c), and the quota link
 * (smtpd/qtlink.c) against a fake local role on a UNIX socket served from
 * the same event loop: an answer passed through, a malformed one, a silent
 * peer and an absent one both answered NULL at the deadline, and while a
 * failure lasts no further session waits. Waits run the loop until a
 * condition, with a guard timer as the deadline.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"
#include "evwait.h"
#include "ipc.h"
#include "proto.h"
#include "quotaproto.h"
#include "../../smtpd/qtlink.h"
#include "../../smtpd/rcptquota.h"
#include "../../smtpd/txn.h"
#include "suites.h"
#include "unixpeer.h"
#include "util.h"

/* ---- the decisions ---- */

static void test_at_rcpt(void)
{
    char reply[600];
    struct mapdb_quota q = { .bytes = 10240, .msgs = 0 };

    reply[0] = 0;
    CU_ASSERT_EQUAL(rcptquota_at_rcpt(&q, 10241, "A@x.example", reply, sizeof(reply)), RQ_REFUSE);
    CU_ASSERT_STRING_EQUAL(reply, "552 5.2.2 <A@x.example>: Recipient address rejected: Message exceeds the mailbox quota");
    /* exactly the quota fits; no SIZE= is never refused here */
    CU_ASSERT_EQUAL(rcptquota_at_rcpt(&q, 10240, "a@x", reply, sizeof(reply)), RQ_ASK);
    CU_ASSERT_EQUAL(rcptquota_at_rcpt(&q, 0, "a@x", reply, sizeof(reply)), RQ_ASK);
    /* a message-count quota has no size to compare */
    q = (struct mapdb_quota){ .bytes = 0, .msgs = 3 };
    CU_ASSERT_EQUAL(rcptquota_at_rcpt(&q, UINT64_MAX, "a@x", reply, sizeof(reply)), RQ_ASK);
}

static void test_answers(void)
{
    char reply[600];
    struct quota_answer a = { .verdict = QUOTA_FULL };

    CU_ASSERT_STRING_EQUAL(rcptquota_answer(&a, "full@x.example", reply, sizeof(reply)),
                           "452 4.2.2 <full@x.example>: Recipient address rejected: Mailbox full");
    a.verdict = QUOTA_TOOBIG;
    CU_ASSERT_STRING_EQUAL(rcptquota_answer(&a, "b@x", reply, sizeof(reply)),
                           "552 5.2.2 <b@x>: Recipient address rejected: Message exceeds the mailbox quota");
    /* room, no quota, usage unknown, no answer at all: accepted */
    a.verdict = QUOTA_OK;
    CU_ASSERT_PTR_NULL(rcptquota_answer(&a, "b@x", reply, sizeof(reply)));
    a.verdict = QUOTA_NONE;
    CU_ASSERT_PTR_NULL(rcptquota_answer(&a, "b@x", reply, sizeof(reply)));
    a.verdict = QUOTA_TEMPFAIL;
    CU_ASSERT_PTR_NULL(rcptquota_answer(&a, "b@x", reply, sizeof(reply)));
    CU_ASSERT_PTR_NULL(rcptquota_answer(NULL, "b@x", reply, sizeof(reply)));
}

static void test_none_fits(void)
{
    uint64_t b[3] = { 100, 200, 300 };

    CU_ASSERT_TRUE(rcptquota_none_fits(b, 3, 301));
    CU_ASSERT_FALSE(rcptquota_none_fits(b, 3, 300)); /* the largest holds it */
    CU_ASSERT_FALSE(rcptquota_none_fits(b, 3, 150));
    b[1] = 0;                                        /* one without a quota takes anything */
    CU_ASSERT_FALSE(rcptquota_none_fits(b, 3, 1000000));
    CU_ASSERT_FALSE(rcptquota_none_fits(b, 0, 1000000));
    CU_ASSERT_FALSE(rcptquota_none_fits(NULL, 2, 1000000));
}

/* ---- the transaction remembers each recipient's quota ---- */

static int spool(struct txn *t)
{
    char err[TXN_REPLY_MAX], path[] = "/tmp/postern-rq.XXXXXX", params[] = "";
    uint64_t size;
    int utf8, fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    txn_init(t);
    CU_ASSERT(txn_mail_params(t, params, &size, &utf8, err, sizeof(err)) == 0);
    txn_mail(t, "s@example.org", 0, 100000);
    txn_spool_open(t, "ABCDEFGHJKLM", dup(fd), 0, "Received: x\r\n", 13);
    return fd;
}

static void add(struct txn *t, const char *rcpt, uint64_t quota)
{
    char err[TXN_REPLY_MAX];

    CU_ASSERT_FATAL(txn_add_rcpt(t, rcpt, 0, "", 100000, err, sizeof(err)) == 0);
    if (quota)
        CU_ASSERT(txn_set_rcpt_quota(t, quota) == 0);
}

/* A 20-byte message ("012345678901234567" CRLF) to the recipients given. */
static const char *end_of(struct txn *t, const char **why)
{
    struct linereader lr;
    const char *text = "012345678901234567\r\n.\r\n", *p = text, *line;
    size_t left = strlen(text), len;
    unsigned flags;

    lr_init(&lr, 100);
    while (lr_next(&lr, &p, &left, &line, &len, &flags) == 1)
        if (txn_data_line(t, line, len, flags))
            break;
    return txn_data_end(t, why);
}

/* Whether the end of the data said the 552 of every recipient. */
static int refused_at_end(struct txn *t, const char **why)
{
    const char *r = end_of(t, why);

    return r && !strcmp(r, RQ_REPLY_DATA);
}

static void finish(struct txn *t, int fd)
{
    t->qid[0] = 0;
    txn_reset(t);
    qrec_free(&t->env);
    close(fd);
}

static void test_txn_quota(void)
{
    struct txn t;
    const char *why;
    char err[TXN_REPLY_MAX], params[] = "SIZE=4096";
    uint64_t size;
    int utf8, fd;

    /* SIZE= is remembered for the RCPT checks, and forgotten at reset */
    txn_init(&t);
    CU_ASSERT_EQUAL(txn_mail_params(&t, params, &size, &utf8, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(t.size_param, 4096);
    CU_ASSERT_EQUAL(txn_set_rcpt_quota(&t, 1), -1); /* no recipient yet */
    txn_reset(&t);
    CU_ASSERT_EQUAL(t.size_param, 0);
    qrec_free(&t.env);

    /* every recipient's quota too small: refused, the spool file left open to abort */
    fd = spool(&t);
    add(&t, "a@x", 10);
    add(&t, "b@x", 19);
    CU_ASSERT_TRUE(refused_at_end(&t, &why));
    CU_ASSERT_STRING_EQUAL(why, "message exceeds the mailbox quota of every recipient");
    CU_ASSERT(t.spool_fd >= 0);
    finish(&t, fd);

    /* one that holds it (20 bytes into 20), or one without a quota: accepted */
    fd = spool(&t);
    add(&t, "a@x", 10);
    add(&t, "b@x", 20);
    CU_ASSERT_PTR_NULL(end_of(&t, &why));
    finish(&t, fd);
    fd = spool(&t);
    add(&t, "a@x", 10);
    add(&t, "remote@y", 0);
    CU_ASSERT_PTR_NULL(end_of(&t, &why));
    finish(&t, fd);

    /* a refused recipient takes its quota with it: the next one in its
     * place has none, and 20 more recipients grow the table */
    fd = spool(&t);
    add(&t, "a@x", 10);
    add(&t, "full@x", 5);
    txn_drop_last_rcpt(&t);
    add(&t, "b@x", 0);
    CU_ASSERT_PTR_NULL(end_of(&t, &why));
    finish(&t, fd);
    fd = spool(&t);
    for (int i = 0; i < 20; i++) {
        char r[32];
        snprintf(r, sizeof(r), "u%d@x", i);
        add(&t, r, 5 + (uint64_t)i);
    }
    CU_ASSERT(t.rcpt_quota_cap >= 20);
    CU_ASSERT_PTR_NULL(end_of(&t, &why)); /* the last five hold 20 bytes */
    finish(&t, fd);
    fd = spool(&t);
    for (int i = 0; i < 20; i++) {
        char r[32];
        snprintf(r, sizeof(r), "u%d@x", i);
        add(&t, r, 19);
    }
    CU_ASSERT_EQUAL(t.env.nrcpt, 20);
    CU_ASSERT_TRUE(refused_at_end(&t, &why));
    finish(&t, fd);
}

/* ---- the quota link against a fake local role ---- */

enum peer_mode { PEER_ANSWER, PEER_SILENT, PEER_MALFORMED };

static struct evloop *ev;
static char path[128];
static struct unixpeer peer;
static enum peer_mode mode;
static enum quota_verdict verdict;
static struct quota_ask asked;
static unsigned peer_asks;
static uint32_t held_id;                /* PEER_SILENT: the question not answered yet */

static int called, got_null;
static struct quota_answer got;
static void *got_arg;

static void peer_answer(uint32_t id, enum quota_verdict v)
{
    struct ipc_out out;
    struct quota_answer a = { .verdict = v, .used_bytes = 7, .used_msgs = 1, .limit_bytes = 10240 };

    memset(&out, 0, sizeof(out));
    CU_ASSERT(quotap_build_answer(&out, id, &a) == 0);
    unixpeer_send(&peer, &out);
    ipc_out_free(&out);
}

static void peer_frame(struct unixpeer *p, const struct ipc_msg *m)
{
    (void)p;
    peer_asks++;
    CU_ASSERT(quotap_parse_ask(m, &asked) == 0);
    if (mode == PEER_SILENT) {
        held_id = m->reqid;
    } else if (mode == PEER_MALFORMED) {
        struct ipc_out out;
        ipc_out_begin(&out, L_QUOTA_REPLY, m->reqid); /* no verdict */
        ipc_out_finish(&out);
        unixpeer_send(&peer, &out);
        ipc_out_free(&out);
    } else {
        peer_answer(m->reqid, verdict);
    }
    ev_stop(ev);
}

static void peer_listen(void)
{
    unixpeer_listen(&peer);
}

static void peer_stop(void)
{
    unixpeer_stop(&peer);
}

static void on_answer(void *arg, const struct quota_answer *a)
{
    called++;
    got_arg = arg;
    got_null = a == NULL;
    if (a)
        got = *a;
    ev_stop(ev);
}

static int c_called(void) { return called > 0; }
static int c_asked(void) { return peer_asks > 0; }
static int c_connected(void) { return peer.cfd >= 0; }

static void reset(enum peer_mode m)
{
    called = got_null = 0;
    got_arg = NULL;
    memset(&got, 0, sizeof(got));
    peer_asks = 0;
    mode = m;
}

static int setup(void)
{
    ev = unixpeer_open(&peer, "quota.sock", proto_limit, peer_frame);
    if (!ev)
        return -1;
    str_copy(path, peer.path, sizeof(path));
    return 0;
}

static int teardown(void)
{
    unixpeer_free(&peer);
    return 0;
}

static void test_qtlink_answers(void)
{
    int me;
    uint32_t id;
    uint64_t t0;

    qtlink_set_wait(300);
    /* not initialised (local role disabled): nothing is asked */
    CU_ASSERT_EQUAL(qtlink_ask("a@x.example", 0, &me), 0);

    peer_listen();
    qtlink_init(ev, path, on_answer);
    CU_ASSERT_TRUE(ev_run_until(ev, c_connected, 2000));

    /* the question as asked, the verdict as answered */
    reset(PEER_ANSWER);
    verdict = QUOTA_FULL;
    id = qtlink_ask("full@x.example", 4096, &me);
    CU_ASSERT(id != 0);
    CU_ASSERT_EQUAL(called, 0); /* never from inside qtlink_ask */
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 2000));
    CU_ASSERT_STRING_EQUAL(asked.key, "full@x.example");
    CU_ASSERT_EQUAL(asked.size, 4096);
    CU_ASSERT_PTR_EQUAL(got_arg, &me);
    CU_ASSERT_FALSE(got_null);
    CU_ASSERT_EQUAL(got.verdict, QUOTA_FULL);
    CU_ASSERT_EQUAL(got.limit_bytes, 10240);

    /* a cancelled question is never answered to its asker */
    reset(PEER_ANSWER);
    verdict = QUOTA_OK;
    id = qtlink_ask("a@x.example", 0, &me);
    CU_ASSERT(id != 0);
    qtlink_cancel(id);
    CU_ASSERT_TRUE(ev_run_until(ev, c_asked, 2000));
    ev_run_until(ev, c_called, 100);
    CU_ASSERT_EQUAL(called, 0);

    /* a malformed answer is no answer */
    reset(PEER_MALFORMED);
    CU_ASSERT(qtlink_ask("a@x.example", 0, &me) != 0);
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 2000));
    CU_ASSERT_TRUE(got_null);

    /* a silent peer: NULL at the deadline, and while it stays silent the
     * next question is not asked at all (accepted at once) */
    qtlink_free();
    qtlink_init(ev, path, on_answer);
    CU_ASSERT_TRUE(ev_run_until(ev, c_connected, 2000));
    reset(PEER_SILENT);
    t0 = now_ms();
    CU_ASSERT(qtlink_ask("slow@x.example", 0, &me) != 0);
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 3000));
    CU_ASSERT_TRUE(got_null);
    CU_ASSERT(now_ms() - t0 >= 290 && now_ms() - t0 < 2500);
    CU_ASSERT_EQUAL(qtlink_ask("next@x.example", 0, &me), 0);
    /* its late answer shows it is back: questions are asked again */
    peer_answer(held_id, QUOTA_OK);
    reset(PEER_ANSWER);
    verdict = QUOTA_OK;
    for (int i = 0; i < 50 && (id = qtlink_ask("again@x.example", 0, &me)) == 0; i++)
        ev_run_until(ev, c_called, 20); /* the orphan answer arrives */
    CU_ASSERT(id != 0);
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 2000));
    CU_ASSERT_FALSE(got_null);
    CU_ASSERT_EQUAL(got.verdict, QUOTA_OK);

    /* an absent peer: NULL at the deadline, then no more waiting */
    qtlink_free();
    peer_stop();
    qtlink_init(ev, path, on_answer);
    reset(PEER_ANSWER);
    t0 = now_ms();
    CU_ASSERT(qtlink_ask("a@x.example", 0, &me) != 0);
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 3000));
    CU_ASSERT_TRUE(got_null);
    CU_ASSERT(now_ms() - t0 < 2500);
    CU_ASSERT_EQUAL(qtlink_ask("b@x.example", 0, &me), 0);
    /* back again: asked and answered */
    peer_listen();
    reset(PEER_ANSWER);
    verdict = QUOTA_TOOBIG;
    id = qtlink_ask("c@x.example", 99999, &me);
    CU_ASSERT(id != 0);
    CU_ASSERT_TRUE(ev_run_until(ev, c_called, 3000));
    CU_ASSERT_FALSE(got_null);
    CU_ASSERT_EQUAL(got.verdict, QUOTA_TOOBIG);
    qtlink_free();
    peer_stop();
    qtlink_set_wait(QTLINK_WAIT_MS);
}

void suite_rcptquota(void)
{
    CU_pSuite s = CU_add_suite("rcptquota", setup, teardown);

    CU_add_test(s, "SIZE= against the quota at RCPT", test_at_rcpt);
    CU_add_test(s, "local role's verdicts as RCPT replies", test_answers);
    CU_add_test(s, "end of DATA: no recipient's quota holds it", test_none_fits);
    CU_add_test(s, "each recipient's quota in the transaction", test_txn_quota);
    CU_add_test(s, "quota link: answers, silence, absence", test_qtlink_answers);
}
