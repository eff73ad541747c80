/*
 * supervise.h - the processes the master runs and their lives: a table of
 * roles (queue-mgr, smtpd, later resolver and deliver), spawn, reap, restart
 * with backoff, reload by generations, and an orderly stop.
 */
#ifndef POSTERN_MASTER_SUPERVISE_H
#define POSTERN_MASTER_SUPERVISE_H

#include <stddef.h>

#include "config.h"
#include "evloop.h"
#include "listeners.h"

struct sup;

/*
 * bindir holds the role binaries; conf is the absolute config path given to
 * each child as "-c conf"; foreground sets POSTERN_FOREGROUND=1 for them.
 * Takes SIGCHLD on ev. NULL on failure (errno set).
 */
struct sup *sup_new(struct evloop *ev, const char *bindir, const char *conf, int foreground);
void sup_free(struct sup *s);

/* Is every role's binary in bindir and executable? -1 with err if not. */
int sup_check_binaries(const char *bindir, char *err, size_t errlen);

/* Starts every role, in table order. c and l must outlive the next reload. */
void sup_start(struct sup *s, const struct config *c, const struct listeners *l);

/*
 * A new configuration: roles that take a reload in place get SIGHUP; roles
 * that reload by generation get fresh processes with c and l, and their old
 * processes get SIGHUP, which tells them to drain and exit.
 */
void sup_reload(struct sup *s, const struct config *c, const struct listeners *l);

/* Stops every child, in stop phases; calls ev_stop() once all are gone. */
void sup_stop(struct sup *s);
int sup_stopping(const struct sup *s);

#endif
