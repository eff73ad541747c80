/*
 * fuzz_addr.c - libFuzzer target for addr_parse_path() (common/addr.h), the
 * one parser every envelope address from the network goes through.
 *
 * Input: byte 0 picks the flags (its low 3 bits: ADDR_ALLOW_EMPTY,
 * ADDR_ALLOW_POSTMASTER, ADDR_UTF8, so every combination is reached); the
 * rest is the path, copied into a heap buffer of exactly its length so that
 * a read past len is an AddressSanitizer crash.
 *
 * Checks on ADDR_OK: end <= len and the byte at end-1 is '>'; mailbox and
 * domain are NUL-terminated inside their arrays, mailbox <= ADDR_MAX bytes,
 * local_len <= strlen(mailbox); no control byte in mailbox; the domain is
 * the text after '@' (lower-cased when ASCII and not a literal, as given
 * otherwise); "<>" and "<Postmaster>" only with their flags; non-ASCII only
 * with ADDR_UTF8. And, because queue records are checked by re-parsing the
 * stored mailbox (qrecord.c check_mailbox): the prefix up to end parses to
 * the same result, more flags never refuse it, and "<" mailbox ">" parses
 * back to the same mailbox. It must never make the parser read past len.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_addr: %s:%d: check failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                            \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* Parses n bytes of s from an exact-size heap copy. */
static enum addr_error parse_copy(const char *s, size_t n, unsigned flags,
                                  struct addr *a, size_t *end)
{
    char *copy = malloc(n ? n : 1);
    enum addr_error e;

    if (copy == NULL)
        abort();
    if (n)
        memcpy(copy, s, n);
    e = addr_parse_path(copy, n, flags, a, end);
    free(copy);
    return e;
}

/* is_utf8 also counts a dropped source route, so it is compared only when
 * both parses saw the same route (cmp_utf8). */
static int same_addr(const struct addr *a, const struct addr *b, int cmp_utf8)
{
    return strcmp(a->mailbox, b->mailbox) == 0 && a->local_len == b->local_len &&
           strcmp(a->domain, b->domain) == 0 && a->is_literal == b->is_literal &&
           (!cmp_utf8 || a->is_utf8 == b->is_utf8);
}

static void check_ok(const char *in, size_t len, unsigned flags, const struct addr *a,
                     size_t end)
{
    const char *mnul = memchr(a->mailbox, 0, sizeof a->mailbox);
    const char *dnul = memchr(a->domain, 0, sizeof a->domain);
    size_t mlen, dlen, i;
    int ascii = 1;
    struct addr b;
    size_t end2;

    CHECK(end >= 2 && end <= len);
    CHECK(in[0] == '<' && in[end - 1] == '>');
    CHECK(mnul != NULL && dnul != NULL);
    mlen = (size_t)(mnul - a->mailbox);
    dlen = (size_t)(dnul - a->domain);
    CHECK(mlen <= ADDR_MAX);
    CHECK(dlen <= ADDR_DOMAIN_MAX);
    CHECK(a->local_len <= mlen);
    for (i = 0; i < mlen; i++) {
        unsigned char c = (unsigned char)a->mailbox[i];
        CHECK(c >= 0x20 && c != 0x7f);
        if (c >= 0x80)
            ascii = 0;
    }
    /* non-ASCII in the mailbox, or else only in a source route it dropped */
    CHECK(a->is_utf8 == !ascii || (a->is_utf8 && in[1] == '@'));
    if (a->is_utf8)
        CHECK(flags & ADDR_UTF8);

    if (mlen == 0) {
        /* the null reverse-path */
        CHECK(flags & ADDR_ALLOW_EMPTY);
        CHECK(end == 2 && dlen == 0 && a->local_len == 0 && !a->is_literal);
    } else if (dlen == 0) {
        /* <Postmaster>, the only mailbox without a domain */
        CHECK(flags & ADDR_ALLOW_POSTMASTER);
        CHECK(end == 12 && strcmp(a->mailbox, "Postmaster") == 0 && a->local_len == 10);
        CHECK(strncasecmp(in + 1, "postmaster", 10) == 0);
    } else {
        const char *d = a->mailbox + a->local_len + 1;
        int dom_ascii = 1;

        CHECK(a->local_len > 0 && a->local_len <= ADDR_LOCAL_MAX);
        CHECK(a->mailbox[a->local_len] == '@');
        CHECK(strlen(d) == dlen);
        /* the mailbox is the tail of the path, as given */
        CHECK(end - 1 >= mlen && memcmp(in + end - 1 - mlen, a->mailbox, mlen) == 0);
        for (i = 0; i < dlen; i++)
            if ((unsigned char)a->domain[i] >= 0x80)
                dom_ascii = 0;
        if (a->is_literal) {
            CHECK(a->domain[0] == '[' && a->domain[dlen - 1] == ']');
            CHECK(memcmp(a->domain, d, dlen) == 0);
        } else if (dom_ascii) {
            for (i = 0; i < dlen; i++) {
                CHECK(!(a->domain[i] >= 'A' && a->domain[i] <= 'Z'));
                CHECK(a->domain[i] != '[' && a->domain[i] != ']');
            }
            CHECK(strcasecmp(a->domain, d) == 0);
            CHECK(addr_valid_domain(a->domain, dlen, 0));
        } else {
            CHECK(memcmp(a->domain, d, dlen) == 0);
            CHECK(addr_valid_domain(a->domain, dlen, 1));
            CHECK(!addr_valid_domain(a->domain, dlen, 0));
        }
    }

    /* Bytes after '>' do not matter. */
    CHECK(parse_copy(in, end, flags, &b, &end2) == ADDR_OK);
    CHECK(end2 == end && same_addr(a, &b, 1));

    /* Flags only widen what is accepted. */
    CHECK(parse_copy(in, len, flags | ADDR_ALLOW_EMPTY | ADDR_ALLOW_POSTMASTER | ADDR_UTF8,
                     &b, &end2) == ADDR_OK);
    CHECK(end2 == end && same_addr(a, &b, 1));

    /* The stored mailbox is canonical: "<mailbox>" gives it back unchanged
     * (the source route, if any, is gone). */
    {
        char path[ADDR_MAX + 2];

        path[0] = '<';
        memcpy(path + 1, a->mailbox, mlen);
        path[mlen + 1] = '>';
        CHECK(parse_copy(path, mlen + 2, flags, &b, &end2) == ADDR_OK);
        CHECK(end2 == mlen + 2 && same_addr(a, &b, in[1] != '@'));
        CHECK(b.is_utf8 == !ascii);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addr a;
    size_t end = 12345;
    unsigned flags;
    enum addr_error e;
    char *in;
    size_t len;

    if (size < 1)
        return 0;
    flags = data[0] & (ADDR_ALLOW_EMPTY | ADDR_ALLOW_POSTMASTER | ADDR_UTF8);
    len = size - 1;
    in = malloc(len ? len : 1);
    if (in == NULL)
        abort();
    if (len)
        memcpy(in, data + 1, len);

    e = addr_parse_path(in, len, flags, &a, &end);
    CHECK(e == ADDR_OK || e == ADDR_ESYNTAX || e == ADDR_ETOOLONG || e == ADDR_ENEEDUTF8);
    CHECK(addr_strerror(e) != NULL);
    if (e == ADDR_OK) {
        check_ok(in, len, flags, &a, end);
    } else {
        struct addr b;
        size_t end2;
        enum addr_error e2;

        CHECK(end == 0);
        /* Without SMTPUTF8 a UTF-8 address is refused for that reason alone. */
        e2 = parse_copy(in, len, flags | ADDR_UTF8, &b, &end2);
        if (e == ADDR_ENEEDUTF8) {
            CHECK(!(flags & ADDR_UTF8));
            CHECK(e2 == ADDR_OK && b.is_utf8);
        }
        if (e2 == ADDR_OK && !b.is_utf8)
            CHECK(0 && "an ASCII address accepted only with ADDR_UTF8");
    }

    /* The domain checker on the same bytes: UTF-8 allowed never refuses more. */
    if (addr_valid_domain(in, len, 0))
        CHECK(addr_valid_domain(in, len, 1));

    free(in);
    return 0;
}
