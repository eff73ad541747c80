/*
 * audit.h - `postern check`'s audit of the jails, owners and modes: every
 * file in a chroot jail that its role does not need, every path a role
 * could write without needing to, every configuration file others could
 * change; each finding with the command that fixes it.
 */
#ifndef POSTERN_MASTER_AUDIT_H
#define POSTERN_MASTER_AUDIT_H

#include "config.h"
#include "dirs.h"

/* One finding: what is wrong with path, and the fix (a command). */
typedef void (*audit_report_cb)(const char *path, const char *problem, const char *fix, void *arg);

/* Runs every check; returns the number of findings. owners NULL (not run
 * as root): everything belongs to the caller, so ownership is not judged,
 * only extra files and group/world-writable modes. */
unsigned audit_run(const struct config *c, const struct dir_owners *owners, audit_report_cb cb, void *arg);

/* A report callback that prints "postern check: PATH: PROBLEM; fix: FIX"
 * to stderr (arg unused). */
void audit_print(const char *path, const char *problem, const char *fix, void *arg);

#endif
