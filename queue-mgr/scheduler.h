/*
 * scheduler.h - queue-mgr's timed work on the queue. Today: the periodic
 * LMDB reader check, so that a reader killed mid-read (a mailq in
 * stand-alone mode) cannot pin index pages forever. The delivery
 * scheduler of the next issues goes here: finding recipients due by
 * next-attempt time, handing them to deliver, recording the results.
 */
#ifndef POSTERN_QMGR_SCHEDULER_H
#define POSTERN_QMGR_SCHEDULER_H

#include "evloop.h"
#include "qstore.h"

/* How often stale LMDB readers are cleared (milliseconds). */
#define READER_CHECK_MS 60000

void scheduler_start(struct evloop *ev, struct qstore *q);
void scheduler_stop(void);

#endif
