/*
 * test_rpcsrv.c - CUnit suite for the request server (common/rpcsrv.c),
 * served from the suite's own event loop to test clients watched by the
 * same loop: answers at once and later (a late answer to a client that
 * has gone settles to NULL), the peer's credentials, the cut-offs (a
 * descriptor, a type not taken, a malformed frame, unread answers past
 * out_max) and that no frame after one is handed over, a close from
 * on_frame, the client bound, draining the listeners, and rpcsrv_free
 * closing the clients. Waits run the loop until a
 * condition, with a guard timer as the deadline.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"
#include "evwait.h"
#include "ipc.h"
#include "net.h"
#include "rpcsrv.h"
#include "suites.h"
#include "util.h"

#define T_ASK 1                 /* the type the test server takes */
#define T_REPLY 2
#define T_OTHER 3
#define T_BLOB 0x10             /* a field of the answers */
#define WAIT_MS 10000           /* generous: other work shares the machine */
#define NCLIENTS 4

/* What on_frame does with a frame. */
enum mode { ANSWER, LATER, CLOSE, BIG };

struct tclient {
    struct ipc_conn conn;
    int open;                   /* watched, not at EOF */
    unsigned replies;
    uint32_t last_reqid;
    uint16_t last_type;
};

static struct evloop *ev;
static struct rpcsrv *srv;
static char dir[64], path[128];
static struct tclient tc[NCLIENTS];
static enum mode mode;
static unsigned frames;         /* handed to on_frame */
static uint64_t later_id[16];
static unsigned nlater;
static uid_t seen_uid;
static pid_t seen_pid;
static int send_after_close;    /* rpcsrv_send's return after rpcsrv_close in on_frame */

static size_t big_limit(uint16_t type)
{
    (void)type;
    return 1u << 20;
}

static void reply(struct rpc_client *c, uint32_t reqid, size_t size)
{
    static char blob[60000];
    struct ipc_out out;

    ipc_out_begin(&out, T_REPLY, reqid);
    ipc_out_bytes(&out, T_BLOB, blob, size);
    CU_ASSERT_FATAL(ipc_out_finish(&out) == 0);
    CU_ASSERT(rpcsrv_send(c, &out) == 0);
    ipc_out_free(&out);
}

static void on_frame(struct rpc_client *c, const struct ipc_msg *m, void *arg)
{
    CU_ASSERT(arg == &mode);
    CU_ASSERT_EQUAL(m->type, T_ASK);
    frames++;
    seen_uid = rpcsrv_uid(c);
    seen_pid = rpcsrv_pid(c);
    switch (mode) {
    case ANSWER:
        reply(c, m->reqid, 8);
        break;
    case BIG:
        reply(c, m->reqid, 60000);
        break;
    case LATER:
        if (nlater < ARRAY_LEN(later_id))
            later_id[nlater++] = rpcsrv_later(c);
        break;
    case CLOSE: {
        struct ipc_out out;
        rpcsrv_close(c, "closed by the test");
        ipc_out_begin(&out, T_REPLY, m->reqid);
        ipc_out_finish(&out);
        send_after_close = rpcsrv_send(c, &out);
        ipc_out_free(&out);
        break;
    }
    }
    ev_stop(ev);
}

static struct rpcsrv *server(unsigned max_clients, size_t out_max)
{
    static const uint16_t types[] = { T_ASK };
    struct rpcsrv_conf conf = {
        .peer = "test client", .sock = "test socket", .types = types, .ntypes = 1,
        .max_clients = max_clients, .out_max = out_max, .limit = big_limit,
        .on_frame = on_frame, .arg = &mode,
    };
    char err[256];
    int lfd;

    CU_ASSERT_FATAL((srv = rpcsrv_new(ev, &conf)) != NULL);
    lfd = net_listen_unix(path, 0600, err, sizeof(err));
    CU_ASSERT_FATAL(lfd >= 0);
    CU_ASSERT_FATAL(rpcsrv_listen(srv, lfd) == 0);
    return srv;
}

static void tc_io(struct evloop *loop, int fd, uint32_t events, void *arg)
{
    struct tclient *t = arg;
    struct ipc_msg m;
    int r;

    (void)events;
    r = ipc_conn_read(&t->conn);
    while (ipc_conn_next(&t->conn, &m) == 1) {
        t->replies++;
        t->last_reqid = m.reqid;
        t->last_type = m.type;
    }
    if (r < 0) {
        ev_del(loop, fd);
        t->open = 0;
    }
    ev_stop(loop);
}

/* Connects test client i; watched for answers unless watch is 0. */
static void tc_connect(int i, int watch)
{
    int fd = ipc_connect_unix(path);

    CU_ASSERT_FATAL(fd >= 0);
    ipc_conn_init(&tc[i].conn, fd, big_limit);
    tc[i].open = 1;
    if (watch)
        CU_ASSERT_FATAL(ev_add(ev, fd, EPOLLIN, tc_io, &tc[i]) == 0);
}

static void tc_close(int i)
{
    if (tc[i].conn.fd >= 0 && tc[i].open)
        ev_del(ev, tc[i].conn.fd);
    tc[i].open = 0;
    ipc_conn_close(&tc[i].conn);
}

/* Queues a frame of type on client i (with a descriptor when fd >= 0). */
static void tc_queue(int i, uint16_t type, uint32_t reqid, int fd)
{
    struct ipc_out out;

    ipc_out_begin(&out, type, reqid);
    ipc_out_str(&out, T_BLOB, "ask");
    CU_ASSERT_FATAL(ipc_out_finish(&out) == 0);
    CU_ASSERT_FATAL(ipc_conn_send(&tc[i].conn, &out, fd) == 0);
    ipc_out_free(&out);
}

static void tc_flush(int i)
{
    CU_ASSERT_FATAL(ipc_conn_flush(&tc[i].conn) == 1);
}

static int watched;             /* the client the conditions look at */
static unsigned want;
static int have_replies(void) { return tc[watched].replies >= want; }
static int is_closed(void) { return !tc[watched].open; }
static int have_frames(void) { return frames >= want; }
static int clients_are(void) { return rpcsrv_clients(srv) == want; }
static int cut_off(void) { return frames > 0 && rpcsrv_clients(srv) == 0; }

/* The server notices a client's close on its own: the loop is stopped
 * every few milliseconds so that a condition on the server is looked at. */
static uint64_t tick_id;
static void tick(struct evloop *loop, void *arg)
{
    (void)arg;
    ev_stop(loop);
    tick_id = ev_timer(loop, 5, tick, NULL);
}

static int setup(void)
{
    str_copy(dir, "/tmp/postern-rpcsrv.XXXXXX", sizeof(dir));
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    return (ev = ev_new()) ? 0 : -1;
}

static int teardown(void)
{
    unlink(path);
    rmdir(dir);
    ev_free(ev);
    return 0;
}

static void reset(void)
{
    memset(tc, 0, sizeof(tc));
    for (int i = 0; i < NCLIENTS; i++)
        tc[i].conn.fd = -1;
    frames = nlater = 0;
    send_after_close = 0;
    mode = ANSWER;
    watched = 0;
    want = 0;
}

static void finish(void)
{
    for (int i = 0; i < NCLIENTS; i++)
        tc_close(i);
    rpcsrv_free(srv);
    srv = NULL;
    unlink(path);
}

static void test_answer_now(void)
{
    reset();
    server(0, 0);
    tc_connect(0, 1);
    tc_queue(0, T_ASK, 7, -1);
    tc_queue(0, T_ASK, 8, -1);
    tc_flush(0);
    want = 2;
    CU_ASSERT_FATAL(ev_run_until(ev, have_replies, WAIT_MS));
    CU_ASSERT_EQUAL(frames, 2);
    CU_ASSERT_EQUAL(tc[0].last_type, T_REPLY);
    CU_ASSERT_EQUAL(tc[0].last_reqid, 8);
    CU_ASSERT_EQUAL(seen_uid, getuid());
    CU_ASSERT_EQUAL(seen_pid, getpid());
    CU_ASSERT_EQUAL(rpcsrv_clients(srv), 1);
    CU_ASSERT(tc[0].open);
    finish();
}

/* Each refusal cuts the client off, and the frame after it in the same
 * write is never handed over. */
static void refused(void (*queue_bad)(void))
{
    reset();
    server(0, 0);
    tc_connect(0, 1);
    tc_queue(0, T_ASK, 1, -1);
    queue_bad();
    tc_queue(0, T_ASK, 3, -1);
    tc_flush(0);
    CU_ASSERT_FATAL(ev_run_until(ev, is_closed, WAIT_MS));
    CU_ASSERT_EQUAL(frames, 1);
    CU_ASSERT_EQUAL(rpcsrv_clients(srv), 0);
    finish();
}

static void bad_type(void) { tc_queue(0, T_OTHER, 2, -1); }
static void bad_fd(void) { tc_queue(0, T_ASK, 2, tc[0].conn.fd); }
static void bad_frame(void)
{
    struct ipc_out out;

    ipc_out_begin(&out, T_ASK, 2);
    CU_ASSERT_FATAL(ipc_out_finish(&out) == 0);
    memcpy(out.b.data + out.b.off, "XXXX", 4);  /* the magic */
    CU_ASSERT_FATAL(ipc_conn_send(&tc[0].conn, &out, -1) == 0);
    ipc_out_free(&out);
}

static void test_refusals(void)
{
    refused(bad_type);
    refused(bad_fd);
    refused(bad_frame);
}

static void test_close_in_frame(void)
{
    reset();
    server(0, 0);
    mode = CLOSE;
    tc_connect(0, 1);
    tc_queue(0, T_ASK, 1, -1);
    tc_queue(0, T_ASK, 2, -1);
    tc_flush(0);
    CU_ASSERT_FATAL(ev_run_until(ev, is_closed, WAIT_MS));
    CU_ASSERT_EQUAL(frames, 1);
    CU_ASSERT_EQUAL(send_after_close, -1);
    CU_ASSERT_EQUAL(tc[0].replies, 0);
    CU_ASSERT_EQUAL(rpcsrv_clients(srv), 0);
    finish();
}

static void test_later(void)
{
    struct rpc_client *c;

    reset();
    server(0, 0);
    mode = LATER;
    tc_connect(0, 1);
    tc_connect(1, 1);
    tc_queue(0, T_ASK, 10, -1);
    tc_flush(0);
    want = 1;
    CU_ASSERT_FATAL(ev_run_until(ev, have_frames, WAIT_MS));
    tc_queue(1, T_ASK, 20, -1);
    tc_flush(1);
    want = 2;
    CU_ASSERT_FATAL(ev_run_until(ev, have_frames, WAIT_MS));
    CU_ASSERT_FATAL(nlater == 2);
    CU_ASSERT_EQUAL(tc[0].replies, 0);
    /* the answer goes out when it is sent, outside on_frame */
    c = rpcsrv_settle(srv, later_id[0]);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(rpcsrv_pending(c), 0);
    reply(c, 10, 8);
    watched = 0;
    want = 1;
    CU_ASSERT_FATAL(ev_run_until(ev, have_replies, WAIT_MS));
    CU_ASSERT_EQUAL(tc[0].last_reqid, 10);
    /* client 1 goes away before its answer: it settles to NULL */
    tc_close(1);
    want = 1;
    tick_id = ev_timer(ev, 5, tick, NULL);
    CU_ASSERT_FATAL(ev_run_until(ev, clients_are, WAIT_MS));
    ev_timer_cancel(ev, tick_id);
    CU_ASSERT(rpcsrv_settle(srv, later_id[1]) == NULL);
    CU_ASSERT(rpcsrv_settle(srv, later_id[0]) != NULL);  /* client 0 is still there */
    finish();
}

/* A client that does not read is cut off once more than out_max waits. */
static void test_out_max(void)
{
    reset();
    server(0, 256u << 10);
    mode = BIG;
    tc_connect(0, 0);
    for (uint32_t i = 0; i < 64; i++)
        tc_queue(0, T_ASK, i, -1);
    tc_flush(0);
    tick_id = ev_timer(ev, 5, tick, NULL);
    CU_ASSERT_FATAL(ev_run_until(ev, cut_off, WAIT_MS));
    ev_timer_cancel(ev, tick_id);
    CU_ASSERT(frames < 64);
    /* what the socket took is there, then the end */
    {
        struct ipc_msg m;
        unsigned n = 0;
        int r;
        while ((r = ipc_conn_recv_wait(&tc[0].conn, &m, WAIT_MS)) == 1)
            n++;
        CU_ASSERT_EQUAL(r, -1);
        CU_ASSERT(n > 0 && n < frames);
    }
    finish();
}

static void test_max_clients(void)
{
    reset();
    server(2, 0);
    tc_connect(0, 1);
    tc_connect(1, 1);
    tc_queue(0, T_ASK, 1, -1);
    tc_flush(0);
    tc_queue(1, T_ASK, 1, -1);
    tc_flush(1);
    want = 2;
    CU_ASSERT_FATAL(ev_run_until(ev, have_frames, WAIT_MS));
    tc_connect(2, 1);
    watched = 2;
    CU_ASSERT_FATAL(ev_run_until(ev, is_closed, WAIT_MS));
    CU_ASSERT_EQUAL(rpcsrv_clients(srv), 2);
    /* a place freed is taken again */
    tc_close(0);
    tc_close(2);
    want = 1;
    tick_id = ev_timer(ev, 5, tick, NULL);
    CU_ASSERT_FATAL(ev_run_until(ev, clients_are, WAIT_MS));
    ev_timer_cancel(ev, tick_id);
    tc_connect(2, 1);
    tc_queue(2, T_ASK, 5, -1);
    tc_flush(2);
    watched = 2;
    want = 1;
    CU_ASSERT_FATAL(ev_run_until(ev, have_replies, WAIT_MS));
    CU_ASSERT_EQUAL(rpcsrv_clients(srv), 2);
    finish();
}

/* Draining: no new client, the open ones still served; rpcsrv_free
 * closes them. */
static void test_drain_and_free(void)
{
    struct rpc_client *c;
    struct ipc_msg m;
    int fd;

    reset();
    server(0, 0);
    mode = LATER;
    tc_connect(0, 0);
    want = 1;
    tick_id = ev_timer(ev, 5, tick, NULL);
    CU_ASSERT_FATAL(ev_run_until(ev, clients_are, WAIT_MS));
    ev_timer_cancel(ev, tick_id);
    rpcsrv_close_listeners(srv);
    fd = ipc_connect_unix(path);
    CU_ASSERT(fd < 0);
    if (fd >= 0)
        close(fd);
    tc_queue(0, T_ASK, 4, -1);
    tc_flush(0);
    want = 1;
    CU_ASSERT_FATAL(ev_run_until(ev, have_frames, WAIT_MS));
    c = rpcsrv_settle(srv, later_id[0]);
    CU_ASSERT_FATAL(c != NULL);
    reply(c, 4, 8);
    rpcsrv_free(srv);
    srv = NULL;
    CU_ASSERT_EQUAL(ipc_conn_recv_wait(&tc[0].conn, &m, WAIT_MS), 1);
    CU_ASSERT_EQUAL(m.reqid, 4);
    CU_ASSERT_EQUAL(ipc_conn_recv_wait(&tc[0].conn, &m, WAIT_MS), -1);
    finish();
}

void suite_rpcsrv(void)
{
    CU_pSuite s = CU_add_suite("rpcsrv", setup, teardown);

    CU_add_test(s, "answers at once, the peer's credentials", test_answer_now);
    CU_add_test(s, "descriptor, type, framing: cut off, nothing after", test_refusals);
    CU_add_test(s, "a close from on_frame", test_close_in_frame);
    CU_add_test(s, "answers later; a gone client settles to NULL", test_later);
    CU_add_test(s, "unread answers past out_max", test_out_max);
    CU_add_test(s, "the client bound", test_max_clients);
    CU_add_test(s, "draining; free closes the clients", test_drain_and_free);
}
