/*
 * limits.h - the bookkeeping behind smtpd's limits against abuse: who is
 * connected how often, how fast clients connect, how fast authenticated
 * users send, and which client IPs recently passed the greet pause.
 *
 * Two bounded tables of fixed size (one keyed by client IP, one by
 * authenticated user), each entry with the counters its kind needs. Pure
 * logic: no I/O, no clock (every call takes `now` in milliseconds), no
 * logging, so the unit tests drive it alone. Entries that hold an open
 * connection are never evicted; the others are kept in least-recently-used
 * order and are the ones reused when the table is full, and the periodic
 * sweep frees those whose windows have all expired. Memory never grows
 * after lim_table_init, whatever the number of distinct IPs or users.
 *
 * Each smtpd worker process keeps its own tables (see postern.conf.example:
 * a limit is per smtpd process).
 */
#ifndef POSTERN_SMTPD_LIMITS_H
#define POSTERN_SMTPD_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LIM_KEY_LEN 32              /* IP: family + 16 bytes; user: SHA-256 of the name */
#define LIM_WINDOWS 2               /* rate windows an entry keeps */

/* Window indexes: an IP entry counts connections in window 0; a user
 * entry counts messages in 0 and recipients in 1. */
enum { LIM_W_CONN = 0, LIM_W_MSG = 0, LIM_W_RCPT = 1 };

struct lim_entry {
    unsigned char key[LIM_KEY_LEN];
    uint32_t hnext;                 /* hash chain (index + 1, 0 = end) */
    uint32_t lprev, lnext;          /* LRU list of idle entries (index + 1) */
    uint32_t hash;
    unsigned used : 1, in_lru : 1;  /* in_lru: idle (no connection) */
    unsigned active;                /* open connections (IP entries) */
    uint64_t last;                  /* last touched, ms */
    uint64_t w_start[LIM_WINDOWS];  /* window began, ms */
    unsigned w_count[LIM_WINDOWS];  /* events in the window */
    uint64_t pass_until;            /* greet pause passed: skip it until then */
};

struct lim_table {
    struct lim_entry *e;
    uint32_t *bucket;               /* index + 1 of the first entry, 0 = none */
    uint32_t cap, nbuckets, used;
    uint32_t lru_head, lru_tail;    /* most / least recently idle */
    uint32_t free_head;             /* unused entries, chained by hnext */
    uint64_t keep_ms;               /* an idle entry expires after this */
    uint64_t evictions;             /* idle entries reused while still fresh */
};

/* cap entries (at least 16); keep_ms: how long an idle entry is worth
 * keeping (the longest any of its counters matters: a rate window, a
 * greet-pause pass). -1 when out of memory. */
int lim_table_init(struct lim_table *t, uint32_t cap, uint64_t keep_ms);
void lim_table_free(struct lim_table *t);

/* The entry for key, made if missing (reusing the least recently used
 * idle entry when full). NULL only when every entry holds a connection. */
struct lim_entry *lim_get(struct lim_table *t, const unsigned char key[LIM_KEY_LEN], uint64_t now);
/* The entry for key, or NULL; never makes one. */
struct lim_entry *lim_find(struct lim_table *t, const unsigned char key[LIM_KEY_LEN]);

/* Connection bookkeeping on an IP entry: lim_acquire makes it active (kept
 * out of eviction) and counts one more; lim_release undoes it. */
void lim_acquire(struct lim_table *t, struct lim_entry *e, uint64_t now);
void lim_release(struct lim_table *t, struct lim_entry *e, uint64_t now);

/* Counts one event in window w (window_ms long, a fixed window that starts
 * at the first event after the last one ended) and returns the count in
 * the window, this event included. */
unsigned lim_rate(struct lim_entry *e, int w, uint64_t window_ms, uint64_t now);

/* Frees idle entries untouched for keep_ms; returns how many. */
unsigned lim_expire(struct lim_table *t, uint64_t now);

/* Keys. */
void lim_key_ip(const struct sockaddr *sa, unsigned char key[LIM_KEY_LEN]);
void lim_key_user(const char *user, unsigned char key[LIM_KEY_LEN]);

#endif
