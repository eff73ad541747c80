/*
 * auth - the password checker for SMTP AUTH. smtpd never holds the
 * password database: it asks this process (A_CHECK on
 * RUN/smtpd/auth/auth.sock, inside smtpd's jail), which looks the user up
 * in RUN/auth/passwd.db (compiled by the master from mailboxes_file,
 * readable only by user_auth), verifies the password with libcrypt on
 * worker threads (auth_workers), and keeps the AUTH failure counts of
 * every smtpd worker in one place. Started as root by the master: binds
 * the socket, chroots into RUN/auth, drops to user_auth.
 *
 * SIGHUP (postern reload, posternctl passwd): the configuration's limits
 * and the password map are read again in place; the failure counts stay.
 * Must never log a password or a hash, and never serve anyone but smtpd.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authproto.h"
#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "net.h"
#include "passwd.h"
#include "pool.h"
#include "privsep.h"
#include "ready.h"
#include "server.h"
#include "util.h"

static struct config cfg;
static const char *conf_path;
static char dbpath[4096];

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)arg;
    log_info("stopping on signal %d", signo);
    ev_stop(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    struct config *c = malloc(sizeof(*c));
    char err[1200];

    (void)ev;
    (void)signo;
    (void)arg;
    if (!c) {
        log_error("reload: out of memory");
        return;
    }
    config_defaults(c);
    /* chrooted, the configuration file may be out of sight: then only the
     * password map is read again (limit changes take a restart) */
    if (config_load(c, conf_path, err, sizeof(err)) == 0)
        authsrv_config(c);
    config_free(c);
    free(c);
    if (passwd_open(dbpath, err, sizeof(err)) < 0)
        log_error("reload: %s; keeping the previous password map", err);
    else
        log_info("reload: password map %s read again", dbpath);
}

static void make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        log_fatal("cannot create %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
    struct account acct, smtpd;
    struct evloop *ev;
    char err[1200], jail[4096], sock[4096], sdir[4096];
    uid_t peers[1];
    size_t npeers = 0;
    int lfd, pfd, jailed;

    conf_path = daemon_start(argc, argv, "auth", &cfg);
    signal(SIGPIPE, SIG_IGN);
    tzset();
    if ((size_t)snprintf(jail, sizeof(jail), "%s/%s", cfg.run_dir, AUTH_JAIL) >= sizeof(jail) ||
        (size_t)snprintf(sock, sizeof(sock), "%s/%s", cfg.run_dir, AUTH_SOCK) >= sizeof(sock) ||
        (size_t)snprintf(sdir, sizeof(sdir), "%s/%s", cfg.run_dir, AUTH_SOCK_DIR) >= sizeof(sdir))
        log_fatal("run_dir too long");
    jailed = priv_is_root() && cfg.chroot;
    if (priv_is_root()) {
        if (priv_resolve(cfg.user_auth, &acct, err, sizeof(err)) < 0 ||
            priv_resolve(cfg.user_smtpd, &smtpd, err, sizeof(err)) < 0)
            log_fatal("%s", err);
        peers[npeers++] = smtpd.uid;
    }
    /* The master makes these; made here for an auth process started alone. */
    make_dir(jail, 0755);
    make_dir(sdir, 0755);
    /* Anyone may connect; SO_PEERCRED decides who is served. */
    lfd = net_listen_unix(sock, 0666, err, sizeof(err));
    if (lfd < 0)
        log_fatal("%s", err);
    if (priv_is_root())
        priv_drop(&acct, jailed ? jail : NULL);
    if ((size_t)snprintf(dbpath, sizeof(dbpath), "%s/%s", jailed ? "" : jail, AUTH_DB_FILE) >= sizeof(dbpath))
        log_fatal("run_dir too long");
    if (passwd_open(dbpath, err, sizeof(err)) < 0)
        log_warning("%s: every AUTH gets 454 until a reload brings the map", err);
    /* the loop first: it blocks the signals, and the threads inherit that */
    ev = daemon_loop(on_term, on_hup);
    pfd = pool_start(cfg.auth_workers, 4096, err, sizeof(err));
    if (pfd < 0)
        log_fatal("%s", err);
    if (authsrv_start(ev, lfd, pfd, &cfg, peers, npeers, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    log_info("ready on %s with %u hashing thread(s)%s", sock, cfg.auth_workers, jailed ? " (chrooted)" : "");
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    authsrv_stop();
    pool_stop();
    passwd_close();
    ev_free(ev);
    config_free(&cfg);
    return 0;
}
