"""
Mailbox quotas at SMTP time (issue 7: "452 4.2.2 at RCPT, or 552 5.2.2 at
DATA"): smtpd asks the local role about a mailbox with a quota (the local
role reads its Maildir++ maildirsize) and refuses a full one with 452 4.2.2
inside a pipelined transaction, in order with 250 for a mailbox with room,
550 for an unknown user and 250 for an alias (its members are checked at
delivery); SIZE= larger than the quota is 552 5.2.2 at RCPT; a message
larger than the quota of every recipient is 552 5.2.2 at the end of DATA
(and BDAT) and is not queued; when only some recipients are too small it
is accepted and the local role bounces those 5.2.2; a message-count quota;
the 452 clears as soon as maildirsize shows room; with the local role
disabled or not answering (stopped with SIGSTOP) recipients are accepted
with one log line and no session waits more than the short bound.

The tests set a mailbox's usage by writing its maildirsize themselves, in
Maildir++ format: the quota definition as the map has it ("10240S"), then
"bytes count" lines.
"""

import os
import signal
import time

import harness
from harness import HOST, expect, queued_id, wait_until
from test_maps import _write  # noqa: E402 - the map files, written whole

# passwd-file lines (Dovecot's format): user:password:uid:gid:gecos:home:shell:extra
MAILBOXES = """demo@localhost
full@{h}:::::::userdb_quota_rule=*:storage=10k
room@{h}:::::::userdb_quota_rule=*:storage=10k
small@{h}:::::::userdb_quota_rule=*:storage=1k
small2@{h}:::::::userdb_quota_rule=*:storage=1k
big@{h}
counted@{h}:::::::userdb_quota_rule=*:messages=2
clears@{h}:::::::userdb_quota_rule=*:storage=10k
postmaster@{h}
""".format(h=HOST)

ALIASES = """team@{h}: full, room
""".format(h=HOST)


def _full_reply(addr):
    return "452 4.2.2 <%s>: Recipient address rejected: Mailbox full" % addr


def _toobig_reply(addr):
    return "552 5.2.2 <%s>: Recipient address rejected: Message exceeds the mailbox quota" % addr


DATA_REPLY = "552 5.2.2 Error: message exceeds the mailbox quota of every recipient"


def _chown(path):
    if harness.IS_ROOT:
        uid, gid = harness.ACCOUNTS["local"]
        os.chown(path, uid, gid)


def set_usage(inst, addr, definition, nbytes, count):
    """The Maildir of addr (made if missing, owned by the local role's
    account) with a maildirsize that says: nbytes in count messages."""
    local, domain = addr.rsplit("@", 1)
    d = inst.mailbox_dir
    for part in (domain.lower(), local.lower()):
        d = os.path.join(d, part)
        if not os.path.isdir(d):
            os.mkdir(d, 0o700)
            _chown(d)
    for sub in ("tmp", "new", "cur"):
        p = os.path.join(d, sub)
        if not os.path.isdir(p):
            os.mkdir(p, 0o700)
            _chown(p)
    tmp = os.path.join(d, "tmp", "maildirsize.test")
    with open(tmp, "w") as f:
        f.write("%s\n%d %d\n" % (definition, nbytes, count))
    _chown(tmp)
    os.rename(tmp, os.path.join(d, "maildirsize"))


def _inst():
    """One instance for the tests that can share it (each uses its own
    mailboxes), started on first use."""
    inst = harness._shared.get("quota")
    if inst is None or not inst.alive():
        inst = harness.Instance("quota", vrfy="reveal")
        _write(inst, MAILBOXES, ALIASES)
        inst.start()
        harness._shared["quota"] = inst
    return inst


def _body(n, token):
    """A message of about n bytes (CRLF lines)."""
    head = b"Subject: quota %s\r\n\r\n" % token.encode()
    line = b"x" * 78 + b"\r\n"
    return head + line * max(1, (n - len(head)) // len(line))


def _replies(c, n):
    return [str(c.reply(timeout=20)) for _ in range(n)]


def test_pipelined_full_room_unknown_alias():
    """One write: MAIL SIZE=100, RCPT to a full mailbox, one with room, an
    unknown user and an alias: 452 4.2.2 / 250 / 550 5.1.1 / 250, in that
    order; the 452 is logged like the 550 (NOQUEUE: reject). VRFY of the
    full mailbox is 250: it checks no quota."""
    inst = _inst()
    full, room = "full@" + HOST, "room@" + HOST
    set_usage(inst, full, "10240S", 10200, 3)   # 40 bytes left: SIZE=100 does not fit
    set_usage(inst, room, "10240S", 0, 0)
    since = inst.log_size()
    with inst.client() as c:
        c.ehlo()
        c.send("MAIL FROM:<s@example.com> SIZE=100\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
               "RCPT TO:<nobody@%s>\r\nRCPT TO:<team@%s>\r\nRSET\r\nVRFY <%s>\r\n" % (full, room, HOST, HOST, full))
        got = _replies(c, 7)
    # VRFY (vrfy = reveal) says whether the address exists, not whether it has room
    assert got == ["250 2.1.0 Ok", _full_reply(full), "250 2.1.5 Ok",
                   "550 5.1.1 <nobody@%s>: Recipient address rejected: User unknown" % HOST,
                   "250 2.1.5 Ok", "250 2.0.0 Ok", "250 2.0.0 <%s>" % full], got
    inst.wait_log(r"NOQUEUE: reject: RCPT from .*: 452 4\.2\.2 <%s>: Recipient address rejected: Mailbox full; "
                  r"from=<s@example\.com> to=<%s> proto=ESMTP helo=<client\.example>" % (full, full),
                  since=since, timeout=10)


def test_size_over_quota_refused_at_rcpt():
    """SIZE= larger than a mailbox's quota: 552 5.2.2 at RCPT at once (the
    usage does not matter); another recipient of the transaction is 250."""
    inst = _inst()
    small = "small@" + HOST
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@example.com> SIZE=2000"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<%s>" % small), exact=_toobig_reply(small))
        expect(c.cmd("RCPT TO:<big@%s>" % HOST), exact="250 2.1.5 Ok")
        # a +tag reaches the same mailbox and its quota
        expect(c.cmd("RCPT TO:<small+tag@%s>" % HOST), exact=_toobig_reply("small+tag@" + HOST))
        expect(c.cmd("RSET"), code=250)
        # within the quota: asked, and there is room
        expect(c.cmd("MAIL FROM:<s@example.com> SIZE=1000"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<%s>" % small), exact="250 2.1.5 Ok")


def test_data_larger_than_every_quota_not_queued():
    """A 2 KB message to recipients whose quotas are all 1 KB: 552 5.2.2
    after the data (DATA and BDAT), nothing queued, nothing delivered."""
    inst = _inst()
    small, small2 = "small@" + HOST, "small2@" + HOST
    body = _body(2048, "toobig")
    since = inst.log_size()
    with inst.client() as c:
        c.ehlo()
        c.mail_rcpt("s@example.com", [small, small2])
        expect(c.data(body), exact=DATA_REPLY)
        # the session goes on: BDAT too
        c.mail_rcpt("s@example.com", [small])
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        expect(c.reply(timeout=20), exact=DATA_REPLY)
        expect(c.cmd("NOOP"), exact="250 2.0.0 Ok")
    inst.wait_log(r": message exceeds the mailbox quota of every recipient from .*; message not queued",
                  since=since, timeout=10)
    assert inst.queue() == [], inst.queue()
    assert "queue active" not in inst.log_since(since), inst.log_since(since)
    for a in (small, small2):
        new = os.path.join(inst.mailbox_dir, HOST, a.split("@")[0], "new")
        assert not os.path.isdir(new) or os.listdir(new) == [], os.listdir(new)


def test_mixed_accepted_small_one_bounced():
    """The same 2 KB message to a 1 KB mailbox and one without a quota: 250
    (one recipient can take it); the local role bounces the small one with
    5.2.2 and delivers the other."""
    inst = _inst()
    small, big = "small@" + HOST, "big@" + HOST
    since = inst.log_size()
    with inst.client() as c:
        c.ehlo()
        c.mail_rcpt("sender@remote.example", [small, big])
        qid = queued_id(c.data(_body(2048, "mixed")))
    d = inst.wait_delivery(qid, small, status="bounced", since=since, timeout=60)
    assert d.dsn == "5.2.2", d
    inst.wait_delivery(qid, big, status="sent", since=since, timeout=60)


def _full_then_room(addr, definition, full, room, mail_params="", body=None):
    """In one session: RCPT to addr while its maildirsize says full (bytes,
    count) is 452 4.2.2; once it says room, 250; then body (if any) is
    delivered to it."""
    inst = _inst()
    set_usage(inst, addr, definition, *full)
    since = inst.log_size()
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@example.com>%s" % mail_params), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<%s>" % addr), exact=_full_reply(addr))
        set_usage(inst, addr, definition, *room)
        expect(c.cmd("RCPT TO:<%s>" % addr), exact="250 2.1.5 Ok")
        if body is None:
            return
        qid = queued_id(c.data(body))
    inst.wait_delivery(qid, addr, status="sent", since=since, timeout=60)


def test_message_count_quota():
    """messages=2: a Maildir with two messages is full (452 4.2.2), with one
    it has room (250)."""
    _full_then_room("counted@" + HOST, "2C", (500, 2), (250, 1))


def test_full_clears_once_maildirsize_shows_room():
    """A full mailbox gets 452; once its maildirsize shows room (the user
    deleted mail), the next RCPT is 250, in the same session, and a
    message is delivered to it."""
    _full_then_room("clears@" + HOST, "10240S", (10240, 5), (1000, 1), " SIZE=500", _body(400, "clears"))


def _timed_rcpt(c, addr):
    t0 = time.monotonic()
    r = str(c.cmd("RCPT TO:<%s>" % addr, timeout=30))
    return r, time.monotonic() - t0


def test_local_role_disabled_accepts_with_log_line():
    """master_service_disable = local: no quota server; a full mailbox is
    250 at once (delivery would enforce), and smtpd says once that quotas
    are not checked at RCPT. SIZE= over the quota is still 552 (the map
    alone decides that)."""
    inst = harness.Instance("quota-off", master_service_disable="local", smtpd_processes="1")
    _write(inst, MAILBOXES, ALIASES)
    full, small = "full@" + HOST, "small@" + HOST
    with inst:
        since = inst.log_size()
        with inst.client() as c:
            c.ehlo()
            expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
            r, took = _timed_rcpt(c, full)
            assert r == "250 2.1.5 Ok" and took < 1.5, (r, took)
            r, took = _timed_rcpt(c, full)
            assert r == "250 2.1.5 Ok" and took < 1.5, (r, took)
            expect(c.cmd("RSET"), code=250)
            expect(c.cmd("MAIL FROM:<s@example.com> SIZE=5000"), exact="250 2.1.0 Ok")
            expect(c.cmd("RCPT TO:<%s>" % small), exact=_toobig_reply(small))
        inst.wait_log(r"postern/smtpd\[\d+\]: mailbox quotas are not checked at RCPT", since=since, timeout=10)
        assert len([l for l in inst.log_since(since).splitlines() if "quotas are not checked at RCPT" in l]) == 1


def test_local_role_not_answering_no_stall():
    """The local role stopped (SIGSTOP): the first RCPT to a full mailbox
    waits at most the short bound (2 s) and is accepted, with one log line;
    the next ones are accepted at once, not asked again. Once it runs again
    and answers the late question, the checks come back: 452."""
    inst = harness.Instance("quota-stop", smtpd_processes="1")
    _write(inst, MAILBOXES, ALIASES)
    full = "full@" + HOST
    with inst:
        set_usage(inst, full, "10240S", 10300, 3)
        with inst.client() as c:
            c.ehlo()
            expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
            expect(c.cmd("RCPT TO:<%s>" % full), exact=_full_reply(full))  # the link is up
            pids = wait_until(lambda: inst.pids("local"), 20, "the local role running")
            since = inst.log_size()
            for p in pids:
                os.kill(p, signal.SIGSTOP)
            try:
                r, took = _timed_rcpt(c, full)
                assert r == "250 2.1.5 Ok" and 1.5 < took < 6, (r, took)
                r, took = _timed_rcpt(c, full)
                assert r == "250 2.1.5 Ok" and took < 1.0, (r, took)
                r, took = _timed_rcpt(c, "room@" + HOST)
                assert r == "250 2.1.5 Ok" and took < 1.0, (r, took)
                inst.wait_log(r"postern/smtpd\[\d+\]: warning: mailbox quota check unavailable \(no answer from "
                              r"the local role\)", since=since, timeout=10)
                lines = [l for l in inst.log_since(since).splitlines() if "quota check unavailable" in l]
                assert len(lines) == 1, lines
            finally:
                for p in pids:
                    os.kill(p, signal.SIGCONT)
            inst.wait_log(r"postern/smtpd\[\d+\]: mailbox quota checks answered again", since=since, timeout=20)
            expect(c.cmd("RCPT TO:<%s>" % full), exact=_full_reply(full))


def test_local_role_killed_no_stall_then_checks_again():
    """The local role killed (the master restarts it): the next RCPT does
    not wait longer than the short bound, whatever it answers, and once the
    new local role is up, the full mailbox is refused again."""
    inst = _inst()
    full = "full@" + HOST
    set_usage(inst, full, "10240S", 10300, 3)
    old = wait_until(lambda: inst.pids("local"), 20, "the local role running")
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@example.com>"), exact="250 2.1.0 Ok")
        for p in old:
            os.kill(p, signal.SIGKILL)
        r, took = _timed_rcpt(c, full)
        assert r in ("250 2.1.5 Ok", _full_reply(full)) and took < 4, (r, took)
        wait_until(lambda: [p for p in inst.pids("local") if p not in old], 30, "a new local role")

        def refused_again():
            return _timed_rcpt(c, full)[0] == _full_reply(full)
        wait_until(refused_again, 30, "452 for the full mailbox from the restarted local role", interval=0.2)
