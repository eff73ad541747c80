/*
 * supervise.c - runs the roles of the table below and keeps them running
 * (supervise.h).
 *
 * This is the code that runs as root and forks. It must never exec anything
 * but a role binary from bindir with a fixed argv (no shell, no string built
 * from anything a peer sent), and never pass a child anything but the
 * listening sockets, its readiness pipe, its config path and three
 * environment variables. The only thing it ever reads from a child is that
 * pipe: at most READY_LEN + 1 bytes, compared whole with READY_MESSAGE
 * (common/ready.h), nothing parsed. Children start with the master's
 * privileges and drop them themselves, after their own privileged set-up.
 *
 * Readiness: a process counts as up only once it said so on its pipe. A
 * role starts only when every role it needs is up (each of its processes);
 * one that does not say ready within its bound is killed and restarted with
 * the backoff, and gets twice the time on its next try. A role that is
 * already running is never stopped because one it needs went down: it
 * reconnects on its own.
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "ready.h"
#include "status.h"
#include "util.h"

#define BACKOFF_FIRST_MS   100u
#define BACKOFF_MAX_MS     30000u
#define BACKOFF_RESET_MS   30000u   /* a run this long forgives earlier failures */
/* stop: smtpd gives its sessions stop_timeout, then each phase gets this
 * much more before SIGKILL, and the whole stop twice as much */
#define STOP_PHASE_SLACK_MS 5000u
#define STOP_TOTAL_SLACK_MS 15000u
#define STOP_GRACE_MS      5000u    /* after the last SIGKILL, give up waiting */
#define READY_DOUBLINGS    3u       /* a slow starter gets at most 8 times its bound */
#define ROLE_MAX_NEEDS     4

enum reload_how {
    RELOAD_IN_PLACE,        /* SIGHUP: the process re-reads its configuration */
    RELOAD_GENERATION,      /* new processes; SIGHUP tells the old ones to drain */
};

struct role {
    const char *name;       /* in logs */
    const char *binary;     /* file name in bindir */
    unsigned (*instances)(const struct config *c);
    unsigned listen;        /* LK_* kinds it serves; 0 for none */
    enum reload_how reload;
    unsigned stop_phase;    /* lower phases stop first, and are gone before the next */
    unsigned ready_s;       /* seconds a new process may take to say ready */
    const char *needs[ROLE_MAX_NEEDS];  /* roles that must be up before it starts */
};

static unsigned one(const struct config *c)
{
    (void)c;
    return 1;
}

static unsigned smtpd_instances(const struct config *c)
{
    return c->smtpd_processes ? c->smtpd_processes : 1;
}

/* The password checker runs when AUTH can be offered: a certificate and a
 * submission or smtps listener. */
static unsigned auth_instances(const struct config *c)
{
    return c->tls_cert_file[0] && (c->listen_submission.n || c->listen_smtps.n) ? 1 : 0;
}

/*
 * Started in this order; a role may only need rows above it (checked by
 * sup_check_binaries), so the needs can never go round in a circle. smtpd
 * stops first so that its last commits reach a queue-mgr that is still
 * there. queue-mgr reconciles the whole queue before it is ready, hence its
 * long bound. A new role is a new row, for example
 *     { "resolver", "resolver", one, 0, RELOAD_IN_PLACE, 2, 30, { NULL } },
 *     { "deliver",  "deliver",  one, 0, RELOAD_IN_PLACE, 0, 30, { "queue-mgr", "resolver" } },
 */
static const struct role roles[] = {
    /* name        binary       instances        listen  reload             stop ready needs */
    { "queue-mgr", "queue-mgr", one,             0,      RELOAD_IN_PLACE,   1,   120,  { NULL } },
    /* SIGHUP makes the resolver drain and exit: a new generation takes over */
    { "resolver",  "resolver",  one,             0,      RELOAD_GENERATION, 2,   30,   { NULL } },
    { "smtpd",     "smtpd",     smtpd_instances, LK_ALL, RELOAD_GENERATION, 0,   10,   { "queue-mgr" } },
    /* SIGHUP makes deliver stop taking jobs, finish the deliveries in
     * flight and exit (a new generation takes the new configuration):
     * a reload never cuts a delivery between its final dot and the reply */
    { "deliver",   "deliver",   one,             0,      RELOAD_GENERATION, 0,   30,   { "queue-mgr", "resolver" } },
    /* SIGHUP re-reads the password map in place: the AUTH failure counts
     * survive a reload (and posternctl passwd) */
    { "auth",      "auth",      auth_instances,  0,      RELOAD_IN_PLACE,   2,   10,   { NULL } },
    /* local delivery into mailbox_dir; drains on SIGHUP like deliver */
    { "local",     "local",     one,             0,      RELOAD_GENERATION, 0,   30,   { "queue-mgr" } },
};

struct child {
    struct child *next;
    struct sup *sup;
    const struct role *role;
    pid_t pid;              /* 0 while waiting for a restart */
    unsigned gen;           /* configuration generation it was started for */
    uint64_t started_ms;
    unsigned failures;      /* consecutive short runs, for the backoff */
    uint64_t restart_timer;
    int retiring;           /* its exit is expected: never restarted */
    int signalled;          /* SIGTERM or SIGHUP we sent to make it exit */
    int waiting;            /* due to start, held back until what it needs is up */
    int ready;              /* this process said ready */
    int ready_fd;           /* read end of its readiness pipe, -1 once done */
    int pipe_closed;        /* it closed the pipe without saying ready */
    char ready_buf[READY_LEN + 1];
    size_t ready_got;
    uint64_t ready_timer;
    unsigned ready_timeouts; /* in a row: each doubles the next bound */
    struct stat exe;        /* the binary it was started from */
    int upgrading;          /* SIGTERM sent to restart it from a new binary */
};

struct sup {
    struct evloop *ev;
    char bindir[PATH_MAX];
    char conf[PATH_MAX];
    int foreground;
    const struct config *cfg;
    const struct listeners *lis;
    struct child *children;
    unsigned gen;
    int stopping;
    unsigned stop_phase;    /* UINT_MAX: no phase signalled yet */
    uint64_t phase_timer, total_timer, grace_timer;
    sup_event_cb cb;
    void *cb_arg;
    uint64_t start_ms;
    int all_up;             /* every process is up right now */
    int announced;          /* SUP_READY was sent */
    int start_failed;       /* SUP_FAILED was sent */
    unsigned long long restarts[ARRAY_LEN(roles)]; /* per role, since the master started */
};

static void spawn(struct child *ch);
static void try_start(struct child *ch);
static void on_sigchld(struct evloop *ev, int signo, void *arg);

static void role_path(const char *bindir, const struct role *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", bindir, r->binary);
}

static const struct role *role_named(const char *name, size_t before)
{
    for (size_t i = 0; i < before && i < ARRAY_LEN(roles); i++)
        if (strcmp(roles[i].name, name) == 0)
            return &roles[i];
    return NULL;
}

/* Every need names a row above; every role has a readiness bound. */
static int table_check(char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        if (roles[i].ready_s == 0) {
            snprintf(err, errlen, "role table: %s has no readiness bound", roles[i].name);
            return -1;
        }
        for (size_t k = 0; k < ROLE_MAX_NEEDS && roles[i].needs[k]; k++) {
            if (!role_named(roles[i].needs[k], i)) {
                snprintf(err, errlen, "role table: %s needs %s, which is not a row above it",
                         roles[i].name, roles[i].needs[k]);
                return -1;
            }
        }
    }
    return 0;
}

int sup_check_binaries(const char *bindir, char *err, size_t errlen)
{
    char path[PATH_MAX + 64];

    if (table_check(err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        role_path(bindir, &roles[i], path, sizeof(path));
        if (access(path, X_OK) < 0) {
            snprintf(err, errlen, "cannot run %s (%s): %s", path, roles[i].name, strerror(errno));
            return -1;
        }
    }
    return 0;
}

struct sup *sup_new(struct evloop *ev, const char *bindir, const char *conf, int foreground,
                    sup_event_cb cb, void *arg)
{
    struct sup *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->ev = ev;
    s->cb = cb;
    s->cb_arg = arg;
    str_copy(s->bindir, bindir, sizeof(s->bindir));
    str_copy(s->conf, conf, sizeof(s->conf));
    s->foreground = foreground;
    s->stop_phase = UINT_MAX;
    if (ev_signal(ev, SIGCHLD, on_sigchld, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Stops listening to the readiness pipe and forgets its timer. */
static void ready_close(struct child *ch)
{
    if (ch->ready_fd >= 0) {
        ev_del(ch->sup->ev, ch->ready_fd);
        close(ch->ready_fd);
        ch->ready_fd = -1;
    }
    if (ch->ready_timer) {
        ev_timer_cancel(ch->sup->ev, ch->ready_timer);
        ch->ready_timer = 0;
    }
}

static void child_remove(struct child *ch)
{
    struct sup *s = ch->sup;

    ready_close(ch);

    for (struct child **pp = &s->children; *pp; pp = &(*pp)->next) {
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    }
    if (ch->restart_timer)
        ev_timer_cancel(s->ev, ch->restart_timer);
    free(ch);
}

void sup_free(struct sup *s)
{
    if (!s)
        return;
    while (s->children)
        child_remove(s->children);
    free(s);
}

int sup_stopping(const struct sup *s)
{
    return s->stopping;
}

/* How many processes a role should have now; 0 for a server without listeners. */
/* master_service_disable: the role, or one it needs, is switched off. */
static int role_disabled(const struct config *c, const struct role *r)
{
    static const struct { const char *name; unsigned bit; } sw[] = {
        { "smtpd", CONF_SERVICE_SMTPD },
        { "resolver", CONF_SERVICE_RESOLVER },
        { "deliver", CONF_SERVICE_DELIVER },
        { "auth", CONF_SERVICE_AUTH },
        { "local", CONF_SERVICE_LOCAL },
    };

    for (size_t i = 0; i < ARRAY_LEN(sw); i++)
        if ((c->master_service_disable & sw[i].bit) && !strcmp(r->name, sw[i].name))
            return 1;
    for (size_t i = 0; i < ARRAY_LEN(r->needs) && r->needs[i]; i++)
        for (size_t j = 0; j < ARRAY_LEN(roles); j++)
            if (!strcmp(roles[j].name, r->needs[i]) && role_disabled(c, &roles[j]))
                return 1;
    return 0;
}

static unsigned wanted(const struct sup *s, const struct role *r)
{
    if (role_disabled(s->cfg, r))
        return 0;
    if (r->listen) {
        size_t n = 0;
        for (size_t i = 0; i < s->lis->n; i++)
            if (s->lis->v[i].kind & r->listen)
                n++;
        if (n == 0)
            return 0;
    }
    return r->instances(s->cfg);
}

static struct child *child_new(struct sup *s, const struct role *r)
{
    struct child *ch = calloc(1, sizeof(*ch)), **pp;

    if (!ch) {
        log_error("%s: cannot start another process: out of memory", r->name);
        return NULL;
    }
    ch->sup = s;
    ch->role = r;
    ch->gen = s->gen;
    ch->ready_fd = -1;
    for (pp = &s->children; *pp; pp = &(*pp)->next)
        ;
    *pp = ch;
    return ch;
}

static void send_signal(struct child *ch, int sig)
{
    if (ch->pid > 0 && kill(ch->pid, sig) < 0 && errno != ESRCH)
        log_warning("%s: cannot signal pid %ld: %s", ch->role->name, (long)ch->pid,
                    strerror(errno));
}

/* ------------------------------------------------------------ readiness */

static void emit(struct sup *s, enum sup_event e, const char *text)
{
    if (s->cb)
        s->cb(e, text, s->cb_arg);
}

/* An old generation's process, serving until the new one is up. */
static int superseded(const struct sup *s, const struct child *ch)
{
    return ch->role->reload == RELOAD_GENERATION && ch->gen != s->gen;
}

/* Does ch count when we ask whether its role is up? */
static int counts(const struct sup *s, const struct child *ch)
{
    return !ch->retiring && !superseded(s, ch);
}

/* Is every process of r that should be running up? (None wanted: yes.) */
static int role_up(const struct sup *s, const struct role *r)
{
    for (const struct child *ch = s->children; ch; ch = ch->next)
        if (ch->role == r && counts(s, ch) && !(ch->pid > 0 && ch->ready))
            return 0;
    return 1;
}

/* The first role r needs that is not up, or NULL. */
static const char *need_missing(const struct sup *s, const struct role *r)
{
    for (size_t k = 0; k < ROLE_MAX_NEEDS && r->needs[k]; k++) {
        const struct role *d = role_named(r->needs[k], ARRAY_LEN(roles));
        if (d && !role_up(s, d))
            return d->name;
    }
    return NULL;
}

int sup_describe(const struct sup *s, char *out, size_t outlen)
{
    size_t off = 0;
    int all = 1;

    if (outlen == 0)
        return 0;
    out[0] = 0;
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        const struct role *r = &roles[i];
        unsigned total = 0, up = 0, waiting = 0, starting = 0;
        const char *state, *missing;
        int n;

        for (const struct child *ch = s->children; ch; ch = ch->next) {
            if (ch->role != r || !counts(s, ch))
                continue;
            total++;
            if (ch->pid > 0 && ch->ready)
                up++;
            else if (ch->waiting)
                waiting++;
            else if (ch->pid > 0)
                starting++;
        }
        if (total == 0)
            continue;
        if (up < total)
            all = 0;
        missing = waiting && up < total ? need_missing(s, r) : NULL;
        state = up == total ? "up" : missing ? "waiting for " : starting ? "starting" : "restarting";
        n = snprintf(out + off, outlen - off, "%s%s %u/%u %s%s", off ? ", " : "", r->name, up,
                     total, state, missing ? missing : "");
        if (n < 0 || (size_t)n >= outlen - off)
            break;
        off += (size_t)n;
    }
    return all;
}

/* Something about readiness changed: tell the caller, and say once (and
 * again after a fall) when every process is up. */
static void ready_changed(struct sup *s)
{
    char what[512];
    int all;

    if (s->stopping)
        return;
    all = sup_describe(s, what, sizeof(what));
    if (all && !s->all_up) {
        if (!s->announced) {
            log_info("ready: every process is up after %llu ms (%s)",
                     (unsigned long long)(now_ms() - s->start_ms), what);
            s->announced = 1;
            emit(s, SUP_READY, what);
        } else {
            log_info("ready again: every process is up (%s)", what);
        }
    }
    s->all_up = all;
    emit(s, SUP_CHANGED, what);
}

/* Before the first SUP_READY, the first process that fails fails the start. */
static void start_failure(struct sup *s, const char *text)
{
    if (s->announced || s->start_failed || s->stopping)
        return;
    s->start_failed = 1;
    emit(s, SUP_FAILED, text);
}

/* Kills a process that did not become ready properly; its exit restarts it. */
static void kill_unready(struct child *ch, const char *why)
{
    char text[256];

    snprintf(text, sizeof(text), "%s pid %ld %s", ch->role->name, (long)ch->pid, why);
    log_error("%s: killing it; it will be restarted", text);
    start_failure(ch->sup, text);
    ready_close(ch);
    ch->signalled = SIGKILL;
    send_signal(ch, SIGKILL);
}

static void retire(struct child *ch, int sig);

/* Once a new generation of r is up, the old one drains (SIGHUP) and goes. */
static void retire_superseded(struct sup *s, const struct role *r)
{
    struct child *ch, *next;
    unsigned old = 0;

    if (r->reload != RELOAD_GENERATION || !role_up(s, r))
        return;
    for (ch = s->children; ch; ch = next) {
        next = ch->next;
        if (ch->role == r && !ch->retiring && superseded(s, ch)) {
            old++;
            retire(ch, SIGHUP);
        }
    }
    if (old)
        log_info("%s: %u old process(es) finish their sessions and exit", r->name, old);
}

static void release_waiting(struct sup *s)
{
    struct child *ch, *next;

    for (ch = s->children; ch; ch = next) {
        next = ch->next;
        if (ch->waiting && !need_missing(s, ch->role))
            try_start(ch);
    }
}

static void child_ready(struct child *ch)
{
    struct sup *s = ch->sup;

    ready_close(ch);
    ch->ready = 1;
    ch->ready_timeouts = 0;
    log_info("%s: pid %ld ready after %llu ms", ch->role->name, (long)ch->pid,
             (unsigned long long)(now_ms() - ch->started_ms));
    if (s->stopping || ch->retiring)
        return;
    retire_superseded(s, ch->role);
    release_waiting(s);
    ready_changed(s);
}

static void on_ready_fd(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct child *ch = arg;
    ssize_t n;
    int verdict;

    (void)ev;
    (void)events;
    n = read(fd, ch->ready_buf + ch->ready_got, sizeof(ch->ready_buf) - ch->ready_got);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* Closed without a word: its exit, or its readiness timer, decides. */
        if (n < 0)
            log_warning("%s: pid %ld: readiness pipe: %s", ch->role->name, (long)ch->pid,
                        strerror(errno));
        ch->pipe_closed = 1;
        ev_del(ch->sup->ev, ch->ready_fd);
        close(ch->ready_fd);
        ch->ready_fd = -1;
        return;
    }
    ch->ready_got += (size_t)n;
    verdict = ready_check(ch->ready_buf, ch->ready_got);
    if (verdict > 0)
        child_ready(ch);
    else if (verdict < 0)
        kill_unready(ch, "sent something other than its readiness message");
}

static unsigned ready_bound_s(const struct child *ch)
{
    return ch->role->ready_s << (ch->ready_timeouts < READY_DOUBLINGS ? ch->ready_timeouts
                                                                      : READY_DOUBLINGS);
}

static void on_ready_timer(struct evloop *ev, void *arg)
{
    struct child *ch = arg;
    unsigned was;
    char why[160];

    (void)ev;
    ch->ready_timer = 0;
    if (ch->pid <= 0 || ch->ready || ch->retiring || ch->sup->stopping)
        return;
    was = ready_bound_s(ch);
    if (ch->ready_timeouts < 64)
        ch->ready_timeouts++;
    snprintf(why, sizeof(why), "was not ready after %u s%s (the next try gets %u s)", was,
             ch->pipe_closed ? " and closed its readiness pipe" : "", ready_bound_s(ch));
    kill_unready(ch, why);
}

/* ------------------------------------------------------------ the child */

/* Everything the exec needs, prepared before fork so the child only moves
 * descriptors and calls execve. */
struct exec_plan {
    char path[PATH_MAX + 64];
    char *argv[4];
    char **envp;
    int fds[3 * CONF_MAX_LIST + 1];     /* the listeners, then the readiness pipe */
    size_t nfds;
    char fdvar[64 + 3 * CONF_MAX_LIST * 16];
    char readyvar[64];
};

static int exec_plan_build(struct exec_plan *p, const struct sup *s, const struct role *r,
                           int ready_w)
{
    extern char **environ;
    static char foreground_var[] = "POSTERN_FOREGROUND=1";
    size_t n = 0, k = 0, off;

    role_path(s->bindir, r, p->path, sizeof(p->path));
    p->argv[0] = p->path;
    p->argv[1] = (char *)"-c";
    p->argv[2] = (char *)s->conf;
    p->argv[3] = NULL;

    p->nfds = 0;
    off = (size_t)snprintf(p->fdvar, sizeof(p->fdvar), "POSTERN_LISTEN_FDS=");
    for (size_t i = 0; r->listen && i < s->lis->n; i++) {
        const struct listener *li = &s->lis->v[i];
        if (!(li->kind & r->listen) || li->fd < 0)
            continue;
        if (off + 32 > sizeof(p->fdvar))
            break;          /* cannot happen: sized for every listener */
        off += (size_t)snprintf(p->fdvar + off, sizeof(p->fdvar) - off, "%s%zu:%s",
                                p->nfds ? "," : "", 3 + p->nfds, listener_kind_name(li->kind));
        p->fds[p->nfds++] = li->fd;
    }
    /* The readiness pipe goes right after the listeners. */
    snprintf(p->readyvar, sizeof(p->readyvar), "%s=%zu", READY_ENV, 3 + p->nfds);
    p->fds[p->nfds++] = ready_w;

    /* The master's environment, minus the variables that are ours to set. */
    for (char **e = environ; *e; e++)
        n++;
    p->envp = calloc(n + 4, sizeof(*p->envp));
    if (!p->envp)
        return -1;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "POSTERN_LISTEN_FDS=", 19) != 0 && strncmp(*e, "POSTERN_FOREGROUND=", 19) != 0 &&
            strncmp(*e, READY_ENV "=", sizeof(READY_ENV)) != 0)
            p->envp[k++] = *e;
    p->envp[k++] = p->readyvar;
    if (r->listen)
        p->envp[k++] = p->fdvar;
    if (s->foreground)
        p->envp[k++] = foreground_var;
    p->envp[k] = NULL;
    return 0;
}

/* In the new child: never returns. */
__attribute__((noreturn)) static void child_exec(const struct exec_plan *p)
{
    struct sigaction sa;
    sigset_t none;
    int lifted[3 * CONF_MAX_LIST + 1], nul;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL);          /* fails harmlessly for KILL and STOP */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Nothing reads the terminal; the master made sure 0-2 are open. */
    nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, STDIN_FILENO);
        if (nul != STDIN_FILENO)
            close(nul);
    }
    /* Listeners and the readiness pipe to 3, 4, ...: first out of the way of
     * the targets, then into place; dup2 clears close-on-exec on the copy,
     * and only on it. */
    for (size_t i = 0; i < p->nfds; i++) {
        lifted[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, (int)(3 + p->nfds));
        if (lifted[i] < 0) {
            log_error("%s: cannot pass descriptor: %s", p->path, strerror(errno));
            _exit(127);
        }
    }
    for (size_t i = 0; i < p->nfds; i++) {
        if (dup2(lifted[i], (int)(3 + i)) < 0) {
            log_error("%s: cannot pass descriptor: %s", p->path, strerror(errno));
            _exit(127);
        }
    }
    closefrom((int)(3 + p->nfds));
    execve(p->path, p->argv, p->envp);
    log_error("cannot execute %s: %s", p->path, strerror(errno));
    _exit(127);
}

/* ------------------------------------------------------ restart, backoff */

static void on_restart_timer(struct evloop *ev, void *arg)
{
    struct child *ch = arg;
    struct sup *s = ch->sup;

    (void)ev;
    ch->restart_timer = 0;
    try_start(ch);          /* may free ch */
    ready_changed(s);
}

/* RUN/restarts, "role count" a line, for queue-mgr's metrics and
 * posternctl stats (the master serves nothing itself). */
static void write_restarts(struct sup *s)
{
    char text[STATUS_MAX - 1];
    size_t len = 0;

    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        int n = snprintf(text + len, sizeof(text) - len, "%s%s %llu", len ? "\n" : "", roles[i].name,
                         s->restarts[i]);
        if (n < 0 || (size_t)n >= sizeof(text) - len)
            break;
        len += (size_t)n;
    }
    if (status_file_write(s->cfg->run_dir, "restarts", text) < 0)
        log_warning("cannot write %s/restarts: %s", s->cfg->run_dir, strerror(errno));
}

static void schedule_restart(struct child *ch)
{
    struct sup *s = ch->sup;
    uint64_t now = now_ms(), delay = BACKOFF_FIRST_MS;

    if (ch->started_ms && now - ch->started_ms >= BACKOFF_RESET_MS)
        ch->failures = 0;
    for (unsigned i = 0; i < ch->failures && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    if (ch->failures < 64)
        ch->failures++;
    ch->pid = 0;
    ch->ready = 0;
    ch->restart_timer = ev_timer(s->ev, delay, on_restart_timer, ch);
    if (!ch->restart_timer) {
        log_error("%s: cannot schedule a restart: out of memory", ch->role->name);
        return;
    }
    log_info("%s: restarting in %llu ms", ch->role->name, (unsigned long long)delay);
    s->restarts[ch->role - roles]++;
    write_restarts(s);
}

static void spawn(struct child *ch)
{
    static struct exec_plan plan;
    struct sup *s = ch->sup;
    int pfd[2];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        log_error("%s: cannot start: pipe: %s", ch->role->name, strerror(errno));
        schedule_restart(ch);
        return;
    }
    if (exec_plan_build(&plan, s, ch->role, pfd[1]) < 0) {
        log_error("%s: cannot start: out of memory", ch->role->name);
        close(pfd[0]);
        close(pfd[1]);
        schedule_restart(ch);
        return;
    }
    pid = fork();
    if (pid == 0)
        child_exec(&plan);
    free(plan.envp);
    close(pfd[1]);
    if (pid < 0) {
        log_error("%s: fork: %s", ch->role->name, strerror(errno));
        close(pfd[0]);
        ch->started_ms = 0;
        schedule_restart(ch);
        return;
    }
    ch->pid = pid;
    ch->started_ms = now_ms();
    if (stat(plan.path, &ch->exe) < 0)
        memset(&ch->exe, 0, sizeof(ch->exe));
    ch->signalled = 0;
    ch->ready = 0;
    ch->pipe_closed = 0;
    ch->ready_got = 0;
    ch->ready_fd = pfd[0];
    if (set_nonblock(pfd[0], 1) < 0 || ev_add(s->ev, pfd[0], EPOLLIN, on_ready_fd, ch) < 0) {
        log_error("%s: cannot watch the readiness pipe: %s", ch->role->name, strerror(errno));
        close(pfd[0]);
        ch->ready_fd = -1;
    }
    ch->ready_timer = ev_timer(s->ev, (uint64_t)ready_bound_s(ch) * 1000, on_ready_timer, ch);
    if (!ch->ready_timer)
        log_error("%s: cannot time its start: out of memory", ch->role->name);
    log_info("%s: started, pid %ld", ch->role->name, (long)pid);
}

/* Is a process of r already held back? (Said once a role, not once a process.) */
static int role_waits(const struct sup *s, const struct role *r)
{
    for (const struct child *ch = s->children; ch; ch = ch->next)
        if (ch->role == r && ch->waiting)
            return 1;
    return 0;
}

/* Starts ch now, or holds it back until every role it needs is up. */
static void try_start(struct child *ch)
{
    struct sup *s = ch->sup;
    const char *missing;

    if (s->stopping || ch->retiring || ch->pid > 0 || ch->restart_timer)
        return;
    if (superseded(s, ch)) {
        child_remove(ch);   /* an old generation is not brought back */
        return;
    }
    missing = need_missing(s, ch->role);
    if (missing) {
        if (!ch->waiting && !role_waits(s, ch->role))
            log_info("%s: waiting for %s to be ready", ch->role->name, missing);
        ch->waiting = 1;
        return;
    }
    ch->waiting = 0;
    spawn(ch);
}

/* ------------------------------------------------------------- reaping */

static void stop_advance(struct sup *s);

static void child_exited(struct child *ch, int status)
{
    struct sup *s = ch->sup;
    char path[PATH_MAX + 64];
    int expected = s->stopping || ch->retiring;
    /* Exit 0, or death by the very signal we sent to end it, is a clean end. */
    int clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                (WIFSIGNALED(status) && ch->signalled && WTERMSIG(status) == ch->signalled);
    char how[64], text[256];

    ready_close(ch);
    ch->ready = 0;
    role_path(s->bindir, ch->role, path, sizeof(path));
    if (ch->upgrading && !expected) {
        /* reloaded onto a new binary: back at once, no backoff */
        log_info("%s: pid %ld exited for the upgrade; starting %s", ch->role->name, (long)ch->pid, path);
        ch->upgrading = 0;
        ch->failures = 0;
        ch->pid = 0;
        try_start(ch);
        ready_changed(s);
        return;
    }
    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
    if (!expected || !clean)
        log_warning("process %s pid %ld %s", path, (long)ch->pid, how);
    else
        log_info("%s: pid %ld exited%s", ch->role->name, (long)ch->pid,
                 s->stopping ? "" : " after draining");
    if (expected || superseded(s, ch)) {
        /* A crashed old generation is not brought back: the new one serves. */
        child_remove(ch);
        ready_changed(s);
        return;
    }
    snprintf(text, sizeof(text), "%s pid %ld %s before every process was ready", ch->role->name,
             (long)ch->pid, how);
    start_failure(s, text);
    schedule_restart(ch);
    ready_changed(s);
}

static void on_sigchld(struct evloop *ev, int signo, void *arg)
{
    struct sup *s = arg;
    int status;
    pid_t pid;

    (void)ev;
    (void)signo;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct child *ch;
        for (ch = s->children; ch && ch->pid != pid; ch = ch->next)
            ;
        if (ch)
            child_exited(ch, status);
    }
    if (s->stopping)
        stop_advance(s);
}

/* ----------------------------------------------------- start and reload */

/* Has the role's binary been replaced since ch started? (An in-place
 * reload would keep running the old code.) */
static int binary_changed(const struct sup *s, const struct child *ch)
{
    char path[PATH_MAX + 64];
    struct stat st;

    if (ch->pid <= 0 || ch->exe.st_ino == 0)
        return 0;
    role_path(s->bindir, ch->role, path, sizeof(path));
    if (stat(path, &st) < 0)
        return 0;           /* sup_check_binaries refused the reload already */
    return st.st_dev != ch->exe.st_dev || st.st_ino != ch->exe.st_ino || st.st_size != ch->exe.st_size ||
           st.st_mtim.tv_sec != ch->exe.st_mtim.tv_sec || st.st_mtim.tv_nsec != ch->exe.st_mtim.tv_nsec;
}

void sup_start(struct sup *s, const struct config *c, const struct listeners *l)
{
    s->cfg = c;
    s->lis = l;
    s->start_ms = now_ms();
    /* Every process first, so a role that needs an earlier one sees it. */
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        unsigned want = wanted(s, &roles[i]);
        if (want == 0 && roles[i].listen)
            log_info("%s: no listeners configured, not started", roles[i].name);
        for (unsigned k = 0; k < want; k++)
            child_new(s, &roles[i]);
    }
    for (struct child *ch = s->children, *next; ch; ch = next) {
        next = ch->next;
        try_start(ch);
    }
    ready_changed(s);
}

/* Ends a child whose exit is expected; one waiting for a restart just goes. */
static void retire(struct child *ch, int sig)
{
    if (ch->pid <= 0) {
        child_remove(ch);
        return;
    }
    ch->retiring = 1;
    ch->signalled = sig;
    send_signal(ch, sig);
}

void sup_reload(struct sup *s, const struct config *c, const struct listeners *l)
{
    struct child *ch, *next;

    if (s->stopping)
        return;
    s->cfg = c;
    s->lis = l;
    s->gen++;
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        const struct role *r = &roles[i];
        unsigned want = wanted(s, r), have = 0;

        if (want == 0 && r->listen)
            log_info("%s: no listeners configured, not started", r->name);

        if (r->reload == RELOAD_GENERATION) {
            /* The new generation first; the old one serves until it is up. */
            for (unsigned k = 0; k < want; k++) {
                ch = child_new(s, r);
                if (ch)
                    try_start(ch);
            }
            retire_superseded(s, r);
            continue;
        }
        for (ch = s->children; ch; ch = next) {
            next = ch->next;
            if (ch->role != r || ch->retiring)
                continue;
            if (have < want) {
                have++;
                if (binary_changed(s, ch)) {
                    /* one process holds the queue: the old one ends (its
                     * commits in flight finish) before the new one starts */
                    log_info("%s: %s/%s is a new binary: restarting pid %ld with it", r->name, s->bindir,
                             r->binary, (long)ch->pid);
                    ch->upgrading = 1;
                    ch->signalled = SIGTERM;
                    send_signal(ch, SIGTERM);
                } else {
                    send_signal(ch, SIGHUP);
                }
            } else {
                retire(ch, SIGTERM);
            }
        }
        for (; have < want; have++) {
            ch = child_new(s, r);
            if (ch)
                try_start(ch);
        }
    }
    ready_changed(s);
}

/* --------------------------------------------------------------- stop */

static void stop_kill(struct sup *s, int all)
{
    char path[PATH_MAX + 64];

    for (struct child *ch = s->children; ch; ch = ch->next) {
        if (ch->pid <= 0 || (!all && ch->role->stop_phase != s->stop_phase))
            continue;
        role_path(s->bindir, ch->role, path, sizeof(path));
        log_warning("process %s pid %ld did not stop in time: killing it", path, (long)ch->pid);
        ch->signalled = SIGKILL;
        send_signal(ch, SIGKILL);
    }
}

static void on_phase_timer(struct evloop *ev, void *arg)
{
    struct sup *s = arg;

    (void)ev;
    s->phase_timer = 0;
    stop_kill(s, 0);
}

static void on_grace_timer(struct evloop *ev, void *arg)
{
    struct sup *s = arg;

    s->grace_timer = 0;
    for (struct child *ch = s->children; ch; ch = ch->next)
        log_warning("%s: pid %ld did not go away even after SIGKILL; not waiting for it",
                    ch->role->name, (long)ch->pid);
    ev_stop(ev);
}

static void on_total_timer(struct evloop *ev, void *arg)
{
    struct sup *s = arg;

    s->total_timer = 0;
    stop_kill(s, 1);
    s->grace_timer = ev_timer(ev, STOP_GRACE_MS, on_grace_timer, s);
}

/* SIGTERM to the lowest stop phase still running; ev_stop when none is left. */
static void stop_advance(struct sup *s)
{
    unsigned phase = UINT_MAX;

    for (struct child *ch = s->children; ch; ch = ch->next)
        if (ch->role->stop_phase < phase)
            phase = ch->role->stop_phase;
    if (phase == UINT_MAX) {
        uint64_t *timers[] = { &s->phase_timer, &s->total_timer, &s->grace_timer };
        for (size_t i = 0; i < ARRAY_LEN(timers); i++) {
            if (*timers[i])
                ev_timer_cancel(s->ev, *timers[i]);
            *timers[i] = 0;
        }
        ev_stop(s->ev);
        return;
    }
    if (phase == s->stop_phase)
        return;             /* still waiting for this phase */
    s->stop_phase = phase;
    for (struct child *ch = s->children; ch; ch = ch->next) {
        if (ch->role->stop_phase == phase && ch->signalled != SIGKILL) {
            ch->signalled = SIGTERM;
            send_signal(ch, SIGTERM);
        }
    }
    if (s->phase_timer)
        ev_timer_cancel(s->ev, s->phase_timer);
    s->phase_timer = ev_timer(s->ev, (uint64_t)s->cfg->stop_timeout * 1000 + STOP_PHASE_SLACK_MS,
                              on_phase_timer, s);
}

void sup_stop(struct sup *s)
{
    struct child *ch, *next;

    if (s->stopping)
        return;
    s->stopping = 1;
    /* Nobody waiting for a restart gets one now. */
    for (ch = s->children; ch; ch = next) {
        next = ch->next;
        if (ch->pid <= 0)
            child_remove(ch);
        else
            ch->retiring = 1;
    }
    s->total_timer = ev_timer(s->ev, (uint64_t)s->cfg->stop_timeout * 1000 + STOP_TOTAL_SLACK_MS,
                              on_total_timer, s);
    stop_advance(s);
}
