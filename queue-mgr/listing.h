/*
 * listing.h - Q_LIST for mailq: the queue index sent in slices, as fast as
 * the client reads, so that a huge queue never fills queue-mgr's memory;
 * many records a frame, a huge record in pieces (proto.h).
 */
#ifndef POSTERN_QMGR_LISTING_H
#define POSTERN_QMGR_LISTING_H

#include <stdint.h>
#include "clients.h"
#include "qstore.h"

void listing_init(struct qstore *q);
/* Starts answering a Q_LIST of c; only_uid >= 0 lists only the messages
 * that local user submitted (mailq_public = no). */
void listing_start(struct client *c, uint32_t reqid, int64_t only_uid);
/* Sends more while c's output is below the high-water mark. */
void listing_pump(struct client *c);
/* Adds one record to c's current Q_LIST_ITEM frame (sliced when large);
 * listing_flush() sends what is gathered (Q_SHOW uses both too). */
void listing_add(struct client *c, uint32_t reqid, const void *val, size_t len, int active);
void listing_flush(void);
/* The in-flight messages ('*'), taken from the scheduler into a hash:
 * build it, then ask about any number of ids (until the loop turns). */
void listing_active_build(void);
int listing_active(const char *qid);

#endif
