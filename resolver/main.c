/*
 * resolver - DNS for the other Postern processes, through libunbound:
 * MX, A, AAAA, TLSA and TXT look-ups, and RFC 5321 next hops, over
 * RUN/resolver/resolver.sock and, for deliver, RUN/deliver/resolver/resolver.sock
 * (inside deliver's jail).
 *
 * Started by the master (as root when the master is root): reads the
 * configuration and the trust anchor, binds its sockets, chroots into its
 * empty jail RUN/resolver and drops to user_resolver. It must never read
 * /etc/resolv.conf, run anything, or trust a request.
 * SIGHUP: stop taking connections, answer what is in flight, exit (the
 * master has started a new one with the new configuration). SIGTERM: exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "net.h"
#include "privsep.h"
#include "paths.h"
#include "proto.h"
#include "ready.h"
#include "server.h"
#include "ubsetup.h"
#include "util.h"

#define DRAIN_MAX_MS 35000u

static struct config cfg;
static int draining;

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)arg;
    log_info("stopping on signal %d", signo);
    ev_stop(ev);
}

static void on_drain_timeout(struct evloop *ev, void *arg)
{
    (void)arg;
    log_warning("draining: %u look-up(s) still open; stopping", rsv_jobs());
    ev_stop(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    if (draining)
        return;
    draining = 1;
    rsv_close_listener();
    log_info("draining: %u look-up(s) in flight", rsv_jobs());
    ev_timer(ev, DRAIN_MAX_MS, on_drain_timeout, NULL);
}

static void on_idle(struct evloop *ev, void *arg)
{
    (void)arg;
    if (draining && rsv_jobs() == 0)
        ev_stop(ev);
}

/* RUN/resolver: made here when missing (the master normally does it),
 * never writable by the resolver's account. */
static void make_jail(const char *path)
{
    struct stat st;

    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %s", path, strerror(errno));
    if (stat(path, &st) < 0)
        log_fatal("%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 022))
        log_fatal("%s must be a directory writable only by its owner (fix: chmod 755 %s)", path, path);
}

/* RUN/deliver, for a resolver started without the master. */
static void make_parent_dir(const char *path)
{
    char parent[4096];
    char *slash;

    str_copy(parent, path, sizeof parent);
    slash = strrchr(parent, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (mkdir(parent, 0755) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %s", parent, strerror(errno));
}

int main(int argc, char **argv)
{
    struct account acct, peer;
    const char *peer_users[3];
    uid_t peers[3];
    size_t npeers = 0;
    struct evloop *ev;
    struct ub_ctx *ub;
    char err[1024], jail[4096], sock[4096], dsock[4096], ddir[4096];
    int lfd[2], jailed;

    daemon_start(argc, argv, "resolver", &cfg);
    signal(SIGPIPE, SIG_IGN);
    tzset();

    if ((size_t)snprintf(jail, sizeof jail, "%s/%s", cfg.run_dir, SOCK_RESOLVER_JAIL) >= sizeof jail ||
        (size_t)snprintf(sock, sizeof sock, "%s/%s", cfg.run_dir, SOCK_RESOLVER) >= sizeof sock ||
        (size_t)snprintf(dsock, sizeof dsock, "%s/%s", cfg.run_dir, SOCK_RESOLVER_DELIVER) >= sizeof dsock ||
        (size_t)snprintf(ddir, sizeof ddir, "%s/%s", cfg.run_dir, SOCK_DELIVER_JAIL "/resolver") >= sizeof ddir)
        log_fatal("run_dir too long");
    jailed = priv_is_root() && cfg.chroot;
    if (priv_is_root()) {
        if (priv_resolve(cfg.user_resolver, &acct, err, sizeof err) < 0)
            log_fatal("%s", err);
        peer_users[0] = cfg.user_deliver;
        peer_users[1] = cfg.user_queue;
        peer_users[2] = cfg.user_smtpd;
        for (size_t i = 0; i < 3; i++) {
            if (priv_resolve(peer_users[i], &peer, err, sizeof err) < 0)
                log_fatal("%s", err);
            peers[npeers++] = peer.uid;
        }
    }

    /* Everything that needs the file system or root happens now. */
    ub = ubsetup_create(&cfg, err, sizeof err);
    if (!ub)
        log_fatal("%s", err);
    make_jail(jail);
    /* Anyone may connect; SO_PEERCRED decides who is served. */
    lfd[0] = net_listen_unix(sock, 0666, err, sizeof err);
    if (lfd[0] < 0)
        log_fatal("%s", err);
    /* deliver's copy, in its jail (RUN/deliver/resolver is ours, made by
     * the master; made here when missing, for a resolver started alone) */
    make_parent_dir(ddir);
    if (mkdir(ddir, 0755) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %s", ddir, strerror(errno));
    lfd[1] = net_listen_unix(dsock, 0666, err, sizeof err);
    if (lfd[1] < 0)
        log_fatal("%s", err);
    if (priv_is_root())
        priv_drop(&acct, jailed ? jail : NULL);

    ev = daemon_loop(on_term, on_hup);
    ev_set_idle(ev, on_idle, NULL);
    if (rsv_start(ev, ub, lfd, 2, &cfg, peers, npeers, err, sizeof err) < 0)
        log_fatal("%s", err);
    log_info("ready on %s and %s%s", sock, dsock, jailed ? " (chrooted)" : "");
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    rsv_stop();
    ub_ctx_delete(ub);
    ev_free(ev);
    config_free(&cfg);
    return 0;
}
