/*
 * config.c - reads postern.conf (SPEC.md section 3) into struct config.
 *
 * The file is read in two passes. The first splits it into logical lines
 * ("key = value", '#' comments, continuation lines that start with white
 * space) and catches syntax errors, unknown and duplicate keys. The second
 * expands $hostname, which therefore may be set anywhere in the file, and
 * parses each value with its type. Every error names FILE:LINE (the line
 * where the key starts); nothing is ignored and nothing is truncated.
 *
 * config_load() builds the result from fresh defaults plus the file, in a
 * scratch copy, and only replaces *c when the whole file is good: a reload
 * with a broken file leaves the running configuration alone, and a key
 * removed from the file goes back to its default.
 *
 * The master runs this as root, so it must not trust the file's size: lines
 * and values are bounded and every list holds at most CONF_MAX_LIST entries.
 */
#include "config.h"
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_LEN 8192       /* one physical line */
#define VALUE_MAX 32768         /* one logical value, continuations joined */
#define WHY_MAX 512

/* ---------------------------------------------------------------- helpers */

__attribute__((format(printf, 3, 4)))
static void fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}

/* Bounded copy that refuses instead of truncating. */
static int copy_str(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstlen)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int has_space(const char *s)
{
    for (; *s; s++)
        if (is_space((unsigned char)*s))
            return 1;
    return 0;
}

static void lower_str(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* A whole decimal number in [min, max]; no sign, no white space. */
static int parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    unsigned long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (ULLONG_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_port(const char *s, unsigned *port)
{
    unsigned long long v;

    if (parse_uint(s, 1, 65535, &v) < 0)
        return -1;
    *port = (unsigned)v;
    return 0;
}

/* Splits a list value on commas and white space; empty items are skipped. */
struct tokens {
    size_t n;
    char *v[CONF_MAX_LIST + 1];     /* one more, to notice overflow */
    char buf[VALUE_MAX];
};

static int split_list(const char *s, struct tokens *t)
{
    char *p;

    t->n = 0;
    if (copy_str(t->buf, sizeof t->buf, s) < 0)
        return -1;
    for (p = t->buf; *p;) {
        while (*p == ',' || is_space((unsigned char)*p))
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (t->n > CONF_MAX_LIST)
            return -1;
        t->v[t->n++] = p;
        while (*p && *p != ',' && !is_space((unsigned char)*p))
            p++;
    }
    return t->n > CONF_MAX_LIST ? -1 : 0;
}

static void strlist_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n && i < CONF_MAX_LIST; i++) {
        free(l->v[i]);
        l->v[i] = NULL;
    }
    l->n = 0;
}

static int strlist_has(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

static int strlist_add(struct strlist *l, const char *s)
{
    char *d;

    if (l->n >= CONF_MAX_LIST)
        return -1;
    if ((d = strdup(s)) == NULL)
        return -1;
    l->v[l->n++] = d;
    return 0;
}

/* --------------------------------------------------------- value parsers */

int config_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    switch (*s) {
    case '\0': break;
    case 'K': case 'k': mult = 1024; s++; break;
    case 'M': case 'm': mult = 1024 * 1024; s++; break;
    case 'G': case 'g': mult = 1024 * 1024 * 1024; s++; break;
    default: return -1;
    }
    if (*s != '\0')
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int config_parse_duration(const char *s, unsigned *out)
{
    unsigned long long v = 0, mult = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > UINT_MAX)
            return -1;            /* stop early; the digits are garbage anyway */
        v = v * 10 + (unsigned)(*s - '0');
    }
    switch (*s) {
    case '\0': break;
    case 's': s++; break;
    case 'm': mult = 60; s++; break;
    case 'h': mult = 3600; s++; break;
    case 'd': mult = 86400; s++; break;
    default: return -1;
    }
    if (*s != '\0' || v > UINT_MAX || v * mult > UINT_MAX)
        return -1;
    *out = (unsigned)(v * mult);
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

static int parse_cidr(const char *s, struct cidr *out, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long long p;
    unsigned max, bytes;
    struct cidr c;

    memset(&c, 0, sizeof c);
    if (hlen == 0 || hlen >= sizeof host) {
        fmt(why, whylen, "\"%.100s\" is not a network address", s);
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, c.addr) == 1) {
        c.family = AF_INET; max = 32; bytes = 4;
    } else if (inet_pton(AF_INET6, host, c.addr) == 1) {
        c.family = AF_INET6; max = 128; bytes = 16;
    } else {
        fmt(why, whylen, "\"%.100s\" is not a network address", s);
        return -1;
    }
    c.prefix = max;
    if (slash != NULL) {
        if (parse_uint(slash + 1, 0, max, &p) < 0) {
            fmt(why, whylen, "\"%.100s\": bad prefix length (0..%u)", s, max);
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
        fmt(why, whylen, "\"%.100s\" has host bits set (network is %s/%u)", s, net, c.prefix);
        return -1;
    }
    *out = c;
    return 0;
}

int config_parse_cidr(const char *s, struct cidr *out)
{
    if (s == NULL || out == NULL)
        return -1;
    return parse_cidr(s, out, NULL, 0);
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

static int parse_listen(const char *s, struct listen_addr *out, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *hs, *he, *ps;
    unsigned port;
    struct listen_addr a;

    memset(&a, 0, sizeof a);
    if (copy_str(a.text, sizeof a.text, s) < 0) {
        fmt(why, whylen, "\"%.100s\" is too long for a listen address", s);
        return -1;
    }
    if (s[0] == '[') {
        hs = s + 1;
        if ((he = strchr(hs, ']')) == NULL || he[1] != ':') {
            fmt(why, whylen, "\"%s\": expected [IPv6]:port", s);
            return -1;
        }
        ps = he + 2;
    } else {
        hs = s;
        if ((he = strrchr(s, ':')) == NULL) {
            fmt(why, whylen, "\"%s\": missing :port", s);
            return -1;
        }
        ps = he + 1;
    }
    if (parse_port(ps, &port) < 0) {
        fmt(why, whylen, "\"%s\": bad port (1..65535)", s);
        return -1;
    }
    if ((size_t)(he - hs) >= sizeof host || he == hs) {
        fmt(why, whylen, "\"%s\": bad address", s);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';

    if (s[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            fmt(why, whylen, "\"%s\": not an IPv6 address", s);
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
                fmt(why, whylen, "\"%s\": write an IPv6 address as [addr]:port", s);
            else
                fmt(why, whylen, "\"%s\": not a numeric IPv4 address", s);
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
    return parse_listen(s, out, NULL, 0);
}

/* "addr" or "addr@port", addr numeric IPv4 or IPv6. */
static int check_server(const char *s)
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
static int check_stub(const char *s)
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
    return check_server(eq + 1);
}

/* "[host]:port", "host:port" or "host"; host is a name or, bracketed, an IP. */
static int check_relayhost(const char *s)
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

/* ------------------------------------------------------------- key table */

enum ktype {
    T_HOSTNAME, T_LISTEN, T_DIR, T_TLSFILE, T_OPTFILE, T_DOMAINS, T_CIDRS,
    T_RELAYHOST, T_SIZE, T_UINT, T_DURATION, T_FORWARDERS, T_STUBS, T_USER,
    T_BOOL, T_LOGLEVEL,
};

struct keydef {
    const char *name;
    enum ktype type;
    size_t off, size;
    unsigned long long min, max;    /* T_UINT, T_DURATION, T_SIZE */
};

#define FIELD(m) offsetof(struct config, m), sizeof(((struct config *)0)->m)

static const struct keydef keys[] = {
    { "hostname",                 T_HOSTNAME,   FIELD(hostname), 0, 0 },
    { "listen_smtp",              T_LISTEN,     FIELD(listen_smtp), 0, 0 },
    { "listen_submission",        T_LISTEN,     FIELD(listen_submission), 0, 0 },
    { "listen_smtps",             T_LISTEN,     FIELD(listen_smtps), 0, 0 },
    { "spool_dir",                T_DIR,        FIELD(spool_dir), 0, 0 },
    { "run_dir",                  T_DIR,        FIELD(run_dir), 0, 0 },
    { "tls_cert_file",            T_TLSFILE,    FIELD(tls_cert_file), 0, 0 },
    { "tls_key_file",             T_TLSFILE,    FIELD(tls_key_file), 0, 0 },
    { "local_domains",            T_DOMAINS,    FIELD(local_domains), 0, 0 },
    { "mailbox_dir",              T_DIR,        FIELD(mailbox_dir), 0, 0 },
    { "mailboxes_file",           T_OPTFILE,    FIELD(mailboxes_file), 0, 0 },
    { "aliases_file",             T_OPTFILE,    FIELD(aliases_file), 0, 0 },
    { "relay_networks",           T_CIDRS,      FIELD(relay_networks), 0, 0 },
    { "relayhost",                T_RELAYHOST,  FIELD(relayhost), 0, 0 },
    { "max_message_size",         T_SIZE,       FIELD(max_message_size), 1, UINT64_MAX },
    { "queue_map_size",           T_SIZE,       FIELD(queue_map_size), 1 << 20, (unsigned long long)1 << 40 },
    { "max_recipients",           T_UINT,       FIELD(max_recipients), 1, 1000000 },
    { "queue_lifetime",           T_DURATION,   FIELD(queue_lifetime), 1, UINT_MAX },
    { "min_backoff",              T_DURATION,   FIELD(min_backoff), 1, UINT_MAX },
    { "max_backoff",              T_DURATION,   FIELD(max_backoff), 1, UINT_MAX },
    { "delay_warning",            T_DURATION,   FIELD(delay_warning), 0, UINT_MAX },
    { "remote_smtp_port",         T_UINT,       FIELD(remote_smtp_port), 1, 65535 },
    { "dns_forwarders",           T_FORWARDERS, FIELD(dns_forwarders), 0, 0 },
    { "dns_stub_zones",           T_STUBS,      FIELD(dns_stub_zones), 0, 0 },
    { "dnssec_trust_anchor_file", T_OPTFILE,    FIELD(dnssec_trust_anchor_file), 0, 0 },
    { "user_smtpd",               T_USER,       FIELD(user_smtpd), 0, 0 },
    { "user_queue",               T_USER,       FIELD(user_queue), 0, 0 },
    { "user_resolver",            T_USER,       FIELD(user_resolver), 0, 0 },
    { "user_deliver",             T_USER,       FIELD(user_deliver), 0, 0 },
    { "chroot",                   T_BOOL,       FIELD(chroot), 0, 0 },
    { "smtpd_processes",          T_UINT,       FIELD(smtpd_processes), 1, 64 },
    { "smtpd_max_sessions",       T_UINT,       FIELD(smtpd_max_sessions), 1, 1000000 },
    { "smtpd_timeout",            T_DURATION,   FIELD(smtpd_timeout), 1, UINT_MAX },
    { "smtpd_error_limit",        T_UINT,       FIELD(smtpd_error_limit), 1, 1000000 },
    { "smtpd_max_line",           T_UINT,       FIELD(smtpd_max_line), 1000, 2048 },
    { "log_level",                T_LOGLEVEL,   FIELD(debug), 0, 0 },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static int key_index(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Sets one key from its (expanded) value; -1 with the reason in why. */
static int set_value(struct config *c, const struct keydef *k, const char *v,
                     char *why, size_t whylen)
{
    void *field = (char *)c + k->off;
    struct tokens *t = NULL;
    unsigned long long n;
    unsigned d;
    uint64_t sz;
    int rc = -1;

    switch (k->type) {
    case T_HOSTNAME:
        if (*v == '\0' || !addr_valid_domain(v, strlen(v), 0)) {
            fmt(why, whylen, "\"%.100s\" is not a valid host name", v);
            return -1;
        }
        if (copy_str(field, k->size, v) < 0) {
            fmt(why, whylen, "value too long (at most %zu characters)", k->size - 1);
            return -1;
        }
        return 0;

    case T_DIR:
    case T_USER:
        if (*v == '\0') {
            fmt(why, whylen, "empty value");
            return -1;
        }
        /* fall through */
    case T_TLSFILE:
    case T_OPTFILE:
    case T_RELAYHOST:
        /* single values: white space here is a typo, not part of a path */
        if (has_space(v)) {
            fmt(why, whylen, "\"%.100s\": one value expected, found white space", v);
            return -1;
        }
        if (strlen(v) >= k->size) {
            fmt(why, whylen, "value too long (at most %zu characters)", k->size - 1);
            return -1;
        }
        if (k->type == T_RELAYHOST && *v != '\0' && check_relayhost(v) < 0) {
            fmt(why, whylen, "\"%.100s\": expected [host]:port, host:port or host", v);
            return -1;
        }
        if ((k->type == T_TLSFILE || k->type == T_OPTFILE) && *v != '\0') {
            struct stat st;
            /* Existence only: the key is root's to read, and processes
             * that re-read this file after dropping root must not fail. */
            if (stat(v, &st) < 0) {
                fmt(why, whylen, "\"%.100s\": %s", v, strerror(errno));
                return -1;
            }
            if (!S_ISREG(st.st_mode)) {
                fmt(why, whylen, "\"%.100s\": not a regular file", v);
                return -1;
            }
        }
        copy_str(field, k->size, v);
        return 0;

    case T_SIZE:
        if (config_parse_size(v, &sz) < 0 || sz < k->min || sz > k->max) {
            fmt(why, whylen, "\"%.100s\": expected a size of at least %llu, "
                "a number with an optional K, M or G", v, k->min);
            return -1;
        }
        *(uint64_t *)field = sz;
        return 0;

    case T_UINT:
        if (parse_uint(v, k->min, k->max, &n) < 0) {
            fmt(why, whylen, "\"%.100s\": expected a whole number from %llu to %llu",
                v, k->min, k->max);
            return -1;
        }
        *(unsigned *)field = (unsigned)n;
        return 0;

    case T_DURATION:
        if (config_parse_duration(v, &d) < 0 || d < k->min) {
            fmt(why, whylen, "\"%.100s\": expected a duration%s, a number with an "
                "optional s, m, h or d", v, k->min ? " of at least 1s" : "");
            return -1;
        }
        *(unsigned *)field = d;
        return 0;

    case T_BOOL:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
            *(int *)field = 1;
        else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
            *(int *)field = 0;
        else {
            fmt(why, whylen, "\"%.100s\": expected yes or no", v);
            return -1;
        }
        return 0;

    case T_LOGLEVEL:
        if (!strcasecmp(v, "info"))
            *(int *)field = 0;
        else if (!strcasecmp(v, "debug"))
            *(int *)field = 1;
        else {
            fmt(why, whylen, "\"%.100s\": expected info or debug", v);
            return -1;
        }
        return 0;

    case T_LISTEN:
    case T_CIDRS:
    case T_DOMAINS:
    case T_FORWARDERS:
    case T_STUBS:
        break;
    }

    /* Lists. */
    if ((t = malloc(sizeof *t)) == NULL) {
        fmt(why, whylen, "out of memory");
        return -1;
    }
    if (split_list(v, t) < 0) {
        fmt(why, whylen, "too many entries (at most %d)", CONF_MAX_LIST);
        goto out;
    }
    if (k->type == T_LISTEN) {
        struct listen_list *l = field, nl;
        nl.n = 0;
        for (size_t i = 0; i < t->n; i++)
            if (parse_listen(t->v[i], &nl.v[nl.n++], why, whylen) < 0)
                goto out;
        l->n = nl.n;
        memcpy(l->v, nl.v, nl.n * sizeof nl.v[0]);
    } else if (k->type == T_CIDRS) {
        struct cidr_list *l = field, nl;
        nl.n = 0;
        for (size_t i = 0; i < t->n; i++)
            if (parse_cidr(t->v[i], &nl.v[nl.n++], why, whylen) < 0)
                goto out;
        *l = nl;
    } else {
        struct strlist *l = field, nl;
        nl.n = 0;
        for (size_t i = 0; i < t->n; i++) {
            char *e = t->v[i];
            if (k->type == T_DOMAINS) {
                lower_str(e);
                if (!addr_valid_domain(e, strlen(e), 0)) {
                    fmt(why, whylen, "\"%.100s\" is not a domain name", e);
                    goto bad;
                }
                if (strlist_has(&nl, e))
                    continue;
            } else if (k->type == T_FORWARDERS && check_server(e) < 0) {
                fmt(why, whylen, "\"%.100s\": expected addr or addr@port", e);
                goto bad;
            } else if (k->type == T_STUBS && check_stub(e) < 0) {
                fmt(why, whylen, "\"%.100s\": expected zone=addr or zone=addr@port", e);
                goto bad;
            }
            if (strlist_add(&nl, e) < 0) {
                fmt(why, whylen, "out of memory");
                goto bad;
            }
        }
        strlist_clear(l);
        *l = nl;
        rc = 0;
        goto out;
bad:
        strlist_clear(&nl);
        goto out;
    }
    rc = 0;
out:
    free(t);
    return rc;
}

/* --------------------------------------------------------------- defaults */

/* The system's FQDN: gethostname, made canonical through the resolver. */
static void system_hostname(char *out, size_t outlen)
{
    char name[256];
    struct addrinfo hints, *res = NULL;

    if (gethostname(name, sizeof name) != 0 || name[0] == '\0') {
        copy_str(out, outlen, "localhost");
        return;
    }
    name[sizeof name - 1] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
        res->ai_canonname != NULL && res->ai_canonname[0] != '\0' &&
        copy_str(out, outlen, res->ai_canonname) == 0) {
        freeaddrinfo(res);
        return;
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (copy_str(out, outlen, name) < 0)
        copy_str(out, outlen, "localhost");
}

/* local_domains default: "$hostname, localhost". */
static void default_local_domains(struct config *c)
{
    char h[sizeof c->hostname];

    strlist_clear(&c->local_domains);
    copy_str(h, sizeof h, c->hostname);
    lower_str(h);
    /* a system name that is no domain (checked by config_load) is left out */
    if (addr_valid_domain(h, strlen(h), 0))
        strlist_add(&c->local_domains, h);
    if (!strlist_has(&c->local_domains, "localhost"))
        strlist_add(&c->local_domains, "localhost");
}

static void set_defaults(struct config *c)
{
    static const char *const listen_def[][2] = {
        { "0.0.0.0:25", "[::]:25" },
        { "0.0.0.0:587", "[::]:587" },
        { "0.0.0.0:465", "[::]:465" },
    };
    struct listen_list *ll[] = { &c->listen_smtp, &c->listen_submission, &c->listen_smtps };

    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 2; j++)
            if (parse_listen(listen_def[i][j], &ll[i]->v[ll[i]->n], NULL, 0) == 0)
                ll[i]->n++;
    copy_str(c->spool_dir, sizeof c->spool_dir, "/var/spool/postern");
    copy_str(c->run_dir, sizeof c->run_dir, "/run/postern");
    copy_str(c->mailbox_dir, sizeof c->mailbox_dir, "/var/mail/postern");
    copy_str(c->mailboxes_file, sizeof c->mailboxes_file, "/etc/postern/mailboxes");
    copy_str(c->aliases_file, sizeof c->aliases_file, "/etc/postern/aliases");
    if (parse_cidr("127.0.0.0/8", &c->relay_networks.v[c->relay_networks.n], NULL, 0) == 0)
        c->relay_networks.n++;
    if (parse_cidr("::1/128", &c->relay_networks.v[c->relay_networks.n], NULL, 0) == 0)
        c->relay_networks.n++;
    c->max_message_size = 36700160;
    c->queue_map_size = (uint64_t)16 << 30;
    c->max_recipients = 1000;
    c->queue_lifetime = 5 * 86400;
    c->min_backoff = 5 * 60;
    c->max_backoff = 3600;
    c->delay_warning = 4 * 3600;
    c->remote_smtp_port = 25;
    /* Debian's dns-root-data package */
    copy_str(c->dnssec_trust_anchor_file, sizeof c->dnssec_trust_anchor_file,
             "/usr/share/dns/root.key");
    copy_str(c->user_smtpd, sizeof c->user_smtpd, "postern-smtpd");
    copy_str(c->user_queue, sizeof c->user_queue, "postern-queue");
    copy_str(c->user_resolver, sizeof c->user_resolver, "postern-resolver");
    copy_str(c->user_deliver, sizeof c->user_deliver, "postern-deliver");
    c->chroot = 1;
    c->smtpd_processes = 2;
    c->smtpd_max_sessions = 1000;
    c->smtpd_timeout = 300;
    c->smtpd_error_limit = 20;
    c->smtpd_max_line = 1000;
    c->debug = 0;
}

void config_defaults(struct config *c)
{
    set_defaults(c);
    system_hostname(c->hostname, sizeof c->hostname);
    default_local_domains(c);
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    strlist_clear(&c->local_domains);
    strlist_clear(&c->dns_forwarders);
    strlist_clear(&c->dns_stub_zones);
}

/* ------------------------------------------------------------ the reader */

struct entry {
    unsigned line;          /* 0 = not in the file */
    char *value;
    size_t len;
};

/*
 * Reads one physical line into buf without its newline. Returns 1 for a
 * line, 0 at end of file, -1 with why for an over-long line or a byte that
 * has no place in a text file.
 */
static int read_line(FILE *f, char *buf, size_t size, char *why, size_t whylen)
{
    size_t n = 0;
    int ch, any = 0;

    while ((ch = getc(f)) != EOF) {
        any = 1;
        if (ch == '\n')
            break;
        if (n + 1 >= size) {
            fmt(why, whylen, "line too long (at most %zu bytes)", size - 2);
            return -1;
        }
        buf[n++] = (char)ch;
    }
    if (!any)
        return 0;
    /* tolerate CRLF files: a CR right before the newline is white space */
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > size - 2) {
        fmt(why, whylen, "line too long (at most %zu bytes)", size - 2);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            fmt(why, whylen, "control character 0x%02x", c);
            return -1;
        }
    }
    buf[n] = '\0';
    return 1;
}

static char *trim(char *s)
{
    size_t n;

    while (is_space((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && is_space((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int read_file(const char *path, struct entry *ent, char *err, size_t errlen)
{
    char *buf, why[WHY_MAX];
    unsigned lineno = 0;
    int cur = -1, rc = -1, r;
    FILE *f;

    if ((f = fopen(path, "r")) == NULL) {
        fmt(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((buf = malloc(LINE_MAX_LEN + 2)) == NULL) {
        fmt(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    while ((r = read_line(f, buf, LINE_MAX_LEN + 2, why, sizeof why)) == 1) {
        char *line = buf, *hash, *eq, *key, *val;
        int k;

        lineno++;
        if (lineno == 1 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
            line += 3;                /* UTF-8 byte order mark */
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        if (*trim(line) == '\0')
            continue;                 /* blank and comment lines keep a continuation open */

        if (is_space((unsigned char)line[0])) {
            struct entry *e;
            char *more = trim(line), *nv;
            size_t mlen = strlen(more);

            if (cur < 0) {
                fmt(err, errlen, "%s:%u: continuation line without a key before it",
                    path, lineno);
                goto out;
            }
            e = &ent[cur];
            if (e->len + 1 + mlen > VALUE_MAX) {
                fmt(err, errlen, "%s:%u: value of %s too long (at most %d bytes)",
                    path, lineno, keys[cur].name, VALUE_MAX);
                goto out;
            }
            if ((nv = realloc(e->value, e->len + 1 + mlen + 1)) == NULL) {
                fmt(err, errlen, "%s: out of memory", path);
                goto out;
            }
            e->value = nv;
            if (e->len > 0)
                e->value[e->len++] = ' ';
            memcpy(e->value + e->len, more, mlen + 1);
            e->len += mlen;
            continue;
        }

        if ((eq = strchr(line, '=')) == NULL) {
            size_t w = strcspn(line, " \t");
            fmt(err, errlen, "%s:%u: missing \"=\" after \"%.*s\"", path, lineno,
                (int)(w > 100 ? 100 : w), line);
            goto out;
        }
        *eq = '\0';
        key = trim(line);
        val = trim(eq + 1);
        if (*key == '\0') {
            fmt(err, errlen, "%s:%u: missing key before \"=\"", path, lineno);
            goto out;
        }
        if ((k = key_index(key)) < 0) {
            fmt(err, errlen, "%s:%u: unknown key \"%.100s\"", path, lineno, key);
            goto out;
        }
        if (ent[k].line != 0) {
            fmt(err, errlen, "%s:%u: duplicate key \"%s\" (first set on line %u)",
                path, lineno, key, ent[k].line);
            goto out;
        }
        ent[k].line = lineno;
        ent[k].len = strlen(val);
        if ((ent[k].value = strdup(val)) == NULL) {
            fmt(err, errlen, "%s: out of memory", path);
            goto out;
        }
        cur = k;
    }
    if (r < 0) {
        fmt(err, errlen, "%s:%u: %s", path, lineno + 1, why);
        goto out;
    }
    if (ferror(f)) {
        fmt(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/*
 * Expands $hostname and ${hostname} (hostname NULL: refused) and $$ to "$".
 * Any other '$' is an error rather than a silent literal, so that a typo
 * like $hostnme does not end up in the configuration.
 */
static int expand(const char *in, const char *hostname, char *out, size_t outlen,
                  char *why, size_t whylen)
{
    size_t o = 0, hl = hostname ? strlen(hostname) : 0;

    while (*in) {
        const char *add = in;
        size_t alen = 1;

        if (*in == '$') {
            size_t nlen = 0;
            int brace = in[1] == '{';
            const char *name = in + 1 + brace;

            if (in[1] == '$') {
                alen = 1;
                in += 2;
                goto append;
            }
            while ((name[nlen] >= 'a' && name[nlen] <= 'z') || name[nlen] == '_' ||
                   (name[nlen] >= 'A' && name[nlen] <= 'Z') ||
                   (name[nlen] >= '0' && name[nlen] <= '9'))
                nlen++;
            if (nlen == 0 || (brace && name[nlen] != '}')) {
                fmt(why, whylen, "bad \"$\" (write $hostname, ${hostname}, or $$ for a dollar sign)");
                return -1;
            }
            if (nlen != 8 || strncmp(name, "hostname", 8) != 0) {
                fmt(why, whylen, "unknown variable \"$%.*s\"", (int)(nlen > 64 ? 64 : nlen), name);
                return -1;
            }
            if (hostname == NULL) {
                fmt(why, whylen, "$hostname cannot be used here");
                return -1;
            }
            add = hostname;
            alen = hl;
            in = name + nlen + brace;
        } else {
            in++;
        }
append:
        if (o + alen >= outlen) {
            fmt(why, whylen, "value too long after expanding $hostname");
            return -1;
        }
        memcpy(out + o, add, alen);
        o += alen;
    }
    out[o] = '\0';
    return 0;
}

static int apply(struct config *c, const char *path, struct entry *ent,
                 char *err, size_t errlen)
{
    char why[WHY_MAX], *val;
    unsigned order[NKEYS];
    size_t n = 0;
    int rc = -1;

    if ((val = malloc(VALUE_MAX + 1)) == NULL) {
        fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    /* hostname first: every other value may refer to it */
    if (ent[0].line != 0) {
        if (expand(ent[0].value, NULL, val, VALUE_MAX + 1, why, sizeof why) < 0 ||
            set_value(c, &keys[0], val, why, sizeof why) < 0) {
            fmt(err, errlen, "%s:%u: hostname: %s", path, ent[0].line, why);
            goto out;
        }
    } else {
        system_hostname(c->hostname, sizeof c->hostname);
        if (!addr_valid_domain(c->hostname, strlen(c->hostname), 0)) {
            fmt(err, errlen, "%s: the system host name \"%s\" is not a valid domain "
                "name; set hostname", path, c->hostname);
            goto out;
        }
    }
    default_local_domains(c);

    /* the rest in file order, so that the first bad line is the one reported */
    for (size_t k = 1; k < NKEYS; k++)
        if (ent[k].line != 0)
            order[n++] = (unsigned)k;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ent[order[j]].line < ent[order[j - 1]].line; j--) {
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        const struct keydef *k = &keys[order[i]];
        const struct entry *e = &ent[order[i]];
        if (expand(e->value, c->hostname, val, VALUE_MAX + 1, why, sizeof why) < 0 ||
            set_value(c, k, val, why, sizeof why) < 0) {
            fmt(err, errlen, "%s:%u: %s: %s", path, e->line, k->name, why);
            goto out;
        }
    }

    /* Rules that tie keys together. */
    {
        int cert = key_index("tls_cert_file"), key = key_index("tls_key_file");
        if ((c->tls_cert_file[0] != '\0') != (c->tls_key_file[0] != '\0')) {
            int set = c->tls_cert_file[0] ? cert : key;
            fmt(err, errlen, "%s:%u: %s is set but %s is not (set both or neither)",
                path, ent[set].line, keys[set].name, keys[set == cert ? key : cert].name);
            goto out;
        }
    }
    if (c->min_backoff > c->max_backoff) {
        int mi = key_index("min_backoff"), ma = key_index("max_backoff");
        int at = ent[ma].line > ent[mi].line ? ma : mi;
        fmt(err, errlen, "%s:%u: min_backoff (%us) is longer than max_backoff (%us)",
            path, ent[at].line, c->min_backoff, c->max_backoff);
        goto out;
    }
    rc = 0;
out:
    free(val);
    return rc;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    struct entry ent[NKEYS];
    struct config *n;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (c == NULL || path == NULL) {
        fmt(err, errlen, "config_load: no configuration");
        return -1;
    }
    memset(ent, 0, sizeof ent);
    if ((n = malloc(sizeof *n)) == NULL) {
        fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    set_defaults(n);
    if (copy_str(n->path, sizeof n->path, path) < 0) {
        fmt(err, errlen, "%.100s...: path too long", path);
        goto out;
    }
    if (read_file(path, ent, err, errlen) < 0 || apply(n, path, ent, err, errlen) < 0)
        goto out;
    config_free(c);
    *c = *n;
    rc = 0;
out:
    if (rc < 0)
        config_free(n);
    free(n);
    for (size_t i = 0; i < NKEYS; i++)
        free(ent[i].value);
    return rc;
}

/* ----------------------------------------------------------------- queries */

int config_is_local_domain(const struct config *c, const char *domain)
{
    if (c == NULL || domain == NULL)
        return 0;
    for (size_t i = 0; i < c->local_domains.n && i < CONF_MAX_LIST; i++)
        if (strcasecmp(c->local_domains.v[i], domain) == 0)
            return 1;
    return 0;
}

const char *config_path(const char *opt)
{
    const char *env;

    if (opt != NULL && *opt != '\0')
        return opt;
    env = getenv("POSTERN_CONF");
    if (env != NULL && *env != '\0')
        return env;
    if (access(CONF_DEFAULT_PATH, F_OK) != 0) {
        /* A development tree: bin/TOOL finds the run/postern.conf that
         * `make run` wrote, so `./bin/mailq` works without -c. */
        static char dev[CONF_MAX_STR];
        char exe[CONF_MAX_STR];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                if ((size_t)snprintf(dev, sizeof(dev), "%s/../run/postern.conf", exe) < sizeof(dev) &&
                    access(dev, F_OK) == 0)
                    return dev;
            }
        }
    }
    return CONF_DEFAULT_PATH;
}
