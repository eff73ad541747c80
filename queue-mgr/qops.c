/*
 * qops.c - the operator's queue actions (qops.h). Runs in the event loop
 * and must not block it for long: a delete by selector reads SLICE
 * messages a turn and yields; a show sends the spool file as the client
 * reads. Never removes a spool file a deliver may still be reading, never
 * sends anything but the one message asked for, and never trusts the
 * selector text beyond comparing it.
 */
#include "qops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "listing.h"
#include "log.h"
#include "proto.h"
#include "scheduler.h"
#include "spool.h"
#include "util.h"

#define SLICE 512
#define SHOW_OUT_HIGH (256u << 10)
#define SHOW_CHUNK (60u << 10)

static struct evloop *loop;
static struct qstore *store;

/* ---- messages deleted while in flight: their files wait ---- */

struct doomed {
    char qid[QID_LEN + 1];
    struct doomed *next;
};
static struct doomed *doomed;

static void remove_file(const char *qid)
{
    if (scheduler_msg_active(qid)) {
        struct doomed *d = malloc(sizeof(*d));
        if (d) {
            memcpy(d->qid, qid, QID_LEN + 1);
            d->next = doomed;
            doomed = d;
            return;
        }
        /* no memory: the reader has its descriptor, unlinking is safe */
    }
    spool_remove(qid);
}

void qops_job_ended(const char *qid)
{
    for (struct doomed **pp = &doomed; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->qid, qid) == 0) {
            if (scheduler_msg_active(qid))
                return;
            struct doomed *d = *pp;
            *pp = d->next;
            spool_remove(d->qid);
            free(d);
            return;
        }
}

void qops_init(struct evloop *ev, struct qstore *q)
{
    loop = ev;
    store = q;
}

/* ---- one message ---- */

int qops_delete(const char *qid, unsigned long uid)
{
    int rc = qstore_delete(store, qid);

    if (rc != 0)
        return rc;
    log_info("%s: removed (deleted by uid %lu)", qid, uid);
    remove_file(qid);
    return 0;
}

int qops_hold(const char *qid, unsigned long uid)
{
    int rc = qstore_set_flags(store, qid, QF_HOLD, 0);

    if (rc == 0)
        log_info("%s: held (by uid %lu)", qid, uid);
    return rc;
}

int qops_release(const char *qid, unsigned long uid)
{
    int rc = qstore_set_flags(store, qid, 0, QF_HOLD);

    if (rc == 0) {
        log_info("%s: released (by uid %lu)", qid, uid);
        scheduler_rescan();
    }
    return rc;
}

int qops_requeue(const char *qid, unsigned long uid)
{
    struct qrcpt rc;
    long n;

    if (qstore_get_rcpt(store, qid, 0, &rc) != 0)
        return 1;
    qrcpt_free(&rc);
    n = scheduler_flush(qid, NULL);
    if (n < 0)
        return -1;
    log_info("%s: requeued (by uid %lu): %ld recipient(s) due now", qid, uid, n);
    return 0;
}

/* ---- operations in slices ---- */

enum op_kind { OP_DELETE, OP_SHOW };

struct ctl_op {
    enum op_kind kind;
    struct client *c;
    uint32_t reqid;
    unsigned long uid;
    /* delete by selector */
    int all;
    char sender[ADDR_MAX + 1], rcpt[ADDR_MAX + 1];
    char after[QID_LEN + 1];
    uint64_t timer, count;
    char (*hits)[QID_LEN + 1];
    size_t nhits;
    /* show */
    int fd;
    uint64_t sent;
};

static void op_free(struct ctl_op *op)
{
    if (op->timer)
        ev_timer_cancel(loop, op->timer);
    if (op->fd >= 0)
        close(op->fd);
    if (op->c) {
        op->c->op = NULL;
        if (op->kind == OP_SHOW)
            op->c->listing = 0;
    }
    free(op->hits);
    free(op);
}

void qops_gone(struct client *c)
{
    if (c->op)
        op_free(c->op);
}

static void done(struct ctl_op *op, uint64_t count, uint64_t missing)
{
    struct ipc_out m;

    ipc_out_begin(&m, Q_DONE, op->reqid);
    ipc_out_u64(&m, T_COUNT, count);
    ipc_out_u64(&m, T_CTL_MISSING, missing);
    client_send(op->c, &m, -1);
    clients_flush();
}

static int same_sender(const char *want, const char *have)
{
    if (!*want || strcasecmp(want, "MAILER-DAEMON") == 0 || strcmp(want, "<>") == 0)
        return !*have;
    return strcasecmp(want, have) == 0;
}

static int sel_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct ctl_op *op = arg;
    struct qrec r;
    char err[64];
    int hit = op->all;

    memcpy(op->after, qid, QID_LEN + 1);
    if (!hit && qrec_decode(val, len, &r, err, sizeof(err)) == 0) {
        if (op->sender[0] || !op->rcpt[0])
            hit = same_sender(op->sender, r.sender);
        if (op->rcpt[0] && (!op->sender[0] || hit)) {
            hit = 0;
            for (size_t i = 0; i < r.nrcpt && !hit; i++)
                hit = (r.rcpt[i].status == RCPT_PENDING || r.rcpt[i].status == RCPT_DEFERRED) &&
                      strcasecmp(r.rcpt[i].addr, op->rcpt) == 0;
        }
        qrec_free(&r);
    }
    if (hit)
        memcpy(op->hits[op->nhits++], qid, QID_LEN + 1);
    return op->nhits == SLICE;
}

static void sel_step(struct evloop *ev, void *arg)
{
    struct ctl_op *op = arg;
    unsigned char gone[SLICE];
    long n;

    (void)ev;
    op->timer = 0;
    op->nhits = 0;
    n = qstore_scan(store, op->after[0] ? op->after : NULL, sel_visit, op);
    if (n < 0 || qstore_delete_many(store, op->hits, op->nhits, gone) < 0) {
        client_error(op->c, op->reqid, "451 4.3.0", "queue index error");
        op_free(op);
        return;
    }
    for (size_t i = 0; i < op->nhits; i++)
        if (gone[i]) {
            log_info("%s: removed (deleted by uid %lu)", op->hits[i], op->uid);
            remove_file(op->hits[i]);
            op->count++;
        }
    if (op->nhits == SLICE) {
        /* more to look at: the next slice after other work */
        op->timer = ev_timer(loop, 0, sel_step, op);
        if (op->timer)
            return;
    }
    done(op, op->count, 0);
    op_free(op);
}

void qops_delete_start(struct client *c, uint32_t reqid, int all, const char *sender, const char *rcpt)
{
    struct ctl_op *op = calloc(1, sizeof(*op));

    if (op)
        op->hits = calloc(SLICE, sizeof(*op->hits));
    if (!op || !op->hits) {
        free(op);
        client_error(c, reqid, "451 4.3.0", "out of memory");
        return;
    }
    op->kind = OP_DELETE;
    op->c = c;
    op->reqid = reqid;
    op->uid = (unsigned long)c->uid;
    op->all = all;
    op->fd = -1;
    str_copy(op->sender, sender ? sender : "", sizeof(op->sender));
    str_copy(op->rcpt, rcpt ? rcpt : "", sizeof(op->rcpt));
    c->op = op;
    sel_step(loop, op);
}

/* ---- show ---- */

void qops_show_start(struct client *c, uint32_t reqid, const char *qid)
{
    struct ctl_op *op;
    struct ipc_out body;
    struct qrec r;
    char err[128];

    if (qstore_get(store, qid, &r, err, sizeof(err)) != 0) {
        client_error(c, reqid, "550 5.1.0", "no such message in the queue");
        return;
    }
    ipc_body_begin(&body);
    qrec_encode(&r, &body);
    qrec_free(&r);
    op = calloc(1, sizeof(*op));
    if (!op || body.failed) {
        free(op);
        ipc_out_free(&body);
        client_error(c, reqid, "451 4.3.0", op ? "record too large to show" : "out of memory");
        return;
    }
    op->kind = OP_SHOW;
    op->c = c;
    op->reqid = reqid;
    op->fd = openat(spool_dir_fd(), qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (op->fd < 0)
        log_warning("%s: show: cannot open the queue file: %s", qid, strerror(errno));
    listing_add(c, reqid, buf_head(&body.b), body.b.len, scheduler_msg_active(qid));
    listing_flush();
    ipc_out_free(&body);
    c->op = op;
    c->listing = 1; /* pumped as the output drains, as a listing is */
    log_info("%s: shown to uid %lu", qid, (unsigned long)c->uid);
    qops_pump(c);
}

void qops_pump(struct client *c)
{
    struct ctl_op *op = c->op;
    static char chunk[SHOW_CHUNK];

    if (!op || op->kind != OP_SHOW)
        return;
    while (!c->dead && c->conn.out.len < SHOW_OUT_HIGH) {
        ssize_t n = op->fd >= 0 ? read(op->fd, chunk, sizeof(chunk)) : 0;
        struct ipc_out m;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ipc_out_begin(&m, Q_LIST_END, op->reqid);
            ipc_out_u64(&m, T_COUNT, op->sent);
            client_send(c, &m, -1);
            op_free(op);
            return;
        }
        ipc_out_begin(&m, Q_DATA, op->reqid);
        ipc_out_bytes(&m, T_DATA, chunk, (size_t)n);
        client_send(c, &m, -1);
        op->sent += (uint64_t)n;
    }
}
