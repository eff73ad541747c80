/*
 * limits.c - the bounded tables behind smtpd's limits (limits.h).
 *
 * A fixed pool of entries, hash chains over it, and a doubly linked list
 * of the idle entries (no open connection) in the order they became idle
 * or were last touched. Must never allocate after lim_table_init, never
 * evict an entry that holds a connection (its count would be lost and the
 * release would hit another client), and never read a clock or do I/O:
 * the caller passes the time.
 */
#include "limits.h"

#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static uint32_t hash_seed;

static uint32_t key_hash(const unsigned char *k)
{
    uint32_t h = 2166136261u ^ hash_seed;

    for (size_t i = 0; i < LIM_KEY_LEN; i++) {
        h ^= k[i];
        h *= 16777619u;
    }
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

int lim_table_init(struct lim_table *t, uint32_t cap, uint64_t keep_ms)
{
    memset(t, 0, sizeof(*t));
    if (cap < 16)
        cap = 16;
    if (cap > (1u << 24))
        cap = 1u << 24;
    if (!hash_seed && getrandom(&hash_seed, sizeof(hash_seed), GRND_NONBLOCK) != sizeof(hash_seed))
        hash_seed = 0x9e3779b9u;
    t->nbuckets = 16;
    while (t->nbuckets < cap)
        t->nbuckets <<= 1;
    t->e = calloc(cap, sizeof(*t->e));
    t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
    if (!t->e || !t->bucket) {
        lim_table_free(t);
        return -1;
    }
    t->cap = cap;
    t->keep_ms = keep_ms;
    for (uint32_t i = cap; i > 0; i--) {
        t->e[i - 1].hnext = t->free_head;
        t->free_head = i;
    }
    return 0;
}

void lim_table_free(struct lim_table *t)
{
    free(t->e);
    free(t->bucket);
    memset(t, 0, sizeof(*t));
}

#define IDX(p) ((uint32_t)((p) - t->e) + 1)
#define ENT(i) (&t->e[(i) - 1])

static void lru_unlink(struct lim_table *t, struct lim_entry *e)
{
    if (!e->in_lru)
        return;
    if (e->lprev)
        ENT(e->lprev)->lnext = e->lnext;
    else
        t->lru_head = e->lnext;
    if (e->lnext)
        ENT(e->lnext)->lprev = e->lprev;
    else
        t->lru_tail = e->lprev;
    e->lprev = e->lnext = 0;
    e->in_lru = 0;
}

/* At the head: the most recently used end. */
static void lru_push(struct lim_table *t, struct lim_entry *e)
{
    e->lprev = 0;
    e->lnext = t->lru_head;
    if (t->lru_head)
        ENT(t->lru_head)->lprev = IDX(e);
    else
        t->lru_tail = IDX(e);
    t->lru_head = IDX(e);
    e->in_lru = 1;
}

static void chain_unlink(struct lim_table *t, struct lim_entry *e)
{
    uint32_t *p = &t->bucket[e->hash & (t->nbuckets - 1)];

    while (*p && *p != IDX(e))
        p = &ENT(*p)->hnext;
    if (*p)
        *p = e->hnext;
    e->hnext = 0;
}

static void entry_free(struct lim_table *t, struct lim_entry *e)
{
    lru_unlink(t, e);
    chain_unlink(t, e);
    memset(e, 0, sizeof(*e));
    e->hnext = t->free_head;
    t->free_head = IDX(e);
    t->used--;
}

struct lim_entry *lim_find(struct lim_table *t, const unsigned char key[LIM_KEY_LEN])
{
    uint32_t h = key_hash(key);

    for (uint32_t i = t->bucket[h & (t->nbuckets - 1)]; i; i = ENT(i)->hnext) {
        struct lim_entry *e = ENT(i);
        if (e->hash == h && memcmp(e->key, key, LIM_KEY_LEN) == 0)
            return e;
    }
    return NULL;
}

/* A free slot: from the free list while it has one, else the least
 * recently used idle entry. */
static struct lim_entry *slot(struct lim_table *t)
{
    struct lim_entry *e;

    if (!t->free_head) {
        if (!t->lru_tail)
            return NULL;
        t->evictions++;
        entry_free(t, ENT(t->lru_tail));
    }
    e = ENT(t->free_head);
    t->free_head = e->hnext;
    e->hnext = 0;
    return e;
}

struct lim_entry *lim_get(struct lim_table *t, const unsigned char key[LIM_KEY_LEN], uint64_t now)
{
    struct lim_entry *e = lim_find(t, key);
    uint32_t b;

    if (e) {
        e->last = now;
        if (e->in_lru) {
            lru_unlink(t, e);
            lru_push(t, e);
        }
        return e;
    }
    e = slot(t);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, LIM_KEY_LEN);
    e->hash = key_hash(key);
    e->used = 1;
    e->last = now;
    b = e->hash & (t->nbuckets - 1);
    e->hnext = t->bucket[b];
    t->bucket[b] = IDX(e);
    t->used++;
    lru_push(t, e);
    return e;
}

void lim_acquire(struct lim_table *t, struct lim_entry *e, uint64_t now)
{
    lru_unlink(t, e);
    e->active++;
    e->last = now;
}

void lim_release(struct lim_table *t, struct lim_entry *e, uint64_t now)
{
    if (e->active == 0)
        return;
    e->last = now;
    if (--e->active == 0)
        lru_push(t, e);
}

unsigned lim_rate(struct lim_entry *e, int w, uint64_t window_ms, uint64_t now)
{
    if (w < 0 || w >= LIM_WINDOWS)
        return 0;
    if (e->w_count[w] == 0 || now >= e->w_start[w] + window_ms || now < e->w_start[w]) {
        e->w_start[w] = now;
        e->w_count[w] = 0;
    }
    if (e->w_count[w] < ~0u)
        e->w_count[w]++;
    return e->w_count[w];
}

unsigned lim_expire(struct lim_table *t, uint64_t now)
{
    unsigned n = 0;

    /* The tail is the least recently touched idle entry: stop at the first
     * one still fresh. */
    while (t->lru_tail) {
        struct lim_entry *e = ENT(t->lru_tail);
        if (e->last + t->keep_ms > now)
            break;
        entry_free(t, e);
        n++;
    }
    return n;
}

void lim_key_ip(const struct sockaddr *sa, unsigned char key[LIM_KEY_LEN])
{
    memset(key, 0, LIM_KEY_LEN);
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* an IPv4-mapped address is that IPv4 client */
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a->s6_addr, 16);
        }
    }
}

void lim_key_user(const char *user, unsigned char key[LIM_KEY_LEN])
{
    SHA256((const unsigned char *)user, strlen(user), key);
    /* never equal to an IP key: those start with 4 or 6 and end in zeros */
    key[0] |= 0x80;
}
