/*
 * evloop.h - a small epoll event loop, one per process.
 *
 * Descriptors get a callback with the ready events. Timers are one-shot,
 * kept in a short sorted list (few per process: sessions use a periodic
 * sweep instead). Signals arrive through signalfd as ordinary events, so no
 * work is ever done inside a signal handler.
 */
#ifndef POSTERN_EVLOOP_H
#define POSTERN_EVLOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct evloop;
typedef void (*ev_fd_cb)(struct evloop *ev, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(struct evloop *ev, void *arg);
typedef void (*ev_signal_cb)(struct evloop *ev, int signo, void *arg);

struct evloop *ev_new(void);
void ev_free(struct evloop *ev);

/* events: EPOLLIN, EPOLLOUT, EPOLLEXCLUSIVE (on add only). -1 on error. */
int ev_add(struct evloop *ev, int fd, uint32_t events, ev_fd_cb cb, void *arg);
int ev_mod(struct evloop *ev, int fd, uint32_t events);
int ev_del(struct evloop *ev, int fd);

/* One-shot timer after ms; returns an id (>0) for ev_timer_cancel. */
uint64_t ev_timer(struct evloop *ev, uint64_t ms, ev_timer_cb cb, void *arg);
void ev_timer_cancel(struct evloop *ev, uint64_t id);

/* Blocks signo and delivers it to cb from the loop. */
int ev_signal(struct evloop *ev, int signo, ev_signal_cb cb, void *arg);

/* Called once per loop iteration after all events were handled (used for
 * group commit: act on everything that arrived together). */
void ev_set_idle(struct evloop *ev, void (*cb)(struct evloop *, void *), void *arg);

/* Runs until ev_stop(). Returns 0, or -1 if epoll failed. */
int ev_run(struct evloop *ev);
void ev_stop(struct evloop *ev);

#endif
