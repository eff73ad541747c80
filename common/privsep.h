/*
 * privsep.h - accounts and privilege drop.
 *
 * An account is a user name or a numeric "uid:gid" (so tests need no
 * /etc/passwd entries). priv_drop() is the one way a Postern process gives up
 * root: setgroups, chroot, setgid, setuid, then it proves root cannot be
 * regained and exits if it can.
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

#include <sys/types.h>
#include <stddef.h>

struct account {
    uid_t uid;
    gid_t gid;
    char name[128];
};

/* Resolves "name" or "uid:gid"; -1 with a message in err. */
int priv_resolve(const char *spec, struct account *a, char *err, size_t errlen);

/*
 * When running as root: chroot into jail (if not NULL), drop to the account
 * and verify. When not root: does nothing but returns 0 (everything runs as
 * the invoking user). Fatal on any failure.
 */
void priv_drop(const struct account *a, const char *jail);

/* 1 when the process runs as root (real or effective uid 0). */
int priv_is_root(void);

#endif
