/*
 * proto.h - message types and field tags spoken over ipc.h frames. One
 * table for every process, so that resolver, map and auth look-ups
 * (ROADMAP.md) are new rows, not new formats. Where the sockets are is
 * paths.h; common/qclient.h builds and parses the queue frames.
 *
 * Message hand-off (smtpd or sendmail to queue-mgr):
 *   Q_OPEN            ->  Q_OPENED {QID}, on the smtpd socket with the
 *                         descriptor of a new spool file; on the pickup
 *                         socket without one (a local user never holds a
 *                         writable descriptor of a queue file)
 *                     or  Q_ERROR {CODE, TEXT}
 *   smtpd writes the message, CRLF lines, into the descriptor; a pickup
 *   client sends it instead:
 *   Q_DATA {QID, DATA} ... (no reply) queue-mgr appends DATA to the file,
 *                         after its own Received: line; at most
 *                         PROTO_DATA_MAX bytes of DATA a frame
 *   Q_COMMIT {QID, envelope fields as in qrecord.h}
 *                     ->  Q_COMMITTED {QID}    once file and record are durable
 *                     or  Q_ERROR {CODE, TEXT} (also for a refusal met while
 *                         streaming, e.g. 552 5.3.4 for a message too large)
 *   Q_ABORT {QID}         (no reply) the spool file is removed
 * Queue listing (mailq):
 *   Q_LIST            ->  Q_LIST_ITEM {RECORD, ACTIVE} ... Q_LIST_END {COUNT}
 *                         (ACTIVE 1: being delivered now, mailq's '*')
 *
 * resolver listens on RUN/resolver/resolver.sock (deliver, queue-mgr, smtpd;
 * common/dnsclient.h builds the requests and parses the answers):
 *   R_LOOKUP {DNS_NAME, DNS_TYPE}  ->  R_ANSWER {DNS_STATUS, DNS_SECURITY, DNS_RR...}
 *   R_NEXTHOPS {DNS_NAME domain}   ->  R_HOPS {DNS_STATUS, DNS_DSN, TEXT, DNS_HOP...}
 *   a request that fails validation -> R_ERROR {CODE, TEXT}
 *
 * Delivery (deliver to queue-mgr, on RUN/deliver/queue/deliver.sock, inside
 * deliver's jail; only user_deliver may connect). deliver pulls work: each
 * D_WANT is one free delivery slot, held by queue-mgr until it has a job.
 *   D_WANT            ->  D_JOB {D_JOB, QID, D_DEST, SENDER, ENVID, RET, BODY,
 *                         FLAGS, ARRIVAL, SIZE, D_DISPATCH, RCPT {R_INDEX,
 *                         R_ADDR, R_ORCPT, R_NOTIFY, R_ATTEMPTS}...}
 *                         + a read-only descriptor of the spool file.
 *                         All recipients of one job share the message and
 *                         the destination D_DEST: a domain (lower case), or
 *                         "[host]:port" / "host:port" for the relayhost.
 *   D_RESULT {D_JOB, QID, D_FLAGS, RCPT {R_INDEX, R_STATUS, R_DSN, R_REPLY}...}
 *                         (no reply) one result per recipient of the job,
 *                         R_STATUS RCPT_SENT, RCPT_DEFERRED or RCPT_BOUNCED;
 *                         deliver has logged the delivery line already.
 *                         queue-mgr applies a result by (QID, R_INDEX) when
 *                         that recipient is still undelivered, whether or
 *                         not it knows the job (a result that outlived a
 *                         queue-mgr restart still counts); a recipient of a
 *                         job left without a result is deferred.
 *                         D_RESULT may add D_RELAY (the session's
 *                         "host[ip]:port") and D_HOP_DSN (1: that host
 *                         offered DSN, so a success is its to report).
 *   D_FLAGS bits: D_F_DEST_UNREACHABLE (no host of the destination took a
 *                         connection: feeds slow start and dead marking),
 *                         D_F_DEST_REACHED (a session got past the greeting).
 * Queue control (posternctl, on the control socket):
 *   Q_FLUSH {QID | D_DEST} ->  Q_FLUSHED {COUNT} (deferred recipients made
 *                         due now, and the destination revived), or Q_ERROR;
 *                         Q_FLUSH with neither flushes the whole queue.
 *   Q_LIST's Q_LIST_ITEM frames carry several records each ({RECORD,
 *                         ACTIVE?}...), and a record too large for one frame
 *                         as T_RECORD_PART pieces ended by its T_RECORD.
 *   Q_SHOW {QID}      ->  Q_LIST_ITEM {RECORD, ACTIVE?}, Q_DATA {DATA}...
 *                         (the spool file), Q_LIST_END {COUNT bytes}
 *   Q_DELETE {QID... | CTL_ALL | CTL_SENDER | CTL_RCPT}
 *   Q_HOLD {QID...}, Q_RELEASE {QID...}, Q_REQUEUE {QID...}
 *                     ->  Q_DONE {COUNT done, CTL_MISSING}, or Q_ERROR
 *   Q_STATS           ->  Q_STATS_REPLY {DATA: the Prometheus text of
 *                         queue-mgr/metrics.h}
 *   Everything but Q_LIST needs root, queue-mgr's uid or admin_group;
 *   Q_LIST with mailq_public = no shows others only their own mail.
 * Password checks (smtpd to the auth process, on RUN/smtpd/auth/auth.sock
 * inside smtpd's jail; only user_smtpd may connect; common/authproto.h):
 *   A_CHECK {A_USER, A_PASS, A_CLIENT}
 *                     ->  A_RESULT {A_STATUS, A_DELAY, A_USER canonical}
 *                         A_STATUS: AUTH_OK, AUTH_FAIL (535 after A_DELAY
 *                         ms), AUTH_BLOCKED (421 4.7.0: too many failures
 *                         from this address, or for this user from it),
 *                         AUTH_TEMPFAIL (454 4.7.0)
 */
#ifndef POSTERN_PROTO_H
#define POSTERN_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of message content in one Q_DATA frame. */
#define PROTO_DATA_MAX (64u << 10)

enum msg_type {
    Q_OPEN = 1,
    Q_OPENED,
    Q_COMMIT,
    Q_COMMITTED,
    Q_ABORT,
    Q_ERROR,
    Q_LIST,
    Q_LIST_ITEM,
    Q_LIST_END,
    Q_DATA,
    /* resolver (common/dnsclient.h) */
    Q_FLUSH,
    Q_FLUSHED,
    D_WANT = 64,
    D_JOB,
    D_RESULT,
    R_LOOKUP = 80,
    R_ANSWER,
    R_NEXTHOPS,
    R_HOPS,
    R_ERROR,
    /* queue control (opsq; common/qctl.h builds and parses them) */
    Q_SHOW = 120,
    Q_DELETE = 121,
    Q_HOLD = 122,
    Q_RELEASE = 123,
    Q_REQUEUE = 124,
    Q_STATS = 125,
    Q_DONE = 126,
    Q_STATS_REPLY = 127,
    /* auth (issue 9): types 112-119 */
    A_CHECK = 112,
    A_RESULT = 113,
    /* mailbox quota, smtpd -> local role (common/quotaproto.h): types 96-103 */
    L_QUOTA = 96,
    L_QUOTA_REPLY = 97,
};

enum field_tag {
    T_QID = 1,          /* str, QID_LEN */
    T_CODE,             /* str, "451 4.3.0" */
    T_TEXT,             /* str, human text */
    T_RECORD,           /* nested: a queue record body */
    T_COUNT,            /* u64 */
    T_DATA,             /* bytes, message content (Q_DATA) */
    T_ACTIVE,           /* u64, Q_LIST_ITEM: 1 when a delivery of the message is in flight */
    /* envelope and record fields: see qrecord.h */
    T_VERSION = 16,     /* u64, record format version */
    T_SENDER,           /* str, mailbox or "" */
    T_RCPT,             /* nested, one recipient */
    T_ENVID,            /* str, xtext as received (RFC 3461) */
    T_RET,              /* u64, enum qrec_ret */
    T_BODY,             /* u64, enum qrec_body */
    T_FLAGS,            /* u64, QF_* bits */
    T_AUTH,             /* str, authenticated identity */
    T_HELO,             /* str */
    T_CLIENT_ADDR,      /* str, IP address */
    T_CLIENT_NAME,      /* str, host name or "unknown" */
    T_PROTO,            /* str, "ESMTPS" etc. */
    T_UID,              /* u64, local submitter's uid (pickup) */
    T_ARRIVAL,          /* u64, seconds since the epoch */
    T_SIZE,             /* u64, bytes in the spool file */
    T_ORIGIN,           /* str, "smtpd" or "pickup" */
    /* recipient fields, inside T_RCPT */
    T_R_ADDR = 48,      /* str, mailbox */
    T_R_ORCPT,          /* str, "addr-type;xtext" (RFC 3461) */
    T_R_NOTIFY,         /* u64, NOTIFY_* bits */
    T_R_STATUS,         /* u64, enum qrcpt_status */
    T_R_ATTEMPTS,       /* u64 */
    T_R_NEXT_TRY,       /* u64, seconds since the epoch */
    T_R_DSN,            /* str, "4.4.1" */
    T_R_REPLY,          /* str, last reply or reason */
    /* resolver fields (common/dnsclient.h) */
    T_DNS_NAME = 80,    /* str, a DNS name without the trailing dot */
    T_DNS_TYPE,         /* u64, RR type: 1 A, 15 MX, 16 TXT, 28 AAAA, 52 TLSA */
    T_DNS_STATUS,       /* u64, enum dns_status */
    T_DNS_SECURITY,     /* u64, enum dns_security */
    T_DNS_RR,           /* nested, one record */
    T_DNS_HOP,          /* nested, one next hop */
    T_DNS_PREF,         /* u64, MX preference */
    T_DNS_HOST,         /* str, MX target or hop host name */
    T_DNS_ADDR,         /* str, numeric IPv6 or IPv4 address */
    T_DNS_DATA,         /* bytes: TLSA rdata, or TXT strings joined */
    T_DNS_TTL,          /* u64, seconds */
    T_DNS_CANON,        /* str, canonical name after CNAMEs */
    T_DNS_DSN,          /* str, "5.1.10" for a permanent next-hop failure */
    T_DNS_IMPLICIT,     /* u64, 1 for an implicit MX (RFC 5321 5.1) */
    /* delivery */
    T_D_JOB = 112,      /* u64, job id (queue-mgr's) */
    T_D_DEST,           /* str, destination: domain, or the relayhost as written */
    T_D_DISPATCH,       /* u64, milliseconds since the epoch when the job left queue-mgr */
    T_D_FLAGS,          /* u64, D_F_* */
    T_R_INDEX,          /* u64, recipient index in the message (inside T_RCPT) */
    /* queue control (opsq) */
    T_RECORD_PART = 160, /* bytes, Q_LIST_ITEM: a piece of a record continued by
                          * the next T_RECORD_PART or ended by a T_RECORD */
    T_CTL_ALL = 161,    /* u64 1, Q_DELETE: every message */
    T_CTL_SENDER = 162, /* str, Q_DELETE: messages from this sender ("" or MAILER-DAEMON: null) */
    T_CTL_RCPT = 163,   /* str, Q_DELETE: messages with this recipient still to deliver */
    T_CTL_MISSING = 164, /* u64, Q_DONE: ids asked for that are not queued */
    /* bounces and DSN (queue-mgr/bounce.c), range 144-151 */
    T_R_NOTICE = 144,   /* u64, inside T_RCPT: QN_* bits, which notices are done */
    T_R_RELAY = 145,    /* str, inside T_RCPT: the remote MTA that answered last */
    T_NOTICE_KIND = 147, /* u64, envelope: enum qrec_notice, what this message is */
    T_D_RELAY = 148,    /* str, D_RESULT: "host[ip]:port" of the session, or absent */
    T_D_HOP_DSN = 149,  /* u64, D_RESULT: 1 when the next hop offered DSN (RFC 3461 6.2) */
    /* auth (issue 9): tags 152-159 */
    T_A_USER = 152,     /* str, the login name as given; in A_RESULT the mailbox key */
    T_A_PASS = 153,     /* bytes, the password (no NUL) */
    T_A_CLIENT = 154,   /* str, the client's IP address */
    T_A_STATUS = 155,   /* u64, enum auth_status (authproto.h) */
    T_A_DELAY = 156,    /* u64, milliseconds smtpd waits before it says 535 */
    /* local delivery (tags 136-143) */
    T_R_ALIAS = 136,    /* str, inside T_RCPT: the alias this recipient was expanded from */
    T_L_KEY = 137,      /* str, L_QUOTA: the mailbox key (mapdb.h) */
    T_L_SIZE = 138,     /* u64, L_QUOTA: bytes the message will add (0: unknown) */
    T_L_VERDICT = 139,  /* u64, L_QUOTA_REPLY: enum quota_verdict */
    T_L_USED_BYTES = 140, /* u64, L_QUOTA_REPLY: the mailbox's usage */
    T_L_USED_MSGS = 141,  /* u64, L_QUOTA_REPLY */
    T_L_LIMIT_BYTES = 142, /* u64, L_QUOTA_REPLY: the quota (0: none of that kind) */
    T_L_LIMIT_MSGS = 143,  /* u64, L_QUOTA_REPLY */
};

enum {
    D_F_DEST_UNREACHABLE = 1 << 0,
    D_F_DEST_REACHED = 1 << 1,
};

/* Largest body each type may have; 0 for an unknown type (frame refused). */
size_t proto_limit(uint16_t type);

#endif
