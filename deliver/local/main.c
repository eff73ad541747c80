/*
 * local - the local delivery role: stores mail for local_domains in
 * Maildirs under mailbox_dir (lagent.h does the work).
 *
 * Started by the master (as root when the master is root): reads the
 * configuration, opens mailbox_dir and the compiled map (RUN/smtpd/maps.db,
 * read-only), connects to queue-mgr (RUN/queue/local.sock), then, when
 * chroot applies, chroots into mailbox_dir itself and drops to user_local,
 * the account that owns mailbox_dir: it can reach the Maildirs and nothing
 * else. The queue socket is then out of reach, so a lost link ends the
 * process and the master starts a new one. Before that it binds the quota
 * socket RUN/smtpd/local/quota.sock in smtpd's jail (qserver.h), served
 * to user_smtpd only. Spool files come as read-only
 * descriptors. It must never open a path built from a job but through
 * maps_path_component(), run anything, or trust a peer.
 * SIGHUP: take no new job, store the batch in hand, report, exit (the
 * master has started a new generation, with the new map). SIGTERM: exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "lagent.h"
#include "link.h"
#include "log.h"
#include "mapdb.h"
#include "paths.h"
#include "privsep.h"
#include "net.h"
#include "proto.h"
#include "qserver.h"
#include "quotaproto.h"
#include "ready.h"

static struct config cfg;

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)arg;
    log_info("stopping on signal %d", signo);
    ev_stop(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    (void)ev;
    (void)signo;
    (void)arg;
    lagent_drain();
}

int main(int argc, char **argv)
{
    struct account acct, smtpd;
    struct evloop *ev;
    struct link *ql;
    struct mapdb *map = NULL;
    char err[1024], qsock[4096], mpath[4096], quota_sock[4096], quota_dir[4096];
    uid_t peers[1];
    size_t npeers = 0;
    int jailed, root_fd, quota_fd;

    daemon_start(argc, argv, "local", &cfg);
    signal(SIGPIPE, SIG_IGN);
    tzset();
    jailed = priv_is_root() && cfg.chroot;
    memset(&acct, 0, sizeof acct);
    if (priv_is_root() && (priv_resolve(cfg.user_local, &acct, err, sizeof err) < 0 ||
                           priv_resolve(cfg.user_smtpd, &smtpd, err, sizeof err) < 0))
        log_fatal("%s", err);
    if (priv_is_root())
        peers[npeers++] = smtpd.uid;
    if ((size_t)snprintf(qsock, sizeof qsock, "%s/%s", cfg.run_dir, SOCK_QUEUE_LOCAL) >= sizeof qsock ||
        (size_t)snprintf(mpath, sizeof mpath, "%s/%s/%s", cfg.run_dir, SOCK_SMTPD_JAIL, MAPDB_FILE) >= sizeof mpath ||
        (size_t)snprintf(quota_sock, sizeof quota_sock, "%s/%s", cfg.run_dir, QUOTA_SOCK) >= sizeof quota_sock ||
        (size_t)snprintf(quota_dir, sizeof quota_dir, "%s/%s", cfg.run_dir, QUOTA_SOCK_DIR) >= sizeof quota_dir)
        log_fatal("run_dir too long");
    /* the master makes it (master/dirs.c); made here for a role started alone */
    if (mkdir(quota_dir, 0755) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %s", quota_dir, strerror(errno));
    /* anyone may connect; SO_PEERCRED decides who is served */
    if ((quota_fd = net_listen_unix(quota_sock, 0666, err, sizeof err)) < 0)
        log_fatal("%s", err);
    root_fd = open(cfg.mailbox_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        log_fatal("mailbox_dir %s: %s", cfg.mailbox_dir, strerror(errno));
    if (mapdb_open(&map, mpath, err, sizeof err) < 0) {
        log_warning("map: %s: local recipients are deferred until a reload brings one", err);
        map = NULL;
    }
    ev = daemon_loop(on_term, on_hup);
    if (!(ql = link_new(ev, "queue-mgr", qsock, proto_limit)))
        log_fatal("out of memory");
    if (jailed && !link_up(ql))
        log_fatal("cannot connect to queue-mgr at %s", qsock);
    if (priv_is_root())
        priv_drop(&acct, jailed ? cfg.mailbox_dir : NULL);
    if (lagent_start(ev, &cfg, ql, root_fd, map, jailed, err, sizeof err) < 0 ||
        qsrv_start(ev, quota_fd, peers, npeers, map, root_fd, err, sizeof err) < 0)
        log_fatal("%s", err);
    log_info("ready: %u slots, queue-mgr at %s, mailbox_dir %s%s", LAGENT_SLOTS, qsock, cfg.mailbox_dir,
             jailed ? " (chrooted)" : "");
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    qsrv_stop();
    lagent_stop();
    link_free(ql);
    mapdb_close(map);
    close(root_fd);
    ev_free(ev);
    config_free(&cfg);
    return 0;
}
