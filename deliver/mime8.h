/*
 * mime8.h - 8-bit MIME to 7-bit, for a server that does not offer
 * 8BITMIME (RFC 6152), the way Postfix downgrades: every leaf body part
 * whose Content-Transfer-Encoding is 8bit or binary is re-encoded as
 * quoted-printable (its CTE header rewritten, the other headers left
 * alone); multipart and message/rfc822 parts are followed to any depth
 * (bounded). What cannot be converted without changing the message is
 * refused, never sent corrupted: 8-bit bytes in any header, in a part
 * declared 7bit/base64/quoted-printable (or with no CTE, as in a non-MIME
 * message), in a preamble or epilogue, in message/global, a multipart
 * without a usable boundary, or a too deep or too large header block.
 * The caller then fails the recipients 5.6.3.
 *
 * Streaming over spool blocks, memory bounded (a line carry and a header
 * block of at most MIME8_HDR_MAX bytes).
 */
#ifndef POSTERN_DELIVER_MIME8_H
#define POSTERN_DELIVER_MIME8_H

#include <stddef.h>
#include "buf.h"

#define MIME8_LINE_MAX  8192     /* longer lines are handled in pieces */
#define MIME8_HDR_MAX   65536    /* one header block */
#define MIME8_DEPTH     16       /* nested multiparts */
#define MIME8_BOUND_MAX 80       /* RFC 2046: 70 */

struct mime8 {
    char carry[MIME8_LINE_MAX];
    size_t carry_len;
    int bol;                      /* the next piece starts a line */
    int in_headers;
    int encode;                   /* current leaf part is being QP-encoded */
    int in_leaf;                  /* in a leaf body (else preamble/epilogue/top) */
    unsigned qp_col;              /* output column of the QP line */
    struct buf hdr;
    char bound[MIME8_DEPTH][MIME8_BOUND_MAX + 1];
    unsigned depth;
    int pending_multipart;        /* headers said multipart: push on body */
    char pending_bound[MIME8_BOUND_MAX + 1];
    char err[128];
    int failed;
};

void mime8_init(struct mime8 *m);
void mime8_free(struct mime8 *m);
/* Converts a block; output appended to out. -1 with m->err when the
 * message cannot be converted (or out is full). */
int mime8_feed(struct mime8 *m, const char *in, size_t len, struct buf *out);
/* At the end of the message. -1 with m->err. */
int mime8_finish(struct mime8 *m, struct buf *out);

#endif
