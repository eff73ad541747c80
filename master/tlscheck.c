/*
 * tlscheck.c - loads a certificate chain and its key the way smtpd will,
 * only to say whether it can (tlscheck.h). The files are the operator's;
 * nothing from the network is parsed here, and the context is thrown away.
 */
#include "tlscheck.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void reason(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, out, outlen);
    else
        snprintf(out, outlen, "unknown error");
    ERR_clear_error();
}

int tls_pair_check(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char why[256];
    int rc = -1;

    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot make a context: out of memory");
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_cert_file %s: not a usable PEM certificate chain (%s)", cert, why);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_key_file %s: not a usable PEM private key (%s)", key, why);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_key_file %s does not belong to tls_cert_file %s (%s)", key, cert, why);
    } else {
        rc = 0;
    }
    SSL_CTX_free(ctx);
    return rc;
}
