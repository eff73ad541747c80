/*
 * daemon.h - the start of every Postern daemon (smtpd, queue-mgr,
 * resolver, deliver): the one command line they take (-c FILE), the log
 * under the process's name, and the configuration, loaded or fatal.
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

#include "config.h"
#include "evloop.h"

/*
 * Parses "[-c FILE]" (exit 64 with a usage line otherwise), opens the log
 * as postern/NAME (stderr in the foreground, when POSTERN_FOREGROUND is
 * set), loads the configuration into cfg over its defaults (a bad one is
 * fatal: FILE:LINE in the log) and sets the log level from it. Returns the
 * path of the configuration, for a reload.
 */
const char *daemon_start(int argc, char **argv, const char *name, struct config *cfg);

/* The daemon's event loop, with SIGTERM and SIGINT going to on_term and
 * SIGHUP to on_hup (reload or drain, as the daemon decides); fatal when
 * it cannot be made. */
struct evloop *daemon_loop(ev_signal_cb on_term, ev_signal_cb on_hup);

#endif
