/*
 * server.h - the auth process's socket: smtpd workers connect (only
 * user_smtpd, by SO_PEERCRED), send A_CHECK, and get A_RESULT, in any
 * order (matched by request id). Blocked attempts are answered at once;
 * the others go to the hashing pool; the failure bookkeeping
 * (failures.h) is updated on the event loop only.
 */
#ifndef POSTERN_AUTH_SERVER_H
#define POSTERN_AUTH_SERVER_H

#include <sys/types.h>

#include "config.h"
#include "evloop.h"

/* Serves on the listening socket lfd; pfd is pool_start()'s descriptor. */
int authsrv_start(struct evloop *ev, int lfd, int pfd, const struct config *c, const uid_t *peers, size_t npeers,
                  char *err, size_t errlen);
/* New limits after a reload (the tables are kept). */
void authsrv_config(const struct config *c);
void authsrv_stop(void);
/* Checks in the pool now. */
unsigned authsrv_in_flight(void);

#endif
