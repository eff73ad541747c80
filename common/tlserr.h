/*
 * tlserr.h - OpenSSL's error queue as one line of text, for the server
 * (smtpd) and the client (deliver) alike.
 */
#ifndef POSTERN_TLSERR_H
#define POSTERN_TLSERR_H

#include <stddef.h>

/* The oldest error on this thread's OpenSSL queue (or "unknown TLS error")
 * into buf; the queue is cleared. Returns buf. */
const char *tls_error_text(char *buf, size_t len);

#endif
