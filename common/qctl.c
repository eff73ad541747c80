/*
 * qctl.c - queue control frames and answers (qctl.h). Builds only what
 * proto.h describes; parses every answer as untrusted input and never
 * treats a malformed or mismatched frame as a success.
 */
#include "qctl.h"

#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

void qctl_build_ids(struct ipc_out *m, uint16_t type, uint32_t reqid, char (*ids)[QID_LEN + 1], size_t n)
{
    ipc_out_begin(m, type, reqid);
    for (size_t i = 0; i < n && i < QCTL_IDS_MAX; i++)
        ipc_out_str(m, T_QID, ids[i]);
}

void qctl_build_delete_sel(struct ipc_out *m, uint32_t reqid, int all, const char *sender,
                           const char *rcpt)
{
    ipc_out_begin(m, Q_DELETE, reqid);
    if (all)
        ipc_out_u64(m, T_CTL_ALL, 1);
    if (sender)
        ipc_out_str(m, T_CTL_SENDER, sender);
    if (rcpt)
        ipc_out_str(m, T_CTL_RCPT, rcpt);
}

int qctl_parse_done(const struct ipc_msg *m, uint32_t reqid, struct qctl_done *d, struct qc_reply *r)
{
    struct ipc_iter it;
    struct ipc_field f;
    int rc, ncount = 0;

    memset(d, 0, sizeof(*d));
    memset(r, 0, sizeof(*r));
    if (m->reqid != reqid)
        return -1;
    if (m->type == Q_ERROR) {
        qc_parse_reply(m, reqid, Q_ERROR, r);
        return -1;
    }
    if (m->type != Q_DONE)
        return -1;
    r->type = Q_DONE;
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_COUNT) {
            if (ipc_field_u64(&f, &d->count) < 0)
                return -1;
            ncount++;
        } else if (f.tag == T_CTL_MISSING && ipc_field_u64(&f, &d->missing) < 0) {
            return -1;
        }
    }
    return rc < 0 || ncount != 1 ? -1 : 0;
}

/* The next frame for reqid; a descriptor is refused. */
static enum qc_status next(struct qc_conn *c, uint32_t reqid, struct ipc_msg *m)
{
    int r = ipc_conn_recv_wait(&c->conn, m, c->timeout_ms);

    if (r == 0)
        return QC_TIMEOUT;
    if (r < 0)
        return QC_LOST;
    if (m->fd >= 0) {
        close(m->fd);
        return QC_PROTO;
    }
    if (m->reqid != reqid)
        return QC_PROTO;
    if (m->type == Q_ERROR)
        return qc_parse_reply(m, reqid, Q_ERROR, &c->last) == 0 ? QC_REFUSED : QC_PROTO;
    return QC_OK;
}

static enum qc_status await_done(struct qc_conn *c, uint32_t reqid, struct qctl_done *d)
{
    struct ipc_msg m;
    enum qc_status s = next(c, reqid, &m);

    if (s != QC_OK)
        return s;
    return qctl_parse_done(&m, reqid, d, &c->last) == 0 ? QC_OK : QC_PROTO;
}

enum qc_status qctl_ids(struct qc_conn *c, uint16_t type, char (*ids)[QID_LEN + 1], size_t n,
                        struct qctl_done *d)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;

    qctl_build_ids(&m, type, id, ids, n);
    if ((s = qc_send(c, &m)) != QC_OK)
        return s;
    return await_done(c, id, d);
}

enum qc_status qctl_delete_sel(struct qc_conn *c, int all, const char *sender, const char *rcpt,
                               struct qctl_done *d)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;

    qctl_build_delete_sel(&m, id, all, sender, rcpt);
    if ((s = qc_send(c, &m)) != QC_OK)
        return s;
    return await_done(c, id, d);
}

enum qc_status qctl_show(struct qc_conn *c, const char *qid,
                         void (*rec)(const void *record, size_t len, int active, void *arg),
                         void (*data)(const void *p, size_t n, void *arg), void *arg)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;
    struct buf part;
    int have_rec = 0;

    ipc_out_begin(&m, Q_SHOW, id);
    ipc_out_str(&m, T_QID, qid);
    if ((s = qc_send(c, &m)) != QC_OK)
        return s;
    buf_init(&part, (size_t)256 << 20);
    for (;;) {
        struct ipc_msg f;
        struct ipc_iter it;
        struct ipc_field fl;
        int rc, active = 0;
        uint64_t v;

        if ((s = next(c, id, &f)) != QC_OK)
            break;
        if (f.type == Q_LIST_END) {
            s = have_rec && qc_parse_reply(&f, id, Q_LIST_ITEM, &c->last) == 0 ? QC_OK : QC_PROTO;
            break;
        }
        if ((f.type == Q_LIST_ITEM && have_rec) || (f.type == Q_DATA && !have_rec) ||
            (f.type != Q_LIST_ITEM && f.type != Q_DATA)) {
            s = QC_PROTO;
            break;
        }
        ipc_iter_init(&it, f.body, f.len);
        while ((rc = ipc_iter_next(&it, &fl)) == 1) {
            if (f.type == Q_DATA && fl.tag == T_DATA) {
                data(fl.val, fl.len, arg);
            } else if (f.type == Q_LIST_ITEM && fl.tag == T_ACTIVE) {
                if (ipc_field_u64(&fl, &v) < 0 || v > 1)
                    rc = -1;
                else
                    active = (int)v;
            } else if (f.type == Q_LIST_ITEM && fl.tag == T_RECORD_PART) {
                if (buf_append(&part, fl.val, fl.len) < 0)
                    rc = -1;
            } else if (f.type == Q_LIST_ITEM && fl.tag == T_RECORD) {
                if (part.len) {
                    if (buf_append(&part, fl.val, fl.len) < 0) {
                        rc = -1;
                    } else {
                        rec(buf_head(&part), part.len, active, arg);
                        have_rec = 1;
                    }
                } else {
                    rec(fl.val, fl.len, active, arg);
                    have_rec = 1;
                }
                buf_reset(&part);
            }
            if (rc < 0)
                break;
        }
        if (rc < 0) {
            s = QC_PROTO;
            break;
        }
    }
    buf_free(&part);
    return s;
}

enum qc_status qctl_stats(struct qc_conn *c, struct buf *out)
{
    struct ipc_out m;
    struct ipc_msg f;
    struct ipc_iter it;
    struct ipc_field fl;
    uint32_t id = c->next_reqid++;
    enum qc_status s;
    int rc, n = 0;

    buf_reset(out);
    ipc_out_begin(&m, Q_STATS, id);
    if ((s = qc_send(c, &m)) != QC_OK || (s = next(c, id, &f)) != QC_OK)
        return s;
    if (f.type != Q_STATS_REPLY)
        return QC_PROTO;
    ipc_iter_init(&it, f.body, f.len);
    while ((rc = ipc_iter_next(&it, &fl)) == 1)
        if (fl.tag == T_DATA) {
            /* text: printable ASCII and newlines only */
            for (size_t i = 0; i < fl.len; i++)
                if (fl.val[i] != '\n' && (fl.val[i] < 0x20 || fl.val[i] > 0x7e))
                    return QC_PROTO;
            if (buf_append(out, fl.val, fl.len) < 0)
                return QC_PROTO;
            n++;
        }
    return rc < 0 || n != 1 ? QC_PROTO : QC_OK;
}
