/*
 * buf.h - a growable byte buffer with a hard upper limit.
 *
 * Every buffer that a peer can fill has a max; buf_append() refuses to grow
 * past it, so no input can make a process allocate without bound.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;   /* bytes in use, from data[off] */
    size_t off;   /* bytes already consumed at the front */
    size_t cap;
    size_t max;   /* hard limit on cap */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Appends; -1 (errno ENOBUFS or ENOMEM) if it would exceed max or OOM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const char *buf_head(const struct buf *b) { return b->data + b->off; }
/* Drops n bytes from the front; frees the storage when the buffer empties. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);

#endif
