/*
 * reconcile.c - start-up reconciliation of spool files and index records
 * (reconcile.h). Runs before any client is accepted, in the event loop's
 * thread. Must never remove a record, nor a file that a record names,
 * with one exception: a record whose every recipient is sent is a removal
 * that a crash interrupted (the results and the removal are two LMDB
 * transactions before one sync), and is finished here.
 */
#include "reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "qrecord.h"
#include "spool.h"

struct idset {
    char (*id)[QID_LEN + 1];
    int64_t *size;          /* size the record says, -1 if unreadable */
    unsigned char *damaged; /* already held as damaged */
    unsigned char *done;    /* every recipient sent: the removal was cut short */
    size_t n, cap;
    int failed;
};

static int grow(struct idset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    void *p = realloc(s->id, ncap * sizeof(*s->id));

    if (!p)
        return -1;
    s->id = p;
    if (!(p = realloc(s->size, ncap * sizeof(*s->size))))
        return -1;
    s->size = p;
    if (!(p = realloc(s->damaged, ncap)))
        return -1;
    s->damaged = p;
    if (!(p = realloc(s->done, ncap)))
        return -1;
    s->done = p;
    s->cap = ncap;
    return 0;
}

static int collect_id(const char *qid, const void *val, size_t len, void *arg)
{
    struct idset *s = arg;
    struct qrec r;
    char err[256];

    if (s->n == s->cap && grow(s) < 0) {
        s->failed = 1;
        return 1;
    }
    qrec_init(&r);
    if (qrec_decode(val, len, &r, err, sizeof(err)) == 0) {
        s->size[s->n] = (int64_t)r.size;
        s->damaged[s->n] = (r.flags & QF_DAMAGED) != 0;
        s->done[s->n] = r.nrcpt > 0;
        for (size_t i = 0; i < r.nrcpt; i++)
            if (r.rcpt[i].status != RCPT_SENT)
                s->done[s->n] = 0;
    } else {
        log_error("%s: queue record is unreadable: %s", qid, err);
        s->size[s->n] = -1;
        s->damaged[s->n] = 0;
        s->done[s->n] = 0;
    }
    qrec_free(&r);
    memcpy(s->id[s->n++], qid, QID_LEN + 1);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, QID_LEN);
}

static void hold_damaged(struct qstore *q, const char *qid, const char *what)
{
    log_error("%s: DAMAGED MESSAGE: %s; the message is held (QF_HOLD|QF_DAMAGED), not deleted: "
              "inspect %s/%s and release or delete it by hand", qid, what, QSTORE_MSG_DIR, qid);
    if (qstore_set_flags(q, qid, QF_HOLD | QF_DAMAGED, 0) != 0)
        log_error("%s: cannot mark the damaged message as held", qid);
}

/* One record against its file. */
static void check_one(struct qstore *q, const char *qid, int64_t want, int damaged)
{
    int64_t have = spool_size(qid);
    char what[128];

    if (want < 0)
        return;     /* unreadable record: logged, kept, never touched */
    if (have < 0 || have < want) {
        if (have < 0)
            snprintf(what, sizeof(what), "its spool file is missing");
        else
            snprintf(what, sizeof(what), "its spool file has %lld bytes, the record says %lld",
                     (long long)have, (long long)want);
        if (damaged)
            log_error("%s: damaged message still held: %s", qid, what);
        else
            hold_damaged(q, qid, what);
    } else if (have > want) {
        /* Bytes past what was committed were never part of the message. */
        int fd = openat(spool_dir_fd(), qid, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || ftruncate(fd, (off_t)want) < 0)
            log_error("%s: spool file has %lld bytes, its record says %lld, and it cannot be "
                      "truncated: %s", qid, (long long)have, (long long)want, strerror(errno));
        else
            log_warning("%s: spool file had %lld bytes, its record says %lld: truncated back to "
                        "the committed size", qid, (long long)have, (long long)want);
        if (fd >= 0)
            close(fd);
    }
}

long reconcile(struct qstore *q)
{
    struct idset s = { 0 };
    DIR *d = NULL;
    struct dirent *de;
    long orphans = 0, finished = 0, rc = -1;
    int dfd;

    if (qstore_scan(q, NULL, collect_id, &s) < 0 || s.failed)
        goto out;
    for (size_t i = 0; i < s.n; i++) {
        if (s.done[i]) {
            /* delivered; the removal was cut short: finish it (record
             * first, then the file, as the scheduler does) */
            if (qstore_delete(q, s.id[i]) == 0) {
                spool_remove(s.id[i]);
                log_info("%s: removed", s.id[i]);
                finished++;
                continue;
            }
        }
        check_one(q, s.id[i], s.size[i], s.damaged[i]);
    }
    dfd = dup(spool_dir_fd());
    d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    rewinddir(d);
    /* Ids come out of LMDB sorted, so bsearch works without a sort. */
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (qid_valid(de->d_name) && s.n && bsearch(de->d_name, s.id, s.n, sizeof(*s.id), cmp_id))
            continue;
        /* Never committed: the client was never told 250 for it. */
        spool_remove(de->d_name);
        orphans++;
    }
    if (orphans)
        log_info("reconcile: removed %ld spool file(s) of transactions that never committed", orphans);
    rc = (long)s.n - finished;
out:
    if (d)
        closedir(d);
    free(s.id);
    free(s.size);
    free(s.damaged);
    free(s.done);
    return rc;
}
