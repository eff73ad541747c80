/*
 * notice.c - the composer of delivery status notifications (notice.h).
 *
 * What keeps a notice well-formed whatever the original and the remote
 * servers sent: every value that goes into a header field or a
 * delivery-status field is cleaned here (control characters become
 * spaces, invalid UTF-8 and, outside RFC 6533 parts, every byte above 127
 * becomes "?") and folded; the human part is quoted-printable, so no line
 * of it can look like a boundary; the original goes in as one part,
 * unchanged but for a missing empty line after its header, and the
 * boundary is chosen so that it occurs nowhere in the parts. Must never
 * read a file, look at the clock or the configuration: all comes in
 * struct notice_msg, which keeps it testable.
 */
#include "notice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "dsn.h"
#include "qrecord.h"
#include "utf8.h"

#define WRAP 72                 /* columns of the human text */
#define FIELD_WRAP 78           /* a header field's line before folding */

struct out {
    struct buf *b;
    int failed;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (!o->failed && n && buf_append(o->b, p, n) < 0)
        o->failed = 1;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        o->failed = 1;
    else
        put(o, tmp, (size_t)n);
}

/* ---- text cleaning ---- */

/* s[0..len) as one line: control characters become spaces, runs of
 * spaces one space, invalid UTF-8 (and with !utf8 any non-ASCII byte)
 * "?"; at most max bytes (then "..."). out has room for max + 4. */
static void clean(const char *s, size_t len, int utf8, char *out, size_t max)
{
    size_t o = 0;
    int space = 1;

    for (size_t i = 0; i < len && s[i];) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space && o < max)
                out[o++] = ' ';
            space = 1;
            i++;
            continue;
        }
        space = 0;
        if (c >= 0x80) {
            uint32_t cp;
            n = utf8 ? utf8_decode(s + i, len - i, &cp) : 0;
            if (n == 0 || utf8_is_c1(cp)) {
                if (o < max)
                    out[o++] = '?';
                i += n ? n : 1;
                continue;
            }
        }
        if (o + n > max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = 0;
}

/* Appends line (no newline in it) to the human text, wrapped at WRAP
 * columns at spaces; continuation lines get the line's own indentation. */
static void wrap_line(struct out *o, const char *line, size_t n)
{
    size_t indent = 0, start = 0;
    int first = 1;

    while (indent < n && line[indent] == ' ')
        indent++;
    if (indent > WRAP / 2)
        indent = WRAP / 2;
    if (n == 0)
        put(o, "\n", 1);
    while (start < n) {
        size_t pre = first ? 0 : indent, avail = WRAP - pre, e = start, cols = 0, brk = 0;
        while (e < n) {
            size_t cl = 1;
            if (line[e] == ' ' && e > start + (first ? indent : 0))
                brk = e;
            while (e + cl < n && ((unsigned char)line[e + cl] & 0xc0) == 0x80)
                cl++;
            if (cols + 1 > avail)
                break;
            cols++;
            e += cl;
        }
        if (e < n && brk > start)
            e = brk;
        for (size_t i = 0; i < pre; i++)
            put(o, " ", 1);
        put(o, line + start, e - start);
        put(o, "\n", 1);
        first = 0;
        start = e;
        while (start < n && line[start] == ' ')
            start++;
    }
}

/* ---- dates ---- */

static void rfc5322_date(uint64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static void human_date(enum btmpl_lang lang, uint64_t t, char *out, size_t len)
{
    static const char *const en[] = { "January", "February", "March", "April", "May", "June", "July",
                                      "August", "September", "October", "November", "December" };
    static const char *const de[] = { "Januar", "Februar", "M\xc3\xa4rz", "April", "Mai", "Juni", "Juli",
                                      "August", "September", "Oktober", "November", "Dezember" };
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    if (lang == BT_DE)
        snprintf(out, len, "%d. %s %d um %02d:%02d Uhr (UTC)", tm.tm_mday, de[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
    else
        snprintf(out, len, "%d %s %d at %02d:%02d UTC", tm.tm_mday, en[tm.tm_mon], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min);
}

/* ---- the human part ---- */

static const char *action_section(enum notice_action a, const struct notice_rcpt *r)
{
    switch (a) {
    case NA_DELIVERED: return "delivered";
    case NA_RELAYED: return "relayed";
    case NA_EXPANDED: return "expanded";
    default: return r->remote ? "remote" : "local";
    }
}

/* The value of variable name[0..len), cleaned, into v. */
static void var_value(const struct notice_msg *n, const struct notice_rcpt *r, const char *name,
                      size_t len, char *v, size_t vlen)
{
    char tmp[600];

#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    tmp[0] = 0;
    if (IS("hostname"))
        snprintf(tmp, sizeof(tmp), "%s", n->hostname);
    else if (IS("arrival"))
        human_date(n->lang, n->arrival, tmp, sizeof(tmp));
    else if (IS("retry_until"))
        human_date(n->lang, n->retry_until, tmp, sizeof(tmp));
    else if (IS("postmaster"))
        snprintf(tmp, sizeof(tmp), "%s", n->postmaster);
    else if (IS("sender"))
        snprintf(tmp, sizeof(tmp), "<%s>", n->orig_sender);
    else if (IS("queue_id"))
        snprintf(tmp, sizeof(tmp), "%s", n->orig_qid);
    else if (r && IS("recipient"))
        snprintf(tmp, sizeof(tmp), "%s", r->addr);
    else if (r && IS("remote"))
        snprintf(tmp, sizeof(tmp), "%s", r->remote ? r->remote : "?");
    else if (r && IS("status"))
        snprintf(tmp, sizeof(tmp), "%s", r->status);
    else if (r && IS("last_attempt") && r->last_try)
        human_date(n->lang, r->last_try, tmp, sizeof(tmp));
#undef IS
    clean(tmp, strlen(tmp), 1, v, vlen - 4);
}

/* The remote reply, quoted: indented, wrapped, bounded. */
static void quote_reply(struct out *o, const struct notice_rcpt *r)
{
    char q[NOTICE_QUOTE_MAX + 8], line[NOTICE_QUOTE_MAX + 16];

    clean(r->reply ? r->reply : "", r->reply ? strlen(r->reply) : 0, 1, q, NOTICE_QUOTE_MAX);
    if (!q[0])
        snprintf(q, sizeof(q), "%s", r->status);
    snprintf(line, sizeof(line), "        %s", q);
    wrap_line(o, line, strlen(line));
}

/* One section with its variables replaced, into the human text. Lines
 * of a paragraph (not indented, not blank) are joined and wrapped again,
 * so a long value does not leave a ragged line behind; indented lines
 * and the quoted reply keep their own lines. */
static void section(struct out *o, const struct notice_msg *n, const struct notice_rcpt *r,
                    const char *name)
{
    const char *t = btmpl_text(n->tmpl, n->lang, n->kind, name);
    char para[8192], line[4096];
    size_t pl = 0;

    if (!t)
        return;
    for (;;) {
        const char *nl = strchr(t, '\n');
        size_t len = nl ? (size_t)(nl - t) : strlen(t), l = 0;
        int is_reply = len == 7 && memcmp(t, "{reply}", 7) == 0 && r;
        if (!is_reply) {
            for (size_t i = 0; i < len && l + 1 < sizeof(line);) {
                const char *end = t[i] == '{' ? memchr(t + i, '}', len - i) : NULL;
                if (end) {
                    char v[700];
                    var_value(n, r, t + i + 1, (size_t)(end - (t + i + 1)), v, sizeof(v));
                    size_t vl = strlen(v);
                    if (l + vl >= sizeof(line))
                        break;
                    memcpy(line + l, v, vl);
                    l += vl;
                    i = (size_t)(end - t) + 1;
                } else {
                    line[l++] = t[i++];
                }
            }
        }
        int flows = !is_reply && l > 0 && line[0] != ' ' && line[0] != '<';
        if ((!flows || !*t) && pl) {
            wrap_line(o, para, pl);
            pl = 0;
        }
        if (!*t)
            break;
        if (flows && pl + l + 1 < sizeof(para)) {
            if (pl)
                para[pl++] = ' ';
            memcpy(para + pl, line, l);
            pl += l;
        } else if (is_reply) {
            quote_reply(o, r);
        } else {
            wrap_line(o, line, l);
        }
        t = nl ? nl + 1 : t + len;
    }
}

static const char *const advice_order[] = { "advice-address", "advice-mailbox", "advice-size",
                                            "advice-policy", "advice-loop", "advice-expired",
                                            "advice-refused", "advice-other", NULL };

static int has_word(const char *s, const char *w)
{
    return s && strcasestr(s, w) != NULL;
}

const char *notice_advice(const char *status, const char *reply)
{
    unsigned subj = 0, det = 0;
    char cls = status ? status[0] : 0;

    /* queue-mgr's own words for queue_lifetime (policy.c), whatever the
     * last error's code */
    if (reply && strncmp(reply, "message expired after ", 22) == 0)
        return "advice-expired";
    if (!status || sscanf(status, "%*u.%u.%u", &subj, &det) != 2)
        return "advice-other";
    if (subj == 4 && det == 7)
        return "advice-expired";
    if (subj == 4 && det == 6)
        return "advice-loop";
    if (subj == 1)
        return "advice-address";
    if (subj == 2 && det == 2)
        return "advice-mailbox";
    if ((subj == 3 && det == 4) || (subj == 2 && det == 3))
        return "advice-size";
    if (subj == 7)
        return "advice-policy";
    if (has_word(reply, "quota") || has_word(reply, "mailbox full") || has_word(reply, "mailbox is full"))
        return "advice-mailbox";
    if (has_word(reply, "too large") || has_word(reply, "too big"))
        return "advice-size";
    if (subj == 2 && det == 1)
        return "advice-address";
    if (cls == '5' || cls == '4')
        return subj == 6 ? "advice-other" : "advice-refused";
    return "advice-other";
}

static void human_text(struct out *o, const struct notice_msg *n)
{
    unsigned used = 0;

    section(o, n, NULL, "intro");
    put(o, "\n", 1);
    for (size_t i = 0; i < n->nrcpt; i++) {
        const struct notice_rcpt *r = &n->rcpt[i];
        section(o, n, r, action_section(r->action, r));
        put(o, "\n", 1);
        if (n->kind == BT_FAILURE) {
            const char *a = notice_advice(r->status, r->reply);
            for (unsigned k = 0; advice_order[k]; k++)
                if (strcmp(advice_order[k], a) == 0)
                    used |= 1u << k;
        }
    }
    for (unsigned k = 0; advice_order[k]; k++)
        if (used & (1u << k)) {
            section(o, n, NULL, advice_order[k]);
            put(o, "\n", 1);
        }
    section(o, n, NULL, "closing");
}

/* Quoted-printable (RFC 2045 6.7) of UTF-8 text with LF lines, as CRLF
 * lines of at most 76 characters. */
static void qp_encode(struct out *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char enc[4];
        size_t el;
        if (c == '\n') {
            put(o, "\r\n", 2);
            col = 0;
            continue;
        }
        int at_eol = i + 1 == len || s[i + 1] == '\n';
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol)) {
            enc[0] = (char)c;
            el = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            el = 3;
        }
        /* a soft break keeps each line within 76 with its "=" */
        if (col + el > 75 && !(at_eol && col + el <= 76)) {
            put(o, "=\r\n", 3);
            col = 0;
        }
        put(o, enc, el);
        col += el;
    }
    if (col)
        put(o, "\r\n", 2);
}

/* An unstructured header field value: plain when ASCII, else RFC 2047
 * encoded words (Q, UTF-8) of whole characters, folded. */
static void header_text(struct out *o, const char *name, const char *value)
{
    char v[512];
    int ascii = 1;

    clean(value, strlen(value), 1, v, sizeof(v) - 4);
    for (const char *p = v; *p; p++)
        ascii &= (unsigned char)*p < 0x80;
    putf(o, "%s: ", name);
    if (ascii) {
        puts_(o, v);
        puts_(o, "\r\n");
        return;
    }
    size_t col = strlen(name) + 2, i = 0, len = strlen(v);
    while (i < len) {
        char word[80];
        size_t w = 0;
        w += (size_t)snprintf(word, sizeof(word), "=?UTF-8?Q?");
        while (i < len) {
            uint32_t cp;
            size_t cl = utf8_decode(v + i, len - i, &cp);
            char enc[16];
            size_t el = 0;
            for (size_t k = 0; k < (cl ? cl : 1); k++) {
                unsigned char c = (unsigned char)v[i + k];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                    enc[el++] = (char)c;
                else if (c == ' ')
                    enc[el++] = '_';
                else
                    el += (size_t)snprintf(enc + el, sizeof(enc) - el, "=%02X", c);
            }
            if (w + el + 2 > 75)
                break;
            memcpy(word + w, enc, el);
            w += el;
            i += cl ? cl : 1;
        }
        memcpy(word + w, "?=", 2);
        w += 2;
        if (col + w > FIELD_WRAP && col > strlen(name) + 2) {
            puts_(o, "\r\n ");
            col = 1;
        } else if (col > strlen(name) + 2) {
            puts_(o, " ");
            col++;
        }
        put(o, word, w);
        col += w;
    }
    puts_(o, "\r\n");
}

/* ---- the delivery-status part ---- */

/* "Name: value" with value cleaned (UTF-8 kept only for global parts) and
 * folded at spaces. */
static void field(struct out *o, const char *name, const char *value, int utf8)
{
    char v[NOTICE_QUOTE_MAX + 300];
    size_t col = strlen(name) + 2, len;

    clean(value, strlen(value), utf8, v, sizeof(v) - 4);
    len = strlen(v);
    putf(o, "%s: ", name);
    for (size_t i = 0; i < len;) {
        const char *sp = memchr(v + i, ' ', len - i);
        size_t wl = sp ? (size_t)(sp - (v + i)) : len - i;
        if (i > 0 && col + 1 + wl > FIELD_WRAP) {
            puts_(o, "\r\n "); /* the space becomes the fold */
            col = 1;
        } else if (i > 0) {
            put(o, " ", 1);
            col++;
        }
        put(o, v + i, wl);
        col += wl;
        i += wl + (i + wl < len);
    }
    puts_(o, "\r\n");
}

static int printable(const char *s, int utf8)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
            return 0;
    }
    return 1;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* ORCPT / ENVID: the xtext decoded (RFC 3461 4.2, 4.4), or kept as it
 * came when the decoded form could not go into a field. */
static void decoded(const char *xt, int utf8, char *out, size_t outlen)
{
    if (xtext_decode(xt, out, outlen) < 0 || !printable(out, utf8) || !utf8_valid(out, strlen(out)))
        snprintf(out, outlen, "%s", xt);
}

static void valid_status(const char *s, enum notice_action a, char out[16])
{
    unsigned x, y, z;
    char cls = a == NA_FAILED ? '5' : a == NA_DELAYED ? '4' : '2';
    char tail;

    if (s && sscanf(s, "%u.%u.%u%c", &x, &y, &z, &tail) == 3 && (x == 2 || x == 4 || x == 5) &&
        y < 1000 && z < 1000) {
        snprintf(out, 16, "%u.%u.%u", x, y, z);
        return;
    }
    snprintf(out, 16, "%c.0.0", cls);
}

static const char *action_word(enum notice_action a)
{
    switch (a) {
    case NA_FAILED: return "failed";
    case NA_DELAYED: return "delayed";
    case NA_DELIVERED: return "delivered";
    case NA_RELAYED: return "relayed";
    default: return "expanded";
    }
}

static void status_part(struct out *o, const struct notice_msg *n)
{
    char v[1100], d[64];

    if (n->envid && n->envid[0]) {
        decoded(n->envid, n->utf8, v, sizeof(v));
        field(o, "Original-Envelope-Id", v, n->utf8);
    }
    snprintf(v, sizeof(v), "dns; %s", n->hostname);
    field(o, "Reporting-MTA", v, 0);
    field(o, "X-Postern-Queue-ID", n->orig_qid, 0);
    snprintf(v, sizeof(v), "%s; %s", is_ascii(n->orig_sender) ? "rfc822" : "utf-8", n->orig_sender);
    field(o, "X-Postern-Sender", v, n->utf8);
    rfc5322_date(n->arrival, d, sizeof(d));
    field(o, "Arrival-Date", d, 0);
    for (size_t i = 0; i < n->nrcpt; i++) {
        const struct notice_rcpt *r = &n->rcpt[i];
        char st[16];
        puts_(o, "\r\n");
        if (r->orcpt && r->orcpt[0]) {
            const char *semi = strchr(r->orcpt, ';');
            if (semi && (size_t)(semi - r->orcpt) < 64) {
                char dec[QREC_ORCPT_MAX + 1];
                decoded(semi + 1, n->utf8, dec, sizeof(dec));
                snprintf(v, sizeof(v), "%.*s;%s", (int)(semi - r->orcpt), r->orcpt, dec);
                field(o, "Original-Recipient", v, n->utf8);
            }
        }
        snprintf(v, sizeof(v), "%s; %s", is_ascii(r->addr) ? "rfc822" : "utf-8", r->addr);
        field(o, "Final-Recipient", v, n->utf8);
        field(o, "Action", action_word(r->action), 0);
        valid_status(r->status, r->action, st);
        field(o, "Status", st, 0);
        if (r->remote) {
            snprintf(v, sizeof(v), "dns; %s", r->remote);
            field(o, "Remote-MTA", v, 0);
        }
        if (r->reply && r->reply[0]) {
            char q[NOTICE_QUOTE_MAX + 8];
            clean(r->reply, strlen(r->reply), n->utf8, q, NOTICE_QUOTE_MAX);
            snprintf(v, sizeof(v), "%s; %s", r->remote ? "smtp" : "X-Postern", q);
            field(o, "Diagnostic-Code", v, n->utf8);
        }
        if (r->last_try) {
            rfc5322_date(r->last_try, d, sizeof(d));
            field(o, "Last-Attempt-Date", d, 0);
        }
        if (r->action == NA_DELAYED && n->retry_until) {
            rfc5322_date(n->retry_until, d, sizeof(d));
            field(o, "Will-Retry-Until", d, 0);
        }
    }
}

/* ---- the original ---- */

static int is_field_line(const char *l, size_t n)
{
    size_t i = 0;

    while (i < n && l[i] != ':' && (unsigned char)l[i] > 32 && (unsigned char)l[i] < 127)
        i++;
    return i > 0 && i < n && l[i] == ':';
}

size_t notice_header_len(const char *msg, size_t len, int *sep)
{
    size_t p = 0;

    *sep = 0;
    while (p < len) {
        const char *nl = memchr(msg + p, '\n', len - p);
        if (!nl)
            break; /* a line cut off: not part of the header we return */
        size_t n = (size_t)(nl - (msg + p));
        size_t body = n && msg[p + n - 1] == '\r' ? n - 1 : n;
        if (body == 0) {
            *sep = 1;
            break;
        }
        if (!((msg[p] == ' ' || msg[p] == '\t') && p > 0) && !is_field_line(msg + p, body))
            break;
        p += n + 1;
    }
    return p;
}

static int has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* The third part's headers and content (without the boundary). */
static void original_part(struct out *o, const struct notice_msg *n)
{
    int sep, whole = n->kind == BT_FAILURE && n->full && n->orig_size <= n->size_limit &&
                     n->orig_len == n->orig_size;
    size_t hl = notice_header_len(n->orig, n->orig_len, &sep);
    const char *type = whole ? (n->utf8 ? "message/global" : "message/rfc822")
                             : (n->utf8 ? "message/global-headers" : "text/rfc822-headers");
    size_t clen = whole ? n->orig_len : hl;

    putf(o, "Content-Description: %s\r\n", whole ? "Undelivered Message" : "Message Headers");
    putf(o, "Content-Type: %s\r\n", type);
    if (has_8bit(n->orig, clen))
        puts_(o, "Content-Transfer-Encoding: 8bit\r\n");
    puts_(o, "\r\n");
    put(o, n->orig, hl);
    if (whole) {
        if (!sep)
            puts_(o, "\r\n"); /* the empty line a header section ends with */
        put(o, n->orig + hl, n->orig_len - hl);
    }
    if (clen && n->orig[clen - 1] != '\n')
        puts_(o, "\r\n");
}

/* ---- the whole ---- */

static int contains(const struct buf *b, const char *s)
{
    return memmem(buf_head(b), b->len, s, strlen(s)) != NULL;
}

int notice_compose(const struct notice_msg *n, struct buf *out, int *eightbit, char *err, size_t errlen)
{
    struct buf human, status, orig;
    struct out oh = { &human, 0 }, os = { &status, 0 }, oo = { &orig, 0 }, o = { out, 0 };
    char boundary[80], date[64];
    const char *subject = btmpl_text(n->tmpl, n->lang, n->kind, "subject");
    int rc = -1;

    if (!subject || !n->nrcpt) {
        snprintf(err, errlen, "notice: no template or no recipient");
        return -1;
    }
    buf_init(&human, NOTICE_MAX);
    buf_init(&status, NOTICE_MAX);
    buf_init(&orig, NOTICE_MAX);
    {
        struct buf text;
        struct out ot = { &text, 0 };
        buf_init(&text, NOTICE_MAX);
        human_text(&ot, n);
        if (!ot.failed)
            qp_encode(&oh, buf_head(&text), text.len);
        oh.failed |= ot.failed;
        buf_free(&text);
    }
    status_part(&os, n);
    original_part(&oo, n);
    if (oh.failed || os.failed || oo.failed) {
        snprintf(err, errlen, "notice: too large or out of memory");
        goto out;
    }
    /* a boundary that occurs in no part */
    uint32_t x = n->seed ? n->seed : 0x9e3779b9u;
    for (int tries = 0;; tries++) {
        x = x * 1103515245u + 12345u;
        snprintf(boundary, sizeof(boundary), "=_%s/%08X/%s", n->notice_qid, x, n->hostname);
        boundary[70] = 0; /* RFC 2046: at most 70 characters */
        if (!contains(&human, boundary) && !contains(&status, boundary) && !contains(&orig, boundary))
            break;
        if (tries == 100) {
            snprintf(err, errlen, "notice: no boundary found");
            goto out;
        }
    }
    rfc5322_date(n->now, date, sizeof(date));
    putf(&o, "Date: %s\r\n", date);
    putf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", n->hostname);
    putf(&o, "To: <%s>\r\n", n->to);
    header_text(&o, "Subject", subject);
    putf(&o, "Message-ID: <%s.notice@%s>\r\n", n->notice_qid, n->hostname);
    puts_(&o, "Auto-Submitted: auto-replied\r\n");
    puts_(&o, "MIME-Version: 1.0\r\n");
    putf(&o, "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n",
         n->utf8 ? "global-delivery-status" : "delivery-status", boundary);
    puts_(&o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
    putf(&o, "--%s\r\n", boundary);
    puts_(&o, "Content-Description: Notification\r\n");
    puts_(&o, "Content-Type: text/plain; charset=utf-8\r\n");
    putf(&o, "Content-Language: %s\r\n", btmpl_lang_code(n->lang));
    puts_(&o, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    put(&o, buf_head(&human), human.len);
    putf(&o, "\r\n--%s\r\n", boundary);
    puts_(&o, "Content-Description: Delivery report\r\n");
    putf(&o, "Content-Type: %s\r\n", n->utf8 ? "message/global-delivery-status" : "message/delivery-status");
    if (has_8bit(buf_head(&status), status.len))
        puts_(&o, "Content-Transfer-Encoding: 8bit\r\n");
    puts_(&o, "\r\n");
    put(&o, buf_head(&status), status.len);
    putf(&o, "\r\n--%s\r\n", boundary);
    put(&o, buf_head(&orig), orig.len);
    putf(&o, "\r\n--%s--\r\n", boundary);
    if (o.failed) {
        snprintf(err, errlen, "notice: too large or out of memory");
        goto out;
    }
    *eightbit = has_8bit(buf_head(out), out->len);
    rc = 0;
out:
    buf_free(&human);
    buf_free(&status);
    buf_free(&orig);
    return rc;
}

/* ---- the language ---- */

/* The first language tag of a header field's value: 1 German, 0 another,
 * -1 none. */
static int lang_of(const char *v, size_t n)
{
    size_t i = 0;

    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
        i++;
    if (i + 2 > n)
        return -1;
    if (strncasecmp(v + i, "de", 2) == 0 && (i + 2 == n || !((v[i + 2] | 32) >= 'a' && (v[i + 2] | 32) <= 'z')))
        return 1;
    return ((v[i] | 32) >= 'a' && (v[i] | 32) <= 'z') ? 0 : -1;
}

/* The value of the first header field called name (unfolded lines). */
static int header_lang(const char *msg, size_t hl, const char *name)
{
    size_t nl = strlen(name);

    for (size_t p = 0; p < hl;) {
        const char *e = memchr(msg + p, '\n', hl - p);
        size_t n = e ? (size_t)(e - (msg + p)) : hl - p;
        if (n > nl && strncasecmp(msg + p, name, nl) == 0 && msg[p + nl] == ':') {
            size_t vs = p + nl + 1, ve = p + n;
            /* folded continuation lines belong to the value */
            while (ve + 1 < hl && (msg[ve + 1] == ' ' || msg[ve + 1] == '\t')) {
                const char *e2 = memchr(msg + ve + 1, '\n', hl - ve - 1);
                ve = e2 ? (size_t)(e2 - msg) : hl;
            }
            return lang_of(msg + vs, ve - vs);
        }
        p += n + 1;
    }
    return -1;
}

enum btmpl_lang notice_language(int choice, const char *orig, size_t len, const char *sender)
{
    int sep, l;
    size_t hl;
    const char *at, *dot;

    if (choice == CONF_BOUNCE_EN)
        return BT_EN;
    if (choice == CONF_BOUNCE_DE)
        return BT_DE;
    hl = notice_header_len(orig, len, &sep);
    if ((l = header_lang(orig, hl, "Content-Language")) >= 0 ||
        (l = header_lang(orig, hl, "Accept-Language")) >= 0)
        return l == 1 ? BT_DE : BT_EN;
    at = sender ? strrchr(sender, '@') : NULL;
    dot = at ? strrchr(at, '.') : NULL;
    if (dot && (strcasecmp(dot, ".de") == 0 || strcasecmp(dot, ".at") == 0 || strcasecmp(dot, ".ch") == 0))
        return BT_DE;
    return BT_EN;
}
