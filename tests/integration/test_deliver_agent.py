"""
The deliver process against a FAKE queue-mgr (this file: it binds
RUN/deliver/queue/deliver.sock, holds deliver's D_WANTs, hands out D_JOBs
with a read-only spool descriptor over SCM_RIGHTS and reads the D_RESULTs),
the real resolver on a hermetic DNS (dnsfix.py: NSD) and receiving servers
on 127.0.0.x (sinkfix.py, plus a small AUTH server here). The deliver and
resolver binaries run directly from a temporary config, not through the
master, until the queue side is merged.

Cases: MX preference; fallback to the second MX when the first refuses,
greets 421, or fails TLS (and plain text too); the plain-text retry after a
failed handshake; implicit MX; null MX; NXDOMAIN; SERVFAIL defers; the SPEC
§6 line; connection reuse across two jobs; relayhost with AUTH over TLS;
the descriptor deliver holds is read-only and a writable one is refused;
bad jobs; D_WANTs re-issued and results kept while queue-mgr is away; SIGHUP
drains (the delivery in flight finishes, then deliver exits).
"""

import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import base64

import dnsfix
import harness
import sinkfix
from test_resolver import parse_fields as fields, u64

MAGIC = 0x4E545350
IPC_F_FD = 1
D_WANT, D_JOB, D_RESULT = 64, 65, 66
T_QID, T_TEXT = 1, 3
T_SENDER, T_RCPT, T_ENVID, T_RET, T_BODY, T_FLAGS = 17, 18, 19, 20, 21, 22
T_ARRIVAL, T_SIZE = 29, 30
T_R_ADDR, T_R_ORCPT, T_R_NOTIFY, T_R_STATUS, T_R_ATTEMPTS = 48, 49, 50, 51, 52
T_R_DSN, T_R_REPLY = 54, 55
T_D_JOB, T_D_DEST, T_D_DISPATCH, T_D_FLAGS, T_R_INDEX = 112, 113, 114, 115, 116
D_F_DEST_UNREACHABLE, D_F_DEST_REACHED = 1, 2
STATUS = {1: "deferred", 2: "sent", 3: "bounced"}

ZONE = """
pref        MX 20 mx2.pref
pref        MX 10 mx1.pref
mx1.pref    A 127.0.0.11
mx2.pref    A 127.0.0.12
implicit    A 127.0.0.13
nullmx      MX 0 .
refused     MX 10 mx1.refused
refused     MX 20 mx2.pref
mx1.refused A 127.0.0.14
busy        MX 10 mx1.busy
busy        MX 20 mx2.pref
mx1.busy    A 127.0.0.15
badtls      MX 10 mx1.badtls
badtls      MX 20 mx2.pref
mx1.badtls  A 127.0.0.16
plain       MX 10 mx1.plain
mx1.plain   A 127.0.0.17
relay       A 127.0.0.18
stall       MX 10 mx1.stall
mx1.stall   A 127.0.0.19
servfail    MX 10 mx.refused.test.
"""

LINE_RE = re.compile(
    r"(?P<qid>[0-9A-Z]{12}): to=<(?P<to>[^>]*)>, relay=(?P<relay>\S+), delay=(?P<delay>\d+(\.\d{1,2})?), "
    r"delays=(?P<a>\d+(\.\d+)?)/(?P<b>\d+(\.\d+)?)/(?P<c>\d+(\.\d+)?)/(?P<d>\d+(\.\d+)?), "
    r"dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), status=(?P<status>sent|deferred|bounced) \((?P<reply>.*)\)$")

_qid_n = [0]


def new_qid():
    _qid_n[0] += 1
    return "%08dAAAA" % _qid_n[0]


# ------------------------------------------------------------ the wire format

def field(tag, v):
    if isinstance(v, int):
        v = struct.pack("<Q", v)
    elif isinstance(v, str):
        v = v.encode()
    return struct.pack("<HI", tag, len(v)) + v


def frame(mtype, body, reqid, flags=0):
    return struct.pack("<IHHII", MAGIC, mtype, flags, len(body), reqid) + body


def decode_result(body):
    r = {"rcpts": {}}
    for tag, v in fields(body):
        if tag == T_D_JOB:
            r["job"] = u64(v)
        elif tag == T_QID:
            r["qid"] = v.decode()
        elif tag == T_D_FLAGS:
            r["flags"] = u64(v)
        elif tag == T_RCPT:
            rc = {}
            for t2, v2 in fields(v):
                if t2 == T_R_INDEX:
                    rc["index"] = u64(v2)
                elif t2 == T_R_STATUS:
                    rc["status"] = STATUS.get(u64(v2), u64(v2))
                elif t2 == T_R_DSN:
                    rc["dsn"] = v2.decode()
                elif t2 == T_R_REPLY:
                    rc["reply"] = v2.decode()
            r["rcpts"][rc["index"]] = rc
    return r


def job_body(job_id, qid, dest, rcpts, size, sender="sender@example.org", flags=0, arrival=None,
             extra=b""):
    now = time.time()
    b = field(T_D_JOB, job_id) + field(T_QID, qid) + field(T_D_DEST, dest) + field(T_SENDER, sender)
    b += field(T_RET, 0) + field(T_BODY, 1) + field(T_FLAGS, flags)
    b += field(T_ARRIVAL, int(arrival if arrival is not None else now - 3)) + field(T_SIZE, size)
    b += field(T_D_DISPATCH, int(now * 1000) - 1000)
    for i, a in enumerate(rcpts):
        rb = field(T_R_INDEX, i) + field(T_R_ADDR, a) + field(T_R_NOTIFY, 0) + field(T_R_ATTEMPTS, 0)
        b += field(T_RCPT, rb)
    return b + extra


class FakeQueue:
    """queue-mgr's side of deliver.sock: holds D_WANTs, sends jobs, keeps results."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.wants = []             # (conn, reqid), oldest first
        self.results = []
        self.conns = []
        self.stopping = False
        self.listener = None
        self.thread = None
        self.listen()

    def listen(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        os.chmod(self.path, 0o666)
        s.listen(16)
        self.listener = s

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        bufs = {}
        while not self.stopping:
            socks = [c for c in self.conns] + ([self.listener] if self.listener else [])
            try:
                r, _, _ = select.select(socks, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in r:
                if s is self.listener:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    with self.lock:
                        self.conns.append(c)
                    bufs[c] = b""
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._drop(s)
                    bufs.pop(s, None)
                    continue
                bufs[s] += data
                while len(bufs[s]) >= 16:
                    magic, mtype, _fl, ln, reqid = struct.unpack_from("<IHHII", bufs[s])
                    assert magic == MAGIC
                    if len(bufs[s]) < 16 + ln:
                        break
                    body = bufs[s][16:16 + ln]
                    bufs[s] = bufs[s][16 + ln:]
                    with self.lock:
                        if mtype == D_WANT:
                            self.wants.append((s, reqid))
                        elif mtype == D_RESULT:
                            self.results.append(decode_result(body))

    def _drop(self, c):
        with self.lock:
            if c in self.conns:
                self.conns.remove(c)
            self.wants = [w for w in self.wants if w[0] is not c]
        c.close()

    def nwants(self):
        with self.lock:
            return len(self.wants)

    def send_job(self, body, fd, timeout=20):
        """Sends a D_JOB for the oldest D_WANT (waits for one)."""
        harness.wait_until(lambda: self.nwants() > 0, timeout, "a D_WANT from deliver")
        with self.lock:
            c, reqid = self.wants.pop(0)
        data = frame(D_JOB, body, reqid, IPC_F_FD if fd is not None else 0)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))] if fd is not None else []
        c.sendmsg([data], anc)

    def result(self, job_id, timeout=40):
        def got():
            with self.lock:
                for r in self.results:
                    if r.get("job") == job_id:
                        return r
            return None
        return harness.wait_until(got, timeout, "the D_RESULT of job %d" % job_id)

    def disconnect_all(self):
        """queue-mgr goes away: the listener and every connection close."""
        with self.lock:
            conns, self.conns = self.conns, []
            self.wants = []
            lis, self.listener = self.listener, None
        for c in conns:
            c.close()
        if lis:
            lis.close()

    def stop(self):
        self.stopping = True
        self.disconnect_all()
        if self.thread:
            self.thread.join(5)


class _Server:
    """A loopback TCP server whose handle(conn) runs per connection, in its
    own thread when threaded. sessions counts connections accepted."""

    threaded = False

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sessions = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.sessions += 1
            if self.threaded:
                threading.Thread(target=self._run, args=(c,), daemon=True).start()
            else:
                self._run(c)

    def _run(self, c):
        try:
            c.settimeout(10)
            self.handle(c)
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            c.close()


class AuthServer(_Server):
    """A relayhost: STARTTLS, then AUTH PLAIN/LOGIN (only over TLS), then mail.
    Records the credentials it was given and the messages."""

    threaded = True

    def __init__(self, host, port):
        super().__init__(host, port)
        cert, key = harness.tls_files()
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.auth = []
        self.messages = []

    def handle(self, c):
        f = c.makefile("rb")
        tls = False

        def send(s):
            c.sendall(s.encode() + b"\r\n")
        send("220 relay.t.test ESMTP")
        in_data, data, authed = False, [], None
        while True:
            line = f.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n")
            if in_data:
                if line == b".":
                    in_data = False
                    self.messages.append((authed, tls, b"\r\n".join(data)))
                    send("250 2.0.0 Ok: queued")
                else:
                    data.append(line)
                continue
            verb = line.split(b" ")[0].upper()
            if verb == b"EHLO":
                caps = ["250-relay.t.test", "250-PIPELINING", "250-8BITMIME"]
                caps.append("250 AUTH PLAIN LOGIN" if tls else "250 STARTTLS")
                c.sendall(("\r\n".join(caps) + "\r\n").encode())
            elif verb == b"STARTTLS" and not tls:
                send("220 2.0.0 go ahead")
                c = self.ctx.wrap_socket(c, server_side=True)
                f = c.makefile("rb")
                tls = True
            elif verb == b"AUTH" and tls:
                parts = line.split(b" ")
                if parts[1].upper() == b"PLAIN":
                    if len(parts) > 2:
                        blob = parts[2]
                    else:
                        send("334 ")
                        blob = f.readline().strip()
                    _z, user, pw = base64.b64decode(blob).split(b"\0")
                else:
                    send("334 VXNlcm5hbWU6")
                    user = base64.b64decode(f.readline().strip())
                    send("334 UGFzc3dvcmQ6")
                    pw = base64.b64decode(f.readline().strip())
                self.auth.append((user.decode(), pw.decode()))
                if (user, pw) == (b"alice", b"s3cret pass"):
                    authed = user.decode()
                    send("235 2.7.0 Authentication successful")
                else:
                    send("535 5.7.8 bad credentials")
            elif verb == b"MAIL":
                send("250 2.1.0 Ok" if authed else "530 5.7.0 Authentication required")
            elif verb == b"RCPT":
                send("250 2.1.5 Ok")
            elif verb == b"DATA":
                in_data, data = True, []
                send("354 go on")
            elif verb == b"RSET":
                send("250 Ok")
            elif verb == b"QUIT":
                send("221 bye")
                return
            else:
                send("502 5.5.2 what")


class TlsThenRefuse(_Server):
    """Offers STARTTLS and breaks the handshake; in plain text it answers
    421 to MAIL: so neither way works and the next MX must take the mail."""

    def handle(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 badtls ESMTP\r\n")
        for line in f:
            v = line[:4].upper()
            if v == b"EHLO":
                c.sendall(b"250-badtls\r\n250 STARTTLS\r\n")
            elif v == b"STAR":
                c.sendall(b"220 go ahead\r\n" + os.urandom(2048))
                return
            elif v == b"MAIL":
                c.sendall(b"421 4.3.2 not in plain text\r\n")
                return
            elif v == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")


class GatedServer(_Server):
    """Accepts, and says nothing until gate is set; then a plain, willing
    SMTP server."""

    def __init__(self, host, port):
        super().__init__(host, port)
        self.gate = threading.Event()
        self.messages = 0

    def __exit__(self, *exc):
        self.gate.set()
        super().__exit__(*exc)

    def handle(self, c):
        self.gate.wait()
        f = c.makefile("rb")
        c.sendall(b"220 gated ESMTP\r\n")
        in_data = False
        for line in f:
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    self.messages += 1
                    c.sendall(b"250 2.0.0 Ok\r\n")
                continue
            v = line[:4].upper()
            if v == b"DATA":
                in_data = True
                c.sendall(b"354 go on\r\n")
            elif v == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")


# ------------------------------------------------------------ the world

class World:
    """NSD, the resolver and deliver from one temporary config, the fake
    queue-mgr, and a message file."""

    def __init__(self, ns, **conf):
        self.port = None
        for _ in range(50):
            p = harness.free_port()
            ok = True
            for i in range(11, 20):
                try:
                    with socket.socket() as s:
                        s.bind(("127.0.0.%d" % i, p))
                except OSError:
                    ok = False
            if ok:
                self.port = p
                break
        assert self.port, "no port free on 127.0.0.11-19"
        c = {
            "dns_stub_zones": ns.stub_zones(extra=[("refused.test", ns.port)]),
            "dnssec_trust_anchor_file": "",
            "remote_smtp_port": str(self.port),
            "relayhost": None,
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "10s",
            "smtp_mail_timeout": "10s",
            "smtp_rcpt_timeout": "10s",
            "smtp_data_init_timeout": "10s",
            "smtp_data_xfer_timeout": "10s",
            "smtp_data_done_timeout": "10s",
            "smtp_quit_timeout": "5s",
            "smtp_connection_cache_time_limit": "10s",
            "deliver_concurrency": "4",
        }
        c.update(conf)
        self.inst = harness.Instance(name="agent", tls=False, **c)
        self.procs = {}
        self.q = None
        self.msg_path = os.path.join(self.inst.dir, "message")
        body = (b"From: <sender@example.org>\r\nTo: <x@pref.t.test>\r\nSubject: agent test\r\n"
                b"Message-ID: <agent.%d@example.org>\r\n\r\nhello from the agent test\r\n" % os.getpid())
        with open(self.msg_path, "wb") as f:
            f.write(body)
        self.msg_size = len(body)
        self.next_job = 0

    def __enter__(self):
        run = self.inst.run_dir
        os.makedirs(os.path.join(run, "deliver", "queue"), exist_ok=True)
        os.makedirs(os.path.join(run, "deliver", "resolver"), exist_ok=True)
        for d in (run, os.path.join(run, "deliver"), os.path.join(run, "deliver", "queue"),
                  os.path.join(run, "deliver", "resolver")):
            os.chmod(d, 0o755)
        self.q = FakeQueue(os.path.join(run, "deliver", "queue", "deliver.sock")).start()
        self.logf = open(self.inst.log_path, "ab")
        self.start("resolver", "ready on")
        self.start("deliver", "ready:")
        return self

    def start(self, name, marker):
        env = harness.daemon_env({"POSTERN_FOREGROUND": "1"})
        before = len(self.log())
        p = subprocess.Popen([harness.binary(name), "-c", self.inst.conf_path], stdout=self.logf,
                             stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        self.procs[name] = p

        def ready():
            if p.poll() is not None:
                raise AssertionError("%s exited with %s: %s" % (name, p.returncode, self.log()[-2000:]))
            return marker in self.log()[before:]
        harness.wait_until(ready, 20, "%s to be ready" % name)
        return p

    def __exit__(self, *exc):
        for name in ("deliver", "resolver"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.q.stop()
        self.logf.close()

    def log(self):
        with open(self.inst.log_path, errors="replace") as f:
            return f.read()

    def job(self, dest, rcpts, fd=None, qid=None, wait=True, **kw):
        """Hands deliver one job; returns (job id, qid, result or None)."""
        self.next_job += 1
        jid = self.next_job
        qid = qid or new_qid()
        own = fd is None
        if own:
            fd = os.open(self.msg_path, os.O_RDONLY)
        try:
            self.q.send_job(job_body(jid, qid, dest, rcpts, self.msg_size, **kw), fd)
        finally:
            if own:
                os.close(fd)
        return jid, qid, (self.q.result(jid) if wait else None)

    def lines(self, qid):
        out = []
        for line in self.log().splitlines():
            m = LINE_RE.search(line)
            if m and m.group("qid") == qid:
                out.append(m)
        return out


def _sink(host, port, **kw):
    return sinkfix.Sink(host=host, port=port, **kw)


def _need():
    if not dnsfix.available():
        raise harness.Skip("nsd is not installed")
    if not sinkfix.HAVE_AIOSMTPD:
        raise harness.Skip("python3-aiosmtpd is not installed")


# ------------------------------------------------------------ tests

def test_deliver_agent_mx_routes():
    """MX preference, fallbacks (refused, 421 greeting, TLS failing both
    ways), the plain-text retry, implicit MX, null MX, NXDOMAIN, SERVFAIL,
    the SPEC §6 line and the result flags."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns, World(ns) as w:
        P = w.port
        with _sink("127.0.0.11", P, tls=harness.tls_files()) as mx1, _sink("127.0.0.12", P) as mx2, \
                _sink("127.0.0.13", P) as imp, sinkfix.BadServer("greeting", host="127.0.0.15", port=P), \
                TlsThenRefuse("127.0.0.16", P) as badtls, \
                sinkfix.BadServer("tls_garbage", host="127.0.0.17", port=P) as plain:
            # MX preference: mx1 (10) before mx2 (20), over TLS, two recipients in one transaction
            jid, qid, r = w.job("pref.t.test", ["a@pref.t.test", "b@pref.t.test"])
            assert [r["rcpts"][i]["status"] for i in (0, 1)] == ["sent", "sent"], r
            assert r["rcpts"][0]["dsn"] == "2.0.0", r
            assert r["flags"] & D_F_DEST_REACHED and not r["flags"] & D_F_DEST_UNREACHABLE, r
            got = mx1.wait_messages(1)
            assert got[0].rcpt_tos == ["a@pref.t.test", "b@pref.t.test"] and got[0].tls, got
            assert mx2.received() == []
            lines = w.lines(qid)
            assert len(lines) == 2, w.log()[-3000:]
            m = lines[0]
            assert m.group("to") == "a@pref.t.test"
            assert m.group("relay") == "mx1.pref.t.test[127.0.0.11]:%d" % P, m.group(0)
            assert m.group("status") == "sent" and m.group("dsn") == "2.0.0"
            assert m.group("reply").startswith("250"), m.group(0)
            # delay is the time since arrival (3 s ago): at least b
            assert float(m.group("delay")) >= 2.0, m.group(0)
            assert float(m.group("b")) >= 1.0, m.group(0)
            assert re.search(r"TLS connection established to mx1\.pref\.t\.test\[127\.0\.0\.11\]:%d" % P, w.log())

            # the first MX refuses connections
            jid, qid, r = w.job("refused.t.test", ["c@refused.t.test"])
            assert r["rcpts"][0]["status"] == "sent", r
            assert w.lines(qid)[0].group("relay").startswith("mx2.pref.t.test[127.0.0.12]"), w.lines(qid)[0].group(0)
            # the first MX greets with 421
            jid, qid, r = w.job("busy.t.test", ["d@busy.t.test"])
            assert r["rcpts"][0]["status"] == "sent", r
            assert "d@busy.t.test" in mx2.rcpts()
            # TLS fails on the first MX: the second takes it, and the first
            # gets no plain-text retry (that comes only when no host is left)
            jid, qid, r = w.job("badtls.t.test", ["e@badtls.t.test"])
            assert r["rcpts"][0]["status"] == "sent", r
            assert "e@badtls.t.test" in mx2.rcpts()
            assert badtls.sessions == 1, "a plain-text retry although the next MX was there"
            assert not re.search(r"%s: TLS handshake with mx1\.badtls\.t\.test failed: trying again in plain text"
                                 % qid, w.log()), w.log()[-3000:]
            # TLS fails on the only MX: the plain-text retry succeeds there
            jid, qid, r = w.job("plain.t.test", ["f@plain.t.test"])
            assert r["rcpts"][0]["status"] == "sent", r
            assert re.search(r"%s: TLS handshake with mx1\.plain\.t\.test failed: trying again in plain text"
                             % qid, w.log()), w.log()[-3000:]
            assert w.lines(qid)[0].group("relay").startswith("mx1.plain.t.test[127.0.0.17]")
            assert plain.connections >= 2
            # implicit MX
            jid, qid, r = w.job("implicit.t.test", ["g@implicit.t.test"])
            assert r["rcpts"][0]["status"] == "sent", r
            assert imp.wait_messages(1)[0].rcpt_tos == ["g@implicit.t.test"]
            # null MX bounces at once
            jid, qid, r = w.job("nullmx.t.test", ["h@nullmx.t.test"])
            assert r["rcpts"][0]["status"] == "bounced" and r["rcpts"][0]["dsn"] == "5.1.10", r
            m = w.lines(qid)[0]
            assert m.group("relay") == "none" and m.group("status") == "bounced", m.group(0)
            # NXDOMAIN bounces
            jid, qid, r = w.job("nope.t.test", ["i@nope.t.test"])
            assert r["rcpts"][0]["status"] == "bounced" and r["rcpts"][0]["dsn"] == "5.1.2", r
            # SERVFAIL defers
            jid, qid, r = w.job("servfail.t.test", ["j@servfail.t.test"])
            assert r["rcpts"][0]["status"] == "deferred" and r["rcpts"][0]["dsn"] == "4.4.3", r
            assert w.lines(qid)[0].group("status") == "deferred"
            assert not r["flags"] & D_F_DEST_REACHED
        # every server down: unreachable, deferred 4.4.1
        jid, qid, r = w.job("pref.t.test", ["k@pref.t.test"])
        assert r["rcpts"][0]["status"] == "deferred" and r["rcpts"][0]["dsn"] == "4.4.1", r
        assert r["flags"] & D_F_DEST_UNREACHABLE, r
        assert w.procs["deliver"].poll() is None


test_deliver_agent_mx_routes.timeout = 180


def test_deliver_agent_connection_reuse():
    """Two jobs to one host go over one connection; the cached session is
    keyed by address, port and TLS."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns, World(ns) as w:
        with _sink("127.0.0.11", w.port, tls=harness.tls_files()) as mx1:
            _, q1, r1 = w.job("pref.t.test", ["a@pref.t.test"])
            _, q2, r2 = w.job("pref.t.test", ["b@pref.t.test"])
            assert r1["rcpts"][0]["status"] == "sent" and r2["rcpts"][0]["status"] == "sent", (r1, r2)
            got = mx1.wait_messages(2)
            assert got[0].session_id == got[1].session_id, "the second job opened a new connection"
            assert w.log().count("TLS connection established to mx1.pref") == 1


def test_deliver_agent_relayhost_auth():
    """relayhost [relay.t.test]:PORT with AUTH from relayhost_auth_file,
    over TLS; a file others can read is a start-up error."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns:
        port = None
        w0 = World(ns)
        port = w0.port
        auth_file = os.path.join(w0.inst.dir, "relay_auth")
        with open(auth_file, "w") as f:
            f.write("# relayhost credentials\nother.t.test bob:x\nrelay.t.test alice:s3cret pass\n")
        os.chmod(auth_file, 0o644)
        relay = "[relay.t.test]:%d" % port
        # group/other-readable: refused at start
        w0.inst.write_config(relayhost=relay, relayhost_auth_file=auth_file)
        p = subprocess.run([harness.binary("deliver"), "-c", w0.inst.conf_path], capture_output=True,
                           env=harness.daemon_env({"POSTERN_FOREGROUND": "1"}), timeout=20)
        err = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode != 0 and "relayhost_auth_file" in err and "chmod 600" in err, err
        assert "s3cret" not in err
        os.chmod(auth_file, 0o600)
        w = World(ns, relayhost=relay, relayhost_auth_file=auth_file)
        w.port = port
        w.inst.write_config(remote_smtp_port="25")  # the relayhost's own port wins
        with w, AuthServer("127.0.0.18", port) as srv:
            jid, qid, r = w.job(relay, ["x@far.example", "y@far.example"])
            assert r["rcpts"][0]["status"] == "sent", (r, w.log()[-3000:])
            assert srv.auth == [("alice", "s3cret pass")], srv.auth
            assert srv.messages and srv.messages[0][0] == "alice" and srv.messages[0][1], srv.messages
            m = w.lines(qid)[0]
            assert m.group("relay") == "relay.t.test[127.0.0.18]:%d" % port, m.group(0)
            assert "s3cret" not in w.log()


def test_deliver_agent_descriptor_and_bad_jobs():
    """deliver holds the spool descriptor read-only; a writable one, a bad
    address, a bad QID, an unknown destination form and garbage are refused
    without a crash, and the slot comes back."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns, World(ns) as w:
        with sinkfix.BadServer("silent", host="127.0.0.19", port=w.port):
            jid, qid, _ = w.job("stall.t.test", ["s@stall.t.test"], wait=False)
            pid = w.procs["deliver"].pid

            def spool_fd_flags():
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == w.msg_path:
                            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                                for line in f:
                                    if line.startswith("flags:"):
                                        return int(line.split()[1], 8)
                    except OSError:
                        continue
                return None
            flags = harness.wait_until(spool_fd_flags, 20, "deliver to hold the spool file")
            assert flags & os.O_ACCMODE == os.O_RDONLY, oct(flags)
            # a writable descriptor is refused
            fd = os.open(w.msg_path, os.O_RDWR)
            try:
                jid2, qid2, r = w.job("pref.t.test", ["a@pref.t.test"], fd=fd)
            finally:
                os.close(fd)
            assert r["rcpts"][0]["status"] == "deferred" and "read-only" in r["rcpts"][0]["reply"], r
            # a bad recipient address
            jid3, _, r = w.job("pref.t.test", ["not an address"])
            assert r["rcpts"] == {} or r["rcpts"][0]["status"] == "deferred", r
            # a destination that is neither a domain nor a relayhost form
            jid4, _, r = w.job("[bad", ["a@pref.t.test"])
            assert r["rcpts"][0]["status"] == "deferred" and "invalid destination" in r["rcpts"][0]["reply"], r
            # a job without a QID: no result possible, but the slot comes back
            before = w.q.nwants()
            w.q.send_job(field(T_D_JOB, 999) + field(T_D_DEST, "pref.t.test"), None)
            harness.wait_until(lambda: w.q.nwants() >= before, 10, "the slot to be offered again")
            assert "invalid job" in w.log()
            # a size larger than the file
            body = job_body(777, new_qid(), "pref.t.test", ["a@pref.t.test"], w.msg_size + 100)
            fd = os.open(w.msg_path, os.O_RDONLY)
            w.q.send_job(body, fd)
            os.close(fd)
            r = w.q.result(777)
            assert r["rcpts"][0]["status"] == "deferred" and "shorter" in r["rcpts"][0]["reply"], r
            assert w.procs["deliver"].poll() is None


def test_deliver_agent_queue_mgr_away():
    """D_WANTs are re-issued when queue-mgr comes back; a result of a
    delivery that ended while it was away is sent once it is back."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns, World(ns) as w:
        harness.wait_until(lambda: w.q.nwants() == 4, 10, "deliver_concurrency D_WANTs")
        with GatedServer("127.0.0.11", w.port) as mx1:
            jid, qid, _ = w.job("pref.t.test", ["slow@pref.t.test"], wait=False)
            harness.wait_until(lambda: mx1.sessions >= 1, 20, "deliver to connect")
            # queue-mgr goes away while the delivery runs
            w.q.disconnect_all()
            mx1.gate.set()
            harness.wait_until(lambda: w.lines(qid), 20, "the delivery line")
            assert mx1.messages == 1
            w.q.listen()
            r = w.q.result(jid)
            assert r["rcpts"][0]["status"] == "sent", r
            harness.wait_until(lambda: w.q.nwants() == 4, 10, "the D_WANTs again")


def test_deliver_agent_sighup_drains():
    """SIGHUP (a reload): no new job is asked for, the delivery in flight
    finishes and its result is sent, then deliver exits by itself."""
    _need()
    with dnsfix.Nsd({"t.test": ZONE}) as ns, World(ns) as w:
        harness.wait_until(lambda: w.q.nwants() == 4, 10, "deliver_concurrency D_WANTs")
        with GatedServer("127.0.0.11", w.port) as mx1:
            jid, qid, _ = w.job("pref.t.test", ["drain@pref.t.test"], wait=False)
            harness.wait_until(lambda: mx1.sessions >= 1, 20, "deliver to connect")
            p = w.procs["deliver"]
            p.send_signal(signal.SIGHUP)
            harness.wait_until(lambda: "draining: 1 deliveries in flight" in w.log(), 10, "deliver to drain")
            assert p.poll() is None, "deliver exited with a delivery in flight"
            mx1.gate.set()
            r = w.q.result(jid)
            assert r["rcpts"][0]["status"] == "sent", r
            assert p.wait(20) == 0
            assert mx1.messages == 1
