/*
 * supervise.c - runs the roles of the table below and keeps them running
 * (supervise.h).
 *
 * This is the code that runs as root and forks. It must never exec anything
 * but a role binary from bindir with a fixed argv (no shell, no string built
 * from anything a peer sent), never read from a child, and never pass a
 * child anything but the listening sockets, its config path and two
 * environment variables. Children start with the master's privileges and
 * drop them themselves, after their own privileged set-up.
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define BACKOFF_FIRST_MS   100u
#define BACKOFF_MAX_MS     30000u
#define BACKOFF_RESET_MS   30000u   /* a run this long forgives earlier failures */
#define STOP_PHASE_MS      20000u   /* each stop phase, then SIGKILL */
#define STOP_TOTAL_MS      30000u   /* whole stop, then SIGKILL everything */
#define STOP_GRACE_MS      5000u    /* after the last SIGKILL, give up waiting */

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

/*
 * Started in this order. smtpd stops first so that its last commits reach a
 * queue-mgr that is still there. A new role is a new row.
 */
static const struct role roles[] = {
    { "queue-mgr", "queue-mgr", one,             0,      RELOAD_IN_PLACE,   1 },
    { "smtpd",     "smtpd",     smtpd_instances, LK_ALL, RELOAD_GENERATION, 0 },
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
};

static void spawn(struct child *ch);
static void on_sigchld(struct evloop *ev, int signo, void *arg);

static void role_path(const char *bindir, const struct role *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", bindir, r->binary);
}

int sup_check_binaries(const char *bindir, char *err, size_t errlen)
{
    char path[PATH_MAX + 64];

    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        role_path(bindir, &roles[i], path, sizeof(path));
        if (access(path, X_OK) < 0) {
            snprintf(err, errlen, "cannot run %s (%s): %s", path, roles[i].name, strerror(errno));
            return -1;
        }
    }
    return 0;
}

struct sup *sup_new(struct evloop *ev, const char *bindir, const char *conf, int foreground)
{
    struct sup *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->ev = ev;
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

static void child_remove(struct child *ch)
{
    struct sup *s = ch->sup;

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
static unsigned wanted(const struct sup *s, const struct role *r)
{
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

/* ------------------------------------------------------------ the child */

/* Everything the exec needs, prepared before fork so the child only moves
 * descriptors and calls execve. */
struct exec_plan {
    char path[PATH_MAX + 64];
    char *argv[4];
    char **envp;
    int fds[3 * CONF_MAX_LIST];
    size_t nfds;
    char fdvar[64 + 3 * CONF_MAX_LIST * 16];
};

static int exec_plan_build(struct exec_plan *p, const struct sup *s, const struct role *r)
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

    /* The master's environment, minus the two variables that are ours to set. */
    for (char **e = environ; *e; e++)
        n++;
    p->envp = calloc(n + 3, sizeof(*p->envp));
    if (!p->envp)
        return -1;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "POSTERN_LISTEN_FDS=", 19) != 0 && strncmp(*e, "POSTERN_FOREGROUND=", 19) != 0)
            p->envp[k++] = *e;
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
    int lifted[3 * CONF_MAX_LIST], nul;

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
    /* Listeners to 3, 4, ...: first out of the way of the targets, then into
     * place; dup2 clears close-on-exec on the copy, and only on it. */
    for (size_t i = 0; i < p->nfds; i++) {
        lifted[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, (int)(3 + p->nfds));
        if (lifted[i] < 0) {
            log_error("%s: cannot pass listener: %s", p->path, strerror(errno));
            _exit(127);
        }
    }
    for (size_t i = 0; i < p->nfds; i++) {
        if (dup2(lifted[i], (int)(3 + i)) < 0) {
            log_error("%s: cannot pass listener: %s", p->path, strerror(errno));
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

    (void)ev;
    ch->restart_timer = 0;
    if (!ch->sup->stopping && !ch->retiring)
        spawn(ch);
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
    ch->restart_timer = ev_timer(s->ev, delay, on_restart_timer, ch);
    if (!ch->restart_timer) {
        log_error("%s: cannot schedule a restart: out of memory", ch->role->name);
        return;
    }
    log_info("%s: restarting in %llu ms", ch->role->name, (unsigned long long)delay);
}

static void spawn(struct child *ch)
{
    static struct exec_plan plan;
    struct sup *s = ch->sup;
    pid_t pid;

    if (exec_plan_build(&plan, s, ch->role) < 0) {
        log_error("%s: cannot start: out of memory", ch->role->name);
        schedule_restart(ch);
        return;
    }
    pid = fork();
    if (pid == 0)
        child_exec(&plan);
    free(plan.envp);
    if (pid < 0) {
        log_error("%s: fork: %s", ch->role->name, strerror(errno));
        ch->started_ms = 0;
        schedule_restart(ch);
        return;
    }
    ch->pid = pid;
    ch->started_ms = now_ms();
    ch->signalled = 0;
    log_info("%s: started, pid %ld", ch->role->name, (long)pid);
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

    role_path(s->bindir, ch->role, path, sizeof(path));
    if (!expected || !clean) {
        if (WIFSIGNALED(status))
            log_warning("process %s pid %ld killed by signal %d", path, (long)ch->pid,
                        WTERMSIG(status));
        else
            log_warning("process %s pid %ld exit status %d", path, (long)ch->pid,
                        WEXITSTATUS(status));
    } else {
        log_info("%s: pid %ld exited%s", ch->role->name, (long)ch->pid,
                 s->stopping ? "" : " after draining");
    }
    if (expected) {
        child_remove(ch);
        return;
    }
    schedule_restart(ch);
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

void sup_start(struct sup *s, const struct config *c, const struct listeners *l)
{
    s->cfg = c;
    s->lis = l;
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        unsigned want = wanted(s, &roles[i]);
        if (want == 0 && roles[i].listen)
            log_info("%s: no listeners configured, not started", roles[i].name);
        for (unsigned k = 0; k < want; k++) {
            struct child *ch = child_new(s, &roles[i]);
            if (ch)
                spawn(ch);
        }
    }
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
        unsigned want = wanted(s, r), have = 0, old = 0;

        if (want == 0 && r->listen)
            log_info("%s: no listeners configured, not started", r->name);

        if (r->reload == RELOAD_GENERATION) {
            /* The new generation first, so that someone accepts all along. */
            for (unsigned k = 0; k < want; k++) {
                ch = child_new(s, r);
                if (ch)
                    spawn(ch);
            }
            for (ch = s->children; ch; ch = next) {
                next = ch->next;
                if (ch->role == r && !ch->retiring && ch->gen != s->gen) {
                    old++;
                    retire(ch, SIGHUP);
                }
            }
            if (old)
                log_info("%s: %u old process(es) finish their sessions and exit", r->name, old);
            continue;
        }
        for (ch = s->children; ch; ch = next) {
            next = ch->next;
            if (ch->role != r || ch->retiring)
                continue;
            if (have < want) {
                have++;
                send_signal(ch, SIGHUP);
            } else {
                retire(ch, SIGTERM);
            }
        }
        for (; have < want; have++) {
            ch = child_new(s, r);
            if (ch)
                spawn(ch);
        }
    }
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
    s->phase_timer = ev_timer(s->ev, STOP_PHASE_MS, on_phase_timer, s);
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
    s->total_timer = ev_timer(s->ev, STOP_TOTAL_MS, on_total_timer, s);
    stop_advance(s);
}
