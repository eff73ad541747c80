/*
 * rfc5322.c - RFC 5322 address lists, mailboxes from addr-specs, quoting,
 * and the header section (field names, folded lines, unfolded values).
 *
 * The list scanner is deliberately forgiving about what it drops (display
 * names, comments, group names) and strict about what it keeps: the
 * addr-spec it returns still goes through addr_parse_path(), so nothing
 * here decides alone that text is an address. It must never read past the
 * length it is given, never write past its fixed buffers (an over-long
 * addr-spec is reported, not cut), and never loop without consuming input.
 */
#include "rfc5322.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- address lists ---- */

/* One address being collected from a list. */
struct item {
    char bare[ADDR_MAX + 2];    /* addr-spec words, white space and comments dropped */
    char angle[ADDR_MAX + 2];   /* inside <...> */
    size_t nb, na;
    int in_angle, have_angle;
    int bare_long, angle_long;
    int space;                  /* white space or a comment since the last bare byte */
    int bare_words;             /* two words side by side: "Name a@b" is no address */
};

static void put_bare(struct item *it, char c)
{
    if (it->space && it->nb > 0 && it->bare[it->nb - 1] != '@' && it->bare[it->nb - 1] != '.' &&
        c != '@' && c != '.')
        it->bare_words = 1;
    it->space = 0;
    if (it->nb < sizeof(it->bare) - 1)
        it->bare[it->nb++] = c;
    else
        it->bare_long = 1;
}

static void put_item(struct item *it, char c)
{
    if (!it->in_angle)
        put_bare(it, c);
    else if (it->na < sizeof(it->angle) - 1)
        it->angle[it->na++] = c;
    else
        it->angle_long = 1;
}

void rfc5322_list_init(struct rfc5322_list *l, const char *s, size_t n)
{
    l->s = s;
    l->n = s ? n : 0;
    l->pos = 0;
    l->err = RFC5322_OK;
}

/* The element s[start..end) as written, without blanks around it. */
static void written(struct rfc5322_addr *a, const char *s, size_t start, size_t end)
{
    while (start < end && (s[start] == ' ' || s[start] == '\t'))
        start++;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    a->off = start;
    a->tlen = end - start;
}

static int fail(struct rfc5322_list *l, enum rfc5322_error e)
{
    l->err = e;
    l->pos = l->n + 1;          /* at the end: the rest is not looked at */
    return -1;
}

int rfc5322_list_next(struct rfc5322_list *l, struct rfc5322_addr *a)
{
    const char *s = l->s;
    size_t n = l->n, i, j, start = l->pos;   /* where the current element began */
    struct item it;

    memset(a, 0, sizeof(*a));
    memset(&it, 0, sizeof(it));
    for (i = l->pos; i <= n; i++) {
        char c = i < n ? s[i] : ',';   /* a final separator flushes the last element */

        if (c == '"') {                 /* quoted string, kept whole */
            put_item(&it, c);
            for (j = i + 1; j < n && s[j] != '"'; j++) {
                if (s[j] == '\\' && j + 1 < n)
                    put_item(&it, s[j++]);
                put_item(&it, s[j]);
            }
            if (j < n)
                put_item(&it, '"');
            /* unterminated: the element ends with the input and fails to parse */
            i = j < n ? j : n - 1;
            continue;
        }
        if (c == '(') {                 /* comment, nested, dropped */
            int depth = 1;
            for (j = i + 1; j < n && depth > 0; j++) {
                if (s[j] == '\\' && j + 1 < n)
                    j++;
                else if (s[j] == '(')
                    depth++;
                else if (s[j] == ')')
                    depth--;
            }
            it.space = 1;
            i = j - 1;
            continue;
        }
        if (c == '[') {                 /* domain literal, kept whole */
            for (j = i; j < n && s[j] != ']'; j++)
                if (s[j] != ' ' && s[j] != '\t')
                    put_item(&it, s[j]);
            if (j < n)
                put_item(&it, ']');
            i = j < n ? j : n - 1;
            continue;
        }
        if (it.in_angle) {
            if (c == '>') {
                it.in_angle = 0;
                it.have_angle = 1;
            } else if (i == n) {
                written(a, s, start, n);
                return fail(l, RFC5322_EANGLE);
            } else if (c != ' ' && c != '\t') {
                put_item(&it, c);
            }
            continue;
        }
        if (c == '<') {
            it.in_angle = 1;
            it.na = 0;
            it.angle_long = 0;
            continue;
        }
        if (c == ':') {                 /* a group's name: dropped */
            if (it.have_angle || memchr(it.bare, '@', it.nb)) {
                a->off = start;         /* the element up to the colon, as written */
                a->tlen = i + 1 - start;
                return fail(l, RFC5322_ECOLON);
            }
            memset(&it, 0, sizeof(it));
            start = i + 1;
            continue;
        }
        if (c == ',' || c == ';') {
            const char *p = it.have_angle ? it.angle : it.bare;
            size_t len = it.have_angle ? it.na : it.nb;

            /* An angle-addr with a route: keep only the mailbox. */
            if (it.have_angle && len && p[0] == '@') {
                const char *colon = memchr(p, ':', len);
                if (colon) {
                    len -= (size_t)(colon + 1 - p);
                    p = colon + 1;
                }
            }
            written(a, s, start, i < n ? i : n);
            if (it.have_angle ? it.angle_long : it.bare_long)
                return fail(l, RFC5322_ETOOLONG);
            if (!it.have_angle && it.bare_words)
                return fail(l, RFC5322_EWORDS);
            if (len) {
                memcpy(a->spec, p, len);
                a->spec[len] = 0;
                a->len = len;
                l->pos = i + 1;
                return 1;
            }
            memset(&it, 0, sizeof(it));
            start = i + 1;
            continue;
        }
        if (c == ' ' || c == '\t')
            it.space = 1;
        else
            put_bare(&it, c);
    }
    l->pos = n + 1;
    memset(a, 0, sizeof(*a));
    return 0;
}

const char *rfc5322_strerror(enum rfc5322_error e)
{
    switch (e) {
    case RFC5322_OK:
        return "valid address list";
    case RFC5322_EANGLE:
        return "missing \">\"";
    case RFC5322_ECOLON:
        return "stray \":\"";
    case RFC5322_ETOOLONG:
        return addr_strerror(ADDR_ETOOLONG);
    case RFC5322_EWORDS:
        return "words outside <...>";
    }
    return "bad address list";
}

/* Is there an '@' outside quoted strings (i.e. a domain part)? */
static int has_domain(const char *s, size_t n)
{
    int q = 0;

    for (size_t i = 0; i < n; i++) {
        if (q && s[i] == '\\')
            i++;
        else if (s[i] == '"')
            q = !q;
        else if (!q && s[i] == '@')
            return 1;
    }
    return 0;
}

const char *rfc5322_mailbox(const char *s, size_t n, const char *domain, unsigned flags,
                            char *out, size_t outlen, int *utf8)
{
    char path[ADDR_MAX + 3];
    struct addr a;
    size_t end, dl, hl = domain ? strlen(domain) : 0;
    enum addr_error e;

    if (out == NULL || outlen == 0)
        return addr_strerror(ADDR_ETOOLONG);
    out[0] = 0;
    if (n == 0)
        return (flags & ADDR_ALLOW_EMPTY) ? NULL : "empty address";
    if (n > ADDR_MAX)
        return addr_strerror(ADDR_ETOOLONG);
    path[0] = '<';
    memcpy(path + 1, s, n);
    if (!has_domain(s, n)) {
        if (hl == 0)
            return addr_strerror(ADDR_ESYNTAX);
        if (n + 1 + hl > ADDR_MAX)
            return addr_strerror(ADDR_ETOOLONG);
        path[1 + n] = '@';
        memcpy(path + 2 + n, domain, hl);
        n += 1 + hl;
    }
    path[1 + n] = '>';
    e = addr_parse_path(path, n + 2, flags, &a, &end);
    if (e != ADDR_OK)
        return addr_strerror(e);
    if (end != n + 2 || s[0] == '@')
        return addr_strerror(ADDR_ESYNTAX);  /* no trailing junk, no route */
    dl = strlen(a.domain);
    if (a.local_len + 1 + dl >= outlen)
        return addr_strerror(ADDR_ETOOLONG);
    memcpy(out, a.mailbox, a.local_len);
    out[a.local_len] = '@';
    memcpy(out + a.local_len + 1, a.domain, dl + 1);
    if (a.is_utf8 && utf8 != NULL)
        *utf8 = 1;
    return NULL;
}

/* ---- generating ---- */

static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* s as a quoted string into out; 0, or -1 with out "" if it does not fit. */
static int quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;

    if (outlen < 3)
        goto toolong;
    out[o++] = '"';
    for (const char *p = s; *p; p++) {
        if (o + (*p == '"' || *p == '\\') + 2 >= outlen)
            goto toolong;
        if (*p == '"' || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = 0;
    return 0;
toolong:
    if (outlen > 0)
        out[0] = 0;
    return -1;
}

static int copy_whole(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);

    if (n >= outlen) {
        if (outlen > 0)
            out[0] = 0;
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

int rfc5322_quote_local(const char *s, char *out, size_t outlen)
{
    int atom = *s && *s != '.';

    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(is_atext(c) || (c == '.' && p[1] && p[1] != '.')))
            atom = 0;
    }
    return atom ? copy_whole(s, out, outlen) : quote(s, out, outlen);
}

int rfc5322_phrase(const char *name, char *out, size_t outlen)
{
    int plain = 1;

    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(c >= 0x80 || c == ' ' || is_atext(c)))
            plain = 0;
    }
    return plain ? copy_whole(name, out, outlen) : quote(name, out, outlen);
}

/* ---- the header section ---- */

size_t rfc5322_field_name_len(const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n && s[i] > 32 && s[i] < 127 && s[i] != ':')
        i++;
    if (i == 0)
        return 0;
    for (j = i; j < n && (s[j] == ' ' || s[j] == '\t'); j++)
        ;
    return j < n && s[j] == ':' ? i : 0;
}

static int add_line(struct rfc5322_headers *h, size_t off, size_t len, int start)
{
    if (h->nline == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        struct rfc5322_hline *nl = realloc(h->line, ncap * sizeof(*nl));
        if (!nl)
            return -1;
        h->line = nl;
        h->cap = ncap;
    }
    h->line[h->nline++] = (struct rfc5322_hline){ off, len, start, 0 };
    return 0;
}

int rfc5322_hdr_line(struct rfc5322_headers *h, size_t off, size_t n)
{
    const char *l = h->buf + off;

    if (n == 0)
        return 0;
    if (rfc5322_field_name_len(l, n))
        return add_line(h, off, n, 1) < 0 ? -1 : 1;
    if ((l[0] == ' ' || l[0] == '\t') && h->nline > 0)
        return add_line(h, off, n, 0) < 0 ? -1 : 2;
    return 0;
}

int rfc5322_hdr_is(const struct rfc5322_headers *h, size_t i, const char *name)
{
    const struct rfc5322_hline *l;
    size_t nl;

    if (i >= h->nline || !h->line[i].start)
        return 0;
    l = &h->line[i];
    nl = rfc5322_field_name_len(h->buf + l->off, l->len);
    return nl == strlen(name) && strncasecmp(h->buf + l->off, name, nl) == 0;
}

int rfc5322_hdr_resent(const struct rfc5322_headers *h)
{
    for (size_t i = 0; i < h->nline; i++)
        if (h->line[i].start && h->line[i].len > 7 &&
            strncasecmp(h->buf + h->line[i].off, "Resent-", 7) == 0)
            return 1;
    return 0;
}

int rfc5322_hdr_is_rcpt(const struct rfc5322_headers *h, size_t i, int resent)
{
    static const char *const plain[] = { "To", "Cc", "Bcc" };
    static const char *const re[] = { "Resent-To", "Resent-Cc", "Resent-Bcc" };

    for (size_t k = 0; k < 3; k++)
        if (rfc5322_hdr_is(h, i, resent ? re[k] : plain[k]))
            return 1;
    return 0;
}

char *rfc5322_hdr_value(const struct rfc5322_headers *h, size_t i, size_t *vlen)
{
    size_t total = 0, k, o, colon;
    const char *first, *c;
    char *v;

    if (i >= h->nline || !h->line[i].start)
        return NULL;
    first = h->buf + h->line[i].off;
    if ((c = memchr(first, ':', h->line[i].len)) == NULL)
        return NULL;
    colon = (size_t)(c - first) + 1;
    for (k = i; k < h->nline && (k == i || !h->line[k].start); k++)
        total += h->line[k].len;
    if ((v = malloc(total + 1)) == NULL)
        return NULL;
    o = h->line[i].len - colon;
    memcpy(v, first + colon, o);
    for (k = i + 1; k < h->nline && !h->line[k].start; k++) {
        memcpy(v + o, h->buf + h->line[k].off, h->line[k].len);
        o += h->line[k].len;
    }
    v[o] = 0;
    *vlen = o;
    return v;
}

void rfc5322_hdr_drop(struct rfc5322_headers *h, size_t i)
{
    if (i >= h->nline)
        return;
    h->line[i].drop = 1;
    for (size_t k = i + 1; k < h->nline && !h->line[k].start; k++)
        h->line[k].drop = 1;
}

void rfc5322_hdr_free(struct rfc5322_headers *h)
{
    free(h->line);
    h->line = NULL;
    h->nline = h->cap = 0;
}
