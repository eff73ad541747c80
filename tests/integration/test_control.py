"""
Queue control: posternctl show, delete (ids, ALL, -s, -r, and `-` fed by
`mailq -j`), hold/release (mailq's '!'), requeue, stats; the metrics
endpoint (checked by promtool, or by python3-prometheus-client's parser,
when installed); who may control (root, admin_group by primary or
supplementary group; others refused) and who may list (mailq_public = no:
a user sees only the mail that user submitted); a delete while a delivery
is in flight (the late result is dropped, the file goes once the job
ends); garbage on the control socket; a client that vanishes mid-listing;
a message whose record is larger than one frame.

The instances run without a deliver process (test_sched's FakeDeliver is
queue-mgr's only deliver when a test needs one), so mail stays queued.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request

import harness
from test_sched import FakeDeliver, connect_as_deliver, instance, RCPT_DEFERRED
from test_resolver import frame, f_str, f_u64, parse_fields

Q_ERROR, Q_LIST, Q_LIST_ITEM, Q_LIST_END = 6, 7, 8, 9
Q_DELETE, Q_DONE = 121, 126
T_QID, T_CODE, T_COUNT = 1, 2, 5
CONTROL_SOCK = "queue/control.sock"

EX_DATAERR, EX_NOPERM, EX_USAGE = 65, 77, 64


def ctl(inst, *args, stdin=None, ok=(0,), **kw):
    r = inst.run_tool("posternctl", ["-c", inst.conf_path] + list(args), stdin=stdin, **kw)
    if ok is not None and r.returncode not in ok:
        raise AssertionError("posternctl %s: exit %d: %s %s" % (" ".join(args), r.returncode,
                                                                  r.stdout.decode(errors="replace"),
                                                                  r.stderr.decode(errors="replace")))
    return r


def mailq_text(inst):
    return inst.mailq_text()


def marked(inst, qid):
    """The id as mailq's text prints it, mark included."""
    m = re.search(r"^(%s[*!]?)\s" % qid, mailq_text(inst), re.M)
    return m.group(1) if m else None


def test_hold_release_show():
    with instance("ctl-hold") as inst:
        body = b"Subject: show me\r\n\r\nshow-token-\x1b[31m-end\r\n"
        qid = inst.send(rcpts=["a@hold.example", "b@hold.example"], body=body)
        assert "Queue:       incoming" in ctl(inst, "show", qid).stdout.decode()
        off = inst.log_size()
        r = ctl(inst, "hold", qid)
        assert b"Placed on hold: 1 message" in r.stdout, r.stdout
        inst.wait_log(r"%s: held \(by uid \d+\)" % qid, since=off)
        assert marked(inst, qid) == qid + "!", mailq_text(inst)
        assert inst.queue_entry(qid)["queue_name"] == "hold"
        assert "Queue:       hold" in ctl(inst, "show", qid).stdout.decode()
        # a held message is not handed to a deliver that asks
        d = FakeDeliver(inst)
        d.want()
        d.no_job(1.5)
        r = ctl(inst, "release", qid)
        assert b"Released from hold: 1 message" in r.stdout, r.stdout
        job = d.job(timeout=10)
        assert job and job["qid"] == qid, job
        inst.wait_log(r"%s: released \(by uid \d+\)" % qid, since=off)
        r = ctl(inst, "show", qid)
        out = r.stdout.decode()
        assert "Queue ID:    %s" % qid in out, out
        assert "<a@hold.example> pending" in out and "<b@hold.example> pending" in out, out
        assert "Queue:       active" in out, out
        assert "-- message --" in out and "show-token-?[31m-end\n" in out, out
        assert "\x1b" not in out and "\r" not in out
        # not queued: 5xx refusal, EX_DATAERR; a bad id is a usage error
        r = ctl(inst, "show", "ABCDEFGHJKLM", ok=(EX_DATAERR,))
        assert b"no such message" in r.stderr, r.stderr
        ctl(inst, "show", "x;y", ok=(EX_USAGE,))
        d.close()


def test_delete_ids_stdin_and_selectors():
    with instance("ctl-delete") as inst:
        a = inst.send(sender="alice@example.com", rcpts=["x@one.example"])
        b = inst.send(sender="bob@example.com", rcpts=["y@two.example"])
        c = inst.send(sender="bob@example.com", rcpts=["z@three.example"])
        d = inst.send(sender="carol@example.com", rcpts=["w@four.example", "y@two.example"])
        e = inst.send(sender="dave@example.com", rcpts=["v@five.example"])
        f = inst.send(sender="erin@example.com", rcpts=["u@six.example"])
        assert inst.queue_ids() == {a, b, c, d, e, f}
        off = inst.log_size()
        # by id, with one not queued: the other goes, exit EX_DATAERR
        r = ctl(inst, "delete", a, "ABCDEFGHJKLM", ok=(EX_DATAERR,))
        assert b"Deleted: 1 message" in r.stdout, r.stdout
        inst.wait_log(r"%s: removed \(deleted by uid 0\)" % a, since=off)
        assert not os.path.exists(inst.spool_file(a))
        # by sender (case does not matter)
        r = ctl(inst, "delete", "-s", "BOB@example.com")
        assert b"Deleted: 2 messages" in r.stdout, r.stdout
        # by recipient
        r = ctl(inst, "delete", "-r", "y@two.example")
        assert b"Deleted: 1 message" in r.stdout, r.stdout
        assert inst.queue_ids() == {e, f}
        # mailq -j | jq -r .queue_id | posternctl delete -
        ids = "".join(x["queue_id"] + "\n" for x in inst.queue() if x["queue_id"] == e)
        r = subprocess.run([harness.binary("posternctl"), "-c", inst.conf_path, "delete", "-"],
                           input=ids.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=harness.daemon_env(), timeout=30)
        assert r.returncode == 0 and b"Deleted: 1 message" in r.stdout, (r.returncode, r.stdout, r.stderr)
        assert inst.queue_ids() == {f}
        # mailq's text with its marks works too
        ctl(inst, "hold", f)
        text_ids = "\n".join(l.split()[0] for l in mailq_text(inst).splitlines()[1:] if l[:1].isalnum())
        r = subprocess.run([harness.binary("posternctl"), "-c", inst.conf_path, "requeue", "-"],
                           input=text_ids.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=harness.daemon_env(), timeout=30)
        assert r.returncode == 0 and b"Requeued: 1 message" in r.stdout, (text_ids, r.stdout, r.stderr)
        g = inst.send(rcpts=["t@seven.example"])
        r = ctl(inst, "delete", "ALL")
        assert b"Deleted: 2 messages" in r.stdout, r.stdout
        assert inst.queue() == []
        assert "Mail queue is empty" in mailq_text(inst)
        for q in (f, g):
            assert not os.path.exists(inst.spool_file(q)), q
        ctl(inst, "delete", "-x", ok=(EX_USAGE,))


def test_delete_while_in_flight_and_requeue():
    with instance("ctl-inflight", min_backoff="600s", max_backoff="3600s") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["x@flight.example"])
        d.want()
        job = d.job()
        assert job["qid"] == qid
        assert marked(inst, qid) == qid + "*"
        off = inst.log_size()
        ctl(inst, "delete", qid)
        inst.wait_log(r"%s: removed \(deleted by uid 0\)" % qid, since=off)
        assert qid not in inst.queue_ids()
        # the deliver still reads the file: it stays until the job ends
        assert os.path.exists(inst.spool_file(qid)), "spool file removed while a delivery reads it"
        d.all_sent(job)
        harness.wait_until(lambda: not os.path.exists(inst.spool_file(qid)), 10,
                           "the spool file removed once the job ended")
        assert qid not in inst.queue_ids()
        assert inst.alive()
        # requeue: a deferred message is due now, not in ten minutes
        q2 = inst.send(rcpts=["y@later.example"])
        d.want()
        j2 = d.job()
        d.result(j2, [(j2["rcpts"][0]["index"], RCPT_DEFERRED, "4.4.1", "451 4.4.1 later")])
        harness.wait_until(lambda: inst.queue_entry(q2)["queue_name"] == "deferred", 10, "deferred")
        d.want()
        d.no_job(1.5)
        r = ctl(inst, "requeue", q2)
        assert b"Requeued: 1 message" in r.stdout, r.stdout
        j3 = d.job(timeout=10)
        assert j3 and j3["qid"] == q2, j3
        assert inst.wait_log(r"%s: requeued \(by uid 0\)" % q2, since=off)
        d.close()


def _promcheck(text):
    """promtool check metrics when installed, else the Python client's parser."""
    tool = shutil.which("promtool")
    if tool:
        r = subprocess.run([tool, "check", "metrics"], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(), r.stderr.decode())
        return "promtool"
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        harness.note("neither promtool nor prometheus_client: the metrics text is checked by shape only")
        for line in text.decode().splitlines():
            assert line.startswith("#") or re.match(r'^[a-z_:][a-z0-9_:]*(\{[^}]*\})? [0-9.e+Inf-]+$', line), line
        return "shape"
    list(text_string_to_metric_families(text.decode()))
    return "parser"


def _metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^%s(?:\{([^}]*)\})? (\S+)$" % re.escape(name), line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return None


def test_stats_and_metrics_endpoint():
    port = harness.free_port()
    with instance("ctl-metrics", metrics_listen="127.0.0.1:%d" % port) as inst:
        q1 = inst.send(rcpts=["a@m1.example", "b@m1.example"])
        q2 = inst.send(rcpts=["c@m2.example"])
        ctl(inst, "hold", q2)
        d = FakeDeliver(inst)
        d.want()
        job = d.job()
        d.result(job, [(r["index"], RCPT_DEFERRED, "4.4.1", "451 later") for r in job["rcpts"]])
        harness.wait_until(lambda: inst.queue_entry(q1)["queue_name"] == "deferred", 10, "deferred")
        url = "http://127.0.0.1:%d/metrics" % port
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = resp.read()
        how = _promcheck(text)
        t = text.decode()
        assert _metric(t, "postern_queue_messages", state="hold") == 1, t
        assert _metric(t, "postern_queue_messages", state="deferred") == 1, t
        assert _metric(t, "postern_queue_recipients", state="deferred") == 2, t
        assert _metric(t, "postern_queue_recipients", state="held") == 1, t
        assert _metric(t, "postern_deliveries_total", status="deferred", destination="m1.example") == 2, t
        assert _metric(t, "postern_received_messages_total", tls="no", auth="no") >= 2, t
        assert _metric(t, "postern_rate_last_minute", event="received") >= 2, t
        assert _metric(t, "postern_commit_batch_messages_count") >= 1, t
        assert _metric(t, "postern_queue_domain_recipients", domain="m1.example") == 2, t
        # posternctl stats: the same figures
        r = ctl(inst, "stats", "-p")
        assert _metric(r.stdout.decode(), "postern_queue_messages", state="hold") == 1
        r = ctl(inst, "stats")
        assert re.search(r'^postern_queue_messages\{state="hold"\}\s+1$', r.stdout.decode(), re.M), r.stdout
        # anything but GET /metrics
        for req, code in ((b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b" 405 "),
                          (b"GET /other HTTP/1.1\r\n\r\n", b" 404 "),
                          (b"\x00\x01garbage\r\n\r\n", b" 400 "),
                          (b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b" 400 ")):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            assert got.startswith(b"HTTP/1.1") and code in got.split(b"\r\n")[0], (req, got[:100])
        # a request head that never ends is cut off at its bound
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(b"GET /" + b"a" * 5000)
            got = s.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            got = b"HTTP/1.1 400"
        s.close()
        assert b" 400 " in got + b" ", got
        assert inst.alive()
        # a role killed is restarted by the master and counted
        pid = inst.pids("smtpd")[0]
        os.kill(pid, signal.SIGKILL)

        def restarted():
            with urllib.request.urlopen(url, timeout=10) as resp:
                t = resp.read().decode()
            return _metric(t, "postern_process_restarts_total", role="smtpd") == 1 and t
        t = harness.wait_until(restarted, 30, "the smtpd restart counted in the metrics")
        assert _metric(t, "postern_process_restarts_total", role="queue-mgr") == 0, t
        harness.note("metrics text checked by %s" % how)
        d.close()


def test_permissions_admin_group_and_mailq_public():
    if not harness.IS_ROOT:
        raise harness.Skip("needs root to run the tools as other accounts")
    smtpd_uid = harness.ACCOUNTS["smtpd"][0]
    nobody = 65534
    with instance("ctl-perm", admin_group="nogroup", mailq_public="no") as inst:
        qid = inst.send(rcpts=["x@perm.example"])
        # not root, not in admin_group: refused, and nothing happened
        r = inst.run_tool("posternctl", ["-c", inst.conf_path, "hold", qid],
                          user=smtpd_uid, group=smtpd_uid, extra_groups=[])
        assert r.returncode == EX_NOPERM, (r.returncode, r.stderr)
        assert b"permission denied" in r.stderr
        r = inst.run_tool("posternctl", ["-c", inst.conf_path, "stats"],
                          user=smtpd_uid, group=smtpd_uid, extra_groups=[])
        assert r.returncode == EX_NOPERM, (r.returncode, r.stderr)
        assert inst.queue_entry(qid)["queue_name"] != "hold"
        # admin_group as a supplementary group: allowed
        r = inst.run_tool("posternctl", ["-c", inst.conf_path, "hold", qid],
                          user=smtpd_uid, group=smtpd_uid, extra_groups=[nobody])
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert inst.queue_entry(qid)["queue_name"] == "hold"
        # mailq_public = no: a user sees only its own (pickup) mail
        p = subprocess.run([harness.public_binary("sendmail"), "-f", "me@example.com", "own@perm.example"],
                           input=b"Subject: mine\n\nmine\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=harness.daemon_env({"POSTERN_CONF": inst.conf_path}), timeout=30,
                           user=smtpd_uid, group=smtpd_uid, extra_groups=[])
        assert p.returncode == 0, p.stderr
        ids = inst.queue_ids()
        assert len(ids) == 2, ids
        mine = (ids - {qid}).pop()
        r = inst.run_tool("mailq", ["-c", inst.conf_path, "-j"], user=smtpd_uid, group=smtpd_uid, extra_groups=[])
        assert r.returncode == 0, r.stderr
        seen = set(re.findall(r'"queue_id": "([0-9A-Z]+)"', r.stdout.decode()))
        assert seen == {mine}, (seen, mine)
        r = inst.run_tool("mailq", ["-c", inst.conf_path, "-j"], user=smtpd_uid, group=smtpd_uid,
                          extra_groups=[nobody])
        seen = set(re.findall(r'"queue_id": "([0-9A-Z]+)"', r.stdout.decode()))
        assert seen == ids, seen


def _ctl_conn(inst):
    path = os.path.join(inst.run_dir, CONTROL_SOCK)
    if harness.IS_ROOT:
        return connect_as_deliver(path, 0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def _read_frame(s, buf, timeout=10):
    s.settimeout(timeout)
    while True:
        if len(buf) >= 16:
            _, mtype, _, ln, reqid = struct.unpack_from("<IHHII", buf)
            if len(buf) >= 16 + ln:
                return (mtype, reqid, buf[16:16 + ln]), buf[16 + ln:]
        chunk = s.recv(1 << 16)
        if not chunk:
            return None, buf
        buf += chunk


def test_control_socket_garbage_and_vanishing_client():
    with instance("ctl-garbage", max_recipients="1000") as inst:
        rcpts = ["recipient-with-a-rather-long-name-%04d@vanish.example" % i for i in range(300)]
        for _ in range(12):
            inst.send(rcpts=rcpts)
        # garbage: disconnected, queue-mgr lives on
        for junk in (b"\x00" * 64, b"GET / HTTP/1.0\r\n\r\n", frame(200, [], 1)):
            s = _ctl_conn(inst)
            s.sendall(junk)
            got, _ = _read_frame(s, b"")
            assert got is None, "queue-mgr answered garbage %r with %r" % (junk, got)
            s.close()
        # a bad id in a request: a 501 refusal, the connection stays usable
        s = _ctl_conn(inst)
        s.sendall(frame(Q_DELETE, [f_str(T_QID, "bad id")], 5))
        got, buf = _read_frame(s, b"")
        assert got and got[0] == Q_ERROR and got[1] == 5, got
        code = dict(parse_fields(got[2]))[T_CODE]
        assert code.startswith(b"501"), code
        # both ALL and an id: refused
        s.sendall(frame(Q_DELETE, [f_str(T_QID, "ABCDEFGHJKLM"), f_u64(161, 1)], 6))
        got, buf = _read_frame(s, buf)
        assert got and got[0] == Q_ERROR, got
        s.close()
        # a listing read a little and then abandoned, many times over
        for _ in range(5):
            s = _ctl_conn(inst)
            s.sendall(frame(Q_LIST, [], 9))
            got, _ = _read_frame(s, b"")
            assert got and got[0] == Q_LIST_ITEM, got
            s.close()
        assert inst.alive()
        q = inst.queue()
        assert len(q) == 12 and all(len(e["recipients"]) == 300 for e in q), [len(e["recipients"]) for e in q]


def test_record_larger_than_a_frame_is_listed():
    """A message whose record does not fit in one frame (the old limit of
    one Q_LIST_ITEM): 3,000 recipients, each with a long last reply."""
    n = 3000
    with instance("ctl-large", max_recipients=str(n)) as inst:
        rcpts = ["r%05d@large.example" % i for i in range(n)]
        qid = inst.send(rcpts=rcpts)
        d = FakeDeliver(inst)
        reply = "451 4.4.1 " + "x" * 480
        left = n
        while left > 0:
            d.want()
            job = d.job(timeout=20)
            assert job, "no job with %d recipients left" % left
            d.result(job, [(r["index"], RCPT_DEFERRED, "4.4.1", reply) for r in job["rcpts"]])
            left -= len(job["rcpts"])

        def all_deferred():
            e = inst.queue_entry(qid)
            return e and len(e["recipients"]) == n and all(r.get("delay_reason") == reply for r in e["recipients"])
        harness.wait_until(all_deferred, 60, "all %d recipients deferred with the long reply" % n)
        text = mailq_text(inst)
        assert text.count("@large.example") == n, text.count("@large.example")
        r = ctl(inst, "show", qid)
        assert r.stdout.decode().count("@large.example>") == n
        d.close()
