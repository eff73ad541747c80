/*
 * test_maildir.c - CUnit tests for the local role's Maildir store
 * (deliver/local/maildir.c) and queue-mgr's alias expansion
 * (queue-mgr/aliases.c): CRLF to LF with every other byte kept (a bare CR,
 * a CRLF split across read blocks), Return-Path:/Delivered-To: first, the
 * unique name with ,S=size, tmp/ -> new/, the Delivered-To: scan, no
 * symlink followed and no unsafe component used, errno to status codes;
 * aliases replaced by their members with NOTIFY, ORCPT and T_R_ALIAS,
 * duplicates collapsed, remote addresses untouched.
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../queue-mgr/aliases.h"
#include "config.h"
#include "../../deliver/local/lagent.h"
#include "../../deliver/local/maildir.h"
#include "mapdb.h"
#include "maps.h"
#include "paths.h"
#include "qrecord.h"
#include "suites.h"

static char dir[64];

static void mk_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/postern-md-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static void rm_tree(const char *path)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    CU_ASSERT(system(cmd) == 0);
}

static int spool_file(const void *data, size_t len)
{
    char p[128];
    int fd;

    snprintf(p, sizeof(p), "%s/spool", dir);
    fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t)len);
    close(fd);
    fd = open(p, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

static size_t count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    size_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static char *read_only_file(const char *path, size_t *len, char *name, size_t namelen)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[512];
    char *buf = NULL;
    struct stat st;
    int fd;

    CU_ASSERT_FATAL(d != NULL);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            break;
    CU_ASSERT_FATAL(e != NULL);
    snprintf(name, namelen, "%s", e->d_name);
    snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
    closedir(d);
    fd = open(p, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
    buf = malloc((size_t)st.st_size + 1);
    CU_ASSERT_FATAL(buf && read(fd, buf, (size_t)st.st_size) == st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static void test_write_publish(void)
{
    /* a CRLF split across the 64 KiB read block, a bare CR, a final CR */
    size_t n = (64u << 10) + 200, len, want_len;
    char *msg = malloc(n), *want = malloc(n + 200), *got, name[400], p[256];
    struct md_store *s;
    struct md_item it;
    int root, fd;
    size_t o = 0, w;

    CU_ASSERT_FATAL(msg && want);
    mk_tmp();
    memset(msg, 'a', n);
    memcpy(msg, "Subject: t\r\n\r\n", 14);
    msg[(64u << 10) - 1] = '\r';
    msg[64u << 10] = '\n';
    msg[100] = '\r';            /* bare CR: kept */
    msg[n - 1] = '\r';          /* CR at the very end: kept */
    w = (size_t)snprintf(want, n + 200, "Return-Path: <s@x.example>\nDelivered-To: u@d.example\n");
    for (size_t i = 0; i < n; i++) {
        if (msg[i] == '\r' && i + 1 < n && msg[i + 1] == '\n')
            continue;
        want[w + o++] = msg[i];
    }
    want_len = w + o;
    fd = spool_file(msg, n);
    root = open(dir, O_RDONLY | O_DIRECTORY);
    s = maildir_open(root, "host/x:y");
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_FATAL(maildir_write(s, "d.example/u", fd, n, "s@x.example", "u@d.example", &it) == 0);
    CU_ASSERT_EQUAL(it.size, want_len);
    snprintf(p, sizeof(p), "%s/d.example/u/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 1);
    CU_ASSERT(maildir_sync(s) == 0);
    CU_ASSERT(maildir_publish(s, &it) == 0);
    CU_ASSERT(maildir_sync_dirs(s) == 0);
    maildir_release(&it);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    snprintf(p, sizeof(p), "%s/d.example/u/cur", dir);
    CU_ASSERT(access(p, F_OK) == 0);
    snprintf(p, sizeof(p), "%s/d.example/u/new", dir);
    got = read_only_file(p, &len, name, sizeof(name));
    CU_ASSERT_EQUAL(len, want_len);
    CU_ASSERT(memcmp(got, want, want_len) == 0);
    /* unique name, host with / and : escaped, the size at the end */
    char tail[64];
    snprintf(tail, sizeof(tail), ".host\\057x\\072y,S=%zu", want_len);
    CU_ASSERT(strlen(name) > strlen(tail) && strcmp(name + strlen(name) - strlen(tail), tail) == 0);
    CU_ASSERT(strstr(name, ".M") && strstr(name, "P") && strstr(name, "Q"));
    /* a second copy gets another name; a discarded one leaves nothing */
    CU_ASSERT_FATAL(maildir_write(s, "d.example/u", fd, n, "", "u@d.example", &it) == 0);
    maildir_discard(&it);
    snprintf(p, sizeof(p), "%s/d.example/u/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    free(got);
    free(msg);
    free(want);
    maildir_close(s);
    close(fd);
    close(root);
    rm_tree(dir);
}

/* The batch's directory syncs: one syncfs per file system with several
 * new/ directories, an fsync of a lone one, each directory covered once. */
static void test_sync_plan(void)
{
    dev_t devs[6] = { 7, 9, 7, 7, 3, 9 };
    unsigned char how[6];
    static const unsigned char want[6] = { MD_SYNCFS, MD_SYNCFS, MD_COVERED, MD_COVERED, MD_FSYNC, MD_COVERED };
    static const unsigned char want3[6] = { MD_SYNCFS, MD_FSYNC, MD_COVERED, MD_COVERED, MD_FSYNC, MD_FSYNC };

    maildir_sync_plan(devs, 6, MD_SYNCFS_MIN, how);
    CU_ASSERT(memcmp(how, want, 6) == 0);
    maildir_sync_plan(devs, 6, 3, how);
    CU_ASSERT(memcmp(how, want3, 6) == 0);
    maildir_sync_plan(devs, 6, 0, how);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(how[i], MD_FSYNC);
    maildir_sync_plan(devs, 1, MD_SYNCFS_MIN, how);
    CU_ASSERT_EQUAL(how[0], MD_FSYNC);
    maildir_sync_plan(devs, 0, MD_SYNCFS_MIN, how);     /* nothing to do, nothing touched */
}

/* Threads for a batch's copies: more only for bigger batches, bounded. */
static void test_fillers(void)
{
    CU_ASSERT_EQUAL(lagent_fillers(0, 4), 1);
    CU_ASSERT_EQUAL(lagent_fillers(1, 4), 1);
    CU_ASSERT_EQUAL(lagent_fillers(LAGENT_FILL_PER_THREAD, 4), 1);
    CU_ASSERT_EQUAL(lagent_fillers(LAGENT_FILL_PER_THREAD + 1, 4), 2);
    CU_ASSERT_EQUAL(lagent_fillers(1000, 4), 4);
    CU_ASSERT_EQUAL(lagent_fillers(1000, 1), 1);
}

/* The three steps by hand, a fill on another buffer: the same file. */
static void test_prepare_fill_finish(void)
{
    struct md_item it;
    struct md_store *s;
    struct md_buf *b = malloc(sizeof(*b));
    char p[256];
    int root, fd;

    CU_ASSERT_FATAL(b != NULL);
    mk_tmp();
    fd = spool_file("Subject: x\r\n\r\nbody\r\n", 20);
    root = open(dir, O_RDONLY | O_DIRECTORY);
    s = maildir_open(root, "h");
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_FATAL(maildir_prepare(s, "d.example/u", &it) == 0);
    snprintf(p, sizeof(p), "%s/d.example/u/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 0);               /* named, not made yet */
    CU_ASSERT_FATAL(maildir_fill(b, &it, fd, 20, "s@x.example", "u@d.example") == 0);
    CU_ASSERT_EQUAL(count_dir(p), 1);
    CU_ASSERT(it.size == strlen("Return-Path: <s@x.example>\nDelivered-To: u@d.example\n") + 17);     /* 3 CRLF became LF */
    CU_ASSERT(maildir_finish(s, &it) == 0);
    CU_ASSERT(maildir_sync(s) == 0);
    CU_ASSERT(maildir_publish(s, &it) == 0);
    CU_ASSERT(maildir_sync_dirs(s) == 0);
    maildir_release(&it);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    snprintf(p, sizeof(p), "%s/d.example/u/new", dir);
    CU_ASSERT_EQUAL(count_dir(p), 1);
    /* a fill that fails (spool shorter than its record) leaves nothing */
    CU_ASSERT_FATAL(maildir_prepare(s, "d.example/u", &it) == 0);
    CU_ASSERT(maildir_fill(b, &it, fd, 4000, "s@x.example", "u@d.example") < 0);
    maildir_release(&it);
    snprintf(p, sizeof(p), "%s/d.example/u/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    free(b);
    maildir_close(s);
    close(fd);
    close(root);
    rm_tree(dir);
}

/* A fresh mailbox_dir, a 20-byte spool file in *fd, a store on it. */
static struct md_store *batch_store(int *root, int *fd)
{
    mk_tmp();
    *fd = spool_file("Subject: x\r\n\r\nbody\r\n", 20);
    *root = open(dir, O_RDONLY | O_DIRECTORY);
    return maildir_open(*root, "h");
}

static void batch_store_done(struct md_store *s, int root, int fd)
{
    maildir_close(s);
    close(fd);
    close(root);
    rm_tree(dir);
}

/* A batch over three Maildirs: every copy in its new/, none left in tmp/. */
static void test_batch_three_maildirs(void)
{
    static const char *const box[3] = { "d.example/a", "d.example/b", "e.example/c" };
    struct md_item it[6];
    struct md_store *s;
    char p[256];
    int root, fd;

    s = batch_store(&root, &fd);
    CU_ASSERT_FATAL(s != NULL);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_FATAL(maildir_write(s, box[i % 3], fd, 20, "s@x.example", "r@d.example", &it[i]) == 0);
    CU_ASSERT(maildir_sync(s) == 0);
    CU_ASSERT(maildir_sync(s) == 0);                    /* nothing new: nothing to sync */
    for (int i = 0; i < 6; i++)
        CU_ASSERT(maildir_publish(s, &it[i]) == 0);
    CU_ASSERT(maildir_sync_dirs(s) == 0);
    for (int i = 0; i < 6; i++)
        maildir_release(&it[i]);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s/new", dir, box[i]);
        CU_ASSERT_EQUAL(count_dir(p), 2);
        snprintf(p, sizeof(p), "%s/%s/tmp", dir, box[i]);
        CU_ASSERT_EQUAL(count_dir(p), 0);
    }
    batch_store_done(s, root, fd);
}

/* Two batches pipelined: the second's flush (maildir_sync_all) covers the
 * first's renames too, and leaves nothing dirty behind. */
static void test_sync_all_pipelined(void)
{
    struct md_item a[2], b[2];
    struct md_store *s;
    char p[256];
    int root, fd;

    s = batch_store(&root, &fd);
    CU_ASSERT_FATAL(s != NULL);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(maildir_write(s, i ? "d.example/b" : "d.example/a", fd, 20, "s@x.example", "r@d.example", &a[i]) == 0);
    CU_ASSERT(maildir_sync_all(s) == 0);
    for (int i = 0; i < 2; i++)
        CU_ASSERT(maildir_publish(s, &a[i]) == 0);
    /* the next batch: its data and the renames above in one flush */
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(maildir_write(s, "d.example/a", fd, 20, "s@x.example", "r@d.example", &b[i]) == 0);
    CU_ASSERT(maildir_sync_all(s) == 0);
    CU_ASSERT(maildir_sync_all(s) == 0);                /* nothing left to sync */
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(maildir_publish(s, &b[i]) == 0);
        maildir_release(&a[i]);
    }
    CU_ASSERT(maildir_sync_dirs(s) == 0);
    for (int i = 0; i < 2; i++)
        maildir_release(&b[i]);
    snprintf(p, sizeof(p), "%s/d.example/a/new", dir);
    CU_ASSERT_EQUAL(count_dir(p), 3);
    snprintf(p, sizeof(p), "%s/d.example/b/new", dir);
    CU_ASSERT_EQUAL(count_dir(p), 1);
    snprintf(p, sizeof(p), "%s/d.example/a/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    batch_store_done(s, root, fd);
}

static void test_header_scan(void)
{
    static const char m[] = "Received: x\r\nDelivered-To: A@B.example \r\ndelivered-to:<c@d.example>\r\n"
                            "X: y\r\n\r\nDelivered-To: body@x.example\r\n";
    struct md_seen seen;
    int fd;

    mk_tmp();
    fd = spool_file(m, sizeof(m) - 1);
    CU_ASSERT(maildir_scan_header(fd, sizeof(m) - 1, &seen) == 0);
    CU_ASSERT_EQUAL(seen.n, 2);
    CU_ASSERT(maildir_seen(&seen, "a@b.example"));
    CU_ASSERT(maildir_seen(&seen, "A@b.EXAMPLE"));
    CU_ASSERT(maildir_seen(&seen, "c@d.example"));
    CU_ASSERT(!maildir_seen(&seen, "body@x.example"));   /* in the body, not the header */
    CU_ASSERT(!maildir_seen(&seen, "a@b.example.org"));
    close(fd);
    rm_tree(dir);
}

static void test_no_symlink_no_unsafe_path(void)
{
    static const char *const bad[] = { "../x", "./x", "d/.x", "d/u/v", "d", "/u", "d/", ".d/u", "", "d/..", NULL };
    char p[256], out[256];
    struct md_store *s;
    struct md_item it;
    int root, fd;

    mk_tmp();
    fd = spool_file("S: x\r\n\r\nx\r\n", 11);
    snprintf(out, sizeof(out), "%s/outside", dir);
    CU_ASSERT_FATAL(mkdir(out, 0700) == 0);
    snprintf(p, sizeof(p), "%s/root", dir);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
    root = open(p, O_RDONLY | O_DIRECTORY);
    s = maildir_open(root, "h");
    for (size_t i = 0; bad[i]; i++) {
        errno = 0;
        CU_ASSERT(maildir_write(s, bad[i], fd, 11, "", "u@d", &it) < 0);
        CU_ASSERT_EQUAL(errno, EINVAL);
    }
    /* the domain directory is a symlink */
    snprintf(p, sizeof(p), "%s/root/d.example", dir);
    CU_ASSERT_FATAL(symlink(out, p) == 0);
    CU_ASSERT(maildir_write(s, "d.example/u", fd, 11, "", "u@d.example", &it) < 0);
    CU_ASSERT(errno == ELOOP || errno == ENOTDIR);
    CU_ASSERT_STRING_EQUAL(maildir_errno_dsn(errno), "4.2.0");
    /* new/ inside a Maildir is a symlink */
    snprintf(p, sizeof(p), "%s/root/e.example", dir);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/root/e.example/u", dir);
    CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/root/e.example/u/new", dir);
    CU_ASSERT_FATAL(symlink(out, p) == 0);
    CU_ASSERT(maildir_write(s, "e.example/u", fd, 11, "", "u@e.example", &it) < 0);
    CU_ASSERT_EQUAL(count_dir(out), 0);
    snprintf(p, sizeof(p), "%s/root/e.example/u/tmp", dir);
    CU_ASSERT_EQUAL(count_dir(p), 0);
    CU_ASSERT_STRING_EQUAL(maildir_errno_dsn(ENOSPC), "4.3.0");
    CU_ASSERT_STRING_EQUAL(maildir_errno_dsn(EDQUOT), "4.2.2");
    CU_ASSERT_STRING_EQUAL(maildir_errno_dsn(EACCES), "4.2.0");
    CU_ASSERT_STRING_EQUAL(maildir_errno_dsn(EIO), "4.3.0");
    maildir_close(s);
    close(root);
    close(fd);
    rm_tree(dir);
}

/* ---- aliases ---- */

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_alias_expand(void)
{
    struct config cfg;
    struct qrec r;
    char p[256], err[512];

    mk_tmp();
    memset(&cfg, 0, sizeof(cfg));
    config_defaults(&cfg);
    snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.example");
    config_free(&cfg);          /* the default lists */
    cfg.local_domains.n = 0;
    cfg.local_domains.v[cfg.local_domains.n++] = strdup("mx.example");
    snprintf(cfg.run_dir, sizeof(cfg.run_dir), "%s", dir);
    snprintf(cfg.mailboxes_file, sizeof(cfg.mailboxes_file), "%s/mailboxes", dir);
    snprintf(cfg.aliases_file, sizeof(cfg.aliases_file), "%s/aliases", dir);
    snprintf(cfg.postmaster_address, sizeof(cfg.postmaster_address), "postmaster@mx.example");
    put(cfg.mailboxes_file, "alice@mx.example\nbob@mx.example\ncarol@mx.example\npostmaster@mx.example\n");
    put(cfg.aliases_file, "staff@mx.example: alice, bob, far@remote.example\nteam@mx.example: staff, carol\n");
    snprintf(p, sizeof(p), "%s/%s", dir, SOCK_SMTPD_JAIL);
    CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/%s/%s", dir, SOCK_SMTPD_JAIL, MAPDB_FILE);
    CU_ASSERT_FATAL(maps_compile(&cfg, p, NULL, err, sizeof(err)) == 0);

    qrec_init(&r);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "Team+x@MX.example") == 0);
    r.rcpt[0].notify = NOTIFY_SUCCESS | NOTIFY_FAILURE;
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "alice@mx.example") == 0);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "other@remote.example") == 0);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "staff@mx.example") == 0);
    CU_ASSERT_FATAL(qrcpt_set(&r.rcpt[3].orcpt, "rfc822;given@x.example", QREC_ORCPT_MAX) == 0);
    CU_ASSERT_EQUAL(aliases_expand(&cfg, &r, err, sizeof(err)), 2);
    /* team -> alice, bob, far, carol; alice given again is one; staff's
     * members are all there already */
    CU_ASSERT_EQUAL_FATAL(r.nrcpt, 5);
    CU_ASSERT_STRING_EQUAL(r.rcpt[0].addr, "alice@mx.example");
    CU_ASSERT_STRING_EQUAL(r.rcpt[1].addr, "bob@mx.example");
    CU_ASSERT_STRING_EQUAL(r.rcpt[2].addr, "far@remote.example");
    CU_ASSERT_STRING_EQUAL(r.rcpt[3].addr, "carol@mx.example");
    CU_ASSERT_STRING_EQUAL(r.rcpt[4].addr, "other@remote.example");
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(r.rcpt[i].notify, NOTIFY_SUCCESS | NOTIFY_FAILURE);
        CU_ASSERT(r.rcpt[i].alias && strcmp(r.rcpt[i].alias, "Team+x@MX.example") == 0);
        CU_ASSERT(r.rcpt[i].orcpt && strcmp(r.rcpt[i].orcpt, "rfc822;Team+2Bx@MX.example") == 0);
    }
    CU_ASSERT_PTR_NULL(r.rcpt[4].alias);
    CU_ASSERT_PTR_NULL(r.rcpt[4].orcpt);

    /* T_R_ALIAS survives the record's encoding */
    struct ipc_out out;
    struct qrec back;
    ipc_body_begin(&out);
    qrec_encode(&r, &out);
    CU_ASSERT_FATAL(!out.failed);
    CU_ASSERT_FATAL(qrec_decode((const unsigned char *)buf_head(&out.b), out.b.len, &back, err, sizeof(err)) == 0);
    CU_ASSERT(back.rcpt[2].alias && strcmp(back.rcpt[2].alias, "Team+x@MX.example") == 0);
    CU_ASSERT_PTR_NULL(back.rcpt[4].alias);
    qrec_free(&back);
    ipc_out_free(&out);
    qrec_free(&r);

    /* no alias: nothing changes; an explicit ORCPT is kept */
    qrec_init(&r);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "bob@mx.example") == 0);
    CU_ASSERT_EQUAL(aliases_expand(&cfg, &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.nrcpt, 1);
    qrec_free(&r);
    qrec_init(&r);
    CU_ASSERT_FATAL(qrec_add_rcpt(&r, "staff@mx.example") == 0);
    CU_ASSERT_FATAL(qrcpt_set(&r.rcpt[0].orcpt, "rfc822;given@x.example", QREC_ORCPT_MAX) == 0);
    CU_ASSERT_EQUAL(aliases_expand(&cfg, &r, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL_FATAL(r.nrcpt, 3);
    CU_ASSERT_STRING_EQUAL(r.rcpt[2].orcpt, "rfc822;given@x.example");
    qrec_free(&r);
    aliases_close();
    config_free(&cfg);
    rm_tree(dir);
}

void suite_maildir(void)
{
    CU_pSuite s = CU_add_suite("maildir", NULL, NULL);

    CU_add_test(s, "CRLF to LF, headers added, tmp/ to new/ with ,S=size", test_write_publish);
    CU_add_test(s, "Delivered-To: values of the header only", test_header_scan);
    CU_add_test(s, "directory syncs of a batch: syncfs per file system, fsync of a lone one", test_sync_plan);
    CU_add_test(s, "a batch over three Maildirs: all in new/, none in tmp/", test_batch_three_maildirs);
    CU_add_test(s, "filler threads per batch size", test_fillers);
    CU_add_test(s, "pipelined batches: one flush covers a batch's data and the renames before", test_sync_all_pipelined);
    CU_add_test(s, "prepare, fill, finish: the same copy; a failed fill leaves nothing", test_prepare_fill_finish);
    CU_add_test(s, "no symlink followed, no unsafe component", test_no_symlink_no_unsafe_path);
    CU_add_test(s, "aliases expanded at commit: members, NOTIFY, ORCPT, T_R_ALIAS", test_alias_expand);
}
