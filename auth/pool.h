/*
 * pool.h - the auth process's hashing threads. Checking a password costs
 * milliseconds by design (yescrypt, SHA512-CRYPT), so it never runs on the
 * event loop: jobs go to a bounded queue, worker threads verify them, and
 * finished jobs come back through an eventfd that the loop watches.
 */
#ifndef POSTERN_AUTH_POOL_H
#define POSTERN_AUTH_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "authproto.h"

struct pool_job {
    char hash[512];             /* the stored hash, or "" for a user without one */
    char pass[AUTH_PASS_MAX + 1];
    size_t passlen;
    int ok;                     /* set by the worker */
    void *arg;                  /* the caller's */
    struct pool_job *next;
};

/* Starts n threads; the descriptor to watch for finished jobs, or -1. */
int pool_start(unsigned n, size_t max_queued, char *err, size_t errlen);
/* Queues a job (the pool owns it until it comes back): 0, or -1 when the
 * queue is full. */
int pool_submit(struct pool_job *j);
/* After the descriptor was readable: the finished jobs, in a list. The
 * password in each has been wiped. */
struct pool_job *pool_done(void);
/* Stops the threads; jobs not handed back are freed, with free(arg). */
void pool_stop(void);

#endif
