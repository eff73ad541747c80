/*
 * session.h - SMTP sessions of one smtpd worker: accept, the command state
 * machine of RFC 5321 with its extensions, message data, and shutdown.
 */
#ifndef POSTERN_SMTPD_SESSION_H
#define POSTERN_SMTPD_SESSION_H

#include "config.h"
#include "evloop.h"

enum port_kind { PORT_SMTP, PORT_SUBMISSION, PORT_SMTPS };

/* Starts accepting on a listening socket of the given kind. */
int session_listen(struct evloop *ev, int fd, enum port_kind kind);
/* Sets the configuration sessions use (at start and on reload). */
void session_set_config(const struct config *cfg);
/* Stop accepting. drain=1: let sessions finish as they like (reload);
 * drain=0: tell idle sessions 421 now, finish transactions in flight. */
void session_shutdown(int drain);
/* Number of open sessions. */
unsigned session_count(void);
/* Periodic sweep (timeouts); call about once a second. */
void session_tick(void);

#endif
