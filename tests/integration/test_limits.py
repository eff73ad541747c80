"""
Limits and refused input: max_recipients, SIZE and max_message_size, line
lengths in DATA, NUL / bare CR / bare LF in DATA, the error limit, the
session limit and the idle timeout. After every refusal: nothing queued.
"""

import os
import re
import signal
import time

import harness
from harness import HOST, REMOTE_RCPT, expect, queued_id

LIMITS = dict(max_recipients="100", max_message_size="64K", smtpd_error_limit="5")
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
BAD_DATA = "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted"
LONG_LINE = "500 5.5.2 Error: line too long; message not accepted"


def limits():
    return harness.shared("limits", **LIMITS)


def _refused_data(inst, body, want, raw=True):
    """Sends body in DATA on a fresh session; checks the reply after the end
    of data, that nothing new is queued, and that the session still works."""
    sender = "%s@example.com" % harness.token("refused")
    before = inst.queue_ids()
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        r = c.data(body, raw=raw, timeout=20)
        expect(r, exact=want)
        # the session goes on: no transaction left, a new one works
        expect(c.cmd("RCPT TO:<%s>" % REMOTE_RCPT), exact="503 5.5.1 Error: need MAIL command")
        expect(c.cmd("RSET"), exact="250 2.0.0 Ok")
        ok = "%s@example.com" % harness.token("after")
        c.mail_rcpt(ok, [REMOTE_RCPT])
        good = queued_id(c.data(harness.simple_body(ok)))
    after = inst.queue_ids()
    new = after - before
    if new != {good}:
        raise AssertionError("expected only the follow-up message %s to be queued, new ids: %s" % (good, sorted(new)))
    for e in inst.queue():
        if e["sender"] == sender:
            raise AssertionError("refused message from %s is in the queue as %s" % (sender, e["queue_id"]))


# -- recipients


def test_max_recipients():
    inst = limits()
    sender = "%s@example.com" % harness.token("rcpts")
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
        rcpts = ["r%03d@remote.example" % i for i in range(100)]
        c.send("".join("RCPT TO:<%s>\r\n" % r for r in rcpts))      # pipelined
        for i in range(100):
            try:
                expect(c.reply(), exact="250 2.1.5 Ok")
            except AssertionError as e:
                raise AssertionError("recipient %d of 100: %s" % (i + 1, e))
        expect(c.cmd("RCPT TO:<r100@remote.example>"), exact="452 4.5.3 Error: too many recipients")
        qid = queued_id(c.data(harness.simple_body(sender)))
    e = inst.queue_entry(qid)
    if e is None:
        raise AssertionError("message %s not in queue" % qid)
    got = sorted(r["address"] for r in e["recipients"])
    if got != sorted(rcpts):
        raise AssertionError("queued %d recipients, expected the 100 accepted ones (extra: %s, missing: %s)"
                             % (len(got), sorted(set(got) - set(rcpts))[:3], sorted(set(rcpts) - set(got))[:3]))


# -- size


def test_size_advertised():
    inst = limits()
    with inst.client() as c:
        r = c.ehlo()
        if "250-SIZE 65536" not in r.lines and "250 SIZE 65536" not in r.lines:
            raise AssertionError("EHLO should advertise SIZE 65536 (max_message_size = 64K): %r" % str(r))


def test_mail_size_parameter():
    inst = limits()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@b.example> SIZE=99999999999999"), exact=TOO_BIG)
        expect(c.cmd("MAIL FROM:<a@b.example> SIZE=65537"), exact=TOO_BIG)
        expect(c.cmd("MAIL FROM:<a@b.example> SIZE=65536"), exact="250 2.1.0 Ok")


def test_message_over_size_in_data():
    inst = limits()
    body = harness.simple_body("big") + (b"x" * 76 + b"\r\n") * 1300     # ~100 KB
    _refused_data(inst, body, TOO_BIG, raw=False)


def test_message_under_size_in_data():
    inst = limits()
    body = harness.simple_body("small") + (b"y" * 76 + b"\r\n") * 400     # ~31 KB
    sender = "%s@example.com" % harness.token("small")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(body))
    e = inst.queue_entry(qid)
    if e is None or not (len(body) <= e["message_size"] <= len(body) + 4096):
        raise AssertionError("message %s: size %r for a %d byte body" % (qid, e and e["message_size"], len(body)))


def test_bdat_over_size():
    inst = limits()
    sender = "%s@example.com" % harness.token("bdatbig")
    before = inst.queue_ids()
    chunk = (b"z" * 78 + b"\r\n") * 500                                      # 40000 bytes
    replies = []
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        try:
            c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            replies.append(c.reply())
            c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
            replies.append(c.reply())
        except harness.Closed:
            pass
    texts = [r.last for r in replies]
    if TOO_BIG not in texts:
        raise AssertionError("80000 bytes by BDAT over a 64K limit: expected %r, got %r" % (TOO_BIG, texts))
    if any(t.startswith("250 2.0.0 Ok: queued") for t in texts):
        raise AssertionError("oversized BDAT message was queued: %r" % texts)
    if inst.queue_ids() - before:
        raise AssertionError("something was queued: %s" % sorted(inst.queue_ids() - before))


# -- lines in DATA


def test_data_line_too_long():
    inst = limits()
    body = harness.simple_body("long") + b"a" * 1500 + b"\r\nafter\r\n.\r\n"
    _refused_data(inst, body, LONG_LINE)


def test_data_line_limit_boundary():
    """998 octets + CRLF = 1000 is allowed; 999 + CRLF is not."""
    inst = limits()
    sender = "%s@example.com" % harness.token("edge")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(harness.simple_body(sender) + b"b" * 998 + b"\r\n"))
    if qid not in inst.queue_ids():
        raise AssertionError("message with a 1000-octet line not queued")
    _refused_data(inst, harness.simple_body("edge2") + b"c" * 999 + b"\r\n.\r\n", LONG_LINE)


def test_data_megabyte_without_newline():
    inst = harness.shared()          # default 35 MB limit: only the line is too long
    _refused_data(inst, harness.simple_body("nolf") + b"d" * (1 << 20) + b"\r\n.\r\n", LONG_LINE)


def test_nul_in_data():
    inst = limits()
    _refused_data(inst, harness.simple_body("nul") + b"abc\x00def\r\n.\r\n", BAD_DATA)


def test_bare_cr_in_data():
    inst = limits()
    _refused_data(inst, harness.simple_body("cr") + b"abc\rdef\r\n.\r\n", BAD_DATA)


def test_bare_lf_in_data():
    inst = limits()
    _refused_data(inst, harness.simple_body("lf") + b"abc\ndef\r\n.\r\n", BAD_DATA)


def test_bare_lf_in_headers():
    inst = limits()
    _refused_data(inst, b"Subject: x\nX-Evil: y\r\n\r\nbody\r\n.\r\n", BAD_DATA)


# -- error limit, session limit, timeout


def test_error_limit():
    inst = limits()          # smtpd_error_limit = 5
    limit = 5
    want = "421 4.7.0 %s Error: too many errors" % HOST
    c = inst.client(ehlo=True)
    try:
        for i in range(limit):
            expect(c.cmd("FOOBAR%d" % i), exact="502 5.5.2 Error: command not recognized")
        got = []
        closed = False
        for i in range(2):
            try:
                c.send("FOOBAR-over-%d\r\n" % i)
                r = c.reply()
                got.append(r.last)
                if r.last == want:
                    break
            except (harness.Closed, BrokenPipeError, ConnectionResetError):
                closed = True
                break
        if want not in got:
            raise AssertionError("after %d errors expected %r, got %r%s"
                                 % (limit + len(got), want, got, " then close" if closed else ""))
        c.wait_closed(5)
    finally:
        c.close()


def test_too_many_sessions():
    with harness.Instance("sessions", smtpd_processes="1", smtpd_max_sessions="2") as inst:
        # a session the start-up probe opened may not be counted out yet:
        # each of the two may need a second try
        a = harness.wait_until(inst.client, 10, "a first session")
        b = harness.wait_until(inst.client, 10, "a second session")
        try:
            c = harness.Client(inst.p_smtp, banner=False)
            try:
                r = c.reply()
                expect(r, exact="421 4.7.0 %s Error: too many connections" % HOST)
                c.wait_closed(5)
            finally:
                c.close()
            # the two sessions still work
            expect(a.cmd("NOOP"), exact="250 2.0.0 Ok")
            expect(b.cmd("NOOP"), exact="250 2.0.0 Ok")
        finally:
            a.close()
            b.close()
        # a slot is free again once one closes
        harness.wait_until(lambda: _banner_ok(inst), 10, "a new session to be accepted after two closed")


def _banner_ok(inst):
    with inst.client():
        return True


def timeout_instance():
    return harness.shared("timeout", smtpd_timeout="2s")


def _check_timeout(c, t0):
    r = c.reply(timeout=10)
    dt = time.monotonic() - t0
    expect(r, exact="421 4.4.2 %s Error: timeout exceeded" % HOST)
    if dt < 1.5:
        raise AssertionError("timeout reply after %.1fs, smtpd_timeout is 2s" % dt)
    c.wait_closed(5)


def test_idle_timeout_after_banner():
    inst = timeout_instance()
    t0 = time.monotonic()
    with inst.client(timeout=10) as c:
        _check_timeout(c, t0)


def test_idle_timeout_after_ehlo():
    inst = timeout_instance()
    with inst.client(ehlo=True, timeout=10) as c:
        t0 = time.monotonic()
        _check_timeout(c, t0)


def test_idle_timeout_in_data():
    inst = timeout_instance()
    before = inst.queue_ids()
    sender = "%s@example.com" % harness.token("idle")
    with inst.client(ehlo=True, timeout=10) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        expect(c.cmd("DATA"), exact="354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: half\r\n\r\nhalf a message")
        t0 = time.monotonic()
        _check_timeout(c, t0)
    if inst.queue_ids() - before:
        raise AssertionError("timed-out message was queued")


def test_activity_resets_timeout():
    """Commands every ~1s keep a 2s-timeout session open past 2s."""
    inst = timeout_instance()
    with inst.client(ehlo=True, timeout=10) as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
            # wait ~1s for the server NOT to say anything (a deadline, not a sync)
            try:
                r = c.reply(timeout=1.0)
                raise AssertionError("unsolicited reply while active: %r" % str(r))
            except TimeoutError:
                pass
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")


# -- the bounded wait for the queue at DATA (smtpd/qlink.h QLINK_WAIT_MS)

QUEUE_WAIT_S = 10


def _queue_mgr_gone(inst, c):
    """Kills queue-mgr with the master stopped, so that no restart can come
    until the test lets the master go on: the socket has nobody behind it
    for as long as the test needs, and then the master restarts queue-mgr
    as it always does. c is a session whose worker's link is up (it has
    just queued a message); returns once that worker saw the link drop, so
    that DATA finds it down rather than dying."""
    qm = inst.pids("queue-mgr")
    if len(qm) != 1:
        raise AssertionError("expected one queue-mgr, children: %r" % inst.children())
    text = inst.log_text()
    m = re.findall(r"smtpd\[(\d+)\]: connect from", text)
    if not m:
        raise AssertionError("no smtpd connect line in the log")
    worker = m[-1]
    since = inst.log_size()
    os.kill(inst.pid, signal.SIGSTOP)
    os.kill(qm[0], signal.SIGKILL)
    inst.wait_log(r"smtpd\[%s\]: warning: lost connection to queue-mgr" % worker, since=since, timeout=10,
                  what="smtpd worker %s to see queue-mgr go" % worker)


def _resume_master(inst):
    os.kill(inst.pid, signal.SIGCONT)


def _data_while_queue_down(inst, c, sender):
    """A message through c (so its worker's link is up), a new transaction,
    queue-mgr gone, then DATA; returns after smtpd logged the wait. The
    caller resumes the master (_resume_master) in a finally."""
    c.send_message(sender, [REMOTE_RCPT], ehlo=False)
    c.mail_rcpt(sender, [REMOTE_RCPT])
    since = inst.log_size()
    _queue_mgr_gone(inst, c)
    c.send("DATA\r\n")
    inst.wait_log(r"smtpd.*queue-mgr not connected: waiting up to %d ms" % (QUEUE_WAIT_S * 1000), since=since,
                  timeout=5, what="smtpd holding DATA for the queue link")


def test_data_waits_for_queue_mgr_restart():
    """queue-mgr gone at DATA: smtpd waits for the master to restart it,
    and the message gets 250, not 451; a second session meanwhile runs."""
    with harness.Instance("qwait") as inst:
        sender = "%s@example.com" % harness.token("qwait")
        with inst.client(ehlo=True) as c:
            try:
                _data_while_queue_down(inst, c, sender)
                # other sessions are served meanwhile
                with inst.client(ehlo=True) as other:
                    expect(other.cmd("NOOP"), exact="250 2.0.0 Ok")
                t0 = time.monotonic()
            finally:
                _resume_master(inst)
            expect(c.reply(timeout=QUEUE_WAIT_S + 5), exact="354 End data with <CR><LF>.<CR><LF>")
            c.send(harness.dot_stuff(harness.simple_body(sender)) + b".\r\n")
            qid = queued_id(c.reply(timeout=20))
            harness.note("DATA waited %.2fs for the restarted queue-mgr" % (time.monotonic() - t0))
        if qid not in inst.queue_ids():
            raise AssertionError("%s got 250 but is not in the queue" % qid)


def test_data_451_when_queue_mgr_stays_away():
    """queue-mgr gone for longer than the bound: 451 after about the bound,
    nothing queued, and the next message after the restart is accepted."""
    with harness.Instance("qaway") as inst:
        sender = "%s@example.com" % harness.token("qaway")
        with inst.client(ehlo=True) as c:
            try:
                _data_while_queue_down(inst, c, sender)
                t0 = time.monotonic()
                expect(c.reply(timeout=QUEUE_WAIT_S + 10), exact="451 4.3.0 Error: queue file write error")
                waited = time.monotonic() - t0
            finally:
                _resume_master(inst)
            if waited < QUEUE_WAIT_S - 1:
                raise AssertionError("451 after %.1fs: smtpd did not wait the %ds bound" % (waited, QUEUE_WAIT_S))
            # the session goes on, and so does the queue once it is back
            expect(c.cmd("RSET"), exact="250 2.0.0 Ok")
            qid = c.send_message(sender, [REMOTE_RCPT], ehlo=False)
        if qid not in inst.queue_ids():
            raise AssertionError("%s got 250 but is not in the queue" % qid)
        mine = [e["queue_id"] for e in inst.queue() if e["sender"] == sender]
        if len(mine) != 2:
            raise AssertionError("expected the first and the last message of %s queued, not the refused one: %r"
                                 % (sender, mine))


test_data_451_when_queue_mgr_stays_away.timeout = 120

