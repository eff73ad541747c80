/*
 * qclient.h - the one client of queue-mgr's protocol (proto.h): frame
 * builders and reply parsers that an event loop can use (smtpd), and a
 * blocking client on top of them for the command-line tools (sendmail's
 * hand-off, mailq's listing). No other code builds or parses these frames.
 *
 * Replies are untrusted: every parser validates what it returns (queue id
 * syntax, text without control bytes) and a reply that does not match the
 * request is a protocol error, never a success.
 */
#ifndef POSTERN_QCLIENT_H
#define POSTERN_QCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "ipc.h"
#include "qrecord.h"
#include "queueid.h"

/* ---- frames, for any caller ---- */

void qc_build_open(struct ipc_out *m, uint32_t reqid);
/* At most PROTO_DATA_MAX bytes of content. */
void qc_build_data(struct ipc_out *m, uint32_t reqid, const char *qid, const void *p, size_t n);
void qc_build_commit(struct ipc_out *m, uint32_t reqid, const struct qrec *envelope);
/* Whether the envelope fits in one Q_COMMIT frame (its qid may be unset). */
int qc_commit_fits(const struct qrec *envelope);
void qc_build_abort(struct ipc_out *m, const char *qid);
void qc_build_list(struct ipc_out *m, uint32_t reqid);
/* Q_FLUSH of one message (qid), one domain (domain), or, both NULL, of
 * the whole queue. */
void qc_build_flush(struct ipc_out *m, uint32_t reqid, const char *qid, const char *domain);

/* A parsed reply. */
struct qc_reply {
    uint16_t type;              /* Q_OPENED, Q_COMMITTED, Q_ERROR, Q_LIST_* */
    char qid[QID_LEN + 1];      /* Q_OPENED, Q_COMMITTED */
    char code[16];              /* Q_ERROR: "451 4.3.0" (validated) */
    char text[512];             /* Q_ERROR */
    const void *record;         /* Q_LIST_ITEM: the record body, in m */
    size_t record_len;
    int active;                 /* Q_LIST_ITEM: a delivery is in flight ('*') */
    uint64_t count;             /* Q_LIST_END, Q_FLUSHED */
};

/*
 * Parses m as the answer to a request of id reqid that expects `want`
 * (Q_OPENED, Q_COMMITTED, Q_FLUSHED or Q_LIST_ITEM; Q_LIST_END is also taken for
 * Q_LIST_ITEM). Returns 0 with r filled (r->type is want, Q_LIST_END or
 * Q_ERROR), -1 when the frame is not a valid answer. Descriptors are the
 * caller's (m->fd).
 */
int qc_parse_reply(const struct ipc_msg *m, uint32_t reqid, uint16_t want, struct qc_reply *r);

/* ---- the blocking client, for tools ---- */

enum qc_status {
    QC_OK = 0,
    QC_REFUSED,         /* queue-mgr said Q_ERROR: code and text set */
    QC_DOWN,            /* cannot connect */
    QC_TIMEOUT,
    QC_LOST,            /* connection lost or write failed */
    QC_PROTO,           /* an unexpected or malformed reply */
};

struct qc_conn {
    struct ipc_conn conn;
    int timeout_ms;
    uint32_t next_reqid;
    struct qc_reply last;       /* the last reply (code/text on QC_REFUSED) */
};

/* Connects to run_dir/sock_name (paths.h). QC_OK or QC_DOWN (errno set). */
enum qc_status qc_connect(struct qc_conn *c, const char *run_dir, const char *sock_name,
                          int timeout_ms);
void qc_close(struct qc_conn *c);
/* Q_OPEN: the new queue id in qid; *fd the spool file's descriptor when
 * queue-mgr passed one (the smtpd socket), else -1 (pickup: use qc_data). */
enum qc_status qc_open(struct qc_conn *c, char qid[QID_LEN + 1], int *fd);
/* Q_DATA frames for n bytes of content (any n; split as needed). */
enum qc_status qc_data(struct qc_conn *c, const char *qid, const void *p, size_t n);
/* Q_COMMIT and its answer: QC_OK once durable, QC_REFUSED with the code. */
enum qc_status qc_commit(struct qc_conn *c, const struct qrec *envelope);
/* Q_ABORT (no answer), best effort. */
void qc_abort(struct qc_conn *c, const char *qid);
/* Q_LIST: calls visit for each record as it arrives, in id order; visit
 * returns 0 to go on (c->last.active says whether that message is being
 * delivered now). *count gets the server's count at the end. */
enum qc_status qc_list(struct qc_conn *c, int (*visit)(const void *rec, size_t len, void *arg),
                       void *arg, uint64_t *count);
/* Q_FLUSH (see qc_build_flush): *count recipients were made due now. */
enum qc_status qc_flush(struct qc_conn *c, const char *qid, const char *domain, uint64_t *count);
/* Finishes m, sends it whole and frees it (for qctl.h's requests). */
enum qc_status qc_send(struct qc_conn *c, struct ipc_out *m);
/* What went wrong, for a message ("timeout", "lost connection", ...). */
const char *qc_status_text(enum qc_status s);

#endif
