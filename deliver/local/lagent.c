/*
 * lagent.c - the local delivery role's work loop (lagent.h).
 *
 * Jobs that arrive together are stored together: each D_JOB joins the
 * batch, which runs once it holds LAGENT_GATHER_JOBS jobs or its first has
 * waited LAGENT_GATHER_MS: every copy written into tmp/ of its Maildir,
 * one syncfs per file system written to, the renames into new/. Those
 * renames are made durable by the next batch's syncfs (which covers the
 * new/ directories' file systems too: maildir_sync_all), and only then is
 * the batch logged and reported; when no batch follows within
 * LAGENT_GATHER_MS, its new/ directories are synced on their own
 * (maildir_sync_dirs). So RCPT_SENT always means the message is in new/
 * on stable storage, and under load a batch of N messages costs one
 * flush, not 2N. A copy for a mailbox
 * with a quota (the map's 'M' value) is checked once it is in tmp/ against
 * the Maildir's maildirsize plus the batch's earlier copies for it
 * (quota.h): 5.2.2 bounced when larger than the quota, 4.2.2 deferred when
 * it does not fit; after the renames each such mailbox gets one line in
 * maildirsize.
 *
 * Must never trust a D_JOB (deliver/job.c checks it), never let an
 * address become a path except through maps_path_component() of a map
 * key, never report a recipient sent before its copy is durable, and
 * never lose a message: every failure defers (the queue keeps it) and
 * removes what it wrote.
 */
#include "lagent.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "job.h"
#include "log.h"
#include "maildir.h"
#include "proto.h"
#include "quota.h"
#include "util.h"

#define TICK_MS 200u

struct want {
    uint32_t id;
    struct want *next;
};

struct ljob {
    struct job j;
    int fd;
    uint64_t t_recv;                    /* wall ms */
    char (*orig)[ADDR_MAX + 1];         /* per recipient: the alias it came from, or "" */
    struct ljob *next;
};

struct item {
    struct ljob *lj;
    size_t r;
    int err;                            /* of maildir_fill */
    struct md_item it;
    struct mapdb_quota q;               /* the mailbox's quota (none: both 0) */
    long box;                           /* its entry in the batch's boxes, or -1 */
    char comp[MAPDB_KEY_MAX + 8];
};

/* A mailbox with a quota, once per batch: its usage and what the batch adds. */
struct box {
    char comp[MAPDB_KEY_MAX + 8];
    int md;                             /* the Maildir, or -1 */
    int err;                            /* the usage could not be read: errno */
    struct mdq_usage u;
    uint64_t add_bytes, add_msgs;       /* accepted in this batch */
    uint64_t done_bytes, done_msgs;     /* published: into maildirsize */
    int plain_dir;                      /* no quota of ours: a tmp/ of it (not owned), else -1 */
};

/* The fill step of a batch, shared by its threads (fill_all). */
struct fill {
    struct item *items;
    size_t n;
    atomic_size_t next;
    struct md_buf *buf;
};

static struct evloop *ev;
static const struct config *cfg;
static struct link *ql;
static struct mapdb *db;
static int mbox_fd = -1;
static struct md_store *store;
static int exit_on_loss, draining;
static unsigned nwants, nbatch;
static uint64_t batch_t0, gather_timer;   /* now_ms() of the batch's first job; the wait's timer */
static struct want *wants;
static struct ljob *batch, **batch_tail = &batch;
static uint64_t tick;
static unsigned link_gen;
static struct md_buf *bufs[LAGENT_FILLERS];

static void top_up(void);

/* ------------------------------------------------------------ results */

static void set_result(struct ljob *lj, size_t i, enum smtpc_status st, const char *dsn, const char *reply)
{
    struct smtpc_rcpt *rc = &lj->j.rc[i];

    rc->status = st;
    str_copy(rc->dsn, dsn, sizeof(rc->dsn));
    str_copy(rc->reply, reply, sizeof(rc->reply));
}

/* SPEC §6: delays a (before queue-mgr: 0), b (in the queue), c (here,
 * before the batch ran), d (writing and syncing). */
static void log_job(const struct ljob *lj, uint64_t t_start, uint64_t t_end)
{
    static const char *const st[] = { "deferred", "sent", "deferred", "bounced" };
    uint64_t arrival = lj->j.arrival * 1000u;
    uint64_t disp = lj->j.dispatch_ms && lj->j.dispatch_ms <= t_end ? lj->j.dispatch_ms : lj->t_recv;
    char d[5][16], addr[520], orig[520], reply[SMTPC_REPLY_TEXT];
    double b = arrival && disp > arrival ? (double)(disp - arrival) / 1000.0 : 0;
    double c = t_start > disp ? (double)(t_start - disp) / 1000.0 : 0;
    double dd = t_end > t_start ? (double)(t_end - t_start) / 1000.0 : 0;
    double total = arrival && t_end > arrival ? (double)(t_end - arrival) / 1000.0 : b + c + dd;

    if (total < b + c + dd)
        total = b + c + dd;
    format_delay(total, d[0], sizeof(d[0]));
    format_delay(0, d[1], sizeof(d[1]));
    format_delay(b, d[2], sizeof(d[2]));
    format_delay(c, d[3], sizeof(d[3]));
    format_delay(dd, d[4], sizeof(d[4]));
    for (size_t i = 0; i < lj->j.nrcpt; i++) {
        const struct smtpc_rcpt *rc = &lj->j.rc[i];
        char o[560] = "";
        log_sanitize(lj->j.jr[i].addr, strlen(lj->j.jr[i].addr), addr, sizeof(addr));
        log_sanitize(rc->reply, strlen(rc->reply), reply, sizeof(reply));
        if (lj->orig[i][0] && strcasecmp(lj->orig[i], lj->j.jr[i].addr) != 0) {
            log_sanitize(lj->orig[i], strlen(lj->orig[i]), orig, sizeof(orig));
            snprintf(o, sizeof(o), "orig_to=<%s>, ", orig);
        }
        log_info("%s: to=<%s>, %srelay=local, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
                 lj->j.qid, addr, o, d[0], d[1], d[2], d[3], d[4], rc->dsn[0] ? rc->dsn : "4.0.0",
                 st[rc->status <= SMTPC_BOUNCED ? rc->status : 0], reply);
    }
}

static void send_result(struct ljob *lj)
{
    struct ipc_out out;

    if (job_result_encode(&lj->j, 0, &out) < 0) {
        log_warning("%s: result too large to send", lj->j.qid);
        return;
    }
    if (link_notify(ql, &out) < 0)
        log_warning("%s: queue-mgr away: result lost; its recipients will be tried again", lj->j.qid);
    ipc_out_free(&out);
}

static void ljob_free(struct ljob *lj)
{
    if (lj->fd >= 0)
        close(lj->fd);
    job_free(&lj->j);
    free(lj->orig);
    free(lj);
}

/* ------------------------------------------------------------ mailboxes */

/* The Maildir of a recipient: 0 with comp (and its quota in q when q is
 * not NULL), or -1 with the result set. */
static int mailbox_of(struct ljob *lj, size_t i, char *comp, size_t complen, struct mapdb_quota *q)
{
    char key[MAPDB_KEY_MAX], stripped[MAPDB_KEY_MAX];
    struct addr a;
    int r;

    if (addr_parse_mailbox(lj->j.jr[i].addr, ADDR_UTF8, &a) != ADDR_OK || !a.domain[0] ||
        !config_is_local_domain(cfg, a.domain)) {
        set_result(lj, i, SMTPC_DEFERRED, "4.3.0", "local: not an address of a local domain");
        return -1;
    }
    if (maps_addr_key(&a, key, sizeof(key)) < 0) {
        set_result(lj, i, SMTPC_BOUNCED, "5.1.1", "user unknown");
        return -1;
    }
    if (!db) {
        set_result(lj, i, SMTPC_DEFERRED, "4.3.0", "local: the mailbox map is not available");
        return -1;
    }
    str_copy(stripped, key, sizeof(stripped));
    if ((r = mapdb_mailbox(db, key)) == 0 && maps_strip_extension(stripped, cfg->recipient_delimiter) &&
        (r = mapdb_mailbox(db, stripped)) == 1)
        str_copy(key, stripped, sizeof(key));
    if (r < 0) {
        set_result(lj, i, SMTPC_DEFERRED, "4.3.0", "local: mailbox map read error");
        return -1;
    }
    if (r == 0) {
        if (mapdb_get(db, key, NULL, NULL) == MAPDB_ALIAS || mapdb_get(db, stripped, NULL, NULL) == MAPDB_ALIAS)
            set_result(lj, i, SMTPC_DEFERRED, "4.3.0", "local: alias not expanded at queue time");
        else
            set_result(lj, i, SMTPC_BOUNCED, "5.1.1", "user unknown");
        return -1;
    }
    if (maps_path_component(key, comp, complen) < 0) {
        set_result(lj, i, SMTPC_BOUNCED, "5.1.1", "user unknown (no safe mailbox path)");
        return -1;
    }
    if (q && mapdb_quota(db, key, q) < 0) {
        set_result(lj, i, SMTPC_DEFERRED, "4.3.0", "local: mailbox map read error (quota)");
        return -1;
    }
    return 0;
}

static void fail_errno(struct ljob *lj, size_t i, const char *what, int e)
{
    char text[SMTPC_REPLY_TEXT];

    snprintf(text, sizeof(text), "local: %s: %s", what, strerror(e));
    set_result(lj, i, SMTPC_DEFERRED, maildir_errno_dsn(e), text);
}

/* ------------------------------------------------------------ the batch */

unsigned lagent_fillers(size_t n, unsigned max)
{
    size_t t = (n + LAGENT_FILL_PER_THREAD - 1) / LAGENT_FILL_PER_THREAD;

    if (t > max)
        t = max;
    return t ? (unsigned)t : 1;
}

/* One filler: takes the next item until none is left. Touches only its
 * items, its buffer and the jobs' read-only fields. */
static void fill_run(struct fill *f, struct md_buf *buf)
{
    size_t k;

    while ((k = atomic_fetch_add(&f->next, 1)) < f->n) {
        struct item *it = &f->items[k];
        const struct ljob *lj = it->lj;
        it->err = maildir_fill(buf, &it->it, lj->fd, lj->j.size, lj->j.sender, lj->j.jr[it->r].addr) < 0 ? errno : 0;
        if (it->err == 0 && it->it.state != 1)
            it->err = EIO;
    }
}

struct filler {
    pthread_t t;
    struct fill *f;
    struct md_buf *buf;
};

static void *filler_main(void *arg)
{
    struct filler *fl = arg;

    fill_run(fl->f, fl->buf);
    return NULL;
}

/*
 * Writes the n prepared items into tmp/, on up to LAGENT_FILLERS threads
 * (this one among them): most of a copy's time is the kernel making its
 * inode, which threads on other cores do side by side. Threads that
 * cannot be started leave their share to the others.
 */
static void fill_all(struct item *items, size_t n)
{
    struct fill f = { .items = items, .n = n, .buf = bufs[0] };
    struct filler fl[LAGENT_FILLERS];
    unsigned want = lagent_fillers(n, LAGENT_FILLERS), started = 0;
    sigset_t all, old;

    atomic_init(&f.next, 0);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);     /* signals stay with the event loop */
    for (unsigned t = 1; t < want && bufs[t]; t++) {
        fl[started].f = &f;
        fl[started].buf = bufs[t];
        if (pthread_create(&fl[started].t, NULL, filler_main, &fl[started]) != 0)
            break;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    fill_run(&f, bufs[0]);
    for (unsigned t = 0; t < started; t++)
        pthread_join(fl[t].t, NULL);
}

/* The batch whose renames are made but not yet durable: reported by
 * pending_finish once they are (err 0), or deferred (err: the sync failed;
 * its copies are taken out of new/ again). */
static struct ljob *pend_jobs;
static struct item *pend_items;
static size_t pend_n;
static uint64_t pend_t_start, pend_timer;

static void pending_finish(int err)
{
    struct ljob *lj;
    uint64_t t_end = wall_ms();

    if (pend_timer)
        ev_timer_cancel(ev, pend_timer);
    pend_timer = 0;
    if (!pend_jobs)
        return;
    for (size_t k = 0; k < pend_n; k++) {
        if (err && pend_items[k].it.state == 2) {
            maildir_discard(&pend_items[k].it);
            fail_errno(pend_items[k].lj, pend_items[k].r, "cannot sync mailbox_dir", err);
        }
        maildir_release(&pend_items[k].it);
    }
    free(pend_items);
    pend_items = NULL;
    pend_n = 0;
    while ((lj = pend_jobs)) {
        pend_jobs = lj->next;
        log_job(lj, pend_t_start, t_end);
        send_result(lj);
        ljob_free(lj);
    }
}

/* No batch has come to share the flush: the pending renames on their own. */
static void pending_flush(void)
{
    if (pend_jobs)
        pending_finish(maildir_sync_dirs(store) < 0 ? errno : 0);
}

static void on_pend_timer(struct evloop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    pend_timer = 0;
    pending_flush();
    top_up();
}

/*
 * A copy for a mailbox with a quota, written into tmp/ (it->it.size is its
 * size as stored): against the usage of maildirsize and the copies this
 * batch has accepted for the same mailbox already. 0 (accepted, counted),
 * or -1 with the result set: 5.2.2 bounced when the copy alone is larger
 * than the quota, 4.2.2 deferred when it does not fit now, a deferral
 * when the usage cannot be read.
 */
static int quota_check(struct box *boxes, size_t *nboxes, struct item *it)
{
    char text[SMTPC_REPLY_TEXT];
    struct box *b = NULL;
    struct mdq_usage now;

    if (!boxes) {
        set_result(it->lj, it->r, SMTPC_DEFERRED, "4.3.0", "local: out of memory");
        return -1;
    }
    for (size_t i = 0; i < *nboxes && !b; i++)
        if (!strcmp(boxes[i].comp, it->comp))
            b = &boxes[i];
    if (!b) {
        b = &boxes[(*nboxes)++];
        str_copy(b->comp, it->comp, sizeof(b->comp));
        b->plain_dir = -1;
        b->md = mdq_open_maildir(mbox_fd, it->comp);
        if (b->md < 0 || mdq_usage(b->md, &it->q, time(NULL), 0, &b->u) < 0)
            b->err = errno ? errno : EIO;
    }
    if (b->err) {
        fail_errno(it->lj, it->r, "cannot read the quota usage (maildirsize)", b->err);
        return -1;
    }
    now.bytes = b->u.bytes + b->add_bytes;
    now.msgs = b->u.msgs + b->add_msgs;
    switch (mdq_verdict(&it->q, &now, it->it.size)) {
    case QUOTA_TOOBIG:
        snprintf(text, sizeof(text), "mailbox full: the message (%llu bytes) is larger than the quota (%llu bytes)",
                 (unsigned long long)it->it.size, (unsigned long long)it->q.bytes);
        set_result(it->lj, it->r, SMTPC_BOUNCED, "5.2.2", text);
        return -1;
    case QUOTA_FULL:
        snprintf(text, sizeof(text), "mailbox full: over quota with this message (%llu bytes; %llu of %llu bytes, "
                 "%llu of %llu messages in use)", (unsigned long long)it->it.size, (unsigned long long)now.bytes,
                 (unsigned long long)it->q.bytes, (unsigned long long)now.msgs, (unsigned long long)it->q.msgs);
        set_result(it->lj, it->r, SMTPC_DEFERRED, "4.2.2", text);
        return -1;
    default:
        break;
    }
    b->add_bytes += it->it.size;
    b->add_msgs++;
    it->box = b - boxes;
    return 0;
}

/* What the batch published, one line per mailbox into its maildirsize. */
static void quota_record(struct box *boxes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct box *b = &boxes[i];
        if (b->plain_dir >= 0) {
            /* no quota in our map, but a maildirsize (Dovecot's, say) is
             * kept up to date by every deliverer (Maildir++); none: nothing */
            if (mdq_add(b->plain_dir, "../" MDQ_FILE, (int64_t)b->done_bytes, (int64_t)b->done_msgs) < 0)
                log_warning("%s/maildirsize: cannot add %llu bytes: %s", b->comp,
                            (unsigned long long)b->done_bytes, strerror(errno));
            continue;
        }
        if (b->done_msgs && b->md >= 0 && mdq_add(b->md, MDQ_FILE, (int64_t)b->done_bytes, (int64_t)b->done_msgs) < 0)
            log_warning("%s/maildirsize: cannot add %llu bytes: %s (recounted once it is stale)", b->comp,
                        (unsigned long long)b->done_bytes, strerror(errno));
        if (b->md >= 0)
            close(b->md);
    }
}

static void run_batch(void)
{
    struct ljob *jobs = batch, *lj;
    struct item *items;
    size_t n = 0, cap = 0, written = 0;
    uint64_t t_start = wall_ms();

    batch = NULL;
    batch_tail = &batch;
    nbatch = 0;
    for (lj = jobs; lj; lj = lj->next)
        cap += lj->j.nrcpt;
    items = calloc(cap ? cap : 1, sizeof(*items));
    for (lj = jobs; lj; lj = lj->next) {
        struct md_seen seen;
        int scanned = 0;
        if (!items) {
            job_fail_all(&lj->j, SMTPC_DEFERRED, "4.3.0", "local: out of memory");
            continue;
        }
        if (strcmp(lj->j.dest, "maildir") != 0) {
            job_fail_all(&lj->j, SMTPC_DEFERRED, "4.3.0", "local: not a maildir job");
            continue;
        }
        for (size_t i = 0; i < lj->j.nrcpt; i++) {
            struct mapdb_quota q;
            char comp[MAPDB_KEY_MAX + 8];
            if (mailbox_of(lj, i, comp, sizeof(comp), &q) < 0)
                continue;
            if (!scanned) {
                if (maildir_scan_header(lj->fd, lj->j.size, &seen) < 0) {
                    job_fail_all(&lj->j, SMTPC_DEFERRED, "4.3.0", "local: cannot read the queue file");
                    break;
                }
                scanned = 1;
            }
            if (maildir_seen(&seen, lj->j.jr[i].addr)) {
                char text[SMTPC_REPLY_TEXT];
                snprintf(text, sizeof(text), "mail forwarding loop for %s", lj->j.jr[i].addr);
                set_result(lj, i, SMTPC_BOUNCED, "5.4.6", text);
                continue;
            }
            struct item *it = &items[n];
            it->lj = lj;
            it->r = i;
            it->q = q;
            it->box = -1;
            str_copy(it->comp, comp, sizeof(it->comp));
            if (maildir_prepare(store, comp, &it->it) < 0) {
                fail_errno(lj, i, "cannot write the message into the maildir", errno);
                continue;
            }
            n++;
        }
    }
    /* the copies into tmp/, side by side; then each checked in order */
    fill_all(items, n);
    size_t m = 0, nboxes = 0;
    struct box *boxes = calloc(n ? n : 1, sizeof(*boxes));
    for (size_t k = 0; k < n; k++) {
        struct item *it = &items[k];
        struct ljob *o = it->lj;
        int e = it->err;
        if (e) {
            maildir_release(&it->it);
            if (e == ENOENT) {
                /* the Maildir was removed under us: made again, once */
                char comp[MAPDB_KEY_MAX + 8];
                if (mailbox_of(o, it->r, comp, sizeof(comp), NULL) < 0)
                    continue;
                maildir_forget(store, comp);
                e = maildir_write(store, comp, o->fd, o->j.size, o->j.sender, o->j.jr[it->r].addr, &it->it) < 0
                        ? errno : 0;
            }
        } else if (maildir_finish(store, &it->it) < 0) {
            e = errno;
        }
        if (e) {
            fail_errno(o, it->r, "cannot write the message into the maildir", e);
            continue;
        }
        if ((it->q.bytes || it->q.msgs) && quota_check(boxes, &nboxes, it) < 0) {
            maildir_discard(&it->it);
            continue;
        }
        set_result(o, it->r, SMTPC_SENT, "2.0.0", "delivered to maildir");
        items[m++] = *it;
        written++;
    }
    n = m;
    /* data first, then the names: a name in new/ always has its data. The
     * one flush also makes the batch before's renames durable, which is
     * when that batch is reported (pending_finish). */
    if (written || pend_jobs) {
        int bad = maildir_sync_all(store) < 0, e = errno;
        pending_finish(bad ? e : 0);
        if (bad) {
            for (size_t k = 0; k < n; k++) {
                maildir_discard(&items[k].it);
                fail_errno(items[k].lj, items[k].r, "cannot sync mailbox_dir", e);
            }
            n = 0;
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (maildir_publish(store, &items[k].it) < 0) {
            int e = errno;
            maildir_discard(&items[k].it);
            fail_errno(items[k].lj, items[k].r, "cannot rename the message into new/", e);
            continue;
        }
    }
    /* maildirsize: one line for each mailbox with a quota, and a line for
     * each copy into a Maildir that keeps one without (Dovecot's, say):
     * Maildir++ asks every deliverer to keep it up to date */
    for (size_t k = 0; k < n; k++) {
        if (items[k].it.state != 2)
            continue;
        if (boxes && items[k].box >= 0) {
            boxes[items[k].box].done_bytes += items[k].it.size;
            boxes[items[k].box].done_msgs++;
        } else if (boxes && items[k].box < 0) {
            /* summed per Maildir: one line (one open) per batch */
            struct box *b = NULL;
            for (size_t i = 0; i < nboxes && !b; i++)
                if (boxes[i].plain_dir >= 0 && !strcmp(boxes[i].comp, items[k].comp))
                    b = &boxes[i];
            if (!b) {
                b = &boxes[nboxes++];
                str_copy(b->comp, items[k].comp, sizeof(b->comp));
                b->md = -1;
                b->plain_dir = items[k].it.tmp_fd;
            }
            b->done_bytes += items[k].it.size;
            b->done_msgs++;
        }
    }
    quota_record(boxes, nboxes);
    free(boxes);
    /* reported once its renames are durable: by the next batch's flush,
     * or by pending_flush when no batch comes */
    pend_jobs = jobs;
    pend_items = items;
    pend_n = n;
    pend_t_start = t_start;
    if (!n)
        pending_finish(0);
}

static void on_gather(struct evloop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    gather_timer = 0;           /* on_idle, which runs next, decides */
}

/* A batch runs once it has LAGENT_GATHER_JOBS jobs, or its first job has
 * waited LAGENT_GATHER_MS: under load, many messages share each flush
 * (the flushes, not the copies, are what limits local delivery). */
static void on_idle(struct evloop *loop, void *arg)
{
    (void)arg;
    if (batch) {
        uint64_t age = now_ms() - batch_t0;
        if (!draining && nbatch < LAGENT_GATHER_JOBS && age < LAGENT_GATHER_MS) {
            if (!gather_timer)
                gather_timer = ev_timer(loop, LAGENT_GATHER_MS - age, on_gather, NULL);
            return;
        }
        if (gather_timer)
            ev_timer_cancel(loop, gather_timer);
        gather_timer = 0;
        run_batch();
        top_up();
    }
    if (pend_jobs && (draining || batch == NULL) && !pend_timer) {
        if (draining)
            pending_flush();
        else
            pend_timer = ev_timer(loop, LAGENT_GATHER_MS, on_pend_timer, NULL);
    }
    if (draining && !batch && !pend_jobs)
        ev_stop(loop);
}

/* ------------------------------------------------------------ jobs */

/* T_R_ALIAS of each recipient (job.c skips it): orig_to in the log. */
static void read_aliases(const struct ipc_msg *m, struct ljob *lj)
{
    struct ipc_iter it, in;
    struct ipc_field f, g;

    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1) {
        uint64_t idx = UINT64_MAX;
        char alias[ADDR_MAX + 1] = "";
        if (f.tag != T_RCPT)
            continue;
        ipc_iter_init(&in, f.val, f.len);
        while (ipc_iter_next(&in, &g) == 1) {
            if (g.tag == T_R_INDEX && ipc_field_u64(&g, &idx) < 0)
                idx = UINT64_MAX;
            else if (g.tag == T_R_ALIAS && ipc_field_str(&g, alias, sizeof(alias)) < 0)
                alias[0] = 0;
        }
        for (size_t i = 0; alias[0] && i < lj->j.nrcpt; i++)
            if (lj->j.jr[i].index == idx)
                str_copy(lj->orig[i], alias, sizeof(lj->orig[i]));
    }
}

static void take_job(const struct ipc_msg *m, int fd)
{
    struct ljob *lj = calloc(1, sizeof(*lj));
    char why[256], text[SMTPC_REPLY_TEXT];
    int has_id;

    if (!lj) {
        log_error("out of memory for a job: dropped (queue-mgr defers it)");
        if (fd >= 0)
            close(fd);
        return;
    }
    lj->fd = fd;
    lj->t_recv = wall_ms();
    if (job_parse(m, &lj->j, &has_id, why, sizeof(why)) < 0 || job_check_fd(fd, lj->j.size, why, sizeof(why)) < 0 ||
        !(lj->orig = calloc(lj->j.nrcpt, sizeof(*lj->orig)))) {
        log_warning("%s: invalid job from queue-mgr: %s", has_id ? lj->j.qid : "(no id)", why);
        if (has_id) {
            /* answered even without recipients: queue-mgr defers every
             * recipient of a job that has no result of its own */
            if (lj->j.rc) {
                job_bind(&lj->j, fd);
                snprintf(text, sizeof(text), "local: invalid job: %s", why);
                job_fail_all(&lj->j, SMTPC_DEFERRED, "4.3.0", text);
            } else {
                lj->j.nrcpt = 0;
            }
            send_result(lj);
        }
        free(lj->orig);
        lj->orig = NULL;
        ljob_free(lj);
        return;
    }
    job_bind(&lj->j, fd);
    read_aliases(m, lj);
    if (!batch)
        batch_t0 = now_ms();
    *batch_tail = lj;
    batch_tail = &lj->next;
    nbatch++;
}

static void want_forget(struct want *w)
{
    for (struct want **pp = &wants; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
    nwants--;
}

static void on_job(void *arg, const struct ipc_msg *m)
{
    struct want *w = arg;

    want_forget(w);
    if (m && m->type == D_JOB) {
        take_job(m, m->fd);
    } else if (m) {
        log_warning("queue-mgr answered D_WANT with type %u", (unsigned)m->type);
        if (m->fd >= 0)
            close(m->fd);
    }
}

static void on_orphan(struct link *l, const struct ipc_msg *m)
{
    (void)l;
    /* a job for a D_WANT withdrawn while draining: stored all the same */
    if (m->type == D_JOB)
        take_job(m, m->fd >= 0 ? fcntl(m->fd, F_DUPFD_CLOEXEC, 0) : -1);
}

static void top_up(void)
{
    while (!draining && nwants + nbatch < LAGENT_SLOTS && link_up(ql)) {
        struct want *w = calloc(1, sizeof(*w));
        struct ipc_out out;

        if (!w)
            return;
        w->id = link_new_id(ql);
        ipc_out_begin(&out, D_WANT, w->id);
        if (link_request(ql, &out, -1, w->id, 0, on_job, w) < 0) {
            ipc_out_free(&out);
            free(w);
            return;
        }
        ipc_out_free(&out);
        w->next = wants;
        wants = w;
        nwants++;
    }
}

static void on_tick(struct evloop *loop, void *arg)
{
    (void)arg;
    if (exit_on_loss && (!link_up(ql) || link_generation(ql) != link_gen)) {
        /* the socket is outside the jail: a new process reconnects */
        log_warning("lost the link to queue-mgr: exiting so that the master starts a new local");
        ev_stop(loop);
        return;
    }
    top_up();
    tick = ev_timer(loop, TICK_MS, on_tick, NULL);
}

int lagent_start(struct evloop *loop, const struct config *c, struct link *l, int root_fd,
                 struct mapdb *map, int exit_loss, char *err, size_t errlen)
{
    ev = loop;
    cfg = c;
    mbox_fd = root_fd;
    for (unsigned t = 0; t < LAGENT_FILLERS; t++)
        if (!(bufs[t] = malloc(sizeof(*bufs[t]))) && t == 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    ql = l;
    db = map;
    exit_on_loss = exit_loss;
    link_gen = link_generation(ql);
    if (!(store = maildir_open(root_fd, c->hostname))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    link_set_orphan(ql, on_orphan);
    ev_set_idle(loop, on_idle, NULL);
    top_up();
    tick = ev_timer(loop, TICK_MS, on_tick, NULL);
    return 0;
}

void lagent_drain(void)
{
    if (draining)
        return;
    draining = 1;
    while (wants) {
        link_cancel(ql, wants->id);
        want_forget(wants);
    }
    log_info("draining: %u job(s) in hand", nbatch);
}

int lagent_drained(void)
{
    return draining && !batch && !pend_jobs;
}

void lagent_stop(void)
{
    struct ljob *lj;

    if (tick)
        ev_timer_cancel(ev, tick);
    tick = 0;
    if (gather_timer)
        ev_timer_cancel(ev, gather_timer);
    gather_timer = 0;
    /* stored and renamed: made durable and reported, or delivered twice */
    pending_flush();
    /* jobs not stored yet get no result: queue-mgr defers them */
    while ((lj = batch)) {
        batch = lj->next;
        ljob_free(lj);
    }
    batch_tail = &batch;
    while (wants)
        want_forget(wants);
    maildir_close(store);
    store = NULL;
    for (unsigned t = 0; t < LAGENT_FILLERS; t++) {
        free(bufs[t]);
        bufs[t] = NULL;
    }
}
