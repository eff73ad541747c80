/*
 * notify.h - the systemd readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram to $NOTIFY_SOCKET per state change.
 *
 * `postern run` under a Type=notify unit says READY=1 once every role is
 * up, RELOADING=1 and READY=1 around a reload, STOPPING=1 at stop. Without
 * NOTIFY_SOCKET (by hand, in tests) nothing is sent.
 */
#ifndef POSTERN_MASTER_NOTIFY_H
#define POSTERN_MASTER_NOTIFY_H

/* Reads NOTIFY_SOCKET and removes it from the environment, so no child
 * inherits it. Call once, early. */
void notify_init(void);

/* Sends "STATE" plus a STATUS= line, if a socket was given; never fails
 * the caller (a lost notification is logged once). */
void notify_send(const char *state, const char *status);

#endif
