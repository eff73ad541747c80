/*
 * posternctl_reload.h - `posternctl reload-maps` (and `newaliases`, which runs it):
 * recompile the mailbox and alias maps without a restart.
 */
#ifndef POSTERN_TOOLS_CTL_RELOAD_H
#define POSTERN_TOOLS_CTL_RELOAD_H

/* conf: -c FILE or NULL for the default. Returns a sysexits(3) code. */
int ctl_reload_maps(const char *conf);

#endif
