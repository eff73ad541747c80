"""
Dovecot as the IMAP server of Postern's Maildirs and as its LMTP peer
(dovecotfix.py: Debian's dovecot-imapd and dovecot-lmtpd from a private
configuration on loopback ports).

Cases:
  - Dovecot lists and fetches over IMAP (imaplib) a message lying in a
    Maildir the way Postern's local role writes it (mailbox_dir/DOMAIN/USER/
    new/UNIQUE,S=SIZE, Return-Path and Delivered-To on top), byte for byte;
  - deliver hands a message to Dovecot over LMTP on TCP ("lmtp:[127.0.0.1]:
    PORT", the D_DEST queue-mgr writes for local_transport), driven by the
    fake queue-mgr of test_deliver_agent.py: one reply per recipient after
    the final dot, applied to that recipient alone (an unknown user refused
    at RCPT with 550 5.1.1, a user over quota refused after DATA with 552
    5.2.2, the others delivered into their Maildirs);
  - over TCP with STARTTLS when Dovecot offers it;
  - the same over a UNIX socket in deliver's jail ("lmtp:unix:dovecot-lmtp",
    as Postfix's lmtp:unix:private/dovecot-lmtp), logged relay=PATH, the
    absolute form, and a missing socket deferred 4.4.1;
  - end to end (only once bin/local exists, skipped with the reason before):
    SMTP in -> Postern's Maildir -> Dovecot IMAP, byte for byte; and SMTP in
    -> local_transport = lmtp:[127.0.0.1]:PORT -> Dovecot -> IMAP.
"""

import os
import re

import dovecotfix
import harness
from test_deliver_agent import World

DOMAIN = "example.test"
USERS = {
    "alice@" + DOMAIN: "alice pw",
    "bob@" + DOMAIN: "bob pw",
    # 1 KiB, and _fill() puts 4 KiB in it: any message is refused after DATA
    "full@" + DOMAIN: ("full pw", {"quota_rule": "*:storage=1k"}),
}
BODY_LINE = b"hello from the agent test"


class _NoDns:
    """World() wants an NSD for its stub zones: LMTP destinations here are
    literal addresses and sockets, so no DNS is asked."""
    port = 9

    def stub_zones(self, extra=None):
        return ""


def _crlf(b):
    return re.sub(rb"\r?\n", b"\r\n", b)


def _fetch_all(dc, user):
    """[(RFC822 bytes)] of every message in user's INBOX, over IMAP."""
    m = dc.imap(user)
    try:
        typ, _ = m.select("INBOX")
        assert typ == "OK", typ
        typ, data = m.search(None, "ALL")
        assert typ == "OK", (typ, data)
        out = []
        for num in data[0].split():
            typ, msg = m.fetch(num, "(RFC822)")
            assert typ == "OK", (typ, msg)
            out.append(msg[0][1])
        return out
    finally:
        m.logout()


def _new_files(dc, user):
    d = os.path.join(dc.maildir(user), "new")
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def _fill(dc, user):
    """Puts 4 KiB of old mail into user's Maildir: over its quota."""
    d = dc.make_maildir(user)
    p = os.path.join(d, "cur", "1764637000.M1P1Q1.test,S=4096:2,S")
    with open(p, "wb") as f:
        f.write(b"Subject: old\n\n" + b"x" * (4096 - 15) + b"\n")
    os.chown(p, dc.uid, dc.gid)


def _need_dovecot():
    if not dovecotfix.available():
        raise harness.Skip("dovecot-imapd and dovecot-lmtpd are not installed (scripts/deps installs them)")
    if not harness.IS_ROOT:
        raise harness.Skip("a private Dovecot needs root")


def _need_local():
    if not os.access(harness.binary("local"), os.X_OK):
        raise harness.Skip("no local delivery role (%s): the Maildir delivery of issue 7 is not in this "
                           "tree yet" % harness.binary("local"))


def test_dovecot_imap_reads_postern_maildir():
    """A message in mailbox_dir/DOMAIN/USER/new/, named and written as
    Postern's local role writes it, is listed and fetched by Dovecot over
    IMAP, byte for byte (IMAP's CRLF lines)."""
    _need_dovecot()
    with dovecotfix.Dovecot(users=USERS) as dc:
        user = "alice@" + DOMAIN
        d = dc.make_maildir(user)
        msg = (b"Return-Path: <sender@example.org>\n"
               b"Delivered-To: alice@example.test\n"
               b"Received: from client.example (client.example [127.0.0.1])\n"
               b"\tby test.postern.invalid (Postern) with ESMTP id 0000TEST0001\n"
               b"\tfor <alice@example.test>; Wed, 2 Dec 2026 01:00:00 +0000\n"
               b"From: <sender@example.org>\nTo: <alice@example.test>\nSubject: from a Postern Maildir\n"
               b"Message-ID: <maildir.1@example.org>\n\n"
               b"line one\n.a line that began with a dot\n\n-- \nsig\n")
        name = "1764637200.M123456P4242Q1.test.postern.invalid,S=%d" % len(msg)
        tmp = os.path.join(d, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(msg)
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, dc.uid, dc.gid)
        os.rename(tmp, os.path.join(d, "new", name))
        got = _fetch_all(dc, user)
        assert len(got) == 1, got
        assert got[0] == _crlf(msg), (got[0], msg)
        # Dovecot moved it to cur/ once seen by IMAP and kept the name's base
        assert any(n.startswith(name) for n in os.listdir(os.path.join(d, "cur"))), os.listdir(d)
        # the other mailbox is empty, and Dovecot said nothing alarming
        assert _fetch_all(dc, "bob@" + DOMAIN) == []
        assert "Error:" not in dc.log_text(), dc.log_tail()


def test_dovecot_lmtp_tcp_per_recipient():
    """deliver to Dovecot over LMTP on TCP: LHLO, one reply per accepted
    recipient after the dot; 550 at RCPT for an unknown user, 552 after
    DATA for a user over quota, the others sent and in their Maildirs."""
    _need_dovecot()
    with dovecotfix.Dovecot(users=USERS) as dc, World(_NoDns()) as w:
        _fill(dc, "full@" + DOMAIN)
        dest = "lmtp:[127.0.0.1]:%d" % dc.lmtp_port
        rcpts = ["alice@" + DOMAIN, "nobody@" + DOMAIN, "full@" + DOMAIN, "bob@" + DOMAIN]
        jid, qid, r = w.job(dest, rcpts)
        st = [r["rcpts"][i]["status"] for i in range(4)]
        assert st == ["sent", "bounced", "bounced", "sent"], (r, w.log()[-3000:], dc.log_tail())
        assert r["rcpts"][1]["dsn"] == "5.1.1" and "RCPT TO" in r["rcpts"][1]["reply"], r
        assert r["rcpts"][2]["dsn"] == "5.2.2" and "end of DATA" in r["rcpts"][2]["reply"], r
        assert "full@" + DOMAIN in r["rcpts"][2]["reply"], r      # Dovecot's reply names its recipient
        assert "Saved" in r["rcpts"][0]["reply"] and "Saved" in r["rcpts"][3]["reply"], r
        lines = w.lines(qid)
        assert len(lines) == 4, w.log()[-3000:]
        for m in lines:
            assert m.group("relay") == "127.0.0.1[127.0.0.1]:%d" % dc.lmtp_port, m.group(0)
        assert [m.group("status") for m in lines] == st
        # delivered exactly where Postern's Maildir layout puts them
        assert len(_new_files(dc, "alice@" + DOMAIN)) == 1, os.listdir(dc.mailbox_dir)
        assert len(_new_files(dc, "bob@" + DOMAIN)) == 1
        assert _new_files(dc, "full@" + DOMAIN) == []
        got = _fetch_all(dc, "alice@" + DOMAIN)
        assert len(got) == 1 and BODY_LINE in got[0] and b"Subject: agent test" in got[0], got
        with open(w.msg_path, "rb") as f:
            original = f.read()
        assert got[0].endswith(original), (got[0], original)   # Dovecot only prepends its headers
        # the next job to the same server reuses the idle LMTP session (RSET,
        # not a new connection): Dovecot logs one "Connect from" per session
        connects = dc.log_text().count("Info: Connect from 127.0.0.1")
        jid, qid2, r = w.job(dest, ["bob@" + DOMAIN])
        assert r["rcpts"][0]["status"] == "sent", r
        harness.wait_until(lambda: len(_new_files(dc, "bob@" + DOMAIN)) == 2, 20, "bob's second message")
        harness.wait_until(lambda: dc.log_text().count("saved mail to INBOX") >= 3, 20, "Dovecot's log")
        assert dc.log_text().count("Info: Connect from 127.0.0.1") == connects, dc.log_tail()
        assert w.procs["deliver"].poll() is None


test_dovecot_lmtp_tcp_per_recipient.timeout = 180


def test_dovecot_lmtp_tcp_starttls():
    """Over TCP, STARTTLS when Dovecot's LMTP offers it, then LHLO again:
    the TLS line, and the message delivered."""
    _need_dovecot()
    with dovecotfix.Dovecot(users=USERS, tls=True) as dc, World(_NoDns()) as w:
        jid, qid, r = w.job("lmtp:[127.0.0.1]:%d" % dc.lmtp_port, ["alice@" + DOMAIN])
        assert r["rcpts"][0]["status"] == "sent", (r, w.log()[-3000:], dc.log_tail())
        assert re.search(r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: TLSv1\.[23]"
                         % dc.lmtp_port, w.log()), w.log()[-3000:]
        assert len(_new_files(dc, "alice@" + DOMAIN)) == 1


def test_dovecot_lmtp_unix_socket_in_jail():
    """"lmtp:unix:dovecot-lmtp" is RUN/deliver/dovecot-lmtp whether deliver
    is chrooted there or not (Postfix's lmtp:unix:private/dovecot-lmtp);
    an absolute path is the jail's when chrooted; relay=PATH in the log; a
    missing socket defers with 4.4.1."""
    _need_dovecot()
    w = World(_NoDns())
    jail = os.path.join(w.inst.run_dir, "deliver")
    os.makedirs(jail, exist_ok=True)
    os.chmod(w.inst.run_dir, 0o755)
    os.chmod(jail, 0o755)
    sock = os.path.join(jail, "dovecot-lmtp")
    with dovecotfix.Dovecot(users=USERS, lmtp_unix=sock) as dc, w:
        jid, qid, r = w.job("lmtp:unix:dovecot-lmtp", ["alice@" + DOMAIN, "nobody@" + DOMAIN])
        assert r["rcpts"][0]["status"] == "sent", (r, w.log()[-3000:], dc.log_tail())
        assert r["rcpts"][1]["status"] == "bounced" and r["rcpts"][1]["dsn"] == "5.1.1", r
        lines = w.lines(qid)
        assert [m.group("relay") for m in lines] == ["dovecot-lmtp", "dovecot-lmtp"], w.log()[-3000:]
        assert len(_new_files(dc, "alice@" + DOMAIN)) == 1
        # the absolute form: inside the jail when chrooted, the path as given when not
        absolute = "/dovecot-lmtp" if harness.CHROOT else sock
        jid, qid, r = w.job("lmtp:unix:" + absolute, ["bob@" + DOMAIN])
        assert r["rcpts"][0]["status"] == "sent", (r, w.log()[-3000:])
        assert w.lines(qid)[0].group("relay") == absolute
        assert len(_new_files(dc, "bob@" + DOMAIN)) == 1
        # nothing listens there: deferred, never bounced
        jid, qid, r = w.job("lmtp:unix:no-such-socket", ["bob@" + DOMAIN])
        assert r["rcpts"][0]["status"] == "deferred" and r["rcpts"][0]["dsn"] == "4.4.1", r
        assert "connect to no-such-socket: No such file or directory" in r["rcpts"][0]["reply"], r
        assert len(_fetch_all(dc, "alice@" + DOMAIN)) == 1


test_dovecot_lmtp_unix_socket_in_jail.timeout = 180


def _local_instance(name, dc, **conf):
    c = {
        "local_domains": "%s, %s, localhost" % (harness.HOST, DOMAIN),
        "mailbox_dir": dc.mailbox_dir,
    }
    if harness.IS_ROOT:
        c["user_local"] = "%d:%d" % (dc.uid, dc.gid)
    c.update(conf)
    inst = harness.Instance(name=name, tls=False, **c)
    with open(inst.mailboxes_file, "w") as f:
        f.write(harness.LOCAL_RCPT + "\n" + "".join(u + "\n" for u in USERS))
    return inst


def test_dovecot_e2e_smtp_to_maildir_to_imap():
    """SMTP in -> Postern's Maildir (local_transport = maildir) -> Dovecot's
    IMAP FETCH, byte for byte the file Postern wrote, whose body is what
    was sent."""
    _need_local()
    _need_dovecot()
    with dovecotfix.Dovecot(users=USERS) as dc:
        inst = _local_instance("e2e-maildir", dc, local_transport="maildir")
        with inst:
            user = "alice@" + DOMAIN
            tok = harness.token("dc")
            body = (b"From: <sender@example.org>\r\nTo: <" + user.encode() + b">\r\nSubject: " + tok.encode()
                    + b"\r\nMessage-ID: <" + tok.encode() + b"@client.example>\r\n\r\nline one\r\n"
                    b".a dot-stuffed line\r\n\r\nlast line\r\n")
            qid = inst.send("sender@example.org", [user], body)
            inst.wait_delivery(qid, user, timeout=60)
            files = harness.wait_until(lambda: _new_files(dc, user), 30, "a file in %s/new" % dc.maildir(user))
            assert len(files) == 1, files
            with open(os.path.join(dc.maildir(user), "new", files[0]), "rb") as f:
                stored = f.read()
            got = _fetch_all(dc, user)
            assert len(got) == 1, got
            assert got[0] == _crlf(stored), (got[0], stored)
            assert _crlf(stored).endswith(body), (stored, body)
            assert b"Delivered-To: " + user.encode() in stored and b"Return-Path: <sender@example.org>" in stored


test_dovecot_e2e_smtp_to_maildir_to_imap.timeout = 180


def test_dovecot_e2e_smtp_to_lmtp():
    """SMTP in -> local_transport = lmtp:[127.0.0.1]:PORT -> Dovecot stores
    it -> IMAP FETCH shows the body; relay=127.0.0.1[127.0.0.1]:PORT."""
    _need_local()
    _need_dovecot()
    with dovecotfix.Dovecot(users=USERS) as dc:
        inst = _local_instance("e2e-lmtp", dc, local_transport="lmtp:[127.0.0.1]:%d" % dc.lmtp_port)
        with inst:
            user = "bob@" + DOMAIN
            tok = harness.token("dl")
            body = (b"From: <sender@example.org>\r\nTo: <" + user.encode() + b">\r\nSubject: " + tok.encode()
                    + b"\r\n\r\nover LMTP\r\n")
            qid = inst.send("sender@example.org", [user], body)
            d = inst.wait_delivery(qid, user, timeout=60)
            assert "127.0.0.1[127.0.0.1]:%d" % dc.lmtp_port in d.line, d.line
            got = _fetch_all(dc, user)
            assert len(got) == 1 and got[0].endswith(body), (got, body)


test_dovecot_e2e_smtp_to_lmtp.timeout = 180
