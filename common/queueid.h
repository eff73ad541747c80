/*
 * queueid.h - queue ids: 12 characters of [0-9A-Z], unique and sortable by
 * arrival. An id is a base-36 rendering of a 64-bit stamp that is the
 * microsecond clock, forced to increase strictly. Only queue-mgr makes ids.
 */
#ifndef POSTERN_QUEUEID_H
#define POSTERN_QUEUEID_H

#include <stdint.h>

#define QID_LEN 12

/* Makes ids follow after `last` (the newest id already in the queue, or NULL). */
void qid_init(const char *last);
/* Writes the next id and its NUL into out. */
void qid_next(char out[QID_LEN + 1]);
/* Like qid_next, with an explicit clock reading (for tests). */
void qid_next_at(uint64_t now_us, char out[QID_LEN + 1]);
/* 1 if s is a well-formed id of QID_LEN characters. */
int qid_valid(const char *s);
/* The stamp encoded in an id (microseconds), or 0 if invalid. */
uint64_t qid_stamp(const char *s);

#endif
