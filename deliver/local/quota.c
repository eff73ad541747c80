/*
 * quota.c - Maildir++ "maildirsize" (quota.h).
 *
 * Must never open anything but one component relative to a descriptor
 * it holds, never follow a symlink (O_NOFOLLOW, fstatat with
 * AT_SYMLINK_NOFOLLOW), never read more than MDQ_FILE_MAX + 1 bytes of
 * maildirsize, and never leave a half-written maildirsize: a recalculated
 * one is written in tmp/ and renamed into place.
 */
#include "quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

int mdq_open_maildir(int root_fd, const char *comp)
{
    char dom[300];
    const char *slash = strchr(comp, '/');
    int dfd, ufd, e;

    /* maps_path_component() made it; checked again where it becomes a path */
    if (!slash || strchr(slash + 1, '/') || slash == comp || (size_t)(slash - comp) >= sizeof(dom) || !slash[1] ||
        comp[0] == '.' || slash[1] == '.') {
        errno = EINVAL;
        return -1;
    }
    memcpy(dom, comp, (size_t)(slash - comp));
    dom[slash - comp] = 0;
    if ((dfd = openat(root_fd, dom, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -1;
    ufd = openat(dfd, slash + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    close(dfd);
    errno = e;
    return ufd;
}

/* A signed decimal at *p (after blanks), moving *p past it: 0, or -1. */
static int signed_number(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int neg = 0;
    uint64_t v = 0;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s < end && (*s == '-' || *s == '+'))
        neg = *s++ == '-';
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > (uint64_t)INT64_MAX)
            return -1;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s;
    return 0;
}

int mdq_parse(const char *text, size_t n, time_t mtime, time_t now, const struct mapdb_quota *q,
              struct mdq_usage *u)
{
    struct mapdb_quota fq;
    const char *p = text, *end, *nl;
    int64_t bytes = 0, msgs = 0;
    unsigned lines = 0;

    if (n >= MDQ_FILE_MAX || memchr(text, 0, n))
        return 0;
    /* a last line without its LF is being written: not counted */
    while (n > 0 && text[n - 1] != '\n')
        n--;
    end = text + n;
    if (!n || !(nl = memchr(p, '\n', n)))
        return 0;
    /* the definition: Dovecot writes "0S" for none; the map's must match */
    if (mapdb_quota_parse(p, (size_t)(nl - p), &fq) < 0 || fq.bytes != q->bytes || fq.msgs != q->msgs)
        return 0;
    for (p = nl + 1; p < end; p = nl + 1) {
        int64_t b, c;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (signed_number(&p, nl, &b) < 0 || signed_number(&p, nl, &c) < 0)
            return 0;
        while (p < nl && (*p == ' ' || *p == '\t'))
            p++;
        if (p != nl)
            return 0;
        if ((b > 0 && bytes > INT64_MAX - b) || (b < 0 && bytes < INT64_MIN - b) ||
            (c > 0 && msgs > INT64_MAX - c) || (c < 0 && msgs < INT64_MIN - c))
            return 0;
        bytes += b;
        msgs += c;
        lines++;
    }
    if (!lines || bytes < 0 || msgs < 0)
        return 0;
    if ((q->bytes && (uint64_t)bytes > q->bytes) || (q->msgs && (uint64_t)msgs > q->msgs)) {
        /* over quota: trusted only as one fresh summary line */
        if (lines > 1 || mtime < now - MDQ_STALE_SECS)
            return 0;
    }
    u->bytes = (uint64_t)bytes;
    u->msgs = (uint64_t)msgs;
    return 1;
}

int mdq_read(int md, const struct mapdb_quota *q, time_t now, struct mdq_usage *u)
{
    char buf[MDQ_FILE_MAX + 1];
    size_t n = 0;
    struct stat st;
    int fd = openat(md, MDQ_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), e;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, &st) < 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    return mdq_parse(buf, n, st.st_mtime, now, q, u);
}

/* The size a Maildir name gives: ",S=digits" ended by ':', ',' or the end. */
static int size_in_name(const char *name, uint64_t *size)
{
    const char *p = strstr(name, ",S=");
    uint64_t v = 0;

    if (!p)
        return -1;
    for (p += 3; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p && *p != ':' && *p != ',')
        return -1;
    *size = v;
    return 0;
}

struct scan {
    struct mdq_usage u;
    size_t entries, max;
    struct timespec newest;             /* of the directories counted */
};

static void note_mtime(struct scan *s, const struct stat *st)
{
    if (st->st_mtim.tv_sec > s->newest.tv_sec ||
        (st->st_mtim.tv_sec == s->newest.tv_sec && st->st_mtim.tv_nsec > s->newest.tv_nsec))
        s->newest = st->st_mtim;
}

/* Counts one new/ or cur/ (a missing one is empty). */
static int sum_dir(int parent, const char *name, struct scan *s)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), e;
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    if (fstat(fd, &st) < 0 || !(d = fdopendir(fd))) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    note_mtime(s, &st);
    errno = 0;
    while ((de = readdir(d))) {
        uint64_t size;
        if (de->d_name[0] == '.')
            continue;
        if (s->max && ++s->entries > s->max) {
            closedir(d);
            errno = E2BIG;
            return -1;
        }
        if (size_in_name(de->d_name, &size) < 0) {
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                    continue;       /* expunged while we counted */
                e = errno;
                closedir(d);
                errno = e;
                return -1;
            }
            size = (uint64_t)st.st_size;
        }
        s->u.bytes += size;
        s->u.msgs++;
        errno = 0;
    }
    e = errno;
    closedir(d);
    errno = e;
    return e ? -1 : 0;
}

/* new/ and cur/ of one Maildir (the root or a ".Folder"). */
static int sum_maildir(int md, struct scan *s)
{
    return sum_dir(md, "new", s) < 0 || sum_dir(md, "cur", s) < 0 ? -1 : 0;
}

static int scan_all(int md, struct scan *s)
{
    int dup_fd, e;
    struct dirent *de;
    DIR *d;

    if (sum_maildir(md, s) < 0)
        return -1;
    if ((dup_fd = openat(md, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    if (!(d = fdopendir(dup_fd))) {
        e = errno;
        close(dup_fd);
        errno = e;
        return -1;
    }
    errno = 0;
    while ((de = readdir(d))) {
        int sub;
        /* Maildir++ folders: ".Name", never "." or ".." */
        if (de->d_name[0] != '.' || !de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))
            continue;
        sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            errno = 0;
            continue;               /* a file, a symlink, or gone */
        }
        e = sum_maildir(sub, s) < 0 ? errno : 0;
        close(sub);
        if (e) {
            closedir(d);
            errno = e;
            return -1;
        }
        errno = 0;
    }
    e = errno;
    closedir(d);
    errno = e;
    return e ? -1 : 0;
}

/* Whether a new/ or cur/ changed after newest (while counting). */
static int changed_since(int md, const struct timespec *newest)
{
    struct scan again = { .max = 0 };
    struct stat st;
    static const char *const sub[] = { "new", "cur" };

    for (size_t i = 0; i < 2; i++)
        if (fstatat(md, sub[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            note_mtime(&again, &st);
    return again.newest.tv_sec > newest->tv_sec ||
           (again.newest.tv_sec == newest->tv_sec && again.newest.tv_nsec > newest->tv_nsec);
}

int mdq_recalc(int md, const struct mapdb_quota *q, size_t max_entries, struct mdq_usage *u)
{
    struct scan s = { .max = max_entries };
    char text[128], name[128];
    struct timeval tv;
    int n, fd, tmp, e;
    static unsigned seq;

    if (scan_all(md, &s) < 0)
        return -1;
    *u = s.u;
    if (changed_since(md, &s.newest))
        return 0;               /* counted a moving target: the next reader counts again */
    if (mapdb_quota_format(q, text, sizeof(text) - 48) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!text[0])
        str_copy(text, "0S", sizeof(text));
    n = (int)strlen(text);
    n += snprintf(text + n, sizeof(text) - (size_t)n, "\n%" PRIu64 " %" PRIu64 "\n", s.u.bytes, s.u.msgs);
    gettimeofday(&tv, NULL);
    snprintf(name, sizeof(name), "%lld.M%06ldP%ldQ%u.maildirsize", (long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid(), ++seq);
    if ((tmp = openat(md, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -1;
    fd = openat(tmp, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        close(tmp);
        errno = e;
        return -1;
    }
    if (write_all(fd, text, (size_t)n) < 0 || close(fd) < 0 || renameat(tmp, name, md, MDQ_FILE) < 0) {
        e = errno;
        unlinkat(tmp, name, 0);
        close(tmp);
        errno = e;
        return -1;
    }
    close(tmp);
    return 0;
}

int mdq_usage(int md, const struct mapdb_quota *q, time_t now, size_t max_entries, struct mdq_usage *u)
{
    int r = mdq_read(md, q, now, u);

    if (r == 1)
        return 0;
    if (r < 0 && errno != EINVAL && errno != ELOOP)
        return -1;
    /* missing, untrustworthy, a symlink or not a regular file: counted
     * again (the rename replaces whatever the name was) */
    return mdq_recalc(md, q, max_entries, u);
}

int mdq_add(int dirfd, const char *name, int64_t bytes, int64_t msgs)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes, msgs);
    int fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), e;
    ssize_t w;

    struct stat st;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* at MDQ_FILE_MAX every reader recounts it anyway: it grows no more */
    if (fstat(fd, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size >= MDQ_FILE_MAX)) {
        close(fd);
        return 0;
    }
    /* one write: O_APPEND keeps lines of concurrent writers whole */
    do
        w = write(fd, line, (size_t)n);
    while (w < 0 && errno == EINTR);
    e = errno;
    close(fd);
    if (w != n) {
        errno = w < 0 ? e : EIO;
        return -1;
    }
    return 0;
}

enum quota_verdict mdq_verdict(const struct mapdb_quota *q, const struct mdq_usage *u, uint64_t size)
{
    if (!q->bytes && !q->msgs)
        return QUOTA_NONE;
    if (q->bytes && size > q->bytes)
        return QUOTA_TOOBIG;
    if ((q->bytes && (u->bytes > q->bytes || size > q->bytes - u->bytes)) ||
        (q->msgs && u->msgs >= q->msgs))
        return QUOTA_FULL;
    return QUOTA_OK;
}
