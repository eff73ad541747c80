/*
 * listing.h - Q_LIST for mailq: the queue index sent in slices, as fast as
 * the client reads, so that a huge queue never fills queue-mgr's memory.
 */
#ifndef POSTERN_QMGR_LISTING_H
#define POSTERN_QMGR_LISTING_H

#include "clients.h"
#include "qstore.h"

void listing_init(struct qstore *q);
/* Starts answering a Q_LIST of c. */
void listing_start(struct client *c, uint32_t reqid);
/* Sends more while c's output is below the high-water mark. */
void listing_pump(struct client *c);

#endif
