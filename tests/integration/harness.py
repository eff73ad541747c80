"""
harness.py - start real Postern daemons from a temporary configuration and
talk to them the way mail clients do.

What it offers the test files:
  Instance        one master (`postern -c CONF run`) with its own ports,
                  spool, run dir and log; start/stop, children from /proc,
                  the queue through `mailq -j`, spool files, tools.
  shared(key)     an instance shared by the tests that can share one
                  (started on first use, restarted if it died).
  Client          a raw SMTP client: sends bytes, reads whole (multi-line)
                  replies with a deadline, STARTTLS on the same socket.
  wait_until()    the only way tests wait: poll a condition with a deadline.
  sanitizer_reports()  what AddressSanitizer / UBSan wrote into the logs.

Nothing here sleeps to synchronise: every wait polls a condition until a
deadline and fails with a message that says what it was waiting for.
Only 127.0.0.1 is ever contacted.
"""

import atexit
import json
import os
import resource
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.path.abspath(os.path.join(REPO, os.environ.get("BIN", "bin")))
IS_ROOT = os.geteuid() == 0
SAN = os.environ.get("SAN") == "1"
# LeakSanitizer needs /proc at exit, which a chroot jail does not have
# ("Can't open /proc/PID/task" then a fatal error): sanitizer runs use
# chroot = no unless SAN_CHROOT=1. The release run covers the jails.
CHROOT = IS_ROOT and (not SAN or os.environ.get("SAN_CHROOT") == "1")
HOST = "test.postern.invalid"
LOCALHOST = "127.0.0.1"

# Accounts used when the tests run as root (numeric: no /etc/passwd entries).
ACCOUNTS = {
    "smtpd": (64001, 64001),
    "queue": (64002, 64002),
    "resolver": (64003, 64003),
    "deliver": (64004, 64004),
    "auth": (64005, 64005),
    "local": (64006, 64006),
}

QID_RE = re.compile(r"^[0-9A-Z]{12,}$")
QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Z]{12,})$")

# A local recipient (listed in the mailboxes file) and remote ones. Tests that
# check that a message sits in the queue use remote recipients: relayhost
# points at a closed loopback port, so remote mail is deferred and stays
# queued even once deliver exists.
LOCAL_RCPT = "demo@localhost"
REMOTE_RCPT = "rcpt@remote.example"

SAN_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "Sanitizer has encountered a fatal error",
)


class Skip(Exception):
    """Raised by a test that does not apply here (reported as SKIP)."""


class Closed(Exception):
    """The server closed the connection."""


# --------------------------------------------------------------------------
# waiting


def wait_until(cond, timeout, what, interval=0.05, final=()):
    """Polls cond() until it returns a true value (which is returned) or the
    deadline passes (TimeoutError naming `what`). Exceptions from cond count
    as "not yet" and the last one is shown on timeout, except those of the
    classes in `final`, which end the wait at once."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except final:
            raise
        except Exception as e:  # noqa: BLE001 - "not yet"
            last = e
        if time.monotonic() >= deadline:
            msg = "timed out after %gs waiting for %s" % (timeout, what)
            if last is not None:
                msg += " (last error: %r)" % (last,)
            raise TimeoutError(msg)
        time.sleep(interval)


def read_text(path):
    """A log file as text ("" when it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def note(text):
    print("# " + text, flush=True)


# --------------------------------------------------------------------------
# the per-run temporary directory, ports and certificate

_base_dir = None
_used_ports = set()
_tls = None
_extra_logs = []          # logs of tools and daemonized runs, for sanitizer checks


def base_dir():
    global _base_dir
    if _base_dir is None:
        _base_dir = tempfile.mkdtemp(prefix="postern-it.", dir="/tmp")
        os.chmod(_base_dir, 0o755)
    return _base_dir


def tools_log():
    p = os.path.join(base_dir(), "tools.log")
    if p not in _extra_logs:
        _extra_logs.append(p)
    return p


def register_log(path):
    if path not in _extra_logs:
        _extra_logs.append(path)


def free_port():
    """A loopback TCP port nobody listens on right now (bind 0, close)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((LOCALHOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("could not find a free port")


def tls_files():
    """(cert, key): a self-signed certificate made once per test run."""
    global _tls
    if _tls is None:
        d = os.path.join(base_dir(), "tls")
        os.mkdir(d)
        os.chmod(d, 0o755)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=" + HOST, "-keyout", key, "-out", cert],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl req failed: " + r.stdout.decode(errors="replace"))
        os.chmod(key, 0o600)
        os.chmod(cert, 0o644)
        _tls = (cert, key)
    return _tls


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def daemon_env(extra=None):
    env = dict(os.environ)
    if SAN:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if extra:
        env.update(extra)
    return env


def binary(name):
    return os.path.join(BIN, name)


def public_binary(name):
    """A copy of BIN/name that any account can run (the tree may lie where
    the test's unprivileged accounts cannot reach, e.g. a clone under
    /root), made once per run under the run's directory."""
    d = os.path.join(base_dir(), "pubbin")
    dst = os.path.join(d, name)
    if not os.path.exists(dst):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        shutil.copy2(binary(name), dst + ".tmp")
        os.chmod(dst + ".tmp", 0o755)
        os.rename(dst + ".tmp", dst)
    return dst


def have_deliver():
    return os.access(binary("deliver"), os.X_OK)


def need_deliver():
    """Raises Skip until the deliver process exists in this tree."""
    if not have_deliver():
        raise Skip("no deliver binary (%s): the deliver process of issue 6 is not in this tree yet"
                   % binary("deliver"))


# every binary the master starts, and the tools the tests run
ROLE_BINARIES = ("postern", "smtpd", "queue-mgr", "resolver", "deliver", "auth", "local")
ALL_BINARIES = ROLE_BINARIES + ("mailq", "sendmail", "posternctl")


def have_binaries():
    return all(os.access(binary(n), os.X_OK) for n in ALL_BINARIES)


# --------------------------------------------------------------------------
# /proc


def proc_stat(pid):
    """(comm, state, ppid) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def proc_status(pid):
    """/proc/PID/status as a dict of key -> value text."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def _unix_connect(path):
    """True if something accepts connections on the UNIX socket path."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def children_of(ppid):
    """[(pid, comm)] of the live processes whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[2] == ppid and st[1] not in ("Z", "X"):
            try:
                comm = proc_comm(int(d))
            except OSError:
                continue
            out.append((int(d), comm))
    return sorted(out)


# --------------------------------------------------------------------------
# raw SMTP client


class Reply:
    def __init__(self, lines):
        self.lines = lines            # each line as text, without CRLF
        self.code = int(lines[-1][:3])

    @property
    def last(self):
        return self.lines[-1]

    @property
    def first(self):
        return self.lines[0]

    def __str__(self):
        return " | ".join(self.lines)

    __repr__ = __str__


def expect(reply, exact=None, prefix=None, code=None):
    """Asserts a reply: its (last) line equal to exact, or starting with
    prefix, or its code equal to code."""
    if exact is not None and reply.last != exact:
        raise AssertionError("expected reply %r, got %r" % (exact, str(reply)))
    if prefix is not None and not reply.last.startswith(prefix):
        raise AssertionError("expected reply starting %r, got %r" % (prefix, str(reply)))
    if code is not None and reply.code != code:
        raise AssertionError("expected code %d, got %r" % (code, str(reply)))
    return reply


class Client:
    """A raw SMTP client on one TCP connection to 127.0.0.1."""

    def __init__(self, port, tls=False, timeout=10.0, banner=True, src=None):
        self.port = port
        self.timeout = timeout
        self.buf = b""
        # src: the local address to connect from (127.0.0.2 ...: an outside client)
        self.sock = socket.create_connection((LOCALHOST, port), timeout=timeout,
                                             source_address=(src, 0) if src else None)
        self.tls = False
        if tls:
            self._wrap()
        self.banner = None
        if banner:
            self.banner = self.reply()
            expect(self.banner, exact="220 %s ESMTP Postern" % HOST)

    def _wrap(self):
        self.sock = client_tls_context().wrap_socket(self.sock)
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete reply within the deadline; have %r" % self.buf[:200])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete reply within the deadline; have %r" % self.buf[:200])
        except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError) as e:
            raise Closed("connection reset: %r" % (e,))
        if not data:
            raise Closed("connection closed by server (pending %r)" % self.buf[:200])
        self.buf += data

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        if not line.endswith(b"\r"):
            raise AssertionError("reply line not terminated by CRLF: %r" % line)
        return line[:-1].decode("latin-1")

    def reply(self, timeout=None):
        """Reads one whole reply (all lines of a multi-line reply)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self.read_line(max(0.001, deadline - time.monotonic()))
            if not re.match(r"^[2-5][0-9][0-9]([ -]|$)", line):
                raise AssertionError("malformed reply line %r (after %r)" % (line, lines))
            if lines and line[:3] != lines[0][:3]:
                raise AssertionError("reply code changes inside a multi-line reply: %r" % (lines + [line]))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                break
        return Reply(lines)

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF added) and reads its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name="client.example"):
        r = self.cmd("EHLO " + name)
        expect(r, code=250)
        if r.first != "250-%s" % HOST and r.first != "250 %s" % HOST:
            raise AssertionError("EHLO reply should start with 250-%s, got %r" % (HOST, str(r)))
        return r

    def starttls(self):
        r = self.cmd("STARTTLS")
        expect(r, exact="220 2.0.0 Ready to start TLS")
        if self.buf:
            raise AssertionError("server sent data after the STARTTLS reply, before the handshake: %r" % self.buf)
        self._wrap()
        return r

    def mail_rcpt(self, sender, rcpts):
        expect(self.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
        for r in rcpts:
            expect(self.cmd("RCPT TO:<%s>" % r), exact="250 2.1.5 Ok")

    def data(self, body, raw=False, timeout=None):
        """DATA, then the body, returns the reply after the end of data.
        body: bytes (CRLF lines). Unless raw, dot-stuffs it and adds
        CRLF.CRLF; raw sends the bytes exactly as given."""
        expect(self.cmd("DATA"), exact="354 End data with <CR><LF>.<CR><LF>")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not raw:
            body = dot_stuff(body) + b".\r\n"
        self.send(body)
        return self.reply(timeout)

    def send_message(self, sender, rcpts, body=None, ehlo=True):
        """A whole transaction; returns the queue id from the 250 reply."""
        if ehlo:
            self.ehlo()
        self.mail_rcpt(sender, rcpts)
        if body is None:
            body = simple_body(sender)
        r = self.data(body)
        return queued_id(r)

    def wait_closed(self, timeout=None):
        """Waits until the server closes; returns the bytes it sent meanwhile."""
        deadline = time.monotonic() + (timeout or self.timeout)
        got = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("connection still open after %gs (got %r)" % (timeout or self.timeout, got[-300:]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                return got
            if not data:
                return got
            got += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def dot_stuff(body):
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    out = []
    for line in body.split(b"\r\n")[:-1]:
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    return b"".join(out)


def simple_body(token, extra=b""):
    if isinstance(token, str):
        token = token.encode()
    return (b"From: <sender@example.com>\r\nTo: <" + REMOTE_RCPT.encode() + b">\r\n"
            b"Subject: test " + token + b"\r\nMessage-ID: <" + token + b"@client.example>\r\n"
            b"\r\nbody of " + token + b"\r\n" + extra)


def queued_id(reply):
    m = QUEUED_RE.match(reply.last)
    if not m:
        raise AssertionError("expected '250 2.0.0 Ok: queued as QUEUEID', got %r" % str(reply))
    return m.group(1)


_token_n = [0]


def token(prefix="t"):
    """A unique token for senders, subjects and Message-IDs."""
    _token_n[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _token_n[0])


# --------------------------------------------------------------------------
# instances

_instances = []


class Instance:
    """One Postern master with its own temporary config, ports and dirs.

    conf overrides keys of the default test config; a value of None drops
    the key. tls=False leaves out the certificate. run_as=(uid, gid) starts
    the master as that (unprivileged) user, for the non-root mode."""

    def __init__(self, name="inst", tls=True, run_as=None, nofile=None, **conf):
        self.name = name
        self.nofile = nofile            # RLIMIT_NOFILE for the whole instance
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=base_dir())
        os.chmod(self.dir, 0o755)
        self.run_as = run_as
        self.p_smtp, self.p_sub, self.p_smtps = free_port(), free_port(), free_port()
        self.p_dead = free_port()        # relayhost: nothing listens here
        self.spool_dir = os.path.join(self.dir, "spool")
        self.run_dir = os.path.join(self.dir, "run")
        self.mailbox_dir = os.path.join(self.dir, "mail")
        self.mailboxes_file = os.path.join(self.dir, "mailboxes")
        self.aliases_file = os.path.join(self.dir, "aliases")
        self.conf_path = os.path.join(self.dir, "postern.conf")
        self.log_path = os.path.join(self.dir, "postern.log")
        with open(self.mailboxes_file, "w") as f:
            f.write(LOCAL_RCPT + "\n")
        with open(self.aliases_file, "w") as f:
            pass
        os.chmod(self.mailboxes_file, 0o644)
        os.chmod(self.aliases_file, 0o644)
        # the notice templates, from the tree (bounce_template_dir)
        self.bounce_dir = os.path.join(self.dir, "bounce")
        shutil.copytree(os.path.join(REPO, "etc", "bounce"), self.bounce_dir)
        for root, dirs, files in os.walk(self.bounce_dir):
            os.chmod(root, 0o755)
            for fn in files:
                os.chmod(os.path.join(root, fn), 0o644)
        self.tls = tls
        if tls:
            cert, key = tls_files()
            if run_as:
                # the unprivileged master must be able to read its own key
                cert2, key2 = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
                shutil.copy(cert, cert2)
                shutil.copy(key, key2)
                os.chown(key2, run_as[0], run_as[1])
                os.chmod(key2, 0o600)
                cert, key = cert2, key2
            self.cert, self.key = cert, key
        self.overrides = dict(conf)
        self.proc = None
        self.logf = None
        self.returncode = None
        if run_as:
            os.chown(self.dir, run_as[0], run_as[1])
        self.write_config()
        _instances.append(self)

    # -- configuration

    def config_items(self):
        c = {
            "hostname": HOST,
            "listen_smtp": "%s:%d" % (LOCALHOST, self.p_smtp),
            "listen_submission": "%s:%d" % (LOCALHOST, self.p_sub),
            "listen_smtps": "%s:%d" % (LOCALHOST, self.p_smtps),
            "spool_dir": self.spool_dir,
            "run_dir": self.run_dir,
            "local_domains": HOST + ", localhost",
            "relay_networks": "127.0.0.0/8",
            "relayhost": "[%s]:%d" % (LOCALHOST, self.p_dead),
            # the resolver never recurses from the root here: a closed
            # loopback port answers nothing (DNS tests set their own NSD)
            "dns_forwarders": "%s@%d" % (LOCALHOST, self.p_dead),
            "mailbox_dir": self.mailbox_dir,
            "mailboxes_file": self.mailboxes_file,
            "aliases_file": self.aliases_file,
            "bounce_template_dir": self.bounce_dir,
        }
        if self.tls:
            c["tls_cert_file"] = self.cert
            c["tls_key_file"] = self.key
        if IS_ROOT and not self.run_as:
            for role, (uid, gid) in ACCOUNTS.items():
                c["user_" + role] = "%d:%d" % (uid, gid)
            c["chroot"] = "yes" if CHROOT else "no"
        for k, v in self.overrides.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def config_text(self):
        lines = ["# Postern integration test instance %s" % self.name]
        lines += ["%s = %s" % (k, v) for k, v in self.config_items().items()]
        return "\n".join(lines) + "\n"

    def write_config(self, **more):
        self.overrides.update(more)
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        os.chmod(self.conf_path, 0o644)

    # -- processes

    def _popen_kw(self):
        kw = {}
        if self.run_as:
            kw.update(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
        if self.nofile:
            n = self.nofile
            kw.update(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)))
        return kw

    def start(self, wait=True, timeout=20):
        if not os.access(binary("postern"), os.X_OK):
            raise AssertionError("%s is missing: build the daemons first (make)" % binary("postern"))
        self.logf = open(self.log_path, "ab")
        if self.run_as:
            os.chown(self.log_path, self.run_as[0], self.run_as[1])
        self.returncode = None
        master = binary("postern")
        if self.run_as:
            # An unprivileged master may not reach the tree (a clone under
            # /root): give it copies of the binaries inside its own dir.
            bindir = os.path.join(self.dir, "bin")
            os.makedirs(bindir, exist_ok=True)
            os.chmod(bindir, 0o755)
            for p in ALL_BINARIES:
                shutil.copy2(binary(p), os.path.join(bindir, p))
            master = os.path.join(bindir, "postern")
        self.proc = subprocess.Popen(
            [master, "-c", self.conf_path, "run"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=self.dir, env=daemon_env(), start_new_session=True, **self._popen_kw())
        if wait:
            self.wait_ready(timeout)
        return self

    def is_ready(self):
        if not self.alive():
            raise AssertionError("master exited with status %s" % self.proc.returncode)
        try:
            c = Client(self.p_smtp, timeout=3)
        except (OSError, Closed, TimeoutError, AssertionError):
            return False
        c.close()
        # mailq falls back to reading the index when queue-mgr is down, so
        # also check that queue-mgr accepts on its control socket
        if not _unix_connect(os.path.join(self.run_dir, "queue", "control.sock")):
            return False
        return self.mailq().returncode == 0

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError("postern run (%s) exited with status %s before it was ready; log:\n%s"
                                     % (self.name, self.proc.returncode, self.log_tail(30)))
            if self.is_ready():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError("instance %s not ready after %gs (banner on %d and mailq exit 0)"
                                   % (self.name, timeout, self.p_smtp))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def children(self):
        """[(pid, comm)] of the master's live children."""
        return children_of(self.proc.pid)

    def pids(self, comm):
        return [p for p, c in self.children() if c == comm]

    def stop(self, timeout=15):
        """SIGTERM to the master; waits for it and all its children to exit."""
        if self.proc is None:
            return None
        kids = [p for p, _ in self.children()] if self.alive() else []
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._kill(kids)
                    raise AssertionError("master of %s did not exit within %gs of SIGTERM" % (self.name, timeout))
            self.returncode = self.proc.returncode
            try:
                wait_until(lambda: not any(pid_alive(p) for p in kids), 10,
                           "the children of %s to exit after the master" % self.name)
            except TimeoutError:
                left = [p for p in kids if pid_alive(p)]
                self._kill(left)
                raise AssertionError("children %s of %s still alive 10s after the master exited" % (left, self.name))
        finally:
            if self.logf:
                self.logf.close()
                self.logf = None
        return self.returncode

    def _kill(self, pids):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, exc, tb):
        if etype is None:
            self.stop()
        else:
            try:
                self.stop()
            except Exception as e:  # noqa: BLE001 - keep the test's own error
                note("while stopping %s after a failure: %s" % (self.name, e))
        return False

    # -- log

    def log_text(self):
        return read_text(self.log_path)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, pattern, since=0, timeout=10, what=None):
        """Waits until a log line (after byte offset since) matches the regex;
        returns the match."""
        rx = re.compile(pattern)

        def find():
            for line in self.log_since(since).splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        return wait_until(find, timeout, what or ("a log line matching %r" % pattern))

    # -- tools and queue

    def run_tool(self, name, args, stdin=None, env=None, timeout=30, **kw):
        """Runs BIN/name; stdout and stderr captured (stderr also appended
        to the tools log for the sanitizer check)."""
        # run as another account (user=...), a copy it can reach
        path = public_binary(name) if kw.get("user") is not None else binary(name)
        r = subprocess.run([path] + list(args), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon_env(env),
                           timeout=timeout, **kw)
        if r.stderr:
            with open(tools_log(), "ab") as f:
                f.write(b"== %s %s\n" % (name.encode(), " ".join(args).encode()) + r.stderr)
        return r

    def mailq(self, *args):
        return self.run_tool("mailq", ["-c", self.conf_path] + list(args))

    def queue(self):
        """The queue as a list of Postfix `postqueue -j` objects."""
        r = self.mailq("-j")
        if r.returncode != 0:
            raise AssertionError("mailq -j exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        out = []
        for line in r.stdout.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError("mailq -j printed a line that is not JSON: %r" % line)
        return out

    def mailq_text(self):
        r = self.mailq()
        if r.returncode != 0:
            raise AssertionError("mailq exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        return r.stdout.decode("utf-8", errors="replace")

    def posternctl(self, *args, timeout=30):
        """bin/posternctl -c CONF ARGS...; raises Skip when the tree has none."""
        if not os.access(binary("posternctl"), os.X_OK):
            raise Skip("no posternctl binary (%s) in this tree yet" % binary("posternctl"))
        return self.run_tool("posternctl", ["-c", self.conf_path] + list(args), timeout=timeout)

    # -- delivery log (SPEC 6)

    def deliveries(self, qid=None, rcpt=None, status=None, since=0):
        """The deliver log lines (SPEC 6) after byte offset since, as
        Delivery objects, filtered by queue id, recipient and status."""
        out = []
        for line in self.log_since(since).splitlines():
            m = DELIVERY_RE.search(line)
            if not m:
                continue
            d = Delivery(m, line)
            if qid is not None and d.qid != qid:
                continue
            if rcpt is not None and d.rcpt != rcpt:
                continue
            if status is not None and d.status != status:
                continue
            out.append(d)
        return out

    def wait_delivery(self, qid, rcpt, status="sent", since=0, timeout=30):
        """Waits for `QID: to=<RCPT>, ..., status=STATUS (...)`; returns
        the Delivery. Fails at once when the recipient ends otherwise (a
        bounce while waiting for sent, or the reverse); a deferral is
        only "not yet" unless it is what is awaited."""
        def find():
            got = self.deliveries(qid, rcpt, since=since)
            for d in got:
                if d.status == status:
                    return d
            final = [d for d in got if d.status != "deferred"]
            if final:
                raise _Final("%s <%s> ended %s, expected %s: %s" % (qid, rcpt, final[0].status, status, final[0].line))
            return None
        try:
            return wait_until(find, timeout, "%s: to=<%s> status=%s in the log of %s"
                              % (qid, rcpt, status, self.name), final=(_Final,))
        except _Final as e:
            raise AssertionError(str(e) + "\nlog:\n" + self.log_tail(20))

    def removed(self, qid, since=0):
        rx = re.compile(r"postern/queue-mgr\[\d+\]: %s: removed$" % re.escape(qid))
        return any(rx.search(l) for l in self.log_since(since).splitlines())

    def wait_removed(self, qid, since=0, timeout=30):
        """Waits for `QUEUEID: removed` from queue-mgr."""
        return wait_until(lambda: self.removed(qid, since), timeout,
                          "%s: removed in the log of %s" % (qid, self.name))

    def queue_ids(self):
        return set(e["queue_id"] for e in self.queue())

    def queue_entry(self, qid):
        for e in self.queue():
            if e.get("queue_id") == qid:
                return e
        return None

    def spool_file(self, qid):
        return os.path.join(self.spool_dir, "msg", qid)

    def read_spool(self, qid):
        with open(self.spool_file(qid), "rb") as f:
            return f.read()

    # -- clients

    def client(self, port=None, tls=False, ehlo=False, timeout=10.0):
        c = Client(port or self.p_smtp, tls=tls, timeout=timeout)
        if ehlo:
            c.ehlo()
        return c

    def send(self, sender=None, rcpts=(REMOTE_RCPT,), body=None, port=None):
        """Sends one message over a fresh connection; returns the queue id."""
        sender = sender or ("%s@example.com" % token("s"))
        with self.client(port) as c:
            qid = c.send_message(sender, list(rcpts), body)
            try:
                c.cmd("QUIT")
            except (Closed, OSError):
                pass
        return qid

    def smtplib(self, port=None, timeout=10):
        return smtplib.SMTP(LOCALHOST, port or self.p_smtp, local_hostname="client.example", timeout=timeout)


class _Final(Exception):
    """A wait that can no longer succeed."""


# postern/deliver[PID] (or queue-mgr, for expiry): QUEUEID: to=<RCPT>, relay=HOST[IP]:PORT, delay=S,
#     delays=a/b/c/d, dsn=X.Y.Z, status=sent|deferred|bounced (REPLY)
DELIVERY_RE = re.compile(
    r"postern/(?:deliver|local|queue-mgr)\[(\d+)\]: ([0-9A-Z]{12,}): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?"
    r"relay=([^,]+), (?:conn_use=(\d+), )?delay=([0-9.]+), delays=([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+), "
    r"dsn=([245]\.\d{1,3}\.\d{1,3}), status=(sent|deferred|bounced) \((.*)\)$")


class Delivery:
    """One parsed delivery log line."""

    def __init__(self, m, line):
        self.line = line
        self.pid = int(m.group(1))
        self.qid, self.rcpt, self.relay = m.group(2), m.group(3), m.group(4)
        self.conn_use = int(m.group(5)) if m.group(5) else None
        self.delay = float(m.group(6))
        self.delays = tuple(float(m.group(i)) for i in range(7, 11))
        self.dsn, self.status, self.reply = m.group(11), m.group(12), m.group(13)
        rm = re.match(r"^(.*)\[([0-9a-fA-F:.]+)\]:(\d+)$", self.relay)
        self.relay_host, self.relay_ip, self.relay_port = (rm.group(1), rm.group(2), int(rm.group(3))) if rm else (self.relay, None, None)

    def __repr__(self):
        return "<Delivery %s>" % self.line


def common_port(hosts):
    """A TCP port free on every one of the 127.0.0.x addresses in hosts
    (remote_smtp_port is one port for every destination, so each test
    receiver listens on its own address and this shared port)."""
    for _ in range(200):
        port = free_port()
        ok = True
        for h in hosts:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((h, port))
            except OSError:
                ok = False
                break
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % (hosts,))


def delivery_instance(name, nsd=None, smtp_port=None, min_backoff=1, max_backoff=2,
                      queue_lifetime=None, relayhost=None, relayhost_auth=None, stub_extra=(),
                      tls=False, **conf):
    """An Instance that delivers remote mail for real, into the hermetic
    internet of the test: dns_stub_zones at the dnsfix NSD (plus
    stub_extra (zone, port) pairs), remote_smtp_port = smtp_port, short
    backoff (seconds), queue_lifetime when given, and relayhost empty
    unless given. relayhost_auth: {host: "user:password"}, written as the
    relayhost_auth_file, mode 0600, owned by user_deliver."""
    c = {
        "relayhost": relayhost,              # None: the key is dropped (direct MX delivery)
        "min_backoff": "%ds" % min_backoff,
        "max_backoff": "%ds" % max_backoff,
        # the test zones are unsigned and the root unreachable: with the
        # root anchor every answer would be bogus (pass a file to test DNSSEC)
        "dnssec_trust_anchor_file": "",
    }
    if nsd is not None:
        c["dns_stub_zones"] = nsd.stub_zones(stub_extra)
    if smtp_port is not None:
        c["remote_smtp_port"] = str(smtp_port)
    if queue_lifetime is not None:
        c["queue_lifetime"] = "%ds" % queue_lifetime
    c.update(conf)
    inst = Instance(name, tls=tls, **c)
    if relayhost_auth:
        path = os.path.join(inst.dir, "relay-auth")
        with open(path, "w") as f:
            for host, cred in relayhost_auth.items():
                f.write("%s %s\n" % (host, cred))
        os.chmod(path, 0o600)
        if IS_ROOT:
            uid, gid = inst.run_as or ACCOUNTS["deliver"]
            os.chown(path, uid, gid)
        inst.write_config(relayhost_auth_file=path)
    return inst


def all_instances():
    return list(_instances)


_shared = {}


def shared(key="default", **conf):
    """An instance shared by the tests (one per key); started on first use,
    restarted when it is no longer healthy."""
    inst = _shared.get(key)
    if inst is not None:
        reason = None
        if not inst.alive():
            reason = "master exited with status %s" % inst.proc.returncode
        else:
            try:
                if not inst.is_ready():
                    reason = "not answering (banner or mailq)"
            except Exception as e:  # noqa: BLE001
                reason = str(e)
        if reason is None:
            return inst
        note("restarting shared instance %r: %s" % (key, reason))
        try:
            inst.stop()
        except Exception as e:  # noqa: BLE001
            note("stopping %r: %s" % (key, e))
    inst = Instance(key, **conf)
    _shared[key] = inst
    inst.start()
    return inst


def stop_shared():
    """Stops the shared instances; returns a list of error texts."""
    errors = []
    for key, inst in list(_shared.items()):
        try:
            if inst.alive():
                inst.stop()
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %s" % (key, e))
        del _shared[key]
    return errors


def stop_all():
    errors = stop_shared()
    for inst in _instances:
        if inst.alive():
            try:
                inst.stop()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (inst.name, e))
    return errors


atexit.register(stop_all)


# --------------------------------------------------------------------------
# sanitizer reports and log snapshots


def _all_logs():
    return [i.log_path for i in _instances] + list(_extra_logs)


def log_offsets():
    out = {}
    for p in _all_logs():
        try:
            out[p] = os.path.getsize(p)
        except OSError:
            out[p] = 0
    return out


def sanitizer_reports(since=None):
    """Lines from the captured logs (instances, tools, daemonized runs) that
    show an AddressSanitizer/LeakSanitizer/UBSan report, after the offsets
    in since (a log_offsets() result) or from the start."""
    hits = []
    for p in _all_logs():
        off = (since or {}).get(p, 0)
        try:
            with open(p, "rb") as f:
                f.seek(off)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if any(s in line for s in SAN_PATTERNS):
                hits.append("%s: %s" % (p, line.strip()))
    return hits


def cleanup(keep=False):
    if _base_dir and not keep and os.path.isdir(_base_dir):
        shutil.rmtree(_base_dir, ignore_errors=True)
    return _base_dir
