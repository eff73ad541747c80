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


def _write(inst, mailboxes=None, aliases=None):
    for path, text in ((inst.mailboxes_file, mailboxes), (inst.aliases_file, aliases)):
        if text is not None:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path + ".tmp", 0o644)
            os.rename(path + ".tmp", path)


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
