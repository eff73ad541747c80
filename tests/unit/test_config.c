/*
 * test_config.c - CUnit tests for common/config.c (postern.conf).
 *
 * Each test writes its configuration into a mkstemp file under /tmp and
 * removes it again; error messages are compared in full, FILE:LINE included,
 * because operators and `postern check` depend on their exact shape.
 * Run from the repository root (postern.conf.example is loaded by path).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "suites.h"

static char tmp_path[64];
static char err[1024];

static void write_file(char *path, size_t pathlen, const char *text, size_t len)
{
    int fd;

    snprintf(path, pathlen, "/tmp/postern-test-XXXXXX");
    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

/* Loads text (len bytes) as a config file over c; keeps the file until done(). */
static int load_n(struct config *c, const char *text, size_t len)
{
    write_file(tmp_path, sizeof tmp_path, text, len);
    err[0] = '\0';
    return config_load(c, tmp_path, err, sizeof err);
}

static int load(struct config *c, const char *text)
{
    return load_n(c, text, strlen(text));
}

static void done(void)
{
    unlink(tmp_path);
}

/* Loads text into a fresh config and checks it succeeds. */
static int load_ok(struct config *c, const char *text)
{
    int rc;

    config_defaults(c);
    rc = load(c, text);
    if (rc != 0)
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    done();
    return rc;
}

/* Loads text and checks the error is exactly "TMPFILE:line: msg". */
static void expect_error_n(const char *text, size_t len, unsigned line, const char *msg)
{
    struct config c;
    char want[1200];
    int rc;

    config_defaults(&c);
    rc = load_n(&c, text, len);
    if (line > 0)
        snprintf(want, sizeof want, "%s:%u: %s", tmp_path, line, msg);
    else
        snprintf(want, sizeof want, "%s: %s", tmp_path, msg);
    CU_ASSERT_EQUAL(rc, -1);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
    CU_ASSERT_STRING_EQUAL(err, want);
    done();
    config_free(&c);
}

static void expect_error(const char *text, unsigned line, const char *msg)
{
    expect_error_n(text, strlen(text), line, msg);
}

/* Only checks that text is refused, for the tables of bad values. */
static void expect_bad(const char *text)
{
    struct config c;
    int rc;

    config_defaults(&c);
    rc = load(&c, text);
    if (rc == 0)
        fprintf(stderr, "\n  accepted: %s", text);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_TRUE(err[0] != '\0');
    done();
    config_free(&c);
}

static void check_defaults(const struct config *c)
{
    CU_ASSERT_TRUE(c->hostname[0] != '\0');
    CU_ASSERT_EQUAL(c->listen_smtp.n, 2);
    CU_ASSERT_STRING_EQUAL(c->listen_smtp.v[0].text, "0.0.0.0:25");
    CU_ASSERT_STRING_EQUAL(c->listen_smtp.v[1].text, "[::]:25");
    CU_ASSERT_EQUAL(c->listen_smtp.v[0].ss.ss_family, AF_INET);
    CU_ASSERT_EQUAL(c->listen_smtp.v[1].ss.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(c->listen_submission.n, 2);
    CU_ASSERT_STRING_EQUAL(c->listen_submission.v[0].text, "0.0.0.0:587");
    CU_ASSERT_STRING_EQUAL(c->listen_submission.v[1].text, "[::]:587");
    CU_ASSERT_EQUAL(c->listen_smtps.n, 2);
    CU_ASSERT_STRING_EQUAL(c->listen_smtps.v[0].text, "0.0.0.0:465");
    CU_ASSERT_STRING_EQUAL(c->listen_smtps.v[1].text, "[::]:465");
    CU_ASSERT_STRING_EQUAL(c->spool_dir, "/var/spool/postern");
    CU_ASSERT_STRING_EQUAL(c->run_dir, "/run/postern");
    CU_ASSERT_STRING_EQUAL(c->tls_cert_file, "");
    CU_ASSERT_STRING_EQUAL(c->tls_key_file, "");
    CU_ASSERT_TRUE(config_is_local_domain(c, "localhost"));
    CU_ASSERT_TRUE(config_is_local_domain(c, c->hostname));
    CU_ASSERT_STRING_EQUAL(c->mailbox_dir, "/var/mail/postern");
    CU_ASSERT_STRING_EQUAL(c->mailboxes_file, "/etc/postern/mailboxes");
    CU_ASSERT_STRING_EQUAL(c->aliases_file, "/etc/postern/aliases");
    CU_ASSERT_EQUAL(c->relay_networks.n, 2);
    CU_ASSERT_EQUAL(c->relay_networks.v[0].family, AF_INET);
    CU_ASSERT_EQUAL(c->relay_networks.v[0].prefix, 8);
    CU_ASSERT_EQUAL(c->relay_networks.v[1].family, AF_INET6);
    CU_ASSERT_EQUAL(c->relay_networks.v[1].prefix, 128);
    CU_ASSERT_STRING_EQUAL(c->relayhost, "");
    CU_ASSERT_EQUAL(c->max_message_size, 36700160);
    CU_ASSERT_EQUAL(c->queue_map_size, (uint64_t)16 << 30);
    CU_ASSERT_EQUAL(c->max_recipients, 1000);
    CU_ASSERT_EQUAL(c->queue_lifetime, 5 * 86400);
    CU_ASSERT_EQUAL(c->min_backoff, 300);
    CU_ASSERT_EQUAL(c->max_backoff, 3600);
    CU_ASSERT_EQUAL(c->delay_warning, 4 * 3600);
    CU_ASSERT_EQUAL(c->remote_smtp_port, 25);
    CU_ASSERT_EQUAL(c->dns_forwarders.n, 0);
    CU_ASSERT_EQUAL(c->dns_stub_zones.n, 0);
    CU_ASSERT_STRING_EQUAL(c->dnssec_trust_anchor_file, "/usr/share/dns/root.key");
    CU_ASSERT_STRING_EQUAL(c->user_smtpd, "postern-smtpd");
    CU_ASSERT_STRING_EQUAL(c->user_queue, "postern-queue");
    CU_ASSERT_STRING_EQUAL(c->user_resolver, "postern-resolver");
    CU_ASSERT_STRING_EQUAL(c->user_deliver, "postern-deliver");
    CU_ASSERT_EQUAL(c->chroot, 1);
    CU_ASSERT_EQUAL(c->smtpd_processes, 2);
    CU_ASSERT_EQUAL(c->smtpd_max_sessions, 1000);
    CU_ASSERT_EQUAL(c->smtpd_timeout, 300);
    CU_ASSERT_EQUAL(c->smtpd_error_limit, 20);
    CU_ASSERT_EQUAL(c->smtpd_max_line, 1000);
    CU_ASSERT_EQUAL(c->debug, 0);
}

static void test_defaults(void)
{
    struct config c;

    config_defaults(&c);
    check_defaults(&c);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c.listen_smtp.v[0].ss;
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 25);
    CU_ASSERT_EQUAL(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_EQUAL(c.listen_smtp.v[0].sslen, sizeof(struct sockaddr_in));
    CU_ASSERT_EQUAL(c.listen_smtp.v[1].sslen, sizeof(struct sockaddr_in6));
    config_free(&c);
    config_free(&c);            /* idempotent */
    CU_ASSERT_EQUAL(c.local_domains.n, 0);

    /* an empty file (and one of only comments) gives the defaults */
    if (load_ok(&c, "") == 0) {
        check_defaults(&c);
        CU_ASSERT_STRING_EQUAL(c.path, tmp_path);
    }
    config_free(&c);
    if (load_ok(&c, "# nothing\n\n   \n\t# indented comment\n") == 0)
        check_defaults(&c);
    config_free(&c);
}

static void test_all_keys(void)
{
    struct config c;
    char cert[64], key[64], mbox[64], text[4096];

    write_file(cert, sizeof cert, "cert", 4);
    write_file(key, sizeof key, "key", 3);
    write_file(mbox, sizeof mbox, "", 0);
    snprintf(text, sizeof text,
             "hostname = mx.example.org\n"
             "listen_smtp = 127.0.0.1:2525, [::1]:2525\n"
             "listen_submission = *:2587\n"
             "listen_smtps =\n"
             "spool_dir = /tmp/spool\n"
             "run_dir = /tmp/run\n"
             "tls_cert_file = %s\n"
             "tls_key_file = %s\n"
             "local_domains = Example.ORG example.net\n"
             "mailbox_dir = /tmp/mail\n"
             "mailboxes_file = %s\n"
             "aliases_file = %s\n"
             "relay_networks = 10.0.0.0/8 2001:db8::/32\n"
             "relayhost = [smtp.example.net]:587\n"
             "max_message_size = 10M\n"
             "max_recipients = 50\n"
             "queue_lifetime = 2d\n"
             "min_backoff = 1m\n"
             "max_backoff = 2h\n"
             "delay_warning = 0\n"
             "remote_smtp_port = 2525\n"
             "dns_forwarders = 192.0.2.53 2001:db8::53@5353\n"
             "dns_stub_zones = example.test=127.0.0.1@5353\n"
             "dnssec_trust_anchor_file = %s\n"
             "user_smtpd = 1001:1001\n"
             "user_queue = q\n"
             "user_resolver = r\n"
             "user_deliver = d\n"
             "chroot = no\n"
             "smtpd_processes = 4\n"
             "smtpd_max_sessions = 500\n"
             "smtpd_timeout = 2m\n"
             "smtpd_error_limit = 5\n"
             "smtpd_max_line = 2048\n"
             "log_level = debug\n",
             cert, key, mbox, mbox, mbox);
    if (load_ok(&c, text) == 0) {
        CU_ASSERT_STRING_EQUAL(c.hostname, "mx.example.org");
        CU_ASSERT_EQUAL(c.listen_smtp.n, 2);
        CU_ASSERT_STRING_EQUAL(c.listen_smtp.v[1].text, "[::1]:2525");
        CU_ASSERT_EQUAL(c.listen_submission.n, 1);
        CU_ASSERT_EQUAL(c.listen_smtps.n, 0);
        CU_ASSERT_STRING_EQUAL(c.spool_dir, "/tmp/spool");
        CU_ASSERT_STRING_EQUAL(c.run_dir, "/tmp/run");
        CU_ASSERT_STRING_EQUAL(c.tls_cert_file, cert);
        CU_ASSERT_STRING_EQUAL(c.tls_key_file, key);
        CU_ASSERT_EQUAL(c.local_domains.n, 2);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[0], "example.org");
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[1], "example.net");
        CU_ASSERT_FALSE(config_is_local_domain(&c, "localhost"));
        CU_ASSERT_STRING_EQUAL(c.mailbox_dir, "/tmp/mail");
        CU_ASSERT_STRING_EQUAL(c.mailboxes_file, mbox);
        CU_ASSERT_STRING_EQUAL(c.aliases_file, mbox);
        CU_ASSERT_EQUAL(c.relay_networks.n, 2);
        CU_ASSERT_STRING_EQUAL(c.relayhost, "[smtp.example.net]:587");
        CU_ASSERT_EQUAL(c.max_message_size, 10 * 1024 * 1024);
        CU_ASSERT_EQUAL(c.max_recipients, 50);
        CU_ASSERT_EQUAL(c.queue_lifetime, 2 * 86400);
        CU_ASSERT_EQUAL(c.min_backoff, 60);
        CU_ASSERT_EQUAL(c.max_backoff, 7200);
        CU_ASSERT_EQUAL(c.delay_warning, 0);
        CU_ASSERT_EQUAL(c.remote_smtp_port, 2525);
        CU_ASSERT_EQUAL(c.dns_forwarders.n, 2);
        CU_ASSERT_STRING_EQUAL(c.dns_forwarders.v[1], "2001:db8::53@5353");
        CU_ASSERT_EQUAL(c.dns_stub_zones.n, 1);
        CU_ASSERT_STRING_EQUAL(c.dns_stub_zones.v[0], "example.test=127.0.0.1@5353");
        CU_ASSERT_STRING_EQUAL(c.dnssec_trust_anchor_file, mbox);
        CU_ASSERT_STRING_EQUAL(c.user_smtpd, "1001:1001");
        CU_ASSERT_STRING_EQUAL(c.user_queue, "q");
        CU_ASSERT_STRING_EQUAL(c.user_resolver, "r");
        CU_ASSERT_STRING_EQUAL(c.user_deliver, "d");
        CU_ASSERT_EQUAL(c.chroot, 0);
        CU_ASSERT_EQUAL(c.smtpd_processes, 4);
        CU_ASSERT_EQUAL(c.smtpd_max_sessions, 500);
        CU_ASSERT_EQUAL(c.smtpd_timeout, 120);
        CU_ASSERT_EQUAL(c.smtpd_error_limit, 5);
        CU_ASSERT_EQUAL(c.smtpd_max_line, 2048);
        CU_ASSERT_EQUAL(c.debug, 1);
    }
    config_free(&c);
    unlink(cert);
    unlink(key);
    unlink(mbox);
}

static void test_syntax_errors(void)
{
    expect_error("max_recipients = 5\nmax_recipents = 7\n", 2,
                 "unknown key \"max_recipents\"");
    expect_error("# c\n\nhostname mx.example.org\n", 3,
                 "missing \"=\" after \"hostname\"");
    expect_error("hostname\n", 1, "missing \"=\" after \"hostname\"");
    expect_error(" = 5\n", 1, "continuation line without a key before it");
    expect_error("= 5\n", 1, "missing key before \"=\"");
    expect_error("max_recipients = 5\n# again\nmax_recipients = 6\n", 3,
                 "duplicate key \"max_recipients\" (first set on line 1)");
    expect_error("  local_domains = x.example\n", 1,
                 "continuation line without a key before it");
    expect_error("Max_Recipients = 5\n", 1, "unknown key \"Max_Recipients\"");
    expect_error("max recipients = 5\n", 1, "unknown key \"max recipients\"");
    expect_error("chroot = yes\nhostname = a\x01" "b\n", 2, "control character 0x01");
    expect_error_n("chroot = yes\n\nhostname = a\0b\n", 29, 3, "control character 0x00");
    expect_error("chroot = yes\r\nhostname = a\rb\r\n", 2, "control character 0x0d");

    /* a physical line longer than 8192 bytes */
    char *big = malloc(9000);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', 8999);
    memcpy(big, "run_dir = /", 11);
    big[8999] = '\0';
    expect_error(big, 1, "line too long (at most 8192 bytes)");
    free(big);

    /* a missing file */
    struct config c;
    config_defaults(&c);
    CU_ASSERT_EQUAL(config_load(&c, "/nonexistent/postern.conf", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "/nonexistent/postern.conf: No such file or directory");
    /* a NULL or tiny err buffer is fine */
    CU_ASSERT_EQUAL(config_load(&c, "/nonexistent/postern.conf", NULL, 0), -1);
    char tiny[8];
    CU_ASSERT_EQUAL(config_load(&c, "/nonexistent/postern.conf", tiny, sizeof tiny), -1);
    CU_ASSERT_EQUAL(strlen(tiny), 7);
    config_free(&c);
}

static void test_comments_continuations(void)
{
    struct config c;

    if (load_ok(&c, "# a comment\n"
                    "max_recipients = 7   # trailing comment\n"
                    "   # indented comment\n"
                    "\n"
                    "local_domains = a.example,\n"
                    "    B.example\n"
                    "# a comment in the middle\n"
                    "\n"
                    "\tc.example, # comment on a continuation\n"
                    "  d.example\n"
                    "spool_dir=/tmp/s#x\n"
                    "run_dir\t=\t/tmp/r   \r\n"
                    "hostname = mx.example.org") == 0) {      /* no final newline */
        CU_ASSERT_EQUAL(c.max_recipients, 7);
        CU_ASSERT_EQUAL(c.local_domains.n, 4);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[1], "b.example");
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[3], "d.example");
        CU_ASSERT_STRING_EQUAL(c.spool_dir, "/tmp/s");
        CU_ASSERT_STRING_EQUAL(c.run_dir, "/tmp/r");
        CU_ASSERT_STRING_EQUAL(c.hostname, "mx.example.org");
    }
    config_free(&c);

    /* an empty value continued on the next line */
    if (load_ok(&c, "max_recipients =\n  12\n") == 0)
        CU_ASSERT_EQUAL(c.max_recipients, 12);
    config_free(&c);

    /* errors in a continued value name the line of the key */
    expect_error("chroot = yes\nmax_recipients =\n  12\n  13\n", 2,
                 "max_recipients: \"12 13\": expected a whole number from 1 to 1000000");
    /* a continuation joins with a space, so a path cannot be split */
    expect_error("spool_dir = /var/\n  spool\n", 1,
                 "spool_dir: \"/var/ spool\": one value expected, found white space");
}

static void test_sizes(void)
{
    uint64_t v;

    CU_ASSERT_EQUAL(config_parse_size("0", &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(config_parse_size("1", &v), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(config_parse_size("36700160", &v), 0);
    CU_ASSERT_EQUAL(v, 36700160);
    CU_ASSERT_EQUAL(config_parse_size("10K", &v), 0);
    CU_ASSERT_EQUAL(v, 10240);
    CU_ASSERT_EQUAL(config_parse_size("10k", &v), 0);
    CU_ASSERT_EQUAL(v, 10240);
    CU_ASSERT_EQUAL(config_parse_size("35M", &v), 0);
    CU_ASSERT_EQUAL(v, 36700160);
    CU_ASSERT_EQUAL(config_parse_size("2G", &v), 0);
    CU_ASSERT_EQUAL(v, 2147483648ULL);
    CU_ASSERT_EQUAL(config_parse_size("18446744073709551615", &v), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(config_parse_size("18446744073709551610", &v), 0);
    CU_ASSERT_EQUAL(config_parse_size("17179869183G", &v), 0);
    CU_ASSERT_EQUAL(v, 17179869183ULL << 30);

    static const char *const bad[] = {
        "", "K", "10KB", "10 K", " 10", "10 ", "-1", "+1", "1.5M", "0x10", "10T",
        "18446744073709551616", "99999999999999999999999", "17179869184G",
        "18014398509481984K", "1e6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 12345;
        CU_ASSERT_EQUAL(config_parse_size(bad[i], &v), -1);
        CU_ASSERT_EQUAL(v, 12345);
    }
    CU_ASSERT_EQUAL(config_parse_size(NULL, &v), -1);

    struct config c;
    if (load_ok(&c, "max_message_size = 50M\n") == 0)
        CU_ASSERT_EQUAL(c.max_message_size, 50 * 1024 * 1024);
    config_free(&c);
    expect_error("max_message_size = 0\n", 1,
                 "max_message_size: \"0\": expected a size of at least 1, "
                 "a number with an optional K, M or G");
    expect_error("max_message_size = 10MB\n", 1,
                 "max_message_size: \"10MB\": expected a size of at least 1, "
                 "a number with an optional K, M or G");
}

static void test_durations(void)
{
    unsigned v;

    CU_ASSERT_EQUAL(config_parse_duration("0", &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(config_parse_duration("30", &v), 0);
    CU_ASSERT_EQUAL(v, 30);
    CU_ASSERT_EQUAL(config_parse_duration("30s", &v), 0);
    CU_ASSERT_EQUAL(v, 30);
    CU_ASSERT_EQUAL(config_parse_duration("5m", &v), 0);
    CU_ASSERT_EQUAL(v, 300);
    CU_ASSERT_EQUAL(config_parse_duration("4h", &v), 0);
    CU_ASSERT_EQUAL(v, 14400);
    CU_ASSERT_EQUAL(config_parse_duration("5d", &v), 0);
    CU_ASSERT_EQUAL(v, 432000);
    CU_ASSERT_EQUAL(config_parse_duration("4294967295", &v), 0);
    CU_ASSERT_EQUAL(v, 4294967295U);
    CU_ASSERT_EQUAL(config_parse_duration("49710d", &v), 0);
    CU_ASSERT_EQUAL(v, 49710U * 86400U);
    CU_ASSERT_EQUAL(config_parse_duration("1193046h", &v), 0);
    CU_ASSERT_EQUAL(v, 1193046U * 3600U);

    static const char *const bad[] = {
        "", "s", "m", "1w", "5M", "5H", "1h30m", "-5", "+5", " 5", "5 ", "5 m",
        "1.5h", "4294967296", "49711d", "1193047h", "4294967296s",
        "99999999999999999999999", "5ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 777;
        CU_ASSERT_EQUAL(config_parse_duration(bad[i], &v), -1);
        CU_ASSERT_EQUAL(v, 777);
    }
    CU_ASSERT_EQUAL(config_parse_duration(NULL, &v), -1);

    expect_error("queue_lifetime = 0\n", 1,
                 "queue_lifetime: \"0\": expected a duration of at least 1s, "
                 "a number with an optional s, m, h or d");
    expect_error("delay_warning = 1w\n", 1,
                 "delay_warning: \"1w\": expected a duration, "
                 "a number with an optional s, m, h or d");
    expect_error("max_backoff = 10m\nmin_backoff = 1h\n", 2,
                 "min_backoff (3600s) is longer than max_backoff (600s)");
    expect_error("min_backoff = 1h\nmax_backoff = 10m\n", 2,
                 "min_backoff (3600s) is longer than max_backoff (600s)");
    expect_error("min_backoff = 2h\n", 1,
                 "min_backoff (7200s) is longer than max_backoff (3600s)");
    struct config c;
    if (load_ok(&c, "min_backoff = 1h\nmax_backoff = 1h\nsmtpd_timeout = 90\n") == 0) {
        CU_ASSERT_EQUAL(c.min_backoff, 3600);
        CU_ASSERT_EQUAL(c.smtpd_timeout, 90);
    }
    config_free(&c);
}

static void test_numbers(void)
{
    struct config c;

    expect_error("max_recipients = 0\n", 1,
                 "max_recipients: \"0\": expected a whole number from 1 to 1000000");
    expect_error("max_recipients = ten\n", 1,
                 "max_recipients: \"ten\": expected a whole number from 1 to 1000000");
    expect_error("max_recipients =\n", 1,
                 "max_recipients: \"\": expected a whole number from 1 to 1000000");
    expect_error("smtpd_processes = 65\n", 1,
                 "smtpd_processes: \"65\": expected a whole number from 1 to 64");
    expect_error("smtpd_max_line = 999\n", 1,
                 "smtpd_max_line: \"999\": expected a whole number from 1000 to 2048");
    expect_error("remote_smtp_port = 65536\n", 1,
                 "remote_smtp_port: \"65536\": expected a whole number from 1 to 65535");
    expect_bad("smtpd_processes = 0\n");
    expect_bad("smtpd_max_line = 2049\n");
    expect_bad("remote_smtp_port = 0\n");
    expect_bad("remote_smtp_port = -1\n");
    expect_bad("max_recipients = 1k\n");
    expect_bad("max_recipients = 99999999999999999999999\n");
    expect_bad("smtpd_error_limit = 0\n");
    expect_bad("smtpd_max_sessions = 0\n");
    expect_bad("smtpd_timeout = 0\n");
    if (load_ok(&c, "max_recipients = 1\nsmtpd_processes = 64\nsmtpd_max_line = 1000\n"
                    "remote_smtp_port = 65535\n") == 0) {
        CU_ASSERT_EQUAL(c.max_recipients, 1);
        CU_ASSERT_EQUAL(c.smtpd_processes, 64);
        CU_ASSERT_EQUAL(c.smtpd_max_line, 1000);
        CU_ASSERT_EQUAL(c.remote_smtp_port, 65535);
    }
    config_free(&c);
    if (load_ok(&c, "smtpd_processes = 1\nremote_smtp_port = 1\n") == 0) {
        CU_ASSERT_EQUAL(c.smtpd_processes, 1);
        CU_ASSERT_EQUAL(c.remote_smtp_port, 1);
    }
    config_free(&c);
}

static void test_booleans_loglevel(void)
{
    static const char *const yes[] = { "yes", "YES", "true", "True", "1" };
    static const char *const no[] = { "no", "No", "false", "FALSE", "0" };
    struct config c;
    char text[64];

    for (size_t i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "chroot = %s\n", no[i]);
        if (load_ok(&c, text) == 0)
            CU_ASSERT_EQUAL(c.chroot, 0);
        config_free(&c);
        snprintf(text, sizeof text, "chroot = %s\n", yes[i]);
        if (load_ok(&c, text) == 0)
            CU_ASSERT_EQUAL(c.chroot, 1);
        config_free(&c);
    }
    expect_error("chroot = maybe\n", 1, "chroot: \"maybe\": expected yes or no");
    expect_bad("chroot =\n");
    expect_bad("chroot = yes no\n");
    expect_bad("chroot = 2\n");
    if (load_ok(&c, "log_level = debug\n") == 0)
        CU_ASSERT_EQUAL(c.debug, 1);
    config_free(&c);
    if (load_ok(&c, "log_level = info\n") == 0)
        CU_ASSERT_EQUAL(c.debug, 0);
    config_free(&c);
    expect_error("log_level = trace\n", 1, "log_level: \"trace\": expected info or debug");
}

static void test_strings(void)
{
    struct config c;
    char text[2200], name[200];

    /* strings up to their array size, one more is an error */
    char fill[1100];
    memset(name, 'p', sizeof name);
    memset(fill, 's', sizeof fill);
    snprintf(text, sizeof text, "spool_dir = /%.1022s\n", fill);
    if (load_ok(&c, text) == 0)
        CU_ASSERT_EQUAL(strlen(c.spool_dir), 1023);
    config_free(&c);
    snprintf(text, sizeof text, "spool_dir = /%.1023s\n", fill);
    expect_error(text, 1, "spool_dir: value too long (at most 1023 characters)");

    snprintf(text, sizeof text, "user_smtpd = %.127s\n", name);
    if (load_ok(&c, text) == 0)
        CU_ASSERT_EQUAL(strlen(c.user_smtpd), 127);
    config_free(&c);
    snprintf(text, sizeof text, "user_smtpd = %.128s\n", name);
    expect_error(text, 1, "user_smtpd: value too long (at most 127 characters)");
    expect_error("user_queue =\n", 1, "user_queue: empty value");
    expect_error("spool_dir =\n", 1, "spool_dir: empty value");
    expect_bad("run_dir = # only a comment\n");
    expect_bad("mailbox_dir =\n");
    expect_bad("user_deliver = post ern\n");

    /* hostname: a valid domain name, kept as written */
    if (load_ok(&c, "hostname = MX.Example.org\n") == 0) {
        CU_ASSERT_STRING_EQUAL(c.hostname, "MX.Example.org");
        CU_ASSERT_EQUAL(c.local_domains.n, 2);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[0], "mx.example.org");
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[1], "localhost");
    }
    config_free(&c);
    expect_error("hostname = mx_1.example.org\n", 1,
                 "hostname: \"mx_1.example.org\" is not a valid host name");
    expect_bad("hostname =\n");
    expect_bad("hostname = mx.example.org.\n");
    expect_bad("hostname = a b\n");
}

static void test_hostname_expansion(void)
{
    struct config c;

    /* hostname set after its use */
    if (load_ok(&c, "local_domains = $hostname, mail.${hostname}, x.example, $hostname\n"
                    "spool_dir = /tmp/$hostname/$$x\n"
                    "hostname = MX.Example.org\n") == 0) {
        CU_ASSERT_EQUAL(c.local_domains.n, 3);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[0], "mx.example.org");
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[1], "mail.mx.example.org");
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[2], "x.example");
        CU_ASSERT_STRING_EQUAL(c.spool_dir, "/tmp/MX.Example.org/$x");
        CU_ASSERT_TRUE(config_is_local_domain(&c, "MAIL.mx.EXAMPLE.org"));
        CU_ASSERT_FALSE(config_is_local_domain(&c, "localhost"));
        CU_ASSERT_FALSE(config_is_local_domain(&c, "example.org"));
        CU_ASSERT_FALSE(config_is_local_domain(&c, NULL));
    }
    config_free(&c);

    expect_error("hostname = mx.example.org\nspool_dir = /tmp/$hostnme\n", 2,
                 "spool_dir: unknown variable \"$hostnme\"");
    expect_error("spool_dir = /tmp/$\n", 1,
                 "spool_dir: bad \"$\" (write $hostname, ${hostname}, or $$ for a dollar sign)");
    expect_error("spool_dir = /tmp/${hostname\n", 1,
                 "spool_dir: bad \"$\" (write $hostname, ${hostname}, or $$ for a dollar sign)");
    expect_error("spool_dir = /tmp/$hostname_dir\n", 1,
                 "spool_dir: unknown variable \"$hostname_dir\"");
    expect_error("hostname = $hostname\n", 1, "hostname: $hostname cannot be used here");
}

static void test_lists(void)
{
    struct config c;
    char text[8192];
    size_t o;

    if (load_ok(&c, "local_domains = ,a.example,,  b.example ,\tc.example,\n"
                    "relay_networks =\n"
                    "dns_forwarders = \n") == 0) {
        CU_ASSERT_EQUAL(c.local_domains.n, 3);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[2], "c.example");
        CU_ASSERT_EQUAL(c.relay_networks.n, 0);
        CU_ASSERT_EQUAL(c.dns_forwarders.n, 0);
    }
    config_free(&c);
    if (load_ok(&c, "local_domains =\n") == 0)
        CU_ASSERT_EQUAL(c.local_domains.n, 0);
    config_free(&c);

    /* 64 entries are fine, 65 are too many */
    o = (size_t)snprintf(text, sizeof text, "local_domains =");
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, " d%d.example", i);
    snprintf(text + o, sizeof text - o, "\n");
    if (load_ok(&c, text) == 0) {
        CU_ASSERT_EQUAL(c.local_domains.n, 64);
        CU_ASSERT_STRING_EQUAL(c.local_domains.v[63], "d63.example");
    }
    config_free(&c);
    snprintf(text + o, sizeof text - o, " d64.example\n");
    expect_error(text, 1, "local_domains: too many entries (at most 64)");

    o = (size_t)snprintf(text, sizeof text, "relay_networks = 10.0.0.1");
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "\n  10.0.%d.0/24", i);
    snprintf(text + o, sizeof text - o, "\n");
    expect_error(text, 1, "relay_networks: too many entries (at most 64)");
    o = (size_t)snprintf(text, sizeof text, "listen_smtp =");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, " 127.0.0.1:%d", 1000 + i);
    snprintf(text + o, sizeof text - o, "\n");
    expect_error(text, 1, "listen_smtp: too many entries (at most 64)");

    expect_error("local_domains = a.example b..example\n", 1,
                 "local_domains: \"b..example\" is not a domain name");
    expect_bad("local_domains = [192.0.2.1]\n");
    expect_bad("local_domains = *.example.com\n");
}

static void test_listen(void)
{
    struct listen_addr la;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&la.ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&la.ss;
    unsigned char v6[16];

    CU_ASSERT_EQUAL(config_parse_listen("127.0.0.1:2525", &la), 0);
    CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 2525);
    CU_ASSERT_EQUAL(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    CU_ASSERT_EQUAL(la.sslen, sizeof(struct sockaddr_in));
    CU_ASSERT_STRING_EQUAL(la.text, "127.0.0.1:2525");

    CU_ASSERT_EQUAL(config_parse_listen("*:25", &la), 0);
    CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
    CU_ASSERT_EQUAL(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_STRING_EQUAL(la.text, "*:25");

    CU_ASSERT_EQUAL(config_parse_listen("[2001:db8::1]:65535", &la), 0);
    CU_ASSERT_EQUAL(sin6->sin6_family, AF_INET6);
    CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), 65535);
    inet_pton(AF_INET6, "2001:db8::1", v6);
    CU_ASSERT_EQUAL(memcmp(&sin6->sin6_addr, v6, 16), 0);
    CU_ASSERT_EQUAL(la.sslen, sizeof(struct sockaddr_in6));
    CU_ASSERT_EQUAL(config_parse_listen("[::]:1", &la), 0);

    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:2x", "127.0.0.1:-1", "127.0.0.1: 25", "::1:25", "[::1]", "[::1]25",
        "[::1]:", "[::1]:0", "[127.0.0.1]:25", "localhost:25", "256.0.0.1:25",
        ":25", "[]:25", "[::1:25", "*:", "**:25", "[*]:25", "1.2.3.4:25:25",
        "[fe80::1%eth0]:25",
        "[1111:2222:3333:4444:5555:6666:7777:8888]:25/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_listen(bad[i], &la) != -1)
            fprintf(stderr, "\n  listen accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(config_parse_listen(bad[i], &la), -1);
    }
    CU_ASSERT_EQUAL(config_parse_listen(NULL, &la), -1);

    expect_error("listen_smtp = 127.0.0.1:0\n", 1,
                 "listen_smtp: \"127.0.0.1:0\": bad port (1..65535)");
    expect_error("listen_smtps = ::1:465\n", 1,
                 "listen_smtps: \"::1:465\": write an IPv6 address as [addr]:port");
    expect_error("listen_submission = mail.example.org:587\n", 1,
                 "listen_submission: \"mail.example.org:587\": not a numeric IPv4 address");
    expect_error("listen_smtp = 127.0.0.1\n", 1, "listen_smtp: \"127.0.0.1\": missing :port");
}

static void sa4(struct sockaddr_storage *ss, const char *a)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    sin->sin_family = AF_INET;
    CU_ASSERT_FATAL(inet_pton(AF_INET, a, &sin->sin_addr) == 1);
}

static void sa6(struct sockaddr_storage *ss, const char *a)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    sin6->sin6_family = AF_INET6;
    CU_ASSERT_FATAL(inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1);
}

static int match(const struct cidr_list *l, const char *a)
{
    struct sockaddr_storage ss;

    if (strchr(a, ':'))
        sa6(&ss, a);
    else
        sa4(&ss, a);
    return cidr_list_match(l, (struct sockaddr *)&ss);
}

static void test_cidr(void)
{
    struct cidr cd;
    struct cidr_list l;

    CU_ASSERT_EQUAL(config_parse_cidr("10.0.0.0/8", &cd), 0);
    CU_ASSERT_EQUAL(cd.family, AF_INET);
    CU_ASSERT_EQUAL(cd.prefix, 8);
    CU_ASSERT_EQUAL(cd.addr[0], 10);
    CU_ASSERT_EQUAL(config_parse_cidr("192.0.2.1", &cd), 0);
    CU_ASSERT_EQUAL(cd.prefix, 32);
    CU_ASSERT_EQUAL(config_parse_cidr("::1", &cd), 0);
    CU_ASSERT_EQUAL(cd.family, AF_INET6);
    CU_ASSERT_EQUAL(cd.prefix, 128);
    CU_ASSERT_EQUAL(config_parse_cidr("0.0.0.0/0", &cd), 0);
    CU_ASSERT_EQUAL(cd.prefix, 0);
    CU_ASSERT_EQUAL(config_parse_cidr("::/0", &cd), 0);
    CU_ASSERT_EQUAL(config_parse_cidr("2001:db8::/32", &cd), 0);
    CU_ASSERT_EQUAL(config_parse_cidr("192.168.1.128/25", &cd), 0);

    static const char *const bad[] = {
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.1/8", "2001:db8::1/32",
        "192.168.1.129/25", "x/8", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8",
        "10.0.0/8", "10.0.0.0/8x", "example.com", "10.0.0.0/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_cidr(bad[i], &cd) != -1)
            fprintf(stderr, "\n  cidr accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(config_parse_cidr(bad[i], &cd), -1);
    }

    memset(&l, 0, sizeof l);
    const char *nets[] = { "10.0.0.0/8", "192.168.1.0/24", "172.16.0.0/12",
                           "2001:db8::/32", "192.0.2.7", "2001:db8:1::/127" };
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(config_parse_cidr(nets[i], &l.v[l.n++]), 0);

    CU_ASSERT_TRUE(match(&l, "10.0.0.0"));
    CU_ASSERT_TRUE(match(&l, "10.255.255.255"));
    CU_ASSERT_FALSE(match(&l, "11.0.0.0"));
    CU_ASSERT_FALSE(match(&l, "9.255.255.255"));
    CU_ASSERT_TRUE(match(&l, "192.168.1.255"));
    CU_ASSERT_FALSE(match(&l, "192.168.2.0"));
    CU_ASSERT_TRUE(match(&l, "172.31.255.255"));
    CU_ASSERT_FALSE(match(&l, "172.32.0.0"));
    CU_ASSERT_TRUE(match(&l, "192.0.2.7"));
    CU_ASSERT_FALSE(match(&l, "192.0.2.6"));
    CU_ASSERT_TRUE(match(&l, "2001:db8:ffff::1"));
    CU_ASSERT_FALSE(match(&l, "2001:db9::"));
    CU_ASSERT_TRUE(match(&l, "2001:db8:1::1"));
    /* v4-mapped clients from a dual-stack socket match IPv4 networks */
    CU_ASSERT_TRUE(match(&l, "::ffff:10.1.2.3"));
    CU_ASSERT_TRUE(match(&l, "::ffff:192.0.2.7"));
    CU_ASSERT_FALSE(match(&l, "::ffff:11.1.2.3"));
    CU_ASSERT_FALSE(match(&l, "::a01:203"));          /* IPv4-compatible, not mapped */
    CU_ASSERT_FALSE(match(&l, "::1"));

    /* default relay_networks */
    struct config c;
    config_defaults(&c);
    CU_ASSERT_TRUE(match(&c.relay_networks, "127.0.0.1"));
    CU_ASSERT_TRUE(match(&c.relay_networks, "127.255.0.9"));
    CU_ASSERT_TRUE(match(&c.relay_networks, "::ffff:127.0.0.1"));
    CU_ASSERT_TRUE(match(&c.relay_networks, "::1"));
    CU_ASSERT_FALSE(match(&c.relay_networks, "::2"));
    CU_ASSERT_FALSE(match(&c.relay_networks, "128.0.0.1"));
    config_free(&c);

    /* /0 networks */
    memset(&l, 0, sizeof l);
    config_parse_cidr("0.0.0.0/0", &l.v[l.n++]);
    CU_ASSERT_TRUE(match(&l, "203.0.113.9"));
    CU_ASSERT_TRUE(match(&l, "::ffff:203.0.113.9"));
    CU_ASSERT_FALSE(match(&l, "2001:db8::1"));
    memset(&l, 0, sizeof l);
    config_parse_cidr("::ffff:0:0/96", &l.v[l.n++]);
    CU_ASSERT_TRUE(match(&l, "203.0.113.9"));        /* plain v4 seen as mapped */
    CU_ASSERT_FALSE(match(&l, "2001:db8::1"));

    /* odd inputs */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    CU_ASSERT_FALSE(cidr_list_match(&l, (struct sockaddr *)&ss));
    CU_ASSERT_FALSE(cidr_list_match(&l, NULL));
    memset(&l, 0, sizeof l);
    CU_ASSERT_FALSE(match(&l, "10.0.0.1"));

    expect_error("relay_networks = 127.0.0.0/8 10.0.0.1/8\n", 1,
                 "relay_networks: \"10.0.0.1/8\" has host bits set (network is 10.0.0.0/8)");
    expect_error("relay_networks = 10.0.0.0/40\n", 1,
                 "relay_networks: \"10.0.0.0/40\": bad prefix length (0..32)");
    expect_error("relay_networks = localhost\n", 1,
                 "relay_networks: \"localhost\" is not a network address");
}

static void test_tls_files(void)
{
    struct config c;
    char cert[64], key[64], text[512];

    write_file(cert, sizeof cert, "cert", 4);
    write_file(key, sizeof key, "key", 3);

    snprintf(text, sizeof text, "chroot = yes\ntls_cert_file = %s\n", cert);
    expect_error(text, 2, "tls_cert_file is set but tls_key_file is not (set both or neither)");
    snprintf(text, sizeof text, "tls_key_file = %s\n", key);
    expect_error(text, 1, "tls_key_file is set but tls_cert_file is not (set both or neither)");
    snprintf(text, sizeof text, "tls_cert_file = %s\ntls_key_file =\n", cert);
    expect_error(text, 1, "tls_cert_file is set but tls_key_file is not (set both or neither)");

    snprintf(text, sizeof text, "tls_cert_file = /nonexistent/cert.pem\ntls_key_file = %s\n", key);
    expect_error(text, 1, "tls_cert_file: \"/nonexistent/cert.pem\": No such file or directory");
    snprintf(text, sizeof text, "tls_cert_file = %s\n\ntls_key_file = /tmp\n", cert);
    expect_error(text, 3, "tls_key_file: \"/tmp\": not a regular file");

    snprintf(text, sizeof text, "tls_cert_file = %s\ntls_key_file = %s\n", cert, key);
    if (load_ok(&c, text) == 0) {
        CU_ASSERT_STRING_EQUAL(c.tls_cert_file, cert);
        CU_ASSERT_STRING_EQUAL(c.tls_key_file, key);
    }
    config_free(&c);
    if (load_ok(&c, "tls_cert_file =\ntls_key_file =\n") == 0)
        CU_ASSERT_STRING_EQUAL(c.tls_cert_file, "");
    config_free(&c);

    /* unreadable is fine here: a process that dropped root re-reads the
     * configuration, and only smtpd (as root) loads the key itself */
    chmod(key, 0);
    snprintf(text, sizeof text, "tls_cert_file = %s\ntls_key_file = %s\n", cert, key);
    if (load_ok(&c, text) == 0)
        CU_ASSERT_STRING_EQUAL(c.tls_key_file, key);
    config_free(&c);
    unlink(cert);
    unlink(key);
}

static void test_optional_files(void)
{
    struct config c;
    char f[64], text[512];

    /* the defaults need not exist */
    if (load_ok(&c, "chroot = yes\n") == 0)
        CU_ASSERT_STRING_EQUAL(c.mailboxes_file, "/etc/postern/mailboxes");
    config_free(&c);

    expect_error("aliases_file = /nonexistent/aliases\n", 1,
                 "aliases_file: \"/nonexistent/aliases\": No such file or directory");
    expect_error("mailboxes_file = /nonexistent/mailboxes\n", 1,
                 "mailboxes_file: \"/nonexistent/mailboxes\": No such file or directory");
    expect_error("dnssec_trust_anchor_file = /nonexistent/root.key\n", 1,
                 "dnssec_trust_anchor_file: \"/nonexistent/root.key\": No such file or directory");
    expect_error("aliases_file = /tmp\n", 1, "aliases_file: \"/tmp\": not a regular file");

    write_file(f, sizeof f, "a: b\n", 5);
    snprintf(text, sizeof text, "aliases_file = %s\nmailboxes_file =\n", f);
    if (load_ok(&c, text) == 0) {
        CU_ASSERT_STRING_EQUAL(c.aliases_file, f);
        CU_ASSERT_STRING_EQUAL(c.mailboxes_file, "");
    }
    config_free(&c);
    unlink(f);
}

static void test_dns_relayhost(void)
{
    struct config c;

    if (load_ok(&c, "dns_forwarders = 192.0.2.53, 127.0.0.1@5353 2001:db8::53 ::1@53\n"
                    "dns_stub_zones = example.test=127.0.0.1@5353,\n"
                    "   corp.example.=10.0.0.1 rev.example=2001:db8::1@53\n") == 0) {
        CU_ASSERT_EQUAL(c.dns_forwarders.n, 4);
        CU_ASSERT_STRING_EQUAL(c.dns_forwarders.v[1], "127.0.0.1@5353");
        CU_ASSERT_EQUAL(c.dns_stub_zones.n, 3);
        CU_ASSERT_STRING_EQUAL(c.dns_stub_zones.v[1], "corp.example.=10.0.0.1");
    }
    config_free(&c);
    expect_error("dns_forwarders = ns.example.org\n", 1,
                 "dns_forwarders: \"ns.example.org\": expected addr or addr@port");
    expect_bad("dns_forwarders = 1.2.3.4@0\n");
    expect_bad("dns_forwarders = 1.2.3.4@\n");
    expect_bad("dns_forwarders = 1.2.3.4@65536\n");
    expect_bad("dns_forwarders = @53\n");
    expect_bad("dns_forwarders = [::1]@53\n");
    expect_error("dns_stub_zones = example.test\n", 1,
                 "dns_stub_zones: \"example.test\": expected zone=addr or zone=addr@port");
    expect_bad("dns_stub_zones = =1.2.3.4\n");
    expect_bad("dns_stub_zones = a_b.test=1.2.3.4\n");
    expect_bad("dns_stub_zones = example.test=ns.example.test@53\n");
    expect_bad("dns_stub_zones = example.test=1.2.3.4@x\n");
    expect_bad("dns_stub_zones = example.test = 1.2.3.4\n");

    static const char *const good[] = {
        "[smtp.example.net]:587", "smtp.example.net:25", "smtp.example.net",
        "[smtp.example.net]", "[192.0.2.1]:25", "[2001:db8::1]:25", "[IPv6:2001:db8::1]",
        "192.0.2.1:2525",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "relayhost = %s\n", good[i]);
        if (load_ok(&c, text) == 0)
            CU_ASSERT_STRING_EQUAL(c.relayhost, good[i]);
        config_free(&c);
    }
    expect_error("relayhost = smtp.example.net:0\n", 1,
                 "relayhost: \"smtp.example.net:0\": expected [host]:port, host:port or host");
    static const char *const bad[] = {
        "smtp.example.net:", "[smtp.example.net", "[smtp.example.net]x", "bad_host",
        "2001:db8::1", "[]:25", ":25", "[smtp.example.net]:99999", "smtp..example.net",
        "[IPv6:192.0.2.1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "relayhost = %s\n", bad[i]);
        expect_bad(text);
    }
    expect_error("relayhost = a.example b.example\n", 1,
                 "relayhost: \"a.example b.example\": one value expected, found white space");
}

static void test_reload_semantics(void)
{
    struct config c;

    /* a failed load leaves the previous configuration untouched */
    if (load_ok(&c, "max_recipients = 5\nlocal_domains = a.example\n") != 0)
        return;
    CU_ASSERT_EQUAL(load(&c, "max_recipients = 6\nlocal_domains = b.example\nbogus = 1\n"), -1);
    done();
    CU_ASSERT_EQUAL(c.max_recipients, 5);
    CU_ASSERT_EQUAL(c.local_domains.n, 1);
    CU_ASSERT_STRING_EQUAL(c.local_domains.v[0], "a.example");
    CU_ASSERT_EQUAL(load(&c, "local_domains = b.example\nmax_recipients = 0\n"), -1);
    done();
    CU_ASSERT_STRING_EQUAL(c.local_domains.v[0], "a.example");

    /* a key removed from the file goes back to its default */
    CU_ASSERT_EQUAL(load(&c, "chroot = no\n"), 0);
    done();
    CU_ASSERT_EQUAL(c.max_recipients, 1000);
    CU_ASSERT_EQUAL(c.chroot, 0);
    CU_ASSERT_TRUE(config_is_local_domain(&c, "localhost"));
    CU_ASSERT_FALSE(config_is_local_domain(&c, "a.example"));
    config_free(&c);
}

static void test_config_path(void)
{
    const char *old = getenv("POSTERN_CONF");
    char *saved = old ? strdup(old) : NULL;

    unsetenv("POSTERN_CONF");
    CU_ASSERT_STRING_EQUAL(config_path(NULL), CONF_DEFAULT_PATH);
    CU_ASSERT_STRING_EQUAL(config_path(""), CONF_DEFAULT_PATH);
    CU_ASSERT_STRING_EQUAL(config_path("/x/opt.conf"), "/x/opt.conf");
    setenv("POSTERN_CONF", "/x/env.conf", 1);
    CU_ASSERT_STRING_EQUAL(config_path(NULL), "/x/env.conf");
    CU_ASSERT_STRING_EQUAL(config_path("/x/opt.conf"), "/x/opt.conf");
    setenv("POSTERN_CONF", "", 1);
    CU_ASSERT_STRING_EQUAL(config_path(NULL), CONF_DEFAULT_PATH);
    if (saved) {
        setenv("POSTERN_CONF", saved, 1);
        free(saved);
    } else {
        unsetenv("POSTERN_CONF");
    }
}

/* postern.conf.example documents every key and parses to the defaults. */
static void test_example_file(void)
{
    static const char *const keys[] = {
        "hostname", "listen_smtp", "listen_submission", "listen_smtps", "spool_dir",
        "run_dir", "tls_cert_file", "tls_key_file", "local_domains", "mailbox_dir",
        "mailboxes_file", "aliases_file", "relay_networks", "relayhost",
        "max_message_size", "max_recipients", "queue_lifetime", "min_backoff",
        "max_backoff", "delay_warning", "remote_smtp_port", "dns_forwarders",
        "dns_stub_zones", "dnssec_trust_anchor_file", "user_smtpd", "user_queue",
        "user_resolver", "user_deliver", "chroot", "smtpd_processes",
        "smtpd_max_sessions", "smtpd_timeout", "smtpd_error_limit", "smtpd_max_line",
        "log_level",
    };
    struct config c;
    char *text;
    FILE *f;
    long n;

    config_defaults(&c);
    if (config_load(&c, "postern.conf.example", err, sizeof err) != 0)
        fprintf(stderr, "\n  postern.conf.example: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(config_load(&c, "postern.conf.example", err, sizeof err), 0);
    check_defaults(&c);
    config_free(&c);

    f = fopen("postern.conf.example", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    CU_ASSERT_FATAL(text != NULL && fread(text, 1, (size_t)n, f) == (size_t)n);
    text[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\n#%s =", keys[i]);
        if (strstr(text, pat) == NULL)
            fprintf(stderr, "\n  postern.conf.example lacks \"#%s =\"\n", keys[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, pat));
    }
    free(text);
}

/* The key table (config_impl.h): every key has a parser, one name each,
 * hostname first (every other value may use it), each field inside
 * struct config, and every key is documented in postern.conf.example. */
static void test_key_table(void)
{
    struct config c;
    char why[CONFIG_WHY_MAX], *example;
    FILE *f;
    long n;

    CU_ASSERT_FATAL(config_nkeys > 1);
    CU_ASSERT_STRING_EQUAL(config_keys[0].name, "hostname");
    CU_ASSERT_EQUAL(config_keys[0].type, CT_HOSTNAME);
    f = fopen("postern.conf.example", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    example = calloc(1, (size_t)n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(example);
    CU_ASSERT_EQUAL(fread(example, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        CU_ASSERT((unsigned)k->type < CT_COUNT);
        CU_ASSERT(k->off + k->size <= sizeof(struct config));
        CU_ASSERT_EQUAL(config_key_index(k->name), (int)i);
        if (strstr(example, k->name) == NULL)
            fprintf(stderr, "\n  key %s is not in postern.conf.example\n", k->name);
        CU_ASSERT_PTR_NOT_NULL(strstr(example, k->name));
    }
    free(example);
    CU_ASSERT_EQUAL(config_key_index("no_such_key"), -1);
    /* a type without a parser is refused, not called */
    {
        struct config_key bad = { "x", CT_COUNT, 0, 1, 0, 0 };
        config_defaults(&c);
        CU_ASSERT_EQUAL(config_set_value(&c, &bad, "v", why, sizeof why), -1);
        CU_ASSERT_STRING_EQUAL(why, "no parser for this key");
        config_free(&c);
    }
}

void suite_config(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);

    if (s == NULL)
        return;
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "every key", test_all_keys);
    CU_add_test(s, "syntax errors", test_syntax_errors);
    CU_add_test(s, "comments and continuations", test_comments_continuations);
    CU_add_test(s, "sizes", test_sizes);
    CU_add_test(s, "durations", test_durations);
    CU_add_test(s, "numbers", test_numbers);
    CU_add_test(s, "booleans and log_level", test_booleans_loglevel);
    CU_add_test(s, "strings", test_strings);
    CU_add_test(s, "$hostname", test_hostname_expansion);
    CU_add_test(s, "lists", test_lists);
    CU_add_test(s, "listen addresses", test_listen);
    CU_add_test(s, "cidr", test_cidr);
    CU_add_test(s, "tls files", test_tls_files);
    CU_add_test(s, "optional files", test_optional_files);
    CU_add_test(s, "dns and relayhost", test_dns_relayhost);
    CU_add_test(s, "reload semantics", test_reload_semantics);
    CU_add_test(s, "config_path", test_config_path);
    CU_add_test(s, "postern.conf.example", test_example_file);
    CU_add_test(s, "the key table", test_key_table);
}
