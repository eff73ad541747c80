/*
 * unixpeer.h - a fake Postern peer for unit suites: a listening UNIX
 * socket served from the suite's own event loop, one accepted client at a
 * time (a new one replaces the old), each frame handed to on_frame. For
 * the suites of link clients (test_link.c, test_rcptquota.c).
 */
#ifndef POSTERN_TEST_UNIXPEER_H
#define POSTERN_TEST_UNIXPEER_H

#include "evloop.h"
#include "ipc.h"

struct unixpeer {
    struct evloop *ev;
    char dir[64];               /* a temporary directory for the socket */
    char path[128];
    ipc_limit_fn limit;
    /* may send on p->conn, or unixpeer_close(p) */
    void (*on_frame)(struct unixpeer *p, const struct ipc_msg *m);
    int lfd, cfd;               /* -1 when not listening / no client */
    struct ipc_conn conn;       /* the client, while cfd >= 0 */
};

/* A suite's setup: a new event loop, and p (not listening yet) with its
 * socket at a fresh temporary directory/name. The loop, or NULL. */
struct evloop *unixpeer_open(struct unixpeer *p, const char *name, ipc_limit_fn limit,
                             void (*on_frame)(struct unixpeer *p, const struct ipc_msg *m));
/* The teardown: unixpeer_stop, the directory removed, the loop freed. */
void unixpeer_free(struct unixpeer *p);
/* Binds and listens at p->path (CUnit-fatal on failure). */
void unixpeer_listen(struct unixpeer *p);
/* Drops the client connection, if any. */
void unixpeer_close(struct unixpeer *p);
/* Drops the client, stops listening and removes the socket. */
void unixpeer_stop(struct unixpeer *p);
/* Sends a frame to the client and flushes it. */
void unixpeer_send(struct unixpeer *p, struct ipc_out *m);

#endif
