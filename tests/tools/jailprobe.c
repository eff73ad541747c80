/*
 * jailprobe - test tool for tests/integration/test_jail.py: enters a
 * role's jail with the daemons' own privilege drop (common/privsep.c,
 * priv_drop) and tries what a compromised process of that role would try.
 *
 *   jailprobe JAIL UID GID [PID|pPID...]   (as root; never installed)
 *
 * Then, as UID:GID chrooted into JAIL, it tries to: open /etc/passwd and
 * a path climbing out with ".."; create a file and a directory in every
 * directory of the jail; open every file in it for writing; chroot again
 * (the classic escape); regain root; and signal and ptrace each PID
 * (only ptrace each pPID, a process of the same account).
 * Every attempt must fail. One line each ("denied: ..." or "ALLOWED:
 * ..."), the process's own /proc/self/status Uid, Gid, CapEff, CapBnd and
 * NoNewPrivs for the test to compare with the live daemon, and exit 0 only
 * when everything was denied. It must never be built into a daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "util.h"

static int allowed;

static void verdict(int ok_denied, const char *what, int err)
{
    if (ok_denied) {
        printf("denied: %s (%s)\n", what, strerror(err));
    } else {
        printf("ALLOWED: %s\n", what);
        allowed++;
    }
}

/* Tries to write into every directory and file under path (inside the jail). */
static void try_writes(const char *path, int depth)
{
    char what[4200], p[4096];
    DIR *d;
    struct dirent *e;
    int fd;

    const char *sep = strcmp(path, "/") ? "/" : "";

    snprintf(p, sizeof(p), "%s%s.jailprobe-file", path, sep);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    snprintf(what, sizeof(what), "create file %s", p);
    verdict(fd < 0, what, errno);
    if (fd >= 0) {
        close(fd);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s%s.jailprobe-dir", path, sep);
    snprintf(what, sizeof(what), "mkdir %s", p);
    if (mkdir(p, 0700) == 0) {
        verdict(0, what, 0);
        rmdir(p);
    } else {
        verdict(1, what, errno);
    }
    if (depth > 4 || !(d = opendir(path)))
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s%s%s", path, sep, e->d_name);
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            try_writes(p, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            fd = open(p, O_WRONLY | O_NOFOLLOW);
            snprintf(what, sizeof(what), "open %s for writing", p);
            verdict(fd < 0, what, errno);
            if (fd >= 0)
                close(fd);
            snprintf(what, sizeof(what), "unlink %s", p);
            /* unlink is tried on a hard link's name only if the directory
             * is writable, which try_writes already proved it is not */
        } else if (S_ISSOCK(st.st_mode)) {
            printf("socket: %s (connecting is the role's job)\n", p);
        }
    }
    closedir(d);
}

/* status_fd: /proc/self/status, opened before the chroot (the jail has
 * no /proc); each read shows the state of now. */
static void show_status(int status_fd)
{
    char line[512];
    FILE *f = status_fd >= 0 ? fdopen(status_fd, "r") : NULL;

    if (!f) {
        printf("status: not readable\n");
        return;
    }
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "CapEff:", 7) ||
            !strncmp(line, "NoNewPrivs:", 11))
            printf("status: %s", line);
    fclose(f);
}

int main(int argc, char **argv)
{
    struct account a;
    uint64_t u, g;
    char what[256];
    int fd;

    if (argc < 4 || parse_u64(argv[2], &u) < 0 || parse_u64(argv[3], &g) < 0 || u == 0 || g == 0) {
        fprintf(stderr, "usage: jailprobe JAIL UID GID [PID...]\n");
        return 64;
    }
    log_init("jailprobe", 1);
    int status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    memset(&a, 0, sizeof(a));
    a.uid = (uid_t)u;
    a.gid = (gid_t)g;
    snprintf(a.name, sizeof(a.name), "%s:%s", argv[2], argv[3]);
    priv_drop(&a, argv[1]);        /* the daemons' own path: setgroups, chroot, setresgid, setresuid */
    if (!priv_is_root())
        printf("dropped: uid %lu gid %lu, chrooted into %s\n", (unsigned long)getuid(),
               (unsigned long)getgid(), argv[1]);
    else
        verdict(0, "privilege drop (still root)", 0);

    const char *reads[] = { "/etc/passwd", "/etc/shadow", "../../../../../../etc/passwd", "/proc/1/root/etc/passwd" };
    for (size_t i = 0; i < ARRAY_LEN(reads); i++) {
        fd = open(reads[i], O_RDONLY);
        snprintf(what, sizeof(what), "open %s", reads[i]);
        verdict(fd < 0, what, errno);
        if (fd >= 0)
            close(fd);
    }
    const char *shells[] = { "/bin/sh", "/usr/bin/sh", "/bin/bash" };
    for (size_t i = 0; i < ARRAY_LEN(shells); i++) {
        snprintf(what, sizeof(what), "find a shell at %s", shells[i]);
        verdict(access(shells[i], F_OK) < 0, what, errno);
    }
    try_writes("/", 0);
    if (mkdir("/tmp", 0700) == 0)
        verdict(0, "mkdir /tmp", 0);
    verdict(chroot("..") < 0, "chroot(\"..\") to climb out", errno);
    verdict(setuid(0) < 0, "setuid(0)", errno);

    for (int i = 4; i < argc; i++) {
        /* "pPID": a process of the same account (another worker of the
         * role): signals between them are allowed by design, ptrace is not
         * (they are not dumpable after the uid change) */
        int ptrace_only = argv[i][0] == 'p';
        uint64_t pid;
        if (parse_u64(argv[i] + ptrace_only, &pid) < 0 || pid == 0)
            continue;
        snprintf(what, sizeof(what), "kill(%llu, SIGCONT)", (unsigned long long)pid);
        if (!ptrace_only)
            verdict(kill((pid_t)pid, SIGCONT) < 0, what, errno);
        snprintf(what, sizeof(what), "ptrace(PTRACE_ATTACH, %llu)", (unsigned long long)pid);
        if (ptrace(PTRACE_ATTACH, (pid_t)pid, NULL, NULL) == 0) {
            verdict(0, what, 0);
            waitpid((pid_t)pid, NULL, 0);
            ptrace(PTRACE_DETACH, (pid_t)pid, NULL, NULL);
        } else {
            verdict(1, what, errno);
        }
    }
    show_status(status_fd);
    printf("%s\n", allowed ? "RESULT: something was allowed" : "RESULT: everything denied");
    return allowed ? 1 : 0;
}
