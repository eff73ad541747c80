/*
 * passwd.c - the password map (passwd.h). Must never open it other than
 * read-only, and never log a hash.
 */
#include "passwd.h"

#include <lmdb.h>
#include <stdio.h>
#include <string.h>

#include "mapdb.h"

static MDB_env *env;
static MDB_txn *txn;
static MDB_dbi dbi;

static void close_env(MDB_env *e, MDB_txn *t)
{
    if (t)
        mdb_txn_abort(t);
    if (e)
        mdb_env_close(e);
}

int passwd_open(const char *path, char *err, size_t errlen)
{
    MDB_env *e = NULL;
    MDB_txn *t = NULL;
    MDB_dbi d;
    MDB_val k = { 8, "#version" }, v;
    int rc;

    if ((rc = mdb_env_create(&e)) != 0 ||
        (rc = mdb_env_open(e, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOTLS, 0)) != 0 ||
        (rc = mdb_txn_begin(e, NULL, MDB_RDONLY, &t)) != 0 || (rc = mdb_dbi_open(t, NULL, 0, &d)) != 0) {
        snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
        close_env(e, t);
        return -1;
    }
    if (mdb_get(t, d, &k, &v) != 0 || v.mv_size != strlen(MAPDB_VERSION) ||
        memcmp(v.mv_data, MAPDB_VERSION, v.mv_size) != 0) {
        snprintf(err, errlen, "%s: not a map of version %s", path, MAPDB_VERSION);
        close_env(e, t);
        return -1;
    }
    passwd_close();
    env = e;
    txn = t;
    dbi = d;
    return 0;
}

void passwd_close(void)
{
    close_env(env, txn);
    env = NULL;
    txn = NULL;
}

int passwd_lookup(const char *key, char *out, size_t outlen)
{
    char k[MAPDB_KEY_MAX + 1];
    size_t n = strlen(key);
    MDB_val kv = { n + 1, k }, v;
    int rc;

    if (!txn)
        return -1;
    if (n >= MAPDB_KEY_MAX)
        return 0;
    k[0] = MAPDB_K_HASH;
    memcpy(k + 1, key, n);
    rc = mdb_get(txn, dbi, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return -1;
    if (v.mv_size == 0 || v.mv_size >= outlen || memchr(v.mv_data, 0, v.mv_size))
        return 0;
    memcpy(out, v.mv_data, v.mv_size);
    out[v.mv_size] = 0;
    return 1;
}
