/*
 * test_qstore.c - CUnit suite for common/qstore.c, the LMDB queue index:
 * create, batch put, ordered scans (from the start, after an id, stopping
 * early), delete, last id, persistence across reopen, read-only opens, and a
 * 10,000-record batch. Each test works in its own mkdtemp() directory inside
 * one /tmp/postern-qstore-XXXXXX root and removes it; the suite cleanup
 * removes the root, also after a test stopped on a fatal assertion.
 */
#include <CUnit/CUnit.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc.h"
#include "qrecord.h"
#include "qstore.h"
#include "queueid.h"
#include "suites.h"

struct qst_seen {
    char (*ids)[QID_LEN + 1];
    char **vals;
    size_t *lens;
    size_t n, cap;
    size_t stop_at; /* stop after this many visits (0: never) */
    int bad;
};

static int qst_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static char qst_root[64];
static char qst_mounted[128]; /* a tmpfs to take down even after a fatal assertion */
#define QST_N 6
static char *qst_vals[QST_N];

static int qst_rmtree(const char *dir)
{
    return nftw(dir, qst_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes a fresh spool directory in buf (the root on first use). */
static int qst_mkdir(char *buf, size_t len)
{
    if (!qst_root[0]) {
        snprintf(qst_root, sizeof(qst_root), "/tmp/postern-qstore-XXXXXX");
        if (!mkdtemp(qst_root)) {
            qst_root[0] = 0;
            return -1;
        }
    }
    if ((size_t)snprintf(buf, len, "%s/t-XXXXXX", qst_root) >= len)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static int qst_suite_clean(void)
{
    int rc = 0;

    for (int i = 0; i < QST_N; i++) {
        free(qst_vals[i]);
        qst_vals[i] = NULL;
    }

    if (qst_mounted[0])
        umount2(qst_mounted, MNT_DETACH);
    qst_mounted[0] = 0;
    if (qst_root[0])
        rc = qst_rmtree(qst_root);
    qst_root[0] = 0;
    return rc == 0 ? 0 : -1;
}

static void qst_seen_init(struct qst_seen *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap;
    s->ids = calloc(cap, sizeof(*s->ids));
    s->vals = calloc(cap, sizeof(*s->vals));
    s->lens = calloc(cap, sizeof(*s->lens));
    if (!s->ids || !s->vals || !s->lens)
        s->bad = 1;
}

static void qst_seen_free(struct qst_seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->vals[i]);
    free(s->ids);
    free(s->vals);
    free(s->lens);
    memset(s, 0, sizeof(*s));
}

/* Copies each record: the pointers are valid only during the visit. */
static int qst_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct qst_seen *s = arg;

    if (s->bad || s->n == s->cap || strlen(qid) != QID_LEN) {
        s->bad = 1;
        return 1;
    }
    memcpy(s->ids[s->n], qid, QID_LEN + 1);
    s->vals[s->n] = malloc(len + 1);
    if (!s->vals[s->n]) {
        s->bad = 1;
        return 1;
    }
    if (len)
        memcpy(s->vals[s->n], val, len);
    s->vals[s->n][len] = 0;
    s->lens[s->n] = len;
    s->n++;
    return s->stop_at && s->n >= s->stop_at;
}

/* Test records: ids given out of order, whole records (qrec_encode) of
 * varied recipient counts, made once by qst_make(). */
static const char *const qst_ids[QST_N] = {
    "00000000000C", "000000000005", "000000000Z00", "000000000100", "000000000009", "00000000000A",
};
static const int qst_nrcpt[QST_N] = { 1, 3, 1, 7, 2, 1 };
static size_t qst_lens[QST_N];
/* The same records in id order (indexes into the arrays above). */
static const int qst_order[QST_N] = { 1, 4, 5, 0, 3, 2 };

/* Encodes a record for qid with n recipients r0..r(n-1)@tag.example into a
 * malloc'ed buffer. */
static char *qst_record(const char *qid, int n, const char *tag, size_t *len)
{
    struct qrec r;
    struct ipc_out m;
    char a[128];
    char *out = NULL;

    qrec_init(&r);
    snprintf(r.qid, sizeof(r.qid), "%s", qid);
    snprintf(r.sender, sizeof(r.sender), "sender-%.20s@example.org", tag);
    strcpy(r.proto, "ESMTP");
    r.arrival = 1764400000;
    r.size = 1000;
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof(a), "r%d@%s.example", i, tag);
        if (qrec_add_rcpt(&r, a) < 0)
            goto out;
    }
    ipc_body_begin(&m);
    qrec_encode(&r, &m);
    if (ipc_out_finish(&m) == 0 && (out = malloc(m.b.len))) {
        memcpy(out, buf_head(&m.b), m.b.len);
        *len = m.b.len;
    }
    ipc_out_free(&m);
out:
    qrec_free(&r);
    return out;
}

static int qst_make(void)
{
    for (int i = 0; i < QST_N; i++) {
        char tag[32];
        if (qst_vals[i])
            continue;
        snprintf(tag, sizeof(tag), "m%d", i);
        if (!(qst_vals[i] = qst_record(qst_ids[i], qst_nrcpt[i], tag, &qst_lens[i])))
            return -1;
    }
    return 0;
}

/* How many recipients the schedule holds, whenever due. */
static long qst_count_due(struct qstore *q)
{
    struct qstore_due d[64];
    long n = 0, got;
    struct qstore_due after;
    int first = 1;

    while ((got = qstore_scan_due(q, UINT64_MAX, first ? NULL : &after, d, 64)) > 0) {
        n += got;
        after = d[got - 1];
        first = 0;
    }
    return got < 0 ? -1 : n;
}

static int qst_put_all(struct qstore *q)
{
    struct qstore_item items[QST_N];
    char err[256] = "";
    int rc;

    if (qst_make() < 0)
        return -1;
    for (int i = 0; i < QST_N; i++) {
        items[i].qid = qst_ids[i];
        items[i].val = qst_vals[i];
        items[i].len = qst_lens[i];
    }
    rc = qstore_put_batch(q, items, QST_N, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\nput_batch: %s\n", err);
    return rc;
}

/* Asserts that s holds records qst_order[first..first+count) in order. */
static void qst_expect(const struct qst_seen *s, int first, int count)
{
    CU_ASSERT_FALSE(s->bad);
    CU_ASSERT_EQUAL(s->n, (size_t)count);
    if (s->n != (size_t)count)
        return;
    for (int i = 0; i < count; i++) {
        int k = qst_order[first + i];
        CU_ASSERT_STRING_EQUAL(s->ids[i], qst_ids[k]);
        CU_ASSERT_EQUAL(s->lens[i], qst_lens[k]);
        if (s->lens[i] == qst_lens[k])
            CU_ASSERT(memcmp(s->vals[i], qst_vals[k], qst_lens[k]) == 0);
    }
}

static struct qstore *qst_open(const char *dir, int readonly)
{
    struct qstore *q = NULL;
    char err[512] = "";

    if (qstore_open(&q, dir, readonly, err, sizeof(err)) != 0) {
        fprintf(stderr, "\nqstore_open %s: %s\n", dir, err);
        return NULL;
    }
    return q;
}

static void test_qs_open_create(void)
{
    char dir[96], path[128], id[QID_LEN + 1] = "unchanged";
    struct qstore *q;
    struct qst_seen s;
    struct stat st;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        snprintf(path, sizeof(path), "%s/%s", dir, QSTORE_DIR);
        CU_ASSERT(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
        snprintf(path, sizeof(path), "%s/%s/data.mdb", dir, QSTORE_DIR);
        CU_ASSERT(stat(path, &st) == 0 && S_ISREG(st.st_mode));
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 1);
        qst_seen_init(&s, 4);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), 0);
        CU_ASSERT_EQUAL(s.n, 0);
        qst_seen_free(&s);
        qstore_close(q);
    }
    /* Opening again for writing an existing index also works. */
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    qstore_close(q);
    qstore_close(NULL);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_put_scan(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N);
        qst_expect(&s, 0, QST_N);
        qst_seen_free(&s);

        /* A second batch replaces one record (by one with fewer
         * recipients) and adds one. */
        {
            size_t l9 = 0, l1 = 0;
            char *v9 = qst_record("000000000009", 1, "new9", &l9);
            char *v1 = qst_record("000000000001", 2, "one", &l1);
            struct qstore_item items[2] = {
                { "000000000009", v9, l9 },
                { "000000000001", v1, l1 },
            };
            char err[256] = "";
            CU_ASSERT_FATAL(v9 && v1);
            CU_ASSERT_EQUAL(qstore_put_batch(q, items, 2, err, sizeof(err)), 0);
            qst_seen_init(&s, 16);
            CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N + 1);
            CU_ASSERT_EQUAL(s.n, QST_N + 1);
            if (s.n == QST_N + 1) {
                CU_ASSERT_STRING_EQUAL(s.ids[0], "000000000001");
                CU_ASSERT(s.lens[0] == l1 && memcmp(s.vals[0], v1, l1) == 0);
                CU_ASSERT_STRING_EQUAL(s.ids[2], "000000000009");
                CU_ASSERT(s.lens[2] == l9 && memcmp(s.vals[2], v9, l9) == 0);
            }
            qst_seen_free(&s);
            /* the replaced record's second recipient is gone, schedule too */
            CU_ASSERT_EQUAL(qst_count_due(q), 1 + 3 + 1 + 7 + 1 + 1 + 2);
            free(v9);
            free(v1);
        }
        /* An empty batch is fine and changes nothing. */
        {
            char err[256] = "";
            CU_ASSERT_EQUAL(qstore_put_batch(q, NULL, 0, err, sizeof(err)), 0);
            qst_seen_init(&s, 16);
            CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N + 1);
            qst_seen_free(&s);
        }
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_scan_after(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        /* after an existing id: starts with the next one */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000009", qst_visit, &s), 4);
        qst_expect(&s, 2, 4);
        qst_seen_free(&s);
        /* after the first */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000005", qst_visit, &s), 5);
        qst_expect(&s, 1, 5);
        qst_seen_free(&s);
        /* after an id that is not stored: starts with the next greater one */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "00000000000B", qst_visit, &s), 3);
        qst_expect(&s, 3, 3);
        qst_seen_free(&s);
        /* after something below every id: all */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000000", qst_visit, &s), QST_N);
        qst_expect(&s, 0, QST_N);
        qst_seen_free(&s);
        /* after the last, and after everything: none */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000Z00", qst_visit, &s), 0);
        CU_ASSERT_EQUAL(qstore_scan(q, "ZZZZZZZZZZZZ", qst_visit, &s), 0);
        CU_ASSERT_EQUAL(s.n, 0);
        qst_seen_free(&s);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_visitor_stops(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        qst_seen_init(&s, 16);
        s.stop_at = 2;
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), 2);
        qst_expect(&s, 0, 2);
        qst_seen_free(&s);
        qst_seen_init(&s, 16);
        s.stop_at = 1;
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000009", qst_visit, &s), 1);
        qst_expect(&s, 2, 1);
        qst_seen_free(&s);
        /* A stopped scan leaves the store usable: a write and a full scan. */
        CU_ASSERT_EQUAL(qstore_delete(q, "000000000005"), 0);
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N - 1);
        qst_expect(&s, 1, QST_N - 1);
        qst_seen_free(&s);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_delete(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qstore_delete(q, "000000000009"), 1); /* empty store */
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        CU_ASSERT_EQUAL(qstore_delete(q, "00000000000C"), 0);
        CU_ASSERT_EQUAL(qstore_delete(q, "00000000000C"), 1);
        CU_ASSERT_EQUAL(qstore_delete(q, "00000000000B"), 1); /* never there */
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N - 1);
        CU_ASSERT_EQUAL(s.n, QST_N - 1); /* ids[] is zeroed, so reading past n is safe */
        for (size_t i = 0; i < s.n; i++)
            CU_ASSERT_STRING_NOT_EQUAL(s.ids[i], "00000000000C");
        CU_ASSERT_STRING_EQUAL(s.ids[2], "00000000000A");
        CU_ASSERT_STRING_EQUAL(s.ids[3], "000000000100");
        qst_seen_free(&s);
        /* delete everything: empty again */
        for (int i = 0; i < QST_N; i++)
            CU_ASSERT_EQUAL(qstore_delete(q, qst_ids[i]), i == 0 ? 1 : 0);
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), 0);
        qst_seen_free(&s);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_last_id(void)
{
    char dir[96], id[QID_LEN + 1];
    struct qstore *q;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 1);
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        memset(id, 'x', sizeof(id));
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
        CU_ASSERT_STRING_EQUAL(id, "000000000Z00");
        CU_ASSERT_EQUAL(qstore_delete(q, "000000000Z00"), 0);
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
        CU_ASSERT_STRING_EQUAL(id, "000000000100");
        /* last_id feeds qid_init: the next id sorts after everything stored */
        qid_init(id);
        {
            char next[QID_LEN + 1];
            qid_next_at(0, next);
            CU_ASSERT(strcmp(next, id) > 0);
        }
        qid_init(NULL);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_reopen(void)
{
    char dir[96], id[QID_LEN + 1];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        CU_ASSERT_EQUAL(qstore_delete(q, "000000000Z00"), 0);
        qstore_close(q);
    }
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N - 1);
        qst_expect(&s, 0, QST_N - 1);
        qst_seen_free(&s);
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
        CU_ASSERT_STRING_EQUAL(id, "000000000100");
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* mailq's case: an existing index opened read-only, the writer gone. */
static void test_qs_readonly_existing(void)
{
    char dir[96], id[QID_LEN + 1], err[256];
    struct qstore *q;
    struct qst_seen s;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qst_put_all(q), 0);
        qstore_close(q);
    }
    q = qst_open(dir, 1);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N);
        qst_expect(&s, 0, QST_N);
        qst_seen_free(&s);
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, "000000000009", qst_visit, &s), 4);
        qst_expect(&s, 2, 4);
        qst_seen_free(&s);
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
        CU_ASSERT_STRING_EQUAL(id, "000000000Z00");
        /* Writes are refused, with a message, and change nothing. */
        {
            struct qstore_item item = { "000000000005", qst_vals[1], qst_lens[1] };
            err[0] = 0;
            CU_ASSERT_EQUAL(qstore_put_batch(q, &item, 1, err, sizeof(err)), -1);
            CU_ASSERT(err[0] != 0);
        }
        CU_ASSERT_EQUAL(qstore_delete(q, "000000000005"), -1);
        qst_seen_init(&s, 16);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N);
        qst_seen_free(&s);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_open_missing(void)
{
    char dir[96], missing[128], err[512];
    struct qstore *q = NULL;
    struct stat st;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    /* read-only: an empty spool (no index/) is an error and nothing is made */
    memset(err, 0, sizeof(err));
    CU_ASSERT_EQUAL(qstore_open(&q, dir, 1, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(q);
    CU_ASSERT(err[0] != 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, dir));
    snprintf(missing, sizeof(missing), "%s/%s", dir, QSTORE_DIR);
    CU_ASSERT(stat(missing, &st) != 0);
    /* read-only: a spool that does not exist at all */
    snprintf(missing, sizeof(missing), "%s/no-such-spool", dir);
    memset(err, 0, sizeof(err));
    CU_ASSERT_EQUAL(qstore_open(&q, missing, 1, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(q);
    CU_ASSERT(err[0] != 0);
    CU_ASSERT(stat(missing, &st) != 0);
    /* writable: a spool whose parent is missing cannot be created */
    snprintf(missing, sizeof(missing), "%s/no/such/spool", dir);
    memset(err, 0, sizeof(err));
    CU_ASSERT_EQUAL(qstore_open(&q, missing, 0, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(q);
    CU_ASSERT(err[0] != 0);
    /* a tiny err buffer is still terminated */
    {
        char small[8];
        memset(small, 'x', sizeof(small));
        CU_ASSERT_EQUAL(qstore_open(&q, missing, 1, small, sizeof(small)), -1);
        CU_ASSERT(memchr(small, 0, sizeof(small)) != NULL);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static int qst_cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_qs_big_batch(void)
{
    enum { N = 10000 };
    char dir[96], err[256] = "", id[QID_LEN + 1];
    char (*ids)[QID_LEN + 1] = calloc(N, sizeof(*ids));
    char (*sorted)[QID_LEN + 1] = calloc(N, sizeof(*sorted));
    char **vals = calloc(N, sizeof(*vals));
    size_t *lens = calloc(N, sizeof(*lens));
    struct qstore_item *items = calloc(N, sizeof(*items));
    struct qstore *q;
    struct qst_seen s;
    size_t i, wrong = 0;

    CU_ASSERT_FATAL(ids && sorted && vals && lens && items);
    qid_init(NULL);
    for (i = 0; i < N; i++)
        qid_next_at(1700000000000000ull + i * 37, ids[i]);
    qid_init(NULL);
    memcpy(sorted, ids, N * sizeof(*ids));
    /* Insert in a scrambled order; the scan must still come out sorted. */
    for (i = 0; i < N; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "v%zu", i);
        vals[i] = qst_record(ids[i], 1, tag, &lens[i]);
        CU_ASSERT_FATAL(vals[i] != NULL);
    }
    for (i = 0; i < N; i++) {
        size_t k = (i * 7919) % N; /* 7919 is prime, so this permutes 0..N-1 */
        items[i].qid = ids[k];
        items[i].len = lens[k];
        items[i].val = vals[k];
    }
    qsort(sorted, N, sizeof(*sorted), qst_cmp_id);
    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qstore_put_batch(q, items, N, err, sizeof(err)), 0);
        qst_seen_init(&s, N + 1);
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), N);
        CU_ASSERT_FALSE(s.bad);
        CU_ASSERT_EQUAL(s.n, N);
        for (i = 0; i < s.n && i < N; i++) {
            /* ids[i] increase with i */
            if (strcmp(s.ids[i], sorted[i]) != 0 || strcmp(s.ids[i], ids[i]) != 0 ||
                s.lens[i] != lens[i] || memcmp(s.vals[i], vals[i], lens[i]) != 0)
                wrong++;
        }
        CU_ASSERT_EQUAL(wrong, 0);
        qst_seen_free(&s);
        CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
        CU_ASSERT_STRING_EQUAL(id, ids[N - 1]);
        qst_seen_init(&s, N + 1);
        CU_ASSERT_EQUAL(qstore_scan(q, ids[N - 101], qst_visit, &s), 100);
        CU_ASSERT_EQUAL(s.n, 100);
        if (s.n == 100)
            CU_ASSERT_STRING_EQUAL(s.ids[0], ids[N - 100]);
        qst_seen_free(&s);
        qstore_close(q);
    }
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
    for (i = 0; i < N; i++)
        free(vals[i]);
    free(ids);
    free(sorted);
    free(vals);
    free(lens);
    free(items);
}

/* ---- layout 2 ---- */

/* A fresh store holding the test records, or NULL. */
static struct qstore *qst_filled(char *dir, size_t len)
{
    struct qstore *q;

    if (qst_mkdir(dir, len) < 0 || !(q = qst_open(dir, 0)))
        return NULL;
    if (qst_put_all(q) != 0) {
        qstore_close(q);
        return NULL;
    }
    return q;
}

/* Raw LMDB view of a store, to check what is on disk. */
struct qst_raw {
    MDB_env *env;
    MDB_txn *txn;
};

static int qst_raw_open(struct qst_raw *r, const char *dir, int write)
{
    char path[160];

    snprintf(path, sizeof(path), "%s/%s", dir, QSTORE_DIR);
    memset(r, 0, sizeof(*r));
    if (mdb_env_create(&r->env) != 0)
        return -1;
    mdb_env_set_maxdbs(r->env, 8);
    mdb_env_set_mapsize(r->env, (size_t)64 << 20);
    if (mdb_env_open(r->env, path, 0, 0600) != 0 ||
        mdb_txn_begin(r->env, NULL, write ? 0 : MDB_RDONLY, &r->txn) != 0) {
        mdb_env_close(r->env);
        return -1;
    }
    return 0;
}

static int qst_raw_close(struct qst_raw *r, int commit)
{
    int rc = commit ? mdb_txn_commit(r->txn) : (mdb_txn_abort(r->txn), 0);

    mdb_env_close(r->env);
    return rc;
}

/* Entries in a named database (NULL: the main one), or -1. */
static long qst_raw_count(struct qst_raw *r, const char *name)
{
    MDB_dbi dbi;
    MDB_stat st;

    if (mdb_dbi_open(r->txn, name, 0, &dbi) != 0 || mdb_stat(r->txn, dbi, &st) != 0)
        return -1;
    return (long)st.ms_entries;
}

static void test_qs_layout_on_disk(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_raw r;

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qstore_close(q);
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 0), 0);
    /* the main database holds the four names and nothing else */
    {
        MDB_dbi main;
        MDB_cursor *c;
        MDB_val k, v;
        const char *want[] = { "env", "meta", "rcpt", "sched" };
        int n = 0;

        CU_ASSERT_FATAL(mdb_dbi_open(r.txn, NULL, 0, &main) == 0);
        CU_ASSERT_FATAL(mdb_cursor_open(r.txn, main, &c) == 0);
        for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            CU_ASSERT(n < 4 && k.mv_size == strlen(want[n]) && memcmp(k.mv_data, want[n], k.mv_size) == 0);
            n++;
        }
        CU_ASSERT_EQUAL(n, 4);
        mdb_cursor_close(c);
    }
    CU_ASSERT_EQUAL(qst_raw_count(&r, "env"), QST_N);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "rcpt"), 1 + 3 + 1 + 7 + 2 + 1);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "sched"), 1 + 3 + 1 + 7 + 2 + 1);
    /* meta: layout 2, big-endian */
    {
        MDB_dbi meta;
        MDB_val k = { 6, "layout" }, v;
        CU_ASSERT_FATAL(mdb_dbi_open(r.txn, "meta", 0, &meta) == 0);
        CU_ASSERT_FATAL(mdb_get(r.txn, meta, &k, &v) == 0);
        CU_ASSERT(v.mv_size == 4 && memcmp(v.mv_data, "\0\0\0\2", 4) == 0);
    }
    /* recipient keys: qid + big-endian index; schedule keys: 8-byte time first */
    {
        MDB_dbi d;
        MDB_cursor *c;
        MDB_val k, v;
        CU_ASSERT_FATAL(mdb_dbi_open(r.txn, "rcpt", 0, &d) == 0);
        CU_ASSERT_FATAL(mdb_cursor_open(r.txn, d, &c) == 0);
        CU_ASSERT(mdb_cursor_get(c, &k, &v, MDB_LAST) == 0);
        CU_ASSERT(k.mv_size == QID_LEN + 4 && memcmp(k.mv_data, "000000000Z00\0\0\0\0", QID_LEN + 4) == 0);
        CU_ASSERT(mdb_cursor_get(c, &k, &v, MDB_PREV) == 0);
        CU_ASSERT(k.mv_size == QID_LEN + 4 && memcmp(k.mv_data, "000000000100\0\0\0\6", QID_LEN + 4) == 0);
        mdb_cursor_close(c);
        CU_ASSERT_FATAL(mdb_dbi_open(r.txn, "sched", 0, &d) == 0);
        CU_ASSERT_FATAL(mdb_cursor_open(r.txn, d, &c) == 0);
        CU_ASSERT(mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0);
        CU_ASSERT(k.mv_size == 8 + QID_LEN + 4 &&
                  memcmp(k.mv_data, "\0\0\0\0\0\0\0\0" "000000000005\0\0\0\0", k.mv_size) == 0);
        CU_ASSERT_EQUAL(v.mv_size, 0);
        mdb_cursor_close(c);
    }
    qst_raw_close(&r, 0);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_bad_record_refused(void)
{
    char dir[96], err[256] = "";
    struct qstore *q;
    struct qst_seen s;
    size_t l1 = 0, l2 = 0;
    char *v1 = qst_record("000000000001", 1, "ok", &l1);
    char *v2 = qst_record("000000000003", 1, "other", &l2);

    CU_ASSERT_FATAL(v1 && v2);
    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    {
        struct qstore_item items[2] = { { "000000000001", v1, l1 }, { "000000000002", "garbage", 7 } };
        CU_ASSERT_EQUAL(qstore_put_batch(q, items, 2, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "000000000002"));
    }
    {
        /* a record that names another id than its key */
        struct qstore_item items[1] = { { "000000000002", v2, l2 } };
        CU_ASSERT_EQUAL(qstore_put_batch(q, items, 1, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "another id"));
    }
    /* nothing of either batch was stored */
    qst_seen_init(&s, 4);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), 0);
    qst_seen_free(&s);
    CU_ASSERT_EQUAL(qst_count_due(q), 0);
    qstore_close(q);
    free(v1);
    free(v2);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static int qst_due_is(const struct qstore_due *d, uint64_t t, const char *qid, uint32_t i)
{
    return d->next_try == t && strcmp(d->qid, qid) == 0 && d->rcpt == i;
}

static void test_qs_update_and_due(void)
{
    char dir[96], err[256] = "";
    struct qstore *q;
    struct qstore_due d[16], after;
    struct qrec r;
    struct qrcpt rc;
    size_t missing = 99;

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    /* everything is due at once, in id then recipient order */
    CU_ASSERT_EQUAL(qstore_scan_due(q, 0, NULL, d, 16), 15);
    CU_ASSERT(qst_due_is(&d[0], 0, "000000000005", 0));
    CU_ASSERT(qst_due_is(&d[2], 0, "000000000005", 2));
    CU_ASSERT(qst_due_is(&d[3], 0, "000000000009", 0));
    CU_ASSERT(qst_due_is(&d[14], 0, "000000000Z00", 0));
    /* a limit, then on from the last one returned */
    CU_ASSERT_EQUAL(qstore_scan_due(q, 0, NULL, d, 2), 2);
    after = d[1];
    CU_ASSERT_EQUAL(qstore_scan_due(q, 0, &after, d, 2), 2);
    CU_ASSERT(qst_due_is(&d[0], 0, "000000000005", 2));
    CU_ASSERT(qst_due_is(&d[1], 0, "000000000009", 0));
    {
        struct qstore_rcpt_update u[3] = {
            { "000000000005", 1, RCPT_DEFERRED, 1, 1000, "4.4.1", "connect to mx[192.0.2.1]:25: Connection refused", NULL, 0 },
            { "000000000009", 0, RCPT_SENT, 1, 0, "2.0.0", "250 2.0.0 Ok", NULL, 0 },
            { "00000000000B", 0, RCPT_SENT, 1, 0, "2.0.0", NULL, NULL, 0 }, /* no such message */
        };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, u, 3, &missing, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(missing, 1);
    }
    CU_ASSERT_EQUAL(qstore_undelivered(q, "000000000005"), 3);
    CU_ASSERT_EQUAL(qstore_undelivered(q, "000000000009"), 1);
    CU_ASSERT_EQUAL(qstore_undelivered(q, "00000000000B"), 0);
    CU_ASSERT_EQUAL(qstore_undelivered(q, "bad"), -1);
    {
        struct qstore_rcpt_update u = { "000000000009", 1, RCPT_BOUNCED, 1, 0, "5.1.1", "550 5.1.1 no such user", NULL, 0 };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(qstore_undelivered(q, "000000000009"), 0); /* the last one: the message can go */
        u.status = RCPT_DEFERRED; /* (back as it was for the rest of the test) */
        u.next_try = 0;
        u.dsn[0] = 0;
        u.reply = NULL;
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
    }
    /* 5#1 moved to 1000, 9#0 left the schedule */
    CU_ASSERT_EQUAL(qstore_scan_due(q, 999, NULL, d, 16), 13);
    CU_ASSERT(qst_due_is(&d[0], 0, "000000000005", 0));
    CU_ASSERT(qst_due_is(&d[1], 0, "000000000005", 2));
    CU_ASSERT(qst_due_is(&d[2], 0, "000000000009", 1));
    CU_ASSERT_EQUAL(qstore_scan_due(q, 1000, NULL, d, 16), 14);
    CU_ASSERT(qst_due_is(&d[13], 1000, "000000000005", 1));
    /* the next attempt time of the queue, and nothing after the last */
    CU_ASSERT_EQUAL(qstore_scan_due(q, UINT64_MAX, &d[12], d + 14, 2), 1);
    CU_ASSERT(qst_due_is(&d[14], 1000, "000000000005", 1));
    CU_ASSERT_EQUAL(qstore_scan_due(q, UINT64_MAX, &d[13], d, 2), 0);
    /* the results are in the whole record, and in the recipient's own */
    CU_ASSERT_EQUAL_FATAL(qstore_get(q, "000000000005", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.nrcpt, 3);
    CU_ASSERT_EQUAL(r.rcpt[1].status, RCPT_DEFERRED);
    CU_ASSERT_EQUAL(r.rcpt[1].attempts, 1);
    CU_ASSERT_EQUAL(r.rcpt[1].next_try, 1000);
    CU_ASSERT_STRING_EQUAL(r.rcpt[1].dsn, "4.4.1");
    CU_ASSERT_STRING_EQUAL(r.rcpt[1].reply, "connect to mx[192.0.2.1]:25: Connection refused");
    CU_ASSERT_EQUAL(r.rcpt[0].status, RCPT_PENDING);
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "deferred");
    qrec_free(&r);
    CU_ASSERT_EQUAL(qstore_get_rcpt(q, "000000000009", 0, &rc), 0);
    CU_ASSERT_EQUAL(rc.status, RCPT_SENT);
    CU_ASSERT_STRING_EQUAL(rc.addr, "r0@m4.example");
    CU_ASSERT_STRING_EQUAL(rc.reply, "250 2.0.0 Ok");
    qrcpt_free(&rc);
    CU_ASSERT_EQUAL(qstore_get_rcpt(q, "000000000009", 2, &rc), 1);
    CU_ASSERT_EQUAL(qstore_get_rcpt(q, "00000000000B", 0, &rc), 1);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000B", &r, err, sizeof(err)), 1);
    qrec_free(&r);
    /* a bad result fails the whole call: the good one with it is not applied */
    {
        struct qstore_rcpt_update u[2] = {
            { "000000000005", 0, RCPT_BOUNCED, 1, 0, "5.1.1", "550 no", NULL, 0 },
            { "000000000005", 2, RCPT_DEFERRED, 1, 5, "9.9", NULL, NULL, 0 },
        };
        err[0] = 0;
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, u, 2, &missing, err, sizeof(err)), -1);
        CU_ASSERT(err[0] != 0);
        u[1].status = 7;
        u[1].dsn[0] = 0;
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, u, 2, &missing, err, sizeof(err)), -1);
        CU_ASSERT_EQUAL(qstore_get_rcpt(q, "000000000005", 0, &rc), 0);
        CU_ASSERT_EQUAL(rc.status, RCPT_PENDING);
        qrcpt_free(&rc);
    }
    /* a deferred recipient tried again: its entry moves, it is not copied */
    {
        struct qstore_rcpt_update u = { "000000000005", 1, RCPT_DEFERRED, 2, 3000, "4.4.1", NULL, NULL, 0 };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(qst_count_due(q), 14);
        CU_ASSERT_EQUAL(qstore_scan_due(q, 2999, NULL, d, 16), 13);
        CU_ASSERT_EQUAL(qstore_get_rcpt(q, "000000000005", 1, &rc), 0);
        CU_ASSERT_PTR_NULL(rc.reply); /* cleared */
        CU_ASSERT_EQUAL(rc.attempts, 2);
        qrcpt_free(&rc);
    }
    qstore_close(q);
    /* all of it survives a reopen */
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(qstore_scan_due(q, 3000, NULL, d, 16), 14);
    CU_ASSERT(qst_due_is(&d[13], 3000, "000000000005", 1));
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_flags_hold(void)
{
    char dir[96], err[256];
    struct qstore *q;
    struct qstore_due d[16];
    struct qrec r;

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    {
        struct qstore_rcpt_update u[2] = {
            { "000000000100", 3, RCPT_DEFERRED, 1, 500, "4.4.1", NULL, NULL, 0 },
            { "000000000100", 4, RCPT_SENT, 1, 0, "2.0.0", NULL, NULL, 0 },
        };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, u, 2, NULL, err, sizeof(err)), 0);
    }
    CU_ASSERT_EQUAL(qst_count_due(q), 14);
    /* holding takes the message out of the schedule */
    CU_ASSERT_EQUAL(qstore_set_flags(q, "000000000100", QF_HOLD, 0), 0);
    CU_ASSERT_EQUAL(qst_count_due(q), 8);
    CU_ASSERT_EQUAL(qstore_get(q, "000000000100", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.flags, QF_HOLD);
    CU_ASSERT_STRING_EQUAL(qrec_queue_name(&r), "hold");
    qrec_free(&r);
    /* a result for a held message does not schedule it */
    {
        struct qstore_rcpt_update u = { "000000000100", 0, RCPT_DEFERRED, 1, 600, "4.4.1", NULL, NULL, 0 };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
    }
    CU_ASSERT_EQUAL(qst_count_due(q), 8);
    CU_ASSERT_EQUAL(qstore_set_flags(q, "000000000100", QF_HOLD, 0), 0); /* again: no change */
    CU_ASSERT_EQUAL(qst_count_due(q), 8);
    /* releasing puts back the undelivered ones, at their times */
    CU_ASSERT_EQUAL(qstore_set_flags(q, "000000000100", 0, QF_HOLD), 0);
    CU_ASSERT_EQUAL(qst_count_due(q), 14);
    CU_ASSERT_EQUAL(qstore_scan_due(q, UINT64_MAX, NULL, d, 16), 14);
    CU_ASSERT(qst_due_is(&d[12], 500, "000000000100", 3));
    CU_ASSERT(qst_due_is(&d[13], 600, "000000000100", 0));
    /* damaged: held too; releasing clears both */
    CU_ASSERT_EQUAL(qstore_set_flags(q, "00000000000A", QF_DAMAGED, 0), 0);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.flags, QF_DAMAGED | QF_HOLD);
    qrec_free(&r);
    CU_ASSERT_EQUAL(qst_count_due(q), 13);
    CU_ASSERT_EQUAL(qstore_set_flags(q, "00000000000A", 0, QF_HOLD), 0);
    CU_ASSERT_EQUAL(qstore_get(q, "00000000000A", &r, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.flags, 0);
    qrec_free(&r);
    CU_ASSERT_EQUAL(qst_count_due(q), 14);
    /* not found, bad id, unknown flag */
    CU_ASSERT_EQUAL(qstore_set_flags(q, "00000000000B", QF_HOLD, 0), 1);
    CU_ASSERT_EQUAL(qstore_set_flags(q, "bad", QF_HOLD, 0), -1);
    CU_ASSERT_EQUAL(qstore_set_flags(q, "00000000000A", 1u << 20, 0), -1);
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* Removing a message removes its envelope, recipients and schedule entries. */
static void test_qs_delete_whole(void)
{
    char dir[96];
    struct qstore *q;
    struct qst_raw r;
    char err[256];

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    {
        struct qstore_rcpt_update u = { "000000000100", 2, RCPT_DEFERRED, 1, 77, "4.4.1", "x", NULL, 0 };
        CU_ASSERT_EQUAL(qstore_update_rcpts(q, &u, 1, NULL, err, sizeof(err)), 0);
    }
    CU_ASSERT_EQUAL(qstore_delete(q, "000000000100"), 0);
    CU_ASSERT_EQUAL(qstore_delete(q, "000000000100"), 1);
    CU_ASSERT_EQUAL(qst_count_due(q), 15 - 7);
    qstore_close(q);
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 0), 0);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "env"), QST_N - 1);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "rcpt"), 15 - 7);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "sched"), 15 - 7);
    qst_raw_close(&r, 0);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* Writes a layout-1 store by hand: whole records in the main database. */
static int qst_write_v1(const char *dir, int with_garbage)
{
    char path[160];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;

    if (qst_make() < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir, QSTORE_DIR);
    if (mkdir(path, 0700) < 0 || mdb_env_create(&env) != 0)
        return -1;
    mdb_env_set_mapsize(env, (size_t)16 << 20);
    if ((rc = mdb_env_open(env, path, 0, 0600)) == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        for (int i = 0; i < QST_N && rc == 0; i++) {
            MDB_val k = { QID_LEN, (void *)qst_ids[i] }, v = { qst_lens[i], qst_vals[i] };
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        if (rc == 0 && with_garbage) {
            MDB_val k = { QID_LEN, "000000000007" }, v = { 9, "not a rec" };
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    mdb_env_close(env);
    return rc == 0 ? 0 : -1;
}

static void test_qs_migrate_v1(void)
{
    char dir[96], id[QID_LEN + 1];
    struct qstore *q;
    struct qst_seen s;
    struct qst_raw r;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    CU_ASSERT_EQUAL_FATAL(qst_write_v1(dir, 1), 0);
    /* read-only (mailq, postern check): read where it is, not migrated */
    q = qst_open(dir, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qst_seen_init(&s, 16);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N + 1);
    qst_seen_free(&s);
    qst_seen_init(&s, 16);
    CU_ASSERT_EQUAL(qstore_scan(q, "000000000007", qst_visit, &s), QST_N - 1);
    qst_expect(&s, 1, QST_N - 1);
    qst_seen_free(&s);
    CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
    CU_ASSERT_STRING_EQUAL(id, "000000000Z00");
    qstore_close(q);
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 0), 0);
    CU_ASSERT_EQUAL(qst_raw_count(&r, NULL), QST_N + 1);
    qst_raw_close(&r, 0);
    /* writable: migrated, and every record reads back byte for byte */
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qst_seen_init(&s, 16);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N + 1);
    CU_ASSERT_EQUAL(s.n, QST_N + 1);
    if (s.n == QST_N + 1) {
        /* the unreadable one is kept as it was, between 5 and 9 */
        CU_ASSERT_STRING_EQUAL(s.ids[1], "000000000007");
        CU_ASSERT(s.lens[1] == 9 && memcmp(s.vals[1], "not a rec", 9) == 0);
    }
    qst_seen_free(&s);
    qst_seen_init(&s, 16);
    CU_ASSERT_EQUAL(qstore_scan(q, "000000000007", qst_visit, &s), QST_N - 1);
    qst_expect(&s, 1, QST_N - 1);
    qst_seen_free(&s);
    CU_ASSERT_EQUAL(qst_count_due(q), 15);
    CU_ASSERT_EQUAL(qstore_last_id(q, id), 0);
    CU_ASSERT_STRING_EQUAL(id, "000000000Z00");
    CU_ASSERT_EQUAL(qstore_delete(q, "000000000007"), 0);
    qstore_close(q);
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 0), 0);
    CU_ASSERT_EQUAL(qst_raw_count(&r, NULL), 4); /* only the names */
    CU_ASSERT_EQUAL(qst_raw_count(&r, "env"), QST_N);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "rcpt"), 15);
    qst_raw_close(&r, 0);
    /* opened again: layout 2 as it is */
    q = qst_open(dir, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qst_seen_init(&s, 16);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), QST_N);
    qst_expect(&s, 0, QST_N);
    qst_seen_free(&s);
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static void test_qs_newer_layout_refused(void)
{
    char dir[96], err[512];
    struct qstore *q = NULL;
    struct qst_raw r;

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qstore_close(q);
    q = NULL;
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 1), 0);
    {
        MDB_dbi meta;
        MDB_val k = { 6, "layout" }, v = { 4, "\0\0\0\3" };
        CU_ASSERT_FATAL(mdb_dbi_open(r.txn, "meta", 0, &meta) == 0);
        CU_ASSERT_FATAL(mdb_put(r.txn, meta, &k, &v, 0) == 0);
    }
    CU_ASSERT_EQUAL_FATAL(qst_raw_close(&r, 1), 0);
    for (int ro = 0; ro <= 1; ro++) {
        err[0] = 0;
        CU_ASSERT_EQUAL(qstore_open(&q, dir, ro, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(q);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "layout version 3, newer"));
    }
    /* and it was left alone */
    CU_ASSERT_EQUAL_FATAL(qst_raw_open(&r, dir, 0), 0);
    CU_ASSERT_EQUAL(qst_raw_count(&r, "env"), QST_N);
    qst_raw_close(&r, 0);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* One record of n recipients with long addresses (about 100 bytes each). */
static char *qst_big_record(const char *qid, int n, size_t *len)
{
    char tag[96];

    snprintf(tag, sizeof(tag), "a-rather-long-label-to-make-records-bigger.another-label.%.12s", qid);
    return qst_record(qid, n, tag, len);
}

/* Stores record number b (id from stamp b, nrcpt long recipients) alone in
 * a batch; its id in qid. put_batch's result, or -1 when out of memory. */
static int qst_put_big(struct qstore *q, int b, int nrcpt, char qid[QID_LEN + 1], char *err, size_t errlen)
{
    size_t len = 0;
    char *v;
    int rc;

    qid_next_at(1700000000000000ull + (uint64_t)b, qid);
    if (!(v = qst_big_record(qid, nrcpt, &len)))
        return -1;
    struct qstore_item it = { qid, v, len };
    if (errlen)
        err[0] = 0;
    rc = qstore_put_batch(q, &it, 1, err, errlen);
    free(v);
    return rc;
}

static void test_qs_map_grows(void)
{
    enum { BATCHES = 30, RCPTS = 1000 };
    char dir[96], path[160], err[256] = "", qid[QID_LEN + 1];
    struct qstore *q;
    struct qst_seen s;
    struct stat st;
    int ok = 0;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(qstore_set_map_size(q, 1 << 20), 0);
    qid_init(NULL);
    for (int b = 0; b < BATCHES; b++) {
        int rc = qst_put_big(q, b, RCPTS, qid, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "\nbatch %d: %d %s\n", b, rc, err);
        ok += rc == 0;
    }
    qid_init(NULL);
    CU_ASSERT_EQUAL(ok, BATCHES);
    snprintf(path, sizeof(path), "%s/%s/data.mdb", dir, QSTORE_DIR);
    CU_ASSERT(stat(path, &st) == 0 && st.st_size > 4 << 20); /* well past the 1 MiB map */
    qst_seen_init(&s, BATCHES + 1);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), BATCHES);
    qst_seen_free(&s);
    CU_ASSERT_EQUAL(qst_count_due(q), BATCHES * RCPTS);
    qstore_close(q);
    /* a reader opens it at the size the writer grew it to */
    q = qst_open(dir, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    qst_seen_init(&s, BATCHES + 1);
    CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_visit, &s), BATCHES);
    qst_seen_free(&s);
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* Every record decodes and the count is as expected. */
static int qst_decode_all(const char *qid, const void *val, size_t len, void *arg)
{
    struct qrec r;
    char err[256];

    (void)qid;
    if (qrec_decode(val, len, &r, err, sizeof(err)) < 0)
        *(long *)arg = -1000000;
    else
        ++*(long *)arg;
    qrec_free(&r);
    return 0;
}

/*
 * A really full disk: a small tmpfs (root only). The map starts at 1 MiB
 * and grows until the filesystem is full; then put_batch says QSTORE_EFULL,
 * leaves the store as it was, and works again once space is freed.
 */
static void test_qs_full_disk(void)
{
    char dir[96], mnt[128], filler[160], err[256], qid[QID_LEN + 1];
    struct qstore *q;
    int stored = 0, rc = 0, b;
    long seen = 0;
    FILE *f;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    snprintf(mnt, sizeof(mnt), "%s/small", dir);
    CU_ASSERT_FATAL(mkdir(mnt, 0700) == 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") < 0) {
        fprintf(stderr, "\n  (full disk test skipped: cannot mount a tmpfs here)\n");
        CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
        return;
    }
    snprintf(qst_mounted, sizeof(qst_mounted), "%s", mnt);
    /* a filler eats half of it, to be freed later */
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    f = fopen(filler, "w");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        static char chunk[65536];
        for (int i = 0; i < 32; i++)
            fwrite(chunk, 1, sizeof(chunk), f);
        CU_ASSERT(fclose(f) == 0);
    }
    q = qst_open(mnt, 0);
    CU_ASSERT_PTR_NOT_NULL(q);
    if (q) {
        CU_ASSERT_EQUAL(qstore_set_map_size(q, 1 << 20), 0);
        qid_init(NULL);
        for (b = 0; b < 100; b++) {
            if ((rc = qst_put_big(q, b, 1000, qid, err, sizeof(err))) != 0)
                break;
            stored++;
        }
        CU_ASSERT_EQUAL(rc, QSTORE_EFULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "full"));
        CU_ASSERT(stored >= 2);
        /* consistent: exactly the stored records, each whole */
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_decode_all, &seen), stored);
        CU_ASSERT_EQUAL(seen, stored);
        CU_ASSERT_EQUAL(qst_count_due(q), (long)stored * 1000);
        /* full again, still nothing half-written */
        {
            size_t len = 0;
            char *v = qst_big_record(qid, 1000, &len);
            struct qstore_item it = { qid, v, len };
            CU_ASSERT_EQUAL(qstore_put_batch(q, &it, 1, err, sizeof(err)), QSTORE_EFULL);
            seen = 0;
            CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_decode_all, &seen), stored);
            /* space comes back: the same batch now goes in */
            CU_ASSERT_EQUAL(unlink(filler), 0);
            CU_ASSERT_EQUAL(qstore_put_batch(q, &it, 1, err, sizeof(err)), 0);
            free(v);
        }
        seen = 0;
        CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_decode_all, &seen), stored + 1);
        CU_ASSERT_EQUAL(seen, stored + 1);
        qid_init(NULL);
        qstore_close(q);
        /* and it opens again as it was */
        q = qst_open(mnt, 1);
        CU_ASSERT_PTR_NOT_NULL(q);
        if (q) {
            seen = 0;
            CU_ASSERT_EQUAL(qstore_scan(q, NULL, qst_decode_all, &seen), stored + 1);
            qstore_close(q);
        }
    }
    CU_ASSERT_EQUAL(umount2(mnt, MNT_DETACH), 0);
    qst_mounted[0] = 0;
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

static int qst_die_in_scan(const char *qid, const void *val, size_t len, void *arg)
{
    (void)qid;
    (void)val;
    (void)len;
    (void)arg;
    _exit(0); /* a mailq killed mid-read: its reader slot stays taken */
}

static void test_qs_reader_check(void)
{
    char dir[96];
    struct qstore *q;
    pid_t pid;
    int status = -1;

    q = qst_filled(dir, sizeof(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(qstore_reader_check(q), 0);
    fflush(NULL);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct qstore *c = NULL;
        char err[256];
        if (qstore_open(&c, dir, 1, err, sizeof(err)) == 0)
            qstore_scan(c, NULL, qst_die_in_scan, NULL);
        _exit(1);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(qstore_reader_check(q), 1);
    CU_ASSERT_EQUAL(qstore_reader_check(q), 0);
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

/* A reader in another process (mailq) opened before the writer grew the map
 * adopts the new size (MDB_MAP_RESIZED) and reads everything. */
static void test_qs_reader_sees_growth(void)
{
    char dir[96], qid[QID_LEN + 1], err[256];
    struct qstore *q;
    int up[2], go[2], status = -1;
    pid_t pid;
    char c = 0;

    CU_ASSERT_EQUAL_FATAL(qst_mkdir(dir, sizeof(dir)), 0);
    q = qst_open(dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(qstore_set_map_size(q, 1 << 20), 0);
    CU_ASSERT_EQUAL(qst_put_all(q), 0); /* makes the map size known on disk */
    CU_ASSERT_FATAL(pipe(up) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct qstore *r = NULL;
        long n = 0;
        int ok = qstore_open(&r, dir, 1, err, sizeof(err)) == 0;
        if (write(up[1], "x", 1) != 1 || read(go[0], &c, 1) != 1 || !ok)
            _exit(2);
        ok = qstore_scan(r, NULL, qst_decode_all, &n) == QST_N + 20 && n == QST_N + 20;
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(read(up[0], &c, 1) == 1);
    qid_init(NULL);
    for (int b = 0; b < 20; b++)
        CU_ASSERT_EQUAL(qst_put_big(q, b, 1000, qid, err, sizeof(err)), 0);
    qid_init(NULL);
    CU_ASSERT(write(go[1], "x", 1) == 1);
    CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    close(up[0]);
    close(up[1]);
    close(go[0]);
    close(go[1]);
    qstore_close(q);
    CU_ASSERT_EQUAL(qst_rmtree(dir), 0);
}

void suite_qstore(void)
{
    CU_pSuite s = CU_add_suite("qstore", NULL, qst_suite_clean);

    if (!s)
        return;
    CU_add_test(s, "open creates the index", test_qs_open_create);
    CU_add_test(s, "put_batch then scan in id order", test_qs_put_scan);
    CU_add_test(s, "scan after an id", test_qs_scan_after);
    CU_add_test(s, "visitor stops early", test_qs_visitor_stops);
    CU_add_test(s, "delete: 0, then 1 when not found", test_qs_delete);
    CU_add_test(s, "last_id empty and not", test_qs_last_id);
    CU_add_test(s, "reopen keeps the data", test_qs_reopen);
    CU_add_test(s, "read-only open of an existing index", test_qs_readonly_existing);
    CU_add_test(s, "open of a missing index fails", test_qs_open_missing);
    CU_add_test(s, "10000-record batch", test_qs_big_batch);
    CU_add_test(s, "layout 2 on disk", test_qs_layout_on_disk);
    CU_add_test(s, "a bad record fails its batch", test_qs_bad_record_refused);
    CU_add_test(s, "recipient results and the due scan", test_qs_update_and_due);
    CU_add_test(s, "hold, release, damaged", test_qs_flags_hold);
    CU_add_test(s, "delete removes every part", test_qs_delete_whole);
    CU_add_test(s, "layout 1 is read, then migrated", test_qs_migrate_v1);
    CU_add_test(s, "a newer layout is refused", test_qs_newer_layout_refused);
    CU_add_test(s, "the map grows from 1 MiB", test_qs_map_grows);
    CU_add_test(s, "a full disk: QSTORE_EFULL, consistent, then space again", test_qs_full_disk);
    CU_add_test(s, "reader_check clears a dead reader", test_qs_reader_check);
    CU_add_test(s, "a reader in another process follows the growth", test_qs_reader_sees_growth);
}
