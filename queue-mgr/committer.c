/*
 * committer.c - group commit thread (committer.h).
 *
 * The thread only writes the LMDB batch and syncs the filesystem; it never
 * touches clients, sockets or the event loop. Results come back through an
 * eventfd that the loop watches.
 */
#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct commit_job *job_todo, *job_busy;
static int quit, started;
static int efd = -1;
static struct qstore *store;
static struct evloop *loop;
static void (*on_done)(struct commit_job *);

static void run_job(struct commit_job *j)
{
    j->ok = 0;
    j->err[0] = 0;
    /* Data pages of the records first, then one syncfs that makes the
     * spool files and the index's meta page durable together (qstore.c). */
    if (qstore_put_batch(store, j->items, j->n, j->err, sizeof(j->err)) < 0)
        return;
    if (spool_sync() < 0) {
        snprintf(j->err, sizeof(j->err), "syncfs: %s", strerror(errno));
        for (size_t i = 0; i < j->n; i++)
            qstore_delete(store, j->items[i].qid);
        return;
    }
    j->ok = 1;
}

static void *thread_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!job_todo && !quit)
            pthread_cond_wait(&cv, &mu);
        if (!job_todo && quit)
            break;
        struct commit_job *j = job_todo;
        job_todo = NULL;
        pthread_mutex_unlock(&mu);
        uint64_t t0 = now_ms();
        run_job(j);
        j->elapsed_ms = now_ms() - t0;
        uint64_t one = 1;
        if (write(efd, &one, sizeof(one)) < 0)
            log_error("committer: eventfd: %s", strerror(errno));
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void finish(void)
{
    struct commit_job *j = job_busy;

    job_busy = NULL;
    if (j)
        on_done(j);
}

static void efd_cb(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    uint64_t v;

    (void)ev;
    (void)events;
    (void)arg;
    if (read(fd, &v, sizeof(v)) == sizeof(v))
        finish();
}

int committer_start(struct evloop *ev, struct qstore *q, void (*done)(struct commit_job *))
{
    loop = ev;
    store = q;
    on_done = done;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0 || ev_add(ev, efd, EPOLLIN, efd_cb, NULL) < 0)
        return -1;
    if (pthread_create(&thread, NULL, thread_main, NULL) != 0)
        return -1;
    started = 1;
    return 0;
}

int committer_busy(void)
{
    return job_busy != NULL;
}

void committer_submit(struct commit_job *j)
{
    job_busy = j;
    pthread_mutex_lock(&mu);
    job_todo = j;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

void committer_stop(void)
{
    uint64_t v;

    if (!started)
        return;
    pthread_mutex_lock(&mu);
    quit = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    started = 0;
    if (job_busy) {
        if (read(efd, &v, sizeof(v)) < 0) {
            /* the job ran; its result is in the job itself */
        }
        finish();
    }
    ev_del(loop, efd);
    close(efd);
}
