/*
 * test_quota.c - CUnit tests for mailbox quotas: the Maildir++ quota
 * definition in the map (common/mapdb.c mapdb_quota_parse/format), the
 * L_QUOTA frames (common/quotaproto.c), maildirsize read, append and
 * recalculation on a temporary Maildir (deliver/local/quota.c), the
 * verdicts, and the quota server's answer from a compiled map
 * (deliver/local/qserver.c). The map field syntax is in test_maps.c.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ipc.h"
#include "local/qserver.h"
#include "local/quota.h"
#include "mapdb.h"
#include "maps.h"
#include "proto.h"
#include "quotaproto.h"
#include "suites.h"

static char top[64];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* The text of a file (at most 8 KiB), or "" when it cannot be read. */
static const char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    buf[0] = 0;
    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    return buf;
}

static void mk(const char *rel)
{
    char p[256];

    snprintf(p, sizeof(p), "%s/%s", top, rel);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0 || errno == EEXIST);
}

static void file_of(const char *rel, size_t size)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", top, rel);
    f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (size_t i = 0; i < size; i++)
        fputc('x', f);
    fclose(f);
}

static void rm_tree(void)
{
    char cmd[128];

    /* the test's own mkdtemp directory only */
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", top);
    CU_ASSERT(system(cmd) == 0);
}

static void make_top(void)
{
    snprintf(top, sizeof(top), "/tmp/postern-quota-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(top) != NULL);
}

/* ------------------------------------------------------------ definitions */

static void test_definition(void)
{
    struct mapdb_quota q;
    char out[64];
    static const char *const bad[] = {
        "S", "10", "10S,", ",10S", "10S,20S", "1C,2C", "10X", "10S,,1C", "10 S", "99999999999999999999S",
        "-1S", "+1S", "10s",
    };

    CU_ASSERT(mapdb_quota_parse("10485760S", 9, &q) == 0 && q.bytes == 10485760 && q.msgs == 0);
    CU_ASSERT(mapdb_quota_parse("1000C", 5, &q) == 0 && q.bytes == 0 && q.msgs == 1000);
    CU_ASSERT(mapdb_quota_parse("10485760S,1000C", 15, &q) == 0 && q.bytes == 10485760 && q.msgs == 1000);
    CU_ASSERT(mapdb_quota_parse("7C,5S", 5, &q) == 0 && q.bytes == 5 && q.msgs == 7);
    CU_ASSERT(mapdb_quota_parse("0S", 2, &q) == 0 && q.bytes == 0 && q.msgs == 0);     /* Dovecot's "none" */
    CU_ASSERT(mapdb_quota_parse("", 0, &q) == 0 && q.bytes == 0 && q.msgs == 0);
    CU_ASSERT(mapdb_quota_parse("18446744073709551615S", 21, &q) == 0 && q.bytes == UINT64_MAX);
    /* n bounds the text: what follows is not read */
    CU_ASSERT(mapdb_quota_parse("5Sgarbage", 2, &q) == 0 && q.bytes == 5);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = mapdb_quota_parse(bad[i], strlen(bad[i]), &q);
        if (r != -1)
            fprintf(stderr, "\n  accepted \"%s\"\n", bad[i]);
        CU_ASSERT(r == -1);
    }
    q.bytes = 10485760, q.msgs = 1000;
    CU_ASSERT(mapdb_quota_format(&q, out, sizeof(out)) == 15);
    CU_ASSERT_STRING_EQUAL(out, "10485760S,1000C");
    q.msgs = 0;
    CU_ASSERT(mapdb_quota_format(&q, out, sizeof(out)) == 9);
    CU_ASSERT_STRING_EQUAL(out, "10485760S");
    q.bytes = 0, q.msgs = 3;
    CU_ASSERT(mapdb_quota_format(&q, out, sizeof(out)) == 2);
    CU_ASSERT_STRING_EQUAL(out, "3C");
    q.msgs = 0;
    CU_ASSERT(mapdb_quota_format(&q, out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    q.bytes = 10485760;
    CU_ASSERT(mapdb_quota_format(&q, out, 9) == -1);    /* does not fit */
    CU_ASSERT(mapdb_quota_format(&q, out, 10) == 9);
}

/* ------------------------------------------------------------ frames */

static int as_msg(struct ipc_out *o, struct ipc_msg *m)
{
    if (ipc_out_finish(o) < 0 && o->failed)
        return -1;
    m->type = (uint16_t)(((const unsigned char *)o->b.data)[4] | ((const unsigned char *)o->b.data)[5] << 8);
    m->flags = 0;
    m->reqid = 9;
    m->body = (const unsigned char *)o->b.data + IPC_HDR_LEN;
    m->len = o->b.len - IPC_HDR_LEN;
    m->fd = -1;
    return 0;
}

/* quotap_parse_ask of a frame of type with key (twice when key2) and size. */
static int parse_ask_fields(uint16_t type, const char *key, const char *key2, int size)
{
    struct ipc_out o;
    struct ipc_msg m;
    struct quota_ask a;
    int r;

    ipc_out_begin(&o, type, 9);
    if (key)
        ipc_out_str(&o, T_L_KEY, key);
    if (key2)
        ipc_out_str(&o, T_L_KEY, key2);
    if (size == 1)
        ipc_out_u64(&o, T_L_SIZE, 100);
    else if (size == 2)
        ipc_out_bytes(&o, T_L_SIZE, "abc", 3);  /* not a u64 */
    r = as_msg(&o, &m) == 0 ? quotap_parse_ask(&m, &a) : -2;
    ipc_out_free(&o);
    return r;
}

static void test_frames(void)
{
    struct ipc_out o;
    struct ipc_msg m;
    struct quota_ask a;
    struct quota_answer in = { QUOTA_FULL, 1000, 3, 1024, 5 }, out;
    char longkey[400];

    CU_ASSERT_FATAL(quotap_build_ask(&o, 9, "john@example.org", 12001) == 0);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(m.type == L_QUOTA);
    CU_ASSERT(m.len + IPC_HDR_LEN <= proto_limit(L_QUOTA));
    CU_ASSERT(quotap_parse_ask(&m, &a) == 0);
    CU_ASSERT_STRING_EQUAL(a.key, "john@example.org");
    CU_ASSERT(a.size == 12001);
    CU_ASSERT(quotap_parse_answer(&m, &out) == -1);     /* wrong type */
    ipc_out_free(&o);
    /* refused at build: empty, no '@', a control byte, too long */
    memset(longkey, 'a', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = 0;
    longkey[10] = '@';
    static const char *const badkeys[] = { "", "john", "jo\nhn@x", "jo\x7fhn@x" };
    for (size_t i = 0; i < sizeof(badkeys) / sizeof(badkeys[0]); i++) {
        CU_ASSERT(quotap_build_ask(&o, 9, badkeys[i], 1) == -1);
        ipc_out_free(&o);
    }
    CU_ASSERT(quotap_build_ask(&o, 9, longkey, 1) == -1);
    ipc_out_free(&o);
    /* refused at parse: missing, repeated or malformed fields, another type */
    CU_ASSERT(parse_ask_fields(L_QUOTA, "a@b", NULL, 1) == 0);
    CU_ASSERT(parse_ask_fields(L_QUOTA, "a@b", NULL, 0) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA, NULL, NULL, 1) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA, "a@b", "c@d", 1) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA, "a@b", NULL, 2) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA, "ab", NULL, 1) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA, "a\x01@b", NULL, 1) == -1);
    CU_ASSERT(parse_ask_fields(L_QUOTA_REPLY, "a@b", NULL, 1) == -1);
    /* the answer */
    CU_ASSERT_FATAL(quotap_build_answer(&o, 9, &in) == 0);
    CU_ASSERT_FATAL(as_msg(&o, &m) == 0);
    CU_ASSERT(m.type == L_QUOTA_REPLY);
    CU_ASSERT(quotap_parse_answer(&m, &out) == 0);
    CU_ASSERT(out.verdict == QUOTA_FULL && out.used_bytes == 1000 && out.used_msgs == 3 && out.limit_bytes == 1024 &&
              out.limit_msgs == 5);
    CU_ASSERT(quotap_parse_ask(&m, &a) == -1);
    ipc_out_free(&o);
    in.verdict = (enum quota_verdict)7;
    CU_ASSERT(quotap_build_answer(&o, 9, &in) == -1);
    ipc_out_free(&o);
    /* a verdict out of range, missing, or twice */
    ipc_out_begin(&o, L_QUOTA_REPLY, 9);
    ipc_out_u64(&o, T_L_VERDICT, 5);
    CU_ASSERT(as_msg(&o, &m) == 0 && quotap_parse_answer(&m, &out) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, L_QUOTA_REPLY, 9);
    ipc_out_u64(&o, T_L_USED_BYTES, 5);
    CU_ASSERT(as_msg(&o, &m) == 0 && quotap_parse_answer(&m, &out) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, L_QUOTA_REPLY, 9);
    ipc_out_u64(&o, T_L_VERDICT, QUOTA_OK);
    ipc_out_u64(&o, T_L_VERDICT, QUOTA_OK);
    CU_ASSERT(as_msg(&o, &m) == 0 && quotap_parse_answer(&m, &out) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, L_QUOTA_REPLY, 9);
    ipc_out_u64(&o, T_L_VERDICT, QUOTA_NONE);
    CU_ASSERT(as_msg(&o, &m) == 0 && quotap_parse_answer(&m, &out) == 0 && out.verdict == QUOTA_NONE);
    ipc_out_free(&o);
}

/* ------------------------------------------------------------ maildirsize */

static int parse(const char *text, time_t mtime, uint64_t bytes, uint64_t msgs, struct mdq_usage *u)
{
    struct mapdb_quota q = { bytes, msgs };

    u->bytes = u->msgs = 12345;
    return mdq_parse(text, strlen(text), mtime, 1000000, &q, u);
}

static void test_parse(void)
{
    struct mdq_usage u;
    char big[MDQ_FILE_MAX + 10];

    CU_ASSERT(parse("1024S\n100 1\n50 1\n", 1000000, 1024, 0, &u) == 1 && u.bytes == 150 && u.msgs == 2);
    CU_ASSERT(parse("1024S,10C\n  300   3\n-100 -1\n", 1000000, 1024, 10, &u) == 1 && u.bytes == 200 && u.msgs == 2);
    CU_ASSERT(parse("10C\n0 4\n", 1000000, 0, 10, &u) == 1 && u.bytes == 0 && u.msgs == 4);
    /* a last line without LF is still being written: not counted */
    CU_ASSERT(parse("1024S\n100 1\n50 1", 1000000, 1024, 0, &u) == 1 && u.bytes == 100 && u.msgs == 1);
    /* recalculated: another definition, no usage line, malformed, negative, NUL, too large */
    CU_ASSERT(parse("2048S\n100 1\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n100 1\n", 1000000, 1024, 5, &u) == 0);
    CU_ASSERT(parse("1024S\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\nabc\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n100\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n100 1 7\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n100 1\n-200 -1\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n99999999999999999999 1\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(mdq_parse("1024S\n1\0 1\n", 11, 1000000, 1000000, &(struct mapdb_quota){ 1024, 0 }, &u) == 0);
    memset(big, ' ', sizeof(big));
    memcpy(big, "1024S\n1 1\n", 10);
    big[MDQ_FILE_MAX - 1] = '\n';
    CU_ASSERT(mdq_parse(big, MDQ_FILE_MAX, 1000000, 1000000, &(struct mapdb_quota){ 1024, 0 }, &u) == 0);
    /* over quota: trusted only as one fresh line */
    CU_ASSERT(parse("1024S\n2000 3\n", 1000000 - 60, 1024, 0, &u) == 1 && u.bytes == 2000);
    CU_ASSERT(parse("1024S\n2000 3\n", 1000000 - MDQ_STALE_SECS - 1, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S\n1000 2\n1000 1\n", 1000000, 1024, 0, &u) == 0);
    CU_ASSERT(parse("1024S,2C\n10 3\n", 1000000, 1024, 2, &u) == 1 && u.msgs == 3);
    CU_ASSERT(parse("1024S,2C\n10 2\n1 1\n", 1000000, 1024, 2, &u) == 0);
    /* at the limit is not over it */
    CU_ASSERT(parse("1024S\n1000 2\n24 1\n", 1000000, 1024, 0, &u) == 1 && u.bytes == 1024);
}

static void test_verdict(void)
{
    struct mapdb_quota none = { 0, 0 }, b = { 1000, 0 }, c = { 0, 3 }, bc = { 1000, 3 };
    struct mdq_usage u0 = { 0, 0 }, u = { 600, 2 }, over = { 1200, 5 };

    CU_ASSERT(mdq_verdict(&none, &u, 1u << 30) == QUOTA_NONE);
    CU_ASSERT(mdq_verdict(&b, &u0, 1000) == QUOTA_OK);
    CU_ASSERT(mdq_verdict(&b, &u0, 1001) == QUOTA_TOOBIG);
    CU_ASSERT(mdq_verdict(&b, &u, 400) == QUOTA_OK);
    CU_ASSERT(mdq_verdict(&b, &u, 401) == QUOTA_FULL);
    CU_ASSERT(mdq_verdict(&b, &over, 1) == QUOTA_FULL);
    CU_ASSERT(mdq_verdict(&b, &over, 2000) == QUOTA_TOOBIG);
    CU_ASSERT(mdq_verdict(&c, &u, 1u << 30) == QUOTA_OK);
    CU_ASSERT(mdq_verdict(&c, &(struct mdq_usage){ 0, 3 }, 1) == QUOTA_FULL);
    CU_ASSERT(mdq_verdict(&bc, &u, 10) == QUOTA_OK);
    CU_ASSERT(mdq_verdict(&bc, &(struct mdq_usage){ 10, 3 }, 10) == QUOTA_FULL);
    CU_ASSERT(mdq_verdict(&b, &u, 0) == QUOTA_OK);      /* size unknown */
}

/* A Maildir at TOP/d/u with messages in new/, cur/ and two folders. */
static int make_maildir(void)
{
    char p[256];
    int root, md;

    make_top();
    mk("d");
    mk("d/u");
    mk("d/u/tmp");
    mk("d/u/new");
    mk("d/u/cur");
    mk("d/u/.Sent");
    mk("d/u/.Sent/cur");
    mk("d/u/.Trash");
    mk("d/u/.Trash/new");
    mk("d/u/.Trash/tmp");
    file_of("d/u/new/1.M1P1.h,S=100", 3);               /* ",S=" wins over the real size */
    file_of("d/u/new/2.M2P1.h,S=50:2,S", 3);
    file_of("d/u/cur/3.M3P1.h:2,S", 70);                /* no ",S=": its size */
    file_of("d/u/cur/4.M4P1.h,S=12,W=15:2,", 0);
    file_of("d/u/.Sent/cur/5.M5P1.h,S=1000:2,S", 0);
    file_of("d/u/.Trash/new/6.M6P1.h,S=7", 0);
    file_of("d/u/.Trash/tmp/7.M7P1.h,S=5000", 0);       /* tmp/ is not counted */
    file_of("d/u/cur/.hidden", 9);                      /* nor dot files */
    file_of("d/u/.notadir", 9);
    snprintf(p, sizeof(p), "%s", top);
    root = open(p, O_RDONLY | O_DIRECTORY);
    CU_ASSERT_FATAL(root >= 0);
    md = mdq_open_maildir(root, "d/u");
    CU_ASSERT(mdq_open_maildir(root, "d/nobody") == -1 && errno == ENOENT);
    CU_ASSERT(mdq_open_maildir(root, "../d") == -1);
    CU_ASSERT(mdq_open_maildir(root, "d/u/new") == -1 && errno == EINVAL);
    CU_ASSERT(mdq_open_maildir(root, "d/.u") == -1 && errno == EINVAL);
    CU_ASSERT(mdq_open_maildir(root, ".d/u") == -1 && errno == EINVAL);
    CU_ASSERT(mdq_open_maildir(root, "du") == -1 && errno == EINVAL);
    close(root);
    CU_ASSERT_FATAL(md >= 0);
    return md;
}

static void test_recalc(void)
{
    struct mapdb_quota q = { 10240, 100 };
    struct mdq_usage u;
    char path[256], target[256];
    int md = make_maildir();

    snprintf(path, sizeof(path), "%s/d/u/maildirsize", top);
    /* missing: recalculated, written in tmp/ and renamed */
    CU_ASSERT(mdq_read(md, &q, time(NULL), &u) == 0);
    CU_ASSERT(mdq_usage(md, &q, time(NULL), 0, &u) == 0);
    CU_ASSERT(u.bytes == 100 + 50 + 70 + 12 + 1000 + 7 && u.msgs == 6);
    CU_ASSERT_STRING_EQUAL(slurp(path), "10240S,100C\n1239 6\n");
    /* appended, read back */
    CU_ASSERT(mdq_add(md, MDQ_FILE, 500, 1) == 0);
    CU_ASSERT(mdq_add(md, MDQ_FILE, -70, -1) == 0);
    CU_ASSERT_STRING_EQUAL(slurp(path), "10240S,100C\n1239 6\n500 1\n-70 -1\n");
    CU_ASSERT(mdq_read(md, &q, time(NULL), &u) == 1 && u.bytes == 1669 && u.msgs == 6);
    /* another quota in the map: recalculated with its definition */
    q.bytes = 2048, q.msgs = 0;
    CU_ASSERT(mdq_read(md, &q, time(NULL), &u) == 0);
    CU_ASSERT(mdq_usage(md, &q, time(NULL), 0, &u) == 0 && u.bytes == 1239);
    CU_ASSERT_STRING_EQUAL(slurp(path), "2048S\n1239 6\n");
    /* a bound on the names counted */
    CU_ASSERT(mdq_recalc(md, &q, 3, &u) == -1 && errno == E2BIG);
    CU_ASSERT(mdq_recalc(md, &q, 6, &u) == 0);
    /* a symlink in its place is replaced, never followed */
    snprintf(target, sizeof(target), "%s/elsewhere", top);
    put(target, "2048S\n1 1\n");
    CU_ASSERT(unlink(path) == 0 && symlink(target, path) == 0);
    CU_ASSERT(mdq_add(md, MDQ_FILE, 5, 1) == -1);                 /* O_NOFOLLOW */
    CU_ASSERT(mdq_usage(md, &q, time(NULL), 0, &u) == 0 && u.bytes == 1239);
    CU_ASSERT_STRING_EQUAL(slurp(target), "2048S\n1 1\n");
    CU_ASSERT_STRING_EQUAL(slurp(path), "2048S\n1239 6\n");
    /* at MDQ_FILE_MAX bytes: not appended to (every reader recounts it) */
    {
        char big[MDQ_FILE_MAX + 1];
        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        memcpy(big, "2048S\n1 1\n", 10);
        big[MDQ_FILE_MAX - 1] = '\n';
        big[MDQ_FILE_MAX] = 0;
        put(path, big);
        CU_ASSERT(mdq_add(md, MDQ_FILE, 5, 1) == 0);
        CU_ASSERT(strlen(slurp(path)) == MDQ_FILE_MAX);
        CU_ASSERT(mdq_usage(md, &q, time(NULL), 0, &u) == 0 && u.bytes == 1239);
        CU_ASSERT_STRING_EQUAL(slurp(path), "2048S\n1239 6\n");
    }
    /* missing at append: left missing */
    CU_ASSERT(unlink(path) == 0);
    CU_ASSERT(mdq_add(md, MDQ_FILE, 5, 1) == 0);
    CU_ASSERT(access(path, F_OK) == -1 && errno == ENOENT);
    /* nothing left in tmp/ */
    CU_ASSERT(rmdir(strcat(strcpy(target, top), "/d/u/tmp")) == 0);
    close(md);
    rm_tree();
}

/* ------------------------------------------------------------ the server's answer */

static void test_answer(void)
{
    struct config cfg;
    struct mapdb *db = NULL;
    struct quota_answer a;
    char mbox[160], map[160], err[1024];
    int root;

    make_top();
    memset(&cfg, 0, sizeof(cfg));
    config_defaults(&cfg);
    config_free(&cfg);
    cfg.local_domains.n = 0;
    cfg.local_domains.v[cfg.local_domains.n++] = strdup("d");
    snprintf(cfg.hostname, sizeof(cfg.hostname), "d");
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "postmaster@d");
    snprintf(mbox, sizeof(mbox), "%s/mailboxes", top);
    snprintf(map, sizeof(map), "%s/maps.db", top);
    snprintf(cfg.mailboxes_file, sizeof(cfg.mailboxes_file), "%s", mbox);
    put(mbox, "u@d:::::::userdb_quota_rule=*:bytes=1000:messages=3\nfree@d\nnew@d:::::::quota_rule=*:storage=1\n");
    CU_ASSERT_FATAL(maps_compile(&cfg, map, NULL, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(mapdb_open(&db, map, err, sizeof(err)) == 0);
    mk("d");
    mk("d/u");
    mk("d/u/tmp");
    mk("d/u/new");
    mk("d/u/cur");
    file_of("d/u/new/1.M1P1.h,S=600", 0);
    root = open(top, O_RDONLY | O_DIRECTORY);
    CU_ASSERT_FATAL(root >= 0);

    qsrv_answer(db, root, "u@d", 400, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_OK && a.used_bytes == 600 && a.used_msgs == 1 && a.limit_bytes == 1000 &&
              a.limit_msgs == 3);
    qsrv_answer(db, root, "u@d", 401, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_FULL);
    qsrv_answer(db, root, "u@d", 1001, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_TOOBIG);
    file_of("d/u/new/2.M2P1.h,S=1", 0);
    file_of("d/u/new/3.M3P1.h,S=1", 0);
    CU_ASSERT(unlink(strcat(strcpy(err, top), "/d/u/maildirsize")) == 0);     /* recounted */
    qsrv_answer(db, root, "u@d", 1, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_FULL && a.used_msgs == 3);
    qsrv_answer(db, root, "free@d", 1u << 30, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_NONE);
    qsrv_answer(db, root, "nobody@d", 1, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_NONE);
    qsrv_answer(db, root, "../x@d", 1, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_NONE);
    /* no Maildir yet: nothing used, and none is made */
    qsrv_answer(db, root, "new@d", 1024, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_OK && a.used_bytes == 0 && a.limit_bytes == 1024);
    qsrv_answer(db, root, "new@d", 1025, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_TOOBIG);
    CU_ASSERT(faccessat(root, "d/new", F_OK, 0) == -1);
    /* no map: TEMPFAIL */
    qsrv_answer(NULL, root, "u@d", 1, time(NULL), &a);
    CU_ASSERT(a.verdict == QUOTA_TEMPFAIL);
    close(root);
    mapdb_close(db);
    config_free(&cfg);
    rm_tree();
}

void suite_quota(void)
{
    CU_pSuite s = CU_add_suite("quota", NULL, NULL);

    CU_add_test(s, "Maildir++ quota definitions parsed and formatted", test_definition);
    CU_add_test(s, "L_QUOTA frames round-trip, malformed ones refused", test_frames);
    CU_add_test(s, "maildirsize parsed: sums, and when it must be recounted", test_parse);
    CU_add_test(s, "verdicts: none, ok, full by bytes or count, too big", test_verdict);
    CU_add_test(s, "maildirsize recalculated, appended, symlinks never followed", test_recalc);
    CU_add_test(s, "the quota server's answers from map and Maildir", test_answer);
}
