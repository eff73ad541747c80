"""
The queue layout at scale (issue 5): a message to 10,000 recipients with
long addresses, sent over SMTP with max_recipients = 10000, is accepted,
listed by mailq (text and -j, every recipient), and is still there, whole,
after a restart of the instance. The time to accept and to list is printed
(the acceptance includes the 10,000 RCPT round trips, pipelined in
slices).
"""

import time

import harness
from harness import expect, queued_id

N_RCPT = 10000
SLICE = 500


def _rcpt(tok, i):
    # about 100 bytes each: a long local part and a long domain
    return ("recipient-%05d-with-a-rather-long-local-part-%s@" % (i, tok) +
            "destination-%02d.a-long-domain-name-for-the-layout-test.example" % (i % 50))


def _send_big(inst, sender, rcpts):
    """One transaction, RCPTs pipelined SLICE at a time; returns the queue id."""
    with inst.client(ehlo=True, timeout=120) as c:
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
        for at in range(0, len(rcpts), SLICE):
            part = rcpts[at:at + SLICE]
            c.send("".join("RCPT TO:<%s>\r\n" % r for r in part).encode())
            for r in part:
                expect(c.reply(60), exact="250 2.1.5 Ok")
        r = c.data(harness.simple_body(sender), timeout=120)
        qid = queued_id(r)
        try:
            c.cmd("QUIT")
        except (harness.Closed, OSError):
            pass
    return qid


def _entry(inst, qid):
    for e in inst.queue():
        if e.get("queue_id") == qid:
            return e
    return None


def _check_listing(inst, qid, sender, rcpts):
    t0 = time.monotonic()
    e = _entry(inst, qid)
    t_json = time.monotonic() - t0
    if e is None:
        raise AssertionError("mailq -j does not list %s" % qid)
    got = [r["address"] for r in e["recipients"]]
    if got != rcpts:
        missing = set(rcpts) - set(got)
        raise AssertionError("mailq -j lists %d recipients of %s, %d missing (e.g. %s)"
                             % (len(got), qid, len(missing), sorted(missing)[:2]))
    if e["sender"] != sender:
        raise AssertionError("mailq -j sender %r, want %r" % (e["sender"], sender))
    t0 = time.monotonic()
    r = inst.mailq()
    t_text = time.monotonic() - t0
    if r.returncode != 0:
        raise AssertionError("mailq exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    text = r.stdout.decode("utf-8", errors="replace")
    lines = text.splitlines()
    at = [i for i, l in enumerate(lines) if l.startswith(qid)]
    if len(at) != 1:
        raise AssertionError("mailq text shows %s %d times" % (qid, len(at)))
    listed = []
    for l in lines[at[0] + 1:]:
        if not l.strip():
            break
        listed.append(l.strip())
    if listed != rcpts:
        raise AssertionError("mailq text lists %d recipients under %s, want %d (first %r)"
                             % (len(listed), qid, len(rcpts), listed[:1]))
    return t_json, t_text


def test_ten_thousand_recipients():
    inst = harness.Instance("layout", max_recipients=N_RCPT)
    with inst:
        tok = harness.token("big")
        sender = "%s@example.com" % tok
        rcpts = [_rcpt(tok, i) for i in range(N_RCPT)]
        t0 = time.monotonic()
        qid = _send_big(inst, sender, rcpts)
        t_accept = time.monotonic() - t0
        t_json, t_text = _check_listing(inst, qid, sender, rcpts)
        harness.note("10,000 recipients: accepted in %.2fs (MAIL to 250), mailq -j %.2fs, mailq %.2fs"
                     % (t_accept, t_json, t_text))
        size_before = len(inst.read_spool(qid))
        inst.stop()
        t0 = time.monotonic()
        inst.start()
        t_start = time.monotonic() - t0
        t_json, t_text = _check_listing(inst, qid, sender, rcpts)
        harness.note("after a restart (%.2fs to ready): mailq -j %.2fs, mailq %.2fs"
                     % (t_start, t_json, t_text))
        if len(inst.read_spool(qid)) != size_before:
            raise AssertionError("the spool file of %s changed across the restart" % qid)
        # queue-mgr down: mailq reads the index itself, all of it
        inst.stop()
        r = inst.mailq("-j")
        if r.returncode != 0:
            raise AssertionError("mailq -j with queue-mgr down exited %d: %s"
                                 % (r.returncode, r.stderr.decode(errors="replace")))
        if r.stdout.decode().count('"address"') != N_RCPT:
            raise AssertionError("mailq -j from the index alone does not list all %d recipients" % N_RCPT)
        inst.start()
