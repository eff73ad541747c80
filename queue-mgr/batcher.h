/*
 * batcher.h - group commit as the event loop sees it: collects the commits
 * that arrive in one event-loop round into a batch (at most BATCH_MAX),
 * hands it to the committer (committer.h) as soon as the index stage is
 * free, and reports each transaction's outcome when the batch is durable.
 *
 * It also decides whether new transactions are welcome: after a failed
 * LMDB write or syncfs, none are (451 4.3.0), and every transaction opened
 * before the failure is refused at commit, until a probe sync succeeds;
 * after a full index (QSTORE_EFULL), none are (452 4.3.1) until a batch
 * succeeds again. It never says "committed" after an unexplained error.
 *
 * Knows nothing of clients or sockets: an owner pointer and a request id
 * come back with each result.
 */
#ifndef POSTERN_QMGR_BATCHER_H
#define POSTERN_QMGR_BATCHER_H

#include <stdint.h>
#include "committer.h"
#include "evloop.h"
#include "qrecord.h"

/* Messages in one batch. One LMDB transaction holds the whole batch and
 * every client of it waits for the slowest record; past about a thousand
 * the syncfs is amortised anyway, and a bound keeps a burst from building
 * one huge write transaction (and its dirty pages) in memory. */
#define BATCH_MAX 1024

/* How often a broken or full queue is tried again (milliseconds). */
#define BATCH_PROBE_MS 1000

struct batcher_hooks {
    /* One transaction's outcome: code NULL when durable, else the SMTP
     * code ("451 4.3.0") and text to refuse it with. rec is the record as
     * stored, valid during the call. */
    void (*result)(void *owner, uint32_t reqid, const struct qrec *rec,
                   const char *code, const char *text);
    /* After the results of one batch (e.g. to flush replies). May be NULL. */
    void (*batch_done)(void);
};

/* Starts the committer with ops (NULL: the real ones on q). -1 with errno. */
int batcher_start(struct evloop *ev, struct qstore *q, const struct commit_ops *ops,
                  unsigned probe_ms, const struct batcher_hooks *hooks);
/* 0 when new transactions are welcome; else -1 with the refusal. */
int batcher_refusal(const char **code, const char **text);
/* Changes at every durability failure; a transaction remembers the value
 * from its open and is refused at commit if it changed. */
uint64_t batcher_epoch(void);
/* Joins the next batch, taking over *rec (left initialised and empty);
 * 0, or -1 with the refusal (rec untouched, nothing will be reported). */
int batcher_add(void *owner, uint32_t reqid, struct qrec *rec, uint64_t epoch,
                const char **code, const char **text);
/* Commits what is collected, waits for every batch in flight (their
 * results are reported), ends the committer. */
void batcher_stop(void);

#endif
