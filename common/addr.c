/*
 * addr.c - the one RFC 5321 path parser (RFC 6531 UTF-8 forms included).
 *
 * Every address that enters Postern from the network goes through here, so
 * it must stay strict and boring: it never reads past len (the input is not
 * NUL-terminated), never writes past the fixed buffers of struct addr, and
 * accepts nothing that a later stage (queue file, Maildir path, log line)
 * would have to re-check for control characters or spaces.
 *
 * The parse runs in two steps: a scan that only validates and records where
 * the local part and domain are, then the length checks and the copies.
 * UTF-8 is always accepted by the scan; whether it was allowed is decided at
 * the end, so that an address valid only under SMTPUTF8 can be answered with
 * ADDR_ENEEDUTF8 instead of a plain syntax error.
 */
#include "addr.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <string.h>

/* RFC 5321 atext, ASCII part. */
static int is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Length of the well-formed UTF-8 sequence (2..4 bytes) of a non-ASCII
 * character at s[i], or 0 if it is malformed (utf8.h says what that means)
 * or a C1 control character (U+0080..U+009F): those are as unwelcome in an
 * address as their ASCII counterparts.
 */
static size_t utf8_char_len(const unsigned char *s, size_t i, size_t len)
{
    uint32_t cp;
    size_t n = utf8_decode(s + i, len - i, &cp);

    if (n < 2 || utf8_is_c1(cp))
        return 0;
    return n;
}

/*
 * Validates one domain name s[0..len), without trailing dot. Returns
 * ADDR_OK, ADDR_ESYNTAX or ADDR_ETOOLONG; sets *nonascii when a U-label
 * was seen (the caller decides whether that was allowed).
 */
static enum addr_error check_domain(const unsigned char *s, size_t len, int *nonascii)
{
    size_t i = 0;
    int toolong = 0;

    *nonascii = 0;
    if (len == 0)
        return ADDR_ESYNTAX;
    while (i < len) {
        size_t start = i;
        unsigned char last = 0;

        while (i < len && s[i] != '.') {
            unsigned char c = s[i];
            if (c >= 0x80) {
                size_t n = utf8_char_len(s, i, len);
                if (n == 0)
                    return ADDR_ESYNTAX;
                *nonascii = 1;
                i += n;
                last = 0x80;
                continue;
            }
            if (!is_alnum(c) && c != '-')
                return ADDR_ESYNTAX;
            /* Let-dig [Ldh-str]: no hyphen at the start of a label */
            if (c == '-' && i == start)
                return ADDR_ESYNTAX;
            last = c;
            i++;
        }
        if (i == start)
            return ADDR_ESYNTAX;          /* empty label: "..", leading or trailing dot */
        if (last == '-')
            return ADDR_ESYNTAX;
        if (i - start > 63)
            toolong = 1;
        if (i < len) {
            i++;                          /* the dot */
            if (i == len)
                return ADDR_ESYNTAX;      /* trailing dot */
        }
    }
    if (toolong || len > ADDR_DOMAIN_MAX)
        return ADDR_ETOOLONG;
    return ADDR_OK;
}

int addr_valid_domain(const char *s, size_t len, int utf8)
{
    int nonascii;

    if (s == NULL)
        return 0;
    if (check_domain((const unsigned char *)s, len, &nonascii) != ADDR_OK)
        return 0;
    return !nonascii || utf8;
}

/*
 * Address literal "[...]" starting at s[i] == '['. Sets *j past the ']'.
 * Only the forms we can route are accepted: IPv4 and IPv6; the general
 * "tag:content" form of RFC 5321 gives a syntax error.
 */
static enum addr_error scan_literal(const unsigned char *s, size_t i, size_t len, size_t *j)
{
    char buf[64];
    unsigned char bin[16];
    size_t k = i + 1, n;

    while (k < len && s[k] != ']') {
        if (s[k] < 0x21 || s[k] > 0x7E || s[k] == '[' || s[k] == '\\')
            return ADDR_ESYNTAX;
        k++;
    }
    if (k >= len)
        return ADDR_ESYNTAX;
    n = k - (i + 1);
    if (n == 0 || n >= sizeof buf)
        return ADDR_ESYNTAX;
    memcpy(buf, s + i + 1, n);
    buf[n] = '\0';
    if (n > 5 && (buf[0] == 'I' || buf[0] == 'i') && (buf[1] == 'P' || buf[1] == 'p') &&
        (buf[2] == 'v' || buf[2] == 'V') && buf[3] == '6' && buf[4] == ':') {
        if (inet_pton(AF_INET6, buf + 5, bin) != 1)
            return ADDR_ESYNTAX;
    } else if (inet_pton(AF_INET, buf, bin) != 1) {
        return ADDR_ESYNTAX;
    }
    *j = k + 1;
    return ADDR_OK;
}

/* A domain (no literal) up to one of the stop bytes; returns its end in *j. */
static enum addr_error scan_domain(const unsigned char *s, size_t i, size_t len,
                                   const char *stops, size_t *j, int *nonascii)
{
    size_t k = i;

    /* anything else, NUL included, is left for check_domain to refuse */
    while (k < len && (s[k] == '\0' || strchr(stops, s[k]) == NULL))
        k++;
    *j = k;
    return check_domain(s + i, k - i, nonascii);
}

/* Merges a sub-result: syntax errors beat length errors, which beat OK. */
static void note(enum addr_error *worst, enum addr_error e)
{
    if (e == ADDR_ESYNTAX || (e == ADDR_ETOOLONG && *worst == ADDR_OK))
        *worst = e;
}

enum addr_error addr_parse_path(const char *str, size_t len, unsigned flags,
                                struct addr *out, size_t *end)
{
    const unsigned char *s = (const unsigned char *)str;
    enum addr_error res = ADDR_OK;
    int nonascii = 0, dom_nonascii = 0, is_literal = 0, na;
    size_t i, j, lstart, lend, dstart, dend;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (end != NULL)
        *end = 0;
    if (s == NULL || out == NULL || len < 2 || s[0] != '<')
        return ADDR_ESYNTAX;

    /* Null reverse-path. */
    if (s[1] == '>') {
        if (!(flags & ADDR_ALLOW_EMPTY))
            return ADDR_ESYNTAX;
        if (end != NULL)
            *end = 2;
        return ADDR_OK;
    }

    /* "<Postmaster>" (RFC 5321 4.1.1.3), case-insensitive, no domain. */
    if (len >= 12 && s[11] == '>') {
        static const char pm[] = "postmaster";
        size_t k;
        for (k = 0; k < 10 && lower(s[1 + k]) == (unsigned char)pm[k]; k++)
            ;
        if (k == 10) {
            if (!(flags & ADDR_ALLOW_POSTMASTER))
                return ADDR_ESYNTAX;
            memcpy(out->mailbox, "Postmaster", 11);
            out->local_len = 10;
            if (end != NULL)
                *end = 12;
            return ADDR_OK;
        }
    }

    i = 1;
    /* Source route "@a,@b:" - obsolete, accepted and dropped (RFC 5321 C). */
    if (s[i] == '@') {
        for (;;) {
            if (i >= len || s[i] != '@')
                return ADDR_ESYNTAX;
            note(&res, scan_domain(s, i + 1, len, ",:>@", &j, &na));
            nonascii |= na;
            if (res == ADDR_ESYNTAX)
                return res;
            i = j;
            if (i >= len)
                return ADDR_ESYNTAX;
            if (s[i] == ':') {
                i++;
                break;
            }
            if (s[i] != ',')
                return ADDR_ESYNTAX;
            i++;
        }
    }

    /* Local part: Dot-string or Quoted-string. */
    lstart = i;
    if (i < len && s[i] == '"') {
        i++;
        for (;;) {
            if (i >= len)
                return ADDR_ESYNTAX;
            if (s[i] == '"')
                break;
            if (s[i] == '\\') {
                /* quoted-pairSMTP: backslash and one printable ASCII byte */
                if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
                    return ADDR_ESYNTAX;
                i += 2;
            } else if (s[i] >= 0x80) {
                size_t n = utf8_char_len(s, i, len);
                if (n == 0)
                    return ADDR_ESYNTAX;
                nonascii = 1;
                i += n;
            } else if (s[i] >= 32 && s[i] <= 126) {
                i++;                      /* qtextSMTP and space */
            } else {
                return ADDR_ESYNTAX;
            }
        }
        i++;                              /* closing quote */
        /* An empty local part cannot name a mailbox; refuse "" outright. */
        if (i - lstart == 2)
            return ADDR_ESYNTAX;
    } else {
        int need_atom = 1;
        while (i < len && s[i] != '@') {
            if (s[i] == '.') {
                if (need_atom)
                    return ADDR_ESYNTAX;  /* leading or double dot */
                need_atom = 1;
                i++;
            } else if (s[i] >= 0x80) {
                size_t n = utf8_char_len(s, i, len);
                if (n == 0)
                    return ADDR_ESYNTAX;
                nonascii = 1;
                need_atom = 0;
                i += n;
            } else if (is_atext(s[i])) {
                need_atom = 0;
                i++;
            } else {
                return ADDR_ESYNTAX;
            }
        }
        if (need_atom)
            return ADDR_ESYNTAX;          /* empty or trailing dot */
    }
    lend = i;
    if (lend - lstart > ADDR_LOCAL_MAX)
        note(&res, ADDR_ETOOLONG);

    if (i >= len || s[i] != '@')
        return ADDR_ESYNTAX;
    i++;

    /* Domain or address literal. */
    dstart = i;
    if (i < len && s[i] == '[') {
        note(&res, scan_literal(s, i, len, &j));
        if (res == ADDR_ESYNTAX)
            return res;
        is_literal = 1;
    } else {
        note(&res, scan_domain(s, i, len, ">", &j, &dom_nonascii));
        if (res == ADDR_ESYNTAX)
            return res;
        nonascii |= dom_nonascii;
    }
    dend = j;
    if (dend >= len || s[dend] != '>')
        return ADDR_ESYNTAX;

    if (dend - dstart > ADDR_DOMAIN_MAX || dend - lstart > ADDR_MAX)
        note(&res, ADDR_ETOOLONG);
    if (res == ADDR_OK && nonascii && !(flags & ADDR_UTF8))
        res = ADDR_ENEEDUTF8;
    if (res != ADDR_OK)
        return res;

    /* The lengths are checked above, so these copies fit. */
    memcpy(out->mailbox, s + lstart, dend - lstart);
    out->mailbox[dend - lstart] = '\0';
    out->local_len = lend - lstart;
    /* U-labels and literals stay as given: no Unicode case folding here */
    for (size_t k = 0; k < dend - dstart; k++)
        out->domain[k] = (char)(dom_nonascii || is_literal ? s[dstart + k]
                                                           : lower(s[dstart + k]));
    out->domain[dend - dstart] = '\0';
    out->is_literal = is_literal;
    out->is_utf8 = nonascii;
    if (end != NULL)
        *end = dend + 1;
    return ADDR_OK;
}

const char *addr_strerror(enum addr_error e)
{
    switch (e) {
    case ADDR_OK:
        return "valid address";
    case ADDR_ESYNTAX:
        return "bad address syntax";
    case ADDR_ETOOLONG:
        return "address too long";
    case ADDR_ENEEDUTF8:
        return "address needs SMTPUTF8";
    }
    return "unknown address error";
}

enum addr_error addr_parse_mailbox(const char *s, unsigned flags, struct addr *out)
{
    char path[ADDR_MAX + 3];
    size_t n = strlen(s), end;
    enum addr_error e;

    if (n > ADDR_MAX)
        return ADDR_ETOOLONG;
    path[0] = '<';
    memcpy(path + 1, s, n);
    path[n + 1] = '>';
    if ((e = addr_parse_path(path, n + 2, flags, out, &end)) != ADDR_OK)
        return e;
    return end == n + 2 ? ADDR_OK : ADDR_ESYNTAX;
}
