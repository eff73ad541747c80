"""
Submission (RFC 6409) for authenticated users: senders bound to their
owners (mailbox, aliases pointing to it, +tag forms; 553 5.7.1 otherwise),
the From: header checked the same way (submission_check_from), the
Received: line `with ESMTPSA` (RFC 3848) and without the client's address
when submission_hide_client = yes, Date: and Message-ID: added when
missing (RFC 6409 8) on 587/465 only, and relaying for authenticated
users from outside relay_networks.
"""

import re
import smtplib

import authfix
import harness
from authfix import plain, password
from harness import REMOTE_RCPT, expect, queued_id


def _inst():
    # 127.0.0.1 is not a relay network here: only AUTH lets mail out
    return authfix.shared("submission", relay_networks="10.255.0.0/16")


def _send(s, sender, body, rcpts=(REMOTE_RCPT,)):
    """MAIL/RCPT/DATA on an smtplib connection; returns (code, text)."""
    code, msg = s.mail(sender)
    if code != 250:
        return code, msg.decode(errors="replace")
    for r in rcpts:
        code, msg = s.rcpt(r)
        if code != 250:
            return code, msg.decode(errors="replace")
    code, msg = s.data(body)
    return code, msg.decode(errors="replace")


def _qid(text):
    m = re.match(r"2\.0\.0 Ok: queued as ([0-9A-Z]{12,})$", text)
    if not m:
        raise AssertionError("not queued: %r" % text)
    return m.group(1)


def _body(frm, extra=b"", date=True, msgid=True):
    h = b"From: " + frm.encode() + b"\r\nTo: <" + REMOTE_RCPT.encode() + b">\r\nSubject: sub\r\n"
    if date:
        h += b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
    if msgid:
        h += b"Message-ID: <fixed-" + harness.token().encode() + b"@client.example>\r\n"
    return h + extra + b"\r\nbody\r\n"


def test_sender_binding():
    inst = _inst()
    s = authfix.logged_in(inst, "john@localhost")
    try:
        for sender in ("john@localhost", "John@LOCALHOST", "john+lists@localhost", "johnny@localhost",
                       "team@localhost", ""):
            frm = "<john@localhost>"
            code, text = _send(s, sender, _body(frm))
            if code != 250:
                raise AssertionError("john may send as <%s>: %d %s" % (sender, code, text))
        for sender in ("mary@localhost", "demo@localhost", "john@remote.example", "nobody@localhost",
                       "mary+john@localhost"):
            code, msg = s.mail(sender)
            want = "5.7.1 <%s>: Sender address rejected: not owned by user" % sender
            if code != 553 or msg.decode() != want:
                raise AssertionError("john as <%s>: %d %r (want 553 %s)" % (sender, code, msg, want))
            s.rset()
    finally:
        s.quit()
    inst.wait_log(r"NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 <mary@localhost>: "
                  r"Sender address rejected: not owned by user john@localhost")


def test_from_header_must_be_the_users():
    inst = _inst()
    s = authfix.logged_in(inst, "john@localhost", port="smtps")
    try:
        for frm in ("John Doe <john@localhost>", "johnny@localhost (alias)", "\"Team\" <team@localhost>",
                    "<john+x@localhost>"):
            code, text = _send(s, "john@localhost", _body(frm))
            if code != 250:
                raise AssertionError("From: %s refused: %d %s" % (frm, code, text))
        for frm, bad in (("Mary <mary@localhost>", "mary@localhost"),
                         ("John <john@localhost>, boss@remote.example", "boss@remote.example"),
                         ("boss@REMOTE.example", "boss@remote.example")):
            code, text = _send(s, "john@localhost", _body(frm))
            want = "5.7.1 <%s>: Sender address rejected: not owned by user" % bad
            if code != 553 or text != want:
                raise AssertionError("From: %s: %d %r (want 553 %s)" % (frm, code, text, want))
        # folded over two lines
        code, text = _send(s, "john@localhost", _body("John <john@localhost>,\r\n\tMary <mary@localhost>"))
        if code != 553:
            raise AssertionError("a folded From: with mary's address: %d %s" % (code, text))
        # the session goes on after a refusal
        code, text = _send(s, "john@localhost", _body("<john@localhost>"))
        _qid(text)
    finally:
        s.quit()


def test_received_with_esmtpsa_and_fixups():
    inst = _inst()
    s = authfix.logged_in(inst, "john@localhost")
    try:
        code, text = _send(s, "john@localhost", _body("<john@localhost>", date=False, msgid=False))
        qid = _qid(text)
        code, text = _send(s, "john@localhost", _body("<john@localhost>"))
        qid_full = _qid(text)
    finally:
        s.quit()
    msg = authfix.spool_text(inst, qid)
    head, _, body = msg.partition("\r\n\r\n")
    if not re.search(r"\tby %s \(Postern\) with ESMTPSA id %s" % (re.escape(harness.HOST), qid), head):
        raise AssertionError("Received: without ESMTPSA:\n" + head)
    if "(unknown [127.0.0.1])" not in head:
        raise AssertionError("client address missing although submission_hide_client = no:\n" + head)
    if not re.search(r"\r\nDate: \w{3}, \d", head) or not re.search(r"\r\nMessage-ID: <%s\.[0-9a-f]{16}@%s>"
                                                                     % (qid, re.escape(harness.HOST)), head):
        raise AssertionError("Date:/Message-ID: not added:\n" + head)
    if body != "body\r\n":
        raise AssertionError("body changed: %r" % body)
    for p in authfix.USERS.values():
        if p[0] in msg:
            raise AssertionError("the password is in the message")
    full = authfix.spool_text(inst, qid_full)
    if full.count("\r\nDate:") != 1 or full.count("\r\nMessage-ID:") != 1 or "Tue, 01 Dec 2026" not in full:
        raise AssertionError("fields added although present:\n" + full)
    e = inst.queue_entry(qid)
    if e is None:
        raise AssertionError("%s not in the queue" % qid)
    inst.wait_log(r"postern/smtpd\[\d+\]: %s: client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, "
                  r"sasl_username=john@localhost$" % qid)


def test_no_fixups_on_port_25():
    inst = _inst()
    with inst.client() as c:
        c.ehlo()
        c.mail_rcpt("someone@example.com", [harness.LOCAL_RCPT])
        qid = queued_id(c.data(_body("<someone@example.com>", date=False, msgid=False)))
    msg = authfix.spool_text(inst, qid)
    if "\r\nDate:" in msg or "\r\nMessage-ID:" in msg:
        raise AssertionError("port 25 added fields:\n" + msg)
    if " with ESMTP id " not in msg:
        raise AssertionError("port 25 Received: should say ESMTP:\n" + msg)


def test_bdat_fixups_and_from_check():
    inst = _inst()
    with inst.client(port=inst.p_smtps, tls=True) as c:
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + plain("john@localhost", password("john@localhost"))), code=235)
        body = _body("<john@localhost>", date=False, msgid=False)
        c.mail_rcpt("john@localhost", [REMOTE_RCPT])
        # the header section cut in the middle of a line and of the blank line
        cut1, cut2 = 20, body.index(b"\r\n\r\n") + 3
        parts = [body[:cut1], body[cut1:cut2], body[cut2:]]
        for p in parts[:-1]:
            c.send(b"BDAT %d\r\n" % len(p) + p)
            expect(c.reply(), code=250)
        c.send(b"BDAT %d LAST\r\n" % len(parts[-1]) + parts[-1])
        qid = queued_id(c.reply())
        bad = _body("<mary@localhost>")
        c.mail_rcpt("john@localhost", [REMOTE_RCPT])
        c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
        expect(c.reply(), exact="553 5.7.1 <mary@localhost>: Sender address rejected: not owned by user")
    msg = authfix.spool_text(inst, qid)
    head, _, rest = msg.partition("\r\n\r\n")
    if "\r\nDate: " not in head or "\r\nMessage-ID: <" not in head or rest != "body\r\n":
        raise AssertionError("BDAT message not fixed up as expected:\n%r" % msg)
    if not head.endswith(">"):
        raise AssertionError("the added fields must end the header section: %r" % head[-200:])


def test_authenticated_relay_from_outside_relay_networks():
    inst = _inst()
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<%s>" % REMOTE_RCPT), exact="554 5.7.1 <%s>: Relay access denied" % REMOTE_RCPT)
    s = authfix.logged_in(inst, "mary@localhost", port="smtps")
    try:
        code, text = _send(s, "mary@localhost", _body("<mary@localhost>"), rcpts=(REMOTE_RCPT, "x@other.example"))
        _qid(text)
    finally:
        s.quit()


def test_hide_client_and_from_check_off():
    inst = authfix.shared("submission-hide", submission_hide_client="yes", submission_check_from="no")
    s = authfix.logged_in(inst, "john@localhost")
    try:
        code, text = _send(s, "john@localhost", _body("Mary <mary@localhost>"))
        qid = _qid(text)
        code, msg = s.mail("mary@localhost")
        if code != 553:
            raise AssertionError("the envelope sender is bound even with submission_check_from = no: %d" % code)
    finally:
        s.quit()
    msg = authfix.spool_text(inst, qid)
    head = msg.split("\r\n\r\n")[0]
    if "127.0.0.1" in head:
        raise AssertionError("the client's address is in the header although submission_hide_client = yes:\n" + head)
    if not re.search(r"^Received: from client\.example\r\n", head):
        raise AssertionError("Received: line: \n" + head)
    # port 25 still records the client
    with inst.client() as c:
        qid25 = c.send_message("x@example.com", [harness.LOCAL_RCPT])
    if "(unknown [127.0.0.1])" not in authfix.spool_text(inst, qid25):
        raise AssertionError("port 25 must keep the client's address")


def test_smtplib_session_survives_refusals():
    """A 553 for the sender does not end the session or the login."""
    inst = _inst()
    s = authfix.logged_in(inst, "bob@localhost")
    try:
        try:
            s.sendmail("john@localhost", [REMOTE_RCPT], _body("<bob@localhost>"))
            raise AssertionError("bob sent as john")
        except smtplib.SMTPSenderRefused as e:
            if e.smtp_code != 553:
                raise
        s.sendmail("bob@localhost", [REMOTE_RCPT], _body("<bob@localhost>"))
    finally:
        s.quit()
