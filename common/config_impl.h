/*
 * config_impl.h - what the parts of the postern.conf reader share; not for
 * use outside common/config*.c (the interface is config.h).
 *
 *   config.c         config_load(): defaults + file into a scratch copy,
 *                    cross-key rules, the queries, config_path()
 *   config_reader.c  the file: lines, continuations, comments, FILE:LINE
 *                    errors, $hostname expansion
 *   config_values.c  one parser per value type, dispatched by the key's type
 *   config_net.c     the network syntaxes: networks, listen addresses, DNS
 *                    servers and stub zones, the relay host
 *   config_keys.c    the key table and the defaults
 */
#ifndef POSTERN_CONFIG_IMPL_H
#define POSTERN_CONFIG_IMPL_H

#include <stddef.h>

#include "config.h"

#define CONFIG_LINE_MAX 8192    /* one physical line */
#define CONFIG_VALUE_MAX 32768  /* one logical value, continuations joined */
#define CONFIG_WHY_MAX 512      /* one reason, before FILE:LINE: KEY: is added */

/* The type of a key's value: which parser config_set_value() uses. */
enum config_type {
    CT_HOSTNAME,    /* a domain name */
    CT_LISTEN,      /* list of addr:port, [addr6]:port */
    CT_DIR,         /* a path, not empty */
    CT_TLSFILE,     /* a path to an existing file, or empty */
    CT_OPTFILE,     /* same */
    CT_DOMAINS,     /* list of domains, lower-cased, duplicates dropped */
    CT_CIDRS,       /* list of networks */
    CT_RELAYHOST,   /* [host]:port, host:port, host, or empty */
    CT_SIZE,        /* uint64_t bytes, K/M/G */
    CT_UINT,        /* unsigned in [min, max] */
    CT_DURATION,    /* unsigned seconds, s/m/h/d */
    CT_FORWARDERS,  /* list of addr[@port] */
    CT_STUBS,       /* list of zone=addr[@port] */
    CT_USER,        /* an account name, not empty */
    CT_BOOL,        /* yes/no */
    CT_LOGLEVEL,    /* info/debug */
    CT_CHOICE,      /* int: index of the value in config_choices[key's min] */
    CT_DELIMITER,   /* empty, or up to 8 characters of "+-_=." */
    CT_MAILBOX,     /* local@domain (domain lower-cased) */
    CT_CHOICES,     /* unsigned: a bit per word of config_choices[key's min] given, empty = 0 */
    CT_RCPT,        /* local or local@domain (bounces: double_bounce_recipient) */
    CT_TRANSPORT,   /* local_transport: maildir, lmtp:unix:/path, lmtp:[host]:port, lmtp:host:port */
    CT_COUNT
};

struct config_key {
    const char *name;
    enum config_type type;
    size_t off, size;               /* the field in struct config */
    unsigned long long min, max;    /* CT_UINT, CT_DURATION, CT_SIZE */
};

/* config_keys.c. config_keys[0] is hostname: every other value may use it. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;
int config_key_index(const char *name);
/* The words a CT_CHOICE key takes, NULL-terminated; the value stored is the
 * index of the word. */
extern const char *const *const config_choices[];
/* Every default but the host name and local_domains (memset first). */
void config_set_defaults(struct config *c);
/* The system's FQDN, or "localhost". */
void config_system_hostname(char *out, size_t outlen);
/* local_domains = "$hostname, localhost". */
void config_default_local_domains(struct config *c);
/* postmaster_address = "postmaster@$hostname". */
void config_default_postmaster(struct config *c);

/* config_reader.c. One key as found in the file. */
struct config_entry {
    unsigned line;          /* where the key starts; 0 = not in the file */
    char *value;            /* continuation lines joined by one space */
    size_t len;
};
/* Reads path into ent[config_nkeys]; -1 with "FILE[:LINE]: text" in err. */
int config_read_file(const char *path, struct config_entry *ent, char *err, size_t errlen);
/* Expands $hostname, ${hostname} and $$ (hostname NULL: refused). */
int config_expand(const char *in, const char *hostname, char *out, size_t outlen,
                  char *why, size_t whylen);

/* config_values.c */
int config_set_value(struct config *c, const struct config_key *k, const char *v,
                     char *why, size_t whylen);
void config_fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
/* Bounded copy that refuses (-1) instead of truncating. */
int config_copy(char *dst, size_t dstlen, const char *src);
int config_is_space(int c);
void config_lower(char *s);
/* A whole decimal number in [min, max]; no sign, no white space. */
int config_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out);
void config_strlist_clear(struct strlist *l);
int config_strlist_has(const struct strlist *l, const char *s);
int config_strlist_add(struct strlist *l, const char *s);

/* config_net.c: 0, or -1 (with why, when the function takes one) */
int config_net_cidr(const char *s, struct cidr *out, char *why, size_t whylen);
int config_net_listen(const char *s, struct listen_addr *out, char *why, size_t whylen);
int config_net_server(const char *s);       /* addr[@port] */
int config_net_stub(const char *s);         /* zone=addr[@port] */
int config_net_relayhost(const char *s);    /* [host]:port, host:port, host */

#endif
