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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    snprintf(r.sender, sizeof(r.sender), "sender-%s@example.org", tag);
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
}
