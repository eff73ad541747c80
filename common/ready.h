/*
 * ready.h - the readiness protocol between the master and the processes it
 * starts.
 *
 * The master gives each child the write end of a pipe and names its
 * descriptor in the environment variable POSTERN_READY_FD (a decimal number,
 * 3 or more; today it follows the listening sockets). When the child is
 * really ready to serve (queue-mgr: queue reconciled, spool pool running,
 * sockets listening; smtpd: TLS loaded, chrooted, privileges dropped,
 * listeners watched) it calls ready_notify(), which writes READY_MESSAGE
 * once and closes the descriptor. The master reads nothing else from a
 * child, and nothing longer than READY_MESSAGE.
 */
#ifndef POSTERN_READY_H
#define POSTERN_READY_H

#include <stddef.h>

#define READY_ENV      "POSTERN_READY_FD"
#define READY_MESSAGE  "ready\n"
#define READY_LEN      (sizeof(READY_MESSAGE) - 1)

/*
 * For children: says "ready" on the pipe named by POSTERN_READY_FD, closes
 * it and removes the variable, so a second call does nothing. Without the
 * variable (a daemon started alone, by hand or by a test) it does nothing
 * and returns 0. A bad variable or a failed write is logged as a warning
 * and returns -1; the caller carries on either way.
 */
int ready_notify(void);

/*
 * For the master: judges the bytes a child sent so far (len of them, at
 * most READY_LEN + 1 were read). 1: exactly the message; 0: a correct
 * beginning, wait for more; -1: anything else.
 */
int ready_check(const char *buf, size_t len);

#endif
