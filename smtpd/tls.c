/*
 * tls.c - smtpd's TLS context (tls.h). Everything about certificates and
 * protocol versions lives here; sessions only call SSL_read/SSL_write.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "tlserr.h"

static SSL_CTX *ctx;

#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

int tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    char e[256];

    if (!cert_file[0])
        return 0;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", tls_error_text(e, sizeof(e)));
        return -1;
    }
    /* TLS 1.2 and 1.3 only, forward-secret AEAD suites only (Mozilla's
     * "intermediate" list); TLS 1.3 keeps OpenSSL's suites, all modern */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        snprintf(err, errlen, "TLS cipher list: %s", tls_error_text(e, sizeof(e)));
        return -1;
    }
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle sessions should not hold 2 x 16 KiB of TLS record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "TLS certificate %s: %s", cert_file, tls_error_text(e, sizeof(e)));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS key %s: %s", key_file, tls_error_text(e, sizeof(e)));
        return -1;
    }
    return 0;
}

int tls_available(void)
{
    return ctx != NULL;
}

SSL *tls_new(int fd)
{
    SSL *ssl;

    if (!ctx || !(ssl = SSL_new(ctx)))
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_describe(SSL *ssl, char *out, size_t outlen)
{
    int alg = 0;
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int bits = c ? SSL_CIPHER_get_bits(c, &alg) : 0;

    snprintf(out, outlen, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
             c ? SSL_CIPHER_get_name(c) : "unknown", bits, alg);
}
