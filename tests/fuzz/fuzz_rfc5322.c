/*
 * fuzz_rfc5322.c - libFuzzer target for common/rfc5322.h: the header
 * section reader and the address-list scanner that sendmail -t runs on
 * whatever a local user pipes into it.
 *
 * Input: header text. Its lines (split on LF, a CR before it dropped) go
 * through rfc5322_hdr_line() until the first that is not a header line;
 * every field's value, unfolded, is then scanned as an address list, and
 * each addr-spec made into a mailbox with rfc5322_mailbox(). The whole
 * input is scanned as one list too. Lines and values are copied into heap
 * buffers of exactly their length, so a read past the end is a crash.
 *
 * Checks: the line table covers the section in order, continuation lines
 * only after a field; a value's length is the field's bytes after the
 * colon; the scanner returns at most one address per separator plus one,
 * each a spec of its stated length, NUL after it (at most ADDR_MAX + 1)
 * made of the list's bytes in order from its element on; after an error
 * or the end it stays at the end; a mailbox, when made, parses back with
 * addr_parse_path() as itself. rfc5322_quote_local() and rfc5322_phrase()
 * of a spec stay within their buffer and give a quoted string or the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "rfc5322.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_rfc5322: %s:%d: check failed: %s\n", __FILE__, \
                    __LINE__, #cond);                                            \
            abort();                                                             \
        }                                                                        \
    } while (0)

static void check_mailbox(const struct rfc5322_addr *a)
{
    char out[ADDR_MAX + 1], path[ADDR_MAX + 3], q[2 * ADDR_MAX + 8];
    struct addr b;
    size_t end, n;
    int utf8 = 0;

    if (rfc5322_mailbox(a->spec, a->len, "h.example", ADDR_UTF8, out, sizeof out, &utf8) == NULL) {
        n = strlen(out);
        CHECK(n > 0 && n <= ADDR_MAX);
        path[0] = '<';
        memcpy(path + 1, out, n);
        path[n + 1] = '>';
        CHECK(addr_parse_path(path, n + 2, ADDR_UTF8, &b, &end) == ADDR_OK);
        CHECK(end == n + 2 && strcmp(b.mailbox, out) == 0);
        CHECK(b.is_utf8 == utf8);
    }
    if (rfc5322_quote_local(a->spec, q, sizeof q) == 0) {
        n = strlen(q);
        CHECK(n < sizeof q);
        CHECK(strcmp(q, a->spec) == 0 || (n >= 2 && q[0] == '"' && q[n - 1] == '"'));
    }
    if (rfc5322_phrase(a->spec, q, sizeof q) == 0) {
        n = strlen(q);
        CHECK(strcmp(q, a->spec) == 0 || (n >= 2 && q[0] == '"' && q[n - 1] == '"'));
    }
}

static void scan_list(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    struct rfc5322_list l;
    struct rfc5322_addr a;
    size_t seps = 0, found = 0;
    int r;

    if (copy == NULL)
        abort();
    memcpy(copy, s, n);
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == ';')
            seps++;
    rfc5322_list_init(&l, copy, n);
    while ((r = rfc5322_list_next(&l, &a)) == 1) {
        size_t k = a.off;

        found++;
        CHECK(found <= seps + 1);
        CHECK(a.len > 0 && a.len <= ADDR_MAX + 1);
        CHECK(a.spec[a.len] == 0);  /* a NUL in the list may be inside too */
        CHECK(a.off <= n && a.tlen <= n - a.off);
        /* every byte of the spec comes from the list, in order, from its
         * element on (an unterminated quoted string may end in blanks that
         * the element, trimmed for messages, leaves out) */
        for (size_t i = 0; i < a.len; i++) {
            while (k < n && s[k] != a.spec[i])
                k++;
            CHECK(k < n);
            k++;
        }
        check_mailbox(&a);
    }
    CHECK(r == 0 || r == -1);
    if (r < 0) {
        CHECK(l.err != RFC5322_OK && rfc5322_strerror(l.err) != NULL);
        CHECK(a.off <= n && a.tlen <= n - a.off);
    }
    CHECK(rfc5322_list_next(&l, &a) == 0);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rfc5322_headers h;
    char *buf = malloc(size ? size : 1);
    size_t off = 0, prev_end = 0;

    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    memset(&h, 0, sizeof h);
    h.buf = buf;
    while (off < size) {
        char *nl = memchr(buf + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : size - off;
        size_t before = h.nline;
        int r;

        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        r = rfc5322_hdr_line(&h, off, n);
        CHECK(r >= 0 && r <= 2);
        if (r == 0) {
            CHECK(h.nline == before);
            break;
        }
        CHECK(h.nline == before + 1);
        CHECK(h.line[before].off == off && h.line[before].len == n);
        CHECK(h.line[before].start == (r == 1));
        CHECK(r == 1 || before > 0);
        CHECK(off >= prev_end);
        if (r == 1)
            CHECK(rfc5322_field_name_len(buf + off, n) > 0);
        prev_end = off + n;
        off += (nl ? (size_t)(nl - (buf + off)) : size - off) + 1;
    }
    h.len = off < size ? off : size;

    (void)rfc5322_hdr_resent(&h);
    for (size_t i = 0; i < h.nline; i++) {
        size_t vlen, want = 0, k;
        const char *colon;
        char *v;

        if (!h.line[i].start) {
            CHECK(rfc5322_hdr_value(&h, i, &vlen) == NULL);
            continue;
        }
        colon = memchr(buf + h.line[i].off, ':', h.line[i].len);
        CHECK(colon != NULL);
        want = h.line[i].len - (size_t)(colon + 1 - (buf + h.line[i].off));
        for (k = i + 1; k < h.nline && !h.line[k].start; k++)
            want += h.line[k].len;
        v = rfc5322_hdr_value(&h, i, &vlen);
        CHECK(v != NULL && vlen == want && v[vlen] == 0);
        (void)rfc5322_hdr_is_rcpt(&h, i, i & 1);
        scan_list(v, vlen);
        free(v);
        rfc5322_hdr_drop(&h, i);
        CHECK(h.line[i].drop);
        for (k = i + 1; k < h.nline && !h.line[k].start; k++)
            CHECK(h.line[k].drop);
    }
    scan_list((const char *)data, size);
    rfc5322_hdr_free(&h);
    free(buf);
    return 0;
}
