/*
 * alink.h - smtpd's link to the auth process (A_CHECK -> A_RESULT) on a
 * common/link.h link shared by the sessions of a worker. Never blocks:
 * the answer comes to the callback, r == NULL when the link dropped or
 * the auth process was not there within ALINK_WAIT_MS.
 */
#ifndef POSTERN_SMTPD_ALINK_H
#define POSTERN_SMTPD_ALINK_H

#include <stddef.h>
#include <stdint.h>

#include "authproto.h"
#include "evloop.h"

#define ALINK_WAIT_MS 5000

typedef void (*alink_cb)(void *arg, const struct auth_result *r);

/* cb hears every answer, with the arg given to alink_check. */
void alink_init(struct evloop *ev, const char *path, alink_cb cb);
void alink_free(void);
/* Sends the check; the request id, or 0 when it cannot be sent. The
 * caller wipes its copy of the password afterwards. */
uint32_t alink_check(const char *user, const char *pass, size_t passlen, const char *client, void *arg);
void alink_cancel(uint32_t id);

#endif
