/*
 * bounce.c - which notices a message's recipients call for, and queueing
 * them durably (bounce.h).
 *
 * In the event loop: the set of messages to look at (filled by the
 * scheduler after each durable result, and once at start), a first plan
 * to see whether anything is to be done, a fresh spool file. On the
 * committer's index thread (a commit job with its own run step): the plan
 * again on the record as it is then (only that thread writes results, so
 * it cannot change underneath), the original read, the notice composed,
 * written and synced, then one qstore_put_notice transaction. Never writes
 * a notice for mail from <> (a notice of ours that fails goes once to
 * double_bounce_recipient, a double bounce that fails goes nowhere), never
 * reports a recipient twice (the QN_* bits are set in the same transaction
 * that queues its notice), never blocks the event loop on the disk.
 */
#include "bounce.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "committer.h"
#include "log.h"
#include "scheduler.h"
#include "spool.h"
#include "util.h"

#define PENDING_MAX 100000      /* messages waiting to be looked at */
#define JOBS_MAX 16             /* notice jobs in flight */
#define RETRY_MS 5000           /* after a failed commit */
#define FAIL_RETRY_MS 60000     /* after a notice that could not be written */
#define HASH 4096

static struct evloop *loop;
static struct qstore *store;

/* What a job needs of the configuration, copied: a reload may free the
 * struct config while a job runs on the committer's thread. */
struct bcfg {
    char hostname[256];
    char postmaster[260];
    char double_bounce[ADDR_MAX + 1];
    unsigned delay_warning, queue_lifetime;
    uint64_t size_limit;
    int language;
};

/* Templates are shared with jobs in flight: freed when the last is done. */
struct tref {
    struct btmpl *t;
    unsigned refs;
};

static struct bcfg bc, bc_next;
static struct tref *tcur, *tnext;

/* ---- the set of messages to look at ---- */

struct pend {
    char qid[QID_LEN + 1];
    struct pend *next;
};
static struct pend *pending[HASH];
static size_t npending;
static uint64_t timer, retry_timer;
static int stopping;

struct bjob;
static struct bjob *jobs;       /* in flight */
static size_t njobs;

static unsigned qhash(const char *qid)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < QID_LEN && qid[i]; i++)
        h = (h ^ (unsigned char)qid[i]) * 16777619u;
    return h % HASH;
}

static void process(struct evloop *ev, void *arg);

static void arm(unsigned ms)
{
    if (!timer && !stopping && loop)
        timer = ev_timer(loop, ms, process, NULL);
}

void bounce_check(const char *qid)
{
    unsigned h;
    struct pend *p;

    if (stopping || !qid_valid(qid))
        return;
    h = qhash(qid);
    for (p = pending[h]; p; p = p->next)
        if (strcmp(p->qid, qid) == 0)
            return;
    if (npending >= PENDING_MAX || !(p = malloc(sizeof(*p)))) {
        log_warning("%s: too many messages waiting for a notice decision; it is looked at after a restart", qid);
        return;
    }
    str_copy(p->qid, qid, sizeof(p->qid));
    p->next = pending[h];
    pending[h] = p;
    npending++;
    arm(1);
}

/* ---- the plan ---- */

int bounce_waits(const struct qrec *r)
{
    for (size_t i = 0; i < r->nrcpt; i++) {
        const struct qrcpt *rc = &r->rcpt[i];
        if (rc->status == RCPT_BOUNCED && !(rc->notice & QN_FAILURE))
            return 1;
        if (rc->status == RCPT_SENT && (rc->notify & NOTIFY_SUCCESS) && !(rc->notice & QN_SUCCESS))
            return 1;
    }
    return 0;
}

void bounce_plan_free(struct bounce_plan *p)
{
    free(p->idx);
    free(p->mark);
    free(p->report);
    free(p->action);
    memset(p, 0, sizeof(*p));
    p->kind = -1;
}

/* The alias a recipient came from (T_R_ALIAS, tag 136, alias expansion at
 * commit): "expanded" is reported once for it. */
#define QRCPT_ALIAS(rc) ((const char *)(rc)->alias)

/* How many recipients of r came from this alias (stops counting at 2). */
static unsigned alias_members(const struct qrec *r, const char *alias)
{
    unsigned n = 0;

    for (size_t i = 0; i < r->nrcpt && n < 2; i++) {
        const char *a = QRCPT_ALIAS(&r->rcpt[i]);
        if (a && strcmp(a, alias) == 0)
            n++;
    }
    return n;
}

static int wants(unsigned notify, unsigned bit)
{
    return !(notify & NOTIFY_NEVER) && (notify == 0 ? bit != NOTIFY_SUCCESS : (notify & bit) != 0);
}

int bounce_plan(const struct qrec *r, const struct bounce_policy *pol, uint64_t now, struct bounce_plan *p)
{
    size_t n = r->nrcpt, any = 0;

    memset(p, 0, sizeof(*p));
    p->kind = -1;
    if (!n)
        return 0;
    p->idx = calloc(n, sizeof(*p->idx));
    p->mark = calloc(n, sizeof(*p->mark));
    p->report = calloc(n, 1);
    p->action = calloc(n, sizeof(*p->action));
    if (!p->idx || !p->mark || !p->report || !p->action) {
        bounce_plan_free(p);
        return -1;
    }
    /* failures first, then successes, then delays: one kind a notice */
    for (size_t i = 0; i < n; i++) {
        const struct qrcpt *rc = &r->rcpt[i];
        if (rc->status != RCPT_BOUNCED || (rc->notice & QN_FAILURE))
            continue;
        p->idx[p->n] = (uint32_t)i;
        p->mark[p->n] = QN_FAILURE;
        p->action[p->n] = NA_FAILED;
        /* our own notice that failed goes to the postmaster whatever its NOTIFY */
        p->report[p->n] = r->notice_kind == NOTICE_DSN || wants(rc->notify, NOTIFY_FAILURE);
        any |= p->report[p->n];
        p->n++;
    }
    if (p->n) {
        p->kind = BT_FAILURE;
        if (r->notice_kind == NOTICE_DOUBLE) {
            p->why = "a double bounce that failed: discarded";
        } else if (r->notice_kind == NOTICE_DSN) {
            p->notice = any != 0;
            p->notice_kind = NOTICE_DOUBLE;
            p->to = pol->double_bounce;
        } else if (!r->sender[0]) {
            p->why = "the sender is <>: no notice";
        } else if (!any) {
            p->why = "NOTIFY asks for no failure notice";
        } else {
            p->notice = 1;
            p->notice_kind = NOTICE_DSN;
            p->to = r->sender;
        }
    }
    for (size_t i = 0; i < n && p->kind < 0; i++) {
        const struct qrcpt *rc = &r->rcpt[i];
        if (rc->status != RCPT_SENT || !(rc->notify & NOTIFY_SUCCESS) || (rc->notice & QN_SUCCESS))
            continue;
        const char *alias = QRCPT_ALIAS(rc);
        if (alias && alias_members(r, alias) < 2)
            alias = NULL;   /* one target: a rewrite, reported as delivered (RFC 3461 6.2.7.4) */
        p->idx[p->n] = (uint32_t)i;
        p->mark[p->n] = QN_SUCCESS;
        p->action[p->n] = alias ? NA_EXPANDED : (rc->notice & QN_RELAYED) ? NA_RELAYED : NA_DELIVERED;
        p->report[p->n] = 1;
        /* the targets of one alias: one "expanded" for the alias */
        for (size_t k = 0; alias && k < p->n; k++) {
            const char *a2 = QRCPT_ALIAS(&r->rcpt[p->idx[k]]);
            if (a2 && strcmp(a2, alias) == 0)
                p->report[p->n] = 0;
        }
        p->n++;
    }
    if (p->kind < 0 && p->n) {
        p->kind = BT_SUCCESS;
        if (!r->sender[0] || r->notice_kind != NOTICE_NONE) {
            p->why = "the sender is <>: no notice";
        } else {
            p->notice = 1;
            p->notice_kind = NOTICE_DSN;
            p->to = r->sender;
        }
    }
    if (p->kind < 0 && pol->delay_warning && r->sender[0] && r->notice_kind == NOTICE_NONE &&
        now >= r->arrival + pol->delay_warning) {
        for (size_t i = 0; i < n; i++) {
            const struct qrcpt *rc = &r->rcpt[i];
            if ((rc->status != RCPT_PENDING && rc->status != RCPT_DEFERRED) || rc->attempts == 0 ||
                (rc->notice & QN_DELAY) || !wants(rc->notify, NOTIFY_DELAY))
                continue;
            p->idx[p->n] = (uint32_t)i;
            p->mark[p->n] = QN_DELAY;
            p->action[p->n] = NA_DELAYED;
            p->report[p->n] = 1;
            p->n++;
        }
        if (p->n) {
            p->kind = BT_DELAY;
            p->notice = 1;
            p->notice_kind = NOTICE_DSN;
            p->to = r->sender;
        }
    }
    if (p->kind < 0)
        return 0;
    /* what is left of the original once these marks are set */
    int left = 0;
    for (size_t i = 0; i < n && !left; i++) {
        const struct qrcpt *rc = &r->rcpt[i];
        unsigned notice = rc->notice;
        for (size_t k = 0; k < p->n; k++)
            if (p->idx[k] == i)
                notice |= p->mark[k];
        left = rc->status == RCPT_PENDING || rc->status == RCPT_DEFERRED ||
               (rc->status == RCPT_BOUNCED && !(notice & QN_FAILURE)) ||
               (rc->status == RCPT_SENT && (rc->notify & NOTIFY_SUCCESS) && !(notice & QN_SUCCESS));
    }
    p->remove_orig = !left;
    return 0;
}

int bounce_remote_host(const char *relay, char *out, size_t outlen)
{
    const char *b;
    size_t n;

    if (!relay || !relay[0] || strcmp(relay, "none") == 0)
        return -1;
    b = strchr(relay, '[');
    n = b ? (size_t)(b - relay) : strlen(relay);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, relay, n);
    out[n] = 0;
    return 0;
}

/* Whether a stored reply is a server's answer ("550 5.1.1 ..."), not our
 * own reason. */
static int is_smtp_reply(const char *s)
{
    return s && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
           (s[3] == ' ' || s[3] == '-' || s[3] == 0);
}

/* deliver's reply "host H[IP] said: 550 5.1.1 text (in reply to RCPT TO
 * command)" (Postfix's words) into H and the server's own answer; 0, or -1
 * when the reply is not of that form. */
static int split_reply(const char *reply, char *host, size_t hostlen, char *answer, size_t alen)
{
    const char *said, *h, *end, *in;
    size_t n;

    if (!reply || strncmp(reply, "host ", 5) != 0 || !(said = strstr(reply, " said: ")))
        return -1;
    h = reply + 5;
    end = memchr(h, '[', (size_t)(said - h));
    n = (size_t)((end ? end : said) - h);
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = 0;
    said += 7;
    in = strstr(said, " (in reply to ");
    n = in ? (size_t)(in - said) : strlen(said);
    if (n >= alen)
        n = alen - 1;
    memcpy(answer, said, n);
    answer[n] = 0;
    return is_smtp_reply(answer) ? 0 : -1;
}

/* ---- the job ---- */

struct bjob {
    struct commit_job job;      /* first: the committer hands it back */
    char orig[QID_LEN + 1], nqid[QID_LEN + 1];
    int fd;
    struct bcfg c;
    struct tref *t;
    uint64_t now;
    /* set by the run step */
    int committed, noticed, removed, failed, kind;
    unsigned notice_kind;
    uint64_t nsize;
    char to[ADDR_MAX + 1];
    char why[256];
    struct bjob *next;
};

static void tref_put(struct tref *t)
{
    if (t && --t->refs == 0 && t != tcur && t != tnext) {
        btmpl_free(t->t);
        free(t);
    }
}

static int in_flight(const char *qid)
{
    for (struct bjob *b = jobs; b; b = b->next)
        if (strcmp(b->orig, qid) == 0)
            return 1;
    return 0;
}

/* Reads up to max bytes of the original (fewer at its end). */
static char *read_original(const char *qid, size_t max, size_t *len)
{
    int fd = openat(spool_dir_fd(), qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    char *b;
    size_t n = 0;

    *len = 0;
    if (fd < 0)
        return NULL;
    if (!(b = malloc(max + 1))) {
        close(fd);
        return NULL;
    }
    while (n < max) {
        ssize_t r = pread(fd, b + n, max - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return b;
}

/* The notice's record: from <>, one recipient, what it is. */
static int notice_record(struct bjob *b, int eightbit, struct ipc_out *m)
{
    struct qrec n;
    int ascii = 1;

    qrec_init(&n);
    str_copy(n.qid, b->nqid, sizeof(n.qid));
    n.sender[0] = 0;
    n.body = eightbit ? BODY_8BITMIME : BODY_7BIT;
    for (const char *s = b->to; *s; s++)
        ascii &= (unsigned char)*s < 0x80;
    n.flags = ascii ? 0 : QF_SMTPUTF8;
    str_copy(n.origin, "bounce", sizeof(n.origin));
    str_copy(n.client_name, "localhost", sizeof(n.client_name));
    n.arrival = b->now;
    n.size = b->nsize;
    n.notice_kind = b->notice_kind;
    if (qrec_add_rcpt(&n, b->to) < 0) {
        qrec_free(&n);
        snprintf(b->why, sizeof(b->why), "out of memory");
        return -1;
    }
    ipc_body_begin(m);
    qrec_encode(&n, m);
    qrec_free(&n);
    if (ipc_out_finish(m) < 0) {
        ipc_out_free(m);
        snprintf(b->why, sizeof(b->why), "the notice's record does not fit");
        return -1;
    }
    return 0;
}

/* Composes the notice of plan p for record r into b->fd and syncs it. */
static int write_notice(struct bjob *b, const struct qrec *r, const struct bounce_plan *p, int *eightbit)
{
    struct notice_rcpt *nr = calloc(p->n, sizeof(*nr));
    char (*remote)[256] = calloc(p->n, sizeof(*remote));
    char (*answer)[QREC_REPLY_MAX + 1] = calloc(p->n, sizeof(*answer));
    struct notice_msg m;
    struct buf out;
    size_t olen = 0, k = 0;
    char *orig = NULL;
    int rc = -1;

    if (!nr || !remote || !answer) {
        snprintf(b->why, sizeof(b->why), "out of memory");
        goto out;
    }
    size_t want = r->size < b->c.size_limit ? (size_t)r->size : (size_t)b->c.size_limit;
    orig = read_original(r->qid, want, &olen);
    for (size_t i = 0; i < p->n; i++) {
        const struct qrcpt *one = &r->rcpt[p->idx[i]];
        if (!p->report[i])
            continue;
        nr[k].addr = p->action[i] == NA_EXPANDED && QRCPT_ALIAS(one) ? QRCPT_ALIAS(one) : one->addr;
        nr[k].orcpt = one->orcpt;
        nr[k].action = p->action[i];
        nr[k].status = one->dsn[0] ? one->dsn : NULL;
        nr[k].reply = one->reply;
        nr[k].last_try = p->action[i] == NA_EXPANDED ? 0 : b->now;
        if (split_reply(one->reply, remote[k], sizeof(remote[k]), answer[k], sizeof(answer[k])) == 0) {
            nr[k].remote = remote[k];
            nr[k].reply = answer[k];
        } else if ((is_smtp_reply(one->reply) || p->action[i] == NA_RELAYED) &&
                   bounce_remote_host(one->relay, remote[k], sizeof(remote[k])) == 0) {
            nr[k].remote = remote[k];
        }
        k++;
    }
    memset(&m, 0, sizeof(m));
    m.kind = (enum btmpl_kind)p->kind;
    m.lang = notice_language(b->c.language, orig ? orig : "", olen, r->sender);
    m.tmpl = b->t->t;
    m.hostname = b->c.hostname;
    m.postmaster = b->c.postmaster;
    m.orig_qid = r->qid;
    m.notice_qid = b->nqid;
    m.orig_sender = r->sender;
    m.to = b->to;
    m.envid = r->envid;
    m.utf8 = (r->flags & QF_SMTPUTF8) != 0;
    m.arrival = r->arrival;
    m.now = b->now;
    m.retry_until = r->arrival + b->c.queue_lifetime;
    m.rcpt = nr;
    m.nrcpt = k;
    m.orig = orig ? orig : "";
    m.orig_len = olen;
    m.orig_size = r->size;
    m.full = r->ret != RET_HDRS;
    m.size_limit = b->c.size_limit;
    m.seed = (uint32_t)(b->now ^ qid_stamp(b->nqid));
    buf_init(&out, NOTICE_MAX);
    if (notice_compose(&m, &out, eightbit, b->why, sizeof(b->why)) == 0) {
        /* the file and its name durable before the record that names it */
        if (write_all(b->fd, buf_head(&out), out.len) < 0 || fdatasync(b->fd) < 0 ||
            fsync(spool_dir_fd()) < 0)
            snprintf(b->why, sizeof(b->why), "writing the notice %s: %s", b->nqid, strerror(errno));
        else
            rc = 0;
        b->nsize = out.len;
    }
    buf_free(&out);
out:
    free(orig);
    free(nr);
    free(remote);
    free(answer);
    return rc;
}

/* The committer's index thread: plan, write, one transaction. */
static int bjob_run(struct commit_job *cj, char *err, size_t errlen)
{
    struct bjob *b = (struct bjob *)cj;
    struct bounce_policy pol = { b->c.delay_warning, b->c.queue_lifetime, b->c.double_bounce };
    struct bounce_plan p;
    struct qrec r;
    struct ipc_out m;
    char why[256];
    int rc, have_m = 0;

    rc = qstore_get(store, b->orig, &r, why, sizeof(why));
    if (rc == 1)
        return 0; /* gone meanwhile */
    if (rc < 0) {
        snprintf(b->why, sizeof(b->why), "reading the record: %.200s", why);
        b->failed = 1;
        return 0;
    }
    if (bounce_plan(&r, &pol, b->now, &p) < 0) {
        snprintf(b->why, sizeof(b->why), "out of memory");
        b->failed = 1;
        qrec_free(&r);
        return 0;
    }
    if (p.kind < 0) {
        qrec_free(&r);
        return 0;
    }
    b->kind = p.kind;
    b->notice_kind = p.notice_kind;
    if (p.why)
        snprintf(b->why, sizeof(b->why), "%s", p.why);
    if (p.notice) {
        int eightbit = 0;
        str_copy(b->to, p.to, sizeof(b->to));
        if (b->fd < 0 || write_notice(b, &r, &p, &eightbit) < 0 || notice_record(b, eightbit, &m) < 0) {
            if (b->fd < 0)
                snprintf(b->why, sizeof(b->why), "no spool file for the notice");
            b->failed = 1;
            bounce_plan_free(&p);
            qrec_free(&r);
            return 0;
        }
        have_m = 1;
    }
    struct qstore_notice_mark *mk = calloc(p.n, sizeof(*mk));
    if (!mk) {
        snprintf(b->why, sizeof(b->why), "out of memory");
        b->failed = 1;
        rc = 0;
    } else {
        for (size_t i = 0; i < p.n; i++) {
            mk[i].rcpt = p.idx[i];
            mk[i].notice_set = p.mark[i];
        }
        struct qstore_item it = { b->nqid, have_m ? buf_head(&m.b) : NULL, have_m ? m.b.len : 0 };
        rc = qstore_put_notice(store, have_m ? &it : NULL, b->orig, mk, p.n, p.remove_orig, err, errlen);
        if (rc == 0) {
            b->committed = 1;
            b->noticed = have_m;
            b->removed = p.remove_orig;
        }
        free(mk);
    }
    if (have_m)
        ipc_out_free(&m);
    bounce_plan_free(&p);
    qrec_free(&r);
    return rc;
}

static void retry_cb(struct evloop *ev, void *arg);

/* Messages to look at again after a failure (the record still says what
 * is to do); past RETRY_MAX, the next start's scan finds them. */
#define RETRY_MAX 1024
static char retry_qids[RETRY_MAX][QID_LEN + 1];
static size_t nretry;

static void retry_later(const char *qid, unsigned ms)
{
    size_t i;

    for (i = 0; i < nretry && strcmp(retry_qids[i], qid) != 0; i++)
        ;
    if (i == nretry && nretry < RETRY_MAX)
        str_copy(retry_qids[nretry++], qid, sizeof(retry_qids[0]));
    if (!retry_timer && !stopping && loop)
        retry_timer = ev_timer(loop, ms, retry_cb, NULL);
}

static const char *notice_name(int kind, unsigned notice_kind)
{
    if (notice_kind == NOTICE_DOUBLE)
        return "postmaster non-delivery notification";
    return kind == BT_DELAY ? "sender delay notification"
           : kind == BT_SUCCESS ? "sender delivery status notification"
                                : "sender non-delivery notification";
}

static void bjob_done(struct commit_job *cj)
{
    struct bjob *b = (struct bjob *)cj;

    if (b->fd >= 0)
        close(b->fd);
    if (cj->status == COMMIT_OK && b->committed) {
        if (b->noticed) {
            log_info("%s: %s: %s", b->orig, notice_name(b->kind, b->notice_kind), b->nqid);
            log_info("%s: from=<>, size=%llu, nrcpt=1 (queue active)", b->nqid, (unsigned long long)b->nsize);
            scheduler_kick();
        } else {
            if (b->why[0])
                log_info("%s: %s", b->orig, b->why);
            if (b->nqid[0])
                spool_remove(b->nqid);
        }
        if (b->removed) {
            spool_remove(b->orig);
            log_info("%s: removed", b->orig);
        }
    } else {
        if (!b->committed && b->nqid[0])
            spool_remove(b->nqid);
        if (cj->status != COMMIT_OK)
            log_error("%s: recording the notice failed: %s; tried again", b->orig, cj->err);
        else if (b->failed)
            log_error("%s: cannot write the notice: %s; tried again", b->orig, b->why);
    }
    for (struct bjob **pp = &jobs; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    njobs--;
    if (cj->status == COMMIT_OK && b->committed && !b->removed)
        bounce_check(b->orig); /* another kind may be due, or a later round */
    else if (cj->status != COMMIT_OK || b->failed)
        retry_later(b->orig, cj->status != COMMIT_OK ? RETRY_MS : FAIL_RETRY_MS);
    tref_put(b->t);
    free(b);
    arm(1);
}

/* Looked at: nothing to do, or a job submitted. Returns 0 to drop it from
 * the set, 1 to keep it for later. */
static int consider(const char *qid, uint64_t now)
{
    struct bounce_policy pol = { bc.delay_warning, bc.queue_lifetime, bc.double_bounce };
    struct bounce_plan p;
    struct qrec r;
    char err[128];
    int need;

    if (in_flight(qid))
        return 1;
    if (scheduler_msg_active(qid))
        return 0; /* its result calls bounce_check again */
    if (njobs >= JOBS_MAX || !tcur)
        return 1;
    if (qstore_get(store, qid, &r, err, sizeof(err)) != 0)
        return 0;
    if (bounce_plan(&r, &pol, now, &p) < 0) {
        qrec_free(&r);
        return 1;
    }
    need = p.kind >= 0;
    int notice = p.notice;
    bounce_plan_free(&p);
    qrec_free(&r);
    if (!need)
        return 0;
    struct bjob *b = calloc(1, sizeof(*b));
    if (!b)
        return 1;
    b->fd = -1;
    if (notice && (b->fd = spool_create(b->nqid)) < 0) {
        free(b);
        return 1;
    }
    str_copy(b->orig, qid, sizeof(b->orig));
    b->c = bc;
    b->t = tcur;
    tcur->refs++;
    b->now = now;
    b->job.run = bjob_run;
    b->job.done = bjob_done;
    b->next = jobs;
    jobs = b;
    njobs++;
    committer_submit(&b->job);
    return 0;
}

static void process(struct evloop *ev, void *arg)
{
    uint64_t now = (uint64_t)time(NULL);
    int keep_any = 0;

    (void)ev;
    (void)arg;
    timer = 0;
    if (stopping)
        return;
    for (size_t h = 0; h < HASH; h++)
        for (struct pend **pp = &pending[h]; *pp;) {
            struct pend *p = *pp;
            if (consider(p->qid, now)) {
                keep_any = 1;
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            free(p);
            npending--;
        }
    if (keep_any && njobs < JOBS_MAX)
        arm(50); /* waiting for a job of the same message, or templates */
}

/* At start: every message is looked at once for what a crash left. */
static int scan_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct bounce_policy pol = { bc.delay_warning, bc.queue_lifetime, bc.double_bounce };
    uint64_t now = *(const uint64_t *)arg;
    struct bounce_plan p;
    struct qrec r;
    char err[64];

    if (qrec_decode(val, len, &r, err, sizeof(err)) < 0)
        return 0;
    if (bounce_plan(&r, &pol, now, &p) == 0 && p.kind >= 0)
        bounce_check(qid);
    bounce_plan_free(&p);
    qrec_free(&r);
    return 0;
}

static void scan_all(void)
{
    uint64_t now = (uint64_t)time(NULL);

    if (qstore_scan(store, NULL, scan_visit, &now) < 0)
        log_warning("queue index: the look for notices left undone failed");
}

static void retry_cb(struct evloop *ev, void *arg)
{
    (void)ev;
    (void)arg;
    retry_timer = 0;
    for (size_t i = 0; i < nretry; i++)
        bounce_check(retry_qids[i]);
    nretry = 0;
}

/* ---- configuration ---- */

static void copy_cfg(const struct config *c, struct bcfg *o)
{
    memset(o, 0, sizeof(*o));
    str_copy(o->hostname, c->hostname, sizeof(o->hostname));
    str_copy(o->postmaster, c->postmaster_address, sizeof(o->postmaster));
    if (strchr(c->double_bounce_recipient, '@'))
        str_copy(o->double_bounce, c->double_bounce_recipient, sizeof(o->double_bounce));
    else
        snprintf(o->double_bounce, sizeof(o->double_bounce), "%.64s@%.190s", c->double_bounce_recipient,
                 c->local_domains.n ? c->local_domains.v[0] : c->hostname);
    o->delay_warning = c->delay_warning;
    o->queue_lifetime = c->queue_lifetime;
    o->size_limit = c->bounce_size_limit;
    o->language = c->bounce_language;
}

int bounce_prepare(const struct config *c, char *err, size_t errlen)
{
    struct tref *t = calloc(1, sizeof(*t));

    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (btmpl_load(c->bounce_template_dir, &t->t, err, errlen) < 0) {
        free(t);
        return -1;
    }
    t->refs = 1;
    if (tnext)
        tref_put(tnext);
    tnext = t;
    copy_cfg(c, &bc_next);
    return 0;
}

void bounce_set_config(const struct config *c)
{
    struct tref *old = tcur;

    if (!tnext) {
        /* no template change was prepared: the values alone */
        copy_cfg(c, &bc);
        return;
    }
    bc = bc_next;
    tcur = tnext;
    tnext = NULL;
    if (old)
        tref_put(old);
}

int bounce_start(struct evloop *ev, struct qstore *q, const struct config *c, char *err, size_t errlen)
{
    loop = ev;
    store = q;
    stopping = 0;
    if (bounce_prepare(c, err, errlen) < 0)
        return -1;
    bounce_set_config(c);
    scan_all();
    return 0;
}

void bounce_stop(void)
{
    stopping = 1;
    if (timer)
        ev_timer_cancel(loop, timer);
    if (retry_timer)
        ev_timer_cancel(loop, retry_timer);
    timer = retry_timer = 0;
    for (size_t h = 0; h < HASH; h++)
        while (pending[h]) {
            struct pend *p = pending[h];
            pending[h] = p->next;
            free(p);
        }
    npending = 0;
    nretry = 0;
    /* jobs in flight finish in committer_stop (handoff_stop), after this:
     * the last of them frees the templates */
    struct tref *t = tcur, *n = tnext;
    tcur = tnext = NULL;
    if (t)
        tref_put(t);
    if (n)
        tref_put(n);
}
