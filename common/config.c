/*
 * config.c - config_load(): postern.conf (SPEC.md section 3) into struct
 * config, and the queries on the result.
 *
 * The file is read in two passes. The first (config_reader.c) splits it
 * into logical lines and catches syntax errors, unknown and duplicate keys.
 * The second, here, expands $hostname, which therefore may be set anywhere
 * in the file, and parses each value with its type (config_values.c), then
 * checks the rules that tie keys together. Every error names FILE:LINE (the
 * line where the key starts); nothing is ignored and nothing is truncated.
 *
 * config_load() builds the result from fresh defaults (config_keys.c) plus
 * the file, in a scratch copy, and only replaces *c when the whole file is
 * good: a reload with a broken file leaves the running configuration alone,
 * and a key removed from the file goes back to its default.
 */
#include "config_impl.h"
#include "addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------------------------------------ the values */

/* One key's value from the file: expanded, then parsed with its type. */
static int apply_one(struct config *c, const char *path, size_t k, const struct config_entry *e,
                     const char *hostname, char *val, char *err, size_t errlen)
{
    char why[CONFIG_WHY_MAX];

    if (config_expand(e->value, hostname, val, CONFIG_VALUE_MAX + 1, why, sizeof why) < 0 ||
        config_set_value(c, &config_keys[k], val, why, sizeof why) < 0) {
        config_fmt(err, errlen, "%s:%u: %s: %s", path, e->line, config_keys[k].name, why);
        return -1;
    }
    return 0;
}

/* hostname first, from the file or the system: every other value may use it. */
static int apply_hostname(struct config *c, const char *path, const struct config_entry *ent,
                          char *val, char *err, size_t errlen)
{
    if (ent[0].line != 0) {
        if (apply_one(c, path, 0, &ent[0], NULL, val, err, errlen) < 0)
            return -1;
    } else {
        config_system_hostname(c->hostname, sizeof c->hostname);
        if (!addr_valid_domain(c->hostname, strlen(c->hostname), 0)) {
            config_fmt(err, errlen, "%s: the system host name \"%s\" is not a valid domain "
                "name; set hostname", path, c->hostname);
            return -1;
        }
    }
    config_default_local_domains(c);
    config_default_postmaster(c);
    return 0;
}

/* The other keys in file order, so that the first bad line is the one reported. */
static int apply_rest(struct config *c, const char *path, const struct config_entry *ent,
                      char *val, char *err, size_t errlen)
{
    size_t n = 0, *order = calloc(config_nkeys, sizeof *order);
    int rc = 0;

    if (order == NULL) {
        config_fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (size_t k = 1; k < config_nkeys; k++)
        if (ent[k].line != 0)
            order[n++] = k;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ent[order[j]].line < ent[order[j - 1]].line; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply_one(c, path, order[i], &ent[order[i]], c->hostname, val, err, errlen);
    free(order);
    return rc;
}

/* Rules that tie keys together, reported at the line of the key that broke them. */
static int check_rules(const struct config *c, const char *path, const struct config_entry *ent,
                       char *err, size_t errlen)
{
    if ((c->tls_cert_file[0] != '\0') != (c->tls_key_file[0] != '\0')) {
        int cert = config_key_index("tls_cert_file"), key = config_key_index("tls_key_file");
        int set = c->tls_cert_file[0] ? cert : key;
        config_fmt(err, errlen, "%s:%u: %s is set but %s is not (set both or neither)",
            path, ent[set].line, config_keys[set].name, config_keys[set == cert ? key : cert].name);
        return -1;
    }
    if (c->min_backoff > c->max_backoff) {
        int mi = config_key_index("min_backoff"), ma = config_key_index("max_backoff");
        int at = ent[ma].line > ent[mi].line ? ma : mi;
        config_fmt(err, errlen, "%s:%u: min_backoff (%us) is longer than max_backoff (%us)",
            path, ent[at].line, c->min_backoff, c->max_backoff);
        return -1;
    }
    return 0;
}

static int apply(struct config *c, const char *path, const struct config_entry *ent,
                 char *err, size_t errlen)
{
    char *val = malloc(CONFIG_VALUE_MAX + 1);
    int rc;

    if (val == NULL) {
        config_fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    rc = apply_hostname(c, path, ent, val, err, errlen) < 0 ||
         apply_rest(c, path, ent, val, err, errlen) < 0 ||
         check_rules(c, path, ent, err, errlen) < 0 ? -1 : 0;
    free(val);
    return rc;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    struct config_entry *ent;
    struct config *n;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (c == NULL || path == NULL) {
        config_fmt(err, errlen, "config_load: no configuration");
        return -1;
    }
    if ((n = malloc(sizeof *n)) == NULL || (ent = calloc(config_nkeys, sizeof *ent)) == NULL) {
        free(n);
        config_fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    config_set_defaults(n);
    if (config_copy(n->path, sizeof n->path, path) < 0) {
        config_fmt(err, errlen, "%.100s...: path too long", path);
        goto out;
    }
    if (config_read_file(path, ent, err, errlen) < 0 || apply(n, path, ent, err, errlen) < 0)
        goto out;
    config_free(c);
    *c = *n;
    rc = 0;
out:
    if (rc < 0)
        config_free(n);
    free(n);
    for (size_t i = 0; i < config_nkeys; i++)
        free(ent[i].value);
    free(ent);
    return rc;
}

/* ----------------------------------------------------------------- queries */

int config_local_maildir(const struct config *c)
{
    return strcmp(c->local_transport, "maildir") == 0;
}

int config_is_local_domain(const struct config *c, const char *domain)
{
    if (c == NULL || domain == NULL)
        return 0;
    for (size_t i = 0; i < c->local_domains.n && i < CONF_MAX_LIST; i++)
        if (strcasecmp(c->local_domains.v[i], domain) == 0)
            return 1;
    return 0;
}

const char *config_path(const char *opt)
{
    const char *env;

    if (opt != NULL && *opt != '\0')
        return opt;
    env = getenv("POSTERN_CONF");
    if (env != NULL && *env != '\0')
        return env;
    if (access(CONF_DEFAULT_PATH, F_OK) != 0) {
        /* A development tree: bin/TOOL finds the run/postern.conf that
         * `make run` wrote, so `./bin/mailq` works without -c. */
        static char dev[CONF_MAX_STR];
        char exe[CONF_MAX_STR];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                if ((size_t)snprintf(dev, sizeof(dev), "%s/../run/postern.conf", exe) < sizeof(dev) &&
                    access(dev, F_OK) == 0)
                    return dev;
            }
        }
    }
    return CONF_DEFAULT_PATH;
}