"""
The queue-mgr side of delivery, driven through its deliver socket
(RUN/deliver/queue/deliver.sock) by a FAKE deliver written here: it speaks
the D_WANT / D_JOB / D_RESULT frames of common/proto.h directly (the
ipc.h format: a 16-byte header, then u16 tag / u32 length fields) and
receives each job's spool file descriptor with SCM_RIGHTS.

The instances run with master_service_disable = deliver, so the fake is
queue-mgr's only deliver client.

Cases: jobs for due mail with a read-only descriptor; one job per message
and destination; results applied (sent -> record and file removed with the
`removed` line; 4xx -> deferred with attempts, next_try inside the backoff
window and the reason in mailq; 5xx -> bounced and kept, not listed); a
deliver that disconnects mid-job (re-dispatched); results of an unknown job;
flush (posternctl) of a message, a domain, the queue; a dead destination
(no job while dead, other destinations unaffected, revived by flush);
the concurrency limits; mailq's '*'; expiry; local domains deferred; who
may connect; malformed frames.
"""

import fcntl
import os
import socket
import struct
import time

import harness
# the ipc.h wire format, as the resolver's tests write it
from test_resolver import frame, f_str, f_u64, parse_fields, u64 as _u64

MAGIC = 0x4E545350
IPC_F_FD = 1
Q_ERROR = 6
D_WANT, D_JOB, D_RESULT = 64, 65, 66
T_QID = 1
T_SENDER, T_RCPT = 17, 18
T_ARRIVAL, T_SIZE = 29, 30
T_R_ADDR, T_R_ORCPT, T_R_NOTIFY, T_R_STATUS, T_R_ATTEMPTS = 48, 49, 50, 51, 52
T_R_DSN, T_R_REPLY = 54, 55
T_D_JOB, T_D_DEST, T_D_DISPATCH, T_D_FLAGS, T_R_INDEX = 112, 113, 114, 115, 116
RCPT_PENDING, RCPT_DEFERRED, RCPT_SENT, RCPT_BOUNCED = 0, 1, 2, 3
D_F_DEST_UNREACHABLE, D_F_DEST_REACHED = 1, 2

DELIVER_SOCK = "deliver/queue/deliver.sock"
QDUMP = os.path.join(harness.REPO, os.path.dirname(os.environ.get("UNIT", "build/release/unit-tests")), "qdump")


# ------------------------------------------------------------ the wire format

def f_nested(tag, fields):
    return (tag, b"".join(struct.pack("<HI", t, len(v)) + v for t, v in fields))


def u64(v):
    assert len(v) == 8, "u64 field of %d bytes" % len(v)
    return _u64(v)


def decode_job(body):
    job = {"rcpts": []}
    for tag, v in parse_fields(body):
        if tag == T_D_JOB:
            job["id"] = u64(v)
        elif tag == T_QID:
            job["qid"] = v.decode()
        elif tag == T_D_DEST:
            job["dest"] = v.decode()
        elif tag == T_SENDER:
            job["sender"] = v.decode()
        elif tag == T_ARRIVAL:
            job["arrival"] = u64(v)
        elif tag == T_SIZE:
            job["size"] = u64(v)
        elif tag == T_D_DISPATCH:
            job["dispatch"] = u64(v)
        elif tag == T_RCPT:
            r = {}
            for t2, v2 in parse_fields(v):
                if t2 == T_R_INDEX:
                    r["index"] = u64(v2)
                elif t2 == T_R_ADDR:
                    r["addr"] = v2.decode()
                elif t2 == T_R_ATTEMPTS:
                    r["attempts"] = u64(v2)
            job["rcpts"].append(r)
    for k in ("id", "qid", "dest", "sender", "arrival", "size", "dispatch"):
        assert k in job, "D_JOB without %s: %r" % (k, job)
    return job


# ------------------------------------------------------------ the fake deliver

def connect_as_deliver(path, uid=None):
    """A connection whose SO_PEERCRED is the deliver account: as root, a
    child process takes that uid, connects, and passes the socket back."""
    if not harness.IS_ROOT and uid is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s
    if uid is None:
        uid, gid = harness.ACCOUNTS["deliver"]
    else:
        gid = uid
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            a.close()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socket.send_fds(b, [b"s"], [s.fileno()])
            os._exit(0)
        except BaseException:  # noqa: BLE001 - a child never returns
            os._exit(1)
    b.close()
    try:
        a.settimeout(10)
        _, fds, _, _ = socket.recv_fds(a, 16, 1)
    finally:
        a.close()
        os.waitpid(pid, 0)
    assert fds, "the child could not connect to %s" % path
    return socket.socket(fileno=fds[0])


class FakeDeliver:
    def __init__(self, inst, uid=None, sock=None):
        self.inst = inst
        path = os.path.join(inst.run_dir, sock or DELIVER_SOCK)
        harness.wait_until(lambda: os.path.exists(path), 10, "the deliver socket %s" % path)
        self.sock = connect_as_deliver(path, uid)
        self.buf = b""
        self.fds = []
        self.reqid = 100
        self.frames = []

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()

    def want(self, n=1):
        out = b""
        for _ in range(n):
            self.reqid += 1
            out += frame(D_WANT, [], self.reqid)
        self.sock.sendall(out)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 16)
        except socket.timeout:
            return False
        if not data:
            raise harness.Closed("queue-mgr closed the deliver connection")
        self.buf += data
        self.fds += fds
        return True

    def recv(self, timeout=10):
        """The next frame: (type, reqid, body, fd or None); None on timeout."""
        deadline = time.time() + timeout
        while True:
            if len(self.buf) >= 16:
                magic, mtype, flags, ln, reqid = struct.unpack_from("<IHHII", self.buf)
                assert magic == MAGIC, "bad magic from queue-mgr"
                if len(self.buf) >= 16 + ln:
                    body = self.buf[16:16 + ln]
                    self.buf = self.buf[16 + ln:]
                    fd = None
                    if flags & IPC_F_FD:
                        assert self.fds, "a frame flagged with a descriptor came without one"
                        fd = self.fds.pop(0)
                    return mtype, reqid, body, fd
            left = deadline - time.time()
            if left <= 0 or not self._read(left):
                return None

    def job(self, timeout=10):
        """The next D_JOB, decoded, with its descriptor checked read-only."""
        got = self.recv(timeout)
        if got is None:
            return None
        mtype, reqid, body, fd = got
        assert mtype == D_JOB, "expected D_JOB, got type %d" % mtype
        assert fd is not None, "D_JOB without the spool file's descriptor"
        job = decode_job(body)
        job["reqid"] = reqid
        acc = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        assert acc == os.O_RDONLY, "the spool file descriptor is not read-only (flags %o)" % acc
        try:
            os.write(fd, b"x")
            raise AssertionError("the spool file descriptor is writable")
        except OSError:
            pass
        job["content"] = os.pread(fd, 1 << 20, 0)
        os.close(fd)
        return job

    def no_job(self, timeout):
        got = self.recv(timeout)
        if got is not None:
            raise AssertionError("unexpected frame type %d: %r" % (got[0], got[2][:200]))

    def result(self, job, results, flags=D_F_DEST_REACHED):
        """results: [(index, status, dsn, reply)]"""
        fields = [f_u64(T_D_JOB, job["id"]), f_str(T_QID, job["qid"]), f_u64(T_D_FLAGS, flags)]
        for idx, status, dsn, reply in results:
            fields.append(f_nested(T_RCPT, [f_u64(T_R_INDEX, idx), f_u64(T_R_STATUS, status),
                                            f_str(T_R_DSN, dsn), f_str(T_R_REPLY, reply)]))
        self.sock.sendall(frame(D_RESULT, fields, 0))

    def all_sent(self, job):
        self.result(job, [(r["index"], RCPT_SENT, "2.0.0", "250 2.0.0 Ok") for r in job["rcpts"]])


def instance(name, **conf):
    # the fake below is queue-mgr's only deliver: the master starts none
    c = {"relayhost": None, "min_backoff": "60s", "max_backoff": "600s",
         "master_service_disable": "deliver"}
    c.update(conf)
    return harness.Instance(name, **c)


def rcpt_entry(inst, qid, addr):
    e = inst.queue_entry(qid)
    if not e:
        return None
    for r in e["recipients"]:
        if r["address"] == addr:
            return e, r
    return None


def qrecord(inst, qid):
    """The stored record of qid as mailq shows it (None when not listed)."""
    return inst.queue_entry(qid)


# ------------------------------------------------------------ tests

def test_job_for_due_mail_and_sent_removes():
    with instance("sched-sent") as inst:
        d = FakeDeliver(inst)
        tok = harness.token("m")
        qid = inst.send(rcpts=["a@one.example", "b@ONE.example"], body=harness.simple_body(tok))
        d.want()
        job = d.job()
        assert job, "no job for due mail"
        assert job["qid"] == qid and job["dest"] == "one.example", job
        assert sorted(r["addr"] for r in job["rcpts"]) == ["a@one.example", "b@ONE.example"], job
        assert all(r["attempts"] == 0 for r in job["rcpts"]), job
        assert tok.encode() in job["content"], "the descriptor is not the message's spool file"
        assert job["dispatch"] > 0
        # being delivered now: mailq shows '*' and "active"
        e = inst.queue_entry(qid)
        assert e and e["queue_name"] == "active", e
        text = inst.mailq().stdout.decode()
        assert (qid + "*") in text, text
        off = inst.log_size()
        d.all_sent(job)
        inst.wait_log(r"%s: removed" % qid, since=off)
        harness.wait_until(lambda: not os.path.exists(inst.spool_file(qid)), 10, "the spool file removed")
        assert qid not in inst.queue_ids()
        d.close()


def test_grouping_per_destination_and_no_double_dispatch():
    with instance("sched-group") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["a@x.example", "b@y.example", "c@X.Example"])
        d.want(3)
        jobs = [d.job(), d.job()]
        assert all(jobs), "expected two jobs, one a destination"
        by = {j["dest"]: j for j in jobs}
        assert set(by) == {"x.example", "y.example"}, by.keys()
        assert sorted(r["addr"] for r in by["x.example"]["rcpts"]) == ["a@x.example", "c@X.Example"]
        assert [r["addr"] for r in by["y.example"]["rcpts"]] == ["b@y.example"]
        assert all(j["qid"] == qid for j in jobs)
        # the third slot stays free: nothing is dispatched twice at once
        d.no_job(1.5)
        for j in jobs:
            d.all_sent(j)
        inst.wait_log(r"%s: removed" % qid)
        d.close()


def test_deferred_backoff_and_reason_in_mailq():
    with instance("sched-defer", min_backoff="100s", max_backoff="1000s") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["u@slow.example"])
        d.want()
        job = d.job()
        before = int(time.time())
        reason = "host mx.slow.example[127.0.0.9] said: 451 4.7.1 try later (in reply to RCPT TO command)"
        d.result(job, [(job["rcpts"][0]["index"], RCPT_DEFERRED, "4.7.1", reason)])
        harness.wait_until(lambda: (inst.queue_entry(qid) or {}).get("queue_name") == "deferred", 10,
                           "the message deferred")
        e, r = rcpt_entry(inst, qid, "u@slow.example")
        assert r.get("delay_reason") == reason, r
        text = inst.mailq().stdout.decode()
        assert "(" + reason + ")" in text, text
        assert (qid + "*") not in text
        # not due now: a new slot gets no job
        d.want()
        d.no_job(1.5)
        after = int(time.time())
        st = rcpt_state(inst, qid, 0)
        nt = int(st["next_try"])
        # min_backoff * 2^0 with a jitter factor in [0.75, 1.0]
        assert before + 75 <= nt <= after + 100, "next_try %d not in [%d, %d]" % (nt, before + 75, after + 100)
        assert st["attempts"] == "1" and st["status"] == str(RCPT_DEFERRED) and st["dsn"] == "4.7.1", st
        # flush makes it due: a job comes, with the attempt counted
        out = flush(inst, qid)
        assert "1 recipient" in out, out
        job2 = d.job()
        assert job2 and job2["qid"] == qid and job2["rcpts"][0]["attempts"] == 1, job2
        d.all_sent(job2)
        inst.wait_log(r"%s: removed" % qid)
        d.close()


def take(d, qid, n=1):
    """Asks for n jobs and returns the first, which must be qid's."""
    d.want(n)
    job = d.job()
    assert job and job["qid"] == qid, job
    return job


def finish(inst, d, job):
    """Reports every recipient of job sent; waits for the removal."""
    d.all_sent(job)
    inst.wait_log(r"%s: removed" % job["qid"])


def stored(inst, qid):
    """The stored state of qid (tests/tools/qdump.c), or None."""
    import subprocess
    r = subprocess.run([QDUMP, inst.spool_dir, qid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode == 1:
        return None
    assert r.returncode == 0, "qdump: %s" % r.stderr.decode(errors="replace")
    out = {}
    for line in r.stdout.decode().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def rcpt_state(inst, qid, idx):
    st = stored(inst, qid)
    assert st is not None, "%s is not stored" % qid
    return {k.split(".", 1)[1]: v for k, v in st.items() if k.startswith("rcpt%d." % idx)}


def flush(inst, *args):
    r = inst.run_tool("posternctl", ["-c", inst.conf_path, "flush"] + list(args))
    assert r.returncode == 0, "posternctl flush %s: %d %s" % (args, r.returncode, r.stderr)
    return r.stdout.decode()


def defer(d, job, reason="451 4.7.1 try later", flags=D_F_DEST_REACHED):
    d.result(job, [(r["index"], RCPT_DEFERRED, "4.7.1", reason) for r in job["rcpts"]], flags)


def test_bounced_is_kept_not_listed():
    with instance("sched-bounce") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["ok@b.example", "no@b.example", "later@b.example"])
        d.want()
        job = d.job()
        idx = {r["addr"]: r["index"] for r in job["rcpts"]}
        off = inst.log_size()
        d.result(job, [(idx["ok@b.example"], RCPT_SENT, "2.0.0", "250 ok"),
                       (idx["no@b.example"], RCPT_BOUNCED, "5.1.1", "550 5.1.1 no such user"),
                       (idx["later@b.example"], RCPT_DEFERRED, "4.2.0", "450 mailbox busy")])
        harness.wait_until(lambda: rcpt_state(inst, qid, idx["later@b.example"])["status"] == str(RCPT_DEFERRED),
                           10, "the results recorded")
        assert rcpt_state(inst, qid, idx["no@b.example"])["status"] == str(RCPT_BOUNCED)
        assert rcpt_state(inst, qid, idx["no@b.example"])["reply"] == "550 5.1.1 no such user"
        assert rcpt_state(inst, qid, idx["ok@b.example"])["status"] == str(RCPT_SENT)
        e = inst.queue_entry(qid)
        assert [r["address"] for r in e["recipients"]] == ["later@b.example"], e
        # the bounce's notice is queued at once (bounce.c), from <> to the sender
        nqid = inst.wait_log(r"%s: sender non-delivery notification: ([0-9A-Z]+)$" % qid,
                             since=off).group(1)
        # the deferred one delivered at last, the notice too: the message goes
        flush(inst, qid)
        d.want(2)
        jobs = [d.job(), d.job()]
        job2 = [j for j in jobs if j and j["qid"] == qid]
        notice = [j for j in jobs if j and j["qid"] == nqid]
        assert job2 and notice, jobs
        assert [r["addr"] for r in job2[0]["rcpts"]] == ["later@b.example"], job2
        assert notice[0]["sender"] == "", notice
        d.all_sent(job2[0])
        d.all_sent(notice[0])
        inst.wait_log(r"%s: removed" % qid, since=off)
        inst.wait_log(r"%s: removed" % nqid, since=off)
        assert qid not in inst.queue_ids(), "a message with nothing left to deliver is listed"
        assert stored(inst, qid) is None
        d.close()


def test_disconnect_mid_job_redispatches():
    with instance("sched-lost") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["r@lost.example"])
        take(d, qid)
        d.close()   # deliver died with the job
        d2 = FakeDeliver(inst)
        job2 = take(d2, qid)
        assert job2["rcpts"][0]["attempts"] == 0, job2
        finish(inst, d2, job2)
        d2.close()


def test_result_for_unknown_job_is_applied():
    with instance("sched-unknown") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["r@unk.example"])
        d.want()
        job = d.job()
        d.close()
        # a result that outlived its connection (as after a queue-mgr restart)
        d2 = FakeDeliver(inst)
        fake = dict(job, id=987654321)
        d2.all_sent(fake)
        inst.wait_log(r"%s: removed" % qid)
        d2.close()


def test_missing_result_defers():
    with instance("sched-missing") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["a@m.example", "b@m.example"])
        d.want()
        job = d.job()
        first = job["rcpts"][0]
        d.result(job, [(first["index"], RCPT_SENT, "2.0.0", "250 ok")])
        other = [r for r in job["rcpts"] if r is not first][0]
        harness.wait_until(lambda: rcpt_state(inst, qid, other["index"])["status"] == str(RCPT_DEFERRED),
                           10, "the recipient without a result deferred")
        assert "no result" in rcpt_state(inst, qid, other["index"])["reply"]
        d.close()


def test_dead_destination_and_flush_revives():
    # initial concurrency 1: the first connection failure marks it dead
    with instance("sched-dead", initial_destination_concurrency="1", min_backoff="300s",
                  max_backoff="600s") as inst:
        d = FakeDeliver(inst)
        q1 = inst.send(rcpts=["a@down.example"])
        d.want()
        j1 = d.job()
        off = inst.log_size()
        defer(d, j1, "connect to mx.down.example[127.0.0.9]:25: Connection refused", D_F_DEST_UNREACHABLE)
        inst.wait_log(r"destination down\.example is not reachable", since=off)
        # more mail for it: deferred as suspended, without a job; mail elsewhere goes
        q2 = inst.send(rcpts=["b@down.example"])
        q3 = inst.send(rcpts=["c@up.example"])
        d.want(2)
        j3 = d.job()
        assert j3 and j3["qid"] == q3 and j3["dest"] == "up.example", j3
        d.no_job(1.5)
        harness.wait_until(lambda: "suspended" in rcpt_state(inst, q2, 0)["reply"], 10,
                           "the dead destination's new mail deferred as suspended")
        st = rcpt_state(inst, q2, 0)
        assert st["reply"].startswith("delivery temporarily suspended: connect to mx.down.example"), st
        assert st["attempts"] == "0", st
        d.all_sent(j3)
        # a domain flush revives it: both messages come, one at a time (concurrency 1)
        out = flush(inst, "down.example")
        assert "2 recipient" in out, out
        j = d.job()
        assert j and j["dest"] == "down.example", j
        d.no_job(1.0)   # the second waits: concurrency 1
        d.all_sent(j)
        d.want()
        j2 = d.job()
        assert j2 and j2["dest"] == "down.example" and j2["qid"] != j["qid"], j2
        d.all_sent(j2)
        for q in (q1, q2, q3):
            inst.wait_log(r"%s: removed" % q)
        d.close()


def test_concurrency_limits():
    with instance("sched-conc", initial_destination_concurrency="2",
                  default_destination_concurrency_limit="3", deliver_concurrency="4") as inst:
        d = FakeDeliver(inst)
        qids = [inst.send(rcpts=["r@c.example"]) for _ in range(6)]
        qids += [inst.send(rcpts=["r@other.example"]) for _ in range(4)]
        d.want(10)
        jobs = []
        while True:
            j = d.job(timeout=1.5)
            if not j:
                break
            jobs.append(j)
        per = {}
        for j in jobs:
            per[j["dest"]] = per.get(j["dest"], 0) + 1
        assert per.get("c.example") == 2, per     # slow start begins at 2
        assert len(jobs) == 4, per                # deliver_concurrency
        # a success opens one more slot for c.example (up to 3)
        cj = [j for j in jobs if j["dest"] == "c.example"]
        d.all_sent(cj[0])
        got = []
        while True:
            j = d.job(timeout=1.5)
            if not j:
                break
            got.append(j)
        assert len(got) == 1, got                 # total limit 4 again
        active_c = 1 + sum(1 for j in got if j["dest"] == "c.example")
        assert active_c <= 3, active_c
        d.close()


def test_flush_whole_queue_and_permissions():
    with instance("sched-flushall", min_backoff="500s", max_backoff="900s") as inst:
        d = FakeDeliver(inst)
        qids = [inst.send(rcpts=["r@f%d.example" % i]) for i in range(3)]
        d.want(3)
        jobs = [d.job() for _ in range(3)]
        for j in jobs:
            defer(d, j)
        harness.wait_until(lambda: all(rcpt_state(inst, q, 0)["status"] == str(RCPT_DEFERRED) for q in qids),
                           10, "three deferred")
        out = flush(inst)
        assert "3 recipient" in out, out
        d.want(3)
        again = [d.job() for _ in range(3)]
        assert sorted(j["qid"] for j in again) == sorted(qids)
        assert all(j["rcpts"][0]["attempts"] == 1 for j in again)
        # a flush of nothing deferred counts 0
        assert "0 recipient" in flush(inst, "nothing.example")
        if harness.IS_ROOT:
            uid = harness.ACCOUNTS["smtpd"][0]
            r = inst.run_tool("posternctl", ["-c", inst.conf_path, "flush"],
                              user=uid, group=uid, extra_groups=[])
            assert r.returncode == 77, (r.returncode, r.stderr)   # EX_NOPERM
        r = inst.run_tool("posternctl", ["-c", inst.conf_path, "flush", "bad id!"])
        assert r.returncode == 64, r.returncode
        d.close()


def test_expiry_bounces_with_last_error():
    with instance("sched-expire", queue_lifetime="1s", min_backoff="1s", max_backoff="2s") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["x@exp.example"])
        d.want()
        job = d.job()
        harness.wait_until(lambda: time.time() >= job["arrival"] + 1.05, 5, "the lifetime passed")
        off = inst.log_size()
        d.result(job, [(job["rcpts"][0]["index"], RCPT_DEFERRED, "4.4.1", "connect to mx: Connection timed out")])
        inst.wait_log(r"%s: from=<[^>]*>, status=expired, returned to sender" % qid, since=off)
        # the bounce as recorded is in queue-mgr's delivery line; the record
        # goes once its notice is queued (bounce.c)
        st = harness.wait_until(lambda: inst.deliveries(qid, "x@exp.example", "bounced", since=off), 10,
                                "bounced")[0]
        assert st.dsn == "4.4.1", st.line
        assert st.reply.startswith("message expired after 1 second") or \
            st.reply.startswith("message expired after 2 seconds"), st.line
        assert st.reply.endswith("last error: connect to mx: Connection timed out"), st.line
        inst.wait_log(r"%s: sender non-delivery notification: [0-9A-Z]+$" % qid, since=off)
        inst.wait_log(r"%s: removed$" % qid, since=off)
        assert qid not in inst.queue_ids()
        d.close()


def test_local_recipients_go_to_the_local_pool():
    """local_transport = maildir: local recipients are jobs for the local
    role's socket (D_DEST "maildir"), remote ones for deliver's; a
    deliver takes no local job and the local role no remote one."""
    with instance("sched-local", master_service_disable="deliver, local") as inst:
        loc = FakeDeliver(inst, uid=harness.ACCOUNTS["local"][0] if harness.IS_ROOT else None,
                          sock="queue/local.sock")
        rem = FakeDeliver(inst)
        qid = inst.send(rcpts=[harness.LOCAL_RCPT, "r@remote.example"])
        loc.want(2)
        rem.want(2)
        lj, rj = loc.job(), rem.job()
        assert lj["dest"] == "maildir" and [r["addr"] for r in lj["rcpts"]] == [harness.LOCAL_RCPT], lj
        assert rj["dest"] == "remote.example" and [r["addr"] for r in rj["rcpts"]] == ["r@remote.example"], rj
        loc.all_sent(lj)
        rem.all_sent(rj)
        inst.wait_removed(qid)
        loc.close()
        rem.close()


def test_local_transport_lmtp_goes_to_deliver():
    """local_transport = lmtp:...: local recipients go to the ordinary
    deliver pool with the local_transport value as the destination."""
    with instance("sched-lmtp", master_service_disable="deliver, local",
                  local_transport="lmtp:unix:/run/dovecot/lmtp") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=[harness.LOCAL_RCPT])
        d.want(1)
        job = d.job()
        assert job["dest"] == "lmtp:unix:/run/dovecot/lmtp" and job["rcpts"][0]["addr"] == harness.LOCAL_RCPT, job
        d.all_sent(job)
        inst.wait_removed(qid)
        d.close()


def test_relayhost_is_the_destination():
    with instance("sched-relay", relayhost="[127.0.0.1]:2525") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["a@one.example", "b@two.example"])
        d.want(2)
        job = d.job()
        assert job["dest"] == "[127.0.0.1]:2525" and len(job["rcpts"]) == 2, job
        d.no_job(1.0)
        d.all_sent(job)
        inst.wait_log(r"%s: removed" % qid)
        d.close()


def test_only_deliver_may_connect_and_bad_frames():
    with instance("sched-peer") as inst:
        path = os.path.join(inst.run_dir, DELIVER_SOCK)
        harness.wait_until(lambda: os.path.exists(path), 10, "the deliver socket")
        if harness.IS_ROOT:
            off = inst.log_size()
            s = connect_as_deliver(path, uid=harness.ACCOUNTS["smtpd"][0])
            s.settimeout(5)
            assert s.recv(16) == b"", "a non-deliver peer was served"
            inst.wait_log(r"deliver socket: refused connection from uid %d" % harness.ACCOUNTS["smtpd"][0],
                          since=off)
            s.close()
        qid = inst.send(rcpts=["r@bad.example"])
        # hostile results: each disconnects, and nothing is applied
        for body in ([f_u64(T_D_JOB, 1), f_str(T_QID, qid),
                      f_nested(T_RCPT, [f_u64(T_R_INDEX, 0), f_u64(T_R_STATUS, 9)])],
                     [f_u64(T_D_JOB, 1), f_str(T_QID, "not-an-id")],
                     [f_u64(T_D_JOB, 1), f_str(T_QID, qid),
                      f_nested(T_RCPT, [f_u64(T_R_INDEX, 0), f_u64(T_R_STATUS, RCPT_SENT),
                                        f_str(T_R_DSN, "2.0.0\x01")])],
                     [f_u64(T_D_JOB, 1), f_str(T_QID, qid), (T_RCPT, b"\x01\x00\xff\xff\xff\xff")]):
            d = FakeDeliver(inst)
            d.sock.sendall(frame(D_RESULT, body, 0))
            try:
                got = d.recv(5)
                assert got is None, "queue-mgr answered a bad frame"
            except harness.Closed:
                pass
            d.close()
        d = FakeDeliver(inst)
        d.sock.sendall(frame(3, [], 1))   # Q_COMMIT on the deliver socket
        try:
            assert d.recv(5) is None
        except harness.Closed:
            pass
        d.close()
        assert stored(inst, qid)["rcpt0.status"] == str(RCPT_PENDING)
        # still serving
        d = FakeDeliver(inst)
        finish(inst, d, take(d, qid))
        d.close()


def test_in_flight_when_queue_mgr_dies_is_tried_again():
    import signal
    with instance("sched-qmkill") as inst:
        d = FakeDeliver(inst)
        qid = inst.send(rcpts=["r@crash.example"])
        take(d, qid)
        old = inst.pids("queue-mgr")
        os.kill(old[0], signal.SIGKILL)
        harness.wait_until(lambda: [p for p in inst.pids("queue-mgr") if p not in old], 30,
                           "a new queue-mgr after the kill -9")
        inst.wait_ready(30)
        d.close()
        # nothing in storage said "in flight": the recipient is simply due
        d2 = harness.wait_until(lambda: _try_connect(inst), 30, "the new deliver socket")
        job2 = take(d2, qid)
        assert job2["rcpts"][0]["attempts"] == 0, job2
        finish(inst, d2, job2)
        d2.close()


def _try_connect(inst):
    try:
        return FakeDeliver(inst)
    except (OSError, AssertionError):
        return None


def test_unprivileged_queue_mgr_serves_its_own_uid():
    if not harness.IS_ROOT:
        raise harness.Skip("the unprivileged case needs root to pick the user")
    unpriv = (64010, 64010)
    with harness.Instance("sched-unpriv", run_as=unpriv, relayhost=None, master_service_disable="deliver") as inst:
        # queue-mgr made RUN/deliver/queue itself; only its own uid may take jobs
        d = FakeDeliver(inst, uid=unpriv[0])
        qid = inst.send(rcpts=["r@unpriv.example"])
        finish(inst, d, take(d, qid))
        d.close()
        off = inst.log_size()
        s = connect_as_deliver(os.path.join(inst.run_dir, DELIVER_SOCK), uid=harness.ACCOUNTS["deliver"][0])
        s.settimeout(5)
        assert s.recv(16) == b""
        s.close()
        inst.wait_log(r"deliver socket: refused connection", since=off)
