/*
 * deliver - the SMTP client process: takes delivery jobs from queue-mgr,
 * delivers them to the destination's mail exchangers (or the relayhost)
 * and reports each recipient's result (agent.h does the work).
 *
 * Started by the master (as root when the master is root): reads the
 * configuration and the relayhost credentials, sets up the TLS client
 * context, then chroots into its empty jail RUN/deliver (queue-mgr and the
 * resolver bind their sockets in it) and drops to user_deliver. It needs
 * no files: spool files come as read-only descriptors. It must never open
 * a file by a name from a job, run anything, or trust a peer. The one name
 * it uses is the UNIX socket of an "lmtp:unix:PATH" destination
 * (local_transport), which it only connects to: inside the jail when
 * chrooted (an absolute PATH is the jail's, as Postfix's chrooted lmtp
 * sees its queue directory), and a relative PATH is RUN/deliver's in both
 * modes (the working directory is the jail).
 * SIGHUP: take no new job, finish the deliveries in flight, send their
 * results, exit (the master has started a new generation). SIGTERM: exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "authfile.h"
#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "paths.h"
#include "privsep.h"
#include "ready.h"
#include "route.h"
#include "smtpc.h"
#include "util.h"

#define DRAIN_MAX_MS 700000u    /* smtp_data_done_timeout and then some */

static struct config cfg;
static int draining;

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)arg;
    log_info("stopping on signal %d (%u deliveries in flight)", signo, agent_active());
    ev_stop(ev);
}

static void on_drain_timeout(struct evloop *ev, void *arg)
{
    (void)arg;
    log_warning("draining: %u deliveries still open; stopping", agent_active());
    ev_stop(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    if (draining)
        return;
    draining = 1;
    agent_drain();
    ev_timer(ev, DRAIN_MAX_MS, on_drain_timeout, NULL);
}

static void on_idle(struct evloop *ev, void *arg)
{
    (void)arg;
    if (draining && agent_drained())
        ev_stop(ev);
}

/* The relayhost's credentials, when a file is configured. */
static int load_cred(uid_t owner, struct auth_cred *c)
{
    struct route rt;
    char err[1024];
    int r;

    if (!cfg.relayhost_auth_file[0])
        return 0;
    if (!cfg.relayhost[0]) {
        log_warning("relayhost_auth_file is set but relayhost is not: no AUTH");
        return 0;
    }
    if (route_parse(cfg.relayhost, cfg.relayhost, cfg.remote_smtp_port, &rt) < 0)
        log_fatal("relayhost \"%s\" is not a valid destination", cfg.relayhost);
    r = authfile_load(cfg.relayhost_auth_file, owner, rt.host, c, err, sizeof err);
    if (r < 0)
        log_fatal("relayhost_auth_file %s", err);
    if (r == 0)
        log_warning("relayhost_auth_file %s has no line for %s: no AUTH", cfg.relayhost_auth_file, rt.host);
    return r;
}

int main(int argc, char **argv)
{
    struct account acct;
    struct auth_cred cred;
    struct evloop *ev;
    char err[1024], jail[4096], qsock[4096], rsock[4096];
    int jailed, have_cred;

    daemon_start(argc, argv, "deliver", &cfg);
    signal(SIGPIPE, SIG_IGN);   /* SSL_write to a peer that went away (smtpc.h) */
    tzset();

    if ((size_t)snprintf(jail, sizeof jail, "%s/%s", cfg.run_dir, SOCK_DELIVER_JAIL) >= sizeof jail)
        log_fatal("run_dir too long");
    jailed = priv_is_root() && cfg.chroot;
    memset(&acct, 0, sizeof acct);
    if (priv_is_root()) {
        if (priv_resolve(cfg.user_deliver, &acct, err, sizeof err) < 0)
            log_fatal("%s", err);
    } else {
        acct.uid = getuid();
    }
    /* Everything that needs the file system or root happens now. */
    memset(&cred, 0, sizeof cred);
    have_cred = load_cred(acct.uid, &cred) > 0;
    if (smtpc_tls_init(NULL, err, sizeof err) < 0)
        log_fatal("TLS: %s", err);
    if (jailed) {
        snprintf(qsock, sizeof qsock, "%s", SOCK_QUEUE_DELIVER_IN_JAIL);
        snprintf(rsock, sizeof rsock, "%s", SOCK_RESOLVER_DELIVER_IN_JAIL);
    } else if ((size_t)snprintf(qsock, sizeof qsock, "%s/%s", cfg.run_dir, SOCK_QUEUE_DELIVER) >= sizeof qsock ||
               (size_t)snprintf(rsock, sizeof rsock, "%s/%s", cfg.run_dir, SOCK_RESOLVER_DELIVER) >= sizeof rsock) {
        log_fatal("run_dir too long");
    }
    if (priv_is_root())
        priv_drop(&acct, jailed ? jail : NULL);
    /* chrooted, the working directory is the jail's root already */
    if (!jailed && chdir(jail) < 0)
        log_warning("chdir %s: %s (a relative lmtp:unix: path would not be found there)", jail,
                    strerror(errno));

    ev = daemon_loop(on_term, on_hup);
    ev_set_idle(ev, on_idle, NULL);
    if (agent_start(ev, &cfg, qsock, rsock, have_cred ? &cred : NULL, err, sizeof err) < 0)
        log_fatal("%s", err);
    memset(&cred, 0, sizeof cred);
    log_info("ready: %u delivery slots, queue-mgr at %s, resolver at %s%s%s", cfg.deliver_concurrency,
             qsock, rsock, jailed ? " (chrooted)" : "", have_cred ? ", relayhost AUTH configured" : "");
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    agent_stop();
    ev_free(ev);
    config_free(&cfg);
    return 0;
}
