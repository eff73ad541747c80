/*
 * subfix.h - what submission (587/465) does to a message's header section
 * as it is spooled (RFC 6409 8): a missing Date: and Message-ID: are added
 * at its end, and with submission_check_from = yes every address of From:
 * must be the authenticated user's (the same rule as for the envelope
 * sender). Sees the message line by line, as it arrives; never rewrites
 * what was sent, only adds fields before the blank line.
 */
#ifndef POSTERN_SMTPD_SUBFIX_H
#define POSTERN_SMTPD_SUBFIX_H

#include <stddef.h>

#include "addr.h"
#include "buf.h"

#define SUBFIX_FROM_MAX 8192            /* bytes of From: kept for the check */
#define SUBFIX_ADD_MAX 512              /* the fields that may be added */

/* May owner send as a? 1 yes, 0 no, -1 cannot tell (map error). */
typedef int (*subfix_owned_fn)(void *arg, const struct addr *a);

struct subfix {
    int in_header;
    int seen_date, seen_msgid;
    int in_from;                /* the current field is From: */
    int from_fields;
    int from_toolong;
    struct buf from;            /* the From: values, unfolded, comma-joined */
    subfix_owned_fn owned;      /* NULL: no From: check */
    void *owned_arg;
    char host[256];             /* our hostname, for a Message-ID */
    char qid[32];
    int verdict;                /* 0 fine, 1 not owned, -1 cannot tell */
    char bad[ADDR_MAX + 1];     /* the first From: address that is not the user's */
};

/* Starts a message: host and qid make an added Message-ID unique. */
void subfix_start(struct subfix *f, const char *host, const char *qid, subfix_owned_fn owned, void *arg);
void subfix_free(struct subfix *f);
/* One line of the message (with its line end, dot-stuffing undone).
 * While in the header section, returns the length of the fields to add
 * before this line (written into add, SUBFIX_ADD_MAX), 0 otherwise. */
size_t subfix_line(struct subfix *f, const char *line, size_t len, char *add);
/* Is the header section still open (lines must be fed one by one)? */
static inline int subfix_in_header(const struct subfix *f) { return f->in_header; }
/* At the end of the message: NULL, or the refusal reply (in reply). */
const char *subfix_end(struct subfix *f, char *reply, size_t len);

#endif
