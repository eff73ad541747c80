/*
 * tlsc.c - the client TLS context (tlsc.h). Certificates are looked at,
 * never trusted blindly and never used to refuse here: refusing is a
 * policy decision made by the caller's hook.
 */
#include "tlsc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "tlserr.h"
#include <openssl/x509.h>

static SSL_CTX *ctx;

int tlsc_init(const char *ca_file, char *err, size_t errlen)
{
    char e[256];

    if (ctx)
        return 0;
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", tls_error_text(e, sizeof(e)));
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (ca_file && ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            snprintf(err, errlen, "TLS CA file %s: %s", ca_file, tls_error_text(e, sizeof(e)));
            SSL_CTX_free(ctx);
            ctx = NULL;
            return -1;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
        ERR_clear_error();
    }
    return 0;
}

SSL *tlsc_new(int fd, const char *host)
{
    char err[256];
    struct in6_addr a6;
    struct in_addr a4;

    if (!ctx && tlsc_init(NULL, err, sizeof(err)) < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (host && host[0] && inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        SSL_set_tlsext_host_name(ssl, host);
    SSL_set_connect_state(ssl);
    return ssl;
}

const char *tlsc_trust(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);

    if (!cert)
        return "Anonymous";
    X509_free(cert);
    return SSL_get_verify_result(ssl) == X509_V_OK ? "Trusted" : "Untrusted";
}

void tlsc_describe(SSL *ssl, char *out, size_t outlen)
{
    int alg = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg);
    int group = (int)SSL_get_negotiated_group(ssl);
    const char *kx = group > 0 ? SSL_group_to_name(ssl, group) : NULL;
    int n;

    n = snprintf(out, outlen, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
                 SSL_get_cipher_name(ssl), bits, alg);
    /* Postfix goes on with the key exchange group */
    if (kx && n > 0 && (size_t)n < outlen)
        snprintf(out + n, outlen - (size_t)n, " key-exchange %s", kx);
}
