"""
TLS: STARTTLS on 25 and 587 (then EHLO again, state reset, pipelined input
discarded), the 530 on 587 before STARTTLS, implicit TLS on 465; with the
raw client, Python's smtplib, `openssl s_client` and swaks.
"""

import queue
import re
import subprocess
import threading
import time

import harness
from harness import HOST, REMOTE_RCPT, expect, queued_id


def _kw(r):
    return [l[4:] for l in r.lines[1:]]


def test_starttls_then_ehlo_again():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("tls")
    with inst.client() as c:
        if "STARTTLS" not in _kw(c.ehlo()):
            raise AssertionError("STARTTLS not advertised before TLS")
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
        c.starttls()
        if c.sock.version() is None or not c.sock.version().startswith("TLS"):
            raise AssertionError("no TLS session: %r" % c.sock.version())
        # HELO/EHLO state and the transaction are reset
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="503 5.5.1 Error: send HELO/EHLO first")
        r = c.ehlo()
        if "STARTTLS" in _kw(r):
            raise AssertionError("STARTTLS advertised again inside TLS: %r" % str(r))
        expect(c.cmd("RCPT TO:<%s>" % REMOTE_RCPT), exact="503 5.5.1 Error: need MAIL command")
        expect(c.cmd("STARTTLS"), exact="554 5.5.1 Error: TLS already active")
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(harness.simple_body(sender)))
        expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
    e = inst.queue_entry(qid)
    if e is None or e["sender"] != sender:
        raise AssertionError("message sent under TLS not queued: %s %r" % (qid, e))


def test_starttls_pipelined_noop_discarded():
    inst = harness.shared()
    with inst.client(ehlo=True) as c:
        c.send(b"STARTTLS\r\nNOOP\r\n")          # one write
        r = c.reply()
        expect(r, exact="220 2.0.0 Ready to start TLS")
        if c.buf:
            raise AssertionError("plaintext after the 220, before the handshake: %r" % c.buf)
        c._wrap()                                # handshake on the same socket
        r = c.cmd("EHLO client.example")
        if r.first != "250-" + HOST:
            raise AssertionError("first reply after the handshake should be the EHLO reply, got %r "
                                 "(the pipelined NOOP was answered)" % str(r))
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
        try:
            extra = c.reply(timeout=0.5)
            raise AssertionError("an extra reply arrived: %r" % str(extra))
        except TimeoutError:
            pass


def test_starttls_pipelined_transaction_discarded():
    """MAIL pipelined behind STARTTLS must not survive into the TLS session."""
    inst = harness.shared()
    with inst.client(ehlo=True) as c:
        c.send(b"STARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<inject@example.com>\r\n")
        expect(c.reply(), exact="220 2.0.0 Ready to start TLS")
        if c.buf:
            raise AssertionError("plaintext after the 220: %r" % c.buf)
        c._wrap()
        r = c.cmd("RCPT TO:<%s>" % REMOTE_RCPT)
        expect(r, exact="503 5.5.1 Error: send HELO/EHLO first")
        c.ehlo()
        expect(c.cmd("RCPT TO:<%s>" % REMOTE_RCPT), exact="503 5.5.1 Error: need MAIL command")


def test_submission_requires_starttls():
    """587: STARTTLS first, then AUTH (test_submission.py sends mail there)."""
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("sub")
    with inst.client(port=inst.p_sub) as c:
        r = c.ehlo()
        if "STARTTLS" not in _kw(r):
            raise AssertionError("587 must offer STARTTLS: %r" % str(r))
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="530 5.7.0 Must issue a STARTTLS command first")
        c.starttls()
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="530 5.7.0 Authentication required")


def test_smtps_implicit_tls():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("smtps")
    with inst.client(port=inst.p_smtps, tls=True) as c:     # banner checked under TLS
        if not c.tls:
            raise AssertionError("not under TLS")
        r = c.ehlo()
        if "STARTTLS" in _kw(r):
            raise AssertionError("465 must not offer STARTTLS inside TLS: %r" % str(r))
        expect(c.cmd("STARTTLS"), exact="554 5.5.1 Error: TLS already active")
        # submission: AUTH before MAIL (test_submission.py sends mail here)
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="530 5.7.0 Authentication required")


def test_smtps_plaintext_client_gets_no_banner():
    """465 speaks TLS from the first byte: a plaintext client sees no 220."""
    inst = harness.shared()
    c = harness.Client(inst.p_smtps, banner=False, timeout=3)
    try:
        c.send(b"EHLO client.example\r\n")
        try:
            got = c.wait_closed(5)
        except TimeoutError:
            got = c.buf
        if got.startswith(b"220") or b"250" in got:
            raise AssertionError("465 answered plaintext: %r" % got[:100])
    finally:
        c.close()


def test_smtplib_starttls():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("smtplibtls")
    before = inst.queue_ids()
    with inst.smtplib() as s:
        s.ehlo()
        code, _ = s.starttls(context=harness.client_tls_context())
        if code != 220:
            raise AssertionError("STARTTLS got %d" % code)
        s.ehlo()
        if s.has_extn("starttls"):
            raise AssertionError("STARTTLS still advertised after the handshake")
        s.sendmail(sender, [REMOTE_RCPT], harness.simple_body(sender))
        s.quit()
    new = [e for e in inst.queue() if e["queue_id"] not in before and e["sender"] == sender]
    if len(new) != 1:
        raise AssertionError("expected one queued message from %s, found %d" % (sender, len(new)))


def test_smtplib_smtp_ssl():
    import smtplib
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("smtplibssl")
    before = inst.queue_ids()
    with smtplib.SMTP_SSL(harness.LOCALHOST, inst.p_smtps, local_hostname="client.example",
                          context=harness.client_tls_context(), timeout=10) as s:
        try:
            s.sendmail(sender, [REMOTE_RCPT], harness.simple_body(sender))
            raise AssertionError("465 took mail without AUTH")
        except smtplib.SMTPSenderRefused as e:
            if e.smtp_code != 530:
                raise
        s.quit()
    new = [e for e in inst.queue() if e["queue_id"] not in before and e["sender"] == sender]
    if new:
        raise AssertionError("a message from 465 without AUTH was queued: %r" % new)


class _SClient:
    """openssl s_client driven line by line with deadlines."""

    def __init__(self, args):
        self.p = subprocess.Popen(["openssl", "s_client", "-quiet", "-crlf"] + args,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        threading.Thread(target=self._pump, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _pump(self, f, q):
        for line in iter(f.readline, b""):
            q.put(line.decode("latin-1").rstrip("\r\n"))
        q.put(None)

    def _drain(self):
        for line in iter(self.p.stderr.readline, b""):
            self.err.append(line.decode("latin-1").rstrip())

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("s_client: no %s within %gs; saw %r; stderr %r"
                                   % (what, timeout, self.seen[-10:], self.err[-5:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("s_client ended before %s; saw %r; stderr %r" % (what, self.seen[-10:], self.err[-5:]))
            self.seen.append(line)
            if pred(line):
                return line

    def write(self, text):
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()

    def finish(self):
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
            raise AssertionError("s_client did not exit after QUIT (server kept the connection open)")


def _s_client_session(sc):
    sc.write("EHLO client.example")
    sc.wait_for(lambda l: l == "250-" + HOST, 10, "250-%s" % HOST)
    sc.wait_for(lambda l: l.startswith("250 "), 10, "end of the EHLO reply")
    sc.write("NOOP")
    sc.wait_for(lambda l: l == "250 2.0.0 Ok", 10, "NOOP reply")
    sc.write("QUIT")
    sc.wait_for(lambda l: l == "221 2.0.0 Bye", 10, "221 2.0.0 Bye")
    sc.finish()


def test_openssl_s_client_starttls():
    inst = harness.shared()
    sc = _SClient(["-starttls", "smtp", "-connect", "%s:%d" % (harness.LOCALHOST, inst.p_smtp)])
    try:
        # s_client did banner, EHLO and STARTTLS itself; we talk inside TLS
        _s_client_session(sc)
    finally:
        if sc.p.poll() is None:
            sc.p.kill()
            sc.p.wait()


def test_openssl_s_client_smtps():
    inst = harness.shared()
    sc = _SClient(["-connect", "%s:%d" % (harness.LOCALHOST, inst.p_smtps)])
    try:
        sc.wait_for(lambda l: l.startswith("220"), 15, "the banner")
        if sc.seen[-1] != "220 %s ESMTP Postern" % HOST:
            raise AssertionError("banner under TLS: %r" % sc.seen[-1])
        _s_client_session(sc)
    finally:
        if sc.p.poll() is None:
            sc.p.kill()
            sc.p.wait()


def _swaks(inst, port, extra):
    sender = "%s@example.com" % harness.token("swakstls")
    r = subprocess.run(["swaks", "--server", harness.LOCALHOST, "--port", str(port), "--from", sender,
                        "--to", REMOTE_RCPT, "--helo", "client.example", "--timeout", "20"] + extra,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("swaks %s exited %d:\n%s" % (" ".join(extra), r.returncode, out[-2000:]))
    m = re.search(r"<~  250 2\.0\.0 Ok: queued as ([0-9A-Z]{12,})", out)
    if not m:
        raise AssertionError("no 'queued as' inside TLS (<~) in the swaks transcript:\n%s" % out[-2000:])
    e = inst.queue_entry(m.group(1))
    if e is None or e["sender"] != sender:
        raise AssertionError("swaks message %s not queued from %s: %r" % (m.group(1), sender, e))
    return out


def test_swaks_starttls():
    inst = harness.shared()
    out = _swaks(inst, inst.p_smtp, ["--tls"])
    if "<-  220 2.0.0 Ready to start TLS" not in out:
        raise AssertionError("swaks transcript lacks the STARTTLS reply:\n%s" % out[-2000:])


def _swaks_no_auth(port, extra):
    """Submission without AUTH: TLS works, MAIL gets 530 (with AUTH:
    test_auth.py)."""
    r = subprocess.run(["swaks", "--server", harness.LOCALHOST, "--port", str(port), "--from", "x@example.com",
                        "--to", REMOTE_RCPT, "--helo", "client.example", "--timeout", "20"] + extra,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    if "<~* 530 5.7.0 Authentication required" not in out:
        raise AssertionError("swaks %s on %d: no 530 inside TLS:\n%s" % (" ".join(extra), port, out[-2000:]))
    return out


def test_swaks_submission_starttls():
    inst = harness.shared()
    _swaks_no_auth(inst.p_sub, ["--tls"])


def test_swaks_tls_on_connect():
    inst = harness.shared()
    out = _swaks_no_auth(inst.p_smtps, ["--tls-on-connect"])
    if "<~  220 %s ESMTP Postern" % HOST not in out:
        raise AssertionError("swaks did not see the banner under TLS:\n%s" % out[-2000:])


def test_no_certificate():
    """Without tls_cert_file/tls_key_file: no STARTTLS, 454, 465 and 587 closed."""
    import socket
    with harness.Instance("notls", tls=False) as inst:
        with inst.client() as c:
            r = c.ehlo()
            if "STARTTLS" in _kw(r):
                raise AssertionError("STARTTLS offered without a certificate: %r" % str(r))
            expect(c.cmd("STARTTLS"), exact="454 4.7.0 TLS not available")
            expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
        for port in (inst.p_sub, inst.p_smtps):
            try:
                s = socket.create_connection((harness.LOCALHOST, port), timeout=3)
                s.close()
                raise AssertionError("port %d accepts connections without a certificate" % port)
            except ConnectionRefusedError:
                pass


def test_tls_handshake_garbage_does_not_kill_worker():
    """A client that sends junk instead of a ClientHello after STARTTLS."""
    inst = harness.shared()
    kids = inst.children()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("STARTTLS"), exact="220 2.0.0 Ready to start TLS")
        c.send(b"this is not a TLS record\r\n" * 10)
        try:
            c.wait_closed(10)
        except TimeoutError:
            raise AssertionError("server kept the connection open after a failed handshake")
    with inst.client(ehlo=True):
        pass
    if inst.children() != kids:
        raise AssertionError("children changed after a bad handshake: %r -> %r" % (kids, inst.children()))
