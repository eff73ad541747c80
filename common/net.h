/*
 * net.h - sockets: listeners, UNIX sockets and address text.
 */
#ifndef POSTERN_NET_H
#define POSTERN_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "config.h"

/* Binds and listens (SO_REUSEADDR, IPV6_V6ONLY for v6, non-blocking,
 * close-on-exec cleared by the caller before exec). -1 with err. */
int net_listen(const struct listen_addr *la, char *err, size_t errlen);

/* Creates a listening UNIX socket at path (unlinking a stale one), with mode. */
int net_listen_unix(const char *path, mode_t mode, char *err, size_t errlen);

/* "192.0.2.1" or "2001:db8::1" for an address (no port). */
void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);
/* Port of an AF_INET/AF_INET6 address. */
unsigned net_port(const struct sockaddr *sa);

/* Peer credentials of a UNIX socket; -1 on error. */
int net_peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid);
/* Accepts the next connection on a listening UNIX socket (non-blocking,
 * close-on-exec) together with its peer's uid and pid (SO_PEERCRED);
 * a connection whose credentials cannot be read is closed and skipped.
 * Returns the descriptor, or -1 when none is waiting (errno EAGAIN) or on
 * an error (errno set). */
int net_accept_peer(int lfd, uid_t *uid, pid_t *pid);
/* net_accept_peer() for a server that serves only some accounts: a peer
 * that is neither this process's own uid nor one of allowed[0..n) is
 * logged, closed and skipped. Same returns. */
int net_accept_from(int lfd, const uid_t *allowed, size_t n, uid_t *uid, pid_t *pid);

#endif
