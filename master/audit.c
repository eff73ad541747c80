/*
 * audit.c - `postern check`: jails, owners and modes (audit.h).
 *
 * Read-only: it looks (lstat/fstatat through directory descriptors, never
 * following a symlink) and reports; it never changes, removes or chmods
 * anything, because a wrong owner may mean someone else has been there and
 * the operator must see it. Every finding names the path and the fix.
 *
 * The jail table says what each chrooted role needs in its jail and nothing
 * more: processes start before they chroot, so a jail holds no shell, no
 * library, no /etc; only the sockets a role talks through and, for smtpd,
 * the compiled recipient map. A new chrooted role is one row.
 */
#include "audit.h"
#include "authproto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapdb.h"
#include "paths.h"
#include "util.h"

#define JAIL_MAX_ENTRIES 10
#define WALK_MAX_DEPTH   6
#define WALK_MAX_ENTRIES 1000       /* findings beyond this are summarised */

/* An entry a jail may hold: its path inside the jail, its kind, and who
 * owns it (offsetof a struct dir_owners account; root for the jail's own
 * files). Sockets are created by the serving role: any owner. */
enum ent_kind { ENT_DIR, ENT_FILE, ENT_SOCK };
struct jail_entry {
    const char *path;
    enum ent_kind kind;
};

struct jail {
    const char *role;
    const char *dir;                /* under run_dir */
    size_t account;                 /* offsetof(struct dir_owners, ...) of the role's account */
    struct jail_entry need[JAIL_MAX_ENTRIES];
};

#define ACCOUNT(f) offsetof(struct dir_owners, f)

/* What every chrooted role finds in its jail (SPEC.md section 4). */
static const struct jail jails[] = {
    /* smtpd: queue-mgr's socket, and the map the master compiles */
    { "smtpd", SOCK_SMTPD_JAIL, ACCOUNT(smtpd),
      { { "queue", ENT_DIR }, { "queue/queue.sock", ENT_SOCK }, { MAPDB_FILE, ENT_FILE },
        { MAPDB_FILE ".NEW", ENT_FILE }, { "auth", ENT_DIR }, { "auth/auth.sock", ENT_SOCK },
        { "local", ENT_DIR }, { "local/quota.sock", ENT_SOCK }, { NULL, ENT_FILE } } },
    /* auth: the password map the master compiles (root's, group user_auth, 0440) */
    { "auth", AUTH_JAIL, ACCOUNT(auth),
      { { AUTH_DB_FILE, ENT_FILE }, { AUTH_DB_FILE ".NEW", ENT_FILE }, { NULL, ENT_FILE } } },
    /* the resolver: only the socket it serves (the trust anchor is read
     * before the chroot) */
    { "resolver", SOCK_RESOLVER_JAIL, ACCOUNT(resolver),
      { { "resolver.sock", ENT_SOCK }, { NULL, ENT_FILE } } },
    /* deliver: the sockets of queue-mgr and of the resolver */
    { "deliver", SOCK_DELIVER_JAIL, ACCOUNT(deliver),
      { { "queue", ENT_DIR }, { "queue/deliver.sock", ENT_SOCK }, { "resolver", ENT_DIR },
        { "resolver/resolver.sock", ENT_SOCK }, { NULL, ENT_FILE } } },
};

struct audit {
    const struct config *c;
    const struct dir_owners *o;
    audit_report_cb cb;
    void *arg;
    unsigned findings;
};

__attribute__((format(printf, 4, 5))) static void finding(struct audit *a, const char *path,
                                                          const char *fix, const char *fmt, ...)
{
    char problem[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    a->findings++;
    if (a->cb)
        a->cb(path, problem, fix, a->arg);
}

static const struct account *account_at(const struct dir_owners *o, size_t off)
{
    return (const struct account *)((const char *)o + off);
}

static const char *kind_name(mode_t m)
{
    return S_ISDIR(m) ? "directory" : S_ISREG(m) ? "file" : S_ISSOCK(m) ? "socket" :
           S_ISLNK(m) ? "symbolic link" : "special file";
}

static int kind_matches(enum ent_kind k, mode_t m)
{
    return (k == ENT_DIR && S_ISDIR(m)) || (k == ENT_FILE && S_ISREG(m)) || (k == ENT_SOCK && S_ISSOCK(m));
}

/* Could acct write this (a non-socket) entry? Sockets are connected to,
 * which takes write permission by design. */
static int writable_by(const struct stat *st, const struct account *acct)
{
    if (st->st_mode & S_IWOTH)
        return 1;
    if (!acct)
        return (st->st_mode & S_IWGRP) != 0;
    return st->st_uid == acct->uid || ((st->st_mode & S_IWGRP) && st->st_gid == acct->gid);
}

static void check_entry(struct audit *a, const struct jail *j, const char *path, const char *rel,
                        const struct stat *st)
{
    const struct account *acct = a->o ? account_at(a->o, j->account) : NULL;
    const struct jail_entry *need = NULL;
    char fix[2 * PATH_MAX + 64];

    for (size_t i = 0; i < JAIL_MAX_ENTRIES && j->need[i].path; i++)
        if (strcmp(j->need[i].path, rel) == 0)
            need = &j->need[i];
    if (!need || !kind_matches(need->kind, st->st_mode)) {
        snprintf(fix, sizeof(fix), "%s %s", S_ISDIR(st->st_mode) ? "rm -r" : "rm", path);
        if (need)
            finding(a, path, fix, "a %s where the %s jail needs a %s", kind_name(st->st_mode), j->role,
                    need->kind == ENT_DIR ? "directory" : need->kind == ENT_SOCK ? "socket" : "file");
        else
            finding(a, path, fix, "%s in the %s jail that %s does not need (a jail holds only its sockets%s)",
                    kind_name(st->st_mode), j->role, j->role, strcmp(j->role, "smtpd") ? "" : " and maps.db");
        need = NULL;                /* and whether it is also writable */
    }
    if (S_ISSOCK(st->st_mode))
        return;
    if (st->st_mode & (S_ISUID | S_ISGID) && !S_ISDIR(st->st_mode)) {
        snprintf(fix, sizeof(fix), "chmod ug-s %s", path);
        finding(a, path, fix, "set-id %s in the %s jail", kind_name(st->st_mode), j->role);
    }
    if (writable_by(st, acct)) {
        snprintf(fix, sizeof(fix), "chmod go-w %s%s%s", path, acct && st->st_uid == acct->uid ? "; chown root " : "",
                 acct && st->st_uid == acct->uid ? path : "");
        finding(a, path, fix, "writable by %s (mode %04o, owner uid %lu), which needs no write access there",
                acct ? acct->name : "group or others", (unsigned)(st->st_mode & 07777), (unsigned long)st->st_uid);
    }
}

/* Walks dirfd (the jail or a directory in it), rel its path in the jail. */
static void walk(struct audit *a, const struct jail *j, int dirfd, const char *path, const char *rel,
                 unsigned depth, unsigned *seen)
{
    DIR *d;
    struct dirent *e;
    int fd = dup(dirfd);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        finding(a, path, "check the directory by hand", "cannot be read: %s", strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX], subrel[PATH_MAX];
        struct stat st;

        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (++*seen > WALK_MAX_ENTRIES) {
            finding(a, path, "empty the jail and restart postern", "more than %d entries in the %s jail",
                    WALK_MAX_ENTRIES, j->role);
            break;
        }
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= sizeof(sub) ||
            (size_t)snprintf(subrel, sizeof(subrel), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= sizeof(subrel))
            continue;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;               /* gone meanwhile */
        check_entry(a, j, sub, subrel, &st);
        if (S_ISDIR(st.st_mode) && depth < WALK_MAX_DEPTH) {
            int sfd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sfd >= 0) {
                walk(a, j, sfd, sub, subrel, depth + 1, seen);
                close(sfd);
            }
        }
    }
    closedir(d);
}

static void audit_jail(struct audit *a, const struct jail *j)
{
    const struct account *acct = a->o ? account_at(a->o, j->account) : NULL;
    char path[PATH_MAX], fix[PATH_MAX + 64];
    struct stat st;
    unsigned seen = 0;
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", a->c->run_dir, j->dir) >= sizeof(path))
        return;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            snprintf(fix, sizeof(fix), "rm %s; postern start creates the jail", path);
            finding(a, path, fix, "the %s jail cannot be opened as a directory: %s", j->role, strerror(errno));
        }
        return;                     /* missing: start creates it */
    }
    if (fstat(fd, &st) == 0) {
        if (a->o && st.st_uid != a->o->root.uid) {
            snprintf(fix, sizeof(fix), "chown root:root %s", path);
            finding(a, path, fix, "the %s jail is owned by uid %lu, not root: %s could change what is in it",
                    j->role, (unsigned long)st.st_uid, j->role);
        }
        if (writable_by(&st, acct)) {
            snprintf(fix, sizeof(fix), "chmod 755 %s", path);
            finding(a, path, fix, "the %s jail is writable (mode %04o): a jailed process could leave files there",
                    j->role, (unsigned)(st.st_mode & 07777));
        }
    }
    walk(a, j, fd, path, "", 0, &seen);
    close(fd);
}

/* The directories above spool_dir, run_dir and mailbox_dir: writable by
 * others without the sticky bit, anyone could swap the directory under us. */
static void audit_parents(struct audit *a, const char *key, const char *dir)
{
    char p[PATH_MAX], fix[PATH_MAX + 32];

    str_copy(p, dir, sizeof(p));
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        struct stat st;
        if (slash == p)
            slash[1] = 0;
        else
            *slash = 0;
        if (stat(p, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            snprintf(fix, sizeof(fix), "chmod go-w %s", p);
            finding(a, p, fix, "writable by group or others (mode %04o) and above %s %s: "
                    "another user could replace it", (unsigned)(st.st_mode & 07777), key, dir);
        }
        if (slash == p)
            break;
    }
}

/* Files a root process reads: nobody else may change them, and the key
 * and relay passwords are nobody else's to read. */
static void audit_files(struct audit *a)
{
    const struct {
        const char *key, *path;
        mode_t forbid;
    } f[] = {
        { "configuration", a->c->path, 022 },
        { "mailboxes_file", a->c->mailboxes_file, 022 },
        { "aliases_file", a->c->aliases_file, 022 },
        { "tls_cert_file", a->c->tls_cert_file, 022 },
        { "tls_key_file", a->c->tls_key_file, 077 },
        { "relayhost_auth_file", a->c->relayhost_auth_file, 077 },
    };
    char fix[PATH_MAX + 32];

    for (size_t i = 0; i < ARRAY_LEN(f); i++) {
        struct stat st;
        if (!f[i].path[0] || stat(f[i].path, &st) < 0)
            continue;
        if (st.st_mode & f[i].forbid) {
            snprintf(fix, sizeof(fix), "chmod %s %s", f[i].forbid == 077 ? "go-rwx" : "go-w", f[i].path);
            finding(a, f[i].path, fix, "%s is %s by group or others (mode %04o)", f[i].key,
                    f[i].forbid == 077 ? "readable or writable" : "writable", (unsigned)(st.st_mode & 07777));
        }
    }
}

unsigned audit_run(const struct config *c, const struct dir_owners *owners, audit_report_cb cb, void *arg)
{
    struct audit a = { .c = c, .o = owners, .cb = cb, .arg = arg };

    for (size_t i = 0; i < ARRAY_LEN(jails); i++)
        audit_jail(&a, &jails[i]);
    audit_parents(&a, "spool_dir", c->spool_dir);
    audit_parents(&a, "run_dir", c->run_dir);
    audit_parents(&a, "mailbox_dir", c->mailbox_dir);
    audit_files(&a);
    return a.findings;
}

void audit_print(const char *path, const char *problem, const char *fix, void *arg)
{
    (void)arg;
    fprintf(stderr, "postern check: %s: %s; fix: %s\n", path, problem, fix);
}
