/*
 * test_handoff.c - CUnit suite for queue-mgr's hand-off (queue-mgr/
 * handoff.c, clients.c) driven through common/qclient's blocking client
 * from a thread, against real sockets and spool files in a mkdtemp()
 * directory, with the committer's stages faked: on the pickup socket
 * Q_OPENED carries no descriptor and the streamed content lands after
 * queue-mgr's Received: line; a stream past max_message_size is refused
 * 552 5.3.4 at commit and its file removed; the smtpd socket still passes
 * a descriptor; Q_DATA on the smtpd socket disconnects; after a failed
 * sync, commits and new opens are refused 451; qclient's parser refuses
 * replies that do not answer the request. No sleeps: the loop runs
 * until the client thread is done, with a deadline.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../queue-mgr/clients.h"
#include "../../queue-mgr/handoff.h"
#include "../../queue-mgr/spool.h"
#include "config.h"
#include "proto.h"
#include "qclient.h"
#include "suites.h"
#include "util.h"

static char ho_dir[64];
static struct config ho_cfg;
static struct evloop *ho_ev;
static int ho_lfd[2] = { -1, -1 };
static volatile int ho_sync_fail;

static int ho_index(void *arg, const struct qstore_item *items, size_t n, char *err, size_t errlen)
{
    (void)arg, (void)items, (void)n, (void)err, (void)errlen;
    return 0;
}

static void ho_unindex(void *arg, const struct qstore_item *items, size_t n)
{
    (void)arg, (void)items, (void)n;
}

static int ho_sync(void *arg)
{
    (void)arg;
    if (__atomic_load_n(&ho_sync_fail, __ATOMIC_SEQ_CST)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static int ho_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void ho_start(uint64_t max_size)
{
    struct commit_ops ops = { .index = ho_index, .unindex = ho_unindex, .sync = ho_sync };
    char err[512], path[256];

    str_copy(ho_dir, "/tmp/postern-handoff-XXXXXX", sizeof(ho_dir));
    CU_ASSERT_FATAL(mkdtemp(ho_dir) != NULL);
    config_defaults(&ho_cfg);
    str_copy(ho_cfg.hostname, "mx.test.example", sizeof(ho_cfg.hostname));
    str_copy(ho_cfg.run_dir, ho_dir, sizeof(ho_cfg.run_dir));
    ho_cfg.max_message_size = max_size;
    ho_sync_fail = 0;
    qid_init(NULL);
    CU_ASSERT_FATAL(spool_init(ho_dir, err, sizeof(err)) == 0);
    ho_ev = ev_new();
    CU_ASSERT_FATAL(ho_ev != NULL);
    CU_ASSERT_FATAL(handoff_start(ho_ev, &ho_cfg, NULL, &ops) == 0);
    snprintf(path, sizeof(path), "%s/pickup.sock", ho_dir);
    ho_lfd[0] = clients_listen(ho_ev, QL_PICKUP, path, getuid(), err, sizeof(err));
    snprintf(path, sizeof(path), "%s/smtpd.sock", ho_dir);
    ho_lfd[1] = clients_listen(ho_ev, QL_SMTPD, path, getuid(), err, sizeof(err));
    CU_ASSERT_FATAL(ho_lfd[0] >= 0 && ho_lfd[1] >= 0);
}

static void ho_finish(void)
{
    for (int i = 0; i < 2; i++) {
        ev_del(ho_ev, ho_lfd[i]);
        close(ho_lfd[i]);
        ho_lfd[i] = -1;
    }
    handoff_stop();
    clients_close_all();
    ev_free(ho_ev);
    ho_ev = NULL;
    config_free(&ho_cfg);
    nftw(ho_dir, ho_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the client thread and the loop ---- */

struct ho_job {
    void (*fn)(struct ho_job *);
    const char *sock;
    char qid[QID_LEN + 1];
    int fd;
    enum qc_status open_st, data_st, commit_st, reopen_st;
    char code[16];
    int done;
};

static void *ho_thread(void *arg)
{
    struct ho_job *j = arg;

    j->fn(j);
    __atomic_store_n(&j->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static struct ho_job *ho_cur;
static uint64_t ho_deadline;

static void ho_tick(struct evloop *ev, void *arg)
{
    (void)arg;
    if (__atomic_load_n(&ho_cur->done, __ATOMIC_SEQ_CST) || now_ms() > ho_deadline)
        ev_stop(ev);
    else
        ev_timer(ev, 1, ho_tick, NULL);
}

/* Runs j->fn on a thread while the event loop serves it. */
static void ho_run(struct ho_job *j)
{
    pthread_t t;

    j->done = 0;
    ho_cur = j;
    ho_deadline = now_ms() + 20000;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, ho_thread, j) == 0);
    ev_timer(ho_ev, 0, ho_tick, NULL);
    ev_run(ho_ev);
    pthread_join(t, NULL);
    CU_ASSERT(j->done);
}

static struct qrec *ho_envelope(struct qrec *r, const char *qid)
{
    qrec_init(r);
    str_copy(r->qid, qid, sizeof(r->qid));
    str_copy(r->sender, "user@test.example", sizeof(r->sender));
    qrec_add_rcpt(r, "rcpt@test.example");
    return r;
}

#define HO_BODY "Subject: t\r\n\r\nhello\r\n"

/* open, stream `size` bytes (HO_BODY first, then filler), commit */
static size_t ho_stream_size;
static void ho_send(struct ho_job *j)
{
    struct qc_conn c;
    struct qrec r;
    static char fill[8192];

    j->fd = -1;
    if (qc_connect(&c, ho_dir, j->sock, 5000) != QC_OK) {
        j->open_st = QC_DOWN;
        return;
    }
    j->open_st = qc_open(&c, j->qid, &j->fd);
    if (j->open_st != QC_OK)
        goto out;
    if (j->fd >= 0)
        j->data_st = write_all(j->fd, HO_BODY, strlen(HO_BODY)) == 0 ? QC_OK : QC_LOST;
    else
        j->data_st = qc_data(&c, j->qid, HO_BODY, strlen(HO_BODY));
    memset(fill, 'x', sizeof(fill));
    for (size_t sent = strlen(HO_BODY); j->data_st == QC_OK && sent < ho_stream_size;) {
        size_t k = ho_stream_size - sent < sizeof(fill) ? ho_stream_size - sent : sizeof(fill);
        j->data_st = qc_data(&c, j->qid, fill, k);
        sent += k;
    }
    j->commit_st = qc_commit(&c, ho_envelope(&r, j->qid));
    qrec_free(&r);
    str_copy(j->code, c.last.code, sizeof(j->code));
    char again[QID_LEN + 1];
    int fd2 = -1;
    j->reopen_st = qc_open(&c, again, &fd2);
    if (fd2 >= 0)
        close(fd2);
out:
    qc_close(&c);
}

static int64_t ho_file_size(const char *qid, char *head, size_t headlen)
{
    char path[256];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "%s/msg/%s", ho_dir, qid);
    if (stat(path, &st) < 0)
        return -1;
    if (head && (fd = open(path, O_RDONLY)) >= 0) {
        ssize_t n = read(fd, head, headlen - 1);
        head[n > 0 ? n : 0] = 0;
        close(fd);
    }
    return st.st_size;
}

static void test_ho_pickup_streams_without_descriptor(void)
{
    struct ho_job j = { .fn = ho_send, .sock = "pickup.sock" };
    char head[4096];

    ho_start(1 << 20);
    ho_stream_size = 0;
    ho_run(&j);
    CU_ASSERT(j.open_st == QC_OK);
    CU_ASSERT(j.fd == -1);                      /* no descriptor for a local user */
    CU_ASSERT(j.data_st == QC_OK);
    CU_ASSERT(j.commit_st == QC_OK);
    CU_ASSERT(ho_file_size(j.qid, head, sizeof(head)) > (int64_t)strlen(HO_BODY));
    CU_ASSERT(strncmp(head, "Received: by mx.test.example (Postern, from userid ", 51) == 0);
    CU_ASSERT(strstr(head, "\r\n" HO_BODY) != NULL);
    ho_finish();
}

static void test_ho_pickup_over_size_552(void)
{
    struct ho_job j = { .fn = ho_send, .sock = "pickup.sock" };

    ho_start(10000);
    ho_stream_size = 30000;
    ho_run(&j);
    CU_ASSERT(j.open_st == QC_OK);
    CU_ASSERT(j.data_st == QC_OK);              /* no answer while streaming */
    CU_ASSERT(j.commit_st == QC_REFUSED);
    CU_ASSERT(strcmp(j.code, "552 5.3.4") == 0);
    CU_ASSERT(ho_file_size(j.qid, NULL, 0) == -1);  /* removed at once */
    ho_finish();
}

static void test_ho_smtpd_gets_descriptor(void)
{
    struct ho_job j = { .fn = ho_send, .sock = "smtpd.sock" };

    ho_start(1 << 20);
    ho_stream_size = 0;
    ho_run(&j);
    CU_ASSERT(j.open_st == QC_OK);
    CU_ASSERT(j.fd >= 0);
    CU_ASSERT(j.commit_st == QC_OK);
    CU_ASSERT(ho_file_size(j.qid, NULL, 0) == (int64_t)strlen(HO_BODY));
    if (j.fd >= 0)
        close(j.fd);
    ho_finish();
}

/* Q_DATA is for pickup only: an smtpd client sending it is disconnected. */
static void ho_data_on_smtpd(struct ho_job *j)
{
    struct qc_conn c;
    struct qrec r;

    if (qc_connect(&c, ho_dir, "smtpd.sock", 5000) != QC_OK)
        return;
    j->open_st = qc_open(&c, j->qid, &j->fd);
    qc_data(&c, j->qid, "x", 1);
    j->commit_st = qc_commit(&c, ho_envelope(&r, j->qid));
    qrec_free(&r);
    qc_close(&c);
}

static void test_ho_data_on_smtpd_socket_disconnects(void)
{
    struct ho_job j = { .fn = ho_data_on_smtpd, .fd = -1 };

    ho_start(1 << 20);
    ho_run(&j);
    CU_ASSERT(j.open_st == QC_OK);
    CU_ASSERT(j.commit_st == QC_LOST);
    CU_ASSERT(ho_file_size(j.qid, NULL, 0) == -1);
    if (j.fd >= 0)
        close(j.fd);
    ho_finish();
}

static void test_ho_sync_failure_refuses_451(void)
{
    struct ho_job j = { .fn = ho_send, .sock = "pickup.sock" };

    ho_start(1 << 20);
    ho_stream_size = 0;
    ho_sync_fail = 1;
    ho_run(&j);
    CU_ASSERT(j.commit_st == QC_REFUSED);
    CU_ASSERT(strcmp(j.code, "451 4.3.0") == 0);
    CU_ASSERT(j.reopen_st == QC_REFUSED);       /* no new transaction meanwhile */
    CU_ASSERT(ho_file_size(j.qid, NULL, 0) == -1);
    ho_finish();
}

/* ---- qclient's reply parser: replies are untrusted too ---- */

static int ho_parse(struct ipc_out *o, uint32_t reqid, uint16_t want, struct qc_reply *r)
{
    struct ipc_msg m;
    int rc;

    CU_ASSERT_FATAL(ipc_out_finish(o) == 0);
    memset(&m, 0, sizeof(m));
    m.type = (uint16_t)(buf_head(&o->b)[4] | buf_head(&o->b)[5] << 8);
    m.reqid = 7;
    m.body = (const unsigned char *)buf_head(&o->b) + IPC_HDR_LEN;
    m.len = o->b.len - IPC_HDR_LEN;
    m.fd = -1;
    rc = qc_parse_reply(&m, reqid, want, r);
    ipc_out_free(o);
    return rc;
}

static void test_ho_qclient_parser(void)
{
    struct ipc_out o;
    struct qc_reply r;

    ipc_out_begin(&o, Q_OPENED, 7);
    ipc_out_str(&o, T_QID, "00HOOQUY0X8M");
    CU_ASSERT(ho_parse(&o, 7, Q_OPENED, &r) == 0 && strcmp(r.qid, "00HOOQUY0X8M") == 0);
    ipc_out_begin(&o, Q_OPENED, 7);
    ipc_out_str(&o, T_QID, "00HOOQUY0X8M");
    CU_ASSERT(ho_parse(&o, 8, Q_OPENED, &r) == -1);         /* another request's answer */
    ipc_out_begin(&o, Q_OPENED, 7);
    ipc_out_str(&o, T_QID, "../../etc/x");
    CU_ASSERT(ho_parse(&o, 7, Q_OPENED, &r) == -1);         /* not a queue id */
    ipc_out_begin(&o, Q_COMMITTED, 7);
    CU_ASSERT(ho_parse(&o, 7, Q_COMMITTED, &r) == -1);      /* committed what? */
    ipc_out_begin(&o, Q_COMMITTED, 7);
    ipc_out_str(&o, T_QID, "00HOOQUY0X8M");
    CU_ASSERT(ho_parse(&o, 7, Q_OPENED, &r) == -1);         /* not what was asked */
    ipc_out_begin(&o, Q_ERROR, 7);
    ipc_out_str(&o, T_CODE, "250 2.0.0");
    ipc_out_str(&o, T_TEXT, "fine");
    CU_ASSERT(ho_parse(&o, 7, Q_COMMITTED, &r) == 0 && r.type == Q_ERROR &&
              strcmp(r.code, "451 4.3.0") == 0);            /* an error is never a success */
    ipc_out_begin(&o, Q_ERROR, 7);
    ipc_out_str(&o, T_CODE, "552 5.3.4");
    CU_ASSERT(ho_parse(&o, 7, Q_COMMITTED, &r) == 0 && strcmp(r.code, "552 5.3.4") == 0 && r.text[0]);
    ipc_out_begin(&o, Q_LIST_ITEM, 7);
    ipc_out_bytes(&o, T_RECORD, "a", 1);
    ipc_out_bytes(&o, T_RECORD, "b", 1);
    CU_ASSERT(ho_parse(&o, 7, Q_LIST_ITEM, &r) == 0);       /* several records a frame */
    ipc_out_begin(&o, Q_LIST_ITEM, 7);
    ipc_out_u64(&o, T_ACTIVE, 1);
    CU_ASSERT(ho_parse(&o, 7, Q_LIST_ITEM, &r) == -1);      /* but at least one */
    ipc_out_begin(&o, Q_LIST_END, 7);
    ipc_out_u64(&o, T_COUNT, 3);
    CU_ASSERT(ho_parse(&o, 7, Q_LIST_ITEM, &r) == 0 && r.type == Q_LIST_END && r.count == 3);
}

void suite_handoff(void)
{
    CU_pSuite s = CU_add_suite("handoff", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "pickup streams, no descriptor", test_ho_pickup_streams_without_descriptor);
    CU_add_test(s, "pickup over max_message_size: 552", test_ho_pickup_over_size_552);
    CU_add_test(s, "smtpd socket passes a descriptor", test_ho_smtpd_gets_descriptor);
    CU_add_test(s, "Q_DATA on the smtpd socket disconnects", test_ho_data_on_smtpd_socket_disconnects);
    CU_add_test(s, "after a failed sync: 451, and no new open", test_ho_sync_failure_refuses_451);
    CU_add_test(s, "qclient reply parser", test_ho_qclient_parser);
}
