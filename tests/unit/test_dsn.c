/*
 * test_dsn.c - CUnit suite for common/dsn.c (xtext encode, decode and
 * validate; NOTIFY, RET, ENVID, ORCPT) and common/received.c (both forms
 * of the Received: line, byte for byte).
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "dsn.h"
#include "qrecord.h"
#include "received.h"
#include "suites.h"

static void test_xtext_valid(void)
{
    char big[DSN_ENVID_MAX + 2];

    CU_ASSERT_TRUE(xtext_valid("abc", 100));
    CU_ASSERT_TRUE(xtext_valid("a+2Bb+3D", 100));
    CU_ASSERT_TRUE(xtext_valid("a+2bb", 100));      /* lower-case hex accepted on input */
    CU_ASSERT_FALSE(xtext_valid("", 100));
    CU_ASSERT_FALSE(xtext_valid("a=b", 100));       /* '=' must be encoded */
    CU_ASSERT_FALSE(xtext_valid("a+", 100));
    CU_ASSERT_FALSE(xtext_valid("a+2", 100));
    CU_ASSERT_FALSE(xtext_valid("a+G0", 100));
    CU_ASSERT_FALSE(xtext_valid("a b", 100));
    CU_ASSERT_FALSE(xtext_valid("a\x7f", 100));
    CU_ASSERT_FALSE(xtext_valid("\xc3\xa9", 100));
    /* the limit counts characters as sent, escapes included */
    memset(big, 'x', DSN_ENVID_MAX);
    big[DSN_ENVID_MAX] = 0;
    CU_ASSERT_TRUE(dsn_envid_valid(big));
    big[DSN_ENVID_MAX] = 'x';
    big[DSN_ENVID_MAX + 1] = 0;
    CU_ASSERT_FALSE(dsn_envid_valid(big));
    CU_ASSERT_FALSE(xtext_valid("+41+41", 5));
    CU_ASSERT_TRUE(xtext_valid("+41+41", 6));
}

static void test_xtext_roundtrip(void)
{
    char enc[64], dec[64];
    const char *in = "a b+c=d\x01\xff~";

    CU_ASSERT_EQUAL(xtext_encode(in, strlen(in), enc, sizeof(enc)), (long)strlen("a+20b+2Bc+3Dd+01+FF~"));
    CU_ASSERT_STRING_EQUAL(enc, "a+20b+2Bc+3Dd+01+FF~");
    CU_ASSERT_TRUE(xtext_valid(enc, 100));
    CU_ASSERT_EQUAL(xtext_decode(enc, dec, sizeof(dec)), (long)strlen(in));
    CU_ASSERT_STRING_EQUAL(dec, in);
    /* every byte but NUL survives the round trip */
    for (int c = 1; c < 256; c++) {
        char one[2] = { (char)c, 0 };
        CU_ASSERT_TRUE(xtext_encode(one, 1, enc, sizeof(enc)) > 0);
        CU_ASSERT_TRUE(xtext_valid(enc, 3));
        CU_ASSERT_EQUAL(xtext_decode(enc, dec, sizeof(dec)), 1);
        CU_ASSERT_EQUAL((unsigned char)dec[0], (unsigned char)c);
    }
    /* too small, bad input, encoded NUL */
    CU_ASSERT_EQUAL(xtext_encode("abc", 3, enc, 3), -1);
    CU_ASSERT_EQUAL(xtext_encode(" ", 1, enc, 3), -1);
    CU_ASSERT_EQUAL(xtext_encode(" ", 1, enc, 4), 3);
    CU_ASSERT_EQUAL(xtext_decode("abc", dec, 3), -1);
    CU_ASSERT_EQUAL(xtext_decode("abc", dec, 4), 3);
    CU_ASSERT_EQUAL(xtext_decode("a=b", dec, sizeof(dec)), -1);
    CU_ASSERT_EQUAL(xtext_decode("a+00", dec, sizeof(dec)), -1);
    CU_ASSERT_EQUAL(xtext_decode("+4", dec, sizeof(dec)), -1);
}

static void test_notify(void)
{
    unsigned b = 0;

    CU_ASSERT_EQUAL(dsn_parse_notify("NEVER", &b), 0);
    CU_ASSERT_EQUAL(b, NOTIFY_NEVER);
    CU_ASSERT_EQUAL(dsn_parse_notify("success,Failure,DELAY", &b), 0);
    CU_ASSERT_EQUAL(b, NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY);
    CU_ASSERT_EQUAL(dsn_parse_notify("DELAY", &b), 0);
    CU_ASSERT_EQUAL(b, NOTIFY_DELAY);
    b = 99;
    CU_ASSERT_EQUAL(dsn_parse_notify("NEVER,SUCCESS", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify("SUCCESS,SUCCESS", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify("", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify("SUCCESS,", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify(",SUCCESS", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify("SUCCES", &b), -1);
    CU_ASSERT_EQUAL(dsn_parse_notify("SUCCESSX", &b), -1);
    CU_ASSERT_EQUAL(b, 99); /* untouched on failure */
}

static void test_ret_orcpt(void)
{
    unsigned r = 0;
    char big[DSN_ORCPT_MAX + 2];

    CU_ASSERT_EQUAL(dsn_parse_ret("full", &r), 0);
    CU_ASSERT_EQUAL(r, RET_FULL);
    CU_ASSERT_EQUAL(dsn_parse_ret("HDRS", &r), 0);
    CU_ASSERT_EQUAL(r, RET_HDRS);
    CU_ASSERT_EQUAL(dsn_parse_ret("HEADERS", &r), -1);
    CU_ASSERT_TRUE(dsn_orcpt_valid("rfc822;a@b.example", 0));
    CU_ASSERT_TRUE(dsn_orcpt_valid("rfc822;a+2Bb@example", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid("rfc822;", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid(";a@b", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid("rfc822", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid("rfc 822;a@b", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid("rfc822;a=b", 0));
    CU_ASSERT_FALSE(dsn_orcpt_valid("utf-8;\xc3\xa9@b", 0));
    CU_ASSERT_TRUE(dsn_orcpt_valid("utf-8;\xc3\xa9@b", 1));
    CU_ASSERT_FALSE(dsn_orcpt_valid("utf-8;\xc3\xa9 @b", 1));
    memcpy(big, "rfc822;", 7);
    memset(big + 7, 'x', DSN_ORCPT_MAX - 7);
    big[DSN_ORCPT_MAX] = 0;
    CU_ASSERT_TRUE(dsn_orcpt_valid(big, 0));
    big[DSN_ORCPT_MAX] = 'x';
    big[DSN_ORCPT_MAX + 1] = 0;
    CU_ASSERT_FALSE(dsn_orcpt_valid(big, 0));
}

/* 2026-01-02 03:04:05 UTC, printed in the local zone: compare the prefix
 * and the date's presence, not the zone. */
#define WHEN ((time_t)1767323045)

static void test_received_smtp(void)
{
    char out[1400];
    struct received_smtp r = {
        .helo = "client.example", .addr = "192.0.2.1", .tls = NULL, .host = "mx.example",
        .proto = "ESMTP", .qid = "ABCDEFGHJKLM", .rcpt = "a@b.example", .when = WHEN,
    };
    int n = received_smtp(out, sizeof(out), &r);
    const char *want = "Received: from client.example (unknown [192.0.2.1])\r\n"
                       "\tby mx.example (Postern) with ESMTP id ABCDEFGHJKLM\r\n\tfor <a@b.example>; ";

    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_EQUAL((size_t)n, strlen(out));
    CU_ASSERT_EQUAL(strncmp(out, want, strlen(want)), 0);
    CU_ASSERT_STRING_EQUAL(out + n - 2, "\r\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " 2026 "));

    r.addr = "2001:db8::1";
    r.tls = "TLSv1.3 with cipher X (256/256 bits)";
    r.rcpt = NULL;
    r.proto = "ESMTPS";
    n = received_smtp(out, sizeof(out), &r);
    want = "Received: from client.example (unknown [IPv6:2001:db8::1])\r\n"
           "\t(using TLSv1.3 with cipher X (256/256 bits))\r\n"
           "\tby mx.example (Postern) with ESMTPS id ABCDEFGHJKLM; ";
    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_EQUAL(strncmp(out, want, strlen(want)), 0);
    CU_ASSERT_EQUAL(received_smtp(out, 40, &r), -1);
}

static void test_received_local(void)
{
    char out[512];
    int n = received_local(out, sizeof(out), "mx.example", 1000, "ABCDEFGHJKLM", WHEN);
    const char *want = "Received: by mx.example (Postern, from userid 1000)\r\n\tid ABCDEFGHJKLM; ";

    CU_ASSERT_TRUE(n > 0);
    CU_ASSERT_EQUAL(strncmp(out, want, strlen(want)), 0);
    CU_ASSERT_STRING_EQUAL(out + n - 2, "\r\n");
    CU_ASSERT_EQUAL(received_local(out, 20, "mx.example", 1000, "ABCDEFGHJKLM", WHEN), -1);
}

void suite_dsn(void)
{
    CU_pSuite s = CU_add_suite("dsn", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "xtext validity and length", test_xtext_valid);
    CU_add_test(s, "xtext encode/decode round trip", test_xtext_roundtrip);
    CU_add_test(s, "NOTIFY", test_notify);
    CU_add_test(s, "RET and ORCPT", test_ret_orcpt);
    CU_add_test(s, "Received: for SMTP", test_received_smtp);
    CU_add_test(s, "Received: for local submission", test_received_local);
}
