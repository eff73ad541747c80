"""
SMTP smuggling: an end-of-data look-alike with a bare LF or bare CR inside
DATA, followed by a whole second transaction, then the real CRLF.CRLF.
The server must answer once, with the 550 smuggling reply, act on none of
the smuggled commands, and queue nothing (neither the outer message nor the
smuggled one).
"""

import harness
from harness import REMOTE_RCPT, expect

BAD_DATA = "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted"

# separators that some servers take for <CRLF>.<CRLF>
SEPARATORS = {
    "lf_dot_lf": b"\n.\n",
    "lf_dot_crlf": b"\n.\r\n",
    "cr_dot_crlf": b"\r.\r\n",
    "crlf_dot_lf": b"\r\n.\n",
    "crlf_dot_cr": b"\r\n.\r",
    "cr_dot_cr": b"\r.\r",
}


def _smuggle(sep):
    inst = harness.shared()
    tok = harness.token("smuggle")
    outer = "outer-%s@example.com" % tok
    inner = "smuggled-%s@example.com" % tok
    payload = (b"Subject: outer\r\n\r\nouter body" + sep +
               b"MAIL FROM:<" + inner.encode() + b">\r\n"
               b"RCPT TO:<" + REMOTE_RCPT.encode() + b">\r\n"
               b"DATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled body\r\n"
               b".\r\n")
    before = inst.queue_ids()
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(outer, [REMOTE_RCPT])
        expect(c.cmd("DATA"), exact="354 End data with <CR><LF>.<CR><LF>")
        c.send(payload)
        r = c.reply(timeout=15)
        expect(r, exact=BAD_DATA)
        # nothing smuggled was acted on: the next reply is the one to NOOP
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
        expect(c.cmd("RCPT TO:<%s>" % REMOTE_RCPT), exact="503 5.5.1 Error: need MAIL command")
    q = inst.queue()
    new = [e["queue_id"] for e in q if e["queue_id"] not in before]
    if new:
        raise AssertionError("queue grew by %s after a refused smuggling attempt" % new)
    for e in q:
        if e["sender"] in (outer, inner):
            raise AssertionError("message from %s is queued as %s" % (e["sender"], e["queue_id"]))


def _make(sep):
    def t():
        _smuggle(sep)
    return t


for _name, _sep in SEPARATORS.items():
    _fn = _make(_sep)
    _fn.__name__ = "test_smuggling_" + _name
    _fn.__module__ = __name__
    globals()[_fn.__name__] = _fn
del _name, _sep, _fn


def test_smuggling_in_one_write_with_pipelining():
    """The whole transaction and the smuggled one in a single write."""
    inst = harness.shared()
    tok = harness.token("smuggle1")
    outer = "outer-%s@example.com" % tok
    inner = "smuggled-%s@example.com" % tok
    before = inst.queue_ids()
    blob = ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (outer, REMOTE_RCPT)).encode()
    blob += (b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<" + inner.encode() + b">\r\nRCPT TO:<" +
             REMOTE_RCPT.encode() + b">\r\nDATA\r\nSubject: y\r\n\r\nevil\r\n.\r\nNOOP\r\n")
    with inst.client(ehlo=True) as c:
        c.send(blob)
        expect(c.reply(), exact="250 2.1.0 Ok")
        expect(c.reply(), exact="250 2.1.5 Ok")
        expect(c.reply(), exact="354 End data with <CR><LF>.<CR><LF>")
        expect(c.reply(timeout=15), exact=BAD_DATA)
        expect(c.reply(), exact="250 2.0.0 Ok")
    if inst.queue_ids() - before:
        raise AssertionError("queue grew: %s" % sorted(inst.queue_ids() - before))


def test_dot_stuffed_line_is_not_end_of_data():
    """A proper '..' line is data, not an end: one message, complete."""
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("dots")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT])
        r = c.data(b"Subject: dots\r\n\r\nline\r\n..\r\n..MAIL FROM:<x@y>\r\nlast\r\n.\r\n", raw=True)
        qid = harness.queued_id(r)
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    if qid not in inst.queue_ids():
        raise AssertionError("message %s not queued" % qid)
    if harness.IS_ROOT or os_access(inst.spool_file(qid)):
        data = inst.read_spool(qid)
        if b"\r\n.\r\n.MAIL FROM:<x@y>\r\nlast\r\n" not in data:
            raise AssertionError("dot-stuffed lines not restored in the spool file: %r" % data[-120:])


def os_access(path):
    import os
    return os.access(path, os.R_OK)
