/*
 * policy.h - who may do what: relay control now, AUTH and rate limits in
 * later issues. Decisions only; the command layer replies and logs.
 */
#ifndef POSTERN_SMTPD_POLICY_H
#define POSTERN_SMTPD_POLICY_H

#include <sys/socket.h>
#include "addr.h"
#include "config.h"

/* May a client at peer (the address accept() returned) send to rcpt?
 * Local domains are open to everyone, other domains only to clients in
 * relay_networks. */
int policy_rcpt_allowed(const struct config *cfg, const struct sockaddr *peer, const struct addr *rcpt);

#endif
