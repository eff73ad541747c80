/*
 * rfc5322.h - RFC 5322 message headers and address lists, as a local
 * submission tool (sendmail -t) and later the bounce and DSN code need them.
 *
 * Address lists: "Name <a@b>, c@d (comment), \"Doe, J\" <j@d>, group: e@f,
 * g@h;, undisclosed-recipients:;" and the obsolete forms (empty list
 * elements, CFWS around the dots and the '@' of an addr-spec, a route in an
 * angle-addr "<@r1,@r2:a@b>"). Display names, comments and group names are
 * dropped; an angle-addr wins over the words around it. What is returned is
 * the addr-spec only; rfc5322_mailbox() turns it into a checked RFC 5321
 * mailbox with the one address parser (addr.h).
 *
 * Headers: a header section kept as lines of a caller's buffer (without
 * their line ends), each either the first line of a field or a
 * continuation (folded) line; values come back unfolded.
 */
#ifndef POSTERN_RFC5322_H
#define POSTERN_RFC5322_H

#include <stddef.h>

#include "addr.h"

/* ---- address lists ---- */

enum rfc5322_error {
    RFC5322_OK = 0,
    RFC5322_EANGLE,     /* "<" without ">" before the end of the list */
    RFC5322_ECOLON,     /* ":" after an address (a group name must come first) */
    RFC5322_ETOOLONG,   /* an addr-spec longer than ADDR_MAX */
    RFC5322_EWORDS,     /* "Name a@b": words beside an addr-spec without <...> */
};

/* One address of a list. */
struct rfc5322_addr {
    char spec[ADDR_MAX + 2];    /* addr-spec, CFWS and route dropped, NUL-terminated */
    size_t len;                 /* bytes in spec (a NUL in the list stays one); > ADDR_MAX: too long */
    size_t off, tlen;           /* the element as written in the list, for messages */
};

/* Walks a list; s (n bytes, not NUL-terminated) must outlive it. */
struct rfc5322_list {
    const char *s;
    size_t n, pos;
    enum rfc5322_error err;     /* why rfc5322_list_next() returned -1 */
};

void rfc5322_list_init(struct rfc5322_list *l, const char *s, size_t n);

/*
 * The next address: 1 with *a filled in; 0 at the end of the list; -1 on a
 * syntax error (l->err says which; a->off and a->tlen show the element),
 * after which the list is at its end. Empty elements and groups are skipped.
 */
int rfc5322_list_next(struct rfc5322_list *l, struct rfc5322_addr *a);

/* Text for an error, for messages. */
const char *rfc5322_strerror(enum rfc5322_error e);

/*
 * Turns an addr-spec (n bytes) into a checked mailbox: appends "@domain"
 * when it has none, parses it with addr_parse_path() under flags
 * (ADDR_UTF8, ADDR_ALLOW_EMPTY: "" gives ""), refuses routes and trailing
 * junk, and writes "local@domain" with the domain lower-cased into out.
 * Returns NULL, or the reason it is no address. *utf8 is set to 1 when the
 * mailbox holds UTF-8 (left alone otherwise).
 */
const char *rfc5322_mailbox(const char *s, size_t n, const char *domain, unsigned flags,
                            char *out, size_t outlen, int *utf8);

/* ---- generating ---- */

/* A local part for s: a dot-atom as it is, else a quoted string. 0, or -1
 * (out "") when it does not fit in outlen. */
int rfc5322_quote_local(const char *s, char *out, size_t outlen);

/* A display name as a phrase: plain words (UTF-8 allowed) as they are,
 * anything with specials as a quoted string. 0, or -1 (out "") if too long. */
int rfc5322_phrase(const char *name, char *out, size_t outlen);

/* ---- the header section ---- */

struct rfc5322_hline {
    size_t off, len;    /* in buf, without the line end */
    int start;          /* first line of a field (not a continuation) */
    int drop;           /* set by rfc5322_hdr_drop() */
};

struct rfc5322_headers {
    char *buf;          /* the caller's; lines are recorded by offset */
    size_t len;         /* bytes of buf in use (the caller's to advance) */
    struct rfc5322_hline *line;
    size_t nline, cap;
};

/* Length of the field name at s (n bytes) when s starts a field: printable
 * ASCII but ':', then optional white space (obsolete syntax) and ':'. Else 0. */
size_t rfc5322_field_name_len(const char *s, size_t n);

/*
 * Records the line at h->buf + off (n bytes, no line end) if it belongs to
 * the header section: 1 a field's first line, 2 a continuation line, 0 not
 * a header line (blank, or the body begins), -1 out of memory.
 */
int rfc5322_hdr_line(struct rfc5322_headers *h, size_t off, size_t n);

/* Is line i the first line of a field called name (case-insensitive)? */
int rfc5322_hdr_is(const struct rfc5322_headers *h, size_t i, const char *name);

/* Does the section hold any Resent- field (RFC 5322 3.6.6)? */
int rfc5322_hdr_resent(const struct rfc5322_headers *h);

/* Is line i a field whose addresses are recipients: To, Cc, Bcc, or with
 * resent their Resent- forms only? */
int rfc5322_hdr_is_rcpt(const struct rfc5322_headers *h, size_t i, int resent);

/* The value of the field starting at line i, unfolded (continuation lines
 * joined, their line ends removed), after the ':'; in a new NUL-terminated
 * buffer of *vlen bytes. NULL when out of memory or i is no field start. */
char *rfc5322_hdr_value(const struct rfc5322_headers *h, size_t i, size_t *vlen);

/* Marks the field starting at line i, continuation lines included, dropped. */
void rfc5322_hdr_drop(struct rfc5322_headers *h, size_t i);

/* Frees the line table (not buf). */
void rfc5322_hdr_free(struct rfc5322_headers *h);

#endif
