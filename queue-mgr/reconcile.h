/*
 * reconcile.h - queue-mgr's start-up checks of the spool against the index.
 *
 * Never deletes a committed message. A record is the commit point, so:
 *  - a spool file without a record never committed (nobody was told 250):
 *    removed;
 *  - a spool file longer than its record says: truncated back to the
 *    recorded size (what was committed), logged;
 *  - a spool file missing or shorter than its record: the message is held
 *    (QF_HOLD | QF_DAMAGED) with a loud log line, and mailq shows it.
 * Also refuses to start when SPOOL/index and SPOOL/msg are on different
 * file systems: the one syncfs of a batch would not cover both.
 */
#ifndef POSTERN_QMGR_RECONCILE_H
#define POSTERN_QMGR_RECONCILE_H

#include <stddef.h>
#include "qstore.h"

/* 0 when SPOOL/index and SPOOL/msg share a file system; -1 with err. */
int reconcile_check_devices(const char *spool_dir, char *err, size_t errlen);
/* Returns the number of records in the queue (held ones included), or -1. */
long reconcile(struct qstore *q);

#endif
