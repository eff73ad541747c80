/*
 * test_linereader.c - CUnit suite for common/linereader.c: line splitting,
 * CRLF / bare LF / bare CR / NUL flags, the max line length (LR_TOOLONG),
 * bounded memory for endless lines, lr_reset, and the SMTP smuggling
 * sequences. Every input is also fed in every possible chunking and compared
 * with a simple reference model, so chunk boundaries cannot change a result.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linereader.h"
#include "suites.h"

#define LRT_MAXLINES 64

struct lrt_line {
    char data[LR_MAX_LINE];
    size_t len;
    unsigned flags;
};

struct lrt_result {
    struct lrt_line lines[LRT_MAXLINES];
    size_t n;       /* lines returned */
    size_t pending; /* lr_pending() after the last chunk */
    int bad;        /* a contract violation seen while feeding */
};

static void lrt_clear(struct lrt_result *r)
{
    r->n = 0;
    r->pending = 0;
    r->bad = 0;
}

/* Feeds one chunk, collecting every line it completes. */
static void lrt_feed(struct linereader *lr, const char *p, size_t len, struct lrt_result *r)
{
    const char *in = p, *line = NULL;
    size_t inlen = len, linelen = 0;
    unsigned flags = 0;

    for (;;) {
        size_t before = inlen;
        int rc = lr_next(lr, &in, &inlen, &line, &linelen, &flags);
        if (rc == 0) {
            if (inlen != 0) /* 0 means the input is used up */
                r->bad = 1;
            break;
        }
        if (rc != 1 || inlen >= before || in != p + (len - inlen) || linelen > lr->max ||
            r->n == LRT_MAXLINES) {
            r->bad = 1;
            break;
        }
        memcpy(r->lines[r->n].data, line, linelen);
        r->lines[r->n].len = linelen;
        r->lines[r->n].flags = flags;
        r->n++;
    }
    r->pending = lr_pending(lr);
}

/* The reference: what lr_next must report for input fed as a whole. */
static void lrt_model(const char *p, size_t len, size_t max, struct lrt_result *r)
{
    size_t start = 0, i;

    lrt_clear(r);
    if (max > LR_MAX_LINE)
        max = LR_MAX_LINE;
    for (i = 0; i < len; i++) {
        size_t n, j;
        unsigned f = 0;

        if (p[i] != '\n')
            continue;
        n = i + 1 - start;
        for (j = start; j <= i; j++) {
            if (p[j] == 0)
                f |= LR_NUL;
            if (p[j] == '\r' && p[j + 1] != '\n') /* j < i, so j + 1 <= i */
                f |= LR_BARE_CR;
        }
        if (n >= 2 && p[i - 1] == '\r')
            f |= LR_CRLF;
        if (n > max)
            f |= LR_TOOLONG;
        memcpy(r->lines[r->n].data, p + start, n > max ? max : n);
        r->lines[r->n].len = n > max ? max : n;
        r->lines[r->n].flags = f;
        r->n++;
        start = i + 1;
    }
    r->pending = len - start;
}

/* 0 if equal; else the index of the first differing line + 1 (n+1: counts). */
static size_t lrt_diff(const struct lrt_result *a, const struct lrt_result *b)
{
    size_t i;

    for (i = 0; i < a->n && i < b->n; i++)
        if (a->lines[i].len != b->lines[i].len || a->lines[i].flags != b->lines[i].flags ||
            memcmp(a->lines[i].data, b->lines[i].data, a->lines[i].len) != 0)
            return i + 1;
    if (a->n != b->n || a->pending != b->pending || a->bad || b->bad)
        return i + 1;
    return 0;
}

/* Feeds p[0..len) split at the boundaries whose bit is set in mask. */
static void lrt_run_mask(const char *p, size_t len, size_t max, unsigned long mask,
                         struct lrt_result *r)
{
    struct linereader lr;
    size_t start = 0, i;

    lr_init(&lr, max);
    lrt_clear(r);
    for (i = 1; i < len; i++)
        if (mask & (1ul << (i - 1))) {
            lrt_feed(&lr, p + start, i - start, r);
            start = i;
        }
    lrt_feed(&lr, p + start, len - start, r);
}

/* Feeds p[0..len) in chunks of `step` bytes. */
static void lrt_run_step(const char *p, size_t len, size_t max, size_t step, struct lrt_result *r)
{
    struct linereader lr;
    size_t off;

    lr_init(&lr, max);
    lrt_clear(r);
    for (off = 0; off < len; off += step)
        lrt_feed(&lr, p + off, len - off < step ? len - off : step, r);
}

static struct lrt_result lrt_a, lrt_b;

/* Checks one whole-input feed and one feed per chunking against the model. */
static void lrt_check_all_splits(const char *p, size_t len, size_t max)
{
    unsigned long mask, nmask, failures = 0;
    size_t step, d;

    lrt_model(p, len, max, &lrt_a);
    lrt_run_mask(p, len, max, 0, &lrt_b);
    d = lrt_diff(&lrt_a, &lrt_b);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT(lrt_b.n > 0);

    CU_ASSERT_FATAL(len >= 1 && len - 1 < 8 * sizeof(unsigned long) && len <= 22);
    nmask = 1ul << (len - 1);
    for (mask = 1; mask < nmask; mask++) {
        lrt_run_mask(p, len, max, mask, &lrt_b);
        if (lrt_diff(&lrt_a, &lrt_b) != 0 && failures++ == 0)
            fprintf(stderr, "\nlinereader: split mask %#lx of a %zu-byte input differs\n", mask, len);
    }
    CU_ASSERT_EQUAL(failures, 0);
    for (step = 1; step <= len; step++) {
        lrt_run_step(p, len, max, step, &lrt_b);
        CU_ASSERT_EQUAL(lrt_diff(&lrt_a, &lrt_b), 0);
    }
}

#define LRT_S(lit) lit, sizeof(lit) - 1

/* Asserts line i of lrt_b. */
static void lrt_expect(size_t i, const char *data, size_t len, unsigned flags)
{
    CU_ASSERT_FATAL(i < lrt_b.n);
    CU_ASSERT_EQUAL(lrt_b.lines[i].len, len);
    CU_ASSERT_EQUAL(lrt_b.lines[i].flags, flags);
    if (lrt_b.lines[i].len == len)
        CU_ASSERT(memcmp(lrt_b.lines[i].data, data, len) == 0);
}

/* Feeds the given chunks (NULL-terminated, C strings) into a fresh reader. */
static void lrt_chunks(size_t max, const char *const *chunks)
{
    struct linereader lr;

    lr_init(&lr, max);
    lrt_clear(&lrt_b);
    for (; *chunks; chunks++)
        lrt_feed(&lr, *chunks, strlen(*chunks), &lrt_b);
    CU_ASSERT_FALSE(lrt_b.bad);
}

static void test_lr_one_chunk(void)
{
    static const char in[] = "EHLO a.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDA";
    struct linereader lr;
    const char *p = in, *line;
    size_t len = sizeof(in) - 1, linelen;
    unsigned flags;

    lr_init(&lr, 512);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 16);
    CU_ASSERT(memcmp(line, "EHLO a.example\r\n", 16) == 0);
    CU_ASSERT_EQUAL(flags, LR_CRLF);
    CU_ASSERT_PTR_EQUAL(p, in + 16);
    CU_ASSERT_EQUAL(len, sizeof(in) - 1 - 16);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 17);
    CU_ASSERT(memcmp(line, "MAIL FROM:<a@b>\r\n", 17) == 0);
    CU_ASSERT_EQUAL(flags, LR_CRLF);
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 15);
    CU_ASSERT(memcmp(line, "RCPT TO:<c@d>\r\n", 15) == 0);
    CU_ASSERT_EQUAL(flags, LR_CRLF);
    /* "DA" is a partial line: kept, input used up. */
    CU_ASSERT_EQUAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 0);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(lr_pending(&lr), 2);
    /* Empty input: nothing happens. */
    CU_ASSERT_EQUAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 0);
    CU_ASSERT_EQUAL(lr_pending(&lr), 2);
    p = "TA\r\n";
    len = 4;
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 6);
    CU_ASSERT(memcmp(line, "DATA\r\n", 6) == 0);
    CU_ASSERT_EQUAL(flags, LR_CRLF);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
}

/* Every one of the 2^(len-1) ways to cut each input gives the same lines. */
static void test_lr_every_split(void)
{
    lrt_check_all_splits(LRT_S("a\r\nbc\n\r\n\nxyz\r\n"), 2048);
    lrt_check_all_splits(LRT_S("x\ry\r\n\r\r\nz\r\rq\nw\r"), 2048);
    lrt_check_all_splits(LRT_S("a\0b\r\n\0\n\0\r\n\r\0\n"), 2048);
    lrt_check_all_splits(LRT_S("12345\r\n123456\r\nab\nc"), 7);
    lrt_check_all_splits(LRT_S("abcdefghij\r\nk\nlmnop\n"), 4);
    lrt_check_all_splits(LRT_S("\r\n.\n\r\n.\r\n\r.\r\n.\n"), 2048);
    lrt_check_all_splits(LRT_S("abcd\r\r\n\r\r\r\n\n\n"), 3);
    CU_ASSERT_EQUAL(lrt_a.n, 4);
}

/* A longer mixed input, in chunks of 1..N bytes and cut at every one or two points. */
static void test_lr_steps_and_pairs(void)
{
    static char in[600];
    size_t len = 0, i, j, fails = 0;
    struct linereader lr;

    len += (size_t)snprintf(in + len, sizeof(in) - len, "HELO client.example\r\n");
    len += (size_t)snprintf(in + len, sizeof(in) - len, "bare lf line\n");
    len += (size_t)snprintf(in + len, sizeof(in) - len, "mid\rcr\r\n");
    memcpy(in + len, "nul\0byte\r\n", 10);
    len += 10;
    memset(in + len, 'L', 100); /* one line of 102 bytes, over max 64 */
    len += 100;
    memcpy(in + len, "\r\n", 2);
    len += 2;
    len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n.\n\r\n.\r\n\r.\r\n.\r\ntail\r");

    lrt_model(in, len, 64, &lrt_a);
    CU_ASSERT_EQUAL(lrt_a.n, 11);
    CU_ASSERT_EQUAL(lrt_a.pending, 5);
    for (i = 1; i <= len; i++) {
        lrt_run_step(in, len, 64, i, &lrt_b);
        CU_ASSERT_EQUAL(lrt_diff(&lrt_a, &lrt_b), 0);
    }
    for (i = 1; i < len; i++)
        for (j = i; j < len; j++) {
            lr_init(&lr, 64);
            lrt_clear(&lrt_b);
            lrt_feed(&lr, in, i, &lrt_b);
            lrt_feed(&lr, in + i, j - i, &lrt_b);
            lrt_feed(&lr, in + j, len - j, &lrt_b);
            if (lrt_diff(&lrt_a, &lrt_b) != 0 && fails++ == 0)
                fprintf(stderr, "\nlinereader: cut at %zu,%zu differs\n", i, j);
        }
    CU_ASSERT_EQUAL(fails, 0);
}

static void test_lr_crlf_vs_lf(void)
{
    const char *c1[] = { "a\r\nb\n\r\n\n", NULL };

    lrt_chunks(100, c1);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 4);
    lrt_expect(0, "a\r\n", 3, LR_CRLF);
    lrt_expect(1, "b\n", 2, 0);
    lrt_expect(2, "\r\n", 2, LR_CRLF);
    lrt_expect(3, "\n", 1, 0);
    CU_ASSERT_EQUAL(lrt_b.pending, 0);
}

static void test_lr_bare_cr_middle(void)
{
    const char *c1[] = { "a\rb\r\na\rb\n\r\r\nx\r\r\r\n", NULL };

    lrt_chunks(100, c1);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 4);
    lrt_expect(0, "a\rb\r\n", 5, LR_BARE_CR | LR_CRLF);
    lrt_expect(1, "a\rb\n", 4, LR_BARE_CR);
    lrt_expect(2, "\r\r\n", 3, LR_BARE_CR | LR_CRLF);
    lrt_expect(3, "x\r\r\r\n", 5, LR_BARE_CR | LR_CRLF);
}

/* CR ends one read, LF starts the next: CRLF, not a bare CR. */
static void test_lr_cr_lf_across_chunks(void)
{
    const char *c1[] = { "abc\r", "\n", NULL };
    const char *c2[] = { "abc", "\r", "\ndef\r", "\n", NULL };
    const char *c3[] = { "\r", "\n", NULL };
    const char *c4[] = { "one\r\ntwo\r", "\nthree\r\n", NULL };
    struct linereader lr;
    const char *p = "abc\r", *line;
    size_t len = 4, linelen;
    unsigned flags;

    lr_init(&lr, 100);
    CU_ASSERT_EQUAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 0);
    CU_ASSERT_EQUAL(lr_pending(&lr), 4);
    p = "\n";
    len = 1;
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(flags, LR_CRLF);
    CU_ASSERT_EQUAL(linelen, 5);

    lrt_chunks(100, c1);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "abc\r\n", 5, LR_CRLF);
    lrt_chunks(100, c2);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "abc\r\n", 5, LR_CRLF);
    lrt_expect(1, "def\r\n", 5, LR_CRLF);
    lrt_chunks(100, c3);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "\r\n", 2, LR_CRLF);
    lrt_chunks(100, c4);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 3);
    lrt_expect(0, "one\r\n", 5, LR_CRLF);
    lrt_expect(1, "two\r\n", 5, LR_CRLF);
    lrt_expect(2, "three\r\n", 7, LR_CRLF);
}

/* CR ends one read and the next starts with something else: a bare CR. */
static void test_lr_cr_then_other_across_chunks(void)
{
    const char *c1[] = { "abc\r", "x\n", NULL };
    const char *c2[] = { "abc\r", "\r\n", NULL };
    const char *c3[] = { "abc\r", ".\r\n", NULL };
    const char *c4[] = { "\r", "\n\r", "\rz\n", NULL };

    lrt_chunks(100, c1);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "abc\rx\n", 6, LR_BARE_CR);
    lrt_chunks(100, c2);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "abc\r\r\n", 6, LR_BARE_CR | LR_CRLF);
    lrt_chunks(100, c3);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "abc\r.\r\n", 7, LR_BARE_CR | LR_CRLF);
    lrt_chunks(100, c4);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "\r\n", 2, LR_CRLF);
    lrt_expect(1, "\r\rz\n", 4, LR_BARE_CR);
}

static void test_lr_nul(void)
{
    static const char in[] = "a\0b\r\n\0\nc\r\n";
    struct linereader lr;

    lr_init(&lr, 100);
    lrt_clear(&lrt_b);
    lrt_feed(&lr, in, sizeof(in) - 1, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 3);
    lrt_expect(0, "a\0b\r\n", 5, LR_NUL | LR_CRLF);
    lrt_expect(1, "\0\n", 2, LR_NUL);
    lrt_expect(2, "c\r\n", 3, LR_CRLF); /* flags do not leak into the next line */

    /* A NUL alone at the start of a read, mid-line. */
    lr_init(&lr, 100);
    lrt_clear(&lrt_b);
    lrt_feed(&lr, "ab", 2, &lrt_b);
    lrt_feed(&lr, "\0", 1, &lrt_b);
    lrt_feed(&lr, "cd\r\n", 4, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "ab\0cd\r\n", 7, LR_NUL | LR_CRLF);
}

/* Fills buf with a line of n bytes ending in end ("\r\n" or "\n"). */
static void lrt_make_line(char *buf, size_t n, const char *end)
{
    size_t e = strlen(end), i;

    for (i = 0; i + e < n; i++)
        buf[i] = (char)('a' + i % 26);
    memcpy(buf + n - e, end, e);
}

/* Feeds buf whole, then byte by byte; both must give the same single line. */
static void lrt_one_line_both_ways(size_t max, const char *buf, size_t n)
{
    struct linereader lr;
    static struct lrt_result whole;
    size_t i;

    lr_init(&lr, max);
    lrt_clear(&lrt_b);
    lrt_feed(&lr, buf, n, &lrt_b);
    CU_ASSERT_FALSE(lrt_b.bad);
    CU_ASSERT_EQUAL(lrt_b.pending, 0);
    whole = lrt_b;
    lr_init(&lr, max);
    lrt_clear(&lrt_b);
    for (i = 0; i < n; i++)
        lrt_feed(&lr, buf + i, 1, &lrt_b);
    CU_ASSERT_EQUAL(lrt_diff(&whole, &lrt_b), 0);
}

static void test_lr_exact_max(void)
{
    static char buf[LR_MAX_LINE + 1];

    lrt_make_line(buf, 16, "\r\n");
    lrt_one_line_both_ways(16, buf, 16);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, 16, LR_CRLF);

    lrt_make_line(buf, 16, "\n");
    lrt_one_line_both_ways(16, buf, 16);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, 16, 0);

    lrt_make_line(buf, LR_MAX_LINE, "\r\n");
    lrt_one_line_both_ways(LR_MAX_LINE, buf, LR_MAX_LINE);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, LR_MAX_LINE, LR_CRLF);
}

static void test_lr_max_plus_one(void)
{
    static char buf[LR_MAX_LINE + 8];
    struct linereader lr;

    lrt_make_line(buf, 17, "\r\n");
    lrt_one_line_both_ways(16, buf, 17);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1); /* reported once */
    lrt_expect(0, buf, 16, LR_CRLF | LR_TOOLONG);

    lrt_make_line(buf, 17, "\n");
    lrt_one_line_both_ways(16, buf, 17);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, 16, LR_TOOLONG);

    lrt_make_line(buf, LR_MAX_LINE + 1, "\r\n");
    lrt_one_line_both_ways(LR_MAX_LINE, buf, LR_MAX_LINE + 1);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, LR_MAX_LINE, LR_CRLF | LR_TOOLONG);

    /* The reader recovers: the next line is normal. */
    lr_init(&lr, 16);
    lrt_clear(&lrt_b);
    lrt_make_line(buf, 17, "\r\n");
    memcpy(buf + 17, "ok\r\n", 4);
    lrt_feed(&lr, buf, 10, &lrt_b);
    lrt_feed(&lr, buf + 10, 11, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, buf, 16, LR_CRLF | LR_TOOLONG);
    lrt_expect(1, "ok\r\n", 4, LR_CRLF);
    CU_ASSERT_EQUAL(lrt_b.pending, 0);
}

/* A megabyte without LF: nothing returned, pending counts, memory stays fixed. */
static void test_lr_huge_line(void)
{
    enum { TOTAL = 1 << 20 };
    static struct linereader lr;
    char *big = malloc(TOTAL + 2);
    const char *p, *line;
    size_t len, linelen, off, step = 1, max_carry = 0;
    unsigned flags;
    int returned = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (off = 0; off < TOTAL; off++)
        big[off] = (char)('A' + off % 23);
    big[4000] = '\r';    /* a bare CR and a NUL beyond max still count */
    big[500000] = 0;
    lr_init(&lr, 512);
    for (off = 0; off < TOTAL; off += step) {
        step = 1 + (off * 7919) % 3001; /* uneven pieces */
        if (step > TOTAL - off)
            step = TOTAL - off;
        p = big + off;
        len = step;
        returned |= lr_next(&lr, &p, &len, &line, &linelen, &flags);
        CU_ASSERT_EQUAL(len, 0);
        if (lr_pending(&lr) != off + step)
            break;
        if (lr.carry_len > max_carry)
            max_carry = lr.carry_len;
    }
    CU_ASSERT_EQUAL(off, TOTAL);
    CU_ASSERT_EQUAL(returned, 0);
    CU_ASSERT_EQUAL(lr_pending(&lr), TOTAL);
    CU_ASSERT(max_carry <= 512);
    p = "\r\n";
    len = 2;
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 512);
    CU_ASSERT(memcmp(line, big, 512) == 0);
    CU_ASSERT_EQUAL(flags, LR_CRLF | LR_TOOLONG | LR_BARE_CR | LR_NUL);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
    p = "next\r\n";
    len = 6;
    CU_ASSERT_EQUAL_FATAL(lr_next(&lr, &p, &len, &line, &linelen, &flags), 1);
    CU_ASSERT_EQUAL(linelen, 6);
    CU_ASSERT_EQUAL(flags, LR_CRLF);

    /* The same megabyte plus LF in one read: one TOOLONG line. */
    memset(big, 'x', TOTAL);
    big[TOTAL] = '\n';
    lr_init(&lr, LR_MAX_LINE);
    lrt_clear(&lrt_b);
    lrt_feed(&lr, big, TOTAL + 1, &lrt_b);
    CU_ASSERT_FALSE(lrt_b.bad);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, big, LR_MAX_LINE, LR_TOOLONG);
    free(big);
}

static void test_lr_reset(void)
{
    struct linereader lr;
    static char buf[64];

    /* A pending CR is forgotten: the LF after reset is a bare-LF empty line. */
    lr_init(&lr, 100);
    lrt_clear(&lrt_b);
    lrt_feed(&lr, "abc\r", 4, &lrt_b);
    CU_ASSERT_EQUAL(lr_pending(&lr), 4);
    lr_reset(&lr);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
    CU_ASSERT_EQUAL(lr.max, 100); /* the limit survives */
    lrt_feed(&lr, "\nxy\r\n", 5, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "\n", 1, 0);
    lrt_expect(1, "xy\r\n", 4, LR_CRLF);

    /* Reset in the middle of an overlong line with a NUL: nothing carries over. */
    lr_init(&lr, 8);
    lrt_clear(&lrt_b);
    memset(buf, 'z', 20);
    buf[3] = 0;
    lrt_feed(&lr, buf, 20, &lrt_b);
    CU_ASSERT_EQUAL(lr_pending(&lr), 20);
    lr_reset(&lr);
    CU_ASSERT_EQUAL(lr_pending(&lr), 0);
    lrt_feed(&lr, "ok\r\n", 4, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "ok\r\n", 4, LR_CRLF);
}

/* Limits: lr_init clamps to LR_MAX_LINE; lr_set_max at a line boundary applies. */
static void test_lr_set_max(void)
{
    static char buf[LR_MAX_LINE * 2];
    struct linereader lr;

    lr_init(&lr, (size_t)LR_MAX_LINE * 10);
    CU_ASSERT_EQUAL(lr.max, LR_MAX_LINE);
    lrt_clear(&lrt_b);
    lrt_make_line(buf, 3000, "\r\n");
    lrt_feed(&lr, buf, 3000, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, buf, LR_MAX_LINE, LR_CRLF | LR_TOOLONG);

    lr_init(&lr, 512);
    lrt_clear(&lrt_b);
    lrt_make_line(buf, 600, "\r\n");
    lrt_feed(&lr, buf, 600, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    CU_ASSERT_EQUAL(lrt_b.lines[0].flags, LR_CRLF | LR_TOOLONG);
    lr_set_max(&lr, 1000);
    lrt_feed(&lr, buf, 300, &lrt_b);
    lrt_feed(&lr, buf + 300, 300, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(1, buf, 600, LR_CRLF);
    lr_set_max(&lr, 10);
    lrt_feed(&lr, "0123456789\r\n", 12, &lrt_b);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 3);
    lrt_expect(2, "0123456789", 10, LR_CRLF | LR_TOOLONG);
}

/* The smuggling ends of data: only a CRLF "." CRLF line may end DATA, so each
 * variant must carry flags that tell it apart. */
static void test_lr_smuggling(void)
{
    const char *lf_dot_lf[] = { "Subject: x\r\n\n.\n", NULL };
    const char *lf_dot_crlf[] = { "text\n.\r\n", NULL };
    const char *cr_dot_crlf[] = { "text\r.\r\n", NULL };
    const char *crlf_dot_crlf[] = { "text\r\n.\r\n", NULL };
    const char *split_cr[] = { "text\r", ".\r", "\n", NULL };
    const char *split_lf[] = { "text\n", ".", "\n", NULL };

    lrt_chunks(1000, lf_dot_lf);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 3);
    lrt_expect(0, "Subject: x\r\n", 12, LR_CRLF);
    lrt_expect(1, "\n", 1, 0);
    lrt_expect(2, ".\n", 2, 0);

    lrt_chunks(1000, lf_dot_crlf);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "text\n", 5, 0);
    lrt_expect(1, ".\r\n", 3, LR_CRLF);

    lrt_chunks(1000, cr_dot_crlf);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1); /* the "." is not a line of its own */
    lrt_expect(0, "text\r.\r\n", 8, LR_BARE_CR | LR_CRLF);

    lrt_chunks(1000, crlf_dot_crlf);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "text\r\n", 6, LR_CRLF);
    lrt_expect(1, ".\r\n", 3, LR_CRLF);

    lrt_chunks(1000, split_cr);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 1);
    lrt_expect(0, "text\r.\r\n", 8, LR_BARE_CR | LR_CRLF);

    lrt_chunks(1000, split_lf);
    CU_ASSERT_EQUAL_FATAL(lrt_b.n, 2);
    lrt_expect(0, "text\n", 5, 0);
    lrt_expect(1, ".\n", 2, 0);

    /* And in every chunking. */
    lrt_check_all_splits(LRT_S("x\r\n\n.\n"), 1000);
    lrt_check_all_splits(LRT_S("x\r\n\n.\r\n"), 1000);
    lrt_check_all_splits(LRT_S("x\r\n\r.\r\n"), 1000);
    lrt_check_all_splits(LRT_S("x\r.\r\n.\r\n"), 1000);
}

void suite_linereader(void)
{
    CU_pSuite s = CU_add_suite("linereader", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "one chunk", test_lr_one_chunk);
    CU_add_test(s, "every split of small inputs", test_lr_every_split);
    CU_add_test(s, "chunk sizes 1..N and two cuts", test_lr_steps_and_pairs);
    CU_add_test(s, "CRLF vs bare LF", test_lr_crlf_vs_lf);
    CU_add_test(s, "bare CR in the middle", test_lr_bare_cr_middle);
    CU_add_test(s, "CR | LF across reads is CRLF", test_lr_cr_lf_across_chunks);
    CU_add_test(s, "CR | other across reads is bare CR", test_lr_cr_then_other_across_chunks);
    CU_add_test(s, "NUL bytes", test_lr_nul);
    CU_add_test(s, "exactly max", test_lr_exact_max);
    CU_add_test(s, "max+1 is TOOLONG once", test_lr_max_plus_one);
    CU_add_test(s, "1 MB line stays bounded", test_lr_huge_line);
    CU_add_test(s, "lr_reset", test_lr_reset);
    CU_add_test(s, "max clamp and lr_set_max", test_lr_set_max);
    CU_add_test(s, "smuggling sequences", test_lr_smuggling);
}
