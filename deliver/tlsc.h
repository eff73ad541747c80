/*
 * tlsc.h - the SMTP client's OpenSSL context: TLS 1.2 or newer, the peer
 * chain checked against the system trust store (or a CA file) only to say
 * "Trusted" or "Untrusted" in the log, never to refuse (opportunistic TLS
 * of RFC 7435); a policy that must verify does it through smtpc's hook.
 */
#ifndef POSTERN_DELIVER_TLSC_H
#define POSTERN_DELIVER_TLSC_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Makes the context once (smtpc_tls_init calls it); -1 with err. */
int tlsc_init(const char *ca_file, char *err, size_t errlen);
/* A client SSL on fd with SNI host (if it is a name), or NULL. */
SSL *tlsc_new(int fd, const char *host);
/* "Trusted", "Untrusted" or "Anonymous" (no certificate). */
const char *tlsc_trust(SSL *ssl);
/* "TLSv1.3 with cipher NAME (256/256 bits) key-exchange X25519". */
void tlsc_describe(SSL *ssl, char *out, size_t outlen);

#endif
