/*
 * ipc.c - framed messages between Postern processes (ipc.h).
 *
 * Everything arriving here comes from another process and is treated as
 * hostile: the header is checked before the body is awaited, a body longer
 * than its type allows closes the connection, and field getters check sizes
 * and content. Descriptors travel with SCM_RIGHTS on a frame's first byte.
 */
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static void put16(unsigned char *p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (v >> (8 * i)) & 0xff;
}
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- building ---- */

void ipc_out_begin(struct ipc_out *m, uint16_t type, uint32_t reqid)
{
    unsigned char h[IPC_HDR_LEN];

    buf_init(&m->b, IPC_HDR_LEN + IPC_MAX_BODY);
    m->framed = 1;
    m->failed = 0;
    put32(h, IPC_MAGIC);
    put16(h + 4, type);
    put16(h + 6, 0);
    put32(h + 8, 0);
    put32(h + 12, reqid);
    if (buf_append(&m->b, h, sizeof(h)) < 0)
        m->failed = 1;
}

void ipc_body_begin(struct ipc_out *m)
{
    buf_init(&m->b, IPC_MAX_BODY);
    m->framed = 0;
    m->failed = 0;
}

void ipc_out_bytes(struct ipc_out *m, uint16_t tag, const void *p, size_t len)
{
    unsigned char h[6];

    if (m->failed || len > IPC_MAX_BODY) {
        m->failed = 1;
        return;
    }
    put16(h, tag);
    put32(h + 2, (uint32_t)len);
    if (buf_append(&m->b, h, sizeof(h)) < 0 || buf_append(&m->b, p, len) < 0)
        m->failed = 1;
}

void ipc_out_str(struct ipc_out *m, uint16_t tag, const char *s)
{
    ipc_out_bytes(m, tag, s, strlen(s));
}

void ipc_out_u64(struct ipc_out *m, uint16_t tag, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (v >> (8 * i)) & 0xff;
    ipc_out_bytes(m, tag, b, sizeof(b));
}

void ipc_out_nested(struct ipc_out *m, uint16_t tag, const struct ipc_out *inner)
{
    if (inner->failed || inner->framed) {
        m->failed = 1;
        return;
    }
    ipc_out_bytes(m, tag, buf_head(&inner->b), inner->b.len);
}

int ipc_out_finish(struct ipc_out *m)
{
    if (m->failed)
        return -1;
    if (m->framed)
        put32((unsigned char *)m->b.data + m->b.off + 8, (uint32_t)(m->b.len - IPC_HDR_LEN));
    return 0;
}

void ipc_out_free(struct ipc_out *m)
{
    buf_free(&m->b);
}

/* ---- reading ---- */

void ipc_iter_init(struct ipc_iter *it, const unsigned char *body, size_t len)
{
    it->p = body;
    it->end = body + len;
}

int ipc_iter_next(struct ipc_iter *it, struct ipc_field *f)
{
    size_t left = (size_t)(it->end - it->p);
    uint32_t len;

    if (left == 0)
        return 0;
    if (left < 6)
        return -1;
    len = get32(it->p + 2);
    if (len > left - 6)
        return -1;
    f->tag = get16(it->p);
    f->len = len;
    f->val = it->p + 6;
    it->p += 6 + len;
    return 1;
}

int ipc_field_u64(const struct ipc_field *f, uint64_t *out)
{
    uint64_t v = 0;

    if (f->len != 8)
        return -1;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | f->val[i];
    *out = v;
    return 0;
}

int ipc_field_str(const struct ipc_field *f, char *out, size_t outlen)
{
    if (f->len >= outlen)
        return -1;
    for (size_t i = 0; i < f->len; i++) {
        unsigned char ch = f->val[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
    }
    memcpy(out, f->val, f->len);
    out[f->len] = 0;
    return 0;
}

long ipc_frame_check(const unsigned char *p, size_t n, ipc_limit_fn limit)
{
    uint32_t len;
    uint16_t type;

    if (n < IPC_HDR_LEN)
        return 0;
    if (get32(p) != IPC_MAGIC)
        return -1;
    type = get16(p + 4);
    len = get32(p + 8);
    /* A limit of 0 means the type is unknown: refused even when empty. */
    if (len > IPC_MAX_BODY || limit(type) == 0 || len > limit(type))
        return -1;
    return (long)(IPC_HDR_LEN + len);
}

/* ---- connection ---- */

void ipc_conn_init(struct ipc_conn *c, int fd, ipc_limit_fn limit)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->limit = limit;
    buf_init(&c->in, IPC_HDR_LEN + IPC_MAX_BODY);
    buf_init(&c->out, 64u << 20);
}

void ipc_conn_close(struct ipc_conn *c)
{
    size_t i;

    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    for (i = 0; i < c->nfdq; i++)
        close(c->fdq[i]);
    for (i = 0; i < c->noutfd; i++)
        close(c->outfd[i]);
    c->nfdq = c->noutfd = 0;
    buf_free(&c->in);
    buf_free(&c->out);
}

int ipc_conn_send(struct ipc_conn *c, const struct ipc_out *m, int fd)
{
    const struct buf *b = &m->b;
    int dupfd = -1;

    if (m->failed || !m->framed || c->fd < 0) {
        errno = EINVAL;
        return -1;
    }
    if (fd >= 0) {
        /* Each queued descriptor needs a slot until its frame is sent. */
        if (c->noutfd >= ARRAY_LEN(c->outfd) && ipc_conn_flush(c) < 0)
            return -1;
        if (c->noutfd >= ARRAY_LEN(c->outfd)) {
            errno = ENOBUFS;
            return -1;
        }
        dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dupfd < 0)
            return -1;
    }
    if (buf_append(&c->out, buf_head(b), b->len) < 0) {
        if (dupfd >= 0)
            close(dupfd);
        return -1;
    }
    if (dupfd >= 0) {
        /* Mark the frame in the copy we queued, not the caller's. */
        unsigned char *h = (unsigned char *)c->out.data + c->out.off + c->out.len - b->len;
        put16(h + 6, (uint16_t)(get16(h + 6) | IPC_F_FD));
        c->outfd[c->noutfd] = dupfd;
        c->outfd_pos[c->noutfd] = c->out_queued;
        c->noutfd++;
    }
    c->out_queued += b->len;
    return 0;
}

int ipc_conn_flush(struct ipc_conn *c)
{
    while (c->out.len > 0) {
        struct msghdr mh;
        struct iovec iov;
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(int))];
        } cm;
        size_t chunk = c->out.len;
        int with_fd = 0;
        ssize_t n;

        memset(&mh, 0, sizeof(mh));
        if (c->noutfd > 0) {
            if (c->outfd_pos[0] == c->out_sent) {
                with_fd = 1;
                /* Send only up to the next descriptor's frame, so each
                 * descriptor rides on its own frame's first byte. */
                if (c->noutfd > 1)
                    chunk = (size_t)(c->outfd_pos[1] - c->out_sent);
            } else {
                chunk = (size_t)(c->outfd_pos[0] - c->out_sent);
            }
        }
        iov.iov_base = c->out.data + c->out.off;
        iov.iov_len = chunk;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (with_fd) {
            struct cmsghdr *h;
            memset(&cm, 0, sizeof(cm));
            mh.msg_control = cm.space;
            mh.msg_controllen = sizeof(cm.space);
            h = CMSG_FIRSTHDR(&mh);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(h), &c->outfd[0], sizeof(int));
        }
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        if (with_fd && n > 0) {
            close(c->outfd[0]);
            memmove(c->outfd, c->outfd + 1, (c->noutfd - 1) * sizeof(int));
            memmove(c->outfd_pos, c->outfd_pos + 1, (c->noutfd - 1) * sizeof(uint64_t));
            c->noutfd--;
        }
        c->out_sent += (uint64_t)n;
        buf_consume(&c->out, (size_t)n);
    }
    return 1;
}

int ipc_conn_read(struct ipc_conn *c)
{
    unsigned char tmp[65536];
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * 8)];
    } cm;
    struct msghdr mh;
    struct iovec iov;
    struct cmsghdr *h;
    ssize_t n;
    size_t room = c->in.max - c->in.len;

    if (room == 0)
        return -1;
    memset(&mh, 0, sizeof(mh));
    iov.iov_base = tmp;
    iov.iov_len = room < sizeof(tmp) ? room : sizeof(tmp);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.space;
    mh.msg_controllen = sizeof(cm.space);
    do
        n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
            if (c->nfdq < ARRAY_LEN(c->fdq))
                c->fdq[c->nfdq++] = fd;
            else
                close(fd); /* a peer flooding descriptors gets none kept */
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        return -1;
    if (n == 0)
        return -1;
    if (buf_append(&c->in, tmp, (size_t)n) < 0)
        return -1;
    return 1;
}

int ipc_conn_next(struct ipc_conn *c, struct ipc_msg *m)
{
    const unsigned char *p;
    long need;

    if (c->cur_len) {
        buf_consume(&c->in, c->cur_len);
        c->cur_len = 0;
    }
    p = (const unsigned char *)buf_head(&c->in);
    need = ipc_frame_check(p, c->in.len, c->limit);
    if (need < 0)
        return -1;
    if (need == 0 || (size_t)need > c->in.len)
        return 0;
    m->type = get16(p + 4);
    m->flags = get16(p + 6);
    m->reqid = get32(p + 12);
    m->body = p + IPC_HDR_LEN;
    m->len = (size_t)need - IPC_HDR_LEN;
    m->fd = -1;
    if (m->flags & IPC_F_FD) {
        if (c->nfdq == 0)
            return -1;
        m->fd = c->fdq[0];
        memmove(c->fdq, c->fdq + 1, (c->nfdq - 1) * sizeof(int));
        c->nfdq--;
    }
    c->cur_len = (size_t)need;
    return 1;
}

/* ---- blocking use ---- */

int ipc_connect_unix(const char *path)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    str_copy(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    set_nonblock(fd, 1);
    return fd;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r;

    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r;
}

int ipc_conn_send_wait(struct ipc_conn *c, const struct ipc_out *m, int fd, int timeout_ms)
{
    int r;

    if (ipc_conn_send(c, m, fd) < 0)
        return -1;
    while ((r = ipc_conn_flush(c)) == 0)
        if (wait_fd(c->fd, POLLOUT, timeout_ms) <= 0)
            return -1;
    return r < 0 ? -1 : 0;
}

int ipc_conn_recv_wait(struct ipc_conn *c, struct ipc_msg *m, int timeout_ms)
{
    for (;;) {
        int r = ipc_conn_next(c, m);
        if (r != 0)
            return r;
        r = wait_fd(c->fd, POLLIN, timeout_ms);
        if (r == 0)
            return 0;
        if (r < 0 || ipc_conn_read(c) < 0)
            return -1;
    }
}

int ipc_conn_watch(struct ipc_conn *c, int fd, ipc_limit_fn limit, struct evloop *ev, ev_fd_cb cb, void *arg)
{
    ipc_conn_init(c, fd, limit);
    if (ev_add(ev, fd, EPOLLIN, cb, arg) < 0) {
        ipc_conn_close(c);
        return -1;
    }
    return 0;
}
