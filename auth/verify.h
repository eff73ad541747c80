/*
 * verify.h - one password against one stored hash, in the crypt(3)
 * formats Dovecot's `doveadm pw` and `mkpasswd` write: yescrypt ($y$),
 * SHA512-CRYPT ($6$), SHA256-CRYPT ($5$), bcrypt ($2b$/$2y$), with or
 * without Dovecot's {SCHEME} prefix ({SHA512-CRYPT}, {BLF-CRYPT},
 * {CRYPT}, ...). Thread-safe (crypt_rn with a caller's buffer): the auth
 * process runs it on its worker threads.
 */
#ifndef POSTERN_AUTH_VERIFY_H
#define POSTERN_AUTH_VERIFY_H

#include <stddef.h>

/* The crypt string of a stored hash: the {SCHEME} prefix checked and cut
 * off. NULL for a scheme that is not a crypt one ({PLAIN}, {SSHA}, ...) or
 * a hash of an unknown or weak form (DES, MD5-crypt). */
const char *verify_crypt_part(const char *stored);

/* 1 when pass (passlen bytes, no NUL) matches stored, else 0. The
 * comparison of the computed and stored hash takes constant time. */
int verify_password(const char *stored, const char *pass, size_t passlen);

/* Costs what a check against a real yescrypt hash costs and answers 0: for
 * unknown users, so that a miss cannot be told from a wrong password by
 * its time. */
void verify_dummy(const char *pass, size_t passlen);

#endif
