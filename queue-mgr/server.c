/*
 * server.c - queue-mgr's side of the hand-off protocol (proto.h).
 *
 * Durable path: a client asks for a spool file (Q_OPEN), writes the message
 * into the descriptor we pass it, and sends the envelope (Q_COMMIT). Commits
 * that arrive in one event-loop round are made durable together: one
 * spool_sync() for all their files, then one LMDB transaction for all their
 * records. Only then does each client get Q_COMMITTED, and only then does
 * smtpd say 250. Every frame is validated as if it came from the network;
 * a peer that breaks the protocol is disconnected and its open files removed.
 */
#include "server.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "qrecord.h"
#include "committer.h"
#include "spool.h"
#include "util.h"

#define MAX_OPEN_PER_CLIENT 8192
#define LIST_OUT_HIGH (256u << 10)
#define LIST_CHUNK 256

struct openfile {
    char qid[QID_LEN + 1];
    int committing;                 /* Q_COMMIT received: no abort now */
    struct openfile *next;
};

struct client {
    enum listener_kind kind;
    struct ipc_conn conn;
    uint32_t events;                /* what epoll watches now */
    uid_t uid;
    pid_t pid;
    struct openfile *open;
    size_t nopen;
    int listing;                    /* a Q_LIST is being answered */
    uint32_t list_reqid;
    char list_after[QID_LEN + 1];
    unsigned long list_count;
    int pending;                    /* commits of ours in the batch */
    int dead;                       /* close once no commit refers to us */
    struct client *prev, *next;
};

struct pending {
    struct client *c;
    uint32_t reqid;
    struct qrec rec;
    struct pending *next;
};

/* A batch of commits: collected by the loop, made durable by the committer. */
struct batch {
    struct pending *head, **tail;
    size_t n;
    struct qstore_item *items;
    struct ipc_out *bodies;
    struct commit_job job;
};

static struct batch collecting = { .tail = &collecting.head };

static struct evloop *ev;
static const struct config *cfg;
static struct qstore *store;
static uid_t smtpd_uid;
static int lfd[3] = { -1, -1, -1 };
static struct client *clients;

static const char *kind_name(enum listener_kind k)
{
    return k == LK_SMTPD ? "smtpd" : k == LK_PICKUP ? "pickup" : "control";
}

static void client_update_events(struct client *c)
{
    uint32_t events = EPOLLIN | (ipc_conn_want_write(&c->conn) ? EPOLLOUT : 0);

    if (events != c->events && ev_mod(ev, c->conn.fd, events) == 0)
        c->events = events;
}

static void client_free(struct client *c)
{
    struct openfile *o, *n;

    /* Whatever it opened and never committed is not mail anyone accepted. */
    for (o = c->open; o; o = n) {
        n = o->next;
        spool_remove(o->qid);
        free(o);
    }
    if (c->conn.fd >= 0)
        ev_del(ev, c->conn.fd);
    ipc_conn_close(&c->conn);
    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void client_close(struct client *c, const char *why)
{
    if (why)
        log_warning("%s client pid %ld: %s; disconnecting", kind_name(c->kind), (long)c->pid, why);
    c->dead = 1;
    if (c->conn.fd >= 0) {
        ev_del(ev, c->conn.fd);
        close(c->conn.fd);
        c->conn.fd = -1;
    }
    if (!c->pending)
        client_free(c);
}

static int client_send(struct client *c, struct ipc_out *m, int fd)
{
    int r = -1;

    if (!c->dead && ipc_out_finish(m) == 0)
        r = ipc_conn_send(&c->conn, m, fd);
    ipc_out_free(m);
    return r;
}

static void send_error(struct client *c, uint32_t reqid, const char *code, const char *text)
{
    struct ipc_out m;

    ipc_out_begin(&m, Q_ERROR, reqid);
    ipc_out_str(&m, T_CODE, code);
    ipc_out_str(&m, T_TEXT, text);
    client_send(c, &m, -1);
}

static struct openfile **find_open(struct client *c, const char *qid)
{
    struct openfile **pp;

    for (pp = &c->open; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->qid, qid) == 0)
            return pp;
    return NULL;
}

static void forget_open(struct client *c, const char *qid, int remove_file)
{
    struct openfile **pp = find_open(c, qid), *o;

    if (!pp)
        return;
    o = *pp;
    *pp = o->next;
    c->nopen--;
    if (remove_file)
        spool_remove(o->qid);
    free(o);
}

/* Q_OPEN: a new spool file, passed to the client. */
static void handle_open(struct client *c, const struct ipc_msg *m)
{
    struct openfile *o;
    struct ipc_out out;
    int fd;

    if (c->nopen >= MAX_OPEN_PER_CLIENT) {
        send_error(c, m->reqid, "451 4.3.1", "too many open transactions");
        return;
    }
    o = calloc(1, sizeof(*o));
    if (!o) {
        send_error(c, m->reqid, "451 4.3.0", "out of memory");
        return;
    }
    fd = spool_create(o->qid);
    if (fd < 0) {
        log_error("cannot create spool file: %s", strerror(errno));
        free(o);
        send_error(c, m->reqid, "451 4.3.0", "queue file write error");
        return;
    }
    if (c->kind == LK_PICKUP) {
        /* The trace line of a local submission is ours, not the client's. */
        char date[64], hdr[512];
        format_rfc5322_date(time(NULL), date, sizeof(date));
        int n = snprintf(hdr, sizeof(hdr), "Received: by %s (Postern, from userid %lu)\r\n\tid %s; %s\r\n",
                         cfg->hostname, (unsigned long)c->uid, o->qid, date);
        if (write_all(fd, hdr, (size_t)n) < 0) {
            close(fd);
            spool_remove(o->qid);
            free(o);
            send_error(c, m->reqid, "451 4.3.0", "queue file write error");
            return;
        }
    }
    o->next = c->open;
    c->open = o;
    c->nopen++;
    ipc_out_begin(&out, Q_OPENED, m->reqid);
    ipc_out_str(&out, T_QID, o->qid);
    if (client_send(c, &out, fd) < 0) {
        forget_open(c, o->qid, 1);
        client_close(c, "cannot queue reply");
    }
    close(fd);
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
    log_debug("%s: transaction aborted by %s", qid, kind_name(c->kind));
    forget_open(c, qid, 1);
}

/* Q_COMMIT: validate the envelope and join the next group commit. */
static void handle_commit(struct client *c, const struct ipc_msg *m)
{
    struct pending *p;
    char err[256];
    int64_t size;

    p = calloc(1, sizeof(*p));
    if (!p) {
        send_error(c, m->reqid, "451 4.3.0", "out of memory");
        return;
    }
    qrec_init(&p->rec);
    if (qrec_decode(m->body, m->len, &p->rec, err, sizeof(err)) < 0 || !qid_valid(p->rec.qid)) {
        qrec_free(&p->rec);
        free(p);
        client_close(c, "invalid Q_COMMIT envelope");
        return;
    }
    struct openfile **o = find_open(c, p->rec.qid);
    if (!o || (*o)->committing) {
        qrec_free(&p->rec);
        free(p);
        client_close(c, "Q_COMMIT for a queue file it does not own");
        return;
    }
    size = spool_size(p->rec.qid);
    if (size < 0 || (uint64_t)size > cfg->max_message_size + 4096) {
        const char *why = size < 0 ? "spool file vanished" : "message too large";
        log_warning("%s: refused: %s", p->rec.qid, why);
        send_error(c, m->reqid, size < 0 ? "451 4.3.0" : "552 5.3.4",
                   size < 0 ? "queue file write error" : "Message size exceeds fixed limit");
        forget_open(c, p->rec.qid, 1);
        qrec_free(&p->rec);
        free(p);
        return;
    }
    /* What the client cannot vouch for, queue-mgr sets itself. */
    p->rec.version = QREC_VERSION;
    p->rec.size = (uint64_t)size;
    p->rec.arrival = (uint64_t)time(NULL);
    str_copy(p->rec.origin, kind_name(c->kind), sizeof(p->rec.origin));
    p->rec.uid = c->kind == LK_PICKUP ? (int64_t)c->uid : -1;
    if (c->kind == LK_PICKUP) {
        /* A local user speaks for nobody but its uid: no client, no login. */
        p->rec.auth[0] = p->rec.helo[0] = p->rec.client_addr[0] = p->rec.client_name[0] = 0;
        str_copy(p->rec.proto, "local", sizeof(p->rec.proto));
    }
    p->rec.flags &= ~(unsigned)QF_HOLD;
    for (size_t i = 0; i < p->rec.nrcpt; i++) {
        struct qrcpt *r = &p->rec.rcpt[i];
        r->status = RCPT_PENDING;
        r->attempts = 0;
        r->next_try = p->rec.arrival;
        r->dsn[0] = 0;
        qrcpt_set(&r->reply, NULL, 0);
    }
    (*o)->committing = 1;
    p->c = c;
    p->reqid = m->reqid;
    c->pending++;
    *collecting.tail = p;
    collecting.tail = &p->next;
    collecting.n++;
}

static void flush_replies(void)
{
    for (struct client *c = clients, *cn; c; c = cn) {
        cn = c->next;
        if (c->dead || !ipc_conn_want_write(&c->conn))
            continue;
        if (ipc_conn_flush(&c->conn) < 0)
            client_close(c, NULL);
        else
            client_update_events(c);
    }
}

/* Tells every client of a finished batch how it went, and frees it. */
static void batch_finish(struct batch *b, int ok, const char *err)
{
    struct pending *p, *next;
    size_t i;

    if (!ok)
        log_error("group commit of %zu message(s) failed: %s", b->n, err);
    for (p = b->head, i = 0; p; p = next, i++) {
        struct client *c = p->c;
        next = p->next;
        if (ok) {
            if (p->rec.uid >= 0)
                log_info("%s: uid=%lld from=<%s>", p->rec.qid, (long long)p->rec.uid, p->rec.sender);
            log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", p->rec.qid, p->rec.sender,
                     (unsigned long long)p->rec.size, p->rec.nrcpt);
            forget_open(c, p->rec.qid, 0);
            struct ipc_out out;
            ipc_out_begin(&out, Q_COMMITTED, p->reqid);
            ipc_out_str(&out, T_QID, p->rec.qid);
            client_send(c, &out, -1);
        } else {
            forget_open(c, p->rec.qid, 1);
            send_error(c, p->reqid, "451 4.3.0", "queue file write error");
        }
        if (b->bodies)
            ipc_out_free(&b->bodies[i]);
        qrec_free(&p->rec);
        free(p);
        c->pending--;
        if (c->dead && !c->pending)
            client_free(c);
    }
    free(b->items);
    free(b->bodies);
    free(b);
    flush_replies();
}

/* Takes the collected commits as a new batch with its records encoded;
 * NULL (after failing them) when memory runs out. */
static struct batch *batch_take(void)
{
    struct batch *b = malloc(sizeof(*b));
    struct pending *p;
    size_t i;

    if (!b)
        return NULL;
    *b = collecting;
    memset(&collecting, 0, sizeof(collecting));
    collecting.tail = &collecting.head;
    b->items = calloc(b->n, sizeof(*b->items));
    b->bodies = calloc(b->n, sizeof(*b->bodies));
    if (!b->items || !b->bodies)
        goto fail;
    for (p = b->head, i = 0; p; p = p->next, i++) {
        ipc_body_begin(&b->bodies[i]);
        qrec_encode(&p->rec, &b->bodies[i]);
        if (b->bodies[i].failed)
            goto fail;
        b->items[i].qid = p->rec.qid;
        b->items[i].val = buf_head(&b->bodies[i].b);
        b->items[i].len = b->bodies[i].b.len;
    }
    memset(&b->job, 0, sizeof(b->job));
    b->job.items = b->items;
    b->job.n = b->n;
    return b;
fail:
    batch_finish(b, 0, "out of memory");
    return NULL;
}

static void commit_done(struct commit_job *job)
{
    struct batch *b = (struct batch *)((char *)job - offsetof(struct batch, job));

    log_debug("group commit: %zu message(s) in %llu ms", job->n, (unsigned long long)job->elapsed_ms);
    batch_finish(b, job->ok, job->err);
}

/* Runs after every event-loop round: whatever arrived since the last batch
 * left becomes the next batch, as soon as the index stage is free. */
static void commit_batch(struct evloop *loop, void *arg)
{
    struct batch *b;

    (void)loop;
    (void)arg;
    if (!collecting.head || !committer_ready())
        return;
    if ((b = batch_take()))
        committer_submit(&b->job);
}

static int list_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct client *c = arg;
    struct ipc_out m;

    ipc_out_begin(&m, Q_LIST_ITEM, c->list_reqid);
    ipc_out_bytes(&m, T_RECORD, val, len);
    client_send(c, &m, -1);
    memcpy(c->list_after, qid, QID_LEN + 1);
    c->list_count++;
    return c->conn.out.len >= LIST_OUT_HIGH;
}

/* Sends the listing in slices, so a huge queue never fills memory. */
static void list_pump(struct client *c)
{
    while (c->listing && c->conn.out.len < LIST_OUT_HIGH) {
        long n = qstore_scan(store, c->list_after[0] ? c->list_after : NULL, list_visit, c);
        if (n < 0) {
            send_error(c, c->list_reqid, "451 4.3.0", "queue index read error");
            c->listing = 0;
        } else if (c->conn.out.len < LIST_OUT_HIGH) {
            struct ipc_out m;
            ipc_out_begin(&m, Q_LIST_END, c->list_reqid);
            ipc_out_u64(&m, T_COUNT, c->list_count);
            client_send(c, &m, -1);
            c->listing = 0;
        }
    }
}

static void handle_frame(struct client *c, const struct ipc_msg *m)
{
    int allowed;

    switch (m->type) {
    case Q_OPEN:
    case Q_COMMIT:
    case Q_ABORT:
        allowed = c->kind != LK_CONTROL;
        break;
    case Q_LIST:
        allowed = c->kind == LK_CONTROL && !c->listing;
        break;
    default:
        allowed = 0;
    }
    if (!allowed) {
        char why[64];
        snprintf(why, sizeof(why), "unexpected message type %u", m->type);
        client_close(c, why);
        return;
    }
    if (m->fd >= 0) {
        client_close(c, "unexpected descriptor");
        return;
    }
    switch (m->type) {
    case Q_OPEN: handle_open(c, m); break;
    case Q_COMMIT: handle_commit(c, m); break;
    case Q_ABORT: handle_abort(c, m); break;
    case Q_LIST:
        c->listing = 1;
        c->list_reqid = m->reqid;
        c->list_after[0] = 0;
        c->list_count = 0;
        list_pump(c);
        break;
    }
}

static void client_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct client *c = arg;
    struct ipc_msg m;
    int r;

    (void)loop;
    (void)fd;
    if (events & EPOLLIN) {
        r = ipc_conn_read(&c->conn);
        if (r < 0) {
            client_close(c, NULL);
            return;
        }
        while (!c->dead && (r = ipc_conn_next(&c->conn, &m)) == 1) {
            if (m.fd >= 0 && m.type != Q_OPEN) {
                close(m.fd);
                m.fd = -1;
                client_close(c, "unexpected descriptor");
                return;
            }
            handle_frame(c, &m);
        }
        if (c->dead)
            return;
        if (r < 0) {
            client_close(c, "malformed frame");
            return;
        }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        client_close(c, NULL);
        return;
    }
    if (c->listing)
        list_pump(c);
    if (ipc_conn_flush(&c->conn) < 0) {
        client_close(c, NULL);
        return;
    }
    if (c->listing)
        list_pump(c);
    client_update_events(c);
}

static void accept_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    enum listener_kind kind = (enum listener_kind)(long)arg;

    (void)events;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c;
        uid_t uid;
        pid_t pid;
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warning("accept on %s socket: %s", kind_name(kind), strerror(errno));
            return;
        }
        if (net_peer_cred(cfd, &uid, NULL, &pid) < 0) {
            close(cfd);
            continue;
        }
        /* Only smtpd may hand off network mail on the smtpd socket. */
        if (kind == LK_SMTPD && uid != smtpd_uid && uid != 0 && uid != getuid()) {
            log_warning("smtpd socket: refused connection from uid %lu pid %ld",
                        (unsigned long)uid, (long)pid);
            close(cfd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->kind = kind;
        c->uid = uid;
        c->pid = pid;
        ipc_conn_init(&c->conn, cfd, proto_limit);
        c->events = EPOLLIN;
        if (ev_add(loop, cfd, EPOLLIN, client_cb, c) < 0) {
            ipc_conn_close(&c->conn);
            free(c);
            continue;
        }
        c->next = clients;
        if (clients)
            clients->prev = c;
        clients = c;
    }
}

int server_start(struct evloop *loop, const struct config *conf, struct qstore *q,
                 uid_t smtpd_account, char *err, size_t errlen)
{
    static const struct { enum listener_kind kind; const char *path; } socks[] = {
        { LK_SMTPD, SOCK_QUEUE_SMTPD },
        { LK_PICKUP, SOCK_QUEUE_PICKUP },
        { LK_CONTROL, SOCK_QUEUE_CONTROL },
    };
    char path[4096];

    ev = loop;
    cfg = conf;
    store = q;
    smtpd_uid = smtpd_account;
    for (size_t i = 0; i < ARRAY_LEN(socks); i++) {
        snprintf(path, sizeof(path), "%s/%s", conf->run_dir, socks[i].path);
        /* Anyone may connect; SO_PEERCRED decides what each peer may do. */
        lfd[i] = net_listen_unix(path, 0666, err, errlen);
        if (lfd[i] < 0)
            return -1;
        if (ev_add(loop, lfd[i], EPOLLIN, accept_cb, (void *)(long)socks[i].kind) < 0) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
    }
    if (committer_start(loop, q, commit_done) < 0) {
        snprintf(err, errlen, "cannot start the commit thread: %s", strerror(errno));
        return -1;
    }
    ev_set_idle(loop, commit_batch, NULL);
    return 0;
}

void server_set_config(const struct config *conf)
{
    cfg = conf;
}

void server_stop(void)
{
    for (size_t i = 0; i < ARRAY_LEN(lfd); i++) {
        if (lfd[i] >= 0) {
            ev_del(ev, lfd[i]);
            close(lfd[i]);
            lfd[i] = -1;
        }
    }
    /* Finish the batches in flight, then commit what is still collected,
     * here and now: the threads are gone. */
    committer_stop();
    if (collecting.head) {
        struct batch *b = batch_take();
        char err[256] = "syncfs failed";
        if (b) {
            int ok = qstore_put_batch(store, b->items, b->n, err, sizeof(err)) == 0 &&
                     spool_sync() == 0;
            batch_finish(b, ok, err);
        }
    }
    while (clients) {
        struct client *c = clients;
        ipc_conn_flush(&c->conn);
        client_free(c);
    }
}
