/*
 * server.h - queue-mgr's service as a whole: the three sockets (clients.h),
 * the hand-off and its group commit (handoff.h, batcher.h), the listing
 * and control commands (control.h), the timed work (scheduler.h).
 */
#ifndef POSTERN_QMGR_SERVER_H
#define POSTERN_QMGR_SERVER_H

#include <sys/types.h>
#include "config.h"
#include "evloop.h"
#include "qstore.h"

/* Creates the sockets under run_dir (the deliver socket's directory is
 * the master's; unprivileged, queue-mgr makes it when missing); -1 with
 * err. Only smtpd_uid may hand off on the smtpd socket, only deliver_uid
 * may take jobs. */
int server_start(struct evloop *ev, const struct config *cfg, struct qstore *q,
                 uid_t smtpd_uid, uid_t deliver_uid, uid_t local_uid, char *err, size_t errlen);
/* Takes a new configuration (reload). */
void server_set_config(const struct config *cfg);
/* Stops accepting, commits what is pending, closes every connection. */
void server_stop(void);

#endif
