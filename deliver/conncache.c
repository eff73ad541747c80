/*
 * conncache.c - the idle-session cache (conncache.h).
 *
 * Must never hand out a session that is not reusable right now, nor keep
 * one past its idle limit. It never frees a cconn: the agent does that
 * when the engine reports the session closed (after smtpc_quit).
 */
#include "conncache.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static struct evloop *ev;
static unsigned idle_ms;
static struct cconn *head;
static unsigned count;

void cc_key(char *out, size_t outlen, const char *ip, unsigned port, int tls, int auth)
{
    snprintf(out, outlen, "%s|%u|%s|%s", ip, port, tls ? "tls" : "plain", auth ? "auth" : "-");
}

void cc_init(struct evloop *loop, unsigned ms)
{
    ev = loop;
    idle_ms = ms;
}

void cc_forget(struct cconn *c)
{
    if (!c->cached)
        return;
    if (c->timer)
        ev_timer_cancel(ev, c->timer);
    c->timer = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->cached = 0;
    count--;
}

static void expired(struct evloop *loop, void *arg)
{
    struct cconn *c = arg;

    (void)loop;
    c->timer = 0;
    cc_forget(c);
    smtpc_quit(c->s);
}

void cc_put(struct cconn *c, const char *key)
{
    if (idle_ms == 0 || !smtpc_reusable(c->s)) {
        smtpc_quit(c->s);
        return;
    }
    str_copy(c->key, key, sizeof c->key);
    c->timer = ev_timer(ev, idle_ms, expired, c);
    if (!c->timer) {
        smtpc_quit(c->s);
        return;
    }
    c->cached = 1;
    c->prev = NULL;
    c->next = head;
    if (head)
        head->prev = c;
    head = c;
    count++;
}

struct cconn *cc_take(const char *key)
{
    struct cconn *c, *next;

    for (c = head; c; c = next) {
        next = c->next;
        if (strcmp(c->key, key) != 0)
            continue;
        cc_forget(c);
        if (smtpc_reusable(c->s))
            return c;
        smtpc_quit(c->s);   /* the server closed it meanwhile */
    }
    return NULL;
}

void cc_flush(void)
{
    while (head) {
        struct cconn *c = head;
        cc_forget(c);
        smtpc_quit(c->s);
    }
}

unsigned cc_count(void)
{
    return count;
}
