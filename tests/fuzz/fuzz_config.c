/*
 * fuzz_config.c - libFuzzer target for config_load() (common/config.h), the
 * postern.conf reader that the master runs as root.
 *
 * Input: the file's contents. They are written to one mkstemp file in /tmp
 * per fuzzing process, rewritten for each input (and removed: see
 * open_tmp), then loaded into a fresh struct config (the system host name
 * lookup included, when the input sets no hostname).
 *
 * Checks: on error the message is non-empty, terminated, starts with the
 * file's path and a ':', and a line number after it ("FILE:LINE: ...", and
 * "first set on line N" for duplicates) is between 1 and the input's line
 * count; on success the message stays empty and the result keeps the
 * documented rules: every list holds at most CONF_MAX_LIST entries, the host
 * name and local domains are valid (lower-case) domain names, TLS files come
 * in pairs, min_backoff <= max_backoff, numbers within their ranges, each
 * local domain is found by config_is_local_domain in upper case and each
 * relay network matches its own address in cidr_list_match. A
 * config is freed after every input, so LeakSanitizer sees any leak.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_config: %s:%d: check failed: %s\n", __FILE__,  \
                    __LINE__, #cond);                                            \
            abort();                                                             \
        }                                                                        \
    } while (0)

static char tmp_path[64];       /* the mkstemp name */
static char load_path[64];      /* what config_load is given */
static int tmp_fd = -1;

static void remove_tmp(void)
{
    if (tmp_path[0])
        unlink(tmp_path);
}

/*
 * The file is removed from /tmp at once and read through /proc/self/fd, so
 * that nothing is left behind even when a crash ends the process; without
 * /proc it keeps its name until exit.
 */
static void open_tmp(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/postern-fuzz-config-XXXXXX");
    tmp_fd = mkstemp(tmp_path);
    if (tmp_fd < 0) {
        perror("fuzz_config: mkstemp");
        abort();
    }
    snprintf(load_path, sizeof load_path, "/proc/self/fd/%d", tmp_fd);
    if (access(load_path, R_OK) == 0) {
        unlink(tmp_path);
        tmp_path[0] = 0;
    } else {
        snprintf(load_path, sizeof load_path, "%s", tmp_path);
        atexit(remove_tmp);
    }
}

static void write_tmp(const uint8_t *data, size_t size)
{
    size_t off = 0;

    if (ftruncate(tmp_fd, 0) < 0)
        abort();
    while (off < size) {
        ssize_t n = pwrite(tmp_fd, data + off, size - off, (off_t)off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
}

/* Lines as the reader counts them: each LF ends one, and a last line
 * without LF counts too. */
static unsigned long count_lines(const uint8_t *data, size_t size)
{
    unsigned long n = 0;

    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n')
            n++;
    if (size > 0 && data[size - 1] != '\n')
        n++;
    return n;
}

/* Reads a decimal number at *p; 1 and advances on success. */
static int read_num(const char **p, unsigned long *out)
{
    const char *s = *p;
    unsigned long v = 0;

    if (*s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > 100000000ul)
            return 0;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    *p = s;
    *out = v;
    return 1;
}

static void check_error(const char *err, size_t errsize, unsigned long lines)
{
    size_t plen = strlen(load_path);
    const char *p, *dup;
    unsigned long n;

    CHECK(memchr(err, 0, errsize) != NULL);
    if (strncmp(err, load_path, plen) != 0 || err[plen] != ':') {
        fprintf(stderr, "fuzz_config: message does not start with the path: \"%s\"\n", err);
        CHECK(0 && "error message starts with FILE:");
    }
    p = err + plen + 1;
    if (read_num(&p, &n)) {
        CHECK(*p == ':');
        if (n < 1 || n > lines) {
            fprintf(stderr, "fuzz_config: line %lu of %lu: \"%s\"\n", n, lines, err);
            CHECK(0 && "line number within the file");
        }
        /* ": duplicate key \"KEY\" (first set on line N)", KEY a known name */
        if (strncmp(p, ": duplicate key \"", 17) == 0) {
            unsigned long first;
            dup = strrchr(p, '(');
            CHECK(dup != NULL && strncmp(dup, "(first set on line ", 19) == 0);
            dup += 19;
            CHECK(read_num(&dup, &first) && strcmp(dup, ")") == 0);
            CHECK(first >= 1 && first < n);
        }
    } else {
        CHECK(*p == ' ');
    }
}

static int lower_domain(const char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            return 0;
    return 1;
}

static void check_config(const struct config *c)
{
    CHECK(memchr(c->hostname, 0, sizeof c->hostname) != NULL);
    CHECK(addr_valid_domain(c->hostname, strlen(c->hostname), 0));
    CHECK(c->listen_smtp.n <= CONF_MAX_LIST && c->listen_submission.n <= CONF_MAX_LIST &&
          c->listen_smtps.n <= CONF_MAX_LIST && c->relay_networks.n <= CONF_MAX_LIST);
    CHECK(c->local_domains.n <= CONF_MAX_LIST && c->dns_forwarders.n <= CONF_MAX_LIST &&
          c->dns_stub_zones.n <= CONF_MAX_LIST);
    for (size_t i = 0; i < c->local_domains.n; i++) {
        const char *d = c->local_domains.v[i];
        CHECK(d != NULL && lower_domain(d) && addr_valid_domain(d, strlen(d), 0));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(d, c->local_domains.v[j]) != 0);
    }
    for (size_t i = 0; i < c->local_domains.n; i++) {
        char up[256];
        size_t k;

        /* the queries the servers make: case-insensitive */
        for (k = 0; c->local_domains.v[i][k] && k < sizeof up - 1; k++) {
            char ch = c->local_domains.v[i][k];
            up[k] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
        }
        up[k] = 0;
        CHECK(config_is_local_domain(c, up));
    }
    for (size_t i = 0; i < c->relay_networks.n; i++) {
        const struct cidr *n = &c->relay_networks.v[i];
        struct sockaddr_storage ss;

        CHECK((n->family == AF_INET && n->prefix <= 32) ||
              (n->family == AF_INET6 && n->prefix <= 128));
        /* a network contains its own address */
        memset(&ss, 0, sizeof ss);
        if (n->family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, n->addr, 4);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, n->addr, 16);
        }
        CHECK(cidr_list_match(&c->relay_networks, (struct sockaddr *)&ss));
    }
    CHECK((c->tls_cert_file[0] != 0) == (c->tls_key_file[0] != 0));
    CHECK(c->min_backoff >= 1 && c->min_backoff <= c->max_backoff);
    CHECK(c->max_message_size >= 1 && c->queue_lifetime >= 1 && c->smtpd_timeout >= 1);
    CHECK(c->max_recipients >= 1 && c->max_recipients <= 1000000);
    CHECK(c->remote_smtp_port >= 1 && c->remote_smtp_port <= 65535);
    CHECK(c->smtpd_processes >= 1 && c->smtpd_processes <= 64);
    CHECK(c->smtpd_max_line >= 1000 && c->smtpd_max_line <= 2048);
    CHECK(c->chroot == 0 || c->chroot == 1);
    CHECK(c->debug == 0 || c->debug == 1);
    CHECK(c->user_smtpd[0] && c->user_queue[0] && c->user_resolver[0] && c->user_deliver[0]);
    CHECK(c->spool_dir[0] && c->run_dir[0] && c->mailbox_dir[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config c;
    char err[1024];
    int rc;

    if (tmp_fd < 0)
        open_tmp();
    write_tmp(data, size);

    memset(&c, 0, sizeof c);
    memset(err, 'X', sizeof err);
    rc = config_load(&c, load_path, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        CHECK(err[0] == 0);
        CHECK(strcmp(c.path, load_path) == 0);
        check_config(&c);
    } else {
        CHECK(err[0] != 0);
        check_error(err, sizeof err, count_lines(data, size));
    }
    config_free(&c);
    return 0;
}
