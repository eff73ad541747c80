/*
 * tls.h - smtpd's OpenSSL server context: TLS 1.2 or newer, certificate
 * and key loaded once at start (as root, before the chroot).
 */
#ifndef POSTERN_SMTPD_TLS_H
#define POSTERN_SMTPD_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Loads cert and key; -1 with err. With empty paths TLS stays off (returns 0). */
int tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen);
int tls_available(void);
/* A new server-side SSL for a connected socket, or NULL. */
SSL *tls_new(int fd);
/* "TLSv1.3 with cipher NAME (256/256 bits)" for Received: and logs. */
void tls_describe(SSL *ssl, char *out, size_t outlen);

#endif
