/*
 * agent.c - the deliver process's work loop (agent.h).
 *
 * Slots: deliver_concurrency in all; each free slot is one D_WANT held by
 * queue-mgr, each busy one a job. When the queue link drops, the D_WANTs
 * hear it and are issued again (held until the link is back); results of
 * jobs that end meanwhile wait in a bounded list and go out once it is.
 * Per job: next hops from the resolver (or the relayhost's addresses), then
 * the hosts in order through smtpc (route.h decides), then one log line
 * per recipient and the D_RESULT. An "lmtp:" destination (local_transport)
 * is one host, never MX: its addresses, or a UNIX socket, with smtpc in
 * LMTP mode.
 *
 * Must never block, never trust a D_JOB or a resolver answer (job.c and
 * dnsclient.c check them), never write to a spool file, and never leave
 * a slot taken by a job that cannot finish: every stage has an end.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conncache.h"
#include "dnsclient.h"
#include "job.h"
#include "link.h"
#include "log.h"
#include "proto.h"
#include "route.h"
#include "smtpc.h"
#include "util.h"

#define DNS_WAIT_MS 15000u              /* the resolver may be away this long */
#define DNS_WATCHDOG_MS 70000u          /* the resolver answers in 30 s */
#define RESULTS_MAX 10000u              /* results kept while queue-mgr is away */
#define TICK_MS 200u
#define RESEND_MS 3000u

struct want {
    uint32_t id;
    struct want *prev, *next;
};

struct djob {
    struct job j;
    int fd;
    struct route rt;
    struct dns_hops *hops;
    struct mxiter it;
    uint64_t t_recv;
    uint32_t dns_id[2];
    int dns_wait;               /* answers still due */
    uint64_t watchdog;
    int addr_fail[2];           /* relayhost look-ups: AAAA, A */
    struct djob *prev, *next;
};

struct pending {
    struct ipc_out out;
    uint64_t sent_ms;           /* on the "sent" list: when, and on which */
    unsigned gen;               /* generation of the queue link */
    struct pending *next;
};

static struct evloop *ev;
static const struct config *cfg;
static struct link *ql, *rl;
static struct smtpc_config scfg;
static struct auth_cred cred;
static int have_cred;
static int draining;
static unsigned nwants, nactive;
static struct want *wants;
static struct djob *jobs;
static struct pending *pend_head, **pend_tail = &pend_head;
static unsigned npend;
/* Results sent in the last RESEND_MS: a result has no reply, so one
 * written just before the link dropped may be lost; these go again after
 * a reconnection (queue-mgr applies a result only to a recipient still
 * undelivered, so a repeat is harmless). */
static struct pending *sent_head, **sent_tail = &sent_head;
static unsigned nsent;
static uint64_t tick;

static void top_up(void);
static void attempt(struct djob *dj);
static void session_key(const struct djob *dj, const char *peer, int tls, char *key);

/* ---------------------------------------------------------------- results */

static void remember_sent(struct pending *p)
{
    p->sent_ms = now_ms();
    p->gen = link_generation(ql);
    p->next = NULL;
    *sent_tail = p;
    sent_tail = &p->next;
    nsent++;
}

/* Sent results: old ones are forgotten; those sent on a link that has
 * dropped since go to the front of the pending list. */
static void check_sent(void)
{
    uint64_t now = now_ms();
    unsigned gen = link_generation(ql);
    struct pending *again = NULL, **again_tail = &again;

    while (sent_head) {
        struct pending *p = sent_head;
        int lost = p->gen != gen || !link_up(ql);
        if (!lost && p->sent_ms + RESEND_MS > now)
            break;
        sent_head = p->next;
        nsent--;
        if (lost && p->sent_ms + RESEND_MS > now) {
            p->next = NULL;
            *again_tail = p;
            again_tail = &p->next;
            npend++;
        } else {
            ipc_out_free(&p->out);
            free(p);
        }
    }
    if (!sent_head)
        sent_tail = &sent_head;
    if (again) {
        *again_tail = pend_head;
        if (!pend_head)
            pend_tail = again_tail;
        pend_head = again;
    }
}

static void flush_results(void)
{
    check_sent();
    while (pend_head && link_up(ql)) {
        struct pending *p = pend_head;
        /* link_notify finishes the frame again: harmless for a finished one */
        if (link_notify(ql, &p->out) < 0)
            return;
        pend_head = p->next;
        if (!pend_head)
            pend_tail = &pend_head;
        npend--;
        remember_sent(p);
    }
}

static void queue_result(struct ipc_out *out, const char *qid)
{
    struct pending *p;

    while (sent_head && npend + nsent >= RESULTS_MAX) {
        struct pending *old = sent_head;    /* the oldest repeat goes first */
        sent_head = old->next;
        if (!sent_head)
            sent_tail = &sent_head;
        nsent--;
        ipc_out_free(&old->out);
        free(old);
    }
    if (npend >= RESULTS_MAX || !(p = calloc(1, sizeof *p))) {
        log_warning("%s: result dropped (queue-mgr away, %u results waiting): "
                    "its recipients will be tried again", qid, npend);
        ipc_out_free(out);
        return;
    }
    p->out = *out;
    if (!pend_head && link_up(ql) && link_notify(ql, &p->out) == 0) {
        remember_sent(p);
        return;
    }
    *pend_tail = p;
    pend_tail = &p->next;
    npend++;
}


/* Postfix's delays: a (before queue-mgr), b (in queue-mgr), c (set-up:
 * waiting here, DNS, connecting, TLS, other hosts tried), d (transmission). */
static void log_results(struct djob *dj)
{
    uint64_t now = wall_ms(), arrival = dj->j.arrival * 1000u;
    uint64_t disp = dj->j.dispatch_ms && dj->j.dispatch_ms <= now ? dj->j.dispatch_ms : dj->t_recv;
    double b = disp > arrival && arrival ? (double)(disp - arrival) / 1000.0 : 0;
    double total;
    uint64_t d = dj->j.msg.delay_xfer_ms, span = now > disp ? now - disp : 0;
    char line[2048];

    dj->j.msg.delay_conn_ms = span > d ? span - d : 0;
    total = arrival && now > arrival ? (double)(now - arrival) / 1000.0 : (double)span / 1000.0;
    if (total < b + (double)span / 1000.0)
        total = b + (double)span / 1000.0;
    for (size_t i = 0; i < dj->j.nrcpt; i++) {
        smtpc_format_result(&dj->j.msg, &dj->j.rc[i], total, 0, b, line, sizeof line);
        log_info("%s: %s", dj->j.qid, line);
    }
}

static void job_unlink(struct djob *dj)
{
    if (dj->prev)
        dj->prev->next = dj->next;
    else
        jobs = dj->next;
    if (dj->next)
        dj->next->prev = dj->prev;
}

/* Unlinks and frees a job, closing its descriptor; its slot is free. */
static void djob_free(struct djob *dj)
{
    if (dj->watchdog)
        ev_timer_cancel(ev, dj->watchdog);
    if (dj->fd >= 0)
        close(dj->fd);
    job_unlink(dj);
    job_free(&dj->j);
    free(dj->hops);
    free(dj);
    nactive--;
}

static void finish(struct djob *dj, unsigned dflags)
{
    struct ipc_out out;

    log_results(dj);
    if (job_result_encode(&dj->j, dflags, &out) == 0)
        queue_result(&out, dj->j.qid);
    else
        log_warning("%s: result too large to send", dj->j.qid);
    djob_free(dj);
    top_up();
}

static void fail_job(struct djob *dj, enum smtpc_status st, const char *dsn, const char *reply)
{
    job_fail_all(&dj->j, st, dsn, reply);
    finish(dj, 0);
}

/* ---------------------------------------------------------------- sessions */

static void on_session_log(void *arg, const char *line)
{
    (void)arg;
    log_info("%s", line);
}

static struct cconn *conns;     /* every session, for agent_stop */

static void on_closed(struct smtpc *s, void *arg)
{
    struct cconn *c = arg;

    (void)s;
    cc_forget(c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        conns = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    free(c);
}

static void on_done(struct smtpc *s, struct smtpc_msg *m, enum smtpc_outcome o, void *arg)
{
    struct cconn *c = arg;
    struct djob *dj = c->job;
    enum mx_action act;
    char key[CC_KEY_MAX];

    (void)m;
    c->job = NULL;
    act = mx_after(&dj->it, o, smtpc_connected(s), smtpc_greeted(s));
    if ((o == SMTPC_DONE || o == SMTPC_FAILED) && smtpc_reusable(s) &&
        smtpc_messages(s) < cfg->smtp_connection_reuse_count_limit && !draining) {
        session_key(dj, smtpc_peer_ip(s), smtpc_tls_active(s), key);
        cc_put(c, key);
    } else {
        smtpc_quit(s);
    }
    switch (act) {
    case MX_RETRY_PLAIN:
        log_info("%s: TLS handshake with %s failed: trying again in plain text", dj->j.qid,
                 dj->hops->hop[dj->it.hop].host);
        attempt(dj);
        return;
    case MX_NEXT:
        attempt(dj);
        return;
    case MX_FINISH:
    default:
        mx_finish(&dj->it, &dj->j.msg);
        finish(dj, mx_flags(&dj->it));
        return;
    }
}

/* The cache key of a session of dj's kind to peer (an address, or a UNIX
 * socket's path): an LMTP session is never taken for SMTP, nor the
 * reverse. */
static void session_key(const struct djob *dj, const char *peer, int tls, char *key)
{
    char p[sizeof(dj->rt.unix_path) + 8];

    snprintf(p, sizeof p, "%s%s", dj->rt.lmtp ? "lmtp:" : "", peer);
    cc_key(key, CC_KEY_MAX, p, dj->rt.port, tls, dj->rt.relay && have_cred);
}

/* A cached session to one of the hop's addresses (or to the job's UNIX
 * socket), or NULL. */
static struct cconn *cached_session(const struct dns_hop *h, struct djob *dj, int plain)
{
    char key[CC_KEY_MAX];
    size_t n = dj->rt.unix_path[0] ? 1 : h->naddr;

    for (size_t i = 0; i < n; i++)
        for (int tls = plain ? 0 : 1; tls >= 0; tls--) {
            struct cconn *c;
            session_key(dj, dj->rt.unix_path[0] ? dj->rt.unix_path : h->addr[i], tls, key);
            if ((c = cc_take(key)))
                return c;
        }
    return NULL;
}

/* The engine's destination for the current hop: its addresses, or the
 * job's UNIX socket. */
static void hop_dest(const struct djob *dj, const struct dns_hop *h, struct smtpc_dest *dest)
{
    memset(dest, 0, sizeof *dest);
    str_copy(dest->host, h->host, sizeof dest->host);
    dest->port = dj->rt.port;
    if (dj->rt.unix_path[0]) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&dest->addr[0];
        sun->sun_family = AF_UNIX;
        str_copy(sun->sun_path, dj->rt.unix_path, sizeof sun->sun_path);  /* route.c checked the length */
        str_copy(dest->host, dj->rt.unix_path, sizeof dest->host);
        dest->naddr = 1;
        return;
    }
    for (size_t i = 0; i < h->naddr && dest->naddr < SMTPC_MAX_ADDRS; i++) {
        socklen_t len;
        if (dnsc_sockaddr(h->addr[i], dest->port, &dest->addr[dest->naddr], &len) >= 0)
            dest->naddr++;
    }
}

/* Tries the current host of dj->it. */
static void attempt(struct djob *dj)
{
    for (;;) {
        const struct dns_hop *h = &dj->hops->hop[dj->it.hop];
        struct smtpc_dest dest;
        struct smtpc_config sc = scfg;
        struct cconn *c;

        if (h->naddr == 0 && !dj->rt.unix_path[0]) {
            char text[SMTPC_REPLY_TEXT];
            snprintf(text, sizeof text, "no address for host %.200s", h->host);
            job_fail_all(&dj->j, SMTPC_DEFERRED, "4.4.3", text);
            if (mx_after(&dj->it, SMTPC_NEXT_MX, 0, 0) == MX_NEXT)
                continue;
            finish(dj, mx_flags(&dj->it));
            return;
        }
        if ((c = cached_session(h, dj, dj->it.plain))) {
            c->job = dj;
            if (smtpc_send(c->s, &dj->j.msg) == 0)
                return;
            c->job = NULL;
            smtpc_quit(c->s);
        }
        hop_dest(dj, h, &dest);
        sc.lmtp = dj->rt.lmtp;
        /* no STARTTLS over a UNIX socket: it never leaves the host */
        if (dj->it.plain || dj->rt.unix_path[0])
            sc.tls = SMTPC_TLS_NONE;
        if (dj->rt.relay && have_cred) {
            sc.auth_user = cred.user;
            sc.auth_pass = cred.pass;
        }
        if (!(c = calloc(1, sizeof *c))) {
            fail_job(dj, SMTPC_DEFERRED, "4.3.0", "deliver: out of memory");
            return;
        }
        c->job = dj;
        if (!(c->s = smtpc_start(ev, &sc, &dest, &dj->j.msg, on_done, c))) {
            free(c);
            fail_job(dj, SMTPC_DEFERRED, "4.3.0", dj->rt.lmtp ? "deliver: cannot start an LMTP session"
                                                               : "deliver: cannot start an SMTP session");
            return;
        }
        c->all_next = conns;
        if (conns)
            conns->all_prev = c;
        conns = c;
        return;
    }
}

/* ---------------------------------------------------------------- next hops */

static void hops_ready(struct djob *dj)
{
    struct dns_hops *h = dj->hops;

    if (dj->watchdog)
        ev_timer_cancel(ev, dj->watchdog);
    dj->watchdog = 0;
    if (h->status == DNS_PERMFAIL && !dj->rt.relay) {
        fail_job(dj, SMTPC_BOUNCED, h->dsn[0] == '5' ? h->dsn : "5.1.2", h->text);
        return;
    }
    if (h->status != DNS_OK || h->nhop == 0) {
        fail_job(dj, SMTPC_DEFERRED, "4.4.3", h->text[0] ? h->text : "no next hop found");
        return;
    }
    mx_init(&dj->it, h->nhop);
    attempt(dj);
}

static void on_hops(void *arg, const struct ipc_msg *m)
{
    struct djob *dj = arg;
    char why[256];

    dj->dns_wait = 0;
    if (!m) {
        fail_job(dj, SMTPC_DEFERRED, "4.4.3", "resolver not available");
        return;
    }
    if (m->fd >= 0)
        close(m->fd);
    if (dnsc_hops_parse(m, dj->hops, why, sizeof why) < 0) {
        char text[SMTPC_REPLY_TEXT];
        snprintf(text, sizeof text, "resolver: %s", why);
        fail_job(dj, SMTPC_DEFERRED, "4.4.3", text);
        return;
    }
    hops_ready(dj);
}

/* The relayhost "[name]": its AAAA and A answers make one hop. */
static void on_addr(struct djob *dj, int fam, const struct ipc_msg *m)
{
    static struct dns_answer a;     /* one at a time: callbacks run in the loop */
    struct dns_hop *hop = &dj->hops->hop[0];
    char why[256];

    dj->dns_wait--;
    dj->addr_fail[fam] = 1;
    if (m && m->fd >= 0)
        close(m->fd);
    if (m && dnsc_answer_parse(m, &a, why, sizeof why) == 0) {
        if (a.status == DNS_OK || a.status == DNS_NODATA)
            dj->addr_fail[fam] = 0;
        else
            snprintf(dj->hops->text, sizeof dj->hops->text, "%s", a.text);
        for (size_t i = 0; i < a.nrr && hop->naddr < DNS_HOP_MAX_ADDR; i++)
            if (a.rr[i].addr[0])
                str_copy(hop->addr[hop->naddr++], a.rr[i].addr, DNS_ADDR_MAX);
    } else if (!dj->hops->text[0]) {
        snprintf(dj->hops->text, sizeof dj->hops->text, "resolver not available for %.200s",
                 dj->rt.host);
    }
    if (dj->dns_wait > 0)
        return;
    if (hop->naddr > 0) {
        dj->hops->status = DNS_OK;
    } else {
        dj->hops->status = DNS_TEMPFAIL;
        if (!dj->hops->text[0])
            snprintf(dj->hops->text, sizeof dj->hops->text, "no address found for %.200s", dj->rt.host);
    }
    hops_ready(dj);
}

static void on_aaaa(void *arg, const struct ipc_msg *m) { on_addr(arg, 0, m); }
static void on_a(void *arg, const struct ipc_msg *m) { on_addr(arg, 1, m); }

static void dns_watchdog(struct evloop *loop, void *arg)
{
    struct djob *dj = arg;

    (void)loop;
    dj->watchdog = 0;
    for (int i = 0; i < 2; i++)
        if (dj->dns_id[i])
            link_cancel(rl, dj->dns_id[i]);
    fail_job(dj, SMTPC_DEFERRED, "4.4.3", "resolver did not answer");
}

static void resolve(struct djob *dj)
{
    struct dns_hops *h = dj->hops;
    struct ipc_out out;

    str_copy(h->domain, dj->rt.host, sizeof h->domain);
    if (dj->rt.unix_path[0]) {
        /* LMTP to a UNIX socket: nothing to look up */
        h->status = DNS_OK;
        h->nhop = 1;
        str_copy(h->hop[0].host, dj->rt.unix_path, sizeof h->hop[0].host);
        hops_ready(dj);
        return;
    }
    if (dj->rt.literal) {
        h->status = DNS_OK;
        h->nhop = 1;
        str_copy(h->hop[0].host, dj->rt.host, sizeof h->hop[0].host);
        str_copy(h->hop[0].addr[0], dj->rt.host, DNS_ADDR_MAX);
        h->hop[0].naddr = 1;
        hops_ready(dj);
        return;
    }
    dj->watchdog = ev_timer(ev, DNS_WATCHDOG_MS, dns_watchdog, dj);
    if (dj->rt.no_mx) {
        static const uint16_t types[2] = { DNS_T_AAAA, DNS_T_A };
        h->nhop = 1;
        str_copy(h->hop[0].host, dj->rt.host, sizeof h->hop[0].host);
        for (int i = 0; i < 2; i++) {
            dj->dns_id[i] = link_new_id(rl);
            if (dnsc_lookup_request(&out, dj->dns_id[i], dj->rt.host, types[i]) < 0 ||
                link_request(rl, &out, -1, dj->dns_id[i], DNS_WAIT_MS, i ? on_a : on_aaaa, dj) < 0) {
                ipc_out_free(&out);
                dj->dns_id[i] = 0;
                continue;
            }
            ipc_out_free(&out);
            dj->dns_wait++;
        }
        if (dj->dns_wait == 0)
            dns_watchdog(ev, dj);
        return;
    }
    dj->dns_id[0] = link_new_id(rl);
    if (dnsc_nexthops_request(&out, dj->dns_id[0], dj->rt.host) < 0 ||
        link_request(rl, &out, -1, dj->dns_id[0], DNS_WAIT_MS, on_hops, dj) < 0) {
        ipc_out_free(&out);
        dj->dns_id[0] = 0;
        dns_watchdog(ev, dj);
        return;
    }
    ipc_out_free(&out);
    dj->dns_wait = 1;
}

/* ---------------------------------------------------------------- jobs */

/* A D_JOB (fd is ours). */
static void start_job(const struct ipc_msg *m, int fd)
{
    struct djob *dj = calloc(1, sizeof *dj);
    char why[256], text[SMTPC_REPLY_TEXT];
    int has_id;

    if (!dj || !(dj->hops = calloc(1, sizeof *dj->hops))) {
        log_error("out of memory for a job: dropped (queue-mgr defers it)");
        free(dj);
        if (fd >= 0)
            close(fd);
        return;
    }
    dj->fd = fd;
    dj->t_recv = wall_ms();
    nactive++;
    dj->next = jobs;
    if (jobs)
        jobs->prev = dj;
    jobs = dj;
    if (job_parse(m, &dj->j, &has_id, why, sizeof why) < 0 ||
        job_check_fd(fd, dj->j.size, why, sizeof why) < 0) {
        log_warning("%s: invalid job from queue-mgr: %s", has_id ? dj->j.qid : "(no id)", why);
        if (!has_id) {
            /* nothing to answer to: queue-mgr defers it when we are gone */
            djob_free(dj);
            return;
        }
        snprintf(text, sizeof text, "deliver: invalid job: %s", why);
        fail_job(dj, SMTPC_DEFERRED, "4.3.0", text);
        return;
    }
    job_bind(&dj->j, fd);
    if (route_parse(dj->j.dest, cfg->relayhost, cfg->remote_smtp_port, &dj->rt) < 0) {
        char d[JOB_DEST_MAX];
        log_sanitize(dj->j.dest, strlen(dj->j.dest), d, sizeof d);
        snprintf(text, sizeof text, "deliver: invalid destination \"%.200s\"", d);
        fail_job(dj, SMTPC_DEFERRED, "4.3.0", text);
        return;
    }
    resolve(dj);
}

static void on_orphan(struct link *l, const struct ipc_msg *m)
{
    int fd;

    (void)l;
    if (m->type != D_JOB)
        return;
    /* a job for a D_WANT withdrawn while draining: deliver it anyway */
    fd = m->fd >= 0 ? fcntl(m->fd, F_DUPFD_CLOEXEC, 0) : -1;
    start_job(m, fd);
}

static void want_forget(struct want *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        wants = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
    nwants--;
}

static void on_job(void *arg, const struct ipc_msg *m)
{
    struct want *w = arg;

    want_forget(w);
    if (m) {
        if (m->type == D_JOB)
            start_job(m, m->fd);
        else {
            log_warning("queue-mgr answered D_WANT with type %u", (unsigned)m->type);
            if (m->fd >= 0)
                close(m->fd);
        }
    }
    top_up();
}

static void top_up(void)
{
    while (!draining && nwants + nactive < cfg->deliver_concurrency) {
        struct want *w = calloc(1, sizeof *w);
        struct ipc_out out;

        if (!w)
            return;
        w->id = link_new_id(ql);
        ipc_out_begin(&out, D_WANT, w->id);
        /* never held while the link is down: the tick tries again (and
         * reconnects), so a missing queue-mgr costs 5 connects a second */
        if (link_request(ql, &out, -1, w->id, 0, on_job, w) < 0) {
            ipc_out_free(&out);
            free(w);
            return;
        }
        ipc_out_free(&out);
        w->next = wants;
        if (wants)
            wants->prev = w;
        wants = w;
        nwants++;
    }
}

static void on_tick(struct evloop *loop, void *arg)
{
    (void)arg;
    flush_results();
    top_up();
    tick = ev_timer(loop, TICK_MS, on_tick, NULL);
}

int agent_start(struct evloop *loop, const struct config *c, const char *queue_sock,
                const char *resolver_sock, const struct auth_cred *cr, char *err, size_t errlen)
{
    ev = loop;
    cfg = c;
    smtpc_default_timeouts(&scfg.t);
    scfg.t.connect = c->smtp_connect_timeout * 1000u;
    scfg.t.greeting = scfg.t.helo = c->smtp_helo_timeout * 1000u;
    scfg.t.mail = c->smtp_mail_timeout * 1000u;
    scfg.t.rcpt = c->smtp_rcpt_timeout * 1000u;
    scfg.t.data_init = c->smtp_data_init_timeout * 1000u;
    scfg.t.data_xfer = c->smtp_data_xfer_timeout * 1000u;
    scfg.t.data_done = c->smtp_data_done_timeout * 1000u;
    scfg.t.quit = c->smtp_quit_timeout * 1000u;
    scfg.t.rset = 20000u;       /* Postfix's smtp_rset_timeout */
    scfg.t.idle = 0;            /* the cache ends idle sessions */
    scfg.helo_name = c->hostname;
    scfg.tls = SMTPC_TLS_MAY;
    scfg.log = on_session_log;
    scfg.closed = on_closed;
    if (cr) {
        cred = *cr;
        have_cred = 1;
    }
    cc_init(loop, c->smtp_connection_cache_time_limit * 1000u);
    ql = link_new(loop, "queue-mgr", queue_sock, proto_limit);
    rl = link_new(loop, "resolver", resolver_sock, proto_limit);
    if (!ql || !rl) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    link_set_orphan(ql, on_orphan);
    top_up();
    tick = ev_timer(loop, TICK_MS, on_tick, NULL);
    return 0;
}

void agent_drain(void)
{
    if (draining)
        return;
    draining = 1;
    while (wants) {
        link_cancel(ql, wants->id);
        want_forget(wants);
    }
    cc_flush();
    log_info("draining: %u deliveries in flight", nactive);
}

int agent_drained(void)
{
    return draining && nactive == 0 && (npend == 0 || !link_up(ql));
}

unsigned agent_active(void)
{
    return nactive;
}

void agent_stop(void)
{
    if (tick)
        ev_timer_cancel(ev, tick);
    tick = 0;
    /* exiting: sessions end now (no QUIT), jobs without a result are
     * deferred by queue-mgr */
    while (conns) {
        cc_forget(conns);
        smtpc_abort(conns->s);
    }
    while (jobs)
        djob_free(jobs);
    while (wants) {
        struct want *w = wants;
        wants = w->next;
        free(w);
    }
    link_free(ql);
    link_free(rl);
    ql = rl = NULL;
    while (pend_head) {
        struct pending *p = pend_head;
        pend_head = p->next;
        ipc_out_free(&p->out);
        free(p);
    }
    pend_tail = &pend_head;
    npend = 0;
    while (sent_head) {
        struct pending *p = sent_head;
        sent_head = p->next;
        ipc_out_free(&p->out);
        free(p);
    }
    sent_tail = &sent_head;
    nsent = 0;
}
