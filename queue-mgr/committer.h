/*
 * committer.h - the group commit, on threads of its own, so that the event
 * loop keeps handing out spool files and collecting the next batch while
 * the disk works.
 *
 * A batch goes through two stages: the index thread writes its records
 * into LMDB (which flushes their data pages), then the sync thread calls
 * syncfs() for its spool files and the index's meta page. While batch N is
 * in the sync stage, batch N+1 can be in the index stage, so the two
 * flushes of consecutive batches overlap. Batches finish in order.
 */
#ifndef POSTERN_QMGR_COMMITTER_H
#define POSTERN_QMGR_COMMITTER_H

#include <stddef.h>
#include <stdint.h>
#include "evloop.h"
#include "qstore.h"

struct commit_job {
    const struct qstore_item *items;
    size_t n;
    int ok;                 /* set by the threads */
    char err[256];
    uint64_t started_ms, elapsed_ms;
    struct commit_job *next; /* committer's own list */
};

/* done() runs in the event loop for each finished job, in submit order. */
int committer_start(struct evloop *ev, struct qstore *q, void (*done)(struct commit_job *));
/* Whether a new job can be submitted now (the index stage is free). */
int committer_ready(void);
void committer_submit(struct commit_job *job);
/* Finishes every job in flight (their done() runs) and ends the threads. */
void committer_stop(void);

#endif
