/*
 * status.h - RUN_DIR/postern.status: one line saying whether every process
 * of the running master is up, for `postern status`.
 *
 * Written by the master whenever readiness changes, removed when it stops.
 * Only meaningful while the pid file's lock says that master is alive.
 */
#ifndef POSTERN_MASTER_STATUS_H
#define POSTERN_MASTER_STATUS_H

#include <stddef.h>

#define STATUS_FILE "postern.status"
#define STATUS_MAX  512             /* longest line, newline included */

/* Replaces the file in run_dir with line (plus a newline). -1 on error. */
int status_write(const char *run_dir, const char *line);

/* The line, without its newline, into out; -1 when it is missing, too
 * long, or holds anything but printable ASCII. */
int status_read(const char *run_dir, char *out, size_t outlen);

void status_remove(const char *run_dir);

/* The same for another one-line file of the master's in run_dir (name is a
 * fixed file name, such as reload.h's RELOAD_FILE). */
int status_file_write(const char *run_dir, const char *name, const char *line);
int status_file_read(const char *run_dir, const char *name, char *out, size_t outlen);

#endif
