/*
 * dsn.c - xtext and the DSN parameters (dsn.h). Must never allocate or
 * accept a byte outside what RFC 3461 allows: whatever passes here is
 * stored in the queue and later written into a DSN.
 */
#include "dsn.h"

#include <string.h>
#include <strings.h>

#include "qrecord.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int xchar(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '+' && c != '=';
}

/* Length of the valid xtext prefix of s; stops at the first bad byte. With
 * utf8, bytes >= 0x80 count as characters too (RFC 6533 unitext). */
static size_t xtext_span(const char *s, int utf8)
{
    const char *p = s;

    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            if (hexval((unsigned char)p[1]) < 0 || hexval((unsigned char)p[2]) < 0)
                break;
            p += 3;
        } else if (xchar(c) || (utf8 && c >= 0x80)) {
            p++;
        } else {
            break;
        }
    }
    return (size_t)(p - s);
}

int xtext_valid(const char *s, size_t max)
{
    size_t n = xtext_span(s, 0);

    return n > 0 && s[n] == 0 && n <= max;
}

long xtext_encode(const char *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (xchar(c)) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                return -1;
            out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = 0;
    return (long)o;
}

long xtext_decode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;

    if (in[xtext_span(in, 0)] != 0)
        return -1;
    for (const char *p = in; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '+') {
            c = hexval((unsigned char)p[1]) * 16 + hexval((unsigned char)p[2]);
            p += 2;
            if (c == 0)
                return -1;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    if (outlen == 0)
        return -1;
    out[o] = 0;
    return (long)o;
}

int dsn_parse_notify(const char *v, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } words[] = {
        { "NEVER", NOTIFY_NEVER }, { "SUCCESS", NOTIFY_SUCCESS },
        { "FAILURE", NOTIFY_FAILURE }, { "DELAY", NOTIFY_DELAY },
    };
    unsigned bits = 0;
    const char *p = v;

    for (;;) {
        size_t n = strcspn(p, ",");
        unsigned b = 0;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (n == strlen(words[i].name) && !strncasecmp(p, words[i].name, n))
                b = words[i].bit;
        if (!b || (bits & b))
            return -1;
        bits |= b;
        if (!p[n])
            break;
        p += n + 1;
    }
    if ((bits & NOTIFY_NEVER) && bits != NOTIFY_NEVER)
        return -1;
    *out = bits;
    return 0;
}

int dsn_parse_ret(const char *v, unsigned *ret)
{
    if (!strcasecmp(v, "FULL"))
        *ret = RET_FULL;
    else if (!strcasecmp(v, "HDRS"))
        *ret = RET_HDRS;
    else
        return -1;
    return 0;
}

int dsn_envid_valid(const char *v)
{
    return xtext_valid(v, DSN_ENVID_MAX);
}

int dsn_orcpt_valid(const char *v, int utf8)
{
    const char *p = v;
    size_t n;

    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')
        p++;
    if (p == v || *p != ';')
        return 0;
    p++;
    n = xtext_span(p, utf8);
    return n > 0 && p[n] == 0 && (size_t)(p + n - v) <= DSN_ORCPT_MAX;
}
