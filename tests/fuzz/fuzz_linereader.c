/*
 * fuzz_linereader.c - libFuzzer target for lr_next() (common/linereader.h),
 * which cuts every SMTP command and message line out of the byte stream.
 *
 * Input: byte 0 picks the line limit (0..250 itself, or 1000, 2048, 4096
 * (clamped to LR_MAX_LINE), or a value from byte 1); byte 1 picks how the
 * stream is cut into reads (whole, byte by byte, pseudo-random pieces seeded
 * from bytes 2-3, or cuts right after every CR or before every LF, where
 * CRLF detection across reads matters); the rest is the stream. Each read is
 * copied into a heap buffer of exactly its size, so that a line returned in
 * place cannot be read past the caller's input unnoticed. When bit 0 of
 * byte 1 / 6 is set, the limit alternates line by line between max and
 * max / 2 (lr_set_max at each line boundary, as smtpd switches between
 * command and data limits); at the end lr_reset must leave a clean reader.
 *
 * Checks against a reference model computed on the whole stream (as in
 * tests/unit/test_linereader.c): the same lines in the same order, the same
 * lengths (the first max bytes of an over-long line), the same bytes, the
 * same flags (CRLF, bare CR, NUL, and TOOLONG exactly for lines over max),
 * the same pending count at the end; every call consumes input or reports
 * it used up, and the reader never holds more than max bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linereader.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_linereader: %s:%d: check failed: %s\n",        \
                    __FILE__, __LINE__, #cond);                                  \
            abort();                                                             \
        }                                                                        \
    } while (0)

#define HDR 4

struct mline {
    size_t start, len;      /* in the stream; len is the full length */
    unsigned flags;
};

struct model {
    struct mline *v;
    size_t n, pending;
};

/* The limit in force for line i: alternating when alt is set. */
static size_t max_for(size_t i, size_t max, int alt)
{
    if (max > LR_MAX_LINE)
        max = LR_MAX_LINE;
    return alt && (i & 1) ? max / 2 : max;
}

/* What lr_next must report for the stream fed as a whole. */
static void model_run(const unsigned char *p, size_t len, size_t max0, int alt,
                      struct model *m)
{
    size_t start = 0, i;

    m->v = malloc((len + 1) * sizeof *m->v);
    if (m->v == NULL)
        abort();
    m->n = 0;
    for (i = 0; i < len; i++) {
        size_t j, n, max = max_for(m->n, max0, alt);
        unsigned f = 0;

        if (p[i] != '\n')
            continue;
        n = i + 1 - start;
        for (j = start; j < i; j++) {
            if (p[j] == 0)
                f |= LR_NUL;
            if (p[j] == '\r' && p[j + 1] != '\n')
                f |= LR_BARE_CR;
        }
        if (n >= 2 && p[i - 1] == '\r')
            f |= LR_CRLF;
        if (n > max)
            f |= LR_TOOLONG;
        m->v[m->n].start = start;
        m->v[m->n].len = n;
        m->v[m->n].flags = f;
        m->n++;
        start = i + 1;
    }
    m->pending = len - start;
}

struct feed {
    const unsigned char *stream;
    const struct model *m;
    size_t max;             /* limit as given to lr_init */
    int alt;                /* alternate limits line by line */
    size_t got;             /* lines returned so far */
    size_t fed;             /* stream bytes fed so far */
};

/* Feeds stream[off..off+n) as one read, from an exact-size copy. */
static void feed(struct linereader *lr, struct feed *fd, size_t off, size_t n)
{
    char *copy = malloc(n ? n : 1);
    const char *in = copy, *line = NULL;
    size_t inlen = n, linelen = 0;
    unsigned flags = 0;

    if (copy == NULL)
        abort();
    if (n)
        memcpy(copy, fd->stream + off, n);
    for (;;) {
        size_t before = inlen;
        int rc = lr_next(lr, &in, &inlen, &line, &linelen, &flags);

        CHECK(rc == 0 || rc == 1);
        CHECK(lr->max == max_for(fd->got, fd->max, fd->alt) && lr->carry_len <= lr->max);
        CHECK(in == copy + (n - inlen));
        if (rc == 0) {
            CHECK(inlen == 0);
            break;
        }
        CHECK(inlen < before);
        CHECK(fd->got < fd->m->n);
        {
            const struct mline *ml = &fd->m->v[fd->got];
            size_t lim = max_for(fd->got, fd->max, fd->alt);
            size_t want = ml->len > lim ? lim : ml->len;

            /* the line ends exactly where the model's does */
            CHECK(off + (n - inlen) == ml->start + ml->len);
            CHECK(linelen == want);
            CHECK(flags == ml->flags);
            CHECK(memcmp(line, fd->stream + ml->start, linelen) == 0);
        }
        CHECK(lr_pending(lr) == 0 && (flags & ~0xfu) == 0);
        fd->got++;
        if (fd->alt)
            lr_set_max(lr, max_for(fd->got, fd->max, fd->alt));
    }
    fd->fed = off + n;
    /* bytes of the current line seen so far */
    CHECK(lr_pending(lr) == fd->fed - (fd->got ? fd->m->v[fd->got - 1].start +
                                                 fd->m->v[fd->got - 1].len : 0));
    free(copy);
}

static uint32_t next_rand(uint32_t *s)
{
    /* xorshift32: any seed but 0 */
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct linereader lr;
    const unsigned char *p;
    struct model m;
    struct feed fd;
    size_t len, max, off, i, eff;
    uint32_t seed;
    unsigned mode;
    int alt;

    if (size < HDR)
        return 0;
    switch (data[0]) {
    case 251: max = 1000; break;
    case 252: max = LR_MAX_LINE; break;
    case 253: max = 2 * LR_MAX_LINE; break;
    case 254: case 255: max = 1 + (size_t)data[1] * 8; break;
    default: max = data[0]; break;
    }
    mode = data[1] % 6;
    alt = (data[1] / 6) & 1;
    seed = ((uint32_t)data[2] << 8 | data[3]) + 1;
    p = data + HDR;
    len = size - HDR;
    eff = max > LR_MAX_LINE ? LR_MAX_LINE : max;

    model_run(p, len, max, alt, &m);
    lr_init(&lr, max);
    CHECK(lr.max == eff && lr_pending(&lr) == 0);
    fd.stream = p;
    fd.m = &m;
    fd.max = max;
    fd.alt = alt;
    fd.got = 0;
    fd.fed = 0;

    switch (mode) {
    case 0:                             /* one read */
        feed(&lr, &fd, 0, len);
        break;
    case 1:                             /* byte by byte */
        for (off = 0; off < len; off++)
            feed(&lr, &fd, off, 1);
        break;
    case 2:                             /* small pieces, empty ones too */
    case 3:                             /* pieces around the limit */
        for (off = 0; off < len;) {
            uint32_t r = next_rand(&seed);
            size_t step = mode == 2 ? r % 17 : r % (eff + 3);
            if (step > len - off)
                step = len - off;
            feed(&lr, &fd, off, step);
            off += step;
        }
        break;
    case 4:                             /* cut right after every CR */
    case 5:                             /* cut right before every LF */
        for (off = 0, i = 0; i < len; i++) {
            size_t cut = mode == 4 ? (p[i] == '\r' ? i + 1 : 0) : (p[i] == '\n' ? i : 0);
            if (cut > off) {
                feed(&lr, &fd, off, cut - off);
                off = cut;
            }
        }
        feed(&lr, &fd, off, len - off);
        break;
    }
    CHECK(fd.fed == len);
    CHECK(fd.got == m.n);
    CHECK(lr_pending(&lr) == m.pending);

    /* lr_reset forgets a partial line (a pending CR, NUL, length) but not
     * the limit */
    {
        size_t lim = lr.max;
        const char *in = "\n", *line;
        size_t inlen = 1, linelen;
        unsigned flags;

        lr_reset(&lr);
        CHECK(lr_pending(&lr) == 0 && lr.max == lim);
        CHECK(lr_next(&lr, &in, &inlen, &line, &linelen, &flags) == 1);
        CHECK(inlen == 0 && lr_pending(&lr) == 0);
        CHECK(lim == 0 ? (linelen == 0 && flags == LR_TOOLONG)
                       : (linelen == 1 && line[0] == '\n' && flags == 0));
    }
    free(m.v);
    return 0;
}
