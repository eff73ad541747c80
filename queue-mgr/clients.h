/*
 * clients.h - queue-mgr's connections: the three listening sockets, who is
 * on the other end (SO_PEERCRED, taken once at accept), reading frames and
 * queueing replies. What a frame means is decided elsewhere: the hand-off
 * (handoff.h) for the smtpd and pickup sockets, the control commands
 * (control.h) for the control socket.
 */
#ifndef POSTERN_QMGR_CLIENTS_H
#define POSTERN_QMGR_CLIENTS_H

#include <stdint.h>
#include <sys/types.h>
#include "evloop.h"
#include "ipc.h"
#include "queueid.h"

/* Which socket a client came in on (the master's LK_* are its listeners). */
enum queue_listener { QL_SMTPD, QL_PICKUP, QL_CONTROL, QL_DELIVER, QL_LOCAL };

struct openfile;
struct ctl_op;

struct client {
    enum queue_listener kind;
    struct ipc_conn conn;
    uint32_t events;                /* what epoll watches now */
    uid_t uid;                      /* from SO_PEERCRED */
    pid_t pid;
    struct openfile *open;          /* hand-off: its open transactions */
    size_t nopen;
    int pending;                    /* hand-off: its commits in a batch */
    int listing;                    /* control: a Q_LIST is being answered */
    uint32_t list_reqid;
    char list_after[QID_LEN + 1];
    unsigned long list_count;
    int64_t list_uid;               /* control: list only this uid's mail, -1 all */
    struct ctl_op *op;              /* control: a command answered in slices */
    int dead;                       /* freed once no commit refers to it */
    struct client *prev, *next;
};

const char *client_kind_name(enum queue_listener kind);

/* Listens on path for kind; smtpd_uid is the only uid (besides root and
 * ours) let in on QL_SMTPD; on QL_DELIVER only peer_uid is (user_deliver,
 * or our own uid when queue-mgr runs unprivileged), on QL_LOCAL only peer_uid
 * (user_local; the local role speaks deliver's protocol). Returns the socket, or
 * -1 with err. */
int clients_listen(struct evloop *ev, enum queue_listener kind, const char *path,
                   uid_t peer_uid, char *err, size_t errlen);
/* Finishes a frame and queues it (and a descriptor, dup'ed); frees m. */
int client_send(struct client *c, struct ipc_out *m, int fd);
void client_error(struct client *c, uint32_t reqid, const char *code, const char *text);
/* Disconnects (logging why, if given); the struct lives on while commits
 * of its own are in a batch. */
void client_close(struct client *c, const char *why);
/* A commit of c has been answered: frees c if it was the last of a dead one. */
void client_release(struct client *c);
/* Writes every client's queued replies. */
void clients_flush(void);
/* Writes what can be written and frees every client. */
void clients_close_all(void);

#endif
