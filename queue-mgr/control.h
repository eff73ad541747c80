/*
 * control.h - the commands of the control socket (RUN/queue/control.sock):
 * Q_LIST for mailq, and posternctl's flush, show, delete, hold, release,
 * requeue and stats (proto.h). Each command is checked against the peer's
 * credentials (SO_PEERCRED, in struct client) before it acts.
 */
#ifndef POSTERN_QMGR_CONTROL_H
#define POSTERN_QMGR_CONTROL_H

#include "clients.h"
#include "config.h"
#include "ipc.h"

/* admin_group and mailq_public come from here (start and reload). */
void control_set_config(const struct config *cfg);
/* c is being freed: whatever it had in progress stops. */
void control_gone(struct client *c);

/* One frame from a control client; a frame it may not send disconnects it. */
void control_frame(struct client *c, const struct ipc_msg *m);
/* Continues a long answer (a listing) as the client reads. */
void control_pump(struct client *c);

#endif
