/*
 * dotstuff.h - turns spool content into the DATA stream of RFC 5321
 * §4.5.2: every line ending made CRLF (the spool holds CRLF lines; a bare
 * LF becomes CRLF), a "." at the start of a line doubled, and the final
 * "CRLF.CRLF" added. Streaming: blocks of any size, state carried between
 * them, no allocation. It never drops or reorders a byte.
 */
#ifndef POSTERN_DELIVER_DOTSTUFF_H
#define POSTERN_DELIVER_DOTSTUFF_H

#include <stddef.h>

struct dotstuff {
    int bol;      /* next byte starts a line */
    int cr;       /* last byte was CR */
};

void dotstuff_init(struct dotstuff *d);
/* Converts len bytes of in into out, which must hold 2 * len bytes;
 * returns the bytes written. */
size_t dotstuff_block(struct dotstuff *d, const char *in, size_t len, char *out);
/* The end of data: CRLF if the last line was not ended, then ".CRLF".
 * out must hold 5 bytes; returns the bytes written. */
size_t dotstuff_finish(struct dotstuff *d, char *out);

#endif
