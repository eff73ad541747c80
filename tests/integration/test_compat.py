"""
Compatibility with Postfix for existing scripts: `mailq` beside Postfix's
own mailq (postqueue -p and -j of a real private Postfix, postfixfix.py)
on the same queue contents: the same header, the same columns, the same
marks ('!' for a held message), the same summary line, the same exit
codes and JSON keys; and sendmail's -bp (= mailq), -q (= posternctl
flush), -bs (SMTP on standard input and output).

The Postfix instance here keeps its mail: no qmgr in its master.cf, so
accepted mail stays in its incoming queue, and showq answers postqueue.
"""

import json
import os
import re
import subprocess

import harness
import postfixfix
from test_sched import FakeDeliver, instance, RCPT_DEFERRED

POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"


class QueueingPostfix(postfixfix.Postfix):
    """A private Postfix that accepts mail for its domain and keeps it."""

    def main_cf(self):
        return super().main_cf() + "enable_long_queue_ids = yes\n"

    def master_cf(self):
        rows = [r for r in super().master_cf().splitlines() if not r.startswith("qmgr ")]
        rows.append("showq unix n - n - - showq")
        return "\n".join(rows) + "\n"

    def tool(self, path, *args):
        return subprocess.run([path, "-c", self.conf_dir] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)


def _send(port, sender, rcpts, subject):
    with harness.Client(port, banner=False) as c:
        assert str(c.reply()).startswith("220 "), "no greeting"
        assert str(c.cmd("EHLO client.example")).startswith("250"), "EHLO refused"
        c.mail_rcpt(sender, rcpts)
        body = ("Subject: %s\r\n\r\nsame body for both\r\n" % subject).encode()
        r = str(c.data(body))
        m = re.search(r"^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$", r)
        assert m, r
        qid = m.group(1)
        c.cmd("QUIT")
    return qid


MESSAGES = [
    ("alice@example.com", ["r1@cmp.example"], "one"),
    ("", ["r2@cmp.example", "r3@cmp.example"], "two"),
    ("carol@example.com", ["r4@cmp.example"], "three"),
]

MSG_RE = re.compile(r"^(\S+?)([*!]?)( +)(\d+) (.{19}) (\S+)$")


def _shape(text):
    """mailq text with the values that must differ (ids, sizes, times,
    Kbytes) taken out and everything else kept: per message, the mark,
    the column where each field starts, the sender and the recipient
    lines (indentation and address). Messages sorted by sender."""
    lines = text.splitlines()
    assert lines, "no output"
    head, msgs, cur, summary = lines[0], [], None, None
    for line in lines[1:]:
        m = MSG_RE.match(line)
        if m:
            cur = {"mark": m.group(2), "size_end": m.start(4) + len(m.group(4)),
                   "time_at": m.start(5), "sender_at": m.start(6), "sender": m.group(6), "rcpts": []}
            assert len(m.group(1)) + len(m.group(2)) + len(m.group(3)) + len(m.group(4)) == 26, line
            msgs.append(cur)
        elif line.startswith("-- "):
            summary = re.sub(r"^-- \d+ Kbytes", "-- N Kbytes", line)
        elif line.strip() and cur is not None:
            cur["rcpts"].append((len(line) - len(line.lstrip()), line.strip()))
    return head, sorted(msgs, key=lambda x: x["sender"]), summary


def test_mailq_matches_postfix_on_the_same_queue():
    if not postfixfix.available() or not os.access(POSTQUEUE, os.X_OK):
        raise harness.Skip("postfix is not installed (scripts/deps installs it)")
    pf = QueueingPostfix(domain="cmp.example", name="pf-mailq", tls=False)
    with pf:
        with instance("compat-mailq") as inst:
            # empty queues: the same text, both exit 0
            p = pf.tool(POSTQUEUE, "-p")
            r = inst.mailq()
            assert p.returncode == r.returncode == 0, (p.returncode, r.returncode, p.stderr)
            assert p.stdout == r.stdout == b"Mail queue is empty\n", (p.stdout, r.stdout)
            pq, ours = [], []
            for sender, rcpts, subj in MESSAGES:
                pq.append(_send(pf.port, sender, rcpts, subj))
                ours.append(_send(inst.p_smtp, sender, rcpts, subj))
            h = pf.tool(POSTSUPER, "-h", pq[2])
            assert h.returncode == 0, h.stderr
            assert inst.posternctl("hold", ours[2]).returncode == 0

            def both():
                p = pf.tool(POSTQUEUE, "-p")
                r = inst.mailq()
                return (p, r) if p.stdout.count(b"@cmp.example") == 4 and b"!" in p.stdout else None
            p, r = harness.wait_until(both, 20, "Postfix's mailq to list its three messages")
            assert p.returncode == r.returncode == 0
            ps, rs = _shape(p.stdout.decode()), _shape(r.stdout.decode())
            assert ps == rs, "mailq differs from Postfix's:\nPostfix:\n%s\nPostern:\n%s" % (
                p.stdout.decode(), r.stdout.decode())
            # postqueue -j: the same keys, the same queue names
            pj = [json.loads(l) for l in pf.tool(POSTQUEUE, "-j").stdout.decode().splitlines()]
            rj = inst.queue()
            assert sorted(sorted(x) for x in pj) == sorted(sorted(x) for x in rj), (pj, rj)
            assert sorted(x["queue_name"] for x in pj) == sorted(x["queue_name"] for x in rj), (pj, rj)
            assert sorted((x["sender"], [y["address"] for y in x["recipients"]]) for x in pj) == \
                sorted((x["sender"], [y["address"] for y in x["recipients"]]) for x in rj)


def test_mailq_exit_codes():
    """Bad usage 64 (EX_USAGE); the queue manager down: read the index, exit 0
    (Postfix's postqueue reads the queue directly too)."""
    with instance("compat-exit") as inst:
        assert inst.mailq("-x").returncode == 64
        assert inst.mailq("extra").returncode == 64
        qid = inst.send(rcpts=["x@exit.example"])
        inst.stop()
        r = inst.mailq()
        assert r.returncode == 0 and qid.encode() in r.stdout, r
        assert b"accessing queue directly" in r.stderr, r.stderr


def _sendmail(inst, args, data=b"", **kw):
    return subprocess.run([harness.binary("sendmail"), "-C", inst.conf_path] + list(args), input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=harness.daemon_env(),
                          timeout=60, **kw)


def test_sendmail_bp_q_bs():
    with instance("compat-sendmail", min_backoff="600s", max_backoff="3600s") as inst:
        qid = inst.send(rcpts=["x@bp.example"])
        # -bp is mailq
        r = _sendmail(inst, ["-bp"])
        assert r.returncode == 0 and r.stdout == inst.mailq().stdout, (r.returncode, r.stdout, r.stderr)
        # -q is a flush: a deferred recipient goes again now
        d = FakeDeliver(inst)
        d.want()
        job = d.job()
        d.result(job, [(job["rcpts"][0]["index"], RCPT_DEFERRED, "4.4.1", "451 later")])
        harness.wait_until(lambda: inst.queue_entry(qid)["queue_name"] == "deferred", 10, "deferred")
        d.want()
        d.no_job(1.0)
        r = _sendmail(inst, ["-q"])
        assert r.returncode == 0 and b"1 recipient" in r.stdout, (r.returncode, r.stdout, r.stderr)
        again = d.job(timeout=10)
        assert again and again["qid"] == qid, again
        r = _sendmail(inst, ["-q30m"])
        assert r.returncode == 0, r.stderr
        # -bs: SMTP on standard input and output, pipelined
        dialog = (b"EHLO client.example\r\nMAIL FROM:<bs@example.com> BODY=8BITMIME\r\n"
                  b"RCPT TO:<one@bs.example>\r\nRCPT TO:<bad address>\r\nDATA\r\n"
                  b"Subject: over -bs\r\n\r\n..a dot line\r\nlast\r\n.\r\n"
                  b"MAIL FROM:<>\r\nRCPT TO:<two@bs.example>\r\nRSET\r\nNOOP\r\nBOGUS\r\nQUIT\r\n")
        r = _sendmail(inst, ["-bs"], dialog)
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        codes = [l[:3] for l in out.split("\r\n") if l and l[3:4] == " "]
        assert codes == ["220", "250", "250", "250", "501", "354", "250", "250", "250", "250", "250",
                         "502", "221"], out
        m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]{12})", out)
        assert m, out
        bs = m.group(1)
        e = inst.queue_entry(bs)
        assert e and e["sender"] == "bs@example.com" and [x["address"] for x in e["recipients"]] == ["one@bs.example"], e
        data = inst.read_spool(bs)
        assert b"\r\n.a dot line\r\nlast\r\n" in data and data.startswith(b"Received: "), data
        assert data.count(b"Subject: over -bs") == 1
        # EOF in the middle of DATA queues nothing
        before = inst.queue_ids()
        r = _sendmail(inst, ["-bs"], b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@bs.example>\r\nDATA\r\npartial\r\n")
        assert r.returncode == 0
        assert inst.queue_ids() == before
        d.close()
