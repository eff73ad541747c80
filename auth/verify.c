/*
 * verify.c - password verification (verify.h) through libxcrypt's
 * crypt_rn. Must never log or keep a password, never accept a hash form
 * that libcrypt does not recognise (crypt_rn's "*" failure tokens), and
 * never compare with an early exit (CRYPTO_memcmp).
 */
#include "verify.h"

#include <crypt.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

/* Dovecot's schemes that are crypt(3) strings underneath. */
static const char *const crypt_schemes[] = {
    "CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "YESCRYPT", NULL,
};

/* The forms accepted (prefixes of the crypt string). */
static const char *const crypt_prefixes[] = { "$y$", "$6$", "$5$", "$2b$", "$2y$", "$2a$", "$gy$", "$7$", NULL };

const char *verify_crypt_part(const char *stored)
{
    const char *h = stored;

    if (h[0] == '{') {
        const char *end = strchr(h, '}');
        int known = 0;
        if (!end)
            return NULL;
        for (size_t i = 0; crypt_schemes[i]; i++)
            if ((size_t)(end - h - 1) == strlen(crypt_schemes[i]) &&
                !strncasecmp(h + 1, crypt_schemes[i], (size_t)(end - h - 1)))
                known = 1;
        if (!known)
            return NULL;
        h = end + 1;
    }
    for (size_t i = 0; crypt_prefixes[i]; i++)
        if (!strncmp(h, crypt_prefixes[i], strlen(crypt_prefixes[i])))
            return h;
    return NULL;
}

int verify_password(const char *stored, const char *pass, size_t passlen)
{
    struct crypt_data cd;
    char pw[4097];
    const char *h = verify_crypt_part(stored), *out;
    size_t hlen;
    int ok = 0;

    if (!h || passlen >= sizeof(pw) || memchr(pass, 0, passlen)) {
        verify_dummy(pass, passlen);
        return 0;
    }
    memcpy(pw, pass, passlen);
    pw[passlen] = 0;
    memset(&cd, 0, sizeof(cd));
    out = crypt_rn(pw, h, &cd, sizeof(cd));
    hlen = strlen(h);
    if (out && out[0] != '*' && strlen(out) == hlen)
        ok = CRYPTO_memcmp(out, h, hlen) == 0;
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(&cd, sizeof(cd));
    return ok;
}

/* yescrypt of "dummy" with Debian's default cost (mkpasswd -m yescrypt). */
#define DUMMY_HASH "$y$j9T$/TIlqP2yZoMCUSIwQUiv4.$devYfzWf.KCPei2xFxRaf.SxYBewC1NPqTSPUzFtwk0"

void verify_dummy(const char *pass, size_t passlen)
{
    struct crypt_data cd;
    char pw[4097];
    size_t n = passlen < sizeof(pw) - 1 ? passlen : sizeof(pw) - 1;

    memcpy(pw, pass, n);
    pw[n] = 0;
    memset(&cd, 0, sizeof(cd));
    (void)crypt_rn(pw, DUMMY_HASH, &cd, sizeof(cd));
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(&cd, sizeof(cd));
}
