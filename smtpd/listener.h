/*
 * listener.h - smtpd's listening sockets: accepting connections into
 * sessions, refusing them over smtpd_max_sessions, and pausing accept for a
 * second when the process is out of descriptors.
 */
#ifndef POSTERN_SMTPD_LISTENER_H
#define POSTERN_SMTPD_LISTENER_H

#include "evloop.h"
#include "session.h"

/* Starts accepting on a listening socket of the given kind. */
int listener_add(struct evloop *ev, int fd, enum port_kind kind);
/* Stops accepting and closes every listener. */
void listener_close_all(void);

#endif
