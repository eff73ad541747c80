/*
 * received.h - the one builder of Postern's Received: trace line (RFC 5321
 * 4.4), in its two forms: a message from an SMTP client (smtpd) and a local
 * submission (queue-mgr, for sendmail). Builds text only: the caller
 * writes it, and must have sanitised every field it passes (no CR, LF,
 * parentheses or spaces in helo; the others are ours).
 */
#ifndef POSTERN_RECEIVED_H
#define POSTERN_RECEIVED_H

#include <stddef.h>
#include <time.h>

struct received_smtp {
    const char *helo;       /* the client's HELO/EHLO argument */
    const char *addr;       /* its IP address as text ("::1" gets "IPv6:") */
    const char *tls;        /* tls_describe() text, or NULL without TLS */
    const char *host;       /* our hostname */
    const char *proto;      /* "ESMTPS" etc. (RFC 3848) */
    const char *qid;
    const char *rcpt;       /* the one recipient, or NULL when not one */
    time_t when;
    int hide_addr;          /* leave out "(unknown [addr])" (submission_hide_client) */
};

/* Returns the length written into out (NUL-terminated, ending in CRLF), or
 * -1 when it does not fit. */
int received_smtp(char *out, size_t outlen, const struct received_smtp *r);
/* "Received: by HOST (Postern, from userid UID)\r\n\tid QID; DATE\r\n" */
int received_local(char *out, size_t outlen, const char *host, unsigned long uid, const char *qid, time_t when);

#endif
