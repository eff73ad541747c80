/*
 * mapdb.c - map keys, mailbox path components, and the read-only look-up
 * of the compiled local-recipient map (mapdb.h).
 *
 * Must never write the map, never open it other than read-only, and never
 * return a path component that could leave mailbox_dir.
 */
#include "mapdb.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "utf8.h"

struct mapdb {
    MDB_env *env;
    MDB_txn *txn;                       /* one read transaction for the handle's life */
    MDB_dbi dbi;
};

static int key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.+=&'~", c) != NULL;
}

int maps_local_key(const char *local, size_t len, char *out, size_t outlen)
{
    size_t i = 0;

    if (len == 0 || len > ADDR_LOCAL_MAX || len >= outlen)
        return -1;
    if (local[0] == '.' || local[len - 1] == '.')
        return -1;
    while (i < len) {
        unsigned char c = (unsigned char)local[i];
        if (c < 0x80) {
            if (c == 0 || !key_char_ok(c) || (c == '.' && i + 1 < len && local[i + 1] == '.'))
                return -1;
            out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(local + i, len - i, &cp);
        if (n == 0 || utf8_is_c1(cp) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF)
            return -1;
        memcpy(out + i, local + i, n);
        i += n;
    }
    out[len] = 0;
    return 0;
}

int maps_addr_key(const struct addr *a, char *out, size_t outlen)
{
    char local[ADDR_LOCAL_MAX + 1];
    const char *p = a->mailbox;
    size_t n = 0, len = a->local_len, dlen = strlen(a->domain);

    if (!a->domain[0] || a->is_literal || len > ADDR_MAX)
        return -1;
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        /* quoted-string: drop the quotes, undo quoted-pairs */
        for (size_t i = 1; i + 1 < len; i++) {
            if (p[i] == '\\' && i + 2 < len)
                i++;
            if (n >= ADDR_LOCAL_MAX)
                return -1;
            local[n++] = p[i];
        }
    } else {
        if (len > ADDR_LOCAL_MAX)
            return -1;
        memcpy(local, p, len);
        n = len;
    }
    if (maps_local_key(local, n, out, outlen) < 0)
        return -1;
    n = strlen(out);
    if (n + 1 + dlen + 1 > outlen)
        return -1;
    out[n++] = '@';
    for (size_t i = 0; i <= dlen; i++) {
        unsigned char c = (unsigned char)a->domain[i];
        out[n + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return 0;
}

int maps_path_component(const char *key, char *out, size_t outlen)
{
    const char *at = key ? strrchr(key, '@') : NULL;
    char local[ADDR_LOCAL_MAX + 1];
    size_t llen, dlen;

    if (!at)
        return -1;
    llen = (size_t)(at - key);
    dlen = strlen(at + 1);
    /* the local part must already be a key (lower case, safe characters) */
    if (maps_local_key(key, llen, local, sizeof(local)) < 0 || memcmp(local, key, llen) != 0)
        return -1;
    if (dlen == 0 || dlen > ADDR_DOMAIN_MAX || at[1] == '.' || !addr_valid_domain(at + 1, dlen, 1))
        return -1;
    for (size_t i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char)at[1 + i];
        if (c == '/' || c < 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z'))
            return -1;
    }
    if (dlen + 1 + llen + 1 > outlen)
        return -1;
    memcpy(out, at + 1, dlen);
    out[dlen] = '/';
    memcpy(out + dlen + 1, key, llen);
    out[dlen + 1 + llen] = 0;
    return 0;
}

int maps_strip_extension(char *key, const char *delims)
{
    char *at = strrchr(key, '@'), *d;

    if (!at || !delims || !*delims)
        return 0;
    /* the first delimiter after the first byte: "+tag@d" has no extension */
    d = key + 1 + strcspn(key + 1, delims);
    if (d >= at)
        return 0;
    memmove(d, at, strlen(at) + 1);
    return 1;
}

int mapdb_open(struct mapdb **out, const char *path, char *err, size_t errlen)
{
    struct mapdb *db = calloc(1, sizeof(*db));
    MDB_val k = { 8, "#version" }, v;
    int rc;

    *out = NULL;
    if (!db) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if ((rc = mdb_env_create(&db->env)) != 0)
        goto fail;
    if ((rc = mdb_env_open(db->env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0)) != 0)
        goto fail;
    if ((rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &db->txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(db->txn, NULL, 0, &db->dbi)) != 0)
        goto fail;
    if ((rc = mdb_get(db->txn, db->dbi, &k, &v)) != 0 || v.mv_size != strlen(MAPDB_VERSION) ||
        memcmp(v.mv_data, MAPDB_VERSION, v.mv_size) != 0) {
        snprintf(err, errlen, "%s: not a map of version %s", path, MAPDB_VERSION);
        mapdb_close(db);
        return -1;
    }
    *out = db;
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
    mapdb_close(db);
    return -1;
}

void mapdb_close(struct mapdb *db)
{
    if (!db)
        return;
    if (db->txn)
        mdb_txn_abort(db->txn);
    if (db->env)
        mdb_env_close(db->env);
    free(db);
}

static int get(struct mapdb *db, char prefix, const char *key, MDB_val *v)
{
    char k[MAPDB_KEY_MAX + 1];
    size_t n = strlen(key);
    MDB_val kv = { n + 1, k };
    int rc;

    if (n >= MAPDB_KEY_MAX)
        return MDB_NOTFOUND;
    k[0] = prefix;
    memcpy(k + 1, key, n);
    rc = mdb_get(db->txn, db->dbi, &kv, v);
    return rc;
}

enum mapdb_kind mapdb_get(struct mapdb *db, const char *key, const char **members, size_t *mlen)
{
    MDB_val v;
    int rc;

    if (!db)
        return MAPDB_ERROR;
    rc = get(db, MAPDB_K_ALIAS, key, &v);
    if (rc == 0) {
        if (members)
            *members = v.mv_data;
        if (mlen)
            *mlen = v.mv_size;
        return MAPDB_ALIAS;
    }
    if (rc != MDB_NOTFOUND)
        return MAPDB_ERROR;
    rc = get(db, MAPDB_K_MAILBOX, key, &v);
    if (rc == 0)
        return MAPDB_MAILBOX;
    return rc == MDB_NOTFOUND ? MAPDB_NONE : MAPDB_ERROR;
}

int mapdb_mailbox(struct mapdb *db, const char *key)
{
    MDB_val v;
    int rc;

    if (!db)
        return -1;
    rc = get(db, MAPDB_K_MAILBOX, key, &v);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

enum mapdb_kind mapdb_find(struct mapdb *db, const struct addr *a, const char *delims, char *found, size_t foundlen,
                           const char **members, size_t *mlen)
{
    char key[MAPDB_KEY_MAX];
    enum mapdb_kind k;

    if (maps_addr_key(a, key, sizeof(key)) < 0)
        return MAPDB_NONE;
    k = mapdb_get(db, key, members, mlen);
    if (k == MAPDB_NONE && maps_strip_extension(key, delims))
        k = mapdb_get(db, key, members, mlen);
    if (k > 0 && found)
        snprintf(found, foundlen, "%s", key);
    return k;
}

#define KEY_ABSENT (-2)

/* Is key the owner's mailbox, or an alias that expands to it? 1 yes, 0 it
 * is someone else's, KEY_ABSENT no such key, -1 read error. */
static int key_owned(struct mapdb *db, const char *key, const char *owner)
{
    MDB_val v;
    int rc, mailbox;

    rc = get(db, MAPDB_K_MAILBOX, key, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return -1;
    mailbox = rc == 0;
    if (mailbox && !strcmp(key, owner))
        return 1;
    rc = get(db, MAPDB_K_ALIAS, key, &v);
    if (rc == MDB_NOTFOUND)
        return mailbox ? 0 : KEY_ABSENT;
    if (rc != 0)
        return -1;
    for (size_t o = 0; o < v.mv_size;) {
        const char *m = (const char *)v.mv_data + o, *end = memchr(m, 0, v.mv_size - o);
        if (!end)
            break;
        if (!strcmp(m, owner))
            return 1;
        o = (size_t)(end - (const char *)v.mv_data) + 1;
    }
    return 0;
}

int mapdb_owned_by(struct mapdb *db, const struct addr *a, const char *delims, const char *owner)
{
    char key[MAPDB_KEY_MAX];
    int r;

    if (!db)
        return -1;
    if (maps_addr_key(a, key, sizeof(key)) < 0)
        return 0;
    r = key_owned(db, key, owner);
    if (r == KEY_ABSENT && maps_strip_extension(key, delims))
        r = key_owned(db, key, owner);
    return r == KEY_ABSENT ? 0 : r;
}

/* ------------------------------------------------------------ quotas */

int mapdb_quota_parse(const char *s, size_t n, struct mapdb_quota *q)
{
    int have_s = 0, have_c = 0;
    size_t i = 0;

    q->bytes = q->msgs = 0;
    while (i < n) {
        uint64_t v = 0;
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return -1;
            v = v * 10 + d;
            i++;
            digits++;
        }
        if (!digits || i >= n)
            return -1;
        if (s[i] == 'S' && !have_s++)
            q->bytes = v;
        else if (s[i] == 'C' && !have_c++)
            q->msgs = v;
        else
            return -1;
        i++;
        if (i < n && (s[i] != ',' || ++i >= n))
            return -1;
    }
    return 0;
}

int mapdb_quota_format(const struct mapdb_quota *q, char *out, size_t len)
{
    int n;

    if (q->bytes && q->msgs)
        n = snprintf(out, len, "%lluS,%lluC", (unsigned long long)q->bytes, (unsigned long long)q->msgs);
    else if (q->bytes)
        n = snprintf(out, len, "%lluS", (unsigned long long)q->bytes);
    else if (q->msgs)
        n = snprintf(out, len, "%lluC", (unsigned long long)q->msgs);
    else
        n = len ? snprintf(out, len, "%s", "") : 0;
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int mapdb_quota(struct mapdb *db, const char *key, struct mapdb_quota *q)
{
    MDB_val v;
    int rc;

    q->bytes = q->msgs = 0;
    if (!db)
        return -1;
    rc = get(db, MAPDB_K_MAILBOX, key, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || mapdb_quota_parse(v.mv_data, v.mv_size, q) < 0)
        return -1;
    return q->bytes || q->msgs ? 1 : 0;
}
