/*
 * rcptquota.h - smtpd's mailbox quota decisions, with no I/O so that they
 * can be tested alone: what RCPT does for a mailbox with a quota (refuse at
 * once, or ask the local role), what the local role's answer means for the
 * RCPT reply, and whether the end of DATA refuses a message that no
 * recipient's quota can hold. All of it is advice: the local role enforces
 * the quota again when it stores the message.
 */
#ifndef POSTERN_SMTPD_RCPTQUOTA_H
#define POSTERN_SMTPD_RCPTQUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "mapdb.h"
#include "quotaproto.h"

#define RQ_REPLY_DATA "552 5.2.2 Error: message exceeds the mailbox quota of every recipient"

enum rq_step { RQ_ASK, RQ_REFUSE };

/* RCPT for mailbox (as the client wrote it) whose map quota is q, with
 * size from MAIL's SIZE= (0: not given): RQ_REFUSE with the 552 in reply
 * when the message alone is larger than the quota's bytes, else RQ_ASK. */
enum rq_step rcptquota_at_rcpt(const struct mapdb_quota *q, uint64_t size, const char *mailbox, char *reply,
                               size_t len);

/* The local role's answer (NULL: none came): NULL to accept (250), else
 * the refusal written into reply (452 4.2.2 full, 552 5.2.2 too big). */
const char *rcptquota_answer(const struct quota_answer *a, const char *mailbox, char *reply, size_t len);

/* End of DATA: 1 when each of the n recipients has a byte quota (bytes[i],
 * 0: none) smaller than size, so that no recipient can take the message. */
int rcptquota_none_fits(const uint64_t *bytes, unsigned n, uint64_t size);

#endif
