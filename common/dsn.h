/*
 * dsn.h - the one definition of RFC 3461 xtext and of the DSN parameters
 * of MAIL (RET, ENVID) and RCPT (NOTIFY, ORCPT): smtpd parses them, the
 * queue validates them again when they come back from disk or a socket,
 * and the tools encode them. Pure functions: no I/O, no allocation.
 *
 * xtext (RFC 3461 section 4): printable ASCII 33..126 except "+" and "=",
 * or "+" followed by two hex digits. Upper-case hex is what we write;
 * lower-case is accepted on input, as Postfix does.
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stddef.h>

#define DSN_ENVID_MAX 100         /* RFC 3461 4.4: characters of xtext */
#define DSN_ORCPT_MAX 500         /* RFC 3461 4.2: addr-type ";" xtext */

/* Is s (NUL-terminated) non-empty xtext of at most max characters? */
int xtext_valid(const char *s, size_t max);
/* Encodes len bytes as xtext into out (NUL-terminated); the encoded length,
 * or -1 when it does not fit in outlen. */
long xtext_encode(const char *in, size_t len, char *out, size_t outlen);
/* Decodes xtext into out (NUL-terminated); the decoded length, or -1 when
 * in is not valid xtext, decodes to a NUL, or does not fit. */
long xtext_decode(const char *in, char *out, size_t outlen);

/* NOTIFY=NEVER | SUCCESS,FAILURE,DELAY (any order, case-insensitive, each
 * once, NEVER alone) into NOTIFY_* bits (qrecord.h); -1 if invalid. */
int dsn_parse_notify(const char *v, unsigned *bits);
/* RET=FULL|HDRS into RET_FULL or RET_HDRS (qrecord.h); -1 if invalid. */
int dsn_parse_ret(const char *v, unsigned *ret);
/* ENVID: xtext of at most DSN_ENVID_MAX characters. */
int dsn_envid_valid(const char *v);
/* ORCPT=addr-type;value: addr-type an atom of letters, digits and "-",
 * value xtext; with utf8 (RFC 6533, SMTPUTF8 sessions and the queue) the
 * value may also hold UTF-8 bytes. At most DSN_ORCPT_MAX in all. */
int dsn_orcpt_valid(const char *v, int utf8);

#endif
