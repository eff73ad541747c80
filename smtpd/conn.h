/*
 * conn.h - one client connection's transport: plain TCP or TLS on it, the
 * reply buffer and the non-blocking read, write and handshake. The only
 * session code that touches OpenSSL (with tls.c, which owns the context).
 */
#ifndef POSTERN_SMTPD_CONN_H
#define POSTERN_SMTPD_CONN_H

#include <stddef.h>
#include <sys/types.h>
#include "buf.h"

struct ssl_st;

struct conn {
    int fd;
    struct ssl_st *ssl;
    int tls_active;             /* handshake done: reads and writes go through TLS */
    int want_write;             /* TLS needs the socket writable to go on */
    struct buf out;             /* replies not yet sent */
};

#define CONN_AGAIN (-2)

void conn_init(struct conn *c, int fd, size_t out_max);
/* Frees TLS state and the buffer and closes the socket. */
void conn_close(struct conn *c);
/* >0 bytes read, 0 EOF (or TLS close), -1 error, CONN_AGAIN would block. */
ssize_t conn_read(struct conn *c, char *buf, size_t len);
/* Sends c->out: 1 all sent, 0 would block, -1 error. */
int conn_flush(struct conn *c);
/* Steps the server handshake: 1 done, 0 in progress, -1 failed (err says
 * why), -2 no SSL object could be made. */
int conn_tls_accept(struct conn *c, char *err, size_t errlen);
/* "TLSv1.3 with cipher ..." of the active TLS session. */
void conn_tls_describe(struct conn *c, char *out, size_t outlen);

#endif
