/*
 * pidfile.c - the master's pid file and lock (pidfile.h).
 *
 * The lock, not the pid, decides whether a master runs: a pid can be reused,
 * a lock dies with its holder. It is an open-file-description lock
 * (F_OFD_SETLK): it survives the daemon's forks like flock(2) would, and
 * unlike flock it can be tested (F_OFD_GETLK) without taking it, so that
 * `postern status` never makes a starting master believe another one runs. The file is opened without following
 * symlinks and must be a plain file of ours with one link, so that a planted
 * link cannot make root truncate some other file. Never removes a file it
 * does not hold the lock on.
 */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* F_OFD_SETLK or F_OFD_GETLK of the whole file; l_type is the result for GETLK. */
static int ofd_lock(int fd, int cmd, short type, short *result)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, cmd, &fl) < 0)
        return -1;
    if (result)
        *result = fl.l_type;
    return 0;
}

static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    uint64_t v;

    if (n <= 0)
        return 0;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (parse_u64(buf, &v) < 0 || v == 0 || v > 0x7fffffff)
        return 0;
    return (pid_t)v;
}

int pidfile_write(int fd, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);

    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != (ssize_t)n)
        return -1;
    return 0;
}

int pidfile_acquire(const char *path, pid_t *running, char *err, size_t errlen)
{
    *running = 0;
    /* A few rounds: the file may be removed under us by a master that exits. */
    for (int round = 0; round < 5; round++) {
        struct stat st, st2;
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

        if (fd < 0) {
            snprintf(err, errlen, "cannot open pid file %s: %s%s", path, strerror(errno),
                     errno == ELOOP ? " (a symbolic link: remove it)" : "");
            return -1;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
            st.st_uid != geteuid()) {
            snprintf(err, errlen, "pid file %s is not a plain file of uid %lu with one link: "
                     "remove it", path, (unsigned long)geteuid());
            close(fd);
            return -1;
        }
        if (ofd_lock(fd, F_OFD_SETLK, F_WRLCK, NULL) < 0) {
            int e = errno;
            if (e == EAGAIN || e == EACCES) {
                *running = read_pid(fd);
                close(fd);
                return -2;
            }
            snprintf(err, errlen, "cannot lock pid file %s: %s", path, strerror(e));
            close(fd);
            return -1;
        }
        /* Locked; but is it still the file that path names? */
        if (stat(path, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
            close(fd);
            continue;
        }
        if (pidfile_write(fd, getpid()) < 0) {
            snprintf(err, errlen, "cannot write pid file %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    snprintf(err, errlen, "pid file %s keeps changing: is another master starting?", path);
    return -1;
}

pid_t pidfile_running(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    short held;
    pid_t pid;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open pid file %s: %s", path, strerror(errno));
        return -1;
    }
    if (ofd_lock(fd, F_OFD_GETLK, F_RDLCK, &held) < 0) {
        snprintf(err, errlen, "cannot test the lock on pid file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (held == F_UNLCK) {
        close(fd);          /* nobody holds it: a stale file, no master */
        return 0;
    }
    pid = read_pid(fd);
    close(fd);
    if (pid == 0) {
        snprintf(err, errlen, "pid file %s is locked but holds no pid: is a master starting?",
                 path);
        return -1;
    }
    return pid;
}

void pidfile_remove(const char *path, int fd)
{
    if (fd < 0)
        return;
    unlink(path);
    close(fd);
}
