/*
 * net.c - listening sockets, UNIX sockets, address text, peer credentials.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int net_listen(const struct listen_addr *la, char *err, size_t errlen)
{
    int fd, one = 1;
    int family = la->ss.ss_family;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", la->text, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&la->ss, la->sslen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", la->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int net_listen_unix(const char *path, mode_t mode, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    str_copy(sun.sun_path, path, sizeof(sun.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, mode) < 0 ||
        listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    const void *a = NULL;

    if (sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        /* Show a v4-mapped client as the IPv4 address it is. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outlen);
            return;
        }
        a = &s6->sin6_addr;
    }
    if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
        str_copy(out, "unknown", outlen);
}

unsigned net_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

int net_peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return -1;
    if (uid) *uid = uc.uid;
    if (gid) *gid = uc.gid;
    if (pid) *pid = uc.pid;
    return 0;
}

int net_accept_peer(int lfd, uid_t *uid, pid_t *pid)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EWOULDBLOCK)
                errno = EAGAIN;
            return -1;
        }
        if (net_peer_cred(fd, uid, NULL, pid) == 0)
            return fd;
        close(fd);
    }
}

int net_accept_from(int lfd, const uid_t *allowed, size_t n, uid_t *uid, pid_t *pid)
{
    for (;;) {
        int fd = net_accept_peer(lfd, uid, pid);
        int ok = fd >= 0 && *uid == getuid();

        if (fd < 0)
            return -1;
        for (size_t i = 0; i < n && !ok; i++)
            ok = allowed[i] == *uid;
        if (ok)
            return fd;
        log_warning("refused connection from uid %lu pid %ld", (unsigned long)*uid, (long)*pid);
        close(fd);
    }
}
