/*
 * smtpc-drive.c - a test driver for the SMTP client engine (deliver/smtpc.h):
 * runs the delivery of one message file (optionally N times over one
 * connection) to one host from command-line arguments, and prints every
 * session log line ("log: ..."), every recipient's result ("rcpt: ...",
 * and the SPEC §6 line as "line: ...") and each message's outcome
 * ("outcome: ..."). Used by tests/integration/test_smtpc.py; it is a test
 * tool and must never be installed.
 *
 *   smtpc-drive --addr IP [--addr IP...] --port N --from ADDR
 *               --rcpt "ADDR [NOTIFY=..] [ORCPT=..]"... [--host NAME]
 *               [--helo NAME] [--tls none|may|encrypt] [--plain-retry]
 *               [--8bit] [--smtputf8] [--ret FULL|HDRS] [--envid X]
 *               [--auth USER:PASS] [--messages N] [--timeout MS]
 *               [--ca FILE] [--require-verified] [--gap MS] [--idle MS]
 *               [--connect-timeout MS] MESSAGE-FILE
 */
#include <arpa/inet.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "evloop.h"
#include "log.h"
#include "smtpc.h"
#include "util.h"

#define MAX_RCPT 64

static struct evloop *ev;
static struct smtpc_config cfg;
static struct smtpc_dest dest;
static struct smtpc_msg msg;
static struct smtpc_rcpt rcpt[MAX_RCPT];
static unsigned messages = 1, sent_msgs, connections, open_sessions;
static int plain_retry;
static unsigned gap_ms;
static uint64_t t0;

static const char *const outcome_name[] = {
    "done", "next-mx", "tls-failed", "no-smtputf8", "failed",
};
static const char *const status_name[] = { "pending", "sent", "deferred", "bounced" };

static void on_log(void *arg, const char *line)
{
    (void)arg;
    printf("log: %s\n", line);
    fflush(stdout);
}

static void on_closed(struct smtpc *s, void *arg)
{
    (void)s;
    (void)arg;
    if (--open_sessions == 0)
        ev_stop(ev);
}

static void on_done(struct smtpc *s, struct smtpc_msg *m, enum smtpc_outcome o, void *arg);

/* --require-verified: the policy hook a later DANE/MTA-STS policy plugs
 * into; here, the chain must verify against --ca. */
static int check_chain(struct ssl_st *ssl, const char *host, void *arg)
{
    (void)host;
    (void)arg;
    return SSL_get_verify_result(ssl) == X509_V_OK;
}

static void start(void)
{
    connections++;
    open_sessions++;
    if (!smtpc_start(ev, &cfg, &dest, &msg, on_done, NULL)) {
        fprintf(stderr, "smtpc_start failed\n");
        exit(2);
    }
}

/* The next message: over the same connection if it is still reusable. */
static void next_message(struct evloop *loop, void *arg)
{
    struct smtpc *s = arg;

    (void)loop;
    if (smtpc_reusable(s) && smtpc_send(s, &msg) == 0)
        return;
    printf("reconnect: session not reusable\n");
    start();            /* first: quitting the last session stops the loop */
    smtpc_quit(s);
}

static void on_done(struct smtpc *s, struct smtpc_msg *m, enum smtpc_outcome o, void *arg)
{
    char line[2048];

    (void)arg;
    printf("outcome: %s elapsed_ms=%llu connection=%u\n", outcome_name[o],
           (unsigned long long)(now_ms() - t0), connections);
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct smtpc_rcpt *r = &m->rcpt[i];
        char addr[520];
        log_sanitize(r->addr, strlen(r->addr), addr, sizeof(addr));
        printf("rcpt: %s status=%s dsn=%s reply=%s\n", addr, status_name[r->status], r->dsn, r->reply);
        smtpc_format_result(m, r, (double)(m->delay_conn_ms + m->delay_xfer_ms) / 1000.0, 0, 0,
                            line, sizeof(line));
        printf("line: %s\n", line);
    }
    fflush(stdout);
    sent_msgs++;
    if (o == SMTPC_TLS_FAILED && plain_retry && cfg.tls != SMTPC_TLS_NONE) {
        printf("retry: plain text\n");
        cfg.tls = SMTPC_TLS_NONE;
        sent_msgs--;
        start();
        smtpc_quit(s);
        return;
    }
    if (sent_msgs < messages) {
        if (gap_ms) {
            if (!ev_timer(ev, gap_ms, next_message, s)) {
                fprintf(stderr, "ev_timer failed\n");
                exit(2);
            }
            return;
        }
        next_message(ev, s);
        return;
    }
    smtpc_quit(s);
}

static void add_addr(const char *ip)
{
    struct sockaddr_storage *ss = &dest.addr[dest.naddr];

    if (dest.naddr >= SMTPC_MAX_ADDRS) {
        fprintf(stderr, "too many addresses\n");
        exit(2);
    }
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
            goto bad;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
            goto bad;
    }
    dest.naddr++;
    return;
bad:
    fprintf(stderr, "bad address %s\n", ip);
    exit(2);
}

/* "ADDR [NOTIFY=x] [ORCPT=y]" */
static void add_rcpt(char *spec)
{
    struct smtpc_rcpt *r = &rcpt[msg.nrcpt];
    char *save = NULL, *tok;

    if (msg.nrcpt >= MAX_RCPT) {
        fprintf(stderr, "too many recipients\n");
        exit(2);
    }
    memset(r, 0, sizeof(*r));
    for (tok = strtok_r(spec, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (!r->addr)
            r->addr = tok;
        else if (!strncasecmp(tok, "NOTIFY=", 7))
            r->notify = tok + 7;
        else if (!strncasecmp(tok, "ORCPT=", 6))
            r->orcpt = tok + 6;
    }
    if (!r->addr) {
        fprintf(stderr, "empty recipient\n");
        exit(2);
    }
    msg.nrcpt++;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *ca = NULL;
    char err[256];
    int i;

    log_init("smtpc-drive", 1);
    signal(SIGPIPE, SIG_IGN);   /* SSL_write to a closed peer (smtpc.h) */
    smtpc_default_timeouts(&cfg.t);
    cfg.helo_name = "client.test";
    cfg.tls = SMTPC_TLS_MAY;
    cfg.log = on_log;
    cfg.closed = on_closed;
    snprintf(dest.host, sizeof(dest.host), "mx.test");
    dest.port = 25;
    msg.sender = "";
    msg.rcpt = rcpt;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--addr")) { NEED(); add_addr(v); }
        else if (!strcmp(a, "--host")) { NEED(); snprintf(dest.host, sizeof(dest.host), "%s", v); }
        else if (!strcmp(a, "--port")) { NEED(); dest.port = (unsigned)atoi(v); }
        else if (!strcmp(a, "--helo")) { NEED(); cfg.helo_name = v; }
        else if (!strcmp(a, "--from")) { NEED(); msg.sender = v; }
        else if (!strcmp(a, "--rcpt")) { NEED(); add_rcpt(argv[i]); }
        else if (!strcmp(a, "--tls")) {
            NEED();
            cfg.tls = !strcmp(v, "none") ? SMTPC_TLS_NONE : !strcmp(v, "encrypt") ? SMTPC_TLS_ENCRYPT : SMTPC_TLS_MAY;
        }
        else if (!strcmp(a, "--plain-retry")) plain_retry = 1;
        else if (!strcmp(a, "--ca")) { NEED(); ca = v; }
        else if (!strcmp(a, "--require-verified")) {
            cfg.tls_check = check_chain;
            cfg.tls_require_verified = 1;
        }
        else if (!strcmp(a, "--8bit")) msg.body_8bit = 1;
        else if (!strcmp(a, "--smtputf8")) msg.smtputf8 = 1;
        else if (!strcmp(a, "--ret")) { NEED(); msg.ret = v; }
        else if (!strcmp(a, "--envid")) { NEED(); msg.envid = v; }
        else if (!strcmp(a, "--auth")) {
            NEED();
            char *c = strchr(argv[i], ':');
            if (!c) { fprintf(stderr, "--auth USER:PASS\n"); return 2; }
            *c = '\0';
            cfg.auth_user = argv[i];
            cfg.auth_pass = c + 1;
        }
        else if (!strcmp(a, "--messages")) { NEED(); messages = (unsigned)atoi(v); }
        else if (!strcmp(a, "--gap")) { NEED(); gap_ms = (unsigned)atoi(v); }
        else if (!strcmp(a, "--idle")) { NEED(); cfg.t.idle = (unsigned)atoi(v); }
        else if (!strcmp(a, "--timeout")) {
            NEED();
            unsigned ms = (unsigned)atoi(v);
            cfg.t.greeting = cfg.t.helo = cfg.t.mail = cfg.t.rcpt = ms;
            cfg.t.data_init = cfg.t.data_xfer = cfg.t.data_done = cfg.t.rset = cfg.t.quit = ms;
        }
        else if (!strcmp(a, "--connect-timeout")) { NEED(); cfg.t.connect = (unsigned)atoi(v); }
        else if (a[0] == '-') { fprintf(stderr, "unknown option %s\n", a); return 2; }
        else file = a;
#undef NEED
    }
    if (!file || dest.naddr == 0 || msg.nrcpt == 0) {
        fprintf(stderr, "usage: smtpc-drive --addr IP --port N --rcpt ADDR ... MESSAGE-FILE\n");
        return 2;
    }
    msg.fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (msg.fd < 0 || fstat(msg.fd, &st) < 0) {
        perror(file);
        return 2;
    }
    msg.size = (uint64_t)st.st_size;
    if (smtpc_tls_init(ca, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    ev = ev_new();
    if (!ev)
        return 2;
    t0 = now_ms();
    start();
    ev_run(ev);
    printf("session: messages=%u connections=%u\n", sent_msgs, connections);
    ev_free(ev);
    close(msg.fd);
    return 0;
}
