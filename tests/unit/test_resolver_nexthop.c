/*
 * test_resolver_nexthop.c - CUnit suite for resolver/nexthop.c, without
 * DNS: preference order, equal preferences shuffled (every order reachable,
 * none favoured much), duplicates, null MX (RFC 7505), loops back to this
 * host, the hop limit, and the verdict once addresses are known.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "../../resolver/nexthop.h"
#include "suites.h"
#include "util.h"

static size_t nh_set(struct nh_mx *mx, const char *spec)
{
    /* "10 a.test, 20 b.test" */
    size_t n = 0;
    const char *p = spec;

    while (*p) {
        unsigned pref;
        char host[DNS_NAME_MAX + 1];
        int used = 0;
        if (sscanf(p, " %u %253[^,]%n", &pref, host, &used) != 2)
            break;
        mx[n].pref = (uint16_t)pref;
        str_copy(mx[n].host, host, sizeof mx[n].host);
        n++;
        p += used;
        if (*p == ',')
            p++;
    }
    return n;
}

static uint32_t nh_first(uint32_t n, void *arg)
{
    (void)n;
    (void)arg;
    return 0;
}

static void test_nh_sorted(void)
{
    struct nh_mx mx[8];
    size_t n = nh_set(mx, "30 c.test, 10 a.test, 20 b.test, 65535 z.test, 0 zero.test"), kept;

    CU_ASSERT_EQUAL(nexthop_order(mx, n, "self.test", nh_first, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 5);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "zero.test");
    CU_ASSERT_STRING_EQUAL(mx[1].host, "a.test");
    CU_ASSERT_STRING_EQUAL(mx[2].host, "b.test");
    CU_ASSERT_STRING_EQUAL(mx[3].host, "c.test");
    CU_ASSERT_STRING_EQUAL(mx[4].host, "z.test");
    CU_ASSERT_EQUAL(mx[4].pref, 65535);
}

static void test_nh_shuffled(void)
{
    /* 3 hosts of equal preference behind a better one: all 6 orders occur,
     * each roughly a sixth of the time; the better one always leads. */
    unsigned count[6] = { 0 };
    const char *orders[6] = { "abc", "acb", "bac", "bca", "cab", "cba" };
    int bad_first = 0;

    for (int i = 0; i < 6000; i++) {
        struct nh_mx mx[4];
        size_t n = nh_set(mx, "10 a, 10 b, 10 c, 5 first"), kept;
        char ord[4];
        nexthop_order(mx, n, NULL, NULL, NULL, &kept);
        if (kept != 4 || strcmp(mx[0].host, "first") != 0) {
            bad_first++;
            continue;
        }
        for (int k = 0; k < 3; k++)
            ord[k] = mx[k + 1].host[0];
        ord[3] = 0;
        for (int k = 0; k < 6; k++)
            if (strcmp(ord, orders[k]) == 0)
                count[k]++;
    }
    CU_ASSERT_EQUAL(bad_first, 0);
    for (int k = 0; k < 6; k++) {
        CU_ASSERT(count[k] > 800);
        CU_ASSERT(count[k] < 1200);
    }
}

static void test_nh_duplicates(void)
{
    struct nh_mx mx[8];
    size_t n = nh_set(mx, "20 a.test, 10 b.test, 5 a.test, 10 b.test"), kept;

    CU_ASSERT_EQUAL(nexthop_order(mx, n, NULL, nh_first, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 2);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "a.test");
    CU_ASSERT_EQUAL(mx[0].pref, 5);
    CU_ASSERT_STRING_EQUAL(mx[1].host, "b.test");
}

static void test_nh_null_mx(void)
{
    struct nh_mx mx[4];
    size_t n, kept = 99;

    n = nh_set(mx, "0 .");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, NULL, NULL, NULL, &kept), NH_NULLMX);
    CU_ASSERT_EQUAL(kept, 0);
    n = nh_set(mx, "10 ., 20 .");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, NULL, NULL, NULL, &kept), NH_NULLMX);
    /* "." beside a real host (a misconfiguration): the real host is used */
    n = nh_set(mx, "0 ., 10 real.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, NULL, NULL, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 1);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "real.test");
}

static void test_nh_loops(void)
{
    struct nh_mx mx[8];
    size_t n, kept;

    n = nh_set(mx, "10 me.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, "me.test", NULL, NULL, &kept), NH_LOOP);
    /* hosts not better than this one are dropped, better ones stay */
    n = nh_set(mx, "30 worse.test, 20 me.test, 20 same.test, 10 better.test, 5 best.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, "me.test", nh_first, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 2);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "best.test");
    CU_ASSERT_STRING_EQUAL(mx[1].host, "better.test");
    /* this host listed twice: its best entry counts */
    n = nh_set(mx, "50 me.test, 10 a.test, 5 me.test, 1 b.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, "me.test", nh_first, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 1);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "b.test");
    /* this host as the best MX: everything is a loop */
    n = nh_set(mx, "10 me.test, 20 backup.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, "me.test", NULL, NULL, &kept), NH_LOOP);
    /* not listed: nothing dropped; no self: nothing dropped */
    n = nh_set(mx, "10 a.test, 20 b.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, "me.test", NULL, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 2);
    n = nh_set(mx, "10 me.test");
    CU_ASSERT_EQUAL(nexthop_order(mx, n, NULL, NULL, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 1);
}

static void test_nh_limit(void)
{
    struct nh_mx mx[40];
    size_t kept;

    for (int i = 0; i < 40; i++) {
        mx[i].pref = (uint16_t)(40 - i);
        snprintf(mx[i].host, sizeof mx[i].host, "h%d.test", 40 - i);
    }
    CU_ASSERT_EQUAL(nexthop_order(mx, 40, NULL, NULL, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, DNS_MAX_HOPS);
    CU_ASSERT_STRING_EQUAL(mx[0].host, "h1.test");
    CU_ASSERT_EQUAL(mx[DNS_MAX_HOPS - 1].pref, DNS_MAX_HOPS);
    CU_ASSERT_EQUAL(nexthop_order(mx, 0, NULL, NULL, NULL, &kept), NH_USE);
    CU_ASSERT_EQUAL(kept, 0);
}

static void nh_hops(struct dns_hops *h, size_t n, const enum dns_status *st, int implicit)
{
    memset(h, 0, sizeof *h);
    str_copy(h->domain, "d.test", sizeof h->domain);
    h->nhop = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(h->hop[i].host, sizeof h->hop[i].host, "mx%zu.d.test", i);
        h->hop[i].implicit = implicit;
        h->hop[i].status = st[i];
        if (st[i] == DNS_OK) {
            h->hop[i].naddr = 1;
            str_copy(h->hop[i].addr[0], "192.0.2.1", DNS_ADDR_MAX);
        }
    }
}

static void test_nh_verdict(void)
{
    struct dns_hops h;
    enum dns_status some[] = { DNS_NXDOMAIN, DNS_OK };
    enum dns_status temp[] = { DNS_NXDOMAIN, DNS_TEMPFAIL, DNS_NODATA };
    enum dns_status none[] = { DNS_NXDOMAIN, DNS_NODATA };

    nh_hops(&h, 2, some, 0);
    nexthop_verdict(&h);
    CU_ASSERT_EQUAL(h.status, DNS_OK);
    CU_ASSERT_STRING_EQUAL(h.dsn, "");
    /* one temporary failure among missing addresses: defer, never bounce */
    nh_hops(&h, 3, temp, 0);
    nexthop_verdict(&h);
    CU_ASSERT_EQUAL(h.status, DNS_TEMPFAIL);
    CU_ASSERT_EQUAL(h.dsn[0], '4');
    nh_hops(&h, 2, none, 0);
    nexthop_verdict(&h);
    CU_ASSERT_EQUAL(h.status, DNS_PERMFAIL);
    CU_ASSERT_STRING_EQUAL(h.dsn, "5.4.4");
    nh_hops(&h, 1, none, 1);
    nexthop_verdict(&h);
    CU_ASSERT_EQUAL(h.status, DNS_PERMFAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.text, "no MX and no address"));
    /* nothing to try at all is not a reason to bounce */
    nh_hops(&h, 0, none, 0);
    nexthop_verdict(&h);
    CU_ASSERT_EQUAL(h.status, DNS_TEMPFAIL);
    /* an answer that already failed is left alone */
    nh_hops(&h, 0, none, 0);
    h.status = DNS_PERMFAIL;
    str_copy(h.dsn, "5.1.10", sizeof h.dsn);
    nexthop_verdict(&h);
    CU_ASSERT_STRING_EQUAL(h.dsn, "5.1.10");
}

void suite_resolver_nexthop(void)
{
    CU_pSuite s = CU_add_suite("resolver_nexthop", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "preference order", test_nh_sorted);
    CU_add_test(s, "equal preferences shuffled evenly", test_nh_shuffled);
    CU_add_test(s, "duplicate hosts keep their best preference", test_nh_duplicates);
    CU_add_test(s, "null MX", test_nh_null_mx);
    CU_add_test(s, "loops back to this host", test_nh_loops);
    CU_add_test(s, "hop limit", test_nh_limit);
    CU_add_test(s, "verdict from the addresses", test_nh_verdict);
}
