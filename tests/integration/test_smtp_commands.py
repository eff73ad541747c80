"""
SMTP commands against the shared instance: one test per row of
docs/SMTP.md that a plain session can reach, checking the exact reply text;
then whole transactions with the raw client, smtplib and swaks.
"""

import re
import subprocess

import harness
from harness import HOST, LOCAL_RCPT, REMOTE_RCPT, expect, queued_id

EHLO_NAME = "client.example"


def _ehlo_ok(r):
    if r.first != "250-" + HOST:
        raise AssertionError("EHLO: expected first line 250-%s, got %r" % (HOST, str(r)))


EHLO = ("EHLO " + EHLO_NAME, _ehlo_ok)
MAIL = ("MAIL FROM:<sender@example.com>", "250 2.1.0 Ok")
RCPT = ("RCPT TO:<%s>" % REMOTE_RCPT, "250 2.1.5 Ok")

# A RCPT line longer than 512 but shorter than the 1024 allowed for MAIL and
# RCPT (RFC 3461 parameters): long address, NOTIFY and ORCPT.
_LONG_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "example"])
_LONG_ADDR = "x" * 40 + "@" + _LONG_DOMAIN
_LONG_RCPT = "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;%s" % (_LONG_ADDR, _LONG_ADDR)
assert 512 < len(_LONG_RCPT) + 2 < 1024

# name: [(line to send (str or raw bytes with their own ending), expectation)]
# expectation: exact text of the (last) reply line, ("prefix", text), or a
# callable that checks the Reply.
ROWS = [
    ("helo", [("HELO " + EHLO_NAME, "250 " + HOST)]),
    ("helo_without_name", [("HELO", "501 5.5.4 Syntax: HELO hostname")]),
    ("ehlo_without_name", [("EHLO", "501 5.5.4 Syntax: EHLO hostname")]),
    ("ehlo_lowercase_command", [("ehlo " + EHLO_NAME, _ehlo_ok), ("mail from:<a@example.com>", "250 2.1.0 Ok")]),
    ("mail_before_helo", [("MAIL FROM:<a@example.com>", "503 5.5.1 Error: send HELO/EHLO first")]),
    ("rcpt_before_helo", [("RCPT TO:<%s>" % LOCAL_RCPT, "503 5.5.1 Error: send HELO/EHLO first")]),
    ("data_before_helo", [("DATA", "503 5.5.1 Error: send HELO/EHLO first")]),
    ("bdat_before_helo", [("BDAT 0 LAST", "503 5.5.1 Error: send HELO/EHLO first")]),
    ("mail", [EHLO, ("MAIL FROM:<a@example.com>", "250 2.1.0 Ok")]),
    ("mail_after_helo", [("HELO " + EHLO_NAME, "250 " + HOST), ("MAIL FROM:<a@example.com>", "250 2.1.0 Ok")]),
    ("mail_null_sender", [EHLO, ("MAIL FROM:<>", "250 2.1.0 Ok")]),
    ("mail_nested", [EHLO, MAIL, ("MAIL FROM:<b@example.com>", "503 5.5.1 Error: nested MAIL command")]),
    ("mail_bad_address_empty_domain", [EHLO, ("MAIL FROM:<foo@>", "501 5.1.7 Bad sender address syntax")]),
    ("mail_bad_address_unbalanced", [EHLO, ("MAIL FROM:<foo@example.com", "501 5.1.7 Bad sender address syntax")]),
    ("mail_bad_address_two_ats", [EHLO, ("MAIL FROM:<a@b@example.com>", "501 5.1.7 Bad sender address syntax")]),
    ("mail_non_ascii_without_smtputf8",
     [EHLO, ("MAIL FROM:<j\u00f6rg@example.com>", "553 5.6.7 Error: non-ASCII address needs SMTPUTF8")]),
    ("mail_non_ascii_with_smtputf8", [EHLO, ("MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8", "250 2.1.0 Ok")]),
    ("mail_size_over_limit",
     [EHLO, ("MAIL FROM:<a@example.com> SIZE=999999999999", "552 5.3.4 Message size exceeds fixed limit")]),
    ("mail_size_within_limit", [EHLO, ("MAIL FROM:<a@example.com> SIZE=1000", "250 2.1.0 Ok")]),
    ("mail_body_8bitmime", [EHLO, ("MAIL FROM:<a@example.com> BODY=8BITMIME", "250 2.1.0 Ok")]),
    ("mail_dsn_parameters", [EHLO, ("MAIL FROM:<a@example.com> RET=HDRS ENVID=abc123", "250 2.1.0 Ok")]),
    ("mail_unknown_parameter",
     [EHLO, ("MAIL FROM:<a@example.com> FOO=BAR", ("prefix", "555 5.5.4 Unsupported option: FOO"))]),
    ("mail_malformed_size", [EHLO, ("MAIL FROM:<a@example.com> SIZE=abc", "501 5.5.4 Bad SIZE parameter syntax")]),
    ("mail_malformed_body", [EHLO, ("MAIL FROM:<a@example.com> BODY=9BIT", "501 5.5.4 Bad BODY parameter syntax")]),
    ("mail_malformed_ret", [EHLO, ("MAIL FROM:<a@example.com> RET=MAYBE", "501 5.5.4 Bad RET parameter syntax")]),
    ("mail_line_over_1024", [EHLO, ("MAIL FROM:<a@example.com> ENVID=" + "x" * 1100,
                                    "500 5.5.2 Error: command line too long"),
                             ("NOOP", "250 2.0.0 Ok")]),
    ("rcpt_before_mail", [EHLO, ("RCPT TO:<%s>" % LOCAL_RCPT, "503 5.5.1 Error: need MAIL command")]),
    ("rcpt_local", [EHLO, MAIL, ("RCPT TO:<%s>" % LOCAL_RCPT, "250 2.1.5 Ok")]),
    ("rcpt_remote_from_relay_network", [EHLO, MAIL, ("RCPT TO:<%s>" % REMOTE_RCPT, "250 2.1.5 Ok")]),
    ("rcpt_bad_address", [EHLO, MAIL, ("RCPT TO:<foo@>", "501 5.1.3 Bad recipient address syntax")]),
    ("rcpt_empty_address", [EHLO, MAIL, ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax")]),
    ("rcpt_unknown_parameter",
     [EHLO, MAIL, ("RCPT TO:<%s> FOO=BAR" % LOCAL_RCPT, ("prefix", "555 5.5.4 Unsupported option: FOO"))]),
    ("rcpt_malformed_notify",
     [EHLO, MAIL, ("RCPT TO:<%s> NOTIFY=SOMETIMES" % LOCAL_RCPT, "501 5.5.4 Bad NOTIFY parameter syntax")]),
    ("rcpt_dsn_parameters",
     [EHLO, MAIL, ("RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;%s" % (LOCAL_RCPT, LOCAL_RCPT), "250 2.1.5 Ok")]),
    ("rcpt_line_between_512_and_1024", [EHLO, MAIL, (_LONG_RCPT, "250 2.1.5 Ok")]),
    ("data_before_mail", [EHLO, ("DATA", "503 5.5.1 Error: need RCPT command")]),
    ("data_without_valid_recipients",
     [EHLO, MAIL, ("RCPT TO:<foo@>", "501 5.1.3 Bad recipient address syntax"),
      ("DATA", "554 5.5.1 Error: no valid recipients")]),
    ("data_after_mail_without_rcpt", [EHLO, MAIL, ("DATA", "554 5.5.1 Error: no valid recipients")]),
    ("data_go_ahead", [EHLO, MAIL, RCPT, ("DATA", "354 End data with <CR><LF>.<CR><LF>")]),
    ("rset", [EHLO, MAIL, RCPT, ("RSET", "250 2.0.0 Ok"),
              ("RCPT TO:<%s>" % LOCAL_RCPT, "503 5.5.1 Error: need MAIL command"),
              ("MAIL FROM:<a@example.com>", "250 2.1.0 Ok")]),
    ("noop", [("NOOP", "250 2.0.0 Ok"), EHLO, ("NOOP", "250 2.0.0 Ok")]),
    ("vrfy", [EHLO, ("VRFY demo", "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")]),
    ("vrfy_unknown_reveals_nothing", [EHLO, ("VRFY nobody@localhost", "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")]),
    ("vrfy_without_argument", [EHLO, ("VRFY", "501 5.5.4 Syntax: VRFY address")]),
    ("expn", [EHLO, ("EXPN staff", "502 5.5.1 Error: EXPN not available")]),
    ("expn_postmaster_off", [EHLO, ("EXPN postmaster", "502 5.5.1 Error: EXPN not available")]),
    ("rcpt_local_user", [EHLO, MAIL, ("RCPT TO:<%s>" % LOCAL_RCPT.upper(), "250 2.1.5 Ok")]),
    ("rcpt_unknown_local_user", [EHLO, MAIL, ("RCPT TO:<nobody@localhost>",
                                              "550 5.1.1 <nobody@localhost>: Recipient address rejected: User unknown"),
                                 ("RCPT TO:<%s>" % LOCAL_RCPT, "250 2.1.5 Ok")]),
    ("rcpt_postmaster_any_case", [EHLO, MAIL, ("RCPT TO:<PostMaster@%s>" % HOST, "250 2.1.5 Ok"),
                                  ("RCPT TO:<POSTMASTER>", "250 2.1.5 Ok")]),
    ("help", [("HELP", "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET VRFY EXPN NOOP QUIT HELP STARTTLS AUTH")]),
    ("auth_not_enabled", [EHLO, ("AUTH PLAIN", "503 5.5.1 Error: authentication not enabled")]),
    ("unknown_command", [EHLO, ("FOOBAR", "502 5.5.2 Error: command not recognized"), ("NOOP", "250 2.0.0 Ok")]),
    ("command_line_over_512", [EHLO, ("NOOP " + "x" * 600, "500 5.5.2 Error: command line too long"),
                               ("NOOP", "250 2.0.0 Ok")]),
    ("nul_in_command", [EHLO, (b"NOOP\x00x\r\n", "500 5.5.2 Error: bad character in command"),
                        ("NOOP", "250 2.0.0 Ok")]),
    ("bare_cr_in_command", [EHLO, (b"NO\rOP\r\n", "500 5.5.2 Error: bad character in command"),
                            ("NOOP", "250 2.0.0 Ok")]),
    ("starttls_with_argument", [EHLO, ("STARTTLS now", "501 5.5.4 Syntax: STARTTLS")]),
]


def _run_rows(steps):
    inst = harness.shared()
    with inst.client() as c:
        for line, want in steps:
            if isinstance(line, bytes):
                c.send(line)
                r = c.reply()
            else:
                r = c.cmd(line)
            try:
                if callable(want):
                    want(r)
                elif isinstance(want, tuple):
                    expect(r, prefix=want[1])
                else:
                    expect(r, exact=want)
            except AssertionError as e:
                raise AssertionError("after %r: %s" % (line if isinstance(line, bytes) else line[:80], e))


def _make(steps):
    def t():
        _run_rows(steps)
    return t


for _name, _steps in ROWS:
    _fn = _make(_steps)
    _fn.__name__ = "test_" + _name
    _fn.__module__ = __name__
    globals()["test_" + _name] = _fn
del _name, _steps, _fn


def test_banner():
    inst = harness.shared()
    with inst.client() as c:   # the client checks the exact banner
        expect(c.banner, exact="220 %s ESMTP Postern" % HOST)
        if len(c.banner.lines) != 1:
            raise AssertionError("banner should be one line: %r" % str(c.banner))


def test_ehlo_keywords():
    inst = harness.shared()
    with inst.client() as c:
        r = c.cmd("EHLO " + EHLO_NAME)
        _ehlo_ok(r)
        for line in r.lines[:-1]:
            if not line.startswith("250-"):
                raise AssertionError("continuation line should start with 250-: %r" % line)
        if not r.last.startswith("250 "):
            raise AssertionError("last EHLO line should start with '250 ': %r" % r.last)
        kw = [l[4:] for l in r.lines[1:]]
        for want in ("PIPELINING", "SIZE 36700160", "8BITMIME", "ENHANCEDSTATUSCODES",
                     "SMTPUTF8", "DSN", "CHUNKING", "STARTTLS"):
            if want not in kw:
                raise AssertionError("EHLO does not advertise %r: %r" % (want, kw))
        if any(k.startswith("AUTH") for k in kw):
            raise AssertionError("AUTH must not be offered on port 25 without TLS: %r" % kw)


def test_quit():
    inst = harness.shared()
    c = inst.client()
    try:
        expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
        rest = c.wait_closed(5)
        if rest:
            raise AssertionError("server sent %r after 221" % rest)
    finally:
        c.close()


def test_message_is_queued():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("queued")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT, "second@remote.example"])
        r = c.data(harness.simple_body(sender))
        qid = queued_id(r)
    e = inst.queue_entry(qid)
    if e is None:
        raise AssertionError("queue id %s from the 250 reply is not in mailq -j" % qid)
    if e.get("sender") != sender:
        raise AssertionError("queued sender %r, expected %r" % (e.get("sender"), sender))
    got = sorted(x.get("address") for x in e.get("recipients", []))
    if got != sorted([REMOTE_RCPT, "second@remote.example"]):
        raise AssertionError("queued recipients %r" % got)


def test_two_transactions_in_one_session():
    inst = harness.shared()
    with inst.client(ehlo=True) as c:
        ids = []
        for _ in range(2):
            s = "%s@example.com" % harness.token("two")
            c.mail_rcpt(s, [REMOTE_RCPT])
            ids.append(queued_id(c.data(harness.simple_body(s))))
        expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
    if ids[0] == ids[1]:
        raise AssertionError("two messages got the same queue id %s" % ids[0])
    if not ids[0] < ids[1]:
        raise AssertionError("queue ids not sortable by arrival: %s then %s" % tuple(ids))
    q = inst.queue_ids()
    for i in ids:
        if i not in q:
            raise AssertionError("%s not in the queue" % i)


def test_pipelining():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("pipe")
    with inst.client(ehlo=True) as c:
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<bad@>\r\nDATA\r\n" % (sender, REMOTE_RCPT))
        expect(c.reply(), exact="250 2.1.0 Ok")
        expect(c.reply(), exact="250 2.1.5 Ok")
        expect(c.reply(), exact="501 5.1.3 Bad recipient address syntax")
        expect(c.reply(), exact="354 End data with <CR><LF>.<CR><LF>")
        c.send(harness.simple_body(sender) + b".\r\nNOOP\r\n")
        qid = queued_id(c.reply())
        expect(c.reply(), exact="250 2.0.0 Ok")
    e = inst.queue_entry(qid)
    if e is None or e["sender"] != sender:
        raise AssertionError("pipelined message %s not queued with sender %s: %r" % (qid, sender, e))


def test_log_lines_postfix_shape():
    inst = harness.shared()
    off = inst.log_size()
    sender = "%s@example.com" % harness.token("log")
    with inst.client() as c:
        c.ehlo()
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(harness.simple_body(sender)))
        expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
    inst.wait_log(r"postern/smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]", off)
    inst.wait_log(r"postern/smtpd\[\d+\]: %s: client=unknown\[127\.0\.0\.1\]" % qid, off)
    inst.wait_log(r"postern/queue-mgr\[\d+\]: %s: from=<%s>, size=\d+, nrcpt=1 \(queue active\)"
                  % (qid, re.escape(sender)), off)
    inst.wait_log(r"postern/smtpd\[\d+\]: disconnect from unknown\[127\.0\.0\.1\] "
                  r"ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5$", off)


def test_smtplib_sendmail():
    inst = harness.shared()
    before = inst.queue_ids()
    sender = "%s@example.com" % harness.token("smtplib")
    msg = harness.simple_body(sender)
    with inst.smtplib() as s:
        code, _ = s.ehlo()
        if code != 250:
            raise AssertionError("smtplib EHLO got %d" % code)
        if not s.has_extn("pipelining") or not s.has_extn("size"):
            raise AssertionError("smtplib did not see PIPELINING and SIZE: %r" % s.esmtp_features)
        refused = s.sendmail(sender, [REMOTE_RCPT], msg)
        if refused:
            raise AssertionError("recipients refused: %r" % refused)
        s.quit()
    new = [e for e in inst.queue() if e["queue_id"] not in before and e["sender"] == sender]
    if len(new) != 1:
        raise AssertionError("expected one new queued message from %s, found %d" % (sender, len(new)))


def test_swaks_plain():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("swaks")
    r = subprocess.run(["swaks", "--server", harness.LOCALHOST, "--port", str(inst.p_smtp),
                        "--from", sender, "--to", REMOTE_RCPT, "--helo", EHLO_NAME,
                        "--timeout", "20", "--header", "Subject: swaks test"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("swaks exited %d:\n%s" % (r.returncode, out[-2000:]))
    m = re.search(r"<-  250 2\.0\.0 Ok: queued as ([0-9A-Z]{12,})", out)
    if not m:
        raise AssertionError("no 'queued as' in swaks transcript:\n%s" % out[-2000:])
    e = inst.queue_entry(m.group(1))
    if e is None or e["sender"] != sender:
        raise AssertionError("swaks message %s not in queue with sender %s: %r" % (m.group(1), sender, e))
