/*
 * server.c - starts and stops queue-mgr's service (server.h): the three
 * listening sockets, the hand-off with its batcher and committer, the
 * listing and the scheduler's timers. Wiring only: what a frame means is
 * in handoff.c and control.c, how a batch becomes durable in batcher.c and
 * committer.c (records into LMDB in one transaction, then one syncfs for
 * the batch's spool files and the index's meta page, then the replies).
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "clients.h"
#include "control.h"
#include "handoff.h"
#include "listing.h"
#include "metrics.h"
#include "qops.h"
#include "paths.h"
#include "privsep.h"
#include "scheduler.h"
#include "util.h"

static struct evloop *ev;
static int lfd[5] = { -1, -1, -1, -1, -1 };

/* Unprivileged (tests, a user's own instance) nobody else makes the
 * deliver jail's queue directory: make it. As root it is the master's. */
static void deliver_dir(const char *run_dir)
{
    char p[4096];

    if (priv_is_root() || geteuid() == 0)
        return;
    snprintf(p, sizeof(p), "%s/%s", run_dir, SOCK_DELIVER_JAIL);
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return;
    snprintf(p, sizeof(p), "%s/%s", run_dir, SOCK_DELIVER_JAIL "/queue");
    mkdir(p, 0755);
}

int server_start(struct evloop *loop, const struct config *conf, struct qstore *q,
                 uid_t smtpd_account, uid_t deliver_account, uid_t local_account, char *err, size_t errlen)
{
    static const struct { enum queue_listener kind; const char *path; } socks[] = {
        { QL_SMTPD, SOCK_QUEUE_SMTPD },
        { QL_PICKUP, SOCK_QUEUE_PICKUP },
        { QL_CONTROL, SOCK_QUEUE_CONTROL },
        { QL_DELIVER, SOCK_QUEUE_DELIVER },
        { QL_LOCAL, SOCK_QUEUE_LOCAL },
    };
    char path[4096];

    ev = loop;
    listing_init(q);
    qops_init(loop, q);
    control_set_config(conf);
    if (metrics_start(loop, conf, q, err, errlen) < 0)
        return -1;
    if (handoff_start(loop, conf, q, NULL) < 0) {
        snprintf(err, errlen, "cannot start the commit threads: %s", strerror(errno));
        return -1;
    }
    deliver_dir(conf->run_dir);
    for (size_t i = 0; i < ARRAY_LEN(socks); i++) {
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", conf->run_dir, socks[i].path) >= sizeof(path)) {
            snprintf(err, errlen, "run_dir too long");
            return -1;
        }
        lfd[i] = clients_listen(loop, socks[i].kind, path,
                                socks[i].kind == QL_DELIVER ? deliver_account :
                                socks[i].kind == QL_LOCAL ? local_account : smtpd_account, err, errlen);
        if (lfd[i] < 0)
            return -1;
    }
    scheduler_start(loop, q, conf);
    return bounce_start(loop, q, conf, err, errlen);
}

void server_set_config(const struct config *conf)
{
    handoff_set_config(conf);
    scheduler_set_config(conf);
    control_set_config(conf);
    bounce_set_config(conf);
}

void server_stop(void)
{
    for (size_t i = 0; i < ARRAY_LEN(lfd); i++) {
        if (lfd[i] >= 0) {
            ev_del(ev, lfd[i]);
            close(lfd[i]);
            lfd[i] = -1;
        }
    }
    scheduler_stop();
    metrics_stop();
    bounce_stop();
    /* The committer finishes the batches in flight and what is collected;
     * their answers are queued, then written as far as the sockets take. */
    handoff_stop();
    clients_close_all();
}
