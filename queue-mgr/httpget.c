/*
 * httpget.c - the bounded request-head parser (httpget.h). Looks for the
 * end of the head within HTTPGET_MAX bytes, then checks the request line
 * ("METHOD SP origin-form SP HTTP/1.x") and that every header line is
 * "name: value" of visible characters; a request with a body
 * (Content-Length other than 0, or Transfer-Encoding) is refused. Never
 * reads past n, never writes past pathlen.
 */
#include "httpget.h"

#include <string.h>
#include <strings.h>

static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the head: just past the blank line, or 0. Bare LF lines are
 * accepted (as most servers do), a CR not before LF is not. */
static size_t head_end(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

enum httpget_result httpget_parse(const char *p, size_t n, char *path, size_t pathlen, int *head)
{
    size_t end, i = 0, m;
    const char *line, *sp1, *sp2, *eol;

    *head = 0;
    if (pathlen)
        path[0] = 0;
    /* leading empty lines are allowed before the request line (RFC 9112 2.2) */
    while (i < n && (p[i] == '\r' || p[i] == '\n') && i < 8)
        i++;
    end = head_end(p, n > HTTPGET_MAX ? HTTPGET_MAX : n);
    if (!end)
        return n >= HTTPGET_MAX ? HTTPGET_BAD : HTTPGET_MORE;
    if (i >= end)
        return HTTPGET_BAD;
    for (size_t k = i; k < end; k++)
        if (p[k] == '\r' && (k + 1 >= end || p[k + 1] != '\n'))
            return HTTPGET_BAD;
    line = p + i;
    eol = memchr(line, '\n', (size_t)(p + end - line));
    if (!eol)
        return HTTPGET_BAD;
    m = (size_t)(eol - line);
    if (m && line[m - 1] == '\r')
        m--;
    sp1 = memchr(line, ' ', m);
    if (!sp1 || sp1 == line)
        return HTTPGET_BAD;
    for (const char *c = line; c < sp1; c++)
        if (!tchar((unsigned char)*c))
            return HTTPGET_BAD;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line + m - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1 || sp1[1] != '/')
        return HTTPGET_BAD;
    if ((size_t)(line + m - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1'))
        return HTTPGET_BAD;
    for (const char *c = sp1 + 1; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return HTTPGET_BAD;
    /* the header lines */
    for (const char *h = eol + 1; h < p + end;) {
        const char *e = memchr(h, '\n', (size_t)(p + end - h)), *colon;
        size_t hl;
        if (!e)
            return HTTPGET_BAD;
        hl = (size_t)(e - h);
        if (hl && h[hl - 1] == '\r')
            hl--;
        if (hl == 0)
            break;
        colon = memchr(h, ':', hl);
        if (!colon || colon == h)
            return HTTPGET_BAD;
        for (const char *c = h; c < colon; c++)
            if (!tchar((unsigned char)*c))
                return HTTPGET_BAD;
        for (const char *c = colon + 1; c < h + hl; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return HTTPGET_BAD;
        const char *v = colon + 1;
        while (v < h + hl && (*v == ' ' || *v == '\t'))
            v++;
        size_t name = (size_t)(colon - h), vl = (size_t)(h + hl - v);
        if (name == 17 && strncasecmp(h, "Transfer-Encoding", 17) == 0)
            return HTTPGET_BAD;
        if (name == 14 && strncasecmp(h, "Content-Length", 14) == 0 && !(vl == 1 && *v == '0'))
            return HTTPGET_BAD;
        h = e + 1;
    }
    size_t mlen = (size_t)(sp1 - line);
    if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
        *head = 1;
    else if (mlen != 3 || memcmp(line, "GET", 3) != 0)
        return HTTPGET_METHOD;
    size_t plen = (size_t)(sp2 - sp1 - 1);
    const char *q = memchr(sp1 + 1, '?', plen);
    if (q)
        plen = (size_t)(q - sp1 - 1);
    if (plen + 1 > pathlen)
        return HTTPGET_BAD;
    memcpy(path, sp1 + 1, plen);
    path[plen] = 0;
    return HTTPGET_OK;
}
