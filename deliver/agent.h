/*
 * agent.h - the deliver process's work: pulls jobs from queue-mgr (D_WANT,
 * D_JOB), finds the next hops through the resolver, delivers through the
 * SMTP engine over cached connections, logs the SPEC §6 line per recipient
 * and returns D_RESULT. Runs on the process's event loop.
 */
#ifndef POSTERN_DELIVER_AGENT_H
#define POSTERN_DELIVER_AGENT_H

#include "authfile.h"
#include "config.h"
#include "evloop.h"

/* queue_sock and resolver_sock as seen from here (inside the jail or
 * not); cred is the relayhost's, NULL for none. -1 with err. */
int agent_start(struct evloop *ev, const struct config *cfg, const char *queue_sock,
                const char *resolver_sock, const struct auth_cred *cred, char *err, size_t errlen);
/* SIGHUP: take no new job, finish those in flight, send their results. */
void agent_drain(void);
/* Draining and nothing left to do (the process may exit). */
int agent_drained(void);
/* Deliveries in flight. */
unsigned agent_active(void);
void agent_stop(void);

#endif
