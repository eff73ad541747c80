/*
 * dirs.c - creates and audits the directories of SPEC.md section 4 (dirs.h).
 *
 * Runs as root in the master. It only ever changes the owner and mode of a
 * directory it has just created itself (through the descriptor of that new
 * directory, never by name); an existing directory that looks wrong is
 * reported with the command that fixes it, never "fixed" silently, because
 * a wrong owner may mean someone else has been there.
 */
#include "dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Directories in the table of dir_table(); the table is checked against it. */
#define DIRS_MAX 24

struct dir_spec {
    char path[PATH_MAX];
    const char *what;               /* config key or description, for messages */
    const struct account *owner;
    mode_t mode;
    int top;                        /* a configured path: may be a symlink */
};

/* dir/name, or dir alone when name is NULL; -1 if it does not fit. */
static int join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = name ? snprintf(out, outlen, "%s/%s", dir, name) : snprintf(out, outlen, "%s", dir);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* The table of SPEC.md section 4: each directory and the one account that writes it. */
static int dir_table(const struct config *c, const struct dir_owners *o, struct dir_spec *d,
                     size_t *n, char *err, size_t errlen)
{
    struct {
        const char *base, *sub, *what;
        const struct account *owner;
        mode_t mode;
    } t[] = {
        { c->spool_dir, NULL, "spool_dir", &o->queue, 0700 },
        { c->spool_dir, "index", "queue index", &o->queue, 0700 },
        { c->spool_dir, "msg", "queue files", &o->queue, 0700 },
        { c->run_dir, NULL, "run_dir", &o->root, 0755 },
        { c->run_dir, "queue", "queue-mgr sockets", &o->queue, 0755 },
        /* smtpd's chroot jail: smtpd must not be able to write in it */
        { c->run_dir, "smtpd", "smtpd jail", &o->root, 0755 },
        { c->run_dir, "smtpd/queue", "queue-mgr socket in the smtpd jail", &o->queue, 0755 },
        /* the resolver's jail: it binds its socket there before it chroots */
        { c->run_dir, "resolver", "resolver jail", &o->root, 0755 },
        /* deliver's jail: queue-mgr and the resolver each bind a socket in
         * a directory of their own in it, before deliver chroots there */
        { c->run_dir, "deliver", "deliver jail", &o->root, 0755 },
        { c->run_dir, "deliver/queue", "queue-mgr socket in the deliver jail", &o->queue, 0755 },
        { c->run_dir, "deliver/resolver", "resolver socket in the deliver jail", &o->resolver, 0755 },
        /* the local role chroots into it and writes nothing else */
        { c->mailbox_dir, NULL, "mailbox_dir", &o->local, 0700 },
        /* the auth process's jail (its password map, written by the
         * master, readable only by user_auth) and its socket in smtpd's */
        { c->run_dir, "auth", "auth jail", &o->root, 0755 },
        { c->run_dir, "smtpd/auth", "auth socket in the smtpd jail", &o->auth, 0755 },
        /* the local role's quota socket in smtpd's jail (deliver/local/qserver.h) */
        { c->run_dir, "smtpd/local", "quota socket in the smtpd jail", &o->local, 0755 },
    };
    const char *keys[] = { "spool_dir", "run_dir", "mailbox_dir" };
    const char *vals[] = { c->spool_dir, c->run_dir, c->mailbox_dir };

    for (size_t i = 0; i < 3; i++) {
        if (vals[i][0] != '/') {
            snprintf(err, errlen, "%s \"%s\" must be an absolute path", keys[i], vals[i]);
            return -1;
        }
    }
    _Static_assert(sizeof(t) / sizeof(t[0]) <= DIRS_MAX, "dir_spec table larger than DIRS_MAX");
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (join(d[i].path, sizeof(d[i].path), t[i].base, t[i].sub) < 0) {
            snprintf(err, errlen, "%s: path too long", t[i].base);
            return -1;
        }
        d[i].what = t[i].what;
        d[i].owner = t[i].owner;
        d[i].mode = t[i].mode;
        d[i].top = t[i].sub == NULL;
    }
    *n = sizeof(t) / sizeof(t[0]);
    return 0;
}

static void parent_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (n == 0) {
        snprintf(out, outlen, "%s", slash ? "/" : ".");
        return;
    }
    snprintf(out, outlen, "%.*s", (int)n, path);
}

static int make_dir(const struct dir_spec *d, int as_root, char *err, size_t errlen)
{
    char parent[PATH_MAX];
    int fd;

    if (mkdir(d->path, 0700) < 0) {
        if (errno == ENOENT) {
            parent_of(d->path, parent, sizeof(parent));
            snprintf(err, errlen, "cannot create %s (%s): parent directory %s does not exist: "
                     "create it first", d->path, d->what, parent);
        } else {
            snprintf(err, errlen, "cannot create %s (%s): %s", d->path, d->what, strerror(errno));
        }
        return -1;
    }
    fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* mode first, owner second: chmod of a directory that is still ours
     * needs no CAP_FOWNER (the systemd unit does not grant it) */
    if (fd < 0 || fchmod(fd, d->mode) < 0 ||
        (as_root && fchown(fd, d->owner->uid, d->owner->gid) < 0)) {
        snprintf(err, errlen, "cannot set up new directory %s (%s): %s", d->path, d->what,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    log_info("created %s (%s), owner %lu:%lu, mode %04o", d->path, d->what,
             (unsigned long)d->owner->uid, (unsigned long)d->owner->gid, (unsigned)d->mode);
    return 0;
}

static int check_dir(const struct dir_spec *d, const struct stat *st, int check_owner,
                     char *err, size_t errlen)
{
    mode_t perm = st->st_mode & 07777;

    if (S_ISLNK(st->st_mode)) {
        snprintf(err, errlen, "%s (%s) is a symbolic link, expected a directory: remove it",
                 d->path, d->what);
        return -1;
    }
    if (!S_ISDIR(st->st_mode)) {
        snprintf(err, errlen, "%s (%s) is not a directory: move it away", d->path, d->what);
        return -1;
    }
    if (perm & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s (%s) is writable by group or others (mode %04o): "
                 "chmod %o %s", d->path, d->what, (unsigned)perm, (unsigned)d->mode, d->path);
        return -1;
    }
    if (check_owner && st->st_uid != d->owner->uid) {
        snprintf(err, errlen, "%s (%s) is owned by uid %lu, expected uid %lu (%s): "
                 "chown %lu:%lu %s", d->path, d->what, (unsigned long)st->st_uid,
                 (unsigned long)d->owner->uid, d->owner->name, (unsigned long)d->owner->uid,
                 (unsigned long)d->owner->gid, d->path);
        return -1;
    }
    /* Mail and queue files are private; readable is not fatal, but say so. */
    if ((d->mode & 077) == 0 && (perm & 077))
        log_warning("%s (%s) is readable by group or others (mode %04o): chmod %o %s",
                    d->path, d->what, (unsigned)perm, (unsigned)d->mode, d->path);
    return 0;
}

int dirs_prepare(const struct config *c, const struct dir_owners *owners, int create,
                 char *err, size_t errlen)
{
    static struct dir_spec d[DIRS_MAX];
    struct dir_owners any;
    size_t n;

    if (!owners) {
        /* only shapes and modes are checked; owners are placeholders */
        memset(&any, 0, sizeof(any));
        owners = &any;
    }
    if (dir_table(c, owners, d, &n, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        int r = d[i].top ? stat(d[i].path, &st) : lstat(d[i].path, &st);

        if (r < 0 && errno == ENOENT) {
            if (!create) {
                /* start would create it, but only inside an existing parent */
                char parent[PATH_MAX];
                struct stat pst;
                parent_of(d[i].path, parent, sizeof(parent));
                if (d[i].top && stat(parent, &pst) < 0) {
                    snprintf(err, errlen, "%s (%s) cannot be created: parent directory %s: %s",
                             d[i].path, d[i].what, parent, strerror(errno));
                    return -1;
                }
                continue;
            }
            if (make_dir(&d[i], getuid() == 0 || geteuid() == 0, err, errlen) < 0)
                return -1;
            continue;
        }
        if (r < 0) {
            snprintf(err, errlen, "%s (%s): %s", d[i].path, d[i].what, strerror(errno));
            return -1;
        }
        if (check_dir(&d[i], &st, owners != &any, err, errlen) < 0)
            return -1;
    }
    return 0;
}
