/*
 * config_reader.c - reads postern.conf into one entry a key: "key = value"
 * lines, '#' comments, continuation lines (starting with white space)
 * joined by one space, and $hostname expansion of a value.
 *
 * This pass catches syntax errors, unknown and duplicate keys, over-long
 * lines and values and control characters, each as "FILE:LINE: text" (the
 * line where the key starts). It parses no value (config_values.c does)
 * and trusts nothing about the file: the master runs it as root.
 */
#include "config_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Reads one physical line into buf without its newline. Returns 1 for a
 * line, 0 at end of file, -1 with why for an over-long line or a byte that
 * has no place in a text file.
 */
static int read_line(FILE *f, char *buf, size_t size, char *why, size_t whylen)
{
    size_t n = 0;
    int ch, any = 0;

    while ((ch = getc(f)) != EOF) {
        any = 1;
        if (ch == '\n')
            break;
        if (n + 1 >= size) {
            config_fmt(why, whylen, "line too long (at most %zu bytes)", size - 2);
            return -1;
        }
        buf[n++] = (char)ch;
    }
    if (!any)
        return 0;
    /* tolerate CRLF files: a CR right before the newline is white space */
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > size - 2) {
        config_fmt(why, whylen, "line too long (at most %zu bytes)", size - 2);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            config_fmt(why, whylen, "control character 0x%02x", c);
            return -1;
        }
    }
    buf[n] = '\0';
    return 1;
}

static char *trim(char *s)
{
    size_t n;

    while (config_is_space((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && config_is_space((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A continuation line: its text joins the value of key cur with one space. */
static int add_continuation(struct config_entry *ent, int cur, char *line, const char *path,
                            unsigned lineno, char *err, size_t errlen)
{
    struct config_entry *e;
    char *more = trim(line), *nv;
    size_t mlen = strlen(more);

    if (cur < 0) {
        config_fmt(err, errlen, "%s:%u: continuation line without a key before it",
            path, lineno);
        return -1;
    }
    e = &ent[cur];
    if (e->len + 1 + mlen > CONFIG_VALUE_MAX) {
        config_fmt(err, errlen, "%s:%u: value of %s too long (at most %d bytes)",
            path, lineno, config_keys[cur].name, CONFIG_VALUE_MAX);
        return -1;
    }
    if ((nv = realloc(e->value, e->len + 1 + mlen + 1)) == NULL) {
        config_fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    e->value = nv;
    if (e->len > 0)
        e->value[e->len++] = ' ';
    memcpy(e->value + e->len, more, mlen + 1);
    e->len += mlen;
    return 0;
}

/* A "key = value" line; returns the key's index, or -1. */
static int add_key(struct config_entry *ent, char *line, const char *path, unsigned lineno,
                   char *err, size_t errlen)
{
    char *eq, *key, *val;
    int k;

    if ((eq = strchr(line, '=')) == NULL) {
        size_t w = strcspn(line, " \t");
        config_fmt(err, errlen, "%s:%u: missing \"=\" after \"%.*s\"", path, lineno,
            (int)(w > 100 ? 100 : w), line);
        return -1;
    }
    *eq = '\0';
    key = trim(line);
    val = trim(eq + 1);
    if (*key == '\0') {
        config_fmt(err, errlen, "%s:%u: missing key before \"=\"", path, lineno);
        return -1;
    }
    if ((k = config_key_index(key)) < 0) {
        config_fmt(err, errlen, "%s:%u: unknown key \"%.100s\"", path, lineno, key);
        return -1;
    }
    if (ent[k].line != 0) {
        config_fmt(err, errlen, "%s:%u: duplicate key \"%s\" (first set on line %u)",
            path, lineno, key, ent[k].line);
        return -1;
    }
    ent[k].line = lineno;
    ent[k].len = strlen(val);
    if ((ent[k].value = strdup(val)) == NULL) {
        config_fmt(err, errlen, "%s: out of memory", path);
        return -1;
    }
    return k;
}

int config_read_file(const char *path, struct config_entry *ent, char *err, size_t errlen)
{
    char *buf, why[CONFIG_WHY_MAX];
    unsigned lineno = 0;
    int cur = -1, rc = -1, r;
    FILE *f;

    if ((f = fopen(path, "r")) == NULL) {
        config_fmt(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((buf = malloc(CONFIG_LINE_MAX + 2)) == NULL) {
        config_fmt(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    while ((r = read_line(f, buf, CONFIG_LINE_MAX + 2, why, sizeof why)) == 1) {
        char *line = buf, *hash;

        lineno++;
        if (lineno == 1 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
            line += 3;                /* UTF-8 byte order mark */
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        if (*trim(line) == '\0')
            continue;                 /* blank and comment lines keep a continuation open */
        if (config_is_space((unsigned char)line[0])) {
            if (add_continuation(ent, cur, line, path, lineno, err, errlen) < 0)
                goto out;
        } else if ((cur = add_key(ent, line, path, lineno, err, errlen)) < 0) {
            goto out;
        }
    }
    if (r < 0) {
        config_fmt(err, errlen, "%s:%u: %s", path, lineno + 1, why);
        goto out;
    }
    if (ferror(f)) {
        config_fmt(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/*
 * Expands $hostname and ${hostname} (hostname NULL: refused) and $$ to "$".
 * Any other '$' is an error rather than a silent literal, so that a typo
 * like $hostnme does not end up in the configuration.
 */
int config_expand(const char *in, const char *hostname, char *out, size_t outlen,
                  char *why, size_t whylen)
{
    size_t o = 0, hl = hostname ? strlen(hostname) : 0;

    while (*in) {
        const char *add = in;
        size_t alen = 1;

        if (*in == '$') {
            size_t nlen = 0;
            int brace = in[1] == '{';
            const char *name = in + 1 + brace;

            if (in[1] == '$') {
                alen = 1;
                in += 2;
                goto append;
            }
            while ((name[nlen] >= 'a' && name[nlen] <= 'z') || name[nlen] == '_' ||
                   (name[nlen] >= 'A' && name[nlen] <= 'Z') ||
                   (name[nlen] >= '0' && name[nlen] <= '9'))
                nlen++;
            if (nlen == 0 || (brace && name[nlen] != '}')) {
                config_fmt(why, whylen, "bad \"$\" (write $hostname, ${hostname}, or $$ for a dollar sign)");
                return -1;
            }
            if (nlen != 8 || strncmp(name, "hostname", 8) != 0) {
                config_fmt(why, whylen, "unknown variable \"$%.*s\"", (int)(nlen > 64 ? 64 : nlen), name);
                return -1;
            }
            if (hostname == NULL) {
                config_fmt(why, whylen, "$hostname cannot be used here");
                return -1;
            }
            add = hostname;
            alen = hl;
            in = name + nlen + brace;
        } else {
            in++;
        }
append:
        if (o + alen >= outlen) {
            config_fmt(why, whylen, "value too long after expanding $hostname");
            return -1;
        }
        memcpy(out + o, add, alen);
        o += alen;
    }
    out[o] = '\0';
    return 0;
}