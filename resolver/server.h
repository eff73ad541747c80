/*
 * server.h - the resolver's UNIX socket and its clients: R_LOOKUP and
 * R_NEXTHOPS requests in, answers out, each as one or more asynchronous
 * libunbound queries driven by ub_fd() in the event loop.
 */
#ifndef POSTERN_RESOLVER_SERVER_H
#define POSTERN_RESOLVER_SERVER_H

#include <stddef.h>
#include <sys/types.h>
#include <unbound.h>

#include "config.h"
#include "evloop.h"

/* listen_fd are the bound sockets (at most 2: RUN/resolver/resolver.sock
 * and the one in deliver's jail); peers are the uids (besides root and our
 * own) that may connect. c->hostname is this host, for loop detection. */
int rsv_start(struct evloop *ev, struct ub_ctx *ub, const int *listen_fd, size_t nlisten,
              const struct config *c, const uid_t *peers, size_t npeers, char *err, size_t errlen);
/* Stops taking connections on every socket (draining); open clients are
 * still served. */
void rsv_close_listener(void);
/* Look-ups in flight. */
unsigned rsv_jobs(void);
/* Drops every job and client. */
void rsv_stop(void);

#endif
