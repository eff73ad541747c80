/*
 * test_smtpc.c - CUnit suites for the SMTP client engine's pure parts:
 * deliver/reply.c (reply parser: multi-line, codes, enhanced codes, CRLF,
 * limits, pipelined replies; every input also fed at every split point and
 * byte by byte), deliver/dotstuff.c (dot-stuffing, CRLF normalisation,
 * across block boundaries) and deliver/mime8.c (8bit -> quoted-printable on
 * real MIME: multipart, nested, message/rfc822, base64 left alone, long
 * lines, the refusals; round trip through a QP decoder; chunking).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "mime8.h"
#include "reply.h"
#include "suites.h"

/* ------------------------------------------------------------------ */
/* reply parser                                                        */

#define RT_MAX 8

struct rt_result {
    int n;
    int code[RT_MAX];
    char enh[RT_MAX][16];
    char text[RT_MAX][256];
    unsigned nlines[RT_MAX];
    int error;
    char err[128];
};

static void rt_feed(struct reply_parser *p, const char *in, size_t len, struct rt_result *r)
{
    while (len > 0 && !r->error) {
        size_t used = 0;
        int rc = reply_feed(p, in, len, &used);
        CU_ASSERT(used <= len);
        in += used;
        len -= used;
        if (rc == REPLY_ERROR) {
            r->error = 1;
            snprintf(r->err, sizeof(r->err), "%s", p->err);
            return;
        }
        if (rc == REPLY_MORE) {
            CU_ASSERT(len == 0);
            return;
        }
        if (r->n < RT_MAX) {
            r->code[r->n] = p->r.code;
            snprintf(r->enh[r->n], 16, "%s", p->r.enh);
            snprintf(r->text[r->n], 256, "%.*s", (int)(p->r.textlen < 255 ? p->r.textlen : 255), p->r.text);
            r->nlines[r->n] = p->r.nlines;
        }
        r->n++;
    }
}

/* Parses in whole, at every split point and byte by byte; all must agree. */
static void rt_parse(const char *in, size_t len, struct rt_result *out)
{
    struct reply_parser *p = malloc(sizeof(*p));
    struct rt_result *r = malloc(sizeof(*r));

    CU_ASSERT_FATAL(p && r);
    memset(out, 0, sizeof(*out));
    reply_init(p);
    rt_feed(p, in, len, out);
    for (size_t cut = 0; cut <= len; cut++) {
        memset(r, 0, sizeof(*r));
        reply_init(p);
        rt_feed(p, in, cut, r);
        rt_feed(p, in + cut, len - cut, r);
        CU_ASSERT(r->n == out->n && r->error == out->error);
        if (r->n == out->n && r->n > 0)
            CU_ASSERT(memcmp(r->code, out->code, sizeof(int) * (size_t)(r->n < RT_MAX ? r->n : RT_MAX)) == 0);
        if (!out->error && r->n > 0 && out->n > 0)
            CU_ASSERT_STRING_EQUAL(r->text[0], out->text[0]);
    }
    memset(r, 0, sizeof(*r));
    reply_init(p);
    for (size_t i = 0; i < len; i++)
        rt_feed(p, in + i, 1, r);
    CU_ASSERT(r->n == out->n && r->error == out->error);
    free(r);
    free(p);
}

#define RT(s, r) rt_parse((s), sizeof(s) - 1, (r))

static void test_reply_single(void)
{
    struct rt_result r;

    RT("220 mx.example ESMTP ready\r\n", &r);
    CU_ASSERT(!r.error && r.n == 1 && r.code[0] == 220 && r.nlines[0] == 1);
    CU_ASSERT_STRING_EQUAL(r.text[0], "mx.example ESMTP ready");
    CU_ASSERT_STRING_EQUAL(r.enh[0], "");
    RT("250\r\n", &r);
    CU_ASSERT(!r.error && r.n == 1 && r.code[0] == 250);
    CU_ASSERT_STRING_EQUAL(r.text[0], "");
    RT("550 5.1.1 <x@y>: no such user\r\n", &r);
    CU_ASSERT(!r.error && r.code[0] == 550);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "5.1.1");
    RT("451 4.3.0 later\r\n", &r);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "4.3.0");
    RT("550 4.1.1 class does not match\r\n", &r);
    CU_ASSERT(!r.error);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "");
    RT("250 2.1.5\r\n", &r);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "2.1.5");
    RT("250 2.1.5x text\r\n", &r);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "");
    RT("250 2.1234.5 text\r\n", &r);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "");
    /* an incomplete line is no reply yet */
    RT("220 still com", &r);
    CU_ASSERT(!r.error && r.n == 0);
}

static void test_reply_multiline(void)
{
    struct rt_result r;
    struct reply_parser p;
    size_t used, len;
    static const char ehlo[] = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

    RT("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n", &r);
    CU_ASSERT(!r.error && r.n == 1 && r.code[0] == 250 && r.nlines[0] == 4);
    CU_ASSERT_STRING_EQUAL(r.text[0], "mx.example\nPIPELINING\nSIZE 10240000\n8BITMIME");
    reply_init(&p);
    CU_ASSERT(reply_feed(&p, ehlo, sizeof(ehlo) - 1, &used) == REPLY_DONE && used == sizeof(ehlo) - 1);
    const char *l = reply_line(&p.r, 2, &len);
    CU_ASSERT(l && len == 13 && memcmp(l, "SIZE 10240000", 13) == 0);
    l = reply_line(&p.r, 0, &len);
    CU_ASSERT(l && len == 10 && memcmp(l, "mx.example", 10) == 0);
    CU_ASSERT(reply_line(&p.r, 4, &len) == NULL);
    /* "250-" with empty text is allowed */
    RT("250-\r\n250 ok\r\n", &r);
    CU_ASSERT(!r.error && r.n == 1 && r.nlines[0] == 2);
    /* the enhanced code comes from the first line */
    RT("550-5.7.1 first\r\n550 5.7.1 second\r\n", &r);
    CU_ASSERT_STRING_EQUAL(r.enh[0], "5.7.1");
}

static void test_reply_pipelined(void)
{
    struct rt_result r;

    RT("250 2.1.0 Ok\r\n550 5.1.1 no\r\n250 2.1.5 Ok\r\n354 go ahead\r\n", &r);
    CU_ASSERT(!r.error && r.n == 4);
    CU_ASSERT(r.code[0] == 250 && r.code[1] == 550 && r.code[2] == 250 && r.code[3] == 354);
    CU_ASSERT_STRING_EQUAL(r.enh[1], "5.1.1");
    CU_ASSERT_STRING_EQUAL(r.enh[2], "2.1.5");
    CU_ASSERT_STRING_EQUAL(r.text[3], "go ahead");
    /* the second reply's text does not inherit the first's */
    RT("250-a\r\n250 b\r\n221 bye\r\n", &r);
    CU_ASSERT(r.n == 2 && r.nlines[1] == 1);
    CU_ASSERT_STRING_EQUAL(r.text[1], "bye");
}

static void expect_error(const char *in, size_t len, const char *why)
{
    struct rt_result r;

    rt_parse(in, len, &r);
    CU_ASSERT(r.error);
    if (r.error && !strstr(r.err, why))
        fprintf(stderr, "\n  want error %s, got %s\n", why, r.err);
    CU_ASSERT(strstr(r.err, why) != NULL);
}

#define ERR(s, why) expect_error((s), sizeof(s) - 1, (why))

static void test_reply_errors(void)
{
    ERR("22 hello\r\n", "three digits");
    ERR("2x0 what\r\n", "three digits");
    ERR("600 no such class\r\n", "three digits");
    ERR("160 no\r\n", "three digits");
    ERR("2500 four digits\r\n", "malformed");
    ERR("220xhello\r\n", "malformed");
    ERR("220 bare lf\n", "without CRLF");
    ERR("250-first\r\n250 second\n", "without CRLF");
    ERR("\r\n", "three digits");
    ERR("250-a\r\n251 b\r\n", "code changed");
    ERR("220 a\rb\r\n", "control character");
    ERR("220 a\0b\r\n", "control character");
    /* after an error the parser stays failed */
    struct reply_parser p;
    size_t used;
    reply_init(&p);
    CU_ASSERT(reply_feed(&p, "22 x\r\n", 6, &used) == REPLY_ERROR);
    CU_ASSERT(reply_feed(&p, "220 ok\r\n", 8, &used) == REPLY_ERROR);
}

static void test_reply_limits(void)
{
    struct reply_parser *p = malloc(sizeof(*p));
    char *big = malloc(11 << 20);
    size_t used, n;
    int rc;

    CU_ASSERT_FATAL(p && big);
    /* a 10 MB line: an error after REPLY_LINE_MAX bytes, not 10 MB of memory */
    memcpy(big, "220 ", 4);
    memset(big + 4, 'x', 10 << 20);
    memcpy(big + 4 + (10 << 20), "\r\n", 2);
    reply_init(p);
    rc = REPLY_MORE;
    for (n = 0; n < (10u << 20) + 6 && rc == REPLY_MORE; n += used) {
        size_t chunk = (10u << 20) + 6 - n < 4096 ? (10u << 20) + 6 - n : 4096;
        rc = reply_feed(p, big + n, chunk, &used);
    }
    CU_ASSERT(rc == REPLY_ERROR && strstr(p->err, "too long") != NULL);
    CU_ASSERT(n <= REPLY_LINE_MAX + 4096);
    /* a line of exactly REPLY_LINE_MAX bytes is fine, one more is not */
    memcpy(big, "250 ", 4);
    memset(big + 4, 'y', REPLY_LINE_MAX - 6);
    memcpy(big + REPLY_LINE_MAX - 2, "\r\n", 2);
    reply_init(p);
    CU_ASSERT(reply_feed(p, big, REPLY_LINE_MAX, &used) == REPLY_DONE);
    CU_ASSERT(p->r.truncated == 0 && p->r.textlen == REPLY_LINE_MAX - 6);
    memcpy(big + REPLY_LINE_MAX - 2, "y\r\n", 3);
    reply_init(p);
    CU_ASSERT(reply_feed(p, big, REPLY_LINE_MAX + 1, &used) == REPLY_ERROR);
    /* an endless multi-line reply: an error after REPLY_MAX_LINES lines */
    reply_init(p);
    rc = REPLY_MORE;
    for (n = 0; n < 100000 && rc == REPLY_MORE; n++)
        rc = reply_feed(p, "220-still going\r\n", 17, &used);
    CU_ASSERT(rc == REPLY_ERROR && strstr(p->err, "too many lines") != NULL);
    CU_ASSERT(n == REPLY_MAX_LINES + 1);
    /* many long lines: an error at REPLY_MAX_BYTES */
    memset(big, 'z', 2000);
    memcpy(big, "250-", 4);
    memcpy(big + 1998, "\r\n", 2);
    reply_init(p);
    rc = REPLY_MORE;
    for (n = 0; n < 1000 && rc == REPLY_MORE; n++)
        rc = reply_feed(p, big, 2000, &used);
    CU_ASSERT(rc == REPLY_ERROR && strstr(p->err, "reply too long") != NULL);
    CU_ASSERT(n <= REPLY_MAX_BYTES / 2000 + 1);
    /* the kept text is bounded: a long EHLO is truncated, not overflowed */
    reply_init(p);
    rc = REPLY_MORE;
    memset(big, 'k', 200);
    memcpy(big, "250-", 4);
    memcpy(big + 198, "\r\n", 2);
    for (n = 0; n < 100 && rc == REPLY_MORE; n++)
        rc = reply_feed(p, big, 200, &used);
    rc = reply_feed(p, "250 end\r\n", 9, &used);
    CU_ASSERT(rc == REPLY_DONE && p->r.truncated && p->r.textlen < REPLY_TEXT_MAX);
    free(big);
    free(p);
}

/* ------------------------------------------------------------------ */
/* dot-stuffing                                                        */

/* Stuffs in at every split point; all results must equal want. */
static void ds_check(const char *in, size_t len, const char *want)
{
    char *out = malloc(2 * len + 16);

    CU_ASSERT_FATAL(out != NULL);
    for (size_t cut = 0; cut <= len; cut++) {
        struct dotstuff d;
        size_t o;
        dotstuff_init(&d);
        o = dotstuff_block(&d, in, cut, out);
        o += dotstuff_block(&d, in + cut, len - cut, out + o);
        o += dotstuff_finish(&d, out + o);
        CU_ASSERT(o == strlen(want) && memcmp(out, want, o) == 0);
        if (o != strlen(want) || memcmp(out, want, o) != 0)
            fprintf(stderr, "\n  cut %zu: got %.*s\n", cut, (int)o, out);
    }
    /* byte by byte */
    struct dotstuff d;
    size_t o = 0;
    dotstuff_init(&d);
    for (size_t i = 0; i < len; i++)
        o += dotstuff_block(&d, in + i, 1, out + o);
    o += dotstuff_finish(&d, out + o);
    CU_ASSERT(o == strlen(want) && memcmp(out, want, o) == 0);
    free(out);
}

#define DS(in, want) ds_check((in), sizeof(in) - 1, (want))

static void test_dotstuff(void)
{
    DS("", ".\r\n");
    DS("a\r\n", "a\r\n.\r\n");
    DS("a\r\n.b\r\n", "a\r\n..b\r\n.\r\n");
    DS(".\r\n", "..\r\n.\r\n");
    DS("..\r\n...x\r\n", "...\r\n....x\r\n.\r\n");
    DS(".start", "..start\r\n.\r\n");
    DS("no end", "no end\r\n.\r\n");
    DS("ends in cr\r", "ends in cr\r\n.\r\n");
    DS("bare\nlf\n.dot\n", "bare\r\nlf\r\n..dot\r\n.\r\n");
    DS("lone\rcr\r\n", "lone\rcr\r\n.\r\n");
    DS("\r\n\r\n.\r\n", "\r\n\r\n..\r\n.\r\n");
    DS("mid.dot .x\r\n", "mid.dot .x\r\n.\r\n");
    DS("\n\n", "\r\n\r\n.\r\n");
}

static void test_dotstuff_worst_case_size(void)
{
    char in[1000], *out = malloc(2 * sizeof(in) + 8);
    struct dotstuff d;

    CU_ASSERT_FATAL(out != NULL);
    for (size_t i = 0; i < sizeof(in); i += 2) {
        in[i] = '.';
        in[i + 1] = '\n';
    }
    dotstuff_init(&d);
    size_t o = dotstuff_block(&d, in, sizeof(in), out);
    CU_ASSERT(o == 2 * sizeof(in));
    free(out);
}

/* ------------------------------------------------------------------ */
/* 8bit -> quoted-printable                                            */

static int m8_convert(const char *in, size_t len, size_t chunk, struct buf *out, char *err, size_t errlen)
{
    struct mime8 *m = malloc(sizeof(*m));
    int rc = 0;

    CU_ASSERT_FATAL(m != NULL);
    mime8_init(m);
    buf_init(out, 8u << 20);
    for (size_t i = 0; i < len && rc == 0; i += chunk)
        rc = mime8_feed(m, in + i, len - i < chunk ? len - i : chunk, out);
    if (rc == 0)
        rc = mime8_finish(m, out);
    /* NUL-terminate for strstr, outside the length */
    if (buf_append(out, "", 1) == 0)
        out->len--;
    if (err)
        snprintf(err, errlen, "%s", m->err);
    mime8_free(m);
    free(m);
    return rc;
}

/* Decodes quoted-printable text (soft breaks, =XX). */
static size_t qp_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (in[i] == '=' && i + 2 < len + 1 && i + 1 < len && in[i + 1] == '\r') {
            i += 2;
            continue;
        }
        if (in[i] == '=' && i + 2 < len) {
            char h[3] = { in[i + 1], in[i + 2], 0 };
            out[o++] = (char)strtol(h, NULL, 16);
            i += 2;
            continue;
        }
        out[o++] = in[i];
    }
    return o;
}

static int has8(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)buf_head(b)[i] & 0x80)
            return 1;
    return 0;
}

static void assert_lines_short(const struct buf *b, size_t max)
{
    const char *p = buf_head(b), *end = p + b->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        CU_ASSERT(l <= max);
        p += l;
    }
}

static const char MP[] =
    "From: a@example.com\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n"
    "\r\n"
    "This is a multi-part message.\r\n"
    "--=_outer\r\n"
    "Content-Type: multipart/alternative;\r\n boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "content-transfer-encoding: 8BIT\r\n"
    "\r\n"
    "Gr\xc3\xbc\xc3\x9f" "e = hi \r\n"
    ".dot line\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding:\r\n 8bit\r\n"
    "\r\n"
    "<p>\xc3\xa9</p>\r\n"
    "--inner--\r\n"
    "--=_outer\r\n"
    "Content-Type: image/png\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgo=\r\n"
    "--=_outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner message\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "na\xc3\xafve\r\n"
    "--=_outer--  \r\n"
    "epilogue\r\n";

static void test_mime8_multipart(void)
{
    struct buf out;
    char err[128];

    CU_ASSERT_FATAL(m8_convert(MP, sizeof(MP) - 1, sizeof(MP), &out, err, sizeof(err)) == 0);
    const char *o = buf_head(&out);
    CU_ASSERT(!has8(&out));
    CU_ASSERT(strstr(o, "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe =3D hi=20\r\n.dot line\r\n") != NULL);
    CU_ASSERT(strstr(o, "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=A9</p>\r\n") != NULL);
    CU_ASSERT(strstr(o, " 8bit") == NULL);     /* the folded CTE is gone */
    CU_ASSERT(strstr(o, "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n") != NULL);
    CU_ASSERT(strstr(o, "Subject: inner message\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n") != NULL);
    CU_ASSERT(strstr(o, "--=_outer--  \r\nepilogue\r\n") != NULL);
    CU_ASSERT(strstr(o, "From: a@example.com\r\nMIME-Version: 1.0\r\n") == o);
    /* same result whatever the block size */
    for (size_t chunk = 1; chunk < 64; chunk++) {
        struct buf o2;
        CU_ASSERT(m8_convert(MP, sizeof(MP) - 1, chunk, &o2, NULL, 0) == 0);
        CU_ASSERT(o2.len == out.len && memcmp(buf_head(&o2), buf_head(&out), out.len) == 0);
        buf_free(&o2);
    }
    buf_free(&out);
}

static void test_mime8_unchanged_when_7bit(void)
{
    static const char msg[] = "Subject: ascii\r\n\r\nplain = text \r\n.x\r\n";
    struct buf out;

    CU_ASSERT(m8_convert(msg, sizeof(msg) - 1, 7, &out, NULL, 0) == 0);
    CU_ASSERT(out.len == sizeof(msg) - 1 && memcmp(buf_head(&out), msg, out.len) == 0);
    buf_free(&out);
    CU_ASSERT(m8_convert(MP, 200, 1000, &out, NULL, 0) == 0);   /* a prefix, no 8-bit yet */
    CU_ASSERT(out.len == 200 && memcmp(buf_head(&out), MP, 200) == 0);
    buf_free(&out);
}

static void refuse(const char *msg, const char *why)
{
    struct buf out;
    char err[128];

    CU_ASSERT(m8_convert(msg, strlen(msg), 13, &out, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, why) != NULL);
    if (!strstr(err, why))
        fprintf(stderr, "\n  want %s, got %s\n", why, err);
    buf_free(&out);
}

static void test_mime8_refusals(void)
{
    refuse("Subject: caf\xc3\xa9\r\n\r\nbody\r\n", "8-bit header");
    refuse("Subject: x\r\n\r\nnon-MIME caf\xc3\xa9\r\n", "not declared 8bit");
    refuse("MIME-Version: 1.0\r\nContent-Transfer-Encoding: 7bit\r\n\r\ncaf\xc3\xa9\r\n", "not declared 8bit");
    refuse("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n\xff\xfe\r\n", "not declared 8bit");
    refuse("Content-Type: multipart/mixed; boundary=b\r\n\r\npre\xc3\xa9\r\n--b\r\n\r\nx\r\n--b--\r\n",
           "outside a MIME part");
    refuse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
           "Subject: \xc3\xa9\r\n\r\nx\r\n--b--\r\n", "8-bit header");
    refuse("Content-Type: multipart/mixed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--x\r\n\r\n\xc3\xa9\r\n",
           "without a usable boundary");
    refuse("Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9\r\n",
           "not declared 8bit");
    /* a header block larger than the limit cannot be rewritten */
    size_t n = MIME8_HDR_MAX + 100;
    char *big = malloc(n + 64);
    CU_ASSERT_FATAL(big != NULL);
    strcpy(big, "X-Long: ");
    for (size_t i = 8; i < n; i += 40)
        memcpy(big + i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\t", 40);
    strcpy(big + n - (n - 8) % 40, "\r\n\r\nbody\r\n");
    refuse(big, "header block too large");
    free(big);
    /* nesting deeper than MIME8_DEPTH */
    char deep[4096];
    size_t o = 0;
    for (int i = 0; i <= MIME8_DEPTH; i++)
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    refuse(deep, "too deep");
}

static void test_mime8_long_lines_round_trip(void)
{
    /* a 20000-byte 8-bit line and a long line of '=' and spaces */
    size_t body = 20000;
    const char *hdr = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: binary\r\n\r\n";
    size_t hl = strlen(hdr), len = hl + body + 2 + 3000 + 2;
    char *msg = malloc(len), *dec = malloc(len * 2);
    struct buf out;

    CU_ASSERT_FATAL(msg && dec);
    memcpy(msg, hdr, hl);
    for (size_t i = 0; i < body; i++)
        msg[hl + i] = (char)(i % 3 == 0 ? 0xc3 : i % 3 == 1 ? 0xa9 : 'a' + (char)(i % 26));
    memcpy(msg + hl + body, "\r\n", 2);
    for (size_t i = 0; i < 3000; i++)
        msg[hl + body + 2 + i] = i % 2 ? '=' : ' ';
    memcpy(msg + len - 2, "\r\n", 2);
    for (size_t chunk = 1000; chunk <= 70000; chunk *= 7) {
        CU_ASSERT_FATAL(m8_convert(msg, len, chunk, &out, NULL, 0) == 0);
        CU_ASSERT(!has8(&out));
        assert_lines_short(&out, 78);
        const char *b = strstr(buf_head(&out), "quoted-printable\r\n\r\n");
        CU_ASSERT_FATAL(b != NULL);
        b += strlen("quoted-printable\r\n\r\n");
        size_t bl = out.len - (size_t)(b - buf_head(&out));
        size_t dl = qp_decode(b, bl, dec);
        CU_ASSERT(dl == body + 2 + 3000 + 2);
        CU_ASSERT(dl == body + 3004 && memcmp(dec, msg + hl, dl) == 0);
        buf_free(&out);
    }
    free(msg);
    free(dec);
}

static void add(const char *name, CU_TestFunc fn, CU_pSuite s)
{
    CU_add_test(s, name, fn);
}

void suite_smtpc(void)
{
    CU_pSuite s = CU_add_suite("smtpc", NULL, NULL);

    add("reply: single line, enhanced codes", test_reply_single, s);
    add("reply: multi-line", test_reply_multiline, s);
    add("reply: pipelined replies", test_reply_pipelined, s);
    add("reply: protocol errors", test_reply_errors, s);
    add("reply: limits (10 MB, endless, bytes)", test_reply_limits, s);
    add("dotstuff: stuffing and CRLF, every split", test_dotstuff, s);
    add("dotstuff: worst-case size", test_dotstuff_worst_case_size, s);
    add("mime8: multipart, nested, rfc822, base64", test_mime8_multipart, s);
    add("mime8: 7-bit input unchanged", test_mime8_unchanged_when_7bit, s);
    add("mime8: refusals (5.6.3 cases)", test_mime8_refusals, s);
    add("mime8: long lines, round trip", test_mime8_long_lines_round_trip, s);
}
