/*
 * committer.c - two-stage group commit (committer.h).
 *
 * Why the overlap is safe: LMDB is opened with MDB_NOMETASYNC, so a commit
 * makes its data pages durable before it writes the meta page that points
 * at them, and the next commit's flush also carries the previous meta page.
 * A syncfs() for batch N that runs while batch N+1 is being indexed can only
 * make more of N+1 durable early, never expose a record whose pages are not
 * on disk. No client hears about a batch before its own syncfs returned; a
 * record that became durable early without its spool file is dropped by the
 * start-up reconciliation, and its client was never told 250.
 *
 * The threads touch only LMDB and the file system: never clients, sockets
 * or the event loop. Results come back through an eventfd.
 */
#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
static pthread_t index_thread, sync_thread;
static int efd = -1;
static struct qstore *store;
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
        pthread_mutex_unlock(&mu);
        j->ok = qstore_put_batch(store, j->items, j->n, j->err, sizeof(j->err)) == 0;
        pthread_mutex_lock(&mu);
        index_busy = 0;
        if (j->ok)
            jobq_push(&to_sync, j);
        else
            finish_locked(j);
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
        pthread_mutex_unlock(&mu);
        if (spool_sync() < 0) {
            snprintf(j->err, sizeof(j->err), "syncfs: %s", strerror(errno));
            j->ok = 0;
            /* Not durable: take the records back so nothing refers to
             * spool files the clients will be told were refused. */
            for (size_t i = 0; i < j->n; i++)
                qstore_delete(store, j->items[i].qid);
        }
        pthread_mutex_lock(&mu);
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

int committer_start(struct evloop *ev, struct qstore *q, void (*done)(struct commit_job *))
{
    loop = ev;
    store = q;
    on_done = done;
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
}
