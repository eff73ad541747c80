/*
 * test_agent.c - CUnit suite for the deliver process's pure parts:
 * deliver/route.c (destination forms, MX iteration decisions, the 5.6.7
 * bounce, result flags), deliver/job.c (D_JOB validation, D_RESULT
 * building, the descriptor check), deliver/authfile.c (the credentials
 * file: parsing and its ownership/mode checks) and deliver/conncache.c's
 * keys.
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authfile.h"
#include "conncache.h"
#include "ipc.h"
#include "job.h"
#include "proto.h"
#include "qrecord.h"
#include "route.h"
#include "suites.h"

static void test_route_parse(void)
{
    struct route r;

    CU_ASSERT_EQUAL(route_parse("Example.ORG", "", 25, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.host, "example.org");
    CU_ASSERT_EQUAL(r.port, 25);
    CU_ASSERT(!r.no_mx && !r.relay && !r.literal);

    CU_ASSERT_EQUAL(route_parse("[relay.example]:2525", "[relay.example]:2525", 25, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.host, "relay.example");
    CU_ASSERT_EQUAL(r.port, 2525);
    CU_ASSERT(r.no_mx && r.relay && !r.literal);

    CU_ASSERT_EQUAL(route_parse("[192.0.2.7]", "[192.0.2.7]", 587, &r), 0);
    CU_ASSERT(r.no_mx && r.literal && r.relay);
    CU_ASSERT_EQUAL(r.port, 587);
    CU_ASSERT_EQUAL(route_parse("[2001:db8::1]:26", "", 25, &r), 0);
    CU_ASSERT(r.literal);
    CU_ASSERT_EQUAL(r.port, 26);

    CU_ASSERT_EQUAL(route_parse("smart.example:26", "smart.example:26", 25, &r), 0);
    CU_ASSERT(!r.no_mx && r.relay);
    CU_ASSERT_EQUAL(r.port, 26);

    const char *bad[] = { "", "[", "[]", "[x]y", "a..b", "host:", "host:0", "host:65536",
                          "host:2x", "[1.2.3.4]:99999", "bad host", "-x.example:25x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(route_parse(bad[i], "", 25, &r), -1);
}

static void test_mx_iteration(void)
{
    struct mxiter it;

    /* connection failures on each host: next, next, finish; unreachable */
    mx_init(&it, 3);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 0, 0), MX_NEXT);
    CU_ASSERT_EQUAL(it.hop, 1);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 0, 0), MX_NEXT);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 0, 0), MX_FINISH);
    CU_ASSERT_EQUAL(mx_flags(&it), D_F_DEST_UNREACHABLE);

    /* TLS fails: the next host first; done there */
    mx_init(&it, 2);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_TLS_FAILED, 1, 1), MX_NEXT);
    CU_ASSERT_EQUAL(it.hop, 1);
    CU_ASSERT(!it.plain);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_DONE, 1, 1), MX_FINISH);
    CU_ASSERT_EQUAL(mx_flags(&it), D_F_DEST_REACHED);

    /* TLS fails on hosts 0 and 2, host 1 refuses: then 0 and 2 in plain
     * text, in order, and the end */
    mx_init(&it, 3);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_TLS_FAILED, 1, 1), MX_NEXT);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 0, 0), MX_NEXT);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_TLS_FAILED, 1, 1), MX_RETRY_PLAIN);
    CU_ASSERT_EQUAL(it.hop, 0);
    CU_ASSERT(it.plain);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 1, 0), MX_RETRY_PLAIN);
    CU_ASSERT_EQUAL(it.hop, 2);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 1, 0), MX_FINISH);

    /* the only host fails TLS: plain text there, once */
    mx_init(&it, 1);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_TLS_FAILED, 1, 1), MX_RETRY_PLAIN);
    CU_ASSERT_EQUAL(it.hop, 0);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_TLS_FAILED, 1, 1), MX_FINISH);

    /* a 421 greeting (connected, not greeted) then done */
    mx_init(&it, 2);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 1, 0), MX_NEXT);
    CU_ASSERT_EQUAL(mx_flags(&it), 0);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_FAILED, 1, 1), MX_FINISH);

    /* FAILED (e.g. lost after the dot) never tries another host */
    mx_init(&it, 3);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_FAILED, 1, 1), MX_FINISH);
    CU_ASSERT_EQUAL(it.hop, 0);
}

static void test_mx_smtputf8_bounce(void)
{
    struct mxiter it;
    struct smtpc_rcpt rc[2];
    struct smtpc_msg m;

    memset(&m, 0, sizeof m);
    memset(rc, 0, sizeof rc);
    m.rcpt = rc;
    m.nrcpt = 2;
    rc[0].status = SMTPC_DEFERRED;
    strcpy(rc[0].dsn, "4.6.7");
    rc[1].status = SMTPC_DEFERRED;
    strcpy(rc[1].dsn, "4.6.7");

    /* no SMTPUTF8 on the first, the second down: deferred stays */
    mx_init(&it, 2);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NO_SMTPUTF8, 1, 1), MX_NEXT);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NEXT_MX, 0, 0), MX_FINISH);
    mx_finish(&it, &m);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_DEFERRED);

    /* the last host lacks it too: bounced 5.6.7 */
    mx_init(&it, 2);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NO_SMTPUTF8, 1, 1), MX_NEXT);
    CU_ASSERT_EQUAL(mx_after(&it, SMTPC_NO_SMTPUTF8, 1, 1), MX_FINISH);
    mx_finish(&it, &m);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_BOUNCED);
    CU_ASSERT_STRING_EQUAL(rc[0].dsn, "5.6.7");
    CU_ASSERT_EQUAL(rc[1].status, SMTPC_BOUNCED);
}

/* ---------------------------------------------------------------- jobs */

struct jspec {
    int no_qid, no_id, bad_addr, dup_index, norcpt, bad_flags;
    uint64_t size;
};

static void build_job(struct ipc_out *o, const struct jspec *sp)
{
    ipc_out_begin(o, D_JOB, 7);
    if (!sp->no_id)
        ipc_out_u64(o, T_D_JOB, 42);
    if (!sp->no_qid)
        ipc_out_str(o, T_QID, "0123456789AB");
    ipc_out_str(o, T_D_DEST, "example.org");
    ipc_out_str(o, T_SENDER, "");
    ipc_out_str(o, T_ENVID, "env1");
    ipc_out_u64(o, T_RET, RET_HDRS);
    ipc_out_u64(o, T_BODY, BODY_8BITMIME);
    ipc_out_u64(o, T_FLAGS, sp->bad_flags ? 0x100 : 0);
    ipc_out_u64(o, T_ARRIVAL, 1700000000);
    ipc_out_u64(o, T_SIZE, sp->size ? sp->size : 100);
    ipc_out_u64(o, T_D_DISPATCH, 1700000001000ull);
    for (int i = 0; i < (sp->norcpt ? 0 : 2); i++) {
        struct ipc_out r;
        ipc_body_begin(&r);
        ipc_out_u64(&r, T_R_INDEX, sp->dup_index ? 3 : (uint64_t)(3 + i));
        ipc_out_str(&r, T_R_ADDR, sp->bad_addr && i ? "no address" : i ? "b@example.org" : "a@example.org");
        ipc_out_u64(&r, T_R_NOTIFY, NOTIFY_SUCCESS | NOTIFY_FAILURE);
        if (i == 0)
            ipc_out_str(&r, T_R_ORCPT, "rfc822;A@example.org");
        ipc_out_nested(o, T_RCPT, &r);
        ipc_out_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(ipc_out_finish(o), 0);
}

static int parse_spec(const struct jspec *sp, struct job *j, int *has_id)
{
    struct ipc_out o;
    struct ipc_msg m;
    char why[256];
    int r;

    build_job(&o, sp);
    memset(&m, 0, sizeof m);
    m.type = D_JOB;
    m.body = (const unsigned char *)o.b.data + o.b.off + IPC_HDR_LEN;
    m.len = o.b.len - IPC_HDR_LEN;
    m.fd = -1;
    r = job_parse(&m, j, has_id, why, sizeof why);
    ipc_out_free(&o);
    return r;
}

static void test_job_parse(void)
{
    struct jspec sp;
    struct job j;
    int has_id;

    memset(&sp, 0, sizeof sp);
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), 0);
    CU_ASSERT(has_id);
    CU_ASSERT_EQUAL(j.id, 42);
    CU_ASSERT_STRING_EQUAL(j.qid, "0123456789AB");
    CU_ASSERT_EQUAL(j.nrcpt, 2);
    CU_ASSERT_EQUAL(j.jr[1].index, 4);
    CU_ASSERT_STRING_EQUAL(j.jr[0].notify, "SUCCESS,FAILURE");
    CU_ASSERT_STRING_EQUAL(j.jr[0].orcpt, "rfc822;A@example.org");
    job_bind(&j, 5);
    CU_ASSERT_EQUAL(j.msg.fd, 5);
    CU_ASSERT(j.msg.body_8bit);
    CU_ASSERT_STRING_EQUAL(j.msg.ret, "HDRS");
    CU_ASSERT_STRING_EQUAL(j.msg.envid, "env1");
    CU_ASSERT_PTR_EQUAL(j.msg.rcpt[1].addr, j.jr[1].addr);
    job_free(&j);

    sp.no_qid = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    CU_ASSERT(!has_id);
    job_free(&j);
    memset(&sp, 0, sizeof sp);
    sp.no_id = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    CU_ASSERT(!has_id);
    job_free(&j);
    memset(&sp, 0, sizeof sp);
    sp.bad_addr = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    CU_ASSERT(has_id);
    CU_ASSERT_EQUAL(j.nrcpt, 1);    /* the valid one can still be answered */
    job_free(&j);
    memset(&sp, 0, sizeof sp);
    sp.dup_index = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    job_free(&j);
    memset(&sp, 0, sizeof sp);
    sp.norcpt = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    job_free(&j);
    memset(&sp, 0, sizeof sp);
    sp.bad_flags = 1;
    CU_ASSERT_EQUAL(parse_spec(&sp, &j, &has_id), -1);
    job_free(&j);

    /* truncated bodies: refused, never read past the end */
    {
        struct ipc_out o;
        struct ipc_msg m;
        char why[128];
        memset(&sp, 0, sizeof sp);
        build_job(&o, &sp);
        size_t full = o.b.len - IPC_HDR_LEN;
        for (size_t cut = 1; cut < full; cut += 7) {
            memset(&m, 0, sizeof m);
            m.type = D_JOB;
            m.len = full - cut;
            unsigned char *copy = malloc(m.len ? m.len : 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
            memcpy(copy, (const unsigned char *)o.b.data + o.b.off + IPC_HDR_LEN, m.len);
            m.body = copy;
            int r = job_parse(&m, &j, &has_id, why, sizeof why);
            CU_ASSERT(r == -1 || r == 0);
            job_free(&j);
            free(copy);
        }
        ipc_out_free(&o);
    }
}

static void test_job_result(void)
{
    struct jspec sp;
    struct job j;
    struct ipc_out o;
    struct ipc_iter it;
    struct ipc_field f;
    int has_id, nr = 0;
    uint64_t v;

    memset(&sp, 0, sizeof sp);
    CU_ASSERT_EQUAL_FATAL(parse_spec(&sp, &j, &has_id), 0);
    job_bind(&j, -1);
    j.rc[0].status = SMTPC_SENT;
    strcpy(j.rc[0].dsn, "2.0.0");
    strcpy(j.rc[0].reply, "250 ok");
    j.rc[1].status = SMTPC_BOUNCED;
    strcpy(j.rc[1].dsn, "5.1.1");
    strcpy(j.rc[1].reply, "550 5.1.1 no such user");
    CU_ASSERT_EQUAL_FATAL(job_result_encode(&j, D_F_DEST_REACHED, &o), 0);
    CU_ASSERT_EQUAL(((const unsigned char *)o.b.data + o.b.off)[4], D_RESULT);
    ipc_iter_init(&it, (const unsigned char *)o.b.data + o.b.off + IPC_HDR_LEN, o.b.len - IPC_HDR_LEN);
    while (ipc_iter_next(&it, &f) == 1) {
        if (f.tag == T_D_FLAGS) {
            CU_ASSERT(ipc_field_u64(&f, &v) == 0 && v == D_F_DEST_REACHED);
        } else if (f.tag == T_D_JOB) {
            CU_ASSERT(ipc_field_u64(&f, &v) == 0 && v == 42);
        } else if (f.tag == T_RCPT) {
            struct ipc_iter it2;
            struct ipc_field g;
            uint64_t idx = 99, st = 99;
            char dsn[16] = "";
            ipc_iter_init(&it2, f.val, f.len);
            while (ipc_iter_next(&it2, &g) == 1) {
                if (g.tag == T_R_INDEX)
                    ipc_field_u64(&g, &idx);
                else if (g.tag == T_R_STATUS)
                    ipc_field_u64(&g, &st);
                else if (g.tag == T_R_DSN)
                    ipc_field_str(&g, dsn, sizeof dsn);
            }
            if (nr == 0) {
                CU_ASSERT(idx == 3 && st == RCPT_SENT);
                CU_ASSERT_STRING_EQUAL(dsn, "2.0.0");
            } else {
                CU_ASSERT(idx == 4 && st == RCPT_BOUNCED);
                CU_ASSERT_STRING_EQUAL(dsn, "5.1.1");
            }
            nr++;
        }
    }
    CU_ASSERT_EQUAL(nr, 2);
    CU_ASSERT_EQUAL(job_status_code(SMTPC_PENDING), RCPT_DEFERRED);
    ipc_out_free(&o);
    job_fail_all(&j, SMTPC_DEFERRED, "4.4.3", "resolver not available");
    CU_ASSERT(j.rc[1].status == SMTPC_DEFERRED && !strcmp(j.rc[1].dsn, "4.4.3"));
    job_free(&j);
}

static void test_job_fd(void)
{
    char path[] = "/tmp/test_agent.XXXXXX", why[128];
    int w = mkstemp(path), r;

    CU_ASSERT_FATAL(w >= 0);
    CU_ASSERT_EQUAL(write(w, "0123456789", 10), 10);
    r = open(path, O_RDONLY);
    CU_ASSERT_EQUAL(job_check_fd(r, 10, why, sizeof why), 0);
    CU_ASSERT_EQUAL(job_check_fd(r, 11, why, sizeof why), -1);      /* shorter than SIZE */
    CU_ASSERT_EQUAL(job_check_fd(w, 10, why, sizeof why), -1);      /* writable */
    CU_ASSERT(strstr(why, "read-only") != NULL);
    CU_ASSERT_EQUAL(job_check_fd(-1, 10, why, sizeof why), -1);
    {
        int d = open("/tmp", O_RDONLY | O_DIRECTORY);
        CU_ASSERT_EQUAL(job_check_fd(d, 0, why, sizeof why), -1);  /* not a regular file */
        close(d);
    }
    close(r);
    close(w);
    unlink(path);
}

/* ---------------------------------------------------------------- auth file */

static void test_authfile_parse(void)
{
    const char *t = "# comment\n\n  other.example bob:x\nrelay.example alice:s3cret pass\r\n";
    struct auth_cred c;
    char err[256];

    CU_ASSERT_EQUAL(authfile_parse(t, strlen(t), "RELAY.example", &c, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(c.user, "alice");
    CU_ASSERT_STRING_EQUAL(c.pass, "s3cret pass");
    CU_ASSERT_EQUAL(authfile_parse(t, strlen(t), "none.example", &c, err, sizeof err), 0);
    const char *bad[] = { "relay.example alice\n", "relay.example :pw\n", "relay.example\n",
                          "relay.example alice:\n", "relay.example a:b\x01x\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(authfile_parse(bad[i], strlen(bad[i]), "relay.example", &c, err, sizeof err), -1);
        CU_ASSERT(strstr(err, "line 1") != NULL);
    }
    /* an error never quotes the password */
    const char *t2 = "relay.example alice:topsecret\x02\n";
    CU_ASSERT_EQUAL(authfile_parse(t2, strlen(t2), "relay.example", &c, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "topsecret") == NULL);
}

static void test_authfile_load(void)
{
    char path[] = "/tmp/test_authfile.XXXXXX", err[512];
    struct auth_cred c;
    int fd = mkstemp(path);
    const char *t = "relay.example alice:pw\n";

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    CU_ASSERT_EQUAL(chmod(path, 0600), 0);
    CU_ASSERT_EQUAL(authfile_load(path, getuid(), "relay.example", &c, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(c.pass, "pw");
    CU_ASSERT_EQUAL(chmod(path, 0640), 0);
    CU_ASSERT_EQUAL(authfile_load(path, getuid(), "relay.example", &c, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "chmod 600") != NULL);
    CU_ASSERT_EQUAL(chmod(path, 0400), 0);
    if (getuid() == 0) {
        /* owned by someone who is neither root nor the deliver account */
        CU_ASSERT_EQUAL(chown(path, 64999, 64999), 0);
        CU_ASSERT_EQUAL(authfile_load(path, 64004, "relay.example", &c, err, sizeof err), -1);
        CU_ASSERT(strstr(err, "owned by uid 64999") != NULL);
        CU_ASSERT_EQUAL(authfile_load(path, 64999, "relay.example", &c, err, sizeof err), 1);
    }
    unlink(path);
    CU_ASSERT_EQUAL(authfile_load(path, getuid(), "relay.example", &c, err, sizeof err), -1);
}

static void test_cc_key(void)
{
    char a[CC_KEY_MAX], b[CC_KEY_MAX];

    cc_key(a, sizeof a, "192.0.2.1", 25, 1, 0);
    cc_key(b, sizeof b, "192.0.2.1", 25, 1, 0);
    CU_ASSERT_STRING_EQUAL(a, b);
    cc_key(b, sizeof b, "192.0.2.1", 25, 0, 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);   /* TLS state */
    cc_key(b, sizeof b, "192.0.2.1", 587, 1, 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);   /* port */
    cc_key(b, sizeof b, "192.0.2.10", 25, 1, 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);   /* address, not a prefix match */
    cc_key(b, sizeof b, "192.0.2.1", 25, 1, 1);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);   /* an authenticated session is another kind */
    cc_key(a, sizeof a, "2001:db8::1", 25, 0, 0);
    CU_ASSERT(strlen(a) < CC_KEY_MAX - 1);
}

static void add(const char *name, CU_TestFunc fn, CU_pSuite s)
{
    CU_add_test(s, name, fn);
}

void suite_agent(void)
{
    CU_pSuite s = CU_add_suite("agent", NULL, NULL);

    add("route: destination forms", test_route_parse, s);
    add("route: MX iteration decisions and flags", test_mx_iteration, s);
    add("route: SMTPUTF8 bounce after the last host", test_mx_smtputf8_bounce, s);
    add("job: D_JOB validation", test_job_parse, s);
    add("job: D_RESULT building", test_job_result, s);
    add("job: the spool descriptor check", test_job_fd, s);
    add("authfile: parsing", test_authfile_parse, s);
    add("authfile: owner and mode", test_authfile_load, s);
    add("conncache: keys", test_cc_key, s);
}
