/*
 * postern - the master: `postern [-c FILE] run|start|stop|reload|status|check`
 * (SPEC.md sections 2 and 4).
 *
 * As root it prepares the directories, binds the listening ports, and runs
 * the other processes (supervise.c), which drop privileges themselves. It
 * keeps root, so it must stay small: it parses no network input, reads
 * nothing from its children but their fixed readiness message
 * (common/ready.h), passes them no envelope data, and never runs a shell.
 * `start` returns once every process said ready (or one failed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "btmpl.h"
#include "config.h"
#include "dirs.h"
#include "evloop.h"
#include "listeners.h"
#include "log.h"
#include "audit.h"
#include "mapdb.h"
#include "authproto.h"
#include "maps.h"
#include "notify.h"
#include "pidfile.h"
#include "privsep.h"
#include "qstore.h"
#include "paths.h"
#include "reload.h"
#include "status.h"
#include "supervise.h"
#include "tlscheck.h"
#include "util.h"

/* The master gives sessions stop_timeout, then kills what is left within
 * 15 s more (supervise.c); `postern stop` waits that long and a little more. */
#define STOP_WAIT_SLACK_MS 25000
/* start: the daemon answers once every process is up or one failed, which
 * the readiness bounds of supervise.c keep within about two minutes; this
 * is only for a daemon that never answers. */
#define START_WAIT_MS 300000

/* What the daemon tells the `start` command waiting for it. */
struct start_report {
    pid_t pid;
    int how;                        /* START_* */
    char text[480];
};
#define START_READY    1            /* every process is up */
#define START_NOTREADY 2            /* a process failed; the master keeps trying */
#define START_FATAL    3            /* the master itself gave up */

/* What the running master holds. */
static struct {
    struct config *cfg;
    char conf[PATH_MAX];            /* absolute path, for children and reloads */
    char bindir[PATH_MAX];          /* where the role binaries are */
    struct dir_owners owners;
    struct listeners lis[2];        /* current and the one a reload builds */
    int cur;
    struct sup *sup;
    int daemon_pipe;                /* start: tells the waiting parent we are up */
    int tell_terminal;              /* start, until daemonized: errors also to stderr */
    char status_line[STATUS_MAX];   /* last line written to RUN/postern.status */
    int was_ready;                  /* every process has been up at least once */
    unsigned long reloads;          /* reloads tried, for RUN/postern.reload */
} m = { .daemon_pipe = -1 };

static void daemon_report(int how, const char *text);

/*
 * A start-up failure: logged, and in `start` mode also said on the terminal,
 * since the log goes to syslog there and nobody is watching it yet.
 */
__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(LOG_LVL_FATAL, "%s", msg);
    if (m.daemon_pipe >= 0)
        daemon_report(START_FATAL, msg);    /* the waiting `start` says it */
    else if (m.tell_terminal)
        fprintf(stderr, "postern: %s\n", msg);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: postern [-c FILE] run|start|stop|reload|status|check\n");
    exit(64);
}

static int count_record(const char *qid, const void *val, size_t len, void *arg)
{
    (void)qid;
    (void)val;
    (void)len;
    (void)arg;
    return 0;
}

/* tls_check: also load the certificate and key (check and reload); at
 * start smtpd does that itself, and a failure there is its own, retried
 * with the backoff while the rest of the system runs. */
static struct config *load(const char *path, int tls_check, char *err, size_t errlen)
{
    struct config *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    config_defaults(c);
    if (config_load(c, path, err, errlen) < 0) {
        config_free(c);
        free(c);
        return NULL;
    }
    /* config.c checks that the TLS files exist; smtpd reads them as the
     * user the master runs as, so say now if it cannot. */
    const char *tls[] = { c->tls_cert_file, c->tls_key_file };
    for (size_t i = 0; i < ARRAY_LEN(tls); i++) {
        if (tls[i][0] && access(tls[i], R_OK) < 0) {
            snprintf(err, errlen, "%s: %s %s: %s", path, i ? "tls_key_file" : "tls_cert_file",
                     tls[i], strerror(errno));
            config_free(c);
            free(c);
            return NULL;
        }
    }
    /* ... and that they are a certificate and its key, so a reload with a
     * renewed certificate that does not load is refused, not half done */
    if (tls_check && c->tls_cert_file[0] && c->tls_key_file[0] &&
        tls_pair_check(c->tls_cert_file, c->tls_key_file, err, errlen) < 0) {
        char why[1024];
        str_copy(why, err, sizeof(why));
        snprintf(err, errlen, "%s: %s", path, why);
        config_free(c);
        free(c);
        return NULL;
    }
    return c;
}

/* Opens the queue index read-only, if there is one, to prove it is sound. */
static int check_queue(const struct config *c, char *err, size_t errlen)
{
    char path[2048];
    struct qstore *q;
    long n;

    snprintf(path, sizeof(path), "%s/%s/data.mdb", c->spool_dir, QSTORE_DIR);
    if (access(path, F_OK) < 0)
        return 0;
    if (qstore_check_devices(c->spool_dir, err, errlen) < 0)
        return -1;
    if (qstore_open(&q, c->spool_dir, 1, err, errlen) < 0)
        return -1;
    n = qstore_scan(q, NULL, count_record, NULL);
    qstore_close(q);
    if (n < 0) {
        snprintf(err, errlen, "%.1900s: queue index cannot be read", path);
        return -1;
    }
    printf("postern: queue index %s: %ld message(s)\n", path, n);
    return 0;
}

/* Compiles the mailbox and alias maps; with install set, into smtpd's jail
 * (RUN/smtpd/maps.db, replaced atomically) and the password hashes into
 * the auth process's (RUN/auth/passwd.db, root's, group user_auth, 0440), else only
 * checks them. */
static int compile_maps(const struct config *c, int install, struct maps_stats *st, char *err, size_t errlen)
{
    char out[PATH_MAX], auth[PATH_MAX];
    /* root's, readable by user_auth's group: the auth process cannot change it */
    struct maps_owner owner = { 0, m.owners.auth.gid };

    if ((size_t)snprintf(out, sizeof(out), "%s/%s/%s", c->run_dir, SOCK_SMTPD_JAIL, MAPDB_FILE) >= sizeof(out) ||
        (size_t)snprintf(auth, sizeof(auth), "%s/%s/%s", c->run_dir, AUTH_JAIL, AUTH_DB_FILE) >= sizeof(auth)) {
        snprintf(err, errlen, "%s: run_dir too long", c->path);
        return -1;
    }
    return maps_compile_auth(c, install ? out : NULL, install ? auth : NULL, priv_is_root() ? &owner : NULL, st,
                             err, errlen);
}

static void unload(struct config *c)
{
    config_free(c);
    free(c);
}

/* As root, the configured accounts; otherwise everything is the caller's. */
static int resolve_owners(const struct config *c, struct dir_owners *o, char *err, size_t errlen)
{
    char why[512];

    memset(o, 0, sizeof(*o));
    if (!priv_is_root()) {
        o->root.uid = getuid();
        o->root.gid = getgid();
        snprintf(o->root.name, sizeof(o->root.name), "uid %lu", (unsigned long)getuid());
        o->smtpd = o->queue = o->deliver = o->resolver = o->auth = o->local = o->root;
        return 0;
    }
    /* one row an account (a new role's account is a new row and a field
     * of struct dir_owners) */
    const struct {
        const char *key, *val;
        struct account *out;
    } a[] = {
        { "user_smtpd", c->user_smtpd, &o->smtpd },
        { "user_queue", c->user_queue, &o->queue },
        { "user_resolver", c->user_resolver, &o->resolver },
        { "user_deliver", c->user_deliver, &o->deliver },
        { "user_auth", c->user_auth, &o->auth },
        { "user_local", c->user_local, &o->local },
    };
    for (size_t i = 0; i < ARRAY_LEN(a); i++) {
        if (priv_resolve(a[i].val, a[i].out, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: %s: %s", c->path, a[i].key, why);
            return -1;
        }
    }
    str_copy(o->root.name, "root", sizeof(o->root.name));
    return 0;
}

static int pid_path(const struct config *c, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", c->run_dir, PID_FILE);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Where the role binaries are: next to this one. */
static void find_bindir(char *out, size_t outlen)
{
    ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
    char *slash;

    if (n <= 0)
        fail("cannot find my own binary: readlink /proc/self/exe: %s", strerror(errno));
    out[n] = 0;
    slash = strrchr(out, '/');
    if (!slash)
        fail("cannot find my own binary: %s", out);
    *slash = 0;
    if (!out[0])
        str_copy(out, "/", outlen);
}

/* Descriptors 0-2 open, so that no socket or file of ours ever lands there. */
static void open_std_fds(void)
{
    int fd;

    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
}

/* ----------------------------------------------------------------- check */

static int cmd_check(const char *path)
{
    static struct listeners plan;
    struct dir_owners owners;
    struct config *c;
    char err[2048];
    int rc = 1;

    log_init("master", 1);
    c = load(path, 1, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (listeners_plan(&plan, c, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (priv_is_root() && resolve_owners(c, &owners, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    /* the directories (the first that start would refuse), then every
     * finding of the audit, each with its fix */
    int dirs_bad = dirs_prepare(c, priv_is_root() ? &owners : NULL, 0, err, sizeof(err)) < 0;
    if (dirs_bad)
        fprintf(stderr, "%s: %s\n", path, err);
    unsigned findings = audit_run(c, priv_is_root() ? &owners : NULL, audit_print, NULL) + (unsigned)dirs_bad;
    if (findings) {
        fprintf(stderr, "%s: %u finding(s) in the jails and directories; fix them and run postern check again\n",
                path, findings);
        goto out;
    }
    if (check_queue(c, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    struct maps_stats st;
    if (compile_maps(c, 0, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    printf("postern: maps: %u mailbox(es), %u alias(es)\n", st.mailboxes, st.aliases);
    struct btmpl *bt;
    if (btmpl_load(c->bounce_template_dir, &bt, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    btmpl_free(bt);
    printf("postern: configuration %s is valid\n", path);
    rc = 0;
out:
    unload(c);
    return rc;
}

/* ------------------------------------------------------- run and start */

/* Reads a whole report from fd before deadline (now_ms); 0, or -1 on EOF,
 * error or time out (*timed_out set). */
static int read_report(int fd, struct start_report *r, uint64_t deadline, int *timed_out)
{
    size_t got = 0;

    *timed_out = 0;
    while (got < sizeof(*r)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint64_t now = now_ms();
        ssize_t n;
        int pr;

        if (now >= deadline) {
            *timed_out = 1;
            return -1;
        }
        pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -1;
        if (pr == 0)
            continue;
        n = read(fd, (char *)r + got, sizeof(*r) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    r->text[sizeof(r->text) - 1] = 0;
    for (char *c = r->text; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    return 0;
}

/*
 * Returns in the daemon (session leader's child, cwd /); the original
 * process waits until the daemon reports that every process is up, or that
 * something failed, or dies, and exits 0 only in the first case.
 */
static void daemonize(void)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        fail("pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid > 0) {
        struct start_report r;
        int timed_out, rc;
        close(p[1]);
        rc = read_report(p[0], &r, now_ms() + START_WAIT_MS, &timed_out);
        waitpid(pid, NULL, 0);
        if (rc < 0 && timed_out) {
            fprintf(stderr, "postern: the master did not report within %d s that it is ready; "
                    "see the log\n", START_WAIT_MS / 1000);
            exit(1);
        }
        if (rc < 0) {
            fprintf(stderr, "postern: the master exited during start-up; see the log\n");
            exit(1);
        }
        switch (r.how) {
        case START_READY:
            printf("postern: started (pid %ld), ready: %s\n", (long)r.pid, r.text);
            exit(0);
        case START_NOTREADY:
            fprintf(stderr, "postern: started (pid %ld) but not ready: %s; "
                    "the master keeps trying (see the log)\n", (long)r.pid, r.text);
            exit(1);
        default:
            fprintf(stderr, "postern: %s\n", r.text);
            exit(1);
        }
    }
    close(p[0]);
    m.daemon_pipe = p[1];       /* from here on, fail() reports through it */
    if (setsid() < 0)
        fail("setsid: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        fail("chdir /: %s", strerror(errno));
}

/* The daemon is set up: let go of the terminal before any child starts, so
 * no child inherits it (the waiting parent speaks for us from now on). */
static void daemon_detach(void)
{
    int nul = open("/dev/null", O_RDWR);

    if (nul < 0)
        fail("/dev/null: %s", strerror(errno));
    m.tell_terminal = 0;
    dup2(nul, STDIN_FILENO);
    dup2(nul, STDOUT_FILENO);
    dup2(nul, STDERR_FILENO);
    if (nul > 2)
        close(nul);
}

/* Releases the waiting `start` command, once. */
static void daemon_report(int how, const char *text)
{
    struct start_report r;

    if (m.daemon_pipe < 0)
        return;
    memset(&r, 0, sizeof(r));
    r.pid = getpid();
    r.how = how;
    str_copy(r.text, text, sizeof(r.text));
    if (write_all(m.daemon_pipe, &r, sizeof(r)) < 0)
        log_warning("cannot tell the starting command how the start went: %s", strerror(errno));
    close(m.daemon_pipe);
    m.daemon_pipe = -1;
}

/* Readiness news from the supervisor: for `start`, and for `status`. */
static void on_sup_event(enum sup_event e, const char *text, void *arg)
{
    char line[STATUS_MAX - 1], scratch[STATUS_MAX];   /* line + newline fit the file */
    int all;

    (void)arg;
    switch (e) {
    case SUP_READY:
        m.was_ready = 1;
        daemon_report(START_READY, text);
        notify_send("READY=1", text);
        break;
    case SUP_FAILED:
        daemon_report(START_NOTREADY, text);
        break;
    case SUP_CHANGED:
        all = sup_describe(m.sup, scratch, sizeof(scratch));
        snprintf(line, sizeof(line), "%s: %s", all ? "ready" : m.was_ready ? "not ready" : "starting",
                 text);
        if (strcmp(line, m.status_line) == 0)
            break;
        if (status_write(m.cfg->run_dir, line) < 0)
            log_warning("cannot write %s/%s: %s", m.cfg->run_dir, STATUS_FILE, strerror(errno));
        str_copy(m.status_line, line, sizeof(m.status_line));
        break;
    }
}

/* Keys whose change needs a restart: the pid file, the queue's open index
 * and sockets, and the owners of the directories. */
static int restart_needed(const struct config *a, const struct config *b, char *why, size_t len)
{
    const struct {
        const char *key, *old, *new;
    } k[] = {
        { "run_dir", a->run_dir, b->run_dir },
        { "spool_dir", a->spool_dir, b->spool_dir },
        { "user_smtpd", a->user_smtpd, b->user_smtpd },
        { "user_queue", a->user_queue, b->user_queue },
        { "user_resolver", a->user_resolver, b->user_resolver },
        { "user_deliver", a->user_deliver, b->user_deliver },
        { "user_auth", a->user_auth, b->user_auth },
        { "user_local", a->user_local, b->user_local },
    };
    for (size_t i = 0; i < ARRAY_LEN(k); i++) {
        if (strcmp(k[i].old, k[i].new) != 0) {
            snprintf(why, len, "%s: %s changed from %s to %s, which takes a restart "
                     "(postern stop; postern start)", b->path, k[i].key, k[i].old, k[i].new);
            return 1;
        }
    }
    return 0;
}

/* Tells `postern reload` (through RUN/postern.reload) and systemd. */
static void reload_done(int ok, const char *text)
{
    char line[STATUS_MAX];

    if (reload_note(m.cfg->run_dir, m.reloads, ok, text) < 0)
        log_warning("cannot write %s/%s: %s", m.cfg->run_dir, RELOAD_FILE, strerror(errno));
    sup_describe(m.sup, line, sizeof(line));
    notify_send("READY=1", line);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    struct listeners *next = &m.lis[1 - m.cur];
    struct maps_stats st;
    struct config *c;
    char err[2048];

    (void)ev;
    (void)signo;
    (void)arg;
    if (sup_stopping(m.sup))
        return;
    m.reloads++;
    notify_send("RELOADING=1", "reloading");
    c = load(m.conf, 1, err, sizeof(err));
    if (!c) {
        log_error("reload failed: %s; keeping the running configuration", err);
        reload_done(0, err);
        return;
    }
    /* Everything that can fail is tried before any process is touched. */
    if (restart_needed(m.cfg, c, err, sizeof(err)) ||
        sup_check_binaries(m.bindir, err, sizeof(err)) < 0 ||
        dirs_prepare(c, &m.owners, 1, err, sizeof(err)) < 0 ||
        compile_maps(c, 1, &st, err, sizeof(err)) < 0 ||
        listeners_open(next, &m.lis[m.cur], c, err, sizeof(err)) < 0) {
        log_error("reload failed: %s; keeping the running configuration and maps", err);
        reload_done(0, err);
        unload(c);
        return;
    }
    listeners_retire(&m.lis[m.cur], next);
    m.cur = 1 - m.cur;
    log_set_debug(c->debug);
    sup_reload(m.sup, c, next);
    unload(m.cfg);
    m.cfg = c;
    snprintf(err, sizeof(err), "configuration %.1900s re-read; maps: %u mailbox(es), %u alias(es)", m.conf,
             st.mailboxes, st.aliases);
    log_info("reload: %s", err);
    reload_done(1, err);
}

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)ev;
    (void)arg;
    if (sup_stopping(m.sup))
        return;
    log_info("stopping on signal %d", signo);
    notify_send("STOPPING=1", "stopping");
    sup_stop(m.sup);
    /* Children keep their own copies; ours only keep the ports open longer. */
    listeners_close(&m.lis[m.cur]);
}

static int cmd_run(const char *path, int foreground)
{
    char err[2048], pidpath[PATH_MAX];
    struct evloop *ev;
    pid_t other;
    int pidfd;

    /* start logs to syslog from the first line; fail() also tells the
     * terminal. run: every line of every process carries its time. */
    if (foreground)
        setenv("POSTERN_FOREGROUND", "1", 1);
    log_init("master", foreground);
    notify_init();
    m.tell_terminal = !foreground;
    umask(022);
    m.cfg = load(path, 0, err, sizeof(err));
    if (!m.cfg)
        fail("%s", err);
    log_set_debug(m.cfg->debug);
    if (!realpath(path, m.conf))
        fail("%s: %s", path, strerror(errno));
    find_bindir(m.bindir, sizeof(m.bindir));
    if (sup_check_binaries(m.bindir, err, sizeof(err)) < 0)
        fail("%s", err);
    if (resolve_owners(m.cfg, &m.owners, err, sizeof(err)) < 0)
        fail("%s", err);
    if (dirs_prepare(m.cfg, &m.owners, 1, err, sizeof(err)) < 0)
        fail("%s", err);
    if (pid_path(m.cfg, pidpath, sizeof(pidpath)) < 0)
        fail("%s: run_dir too long", path);
    pidfd = pidfile_acquire(pidpath, &other, err, sizeof(err));
    if (pidfd == -2) {
        fprintf(stderr, "postern: already running (pid %ld)\n", (long)other);
        return 1;
    }
    if (pidfd < 0)
        fail("%s", err);
    /* only now, so that a second master never replaces the first one's maps */
    struct maps_stats st;
    if (compile_maps(m.cfg, 1, &st, err, sizeof(err)) < 0) {
        pidfile_remove(pidpath, pidfd);
        fail("%s", err);
    }
    if (listeners_open(&m.lis[0], NULL, m.cfg, err, sizeof(err)) < 0) {
        pidfile_remove(pidpath, pidfd);
        fail("%s", err);
    }
    m.cur = 0;

    if (!foreground) {
        daemonize();
        if (pidfile_write(pidfd, getpid()) < 0)
            fail("cannot write pid file %s: %s", pidpath, strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    ev = ev_new();
    if (!ev)
        fail("event loop: %s", strerror(errno));
    if (ev_signal(ev, SIGHUP, on_hup, NULL) < 0 || ev_signal(ev, SIGTERM, on_term, NULL) < 0 ||
        ev_signal(ev, SIGINT, on_term, NULL) < 0)
        fail("signals: %s", strerror(errno));
    m.sup = sup_new(ev, m.bindir, m.conf, foreground, on_sup_event, NULL);
    if (!m.sup)
        fail("supervisor: %s", strerror(errno));
    if (!foreground)
        daemon_detach();

    if (!priv_is_root())
        log_warning("running as uid %lu, not root: all processes run as this user, without chroot",
                    (unsigned long)getuid());
    log_info("starting, configuration %s; maps: %u mailbox(es), %u alias(es)", m.conf, st.mailboxes, st.aliases);
    status_remove(m.cfg->run_dir);          /* a dead master's, if any */
    sup_start(m.sup, m.cfg, &m.lis[m.cur]);
    if (ev_run(ev) < 0)
        log_error("event loop: %s", strerror(errno));

    /* A `start` still waiting (we stopped before every process was up)
     * hears it by end of file when we exit. */
    listeners_close(&m.lis[m.cur]);
    sup_free(m.sup);
    ev_free(ev);
    status_remove(m.cfg->run_dir);
    pidfile_remove(pidpath, pidfd);
    unload(m.cfg);
    log_info("stopped");
    return 0;
}

/* ------------------------------------------------- stop, reload, status */


/*
 * A broken file must not keep an operator from stopping the master, so when
 * it does not load we still look for its run_dir line (or use the default)
 * to find the pid file.
 */
static void fallback_run_dir(const char *path, char *out, size_t outlen)
{
    char line[4096];
    struct config *d = calloc(1, sizeof(*d));
    FILE *f;

    if (d) {
        config_defaults(d);
        str_copy(out, d->run_dir, outlen);
        config_free(d);
        free(d);
    } else {
        str_copy(out, "/run/postern", outlen);
    }
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        const char *p = line;
        size_t n;
        if (strncmp(p, "run_dir", 7) != 0)
            continue;
        p += 7;
        p += strspn(p, " \t");
        if (*p++ != '=')
            continue;
        p += strspn(p, " \t");
        n = strcspn(p, " \t\r\n#");
        if (n > 0 && n < outlen) {
            memcpy(out, p, n);
            out[n] = 0;
        }
        break;
    }
    fclose(f);
}

/* Waits until pid is gone; -1 at the deadline. */
static int wait_gone(pid_t pid, int ms)
{
    int fd = pidfd_open(pid, 0);

    if (fd < 0) {
        if (errno == ESRCH)
            return 0;
        /* no pidfd: look every 100 ms */
        for (int waited = 0; waited < ms; waited += 100) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            if (kill(pid, 0) < 0 && errno == ESRCH)
                return 0;
            nanosleep(&ts, NULL);
        }
        return -1;
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t deadline = now_ms() + (uint64_t)ms;
    for (;;) {
        uint64_t now = now_ms();
        int r;
        if (now >= deadline) {
            close(fd);
            return -1;
        }
        r = poll(&pfd, 1, (int)(deadline - now));
        if (r > 0) {
            close(fd);
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            close(fd);
            return -1;
        }
    }
}

/*
 * reload: the running master checks the file itself (the same checks as
 * at start, plus what cannot change without a restart) and keeps its
 * configuration if anything fails; we wait for its verdict and print it.
 * The run_dir comes from the file, or from its run_dir line if it does
 * not load: the broken file is then the master's to refuse, and say why.
 */
static int cmd_reload(const char *run_dir)
{
    char text[STATUS_MAX];
    enum reload_verdict v;

    v = reload_request(run_dir, RELOAD_WAIT_MS, text, sizeof(text));
    switch (v) {
    case RELOAD_DONE:
        printf("postern: reloaded: %s\n", text);
        return 0;
    case RELOAD_REFUSED:
        fprintf(stderr, "postern: reload refused: %s; the running configuration stays\n", text);
        return 1;
    case RELOAD_NOT_RUNNING:
        fprintf(stderr, "postern: %s\n", text);
        return 1;
    default:
        fprintf(stderr, "postern: reload: %s\n", text);
        return 1;
    }
}

static int cmd_control(const char *path, const char *cmd)
{
    char err[2048], run_dir[CONF_MAX_STR], pidpath[PATH_MAX + 32];
    struct config *c = load(path, 0, err, sizeof(err));
    unsigned stop_ms = 20000 + STOP_WAIT_SLACK_MS;
    pid_t pid;

    if (c) {
        str_copy(run_dir, c->run_dir, sizeof(run_dir));
        stop_ms = c->stop_timeout * 1000 + STOP_WAIT_SLACK_MS;
        unload(c);
    } else {
        fallback_run_dir(path, run_dir, sizeof(run_dir));
        if (strcmp(cmd, "reload") != 0)
            fprintf(stderr, "postern: warning: %s\n", err);
    }
    if (strcmp(cmd, "reload") == 0)
        return cmd_reload(run_dir);
    snprintf(pidpath, sizeof(pidpath), "%s/%s", run_dir, PID_FILE);
    pid = pidfile_running(pidpath, err, sizeof(err));
    if (pid < 0) {
        fprintf(stderr, "postern: %s\n", err);
        return strcmp(cmd, "status") == 0 ? 4 : 1;
    }
    if (pid == 0) {
        printf("postern: not running\n");
        return strcmp(cmd, "status") == 0 ? 3 : 1;
    }
    if (strcmp(cmd, "status") == 0) {
        char line[STATUS_MAX];
        if (status_read(run_dir, line, sizeof(line)) == 0)
            printf("postern: running (pid %ld), %s\n", (long)pid, line);
        else
            printf("postern: running (pid %ld)\n", (long)pid);
        return 0;
    }
    if (kill(pid, SIGTERM) < 0) {
        fprintf(stderr, "postern: cannot signal pid %ld: %s\n", (long)pid, strerror(errno));
        return 1;
    }
    if (wait_gone(pid, (int)stop_ms) < 0) {
        fprintf(stderr, "postern: pid %ld still running after %u s\n", (long)pid, stop_ms / 1000);
        return 1;
    }
    printf("postern: stopped\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *opt_conf = NULL, *path, *cmd;
    int opt;

    while ((opt = getopt(argc, argv, "+c:")) != -1) {
        if (opt == 'c')
            opt_conf = optarg;
        else
            usage();
    }
    if (optind != argc - 1)
        usage();
    cmd = argv[optind];
    open_std_fds();
    /* A daemon keeps none of its caller's descriptors (a caller waiting for
     * EOF on a pipe would wait for ever). */
    if (strcmp(cmd, "start") == 0)
        closefrom(3);
    path = config_path(opt_conf);

    if (strcmp(cmd, "check") == 0)
        return cmd_check(path);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(path, 1);
    if (strcmp(cmd, "start") == 0)
        return cmd_run(path, 0);
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "reload") == 0 || strcmp(cmd, "status") == 0)
        return cmd_control(path, cmd);
    usage();
}
