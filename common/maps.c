/*
 * maps.c - the map compiler (maps.h): mailboxes_file and aliases_file
 * parsed, checked, aliases expanded, written as one LMDB file (mapdb.h).
 *
 * Runs in the master, on operator files only. Must never write a password
 * hash into the map or into a message (errors name the line, not its
 * hash), never replace the map unless the whole compile succeeded, and
 * never accept a key that maps_path_component() would refuse.
 */
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "mapdb.h"
#include "util.h"

#define LINE_MAX_BYTES 8192     /* one logical line of either file */
#define DEPTH_MAX 32            /* aliases inside aliases */

struct ent {
    char *key;                  /* local@domain, a key */
    const char *file;
    unsigned line;              /* 0: made from the configuration */
    unsigned mailbox : 1, alias : 1, bare : 1, state : 2;
    char **tg;                  /* alias: targets as written */
    size_t ntg;
    char **mem;                 /* alias: the expansion */
    size_t nmem;
    char *hash;                 /* mailbox: its password hash, for the auth map only */
    struct mapdb_quota quota;   /* mailbox: its quota (none: both 0) */
};

struct ctx {
    const struct config *c;
    struct ent *e;
    size_t n, cap;
    struct ent *path[DEPTH_MAX + 1];
    size_t depth;
    unsigned hashes;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 4, 5))) static int fail(struct ctx *x, const char *file, unsigned line, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (line)
        snprintf(x->err, x->errlen, "%s:%u: %s", file, line, why);
    else
        snprintf(x->err, x->errlen, "%s: postmaster_address: %s", x->c->path, why);
    return -1;
}

/* The text of s for a message: at most 100 bytes, escaped. */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s);
    return log_sanitize(s, n > 100 ? 100 : n, buf, len);
}

static void ent_free(struct ent *e)
{
    free(e->key);
    if (e->hash) {
        OPENSSL_cleanse(e->hash, strlen(e->hash));
        free(e->hash);
    }
    for (size_t i = 0; i < e->ntg; i++)
        free(e->tg[i]);
    free(e->tg);
    for (size_t i = 0; i < e->nmem; i++)
        free(e->mem[i]);
    free(e->mem);
}

static struct ent *add(struct ctx *x, const char *key, const char *file, unsigned line)
{
    struct ent *e;

    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        struct ent *ne = realloc(x->e, cap * sizeof(*ne));
        if (!ne)
            return NULL;
        x->e = ne;
        x->cap = cap;
    }
    e = &x->e[x->n];
    memset(e, 0, sizeof(*e));
    if (!(e->key = strdup(key)))
        return NULL;
    e->file = file;
    e->line = line;
    x->n++;
    return e;
}

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    int r = strcmp(x->key, y->key);

    if (r)
        return r;
    if (x->bare != y->bare)
        return x->bare ? 1 : -1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static struct ent *find(struct ctx *x, const char *key)
{
    size_t lo = 0, hi = x->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(key, x->e[mid].key);
        if (r == 0)
            return &x->e[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Sorts and folds entries of one key together: a mailbox and an alias of
 * the same name are one entry; an alias written for its domain beats a
 * bare one; anything else twice is an error. */
static int sort_merge(struct ctx *x)
{
    size_t o = 0;

    if (x->n)
        qsort(x->e, x->n, sizeof(*x->e), cmp_ent);
    for (size_t i = 0; i < x->n; i++) {
        struct ent *e = &x->e[i];
        if (o > 0 && !strcmp(x->e[o - 1].key, e->key)) {
            struct ent *p = &x->e[o - 1];
            char b[256];
            if (e->mailbox && p->mailbox)
                return fail(x, e->file, e->line, "mailbox %s is listed twice (first at line %u)", shown(e->key, b, sizeof(b)), p->line);
            if (e->alias && p->alias && (!e->bare || p->bare))
                return fail(x, e->file, e->line, "alias %s is defined twice (first at %s:%u)", shown(e->key, b, sizeof(b)),
                            p->file, p->line);
            if (e->alias && !(p->alias && e->bare)) {
                /* p is the mailbox: take the alias into it */
                p->alias = 1;
                p->tg = e->tg, p->ntg = e->ntg;
                e->tg = NULL, e->ntg = 0;
            } else if (e->mailbox) {
                p->mailbox = 1;
                p->quota = e->quota;
                p->hash = e->hash;
                e->hash = NULL;
            }
            ent_free(e);
            continue;
        }
        x->e[o++] = *e;
    }
    x->n = o;
    return 0;
}

/* Parses "local@domain" (no quotes) into a key; NULL after fail(). */
static int parse_key(struct ctx *x, const char *s, const char *file, unsigned line, char *key, size_t keylen, int *local)
{
    char path[ADDR_MAX + 3], b[256];
    struct addr a;
    size_t end;

    if (strlen(s) > ADDR_MAX || snprintf(path, sizeof(path), "<%s>", s) < 0 ||
        addr_parse_path(path, strlen(path), ADDR_UTF8, &a, &end) != ADDR_OK || path[end] || !a.domain[0])
        return fail(x, file, line, "\"%s\" is not an address", shown(s, b, sizeof(b)));
    *local = !a.is_literal && config_is_local_domain(x->c, a.domain);
    if (!*local) {
        snprintf(key, keylen, "%.*s@%s", (int)a.local_len, a.mailbox, a.domain);
        return 0;
    }
    if (a.mailbox[0] == '"' || maps_addr_key(&a, key, keylen) < 0)
        return fail(x, file, line, "\"%s\" cannot be a mailbox name (letters, digits, UTF-8 and \"-_.+=&'~\", "
                    "no leading, trailing or double dot, at most 64 bytes)", shown(s, b, sizeof(b)));
    return 0;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

/* Reads one physical line; 1, 0 at the end, -1 after fail(). */
static int read_line(struct ctx *x, FILE *f, const char *file, unsigned *lineno, char *buf, size_t len)
{
    size_t n;

    if (!fgets(buf, (int)len, f))
        return ferror(f) ? fail(x, file, *lineno + 1, "read error: %s", strerror(errno)) : 0;
    ++*lineno;
    n = strlen(buf);
    if (n == len - 1 && buf[n - 1] != '\n')
        return fail(x, file, *lineno, "line too long (at most %d bytes)", LINE_MAX_BYTES - 2);
    return 1;
}

static FILE *open_file(struct ctx *x, const char *file, int *rc)
{
    FILE *f;

    *rc = 0;
    if (!file[0])
        return NULL;
    f = fopen(file, "re");
    if (!f && errno != ENOENT) {
        snprintf(x->err, x->errlen, "%s: %s", file, strerror(errno));
        *rc = -1;
    }
    return f;
}

/* "N[unit]" of a quota limit, Dovecot's units (b, k, M, G, T, any case;
 * none: unit): 0, or -1 when malformed or too large. */
static int quota_number(const char *v, uint64_t unit, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = v;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case 0: break;
    case 'b': case 'B': unit = 1; break;
    case 'k': case 'K': unit = 1024; break;
    case 'm': case 'M': unit = 1024 * 1024; break;
    case 'g': case 'G': unit = 1024 * 1024 * 1024; break;
    case 't': case 'T': unit = 1024ull * 1024 * 1024 * 1024; break;
    default: return -1;
    }
    if (*p && p[1])
        return -1;
    if (n && unit > UINT64_MAX / n)
        return -1;
    *out = n * unit;
    return 0;
}

#define QUOTA_UNDERSTOOD "Postern understands \"*:storage=N\", \"*:bytes=N\" and \"*:messages=N\" " \
    "(units b, k, M, G, T; several joined with ':'), in userdb_quota_rule, userdb_quota_rule2, ..."

/* One quota rule "MASK:LIMIT[:LIMIT]" (Dovecot's syntax) into q. */
static int quota_rule(struct ctx *x, const char *file, unsigned line, const char *name, const char *rule,
                      struct mapdb_quota *q)
{
    char buf[512], b[256], *save, *lim;

    if (strlen(rule) >= sizeof(buf))
        return fail(x, file, line, "%s is too long", name);
    snprintf(buf, sizeof(buf), "%s", rule);
    lim = strchr(buf, ':');
    if (strncmp(buf, "*:", 2) != 0 || !lim[1])
        return fail(x, file, line, "%s=%s: only a rule for \"*\" (the whole mailbox) can be enforced; %s", name,
                    shown(rule, b, sizeof(b)), QUOTA_UNDERSTOOD);
    for (char *l = strtok_r(lim + 1, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
        char *eq = strchr(l, '=');
        uint64_t v, *dst;
        uint64_t unit = 1;
        if (eq)
            *eq++ = 0;
        if (!strcmp(l, "storage"))
            dst = &q->bytes, unit = 1024;       /* Dovecot: kilobytes without a unit */
        else if (!strcmp(l, "bytes"))
            dst = &q->bytes;
        else if (!strcmp(l, "messages"))
            dst = &q->msgs;
        else
            return fail(x, file, line, "%s=%s: \"%s\" cannot be enforced; %s", name, shown(rule, b, sizeof(b)),
                        l, QUOTA_UNDERSTOOD);
        if (!eq || quota_number(eq, unit, &v) < 0)
            return fail(x, file, line, "%s=%s: \"%s\" needs a number (no '+', '-' or %%); %s", name,
                        shown(rule, b, sizeof(b)), l, QUOTA_UNDERSTOOD);
        *dst = v;
    }
    return 0;
}

/* The extra fields of a passwd-file line (space-separated key=value): the
 * quota rules into q; every other field (Dovecot's) is left alone. */
static int extra_fields(struct ctx *x, const char *file, unsigned line, char *extra, struct mapdb_quota *q)
{
    char *save, b[256];
    unsigned seen = 0, top = 0;

    for (char *f = strtok_r(extra, " \t", &save); f; f = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(f, '='), *name = f, *end;
        unsigned long idx = 1;
        if (!strncmp(name, "userdb_", 7))
            name += 7;
        if (strncmp(name, "quota_rule", 10) != 0)
            continue;
        end = name + 10;
        if (*end >= '0' && *end <= '9')
            idx = strtoul(end, &end, 10);
        if (*end && *end != '=')
            continue;           /* another field ("quota_rules"): not ours */
        if (!eq)
            return fail(x, file, line, "%s without a value; %s", shown(f, b, sizeof(b)), QUOTA_UNDERSTOOD);
        *eq = 0;
        if (name[10] && (idx < 2 || name[10] == '0'))
            return fail(x, file, line, "%s: Dovecot does not read it (the rules are quota_rule, quota_rule2, "
                        "quota_rule3, ...)", shown(f, b, sizeof(b)));
        if (idx > 31)
            return fail(x, file, line, "%s: at most 31 quota rules", shown(f, b, sizeof(b)));
        if (seen & (1u << idx))
            return fail(x, file, line, "%s is given twice", shown(f, b, sizeof(b)));
        seen |= 1u << idx;
        if (idx > top)
            top = (unsigned)idx;
        if (quota_rule(x, file, line, f, eq + 1, q) < 0)
            return -1;
    }
    /* Dovecot reads quota_rule, quota_rule2, ... up to the first missing
     * one: a rule after a gap would count here and not there */
    for (unsigned i = 1; i <= top; i++)
        if (!(seen & (1u << i))) {
            char missing[16] = "";
            if (i > 1)
                snprintf(missing, sizeof(missing), "%u", i);
            return fail(x, file, line, "quota_rule%u without quota_rule%s before it (Dovecot stops at the "
                        "first missing number)", top, missing);
        }
    return 0;
}

/*
 * One mailboxes_file line, Dovecot's passwd-file format:
 * "user@domain[:HASH[:uid:gid:gecos:home:shell[:extra fields]]]". Fields 3
 * to 7 are Dovecot's; the hash may be empty when more fields follow (no
 * AUTH for that user). *hash points into s or is NULL.
 */
static int mailbox_line(struct ctx *x, const char *file, unsigned lineno, char *s, char **hash,
                        struct mapdb_quota *q)
{
    char *f[8] = { s }, *p = s;
    size_t n = 1;

    *hash = NULL;
    memset(q, 0, sizeof(*q));
    /* the 8th field is the rest of the line: extra fields hold ':' */
    while (n < 8 && (p = strchr(p, ':'))) {
        *p++ = 0;
        f[n++] = p;
    }
    trim(s);
    if (n == 1)
        return 0;
    *hash = trim(f[1]);
    if (!**hash) {
        if (n == 2)
            return fail(x, file, lineno, "empty password hash after ':'");
        *hash = NULL;
    }
    /* shape only: printable ASCII, no space; never shown */
    for (char *h = *hash; h && *h; h++)
        if (*h <= ' ' || *h >= 0x7f)
            return fail(x, file, lineno, "the password hash has a space or a non-printable character");
    if (n == 8 && extra_fields(x, file, lineno, f[7], q) < 0)
        return -1;
    return 0;
}

static int load_mailboxes(struct ctx *x)
{
    const char *file = x->c->mailboxes_file;
    char buf[LINE_MAX_BYTES], key[MAPDB_KEY_MAX], b[256];
    unsigned lineno = 0;
    int rc, local;
    FILE *f = open_file(x, file, &rc);

    if (!f)
        return rc;
    while ((rc = read_line(x, f, file, &lineno, buf, sizeof(buf))) > 0) {
        char *s = trim(buf), *hash;
        struct mapdb_quota q;
        struct ent *e;
        if (!*s || *s == '#')
            continue;
        if ((rc = mailbox_line(x, file, lineno, s, &hash, &q)) < 0)
            break;
        s = trim(s);
        if ((rc = parse_key(x, s, file, lineno, key, sizeof(key), &local)) < 0)
            break;
        if (!local) {
            rc = fail(x, file, lineno, "%s is not in local_domains", shown(s, b, sizeof(b)));
            break;
        }
        if (!(e = add(x, key, file, lineno))) {
            rc = fail(x, file, lineno, "out of memory");
            break;
        }
        e->mailbox = 1;
        e->quota = q;
        x->hashes += hash != NULL;
        if (hash && !(e->hash = strdup(hash))) {
            rc = fail(x, file, lineno, "out of memory");
            break;
        }
    }
    fclose(f);
    return rc < 0 ? -1 : 0;
}

/* Splits "t1, t2 t3" into the entry's targets. */
static int add_targets(struct ctx *x, struct ent *e, char *rhs)
{
    char *save, *t, b[256];

    for (t = strtok_r(rhs, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        char **ntg;
        if (*t == '|' || *t == '/' || !strncmp(t, ":include:", 9))
            return fail(x, e->file, e->line, "\"%s\": pipes, files and :include: are not supported",
                        shown(t, b, sizeof(b)));
        if (*t == '<' && t[strlen(t) - 1] == '>') {
            t[strlen(t) - 1] = 0;
            t++;
        }
        if (!*t)
            continue;
        if (e->ntg >= MAPDB_MEMBERS_MAX)
            return fail(x, e->file, e->line, "more than %d targets", MAPDB_MEMBERS_MAX);
        if (!(ntg = realloc(e->tg, (e->ntg + 1) * sizeof(*ntg))) || !(ntg[e->ntg] = strdup(t))) {
            if (ntg)
                e->tg = ntg;
            return fail(x, e->file, e->line, "out of memory");
        }
        e->tg = ntg;
        e->ntg++;
    }
    if (!e->ntg)
        return fail(x, e->file, e->line, "alias without a target");
    return 0;
}

/* One logical line "alias: targets". */
static int alias_line(struct ctx *x, const char *file, unsigned lineno, char *s)
{
    char *colon = strchr(s, ':'), *lhs, key[MAPDB_KEY_MAX], b[256];
    const struct strlist *d = &x->c->local_domains;
    int local;

    if (!colon)
        return fail(x, file, lineno, "expected \"alias: target, target\"");
    *colon = 0;
    lhs = trim(s);
    if (!strchr(lhs, '@')) {
        /* a bare name: the alias in every local domain */
        char addr[ADDR_MAX + 1];
        for (size_t i = 0; i < d->n; i++) {
            struct ent *e;
            char rhs[LINE_MAX_BYTES];
            snprintf(rhs, sizeof(rhs), "%s", colon + 1);
            if (snprintf(addr, sizeof(addr), "%s@%s", lhs, d->v[i]) >= (int)sizeof(addr) ||
                parse_key(x, addr, file, lineno, key, sizeof(key), &local) < 0)
                return fail(x, file, lineno, "\"%s\" cannot be an alias name", shown(lhs, b, sizeof(b)));
            if (!(e = add(x, key, file, lineno)))
                return fail(x, file, lineno, "out of memory");
            e->alias = e->bare = 1;
            if (add_targets(x, e, rhs) < 0)
                return -1;
        }
        return 0;
    }
    if (parse_key(x, lhs, file, lineno, key, sizeof(key), &local) < 0)
        return -1;
    if (!local)
        return fail(x, file, lineno, "%s is not in local_domains", shown(lhs, b, sizeof(b)));
    struct ent *e = add(x, key, file, lineno);
    if (!e)
        return fail(x, file, lineno, "out of memory");
    e->alias = 1;
    return add_targets(x, e, colon + 1);
}

static int load_aliases(struct ctx *x)
{
    const char *file = x->c->aliases_file;
    char buf[LINE_MAX_BYTES], *logical;
    unsigned lineno = 0, start = 0;
    size_t len = 0;
    int rc;
    FILE *f = open_file(x, file, &rc);

    if (!f)
        return rc;
    if (!(logical = malloc(LINE_MAX_BYTES))) {
        fclose(f);
        return fail(x, file, 0, "out of memory");
    }
    for (;;) {
        rc = read_line(x, f, file, &lineno, buf, sizeof(buf));
        if (rc < 0)
            break;
        int cont = rc > 0 && (buf[0] == ' ' || buf[0] == '\t');
        char *s = rc > 0 ? trim(buf) : buf;
        if (rc > 0 && *s == '#')
            continue;
        if (cont && *s && len) {
            if (len + 2 + strlen(s) >= LINE_MAX_BYTES) {
                rc = fail(x, file, lineno, "alias too long (at most %d bytes)", LINE_MAX_BYTES - 2);
                break;
            }
            len += (size_t)sprintf(logical + len, ", %s", s);
            continue;
        }
        if (cont && *s) {
            rc = fail(x, file, lineno, "continuation line without an alias before it");
            break;
        }
        if (len && alias_line(x, file, start, logical) < 0) {
            rc = -1;
            break;
        }
        len = 0;
        if (rc == 0)
            break;
        if (*s) {
            len = (size_t)snprintf(logical, LINE_MAX_BYTES, "%s", s);
            start = lineno;
        }
        rc = 1;
    }
    free(logical);
    fclose(f);
    return rc < 0 ? -1 : 0;
}

/* postmaster@ and abuse@ of every local domain. */
static int add_defaults(struct ctx *x)
{
    const struct strlist *d = &x->c->local_domains;
    const char *pm = x->c->postmaster_address;
    static const char *const names[] = { "postmaster", "abuse" };
    char key[MAPDB_KEY_MAX], pmkey[MAPDB_KEY_MAX];
    size_t before = x->n;
    int local;

    if (parse_key(x, pm, x->c->path, 0, pmkey, sizeof(pmkey), &local) < 0)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        for (size_t j = 0; j < ARRAY_LEN(names); j++) {
            struct ent *e;
            snprintf(key, sizeof(key), "%s@%s", names[j], d->v[i]);
            if (find(x, key))
                continue;
            for (size_t k = before; k < x->n; k++)
                if (!strcmp(x->e[k].key, key))
                    goto next;
            if (!(e = add(x, key, x->c->path, 0)))
                return fail(x, x->c->path, 0, "out of memory");
            if (j == 0 && local && !strcmp(pmkey, key)) {
                e->mailbox = 1;
                continue;
            }
            e->alias = 1;
            if (!(e->tg = malloc(sizeof(char *))) || !(e->tg[0] = strdup(pm)))
                return fail(x, x->c->path, 0, "out of memory");
            e->ntg = 1;
        next:;
        }
    }
    if (x->n)
        qsort(x->e, x->n, sizeof(*x->e), cmp_ent);
    return 0;
}

static int add_member(struct ctx *x, struct ent *e, const char *m)
{
    char **nm;

    for (size_t i = 0; i < e->nmem; i++)
        if (!strcmp(e->mem[i], m))
            return 0;
    if (e->nmem >= MAPDB_MEMBERS_MAX)
        return fail(x, e->file, e->line, "alias %s expands to more than %d addresses", e->key, MAPDB_MEMBERS_MAX);
    if (!(nm = realloc(e->mem, (e->nmem + 1) * sizeof(*nm))) || !(nm[e->nmem] = strdup(m))) {
        if (nm)
            e->mem = nm;
        return fail(x, e->file, e->line, "out of memory");
    }
    e->mem = nm;
    e->nmem++;
    return 0;
}

static int loop_error(struct ctx *x, struct ent *e, struct ent *t)
{
    char chain[1024];
    size_t o = 0, i = 0;

    while (i < x->depth && x->path[i] != t)
        i++;
    for (; i < x->depth && o < sizeof(chain); i++)
        o += (size_t)snprintf(chain + o, sizeof(chain) - o, "%s -> ", x->path[i]->key);
    if (o < sizeof(chain))
        snprintf(chain + o, sizeof(chain) - o, "%s", t->key);
    (void)e;
    /* reported where the loop starts: the first alias of the chain */
    return fail(x, t->file, t->line, "alias loop: %s", chain);
}

static int resolve(struct ctx *x, struct ent *e)
{
    const char *dom = strrchr(e->key, '@') + 1;

    if (e->state == 2)
        return 0;
    if (x->depth >= DEPTH_MAX)
        return fail(x, e->file, e->line, "aliases nested deeper than %d", DEPTH_MAX);
    e->state = 1;
    x->path[x->depth++] = e;
    for (size_t i = 0; i < e->ntg; i++) {
        char addr[ADDR_MAX + 1], key[MAPDB_KEY_MAX], b[256];
        struct ent *t;
        int local;
        if (strchr(e->tg[i], '@'))
            snprintf(addr, sizeof(addr), "%s", e->tg[i]);
        else if (snprintf(addr, sizeof(addr), "%s@%s", e->tg[i], dom) >= (int)sizeof(addr))
            return fail(x, e->file, e->line, "\"%s\" is not an address", shown(e->tg[i], b, sizeof(b)));
        if (parse_key(x, addr, e->file, e->line, key, sizeof(key), &local) < 0)
            return -1;
        if (!local) {
            if (add_member(x, e, key) < 0)
                return -1;
            continue;
        }
        t = find(x, key);
        if (!t && maps_strip_extension(key, x->c->recipient_delimiter))
            t = find(x, key);
        if (!t)
            return fail(x, e->file, e->line, "%s is neither a mailbox nor an alias%s", shown(addr, b, sizeof(b)),
                        e->bare && !strchr(e->tg[i], '@') ? " (a bare alias is in every local domain, and so "
                        "are its bare targets)" : "");
        if (t->alias && t->state == 1) {
            if (!t->mailbox)
                return loop_error(x, e, t);
            if (add_member(x, e, t->key) < 0)
                return -1;
            continue;
        }
        if (t->alias) {
            if (resolve(x, t) < 0)
                return -1;
            for (size_t k = 0; k < t->nmem; k++)
                if (add_member(x, e, t->mem[k]) < 0)
                    return -1;
            continue;
        }
        if (add_member(x, e, t->key) < 0)
            return -1;
    }
    x->depth--;
    e->state = 2;
    return 0;
}

static int put(MDB_txn *txn, MDB_dbi dbi, char prefix, const char *key, const void *val, size_t vlen)
{
    char k[MAPDB_KEY_MAX + 1];
    size_t n = strlen(key);
    MDB_val kv = { n + 1, k }, vv = { vlen, (void *)val };

    if (n >= MAPDB_KEY_MAX)
        return MDB_BAD_VALSIZE;
    k[0] = prefix;
    memcpy(k + 1, key, n);
    return mdb_put(txn, dbi, &kv, &vv, 0);
}

/* One alias's members, NUL-terminated each (a member is at most a key). */
#define BUF_MAX ((size_t)MAPDB_MEMBERS_MAX * MAPDB_KEY_MAX)

/* The smtpd map's records: mailboxes and expanded aliases. */
static int fill_map(struct ctx *x, MDB_txn *txn, MDB_dbi dbi, char *buf)
{
    int rc;

    for (size_t i = 0; i < x->n; i++) {
        struct ent *e = &x->e[i];
        char quota[64];
        int qlen = mapdb_quota_format(&e->quota, quota, sizeof(quota));
        if (e->mailbox && (qlen < 0 || (rc = put(txn, dbi, MAPDB_K_MAILBOX, e->key, quota, (size_t)qlen)) != 0))
            return qlen < 0 ? MDB_BAD_VALSIZE : rc;
        if (e->alias) {
            size_t o = 0;
            for (size_t k = 0; k < e->nmem; k++) {
                size_t n = strlen(e->mem[k]) + 1;
                if (o + n > BUF_MAX)
                    return MDB_BAD_VALSIZE;
                memcpy(buf + o, e->mem[k], n);
                o += n;
            }
            if ((rc = put(txn, dbi, MAPDB_K_ALIAS, e->key, buf, o)) != 0)
                return rc;
        }
    }
    return 0;
}

/* The auth map's records: 'H' + mailbox key -> its hash. */
static int fill_auth(struct ctx *x, MDB_txn *txn, MDB_dbi dbi, char *buf)
{
    int rc;

    (void)buf;
    for (size_t i = 0; i < x->n; i++)
        if (x->e[i].mailbox && x->e[i].hash &&
            (rc = put(txn, dbi, MAPDB_K_HASH, x->e[i].key, x->e[i].hash, strlen(x->e[i].hash))) != 0)
            return rc;
    return 0;
}

/* Writes OUT.NEW with fill's records (mode, and owner when owner set:
 * both set once it is written, since LMDB reopens the file to write it),
 * syncs it and renames it over out. */
static int write_lmdb(struct ctx *x, const char *out, mode_t mode, const struct maps_owner *owner,
                      int (*fill)(struct ctx *, MDB_txn *, MDB_dbi, char *))
{
    char tmp[4096], lock[4200], dir[4096];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    size_t bytes = 0;
    int rc, fd;
    char *buf = NULL;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.NEW", out) >= sizeof(tmp)) {
        snprintf(x->err, x->errlen, "%s: path too long", out);
        return -1;
    }
    snprintf(lock, sizeof(lock), "%s-lock", tmp);
    unlink(tmp);
    unlink(lock);
    for (size_t i = 0; i < x->n; i++) {
        bytes += 2 * strlen(x->e[i].key) + 64 + (x->e[i].hash ? strlen(x->e[i].hash) : 0);
        for (size_t k = 0; k < x->e[i].nmem; k++)
            bytes += strlen(x->e[i].mem[k]) + 1;
    }
    if (!(buf = malloc(BUF_MAX)))
        goto oom;
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_mapsize(env, ((size_t)64 << 20) + bytes * 8)) != 0 ||
        (rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, mode | 0600)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 || (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
        (rc = put(txn, dbi, MAPDB_K_META, "version", MAPDB_VERSION, strlen(MAPDB_VERSION))) != 0)
        goto lmdb;
    if ((rc = fill(x, txn, dbi, buf)) != 0)
        goto lmdb;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0 || (rc = mdb_env_sync(env, 1)) != 0)
        goto lmdb;
    mdb_env_close(env);
    env = NULL;
    free(buf);
    buf = NULL;
    if (chmod(tmp, mode) < 0 || (owner && chown(tmp, owner->uid, owner->gid) < 0)) {
        snprintf(x->err, x->errlen, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, out) < 0) {
        snprintf(x->err, x->errlen, "%s: rename: %s", out, strerror(errno));
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", out);
    if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
lmdb:
    snprintf(x->err, x->errlen, "%s: %s", tmp, mdb_strerror(rc));
    goto cleanup;
oom:
    snprintf(x->err, x->errlen, "%s: out of memory", tmp);
cleanup:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    free(buf);
    unlink(tmp);
    return -1;
}

int maps_compile(const struct config *c, const char *out, struct maps_stats *st, char *err, size_t errlen)
{
    return maps_compile_auth(c, out, NULL, NULL, st, err, errlen);
}

int maps_compile_auth(const struct config *c, const char *out, const char *auth_out, const struct maps_owner *auth_owner,
                      struct maps_stats *st, char *err, size_t errlen)
{
    struct ctx x = { .c = c, .err = err, .errlen = errlen };
    int rc = -1;

    err[0] = 0;
    if (load_mailboxes(&x) < 0 || load_aliases(&x) < 0 || sort_merge(&x) < 0 || add_defaults(&x) < 0)
        goto out;
    for (size_t i = 0; i < x.n; i++)
        if (x.e[i].alias && (x.depth = 0, resolve(&x, &x.e[i])) < 0)
            goto out;
    if (st) {
        memset(st, 0, sizeof(*st));
        for (size_t i = 0; i < x.n; i++) {
            st->mailboxes += x.e[i].mailbox;
            st->aliases += x.e[i].alias;
        }
        st->hashes = x.hashes;
    }
    rc = out ? write_lmdb(&x, out, 0644, NULL, fill_map) : 0;
    /* the hashes go only to the auth process's map, never to smtpd's */
    if (rc == 0 && auth_out)
        rc = write_lmdb(&x, auth_out, 0440, auth_owner, fill_auth);
out:
    for (size_t i = 0; i < x.n; i++)
        ent_free(&x.e[i]);
    free(x.e);
    return rc;
}
