/*
 * handoff.c - Q_OPEN, Q_DATA, Q_COMMIT and Q_ABORT (handoff.h).
 *
 * The durable path: Q_OPEN names a new spool file; the message goes into
 * it (written by smtpd through the passed descriptor, or by us from a
 * pickup client's Q_DATA); Q_COMMIT hands the validated envelope to the
 * batcher, which puts the records of a whole batch into LMDB in one
 * transaction, then makes the batch's spool files and the index's meta
 * page durable with one syncfs, and only then are the clients told
 * Q_COMMITTED (and only then does smtpd say 250).
 *
 * Every frame is validated as if it came from the network. What a client
 * cannot vouch for (size, arrival, origin, uid, delivery state, the hold
 * flags) queue-mgr sets itself. Never gives a pickup client a descriptor.
 */
#include "handoff.h"

#include "received.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aliases.h"
#include "batcher.h"
#include "log.h"
#include "proto.h"
#include "qrecord.h"
#include "scheduler.h"
#include "spool.h"
#include "util.h"

#define MAX_OPEN_PER_CLIENT 8192
/* A pickup transaction keeps our write descriptor open: few at a time. */
#define MAX_OPEN_PICKUP 16

struct openfile {
    char qid[QID_LEN + 1];
    int committing;                 /* Q_COMMIT received: no abort now */
    int fd;                         /* pickup: our descriptor; else -1 */
    uint64_t received;              /* pickup: content bytes streamed */
    uint64_t epoch;                 /* batcher_epoch() at open */
    const char *fail_code, *fail_text; /* refused while streaming */
    struct openfile *next;
};

static const struct config *cfg;

static struct openfile **find_open(struct client *c, const char *qid)
{
    struct openfile **pp;

    for (pp = &c->open; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->qid, qid) == 0)
            return pp;
    return NULL;
}

static void close_file(struct openfile *o)
{
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
}

static void forget_open(struct client *c, const char *qid, int remove_file)
{
    struct openfile **pp = find_open(c, qid), *o;

    if (!pp)
        return;
    o = *pp;
    *pp = o->next;
    c->nopen--;
    close_file(o);
    if (remove_file)
        spool_remove(o->qid);
    free(o);
}

void handoff_forget_all(struct client *c)
{
    struct openfile *o, *n;

    for (o = c->open; o; o = n) {
        n = o->next;
        close_file(o);
        /* A commit in a batch is the batcher's now: its file stays until
         * the outcome is known (a refusal removes it then). */
        if (!o->committing)
            spool_remove(o->qid);
        free(o);
    }
    c->open = NULL;
    c->nopen = 0;
}

/* The trace line of a local submission is ours, not the client's. */
static int write_received(struct client *c, int fd, const char *qid)
{
    char hdr[512];
    int n = received_local(hdr, sizeof(hdr), cfg->hostname, (unsigned long)c->uid, qid, time(NULL));

    if (n < 0)
        return -1;
    return write_all(fd, hdr, (size_t)n);
}

/* A spool file that cannot be made or written: out of space is 452 4.3.1
 * (as for a full index), anything else 451. */
static void refuse_write(struct client *c, uint32_t reqid, int e)
{
    if (e == ENOSPC || e == EDQUOT)
        client_error(c, reqid, "452 4.3.1", "Insufficient system storage");
    else
        client_error(c, reqid, "451 4.3.0", "queue file write error");
}

static void handle_open(struct client *c, const struct ipc_msg *m)
{
    struct openfile *o;
    struct ipc_out out;
    const char *code, *text;
    int fd;

    if (batcher_refusal(&code, &text) < 0) {
        client_error(c, m->reqid, code, text);
        return;
    }
    if (c->nopen >= (c->kind == QL_PICKUP ? MAX_OPEN_PICKUP : MAX_OPEN_PER_CLIENT)) {
        client_error(c, m->reqid, "451 4.3.1", "too many open transactions");
        return;
    }
    o = calloc(1, sizeof(*o));
    if (!o) {
        client_error(c, m->reqid, "451 4.3.0", "out of memory");
        return;
    }
    o->fd = -1;
    fd = spool_create(o->qid);
    if (fd < 0) {
        int e = errno;
        log_error("cannot create spool file: %s", strerror(e));
        free(o);
        refuse_write(c, m->reqid, e);
        return;
    }
    if (c->kind == QL_PICKUP && write_received(c, fd, o->qid) < 0) {
        int e = errno;
        log_error("%s: cannot write spool file: %s", o->qid, strerror(e));
        close(fd);
        spool_remove(o->qid);
        free(o);
        refuse_write(c, m->reqid, e);
        return;
    }
    o->epoch = batcher_epoch();
    o->next = c->open;
    c->open = o;
    c->nopen++;
    ipc_out_begin(&out, Q_OPENED, m->reqid);
    ipc_out_str(&out, T_QID, o->qid);
    if (c->kind == QL_PICKUP) {
        o->fd = fd;             /* ours alone: the client streams Q_DATA */
        fd = -1;
    }
    if (client_send(c, &out, fd) < 0) {
        forget_open(c, o->qid, 1);
        client_close(c, "cannot queue reply");
    }
    if (fd >= 0)
        close(fd);
}

/* Q_DATA (pickup only): appends content to the spool file. A refusal is
 * remembered and becomes the answer to Q_COMMIT; the file goes at once. */
static void handle_data(struct client *c, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "";
    const unsigned char *data = NULL;
    size_t len = 0;
    int r, ndata = 0;

    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        if (f.tag == T_QID && ipc_field_str(&f, qid, sizeof(qid)) < 0)
            qid[0] = 0;
        if (f.tag == T_DATA) {
            data = f.val;
            len = f.len;
            ndata++;
        }
    }
    struct openfile **pp = r == 0 && ndata == 1 && qid_valid(qid) ? find_open(c, qid) : NULL;
    if (!pp || (*pp)->committing || len > PROTO_DATA_MAX) {
        client_close(c, "bad Q_DATA");
        return;
    }
    struct openfile *o = *pp;
    if (o->fail_code)
        return;                 /* already refused: the rest is dropped */
    if (o->received + len > cfg->max_message_size) {
        log_warning("%s: refused: message too large (more than %llu bytes from uid %lu)", o->qid,
                    (unsigned long long)cfg->max_message_size, (unsigned long)c->uid);
        o->fail_code = "552 5.3.4";
        o->fail_text = "Message size exceeds fixed limit";
    } else if (write_all(o->fd, data, len) < 0) {
        int e = errno;
        log_error("%s: cannot write spool file: %s", o->qid, strerror(e));
        o->fail_code = e == ENOSPC || e == EDQUOT ? "452 4.3.1" : "451 4.3.0";
        o->fail_text = e == ENOSPC || e == EDQUOT ? "Insufficient system storage" : "queue file write error";
    } else {
        o->received += len;
        return;
    }
    close_file(o);
    spool_remove(o->qid);
}

static void handle_abort(struct client *c, const struct ipc_msg *m)
{
    struct ipc_iter it;
    struct ipc_field f;
    char qid[QID_LEN + 1] = "";

    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1)
        if (f.tag == T_QID && ipc_field_str(&f, qid, sizeof(qid)) < 0)
            qid[0] = 0;
    struct openfile **o = qid_valid(qid) ? find_open(c, qid) : NULL;
    if (!o || (*o)->committing) {
        client_close(c, "Q_ABORT for a queue file it does not own");
        return;
    }
    log_debug("%s: transaction aborted by %s", qid, client_kind_name(c->kind));
    forget_open(c, qid, 1);
}

/* What the client cannot vouch for, queue-mgr sets itself. */
static void set_trusted_fields(struct client *c, struct qrec *r, uint64_t size)
{
    r->version = QREC_VERSION;
    r->size = size;
    r->arrival = (uint64_t)time(NULL);
    str_copy(r->origin, client_kind_name(c->kind), sizeof(r->origin));
    r->uid = c->kind == QL_PICKUP ? (int64_t)c->uid : -1;
    /* only queue-mgr's own notices are notices (bounce.c) */
    r->notice_kind = NOTICE_NONE;
    for (size_t i = 0; i < r->nrcpt; i++) {
        r->rcpt[i].notice = 0;
        qrcpt_set(&r->rcpt[i].relay, NULL, 0);
    }
    if (c->kind == QL_PICKUP) {
        /* A local user speaks for nobody but its uid: no client, no login. */
        r->auth[0] = r->helo[0] = r->client_addr[0] = r->client_name[0] = 0;
        str_copy(r->proto, "local", sizeof(r->proto));
    }
    r->flags &= (unsigned)QF_SMTPUTF8;  /* hold and damage are ours to set */
    for (size_t i = 0; i < r->nrcpt; i++) {
        struct qrcpt *rc = &r->rcpt[i];
        rc->status = RCPT_PENDING;
        rc->attempts = 0;
        rc->next_try = r->arrival;
        rc->dsn[0] = 0;
        qrcpt_set(&rc->reply, NULL, 0);
        qrcpt_set(&rc->alias, NULL, 0);     /* only our expansion sets it */
    }
}

/* Q_COMMIT: validate the envelope and join the next group commit. */
static void handle_commit(struct client *c, const struct ipc_msg *m)
{
    struct qrec rec;
    char err[256];
    const char *code, *text;
    int64_t size;

    qrec_init(&rec);
    if (qrec_decode(m->body, m->len, &rec, err, sizeof(err)) < 0 || !qid_valid(rec.qid)) {
        qrec_free(&rec);
        client_close(c, "invalid Q_COMMIT envelope");
        return;
    }
    struct openfile **pp = find_open(c, rec.qid);
    if (!pp || (*pp)->committing) {
        qrec_free(&rec);
        client_close(c, "Q_COMMIT for a queue file it does not own");
        return;
    }
    struct openfile *o = *pp;
    if (o->fail_code) {
        client_error(c, m->reqid, o->fail_code, o->fail_text);
        forget_open(c, rec.qid, 1);
        qrec_free(&rec);
        return;
    }
    close_file(o);
    size = spool_size(rec.qid);
    if (size < 0 || (uint64_t)size > cfg->max_message_size + 4096) {
        const char *why = size < 0 ? "spool file vanished" : "message too large";
        log_warning("%s: refused: %s", rec.qid, why);
        client_error(c, m->reqid, size < 0 ? "451 4.3.0" : "552 5.3.4",
                     size < 0 ? "queue file write error" : "Message size exceeds fixed limit");
        forget_open(c, rec.qid, 1);
        qrec_free(&rec);
        return;
    }
    set_trusted_fields(c, &rec, (uint64_t)size);
    if (aliases_expand(cfg, &rec, err, sizeof(err)) < 0) {
        log_warning("%s: refused: %s", rec.qid, err);
        client_error(c, m->reqid, "451 4.3.0", err);
        forget_open(c, rec.qid, 1);
        qrec_free(&rec);
        return;
    }
    if (batcher_add(c, m->reqid, &rec, o->epoch, &code, &text) < 0) {
        log_warning("%s: refused: %s %s", rec.qid, code, text);
        client_error(c, m->reqid, code, text);
        forget_open(c, rec.qid, 1);
        qrec_free(&rec);
        return;
    }
    o->committing = 1;
    c->pending++;
}

/* A batch is done with one of our commits. */
static void on_result(void *owner, uint32_t reqid, const struct qrec *rec, const char *code,
                      const char *text)
{
    struct client *c = owner;
    struct ipc_out out;

    if (!code) {
        if (rec->uid >= 0)
            log_info("%s: uid=%lld from=<%s>", rec->qid, (long long)rec->uid, rec->sender);
        log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", rec->qid, rec->sender,
                 (unsigned long long)rec->size, rec->nrcpt);
        forget_open(c, rec->qid, 0);
        ipc_out_begin(&out, Q_COMMITTED, reqid);
        ipc_out_str(&out, T_QID, rec->qid);
        client_send(c, &out, -1);
    } else {
        if (find_open(c, rec->qid))
            forget_open(c, rec->qid, 1);
        else
            spool_remove(rec->qid);     /* its client is gone already */
        client_error(c, reqid, code, text);
    }
    client_release(c);
}

void handoff_frame(struct client *c, const struct ipc_msg *m)
{
    switch (m->type) {
    case Q_OPEN: handle_open(c, m); return;
    case Q_COMMIT: handle_commit(c, m); return;
    case Q_ABORT: handle_abort(c, m); return;
    case Q_DATA:
        if (c->kind == QL_PICKUP) {
            handle_data(c, m);
            return;
        }
        break;
    }
    char why[64];
    snprintf(why, sizeof(why), "unexpected message type %u", m->type);
    client_close(c, why);
}

/* After a batch: the replies go out, and the scheduler looks soon (one
 * pass for every batch of the next few milliseconds, not one a message). */
static void batch_done(void)
{
    clients_flush();
    scheduler_kick();
}

int handoff_start(struct evloop *ev, const struct config *conf, struct qstore *q,
                  const struct commit_ops *ops)
{
    static const struct batcher_hooks hooks = { on_result, batch_done };

    cfg = conf;
    return batcher_start(ev, q, ops, BATCH_PROBE_MS, &hooks);
}

void handoff_set_config(const struct config *conf)
{
    cfg = conf;
}

void handoff_stop(void)
{
    batcher_stop();
    aliases_close();
}
