/*
 * spool.h - spool files: one file a message, SPOOL/msg/QUEUEID, holding the
 * message as received (CRLF lines). A spool file only counts once its
 * record is in the LMDB index; start-up reconciliation (reconcile.h)
 * removes the rest.
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "qstore.h"

/* Opens SPOOL/msg for the calls below; -1 with err. */
int spool_init(const char *spool_dir, char *err, size_t errlen);
/* A new spool file with a fresh id; returns a write descriptor, or -1.
 * Once the pool runs, the inode comes ready-made from its threads and only
 * gets its name here. */
int spool_create(char qid[QID_LEN + 1]);
/* Starts the thread that makes spool files ahead of need (after qid_init). */
int spool_pool_start(void);
/* Stops it and removes the files it made that nobody was given. */
void spool_pool_stop(void);
/* Size of a spool file, or -1 if it is missing. */
int64_t spool_size(const char *qid);
/* Removes a spool file (missing is fine). */
void spool_remove(const char *qid);
/* Makes every spool file written so far durable (one syncfs for a batch:
 * the spool files and, on the same file system, the index's meta page). */
int spool_sync(void);
/* The SPOOL/msg directory (for reconcile.c). */
int spool_dir_fd(void);

#endif
