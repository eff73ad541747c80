"""
Start-up order and readiness (common/ready.h, master/supervise.c): smtpd
starts only once queue-mgr said it is ready, so mail sent from the very
first 220 is queued; `postern start` returns only when every process is up,
and says which one failed when one does; a daemon started alone (no
readiness pipe) works; a process that does not become ready in time is
killed and restarted.

Only real conditions slow a process down: leftover spool files of
transactions that never committed (queue-mgr removes them while it
reconciles, before it is ready), and a write lease that another process
holds on smtpd's TLS key (opening the key blocks).
"""

import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import threading

import harness
from harness import REMOTE_RCPT
from test_master import _postern, _stop_leftover_master

ORPHANS = 40000
ORPHAN_PREFIX = "000000"    # queue ids of 1970: older than any the instance makes
MESSAGES = 20

READY_RE = r"postern/master\[\d+\]: queue-mgr: pid \d+ ready after \d+ ms"
SMTPD_STARTED_RE = r"postern/master\[\d+\]: smtpd: started, pid \d+"
RECONCILED_RE = r"postern/queue-mgr\[\d+\]: reconcile: removed (\d+) spool file"
F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)


def _leave_orphans(inst, n):
    """n spool files without a queue record in SPOOL/msg, as a crash in the
    middle of many transactions leaves them. Names are queue ids older than
    any the instance makes."""
    msg = os.path.join(inst.spool_dir, "msg")
    if not os.path.isdir(msg):
        raise AssertionError("test bug: %s does not exist (start the instance once first)" % msg)
    owner = harness.ACCOUNTS["queue"] if harness.IS_ROOT and not inst.run_as else None
    for i in range(n):
        fd = os.open(os.path.join(msg, "%s%06d" % (ORPHAN_PREFIX, i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if owner:
                os.fchown(fd, owner[0], owner[1])
        finally:
            os.close(fd)
    return n


def _spool_names(inst):
    return os.listdir(os.path.join(inst.spool_dir, "msg"))


def _prepared(name, **conf):
    """An instance that has run once (its directories exist) and queued one
    message, and is stopped. Returns (instance, queue id)."""
    inst = harness.Instance(name, **conf)
    inst.start()
    try:
        qid = inst.send()
    finally:
        inst.stop()
    return inst, qid


def _first_banner(port, timeout):
    """Connects as soon as the port accepts and waits for the first reply
    line: the moment the port answers 220. Returns the client."""
    def connect():
        return harness.Client(port, timeout=timeout)
    return harness.wait_until(connect, timeout, "the first 220 on port %d" % port)


def _concurrent_messages(port, n, tag):
    """n messages at once, each on its own connection; [(index, reply text)]."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def one(i):
        sender = "%s-%d@example.com" % (tag, i)
        try:
            barrier.wait(30)
            with harness.Client(port, timeout=60) as c:
                c.ehlo()
                c.mail_rcpt(sender, [REMOTE_RCPT])
                out[i] = str(c.data(harness.simple_body("%s-%d" % (tag, i)), timeout=60))
        except Exception as e:  # noqa: BLE001 - reported below
            out[i] = "exception: %r" % (e,)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return list(enumerate(out))


def _assert_all_queued(results):
    bad = [(i, r) for i, r in results if not (r or "").startswith("250 2.0.0 Ok: queued as ")]
    if bad:
        raise AssertionError("%d of %d messages were not queued: %s" % (len(bad), len(results), bad[:5]))
    return set(r.rsplit(" ", 1)[1] for _, r in results)


def _line_index(lines, pattern, what):
    rx = re.compile(pattern)
    for i, line in enumerate(lines):
        if rx.search(line):
            return i
    raise AssertionError("no log line for %s (%r)" % (what, pattern))


def test_mail_from_the_first_banner():
    """The defect of issue 5: from the first 220, 20 concurrent messages all
    get 250, even while queue-mgr takes its time to reconcile a queue."""
    inst, kept = _prepared("firstmail")
    _leave_orphans(inst, ORPHANS)
    off = inst.log_size()
    inst.start(wait=False)
    try:
        probe = _first_banner(inst.p_smtp, 60)
        probe.close()
        qids = _assert_all_queued(_concurrent_messages(inst.p_smtp, MESSAGES, "first"))
        lines = inst.log_since(off).splitlines()
        reconciled = _line_index(lines, RECONCILED_RE, "queue-mgr's reconciliation")
        ready = _line_index(lines, READY_RE, "queue-mgr saying ready")
        started = _line_index(lines, SMTPD_STARTED_RE, "smtpd being started")
        if not reconciled < ready < started:
            raise AssertionError("wrong order: reconcile at line %d, queue-mgr ready at %d, smtpd started at %d:\n%s"
                                 % (reconciled, ready, started, "\n".join(lines[:started + 3])))
        removed = int(re.search(RECONCILED_RE, lines[reconciled]).group(1))
        if removed != ORPHANS:
            raise AssertionError("reconcile removed %d leftover files, the test left %d" % (removed, ORPHANS))
        _line_index(lines, r"postern/master\[\d+\]: smtpd: waiting for queue-mgr to be ready", "smtpd held back")
        # deliver may say ready a little after the first mail (it needs no smtpd)
        inst.wait_log(r"postern/master\[\d+\]: ready: every process is up after \d+ ms", off, 30,
                      "the one ready line")
        missing = (qids | {kept}) - inst.queue_ids()
        if missing:
            raise AssertionError("answered 250 but not in the queue: %s" % sorted(missing))
    finally:
        inst.stop()


test_mail_from_the_first_banner.timeout = 180


def test_start_returns_when_ready():
    """`postern start` returns once every process is up: mail sent right
    after it is queued, without waiting for anything, and `postern status`
    says the processes are up."""
    inst, kept = _prepared("startready")
    _leave_orphans(inst, ORPHANS // 2)
    pidfile = os.path.join(inst.run_dir, "postern.pid")
    try:
        rc, out = _postern(inst, "start", timeout=120)
        if rc != 0 or "ready:" not in out:
            raise AssertionError("postern start exited %d: %r" % (rc, out))
        # no waiting here: start promised that everything is up
        qids = _assert_all_queued(_concurrent_messages(inst.p_smtp, MESSAGES, "start"))
        left = [n for n in _spool_names(inst) if n.startswith(ORPHAN_PREFIX)]
        if left:
            raise AssertionError("start returned before reconciliation removed %d leftover files" % len(left))
        rc, out = _postern(inst, "status")
        if rc != 0 or not re.search(r"running \(pid \d+\), ready: queue-mgr 1/1 up, resolver 1/1 up, smtpd 2/2 up", out):
            raise AssertionError("postern status after start: exit %d, %r" % (rc, out))
        missing = (qids | {kept}) - inst.queue_ids()
        if missing:
            raise AssertionError("answered 250 but not in the queue: %s" % sorted(missing))
        rc, out = _postern(inst, "stop", timeout=60)
        if rc != 0:
            raise AssertionError("postern stop exited %d: %s" % (rc, out))
        if os.path.exists(os.path.join(inst.run_dir, "postern.status")):
            raise AssertionError("the status file outlived the master")
    finally:
        _stop_leftover_master(pidfile)


test_start_returns_when_ready.timeout = 180


def test_start_reports_a_failed_start():
    """A queue index that is not an LMDB file: queue-mgr exits before it is
    ready, `postern start` says so and exits 1, `postern status` shows
    what is not up, and `postern stop` still stops the master."""
    inst, _ = _prepared("badindex")
    index = os.path.join(inst.spool_dir, "index", "data.mdb")
    if not os.path.exists(index):
        raise AssertionError("test bug: no queue index at %s" % index)
    with open(index, "r+b") as f:
        f.write(b"not an LMDB file " * 512)
    pidfile = os.path.join(inst.run_dir, "postern.pid")
    try:
        rc, out = _postern(inst, "start", timeout=120)
        if rc != 1 or not re.search(r"^postern: started \(pid \d+\) but not ready: queue-mgr pid \d+ exit "
                                    r"status 1 before every process was ready; the master keeps trying", out, re.M):
            raise AssertionError("postern start with a broken queue index: exit %d, %r" % (rc, out))
        rc, out = _postern(inst, "status")
        if rc != 0 or not re.search(r"running \(pid \d+\), starting: queue-mgr 0/1 (re)?starting, "
                                    r"resolver [01]/1 [a-z]+, smtpd 0/2 waiting for queue-mgr", out):
            raise AssertionError("postern status while queue-mgr cannot start: exit %d, %r" % (rc, out))
        with open(pidfile) as f:
            master = int(f.read().strip())
        kids = harness.children_of(master)
        if any(comm == "smtpd" for _, comm in kids):
            raise AssertionError("smtpd was started although queue-mgr never was ready: %r" % kids)
        rc, out = _postern(inst, "stop", timeout=60)
        if rc != 0:
            raise AssertionError("postern stop while queue-mgr restarts: exit %d, %s" % (rc, out))
    finally:
        _stop_leftover_master(pidfile)


test_start_reports_a_failed_start.timeout = 180


def _alone(inst, name, env=None, pass_fds=()):
    """Runs one daemon binary by hand, without the master, logging into the
    instance log."""
    e = harness.daemon_env({"POSTERN_FOREGROUND": "1"})
    e.pop("POSTERN_READY_FD", None)
    e.update(env or {})
    logf = open(inst.log_path, "ab")
    try:
        return subprocess.Popen([harness.binary(name), "-c", inst.conf_path], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf, env=e, cwd=inst.dir, pass_fds=pass_fds)
    finally:
        logf.close()


def _end(proc, what):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("%s did not exit on SIGTERM" % what)
    if rc != 0:
        raise AssertionError("%s exited %d on SIGTERM" % (what, rc))


def test_daemons_without_the_master():
    """queue-mgr and smtpd started by hand (no POSTERN_READY_FD) serve as
    before; with the pipe, queue-mgr says exactly "ready\\n" and closes it
    once its sockets accept; a bad POSTERN_READY_FD is refused, not written."""
    inst, _ = _prepared("alone")
    control = os.path.join(inst.run_dir, "queue", "control.sock")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((harness.LOCALHOST, inst.p_smtp))
    listener.listen(16)
    q = s = None
    try:
        # 1. no pipe at all
        q = _alone(inst, "queue-mgr")
        harness.wait_until(lambda: harness._unix_connect(control), 30, "queue-mgr alone to accept on %s" % control)
        lfd = listener.fileno()
        s = _alone(inst, "smtpd", env={"POSTERN_LISTEN_FDS": "%d:smtp" % lfd}, pass_fds=(lfd,))
        qid = harness.wait_until(lambda: inst.send(), 30, "smtpd alone to queue a message")
        if qid not in inst.queue_ids():
            raise AssertionError("message %s from the lone daemons is not queued" % qid)
        _end(s, "smtpd started alone")
        s = None
        _end(q, "queue-mgr started alone")

        # 2. with a pipe: the message, then end of file, and by then it accepts
        r, w = os.pipe()
        q = _alone(inst, "queue-mgr", env={"POSTERN_READY_FD": str(w)}, pass_fds=(w,))
        os.close(w)
        got = b""
        with os.fdopen(r, "rb") as rf:
            while True:
                chunk = rf.read(64)
                if not chunk:
                    break
                got += chunk
                if len(got) > 64:
                    break
        if got != b"ready\n":
            raise AssertionError("queue-mgr wrote %r on its readiness pipe (want b'ready\\n')" % got)
        if not harness._unix_connect(control):
            raise AssertionError("queue-mgr said ready before its control socket accepts")
        _end(q, "queue-mgr with a readiness pipe")

        # 3. a variable that names no pipe: a warning, and nothing written there
        off = inst.log_size()
        path = os.path.join(inst.dir, "not-a-pipe")
        with open(path, "wb") as f:
            q = _alone(inst, "queue-mgr", env={"POSTERN_READY_FD": str(f.fileno())}, pass_fds=(f.fileno(),))
            harness.wait_until(lambda: harness._unix_connect(control), 30, "queue-mgr to accept")
        inst.wait_log(r"queue-mgr\[\d+\]: warning: ignoring POSTERN_READY_FD=\d+: not an open pipe", off, 10)
        if os.path.getsize(path) != 0:
            raise AssertionError("queue-mgr wrote into a file named by POSTERN_READY_FD")
        _end(q, "queue-mgr with a bad POSTERN_READY_FD")
        q = None
    finally:
        listener.close()
        for p in (s, q):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(5)


test_daemons_without_the_master.timeout = 120


def test_not_ready_in_time_is_restarted():
    """A real reason for smtpd to hang in its set-up: another process holds
    a write lease on its TLS key, so opening the key blocks. The master
    kills it when its readiness bound (10 s) runs out and restarts it with
    the backoff; once the lease is gone the restarted smtpd comes up."""
    cert, key = harness.tls_files()
    inst = harness.Instance("lease", tls=True, smtpd_processes="1")
    key2 = os.path.join(inst.dir, "leased-key.pem")
    shutil.copy(key, key2)
    os.chmod(key2, 0o600)
    inst.write_config(tls_key_file=key2)
    old_sigio = signal.signal(signal.SIGIO, signal.SIG_IGN)     # the lease-break notice
    fd = os.open(key2, os.O_RDONLY)
    try:
        try:
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EACCES, errno.EAGAIN, errno.ENOSYS):
                raise harness.Skip("no file leases here: %s" % e)
            raise
        inst.start(wait=False)
        m = inst.wait_log(r"postern/master\[\d+\]: error: smtpd pid (\d+) was not ready after 10 s "
                          r"\(the next try gets 20 s\): killing it; it will be restarted", 0, 40,
                          "the master to give up on the smtpd that hangs on its key")
        victim = m.group(1)
        inst.wait_log(r"process \S+/smtpd pid %s killed by signal 9" % victim, 0, 20)
        inst.wait_log(r"postern/master\[\d+\]: smtpd: restarting in \d+ ms", 0, 20)
        if inst.pids("queue-mgr") == [] or not inst.alive():
            raise AssertionError("the master or queue-mgr went down with the hanging smtpd")
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
        os.close(fd)
        fd = -1
        inst.wait_log(r"postern/master\[\d+\]: ready: every process is up after \d+ ms", 0, 40,
                      "every process up once the key can be read")
        inst.wait_ready(20)
        inst.send()
        if int(victim) in inst.pids("smtpd"):
            raise AssertionError("the smtpd that was not ready (pid %s) is still there" % victim)
    finally:
        if fd >= 0:
            try:
                fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
            except OSError:
                pass
            os.close(fd)
        signal.signal(signal.SIGIO, old_sigio)
        inst.stop()


test_not_ready_in_time_is_restarted.timeout = 120
