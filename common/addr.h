/*
 * addr.h - the one RFC 5321 address parser.
 *
 * Parses a reverse-path or forward-path as it appears after "MAIL FROM:" or
 * "RCPT TO:": "<local@domain>", "<>", "<@relay,@relay:local@domain>" (the
 * source route is accepted and dropped), quoted local parts, address literals
 * "[192.0.2.1]" and "[IPv6:...]", and with ADDR_UTF8 the UTF-8 forms of
 * RFC 6531. Limits: local part 64 octets, domain 255, path 256.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_MAX 256      /* whole mailbox, local@domain */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255

enum {
    ADDR_ALLOW_EMPTY = 1 << 0,      /* "<>" accepted (reverse-path) */
    ADDR_ALLOW_POSTMASTER = 1 << 1, /* "<Postmaster>" without domain */
    ADDR_UTF8 = 1 << 2,             /* SMTPUTF8 in effect */
};

enum addr_error {
    ADDR_OK = 0,
    ADDR_ESYNTAX,       /* not a valid path */
    ADDR_ETOOLONG,      /* a length limit was exceeded */
    ADDR_ENEEDUTF8,     /* valid only with SMTPUTF8 */
};

struct addr {
    char mailbox[ADDR_MAX + 1];     /* "local@domain" as given (quotes kept), "" for <> */
    size_t local_len;               /* length of the local part in mailbox */
    char domain[ADDR_DOMAIN_MAX + 1]; /* lower-cased ASCII, or as given if UTF-8 or literal */
    int is_literal;                 /* domain is an address literal */
    int is_utf8;                    /* contains non-ASCII */
};

/*
 * Parses the path at s (len bytes, not necessarily NUL-terminated). On
 * success returns ADDR_OK and sets *end to the first byte after '>'.
 */
enum addr_error addr_parse_path(const char *s, size_t len, unsigned flags,
                                struct addr *out, size_t *end);

/* A mailbox as stored (no angle brackets, "local@domain"), parsed whole
 * as if it were the path "<s>": ADDR_OK or the error. */
enum addr_error addr_parse_mailbox(const char *s, unsigned flags, struct addr *out);

/* Human text for an error, for replies and logs. */
const char *addr_strerror(enum addr_error e);

/* Is s (len bytes) a syntactically valid domain name (or, with utf8, U-label name)? */
int addr_valid_domain(const char *s, size_t len, int utf8);

#endif
