/*
 * ubsetup.h - builds the libunbound context from the configuration:
 * dns_forwarders, dns_stub_zones, dnssec_trust_anchor_file, threads for
 * asynchronous look-ups. Call before the chroot: it reads the trust anchor.
 */
#ifndef POSTERN_UBSETUP_H
#define POSTERN_UBSETUP_H

#include <stddef.h>
#include <unbound.h>

#include "config.h"
#include "dnsclient.h"

/* A finalized context, or NULL with a start-up error in err. */
struct ub_ctx *ubsetup_create(const struct config *c, char *err, size_t errlen);

#endif
