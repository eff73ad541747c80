/*
 * bounce.h - deciding and queueing delivery status notifications: failure
 * notices, delay warnings, success reports (RFC 3461, 3464), double
 * bounces to double_bounce_recipient.
 *
 * After a delivery result is durable the scheduler calls bounce_check();
 * once no delivery of that message is in flight, bounce.c plans what its
 * recipients' states call for (bounce_plan, pure) and hands one commit
 * job to the committer's index thread, which writes and syncs the
 * notice's spool file first and then, in ONE LMDB transaction
 * (qstore_put_notice), adds the notice's record, marks the recipients it
 * reports (QN_* bits) and removes the original when nothing of it is left.
 * A crash before that transaction leaves the recipients unmarked (start-up
 * finds them again, reconciliation removes the orphan file); after it,
 * the notice exists exactly once.
 */
#ifndef POSTERN_QMGR_BOUNCE_H
#define POSTERN_QMGR_BOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include "btmpl.h"
#include "config.h"
#include "evloop.h"
#include "notice.h"
#include "qrecord.h"
#include "qstore.h"

/* Loads the templates and looks through the queue once for notices a
 * crash left undone. -1 with err (a template error is FILE:LINE). */
int bounce_start(struct evloop *ev, struct qstore *q, const struct config *cfg, char *err, size_t errlen);
/* A reload: loads the templates of cfg (kept aside until bounce_set_config);
 * -1 with err, and nothing changes. */
int bounce_prepare(const struct config *cfg, char *err, size_t errlen);
void bounce_set_config(const struct config *cfg);
void bounce_stop(void);

/* A result for qid is durable: look whether it calls for a notice. */
void bounce_check(const char *qid);

/* Whether a message with nothing left to deliver must stay for a notice
 * (a failure or a success still to report). The committer asks. */
int bounce_waits(const struct qrec *r);

/* ---- the plan, pure (unit-tested) ---- */

struct bounce_policy {
    unsigned delay_warning, queue_lifetime;
    const char *double_bounce;      /* qualified */
};

struct bounce_plan {
    int kind;                       /* enum btmpl_kind, or -1: nothing to do */
    int notice;                     /* 1: a notice is written (else marks only) */
    unsigned notice_kind;           /* NOTICE_DSN or NOTICE_DOUBLE */
    const char *to;                 /* the notice's recipient */
    size_t n;                       /* recipients marked (all of them) */
    uint32_t *idx;
    unsigned *mark;                 /* QN_* bits each gets */
    unsigned char *report;          /* 1: in the notice */
    enum notice_action *action;
    int remove_orig;                /* nothing left of the original afterwards */
    const char *why;                /* for the log when there is no notice */
};

/* Fills p for record r at now (p's arrays are allocated: bounce_plan_free).
 * 0, or -1 out of memory. */
int bounce_plan(const struct qrec *r, const struct bounce_policy *pol, uint64_t now, struct bounce_plan *p);
void bounce_plan_free(struct bounce_plan *p);

/* "host" of a relay "host[ip]:port" into out; 0, or -1 when there is none. */
int bounce_remote_host(const char *relay, char *out, size_t outlen);

#endif
