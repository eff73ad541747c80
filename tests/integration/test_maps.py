"""
Local recipients (issue 7, parts 1, 2 and 5): the mailbox and alias maps
compiled by the master into smtpd's jail, the RCPT-time checks (550 5.1.1
for an unknown user, in order inside a pipelined transaction), +tag,
postmaster, the percent hack, bang paths and quoted '@' as unknown users,
unsafe local parts, VRFY and EXPN in both modes, a map reload without a
restart, and a broken map refused with FILE:LINE.
"""

import os
import socket
import subprocess

import re

import harness
from harness import HOST, LOCAL_RCPT, REMOTE_RCPT, expect, queued_id

UNKNOWN = "550 5.1.1 <%s>: Recipient address rejected: User unknown"

MAILBOXES = """# test mailboxes
%s
alice@%s
Bob@%s:$6$salt$notarealhash
j\u00f6rg@%s
""" % (LOCAL_RCPT, HOST, HOST, HOST)

ALIASES = """# test aliases
staff@%s: alice, demo@localhost,
  someone@remote.example
team@%s: staff, bob
helpdesk: postmaster
""" % (HOST, HOST)


def _instance(name, mailboxes=MAILBOXES, aliases=ALIASES, **conf):
    inst = harness.Instance(name, **conf)
    _write(inst, mailboxes, aliases)
    return inst


def _write(inst, mailboxes=None, aliases=None):
    for path, text in ((inst.mailboxes_file, mailboxes), (inst.aliases_file, aliases)):
        if text is not None:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path + ".tmp", 0o644)
            os.rename(path + ".tmp", path)


def _postern(inst, *args):
    r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=harness.daemon_env(), timeout=60)
    return r.returncode, r.stdout.decode("utf-8", errors="replace")


def _rcpt(c, addr):
    return str(c.cmd("RCPT TO:<%s>" % addr))


def test_maps_pipelined_unknown_user():
    """One write: MAIL, four RCPTs (one unknown), DATA. The replies come in
    order, the unknown one refused, and the message is queued for the
    other three."""
    # the local role is off: the local recipients stay in the queue to be listed
    with _instance("maps-pipe", master_service_disable="local") as inst:
        with inst.client(ehlo=True) as c:
            c.send("MAIL FROM:<s@example.com>\r\nRCPT TO:<alice@%s>\r\nRCPT TO:<nobody@%s>\r\n"
                   "RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (HOST, HOST, LOCAL_RCPT, REMOTE_RCPT))
            got = [str(c.reply()) for _ in range(6)]
            want = ["250 2.1.0 Ok", "250 2.1.5 Ok", UNKNOWN % ("nobody@" + HOST), "250 2.1.5 Ok", "250 2.1.5 Ok",
                    "354 End data with <CR><LF>.<CR><LF>"]
            if got != want:
                raise AssertionError("pipelined replies:\n%s\nwanted:\n%s" % ("\n".join(got), "\n".join(want)))
            c.send(harness.dot_stuff(harness.simple_body("pipe")) + b".\r\n")
            qid = queued_id(c.reply())
        e = inst.queue_entry(qid)
        rcpts = sorted(r["address"] for r in e["recipients"])
        if rcpts != sorted(["alice@" + HOST, LOCAL_RCPT, REMOTE_RCPT]):
            raise AssertionError("queued recipients %r" % rcpts)
        log = inst.log_text()
        if "NOQUEUE: reject: RCPT from" not in log or "to=<nobody@%s>" % HOST not in log:
            raise AssertionError("no Postfix-shaped reject line for nobody@ in the log")
        if "notarealhash" in log:
            raise AssertionError("the password hash appears in the log")


def _reload_done(inst):
    """postern reload, then wait until every smtpd of the old generation
    has stopped taking connections (a new connection could otherwise still
    meet the old map)."""
    off = inst.log_size()
    rc, out = _postern(inst, "reload")
    if rc != 0:
        raise AssertionError("postern reload: %d %s" % (rc, out))
    m = inst.wait_log(r"master\[\d+\]: smtpd: (\d+) old process\(es\) finish", since=off, timeout=20)
    n = int(m.group(1))
    harness.wait_until(lambda: len(re.findall(r"smtpd\[\d+\]: draining", inst.log_since(off))) >= n, 20,
                       "the %d old smtpd process(es) to drain" % n)


def test_maps_address_forms():
    """+tag, case, postmaster in any case, abuse, aliases; the percent
    hack, bang path and quoted-@ forms and unsafe local parts refused."""
    inst = harness.shared("maps", vrfy="reveal", expn="relay_networks")
    _write(inst, MAILBOXES, ALIASES)
    _reload_done(inst)
    ok = ["alice@" + HOST, "alice+tag@" + HOST, "alice+@" + HOST, "ALICE@" + HOST.upper(), "bob@" + HOST,
          "BOB+x@" + HOST, "Postmaster@" + HOST, "POSTMASTER@localhost", "pOsTmAsTeR@" + HOST.upper(),
          "postmaster", "Postmaster", "abuse@localhost", "abuse@" + HOST, "staff@" + HOST, "team@" + HOST,
          "helpdesk@localhost", '"alice"@' + HOST, "demo@LOCALHOST"]
    unknown = ["nobody@" + HOST, "nobody+alice@" + HOST, "alice%remote.example@" + HOST,
               "remote.example!alice@" + HOST, '"alice@remote.example"@' + HOST, "alice/x@" + HOST,
               '"../alice"@' + HOST, '"..."@' + HOST, '"a/../../etc"@' + HOST, "+alice@" + HOST,
               "team@localhost", '"alice\\@x"@' + HOST]
    syntax = ["../alice@" + HOST, ".alice@" + HOST, "alice.@" + HOST, "a..b@" + HOST, "x" * 65 + "@" + HOST,
              "al\x01ice@" + HOST, "...@" + HOST]

    def check():
        with inst.client(ehlo=True) as c:
            expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
            return _rcpt(c, "carol@" + HOST) == UNKNOWN % ("carol@" + HOST) and _rcpt(c, "bob@" + HOST) == "250 2.1.5 Ok"
    harness.wait_until(check, 20, "the reloaded map to answer")
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
        for a in ok:
            expect(c.cmd("RCPT TO:<%s>" % a), exact="250 2.1.5 Ok")
        for a in unknown:
            expect(c.cmd("RCPT TO:<%s>" % a), exact=UNKNOWN % a)
        for a in syntax:
            r = c.cmd("RCPT TO:<%s>" % a)
            if not str(r).startswith("501 5.1.3"):
                raise AssertionError("RCPT TO:<%r>: expected 501 5.1.3, got %r" % (a, str(r)))
        r = c.cmd(b"RCPT TO:<al\x00ice@" + HOST.encode() + b">")
        if str(r)[:1] != "5":
            raise AssertionError("a NUL in the address: %r" % str(r))
    # SMTPUTF8 local parts: ASCII letters fold, others compare as they are
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<s@example.com> SMTPUTF8"), exact="250 2.1.0 Ok")
        for a in ("j\u00f6rg@" + HOST, "J\u00f6rg+x@" + HOST.upper()):
            expect(c.cmd("RCPT TO:<%s>" % a), exact="250 2.1.5 Ok")
        for a in ("j\u00d6rg@" + HOST, "jorg@" + HOST):
            # (the harness reads replies as Latin-1: compare the ASCII tail)
            r = str(c.cmd("RCPT TO:<%s>" % a))
            if not r.startswith("550 5.1.1 <") or not r.endswith("@%s>: Recipient address rejected: User unknown" % HOST):
                raise AssertionError("RCPT TO:<%s>: %r" % (a, r))


def test_maps_vrfy_expn_revealed():
    inst = harness.shared("maps", vrfy="reveal", expn="relay_networks")
    _write(inst, MAILBOXES, ALIASES)
    _reload_done(inst)

    def ready():
        with inst.client(ehlo=True) as c:
            return str(c.cmd("VRFY bob")) == "250 2.0.0 <bob@%s>" % HOST
    harness.wait_until(ready, 20, "VRFY to find bob after the reload")
    with inst.client(ehlo=True) as c:
        expect(c.cmd("VRFY alice"), exact="250 2.0.0 <alice@%s>" % HOST)
        expect(c.cmd("VRFY <Alice+x@%s>" % HOST), exact="250 2.0.0 <Alice+x@%s>" % HOST)
        expect(c.cmd("VRFY nobody@localhost"), exact=UNKNOWN % "nobody@localhost")
        expect(c.cmd("VRFY postmaster"), exact="250 2.0.0 <postmaster@%s>" % HOST)
        expect(c.cmd("VRFY x@remote.example"), prefix="252 2.0.0")
        expect(c.cmd("VRFY <bad"), exact="501 5.1.3 Bad recipient address syntax")
        r = c.cmd("EXPN staff")
        if r.lines != ["250-2.1.5 <alice@%s>" % HOST, "250-2.1.5 <%s>" % LOCAL_RCPT, "250 2.1.5 <someone@remote.example>"]:
            raise AssertionError("EXPN staff: %r" % r.lines)
        r = c.cmd("EXPN team@%s" % HOST)
        if sorted(r.lines) != sorted(["250-2.1.5 <alice@%s>" % HOST, "250-2.1.5 <%s>" % LOCAL_RCPT,
                                      "250-2.1.5 <someone@remote.example>", "250 2.1.5 <bob@%s>" % HOST]) \
                or not r.lines[-1].startswith("250 "):
            raise AssertionError("EXPN team (nested): %r" % r.lines)
        expect(c.cmd("EXPN alice"), exact="250 2.1.5 <alice@%s>" % HOST)
        expect(c.cmd("EXPN abuse@localhost"), exact="250 2.1.5 <postmaster@%s>" % HOST)
        expect(c.cmd("EXPN nobody"), exact=UNKNOWN % ("nobody@" + HOST))
        expect(c.cmd("EXPN helpdesk@localhost"), exact="250 2.1.5 <postmaster@%s>" % HOST)
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")


def test_maps_vrfy_expn_default():
    """By default VRFY reveals nothing (252, known or not) and EXPN is 502,
    even for a client in relay_networks."""
    inst = harness.shared()
    with inst.client(ehlo=True) as c:
        for a in (LOCAL_RCPT, "nobody@localhost", "demo"):
            expect(c.cmd("VRFY " + a), exact="252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")
        expect(c.cmd("EXPN postmaster"), exact="502 5.5.1 Error: EXPN not available")


def test_maps_expn_only_relay_networks():
    """expn = relay_networks: a client outside them gets 502."""
    with _instance("maps-expn", expn="relay_networks", relay_networks="127.0.0.1/32") as inst:
        with inst.client(ehlo=True) as c:
            r = c.cmd("EXPN staff@" + HOST)
            if r.lines[0] != "250-2.1.5 <alice@%s>" % HOST:
                raise AssertionError("EXPN from relay_networks: %r" % r.lines)
        s = socket.socket()
        try:
            s.bind(("127.0.0.5", 0))
            s.settimeout(10)
            s.connect((harness.LOCALHOST, inst.p_smtp))
            f = s.makefile("rwb")
            if not f.readline().startswith(b"220 "):
                raise AssertionError("no banner")
            f.write(b"EHLO client.example\r\nEXPN staff@" + HOST.encode() + b"\r\nQUIT\r\n")
            f.flush()
            lines = [f.readline().decode().rstrip("\r\n") for _ in range(12)]
            lines = [l for l in lines if l and not l.startswith("250")]
            if not lines or lines[0] != "502 5.5.1 Error: EXPN not available":
                raise AssertionError("EXPN from outside relay_networks: %r" % lines)
        finally:
            s.close()


def test_maps_reload_adds_user():
    """A user added to the file and `postern reload`: accepted, without a
    restart (queue-mgr keeps its pid), and a session open meanwhile goes
    on."""
    with _instance("maps-reload") as inst:
        qmgr = inst.pids("queue-mgr")
        old = inst.client(ehlo=True)
        try:
            old.mail_rcpt("s@example.com", [LOCAL_RCPT])
            with inst.client(ehlo=True) as c:
                expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
                expect(c.cmd("RCPT TO:<carol@%s>" % HOST), exact=UNKNOWN % ("carol@" + HOST))
            _write(inst, MAILBOXES + "carol@%s\n" % HOST)
            off = inst.log_size()
            rc, out = _postern(inst, "reload")
            if rc != 0:
                raise AssertionError("postern reload exited %d: %s" % (rc, out))
            inst.wait_log(r"reload: configuration .* maps: 6 mailbox", since=off, timeout=20)

            def accepted():
                with inst.client(ehlo=True) as c:
                    expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
                    return _rcpt(c, "carol@" + HOST) == "250 2.1.5 Ok"
            harness.wait_until(accepted, 20, "carol@ to be accepted after the reload")
            # the session opened before the reload finishes its transaction
            expect(old.cmd("RCPT TO:<alice@%s>" % HOST), exact="250 2.1.5 Ok")
            queued_id(old.data(harness.simple_body("across-reload")))
            expect(old.cmd("QUIT"), exact="221 2.0.0 Bye")
        finally:
            old.close()
        if inst.pids("queue-mgr") != qmgr:
            raise AssertionError("queue-mgr restarted on a map reload: %r -> %r" % (qmgr, inst.pids("queue-mgr")))


def test_maps_broken_map_refused():
    """A syntax error: postern check exits 1 with FILE:LINE, reload is
    refused and logs why, and the old map stays in force."""
    with _instance("maps-broken") as inst:
        bad = ALIASES + "carol@%s\n" % HOST   # line 6: no colon
        _write(inst, MAILBOXES + "carol@%s\n" % HOST, bad)
        rc, out = _postern(inst, "check")
        if rc != 1 or "%s:6: " % inst.aliases_file not in out:
            raise AssertionError("postern check: exit %d, %r (wanted 1 and %s:6:)" % (rc, out, inst.aliases_file))
        off = inst.log_size()
        rc, out = _postern(inst, "reload")
        inst.wait_log(r"reload failed: %s:6: .*keeping the running configuration and maps" % inst.aliases_file,
                      since=off, timeout=20)
        with inst.client(ehlo=True) as c:
            expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
            expect(c.cmd("RCPT TO:<alice@%s>" % HOST), exact="250 2.1.5 Ok")
            expect(c.cmd("RCPT TO:<carol@%s>" % HOST), exact=UNKNOWN % ("carol@" + HOST))
        # a loop is refused the same way, at the line of the alias
        _write(inst, None, "a: b\nb: c\nc: a\n")
        rc, out = _postern(inst, "check")
        if rc != 1 or "%s:1: alias loop: a@" % inst.aliases_file not in out:
            raise AssertionError("postern check of a loop: exit %d, %r" % (rc, out))
        # and fixed, it goes through
        _write(inst, None, ALIASES)
        rc, out = _postern(inst, "check")
        if rc != 0 or "6 mailbox(es)" not in out:
            raise AssertionError("postern check after the fix: exit %d, %r" % (rc, out))


def test_maps_broken_map_at_start():
    """A master whose maps do not compile does not start, and says where."""
    inst = _instance("maps-nostart", mailboxes="demo@localhost\nnot an address\n")
    try:
        rc, out = _postern(inst, "start")
        if rc == 0 or "%s:2: " % inst.mailboxes_file not in out:
            raise AssertionError("postern start with a broken map: exit %d, %r" % (rc, out))
    finally:
        inst.stop()
