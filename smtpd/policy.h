/*
 * policy.h - who may send to whom: relay control. Decisions only; the
 * command layer replies and logs.
 */
#ifndef POSTERN_SMTPD_POLICY_H
#define POSTERN_SMTPD_POLICY_H

#include <sys/socket.h>
#include "addr.h"
#include "config.h"

enum policy_verdict {
    POLICY_LOCAL,       /* a local domain (or a configured local address literal) */
    POLICY_REMOTE,      /* relayed: the client may relay */
    POLICY_DENIED,      /* 554 5.7.1 Relay access denied */
    POLICY_LOOP,        /* an address literal of this host that is not configured local */
};

/* May this client relay: in relay_networks, or authenticated (auth_user
 * not NULL)? */
int policy_trusted(const struct config *cfg, const struct sockaddr *peer, const char *auth_user);

/*
 * The verdict for rcpt from a client (trusted as policy_trusted says;
 * fd its socket, whose own address counts as this host's). Untrusted
 * clients get local domains only, and never sender-specified routing in a
 * local part (user%remote@local, remote!user@local, "user@remote"@local:
 * Postfix's allow_untrusted_routing = no). An address literal is local
 * only when it is in local_address_literals, and then rcpt is rewritten
 * to the same local part at the first of local_domains; a literal of this
 * host otherwise (loopback, a listener's address, the socket's own) is
 * DENIED for untrusted clients and LOOP for trusted ones.
 */
enum policy_verdict policy_rcpt(const struct config *cfg, int trusted, int fd, struct addr *rcpt);

#endif
