/*
 * localroute.c - the local_domains routing decisions (localroute.h).
 * Must never name a destination from envelope data for local mail: the
 * destination is the configuration's (maildir or local_transport).
 */
#include "localroute.h"

#include <string.h>

enum sched_pool localroute_pool(const struct config *cfg, enum dest_kind kind)
{
    return kind == DEST_LOCAL && config_local_maildir(cfg) ? POOL_LOCAL : POOL_REMOTE;
}

enum sched_pool localroute_pool_of(enum queue_listener kind)
{
    return kind == QL_LOCAL ? POOL_LOCAL : POOL_REMOTE;
}

unsigned localroute_pool_limit(const struct config *cfg, enum sched_pool pool)
{
    return pool == POOL_LOCAL ? LOCALROUTE_JOBS_MAX : cfg->deliver_concurrency;
}

struct dest *localroute_dest(const struct config *cfg, struct dest *(*get)(const char *name))
{
    static struct dest maildir;
    static int ready;

    if (!config_local_maildir(cfg))
        return get(cfg->local_transport);
    if (!ready) {
        struct dest_limits l = { LOCALROUTE_JOBS_MAX, LOCALROUTE_JOBS_MAX, 1 };
        dest_init(&maildir, LOCALROUTE_MAILDIR, &l);
        ready = 1;
    }
    return &maildir;
}
