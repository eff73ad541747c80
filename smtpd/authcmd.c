/*
 * authcmd.c - SMTP AUTH (authcmd.h). Each step checks, answers, and only
 * then acts. Must never log a password or the response that carries one
 * (a PLAIN response is the password), never log a user name unescaped,
 * never answer 235 without the auth process's AUTH_OK, and never block
 * the event loop: the check and the delay of a 535 suspend the session.
 */
#include "authcmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "alink.h"
#include "localrcpt.h"
#include "log.h"
#include "sasl.h"
#include "session.h"
#include "util.h"

#define CFG session_config()

struct authx {
    enum sasl_mech mech;
    int step;                           /* LOGIN: 0 wants the user, 1 the password */
    char user[AUTH_USER_MAX + 1];
    char shown[AUTH_USER_MAX * 4 + 1];  /* user, escaped for logs */
    char line[SASL_RESPONSE_MAX + 2];   /* the response line being read */
    size_t len;
    int toolong;
    uint64_t timer;                     /* the delayed 535 */
};

static struct evloop *ev;


static void on_answer(void *arg, const struct auth_result *r);

void authcmd_init(struct evloop *loop, const char *path)
{
    ev = loop;
    alink_init(loop, path, on_answer);
}

void authcmd_shutdown(void)
{
    alink_free();
}

int authcmd_offered(const struct session *s)
{
    return s->port != PORT_SMTP && s->c.tls_active;
}

static void exchange_end(struct session *s)
{
    if (s->authx) {
        if (s->authx->timer)
            ev_timer_cancel(ev, s->authx->timer);
        OPENSSL_cleanse(s->authx, sizeof(*s->authx));
        free(s->authx);
        s->authx = NULL;
    }
    if (s->state == ST_AUTH)
        s->state = ST_CMD;
}

void authcmd_free(struct session *s)
{
    exchange_end(s);
    free(s->auth_user);
    s->auth_user = NULL;
}

static void no_cancel(uint32_t id)
{
    (void)id; /* the delay timer is cancelled by authcmd_free */
}

static void on_delay(struct evloop *loop, void *arg)
{
    struct session *s = arg;

    (void)loop;
    s->authx->timer = 0;
    exchange_end(s);
    session_reply(s, "535 5.7.8 Error: authentication failed");
    session_resume(s);
}

/* A failure: 535 after delay ms, the session suspended meanwhile. */
static void fail_later(struct session *s, uint64_t delay)
{
    int waiting = s->suspended; /* for our check: ours to resume */

    s->state = ST_CMD;
    if (delay == 0 || !(s->authx->timer = ev_timer(ev, delay, on_delay, s))) {
        exchange_end(s);
        session_reply(s, "535 5.7.8 Error: authentication failed");
        if (waiting)
            session_resume(s);
        return;
    }
    session_suspend(s, no_cancel, 1);
}

static void on_answer(void *arg, const struct auth_result *r)
{
    struct session *s = arg;
    struct authx *x = s->authx;

    if (!r || r->status == AUTH_TEMPFAIL) {
        log_warning("%s: SASL %s authentication for %s deferred: %s", s->name, sasl_mech_name(x->mech), x->shown,
                    r ? "the auth process could not check it" : "the auth process is unavailable");
        exchange_end(s);
        session_reply(s, "454 4.7.0 Temporary authentication failure");
        session_resume(s);
        return;
    }
    if (r->status == AUTH_OK) {
        s->auth_user = strdup(r->user);
        if (!s->auth_user) {
            exchange_end(s);
            session_reply(s, "454 4.7.0 Temporary authentication failure");
            session_resume(s);
            return;
        }
        s->auth_mech = sasl_mech_name(x->mech);
        log_info("%s: sasl_method=%s, sasl_username=%s", s->name, s->auth_mech, s->auth_user);
        exchange_end(s);
        s->cnt_ok[CMD_AUTH]++;
        session_reply(s, "235 2.7.0 Authentication successful");
        session_resume(s);
        return;
    }
    if (r->status == AUTH_BLOCKED) {
        log_warning("%s: SASL %s authentication for %s refused: too many failures", s->name,
                    sasl_mech_name(x->mech), x->shown);
        exchange_end(s);
        session_reply(s, "421 4.7.0 %s Error: too many failed authentication attempts", CFG->hostname);
        s->state = ST_CLOSE;
        session_resume(s);
        return;
    }
    log_warning("%s: SASL %s authentication failed: user=<%s>", s->name, sasl_mech_name(x->mech), x->shown);
    fail_later(s, r->delay_ms);
}

/* A name that cannot be looked up: one escaped log line, then 535. */
static void bad_name(struct session *s, const char *name, size_t len)
{
    char shown[AUTH_USER_MAX * 4 + 1];

    log_sanitize(name, len > AUTH_USER_MAX ? AUTH_USER_MAX : len, shown, sizeof(shown));
    log_warning("%s: SASL %s authentication failed: bad user name \"%s\"%s", s->name, sasl_mech_name(s->authx->mech),
                shown, len > AUTH_USER_MAX ? " (too long)" : "");
    fail_later(s, CFG->smtpd_auth_failure_delay_ms);
}

static void check(struct session *s, const char *pass, size_t plen)
{
    struct authx *x = s->authx;
    uint32_t id;

    if (memchr(pass, 0, plen) || plen > AUTH_PASS_MAX) {
        log_warning("%s: SASL %s authentication failed: user=<%s> (a password with NUL or over %d bytes)", s->name,
                    sasl_mech_name(x->mech), x->shown, AUTH_PASS_MAX);
        fail_later(s, CFG->smtpd_auth_failure_delay_ms);
        return;
    }
    s->state = ST_CMD;
    id = alink_check(x->user, pass, plen, s->addr, s);
    if (!id) {
        log_warning("%s: SASL %s authentication for %s deferred: the auth process is unavailable", s->name,
                    sasl_mech_name(x->mech), x->shown);
        exchange_end(s);
        session_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    session_suspend(s, alink_cancel, id);
}

static int set_user(struct session *s, const char *user, size_t len)
{
    struct authx *x = s->authx;

    if (!sasl_name_ok(user, len)) {
        bad_name(s, user, len);
        return -1;
    }
    memcpy(x->user, user, len);
    x->user[len] = 0;
    log_sanitize(x->user, len, x->shown, sizeof(x->shown));
    return 0;
}

/* One response (base64, without its line end). */
static void response(struct session *s, const char *text, size_t len)
{
    struct authx *x = s->authx;
    char dec[SASL_DECODED_MAX + 1];
    const char *user, *pass;
    size_t n, ulen, plen;

    if (len == 1 && text[0] == '*') {
        exchange_end(s);
        session_reply(s, "501 5.7.0 Authentication aborted");
        return;
    }
    if (sasl_b64_decode(text, len, dec, sizeof(dec), &n) < 0) {
        log_warning("%s: SASL %s: malformed base64 in the response", s->name, sasl_mech_name(x->mech));
        exchange_end(s);
        session_reply(s, "501 5.5.2 Cannot decode response");
        return;
    }
    if (x->mech == SASL_PLAIN) {
        if (sasl_plain_split(dec, n, &user, &ulen, &pass, &plen) < 0) {
            log_warning("%s: SASL PLAIN: malformed message (not [authzid] NUL user NUL password)", s->name);
            exchange_end(s);
            session_reply(s, "501 5.5.2 Invalid authentication message");
        } else if (set_user(s, user, ulen) == 0) {
            check(s, pass, plen);
        }
    } else if (x->step == 0) {
        if (set_user(s, dec, n) == 0) {
            x->step = 1;
            session_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
        }
    } else {
        check(s, dec, n);
    }
    OPENSSL_cleanse(dec, sizeof(dec));
}

void authcmd_command(struct session *s, const char *arg)
{
    char mech[32];
    const char *sp = strchr(arg, ' '), *init = NULL;
    size_t mlen = sp ? (size_t)(sp - arg) : strlen(arg);
    enum sasl_mech m;

    if (s->port == PORT_SMTP) {
        session_reply(s, "503 5.5.1 Error: authentication not enabled");
        return;
    }
    if (!s->c.tls_active) {
        session_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (!s->helo_kind) {
        session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->auth_user) {
        session_reply(s, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (s->txn.active) {
        session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (mlen == 0) {
        session_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    if (mlen >= sizeof(mech) || (m = (memcpy(mech, arg, mlen), mech[mlen] = 0, sasl_mech_named(mech))) == SASL_NONE) {
        session_reply(s, "504 5.5.4 Unrecognized authentication type");
        return;
    }
    if (sp) {
        init = sp + 1;
        while (*init == ' ')
            init++;
        if (!*init || strchr(init, ' ')) {
            session_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
            return;
        }
    }
    if (!(s->authx = calloc(1, sizeof(*s->authx)))) {
        session_reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    s->authx->mech = m;
    str_copy(s->authx->shown, "?", sizeof(s->authx->shown));
    s->state = ST_AUTH;
    if (init) {
        response(s, init, strlen(init));
        return;
    }
    session_reply(s, m == SASL_PLAIN ? "334 " : "334 VXNlcm5hbWU6"); /* "Username:" */
}

size_t authcmd_input(struct session *s, const char *data, size_t n)
{
    struct authx *x = s->authx;
    const char *lf = memchr(data, '\n', n);
    size_t take = lf ? (size_t)(lf - data) + 1 : n, body = lf ? take - 1 : n;

    if (!x) {
        s->state = ST_CMD;
        return 0;
    }
    if (!x->toolong && x->len + body <= sizeof(x->line)) {
        memcpy(x->line + x->len, data, body);
        x->len += body;
    } else {
        x->toolong = 1;
    }
    if (!lf)
        return take;
    if (x->toolong || (x->len > 0 && x->line[x->len - 1] == '\r' ? x->len - 1 : x->len) > SASL_RESPONSE_MAX) {
        log_warning("%s: SASL %s: response longer than %d octets", s->name, sasl_mech_name(x->mech),
                    SASL_RESPONSE_MAX);
        exchange_end(s);
        session_reply(s, "500 5.5.6 Authentication exchange line is too long");
        return take;
    }
    if (x->len > 0 && x->line[x->len - 1] == '\r')
        x->len--;
    x->line[x->len] = 0;
    n = x->len;
    x->len = 0;
    response(s, x->line, n);
    if (s->authx)
        OPENSSL_cleanse(s->authx->line, sizeof(s->authx->line));
    return take;
}

const char *authcmd_mail_refusal(const struct session *s)
{
    if (s->port == PORT_SMTP)
        return NULL;
    if (!s->c.tls_active)
        return "530 5.7.0 Must issue a STARTTLS command first";
    if (!s->auth_user)
        return "530 5.7.0 Authentication required";
    return NULL;
}

int authcmd_sender_owned(const struct session *s, const struct addr *a)
{
    if (!s->auth_user)
        return 0;
    if (!a->mailbox[0])
        return 1; /* the null sender (notices, MDNs) belongs to nobody */
    return localrcpt_owned(CFG, a, s->auth_user);
}
