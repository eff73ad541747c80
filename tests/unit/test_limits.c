/*
 * test_limits.c - CUnit suite for smtpd/limits.c (the bounded tables
 * behind the per-IP and per-user limits: a fixed size under any number of
 * IPs, entries with open connections never evicted, expiry of idle
 * entries, rate windows, keys) and smtpd/policy.c (relay verdicts for
 * outside, relay_networks and authenticated clients, every classic relay
 * trick).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "../../smtpd/limits.h"
#include "../../smtpd/policy.h"
#include "addr.h"
#include "config.h"

static void ip4(uint32_t a, unsigned char key[LIM_KEY_LEN])
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(a);
    lim_key_ip((struct sockaddr *)&sin, key);
}

static void test_bounded_under_many_ips(void)
{
    struct lim_table t;
    unsigned char k[LIM_KEY_LEN];

    CU_ASSERT_EQUAL_FATAL(lim_table_init(&t, 64, 60000), 0);
    for (uint32_t i = 0; i < 100000; i++) {
        ip4(0x0a000000u + i, k);
        struct lim_entry *e = lim_get(&t, k, 1000 + i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        lim_rate(e, LIM_W_CONN, 60000, 1000 + i);
        CU_ASSERT(t.used <= 64);
    }
    CU_ASSERT_EQUAL(t.used, 64);
    CU_ASSERT_EQUAL(t.evictions, 100000 - 64);
    /* the most recent are there, the oldest were reused */
    ip4(0x0a000000u + 99999, k);
    CU_ASSERT_PTR_NOT_NULL(lim_find(&t, k));
    ip4(0x0a000000u + 99999 - 63, k);
    CU_ASSERT_PTR_NOT_NULL(lim_find(&t, k));
    ip4(0x0a000000u + 99999 - 64, k);
    CU_ASSERT_PTR_NULL(lim_find(&t, k));
    ip4(0x0a000000u, k);
    CU_ASSERT_PTR_NULL(lim_find(&t, k));
    lim_table_free(&t);
}

static void test_active_never_evicted(void)
{
    struct lim_table t;
    unsigned char k[LIM_KEY_LEN];
    struct lim_entry *held[10];

    CU_ASSERT_EQUAL_FATAL(lim_table_init(&t, 16, 60000), 0);
    for (uint32_t i = 0; i < 10; i++) {
        ip4(0xc0000200u + i, k);
        held[i] = lim_get(&t, k, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(held[i]);
        lim_acquire(&t, held[i], 1);
        if (i == 3)
            lim_acquire(&t, held[i], 1);
    }
    for (uint32_t i = 0; i < 10000; i++) {
        ip4(0x0a000000u + i, k);
        CU_ASSERT_PTR_NOT_NULL(lim_get(&t, k, 2 + i));
    }
    for (uint32_t i = 0; i < 10; i++) {
        ip4(0xc0000200u + i, k);
        CU_ASSERT_PTR_EQUAL(lim_find(&t, k), held[i]);
        CU_ASSERT_EQUAL(held[i]->active, i == 3 ? 2u : 1u);
    }
    /* all 16 hold connections: no entry for a 17th IP, and no eviction */
    for (uint32_t i = 10; i < 16; i++) {
        ip4(0xc0000200u + i, k);
        struct lim_entry *e = lim_get(&t, k, 50000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        lim_acquire(&t, e, 50000);
    }
    ip4(0xc0000300u, k);
    CU_ASSERT_PTR_NULL(lim_get(&t, k, 50001));
    CU_ASSERT_EQUAL(t.used, 16);
    /* released entries become reusable */
    lim_release(&t, held[0], 50002);
    CU_ASSERT_PTR_NOT_NULL(lim_get(&t, k, 50003));
    ip4(0xc0000200u, k);
    CU_ASSERT_PTR_NULL(lim_find(&t, k));
    /* a release past zero changes nothing */
    lim_release(&t, held[1], 50004);
    lim_release(&t, held[1], 50004);
    CU_ASSERT_EQUAL(held[1]->active, 0);
    lim_table_free(&t);
}

static void test_expiry(void)
{
    struct lim_table t;
    unsigned char k[LIM_KEY_LEN];
    struct lim_entry *busy;

    CU_ASSERT_EQUAL_FATAL(lim_table_init(&t, 1000, 60000), 0);
    for (uint32_t i = 0; i < 500; i++) {
        ip4(0x0a000000u + i, k);
        CU_ASSERT_PTR_NOT_NULL(lim_get(&t, k, 1000 + i));
    }
    ip4(0x0b000000u, k);
    busy = lim_get(&t, k, 1000);
    lim_acquire(&t, busy, 1000);
    CU_ASSERT_EQUAL(lim_expire(&t, 1000 + 59999), 0);
    /* the first 100 are 60 s old at 61100 */
    CU_ASSERT_EQUAL(lim_expire(&t, 61100), 101);
    CU_ASSERT_EQUAL(t.used, 400);
    /* touching an entry keeps it */
    ip4(0x0a000000u + 200, k);
    CU_ASSERT_PTR_NOT_NULL(lim_get(&t, k, 100000));
    CU_ASSERT_EQUAL(lim_expire(&t, 150000), 398);
    CU_ASSERT_EQUAL(t.used, 2);
    CU_ASSERT_EQUAL(lim_expire(&t, 160001), 1);     /* entry 200, touched at 100000 */
    /* the busy entry stays however old */
    CU_ASSERT_EQUAL(lim_expire(&t, 1u << 30), 0);
    ip4(0x0b000000u, k);
    CU_ASSERT_PTR_EQUAL(lim_find(&t, k), busy);
    lim_release(&t, busy, 1u << 30);
    CU_ASSERT_EQUAL(lim_expire(&t, (1u << 30) + 60000), 1);
    CU_ASSERT_EQUAL(t.used, 0);
    /* and the table still works after all that */
    for (uint32_t i = 0; i < 2000; i++) {
        ip4(0x0c000000u + i, k);
        CU_ASSERT_PTR_NOT_NULL(lim_get(&t, k, 2000000));
    }
    CU_ASSERT_EQUAL(t.used, 1000);
    lim_table_free(&t);
}

static void test_rate_window(void)
{
    struct lim_table t;
    unsigned char k[LIM_KEY_LEN];
    struct lim_entry *e;

    CU_ASSERT_EQUAL_FATAL(lim_table_init(&t, 16, 60000), 0);
    lim_key_user("alice@example.org", k);
    e = lim_get(&t, k, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    for (unsigned i = 1; i <= 5; i++)
        CU_ASSERT_EQUAL(lim_rate(e, LIM_W_MSG, 60000, 10000 + i), i);
    CU_ASSERT_EQUAL(lim_rate(e, LIM_W_RCPT, 60000, 20000), 1);
    CU_ASSERT_EQUAL(lim_rate(e, LIM_W_MSG, 60000, 70000), 6);      /* window began at 10001 */
    CU_ASSERT_EQUAL(lim_rate(e, LIM_W_MSG, 60000, 70001), 1);      /* a new window */
    CU_ASSERT_EQUAL(lim_rate(e, LIM_W_RCPT, 60000, 70001), 2);     /* its own window, from 20000 */
    CU_ASSERT_EQUAL(lim_rate(e, LIM_W_RCPT, 60000, 80000), 1);
    CU_ASSERT_EQUAL(lim_rate(e, 7, 60000, 80000), 0);
    lim_table_free(&t);
}

static void test_keys(void)
{
    unsigned char a[LIM_KEY_LEN], b[LIM_KEY_LEN], u[LIM_KEY_LEN], v[LIM_KEY_LEN];
    struct sockaddr_in6 s6;

    ip4(0xc0000201u, a);
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &s6.sin6_addr);
    lim_key_ip((struct sockaddr *)&s6, b);
    CU_ASSERT_EQUAL(memcmp(a, b, LIM_KEY_LEN), 0);
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    lim_key_ip((struct sockaddr *)&s6, b);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, LIM_KEY_LEN), 0);
    lim_key_user("alice@example.org", u);
    lim_key_user("Alice@example.org", v);
    CU_ASSERT_NOT_EQUAL(memcmp(u, v, LIM_KEY_LEN), 0);
    CU_ASSERT(u[0] & 0x80);
    CU_ASSERT_NOT_EQUAL(u[0], 4);
    CU_ASSERT_NOT_EQUAL(u[0], 6);
}

/* ---- policy */

static struct config pcfg;

static int policy_init(void)
{
    char path[] = "/tmp/postern-limits-test.XXXXXX", err[512];
    const char *text = "hostname = mx.example.org\nlocal_domains = example.org, localhost\n"
                       "relay_networks = 10.0.0.0/8\nlisten_smtp = 192.0.2.25:25\n"
                       "listen_submission =\nlisten_smtps =\nlocal_address_literals = 198.51.100.7\n";
    int fd = mkstemp(path), r;

    if (fd < 0)
        return -1;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    config_defaults(&pcfg);
    r = config_load(&pcfg, path, err, sizeof(err));
    unlink(path);
    if (r < 0)
        fprintf(stderr, "policy test config: %s\n", err);
    return r < 0 ? -1 : 0;
}

static int policy_done(void)
{
    config_free(&pcfg);
    return 0;
}

static enum policy_verdict verdict(const char *path, int trusted, char *rewritten)
{
    struct addr a;
    size_t end;
    enum policy_verdict v;

    if (addr_parse_path(path, strlen(path), ADDR_ALLOW_POSTMASTER, &a, &end) != ADDR_OK)
        return (enum policy_verdict)-1;
    v = policy_rcpt(&pcfg, trusted, -1, &a);
    if (rewritten)
        strcpy(rewritten, a.mailbox);
    return v;
}

static void test_policy_outside(void)
{
    static const char *const denied[] = {
        "<victim@remote.example>", "<VICTIM@REMOTE.EXAMPLE>",
        "<victim%remote.example@example.org>", "<VICTIM%REMOTE.EXAMPLE@EXAMPLE.ORG>",
        "<remote.example!victim@example.org>", "<REMOTE.EXAMPLE!VICTIM@EXAMPLE.ORG>",
        "<\"victim@remote.example\"@example.org>", "<\"victim%remote.example\"@localhost>",
        "<@example.org:victim@remote.example>", "<@EXAMPLE.ORG,@localhost:VICTIM@REMOTE.EXAMPLE>",
        "<victim@[127.0.0.1]>", "<victim@[127.1.2.3]>", "<victim@[192.0.2.25]>", "<victim@[0.0.0.0]>",
        "<victim@[IPv6:::1]>", "<victim@[IPv6:::ffff:127.0.0.1]>", "<victim@[192.0.2.99]>",
        "<victim@example.org.remote.example>", "<victim%remote.example@[198.51.100.7]>",
    };
    char m[300];

    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        enum policy_verdict v = verdict(denied[i], 0, NULL);
        if (v != POLICY_DENIED)
            fprintf(stderr, "\n%s from outside: verdict %d\n", denied[i], (int)v);
        CU_ASSERT_EQUAL(v, POLICY_DENIED);
    }
    /* trailing dots never parse */
    CU_ASSERT_EQUAL(verdict("<victim@example.org.>", 0, NULL), (enum policy_verdict)-1);
    CU_ASSERT_EQUAL(verdict("<victim@remote.example.>", 1, NULL), (enum policy_verdict)-1);
    /* local mail is open to all */
    CU_ASSERT_EQUAL(verdict("<user@example.org>", 0, NULL), POLICY_LOCAL);
    CU_ASSERT_EQUAL(verdict("<USER@EXAMPLE.ORG>", 0, NULL), POLICY_LOCAL);
    CU_ASSERT_EQUAL(verdict("<user+tag@localhost>", 0, NULL), POLICY_LOCAL);
    CU_ASSERT_EQUAL(verdict("<Postmaster>", 0, NULL), POLICY_LOCAL);
    CU_ASSERT_EQUAL(verdict("<@remote.example:user@example.org>", 0, NULL), POLICY_LOCAL);
    /* the configured literal is local, as the first local domain */
    CU_ASSERT_EQUAL(verdict("<user@[198.51.100.7]>", 0, m), POLICY_LOCAL);
    CU_ASSERT_STRING_EQUAL(m, "user@example.org");
}

static void test_policy_trusted(void)
{
    struct sockaddr_in in;
    char m[300];

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
    CU_ASSERT_TRUE(policy_trusted(&pcfg, (struct sockaddr *)&in, NULL));
    inet_pton(AF_INET, "192.0.2.77", &in.sin_addr);
    CU_ASSERT_FALSE(policy_trusted(&pcfg, (struct sockaddr *)&in, NULL));
    CU_ASSERT_TRUE(policy_trusted(&pcfg, (struct sockaddr *)&in, "alice@example.org"));

    /* the same remote addresses, from a relay or authenticated client */
    CU_ASSERT_EQUAL(verdict("<victim@remote.example>", 1, NULL), POLICY_REMOTE);
    CU_ASSERT_EQUAL(verdict("<VICTIM@REMOTE.EXAMPLE>", 1, NULL), POLICY_REMOTE);
    CU_ASSERT_EQUAL(verdict("<@example.org:victim@remote.example>", 1, m), POLICY_REMOTE);
    CU_ASSERT_STRING_EQUAL(m, "victim@remote.example");
    CU_ASSERT_EQUAL(verdict("<victim@[192.0.2.99]>", 1, NULL), POLICY_REMOTE);
    /* routing inside a local part is never routed: an unknown local user */
    CU_ASSERT_EQUAL(verdict("<victim%remote.example@example.org>", 1, NULL), POLICY_LOCAL);
    CU_ASSERT_EQUAL(verdict("<\"victim@remote.example\"@example.org>", 1, NULL), POLICY_LOCAL);
    /* this host's own literals would loop */
    CU_ASSERT_EQUAL(verdict("<victim@[127.0.0.1]>", 1, NULL), POLICY_LOOP);
    CU_ASSERT_EQUAL(verdict("<victim@[192.0.2.25]>", 1, NULL), POLICY_LOOP);
    CU_ASSERT_EQUAL(verdict("<victim@[IPv6:::1]>", 1, NULL), POLICY_LOOP);
    CU_ASSERT_EQUAL(verdict("<user@[198.51.100.7]>", 1, m), POLICY_LOCAL);
    CU_ASSERT_STRING_EQUAL(m, "user@example.org");
}

void suite_limits(void)
{
    CU_pSuite s = CU_add_suite("limits", NULL, NULL);
    CU_add_test(s, "table bounded under 100,000 IPs", test_bounded_under_many_ips);
    CU_add_test(s, "entries with connections never evicted", test_active_never_evicted);
    CU_add_test(s, "idle entries expire", test_expiry);
    CU_add_test(s, "rate windows", test_rate_window);
    CU_add_test(s, "keys", test_keys);
    s = CU_add_suite("relay policy", policy_init, policy_done);
    CU_add_test(s, "outside client: every relay trick denied", test_policy_outside);
    CU_add_test(s, "relay_networks and authenticated clients", test_policy_trusted);
}
