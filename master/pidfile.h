/*
 * pidfile.h - RUN_DIR/postern.pid: who the running master is.
 *
 * The running master holds a lock on the file for its whole life, so a
 * pid file left behind by a master that died is recognised as stale even if
 * its pid has been reused by an unrelated process.
 */
#ifndef POSTERN_MASTER_PIDFILE_H
#define POSTERN_MASTER_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Opens (creating or replacing a stale one), locks and writes our pid.
 * Returns the descriptor to keep open; -2 with *running set when a live
 * master holds it; -1 with err on other errors.
 */
int pidfile_acquire(const char *path, pid_t *running, char *err, size_t errlen);

/* Rewrites the pid (after daemonizing changed it). -1 on error. */
int pidfile_write(int fd, pid_t pid);

/* The pid of the live master that holds path, 0 when none; -1 with err when
 * the file cannot be examined. */
pid_t pidfile_running(const char *path, char *err, size_t errlen);

/* Removes path (still holding the lock) and closes fd. */
void pidfile_remove(const char *path, int fd);

#endif
