/*
 * posternctl_reload.c - `posternctl reload-maps` (posternctl_reload.h).
 *
 * The maps are compiled by the master (it parses no network input and is
 * the only writer of smtpd's jail), so this tool compiles nothing into
 * place: it checks the files first, to say what is wrong at once, then
 * asks the running master for a reload (master/reload.c: SIGHUP to the
 * pid its locked pid file names, and its verdict read back). The master
 * compiles again, refuses a bad line and keeps the old map, and starts a
 * new smtpd generation on the new map; open sessions finish on the old one.
 * Needs root (the master is root's): anyone else gets EX_NOPERM.
 */
#include "posternctl_reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "maps.h"
#include "../master/reload.h"
#include "../master/status.h"

int ctl_reload_maps(const char *conf)
{
    struct config cfg;
    struct maps_stats st;
    char err[2048], text[STATUS_MAX];
    int rc;

    config_defaults(&cfg);
    if (config_load(&cfg, config_path(conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: fatal: %s\n", err);
        config_free(&cfg);
        return EX_CONFIG;
    }
    if (maps_compile(&cfg, NULL, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: reload-maps: %s; the running maps stay\n", err);
        config_free(&cfg);
        return EX_DATAERR;
    }
    switch (reload_request(cfg.run_dir, RELOAD_WAIT_MS, text, sizeof(text))) {
    case RELOAD_DONE:
        printf("posternctl: maps reloaded: %u mailbox(es), %u alias(es)\n", st.mailboxes, st.aliases);
        rc = EX_OK;
        break;
    case RELOAD_REFUSED:
        fprintf(stderr, "posternctl: reload-maps refused: %s\n", text);
        rc = EX_DATAERR;
        break;
    case RELOAD_NOT_RUNNING:
        /* nothing to tell: the master compiles the maps when it starts */
        printf("posternctl: maps are valid (%u mailbox(es), %u alias(es)); postern is %s\n", st.mailboxes,
               st.aliases, text);
        rc = EX_OK;
        break;
    default:
        fprintf(stderr, "posternctl: reload-maps: %s\n", text);
        rc = strstr(text, strerror(EPERM)) ? EX_NOPERM : EX_UNAVAILABLE;
        break;
    }
    config_free(&cfg);
    return rc;
}
