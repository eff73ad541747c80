/*
 * policy.c - relay control (policy.h). Must never look at the network for
 * an ordinary address: the peer address is the one kept from accept(), so
 * a decision costs no system call (only an address literal asks the socket
 * for its own address). Must never let a client outside relay_networks
 * without AUTH reach a remote address, however the address is dressed.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "util.h"

int policy_trusted(const struct config *cfg, const struct sockaddr *peer, const char *auth_user)
{
    return auth_user != NULL || cidr_list_match(&cfg->relay_networks, peer);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" into ss; -1 if neither. */
static int literal_addr(const char *dom, struct sockaddr_storage *ss)
{
    char tmp[ADDR_DOMAIN_MAX + 1];
    size_t n = strlen(dom);
    const char *ip;

    if (n < 3 || dom[0] != '[' || dom[n - 1] != ']' || n - 2 >= sizeof(tmp))
        return -1;
    memcpy(tmp, dom + 1, n - 2);
    tmp[n - 2] = 0;
    memset(ss, 0, sizeof(*ss));
    if (strncasecmp(tmp, "IPv6:", 5) == 0) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        ip = tmp + 5;
        s6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    return inet_pton(AF_INET, tmp, &s4->sin_addr) == 1 ? 0 : -1;
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    struct cidr c;
    struct cidr_list l;
    char text[64];

    /* one comparison for IPv4, IPv6 and IPv4-mapped: b as a /128 or /32 */
    if (b->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)b)->sin_addr, text, sizeof(text));
    else if (b->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)b)->sin6_addr, text, sizeof(text));
    else
        return 0;
    if (config_parse_cidr(text, &c) < 0)
        return 0;
    l.n = 1;
    l.v[0] = c;
    return cidr_list_match(&l, a);
}

/* Is ip this host: unspecified, loopback, a listener's, or the socket's? */
static int is_self(const struct config *cfg, int fd, const struct sockaddr *ip)
{
    const struct listen_list *ll[] = { &cfg->listen_smtp, &cfg->listen_submission, &cfg->listen_smtps };
    struct sockaddr_storage me;
    socklen_t ml = sizeof(me);

    if (ip->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ip)->sin_addr.s_addr);
        if (a == 0 || (a >> 24) == 127)
            return 1;
    } else {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ip)->sin6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(a) && (a->s6_addr[12] == 127 || !memcmp(a->s6_addr + 12, "\0\0\0\0", 4)))
            return 1;
    }
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < ll[i]->n; j++)
            if (same_ip(ip, (const struct sockaddr *)&ll[i]->v[j].ss))
                return 1;
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && same_ip(ip, (const struct sockaddr *)&me))
        return 1;
    return 0;
}

/* A local part that routes elsewhere: user%host, host!user, "user@host". */
static int routed(const struct addr *a)
{
    for (size_t i = 0; i < a->local_len; i++)
        if (a->mailbox[i] == '%' || a->mailbox[i] == '!' || a->mailbox[i] == '@')
            return 1;
    return 0;
}

/* user@[literal] -> user@first-local-domain; -1 when it does not fit. */
static int rewrite_local(const struct config *cfg, struct addr *a)
{
    const char *dom;
    size_t dl;

    if (cfg->local_domains.n == 0)
        return 0;
    dom = cfg->local_domains.v[0];
    dl = strlen(dom);
    if (a->local_len + 1 + dl > ADDR_MAX || dl > ADDR_DOMAIN_MAX)
        return -1;
    a->mailbox[a->local_len] = '@';
    memcpy(a->mailbox + a->local_len + 1, dom, dl + 1);
    memcpy(a->domain, dom, dl + 1);
    a->is_literal = 0;
    return 0;
}

enum policy_verdict policy_rcpt(const struct config *cfg, int trusted, int fd, struct addr *rcpt)
{
    if (rcpt->domain[0] == 0)
        return POLICY_LOCAL; /* <postmaster> */
    if (rcpt->is_literal) {
        struct sockaddr_storage ss;
        if (literal_addr(rcpt->domain, &ss) == 0) {
            if (cidr_list_match(&cfg->local_address_literals, (const struct sockaddr *)&ss)) {
                if (!trusted && routed(rcpt))
                    return POLICY_DENIED;
                return rewrite_local(cfg, rcpt) == 0 ? POLICY_LOCAL : POLICY_DENIED;
            }
            if (is_self(cfg, fd, (const struct sockaddr *)&ss))
                return trusted ? POLICY_LOOP : POLICY_DENIED;
        }
        return trusted ? POLICY_REMOTE : POLICY_DENIED;
    }
    if (config_is_local_domain(cfg, rcpt->domain))
        return !trusted && routed(rcpt) ? POLICY_DENIED : POLICY_LOCAL;
    return trusted ? POLICY_REMOTE : POLICY_DENIED;
}
