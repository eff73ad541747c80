/*
 * reply.c - the SMTP reply parser (reply.h). It only parses: it never
 * allocates, never logs, and never accepts a line it had to guess about.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

void reply_init(struct reply_parser *p)
{
    memset(&p->r, 0, sizeof(p->r));
    p->linelen = 0;
    p->bytes = 0;
    p->state = REPLY_MORE;
    p->fresh = 0;
    p->err[0] = '\0';
}

int reply_pending(const struct reply_parser *p)
{
    return p->linelen > 0 || (!p->fresh && p->r.nlines > 0);
}

static int fail(struct reply_parser *p, const char *why)
{
    p->state = REPLY_ERROR;
    snprintf(p->err, sizeof(p->err), "%s", why);
    return REPLY_ERROR;
}

static int isdig(char c)
{
    return c >= '0' && c <= '9';
}

size_t reply_enhanced(const char *s, size_t len, char cls, char *out)
{
    size_t i = 0, n;

    if (len < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (n = 0; i < len && isdig(s[i]) && n < 4; i++, n++)
        ;
    if (n == 0 || n > 3 || i >= len || s[i] != '.')
        return 0;
    i++;
    for (n = 0; i < len && isdig(s[i]) && n < 4; i++, n++)
        ;
    if (n == 0 || n > 3 || (i < len && s[i] != ' '))
        return 0;
    memcpy(out, s, i);
    out[i] = '\0';
    return i;
}

/* One complete line (without CRLF) of the current reply. */
static int take_line(struct reply_parser *p, const char *l, size_t n)
{
    struct reply *r = &p->r;
    int code, last;

    if (n < 3 || !(l[0] >= '2' && l[0] <= '5') || !(l[1] >= '0' && l[1] <= '5') || !isdig(l[2]))
        return fail(p, "reply code is not three digits");
    if (n > 3 && l[3] != ' ' && l[3] != '-')
        return fail(p, "malformed reply line");
    code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (r->nlines > 0 && code != r->code)
        return fail(p, "reply code changed inside a multi-line reply");
    last = n == 3 || l[3] == ' ';
    if (++r->nlines > REPLY_MAX_LINES)
        return fail(p, "too many lines in a reply");
    r->code = code;
    const char *t = n > 4 ? l + 4 : "";
    size_t tl = n > 4 ? n - 4 : 0;
    if (r->nlines == 1)
        reply_enhanced(t, tl, l[0], r->enh);
    size_t need = tl + (r->nlines > 1 ? 1 : 0);
    if (!r->truncated && r->textlen + need < sizeof(r->text)) {
        if (r->nlines > 1)
            r->text[r->textlen++] = '\n';
        memcpy(r->text + r->textlen, t, tl);
        r->textlen += tl;
        r->text[r->textlen] = '\0';
    } else {
        r->truncated = 1;
    }
    return last ? REPLY_DONE : REPLY_MORE;
}

int reply_feed(struct reply_parser *p, const char *in, size_t len, size_t *used)
{
    size_t i = 0;

    *used = 0;
    if (p->state == REPLY_ERROR)
        return REPLY_ERROR;
    if (p->fresh) {
        memset(&p->r, 0, sizeof(p->r));
        p->fresh = 0;
    }
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        size_t chunk = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
        if (p->linelen + chunk > REPLY_LINE_MAX)
            return *used = i, fail(p, "reply line too long");
        if (p->bytes + chunk > REPLY_MAX_BYTES)
            return *used = i, fail(p, "reply too long");
        memcpy(p->line + p->linelen, in + i, chunk);
        p->linelen += chunk;
        p->bytes += chunk;
        i += chunk;
        if (!nl)
            break;
        if (p->linelen < 2 || p->line[p->linelen - 2] != '\r')
            return *used = i, fail(p, "reply line without CRLF");
        if (memchr(p->line, '\r', p->linelen - 2) || memchr(p->line, '\0', p->linelen - 2))
            return *used = i, fail(p, "control character in a reply line");
        int rc = take_line(p, p->line, p->linelen - 2);
        p->linelen = 0;
        if (rc == REPLY_ERROR)
            return *used = i, REPLY_ERROR;
        if (rc == REPLY_DONE) {
            p->bytes = 0;
            p->fresh = 1;      /* the next feed starts a new reply */
            *used = i;
            return REPLY_DONE;
        }
    }
    *used = i;
    return REPLY_MORE;
}

const char *reply_line(const struct reply *r, unsigned i, size_t *len)
{
    const char *s = r->text, *end = r->text + r->textlen;

    while (i > 0) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            return NULL;
        s = nl + 1;
        i--;
    }
    if (s > end)
        return NULL;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *len = nl ? (size_t)(nl - s) : (size_t)(end - s);
    return s;
}
