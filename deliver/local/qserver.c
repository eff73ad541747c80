/*
 * qserver.c - the quota server (qserver.h).
 *
 * Every L_QUOTA is validated as if it came from the network (quotaproto.c);
 * a frame that breaks the framing, carries a descriptor or is of another
 * type cuts the client off (the socket and its clients are rpcsrv.c's). Must never turn a key into a path but through
 * maps_path_component(), never create a Maildir or write anything but a
 * recalculated maildirsize, and never hold the event loop for long: a
 * recalculation here counts at most QSRV_SCAN_MAX names and answers
 * QUOTA_TEMPFAIL beyond (smtpd accepts, delivery decides and recounts).
 */
#include "qserver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "quota.h"
#include "rpcsrv.h"
#include "util.h"

static struct rpcsrv *srv;
static int mbox_fd = -1;
static struct mapdb *map;

void qsrv_answer(struct mapdb *db, int root_fd, const char *key, uint64_t size, time_t now,
                 struct quota_answer *a)
{
    struct mapdb_quota q;
    struct mdq_usage u = { 0, 0 };
    char comp[MAPDB_KEY_MAX + 8];
    int r, md;

    memset(a, 0, sizeof(*a));
    if ((r = mapdb_quota(db, key, &q)) < 0) {
        a->verdict = QUOTA_TEMPFAIL;
        return;
    }
    if (r == 0 || maps_path_component(key, comp, sizeof(comp)) < 0) {
        a->verdict = QUOTA_NONE;
        return;
    }
    a->limit_bytes = q.bytes;
    a->limit_msgs = q.msgs;
    md = mdq_open_maildir(root_fd, comp);
    if (md < 0 && errno != ENOENT) {
        a->verdict = QUOTA_TEMPFAIL;
        return;
    }
    if (md >= 0) {
        r = mdq_usage(md, &q, now, QSRV_SCAN_MAX, &u);
        close(md);
        if (r < 0) {
            a->verdict = QUOTA_TEMPFAIL;
            return;
        }
    }
    /* no Maildir yet: nothing used */
    a->used_bytes = u.bytes;
    a->used_msgs = u.msgs;
    a->verdict = mdq_verdict(&q, &u, size);
}

static void handle_ask(struct rpc_client *c, const struct ipc_msg *m, void *arg)
{
    struct quota_ask ask;
    struct quota_answer a;
    struct ipc_out out;
    char shown[MAPDB_KEY_MAX * 4];

    (void)arg;
    if (quotap_parse_ask(m, &ask) < 0) {
        log_warning("quota client pid %ld: malformed L_QUOTA", (long)rpcsrv_pid(c));
        memset(&a, 0, sizeof(a));
        a.verdict = QUOTA_TEMPFAIL;
    } else {
        qsrv_answer(map, mbox_fd, ask.key, ask.size, time(NULL), &a);
        if (a.verdict == QUOTA_TEMPFAIL) {
            log_sanitize(ask.key, strlen(ask.key), shown, sizeof(shown));
            log_warning("quota of %s: the map or maildirsize cannot be read now: answered TEMPFAIL", shown);
        }
    }
    if (quotap_build_answer(&out, m->reqid, &a) == 0 && rpcsrv_send(c, &out) < 0)
        log_warning("quota client pid %ld: cannot queue an answer", (long)rpcsrv_pid(c));
    ipc_out_free(&out);
}

int qsrv_start(struct evloop *loop, int lfd, const uid_t *peers, size_t npeers, struct mapdb *db, int root_fd,
               char *err, size_t errlen)
{
    static const uint16_t types[] = { L_QUOTA };
    struct rpcsrv_conf conf = {
        .peer = "quota client", .sock = "quota socket",
        .types = types, .ntypes = ARRAY_LEN(types),
        .max_clients = QSRV_CLIENTS_MAX, .out_max = QSRV_OUT_MAX,
        .allowed = peers, .nallowed = npeers,
        .on_frame = handle_ask,
    };

    map = db;
    mbox_fd = root_fd;
    if (!(srv = rpcsrv_new(loop, &conf)) || rpcsrv_listen(srv, lfd) < 0) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        rpcsrv_free(srv);
        srv = NULL;
        return -1;
    }
    return 0;
}

void qsrv_stop(void)
{
    rpcsrv_free(srv);
    srv = NULL;
}
