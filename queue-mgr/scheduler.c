/*
 * scheduler.c - timed queue work (scheduler.h). Runs in the event loop;
 * must never block it for long: each timer does a small, bounded job.
 */
#include "scheduler.h"

#include "log.h"
#include "qstore_stub.h" /* qstore_reader_check; DELETE AT MERGE */

static struct evloop *loop;
static struct qstore *store;
static uint64_t reader_timer;

static void reader_check(struct evloop *ev, void *arg)
{
    int n = qstore_reader_check(store);

    (void)arg;
    if (n < 0)
        log_warning("queue index reader check failed");
    else if (n > 0)
        log_info("queue index: cleared %d stale reader slot(s)", n);
    reader_timer = ev_timer(ev, READER_CHECK_MS, reader_check, NULL);
}

void scheduler_start(struct evloop *ev, struct qstore *q)
{
    loop = ev;
    store = q;
    reader_timer = ev_timer(ev, READER_CHECK_MS, reader_check, NULL);
}

void scheduler_stop(void)
{
    if (reader_timer)
        ev_timer_cancel(loop, reader_timer);
    reader_timer = 0;
}
