/*
 * listing.c - the queue listing (listing.h). Reads the index only, never
 * the spool directory; holds no read transaction between slices (each
 * qstore_scan is a short one), so a slow mailq cannot pin LMDB pages.
 *
 * Records travel many to a Q_LIST_ITEM frame (about FRAME_TARGET bytes),
 * so that a million messages are a few thousand frames, not a million;
 * a record larger than PIECE_MAX (10,000 recipients with long replies)
 * goes as T_RECORD_PART pieces, one frame each, ended by its T_RECORD.
 * The in-flight set ('*') is taken once a slice into a small hash, never
 * looked up job by job for each message. Never sends another user's mail
 * to a client limited to its own (list_uid).
 */
#include "listing.h"

#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "proto.h"
#include "scheduler.h"

#define LIST_OUT_HIGH (256u << 10)
#define FRAME_TARGET (64u << 10)
#define PIECE_MAX (1u << 20)

static struct qstore *store;

/* ---- the frame being filled ---- */

static struct ipc_out cur;
static struct client *cur_c;
static uint32_t cur_reqid;

void listing_flush(void)
{
    if (cur_c) {
        if (!cur_c->dead)
            client_send(cur_c, &cur, -1);
        else
            ipc_out_free(&cur);
        cur_c = NULL;
    }
}

static void frame_open(struct client *c, uint32_t reqid)
{
    if (cur_c && (cur_c != c || cur_reqid != reqid))
        listing_flush();
    if (!cur_c) {
        ipc_out_begin(&cur, Q_LIST_ITEM, reqid);
        cur_c = c;
        cur_reqid = reqid;
    }
}

void listing_add(struct client *c, uint32_t reqid, const void *val, size_t len, int active)
{
    const unsigned char *p = val;

    if (c->dead)
        return;
    if (len > PIECE_MAX) {
        listing_flush();
        while (len > PIECE_MAX) {
            frame_open(c, reqid);
            ipc_out_bytes(&cur, T_RECORD_PART, p, PIECE_MAX);
            listing_flush();
            p += PIECE_MAX;
            len -= PIECE_MAX;
        }
    }
    frame_open(c, reqid);
    if (active)
        ipc_out_u64(&cur, T_ACTIVE, 1);
    ipc_out_bytes(&cur, T_RECORD, p, len);
    if (cur.b.len >= FRAME_TARGET)
        listing_flush();
}

/* ---- the in-flight set of one slice ---- */

static char (*act)[QID_LEN + 1];
static size_t act_size, act_n;

static size_t act_hash(const char *qid)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < QID_LEN && qid[i]; i++)
        h = (h ^ (unsigned char)qid[i]) * 16777619u;
    return h & (act_size - 1);
}

static void act_add(const char *qid, void *arg)
{
    (void)arg;
    if (!act || act_n * 2 >= act_size)
        return;
    size_t i = act_hash(qid);
    while (act[i][0] && strcmp(act[i], qid) != 0)
        i = (i + 1) & (act_size - 1);
    if (!act[i][0]) {
        memcpy(act[i], qid, QID_LEN + 1);
        act_n++;
    }
}

void listing_active_build(void)
{
    size_t jobs = scheduler_njobs(), want = 64;

    while (want < jobs * 4 + 64)
        want *= 2;
    if (want != act_size) {
        free(act);
        act = calloc(want, sizeof(*act));
        act_size = act ? want : 0;
    } else if (act) {
        memset(act, 0, act_size * sizeof(*act));
    }
    act_n = 0;
    if (act)
        scheduler_each_job_qid(act_add, NULL);
}

int listing_active(const char *qid)
{
    if (!act)
        return scheduler_msg_active(qid);
    if (!act_n)
        return 0;
    for (size_t i = act_hash(qid); act[i][0]; i = (i + 1) & (act_size - 1))
        if (strcmp(act[i], qid) == 0)
            return 1;
    return 0;
}

/* ---- the listing ---- */

void listing_init(struct qstore *q)
{
    store = q;
}

static int list_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct client *c = arg;

    memcpy(c->list_after, qid, QID_LEN + 1);
    if (c->list_uid >= 0) {
        uint64_t uid;
        if (qrec_peek_u64(val, len, T_UID, &uid) != 0 || uid != (uint64_t)c->list_uid)
            return 0;
    }
    listing_add(c, c->list_reqid, val, len, listing_active(qid));
    c->list_count++;
    return c->conn.out.len + (cur_c ? cur.b.len : 0) >= LIST_OUT_HIGH;
}

void listing_start(struct client *c, uint32_t reqid, int64_t only_uid)
{
    c->listing = 1;
    c->list_reqid = reqid;
    c->list_after[0] = 0;
    c->list_count = 0;
    c->list_uid = only_uid;
    listing_pump(c);
}

void listing_pump(struct client *c)
{
    while (c->listing && !c->dead && c->conn.out.len < LIST_OUT_HIGH) {
        listing_active_build();
        long n = qstore_scan(store, c->list_after[0] ? c->list_after : NULL, list_visit, c);
        listing_flush();
        if (n < 0) {
            client_error(c, c->list_reqid, "451 4.3.0", "queue index read error");
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
