/*
 * metrics.h - queue-mgr's figures: counters fed by the scheduler (each
 * delivery result) and the batcher (each group commit), a census of the
 * queue index on demand, and their rendering in the Prometheus text
 * format (version 0.0.4), for the metrics_listen endpoint
 * (metrics_http.h) and for posternctl stats (Q_STATS), which print the
 * same text. Never reads the spool directory.
 */
#ifndef POSTERN_QMGR_METRICS_H
#define POSTERN_QMGR_METRICS_H

#include "buf.h"
#include "committer.h"
#include "config.h"
#include "evloop.h"
#include "qstore.h"

/* Starts the endpoint when metrics_listen is set; -1 with err. */
int metrics_start(struct evloop *ev, const struct config *cfg, struct qstore *q, char *err, size_t errlen);
void metrics_stop(void);

/* One recipient's delivery result (status RCPT_SENT/DEFERRED/BOUNCED) at dest. */
void metrics_delivery(const char *dest, unsigned status);
/* A group commit finished (its messages, how long it took, its status). */
void metrics_commit(const struct commit_job *job);

/* The whole text: census and counters. 0, or -1 (index unreadable). */
int metrics_render(struct buf *out);

/* Exposed for the unit tests: the label value escaping of the format. */
void metrics_label(struct buf *out, const char *s);

#endif
