/*
 * notice.h - composes a delivery status notification (RFC 3464 inside an
 * RFC 6522 multipart/report; RFC 6533 for SMTPUTF8 mail): a human part in
 * plain words from the templates (btmpl.h), the machine-readable
 * delivery-status part, and the original (whole or its header). Pure: no
 * I/O, no clock, no configuration; the caller reads the original and
 * gives everything in struct notice_msg. Nothing from the original or
 * from a remote server can add a header field or a MIME boundary.
 */
#ifndef POSTERN_QMGR_NOTICE_H
#define POSTERN_QMGR_NOTICE_H

#include <stddef.h>
#include <stdint.h>
#include "btmpl.h"
#include "buf.h"

#define NOTICE_QUOTE_MAX 600        /* bytes of a remote reply quoted */
#define NOTICE_MAX ((size_t)64 << 20) /* the notice's own size bound */

enum notice_action { NA_FAILED, NA_DELAYED, NA_DELIVERED, NA_RELAYED, NA_EXPANDED };

struct notice_rcpt {
    const char *addr;           /* Final-Recipient */
    const char *orcpt;          /* "addr-type;xtext" as received, or NULL */
    enum notice_action action;
    const char *status;         /* "5.1.1"; a bad one becomes X.0.0 of the action */
    const char *reply;          /* the remote reply or our reason, or NULL */
    const char *remote;         /* the remote MTA's host name when it answered, or NULL */
    uint64_t last_try;          /* 0: never tried */
};

struct notice_msg {
    enum btmpl_kind kind;
    enum btmpl_lang lang;
    const struct btmpl *tmpl;
    const char *hostname;       /* Reporting-MTA, From: MAILER-DAEMON@ */
    const char *postmaster;     /* named in the text as the sender's helper */
    const char *orig_qid, *notice_qid;
    const char *orig_sender;    /* the original's envelope sender */
    const char *to;             /* where the notice goes (To:) */
    const char *envid;          /* ENVID as received (xtext), or "" */
    int utf8;                   /* SMTPUTF8 mail: the RFC 6533 types */
    uint64_t arrival, now, retry_until;
    const struct notice_rcpt *rcpt;
    size_t nrcpt;
    const char *orig;           /* the first orig_len bytes of the original */
    size_t orig_len;
    uint64_t orig_size;         /* its whole size */
    int full;                   /* return it whole when orig_size <= size_limit */
    uint64_t size_limit;
    uint32_t seed;              /* varies the boundary */
};

/* The whole notice, CRLF lines, into out (initialised by the caller);
 * *eightbit says whether it holds bytes above 127 (BODY=8BITMIME). 0, or
 * -1 with err. */
int notice_compose(const struct notice_msg *n, struct buf *out, int *eightbit, char *err,
                   size_t errlen);

/* The language for bounce_language (CONF_BOUNCE_*): fixed, or from the
 * original's Content-Language:, else Accept-Language:, else a .de, .at or
 * .ch sender domain, else English. */
enum btmpl_lang notice_language(int choice, const char *orig, size_t len, const char *sender);

/* Which advice a failure gets (the template section "advice-..."), from
 * its status code and reply. */
const char *notice_advice(const char *status, const char *reply);

/* The end of the header section of msg[0..len): the bytes of its header
 * fields (a first line that is no field ends it); *sep says whether an
 * empty line follows them. */
size_t notice_header_len(const char *msg, size_t len, int *sep);

#endif
