"""
Reload, stop and restart (issue 10, part 4).

- Under load: Postfix's smtp-source sends 2,000 messages over 10 sessions
  kept open (-d) while `postern reload` applies a changed configuration and
  map: every message is accepted (2,000 distinct queue ids in the log and
  in the queue), smtp-source reports no error, no session is cut, and the
  old smtpd generation drains.
- A broken configuration, a certificate that does not load, a bad map
  line: `postern reload` / `posternctl reload-maps` exit 1 with the reason
  on the terminal and in the log, and the running configuration stays.
- `postern stop`: an idle session gets 421; one in the middle of DATA may
  finish it within stop_timeout and gets its 250; nothing accepted is lost
  (the next start lists it).
- The systemd protocol: READY=1 once every role is up, RELOADING=1 then
  READY=1 around a reload, STOPPING=1 at stop, on $NOTIFY_SOCKET.
- A new queue-mgr binary is picked up by a reload (queue-mgr restarts onto
  it; the queue stays), and a restart onto new binaries keeps the queue.
"""

import os
import re
import shutil
import socket
import subprocess
import time

import harness

SMTP_SOURCE = "/usr/sbin/smtp-source"


def _postern(inst, *args, timeout=150):
    r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def _queued_ids(text):
    return re.findall(r"postern/queue-mgr\[\d+\]: ([0-9A-Z]{12,}): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)",
                      text)


def test_reload_under_load():
    if not os.access(SMTP_SOURCE, os.X_OK):
        raise harness.Skip("no %s (Debian package postfix)" % SMTP_SOURCE)
    inst = harness.Instance("reloadload", smtpd_processes="2")
    with inst:
        inst.wait_log(r"ready: every process is up", timeout=60)
        since = inst.log_size()
        src = subprocess.Popen(
            [SMTP_SOURCE, "-d", "-s", "10", "-m", "2000", "-l", "4000", "-f", "load@client.example",
             "-t", harness.REMOTE_RCPT, "-M", "client.example", "%s:%d" % (harness.LOCALHOST, inst.p_smtp)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # the reload lands in the middle: some accepted, smtp-source still sending
            harness.wait_until(lambda: len(_queued_ids(inst.log_since(since))) >= 200 or src.poll() is not None,
                               120, "200 messages accepted")
            assert src.poll() is None, "smtp-source finished before the reload could land in the middle"
            before = len(_queued_ids(inst.log_since(since)))
            # a changed configuration and map
            with open(inst.mailboxes_file, "a") as f:
                f.write("newuser@localhost\n")
            inst.write_config(max_recipients="500")
            rc, out, err = _postern(inst, "reload")
            assert rc == 0, "postern reload exited %d: %s%s" % (rc, out, err)
            assert "postern: reloaded: " in out and "maps:" in out, out
            during = src.poll() is None
            o, e = src.communicate(timeout=300)
        finally:
            if src.poll() is None:
                src.kill()
                src.wait()
        assert src.returncode == 0 and not e.strip(), \
            "smtp-source exit %d: %s" % (src.returncode, e.decode(errors="replace")[-2000:])
        assert during and before < 2000, "the reload did not happen during the load (%d accepted before)" % before
        log = inst.log_since(since)
        ids = _queued_ids(log)
        assert len(ids) == 2000 and len(set(ids)) == 2000, "%d accepted (%d distinct), want 2000" % (len(ids), len(set(ids)))
        # smtp-source may exit on the 221 before smtpd has logged the end
        def sessions():
            got = re.findall(r"disconnect from \S+ helo=1 mail=(\d+) rcpt=\d+ data=\d+ quit=1 commands=\d+$",
                             inst.log_since(since), re.M)
            return got if len(got) >= 10 else None
        try:
            ended = harness.wait_until(sessions, 30, "10 sessions to end with QUIT")
        except TimeoutError:
            ended = re.findall(r"disconnect from \S+ helo=1 mail=(\d+) rcpt=\d+ data=\d+ quit=1", inst.log_since(since))
        assert len(ended) == 10 and sum(int(n) for n in ended) == 2000, \
            "want 10 sessions that ended with QUIT after 2000 messages in all, got %r" % ended
        log = inst.log_since(since)
        # (the harness's readiness probes connect and leave: "after CONNECT")
        for bad in (r"lost connection after (?!CONNECT)", r"421 ", r"timeout after", r"Service shutting down"):
            m = re.search(bad, log)
            assert not m, "a session was cut (%r in the log)" % m.group(0)
        inst.wait_log(r"smtpd: \d+ old process\(es\) finish their sessions and exit", since=since, timeout=30)
        # the old generation exited only after its sessions ended, and the new one serves
        harness.wait_until(lambda: len(inst.pids("smtpd")) == 2, 60, "the old smtpd generation to exit")
        queue = set(q["queue_id"] for q in inst.queue())
        missing = set(ids) - queue
        assert not missing, "%d accepted message(s) not in the queue, e.g. %s" % (len(missing), sorted(missing)[:3])
        # the new configuration and map are in force
        with harness.Client(inst.p_smtp) as c:
            c.ehlo()
            harness.expect(c.cmd("MAIL FROM:<a@client.example>"), code=250)
            harness.expect(c.cmd("RCPT TO:<newuser@localhost>"), code=250)


test_reload_under_load.timeout = 420


def test_reload_broken_config_refused():
    inst = harness.Instance("reloadbad")
    with inst:
        good = open(inst.conf_path).read()
        since = inst.log_size()
        with open(inst.conf_path, "a") as f:
            f.write("no_such_key = 1\n")
        rc, out, err = _postern(inst, "reload")
        assert rc == 1, "reload of a broken file exited %d: %s%s" % (rc, out, err)
        assert re.search(r"reload refused: .*postern\.conf:\d+: .*no_such_key", err), err
        inst.wait_log(r"postern/master\[\d+\]: error: reload failed: .*no_such_key.*keeping the running configuration",
                      since=since)
        # a certificate that does not load
        bad = os.path.join(inst.dir, "bad-cert.pem")
        with open(bad, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        os.chmod(bad, 0o644)
        with open(inst.conf_path, "w") as f:
            f.write(good.replace(inst.cert, bad))
        rc, out, err = _postern(inst, "reload")
        assert rc == 1 and "tls_cert_file %s" % bad in err, "bad certificate: exit %d: %s%s" % (rc, out, err)
        # a bad map line, through posternctl reload-maps
        with open(inst.conf_path, "w") as f:
            f.write(good)
        with open(inst.aliases_file, "w") as f:
            f.write("broken line without a colon\n")
        r = inst.posternctl("reload-maps")
        assert r.returncode == 65 and "aliases" in r.stderr.decode(), \
            "reload-maps of a bad alias file: exit %d: %s" % (r.returncode, r.stderr.decode())
        # the running instance still serves with its old configuration
        c = harness.Client(inst.p_smtp)
        try:
            qid = (c.send_message("a@client.example", [harness.LOCAL_RCPT]))
        finally:
            c.close()
        assert harness.QID_RE.match(qid)
        # fixed: both reload paths work and say so
        with open(inst.aliases_file, "w") as f:
            f.write("")
        r = inst.posternctl("reload-maps")
        assert r.returncode == 0 and "maps reloaded" in r.stdout.decode(), r.stdout.decode() + r.stderr.decode()
        rc, out, err = _postern(inst, "reload")
        assert rc == 0, out + err


test_reload_broken_config_refused.timeout = 180


def test_stop_lets_sessions_finish():
    inst = harness.Instance("stopwait", stop_timeout="30s")
    inst.start()
    try:
        inst.wait_log(r"ready: every process is up", timeout=60)
        idle = harness.Client(inst.p_smtp)
        idle.ehlo()
        busy = harness.Client(inst.p_smtp)
        busy.ehlo()
        harness.expect(busy.cmd("MAIL FROM:<a@client.example>"), code=250)
        harness.expect(busy.cmd("RCPT TO:<%s>" % harness.REMOTE_RCPT), code=250)
        harness.expect(busy.cmd("DATA"), code=354)
        busy.send(b"Subject: in flight\r\n\r\nhalf of it\r\n")
        since = inst.log_size()
        stopper = subprocess.Popen([harness.binary("postern"), "-c", inst.conf_path, "stop"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r = idle.reply(timeout=20)
        assert r.code == 421, "idle session got %s" % r
        inst.wait_log(r"stopping on signal 15", since=since, timeout=20)
        assert stopper.poll() is None, "postern stop returned while a message was in flight"
        busy.send(b"the rest\r\n.\r\n")
        qid = harness.queued_id(busy.reply(timeout=30))
        busy.close()
        idle.close()
        out, err = stopper.communicate(timeout=90)
        assert stopper.returncode == 0 and b"stopped" in out, (out + err).decode(errors="replace")
        inst.proc.wait(30)
    finally:
        if inst.alive():
            inst.stop()
    # nothing accepted is lost: the next start has it
    inst.start()
    try:
        ids = [q["queue_id"] for q in inst.queue()]
        assert qid in ids, "%s accepted during the stop is not in the queue after a restart: %r" % (qid, ids)
    finally:
        inst.stop()


test_stop_lets_sessions_finish.timeout = 240


def test_systemd_notify_protocol():
    d = os.path.join(harness.base_dir(), "notify")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    got = []

    def recv_until(word, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = s.recv(4096).decode()
            except socket.timeout:
                break
            got.append(msg)
            if word in msg.split("\n"):
                return msg
        raise AssertionError("no %s on NOTIFY_SOCKET within %gs; got %r" % (word, timeout, got))

    inst = harness.Instance("notify")
    os.environ["NOTIFY_SOCKET"] = path
    try:
        inst.start(wait=False)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        msg = recv_until("READY=1", 60)
        # READY=1 only once every role is up
        text = inst.log_text()
        assert re.search(r"ready: every process is up", text), "READY=1 before the master said ready:\n" + text
        assert "STATUS=queue-mgr 1/1 up" in msg, msg
        # the children never see the socket
        for pid, comm in inst.children():
            with open("/proc/%d/environ" % pid, "rb") as f:
                assert b"NOTIFY_SOCKET" not in f.read(), "%s[%d] inherited NOTIFY_SOCKET" % (comm, pid)
        rc, out, err = _postern(inst, "reload")
        assert rc == 0, out + err
        recv_until("RELOADING=1", 20)
        recv_until("READY=1", 20)
        inst.proc.send_signal(15)
        recv_until("STOPPING=1", 20)
        inst.proc.wait(60)
    finally:
        s.close()
        if inst.alive():
            inst.stop()
        elif inst.logf:
            inst.logf.close()
            inst.logf = None


def test_queue_mgr_reload_takes_new_binary():
    """A reload after the queue-mgr binary was replaced restarts queue-mgr
    onto it (an in-place SIGHUP would keep the old code); the queue stays,
    smtpd and deliver are not restarted, and a full restart on the new
    binaries keeps the queue too."""
    inst = harness.Instance("upgrade")
    bindir = os.path.join(inst.dir, "bin")
    os.makedirs(bindir)
    os.chmod(bindir, 0o755)
    src = harness.BIN
    for p in ("postern", "smtpd", "queue-mgr", "resolver", "deliver", "auth", "local", "mailq", "sendmail", "posternctl"):
        shutil.copy2(os.path.join(src, p), os.path.join(bindir, p))
    harness.BIN = bindir           # the master, its processes and the tools come from the copy
    try:
        inst.start()
        inst.wait_log(r"ready: every process is up", timeout=60)
        c = harness.Client(inst.p_smtp)
        try:
            qid = (c.send_message("a@client.example", [harness.REMOTE_RCPT]))
        finally:
            c.close()
        old_q = inst.pids("queue-mgr")
        # "upgrade": a new file under the same name, as make install does it
        new = os.path.join(bindir, "queue-mgr.new")
        shutil.copy2(os.path.join(src, "queue-mgr"), new)
        os.rename(new, os.path.join(bindir, "queue-mgr"))
        since = inst.log_size()
        rc, out, err = _postern(inst, "reload")
        assert rc == 0, out + err
        inst.wait_log(r"queue-mgr: .*is a new binary: restarting pid %d" % old_q[0], since=since, timeout=30)
        inst.wait_log(r"queue-mgr: pid \d+ exited for the upgrade", since=since, timeout=60)
        harness.wait_until(lambda: inst.pids("queue-mgr") and inst.pids("queue-mgr") != old_q, 60,
                           "a new queue-mgr")
        new_q = inst.pids("queue-mgr")
        exe = os.readlink("/proc/%d/exe" % new_q[0])
        assert exe == os.path.join(bindir, "queue-mgr"), "the new queue-mgr runs %s" % exe
        harness.wait_until(lambda: qid in [q["queue_id"] for q in inst.queue()], 60, "%s in the queue" % qid)
        # mail flows on through the new queue-mgr
        c = harness.Client(inst.p_smtp)
        try:
            qid2 = (c.send_message("a@client.example", [harness.REMOTE_RCPT]))
        finally:
            c.close()
        inst.stop()
        # a restart onto the new binaries keeps the queue
        inst.start()
        ids = [q["queue_id"] for q in inst.queue()]
        assert qid in ids and qid2 in ids, "after a restart the queue holds %r, want %s and %s" % (ids, qid, qid2)
        inst.stop()
    finally:
        harness.BIN = src
        if inst.alive():
            inst.stop()


test_queue_mgr_reload_takes_new_binary.timeout = 240
