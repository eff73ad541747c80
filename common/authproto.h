/*
 * authproto.h - the password check between smtpd and the auth process
 * (proto.h: A_CHECK -> A_RESULT): building and validating both frames,
 * and the paths of the auth socket and password map.
 *
 * The password travels only in A_CHECK, over a UNIX socket inside smtpd's
 * jail that only user_smtpd may use; it is never logged, and the caller
 * wipes its own copies (OPENSSL_cleanse) once the frame is built.
 */
#ifndef POSTERN_AUTHPROTO_H
#define POSTERN_AUTHPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define AUTH_JAIL "auth"                          /* RUN/auth: the auth process's jail */
#define AUTH_DB_FILE "passwd.db"                  /* RUN/auth/passwd.db */
#define AUTH_SOCK_DIR "smtpd/auth"                /* relative to run_dir */
#define AUTH_SOCK "smtpd/auth/auth.sock"
#define AUTH_SOCK_IN_SMTPD_JAIL "/auth/auth.sock"

#define AUTH_USER_MAX 320          /* a login name: an address, local@domain */
#define AUTH_PASS_MAX 4096         /* bytes of password */
#define AUTH_CLIENT_MAX 63         /* an IP address as text */

enum auth_status { AUTH_OK = 0, AUTH_FAIL = 1, AUTH_BLOCKED = 2, AUTH_TEMPFAIL = 3 };

struct auth_check {
    char user[AUTH_USER_MAX + 1];
    char pass[AUTH_PASS_MAX + 1];  /* NUL-terminated; passlen bytes, no NUL inside */
    size_t passlen;
    char client[AUTH_CLIENT_MAX + 1];
};

struct auth_result {
    enum auth_status status;
    uint64_t delay_ms;
    char user[AUTH_USER_MAX + 1];  /* AUTH_OK: the mailbox key ("john@example.com") */
};

/* 0, or -1 when a field is too long or has a byte it may not have (the
 * user and client text no control byte, the password no NUL). */
int authp_build_check(struct ipc_out *m, uint32_t id, const char *user, const char *pass, size_t passlen,
                      const char *client);
/* Validates every field; -1 on anything missing, repeated, too long or
 * malformed. c->pass must be wiped by the caller after use. */
int authp_parse_check(const struct ipc_msg *m, struct auth_check *c);

int authp_build_result(struct ipc_out *m, uint32_t id, const struct auth_result *r);
int authp_parse_result(const struct ipc_msg *m, struct auth_result *r);

#endif
