/*
 * test_ipc.c - the frame format and connections of common/ipc.c: building
 * and parsing, typed getters, refusal of truncated, oversized and garbage
 * frames, frames split at every byte, and descriptors riding on frames
 * (SCM_RIGHTS) over real socketpairs and UNIX sockets.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "proto.h"
#include "suites.h"
#include "util.h"

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr_hdr(unsigned char *h, uint32_t magic, uint16_t type, uint16_t flags, uint32_t len,
                   uint32_t reqid)
{
    for (int i = 0; i < 4; i++) {
        h[i] = (unsigned char)(magic >> (8 * i));
        h[8 + i] = (unsigned char)(len >> (8 * i));
        h[12 + i] = (unsigned char)(reqid >> (8 * i));
    }
    h[4] = (unsigned char)type;
    h[5] = (unsigned char)(type >> 8);
    h[6] = (unsigned char)flags;
    h[7] = (unsigned char)(flags >> 8);
}

static size_t big_limit(uint16_t type)
{
    (void)type;
    return SIZE_MAX;
}

/* A pair of connected non-blocking stream sockets wrapped in ipc_conns. */
static void conn_pair(struct ipc_conn *a, struct ipc_conn *b)
{
    int sv[2];

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    ipc_conn_init(a, sv[0], proto_limit);
    ipc_conn_init(b, sv[1], proto_limit);
}

static void sample_frame(struct ipc_out *m, uint16_t type, uint32_t reqid, const char *text)
{
    ipc_out_begin(m, type, reqid);
    ipc_out_str(m, T_QID, "0ABCDEFGHIJK");
    ipc_out_str(m, T_TEXT, text);
    ipc_out_u64(m, T_COUNT, 0x0102030405060708ull);
    CU_ASSERT_FATAL(ipc_out_finish(m) == 0);
}

static void check_sample(const struct ipc_msg *msg, uint16_t type, uint32_t reqid, const char *text)
{
    struct ipc_iter it;
    struct ipc_field f;
    char s[256];
    uint64_t v;

    CU_ASSERT_EQUAL(msg->type, type);
    CU_ASSERT_EQUAL(msg->reqid, reqid);
    ipc_iter_init(&it, msg->body, msg->len);
    CU_ASSERT_FATAL(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT_EQUAL(f.tag, T_QID);
    CU_ASSERT(ipc_field_str(&f, s, sizeof(s)) == 0);
    CU_ASSERT_STRING_EQUAL(s, "0ABCDEFGHIJK");
    CU_ASSERT_FATAL(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT_EQUAL(f.tag, T_TEXT);
    CU_ASSERT(ipc_field_str(&f, s, sizeof(s)) == 0);
    CU_ASSERT_STRING_EQUAL(s, text);
    CU_ASSERT_FATAL(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT_EQUAL(f.tag, T_COUNT);
    CU_ASSERT(ipc_field_u64(&f, &v) == 0);
    CU_ASSERT_EQUAL(v, 0x0102030405060708ull);
    CU_ASSERT(ipc_iter_next(&it, &f) == 0);
}

/* ---- building and parsing bytes ---- */

static void test_build_layout(void)
{
    struct ipc_out m, inner;
    const unsigned char *p;

    ipc_out_begin(&m, Q_COMMIT, 0xdeadbeef);
    ipc_out_str(&m, T_SENDER, "ab");
    ipc_out_u64(&m, T_SIZE, 258);
    ipc_body_begin(&inner);
    ipc_out_str(&inner, T_R_ADDR, "x");
    ipc_out_nested(&m, T_RCPT, &inner);
    ipc_out_free(&inner);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    p = (const unsigned char *)buf_head(&m.b);
    CU_ASSERT_EQUAL(m.b.len, 16 + (6 + 2) + (6 + 8) + (6 + 7));
    /* header, little-endian: "PSTN", type, flags, length, request id */
    CU_ASSERT(memcmp(p, "PSTN", 4) == 0);
    CU_ASSERT_EQUAL(rd32(p), IPC_MAGIC);
    CU_ASSERT(p[4] == Q_COMMIT && p[5] == 0);
    CU_ASSERT(p[6] == 0 && p[7] == 0);
    CU_ASSERT_EQUAL(rd32(p + 8), m.b.len - 16);
    CU_ASSERT_EQUAL(rd32(p + 12), 0xdeadbeef);
    /* fields: u16 tag, u32 length, bytes */
    CU_ASSERT(p[16] == T_SENDER && p[17] == 0);
    CU_ASSERT_EQUAL(rd32(p + 18), 2);
    CU_ASSERT(memcmp(p + 22, "ab", 2) == 0);
    CU_ASSERT(p[24] == T_SIZE);
    CU_ASSERT_EQUAL(rd32(p + 26), 8);
    CU_ASSERT(p[30] == 2 && p[31] == 1 && p[32] == 0);  /* 258 LE */
    CU_ASSERT(p[38] == T_RCPT);
    CU_ASSERT_EQUAL(rd32(p + 40), 7);
    CU_ASSERT(p[44] == T_R_ADDR && rd32(p + 46) == 1 && p[50] == 'x');
    CU_ASSERT_EQUAL(ipc_frame_check(p, m.b.len, proto_limit), (long)m.b.len);
    ipc_out_free(&m);
}

static void test_iterate_nested(void)
{
    struct ipc_out m, inner;
    struct ipc_iter it, in;
    struct ipc_field f, g;
    char s[16];

    ipc_body_begin(&m);
    for (int i = 0; i < 3; i++) {
        ipc_body_begin(&inner);
        snprintf(s, sizeof(s), "r%d", i);
        ipc_out_str(&inner, T_R_ADDR, s);
        ipc_out_u64(&inner, T_R_STATUS, (uint64_t)i);
        ipc_out_nested(&m, T_RCPT, &inner);
        ipc_out_free(&inner);
    }
    ipc_out_bytes(&m, 7, "", 0);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    ipc_iter_init(&it, (const unsigned char *)buf_head(&m.b), m.b.len);
    for (int i = 0; i < 3; i++) {
        uint64_t v;
        char want[16];
        CU_ASSERT_FATAL(ipc_iter_next(&it, &f) == 1);
        CU_ASSERT_EQUAL(f.tag, T_RCPT);
        ipc_iter_init(&in, f.val, f.len);
        CU_ASSERT_FATAL(ipc_iter_next(&in, &g) == 1);
        CU_ASSERT(ipc_field_str(&g, s, sizeof(s)) == 0);
        snprintf(want, sizeof(want), "r%d", i);
        CU_ASSERT_STRING_EQUAL(s, want);
        CU_ASSERT_FATAL(ipc_iter_next(&in, &g) == 1);
        CU_ASSERT(ipc_field_u64(&g, &v) == 0 && v == (uint64_t)i);
        CU_ASSERT(ipc_iter_next(&in, &g) == 0);
    }
    CU_ASSERT_FATAL(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT(f.tag == 7 && f.len == 0);
    CU_ASSERT(ipc_field_str(&f, s, sizeof(s)) == 0 && s[0] == 0);
    CU_ASSERT(ipc_iter_next(&it, &f) == 0);
    CU_ASSERT(ipc_iter_next(&it, &f) == 0);

    /* a framed message cannot be nested */
    ipc_out_begin(&inner, Q_OPEN, 1);
    ipc_out_nested(&m, T_RCPT, &inner);
    CU_ASSERT(m.failed);
    CU_ASSERT(ipc_out_finish(&m) == -1);
    ipc_out_free(&inner);
    ipc_out_free(&m);
}

static void test_iterate_malformed(void)
{
    struct ipc_iter it;
    struct ipc_field f;
    unsigned char b[32] = { 0 };

    /* empty body: no fields */
    ipc_iter_init(&it, b, 0);
    CU_ASSERT(ipc_iter_next(&it, &f) == 0);
    /* a field header cut short: 1..5 bytes */
    memset(b, 0, sizeof(b));
    for (size_t n = 1; n < 6; n++) {
        ipc_iter_init(&it, b, n);
        CU_ASSERT(ipc_iter_next(&it, &f) == -1);
    }
    /* a field running past the end by one byte, and by 4 GB */
    b[0] = 1;
    b[2] = 5;
    ipc_iter_init(&it, b, 6 + 4);
    CU_ASSERT(ipc_iter_next(&it, &f) == -1);
    ipc_iter_init(&it, b, 6 + 5);
    CU_ASSERT(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT(f.len == 5 && f.val == b + 6);
    b[2] = b[3] = b[4] = b[5] = 0xff;
    ipc_iter_init(&it, b, sizeof(b));
    CU_ASSERT(ipc_iter_next(&it, &f) == -1);
    /* a good field then a broken one */
    memset(b, 0, sizeof(b));
    b[0] = 1;                   /* tag 1, len 0 */
    b[6] = 2;
    b[8] = 9;                   /* tag 2, len 9, only 4 bytes follow */
    ipc_iter_init(&it, b, 16);
    CU_ASSERT(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT(ipc_iter_next(&it, &f) == -1);
}

static void test_getters(void)
{
    struct ipc_field f;
    uint64_t v = 42;
    char out[8];
    unsigned char eight[8] = { 0xff, 0, 0, 0, 0, 0, 0, 0x80 };

    f.tag = 1;
    f.val = eight;
    f.len = 8;
    CU_ASSERT(ipc_field_u64(&f, &v) == 0);
    CU_ASSERT_EQUAL(v, 0x80000000000000ffull);
    for (size_t n = 0; n < 8; n++) {
        f.len = n;
        v = 42;
        CU_ASSERT(ipc_field_u64(&f, &v) == -1);
        CU_ASSERT_EQUAL(v, 42);
    }
    f.len = 9;
    CU_ASSERT(ipc_field_u64(&f, &v) == -1);

    /* text: fits outlen with its NUL; TAB allowed; no other controls, DEL or NUL */
    f.val = (const unsigned char *)"abcdefg";
    f.len = 7;
    CU_ASSERT(ipc_field_str(&f, out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "abcdefg");
    f.val = (const unsigned char *)"abcdefgh";
    f.len = 8;
    CU_ASSERT(ipc_field_str(&f, out, sizeof(out)) == -1);
    f.val = (const unsigned char *)"a\tb";
    f.len = 3;
    CU_ASSERT(ipc_field_str(&f, out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "a\tb");
    const char *bad[] = { "a\nb", "a\rb", "a\0b", "\x1b[", "a\x7f", "\x01" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f.val = (const unsigned char *)bad[i];
        f.len = i == 2 ? 3 : strlen(bad[i]);
        CU_ASSERT(ipc_field_str(&f, out, sizeof(out)) == -1);
    }
    /* UTF-8 bytes are text */
    f.val = (const unsigned char *)"\xc3\xa9t\xc3\xa9";
    f.len = 5;
    CU_ASSERT(ipc_field_str(&f, out, sizeof(out)) == 0);
    f.len = 0;
    CU_ASSERT(ipc_field_str(&f, out, 1) == 0 && out[0] == 0);
    CU_ASSERT(ipc_field_str(&f, out, 0) == -1);
}

static void test_frame_check(void)
{
    unsigned char h[IPC_HDR_LEN];

    wr_hdr(h, IPC_MAGIC, Q_OPEN, 0, 10, 7);
    for (size_t n = 0; n < IPC_HDR_LEN; n++)
        CU_ASSERT(ipc_frame_check(h, n, proto_limit) == 0);
    CU_ASSERT_EQUAL(ipc_frame_check(h, IPC_HDR_LEN, proto_limit), IPC_HDR_LEN + 10);
    /* garbage */
    wr_hdr(h, 0x4e545351, Q_OPEN, 0, 0, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    memcpy(h, "HTTP/1.1 200 OK\r", IPC_HDR_LEN);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    /* big-endian magic is garbage too */
    h[0] = 'N'; h[1] = 'T'; h[2] = 'S'; h[3] = 'P';
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    /* over the type's limit */
    wr_hdr(h, IPC_MAGIC, Q_OPEN, 0, (uint32_t)proto_limit(Q_OPEN), 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) > 0);
    wr_hdr(h, IPC_MAGIC, Q_OPEN, 0, (uint32_t)proto_limit(Q_OPEN) + 1, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    /* unknown type with a body, and without one */
    wr_hdr(h, IPC_MAGIC, 999, 0, 1, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    wr_hdr(h, IPC_MAGIC, 999, 0, 0, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    /* over IPC_MAX_BODY even when the type would allow more */
    wr_hdr(h, IPC_MAGIC, Q_COMMIT, 0, IPC_MAX_BODY, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == IPC_HDR_LEN + IPC_MAX_BODY);
    wr_hdr(h, IPC_MAGIC, Q_COMMIT, 0, IPC_MAX_BODY + 1, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, proto_limit) == -1);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, big_limit) == -1);
    wr_hdr(h, IPC_MAGIC, Q_COMMIT, 0, 0xffffffffu, 0);
    CU_ASSERT(ipc_frame_check(h, IPC_HDR_LEN, big_limit) == -1);
}

static void test_build_limits(void)
{
    struct ipc_out m;
    struct ipc_conn a, b;
    char *big = malloc(IPC_MAX_BODY);

    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', IPC_MAX_BODY);
    /* one field of IPC_MAX_BODY - 6 fills a body exactly */
    ipc_out_begin(&m, Q_COMMIT, 1);
    ipc_out_bytes(&m, T_TEXT, big, IPC_MAX_BODY - 6);
    CU_ASSERT(ipc_out_finish(&m) == 0);
    CU_ASSERT_EQUAL(m.b.len, IPC_HDR_LEN + IPC_MAX_BODY);
    /* one more byte is refused, and the frame stays refused */
    ipc_out_bytes(&m, T_TEXT, "", 1);
    CU_ASSERT(m.failed);
    CU_ASSERT(ipc_out_finish(&m) == -1);
    ipc_out_str(&m, T_QID, "x");
    CU_ASSERT(ipc_out_finish(&m) == -1);
    conn_pair(&a, &b);
    CU_ASSERT(ipc_conn_send(&a, &m, -1) == -1);
    CU_ASSERT(a.out.len == 0);
    ipc_out_free(&m);
    /* a single field over the ceiling */
    ipc_body_begin(&m);
    ipc_out_bytes(&m, T_TEXT, big, (size_t)IPC_MAX_BODY + 1);
    CU_ASSERT(ipc_out_finish(&m) == -1);
    ipc_out_free(&m);
    /* a bare body is not a frame */
    ipc_body_begin(&m);
    ipc_out_str(&m, T_TEXT, "x");
    CU_ASSERT(ipc_conn_send(&a, &m, -1) == -1);
    ipc_out_free(&m);
    ipc_conn_close(&a);
    ipc_conn_close(&b);
    free(big);
}

/* ---- connections ---- */

/* Two frames written as one byte stream, cut at every position: the reader
 * returns nothing until a frame is whole, then exactly that frame. */
static void test_split_every_byte(void)
{
    struct ipc_out m1, m2;
    struct buf all;
    struct ipc_msg msg;

    sample_frame(&m1, Q_COMMITTED, 11, "first");
    sample_frame(&m2, Q_ERROR, 22, "second frame, a little longer");
    buf_init(&all, 1 << 20);
    buf_append(&all, buf_head(&m1.b), m1.b.len);
    buf_append(&all, buf_head(&m2.b), m2.b.len);

    for (size_t cut = 0; cut <= all.len; cut++) {
        struct ipc_conn w, r;
        int got = 0;

        conn_pair(&w, &r);
        CU_ASSERT_FATAL(write(w.fd, buf_head(&all), cut) == (ssize_t)cut);
        if (cut > 0)
            CU_ASSERT(ipc_conn_read(&r) == 1);
        while (ipc_conn_next(&r, &msg) == 1) {
            check_sample(&msg, got ? Q_ERROR : Q_COMMITTED, got ? 22 : 11,
                         got ? "second frame, a little longer" : "first");
            CU_ASSERT_EQUAL(msg.fd, -1);
            got++;
        }
        CU_ASSERT_EQUAL(got, (cut >= m1.b.len) + (cut == all.len));
        if (cut < all.len) {
            CU_ASSERT_FATAL(write(w.fd, buf_head(&all) + cut, all.len - cut) ==
                            (ssize_t)(all.len - cut));
            CU_ASSERT(ipc_conn_read(&r) == 1);
            while (ipc_conn_next(&r, &msg) == 1) {
                check_sample(&msg, got ? Q_ERROR : Q_COMMITTED, got ? 22 : 11,
                             got ? "second frame, a little longer" : "first");
                got++;
            }
            CU_ASSERT_EQUAL(got, 2);
        }
        CU_ASSERT(ipc_conn_next(&r, &msg) == 0);
        ipc_conn_close(&w);
        ipc_conn_close(&r);
    }

    /* and one byte at a time */
    {
        struct ipc_conn w, r;
        int got = 0;

        conn_pair(&w, &r);
        for (size_t i = 0; i < all.len; i++) {
            CU_ASSERT_FATAL(write(w.fd, buf_head(&all) + i, 1) == 1);
            CU_ASSERT(ipc_conn_read(&r) == 1);
            while (ipc_conn_next(&r, &msg) == 1) {
                CU_ASSERT(i == m1.b.len - 1 || i == all.len - 1);
                got++;
            }
        }
        CU_ASSERT_EQUAL(got, 2);
        CU_ASSERT(ipc_conn_read(&r) == 0); /* would block, not EOF */
        ipc_conn_close(&w);
        CU_ASSERT(ipc_conn_read(&r) == -1); /* EOF */
        ipc_conn_close(&r);
    }
    buf_free(&all);
    ipc_out_free(&m1);
    ipc_out_free(&m2);
}

static void test_send_flush_many(void)
{
    struct ipc_conn a, b;
    struct ipc_out m;
    struct ipc_msg msg;
    char text[32];
    int got = 0;

    conn_pair(&a, &b);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "frame %d", i);
        sample_frame(&m, Q_LIST_ITEM, (uint32_t)i, text);
        CU_ASSERT(ipc_conn_send(&a, &m, -1) == 0);
        ipc_out_free(&m);
    }
    CU_ASSERT(ipc_conn_want_write(&a));
    CU_ASSERT(ipc_conn_flush(&a) == 1);
    CU_ASSERT(!ipc_conn_want_write(&a));
    while (got < 100 && ipc_conn_recv_wait(&b, &msg, 1000) == 1) {
        snprintf(text, sizeof(text), "frame %d", got);
        check_sample(&msg, Q_LIST_ITEM, (uint32_t)got, text);
        got++;
    }
    CU_ASSERT_EQUAL(got, 100);
    ipc_conn_close(&a);
    ipc_conn_close(&b);
}

/* A frame bigger than the socket buffer goes out in pieces as the peer reads. */
static void test_large_frame_partial_writes(void)
{
    struct ipc_conn a, b;
    struct ipc_out m;
    struct ipc_msg msg;
    struct ipc_iter it;
    struct ipc_field f;
    size_t n = IPC_MAX_BODY - 6;
    char *big = malloc(n);
    int r = 0, rounds = 0, got = 0;

    CU_ASSERT_FATAL(big != NULL);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    conn_pair(&a, &b);
    ipc_out_begin(&m, Q_LIST_ITEM, 5);
    ipc_out_bytes(&m, T_RECORD, big, n);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(ipc_conn_send(&a, &m, -1) == 0);
    ipc_out_free(&m);
    while (!got && rounds++ < 100000) {
        r = ipc_conn_flush(&a);
        CU_ASSERT_FATAL(r >= 0);
        /* one read, then look for a frame: the input buffer holds exactly
         * one frame of the largest size, so reading on before taking it
         * would find the buffer full */
        CU_ASSERT_FATAL(ipc_conn_read(&b) >= 0);
        if (ipc_conn_next(&b, &msg) == 1)
            got = 1;
    }
    CU_ASSERT(got);
    CU_ASSERT(rounds > 1);
    CU_ASSERT_EQUAL(msg.len, IPC_MAX_BODY);
    ipc_iter_init(&it, msg.body, msg.len);
    CU_ASSERT(ipc_iter_next(&it, &f) == 1);
    CU_ASSERT(f.tag == T_RECORD && f.len == n && memcmp(f.val, big, n) == 0);
    ipc_conn_close(&a);
    ipc_conn_close(&b);
    free(big);
}

/* The header is enough to refuse an oversized frame: the body is never awaited. */
static void test_conn_refuses_oversized(void)
{
    struct {
        uint16_t type;
        uint32_t len;
    } cases[] = {
        { Q_OPEN, 4097 },
        { Q_ERROR, 1u << 20 },
        { Q_COMMIT, IPC_MAX_BODY + 1 },
        { Q_LIST_ITEM, 0xffffffffu },
        { 0, 1 },
        { 999, 16 },
    };
    unsigned char h[IPC_HDR_LEN];
    struct ipc_msg msg;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipc_conn w, r;

        conn_pair(&w, &r);
        wr_hdr(h, IPC_MAGIC, cases[i].type, 0, cases[i].len, 1);
        CU_ASSERT_FATAL(write(w.fd, h, sizeof(h)) == (ssize_t)sizeof(h));
        CU_ASSERT(ipc_conn_read(&r) == 1);
        CU_ASSERT(ipc_conn_next(&r, &msg) == -1);
        ipc_conn_close(&w);
        ipc_conn_close(&r);
    }
}

static void test_conn_refuses_garbage(void)
{
    const char *junk[] = { "EHLO example.org\r\nMAIL FROM:<a@b>\r\n", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" };
    size_t jlen[] = { strlen(junk[0]), 16 };
    struct ipc_msg msg;

    for (size_t i = 0; i < 2; i++) {
        struct ipc_conn w, r;

        conn_pair(&w, &r);
        CU_ASSERT_FATAL(write(w.fd, junk[i], jlen[i]) == (ssize_t)jlen[i]);
        CU_ASSERT(ipc_conn_read(&r) == 1);
        CU_ASSERT(ipc_conn_next(&r, &msg) == -1);
        CU_ASSERT(ipc_conn_recv_wait(&r, &msg, 10) == -1);
        ipc_conn_close(&w);
        ipc_conn_close(&r);
    }

    /* a good frame followed by garbage: the frame, then the refusal */
    struct ipc_conn w, r;
    struct ipc_out m;
    conn_pair(&w, &r);
    sample_frame(&m, Q_COMMITTED, 3, "ok");
    CU_ASSERT(write(w.fd, buf_head(&m.b), m.b.len) == (ssize_t)m.b.len);
    CU_ASSERT(write(w.fd, "GARBAGE GARBAGE!", 16) == 16);
    CU_ASSERT(ipc_conn_recv_wait(&r, &msg, 1000) == 1);
    check_sample(&msg, Q_COMMITTED, 3, "ok");
    CU_ASSERT(ipc_conn_recv_wait(&r, &msg, 1000) == -1);
    ipc_out_free(&m);
    ipc_conn_close(&w);
    ipc_conn_close(&r);
}

static void test_recv_wait_timeout_eof(void)
{
    struct ipc_conn a, b;
    struct ipc_msg msg;
    unsigned char h[IPC_HDR_LEN];

    conn_pair(&a, &b);
    CU_ASSERT(ipc_conn_recv_wait(&b, &msg, 30) == 0);
    /* a header and half a body, then silence: still a timeout */
    wr_hdr(h, IPC_MAGIC, Q_OPEN, 0, 8, 0);
    CU_ASSERT(write(a.fd, h, sizeof(h)) == (ssize_t)sizeof(h));
    CU_ASSERT(write(a.fd, "\x01\x00\x00\x00", 4) == 4);
    CU_ASSERT(ipc_conn_recv_wait(&b, &msg, 30) == 0);
    /* then the peer goes away mid-frame: an error, not a frame */
    ipc_conn_close(&a);
    CU_ASSERT(ipc_conn_recv_wait(&b, &msg, 1000) == -1);
    ipc_conn_close(&b);
}

static int temp_file(const char *content)
{
    char path[] = "/tmp/postern-test-ipc-XXXXXX";
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    CU_ASSERT(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
    return fd;
}

static int same_file(int a, int b)
{
    struct stat sa, sb;

    if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void test_fd_passing(void)
{
    struct ipc_conn a, b;
    struct ipc_out m;
    struct ipc_msg msg;
    int f1 = temp_file("one"), f2 = temp_file("two");
    char buf[8];

    conn_pair(&a, &b);
    /* frame with fd, frame without, frame with another fd */
    sample_frame(&m, Q_OPENED, 1, "with fd");
    CU_ASSERT(ipc_conn_send_wait(&a, &m, f1, 1000) == 0);
    ipc_out_free(&m);
    /* the caller's descriptor stays the caller's: ipc dup'ed it */
    CU_ASSERT(fcntl(f1, F_GETFD) >= 0);
    sample_frame(&m, Q_COMMITTED, 2, "without");
    CU_ASSERT(ipc_conn_send(&a, &m, -1) == 0);
    /* the flag is set on the queued copy only */
    CU_ASSERT((((const unsigned char *)buf_head(&m.b))[6] & IPC_F_FD) == 0);
    ipc_out_free(&m);
    sample_frame(&m, Q_OPENED, 3, "with fd 2");
    CU_ASSERT(ipc_conn_send(&a, &m, f2) == 0);
    ipc_out_free(&m);
    CU_ASSERT(ipc_conn_flush(&a) == 1);

    CU_ASSERT_FATAL(ipc_conn_recv_wait(&b, &msg, 1000) == 1);
    check_sample(&msg, Q_OPENED, 1, "with fd");
    CU_ASSERT(msg.flags & IPC_F_FD);
    CU_ASSERT_FATAL(msg.fd >= 0);
    CU_ASSERT(same_file(msg.fd, f1));
    CU_ASSERT(!same_file(msg.fd, f2));
    CU_ASSERT(fcntl(msg.fd, F_GETFD) & FD_CLOEXEC);
    CU_ASSERT(pread(msg.fd, buf, 3, 0) == 3 && memcmp(buf, "one", 3) == 0);
    close(msg.fd);

    CU_ASSERT_FATAL(ipc_conn_recv_wait(&b, &msg, 1000) == 1);
    check_sample(&msg, Q_COMMITTED, 2, "without");
    CU_ASSERT(!(msg.flags & IPC_F_FD));
    CU_ASSERT_EQUAL(msg.fd, -1);

    CU_ASSERT_FATAL(ipc_conn_recv_wait(&b, &msg, 1000) == 1);
    check_sample(&msg, Q_OPENED, 3, "with fd 2");
    CU_ASSERT_FATAL(msg.fd >= 0);
    CU_ASSERT(same_file(msg.fd, f2));
    /* writes through the passed descriptor land in the same file */
    CU_ASSERT(pwrite(msg.fd, "TWO", 3, 0) == 3);
    CU_ASSERT(pread(f2, buf, 3, 0) == 3 && memcmp(buf, "TWO", 3) == 0);
    close(msg.fd);

    ipc_conn_close(&a);
    ipc_conn_close(&b);
    close(f1);
    close(f2);
}

/* Frames carrying descriptors, each received byte by byte on the other side. */
static void test_fd_passing_split(void)
{
    struct ipc_conn a, b;
    struct ipc_out m;
    struct ipc_msg msg;
    int f = temp_file("x"), got = 0;

    conn_pair(&a, &b);
    for (int i = 0; i < 3; i++) {
        sample_frame(&m, Q_OPENED, (uint32_t)i, "split");
        CU_ASSERT(ipc_conn_send(&a, &m, f) == 0);
        ipc_out_free(&m);
    }
    CU_ASSERT(ipc_conn_flush(&a) == 1);
    /* read in tiny pieces through recvmsg */
    while (got < 3) {
        int r = ipc_conn_recv_wait(&b, &msg, 1000);
        CU_ASSERT_FATAL(r == 1);
        CU_ASSERT_EQUAL(msg.reqid, (uint32_t)got);
        CU_ASSERT_FATAL(msg.fd >= 0);
        CU_ASSERT(same_file(msg.fd, f));
        close(msg.fd);
        got++;
    }
    ipc_conn_close(&a);
    ipc_conn_close(&b);
    close(f);
}

static void test_fd_queue_limit(void)
{
    struct ipc_conn a, b;
    struct ipc_out m, big;
    struct ipc_msg msg;
    size_t max = ARRAY_LEN(a.outfd), got = 0;
    int f = temp_file("x");

    /* a full descriptor queue is flushed to make room */
    conn_pair(&a, &b);
    sample_frame(&m, Q_OPENED, 1, "x");
    for (size_t i = 0; i < max; i++)
        CU_ASSERT(ipc_conn_send(&a, &m, f) == 0);
    CU_ASSERT_EQUAL(a.noutfd, max);
    CU_ASSERT(ipc_conn_send(&a, &m, f) == 0);
    CU_ASSERT(a.noutfd < max);
    CU_ASSERT(ipc_conn_flush(&a) == 1);
    while (got < max + 1 && ipc_conn_recv_wait(&b, &msg, 1000) == 1) {
        CU_ASSERT(msg.fd >= 0 && same_file(msg.fd, f));
        if (msg.fd >= 0)
            close(msg.fd);
        got++;
    }
    CU_ASSERT_EQUAL(got, max + 1);
    ipc_conn_close(&a);
    ipc_conn_close(&b);

    /* ... unless the peer does not read: then ENOBUFS */
    conn_pair(&a, &b);
    char *data = calloc(1, IPC_MAX_BODY - 6);
    CU_ASSERT_FATAL(data != NULL);
    ipc_out_begin(&big, Q_LIST_ITEM, 1);
    ipc_out_bytes(&big, T_RECORD, data, IPC_MAX_BODY - 6);
    CU_ASSERT_FATAL(ipc_out_finish(&big) == 0);
    CU_ASSERT(ipc_conn_send(&a, &big, -1) == 0);
    CU_ASSERT(ipc_conn_flush(&a) == 0); /* the socket buffer is full */
    for (size_t i = 0; i < max; i++)
        CU_ASSERT(ipc_conn_send(&a, &m, f) == 0);
    errno = 0;
    CU_ASSERT(ipc_conn_send(&a, &m, f) == -1);
    CU_ASSERT_EQUAL(errno, ENOBUFS);
    CU_ASSERT(ipc_conn_send(&a, &m, -1) == 0); /* frames without descriptors still queue */
    /* a bad descriptor is refused */
    CU_ASSERT(ipc_conn_send(&b, &m, 987654) == -1);
    ipc_out_free(&big);
    free(data);
    ipc_out_free(&m);
    ipc_conn_close(&a);
    ipc_conn_close(&b);
    close(f);
}

/* A frame that claims a descriptor but arrives without one is an error. */
static void test_fd_flag_without_fd(void)
{
    struct ipc_conn w, r;
    struct ipc_out m;
    struct ipc_msg msg;
    unsigned char *p;

    conn_pair(&w, &r);
    sample_frame(&m, Q_OPENED, 9, "liar");
    p = (unsigned char *)m.b.data + m.b.off;
    p[6] |= IPC_F_FD;
    CU_ASSERT_FATAL(write(w.fd, p, m.b.len) == (ssize_t)m.b.len);
    CU_ASSERT(ipc_conn_recv_wait(&r, &msg, 1000) == -1);
    ipc_out_free(&m);
    ipc_conn_close(&w);
    ipc_conn_close(&r);
}

/* Descriptors received but not yet claimed are closed with the connection. */
static void test_close_releases_fds(void)
{
    struct ipc_conn a, b;
    struct ipc_out m;
    int f = temp_file("x"), held;

    conn_pair(&a, &b);
    /* a frame cut short: its descriptor arrives, the frame never completes */
    sample_frame(&m, Q_OPENED, 1, "x");
    m.b.len -= 3;
    CU_ASSERT(ipc_conn_send(&a, &m, f) == 0);
    CU_ASSERT(ipc_conn_flush(&a) == 1);
    ipc_out_free(&m);
    CU_ASSERT(ipc_conn_read(&b) == 1);
    struct ipc_msg msg;
    CU_ASSERT(ipc_conn_next(&b, &msg) == 0);
    CU_ASSERT_FATAL(b.nfdq == 1);
    held = b.fdq[0];
    CU_ASSERT(fcntl(held, F_GETFD) >= 0);
    ipc_conn_close(&b);
    CU_ASSERT(fcntl(held, F_GETFD) == -1 && errno == EBADF);
    ipc_conn_close(&a);
    close(f);
}

static void test_connect_unix(void)
{
    char dir[] = "/tmp/postern-test-sock-XXXXXX";
    char path[256];
    struct sockaddr_un sun;
    struct ipc_conn c, s;
    struct ipc_out m;
    struct ipc_msg msg;
    int lfd, afd, f = temp_file("spool");

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/control.sock", dir);
    /* nobody listening */
    errno = 0;
    CU_ASSERT(ipc_connect_unix(path) == -1);
    CU_ASSERT_EQUAL(errno, ENOENT);

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(lfd >= 0);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    CU_ASSERT_FATAL(listen(lfd, 4) == 0);

    int cfd = ipc_connect_unix(path);
    CU_ASSERT_FATAL(cfd >= 0);
    CU_ASSERT(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    CU_ASSERT(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CU_ASSERT_FATAL(afd >= 0);
    ipc_conn_init(&c, cfd, proto_limit);
    ipc_conn_init(&s, afd, proto_limit);

    /* the Q_OPEN / Q_OPENED exchange of sendmail, in miniature */
    ipc_out_begin(&m, Q_OPEN, 77);
    CU_ASSERT_FATAL(ipc_out_finish(&m) == 0);
    CU_ASSERT(ipc_conn_send_wait(&c, &m, -1, 1000) == 0);
    ipc_out_free(&m);
    CU_ASSERT_FATAL(ipc_conn_recv_wait(&s, &msg, 1000) == 1);
    CU_ASSERT(msg.type == Q_OPEN && msg.reqid == 77 && msg.len == 0);
    sample_frame(&m, Q_OPENED, 77, "opened");
    CU_ASSERT(ipc_conn_send_wait(&s, &m, f, 1000) == 0);
    ipc_out_free(&m);
    CU_ASSERT_FATAL(ipc_conn_recv_wait(&c, &msg, 1000) == 1);
    check_sample(&msg, Q_OPENED, 77, "opened");
    CU_ASSERT(same_file(msg.fd, f));
    close(msg.fd);

    ipc_conn_close(&c);
    ipc_conn_close(&s);
    close(lfd);
    unlink(path);

    /* a path longer than sun_path */
    char longp[sizeof(sun.sun_path) + 10];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = 0;
    errno = 0;
    CU_ASSERT(ipc_connect_unix(longp) == -1);
    CU_ASSERT_EQUAL(errno, ENAMETOOLONG);
    rmdir(dir);
    close(f);
}

void suite_ipc(void)
{
    CU_pSuite s = CU_add_suite("ipc", NULL, NULL);

    CU_add_test(s, "frame layout", test_build_layout);
    CU_add_test(s, "iterate nested fields", test_iterate_nested);
    CU_add_test(s, "malformed bodies", test_iterate_malformed);
    CU_add_test(s, "typed getters", test_getters);
    CU_add_test(s, "frame header check", test_frame_check);
    CU_add_test(s, "build limits", test_build_limits);
    CU_add_test(s, "frames split at every byte", test_split_every_byte);
    CU_add_test(s, "many frames, one flush", test_send_flush_many);
    CU_add_test(s, "large frame, partial writes", test_large_frame_partial_writes);
    CU_add_test(s, "oversized frames refused", test_conn_refuses_oversized);
    CU_add_test(s, "garbage refused", test_conn_refuses_garbage);
    CU_add_test(s, "timeout and EOF", test_recv_wait_timeout_eof);
    CU_add_test(s, "descriptor passing", test_fd_passing);
    CU_add_test(s, "descriptors on consecutive frames", test_fd_passing_split);
    CU_add_test(s, "descriptor queue limit", test_fd_queue_limit);
    CU_add_test(s, "descriptor flag without descriptor", test_fd_flag_without_fd);
    CU_add_test(s, "close releases descriptors", test_close_releases_fds);
    CU_add_test(s, "connect to a UNIX socket", test_connect_unix);
}
