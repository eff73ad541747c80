"""
Limits against abuse (issue 9, part 5): the per-IP connection limit reached
and released, the connection rate, a client with hundreds of connections
that cannot starve another, the early talker and the greet pause, the
unknown-recipient tarpit (slow replies that block no one else, then 421),
the TLS handshake timeout before the greeting, and the per-user message and
recipient rates (skipped until the server offers AUTH). Outside clients
connect from 127.0.0.2 and up; relay_networks is 127.0.0.1/32.
"""

import time

import harness
from harness import HOST, LOCAL_RCPT, expect
from limitsfix import FromClient, auth_client, auth_instance

TOO_MANY = "421 4.7.0 %s Error: too many connections from %s"


def abuse():
    return harness.shared("abuse", smtpd_processes="1", relay_networks="127.0.0.1/32", smtpd_greet_pause="0",
                          smtpd_client_connection_count_limit="3", smtpd_soft_error_limit="3",
                          smtpd_error_sleep_time="1s", smtpd_error_limit="6", smtpd_starttls_timeout="2s")


def _refused(inst, src, want):
    c = FromClient(inst.p_smtp, src, banner=False)
    try:
        expect(c.reply(timeout=15), exact=want)
        c.wait_closed(10)
    finally:
        c.close()


def _banner(inst, src):
    try:
        with FromClient(inst.p_smtp, src, timeout=5):
            return True
    except (AssertionError, harness.Closed, OSError):
        return False


def test_connection_count_limit_reached_and_released():
    inst = abuse()
    src = "127.0.0.2"
    off = inst.log_size()
    held = [FromClient(inst.p_smtp, src) for _ in range(3)]
    try:
        _refused(inst, src, TOO_MANY % (HOST, src))
        inst.wait_log(r"warning: Connection concurrency limit exceeded: 4 from unknown\[127\.0\.0\.2\] for service smtp",
                      off, what="the concurrency limit log line")
        # the sessions held still work, another address is served
        for c in held:
            expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
        with FromClient(inst.p_smtp, "127.0.0.3") as other:
            expect(other.cmd("NOOP"), exact="250 2.0.0 Ok")
        # relay_networks are exempt
        more = [inst.client() for _ in range(5)]
        for c in more:
            c.close()
        # one closes: a slot is free again
        held.pop().close()
        harness.wait_until(lambda: _banner(inst, src), 15, "a session from %s after one of its three closed" % src)
    finally:
        for c in held:
            c.close()


def test_hundreds_of_connections_cannot_starve_others():
    """300 connections from one address: 3 are served, the rest refused at
    once, and another address still gets its banner and sends a message."""
    inst = abuse()
    src = "127.0.0.4"
    socks = []
    try:
        for _ in range(300):
            socks.append(FromClient(inst.p_smtp, src, banner=False, timeout=20))
        served = refused = 0
        for c in socks:
            r = c.reply(timeout=20)
            if r.last == "220 %s ESMTP Postern" % HOST:
                served += 1
            elif r.last == TOO_MANY % (HOST, src):
                refused += 1
            else:
                raise AssertionError("unexpected first reply %r" % str(r))
        if served != 3 or refused != 297:
            raise AssertionError("300 connections from %s: %d served, %d refused (limit 3)" % (src, served, refused))
        t0 = time.monotonic()
        with FromClient(inst.p_smtp, "127.0.0.5") as other:
            other.ehlo()
            expect(other.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
            expect(other.cmd("RCPT TO:<%s>" % LOCAL_RCPT), exact="250 2.1.5 Ok")
            harness.queued_id(other.data(harness.simple_body(harness.token("starve"))))
        harness.note("another address served in %.2fs beside 300 connections" % (time.monotonic() - t0))
    finally:
        for c in socks:
            c.close()


test_hundreds_of_connections_cannot_starve_others.timeout = 180


def test_connection_rate_limit():
    with harness.Instance("connrate", smtpd_processes="1", relay_networks="127.0.0.1/32", smtpd_greet_pause="0",
                          smtpd_client_connection_rate_limit="3", anvil_rate_time_unit="1h") as inst:
        src = "127.0.0.6"
        off = inst.log_size()
        for _ in range(3):
            with FromClient(inst.p_smtp, src) as c:
                expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
        _refused(inst, src, TOO_MANY % (HOST, src))
        inst.wait_log(r"warning: Connection rate limit exceeded: 4 from unknown\[127\.0\.0\.6\] for service smtp", off,
                      what="the rate limit log line")
        with FromClient(inst.p_smtp, "127.0.0.7") as c:
            expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")


def test_early_talker_and_greet_pause():
    with harness.Instance("greet", smtpd_processes="1", relay_networks="127.0.0.1/32", smtpd_greet_pause="2s") as inst:
        off = inst.log_size()
        # talks before the banner: 554 and dropped
        c = FromClient(inst.p_smtp, "127.0.0.8", banner=False)
        try:
            c.send("EHLO ratware.example\r\nMAIL FROM:<spam@example.com>\r\n")
            expect(c.reply(timeout=15), exact="554 5.5.0 Error: SMTP protocol synchronization")
            c.wait_closed(10)
        finally:
            c.close()
        inst.wait_log(r"warning: improper command pipelining after CONNECT from unknown\[127\.0\.0\.8\]: "
                      r"EHLO ratware\.example", off, what="the early-talker log line")
        # a polite new client waits about the pause, then is served
        t0 = time.monotonic()
        with FromClient(inst.p_smtp, "127.0.0.9", timeout=15) as p:
            waited = time.monotonic() - t0
            expect(p.cmd("NOOP"), exact="250 2.0.0 Ok")
        if waited < 1.5:
            raise AssertionError("banner after %.2fs with smtpd_greet_pause = 2s" % waited)
        # ... and is greeted at once next time; relay_networks always are
        for who in ("127.0.0.9", "127.0.0.1"):
            t0 = time.monotonic()
            with FromClient(inst.p_smtp, who, timeout=15):
                waited = time.monotonic() - t0
            if waited > 1.0:
                raise AssertionError("banner for %s after %.2fs: it should not pause" % (who, waited))
        # the early talker is not remembered as passed
        c = FromClient(inst.p_smtp, "127.0.0.8", banner=False)
        try:
            c.send("EHLO again.example\r\n")
            expect(c.reply(timeout=15), exact="554 5.5.0 Error: SMTP protocol synchronization")
        finally:
            c.close()


def test_unknown_recipient_tarpit_then_disconnect():
    """smtpd_soft_error_limit 3, smtpd_error_sleep_time 1s, smtpd_error_limit
    6: the first three unknown recipients are answered at once, the next
    three each after about a second (while another session is served at
    once), the seventh gets 421 4.7.0 and the connection is closed."""
    inst = abuse()
    src = "127.0.0.10"
    off = inst.log_size()
    unknown = "550 5.1.1 <nobody%d@localhost>: Recipient address rejected: User unknown"
    with FromClient(inst.p_smtp, src, timeout=20) as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<harvest@example.com>"), exact="250 2.1.0 Ok")
        for i in range(1, 4):
            t0 = time.monotonic()
            expect(c.cmd("RCPT TO:<nobody%d@localhost>" % i), exact=unknown % i)
            if time.monotonic() - t0 > 0.9:
                raise AssertionError("error %d (under the soft limit) took %.2fs" % (i, time.monotonic() - t0))
        for i in range(4, 7):
            t0 = time.monotonic()
            c.send("RCPT TO:<nobody%d@localhost>\r\n" % i)
            if i == 4:
                # the loop is not blocked: another session gets its answers now
                t1 = time.monotonic()
                with FromClient(inst.p_smtp, "127.0.0.11") as other:
                    expect(other.cmd("NOOP"), exact="250 2.0.0 Ok")
                if time.monotonic() - t1 > 0.9:
                    raise AssertionError("another session waited %.2fs during the tarpit" % (time.monotonic() - t1))
            expect(c.reply(timeout=10), exact=unknown % i)
            dt = time.monotonic() - t0
            if dt < 0.8:
                raise AssertionError("error %d (past the soft limit) answered after %.2fs, not about 1s" % (i, dt))
        c.send("RCPT TO:<nobody7@localhost>\r\n")
        expect(c.reply(timeout=10), exact=unknown % 7)
        expect(c.reply(timeout=10), exact="421 4.7.0 %s Error: too many errors" % HOST)
        c.wait_closed(10)
    inst.wait_log(r"warning: too many errors from unknown\[127\.0\.0\.10\]: 4 errors, delaying", off,
                  what="the tarpit log line")
    inst.wait_log(r"warning: too many errors from unknown\[127\.0\.0\.10\]: 7 errors, disconnecting", off,
                  what="the disconnect log line")


test_unknown_recipient_tarpit_then_disconnect.timeout = 120


def test_tls_handshake_timeout_before_greeting():
    """A client that connects to 465 and sends nothing is closed after
    smtpd_starttls_timeout (2s here), not smtpd_timeout (5 minutes)."""
    inst = abuse()
    off = inst.log_size()
    t0 = time.monotonic()
    c = FromClient(inst.p_smtps, "127.0.0.12", banner=False, timeout=20)
    try:
        got = c.wait_closed(20)
    finally:
        c.close()
    dt = time.monotonic() - t0
    if got:
        raise AssertionError("server sent %r before the TLS handshake" % got[:100])
    if dt < 1.5 or dt > 12:
        raise AssertionError("closed after %.1fs; smtpd_starttls_timeout is 2s" % dt)
    inst.wait_log(r"timeout after STARTTLS from unknown\[127\.0\.0\.12\]", off, what="the handshake timeout line")
    # after STARTTLS on port 25 too
    c = FromClient(inst.p_smtp, "127.0.0.12", timeout=20)
    try:
        c.ehlo()
        expect(c.cmd("STARTTLS"), exact="220 2.0.0 Ready to start TLS")
        t0 = time.monotonic()
        c.wait_closed(20)
        dt = time.monotonic() - t0
    finally:
        c.close()
    if dt > 12:
        raise AssertionError("STARTTLS without a handshake closed after %.1fs" % dt)


def test_user_message_and_recipient_rates():
    """Per authenticated user: 3 messages and 5 recipients a window; more
    get 450 4.7.1, and the limit follows the user, not the address."""
    with auth_instance("userrate", smtpd_processes="1", relay_networks="127.0.0.1/32", smtpd_greet_pause="0",
                       smtpd_client_message_rate_limit="3", smtpd_client_recipient_rate_limit="5",
                       anvil_rate_time_unit="1h") as inst:
        off = inst.log_size()
        c = auth_client(inst, "127.0.0.13")
        try:
            for i in range(5):
                if i < 3:
                    expect(c.cmd("MAIL FROM:<%s>" % "demo@localhost"), exact="250 2.1.0 Ok")
                expect(c.cmd("RCPT TO:<r%d@remote.example>" % i), exact="250 2.1.5 Ok")
                if i < 2:
                    expect(c.cmd("RSET"), exact="250 2.0.0 Ok")
            expect(c.cmd("RCPT TO:<r5@remote.example>"), exact="450 4.7.1 Error: too many recipients from demo@localhost")
            expect(c.cmd("RSET"), exact="250 2.0.0 Ok")
            expect(c.cmd("MAIL FROM:<demo@localhost>"), exact="450 4.7.1 Error: too much mail from demo@localhost")
        finally:
            c.close()
        c = auth_client(inst, "127.0.0.14")
        try:
            expect(c.cmd("MAIL FROM:<demo@localhost>"), exact="450 4.7.1 Error: too much mail from demo@localhost")
        finally:
            c.close()
        inst.wait_log(r"warning: Message delivery request rate limit exceeded: 4 from unknown\[127\.0\.0\.13\] "
                      r"for user demo@localhost", off, what="the message rate log line")
        inst.wait_log(r"warning: Recipient address rate limit exceeded: 6 from unknown\[127\.0\.0\.13\]", off,
                      what="the recipient rate log line")
