/*
 * queue-mgr - the durable queue. Owns the LMDB index and the spool files,
 * takes messages from smtpd and sendmail, answers mailq.
 *
 * Started by the master (as root when the master is root); drops to
 * user_queue before touching the queue, and never runs anything.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "privsep.h"
#include "qstore.h"
#include "reconcile.h"
#include "ready.h"
#include "server.h"
#include "spool.h"

static struct config cfg_a, cfg_b, *cfg = &cfg_a;
static const char *conf_path;

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)arg;
    log_info("stopping on signal %d", signo);
    ev_stop(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    struct config *next = cfg == &cfg_a ? &cfg_b : &cfg_a;
    char err[512];

    (void)ev;
    (void)signo;
    (void)arg;
    config_defaults(next);
    if (config_load(next, conf_path, err, sizeof(err)) < 0) {
        log_error("reload failed: %s; keeping the running configuration", err);
        config_free(next);
        return;
    }
    if (bounce_prepare(next, err, sizeof(err)) < 0) { /* the notice templates */
        log_error("reload failed: %s; keeping the running configuration", err);
        config_free(next);
        return;
    }
    server_set_config(next);
    config_free(cfg);
    cfg = next;
    log_info("reload: configuration %s re-read", conf_path);
}

int main(int argc, char **argv)
{
    struct account acct, smtpd_acct, deliver_acct, local_acct;
    struct evloop *ev;
    struct qstore *q;
    char err[1024], last[QID_LEN + 1];
    long kept;

    conf_path = daemon_start(argc, argv, "queue-mgr", cfg);
    if (priv_is_root()) {
        if (priv_resolve(cfg->user_queue, &acct, err, sizeof(err)) < 0 ||
            priv_resolve(cfg->user_smtpd, &smtpd_acct, err, sizeof(err)) < 0 ||
            priv_resolve(cfg->user_deliver, &deliver_acct, err, sizeof(err)) < 0 ||
            priv_resolve(cfg->user_local, &local_acct, err, sizeof(err)) < 0)
            log_fatal("%s", err);
        priv_drop(&acct, NULL);
    } else {
        smtpd_acct.uid = getuid();
        deliver_acct.uid = getuid();
        local_acct.uid = getuid();
    }
    signal(SIGPIPE, SIG_IGN);

    if (qstore_open(&q, cfg->spool_dir, 0, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    if (qstore_set_map_size(q, cfg->queue_map_size) < 0)
        log_fatal("cannot set the queue index map size to %llu bytes (queue_map_size)",
                  (unsigned long long)cfg->queue_map_size);
    if (spool_init(cfg->spool_dir, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    if (qstore_check_devices(cfg->spool_dir, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    /* A mailq killed mid-read in an earlier life must not pin pages. */
    int stale = qstore_reader_check(q);
    if (stale > 0)
        log_info("queue index: cleared %d stale reader slot(s)", stale);
    kept = reconcile(q);
    if (kept < 0)
        log_fatal("reconcile of %s failed", cfg->spool_dir);
    qid_init(qstore_last_id(q, last) == 0 ? last : NULL);
    if (spool_pool_start() < 0)
        log_fatal("cannot start the spool file thread: %s", strerror(errno));

    ev = daemon_loop(on_term, on_hup);
    if (server_start(ev, cfg, q, smtpd_acct.uid, deliver_acct.uid, local_acct.uid, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    log_info("ready: %ld message(s) in the queue", kept);
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    server_stop();
    spool_pool_stop();
    qstore_close(q);
    ev_free(ev);
    config_free(cfg);
    return 0;
}
