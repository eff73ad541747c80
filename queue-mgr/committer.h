/*
 * committer.h - the group commit, on threads of its own, so that the event
 * loop keeps handing out spool files and collecting the next batch while
 * the disk works.
 *
 * The durable path of a batch, in this order: the index thread writes all
 * its records into LMDB in one transaction (which flushes their data
 * pages); then the sync thread calls one syncfs() for the batch's spool
 * files and the index's meta page; only then does done() run, and only
 * then are the clients answered. While batch N is in the sync stage, batch
 * N+1 can be in the index stage, so the flushes of consecutive batches
 * overlap. Batches finish in submit order.
 *
 * A failed stage breaks the committer: once an LMDB write or a syncfs has
 * failed, every job still in flight fails too (a later syncfs may return 0
 * although the earlier pages were lost: writeback errors are reported
 * once), and every job submitted afterwards fails without being tried,
 * until a probe job (n == 0) syncs successfully.
 *
 * The stages are commit_ops, so that tests can fail them on purpose.
 *
 * A second kind of job carries the scheduler's delivery results instead
 * of new records: the index stage applies them (qstore_update_rcpts, many
 * in one transaction) and removes each message that has no recipient left
 * to deliver and none bounced; the one syncfs of the sync stage makes
 * both durable; done() then removes those spool files.
 */
#ifndef POSTERN_QMGR_COMMITTER_H
#define POSTERN_QMGR_COMMITTER_H

#include <stddef.h>
#include <stdint.h>
#include "evloop.h"
#include "qstore.h"

enum commit_status {
    COMMIT_OK = 0,
    COMMIT_FAILED,          /* not durable: answer 451 4.3.0 */
    COMMIT_FULL,            /* the index is full: answer 452 4.3.1 */
};

struct commit_job {
    const struct qstore_item *items;
    size_t n;               /* 0: a probe, only the sync stage runs */
    enum commit_status status; /* set by the threads */
    char err[256];
    uint64_t started_ms, elapsed_ms;
    /* a result job (n == 0): recipient updates, then the removals found */
    const struct qstore_rcpt_update *updates;
    size_t nupdates;
    char (*removed)[QID_LEN + 1]; /* capacity nupdates, filled by the index stage */
    size_t nremoved;
    void (*done)(struct commit_job *); /* NULL: the committer's done() */
    /* a job of its own kind (n == 0, no updates): its index stage, on the
     * index thread (bounce.c); 0, -1 with err, or QSTORE_EFULL */
    int (*run)(struct commit_job *, char *err, size_t errlen);
    void *owner;
    struct commit_job *next; /* committer's own list */
};

/* The two stages (called on the committer's threads, never at once for
 * the same stage). index: 0, -1 with err, or QSTORE_EFULL. unindex takes
 * back records whose sync failed. sync: 0, or -1 with errno. */
struct commit_ops {
    int (*index)(void *arg, const struct qstore_item *items, size_t n, char *err, size_t errlen);
    void (*unindex)(void *arg, const struct qstore_item *items, size_t n);
    int (*sync)(void *arg);
    /* a result job: updates and removals; 0, -1 with err, or QSTORE_EFULL */
    int (*update)(void *arg, struct commit_job *job, char *err, size_t errlen);
    /* the sync stage of a result job, which wrote no spool file: the index
     * alone made durable (NULL: sync); 0, or -1 with errno */
    int (*sync_index)(void *arg);
    void *arg;
};

/* The real stages: qstore_put_batch/qstore_delete/qstore_update_rcpts on q,
 * spool_sync(), and qstore_sync() for result jobs. */
void committer_default_ops(struct commit_ops *ops, struct qstore *q);

/* done() runs in the event loop for each finished job, in submit order. */
int committer_start(struct evloop *ev, const struct commit_ops *ops, void (*done)(struct commit_job *));
/* Whether a new job can be submitted now (the index stage is free). */
int committer_ready(void);
/* Whether no job is in flight (submitted and not yet given to done()). */
int committer_idle(void);
void committer_submit(struct commit_job *job);
/* Finishes every job in flight (their done() runs) and ends the threads. */
void committer_stop(void);

#endif
