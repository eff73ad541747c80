/*
 * failures.c - AUTH failure bookkeeping (failures.h): one hash table of
 * entries keyed "i:IP", "u:USER" and "p:USER\nIP" (a user name never
 * holds a control byte), seeded at random so that nobody can choose keys
 * that collide. Must never grow past max_entries: when full and nothing
 * has expired, a new key is not tracked (and logged once).
 */
#include "failures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "log.h"

#define NBUCKETS 65536u
#define KEY_MAX 400

struct entry {
    struct entry *next;
    uint64_t last;              /* time of the last failure */
    uint64_t blocked_until;
    unsigned count;
    char key[];
};

struct failures {
    struct failure_limits l;
    struct entry **b;
    size_t n;
    uint64_t seed;
    int warned;
};

static uint64_t hash(const struct failures *t, const char *k)
{
    uint64_t h = 1469598103934665603ull ^ t->seed;

    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

struct failures *failures_new(const struct failure_limits *l)
{
    struct failures *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->b = calloc(NBUCKETS, sizeof(*t->b));
    if (!t->b) {
        free(t);
        return NULL;
    }
    if (RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1)
        t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
    t->l = *l;
    return t;
}

void failures_free(struct failures *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry *e = t->b[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    free(t->b);
    free(t);
}

void failures_set_limits(struct failures *t, const struct failure_limits *l)
{
    t->l = *l;
}

static int stale(const struct failures *t, const struct entry *e, uint64_t now)
{
    return e->blocked_until <= now && now - e->last >= t->l.block_ms;
}

static struct entry *get(struct failures *t, const char *key, uint64_t now)
{
    struct entry *e = t->b[hash(t, key) & (NBUCKETS - 1)];

    for (; e; e = e->next)
        if (!strcmp(e->key, key))
            return stale(t, e, now) ? NULL : e;
    return NULL;
}

/* The entry of key, made (or reset when it had expired) if needed. */
static struct entry *touch(struct failures *t, const char *key, uint64_t now)
{
    struct entry **pp = &t->b[hash(t, key) & (NBUCKETS - 1)], *e;
    size_t n = strlen(key);

    for (e = *pp; e; e = e->next)
        if (!strcmp(e->key, key)) {
            if (stale(t, e, now))
                e->count = 0, e->blocked_until = 0;
            return e;
        }
    if (t->n >= t->l.max_entries)
        failures_sweep(t, now);
    if (t->n >= t->l.max_entries || !(e = malloc(sizeof(*e) + n + 1))) {
        if (!t->warned++)
            log_warning("AUTH failure table full (%zu entries): new addresses and users are not tracked", t->n);
        return NULL;
    }
    memcpy(e->key, key, n + 1);
    e->count = 0;
    e->last = now;
    e->blocked_until = 0;
    e->next = *pp;
    *pp = e;
    t->n++;
    return e;
}

static void del(struct failures *t, const char *key)
{
    for (struct entry **pp = &t->b[hash(t, key) & (NBUCKETS - 1)]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->key, key)) {
            struct entry *e = *pp;
            *pp = e->next;
            free(e);
            t->n--;
            return;
        }
}

static void keys(const char *ip, const char *user, char *ki, char *ku, char *kp)
{
    snprintf(ki, KEY_MAX, "i:%s", ip);
    snprintf(ku, KEY_MAX, "u:%s", user);
    snprintf(kp, KEY_MAX, "p:%s\n%s", user, ip);
}

int failures_blocked(struct failures *t, const char *ip, const char *user, uint64_t now)
{
    char ki[KEY_MAX], ku[KEY_MAX], kp[KEY_MAX];
    struct entry *e, *p;

    keys(ip, user, ki, ku, kp);
    if ((e = get(t, ki, now)) && e->blocked_until > now)
        return 1;
    if ((e = get(t, ku, now)) && e->count >= t->l.user_limit && (p = get(t, kp, now)) && p->count > 0)
        return 1;
    return 0;
}

uint64_t failures_failure(struct failures *t, const char *ip, const char *user, uint64_t now)
{
    char ki[KEY_MAX], ku[KEY_MAX], kp[KEY_MAX];
    struct entry *e;
    unsigned k = 1;

    keys(ip, user, ki, ku, kp);
    if ((e = touch(t, ki, now))) {
        e->count++;
        e->last = now;
        if (e->count >= t->l.ip_limit && e->blocked_until <= now) {
            e->blocked_until = now + t->l.block_ms;
            log_warning("AUTH: %u failures from %s: blocked for %llu s", e->count, ip,
                        (unsigned long long)(t->l.block_ms / 1000));
        }
        k = e->count;
    }
    if ((e = touch(t, ku, now))) {
        e->count++;
        e->last = now;
        if (e->count == t->l.user_limit)
            log_warning("AUTH: %u failures for one user: the addresses that failed for it are blocked for %llu s",
                        e->count, (unsigned long long)(t->l.block_ms / 1000));
        if (e->count > k)
            k = e->count;
    }
    if ((e = touch(t, kp, now))) {
        e->count++;
        e->last = now;
    }
    return t->l.delay_ms << (k - 1 < 3 ? k - 1 : 3);
}

void failures_success(struct failures *t, const char *ip, const char *user, uint64_t now)
{
    char ki[KEY_MAX], ku[KEY_MAX], kp[KEY_MAX];

    (void)now;
    keys(ip, user, ki, ku, kp);
    del(t, kp);
}

void failures_sweep(struct failures *t, uint64_t now)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry **pp = &t->b[i]; *pp;) {
            struct entry *e = *pp;
            if (stale(t, e, now)) {
                *pp = e->next;
                free(e);
                t->n--;
            } else {
                pp = &e->next;
            }
        }
    if (t->n < t->l.max_entries)
        t->warned = 0;
}

size_t failures_entries(const struct failures *t)
{
    return t->n;
}
