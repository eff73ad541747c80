/*
 * sasl.h - the SASL mechanisms smtpd speaks (RFC 4954 framing, RFC 4616
 * PLAIN, the LOGIN draft): strict base64, the PLAIN message split, and
 * the checks a login name must pass before it goes anywhere. Pure: no
 * sessions, no I/O, unit-tested.
 */
#ifndef POSTERN_SMTPD_SASL_H
#define POSTERN_SMTPD_SASL_H

#include <stddef.h>

#define SASL_RESPONSE_MAX 12288         /* octets of one response line, RFC 4954 4 */
#define SASL_DECODED_MAX (SASL_RESPONSE_MAX / 4 * 3)

enum sasl_mech { SASL_NONE, SASL_PLAIN, SASL_LOGIN };

/* "PLAIN" / "LOGIN" (any case), else SASL_NONE. */
enum sasl_mech sasl_mech_named(const char *name);
const char *sasl_mech_name(enum sasl_mech m);

/*
 * Strict base64 (RFC 4648 4): only the alphabet, length a multiple of 4,
 * at most two '=' and only at the end; "=" alone is the empty response of
 * RFC 4954. Decodes through OpenSSL into out (outlen >= 3 * len / 4 + 1,
 * NUL-terminated); *n gets the length. 0, or -1 when malformed.
 */
int sasl_b64_decode(const char *in, size_t len, char *out, size_t outlen, size_t *n);
/* base64 of in (for the 334 challenges); out NUL-terminated. */
void sasl_b64_encode(const char *in, size_t len, char *out, size_t outlen);

/*
 * RFC 4616: "[authzid] NUL authcid NUL passwd". user and pass point into
 * msg. -1 when malformed: not exactly two NULs, an empty user or password,
 * or an authzid other than the user (no proxy authorisation).
 */
int sasl_plain_split(const char *msg, size_t n, const char **user, size_t *ulen, const char **pass, size_t *plen);

/* May name (len bytes) be looked up? 1 to 320 bytes, no NUL, no control
 * byte (CR, LF, TAB, DEL...). 1 yes, 0 no. */
int sasl_name_ok(const char *name, size_t len);

#endif
