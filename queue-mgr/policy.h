/*
 * policy.h - the scheduler's decisions that need no queue and no clock of
 * their own: where a recipient goes (its destination), when a deferred
 * recipient is tried again (exponential backoff with jitter), when a
 * message has outlived queue_lifetime, and each destination's concurrency
 * (slow start, dead marking). Pure functions and one small table, so the
 * unit tests drive them with a fake clock. Never touches LMDB or sockets.
 */
#ifndef POSTERN_QMGR_POLICY_H
#define POSTERN_QMGR_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define DEST_MAX 300            /* "[host]:port" or a domain, with its NUL */

enum dest_kind { DEST_REMOTE, DEST_LOCAL, DEST_BAD };

/* The destination of addr: the relayhost as written when one is set and
 * the domain is not local, else the domain in lower case. DEST_LOCAL for
 * local_domains (out gets the domain), DEST_BAD for an address without a
 * domain or one that does not fit. */
enum dest_kind policy_dest(const struct config *cfg, const char *addr, char *out, size_t outlen);

/* Seconds until the next try after `attempts` failed ones (>= 1):
 * min(max_backoff, min_backoff * 2^(attempts-1)) times a factor in
 * [0.75, 1.0] from r in [0, 1). At least 1 second. */
uint64_t policy_backoff(unsigned attempts, unsigned min_backoff, unsigned max_backoff, double r);

/* Whether a recipient deferred at `now` has outlived queue_lifetime. */
int policy_expired(uint64_t arrival, uint64_t now, unsigned queue_lifetime);
/* The bounce of an expired recipient: its status code stays the last
 * error's (or 4.4.7 when there was none), as Postfix keeps it, and the
 * reply says why. */
void policy_expire_text(uint64_t arrival, uint64_t now, const char *last_dsn, const char *last_reply,
                        char *dsn, size_t dsnlen, char *reply, size_t replylen);

/* ---- destinations ---- */

struct dest {
    char name[DEST_MAX];
    unsigned limit;             /* current concurrency (slow start) */
    unsigned active;            /* jobs in flight */
    uint64_t dead_until;        /* seconds since the epoch; 0: alive */
    char reason[256];           /* the last failure, for "suspended" */
    struct dest *next;          /* hash chain */
};

struct dest_limits {
    unsigned initial, max;      /* initial_destination_concurrency, the limit */
    unsigned dead_time;         /* seconds a dead destination waits (min_backoff) */
};

/* A new destination at the initial concurrency (clamped to 1..max). */
void dest_init(struct dest *d, const char *name, const struct dest_limits *l);
/* Whether it is dead at now; a dead time that ended revives it (at
 * concurrency 1, so the first attempt is a probe). */
int dest_dead(struct dest *d, uint64_t now);
/* Whether one more job may start at now. */
int dest_can_start(struct dest *d, uint64_t now);
/* A job ended with flags D_F_* (reason: the deliver's last reply, may be
 * NULL). Success (reached): +1 up to max. Unreachable: -1 down to 1; at 1
 * already, dead for dead_time. Returns 1 when this made it dead. */
int dest_job_done(struct dest *d, unsigned flags, const char *reason, uint64_t now,
                  const struct dest_limits *l);
/* A flush: alive again, at least at concurrency 1. */
void dest_revive(struct dest *d);

#endif
