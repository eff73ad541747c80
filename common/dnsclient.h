/*
 * dnsclient.h - the resolver's request and answer frames (proto.h R_*), for
 * both ends: deliver, queue-mgr and smtpd build requests and parse answers
 * here; the resolver parses requests and builds answers with the same code,
 * so the format is written down once.
 *
 * Everything parsed here came from another process: names, addresses,
 * counts and enum values are checked, a frame that fails any check is
 * refused as a whole. Nothing here does DNS or blocks.
 */
#ifndef POSTERN_DNSCLIENT_H
#define POSTERN_DNSCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ipc.h"

#define DNS_NAME_MAX 253        /* text form, without the trailing dot */
#define DNS_ADDR_MAX 46         /* INET6_ADDRSTRLEN */
#define DNS_MAX_RR 64           /* records kept from one answer */
#define DNS_DATA_MAX (32u << 10) /* TXT and TLSA bytes of one answer */
#define DNS_MAX_HOPS 16         /* MX hosts kept for one domain */
#define DNS_HOP_MAX_ADDR 16     /* addresses kept for one MX host, both families */
#define DNS_TEXT_MAX 256

enum dns_rtype { DNS_T_A = 1, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_TLSA = 52 };

enum dns_status {
    DNS_OK = 0,         /* records follow (next hops: at least one hop with addresses) */
    DNS_NODATA,         /* the name exists, no records of the type */
    DNS_NXDOMAIN,       /* the name does not exist */
    DNS_TEMPFAIL,       /* SERVFAIL, timeout, malformed or bogus answer: try later */
    DNS_PERMFAIL,       /* next hops only: bounce with the DSN code given */
};

enum dns_security { DNS_INSECURE = 0, DNS_SECURE, DNS_BOGUS };

struct dns_rr {
    uint16_t pref;                  /* MX preference */
    char host[DNS_NAME_MAX + 1];    /* MX target; "." for a null MX (RFC 7505) */
    char addr[DNS_ADDR_MAX];        /* A or AAAA, numeric text */
    uint8_t usage, selector, mtype; /* TLSA */
    const unsigned char *data;      /* TLSA association data, TXT strings joined; */
    size_t len;                     /* points into the answer's arena */
};

struct dns_answer {
    uint16_t type;
    enum dns_status status;
    enum dns_security security;
    uint32_t ttl;
    char name[DNS_NAME_MAX + 1];    /* as asked */
    char canon[DNS_NAME_MAX + 1];   /* after CNAMEs, "" when the same */
    char text[DNS_TEXT_MAX];        /* why, for a failure */
    size_t nrr;
    struct dns_rr rr[DNS_MAX_RR];
    size_t arena_used;
    unsigned char arena[DNS_DATA_MAX];
};

struct dns_hop {
    char host[DNS_NAME_MAX + 1];
    uint16_t pref;
    int implicit;                   /* the domain itself: it has no MX */
    enum dns_status status;         /* of its address look-ups */
    enum dns_security security;     /* the weaker of its AAAA and A answers */
    size_t naddr;                   /* IPv6 first, then IPv4 */
    char addr[DNS_HOP_MAX_ADDR][DNS_ADDR_MAX];
};

struct dns_hops {
    char domain[DNS_NAME_MAX + 1];
    enum dns_status status;         /* DNS_OK, DNS_TEMPFAIL or DNS_PERMFAIL */
    enum dns_security security;     /* of the MX answer */
    char dsn[16];                   /* "5.1.10", "5.1.2", "5.4.6", "4.4.3" ... */
    char text[DNS_TEXT_MAX];
    size_t nhop;                    /* in the order to try */
    struct dns_hop hop[DNS_MAX_HOPS];
};

/* Checks and normalizes a DNS name of len bytes: labels of 1..63 letters,
 * digits, '-' or '_', at most DNS_NAME_MAX in all, one trailing dot allowed
 * and removed, lower-cased into out (DNS_NAME_MAX + 1 bytes). -1 if invalid. */
int dns_name_normalize(const char *in, size_t len, char *out);
/* Is type one the resolver serves? */
int dns_type_supported(uint64_t type);
const char *dns_type_name(uint16_t type);
const char *dns_status_name(enum dns_status s);
const char *dns_security_name(enum dns_security s);

/* Requests: a finished frame in m (free with ipc_out_free); -1 if the name
 * or type is not valid (m is then empty and need not be freed). */
int dnsc_lookup_request(struct ipc_out *m, uint32_t reqid, const char *name, uint16_t type);
int dnsc_nexthops_request(struct ipc_out *m, uint32_t reqid, const char *domain);

/* The resolver's side: parse a request (-1 with why when invalid). */
int dnsc_parse_lookup(const struct ipc_msg *m, char *name, uint16_t *type, char *why, size_t whylen);
int dnsc_parse_nexthops(const struct ipc_msg *m, char *domain, char *why, size_t whylen);

/* Answers: encode into a finished frame (-1 if it does not fit). */
int dnsc_answer_encode(struct ipc_out *m, uint32_t reqid, const struct dns_answer *a);
int dnsc_hops_encode(struct ipc_out *m, uint32_t reqid, const struct dns_hops *h);
void dnsc_error_encode(struct ipc_out *m, uint32_t reqid, const char *code, const char *text);

/* A hop address (as parsed here) and a port as a socket address; returns
 * AF_INET6 or AF_INET, or -1 if addr is not numeric. */
int dnsc_sockaddr(const char *addr, unsigned port, struct sockaddr_storage *ss, socklen_t *sslen);

/* Adds data to the answer's arena and returns where it went, NULL if full. */
const unsigned char *dns_answer_keep(struct dns_answer *a, const void *p, size_t len);

/*
 * Parse an R_ANSWER or R_HOPS frame. 0 on success; -1 with why when the frame
 * is of another type, malformed, or an R_ERROR (why then holds its text).
 */
int dnsc_answer_parse(const struct ipc_msg *m, struct dns_answer *a, char *why, size_t whylen);
int dnsc_hops_parse(const struct ipc_msg *m, struct dns_hops *h, char *why, size_t whylen);

#endif
