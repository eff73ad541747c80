"""
Mailbox quotas at local delivery (issue 7, part 2 "a mailbox over its
optional quota"): mailboxes_file in Dovecot's passwd-file format carries
quota rules (userdb_quota_rule=*:bytes=N, *:messages=N); the local role
keeps the Maildir++ "maildirsize" file and enforces the quota when it
stores: a copy that does not fit is deferred 4.2.2 (stays queued, mailq
shows why) and delivered once there is room; a message larger than the
whole quota is bounced 5.2.2 (the notice reaches the sender); the quota
socket in smtpd's jail answers L_QUOTA from the same numbers; and
Dovecot's quota=maildir reads the same usage (doveadm quota get).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import time

import harness
from harness import HOST, LOCAL_RCPT, expect, queued_id, wait_until

ALICE = "alice@" + HOST         # the mailbox with a quota
BOB = "bob@" + HOST             # none: a sender whose notices land here

L_QUOTA, L_QUOTA_REPLY = 96, 97
T_L_KEY, T_L_SIZE, T_L_VERDICT = 137, 138, 139
T_L_USED_BYTES, T_L_USED_MSGS, T_L_LIMIT_BYTES, T_L_LIMIT_MSGS = 140, 141, 142, 143
QUOTA_OK, QUOTA_FULL, QUOTA_TOOBIG, QUOTA_NONE, QUOTA_TEMPFAIL = range(5)


def _instance(name, rule, **conf):
    conf.setdefault("min_backoff", "1s")
    conf.setdefault("max_backoff", "2s")
    inst = harness.Instance(name, **conf)
    with open(inst.mailboxes_file, "w") as f:
        # the passwd-file form: no hash (no AUTH), uid..shell empty, the rule
        f.write("%s\n%s:::::::userdb_mail=maildir:~/ %s\n%s\n" % (LOCAL_RCPT, ALICE, rule, BOB))
    return inst


def _maildir(inst, addr):
    local, domain = addr.rsplit("@", 1)
    return os.path.join(inst.mailbox_dir, domain.lower(), local.lower())


def _new(inst, addr):
    d = os.path.join(_maildir(inst, addr), "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _maildirsize(inst, addr):
    with open(os.path.join(_maildir(inst, addr), "maildirsize")) as f:
        return f.read()


def _usage(text):
    """(definition, bytes, messages) of a maildirsize text."""
    lines = text.split("\n")
    assert text.endswith("\n") and len(lines) >= 3, text
    b = m = 0
    for line in lines[1:-1]:
        x, y = line.split()
        b, m = b + int(x), m + int(y)
    return lines[0], b, m


def _stored(inst, addr):
    """(bytes, messages) in new/ and cur/, from the ,S= of each name."""
    b = m = 0
    for sub in ("new", "cur"):
        d = os.path.join(_maildir(inst, addr), sub)
        for n in os.listdir(d) if os.path.isdir(d) else []:
            b += int(n.split(",S=")[1].split(":")[0].split(",")[0])
            m += 1
    return b, m


def _send(inst, rcpt, size, sender="s@example.com", pickup=False):
    body = b"Subject: quota\r\n\r\n"
    while len(body) < size:
        body += b"x" * min(78, max(1, size - len(body) - 2)) + b"\r\n"
    if pickup:
        # through sendmail, past smtpd's own quota check (test_quota.py):
        # what the local role does with mail it cannot take
        since = inst.log_size()
        r = subprocess.run([harness.binary("sendmail"), "-f", sender, rcpt], input=body.replace(b"\r\n", b"\n"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=harness.daemon_env({"POSTERN_CONF": inst.conf_path}))
        assert r.returncode == 0, r.stderr
        return inst.wait_log(r"postern/queue-mgr\[\d+\]: ([0-9A-Z]{12,}): uid=\d+ from=<%s>$" % re.escape(sender),
                             since=since, timeout=30).group(1)
    with inst.client() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>" % sender), code=250)
        expect(c.cmd("RCPT TO:<%s>" % rcpt), code=250)
        return queued_id(c.data(body, timeout=60))


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_bytes_quota_fills_defers_then_delivers():
    """*:bytes=3000: two messages of ~1000 bytes are stored and counted in
    maildirsize (definition "3000S", the sum of its lines = the sizes in
    the names); the third, which would pass 3000, is deferred 4.2.2
    "mailbox full", stays queued with the reason in mailq, nothing left in
    tmp/; once mail is removed and maildirsize rewritten (here: removed,
    as an IMAP server recounting does) a flush delivers it, once."""
    with _instance("quota-bytes", "userdb_quota_rule=*:bytes=3000") as inst:
        since = inst.log_size()
        for _ in range(2):
            qid = _send(inst, ALICE, 1000)
            inst.wait_delivery(qid, ALICE, since=since, timeout=60)
        wait_until(lambda: len(_new(inst, ALICE)) == 2, 30, "two messages for alice")
        definition, used, count = _usage(_maildirsize(inst, ALICE))
        assert definition == "3000S", definition
        assert (used, count) == _stored(inst, ALICE) and count == 2, (used, count, _stored(inst, ALICE))
        since = inst.log_size()
        qid = _send(inst, ALICE, 1500)
        d = inst.wait_delivery(qid, ALICE, status="deferred", since=since, timeout=60)
        assert d.dsn == "4.2.2" and d.reply.startswith("mailbox full: over quota with this message"), d.line
        assert "%d of 3000 bytes" % used in d.reply, d.line
        assert qid in inst.queue_ids()
        assert "mailbox full" in inst.mailq_text()
        assert len(_new(inst, ALICE)) == 2
        assert os.listdir(os.path.join(_maildir(inst, ALICE), "tmp")) == []
        # the server says the same
        v = _ask(inst, ALICE, 1500)
        assert v["verdict"] == QUOTA_FULL and v["used_bytes"] == used and v["limit_bytes"] == 3000, v
        # room made: a message removed, maildirsize recounted on next use
        # (a retry may come before the flush: the log is read from here)
        since = inst.log_size()
        os.unlink(os.path.join(_maildir(inst, ALICE), "new", _new(inst, ALICE)[0]))
        os.unlink(os.path.join(_maildir(inst, ALICE), "maildirsize"))
        inst.posternctl("flush")
        inst.wait_delivery(qid, ALICE, since=since, timeout=60)
        inst.wait_removed(qid, since=since)
        assert len(_new(inst, ALICE)) == 2
        definition, used, count = _usage(_maildirsize(inst, ALICE))
        assert (used, count) == _stored(inst, ALICE), (used, count)
        assert len(inst.deliveries(qid, ALICE, status="sent", since=since)) == 1


test_bytes_quota_fills_defers_then_delivers.timeout = 240


def test_copies_arriving_together_count_against_each_other():
    """Six messages of ~1000 bytes sent back to back (the local role
    gathers them into few batches) to a mailbox of *:bytes=3500: exactly
    three are stored, three deferred 4.2.2, and maildirsize adds up to
    what is in the Maildir."""
    with _instance("quota-batch", "userdb_quota_rule=*:bytes=3500", min_backoff="600s",
                   max_backoff="600s") as inst:
        since = inst.log_size()
        body = b"Subject: together\r\n\r\n" + (b"y" * 78 + b"\r\n") * 11
        with inst.client() as c:
            c.ehlo()
            qids = []
            for _ in range(6):
                expect(c.cmd("MAIL FROM:<s@example.com>"), code=250)
                expect(c.cmd("RCPT TO:<%s>" % ALICE), code=250)
                qids.append(queued_id(c.data(body, timeout=60)))
        got = wait_until(lambda: (len(inst.deliveries(rcpt=ALICE, since=since)) >= 6
                                  and inst.deliveries(rcpt=ALICE, since=since)), 90, "six results for alice")
        sent = [d for d in got if d.status == "sent"]
        deferred = [d for d in got if d.status == "deferred"]
        assert len(sent) == 3 and len(deferred) == 3, [d.line for d in got]
        assert all(d.dsn == "4.2.2" for d in deferred), [d.line for d in deferred]
        assert len(_new(inst, ALICE)) == 3
        definition, used, count = _usage(_maildirsize(inst, ALICE))
        assert definition == "3500S" and (used, count) == _stored(inst, ALICE), _maildirsize(inst, ALICE)


test_copies_arriving_together_count_against_each_other.timeout = 240


def test_message_count_quota_and_stale_maildirsize():
    """*:messages=2: two are stored, the third deferred 4.2.2. A
    maildirsize that claims more than the quota (one line, fresh) is
    believed: still deferred after a message is removed; aged past 15
    minutes it is recounted and the message delivered."""
    with _instance("quota-count", "userdb_quota_rule=*:messages=2") as inst:
        since = inst.log_size()
        for _ in range(2):
            inst.wait_delivery(_send(inst, ALICE, 300), ALICE, since=since, timeout=60)
        since = inst.log_size()
        qid = _send(inst, ALICE, 300, pickup=True)
        d = inst.wait_delivery(qid, ALICE, status="deferred", since=since, timeout=60)
        assert d.dsn == "4.2.2" and "2 of 2 messages" in d.reply, d.line
        assert _usage(_maildirsize(inst, ALICE))[0] == "2C"
        os.unlink(os.path.join(_maildir(inst, ALICE), "new", _new(inst, ALICE)[0]))
        path = os.path.join(_maildir(inst, ALICE), "maildirsize")
        since = inst.log_size()
        with open(path + ".new", "w") as f:
            f.write("2C\n600 3\n")      # over quota, one fresh line: trusted
        if harness.IS_ROOT:
            os.chown(path + ".new", *harness.ACCOUNTS["local"])
        os.rename(path + ".new", path)
        inst.posternctl("flush")
        d = inst.wait_delivery(qid, ALICE, status="deferred", since=since, timeout=60)
        assert "3 of 2 messages" in d.reply, d.line
        since = inst.log_size()
        _age(path, 16 * 60)
        inst.posternctl("flush")
        inst.wait_delivery(qid, ALICE, since=since, timeout=60)
        assert len(_new(inst, ALICE)) == 2
        definition, used, count = _usage(_maildirsize(inst, ALICE))
        assert definition == "2C" and (used, count) == _stored(inst, ALICE) and count == 2, _maildirsize(inst, ALICE)


test_message_count_quota_and_stale_maildirsize.timeout = 240


def test_larger_than_quota_bounces_with_notice():
    """A message larger than the whole quota (*:storage=2k, kilobytes as
    Dovecot reads it) is bounced 5.2.2 at once, nothing stored, and the
    sender (a local mailbox) gets the non-delivery notice naming 5.2.2; a
    small one still fits."""
    with _instance("quota-toobig", "userdb_quota_rule=*:storage=2k") as inst:
        since = inst.log_size()
        qid = _send(inst, ALICE, 5000, sender=BOB, pickup=True)
        d = inst.wait_delivery(qid, ALICE, status="bounced", since=since, timeout=60)
        assert d.dsn == "5.2.2" and "larger than the quota (2048 bytes)" in d.reply, d.line
        assert _new(inst, ALICE) == []
        notice = wait_until(lambda: _new(inst, BOB), 60, "the non-delivery notice in bob's Maildir")
        with open(os.path.join(_maildir(inst, BOB), "new", notice[0]), "rb") as f:
            text = f.read()
        assert b"5.2.2" in text and ALICE.encode() in text, text[:2000]
        assert b"Return-Path: <>" in text
        since = inst.log_size()
        inst.wait_delivery(_send(inst, ALICE, 500), ALICE, since=since, timeout=60)
        assert _usage(_maildirsize(inst, ALICE))[0] == "2048S"


test_larger_than_quota_bounces_with_notice.timeout = 240


# -- the quota socket, spoken from Python

def _frame(mtype, reqid, fields):
    body = b"".join(struct.pack("<HI", t, len(v)) + v for t, v in fields)
    return b"PSTN" + struct.pack("<HHII", mtype, 0, len(body), reqid) + body


def _u64(v):
    return struct.pack("<Q", v)


CLIENT = r'''
import socket, struct, sys
path, frame = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
out = b""
try:
    s.sendall(frame)
    while True:
        if len(out) >= 16 and len(out) >= 16 + struct.unpack("<I", out[8:12])[0]:
            break
        b = s.recv(4096)
        if not b:
            break
        out += b
except (socket.timeout, BrokenPipeError, ConnectionResetError):
    pass
sys.stdout.write(out.hex())
'''


def _exchange(inst, frame, account="smtpd"):
    """Sends frame on the quota socket as account's uid (root runs: the
    harness's numeric accounts) and returns the raw reply (b"" when the
    server closed without one)."""
    kw = {}
    if harness.IS_ROOT:
        uid, gid = harness.ACCOUNTS[account]
        kw = dict(user=uid, group=gid, extra_groups=[])
    path = os.path.join(inst.run_dir, "smtpd", "local", "quota.sock")
    r = subprocess.run([sys.executable, "-c", CLIENT, path, frame.hex()], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, **kw)
    assert r.returncode == 0, r.stderr
    return bytes.fromhex(r.stdout.decode())


def _parse_reply(raw):
    assert len(raw) >= 16 and raw[:4] == b"PSTN", raw
    mtype, _, blen, reqid = struct.unpack("<HHII", raw[4:16])
    assert mtype == L_QUOTA_REPLY and reqid == 77 and len(raw) == 16 + blen, (mtype, reqid, raw)
    names = {T_L_VERDICT: "verdict", T_L_USED_BYTES: "used_bytes", T_L_USED_MSGS: "used_msgs",
             T_L_LIMIT_BYTES: "limit_bytes", T_L_LIMIT_MSGS: "limit_msgs"}
    out, p = {}, 16
    while p < len(raw):
        tag, n = struct.unpack("<HI", raw[p:p + 6])
        out[names.get(tag, tag)] = struct.unpack("<Q", raw[p + 6:p + 6 + n])[0]
        p += 6 + n
    return out


def _ask(inst, key, size, account="smtpd"):
    return _parse_reply(_exchange(inst, _frame(L_QUOTA, 77, [(T_L_KEY, key.encode()), (T_L_SIZE, _u64(size))]),
                                  account))


def test_quota_socket_verdicts():
    """L_QUOTA on RUN/smtpd/local/quota.sock, as user_smtpd: NONE for a
    mailbox without quota and for an unknown key, OK while it fits, FULL
    and TOOBIG by the limits, with the usage of maildirsize; an L_QUOTA
    with a field missing or malformed gets TEMPFAIL, a broken frame or
    another type no answer (the client is cut off); another account is
    not served. A mailbox without a quota whose maildirsize exists gets its
    deliveries added to it."""
    with _instance("quota-socket", "userdb_quota_rule=*:bytes=4000:messages=10") as inst:
        wait_until(lambda: os.path.exists(os.path.join(inst.run_dir, "smtpd", "local", "quota.sock")), 30,
                   "the quota socket")
        v = _ask(inst, ALICE, 1000)
        assert v == {"verdict": QUOTA_OK, "used_bytes": 0, "used_msgs": 0, "limit_bytes": 4000,
                     "limit_msgs": 10}, v
        assert not os.path.exists(_maildir(inst, ALICE)), "a question must not make the Maildir"
        assert _ask(inst, ALICE, 4001)["verdict"] == QUOTA_TOOBIG
        assert _ask(inst, BOB, 1 << 40)["verdict"] == QUOTA_NONE
        assert _ask(inst, "nobody@" + HOST, 1)["verdict"] == QUOTA_NONE
        since = inst.log_size()
        inst.wait_delivery(_send(inst, ALICE, 2500), ALICE, since=since, timeout=60)
        used, count = _stored(inst, ALICE)
        v = _ask(inst, ALICE, 1000)
        assert v["verdict"] == QUOTA_OK and v["used_bytes"] == used and v["used_msgs"] == 1, (v, used)
        assert _ask(inst, ALICE, 4000 - used + 1)["verdict"] == QUOTA_FULL
        assert _ask(inst, ALICE, 4000 - used)["verdict"] == QUOTA_OK
        # bob has no quota in the map, but a maildirsize (another reader's):
        # kept up to date all the same (Maildir++), never enforced
        md = _maildir(inst, BOB)
        uid, gid = harness.ACCOUNTS["local"] if harness.IS_ROOT else (os.getuid(), os.getgid())
        for d in (os.path.dirname(md), md, md + "/tmp", md + "/new", md + "/cur"):
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
            os.chown(d, uid, gid)
        with open(md + "/maildirsize", "w") as f:
            f.write("100S\n0 0\n")
        os.chown(md + "/maildirsize", uid, gid)
        since = inst.log_size()
        inst.wait_delivery(_send(inst, BOB, 700), BOB, since=since, timeout=60)
        assert _usage(_maildirsize(inst, BOB)) == ("100S",) + _stored(inst, BOB), _maildirsize(inst, BOB)
        # malformed: no size; a key with a control byte; another type
        assert _parse_reply(_exchange(inst, _frame(L_QUOTA, 77, [(T_L_KEY, ALICE.encode())])))["verdict"] \
            == QUOTA_TEMPFAIL
        assert _parse_reply(_exchange(inst, _frame(L_QUOTA, 77, [(T_L_KEY, b"a\x01@" + HOST.encode()),
                                                                  (T_L_SIZE, _u64(1))])))["verdict"] \
            == QUOTA_TEMPFAIL
        assert _exchange(inst, _frame(L_QUOTA_REPLY, 77, [(T_L_VERDICT, _u64(0))])) == b""
        assert _exchange(inst, b"XXXX" + b"\0" * 12) == b""
        if harness.IS_ROOT:
            assert _exchange(inst, _frame(L_QUOTA, 77, [(T_L_KEY, ALICE.encode()), (T_L_SIZE, _u64(1))]),
                             account="deliver") == b""
            inst.wait_log(r"postern/local\[\d+\]: .*uid %d" % harness.ACCOUNTS["deliver"][0], timeout=30,
                          what="the refused peer in the log")


test_quota_socket_verdicts.timeout = 180


def test_dovecot_reads_the_same_usage():
    """One passwd-file serves both: Dovecot's (users with a quota_rule
    extra field) is Postern's mailboxes_file. After Postern's deliveries,
    `doveadm quota get` (quota = maildir) reports the messages and the
    kilobytes of maildirsize, and its limit is the same: Dovecot keeps the
    file Postern wrote instead of rebuilding it."""
    import dovecotfix
    if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(harness.binary("postern"))), "local")):
        raise harness.Skip("no bin/local in this tree")
    users = {ALICE: ("pw", {"quota_rule": "*:storage=20k"})}
    with dovecotfix.Dovecot(users=users) as dc:
        conf = {"local_domains": "%s, localhost" % HOST, "mailbox_dir": dc.mailbox_dir,
                "min_backoff": "1s", "max_backoff": "2s"}
        if harness.IS_ROOT:
            conf["user_local"] = "%d:%d" % (dc.uid, dc.gid)
        inst = harness.Instance("quota-dovecot", tls=False, **conf)
        inst.mailbox_dir = dc.mailbox_dir       # what the configuration says
        with open(dc.passwd_path) as f:
            shared = f.read()
        assert ":userdb_quota_rule=*:storage=20k" in shared, shared
        with open(inst.mailboxes_file, "w") as f:
            f.write(shared + LOCAL_RCPT + "\n")
        with inst:
            since = inst.log_size()
            for size in (3000, 5000):
                inst.wait_delivery(_send(inst, ALICE, size), ALICE, since=since, timeout=60)
            before = _maildirsize(inst, ALICE)
            definition, used, count = _usage(before)
            assert definition == "20480S" and count == 2 and (used, count) == _stored(inst, ALICE), before
            r = subprocess.run(["doveadm", "-c", dc.conf_path, "-f", "tab", "quota", "get", "-u", ALICE],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            out = r.stdout.decode(errors="replace")
            assert r.returncode == 0, out + dc.log_tail()
            rows = {}
            for line in out.splitlines()[1:]:
                cols = line.split("\t")
                rows[cols[1]] = cols
            # Quota name, Type, Value, Limit, %: STORAGE in kilobytes, rounded up
            assert rows["STORAGE"][2] == str((used + 1023) // 1024) and rows["STORAGE"][3] == "20", (used, out)
            assert rows["MESSAGE"][2] == "2", out
            # Dovecot took the file as it was: same definition, same sum
            after = _maildirsize(inst, ALICE)
            assert _usage(after)[:3] == (definition, used, count), (before, after)


test_dovecot_reads_the_same_usage.timeout = 240
