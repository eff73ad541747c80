/*
 * test_rfc5322.c - CUnit tests for common/rfc5322.c: address lists (groups,
 * comments, quoted strings, obsolete forms, bad input), mailboxes made from
 * addr-specs, quoting, and the header section (field names, folded lines,
 * unfolded values, Resent- fields).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"
#include "suites.h"

/*
 * Splits list into its addr-specs, joined by '|' into out. Returns the
 * number found, or -1 - (error code) on an error (out then ends with the
 * element as written, in brackets).
 */
static int split(const char *list, char *out, size_t outlen)
{
    struct rfc5322_list l;
    struct rfc5322_addr a;
    size_t o = 0;
    int r, count = 0;

    out[0] = 0;
    rfc5322_list_init(&l, list, strlen(list));
    while ((r = rfc5322_list_next(&l, &a)) == 1) {
        CU_ASSERT_EQUAL(strlen(a.spec), a.len);
        CU_ASSERT(a.off + a.tlen <= strlen(list));
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", count ? "|" : "", a.spec);
        count++;
    }
    if (r < 0) {
        snprintf(out + o, outlen - o, "[%.*s]", (int)a.tlen, list + a.off);
        /* the list is at its end after an error */
        CU_ASSERT_EQUAL(rfc5322_list_next(&l, &a), 0);
        return -1 - (int)l.err;
    }
    CU_ASSERT_EQUAL(rfc5322_list_next(&l, &a), 0);
    return count;
}

#define SPLITS(list, n, want)                              \
    do {                                                   \
        char got_[2048];                                   \
        CU_ASSERT_EQUAL(split(list, got_, sizeof got_), n); \
        CU_ASSERT_STRING_EQUAL(got_, want);                \
    } while (0)

#define FAILS(list, err, elem)                                      \
    do {                                                            \
        char got_[2048];                                            \
        const char *g_;                                             \
        CU_ASSERT_EQUAL(split(list, got_, sizeof got_), -1 - (err)); \
        g_ = strrchr(got_, '[');                                    \
        CU_ASSERT_PTR_NOT_NULL_FATAL(g_);                           \
        CU_ASSERT_STRING_EQUAL(g_, "[" elem "]");                   \
    } while (0)

static void test_list_plain(void)
{
    SPLITS("a@b.example", 1, "a@b.example");
    SPLITS("a@b.example, c@d.example,e@f.example", 3, "a@b.example|c@d.example|e@f.example");
    SPLITS("  a@b.example  ", 1, "a@b.example");
    SPLITS("", 0, "");
    SPLITS("   ", 0, "");
    /* no domain: returned as is, rfc5322_mailbox adds one */
    SPLITS("root, bob", 2, "root|bob");
    /* NULL list is an empty one */
    struct rfc5322_list l;
    struct rfc5322_addr a;
    rfc5322_list_init(&l, NULL, 5);
    CU_ASSERT_EQUAL(rfc5322_list_next(&l, &a), 0);
}

static void test_list_names_and_angles(void)
{
    SPLITS("Alice <a@b.example>", 1, "a@b.example");
    SPLITS("\"Doe, J\" <j@d.example>, x@y.example", 2, "j@d.example|x@y.example");
    SPLITS("\"Bee\" <b@remote.example>", 1, "b@remote.example");
    SPLITS("Jos\xc3\xa9 M\xc3\xbcller <jm@x.example>", 1, "jm@x.example");
    /* blanks inside the angle brackets are dropped */
    SPLITS("< a@b.example >", 1, "a@b.example");
    SPLITS("<a@b.example>", 1, "a@b.example");
    /* an angle-addr wins over the words around it */
    SPLITS("Alice Smith <a@b.example> (work)", 1, "a@b.example");
    /* "<>" yields nothing to add */
    SPLITS("<>, a@b.example", 1, "a@b.example");
}

static void test_list_comments(void)
{
    SPLITS("a@b.example (Alice)", 1, "a@b.example");
    SPLITS("(lead) a@b.example", 1, "a@b.example");
    SPLITS("a(x)@(y)b.example", 1, "a@b.example");
    /* nested, with quoted-pairs, with specials inside */
    SPLITS("a@b.example (one (two) \\) three, <x@y>), c@d.example", 2, "a@b.example|c@d.example");
    SPLITS("Alice (the <boss>) <a@b.example>", 1, "a@b.example");
    /* a comment between two words is white space: still two words */
    FAILS("john(x)doe@b.example", RFC5322_EWORDS, "john(x)doe@b.example");
}

static void test_list_quoted(void)
{
    SPLITS("\"john doe\"@b.example", 1, "\"john doe\"@b.example");
    SPLITS("\"a,b\"@c.example, d@e.example", 2, "\"a,b\"@c.example|d@e.example");
    SPLITS("\"a\\\"b\"@c.example", 1, "\"a\\\"b\"@c.example");
    SPLITS("<\"x y\"@c.example>", 1, "\"x y\"@c.example");
    /* specials in a quoted display name do not split or open anything */
    SPLITS("\"<a@b>; (c)\" <real@d.example>", 1, "real@d.example");
    /* unterminated: the element runs to the end and is kept for the parser */
    SPLITS("\"abc@d.example", 1, "\"abc@d.example");
    CU_ASSERT_PTR_NOT_NULL(rfc5322_mailbox("\"abc@d.example", 14, "h.example", 0,
                                           (char[300]){ 0 }, 300, NULL));
}

static void test_list_groups(void)
{
    SPLITS("undisclosed-recipients:;", 0, "");
    SPLITS("friends: a@b.example, c@d.example;", 2, "a@b.example|c@d.example");
    SPLITS("friends: a@b.example, c@d.example;, e@f.example", 3,
           "a@b.example|c@d.example|e@f.example");
    SPLITS("A Group: Alice <a@b.example>;, B: ;", 1, "a@b.example");
    SPLITS("g1: a@b.example; g2: c@d.example;", 2, "a@b.example|c@d.example");
    /* a group name after an address is refused */
    FAILS("a@b.example: c@d.example", RFC5322_ECOLON, "a@b.example:");
    FAILS("<a@b.example>: x", RFC5322_ECOLON, "<a@b.example>:");
}

static void test_list_obsolete(void)
{
    /* obs-addr-list: empty elements */
    SPLITS(",a@b.example,, ,c@d.example,", 2, "a@b.example|c@d.example");
    /* obs-local-part / obs-domain: CFWS around dots and '@' */
    SPLITS("john . doe @ example . com", 1, "john.doe@example.com");
    SPLITS("john (x) . (y) doe@example.com", 1, "john.doe@example.com");
    /* obs-route in an angle-addr: dropped */
    SPLITS("Alice <@r1.example,@r2.example:a@b.example>", 1, "a@b.example");
    SPLITS("<@r1.example:a@b.example>", 1, "a@b.example");
    /* domain literal, blanks dropped */
    SPLITS("a@[192.0.2.1], b@[ 192.0.2.2 ]", 2, "a@[192.0.2.1]|b@[192.0.2.2]");
    SPLITS("a@[IPv6:2001:db8::1]", 1, "a@[IPv6:2001:db8::1]");
    /* ';' separates like ',' */
    SPLITS("a@b.example; c@d.example", 2, "a@b.example|c@d.example");
}

static void test_list_bad(void)
{
    char big[700];
    int n;

    FAILS("Alice <a@b.example", RFC5322_EANGLE, "Alice <a@b.example");
    FAILS("x@y.example, <a@b.example", RFC5322_EANGLE, "<a@b.example");
    FAILS("Alice a@b.example", RFC5322_EWORDS, "Alice a@b.example");
    FAILS("ok@x.example, Alice Smith a@b.example, later@x.example", RFC5322_EWORDS,
          "Alice Smith a@b.example");
    /* over-long addr-specs are reported, not cut (the bare form: see below) */
    n = snprintf(big, sizeof big, "<%0300d@b.example>", 0);
    CU_ASSERT(n > 0);
    {
        char got[2048];
        CU_ASSERT_EQUAL(split(big, got, sizeof got), -1 - RFC5322_ETOOLONG);
    }
    /* exactly ADDR_MAX + 1 bytes is still returned (and then too long for the parser) */
    memset(big, 'a', ADDR_MAX + 1);
    big[ADDR_MAX + 1] = 0;
    {
        struct rfc5322_list l;
        struct rfc5322_addr a;
        char out[ADDR_MAX + 1];
        rfc5322_list_init(&l, big, strlen(big));
        CU_ASSERT_EQUAL(rfc5322_list_next(&l, &a), 1);
        CU_ASSERT_EQUAL(a.len, ADDR_MAX + 1);
        CU_ASSERT_STRING_EQUAL(rfc5322_mailbox(a.spec, a.len, "h.example", 0, out, sizeof out, NULL),
                               "address too long");
    }
    CU_ASSERT_STRING_EQUAL(rfc5322_strerror(RFC5322_EANGLE), "missing \">\"");
    CU_ASSERT_STRING_EQUAL(rfc5322_strerror(RFC5322_ECOLON), "stray \":\"");
    CU_ASSERT_STRING_EQUAL(rfc5322_strerror(RFC5322_EWORDS), "words outside <...>");
    CU_ASSERT_STRING_EQUAL(rfc5322_strerror(RFC5322_ETOOLONG), "address too long");
}

/* The length-error element: FAILS above compares the bracket text, which for
 * a 300-digit local part would be unwieldy; check it here instead. */
static void test_list_toolong_text(void)
{
    char big[400], got[2048], want[420];

    snprintf(big, sizeof big, "  %0300d@b.example  ", 0);
    CU_ASSERT_EQUAL(split(big, got, sizeof got), -1 - RFC5322_ETOOLONG);
    snprintf(want, sizeof want, "[%0300d@b.example]", 0);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_mailbox(void)
{
    char out[ADDR_MAX + 1];
    int utf8 = 0;

    CU_ASSERT_PTR_NULL(rfc5322_mailbox("Bob@Example.COM", 15, "h.example", 0, out, sizeof out, &utf8));
    CU_ASSERT_STRING_EQUAL(out, "Bob@example.com");
    CU_ASSERT_EQUAL(utf8, 0);
    /* the default domain for a bare local part */
    CU_ASSERT_PTR_NULL(rfc5322_mailbox("root", 4, "h.example", 0, out, sizeof out, &utf8));
    CU_ASSERT_STRING_EQUAL(out, "root@h.example");
    CU_ASSERT_PTR_NULL(rfc5322_mailbox("\"a@b\"", 5, "h.example", 0, out, sizeof out, &utf8));
    CU_ASSERT_STRING_EQUAL(out, "\"a@b\"@h.example");
    /* UTF-8 only with ADDR_UTF8, and then reported */
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("jos\xc3\xa9@x.example", 12, "h.example", 0, out,
                                           sizeof out, &utf8), "address needs SMTPUTF8");
    CU_ASSERT_PTR_NULL(rfc5322_mailbox("jos\xc3\xa9@x.example", 12, "h.example", ADDR_UTF8, out,
                                       sizeof out, &utf8));
    CU_ASSERT_EQUAL(utf8, 1);
    /* empty: only with ADDR_ALLOW_EMPTY */
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("", 0, "h.example", 0, out, sizeof out, NULL),
                           "empty address");
    CU_ASSERT_PTR_NULL(rfc5322_mailbox("", 0, "h.example", ADDR_ALLOW_EMPTY, out, sizeof out, NULL));
    CU_ASSERT_STRING_EQUAL(out, "");
    /* no route, no junk, no bad syntax, no domain to add */
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("@r.example:a@b.example", 22, "h.example", 0, out,
                                           sizeof out, NULL), "bad address syntax");
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("a@b.example>x", 13, "h.example", 0, out, sizeof out,
                                           NULL), "bad address syntax");
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("a..b@c.example", 14, "h.example", 0, out, sizeof out,
                                           NULL), "bad address syntax");
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("root", 4, NULL, 0, out, sizeof out, NULL),
                           "bad address syntax");
    /* too long for out */
    CU_ASSERT_STRING_EQUAL(rfc5322_mailbox("abc@d.example", 13, "h.example", 0, out, 10, NULL),
                           "address too long");
    /* too long once the domain is added */
    {
        char local[70];
        memset(local, 'x', 64);
        local[64] = 0;
        char dom[200];
        memset(dom, 'd', 63);
        strcpy(dom + 63, ".");
        memset(dom + 64, 'e', 63);
        strcpy(dom + 127, ".");
        memset(dom + 128, 'f', 63);
        strcpy(dom + 191, ".example");
        CU_ASSERT_STRING_EQUAL(rfc5322_mailbox(local, 64, dom, 0, out, sizeof out, NULL),
                               "address too long");
    }
}

static void test_quote(void)
{
    char out[32];

    CU_ASSERT_EQUAL(rfc5322_quote_local("john.doe", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "john.doe");
    CU_ASSERT_EQUAL(rfc5322_quote_local("john doe", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"john doe\"");
    CU_ASSERT_EQUAL(rfc5322_quote_local(".x", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\".x\"");
    CU_ASSERT_EQUAL(rfc5322_quote_local("a..b", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"a..b\"");
    CU_ASSERT_EQUAL(rfc5322_quote_local("x.", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"x.\"");
    CU_ASSERT_EQUAL(rfc5322_quote_local("a\"b\\c", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"a\\\"b\\\\c\"");
    CU_ASSERT_EQUAL(rfc5322_quote_local("", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"\"");
    /* too long: refused, not cut */
    CU_ASSERT_EQUAL(rfc5322_quote_local("abcdefgh", out, 8), -1);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(rfc5322_quote_local("a b", out, 6), 0);
    CU_ASSERT_EQUAL(rfc5322_quote_local("a b", out, 5), -1);
    CU_ASSERT_EQUAL(rfc5322_quote_local("a\"", out, 5), -1);
    CU_ASSERT_EQUAL(rfc5322_quote_local("a\"", out, 6), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"a\\\"\"");

    CU_ASSERT_EQUAL(rfc5322_phrase("Full Name", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "Full Name");
    CU_ASSERT_EQUAL(rfc5322_phrase("Jos\xc3\xa9", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "Jos\xc3\xa9");
    CU_ASSERT_EQUAL(rfc5322_phrase("Doe, J.", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"Doe, J.\"");
    CU_ASSERT_EQUAL(rfc5322_phrase("a <b>", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "\"a <b>\"");
    CU_ASSERT_EQUAL(rfc5322_phrase("0123456789", out, 10), -1);
}

/* Loads text (lines split on '\n') into h, as sendmail reads them; returns
 * the offset where the header section ended. */
static size_t load(struct rfc5322_headers *h, char *buf, const char *text)
{
    size_t off = 0, len = strlen(text);

    memset(h, 0, sizeof *h);
    memcpy(buf, text, len + 1);
    h->buf = buf;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        if (rfc5322_hdr_line(h, off, n) <= 0)
            break;
        off += n + 1;
    }
    h->len = off;
    return off;
}

static void test_field_names(void)
{
    CU_ASSERT_EQUAL(rfc5322_field_name_len("To: a", 5), 2);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("To:", 3), 2);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("X-Foo-Bar:x", 11), 9);
    /* obsolete: white space before the colon */
    CU_ASSERT_EQUAL(rfc5322_field_name_len("Subject \t: hi", 13), 7);
    CU_ASSERT_EQUAL(rfc5322_field_name_len(": x", 3), 0);
    CU_ASSERT_EQUAL(rfc5322_field_name_len(" To: x", 6), 0);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("To x: y", 7), 0);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("No colon", 8), 0);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("Sub\xc3\xa9: x", 8), 0);
    CU_ASSERT_EQUAL(rfc5322_field_name_len("To", 2), 0);
    /* n bounds the look: the colon must be inside */
    CU_ASSERT_EQUAL(rfc5322_field_name_len("To: a", 2), 0);
}

static void test_headers_folded(void)
{
    struct rfc5322_headers h;
    char buf[512], *v;
    size_t vlen, end;

    end = load(&h, buf, "From: a@b.example\n"
                        "To: one@x.example,\n"
                        " two@x.example,\n"
                        "\tthree@x.example\n"
                        "Subject: folded\n"
                        "  subject\n"
                        "\n"
                        "body: not a header\n");
    CU_ASSERT_EQUAL(h.nline, 6);
    CU_ASSERT_EQUAL(end, strlen("From: a@b.example\nTo: one@x.example,\n two@x.example,\n"
                                "\tthree@x.example\nSubject: folded\n  subject\n"));
    CU_ASSERT_TRUE(h.line[0].start);
    CU_ASSERT_TRUE(h.line[1].start);
    CU_ASSERT_FALSE(h.line[2].start);
    CU_ASSERT_FALSE(h.line[3].start);
    CU_ASSERT_TRUE(rfc5322_hdr_is(&h, 1, "to"));
    CU_ASSERT_TRUE(rfc5322_hdr_is(&h, 1, "TO"));
    CU_ASSERT_FALSE(rfc5322_hdr_is(&h, 2, "To"));   /* a continuation is no field */
    CU_ASSERT_FALSE(rfc5322_hdr_is(&h, 0, "Fro"));
    CU_ASSERT_FALSE(rfc5322_hdr_is(&h, 99, "To"));

    /* unfolding removes the line ends only, white space stays */
    v = rfc5322_hdr_value(&h, 1, &vlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, " one@x.example, two@x.example,\tthree@x.example");
    CU_ASSERT_EQUAL(vlen, strlen(v));
    {
        char got[512];
        CU_ASSERT_EQUAL(split(v, got, sizeof got), 3);
        CU_ASSERT_STRING_EQUAL(got, "one@x.example|two@x.example|three@x.example");
    }
    free(v);
    v = rfc5322_hdr_value(&h, 4, &vlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, " folded  subject");
    free(v);
    /* a continuation line has no value of its own */
    CU_ASSERT_PTR_NULL(rfc5322_hdr_value(&h, 2, &vlen));

    /* dropping a field drops its continuation lines, not the next field */
    rfc5322_hdr_drop(&h, 1);
    CU_ASSERT_TRUE(h.line[1].drop && h.line[2].drop && h.line[3].drop);
    CU_ASSERT_FALSE(h.line[0].drop || h.line[4].drop || h.line[5].drop);
    rfc5322_hdr_free(&h);
    CU_ASSERT_PTR_NULL(h.line);
}

static void test_headers_edges(void)
{
    struct rfc5322_headers h;
    char buf[256];
    size_t vlen;
    char *v;

    /* a continuation line before any field is not a header line */
    CU_ASSERT_EQUAL(load(&h, buf, " folded\nTo: a@b\n"), 0);
    CU_ASSERT_EQUAL(h.nline, 0);
    rfc5322_hdr_free(&h);
    /* the body may start without a blank line */
    CU_ASSERT_EQUAL(load(&h, buf, "To: a@b\nHello there\n"), 8);
    CU_ASSERT_EQUAL(h.nline, 1);
    rfc5322_hdr_free(&h);
    /* obsolete "Name :" form, and an empty value */
    load(&h, buf, "Cc : c@d.example\nBcc:\n");
    CU_ASSERT_EQUAL(h.nline, 2);
    CU_ASSERT_TRUE(rfc5322_hdr_is(&h, 0, "Cc"));
    v = rfc5322_hdr_value(&h, 0, &vlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, " c@d.example");
    free(v);
    v = rfc5322_hdr_value(&h, 1, &vlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(vlen, 0);
    CU_ASSERT_STRING_EQUAL(v, "");
    free(v);
    rfc5322_hdr_free(&h);
    /* many lines: the table grows */
    {
        static char big[64 * 200];
        size_t o = 0;
        for (int i = 0; i < 150; i++)
            o += (size_t)snprintf(big + o, sizeof big - o, "X-%d: v\n", i);
        static char copy[sizeof big];
        load(&h, copy, big);
        CU_ASSERT_EQUAL(h.nline, 150);
        CU_ASSERT_TRUE(rfc5322_hdr_is(&h, 149, "X-149"));
        rfc5322_hdr_free(&h);
    }
}

static void test_headers_resent(void)
{
    struct rfc5322_headers h;
    char buf[512];

    load(&h, buf, "To: a@x\nCc: b@x\nBcc: c@x\nSubject: s\n");
    CU_ASSERT_FALSE(rfc5322_hdr_resent(&h));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 0, 0));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 1, 0));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 2, 0));
    CU_ASSERT_FALSE(rfc5322_hdr_is_rcpt(&h, 3, 0));
    rfc5322_hdr_free(&h);

    /* with Resent- fields only their recipients count (RFC 5322 3.6.6) */
    load(&h, buf, "To: a@x\nResent-From: r@x\nResent-To: d@x\nresent-cc: e@x\nRESENT-BCC: f@x\n"
                  "Resent-Sender: g@x\n");
    CU_ASSERT_TRUE(rfc5322_hdr_resent(&h));
    CU_ASSERT_FALSE(rfc5322_hdr_is_rcpt(&h, 0, 1));
    CU_ASSERT_FALSE(rfc5322_hdr_is_rcpt(&h, 1, 1));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 2, 1));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 3, 1));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 4, 1));
    CU_ASSERT_FALSE(rfc5322_hdr_is_rcpt(&h, 5, 1));
    CU_ASSERT_TRUE(rfc5322_hdr_is_rcpt(&h, 0, 0));
    rfc5322_hdr_free(&h);

    /* "Resent-" alone, or in a continuation line, is no Resent- field */
    load(&h, buf, "Resent-\nX: y\n Resent-To: z\n");
    CU_ASSERT_FALSE(rfc5322_hdr_resent(&h));
    rfc5322_hdr_free(&h);
}

void suite_rfc5322(void)
{
    CU_pSuite s = CU_add_suite("rfc5322", NULL, NULL);

    CU_add_test(s, "list: plain addresses", test_list_plain);
    CU_add_test(s, "list: display names and angle-addrs", test_list_names_and_angles);
    CU_add_test(s, "list: comments", test_list_comments);
    CU_add_test(s, "list: quoted strings", test_list_quoted);
    CU_add_test(s, "list: groups", test_list_groups);
    CU_add_test(s, "list: obsolete forms", test_list_obsolete);
    CU_add_test(s, "list: bad input", test_list_bad);
    CU_add_test(s, "list: the element of a length error", test_list_toolong_text);
    CU_add_test(s, "mailbox from an addr-spec", test_mailbox);
    CU_add_test(s, "quoting local parts and phrases", test_quote);
    CU_add_test(s, "field names", test_field_names);
    CU_add_test(s, "headers: folded lines and unfolded values", test_headers_folded);
    CU_add_test(s, "headers: edges", test_headers_edges);
    CU_add_test(s, "headers: Resent- fields", test_headers_resent);
}
