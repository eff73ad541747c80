/*
 * test_link.c - CUnit suite for common/link.c against a fake peer served
 * from the same event loop on a UNIX socket in a temporary directory:
 * replies matched by id, a reply to an unknown id drops the link, link-down
 * fails every pending request, cancel sends a late reply to the orphan
 * handler, a request made while the peer is absent waits for it (bounded)
 * and is sent when it appears, or fails at its deadline. Every wait runs
 * the loop until a condition, with a guard timer as the deadline.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"
#include "evwait.h"
#include "ipc.h"
#include "link.h"
#include "proto.h"
#include "suites.h"
#include "unixpeer.h"
#include "util.h"

enum peer_mode { PEER_ECHO, PEER_WRONG_ID, PEER_CLOSE, PEER_SILENT };

static struct evloop *ev;
static char path[128];
static struct unixpeer peer;
static enum peer_mode mode;
static unsigned peer_frames;

struct answer { int called; int got_null; uint16_t type; uint32_t reqid; };
static struct answer ans[4];
static int orphans;

static size_t any_limit(uint16_t type)
{
    (void)type;
    return 1u << 16;
}

static void peer_frame(struct unixpeer *p, const struct ipc_msg *m)
{
    struct ipc_out out;

    peer_frames++;
    if (mode == PEER_CLOSE) {
        unixpeer_close(p);
        return;
    }
    if (mode == PEER_SILENT)
        return;
    ipc_out_begin(&out, (uint16_t)(m->type + 1), mode == PEER_WRONG_ID ? m->reqid + 1000 : m->reqid);
    ipc_out_finish(&out);
    unixpeer_send(p, &out);
    ipc_out_free(&out);
}

static void peer_listen(void)
{
    unixpeer_listen(&peer);
}

static void peer_stop(void)
{
    unixpeer_stop(&peer);
}

static void on_answer(void *arg, const struct ipc_msg *m)
{
    struct answer *a = arg;

    a->called++;
    a->got_null = m == NULL;
    if (m) {
        a->type = m->type;
        a->reqid = m->reqid;
    }
    ev_stop(ev);
}

static void on_orphan(struct link *l, const struct ipc_msg *m)
{
    (void)l, (void)m;
    orphans++;
    ev_stop(ev);
}

static int run_until(int (*cond)(void), uint64_t ms)
{
    return ev_run_until(ev, cond, ms);
}

static struct link *lk;
static int c_ans0(void) { return ans[0].called > 0; }
static int c_ans1(void) { return ans[1].called > 0; }
static int c_up(void) { return link_up(lk); }
static int c_orphan(void) { return orphans > 0; }

static int setup(void)
{
    ev = unixpeer_open(&peer, "s.sock", any_limit, peer_frame);
    if (!ev)
        return -1;
    str_copy(path, peer.path, sizeof(path));
    return 0;
}

static int teardown(void)
{
    unixpeer_free(&peer);
    return 0;
}

static void reset(enum peer_mode m)
{
    memset(ans, 0, sizeof(ans));
    orphans = 0;
    peer_frames = 0;
    mode = m;
}

static int request(uint16_t type, uint64_t wait_ms, struct answer *a)
{
    struct ipc_out m;
    uint32_t id = link_new_id(lk);
    int r;

    ipc_out_begin(&m, type, id);
    r = link_request(lk, &m, -1, id, wait_ms, on_answer, a);
    ipc_out_free(&m);
    return r < 0 ? -1 : (int)id;
}

static void test_reply_by_id(void)
{
    int id;

    reset(PEER_ECHO);
    peer_listen();
    lk = link_new(ev, "peer", path, any_limit);
    CU_ASSERT_FATAL(lk != NULL);
    CU_ASSERT_TRUE(link_up(lk));
    CU_ASSERT_EQUAL(link_generation(lk), 1);
    id = request(Q_OPEN, 0, &ans[0]);
    CU_ASSERT_TRUE(id > 0);
    CU_ASSERT_EQUAL(ans[0].called, 0); /* never from inside link_request */
    CU_ASSERT_EQUAL(link_pending(lk), 1);
    CU_ASSERT_TRUE(run_until(c_ans0, 2000));
    CU_ASSERT_FALSE(ans[0].got_null);
    CU_ASSERT_EQUAL(ans[0].type, Q_OPENED);
    CU_ASSERT_EQUAL(ans[0].reqid, (uint32_t)id);
    CU_ASSERT_EQUAL(link_pending(lk), 0);
    link_free(lk);
    peer_stop();
}

static void test_unknown_id_drops_link(void)
{
    reset(PEER_WRONG_ID);
    peer_listen();
    lk = link_new(ev, "peer", path, any_limit);
    CU_ASSERT_FATAL(lk != NULL);
    CU_ASSERT_TRUE(request(Q_OPEN, 0, &ans[0]) > 0);
    CU_ASSERT_TRUE(request(Q_OPEN, 0, &ans[1]) > 0);
    CU_ASSERT_TRUE(run_until(c_ans1, 2000));
    /* both fail: the link went down under them */
    CU_ASSERT_EQUAL(ans[0].called, 1);
    CU_ASSERT_TRUE(ans[0].got_null);
    CU_ASSERT_EQUAL(ans[1].called, 1);
    CU_ASSERT_TRUE(ans[1].got_null);
    CU_ASSERT_EQUAL(link_pending(lk), 0);
    /* and it comes back, as a new generation */
    CU_ASSERT_TRUE(run_until(c_up, 3000));
    CU_ASSERT_EQUAL(link_generation(lk), 2);
    link_free(lk);
    peer_stop();
}

static void test_peer_close_fails_pending(void)
{
    reset(PEER_CLOSE);
    peer_listen();
    lk = link_new(ev, "peer", path, any_limit);
    CU_ASSERT_FATAL(lk != NULL);
    CU_ASSERT_TRUE(request(Q_COMMIT, 0, &ans[0]) > 0);
    CU_ASSERT_TRUE(run_until(c_ans0, 2000));
    CU_ASSERT_TRUE(ans[0].got_null);
    CU_ASSERT_EQUAL(link_pending(lk), 0);
    link_free(lk);
    peer_stop();
}

static void test_cancel_goes_to_orphan(void)
{
    int id;

    reset(PEER_ECHO);
    peer_listen();
    lk = link_new(ev, "peer", path, any_limit);
    CU_ASSERT_FATAL(lk != NULL);
    link_set_orphan(lk, on_orphan);
    id = request(Q_OPEN, 0, &ans[0]);
    CU_ASSERT_TRUE(id > 0);
    link_cancel(lk, (uint32_t)id);
    CU_ASSERT_TRUE(run_until(c_orphan, 2000));
    CU_ASSERT_EQUAL(orphans, 1);
    CU_ASSERT_EQUAL(ans[0].called, 0);
    CU_ASSERT_TRUE(link_up(lk)); /* a late reply to a cancelled id is no error */
    link_free(lk);
    peer_stop();
}

static void test_held_until_peer_appears(void)
{
    reset(PEER_ECHO);
    lk = link_new(ev, "peer", path, any_limit); /* nobody listens yet */
    CU_ASSERT_FATAL(lk != NULL);
    CU_ASSERT_FALSE(link_up(lk));
    CU_ASSERT_EQUAL(request(Q_OPEN, 0, &ans[1]), -1); /* no wait: refused at once */
    CU_ASSERT_TRUE(request(Q_OPEN, 5000, &ans[0]) > 0);
    CU_ASSERT_EQUAL(link_pending(lk), 1);
    CU_ASSERT_EQUAL(ans[0].called, 0);
    peer_listen();
    CU_ASSERT_TRUE(run_until(c_ans0, 4000));
    CU_ASSERT_FALSE(ans[0].got_null);
    CU_ASSERT_EQUAL(ans[0].type, Q_OPENED);
    CU_ASSERT_EQUAL(peer_frames, 1);
    CU_ASSERT_EQUAL(ans[1].called, 0);
    link_free(lk);
    peer_stop();
}

static void test_held_expires(void)
{
    uint64_t t0;

    reset(PEER_ECHO);
    lk = link_new(ev, "peer", path, any_limit);
    CU_ASSERT_FATAL(lk != NULL);
    t0 = now_ms();
    CU_ASSERT_TRUE(request(Q_OPEN, 200, &ans[0]) > 0);
    CU_ASSERT_TRUE(run_until(c_ans0, 3000));
    CU_ASSERT_TRUE(ans[0].got_null);
    CU_ASSERT_TRUE(now_ms() - t0 >= 200);
    CU_ASSERT_EQUAL(link_pending(lk), 0);
    /* a held request that is cancelled is simply dropped */
    int id = request(Q_OPEN, 200, &ans[1]);
    CU_ASSERT_TRUE(id > 0);
    link_cancel(lk, (uint32_t)id);
    CU_ASSERT_EQUAL(link_pending(lk), 0);
    link_free(lk);
}

void suite_link(void)
{
    CU_pSuite s = CU_add_suite("link", setup, teardown);

    if (!s)
        return;
    CU_add_test(s, "reply matched by id", test_reply_by_id);
    CU_add_test(s, "reply to an unknown id drops the link", test_unknown_id_drops_link);
    CU_add_test(s, "peer closing fails pending requests", test_peer_close_fails_pending);
    CU_add_test(s, "cancelled request's reply goes to the orphan handler", test_cancel_goes_to_orphan);
    CU_add_test(s, "request held until the peer appears", test_held_until_peer_appears);
    CU_add_test(s, "held request fails at its deadline", test_held_expires);
}
