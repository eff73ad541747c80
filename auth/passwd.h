/*
 * passwd.h - the auth process's password map (RUN/auth/passwd.db, compiled
 * by the master from mailboxes_file, readable only by user_auth): opened
 * read-only, reopened on reload, looked up by mailbox key.
 */
#ifndef POSTERN_AUTH_PASSWD_H
#define POSTERN_AUTH_PASSWD_H

#include <stddef.h>

/* Opens path (replacing an open map only when the new one opens). 0, or
 * -1 with the reason in err. */
int passwd_open(const char *path, char *err, size_t errlen);
void passwd_close(void);
/* The hash of mailbox key into out: 1 found, 0 no hash for that key,
 * -1 no map or a read error. */
int passwd_lookup(const char *key, char *out, size_t outlen);

#endif
