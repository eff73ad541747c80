/*
 * authfile.h - the relayhost credentials (relayhost_auth_file): lines
 * "host user:password", '#' comments and blank lines ignored. Read once,
 * before the chroot; the password never reaches a log line.
 */
#ifndef POSTERN_DELIVER_AUTHFILE_H
#define POSTERN_DELIVER_AUTHFILE_H

#include <stddef.h>
#include <sys/types.h>

#define AUTH_FIELD_MAX 256

struct auth_cred {
    char user[AUTH_FIELD_MAX];
    char pass[AUTH_FIELD_MAX];
};

/* Finds host's line in text (len bytes, host compared without case).
 * 1 found (c filled), 0 no line for host, -1 with err for a malformed file
 * ("line N: ..."; never the password). */
int authfile_parse(const char *text, size_t len, const char *host, struct auth_cred *c,
                   char *err, size_t errlen);
/* Reads path: a regular file owned by root or by owner_uid, not readable by
 * group or others, at most 64 KiB; then authfile_parse. Same returns. */
int authfile_load(const char *path, uid_t owner_uid, const char *host, struct auth_cred *c,
                  char *err, size_t errlen);

#endif
