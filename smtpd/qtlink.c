/*
 * qtlink.c - the quota link (qtlink.h).
 *
 * The local role's answer is advice for the RCPT reply, never a gate: this
 * file must never let a session wait longer than QTLINK_WAIT_MS for it, and
 * never turn a missing answer into a refusal. Every reply is validated by
 * quotap_parse_answer before anybody sees it.
 *
 * The questions in flight are kept in the order they were asked; with one
 * fixed wait their deadlines come in that order too, so one timer (armed
 * for the oldest) bounds them all.
 */
#include "qtlink.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "log.h"
#include "proto.h"
#include "util.h"

struct ask {
    uint32_t id;
    void *arg;
    uint64_t deadline;
    struct ask *prev, *next;
};

static struct evloop *loop;
static struct link *ql;
static qtlink_cb answer_cb;
static struct ask *head, *tail;
static uint64_t timer;
static int failing;             /* a failure burst is going on (logged once) */
static unsigned stale;          /* questions that timed out on an open link, answer still due */
static unsigned stale_gen;      /* the link generation they were sent on */
static int said_off;
static uint64_t wait_ms = QTLINK_WAIT_MS;

static void unlink_ask(struct ask *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        tail = q->prev;
    q->prev = q->next = NULL;
}

static void fail(const char *why)
{
    if (failing++)
        return;
    log_warning("mailbox quota check unavailable (%s): recipients are accepted, the local role enforces "
                "quotas at delivery", why);
}

static void answered(void)
{
    if (failing)
        log_info("mailbox quota checks answered again");
    failing = 0;
    stale = 0;
}

static void on_timer(struct evloop *ev, void *arg);

static void arm(void)
{
    uint64_t now = now_ms();

    if (timer || !head)
        return;
    timer = ev_timer(loop, head->deadline > now ? head->deadline - now : 0, on_timer, NULL);
}

static void on_timer(struct evloop *ev, void *arg)
{
    uint64_t now = now_ms();
    struct ask *q;

    (void)ev;
    (void)arg;
    timer = 0;
    while ((q = head) && q->deadline <= now) {
        void *who = q->arg;
        unlink_ask(q);
        link_cancel(ql, q->id); /* a late answer goes to on_orphan */
        if (link_up(ql)) {
            if (stale_gen != link_generation(ql))
                stale = 0;
            stale_gen = link_generation(ql);
            stale++;
        }
        free(q);
        fail("no answer from the local role");
        answer_cb(who, NULL);
    }
    arm();
}

static void on_reply(void *arg, const struct ipc_msg *m)
{
    struct ask *q = arg;
    void *who = q->arg;
    struct quota_answer a;
    int ok = m && quotap_parse_answer(m, &a) == 0;

    if (m && m->fd >= 0)
        close(m->fd);
    unlink_ask(q);
    free(q);
    if (!head && timer) {
        ev_timer_cancel(loop, timer);
        timer = 0;
    }
    if (!ok) {
        fail(m ? "malformed answer from the local role" : "the local role is not there");
        answer_cb(who, NULL);
        return;
    }
    if (a.verdict == QUOTA_TEMPFAIL)
        fail("the local role could not read a mailbox's usage");
    else
        answered();
    answer_cb(who, &a);
}

/* An answer to a question that timed out: the peer is alive again. */
static void on_orphan(struct link *l, const struct ipc_msg *m)
{
    (void)l;
    (void)m;
    answered();
}

void qtlink_init(struct evloop *ev, const char *path, qtlink_cb cb)
{
    loop = ev;
    answer_cb = cb;
    failing = 0;
    stale = 0;
    ql = link_new(ev, "local (quota)", path, proto_limit);
    if (ql)
        link_set_orphan(ql, on_orphan);
    else
        log_warning("mailbox quota link: out of memory; quotas are checked at delivery only");
}

void qtlink_free(void)
{
    struct ask *q;

    if (timer)
        ev_timer_cancel(loop, timer);
    timer = 0;
    while ((q = head)) {
        unlink_ask(q);
        free(q);
    }
    link_free(ql);
    ql = NULL;
}

uint32_t qtlink_ask(const char *key, uint64_t size, void *arg)
{
    struct ipc_out m;
    struct ask *q;
    int r;

    if (!ql) {
        if (!said_off++)
            log_info("mailbox quotas are not checked at RCPT: the local role is not running here; "
                     "they are enforced at delivery");
        return 0;
    }
    /* a peer that took the last questions and never answered: do not make
     * every session wait for it in turn */
    if (failing && stale && link_up(ql) && stale_gen == link_generation(ql))
        return 0;
    if (!(q = calloc(1, sizeof(*q)))) {
        fail("out of memory");
        return 0;
    }
    q->id = link_new_id(ql);
    q->arg = arg;
    q->deadline = now_ms() + wait_ms;
    memset(&m, 0, sizeof(m));
    r = quotap_build_ask(&m, q->id, key, size);
    /* while failing, a link that is down is not waited for either */
    if (r == 0)
        r = link_request(ql, &m, -1, q->id, failing ? 0 : wait_ms, on_reply, q);
    ipc_out_free(&m);
    if (r < 0) {
        free(q);
        fail("the local role is not there");
        return 0;
    }
    q->prev = tail;
    if (tail)
        tail->next = q;
    else
        head = q;
    tail = q;
    arm();
    return q->id;
}

void qtlink_set_wait(uint64_t ms)
{
    wait_ms = ms;
}

void qtlink_cancel(uint32_t id)
{
    struct ask *q;

    for (q = head; q; q = q->next)
        if (q->id == id)
            break;
    if (!q)
        return;
    link_cancel(ql, id);
    unlink_ask(q);
    free(q);
}
