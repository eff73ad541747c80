/*
 * tlscheck.h - does a certificate file load, and does the key belong to it?
 * Run at start, at `postern check` and before a reload, so a renewed
 * certificate that smtpd could not load is refused while the old one serves.
 */
#ifndef POSTERN_MASTER_TLSCHECK_H
#define POSTERN_MASTER_TLSCHECK_H

#include <stddef.h>

/* 0, or -1 with "tls_cert_file FILE: reason" (or tls_key_file) in err. */
int tls_pair_check(const char *cert, const char *key, char *err, size_t errlen);

#endif
