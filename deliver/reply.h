/*
 * reply.h - a bounded, incremental parser of SMTP server replies
 * (RFC 5321 §4.2), for the SMTP client.
 *
 * Bytes are fed in whatever chunks the network gives; a reply is complete
 * at its last line ("CODE SP text CRLF" or "CODE CRLF"). The parser never
 * grows memory: a line longer than REPLY_LINE_MAX, more than
 * REPLY_MAX_LINES lines or REPLY_MAX_BYTES bytes in one reply is an error,
 * and so is a reply line ending in a bare LF (decision: a server that
 * cannot send CRLF is broken or an attack on our parser; Postern defers
 * rather than guess where its lines end). Codes must be three digits
 * (2-5, 0-5, 0-9) and the same on every line. After an error the parser
 * stays in error: the connection must be dropped.
 */
#ifndef POSTERN_DELIVER_REPLY_H
#define POSTERN_DELIVER_REPLY_H

#include <stddef.h>

#define REPLY_LINE_MAX  2048    /* one line, including CRLF */
#define REPLY_MAX_LINES 128
#define REPLY_MAX_BYTES 65536
#define REPLY_TEXT_MAX  8192    /* text kept; the rest of a long reply is dropped */

struct reply {
    int code;                 /* 220, 250, ... */
    char enh[16];             /* "5.1.1" from the first line, "" if none */
    char text[REPLY_TEXT_MAX];/* the lines' text (after "CODE-"), '\n'-separated */
    size_t textlen;
    unsigned nlines;
    int truncated;            /* text did not fit */
};

enum { REPLY_MORE = 0, REPLY_DONE = 1, REPLY_ERROR = -1 };

struct reply_parser {
    struct reply r;
    char line[REPLY_LINE_MAX];
    size_t linelen;
    size_t bytes;             /* bytes of the current reply so far */
    int state;                /* REPLY_MORE, or REPLY_ERROR once failed */
    int fresh;                /* r holds a finished reply; reset on next feed */
    char err[128];            /* why, once in error */
};

void reply_init(struct reply_parser *p);
/*
 * Consumes bytes from in until a reply completes (REPLY_DONE: p->r holds
 * it, *used says how much was taken; call again for the rest), the input
 * runs out (REPLY_MORE, everything used) or an error (REPLY_ERROR, p->err).
 */
int reply_feed(struct reply_parser *p, const char *in, size_t len, size_t *used);
/* 1 if a reply is partly read (bytes waiting for their line end). */
int reply_pending(const struct reply_parser *p);

/* Parses an enhanced status code "C.S.D" at s whose class must be cls
 * ('2','4','5'); copies it to out (size >= 16) and returns its length
 * (followed by a space or the end in s), 0 if there is none. */
size_t reply_enhanced(const char *s, size_t len, char cls, char *out);

/* The i-th line of the text (0-based), NUL-free view: *len set; NULL past
 * the end. */
const char *reply_line(const struct reply *r, unsigned i, size_t *len);

#endif
