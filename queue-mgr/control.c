/*
 * control.c - control socket dispatch (control.h). Read-only commands may
 * come from any local user (mailq shows the queue to everyone, as
 * Postfix's does); a command that changes the queue must check c->uid
 * here first: root and queue-mgr's own uid (admin_group comes with the
 * operations issue). Never hands out a descriptor.
 */
#include "control.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listing.h"
#include "log.h"
#include "proto.h"
#include "scheduler.h"
#include "util.h"

static int may_change(const struct client *c)
{
    return c->uid == 0 || c->uid == getuid();
}

/* Q_FLUSH {QID | D_DEST}: both absent flushes the whole queue. */
static void flush(struct client *c, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "", dest[256] = "";
    struct ipc_out out;
    int rc;
    long n;

    if (!may_change(c)) {
        client_error(c, m->reqid, "550 5.7.1", "permission denied");
        return;
    }
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_QID && (ipc_field_str(&f, qid, sizeof(qid)) < 0 || !qid_valid(qid)))
            rc = -1;
        else if (f.tag == T_D_DEST && (ipc_field_str(&f, dest, sizeof(dest)) < 0 || !dest[0] ||
                                       strchr(dest, '@') || strchr(dest, ' ')))
            rc = -1;
        if (rc < 0)
            break;
    }
    if (rc < 0 || (qid[0] && dest[0])) {
        client_error(c, m->reqid, "501 5.5.4", "bad flush request");
        return;
    }
    n = scheduler_flush(qid[0] ? qid : NULL, dest[0] ? dest : NULL);
    if (n < 0) {
        client_error(c, m->reqid, "451 4.3.0", "queue index error");
        return;
    }
    log_info("flush%s%s requested by uid %lu: %ld recipient(s) due now", qid[0] || dest[0] ? " " : "",
             qid[0] ? qid : dest, (unsigned long)c->uid, n);
    ipc_out_begin(&out, Q_FLUSHED, m->reqid);
    ipc_out_u64(&out, T_COUNT, (uint64_t)n);
    client_send(c, &out, -1);
}

void control_frame(struct client *c, const struct ipc_msg *m)
{
    char why[64];

    switch (m->type) {
    case Q_LIST:
        if (c->listing)
            break;
        listing_start(c, m->reqid);
        return;
    case Q_FLUSH:
        flush(c, m);
        return;
    }
    snprintf(why, sizeof(why), "unexpected message type %u", m->type);
    client_close(c, why);
}

void control_pump(struct client *c)
{
    if (c->listing)
        listing_pump(c);
}
