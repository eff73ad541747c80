/*
 * ready.c - the child's half of the readiness protocol, and the check the
 * master applies to what arrives (ready.h).
 *
 * It must never write anything but READY_MESSAGE, never write to a
 * descriptor that is not a pipe (a stale or forged POSTERN_READY_FD must
 * not turn into bytes on a socket or a file), and never block: the message
 * is shorter than PIPE_BUF and the pipe is new, so one write() suffices.
 */
#include "ready.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int ready_notify(void)
{
    const char *v = getenv(READY_ENV);
    struct stat st;
    uint64_t fd;
    ssize_t n;

    if (!v)
        return 0;
    if (parse_u64(v, &fd) < 0 || fd < 3 || fd > 65535) {
        log_warning("ignoring %s=\"%.20s\": not a descriptor number", READY_ENV, v);
        unsetenv(READY_ENV);
        return -1;
    }
    unsetenv(READY_ENV);
    if (fstat((int)fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        log_warning("ignoring %s=%d: not an open pipe", READY_ENV, (int)fd);
        return -1;
    }
    do
        n = write((int)fd, READY_MESSAGE, READY_LEN);
    while (n < 0 && errno == EINTR);
    close((int)fd);
    if (n != (ssize_t)READY_LEN) {
        log_warning("cannot tell the master I am ready: %s",
                    n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

int ready_check(const char *buf, size_t len)
{
    if (len > READY_LEN || memcmp(buf, READY_MESSAGE, len) != 0)
        return -1;
    return len == READY_LEN ? 1 : 0;
}
