/*
 * conn.c - a connection's transport (conn.h). Must never parse what it
 * reads or decide what to send: bytes in, bytes out, TLS in between.
 */
#include "conn.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "tlserr.h"
#include "util.h"

void conn_init(struct conn *c, int fd, size_t out_max)
{
    c->fd = fd;
    c->ssl = NULL;
    c->tls_active = 0;
    c->want_write = 0;
    buf_init(&c->out, out_max);
}

void conn_close(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->out);
}

ssize_t conn_read(struct conn *c, char *buf, size_t len)
{
    if (c->ssl && c->tls_active) {
        int r = SSL_read(c->ssl, buf, (int)len);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ)
            return CONN_AGAIN;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->want_write = 1;
            return CONN_AGAIN;
        }
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, len, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? CONN_AGAIN : -1;
    }
}

int conn_flush(struct conn *c)
{
    c->want_write = 0;
    while (c->out.len > 0) {
        ssize_t n;
        if (c->ssl && c->tls_active) {
            int r = SSL_write(c->ssl, buf_head(&c->out), (int)c->out.len);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    c->want_write = e == SSL_ERROR_WANT_WRITE;
                    return 0;
                }
                ERR_clear_error();
                return -1;
            }
            n = r;
        } else {
            n = send(c->fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                if (errno == EINTR)
                    continue;
                return -1;
            }
        }
        buf_consume(&c->out, (size_t)n);
    }
    return 1;
}

int conn_tls_accept(struct conn *c, char *err, size_t errlen)
{
    int r;

    if (!c->ssl) {
        c->ssl = tls_new(c->fd);
        if (!c->ssl) {
            str_copy(err, "setup failed", errlen);
            return -2;
        }
    }
    r = SSL_accept(c->ssl);
    if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c->want_write = e == SSL_ERROR_WANT_WRITE;
            return 0;
        }
        tls_error_text(err, errlen);
        return -1;
    }
    c->tls_active = 1;
    return 1;
}

void conn_tls_describe(struct conn *c, char *out, size_t outlen)
{
    tls_describe(c->ssl, out, outlen);
}
