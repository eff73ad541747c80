/*
 * handoff.h - the message hand-off on the smtpd and pickup sockets:
 * Q_OPEN, Q_DATA, Q_COMMIT, Q_ABORT (proto.h).
 *
 * smtpd gets the descriptor of its new spool file and writes the message
 * itself. A pickup client (sendmail, any local user) never holds a
 * descriptor of a queue file: it streams the content in Q_DATA frames and
 * queue-mgr writes it, after its own Received: line, enforcing
 * max_message_size as it goes.
 */
#ifndef POSTERN_QMGR_HANDOFF_H
#define POSTERN_QMGR_HANDOFF_H

#include "clients.h"
#include "committer.h"
#include "config.h"
#include "ipc.h"
#include "qstore.h"

/* Starts the batcher (committer ops NULL: the real ones). -1 with errno. */
int handoff_start(struct evloop *ev, const struct config *cfg, struct qstore *q,
                  const struct commit_ops *ops);
void handoff_set_config(const struct config *cfg);
/* One frame from a client of the smtpd or pickup socket. */
void handoff_frame(struct client *c, const struct ipc_msg *m);
/* The client is going: removes the spool files it never committed. */
void handoff_forget_all(struct client *c);
/* Commits what is collected and waits for every batch (answers are queued). */
void handoff_stop(void);

#endif
