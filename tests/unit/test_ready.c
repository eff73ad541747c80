/*
 * test_ready.c - CUnit suite for common/ready.c: ready_notify() writes
 * exactly READY_MESSAGE to the pipe named by POSTERN_READY_FD and closes
 * it, does nothing without the variable or a second time, and refuses a
 * variable that names no pipe without writing; ready_check() accepts the
 * message whole, waits on a correct beginning, and refuses anything else.
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ready.h"
#include "suites.h"

static void set_fd_var(int fd)
{
    char v[32];

    snprintf(v, sizeof(v), "%d", fd);
    setenv(READY_ENV, v, 1);
}

static void test_notify_pipe(void)
{
    char buf[64];
    int p[2];
    ssize_t n;

    CU_ASSERT_FATAL(pipe(p) == 0);
    set_fd_var(p[1]);
    CU_ASSERT_EQUAL(ready_notify(), 0);
    CU_ASSERT_PTR_NULL(getenv(READY_ENV));
    CU_ASSERT(fcntl(p[1], F_GETFD) < 0); /* closed */
    n = read(p[0], buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, (ssize_t)READY_LEN);
    CU_ASSERT(n == (ssize_t)READY_LEN && memcmp(buf, READY_MESSAGE, READY_LEN) == 0);
    CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), 0); /* end of file: nothing more */
    CU_ASSERT_EQUAL(ready_notify(), 0);                /* a second call: nothing */
    close(p[0]);
}

static void test_notify_without_variable(void)
{
    unsetenv(READY_ENV);
    CU_ASSERT_EQUAL(ready_notify(), 0);
}

static void test_notify_refuses(void)
{
    const char *bad[] = { "", "x", "-1", "0", "1", "2", "3x", " 5", "99999999999999999999999" };
    char path[] = "/tmp/postern-ready-test.XXXXXX";
    struct stat st;
    int fd, saved = dup(STDERR_FILENO), nul = open("/dev/null", O_WRONLY);

    /* The warnings are expected: keep them out of the test output. */
    log_init("unit", 1);
    CU_ASSERT_FATAL(saved >= 0 && nul >= 0);
    dup2(nul, STDERR_FILENO);
    close(nul);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv(READY_ENV, bad[i], 1);
        CU_ASSERT_EQUAL(ready_notify(), -1);
        CU_ASSERT_PTR_NULL(getenv(READY_ENV));
    }
    /* A regular file, and a closed descriptor: refused, nothing written. */
    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    set_fd_var(fd);
    CU_ASSERT_EQUAL(ready_notify(), -1);
    CU_ASSERT(fstat(fd, &st) == 0 && st.st_size == 0);
    CU_ASSERT(fcntl(fd, F_GETFD) >= 0); /* not ours to close */
    close(fd);
    unlink(path);
    set_fd_var(fd);
    CU_ASSERT_EQUAL(ready_notify(), -1);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

static void test_check(void)
{
    CU_ASSERT_EQUAL(ready_check(READY_MESSAGE, READY_LEN), 1);
    CU_ASSERT_EQUAL(ready_check("", 0), 0);
    CU_ASSERT_EQUAL(ready_check("rea", 3), 0);
    CU_ASSERT_EQUAL(ready_check("ready", 5), 0);
    CU_ASSERT_EQUAL(ready_check("ready\n!", 7), -1);
    CU_ASSERT_EQUAL(ready_check("READY\n", 6), -1);
    CU_ASSERT_EQUAL(ready_check("ready\r", 6), -1);
    CU_ASSERT_EQUAL(ready_check("x", 1), -1);
    CU_ASSERT_EQUAL(ready_check("ready\0", 6), -1);
}

void suite_ready(void)
{
    CU_pSuite s = CU_add_suite("ready", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "notify writes the message once and closes", test_notify_pipe);
    CU_add_test(s, "notify without the variable does nothing", test_notify_without_variable);
    CU_add_test(s, "notify refuses what is not a pipe", test_notify_refuses);
    CU_add_test(s, "check: whole, beginning, anything else", test_check);
}
