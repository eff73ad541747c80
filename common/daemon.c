/*
 * daemon.c - the common start of the daemons (daemon.h). It must stay free
 * of anything a particular daemon does: no privilege change, no socket.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

const char *daemon_start(int argc, char **argv, const char *name, struct config *cfg)
{
    const char *conf_path = NULL;
    char err[1024];
    int opt;

    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt == 'c') {
            conf_path = optarg;
        } else {
            fprintf(stderr, "usage: %s [-c FILE]\n", name);
            exit(64);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: %s [-c FILE]\n", name);
        exit(64);
    }
    conf_path = config_path(conf_path);
    log_init(name, getenv("POSTERN_FOREGROUND") != NULL);
    config_defaults(cfg);
    if (config_load(cfg, conf_path, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    log_set_debug(cfg->debug);
    return conf_path;
}

struct evloop *daemon_loop(ev_signal_cb on_term, ev_signal_cb on_hup)
{
    struct evloop *ev = ev_new();

    if (!ev)
        log_fatal("event loop: %s", strerror(errno));
    if (ev_signal(ev, SIGTERM, on_term, NULL) < 0 || ev_signal(ev, SIGINT, on_term, NULL) < 0 ||
        ev_signal(ev, SIGHUP, on_hup, NULL) < 0)
        log_fatal("signals: %s", strerror(errno));
    return ev;
}
