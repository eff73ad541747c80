/*
 * conncache.h - idle SMTP sessions kept for the next message to the same
 * host: keyed by the peer's address, port, TLS state and credentials, each
 * kept at most smtp_connection_cache_time_limit and used for at most
 * smtp_connection_reuse_count_limit messages.
 */
#ifndef POSTERN_DELIVER_CONNCACHE_H
#define POSTERN_DELIVER_CONNCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "smtpc.h"

#define CC_KEY_MAX 192          /* a UNIX socket path (108) and the rest */

/* One session of the agent; freed by the owner when the engine says closed. */
struct cconn {
    struct smtpc *s;
    void *job;                  /* the job it is delivering, NULL when idle */
    char key[CC_KEY_MAX];
    uint64_t timer;
    int cached;
    struct cconn *prev, *next;         /* the cache's list */
    struct cconn *all_prev, *all_next; /* the owner's list of every session */
};

/* "ip|port|tls|auth": the same text for the same kind of session. */
void cc_key(char *out, size_t outlen, const char *ip, unsigned port, int tls, int auth);

void cc_init(struct evloop *ev, unsigned idle_ms);
/* Keeps an idle session under key (smtpc_quit when its time is up). */
void cc_put(struct cconn *c, const char *key);
/* Takes a reusable session for key out of the cache, or NULL (sessions
 * that went stale on the way are ended). */
struct cconn *cc_take(const char *key);
/* The session is going away: forget it (no-op if not cached). */
void cc_forget(struct cconn *c);
/* Ends every cached session. */
void cc_flush(void);
unsigned cc_count(void);

#endif
