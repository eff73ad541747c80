/*
 * test_resolver_answer.c - CUnit suite for resolver/answer.c: libunbound
 * results made by hand (no DNS) become the right status, DNSSEC verdict
 * and records; every malformed rdata makes the answer a temporary failure.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "../../resolver/answer.h"
#include "suites.h"
#include "util.h"

#define AT_MAX 8

struct fake {
    struct ub_result r;
    char *data[AT_MAX + 1];
    int len[AT_MAX + 1];
    unsigned char store[AT_MAX][600];
};

static struct dns_answer *ans;

static int at_setup(void)
{
    ans = malloc(sizeof *ans);
    return ans ? 0 : -1;
}

static int at_teardown(void)
{
    free(ans);
    return 0;
}

static void fake_init(struct fake *f, const char *qname, int qtype)
{
    memset(f, 0, sizeof *f);
    f->r.qname = (char *)qname;
    f->r.qtype = qtype;
    f->r.qclass = 1;
    f->r.canonname = (char *)qname;
    f->r.data = f->data;
    f->r.len = f->len;
    f->r.ttl = 300;
}

static void fake_add(struct fake *f, const void *rdata, size_t n)
{
    size_t i = 0;

    while (f->data[i])
        i++;
    memcpy(f->store[i], rdata, n);
    f->data[i] = (char *)f->store[i];
    f->len[i] = (int)n;
    f->r.havedata = 1;
}

static void run(struct fake *f, uint16_t type)
{
    str_copy(ans->name, f->r.qname, sizeof ans->name);
    answer_from_ub(0, &f->r, type, ans);
}

static void test_at_addresses(void)
{
    struct fake f;
    unsigned char v4[4] = { 192, 0, 2, 7 };
    unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

    fake_init(&f, "h.test", DNS_T_A);
    fake_add(&f, v4, 4);
    run(&f, DNS_T_A);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_EQUAL(ans->nrr, 1);
    CU_ASSERT_STRING_EQUAL(ans->rr[0].addr, "192.0.2.7");
    CU_ASSERT_EQUAL(ans->ttl, 300);
    CU_ASSERT_EQUAL(ans->security, DNS_INSECURE);

    fake_init(&f, "h.test", DNS_T_AAAA);
    fake_add(&f, v6, 16);
    f.r.secure = 1;
    run(&f, DNS_T_AAAA);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_STRING_EQUAL(ans->rr[0].addr, "2001:db8::1");
    CU_ASSERT_EQUAL(ans->security, DNS_SECURE);

    /* a 5-byte A record or a 4-byte AAAA: malformed, temporary */
    fake_init(&f, "h.test", DNS_T_A);
    fake_add(&f, v4, 4);
    fake_add(&f, v6, 5);
    run(&f, DNS_T_A);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
    CU_ASSERT_EQUAL(ans->nrr, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans->text, "malformed"));
    fake_init(&f, "h.test", DNS_T_AAAA);
    fake_add(&f, v4, 4);
    run(&f, DNS_T_AAAA);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
}

static void test_at_mx(void)
{
    struct fake f;
    static const unsigned char mx1[] = { 0, 10, 2, 'm', 'x', 4, 'T', 'e', 's', 't', 0 };
    static const unsigned char null[] = { 0, 0, 0 };
    static const unsigned char trail[] = { 0, 10, 2, 'm', 'x', 0, 'x' };      /* bytes after the name */
    static const unsigned char past[] = { 0, 10, 9, 'm', 'x', 0 };            /* label runs past */
    static const unsigned char ptr[] = { 0, 10, 0xc0, 0x0c };                 /* compression pointer */
    static const unsigned char dot[] = { 0, 10, 3, 'a', '.', 'b', 4, 't', 'e', 's', 't', 0 };
    static const unsigned char nul[] = { 0, 10, 3, 'a', 0, 'b', 4, 't', 'e', 's', 't', 0 };
    static const unsigned char sp[] = { 0, 10, 3, 'a', ' ', 'b', 0 };
    static const unsigned char shortmx[] = { 0, 10 };
    const unsigned char *bad[] = { trail, past, ptr, shortmx };
    const size_t badlen[] = { sizeof trail, sizeof past, sizeof ptr, sizeof shortmx };
    const unsigned char *odd[] = { dot, nul, sp };
    const size_t oddlen[] = { sizeof dot, sizeof nul, sizeof sp };

    fake_init(&f, "d.test", DNS_T_MX);
    fake_add(&f, mx1, sizeof mx1);
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_EQUAL(ans->rr[0].pref, 10);
    CU_ASSERT_STRING_EQUAL(ans->rr[0].host, "mx.test");

    fake_init(&f, "d.test", DNS_T_MX);
    fake_add(&f, null, sizeof null);
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_STRING_EQUAL(ans->rr[0].host, ".");

    /* malformed rdata: the whole answer is a temporary failure */
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        fake_init(&f, "d.test", DNS_T_MX);
        fake_add(&f, mx1, sizeof mx1);
        fake_add(&f, bad[i], badlen[i]);
        run(&f, DNS_T_MX);
        CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
        CU_ASSERT_EQUAL(ans->nrr, 0);
    }
    /* well formed, but no host name: skipped; alone, a temporary failure */
    for (size_t i = 0; i < ARRAY_LEN(odd); i++) {
        fake_init(&f, "d.test", DNS_T_MX);
        fake_add(&f, odd[i], oddlen[i]);
        fake_add(&f, mx1, sizeof mx1);
        run(&f, DNS_T_MX);
        CU_ASSERT_EQUAL(ans->status, DNS_OK);
        CU_ASSERT_EQUAL(ans->nrr, 1);
        CU_ASSERT_STRING_EQUAL(ans->rr[0].host, "mx.test");
        fake_init(&f, "d.test", DNS_T_MX);
        fake_add(&f, odd[i], oddlen[i]);
        run(&f, DNS_T_MX);
        CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
        CU_ASSERT_PTR_NOT_NULL(strstr(ans->text, "skipped"));
    }
}

static void test_at_long_name(void)
{
    /* 5 labels of 63: 321 octets, over the 255 a DNS name may have */
    unsigned char rd[2 + 5 * 64 + 1];
    struct fake f;
    size_t p = 2;

    rd[0] = 0;
    rd[1] = 1;
    for (int l = 0; l < 5; l++) {
        rd[p++] = 63;
        memset(rd + p, 'a', 63);
        p += 63;
    }
    rd[p++] = 0;
    fake_init(&f, "d.test", DNS_T_MX);
    fake_add(&f, rd, p);
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans->text, "malformed"));
    /* 3 labels of 63 and one of 62: 254 octets, 253 characters: fits */
    p = 2;
    for (int l = 0; l < 4; l++) {
        rd[p++] = l < 3 ? 63 : 61;
        memset(rd + p, 'b', rd[p - 1]);
        p += rd[p - 1];
    }
    rd[p++] = 0;
    fake_init(&f, "d.test", DNS_T_MX);
    fake_add(&f, rd, p);
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_EQUAL(strlen(ans->rr[0].host), 63 * 3 + 61 + 3);
}

static void test_at_txt_tlsa(void)
{
    struct fake f;
    static const unsigned char txt[] = { 7, 'v', '=', 's', 'p', 'f', '1', ' ', 4, '-', 'a', 'l', 'l' };
    static const unsigned char badtxt[] = { 9, 'a', 'b' };
    static const unsigned char tlsa[] = { 3, 1, 1, 0xde, 0xad, 0xbe, 0xef };

    fake_init(&f, "t.test", DNS_T_TXT);
    fake_add(&f, txt, sizeof txt);
    run(&f, DNS_T_TXT);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_EQUAL(ans->rr[0].len, 11);
    CU_ASSERT(memcmp(ans->rr[0].data, "v=spf1 -all", 11) == 0);

    fake_init(&f, "t.test", DNS_T_TXT);
    fake_add(&f, badtxt, sizeof badtxt);
    run(&f, DNS_T_TXT);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);

    fake_init(&f, "_25._tcp.mx.test", DNS_T_TLSA);
    fake_add(&f, tlsa, sizeof tlsa);
    run(&f, DNS_T_TLSA);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_EQUAL(ans->rr[0].usage, 3);
    CU_ASSERT_EQUAL(ans->rr[0].selector, 1);
    CU_ASSERT_EQUAL(ans->rr[0].mtype, 1);
    CU_ASSERT_EQUAL(ans->rr[0].len, 4);
    CU_ASSERT(memcmp(ans->rr[0].data, "\xde\xad\xbe\xef", 4) == 0);
    fake_init(&f, "_25._tcp.mx.test", DNS_T_TLSA);
    fake_add(&f, tlsa, 2);
    run(&f, DNS_T_TLSA);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
}

static void test_at_status(void)
{
    struct fake f;

    fake_init(&f, "n.test", DNS_T_MX);
    f.r.rcode = 3;
    f.r.nxdomain = 1;
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_NXDOMAIN);

    fake_init(&f, "n.test", DNS_T_MX);
    f.r.rcode = 2;
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans->text, "SERVFAIL"));

    fake_init(&f, "n.test", DNS_T_MX);
    f.r.rcode = 5;
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);

    fake_init(&f, "n.test", DNS_T_MX);
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_NODATA);

    /* bogus: temporary whatever the rcode says, and says why */
    fake_init(&f, "n.test", DNS_T_MX);
    f.r.bogus = 1;
    f.r.rcode = 3;
    f.r.why_bogus = (char *)"signature expired\nX";
    run(&f, DNS_T_MX);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
    CU_ASSERT_EQUAL(ans->security, DNS_BOGUS);
    CU_ASSERT_PTR_NOT_NULL(strstr(ans->text, "signature expired"));
    CU_ASSERT_PTR_NULL(strchr(ans->text, '\n'));

    /* a libunbound error, or no result at all */
    str_copy(ans->name, "n.test", sizeof ans->name);
    answer_from_ub(UB_SERVFAIL, NULL, DNS_T_A, ans);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
    answer_from_ub(0, NULL, DNS_T_A, ans);
    CU_ASSERT_EQUAL(ans->status, DNS_TEMPFAIL);
}

static void test_at_canon(void)
{
    struct fake f;
    unsigned char v4[4] = { 192, 0, 2, 9 };

    fake_init(&f, "alias.test", DNS_T_A);
    f.r.canonname = (char *)"Real.Test.";
    fake_add(&f, v4, 4);
    run(&f, DNS_T_A);
    CU_ASSERT_EQUAL(ans->status, DNS_OK);
    CU_ASSERT_STRING_EQUAL(ans->canon, "real.test");
    fake_init(&f, "alias.test", DNS_T_A);
    f.r.canonname = (char *)"bad name!";
    fake_add(&f, v4, 4);
    run(&f, DNS_T_A);
    CU_ASSERT_STRING_EQUAL(ans->canon, "");
}

void suite_resolver_answer(void)
{
    CU_pSuite s = CU_add_suite("resolver_answer", at_setup, at_teardown);

    if (!s)
        return;
    CU_add_test(s, "A and AAAA, lengths checked", test_at_addresses);
    CU_add_test(s, "MX names, null MX, malformed names", test_at_mx);
    CU_add_test(s, "MX name over 253 characters", test_at_long_name);
    CU_add_test(s, "TXT joined, TLSA fields", test_at_txt_tlsa);
    CU_add_test(s, "NXDOMAIN, SERVFAIL, REFUSED, NODATA, bogus, errors", test_at_status);
    CU_add_test(s, "canonical name after CNAMEs", test_at_canon);
}
