/*
 * config_keys.c - every postern.conf key with its type, field and range,
 * and the defaults (SPEC.md section 3; Postern's own keys are documented
 * in postern.conf.example).
 *
 * A new key is one line in config_keys[] (its type picks the parser in
 * config_values.c), its default in config_set_defaults(), its field in
 * struct config, and its documentation. Nothing here reads the file.
 */
#include "config_impl.h"
#include "addr.h"

#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- key table */

enum { CHOICE_VRFY, CHOICE_EXPN, CHOICE_SERVICES, CHOICE_BOUNCE_LANG };

#define FIELD(m) offsetof(struct config, m), sizeof(((struct config *)0)->m)

const struct config_key config_keys[] = {
    { "hostname",                 CT_HOSTNAME,   FIELD(hostname), 0, 0 },
    { "listen_smtp",              CT_LISTEN,     FIELD(listen_smtp), 0, 0 },
    { "listen_submission",        CT_LISTEN,     FIELD(listen_submission), 0, 0 },
    { "listen_smtps",             CT_LISTEN,     FIELD(listen_smtps), 0, 0 },
    { "spool_dir",                CT_DIR,        FIELD(spool_dir), 0, 0 },
    { "run_dir",                  CT_DIR,        FIELD(run_dir), 0, 0 },
    { "tls_cert_file",            CT_TLSFILE,    FIELD(tls_cert_file), 0, 0 },
    { "tls_key_file",             CT_TLSFILE,    FIELD(tls_key_file), 0, 0 },
    { "local_domains",            CT_DOMAINS,    FIELD(local_domains), 0, 0 },
    { "mailbox_dir",              CT_DIR,        FIELD(mailbox_dir), 0, 0 },
    { "mailboxes_file",           CT_OPTFILE,    FIELD(mailboxes_file), 0, 0 },
    { "aliases_file",             CT_OPTFILE,    FIELD(aliases_file), 0, 0 },
    { "relay_networks",           CT_CIDRS,      FIELD(relay_networks), 0, 0 },
    { "relayhost",                CT_RELAYHOST,  FIELD(relayhost), 0, 0 },
    { "max_message_size",         CT_SIZE,       FIELD(max_message_size), 1, UINT64_MAX },
    { "queue_map_size",           CT_SIZE,       FIELD(queue_map_size), 1 << 20, (unsigned long long)1 << 40 },
    { "max_recipients",           CT_UINT,       FIELD(max_recipients), 1, 1000000 },
    { "queue_lifetime",           CT_DURATION,   FIELD(queue_lifetime), 1, UINT_MAX },
    { "min_backoff",              CT_DURATION,   FIELD(min_backoff), 1, UINT_MAX },
    { "max_backoff",              CT_DURATION,   FIELD(max_backoff), 1, UINT_MAX },
    { "delay_warning",            CT_DURATION,   FIELD(delay_warning), 0, UINT_MAX },
    { "remote_smtp_port",         CT_UINT,       FIELD(remote_smtp_port), 1, 65535 },
    { "dns_forwarders",           CT_FORWARDERS, FIELD(dns_forwarders), 0, 0 },
    { "dns_stub_zones",           CT_STUBS,      FIELD(dns_stub_zones), 0, 0 },
    { "dnssec_trust_anchor_file", CT_OPTFILE,    FIELD(dnssec_trust_anchor_file), 0, 0 },
    { "user_smtpd",               CT_USER,       FIELD(user_smtpd), 0, 0 },
    { "user_queue",               CT_USER,       FIELD(user_queue), 0, 0 },
    { "user_resolver",            CT_USER,       FIELD(user_resolver), 0, 0 },
    { "user_deliver",             CT_USER,       FIELD(user_deliver), 0, 0 },
    { "chroot",                   CT_BOOL,       FIELD(chroot), 0, 0 },
    { "smtpd_processes",          CT_UINT,       FIELD(smtpd_processes), 1, 64 },
    { "smtpd_max_sessions",       CT_UINT,       FIELD(smtpd_max_sessions), 1, 1000000 },
    { "smtpd_timeout",            CT_DURATION,   FIELD(smtpd_timeout), 1, UINT_MAX },
    { "smtpd_error_limit",        CT_UINT,       FIELD(smtpd_error_limit), 1, 1000000 },
    { "smtpd_max_line",           CT_UINT,       FIELD(smtpd_max_line), 1000, 2048 },
    { "relayhost_auth_file",      CT_OPTFILE,    FIELD(relayhost_auth_file), 0, 0 },
    { "deliver_concurrency",      CT_UINT,       FIELD(deliver_concurrency), 1, 100000 },
    { "default_destination_concurrency_limit", CT_UINT, FIELD(destination_concurrency_limit), 1, 10000 },
    { "initial_destination_concurrency", CT_UINT, FIELD(initial_destination_concurrency), 1, 10000 },
    { "smtp_connect_timeout",     CT_DURATION,   FIELD(smtp_connect_timeout), 1, UINT_MAX },
    { "smtp_helo_timeout",        CT_DURATION,   FIELD(smtp_helo_timeout), 1, UINT_MAX },
    { "smtp_mail_timeout",        CT_DURATION,   FIELD(smtp_mail_timeout), 1, UINT_MAX },
    { "smtp_rcpt_timeout",        CT_DURATION,   FIELD(smtp_rcpt_timeout), 1, UINT_MAX },
    { "smtp_data_init_timeout",   CT_DURATION,   FIELD(smtp_data_init_timeout), 1, UINT_MAX },
    { "smtp_data_xfer_timeout",   CT_DURATION,   FIELD(smtp_data_xfer_timeout), 1, UINT_MAX },
    { "smtp_data_done_timeout",   CT_DURATION,   FIELD(smtp_data_done_timeout), 1, UINT_MAX },
    { "smtp_quit_timeout",        CT_DURATION,   FIELD(smtp_quit_timeout), 1, UINT_MAX },
    { "smtp_connection_cache_time_limit", CT_DURATION, FIELD(smtp_connection_cache_time_limit), 0, 3600 },
    { "smtp_connection_reuse_count_limit", CT_UINT, FIELD(smtp_connection_reuse_count_limit), 1, 1000000 },
    { "log_level",                CT_LOGLEVEL,   FIELD(debug), 0, 0 },
    { "recipient_delimiter",      CT_DELIMITER,  FIELD(recipient_delimiter), 0, 0 },
    { "vrfy",                     CT_CHOICE,     FIELD(vrfy), CHOICE_VRFY, 0 },
    { "expn",                     CT_CHOICE,     FIELD(expn), CHOICE_EXPN, 0 },
    { "postmaster_address",       CT_MAILBOX,    FIELD(postmaster_address), 0, 0 },
    { "master_service_disable",   CT_CHOICES,    FIELD(master_service_disable), CHOICE_SERVICES, 0 },
    /* limits against abuse (smtpd/limits.c, smtpd/throttle.c) */
    { "smtpd_client_connection_count_limit", CT_UINT, FIELD(smtpd_client_connection_count_limit), 0, 1000000 },
    { "smtpd_client_connection_rate_limit", CT_UINT, FIELD(smtpd_client_connection_rate_limit), 0, 1000000 },
    { "smtpd_client_message_rate_limit", CT_UINT, FIELD(smtpd_client_message_rate_limit), 0, 1000000 },
    { "smtpd_client_recipient_rate_limit", CT_UINT, FIELD(smtpd_client_recipient_rate_limit), 0, 100000000 },
    { "anvil_rate_time_unit",     CT_DURATION,   FIELD(anvil_rate_time_unit), 1, 86400 },
    { "smtpd_soft_error_limit",   CT_UINT,       FIELD(smtpd_soft_error_limit), 1, 1000000 },
    { "smtpd_error_sleep_time",   CT_DURATION,   FIELD(smtpd_error_sleep_time), 0, 300 },
    { "smtpd_greet_pause",        CT_DURATION,   FIELD(smtpd_greet_pause), 0, 60 },
    { "smtpd_greet_pause_ttl",    CT_DURATION,   FIELD(smtpd_greet_pause_ttl), 0, 30 * 86400 },
    { "smtpd_starttls_timeout",   CT_DURATION,   FIELD(smtpd_starttls_timeout), 1, 3600 },
    { "local_address_literals",   CT_CIDRS,      FIELD(local_address_literals), 0, 0 },
    /* install, reload and stop (master/) */
    { "stop_timeout",             CT_DURATION,   FIELD(stop_timeout), 1, 3600 },
    /* queue control and metrics (opsq) */
    { "admin_group",              CT_USER,       FIELD(admin_group), 0, 0 },
    { "mailq_public",             CT_BOOL,       FIELD(mailq_public), 0, 0 },
    { "metrics_listen",           CT_LISTEN,     FIELD(metrics_listen), 0, 0 },
    /* bounces and DSN (queue-mgr/bounce.c, notice.c) */
    { "bounce_language",          CT_CHOICE,     FIELD(bounce_language), CHOICE_BOUNCE_LANG, 0 },
    { "bounce_template_dir",      CT_DIR,        FIELD(bounce_template_dir), 0, 0 },
    { "bounce_size_limit",        CT_SIZE,       FIELD(bounce_size_limit), 1, (unsigned long long)1 << 30 },
    { "double_bounce_recipient",  CT_RCPT,       FIELD(double_bounce_recipient), 0, 0 },
    { "max_hops",                 CT_UINT,       FIELD(max_hops), 1, 1000 },
    /* submission and SMTP AUTH (issue 9, engineer auth) */
    { "user_auth",                CT_USER,       FIELD(user_auth), 0, 0 },
    { "auth_workers",             CT_UINT,       FIELD(auth_workers), 1, 64 },
    { "submission_check_from",    CT_BOOL,       FIELD(submission_check_from), 0, 0 },
    { "submission_hide_client",   CT_BOOL,       FIELD(submission_hide_client), 0, 0 },
    { "smtpd_auth_failure_delay_ms", CT_UINT,    FIELD(smtpd_auth_failure_delay_ms), 0, 60000 },
    { "smtpd_auth_failure_limit", CT_UINT,       FIELD(smtpd_auth_failure_limit), 1, 1000000 },
    { "smtpd_auth_user_failure_limit", CT_UINT,  FIELD(smtpd_auth_user_failure_limit), 1, 1000000 },
    { "smtpd_auth_block_time",    CT_DURATION,   FIELD(smtpd_auth_block_time), 1, 86400 * 30 },
    /* local delivery (engineer "local") */
    { "user_local",               CT_USER,       FIELD(user_local), 0, 0 },
    { "local_transport",          CT_TRANSPORT,  FIELD(local_transport), 0, 0 },
};

/* CT_CHOICE words, in the order of the CONF_VRFY_* / CONF_EXPN_* values. */
static const char *const vrfy_words[] = { "hide", "reveal", NULL };
static const char *const expn_words[] = { "off", "relay_networks", NULL };
/* in the order of the CONF_SERVICE_* bits; queue-mgr cannot be disabled */
static const char *const service_words[] = { "smtpd", "resolver", "deliver", "auth", "local", NULL };
/* in the order of the CONF_BOUNCE_* values */
static const char *const bounce_lang_words[] = { "auto", "en", "de", NULL };
const char *const *const config_choices[] = {
    [CHOICE_VRFY] = vrfy_words,
    [CHOICE_EXPN] = expn_words,
    [CHOICE_SERVICES] = service_words,
    [CHOICE_BOUNCE_LANG] = bounce_lang_words,
};

const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

int config_key_index(const char *name)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* --------------------------------------------------------------- defaults */

/* The system's FQDN: gethostname, made canonical through the resolver. */
void config_system_hostname(char *out, size_t outlen)
{
    char name[256];
    struct addrinfo hints, *res = NULL;

    if (gethostname(name, sizeof name) != 0 || name[0] == '\0') {
        config_copy(out, outlen, "localhost");
        return;
    }
    name[sizeof name - 1] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
        res->ai_canonname != NULL && res->ai_canonname[0] != '\0' &&
        config_copy(out, outlen, res->ai_canonname) == 0) {
        freeaddrinfo(res);
        return;
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (config_copy(out, outlen, name) < 0)
        config_copy(out, outlen, "localhost");
}

/* local_domains default: "$hostname, localhost". */
void config_default_local_domains(struct config *c)
{
    char h[sizeof c->hostname];

    config_strlist_clear(&c->local_domains);
    config_copy(h, sizeof h, c->hostname);
    config_lower(h);
    /* a system name that is no domain (checked by config_load) is left out */
    if (addr_valid_domain(h, strlen(h), 0))
        config_strlist_add(&c->local_domains, h);
    if (!config_strlist_has(&c->local_domains, "localhost"))
        config_strlist_add(&c->local_domains, "localhost");
}

/* postmaster_address default: "postmaster@$hostname". */
void config_default_postmaster(struct config *c)
{
    char h[sizeof c->hostname];

    config_copy(h, sizeof h, c->hostname);
    config_lower(h);
    if (strlen(h) + sizeof("postmaster@") <= sizeof c->postmaster_address)
        config_fmt(c->postmaster_address, sizeof c->postmaster_address, "postmaster@%s", h);
}

void config_set_defaults(struct config *c)
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
            if (config_parse_listen(listen_def[i][j], &ll[i]->v[ll[i]->n]) == 0)
                ll[i]->n++;
    config_copy(c->spool_dir, sizeof c->spool_dir, "/var/spool/postern");
    config_copy(c->run_dir, sizeof c->run_dir, "/run/postern");
    config_copy(c->mailbox_dir, sizeof c->mailbox_dir, "/var/mail/postern");
    config_copy(c->mailboxes_file, sizeof c->mailboxes_file, "/etc/postern/mailboxes");
    config_copy(c->aliases_file, sizeof c->aliases_file, "/etc/postern/aliases");
    if (config_parse_cidr("127.0.0.0/8", &c->relay_networks.v[c->relay_networks.n]) == 0)
        c->relay_networks.n++;
    if (config_parse_cidr("::1/128", &c->relay_networks.v[c->relay_networks.n]) == 0)
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
    config_copy(c->dnssec_trust_anchor_file, sizeof c->dnssec_trust_anchor_file,
             "/usr/share/dns/root.key");
    config_copy(c->user_smtpd, sizeof c->user_smtpd, "postern-smtpd");
    config_copy(c->user_queue, sizeof c->user_queue, "postern-queue");
    config_copy(c->user_resolver, sizeof c->user_resolver, "postern-resolver");
    config_copy(c->user_deliver, sizeof c->user_deliver, "postern-deliver");
    c->chroot = 1;
    /* queue control and metrics (opsq): admin_group and metrics_listen
     * are empty (none) until set */
    c->mailq_public = 1;
    c->smtpd_processes = 2;
    c->smtpd_max_sessions = 1000;
    c->smtpd_timeout = 300;
    c->smtpd_error_limit = 20;
    c->smtpd_max_line = 1000;
    c->deliver_concurrency = 100;
    c->destination_concurrency_limit = 20;
    c->initial_destination_concurrency = 5;
    c->smtp_connect_timeout = 30;
    c->smtp_helo_timeout = 300;
    c->smtp_mail_timeout = 300;
    c->smtp_rcpt_timeout = 300;
    c->smtp_data_init_timeout = 120;
    c->smtp_data_xfer_timeout = 180;
    c->smtp_data_done_timeout = 600;
    c->smtp_quit_timeout = 300;
    c->smtp_connection_cache_time_limit = 2;
    c->smtp_connection_reuse_count_limit = 100;
    c->debug = 0;
    config_copy(c->recipient_delimiter, sizeof c->recipient_delimiter, "+");
    c->vrfy = CONF_VRFY_HIDE;
    c->expn = CONF_EXPN_OFF;
    /* limits against abuse */
    c->smtpd_client_connection_count_limit = 50;
    c->smtpd_client_connection_rate_limit = 0;
    c->smtpd_client_message_rate_limit = 100;
    c->smtpd_client_recipient_rate_limit = 1000;
    c->anvil_rate_time_unit = 60;
    c->smtpd_soft_error_limit = 10;
    c->smtpd_error_sleep_time = 1;
    c->smtpd_greet_pause = 1;
    c->smtpd_greet_pause_ttl = 86400;
    c->smtpd_starttls_timeout = 10;
    c->stop_timeout = 20;
    /* postmaster_address: "postmaster@$hostname", set with the hostname */
    /* bounces and DSN */
    c->bounce_language = CONF_BOUNCE_AUTO;
    config_copy(c->bounce_template_dir, sizeof c->bounce_template_dir, "/etc/postern/bounce");
    c->bounce_size_limit = 50000;
    config_copy(c->double_bounce_recipient, sizeof c->double_bounce_recipient, "postmaster");
    c->max_hops = 50;
    /* submission and SMTP AUTH */
    config_copy(c->user_auth, sizeof c->user_auth, "postern-auth");
    c->auth_workers = 2;
    c->submission_check_from = 1;
    c->submission_hide_client = 0;
    c->smtpd_auth_failure_delay_ms = 1000;
    c->smtpd_auth_failure_limit = 10;
    c->smtpd_auth_user_failure_limit = 20;
    c->smtpd_auth_block_time = 600;
    config_copy(c->user_local, sizeof c->user_local, "postern-local");
    config_copy(c->local_transport, sizeof c->local_transport, "maildir");
}

void config_defaults(struct config *c)
{
    config_set_defaults(c);
    config_system_hostname(c->hostname, sizeof c->hostname);
    config_default_local_domains(c);
    config_default_postmaster(c);
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    config_strlist_clear(&c->local_domains);
    config_strlist_clear(&c->dns_forwarders);
    config_strlist_clear(&c->dns_stub_zones);
}
