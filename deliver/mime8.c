/*
 * mime8.c - the 8-bit to quoted-printable downgrade (mime8.h). It rewrites
 * only Content-Transfer-Encoding headers and the bodies of 8bit/binary leaf
 * parts; it must never pass an 8-bit byte through, nor change a part it
 * does not encode.
 */
#include "mime8.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void mime8_init(struct mime8 *m)
{
    memset(m, 0, sizeof(*m));
    m->bol = 1;
    m->in_headers = 1;
    buf_init(&m->hdr, MIME8_HDR_MAX);
}

void mime8_free(struct mime8 *m)
{
    buf_free(&m->hdr);
}

static int fail(struct mime8 *m, const char *why)
{
    if (!m->failed)
        snprintf(m->err, sizeof(m->err), "%s", why);
    m->failed = 1;
    return -1;
}

static int has8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] & 0x80)
            return 1;
    return 0;
}

static int out_add(struct mime8 *m, struct buf *out, const void *p, size_t n)
{
    if (buf_append(out, p, n) < 0)
        return fail(m, errno == ENOBUFS ? "conversion output too large" : "out of memory");
    return 0;
}

/* The value of header field `name` in the header block (unfolded, at most
 * outlen-1 bytes), or 0 if absent. */
static int header_value(const char *h, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name), i = 0, o = 0;

    while (i < n) {
        const char *e = memchr(h + i, '\n', n - i);
        size_t ll = e ? (size_t)(e - (h + i)) + 1 : n - i;
        if (ll > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':') {
            size_t j = i + nl + 1;
            for (;;) {
                for (; j < i + ll; j++)
                    if (h[j] != '\r' && h[j] != '\n' && o + 1 < outlen)
                        out[o++] = h[j];
                i += ll;
                if (i >= n || (h[i] != ' ' && h[i] != '\t'))
                    break;
                e = memchr(h + i, '\n', n - i);
                ll = e ? (size_t)(e - (h + i)) + 1 : n - i;
                j = i;
            }
            out[o] = '\0';
            return 1;
        }
        i += ll;
    }
    out[0] = '\0';
    return 0;
}

/* The first token of a header value, lower-cased ("text/plain", "8bit"). */
static void first_token(const char *v, char *out, size_t outlen)
{
    size_t o = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    while (*v && *v != ';' && *v != ' ' && *v != '\t' && *v != '(' && o + 1 < outlen)
        out[o++] = (char)tolower((unsigned char)*v++);
    out[o] = '\0';
}

/* The boundary= parameter of a Content-Type value; 0 if none or too long. */
static int boundary_param(const char *v, char *out)
{
    const char *p = v;

    while ((p = strchr(p, ';'))) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary", 8) != 0)
            continue;
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        size_t o = 0;
        if (*q == '"') {
            q++;
            while (*q && *q != '"' && o < MIME8_BOUND_MAX)
                out[o++] = *q++;
            if (*q != '"')
                return 0;
        } else {
            while (*q && *q != ';' && *q != ' ' && *q != '\t' && o < MIME8_BOUND_MAX)
                out[o++] = *q++;
            if (*q && *q != ';' && *q != ' ' && *q != '\t')
                return 0;
        }
        out[o] = '\0';
        return o > 0;
    }
    return 0;
}

/* Writes the header block, replacing Content-Transfer-Encoding (and its
 * continuation lines) with cte when cte is not NULL. */
static int emit_headers(struct mime8 *m, struct buf *out, const char *cte)
{
    const char *h = m->hdr.len ? buf_head(&m->hdr) : "";
    size_t n = m->hdr.len, i = 0;
    int skipping = 0;

    while (i < n) {
        const char *e = memchr(h + i, '\n', n - i);
        size_t ll = e ? (size_t)(e - (h + i)) + 1 : n - i;
        int cont = h[i] == ' ' || h[i] == '\t';
        if (!cont)
            skipping = cte && ll > 26 && strncasecmp(h + i, "Content-Transfer-Encoding:", 26) == 0;
        if (skipping) {
            if (!cont) {
                char line[64];
                int k = snprintf(line, sizeof(line), "Content-Transfer-Encoding: %s\r\n", cte);
                if (out_add(m, out, line, (size_t)k) < 0)
                    return -1;
            }
        } else if (out_add(m, out, h + i, ll) < 0) {
            return -1;
        }
        i += ll;
    }
    buf_reset(&m->hdr);
    return 0;
}

/* The end of a header block: decides what the part's body is. */
static int headers_done(struct mime8 *m, struct buf *out)
{
    char v[1024], type[128], cte[64], bound[MIME8_BOUND_MAX + 1];
    const char *h = m->hdr.len ? buf_head(&m->hdr) : "";
    size_t n = m->hdr.len;

    if (header_value(h, n, "Content-Type", v, sizeof(v)))
        first_token(v, type, sizeof(type));
    else
        snprintf(type, sizeof(type), "text/plain");
    if (header_value(h, n, "Content-Transfer-Encoding", cte, sizeof(cte))) {
        char t[64];
        first_token(cte, t, sizeof(t));
        snprintf(cte, sizeof(cte), "%s", t);
    } else {
        snprintf(cte, sizeof(cte), "7bit");
    }
    int eightbit = strcmp(cte, "8bit") == 0 || strcmp(cte, "binary") == 0;
    m->in_headers = 0;
    m->encode = 0;
    m->in_leaf = 0;
    if (strncmp(type, "multipart/", 10) == 0) {
        /* re-encoding a multipart as one text would destroy it */
        if (!boundary_param(v, bound))
            return fail(m, "multipart without a usable boundary");
        if (m->depth >= MIME8_DEPTH)
            return fail(m, "MIME nesting too deep to convert");
        snprintf(m->bound[m->depth++], sizeof(m->bound[0]), "%s", bound);
        return emit_headers(m, out, eightbit ? "7bit" : NULL);
    }
    if (strcmp(type, "message/rfc822") == 0) {
        if (emit_headers(m, out, eightbit ? "7bit" : NULL) < 0)
            return -1;
        m->in_headers = 1;     /* the enclosed message's own headers */
        return 1;              /* the blank line is written by the caller */
    }
    m->in_leaf = 1;
    if (eightbit && strncmp(type, "message/", 8) != 0) {
        m->encode = 1;
        m->qp_col = 0;
        return emit_headers(m, out, "quoted-printable");
    }
    return emit_headers(m, out, NULL);
}

/* A boundary line of an open multipart? Returns its depth + 1 (negative
 * for the close delimiter), 0 if none. */
static int boundary_match(const struct mime8 *m, const char *p, size_t n)
{
    if (n < 3 || p[0] != '-' || p[1] != '-')
        return 0;
    for (unsigned k = m->depth; k-- > 0;) {
        size_t bl = strlen(m->bound[k]);
        if (n < 2 + bl || memcmp(p + 2, m->bound[k], bl) != 0)
            continue;
        size_t j = 2 + bl;
        int close = n >= j + 2 && p[j] == '-' && p[j + 1] == '-';
        if (close)
            j += 2;
        while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r' || p[j] == '\n'))
            j++;
        if (j == n)
            return close ? -(int)(k + 1) : (int)(k + 1);
    }
    return 0;
}

static int qp_piece(struct mime8 *m, const char *p, size_t n, int ends, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[MIME8_LINE_MAX * 4 + 16];
    size_t o = 0, len = n;

    if (ends) {
        len--;
        if (len > 0 && p[len - 1] == '\r')
            len--;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        int last = i + 1 == len;
        int lit = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        unsigned w = lit ? 1 : 3;
        if (m->qp_col + w > 75) {
            memcpy(tmp + o, "=\r\n", 3);
            o += 3;
            m->qp_col = 0;
        }
        if (lit) {
            tmp[o++] = (char)c;
        } else {
            tmp[o++] = '=';
            tmp[o++] = hex[c >> 4];
            tmp[o++] = hex[c & 15];
        }
        m->qp_col += w;
    }
    if (ends) {
        tmp[o++] = '\r';
        tmp[o++] = '\n';
        m->qp_col = 0;
    }
    return out_add(m, out, tmp, o);
}

static int piece(struct mime8 *m, const char *p, size_t n, struct buf *out)
{
    int at_bol = m->bol, ends = n > 0 && p[n - 1] == '\n';

    m->bol = ends;
    if (at_bol && m->depth > 0) {
        int b = boundary_match(m, p, n);
        if (b != 0) {
            if (m->in_headers && m->hdr.len > 0 && emit_headers(m, out, NULL) < 0)
                return -1;
            if (has8bit(p, n))
                return fail(m, "8-bit boundary");
            unsigned k = (unsigned)(b < 0 ? -b : b);
            m->depth = b < 0 ? k - 1 : k;
            m->encode = 0;
            m->in_leaf = 0;
            m->in_headers = b > 0;
            return out_add(m, out, p, n);
        }
    }
    if (m->in_headers) {
        if (has8bit(p, n))
            return fail(m, "8-bit header");
        if (at_bol && ((n == 2 && p[0] == '\r') || n == 1) && ends) {
            int rc = headers_done(m, out);
            if (rc < 0)
                return -1;
            return out_add(m, out, p, n);
        }
        if (buf_append(&m->hdr, p, n) < 0)
            return fail(m, "header block too large to convert");
        return 0;
    }
    if (m->encode)
        return qp_piece(m, p, n, ends, out);
    if (has8bit(p, n))
        return fail(m, m->in_leaf ? "8-bit text in a part that is not declared 8bit"
                                  : "8-bit text outside a MIME part");
    return out_add(m, out, p, n);
}

int mime8_feed(struct mime8 *m, const char *in, size_t len, struct buf *out)
{
    if (m->failed)
        return -1;
    while (len > 0) {
        const char *nl = memchr(in, '\n', len);
        size_t take = nl ? (size_t)(nl - in) + 1 : len;
        if (m->carry_len == 0 && nl && take <= MIME8_LINE_MAX) {
            if (piece(m, in, take, out) < 0)
                return -1;
        } else {
            size_t room = MIME8_LINE_MAX - m->carry_len;
            if (take > room)
                take = room;
            memcpy(m->carry + m->carry_len, in, take);
            m->carry_len += take;
            if (m->carry[m->carry_len - 1] == '\n' || m->carry_len == MIME8_LINE_MAX) {
                if (piece(m, m->carry, m->carry_len, out) < 0)
                    return -1;
                m->carry_len = 0;
            }
        }
        in += take;
        len -= take;
    }
    return 0;
}

int mime8_finish(struct mime8 *m, struct buf *out)
{
    if (m->failed)
        return -1;
    if (m->carry_len > 0) {
        if (piece(m, m->carry, m->carry_len, out) < 0)
            return -1;
        m->carry_len = 0;
    }
    if (m->in_headers && m->hdr.len > 0) {
        if (has8bit(buf_head(&m->hdr), m->hdr.len))
            return fail(m, "8-bit header");
        return emit_headers(m, out, NULL);
    }
    return 0;
}
