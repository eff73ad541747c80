/*
 * btmpl.c - loading and checking notice templates (btmpl.h). The checks
 * are those an operator needs to hear about before a bounce is written:
 * every required section there, no unknown section or variable, a
 * per-recipient variable only where there is a recipient, valid UTF-8,
 * no control characters, short lines. Never follows a template's text as
 * a format string; the composer substitutes variables itself.
 */
#include "btmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"

static const char *const lang_dir[BT_NLANG] = { "en", "de" };
static const char *const kind_file[BT_NKIND] = { "failure", "delay", "success" };

/* Sections of each kind; those marked with '*' hold one recipient. */
static const char *const sections[BT_NKIND][16] = {
    [BT_FAILURE] = { "subject", "intro", "*remote", "*local", "advice-address", "advice-mailbox",
                     "advice-refused", "advice-size", "advice-policy", "advice-expired",
                     "advice-loop", "advice-other", "closing", NULL },
    [BT_DELAY] = { "subject", "intro", "*remote", "*local", "closing", NULL },
    [BT_SUCCESS] = { "subject", "intro", "*delivered", "*relayed", "*expanded", "closing", NULL },
};
#define MAX_SECTIONS 16

struct btmpl {
    char *text[BT_NLANG][BT_NKIND][MAX_SECTIONS];
};

static const char *const vars_any[] = { "hostname", "arrival", "retry_until", "postmaster",
                                        "sender", "queue_id", NULL };
static const char *const vars_rcpt[] = { "recipient", "remote", "status", "last_attempt",
                                         "reply", NULL };

int btmpl_var_kind(const char *name, size_t len)
{
    for (size_t i = 0; vars_any[i]; i++)
        if (strlen(vars_any[i]) == len && memcmp(vars_any[i], name, len) == 0)
            return 0;
    for (size_t i = 0; vars_rcpt[i]; i++)
        if (strlen(vars_rcpt[i]) == len && memcmp(vars_rcpt[i], name, len) == 0)
            return 1;
    return -1;
}

const char *btmpl_lang_code(enum btmpl_lang lang)
{
    return (unsigned)lang < BT_NLANG ? lang_dir[lang] : "en";
}

static int section_index(enum btmpl_kind kind, const char *name, size_t len, int *per_rcpt)
{
    for (int i = 0; sections[kind][i]; i++) {
        const char *s = sections[kind][i];
        int star = s[0] == '*';
        if (strlen(s + star) == len && memcmp(s + star, name, len) == 0) {
            *per_rcpt = star;
            return i;
        }
    }
    return -1;
}

/* Checks one line of text: characters, length, variables. */
static const char *check_line(const char *l, size_t len, int per_rcpt)
{
    size_t chars = 0;

    if (!utf8_valid(l, len))
        return "not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c < 0x20 || c == 0x7f)
            return "a control character";
        if ((c & 0xc0) != 0x80)
            chars++;
        if (c == '}')
            return "a \"}\" without \"{\"";
        if (c != '{')
            continue;
        const char *end = memchr(l + i, '}', len - i);
        if (!end)
            return "a \"{\" without \"}\"";
        size_t nl = (size_t)(end - (l + i + 1));
        int k = btmpl_var_kind(l + i + 1, nl);
        if (k < 0)
            return "an unknown variable";
        if (k == 1 && !per_rcpt)
            return "a recipient's variable outside a recipient's section";
        if (nl == 5 && memcmp(l + i + 1, "reply", 5) == 0 && len != 7)
            return "{reply} must stand alone on its line";
        chars += nl + 1;
        i = (size_t)(end - l);
    }
    if (chars > BTMPL_LINE_MAX)
        return "line longer than 76 characters";
    return NULL;
}

static int fail(char *err, size_t errlen, const char *path, unsigned line, const char *why)
{
    if (line)
        snprintf(err, errlen, "%s:%u: %s", path, line, why);
    else
        snprintf(err, errlen, "%s: %s", path, why);
    return -1;
}

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *b;
    size_t n = 0;

    if (fd < 0)
        return fail(err, errlen, path, 0, strerror(errno));
    if (!(b = malloc(BTMPL_FILE_MAX + 1))) {
        close(fd);
        return fail(err, errlen, path, 0, "out of memory");
    }
    for (;;) {
        ssize_t r = read(fd, b + n, BTMPL_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(b);
            return fail(err, errlen, path, 0, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > BTMPL_FILE_MAX) {
            close(fd);
            free(b);
            return fail(err, errlen, path, 0, "file larger than 64 KiB");
        }
    }
    close(fd);
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

static int load_file(struct btmpl *t, const char *dir, enum btmpl_lang lang, enum btmpl_kind kind,
                     char *err, size_t errlen)
{
    char path[4096], *data, *text[MAX_SECTIONS] = { 0 };
    size_t len, tl[MAX_SECTIONS] = { 0 };
    unsigned line = 0;
    int cur = -1, per_rcpt = 0, rc = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir, lang_dir[lang], kind_file[kind]) >= sizeof(path))
        return fail(err, errlen, dir, 0, "path too long");
    if (read_all(path, &data, &len, err, errlen) < 0)
        return -1;
    if (memchr(data, 0, len))
        rc = fail(err, errlen, path, 0, "a NUL byte");
    for (char *p = data; rc == 0 && p < data + len;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        char *next = nl ? nl + 1 : data + len;
        line++;
        if (n && p[n - 1] == '\r')
            n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n && p[0] == '#') {
            p = next;
            continue;
        }
        if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
            int pr;
            int i = section_index(kind, p + 1, n - 2, &pr);
            if (i < 0) {
                rc = fail(err, errlen, path, line, "unknown section");
            } else if (text[i]) {
                rc = fail(err, errlen, path, line, "section given twice");
            } else if (!(text[i] = calloc(1, len + 1))) {
                rc = fail(err, errlen, path, line, "out of memory");
            } else {
                cur = i;
                per_rcpt = pr;
            }
            p = next;
            continue;
        }
        if (cur < 0) {
            if (n)
                rc = fail(err, errlen, path, line, "text before the first [section]");
            p = next;
            continue;
        }
        const char *why = check_line(p, n, per_rcpt);
        if (why) {
            rc = fail(err, errlen, path, line, why);
            break;
        }
        if (tl[cur])
            text[cur][tl[cur]++] = '\n';
        memcpy(text[cur] + tl[cur], p, n);
        tl[cur] += n;
        p = next;
    }
    for (int i = 0; rc == 0 && sections[kind][i]; i++) {
        char why[128];
        /* trailing blank lines of a section do not count */
        while (text[i] && tl[i] && text[i][tl[i] - 1] == '\n')
            tl[i]--;
        if (text[i])
            text[i][tl[i]] = 0;
        if (!text[i] || !tl[i]) {
            const char *s = sections[kind][i];
            snprintf(why, sizeof(why), "section [%s] missing or empty", s + (s[0] == '*'));
            rc = fail(err, errlen, path, line, why);
        } else if (i == 0 && strchr(text[i], '\n')) {
            rc = fail(err, errlen, path, line, "[subject] must be one line");
        }
    }
    free(data);
    for (int i = 0; i < MAX_SECTIONS; i++) {
        if (rc == 0)
            t->text[lang][kind][i] = text[i];
        else
            free(text[i]);
    }
    return rc;
}

int btmpl_load(const char *dir, struct btmpl **out, char *err, size_t errlen)
{
    struct btmpl *t = calloc(1, sizeof(*t));

    if (!t)
        return fail(err, errlen, dir, 0, "out of memory");
    for (int l = 0; l < BT_NLANG; l++)
        for (int k = 0; k < BT_NKIND; k++)
            if (load_file(t, dir, (enum btmpl_lang)l, (enum btmpl_kind)k, err, errlen) < 0) {
                btmpl_free(t);
                return -1;
            }
    *out = t;
    return 0;
}

void btmpl_free(struct btmpl *t)
{
    if (!t)
        return;
    for (int l = 0; l < BT_NLANG; l++)
        for (int k = 0; k < BT_NKIND; k++)
            for (int i = 0; i < MAX_SECTIONS; i++)
                free(t->text[l][k][i]);
    free(t);
}

const char *btmpl_text(const struct btmpl *t, enum btmpl_lang lang, enum btmpl_kind kind,
                       const char *section)
{
    int pr;
    int i;

    if (!t || (unsigned)lang >= BT_NLANG || (unsigned)kind >= BT_NKIND)
        return NULL;
    i = section_index(kind, section, strlen(section), &pr);
    return i < 0 ? NULL : t->text[lang][kind][i];
}
