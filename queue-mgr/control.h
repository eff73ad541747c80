/*
 * control.h - the commands of the control socket (RUN/queue/control.sock):
 * today Q_LIST for mailq; the place for posternctl's commands to come
 * (hold, release, delete, flush, requeue). Each command is checked against
 * the peer's uid (SO_PEERCRED, in struct client) before it acts.
 */
#ifndef POSTERN_QMGR_CONTROL_H
#define POSTERN_QMGR_CONTROL_H

#include "clients.h"
#include "ipc.h"

/* One frame from a control client; a frame it may not send disconnects it. */
void control_frame(struct client *c, const struct ipc_msg *m);
/* Continues a long answer (a listing) as the client reads. */
void control_pump(struct client *c);

#endif
