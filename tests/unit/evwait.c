/* evwait.c - ev_run_until() for unit suites (evwait.h). Never sleeps: the
 * deadline is an evloop timer. */
#include "evwait.h"

#include <stddef.h>

static int fired;

static void guard(struct evloop *ev, void *arg)
{
    (void)arg;
    fired = 1;
    ev_stop(ev);
}

int ev_run_until(struct evloop *ev, int (*cond)(void), uint64_t ms)
{
    uint64_t g;

    fired = 0;
    g = ev_timer(ev, ms, guard, NULL);
    while (!cond() && !fired)
        ev_run(ev);
    if (!fired)
        ev_timer_cancel(ev, g);
    return cond();
}
