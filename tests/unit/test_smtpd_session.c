/*
 * test_smtpd_session.c - CUnit suite for smtpd's suspend/resume: a real
 * session (session.c, command.c) on one end of a socketpair, an
 * asynchronous recipient checker that answers only when the test says so,
 * and a pipelined batch of commands written before the session reads.
 * Asserts that nothing behind a suspended command is answered, that replies
 * go out in command order as the checks are answered, and that a client
 * that disconnects while suspended cancels the request exactly once. The
 * loop runs until a condition, with a guard timer as the deadline.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../smtpd/command.h"
#include "config.h"
#include "evloop.h"
#include "evwait.h"
#include "log.h"
#include "../../smtpd/session.h"
#include "suites.h"

static struct evloop *ev;
static struct config cfg;

static struct { struct session *s; uint32_t id; char mailbox[64]; } checks[8];
static unsigned nchecks, ncancels;
static uint32_t cancelled[8];
static uint32_t next_id = 100;

static uint32_t fake_start(struct session *s, const char *mailbox)
{
    if (nchecks >= 8)
        return 0;
    checks[nchecks].s = s;
    checks[nchecks].id = ++next_id;
    snprintf(checks[nchecks].mailbox, sizeof(checks[nchecks].mailbox), "%s", mailbox);
    nchecks++;
    ev_stop(ev);
    return next_id;
}

static void fake_cancel(uint32_t id)
{
    if (ncancels < 8)
        cancelled[ncancels] = id;
    ncancels++;
    ev_stop(ev);
}

static const struct rcpt_checker fake = { fake_start, fake_cancel };

static int run_until(int (*cond)(void), uint64_t ms)
{
    return ev_run_until(ev, cond, ms);
}

static int c_one_check(void) { return nchecks >= 1; }
static int c_one_cancel(void) { return ncancels >= 1; }
static int c_no_session(void) { return session_count() == 0; }

/* Everything the client side can read now (and whether it saw EOF). */
static size_t drain(int fd, char *out, size_t outlen, int *eof)
{
    size_t o = 0;

    *eof = 0;
    for (;;) {
        ssize_t n = recv(fd, out + o, outlen - 1 - o, MSG_DONTWAIT);
        if (n > 0) {
            o += (size_t)n;
            continue;
        }
        if (n == 0)
            *eof = 1;
        break;
    }
    out[o] = 0;
    return o;
}

static int setup(void)
{
    ev = ev_new();
    if (!ev)
        return -1;
    config_defaults(&cfg);
    session_init(ev, &cfg);
    command_set_rcpt_checker(&fake);
    return 0;
}

static int teardown(void)
{
    command_set_rcpt_checker(NULL);
    config_free(&cfg);
    ev_free(ev);
    return 0;
}

static struct session *start(int sv[2], const char *batch)
{
    struct sockaddr_storage peer = { .ss_family = AF_UNIX };

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    CU_ASSERT_FATAL(send(sv[1], batch, strlen(batch), 0) == (ssize_t)strlen(batch));
    return session_start(sv[0], PORT_SMTP, &peer, "192.0.2.7");
}

static void test_pipelined_order(void)
{
    int sv[2], eof;
    char got[8192], want[1024];
    const char *batch = "EHLO client.example\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<a@localhost>\r\n"
                        "RCPT TO:<b@localhost>\r\nNOOP\r\nQUIT\r\n";
    struct session *s;

    nchecks = ncancels = 0;
    s = start(sv, batch);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_TRUE(run_until(c_one_check, 3000));
    CU_ASSERT_EQUAL(nchecks, 1);
    CU_ASSERT_STRING_EQUAL(checks[0].mailbox, "a@localhost");
    CU_ASSERT_PTR_EQUAL(checks[0].s, s);
    /* Up to MAIL answered; nothing behind the suspended RCPT, however long we wait. */
    run_until(c_no_session, 200);
    drain(sv[1], got, sizeof(got), &eof);
    CU_ASSERT_FALSE(eof);
    snprintf(want, sizeof(want), "220 %s ESMTP Postern\r\n", cfg.hostname);
    CU_ASSERT_EQUAL(strncmp(got, want, strlen(want)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "250 CHUNKING\r\n250 2.1.0 Ok\r\n"));
    CU_ASSERT_EQUAL(strcmp(got + strlen(got) - strlen("250 2.1.0 Ok\r\n"), "250 2.1.0 Ok\r\n"), 0);
    CU_ASSERT_PTR_NULL(strstr(got, "2.1.5"));
    CU_ASSERT_EQUAL(s->txn.env.nrcpt, 1); /* held while it is checked */

    /* First answer: its reply, then the next RCPT suspends again. */
    command_rcpt_checked(s, NULL);
    CU_ASSERT_EQUAL(nchecks, 2);
    CU_ASSERT_STRING_EQUAL(checks[1].mailbox, "b@localhost");
    run_until(c_no_session, 200);
    drain(sv[1], got, sizeof(got), &eof);
    CU_ASSERT_STRING_EQUAL(got, "250 2.1.5 Ok\r\n");
    CU_ASSERT_EQUAL(s->txn.env.nrcpt, 2);

    /* Second answer refuses: its reply, then NOOP and QUIT, in order. */
    command_rcpt_checked(s, "550 5.1.1 <b@localhost>: Recipient address rejected");
    CU_ASSERT_TRUE(run_until(c_no_session, 3000));
    drain(sv[1], got, sizeof(got), &eof);
    CU_ASSERT_STRING_EQUAL(got, "550 5.1.1 <b@localhost>: Recipient address rejected\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
    CU_ASSERT_TRUE(eof);
    CU_ASSERT_EQUAL(ncancels, 0);
    close(sv[1]);
}

static void test_disconnect_cancels(void)
{
    int sv[2], eof;
    char got[4096];
    struct session *s;

    nchecks = ncancels = 0;
    s = start(sv, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@localhost>\r\nNOOP\r\n");
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_TRUE(run_until(c_one_check, 3000));
    drain(sv[1], got, sizeof(got), &eof);
    CU_ASSERT_PTR_NULL(strstr(got, "250 2.0.0 Ok")); /* NOOP waits behind RCPT */
    close(sv[1]);
    CU_ASSERT_TRUE(run_until(c_one_cancel, 3000));
    CU_ASSERT_EQUAL(ncancels, 1);
    CU_ASSERT_EQUAL(cancelled[0], checks[0].id);
    CU_ASSERT_EQUAL(session_count(), 0);
    CU_ASSERT_EQUAL(nchecks, 1);
}

void suite_smtpd_session(void)
{
    CU_pSuite s = CU_add_suite("smtpd_session", setup, teardown);

    if (!s)
        return;
    CU_add_test(s, "pipelined replies in order across suspensions", test_pipelined_order);
    CU_add_test(s, "disconnect while suspended cancels the request", test_disconnect_cancels);
}
