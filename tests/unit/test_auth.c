/*
 * test_auth.c - CUnit suite for SMTP AUTH's pure parts: strict base64 and
 * the PLAIN split (smtpd/sasl.c), the A_CHECK / A_RESULT frames
 * (common/authproto.c), the crypt wrapper against hashes of the formats
 * mkpasswd and doveadm write (auth/verify.c), the failure throttle
 * (auth/failures.c, with a fake clock), the auth map and the owner
 * look-up of the sender binding (common/maps.c, mapdb.c, auth/passwd.c),
 * and the submission header fix-ups (smtpd/subfix.c).
 */
#include <CUnit/CUnit.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../auth/passwd.h"
#include "../../auth/failures.h"
#include "../../auth/verify.h"
#include "../../smtpd/sasl.h"
#include "../../smtpd/subfix.h"
#include "addr.h"
#include "authproto.h"
#include "config.h"
#include "ipc.h"
#include "mapdb.h"
#include "maps.h"
#include "proto.h"
#include "suites.h"

static void test_b64(void)
{
    char out[64];
    size_t n;

    CU_ASSERT(sasl_b64_decode("am9obg==", 8, out, sizeof(out), &n) == 0 && n == 4 && !strcmp(out, "john"));
    CU_ASSERT(sasl_b64_decode("am9objE=", 8, out, sizeof(out), &n) == 0 && n == 5 && !strcmp(out, "john1"));
    CU_ASSERT(sasl_b64_decode("am9objEy", 8, out, sizeof(out), &n) == 0 && n == 6);
    CU_ASSERT(sasl_b64_decode("=", 1, out, sizeof(out), &n) == 0 && n == 0);
    CU_ASSERT(sasl_b64_decode("", 0, out, sizeof(out), &n) == 0 && n == 0);
    /* not a multiple of 4, padding inside, bad characters, whitespace */
    CU_ASSERT(sasl_b64_decode("am9ob", 5, out, sizeof(out), &n) == -1);
    CU_ASSERT(sasl_b64_decode("am=obg==", 8, out, sizeof(out), &n) == -1);
    CU_ASSERT(sasl_b64_decode("am9o b==", 8, out, sizeof(out), &n) == -1);
    CU_ASSERT(sasl_b64_decode("am9o\nbg=", 8, out, sizeof(out), &n) == -1);
    CU_ASSERT(sasl_b64_decode("am9o*g==", 8, out, sizeof(out), &n) == -1);
    CU_ASSERT(sasl_b64_decode("a===", 4, out, sizeof(out), &n) == -1);
    /* output too small */
    CU_ASSERT(sasl_b64_decode("am9objEy", 8, out, 6, &n) == -1);
    sasl_b64_encode("Username:", 9, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "VXNlcm5hbWU6");
}

static void test_plain_split(void)
{
    const char *u, *p;
    size_t ul, pl;

    CU_ASSERT(sasl_plain_split("\0john@x\0secret", 14, &u, &ul, &p, &pl) == 0);
    CU_ASSERT(ul == 6 && !memcmp(u, "john@x", 6) && pl == 6 && !memcmp(p, "secret", 6));
    CU_ASSERT(sasl_plain_split("john@x\0john@x\0pw", 16, &u, &ul, &p, &pl) == 0);
    /* another authorisation identity, empty user or password, a third NUL, one NUL */
    CU_ASSERT(sasl_plain_split("boss@x\0john@x\0pw", 16, &u, &ul, &p, &pl) == -1);
    CU_ASSERT(sasl_plain_split("\0\0pw", 4, &u, &ul, &p, &pl) == -1);
    CU_ASSERT(sasl_plain_split("\0john\0", 6, &u, &ul, &p, &pl) == -1);
    CU_ASSERT(sasl_plain_split("\0jo\0hn\0pw", 9, &u, &ul, &p, &pl) == -1);
    CU_ASSERT(sasl_plain_split("john\0pw", 7, &u, &ul, &p, &pl) == -1);
    CU_ASSERT(sasl_name_ok("john@x", 6));
    CU_ASSERT(!sasl_name_ok("jo\nhn", 5));
    CU_ASSERT(!sasl_name_ok("jo\0hn", 5));
    CU_ASSERT(!sasl_name_ok("jo\thn", 5));
    CU_ASSERT(!sasl_name_ok("", 0));
    CU_ASSERT(sasl_mech_named("plain") == SASL_PLAIN && sasl_mech_named("LOGIN") == SASL_LOGIN);
    CU_ASSERT(sasl_mech_named("CRAM-MD5") == SASL_NONE);
}

/* A frame as the reader would hand it over. */
static int as_msg(struct ipc_out *o, struct ipc_msg *m)
{
    if (ipc_out_finish(o) < 0 && o->failed)
        return -1;
    m->type = (uint16_t)(((const unsigned char *)o->b.data)[4] | ((const unsigned char *)o->b.data)[5] << 8);
    m->flags = 0;
    m->reqid = 7;
    m->body = (const unsigned char *)o->b.data + IPC_HDR_LEN;
    m->len = o->b.len - IPC_HDR_LEN;
    m->fd = -1;
    return 0;
}

/* authp_parse_check of an A_CHECK built field by field: the user (and a
 * second user field when user2), the password when pass, the client. */
static int parse_fields(const char *user, const char *user2, const char *pass, size_t plen)
{
    struct ipc_out o;
    struct ipc_msg m;
    struct auth_check c;
    int r;

    ipc_out_begin(&o, A_CHECK, 7);
    ipc_out_str(&o, T_A_USER, user);
    if (user2)
        ipc_out_str(&o, T_A_USER, user2);
    if (pass)
        ipc_out_bytes(&o, T_A_PASS, pass, plen);
    ipc_out_str(&o, T_A_CLIENT, "192.0.2.1");
    r = as_msg(&o, &m) == 0 ? authp_parse_check(&m, &c) : -2;
    ipc_out_free(&o);
    return r;
}

static void test_frames(void)
{
    struct ipc_out o;
    struct ipc_msg m;
    struct auth_check c;
    struct auth_result r, in = { .status = AUTH_FAIL, .delay_ms = 250 };

    CU_ASSERT_FATAL(authp_build_check(&o, 7, "john@x", "pa ss", 5, "192.0.2.1") == 0);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(m.type == A_CHECK);
    CU_ASSERT(authp_parse_check(&m, &c) == 0);
    CU_ASSERT_STRING_EQUAL(c.user, "john@x");
    CU_ASSERT(c.passlen == 5 && !memcmp(c.pass, "pa ss", 5));
    CU_ASSERT_STRING_EQUAL(c.client, "192.0.2.1");
    ipc_out_free(&o);
    /* refused at build: a newline in the user, a NUL in the password */
    CU_ASSERT(authp_build_check(&o, 7, "jo\nhn", "pw", 2, "192.0.2.1") == -1);
    ipc_out_free(&o);
    CU_ASSERT(authp_build_check(&o, 7, "john", "p\0w", 3, "192.0.2.1") == -1);
    ipc_out_free(&o);
    /* refused at parse: a missing password, a user field twice, a NUL in the password */
    CU_ASSERT(parse_fields("john", NULL, NULL, 0) == -1);
    CU_ASSERT(parse_fields("john", "mary", "x", 1) == -1);
    CU_ASSERT(parse_fields("john", NULL, "x\0y", 3) == -1);
    CU_ASSERT(parse_fields("john", NULL, "x", 1) == 0);
    /* results */
    CU_ASSERT_FATAL(authp_build_result(&o, 7, &in) == 0);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(authp_parse_result(&m, &r) == 0 && r.status == AUTH_FAIL && r.delay_ms == 250);
    ipc_out_free(&o);
    in.status = AUTH_OK; /* OK without the user is malformed */
    CU_ASSERT_FATAL(authp_build_result(&o, 7, &in) == 0);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(authp_parse_result(&m, &r) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, A_RESULT, 7);
    ipc_out_u64(&o, T_A_STATUS, 9);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(authp_parse_result(&m, &r) == -1);
    ipc_out_free(&o);
    CU_ASSERT(proto_limit(A_CHECK) > AUTH_PASS_MAX + AUTH_USER_MAX && proto_limit(A_RESULT) > 0);
}

static void test_verify(void)
{
    /* made by: mkpasswd -m yescrypt / -m sha512crypt, doveadm pw -s
     * SHA512-CRYPT / BLF-CRYPT, all of "secret" */
    static const char *const good[] = {
        "$y$j9T$/TIlqP2yZoMCUSIwQUiv4.$devYfzWf.KCPei2xFxRaf.SxYBewC1NPqTSPUzFtwk0", /* "dummy" */
        NULL,
    };
    char h[256];
    struct crypt_data cd;
    const char *salts[] = { "$6$saltsaltsalt$", "$y$j9T$abcdefghijklmnopqrstu.", "$2b$05$abcdefghijklmnopqrstuu" };

    CU_ASSERT(verify_password(good[0], "dummy", 5) == 1);
    CU_ASSERT(verify_password(good[0], "dummz", 5) == 0);
    CU_ASSERT(verify_password("{SHA512-CRYPT}$6$odSkkoG28LYnT2ss$jIfNaC01cqyjqZFsDGWgBcx/NKS2SCSvnm.ezX94T.kFnw3hC"
                              "Oc4qZ9ZnqjaKgMSKohvE4tk/tqmePTHX19lj.", "secret", 6) == 1);
    CU_ASSERT(verify_password("{BLF-CRYPT}$2y$05$hXkG5sH2zfowI67.aB5qXOnCxFZLnhqzuUUgnVX5sVyCvLroc2N46", "secret", 6) == 1);
    CU_ASSERT(verify_password("{BLF-CRYPT}$2y$05$hXkG5sH2zfowI67.aB5qXOnCxFZLnhqzuUUgnVX5sVyCvLroc2N46", "secreT", 6) == 0);
    for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
        memset(&cd, 0, sizeof(cd));
        const char *out = crypt_rn("pass word", salts[i], &cd, sizeof(cd));
        CU_ASSERT_FATAL(out && out[0] == '$');
        snprintf(h, sizeof(h), "%s", out);
        CU_ASSERT(verify_password(h, "pass word", 9) == 1);
        CU_ASSERT(verify_password(h, "pass word ", 10) == 0);
        CU_ASSERT(verify_password(h, "pass", 4) == 0);
    }
    /* {CRYPT} prefix, case of the scheme */
    snprintf(h, sizeof(h), "{crypt}%s", good[0]);
    CU_ASSERT(verify_password(h, "dummy", 5) == 1);
    /* schemes and forms that are not crypt or are weak: never match */
    CU_ASSERT(verify_password("{PLAIN}dummy", "dummy", 5) == 0);
    CU_ASSERT(verify_password("dummy", "dummy", 5) == 0);
    CU_ASSERT(verify_password("abJnggxhB/yWI", "dummy", 5) == 0);           /* DES */
    CU_ASSERT(verify_password("$1$abc$DbeOT3aIwPA0bRPT8ra0X1", "dummy", 5) == 0); /* MD5-crypt */
    CU_ASSERT(verify_password("{SHA512-CRYPT", "dummy", 5) == 0);
    CU_ASSERT(verify_password("$6$", "", 0) == 0);
    CU_ASSERT(verify_password(good[0], "du\0my", 5) == 0);
    CU_ASSERT(verify_crypt_part("{SSHA}abc") == NULL);
    CU_ASSERT(verify_crypt_part("{YESCRYPT}$y$x") != NULL);
}

static void test_throttle(void)
{
    struct failure_limits l = { .delay_ms = 100, .ip_limit = 3, .user_limit = 4, .block_ms = 60000, .max_entries = 64 };
    struct failures *t = failures_new(&l);
    uint64_t now = 1000000;

    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT(failures_blocked(t, "10.0.0.1", "john@x", now) == 0);
    CU_ASSERT(failures_failure(t, "10.0.0.1", "john@x", now) == 100);
    CU_ASSERT(failures_failure(t, "10.0.0.1", "john@x", now) == 200);
    CU_ASSERT(failures_blocked(t, "10.0.0.1", "mary@x", now) == 0);
    CU_ASSERT(failures_failure(t, "10.0.0.1", "mary@x", now) == 400);
    /* the address is blocked for everyone, the users elsewhere are not */
    CU_ASSERT(failures_blocked(t, "10.0.0.1", "mary@x", now) == 1);
    CU_ASSERT(failures_blocked(t, "10.0.0.1", "bob@x", now) == 1);
    CU_ASSERT(failures_blocked(t, "10.0.0.2", "john@x", now) == 0);
    /* john's fourth failure, from another address: john is over his limit,
     * blocked from the addresses that failed for him, not from a clean one */
    CU_ASSERT(failures_failure(t, "10.0.0.2", "john@x", now) == 400); /* john's third */
    CU_ASSERT(failures_blocked(t, "10.0.0.2", "john@x", now) == 0);
    CU_ASSERT(failures_failure(t, "10.0.0.2", "john@x", now) == 800); /* his fourth: his limit */
    CU_ASSERT(failures_blocked(t, "10.0.0.2", "john@x", now) == 1);
    CU_ASSERT(failures_blocked(t, "10.0.0.3", "john@x", now) == 0);
    CU_ASSERT(failures_blocked(t, "10.0.0.2", "mary@x", now) == 0);
    /* the delay stops doubling at 8 times */
    for (int i = 0; i < 10; i++)
        failures_failure(t, "10.0.0.9", "other@x", now);
    CU_ASSERT(failures_failure(t, "10.0.0.9", "other@x", now) == 800);
    /* everything is forgotten after block_ms */
    now += 60001;
    CU_ASSERT(failures_blocked(t, "10.0.0.1", "mary@x", now) == 0);
    CU_ASSERT(failures_blocked(t, "10.0.0.2", "john@x", now) == 0);
    CU_ASSERT(failures_failure(t, "10.0.0.1", "mary@x", now) == 100);
    failures_sweep(t, now + 60001);
    CU_ASSERT(failures_entries(t) == 0);
    /* a success forgives that pair only */
    l.user_limit = 2;
    failures_set_limits(t, &l);
    failures_failure(t, "10.0.0.5", "ann@x", now);
    failures_failure(t, "10.0.0.5", "ann@x", now);
    CU_ASSERT(failures_blocked(t, "10.0.0.5", "ann@x", now) == 1);
    failures_success(t, "10.0.0.5", "ann@x", now);
    CU_ASSERT(failures_blocked(t, "10.0.0.5", "ann@x", now) == 0);
    /* bounded: past max_entries new keys are not tracked, nothing breaks */
    for (int i = 0; i < 200; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
        failures_failure(t, ip, "flood@x", now);
    }
    CU_ASSERT(failures_entries(t) <= 64);
    failures_free(t);
}

static int owned_by_john(void *arg, const struct addr *a)
{
    (void)arg;
    return !strcmp(a->mailbox, "john@x") || !strcmp(a->mailbox, "johnny@x");
}

/* Feeds a message's lines; returns what was added, "" for nothing. */
static const char *fix(const char *msg, int check, const char **refusal)
{
    static char added[2048];
    static char reply[600];
    struct subfix f;
    const char *p = msg;

    added[0] = 0;
    subfix_start(&f, "mx.example", "QID1", check ? owned_by_john : NULL, NULL);
    while (*p) {
        const char *e = strstr(p, "\r\n");
        size_t len = e ? (size_t)(e - p) + 2 : strlen(p);
        char add[SUBFIX_ADD_MAX];
        size_t n = subfix_line(&f, p, len, add);
        if (n)
            strncat(added, add, n);
        p += len;
    }
    *refusal = subfix_end(&f, reply, sizeof(reply));
    subfix_free(&f);
    return added;
}

static void test_subfix(void)
{
    const char *ref, *a;

    a = fix("From: John <john@x>\r\nSubject: s\r\n\r\nbody\r\nDate: not a header\r\n", 1, &ref);
    CU_ASSERT(ref == NULL);
    CU_ASSERT(!strncmp(a, "Date: ", 6) && strstr(a, "\r\nMessage-ID: <QID1.") && strstr(a, "@mx.example>\r\n"));
    a = fix("date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMESSAGE-ID: <a@b>\r\nFrom: john@x\r\n\r\nb\r\n", 1, &ref);
    CU_ASSERT(ref == NULL && a[0] == 0);
    a = fix("From: John <john@x>,\r\n Mary <mary@x>\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\n", 1, &ref);
    CU_ASSERT(ref && !strcmp(ref, "553 5.7.1 <mary@x>: Sender address rejected: not owned by user"));
    a = fix("From: john@x\r\nFrom: boss@y\r\n\r\n", 1, &ref);
    CU_ASSERT(ref && strstr(ref, "<boss@y>"));
    a = fix("From: \"a, b\" <johnny@x> (me)\r\n\r\n", 1, &ref);
    CU_ASSERT(ref == NULL);
    a = fix("From: <unterminated\r\n\r\n", 1, &ref);
    CU_ASSERT(ref && strstr(ref, "unparsable"));
    a = fix("From: mary@x\r\n\r\n", 0, &ref);
    CU_ASSERT(ref == NULL);
    /* headers only, no blank line: the fields come at the end */
    a = fix("Subject: only headers\r\n", 0, &ref);
    CU_ASSERT(ref == NULL);
}

static void test_auth_map_and_owner(void)
{
    char dir[64], mb[128], al[128], map[128], auth[128], hash[512], err[1024];
    struct config cfg;
    struct mapdb *db = NULL;
    struct addr a;
    size_t end;
    struct stat st;
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/postern-authmap-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(mb, sizeof(mb), "%s/mailboxes", dir);
    snprintf(al, sizeof(al), "%s/aliases", dir);
    snprintf(map, sizeof(map), "%s/maps.db", dir);
    snprintf(auth, sizeof(auth), "%s/passwd.db", dir);
    f = fopen(mb, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("john@x:{SHA512-CRYPT}$6$abc$def\nmary@x\nann@x:$y$j9T$s$h\n", f);
    fclose(f);
    f = fopen(al, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("johnny@x: john@x\nteam@x: john@x, mary@x\njohn+sales@x: mary@x\nout@x: someone@remote.example\n", f);
    fclose(f);
    memset(&cfg, 0, sizeof(cfg));
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof(cfg.hostname), "x");
    config_free(&cfg);
    cfg.local_domains.n = 0;
    cfg.local_domains.v[cfg.local_domains.n++] = strdup("x");
    snprintf(cfg.mailboxes_file, sizeof(cfg.mailboxes_file), "%s", mb);
    snprintf(cfg.aliases_file, sizeof(cfg.aliases_file), "%s", al);
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "postmaster@x");
    CU_ASSERT_FATAL(maps_compile_auth(&cfg, map, auth, NULL, NULL, err, sizeof(err)) == 0);
    /* the hashes are in the auth map (mode 0440) and never in smtpd's */
    CU_ASSERT(stat(auth, &st) == 0 && (st.st_mode & 0777) == 0440);
    CU_ASSERT(passwd_open(auth, err, sizeof(err)) == 0);
    CU_ASSERT(passwd_lookup("john@x", hash, sizeof(hash)) == 1 && !strcmp(hash, "{SHA512-CRYPT}$6$abc$def"));
    CU_ASSERT(passwd_lookup("ann@x", hash, sizeof(hash)) == 1 && !strcmp(hash, "$y$j9T$s$h"));
    CU_ASSERT(passwd_lookup("mary@x", hash, sizeof(hash)) == 0);
    CU_ASSERT(passwd_lookup("nobody@x", hash, sizeof(hash)) == 0);
    passwd_close();
    CU_ASSERT(passwd_lookup("john@x", hash, sizeof(hash)) == -1);
    {
        FILE *m = fopen(map, "rb");
        char buf[65536];
        size_t n = m ? fread(buf, 1, sizeof(buf), m) : 0;
        CU_ASSERT(m != NULL && n > 0 && !memmem(buf, n, "$6$abc$def", 10) && !memmem(buf, n, "j9T", 3));
        if (m)
            fclose(m);
    }
    CU_ASSERT_FATAL(mapdb_open(&db, map, err, sizeof(err)) == 0);
#define OWNED(addr, owner) \
    (addr_parse_path("<" addr ">", strlen("<" addr ">"), ADDR_UTF8, &a, &end) == ADDR_OK && \
     mapdb_owned_by(db, &a, "+", owner) == 1)
    CU_ASSERT(OWNED("john@x", "john@x"));
    CU_ASSERT(OWNED("John@X", "john@x"));
    CU_ASSERT(OWNED("john+lists@x", "john@x"));
    CU_ASSERT(OWNED("johnny@x", "john@x"));
    CU_ASSERT(OWNED("team@x", "john@x"));
    CU_ASSERT(OWNED("team@x", "mary@x"));
    CU_ASSERT(!OWNED("mary@x", "john@x"));
    CU_ASSERT(!OWNED("johnny@x", "mary@x"));
    CU_ASSERT(!OWNED("john+sales@x", "john@x")); /* an alias of its own, mary's */
    CU_ASSERT(OWNED("john+sales@x", "mary@x"));
    CU_ASSERT(!OWNED("out@x", "john@x"));
    CU_ASSERT(!OWNED("nobody@x", "john@x"));
    CU_ASSERT(!OWNED("\"john@x\"@x", "john@x"));
#undef OWNED
    mapdb_close(db);
    config_free(&cfg);
    unlink(mb);
    unlink(al);
    unlink(map);
    unlink(auth);
    rmdir(dir);
}

void suite_auth(void)
{
    CU_pSuite s = CU_add_suite("auth", NULL, NULL);

    CU_add_test(s, "strict base64", test_b64);
    CU_add_test(s, "PLAIN message split and user names", test_plain_split);
    CU_add_test(s, "A_CHECK and A_RESULT built and validated", test_frames);
    CU_add_test(s, "crypt hashes of mkpasswd and doveadm", test_verify);
    CU_add_test(s, "failure throttle per address and per user", test_throttle);
    CU_add_test(s, "submission fix-ups and the From: check", test_subfix);
    CU_add_test(s, "auth map apart from smtpd's, sender owners", test_auth_map_and_owner);
}
