/*
 * test_txn.c - CUnit suite for smtpd/txn.c, the mail transaction without
 * a socket: MAIL and RCPT parameters and their refusals, a transaction of
 * 100,000 recipients, DATA framing (dot-stuffing, the only end being
 * <CRLF>.<CRLF>, bare LF poisoning, SIZE with the trace line exempt, over-
 * long lines) and BDAT framing, checked against the spool file's bytes.
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "../../smtpd/txn.h"
#include "util.h"

static int mail(struct txn *t, const char *params, char *err)
{
    char p[512];
    uint64_t size;
    int utf8, r;

    str_copy(p, params, sizeof(p));
    r = txn_mail_params(t, p, &size, &utf8, err, TXN_REPLY_MAX);
    if (r == 0)
        txn_mail(t, "s@example.org", utf8, 1000);
    return r;
}

static void test_mail_params(void)
{
    struct txn t;
    char err[TXN_REPLY_MAX], p[256];
    uint64_t size;
    int utf8;

    txn_init(&t);
    str_copy(p, " SIZE=123 BODY=8bitmime RET=HDRS ENVID=a+2Bb SMTPUTF8", sizeof(p));
    CU_ASSERT_EQUAL(txn_mail_params(&t, p, &size, &utf8, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(size, 123);
    CU_ASSERT_EQUAL(utf8, 1);
    CU_ASSERT_EQUAL(t.env.body, BODY_8BITMIME);
    CU_ASSERT_EQUAL(t.env.ret, RET_HDRS);
    CU_ASSERT_STRING_EQUAL(t.env.envid, "a+2Bb");
    txn_mail(&t, "s@example.org", utf8, 1000);
    CU_ASSERT_TRUE(t.active);
    CU_ASSERT_TRUE(t.env.flags & QF_SMTPUTF8);
    CU_ASSERT_STRING_EQUAL(t.env.sender, "s@example.org");
    txn_reset(&t);
    CU_ASSERT_FALSE(t.active);
    CU_ASSERT_EQUAL(t.env.body, BODY_NONE);

    CU_ASSERT_EQUAL(mail(&t, " SIZE=x", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad SIZE parameter syntax");
    CU_ASSERT_EQUAL(mail(&t, " BODY=9BIT", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad BODY parameter syntax");
    CU_ASSERT_EQUAL(mail(&t, " RET=ALL", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad RET parameter syntax");
    CU_ASSERT_EQUAL(mail(&t, " ENVID=a=b", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad ENVID parameter syntax");
    CU_ASSERT_EQUAL(mail(&t, " SIZE=1 SIZE=2", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "555 5.5.4 Unsupported option: SIZE");
    CU_ASSERT_EQUAL(mail(&t, " SMTPUTF8=yes", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "555 5.5.4 Unsupported option: SMTPUTF8");
    CU_ASSERT_EQUAL(mail(&t, " X-FOO=1", err), -1);
    CU_ASSERT_STRING_EQUAL(err, "555 5.5.4 Unsupported option: X-FOO");
    CU_ASSERT_EQUAL(mail(&t, "", err), 0);
    txn_reset(&t);
    qrec_free(&t.env);
}

static void test_rcpt_params(void)
{
    char p[256], orcpt[QREC_ORCPT_MAX + 1], err[TXN_REPLY_MAX];
    unsigned notify;

    str_copy(p, " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb@example.org", sizeof(p));
    CU_ASSERT_EQUAL(txn_rcpt_params(p, &notify, orcpt, sizeof(orcpt), err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(notify, NOTIFY_SUCCESS | NOTIFY_DELAY);
    CU_ASSERT_STRING_EQUAL(orcpt, "rfc822;a+2Bb@example.org");
    str_copy(p, " NOTIFY=NEVER,DELAY", sizeof(p));
    CU_ASSERT_EQUAL(txn_rcpt_params(p, &notify, orcpt, sizeof(orcpt), err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad NOTIFY parameter syntax");
    str_copy(p, " ORCPT=rfc822", sizeof(p));
    CU_ASSERT_EQUAL(txn_rcpt_params(p, &notify, orcpt, sizeof(orcpt), err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "501 5.5.4 Bad ORCPT parameter syntax");
    str_copy(p, " FOO", sizeof(p));
    CU_ASSERT_EQUAL(txn_rcpt_params(p, &notify, orcpt, sizeof(orcpt), err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "555 5.5.4 Unsupported option: FOO");
    str_copy(p, "", sizeof(p));
    CU_ASSERT_EQUAL(txn_rcpt_params(p, &notify, orcpt, sizeof(orcpt), err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(notify, 0);
    CU_ASSERT_STRING_EQUAL(orcpt, "");
}

static void test_many_recipients(void)
{
    struct txn t;
    char err[TXN_REPLY_MAX], a[64];
    uint64_t t0 = now_ms();
    int bad = 0;

    txn_init(&t);
    CU_ASSERT_EQUAL(mail(&t, "", err), 0);
    for (unsigned i = 0; i < QREC_MAX_RCPT; i++) {
        snprintf(a, sizeof(a), "r%u@example.org", i);
        bad += txn_add_rcpt(&t, a, i % 3 ? 0 : NOTIFY_NEVER, i % 2 ? "" : "rfc822;x@y", QREC_MAX_RCPT,
                            err, sizeof(err)) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(t.env.nrcpt, QREC_MAX_RCPT);
    CU_ASSERT_STRING_EQUAL(t.env.rcpt[99999].addr, "r99999@example.org");
    CU_ASSERT_EQUAL(t.env.rcpt[99999].notify, NOTIFY_NEVER);
    CU_ASSERT_PTR_NULL(t.env.rcpt[99999].orcpt);
    CU_ASSERT_STRING_EQUAL(t.env.rcpt[99998].orcpt, "rfc822;x@y");
    CU_ASSERT_EQUAL(txn_add_rcpt(&t, "one@more.example", 0, "", QREC_MAX_RCPT, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "452 4.5.3 Error: too many recipients");
    txn_drop_last_rcpt(&t);
    CU_ASSERT_EQUAL(t.env.nrcpt, QREC_MAX_RCPT - 1);
    printf("(100000 recipients in %llu ms) ", (unsigned long long)(now_ms() - t0));
    /* the configured limit applies below the record's */
    txn_reset(&t);
    CU_ASSERT_EQUAL(mail(&t, "", err), 0);
    CU_ASSERT_EQUAL(txn_add_rcpt(&t, "a@b.example", 0, "", 1, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(txn_add_rcpt(&t, "c@d.example", 0, "", 1, err, sizeof(err)), -1);
    txn_reset(&t);
    qrec_free(&t.env);
}

/* A spool file and a transaction writing into it. */
static int spool(struct txn *t, uint64_t max)
{
    char err[TXN_REPLY_MAX], path[] = "/tmp/postern-txn.XXXXXX";
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    txn_init(t);
    mail(t, "", err);
    t->max_size = max;
    txn_spool_open(t, "ABCDEFGHJKLM", dup(fd), 0, "Received: x\r\n", 13);
    return fd;
}

static size_t spooled(int fd, char *out, size_t outlen)
{
    ssize_t n = pread(fd, out, outlen - 1, 0);

    out[n > 0 ? n : 0] = 0;
    return n > 0 ? (size_t)n : 0;
}

/* Feeds text through a line reader as the session would; returns 1 at the end of data. */
static int feed(struct txn *t, const char *text)
{
    struct linereader lr;
    const char *p = text, *line;
    size_t left = strlen(text), len;
    unsigned flags;

    lr_init(&lr, 100);
    while (lr_next(&lr, &p, &left, &line, &len, &flags) == 1)
        if (txn_data_line(t, line, len, flags))
            return left == 0 ? 1 : 2;
    return 0;
}

static void test_data_framing(void)
{
    struct txn t;
    char buf[4096];
    const char *why;
    int fd = spool(&t, 1000);

    CU_ASSERT_EQUAL(feed(&t, "Subject: x\r\n\r\n..dot\r\n.\r\n"), 1);
    CU_ASSERT_PTR_NULL(txn_data_end(&t, &why));
    CU_ASSERT_EQUAL(t.spool_fd, -1); /* closed, ready for commit */
    spooled(fd, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "Received: x\r\nSubject: x\r\n\r\n.dot\r\n");
    t.qid[0] = 0;
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);

    /* <LF>.<LF> and <CR>.<CR> are not the end; the bare LF poisons */
    fd = spool(&t, 1000);
    CU_ASSERT_EQUAL(feed(&t, "a\n.\nMAIL FROM:<x@y>\r\n"), 0);
    CU_ASSERT_EQUAL(feed(&t, "\r\n.\r\n"), 1);
    CU_ASSERT_STRING_EQUAL(txn_data_end(&t, &why),
                           "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted");
    CU_ASSERT_STRING_EQUAL(why, "bare CR, bare LF or NUL in data");
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);

    /* SIZE: the trace line does not count; the data does */
    fd = spool(&t, 20);
    CU_ASSERT_EQUAL(feed(&t, "012345678901234567\r\n.\r\n"), 1);
    CU_ASSERT_PTR_NULL(txn_data_end(&t, &why)); /* 20 bytes, the limit is 20 */
    t.qid[0] = 0;
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);
    fd = spool(&t, 20);
    CU_ASSERT_EQUAL(feed(&t, "0123456789012345678\r\n.\r\n"), 1);
    CU_ASSERT_STRING_EQUAL(txn_data_end(&t, &why), "552 5.3.4 Message size exceeds fixed limit");
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);

    /* over-long line */
    fd = spool(&t, 100000);
    memset(buf, 'x', 300);
    strcpy(buf + 300, "\r\n.\r\n");
    CU_ASSERT_EQUAL(feed(&t, buf), 1);
    CU_ASSERT_STRING_EQUAL(txn_data_end(&t, &why), "500 5.5.2 Error: line too long; message not accepted");
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);
}

static void test_bdat_framing(void)
{
    struct txn t;
    char buf[256];
    const char *why;
    int fd = spool(&t, 1000);

    t.bdat_lr = malloc(sizeof(*t.bdat_lr));
    CU_ASSERT_FATAL(t.bdat_lr != NULL);
    lr_init(t.bdat_lr, 100);
    t.via_bdat = 1;
    txn_bdat_bytes(&t, "a\r\n.b\r", 6);  /* bytes go as they are: no dot-unstuffing */
    txn_bdat_bytes(&t, "\nc", 2);
    txn_bdat_finish(&t);                 /* the missing line end is added */
    CU_ASSERT_PTR_NULL(txn_data_end(&t, &why));
    spooled(fd, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "Received: x\r\na\r\n.b\r\nc\r\n");
    t.qid[0] = 0;
    txn_reset(&t);
    CU_ASSERT_PTR_NULL(t.bdat_lr);
    qrec_free(&t.env);
    close(fd);

    fd = spool(&t, 1000);
    t.bdat_lr = malloc(sizeof(*t.bdat_lr));
    CU_ASSERT_FATAL(t.bdat_lr != NULL);
    lr_init(t.bdat_lr, 100);
    txn_bdat_bytes(&t, "a\nb\r\n", 5);
    txn_bdat_finish(&t);
    CU_ASSERT_STRING_EQUAL(txn_data_end(&t, &why),
                           "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted");
    txn_reset(&t);
    qrec_free(&t.env);
    close(fd);
}

void suite_txn(void)
{
    CU_pSuite s = CU_add_suite("txn", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "MAIL parameters", test_mail_params);
    CU_add_test(s, "RCPT parameters", test_rcpt_params);
    CU_add_test(s, "100,000 recipients", test_many_recipients);
    CU_add_test(s, "DATA framing", test_data_framing);
    CU_add_test(s, "BDAT framing", test_bdat_framing);
}
