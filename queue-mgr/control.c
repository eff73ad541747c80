/*
 * control.c - control socket dispatch (control.h). Who may do what is
 * decided here, from the peer's credentials (SO_PEERCRED, SO_PEERGROUPS;
 * nothing the client says about itself): root, queue-mgr's own uid and
 * members of admin_group may control the queue; listing is open to every
 * local user when mailq_public = yes, and otherwise shows a user who is
 * not an admin only the mail that user submitted. Every field of a
 * request is validated before anything acts. Never hands out a
 * descriptor.
 */
#include "control.h"

#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listing.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "qctl.h"
#include "qops.h"
#include "scheduler.h"
#include "util.h"

static const struct config *cfg;

void control_set_config(const struct config *c)
{
    cfg = c;
}

/* Whether the peer is in admin_group (its primary or a supplementary group). */
static int in_admin_group(const struct client *c)
{
    struct group *g;
    struct ucred cr;
    gid_t groups[512];
    socklen_t len = sizeof(cr);

    if (!cfg || !cfg->admin_group[0] || c->conn.fd < 0 || !(g = getgrnam(cfg->admin_group)))
        return 0;
    if (getsockopt(c->conn.fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.gid == g->gr_gid)
        return 1;
    len = sizeof(groups);
    if (getsockopt(c->conn.fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
        for (size_t i = 0; i < len / sizeof(groups[0]); i++)
            if (groups[i] == g->gr_gid)
                return 1;
    return 0;
}

static int may_change(const struct client *c)
{
    return c->uid == 0 || c->uid == getuid() || in_admin_group(c);
}

static int refuse(struct client *c, const struct ipc_msg *m)
{
    if (may_change(c))
        return 0;
    log_warning("control: %s refused to uid %lu (not root nor in admin_group)",
                m->type == Q_FLUSH ? "flush" : "queue control", (unsigned long)c->uid);
    client_error(c, m->reqid, "550 5.7.1", "permission denied");
    return 1;
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

/* Q_DELETE/Q_HOLD/Q_RELEASE/Q_REQUEUE with ids, or Q_DELETE by selector. */
static void act(struct client *c, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1], sender[ADDR_MAX + 1] = "", rcpt[ADDR_MAX + 1] = "";
    int rc, all = 0, have_sender = 0, have_rcpt = 0;
    size_t nids = 0;
    uint64_t v, count = 0, missing = 0;

    /* first validate the whole request, then act */
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_QID) {
            if (ipc_field_str(&f, qid, sizeof(qid)) < 0 || !qid_valid(qid) || ++nids > QCTL_IDS_MAX)
                rc = -1;
        } else if (f.tag == T_CTL_ALL && m->type == Q_DELETE) {
            if (ipc_field_u64(&f, &v) < 0 || v != 1)
                rc = -1;
            all = 1;
        } else if (f.tag == T_CTL_SENDER && m->type == Q_DELETE) {
            if (ipc_field_str(&f, sender, sizeof(sender)) < 0)
                rc = -1;
            have_sender = 1;
        } else if (f.tag == T_CTL_RCPT && m->type == Q_DELETE) {
            if (ipc_field_str(&f, rcpt, sizeof(rcpt)) < 0 || !rcpt[0])
                rc = -1;
            have_rcpt = 1;
        } else {
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    if (rc < 0 || (nids > 0) + all + (have_sender || have_rcpt) != 1) {
        client_error(c, m->reqid, "501 5.5.4", "bad queue control request");
        return;
    }
    if (!nids) {
        qops_delete_start(c, m->reqid, all, have_sender ? sender : NULL, have_rcpt ? rcpt : NULL);
        return;
    }
    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1) {
        if (f.tag != T_QID || ipc_field_str(&f, qid, sizeof(qid)) < 0)
            continue;
        unsigned long uid = (unsigned long)c->uid;
        switch (m->type) {
        case Q_DELETE: rc = qops_delete(qid, uid); break;
        case Q_HOLD: rc = qops_hold(qid, uid); break;
        case Q_RELEASE: rc = qops_release(qid, uid); break;
        default: rc = qops_requeue(qid, uid); break;
        }
        if (rc < 0) {
            client_error(c, m->reqid, "451 4.3.0", "queue index error");
            return;
        }
        count += rc == 0;
        missing += rc == 1;
    }
    struct ipc_out out;
    ipc_out_begin(&out, Q_DONE, m->reqid);
    ipc_out_u64(&out, T_COUNT, count);
    ipc_out_u64(&out, T_CTL_MISSING, missing);
    client_send(c, &out, -1);
}

static void show(struct client *c, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "";
    int rc, n = 0;

    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag != T_QID || ipc_field_str(&f, qid, sizeof(qid)) < 0 || !qid_valid(qid) || ++n > 1) {
            rc = -1;
            break;
        }
    }
    if (rc < 0 || n != 1) {
        client_error(c, m->reqid, "501 5.5.4", "bad show request");
        return;
    }
    qops_show_start(c, m->reqid, qid);
}

static void stats(struct client *c, const struct ipc_msg *m)
{
    struct buf text;
    struct ipc_out out;

    buf_init(&text, QCTL_STATS_MAX);
    if (m->len != 0 || metrics_render(&text) < 0) {
        buf_free(&text);
        client_error(c, m->reqid, m->len ? "501 5.5.4" : "451 4.3.0",
                     m->len ? "bad stats request" : "queue index error");
        return;
    }
    ipc_out_begin(&out, Q_STATS_REPLY, m->reqid);
    ipc_out_bytes(&out, T_DATA, buf_head(&text), text.len);
    buf_free(&text);
    client_send(c, &out, -1);
}

void control_frame(struct client *c, const struct ipc_msg *m)
{
    char why[64];

    if (c->listing || c->op) {
        /* one answer at a time: a client that does not wait breaks the protocol */
        client_close(c, "request while an answer is in progress");
        return;
    }
    switch (m->type) {
    case Q_LIST:
        listing_start(c, m->reqid, cfg && !cfg->mailq_public && !may_change(c) ? (int64_t)c->uid : -1);
        return;
    case Q_FLUSH:
        if (!refuse(c, m))
            flush(c, m);
        return;
    case Q_DELETE:
    case Q_HOLD:
    case Q_RELEASE:
    case Q_REQUEUE:
        if (!refuse(c, m))
            act(c, m);
        return;
    case Q_SHOW:
        if (!refuse(c, m))
            show(c, m);
        return;
    case Q_STATS:
        /* the figures only, no message: as public as the listing */
        if ((cfg && cfg->mailq_public) || !refuse(c, m))
            stats(c, m);
        return;
    }
    snprintf(why, sizeof(why), "unexpected message type %u", m->type);
    client_close(c, why);
}

void control_pump(struct client *c)
{
    if (c->op)
        qops_pump(c);
    else if (c->listing)
        listing_pump(c);
}

void control_gone(struct client *c)
{
    qops_gone(c);
}
