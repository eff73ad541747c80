/*
 * test_qrecord.c - queue record encoding and validation (common/qrecord.c):
 * round trips, every validation error, truncated bodies, hostile counts and
 * skipped unknown tags. A record is hostile input wherever it comes from.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "proto.h"
#include "qrecord.h"
#include "suites.h"

/* ---- helpers ---- */

/* orcpt and reply are NULL when empty (qrecord.h) */
static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void good_rec(struct qrec *r)
{
    qrec_init(r);
    strcpy(r->qid, "0ABCDEFGHIJK");
    strcpy(r->sender, "alice@example.org");
    strcpy(r->envid, "QQ314159+2B");
    r->ret = RET_HDRS;
    r->body = BODY_8BITMIME;
    r->flags = 0;
    strcpy(r->auth, "alice");
    strcpy(r->helo, "client.example.org");
    strcpy(r->client_addr, "192.0.2.7");
    strcpy(r->client_name, "client.example.org");
    strcpy(r->proto, "ESMTPSA");
    strcpy(r->origin, "smtpd");
    r->uid = 1000;
    r->arrival = 1764400327;
    r->size = 123456;
    CU_ASSERT_FATAL(qrec_add_rcpt(r, "bob@example.net") == 0);
    CU_ASSERT_FATAL(qrec_add_rcpt(r, "\"carol smith\"@[192.0.2.1]") == 0);
    CU_ASSERT_FATAL(qrec_add_rcpt(r, "Postmaster") == 0);
    qrcpt_set(&r->rcpt[0].orcpt, "rfc822;bob+2Bx@example.net", QREC_ORCPT_MAX);
    r->rcpt[0].notify = NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY;
    r->rcpt[0].status = RCPT_DEFERRED;
    r->rcpt[0].attempts = 3;
    r->rcpt[0].next_try = 1764403927;
    strcpy(r->rcpt[0].dsn, "4.4.1");
    qrcpt_set(&r->rcpt[0].reply, "connect to mx.example.net[192.0.2.9]:25: Connection refused", QREC_REPLY_MAX);
    r->rcpt[1].notify = NOTIFY_NEVER;
    r->rcpt[1].status = RCPT_SENT;
    strcpy(r->rcpt[1].dsn, "2.0.0");
    qrcpt_set(&r->rcpt[1].reply, "250 2.0.0 Ok\tqueued", QREC_REPLY_MAX);
}

static void encode(const struct qrec *r, struct ipc_out *m)
{
    ipc_body_begin(m);
    qrec_encode(r, m);
    CU_ASSERT_FATAL(ipc_out_finish(m) == 0);
}

static int decode_out(const struct ipc_out *m, struct qrec *r, char *err, size_t errlen)
{
    return qrec_decode((const unsigned char *)buf_head(&m->b), m->b.len, r, err, errlen);
}

/* Encodes r (consuming it), expects decoding to fail with `want` in the reason. */
static void expect_bad_rec(struct qrec *r, const char *want)
{
    struct ipc_out m;
    struct qrec d;
    char err[256];

    encode(r, &m);
    qrec_free(r);
    CU_ASSERT(decode_out(&m, &d, err, sizeof(err)) == -1);
    if (!strstr(err, want))
        fprintf(stderr, "\n  expected \"%s\", got \"%s\"\n", want, err);
    CU_ASSERT(strstr(err, want) != NULL);
    CU_ASSERT(d.rcpt == NULL && d.nrcpt == 0);
    qrec_free(&d);
    ipc_out_free(&m);
}

static void expect_bad_body(const struct ipc_out *m, const char *want)
{
    struct qrec d;
    char err[256];

    CU_ASSERT(decode_out(m, &d, err, sizeof(err)) == -1);
    if (!strstr(err, want))
        fprintf(stderr, "\n  expected \"%s\", got \"%s\"\n", want, err);
    CU_ASSERT(strstr(err, want) != NULL);
    qrec_free(&d);
}

static void expect_good_body(const struct ipc_out *m)
{
    struct qrec d;
    char err[256];
    int rc = decode_out(m, &d, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "\n  unexpected error \"%s\"\n", err);
    CU_ASSERT(rc == 0);
    qrec_free(&d);
}

/* A minimal valid body: version, sender, one recipient; then `extra` fields
 * are appended by the caller before ipc_out_finish. */
static void minimal_begin(struct ipc_out *m)
{
    struct ipc_out rc;

    ipc_body_begin(m);
    ipc_out_u64(m, T_VERSION, 1);
    ipc_out_str(m, T_SENDER, "a@b.example");
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(m, T_RCPT, &rc);
    ipc_out_free(&rc);
}

/* A body with a single recipient made of the given inner fields. */
static void rcpt_body(struct ipc_out *m, const struct ipc_out *inner)
{
    ipc_body_begin(m);
    ipc_out_u64(m, T_VERSION, 1);
    ipc_out_str(m, T_SENDER, "");
    ipc_out_nested(m, T_RCPT, inner);
    CU_ASSERT_FATAL(ipc_out_finish(m) == 0);
}

/* ---- round trips ---- */

static void test_roundtrip_full(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char err[256];

    good_rec(&r);
    encode(&r, &m);
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.version, 1);
    CU_ASSERT_STRING_EQUAL(d.qid, r.qid);
    CU_ASSERT_STRING_EQUAL(d.sender, r.sender);
    CU_ASSERT_STRING_EQUAL(d.envid, r.envid);
    CU_ASSERT_EQUAL(d.ret, RET_HDRS);
    CU_ASSERT_EQUAL(d.body, BODY_8BITMIME);
    CU_ASSERT_EQUAL(d.flags, 0);
    CU_ASSERT_STRING_EQUAL(d.auth, r.auth);
    CU_ASSERT_STRING_EQUAL(d.helo, r.helo);
    CU_ASSERT_STRING_EQUAL(d.client_addr, r.client_addr);
    CU_ASSERT_STRING_EQUAL(d.client_name, r.client_name);
    CU_ASSERT_STRING_EQUAL(d.proto, r.proto);
    CU_ASSERT_STRING_EQUAL(d.origin, r.origin);
    CU_ASSERT_EQUAL(d.uid, 1000);
    CU_ASSERT_EQUAL(d.arrival, r.arrival);
    CU_ASSERT_EQUAL(d.size, r.size);
    CU_ASSERT_FATAL(d.nrcpt == 3);
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(d.rcpt[i].addr, r.rcpt[i].addr);
        CU_ASSERT(same_str(d.rcpt[i].orcpt, r.rcpt[i].orcpt));
        CU_ASSERT_EQUAL(d.rcpt[i].notify, r.rcpt[i].notify);
        CU_ASSERT_EQUAL(d.rcpt[i].status, r.rcpt[i].status);
        CU_ASSERT_EQUAL(d.rcpt[i].attempts, r.rcpt[i].attempts);
        CU_ASSERT_EQUAL(d.rcpt[i].next_try, r.rcpt[i].next_try);
        CU_ASSERT_STRING_EQUAL(d.rcpt[i].dsn, r.rcpt[i].dsn);
        CU_ASSERT(same_str(d.rcpt[i].reply, r.rcpt[i].reply));
    }
    /* decoded records can grow like built ones */
    CU_ASSERT(qrec_add_rcpt(&d, "dave@example.com") == 0);
    CU_ASSERT(qrec_add_rcpt(&d, "erin@example.com") == 0);
    CU_ASSERT_STRING_EQUAL(d.rcpt[0].addr, "bob@example.net");
    CU_ASSERT_STRING_EQUAL(d.rcpt[4].addr, "erin@example.com");
    qrec_free(&d);
    qrec_free(&r);
    ipc_out_free(&m);
}

static void test_roundtrip_minimal(void)
{
    struct qrec r, d;
    struct ipc_out m;
    struct ipc_iter it;
    struct ipc_field f;
    char err[256];
    int n = 0, saw_uid = 0, saw_empty_str = 0;

    qrec_init(&r);
    CU_ASSERT_EQUAL(r.uid, -1);
    CU_ASSERT_EQUAL(r.version, QREC_VERSION);
    CU_ASSERT(qrec_add_rcpt(&r, "x@y.example") == 0);
    encode(&r, &m);
    /* T_VERSION first; empty strings and the absent uid omitted, except the
     * sender, whose empty value is the null reverse-path. */
    ipc_iter_init(&it, (const unsigned char *)buf_head(&m.b), m.b.len);
    while (ipc_iter_next(&it, &f) == 1) {
        if (n++ == 0)
            CU_ASSERT_EQUAL(f.tag, T_VERSION);
        if (f.tag == T_UID)
            saw_uid = 1;
        if (f.len == 0 && f.tag != T_SENDER)
            saw_empty_str = 1;
        if (f.tag == T_SENDER)
            CU_ASSERT_EQUAL(f.len, 0);
    }
    CU_ASSERT(!saw_uid);
    CU_ASSERT(!saw_empty_str);
    /* a new recipient is its address only: zero numbers are left out */
    ipc_iter_init(&it, (const unsigned char *)buf_head(&m.b), m.b.len);
    while (ipc_iter_next(&it, &f) == 1) {
        if (f.tag == T_RCPT) {
            struct ipc_iter in;
            struct ipc_field g;
            int k = 0;
            ipc_iter_init(&in, f.val, f.len);
            while (ipc_iter_next(&in, &g) == 1)
                CU_ASSERT(k++ == 0 && g.tag == T_R_ADDR);
        }
    }
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(d.sender, "");
    CU_ASSERT_STRING_EQUAL(d.qid, "");
    CU_ASSERT_EQUAL(d.uid, -1);
    CU_ASSERT_EQUAL(d.nrcpt, 1);
    CU_ASSERT_STRING_EQUAL(d.rcpt[0].addr, "x@y.example");
    CU_ASSERT_EQUAL(d.rcpt[0].status, RCPT_PENDING);
    qrec_free(&d);
    qrec_free(&r);
    ipc_out_free(&m);
}

static void test_roundtrip_uid0_utf8(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char err[256];

    qrec_init(&r);
    r.uid = 0;
    r.flags = QF_SMTPUTF8 | QF_HOLD;
    strcpy(r.sender, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
    CU_ASSERT(qrec_add_rcpt(&r, "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8") == 0);
    encode(&r, &m);
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.uid, 0);
    CU_ASSERT_EQUAL(d.flags, QF_SMTPUTF8 | QF_HOLD);
    CU_ASSERT_STRING_EQUAL(d.sender, r.sender);
    CU_ASSERT_STRING_EQUAL(d.rcpt[0].addr, r.rcpt[0].addr);
    qrec_free(&d);
    ipc_out_free(&m);

    /* the same without SMTPUTF8 is refused */
    r.flags = 0;
    expect_bad_rec(&r, "bad sender: address needs SMTPUTF8");
}

static void test_many_rcpt_roundtrip(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char err[256], a[64];

    qrec_init(&r);
    for (int i = 0; i < 1000; i++) {
        snprintf(a, sizeof(a), "user%d@example.com", i);
        CU_ASSERT_FATAL(qrec_add_rcpt(&r, a) == 0);
    }
    encode(&r, &m);
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(d.nrcpt == 1000);
    CU_ASSERT_STRING_EQUAL(d.rcpt[999].addr, "user999@example.com");
    qrec_free(&d);
    qrec_free(&r);
    ipc_out_free(&m);
}

/* ---- unknown tags ---- */

static void test_unknown_tags_skipped(void)
{
    struct ipc_out m, rc;
    struct qrec d;
    char err[256];

    ipc_body_begin(&m);
    ipc_out_str(&m, 999, "from a later version");
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_CODE, "not a record field");   /* known tag, other layer */
    ipc_out_bytes(&m, 47, "\x00\x01\x02", 3);          /* binary: never looked at */
    ipc_out_str(&m, T_SENDER, "a@b.example");
    ipc_body_begin(&rc);
    ipc_out_bytes(&rc, 60, "\x00\xff", 2);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_u64(&rc, T_VERSION, 77);                   /* record tag inside a recipient */
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    ipc_out_bytes(&m, 0xffff, "", 0);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(d.sender, "a@b.example");
    CU_ASSERT_EQUAL(d.nrcpt, 1);
    CU_ASSERT_STRING_EQUAL(d.rcpt[0].addr, "c@d.example");
    qrec_free(&d);
    ipc_out_free(&m);
}

/* ---- validation: record fields ---- */

static void test_bad_version(void)
{
    struct ipc_out m;
    struct ipc_out rc;

    /* missing */
    ipc_body_begin(&m);
    ipc_out_str(&m, T_SENDER, "");
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    ipc_out_finish(&m);
    expect_bad_body(&m, "missing field: version");
    ipc_out_free(&m);

    uint64_t bad[] = { 0, QREC_VERSION + 1, UINT64_MAX };
    for (size_t i = 0; i < 3; i++) {
        ipc_body_begin(&m);
        ipc_out_u64(&m, T_VERSION, bad[i]);
        ipc_out_str(&m, T_SENDER, "");
        ipc_body_begin(&rc);
        ipc_out_str(&rc, T_R_ADDR, "c@d.example");
        ipc_out_nested(&m, T_RCPT, &rc);
        ipc_out_free(&rc);
        ipc_out_finish(&m);
        expect_bad_body(&m, "bad field: version");
        ipc_out_free(&m);
    }
    /* wrong size */
    ipc_body_begin(&m);
    ipc_out_bytes(&m, T_VERSION, "\x01\x00\x00\x00", 4);
    ipc_out_str(&m, T_SENDER, "");
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    ipc_out_finish(&m);
    expect_bad_body(&m, "bad field: version");
    ipc_out_free(&m);
}

static void test_bad_qid(void)
{
    const char *bad[] = { "0abcdefghijk", "0ABCDEFGHIJ", "0ABCDEFGHIJKL", "0ABCDEFGHIJ-", "" };
    struct ipc_out m;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        minimal_begin(&m);
        ipc_out_str(&m, T_QID, bad[i]);
        ipc_out_finish(&m);
        expect_bad_body(&m, "bad field: queue id");
        ipc_out_free(&m);
    }
    minimal_begin(&m);
    ipc_out_str(&m, T_QID, "ZZZZZZZZZZZZ");
    ipc_out_finish(&m);
    expect_good_body(&m);
    ipc_out_free(&m);
}

static void test_bad_sender(void)
{
    struct { const char *s; const char *why; } cases[] = {
        { "a b@example.org", "bad sender: bad address syntax" },
        { "<a@example.org>", "bad sender: bad address syntax" },
        { "a@example.org>", "bad sender: bad address syntax" },
        { "@relay.example:a@example.org", "bad sender: " },
        { "a@", "bad sender: bad address syntax" },
        { "a@-bad-.example", "bad sender: bad address syntax" },
        { "Postmaster", "bad sender: bad address syntax" },   /* only as a recipient */
        { "a.@example.org", "bad sender: bad address syntax" },
        { "\xc3\xa9@example.org", "bad sender: address needs SMTPUTF8" },
        { "\xff@example.org", "bad sender: bad address syntax" },
    };
    struct qrec r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        good_rec(&r);
        strcpy(r.sender, cases[i].s);
        expect_bad_rec(&r, cases[i].why);
    }

    /* too long a local part (65) and too long a mailbox (257) */
    good_rec(&r);
    memset(r.sender, 'a', 65);
    strcpy(r.sender + 65, "@example.org");
    expect_bad_rec(&r, "bad sender: address too long");

    struct ipc_out m;
    char big[300];
    memset(big, 'a', sizeof(big));
    big[sizeof(big) - 1] = 0;
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_SENDER, big);
    ipc_out_finish(&m);
    struct ipc_out rc;
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    expect_bad_body(&m, "bad field: sender");
    ipc_out_free(&m);

    /* missing */
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    ipc_out_finish(&m);
    expect_bad_body(&m, "missing field: sender");
    ipc_out_free(&m);

    /* control characters never pass the text getter */
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_bytes(&m, T_SENDER, "a@b\r\n", 5);
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_nested(&m, T_RCPT, &rc);
    ipc_out_free(&rc);
    ipc_out_finish(&m);
    expect_bad_body(&m, "bad field: sender");
    ipc_out_free(&m);
}

static void test_bad_ranges(void)
{
    struct qrec r;

    good_rec(&r);
    r.ret = RET_HDRS + 1;
    expect_bad_rec(&r, "bad field: ret");
    good_rec(&r);
    r.body = BODY_8BITMIME + 1;
    expect_bad_rec(&r, "bad field: body");
    good_rec(&r);
    r.flags = 4;
    expect_bad_rec(&r, "bad field: flags");
    good_rec(&r);
    r.uid = 0xffffffffLL;
    expect_bad_rec(&r, "bad field: uid");
    good_rec(&r);
    r.uid = 0x100000000LL;
    expect_bad_rec(&r, "bad field: uid");
    good_rec(&r);
    strcpy(r.envid, "has space");
    expect_bad_rec(&r, "bad field: envid");
    good_rec(&r);
    strcpy(r.envid, "caf\xc3\xa9");
    expect_bad_rec(&r, "bad field: envid");
    good_rec(&r);
    strcpy(r.helo, "evil\x1b[31m");
    expect_bad_rec(&r, "bad field: helo");
    good_rec(&r);
    strcpy(r.client_name, "a\x7f");
    expect_bad_rec(&r, "bad field: client name");
    good_rec(&r);
    strcpy(r.auth, "x\x01");
    expect_bad_rec(&r, "bad field: auth");
    good_rec(&r);
    strcpy(r.client_addr, "\x02");
    expect_bad_rec(&r, "bad field: client address");
    good_rec(&r);
    strcpy(r.proto, "\x03");
    expect_bad_rec(&r, "bad field: proto");
    good_rec(&r);
    strcpy(r.origin, "\x04");
    expect_bad_rec(&r, "bad field: origin");
}

static void test_bad_sizes(void)
{
    /* every numeric field must be exactly 8 bytes; every text field must fit */
    uint16_t num[] = { T_RET, T_BODY, T_FLAGS, T_UID, T_ARRIVAL, T_SIZE };
    uint16_t str[] = { T_ENVID, T_AUTH, T_HELO, T_CLIENT_ADDR, T_CLIENT_NAME, T_PROTO, T_ORIGIN };
    char big[600];
    struct ipc_out m;

    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = 0;
    for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++) {
        minimal_begin(&m);
        ipc_out_bytes(&m, num[i], "\0\0\0\0\0\0\0", 7);
        ipc_out_finish(&m);
        expect_bad_body(&m, "bad field: ");
        ipc_out_free(&m);
        minimal_begin(&m);
        ipc_out_bytes(&m, num[i], "\0\0\0\0\0\0\0\0\0", 9);
        ipc_out_finish(&m);
        expect_bad_body(&m, "bad field: ");
        ipc_out_free(&m);
    }
    for (size_t i = 0; i < sizeof(str) / sizeof(str[0]); i++) {
        minimal_begin(&m);
        ipc_out_str(&m, str[i], big);
        ipc_out_finish(&m);
        expect_bad_body(&m, "bad field: ");
        ipc_out_free(&m);
    }
    /* longest that fit */
    minimal_begin(&m);
    big[QREC_ENVID_MAX] = 0;
    ipc_out_str(&m, T_ENVID, big);
    big[255] = 0;
    ipc_out_str(&m, T_HELO, big);
    ipc_out_str(&m, T_CLIENT_NAME, big);
    ipc_out_str(&m, T_AUTH, big);
    big[15] = 0;
    ipc_out_str(&m, T_PROTO, big);
    ipc_out_str(&m, T_ORIGIN, big);
    ipc_out_finish(&m);
    expect_good_body(&m);
    ipc_out_free(&m);
}

static void test_duplicates(void)
{
    struct ipc_out m, rc;

    minimal_begin(&m);
    ipc_out_str(&m, T_SENDER, "other@example.org");
    ipc_out_finish(&m);
    expect_bad_body(&m, "duplicate field: sender");
    ipc_out_free(&m);

    minimal_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_finish(&m);
    expect_bad_body(&m, "duplicate field: version");
    ipc_out_free(&m);

    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_u64(&rc, T_R_STATUS, RCPT_SENT);
    ipc_out_u64(&rc, T_R_STATUS, RCPT_PENDING);
    rcpt_body(&m, &rc);
    expect_bad_body(&m, "recipient 1: duplicate field: status");
    ipc_out_free(&m);
    ipc_out_free(&rc);

    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_str(&rc, T_R_ADDR, "evil@d.example");
    rcpt_body(&m, &rc);
    expect_bad_body(&m, "recipient 1: duplicate field: recipient address");
    ipc_out_free(&m);
    ipc_out_free(&rc);
}

/* ---- validation: recipients ---- */

static void test_bad_rcpt_addr(void)
{
    struct { const char *a; const char *why; } cases[] = {
        { "", "missing field: recipient address" },
        { "nodomain", "bad address syntax" },
        { "a b@example.org", "bad address syntax" },
        { "<c@d.example>", "bad address syntax" },
        { "@r.example:c@d.example", "recipient 2:" },
        { "c@d.example,e@f.example", "bad address syntax" },
        { "\xc3\xa9@example.org", "address needs SMTPUTF8" },
    };
    struct qrec r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        good_rec(&r);
        free(r.rcpt[1].addr);
        r.rcpt[1].addr = strdup(cases[i].a);
        expect_bad_rec(&r, cases[i].why);
    }
    /* postmaster in any case is a recipient */
    struct ipc_out m, rc;
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "postMASTER");
    rcpt_body(&m, &rc);
    expect_good_body(&m);
    ipc_out_free(&m);
    ipc_out_free(&rc);

    /* no address field at all */
    ipc_body_begin(&rc);
    ipc_out_u64(&rc, T_R_STATUS, RCPT_PENDING);
    rcpt_body(&m, &rc);
    expect_bad_body(&m, "recipient 1: missing field: recipient address");
    ipc_out_free(&m);
    ipc_out_free(&rc);

    /* an empty recipient */
    ipc_body_begin(&rc);
    rcpt_body(&m, &rc);
    expect_bad_body(&m, "recipient 1: missing field");
    ipc_out_free(&m);
    ipc_out_free(&rc);
}

static void test_bad_rcpt_fields(void)
{
    struct qrec r;

    good_rec(&r);
    r.rcpt[2].status = RCPT_BOUNCED + 1;
    expect_bad_rec(&r, "recipient 3: bad field: status");

    unsigned bad_notify[] = { 16, NOTIFY_NEVER | NOTIFY_SUCCESS, NOTIFY_NEVER | NOTIFY_DELAY,
                              NOTIFY_NEVER | NOTIFY_FAILURE | NOTIFY_SUCCESS | NOTIFY_DELAY };
    for (size_t i = 0; i < sizeof(bad_notify) / sizeof(bad_notify[0]); i++) {
        good_rec(&r);
        r.rcpt[0].notify = bad_notify[i];
        expect_bad_rec(&r, "recipient 1: bad field: notify");
    }

    const char *bad_dsn[] = { "6.0.0", "4.4", "4.4.1234", "4..1", "44.1.1", "4.4.1 ", "x" };
    for (size_t i = 0; i < sizeof(bad_dsn) / sizeof(bad_dsn[0]); i++) {
        good_rec(&r);
        strcpy(r.rcpt[0].dsn, bad_dsn[i]);
        expect_bad_rec(&r, "recipient 1: bad field: dsn");
    }
    good_rec(&r);
    strcpy(r.rcpt[0].dsn, "5.123.999");
    struct ipc_out m;
    encode(&r, &m);
    qrec_free(&r);
    expect_good_body(&m);
    ipc_out_free(&m);

    const char *bad_orcpt[] = { "rfc822", ";a@b", "rfc822;", "rfc 822;a@b", "rfc822;a b@c",
                                "rfc822;a\t@b" };
    for (size_t i = 0; i < sizeof(bad_orcpt) / sizeof(bad_orcpt[0]); i++) {
        good_rec(&r);
        qrcpt_set(&r.rcpt[0].orcpt, bad_orcpt[i], QREC_ORCPT_MAX);
        expect_bad_rec(&r, "recipient 1: bad field: orcpt");
    }

    good_rec(&r);
    qrcpt_set(&r.rcpt[0].reply, "450 bad\r\n250 ok", QREC_REPLY_MAX);
    expect_bad_rec(&r, "recipient 1: bad field: reply");

    /* attempts must fit an unsigned int */
    struct ipc_out rc;
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_u64(&rc, T_R_ATTEMPTS, 0x100000000ull);
    rcpt_body(&m, &rc);
    expect_bad_body(&m, "recipient 1: bad field: attempts");
    ipc_out_free(&m);
    ipc_out_free(&rc);

    /* numbers of the wrong size */
    uint16_t num[] = { T_R_NOTIFY, T_R_STATUS, T_R_ATTEMPTS, T_R_NEXT_TRY };
    for (size_t i = 0; i < 4; i++) {
        ipc_body_begin(&rc);
        ipc_out_str(&rc, T_R_ADDR, "c@d.example");
        ipc_out_bytes(&rc, num[i], "\0", 1);
        rcpt_body(&m, &rc);
        expect_bad_body(&m, "recipient 1: bad field: ");
        ipc_out_free(&m);
        ipc_out_free(&rc);
    }

    /* texts too long */
    char big[QREC_REPLY_MAX + 2];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = 0;
    uint16_t str[] = { T_R_ADDR, T_R_ORCPT, T_R_DSN, T_R_REPLY };
    for (size_t i = 0; i < 4; i++) {
        ipc_body_begin(&rc);
        if (str[i] != T_R_ADDR)
            ipc_out_str(&rc, T_R_ADDR, "c@d.example");
        ipc_out_str(&rc, str[i], big);
        rcpt_body(&m, &rc);
        expect_bad_body(&m, "recipient 1: bad field: ");
        ipc_out_free(&m);
        ipc_out_free(&rc);
    }
    /* the longest reply fits */
    big[QREC_REPLY_MAX] = 0;
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_str(&rc, T_R_REPLY, big);
    rcpt_body(&m, &rc);
    expect_good_body(&m);
    ipc_out_free(&m);
    ipc_out_free(&rc);
}

static void test_no_recipients(void)
{
    struct ipc_out m;
    struct qrec r;

    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_SENDER, "a@b.example");
    ipc_out_finish(&m);
    expect_bad_body(&m, "no recipients");
    ipc_out_free(&m);

    qrec_init(&r);
    expect_bad_rec(&r, "no recipients");

    /* an empty body */
    struct qrec d;
    char err[64];
    CU_ASSERT(qrec_decode((const unsigned char *)"", 0, &d, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "no recipients") != NULL);
    qrec_free(&d);
}

/* ---- truncation and hostile lengths ---- */

static void test_truncated(void)
{
    struct qrec r, d;
    struct ipc_out m;
    struct ipc_iter it;
    struct ipc_field f;
    char err[256];
    const unsigned char *body;
    size_t len, bounds[64], nb = 0;

    good_rec(&r);
    encode(&r, &m);
    qrec_free(&r);
    body = (const unsigned char *)buf_head(&m.b);
    len = m.b.len;
    /* top-level field boundaries */
    ipc_iter_init(&it, body, len);
    bounds[nb++] = 0;
    while (ipc_iter_next(&it, &f) == 1 && nb < 64)
        bounds[nb++] = (size_t)(it.p - body);
    for (size_t cut = 0; cut < len; cut++) {
        int at_bound = 0;
        for (size_t k = 0; k < nb; k++)
            at_bound |= bounds[k] == cut;
        /* work on a copy of exactly cut bytes, so that a read past the end
         * shows up under AddressSanitizer */
        unsigned char *copy = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(copy != NULL);
        memcpy(copy, body, cut);
        int rc = qrec_decode(copy, cut, &d, err, sizeof(err));
        if (!at_bound) {
            CU_ASSERT(rc == -1);
            CU_ASSERT(strstr(err, "truncated") != NULL);
        } else if (rc == 0) {
            /* a cut at a field boundary after the first recipient */
            CU_ASSERT(d.nrcpt >= 1);
        }
        qrec_free(&d);
        free(copy);
    }
    ipc_out_free(&m);
}

static void test_nested_truncated(void)
{
    /* a recipient whose inner field claims more than the recipient holds */
    unsigned char inner[] = { T_R_ADDR, 0, 0xff, 0xff, 0xff, 0x7f, 'a', '@', 'b' };
    struct ipc_out m;

    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_SENDER, "");
    ipc_out_bytes(&m, T_RCPT, inner, sizeof(inner));
    ipc_out_finish(&m);
    expect_bad_body(&m, "recipient 1: truncated field");
    ipc_out_free(&m);

    /* a record whose last field claims 4 GB */
    unsigned char huge[] = { T_SENDER, 0, 0xff, 0xff, 0xff, 0xff, 'a' };
    struct qrec d;
    char err[128];
    CU_ASSERT(qrec_decode(huge, sizeof(huge), &d, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "truncated") != NULL);
    qrec_free(&d);

    /* a header shorter than 6 bytes */
    CU_ASSERT(qrec_decode(huge, 3, &d, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "truncated") != NULL);
    qrec_free(&d);
}

/* QREC_MAX_RCPT recipients decode; one more is refused before any allocation. */
static void test_huge_counts(void)
{
    struct ipc_out m, rc;
    struct qrec d;
    char err[256];

    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_SENDER, "");
    for (size_t i = 0; i < QREC_MAX_RCPT; i++)
        ipc_out_nested(&m, T_RCPT, &rc);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT_FATAL(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.nrcpt, QREC_MAX_RCPT);
    CU_ASSERT(qrec_add_rcpt(&d, "one@more.example") == -1);
    qrec_free(&d);

    ipc_out_nested(&m, T_RCPT, &rc);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    expect_bad_body(&m, "too many recipients");

    /* many empty recipient fields: refused by count, then by content */
    ipc_out_free(&m);
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_VERSION, 1);
    ipc_out_str(&m, T_SENDER, "");
    for (size_t i = 0; i < QREC_MAX_RCPT + 5; i++)
        ipc_out_bytes(&m, T_RCPT, "", 0);
    ipc_out_finish(&m);
    expect_bad_body(&m, "too many recipients");
    ipc_out_free(&m);
    ipc_out_free(&rc);
}

/* A new record with QREC_MAX_RCPT ordinary recipients fits one frame. */
static void test_max_rcpt_fits_frame(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char a[64], err[256];

    qrec_init(&r);
    strcpy(r.sender, "sender@example.org");
    for (int i = 0; i < QREC_MAX_RCPT; i++) {
        snprintf(a, sizeof(a), "user%06d@example.com", i);
        CU_ASSERT_FATAL(qrec_add_rcpt(&r, a) == 0);
    }
    ipc_out_begin(&m, Q_COMMIT, 1);
    qrec_encode(&r, &m);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(m.b.len - IPC_HDR_LEN <= proto_limit(Q_COMMIT));
    CU_ASSERT_FATAL(qrec_decode((const unsigned char *)buf_head(&m.b) + IPC_HDR_LEN,
                                m.b.len - IPC_HDR_LEN, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.nrcpt, QREC_MAX_RCPT);
    CU_ASSERT_STRING_EQUAL(d.rcpt[QREC_MAX_RCPT - 1].addr, "user099999@example.com");
    qrec_free(&d);
    qrec_free(&r);
    ipc_out_free(&m);
}

/* ---- building ---- */

static void test_add_rcpt(void)
{
    struct qrec r;
    char a[ADDR_MAX + 2];

    qrec_init(&r);
    for (int i = 0; i < 5000; i++) {
        snprintf(a, sizeof(a), "u%d@example.com", i);
        CU_ASSERT_FATAL(qrec_add_rcpt(&r, a) == 0);
    }
    CU_ASSERT_EQUAL(r.nrcpt, 5000);
    CU_ASSERT_STRING_EQUAL(r.rcpt[0].addr, "u0@example.com");
    CU_ASSERT_STRING_EQUAL(r.rcpt[4999].addr, "u4999@example.com");
    CU_ASSERT_EQUAL(r.rcpt[4999].status, RCPT_PENDING);
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = 0;
    CU_ASSERT(qrec_add_rcpt(&r, a) == -1);  /* 257 bytes */
    CU_ASSERT_EQUAL(r.nrcpt, 5000);
    qrec_free(&r);
    CU_ASSERT(r.rcpt == NULL && r.nrcpt == 0);
    qrec_free(&r); /* twice is harmless */
}

static void test_err_buffer_small(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char err[8];

    good_rec(&r);
    r.ret = 9;
    encode(&r, &m);
    qrec_free(&r);
    memset(err, 'Z', sizeof(err));
    CU_ASSERT(decode_out(&m, &d, err, sizeof(err)) == -1);
    CU_ASSERT(memchr(err, 0, sizeof(err)) != NULL);
    CU_ASSERT(decode_out(&m, &d, NULL, 0) == -1);
    qrec_free(&d);
    ipc_out_free(&m);
}

static void test_queue_name(void)
{
    struct qrec r;

    good_rec(&r);
    for (size_t i = 0; i < r.nrcpt; i++) {
        r.rcpt[i].attempts = 0;
        r.rcpt[i].status = RCPT_PENDING;
    }
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "active");
    r.rcpt[2].attempts = 1;
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "deferred");
    r.rcpt[2].attempts = 0;
    r.rcpt[1].status = RCPT_DEFERRED;
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "deferred");
    r.flags = QF_HOLD;
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "hold");
    qrec_free(&r);
}

/* A frame may carry QREC_MAX_RCPT short recipients: each must cost little
 * more than its strings once decoded, not a kilobyte of fixed buffers. */
static void test_rcpt_is_small(void)
{
    struct qrec r;

    CU_ASSERT(sizeof(struct qrcpt) <= 72); /* five strings, bit fields, dsn[16] */
    qrec_init(&r);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "a@b.example") == 0);
    CU_ASSERT_PTR_NULL(r.rcpt[0].orcpt);
    CU_ASSERT_PTR_NULL(r.rcpt[0].reply);
    CU_ASSERT(qrcpt_set(&r.rcpt[0].reply, "x", 0) == -1);      /* over max */
    CU_ASSERT(qrcpt_set(&r.rcpt[0].reply, "450 later", QREC_REPLY_MAX) == 0);
    CU_ASSERT_STRING_EQUAL(r.rcpt[0].reply, "450 later");
    CU_ASSERT(qrcpt_set(&r.rcpt[0].reply, "", QREC_REPLY_MAX) == 0);
    CU_ASSERT_PTR_NULL(r.rcpt[0].reply);
    qrec_free(&r);
}

/* ---- the parts the queue index stores ---- */

/* envelope + one T_RCPT per qrcpt_encode() is exactly qrec_encode() */
static void test_parts_concat(void)
{
    struct qrec r, e;
    struct ipc_out whole, parts;
    char err[256];

    good_rec(&r);
    encode(&r, &whole);
    ipc_body_begin(&parts);
    qrec_encode_envelope(&r, &parts);
    for (size_t i = 0; i < r.nrcpt; i++) {
        struct ipc_out one;
        struct qrcpt d;

        ipc_body_begin(&one);
        qrcpt_encode(&r.rcpt[i], &one);
        CU_ASSERT_FATAL(ipc_out_finish(&one) == 0);
        CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&one.b), one.b.len, r.flags, &d,
                               err, sizeof(err)) == 0);
        CU_ASSERT_STRING_EQUAL(d.addr, r.rcpt[i].addr);
        CU_ASSERT(same_str(d.orcpt, r.rcpt[i].orcpt) && same_str(d.reply, r.rcpt[i].reply));
        CU_ASSERT_EQUAL(d.status, r.rcpt[i].status);
        CU_ASSERT_EQUAL(d.next_try, r.rcpt[i].next_try);
        CU_ASSERT_STRING_EQUAL(d.dsn, r.rcpt[i].dsn);
        qrcpt_free(&d);
        CU_ASSERT_PTR_NULL(d.addr);
        ipc_out_nested(&parts, T_RCPT, &one);
        ipc_out_free(&one);
    }
    CU_ASSERT_FATAL(ipc_out_finish(&parts) == 0);
    CU_ASSERT_EQUAL(parts.b.len, whole.b.len);
    CU_ASSERT(parts.b.len == whole.b.len && memcmp(buf_head(&parts.b), buf_head(&whole.b), whole.b.len) == 0);
    ipc_out_free(&parts);

    /* the envelope alone decodes, without recipients */
    ipc_body_begin(&parts);
    qrec_encode_envelope(&r, &parts);
    CU_ASSERT_FATAL(ipc_out_finish(&parts) == 0);
    CU_ASSERT(qrec_decode_envelope((const unsigned char *)buf_head(&parts.b), parts.b.len, &e,
                                   err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(e.nrcpt, 0);
    CU_ASSERT_STRING_EQUAL(e.qid, r.qid);
    CU_ASSERT_STRING_EQUAL(e.sender, r.sender);
    CU_ASSERT_EQUAL(e.size, r.size);
    CU_ASSERT_EQUAL(e.uid, r.uid);
    qrec_free(&e);
    /* ... but qrec_decode wants recipients */
    CU_ASSERT(qrec_decode((const unsigned char *)buf_head(&parts.b), parts.b.len, &e, err, sizeof(err)) == -1);
    ipc_out_free(&parts);
    /* and an envelope may not carry them */
    CU_ASSERT(qrec_decode_envelope((const unsigned char *)buf_head(&whole.b), whole.b.len, &e,
                                   err, sizeof(err)) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "recipient in an envelope"));
    qrec_free(&e);
    ipc_out_free(&whole);
    qrec_free(&r);
}

static void test_rcpt_decode_checks(void)
{
    struct ipc_out m;
    struct qrcpt d;
    char err[256];

    /* UTF-8 only in a SMTPUTF8 message */
    ipc_body_begin(&m);
    ipc_out_str(&m, T_R_ADDR, "j\xc3\xb6rg@example.org");
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len, 0, &d, err, sizeof(err)) == -1);
    CU_ASSERT_PTR_NULL(d.addr);
    CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len, QF_SMTPUTF8, &d, err, sizeof(err)) == 0);
    qrcpt_free(&d);
    ipc_out_free(&m);
    /* a bad DSN code, a missing address, a truncated body */
    ipc_body_begin(&m);
    ipc_out_str(&m, T_R_ADDR, "a@example.org");
    ipc_out_str(&m, T_R_DSN, "3.0.0");
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len, 0, &d, err, sizeof(err)) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dsn"));
    CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len - 1, 0, &d, err, sizeof(err)) == -1);
    ipc_out_free(&m);
    ipc_body_begin(&m);
    ipc_out_u64(&m, T_R_STATUS, RCPT_SENT);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len, 0, &d, err, sizeof(err)) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing"));
    ipc_out_free(&m);
}

static void test_peek_u64(void)
{
    struct ipc_out m;
    uint64_t v = 99;

    ipc_body_begin(&m);
    ipc_out_str(&m, T_R_ADDR, "a@example.org");
    ipc_out_u64(&m, T_R_NEXT_TRY, 1764403927);
    ipc_out_str(&m, T_R_STATUS, "x"); /* wrong size */
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(qrec_peek_u64((const unsigned char *)buf_head(&m.b), m.b.len, T_R_NEXT_TRY, &v) == 0);
    CU_ASSERT_EQUAL(v, 1764403927);
    CU_ASSERT(qrec_peek_u64((const unsigned char *)buf_head(&m.b), m.b.len, T_R_ATTEMPTS, &v) == 1);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT(qrec_peek_u64((const unsigned char *)buf_head(&m.b), m.b.len, T_R_STATUS, &v) == -1);
    CU_ASSERT(qrec_peek_u64((const unsigned char *)buf_head(&m.b), m.b.len - 3, T_R_ATTEMPTS, &v) == -1);
    ipc_out_free(&m);
}

/* QF_DAMAGED is always held: alone it is refused */
static void test_damaged_flag(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char err[256];

    good_rec(&r);
    r.flags = QF_DAMAGED | QF_HOLD;
    encode(&r, &m);
    CU_ASSERT(decode_out(&m, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.flags, QF_DAMAGED | QF_HOLD);
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&d), "hold");
    qrec_free(&d);
    ipc_out_free(&m);
    r.flags = QF_DAMAGED;
    expect_bad_rec(&r, "flags");
}

/*
 * The biggest case of issue 5: 10,000 recipients of the longest address
 * (ADDR_MAX = 256 bytes) with NOTIFY, as smtpd sends them in Q_COMMIT.
 * Each costs 6 (T_RCPT) + 6 + 256 (T_R_ADDR) + 6 + 8 (T_R_NOTIFY) = 282
 * bytes: 2,820,000 plus the envelope, under IPC_MAX_BODY (4,194,304). With
 * an ORCPT of the same address ("rfc822;" + 256, 269 bytes more) it is
 * 5,510,000 and does not fit; nor does a Q_LIST_ITEM once each recipient
 * has a last reply of 100 bytes or more (see the report in qstore's docs).
 */
static void long_addr(char *a, size_t len, int i)
{
    char dom[200];

    snprintf(dom, sizeof(dom), "%.63s.%.63s.%.59s.com",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    snprintf(a, len, "u%05dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx@%.191s", i % 100000, dom);
}

static void test_10k_long_rcpt_frame(void)
{
    struct qrec r, d;
    struct ipc_out m;
    char a[ADDR_MAX + 80], err[256];

    qrec_init(&r);
    strcpy(r.qid, "0ABCDEFGHIJK");
    strcpy(r.sender, "sender@example.org");
    for (int i = 0; i < 10000; i++) {
        long_addr(a, sizeof(a), i);
        CU_ASSERT_FATAL(strlen(a) == ADDR_MAX);
        CU_ASSERT_FATAL(qrec_add_rcpt(&r, a) == 0);
        r.rcpt[i].notify = NOTIFY_SUCCESS | NOTIFY_FAILURE;
    }
    ipc_out_begin(&m, Q_COMMIT, 1);
    qrec_encode(&r, &m);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(m.b.len - IPC_HDR_LEN <= proto_limit(Q_COMMIT));
    CU_ASSERT(m.b.len - IPC_HDR_LEN >= 10000u * 282);
    CU_ASSERT(m.b.len - IPC_HDR_LEN < 10000u * 282 + 1024);
    CU_ASSERT_FATAL(qrec_decode((const unsigned char *)buf_head(&m.b) + IPC_HDR_LEN,
                                m.b.len - IPC_HDR_LEN, &d, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(d.nrcpt, 10000);
    qrec_free(&d);
    ipc_out_free(&m);
    /* the same with an ORCPT each is over the frame limit */
    for (int i = 0; i < 10000; i++) {
        char o[ADDR_MAX + 16];
        snprintf(o, sizeof(o), "rfc822;%s", r.rcpt[i].addr);
        CU_ASSERT_FATAL(qrcpt_set(&r.rcpt[i].orcpt, o, QREC_ORCPT_MAX) == 0);
    }
    ipc_out_begin(&m, Q_COMMIT, 1);
    qrec_encode(&r, &m);
    CU_ASSERT(m.failed || m.b.len - IPC_HDR_LEN > proto_limit(Q_COMMIT));
    ipc_out_free(&m);
    qrec_free(&r);
}

void suite_qrecord(void)
{
    CU_pSuite s = CU_add_suite("qrecord", NULL, NULL);

    CU_add_test(s, "round trip, every field", test_roundtrip_full);
    CU_add_test(s, "round trip, minimal record", test_roundtrip_minimal);
    CU_add_test(s, "round trip, uid 0 and UTF-8", test_roundtrip_uid0_utf8);
    CU_add_test(s, "round trip, 1000 recipients", test_many_rcpt_roundtrip);
    CU_add_test(s, "unknown tags skipped", test_unknown_tags_skipped);
    CU_add_test(s, "bad version", test_bad_version);
    CU_add_test(s, "bad queue id", test_bad_qid);
    CU_add_test(s, "bad sender", test_bad_sender);
    CU_add_test(s, "fields out of range", test_bad_ranges);
    CU_add_test(s, "fields of the wrong size", test_bad_sizes);
    CU_add_test(s, "duplicate fields", test_duplicates);
    CU_add_test(s, "bad recipient address", test_bad_rcpt_addr);
    CU_add_test(s, "a recipient costs its strings, not fixed buffers", test_rcpt_is_small);
    CU_add_test(s, "bad recipient fields", test_bad_rcpt_fields);
    CU_add_test(s, "no recipients", test_no_recipients);
    CU_add_test(s, "truncated at every byte", test_truncated);
    CU_add_test(s, "nested and huge lengths", test_nested_truncated);
    CU_add_test(s, "huge recipient counts", test_huge_counts);
    CU_add_test(s, "QREC_MAX_RCPT recipients fit one frame", test_max_rcpt_fits_frame);
    CU_add_test(s, "add recipients", test_add_rcpt);
    CU_add_test(s, "small error buffer", test_err_buffer_small);
    CU_add_test(s, "queue name", test_queue_name);
    CU_add_test(s, "envelope and recipients as parts", test_parts_concat);
    CU_add_test(s, "one recipient is validated", test_rcpt_decode_checks);
    CU_add_test(s, "peek one number", test_peek_u64);
    CU_add_test(s, "damaged is always held", test_damaged_flag);
    CU_add_test(s, "10,000 recipients of 256 bytes fit one frame", test_10k_long_rcpt_frame);
}
