/*
 * passwd.c - `posternctl [-c FILE] passwd USER@DOMAIN` (passwd.h).
 *
 * Reads the new password from the terminal without echo (twice), or one
 * line from stdin when stdin is not a terminal; hashes it with yescrypt
 * (libxcrypt's crypt_gensalt_rn("$y$"), Debian's default cost), writes
 * "USER@DOMAIN:HASH" in place of that mailbox's line in mailboxes_file
 * through a temporary file in the same directory (same owner and mode,
 * fsync, rename, fsync of the directory), under an flock of the file, and
 * then asks the master for a reload (posternctl reload-maps), which compiles the password
 * map of the auth process again (posternctl_reload.c, posternctl reload-maps).
 *
 * Must never take the password from argv or the environment, never print
 * or log it or its hash, and never leave a half-written mailboxes_file.
 */
#include "posternctl_passwd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "mapdb.h"
#include "posternctl_reload.h"

#define PASS_MAX 1024
#define FILE_MAX ((size_t)64 << 20)

/* The mailbox key of an address as an operator writes it, or -1. */
static int key_of(const char *s, size_t n, char *key, size_t keylen)
{
    char path[ADDR_MAX + 3];
    struct addr a;
    size_t end;

    if (n > ADDR_MAX)
        return -1;
    snprintf(path, sizeof(path), "<%.*s>", (int)n, s);
    if (addr_parse_path(path, strlen(path), ADDR_UTF8, &a, &end) != ADDR_OK || path[end] || !a.domain[0])
        return -1;
    return maps_addr_key(&a, key, keylen);
}

/* One line from fd into buf (no line end); -1 at EOF before any byte, or
 * when longer than PASS_MAX. */
static int read_line_fd(int fd, char *buf, size_t len, size_t *n)
{
    char c;

    *n = 0;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return *n > 0 ? 0 : -1;
        if (c == '\n')
            break;
        if (*n + 1 >= len)
            return -1;
        buf[(*n)++] = c;
    }
    if (*n > 0 && buf[*n - 1] == '\r')
        (*n)--;
    buf[*n] = 0;
    return 0;
}

static int prompt(int tty, const char *text, char *buf, size_t len, size_t *n)
{
    struct termios old, quiet;
    int r;

    /* echo off first: what is typed after the prompt is never shown */
    if (tcgetattr(tty, &old) < 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
        return -1;
    if (write(tty, text, strlen(text)) < 0) {
        tcsetattr(tty, TCSAFLUSH, &old);
        return -1;
    }
    r = read_line_fd(tty, buf, len, n);
    tcsetattr(tty, TCSAFLUSH, &old);
    if (write(tty, "\n", 1) < 0)
        r = -1;
    return r;
}

/* The new password: twice from the terminal, or once from stdin. */
static int get_password(char *pw, size_t len, size_t *n)
{
    char again[PASS_MAX + 2];
    size_t n2;
    int tty, r;

    if (!isatty(STDIN_FILENO)) {
        if (read_line_fd(STDIN_FILENO, pw, len, n) < 0) {
            fprintf(stderr, "posternctl: no password on stdin (one line, at most %d bytes)\n", PASS_MAX);
            return -1;
        }
        return 0;
    }
    tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0)
        tty = STDIN_FILENO;
    r = prompt(tty, "New password: ", pw, len, n);
    if (r == 0)
        r = prompt(tty, "Again: ", again, sizeof(again), &n2);
    if (r == 0 && (n2 != *n || memcmp(pw, again, n2) != 0)) {
        fprintf(stderr, "posternctl: the passwords differ; nothing changed\n");
        r = -1;
    }
    OPENSSL_cleanse(again, sizeof(again));
    if (tty != STDIN_FILENO)
        close(tty);
    return r;
}

static int make_hash(const char *pw, char *out, size_t outlen)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    const char *h;
    int rc = -1;

    memset(&cd, 0, sizeof(cd));
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) && (h = crypt_rn(pw, salt, &cd, sizeof(cd))) &&
        h[0] == '$' && strlen(h) < outlen) {
        strcpy(out, h);
        rc = 0;
    }
    OPENSSL_cleanse(&cd, sizeof(cd));
    return rc;
}

/* Reads the whole file (locked), or NULL. */
static char *slurp(int fd, size_t *n)
{
    struct stat st;
    char *buf;
    size_t got = 0;

    if (fstat(fd, &st) < 0 || (size_t)st.st_size > FILE_MAX || !(buf = malloc((size_t)st.st_size + 1)))
        return NULL;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    *n = got;
    return buf;
}

/* Writes the file with the line of key replaced; 0, 1 when key has no
 * line, -1 on an error (printed). */
static int rewrite(const char *file, int fd, const char *key, const char *hash)
{
    char tmp[4200], dir[4096], lkey[MAPDB_KEY_MAX], *buf;
    size_t n, pos = 0;
    struct stat st;
    int out, found = 0, dfd;
    FILE *f;

    if (fstat(fd, &st) < 0 || !(buf = slurp(fd, &n))) {
        fprintf(stderr, "posternctl: %s: cannot read: %s\n", file, strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", file);
    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dirname(dir), basename((char *)file));
    if ((out = mkstemp(tmp)) < 0 || !(f = fdopen(out, "w"))) {
        fprintf(stderr, "posternctl: %s: %s\n", tmp, strerror(errno));
        if (out >= 0) {
            close(out);
            unlink(tmp);
        }
        free(buf);
        return -1;
    }
    while (pos < n) {
        char *line = buf + pos, *eol = memchr(line, '\n', n - pos);
        size_t len = eol ? (size_t)(eol - line) + 1 : n - pos, klen;
        const char *s = line, *colon;
        pos += len;
        while (s < line + len && (*s == ' ' || *s == '\t'))
            s++;
        colon = memchr(s, ':', (size_t)(line + len - s));
        klen = colon ? (size_t)(colon - s) : (size_t)(line + len - s);
        while (klen > 0 && strchr(" \t\r\n", s[klen - 1]))
            klen--;
        if (!found && *s != '#' && klen > 0 && key_of(s, klen, lkey, sizeof(lkey)) == 0 && !strcmp(lkey, key)) {
            /* a passwd-file line keeps its fields after the hash (uid ... extra fields: the quota) */
            const char *rest = colon ? memchr(colon + 1, ':', (size_t)(line + len - colon - 1)) : NULL;
            size_t rlen = rest ? (size_t)(line + len - rest) : 0;
            while (rlen > 0 && strchr("\r\n", rest[rlen - 1]))
                rlen--;
            fprintf(f, "%.*s:%s%.*s\n", (int)klen, s, hash, (int)rlen, rest ? rest : "");
            found = 1;
            continue;
        }
        fwrite(line, 1, len, f);
        if (!eol)
            fputc('\n', f);
    }
    free(buf);
    if (!found) {
        fclose(f);
        unlink(tmp);
        return 1;
    }
    if (fflush(f) != 0 || fchmod(out, st.st_mode & 07777) < 0 ||
        (geteuid() == 0 && fchown(out, st.st_uid, st.st_gid) < 0) || fsync(out) < 0) {
        fprintf(stderr, "posternctl: %s: %s\n", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    fclose(f);
    if (rename(tmp, file) < 0) {
        fprintf(stderr, "posternctl: rename %s to %s: %s\n", tmp, file, strerror(errno));
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", file);
    if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Opens and locks the file that is at path now (not an inode a
 * concurrent rewrite has just replaced). */
static int open_locked(const char *path)
{
    for (int tries = 0; tries < 10; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

int ctl_passwd(const char *conf, int argc, char **argv)
{
    struct config cfg;
    char err[1200], key[MAPDB_KEY_MAX], clean[400], pw[PASS_MAX + 2], hash[256];
    size_t n;
    int fd, r;

    if (argc != 1) {
        fprintf(stderr, "usage: posternctl [-c FILE] passwd USER@DOMAIN\n");
        return EX_USAGE;
    }
    log_sanitize(argv[0], strlen(argv[0]), clean, sizeof(clean));
    if (key_of(argv[0], strlen(argv[0]), key, sizeof(key)) < 0) {
        fprintf(stderr, "posternctl: %s is not a mailbox address (user@domain)\n", clean);
        return EX_USAGE;
    }
    config_defaults(&cfg);
    if (config_load(&cfg, config_path(conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: fatal: %s\n", err);
        config_free(&cfg);
        return EX_CONFIG;
    }
    if (!cfg.mailboxes_file[0]) {
        fprintf(stderr, "posternctl: mailboxes_file is not set\n");
        config_free(&cfg);
        return EX_CONFIG;
    }
    if (get_password(pw, sizeof(pw), &n) < 0 || n == 0) {
        if (n == 0)
            fprintf(stderr, "posternctl: empty password; nothing changed\n");
        OPENSSL_cleanse(pw, sizeof(pw));
        config_free(&cfg);
        return EX_DATAERR;
    }
    if (memchr(pw, 0, n)) {
        fprintf(stderr, "posternctl: a password cannot hold a NUL byte\n");
        OPENSSL_cleanse(pw, sizeof(pw));
        config_free(&cfg);
        return EX_DATAERR;
    }
    r = make_hash(pw, hash, sizeof(hash));
    OPENSSL_cleanse(pw, sizeof(pw));
    if (r < 0) {
        fprintf(stderr, "posternctl: cannot hash the password (libcrypt: yescrypt)\n");
        config_free(&cfg);
        return EX_SOFTWARE;
    }
    fd = open_locked(cfg.mailboxes_file);
    if (fd < 0) {
        fprintf(stderr, "posternctl: %s: %s\n", cfg.mailboxes_file, strerror(errno));
        config_free(&cfg);
        return EX_NOINPUT;
    }
    r = rewrite(cfg.mailboxes_file, fd, key, hash);
    OPENSSL_cleanse(hash, sizeof(hash));
    close(fd);
    if (r == 1)
        fprintf(stderr, "posternctl: %s is not a mailbox in %s: add its line first\n", clean, cfg.mailboxes_file);
    if (r != 0) {
        config_free(&cfg);
        return r == 1 ? EX_NOUSER : EX_IOERR;
    }
    printf("posternctl: password of %s set (yescrypt) in %s\n", key, cfg.mailboxes_file);
    config_free(&cfg);
    /* the master compiles the auth map again; the auth process rereads it */
    return ctl_reload_maps(conf);
}
