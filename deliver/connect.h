/*
 * connect.h - non-blocking connect to one host's address list, racing the
 * address families as RFC 8305 (Happy Eyeballs v2) describes: addresses
 * interleaved by family (the first address's family first), the next one
 * started after a head start (250 ms) or at once when one fails, the first
 * connection made wins and the others are closed. Each attempt has its own
 * connect timeout. A UNIX socket address (AF_UNIX, LMTP) must be the only
 * one; it is connected to as it is and the port is ignored. Never blocks,
 * never resolves names.
 */
#ifndef POSTERN_DELIVER_CONNECT_H
#define POSTERN_DELIVER_CONNECT_H

#include <stddef.h>
#include <sys/socket.h>

#include "evloop.h"

struct hev;
/* Exactly once: fd >= 0 connected (addr is the winner; fd is not in the
 * loop), or fd < 0 with err the last failure, shaped
 * "[IP]:PORT: reason" to follow a host name. The hev is gone after it. */
typedef void (*hev_cb)(int fd, const struct sockaddr_storage *addr, const char *err, void *arg);

struct hev *hev_start(struct evloop *ev, const struct sockaddr_storage *addrs, size_t n,
                      unsigned port, unsigned timeout_ms, unsigned stagger_ms, hev_cb cb, void *arg);
/* Stops every attempt; no callback follows. */
void hev_cancel(struct hev *h);

#endif
