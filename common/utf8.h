/*
 * utf8.h - the one UTF-8 validator (RFC 3629).
 *
 * Well-formed means: the shortest form only (no overlongs such as C0 AF),
 * no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no lone
 * continuation bytes and no sequence cut short by the end of the input.
 * Whether a valid character is welcome (a C1 control in an address, say) is
 * the caller's policy: see utf8_is_c1().
 */
#ifndef POSTERN_UTF8_H
#define POSTERN_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the character at s[0..len): returns its length (1 for ASCII,
 * 2..4 otherwise) and sets *cp (may be NULL), or returns 0 when the bytes
 * there are not a well-formed sequence or len is 0. Never reads past len.
 */
size_t utf8_decode(const void *s, size_t len, uint32_t *cp);

/* Are all len bytes of s well-formed UTF-8? (NUL counts as ASCII.) */
int utf8_valid(const void *s, size_t len);

/* Is cp a C1 control character (U+0080..U+009F)? */
static inline int utf8_is_c1(uint32_t cp)
{
    return cp >= 0x80 && cp <= 0x9F;
}

#endif
