/*
 * lagent.h - the local delivery role's work: pulls Maildir jobs from
 * queue-mgr on RUN/queue/local.sock with deliver's protocol (D_WANT,
 * D_JOB with a read-only spool descriptor, D_RESULT; common/proto.h),
 * stores each recipient's copy through maildir.h with one group commit
 * per batch of jobs, logs the SPEC §6 line and reports the results.
 */
#ifndef POSTERN_LOCAL_LAGENT_H
#define POSTERN_LOCAL_LAGENT_H

#include "config.h"
#include "evloop.h"
#include "link.h"
#include "mapdb.h"

#define LAGENT_SLOTS 256                /* D_WANTs held: jobs in one batch at most */
#define LAGENT_GATHER_JOBS 64           /* a batch runs when it has this many jobs, */
#define LAGENT_GATHER_MS 10             /* or when its first job has waited this long */
#define LAGENT_FILLERS 4                /* threads that write a batch's copies into tmp/ */
#define LAGENT_FILL_PER_THREAD 8        /* copies per thread, at least, before one more starts */

/* Threads for a batch of n copies: one per LAGENT_FILL_PER_THREAD, at
 * least 1, at most max. Pure; for run_batch and its tests. */
unsigned lagent_fillers(size_t n, unsigned max);

/* ql: the link to queue-mgr, connected already; root_fd: mailbox_dir;
 * map: the compiled map (may be NULL: every recipient is then deferred);
 * exit_on_loss: the socket is out of reach (chrooted), so a lost link
 * ends the process (the master starts a new one). -1 with err. */
int lagent_start(struct evloop *ev, const struct config *cfg, struct link *ql, int root_fd,
                 struct mapdb *map, int exit_on_loss, char *err, size_t errlen);
/* SIGHUP: no new job; the batch in hand is finished and reported. */
void lagent_drain(void);
int lagent_drained(void);
void lagent_stop(void);

#endif
