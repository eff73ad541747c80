/*
 * qops.h - the operator's actions on queued messages, for control.c:
 * delete, hold, release, requeue (one message at a time), delete by
 * selector (every message, a sender's, a recipient's: in slices from the
 * event loop) and show (the record, then the spool file, as the client
 * reads). Each action is logged with the operator's uid. The caller has
 * checked that the client may act.
 *
 * A message deleted while a delivery of it is in flight loses its record
 * at once (mailq no longer shows it; the late D_RESULT finds no recipient
 * and is dropped) and its spool file once the last job reading it ends.
 */
#ifndef POSTERN_QMGR_QOPS_H
#define POSTERN_QMGR_QOPS_H

#include <stdint.h>
#include "clients.h"
#include "evloop.h"
#include "qstore.h"

void qops_init(struct evloop *ev, struct qstore *q);

/* 0 done, 1 not queued, -1 error. */
int qops_delete(const char *qid, unsigned long uid);
int qops_hold(const char *qid, unsigned long uid);
int qops_release(const char *qid, unsigned long uid);
int qops_requeue(const char *qid, unsigned long uid);

/* Q_DELETE by selector (all, or sender / recipient, compared without
 * case; "" or "MAILER-DAEMON" is the null sender); answers Q_DONE. */
void qops_delete_start(struct client *c, uint32_t reqid, int all, const char *sender, const char *rcpt);
/* Q_SHOW of qid; answers Q_ERROR at once when it is not queued. */
void qops_show_start(struct client *c, uint32_t reqid, const char *qid);
/* Continues c's answer as its output drains. */
void qops_pump(struct client *c);
/* c is going: its operation stops (a delete by selector stops too). */
void qops_gone(struct client *c);

/* A job of qid ended (scheduler.c): removes the spool file of a message
 * deleted while it was in flight once nothing reads it. */
void qops_job_ended(const char *qid);

#endif
