/*
 * maildir.c - the Maildir store (maildir.h).
 *
 * Must never build a path from anything but a maps_path_component() value
 * split at its one '/', never open anything but one component relative to
 * a descriptor it holds, never follow a symlink (O_NOFOLLOW everywhere,
 * mkdirat/openat/renameat only), and never leave a partial message in
 * new/: a message appears there by rename only, after its data is synced.
 *
 * The spool file holds the message as smtpd or sendmail wrote it: CRLF
 * lines, dot-stuffing already undone. Maildir readers expect LF lines, so
 * each CRLF becomes LF; every other byte is copied as it is.
 */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

#define CACHE_MAX 256                   /* Maildirs kept open */
#define BLOCK (64u << 10)
#define HEADER_MAX (1u << 20)           /* header bytes scanned for Delivered-To: */

struct md_dir {
    char comp[600];
    int tmp_fd, new_fd;
    dev_t dev;                          /* of tmp/: the file system its files are on */
    uint64_t used;                      /* LRU stamp */
};

struct md_dirty {
    int fd;                             /* a new/ with a rename since its last sync, or
                                         * a tmp/ on a file system with unsynced files */
    dev_t dev;
    ino_t ino;
};

struct md_set {                         /* each directory (or file system) once */
    struct md_dirty *v;
    size_t n, cap;
};

struct md_store {
    int root_fd;
    struct md_set dirty;                /* new/ directories: by device and inode */
    struct md_set data;                 /* file systems written to: by device */
    char host[256];
    unsigned seq;
    uint64_t clock;
    struct md_dir dir[CACHE_MAX];
    size_t ndir;
    struct md_buf buf;                  /* for maildir_write */
};

struct md_store *maildir_open(int root_fd, const char *host)
{
    struct md_store *s = calloc(1, sizeof(*s));
    size_t o = 0;

    if (!s)
        return NULL;
    s->root_fd = root_fd;
    /* '/' and ':' cannot be in a Maildir name: \057 and \072 as qmail does */
    for (const char *p = host; *p && o + 5 < sizeof(s->host); p++) {
        if (*p == '/' || *p == ':') {
            o += (size_t)snprintf(s->host + o, sizeof(s->host) - o, "\\%03o", (unsigned char)*p);
        } else if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f) {
            s->host[o++] = *p;
        }
    }
    s->host[o] = 0;
    if (!s->host[0])
        str_copy(s->host, "localhost", sizeof(s->host));
    return s;
}

static void dir_close(struct md_dir *d)
{
    if (d->tmp_fd >= 0)
        close(d->tmp_fd);
    if (d->new_fd >= 0)
        close(d->new_fd);
    d->tmp_fd = d->new_fd = -1;
    d->comp[0] = 0;
}

void maildir_close(struct md_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ndir; i++)
        dir_close(&s->dir[i]);
    for (size_t i = 0; i < s->dirty.n; i++)
        close(s->dirty.v[i].fd);
    for (size_t i = 0; i < s->data.n; i++)
        close(s->data.v[i].fd);
    free(s->dirty.v);
    free(s->data.v);
    free(s);
}

/* A subdirectory of dfd (one component), made when missing. */
static int subdir(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd >= 0 || errno != ENOENT)
        return fd;
    if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
        return -1;
    return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The cached tmp/ and new/ of a Maildir, opened (and made) when needed. */
static struct md_dir *dir_get(struct md_store *s, const char *comp)
{
    char dom[300];
    const char *slash = strchr(comp, '/');
    struct md_dir *d = NULL;
    struct stat st;
    int dfd = -1, ufd = -1, cfd;

    for (size_t i = 0; i < s->ndir; i++)
        if (strcmp(s->dir[i].comp, comp) == 0) {
            s->dir[i].used = ++s->clock;
            return &s->dir[i];
        }
    /* maps_path_component() checked it; checked again where it becomes a path */
    if (!slash || strchr(slash + 1, '/') || (size_t)(slash - comp) >= sizeof(dom) ||
        strlen(comp) >= sizeof(s->dir[0].comp) || slash == comp || !slash[1] || comp[0] == '.' ||
        slash[1] == '.') {
        errno = EINVAL;
        return NULL;
    }
    memcpy(dom, comp, (size_t)(slash - comp));
    dom[slash - comp] = 0;
    if (s->ndir < CACHE_MAX) {
        d = &s->dir[s->ndir++];
        d->tmp_fd = d->new_fd = -1;
    } else {
        d = &s->dir[0];
        for (size_t i = 1; i < s->ndir; i++)
            if (s->dir[i].used < d->used)
                d = &s->dir[i];
        dir_close(d);
    }
    if ((dfd = subdir(s->root_fd, dom)) < 0 || (ufd = subdir(dfd, slash + 1)) < 0)
        goto fail;
    if ((d->tmp_fd = subdir(ufd, "tmp")) < 0 || (d->new_fd = subdir(ufd, "new")) < 0 ||
        (cfd = subdir(ufd, "cur")) < 0)
        goto fail;
    close(cfd);
    if (fstat(d->tmp_fd, &st) < 0)
        goto fail;
    d->dev = st.st_dev;
    close(ufd);
    close(dfd);
    str_copy(d->comp, comp, sizeof(d->comp));
    d->used = ++s->clock;
    return d;
fail:;
    int e = errno;
    if (ufd >= 0)
        close(ufd);
    if (dfd >= 0)
        close(dfd);
    dir_close(d);
    d->used = 0;
    if (d == &s->dir[s->ndir - 1])
        s->ndir--;
    errno = e;
    return NULL;
}

/* ------------------------------------------------------------ the header */

static void note_line(struct md_seen *seen, const char *line, size_t len)
{
    static const char h[] = "delivered-to:";
    size_t i = sizeof(h) - 1, n = 0;

    if (len < i || strncasecmp(line, h, i) != 0 || seen->n >= MD_DT_MAX)
        return;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len - i >= sizeof(seen->v[0]))
        return;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        seen->v[seen->n][n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    seen->v[seen->n][n] = 0;
    seen->n++;
}

int maildir_scan_header(int fd, uint64_t size, struct md_seen *seen)
{
    char line[1024];
    size_t ll = 0, skip = 0;
    uint64_t off = 0;
    char buf[8192];

    seen->n = 0;
    while (off < size && off < HEADER_MAX) {
        size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\n') {
                size_t l = ll && line[ll - 1] == '\r' ? ll - 1 : ll;
                if (l == 0 && !skip)
                    return 0;       /* the blank line: end of the header */
                if (!skip)
                    note_line(seen, line, l);
                ll = skip = 0;
                continue;
            }
            if (ll < sizeof(line))
                line[ll++] = c;
            else
                skip = 1;           /* too long to be one of ours */
        }
        off += (uint64_t)n;
    }
    return 0;
}

int maildir_seen(const struct md_seen *seen, const char *addr)
{
    for (size_t i = 0; i < seen->n; i++) {
        const char *v = seen->v[i];
        size_t n = strlen(v);
        /* "addr" or "<addr>" */
        if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
            if (strlen(addr) == n - 2 && strncasecmp(v + 1, addr, n - 2) == 0)
                return 1;
        } else if (strcasecmp(v, addr) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Remembers the directory fd in set (each once: by device and inode, or
 * by device alone when by_dev): 0, or -1 with errno. */
static int note(struct md_set *set, int fd, int by_dev)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -1;
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].dev == st.st_dev && (by_dev || set->v[i].ino == st.st_ino))
            return 0;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct md_dirty *n = realloc(set->v, cap * sizeof(*n));
        if (!n)
            return -1;
        set->v = n;
        set->cap = cap;
    }
    if ((set->v[set->n].fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    set->v[set->n].dev = st.st_dev;
    set->v[set->n].ino = st.st_ino;
    set->n++;
    return 0;
}

/* -------------------------------------------------------------- writing */

static int copy_message(struct md_buf *s, int out, int spool_fd, uint64_t size, uint64_t *written)
{
    uint64_t off = 0;
    int cr = 0;                         /* a CR ended the last block */

    while (off < size) {
        size_t want = size - off < BLOCK ? (size_t)(size - off) : BLOCK, o = 0;
        ssize_t n = pread(spool_fd, s->in, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;        /* shorter than its record */
            return -1;
        }
        for (ssize_t i = 0; i < n; i++) {
            char c = s->in[i];
            if (cr) {
                if (c != '\n')
                    s->out[o++] = '\r';
                cr = 0;
            }
            if (c == '\r') {
                cr = 1;
                continue;
            }
            s->out[o++] = c;
        }
        if (write_all(out, s->out, o) < 0)
            return -1;
        *written += o;
        off += (uint64_t)n;
    }
    if (cr) {
        if (write_all(out, "\r", 1) < 0)
            return -1;
        ++*written;
    }
    return 0;
}

int maildir_prepare(struct md_store *s, const char *comp, struct md_item *it)
{
    struct md_dir *d;
    struct timeval tv;
    int e;

    memset(it, 0, sizeof(*it));
    it->tmp_fd = it->new_fd = -1;
    if (!(d = dir_get(s, comp)))
        return -1;
    gettimeofday(&tv, NULL);
    snprintf(it->name, sizeof(it->name), "%lld.M%06ldP%ldQ%u.%s", (long long)tv.tv_sec,
             (long)tv.tv_usec, (long)getpid(), ++s->seq, s->host);
    /* its own descriptors: the cache may close the Maildir's before the batch ends */
    if ((it->tmp_fd = fcntl(d->tmp_fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
        (it->new_fd = fcntl(d->new_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        e = errno;
        maildir_release(it);
        errno = e;
        return -1;
    }
    return 0;
}

int maildir_fill(struct md_buf *b, struct md_item *it, int spool_fd, uint64_t size, const char *sender,
                 const char *rcpt)
{
    char head[700];
    int fd, n, e;

    fd = openat(it->tmp_fd, it->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    it->state = 1;
    n = snprintf(head, sizeof(head), "Return-Path: <%s>\nDelivered-To: %s\n", sender, rcpt);
    if (n < 0 || (size_t)n >= sizeof(head)) {
        errno = EINVAL;
        goto fail;
    }
    it->size = (uint64_t)n;
    if (write_all(fd, head, (size_t)n) < 0 || copy_message(b, fd, spool_fd, size, &it->size) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    snprintf(it->final, sizeof(it->final), "%s,S=%llu", it->name, (unsigned long long)it->size);
    return 0;
fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(it->tmp_fd, it->name, 0);
    it->state = 0;
    errno = e;
    return -1;
}

int maildir_finish(struct md_store *s, struct md_item *it)
{
    /* its file system is synced by maildir_sync (mailbox_dir may span several) */
    if (it->state != 1 || note(&s->data, it->tmp_fd, 1) < 0) {
        int e = it->state != 1 ? EINVAL : errno;
        maildir_discard(it);
        errno = e;
        return -1;
    }
    return 0;
}

int maildir_write(struct md_store *s, const char *comp, int spool_fd, uint64_t size,
                  const char *sender, const char *rcpt, struct md_item *it)
{
    int e;

    for (int tries = 0;; tries++) {
        if (maildir_prepare(s, comp, it) < 0)
            return -1;
        if (maildir_fill(&s->buf, it, spool_fd, size, sender, rcpt) == 0)
            return maildir_finish(s, it);
        e = errno;
        maildir_release(it);
        if (e != ENOENT || tries) {
            errno = e;
            return -1;
        }
        maildir_forget(s, comp);        /* removed under us: make it again */
    }
}

void maildir_forget(struct md_store *s, const char *comp)
{
    for (size_t i = 0; i < s->ndir; i++)
        if (strcmp(s->dir[i].comp, comp) == 0) {
            dir_close(&s->dir[i]);
            s->dir[i].used = 0;
        }
}

int maildir_sync(struct md_store *s)
{
    int rc = 0, e = 0;

    /* one syncfs per file system written to: the data and inodes of the
     * whole batch, in one flush each */
    for (size_t i = 0; i < s->data.n; i++) {
        if (syncfs(s->data.v[i].fd) < 0 && !rc) {
            rc = -1;
            e = errno;
        }
        close(s->data.v[i].fd);
    }
    s->data.n = 0;
    errno = e;
    return rc;
}

int maildir_sync_all(struct md_store *s)
{
    int rc = 0, e = 0;

    /* the new/ directories' file systems join the data's: one syncfs
     * each covers both the files written and the renames made */
    for (size_t i = 0; i < s->dirty.n; i++)
        if (note(&s->data, s->dirty.v[i].fd, 1) < 0 && fsync(s->dirty.v[i].fd) < 0 && !rc) {
            rc = -1;
            e = errno;
        }
    for (size_t i = 0; i < s->dirty.n; i++)
        close(s->dirty.v[i].fd);
    s->dirty.n = 0;
    if (maildir_sync(s) < 0 && !rc) {
        rc = -1;
        e = errno;
    }
    errno = e;
    return rc;
}

void maildir_sync_plan(const dev_t *devs, size_t n, size_t syncfs_min, unsigned char *how)
{
    for (size_t i = 0; i < n; i++) {
        size_t same = 0, first = i;
        for (size_t k = 0; k < n; k++)
            if (devs[k] == devs[i]) {
                if (!same)
                    first = k;
                same++;
            }
        if (same < syncfs_min || !syncfs_min)
            how[i] = MD_FSYNC;
        else
            how[i] = first == i ? MD_SYNCFS : MD_COVERED;
    }
}

int maildir_publish(struct md_store *s, struct md_item *it)
{
    if (it->state != 1) {
        errno = EINVAL;
        return -1;
    }
    /* noted first: a rename that cannot be made durable later is not made */
    if (note(&s->dirty, it->new_fd, 0) < 0)
        return -1;
    if (renameat(it->tmp_fd, it->name, it->new_fd, it->final) < 0)
        return -1;
    it->state = 2;
    return 0;
}

int maildir_sync_dirs(struct md_store *s)
{
    int rc = 0, e = 0;
    dev_t *devs = calloc(s->dirty.n ? s->dirty.n : 1, sizeof(*devs));
    unsigned char *how = calloc(s->dirty.n ? s->dirty.n : 1, 1);

    if (devs && how) {
        for (size_t i = 0; i < s->dirty.n; i++)
            devs[i] = s->dirty.v[i].dev;
        maildir_sync_plan(devs, s->dirty.n, MD_SYNCFS_MIN, how);
    }
    for (size_t i = 0; i < s->dirty.n; i++) {
        /* out of memory: each directory on its own (MD_FSYNC is 0) */
        int r = 0;
        if (!how || how[i] == MD_FSYNC)
            r = fsync(s->dirty.v[i].fd);
        else if (how[i] == MD_SYNCFS)
            r = syncfs(s->dirty.v[i].fd);
        if (r < 0 && !rc) {
            rc = -1;
            e = errno;
        }
        close(s->dirty.v[i].fd);
    }
    s->dirty.n = 0;
    free(devs);
    free(how);
    errno = e;
    return rc;
}

void maildir_discard(struct md_item *it)
{
    if (it->state == 1)
        unlinkat(it->tmp_fd, it->name, 0);
    else if (it->state == 2)
        unlinkat(it->new_fd, it->final, 0);
    it->state = 0;
    maildir_release(it);
}

void maildir_release(struct md_item *it)
{
    if (it->tmp_fd >= 0)
        close(it->tmp_fd);
    if (it->new_fd >= 0)
        close(it->new_fd);
    it->tmp_fd = it->new_fd = -1;
}

const char *maildir_errno_dsn(int e)
{
    switch (e) {
    case EDQUOT:
        return "4.2.2";
    case EACCES:
    case EPERM:
    case ENOTDIR:
    case ELOOP:
        return "4.2.0";
    default:
        return "4.3.0";
    }
}
