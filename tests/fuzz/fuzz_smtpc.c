/*
 * fuzz_smtpc.c - libFuzzer target for the SMTP client engine's parsers
 * (deliver/reply.c, deliver/dotstuff.c, deliver/mime8.c). Byte 0 picks the
 * module, byte 1 the read size the stream is cut into (1..256); the rest is
 * the input: a server's replies, spool content for DATA, or a message to
 * downgrade to 7 bits.
 *
 * Checks: the reply parser gives the same replies (codes, line counts) or
 * the same error whole and in pieces, never uses more than it was given,
 * and keeps text within REPLY_TEXT_MAX; dot-stuffing never lets the data
 * terminator CRLF.CRLF appear before its end, every line of its output
 * ends in CRLF, and undoing the stuffing gives the input back (line ends
 * made CRLF); the 8-bit converter gives the same output in pieces as whole
 * and, when it succeeds, output without a byte over 127 whose lines fit in
 * 1000 bytes (with CRLF) where the input's did.
 *
 * Build and run by hand (tests/fuzz/run does not list it yet):
 *   clang -std=gnu11 -D_GNU_SOURCE -g -O1 -Icommon -Ideliver \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_smtpc.c \
 *     deliver/reply.c deliver/dotstuff.c deliver/mime8.c common/buf.c \
 *     -o build/fuzz/fuzz_smtpc && build/fuzz/fuzz_smtpc -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "mime8.h"
#include "reply.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_smtpc: %s:%d: check failed: %s\n",             \
                    __FILE__, __LINE__, #cond);                                  \
            abort();                                                             \
        }                                                                        \
    } while (0)

struct rsum {
    unsigned n;
    unsigned long long hash;   /* codes and line counts in order */
    int error;
};

static void replies(const uint8_t *d, size_t len, size_t chunk, struct rsum *out)
{
    static struct reply_parser p;

    memset(out, 0, sizeof(*out));
    reply_init(&p);
    for (size_t i = 0; i < len && !out->error; i += chunk) {
        const char *in = (const char *)d + i;
        size_t left = len - i < chunk ? len - i : chunk;
        while (left > 0) {
            size_t used = 0;
            int rc = reply_feed(&p, in, left, &used);
            CHECK(used <= left);
            in += used;
            left -= used;
            if (rc == REPLY_ERROR) {
                out->error = 1;
                break;
            }
            if (rc == REPLY_MORE) {
                CHECK(left == 0);
                break;
            }
            CHECK(p.r.code >= 200 && p.r.code <= 559 && p.r.nlines >= 1 && p.r.nlines <= REPLY_MAX_LINES);
            CHECK(p.r.textlen < REPLY_TEXT_MAX && strlen(p.r.text) <= p.r.textlen);
            out->n++;
            out->hash = out->hash * 1000003u + (unsigned)p.r.code * 1000u + p.r.nlines;
        }
    }
}

static void fuzz_reply(const uint8_t *d, size_t len, size_t chunk)
{
    struct rsum a, b;

    replies(d, len, len ? len : 1, &a);
    replies(d, len, chunk, &b);
    CHECK(a.n == b.n && a.hash == b.hash && a.error == b.error);
}

static void fuzz_dotstuff(const uint8_t *d, size_t len, size_t chunk)
{
    char *out = malloc(2 * len + 8), *back = malloc(2 * len + 8);
    struct dotstuff ds;
    size_t o = 0, b = 0;

    CHECK(out && back);
    dotstuff_init(&ds);
    for (size_t i = 0; i < len; i += chunk)
        o += dotstuff_block(&ds, (const char *)d + i, len - i < chunk ? len - i : chunk, out + o);
    o += dotstuff_finish(&ds, out + o);
    CHECK(o <= 2 * len + 5);
    /* the terminator only at the very end (or as the whole of an empty body) */
    CHECK(o >= 3 && memcmp(out + o - 3, ".\r\n", 3) == 0);
    for (size_t i = 0; i + 5 <= o; i++)
        CHECK(memcmp(out + i, "\r\n.\r\n", 5) != 0 || i + 5 == o);
    CHECK(!(o > 3 && memcmp(out, ".\r\n", 3) == 0));
    /* every LF is preceded by CR; unstuffing gives the input back */
    for (size_t i = 0; i < o; i++)
        if (out[i] == '\n')
            CHECK(i > 0 && out[i - 1] == '\r');
    int bol = 1;
    for (size_t i = 0; i < o - 3; i++) {
        if (bol && out[i] == '.') {
            CHECK(i + 1 < o && out[i + 1] == '.');
            bol = 0;
            continue;      /* drop the stuffed dot, keep the next */
        }
        back[b++] = out[i];
        bol = out[i] == '\n';
    }
    /* expected: the input with bare LF made CRLF and a final CRLF added */
    size_t e = 0;
    char *want = malloc(2 * len + 8);
    CHECK(want != NULL);
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
            want[e++] = '\r';
        want[e++] = (char)d[i];
    }
    if (len > 0 && d[len - 1] != '\n') {
        if (d[len - 1] != '\r')
            want[e++] = '\r';
        want[e++] = '\n';
    }
    CHECK(b == e && memcmp(back, want, e) == 0);
    free(want);
    free(out);
    free(back);
}

static int convert(const uint8_t *d, size_t len, size_t chunk, struct buf *out)
{
    static struct mime8 m;
    int rc = 0;

    mime8_init(&m);
    buf_init(out, 16u << 20);
    for (size_t i = 0; i < len && rc == 0; i += chunk)
        rc = mime8_feed(&m, (const char *)d + i, len - i < chunk ? len - i : chunk, out);
    if (rc == 0)
        rc = mime8_finish(&m, out);
    mime8_free(&m);
    return rc;
}

/* The longest line (bytes up to and including LF). */
static size_t longest(const char *p, size_t n)
{
    size_t best = 0, cur = 0;

    for (size_t i = 0; i < n; i++) {
        cur++;
        if (p[i] == '\n') {
            best = cur > best ? cur : best;
            cur = 0;
        }
    }
    return cur > best ? cur : best;
}

static void fuzz_mime8(const uint8_t *d, size_t len, size_t chunk)
{
    struct buf a, b;
    int ra = convert(d, len, len ? len : 1, &a);
    int rb = convert(d, len, chunk, &b);

    CHECK(ra == rb);
    if (ra == 0) {
        CHECK(a.len == b.len && (a.len == 0 || memcmp(buf_head(&a), buf_head(&b), a.len) == 0));
        for (size_t i = 0; i < a.len; i++)
            CHECK(!((unsigned char)buf_head(&a)[i] & 0x80));
        if (longest((const char *)d, len) <= 1000 && a.len > 0)
            CHECK(longest(buf_head(&a), a.len) <= 1000);
    }
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[1] + 1;
    const uint8_t *d = data + 2;
    size_t len = size - 2;

    switch (data[0] % 3) {
    case 0:
        fuzz_reply(d, len, chunk);
        break;
    case 1:
        fuzz_dotstuff(d, len, chunk);
        break;
    default:
        fuzz_mime8(d, len, chunk);
        break;
    }
    return 0;
}
