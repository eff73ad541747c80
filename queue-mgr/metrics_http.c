/*
 * metrics_http.c - the metrics endpoint (metrics_http.h). At most
 * HTTP_CONNS connections at once (more wait in the listen backlog), each
 * with HTTP_TIMEOUT_MS to send its request and read the answer; one
 * request per connection ("Connection: close"). Never reads more than
 * HTTPGET_MAX bytes of a request, never blocks (non-blocking sockets
 * watched by the event loop), and never serves anything but the metrics.
 */
#include "metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "httpget.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

#define HTTP_CONNS 16
#define HTTP_TIMEOUT_MS 10000
#define HTTP_OUT_MAX (2u << 20)

struct hconn {
    int fd;
    char in[HTTPGET_MAX];
    size_t nin;
    struct buf out;
    uint64_t timer;
    int used;
};

static struct evloop *loop;
static int lfd = -1;
static struct hconn conns[HTTP_CONNS];
static size_t nconns;

static void lfd_cb(struct evloop *ev, int fd, uint32_t events, void *arg);

static void hc_close(struct hconn *h)
{
    if (!h->used)
        return;
    if (h->timer)
        ev_timer_cancel(loop, h->timer);
    ev_del(loop, h->fd);
    close(h->fd);
    buf_free(&h->out);
    h->used = 0;
    if (nconns-- == HTTP_CONNS && lfd >= 0)
        ev_mod(loop, lfd, EPOLLIN); /* room again: accept */
}

static void hc_timeout(struct evloop *ev, void *arg)
{
    struct hconn *h = arg;

    (void)ev;
    h->timer = 0;
    hc_close(h);
}

static void respond(struct hconn *h, const char *status, const char *type, const char *body,
                    size_t len, int head)
{
    buf_printf(&h->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n", status, type, len);
    if (!head)
        buf_append(&h->out, body, len);
    shutdown(h->fd, SHUT_RD);
    ev_mod(loop, h->fd, EPOLLOUT);
}

static void answer(struct hconn *h)
{
    char path[256];
    int head;
    enum httpget_result r = httpget_parse(h->in, h->nin, path, sizeof(path), &head);
    static const char bad[] = "bad request\n", method[] = "only GET\n", none[] = "not found: try /metrics\n";

    if (r == HTTPGET_MORE)
        return;
    if (r == HTTPGET_BAD) {
        respond(h, "400 Bad Request", "text/plain", bad, sizeof(bad) - 1, 0);
    } else if (r == HTTPGET_METHOD) {
        respond(h, "405 Method Not Allowed", "text/plain", method, sizeof(method) - 1, 0);
    } else if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0) {
        respond(h, "404 Not Found", "text/plain", none, sizeof(none) - 1, head);
    } else {
        struct buf text;
        buf_init(&text, HTTP_OUT_MAX);
        if (metrics_render(&text) < 0) {
            static const char err[] = "queue index unreadable\n";
            respond(h, "503 Service Unavailable", "text/plain", err, sizeof(err) - 1, head);
        } else {
            respond(h, "200 OK", "text/plain; version=0.0.4; charset=utf-8", buf_head(&text), text.len, head);
        }
        buf_free(&text);
    }
}

static void hc_cb(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    struct hconn *h = arg;

    (void)ev;
    if (h->out.len) {
        ssize_t n = send(fd, buf_head(&h->out), h->out.len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            hc_close(h);
            return;
        }
        buf_consume(&h->out, (size_t)n);
        if (!h->out.len)
            hc_close(h);
        return;
    }
    if (events & EPOLLIN) {
        ssize_t n = recv(fd, h->in + h->nin, sizeof(h->in) - h->nin, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            hc_close(h);
            return;
        }
        h->nin += (size_t)n;
        answer(h);
        return;
    }
    if (events & (EPOLLHUP | EPOLLERR))
        hc_close(h);
}

static void lfd_cb(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    while (nconns < HTTP_CONNS) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        size_t i;
        if (c < 0)
            return;
        for (i = 0; i < HTTP_CONNS && conns[i].used; i++)
            ;
        struct hconn *h = &conns[i];
        memset(h, 0, sizeof(*h));
        h->fd = c;
        buf_init(&h->out, HTTP_OUT_MAX + 512);
        if (ev_add(ev, c, EPOLLIN, hc_cb, h) < 0) {
            close(c);
            continue;
        }
        h->used = 1;
        nconns++;
        h->timer = ev_timer(ev, HTTP_TIMEOUT_MS, hc_timeout, h);
    }
    ev_mod(ev, fd, 0); /* full: the backlog waits until one closes */
}

int metrics_http_start(struct evloop *ev, const struct listen_addr *la, char *err, size_t errlen)
{
    char why[256];

    loop = ev;
    lfd = net_listen(la, why, sizeof(why));
    if (lfd < 0) {
        snprintf(err, errlen, "metrics_listen = %s: %s", la->text, why);
        return -1;
    }
    if (ev_add(ev, lfd, EPOLLIN, lfd_cb, NULL) < 0) {
        snprintf(err, errlen, "metrics_listen: %s", strerror(errno));
        close(lfd);
        lfd = -1;
        return -1;
    }
    log_info("metrics: serving the Prometheus text format on http://%s/metrics", la->text);
    return 0;
}

void metrics_http_stop(void)
{
    for (size_t i = 0; i < HTTP_CONNS; i++)
        hc_close(&conns[i]);
    if (lfd >= 0) {
        ev_del(loop, lfd);
        close(lfd);
        lfd = -1;
    }
}
