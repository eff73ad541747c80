/*
 * session.c - SMTP sessions (session.h): RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, DSN parameters, CHUNKING and STARTTLS.
 *
 * Each session is a small state machine driven by the worker's event loop.
 * Input is read into one scratch buffer per worker and split into lines by
 * a linereader whose carry is the only per-session line storage, so an idle
 * session costs a few KiB and no client can make it grow. Message data goes
 * straight into the spool file queue-mgr passed us; only its 250 reply says
 * the message is durable. The end of DATA is <CRLF>.<CRLF> and nothing else:
 * a bare CR, bare LF or NUL anywhere in the data refuses the whole message.
 */
#include "session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "buf.h"
#include "linereader.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "qlink.h"
#include "qrecord.h"
#include "tls.h"
#include "util.h"

#define CMD_LINE_MAX 512          /* RFC 5321 4.5.3.1.4 */
#define CMD_LINE_MAX_EXT 1024     /* MAIL/RCPT with RFC 3461 parameters */
#define OUT_HIGH (16u << 10)      /* stop reading while this much is unsent */
#define OUT_MAX (64u << 10)
#define SPOOL_BUF 32768
#define SCRATCH 65536

enum state { ST_CMD, ST_DATA, ST_BDAT, ST_WAIT, ST_TLS, ST_CLOSE };
enum poison { P_NONE, P_BARE, P_TOOLONG, P_SIZE, P_IO };
enum { CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT, CMD_RSET, CMD_VRFY, CMD_EXPN,
       CMD_NOOP, CMD_QUIT, CMD_HELP, CMD_STARTTLS, CMD_AUTH, CMD_UNKNOWN, CMD_COUNT };
static const char *const cmd_names[CMD_COUNT] = {
    "helo", "ehlo", "mail", "rcpt", "data", "bdat", "rset", "vrfy", "expn",
    "noop", "quit", "help", "starttls", "auth", "unknown",
};

struct session {
    int fd;
    uint32_t events;            /* what epoll watches now */
    enum port_kind port;
    enum state state;
    SSL *ssl;
    int tls_active, tls_want_write, tls_start_pending;
    char addr[64];
    char name[96];              /* "unknown[192.0.2.1]" for logs */
    struct linereader lr;
    struct buf pending;         /* input read but not yet processed */
    struct buf out;
    uint64_t deadline;
    unsigned errors;
    int helo_kind;              /* 0 none, 1 HELO, 2 EHLO */
    char helo[256];
    /* the transaction */
    int in_mail;
    struct qrec env;
    char qid[QID_LEN + 1];
    int spool_fd;
    unsigned spool_gen;
    struct buf spool_buf;
    uint64_t msg_size;
    enum poison poison;
    int prev_crlf;
    int via_bdat;
    struct linereader *bdat_lr; /* line checks across BDAT chunks */
    uint64_t bdat_left, bdat_chunk;
    int bdat_last, bdat_discard;
    uint32_t waiting;           /* queue-mgr request id, 0 if none */
    int stopping;               /* 421 once the current transaction ends */
    unsigned cnt_ok[CMD_COUNT], cnt_all[CMD_COUNT];
    struct session *prev, *next;
};

static struct evloop *ev;
static const struct config *cfg;
static struct session *sessions;
static unsigned nsessions;
static int lfds[CONF_MAX_LIST * 3];
static enum port_kind lkinds[CONF_MAX_LIST * 3];
static size_t nlfds;
static int shutting_down;
static char scratch[SCRATCH];

static void session_input(struct session *s);
static void session_update(struct session *s);
static void session_free(struct session *s);

/* ---- output ---- */

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 3)
        n = sizeof(line) - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    if (buf_append(&s->out, line, (size_t)n) < 0) {
        /* A client that never reads its replies loses the session. */
        s->state = ST_CLOSE;
        return;
    }
    if ((line[0] == '4' || line[0] == '5') && strncmp(line, "421", 3) != 0 &&
        ++s->errors > cfg->smtpd_error_limit) {
        log_warning("too many errors from %s", s->name);
        buf_printf(&s->out, "421 4.7.0 %s Error: too many errors\r\n", cfg->hostname);
        s->state = ST_CLOSE;
    }
}

static int session_flush(struct session *s)
{
    s->tls_want_write = 0;
    while (s->out.len > 0) {
        ssize_t n;
        if (s->ssl && s->tls_active) {
            int r = SSL_write(s->ssl, buf_head(&s->out), (int)s->out.len);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    s->tls_want_write = e == SSL_ERROR_WANT_WRITE;
                    return 0;
                }
                ERR_clear_error();
                return -1;
            }
            n = r;
        } else {
            n = send(s->fd, buf_head(&s->out), s->out.len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                if (errno == EINTR)
                    continue;
                return -1;
            }
        }
        buf_consume(&s->out, (size_t)n);
    }
    return 1;
}

static const char *cmd_summary(struct session *s, char *out, size_t outlen)
{
    size_t o = 0;
    unsigned total_ok = 0, total = 0;

    out[0] = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        if (!s->cnt_all[i])
            continue;
        total += s->cnt_all[i];
        total_ok += s->cnt_ok[i];
        if (s->cnt_ok[i] == s->cnt_all[i])
            o += (size_t)snprintf(out + o, outlen - o, " %s=%u", cmd_names[i], s->cnt_all[i]);
        else
            o += (size_t)snprintf(out + o, outlen - o, " %s=%u/%u", cmd_names[i], s->cnt_ok[i], s->cnt_all[i]);
        if (o >= outlen)
            return out;
    }
    if (total_ok == total)
        snprintf(out + o, outlen - o, " commands=%u", total);
    else
        snprintf(out + o, outlen - o, " commands=%u/%u", total_ok, total);
    return out;
}

/* ---- the transaction ---- */

static void spool_abort(struct session *s)
{
    if (s->spool_fd >= 0) {
        close(s->spool_fd);
        s->spool_fd = -1;
        if (s->spool_gen == qlink_generation() && qlink_up()) {
            struct ipc_out m;
            ipc_out_begin(&m, Q_ABORT, 0);
            ipc_out_str(&m, T_QID, s->qid);
            qlink_notify(&m);
            ipc_out_free(&m);
        }
    }
    buf_free(&s->spool_buf);
}

static void txn_reset(struct session *s)
{
    spool_abort(s);
    qrec_free(&s->env);
    qrec_init(&s->env);
    s->in_mail = 0;
    s->qid[0] = 0;
    s->msg_size = 0;
    s->poison = P_NONE;
    s->via_bdat = 0;
    free(s->bdat_lr);
    s->bdat_lr = NULL;
}

static void spool_write(struct session *s, const char *p, size_t n)
{
    if (s->poison != P_NONE)
        return;
    s->msg_size += n;
    if (s->msg_size > cfg->max_message_size) {
        s->poison = P_SIZE;
        return;
    }
    if (s->spool_buf.len + n > SPOOL_BUF && s->spool_buf.len > 0) {
        if (write_all(s->spool_fd, buf_head(&s->spool_buf), s->spool_buf.len) < 0) {
            log_error("%s: spool file write error: %s", s->qid, strerror(errno));
            s->poison = P_IO;
            return;
        }
        buf_reset(&s->spool_buf);
    }
    if (n > SPOOL_BUF) {
        if (write_all(s->spool_fd, p, n) < 0) {
            log_error("%s: spool file write error: %s", s->qid, strerror(errno));
            s->poison = P_IO;
        }
        return;
    }
    if (buf_append(&s->spool_buf, p, n) < 0)
        s->poison = P_IO;
}

static const char *protocol_name(struct session *s)
{
    int utf8 = (s->env.flags & QF_SMTPUTF8) != 0;

    if (s->helo_kind == 1)
        return "SMTP";
    if (utf8)
        return s->tls_active ? "UTF8SMTPS" : "UTF8SMTP";
    return s->tls_active ? "ESMTPS" : "ESMTP";
}

static void write_received(struct session *s)
{
    char date[64], hdr[1400], tls[256] = "";
    int n;

    format_rfc5322_date(time(NULL), date, sizeof(date));
    if (s->tls_active) {
        char d[200];
        tls_describe(s->ssl, d, sizeof(d));
        snprintf(tls, sizeof(tls), "\t(using %s)\r\n", d);
    }
    n = snprintf(hdr, sizeof(hdr),
                 "Received: from %s (unknown [%s%s])\r\n%s\tby %s (Postern) with %s id %s%s%s%s; %s\r\n",
                 s->helo, strchr(s->addr, ':') ? "IPv6:" : "", s->addr, tls, cfg->hostname,
                 protocol_name(s), s->qid, s->env.nrcpt == 1 ? "\r\n\tfor <" : "",
                 s->env.nrcpt == 1 ? s->env.rcpt[0].addr : "", s->env.nrcpt == 1 ? ">" : "", date);
    if (n > 0 && (size_t)n < sizeof(hdr)) {
        uint64_t before = s->msg_size;
        spool_write(s, hdr, (size_t)n);
        s->msg_size = before; /* the trace line does not count against SIZE */
    }
}

static void on_committed(void *arg, const struct ipc_msg *m)
{
    struct session *s = arg;
    char code[16] = "451 4.3.0", text[256] = "queue file write error";

    s->waiting = 0;
    if (m && m->type == Q_COMMITTED) {
        reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
        s->cnt_ok[s->via_bdat ? CMD_BDAT : CMD_DATA]++;
    } else {
        if (m && m->type == Q_ERROR) {
            struct ipc_iter it;
            struct ipc_field f;
            ipc_iter_init(&it, m->body, m->len);
            while (ipc_iter_next(&it, &f) == 1) {
                if (f.tag == T_CODE && (ipc_field_str(&f, code, sizeof(code)) < 0 ||
                    (code[0] != '4' && code[0] != '5') || strlen(code) < 9))
                    str_copy(code, "451 4.3.0", sizeof(code));
                if (f.tag == T_TEXT && ipc_field_str(&f, text, sizeof(text)) < 0)
                    str_copy(text, "queue file write error", sizeof(text));
            }
        }
        log_warning("%s: queue-mgr refused message from %s: %s %s", s->qid, s->name, code, text);
        reply(s, "%s Error: %s", code, text);
    }
    s->qid[0] = 0; /* committed or refused by queue-mgr: nothing to abort */
    txn_reset(s);
    s->state = s->state == ST_CLOSE ? ST_CLOSE : ST_CMD;
    if (s->stopping && s->state != ST_CLOSE) {
        reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
        s->state = ST_CLOSE;
    }
    session_input(s);
}

/* The end of the message: refuse it, or hand it to queue-mgr for commit. */
static void message_end(struct session *s)
{
    static const char *const why[] = {
        [P_BARE] = "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted",
        [P_TOOLONG] = "500 5.5.2 Error: line too long; message not accepted",
        [P_SIZE] = "552 5.3.4 Message size exceeds fixed limit",
        [P_IO] = "451 4.3.0 Error: queue file write error",
    };
    struct ipc_out m;
    uint32_t id;

    if (s->poison == P_NONE && s->spool_buf.len > 0 &&
        write_all(s->spool_fd, buf_head(&s->spool_buf), s->spool_buf.len) < 0) {
        log_error("%s: spool file write error: %s", s->qid, strerror(errno));
        s->poison = P_IO;
    }
    buf_free(&s->spool_buf);
    if (s->poison != P_NONE) {
        log_warning("%s: %s from %s; message not queued", s->qid,
                    s->poison == P_BARE ? "bare CR, bare LF or NUL in data" :
                    s->poison == P_TOOLONG ? "over-long data line" :
                    s->poison == P_SIZE ? "message too large" : "write error", s->name);
        reply(s, "%s", why[s->poison]);
        txn_reset(s);
        s->state = ST_CMD;
        return;
    }
    close(s->spool_fd);
    s->spool_fd = -1;
    if (s->spool_gen != qlink_generation() || !qlink_up()) {
        log_warning("%s: queue-mgr restarted during the transaction from %s", s->qid, s->name);
        reply(s, "451 4.3.0 Error: queue file write error");
        s->qid[0] = 0;
        txn_reset(s);
        s->state = ST_CMD;
        return;
    }
    str_copy(s->env.qid, s->qid, sizeof(s->env.qid));
    str_copy(s->env.helo, s->helo, sizeof(s->env.helo));
    str_copy(s->env.client_addr, s->addr, sizeof(s->env.client_addr));
    str_copy(s->env.client_name, "unknown", sizeof(s->env.client_name));
    str_copy(s->env.proto, protocol_name(s), sizeof(s->env.proto));
    id = qlink_new_id();
    ipc_out_begin(&m, Q_COMMIT, id);
    qrec_encode(&s->env, &m);
    if (qlink_request(&m, id, on_committed, s) < 0) {
        ipc_out_free(&m);
        reply(s, "451 4.3.0 Error: queue file write error");
        txn_reset(s);
        s->state = ST_CMD;
        return;
    }
    ipc_out_free(&m);
    s->waiting = id;
    s->state = ST_WAIT;
}

static void on_opened(void *arg, const struct ipc_msg *m)
{
    struct session *s = arg;
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "";

    s->waiting = 0;
    if (m && m->type == Q_OPENED && m->fd >= 0) {
        ipc_iter_init(&it, m->body, m->len);
        while (ipc_iter_next(&it, &f) == 1)
            if (f.tag == T_QID && ipc_field_str(&f, qid, sizeof(qid)) < 0)
                qid[0] = 0;
    }
    if (!qid_valid(qid)) {
        if (m && m->fd >= 0)
            close(m->fd);
        log_warning("no queue file for %s: queue-mgr %s", s->name, m ? "refused" : "unavailable");
        reply(s, "451 4.3.0 Error: queue file write error");
        if (s->via_bdat)
            s->bdat_discard = 1, s->state = ST_BDAT, s->in_mail = 0;
        else
            s->state = ST_CMD;
        session_input(s);
        return;
    }
    str_copy(s->qid, qid, sizeof(s->qid));
    s->spool_fd = m->fd;
    s->spool_gen = qlink_generation();
    buf_init(&s->spool_buf, SPOOL_BUF);
    log_info("%s: client=%s", s->qid, s->name);
    write_received(s);
    if (s->via_bdat) {
        s->state = ST_BDAT;
    } else {
        reply(s, "354 End data with <CR><LF>.<CR><LF>");
        s->state = ST_DATA;
        s->prev_crlf = 1;
        lr_set_max(&s->lr, cfg->smtpd_max_line);
    }
    session_input(s);
}

static int message_begin(struct session *s)
{
    struct ipc_out m;
    uint32_t id = qlink_new_id();

    ipc_out_begin(&m, Q_OPEN, id);
    if (qlink_request(&m, id, on_opened, s) < 0) {
        ipc_out_free(&m);
        log_warning("queue-mgr unavailable; refusing message from %s", s->name);
        reply(s, "451 4.3.0 Error: queue file write error");
        return -1;
    }
    ipc_out_free(&m);
    s->waiting = id;
    s->state = ST_WAIT;
    return 0;
}

/* ---- message data ---- */

static void data_line(struct session *s, const char *line, size_t len, unsigned flags)
{
    int crlf = (flags & LR_CRLF) != 0;

    if (s->prev_crlf && crlf && len == 3 && line[0] == '.' && !(flags & (LR_TOOLONG | LR_BARE_CR | LR_NUL))) {
        lr_set_max(&s->lr, CMD_LINE_MAX_EXT);
        message_end(s);
        return;
    }
    s->prev_crlf = crlf;
    if (flags & LR_TOOLONG) {
        if (s->poison == P_NONE)
            s->poison = P_TOOLONG;
        return;
    }
    if (!crlf || (flags & (LR_BARE_CR | LR_NUL))) {
        if (s->poison == P_NONE || s->poison == P_SIZE)
            s->poison = P_BARE;
        return;
    }
    if (line[0] == '.')
        line++, len--; /* undo dot-stuffing */
    spool_write(s, line, len);
}

static void bdat_bytes(struct session *s, const char *p, size_t n)
{
    const char *q = p, *line;
    size_t qn = n, len;
    unsigned flags;

    if (s->bdat_discard)
        return;
    /* The bytes go to the spool as they are; the checker only looks. */
    while (lr_next(s->bdat_lr, &q, &qn, &line, &len, &flags) == 1) {
        if ((flags & LR_TOOLONG) && s->poison == P_NONE)
            s->poison = P_TOOLONG;
        else if ((!(flags & LR_CRLF) || (flags & (LR_BARE_CR | LR_NUL))) &&
                 (s->poison == P_NONE || s->poison == P_SIZE))
            s->poison = P_BARE;
    }
    spool_write(s, p, n);
}

static void bdat_chunk_done(struct session *s)
{
    if (s->bdat_discard) {
        s->bdat_discard = 0;
        s->state = ST_CMD;
        return;
    }
    if (!s->bdat_last) {
        if (s->poison != P_NONE) {
            message_end(s); /* replies with the reason and resets */
            return;
        }
        reply(s, "250 2.0.0 Ok: %llu octets", (unsigned long long)s->bdat_chunk);
        s->state = ST_CMD;
        return;
    }
    if (lr_pending(s->bdat_lr) > 0) {
        /* A message must end with a line end; add the missing one. */
        bdat_bytes(s, "\r\n", 2);
    }
    message_end(s);
}

/* ---- commands ---- */

static int is_xtext(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == '+') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return 0;
            s += 2;
        } else if (c < '!' || c > '~' || c == '=') {
            return 0;
        }
    }
    return n > 0 && n <= max;
}

static void cmd_helo(struct session *s, int kind, const char *arg)
{
    char clean[256];

    if (!*arg) {
        reply(s, "501 5.5.4 Syntax: %s hostname", kind == CMD_EHLO ? "EHLO" : "HELO");
        return;
    }
    log_sanitize(arg, strlen(arg), clean, sizeof(clean));
    /* A HELO name goes into Received:, so no spaces or parentheses. */
    for (char *p = clean; *p; p++)
        if (*p == ' ' || *p == '(' || *p == ')' || *p == '\t')
            *p = '?';
    txn_reset(s);
    str_copy(s->helo, clean, sizeof(s->helo));
    s->helo_kind = kind == CMD_EHLO ? 2 : 1;
    if (kind == CMD_HELO) {
        reply(s, "250 %s", cfg->hostname);
    } else {
        buf_printf(&s->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n"
                   "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n",
                   cfg->hostname, (unsigned long long)cfg->max_message_size);
        if (!s->tls_active && tls_available())
            buf_printf(&s->out, "250-STARTTLS\r\n");
        reply(s, "250 CHUNKING");
    }
    s->cnt_ok[kind]++;
}

static int need_helo(struct session *s)
{
    if (!s->helo_kind) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return 1;
    }
    return 0;
}

/* Splits "KEY=VALUE" parameters after a path; returns -1 after replying. */
static int next_param(struct session *s, char **p, char **key, char **val)
{
    char *q = *p;

    while (*q == ' ')
        q++;
    if (!*q)
        return 0;
    *key = q;
    while (*q && *q != ' ')
        q++;
    if (*q)
        *q++ = 0;
    *p = q;
    *val = strchr(*key, '=');
    if (*val)
        *(*val)++ = 0;
    (void)s;
    return 1;
}

static void cmd_mail(struct session *s, char *arg)
{
    const char *rest = str_prefix_ci(arg, "FROM:");
    struct addr a;
    enum addr_error e;
    size_t end;
    char *p, *key, *val;
    int utf8 = 0, seen_size = 0, seen_body = 0, seen_ret = 0, seen_envid = 0;
    uint64_t size = 0;

    if (need_helo(s))
        return;
    if (s->port == PORT_SUBMISSION && !s->tls_active) {
        reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (s->in_mail) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (!rest) {
        reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    while (*rest == ' ')
        rest++;
    e = addr_parse_path(rest, strlen(rest), ADDR_ALLOW_EMPTY | ADDR_UTF8, &a, &end);
    if (e != ADDR_OK || (rest[end] != 0 && rest[end] != ' ')) {
        reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    p = (char *)rest + end;
    txn_reset(s);
    while (next_param(s, &p, &key, &val) == 1) {
        if (!strcasecmp(key, "SIZE") && val && !seen_size++) {
            if (parse_u64(val, &size) < 0) {
                reply(s, "501 5.5.4 Bad SIZE parameter syntax");
                return;
            }
        } else if (!strcasecmp(key, "BODY") && val && !seen_body++) {
            if (!strcasecmp(val, "7BIT"))
                s->env.body = BODY_7BIT;
            else if (!strcasecmp(val, "8BITMIME"))
                s->env.body = BODY_8BITMIME;
            else {
                reply(s, "501 5.5.4 Bad BODY parameter syntax");
                return;
            }
        } else if (!strcasecmp(key, "SMTPUTF8") && !val && !utf8) {
            utf8 = 1;
        } else if (!strcasecmp(key, "RET") && val && !seen_ret++) {
            if (!strcasecmp(val, "FULL"))
                s->env.ret = RET_FULL;
            else if (!strcasecmp(val, "HDRS"))
                s->env.ret = RET_HDRS;
            else {
                reply(s, "501 5.5.4 Bad RET parameter syntax");
                return;
            }
        } else if (!strcasecmp(key, "ENVID") && val && !seen_envid++) {
            if (!is_xtext(val, QREC_ENVID_MAX)) {
                reply(s, "501 5.5.4 Bad ENVID parameter syntax");
                return;
            }
            str_copy(s->env.envid, val, sizeof(s->env.envid));
        } else {
            char clean[64];
            reply(s, "555 5.5.4 Unsupported option: %s", log_sanitize(key, strlen(key), clean, sizeof(clean)));
            return;
        }
    }
    if (a.is_utf8 && !utf8) {
        reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
        return;
    }
    if (size > cfg->max_message_size) {
        log_info("NOQUEUE: reject: MAIL from %s: 552 5.3.4 Message size exceeds fixed limit; size=%llu",
                 s->name, (unsigned long long)size);
        reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    if (utf8)
        s->env.flags |= QF_SMTPUTF8;
    str_copy(s->env.sender, a.mailbox, sizeof(s->env.sender));
    s->in_mail = 1;
    s->cnt_ok[CMD_MAIL]++;
    reply(s, "250 2.1.0 Ok");
}

static int parse_notify(const char *v, unsigned *out)
{
    char tmp[64], *tok, *save;
    unsigned bits = 0;

    if (strlen(v) >= sizeof(tmp))
        return -1;
    str_copy(tmp, v, sizeof(tmp));
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned b = !strcasecmp(tok, "NEVER") ? NOTIFY_NEVER : !strcasecmp(tok, "SUCCESS") ? NOTIFY_SUCCESS :
                     !strcasecmp(tok, "FAILURE") ? NOTIFY_FAILURE : !strcasecmp(tok, "DELAY") ? NOTIFY_DELAY : 0;
        if (!b || (bits & b))
            return -1;
        bits |= b;
    }
    if (!bits || ((bits & NOTIFY_NEVER) && bits != NOTIFY_NEVER))
        return -1;
    *out = bits;
    return 0;
}

static void cmd_rcpt(struct session *s, char *arg)
{
    const char *rest = str_prefix_ci(arg, "TO:");
    struct addr a;
    enum addr_error e;
    size_t end;
    char *p, *key, *val, orcpt[QREC_ORCPT_MAX + 1] = "";
    unsigned notify = 0;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    if (need_helo(s))
        return;
    if (!s->in_mail) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (!rest) {
        reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    while (*rest == ' ')
        rest++;
    e = addr_parse_path(rest, strlen(rest), ADDR_ALLOW_POSTMASTER | ADDR_UTF8, &a, &end);
    if (e != ADDR_OK || (rest[end] != 0 && rest[end] != ' ')) {
        reply(s, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    p = (char *)rest + end;
    while (next_param(s, &p, &key, &val) == 1) {
        if (!strcasecmp(key, "NOTIFY") && val && !notify) {
            if (parse_notify(val, &notify) < 0) {
                reply(s, "501 5.5.4 Bad NOTIFY parameter syntax");
                return;
            }
        } else if (!strcasecmp(key, "ORCPT") && val && !orcpt[0]) {
            char *semi = strchr(val, ';');
            if (!semi || semi == val || !is_xtext(semi + 1, QREC_ORCPT_MAX) || strlen(val) > QREC_ORCPT_MAX) {
                reply(s, "501 5.5.4 Bad ORCPT parameter syntax");
                return;
            }
            str_copy(orcpt, val, sizeof(orcpt));
        } else {
            char clean[64];
            reply(s, "555 5.5.4 Unsupported option: %s", log_sanitize(key, strlen(key), clean, sizeof(clean)));
            return;
        }
    }
    if (a.is_utf8 && !(s->env.flags & QF_SMTPUTF8)) {
        reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
        return;
    }
    if (s->env.nrcpt >= cfg->max_recipients) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    /* Relay control: local domains for everyone, elsewhere only for
     * clients inside relay_networks. */
    int local = a.domain[0] == 0 || (!a.is_literal && config_is_local_domain(cfg, a.domain));
    if (!local) {
        int trusted = getpeername(s->fd, (struct sockaddr *)&ss, &sslen) == 0 &&
                      cidr_list_match(&cfg->relay_networks, (struct sockaddr *)&ss);
        if (!trusted) {
            log_info("NOQUEUE: reject: RCPT from %s: 554 5.7.1 <%s>: Relay access denied; from=<%s> to=<%s> proto=%s helo=<%s>",
                     s->name, a.mailbox, s->env.sender, a.mailbox, protocol_name(s), s->helo);
            reply(s, "554 5.7.1 <%s>: Relay access denied", a.mailbox);
            return;
        }
    }
    if (qrec_add_rcpt(&s->env, a.mailbox) < 0) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    struct qrcpt *r = &s->env.rcpt[s->env.nrcpt - 1];
    r->notify = notify;
    if (qrcpt_set(&r->orcpt, orcpt, QREC_ORCPT_MAX) < 0) {
        s->env.nrcpt--; /* qrec_free frees only counted recipients */
        free(r->addr);
        reply(s, "452 4.3.1 Error: out of memory");
        return;
    }
    s->cnt_ok[CMD_RCPT]++;
    reply(s, "250 2.1.5 Ok");
}

static int txn_ready(struct session *s)
{
    if (need_helo(s))
        return 0;
    if (!s->in_mail) {
        reply(s, "503 5.5.1 Error: need RCPT command");
        return 0;
    }
    if (s->env.nrcpt == 0) {
        reply(s, "554 5.5.1 Error: no valid recipients");
        return 0;
    }
    return 1;
}

static void cmd_data(struct session *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (s->via_bdat) {
        reply(s, "503 5.5.1 Error: DATA after BDAT in the same transaction");
        return;
    }
    if (!txn_ready(s))
        return;
    message_begin(s);
}

/* Returns 0 to go on, -1 when the connection must close. */
static int cmd_bdat(struct session *s, const char *arg)
{
    char tmp[64], *last;
    uint64_t size;

    if (strlen(arg) >= sizeof(tmp))
        goto syntax;
    str_copy(tmp, arg, sizeof(tmp));
    last = strchr(tmp, ' ');
    if (last) {
        *last++ = 0;
        while (*last == ' ')
            last++;
        if (strcasecmp(last, "LAST") != 0)
            goto syntax;
    }
    if (parse_u64(tmp, &size) < 0 || strlen(tmp) > 18)
        goto syntax;
    s->bdat_left = size;
    s->bdat_chunk = size;
    s->bdat_last = last != NULL;
    if (s->via_bdat) {
        s->state = ST_BDAT; /* a further chunk of the open transaction */
        return 0;
    }
    /* Refused chunks are still read, so their bytes are never commands. */
    if (!txn_ready(s)) {
        s->bdat_discard = 1;
        s->state = ST_BDAT;
        return 0;
    }
    s->via_bdat = 1;
    s->bdat_lr = malloc(sizeof(*s->bdat_lr));
    if (!s->bdat_lr) {
        reply(s, "451 4.3.0 Error: out of memory");
        s->bdat_discard = 1;
        s->state = ST_BDAT;
        txn_reset(s);
        return 0;
    }
    lr_init(s->bdat_lr, cfg->smtpd_max_line);
    if (message_begin(s) < 0) {
        txn_reset(s);
        s->bdat_discard = 1;
        s->state = ST_BDAT;
    }
    return 0;
syntax:
    /* Without a size we cannot tell data from commands: stop here. */
    reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
    s->state = ST_CLOSE;
    return -1;
}

static void cmd_starttls(struct session *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (s->tls_active) {
        reply(s, "554 5.5.1 Error: TLS already active");
        return;
    }
    if (!tls_available()) {
        reply(s, "454 4.7.0 TLS not available");
        return;
    }
    reply(s, "220 2.0.0 Ready to start TLS");
    s->cnt_ok[CMD_STARTTLS]++;
    s->tls_start_pending = 1;
    s->state = ST_TLS;
}

static int command(struct session *s, const char *line, size_t len, unsigned flags)
{
    static const struct { const char *name; int id; } verbs[] = {
        { "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL }, { "RCPT", CMD_RCPT },
        { "DATA", CMD_DATA }, { "BDAT", CMD_BDAT }, { "RSET", CMD_RSET }, { "VRFY", CMD_VRFY },
        { "EXPN", CMD_EXPN }, { "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT }, { "HELP", CMD_HELP },
        { "STARTTLS", CMD_STARTTLS }, { "AUTH", CMD_AUTH },
    };
    char buf[CMD_LINE_MAX_EXT + 1], *arg;
    size_t n = len, vlen;
    int id = CMD_UNKNOWN;

    /* Strip the line end; never more than the buffer (the reader's limit
     * in command mode is CMD_LINE_MAX_EXT, this is belt and braces). */
    if (n > CMD_LINE_MAX_EXT)
        n = CMD_LINE_MAX_EXT;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    memcpy(buf, line, n);
    buf[n] = 0;
    for (vlen = 0; vlen < n && buf[vlen] != ' '; vlen++)
        ;
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (vlen == strlen(verbs[i].name) && !strncasecmp(buf, verbs[i].name, vlen))
            id = verbs[i].id;
    s->cnt_all[id]++;
    if (flags & LR_TOOLONG || (len > CMD_LINE_MAX && id != CMD_MAIL && id != CMD_RCPT)) {
        log_warning("command line too long from %s", s->name);
        reply(s, "500 5.5.2 Error: command line too long");
        return 0;
    }
    if (flags & (LR_NUL | LR_BARE_CR)) {
        log_warning("bad character in command from %s", s->name);
        reply(s, "500 5.5.2 Error: bad character in command");
        return 0;
    }
    arg = buf + vlen;
    while (*arg == ' ')
        arg++;
    switch (id) {
    case CMD_HELO:
    case CMD_EHLO: cmd_helo(s, id, arg); break;
    case CMD_MAIL: cmd_mail(s, arg); break;
    case CMD_RCPT: cmd_rcpt(s, arg); break;
    case CMD_DATA: cmd_data(s, arg); break;
    case CMD_BDAT: return cmd_bdat(s, arg);
    case CMD_RSET:
        txn_reset(s);
        s->cnt_ok[id]++;
        reply(s, "250 2.0.0 Ok");
        break;
    case CMD_NOOP:
        s->cnt_ok[id]++;
        reply(s, "250 2.0.0 Ok");
        break;
    case CMD_VRFY:
        if (!*arg) {
            reply(s, "501 5.5.4 Syntax: VRFY address");
            break;
        }
        s->cnt_ok[id]++;
        reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
        break;
    case CMD_EXPN: reply(s, "502 5.5.1 Error: EXPN not available"); break;
    case CMD_HELP:
        s->cnt_ok[id]++;
        reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET VRFY EXPN NOOP QUIT HELP STARTTLS");
        break;
    case CMD_QUIT:
        s->cnt_ok[id]++;
        reply(s, "221 2.0.0 Bye");
        s->state = ST_CLOSE;
        break;
    case CMD_STARTTLS: cmd_starttls(s, arg); break;
    case CMD_AUTH: reply(s, "503 5.5.1 Error: authentication not enabled"); break;
    default: {
        char clean[64];
        log_warning("unknown command \"%s\" from %s", log_sanitize(buf, n < 40 ? n : 40, clean, sizeof(clean)), s->name);
        reply(s, "502 5.5.2 Error: command not recognized");
    }
    }
    return 0;
}

/* ---- input ---- */

static int session_paused(const struct session *s)
{
    return s->state == ST_WAIT || s->state == ST_TLS || s->state == ST_CLOSE || s->out.len >= OUT_HIGH;
}

/* Processes bytes while the session can; returns how many were used. */
static size_t process(struct session *s, const char *data, size_t n)
{
    const char *p = data, *line;
    size_t left = n, len;
    unsigned flags;

    while (left > 0 && !session_paused(s)) {
        if (s->state == ST_BDAT) {
            size_t take = left < s->bdat_left ? left : (size_t)s->bdat_left;
            bdat_bytes(s, p, take);
            p += take;
            left -= take;
            s->bdat_left -= take;
            if (s->bdat_left == 0)
                bdat_chunk_done(s);
            continue;
        }
        if (lr_next(&s->lr, &p, &left, &line, &len, &flags) == 0)
            break;
        if (s->state == ST_DATA) {
            data_line(s, line, len, flags);
        } else {
            command(s, line, len, flags);
            if (s->state == ST_BDAT && s->bdat_left == 0)
                bdat_chunk_done(s);
        }
    }
    if (s->state == ST_TLS && s->tls_start_pending && (left > 0 || lr_pending(&s->lr) > 0 || s->pending.len > 0)) {
        /* RFC 3207: nothing sent before the handshake may count after it. */
        log_warning("discarding input pipelined after STARTTLS from %s", s->name);
        left = 0;
        lr_reset(&s->lr);
        buf_free(&s->pending);
    }
    return n - left;
}

static ssize_t session_read(struct session *s, char *buf, size_t len)
{
    if (s->ssl && s->tls_active) {
        int r = SSL_read(s->ssl, buf, (int)len);
        if (r > 0)
            return r;
        int e = SSL_get_error(s->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ)
            return -2;
        if (e == SSL_ERROR_WANT_WRITE) {
            s->tls_want_write = 1;
            return -2;
        }
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
        ssize_t r = recv(s->fd, buf, len, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
    }
}

static const char *state_name(const struct session *s)
{
    switch (s->state) {
    case ST_DATA: return "DATA";
    case ST_BDAT: return "BDAT";
    case ST_TLS: return "STARTTLS";
    default: return s->in_mail ? (s->env.nrcpt ? "RCPT" : "MAIL") : s->helo_kind ? "EHLO" : "CONNECT";
    }
}

static void session_end(struct session *s, const char *why)
{
    char summary[512];

    if (why)
        log_info("%s after %s from %s", why, state_name(s), s->name);
    session_flush(s);
    log_info("disconnect from %s%s", s->name, cmd_summary(s, summary, sizeof(summary)));
    session_free(s);
}

static void tls_handshake(struct session *s)
{
    int r;

    if (!s->ssl) {
        s->ssl = tls_new(s->fd);
        if (!s->ssl) {
            log_warning("TLS setup failed for %s", s->name);
            session_end(s, NULL);
            return;
        }
    }
    r = SSL_accept(s->ssl);
    if (r <= 0) {
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            s->tls_want_write = e == SSL_ERROR_WANT_WRITE;
            session_update(s);
            return;
        }
        char err[256];
        log_warning("TLS handshake failed for %s: %s", s->name, tls_error(err, sizeof(err)));
        session_free(s);
        return;
    }
    char d[200];
    tls_describe(s->ssl, d, sizeof(d));
    log_info("%s TLS connection established from %s: %s", s->port == PORT_SMTPS ? "Anonymous" : "Anonymous", s->name, d);
    s->tls_active = 1;
    s->tls_start_pending = 0;
    /* RFC 3207 4.2: forget everything learned before the handshake. */
    txn_reset(s);
    s->helo_kind = 0;
    s->helo[0] = 0;
    lr_reset(&s->lr);
    buf_free(&s->pending);
    s->state = ST_CMD;
    if (s->port == PORT_SMTPS)
        reply(s, "220 %s ESMTP Postern", cfg->hostname);
    session_input(s);
}

/* Reads and processes until the socket is dry or the session must wait. */
static void session_input(struct session *s)
{
    if (s->pending.len > 0 && !session_paused(s)) {
        size_t used = process(s, buf_head(&s->pending), s->pending.len);
        buf_consume(&s->pending, used);
    }
    while (!session_paused(s) && s->pending.len == 0) {
        ssize_t n = session_read(s, scratch, sizeof(scratch));
        if (n == -2)
            break;
        if (n <= 0) {
            if (s->state == ST_DATA || s->state == ST_BDAT)
                log_warning("client %s vanished mid-message; nothing queued", s->name);
            session_end(s, "lost connection");
            return;
        }
        s->deadline = now_ms() + (uint64_t)cfg->smtpd_timeout * 1000;
        size_t used = process(s, scratch, (size_t)n);
        if (used < (size_t)n && buf_append(&s->pending, scratch + used, (size_t)n - used) < 0) {
            session_end(s, "out of memory");
            return;
        }
    }
    session_update(s);
}

/* Sends what is queued and sets the events the session waits for. */
static void session_update(struct session *s)
{
    uint32_t events = 0;

    if (session_flush(s) < 0) {
        session_end(s, "write error");
        return;
    }
    if (s->state == ST_CLOSE && s->out.len == 0) {
        session_end(s, NULL);
        return;
    }
    if (s->state == ST_TLS && s->tls_start_pending && s->out.len == 0 && !s->ssl) {
        tls_handshake(s);
        return;
    }
    if (s->state == ST_TLS || !session_paused(s))
        events |= EPOLLIN;
    if (s->out.len > 0 || s->tls_want_write)
        events |= EPOLLOUT;
    if (events != s->events && ev_mod(ev, s->fd, events) == 0)
        s->events = events;
}

static void session_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct session *s = arg;

    (void)loop;
    (void)fd;
    if (s->state == ST_TLS && s->ssl) {
        tls_handshake(s);
        return;
    }
    if (events & EPOLLOUT) {
        if (session_flush(s) < 0) {
            session_end(s, "write error");
            return;
        }
        if (s->tls_want_write == 0 && s->tls_active && !(events & EPOLLIN)) {
            /* SSL_read may have been waiting for this write. */
            session_input(s);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        session_input(s);
    else
        session_update(s);
}

static void session_free(struct session *s)
{
    if (s->waiting)
        qlink_cancel(s->waiting);
    txn_reset(s);
    qrec_free(&s->env);
    if (s->ssl)
        SSL_free(s->ssl);
    ev_del(ev, s->fd);
    close(s->fd);
    buf_free(&s->pending);
    buf_free(&s->out);
    if (s->prev)
        s->prev->next = s->next;
    else
        sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nsessions--;
    free(s);
}

static void accept_cb(struct evloop *loop, int lfd, uint32_t events, void *arg);
static int accept_paused;

static void accept_resume(struct evloop *loop, void *arg)
{
    (void)arg;
    accept_paused = 0;
    if (shutting_down)
        return;
    for (size_t i = 0; i < nlfds; i++)
        ev_add(loop, lfds[i], EPOLLIN | EPOLLEXCLUSIVE, accept_cb, (void *)(long)lkinds[i]);
}

/* Out of descriptors: a level-triggered listener would wake us forever, so
 * stop watching the listeners for a second and let sessions end. */
static void accept_pause(struct evloop *loop, const char *why)
{
    if (accept_paused)
        return;
    log_warning("accept: %s; not accepting for a second (%u sessions open)", why, nsessions);
    accept_paused = 1;
    for (size_t i = 0; i < nlfds; i++)
        ev_del(loop, lfds[i]);
    ev_timer(loop, 1000, accept_resume, NULL);
}

static void accept_cb(struct evloop *loop, int lfd, uint32_t events, void *arg)
{
    enum port_kind kind = (enum port_kind)(long)arg;

    (void)events;
    for (int i = 0; i < 64 && !shutting_down; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct session *s;
        char ip[64];

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(loop, strerror(errno));
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warning("accept: %s", strerror(errno));
            return;
        }
        net_addr_text((struct sockaddr *)&ss, ip, sizeof(ip));
        int one = 1;
        /* Replies are small and each one is awaited: never let Nagle hold one. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (nsessions >= cfg->smtpd_max_sessions) {
            char msg[300];
            int n = snprintf(msg, sizeof(msg), "421 4.7.0 %s Error: too many connections\r\n", cfg->hostname);
            log_warning("too many connections: refusing unknown[%s]", ip);
            if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) < 0) {
                /* closing anyway */
            }
            close(fd);
            continue;
        }
        s = calloc(1, sizeof(*s));
        if (!s) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->port = kind;
        s->spool_fd = -1;
        str_copy(s->addr, ip, sizeof(s->addr));
        snprintf(s->name, sizeof(s->name), "unknown[%s]", ip);
        lr_init(&s->lr, CMD_LINE_MAX_EXT);
        buf_init(&s->pending, SCRATCH);
        buf_init(&s->out, OUT_MAX);
        qrec_init(&s->env);
        s->deadline = now_ms() + (uint64_t)cfg->smtpd_timeout * 1000;
        s->events = EPOLLIN;
        if (ev_add(loop, fd, EPOLLIN, session_io, s) < 0) {
            close(fd);
            free(s);
            continue;
        }
        s->next = sessions;
        if (sessions)
            sessions->prev = s;
        sessions = s;
        nsessions++;
        log_info("connect from %s", s->name);
        if (kind == PORT_SMTPS) {
            s->state = ST_TLS;
            s->tls_start_pending = 1;
            tls_handshake(s);
        } else {
            reply(s, "220 %s ESMTP Postern", cfg->hostname);
            session_update(s);
        }
    }
}

int session_listen(struct evloop *loop, int fd, enum port_kind kind)
{
    ev = loop;
    if (nlfds >= ARRAY_LEN(lfds))
        return -1;
    /* EPOLLEXCLUSIVE: one worker wakes per connection, not all of them. */
    if (ev_add(loop, fd, EPOLLIN | EPOLLEXCLUSIVE, accept_cb, (void *)(long)kind) < 0)
        return -1;
    lfds[nlfds] = fd;
    lkinds[nlfds] = kind;
    nlfds++;
    return 0;
}

void session_set_config(const struct config *c)
{
    cfg = c;
}

unsigned session_count(void)
{
    return nsessions;
}

void session_shutdown(int drain)
{
    shutting_down = 1;
    for (size_t i = 0; i < nlfds; i++) {
        if (!accept_paused)
            ev_del(ev, lfds[i]);
        close(lfds[i]);
    }
    nlfds = 0;
    if (drain)
        return;
    for (struct session *s = sessions, *n; s; s = n) {
        n = s->next;
        if (s->state == ST_DATA || s->state == ST_BDAT || s->state == ST_WAIT) {
            s->stopping = 1; /* let the message in flight finish */
            continue;
        }
        reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
        s->state = ST_CLOSE;
        session_update(s);
    }
}

void session_tick(void)
{
    uint64_t now = now_ms();

    for (struct session *s = sessions, *n; s; s = n) {
        n = s->next;
        if (s->state == ST_WAIT || now < s->deadline)
            continue;
        if (s->state == ST_CLOSE) {
            session_free(s);
            continue;
        }
        buf_printf(&s->out, "421 4.4.2 %s Error: timeout exceeded\r\n", cfg->hostname);
        s->state = ST_CLOSE;
        log_info("timeout after %s from %s", state_name(s), s->name);
        session_update(s);
    }
}
