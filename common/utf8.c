/*
 * utf8.c - RFC 3629 UTF-8 decoding and validation, for every module that
 * takes UTF-8 from outside (addresses, log lines, listings).
 *
 * Must never read past the length it is given (inputs are not
 * NUL-terminated) and never accept a form that another decoder could read
 * as a different character: no overlongs, no surrogates, nothing past
 * U+10FFFF. Table 3-7 of the Unicode standard, byte by byte.
 */
#include "utf8.h"

size_t utf8_decode(const void *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = str;
    unsigned char c, lo = 0x80, hi = 0xBF;     /* allowed range of the second byte */
    size_t n;
    uint32_t v;

    if (len == 0)
        return 0;
    c = s[0];
    if (c < 0x80) {
        if (cp != NULL)
            *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2; v = c & 0x1Fu;
    } else if (c == 0xE0) {
        n = 3; v = 0; lo = 0xA0;                /* no overlong 3-byte forms */
    } else if (c == 0xED) {
        n = 3; v = 0x0D; hi = 0x9F;             /* no surrogates */
    } else if (c >= 0xE1 && c <= 0xEF) {
        n = 3; v = c & 0x0Fu;
    } else if (c == 0xF0) {
        n = 4; v = 0; lo = 0x90;                /* no overlong 4-byte forms */
    } else if (c >= 0xF1 && c <= 0xF3) {
        n = 4; v = c & 0x07u;
    } else if (c == 0xF4) {
        n = 4; v = 4; hi = 0x8F;                /* nothing above U+10FFFF */
    } else {
        return 0;                               /* continuation, C0, C1, F5..FF */
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    v = (v << 6) | (s[1] & 0x3Fu);
    for (size_t k = 2; k < n; k++) {
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
        v = (v << 6) | (s[k] & 0x3Fu);
    }
    if (cp != NULL)
        *cp = v;
    return n;
}

int utf8_valid(const void *str, size_t len)
{
    const unsigned char *s = str;
    size_t i = 0;

    while (i < len) {
        size_t n;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((n = utf8_decode(s + i, len - i, NULL)) == 0)
            return 0;
        i += n;
    }
    return 1;
}
