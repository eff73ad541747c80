/*
 * session.c - SMTP sessions (session.h): their life from accept to close,
 * reading and writing through conn.c, the STARTTLS and smtps handshakes,
 * suspension, timeouts and shutdown.
 *
 * Input is read into one scratch buffer per worker; the command layer
 * (command.c) takes what it can and the rest waits in the session's
 * pending buffer, so an idle session costs a few KiB and no client can
 * make it grow. Must never interpret input itself: that is command.c's.
 */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authcmd.h"
#include "command.h"
#include "log.h"
#include "util.h"

#define OUT_HIGH (16u << 10)      /* stop reading while this much is unsent */
#define OUT_MAX (64u << 10)
#define SCRATCH 65536

static struct evloop *ev;
static const struct config *cfg;
static struct session *sessions;
static unsigned nsessions;
static char scratch[SCRATCH];

static void session_input(struct session *s);
static void session_update(struct session *s);
static void session_free(struct session *s);

void session_init(struct evloop *loop, const struct config *c)
{
    ev = loop;
    cfg = c;
    throttle_init(loop, c);
}

const struct config *session_config(void)
{
    return cfg;
}

unsigned session_count(void)
{
    return nsessions;
}

void session_reply(struct session *s, const char *fmt, ...)
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
    if ((line[0] == '4' || line[0] == '5') && strncmp(line, "421", 3) != 0 &&
        ++s->errors <= cfg->smtpd_error_limit && throttle_error_reply(s, line, (size_t)n, s->errors))
        return; /* held for the tarpit delay */
    if (buf_append(&s->c.out, line, (size_t)n) < 0) {
        /* A client that never reads its replies loses the session. */
        s->state = ST_CLOSE;
        return;
    }
    if ((line[0] == '4' || line[0] == '5') && strncmp(line, "421", 3) != 0 && s->errors > cfg->smtpd_error_limit) {
        log_warning("too many errors from %s: %u errors, disconnecting (smtpd_error_limit %u)", s->name, s->errors,
                    cfg->smtpd_error_limit);
        buf_printf(&s->c.out, "421 4.7.0 %s Error: too many errors\r\n", cfg->hostname);
        s->state = ST_CLOSE;
    }
}

void session_greet(struct session *s)
{
    session_reply(s, "220 %s ESMTP Postern", cfg->hostname);
}

int session_paused(const struct session *s)
{
    return s->suspended || s->state == ST_TLS || s->state == ST_CLOSE || s->c.out.len >= OUT_HIGH;
}

void session_suspend(struct session *s, session_cancel_fn cancel, uint32_t id)
{
    s->suspended = 1;
    s->susp_id = id;
    s->susp_cancel = cancel;
}

void session_resume(struct session *s)
{
    s->suspended = 0;
    s->susp_id = 0;
    s->susp_cancel = NULL;
    if (s->stopping && s->state == ST_CMD) {
        session_reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
        s->state = ST_CLOSE;
    }
    session_input(s);
}

static void session_end(struct session *s, const char *why)
{
    char summary[512];

    if (why)
        log_info("%s after %s from %s", why, command_state_name(s), s->name);
    conn_flush(&s->c);
    log_info("disconnect from %s%s", s->name, command_summary(s, summary, sizeof(summary)));
    session_free(s);
}

static void tls_handshake(struct session *s)
{
    char err[256], d[200];
    int r = conn_tls_accept(&s->c, err, sizeof(err));

    if (r == 0) {
        session_update(s);
        return;
    }
    if (r == -2) {
        log_warning("TLS setup failed for %s", s->name);
        session_end(s, NULL);
        return;
    }
    if (r < 0) {
        log_warning("TLS handshake failed for %s: %s", s->name, err);
        session_free(s);
        return;
    }
    conn_tls_describe(&s->c, d, sizeof(d));
    log_info("Anonymous TLS connection established from %s: %s", s->name, d);
    s->tls_start_pending = 0;
    s->deadline = now_ms() + (uint64_t)cfg->smtpd_timeout * 1000;
    /* RFC 3207 4.2: forget everything learned before the handshake. */
    txn_reset(&s->txn);
    s->helo_kind = 0;
    s->helo[0] = 0;
    lr_reset(&s->lr);
    buf_free(&s->pending);
    s->state = ST_CMD;
    if (s->port == PORT_SMTPS)
        session_greet(s);
    session_input(s);
}

/* Hands input to the command layer; what it leaves waits in pending.
 * -1 when that cannot be kept. */
static int process(struct session *s, const char *data, size_t n, int from_pending)
{
    size_t used = command_input(s, data, n);

    if (s->state == ST_TLS && s->tls_start_pending && (used < n || lr_pending(&s->lr) > 0)) {
        /* RFC 3207: nothing sent before the handshake may count after it. */
        log_warning("discarding input pipelined after STARTTLS from %s", s->name);
        lr_reset(&s->lr);
        buf_free(&s->pending);
        return 0;
    }
    if (from_pending)
        buf_consume(&s->pending, used);
    else if (used < n && buf_append(&s->pending, data + used, n - used) < 0)
        return -1;
    return 0;
}

/* Reads and processes until the socket is dry or the session must wait. */
static void session_input(struct session *s)
{
    if (!session_paused(s))
        process(s, s->pending.len ? buf_head(&s->pending) : "", s->pending.len, 1);
    while (!session_paused(s) && s->pending.len == 0) {
        ssize_t n = conn_read(&s->c, scratch, sizeof(scratch));
        if (n == CONN_AGAIN)
            break;
        if (n <= 0) {
            if (s->state == ST_DATA || s->state == ST_BDAT)
                log_warning("client %s vanished mid-message; nothing queued", s->name);
            session_end(s, "lost connection");
            return;
        }
        s->deadline = now_ms() + (uint64_t)cfg->smtpd_timeout * 1000;
        if (process(s, scratch, (size_t)n, 0) < 0) {
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

    if (conn_flush(&s->c) < 0) {
        session_end(s, "write error");
        return;
    }
    if (s->state == ST_CLOSE && s->c.out.len == 0) {
        session_end(s, NULL);
        return;
    }
    if (s->state == ST_TLS && s->tls_start_pending && s->c.out.len == 0 && !s->c.ssl) {
        s->deadline = now_ms() + (uint64_t)cfg->smtpd_starttls_timeout * 1000;
        tls_handshake(s);
        return;
    }
    if (s->state == ST_TLS || !session_paused(s) || s->lim.greet_pending)
        events |= EPOLLIN;
    if (s->c.out.len > 0 || s->c.want_write)
        events |= EPOLLOUT;
    if (events != s->events && ev_mod(ev, s->c.fd, events) == 0)
        s->events = events;
}

/* Input while the greeting is held: an early talker gets 554 and is
 * dropped (what it sent is read first, so the close sends no reset over
 * the reply). */
static void early_talk(struct session *s)
{
    ssize_t n = conn_read(&s->c, scratch, sizeof(scratch));

    if (n == CONN_AGAIN)
        return;
    if (n <= 0) {
        session_end(s, "lost connection");
        return;
    }
    throttle_early_talker(s, scratch, (size_t)n);
    for (int i = 0; i < 16 && conn_read(&s->c, scratch, sizeof(scratch)) > 0; i++)
        ;
    session_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
    s->state = ST_CLOSE;
    session_update(s);
}

static void session_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct session *s = arg;

    (void)loop;
    (void)fd;
    if (s->lim.greet_pending) {
        early_talk(s);
        return;
    }
    if (s->state == ST_TLS && s->c.ssl) {
        tls_handshake(s);
        return;
    }
    if (s->suspended && (events & (EPOLLHUP | EPOLLERR))) {
        /* Gone while waiting: nobody to answer, so cancel the request. */
        session_end(s, "lost connection");
        return;
    }
    if (events & EPOLLOUT) {
        if (conn_flush(&s->c) < 0) {
            session_end(s, "write error");
            return;
        }
        if (s->c.want_write == 0 && s->c.tls_active && !(events & EPOLLIN)) {
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
    if (s->suspended && s->susp_cancel)
        s->susp_cancel(s->susp_id);
    throttle_disconnect(s);
    authcmd_free(s);
    txn_reset(&s->txn);
    qrec_free(&s->txn.env);
    ev_del(ev, s->c.fd);
    conn_close(&s->c);
    buf_free(&s->pending);
    if (s->prev)
        s->prev->next = s->next;
    else
        sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nsessions--;
    free(s);
}

struct session *session_start(int fd, enum port_kind kind, const struct sockaddr_storage *peer, const char *ip)
{
    struct session *s = calloc(1, sizeof(*s));
    char refusal[512];

    if (!s) {
        close(fd);
        return NULL;
    }
    conn_init(&s->c, fd, OUT_MAX);
    s->port = kind;
    s->peer = *peer;
    txn_init(&s->txn);
    str_copy(s->addr, ip, sizeof(s->addr));
    snprintf(s->name, sizeof(s->name), "unknown[%s]", ip);
    lr_init(&s->lr, CMD_LINE_MAX_EXT);
    buf_init(&s->pending, SCRATCH);
    s->deadline = now_ms() + (uint64_t)cfg->smtpd_timeout * 1000;
    s->events = EPOLLIN;
    if (ev_add(ev, fd, EPOLLIN, session_io, s) < 0) {
        conn_close(&s->c);
        free(s);
        return NULL;
    }
    s->next = sessions;
    if (sessions)
        sessions->prev = s;
    sessions = s;
    nsessions++;
    log_info("connect from %s", s->name);
    if (throttle_connect(s, refusal, sizeof(refusal)) < 0) {
        session_reply(s, "%s", refusal);
        s->state = ST_CLOSE;
        session_update(s);
    } else if (kind == PORT_SMTPS) {
        s->state = ST_TLS;
        s->tls_start_pending = 1;
        s->deadline = now_ms() + (uint64_t)cfg->smtpd_starttls_timeout * 1000;
        tls_handshake(s);
    } else {
        if (!throttle_greet_pause(s))
            session_greet(s);
        session_update(s);
    }
    return s;
}

void session_shutdown(int drain)
{
    if (drain)
        return;
    for (struct session *s = sessions, *n; s; s = n) {
        n = s->next;
        if (s->state == ST_DATA || s->state == ST_BDAT || s->suspended) {
            s->stopping = 1; /* let the message in flight finish */
            continue;
        }
        session_reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
        s->state = ST_CLOSE;
        session_update(s);
    }
}

void session_tick(void)
{
    uint64_t now = now_ms();

    throttle_tick();
    for (struct session *s = sessions, *n; s; s = n) {
        n = s->next;
        if (s->suspended || now < s->deadline)
            continue;
        if (s->state == ST_CLOSE) {
            session_free(s);
            continue;
        }
        if (s->state == ST_TLS && s->c.ssl) {
            /* no plaintext reply inside a handshake */
            log_info("timeout after %s from %s", command_state_name(s), s->name);
            session_free(s);
            continue;
        }
        buf_printf(&s->c.out, "421 4.4.2 %s Error: timeout exceeded\r\n", cfg->hostname);
        s->state = ST_CLOSE;
        log_info("timeout after %s from %s", command_state_name(s), s->name);
        session_update(s);
    }
}
