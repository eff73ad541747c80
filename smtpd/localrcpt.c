/*
 * localrcpt.c - RCPT/VRFY/EXPN look-ups in the compiled map (localrcpt.h).
 *
 * Must never read the text files (they are outside the jail, and the master
 * parses them), never write the map, and never treat '%', '!' or a quoted
 * '@' in a local part as routing: such addresses are simply not keys.
 */
#include "localrcpt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mapdb.h"
#include "util.h"

static struct mapdb *map;
static char map_path[4096];
static int warned;

static void try_open(void)
{
    char err[1024];

    if (map || !map_path[0])
        return;
    if (mapdb_open(&map, map_path, err, sizeof(err)) < 0) {
        if (!warned++)
            log_error("local recipient map: %s; local recipients get 451 until it can be read", err);
        return;
    }
    if (warned)
        log_info("local recipient map %s open", map_path);
    warned = 0;
}

void localrcpt_init(const char *path)
{
    str_copy(map_path, path, sizeof(map_path));
    try_open();
}

void localrcpt_tick(void)
{
    try_open();
}

void localrcpt_free(void)
{
    mapdb_close(map);
    map = NULL;
}

/* RFC 5321 4.5.1: "postmaster" in any case, unquoted, no extension. */
static int is_postmaster(const struct addr *a)
{
    return a->local_len == 10 && !strncasecmp(a->mailbox, "postmaster", 10);
}

const char *localrcpt_check(const struct config *cfg, const struct addr *a, char *reply, size_t len)
{
    enum mapdb_kind k;

    /* no map configured (localrcpt_init never called: unit tests of the
     * command layer, which install their own checker) */
    if (is_postmaster(a) || !map_path[0])
        return NULL;
    k = map ? mapdb_find(map, a, cfg->recipient_delimiter, NULL, 0, NULL, NULL) : MAPDB_ERROR;
    if (k > 0)
        return NULL;
    if (k == MAPDB_NONE)
        snprintf(reply, len, "550 5.1.1 <%s>: Recipient address rejected: User unknown", a->mailbox);
    else
        snprintf(reply, len, "451 4.3.0 <%s>: Temporary lookup failure", a->mailbox);
    return reply;
}

int localrcpt_quota(const struct config *cfg, const struct addr *a, char *key, size_t keylen,
                    struct mapdb_quota *q)
{
    q->bytes = q->msgs = 0;
    if (!map || is_postmaster(a) || !config_local_maildir(cfg))
        return 0;
    if (mapdb_find(map, a, cfg->recipient_delimiter, key, keylen, NULL, NULL) != MAPDB_MAILBOX)
        return 0;
    return mapdb_quota(map, key, q);
}

int localrcpt_parse_arg(const struct config *cfg, const char *arg, struct addr *a)
{
    char path[ADDR_MAX + 8];
    size_t n = strlen(arg), end;

    while (n > 0 && arg[n - 1] == ' ')
        n--;
    if (n == 0 || n > ADDR_MAX)
        return -1;
    if (arg[0] == '<' && arg[n - 1] == '>') {
        arg++;
        n -= 2;
    }
    if (memchr(arg, '@', n) || !cfg->local_domains.n)
        snprintf(path, sizeof(path), "<%.*s>", (int)n, arg);
    else {
        /* a bare name (<postmaster> too): in the host's own domain if it is
         * local, else in the first local domain */
        const char *d = config_is_local_domain(cfg, cfg->hostname) ? cfg->hostname : cfg->local_domains.v[0];
        if ((size_t)snprintf(path, sizeof(path), "<%.*s@%s>", (int)n, arg, d) >= sizeof(path))
            return -1;
    }
    if (addr_parse_path(path, strlen(path), ADDR_UTF8, a, &end) != ADDR_OK || path[end] != 0)
        return -1;
    return !a->is_literal && config_is_local_domain(cfg, a->domain) ? 0 : 1;
}

int localrcpt_expand(const struct config *cfg, const struct addr *a, char *key, size_t keylen, const char **members,
                     size_t *mlen)
{
    if (!map)
        return MAPDB_ERROR;
    return mapdb_find(map, a, cfg->recipient_delimiter, key, keylen, members, mlen);
}

int localrcpt_owned(const struct config *cfg, const struct addr *a, const char *owner)
{
    if (!a->domain[0] || a->is_literal || !config_is_local_domain(cfg, a->domain))
        return 0;
    if (!map)
        try_open();
    return mapdb_owned_by(map, a, cfg->recipient_delimiter, owner);
}
