/*
 * test_addr.c - CUnit tests for common/addr.c, the RFC 5321 path parser.
 *
 * Every input is copied into a heap buffer of exactly its length, so that
 * under AddressSanitizer a read past len is a crash, not a silent pass.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "suites.h"

/* Parses the first n bytes of s from an exact-size copy. */
static enum addr_error parse_n(const char *s, size_t n, unsigned flags,
                               struct addr *a, size_t *end)
{
    char *copy = malloc(n ? n : 1);
    enum addr_error e;

    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, s, n);
    e = addr_parse_path(copy, n, flags, a, end);
    free(copy);
    return e;
}

static enum addr_error parse(const char *s, unsigned flags, struct addr *a)
{
    size_t end;
    enum addr_error e = parse_n(s, strlen(s), flags, a, &end);

    if (e == ADDR_OK)
        CU_ASSERT_EQUAL(end, strlen(s));
    return e;
}

static enum addr_error err_of(const char *s, unsigned flags)
{
    struct addr a;
    return parse(s, flags, &a);
}

/* Builds "<" local "@" domain ">" with given part lengths of filler. */
static void make_addr(char *out, size_t outlen, size_t local_len, const char *domain)
{
    size_t o = 0;

    CU_ASSERT_FATAL(local_len + strlen(domain) + 4 <= outlen);
    out[o++] = '<';
    memset(out + o, 'l', local_len);
    o += local_len;
    out[o++] = '@';
    memcpy(out + o, domain, strlen(domain));
    o += strlen(domain);
    out[o++] = '>';
    out[o] = '\0';
}

/* A domain of exactly len octets made of labels of at most 63. */
static void make_domain(char *out, size_t len)
{
    size_t o = 0;

    while (o < len) {
        size_t lab = len - o;
        if (lab > 63)
            lab = 63;
        if (len - o - lab == 1)
            lab--;                  /* do not leave a lone trailing dot */
        memset(out + o, 'd', lab);
        o += lab;
        if (o < len)
            out[o++] = '.';
    }
    out[o] = '\0';
}

static void test_basic(void)
{
    struct addr a;
    size_t end = 0;

    CU_ASSERT_EQUAL(parse("<user@example.com>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "user@example.com");
    CU_ASSERT_STRING_EQUAL(a.domain, "example.com");
    CU_ASSERT_EQUAL(a.local_len, 4);
    CU_ASSERT_FALSE(a.is_literal);
    CU_ASSERT_FALSE(a.is_utf8);

    /* domain lower-cased, mailbox as given */
    CU_ASSERT_EQUAL(parse("<John.Smith@Example.COM>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "John.Smith@Example.COM");
    CU_ASSERT_STRING_EQUAL(a.domain, "example.com");
    CU_ASSERT_EQUAL(a.local_len, 10);

    /* *end points past '>' even with ESMTP parameters behind */
    const char *p = "<a@b.example> SIZE=100 BODY=8BITMIME";
    CU_ASSERT_EQUAL(parse_n(p, strlen(p), 0, &a, &end), ADDR_OK);
    CU_ASSERT_EQUAL(end, 13);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "a@b.example");

    /* what follows '>' is the caller's business */
    p = "<a@b.example><";
    CU_ASSERT_EQUAL(parse_n(p, strlen(p), 0, &a, &end), ADDR_OK);
    CU_ASSERT_EQUAL(end, 13);

    /* end may be NULL */
    CU_ASSERT_EQUAL(addr_parse_path("<a@b.example>", 13, 0, &a, NULL), ADDR_OK);

    CU_ASSERT_EQUAL(err_of("<a@localhost>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<a@123.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<a@x-y.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<a@x--y.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<a@xn--bcher-kva.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<a.b.c@x.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<!#$%&'*+-/=?^_`{|}~@x.example>", 0), ADDR_OK);
}

static void test_empty_path(void)
{
    struct addr a;
    size_t end = 99;

    CU_ASSERT_EQUAL(err_of("<>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<>", ADDR_ALLOW_POSTMASTER | ADDR_UTF8), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<> SIZE=1", 9, ADDR_ALLOW_EMPTY, &a, &end), ADDR_OK);
    CU_ASSERT_EQUAL(end, 2);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "");
    CU_ASSERT_STRING_EQUAL(a.domain, "");
    CU_ASSERT_EQUAL(a.local_len, 0);
    CU_ASSERT_EQUAL(err_of("< >", ADDR_ALLOW_EMPTY), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<", ADDR_ALLOW_EMPTY), ADDR_ESYNTAX);
}

static void test_postmaster(void)
{
    struct addr a;

    CU_ASSERT_EQUAL(parse("<Postmaster>", ADDR_ALLOW_POSTMASTER, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "Postmaster");
    CU_ASSERT_STRING_EQUAL(a.domain, "");
    CU_ASSERT_EQUAL(a.local_len, 10);
    CU_ASSERT_EQUAL(parse("<pOSTMASTER>", ADDR_ALLOW_POSTMASTER, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "Postmaster");
    CU_ASSERT_EQUAL(err_of("<Postmaster>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<Postmaster>", ADDR_ALLOW_EMPTY), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<Postmasterx>", ADDR_ALLOW_POSTMASTER), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<Postmaste>", ADDR_ALLOW_POSTMASTER), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<user>", ADDR_ALLOW_POSTMASTER), ADDR_ESYNTAX);
    /* with a domain it is an ordinary address, no flag needed */
    CU_ASSERT_EQUAL(parse("<Postmaster@Example.org>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "Postmaster@Example.org");
    CU_ASSERT_STRING_EQUAL(a.domain, "example.org");
}

static void test_source_route(void)
{
    struct addr a;

    CU_ASSERT_EQUAL(parse("<@a.example,@b.example:local@domain.example>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "local@domain.example");
    CU_ASSERT_STRING_EQUAL(a.domain, "domain.example");
    CU_ASSERT_EQUAL(a.local_len, 5);
    CU_ASSERT_EQUAL(parse("<@relay.example:u@x.example>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "u@x.example");

    CU_ASSERT_EQUAL(err_of("<@:u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example,b.example:u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a..example:u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example:>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example,:u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@[192.0.2.1]:u@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<@a.example:@b.example:u@x.example>", 0), ADDR_ESYNTAX);
}

static void test_quoted(void)
{
    struct addr a;

    CU_ASSERT_EQUAL(parse("<\"john doe\"@example.com>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "\"john doe\"@example.com");
    CU_ASSERT_EQUAL(a.local_len, 10);
    CU_ASSERT_STRING_EQUAL(a.domain, "example.com");

    /* quoted-pairs are kept as written */
    CU_ASSERT_EQUAL(parse("<\"a\\\"b\\\\c\"@x.example>", 0, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "\"a\\\"b\\\\c\"@x.example");
    CU_ASSERT_EQUAL(a.local_len, 9);
    CU_ASSERT_EQUAL(err_of("<\"a@b <>,;:[]\"@x.example>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<\"\\ \"@x.example>", 0), ADDR_OK);

    CU_ASSERT_EQUAL(err_of("<\"\"@x.example>", 0), ADDR_ESYNTAX);          /* empty */
    CU_ASSERT_EQUAL(err_of("<\"abc@x.example>", 0), ADDR_ESYNTAX);         /* unterminated */
    CU_ASSERT_EQUAL(err_of("<\"abc\"", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<\"a\tb\"@x.example>", 0), ADDR_ESYNTAX);      /* tab */
    CU_ASSERT_EQUAL(err_of("<\"a\rb\"@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<\"a\\\x01\"@x.example>", 0), ADDR_ESYNTAX);   /* bad quoted-pair */
    CU_ASSERT_EQUAL(err_of("<\"a\x7f\"@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<\"a\\", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<\"a\"b@x.example>", 0), ADDR_ESYNTAX);       /* text after quote */
    CU_ASSERT_EQUAL(err_of("<a\"b\"@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<\"a\".b@x.example>", 0), ADDR_ESYNTAX);
}

static void test_literal(void)
{
    struct addr a;

    CU_ASSERT_EQUAL(parse("<u@[192.0.2.1]>", 0, &a), ADDR_OK);
    CU_ASSERT_TRUE(a.is_literal);
    CU_ASSERT_STRING_EQUAL(a.domain, "[192.0.2.1]");
    CU_ASSERT_STRING_EQUAL(a.mailbox, "u@[192.0.2.1]");
    CU_ASSERT_EQUAL(parse("<u@[IPv6:2001:DB8::1]>", 0, &a), ADDR_OK);
    CU_ASSERT_TRUE(a.is_literal);
    CU_ASSERT_STRING_EQUAL(a.domain, "[IPv6:2001:DB8::1]");    /* as given */
    CU_ASSERT_EQUAL(err_of("<u@[ipv6:2001:db8::1]>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:::ffff:192.0.2.1]>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:::]>", 0), ADDR_OK);
    CU_ASSERT_EQUAL(parse("<u@x.example>", 0, &a), ADDR_OK);
    CU_ASSERT_FALSE(a.is_literal);

    CU_ASSERT_EQUAL(err_of("<u@[192.0.2.256]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[192.0.2]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[2001:db8::1]>", 0), ADDR_ESYNTAX);   /* tag missing */
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:192.0.2.1]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:zz::1]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[x-tag:stuff]>", 0), ADDR_ESYNTAX);   /* general literal */
    CU_ASSERT_EQUAL(err_of("<u@[]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[192.0.2.1>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[192.0.2.1]x>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[192.0.2.1].example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[ 192.0.2.1]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@x.[192.0.2.1]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[192.0.2.1]", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<u@[IPv6:2001:db8:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:1]>", 0),
                    ADDR_ESYNTAX);
}

static void test_bad_syntax(void)
{
    static const char *const bad[] = {
        "", "<", ">", "a@x.example", " <a@x.example>", "< a@x.example>",
        "<a@x.example >", "<a @x.example>", "<a@ x.example>", "<a@x.example",
        "<a@x.example ", "<.a@x.example>", "<a.@x.example>", "<a..b@x.example>",
        "<a@b@x.example>", "<a(b)@x.example>", "<a,b@x.example>", "<a[b]@x.example>",
        "<a\\b@x.example>", "<a>", "<@>", "<a@>", "<@x.example>", "<a@-x.example>",
        "<a@x-.example>", "<a@x..example>", "<a@.x.example>", "<a@x.example.>",
        "<a@x_y.example>", "<a@x.exa mple>", "<a@x.example,>", "<a@x:25>",
        "<<a@x.example>>", "<a;b@x.example>", "<a:b@x.example>",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum addr_error e = err_of(bad[i], ADDR_ALLOW_EMPTY | ADDR_ALLOW_POSTMASTER | ADDR_UTF8);
        if (e != ADDR_ESYNTAX)
            fprintf(stderr, "\n  addr accepted or misjudged: [%s] -> %d\n", bad[i], (int)e);
        CU_ASSERT_EQUAL(e, ADDR_ESYNTAX);
    }
    /* on error the struct is left empty */
    struct addr a;
    memset(&a, 'x', sizeof a);
    CU_ASSERT_EQUAL(parse("<a@x..example>", 0, &a), ADDR_ESYNTAX);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "");
    CU_ASSERT_STRING_EQUAL(a.domain, "");
    CU_ASSERT_EQUAL(addr_parse_path(NULL, 5, 0, &a, NULL), ADDR_ESYNTAX);
}

static void test_nul_cr(void)
{
    struct addr a;
    size_t end;

    CU_ASSERT_EQUAL(parse_n("<a\0b@x.example>", 15, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<ab@x.exa\0mple>", 15, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<ab@x.example\0>", 15, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<\"a\0b\"@x.example>", 17, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<\0>", 3, ADDR_ALLOW_EMPTY, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<ab@[1.2.3.4\0]>", 15, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(parse_n("<@r\0.example:a@x.example>", 24, 0, &a, &end), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\r@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a@x.example\r>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a@x.example\r\n>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\n@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\t@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\x7f@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\x1b@x.example>", 0), ADDR_ESYNTAX);
}

/* Every strict prefix of a valid path is unterminated: ESYNTAX, no over-read. */
static void test_unterminated_prefixes(void)
{
    static const char *const good[] = {
        "<user@example.com>", "<\"john \\\" doe\"@example.com>",
        "<@a.example,@b.example:l@d.example>", "<u@[192.0.2.1]>",
        "<u@[IPv6:2001:db8::1]>", "<Postmaster>",
        "<\xce\xb4\xce\xbf@\xcf\x80\xce\xb1.example>", "<\xf0\x9f\x98\x80@x.example>",
    };
    unsigned flags = ADDR_ALLOW_EMPTY | ADDR_ALLOW_POSTMASTER | ADDR_UTF8;
    struct addr a;
    size_t end;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t n = strlen(good[i]);
        CU_ASSERT_EQUAL(parse_n(good[i], n, flags, &a, &end), ADDR_OK);
        CU_ASSERT_EQUAL(end, n);
        for (size_t k = 0; k < n; k++) {
            enum addr_error e = parse_n(good[i], k, flags, &a, &end);
            if (e != ADDR_ESYNTAX)
                fprintf(stderr, "\n  prefix %zu of [%s] -> %d\n", k, good[i], (int)e);
            CU_ASSERT_EQUAL(e, ADDR_ESYNTAX);
        }
    }
}

static void test_length_limits(void)
{
    char buf[1024], dom[300];
    struct addr a;

    /* local part: 64 ok, 65 too long */
    make_addr(buf, sizeof buf, 64, "x.example");
    CU_ASSERT_EQUAL(parse(buf, 0, &a), ADDR_OK);
    CU_ASSERT_EQUAL(a.local_len, 64);
    make_addr(buf, sizeof buf, 65, "x.example");
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);
    /* quoted: the quotes count */
    snprintf(buf, sizeof buf, "<\"%062d\"@x.example>", 0);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_OK);
    snprintf(buf, sizeof buf, "<\"%063d\"@x.example>", 0);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);

    /* label: 63 ok, 64 too long */
    memset(dom, 'd', 63);
    strcpy(dom + 63, ".example");
    make_addr(buf, sizeof buf, 1, dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_OK);
    memset(dom, 'd', 64);
    strcpy(dom + 64, ".example");
    make_addr(buf, sizeof buf, 1, dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);

    /* whole mailbox: 256 ok, 257 too long (domain itself within 255) */
    make_domain(dom, 191);
    make_addr(buf, sizeof buf, 64, dom);        /* 64 + 1 + 191 = 256 */
    CU_ASSERT_EQUAL(parse(buf, 0, &a), ADDR_OK);
    CU_ASSERT_EQUAL(strlen(a.mailbox), 256);
    make_domain(dom, 192);
    make_addr(buf, sizeof buf, 64, dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);
    make_domain(dom, 254);
    make_addr(buf, sizeof buf, 1, dom);         /* 1 + 1 + 254 = 256 */
    CU_ASSERT_EQUAL(parse(buf, 0, &a), ADDR_OK);
    CU_ASSERT_EQUAL(strlen(a.domain), 254);

    /* domain: 255 is its own limit, but with any local part the mailbox is over */
    make_domain(dom, 255);
    CU_ASSERT_TRUE(addr_valid_domain(dom, 255, 0));
    make_addr(buf, sizeof buf, 1, dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);
    make_domain(dom, 256);
    CU_ASSERT_FALSE(addr_valid_domain(dom, 256, 0));
    make_addr(buf, sizeof buf, 1, dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);

    /* a syntax error beats a length error */
    make_addr(buf, sizeof buf, 100, "x..example");
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ESYNTAX);
    /* a long route domain is a length error too */
    make_domain(dom, 256);
    snprintf(buf, sizeof buf, "<@%s:a@x.example>", dom);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);
}

static void test_utf8(void)
{
    struct addr a;
    /* δοκιμή@παράδειγμα.δοκιμή */
    const char *greek = "<\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@"
                        "\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9\xce\xb3"
                        "\xce\xbc\xce\xb1.\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae>";

    CU_ASSERT_EQUAL(parse(greek, ADDR_UTF8, &a), ADDR_OK);
    CU_ASSERT_TRUE(a.is_utf8);
    CU_ASSERT_EQUAL(a.local_len, 12);
    CU_ASSERT_EQUAL(memcmp(a.domain, "\xcf\x80\xce\xb1", 4), 0);
    CU_ASSERT_EQUAL(err_of(greek, 0), ADDR_ENEEDUTF8);
    CU_ASSERT_EQUAL(err_of(greek, ADDR_ALLOW_EMPTY | ADDR_ALLOW_POSTMASTER), ADDR_ENEEDUTF8);

    /* UTF-8 local part, ASCII domain: the domain is still lower-cased */
    CU_ASSERT_EQUAL(parse("<Jos\xc3\xa9@Example.COM>", ADDR_UTF8, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.mailbox, "Jos\xc3\xa9@Example.COM");
    CU_ASSERT_STRING_EQUAL(a.domain, "example.com");
    CU_ASSERT_TRUE(a.is_utf8);
    /* U-label domain: kept as given */
    CU_ASSERT_EQUAL(parse("<a@B\xc3\xbc" "cher.Example>", ADDR_UTF8, &a), ADDR_OK);
    CU_ASSERT_STRING_EQUAL(a.domain, "B\xc3\xbc" "cher.Example");

    /* 4-byte, quoted, route */
    CU_ASSERT_EQUAL(err_of("<\xf0\x9f\x98\x80@x.example>", ADDR_UTF8), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<\"j\xc3\xb6 d\"@x.example>", ADDR_UTF8), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<\"j\xc3\xb6 d\"@x.example>", 0), ADDR_ENEEDUTF8);
    CU_ASSERT_EQUAL(err_of("<@r\xc3\xa9.example:a@x.example>", ADDR_UTF8), ADDR_OK);
    CU_ASSERT_EQUAL(err_of("<@r\xc3\xa9.example:a@x.example>", 0), ADDR_ENEEDUTF8);
    CU_ASSERT_EQUAL(err_of("<a@x.\xc3\xa9>", 0), ADDR_ENEEDUTF8);

    /* malformed UTF-8 is a syntax error with or without the flag */
    static const char *const badutf[] = {
        "<\xc0\xaf@x.example>",             /* overlong '/' */
        "<\xc1\xbf@x.example>",             /* overlong */
        "<\xe0\x80\xaf@x.example>",         /* overlong 3-byte */
        "<\xf0\x80\x80\xaf@x.example>",     /* overlong 4-byte */
        "<\xed\xa0\x80@x.example>",         /* surrogate U+D800 */
        "<\xed\xbf\xbf@x.example>",         /* surrogate U+DFFF */
        "<\xf4\x90\x80\x80@x.example>",     /* above U+10FFFF */
        "<\xf5\x80\x80\x80@x.example>",
        "<\xff@x.example>",
        "<\x80@x.example>",                 /* lone continuation */
        "<\xe2\x82@x.example>",             /* truncated */
        "<a\xc3@x.example>",
        "<\xc2\x85@x.example>",             /* C1 control NEL */
        "<a@x\xc3.example>",
        "<a@\xe2\x82.example>",
        "<\"\xc0\xaf\"@x.example>",
        "<a@-\xc3\xa9.example>",            /* hyphen at label start */
        "<a@\xc3\xa9-.example>",
    };
    for (size_t i = 0; i < sizeof badutf / sizeof badutf[0]; i++) {
        CU_ASSERT_EQUAL(err_of(badutf[i], ADDR_UTF8), ADDR_ESYNTAX);
        CU_ASSERT_EQUAL(err_of(badutf[i], 0), ADDR_ESYNTAX);
    }
    /* valid boundaries of the ranges */
    CU_ASSERT_EQUAL(err_of("<\xc2\xa0x@x.example>", ADDR_UTF8), ADDR_OK);     /* U+00A0 */
    CU_ASSERT_EQUAL(err_of("<\xed\x9f\xbf@x.example>", ADDR_UTF8), ADDR_OK);  /* U+D7FF */
    CU_ASSERT_EQUAL(err_of("<\xee\x80\x80@x.example>", ADDR_UTF8), ADDR_OK);  /* U+E000 */
    CU_ASSERT_EQUAL(err_of("<\xf4\x8f\xbf\xbf@x.example>", ADDR_UTF8), ADDR_OK); /* U+10FFFF */

    /* a byte >= 0x80 where even UTF-8 is not allowed is a syntax error */
    CU_ASSERT_EQUAL(err_of("<a@[192.0.2.1\xc3\xa9]>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\xc3\xa9 b@x.example>", 0), ADDR_ESYNTAX);
    CU_ASSERT_EQUAL(err_of("<a\\\xc3\xa9@x.example>", ADDR_UTF8), ADDR_ESYNTAX);

    /* limits count octets: 32 two-byte characters fit, 33 do not */
    char buf[200];
    size_t o = 0;
    buf[o++] = '<';
    for (int i = 0; i < 32; i++) {
        buf[o++] = '\xc3';
        buf[o++] = '\xa9';
    }
    strcpy(buf + o, "@x.example>");
    CU_ASSERT_EQUAL(err_of(buf, ADDR_UTF8), ADDR_OK);
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ENEEDUTF8);
    buf[o++] = '\xc3';
    buf[o++] = '\xa9';
    strcpy(buf + o, "@x.example>");
    CU_ASSERT_EQUAL(err_of(buf, ADDR_UTF8), ADDR_ETOOLONG);
    /* too long either way: the length is reported, not the UTF-8 */
    CU_ASSERT_EQUAL(err_of(buf, 0), ADDR_ETOOLONG);
}

static void test_valid_domain(void)
{
    char dom[300];

    CU_ASSERT_TRUE(addr_valid_domain("example.com", 11, 0));
    CU_ASSERT_TRUE(addr_valid_domain("localhost", 9, 0));
    CU_ASSERT_TRUE(addr_valid_domain("a", 1, 0));
    CU_ASSERT_TRUE(addr_valid_domain("example.com.garbage", 11, 0));   /* only len counts */
    CU_ASSERT_FALSE(addr_valid_domain("", 0, 0));
    CU_ASSERT_FALSE(addr_valid_domain(NULL, 3, 1));
    CU_ASSERT_FALSE(addr_valid_domain("a..b", 4, 0));
    CU_ASSERT_FALSE(addr_valid_domain("a.b.", 4, 0));
    CU_ASSERT_FALSE(addr_valid_domain(".a", 2, 0));
    CU_ASSERT_FALSE(addr_valid_domain("-a", 2, 0));
    CU_ASSERT_FALSE(addr_valid_domain("a-", 2, 0));
    CU_ASSERT_FALSE(addr_valid_domain("a_b", 3, 0));
    CU_ASSERT_FALSE(addr_valid_domain("a b", 3, 0));
    CU_ASSERT_FALSE(addr_valid_domain("[1.2.3.4]", 9, 0));
    CU_ASSERT_FALSE(addr_valid_domain("a\0b", 3, 0));
    CU_ASSERT_TRUE(addr_valid_domain("b\xc3\xbc" "cher.example", 13, 1));
    CU_ASSERT_FALSE(addr_valid_domain("b\xc3\xbc" "cher.example", 13, 0));
    CU_ASSERT_FALSE(addr_valid_domain("b\xc3" "cher.example", 12, 1));
    memset(dom, 'a', 63);
    CU_ASSERT_TRUE(addr_valid_domain(dom, 63, 0));
    memset(dom, 'a', 64);
    CU_ASSERT_FALSE(addr_valid_domain(dom, 64, 0));
    make_domain(dom, 255);
    CU_ASSERT_TRUE(addr_valid_domain(dom, 255, 0));
    make_domain(dom, 256);
    CU_ASSERT_FALSE(addr_valid_domain(dom, 256, 0));
}

static void test_strerror(void)
{
    const char *s[4] = {
        addr_strerror(ADDR_OK), addr_strerror(ADDR_ESYNTAX),
        addr_strerror(ADDR_ETOOLONG), addr_strerror(ADDR_ENEEDUTF8),
    };
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(s[i]);
        CU_ASSERT_TRUE(strlen(s[i]) > 0);
        for (int j = 0; j < i; j++)
            CU_ASSERT_STRING_NOT_EQUAL(s[i], s[j]);
    }
    CU_ASSERT_PTR_NOT_NULL(addr_strerror((enum addr_error)42));
}

void suite_addr(void)
{
    CU_pSuite s = CU_add_suite("addr", NULL, NULL);

    if (s == NULL)
        return;
    CU_add_test(s, "basic forms", test_basic);
    CU_add_test(s, "empty path", test_empty_path);
    CU_add_test(s, "postmaster", test_postmaster);
    CU_add_test(s, "source route", test_source_route);
    CU_add_test(s, "quoted local part", test_quoted);
    CU_add_test(s, "address literals", test_literal);
    CU_add_test(s, "bad syntax", test_bad_syntax);
    CU_add_test(s, "NUL and CR", test_nul_cr);
    CU_add_test(s, "unterminated prefixes", test_unterminated_prefixes);
    CU_add_test(s, "length limits", test_length_limits);
    CU_add_test(s, "UTF-8", test_utf8);
    CU_add_test(s, "addr_valid_domain", test_valid_domain);
    CU_add_test(s, "addr_strerror", test_strerror);
}
