/*
 * qlink.h - smtpd's queue client: the Q_OPEN / Q_COMMIT / Q_ABORT hand-off
 * to queue-mgr over one common/link.h link shared by all sessions of a
 * worker. Replies go to the callback that asked; m == NULL means the link
 * dropped, or did not come back within the bound.
 */
#ifndef POSTERN_SMTPD_QLINK_H
#define POSTERN_SMTPD_QLINK_H

#include <stdint.h>
#include "evloop.h"
#include "ipc.h"
#include "qrecord.h"

/* How long a transaction at DATA/BDAT waits for a link that is down
 * (queue-mgr starting or restarting) before it is answered 451. */
#define QLINK_WAIT_MS 10000

typedef void (*qlink_cb)(void *arg, const struct ipc_msg *m);

/* path: the queue-mgr socket as seen by this process (inside the jail). */
void qlink_init(struct evloop *ev, const char *path);
void qlink_free(void);
int qlink_up(void);
/* Changes each time the link is re-established: a spool file opened on an
 * older link belongs to a queue-mgr that is gone. */
unsigned qlink_generation(void);
/* Asks for a spool file (Q_OPENED {QID} + descriptor), waiting up to
 * QLINK_WAIT_MS for the link. The request id, or 0 if refused at once. */
uint32_t qlink_open(qlink_cb cb, void *arg);
/* Commits the envelope (Q_COMMITTED or Q_ERROR); 0 if the link is down. */
uint32_t qlink_commit(const struct qrec *env, qlink_cb cb, void *arg);
/* Removes a spool file opened on link generation gen, if that link is up. */
void qlink_abort(const char *qid, unsigned gen);
/* The caller is gone: drop its callback. An OPENED reply that arrives later
 * is aborted here, so no spool file is left behind. */
void qlink_cancel(uint32_t reqid);

#endif
