/*
 * failures.h - AUTH failures per client address and per user: how long
 * the next 535 waits, and which attempts are refused outright.
 *
 *  - Each failure makes the next answer slower: the configured delay,
 *    doubled for each earlier recent failure of that address or that user
 *    (whichever has more), at most 8 times the delay.
 *  - An address with ip_limit failures is blocked for block_ms: every
 *    AUTH from it gets 421 4.7.0 without a password check.
 *  - A user with user_limit failures (from anywhere) is blocked for
 *    block_ms only from the addresses that failed for that user: the same
 *    user from another address still gets in, so an attacker cannot lock
 *    the owner out, and a botnet's addresses each get one try per block.
 *  - A failure is remembered for block_ms after the last one; a success
 *    forgives that address's failures for that user only.
 * Pure bookkeeping: time comes from the caller; bounded (max_entries).
 */
#ifndef POSTERN_AUTH_FAILURES_H
#define POSTERN_AUTH_FAILURES_H

#include <stddef.h>
#include <stdint.h>

struct failure_limits {
    uint64_t delay_ms;          /* the first failure's delay */
    unsigned ip_limit;          /* failures of one address before it is blocked */
    unsigned user_limit;        /* failures of one user before its failing addresses are */
    uint64_t block_ms;          /* memory of a failure, and length of a block */
    size_t max_entries;         /* addresses, users and pairs remembered at most */
};

struct failures;

struct failures *failures_new(const struct failure_limits *l);
void failures_free(struct failures *t);
void failures_set_limits(struct failures *t, const struct failure_limits *l);

/* 1 when AUTH as user from ip must be refused now (421), else 0. */
int failures_blocked(struct failures *t, const char *ip, const char *user, uint64_t now);
/* Records a failure; returns the delay of its 535 in ms. */
uint64_t failures_failure(struct failures *t, const char *ip, const char *user, uint64_t now);
void failures_success(struct failures *t, const char *ip, const char *user, uint64_t now);
/* Forgets what has expired; call now and then. */
void failures_sweep(struct failures *t, uint64_t now);
size_t failures_entries(const struct failures *t);

#endif
