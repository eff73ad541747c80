/*
 * route.c - destinations and MX iteration decisions (route.h).
 *
 * Must never decide a bounce from a temporary failure: only the last
 * host's own 5xx (as the engine reports it) or its lack of SMTPUTF8 ends
 * a recipient for good.
 */
#include "route.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "util.h"

static int parse_port(const char *s, unsigned *port)
{
    char *end;
    unsigned long v;

    if (!*s || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    v = strtoul(s, &end, 10);
    if (*end || v < 1 || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

static int is_ip(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* "lmtp:unix:PATH", "lmtp:[inet:]HOST[:PORT]" (dest without "lmtp:"). */
static int route_parse_lmtp(const char *dest, struct route *r)
{
    if (strncasecmp(dest, "unix:", 5) == 0) {
        const char *path = dest + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof r->unix_path)
            return -1;
        for (const unsigned char *p = (const unsigned char *)path; *p; p++)
            if (*p < 0x21 || *p == 0x7f)
                return -1;
        memset(r, 0, sizeof *r);
        memcpy(r->unix_path, path, n + 1);
        str_copy(r->host, path, sizeof r->host);
        r->port = ROUTE_LMTP_PORT;
        r->no_mx = 1;
        r->lmtp = 1;
        return 0;
    }
    if (strncasecmp(dest, "inet:", 5) == 0)
        dest += 5;
    if (strncasecmp(dest, "lmtp:", 5) == 0 || route_parse(dest, "", ROUTE_LMTP_PORT, r) < 0)
        return -1;
    r->no_mx = 1;
    r->literal = is_ip(r->host);    /* "lmtp:127.0.0.1:24" needs no brackets */
    r->lmtp = 1;
    return 0;
}

int route_parse(const char *dest, const char *relayhost, unsigned default_port, struct route *r)
{
    char host[DNS_NAME_MAX + 1];
    const char *port = NULL;
    size_t n = strlen(dest);

    if (strncasecmp(dest, "lmtp:", 5) == 0)
        return route_parse_lmtp(dest + 5, r);
    memset(r, 0, sizeof *r);
    r->port = default_port;
    if (n == 0 || n > DNS_NAME_MAX + 8)
        return -1;
    r->relay = relayhost && relayhost[0] && strcasecmp(dest, relayhost) == 0;
    if (dest[0] == '[') {
        const char *close = strchr(dest, ']');
        if (!close || (size_t)(close - dest - 1) > DNS_NAME_MAX || close == dest + 1)
            return -1;
        memcpy(host, dest + 1, (size_t)(close - dest - 1));
        host[close - dest - 1] = '\0';
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return -1;
        r->no_mx = 1;
    } else {
        const char *colon = strchr(dest, ':');
        size_t hl = colon ? (size_t)(colon - dest) : n;
        if (hl > DNS_NAME_MAX || hl == 0)
            return -1;
        memcpy(host, dest, hl);
        host[hl] = '\0';
        if (colon)
            port = colon + 1;
    }
    if (port && parse_port(port, &r->port) < 0)
        return -1;
    if (r->no_mx && is_ip(host)) {
        str_copy(r->host, host, sizeof r->host);
        r->literal = 1;
        return 0;
    }
    if (dns_name_normalize(host, strlen(host), r->host) < 0)
        return -1;
    return 0;
}

void mx_init(struct mxiter *it, size_t nhop)
{
    memset(it, 0, sizeof *it);
    it->nhop = nhop;
}

enum mx_action mx_after(struct mxiter *it, enum smtpc_outcome o, int connected, int greeted)
{
    if (connected)
        it->connected = 1;
    if (greeted)
        it->reached = 1;
    it->no_smtputf8 = o == SMTPC_NO_SMTPUTF8;
    switch (o) {
    case SMTPC_DONE:
    case SMTPC_FAILED:
        return MX_FINISH;
    case SMTPC_TLS_FAILED:
        /* Opportunistic TLS: the next MX may do TLS right; only when no
         * host is left do the hosts whose handshake failed get a retry in
         * plain text, in order (as the major MTAs fall back). */
        if (!it->plain && it->hop < 64)
            it->tls_failed |= (uint64_t)1 << it->hop;
        __attribute__((fallthrough));
    case SMTPC_NEXT_MX:
    case SMTPC_NO_SMTPUTF8:
    default:
        if (!it->plain && it->hop + 1 < it->nhop) {
            it->hop++;
            return MX_NEXT;
        }
        /* the plain-text round: the next host after this one whose TLS failed */
        for (size_t h = it->plain ? it->hop + 1 : 0; h < it->nhop && h < 64; h++) {
            if (it->tls_failed & ((uint64_t)1 << h)) {
                it->hop = h;
                it->plain = 1;
                return MX_RETRY_PLAIN;
            }
        }
        return MX_FINISH;
    }
}

void mx_finish(const struct mxiter *it, struct smtpc_msg *m)
{
    if (!it->no_smtputf8)
        return;
    for (size_t i = 0; i < m->nrcpt; i++) {
        struct smtpc_rcpt *r = &m->rcpt[i];
        if (r->status == SMTPC_DEFERRED || r->status == SMTPC_PENDING) {
            r->status = SMTPC_BOUNCED;
            str_copy(r->dsn, "5.6.7", sizeof r->dsn);
            snprintf(r->reply, sizeof r->reply, "SMTPUTF8 is required, but was not offered by host %s",
                     m->relay[0] ? m->relay : "none");
        }
    }
}

unsigned mx_flags(const struct mxiter *it)
{
    unsigned f = 0;

    if (!it->connected)
        f |= D_F_DEST_UNREACHABLE;
    if (it->reached)
        f |= D_F_DEST_REACHED;
    return f;
}
