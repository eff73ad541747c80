/*
 * posternctl - queue control.
 *
 *   posternctl [-c FILE] flush [ID|DOMAIN]
 *
 * asks queue-mgr (Q_FLUSH on RUN_DIR/queue/control.sock) to make the
 * deferred recipients of one message, of one domain, or of the whole
 * queue due now, and to revive a destination marked dead; it prints how
 * many recipients that was. show, delete, hold, release, requeue and
 * stats are in posternctl_queue.c (posternctl_queue.h); every other
 * command's file is a tools/posternctl_*.c too, dispatched from main().
 *
 * queue-mgr decides who may (root, its own account, admin_group; SO_PEERCRED):
 * nothing here is trusted for that. Never touches the queue itself.
 * Exit codes are sysexits(3): 0, EX_USAGE, EX_CONFIG, EX_NOPERM for a
 * refusal, EX_UNAVAILABLE when queue-mgr is down, EX_TEMPFAIL otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "posternctl_reload.h"
#include "posternctl_passwd.h"
#include "log.h"
#include "paths.h"
#include "posternctl_queue.h"
#include "qclient.h"
#include "queueid.h"

#define CTL_TIMEOUT_MS 30000

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr, "usage: posternctl [-c FILE] flush [ID|DOMAIN]\n"
            "       posternctl [-c FILE] reload-maps\n"
            "       posternctl [-c FILE] passwd USER@DOMAIN\n%s", CTLQ_USAGE);
    _exit(EX_USAGE);
}

/* A domain as an operator types it: letters, digits, '-', '.', or an
 * address literal in brackets; nothing that could be an id. */
static int domain_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '[' || ch == ']' || ch == ':' || ch == '_'))
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *qid = NULL, *domain = NULL;
    struct config cfg;
    struct qc_conn qc;
    enum qc_status s;
    uint64_t count = 0;
    char err[1200], clean[600];
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, "+c:")) != -1) {
        if (opt == 'c')
            conf = optarg;
        else
            usage();
    }
    if (optind < argc && strcmp(argv[optind], "reload-maps") == 0 && argc - optind == 1)
        return ctl_reload_maps(conf);
    if (optind < argc && ctlq_is_command(argv[optind]))
        return ctlq_main(conf, argc - optind, argv + optind);
    if (optind < argc && strcmp(argv[optind], "passwd") == 0)
        return ctl_passwd(conf, argc - optind - 1, argv + optind + 1);
    if (optind >= argc || strcmp(argv[optind], "flush") != 0 || argc - optind > 2)
        usage();
    if (argc - optind == 2) {
        const char *a = argv[optind + 1];
        if (qid_valid(a))
            qid = a;
        else if (domain_ok(a))
            domain = a;
        else {
            fprintf(stderr, "posternctl: %s is neither a queue id nor a domain\n",
                    log_sanitize(a, strlen(a), clean, sizeof(clean)));
            return EX_USAGE;
        }
    }
    config_defaults(&cfg);
    if (config_load(&cfg, config_path(conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: fatal: %s\n", err);
        config_free(&cfg);
        return EX_CONFIG;
    }
    s = qc_connect(&qc, cfg.run_dir, SOCK_QUEUE_CONTROL, CTL_TIMEOUT_MS);
    if (s != QC_OK) {
        fprintf(stderr, "posternctl: fatal: queue manager is down (connect %s/%s: %s)\n",
                cfg.run_dir, SOCK_QUEUE_CONTROL, strerror(errno));
        config_free(&cfg);
        return EX_UNAVAILABLE;
    }
    config_free(&cfg);
    s = qc_flush(&qc, qid, domain, &count);
    if (s == QC_REFUSED) {
        fprintf(stderr, "posternctl: flush refused: %s %s\n", qc.last.code,
                log_sanitize(qc.last.text, strlen(qc.last.text), clean, sizeof(clean)));
        qc_close(&qc);
        return qc.last.code[0] == '5' && strstr(qc.last.text, "permission") ? EX_NOPERM : EX_TEMPFAIL;
    }
    qc_close(&qc);
    if (s != QC_OK) {
        fprintf(stderr, "posternctl: fatal: %s\n", qc_status_text(s));
        return EX_TEMPFAIL;
    }
    printf("flushed: %llu recipient(s) due now\n", (unsigned long long)count);
    return EX_OK;
}
