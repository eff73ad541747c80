/*
 * sasl.c - SASL decoding (sasl.h). Must never accept what it cannot
 * decode exactly, and never write past a caller's buffer: every length is
 * checked before OpenSSL sees the input.
 */
#include "sasl.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "authproto.h"

enum sasl_mech sasl_mech_named(const char *name)
{
    if (!strcasecmp(name, "PLAIN"))
        return SASL_PLAIN;
    if (!strcasecmp(name, "LOGIN"))
        return SASL_LOGIN;
    return SASL_NONE;
}

const char *sasl_mech_name(enum sasl_mech m)
{
    return m == SASL_PLAIN ? "PLAIN" : m == SASL_LOGIN ? "LOGIN" : "none";
}

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int sasl_b64_decode(const char *in, size_t len, char *out, size_t outlen, size_t *n)
{
    size_t pad = 0;
    int r;

    *n = 0;
    if (len == 1 && in[0] == '=') {
        if (outlen < 1)
            return -1;
        out[0] = 0;
        return 0;
    }
    if (len % 4 != 0 || len > SASL_RESPONSE_MAX || outlen < len / 4 * 3 + 1)
        return -1;
    if (len >= 1 && in[len - 1] == '=')
        pad++;
    if (len >= 2 && in[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)in[i]))
            return -1;
    if (len == 0) {
        out[0] = 0;
        return 0;
    }
    r = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
    if (r < 0 || (size_t)r < pad)
        return -1;
    *n = (size_t)r - pad;
    out[*n] = 0;
    return 0;
}

void sasl_b64_encode(const char *in, size_t len, char *out, size_t outlen)
{
    if (outlen < (len + 2) / 3 * 4 + 1) {
        if (outlen)
            out[0] = 0;
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
}

int sasl_plain_split(const char *msg, size_t n, const char **user, size_t *ulen, const char **pass, size_t *plen)
{
    const char *z1 = memchr(msg, 0, n), *z2;
    size_t azlen;

    if (!z1)
        return -1;
    z2 = memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - msg));
    if (!z2 || memchr(z2 + 1, 0, n - (size_t)(z2 + 1 - msg)))
        return -1;
    azlen = (size_t)(z1 - msg);
    *user = z1 + 1;
    *ulen = (size_t)(z2 - *user);
    *pass = z2 + 1;
    *plen = n - (size_t)(*pass - msg);
    if (*ulen == 0 || *plen == 0)
        return -1;
    /* an authorisation identity other than the user's own is refused */
    if (azlen && (azlen != *ulen || memcmp(msg, *user, azlen) != 0))
        return -1;
    return 0;
}

int sasl_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > AUTH_USER_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}
