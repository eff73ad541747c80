/*
 * spool.c - spool files (spool.h).
 *
 * The commit point of a message is its LMDB record, not the file. A file
 * gets its final name when a client asks for it (Q_OPEN); smtpd writes it
 * through the descriptor we pass, or we write it from a pickup client's
 * Q_DATA. At commit its record goes into LMDB first (one transaction for
 * the batch), then one spool_sync() makes the batch's files and the
 * index's meta page durable, and only then is the client answered. A file
 * that no record names is removed at start-up (reconcile.c).
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qrecord.h"
#include "util.h"

static int msgdir_fd = -1;

int spool_init(const char *spool_dir, char *err, size_t errlen)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", spool_dir, QSTORE_MSG_DIR);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    msgdir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (msgdir_fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int create_file(char qid[QID_LEN + 1])
{
    for (int tries = 0; tries < 16; tries++) {
        qid_next(qid);
        int fd = openat(msgdir_fd, qid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/*
 * The pool: new spool files made ahead of need by threads of their own.
 * Creating a file can cost far more than writing it (an inode allocation
 * on a busy file system can scan for a long time), and the event loop must
 * not wait for that. The creators make unnamed files (O_TMPFILE) in the
 * spool directory; spool_create() gives one its queue id with linkat() at
 * the moment a client asks. So ids are made in arrival order by the event
 * loop alone, and no half-made file is ever visible: files nobody took
 * vanish with the process.
 */
#define POOL_SIZE 64
#define POOL_LOW 32             /* the creators start again at this many */
#define POOL_CREATORS 2

static struct pooled {
    int fd;         /* -1: creating failed, with err */
    int err;
} pool[POOL_SIZE];
static size_t pool_head, pool_len, pool_making;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_need = PTHREAD_COND_INITIALIZER;  /* creators wait: the pool is full enough */
static pthread_cond_t pool_have = PTHREAD_COND_INITIALIZER;  /* the taker waits: the pool is empty */
static int pool_running, pool_quit, pool_off, pool_refill, pool_waiting;
static pthread_t pool_threads[POOL_CREATORS];

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        /* asleep until the pool is down to POOL_LOW, then filled up in one
         * go: a few wake-ups for many files, not one a message */
        while ((pool_len + pool_making >= POOL_SIZE || (!pool_refill && pool_len > POOL_LOW)) && !pool_quit)
            pthread_cond_wait(&pool_need, &pool_mu);
        pool_refill = pool_len + pool_making + 1 < POOL_SIZE;
        if (pool_quit || pool_off)
            break;
        pool_making++;
        pthread_mutex_unlock(&pool_mu);
        struct pooled p;
        p.fd = openat(msgdir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        p.err = p.fd < 0 ? errno : 0;
        pthread_mutex_lock(&pool_mu);
        pool_making--;
        if (p.fd < 0 && (p.err == EOPNOTSUPP || p.err == EISDIR || p.err == EINVAL)) {
            /* No O_TMPFILE here: spool_create() makes files itself. */
            pool_off = 1;
            pthread_cond_broadcast(&pool_have);
            pthread_cond_broadcast(&pool_need);
            break;
        }
        pool[(pool_head + pool_len) % POOL_SIZE] = p;
        pool_len++;
        if (pool_waiting)
            pthread_cond_signal(&pool_have);
        if (p.fd < 0) {
            /* Disk full or worse: do not spin; try again in a moment. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&pool_need, &pool_mu, &ts);
        }
    }
    pthread_mutex_unlock(&pool_mu);
    return NULL;
}

int spool_pool_start(void)
{
    sigset_t all, old;
    int rc = 0;

    /* Signals belong to the event loop's thread: the creators block all. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < POOL_CREATORS && rc == 0; i++) {
        if (pthread_create(&pool_threads[i], NULL, pool_main, NULL) != 0)
            rc = -1;
        else
            pool_running++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void spool_pool_stop(void)
{
    if (!pool_running)
        return;
    pthread_mutex_lock(&pool_mu);
    pool_quit = 1;
    pthread_cond_broadcast(&pool_need);
    pthread_mutex_unlock(&pool_mu);
    for (int i = 0; i < pool_running; i++)
        pthread_join(pool_threads[i], NULL);
    pool_running = 0;
    for (; pool_len > 0; pool_len--, pool_head = (pool_head + 1) % POOL_SIZE)
        if (pool[pool_head].fd >= 0)
            close(pool[pool_head].fd);
}

/* Takes a made file from the pool: a descriptor, -1 with errno, or -2 when
 * there is no pool (not started, or no O_TMPFILE on this file system). */
static int pool_take(void)
{
    struct pooled p;

    if (!pool_running)
        return -2;
    pthread_mutex_lock(&pool_mu);
    while (pool_len == 0 && !pool_off) {
        pool_refill = 1;
        pthread_cond_broadcast(&pool_need);
        pool_waiting++;
        pthread_cond_wait(&pool_have, &pool_mu);
        pool_waiting--;
    }
    if (pool_len == 0) {
        pthread_mutex_unlock(&pool_mu);
        return -2;
    }
    p = pool[pool_head];
    pool_head = (pool_head + 1) % POOL_SIZE;
    pool_len--;
    if (pool_len == POOL_LOW) {
        pool_refill = 1;
        pthread_cond_broadcast(&pool_need);
    }
    pthread_mutex_unlock(&pool_mu);
    if (p.fd < 0)
        errno = p.err;
    return p.fd;
}

int spool_create(char qid[QID_LEN + 1])
{
    char path[64];
    int fd = pool_take();

    if (fd == -2)
        return create_file(qid);
    if (fd < 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    for (int tries = 0; tries < 16; tries++) {
        qid_next(qid);
        if (linkat(AT_FDCWD, path, msgdir_fd, qid, AT_SYMLINK_FOLLOW) == 0)
            return fd;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int spool_dir_fd(void)
{
    return msgdir_fd;
}

int64_t spool_size(const char *qid)
{
    struct stat st;

    if (fstatat(msgdir_fd, qid, &st, 0) < 0)
        return -1;
    return (int64_t)st.st_size;
}

void spool_remove(const char *qid)
{
    if (unlinkat(msgdir_fd, qid, 0) < 0 && errno != ENOENT)
        log_warning("%s: cannot remove spool file: %s", qid, strerror(errno));
}

int spool_sync(void)
{
    /* One syncfs covers file data and directory entries of the whole batch:
     * the price of durability is paid once per group commit, not per file. */
    return syncfs(msgdir_fd);
}
