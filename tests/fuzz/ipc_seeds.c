/*
 * ipc_seeds.c - writes the seed corpus of fuzz_ipc (binary frames and record
 * bodies) with the real encoders, so the seeds follow the format. Not built
 * by `make fuzz`; the seeds are committed. To regenerate, from the top:
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -Icommon -o /tmp/ipc_seeds tests/fuzz/ipc_seeds.c \
 *      common/ipc.c common/proto.c common/qrecord.c common/addr.c common/buf.c \
 *      common/queueid.c common/util.c common/log.c
 *   /tmp/ipc_seeds tests/fuzz/corpus/fuzz_ipc
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "proto.h"
#include "qrecord.h"

static const char *dir;

static void put(const char *name, const void *p, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_out(const char *name, struct ipc_out *m)
{
    if (ipc_out_finish(m) < 0) {
        fprintf(stderr, "%s: encoding failed\n", name);
        exit(1);
    }
    put(name, buf_head(&m->b), m->b.len);
}

static void full_rec(struct qrec *r)
{
    qrec_init(r);
    strcpy(r->qid, "0ABCDEFGHIJK");
    strcpy(r->sender, "alice@example.org");
    strcpy(r->envid, "QQ314159+2B");
    r->ret = RET_HDRS;
    r->body = BODY_8BITMIME;
    strcpy(r->auth, "alice");
    strcpy(r->helo, "client.example.org");
    strcpy(r->client_addr, "192.0.2.7");
    strcpy(r->client_name, "client.example.org");
    strcpy(r->proto, "ESMTPSA");
    strcpy(r->origin, "smtpd");
    r->uid = 1000;
    r->arrival = 1764400327;
    r->size = 123456;
    qrec_add_rcpt(r, "bob@example.net");
    qrec_add_rcpt(r, "\"carol smith\"@[192.0.2.1]");
    qrec_add_rcpt(r, "Postmaster");
    qrcpt_set(&r->rcpt[0].orcpt, "rfc822;bob+2Bx@example.net", QREC_ORCPT_MAX);
    r->rcpt[0].notify = NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY;
    r->rcpt[0].status = RCPT_DEFERRED;
    r->rcpt[0].attempts = 3;
    r->rcpt[0].next_try = 1764403927;
    strcpy(r->rcpt[0].dsn, "4.4.1");
    qrcpt_set(&r->rcpt[0].reply, "connect to mx.example.net[192.0.2.9]:25: Connection refused", QREC_REPLY_MAX);
    r->rcpt[1].notify = NOTIFY_NEVER;
    r->rcpt[1].status = RCPT_SENT;
    strcpy(r->rcpt[1].dsn, "2.0.0");
    qrcpt_set(&r->rcpt[1].reply, "250 2.0.0 Ok\tqueued", QREC_REPLY_MAX);
}

int main(int argc, char **argv)
{
    struct ipc_out m, body, rc;
    struct qrec r;

    if (argc != 2) {
        fprintf(stderr, "usage: ipc_seeds DIR\n");
        return 2;
    }
    dir = argv[1];

    /* Q_COMMIT with a full record, as smtpd sends it */
    full_rec(&r);
    ipc_out_begin(&m, Q_COMMIT, 7);
    qrec_encode(&r, &m);
    put_out("commit-full", &m);
    ipc_out_free(&m);

    /* Q_LIST_ITEM: the record nested in T_RECORD, then Q_LIST_END */
    ipc_body_begin(&body);
    qrec_encode(&r, &body);
    ipc_out_begin(&m, Q_LIST_ITEM, 9);
    ipc_out_nested(&m, T_RECORD, &body);
    ipc_out_finish(&m);
    {
        struct ipc_out end;
        ipc_out_begin(&end, Q_LIST_END, 9);
        ipc_out_u64(&end, T_COUNT, 1);
        ipc_out_finish(&end);
        buf_append(&m.b, buf_head(&end.b), end.b.len);
        ipc_out_free(&end);
    }
    put("list-item-and-end", buf_head(&m.b), m.b.len);
    ipc_out_free(&m);

    /* the bare record body, as stored in LMDB */
    put_out("record-body", &body);
    ipc_out_free(&body);
    qrec_free(&r);

    /* the smallest record: null sender, one recipient, SMTPUTF8 */
    qrec_init(&r);
    r.flags = QF_SMTPUTF8;
    qrec_add_rcpt(&r, "用户@例子.广告");
    ipc_body_begin(&body);
    qrec_encode(&r, &body);
    put_out("record-utf8-null-sender", &body);
    ipc_out_free(&body);
    qrec_free(&r);

    /* several small frames in one read: open, abort, error */
    {
        struct ipc_out a, b, c;
        ipc_out_begin(&a, Q_OPEN, 1);
        ipc_out_finish(&a);
        ipc_out_begin(&b, Q_ABORT, 2);
        ipc_out_str(&b, T_QID, "0ABCDEFGHIJK");
        ipc_out_finish(&b);
        ipc_out_begin(&c, Q_ERROR, 3);
        ipc_out_str(&c, T_CODE, "451 4.3.0");
        ipc_out_str(&c, T_TEXT, "queue file write error");
        ipc_out_finish(&c);
        buf_append(&a.b, buf_head(&b.b), b.b.len);
        buf_append(&a.b, buf_head(&c.b), c.b.len);
        put("open-abort-error", buf_head(&a.b), a.b.len);
        /* the same, cut in the middle of the last frame */
        put("truncated-frame", buf_head(&a.b), a.b.len - 5);
        ipc_out_free(&a);
        ipc_out_free(&b);
        ipc_out_free(&c);
    }

    /* a record with unknown tags (skipped) and a recipient with a duplicate
     * field (refused) */
    ipc_body_begin(&body);
    ipc_out_u64(&body, T_VERSION, 1);
    ipc_out_str(&body, 15, "from a newer writer");
    ipc_out_str(&body, T_SENDER, "a@b.example");
    ipc_body_begin(&rc);
    ipc_out_str(&rc, T_R_ADDR, "c@d.example");
    ipc_out_str(&rc, 60, "unknown recipient field");
    ipc_out_u64(&rc, T_R_STATUS, RCPT_PENDING);
    ipc_out_u64(&rc, T_R_STATUS, RCPT_BOUNCED);
    ipc_out_nested(&body, T_RCPT, &rc);
    ipc_out_free(&rc);
    put_out("record-unknown-and-duplicate", &body);
    ipc_out_free(&body);

    /* a frame of an unknown type, even empty, is refused */
    ipc_out_begin(&m, 0x99, 1);
    put_out("unknown-type", &m);
    ipc_out_free(&m);
    return 0;
}
