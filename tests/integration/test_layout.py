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
    # the layout is the subject: nothing is delivered meanwhile
    inst = harness.Instance("layout", max_recipients=N_RCPT, master_service_disable="deliver")
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


# -- a queue index of layout 1 (the foundation's) is migrated at start


def _u64(tag, v):
    import struct
    return struct.pack("<HIQ", tag, 8, v)


def _str(tag, s):
    import struct
    b = s.encode()
    return struct.pack("<HI", tag, len(b)) + b


def _v1_record(qid, sender, rcpts, size, arrival):
    """A whole record as the foundation stored it (qrecord.h tags)."""
    import struct
    body = _u64(16, 1) + _str(1, qid) + _str(17, sender) + _u64(20, 0) + _u64(21, 0) + \
        _u64(22, 0) + _str(27, "ESMTP") + _str(31, "smtpd") + _u64(29, arrival) + _u64(30, size)
    for r in rcpts:
        inner = _str(48, r)
        body += struct.pack("<HI", 18, len(inner)) + inner
    return body


def _write_v1_index(index_dir, records):
    """Writes a layout-1 LMDB environment with mdb_load: one record per
    queue id in the main database, nothing else."""
    import subprocess
    lines = ["VERSION=3", "format=bytevalue", "type=btree", "mapsize=16777216",
             "maxreaders=126", "db_pagesize=4096", "HEADER=END"]
    for qid, val in sorted(records.items()):
        lines.append(" " + qid.encode().hex())
        lines.append(" " + val.hex())
    lines.append("DATA=END")
    r = subprocess.run(["mdb_load", index_dir], input=("\n".join(lines) + "\n").encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("mdb_load failed: %s" % r.stderr.decode(errors="replace"))


def test_v1_index_is_migrated_at_start():
    import os
    import shutil
    inst = harness.Instance("layout-v1", master_service_disable="deliver")
    with inst:
        qids = [inst.send(rcpts=("one@remote.example",)),
                inst.send(rcpts=("two@remote.example", "three@remote.example"))]
        sizes = [len(inst.read_spool(q)) for q in qids]
        inst.stop()
        index = os.path.join(inst.spool_dir, "index")
        st = os.stat(index)
        shutil.rmtree(index)
        os.mkdir(index, 0o700)
        now = int(time.time())     # recent: an old arrival would expire at once
        records = {
            qids[0]: _v1_record(qids[0], "old@example.com", ["one@remote.example"], sizes[0], now - 60),
            qids[1]: _v1_record(qids[1], "old2@example.com", ["two@remote.example", "three@remote.example"],
                                sizes[1], now - 59),
        }
        _write_v1_index(index, records)
        for name in [index] + [os.path.join(index, f) for f in os.listdir(index)]:
            os.chown(name, st.st_uid, st.st_gid)
        # mailq reads a layout-1 index in place while queue-mgr is down
        r = inst.mailq("-j")
        if r.returncode != 0 or r.stdout.decode().count('"queue_id"') != 2:
            raise AssertionError("mailq -j on the layout-1 index: %d %r %r"
                                 % (r.returncode, r.stdout[:300], r.stderr[:300]))
        since = inst.log_size()
        inst.start()
        inst.wait_log(r"migrated 2 message\(s\) from layout 1 to 2", since=since,
                      what="queue-mgr's log line for the migration")
        q = {e["queue_id"]: e for e in inst.queue()}
        if set(q) != set(qids):
            raise AssertionError("after migration the queue is %r, want %r" % (sorted(q), qids))
        if q[qids[0]]["sender"] != "old@example.com" or \
                [x["address"] for x in q[qids[1]]["recipients"]] != ["two@remote.example", "three@remote.example"]:
            raise AssertionError("migrated records changed: %r" % q)
        if q[qids[1]]["message_size"] != sizes[1]:
            raise AssertionError("migrated size %r, want %d" % (q[qids[1]]["message_size"], sizes[1]))
        # a restart finds layout 2 and migrates nothing
        since = inst.log_size()
        inst.stop()
        inst.start()
        if "migrated" in inst.log_since(since):
            raise AssertionError("a second start migrated again:\n%s" % inst.log_since(since))
        if inst.queue_ids() != set(qids):
            raise AssertionError("the migrated queue did not survive a restart")
