/*
 * smtpd - the SMTP server worker. The master starts smtpd_processes of
 * them, as root, with the listening sockets at the descriptors named in
 * POSTERN_LISTEN_FDS ("3:smtp,4:submission,5:smtps"). Each reads the TLS
 * key, chroots into RUN_DIR/smtpd, drops to user_smtpd, and then serves
 * SMTP sessions from one event loop. It never touches the queue directly:
 * messages go into spool files that queue-mgr hands it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "authcmd.h"
#include "authproto.h"
#include "config.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "privsep.h"
#include "listener.h"
#include "localrcpt.h"
#include "mapdb.h"
#include "paths.h"
#include "qlink.h"
#include "qtlink.h"
#include "quotaproto.h"
#include "command.h"
#include "ready.h"
#include "session.h"
#include "tls.h"
#include "util.h"

static struct config cfg_a, cfg_b, *cfg = &cfg_a;
static const char *conf_path;
static int draining, stopping;
static uint64_t stop_deadline;

static void maybe_exit(struct evloop *ev)
{
    if ((draining || stopping) && session_count() == 0)
        ev_stop(ev);
}

static void tick(struct evloop *ev, void *arg)
{
    (void)arg;
    session_tick();
    localrcpt_tick();
    if (stopping && now_ms() > stop_deadline) {
        log_warning("stopping with %u session(s) still open", session_count());
        ev_stop(ev);
        return;
    }
    maybe_exit(ev);
    ev_timer(ev, (draining || stopping) ? 100 : 1000, tick, NULL);
}

static void on_term(struct evloop *ev, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    if (stopping)
        return;
    stopping = 1;
    stop_deadline = now_ms() + (uint64_t)cfg->stop_timeout * 1000;
    listener_close_all();
    session_shutdown(0);
    maybe_exit(ev);
}

static void on_hup(struct evloop *ev, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    /* The master has started a new generation with the new configuration;
     * this one finishes its sessions and leaves. */
    if (draining || stopping)
        return;
    draining = 1;
    log_info("draining: %u session(s) open", session_count());
    listener_close_all();
    session_shutdown(1);
    maybe_exit(ev);
}

static int listen_fds(struct evloop *ev)
{
    const char *spec = getenv("POSTERN_LISTEN_FDS");
    char tmp[1024], *tok, *save;
    int n = 0;

    if (!spec || strlen(spec) >= sizeof(tmp))
        return 0;
    str_copy(tmp, spec, sizeof(tmp));
    for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        uint64_t fd;
        enum port_kind kind;
        if (!colon)
            log_fatal("bad POSTERN_LISTEN_FDS entry \"%s\"", tok);
        *colon = 0;
        if (parse_u64(tok, &fd) < 0 || fd < 3 || fd > 1024)
            log_fatal("bad descriptor in POSTERN_LISTEN_FDS: \"%s\"", tok);
        if (!strcmp(colon + 1, "smtp"))
            kind = PORT_SMTP;
        else if (!strcmp(colon + 1, "submission"))
            kind = PORT_SUBMISSION;
        else if (!strcmp(colon + 1, "smtps"))
            kind = PORT_SMTPS;
        else
            log_fatal("bad listener kind in POSTERN_LISTEN_FDS: \"%s\"", colon + 1);
        if (kind != PORT_SMTP && !tls_available()) {
            log_warning("no TLS certificate: not serving %s on descriptor %d", colon + 1, (int)fd);
            close((int)fd);
            continue;
        }
        set_nonblock((int)fd, 1);
        if (listener_add(ev, (int)fd, kind) < 0)
            log_fatal("cannot watch listener %d: %s", (int)fd, strerror(errno));
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    struct account acct;
    struct evloop *ev;
    char err[1024], jail[4096], qsock[4096], mapfile[4096], asock[4096], qtsock[4096];
    int jailed;

    conf_path = daemon_start(argc, argv, "smtpd", cfg);
    signal(SIGPIPE, SIG_IGN);
    tzset(); /* the zone must be known before the chroot hides it */
    /* Every session is a descriptor: take all the system allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (tls_init(cfg->tls_cert_file, cfg->tls_key_file, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    ev = daemon_loop(on_term, on_hup);
    session_init(ev, cfg);
    if (listen_fds(ev) == 0)
        log_fatal("no listening sockets passed (POSTERN_LISTEN_FDS)");

    if ((size_t)snprintf(jail, sizeof(jail), "%s/%s", cfg->run_dir, SOCK_SMTPD_JAIL) >= sizeof(jail))
        log_fatal("run_dir too long");
    jailed = priv_is_root() && cfg->chroot;
    if (priv_is_root()) {
        if (priv_resolve(cfg->user_smtpd, &acct, err, sizeof(err)) < 0)
            log_fatal("%s", err);
        priv_drop(&acct, jailed ? jail : NULL);
    }
    if (jailed)
        str_copy(qsock, SOCK_QUEUE_SMTPD_IN_JAIL, sizeof(qsock));
    else
        if ((size_t)snprintf(qsock, sizeof(qsock), "%s/%s", cfg->run_dir, SOCK_QUEUE_SMTPD) >= sizeof(qsock))
            log_fatal("run_dir too long");
    /* the map the master compiled into the jail, opened as user_smtpd */
    if ((size_t)snprintf(mapfile, sizeof(mapfile), "%s/%s", jailed ? "" : jail, MAPDB_FILE) >= sizeof(mapfile))
        log_fatal("run_dir too long");
    localrcpt_init(mapfile);

    qlink_init(ev, qsock);
    /* AUTH needs TLS: without a certificate there is no auth process */
    if (tls_available()) {
        if (jailed)
            str_copy(asock, AUTH_SOCK_IN_SMTPD_JAIL, sizeof(asock));
        else if ((size_t)snprintf(asock, sizeof(asock), "%s/%s", cfg->run_dir, AUTH_SOCK) >= sizeof(asock))
            log_fatal("run_dir too long");
        authcmd_init(ev, asock);
    }
    /* mailbox quotas: only the local role sees the Maildirs; with LMTP
     * storage the LMTP server keeps its own quotas */
    if (config_local_maildir(cfg) && !(cfg->master_service_disable & CONF_SERVICE_LOCAL)) {
        if (jailed)
            str_copy(qtsock, QUOTA_SOCK_IN_SMTPD_JAIL, sizeof(qtsock));
        else if ((size_t)snprintf(qtsock, sizeof(qtsock), "%s/%s", cfg->run_dir, QUOTA_SOCK) >= sizeof(qtsock))
            log_fatal("run_dir too long");
        qtlink_init(ev, qtsock, command_quota_answer);
    }
    ev_timer(ev, 1000, tick, NULL);
    ready_notify();
    if (ev_run(ev) < 0)
        log_fatal("event loop: %s", strerror(errno));
    qlink_free();
    qtlink_free();
    authcmd_shutdown();
    localrcpt_free();
    ev_free(ev);
    config_free(cfg);
    (void)cfg_b;
    return 0;
}
