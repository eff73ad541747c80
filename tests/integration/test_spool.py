"""
What lands on disk: the spool file SPOOL_DIR/msg/QUEUEID of an accepted
message starts with the Received: line, has CRLF line ends, has its
dot-stuffing undone, and its size is the message_size that mailq reports.
"""

import os
import re

import harness
from harness import HOST, REMOTE_RCPT, queued_id


def _spool(inst, qid):
    path = inst.spool_file(qid)
    if not os.path.exists(path):
        raise AssertionError("spool file %s does not exist" % path)
    return inst.read_spool(qid)


def _received(data):
    """The first header, Received:, with its continuation lines."""
    m = re.match(rb"Received: .*?\r\n(?![ \t])", data, re.S)
    if not m:
        raise AssertionError("no complete Received header at the start: %r" % data[:300])
    return m.group(0).decode("latin-1")


def _check_crlf(data):
    if not data.endswith(b"\r\n"):
        raise AssertionError("spool file does not end with CRLF: %r" % data[-40:])
    if re.search(rb"(?<!\r)\n", data):
        raise AssertionError("bare LF in the spool file")
    if re.search(rb"\r(?!\n)", data):
        raise AssertionError("bare CR in the spool file")


def test_received_header_and_dot_unstuffing():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("spool")
    body = (b"From: <" + sender.encode() + b">\r\nSubject: spool check\r\n\r\n"
            b"first\r\n..x\r\n...y\r\n.\r\n")             # raw: "..x" on the wire is ".x"
    with inst.client() as c:
        c.ehlo("helo.client.example")
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(body, raw=True))
    data = _spool(inst, qid)
    if not data.startswith(b"Received: from "):
        raise AssertionError("spool file should start with 'Received: from ', starts %r" % data[:60])
    rec = _received(data)
    for want in ("by %s (Postern)" % HOST, "id %s" % qid, "127.0.0.1", "helo.client.example"):
        if want not in rec:
            raise AssertionError("Received header lacks %r: %r" % (want, rec))
    if not re.search(r";\s*\w{3}, +\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", rec):
        raise AssertionError("Received header lacks an RFC 5322 date after ';': %r" % rec)
    _check_crlf(data)
    if b"\r\nfirst\r\n.x\r\n..y\r\n" not in data:
        raise AssertionError("dot-stuffing not undone: %r" % data[-80:])
    if data.endswith(b"\r\n.\r\n"):
        raise AssertionError("the end-of-data dot was stored")
    e = inst.queue_entry(qid)
    if e is None or e["message_size"] != len(data):
        raise AssertionError("mailq message_size %r, spool file %d bytes" % (e and e["message_size"], len(data)))


def test_received_header_under_tls():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("spooltls")
    with inst.client() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.mail_rcpt(sender, [REMOTE_RCPT])
        qid = queued_id(c.data(harness.simple_body(sender)))
    rec = _received(_spool(inst, qid))
    if "with ESMTPS" not in rec:
        raise AssertionError("Received header of a TLS session should say 'with ESMTPS': %r" % rec)


def test_spool_file_is_private():
    inst = harness.shared()
    qid = inst.send()
    st = os.stat(inst.spool_file(qid))
    if st.st_mode & 0o077:
        raise AssertionError("spool file mode %o is readable by group or others" % (st.st_mode & 0o777))
    if harness.IS_ROOT and st.st_uid != harness.ACCOUNTS["queue"][0]:
        raise AssertionError("spool file owned by uid %d, expected the queue account %d"
                             % (st.st_uid, harness.ACCOUNTS["queue"][0]))
