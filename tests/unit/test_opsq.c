/*
 * test_opsq.c - CUnit suite for the queue control parsers: httpget.c (the
 * metrics endpoint's bounded request-head parser), metrics_label (label
 * value escaping), qctl.c (Q_DONE answers as untrusted input) and
 * qclient.c's listing of several records a frame and of a record in
 * T_RECORD_PART slices.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "../../queue-mgr/httpget.h"
#include "../../queue-mgr/metrics.h"
#include "proto.h"
#include "qctl.h"
#include "suites.h"

static enum httpget_result hp(const char *s, char *path, int *head)
{
    return httpget_parse(s, strlen(s), path, 64, head);
}

static void test_httpget(void)
{
    char path[64];
    int head;

    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", path, &head) == HTTPGET_OK);
    CU_ASSERT(strcmp(path, "/metrics") == 0 && head == 0);
    CU_ASSERT(hp("GET /metrics?x=1 HTTP/1.0\n\n", path, &head) == HTTPGET_OK && strcmp(path, "/metrics") == 0);
    CU_ASSERT(hp("HEAD / HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_OK && head == 1);
    CU_ASSERT(hp("\r\nGET / HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_OK);
    /* not complete yet */
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nHost: x\r\n", path, &head) == HTTPGET_MORE);
    CU_ASSERT(hp("", path, &head) == HTTPGET_MORE);
    /* other methods, bodies, junk */
    CU_ASSERT(hp("POST /metrics HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_METHOD);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", path, &head) == HTTPGET_OK);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET metrics HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics HTTP/2.0\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET  /metrics HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /me\x01trics HTTP/1.1\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", path, &head) == HTTPGET_BAD);
    CU_ASSERT(hp("\r\n\r\n", path, &head) == HTTPGET_BAD);
    /* a path longer than the caller's buffer */
    CU_ASSERT(httpget_parse("GET /abcdefgh HTTP/1.1\r\n\r\n", 26, path, 5, &head) == HTTPGET_BAD);
    /* the bound: a head that never ends within HTTPGET_MAX is refused */
    char *big = malloc(HTTPGET_MAX + 10);
    CU_ASSERT_FATAL(big != NULL);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', HTTPGET_MAX + 5);
    CU_ASSERT(httpget_parse(big, HTTPGET_MAX + 10, path, sizeof(path), &head) == HTTPGET_BAD);
    CU_ASSERT(httpget_parse(big, 100, path, sizeof(path), &head) == HTTPGET_MORE);
    /* every prefix of a valid request is MORE, never a crash or OK */
    const char *req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t n = 0; n < strlen(req); n++)
        CU_ASSERT(httpget_parse(req, n, path, sizeof(path), &head) == HTTPGET_MORE);
    /* random bytes: a defined answer each time */
    srand(7);
    for (int k = 0; k < 2000; k++) {
        size_t n = (size_t)(rand() % 200);
        for (size_t i = 0; i < n; i++)
            big[i] = (char)(rand() % 4 == 0 ? '\n' : rand() % 4 == 0 ? '\r' : rand() % 256);
        enum httpget_result r = httpget_parse(big, n, path, sizeof(path), &head);
        CU_ASSERT(r == HTTPGET_MORE || r == HTTPGET_OK || r == HTTPGET_BAD || r == HTTPGET_METHOD);
    }
    free(big);
}

static void test_label(void)
{
    struct buf b;

    buf_init(&b, 1024);
    metrics_label(&b, "a\"b\\c\nd\x01\xc3\xa9");
    CU_ASSERT(b.len == strlen("a\\\"b\\\\c\\nd???") && memcmp(buf_head(&b), "a\\\"b\\\\c\\nd???", b.len) == 0);
    buf_free(&b);
}

static int build_msg(struct ipc_out *o, struct ipc_msg *m)
{
    if (ipc_out_finish(o) < 0)
        return -1;
    memset(m, 0, sizeof(*m));
    m->type = (uint16_t)(((unsigned char)o->b.data[4]) | ((unsigned char)o->b.data[5] << 8));
    m->reqid = (uint32_t)((unsigned char)o->b.data[12] | ((unsigned char)o->b.data[13] << 8) |
                          ((unsigned char)o->b.data[14] << 16) | ((uint32_t)(unsigned char)o->b.data[15] << 24));
    m->body = (const unsigned char *)o->b.data + IPC_HDR_LEN;
    m->len = o->b.len - IPC_HDR_LEN;
    m->fd = -1;
    return 0;
}

static void test_done_parser(void)
{
    struct ipc_out o;
    struct ipc_msg m;
    struct qctl_done d;
    struct qc_reply r;

    ipc_out_begin(&o, Q_DONE, 3);
    ipc_out_u64(&o, T_COUNT, 7);
    ipc_out_u64(&o, T_CTL_MISSING, 2);
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == 0 && d.count == 7 && d.missing == 2);
    CU_ASSERT(qctl_parse_done(&m, 4, &d, &r) == -1);            /* not our request */
    ipc_out_free(&o);
    ipc_out_begin(&o, Q_DONE, 3);                               /* no count */
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, Q_DONE, 3);                               /* a count twice */
    ipc_out_u64(&o, T_COUNT, 1);
    ipc_out_u64(&o, T_COUNT, 1);
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, Q_DONE, 3);                               /* a count of the wrong size */
    ipc_out_str(&o, T_COUNT, "1");
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == -1);
    ipc_out_free(&o);
    ipc_out_begin(&o, Q_ERROR, 3);                              /* a refusal is never a success */
    ipc_out_str(&o, T_CODE, "550 5.7.1");
    ipc_out_str(&o, T_TEXT, "permission denied");
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == -1 && r.type == Q_ERROR && strcmp(r.code, "550 5.7.1") == 0);
    ipc_out_free(&o);
    ipc_out_begin(&o, Q_FLUSHED, 3);                            /* another answer */
    ipc_out_u64(&o, T_COUNT, 1);
    CU_ASSERT_FATAL(build_msg(&o, &m) == 0);
    CU_ASSERT(qctl_parse_done(&m, 3, &d, &r) == -1);
    ipc_out_free(&o);
}

static void test_ids_frame(void)
{
    struct ipc_out o;
    char ids[3][QID_LEN + 1] = { "00HOOV4D9G0L", "00HOOV4D9G0M", "00HOOV4D9G0N" };

    qctl_build_ids(&o, Q_HOLD, 9, ids, 3);
    CU_ASSERT(ipc_out_finish(&o) == 0);
    CU_ASSERT(o.b.len == IPC_HDR_LEN + 3 * (6 + QID_LEN));
    CU_ASSERT(o.b.len - IPC_HDR_LEN <= proto_limit(Q_HOLD));
    ipc_out_free(&o);
    CU_ASSERT((size_t)QCTL_IDS_MAX * (6 + QID_LEN) <= proto_limit(Q_DELETE));
}

void suite_opsq(void)
{
    CU_pSuite s = CU_add_suite("opsq", NULL, NULL);

    CU_add_test(s, "httpget request heads", test_httpget);
    CU_add_test(s, "metrics label escaping", test_label);
    CU_add_test(s, "Q_DONE parser", test_done_parser);
    CU_add_test(s, "id frames fit their limit", test_ids_frame);
}
