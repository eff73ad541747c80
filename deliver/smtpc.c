/*
 * smtpc.c - the SMTP client session state machine (smtpc.h).
 *
 * One session: connect (connect.c), greeting, EHLO/HELO, STARTTLS
 * (tlsc.c), AUTH, then transactions: MAIL, RCPT..., DATA, the body
 * (dotstuff.c, mime8.c), the final dot, RSET between messages, QUIT.
 * Replies come from the bounded parser (reply.c); every phase has its
 * timer. LMTP (cfg.lmtp) differs in two places only: LHLO for EHLO, and
 * one reply per accepted recipient after the final dot (lmtp_dot_reply).
 * It must never block, never grow a buffer past its limit, never apply
 * one recipient's reply to another, and never send a message it could
 * not send unchanged (8-bit to a 7-bit server).
 */
#include "smtpc.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "connect.h"
#include "dotstuff.h"
#include "log.h"
#include "tlserr.h"
#include "mime8.h"
#include "net.h"
#include "reply.h"
#include "tlsc.h"
#include "util.h"

#define BLOCK     65536             /* spool read size */
#define OUT_MAX   (4u << 20)        /* pending output of one session */
#define CONV_MAX  (1u << 20)        /* converted block before stuffing */

enum phase {
    P_CONNECT, P_GREETING, P_EHLO, P_HELO, P_STARTTLS, P_TLS, P_AUTH_PLAIN,
    P_AUTH_LOGIN_USER, P_AUTH_LOGIN_PASS, P_AUTH_DONE, P_MAIL, P_RCPT, P_DATA,
    P_BODY, P_DOT, P_IDLE, P_RSET, P_QUIT, P_DEAD,
};

static const char *const phase_what[] = {
    [P_CONNECT] = "connecting",
    [P_GREETING] = "receiving the initial server greeting",
    [P_EHLO] = "performing the EHLO handshake",
    [P_HELO] = "performing the HELO handshake",
    [P_STARTTLS] = "sending STARTTLS",
    [P_TLS] = "performing the TLS handshake",
    [P_AUTH_PLAIN] = "performing AUTH",
    [P_AUTH_LOGIN_USER] = "performing AUTH",
    [P_AUTH_LOGIN_PASS] = "performing AUTH",
    [P_AUTH_DONE] = "performing AUTH",
    [P_MAIL] = "sending MAIL FROM",
    [P_RCPT] = "sending RCPT TO",
    [P_DATA] = "sending DATA command",
    [P_BODY] = "sending message body",
    [P_DOT] = "sending end of data -- message may be sent more than once",
    [P_IDLE] = "waiting for the next message",
    [P_RSET] = "sending RSET",
    [P_QUIT] = "sending QUIT",
    [P_DEAD] = "closing",
};

enum {
    F_PIPELINING = 1 << 0, F_SIZE = 1 << 1, F_8BITMIME = 1 << 2, F_SMTPUTF8 = 1 << 3,
    F_DSN = 1 << 4, F_STARTTLS = 1 << 5, F_AUTH = 1 << 6, F_CHUNKING = 1 << 7,
    F_AUTH_PLAIN = 1 << 8, F_AUTH_LOGIN = 1 << 9,
};

struct smtpc {
    struct evloop *ev;
    struct smtpc_config cfg;
    struct smtpc_dest dest;
    smtpc_done_cb cb;
    void *arg;
    enum phase phase;
    struct hev *hev;
    int fd;
    SSL *ssl;
    int ssl_want_write;
    int ssl_fatal;                   /* SSL_ERROR_SSL/SYSCALL seen: no SSL_shutdown */
    uint32_t events;
    struct sockaddr_storage peer;
    char ip[112];                    /* numeric address, or the UNIX path */
    char relay[320];
    char hostip[320];                /* "host[ip]" for messages */
    struct reply_parser rp;
    size_t unread;                   /* bytes left in the read after the last reply */
    struct buf out;
    uint64_t timer;
    uint64_t armed_at;               /* when the data_xfer timer was last set */
    unsigned feat;
    uint64_t size_max;
    int esmtp;
    /* the message in progress */
    struct smtpc_msg *m;
    int pipelined;
    int mail_failed;
    size_t *order;                   /* indexes of the recipients sent, in order */
    size_t nsent;
    size_t rcpt_next;                /* next of order[] to send (unpipelined) */
    size_t rcpt_reply;               /* next of order[] whose reply is due */
    size_t naccepted;
    size_t lmtp_next;                /* LMTP: next of order[] whose dot reply is due */
    int empty_data;                  /* "." sent after a 354 with no valid recipient */
    int rset_then_done;              /* RSET ends a failed transaction */
    enum smtpc_outcome pending_outcome;
    int convert;
    struct mime8 *mime;
    struct buf conv;
    struct dotstuff ds;
    uint64_t pos;
    int body_eof;
    uint64_t t_msg, t_tx;
    unsigned nmsgs;
    int tls_done;
    int connected;                   /* a TCP connection was made */
    int greeted;                     /* the server's 220 came */
    /* lifetime */
    int busy;                        /* inside a callback of ours */
    int free_me;
    int quit_req;
    int idle_quit;                   /* QUIT after the idle limit: keep the struct */
};

static char rbuf[BLOCK];            /* spool blocks */
static char inbuf[16384];           /* server replies (never reused while parsing) */

/* snprintf that truncates quietly (every text here is bounded on purpose)
 * and returns the bytes written, never more than outlen - 1. */
static int sfmt(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sfmt(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n >= outlen ? (int)outlen - 1 : n;
}
static char sbuf[2 * CONV_MAX + 16];

void smtpc_default_timeouts(struct smtpc_timeouts *t)
{
    t->connect = 30000;
    t->greeting = 300000;
    t->helo = 300000;
    t->mail = 300000;
    t->rcpt = 300000;
    t->data_init = 120000;
    t->data_xfer = 180000;
    t->data_done = 600000;
    t->rset = 300000;
    t->quit = 300000;
    t->idle = 2000;
    t->eyeballs = 250;
}

int smtpc_tls_init(const char *ca_file, char *err, size_t errlen)
{
    return tlsc_init(ca_file, err, errlen);
}

static void slog(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slog(struct smtpc *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (s->cfg.log)
        s->cfg.log(s->cfg.log_arg, line);
    else
        log_info("%s", line);
}

/* ------------------------------------------------------------------ */
/* lifetime and timers                                                 */

static void on_timer(struct evloop *ev, void *arg);
static void on_io(struct evloop *ev, int fd, uint32_t events, void *arg);

static void set_timer(struct smtpc *s, unsigned ms)
{
    if (s->timer)
        ev_timer_cancel(s->ev, s->timer);
    s->timer = ms ? ev_timer(s->ev, ms, on_timer, s) : 0;
}

/* Between messages: the connection waits at most t.idle for the next one. */
static void go_idle(struct smtpc *s)
{
    s->phase = P_IDLE;
    set_timer(s, s->cfg.t.idle);
}

static void close_conn(struct smtpc *s)
{
    if (s->hev) {
        hev_cancel(s->hev);
        s->hev = NULL;
    }
    if (s->ssl) {
        /* one non-blocking close_notify; the peer's answer is not awaited */
        if (s->phase != P_TLS && s->phase != P_DEAD && !s->ssl_fatal) {
            ERR_clear_error();
            SSL_shutdown(s->ssl);
            ERR_clear_error();
        }
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        ev_del(s->ev, s->fd);
        close(s->fd);
        s->fd = -1;
    }
    set_timer(s, 0);
    buf_reset(&s->out);
    s->phase = P_DEAD;
}

static void free_conv(struct smtpc *s)
{
    if (s->mime) {
        mime8_free(s->mime);
        free(s->mime);
        s->mime = NULL;
    }
    buf_free(&s->conv);
}

static void destroy(struct smtpc *s)
{
    if (s->busy) {
        s->free_me = 1;
        return;
    }
    close_conn(s);
    free_conv(s);
    free(s->order);
    buf_free(&s->out);
    if (s->cfg.closed)
        s->cfg.closed(s, s->arg);
    free(s);
}

/* ------------------------------------------------------------------ */
/* results                                                             */

static void derive_dsn(int code, const char *enh, char *out)
{
    if (enh && enh[0])
        sfmt(out, 16, "%s", enh);
    else
        sfmt(out, 16, "%d.0.0", code >= 500 ? 5 : code >= 400 ? 4 : 2);
}

/* "host H[IP] said: 550 5.1.1 text (in reply to RCPT TO command)". */
static void remote_text(struct smtpc *s, const struct reply *r, const char *cmd, char *out, size_t outlen)
{
    char text[600], clean[600];
    size_t n = r->textlen < sizeof(text) - 1 ? r->textlen : sizeof(text) - 1;

    memcpy(text, r->text, n);
    for (size_t i = 0; i < n; i++)
        if (text[i] == '\n')
            text[i] = ' ';
    log_sanitize(text, n, clean, sizeof(clean));
    if (cmd)
        sfmt(out, outlen, "host %s said: %d %s (in reply to %s command)", s->hostip, r->code, clean, cmd);
    else
        sfmt(out, outlen, "%d %s", r->code, clean);
}

static void set_rcpt(struct smtpc_rcpt *rc, enum smtpc_status st, const char *dsn, const char *text)
{
    rc->status = st;
    sfmt(rc->dsn, sizeof(rc->dsn), "%s", dsn);
    sfmt(rc->reply, sizeof(rc->reply), "%s", text);
}

/* A reply applied to one recipient. Only a 2xx to the end of DATA means
 * sent; a 5xx is a bounce; anything else (4xx, or a 2xx/3xx where a
 * refusal was expected) defers. */
static void rcpt_from_reply(struct smtpc *s, struct smtpc_rcpt *rc, const struct reply *r, const char *cmd)
{
    char dsn[16], text[SMTPC_REPLY_TEXT];
    int sent = r->code / 100 == 2 && !strcmp(cmd, "end of DATA");
    enum smtpc_status st = sent ? SMTPC_SENT : r->code >= 500 ? SMTPC_BOUNCED : SMTPC_DEFERRED;

    derive_dsn(r->code, r->enh, dsn);
    if (st == SMTPC_DEFERRED && dsn[0] != '4')
        sfmt(dsn, sizeof(dsn), "4.5.0");
    remote_text(s, r, sent ? NULL : cmd, text, sizeof(text));
    set_rcpt(rc, st, dsn, text);
}

/* Every recipient still open gets st/dsn/text. */
static void rest_of_rcpts(struct smtpc *s, enum smtpc_status st, const char *dsn, const char *text)
{
    if (!s->m)
        return;
    for (size_t i = 0; i < s->m->nrcpt; i++)
        if (s->m->rcpt[i].status == SMTPC_PENDING)
            set_rcpt(&s->m->rcpt[i], st, dsn, text);
}

static void start_quit(struct smtpc *s);

/* The message is finished: hand it back. */
static void msg_done(struct smtpc *s, enum smtpc_outcome o)
{
    struct smtpc_msg *m = s->m;

    free_conv(s);
    free(s->order);
    s->order = NULL;
    s->nsent = 0;
    if (!m)
        return;
    uint64_t now = now_ms();
    if (!s->t_tx)
        s->t_tx = now;
    m->delay_conn_ms = s->t_tx - s->t_msg;
    m->delay_xfer_ms = now - s->t_tx;
    sfmt(m->relay, sizeof(m->relay), "%s", s->relay);
    m->dsn_offered = (s->feat & F_DSN) != 0;
    s->m = NULL;
    s->busy++;
    s->cb(s, m, o, s->arg);
    s->busy--;
    if (s->quit_req && !s->free_me)
        start_quit(s);
}

/* A session-level failure: the connection is gone; open recipients get
 * the reason. */
static void fail_session(struct smtpc *s, enum smtpc_outcome o, enum smtpc_status st,
                         const char *dsn, const char *text)
{
    slog(s, "%s", text);
    close_conn(s);
    rest_of_rcpts(s, st, dsn, text);
    msg_done(s, o);
}

/* Lost, timed out or garbled while in the current phase: "{pre} HOST[IP]{post}
 * while {what}". */
static void conversation_failed(struct smtpc *s, const char *pre, const char *post, const char *dsn)
{
    char text[SMTPC_REPLY_TEXT];
    enum phase ph = s->phase;
    enum smtpc_outcome o = ph == P_DOT ? SMTPC_FAILED : ph == P_TLS ? SMTPC_TLS_FAILED : SMTPC_NEXT_MX;

    sfmt(text, sizeof(text), "%s %s%s while %s", pre, s->hostip, post,
         s->cfg.lmtp && ph == P_EHLO ? "performing the LHLO handshake" : phase_what[ph]);
    if (ph == P_IDLE || ph == P_QUIT || !s->m) {
        /* nothing in flight: the connection just ends */
        if (ph != P_QUIT)
            slog(s, "%s", text);
        close_conn(s);
        if (ph == P_QUIT && !s->idle_quit)
            destroy(s);
        return;
    }
    if (ph == P_RSET && s->rset_then_done) {
        close_conn(s);
        msg_done(s, s->pending_outcome);
        return;
    }
    fail_session(s, o, SMTPC_DEFERRED, dsn, text);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static void want(struct smtpc *s)
{
    uint32_t ev = EPOLLIN;

    if (s->fd < 0)
        return;
    if (s->out.len > 0 || s->ssl_want_write || (s->phase == P_BODY && !s->body_eof))
        ev |= EPOLLOUT;
    if (ev != s->events) {
        ev_mod(s->ev, s->fd, ev);
        s->events = ev;
    }
}

/* Writes what it can; 0 (maybe more pending), -1 on a dead connection. */
static int flush(struct smtpc *s)
{
    while (s->out.len > 0) {
        ssize_t n;
        if (s->ssl) {
            ERR_clear_error();
            int r = SSL_write(s->ssl, buf_head(&s->out), s->out.len > INT32_MAX ? INT32_MAX : (int)s->out.len);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    return 0;
                s->ssl_fatal = e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL;
                return -1;
            }
            n = r;
        } else {
            n = send(s->fd, buf_head(&s->out), s->out.len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                return -1;
            }
        }
        buf_consume(&s->out, (size_t)n);
        if (s->phase == P_BODY) {
            /* re-arming costs a walk of the timer list: at most once a second */
            uint64_t now = now_ms();
            if (now - s->armed_at >= 1000) {
                set_timer(s, s->cfg.t.data_xfer);
                s->armed_at = now;
            }
        }
    }
    return 0;
}

static int cmd(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cmd(struct smtpc *s, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 2)
        return -1;
    memcpy(line + n, "\r\n", 2);
    return buf_append(&s->out, line, (size_t)n + 2);
}

/* ------------------------------------------------------------------ */
/* the transaction                                                     */

static int has_8bit_ok(struct smtpc *s, char *why, size_t whylen)
{
    struct mime8 *m = malloc(sizeof(*m));
    struct buf scratch;
    uint64_t pos = 0;
    int rc = 0;

    if (!m) {
        sfmt(why, whylen, "out of memory");
        return -1;
    }
    mime8_init(m);
    buf_init(&scratch, CONV_MAX);
    while (pos < s->m->size && rc == 0) {
        size_t want_n = s->m->size - pos < BLOCK ? (size_t)(s->m->size - pos) : BLOCK;
        ssize_t n = pread(s->m->fd, rbuf, want_n, s->m->offset + (off_t)pos);
        if (n <= 0) {
            sfmt(why, whylen, "cannot read the message: %s", n < 0 ? strerror(errno) : "short file");
            rc = -1;
            break;
        }
        pos += (uint64_t)n;
        if (mime8_feed(m, rbuf, (size_t)n, &scratch) < 0) {
            sfmt(why, whylen, "%s", m->err);
            rc = -1;
        }
        buf_reset(&scratch);
    }
    if (rc == 0 && mime8_finish(m, &scratch) < 0) {
        sfmt(why, whylen, "%s", m->err);
        rc = -1;
    }
    buf_free(&scratch);
    mime8_free(m);
    free(m);
    return rc;
}

static int send_rcpt(struct smtpc *s, size_t i)
{
    const struct smtpc_rcpt *r = &s->m->rcpt[i];
    char params[600] = "";
    size_t o = 0;

    if (s->feat & F_DSN) {
        if (r->notify && r->notify[0])
            o += (size_t)sfmt(params + o, sizeof(params) - o, " NOTIFY=%s", r->notify);
        if (r->orcpt && r->orcpt[0] && o < sizeof(params))
            sfmt(params + o, sizeof(params) - o, " ORCPT=%s", r->orcpt);
    }
    return cmd(s, "RCPT TO:<%s>%s", r->addr, params);
}

/* An envelope string that can go into a command: no control bytes (a
 * CR LF in it would inject commands), and for parameters no space. */
static int envelope_ok(const char *v, int is_param)
{
    if (!v)
        return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (is_param && *p == ' ') || (!is_param && (*p == '<' || *p == '>')))
            return 0;
    return strlen(v) <= 1000;
}

static void begin_tx(struct smtpc *s)
{
    struct smtpc_msg *m = s->m;
    char params[512] = "", why[200], text[SMTPC_REPLY_TEXT];
    size_t o = 0;

    s->t_tx = now_ms();
    s->pipelined = (s->feat & F_PIPELINING) != 0;
    s->mail_failed = 0;
    s->rcpt_next = s->rcpt_reply = s->naccepted = s->lmtp_next = 0;
    s->empty_data = 0;
    s->rset_then_done = 0;
    s->convert = 0;
    s->body_eof = 0;
    s->pos = 0;
    for (size_t i = 0; i < m->nrcpt; i++) {
        m->rcpt[i].status = SMTPC_PENDING;
        m->rcpt[i].dsn[0] = m->rcpt[i].reply[0] = '\0';
    }
    free(s->order);
    s->nsent = 0;
    s->order = calloc(m->nrcpt ? m->nrcpt : 1, sizeof(*s->order));
    if (!s->order) {
        rest_of_rcpts(s, SMTPC_DEFERRED, "4.3.0", "out of memory");
        go_idle(s);
        msg_done(s, SMTPC_FAILED);
        return;
    }
    if (!envelope_ok(m->sender, 0) || !envelope_ok(m->ret, 1) || !envelope_ok(m->envid, 1)) {
        rest_of_rcpts(s, SMTPC_BOUNCED, "5.1.7", "invalid sender address or DSN parameter (not sent)");
        go_idle(s);
        msg_done(s, SMTPC_FAILED);
        return;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        struct smtpc_rcpt *rc = &m->rcpt[i];
        if (!rc->addr || !envelope_ok(rc->addr, 0) || !envelope_ok(rc->notify, 1) || !envelope_ok(rc->orcpt, 1))
            set_rcpt(rc, SMTPC_BOUNCED, "5.1.3", "invalid recipient address or DSN parameter (not sent)");
        else
            s->order[s->nsent++] = i;
    }
    if (s->nsent == 0) {
        go_idle(s);
        msg_done(s, SMTPC_FAILED);
        return;
    }
    if ((s->feat & F_SIZE) && s->size_max && m->size > s->size_max) {
        sfmt(text, sizeof(text), "message size %" PRIu64 " exceeds size limit %" PRIu64 " of server %s",
                 m->size, s->size_max, s->hostip);
        rest_of_rcpts(s, SMTPC_BOUNCED, "5.3.4", text);
        go_idle(s);
        msg_done(s, SMTPC_FAILED);
        return;
    }
    if (m->smtputf8 && !(s->feat & F_SMTPUTF8)) {
        sfmt(text, sizeof(text), "SMTPUTF8 is required, but was not offered by host %s", s->hostip);
        rest_of_rcpts(s, SMTPC_DEFERRED, "4.6.7", text);
        go_idle(s);
        msg_done(s, SMTPC_NO_SMTPUTF8);
        return;
    }
    if (m->body_8bit && !(s->feat & F_8BITMIME)) {
        if (has_8bit_ok(s, why, sizeof(why)) < 0) {
            sfmt(text, sizeof(text), "host %s does not support 8BITMIME and the message cannot be "
                     "converted to 7 bits (%s)", s->hostip, why);
            rest_of_rcpts(s, SMTPC_BOUNCED, "5.6.3", text);
            go_idle(s);
            msg_done(s, SMTPC_FAILED);
            return;
        }
        s->convert = 1;
    }
    if (s->feat & F_SIZE)
        o += (size_t)sfmt(params + o, sizeof(params) - o, " SIZE=%" PRIu64, m->size);
    if (m->body_8bit && (s->feat & F_8BITMIME))
        o += (size_t)sfmt(params + o, sizeof(params) - o, " BODY=8BITMIME");
    if (m->smtputf8)
        o += (size_t)sfmt(params + o, sizeof(params) - o, " SMTPUTF8");
    if ((s->feat & F_DSN) && m->ret && m->ret[0] && o < sizeof(params))
        o += (size_t)sfmt(params + o, sizeof(params) - o, " RET=%s", m->ret);
    if ((s->feat & F_DSN) && m->envid && m->envid[0] && o < sizeof(params))
        sfmt(params + o, sizeof(params) - o, " ENVID=%s", m->envid);
    int bad = cmd(s, "MAIL FROM:<%s>%s", m->sender ? m->sender : "", params) < 0;
    if (s->pipelined) {
        for (size_t k = 0; k < s->nsent && !bad; k++)
            bad = send_rcpt(s, s->order[k]) < 0;
        s->rcpt_next = s->nsent;
        if (!bad)
            bad = cmd(s, "DATA") < 0;
    }
    if (bad) {
        rest_of_rcpts(s, SMTPC_DEFERRED, "4.3.0", "cannot build the SMTP commands (too long)");
        go_idle(s);
        buf_reset(&s->out);
        msg_done(s, SMTPC_FAILED);
        return;
    }
    s->phase = P_MAIL;
    set_timer(s, s->cfg.t.mail);
}

/* After a failed transaction: RSET, then the callback. */
static void rset_and_done(struct smtpc *s, enum smtpc_outcome o)
{
    s->rset_then_done = 1;
    s->pending_outcome = o;
    s->phase = P_RSET;
    cmd(s, "RSET");
    set_timer(s, s->cfg.t.rset);
}

/* Appends the next block of the body (converted and stuffed). */
static int fill_body(struct smtpc *s)
{
    struct smtpc_msg *m = s->m;

    while (s->out.len < BLOCK && !s->body_eof) {
        size_t n = 0;
        if (s->pos < m->size) {
            size_t want_n = m->size - s->pos < BLOCK ? (size_t)(m->size - s->pos) : BLOCK;
            ssize_t r = pread(m->fd, rbuf, want_n, m->offset + (off_t)s->pos);
            if (r <= 0)
                return -1;
            n = (size_t)r;
            s->pos += n;
        }
        const char *src = rbuf;
        size_t srclen = n;
        if (s->convert) {
            if (!s->mime) {
                s->mime = malloc(sizeof(*s->mime));
                if (!s->mime)
                    return -1;
                mime8_init(s->mime);
                buf_init(&s->conv, CONV_MAX);
            }
            buf_reset(&s->conv);
            if (mime8_feed(s->mime, rbuf, n, &s->conv) < 0 ||
                (s->pos >= m->size && mime8_finish(s->mime, &s->conv) < 0))
                return -1;
            src = s->conv.len ? buf_head(&s->conv) : "";
            srclen = s->conv.len;
        }
        size_t o = srclen ? dotstuff_block(&s->ds, src, srclen, sbuf) : 0;
        if (s->pos >= m->size) {
            o += dotstuff_finish(&s->ds, sbuf + o);
            s->body_eof = 1;
        }
        if (buf_append(&s->out, sbuf, o) < 0)
            return -1;
    }
    return 0;
}

static void body_step(struct smtpc *s)
{
    if (fill_body(s) < 0) {
        char text[SMTPC_REPLY_TEXT];
        sfmt(text, sizeof(text), "cannot send the message body to %s (spool read or conversion failed)",
                 s->hostip);
        fail_session(s, SMTPC_FAILED, SMTPC_DEFERRED, "4.3.0", text);
        return;
    }
    if (s->body_eof && s->phase == P_BODY) {
        s->phase = P_DOT;
        /* the dot's reply timer starts once everything is written (see on_io) */
    }
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

static void parse_ehlo(struct smtpc *s, const struct reply *r)
{
    s->feat = 0;
    s->size_max = 0;
    for (unsigned i = 1; i < r->nlines; i++) {
        size_t len;
        const char *l = reply_line(r, i, &len);
        char kw[64];
        size_t k = 0;
        if (!l)
            break;
        while (k < len && k < sizeof(kw) - 1 && l[k] != ' ' && l[k] != '=') {
            kw[k] = (char)(l[k] >= 'a' && l[k] <= 'z' ? l[k] - 32 : l[k]);
            k++;
        }
        kw[k] = '\0';
        const char *rest = l + k;
        size_t restlen = len - k;
        if (!strcmp(kw, "PIPELINING"))
            s->feat |= F_PIPELINING;
        else if (!strcmp(kw, "8BITMIME"))
            s->feat |= F_8BITMIME;
        else if (!strcmp(kw, "SMTPUTF8"))
            s->feat |= F_SMTPUTF8;
        else if (!strcmp(kw, "DSN"))
            s->feat |= F_DSN;
        else if (!strcmp(kw, "STARTTLS"))
            s->feat |= F_STARTTLS;
        else if (!strcmp(kw, "CHUNKING"))
            s->feat |= F_CHUNKING;
        else if (!strcmp(kw, "SIZE")) {
            char num[24];
            size_t j = 0;
            s->feat |= F_SIZE;
            while (restlen > 0 && *rest == ' ')
                rest++, restlen--;
            while (j < restlen && j < sizeof(num) - 1 && rest[j] >= '0' && rest[j] <= '9') {
                num[j] = rest[j];
                j++;
            }
            num[j] = '\0';
            uint64_t v;
            if (j > 0 && parse_u64(num, &v) == 0)
                s->size_max = v;
        } else if (!strcmp(kw, "AUTH")) {
            s->feat |= F_AUTH;
            char mech[32];
            size_t j = 0;
            for (size_t x = 0; x <= restlen; x++) {
                char c = x < restlen ? rest[x] : ' ';
                if (c == ' ' || c == '=') {
                    mech[j] = '\0';
                    if (!strcasecmp(mech, "PLAIN"))
                        s->feat |= F_AUTH_PLAIN;
                    if (!strcasecmp(mech, "LOGIN"))
                        s->feat |= F_AUTH_LOGIN;
                    j = 0;
                } else if (j < sizeof(mech) - 1) {
                    mech[j++] = c;
                }
            }
        }
    }
}

static void b64(const char *in, size_t len, char *out, size_t outlen)
{
    if (outlen < 4 * ((len + 2) / 3) + 1) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
}

/* After EHLO/HELO (and TLS): TLS, AUTH or the first transaction. */
static void after_helo(struct smtpc *s)
{
    char text[SMTPC_REPLY_TEXT];

    if (!s->ssl && (s->feat & F_STARTTLS) && s->cfg.tls != SMTPC_TLS_NONE && !s->tls_done) {
        cmd(s, "STARTTLS");
        s->phase = P_STARTTLS;
        set_timer(s, s->cfg.t.helo);
        return;
    }
    if (!s->ssl && s->cfg.tls == SMTPC_TLS_ENCRYPT) {
        sfmt(text, sizeof(text), "TLS is required, but was not offered by host %s", s->hostip);
        fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.7.4", text);
        return;
    }
    if (s->cfg.auth_user && s->cfg.auth_user[0]) {
        const char *u = s->cfg.auth_user, *p = s->cfg.auth_pass ? s->cfg.auth_pass : "";
        if (!s->ssl) {
            sfmt(text, sizeof(text), "refusing to send credentials to %s without TLS", s->hostip);
            fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.7.0", text);
            return;
        }
        if (strlen(u) > 500 || strlen(p) > 500) {
            fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.7.0", "AUTH credentials too long");
            return;
        }
        if (s->feat & F_AUTH_PLAIN) {
            char raw[1024], enc[1400];
            size_t ul = strlen(u), pl = strlen(p);   /* <= 500 each: fits */
            raw[0] = '\0';
            memcpy(raw + 1, u, ul);
            raw[1 + ul] = '\0';
            memcpy(raw + 2 + ul, p, pl);
            int n = (int)(ul + pl + 2);
            b64(raw, (size_t)n, enc, sizeof(enc));
            OPENSSL_cleanse(raw, sizeof(raw));
            cmd(s, "AUTH PLAIN %s", enc);
            OPENSSL_cleanse(enc, sizeof(enc));
            s->phase = P_AUTH_PLAIN;
        } else if (s->feat & F_AUTH_LOGIN) {
            cmd(s, "AUTH LOGIN");
            s->phase = P_AUTH_LOGIN_USER;
        } else {
            sfmt(text, sizeof(text), "host %s offers no AUTH mechanism we can use (PLAIN, LOGIN)", s->hostip);
            fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.7.0", text);
            return;
        }
        set_timer(s, s->cfg.t.helo);
        return;
    }
    begin_tx(s);
}

static void start_tls(struct smtpc *s);

static void send_hello(struct smtpc *s)
{
    cmd(s, "%s %s", s->cfg.lmtp ? "LHLO" : "EHLO", s->cfg.helo_name);
}

/* LMTP after the final dot (RFC 2033 4.2): this reply belongs to the next
 * recipient, in RCPT order, whose RCPT was accepted (those still pending;
 * a refused one has its RCPT reply already). Returns 1 while more replies
 * are due, 0 when every accepted recipient has its own. A connection lost
 * meanwhile defers only those still without one (conversation_failed). */
static int lmtp_next_pending(struct smtpc *s);

static int lmtp_dot_reply(struct smtpc *s, const struct reply *r)
{
    if (!lmtp_next_pending(s))
        return 0;
    rcpt_from_reply(s, &s->m->rcpt[s->order[s->lmtp_next++]], r, "end of DATA");
    if (!lmtp_next_pending(s))
        return 0;
    set_timer(s, s->cfg.t.data_done);
    return 1;
}

/* Moves lmtp_next to the next recipient still awaiting its dot reply; 0
 * when none is left. */
static int lmtp_next_pending(struct smtpc *s)
{
    while (s->lmtp_next < s->nsent && s->m->rcpt[s->order[s->lmtp_next]].status != SMTPC_PENDING)
        s->lmtp_next++;
    return s->lmtp_next < s->nsent;
}

static void host_refused(struct smtpc *s, const struct reply *r, const char *cmdname)
{
    char text[SMTPC_REPLY_TEXT], dsn[16];

    derive_dsn(r->code, r->enh, dsn);
    remote_text(s, r, cmdname, text, sizeof(text));
    /* a 5xx greeting or EHLO is still "try the next MX": the caller bounces
     * only when no MX takes the mail */
    fail_session(s, SMTPC_NEXT_MX, r->code >= 500 ? SMTPC_BOUNCED : SMTPC_DEFERRED, dsn, text);
}

static void on_reply(struct smtpc *s, const struct reply *r)
{
    struct smtpc_msg *m = s->m;
    char text[SMTPC_REPLY_TEXT];

    /* 421 before the final dot: the host is closing, nothing was taken:
     * the next MX (RFC 5321 3.8) */
    if (r->code == 421 && (s->phase == P_MAIL || s->phase == P_RCPT || s->phase == P_DATA)) {
        host_refused(s, r, s->phase == P_MAIL ? "MAIL FROM" : s->phase == P_RCPT ? "RCPT TO" : "DATA");
        return;
    }
    switch (s->phase) {
    case P_GREETING:
        if (r->code != 220) {
            host_refused(s, r, NULL);
            return;
        }
        s->greeted = 1;
        send_hello(s);
        s->phase = P_EHLO;
        set_timer(s, s->cfg.t.helo);
        return;
    case P_EHLO:
        if (r->code == 250) {
            s->esmtp = 1;
            parse_ehlo(s, r);
            after_helo(s);
        } else if (r->code == 421 || s->ssl || s->cfg.lmtp) {
            /* LMTP has no HELO to fall back to (RFC 2033 4.1) */
            host_refused(s, r, s->cfg.lmtp ? "LHLO" : "EHLO");
        } else {
            cmd(s, "HELO %s", s->cfg.helo_name);
            s->phase = P_HELO;
            set_timer(s, s->cfg.t.helo);
        }
        return;
    case P_HELO:
        if (r->code != 250) {
            host_refused(s, r, "HELO");
            return;
        }
        s->esmtp = 0;
        s->feat = 0;
        after_helo(s);
        return;
    case P_STARTTLS:
        if (r->code == 220) {
            if (s->unread > 0 || reply_pending(&s->rp)) {
                sfmt(text, sizeof(text), "Cannot start TLS: host %s sent data after its STARTTLS reply",
                     s->hostip);
                fail_session(s, SMTPC_TLS_FAILED, SMTPC_DEFERRED, "4.7.5", text);
                return;
            }
            start_tls(s);
            return;
        }
        if (s->cfg.tls == SMTPC_TLS_ENCRYPT) {
            host_refused(s, r, "STARTTLS");
            return;
        }
        s->tls_done = 1;       /* refused: go on in plain text */
        after_helo(s);
        return;
    case P_AUTH_LOGIN_USER:
    case P_AUTH_LOGIN_PASS:
        if (r->code == 334) {
            const char *v = s->phase == P_AUTH_LOGIN_USER ? s->cfg.auth_user
                                                          : (s->cfg.auth_pass ? s->cfg.auth_pass : "");
            char enc[1400];
            b64(v, strlen(v), enc, sizeof(enc));     /* <= 500 bytes (after_helo) */
            cmd(s, "%s", enc);
            OPENSSL_cleanse(enc, sizeof(enc));
            s->phase = s->phase == P_AUTH_LOGIN_USER ? P_AUTH_LOGIN_PASS : P_AUTH_DONE;
            set_timer(s, s->cfg.t.helo);
            return;
        }
        /* fall through: a failure */
        /* FALLTHROUGH */
    case P_AUTH_PLAIN:
    case P_AUTH_DONE:
        if (r->code == 235) {
            slog(s, "authenticated to %s as %s", s->hostip, s->cfg.auth_user);
            begin_tx(s);
            return;
        }
        {
            char dsn[16];
            derive_dsn(r->code, r->enh, dsn);
            remote_text(s, r, "AUTH", text, sizeof(text));
            dsn[0] = '4';   /* our credentials' problem: defer, never bounce */
            fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, dsn, text);
        }
        return;
    case P_MAIL:
        if (r->code / 100 != 2) {
            s->mail_failed = 1;
            for (size_t i = 0; i < m->nrcpt; i++)
                if (m->rcpt[i].status == SMTPC_PENDING)
                    rcpt_from_reply(s, &m->rcpt[i], r, "MAIL FROM");
        }
        if (s->pipelined) {
            s->phase = P_RCPT;
            set_timer(s, s->cfg.t.rcpt);
            return;
        }
        if (s->mail_failed) {
            rset_and_done(s, SMTPC_FAILED);
            return;
        }
        send_rcpt(s, s->order[s->rcpt_next++]);
        s->phase = P_RCPT;
        set_timer(s, s->cfg.t.rcpt);
        return;
    case P_RCPT: {
        size_t k = s->rcpt_reply++;
        if (!s->mail_failed && k < s->nsent) {
            size_t i = s->order[k];
            if (r->code / 100 == 2)
                s->naccepted++;
            else
                rcpt_from_reply(s, &m->rcpt[i], r, "RCPT TO");
        }
        if (s->rcpt_reply < s->nsent) {
            if (!s->pipelined)
                send_rcpt(s, s->order[s->rcpt_next++]);
            set_timer(s, s->cfg.t.rcpt);
            return;
        }
        if (!s->pipelined) {
            if (s->naccepted == 0) {
                rset_and_done(s, SMTPC_FAILED);
                return;
            }
            cmd(s, "DATA");
        }
        s->phase = P_DATA;
        set_timer(s, s->cfg.t.data_init);
        return;
    }
    case P_DATA:
        if (r->code == 354) {
            if ((s->mail_failed || s->naccepted == 0) && s->cfg.lmtp) {
                /* LMTP answers the dot once per accepted recipient, so
                 * here not at all (RFC 2033 4.2; DATA should have had a
                 * 503): the session's state is unknown, end it */
                close_conn(s);
                msg_done(s, SMTPC_FAILED);
                return;
            }
            if (s->mail_failed || s->naccepted == 0) {
                /* pipelined DATA accepted with no recipient: end it empty */
                s->empty_data = 1;
                cmd(s, ".");
                s->phase = P_DOT;
                set_timer(s, s->cfg.t.data_done);
                return;
            }
            dotstuff_init(&s->ds);
            s->phase = P_BODY;
            set_timer(s, s->cfg.t.data_xfer);
            s->armed_at = now_ms();
            body_step(s);
            return;
        }
        if (!s->mail_failed)
            for (size_t i = 0; i < m->nrcpt; i++)
                if (m->rcpt[i].status == SMTPC_PENDING)
                    rcpt_from_reply(s, &m->rcpt[i], r, "DATA");
        rset_and_done(s, SMTPC_FAILED);
        return;
    case P_BODY:
    case P_DOT:
        if (s->empty_data) {
            rset_and_done(s, SMTPC_FAILED);
            return;
        }
        if (s->cfg.lmtp && s->phase == P_DOT) {
            if (lmtp_dot_reply(s, r))
                return;         /* more recipients' replies are due */
            s->nmsgs++;
            go_idle(s);
            msg_done(s, SMTPC_DONE);
            return;
        }
        for (size_t i = 0; i < m->nrcpt; i++)
            if (m->rcpt[i].status == SMTPC_PENDING)
                rcpt_from_reply(s, &m->rcpt[i], r, "end of DATA");
        s->nmsgs++;
        if (s->phase == P_BODY) {
            /* an answer before we finished: the connection is out of step */
            close_conn(s);
            msg_done(s, SMTPC_FAILED);
            return;
        }
        go_idle(s);
        msg_done(s, SMTPC_DONE);
        return;
    case P_RSET:
        if (r->code / 100 != 2) {
            close_conn(s);
            if (s->rset_then_done)
                msg_done(s, s->pending_outcome);
            else
                fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.4.2", "RSET refused");
            return;
        }
        if (s->rset_then_done) {
            go_idle(s);
            msg_done(s, s->pending_outcome);
            return;
        }
        begin_tx(s);
        return;
    case P_QUIT:
        close_conn(s);
        if (!s->idle_quit)
            destroy(s);
        return;
    case P_IDLE:
        /* e.g. "421 idle timeout": the connection ends */
        close_conn(s);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------------ */
/* TLS                                                                 */

static void tls_step(struct smtpc *s)
{
    char text[SMTPC_REPLY_TEXT], err[256], desc[200];

    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        const char *trust = tlsc_trust(s->ssl);
        int ok = 1;
        if (s->cfg.tls_check) {
            ok = s->cfg.tls_check(s->ssl, s->dest.host, s->cfg.tls_check_arg);
            if (ok)
                trust = "Verified";
        }
        tlsc_describe(s->ssl, desc, sizeof(desc));
        slog(s, "%s TLS connection established to %s: %s", trust, s->relay, desc);
        if (!ok && s->cfg.tls_require_verified) {
            sfmt(text, sizeof(text), "TLS verification failed for %s", s->hostip);
            fail_session(s, SMTPC_TLS_FAILED, SMTPC_DEFERRED, "4.7.5", text);
            return;
        }
        s->tls_done = 1;
        reply_init(&s->rp);
        send_hello(s);
        s->phase = P_EHLO;
        set_timer(s, s->cfg.t.helo);
        s->ssl_want_write = 0;
        return;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
        return;
    }
    sfmt(text, sizeof(text), "Cannot start TLS: handshake failure with %s: %s", s->hostip,
             e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? "lost connection" : tls_error_text(err, sizeof(err)));
    fail_session(s, SMTPC_TLS_FAILED, SMTPC_DEFERRED, "4.7.5", text);
}

static void start_tls(struct smtpc *s)
{
    char text[SMTPC_REPLY_TEXT];

    s->ssl = tlsc_new(s->fd, s->dest.host);
    if (!s->ssl) {
        sfmt(text, sizeof(text), "Cannot start TLS with %s: out of memory", s->hostip);
        fail_session(s, SMTPC_TLS_FAILED, SMTPC_DEFERRED, "4.7.5", text);
        return;
    }
    s->phase = P_TLS;
    set_timer(s, s->cfg.t.helo);
    tls_step(s);
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static void on_timer(struct evloop *ev, void *arg)
{
    struct smtpc *s = arg;

    (void)ev;
    s->timer = 0;
    s->busy++;
    if (s->phase == P_IDLE) {
        /* idle too long: QUIT, but the caller still holds the session */
        s->idle_quit = 1;
        cmd(s, "QUIT");
        s->phase = P_QUIT;
        set_timer(s, s->cfg.t.quit);
        if (flush(s) < 0)
            close_conn(s);
        else
            want(s);
    } else {
        conversation_failed(s, "conversation with", " timed out", "4.4.2");
    }
    s->busy--;
    if (s->free_me)
        destroy(s);
}

/* Reads and handles replies; returns after EAGAIN or when the session ended. */
static void read_replies(struct smtpc *s)
{
    while (s->fd >= 0 && s->phase != P_TLS && !s->free_me) {
        ssize_t n;
        if (s->ssl) {
            ERR_clear_error();
            int r = SSL_read(s->ssl, inbuf, sizeof(inbuf));
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    s->ssl_want_write = 1;
                    return;
                }
                s->ssl_fatal = e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL;
                n = 0;
            } else {
                n = r;
            }
        } else {
            n = recv(s->fd, inbuf, sizeof(inbuf), 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return;
                n = 0;
            }
        }
        if (n == 0) {
            conversation_failed(s, "lost connection with", "", "4.4.2");
            return;
        }
        size_t c = 0, take = (size_t)n;
        while (c < take && s->fd >= 0 && !s->free_me) {
            size_t used;
            int rc = reply_feed(&s->rp, inbuf + c, take - c, &used);
            c += used;
            if (rc == REPLY_ERROR) {
                char why[200];
                sfmt(why, sizeof(why), " (%s)", s->rp.err);
                conversation_failed(s, "malformed reply from", why, "4.5.0");
                return;
            }
            if (rc == REPLY_MORE)
                break;
            s->unread = take - c;
            on_reply(s, &s->rp.r);
            if (s->phase == P_TLS)
                return;
        }
    }
}

static void on_io(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct smtpc *s = arg;

    (void)ev;
    (void)fd;
    s->busy++;
    if (s->phase == P_TLS) {
        tls_step(s);
    } else {
        s->ssl_want_write = 0;      /* set again if SSL_read still wants it */
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            read_replies(s);
    }
    /* write: commands, then the body block by block */
    while (s->fd >= 0 && !s->free_me && s->phase != P_TLS) {
        if (flush(s) < 0) {
            conversation_failed(s, "lost connection with", "", "4.4.2");
            break;
        }
        if (s->out.len > 0)
            break;
        if (s->phase == P_BODY) {
            body_step(s);
            continue;
        }
        if (s->phase == P_DOT && s->body_eof) {
            s->body_eof = 0;         /* everything written: wait for the reply */
            set_timer(s, s->cfg.t.data_done);
        }
        break;
    }
    if (s->fd >= 0 && !s->free_me)
        want(s);
    s->busy--;
    if (s->free_me)
        destroy(s);
}

static void on_connected(int fd, const struct sockaddr_storage *addr, const char *err, void *arg)
{
    struct smtpc *s = arg;
    char text[SMTPC_REPLY_TEXT];

    s->hev = NULL;
    s->busy++;
    if (fd < 0) {
        sfmt(s->relay, sizeof(s->relay), "none");
        /* err is "[IP]:PORT: why" from connect.c */
        sfmt(text, sizeof(text), "connect to %s%s", s->dest.host, err ? err : ": failed");
        fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.4.1", text);
    } else {
        s->fd = fd;
        s->connected = 1;
        s->peer = *addr;
        if (addr->ss_family == AF_UNIX) {
            /* LMTP over a UNIX socket: the path is the peer (relay=PATH) */
            sfmt(s->ip, sizeof(s->ip), "%s", s->dest.host);
            sfmt(s->hostip, sizeof(s->hostip), "%s", s->dest.host);
            sfmt(s->relay, sizeof(s->relay), "%s", s->dest.host);
        } else {
            net_addr_text((const struct sockaddr *)addr, s->ip, sizeof(s->ip));
            sfmt(s->hostip, sizeof(s->hostip), "%s[%s]", s->dest.host, s->ip);
            sfmt(s->relay, sizeof(s->relay), "%s[%s]:%u", s->dest.host, s->ip, s->dest.port);
        }
        s->events = EPOLLIN;
        if (ev_add(s->ev, fd, EPOLLIN, on_io, s) < 0) {
            close(fd);
            s->fd = -1;
            fail_session(s, SMTPC_NEXT_MX, SMTPC_DEFERRED, "4.3.0", "event loop failure");
        } else {
            s->phase = P_GREETING;
            set_timer(s, s->cfg.t.greeting);
        }
    }
    s->busy--;
    if (s->free_me)
        destroy(s);
}

/* ------------------------------------------------------------------ */
/* API                                                                 */

/* A message handed in starts with no results (it may be a retry). */
static void reset_results(struct smtpc_msg *m)
{
    for (size_t i = 0; i < m->nrcpt; i++) {
        m->rcpt[i].status = SMTPC_PENDING;
        m->rcpt[i].dsn[0] = m->rcpt[i].reply[0] = '\0';
    }
    m->relay[0] = '\0';
    m->dsn_offered = 0;
    m->delay_conn_ms = m->delay_xfer_ms = 0;
}

struct smtpc *smtpc_start(struct evloop *ev, const struct smtpc_config *cfg,
                          const struct smtpc_dest *dest, struct smtpc_msg *m,
                          smtpc_done_cb cb, void *arg)
{
    struct smtpc *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->ev = ev;
    s->cfg = *cfg;
    s->dest = *dest;
    s->dest.host[sizeof(s->dest.host) - 1] = '\0';
    s->cb = cb;
    s->arg = arg;
    s->fd = -1;
    s->m = m;
    reset_results(m);
    s->t_msg = now_ms();
    buf_init(&s->out, OUT_MAX);
    buf_init(&s->conv, CONV_MAX);
    reply_init(&s->rp);
    sfmt(s->hostip, sizeof(s->hostip), "%s", s->dest.host);
    sfmt(s->relay, sizeof(s->relay), "none");
    s->phase = P_CONNECT;
    s->hev = hev_start(ev, dest->addr, dest->naddr, dest->port, cfg->t.connect, cfg->t.eyeballs, on_connected, s);
    if (!s->hev) {
        buf_free(&s->out);
        free(s);
        return NULL;
    }
    return s;
}

int smtpc_reusable(const struct smtpc *s)
{
    return s->phase == P_IDLE && s->fd >= 0 && !s->quit_req && !s->m;
}

int smtpc_send(struct smtpc *s, struct smtpc_msg *m)
{
    if (!smtpc_reusable(s))
        return -1;
    s->m = m;
    reset_results(m);
    s->t_msg = now_ms();
    s->t_tx = 0;
    s->rset_then_done = 0;
    reply_init(&s->rp);
    cmd(s, "RSET");
    s->phase = P_RSET;
    set_timer(s, s->cfg.t.rset);
    if (!s->busy) {
        s->busy++;
        if (flush(s) < 0)
            conversation_failed(s, "lost connection with", "", "4.4.2");
        else
            want(s);
        s->busy--;
        if (s->free_me)
            destroy(s);
    }
    return 0;
}

static void start_quit(struct smtpc *s)
{
    s->quit_req = 0;
    if (s->fd < 0 || s->phase != P_IDLE) {
        destroy(s);
        return;
    }
    cmd(s, "QUIT");
    s->phase = P_QUIT;
    set_timer(s, s->cfg.t.quit);
    if (flush(s) < 0) {
        destroy(s);
        return;
    }
    want(s);
}

void smtpc_quit(struct smtpc *s)
{
    s->idle_quit = 0;
    if (s->busy) {
        /* inside our callback: after it returns */
        s->quit_req = 1;
        if (s->phase != P_IDLE && s->phase != P_DEAD) {
            close_conn(s);
        }
        if (s->phase == P_DEAD)
            s->free_me = 1;
        return;
    }
    start_quit(s);
}

void smtpc_abort(struct smtpc *s)
{
    s->quit_req = 0;
    s->idle_quit = 0;
    destroy(s);
}

unsigned smtpc_messages(const struct smtpc *s)
{
    return s->nmsgs;
}

int smtpc_connected(const struct smtpc *s)
{
    return s->connected;
}

int smtpc_greeted(const struct smtpc *s)
{
    return s->greeted;
}

int smtpc_tls_active(const struct smtpc *s)
{
    return s->ssl != NULL;
}

const char *smtpc_peer_ip(const struct smtpc *s)
{
    return s->connected ? s->ip : "";
}

/* Postfix's delay style: "0", "0.05", "1.2", "35". */
void smtpc_format_result(const struct smtpc_msg *m, const struct smtpc_rcpt *r,
                         double delay_total, double a, double b, char *out, size_t outlen)
{
    static const char *const st[] = { "deferred", "sent", "deferred", "bounced" };
    char d[5][16], addr[520];

    log_sanitize(r->addr ? r->addr : "", r->addr ? strlen(r->addr) : 0, addr, sizeof(addr));
    format_delay(delay_total, d[0], sizeof(d[0]));
    format_delay(a, d[1], sizeof(d[1]));
    format_delay(b, d[2], sizeof(d[2]));
    format_delay((double)m->delay_conn_ms / 1000.0, d[3], sizeof(d[3]));
    format_delay((double)m->delay_xfer_ms / 1000.0, d[4], sizeof(d[4]));
    sfmt(out, outlen, "to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
             addr, m->relay[0] ? m->relay : "none", d[0], d[1], d[2], d[3], d[4],
             r->dsn[0] ? r->dsn : "4.0.0", st[r->status], r->reply);
}
