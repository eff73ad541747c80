/*
 * answer.c - libunbound result to dns_answer (answer.h).
 *
 * The rdata comes from the network, through libunbound: every length is
 * checked before a byte is read, and an answer that does not parse is a
 * temporary failure, never a permanent one and never a partial record.
 */
#include "answer.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

int answer_wire_name(const unsigned char *p, size_t n, char *out)
{
    char text[256];
    size_t pos = 0, tl = 0;
    int odd = 0;

    for (;;) {
        size_t l;
        if (pos >= n || pos >= 255)
            return -1;                  /* runs past the rdata, or over 255 octets */
        l = p[pos++];
        if (l == 0)
            break;
        if (l > 63 || pos + l > n || pos + l > 255)
            return -1;                  /* a compression pointer, or truncated */
        /* a dot or NUL inside a label would change the name's text form */
        if (memchr(p + pos, '.', l) || memchr(p + pos, '\0', l))
            odd = 1;
        if (tl)
            text[tl++] = '.';
        memcpy(text + tl, p + pos, l);
        tl += l;
        pos += l;
    }
    if (tl == 0) {
        str_copy(out, ".", DNS_NAME_MAX + 1);
        return (int)pos;
    }
    if (odd || dns_name_normalize(text, tl, out) < 0)
        out[0] = '\0';
    return (int)pos;
}

static const char *rcode_name(int rcode)
{
    switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "an error";
    }
}

static int parse_rdata(uint16_t type, const unsigned char *d, size_t n, struct dns_answer *a,
                       struct dns_rr *rr)
{
    memset(rr, 0, sizeof *rr);
    switch (type) {
    case DNS_T_A:
        return n == 4 && inet_ntop(AF_INET, d, rr->addr, sizeof rr->addr) ? 0 : -1;
    case DNS_T_AAAA:
        return n == 16 && inet_ntop(AF_INET6, d, rr->addr, sizeof rr->addr) ? 0 : -1;
    case DNS_T_MX: {
        int used;
        if (n < 3)
            return -1;
        rr->pref = (uint16_t)(d[0] << 8 | d[1]);
        used = answer_wire_name(d + 2, n - 2, rr->host);
        if (used < 0 || (size_t)used != n - 2)
            return -1;
        return rr->host[0] ? 0 : 1;     /* well formed, but no host name: skipped */
    }
    case DNS_T_TLSA:
        if (n < 3)
            return -1;
        rr->usage = d[0];
        rr->selector = d[1];
        rr->mtype = d[2];
        rr->len = n - 3;
        return (rr->data = dns_answer_keep(a, d + 3, n - 3)) ? 0 : -1;
    case DNS_T_TXT: {
        /* character-strings joined, as SPF (RFC 7208 3.3) and DKIM read them */
        unsigned char *start = a->arena + a->arena_used;
        size_t pos = 0;
        if (n == 0)
            return -1;
        while (pos < n) {
            size_t l = d[pos++];
            if (pos + l > n || !dns_answer_keep(a, d + pos, l))
                return -1;
            pos += l;
        }
        rr->data = start;
        rr->len = (size_t)(a->arena + a->arena_used - start);
        return 0;
    }
    default:
        return -1;
    }
}

void answer_from_ub(int err, const struct ub_result *res, uint16_t type, struct dns_answer *a)
{
    size_t skipped = 0;

    a->type = type;
    a->status = DNS_TEMPFAIL;
    a->security = DNS_INSECURE;
    a->ttl = 0;
    a->canon[0] = a->text[0] = '\0';
    a->nrr = 0;
    a->arena_used = 0;
    if (err != 0 || res == NULL) {
        snprintf(a->text, sizeof a->text, "resolver error: %s", err ? ub_strerror(err) : "no result");
        return;
    }
    a->security = res->secure ? DNS_SECURE : res->bogus ? DNS_BOGUS : DNS_INSECURE;
    if (res->bogus) {
        char why[160];
        log_sanitize(res->why_bogus ? res->why_bogus : "", res->why_bogus ? strlen(res->why_bogus) : 0,
                     why, sizeof why);
        snprintf(a->text, sizeof a->text, "DNSSEC validation failed%s%s", why[0] ? ": " : "", why);
        return;
    }
    if (res->canonname && res->qname && strcasecmp(res->canonname, res->qname) != 0) {
        char c[DNS_NAME_MAX + 1];
        if (dns_name_normalize(res->canonname, strlen(res->canonname), c) == 0 && strcmp(c, a->name))
            str_copy(a->canon, c, sizeof a->canon);
    }
    if (res->rcode == 3 || res->nxdomain) {
        a->status = DNS_NXDOMAIN;
        snprintf(a->text, sizeof a->text, "%.180s: no such domain (NXDOMAIN)", a->name);
        return;
    }
    if (res->rcode != 0) {
        snprintf(a->text, sizeof a->text, "%.180s %s: the name server answered %s",
                 a->name, dns_type_name(type), rcode_name(res->rcode));
        return;
    }
    if (!res->havedata || !res->data || !res->data[0]) {
        a->status = DNS_NODATA;
        a->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
        return;
    }
    for (size_t i = 0; res->data[i]; i++) {
        int r;
        if (a->nrr >= DNS_MAX_RR)
            break;
        r = res->len[i] < 0 ? -1 : parse_rdata(type, (const unsigned char *)res->data[i],
                                               (size_t)res->len[i], a, &a->rr[a->nrr]);
        if (r < 0) {
            a->nrr = 0;
            a->arena_used = 0;
            snprintf(a->text, sizeof a->text, "%.180s %s: malformed answer", a->name, dns_type_name(type));
            return;
        }
        if (r == 0)
            a->nrr++;
        else
            skipped++;
    }
    if (a->nrr == 0) {
        snprintf(a->text, sizeof a->text, "%.160s %s: no record names a valid host (%zu skipped)",
                 a->name, dns_type_name(type), skipped);
        return;
    }
    a->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
    a->status = DNS_OK;
}
