/*
 * policy.c - destination, backoff, expiry and concurrency rules
 * (policy.h). No I/O, no clock, no randomness of its own: callers pass
 * the time and the random draw, so every rule is testable exactly.
 */
#include "policy.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "util.h"

enum dest_kind policy_dest(const struct config *cfg, const char *addr, char *out, size_t outlen)
{
    const char *at = strrchr(addr, '@');
    size_t n;

    if (!at || !at[1] || (n = strlen(at + 1)) >= outlen)
        return DEST_BAD;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)at[1 + i]);
    if (config_is_local_domain(cfg, out))
        return DEST_LOCAL;
    if (cfg->relayhost[0]) {
        if (strlen(cfg->relayhost) >= outlen)
            return DEST_BAD;
        str_copy(out, cfg->relayhost, outlen);
    }
    return DEST_REMOTE;
}

uint64_t policy_backoff(unsigned attempts, unsigned min_backoff, unsigned max_backoff, double r)
{
    uint64_t base = min_backoff ? min_backoff : 1, cap = max_backoff > base ? max_backoff : base;
    double f;

    for (unsigned i = 1; i < attempts && base < cap; i++)
        base *= 2;
    if (base > cap)
        base = cap;
    if (r < 0 || r >= 1)
        r = 0;
    f = (double)base * (0.75 + 0.25 * r);
    return f < 1 ? 1 : (uint64_t)f;
}

int policy_expired(uint64_t arrival, uint64_t now, unsigned queue_lifetime)
{
    return now >= arrival + queue_lifetime;
}

static int dsn_usable(const char *d)
{
    /* "4.x.y": class digit, dot, digits and dots only */
    if (!d || (d[0] != '4' && d[0] != '5') || d[1] != '.')
        return 0;
    for (const char *p = d + 2; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return 0;
    return d[2] != 0;
}

void policy_expire_text(uint64_t arrival, uint64_t now, const char *last_dsn, const char *last_reply,
                        char *dsn, size_t dsnlen, char *reply, size_t replylen)
{
    uint64_t age = now > arrival ? now - arrival : 0;
    char when[64];

    str_copy(dsn, dsn_usable(last_dsn) ? last_dsn : "4.4.7", dsnlen);
    if (age >= 86400)
        snprintf(when, sizeof(when), "%llu day%s", (unsigned long long)(age / 86400),
                 age / 86400 == 1 ? "" : "s");
    else
        snprintf(when, sizeof(when), "%llu second%s", (unsigned long long)age, age == 1 ? "" : "s");
    if (last_reply && *last_reply)
        snprintf(reply, replylen, "message expired after %s in the queue; last error: %s", when,
                 last_reply);
    else
        snprintf(reply, replylen, "message expired after %s in the queue", when);
}

void dest_init(struct dest *d, const char *name, const struct dest_limits *l)
{
    memset(d, 0, sizeof(*d));
    str_copy(d->name, name, sizeof(d->name));
    d->limit = l->initial ? l->initial : 1;
    if (l->max && d->limit > l->max)
        d->limit = l->max;
}

int dest_dead(struct dest *d, uint64_t now)
{
    if (d->dead_until && now >= d->dead_until) {
        d->dead_until = 0;
        d->limit = 1;
    }
    return d->dead_until != 0;
}

int dest_can_start(struct dest *d, uint64_t now)
{
    return !dest_dead(d, now) && d->active < d->limit;
}

int dest_job_done(struct dest *d, unsigned flags, const char *reason, uint64_t now,
                  const struct dest_limits *l)
{
    if (d->active)
        d->active--;
    if (reason && *reason)
        str_copy(d->reason, reason, sizeof(d->reason));
    if (flags & D_F_DEST_UNREACHABLE) {
        if (d->dead_until)
            return 0;
        if (d->limit > 1) {
            d->limit--;
            return 0;
        }
        d->dead_until = now + (l->dead_time ? l->dead_time : 1);
        return 1;
    }
    if ((flags & D_F_DEST_REACHED) && d->limit < (l->max ? l->max : 1))
        d->limit++;
    return 0;
}

void dest_revive(struct dest *d)
{
    d->dead_until = 0;
    if (d->limit < 1)
        d->limit = 1;
}
