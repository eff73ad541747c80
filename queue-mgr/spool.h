/*
 * spool.h - spool files: one file a message, SPOOL/msg/QUEUEID, holding the
 * message as received (CRLF lines). A spool file only counts once its
 * record is in the LMDB index; start-up reconciliation removes the rest.
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "qstore.h"

/* Opens SPOOL/msg for the calls below; -1 with err. */
int spool_init(const char *spool_dir, char *err, size_t errlen);
/* Creates a new spool file with a fresh id; returns a write descriptor. */
int spool_create(char qid[QID_LEN + 1]);
/* Size of a spool file, or -1 if it is missing. */
int64_t spool_size(const char *qid);
/* Removes a spool file (missing is fine). */
void spool_remove(const char *qid);
/* Makes every spool file written so far durable (one syncfs for a batch). */
int spool_sync(void);
/*
 * Start-up: removes spool files that have no record (their transaction
 * never committed) and records whose spool file is missing (logged as
 * errors: that mail is lost). Returns the number of records kept, or -1.
 */
long spool_reconcile(struct qstore *q);

#endif
