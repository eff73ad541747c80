/*
 * policy.c - relay control (policy.h). Must never look at the network:
 * the peer address is the one kept from accept(), so a decision costs no
 * system call.
 */
#include "policy.h"

int policy_rcpt_allowed(const struct config *cfg, const struct sockaddr *peer, const struct addr *rcpt)
{
    if (rcpt->domain[0] == 0 || (!rcpt->is_literal && config_is_local_domain(cfg, rcpt->domain)))
        return 1;
    return cidr_list_match(&cfg->relay_networks, peer);
}
