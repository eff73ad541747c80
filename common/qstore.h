/*
 * qstore.h - the LMDB queue index in SPOOL/index/ (data.mdb, lock.mdb): the
 * envelope of each queued message once, each recipient's state under its
 * own key, and an index of the recipients still to deliver by next-attempt
 * time (layout version 2, described in qstore.c and docs/ARCHITECTURE.md).
 * Ids sort by arrival, so a scan lists the queue oldest first and the last
 * id tells queueid.c where to continue after a restart.
 *
 * Written only by queue-mgr; mailq and `postern check` may open it
 * read-only. Listing and scheduling never scan the spool directory, and
 * the scheduler never scans the queue: qstore_scan_due() reads the time
 * index from its start.
 *
 * Threads: one struct qstore may be used from several threads at once (the
 * committer writes while the event loop lists). A visitor of qstore_scan()
 * must not start another scan; writes from inside a visitor work but
 * cannot grow the map.
 */
#ifndef POSTERN_QSTORE_H
#define POSTERN_QSTORE_H

#include <stddef.h>
#include <stdint.h>
#include "qrecord.h"
#include "queueid.h"

#define QSTORE_DIR "index"
#define QSTORE_MSG_DIR "msg"
#define QSTORE_LAYOUT 2         /* the on-disk layout this code writes */
#define QSTORE_EFULL (-2)       /* the map is full and cannot grow: answer 452 4.3.1 */

struct qstore;

struct qstore_item {
    const char *qid;
    const void *val;            /* a whole record, as qrec_encode() makes it */
    size_t len;
};

/* Opens (creating, unless readonly) SPOOL/index. A writable open migrates a
 * store of an older layout in one transaction (logged); any open refuses a
 * newer layout. A read-only open of an unmigrated version 1 store can scan
 * it and read its last id. -1 with err. */
int qstore_open(struct qstore **out, const char *spool_dir, int readonly, char *err, size_t errlen);
void qstore_close(struct qstore *q);
/* Flushes the index file (data and meta pages): every transaction committed
 * so far is durable. 0, or -1 with errno. */
int qstore_sync(struct qstore *q);

/* The map size (address space, not disk: the file grows as it is written),
 * never below the data already stored. The map also grows by itself when a
 * write fills it. 0, or -1. */
int qstore_set_map_size(struct qstore *q, uint64_t bytes);
/* Clears reader slots left by dead processes (mdb_reader_check): returns
 * how many, or -1. */
int qstore_reader_check(struct qstore *q);

/* Stores n whole records in one transaction (group commit): each is
 * decoded and validated, then stored as envelope, recipients and schedule
 * entries; an id already stored is replaced. 0, -1 with err, or
 * QSTORE_EFULL when the map is full and cannot grow or the disk is full
 * (nothing of the batch is stored; a later batch succeeds once there is
 * space). Durable once the filesystem is synced afterwards (qstore.c). */
int qstore_put_batch(struct qstore *q, const struct qstore_item *items, size_t n, char *err, size_t errlen);
/* Removes a message: envelope, recipients and schedule entries. 0 done,
 * 1 not found, -1 error. */
int qstore_delete(struct qstore *q, const char *qid);
/* Removes n messages in one transaction; gone[i] says whether qids[i] was
 * there. 0, or -1 (nothing removed). */
int qstore_delete_many(struct qstore *q, char (*qids)[QID_LEN + 1], size_t n, unsigned char *gone);

/* Visits messages in id order, starting after `after` (NULL: from the
 * first), each as one whole record (qrec_encode's format, envelope and every
 * recipient). The visitor returns 0 to go on, non-zero to stop. Returns the
 * number visited, or -1. Pointers are valid only during the visit. */
typedef int (*qstore_visit_fn)(const char *qid, const void *val, size_t len, void *arg);
long qstore_scan(struct qstore *q, const char *after, qstore_visit_fn fn, void *arg);

/* The newest id; 0 found, 1 empty, -1 error. */
int qstore_last_id(struct qstore *q, char out[QID_LEN + 1]);

/* One message, decoded (qrec_free() it): 0, 1 not found, -1 error. */
int qstore_get(struct qstore *q, const char *qid, struct qrec *r, char *err, size_t errlen);
/* One recipient (index from 0), decoded (qrcpt_free() it): 0, 1 not found, -1. */
int qstore_get_rcpt(struct qstore *q, const char *qid, uint32_t rcpt, struct qrcpt *rc);

/* Sets and clears QF_* flags of a message: 0 done, 1 not found, -1 error.
 * Setting QF_DAMAGED sets QF_HOLD too; clearing QF_HOLD clears QF_DAMAGED.
 * A held message has no schedule entries: holding takes them out,
 * releasing puts its undelivered recipients back. */
int qstore_set_flags(struct qstore *q, const char *qid, unsigned set, unsigned clear);

/* ---- for the scheduler ---- */

/* A recipient's delivery result. Status RCPT_SENT or RCPT_BOUNCED takes it
 * out of the schedule; RCPT_PENDING or RCPT_DEFERRED puts it at next_try. */
struct qstore_rcpt_update {
    char qid[QID_LEN + 1];
    uint32_t rcpt;              /* index in the record, from 0 */
    unsigned status;            /* enum qrcpt_status */
    unsigned attempts;
    uint64_t next_try;          /* seconds since the epoch */
    char dsn[16];               /* "4.4.1", or "" */
    const char *reply;          /* last reply, NULL or "" for none */
    /* kept as stored when 0 / NULL */
    const char *relay;          /* the remote MTA that answered */
    unsigned notice_set;        /* QN_* bits to add */
};

/* Applies n results in one transaction; each rewrites one small recipient
 * record and moves its schedule entry. A recipient that is not stored (its
 * message was removed) is skipped and counted in *missing (may be NULL).
 * 0, -1 with err (nothing applied), or QSTORE_EFULL as for put_batch. */
int qstore_update_rcpts(struct qstore *q, const struct qstore_rcpt_update *u, size_t n,
                        size_t *missing, char *err, size_t errlen);

/* A bounce, in ONE transaction (queue-mgr/bounce.c): stores the notice
 * (a whole record, whose spool file the caller has written and synced
 * before), adds QN_* bits to recipients of the original, and removes the
 * original when remove_orig is set. notice may be NULL (marks alone, e.g.
 * a failure nobody is to hear of). A crash leaves either all of it or none,
 * so a notice is neither lost nor queued twice. 0, -1 with err (nothing
 * changed; also when the original is gone: 1), or QSTORE_EFULL. */
struct qstore_notice_mark {
    uint32_t rcpt;
    unsigned notice_set;        /* QN_* */
};
int qstore_put_notice(struct qstore *q, const struct qstore_item *notice, const char *orig_qid,
                      const struct qstore_notice_mark *marks, size_t n, int remove_orig,
                      char *err, size_t errlen);

/* How many recipients of qid are still to deliver (pending or deferred,
 * held or not): 0 means every one is sent or bounced (or the message is
 * not stored), and the message can go. -1 on error. */
long qstore_undelivered(struct qstore *q, const char *qid);

/* A position in the schedule: a recipient still to deliver, and when. */
struct qstore_due {
    uint64_t next_try;
    char qid[QID_LEN + 1];
    uint32_t rcpt;
};

/* Fills out[0..max) with the recipients due at `now` (next_try <= now) in
 * time order (then id, then index), starting after *after (NULL: the
 * earliest). Held messages have no entries. With now = UINT64_MAX and max
 * = 1 it gives the next attempt time of the whole queue. Reads only the
 * entries it returns. Returns the count, or -1. */
long qstore_scan_due(struct qstore *q, uint64_t now, const struct qstore_due *after,
                     struct qstore_due *out, size_t max);

/* 0 when SPOOL/index and SPOOL/msg share a file system (one syncfs makes a
 * message and its record durable together); -1 with the reason in err.
 * queue-mgr refuses to start otherwise, and `postern check` says why. */
int qstore_check_devices(const char *spool_dir, char *err, size_t errlen);

#endif
