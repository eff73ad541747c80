/*
 * nexthop.c - RFC 5321 section 5.1 next-hop rules on a looked-up MX set
 * (nexthop.h).
 *
 * Must never turn a temporary condition into a permanent one: only a null
 * MX, a loop, or hosts that all definitely have no address end in a bounce.
 */
#include "nexthop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint32_t default_random(uint32_t n, void *arg)
{
    (void)arg;
    return arc4random_uniform(n);
}

enum nh_verdict nexthop_order(struct nh_mx *mx, size_t n, const char *self, nh_random_fn rnd,
                              void *arg, size_t *kept)
{
    size_t i, j, out = 0, nnull = 0;
    int have_self = 0;
    uint16_t self_pref = 0;

    *kept = 0;
    if (!rnd)
        rnd = default_random;
    for (i = 0; i < n; i++)
        if (strcmp(mx[i].host, ".") == 0)
            nnull++;
    /* RFC 7505: a single "." of preference 0 says no mail is accepted. A
     * domain that lists "." beside real hosts gets its real hosts; one that
     * lists nothing but "." (at any preference) accepts no mail either. */
    if (n > 0 && nnull == n)
        return NH_NULLMX;

    /* Drop ".", keep each host once with its best preference. */
    for (i = 0; i < n; i++) {
        if (strcmp(mx[i].host, ".") == 0)
            continue;
        for (j = 0; j < out; j++)
            if (strcmp(mx[j].host, mx[i].host) == 0)
                break;
        if (j < out) {
            if (mx[i].pref < mx[j].pref)
                mx[j].pref = mx[i].pref;
            continue;
        }
        mx[out++] = mx[i];
    }

    /* This host's own entry, and everything not better than it, is a loop. */
    if (self && self[0]) {
        for (i = 0; i < out; i++)
            if (strcmp(mx[i].host, self) == 0 && (!have_self || mx[i].pref < self_pref)) {
                self_pref = mx[i].pref;
                have_self = 1;
            }
        if (have_self) {
            for (i = j = 0; i < out; i++)
                if (mx[i].pref < self_pref)
                    mx[j++] = mx[i];
            out = j;
            if (out == 0)
                return NH_LOOP;
        }
    }

    /* Stable insertion sort by preference (sets are small). */
    for (i = 1; i < out; i++) {
        struct nh_mx t = mx[i];
        for (j = i; j > 0 && mx[j - 1].pref > t.pref; j--)
            mx[j] = mx[j - 1];
        mx[j] = t;
    }
    /* Shuffle each run of equal preference (Fisher-Yates). */
    for (i = 0; i < out; i = j) {
        for (j = i + 1; j < out && mx[j].pref == mx[i].pref; j++)
            ;
        for (size_t k = j - 1; k > i; k--) {
            size_t r = i + rnd((uint32_t)(k - i + 1), arg);
            if (r != k) {
                struct nh_mx t = mx[k];
                mx[k] = mx[r];
                mx[r] = t;
            }
        }
    }
    *kept = out < DNS_MAX_HOPS ? out : DNS_MAX_HOPS;
    return NH_USE;
}

void nexthop_verdict(struct dns_hops *h)
{
    int any_ok = 0, any_temp = 0;

    if (h->status != DNS_OK)
        return;
    for (size_t i = 0; i < h->nhop; i++) {
        if (h->hop[i].status == DNS_OK && h->hop[i].naddr > 0)
            any_ok = 1;
        else if (h->hop[i].status == DNS_TEMPFAIL)
            any_temp = 1;
    }
    if (any_ok)
        return;
    if (h->nhop == 0 || any_temp) {
        h->status = DNS_TEMPFAIL;
        str_copy(h->dsn, "4.4.3", sizeof h->dsn);
        snprintf(h->text, sizeof h->text, "temporary failure looking up the address of %s%.180s",
                 h->nhop && !h->hop[0].implicit ? "the MX hosts of " : "", h->domain);
        return;
    }
    h->status = DNS_PERMFAIL;
    str_copy(h->dsn, "5.4.4", sizeof h->dsn);
    if (h->hop[0].implicit)
        snprintf(h->text, sizeof h->text, "%.180s has no MX and no address record", h->domain);
    else
        snprintf(h->text, sizeof h->text, "no MX host of %.180s has an address", h->domain);
}
