/*
 * authcmd.h - SMTP AUTH in smtpd (RFC 4954): the AUTH command, the 334
 * exchange of PLAIN and LOGIN, the check by the auth process (alink.h)
 * with the session suspended, the delayed 535 and the 421 of a blocked
 * client; and the questions the other commands ask once a session is
 * authenticated (s->auth_user, the mailbox key; NULL before).
 *
 * AUTH is offered and accepted only on the submission ports (587, 465)
 * under TLS. The password is wiped from the session's memory as soon as
 * the check request is built, and is never logged.
 */
#ifndef POSTERN_SMTPD_AUTHCMD_H
#define POSTERN_SMTPD_AUTHCMD_H

#include <stddef.h>

#include "addr.h"
#include "evloop.h"

struct session;

/* path: the auth socket as seen by this process (inside the jail). */
void authcmd_init(struct evloop *ev, const char *path);
void authcmd_shutdown(void);
/* May this session be offered AUTH now (EHLO)? */
int authcmd_offered(const struct session *s);
/* The AUTH command, arg after the verb. */
void authcmd_command(struct session *s, const char *arg);
/* In ST_AUTH: the client's response lines; returns the bytes used. */
size_t authcmd_input(struct session *s, const char *data, size_t n);
/* The session goes: cancels what is pending, frees the exchange. */
void authcmd_free(struct session *s);

/* Submission only (587/465): MAIL needs TLS and AUTH first. NULL, or the
 * refusal reply. */
const char *authcmd_mail_refusal(const struct session *s);
/* Sender binding: may the authenticated user send as a ("" = <>)? */
int authcmd_sender_owned(const struct session *s, const struct addr *a);

#endif
