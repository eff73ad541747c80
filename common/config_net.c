/*
 * config_net.c - the network syntaxes of postern.conf values: networks
 * ("10.0.0.0/8", "::1/128"), listen addresses ("0.0.0.0:25", "[::]:25"),
 * DNS servers ("addr[@port]"), stub zones ("zone=addr[@port]") and the
 * relay host; and cidr_list_match(), the query on relay_networks.
 *
 * Only numeric addresses: nothing here resolves a name (the master runs
 * the reader as root, before any resolver exists). Every copy is bounded.
 */
#include "config_impl.h"
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static int parse_port(const char *s, unsigned *port)
{
    unsigned long long v;

    if (config_parse_uint(s, 1, 65535, &v) < 0)
        return -1;
    *port = (unsigned)v;
    return 0;
}

static int prefix_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int config_net_cidr(const char *s, struct cidr *out, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long long p;
    unsigned max, bytes;
    struct cidr c;

    memset(&c, 0, sizeof c);
    if (hlen == 0 || hlen >= sizeof host) {
        config_fmt(why, whylen, "\"%.100s\" is not a network address", s);
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, c.addr) == 1) {
        c.family = AF_INET; max = 32; bytes = 4;
    } else if (inet_pton(AF_INET6, host, c.addr) == 1) {
        c.family = AF_INET6; max = 128; bytes = 16;
    } else {
        config_fmt(why, whylen, "\"%.100s\" is not a network address", s);
        return -1;
    }
    c.prefix = max;
    if (slash != NULL) {
        if (config_parse_uint(slash + 1, 0, max, &p) < 0) {
            config_fmt(why, whylen, "\"%.100s\": bad prefix length (0..%u)", s, max);
            return -1;
        }
        c.prefix = (unsigned)p;
    }
    /* Host bits set is nearly always a typo for another network. */
    unsigned char masked[16];
    memcpy(masked, c.addr, bytes);
    for (unsigned bit = c.prefix; bit < max; bit++)
        masked[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    if (memcmp(masked, c.addr, bytes) != 0) {
        char net[INET6_ADDRSTRLEN];
        inet_ntop(c.family, masked, net, sizeof net);
        config_fmt(why, whylen, "\"%.100s\" has host bits set (network is %s/%u)", s, net, c.prefix);
        return -1;
    }
    *out = c;
    return 0;
}

int config_parse_cidr(const char *s, struct cidr *out)
{
    if (s == NULL || out == NULL)
        return -1;
    return config_net_cidr(s, out, NULL, 0);
}

int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
    unsigned char v4[4], v6[16];
    int have4 = 0;

    if (l == NULL || sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(v4, &sin->sin_addr, 4);
        have4 = 1;
        /* so that a ::ffff:0:0/96 network also matches plain IPv4 clients */
        memset(v6, 0, 10);
        v6[10] = v6[11] = 0xFF;
        memcpy(v6 + 12, v4, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(v6, &sin6->sin6_addr, 16);
        /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            memcpy(v4, v6 + 12, 4);
            have4 = 1;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < l->n && i < CONF_MAX_LIST; i++) {
        const struct cidr *c = &l->v[i];
        if (c->family == AF_INET && have4 && c->prefix <= 32 && prefix_match(c->addr, v4, c->prefix))
            return 1;
        if (c->family == AF_INET6 && c->prefix <= 128 && prefix_match(c->addr, v6, c->prefix))
            return 1;
    }
    return 0;
}

int config_net_listen(const char *s, struct listen_addr *out, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *hs, *he, *ps;
    unsigned port;
    struct listen_addr a;

    memset(&a, 0, sizeof a);
    if (config_copy(a.text, sizeof a.text, s) < 0) {
        config_fmt(why, whylen, "\"%.100s\" is too long for a listen address", s);
        return -1;
    }
    if (s[0] == '[') {
        hs = s + 1;
        if ((he = strchr(hs, ']')) == NULL || he[1] != ':') {
            config_fmt(why, whylen, "\"%s\": expected [IPv6]:port", s);
            return -1;
        }
        ps = he + 2;
    } else {
        hs = s;
        if ((he = strrchr(s, ':')) == NULL) {
            config_fmt(why, whylen, "\"%s\": missing :port", s);
            return -1;
        }
        ps = he + 1;
    }
    if (parse_port(ps, &port) < 0) {
        config_fmt(why, whylen, "\"%s\": bad port (1..65535)", s);
        return -1;
    }
    if ((size_t)(he - hs) >= sizeof host || he == hs) {
        config_fmt(why, whylen, "\"%s\": bad address", s);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';

    if (s[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            config_fmt(why, whylen, "\"%s\": not an IPv6 address", s);
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        a.sslen = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
        if (strcmp(host, "*") == 0) {
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            if (strchr(host, ':') != NULL)
                config_fmt(why, whylen, "\"%s\": write an IPv6 address as [addr]:port", s);
            else
                config_fmt(why, whylen, "\"%s\": not a numeric IPv4 address", s);
            return -1;
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        a.sslen = sizeof *sin;
    }
    *out = a;
    return 0;
}

int config_parse_listen(const char *s, struct listen_addr *out)
{
    if (s == NULL || out == NULL)
        return -1;
    return config_net_listen(s, out, NULL, 0);
}

/* "addr" or "addr@port", addr numeric IPv4 or IPv6. */
int config_net_server(const char *s)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    const char *at = strrchr(s, '@');
    size_t hlen = at ? (size_t)(at - s) : strlen(s);
    unsigned port;

    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
        return -1;
    if (at != NULL && parse_port(at + 1, &port) < 0)
        return -1;
    return 0;
}

/* "zone=addr[@port]" */
int config_net_stub(const char *s)
{
    const char *eq = strchr(s, '=');
    size_t zlen;

    if (eq == NULL)
        return -1;
    zlen = (size_t)(eq - s);
    if (zlen > 1 && s[zlen - 1] == '.')
        zlen--;                   /* "example.test." names the same zone */
    if (!addr_valid_domain(s, zlen, 0))
        return -1;
    return config_net_server(eq + 1);
}

/* "[host]:port", "host:port" or "host"; host is a name or, bracketed, an IP. */
int config_net_relayhost(const char *s)
{
    char host[256];
    unsigned char bin[16];
    const char *hs = s, *he, *rest;
    unsigned port;
    size_t hlen;

    if (s[0] == '[') {
        hs = s + 1;
        if ((he = strchr(hs, ']')) == NULL)
            return -1;
        rest = he + 1;
    } else {
        he = strchr(s, ':');
        if (he == NULL)
            he = s + strlen(s);
        rest = he;
    }
    if (*rest != '\0' && (*rest != ':' || parse_port(rest + 1, &port) < 0))
        return -1;
    hlen = (size_t)(he - hs);
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    if (addr_valid_domain(host, hlen, 0))
        return 0;
    if (s[0] != '[')
        return -1;
    if (strncasecmp(host, "ipv6:", 5) == 0)
        return inet_pton(AF_INET6, host + 5, bin) == 1 ? 0 : -1;
    if (inet_pton(AF_INET6, host, bin) == 1 || inet_pton(AF_INET, host, bin) == 1)
        return 0;
    return -1;
}
