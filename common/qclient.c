/*
 * qclient.c - queue-mgr's protocol, client side (qclient.h). Builds frames
 * with ipc.h and checks every reply field; never trusts a reply's length,
 * id or text. The blocking half waits with a deadline on every call.
 */
#include "qclient.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

void qc_build_open(struct ipc_out *m, uint32_t reqid)
{
    ipc_out_begin(m, Q_OPEN, reqid);
}

void qc_build_data(struct ipc_out *m, uint32_t reqid, const char *qid, const void *p, size_t n)
{
    ipc_out_begin(m, Q_DATA, reqid);
    ipc_out_str(m, T_QID, qid);
    if (n > PROTO_DATA_MAX)
        m->failed = 1;
    else
        ipc_out_bytes(m, T_DATA, p, n);
}

void qc_build_commit(struct ipc_out *m, uint32_t reqid, const struct qrec *envelope)
{
    ipc_out_begin(m, Q_COMMIT, reqid);
    qrec_encode(envelope, m);
}

int qc_commit_fits(const struct qrec *envelope)
{
    struct qrec r = *envelope;      /* shallow: only the qid changes */
    struct ipc_out m;
    int ok;

    str_copy(r.qid, "000000000000", sizeof(r.qid));
    qc_build_commit(&m, 0, &r);
    ok = ipc_out_finish(&m) == 0 && m.b.len - IPC_HDR_LEN <= proto_limit(Q_COMMIT);
    ipc_out_free(&m);
    return ok;
}

void qc_build_abort(struct ipc_out *m, const char *qid)
{
    ipc_out_begin(m, Q_ABORT, 0);
    ipc_out_str(m, T_QID, qid);
}

void qc_build_list(struct ipc_out *m, uint32_t reqid)
{
    ipc_out_begin(m, Q_LIST, reqid);
}

void qc_build_flush(struct ipc_out *m, uint32_t reqid, const char *qid, const char *domain)
{
    ipc_out_begin(m, Q_FLUSH, reqid);
    if (qid)
        ipc_out_str(m, T_QID, qid);
    else if (domain)
        ipc_out_str(m, T_D_DEST, domain);
}

/* "451 4.3.0": a 4xx or 5xx reply code and an enhanced status code. */
static int code_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 9 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9' || s[3] != ' ' || s[4] != s[0] || s[5] != '.')
        return 0;
    for (size_t i = 6; i < n; i++)
        if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

int qc_parse_reply(const struct ipc_msg *m, uint32_t reqid, uint16_t want, struct qc_reply *r)
{
    struct ipc_iter it;
    struct ipc_field f;
    int rc, nrec = 0, ncount = 0;

    memset(r, 0, sizeof(*r));
    if (m->reqid != reqid)
        return -1;
    if (m->type != want && m->type != Q_ERROR && !(want == Q_LIST_ITEM && m->type == Q_LIST_END))
        return -1;
    r->type = m->type;
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_QID:
            if (ipc_field_str(&f, r->qid, sizeof(r->qid)) < 0 || !qid_valid(r->qid))
                return -1;
            break;
        case T_CODE:
            if (ipc_field_str(&f, r->code, sizeof(r->code)) < 0)
                r->code[0] = 0;
            break;
        case T_TEXT:
            if (ipc_field_str(&f, r->text, sizeof(r->text)) < 0)
                r->text[0] = 0;
            break;
        case T_RECORD:
            r->record = f.val;
            r->record_len = f.len;
            nrec++;
            break;
        case T_COUNT:
            if (ipc_field_u64(&f, &r->count) < 0)
                return -1;
            ncount++;
            break;
        case T_ACTIVE: {
            uint64_t v;
            if (ipc_field_u64(&f, &v) < 0 || v > 1)
                return -1;
            r->active = (int)v;
            break;
        }
        }
    }
    if (rc < 0)
        return -1;
    switch (r->type) {
    case Q_OPENED:
    case Q_COMMITTED:
        return r->qid[0] ? 0 : -1;
    case Q_ERROR:
        /* A refusal whose code we cannot read is a temporary one. */
        if (!code_valid(r->code))
            str_copy(r->code, "451 4.3.0", sizeof(r->code));
        if (!r->text[0])
            str_copy(r->text, "queue manager error", sizeof(r->text));
        return 0;
    case Q_LIST_ITEM:
        return nrec >= 1 ? 0 : -1;
    case Q_LIST_END:
    case Q_FLUSHED:
        return ncount == 1 ? 0 : -1;
    }
    return -1;
}

/* ---- blocking ---- */

const char *qc_status_text(enum qc_status s)
{
    switch (s) {
    case QC_OK: return "ok";
    case QC_REFUSED: return "refused";
    case QC_DOWN: return "queue manager is down";
    case QC_TIMEOUT: return "timeout waiting for the queue manager";
    case QC_LOST: return "lost connection to the queue manager";
    default: return "unexpected reply from the queue manager";
    }
}

enum qc_status qc_connect(struct qc_conn *c, const char *run_dir, const char *sock_name,
                          int timeout_ms)
{
    char path[4096];
    int fd;

    memset(c, 0, sizeof(*c));
    c->conn.fd = -1;
    c->timeout_ms = timeout_ms;
    c->next_reqid = 1;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", run_dir, sock_name) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return QC_DOWN;
    }
    fd = ipc_connect_unix(path);
    if (fd < 0)
        return QC_DOWN;
    ipc_conn_init(&c->conn, fd, proto_limit);
    return QC_OK;
}

void qc_close(struct qc_conn *c)
{
    if (c->conn.fd >= 0)
        ipc_conn_close(&c->conn);
    c->conn.fd = -1;
}

enum qc_status qc_send(struct qc_conn *c, struct ipc_out *m)
{
    int r = -1;

    if (ipc_out_finish(m) == 0)
        r = ipc_conn_send_wait(&c->conn, m, -1, c->timeout_ms);
    ipc_out_free(m);
    return r == 0 ? QC_OK : QC_LOST;
}

/* Waits for the answer to reqid; *fd gets a passed descriptor (or -1; if
 * fd is NULL one is refused). */
static enum qc_status await(struct qc_conn *c, uint32_t reqid, uint16_t want, int *fd)
{
    struct ipc_msg m;
    int r = ipc_conn_recv_wait(&c->conn, &m, c->timeout_ms);

    if (fd)
        *fd = -1;
    if (r == 0)
        return QC_TIMEOUT;
    if (r < 0)
        return QC_LOST;
    if (qc_parse_reply(&m, reqid, want, &c->last) < 0 || (m.fd >= 0 && !fd)) {
        if (m.fd >= 0)
            close(m.fd);
        return QC_PROTO;
    }
    if (c->last.type == Q_ERROR) {
        if (m.fd >= 0)
            close(m.fd);
        return QC_REFUSED;
    }
    if (fd)
        *fd = m.fd;
    else if (m.fd >= 0)
        close(m.fd);
    return QC_OK;
}

enum qc_status qc_open(struct qc_conn *c, char qid[QID_LEN + 1], int *fd)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;

    qid[0] = 0;
    qc_build_open(&m, id);
    if ((s = qc_send(c, &m)) != QC_OK || (s = await(c, id, Q_OPENED, fd)) != QC_OK)
        return s;
    memcpy(qid, c->last.qid, QID_LEN + 1);
    return QC_OK;
}

enum qc_status qc_data(struct qc_conn *c, const char *qid, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        size_t k = n < PROTO_DATA_MAX ? n : PROTO_DATA_MAX;
        struct ipc_out m;
        enum qc_status st;
        qc_build_data(&m, 0, qid, s, k);
        if ((st = qc_send(c, &m)) != QC_OK)
            return st;
        s += k;
        n -= k;
    }
    return QC_OK;
}

enum qc_status qc_commit(struct qc_conn *c, const struct qrec *envelope)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;

    qc_build_commit(&m, id, envelope);
    if ((s = qc_send(c, &m)) != QC_OK || (s = await(c, id, Q_COMMITTED, NULL)) != QC_OK)
        return s;
    return strcmp(c->last.qid, envelope->qid) == 0 ? QC_OK : QC_PROTO;
}

void qc_abort(struct qc_conn *c, const char *qid)
{
    struct ipc_out m;

    qc_build_abort(&m, qid);
    qc_send(c, &m);
}

enum qc_status qc_flush(struct qc_conn *c, const char *qid, const char *domain, uint64_t *count)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;

    qc_build_flush(&m, id, qid, domain);
    if ((s = qc_send(c, &m)) != QC_OK || (s = await(c, id, Q_FLUSHED, NULL)) != QC_OK)
        return s;
    if (count)
        *count = c->last.count;
    return QC_OK;
}

/* Largest record a listing reassembles from T_RECORD_PART pieces. */
#define QC_RECORD_MAX ((size_t)256 << 20)

/* One Q_LIST_ITEM frame: {ACTIVE?, RECORD_PART*, RECORD}..., the ACTIVE
 * mark before the record it is about. 1 go on, 0 the visitor stopped,
 * -1 malformed. */
static int list_frame(struct qc_conn *c, const struct ipc_msg *m, struct buf *part,
                      int (*visit)(const void *rec, size_t len, void *arg), void *arg)
{
    struct ipc_iter it;
    struct ipc_field f;
    int rc, active = 0;
    uint64_t v;

    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_ACTIVE:
            if (ipc_field_u64(&f, &v) < 0 || v > 1)
                return -1;
            active = (int)v;
            break;
        case T_RECORD_PART:
            if (buf_append(part, f.val, f.len) < 0)
                return -1;
            break;
        case T_RECORD: {
            const void *rec = f.val;
            size_t len = f.len;
            if (part->len) {
                if (buf_append(part, f.val, f.len) < 0)
                    return -1;
                rec = buf_head(part);
                len = part->len;
            }
            c->last.active = active;
            c->last.record = rec;
            c->last.record_len = len;
            active = 0;
            int stop = visit(rec, len, arg);
            buf_reset(part);
            if (stop)
                return 0;
            break;
        }
        }
    }
    return rc < 0 ? -1 : 1;
}

enum qc_status qc_list(struct qc_conn *c, int (*visit)(const void *rec, size_t len, void *arg),
                       void *arg, uint64_t *count)
{
    struct ipc_out m;
    uint32_t id = c->next_reqid++;
    enum qc_status s;
    struct buf part;

    qc_build_list(&m, id);
    if ((s = qc_send(c, &m)) != QC_OK)
        return s;
    buf_init(&part, QC_RECORD_MAX);
    for (;;) {
        struct ipc_msg f;
        int r = ipc_conn_recv_wait(&c->conn, &f, c->timeout_ms);
        if (r <= 0) {
            s = r == 0 ? QC_TIMEOUT : QC_LOST;
            break;
        }
        if (f.fd >= 0) {
            close(f.fd);
            s = QC_PROTO;
            break;
        }
        if (f.reqid == id && f.type == Q_LIST_ITEM) {
            r = list_frame(c, &f, &part, visit, arg);
            if (r < 0) {
                s = QC_PROTO;
                break;
            }
            if (r == 0) {
                s = QC_OK;
                break;
            }
            continue;
        }
        if (qc_parse_reply(&f, id, Q_LIST_ITEM, &c->last) < 0 || part.len) {
            s = QC_PROTO;
            break;
        }
        if (c->last.type == Q_ERROR) {
            s = QC_REFUSED;
            break;
        }
        if (count)
            *count = c->last.count;
        s = QC_OK;
        break;
    }
    buf_free(&part);
    return s;
}
