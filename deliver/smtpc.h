/*
 * smtpc.h - the SMTP client engine: one session to one destination host,
 * event-driven on the process's evloop, many at once, never blocking.
 *
 *   smtpc_start()   connects to the host's addresses (Happy Eyeballs,
 *                   connect.h), reads the greeting, EHLO (HELO fallback),
 *                   STARTTLS when offered and allowed, AUTH when given
 *                   credentials, then runs the first message's transaction.
 *   done callback   once per message: every recipient has its result and
 *                   the message an outcome (smtpc_outcome). Inside it or
 *                   later the caller either hands the session the next
 *                   message for the same host (smtpc_send, after RSET) or
 *                   ends it (smtpc_quit). A session that cannot be reused
 *                   says so (smtpc_reusable) and frees itself on quit.
 *
 * The caller owns the messages and the recipient arrays; the engine only
 * writes the result fields. The message content is read from msg->fd at
 * msg->offset with pread in 64 KiB blocks (the spool's CRLF lines).
 * The process must ignore SIGPIPE (SSL_write to a peer that went away).
 * The engine never decides about retries: it reports what happened (for a
 * session-level failure, "try the next MX" or "TLS failed, retry plain").
 *
 * LMTP (RFC 2033) is the same engine with cfg.lmtp set: LHLO instead of
 * EHLO (no HELO fallback), and after the final dot one reply for each
 * recipient whose RCPT was accepted, in RCPT order, each applied to that
 * recipient alone (2xx sent, 4xx deferred, 5xx bounced). The destination
 * may then be a UNIX socket: dest.addr[0] an AF_UNIX address, dest.host its
 * path, logged as relay=PATH.
 */
#ifndef POSTERN_DELIVER_SMTPC_H
#define POSTERN_DELIVER_SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "evloop.h"

#define SMTPC_MAX_ADDRS   16
#define SMTPC_REPLY_TEXT  512   /* reply text kept per recipient */

struct smtpc_timeouts {         /* milliseconds; Postfix's defaults */
    unsigned connect;           /* 30 s */
    unsigned greeting;          /* 300 s */
    unsigned helo;              /* 300 s (EHLO, HELO, STARTTLS, AUTH) */
    unsigned mail;              /* 300 s */
    unsigned rcpt;              /* 300 s */
    unsigned data_init;         /* 120 s (the 354) */
    unsigned data_xfer;         /* 180 s (each block written) */
    unsigned data_done;         /* 600 s (the reply to the final dot) */
    unsigned rset;              /* 300 s */
    unsigned quit;              /* 300 s */
    unsigned idle;              /* 2 s (Postfix's connection cache time):
                                   an idle session QUITs after it and is no
                                   longer reusable (0: no limit) */
    unsigned eyeballs;          /* 250 ms: head start before the next address */
};
void smtpc_default_timeouts(struct smtpc_timeouts *t);

enum smtpc_tls_policy {
    SMTPC_TLS_NONE,             /* never STARTTLS */
    SMTPC_TLS_MAY,              /* opportunistic: when offered, unverified */
    SMTPC_TLS_ENCRYPT,          /* required: no STARTTLS is a deferral */
};

struct ssl_st;
struct smtpc;
/* Verification hook for a later policy (DANE, MTA-STS): called after the
 * handshake; return 1 if the peer is trusted/verified, 0 if not (the
 * session is then ended with SMTPC_TLS_FAILED when tls_require_verified). */
typedef int (*smtpc_tls_check)(struct ssl_st *ssl, const char *host, void *arg);

struct smtpc_config {
    const char *helo_name;
    struct smtpc_timeouts t;
    enum smtpc_tls_policy tls;
    smtpc_tls_check tls_check;
    void *tls_check_arg;
    int tls_require_verified;
    int lmtp;                   /* speak LMTP (RFC 2033), see above */
    const char *auth_user;      /* relayhost credentials: AUTH over TLS only */
    const char *auth_pass;
    /* one session log line (delivery, TLS, warnings); NULL: log_info */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* when a session is freed (after QUIT or a failure); arg is the done
     * callback's arg. May be NULL. */
    void (*closed)(struct smtpc *s, void *arg);
};

struct smtpc_dest {
    char host[256];             /* the MX host name, or the UNIX socket's path */
    unsigned port;
    struct sockaddr_storage addr[SMTPC_MAX_ADDRS];
    size_t naddr;
};

enum smtpc_status { SMTPC_PENDING, SMTPC_SENT, SMTPC_DEFERRED, SMTPC_BOUNCED };

struct smtpc_rcpt {
    const char *addr;           /* without <> */
    const char *notify;         /* "SUCCESS,FAILURE" / "NEVER" or NULL */
    const char *orcpt;          /* "rfc822;user@example" or NULL */
    /* results */
    enum smtpc_status status;
    char dsn[16];               /* the server's enhanced code, else 2.0.0/4.0.0/
                                   5.0.0 by class; ours: 4.4.1 connect failure,
                                   4.4.2 lost or timed out (as Postfix), 4.5.0
                                   malformed reply, 4.7.x TLS/AUTH */
    char reply[SMTPC_REPLY_TEXT];  /* sanitised "550 5.1.1 no such user" or our reason */
};

struct smtpc_msg {
    int fd;                     /* read-only spool descriptor */
    off_t offset;               /* where the content starts */
    uint64_t size;              /* content bytes */
    const char *sender;         /* "" for the null sender */
    int body_8bit;              /* BODY=8BITMIME at receipt */
    int smtputf8;               /* SMTPUTF8 at receipt */
    const char *ret;            /* DSN RET=FULL|HDRS or NULL */
    const char *envid;          /* DSN ENVID (xtext) or NULL */
    struct smtpc_rcpt *rcpt;
    size_t nrcpt;
    /* results */
    char relay[320];            /* "host[ip]:port", or the UNIX socket's path */
    uint64_t delay_conn_ms;     /* connection set-up (Postfix delays c) */
    uint64_t delay_xfer_ms;     /* transmission (delays d) */
};

enum smtpc_outcome {
    SMTPC_DONE,        /* the final dot was answered: look at each
                          recipient (sent, or its own RCPT refusal) */
    SMTPC_NEXT_MX,     /* host failure before the final dot (refused,
                          connect timeout, 4xx/421 greeting or EHLO, lost
                          or timed out, malformed reply, TLS required but
                          absent, AUTH failed): try the next MX. Open
                          recipients are deferred with the reason (bounced
                          for a 5xx greeting/EHLO: the caller bounces only
                          when no MX takes the mail) */
    SMTPC_TLS_FAILED,  /* the STARTTLS handshake failed: retry in plain text */
    SMTPC_NO_SMTPUTF8, /* SMTPUTF8 mail, the server lacks it: next MX, then
                          bounce 5.6.7; recipients set deferred 4.6.7 */
    SMTPC_FAILED,      /* the transaction ran but did not deliver to all:
                          MAIL or DATA refused, no recipient accepted,
                          SIZE too large (5.3.4), unconvertible 8-bit
                          (5.6.3), or the connection lost after the final
                          dot (the message may have been delivered: 4.4.2).
                          Each recipient carries its own result */
};

struct smtpc;
typedef void (*smtpc_done_cb)(struct smtpc *s, struct smtpc_msg *m, enum smtpc_outcome o, void *arg);

/* Starts a session and its first message; NULL on allocation failure.
 * cfg and dest are copied (strings in cfg must outlive the session). */
struct smtpc *smtpc_start(struct evloop *ev, const struct smtpc_config *cfg,
                          const struct smtpc_dest *dest, struct smtpc_msg *m,
                          smtpc_done_cb cb, void *arg);
/* 1 if the session can take another message now. */
int smtpc_reusable(const struct smtpc *s);
/* The next message over the same connection (RSET first); -1 if not reusable. */
int smtpc_send(struct smtpc *s, struct smtpc_msg *m);
/* QUIT and free (asynchronously; no callback follows). Safe in the done
 * callback. */
void smtpc_quit(struct smtpc *s);
/* Closes and frees at once, no QUIT, no done callback (the closed hook
 * runs): for a process that is exiting. Never inside a callback. */
void smtpc_abort(struct smtpc *s);
/* Messages sent over this connection so far. */
unsigned smtpc_messages(const struct smtpc *s);
/* Did a TCP connection succeed; did the server's 220 greeting come; is the
 * connection encrypted now; the peer's numeric address, or the UNIX
 * socket's path ("" before). */
int smtpc_connected(const struct smtpc *s);
int smtpc_greeted(const struct smtpc *s);
int smtpc_tls_active(const struct smtpc *s);
const char *smtpc_peer_ip(const struct smtpc *s);

/* "to=<…>, relay=…, delay=…, delays=a/b/c/d, dsn=…, status=… (…)" for the
 * SPEC §6 log line; a and b (queue times) and the total come from the
 * caller. */
void smtpc_format_result(const struct smtpc_msg *m, const struct smtpc_rcpt *r,
                         double delay_total, double a, double b, char *out, size_t outlen);

/* The client TLS context, made once (TLS 1.2+, no verification unless a
 * check asks for the chain); -1 with err. */
int smtpc_tls_init(const char *ca_file, char *err, size_t errlen);

#endif
