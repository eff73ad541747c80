/*
 * evloop.c - the epoll event loop (evloop.h).
 *
 * Handlers are kept in a table indexed by descriptor. A handler removed
 * while events for it are still pending in this round is skipped by its
 * generation number, so a callback may close any descriptor safely.
 */
#include "evloop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util.h"

struct handler {
    ev_fd_cb cb;
    void *arg;
    uint32_t gen;
    int active;
};

struct timer {
    uint64_t id, due;
    ev_timer_cb cb;
    void *arg;
    struct timer *next;
};

struct sighandler {
    int signo;
    ev_signal_cb cb;
    void *arg;
};

struct evloop {
    int epfd, sigfd;
    struct handler *h;
    size_t nh;
    struct timer *timers;
    uint64_t next_timer_id;
    struct sighandler sig[16];
    size_t nsig;
    sigset_t sigmask;
    void (*idle)(struct evloop *, void *);
    void *idle_arg;
    int stop;
};

struct evloop *ev_new(void)
{
    struct evloop *ev = calloc(1, sizeof(*ev));

    if (!ev)
        return NULL;
    ev->epfd = epoll_create1(EPOLL_CLOEXEC);
    ev->sigfd = -1;
    sigemptyset(&ev->sigmask);
    if (ev->epfd < 0) {
        free(ev);
        return NULL;
    }
    return ev;
}

void ev_free(struct evloop *ev)
{
    struct timer *t, *n;

    if (!ev)
        return;
    for (t = ev->timers; t; t = n) {
        n = t->next;
        free(t);
    }
    close(ev->epfd);
    if (ev->sigfd >= 0)
        close(ev->sigfd);
    free(ev->h);
    free(ev);
}

static int ev_grow(struct evloop *ev, int fd)
{
    if ((size_t)fd < ev->nh)
        return 0;
    size_t n = ev->nh ? ev->nh : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct handler *h = realloc(ev->h, n * sizeof(*h));
    if (!h)
        return -1;
    memset(h + ev->nh, 0, (n - ev->nh) * sizeof(*h));
    ev->h = h;
    ev->nh = n;
    return 0;
}

int ev_add(struct evloop *ev, int fd, uint32_t events, ev_fd_cb cb, void *arg)
{
    struct epoll_event e;

    if (fd < 0 || ev_grow(ev, fd) < 0)
        return -1;
    memset(&e, 0, sizeof(e));
    e.events = events;
    e.data.u64 = (uint64_t)(unsigned)fd | (uint64_t)(ev->h[fd].gen + 1) << 32;
    if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        return -1;
    ev->h[fd].gen++;
    ev->h[fd].cb = cb;
    ev->h[fd].arg = arg;
    ev->h[fd].active = 1;
    return 0;
}

int ev_mod(struct evloop *ev, int fd, uint32_t events)
{
    struct epoll_event e;

    if (fd < 0 || (size_t)fd >= ev->nh || !ev->h[fd].active)
        return -1;
    memset(&e, 0, sizeof(e));
    e.events = events;
    e.data.u64 = (uint64_t)(unsigned)fd | (uint64_t)ev->h[fd].gen << 32;
    return epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &e);
}

int ev_del(struct evloop *ev, int fd)
{
    if (fd < 0 || (size_t)fd >= ev->nh || !ev->h[fd].active)
        return -1;
    ev->h[fd].active = 0;
    return epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
}

uint64_t ev_timer(struct evloop *ev, uint64_t ms, ev_timer_cb cb, void *arg)
{
    struct timer *t = calloc(1, sizeof(*t)), **pp;

    if (!t)
        return 0;
    t->id = ++ev->next_timer_id;
    t->due = now_ms() + ms;
    t->cb = cb;
    t->arg = arg;
    for (pp = &ev->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
        ;
    t->next = *pp;
    *pp = t;
    return t->id;
}

void ev_timer_cancel(struct evloop *ev, uint64_t id)
{
    struct timer **pp, *t;

    for (pp = &ev->timers; (t = *pp); pp = &t->next) {
        if (t->id == id) {
            *pp = t->next;
            free(t);
            return;
        }
    }
}

static void ev_sigfd_cb(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct signalfd_siginfo si;

    (void)events;
    (void)arg;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        for (size_t i = 0; i < ev->nsig; i++)
            if (ev->sig[i].signo == (int)si.ssi_signo)
                ev->sig[i].cb(ev, (int)si.ssi_signo, ev->sig[i].arg);
    }
}

int ev_signal(struct evloop *ev, int signo, ev_signal_cb cb, void *arg)
{
    if (ev->nsig >= ARRAY_LEN(ev->sig))
        return -1;
    sigaddset(&ev->sigmask, signo);
    if (sigprocmask(SIG_BLOCK, &ev->sigmask, NULL) < 0)
        return -1;
    if (ev->sigfd < 0) {
        ev->sigfd = signalfd(-1, &ev->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (ev->sigfd < 0 || ev_add(ev, ev->sigfd, EPOLLIN, ev_sigfd_cb, NULL) < 0)
            return -1;
    } else if (signalfd(ev->sigfd, &ev->sigmask, 0) < 0) {
        return -1;
    }
    ev->sig[ev->nsig].signo = signo;
    ev->sig[ev->nsig].cb = cb;
    ev->sig[ev->nsig].arg = arg;
    ev->nsig++;
    return 0;
}

void ev_set_idle(struct evloop *ev, void (*cb)(struct evloop *, void *), void *arg)
{
    ev->idle = cb;
    ev->idle_arg = arg;
}

void ev_stop(struct evloop *ev)
{
    ev->stop = 1;
}

static void ev_run_timers(struct evloop *ev)
{
    uint64_t now = now_ms();

    while (ev->timers && ev->timers->due <= now) {
        struct timer *t = ev->timers;
        ev->timers = t->next;
        t->cb(ev, t->arg);
        free(t);
    }
}

int ev_run(struct evloop *ev)
{
    struct epoll_event events[128];

    ev->stop = 0;
    while (!ev->stop) {
        int timeout = -1, n;
        if (ev->timers) {
            uint64_t now = now_ms();
            timeout = ev->timers->due <= now ? 0 : (int)(ev->timers->due - now);
        }
        n = epoll_wait(ev->epfd, events, (int)ARRAY_LEN(events), timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int i = 0; i < n && !ev->stop; i++) {
            int fd = (int)(events[i].data.u64 & 0xffffffffu);
            uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
            if ((size_t)fd >= ev->nh || !ev->h[fd].active || ev->h[fd].gen != gen)
                continue;
            ev->h[fd].cb(ev, fd, events[i].events, ev->h[fd].arg);
        }
        ev_run_timers(ev);
        if (ev->idle && !ev->stop)
            ev->idle(ev, ev->idle_arg);
    }
    return 0;
}
