/*
 * localroute.h - where the scheduler sends recipients of local_domains:
 * with local_transport = maildir to the local delivery role (its own pool
 * of D_WANT slots on RUN/queue/local.sock), with lmtp:... to the ordinary
 * deliver pool, the destination being the local_transport value verbatim
 * (deliver speaks LMTP to it). Pure decisions and one destination record;
 * never touches LMDB or sockets.
 */
#ifndef POSTERN_QMGR_LOCALROUTE_H
#define POSTERN_QMGR_LOCALROUTE_H

#include "clients.h"
#include "config.h"
#include "policy.h"

enum sched_pool { POOL_REMOTE = 0, POOL_LOCAL = 1, POOL_COUNT };

/* The D_DEST of Maildir jobs (the local role checks it). */
#define LOCALROUTE_MAILDIR "maildir"
/* Jobs in flight to the local role at most (its slots bound it first). */
#define LOCALROUTE_JOBS_MAX 10000u

/* Which pool takes a recipient of this kind. */
enum sched_pool localroute_pool(const struct config *cfg, enum dest_kind kind);
/* Which pool a client of this socket serves. */
enum sched_pool localroute_pool_of(enum queue_listener kind);
/* Jobs the scheduler may have in flight on a pool. */
unsigned localroute_pool_limit(const struct config *cfg, enum sched_pool pool);
/* The destination of local recipients: for maildir one record of our own
 * (never slowed, never dead: the local role reports no unreachable
 * destination), for lmtp what get() keeps under the local_transport
 * value, so LMTP gets slow start and dead marking like any next hop. */
struct dest *localroute_dest(const struct config *cfg, struct dest *(*get)(const char *name));

#endif
