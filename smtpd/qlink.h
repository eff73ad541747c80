/*
 * qlink.h - smtpd's one connection to queue-mgr, shared by all sessions of
 * a worker. Requests carry an id; the reply goes to the callback that asked.
 * When the link drops every waiting callback hears it (m == NULL), and the
 * link is re-established in the background.
 */
#ifndef POSTERN_SMTPD_QLINK_H
#define POSTERN_SMTPD_QLINK_H

#include <stdint.h>
#include "evloop.h"
#include "ipc.h"

typedef void (*qlink_cb)(void *arg, const struct ipc_msg *m);

/* path: the queue-mgr socket as seen by this process (inside the jail). */
void qlink_init(struct evloop *ev, const char *path);
int qlink_up(void);
/* Changes each time the link is re-established: a spool file opened on an
 * older link belongs to a queue-mgr that is gone. */
unsigned qlink_generation(void);
/* A fresh request id, for ipc_out_begin(). Never 0. */
uint32_t qlink_new_id(void);
/* Sends a finished frame built with that id; -1 if the link is down and
 * cannot be re-established right now. */
int qlink_request(struct ipc_out *m, uint32_t reqid, qlink_cb cb, void *arg);
/* Sends a frame that expects no reply (Q_ABORT). */
void qlink_notify(struct ipc_out *m);
/* The caller is gone: drop its callback. An OPENED reply that arrives later
 * is aborted here, so no spool file is left behind. */
void qlink_cancel(uint32_t reqid);

#endif
