"""
The SMTP client engine (deliver/smtpc.c) through its test driver
(tests/tools/smtpc-drive.c, built as build/.../smtpc-drive) against the
receiving servers of sinkfix.py: byte-for-byte delivery, PIPELINING on and
off, per-recipient 4xx/5xx, STARTTLS, 8BITMIME downgrade, SMTPUTF8, DSN,
SIZE, connection reuse, every misbehaving server, AUTH and Happy Eyeballs.
Everything listens on 127.0.0.x; nothing leaves the host.
"""

import os
import re
import socket
import subprocess
import tempfile
import time

import harness
from sinkfix import HAVE_AIOSMTPD, BadServer, Sink, free_port

DRIVE = os.path.join(harness.REPO, os.path.dirname(os.environ.get("UNIT", "build/release/unit-tests")),
                     "smtpc-drive")
SINK_IP = "127.0.0.2"


def _need():
    if not HAVE_AIOSMTPD:
        raise harness.Skip("python3-aiosmtpd is not installed")
    if not os.path.exists(DRIVE):
        raise AssertionError("test driver %s not built" % DRIVE)


class Run:
    """What one smtpc-drive run printed."""

    def __init__(self, proc):
        self.out = proc.stdout
        self.err = proc.stderr
        self.rc = proc.returncode
        self.outcomes = re.findall(r"^outcome: (\S+)", self.out, re.M)
        self.rcpt = {}
        for m in re.finditer(r"^rcpt: (\S+) status=(\S+) dsn=(\S*) reply=(.*)$", self.out, re.M):
            self.rcpt[m.group(1)] = (m.group(2), m.group(3), m.group(4))
        self.logs = re.findall(r"^log: (.*)$", self.out, re.M)
        self.lines = re.findall(r"^line: (.*)$", self.out, re.M)
        self.elapsed = [int(x) for x in re.findall(r"elapsed_ms=(\d+)", self.out)]
        m = re.search(r"^session: messages=(\d+) connections=(\d+)", self.out, re.M)
        self.connections = int(m.group(2)) if m else None

    def __repr__(self):
        return "rc=%d\n%s\n%s" % (self.rc, self.out, self.err)


def drive(port, rcpts, msg, *extra, addrs=(SINK_IP,), sender="sender@example.com", timeout=60):
    args = [DRIVE, "--port", str(port), "--from", sender, "--host", "mx.test"]
    for a in addrs:
        args += ["--addr", a]
    for r in rcpts:
        args += ["--rcpt", r]
    args += list(extra)
    with tempfile.NamedTemporaryFile(prefix="smtpc-msg-", delete=False) as f:
        f.write(msg)
        path = f.name
    try:
        p = subprocess.run(args + [path], capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(path)
    r = Run(p)
    if r.rc != 0 or "Sanitizer" in r.err or "runtime error" in r.err:
        raise AssertionError("smtpc-drive failed: %r" % r)
    if r.connections is None:
        raise AssertionError("smtpc-drive did not finish its session: %r" % r)
    return r


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


SIMPLE = crlf("From: a@example.com\nTo: b@example.org\nSubject: test\n\nhello\n")


def expect_status(run, addr, status, dsn=None, reply=None):
    got = run.rcpt.get(addr)
    if got is None:
        raise AssertionError("no result for %s: %r" % (addr, run))
    if got[0] != status or (dsn and got[1] != dsn) or (reply and reply not in got[2]):
        raise AssertionError("%s: want %s %s %r, got %r\n%r" % (addr, status, dsn, reply, got, run))


def expect_unsent(sink_kw, extra, outcome, status, dsn, text, why, msg=SIMPLE):
    """One delivery to a Sink(**sink_kw) that must not send the message."""
    with Sink(host=SINK_IP, **sink_kw) as s:
        r = drive(s.port, ["b@example.org"], msg, *extra)
        if s.received():
            raise AssertionError(why)
    if outcome and r.outcomes != [outcome]:
        raise AssertionError("want outcome %s: %r" % (outcome, r))
    expect_status(r, "b@example.org", status, dsn, text)
    return r


def test_delivery_byte_for_byte():
    _need()
    body = ["From: a@example.com", "To: b@example.org", "Subject: dots", ""]
    for i in range(20000):   # > 64 KiB blocks, lines that must be stuffed
        body.append(".%d leading dot" % i if i % 3 == 0 else ("..two" if i % 7 == 0 else "plain line %d" % i))
    body.append(".")
    msg = ("\r\n".join(body) + "\r\n").encode()
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, ["b@example.org"], msg)
        got = s.wait_messages(1, timeout=10)
    expect_status(r, "b@example.org", "sent", "2.0.0", "250 2.0.0")
    if got[0].data != msg:
        raise AssertionError("content differs: %d bytes sent, %d received" % (len(msg), len(got[0].data)))
    line = r.lines[0]
    if not re.match(r"to=<b@example\.org>, relay=mx\.test\[127\.0\.0\.2\]:%d, delay=[0-9.]+, "
                    r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok\)$"
                    % s.port, line):
        raise AssertionError("delivery line not in SPEC §6 shape: %r" % line)


def test_bare_lf_and_unterminated_last_line_become_crlf():
    _need()
    msg = b"Subject: lf\r\n\r\nbare lf\nand crlf\r\n.lead\nno end"
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, ["b@example.org"], msg)
        got = s.wait_messages(1, timeout=10)
    expect_status(r, "b@example.org", "sent")
    want = b"Subject: lf\r\n\r\nbare lf\r\nand crlf\r\n.lead\r\nno end\r\n"
    if got[0].data != want:
        raise AssertionError("got %r" % got[0].data)


def _three(hide):
    rc = {"two@example.org": "550 5.1.1 no such user", "three@example.org": "451 4.3.0 try later"}
    with Sink(host=SINK_IP, rcpt=rc, hide=hide) as s:
        r = drive(s.port, ["one@example.org", "two@example.org", "three@example.org", "four@example.org"], SIMPLE)
        got = s.wait_messages(1, timeout=10)
        time.sleep(0)  # nothing to wait for: the driver has finished
    expect_status(r, "one@example.org", "sent", "2.0.0")
    expect_status(r, "four@example.org", "sent", "2.0.0")
    expect_status(r, "two@example.org", "bounced", "5.1.1",
                  "host mx.test[127.0.0.2] said: 550 5.1.1 no such user (in reply to RCPT TO command)")
    expect_status(r, "three@example.org", "deferred", "4.3.0", "451 4.3.0 try later")
    if len(got) != 1 or got[0].rcpt_tos != ["one@example.org", "four@example.org"]:
        raise AssertionError("sink got %r" % got)
    if not any("status=bounced (host mx.test" in l for l in r.lines):
        raise AssertionError("no bounced line: %r" % r.lines)


def test_per_recipient_replies_pipelined():
    _need()
    _three(())


def test_per_recipient_replies_without_pipelining():
    _need()
    _three(("PIPELINING",))


def test_all_recipients_refused_then_reuse():
    _need()
    rc = {"x@example.org": "550 5.1.1 no"}
    with Sink(host=SINK_IP, rcpt=rc) as s:
        r = drive(s.port, ["x@example.org"], SIMPLE, "--messages", "2")
        if s.received():
            raise AssertionError("a message with no valid recipient arrived")
    if r.outcomes != ["failed", "failed"] or r.connections != 1:
        raise AssertionError("want two failed transactions on one connection: %r" % r)
    expect_status(r, "x@example.org", "bounced", "5.1.1")


def test_starttls_offered():
    _need()
    with Sink(host=SINK_IP, tls=harness.tls_files()) as s:
        r = drive(s.port, ["b@example.org"], SIMPLE)
        got = s.wait_messages(1, timeout=10)
    expect_status(r, "b@example.org", "sent")
    if not got[0].tls:
        raise AssertionError("the sink did not see TLS")
    pat = r"^(Untrusted|Anonymous) TLS connection established to mx\.test\[127\.0\.0\.2\]:%d: TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)( key-exchange \S+)?$" % s.port
    if not any(re.match(pat, l) for l in r.logs):
        raise AssertionError("no Postfix-shaped TLS line: %r" % r.logs)


def test_tls_policy_none_and_encrypt():
    _need()
    with Sink(host=SINK_IP, tls=harness.tls_files()) as s:
        drive(s.port, ["b@example.org"], SIMPLE, "--tls", "none")
        got = s.wait_messages(1, timeout=10)
    if got[0].tls:
        raise AssertionError("TLS used with --tls none")
    expect_unsent({}, ["--tls", "encrypt"], "next-mx", "deferred", "4.7.4", "TLS is required, but was not offered",
                  "sent in plain text although TLS was required")


MIME_8BIT = crlf(
    "From: a@example.com\nTo: b@example.org\nSubject: plain ascii\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
    "preamble\n--outer\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    "caf\u00e9 cr\u00e8me = tr\u00e8s bien\nend of text \n"
    "--outer\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    "AAECAwQFBgcICQ==\n--outer--\nepilogue\n")


def test_no_8bitmime_converts_to_quoted_printable():
    _need()
    with Sink(host=SINK_IP, hide=("8BITMIME",)) as s:
        r = drive(s.port, ["b@example.org"], MIME_8BIT, "--8bit")
        got = s.wait_messages(1, timeout=10)
    expect_status(r, "b@example.org", "sent")
    d = got[0].data
    if any(b > 127 for b in d):
        raise AssertionError("8-bit bytes reached a 7-bit server")
    for want in (b"Content-Transfer-Encoding: quoted-printable\r\n", b"caf=C3=A9 cr=C3=A8me =3D tr=C3=A8s bien\r\n",
                 b"end of text=20\r\n", b"AAECAwQFBgcICQ==\r\n", b"--outer--\r\n"):
        if want not in d:
            raise AssertionError("%r not in converted message:\n%r" % (want, d))
    if "BODY=8BITMIME" in " ".join(got[0].mail_options):
        raise AssertionError("BODY=8BITMIME sent to a server without 8BITMIME")


def test_8bitmime_offered_sends_unchanged():
    _need()
    with Sink(host=SINK_IP) as s:
        drive(s.port, ["b@example.org"], MIME_8BIT, "--8bit")
        got = s.wait_messages(1, timeout=10)
    if got[0].data != MIME_8BIT or "BODY=8BITMIME" not in got[0].mail_options:
        raise AssertionError("want the message unchanged with BODY=8BITMIME: %r" % got[0].mail_options)


def test_no_8bitmime_unconvertible_fails_563():
    _need()
    msg = crlf("From: a@example.com\nSubject: caf\u00e9\nMIME-Version: 1.0\n"
               "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\u00e9\n")
    expect_unsent({"hide": ("8BITMIME",)}, ["--8bit"], "failed", "bounced", "5.6.3", "8-bit header",
                  "an unconvertible message was sent", msg=msg)


def test_no_smtputf8_is_a_distinct_result():
    _need()
    expect_unsent({"hide": ("SMTPUTF8",)}, ["--smtputf8"], "no-smtputf8", "deferred", "4.6.7",
                  "SMTPUTF8 is required", "SMTPUTF8 mail sent to a server without SMTPUTF8")


def test_dsn_parameters_only_to_dsn_servers():
    _need()
    rcpts = ["b@example.org NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org", "c@example.org NOTIFY=NEVER"]
    with Sink(host=SINK_IP, dsn=True) as s:
        drive(s.port, rcpts, SIMPLE, "--ret", "HDRS", "--envid", "QID123")
        got = s.wait_messages(1, timeout=10)[0]
    if got.dsn_mail != {"RET": "HDRS", "ENVID": "QID123"}:
        raise AssertionError("MAIL DSN params: %r" % got.dsn_mail)
    if got.dsn_rcpt.get("b@example.org") != {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b@example.org"} or \
            got.dsn_rcpt.get("c@example.org") != {"NOTIFY": "NEVER"}:
        raise AssertionError("RCPT DSN params: %r" % got.dsn_rcpt)
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, rcpts, SIMPLE, "--ret", "HDRS", "--envid", "QID123")
        got = s.wait_messages(1, timeout=10)[0]
    expect_status(r, "b@example.org", "sent")
    opts = " ".join(got.mail_options + got.rcpt_options)
    if "RET=" in opts or "ENVID=" in opts or "NOTIFY=" in opts or "ORCPT=" in opts:
        raise AssertionError("DSN params sent to a server without DSN: %r" % opts)


def test_size_too_large_refused_before_data():
    _need()
    big = SIMPLE + b"x" * 5000 + b"\r\n"
    expect_unsent({"size_limit": 2000}, [], "failed", "bounced", "5.3.4", "exceeds size limit 2000",
                  "an oversized message was sent", msg=big)


def test_size_param_sent():
    _need()
    with Sink(host=SINK_IP) as s:
        drive(s.port, ["b@example.org"], SIMPLE)
        got = s.wait_messages(1, timeout=10)[0]
    if "SIZE=%d" % len(SIMPLE) not in got.mail_options:
        raise AssertionError("no SIZE=: %r" % got.mail_options)


def test_connection_reuse_three_messages():
    _need()
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, ["b@example.org"], SIMPLE, "--messages", "3")
        got = s.wait_messages(3, timeout=10)
    if r.outcomes != ["done"] * 3 or r.connections != 1:
        raise AssertionError(r)
    if len({m.session_id for m in got}) != 1:
        raise AssertionError("three messages over %d sessions" % len({m.session_id for m in got}))


def test_idle_limit_ends_a_cached_connection():
    _need()
    with Sink(host=SINK_IP) as s:
        # the next message comes within the idle limit: same connection
        r = drive(s.port, ["b@example.org"], SIMPLE, "--messages", "2", "--gap", "100", "--idle", "3000")
        # it comes after the idle limit: the session has QUIT, a new one is made
        r2 = drive(s.port, ["b@example.org"], SIMPLE, "--messages", "2", "--gap", "900", "--idle", "150")
        got = s.wait_messages(4, timeout=10)
    if r.connections != 1 or r.outcomes != ["done", "done"]:
        raise AssertionError("within the idle limit: %r" % r)
    if r2.connections != 2 or r2.outcomes != ["done", "done"] or "reconnect: session not reusable" not in r2.out:
        raise AssertionError("after the idle limit: %r" % r2)
    if len({m.session_id for m in got[:2]}) != 1 or len({m.session_id for m in got[2:]}) != 2:
        raise AssertionError("sessions at the sink: %r" % [m.session_id for m in got])
    # the idle session says QUIT itself, before anything else happens
    port, t, seen, stop = _scripted({"EHLO": b"250-script.test\r\n250 PIPELINING\r\n", "DATA": b"354 go\r\n"})
    stop.set()
    r = drive(port, ["b@example.org"], SIMPLE, "--messages", "2", "--gap", "900", "--idle", "150")
    t.join(10)
    if not seen or seen[-1] != "QUIT" or r.outcomes[0] != "done":
        raise AssertionError("no QUIT after the idle limit: %r %r" % (seen, r))
    # the second try (refused: the server took one connection) starts with
    # fresh results, not the first try's "sent"
    expect_status(r, "b@example.org", "deferred", "4.4.1", "Connection refused")


BAD = {
    "greeting": ("next-mx", "4.3.2", "421 4.3.2 go away"),
    "silent": ("next-mx", "4.4.2", "timed out while receiving the initial server greeting"),
    "endless": ("next-mx", "4.5.0", "too many lines in a reply"),
    "nocrlf": ("next-mx", "4.5.0", "reply line without CRLF"),
    "huge": ("next-mx", "4.5.0", "reply line too long"),
    "badcode": ("next-mx", "4.5.0", "reply code is not three digits"),
    "stall_data": ("failed", "4.4.2", "timed out while sending end of data"),
    "tls_garbage": ("tls-failed", "4.7.5", "Cannot start TLS"),
    "drop_data": ("failed", "4.4.2", "lost connection with mx.test[127.0.0.2] while sending end of data"),
}


def test_every_bad_server_defers_with_a_reason():
    _need()
    for mode, (outcome, dsn, text) in BAD.items():
        with BadServer(mode, host=SINK_IP) as b:
            r = drive(b.port, ["b@example.org"], SIMPLE, "--timeout", "1500", timeout=30)
        if r.outcomes != [outcome]:
            raise AssertionError("%s: want outcome %s: %r" % (mode, outcome, r))
        expect_status(r, "b@example.org", "deferred", dsn, text)
        if not any(text in l for l in r.logs + r.lines):
            raise AssertionError("%s: reason not logged: %r" % (mode, r))


def test_tls_failure_then_plain_retry():
    _need()
    with BadServer("tls_garbage", host=SINK_IP) as b:
        r = drive(b.port, ["b@example.org"], SIMPLE, "--plain-retry", "--timeout", "3000")
    if r.outcomes != ["tls-failed", "done"] or r.connections != 2:
        raise AssertionError(r)
    expect_status(r, "b@example.org", "sent")


def test_connection_refused_is_next_mx():
    _need()
    port = free_port("127.0.0.9")
    r = drive(port, ["b@example.org"], SIMPLE, addrs=("127.0.0.9",))
    if r.outcomes != ["next-mx"]:
        raise AssertionError(r)
    expect_status(r, "b@example.org", "deferred", "4.4.1",
                  "connect to mx.test[127.0.0.9]:%d: Connection refused" % port)


def _blackhole(host, port):
    """A listener whose accept queue is full: further SYNs are dropped, so a
    connect to it hangs like one to a dead route."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.bind((host, port))
    l.listen(0)
    fill = []
    for _ in range(8):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((host, port))
        except BlockingIOError:
            pass
        fill.append(c)
    # the probe: a blocking connect that must not complete quickly
    probe = socket.socket(fam, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect((host, port))
        hung = False
    except (socket.timeout, OSError):
        hung = True
    probe.close()
    return l, fill, hung


def _dead_first(dead):
    port = free_port(SINK_IP)
    try:
        l, fill, hung = _blackhole(dead, port)
    except OSError as e:
        raise harness.Skip("no %s here: %s" % (dead, e))
    try:
        if not hung:
            raise harness.Skip("cannot make a connect to %s hang here" % dead)
        with Sink(host=SINK_IP, port=port) as s:
            r = drive(port, ["b@example.org"], SIMPLE, "--connect-timeout", "20000",
                      addrs=(dead, SINK_IP))
            s.wait_messages(1, timeout=10)
    finally:
        for c in fill:
            c.close()
        l.close()
    expect_status(r, "b@example.org", "sent")
    # the second address starts after the 250 ms head start, not after the
    # 20 s connect timeout of the first
    if r.elapsed[0] > 5000 or r.elapsed[0] < 200:
        raise AssertionError("took %d ms: want the 250 ms head start" % r.elapsed[0])
    if "127.0.0.2" not in r.lines[0]:
        raise AssertionError(r.lines)


def test_happy_eyeballs_dead_first_address():
    _need()
    _dead_first("127.0.0.3")


def test_happy_eyeballs_dead_ipv6_then_ipv4():
    _need()
    _dead_first("::1")


def test_happy_eyeballs_refused_first_address():
    _need()
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, ["b@example.org"], SIMPLE, addrs=("127.0.0.4", SINK_IP))
        s.wait_messages(1, timeout=10)
    expect_status(r, "b@example.org", "sent")
    if r.elapsed[0] > 2000:
        raise AssertionError("a refused address should cost no head start: %d ms" % r.elapsed[0])


def _auth_sink(mechs_excluded=(), tls=True):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult
    import ssl as _ssl

    seen = []

    class H:
        async def handle_DATA(self, server, session, envelope):
            seen.append((session.authenticated, session.ssl is not None, envelope.rcpt_tos))
            return "250 2.0.0 Ok"

    def auth(server, session, envelope, mechanism, data):
        ok = data.login == b"user@example.com" and data.password == b"s3cret pass"
        seen.append(("auth", mechanism, ok))
        return AuthResult(success=ok, handled=False)

    ctx = None
    if tls:
        ctx = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*harness.tls_files())
    port = free_port(SINK_IP)

    class C(Controller):
        def factory(self):
            return SMTP(self.handler, hostname="auth.test", tls_context=ctx, authenticator=auth,
                        auth_require_tls=True, auth_exclude_mechanism=list(mechs_excluded))

        def _trigger_server(self):
            with socket.create_connection((self.hostname, self.port), timeout=5) as c:
                c.recv(1024)

    c = C(H(), hostname=SINK_IP, port=port)
    c.start()
    return c, port, seen


def test_auth_plain_and_login_over_tls():
    _need()
    for excluded, mech in (((), "PLAIN"), (("PLAIN",), "LOGIN")):
        c, port, seen = _auth_sink(excluded)
        try:
            r = drive(port, ["b@example.org"], SIMPLE, "--auth", "user@example.com:s3cret pass")
        finally:
            c.stop()
        expect_status(r, "b@example.org", "sent")
        if ("auth", mech, True) not in seen or not any(s[0] is True and s[1] for s in seen if len(s) == 3 and s[0] != "auth"):
            raise AssertionError("%s: %r" % (mech, seen))
    c, port, seen = _auth_sink()
    try:
        r = drive(port, ["b@example.org"], SIMPLE, "--auth", "user@example.com:wrong")
    finally:
        c.stop()
    expect_status(r, "b@example.org", "deferred", None, "(in reply to AUTH command)")
    if r.rcpt["b@example.org"][1][0] != "4":
        raise AssertionError("an AUTH failure must defer: %r" % r)


def test_auth_never_without_tls():
    _need()
    expect_unsent({}, ["--auth", "user:pass"], "next-mx", "deferred", "4.7.0", "without TLS",
                  "mail sent although AUTH over TLS was impossible")


def test_envelope_with_crlf_is_never_sent():
    _need()
    evil = "evil@example.org>\r\nRCPT TO:<injected@example.org"
    with Sink(host=SINK_IP) as s:
        r = drive(s.port, ["ok@example.org", evil], SIMPLE)
        got = s.wait_messages(1, timeout=10)
    expect_status(r, "ok@example.org", "sent")
    if got[0].rcpt_tos != ["ok@example.org"]:
        raise AssertionError("an injected recipient arrived: %r" % got[0].rcpt_tos)
    bad = [v for k, v in r.rcpt.items() if k.startswith("evil@")]
    if not bad or bad[0][0] != "bounced" or bad[0][1] != "5.1.3":
        raise AssertionError("the bad recipient must fail 5.1.3 unsent: %r" % r)


def _scripted(replies, stall_on_data=False):
    """A one-connection server answering each command verb from replies
    (default 250); with stall_on_data it answers DATA with 354 and never
    reads again. Returns (port, thread, commands seen, stop event)."""
    import threading
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind((SINK_IP, 0))
    lsock.listen(1)
    seen = []
    stop = threading.Event()

    def serve():
        c, _ = lsock.accept()
        lsock.close()
        f = c.makefile("rb")
        c.sendall(b"220 script.test ESMTP\r\n")
        in_data = False
        for line in f:
            if in_data:                  # message content up to the dot
                if line == b".\r\n":
                    in_data = False
                    c.sendall(replies.get(".", b"250 2.0.0 Ok\r\n"))
                continue
            v = line[:4].upper().decode()
            seen.append(line.rstrip(b"\r\n").decode("latin-1"))
            reply = replies.get(v, b"250 ok\r\n")
            c.sendall(reply)
            if v == "QUIT" or (v == "DATA" and stall_on_data):
                break
            in_data = v == "DATA" and reply.startswith(b"354")
        stop.wait(60)
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock.getsockname()[1], t, seen, stop


def test_server_that_stops_reading_mid_data_times_out():
    _need()
    port, t, seen, stop = _scripted({"EHLO": b"250-stall.test\r\n250 8BITMIME\r\n", "DATA": b"354 go\r\n"},
                                    stall_on_data=True)
    big = SIMPLE + (b"y" * 998 + b"\r\n") * 40000      # 40 MB: more than any socket buffer
    try:
        r = drive(port, ["b@example.org"], big, "--timeout", "1500")
    finally:
        stop.set()
    if "DATA" not in seen:
        raise AssertionError("the server never got DATA: %r" % r)
    expect_status(r, "b@example.org", "deferred", "4.4.2", "timed out while sending message body")
    if r.elapsed[0] > 10000:
        raise AssertionError("the stall took %d ms to notice" % r.elapsed[0])


def test_a_2xx_to_data_is_never_success():
    _need()
    port, t, seen, stop = _scripted({"EHLO": b"250-script.test\r\n250 PIPELINING\r\n", "DATA": b"250 sure\r\n"})
    stop.set()
    r = drive(port, ["b@example.org"], SIMPLE)
    t.join(10)
    expect_status(r, "b@example.org", "deferred", "4.5.0", "(in reply to DATA command)")
    if not any(c.startswith("RSET") for c in seen):
        raise AssertionError("no RSET after the failed DATA: %r" % seen)


def test_tls_trust_and_the_verification_hook():
    _need()
    cert = harness.tls_files()[0]
    with Sink(host=SINK_IP, tls=harness.tls_files()) as s:
        r = drive(s.port, ["b@example.org"], SIMPLE, "--ca", cert)
        s.wait_messages(1, timeout=10)
    if not any(l.startswith("Trusted TLS connection established to mx.test[127.0.0.2]") for l in r.logs):
        raise AssertionError("want Trusted with the CA: %r" % r.logs)
    with Sink(host=SINK_IP, tls=harness.tls_files()) as s:
        r = drive(s.port, ["b@example.org"], SIMPLE, "--ca", cert, "--require-verified")
        s.wait_messages(1, timeout=10)
    if not any(l.startswith("Verified TLS connection established") for l in r.logs):
        raise AssertionError("want Verified from the hook: %r" % r.logs)
    expect_unsent({"tls": harness.tls_files()}, ["--require-verified"], "tls-failed", "deferred", "4.7.5",
                  "TLS verification failed", "mail sent to an unverified peer although the policy required it")
