/*
 * tlscheck.c - loads a certificate chain and its key the way smtpd will,
 * only to say whether it can (tlscheck.h). The files are the operator's;
 * nothing from the network is parsed here, and the context is thrown away.
 *
 * The master must never block: each file is opened with O_NONBLOCK (a file
 * another process holds a lease on answers EWOULDBLOCK instead of making us
 * wait) and read whole into memory, at most TLS_FILE_MAX bytes, then parsed
 * from there.
 */
#include "tlscheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define TLS_FILE_MAX (1 << 20)

static void reason(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, out, outlen);
    else
        snprintf(out, outlen, "no PEM data");
    ERR_clear_error();
}

/* The file into a memory BIO, or NULL with why. */
static BIO *read_file(const char *path, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    BIO *bio = NULL;

    if (fd < 0) {
        snprintf(why, whylen, "%s", errno == EWOULDBLOCK ? "another process holds a lease on it; try again"
                                                         : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
        snprintf(why, whylen, "not a regular file of at most %d bytes", TLS_FILE_MAX);
        close(fd);
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(why, whylen, "out of memory");
        close(fd);
        return NULL;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whylen, "read: %s", n < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)n;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || BIO_write(bio, buf, (int)got) != (int)got) {
        BIO_free(bio);
        bio = NULL;
        snprintf(why, whylen, "out of memory");
    }
out:
    OPENSSL_cleanse(buf, got);
    free(buf);
    close(fd);
    return bio;
}

/* The leaf and its chain from the PEM in bio, onto ctx; 0 or -1. */
static int use_chain(SSL_CTX *ctx, BIO *bio)
{
    X509 *x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL), *ca;

    if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
        X509_free(x);
        return -1;
    }
    X509_free(x);
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            return -1;
        }
    }
    ERR_clear_error();          /* the end of the file reads as an error */
    return 0;
}

int tls_pair_check(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = NULL, *kb = NULL;
    EVP_PKEY *pk = NULL;
    char why[256];
    int rc = -1;

    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot make a context: out of memory");
        return -1;
    }
    if (!(cb = read_file(cert, why, sizeof(why)))) {
        snprintf(err, errlen, "tls_cert_file %s: %s", cert, why);
    } else if (use_chain(ctx, cb) < 0) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_cert_file %s: not a usable PEM certificate chain (%s)", cert, why);
    } else if (!(kb = read_file(key, why, sizeof(why)))) {
        snprintf(err, errlen, "tls_key_file %s: %s", key, why);
    } else if (!(pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) || SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_key_file %s: not a usable PEM private key (%s)", key, why);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        reason(why, sizeof(why));
        snprintf(err, errlen, "tls_key_file %s does not belong to tls_cert_file %s (%s)", key, cert, why);
    } else {
        rc = 0;
    }
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
