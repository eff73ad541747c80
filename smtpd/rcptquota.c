/*
 * rcptquota.c - the quota decisions (rcptquota.h). Must never refuse for a
 * missing or doubtful answer: only the local role's own FULL/TOOBIG, or a
 * size the quota cannot hold whatever the usage, refuses.
 */
#include "rcptquota.h"

#include <stdio.h>

static const char *too_big(const char *mailbox, char *reply, size_t len)
{
    snprintf(reply, len, "552 5.2.2 <%s>: Recipient address rejected: Message exceeds the mailbox quota", mailbox);
    return reply;
}

enum rq_step rcptquota_at_rcpt(const struct mapdb_quota *q, uint64_t size, const char *mailbox, char *reply,
                               size_t len)
{
    if (q->bytes && size > q->bytes) {
        too_big(mailbox, reply, len);
        return RQ_REFUSE;
    }
    return RQ_ASK;
}

const char *rcptquota_answer(const struct quota_answer *a, const char *mailbox, char *reply, size_t len)
{
    if (!a)
        return NULL;
    switch (a->verdict) {
    case QUOTA_FULL:
        snprintf(reply, len, "452 4.2.2 <%s>: Recipient address rejected: Mailbox full", mailbox);
        return reply;
    case QUOTA_TOOBIG:
        return too_big(mailbox, reply, len);
    default:                    /* OK, NONE, TEMPFAIL: delivery decides */
        return NULL;
    }
}

int rcptquota_none_fits(const uint64_t *bytes, unsigned n, uint64_t size)
{
    if (n == 0 || !bytes)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (bytes[i] == 0 || size <= bytes[i])
            return 0;
    return 1;
}
