/*
 * qtlink.h - smtpd's link to the local role's quota socket (quotaproto.h:
 * L_QUOTA -> L_QUOTA_REPLY) on a common/link.h link shared by the sessions
 * of a worker. Never blocks and never stalls a session: every question is
 * answered within QTLINK_WAIT_MS, with a NULL answer when the local role is
 * down, slow or said something malformed. While it keeps failing, further
 * questions are not even asked (qtlink_ask returns 0 at once) until the
 * link comes back or a late answer shows the peer is alive again. Logs one
 * line when a failure burst starts and one when it ends.
 */
#ifndef POSTERN_SMTPD_QTLINK_H
#define POSTERN_SMTPD_QTLINK_H

#include <stdint.h>

#include "evloop.h"
#include "quotaproto.h"

#define QTLINK_WAIT_MS 2000

/* a == NULL: no answer (the recipient is accepted; delivery enforces). */
typedef void (*qtlink_cb)(void *arg, const struct quota_answer *a);

/* path: the local role's quota socket as seen by this process. Without
 * qtlink_init (the local role disabled, or LMTP storage) qtlink_ask always
 * returns 0 and logs that once. */
void qtlink_init(struct evloop *ev, const char *path, qtlink_cb cb);
void qtlink_free(void);
/* Asks about the mailbox key with size bytes (0: unknown). The request id,
 * or 0 when nothing was asked (accept now, without waiting). cb hears the
 * answer later, never from inside qtlink_ask. */
uint32_t qtlink_ask(const char *key, uint64_t size, void *arg);
/* The asker is gone: its callback is never called. */
void qtlink_cancel(uint32_t id);
/* The wait instead of QTLINK_WAIT_MS (unit tests). */
void qtlink_set_wait(uint64_t ms);

#endif
