/*
 * qrecord.h - the queue record: the envelope of one queued message and the
 * state of each of its recipients, as carried whole in Q_COMMIT and
 * Q_LIST_ITEM, and in parts (the envelope once, each recipient on its own)
 * in the LMDB index (qstore.h).
 *
 * Encoded as ipc.h fields, first T_VERSION. Decoders skip tags they do not
 * know, so later versions can add fields without rewriting the queue.
 * Version 1 already holds what delivery, DSN, bounces and queue control need:
 * per-recipient status, attempts and next try, NOTIFY/ORCPT/RET/ENVID, the
 * 8BITMIME and SMTPUTF8 flags, the authenticated identity and a hold flag.
 */
#ifndef POSTERN_QRECORD_H
#define POSTERN_QRECORD_H

#include <stddef.h>
#include <stdint.h>
#include "addr.h"
#include "ipc.h"
#include "queueid.h"

#define QREC_VERSION 1
#define QREC_ENVID_MAX 100
#define QREC_ORCPT_MAX 500
#define QREC_REPLY_MAX 512
#define QREC_RELAY_MAX 320
#define QREC_MAX_RCPT 100000

enum qrec_ret { RET_NONE = 0, RET_FULL, RET_HDRS };
enum qrec_body { BODY_NONE = 0, BODY_7BIT, BODY_8BITMIME };

enum {
    QF_HOLD = 1 << 0,       /* held by the operator */
    QF_SMTPUTF8 = 1 << 1,   /* MAIL ... SMTPUTF8 */
    QF_DAMAGED = 1 << 2,    /* the spool file is missing or shorter than
                             * recorded; always together with QF_HOLD */
};
#define QF_ALL (QF_HOLD | QF_SMTPUTF8 | QF_DAMAGED)

enum {
    NOTIFY_NEVER = 1 << 0,
    NOTIFY_SUCCESS = 1 << 1,
    NOTIFY_FAILURE = 1 << 2,
    NOTIFY_DELAY = 1 << 3,
};

/* What a message is, for bounces (T_NOTICE_KIND): a notice that fails goes
 * to double_bounce_recipient; a double bounce that fails goes nowhere. */
enum qrec_notice { NOTICE_NONE = 0, NOTICE_DSN, NOTICE_DOUBLE };

/* A recipient's notices (T_R_NOTICE): which are done, or not wanted. */
enum {
    QN_FAILURE = 1 << 0,    /* its failure is reported (or needs no report) */
    QN_DELAY = 1 << 1,      /* its one delay warning is sent */
    QN_SUCCESS = 1 << 2,    /* its success is reported, or the next hop reports it */
    QN_RELAYED = 1 << 3,    /* sent to a next hop without DSN: "relayed" */
};
#define QN_ALL (QN_FAILURE | QN_DELAY | QN_SUCCESS | QN_RELAYED)

enum qrcpt_status {
    RCPT_PENDING = 0,   /* not yet tried */
    RCPT_DEFERRED,      /* tried, will retry at next_try */
    RCPT_SENT,          /* delivered */
    RCPT_BOUNCED,       /* failed for good */
};

/* A recipient. The strings are allocated to their length (a record may
 * hold QREC_MAX_RCPT of them, and a short field in a frame must not cost a
 * kilobyte in memory): addr is never NULL once added; orcpt and reply are
 * NULL when empty. qrcpt_set() changes them; qrec_free() frees them. */
struct qrcpt {
    char *addr;
    char *orcpt;
    char *reply;
    char *relay;            /* remote MTA of the last answer ("host[ip]:port"), or NULL */
    unsigned notify : 8;    /* bit fields: QREC_MAX_RCPT of these stay small */
    unsigned status : 8;
    unsigned notice : 8;    /* QN_*: which notices are done (queue-mgr/bounce.c) */
    unsigned attempts;
    uint64_t next_try;
    char dsn[16];
    char *alias;            /* the alias it was expanded from (T_R_ALIAS), or NULL */
};

struct qrec {
    unsigned version;
    char qid[QID_LEN + 1];
    char sender[ADDR_MAX + 1];
    char envid[QREC_ENVID_MAX + 1];
    unsigned ret, body, flags;
    char auth[256];
    char helo[256];
    char client_addr[64];
    char client_name[256];
    char proto[16];
    char origin[16];
    int64_t uid;            /* -1 when not a local submission */
    uint64_t arrival, size;
    unsigned notice_kind;   /* enum qrec_notice */
    size_t nrcpt;
    struct qrcpt *rcpt;     /* malloc'ed, nrcpt entries */
};

void qrec_init(struct qrec *r);
void qrec_free(struct qrec *r);
/* Appends a recipient (copying addr); -1 on OOM or over QREC_MAX_RCPT. */
int qrec_add_rcpt(struct qrec *r, const char *addr);
/* Sets a recipient's orcpt, reply or alias to a copy of s (NULL or "" clears it);
 * -1 on OOM or when s is longer than max. */
int qrcpt_set(char **field, const char *s, size_t max);

/* Appends the record's fields to a body started with ipc_body_begin() or
 * ipc_out_begin(). The qid is included. */
void qrec_encode(const struct qrec *r, struct ipc_out *m);

/* Decodes and validates fields; -1 with a reason in err. Addresses are
 * checked with addr.h, texts for control characters, numbers for range. */
int qrec_decode(const unsigned char *body, size_t len, struct qrec *r, char *err, size_t errlen);

/*
 * The parts of a record, for the queue index (qstore.c), which stores the
 * envelope once and each recipient under its own key. qrec_encode() is
 * exactly qrec_encode_envelope() followed by one T_RCPT field per recipient
 * whose value is qrcpt_encode(), so the parts concatenated that way are a
 * whole record again.
 */
void qrec_encode_envelope(const struct qrec *r, struct ipc_out *m);
/* The envelope alone (a T_RCPT field is refused); r has no recipients. */
int qrec_decode_envelope(const unsigned char *body, size_t len, struct qrec *r, char *err, size_t errlen);
/* One recipient's body: the value of a T_RCPT field. */
void qrcpt_encode(const struct qrcpt *rc, struct ipc_out *m);
/* Decodes and validates one recipient body; rflags are the message's QF_*
 * (QF_SMTPUTF8 allows UTF-8 in the address). qrcpt_free() frees it. */
int qrcpt_decode(const unsigned char *body, size_t len, unsigned rflags, struct qrcpt *rc,
                 char *err, size_t errlen);
void qrcpt_free(struct qrcpt *rc);
/* Reads one u64 field of a body without decoding the rest: 0 found, 1 not
 * there (the value is then 0), -1 malformed body or field. */
int qrec_peek_u64(const unsigned char *body, size_t len, uint16_t tag, uint64_t *out);

/* The Postfix queue name for mailq: "hold", "deferred", "incoming" or "active". */
const char *qrec_queue_name(const struct qrec *r);

#endif
