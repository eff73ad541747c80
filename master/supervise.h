/*
 * supervise.h - the processes the master runs and their lives: a table of
 * roles (queue-mgr, smtpd, later resolver and deliver) with what each needs
 * running first, spawn, readiness (common/ready.h), reap, restart with
 * backoff, reload by generations, and an orderly stop.
 */
#ifndef POSTERN_MASTER_SUPERVISE_H
#define POSTERN_MASTER_SUPERVISE_H

#include <stddef.h>

#include "config.h"
#include "evloop.h"
#include "listeners.h"

struct sup;

enum sup_event {
    SUP_READY,      /* once: every process is up for the first time */
    SUP_FAILED,     /* at most once, before SUP_READY: a process failed to start */
    SUP_CHANGED,    /* readiness of some process changed (text: sup_describe) */
};

/* text says what: the processes that are up, or which one failed and how. */
typedef void (*sup_event_cb)(enum sup_event e, const char *text, void *arg);

/*
 * bindir holds the role binaries; conf is the absolute config path given to
 * each child as "-c conf"; foreground sets POSTERN_FOREGROUND=1 for them.
 * cb (may be NULL) hears about readiness. Takes SIGCHLD on ev. NULL on
 * failure (errno set).
 */
struct sup *sup_new(struct evloop *ev, const char *bindir, const char *conf, int foreground,
                    sup_event_cb cb, void *arg);
void sup_free(struct sup *s);

/* Is the role table sound, and every role's binary in bindir and
 * executable? -1 with err if not. */
int sup_check_binaries(const char *bindir, char *err, size_t errlen);

/*
 * Starts every role in table order, each only once the roles it needs are
 * up. c and l must outlive the next reload.
 */
void sup_start(struct sup *s, const struct config *c, const struct listeners *l);

/*
 * Writes a one-line summary into out, such as "queue-mgr 1/1 up, smtpd 0/2
 * waiting for queue-mgr". 1 when every process is up, else 0.
 */
int sup_describe(const struct sup *s, char *out, size_t outlen);

/*
 * A new configuration: roles that take a reload in place get SIGHUP; roles
 * that reload by generation get fresh processes with c and l, and once
 * those are up their old processes get SIGHUP, which tells them to drain
 * and exit.
 */
void sup_reload(struct sup *s, const struct config *c, const struct listeners *l);

/* Stops every child, in stop phases; calls ev_stop() once all are gone. */
void sup_stop(struct sup *s);
int sup_stopping(const struct sup *s);

#endif
