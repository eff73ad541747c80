/*
 * qstore.c - the LMDB queue index (qstore.h).
 *
 * One unnamed database: key = queue id (QID_LEN bytes), value = the encoded
 * queue record.
 *
 * Durability: the environment is opened with MDB_NOMETASYNC, so a commit
 * flushes the new data pages but leaves the meta page that makes them
 * current in the page cache. queue-mgr then calls syncfs() on the spool
 * filesystem (spool_sync), which writes the meta page together with the
 * batch's spool files: two flushes per group commit instead of three, and
 * LMDB's integrity is kept because data pages are always on disk before a
 * meta page can point at them. Until that syncfs, a crash may undo the last
 * batch, which is why nobody is told 250 before it.
 */
#include "qstore.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* Address space only: the file grows as records are written. */
#define QSTORE_MAPSIZE ((size_t)16 << 30)

struct qstore {
    MDB_env *env;
    MDB_dbi dbi;
    int readonly;
};

int qstore_open(struct qstore **out, const char *spool_dir, int readonly, char *err, size_t errlen)
{
    char path[4096];
    struct qstore *q;
    MDB_txn *txn;
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
    if ((rc = mdb_env_create(&q->env)) != 0)
        goto fail;
    mdb_env_set_mapsize(q->env, QSTORE_MAPSIZE);
    rc = mdb_env_open(q->env, path, readonly ? MDB_RDONLY : MDB_NOMETASYNC, 0600);
    if (rc != 0)
        goto fail;
    if ((rc = mdb_txn_begin(q->env, NULL, readonly ? MDB_RDONLY : 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &q->dbi)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    *out = q;
    return 0;
fail:
    snprintf(err, errlen, "queue index %s: %s", path, mdb_strerror(rc));
    if (q->env)
        mdb_env_close(q->env);
    free(q);
    return -1;
}

void qstore_close(struct qstore *q)
{
    if (!q)
        return;
    mdb_env_close(q->env);
    free(q);
}

int qstore_put_batch(struct qstore *q, const struct qstore_item *items, size_t n, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(q->env, NULL, 0, &txn)) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        MDB_val k = { QID_LEN, (void *)items[i].qid };
        MDB_val v = { items[i].len, (void *)items[i].val };
        if ((rc = mdb_put(txn, q->dbi, &k, &v, 0)) != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "queue index write: %s", mdb_strerror(rc));
    return -1;
}

int qstore_delete(struct qstore *q, const char *qid)
{
    MDB_txn *txn;
    MDB_val k = { QID_LEN, (void *)qid };
    int rc;

    if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0)
        return -1;
    rc = mdb_del(txn, q->dbi, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return 1;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

long qstore_scan(struct qstore *q, const char *after, qstore_visit_fn fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    long count = 0;
    int rc;

    if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->dbi, &cur) != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
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
        if (k.mv_size != QID_LEN)
            continue; /* not ours; never trust the file blindly */
        memcpy(qid, k.mv_data, QID_LEN);
        qid[QID_LEN] = 0;
        count++;
        if (fn(qid, v.mv_data, v.mv_size, arg))
            break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? count : -1;
}

int qstore_last_id(struct qstore *q, char out[QID_LEN + 1])
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, q->dbi, &cur) != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == QID_LEN) {
        memcpy(out, k.mv_data, QID_LEN);
        out[QID_LEN] = 0;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 1;
    return rc == 0 ? 0 : -1;
}
