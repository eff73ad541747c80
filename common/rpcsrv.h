/*
 * rpcsrv.h - a request server on UNIX sockets and an event loop, for the
 * daemons that answer ipc requests (auth, the local role's quota server,
 * the resolver).
 *
 * It accepts only this process's uid and the allowed ones (SO_PEERCRED,
 * net_accept_from), bounds the clients and each client's unread answers,
 * reads frames, and cuts off a client that sends a descriptor, a frame of
 * a type it does not take or a malformed frame (logged as "<peer> uid U
 * pid P: why; disconnecting"). Every other frame goes to on_frame, which
 * answers at once with rpcsrv_send(), or later: rpcsrv_later() gives an id
 * that outlives the client, and rpcsrv_settle() turns it back into the
 * client, or NULL once that client has gone (the answer is then dropped).
 */
#ifndef POSTERN_RPCSRV_H
#define POSTERN_RPCSRV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evloop.h"
#include "ipc.h"

#define RPCSRV_UIDS_MAX 8       /* allowed uids kept (more are ignored) */
#define RPCSRV_LISTEN_MAX 4     /* listening sockets per server */

struct rpcsrv;
struct rpc_client;

struct rpcsrv_conf {
    const char *peer;           /* who connects, in logs ("smtpd") */
    const char *sock;           /* the socket in accept logs, "<sock>: accept: ..."; NULL: "accept: ..." */
    const uint16_t *types;      /* frame types taken; ntypes 0: any (on_frame judges) */
    size_t ntypes;
    unsigned max_clients;       /* clients at once, beyond refused; 0: no bound */
    size_t out_max;             /* unread answer bytes before a client is cut off; 0: no bound */
    const uid_t *allowed;       /* uids besides our own that may connect */
    size_t nallowed;
    ipc_limit_fn limit;         /* frame size limits; NULL: proto_limit */
    /* A valid frame (m and its body only valid during the call). May send,
     * close c, or keep rpcsrv_later(c) to answer after returning. */
    void (*on_frame)(struct rpc_client *c, const struct ipc_msg *m, void *arg);
    void *arg;
};

/* A server on ev (conf copied, its strings must stay; at most 16 types).
 * NULL when out of memory or conf is wrong. */
struct rpcsrv *rpcsrv_new(struct evloop *ev, const struct rpcsrv_conf *conf);
/* Serves on the listening socket lfd, taken over (closed by
 * rpcsrv_close_listeners/rpcsrv_free) on success; -1 (lfd still the
 * caller's, errno set) when the loop cannot take it or too many. */
int rpcsrv_listen(struct rpcsrv *s, int lfd);
/* Stops accepting (draining); the clients are still served. */
void rpcsrv_close_listeners(struct rpcsrv *s);
/* Closes the listeners and every client (after writing what the sockets
 * take now), and frees s; not from on_frame. NULL is a no-op. */
void rpcsrv_free(struct rpcsrv *s);

/* Queues a finished frame for c; -1 (nothing changed, c still open) when
 * it cannot be queued. Inside on_frame the output is written after the
 * frames at hand; outside, now: c may then be closed by the time this
 * returns (a write error, or more than out_max unread), so the caller
 * must not use c afterwards. */
int rpcsrv_send(struct rpc_client *c, const struct ipc_out *m);
/* Closes c, logging why unless NULL; inside on_frame the memory stays until
 * it returns, and no more of c's frames are handed over. */
void rpcsrv_close(struct rpc_client *c, const char *why);

/* An answer c is owed later: the id to settle it by. */
uint64_t rpcsrv_later(struct rpc_client *c);
/* The answer owed under id is settled: its client to send it to, or NULL
 * when that client has gone. Each rpcsrv_later() is settled once. */
struct rpc_client *rpcsrv_settle(struct rpcsrv *s, uint64_t id);
/* Answers owed to c (rpcsrv_later not yet settled). */
unsigned rpcsrv_pending(const struct rpc_client *c);

uid_t rpcsrv_uid(const struct rpc_client *c);
pid_t rpcsrv_pid(const struct rpc_client *c);
/* Clients connected now. */
unsigned rpcsrv_clients(const struct rpcsrv *s);

#endif
