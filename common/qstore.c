/*
 * qstore.c - the LMDB queue index (qstore.h), layout version 2.
 *
 * Named databases in one environment (their names are the only keys of the
 * unnamed main database):
 *   "meta"   "layout" -> u32 big-endian layout version (2)
 *   "env"    qid (QID_LEN bytes) -> the envelope: a record body without
 *            recipients (qrec_encode_envelope)
 *   "rcpt"   qid + u32 BE recipient index -> that recipient's body
 *            (qrcpt_encode): status, attempts, next try, DSN, last reply
 *   "sched"  u64 BE next_try + qid + u32 BE index -> empty; exactly the
 *            recipients still to deliver (pending or deferred) of messages
 *            not on hold, so due work is a cursor range from the start
 * Keys are fixed-width and big-endian, so LMDB's byte order is time order,
 * id order and recipient order. A recipient's result rewrites one small
 * record and moves one schedule entry; the whole record exists only on the
 * wire (Q_COMMIT, Q_LIST_ITEM), split by put_batch and rebuilt by scan.
 *
 * Layout version 1 (the foundation) kept one whole record per qid in the
 * main database. A writable open migrates it in one transaction; a newer
 * version than QSTORE_LAYOUT is refused (docs/ARCHITECTURE.md says how
 * later versions migrate).
 *
 * Durability: the environment is opened with MDB_NOMETASYNC, so a commit
 * flushes the new data pages but leaves the meta page that makes them
 * current in the page cache. queue-mgr then calls syncfs() on the spool
 * filesystem (spool_sync), which writes the meta page together with the
 * batch's spool files: two flushes per group commit instead of three, and
 * LMDB's integrity is kept because data pages are always on disk before a
 * meta page can point at them. Until that syncfs, a crash may undo the last
 * batch, which is why nobody is told 250 before it.
 *
 * A full map: the write is aborted (LMDB is copy-on-write, so nothing of it
 * remains), the map is grown with mdb_env_set_mapsize() up to what the
 * filesystem can still hold, and the write runs again. Growing needs no
 * transaction of this process open, so every transaction holds q->lock
 * shared and growing holds it exclusive. A full disk at commit (ENOSPC)
 * also aborts the whole transaction. Either way the caller gets
 * QSTORE_EFULL and the store is as before the call.
 *
 * Never: write outside one transaction per call, keep an LMDB pointer past
 * its transaction, or trust a stored byte (values are decoded as hostile).
 */
#include "qstore.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "util.h"

/* Address space only: the file grows as records are written. */
#define QSTORE_MAPSIZE ((size_t)16 << 30)
#define QSTORE_MAXDBS 8
#define GROW_MIN ((uint64_t)1 << 20)
/* A whole record rebuilt in memory (recipients with long replies may make
 * it larger than one IPC frame; the visitor decides what to do with it). */
#define RECORD_MAX ((size_t)256 << 20)

#define RKEY_LEN (QID_LEN + 4)
#define SKEY_LEN (8 + QID_LEN + 4)
#define META_LAYOUT "layout"

struct qstore {
    MDB_env *env;
    MDB_dbi main, meta, envdb, rcpt, sched;
    unsigned layout;            /* 2, or 1 for a read-only unmigrated store */
    int readonly;
    pthread_rwlock_t lock;      /* shared: a transaction; exclusive: resizing */
    int full_logged;            /* "full" said once until a write succeeds (atomic) */
};

/* ---- keys ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = v & 0xff;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = v & 0xff;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void rkey(unsigned char k[RKEY_LEN], const char *qid, uint32_t i)
{
    memcpy(k, qid, QID_LEN);
    put_be32(k + QID_LEN, i);
}

static void skey(unsigned char k[SKEY_LEN], uint64_t t, const char *qid, uint32_t i)
{
    put_be64(k, t);
    memcpy(k + 8, qid, QID_LEN);
    put_be32(k + 8 + QID_LEN, i);
}

static int qid_key_ok(const MDB_val *k)
{
    char id[QID_LEN + 1];

    if (k->mv_size != QID_LEN)
        return 0;
    memcpy(id, k->mv_data, QID_LEN);
    id[QID_LEN] = 0;
    return qid_valid(id);
}

static int is_due_status(uint64_t status)
{
    return status == RCPT_PENDING || status == RCPT_DEFERRED;
}

/* ---- locking and transactions ---- */

/* The store this thread holds shared, and how deeply: a write from inside a
 * scan's visitor must not take the lock again (a waiting resizer would
 * deadlock it), and must not try to resize. */
static __thread const struct qstore *tl_q;
static __thread unsigned tl_depth;

static int held_here(const struct qstore *q)
{
    return tl_q == q && tl_depth > 0;
}

static void q_enter(struct qstore *q)
{
    if (held_here(q)) {
        tl_depth++;
        return;
    }
    pthread_rwlock_rdlock(&q->lock);
    if (tl_depth == 0) {
        tl_q = q;
        tl_depth = 1;
    }
}

static void q_leave(struct qstore *q)
{
    if (held_here(q)) {
        if (--tl_depth > 0)
            return;
        tl_q = NULL;
    }
    pthread_rwlock_unlock(&q->lock);
}

static int txn_begin(struct qstore *q, unsigned flags, MDB_txn **txn)
{
    int rc;

    q_enter(q);
    rc = mdb_txn_begin(q->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED && held_here(q) && tl_depth == 1) {
        /* Another process grew the map: adopt its size (no transaction of
         * ours may be open meanwhile), then try again. */
        q_leave(q);
        pthread_rwlock_wrlock(&q->lock);
        mdb_env_set_mapsize(q->env, 0);
        pthread_rwlock_unlock(&q->lock);
        q_enter(q);
        rc = mdb_txn_begin(q->env, NULL, flags, txn);
    }
    if (rc != 0)
        q_leave(q);
    return rc;
}

static void txn_abort(struct qstore *q, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    q_leave(q);
}

static int is_full(int rc)
{
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == EFBIG;
}

/*
 * Grows the map after MDB_MAP_FULL: doubles it, but never beyond what the
 * data file could become on this filesystem (its size plus the space still
 * free). 0 grown, -1 it cannot grow.
 */
static int grow(struct qstore *q)
{
    MDB_envinfo info;
    struct statvfs vs;
    struct stat st;
    mdb_filehandle_t fd;
    uint64_t cur, limit, want, page = (uint64_t)sysconf(_SC_PAGESIZE);
    int rc = -1;

    if (tl_depth > 0)
        return -1; /* a transaction of this thread is open: cannot resize */
    pthread_rwlock_wrlock(&q->lock);
    if (mdb_env_info(q->env, &info) != 0 || mdb_env_get_fd(q->env, &fd) != 0 ||
        fstat(fd, &st) < 0 || fstatvfs(fd, &vs) < 0)
        goto out;
    cur = info.me_mapsize;
    limit = (uint64_t)st.st_size + (uint64_t)vs.f_bavail * vs.f_frsize;
    want = cur + (cur > GROW_MIN ? cur : GROW_MIN);
    if (want > limit)
        want = limit;
    if (page > 0)
        want -= want % page;
    if (want <= cur || want > SIZE_MAX) {
        if (!__atomic_exchange_n(&q->full_logged, 1, __ATOMIC_RELAXED))
            log_error("queue index: map of %llu bytes is full and the filesystem has room for "
                      "%llu: refusing new mail until there is space",
                      (unsigned long long)cur, (unsigned long long)limit);
        goto out;
    }
    if (mdb_env_set_mapsize(q->env, (size_t)want) == 0) {
        log_info("queue index: map grown from %llu to %llu bytes",
                 (unsigned long long)cur, (unsigned long long)want);
        rc = 0;
    }
out:
    pthread_rwlock_unlock(&q->lock);
    return rc;
}

/* Returns an LMDB or errno code, or EINVAL for a refused input. */
typedef int (*write_fn)(struct qstore *q, MDB_txn *txn, void *arg);

/* LMDB reports a short write of its pages as EIO; on a file system that is
 * (nearly) out of space that is a full disk, not a broken one: the commit
 * left the index as it was (copy-on-write; the meta page was not written). */
#define NEARLY_FULL ((uint64_t)16 << 20)
static int fs_nearly_full(struct qstore *q)
{
    mdb_filehandle_t fd;
    struct statvfs vs;

    return mdb_env_get_fd(q->env, &fd) == 0 && fstatvfs(fd, &vs) == 0 &&
           (uint64_t)vs.f_bavail * vs.f_frsize < NEARLY_FULL;
}

/* Runs fn in one write transaction and commits it; when the map fills,
 * grows it and runs fn again from the start. */
static int write_txn(struct qstore *q, write_fn fn, void *arg)
{
    for (;;) {
        MDB_txn *txn;
        int rc;

        if (q->readonly || q->layout != QSTORE_LAYOUT)
            return EACCES;
        if ((rc = txn_begin(q, 0, &txn)) != 0)
            return rc;
        rc = fn(q, txn, arg);
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
            if (rc == EIO && fs_nearly_full(q))
                rc = ENOSPC;
        } else {
            mdb_txn_abort(txn);
        }
        q_leave(q);
        if (rc == 0 && __atomic_load_n(&q->full_logged, __ATOMIC_RELAXED) &&
            __atomic_exchange_n(&q->full_logged, 0, __ATOMIC_RELAXED))
            log_info("queue index: writes succeed again");
        if (rc != MDB_MAP_FULL || grow(q) < 0)
            return rc;
    }
}

/* ---- writing messages ---- */

/* What to do with each recipient of a message (each_rcpt). */
enum rcpt_op { RC_DELETE, RC_UNSCHEDULE, RC_SCHEDULE };

static int sched_del(struct qstore *q, MDB_txn *txn, uint64_t t, const char *qid, uint32_t i)
{
    unsigned char sk[SKEY_LEN];
    MDB_val k = { SKEY_LEN, sk };
    int rc;

    skey(sk, t, qid, i);
    rc = mdb_del(txn, q->sched, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sched_put(struct qstore *q, MDB_txn *txn, uint64_t t, const char *qid, uint32_t i)
{
    unsigned char sk[SKEY_LEN];
    MDB_val k = { SKEY_LEN, sk }, v = { 0, sk };

    skey(sk, t, qid, i);
    return mdb_put(txn, q->sched, &k, &v, 0);
}

static int each_rcpt(struct qstore *q, MDB_txn *txn, const char *qid, enum rcpt_op op)
{
    unsigned char key[RKEY_LEN];
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, q->rcpt, &c)) != 0)
        return rc;
    rkey(key, qid, 0);
    k.mv_size = RKEY_LEN;
    k.mv_data = key;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == RKEY_LEN && memcmp(k.mv_data, qid, QID_LEN) == 0) {
        uint32_t idx = get_be32((const unsigned char *)k.mv_data + QID_LEN);
        uint64_t status = 0, next = 0;

        /* a malformed value still has its schedule entry looked for at 0 */
        if (qrec_peek_u64(v.mv_data, v.mv_size, T_R_STATUS, &status) < 0 ||
            qrec_peek_u64(v.mv_data, v.mv_size, T_R_NEXT_TRY, &next) < 0)
            status = RCPT_PENDING;
        if (op == RC_SCHEDULE)
            rc = is_due_status(status) ? sched_put(q, txn, next, qid, idx) : 0;
        else
            rc = sched_del(q, txn, next, qid, idx);
        if (rc != 0)
            break;
        if (op == RC_DELETE) {
            if ((rc = mdb_cursor_del(c, 0)) != 0)
                break;
            if (idx == UINT32_MAX)
                break;
            rkey(key, qid, idx + 1);
            k.mv_size = RKEY_LEN;
            k.mv_data = key;
            rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes a message's envelope, recipients and schedule entries: 0, or
 * MDB_NOTFOUND when there was nothing. */
static int remove_message(struct qstore *q, MDB_txn *txn, const char *qid)
{
    MDB_val k = { QID_LEN, (void *)qid };
    int rc = mdb_del(txn, q->envdb, &k, NULL), found = rc == 0;

    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    /* recipients without an envelope cannot happen; removed all the same */
    if ((rc = each_rcpt(q, txn, qid, RC_DELETE)) != 0)
        return rc;
    return found ? 0 : MDB_NOTFOUND;
}

/*
 * Stores one whole record body: every field but T_RCPT becomes the
 * envelope (a slice of the body when, as qrec_encode makes them, those
 * come first), every T_RCPT value a recipient record, pointing into the
 * body. r is the decoded record (for the schedule entries), or NULL to
 * store an unreadable body as an envelope alone, so a scan gives it back
 * as it was. append: every key sorts after the stored ones (MDB_APPEND).
 */
static int put_message(struct qstore *q, MDB_txn *txn, const char *qid, const unsigned char *body,
                       size_t len, const struct qrec *r, int append)
{
    struct ipc_iter it;
    struct ipc_field f;
    struct buf env;
    const unsigned char *env_end = NULL, *start;
    unsigned flags = append ? MDB_APPEND : 0;
    uint32_t n = 0;
    int rc = 0, scattered = 0;
    MDB_val k, v;

    buf_init(&env, RECORD_MAX);
    ipc_iter_init(&it, body, len);
    for (start = it.p; r && ipc_iter_next(&it, &f) == 1; start = it.p) {
        if (f.tag != T_RCPT) {
            if (env_end && !scattered) {
                /* an envelope field after a recipient: copy them out */
                scattered = 1;
                if (buf_append(&env, body, (size_t)(env_end - body)) < 0)
                    rc = ENOMEM;
            }
            if (scattered && rc == 0 && buf_append(&env, start, (size_t)(it.p - start)) < 0)
                rc = ENOMEM;
            if (rc)
                break;
            continue;
        }
        if (!env_end)
            env_end = start;
        if (n >= r->nrcpt) {
            rc = EINVAL; /* decoded as fewer: cannot be */
            break;
        }
        {
            unsigned char kb[RKEY_LEN];
            const struct qrcpt *rc0 = &r->rcpt[n];

            rkey(kb, qid, n);
            k.mv_size = RKEY_LEN;
            k.mv_data = kb;
            v.mv_size = f.len;
            v.mv_data = (void *)f.val;
            rc = mdb_put(txn, q->rcpt, &k, &v, flags);
            if (rc == MDB_KEYEXIST && append)
                rc = mdb_put(txn, q->rcpt, &k, &v, 0); /* a stray record above: not append */
            if (rc == 0 && !(r->flags & QF_HOLD) && is_due_status(rc0->status))
                rc = sched_put(q, txn, rc0->next_try, qid, n);
            if (rc)
                break;
        }
        n++;
    }
    if (rc == 0) {
        k.mv_size = QID_LEN;
        k.mv_data = (void *)qid;
        if (scattered) {
            v.mv_size = env.len;
            v.mv_data = (void *)buf_head(&env);
        } else {
            v.mv_size = r && env_end ? (size_t)(env_end - body) : len;
            v.mv_data = (void *)body;
        }
        rc = mdb_put(txn, q->envdb, &k, &v, flags);
        if (rc == MDB_KEYEXIST && append)
            rc = mdb_put(txn, q->envdb, &k, &v, 0);
    }
    buf_free(&env);
    return rc;
}

struct batch_ctx {
    const struct qstore_item *items;
    size_t *order;
    size_t n;
    char *err;
    size_t errlen;
};

static int put_batch_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    struct batch_ctx *b = arg;
    char last[QID_LEN];
    int have_last = 0, rc;
    MDB_cursor *c;
    MDB_val k, v;

    if ((rc = mdb_cursor_open(txn, q->envdb, &c)) != 0)
        return rc;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == QID_LEN) {
        memcpy(last, k.mv_data, QID_LEN);
        have_last = 1;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    for (size_t j = 0; j < b->n; j++) {
        const struct qstore_item *it = &b->items[b->order[j]];
        struct qrec r;
        char why[256];
        int append;

        if (!it->qid || !qid_valid(it->qid)) {
            snprintf(b->err, b->errlen, "queue index write: bad queue id");
            return EINVAL;
        }
        if (qrec_decode(it->val, it->len, &r, why, sizeof(why)) < 0) {
            snprintf(b->err, b->errlen, "%s: queue record refused: %s", it->qid, why);
            return EINVAL;
        }
        if (r.qid[0] && strcmp(r.qid, it->qid) != 0) {
            qrec_free(&r);
            snprintf(b->err, b->errlen, "%s: queue record names another id", it->qid);
            return EINVAL;
        }
        append = !have_last || memcmp(it->qid, last, QID_LEN) > 0;
        rc = append ? 0 : remove_message(q, txn, it->qid);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = put_message(q, txn, it->qid, it->val, it->len, &r, append);
        qrec_free(&r);
        if (rc != 0)
            return rc;
        if (append) {
            memcpy(last, it->qid, QID_LEN);
            have_last = 1;
        }
    }
    return 0;
}

/* Id order (then batch order), so new ids go in with MDB_APPEND. */
static int cmp_item(const void *a, const void *b, void *arg)
{
    const struct qstore_item *items = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strncmp(items[i].qid ? items[i].qid : "", items[j].qid ? items[j].qid : "", QID_LEN);

    return c ? c : (i > j) - (i < j);
}

/* Maps a write's result to the API's: 0, QSTORE_EFULL, -1 (err set). */
static int write_result(int rc, const char *what, char *err, size_t errlen)
{
    if (rc == 0)
        return 0;
    if (is_full(rc)) {
        snprintf(err, errlen, "queue index full: %s", mdb_strerror(rc));
        return QSTORE_EFULL;
    }
    if (rc != EINVAL || !errlen || !err[0])
        snprintf(err, errlen, "queue index %s: %s", what, mdb_strerror(rc));
    return -1;
}

int qstore_put_batch(struct qstore *q, const struct qstore_item *items, size_t n, char *err, size_t errlen)
{
    struct batch_ctx b = { items, NULL, n, err, errlen };
    int rc;

    if (errlen)
        err[0] = 0;
    if (q->readonly || q->layout != QSTORE_LAYOUT) {
        snprintf(err, errlen, "queue index write: opened read-only");
        return -1;
    }
    if (n == 0)
        return 0;
    if (!(b.order = malloc(n * sizeof(*b.order)))) {
        snprintf(err, errlen, "queue index write: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        b.order[i] = i;
    qsort_r(b.order, n, sizeof(*b.order), cmp_item, (void *)items);
    rc = write_txn(q, put_batch_fn, &b);
    free(b.order);
    return write_result(rc, "write", err, errlen);
}

static int delete_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    return remove_message(q, txn, arg);
}

int qstore_delete(struct qstore *q, const char *qid)
{
    int rc;

    if (!qid || !qid_valid(qid))
        return -1;
    rc = write_txn(q, delete_fn, (void *)qid);
    return rc == 0 ? 0 : rc == MDB_NOTFOUND ? 1 : -1;
}

struct delete_many_ctx {
    char (*qids)[QID_LEN + 1];
    size_t n;
    unsigned char *gone;
};

static int delete_many_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    struct delete_many_ctx *d = arg;

    for (size_t i = 0; i < d->n; i++) {
        int rc = remove_message(q, txn, d->qids[i]);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        d->gone[i] = rc == 0;
    }
    return 0;
}

int qstore_delete_many(struct qstore *q, char (*qids)[QID_LEN + 1], size_t n, unsigned char *gone)
{
    struct delete_many_ctx d = { qids, n, gone };

    for (size_t i = 0; i < n; i++)
        if (!qid_valid(qids[i]))
            return -1;
    if (n == 0)
        return 0;
    return write_txn(q, delete_many_fn, &d) == 0 ? 0 : -1;
}

/* ---- flags ---- */

struct flags_ctx {
    const char *qid;
    unsigned set, clear;
};

static int set_flags_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    struct flags_ctx *fc = arg;
    MDB_val k = { QID_LEN, (void *)fc->qid }, v;
    struct ipc_out m;
    struct qrec r;
    char why[256];
    unsigned old, now;
    int rc;

    if ((rc = mdb_get(txn, q->envdb, &k, &v)) != 0)
        return rc;
    if (qrec_decode_envelope(v.mv_data, v.mv_size, &r, why, sizeof(why)) < 0) {
        log_error("%s: queue envelope is unreadable: %s", fc->qid, why);
        return MDB_CORRUPTED;
    }
    old = r.flags;
    now = (old | fc->set) & ~fc->clear & QF_ALL;
    if (fc->set & QF_DAMAGED)
        now |= QF_HOLD;
    if (!(now & QF_HOLD))
        now &= ~QF_DAMAGED;
    if (now == old)
        return 0;
    r.flags = now;
    ipc_body_begin(&m);
    qrec_encode_envelope(&r, &m);
    qrec_free(&r);
    if (ipc_out_finish(&m) < 0) {
        ipc_out_free(&m);
        return ENOMEM;
    }
    v.mv_size = m.b.len;
    v.mv_data = (void *)buf_head(&m.b);
    rc = mdb_put(txn, q->envdb, &k, &v, 0);
    ipc_out_free(&m);
    if (rc == 0 && (old ^ now) & QF_HOLD)
        rc = each_rcpt(q, txn, fc->qid, (now & QF_HOLD) ? RC_UNSCHEDULE : RC_SCHEDULE);
    return rc;
}

int qstore_set_flags(struct qstore *q, const char *qid, unsigned set, unsigned clear)
{
    struct flags_ctx fc = { qid, set, clear };
    int rc;

    if (!qid || !qid_valid(qid) || (set & ~QF_ALL))
        return -1;
    rc = write_txn(q, set_flags_fn, &fc);
    return rc == 0 ? 0 : rc == MDB_NOTFOUND ? 1 : -1;
}

/* ---- recipient results ---- */

struct update_ctx {
    const struct qstore_rcpt_update *u;
    size_t n, missing;
    char *err;
    size_t errlen;
};

static int update_one(struct qstore *q, MDB_txn *txn, const struct qstore_rcpt_update *u,
                      size_t *missing, char *err, size_t errlen)
{
    unsigned char kb[RKEY_LEN];
    MDB_val k = { QID_LEN, (void *)u->qid }, v;
    struct qrcpt rc, check;
    struct ipc_out m;
    uint64_t flags, old_next;
    unsigned old_status;
    char why[256];
    int e;

    if (!qid_valid(u->qid) || u->status > RCPT_BOUNCED || !memchr(u->dsn, 0, sizeof(u->dsn))) {
        snprintf(err, errlen, "queue index update: bad result for %.*s", QID_LEN, u->qid);
        return EINVAL;
    }
    if ((e = mdb_get(txn, q->envdb, &k, &v)) == MDB_NOTFOUND)
        goto missing;
    if (e != 0)
        return e;
    if (qrec_peek_u64(v.mv_data, v.mv_size, T_FLAGS, &flags) < 0)
        flags = 0;
    rkey(kb, u->qid, u->rcpt);
    k.mv_size = RKEY_LEN;
    k.mv_data = kb;
    if ((e = mdb_get(txn, q->rcpt, &k, &v)) == MDB_NOTFOUND)
        goto missing;
    if (e != 0)
        return e;
    if (qrcpt_decode(v.mv_data, v.mv_size, (unsigned)flags, &rc, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: recipient %u is unreadable: %s", u->qid, u->rcpt + 1, why);
        return EINVAL;
    }
    old_next = rc.next_try;
    old_status = rc.status;
    rc.status = u->status;
    rc.attempts = u->attempts;
    rc.next_try = u->next_try;
    memcpy(rc.dsn, u->dsn, sizeof(rc.dsn));
    rc.notice |= u->notice_set & QN_ALL;
    if (u->relay && qrcpt_set(&rc.relay, u->relay, QREC_RELAY_MAX) < 0) {
        qrcpt_free(&rc);
        snprintf(err, errlen, "%s: recipient %u: relay too long", u->qid, u->rcpt + 1);
        return EINVAL;
    }
    if (qrcpt_set(&rc.reply, u->reply, QREC_REPLY_MAX) < 0) {
        qrcpt_free(&rc);
        snprintf(err, errlen, "%s: recipient %u: reply too long", u->qid, u->rcpt + 1);
        return EINVAL;
    }
    ipc_body_begin(&m);
    qrcpt_encode(&rc, &m);
    qrcpt_free(&rc);
    e = ipc_out_finish(&m) < 0 ? ENOMEM : 0;
    /* what is stored must decode: the same checks as every other record */
    if (e == 0 && qrcpt_decode((const unsigned char *)buf_head(&m.b), m.b.len, (unsigned)flags,
                               &check, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: recipient %u: bad result: %s", u->qid, u->rcpt + 1, why);
        e = EINVAL;
    } else if (e == 0) {
        qrcpt_free(&check);
        v.mv_size = m.b.len;
        v.mv_data = (void *)buf_head(&m.b);
        e = mdb_put(txn, q->rcpt, &k, &v, 0);
    }
    ipc_out_free(&m);
    if (e == 0 && is_due_status(old_status))
        e = sched_del(q, txn, old_next, u->qid, u->rcpt);
    if (e == 0 && is_due_status(u->status) && !(flags & QF_HOLD))
        e = sched_put(q, txn, u->next_try, u->qid, u->rcpt);
    return e;
missing:
    ++*missing;
    return 0;
}

static int update_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    struct update_ctx *uc = arg;
    int rc;

    uc->missing = 0;
    for (size_t i = 0; i < uc->n; i++)
        if ((rc = update_one(q, txn, &uc->u[i], &uc->missing, uc->err, uc->errlen)) != 0)
            return rc;
    return 0;
}

int qstore_update_rcpts(struct qstore *q, const struct qstore_rcpt_update *u, size_t n,
                        size_t *missing, char *err, size_t errlen)
{
    struct update_ctx uc = { u, n, 0, err, errlen };
    int rc;

    if (errlen)
        err[0] = 0;
    if (missing)
        *missing = 0;
    if (n == 0)
        return 0;
    rc = write_txn(q, update_fn, &uc);
    if (rc == 0 && missing)
        *missing = uc.missing;
    return write_result(rc, "update", err, errlen);
}

/* ---- bounces ---- */

struct notice_ctx {
    const struct qstore_item *notice;
    const char *orig;
    const struct qstore_notice_mark *marks;
    size_t n;
    int remove_orig;
    char *err;
    size_t errlen;
};

/* Adds QN_* bits to one stored recipient (the rest of it as it is). */
static int mark_one(struct qstore *q, MDB_txn *txn, const char *qid, uint64_t flags,
                    const struct qstore_notice_mark *mk, char *err, size_t errlen)
{
    unsigned char kb[RKEY_LEN];
    MDB_val k = { RKEY_LEN, kb }, v;
    struct qrcpt rc;
    struct ipc_out m;
    char why[256];
    int e;

    (void)q;
    rkey(kb, qid, mk->rcpt);
    if ((e = mdb_get(txn, q->rcpt, &k, &v)) != 0) {
        if (e == MDB_NOTFOUND)
            snprintf(err, errlen, "%s: no recipient %u to mark", qid, mk->rcpt + 1);
        return e == MDB_NOTFOUND ? EINVAL : e;
    }
    if (qrcpt_decode(v.mv_data, v.mv_size, (unsigned)flags, &rc, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: recipient %u is unreadable: %s", qid, mk->rcpt + 1, why);
        return EINVAL;
    }
    rc.notice |= mk->notice_set & QN_ALL;
    ipc_body_begin(&m);
    qrcpt_encode(&rc, &m);
    qrcpt_free(&rc);
    e = ipc_out_finish(&m) < 0 ? ENOMEM : 0;
    if (e == 0) {
        v.mv_size = m.b.len;
        v.mv_data = (void *)buf_head(&m.b);
        e = mdb_put(txn, q->rcpt, &k, &v, 0);
    }
    ipc_out_free(&m);
    return e;
}

static int notice_fn(struct qstore *q, MDB_txn *txn, void *arg)
{
    struct notice_ctx *c = arg;
    MDB_val k = { QID_LEN, (void *)c->orig }, v;
    uint64_t flags;
    int e;

    if ((e = mdb_get(txn, q->envdb, &k, &v)) != 0) {
        if (e == MDB_NOTFOUND)
            snprintf(c->err, c->errlen, "%s: not in the queue", c->orig);
        return e == MDB_NOTFOUND ? EINVAL : e;
    }
    if (qrec_peek_u64(v.mv_data, v.mv_size, T_FLAGS, &flags) < 0)
        flags = 0;
    for (size_t i = 0; i < c->n; i++)
        if ((e = mark_one(q, txn, c->orig, flags, &c->marks[i], c->err, c->errlen)) != 0)
            return e;
    if (c->remove_orig && (e = remove_message(q, txn, c->orig)) != 0)
        return e;
    if (c->notice) {
        struct qrec r;
        char why[256];
        if (qrec_decode(c->notice->val, c->notice->len, &r, why, sizeof(why)) < 0) {
            snprintf(c->err, c->errlen, "%s: notice refused: %s", c->notice->qid, why);
            return EINVAL;
        }
        e = remove_message(q, txn, c->notice->qid);
        if (e == 0 || e == MDB_NOTFOUND)
            e = put_message(q, txn, c->notice->qid, c->notice->val, c->notice->len, &r, 0);
        qrec_free(&r);
        if (e != 0)
            return e;
    }
    return 0;
}

int qstore_put_notice(struct qstore *q, const struct qstore_item *notice, const char *orig_qid,
                      const struct qstore_notice_mark *marks, size_t n, int remove_orig,
                      char *err, size_t errlen)
{
    struct notice_ctx c = { notice, orig_qid, marks, n, remove_orig, err, errlen };

    if (errlen)
        err[0] = 0;
    if (!orig_qid || !qid_valid(orig_qid) || (notice && (!notice->qid || !qid_valid(notice->qid)))) {
        snprintf(err, errlen, "queue index notice: bad queue id");
        return -1;
    }
    return write_result(write_txn(q, notice_fn, &c), "notice", err, errlen);
}

/* ---- reading ---- */

/* Rebuilds the whole record of qid from its envelope value and recipient
 * records into m (reset first). 0, or an LMDB/errno code. */
static int assemble(struct qstore *q, MDB_cursor *rc_cur, const char *qid, const MDB_val *envv,
                    struct ipc_out *m)
{
    unsigned char key[RKEY_LEN];
    MDB_val k = { RKEY_LEN, key }, v;
    int rc;

    (void)q;
    buf_reset(&m->b);
    m->failed = 0;
    if (buf_append(&m->b, envv->mv_data, envv->mv_size) < 0)
        return ENOMEM;
    rkey(key, qid, 0);
    /* In a scan the cursor already stands on this message's first
     * recipient (both databases sort by id): no search from the root. */
    rc = mdb_cursor_get(rc_cur, &k, &v, MDB_GET_CURRENT);
    if (rc != 0 || k.mv_size != RKEY_LEN || memcmp(k.mv_data, key, RKEY_LEN) != 0) {
        k.mv_size = RKEY_LEN;
        k.mv_data = key;
        rc = mdb_cursor_get(rc_cur, &k, &v, MDB_SET_RANGE);
    }
    for (; rc == 0; rc = mdb_cursor_get(rc_cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != RKEY_LEN || memcmp(k.mv_data, qid, QID_LEN) != 0)
            break;
        ipc_out_bytes(m, T_RCPT, v.mv_data, v.mv_size);
        if (m->failed)
            return ENOMEM;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void record_buf_init(struct ipc_out *m)
{
    ipc_body_begin(m);
    buf_init(&m->b, RECORD_MAX);
}

long qstore_scan(struct qstore *q, const char *after, qstore_visit_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur, *rcur = NULL;
    MDB_val k, v;
    struct ipc_out m;
    long count = 0;
    int rc;

    if (txn_begin(q, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->layout == 1 ? q->main : q->envdb, &cur) != 0) {
        txn_abort(q, txn);
        return -1;
    }
    if (q->layout != 1 && mdb_cursor_open(txn, q->rcpt, &rcur) != 0) {
        mdb_cursor_close(cur);
        txn_abort(q, txn);
        return -1;
    }
    record_buf_init(&m);
    if (after) {
        k.mv_size = QID_LEN;
        k.mv_data = (void *)after;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == QID_LEN && memcmp(k.mv_data, after, QID_LEN) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        int stop;

        if (!qid_key_ok(&k))
            continue; /* not ours (a database name in layout 1); never trust the file */
        memcpy(qid, k.mv_data, QID_LEN);
        qid[QID_LEN] = 0;
        count++;
        if (q->layout == 1) {
            stop = fn(qid, v.mv_data, v.mv_size, arg);
        } else {
            if ((rc = assemble(q, rcur, qid, &v, &m)) != 0)
                break;
            stop = fn(qid, buf_head(&m.b), m.b.len, arg);
        }
        if (stop)
            break;
    }
    ipc_out_free(&m);
    if (rcur)
        mdb_cursor_close(rcur);
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? count : -1;
}

int qstore_last_id(struct qstore *q, char out[QID_LEN + 1])
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if (txn_begin(q, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->layout == 1 ? q->main : q->envdb, &cur) != 0) {
        txn_abort(q, txn);
        return -1;
    }
    /* the last key that is a queue id (layout 1 has database names too) */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 && !qid_key_ok(&k);
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV))
        ;
    if (rc == 0) {
        memcpy(out, k.mv_data, QID_LEN);
        out[QID_LEN] = 0;
    }
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    if (rc == MDB_NOTFOUND)
        return 1;
    return rc == 0 ? 0 : -1;
}

int qstore_get(struct qstore *q, const char *qid, struct qrec *r, char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_cursor *rcur;
    MDB_val k = { QID_LEN, (void *)qid }, v;
    struct ipc_out m;
    int rc, res = -1;

    qrec_init(r);
    if (errlen)
        err[0] = 0;
    if (!qid || !qid_valid(qid)) {
        snprintf(err, errlen, "bad queue id");
        return -1;
    }
    if ((rc = txn_begin(q, MDB_RDONLY, &txn)) != 0) {
        snprintf(err, errlen, "queue index read: %s", mdb_strerror(rc));
        return -1;
    }
    record_buf_init(&m);
    rc = mdb_get(txn, q->layout == 1 ? q->main : q->envdb, &k, &v);
    if (rc == MDB_NOTFOUND) {
        res = 1;
    } else if (rc != 0) {
        snprintf(err, errlen, "queue index read: %s", mdb_strerror(rc));
    } else if (q->layout == 1) {
        res = qrec_decode(v.mv_data, v.mv_size, r, err, errlen);
    } else if ((rc = mdb_cursor_open(txn, q->rcpt, &rcur)) != 0) {
        snprintf(err, errlen, "queue index read: %s", mdb_strerror(rc));
    } else {
        rc = assemble(q, rcur, qid, &v, &m);
        mdb_cursor_close(rcur);
        if (rc != 0)
            snprintf(err, errlen, "queue index read: %s", mdb_strerror(rc));
        else
            res = qrec_decode((const unsigned char *)buf_head(&m.b), m.b.len, r, err, errlen);
    }
    ipc_out_free(&m);
    txn_abort(q, txn);
    return res;
}

int qstore_get_rcpt(struct qstore *q, const char *qid, uint32_t rcpt, struct qrcpt *out)
{
    unsigned char kb[RKEY_LEN];
    MDB_txn *txn;
    MDB_val k = { QID_LEN, (void *)qid }, v;
    uint64_t flags = 0;
    char why[256];
    int rc, res = -1;

    memset(out, 0, sizeof(*out));
    if (!qid || !qid_valid(qid) || q->layout != QSTORE_LAYOUT || txn_begin(q, MDB_RDONLY, &txn) != 0)
        return -1;
    rc = mdb_get(txn, q->envdb, &k, &v);
    if (rc == 0 && qrec_peek_u64(v.mv_data, v.mv_size, T_FLAGS, &flags) < 0)
        flags = 0;
    if (rc == 0) {
        rkey(kb, qid, rcpt);
        k.mv_size = RKEY_LEN;
        k.mv_data = kb;
        rc = mdb_get(txn, q->rcpt, &k, &v);
    }
    if (rc == MDB_NOTFOUND)
        res = 1;
    else if (rc == 0 && qrcpt_decode(v.mv_data, v.mv_size, (unsigned)flags, out, why, sizeof(why)) == 0)
        res = 0;
    txn_abort(q, txn);
    return res;
}

long qstore_undelivered(struct qstore *q, const char *qid)
{
    unsigned char key[RKEY_LEN];
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k = { RKEY_LEN, key }, v;
    long n = 0;
    int rc;

    if (!qid || !qid_valid(qid) || q->layout != QSTORE_LAYOUT || txn_begin(q, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->rcpt, &c) != 0) {
        txn_abort(q, txn);
        return -1;
    }
    rkey(key, qid, 0);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t status;

        if (k.mv_size != RKEY_LEN || memcmp(k.mv_data, qid, QID_LEN) != 0)
            break;
        /* unreadable: counted as still to deliver, so nothing is dropped */
        if (qrec_peek_u64(v.mv_data, v.mv_size, T_R_STATUS, &status) < 0 || is_due_status(status))
            n++;
    }
    mdb_cursor_close(c);
    txn_abort(q, txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? n : -1;
}

long qstore_scan_due(struct qstore *q, uint64_t now, const struct qstore_due *after,
                     struct qstore_due *out, size_t max)
{
    unsigned char sk[SKEY_LEN];
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    int rc;

    if (q->layout != QSTORE_LAYOUT)
        return -1;
    if (max == 0)
        return 0;
    if (txn_begin(q, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->sched, &cur) != 0) {
        txn_abort(q, txn);
        return -1;
    }
    if (after) {
        skey(sk, after->next_try, after->qid, after->rcpt);
        k.mv_size = SKEY_LEN;
        k.mv_data = sk;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == SKEY_LEN && memcmp(k.mv_data, sk, SKEY_LEN) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; rc == 0 && n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *p = k.mv_data;
        MDB_val idk = { QID_LEN, (void *)(p + 8) };

        if (k.mv_size != SKEY_LEN || !qid_key_ok(&idk))
            continue;
        if (get_be64(p) > now)
            break;
        out[n].next_try = get_be64(p);
        memcpy(out[n].qid, p + 8, QID_LEN);
        out[n].qid[QID_LEN] = 0;
        out[n].rcpt = get_be32(p + 8 + QID_LEN);
        n++;
    }
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? (long)n : -1;
}

/* ---- opening, layout versions and migration ---- */

static int open_dbs(struct qstore *q, MDB_txn *txn, unsigned flags)
{
    int rc;

    if ((rc = mdb_dbi_open(txn, "meta", flags, &q->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "env", flags, &q->envdb)) != 0 ||
        (rc = mdb_dbi_open(txn, "rcpt", flags, &q->rcpt)) != 0 ||
        (rc = mdb_dbi_open(txn, "sched", flags, &q->sched)) != 0)
        return rc;
    return 0;
}

/*
 * Layout 1 -> 2, inside the opening transaction: each record in the main
 * database is split into the new databases and removed from the main one.
 * A record that does not decode is kept as an envelope alone (a scan gives
 * it back byte for byte, and reconciliation reports it as before).
 */
static int migrate_v1(struct qstore *q, MDB_txn *txn, long *moved, long *unreadable)
{
    unsigned char ver[4];
    MDB_val k, v, mk = { sizeof(META_LAYOUT) - 1, (void *)META_LAYOUT }, mv = { 4, ver };
    MDB_cursor *c;
    int rc;

    *moved = *unreadable = 0;
    if ((rc = open_dbs(q, txn, MDB_CREATE)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, q->main, &c)) != 0)
        return rc;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        char qid[QID_LEN + 1];
        unsigned char *val;
        size_t len = v.mv_size;
        struct qrec r;
        char why[256];

        if (!qid_key_ok(&k)) {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(qid, k.mv_data, QID_LEN);
        qid[QID_LEN] = 0;
        /* copied: the value's page may be reused once it is deleted */
        if (!(val = malloc(len ? len : 1))) {
            rc = ENOMEM;
            break;
        }
        memcpy(val, v.mv_data, len);
        if ((rc = mdb_cursor_del(c, 0)) == 0) {
            if (qrec_decode(val, len, &r, why, sizeof(why)) == 0) {
                rc = put_message(q, txn, qid, val, len, &r, 1);
                qrec_free(&r);
            } else {
                log_error("%s: queue record is unreadable (%s): kept as it is", qid, why);
                rc = put_message(q, txn, qid, val, len, NULL, 1);
                ++*unreadable;
            }
        }
        free(val);
        if (rc != 0)
            break;
        ++*moved;
        k.mv_size = QID_LEN;
        k.mv_data = qid;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND && rc != 0)
        return rc;
    put_be32(ver, QSTORE_LAYOUT);
    return mdb_put(txn, q->meta, &mk, &mv, 0);
}

static int open_layout(struct qstore *q, const char *path, char *err, size_t errlen)
{
    MDB_val mk = { sizeof(META_LAYOUT) - 1, (void *)META_LAYOUT }, mv;
    MDB_txn *txn;
    long moved = 0, unreadable = 0;
    int rc, migrated = 0;

    if ((rc = mdb_txn_begin(q->env, NULL, q->readonly ? MDB_RDONLY : 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &q->main)) != 0)
        goto abort;
    rc = mdb_dbi_open(txn, "meta", 0, &q->meta);
    if (rc == 0) {
        unsigned version;

        if ((rc = mdb_get(txn, q->meta, &mk, &mv)) != 0 || mv.mv_size != 4) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "queue index %s: no layout version in its meta database", path);
            return -1;
        }
        version = get_be32(mv.mv_data);
        if (version != QSTORE_LAYOUT) {
            mdb_txn_abort(txn);
            snprintf(err, errlen,
                     "queue index %s has layout version %u, %s than this Postern's (%u): "
                     "refusing to touch it; run the Postern that wrote it",
                     path, version, version > QSTORE_LAYOUT ? "newer" : "other", QSTORE_LAYOUT);
            return -1;
        }
        if ((rc = open_dbs(q, txn, 0)) != 0)
            goto abort;
        q->layout = QSTORE_LAYOUT;
    } else if (rc == MDB_NOTFOUND && q->readonly) {
        q->layout = 1; /* not migrated yet: read the records where they are */
    } else if (rc == MDB_NOTFOUND) {
        if ((rc = migrate_v1(q, txn, &moved, &unreadable)) != 0)
            goto abort;
        q->layout = QSTORE_LAYOUT;
        migrated = 1;
    } else {
        goto abort;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    if (migrated && moved > 0)
        log_info("queue index %s: migrated %ld message(s) from layout 1 to %u (%ld unreadable, kept)",
                 path, moved, QSTORE_LAYOUT, unreadable);
    return 0;
abort:
    mdb_txn_abort(txn);
fail:
    snprintf(err, errlen, "queue index %s: %s", path, mdb_strerror(rc));
    return -1;
}

int qstore_open(struct qstore **out, const char *spool_dir, int readonly, char *err, size_t errlen)
{
    char path[4096];
    struct qstore *q;
    pthread_rwlockattr_t attr;
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", spool_dir, QSTORE_DIR) >= sizeof(path)) {
        snprintf(err, errlen, "spool_dir too long");
        return -1;
    }
    if (!readonly && mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    q->readonly = readonly;
    /* a waiting resize goes before new readers, so it cannot starve */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&q->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(q);
        snprintf(err, errlen, "queue index: %s", strerror(rc));
        return -1;
    }
    if ((rc = mdb_env_create(&q->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(q->env, QSTORE_MAXDBS);
    /* read-only: the map size the writer last recorded */
    if (!readonly)
        mdb_env_set_mapsize(q->env, QSTORE_MAPSIZE);
    rc = mdb_env_open(q->env, path, readonly ? MDB_RDONLY : MDB_NOMETASYNC, 0600);
    if (rc != 0)
        goto fail;
    if (open_layout(q, path, err, errlen) < 0)
        goto fail_msg;
    *out = q;
    return 0;
fail:
    snprintf(err, errlen, "queue index %s: %s", path, mdb_strerror(rc));
fail_msg:
    if (q->env)
        mdb_env_close(q->env);
    pthread_rwlock_destroy(&q->lock);
    free(q);
    return -1;
}

void qstore_close(struct qstore *q)
{
    if (!q)
        return;
    mdb_env_close(q->env);
    pthread_rwlock_destroy(&q->lock);
    free(q);
}

int qstore_sync(struct qstore *q)
{
    int rc = mdb_env_sync(q->env, 1);

    if (rc != 0) {
        errno = rc > 0 ? rc : EIO;
        return -1;
    }
    return 0;
}

int qstore_set_map_size(struct qstore *q, uint64_t bytes)
{
    int rc;

    if (bytes == 0 || bytes > SIZE_MAX || held_here(q))
        return -1;
    pthread_rwlock_wrlock(&q->lock);
    rc = mdb_env_set_mapsize(q->env, (size_t)bytes);
    pthread_rwlock_unlock(&q->lock);
    return rc == 0 ? 0 : -1;
}

int qstore_reader_check(struct qstore *q)
{
    int dead = 0;

    return mdb_reader_check(q->env, &dead) == 0 ? dead : -1;
}

int qstore_check_devices(const char *spool_dir, char *err, size_t errlen)
{
    char a[4096], b[4096];
    struct stat sa, sb;

    snprintf(a, sizeof(a), "%s/%s", spool_dir, QSTORE_DIR);
    snprintf(b, sizeof(b), "%s/%s", spool_dir, QSTORE_MSG_DIR);
    if (stat(a, &sa) < 0 || stat(b, &sb) < 0) {
        snprintf(err, errlen, "stat %s: %s", stat(a, &sa) < 0 ? a : b, strerror(errno));
        return -1;
    }
    if (sa.st_dev != sb.st_dev) {
        snprintf(err, errlen,
                 "%s and %s are on different file systems: one syncfs cannot make a message "
                 "and its queue record durable together; put both on one file system (see INSTALL)",
                 a, b);
        return -1;
    }
    return 0;
}
