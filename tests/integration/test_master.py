"""
The master, `postern`: check, start/status/reload/stop, restart of crashed
children, graceful shutdown of idle sessions, refusal of unsafe directories.
"""

import os
import re
import signal
import socket
import subprocess
import time

import harness
from harness import HOST, REMOTE_RCPT, expect, queued_id


def _postern(inst, *args, timeout=30, out=None):
    """Runs BIN/postern -c CONF ARGS. Output goes to a file (a daemonizing
    `start` may keep the descriptors it inherited)."""
    path = out or os.path.join(inst.dir, "postern-%s.out" % args[0])
    harness.register_log(path)
    with open(path, "ab") as f:
        start = f.tell()
        r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path] + list(args),
                           stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=harness.daemon_env(),
                           cwd=inst.dir, timeout=timeout)
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", errors="replace")
    return r.returncode, text


def _port_open(port):
    try:
        s = socket.create_connection((harness.LOCALHOST, port), timeout=2)
    except OSError:
        return False
    s.close()
    return True


def _bad_config(inst, bad_line, lineno=3):
    """The instance's config with bad_line as line lineno (any other line
    setting the same key is dropped: a repeated key is an error of its own)."""
    key = bad_line.split("=")[0].strip()
    lines = [l for l in inst.config_text().splitlines() if l.split("=")[0].strip() != key]
    lines.insert(lineno - 1, bad_line)
    path = os.path.join(inst.dir, "bad-%d.conf" % abs(hash(bad_line)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _check(conf):
    r = subprocess.run([harness.binary("postern"), "-c", conf, "check"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=harness.daemon_env(), timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    if r.stderr:
        with open(harness.tools_log(), "ab") as f:
            f.write(b"== postern check\n" + r.stderr)
    return r.returncode, out


# -- check


def test_check_good_config():
    inst = harness.shared()
    rc, out = _check(inst.conf_path)
    if rc != 0:
        raise AssertionError("postern check of the running test config exited %d: %s" % (rc, out))


def test_check_unknown_key():
    inst = harness.shared()
    conf = _bad_config(inst, "no_such_key = 1", 3)
    rc, out = _check(conf)
    if rc != 1:
        raise AssertionError("check with an unknown key on line 3 exited %d (want 1): %s" % (rc, out))
    if "%s:3:" % conf not in out:
        raise AssertionError("check output should contain %r: %r" % ("%s:3:" % conf, out))


def test_check_bad_value():
    inst = harness.shared()
    conf = _bad_config(inst, "max_recipients = lots", 5)
    rc, out = _check(conf)
    if rc != 1 or "%s:5:" % conf not in out:
        raise AssertionError("bad value on line 5: exit %d, output %r" % (rc, out))


def test_check_bad_size_and_duration():
    inst = harness.shared()
    for line in ("max_message_size = 10Q", "smtpd_timeout = soon", "relay_networks = 10.0.0.0/99",
                 "listen_smtp = 127.0.0.1:99999", "chroot = perhaps"):
        conf = _bad_config(inst, line, 2)
        rc, out = _check(conf)
        if rc != 1 or "%s:2:" % conf not in out:
            raise AssertionError("%r on line 2: exit %d, output %r" % (line, rc, out))


def test_check_missing_required_file():
    inst = harness.shared()
    conf = _bad_config(inst, "mailboxes_file = %s/does-not-exist" % inst.dir, 40)
    rc, out = _check(conf)
    if rc != 1 or conf not in out or "does-not-exist" not in out:
        raise AssertionError("missing mailboxes_file: exit %d, output %r" % (rc, out))


def test_check_syntax_features():
    """Comments, continuation lines, list separators and size/duration units."""
    inst = harness.shared()
    text = inst.config_text().replace(
        "local_domains = %s, localhost\n" % HOST,
        "# local domains, one continued line\nlocal_domains = %s,\n    localhost\n\n" % HOST)
    if "    localhost" not in text:
        raise AssertionError("test bug: local_domains line not found in %r" % text)
    text += "max_message_size = 10M\nsmtpd_timeout = 5m\nqueue_lifetime = 2d\nmin_backoff = 30s\nmax_backoff = 1h\n"
    path = os.path.join(inst.dir, "features.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out = _check(path)
    if rc != 0:
        raise AssertionError("valid config with comments/continuations/units: exit %d: %s" % (rc, out))


# -- start / status / stop


def test_start_status_stop():
    inst = harness.Instance("daemon")
    pidfile = os.path.join(inst.run_dir, "postern.pid")
    try:
        rc, out = _postern(inst, "start", timeout=150)
        if rc != 0 or "ready: queue-mgr 1/1 up, resolver 1/1 up, smtpd 2/2 up" not in out:
            raise AssertionError("postern start exited %d: %s" % (rc, out))
        harness.wait_until(lambda: os.path.exists(pidfile), 15, "the pid file %s" % pidfile)
        with open(pidfile) as f:
            pid = int(f.read().strip())
        if not harness.pid_alive(pid):
            raise AssertionError("pid file names %d, which is not running" % pid)
        harness.wait_until(lambda: _banner(inst.p_smtp), 15, "the daemonized master to answer on port %d" % inst.p_smtp)
        kids = harness.children_of(pid)
        rc, out = _postern(inst, "status")
        if rc != 0 or "running" not in out:
            raise AssertionError("postern status while running: exit %d, %r" % (rc, out))
        rc, out = _postern(inst, "start")
        if rc == 0:
            raise AssertionError("a second postern start succeeded while one is running: %r" % out)
        if not harness.pid_alive(pid) or not _banner(inst.p_smtp):
            raise AssertionError("a second start disturbed the running master")
        rc, out = _postern(inst, "stop", timeout=60)
        if rc != 0:
            raise AssertionError("postern stop exited %d: %s" % (rc, out))
        harness.wait_until(lambda: not harness.pid_alive(pid), 20, "the master %d to exit after stop" % pid)
        harness.wait_until(lambda: not any(harness.pid_alive(p) for p, _ in kids), 20, "children %r to exit" % kids)
        harness.wait_until(lambda: not _port_open(inst.p_smtp), 10, "port %d to close" % inst.p_smtp)
        rc, out = _postern(inst, "status")
        if rc == 0:
            raise AssertionError("postern status exits 0 after stop: %r" % out)
    finally:
        _stop_leftover_master(pidfile)


def _stop_leftover_master(pidfile):
    """After a test of `postern start`: SIGTERM to a master still named by
    pidfile, and wait for it to go."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        if harness.pid_alive(pid) and harness.proc_stat(pid)[0] == "postern":
            os.kill(pid, signal.SIGTERM)
            harness.wait_until(lambda: not harness.pid_alive(pid), 30, "leftover master to exit")
    except (OSError, ValueError):
        pass


def _banner(port):
    try:
        with harness.Client(port, timeout=3):
            return True
    except (OSError, harness.Closed, TimeoutError, AssertionError):
        return False


def test_run_writes_pid_file_and_status():
    inst = harness.shared()
    pidfile = os.path.join(inst.run_dir, "postern.pid")
    with open(pidfile) as f:
        pid = int(f.read().strip())
    if pid != inst.pid:
        raise AssertionError("pid file says %d, the master is %d" % (pid, inst.pid))
    rc, out = _postern(inst, "status")
    if rc != 0 or "running (pid %d), ready: queue-mgr 1/1 up, resolver 1/1 up, smtpd 2/2 up" % pid not in out:
        raise AssertionError("postern status: exit %d, %r" % (rc, out))


# -- reload


def test_reload_keeps_open_session():
    with harness.Instance("reload") as inst:
        sender = "%s@example.com" % harness.token("reload")
        old_smtpd = set(inst.pids("smtpd"))
        qmgr = inst.pids("queue-mgr")
        c = inst.client(ehlo=True)
        try:
            c.mail_rcpt(sender, [REMOTE_RCPT])
            # change something observable by new sessions
            inst.write_config(max_message_size="12345678")
            off = inst.log_size()
            rc, out = _postern(inst, "reload")
            if rc != 0:
                raise AssertionError("postern reload exited %d: %s" % (rc, out))
            harness.wait_until(
                lambda: (set(inst.pids("smtpd")) - old_smtpd) or "reload" in inst.log_since(off).lower(),
                20, "new smtpd workers or a reload line in the log")
            if not inst.alive():
                raise AssertionError("master exited on reload")
            # the old session completes its transaction
            qid = queued_id(c.data(harness.simple_body(sender)))
            expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
        finally:
            c.close()
        if qid not in inst.queue_ids():
            raise AssertionError("message %s completed across the reload is not queued" % qid)
        # new sessions see the new configuration

        def new_size():
            with inst.client() as n:
                return "250-SIZE 12345678" in n.ehlo().lines
        harness.wait_until(new_size, 20, "new sessions to advertise SIZE 12345678 after reload")
        errors = [l for l in inst.log_since(off).splitlines() if "error:" in l or "fatal:" in l]
        if errors:
            raise AssertionError("the reload logged errors: %s" % errors[0])
        if len(inst.pids("queue-mgr")) != 1:
            raise AssertionError("after reload: queue-mgr processes %r (was %r)" % (inst.pids("queue-mgr"), qmgr))
        # the old generation drains only once the new one said ready
        lines = inst.log_since(off).splitlines()
        ready = [i for i, l in enumerate(lines) if re.search(r"master\[\d+\]: smtpd: pid \d+ ready after", l)]
        drain = [i for i, l in enumerate(lines) if re.search(r"master\[\d+\]: smtpd: \d+ old process\(es\) finish", l)]
        if len(ready) < 2 or not drain or drain[0] < ready[1]:
            raise AssertionError("old smtpd workers told to drain (line %s) before both new ones were ready "
                                 "(lines %s):\n%s" % (drain, ready, "\n".join(lines[:40])))


def test_reload_by_sighup():
    with harness.Instance("sighup") as inst:
        c = inst.client(ehlo=True)
        try:
            c.mail_rcpt("hup@example.com", [REMOTE_RCPT])
            old = set(inst.pids("smtpd"))
            off = inst.log_size()
            os.kill(inst.pid, signal.SIGHUP)
            harness.wait_until(lambda: (set(inst.pids("smtpd")) - old) or "reload" in inst.log_since(off).lower(),
                               20, "the reload to happen")
            queued_id(c.data(harness.simple_body("hup")))
        finally:
            c.close()
        inst.wait_ready(15)


# -- crashes and shutdown


def test_crashed_smtpd_is_restarted():
    with harness.Instance("crash") as inst:
        workers = inst.pids("smtpd")
        if len(workers) != 2:
            raise AssertionError("expected 2 smtpd workers (smtpd_processes default), found %r" % inst.children())
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        harness.wait_until(lambda: victim not in inst.pids("smtpd") and len(inst.pids("smtpd")) == 2, 30,
                           "a new smtpd worker in place of %d" % victim)
        for _ in range(4):          # both workers serve
            inst.send()
        if not inst.alive():
            raise AssertionError("master died")


def test_crashed_queue_mgr_is_restarted():
    with harness.Instance("crashq") as inst:
        # every role up first (deliver may still be starting): else the
        # line below is the first "ready", not "ready again"
        inst.wait_log(r"master\[\d+\]: ready: every process is up", 0, 30)
        before = inst.send()
        (victim,) = inst.pids("queue-mgr")
        workers = sorted(inst.pids("smtpd"))
        off = inst.log_size()
        os.kill(victim, signal.SIGKILL)
        harness.wait_until(lambda: [p for p in inst.pids("queue-mgr") if p != victim], 30,
                           "a new queue-mgr in place of %d" % victim)
        inst.wait_ready(30)
        inst.wait_log(r"master\[\d+\]: ready again: every process is up", off, 30)
        harness.wait_until(lambda: _try_send(inst), 30, "a message to be accepted after the queue-mgr restart")
        if before not in inst.queue_ids():
            raise AssertionError("message %s lost with the queue-mgr kill" % before)
        # what needs queue-mgr keeps running through its restart
        if sorted(inst.pids("smtpd")) != workers:
            raise AssertionError("smtpd workers %r replaced by %r when queue-mgr restarted"
                                 % (workers, sorted(inst.pids("smtpd"))))


def _try_send(inst):
    try:
        return inst.send()
    except (AssertionError, OSError, harness.Closed):
        return None


def test_no_false_250_when_queue_mgr_dies():
    """A transaction right after kill -9 of queue-mgr: either 451 4.3.0
    (queue-mgr unreachable) or a 250 whose message really is queued."""
    with harness.Instance("stopq") as inst:
        (q,) = inst.pids("queue-mgr")
        os.kill(q, signal.SIGKILL)
        # right after the kill, before the restart, or after: never a false 250
        sender = "%s@example.com" % harness.token("q451")
        with inst.client(ehlo=True, timeout=30) as c:
            c.mail_rcpt(sender, [REMOTE_RCPT])
            r = c.cmd("DATA")
            if r.code == 354:
                c.send(harness.dot_stuff(harness.simple_body(sender)) + b".\r\n")
                r = c.reply(timeout=30)
            if r.code == 250:
                qid = queued_id(r)
                harness.wait_until(lambda: qid in inst.queue_ids(), 30, "%s to be in the queue" % qid)
            else:
                expect(r, exact="451 4.3.0 Error: queue file write error")
                expect(c.cmd("RSET"), exact="250 2.0.0 Ok")


def test_sigterm_graceful_shutdown():
    inst = harness.Instance("term")
    inst.start()
    try:
        idle = inst.client(ehlo=True)
        kids = inst.children()
        inst.proc.send_signal(signal.SIGTERM)
        r = idle.reply(timeout=15)
        expect(r, exact="421 4.3.2 %s Service shutting down" % HOST)
        idle.wait_closed(10)
        idle.close()
        rc = inst.proc.wait(20)
        if rc != 0:
            raise AssertionError("master exited %d on SIGTERM (want 0)" % rc)
        harness.wait_until(lambda: not any(harness.pid_alive(p) for p, _ in kids), 15, "children to exit")
        if _port_open(inst.p_smtp):
            raise AssertionError("port still open after shutdown")
    finally:
        inst.stop()


def test_refuses_unsafe_spool_dir():
    inst = harness.Instance("unsafe")
    os.mkdir(inst.spool_dir)
    os.chmod(inst.spool_dir, 0o777)
    inst.start(wait=False)
    try:
        harness.wait_until(lambda: not inst.alive(), 20, "postern run to refuse a world-writable spool_dir")
        if inst.proc.returncode == 0:
            raise AssertionError("postern run exited 0 with a world-writable spool_dir")
        if inst.spool_dir not in inst.log_text():
            raise AssertionError("the error does not name %s: %r" % (inst.spool_dir, inst.log_tail(5)))
    finally:
        inst.stop()


def test_refuses_bad_config_at_run():
    inst = harness.Instance("badrun", no_such_key="1")
    inst.start(wait=False)
    try:
        harness.wait_until(lambda: not inst.alive(), 20, "postern run to exit on a bad config")
        if inst.proc.returncode != 1:
            raise AssertionError("postern run with an unknown key exited %r (want 1)" % inst.proc.returncode)
        if inst.conf_path + ":" not in inst.log_text():
            raise AssertionError("the error does not name the config file: %r" % inst.log_tail(5))
    finally:
        inst.stop()


def test_master_service_disable():
    """master_service_disable = deliver: no deliver is started (the resolver
    still is), mail is accepted and stays queued; a bad word is a FILE:LINE
    error."""
    with harness.Instance("nodeliver", master_service_disable="deliver") as inst:
        inst.wait_log(r"ready: every process is up", 0, what="the master's readiness line")
        kids = [c for _, c in inst.children()]
        if "deliver" in kids or "resolver" not in kids:
            raise AssertionError("master_service_disable = deliver, children: %r" % kids)
        with inst.client() as c:
            qid = c.send_message("a@example.com", [harness.REMOTE_RCPT])
        if qid not in inst.queue_ids():
            raise AssertionError("%s not queued with deliver disabled" % qid)
        rc, out = _check(_bad_config(inst, "master_service_disable = deliver, queue-mgr", 3))
        if rc != 1 or "master_service_disable" not in out or ":3:" not in out:
            raise AssertionError("a bad service name: exit %d, %r" % (rc, out))
