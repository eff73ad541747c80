/*
 * passwd.h - `posternctl passwd USER@DOMAIN`: sets the password hash of a
 * mailbox in mailboxes_file (tools/posternctl_passwd.c).
 */
#ifndef POSTERN_TOOLS_PASSWD_H
#define POSTERN_TOOLS_PASSWD_H

/* conf: -c FILE or NULL; argv: the arguments after "passwd". A sysexits
 * code. */
int ctl_passwd(const char *conf, int argc, char **argv);

#endif
