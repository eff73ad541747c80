/*
 * listener.c - accepting SMTP connections (listener.h). Must never read
 * from a client: a connection is either refused with one 421 line or
 * handed to session_start() with the peer address accept() returned.
 */
#include "listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "util.h"

static struct evloop *ev;
static int lfds[CONF_MAX_LIST * 3];
static enum port_kind lkinds[CONF_MAX_LIST * 3];
static size_t nlfds;
static int accept_paused, closed;

static void accept_cb(struct evloop *loop, int lfd, uint32_t events, void *arg);

static void accept_resume(struct evloop *loop, void *arg)
{
    (void)arg;
    accept_paused = 0;
    if (closed)
        return;
    for (size_t i = 0; i < nlfds; i++)
        ev_add(loop, lfds[i], EPOLLIN | EPOLLEXCLUSIVE, accept_cb, (void *)(long)lkinds[i]);
}

/* Out of descriptors: a level-triggered listener would wake us forever, so
 * stop watching the listeners for a second and let sessions end. */
static void accept_pause(struct evloop *loop, const char *why)
{
    if (accept_paused)
        return;
    log_warning("accept: %s; not accepting for a second (%u sessions open)", why, session_count());
    accept_paused = 1;
    for (size_t i = 0; i < nlfds; i++)
        ev_del(loop, lfds[i]);
    ev_timer(loop, 1000, accept_resume, NULL);
}

static void accept_cb(struct evloop *loop, int lfd, uint32_t events, void *arg)
{
    enum port_kind kind = (enum port_kind)(long)arg;
    const struct config *cfg = session_config();

    (void)events;
    for (int i = 0; i < 64 && !closed; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        char ip[64];
        int one = 1;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(loop, strerror(errno));
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warning("accept: %s", strerror(errno));
            return;
        }
        net_addr_text((struct sockaddr *)&ss, ip, sizeof(ip));
        /* Replies are small and each one is awaited: never let Nagle hold one. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (session_count() >= cfg->smtpd_max_sessions) {
            char msg[300];
            int n = snprintf(msg, sizeof(msg), "421 4.7.0 %s Error: too many connections\r\n", cfg->hostname);
            log_warning("too many connections: refusing unknown[%s]", ip);
            if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) < 0) {
                /* closing anyway */
            }
            close(fd);
            continue;
        }
        session_start(fd, kind, &ss, ip);
    }
}

int listener_add(struct evloop *loop, int fd, enum port_kind kind)
{
    ev = loop;
    if (nlfds >= ARRAY_LEN(lfds))
        return -1;
    /* EPOLLEXCLUSIVE: one worker wakes per connection, not all of them. */
    if (ev_add(loop, fd, EPOLLIN | EPOLLEXCLUSIVE, accept_cb, (void *)(long)kind) < 0)
        return -1;
    lfds[nlfds] = fd;
    lkinds[nlfds] = kind;
    nlfds++;
    return 0;
}

void listener_close_all(void)
{
    closed = 1;
    for (size_t i = 0; i < nlfds; i++) {
        if (!accept_paused)
            ev_del(ev, lfds[i]);
        close(lfds[i]);
    }
    nlfds = 0;
}
