/*
 * authfile.c - reads the relayhost credentials file (authfile.h).
 *
 * Must never log or return a password in an error text, follow a symlink
 * for a file that is not ours, or accept a file others can read.
 */
#include "authfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTHFILE_MAX (64u << 10)

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

int authfile_parse(const char *text, size_t len, const char *host, struct auth_cred *c,
                   char *err, size_t errlen)
{
    size_t pos = 0;
    unsigned lineno = 0;
    size_t hlen = strlen(host);

    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos, i = 0, hs, he, cs, ce;
        const char *colon;

        pos += n + (nl ? 1 : 0);
        lineno++;
        while (n > 0 && is_space(line[n - 1]))
            n--;
        while (i < n && is_space(line[i]))
            i++;
        if (i == n || line[i] == '#')
            continue;
        for (size_t k = i; k < n; k++)
            if ((unsigned char)line[k] < 0x20 && line[k] != '\t') {
                snprintf(err, errlen, "line %u: control character", lineno);
                return -1;
            }
        hs = i;
        while (i < n && !is_space(line[i]))
            i++;
        he = i;
        while (i < n && is_space(line[i]))
            i++;
        cs = i;
        ce = n;
        colon = cs < ce ? memchr(line + cs, ':', ce - cs) : NULL;
        if (cs == ce || !colon || colon == line + cs) {
            snprintf(err, errlen, "line %u: expected \"host user:password\"", lineno);
            return -1;
        }
        size_t ulen = (size_t)(colon - (line + cs)), plen = ce - cs - ulen - 1;
        if (ulen >= AUTH_FIELD_MAX || plen >= AUTH_FIELD_MAX) {
            snprintf(err, errlen, "line %u: user or password too long", lineno);
            return -1;
        }
        if (plen == 0) {
            snprintf(err, errlen, "line %u: empty password", lineno);
            return -1;
        }
        if (he - hs == hlen && strncasecmp(line + hs, host, hlen) == 0) {
            memcpy(c->user, line + cs, ulen);
            c->user[ulen] = '\0';
            memcpy(c->pass, colon + 1, plen);
            c->pass[plen] = '\0';
            return 1;
        }
    }
    return 0;
}

int authfile_load(const char *path, uid_t owner_uid, const char *host, struct auth_cred *c,
                  char *err, size_t errlen)
{
    struct stat st;
    char *text;
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int r;

    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != owner_uid) {
        snprintf(err, errlen, "%s is owned by uid %lu: it must be owned by root or the deliver account "
                 "(fix: chown root %s)", path, (unsigned long)st.st_uid, path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s is accessible by group or others (mode %04o): it holds passwords "
                 "(fix: chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    if (st.st_size > (off_t)AUTHFILE_MAX) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, AUTHFILE_MAX);
        close(fd);
        return -1;
    }
    if (!(text = malloc((size_t)st.st_size + 1))) {
        snprintf(err, errlen, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size && (n = read(fd, text + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    close(fd);
    {
        char why[200];
        r = authfile_parse(text, got, host, c, why, sizeof why);
        if (r < 0)
            snprintf(err, errlen, "%s: %s", path, why);
    }
    memset(text, 0, got);
    free(text);
    return r;
}
