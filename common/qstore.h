/*
 * qstore.h - the LMDB queue index: one record (qrecord.h encoding) per
 * queued message, keyed by queue id, in SPOOL/index/ (data.mdb, lock.mdb).
 * Ids sort by arrival, so a scan lists the queue oldest first and the last
 * key tells queueid.c where to continue after a restart.
 *
 * Written only by queue-mgr; mailq may open it read-only when queue-mgr is
 * down. Listing and scheduling never scan the spool directory.
 */
#ifndef POSTERN_QSTORE_H
#define POSTERN_QSTORE_H

#include <stddef.h>
#include "queueid.h"

#define QSTORE_DIR "index"
#define QSTORE_MSG_DIR "msg"

struct qstore;

struct qstore_item {
    const char *qid;
    const void *val;
    size_t len;
};

/* Opens (creating, unless readonly) SPOOL/index. -1 with err. */
int qstore_open(struct qstore **out, const char *spool_dir, int readonly, char *err, size_t errlen);
void qstore_close(struct qstore *q);

/* Stores n records in one transaction (group commit). They are durable
 * once the filesystem is synced afterwards (see qstore.c). */
int qstore_put_batch(struct qstore *q, const struct qstore_item *items, size_t n, char *err, size_t errlen);
/* Removes a record; 0 done, 1 not found, -1 error. */
int qstore_delete(struct qstore *q, const char *qid);

/* Visits records in id order, starting after `after` (NULL: from the first).
 * The visitor returns 0 to go on, non-zero to stop. Returns the number
 * visited, or -1. Pointers are valid only during the visit. */
typedef int (*qstore_visit_fn)(const char *qid, const void *val, size_t len, void *arg);
long qstore_scan(struct qstore *q, const char *after, qstore_visit_fn fn, void *arg);

/* The newest id; 0 found, 1 empty, -1 error. */
int qstore_last_id(struct qstore *q, char out[QID_LEN + 1]);

#endif
