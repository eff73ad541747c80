/*
 * reload.c - the reload request and its verdict file (reload.h).
 *
 * The client side runs as whoever typed the command: it signals only the
 * pid that the locked pid file names (pidfile_running), sends nothing but
 * SIGHUP, and prints only the printable ASCII line that status.c's reader
 * accepts. It never parses configuration on the master's behalf: the
 * master's own check is the one that counts.
 */
#include "reload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "pidfile.h"
#include "status.h"
#include "util.h"

int reload_note(const char *run_dir, unsigned long seq, int ok, const char *text)
{
    char line[STATUS_MAX - 1];

    snprintf(line, sizeof(line), "%ld %lu %s %s", (long)getpid(), seq, ok ? "ok" : "refused", text);
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    return status_file_write(run_dir, RELOAD_FILE, line);
}

enum reload_verdict reload_request(const char *run_dir, int timeout_ms, char *text, size_t textlen)
{
    char pidpath[4096], before[STATUS_MAX] = "", now[STATUS_MAX], prefix[32];
    uint64_t deadline;
    pid_t pid;

    if ((size_t)snprintf(pidpath, sizeof(pidpath), "%s/%s", run_dir, PID_FILE) >= sizeof(pidpath)) {
        snprintf(text, textlen, "%s: run_dir too long", run_dir);
        return RELOAD_ERROR;
    }
    pid = pidfile_running(pidpath, text, textlen);
    if (pid < 0)
        return RELOAD_ERROR;
    if (pid == 0) {
        snprintf(text, textlen, "not running (no live master holds %s)", pidpath);
        return RELOAD_NOT_RUNNING;
    }
    if (status_file_read(run_dir, RELOAD_FILE, before, sizeof(before)) < 0)
        before[0] = 0;
    if (kill(pid, SIGHUP) < 0) {
        snprintf(text, textlen, "cannot signal the master (pid %ld): %s", (long)pid, strerror(errno));
        return RELOAD_ERROR;
    }
    snprintf(prefix, sizeof(prefix), "%ld ", (long)pid);
    deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };

        if (status_file_read(run_dir, RELOAD_FILE, now, sizeof(now)) == 0 && strcmp(now, before) != 0 &&
            strncmp(now, prefix, strlen(prefix)) == 0) {
            const char *p = now + strlen(prefix);
            p += strcspn(p, " ");           /* the sequence number */
            p += *p == ' ';
            if (strncmp(p, "ok ", 3) == 0) {
                str_copy(text, p + 3, textlen);
                return RELOAD_DONE;
            }
            if (strncmp(p, "refused ", 8) == 0) {
                str_copy(text, p + 8, textlen);
                return RELOAD_REFUSED;
            }
            snprintf(text, textlen, "unexpected line in %s/%s", run_dir, RELOAD_FILE);
            return RELOAD_ERROR;
        }
        if (kill(pid, 0) < 0 && errno == ESRCH) {
            snprintf(text, textlen, "the master (pid %ld) exited during the reload; see the log", (long)pid);
            return RELOAD_ERROR;
        }
        if (now_ms() >= deadline) {
            snprintf(text, textlen, "the master (pid %ld) did not answer within %d s; see the log",
                     (long)pid, timeout_ms / 1000);
            return RELOAD_ERROR;
        }
        nanosleep(&ts, NULL);       /* polling a file with a deadline */
    }
}
