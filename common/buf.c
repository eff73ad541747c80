/*
 * buf.c - growable byte buffers with a hard limit (see buf.h).
 */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->off = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = b->off = 0;
}

static int buf_reserve(struct buf *b, size_t extra)
{
    size_t need, ncap;
    char *p;

    if (extra > b->max || b->len > b->max - extra) {
        errno = ENOBUFS;
        return -1;
    }
    need = b->len + extra;
    if (b->off + need <= b->cap)
        return 0;
    if (b->off > 0 && need <= b->cap) {
        /* Slide the unread bytes to the front instead of growing. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return 0;
    }
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    p = realloc(b->data, ncap);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    b->data = p;
    b->cap = ncap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->off + b->len, data, len);
    b->len += len;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        errno = ENOBUFS;
        return -1;
    }
    return buf_append(b, tmp, (size_t)n);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        /* Idle connections should hold no buffer memory. */
        buf_free(b);
        return;
    }
    b->off += n;
    b->len -= n;
}
