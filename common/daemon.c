/*
 * daemon.c - the common start of the daemons (daemon.h). It must stay free
 * of anything a particular daemon does: no privilege change, no socket.
 */
#include "daemon.h"

#include <stdio.h>
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
