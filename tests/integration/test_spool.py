"""
What lands on disk: the spool file SPOOL_DIR/msg/QUEUEID of an accepted
message starts with the Received: line, has CRLF line ends, has its
dot-stuffing undone, and its size is the message_size that mailq reports.
"""

import os
import time
import re

import harness
from harness import HOST, REMOTE_RCPT, expect, queued_id


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


# -- start-up reconciliation: it never deletes a committed message


def test_reconcile_truncates_long_and_holds_short_or_missing():
    """A stopped instance's spool files are changed by hand: one grown, one
    cut short, one removed, plus a stray file no record names. After a
    restart the grown one is truncated back to its recorded size, the short
    and the missing ones are held (mailq: '!' and a reason line) with a
    loud log line, the stray file is removed, and nothing committed is gone;
    a second restart keeps them all."""
    with harness.Instance("reconcile") as inst:
        grown, short, gone, fine = (inst.send() for _ in range(4))
        sizes = {q: inst.queue_entry(q)["message_size"] for q in (grown, short, gone, fine)}
        inst.stop()
        with open(inst.spool_file(grown), "ab") as f:
            f.write(b"X-Appended: after the commit\r\n")
        with open(inst.spool_file(short), "r+b") as f:
            f.truncate(sizes[short] // 2)
        os.unlink(inst.spool_file(gone))
        stray = inst.spool_file("00000000STRA")
        with open(stray, "wb") as f:
            f.write(b"never committed\r\n")
        off = inst.log_size()
        inst.start()
        inst.wait_log(r"%s: spool file had \d+ bytes, its record says %d: truncated" % (grown, sizes[grown]),
                      off, what="the truncation to be logged")
        inst.wait_log(r"%s: DAMAGED MESSAGE: its spool file has \d+ bytes" % short, off,
                      what="the short file to be logged as damaged")
        inst.wait_log(r"%s: DAMAGED MESSAGE: its spool file is missing" % gone, off,
                      what="the missing file to be logged as damaged")
        if os.path.getsize(inst.spool_file(grown)) != sizes[grown]:
            raise AssertionError("the grown spool file was not truncated back to %d bytes" % sizes[grown])
        if os.path.exists(stray):
            raise AssertionError("a spool file that no record names was kept")
        for _ in range(2):
            q = {e["queue_id"]: e for e in inst.queue()}
            for qid in (grown, short, gone, fine):
                if qid not in q:
                    raise AssertionError("reconciliation deleted committed message %s" % qid)
            for qid in (short, gone):
                if q[qid]["queue_name"] != "hold":
                    raise AssertionError("damaged message %s is in queue %r, not hold" % (qid, q[qid]["queue_name"]))
                why = [r.get("delay_reason", "") for r in q[qid]["recipients"]]
                if not all("damaged" in w for w in why):
                    raise AssertionError("mailq -j gives no reason for the damaged %s: %r" % (qid, why))
            for qid in (grown, fine):
                if q[qid]["queue_name"] == "hold":
                    raise AssertionError("intact message %s is held" % qid)
            text = inst.mailq().stdout.decode()
            for qid in (short, gone):
                if not re.search(r"^%s! " % qid, text, re.M):
                    raise AssertionError("mailq does not show %s as held ('!'):\n%s" % (qid, text))
            if "(queue file missing or damaged; message held" not in text:
                raise AssertionError("mailq shows no reason line for the damaged messages:\n%s" % text)
            inst.stop()
            inst.start()


def test_index_and_msg_on_different_file_systems_refused():
    """SPOOL/msg on a file system of its own (a tmpfs): one syncfs would
    not cover the index, so queue-mgr refuses to start, saying why."""
    if not harness.IS_ROOT:
        raise harness.Skip("mounting a tmpfs needs root")
    import subprocess
    inst = harness.Instance("twofs")
    inst.start()
    inst.stop()
    msg = os.path.join(inst.spool_dir, "msg")
    uid, gid = harness.ACCOUNTS["queue"][0], harness.ACCOUNTS["queue"][1]
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700,uid=%d,gid=%d" % (uid, gid),
                        "tmpfs", msg], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise harness.Skip("cannot mount a tmpfs here: %s" % r.stderr.decode(errors="replace").strip())
    try:
        off = inst.log_size()
        inst.start(wait=False)
        inst.wait_log(r"are on different file systems: one syncfs cannot make a message", off, timeout=20,
                      what="queue-mgr to refuse the split spool")
        if harness._unix_connect(os.path.join(inst.run_dir, "queue", "pickup.sock")):
            raise AssertionError("queue-mgr accepts hand-offs on a split spool")
        inst.stop()
        # postern check says the same, and fails
        r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path, "check"],
                           stdin=subprocess.DEVNULL, capture_output=True, env=harness.daemon_env(), timeout=30)
        out = (r.stdout + r.stderr).decode(errors="replace")
        if r.returncode != 1 or "different file systems" not in out:
            raise AssertionError("postern check on a split spool: exit %d, %r" % (r.returncode, out))
    finally:
        inst.stop()
        subprocess.run(["umount", msg], capture_output=True, timeout=30)



def _fill_transaction(inst, n_rcpt):
    """One message with n_rcpt long remote recipients (big index records,
    small spool file); returns the reply to DATA or to the end of data."""
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<filler@example.com>"), exact="250 2.1.0 Ok")
        tok = harness.token("full")
        dom = b"%s.%s.remote.example" % (b"x" * 60, b"y" * 60)
        lines = b"".join(b"RCPT TO:<%s-%04d@%s>\r\n" % (tok.encode(), i, dom) for i in range(n_rcpt))
        c.send(lines)
        for _ in range(n_rcpt):
            expect(c.reply(), code=250)
        r = c.cmd("DATA")
        if r.code != 354:
            return r
        c.send(harness.dot_stuff(harness.simple_body(tok)) + b".\r\n")
        return c.reply()


def test_full_index_gets_452_and_recovers():
    """An index that fills its file system answers 452 4.3.1 (never a lost
    message); once there is room again mail is accepted, and every message
    that got 250 is still queued after a restart."""
    if not harness.IS_ROOT:
        raise harness.Skip("mounting a tmpfs needs root")
    import subprocess
    inst = harness.Instance("full", queue_map_size="1M", max_recipients="1000")
    os.makedirs(inst.spool_dir, exist_ok=True)
    uid, gid = harness.ACCOUNTS["queue"][0], harness.ACCOUNTS["queue"][1]
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700,uid=%d,gid=%d" % (uid, gid),
                        "tmpfs", inst.spool_dir], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise harness.Skip("cannot mount a tmpfs here: %s" % r.stderr.decode(errors="replace").strip())
    try:
        inst.start()
        accepted, refused = [], None
        for _ in range(100):
            r = _fill_transaction(inst, 1000)
            if r.code == 250:
                accepted.append(queued_id(r))
                continue
            refused = r
            break
        if refused is None:
            raise AssertionError("100 messages of 1000 recipients fit in a 6 MB file system")
        expect(refused, exact="452 4.3.1 Insufficient system storage")
        if not accepted:
            raise AssertionError("nothing was accepted before the index was full")
        subprocess.run(["mount", "-o", "remount,size=256m", inst.spool_dir], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            r = _fill_transaction(inst, 10)
            if r.code == 250:
                accepted.append(queued_id(r))
                break
            expect(r, exact="452 4.3.1 Insufficient system storage")
            if time.monotonic() > deadline:
                raise AssertionError("still 452 30 s after the file system grew")
            time.sleep(0.2)  # a retry interval, not synchronisation: we wait for a 250
        inst.stop()
        inst.start()
        ids = {m["queue_id"] for m in inst.queue()}
        lost = [q for q in accepted if q not in ids]
        if lost:
            raise AssertionError("%d of %d accepted messages lost: %s" % (len(lost), len(accepted), lost[:5]))
    finally:
        inst.stop()
        subprocess.run(["umount", inst.spool_dir], capture_output=True, timeout=30)


test_full_index_gets_452_and_recovers.timeout = 240
