/*
 * connect.c - Happy Eyeballs connection racing (connect.h). It owns the
 * sockets of its attempts until one wins; it must never leak one, nor call
 * back twice.
 */
#include "connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#define HEV_MAX 16

struct attempt {
    struct hev *h;
    int fd;
    uint64_t timer;
    struct sockaddr_storage sa;
};

struct hev {
    struct evloop *ev;
    struct attempt a[HEV_MAX];
    size_t n, next, inflight;
    unsigned timeout_ms, stagger_ms;
    uint64_t stagger;
    hev_cb cb;
    void *arg;
    char err[160];
};

static void start_next(struct hev *h);

static void close_attempt(struct hev *h, struct attempt *a)
{
    if (a->fd >= 0) {
        ev_del(h->ev, a->fd);
        close(a->fd);
        a->fd = -1;
        h->inflight--;
    }
    if (a->timer) {
        ev_timer_cancel(h->ev, a->timer);
        a->timer = 0;
    }
}

static void finish(struct hev *h, struct attempt *win)
{
    int fd = -1;
    struct sockaddr_storage sa;

    if (h->stagger)
        ev_timer_cancel(h->ev, h->stagger);
    h->stagger = 0;
    memset(&sa, 0, sizeof(sa));
    if (win) {
        fd = win->fd;
        sa = win->sa;
        ev_del(h->ev, fd);
        if (win->timer)
            ev_timer_cancel(h->ev, win->timer);
        win->timer = 0;
        win->fd = -1;
        h->inflight--;
    }
    for (size_t i = 0; i < h->n; i++)
        close_attempt(h, &h->a[i]);
    hev_cb cb = h->cb;
    void *arg = h->arg;
    char err[sizeof(h->err)];
    memcpy(err, h->err, sizeof(err));
    free(h);
    cb(fd, win ? &sa : NULL, win ? NULL : err, arg);
}

/* "[IP]:PORT: why", or ": why" for a UNIX socket (its path is the host). */
static void attempt_error(struct hev *h, const struct attempt *a, const char *why)
{
    char ip[64];

    if (a->sa.ss_family == AF_UNIX) {
        snprintf(h->err, sizeof(h->err), ": %s", why);
        return;
    }
    net_addr_text((const struct sockaddr *)&a->sa, ip, sizeof(ip));
    snprintf(h->err, sizeof(h->err), "[%s]:%u: %s", ip, net_port((const struct sockaddr *)&a->sa), why);
}

static socklen_t attempt_len(const struct attempt *a)
{
    switch (a->sa.ss_family) {
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    case AF_UNIX:
        return sizeof(struct sockaddr_un);
    default:
        return sizeof(struct sockaddr_in);
    }
}

static void failed(struct hev *h, struct attempt *a, const char *why)
{
    attempt_error(h, a, why);
    close_attempt(h, a);
    if (h->next < h->n) {
        start_next(h);
    }
    if (h->inflight == 0 && h->next >= h->n)
        finish(h, NULL);
}

static void on_timeout(struct evloop *ev, void *arg)
{
    struct attempt *a = arg;

    (void)ev;
    a->timer = 0;
    failed(a->h, a, "Connection timed out");
}

static void on_ready(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct attempt *a = arg;
    int e = 0;
    socklen_t el = sizeof(e);

    (void)ev;
    (void)events;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
        e = errno;
    if (e != 0) {
        failed(a->h, a, strerror(e));
        return;
    }
    finish(a->h, a);
}

static void on_stagger(struct evloop *ev, void *arg)
{
    struct hev *h = arg;

    (void)ev;
    h->stagger = 0;
    start_next(h);
    if (h->inflight == 0 && h->next >= h->n)
        finish(h, NULL);
}

/* Starts attempts until one is in flight (or none remain); arms the head-start timer. */
static void start_next(struct hev *h)
{
    while (h->next < h->n) {
        struct attempt *a = &h->a[h->next++];
        socklen_t len = attempt_len(a);
        a->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (a->fd < 0) {
            snprintf(h->err, sizeof(h->err), ": socket: %s", strerror(errno));
            continue;
        }
        h->inflight++;
        /* a UNIX socket connects at once or fails (EAGAIN: its backlog is full) */
        if (connect(a->fd, (struct sockaddr *)&a->sa, len) < 0 && errno != EINPROGRESS) {
            attempt_error(h, a, strerror(errno));
            close(a->fd);
            a->fd = -1;
            h->inflight--;
            continue;
        }
        if (ev_add(h->ev, a->fd, EPOLLOUT, on_ready, a) < 0 ||
            !(a->timer = ev_timer(h->ev, h->timeout_ms, on_timeout, a))) {
            snprintf(h->err, sizeof(h->err), ": event loop: %s", strerror(errno));
            close_attempt(h, a);
            continue;
        }
        if (h->next < h->n) {
            if (h->stagger)
                ev_timer_cancel(h->ev, h->stagger);
            h->stagger = ev_timer(h->ev, h->stagger_ms, on_stagger, h);
        }
        return;
    }
}

/* Called once from hev_start: a failure there must not call back before
 * hev_start returned, so it is reported on a zero timer. */
static void on_nothing(struct evloop *ev, void *arg)
{
    struct hev *h = arg;

    (void)ev;
    h->stagger = 0;
    finish(h, NULL);
}

struct hev *hev_start(struct evloop *ev, const struct sockaddr_storage *addrs, size_t n,
                      unsigned port, unsigned timeout_ms, unsigned stagger_ms, hev_cb cb, void *arg)
{
    struct hev *h = calloc(1, sizeof(*h));
    size_t i6 = 0, i4 = 0, k = 0;

    if (!h)
        return NULL;
    if (n > HEV_MAX)
        n = HEV_MAX;
    h->ev = ev;
    h->timeout_ms = timeout_ms;
    h->stagger_ms = stagger_ms;
    h->cb = cb;
    h->arg = arg;
    snprintf(h->err, sizeof(h->err), ": no address to connect to");
    if (n > 0 && addrs[0].ss_family == AF_UNIX) {
        /* a UNIX socket (LMTP): one path, nothing to race */
        h->a[0].h = h;
        h->a[0].fd = -1;
        h->a[0].sa = addrs[0];
        n = 0;
        k = 1;
    }
    /* interleave the families, starting with the first address's */
    int first6 = n > 0 && addrs[0].ss_family == AF_INET6;
    while (k < n) {
        const struct sockaddr_storage *pick = NULL;
        int want6 = (k % 2 == 0) == first6;
        for (int pass = 0; pass < 2 && !pick; pass++, want6 = !want6) {
            size_t *ix = want6 ? &i6 : &i4;
            while (*ix < n && addrs[*ix].ss_family != (want6 ? AF_INET6 : AF_INET))
                (*ix)++;
            if (*ix < n)
                pick = &addrs[(*ix)++];
        }
        if (!pick)
            break;
        struct attempt *a = &h->a[k++];
        a->h = h;
        a->fd = -1;
        a->sa = *pick;
        if (a->sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)port);
    }
    h->n = k;
    start_next(h);
    if (h->inflight == 0) {
        if (h->stagger)
            ev_timer_cancel(ev, h->stagger);
        if (!(h->stagger = ev_timer(ev, 0, on_nothing, h))) {
            free(h);
            return NULL;
        }
    }
    return h;
}

void hev_cancel(struct hev *h)
{
    if (!h)
        return;
    if (h->stagger)
        ev_timer_cancel(h->ev, h->stagger);
    for (size_t i = 0; i < h->n; i++)
        close_attempt(h, &h->a[i]);
    free(h);
}
