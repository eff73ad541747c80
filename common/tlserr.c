/*
 * tlserr.c - OpenSSL errors as text (tlserr.h).
 */
#include "tlserr.h"

#include <stdio.h>
#include <openssl/err.h>

const char *tls_error_text(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}
