/*
 * listing.c - the queue listing (listing.h). Reads the index only, never
 * the spool directory; holds no read transaction between slices (each
 * qstore_scan is a short one), so a slow mailq cannot pin LMDB pages.
 */
#include "listing.h"

#include <string.h>

#include "ipc.h"
#include "proto.h"
#include "scheduler.h"

#define LIST_OUT_HIGH (256u << 10)

static struct qstore *store;

void listing_init(struct qstore *q)
{
    store = q;
}

static int list_visit(const char *qid, const void *val, size_t len, void *arg)
{
    struct client *c = arg;
    struct ipc_out m;

    ipc_out_begin(&m, Q_LIST_ITEM, c->list_reqid);
    ipc_out_bytes(&m, T_RECORD, val, len);
    if (scheduler_msg_active(qid))
        ipc_out_u64(&m, T_ACTIVE, 1);
    client_send(c, &m, -1);
    memcpy(c->list_after, qid, QID_LEN + 1);
    c->list_count++;
    return c->conn.out.len >= LIST_OUT_HIGH;
}

void listing_start(struct client *c, uint32_t reqid)
{
    c->listing = 1;
    c->list_reqid = reqid;
    c->list_after[0] = 0;
    c->list_count = 0;
    listing_pump(c);
}

void listing_pump(struct client *c)
{
    while (c->listing && !c->dead && c->conn.out.len < LIST_OUT_HIGH) {
        long n = qstore_scan(store, c->list_after[0] ? c->list_after : NULL, list_visit, c);
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
