/*
 * linereader.h - splits a byte stream into lines, for SMTP commands and
 * message data.
 *
 * A line ends at LF. Bytes of a partial line are carried in a fixed buffer
 * between calls, so a session never holds more than `max` bytes of a line.
 * A line longer than max is not kept: it is reported once, at its end, with
 * LR_TOOLONG and its first max bytes. Flags tell the caller everything it
 * needs to refuse SMTP smuggling: whether the line ended in CRLF, whether it
 * contains a bare CR or a NUL.
 */
#ifndef POSTERN_LINEREADER_H
#define POSTERN_LINEREADER_H

#include <stddef.h>

enum {
    LR_CRLF    = 1 << 0, /* line ended with CR LF (else: bare LF) */
    LR_BARE_CR = 1 << 1, /* a CR not followed by LF inside the line */
    LR_NUL     = 1 << 2, /* a NUL byte inside the line */
    LR_TOOLONG = 1 << 3, /* longer than max (including the line end) */
};

#define LR_MAX_LINE 2048

struct linereader {
    char carry[LR_MAX_LINE];
    size_t carry_len;
    size_t max;           /* longest line accepted, including CRLF; <= LR_MAX_LINE */
    size_t seen;          /* bytes of the current line seen so far */
    unsigned flags;       /* flags gathered for the current line */
};

void lr_init(struct linereader *lr, size_t max);
void lr_reset(struct linereader *lr);
void lr_set_max(struct linereader *lr, size_t max);

/*
 * Consumes input from *in / *inlen. Returns 1 with *line, *linelen (the line
 * including its LF, or its first max bytes when LR_TOOLONG) and *flags when a
 * whole line is available; the line stays valid until the next call. Returns 0
 * when the input is used up; a partial line is kept for the next call.
 */
int lr_next(struct linereader *lr, const char **in, size_t *inlen,
            const char **line, size_t *linelen, unsigned *flags);

/* Bytes of a partial line held back (0 when at a line boundary). */
static inline size_t lr_pending(const struct linereader *lr) { return lr->seen; }

#endif
