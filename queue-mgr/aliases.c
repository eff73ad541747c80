/*
 * aliases.c - alias expansion at commit time (aliases.h).
 *
 * The map is the master's compiled file in smtpd's jail, opened read-only
 * and reopened when its inode changes (a reload renames a new file over
 * it), so the expansion always follows the map smtpd answered RCPT from.
 * Must never write the map, never expand a member again (the compiler did
 * that, and an alias naming itself means its mailbox), and never turn an
 * address outside local_domains into anything but itself.
 */
#include "aliases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "addr.h"
#include "dsn.h"
#include "log.h"
#include "mapdb.h"
#include "paths.h"
#include "util.h"

static struct mapdb *db;
static dev_t db_dev;
static ino_t db_ino;
static time_t warned;

/* The current map, reopened when the file is a new one; NULL if none. */
static struct mapdb *current_map(const struct config *cfg)
{
    char path[4096], err[512];
    struct stat st;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", cfg->run_dir, SOCK_SMTPD_JAIL, MAPDB_FILE) >= sizeof(path))
        return NULL;
    if (stat(path, &st) < 0) {
        if (time(NULL) != warned)
            log_warning("alias map %s: not available: aliases are not expanded", path);
        warned = time(NULL);
        return db;  /* the old one, if any, is better than none */
    }
    if (db && st.st_dev == db_dev && st.st_ino == db_ino)
        return db;
    struct mapdb *n;
    if (mapdb_open(&n, path, err, sizeof(err)) < 0) {
        if (time(NULL) != warned)
            log_warning("alias map: %s", err);
        warned = time(NULL);
        return db;
    }
    mapdb_close(db);
    db = n;
    db_dev = st.st_dev;
    db_ino = st.st_ino;
    return db;
}

void aliases_close(void)
{
    mapdb_close(db);
    db = NULL;
}

/* Parses a stored recipient; 0, or -1 when it is no address of ours to expand. */
static int parse(const char *s, unsigned flags, struct addr *a)
{
    return addr_parse_mailbox(s, flags, a) == ADDR_OK && a->domain[0] && !a->is_literal ? 0 : -1;
}

/* The addresses added so far, without regard to case: open addressing
 * over indexes into out->rcpt, sized for every address that may come. */
struct seen {
    size_t *slot;               /* index + 1, 0 free */
    size_t mask;
};

static uint32_t hash_ci(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
    }
    return h;
}

/* 1 if addr is there; else it is noted as index idx and 0. */
static int seen_add(struct seen *t, const struct qrec *out, const char *addr, size_t idx)
{
    for (size_t i = hash_ci(addr) & t->mask;; i = (i + 1) & t->mask) {
        if (!t->slot[i]) {
            t->slot[i] = idx + 1;
            return 0;
        }
        if (strcasecmp(out->rcpt[t->slot[i] - 1].addr, addr) == 0)
            return 1;
    }
}

/* Appends one recipient carrying over NOTIFY, ORCPT and the alias. */
static int add(struct qrec *out, struct seen *t, const char *addr, const struct qrcpt *from,
               const char *orcpt, const char *alias)
{
    struct qrcpt *rc;

    if (seen_add(t, out, addr, out->nrcpt))
        return 0;
    if (qrec_add_rcpt(out, addr) < 0)
        return -1;
    rc = &out->rcpt[out->nrcpt - 1];
    rc->notify = from->notify;
    rc->status = from->status;
    rc->next_try = from->next_try;
    if (qrcpt_set(&rc->orcpt, orcpt, QREC_ORCPT_MAX) < 0 || qrcpt_set(&rc->alias, alias, ADDR_MAX) < 0)
        return -1;
    return 0;
}

/* The alias's members when the recipient is one: 1, else 0. */
static int alias_of(const struct config *cfg, struct mapdb **m, int *looked, unsigned flags,
                    const char *addr, const char **members, size_t *mlen)
{
    struct addr a;

    if (parse(addr, flags, &a) < 0 || !config_is_local_domain(cfg, a.domain))
        return 0;
    if (!*looked) {
        *m = current_map(cfg);
        *looked = 1;
    }
    return *m && mapdb_find(*m, &a, cfg->recipient_delimiter, NULL, 0, members, mlen) == MAPDB_ALIAS;
}

int aliases_expand(const struct config *cfg, struct qrec *r, char *err, size_t errlen)
{
    unsigned flags = (r->flags & QF_SMTPUTF8) ? ADDR_UTF8 : 0;
    struct mapdb *m = NULL;
    struct seen t = { NULL, 0 };
    struct qrec out;
    size_t total = 0, cap = 16;
    int expanded = 0, looked = 0;

    /* first: is there an alias at all (most mail has none), and how many
     * addresses can there be */
    for (size_t i = 0; i < r->nrcpt; i++) {
        const char *members;
        size_t mlen;
        if (alias_of(cfg, &m, &looked, flags, r->rcpt[i].addr, &members, &mlen)) {
            expanded++;
            total += MAPDB_MEMBERS_MAX;
        } else {
            total++;
        }
    }
    if (!expanded)
        return 0;
    if (total > QREC_MAX_RCPT + 1)
        total = QREC_MAX_RCPT + 1;  /* no more can be added */
    while (cap < 2 * total)
        cap *= 2;
    if (!(t.slot = calloc(cap, sizeof(*t.slot)))) {
        snprintf(err, errlen, "out of memory expanding aliases");
        return -1;
    }
    t.mask = cap - 1;
    expanded = 0;
    qrec_init(&out);
    for (size_t i = 0; i < r->nrcpt; i++) {
        const struct qrcpt *rc = &r->rcpt[i];
        const char *members = NULL;
        size_t mlen = 0;

        if (!alias_of(cfg, &m, &looked, flags, rc->addr, &members, &mlen)) {
            if (add(&out, &t, rc->addr, rc, rc->orcpt, rc->alias) < 0)
                goto oom;
            continue;
        }
        char orcpt[QREC_ORCPT_MAX + 1];
        const char *o = rc->orcpt;
        if (!o) {
            memcpy(orcpt, "rfc822;", 7);
            if (xtext_encode(rc->addr, strlen(rc->addr), orcpt + 7, sizeof(orcpt) - 7) >= 0)
                o = orcpt;
        }
        for (size_t off = 0; off < mlen;) {
            const char *mem = members + off;
            size_t n = strnlen(mem, mlen - off);
            if (n == mlen - off)
                break;      /* not NUL-terminated: the map is damaged */
            off += n + 1;
            if (n == 0 || n > ADDR_MAX)
                continue;
            for (size_t b = 0; b < n; b++)
                if ((unsigned char)mem[b] >= 0x80)
                    r->flags |= QF_SMTPUTF8;    /* the envelope now has a UTF-8 address */
            if (add(&out, &t, mem, rc, o, rc->addr) < 0)
                goto oom;
        }
        expanded++;
    }
    free(t.slot);
    if (out.nrcpt == 0) {
        snprintf(err, errlen, "aliases expand to no recipient");
        qrec_free(&out);
        return -1;
    }
    qrec_free(r);       /* the recipients only */
    r->rcpt = out.rcpt;
    r->nrcpt = out.nrcpt;
    return expanded;
oom:
    free(t.slot);
    snprintf(err, errlen, out.nrcpt >= QREC_MAX_RCPT ? "too many recipients after alias expansion"
                                                     : "out of memory expanding aliases");
    qrec_free(&out);
    return -1;
}
