/*
 * nexthop.h - the next-hop rules of RFC 5321 section 5.1 on an MX set that
 * was already looked up: null MX (RFC 7505), loops back to this host,
 * preference order with equal preferences shuffled, and the verdict once
 * every host's addresses are known. Pure logic: no DNS, no I/O.
 */
#ifndef POSTERN_NEXTHOP_H
#define POSTERN_NEXTHOP_H

#include <stddef.h>
#include <stdint.h>

#include "dnsclient.h"

struct nh_mx {
    uint16_t pref;
    char host[DNS_NAME_MAX + 1];    /* normalized, or "." */
};

enum nh_verdict {
    NH_USE,         /* mx[0..*kept) in the order to try */
    NH_NULLMX,      /* the domain accepts no mail: 5.1.10 */
    NH_LOOP,        /* every usable MX is this host or worse: 5.4.6 */
};

/* Returns a number in [0, n); the default uses arc4random_uniform. */
typedef uint32_t (*nh_random_fn)(uint32_t n, void *arg);

/*
 * Orders mx[0..n) in place. self is this host's name (normalized), or NULL.
 * Duplicate hosts keep their best preference; at most DNS_MAX_HOPS are kept.
 * rnd may be NULL for the default.
 */
enum nh_verdict nexthop_order(struct nh_mx *mx, size_t n, const char *self, nh_random_fn rnd,
                              void *arg, size_t *kept);

/*
 * Sets h->status, dsn and text from its hops once their addresses are known:
 * OK when any hop has an address; otherwise temporary when any look-up failed
 * temporarily, else permanent (5.4.4). Leaves h alone if already failed.
 */
void nexthop_verdict(struct dns_hops *h);

#endif
