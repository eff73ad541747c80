/*
 * qstore_stub.h - TEMPORARY, DELETE AT MERGE. The calls and constants that
 * the layout engineer adds to qstore.h and qrecord.h (notes/qstore-api.md),
 * stubbed so that queue-mgr and mailq can use them before the branches
 * merge. At merge: delete this file and qstore_stub.c, and replace every
 * #include "qstore_stub.h" by nothing (qstore.h and qrecord.h then declare
 * all of it). Must never grow behaviour of its own.
 */
#ifndef POSTERN_QSTORE_STUB_H
#define POSTERN_QSTORE_STUB_H

#include <stdint.h>
#include "qrecord.h"
#include "qstore.h"

/* qstore_put_batch(): the LMDB map is full and could not be grown. */
#define QSTORE_EFULL (-2)

/* qrecord.h: the spool file is missing or shorter than recorded; always
 * set together with QF_HOLD. */
enum { QF_DAMAGED = 1 << 2 };
/* Until then the stub records it as QF_HOLD and this reason on every
 * recipient (mailq's text for QF_DAMAGED). */
#define QSTORE_STUB_DAMAGED_TEXT "queue file missing or damaged; message held (see the queue-mgr log)"

int qstore_set_map_size(struct qstore *q, uint64_t bytes);
int qstore_reader_check(struct qstore *q);
int qstore_set_flags(struct qstore *q, const char *qid, unsigned set, unsigned clear);

#endif
