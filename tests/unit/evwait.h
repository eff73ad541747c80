/* evwait.h - for unit suites that drive an event loop: run it until a
 * condition holds, with a deadline instead of a sleep. */
#ifndef POSTERN_TEST_EVWAIT_H
#define POSTERN_TEST_EVWAIT_H

#include <stdint.h>
#include "evloop.h"

/* Runs ev until cond() is true (callbacks call ev_stop() to have it looked
 * at) or ms pass; returns cond(). */
int ev_run_until(struct evloop *ev, int (*cond)(void), uint64_t ms);

#endif
