/*
 * test_lmtp.c - CUnit suite for LMTP (RFC 2033) in deliver: the "lmtp:"
 * destination forms (deliver/route.c), and the engine (deliver/smtpc.c in
 * LMTP mode) against a scripted LMTP server on a UNIX socket in the same
 * event loop: LHLO, and after the final dot one reply per accepted
 * recipient, each applied to that recipient alone (2xx sent, 4xx
 * deferred, 5xx bounced), a refused RCPT taking no dot reply, a
 * connection lost half-way through the replies deferring only the rest,
 * no HELO fallback, and a second message over the same session.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "evloop.h"
#include "evwait.h"
#include "route.h"
#include "smtpc.h"
#include "suites.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* destinations                                                        */

static void test_route_lmtp(void)
{
    struct route r;

    CU_ASSERT_EQUAL(route_parse("lmtp:unix:private/dovecot-lmtp", "", 25, &r), 0);
    CU_ASSERT(r.lmtp && r.no_mx && !r.relay && !r.literal);
    CU_ASSERT_STRING_EQUAL(r.unix_path, "private/dovecot-lmtp");
    CU_ASSERT_STRING_EQUAL(r.host, "private/dovecot-lmtp");
    CU_ASSERT_EQUAL(route_parse("LMTP:unix:/run/dovecot/lmtp", "", 25, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.unix_path, "/run/dovecot/lmtp");

    CU_ASSERT_EQUAL(route_parse("lmtp:[127.0.0.1]:2424", "", 25, &r), 0);
    CU_ASSERT(r.lmtp && r.no_mx && r.literal && !r.unix_path[0]);
    CU_ASSERT_STRING_EQUAL(r.host, "127.0.0.1");
    CU_ASSERT_EQUAL(r.port, 2424);
    CU_ASSERT_EQUAL(route_parse("lmtp:127.0.0.1:2425", "", 25, &r), 0);
    CU_ASSERT(r.literal && r.port == 2425);
    CU_ASSERT_EQUAL(route_parse("lmtp:[::1]:24", "", 25, &r), 0);
    CU_ASSERT(r.literal && r.port == 24);
    /* by name: address look-ups only, never MX; LMTP's port 24 by default */
    CU_ASSERT_EQUAL(route_parse("lmtp:Mail.Example:2003", "", 25, &r), 0);
    CU_ASSERT(r.lmtp && r.no_mx && !r.literal);
    CU_ASSERT_STRING_EQUAL(r.host, "mail.example");
    CU_ASSERT_EQUAL(r.port, 2003);
    CU_ASSERT_EQUAL(route_parse("lmtp:inet:mail.example", "", 25, &r), 0);
    CU_ASSERT(r.no_mx && r.port == ROUTE_LMTP_PORT);
    /* the relayhost is never an LMTP destination, even if spelt alike */
    CU_ASSERT_EQUAL(route_parse("lmtp:[127.0.0.1]:24", "lmtp:[127.0.0.1]:24", 25, &r), 0);
    CU_ASSERT(!r.relay);
    /* plain destinations are not LMTP */
    CU_ASSERT_EQUAL(route_parse("example.org", "", 25, &r), 0);
    CU_ASSERT(!r.lmtp && !r.unix_path[0]);

    char longpath[200];
    memset(longpath, 'a', sizeof longpath);
    memcpy(longpath, "lmtp:unix:", 10);
    longpath[10 + 108] = '\0';      /* 108 bytes do not fit sun_path with its NUL */
    const char *bad[] = { "lmtp:", "lmtp:unix:", "lmtp:unix:a b", "lmtp:unix:a\r\nb", "lmtp:[x",
                          "lmtp:host:0", "lmtp:lmtp:host", "lmtp:[127.0.0.1]:99999", "lmtp:bad host",
                          longpath };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(route_parse(bad[i], "", 25, &r), -1);
}

/* ------------------------------------------------------------------ */
/* a scripted LMTP server in the test's event loop                      */

struct fake {
    struct evloop *ev;
    int lfd, fd;
    char in[65536];
    size_t inlen;
    int in_data;
    const char *lhlo_reply;         /* NULL: a willing LHLO */
    const char *const *rcpt;        /* one reply per RCPT, in order */
    size_t nrcpt;
    const char *const *dot;         /* the replies after the final dot */
    size_t ndot;
    int close_after_dot;
    int messages;
    char cmds[4096];                /* the commands seen, one a line */
};

static struct fake fk;

/* A fresh script: RCPT replies (every further RCPT gets 250) and the
 * replies after the final dot. */
static void fake_script(const char *const *rcpt, size_t nrcpt, const char *const *dot, size_t ndot)
{
    memset(&fk, 0, sizeof fk);
    fk.rcpt = rcpt;
    fk.nrcpt = nrcpt;
    fk.dot = dot;
    fk.ndot = ndot;
}

static void fake_send(const char *s)
{
    size_t n = strlen(s), o = 0;

    while (o < n) {
        ssize_t w = send(fk.fd, s + o, n - o, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;               /* a few hundred bytes: never for long */
        if (w <= 0)
            return;
        o += (size_t)w;
    }
}

static void fake_close(void)
{
    if (fk.fd >= 0) {
        ev_del(fk.ev, fk.fd);
        close(fk.fd);
        fk.fd = -1;
    }
}

static void fake_line(const char *l)
{
    if (fk.in_data) {
        if (strcmp(l, ".") == 0) {
            fk.in_data = 0;
            fk.messages++;
            for (size_t i = 0; i < fk.ndot; i++)
                fake_send(fk.dot[i]);
            if (fk.close_after_dot)
                fake_close();
        }
        return;
    }
    size_t o = strlen(fk.cmds);
    snprintf(fk.cmds + o, sizeof fk.cmds - o, "%.40s\n", l);
    if (!strncmp(l, "LHLO ", 5))
        fake_send(fk.lhlo_reply ? fk.lhlo_reply
                                : "250-fake.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
    else if (!strncmp(l, "EHLO ", 5) || !strncmp(l, "HELO ", 5))
        fake_send("500 5.5.1 this is LMTP\r\n");
    else if (!strncmp(l, "MAIL ", 5))
        fake_send("250 2.1.0 Ok\r\n");
    else if (!strncmp(l, "RCPT ", 5)) {
        size_t k = 0;
        for (const char *p = fk.cmds; (p = strstr(p, "RCPT ")); p++)
            k++;
        fake_send(k - 1 < fk.nrcpt ? fk.rcpt[(k - 1) % fk.nrcpt] : "250 2.1.5 Ok\r\n");
    } else if (!strcmp(l, "DATA")) {
        fk.in_data = 1;
        fake_send("354 go ahead\r\n");
    } else if (!strcmp(l, "RSET")) {
        fake_send("250 2.0.0 Ok\r\n");
        /* the next message's RCPTs count from the start again */
        fk.cmds[0] = '\0';
    } else if (!strcmp(l, "QUIT")) {
        fake_send("221 2.0.0 Bye\r\n");
        fake_close();
    } else {
        fake_send("502 5.5.2 what\r\n");
    }
}

static void fake_io(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    (void)ev;
    (void)events;
    (void)arg;
    ssize_t n = recv(fd, fk.in + fk.inlen, sizeof fk.in - fk.inlen - 1, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        fake_close();
        return;
    }
    fk.inlen += (size_t)n;
    char *eol;
    size_t start = 0;
    while (fk.fd >= 0 && (eol = memmem(fk.in + start, fk.inlen - start, "\r\n", 2))) {
        *eol = '\0';
        fake_line(fk.in + start);
        start = (size_t)(eol - fk.in) + 2;
    }
    memmove(fk.in, fk.in + start, fk.inlen - start);
    fk.inlen -= start;
}

static void fake_accept(struct evloop *ev, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    fake_close();
    fk.fd = c;
    fk.inlen = 0;
    fk.in_data = 0;
    ev_add(ev, c, EPOLLIN, fake_io, NULL);
    fake_send("220 fake.test LMTP ready\r\n");
}

/* ------------------------------------------------------------------ */
/* the client side                                                     */

static char sockpath[108], msgpath[64];
static int done_n, closed_n;
static enum smtpc_outcome outcome[2];
static struct smtpc_msg *second;        /* sent over the same session after the first */

static void quiet(void *arg, const char *line)
{
    (void)arg;
    (void)line;
}

static struct evloop *cur_ev;           /* the loop running the session */

static void on_closed(struct smtpc *s, void *arg)
{
    (void)s;
    (void)arg;
    closed_n++;
    ev_stop(cur_ev);                    /* have ev_run_until look */
}

static void on_done(struct smtpc *s, struct smtpc_msg *m, enum smtpc_outcome o, void *arg)
{
    (void)m;
    (void)arg;
    if (done_n < 2)
        outcome[done_n] = o;
    done_n++;
    if (done_n == 1 && second && smtpc_reusable(s) && smtpc_send(s, second) == 0)
        return;
    smtpc_quit(s);
}

static int finished(void)
{
    return closed_n > 0;
}

static const char body[] = "Subject: lmtp unit test\r\n\r\nhello\r\n";

static void msg_init(struct smtpc_msg *m, struct smtpc_rcpt *rc, const char *const *addrs, size_t n, int fd)
{
    memset(m, 0, sizeof *m);
    memset(rc, 0, n * sizeof *rc);
    for (size_t i = 0; i < n; i++)
        rc[i].addr = addrs[i];
    m->fd = fd;
    m->size = sizeof body - 1;
    m->sender = "sender@example.org";
    m->rcpt = rc;
    m->nrcpt = n;
}

/* An LMTP client of the UNIX socket at path, short timeouts, quiet. */
static void client_setup(struct smtpc_config *cfg, struct smtpc_dest *dest, const char *path)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&dest->addr[0];

    memset(cfg, 0, sizeof *cfg);
    smtpc_default_timeouts(&cfg->t);
    cfg->t.connect = cfg->t.greeting = cfg->t.helo = cfg->t.mail = cfg->t.rcpt = 5000;
    cfg->t.data_init = cfg->t.data_xfer = cfg->t.data_done = cfg->t.rset = cfg->t.quit = 5000;
    cfg->t.idle = 0;
    cfg->helo_name = "client.test";
    cfg->tls = SMTPC_TLS_NONE;
    cfg->lmtp = 1;
    cfg->log = quiet;
    cfg->closed = on_closed;
    memset(dest, 0, sizeof *dest);
    snprintf(dest->host, sizeof dest->host, "%s", path);
    sun->sun_family = AF_UNIX;
    snprintf(sun->sun_path, sizeof sun->sun_path, "%s", path);
    dest->naddr = 1;
    dest->port = 24;
    done_n = closed_n = 0;
}

/* Runs one session over the fake server to the end (QUIT or failure). */
static void run_session(struct smtpc_msg *m, struct smtpc_msg *then)
{
    struct evloop *ev = ev_new();
    struct smtpc_config cfg;
    struct smtpc_dest dest;
    char dir[] = "/tmp/lmtp-unit.XXXXXX";

    CU_ASSERT_FATAL(ev != NULL);
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(sockpath, sizeof sockpath, "%s/lmtp.sock", dir);
    fk.ev = ev;
    fk.fd = -1;
    fk.messages = 0;
    fk.cmds[0] = '\0';
    fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fk.lfd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
    CU_ASSERT_FATAL(bind(fk.lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CU_ASSERT_FATAL(listen(fk.lfd, 4) == 0);
    CU_ASSERT_FATAL(ev_add(ev, fk.lfd, EPOLLIN, fake_accept, NULL) == 0);

    client_setup(&cfg, &dest, sockpath);
    second = then;
    cur_ev = ev;
    struct smtpc *s = smtpc_start(ev, &cfg, &dest, m, on_done, NULL);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT(ev_run_until(ev, finished, 10000));
    fake_close();
    ev_del(ev, fk.lfd);
    close(fk.lfd);
    unlink(sockpath);
    rmdir(dir);
    ev_free(ev);
}

static int open_msg(void)
{
    snprintf(msgpath, sizeof msgpath, "/tmp/lmtp-unit-msg.XXXXXX");
    int fd = mkstemp(msgpath);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, body, sizeof body - 1) == (ssize_t)(sizeof body - 1));
    unlink(msgpath);
    return fd;
}

static void test_lmtp_per_recipient(void)
{
    static const char *const addrs[] = { "a@x.test", "b@x.test", "c@x.test", "d@x.test" };
    static const char *const rcpt[] = { "250 2.1.5 Ok\r\n", "550 5.1.1 <b@x.test> User doesn't exist\r\n",
                                        "250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n" };
    /* b was refused at RCPT: three replies, for a, c and d in that order */
    static const char *const dot[] = { "250 2.0.0 <a@x.test> Saved\r\n",
                                       "452 4.2.2 <c@x.test> Mailbox is full\r\n",
                                       "550 5.2.1 <d@x.test> Mailbox disabled\r\n" };
    static const char *const addrs2[] = { "e@x.test", "f@x.test" };
    struct smtpc_msg m, m2;
    struct smtpc_rcpt rc[4], rc2[2];
    int fd = open_msg();

    msg_init(&m, rc, addrs, 4, fd);
    msg_init(&m2, rc2, addrs2, 2, fd);
    fake_script(rcpt, 4, dot, 3);
    run_session(&m, NULL);
    CU_ASSERT_EQUAL(done_n, 1);
    CU_ASSERT_EQUAL(outcome[0], SMTPC_DONE);
    CU_ASSERT(strstr(fk.cmds, "LHLO client.test\n") != NULL);
    CU_ASSERT(strstr(fk.cmds, "EHLO") == NULL && strstr(fk.cmds, "HELO ") == NULL);
    CU_ASSERT_EQUAL(fk.messages, 1);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_SENT);
    CU_ASSERT_STRING_EQUAL(rc[0].dsn, "2.0.0");
    CU_ASSERT(strstr(rc[0].reply, "<a@x.test> Saved") != NULL);
    CU_ASSERT_EQUAL(rc[1].status, SMTPC_BOUNCED);
    CU_ASSERT_STRING_EQUAL(rc[1].dsn, "5.1.1");
    CU_ASSERT(strstr(rc[1].reply, "in reply to RCPT TO command") != NULL);
    CU_ASSERT_EQUAL(rc[2].status, SMTPC_DEFERRED);
    CU_ASSERT_STRING_EQUAL(rc[2].dsn, "4.2.2");
    CU_ASSERT(strstr(rc[2].reply, "<c@x.test> Mailbox is full (in reply to end of DATA command)") != NULL);
    CU_ASSERT_EQUAL(rc[3].status, SMTPC_BOUNCED);
    CU_ASSERT_STRING_EQUAL(rc[3].dsn, "5.2.1");
    CU_ASSERT(strstr(rc[3].reply, "<d@x.test> Mailbox disabled") != NULL);
    CU_ASSERT_STRING_EQUAL(m.relay, sockpath);
    CU_ASSERT(strstr(rc[2].reply, sockpath) != NULL);    /* "host PATH said: ..." */

    /* a second message over the same session starts counting afresh */
    /* every RCPT 250; after each dot the first two lines of dot[] */
    fake_script(rcpt, 1, dot, 2);
    static const char *const addrs1[] = { "a@x.test", "b@x.test" };
    msg_init(&m, rc, addrs1, 2, fd);
    run_session(&m, &m2);
    CU_ASSERT_EQUAL(done_n, 2);
    CU_ASSERT_EQUAL(outcome[0], SMTPC_DONE);
    CU_ASSERT_EQUAL(outcome[1], SMTPC_DONE);
    CU_ASSERT_EQUAL(fk.messages, 2);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_SENT);
    CU_ASSERT_EQUAL(rc[1].status, SMTPC_DEFERRED);
    CU_ASSERT_STRING_EQUAL(rc[1].dsn, "4.2.2");
    CU_ASSERT_EQUAL(rc2[0].status, SMTPC_SENT);
    CU_ASSERT_EQUAL(rc2[1].status, SMTPC_DEFERRED);
    close(fd);
}

static void test_lmtp_lost_after_dot(void)
{
    static const char *const addrs[] = { "a@x.test", "b@x.test", "c@x.test" };
    static const char *const rcpt[] = { "250 2.1.5 Ok\r\n" };
    static const char *const dot[] = { "250 2.0.0 <a@x.test> Saved\r\n" };
    struct smtpc_msg m;
    struct smtpc_rcpt rc[3];
    int fd = open_msg();

    msg_init(&m, rc, addrs, 3, fd);
    fake_script(rcpt, 1, dot, 1);
    fk.close_after_dot = 1;         /* one reply of three, then the connection ends */
    run_session(&m, NULL);
    CU_ASSERT_EQUAL(done_n, 1);
    CU_ASSERT_EQUAL(outcome[0], SMTPC_FAILED);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_SENT);
    for (int i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(rc[i].status, SMTPC_DEFERRED);
        CU_ASSERT_STRING_EQUAL(rc[i].dsn, "4.4.2");
        CU_ASSERT(strstr(rc[i].reply, "lost connection") != NULL);
    }
    close(fd);
}

/* Every RCPT refused, yet the (pipelined) DATA gets 354: no reply will
 * follow a dot in LMTP, so the session ends at once, not at a timeout. */
static void test_lmtp_no_recipient_accepted(void)
{
    static const char *const addrs[] = { "a@x.test", "b@x.test" };
    static const char *const rcpt[] = { "550 5.1.1 no\r\n", "450 4.2.1 later\r\n" };
    struct smtpc_msg m;
    struct smtpc_rcpt rc[2];
    int fd = open_msg();
    uint64_t t0 = now_ms();

    msg_init(&m, rc, addrs, 2, fd);
    fake_script(rcpt, 2, NULL, 0);
    run_session(&m, NULL);
    CU_ASSERT_EQUAL(done_n, 1);
    CU_ASSERT_EQUAL(outcome[0], SMTPC_FAILED);
    CU_ASSERT(rc[0].status == SMTPC_BOUNCED && rc[1].status == SMTPC_DEFERRED);
    CU_ASSERT_EQUAL(fk.messages, 0);
    CU_ASSERT(now_ms() - t0 < 4000);        /* the data_done timer is 5 s */
    close(fd);
}

static void test_lmtp_lhlo_refused(void)
{
    static const char *const addrs[] = { "a@x.test" };
    struct smtpc_msg m;
    struct smtpc_rcpt rc[1];
    int fd = open_msg();

    msg_init(&m, rc, addrs, 1, fd);
    fake_script(NULL, 0, NULL, 0);
    fk.lhlo_reply = "500 5.5.1 go away\r\n";
    run_session(&m, NULL);
    CU_ASSERT_EQUAL(done_n, 1);
    CU_ASSERT_EQUAL(outcome[0], SMTPC_NEXT_MX);
    CU_ASSERT(strstr(fk.cmds, "HELO") == NULL);     /* no HELO fallback in LMTP */
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_BOUNCED);
    CU_ASSERT(strstr(rc[0].reply, "in reply to LHLO command") != NULL);
    CU_ASSERT_EQUAL(fk.messages, 0);
    close(fd);
}

static void test_lmtp_no_socket(void)
{
    static const char *const addrs[] = { "a@x.test" };
    struct smtpc_msg m;
    struct smtpc_rcpt rc[1];
    struct smtpc_config cfg;
    struct smtpc_dest dest;
    struct evloop *ev = ev_new();
    int fd = open_msg();

    CU_ASSERT_FATAL(ev != NULL);
    msg_init(&m, rc, addrs, 1, fd);
    client_setup(&cfg, &dest, "/nonexistent/lmtp.sock");
    second = NULL;
    cur_ev = ev;
    CU_ASSERT_FATAL(smtpc_start(ev, &cfg, &dest, &m, on_done, NULL) != NULL);
    CU_ASSERT(ev_run_until(ev, finished, 10000));
    CU_ASSERT_EQUAL(outcome[0], SMTPC_NEXT_MX);
    CU_ASSERT_EQUAL(rc[0].status, SMTPC_DEFERRED);
    CU_ASSERT_STRING_EQUAL(rc[0].dsn, "4.4.1");
    CU_ASSERT_STRING_EQUAL(rc[0].reply, "connect to /nonexistent/lmtp.sock: No such file or directory");
    ev_free(ev);
    close(fd);
}

void suite_lmtp(void)
{
    CU_pSuite s = CU_add_suite("lmtp", NULL, NULL);

    CU_add_test(s, "route: lmtp: destination forms", test_route_lmtp);
    CU_add_test(s, "smtpc: LMTP replies after the dot, per recipient", test_lmtp_per_recipient);
    CU_add_test(s, "smtpc: LMTP connection lost among the dot replies", test_lmtp_lost_after_dot);
    CU_add_test(s, "smtpc: LMTP with no recipient accepted", test_lmtp_no_recipient_accepted);
    CU_add_test(s, "smtpc: LMTP LHLO refused, no HELO fallback", test_lmtp_lhlo_refused);
    CU_add_test(s, "smtpc: LMTP to a missing UNIX socket", test_lmtp_no_socket);
}
