/*
 * fuzz_ipc.c - libFuzzer target for the IPC frame reader (common/ipc.h) with
 * the real per-type limits (proto_limit, common/proto.h), and for the queue
 * record decoder qrec_decode (common/qrecord.h) that runs on frame bodies
 * from smtpd, sendmail and LMDB.
 *
 * Input: a byte stream of frames, read the way ipc_conn_next does: header
 * check, then the body. Every body, every T_RECORD field in a body, and the
 * whole input taken as a bare body go to qrec_decode. Bodies and fields are
 * copied into exact-size heap buffers, so any read past a length is an
 * AddressSanitizer crash.
 *
 * Checks: ipc_frame_check needs only the 16 header bytes, answers 0 below
 * them, and accepts only the right magic with a length within the type's
 * limit; the field iterator walks exactly the body, never past it, and a
 * frame rebuilt with ipc_out_* from the fields is byte for byte the input
 * (header flags aside); ipc_field_u64 / ipc_field_str accept exactly what
 * their contracts say and copy the bytes unchanged. qrec_decode either fails
 * with a message and nothing allocated, or gives a record whose every text
 * is terminated and free of control bytes, whose numbers are in range, and
 * that re-encodes (qrec_encode) and decodes again to the same fields, with
 * the second encoding identical to the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "ipc.h"
#include "proto.h"
#include "qrecord.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_ipc: %s:%d: check failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                            \
            abort();                                                             \
        }                                                                        \
    } while (0)

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned char *dup_exact(const unsigned char *p, size_t n)
{
    unsigned char *c = malloc(n ? n : 1);

    if (c == NULL)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

/* ---- fields ---- */

static void check_field_getters(const struct ipc_field *f)
{
    char small[8], big[600];
    uint64_t v = 0;
    int ctl = 0;

    if (ipc_field_u64(f, &v) == 0) {
        uint64_t want = 0;
        CHECK(f->len == 8);
        for (int i = 7; i >= 0; i--)
            want = want << 8 | f->val[i];
        CHECK(v == want);
    } else {
        CHECK(f->len != 8);
    }
    for (size_t i = 0; i < f->len; i++) {
        unsigned char c = f->val[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            ctl = 1;
    }
    memset(small, 'X', sizeof small);
    if (ipc_field_str(f, small, sizeof small) == 0) {
        CHECK(!ctl && f->len < sizeof small);
        CHECK(memcmp(small, f->val, f->len) == 0 && small[f->len] == 0);
    } else {
        CHECK(ctl || f->len >= sizeof small);
    }
    if (ipc_field_str(f, big, sizeof big) == 0) {
        CHECK(!ctl && f->len < sizeof big);
        CHECK(memcmp(big, f->val, f->len) == 0 && big[f->len] == 0);
    } else {
        CHECK(ctl || f->len >= sizeof big);
    }
}

/*
 * Walks the fields of body (an exact-size heap copy), checks each and, when
 * the body is well formed, appends them to *re. Returns the iterator's last
 * answer (0 well formed, -1 malformed).
 */
static int walk_body(const unsigned char *body, size_t len, struct ipc_out *re, int depth);

static void walk_field(const struct ipc_field *f, int depth)
{
    unsigned char *val = dup_exact(f->val, f->len);
    struct ipc_field g = { f->tag, val, f->len };

    check_field_getters(&g);
    /* nested bodies: a recipient, or a whole record in Q_LIST_ITEM */
    if (depth < 2 && (g.tag == T_RCPT || g.tag == T_RECORD))
        walk_body(val, g.len, NULL, depth + 1);
    free(val);
}

static void check_record(const unsigned char *body, size_t len);

static int walk_body(const unsigned char *body, size_t len, struct ipc_out *re, int depth)
{
    struct ipc_iter it;
    struct ipc_field f;
    size_t walked = 0;
    int r;

    ipc_iter_init(&it, body, len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        CHECK(f.val == body + walked + 6);
        CHECK(rd16(body + walked) == f.tag && rd32(body + walked + 2) == f.len);
        CHECK(f.len <= len - walked - 6);
        walked += 6 + f.len;
        CHECK(it.p == body + walked);
        walk_field(&f, depth);
        if (f.tag == T_RECORD)
            check_record(f.val, f.len);
        if (re != NULL)
            ipc_out_bytes(re, f.tag, f.val, f.len);
    }
    CHECK(r == 0 || r == -1);
    if (r == 0) {
        CHECK(walked == len);
    } else {
        /* what is left cannot hold a field header and its value */
        CHECK(walked < len);
        CHECK(len - walked < 6 || rd32(body + walked + 2) > len - walked - 6);
    }
    /* the iterator stays at its end */
    CHECK(ipc_iter_next(&it, &f) == r);
    return r;
}

/* ---- records ---- */

static void check_text(const char *s, size_t size)
{
    const char *nul = memchr(s, 0, size);

    CHECK(nul != NULL);
    for (; *s; s++)
        CHECK(!(((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f));
}

static void check_mailbox(const char *s, unsigned flags)
{
    char path[ADDR_MAX + 2];
    size_t n = strlen(s), end;
    struct addr a;

    CHECK(n <= ADDR_MAX);
    path[0] = '<';
    memcpy(path + 1, s, n);
    path[n + 1] = '>';
    CHECK(addr_parse_path(path, n + 2, flags, &a, &end) == ADDR_OK);
    CHECK(end == n + 2);
}

static void check_valid(const struct qrec *r)
{
    unsigned af = (r->flags & QF_SMTPUTF8) ? ADDR_UTF8 : 0;

    CHECK(r->version >= 1 && r->version <= QREC_VERSION);
    check_text(r->qid, sizeof r->qid);
    CHECK(r->qid[0] == 0 || qid_valid(r->qid));
    check_text(r->sender, sizeof r->sender);
    check_text(r->envid, sizeof r->envid);
    check_text(r->auth, sizeof r->auth);
    check_text(r->helo, sizeof r->helo);
    check_text(r->client_addr, sizeof r->client_addr);
    check_text(r->client_name, sizeof r->client_name);
    check_text(r->proto, sizeof r->proto);
    check_text(r->origin, sizeof r->origin);
    CHECK(r->ret <= RET_HDRS && r->body <= BODY_8BITMIME);
    CHECK((r->flags & ~(unsigned)(QF_HOLD | QF_SMTPUTF8)) == 0);
    CHECK(r->uid >= -1 && r->uid <= 0xfffffffeLL);
    check_mailbox(r->sender, af | ADDR_ALLOW_EMPTY);
    CHECK(r->nrcpt >= 1 && r->nrcpt <= QREC_MAX_RCPT && r->rcpt != NULL);
    for (size_t i = 0; i < r->nrcpt; i++) {
        const struct qrcpt *rc = &r->rcpt[i];

        CHECK(rc->addr != NULL && rc->addr[0] != 0);
        check_text(rc->addr, ADDR_MAX + 1);
        check_mailbox(rc->addr, af | ADDR_ALLOW_POSTMASTER);
        CHECK(rc->orcpt == NULL || rc->orcpt[0] != 0);
        if (rc->orcpt)
            check_text(rc->orcpt, QREC_ORCPT_MAX + 1);
        check_text(rc->dsn, sizeof rc->dsn);
        CHECK(rc->reply == NULL || rc->reply[0] != 0);
        if (rc->reply)
            check_text(rc->reply, QREC_REPLY_MAX + 1);
        CHECK(rc->notify <= 15 && (!(rc->notify & NOTIFY_NEVER) || rc->notify == NOTIFY_NEVER));
        CHECK(rc->status <= RCPT_BOUNCED);
    }
    CHECK(qrec_queue_name(r) != NULL);
}

/* orcpt and reply are NULL when empty (qrecord.h) */
static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int same_rcpt(const struct qrcpt *a, const struct qrcpt *b)
{
    return strcmp(a->addr, b->addr) == 0 && same_str(a->orcpt, b->orcpt) &&
           a->notify == b->notify && a->status == b->status &&
           a->attempts == b->attempts && a->next_try == b->next_try &&
           strcmp(a->dsn, b->dsn) == 0 && same_str(a->reply, b->reply);
}

static int same_rec(const struct qrec *a, const struct qrec *b)
{
    if (!(a->version == b->version && strcmp(a->qid, b->qid) == 0 &&
          strcmp(a->sender, b->sender) == 0 && strcmp(a->envid, b->envid) == 0 &&
          a->ret == b->ret && a->body == b->body && a->flags == b->flags &&
          strcmp(a->auth, b->auth) == 0 && strcmp(a->helo, b->helo) == 0 &&
          strcmp(a->client_addr, b->client_addr) == 0 &&
          strcmp(a->client_name, b->client_name) == 0 && strcmp(a->proto, b->proto) == 0 &&
          strcmp(a->origin, b->origin) == 0 && a->uid == b->uid &&
          a->arrival == b->arrival && a->size == b->size && a->nrcpt == b->nrcpt))
        return 0;
    for (size_t i = 0; i < a->nrcpt; i++)
        if (!same_rcpt(&a->rcpt[i], &b->rcpt[i]))
            return 0;
    return 1;
}

/* Encodes r into a bare body; returns an exact-size heap copy, or NULL. */
static unsigned char *encode(const struct qrec *r, size_t *len)
{
    struct ipc_out m;
    unsigned char *p = NULL;

    ipc_body_begin(&m);
    qrec_encode(r, &m);
    if (ipc_out_finish(&m) == 0) {
        *len = m.b.len;
        p = dup_exact((const unsigned char *)buf_head(&m.b), m.b.len);
    }
    ipc_out_free(&m);
    return p;
}

static void check_record(const unsigned char *body, size_t len)
{
    unsigned char *copy = dup_exact(body, len), *e1, *e2;
    struct qrec r, r2, r3;
    char err[256];
    size_t l1 = 0, l2 = 0;

    memset(err, 'X', sizeof err);
    if (qrec_decode(copy, len, &r, err, sizeof err) < 0) {
        CHECK(memchr(err, 0, sizeof err) != NULL && err[0] != 0);
        CHECK(r.rcpt == NULL && r.nrcpt == 0);
        qrec_free(&r);
        /* and with no room for the reason */
        CHECK(qrec_decode(copy, len, &r, NULL, 0) < 0);
        CHECK(r.rcpt == NULL && r.nrcpt == 0);
        free(copy);
        return;
    }
    CHECK(err[0] == 0);
    check_valid(&r);

    e1 = encode(&r, &l1);
    /* the input fits a frame, and a re-encoding adds at most the five
     * always-written numbers that the input may have left out */
    CHECK(e1 != NULL || len + 5 * 14 > IPC_MAX_BODY);
    if (e1 != NULL) {
        memset(err, 'X', sizeof err);
        if (qrec_decode(e1, l1, &r2, err, sizeof err) < 0) {
            fprintf(stderr, "fuzz_ipc: re-encoded record refused: %s\n", err);
            CHECK(0 && "re-encoded record decodes");
        }
        CHECK(same_rec(&r, &r2));
        e2 = encode(&r2, &l2);
        CHECK(e2 != NULL && l2 == l1 && memcmp(e1, e2, l1) == 0);
        CHECK(qrec_decode(e2, l2, &r3, NULL, 0) == 0 && same_rec(&r, &r3));
        qrec_free(&r3);
        qrec_free(&r2);
        free(e2);
        free(e1);
    }
    qrec_free(&r);
    free(copy);
}

/* ---- frames ---- */

static void check_frame_header(const unsigned char *p, size_t n, long need)
{
    unsigned char *h;

    /* below 16 bytes: always "more, please", from any prefix */
    for (size_t k = 0; k < IPC_HDR_LEN && k <= n; k++) {
        h = dup_exact(p, k);
        CHECK(ipc_frame_check(h, k, proto_limit) == 0);
        free(h);
    }
    if (n < IPC_HDR_LEN) {
        CHECK(need == 0);
        return;
    }
    /* the answer depends on the header alone */
    h = dup_exact(p, IPC_HDR_LEN);
    CHECK(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == need);
    free(h);
    {
        uint32_t magic = rd32(p), blen = rd32(p + 8);
        uint16_t type = rd16(p + 4);
        size_t lim = proto_limit(type);
        int valid = magic == IPC_MAGIC && lim != 0 && blen <= lim && blen <= IPC_MAX_BODY;

        CHECK(lim <= IPC_MAX_BODY);
        if (valid)
            CHECK(need == (long)IPC_HDR_LEN + (long)blen);
        else
            CHECK(need == -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    /* the whole input as a bare record body (LMDB value, T_RECORD) */
    check_record(data, size);

    /* the input as a stream of frames, as ipc_conn_next reads it */
    while (off < size) {
        const unsigned char *p = data + off;
        size_t left = size - off;
        long need = ipc_frame_check(p, left, proto_limit);
        unsigned char *body;
        size_t blen;
        struct ipc_out re;
        int r;

        check_frame_header(p, left, need);
        if (need <= 0 || (size_t)need > left)
            break;                      /* refused, or incomplete */
        blen = (size_t)need - IPC_HDR_LEN;
        body = dup_exact(p + IPC_HDR_LEN, blen);

        ipc_out_begin(&re, rd16(p + 4), rd32(p + 12));
        r = walk_body(body, blen, &re, 0);
        if (r == 0) {
            /* rebuilt from its fields, the frame is the same bytes */
            CHECK(ipc_out_finish(&re) == 0);
            CHECK(re.b.len == (size_t)need);
            CHECK(memcmp(buf_head(&re.b), p, 6) == 0);
            CHECK(memcmp(buf_head(&re.b) + 8, p + 8, (size_t)need - 8) == 0);
        }
        ipc_out_free(&re);

        check_record(body, blen);
        free(body);
        off += (size_t)need;
    }
    return 0;
}
