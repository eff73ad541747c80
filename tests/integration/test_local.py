"""
Local delivery (issue 7, parts 3 and 6, and alias expansion): the local
role stores mail for local_domains in mailbox_dir/DOMAIN/USER/{tmp,new,cur}.
Read back byte for byte (Return-Path: and Delivered-To: added, LF line
ends, body unchanged, dot-stuffed lines restored); 8-bit and SMTPUTF8
local parts; aliases (three targets with a remote one through a sink, a
nested alias, the compiler's loop refusal); an unknown user refused at RCPT
inside a pipelined transaction while the others are delivered; +tag;
postmaster; a full disk that defers and delivers once there is space;
1,000 messages to 50 mailboxes each arriving once; a Delivered-To: loop
bounced 5.4.6; sendmail and cron's invocation; nothing written outside
mailbox_dir.
"""

import glob
import os
import re
import subprocess

import harness
from harness import HOST, LOCAL_RCPT, expect, queued_id, wait_until

MAILBOXES = """%s
alice@%s
bob@%s
carol@%s
j\u00f6rg@%s
postmaster@%s
root@%s
""" % (LOCAL_RCPT, HOST, HOST, HOST, HOST, HOST, HOST)

ALIASES = """staff@%s: alice, bob, someone@remote.example
team@%s: staff, carol
""" % (HOST, HOST)


from test_maps import _write  # noqa: E402 - the map files, written whole


def _instance(name, mailboxes=MAILBOXES, aliases=ALIASES, **conf):
    inst = harness.Instance(name, **conf)
    _write(inst, mailboxes, aliases)
    return inst


def maildir(inst, addr):
    local, domain = addr.rsplit("@", 1)
    return os.path.join(inst.mailbox_dir, domain.lower(), local.lower())


def messages(inst, addr):
    """The files in new/ of addr's Maildir, oldest name first."""
    d = os.path.join(maildir(inst, addr), "new")
    if not os.path.isdir(d):
        return []
    out = []
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n), "rb") as f:
            out.append((n, f.read()))
    return out


def wait_messages(inst, addr, n, timeout=60):
    return wait_until(lambda: len(messages(inst, addr)) >= n and messages(inst, addr), timeout,
                      "%d message(s) in the maildir of %s" % (n, addr))


def test_maildir_byte_for_byte():
    """Return-Path: and Delivered-To: first, then the message with LF line
    ends, every other byte as sent; a dot-stuffed line comes back as it
    was before stuffing; the name is unique with ,S=size; tmp/ and cur/
    exist and tmp/ is empty afterwards."""
    with _instance("local-bytes") as inst:
        body = (b"Subject: bytes\r\nX-Test: 1\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n"
                b"trailing spaces   \r\n\ttab\r\n.\r\nlast\r\n")
        since = inst.log_size()
        with inst.client() as c:
            c.ehlo()
            expect(c.cmd("MAIL FROM:<sender@example.com>"), code=250)
            expect(c.cmd("RCPT TO:<%s>" % LOCAL_RCPT), code=250)
            qid = queued_id(c.data(body))
        d = inst.wait_delivery(qid, LOCAL_RCPT, since=since, timeout=60)
        assert d.relay == "local" and d.dsn == "2.0.0" and d.reply == "delivered to maildir", d
        (name, data), = wait_messages(inst, LOCAL_RCPT, 1)
        spool_free = data.split(b"\n", 2)
        assert spool_free[0] == b"Return-Path: <sender@example.com>", data[:200]
        assert spool_free[1] == b"Delivered-To: %s" % LOCAL_RCPT.encode(), data[:200]
        # then our Received: line and the message as sent, CRLF -> LF
        rest = spool_free[2]
        assert rest.startswith(b"Received: "), rest[:200]
        assert rest.endswith(body.replace(b"\r\n", b"\n")), rest
        assert b"\r" not in data
        m = re.match(r"^\d+\.M\d+P\d+Q\d+\.[^,/]+,S=(\d+)$", name)
        assert m and int(m.group(1)) == len(data), name
        md = maildir(inst, LOCAL_RCPT)
        assert os.path.isdir(os.path.join(md, "cur")) and os.listdir(os.path.join(md, "tmp")) == []
        inst.wait_removed(qid, since=since)


def _send(inst, sender, rcpts, body, mail_params="", timeout=None):
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), code=250)
        for r in rcpts:
            expect(c.cmd("RCPT TO:<%s>" % r), code=250)
        return queued_id(c.data(body, timeout=timeout))


def test_8bit_and_smtputf8_local_part():
    """An SMTPUTF8 local part (j\u00f6rg) gets its own Maildir, named by its
    UTF-8 bytes; an 8-bit body arrives unchanged."""
    with _instance("local-utf8") as inst:
        since = inst.log_size()
        rcpt = "j\u00f6rg@" + HOST
        body = "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\ngr\u00fc\u00dfe, j\u00f6rg \u2603\r\n".encode("utf-8")
        qid = _send(inst, "s\u00e9nder@example.com", [rcpt], body, " BODY=8BITMIME SMTPUTF8")
        inst.wait_delivery(qid, rcpt, since=since, timeout=60)
        (name, data), = wait_messages(inst, rcpt, 1)
        head = ("Return-Path: <s\u00e9nder@example.com>\nDelivered-To: %s\n" % rcpt).encode("utf-8")
        assert data.startswith(head), data[:200]
        assert data.endswith(body.replace(b"\r\n", b"\n")), data
        assert os.path.isdir(os.path.join(inst.mailbox_dir, HOST, "j\u00f6rg", "new"))


def test_alias_three_targets_nested_and_remote():
    """staff -> alice, bob, someone@remote.example (through a sink); team
    -> staff, carol: every member once, each with ORCPT the alias (the
    remote one as ORCPT= on the wire) and orig_to= in the log line."""
    import sinkfix
    with sinkfix.Sink(host="127.0.0.1", dsn=True) as sink:
        inst = harness.delivery_instance("local-alias", relayhost="[127.0.0.1]:%d" % sink.port)
        _write(inst, MAILBOXES, ALIASES)
        with inst:
            since = inst.log_size()
            qid = _send(inst, "s@example.com", ["staff@" + HOST], b"Subject: staff\r\n\r\nto the staff\r\n")
            for who in ("alice", "bob"):
                d = inst.wait_delivery(qid, "%s@%s" % (who, HOST), since=since, timeout=60)
                assert "orig_to=<staff@%s>" % HOST in d.line, d.line
                (_, data), = wait_messages(inst, "%s@%s" % (who, HOST), 1)
                assert b"Delivered-To: %s@%s\n" % (who.encode(), HOST.encode()) in data
            inst.wait_delivery(qid, "someone@remote.example", since=since, timeout=60)
            m, = sink.wait_messages(1)
            assert m.rcpt_tos == ["someone@remote.example"], m
            assert m.dsn_rcpt["someone@remote.example"].get("ORCPT", "").lower() == \
                ("rfc822;staff@%s" % HOST).lower(), m.dsn_rcpt
            inst.wait_removed(qid, since=since)
            # nested: team -> staff (alice, bob, remote) + carol; alice named twice is one copy
            since = inst.log_size()
            qid = _send(inst, "s@example.com", ["team@" + HOST, "alice@" + HOST],
                        b"Subject: team\r\n\r\nto the team\r\n")
            for who in ("alice", "bob", "carol"):
                inst.wait_delivery(qid, "%s@%s" % (who, HOST), since=since, timeout=60)
            inst.wait_delivery(qid, "someone@remote.example", since=since, timeout=60)
            inst.wait_removed(qid, since=since)
            assert len(messages(inst, "alice@" + HOST)) == 2      # one per message
            assert len(messages(inst, "carol@" + HOST)) == 1
            assert len(inst.deliveries(qid, "alice@" + HOST, since=since)) == 1
            assert len(sink.wait_messages(2)) == 2


def test_alias_loop_refused_and_self_alias():
    """A loop between aliases is refused by the map compiler with
    FILE:LINE; an alias naming itself means its mailbox too."""
    inst = _instance("local-loop", aliases="a@%s: b@%s\nb@%s: a@%s\n" % (HOST, HOST, HOST, HOST))
    r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path, "check"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=harness.daemon_env(), timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 1 and "%s:1: alias loop" % inst.aliases_file in out, out
    _write(inst, aliases="bob@%s: bob, carol\n" % HOST)
    with inst:
        since = inst.log_size()
        qid = _send(inst, "s@example.com", ["bob@" + HOST], b"Subject: self\r\n\r\nself alias\r\n")
        inst.wait_delivery(qid, "bob@" + HOST, since=since, timeout=60)
        inst.wait_delivery(qid, "carol@" + HOST, since=since, timeout=60)
        wait_messages(inst, "bob@" + HOST, 1)
        wait_messages(inst, "carol@" + HOST, 1)


def test_unknown_user_refused_in_pipelined_transaction():
    """One write: MAIL, three RCPTs (the middle one unknown), DATA: the
    replies come in order, 550 5.1.1 for the unknown one, and the message
    reaches the two others."""
    with _instance("local-pipe") as inst:
        since = inst.log_size()
        with inst.client() as c:
            c.ehlo()
            c.send(("MAIL FROM:<s@example.com>\r\nRCPT TO:<alice@%s>\r\nRCPT TO:<nobody@%s>\r\n"
                    "RCPT TO:<bob@%s>\r\nDATA\r\n" % (HOST, HOST, HOST)).encode())
            expect(c.reply(), code=250)
            expect(c.reply(), exact="250 2.1.5 Ok")
            expect(c.reply(), exact="550 5.1.1 <nobody@%s>: Recipient address rejected: User unknown" % HOST)
            expect(c.reply(), exact="250 2.1.5 Ok")
            expect(c.reply(), code=354)
            c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
            qid = queued_id(c.reply())
        for who in ("alice", "bob"):
            inst.wait_delivery(qid, "%s@%s" % (who, HOST), since=since, timeout=60)
            wait_messages(inst, "%s@%s" % (who, HOST), 1)
        assert not os.path.exists(maildir(inst, "nobody@" + HOST))
        assert not inst.deliveries(qid, "nobody@" + HOST, since=since)


def test_tag_and_postmaster():
    """demo+tag@localhost lands in demo's Maildir with Delivered-To: the
    address as given; PostMaster@localhost (any case) reaches the
    postmaster_address mailbox."""
    with _instance("local-tag") as inst:
        since = inst.log_size()
        qid = _send(inst, "s@example.com", ["demo+lists@localhost", "PostMaster@localhost"],
                    b"Subject: tag\r\n\r\ntagged\r\n")
        inst.wait_delivery(qid, "demo+lists@localhost", since=since, timeout=60)
        (_, data), = wait_messages(inst, LOCAL_RCPT, 1)
        assert b"\nDelivered-To: demo+lists@localhost\n" in data, data[:200]
        assert not os.path.exists(os.path.join(inst.mailbox_dir, "localhost", "demo+lists"))
        inst.wait_delivery(qid, "postmaster@" + HOST, since=since, timeout=60)
        wait_messages(inst, "postmaster@" + HOST, 1)


def test_delivered_to_loop_bounces():
    """A message that already carries Delivered-To: for the recipient is a
    mail loop: bounced 5.4.6, nothing stored; another recipient of the
    same message is delivered."""
    with _instance("local-dtloop") as inst:
        since = inst.log_size()
        qid = _send(inst, "s@example.com", ["alice@" + HOST, "bob@" + HOST],
                    b"Delivered-To: ALICE@%s\r\nSubject: loop\r\n\r\nagain\r\n" % HOST.encode())
        d = inst.wait_delivery(qid, "alice@" + HOST, status="bounced", since=since, timeout=60)
        assert d.dsn == "5.4.6" and d.reply == "mail forwarding loop for alice@%s" % HOST, d.line
        inst.wait_delivery(qid, "bob@" + HOST, since=since, timeout=60)
        assert messages(inst, "alice@" + HOST) == []
        wait_messages(inst, "bob@" + HOST, 1)


def _sendmail(inst, args, message):
    env = {"POSTERN_CONF": inst.conf_path}
    return subprocess.run([harness.binary("sendmail")] + list(args), input=message, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=harness.daemon_env(env), timeout=60)


def test_sendmail_and_cron_land_in_maildir():
    """`sendmail root` (unqualified: @hostname) and cron's own invocation
    (-FCronDaemon -i -B8BITMIME -oem root) are delivered into root's
    Maildir; the message arrives with LF line ends."""
    with _instance("local-sendmail") as inst:
        since = inst.log_size()
        r = _sendmail(inst, ["root"], b"Subject: plain sendmail\n\nfrom a script\n")
        assert r.returncode == 0, r.stderr
        r = _sendmail(inst, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                      "From: root (Cron Daemon)\nSubject: Cron <root@host> run-parts\n\n"
                      "caf\u00e9 output\n.\nmore\n".encode("utf-8"))
        assert r.returncode == 0, r.stderr
        got = wait_messages(inst, "root@" + HOST, 2)
        texts = b"".join(d for _, d in got)
        assert b"from a script\n" in texts
        assert "caf\u00e9 output\n.\nmore\n".encode("utf-8") in texts, texts
        assert b"Cron Daemon" in texts and b"\r" not in texts
        # the log line follows the file (written once the batch is durable)
        wait_until(lambda: len(inst.deliveries(rcpt="root@" + HOST, status="sent", since=since)) == 2, 30,
                   "two delivery lines for root")


def test_disk_full_defers_then_delivers():
    """mailbox_dir on a 256 KiB tmpfs: a 600 KB message is deferred 4.3.0
    (nothing left in tmp/, the message stays queued); after a remount with
    room and a flush it is delivered, once."""
    if not harness.IS_ROOT:
        raise harness.Skip("mounting a tmpfs as mailbox_dir needs root")
    inst = _instance("local-full", min_backoff="1s", max_backoff="2s")
    os.mkdir(inst.mailbox_dir, 0o700)
    uid, gid = harness.ACCOUNTS["local"]
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,uid=%d,gid=%d,mode=0700" % (uid, gid), "tmpfs",
                        inst.mailbox_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise harness.Skip("cannot mount a tmpfs here: %s" % r.stdout.decode(errors="replace").strip())
    try:
        with inst:
            since = inst.log_size()
            line = b"x" * 998 + b"\r\n"
            body = b"Subject: big\r\n\r\n" + line * 600
            qid = _send(inst, "s@example.com", [LOCAL_RCPT], body, timeout=60)
            d = inst.wait_delivery(qid, LOCAL_RCPT, status="deferred", since=since, timeout=60)
            assert d.dsn == "4.3.0" and "No space left on device" in d.reply, d.line
            assert qid in inst.queue_ids()
            tmp = os.path.join(maildir(inst, LOCAL_RCPT), "tmp")
            assert not os.path.isdir(tmp) or os.listdir(tmp) == [], os.listdir(tmp)
            assert messages(inst, LOCAL_RCPT) == []
            r = subprocess.run(["mount", "-o", "remount,size=8m", inst.mailbox_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert r.returncode == 0, r.stdout
            inst.posternctl("flush")
            inst.wait_delivery(qid, LOCAL_RCPT, status="sent", since=since, timeout=60)
            (_, data), = wait_messages(inst, LOCAL_RCPT, 1)
            assert data.endswith(line.replace(b"\r\n", b"\n") * 600)
            inst.wait_removed(qid, since=since)
            assert len(inst.deliveries(qid, LOCAL_RCPT, status="sent", since=since)) == 1
    finally:
        subprocess.run(["umount", "-l", inst.mailbox_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_thousand_messages_fifty_mailboxes():
    """1,000 messages to 50 mailboxes over a few connections: each one
    arrives exactly once, in its own mailbox, and the queue is empty."""
    boxes = ["user%02d@%s" % (i, HOST) for i in range(50)]
    with _instance("local-1000", mailboxes="\n".join(boxes + [LOCAL_RCPT]) + "\n", aliases="") as inst:
        since = inst.log_size()
        sent = {}
        for conn in range(10):
            with inst.client() as c:
                c.ehlo()
                for k in range(100):
                    i = conn * 100 + k
                    tok = "msg-%04d" % i
                    expect(c.cmd("MAIL FROM:<s@example.com>"), code=250)
                    expect(c.cmd("RCPT TO:<%s>" % boxes[i % 50]), code=250)
                    qid = queued_id(c.data(b"Subject: %s\r\n\r\n%s\r\n" % (tok.encode(), tok.encode())))
                    sent[tok] = (qid, boxes[i % 50])

        def done():
            return len(inst.deliveries(status="sent", since=since)) >= 1000
        wait_until(done, 240, "1000 local deliveries")
        seen = {}
        for b in boxes:
            for name, data in messages(inst, b):
                tok = data.rsplit(b"\n", 2)[-2].decode()
                assert tok not in seen, "%s twice (%s and %s)" % (tok, seen[tok], b)
                seen[tok] = b
        assert len(seen) == 1000, len(seen)
        for tok, (qid, box) in sent.items():
            assert seen[tok] == box, (tok, seen.get(tok), box)
        wait_until(lambda: inst.queue_ids() == set(), 60, "an empty queue")
        assert len(inst.deliveries(status="sent", since=since)) == 1000
test_thousand_messages_fifty_mailboxes.timeout = 400


def test_nothing_outside_mailbox_dir():
    """Unsafe addresses never become paths (refused at RCPT, or bounced by
    the local role when they come through sendmail), and a symlink planted
    inside mailbox_dir is never followed: the delivery is deferred and
    the directory it points to stays empty."""
    with _instance("local-escape", mailboxes=MAILBOXES) as inst:
        outside = os.path.join(inst.dir, "outside")
        os.mkdir(outside, 0o777)
        with inst.client() as c:
            c.ehlo()
            expect(c.cmd("MAIL FROM:<s@example.com>"), code=250)
            for bad in ('"../../outside"@localhost', '"a/b"@localhost', "..@localhost", '"."@localhost'):
                r = str(c.cmd("RCPT TO:<%s>" % bad))
                assert r.startswith("550 5.1.1") or r.startswith("501 5.1.3"), (bad, r)
        since = inst.log_size()
        r = _sendmail(inst, ["-f", "s@example.com", "nosuchuser@localhost"], b"Subject: x\n\nx\n")
        assert r.returncode == 0, r.stderr
        d = wait_until(lambda: inst.deliveries(rcpt="nosuchuser@localhost", since=since), 60,
                       "the unknown user's bounce")[0]
        assert d.status == "bounced" and d.dsn == "5.1.1", d.line
        # a symlink where alice's Maildir belongs
        dom = os.path.join(inst.mailbox_dir, HOST)
        os.mkdir(dom, 0o700)
        uid, gid = harness.ACCOUNTS["local"] if harness.IS_ROOT else (os.getuid(), os.getgid())
        os.chown(dom, uid, gid)
        os.symlink(outside, os.path.join(dom, "alice"))
        since = inst.log_size()
        qid = _send(inst, "s@example.com", ["alice@" + HOST, "bob@" + HOST], b"Subject: link\r\n\r\nlink\r\n")
        d = inst.wait_delivery(qid, "alice@" + HOST, status="deferred", since=since, timeout=60)
        assert d.dsn == "4.2.0", d.line
        inst.wait_delivery(qid, "bob@" + HOST, since=since, timeout=60)
        assert os.listdir(outside) == []
        # a symlink for new/ inside a real Maildir
        os.unlink(os.path.join(dom, "alice"))
        md = os.path.join(dom, "carol")
        for sub in ("", "tmp", "cur"):
            os.mkdir(os.path.join(md, sub), 0o700)
            os.chown(os.path.join(md, sub), uid, gid)
        os.symlink(outside, os.path.join(md, "new"))
        since = inst.log_size()
        qid = _send(inst, "s@example.com", ["carol@" + HOST], b"Subject: link\r\n\r\nlink\r\n")
        d = inst.wait_delivery(qid, "carol@" + HOST, status="deferred", since=since, timeout=60)
        assert d.dsn == "4.2.0", d.line
        assert os.listdir(outside) == [] and os.listdir(os.path.join(md, "tmp")) == []
