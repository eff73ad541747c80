"""
Durability: 200 messages from 10 smtplib clients while queue-mgr and then an
smtpd worker are killed with SIGKILL. Every message that got `250 ... queued
as ID` must be in the queue afterwards, under that id, exactly once; no
queue id and no message token appears twice.
"""

import collections
import os
import re
import signal
import smtplib
import threading
import time

import harness

THREADS = 10
PER_THREAD = 100 if os.environ.get("LONG") == "1" else 20     # make test-long: 1000 messages
TOTAL = THREADS * PER_THREAD
QUEUED = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Z]{12,})$")


def _load(inst, results, lock, stop, hooks=None):
    """hooks: {n: fn}; the worker that records the n-th attempt calls fn()
    right there, so a kill lands inside the load however fast it runs."""
    def worker(t):
        conn = None
        for i in range(PER_THREAD):
            if stop.is_set():
                return
            tok = "load-%d-%d" % (t, i)
            sender = tok + "@example.com"
            msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@load.example>\r\n\r\n"
                   "load message %s\r\n" % (sender, harness.REMOTE_RCPT, tok, tok, tok)).encode()
            res = {"token": tok, "ok": False, "qid": None, "why": None, "t": None}
            try:
                if conn is None:
                    conn = smtplib.SMTP(harness.LOCALHOST, inst.p_smtp, local_hostname="load.example", timeout=15)
                    conn.ehlo()
                code, resp = conn.mail(sender)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, resp)
                code, resp = conn.rcpt(harness.REMOTE_RCPT)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, resp)
                code, resp = conn.data(msg)
                text = resp.decode("latin-1")
                if code == 250:
                    m = QUEUED.match(text)
                    if not m:
                        res["why"] = "250 without a queue id: %r" % text
                    else:
                        res["ok"], res["qid"] = True, m.group(1)
                else:
                    res["why"] = "%d %s" % (code, text)
                    raise smtplib.SMTPResponseException(code, resp)
            except (smtplib.SMTPException, OSError) as e:
                res["why"] = res["why"] or repr(e)
                if isinstance(e, smtplib.SMTPResponseException):
                    res["reply"] = "%d %s" % (e.smtp_code, e.smtp_error.decode("latin-1"))
                try:
                    if conn is not None:
                        conn.close()
                except OSError:
                    pass
                conn = None
                stop.wait(0.2)      # a short back-off before the next message's fresh connection
            res["t"] = time.monotonic()
            with lock:
                results.append(res)
                n = len(results)
            if hooks and n in hooks:
                hooks[n]()
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for th in threads:
        th.start()
    return threads


def _try_send(inst):
    try:
        return inst.send()
    except (AssertionError, OSError, harness.Closed):
        return None


def _stats(results):
    oks = sum(1 for r in results if r["ok"])
    failures = collections.Counter((r["why"] or "")[:60] for r in results if not r["ok"])
    return "%d of %d accepted; failures: %s" % (oks, len(results), dict(failures.most_common(4)))


def _ok_count(results, lock, since=0.0):
    with lock:
        return sum(1 for r in results if r["ok"] and r["t"] >= since)


def _no_damage(inst, entries):
    """A kill -9 leaves the page cache whole: reconciliation must find
    every committed message intact (nothing held as damaged, nothing cut)."""
    held = [e["queue_id"] for e in entries if e["queue_name"] == "hold"]
    if held:
        raise AssertionError("messages held after a kill -9: %s" % held[:5])
    log = inst.log_text()
    for bad in ("DAMAGED MESSAGE", "truncated back"):
        if bad in log:
            line = [l for l in log.splitlines() if bad in l][0]
            raise AssertionError("reconciliation after a kill -9 found damage: %s" % line)


def test_kill9_queue_mgr_and_smtpd_during_load():
    with harness.Instance("load") as inst:
        qm = inst.pids("queue-mgr")
        sm = inst.pids("smtpd")
        if len(qm) != 1 or len(sm) < 1:
            raise AssertionError("expected one queue-mgr and smtpd workers, children: %r" % inst.children())
        results, lock, stop = [], threading.Lock(), threading.Event()
        killed = {}

        def kill_queue_mgr():
            os.kill(qm[0], signal.SIGKILL)
            killed["queue-mgr"] = qm[0]

        def kill_smtpd():
            pids = inst.pids("smtpd")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed["smtpd"] = pids[0]
                killed["t_smtpd"] = time.monotonic()

        # Kill points by messages attempted (not accepted), taken by the
        # load's own threads, so that both kills land inside the load.
        threads = _load(inst, results, lock, stop,
                        {TOTAL // 5: kill_queue_mgr, TOTAL * 3 // 5: kill_smtpd})
        try:
            harness.wait_until(lambda: not any(th.is_alive() for th in threads), 300,
                               "the %d load clients to finish" % THREADS)
            if "queue-mgr" not in killed or "smtpd" not in killed:
                raise AssertionError("a kill point was not reached: %r; %s" % (killed, _stats(results)))
            victim = killed["smtpd"]
            t_skill = killed["t_smtpd"]
        finally:
            stop.set()
            for th in threads:
                th.join(20)
        # the master restarts what was killed, and mail flows again
        harness.wait_until(lambda: [p for p in inst.pids("queue-mgr") if p != qm[0]], 30,
                           "a new queue-mgr after the kill -9")
        harness.wait_until(lambda: victim not in inst.pids("smtpd") and len(inst.pids("smtpd")) == len(sm), 30,
                           "smtpd workers back to %d after the kill -9" % len(sm))
        inst.wait_ready(30)
        final = harness.wait_until(lambda: _try_send(inst), 30, "a message to be accepted after the restarts")

        oks = [r for r in results if r["ok"]]
        after_kill = [r for r in oks if r["t"] > t_skill]
        if len(results) != THREADS * PER_THREAD:
            raise AssertionError("only %d of %d messages attempted" % (len(results), THREADS * PER_THREAD))
        q = inst.queue()
        ids = [e["queue_id"] for e in q]
        dup_ids = [i for i, n in collections.Counter(ids).items() if n > 1]
        if dup_ids:
            raise AssertionError("queue ids listed twice: %s" % dup_ids[:5])
        by_id = {e["queue_id"]: e for e in q}
        senders = collections.Counter(e["sender"] for e in q if e["sender"].startswith("load-"))
        dup_tok = [s for s, n in senders.items() if n > 1]
        if dup_tok:
            raise AssertionError("messages queued twice: %s" % dup_tok[:5])
        ok_ids = collections.Counter(r["qid"] for r in oks)
        dup_reply = [i for i, n in ok_ids.items() if n > 1]
        if dup_reply:
            raise AssertionError("the same queue id was given to two messages: %s" % dup_reply[:5])
        lost = [r for r in oks if r["qid"] not in by_id]
        if lost:
            raise AssertionError("%d messages got 250 but are not in the queue, e.g. %s as %s"
                                 % (len(lost), lost[0]["token"], lost[0]["qid"]))
        wrong = [r for r in oks if by_id[r["qid"]]["sender"] != r["token"] + "@example.com"]
        if wrong:
            r = wrong[0]
            raise AssertionError("queue id %s was given for %s but holds mail from %s"
                                 % (r["qid"], r["token"], by_id[r["qid"]]["sender"]))
        # an SMTP-level refusal during the kills is the documented one
        odd = [r for r in results if r.get("reply") and r["reply"] != "451 4.3.0 Error: queue file write error"]
        if odd:
            raise AssertionError("%d refusals other than '451 4.3.0 Error: queue file write error', e.g. %r"
                                 % (len(odd), odd[0]["reply"]))
        if final not in by_id:
            raise AssertionError("the message accepted after the restarts (%s) is not in the queue" % final)
        _no_damage(inst, q)
        harness.note("load: %s; %d accepted after the smtpd kill" % (_stats(results), len(after_kill)))


test_kill9_queue_mgr_and_smtpd_during_load.timeout = 600


def test_queue_survives_restart():
    """Mail accepted before a full stop is still queued after a new start."""
    with harness.Instance("restart") as inst:
        ids = [inst.send() for _ in range(3)]
        inst.stop()
        inst.start()
        q = inst.queue_ids()
        missing = [i for i in ids if i not in q]
        if missing:
            raise AssertionError("queued before the restart, gone after: %s" % missing)
        # new ids still sort after the old ones
        new = inst.send()
        if not new > max(ids):
            raise AssertionError("queue id %s after a restart does not sort after %s" % (new, max(ids)))


def test_queue_survives_kill9_of_master_group():
    """kill -9 of every Postern process: all accepted mail is still there."""
    inst = harness.Instance("killall")
    inst.start()
    try:
        ids = [inst.send() for _ in range(5)]
        kids = [p for p, _ in inst.children()]
        os.kill(inst.pid, signal.SIGKILL)
        for p in kids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        inst.proc.wait(10)
        harness.wait_until(lambda: not any(harness.pid_alive(p) for p in kids), 10, "the killed children to go")
        inst.stop()
        inst.start()
        q = inst.queue_ids()
        missing = [i for i in ids if i not in q]
        if missing:
            raise AssertionError("lost after kill -9 of all processes: %s" % missing)
        _no_damage(inst, inst.queue())
    finally:
        inst.stop()
