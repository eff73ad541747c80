"""
BDAT / CHUNKING (RFC 3030): chunks then LAST, the replies, the queued size,
content kept byte for byte (no dot-unstuffing in BDAT), syntax errors and
the DATA/BDAT mix-ups.
"""

import os

import harness
from harness import REMOTE_RCPT, expect, queued_id


def _bdat_message(c, chunks):
    """Sends the chunks (the last one with LAST); returns the queue id."""
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        c.send(b"BDAT %d%s\r\n" % (len(ch), b" LAST" if last else b"") + ch)
        r = c.reply()
        if last:
            return queued_id(r)
        expect(r, exact="250 2.0.0 Ok: %d octets" % len(ch))


def _check_size_and_content(inst, qid, body):
    e = inst.queue_entry(qid)
    if e is None:
        raise AssertionError("BDAT message %s not in the queue" % qid)
    size = e["message_size"]
    if not (len(body) < size < len(body) + 4096):
        raise AssertionError("message_size %d for a %d byte body plus Received:" % (size, len(body)))
    path = inst.spool_file(qid)
    if os.access(path, os.R_OK):
        data = inst.read_spool(qid)
        if len(data) != size:
            raise AssertionError("message_size %d but the spool file has %d bytes" % (size, len(data)))
        if not data.endswith(body):
            raise AssertionError("spool file does not end with the chunks sent: %r" % data[-100:])
        if not data.startswith(b"Received: "):
            raise AssertionError("spool file does not start with Received: %r" % data[:60])


def test_bdat_chunks_then_last():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdat")
    chunks = [b"Subject: chunked\r\nMessage-ID: <%s@x>\r\n\r\n" % sender.encode(),
              b"first chunk\r\n" * 10, b"second\r\n", b"last line\r\n"]
    before = len(inst.queue())
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = _bdat_message(c, chunks)
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    if len(inst.queue()) < before + 1:
        raise AssertionError("queue did not grow")
    _check_size_and_content(inst, qid, b"".join(chunks))


def test_bdat_single_last_chunk():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdat1")
    body = b"Subject: one chunk\r\n\r\nhello\r\n"
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = _bdat_message(c, [body])
    _check_size_and_content(inst, qid, body)


def test_bdat_zero_length_last():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdat0")
    chunks = [b"Subject: zero last\r\n\r\nbody\r\n", b""]
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = _bdat_message(c, chunks)
    _check_size_and_content(inst, qid, b"".join(chunks))


def test_bdat_zero_length_only_chunk():
    """BDAT 0 LAST as the whole message: answered once the spool file is
    there, with no further input from the client (an empty message)."""
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdatnil")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.cmd("BDAT 0 LAST"))
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    if qid not in inst.queue_ids():
        raise AssertionError("empty BDAT message %s not in the queue" % qid)


def test_bdat_content_not_unstuffed():
    """In BDAT a '.' line and '..' are data; nothing ends or is removed."""
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdatdot")
    body = b"Subject: dots\r\n\r\n.\r\n..two\r\nMAIL FROM:<x@y>\r\n.\r\n"
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = _bdat_message(c, [body])
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    _check_size_and_content(inst, qid, body)


def test_bdat_pipelined_chunks():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("bdatpipe")
    c1, c2 = b"Subject: pipelined\r\n\r\n", (b"a" * 98 + b"\r\n") * 50
    with inst.client(ehlo=True) as c:
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (sender, REMOTE_RCPT)).encode()
               + b"BDAT %d\r\n" % len(c1) + c1 + b"BDAT %d LAST\r\n" % len(c2) + c2)
        expect(c.reply(), exact="250 2.1.0 Ok")
        expect(c.reply(), exact="250 2.1.5 Ok")
        expect(c.reply(), exact="250 2.0.0 Ok: %d octets" % len(c1))
        qid = queued_id(c.reply())
    _check_size_and_content(inst, qid, c1 + c2)


def test_bdat_syntax_errors():
    """501, on a fresh session each; the server may close afterwards, as it
    cannot know where the chunk that may follow ends."""
    inst = harness.shared()
    want = "501 5.5.4 Syntax: BDAT size [LAST]"
    for bad in ("BDAT", "BDAT abc", "BDAT -1", "BDAT 10 FIRST", "BDAT 1x LAST", "BDAT 99999999999999999999999"):
        with inst.client(ehlo=True) as c:
            c.mail_rcpt("a@example.com", [REMOTE_RCPT])
            r = c.cmd(bad)
            if r.last != want:
                raise AssertionError("%r: expected %r, got %r" % (bad, want, str(r)))


def test_bdat_before_mail():
    inst = harness.shared()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("BDAT 0 LAST"), exact="503 5.5.1 Error: need RCPT command")


def test_bdat_without_rcpt():
    """Inside a transaction without an accepted recipient BDAT gets what
    DATA gets (docs/SMTP.md's DATA row, and Postfix's bdat_cmd):
    554 5.5.1 Error: no valid recipients."""
    inst = harness.shared()
    before = inst.queue_ids()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("BDAT 0 LAST"), exact="554 5.5.1 Error: no valid recipients")
        expect(c.cmd("RCPT TO:<bad@>"), exact="501 5.1.3 Bad recipient address syntax")
        expect(c.cmd("BDAT 0 LAST"), exact="554 5.5.1 Error: no valid recipients")
    if inst.queue_ids() - before:
        raise AssertionError("BDAT without recipients queued something")


def test_data_after_bdat():
    inst = harness.shared()
    before = inst.queue_ids()
    with inst.client(ehlo=True) as c:
        c.mail_rcpt("a@example.com", [REMOTE_RCPT])
        c.send(b"BDAT 3\r\nabc")
        expect(c.reply(), exact="250 2.0.0 Ok: 3 octets")
        expect(c.cmd("DATA"), prefix="503 5.5.1 Error: ")
    if inst.queue_ids() - before:
        raise AssertionError("a half BDAT transaction was queued")


def test_bdat_advertised():
    inst = harness.shared()
    with inst.client() as c:
        r = c.ehlo()
        if "CHUNKING" not in [l[4:] for l in r.lines[1:]]:
            raise AssertionError("CHUNKING not advertised: %r" % str(r))


def test_bdat_client_vanishes_mid_chunk():
    inst = harness.shared()
    kids = inst.children()
    before = inst.queue_ids()
    off = inst.log_size()
    with inst.client(ehlo=True) as c:
        c.mail_rcpt("a@example.com", [REMOTE_RCPT])
        c.send(b"BDAT 1000 LAST\r\nonly a few bytes")
    inst.wait_log(r"(lost connection|disconnect).*127\.0\.0\.1", off,
                  what="smtpd to log the vanished client")
    with inst.client(ehlo=True) as c:
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    if inst.queue_ids() - before:
        raise AssertionError("a truncated BDAT message was queued")
    if inst.children() != kids:
        raise AssertionError("children changed: %r -> %r" % (kids, inst.children()))
