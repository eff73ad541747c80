/*
 * link.h - a client link from one Postern process to another over a UNIX
 * socket, in the ipc.h frame format: the one way any process asks another
 * (smtpd and deliver to queue-mgr and the resolver).
 *
 * A link connects in the background and reconnects with backoff when the
 * peer goes away. Requests carry an id (link_new_id); the reply is handed to
 * the callback that asked, matched by id, never by order alone, and a reply
 * for an id never sent drops the link as a protocol error. When the link
 * drops, every request sent on it hears m == NULL; each reconnection bumps
 * the generation, so state tied to an older peer can be recognised.
 *
 * A request made while the link is down may wait up to wait_ms for it to
 * come back (it is sent as soon as it connects); if it does not, its
 * callback hears m == NULL at the deadline. A request's own callback is
 * never called from inside link_request(). A descriptor in a reply belongs
 * to the callback.
 */
#ifndef POSTERN_LINK_H
#define POSTERN_LINK_H

#include <stdint.h>
#include "evloop.h"
#include "ipc.h"

struct link;
typedef void (*link_cb)(void *arg, const struct ipc_msg *m);
/* A reply whose request was cancelled: the link's owner cleans up (a spool
 * file made for a session that has gone, say). The link closes m->fd after. */
typedef void (*link_orphan_fn)(struct link *l, const struct ipc_msg *m);

/* name: the peer, for logs ("queue-mgr"); path: its socket. Connects at
 * once if it can. NULL on OOM. */
struct link *link_new(struct evloop *ev, const char *name, const char *path, ipc_limit_fn limit);
void link_free(struct link *l);
void link_set_orphan(struct link *l, link_orphan_fn fn);
int link_up(const struct link *l);
unsigned link_generation(const struct link *l);
/* A fresh request id for ipc_out_begin(). Never 0. */
uint32_t link_new_id(struct link *l);
/* Sends (or, while down, holds for up to wait_ms) a frame built with an id
 * from link_new_id and an optional descriptor (-1; dup'ed). 0 when taken,
 * -1 when refused (down and wait_ms == 0, or out of memory). */
int link_request(struct link *l, struct ipc_out *m, int fd, uint32_t reqid, uint64_t wait_ms,
                 link_cb cb, void *arg);
/* Sends a frame that expects no reply, if the link is up. */
int link_notify(struct link *l, struct ipc_out *m);
/* The caller is gone: its callback is never called. A request still held
 * is dropped; a reply that comes later goes to the orphan handler. */
void link_cancel(struct link *l, uint32_t reqid);
/* Requests sent and not yet answered, plus those held (for tests and logs). */
unsigned link_pending(const struct link *l);

#endif
