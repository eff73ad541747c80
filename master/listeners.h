/*
 * listeners.h - the master's listening TCP sockets (SPEC.md section 3:
 * listen_smtp, listen_submission, listen_smtps).
 *
 * The master binds them as root and hands the descriptors to smtpd; it never
 * accepts a connection or reads a byte from them.
 */
#ifndef POSTERN_MASTER_LISTENERS_H
#define POSTERN_MASTER_LISTENERS_H

#include <stddef.h>

#include "config.h"

/* Kinds, as bits, so that a role can ask for several. */
#define LK_SMTP        1u
#define LK_SUBMISSION  2u
#define LK_SMTPS       4u
#define LK_ALL         (LK_SMTP | LK_SUBMISSION | LK_SMTPS)

struct listener {
    struct listen_addr la;
    unsigned kind;          /* one LK_* bit */
    int fd;                 /* -1 until bound */
};

struct listeners {
    size_t n;
    struct listener v[3 * CONF_MAX_LIST];
};

/* "smtp", "submission" or "smtps": the names in POSTERN_LISTEN_FDS. */
const char *listener_kind_name(unsigned kind);

/*
 * Fills l with the listeners c asks for, without binding (fds are -1).
 * Without tls_cert_file, submission and smtps are left out (and, when log is
 * set, that is logged once). -1 with err when an address is listed twice.
 */
int listeners_plan(struct listeners *l, const struct config *c, int log, char *err, size_t errlen);

/*
 * Plans and binds the listeners of c into next. Addresses already bound in
 * cur (may be NULL) keep cur's descriptor, so a reload does not close a
 * socket that clients are connecting to. On error nothing new stays open
 * and -1 comes back with err.
 */
int listeners_open(struct listeners *next, const struct listeners *cur, const struct config *c,
                   char *err, size_t errlen);

/* Closes the descriptors of old that next did not take over. */
void listeners_retire(const struct listeners *old, const struct listeners *next);

/* Closes every descriptor of l. */
void listeners_close(struct listeners *l);

#endif
