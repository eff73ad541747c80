/*
 * qlink.c - smtpd's queue client (qlink.h), a thin queue-specific layer on
 * common/link.c, with common/qclient's frames. Must never write a spool file or decide a reply: that is
 * the transaction's job; this file only frames the hand-off.
 */
#include "qlink.h"

#include <stddef.h>

#include "link.h"
#include "proto.h"
#include "qclient.h"

static struct link *qlink;

/* A spool file made for a session that has gone: give it back. */
static void orphan(struct link *l, const struct ipc_msg *m)
{
    struct qc_reply r;

    if (qc_parse_reply(m, m->reqid, Q_OPENED, &r) == 0 && r.type == Q_OPENED) {
        struct ipc_out out;
        qc_build_abort(&out, r.qid);
        link_notify(l, &out);
        ipc_out_free(&out);
    }
}

void qlink_init(struct evloop *ev, const char *path)
{
    qlink = link_new(ev, "queue-mgr", path, proto_limit);
    if (qlink)
        link_set_orphan(qlink, orphan);
}

void qlink_free(void)
{
    link_free(qlink);
    qlink = NULL;
}

int qlink_up(void)
{
    return qlink && link_up(qlink);
}

unsigned qlink_generation(void)
{
    return qlink ? link_generation(qlink) : 0;
}

static uint32_t request(struct ipc_out *m, uint32_t id, uint64_t wait_ms, qlink_cb cb, void *arg)
{
    int r = link_request(qlink, m, -1, id, wait_ms, cb, arg);

    ipc_out_free(m);
    return r < 0 ? 0 : id;
}

uint32_t qlink_open(qlink_cb cb, void *arg)
{
    struct ipc_out m;
    uint32_t id;

    if (!qlink)
        return 0;
    id = link_new_id(qlink);
    qc_build_open(&m, id);
    return request(&m, id, QLINK_WAIT_MS, cb, arg);
}

uint32_t qlink_commit(const struct qrec *env, qlink_cb cb, void *arg)
{
    struct ipc_out m;
    uint32_t id;

    if (!qlink_up())
        return 0;
    id = link_new_id(qlink);
    qc_build_commit(&m, id, env);
    return request(&m, id, 0, cb, arg);
}

void qlink_abort(const char *qid, unsigned gen)
{
    struct ipc_out m;

    if (!qlink_up() || gen != link_generation(qlink))
        return;
    qc_build_abort(&m, qid);
    link_notify(qlink, &m);
    ipc_out_free(&m);
}

void qlink_cancel(uint32_t reqid)
{
    if (qlink)
        link_cancel(qlink, reqid);
}
