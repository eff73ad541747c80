/*
 * config_values.c - the value parsers of postern.conf: one small function a
 * value type (config_impl.h enum config_type), chosen by the key's type in
 * config_set_value(); numbers, sizes, durations, words, files and lists
 * here, the network syntaxes in config_net.c.
 *
 * A parser either sets its field and returns 0, or leaves the field alone
 * and returns -1 with the reason in why (the reader adds FILE:LINE: KEY:).
 * Values come from a file root reads: every copy is bounded, lists hold at
 * most CONF_MAX_LIST entries, and nothing is ever silently truncated.
 */
#include "config_impl.h"
#include "addr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- helpers */

void config_fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}

int config_copy(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstlen)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int config_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int has_space(const char *s)
{
    for (; *s; s++)
        if (config_is_space((unsigned char)*s))
            return 1;
    return 0;
}

void config_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* A whole decimal number in [min, max]; no sign, no white space. */
int config_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    unsigned long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (ULLONG_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits a list value on commas and white space; empty items are skipped. */
struct tokens {
    size_t n;
    char *v[CONF_MAX_LIST + 1];     /* one more, to notice overflow */
    char buf[CONFIG_VALUE_MAX];
};

static int split_list(const char *s, struct tokens *t)
{
    char *p;

    t->n = 0;
    if (config_copy(t->buf, sizeof t->buf, s) < 0)
        return -1;
    for (p = t->buf; *p;) {
        while (*p == ',' || config_is_space((unsigned char)*p))
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (t->n > CONF_MAX_LIST)
            return -1;
        t->v[t->n++] = p;
        while (*p && *p != ',' && !config_is_space((unsigned char)*p))
            p++;
    }
    return t->n > CONF_MAX_LIST ? -1 : 0;
}

void config_strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n && i < CONF_MAX_LIST; i++) {
        free(l->v[i]);
        l->v[i] = NULL;
    }
    l->n = 0;
}

int config_strlist_has(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

int config_strlist_add(struct strlist *l, const char *s)
{
    char *d;

    if (l->n >= CONF_MAX_LIST)
        return -1;
    if ((d = strdup(s)) == NULL)
        return -1;
    l->v[l->n++] = d;
    return 0;
}

/* --------------------------------------------------------- value parsers */

int config_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    switch (*s) {
    case '\0': break;
    case 'K': case 'k': mult = 1024; s++; break;
    case 'M': case 'm': mult = 1024 * 1024; s++; break;
    case 'G': case 'g': mult = 1024 * 1024 * 1024; s++; break;
    default: return -1;
    }
    if (*s != '\0')
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int config_parse_duration(const char *s, unsigned *out)
{
    unsigned long long v = 0, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > UINT_MAX)
            return -1;            /* stop early; the digits are garbage anyway */
        v = v * 10 + (unsigned)(*s - '0');
    }
    switch (*s) {
    case '\0': break;
    case 's': s++; break;
    case 'm': mult = 60; s++; break;
    case 'h': mult = 3600; s++; break;
    case 'd': mult = 86400; s++; break;
    default: return -1;
    }
    if (*s != '\0' || v > UINT_MAX || v * mult > UINT_MAX)
        return -1;
    *out = (unsigned)(v * mult);
    return 0;
}

/* ------------------------------------------------------ one per value type */

typedef int (*setter_fn)(void *field, const struct config_key *k, const char *v,
                         char *why, size_t whylen);

static int set_hostname(void *field, const struct config_key *k, const char *v,
                        char *why, size_t whylen)
{
    if (*v == '\0' || !addr_valid_domain(v, strlen(v), 0)) {
        config_fmt(why, whylen, "\"%.100s\" is not a valid host name", v);
        return -1;
    }
    if (config_copy(field, k->size, v) < 0) {
        config_fmt(why, whylen, "value too long (at most %zu characters)", k->size - 1);
        return -1;
    }
    return 0;
}

/* A single value: white space in it is a typo, not part of a path. */
static int check_single(const struct config_key *k, const char *v, char *why, size_t whylen)
{
    if (has_space(v)) {
        config_fmt(why, whylen, "\"%.100s\": one value expected, found white space", v);
        return -1;
    }
    if (strlen(v) >= k->size) {
        config_fmt(why, whylen, "value too long (at most %zu characters)", k->size - 1);
        return -1;
    }
    return 0;
}

/* CT_DIR, CT_USER: a single value, not empty. */
static int set_word(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    if (*v == '\0') {
        config_fmt(why, whylen, "empty value");
        return -1;
    }
    if (check_single(k, v, why, whylen) < 0)
        return -1;
    config_copy(field, k->size, v);
    return 0;
}

/* CT_TLSFILE, CT_OPTFILE: empty, or a regular file that exists. */
static int set_file(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    struct stat st;

    if (check_single(k, v, why, whylen) < 0)
        return -1;
    /* Existence only: the key is root's to read, and processes that re-read
     * this file after dropping root must not fail. */
    if (*v != '\0') {
        if (stat(v, &st) < 0) {
            config_fmt(why, whylen, "\"%.100s\": %s", v, strerror(errno));
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            config_fmt(why, whylen, "\"%.100s\": not a regular file", v);
            return -1;
        }
    }
    config_copy(field, k->size, v);
    return 0;
}

static int set_relayhost(void *field, const struct config_key *k, const char *v,
                         char *why, size_t whylen)
{
    if (check_single(k, v, why, whylen) < 0)
        return -1;
    if (*v != '\0' && config_net_relayhost(v) < 0) {
        config_fmt(why, whylen, "\"%.100s\": expected [host]:port, host:port or host", v);
        return -1;
    }
    config_copy(field, k->size, v);
    return 0;
}

/* local_transport: "maildir", "lmtp:unix:/absolute/path", or "lmtp:" and
 * a destination in the relayhost's forms ("[host]:port", "host:port"). */
static int set_transport(void *field, const struct config_key *k, const char *v,
                         char *why, size_t whylen)
{
    if (check_single(k, v, why, whylen) < 0)
        return -1;
    if (strcmp(v, "maildir") == 0) {
        config_copy(field, k->size, v);
        return 0;
    }
    if (strncmp(v, "lmtp:unix:", 10) == 0) {
        const char *p = v + 10;
        if (p[0] != '/' || strlen(p) >= 108 || strstr(p, "/../") || strpbrk(p, " \t")) {
            config_fmt(why, whylen, "\"%.100s\": lmtp:unix: needs an absolute socket path "
                       "(at most 107 bytes)", v);
            return -1;
        }
    } else if (strncmp(v, "lmtp:", 5) != 0 || !v[5] || config_net_relayhost(v + 5) < 0 ||
               !strchr(v + 5, ':')) {
        config_fmt(why, whylen, "\"%.100s\": expected maildir, lmtp:unix:/path, lmtp:[host]:port "
                   "or lmtp:host:port", v);
        return -1;
    }
    if (config_copy(field, k->size, v) < 0) {
        config_fmt(why, whylen, "value too long");
        return -1;
    }
    return 0;
}

static int set_size(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    uint64_t sz;

    if (config_parse_size(v, &sz) < 0 || sz < k->min || sz > k->max) {
        config_fmt(why, whylen, "\"%.100s\": expected a size of at least %llu, "
                   "a number with an optional K, M or G", v, k->min);
        return -1;
    }
    *(uint64_t *)field = sz;
    return 0;
}

static int set_uint(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    unsigned long long n;

    if (config_parse_uint(v, k->min, k->max, &n) < 0) {
        config_fmt(why, whylen, "\"%.100s\": expected a whole number from %llu to %llu",
                   v, k->min, k->max);
        return -1;
    }
    *(unsigned *)field = (unsigned)n;
    return 0;
}

static int set_duration(void *field, const struct config_key *k, const char *v,
                        char *why, size_t whylen)
{
    unsigned d;

    if (config_parse_duration(v, &d) < 0 || d < k->min) {
        config_fmt(why, whylen, "\"%.100s\": expected a duration%s, a number with an "
                   "optional s, m, h or d", v, k->min ? " of at least 1s" : "");
        return -1;
    }
    *(unsigned *)field = d;
    return 0;
}

static int set_bool(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    (void)k;
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
        *(int *)field = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
        *(int *)field = 0;
    else {
        config_fmt(why, whylen, "\"%.100s\": expected yes or no", v);
        return -1;
    }
    return 0;
}

static int set_loglevel(void *field, const struct config_key *k, const char *v,
                        char *why, size_t whylen)
{
    (void)k;
    if (!strcasecmp(v, "info"))
        *(int *)field = 0;
    else if (!strcasecmp(v, "debug"))
        *(int *)field = 1;
    else {
        config_fmt(why, whylen, "\"%.100s\": expected info or debug", v);
        return -1;
    }
    return 0;
}

/* CT_CHOICE: one of the key's words (config_choices), case-insensitively. */
static int set_choice(void *field, const struct config_key *k, const char *v,
                      char *why, size_t whylen)
{
    const char *const *w = config_choices[k->min];
    char list[200];
    size_t o = 0;

    for (int i = 0; w[i]; i++) {
        if (!strcasecmp(v, w[i])) {
            *(int *)field = i;
            return 0;
        }
        o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s%s", i ? " or " : "", w[i]);
        if (o >= sizeof list)
            o = sizeof list - 1;
    }
    config_fmt(why, whylen, "\"%.100s\": expected %s", v, list);
    return -1;
}

/* CT_DELIMITER: empty, or distinct characters of "+-_=." (Postfix allows
 * several delimiters; these never occur in a domain and are safe in paths). */
static int set_delimiter(void *field, const struct config_key *k, const char *v,
                         char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n >= k->size) {
        config_fmt(why, whylen, "at most %zu characters", k->size - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strchr("+-_=.", v[i]) || memchr(v, v[i], i)) {
            config_fmt(why, whylen, "\"%.100s\": expected characters of \"+-_=.\", each once, or nothing", v);
            return -1;
        }
    }
    config_copy(field, k->size, v);
    return 0;
}

/* CT_MAILBOX: local@domain, the domain lower-cased. */
static int set_mailbox(void *field, const struct config_key *k, const char *v,
                       char *why, size_t whylen)
{
    char path[ADDR_MAX + 3];
    struct addr a;
    size_t end;

    if (check_single(k, v, why, whylen) < 0)
        return -1;
    if (strlen(v) > ADDR_MAX || snprintf(path, sizeof path, "<%s>", v) < 0 ||
        addr_parse_path(path, strlen(path), ADDR_UTF8, &a, &end) != ADDR_OK || path[end] != 0 ||
        a.domain[0] == 0) {
        config_fmt(why, whylen, "\"%.100s\" is not an address (local@domain)", v);
        return -1;
    }
    config_fmt(field, k->size, "%.*s@%s", (int)a.local_len, a.mailbox, a.domain);
    return 0;
}

/* CT_RCPT: a local part alone (qualified where it is used) or local@domain. */
static int set_rcpt(void *field, const struct config_key *k, const char *v,
                    char *why, size_t whylen)
{
    if (check_single(k, v, why, whylen) < 0)
        return -1;
    if (strchr(v, '@') == NULL) {
        if (strlen(v) > 64 || !addr_valid_domain(v, strlen(v), 0)) {
            config_fmt(why, whylen, "\"%.100s\" is not an address (local or local@domain)", v);
            return -1;
        }
        config_fmt(field, k->size, "%s", v);
        return 0;
    }
    return set_mailbox(field, k, v, why, whylen);
}

/* A list value split into tokens (freed by the caller), or NULL with why. */
static struct tokens *tokenize(const char *v, char *why, size_t whylen)
{
    struct tokens *t = malloc(sizeof *t);

    if (t == NULL) {
        config_fmt(why, whylen, "out of memory");
        return NULL;
    }
    if (split_list(v, t) < 0) {
        config_fmt(why, whylen, "too many entries (at most %d)", CONF_MAX_LIST);
        free(t);
        return NULL;
    }
    return t;
}

/* Parses one list entry into *out: 0, or -1 with why. */
typedef int (*item_fn)(const char *s, void *out, char *why, size_t whylen);

static int listen_item(const char *s, void *out, char *why, size_t whylen)
{
    return config_net_listen(s, out, why, whylen);
}

static int cidr_item(const char *s, void *out, char *why, size_t whylen)
{
    return config_net_cidr(s, out, why, whylen);
}

/* A list of fixed-size entries (items[CONF_MAX_LIST], each size bytes), set
 * only when every entry parses. */
static int set_array(size_t *count, void *items, size_t size, const char *v, item_fn parse,
                     char *why, size_t whylen)
{
    struct tokens *t = tokenize(v, why, whylen);
    unsigned char *scratch;
    size_t i;
    int rc = -1;

    if (t == NULL)
        return -1;
    if ((scratch = calloc(CONF_MAX_LIST, size)) == NULL) {
        config_fmt(why, whylen, "out of memory");
        free(t);
        return -1;
    }
    for (i = 0; i < t->n; i++)
        if (parse(t->v[i], scratch + i * size, why, whylen) < 0)
            break;
    if (i == t->n) {
        memcpy(items, scratch, t->n * size);
        *count = t->n;
        rc = 0;
    }
    free(scratch);
    free(t);
    return rc;
}

static int set_listen(void *field, const struct config_key *k, const char *v,
                      char *why, size_t whylen)
{
    struct listen_list *l = field;

    (void)k;
    return set_array(&l->n, l->v, sizeof l->v[0], v, listen_item, why, whylen);
}

static int set_cidrs(void *field, const struct config_key *k, const char *v,
                     char *why, size_t whylen)
{
    struct cidr_list *l = field;

    (void)k;
    return set_array(&l->n, l->v, sizeof l->v[0], v, cidr_item, why, whylen);
}

/* Checks (and may rewrite) one entry of a string list: 1 keep, 0 skip, -1 bad. */
typedef int (*entry_fn)(char *e, const struct strlist *so_far, char *why, size_t whylen);

static int entry_domain(char *e, const struct strlist *so_far, char *why, size_t whylen)
{
    config_lower(e);
    if (!addr_valid_domain(e, strlen(e), 0)) {
        config_fmt(why, whylen, "\"%.100s\" is not a domain name", e);
        return -1;
    }
    return config_strlist_has(so_far, e) ? 0 : 1;
}

static int entry_forwarder(char *e, const struct strlist *so_far, char *why, size_t whylen)
{
    (void)so_far;
    if (config_net_server(e) < 0) {
        config_fmt(why, whylen, "\"%.100s\": expected addr or addr@port", e);
        return -1;
    }
    return 1;
}

static int entry_stub(char *e, const struct strlist *so_far, char *why, size_t whylen)
{
    (void)so_far;
    if (config_net_stub(e) < 0) {
        config_fmt(why, whylen, "\"%.100s\": expected zone=addr or zone=addr@port", e);
        return -1;
    }
    return 1;
}

/* CT_CHOICES: a list of the key's words (any order, case-insensitively,
 * each at most once), stored as a bit per word; empty is none. */
static int set_choices(void *field, const struct config_key *k, const char *v,
                       char *why, size_t whylen)
{
    const char *const *w = config_choices[k->min];
    struct tokens *t = tokenize(v, why, whylen);
    unsigned bits = 0;

    if (t == NULL)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        int found = -1;
        for (int j = 0; w[j] && found < 0; j++)
            if (!strcasecmp(t->v[i], w[j]))
                found = j;
        if (found < 0) {
            char list[200];
            size_t o = 0;
            for (int j = 0; w[j]; j++) {
                o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s%s",
                                      j ? ", " : "", w[j]);
                if (o >= sizeof list)
                    o = sizeof list - 1;
            }
            config_fmt(why, whylen, "\"%.100s\": expected a list of %s", t->v[i], list);
            free(t);
            return -1;
        }
        bits |= 1u << found;
    }
    free(t);
    *(unsigned *)field = bits;
    return 0;
}

static int set_strlist(struct strlist *l, const char *v, entry_fn check, char *why, size_t whylen)
{
    struct tokens *t = tokenize(v, why, whylen);
    struct strlist nl;
    int r;

    if (t == NULL)
        return -1;
    nl.n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if ((r = check(t->v[i], &nl, why, whylen)) < 0)
            goto bad;
        if (r == 0)
            continue;
        if (config_strlist_add(&nl, t->v[i]) < 0) {
            config_fmt(why, whylen, "out of memory");
            goto bad;
        }
    }
    config_strlist_clear(l);
    *l = nl;
    free(t);
    return 0;
bad:
    config_strlist_clear(&nl);
    free(t);
    return -1;
}

static int set_domains(void *field, const struct config_key *k, const char *v,
                       char *why, size_t whylen)
{
    (void)k;
    return set_strlist(field, v, entry_domain, why, whylen);
}

static int set_forwarders(void *field, const struct config_key *k, const char *v,
                          char *why, size_t whylen)
{
    (void)k;
    return set_strlist(field, v, entry_forwarder, why, whylen);
}

static int set_stubs(void *field, const struct config_key *k, const char *v,
                     char *why, size_t whylen)
{
    (void)k;
    return set_strlist(field, v, entry_stub, why, whylen);
}

static const setter_fn setters[CT_COUNT] = {
    [CT_HOSTNAME] = set_hostname,
    [CT_LISTEN] = set_listen,
    [CT_DIR] = set_word,
    [CT_TLSFILE] = set_file,
    [CT_OPTFILE] = set_file,
    [CT_DOMAINS] = set_domains,
    [CT_CIDRS] = set_cidrs,
    [CT_RELAYHOST] = set_relayhost,
    [CT_SIZE] = set_size,
    [CT_UINT] = set_uint,
    [CT_DURATION] = set_duration,
    [CT_FORWARDERS] = set_forwarders,
    [CT_STUBS] = set_stubs,
    [CT_USER] = set_word,
    [CT_BOOL] = set_bool,
    [CT_LOGLEVEL] = set_loglevel,
    [CT_CHOICE] = set_choice,
    [CT_DELIMITER] = set_delimiter,
    [CT_MAILBOX] = set_mailbox,
    [CT_CHOICES] = set_choices,
    [CT_RCPT] = set_rcpt,
    [CT_TRANSPORT] = set_transport,
};

int config_set_value(struct config *c, const struct config_key *k, const char *v,
                     char *why, size_t whylen)
{
    if ((unsigned)k->type >= CT_COUNT || setters[k->type] == NULL) {
        config_fmt(why, whylen, "no parser for this key");
        return -1;
    }
    return setters[k->type]((char *)c + k->off, k, v, why, whylen);
}
