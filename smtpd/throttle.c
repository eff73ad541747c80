/*
 * throttle.c - smtpd's limits against abuse as the sessions meet them
 * (throttle.h), on top of limits.c's tables.
 *
 * Must never block or sleep: a held greeting and a tarpit delay are a
 * session_suspend() with an event-loop timer, cancelled if the session
 * goes first. Must never log client bytes unescaped. Each time a limit
 * bites it logs one line naming the client (Postfix's wording where
 * Postfix has the limit).
 */
#include "throttle.h"

#include <stdio.h>
#include <sys/socket.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "session.h"
#include "util.h"

static struct evloop *ev;
static const struct config *cfg;
static struct lim_table ips, users;
static int ready;

static const char *service(const struct session *s)
{
    return s->port == PORT_SMTP ? "smtp" : s->port == PORT_SUBMISSION ? "submission" : "smtps";
}

void throttle_init(struct evloop *loop, const struct config *c)
{
    uint64_t unit = (uint64_t)c->anvil_rate_time_unit * 1000;
    uint64_t ttl = (uint64_t)c->smtpd_greet_pause_ttl * 1000;
    uint64_t cap = (uint64_t)c->smtpd_max_sessions * 2;

    ev = loop;
    cfg = c;
    if (cap < 4096)
        cap = 4096;
    if (cap > (1u << 20))
        cap = 1u << 20;
    if (lim_table_init(&ips, (uint32_t)cap, unit > ttl ? unit : ttl) < 0 ||
        lim_table_init(&users, 4096, unit) < 0) {
        log_warning("out of memory for the client limit tables: limits are off");
        return;
    }
    ready = 1;
}

void throttle_tick(void)
{
    uint64_t now = now_ms();

    if (!ready)
        return;
    lim_expire(&ips, now);
    lim_expire(&users, now);
}

static int exempt(const struct session *s)
{
    return cidr_list_match(&cfg->relay_networks, (const struct sockaddr *)&s->peer);
}

int throttle_connect(struct session *s, char *reply, size_t len)
{
    unsigned char key[LIM_KEY_LEN];
    struct lim_entry *e;
    uint64_t now = now_ms();
    unsigned count, rate;

    s->lim.connected = now;
    if (!ready || (s->peer.ss_family != AF_INET && s->peer.ss_family != AF_INET6) || exempt(s))
        return 0;
    lim_key_ip((const struct sockaddr *)&s->peer, key);
    e = lim_get(&ips, key, now);
    if (!e) {
        /* every entry holds a connection: more sessions than the table */
        log_warning("client limit table full: not counting %s", s->name);
        return 0;
    }
    count = e->active + 1;
    rate = lim_rate(e, LIM_W_CONN, (uint64_t)cfg->anvil_rate_time_unit * 1000, now);
    if (cfg->smtpd_client_connection_count_limit && count > cfg->smtpd_client_connection_count_limit) {
        log_warning("Connection concurrency limit exceeded: %u from %s for service %s", count, s->name, service(s));
        snprintf(reply, len, "421 4.7.0 %s Error: too many connections from %s", cfg->hostname, s->addr);
        return -1;
    }
    if (cfg->smtpd_client_connection_rate_limit && rate > cfg->smtpd_client_connection_rate_limit) {
        log_warning("Connection rate limit exceeded: %u from %s for service %s", rate, s->name, service(s));
        snprintf(reply, len, "421 4.7.0 %s Error: too many connections from %s", cfg->hostname, s->addr);
        return -1;
    }
    lim_acquire(&ips, e, now);
    s->lim.ip = e;
    return 0;
}

void throttle_disconnect(struct session *s)
{
    if (s->lim.ip)
        lim_release(&ips, s->lim.ip, now_ms());
    s->lim.ip = NULL;
}

/* Timer ids go through session_suspend's 32-bit request id. */
static void timer_cancel(uint32_t id)
{
    ev_timer_cancel(ev, id);
}

static int suspend_for(struct session *s, uint64_t ms, ev_timer_cb cb)
{
    uint64_t id = ev_timer(ev, ms, cb, s);

    if (!id)
        return -1;
    if (id > UINT32_MAX) {
        ev_timer_cancel(ev, id);
        return -1;
    }
    s->lim.timer = id;
    session_suspend(s, timer_cancel, (uint32_t)id);
    return 0;
}

static void greet_done(struct evloop *loop, void *arg)
{
    struct session *s = arg;

    (void)loop;
    s->lim.timer = 0;
    s->lim.greet_pending = 0;
    if (s->lim.ip)
        s->lim.ip->pass_until = now_ms() + (uint64_t)cfg->smtpd_greet_pause_ttl * 1000;
    session_greet(s);
    session_resume(s);
}

int throttle_greet_pause(struct session *s)
{
    if (!ready || cfg->smtpd_greet_pause == 0 || s->port != PORT_SMTP || !s->lim.ip)
        return 0;
    if (s->lim.ip->pass_until > now_ms())
        return 0;
    if (suspend_for(s, (uint64_t)cfg->smtpd_greet_pause * 1000, greet_done) < 0)
        return 0;
    s->lim.greet_pending = 1;
    return 1;
}

void throttle_early_talker(struct session *s, const char *data, size_t n)
{
    char clean[128];
    uint64_t ms = now_ms() - s->lim.connected;

    log_warning("improper command pipelining after CONNECT from %s: %s (%u bytes %llu.%03llu s after connect, "
                "before the greeting)", s->name, log_sanitize(data, n < 60 ? n : 60, clean, sizeof(clean)),
                (unsigned)n, (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
    s->lim.greet_pending = 0;
    if (s->lim.ip)
        s->lim.ip->pass_until = 0;
}

static void tarpit_done(struct evloop *loop, void *arg)
{
    struct session *s = arg;

    (void)loop;
    s->lim.timer = 0;
    if (buf_append(&s->c.out, s->lim.held, s->lim.held_len) < 0)
        s->state = ST_CLOSE;
    s->lim.held_len = 0;
    session_resume(s);
}

int throttle_error_reply(struct session *s, const char *line, size_t n, unsigned errors)
{
    /* Only a reply made while processing a command: a callback's reply
     * comes while the session is still suspended for that request. */
    if (!ready || s->suspended || cfg->smtpd_error_sleep_time == 0 || errors <= cfg->smtpd_soft_error_limit ||
        n > sizeof(s->lim.held) || s->state == ST_CLOSE)
        return 0;
    if (suspend_for(s, (uint64_t)cfg->smtpd_error_sleep_time * 1000, tarpit_done) < 0)
        return 0;
    memcpy(s->lim.held, line, n);
    s->lim.held_len = n;
    if (!s->lim.tarpit_logged) {
        s->lim.tarpit_logged = 1;
        log_warning("too many errors from %s: %u errors, delaying each further error reply by %u s "
                    "(smtpd_soft_error_limit %u, disconnect after %u)", s->name, errors,
                    cfg->smtpd_error_sleep_time, cfg->smtpd_soft_error_limit, cfg->smtpd_error_limit);
    }
    return 1;
}

static int user_rate(struct session *s, int w, unsigned limit, const char *what, const char *words, char *reply,
                     size_t len)
{
    unsigned char key[LIM_KEY_LEN];
    char user[300];
    struct lim_entry *e;
    unsigned n;
    uint64_t now = now_ms();

    if (!ready || !s->auth_user || limit == 0)
        return 0;
    lim_key_user(s->auth_user, key);
    e = lim_get(&users, key, now);
    if (!e)
        return 0;
    n = lim_rate(e, w, (uint64_t)cfg->anvil_rate_time_unit * 1000, now);
    if (n <= limit)
        return 0;
    log_sanitize(s->auth_user, strlen(s->auth_user), user, sizeof(user));
    log_warning("%s rate limit exceeded: %u from %s for user %s in %u s", what, n, s->name, user,
                cfg->anvil_rate_time_unit);
    snprintf(reply, len, "450 4.7.1 Error: %s from %s", words, user);
    return -1;
}

int throttle_mail(struct session *s, char *reply, size_t len)
{
    return user_rate(s, LIM_W_MSG, cfg ? cfg->smtpd_client_message_rate_limit : 0, "Message delivery request",
                     "too much mail", reply, len);
}

int throttle_rcpt(struct session *s, char *reply, size_t len)
{
    return user_rate(s, LIM_W_RCPT, cfg ? cfg->smtpd_client_recipient_rate_limit : 0, "Recipient address",
                     "too many recipients", reply, len);
}
