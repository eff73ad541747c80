/*
 * notify.c - sd_notify datagrams to systemd (notify.h).
 *
 * The socket path comes from the environment systemd gave the master; it
 * is an AF_UNIX datagram socket, a path or an abstract name ("@..."). We
 * only ever send fixed words and our own status text, never read.
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static int notify_warned;

void notify_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");
    size_t n;

    notify_len = 0;
    if (!p || !p[0])
        return;
    n = strlen(p);
    if ((p[0] != '/' && p[0] != '@') || n >= sizeof(notify_addr.sun_path)) {
        log_warning("NOTIFY_SOCKET \"%.100s\" is not a socket path: systemd will not hear that we are ready", p);
        unsetenv("NOTIFY_SOCKET");
        return;
    }
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, p, n);
    if (p[0] == '@')
        notify_addr.sun_path[0] = 0;        /* abstract namespace */
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (p[0] == '/'));
    unsetenv("NOTIFY_SOCKET");
}

void notify_send(const char *state, const char *status)
{
    char msg[1024];
    int fd, n;

    if (!notify_len)
        return;
    n = snprintf(msg, sizeof(msg), "%s\nSTATUS=%s\n", state, status ? status : "");
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = snprintf(msg, sizeof(msg), "%s\n", state);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len) < 0) {
        if (!notify_warned)
            log_warning("cannot notify systemd (%s): %s", state, strerror(errno));
        notify_warned = 1;
    }
    if (fd >= 0)
        close(fd);
}
