/*
 * status.c - the master's readiness line in RUN_DIR (status.h).
 *
 * Written as root into run_dir, which only the master's account may write:
 * still opened without following symlinks, written to a temporary name and
 * renamed, so a reader never sees half a line. The reader takes at most
 * STATUS_MAX bytes and accepts only one line of printable ASCII, so
 * `postern status` never prints what it did not expect.
 */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int status_path(const char *run_dir, const char *name, const char *suffix, char *out,
                       size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s%s", run_dir, name, suffix);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int status_write(const char *run_dir, const char *line)
{
    return status_file_write(run_dir, STATUS_FILE, line);
}

int status_read(const char *run_dir, char *out, size_t outlen)
{
    return status_file_read(run_dir, STATUS_FILE, out, outlen);
}

int status_file_write(const char *run_dir, const char *name, const char *line)
{
    char tmp[4096], path[4096], buf[STATUS_MAX];
    int fd, n, rc = 0;

    n = snprintf(buf, sizeof(buf), "%s\n", line);
    if (n < 0 || (size_t)n >= sizeof(buf) || status_path(run_dir, name, ".new", tmp, sizeof(tmp)) < 0 ||
        status_path(run_dir, name, "", path, sizeof(path)) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, buf, (size_t)n) < 0)
        rc = -1;
    if (close(fd) < 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -1;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int status_file_read(const char *run_dir, const char *name, char *out, size_t outlen)
{
    char path[4096], buf[STATUS_MAX + 1];
    ssize_t n;
    int fd;

    if (outlen == 0 || status_path(run_dir, name, "", path, sizeof(path)) < 0)
        return -1;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0 || n > STATUS_MAX || buf[n - 1] != '\n')
        return -1;
    for (ssize_t i = 0; i < n - 1; i++)
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return -1;
    buf[n - 1] = 0;
    str_copy(out, buf, outlen);
    return 0;
}

void status_remove(const char *run_dir)
{
    char path[4096];

    if (status_path(run_dir, STATUS_FILE, "", path, sizeof(path)) == 0)
        unlink(path);
}
