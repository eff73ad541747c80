/*
 * pool.c - hashing threads (pool.h). The threads touch nothing but the
 * jobs handed to them: no logging, no I/O but the eventfd. Must never
 * hold a password longer than the check takes (wiped before a job is
 * handed back).
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "verify.h"

#define THREADS_MAX 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct pool_job *queue_head, **queue_tail = &queue_head, *done_head;
static size_t queued, queue_max;
static int stopping, efd = -1;
static pthread_t threads[THREADS_MAX];
static unsigned nthreads;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        struct pool_job *j;
        uint64_t one = 1;

        pthread_mutex_lock(&mu);
        while (!queue_head && !stopping)
            pthread_cond_wait(&cv, &mu);
        if (stopping) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        j = queue_head;
        queue_head = j->next;
        if (!queue_head)
            queue_tail = &queue_head;
        queued--;
        pthread_mutex_unlock(&mu);

        if (j->hash[0])
            j->ok = verify_password(j->hash, j->pass, j->passlen);
        else
            verify_dummy(j->pass, j->passlen), j->ok = 0;
        OPENSSL_cleanse(j->pass, sizeof(j->pass));
        j->passlen = 0;

        pthread_mutex_lock(&mu);
        j->next = done_head;
        done_head = j;
        pthread_mutex_unlock(&mu);
        /* EAGAIN: the counter is full, the loop is awake anyway */
        ssize_t w = write(efd, &one, sizeof(one));
        (void)w;
    }
}

int pool_start(unsigned n, size_t max_queued, char *err, size_t errlen)
{
    if (n == 0)
        n = 1;
    if (n > THREADS_MAX)
        n = THREADS_MAX;
    queue_max = max_queued;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    for (nthreads = 0; nthreads < n; nthreads++) {
        int r = pthread_create(&threads[nthreads], NULL, worker, NULL);
        if (r != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(r));
            pool_stop();
            return -1;
        }
    }
    return efd;
}

int pool_submit(struct pool_job *j)
{
    pthread_mutex_lock(&mu);
    if (queued >= queue_max) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    j->next = NULL;
    *queue_tail = j;
    queue_tail = &j->next;
    queued++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return 0;
}

struct pool_job *pool_done(void)
{
    struct pool_job *d;
    uint64_t v;
    ssize_t r = read(efd, &v, sizeof(v)); /* EAGAIN: nothing to drain */

    (void)r;
    pthread_mutex_lock(&mu);
    d = done_head;
    done_head = NULL;
    pthread_mutex_unlock(&mu);
    return d;
}

void pool_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    nthreads = 0;
    /* the jobs' args are the caller's allocations, freed with them */
    for (struct pool_job *j = queue_head, *n; j; j = n) {
        n = j->next;
        free(j->arg);
        OPENSSL_cleanse(j, sizeof(*j));
        free(j);
    }
    for (struct pool_job *j = done_head, *n; j; j = n) {
        n = j->next;
        free(j->arg);
        free(j);
    }
    done_head = NULL;
    queue_head = NULL;
    queue_tail = &queue_head;
    queued = 0;
    stopping = 0;
    if (efd >= 0)
        close(efd);
    efd = -1;
}
