/*
 * session.h - one SMTP session of an smtpd worker: its state, its life
 * from accept to close, its I/O driving, and the suspend/resume mechanism.
 *
 * A command that needs an answer from another process (Q_OPEN at DATA, a
 * map look-up at RCPT, an AUTH check) suspends the session with the id of
 * its request and a cancel function. While suspended, no further input is
 * processed (pipelined commands wait in the session's pending input, so
 * replies go out in command order) and the timeout sweep leaves the
 * session alone. The answer's callback replies and calls session_resume(),
 * which goes on with the waiting input. A session that closes while
 * suspended cancels its request, so the callback is never called.
 */
#ifndef POSTERN_SMTPD_SESSION_H
#define POSTERN_SMTPD_SESSION_H

#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "evloop.h"
#include "linereader.h"
#include "throttle.h"
#include "txn.h"

enum port_kind { PORT_SMTP, PORT_SUBMISSION, PORT_SMTPS };
enum session_state { ST_CMD, ST_DATA, ST_BDAT, ST_TLS, ST_CLOSE, ST_AUTH };
enum { CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT, CMD_RSET, CMD_VRFY, CMD_EXPN,
       CMD_NOOP, CMD_QUIT, CMD_HELP, CMD_STARTTLS, CMD_AUTH, CMD_UNKNOWN, CMD_COUNT };

typedef void (*session_cancel_fn)(uint32_t id);

struct session {
    struct conn c;
    uint32_t events;            /* what epoll watches now */
    enum port_kind port;
    enum session_state state;
    int tls_start_pending;
    struct sockaddr_storage peer; /* from accept(), for policy */
    char addr[64];
    char name[96];              /* "unknown[192.0.2.1]" for logs */
    struct linereader lr;
    struct buf pending;         /* input read but not yet processed */
    uint64_t deadline;
    unsigned errors;
    int helo_kind;              /* 0 none, 1 HELO, 2 EHLO */
    char helo[256];
    struct txn txn;
    int suspended;              /* waiting for susp_id */
    uint32_t susp_id;
    session_cancel_fn susp_cancel;
    int stopping;               /* 421 once the current transaction ends */
    unsigned cnt_ok[CMD_COUNT], cnt_all[CMD_COUNT];
    char *auth_user;            /* authenticated identity (mailbox key), NULL when not authenticated */
    const char *auth_mech;      /* "PLAIN" or "LOGIN" once authenticated */
    struct authx *authx;        /* an AUTH exchange in progress (authcmd.c) */
    struct throttle_state lim;  /* limits against abuse (throttle.h) */
    struct session *prev, *next;
};

/* The loop and configuration sessions use (at start, and on reload). */
void session_init(struct evloop *ev, const struct config *cfg);
const struct config *session_config(void);
/* A connection accepted on a listener of that kind: greets it (or starts
 * the TLS handshake on smtps). NULL if out of memory (fd is closed). */
struct session *session_start(int fd, enum port_kind kind, const struct sockaddr_storage *peer, const char *ip);
/* Stop accepting. drain=1: let sessions finish as they like (reload);
 * drain=0: tell idle sessions 421 now, finish transactions in flight. */
void session_shutdown(int drain);
unsigned session_count(void);
/* Periodic sweep (timeouts); call about once a second. */
void session_tick(void);

/* The 220 banner. */
void session_greet(struct session *s);
/* One reply line (CRLF added). Counts errors: too many closes the session. */
void session_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* No input is processed now: suspended, closing, in a TLS handshake, or
 * too much output unsent. */
int session_paused(const struct session *s);
void session_suspend(struct session *s, session_cancel_fn cancel, uint32_t id);
/* From the answer's callback, after its reply. s may be gone on return. */
void session_resume(struct session *s);

#endif
