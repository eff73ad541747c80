/*
 * ipc.h - the one framed message format between Postern processes.
 *
 * A frame is a 16-byte header followed by a body of typed fields:
 *
 *   header: u32 magic "PSTN" | u16 type | u16 flags | u32 body length | u32 request id
 *   field:  u16 tag | u32 length | length bytes
 *
 * All integers are little-endian. A reader refuses a frame whose magic is
 * wrong or whose length exceeds the limit for its type (ipc_limit_fn), and a
 * field whose length runs past the body. One descriptor may travel with a
 * frame (SCM_RIGHTS). Everything read here is untrusted: callers validate
 * each field with the typed getters, which check lengths and content.
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "evloop.h"

#define IPC_MAGIC 0x4e545350u     /* "PSTN" */
#define IPC_HDR_LEN 16
#define IPC_MAX_BODY (4u << 20)   /* absolute ceiling for any frame */

/* ---- building a frame ---- */

struct ipc_out {
    struct buf b;       /* header + body, ready to send */
    int framed;         /* begins with a frame header */
    int failed;         /* set when a field would overflow the limit */
};

/* Header flag: a descriptor travels with this frame. */
#define IPC_F_FD 0x0001

void ipc_out_begin(struct ipc_out *m, uint16_t type, uint32_t reqid);
void ipc_out_str(struct ipc_out *m, uint16_t tag, const char *s);
void ipc_out_bytes(struct ipc_out *m, uint16_t tag, const void *p, size_t len);
void ipc_out_u64(struct ipc_out *m, uint16_t tag, uint64_t v);
/* Nests an already built body (e.g. one recipient) as a field. */
void ipc_out_nested(struct ipc_out *m, uint16_t tag, const struct ipc_out *inner);
/* Starts a bare body with no frame header (for nested fields and records). */
void ipc_body_begin(struct ipc_out *m);
/* Fills in the header length; -1 if any append failed. */
int ipc_out_finish(struct ipc_out *m);
void ipc_out_free(struct ipc_out *m);

/* ---- reading a frame ---- */

struct ipc_msg {
    uint16_t type;
    uint16_t flags;
    uint32_t reqid;
    const unsigned char *body;
    size_t len;
    int fd;             /* passed descriptor, or -1 */
};

struct ipc_field {
    uint16_t tag;
    const unsigned char *val;
    size_t len;
};

/* Iterates fields of a body. Returns 1 and fills f, 0 at the end, -1 on a
 * malformed body (a field running past the end). */
struct ipc_iter { const unsigned char *p, *end; };
void ipc_iter_init(struct ipc_iter *it, const unsigned char *body, size_t len);
int ipc_iter_next(struct ipc_iter *it, struct ipc_field *f);

/* Typed getters: -1 if the field has the wrong size or content. */
int ipc_field_u64(const struct ipc_field *f, uint64_t *out);
/* Copies a text field: no NUL or control bytes other than TAB, fits outlen. */
int ipc_field_str(const struct ipc_field *f, char *out, size_t outlen);

/*
 * Parses one frame header from bytes; returns the total frame length needed
 * (header + body) once the header is complete and valid, 0 if more bytes are
 * needed, -1 if the header is invalid or the body length is over limit(type).
 */
typedef size_t (*ipc_limit_fn)(uint16_t type);
long ipc_frame_check(const unsigned char *p, size_t n, ipc_limit_fn limit);

/* ---- a non-blocking connection ---- */

struct ipc_conn {
    int fd;
    struct buf in, out;
    int fdq[16];                /* received descriptors not yet claimed */
    size_t nfdq;
    int outfd[64];              /* descriptors to send */
    uint64_t outfd_pos[64];     /* stream offset of the frame each belongs to */
    size_t noutfd;
    uint64_t out_queued, out_sent; /* stream offsets, for outfd_pos */
    ipc_limit_fn limit;
    struct ipc_msg cur;         /* last frame returned by ipc_conn_next */
    size_t cur_len;
};

void ipc_conn_init(struct ipc_conn *c, int fd, ipc_limit_fn limit);
/* A server's new peer: ipc_conn_init, then the descriptor watched for
 * input by the event loop (cb with arg). -1 (the connection closed) when
 * the loop cannot take it. */
int ipc_conn_watch(struct ipc_conn *c, int fd, ipc_limit_fn limit, struct evloop *ev, ev_fd_cb cb, void *arg);
/* Closes the socket and any descriptors still queued. */
void ipc_conn_close(struct ipc_conn *c);
/* Queues a finished frame (and optionally a descriptor, which is dup'ed). */
int ipc_conn_send(struct ipc_conn *c, const struct ipc_out *m, int fd);
/* Writes queued bytes; 1 when all sent, 0 when the socket would block, -1 on error. */
int ipc_conn_flush(struct ipc_conn *c);
static inline int ipc_conn_want_write(const struct ipc_conn *c) { return c->out.len > 0; }
/* Reads what the socket has; 1 read something, 0 would block, -1 error or EOF. */
int ipc_conn_read(struct ipc_conn *c);
/* Returns 1 with the next whole frame in *m (valid until the next call),
 * 0 when none is complete, -1 on a bad frame (caller closes the connection).
 * A descriptor that came with the frame is in m->fd; the caller owns it. */
int ipc_conn_next(struct ipc_conn *c, struct ipc_msg *m);

/* ---- blocking use, for command-line tools ---- */

/* Connects to a UNIX socket path (non-blocking); -1 with errno. */
int ipc_connect_unix(const char *path);
/* Queues a frame and waits until it is written; -1 on error or timeout. */
int ipc_conn_send_wait(struct ipc_conn *c, const struct ipc_out *m, int fd, int timeout_ms);
/* Waits for the next frame: 1 with *m, 0 on timeout, -1 on error, EOF or a bad frame. */
int ipc_conn_recv_wait(struct ipc_conn *c, struct ipc_msg *m, int timeout_ms);

#endif
