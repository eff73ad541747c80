/*
 * committer.c - two-stage group commit (committer.h).
 *
 * Why the overlap is safe: LMDB is opened with MDB_NOMETASYNC, so a commit
 * makes its data pages durable before it writes the meta page that points
 * at them, and the next commit's flush also carries the previous meta page.
 * A syncfs() for batch N that runs while batch N+1 is being indexed can only
 * make more of N+1 durable early, never expose a record whose pages are not
 * on disk. No client hears about a batch before its own syncfs returned; a
 * record that became durable early without its whole spool file is held as
 * damaged by the start-up reconciliation (it never deletes a record), and
 * its client was never told 250.
 *
 * Errors: `broken` is set by the first failed stage and cleared only by a
 * probe job whose syncfs succeeds. While it is set, no job is indexed, and
 * a job that was indexed before has its records taken back and fails,
 * whatever its own syncfs would say.
 *
 * The threads touch only LMDB and the file system: never clients, sockets
 * or the event loop. Results come back through an eventfd.
 */
#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bounce.h"
#include "log.h"
#include "spool.h"
#include "util.h"

/* A FIFO of jobs between two stages, guarded by the one mutex. */
struct jobq {
    struct commit_job *head, *tail;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct jobq to_index, to_sync, finished;
static int index_busy;          /* a job is in the index stage */
static size_t in_flight;        /* submitted and not yet done() */
static int quit, started;
static int broken;              /* a stage failed; cleared by a good probe */
static pthread_t index_thread, sync_thread;
static int efd = -1;
static struct commit_ops ops;
static struct evloop *loop;
static void (*on_done)(struct commit_job *);

static void jobq_push(struct jobq *q, struct commit_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct commit_job *jobq_pop(struct jobq *q)
{
    struct commit_job *j = q->head;

    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    return j;
}

/* Called with mu held. */
static void finish_locked(struct commit_job *j)
{
    uint64_t one = 1;

    j->elapsed_ms = now_ms() - j->started_ms;
    jobq_push(&finished, j);
    if (write(efd, &one, sizeof(one)) < 0)
        log_error("committer: eventfd: %s", strerror(errno));
}

/* Whether a job writes anything (a probe does not). */
static int has_work(const struct commit_job *j)
{
    return j->n > 0 || j->nupdates > 0 || j->run;
}

static void *index_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!to_index.head && !quit)
            pthread_cond_wait(&cv, &mu);
        struct commit_job *j = jobq_pop(&to_index);
        if (!j)
            break;
        int rc = 0, was_broken = broken;
        if (was_broken) {
            snprintf(j->err, sizeof(j->err), "an earlier commit failed; not tried");
        } else if (j->n > 0) {
            pthread_mutex_unlock(&mu);
            rc = ops.index(ops.arg, j->items, j->n, j->err, sizeof(j->err));
            pthread_mutex_lock(&mu);
        } else if (j->nupdates > 0) {
            pthread_mutex_unlock(&mu);
            rc = ops.update ? ops.update(ops.arg, j, j->err, sizeof(j->err)) : -1;
            pthread_mutex_lock(&mu);
        } else if (j->run) {
            pthread_mutex_unlock(&mu);
            rc = j->run(j, j->err, sizeof(j->err));
            pthread_mutex_lock(&mu);
        }
        index_busy = 0;
        if (was_broken && has_work(j)) {
            j->status = COMMIT_FAILED;
            finish_locked(j);
        } else if (rc == QSTORE_EFULL) {
            /* Nothing was written: this batch is refused, the rest is sound. */
            j->status = COMMIT_FULL;
            finish_locked(j);
        } else if (rc < 0) {
            j->status = COMMIT_FAILED;
            broken = 1;
            finish_locked(j);
        } else {
            jobq_push(&to_sync, j);
        }
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *sync_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!to_sync.head && !(quit && !index_busy && !to_index.head))
            pthread_cond_wait(&cv, &mu);
        struct commit_job *j = jobq_pop(&to_sync);
        if (!j)
            break;
        int failed = broken && has_work(j);
        if (failed) {
            snprintf(j->err, sizeof(j->err), "an earlier commit failed");
        } else {
            /* results touch the index only: one flush of it, not a syncfs
             * of the whole file system with everyone's dirty pages */
            int index_only = j->n == 0 && j->nupdates > 0 && !j->run && ops.sync_index;
            pthread_mutex_unlock(&mu);
            failed = (index_only ? ops.sync_index(ops.arg) : ops.sync(ops.arg)) < 0;
            if (failed)
                snprintf(j->err, sizeof(j->err), "%s: %s", index_only ? "index sync" : "syncfs", strerror(errno));
            pthread_mutex_lock(&mu);
            if (failed)
                broken = 1;
            else if (!has_work(j))
                broken = 0; /* the probe: the file system writes again */
        }
        if (failed && j->n > 0) {
            /* Not durable: take the records back so nothing refers to
             * spool files the clients will be told were refused. */
            pthread_mutex_unlock(&mu);
            ops.unindex(ops.arg, j->items, j->n);
            pthread_mutex_lock(&mu);
        }
        j->status = failed ? COMMIT_FAILED : COMMIT_OK;
        finish_locked(j);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* In the event loop: hands finished jobs to done(), in order. */
static void drain_finished(void)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        struct commit_job *j = jobq_pop(&finished);
        pthread_mutex_unlock(&mu);
        if (!j)
            return;
        in_flight--;
        if (j->done)
            j->done(j);
        else
            on_done(j);
    }
}

static void efd_cb(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    uint64_t v;

    (void)ev;
    (void)events;
    (void)arg;
    if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        drain_finished();
}

static int default_index(void *arg, const struct qstore_item *items, size_t n, char *err, size_t errlen)
{
    return qstore_put_batch(arg, items, n, err, errlen);
}

static void default_unindex(void *arg, const struct qstore_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qstore_delete(arg, items[i].qid);
}

static int default_sync(void *arg)
{
    (void)arg;
    return spool_sync();
}

static int default_sync_index(void *arg)
{
    return qstore_sync(arg);
}

/* Results, then the messages they finished: no recipient left to
 * deliver and no notice still to write (bounce_waits). A result
 * for a recipient sent or bounced already (a late or repeated one) is
 * dropped: only this thread writes results, so what it reads stays true
 * until its own write. */
static int default_update(void *arg, struct commit_job *j, char *err, size_t errlen)
{
    struct qstore *q = arg;
    struct qstore_rcpt_update *keep = malloc(j->nupdates * sizeof(*keep));
    size_t nkeep = 0;
    int rc;

    j->nremoved = 0;
    if (!keep) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < j->nupdates; i++) {
        struct qrcpt rc0;
        if (qstore_get_rcpt(q, j->updates[i].qid, j->updates[i].rcpt, &rc0) != 0)
            continue;
        if (rc0.status == RCPT_PENDING || rc0.status == RCPT_DEFERRED)
            keep[nkeep++] = j->updates[i];
        qrcpt_free(&rc0);
    }
    rc = qstore_update_rcpts(q, keep, nkeep, NULL, err, errlen);
    free(keep);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < j->nupdates; i++) {
        const char *qid = j->updates[i].qid;
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(j->updates[k].qid, qid) == 0;
        if (seen || j->updates[i].status == RCPT_PENDING || j->updates[i].status == RCPT_DEFERRED)
            continue;
        if (qstore_undelivered(q, qid) != 0)
            continue;
        struct qrec r;
        char why[128];
        if (qstore_get(q, qid, &r, why, sizeof(why)) != 0)
            continue;
        int bounced = bounce_waits(&r);
        qrec_free(&r);
        if (!bounced)
            memcpy(j->removed[j->nremoved++], qid, QID_LEN + 1);
    }
    /* the finished messages go in one more transaction (one flush for the
     * batch, not one a message); only those really removed are reported */
    if (j->nremoved > 0) {
        unsigned char *gone = calloc(j->nremoved, 1);
        size_t n = 0;
        if (!gone || qstore_delete_many(q, j->removed, j->nremoved, gone) != 0) {
            free(gone);
            j->nremoved = 0;    /* they stay; the next result or start-up finishes them */
            return 0;
        }
        for (size_t i = 0; i < j->nremoved; i++)
            if (gone[i] && n++ != i)
                memcpy(j->removed[n - 1], j->removed[i], QID_LEN + 1);
        j->nremoved = n;
        free(gone);
    }
    return 0;
}

void committer_default_ops(struct commit_ops *o, struct qstore *q)
{
    o->update = default_update;
    o->index = default_index;
    o->unindex = default_unindex;
    o->sync = default_sync;
    o->sync_index = default_sync_index;
    o->arg = q;
}

int committer_start(struct evloop *ev, const struct commit_ops *o, void (*done)(struct commit_job *))
{
    loop = ev;
    ops = *o;
    on_done = done;
    quit = broken = 0;
    in_flight = 0;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0 || ev_add(ev, efd, EPOLLIN, efd_cb, NULL) < 0)
        return -1;
    /* Signals belong to the event loop's thread: the workers block all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&index_thread, NULL, index_main, NULL) != 0 ||
             pthread_create(&sync_thread, NULL, sync_main, NULL) != 0 ? -1 : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        return -1;
    started = 1;
    return 0;
}

int committer_ready(void)
{
    int ready;

    pthread_mutex_lock(&mu);
    ready = !index_busy && !to_index.head;
    pthread_mutex_unlock(&mu);
    return ready;
}

int committer_idle(void)
{
    return in_flight == 0;
}

void committer_submit(struct commit_job *j)
{
    j->started_ms = now_ms();
    in_flight++;
    pthread_mutex_lock(&mu);
    index_busy = 1;
    jobq_push(&to_index, j);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void committer_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&mu);
    quit = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(index_thread, NULL);
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv); /* the sync thread may now see the end */
    pthread_mutex_unlock(&mu);
    pthread_join(sync_thread, NULL);
    started = 0;
    drain_finished();
    ev_del(loop, efd);
    close(efd);
    efd = -1;
}
