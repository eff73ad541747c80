/*
 * qctl.h - the client side of queue control (proto.h Q_SHOW .. Q_STATS):
 * the frames posternctl sends on the control socket and the parsers of
 * queue-mgr's answers, on top of qclient.h's blocking connection. No other
 * code builds or parses these frames. Answers are untrusted: counts are
 * checked, texts are copied only through ipc_field_str.
 */
#ifndef POSTERN_QCTL_H
#define POSTERN_QCTL_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "qclient.h"

/* Ids in one Q_DELETE/Q_HOLD/Q_RELEASE/Q_REQUEUE frame. */
#define QCTL_IDS_MAX 1000
/* Largest Q_STATS_REPLY text. */
#define QCTL_STATS_MAX (1u << 20)

/* What a Q_DONE said. */
struct qctl_done {
    uint64_t count;             /* messages acted on */
    uint64_t missing;           /* ids asked for that are not queued */
};

/* Builds Q_DELETE/Q_HOLD/Q_RELEASE/Q_REQUEUE with n ids (n <= QCTL_IDS_MAX). */
void qctl_build_ids(struct ipc_out *m, uint16_t type, uint32_t reqid, char (*ids)[QID_LEN + 1], size_t n);
/* Q_DELETE of every message (all), or those of a sender or a recipient. */
void qctl_build_delete_sel(struct ipc_out *m, uint32_t reqid, int all, const char *sender,
                           const char *rcpt);
/* Parses a Q_DONE for reqid: 0, or -1 (r->type Q_ERROR: code and text in r). */
int qctl_parse_done(const struct ipc_msg *m, uint32_t reqid, struct qctl_done *d, struct qc_reply *r);

/* Blocking calls (QC_OK, QC_REFUSED with c->last.code/text, ...). */
enum qc_status qctl_ids(struct qc_conn *c, uint16_t type, char (*ids)[QID_LEN + 1], size_t n,
                        struct qctl_done *d);
enum qc_status qctl_delete_sel(struct qc_conn *c, int all, const char *sender, const char *rcpt,
                               struct qctl_done *d);
/* Q_SHOW: rec(record) once, then data(bytes) for the message in pieces. */
enum qc_status qctl_show(struct qc_conn *c, const char *qid,
                         void (*rec)(const void *record, size_t len, int active, void *arg),
                         void (*data)(const void *p, size_t n, void *arg), void *arg);
/* Q_STATS: the Prometheus text into out (reset first). */
enum qc_status qctl_stats(struct qc_conn *c, struct buf *out);

#endif
