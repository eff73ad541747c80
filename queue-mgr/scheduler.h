/*
 * scheduler.h - queue-mgr's delivery scheduler and its timed work.
 *
 * Finds the recipients due by next-attempt time (qstore_scan_due, never a
 * scan of the whole queue), groups them into jobs (one message, one
 * destination, its due recipients), hands each job to a deliver that asked
 * for work (D_WANT, proto.h) with a read-only descriptor of the spool
 * file, and records the results (D_RESULT) through the committer before
 * any spool file is removed. Per-destination slow start and dead marking
 * and the backoff rules are policy.h. Also the periodic LMDB reader check.
 *
 * Nothing in storage marks a job in flight: after a crash of deliver or of
 * queue-mgr its recipients are simply due again.
 */
#ifndef POSTERN_QMGR_SCHEDULER_H
#define POSTERN_QMGR_SCHEDULER_H

#include "clients.h"
#include "config.h"
#include "evloop.h"
#include "ipc.h"
#include "qstore.h"

/* How often stale LMDB readers are cleared (milliseconds). */
#define READER_CHECK_MS 60000
/* How soon after new mail or a new free slot the scheduler looks (ms):
 * one pass for everything that arrived meanwhile, never one a message. */
#define SCHED_KICK_MS 5
/* The scheduler looks at least this often anyway (ms). */
#define SCHED_TICK_MS 1000
/* Recipients in one job (Postfix's default_destination_recipient_limit). */
#define SCHED_JOB_RCPTS 50

void scheduler_start(struct evloop *ev, struct qstore *q, const struct config *cfg);
void scheduler_set_config(const struct config *cfg);
void scheduler_stop(void);
/* Something may be due (new mail was committed): a pass soon. */
void scheduler_kick(void);

/* A frame of a deliver client (QL_DELIVER): D_WANT or D_RESULT. */
void scheduler_deliver_frame(struct client *c, const struct ipc_msg *m);
/* The deliver client is going: its jobs are released (due again). */
void scheduler_deliver_gone(struct client *c);

/* Whether a delivery of qid is in flight (mailq's '*'). */
int scheduler_msg_active(const char *qid);
/* The jobs in flight: how many, and the message id of each (listing.c
 * makes its '*' set of them once a slice). */
size_t scheduler_njobs(void);
void scheduler_each_job_qid(void (*fn)(const char *qid, void *arg), void *arg);
/* Capacity or the queue changed (a release): the next pass, soon, looks
 * from the start of the schedule again. */
void scheduler_rescan(void);
/* Makes the deferred recipients of one message (qid), of one domain
 * (domain), or of the whole queue (both NULL) due now and revives the
 * destinations concerned. The number made due, or -1. */
long scheduler_flush(const char *qid, const char *domain);

#endif
