/*
 * committer.h - the group commit, on a thread of its own, so that the event
 * loop keeps handing out spool files and collecting the next batch while
 * the disk flushes the current one. One batch is in flight at a time.
 */
#ifndef POSTERN_QMGR_COMMITTER_H
#define POSTERN_QMGR_COMMITTER_H

#include <stddef.h>
#include "evloop.h"
#include "qstore.h"

struct commit_job {
    const struct qstore_item *items;
    size_t n;
    int ok;                 /* set by the thread */
    uint64_t elapsed_ms;    /* how long the flush took */
    char err[256];
};

/* done() runs in the event loop when a submitted job has finished. */
int committer_start(struct evloop *ev, struct qstore *q, void (*done)(struct commit_job *));
int committer_busy(void);
void committer_submit(struct commit_job *job);
/* Waits for the job in flight (its done() runs) and ends the thread. */
void committer_stop(void);

#endif
