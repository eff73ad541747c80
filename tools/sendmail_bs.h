/*
 * sendmail_bs.h - sendmail's modes that are not a submission: -bp (the
 * queue, as mailq), -q (a flush, as posternctl flush) and -bs (an SMTP
 * dialogue on standard input and output, each message submitted through
 * the pickup socket as the real user, as Postfix's sendmail -bs does).
 */
#ifndef POSTERN_SENDMAIL_BS_H
#define POSTERN_SENDMAIL_BS_H

#include "config.h"

/* Replaces the process with BINDIR/tool (mailq or posternctl) and args;
 * returns only on failure (EX_UNAVAILABLE). conf: -C FILE, or NULL. */
int sendmail_exec_tool(const char *tool, const char *conf, const char *const *args);
/* The -bs session; returns the exit code (0 after QUIT or EOF). */
int sendmail_bs(const struct config *cfg);

#endif
