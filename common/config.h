/*
 * config.h - postern.conf: parsing, defaults and the typed result.
 *
 * Syntax (SPEC.md section 3): "key = value" a line, '#' comments, values
 * continued on lines that start with white space, lists split on commas or
 * white space, sizes with K/M/G, durations with s/m/h/d. Unknown keys, bad
 * values and missing required files are errors reported as "FILE:LINE: text".
 * $hostname inside a value expands to the hostname setting.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_DEFAULT_PATH "/etc/postern/postern.conf"
#define CONF_MAX_LIST 64
#define CONF_MAX_STR 1024

struct strlist {
    size_t n;
    char *v[CONF_MAX_LIST];
};

/* A listener: "0.0.0.0:25", "[::]:25", "127.0.0.1:2525". */
struct listen_addr {
    struct sockaddr_storage ss;
    socklen_t sslen;
    char text[80];          /* as written, for logs */
};

struct listen_list {
    size_t n;
    struct listen_addr v[CONF_MAX_LIST];
};

/* An IPv4 or IPv6 network "10.0.0.0/8", "::1/128", or a bare address. */
struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

struct cidr_list {
    size_t n;
    struct cidr v[CONF_MAX_LIST];
};

struct config {
    char path[CONF_MAX_STR];        /* file it was read from */
    char hostname[256];
    struct listen_list listen_smtp, listen_submission, listen_smtps;
    char spool_dir[CONF_MAX_STR];
    char run_dir[CONF_MAX_STR];
    char tls_cert_file[CONF_MAX_STR];   /* "" = none */
    char tls_key_file[CONF_MAX_STR];
    struct strlist local_domains;       /* lower case */
    char mailbox_dir[CONF_MAX_STR];
    char mailboxes_file[CONF_MAX_STR];
    char aliases_file[CONF_MAX_STR];
    struct cidr_list relay_networks;
    char relayhost[CONF_MAX_STR];       /* "" = none */
    uint64_t max_message_size;          /* bytes */
    uint64_t queue_map_size;            /* bytes: initial LMDB map of the queue index */
    unsigned max_recipients;
    unsigned queue_lifetime;            /* seconds */
    unsigned min_backoff, max_backoff;
    unsigned delay_warning;
    unsigned remote_smtp_port;
    struct strlist dns_forwarders;
    struct strlist dns_stub_zones;
    char dnssec_trust_anchor_file[CONF_MAX_STR];
    char user_smtpd[128], user_queue[128], user_resolver[128], user_deliver[128];
    int chroot;                         /* yes/no */
    /* Postern additions, documented in postern.conf.example */
    unsigned smtpd_processes;           /* worker processes, default 2 */
    unsigned smtpd_max_sessions;        /* per worker, default 1000 */
    unsigned smtpd_timeout;             /* seconds, default 300 */
    unsigned smtpd_error_limit;         /* default 20 */
    unsigned smtpd_max_line;            /* text line limit incl CRLF, 1000 */
    /* delivery (Postfix's names where Postfix has the setting) */
    char relayhost_auth_file[CONF_MAX_STR]; /* "host user:password" lines, "" = none */
    unsigned deliver_concurrency;       /* deliveries in flight in all, 100 */
    unsigned destination_concurrency_limit;   /* per destination, 20 */
    unsigned initial_destination_concurrency; /* slow start begins here, 5 */
    unsigned smtp_connect_timeout, smtp_helo_timeout, smtp_mail_timeout, smtp_rcpt_timeout;
    unsigned smtp_data_init_timeout, smtp_data_xfer_timeout, smtp_data_done_timeout, smtp_quit_timeout;
    unsigned smtp_connection_cache_time_limit;  /* seconds an idle connection is kept, 2 */
    unsigned smtp_connection_reuse_count_limit; /* messages per connection, 100 */
    int debug;                          /* log_level = debug */
    /* local recipients (common/maps.h) */
    char recipient_delimiter[9];        /* "" = no sub-addressing, default "+" */
    int vrfy;                           /* CONF_VRFY_* */
    int expn;                           /* CONF_EXPN_* */
    char postmaster_address[257];       /* where postmaster@ and abuse@ go, default postmaster@$hostname */
    unsigned master_service_disable;    /* CONF_SERVICE_* bits: roles the master does not start */
    /* limits against abuse (smtpd/limits.c, smtpd/throttle.c), Postfix's names */
    unsigned smtpd_client_connection_count_limit; /* sessions per client IP, 50; 0 = none */
    unsigned smtpd_client_connection_rate_limit;  /* connects per IP per time unit, 0 = none */
    unsigned smtpd_client_message_rate_limit;     /* MAILs per authenticated user per unit, 100 */
    unsigned smtpd_client_recipient_rate_limit;   /* RCPTs per authenticated user per unit, 1000 */
    unsigned anvil_rate_time_unit;      /* seconds, 60 */
    unsigned smtpd_soft_error_limit;    /* errors before the tarpit, 10 */
    unsigned smtpd_error_sleep_time;    /* seconds each error reply waits past it, 1 */
    unsigned smtpd_greet_pause;         /* seconds the port 25 banner waits, 1; 0 = off */
    unsigned smtpd_greet_pause_ttl;     /* seconds a pass is remembered, 1d */
    unsigned smtpd_starttls_timeout;    /* seconds for a TLS handshake (465: before the greeting), 10 */
    struct cidr_list local_address_literals; /* user@[ip] for these is local, default none */
    /* install, reload and stop (master/) */
    unsigned stop_timeout;              /* seconds sessions get to finish at `postern stop`, 20 */
    /* queue control and metrics (opsq) */
    char admin_group[128];              /* group allowed posternctl, "" = none */
    int mailq_public;                   /* yes: anyone lists the whole queue */
    struct listen_list metrics_listen;  /* Prometheus endpoint, none by default */
    /* bounces and DSN (queue-mgr/bounce.c, notice.c) */
    int bounce_language;                /* CONF_BOUNCE_*, default auto */
    char bounce_template_dir[CONF_MAX_STR]; /* default /etc/postern/bounce */
    uint64_t bounce_size_limit;         /* bytes of the original with RET=FULL, 50000 */
    char double_bounce_recipient[257];  /* "local" or "local@domain", default "postmaster" */
    unsigned max_hops;                  /* Received: headers allowed, default 50 */
    /* submission and SMTP AUTH (issue 9, engineer auth; postern.conf.example) */
    char user_auth[128];                /* the auth process's account, default postern-auth */
    unsigned auth_workers;              /* password-hashing threads of the auth process, 2 */
    int submission_check_from;          /* From: must be the user's on 587/465, yes */
    int submission_hide_client;         /* no client IP in Received: on 587/465, no */
    unsigned smtpd_auth_failure_delay_ms;   /* delay of the first 535, doubling, 1000 */
    unsigned smtpd_auth_failure_limit;      /* failures per client IP before a block, 10 */
    unsigned smtpd_auth_user_failure_limit; /* failures per user before its failing IPs are blocked, 20 */
    unsigned smtpd_auth_block_time;         /* seconds failures are remembered and blocks last, 600 */
    /* local delivery (deliver/local/, queue-mgr/localroute.c) */
    char user_local[128];               /* the account of the local role, owns mailbox_dir */
    char local_transport[CONF_MAX_STR]; /* "maildir", or "lmtp:unix:/path", "lmtp:[host]:port", "lmtp:host:port" */
};

/* master_service_disable words (Postfix's setting of that name) */
#define CONF_SERVICE_SMTPD    (1u << 0)
#define CONF_SERVICE_RESOLVER (1u << 1)
#define CONF_SERVICE_DELIVER  (1u << 2)
#define CONF_SERVICE_AUTH     (1u << 3)
#define CONF_SERVICE_LOCAL    (1u << 4)

#define CONF_VRFY_HIDE 0                /* 252 for every address */
#define CONF_VRFY_REVEAL 1              /* 250 / 550 */
#define CONF_EXPN_OFF 0                 /* 502 */
#define CONF_BOUNCE_AUTO 0              /* bounce_language: from the original */
#define CONF_BOUNCE_EN 1
#define CONF_BOUNCE_DE 2
#define CONF_EXPN_RELAY 1               /* to clients in relay_networks */

/* Fills in every default (hostname from the system). */
void config_defaults(struct config *c);

/*
 * Reads path over the defaults. Returns 0, or -1 with "FILE:LINE: message"
 * (or "FILE: message") in err. Also checks that files named by keys that
 * need them exist (tls_cert_file and tls_key_file go together).
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
void config_free(struct config *c);

/* Is local_transport "maildir" (the local role stores the mail)? */
int config_local_maildir(const struct config *c);
/* Is the (lower-cased) domain one of local_domains? */
int config_is_local_domain(const struct config *c, const char *domain);
/* Does the address fall inside one of the networks? */
int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* Value parsers, also used by tests: -1 on error. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration(const char *s, unsigned *out);
int config_parse_cidr(const char *s, struct cidr *out);
int config_parse_listen(const char *s, struct listen_addr *out);

/* The config path from -c, else $POSTERN_CONF, else the default; when the
 * default does not exist, BINDIR/../run/postern.conf of a development tree. */
const char *config_path(const char *opt);

#endif
