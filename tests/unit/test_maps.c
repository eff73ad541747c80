/*
 * test_maps.c - CUnit tests for the map compiler (common/maps.c) and the
 * read-only look-up (common/mapdb.c): FILE:LINE errors, nested aliases,
 * loops, the postmaster/abuse defaults, +tag, case rules, and the function
 * that turns a key into a mailbox path component.
 *
 * Each test writes its files into a mkdtemp directory under /tmp and
 * compiles them into DIR/maps.db.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "mapdb.h"
#include "maps.h"
#include "suites.h"

static char dir[64], mbox_path[128], alias_path[128], map_path[128];
static char err[2048];
static struct config cfg;
static struct mapdb *db;

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A fresh directory and configuration: local domains mx.example and
 * example.org, hostname mx.example. */
static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/postern-maps-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(mbox_path, sizeof(mbox_path), "%s/mailboxes", dir);
    snprintf(alias_path, sizeof(alias_path), "%s/aliases", dir);
    snprintf(map_path, sizeof(map_path), "%s/maps.db", dir);
    memset(&cfg, 0, sizeof(cfg));
    config_defaults(&cfg);
    snprintf(cfg.path, sizeof(cfg.path), "%s/postern.conf", dir);
    snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.example");
    config_free(&cfg);
    cfg.local_domains.n = 0;
    cfg.local_domains.v[cfg.local_domains.n++] = strdup("mx.example");
    cfg.local_domains.v[cfg.local_domains.n++] = strdup("example.org");
    snprintf(cfg.mailboxes_file, sizeof(cfg.mailboxes_file), "%s", mbox_path);
    snprintf(cfg.aliases_file, sizeof(cfg.aliases_file), "%s", alias_path);
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "postmaster@mx.example");
    db = NULL;
}

static void teardown(void)
{
    char p[160];

    mapdb_close(db);
    db = NULL;
    config_free(&cfg);
    unlink(mbox_path);
    unlink(alias_path);
    unlink(map_path);
    snprintf(p, sizeof(p), "%s.NEW", map_path);
    unlink(p);
    rmdir(dir);
}

/* Compiles the two texts; 0 or -1 with err set. Opens the map on success. */
static int compile(const char *mailboxes, const char *aliases)
{
    put_file(mbox_path, mailboxes);
    put_file(alias_path, aliases);
    mapdb_close(db);
    db = NULL;
    if (maps_compile(&cfg, map_path, NULL, err, sizeof(err)) < 0)
        return -1;
    CU_ASSERT_FATAL(mapdb_open(&db, map_path, err, sizeof(err)) == 0);
    return 0;
}

/* "FILE:LINE: text" of the mailboxes (m) or aliases file: does err start so? */
static int err_at(int aliases, unsigned line, const char *text)
{
    char want[512];

    snprintf(want, sizeof(want), "%s:%u: %s", aliases ? alias_path : mbox_path, line, text);
    if (strncmp(err, want, strlen(want)) != 0) {
        fprintf(stderr, "\n  got  \"%s\"\n  want \"%s...\"\n", err, want);
        return 0;
    }
    return 1;
}

/* The members of an alias as one string "a,b,c", or "MAILBOX" / "NONE". */
static const char *expand(const char *key)
{
    static char out[4096];
    const char *m;
    size_t len, o = 0;
    enum mapdb_kind k = mapdb_get(db, key, &m, &len);

    if (k == MAPDB_MAILBOX)
        return "MAILBOX";
    if (k != MAPDB_ALIAS)
        return k == MAPDB_NONE ? "NONE" : "ERROR";
    for (size_t i = 0; i < len && o + 2 < sizeof(out); i++)
        out[o++] = m[i] ? m[i] : ',';
    if (o && out[o - 1] == ',')
        o--;
    out[o] = 0;
    return out;
}

/* mapdb_find on a path as a client sends it; the key found or "NONE". */
static const char *find(const char *path, const char *delims)
{
    static char found[MAPDB_KEY_MAX];
    struct addr a;
    size_t end;

    if (addr_parse_path(path, strlen(path), ADDR_UTF8, &a, &end) != ADDR_OK)
        return "SYNTAX";
    if (mapdb_find(db, &a, delims, found, sizeof(found), NULL, NULL) <= 0)
        return "NONE";
    return found;
}

static void test_path_component(void)
{
    char out[400], long_local[80];

    CU_ASSERT(maps_path_component("alice@mx.example", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "mx.example/alice");
    CU_ASSERT(maps_path_component("a.b-c_d+e@example.org", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "example.org/a.b-c_d+e");
    CU_ASSERT(maps_path_component("j\xc3\xb6rg@m\xc3\xbcller.example", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "m\xc3\xbcller.example/j\xc3\xb6rg");
    const char *bad[] = {
        "../x@mx.example", "..@mx.example", ".@mx.example", "...@mx.example", ".hidden@mx.example",
        "a/b@mx.example", "a..b@mx.example", "x.@mx.example", "a%b@mx.example", "a!b@mx.example",
        "@mx.example", "alice", "alice@", "alice@..", "alice@../etc", "alice@a/b", "alice@.mx.example",
        "Alice@mx.example", "alice@MX.example", "al\x01ice@mx.example", "al\x7fice@mx.example",
        "al ice@mx.example", "al\\ice@mx.example", "\"alice\"@mx.example", "al\xc2\x85ice@mx.example",
        "al\xc3ice@mx.example", "a\"b@mx.example", "a@b@mx.example",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = maps_path_component(bad[i], out, sizeof(out));
        if (rc != -1)
            fprintf(stderr, "\n  accepted \"%s\" as \"%s\"\n", bad[i], out);
        CU_ASSERT(rc == -1);
    }
    memset(long_local, 'a', 65);
    snprintf(long_local + 65, sizeof(long_local) - 65, "@x.example");
    CU_ASSERT(maps_path_component(long_local, out, sizeof(out)) == -1);
    long_local[64] = '@';
    snprintf(long_local + 65, sizeof(long_local) - 65, "x.example");
    CU_ASSERT(maps_path_component(long_local, out, sizeof(out)) == 0);
    CU_ASSERT(maps_path_component("alice@mx.example", out, 10) == -1); /* never truncated */
    CU_ASSERT(maps_path_component(NULL, out, sizeof(out)) == -1);
}

static void test_local_key(void)
{
    char out[80];

    CU_ASSERT(maps_local_key("Alice.Smith", 11, out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "alice.smith");
    CU_ASSERT(maps_local_key("J\xc3\x96RG", 5, out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "j\xc3\x96rg"); /* only ASCII letters are folded */
    CU_ASSERT(maps_local_key("a\0b", 3, out, sizeof(out)) == -1);
    CU_ASSERT(maps_local_key("", 0, out, sizeof(out)) == -1);
    CU_ASSERT(maps_local_key("a\nb", 3, out, sizeof(out)) == -1);
}

static void test_syntax_errors(void)
{
    static const struct {
        int aliases;
        const char *mailboxes, *alias_text;
        unsigned line;
        const char *msg;
    } t[] = {
        { 0, "a@mx.example\nnot an address\n", "", 2, "\"not an address\" is not an address" },
        { 0, "a@mx.example\n\n# c\nb@remote.example\n", "", 4, "b@remote.example is not in local_domains" },
        { 0, "a@mx.example:\n", "", 1, "empty password hash" },
        { 0, "a@mx.example:has space\n", "", 1, "the password hash has a space" },
        { 0, "a@mx.example\nA@MX.EXAMPLE\n", "", 2, "mailbox a@mx.example is listed twice (first at line 1)" },
        { 0, "a/b@mx.example\n", "", 1, "\"a/b@mx.example\" cannot be a mailbox name" },
        { 0, "a%b@mx.example\n", "", 1, "\"a%b@mx.example\" cannot be a mailbox name" },
        { 0, "\"a b\"@mx.example\n", "", 1, "\"\"a b\"@mx.example\" cannot be a mailbox name" },
        { 1, "a@mx.example\n", "x@mx.example a\n", 1, "expected \"alias: target, target\"" },
        { 1, "a@mx.example\n", "# c\nx@mx.example: |/bin/sh\n", 2, "\"|/bin/sh\": pipes, files and :include: are not supported" },
        { 1, "a@mx.example\n", "x@mx.example: /etc/passwd\n", 1, "\"/etc/passwd\": pipes" },
        { 1, "a@mx.example\n", "x@mx.example: :include:/etc/list\n", 1, "\":include:/etc/list\": pipes" },
        { 1, "a@mx.example\n", "x@mx.example: a\n\nx@mx.example: a\n", 3, "alias x@mx.example is defined twice" },
        { 1, "a@mx.example\n", "  a@mx.example\n", 1, "continuation line without an alias" },
        { 1, "a@mx.example\n", "x@mx.example:\n", 1, "alias without a target" },
        { 1, "a@mx.example\n", "x@mx.example: a\ny@mx.example: nobody\n", 2, "nobody@mx.example is neither a mailbox nor an alias" },
        { 1, "a@mx.example\n", "x@remote.example: a\n", 1, "x@remote.example is not in local_domains" },
        { 1, "a@mx.example\n", "x: a\n", 1, "a@example.org is neither a mailbox nor an alias (a bare alias" },
        { 1, "a@mx.example\n", "x@mx.example: a,\n  b@remote.example, <bad\n", 1, "\"<bad@mx.example\" is not an address" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        CU_ASSERT(compile(t[i].mailboxes, t[i].alias_text) == -1);
        CU_ASSERT(err_at(t[i].aliases, t[i].line, t[i].msg));
    }
    /* a line too long, and the hash never shown */
    char *big = malloc(10000);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'a', 9999);
    big[9999] = 0;
    CU_ASSERT(compile(big, "") == -1);
    CU_ASSERT(err_at(0, 1, "line too long"));
    free(big);
    CU_ASSERT(compile("a@mx.example:sec\x01ret\n", "") == -1);
    CU_ASSERT(strstr(err, "sec") == NULL);
    /* postmaster_address unknown: named as the configuration's */
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "admin@mx.example");
    CU_ASSERT(compile("a@mx.example\n", "") == -1);
    CU_ASSERT(strstr(err, "postern.conf: postmaster_address: admin@mx.example is neither a mailbox nor an alias") != NULL);
}

static void test_nested_and_loops(void)
{
    CU_ASSERT_FATAL(compile("c@mx.example\nb@mx.example\nd@example.org\n",
                            "# nested\n"
                            "a@mx.example: b, x@remote.example\n"
                            "b@mx.example: c, b,\n"
                            "\td@example.org,\n"
                            "  X@Remote.Example\n"
                            "top@example.org: a@mx.example, y@remote.example\n"
                            "self@mx.example: c, c@mx.example\n") == 0);
    CU_ASSERT_STRING_EQUAL(expand("b@mx.example"), "c@mx.example,b@mx.example,d@example.org,X@remote.example");
    CU_ASSERT_STRING_EQUAL(expand("a@mx.example"),
                           "c@mx.example,b@mx.example,d@example.org,X@remote.example,x@remote.example");
    CU_ASSERT_STRING_EQUAL(expand("top@example.org"),
                           "c@mx.example,b@mx.example,d@example.org,X@remote.example,x@remote.example,y@remote.example");
    CU_ASSERT_STRING_EQUAL(expand("self@mx.example"), "c@mx.example");
    CU_ASSERT_STRING_EQUAL(expand("c@mx.example"), "MAILBOX");

    CU_ASSERT(compile("c@mx.example\n", "a@mx.example: b\nb@mx.example: c, a\n") == -1);
    CU_ASSERT(err_at(1, 1, "alias loop: a@mx.example -> b@mx.example -> a@mx.example"));
    CU_ASSERT(compile("", "x@mx.example: x\n") == -1);
    CU_ASSERT(err_at(1, 1, "alias loop: x@mx.example -> x@mx.example"));
    /* too deep */
    char text[4096];
    size_t o = 0;
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "n%d@mx.example: n%d\n", i, i + 1);
    snprintf(text + o, sizeof(text) - o, "n40@mx.example: postmaster\n");
    CU_ASSERT(compile("", text) == -1);
    CU_ASSERT(strstr(err, "aliases nested deeper than 32") != NULL);
}

static void test_postmaster_abuse(void)
{
    /* defaults: postmaster@ the host's domain is a mailbox, the rest go there */
    CU_ASSERT_FATAL(compile("a@mx.example\n", "") == 0);
    CU_ASSERT_STRING_EQUAL(expand("postmaster@mx.example"), "MAILBOX");
    CU_ASSERT_STRING_EQUAL(expand("postmaster@example.org"), "postmaster@mx.example");
    CU_ASSERT_STRING_EQUAL(expand("abuse@mx.example"), "postmaster@mx.example");
    CU_ASSERT_STRING_EQUAL(expand("abuse@example.org"), "postmaster@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<PostMaster@EXAMPLE.org>", "+"), "postmaster@example.org");
    /* missing files are empty */
    unlink(alias_path);
    CU_ASSERT(maps_compile(&cfg, map_path, NULL, err, sizeof(err)) == 0);
    /* the files' own definitions win; postmaster_address elsewhere */
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "admin@mx.example");
    CU_ASSERT_FATAL(compile("admin@mx.example\nabuse@example.org\n",
                            "postmaster@mx.example: a@remote.example\n") == 0);
    CU_ASSERT_STRING_EQUAL(expand("postmaster@mx.example"), "a@remote.example");
    CU_ASSERT_STRING_EQUAL(expand("postmaster@example.org"), "admin@mx.example");
    CU_ASSERT_STRING_EQUAL(expand("abuse@mx.example"), "admin@mx.example");
    CU_ASSERT_STRING_EQUAL(expand("abuse@example.org"), "MAILBOX");
    /* a remote postmaster_address */
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "hostmaster@Remote.Example");
    CU_ASSERT_FATAL(compile("", "") == 0);
    CU_ASSERT_STRING_EQUAL(expand("postmaster@mx.example"), "hostmaster@remote.example");
    /* a bare alias is in every domain; bare targets too */
    CU_ASSERT_FATAL(compile("root@mx.example\nroot@example.org\n", "postmaster: root\nstaff: root, x@remote.example\n") == 0);
    CU_ASSERT_STRING_EQUAL(expand("postmaster@example.org"), "root@example.org");
    CU_ASSERT_STRING_EQUAL(expand("staff@mx.example"), "root@mx.example,x@remote.example");
    CU_ASSERT_STRING_EQUAL(expand("abuse@example.org"), "hostmaster@remote.example");
}

static void test_subaddress_and_case(void)
{
    struct maps_stats st;

    put_file(mbox_path, "Alice@MX.Example:$6$abc$SECRETHASHVALUE\nbob+list@mx.example\nj\xc3\xb6rg@example.org\n");
    put_file(alias_path, "Team@Example.ORG: alice@mx.example, Alice+x@mx.example\n");
    CU_ASSERT_FATAL(maps_compile(&cfg, map_path, &st, err, sizeof(err)) == 0);
    CU_ASSERT(st.mailboxes == 4 && st.hashes == 1 && st.aliases == 4);
    CU_ASSERT_FATAL(mapdb_open(&db, map_path, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(find("<alice@mx.example>", "+"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<ALICE@mx.EXAMPLE>", "+"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<alice+tag@mx.example>", "+"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<alice+tag+more@mx.example>", "+"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<alice+tag@mx.example>", ""), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<alice-tag@mx.example>", "+-"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<alice-tag@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<+alice@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<bob+list@mx.example>", "+"), "bob+list@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<bob@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<\"alice\"@mx.example>", "+"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<team@example.org>", "+"), "team@example.org");
    CU_ASSERT_STRING_EQUAL(expand("team@example.org"), "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(find("<J\xc3\xb6rg@EXAMPLE.ORG>", "+"), "j\xc3\xb6rg@example.org");
    CU_ASSERT_STRING_EQUAL(find("<j\xc3\x96rg@example.org>", "+"), "NONE"); /* non-ASCII is not folded */
    /* never rewritten to a remote address */
    CU_ASSERT_STRING_EQUAL(find("<alice%remote.example@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<remote.example!alice@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<\"alice@remote.example\"@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<\"../alice\"@mx.example>", "+"), "NONE");
    CU_ASSERT_STRING_EQUAL(find("<alice@[127.0.0.1]>", "+"), "NONE");
    /* the hash is nowhere in the map */
    FILE *f = fopen(map_path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    char *buf = malloc(1 << 22);
    CU_ASSERT_FATAL(buf != NULL);
    size_t n = fread(buf, 1, 1 << 22, f);
    fclose(f);
    CU_ASSERT(n > 0 && memmem(buf, n, "SECRETHASH", 10) == NULL);
    CU_ASSERT(memmem(buf, n, "alice@mx.example", 16) != NULL);
    free(buf);
}

static void test_failed_compile_keeps_map(void)
{
    struct stat before, after;

    CU_ASSERT_FATAL(compile("a@mx.example\n", "") == 0);
    CU_ASSERT_FATAL(stat(map_path, &before) == 0);
    CU_ASSERT(compile("a@mx.example\nb@mx.example\nbad line\n", "") == -1);
    CU_ASSERT(err_at(0, 3, "\"bad line\" is not an address"));
    CU_ASSERT_FATAL(stat(map_path, &after) == 0);
    CU_ASSERT(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
    CU_ASSERT_FATAL(mapdb_open(&db, map_path, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(expand("a@mx.example"), "MAILBOX");
    CU_ASSERT_STRING_EQUAL(expand("b@mx.example"), "NONE");
    /* a new map is a new file; an open handle still reads the old one */
    CU_ASSERT(maps_compile(&cfg, map_path, NULL, err, sizeof(err)) == -1);
    put_file(mbox_path, "a@mx.example\nb@mx.example\n");
    CU_ASSERT(maps_compile(&cfg, map_path, NULL, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(stat(map_path, &after) == 0);
    CU_ASSERT(before.st_ino != after.st_ino);
    CU_ASSERT_STRING_EQUAL(expand("b@mx.example"), "NONE");
    /* check only (no output): nothing written */
    unlink(map_path);
    CU_ASSERT(maps_compile(&cfg, NULL, NULL, err, sizeof(err)) == 0);
    CU_ASSERT(access(map_path, F_OK) == -1);
    /* not a map */
    put_file(map_path, "hello");
    mapdb_close(db);
    db = NULL;
    CU_ASSERT(mapdb_open(&db, map_path, err, sizeof(err)) == -1);
    CU_ASSERT(db == NULL);
}

/* The keys of this issue in postern.conf: values and FILE:LINE errors. */
static void test_config_keys(void)
{
    static const struct { const char *text, *err; } bad[] = {
        { "vrfy = maybe\n", ":1: vrfy: \"maybe\": expected hide or reveal" },
        { "\nexpn = on\n", ":2: expn: \"on\": expected off or relay_networks" },
        { "recipient_delimiter = ++\n", ":1: recipient_delimiter: \"++\": expected" },
        { "recipient_delimiter = @\n", ":1: recipient_delimiter: \"@\": expected" },
        { "postmaster_address = nobody\n", ":1: postmaster_address: \"nobody\" is not an address" },
    };
    char path[160];
    struct config c;

    snprintf(path, sizeof(path), "%s/postern.conf", dir);
    put_file(path, "hostname = Mx.Example\n");
    config_defaults(&c);
    CU_ASSERT_FATAL(config_load(&c, path, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(c.recipient_delimiter, "+");
    CU_ASSERT(c.vrfy == CONF_VRFY_HIDE && c.expn == CONF_EXPN_OFF);
    CU_ASSERT_STRING_EQUAL(c.postmaster_address, "postmaster@mx.example");
    put_file(path, "recipient_delimiter =\nvrfy = Reveal\nexpn = relay_networks\npostmaster_address = Admin@Example.ORG\n");
    CU_ASSERT_FATAL(config_load(&c, path, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(c.recipient_delimiter, "");
    CU_ASSERT(c.vrfy == CONF_VRFY_REVEAL && c.expn == CONF_EXPN_RELAY);
    CU_ASSERT_STRING_EQUAL(c.postmaster_address, "Admin@example.org");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[300];
        put_file(path, bad[i].text);
        CU_ASSERT(config_load(&c, path, err, sizeof(err)) == -1);
        snprintf(want, sizeof(want), "%s%s", path, bad[i].err);
        if (strncmp(err, want, strlen(want)) != 0)
            fprintf(stderr, "\n  got  \"%s\"\n  want \"%s...\"\n", err, want);
        CU_ASSERT(strncmp(err, want, strlen(want)) == 0);
    }
    config_free(&c);
    unlink(path);
}


/* The quota of key in the open map as "BYTES/MSGS", or "NONE" / "ERROR". */
static const char *quota_of(const char *key)
{
    static char out[64];
    struct mapdb_quota q;
    int r = mapdb_quota(db, key, &q);

    if (r <= 0)
        return r == 0 ? "NONE" : "ERROR";
    snprintf(out, sizeof(out), "%llu/%llu", (unsigned long long)q.bytes, (unsigned long long)q.msgs);
    return out;
}

/* mailboxes_file in Dovecot's passwd-file format: the quota rules of "*". */
static void test_quota_fields(void)
{
    struct maps_stats st;

    CU_ASSERT_FATAL(compile("plain@mx.example\n"
                            "hashed@mx.example:{SHA512-CRYPT}$6$abc$def\n"
                            "a@mx.example:{PLAIN}x:1000:1000::/home/a::userdb_quota_rule=*:storage=1k\n"
                            "b@mx.example:::::::userdb_quota_rule=*:messages=3 userdb_quota_rule2=*:bytes=2M\n"
                            "c@mx.example:::::::userdb_mail=maildir:~/Maildir nopassword userdb_quota_rules=x\n"
                            "d@mx.example:{PLAIN}y:1:1:gecos:/h:/bin/false:quota_rule=*:storage=1G:messages=10\n"
                            "e@mx.example:h:1:1::::userdb_quota_rule=*:storage=0 userdb_quota_rule2=*:bytes=512b\n"
                            "f@mx.example:h:1:1::::userdb_quota_rule=*:storage=2T\n"
                            "g@mx.example:h:1:1\n",
                            "") == 0);
    CU_ASSERT_STRING_EQUAL(quota_of("plain@mx.example"), "NONE");
    CU_ASSERT_STRING_EQUAL(quota_of("hashed@mx.example"), "NONE");
    CU_ASSERT_STRING_EQUAL(quota_of("a@mx.example"), "1024/0");
    CU_ASSERT_STRING_EQUAL(quota_of("b@mx.example"), "2097152/3");
    CU_ASSERT_STRING_EQUAL(quota_of("c@mx.example"), "NONE");
    CU_ASSERT_STRING_EQUAL(quota_of("d@mx.example"), "1073741824/10");
    CU_ASSERT_STRING_EQUAL(quota_of("e@mx.example"), "512/0");
    CU_ASSERT_STRING_EQUAL(quota_of("f@mx.example"), "2199023255552/0");
    CU_ASSERT_STRING_EQUAL(quota_of("g@mx.example"), "NONE");
    CU_ASSERT_STRING_EQUAL(quota_of("nobody@mx.example"), "NONE");
    CU_ASSERT_STRING_EQUAL(expand("b@mx.example"), "MAILBOX");
    CU_ASSERT_STRING_EQUAL(expand("c@mx.example"), "MAILBOX");
    /* hashes: hashed, a, d, e, f, g; b and c have an empty one (no AUTH) */
    CU_ASSERT(maps_compile(&cfg, NULL, &st, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(st.hashes, 6);
    CU_ASSERT_EQUAL(st.mailboxes, 9 + 1);       /* and postmaster@mx.example */
}

static void test_quota_errors(void)
{
    static const struct {
        const char *line, *err;
    } bad[] = {
        { "x@mx.example:::::::userdb_quota_rule=Trash:ignore",
          "userdb_quota_rule=Trash:ignore: only a rule for \"*\" (the whole mailbox) can be enforced; Postern "
          "understands \"*:storage=N\"" },
        { "x@mx.example:::::::userdb_quota_rule=*:ignore", "userdb_quota_rule=*:ignore: \"ignore\" cannot be enforced" },
        { "x@mx.example:::::::userdb_quota_rule=?:storage=1G", "userdb_quota_rule=?:storage=1G: only a rule for" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=+100M", "userdb_quota_rule=*:storage=+100M: \"storage\" "
          "needs a number (no '+', '-' or %)" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=10%", "userdb_quota_rule=*:storage=10%: \"storage\" needs" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=-1", "userdb_quota_rule=*:storage=-1: \"storage\" needs" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=1Q", "userdb_quota_rule=*:storage=1Q: \"storage\" needs" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=1kb", "userdb_quota_rule=*:storage=1kb: \"storage\" needs" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=99999999999999999T", "userdb_quota_rule=*:storage=9999" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage", "userdb_quota_rule=*:storage: \"storage\" needs" },
        { "x@mx.example:::::::userdb_quota_rule=*:backend=1G", "userdb_quota_rule=*:backend=1G: \"backend\" cannot" },
        { "x@mx.example:::::::userdb_quota_rule=*:", "userdb_quota_rule=*:: only a rule for" },
        { "x@mx.example:::::::userdb_quota_rule=", "userdb_quota_rule=: only a rule for" },
        { "x@mx.example:::::::userdb_quota_rule", "userdb_quota_rule without a value" },
        { "x@mx.example:::::::userdb_quota_rule2=*:storage=1", "quota_rule2 without quota_rule before it" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=1 userdb_quota_rule3=*:messages=2",
          "quota_rule3 without quota_rule2 before it" },
        { "x@mx.example:::::::userdb_quota_rule=*:storage=1 quota_rule=*:storage=2", "quota_rule is given twice" },
        { "x@mx.example:::::::userdb_quota_rule1=*:storage=1", "userdb_quota_rule1: Dovecot does not read it" },
        { "x@mx.example:::::::userdb_quota_rule40=*:storage=1", "userdb_quota_rule40: at most 31 quota rules" },
        { "x@mx.example:", "empty password hash after ':'" },
        { "x@mx.example:a b::::::", "the password hash has a space" },
    };
    char text[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "ok@mx.example\n%s\n", bad[i].line);
        CU_ASSERT(compile(text, "") == -1);
        CU_ASSERT(err_at(0, 2, bad[i].err));
    }
}

#define T(name, fn) CU_add_test(s, name, fn)

static void wrap(void (*fn)(void))
{
    setup();
    fn();
    teardown();
}

#define W(fn) static void w_##fn(void) { wrap(fn); }
W(test_path_component)
W(test_local_key)
W(test_syntax_errors)
W(test_nested_and_loops)
W(test_postmaster_abuse)
W(test_subaddress_and_case)
W(test_failed_compile_keeps_map)
W(test_config_keys)
W(test_quota_fields)
W(test_quota_errors)

void suite_maps(void)
{
    CU_pSuite s = CU_add_suite("maps", NULL, NULL);

    T("path component refuses traversal, controls, dots, length", w_test_path_component);
    T("local part keys: ASCII folded, unsafe refused", w_test_local_key);
    T("syntax errors are FILE:LINE and never show the hash", w_test_syntax_errors);
    T("nested aliases expanded, loops refused", w_test_nested_and_loops);
    T("postmaster and abuse in every local domain", w_test_postmaster_abuse);
    T("sub-addressing, case rules, no percent hack", w_test_subaddress_and_case);
    T("a failed compile keeps the old map", w_test_failed_compile_keeps_map);
    T("recipient_delimiter, vrfy, expn, postmaster_address", w_test_config_keys);
    T("passwd-file lines: quota rules of * into the mailbox record", w_test_quota_fields);
    T("quota rules that cannot be honoured are FILE:LINE errors", w_test_quota_errors);
}
