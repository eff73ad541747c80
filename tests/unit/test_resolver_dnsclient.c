/*
 * test_resolver_dnsclient.c - CUnit suite for common/dnsclient.c: DNS name
 * rules, requests and answers round-trip through the frame format, and
 * hostile frames (bad names and addresses, values out of range,
 * inconsistent answers, truncated fields) are refused as a whole.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "dnsclient.h"
#include "proto.h"
#include "suites.h"
#include "util.h"

static struct dns_answer *da, *db;
static struct dns_hops *ha, *hb;

static int dc_setup(void)
{
    da = calloc(1, sizeof *da);
    db = calloc(1, sizeof *db);
    ha = calloc(1, sizeof *ha);
    hb = calloc(1, sizeof *hb);
    return da && db && ha && hb ? 0 : -1;
}

static int dc_teardown(void)
{
    free(da);
    free(db);
    free(ha);
    free(hb);
    return 0;
}

static struct ipc_msg dc_msg(const struct ipc_out *m)
{
    struct ipc_msg msg;
    const unsigned char *p = (const unsigned char *)buf_head(&m->b);

    memset(&msg, 0, sizeof msg);
    msg.type = (uint16_t)(p[4] | p[5] << 8);
    msg.reqid = (uint32_t)(p[12] | p[13] << 8 | p[14] << 16 | (uint32_t)p[15] << 24);
    msg.body = p + IPC_HDR_LEN;
    msg.len = m->b.len - IPC_HDR_LEN;
    msg.fd = -1;
    return msg;
}

static void test_dc_names(void)
{
    char out[DNS_NAME_MAX + 1], big[400];

    CU_ASSERT_EQUAL(dns_name_normalize("Mail.Example.COM.", 17, out), 0);
    CU_ASSERT_STRING_EQUAL(out, "mail.example.com");
    CU_ASSERT_EQUAL(dns_name_normalize("_25._tcp.mx.test", 16, out), 0);
    CU_ASSERT_EQUAL(dns_name_normalize("localhost", 9, out), 0);
    CU_ASSERT_EQUAL(dns_name_normalize("", 0, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize(".", 1, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("a..b", 4, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize(".a", 2, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("a.b..", 5, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("a b", 3, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("a\0b", 3, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("a/b", 3, out), -1);
    CU_ASSERT_EQUAL(dns_name_normalize("\xc3\xa4.test", 7, out), -1);
    memset(big, 'a', 63);
    CU_ASSERT_EQUAL(dns_name_normalize(big, 63, out), 0);
    memset(big, 'a', 64);
    CU_ASSERT_EQUAL(dns_name_normalize(big, 64, out), -1);
    /* 253 characters fit, 254 do not */
    for (int i = 0; i < 300; i++)
        big[i] = (i % 50 == 49) ? '.' : 'b';
    CU_ASSERT_EQUAL(dns_name_normalize(big, 253, out), 0);
    CU_ASSERT_EQUAL(strlen(out), 253);
    CU_ASSERT_EQUAL(dns_name_normalize(big, 254, out), -1);
}

static void test_dc_requests(void)
{
    struct ipc_out m;
    struct ipc_msg msg;
    char name[DNS_NAME_MAX + 1], why[128];
    uint16_t type = 0;

    CU_ASSERT_FATAL(dnsc_lookup_request(&m, 42, "MX.Example.Test.", DNS_T_AAAA) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(msg.type, R_LOOKUP);
    CU_ASSERT_EQUAL(msg.reqid, 42);
    CU_ASSERT(proto_limit(R_LOOKUP) >= msg.len);
    CU_ASSERT_EQUAL(dnsc_parse_lookup(&msg, name, &type, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(name, "mx.example.test");
    CU_ASSERT_EQUAL(type, DNS_T_AAAA);
    CU_ASSERT_EQUAL(dnsc_parse_nexthops(&msg, name, why, sizeof why), -1);
    ipc_out_free(&m);

    CU_ASSERT_FATAL(dnsc_nexthops_request(&m, 7, "example.test") == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_parse_nexthops(&msg, name, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(name, "example.test");
    ipc_out_free(&m);

    CU_ASSERT_EQUAL(dnsc_lookup_request(&m, 1, "bad name", DNS_T_A), -1);
    CU_ASSERT_EQUAL(dnsc_lookup_request(&m, 1, "ok.test", 255), -1);
    CU_ASSERT_EQUAL(dnsc_nexthops_request(&m, 1, NULL), -1);

    /* hand-made hostile requests */
    ipc_out_begin(&m, R_LOOKUP, 1);
    ipc_out_str(&m, T_DNS_NAME, "x.test");
    ipc_out_str(&m, T_DNS_TYPE, "MX");          /* wrong field size */
    ipc_out_finish(&m);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_parse_lookup(&msg, name, &type, why, sizeof why), -1);
    ipc_out_free(&m);
    ipc_out_begin(&m, R_NEXTHOPS, 1);
    ipc_out_str(&m, T_DNS_NAME, "x.test");
    ipc_out_str(&m, T_DNS_NAME, "y.test");      /* repeated */
    ipc_out_finish(&m);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_parse_nexthops(&msg, name, why, sizeof why), -1);
    ipc_out_free(&m);
    ipc_out_begin(&m, R_NEXTHOPS, 1);
    ipc_out_bytes(&m, T_DNS_NAME, "x\0.test", 7);   /* NUL inside */
    ipc_out_finish(&m);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_parse_nexthops(&msg, name, why, sizeof why), -1);
    msg.len -= 2;                                   /* field runs past the body */
    CU_ASSERT_EQUAL(dnsc_parse_nexthops(&msg, name, why, sizeof why), -1);
    ipc_out_free(&m);
}

static void test_dc_answer_roundtrip(void)
{
    static const uint16_t types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA, DNS_T_TXT, DNS_T_TLSA };
    struct ipc_out m;
    struct ipc_msg msg;
    char why[128];

    for (size_t t = 0; t < ARRAY_LEN(types); t++) {
        memset(da, 0, sizeof *da);
        da->type = types[t];
        da->status = DNS_OK;
        da->security = DNS_SECURE;
        da->ttl = 3600;
        str_copy(da->name, "q.test", sizeof da->name);
        str_copy(da->canon, "c.test", sizeof da->canon);
        da->nrr = 2;
        for (size_t i = 0; i < 2; i++) {
            struct dns_rr *rr = &da->rr[i];
            rr->pref = (uint16_t)(10 * (i + 1));
            str_copy(rr->host, i ? "." : "mx.q.test", sizeof rr->host);
            str_copy(rr->addr, types[t] == DNS_T_A ? "192.0.2.1" : "2001:db8::1", sizeof rr->addr);
            rr->usage = 3;
            rr->selector = 1;
            rr->mtype = (uint8_t)i;
            rr->data = dns_answer_keep(da, "abc\0def", 7);
            rr->len = 7;
        }
        CU_ASSERT_FATAL(dnsc_answer_encode(&m, 9, da) == 0);
        msg = dc_msg(&m);
        CU_ASSERT(proto_limit(R_ANSWER) >= msg.len);
        CU_ASSERT_EQUAL_FATAL(dnsc_answer_parse(&msg, db, why, sizeof why), 0);
        CU_ASSERT_EQUAL(db->type, types[t]);
        CU_ASSERT_EQUAL(db->status, DNS_OK);
        CU_ASSERT_EQUAL(db->security, DNS_SECURE);
        CU_ASSERT_EQUAL(db->ttl, 3600);
        CU_ASSERT_STRING_EQUAL(db->canon, "c.test");
        CU_ASSERT_EQUAL(db->nrr, 2);
        switch (types[t]) {
        case DNS_T_MX:
            CU_ASSERT_EQUAL(db->rr[1].pref, 20);
            CU_ASSERT_STRING_EQUAL(db->rr[0].host, "mx.q.test");
            CU_ASSERT_STRING_EQUAL(db->rr[1].host, ".");
            break;
        case DNS_T_A:
        case DNS_T_AAAA:
            CU_ASSERT_STRING_EQUAL(db->rr[1].addr, da->rr[1].addr);
            break;
        case DNS_T_TLSA:
            CU_ASSERT_EQUAL(db->rr[1].usage, 3);
            CU_ASSERT_EQUAL(db->rr[1].mtype, 1);
            /* fall through */
        default:
            CU_ASSERT_EQUAL(db->rr[1].len, 7);
            CU_ASSERT(memcmp(db->rr[1].data, "abc\0def", 7) == 0);
        }
        ipc_out_free(&m);
    }
}

/* Encodes da after mutate() and expects the parse to fail. */
static void dc_expect_refused(void (*mutate)(struct ipc_out *))
{
    struct ipc_out m;
    struct ipc_msg msg;
    char why[128] = "";

    ipc_out_begin(&m, R_ANSWER, 1);
    mutate(&m);
    ipc_out_finish(&m);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_answer_parse(&msg, db, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "malformed resolver answer");
    ipc_out_free(&m);
}

static void base_a(struct ipc_out *m)
{
    ipc_out_str(m, T_DNS_NAME, "q.test");
    ipc_out_u64(m, T_DNS_TYPE, DNS_T_A);
}

static void rr_addr(struct ipc_out *m, const char *addr)
{
    struct ipc_out in;

    ipc_body_begin(&in);
    ipc_out_str(&in, T_DNS_ADDR, addr);
    ipc_out_nested(m, T_DNS_RR, &in);
    ipc_out_free(&in);
}

static void mut_v6_in_a(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_OK);
    rr_addr(m, "2001:db8::1");
}

static void mut_bad_addr(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_OK);
    rr_addr(m, "192.0.2.1; rm -rf /");
}

static void mut_status_range(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, 99);
}

static void mut_ok_without_rr(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_OK);
}

static void mut_nx_with_rr(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_NXDOMAIN);
    rr_addr(m, "192.0.2.1");
}

static void mut_no_type(struct ipc_out *m)
{
    ipc_out_str(m, T_DNS_NAME, "q.test");
    ipc_out_u64(m, T_DNS_STATUS, DNS_NODATA);
}

static void mut_too_many(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_OK);
    for (int i = 0; i < DNS_MAX_RR + 1; i++)
        rr_addr(m, "192.0.2.1");
}

static void mut_security_range(struct ipc_out *m)
{
    base_a(m);
    ipc_out_u64(m, T_DNS_STATUS, DNS_NODATA);
    ipc_out_u64(m, T_DNS_SECURITY, 3);
}

static void mut_bad_name(struct ipc_out *m)
{
    ipc_out_str(m, T_DNS_NAME, "q..test");
    ipc_out_u64(m, T_DNS_TYPE, DNS_T_A);
    ipc_out_u64(m, T_DNS_STATUS, DNS_NODATA);
}

static void test_dc_answer_hostile(void)
{
    struct ipc_out m;
    struct ipc_msg msg;
    char why[128];

    dc_expect_refused(mut_v6_in_a);
    dc_expect_refused(mut_bad_addr);
    dc_expect_refused(mut_status_range);
    dc_expect_refused(mut_ok_without_rr);
    dc_expect_refused(mut_nx_with_rr);
    dc_expect_refused(mut_no_type);
    dc_expect_refused(mut_too_many);
    dc_expect_refused(mut_security_range);
    dc_expect_refused(mut_bad_name);

    /* R_ERROR: its text, as the reason */
    dnsc_error_encode(&m, 3, "501 5.5.4", "bad or repeated name");
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_answer_parse(&msg, db, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "resolver: bad or repeated name");
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(hb->text, "resolver: bad or repeated name");
    ipc_out_free(&m);
}

static void test_dc_hops(void)
{
    struct ipc_out m;
    struct ipc_msg msg;
    char why[128];

    memset(ha, 0, sizeof *ha);
    str_copy(ha->domain, "d.test", sizeof ha->domain);
    ha->status = DNS_OK;
    ha->security = DNS_SECURE;
    ha->nhop = 2;
    str_copy(ha->hop[0].host, "mx1.d.test", sizeof ha->hop[0].host);
    ha->hop[0].pref = 10;
    ha->hop[0].status = DNS_OK;
    ha->hop[0].security = DNS_SECURE;
    ha->hop[0].naddr = 2;
    str_copy(ha->hop[0].addr[0], "2001:db8::1", DNS_ADDR_MAX);
    str_copy(ha->hop[0].addr[1], "192.0.2.1", DNS_ADDR_MAX);
    str_copy(ha->hop[1].host, "mx2.d.test", sizeof ha->hop[1].host);
    ha->hop[1].pref = 20;
    ha->hop[1].status = DNS_TEMPFAIL;
    CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(msg.type, R_HOPS);
    CU_ASSERT_EQUAL_FATAL(dnsc_hops_parse(&msg, hb, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(hb->domain, "d.test");
    CU_ASSERT_EQUAL(hb->status, DNS_OK);
    CU_ASSERT_EQUAL(hb->security, DNS_SECURE);
    CU_ASSERT_EQUAL(hb->nhop, 2);
    CU_ASSERT_EQUAL(hb->hop[0].naddr, 2);
    CU_ASSERT_STRING_EQUAL(hb->hop[0].addr[1], "192.0.2.1");
    CU_ASSERT_EQUAL(hb->hop[1].pref, 20);
    CU_ASSERT_EQUAL(hb->hop[1].status, DNS_TEMPFAIL);
    CU_ASSERT_EQUAL(hb->hop[1].naddr, 0);
    ipc_out_free(&m);

    /* a permanent failure must carry a 5.x.x code, a temporary one no 5 */
    memset(ha, 0, sizeof *ha);
    str_copy(ha->domain, "d.test", sizeof ha->domain);
    ha->status = DNS_PERMFAIL;
    str_copy(ha->dsn, "5.1.10", sizeof ha->dsn);
    CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(hb->dsn, "5.1.10");
    ipc_out_free(&m);
    const char *bad_dsn[] = { "4.4.3", "", "5.1", "5.1.10x", "6.1.1", "5.1.1000" };
    for (size_t i = 0; i < ARRAY_LEN(bad_dsn); i++) {
        str_copy(ha->dsn, bad_dsn[i], sizeof ha->dsn);
        CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
        msg = dc_msg(&m);
        CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
        ipc_out_free(&m);
    }
    ha->status = DNS_TEMPFAIL;
    str_copy(ha->dsn, "5.1.2", sizeof ha->dsn);
    CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
    ipc_out_free(&m);
    /* OK without a hop, NXDOMAIN as an overall status: refused */
    ha->status = DNS_OK;
    ha->dsn[0] = 0;
    CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
    ipc_out_free(&m);
    ha->status = DNS_NXDOMAIN;
    CU_ASSERT_FATAL(dnsc_hops_encode(&m, 5, ha) == 0);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
    ipc_out_free(&m);

    /* a hop with an address that is not one */
    ipc_out_begin(&m, R_HOPS, 1);
    ipc_out_str(&m, T_DNS_NAME, "d.test");
    ipc_out_u64(&m, T_DNS_STATUS, DNS_OK);
    {
        struct ipc_out in;
        ipc_body_begin(&in);
        ipc_out_str(&in, T_DNS_HOST, "mx.d.test");
        ipc_out_u64(&in, T_DNS_STATUS, DNS_OK);
        ipc_out_str(&in, T_DNS_ADDR, "999.1.1.1");
        ipc_out_nested(&m, T_DNS_HOP, &in);
        ipc_out_free(&in);
    }
    ipc_out_finish(&m);
    msg = dc_msg(&m);
    CU_ASSERT_EQUAL(dnsc_hops_parse(&msg, hb, why, sizeof why), -1);
    ipc_out_free(&m);
}

static void test_dc_sockaddr(void)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;

    CU_ASSERT_EQUAL(dnsc_sockaddr("2001:db8::1", 25, &ss, &len), AF_INET6);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in6));
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 25);
    CU_ASSERT_EQUAL(dnsc_sockaddr("192.0.2.1", 2525, &ss, &len), AF_INET);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2525);
    CU_ASSERT_EQUAL(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0xc0000201));
    CU_ASSERT_EQUAL(dnsc_sockaddr("mx.test", 25, &ss, &len), -1);
    CU_ASSERT_EQUAL(dnsc_sockaddr("192.0.2.1", 70000, &ss, &len), -1);
}

void suite_resolver_dnsclient(void)
{
    CU_pSuite s = CU_add_suite("resolver_dnsclient", dc_setup, dc_teardown);

    if (!s)
        return;
    CU_add_test(s, "DNS name rules", test_dc_names);
    CU_add_test(s, "requests round trip, hostile requests refused", test_dc_requests);
    CU_add_test(s, "answers of every type round trip", test_dc_answer_roundtrip);
    CU_add_test(s, "hostile answers refused, R_ERROR text", test_dc_answer_hostile);
    CU_add_test(s, "next hops round trip and consistency", test_dc_hops);
    CU_add_test(s, "hop address to socket address", test_dc_sockaddr);
}
