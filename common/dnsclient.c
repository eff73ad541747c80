/*
 * dnsclient.c - resolver request and answer frames (dnsclient.h).
 *
 * The decoders are the trust boundary between the resolver and the
 * processes that use its answers (and the other way round for requests):
 * they never assume a field is present, of the right size or in range, and
 * must never hand back a name or an address that was not checked here.
 */
#include "dnsclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "util.h"

int dns_name_normalize(const char *in, size_t len, char *out)
{
    size_t label = 0;

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            label++;
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = (unsigned char)(ch - 'A' + 'a');
            label++;
        } else {
            return -1;
        }
        if (label > 63)
            return -1;
        out[i] = (char)ch;
    }
    if (label == 0)
        return -1;
    out[len] = '\0';
    return 0;
}

int dns_type_supported(uint64_t type)
{
    return type == DNS_T_A || type == DNS_T_MX || type == DNS_T_TXT || type == DNS_T_AAAA ||
           type == DNS_T_TLSA;
}

const char *dns_type_name(uint16_t type)
{
    switch (type) {
    case DNS_T_A: return "A";
    case DNS_T_MX: return "MX";
    case DNS_T_TXT: return "TXT";
    case DNS_T_AAAA: return "AAAA";
    case DNS_T_TLSA: return "TLSA";
    default: return "?";
    }
}

const char *dns_status_name(enum dns_status s)
{
    static const char *const names[] = { "ok", "nodata", "nxdomain", "tempfail", "permfail" };
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "?";
}

const char *dns_security_name(enum dns_security s)
{
    static const char *const names[] = { "insecure", "secure", "bogus" };
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "?";
}

const unsigned char *dns_answer_keep(struct dns_answer *a, const void *p, size_t len)
{
    unsigned char *at;

    if (len > sizeof a->arena - a->arena_used)
        return NULL;
    at = a->arena + a->arena_used;
    if (len)
        memcpy(at, p, len);
    a->arena_used += len;
    return at;
}

int dnsc_sockaddr(const char *addr, unsigned port, struct sockaddr_storage *ss, socklen_t *sslen)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (port > 65535)
        return -1;
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *v6;
        return AF_INET6;
    }
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *v4;
        return AF_INET;
    }
    return -1;
}

static void why_set(char *why, size_t whylen, const char *text)
{
    if (why && whylen)
        str_copy(why, text, whylen);
}

/* ---------------------------------------------------------------- requests */

int dnsc_lookup_request(struct ipc_out *m, uint32_t reqid, const char *name, uint16_t type)
{
    char norm[DNS_NAME_MAX + 1];

    if (!name || dns_name_normalize(name, strlen(name), norm) < 0 || !dns_type_supported(type))
        return -1;
    ipc_out_begin(m, R_LOOKUP, reqid);
    ipc_out_str(m, T_DNS_NAME, norm);
    ipc_out_u64(m, T_DNS_TYPE, type);
    if (ipc_out_finish(m) < 0) {
        ipc_out_free(m);
        return -1;
    }
    return 0;
}

int dnsc_nexthops_request(struct ipc_out *m, uint32_t reqid, const char *domain)
{
    char norm[DNS_NAME_MAX + 1];

    if (!domain || dns_name_normalize(domain, strlen(domain), norm) < 0)
        return -1;
    ipc_out_begin(m, R_NEXTHOPS, reqid);
    ipc_out_str(m, T_DNS_NAME, norm);
    if (ipc_out_finish(m) < 0) {
        ipc_out_free(m);
        return -1;
    }
    return 0;
}

/* A name field: text, then the DNS name rules. */
static int field_name(const struct ipc_field *f, char *out)
{
    char tmp[DNS_NAME_MAX + 2];

    if (ipc_field_str(f, tmp, sizeof tmp) < 0)
        return -1;
    return dns_name_normalize(tmp, strlen(tmp), out);
}

int dnsc_parse_lookup(const struct ipc_msg *m, char *name, uint16_t *type, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t t = 0;
    int have_name = 0, have_type = 0, r;

    if (m->type != R_LOOKUP) {
        why_set(why, whylen, "not a look-up request");
        return -1;
    }
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_DNS_NAME) {
            if (have_name++ || field_name(&f, name) < 0) {
                why_set(why, whylen, "bad or repeated name");
                return -1;
            }
        } else if (f.tag == T_DNS_TYPE) {
            if (have_type++ || ipc_field_u64(&f, &t) < 0 || !dns_type_supported(t)) {
                why_set(why, whylen, "bad, unsupported or repeated type");
                return -1;
            }
        }
    }
    if (r < 0 || !have_name || !have_type) {
        why_set(why, whylen, r < 0 ? "malformed body" : "name and type required");
        return -1;
    }
    *type = (uint16_t)t;
    return 0;
}

int dnsc_parse_nexthops(const struct ipc_msg *m, char *domain, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    int have = 0, r;

    if (m->type != R_NEXTHOPS) {
        why_set(why, whylen, "not a next-hop request");
        return -1;
    }
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_DNS_NAME && (have++ || field_name(&f, domain) < 0)) {
            why_set(why, whylen, "bad or repeated domain");
            return -1;
        }
    }
    if (r < 0 || !have) {
        why_set(why, whylen, r < 0 ? "malformed body" : "domain required");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- answers */

void dnsc_error_encode(struct ipc_out *m, uint32_t reqid, const char *code, const char *text)
{
    ipc_out_begin(m, R_ERROR, reqid);
    ipc_out_str(m, T_CODE, code);
    ipc_out_str(m, T_TEXT, text);
    ipc_out_finish(m);
}

static void encode_rr(struct ipc_out *m, uint16_t type, const struct dns_rr *rr)
{
    struct ipc_out in;
    unsigned char tlsa[3];

    ipc_body_begin(&in);
    switch (type) {
    case DNS_T_MX:
        ipc_out_u64(&in, T_DNS_PREF, rr->pref);
        ipc_out_str(&in, T_DNS_HOST, rr->host);
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        ipc_out_str(&in, T_DNS_ADDR, rr->addr);
        break;
    case DNS_T_TLSA:
        tlsa[0] = rr->usage;
        tlsa[1] = rr->selector;
        tlsa[2] = rr->mtype;
        ipc_out_bytes(&in, T_DNS_PREF, tlsa, sizeof tlsa);
        ipc_out_bytes(&in, T_DNS_DATA, rr->data, rr->len);
        break;
    default: /* TXT */
        ipc_out_bytes(&in, T_DNS_DATA, rr->data, rr->len);
        break;
    }
    ipc_out_nested(m, T_DNS_RR, &in);
    ipc_out_free(&in);
}

int dnsc_answer_encode(struct ipc_out *m, uint32_t reqid, const struct dns_answer *a)
{
    ipc_out_begin(m, R_ANSWER, reqid);
    ipc_out_str(m, T_DNS_NAME, a->name);
    ipc_out_u64(m, T_DNS_TYPE, a->type);
    ipc_out_u64(m, T_DNS_STATUS, a->status);
    ipc_out_u64(m, T_DNS_SECURITY, a->security);
    ipc_out_u64(m, T_DNS_TTL, a->ttl);
    if (a->canon[0])
        ipc_out_str(m, T_DNS_CANON, a->canon);
    if (a->text[0])
        ipc_out_str(m, T_TEXT, a->text);
    for (size_t i = 0; i < a->nrr && i < DNS_MAX_RR; i++)
        encode_rr(m, a->type, &a->rr[i]);
    return ipc_out_finish(m);
}

int dnsc_hops_encode(struct ipc_out *m, uint32_t reqid, const struct dns_hops *h)
{
    ipc_out_begin(m, R_HOPS, reqid);
    ipc_out_str(m, T_DNS_NAME, h->domain);
    ipc_out_u64(m, T_DNS_STATUS, h->status);
    ipc_out_u64(m, T_DNS_SECURITY, h->security);
    if (h->dsn[0])
        ipc_out_str(m, T_DNS_DSN, h->dsn);
    if (h->text[0])
        ipc_out_str(m, T_TEXT, h->text);
    for (size_t i = 0; i < h->nhop && i < DNS_MAX_HOPS; i++) {
        const struct dns_hop *p = &h->hop[i];
        struct ipc_out in;
        ipc_body_begin(&in);
        ipc_out_str(&in, T_DNS_HOST, p->host);
        ipc_out_u64(&in, T_DNS_PREF, p->pref);
        ipc_out_u64(&in, T_DNS_IMPLICIT, p->implicit ? 1 : 0);
        ipc_out_u64(&in, T_DNS_STATUS, p->status);
        ipc_out_u64(&in, T_DNS_SECURITY, p->security);
        for (size_t j = 0; j < p->naddr && j < DNS_HOP_MAX_ADDR; j++)
            ipc_out_str(&in, T_DNS_ADDR, p->addr[j]);
        ipc_out_nested(m, T_DNS_HOP, &in);
        ipc_out_free(&in);
    }
    return ipc_out_finish(m);
}

/* A numeric address of the given family (0: either); normalized. */
static int field_addr(const struct ipc_field *f, int family, char *out)
{
    char tmp[DNS_ADDR_MAX];
    unsigned char bin[16];

    if (ipc_field_str(f, tmp, sizeof tmp) < 0)
        return -1;
    if ((family == 0 || family == AF_INET6) && inet_pton(AF_INET6, tmp, bin) == 1)
        return inet_ntop(AF_INET6, bin, out, DNS_ADDR_MAX) ? 0 : -1;
    if ((family == 0 || family == AF_INET) && inet_pton(AF_INET, tmp, bin) == 1)
        return inet_ntop(AF_INET, bin, out, DNS_ADDR_MAX) ? 0 : -1;
    return -1;
}

/* The text of an R_ERROR, into out (DNS_TEXT_MAX) and why. */
static void error_text(const struct ipc_msg *m, char *out, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    char text[DNS_TEXT_MAX - 16] = "";

    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1)
        if (f.tag == T_TEXT && ipc_field_str(&f, text, sizeof text) < 0)
            text[0] = '\0';
    snprintf(out, DNS_TEXT_MAX, "resolver: %s", text[0] ? text : "error");
    why_set(why, whylen, out);
}

static int field_enum(const struct ipc_field *f, uint64_t max, int *out)
{
    uint64_t v;

    if (ipc_field_u64(f, &v) < 0 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_rr(const struct ipc_field *outer, struct dns_answer *a, struct dns_rr *rr)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t v;
    int r, seen = 0;

    memset(rr, 0, sizeof *rr);
    ipc_iter_init(&it, outer->val, outer->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (a->type) {
        case DNS_T_MX:
            if (f.tag == T_DNS_PREF) {
                if (ipc_field_u64(&f, &v) < 0 || v > 65535)
                    return -1;
                rr->pref = (uint16_t)v;
                seen |= 1;
            } else if (f.tag == T_DNS_HOST) {
                if (f.len == 1 && f.val[0] == '.')
                    str_copy(rr->host, ".", sizeof rr->host);
                else if (field_name(&f, rr->host) < 0)
                    return -1;
                seen |= 2;
            }
            break;
        case DNS_T_A:
        case DNS_T_AAAA:
            if (f.tag == T_DNS_ADDR) {
                if (field_addr(&f, a->type == DNS_T_A ? AF_INET : AF_INET6, rr->addr) < 0)
                    return -1;
                seen = 3;
            }
            break;
        case DNS_T_TLSA:
            if (f.tag == T_DNS_PREF) {
                if (f.len != 3)
                    return -1;
                rr->usage = f.val[0];
                rr->selector = f.val[1];
                rr->mtype = f.val[2];
                seen |= 1;
            }
            /* the data field is shared with TXT */
            /* fall through */
        default:
            if (f.tag == T_DNS_DATA) {
                if ((rr->data = dns_answer_keep(a, f.val, f.len)) == NULL)
                    return -1;
                rr->len = f.len;
                seen |= a->type == DNS_T_TLSA ? 2 : 3;
            }
            break;
        }
    }
    return r == 0 && seen == 3 ? 0 : -1;
}

int dnsc_answer_parse(const struct ipc_msg *m, struct dns_answer *a, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t v;
    int r, have = 0, st = 0, sec = 0;
    size_t nrr_fields = 0;

    memset(a, 0, offsetof(struct dns_answer, arena));
    if (m->type == R_ERROR) {
        error_text(m, a->text, why, whylen);
        return -1;
    }
    if (m->type != R_ANSWER) {
        why_set(why, whylen, "not a resolver answer");
        return -1;
    }
    /* The type decides how records read: find it first. */
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_DNS_TYPE) {
            if (ipc_field_u64(&f, &v) < 0 || !dns_type_supported(v))
                goto bad;
            a->type = (uint16_t)v;
            have |= 1;
        } else if (f.tag == T_DNS_RR) {
            nrr_fields++;
        }
    }
    if (r < 0 || !(have & 1) || nrr_fields > DNS_MAX_RR)
        goto bad;
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_DNS_NAME:
            if (field_name(&f, a->name) < 0)
                goto bad;
            have |= 2;
            break;
        case T_DNS_CANON:
            if (field_name(&f, a->canon) < 0)
                goto bad;
            break;
        case T_DNS_STATUS:
            if (field_enum(&f, DNS_TEMPFAIL, &st) < 0)
                goto bad;
            have |= 4;
            break;
        case T_DNS_SECURITY:
            if (field_enum(&f, DNS_BOGUS, &sec) < 0)
                goto bad;
            break;
        case T_DNS_TTL:
            if (ipc_field_u64(&f, &v) < 0 || v > UINT32_MAX)
                goto bad;
            a->ttl = (uint32_t)v;
            break;
        case T_TEXT:
            if (ipc_field_str(&f, a->text, sizeof a->text) < 0)
                goto bad;
            break;
        case T_DNS_RR:
            if (parse_rr(&f, a, &a->rr[a->nrr]) < 0)
                goto bad;
            a->nrr++;
            break;
        }
    }
    if (r < 0 || (have & 6) != 6)
        goto bad;
    a->status = (enum dns_status)st;
    a->security = (enum dns_security)sec;
    if ((a->status == DNS_OK) != (a->nrr > 0))
        goto bad;
    return 0;
bad:
    why_set(why, whylen, "malformed resolver answer");
    return -1;
}

static int parse_hop(const struct ipc_field *outer, struct dns_hop *p)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t v;
    int r, have = 0, e;

    memset(p, 0, sizeof *p);
    ipc_iter_init(&it, outer->val, outer->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_DNS_HOST:
            if (field_name(&f, p->host) < 0)
                return -1;
            have |= 1;
            break;
        case T_DNS_PREF:
            if (ipc_field_u64(&f, &v) < 0 || v > 65535)
                return -1;
            p->pref = (uint16_t)v;
            break;
        case T_DNS_IMPLICIT:
            if (field_enum(&f, 1, &p->implicit) < 0)
                return -1;
            break;
        case T_DNS_STATUS:
            if (field_enum(&f, DNS_TEMPFAIL, &e) < 0)
                return -1;
            p->status = (enum dns_status)e;
            have |= 2;
            break;
        case T_DNS_SECURITY:
            if (field_enum(&f, DNS_BOGUS, &e) < 0)
                return -1;
            p->security = (enum dns_security)e;
            break;
        case T_DNS_ADDR:
            if (p->naddr >= DNS_HOP_MAX_ADDR || field_addr(&f, 0, p->addr[p->naddr]) < 0)
                return -1;
            p->naddr++;
            break;
        }
    }
    if (r < 0 || have != 3 || (p->status == DNS_OK) != (p->naddr > 0))
        return -1;
    return 0;
}

static int field_dsn(const struct ipc_field *f, char *out, size_t outlen)
{
    unsigned cls, sub, det;
    char tail;

    if (ipc_field_str(f, out, outlen) < 0)
        return -1;
    if (sscanf(out, "%1u.%3u.%3u%c", &cls, &sub, &det, &tail) != 3 || (cls != 4 && cls != 5))
        return -1;
    return 0;
}

int dnsc_hops_parse(const struct ipc_msg *m, struct dns_hops *h, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    int r, have = 0, e;

    memset(h, 0, sizeof *h);
    if (m->type == R_ERROR) {
        error_text(m, h->text, why, whylen);
        return -1;
    }
    if (m->type != R_HOPS) {
        why_set(why, whylen, "not a next-hop answer");
        return -1;
    }
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_DNS_NAME:
            if (field_name(&f, h->domain) < 0)
                goto bad;
            have |= 1;
            break;
        case T_DNS_STATUS:
            if (field_enum(&f, DNS_PERMFAIL, &e) < 0)
                goto bad;
            h->status = (enum dns_status)e;
            have |= 2;
            break;
        case T_DNS_SECURITY:
            if (field_enum(&f, DNS_BOGUS, &e) < 0)
                goto bad;
            h->security = (enum dns_security)e;
            break;
        case T_DNS_DSN:
            if (field_dsn(&f, h->dsn, sizeof h->dsn) < 0)
                goto bad;
            break;
        case T_TEXT:
            if (ipc_field_str(&f, h->text, sizeof h->text) < 0)
                goto bad;
            break;
        case T_DNS_HOP:
            if (h->nhop >= DNS_MAX_HOPS || parse_hop(&f, &h->hop[h->nhop]) < 0)
                goto bad;
            h->nhop++;
            break;
        }
    }
    if (r < 0 || have != 3)
        goto bad;
    /* Only the three outcomes a next-hop answer may have, each consistent:
     * usable hops, or a DSN code that says how to fail. */
    switch (h->status) {
    case DNS_OK:
        if (h->nhop == 0)
            goto bad;
        break;
    case DNS_TEMPFAIL:
        if (h->dsn[0] && h->dsn[0] != '4')
            goto bad;
        break;
    case DNS_PERMFAIL:
        if (h->dsn[0] != '5')
            goto bad;
        break;
    default:
        goto bad;
    }
    return 0;
bad:
    why_set(why, whylen, "malformed resolver answer");
    return -1;
}
