/*
 * qserver.h - the quota server of the local role: answers smtpd's L_QUOTA
 * (quotaproto.h) on RUN/smtpd/local/quota.sock, bound before the role
 * chroots, from the map's quota and the Maildir's maildirsize (quota.h).
 * Runs on the role's event loop, between batches.
 */
#ifndef POSTERN_LOCAL_QSERVER_H
#define POSTERN_LOCAL_QSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "evloop.h"
#include "mapdb.h"
#include "quotaproto.h"

#define QSRV_CLIENTS_MAX 512            /* smtpd connections served at once */
#define QSRV_OUT_MAX (64u << 10)        /* unread answers before a client is cut off */
#define QSRV_SCAN_MAX 20000             /* names a recalculation may count here (else TEMPFAIL) */

/* Serves on the listening socket lfd (taken over: closed by qsrv_stop),
 * for this process's uid and peers[0..npeers); db and root_fd (mailbox_dir)
 * stay the caller's. -1 with err. */
int qsrv_start(struct evloop *ev, int lfd, const uid_t *peers, size_t npeers, struct mapdb *db, int root_fd,
               char *err, size_t errlen);
void qsrv_stop(void);

/* The answer for key and size (pure but for the file system reads; for
 * the server and its tests). */
void qsrv_answer(struct mapdb *db, int root_fd, const char *key, uint64_t size, time_t now,
                 struct quota_answer *a);

#endif
