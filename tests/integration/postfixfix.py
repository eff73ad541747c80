"""
postfixfix.py - a real Postfix (Debian's package) as the receiving MTA of a
delivery test, on loopback only.

    with postfixfix.Postfix(host="127.0.0.5", port=P, domain="pf.t.test") as pf:
        ... Postern delivers to rcpt@pf.t.test ...
        pf.wait_sent("rcpt@pf.t.test")      # its log: status=sent
        pf.wait_tls()                        # its log: TLS session from us

What the instance is (the same safety rules as scripts/bench-postfix-setup):
  - its own config directory, queue, data directory and log file
    (maillog_file through postlogd: no syslog daemon is needed), all in a
    temporary directory; it never reads /etc/postfix/main.cf's settings and
    never touches the system instance's queue or pid files;
  - one listener: smtpd on HOST:PORT (a 127.0.0.x address, never port 25),
    offering STARTTLS with the test certificate (smtpd_tls_security_level =
    may, smtpd_tls_loglevel = 1, so its log says "Anonymous TLS connection
    established from ..." for every TLS session);
  - mail for `domain` is accepted and handed to the discard agent
    (local_transport = discard): the log line "QUEUEID: to=<rcpt>,
    relay=none, ..., status=sent (...)" proves receipt and nothing is
    stored or sent anywhere; mail for any other domain is refused (relay
    access denied), so the instance can never relay;
  - no pickup, no local or smtp client in master.cf: it cannot send mail.

Starting needs root (`postfix -c DIR start`); without root or without the
package, start() raises harness.Skip. Waits are deadline-based: start()
waits for the 220 banner, stop() for the master's pid to go away.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import harness

POSTFIX = "/usr/sbin/postfix"


def available():
    return os.access(POSTFIX, os.X_OK) and os.access("/usr/lib/postfix/sbin/discard", os.X_OK)


class Postfix:
    """A private Postfix receiving on host:port for `domain` (see the module
    docstring). tls: (cert, key), default the harness's test certificate;
    tls=False offers no STARTTLS."""

    def __init__(self, host="127.0.0.1", port=None, domain="pf.test", tls=None, name="postfix",
                 myhostname="pf.receiver.invalid"):
        self.host = host
        self.port = port or harness.free_port()
        self.domain = domain
        self.myhostname = myhostname
        self.tls = tls if tls is not None else harness.tls_files()
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=harness.base_dir())
        os.chmod(self.dir, 0o755)
        self.conf_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "maillog")
        self.master_pid = None
        self.started = False
        harness.register_log(self.log_path)

    # -- configuration

    def main_cf(self):
        lines = [
            "# Private test receiver written by tests/integration/postfixfix.py",
            "compatibility_level = 3.6",
            "config_directory = %s" % self.conf_dir,
            "queue_directory = %s" % self.queue_dir,
            "data_directory = %s" % self.data_dir,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "maillog_file = %s" % self.log_path,
            "maillog_file_prefixes = %s" % self.dir,
            "myhostname = %s" % self.myhostname,
            "mydomain = receiver.invalid",
            "myorigin = $myhostname",
            "mydestination = %s" % self.domain,
            "local_transport = discard:%s" % self.domain,
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "relayhost =",
            "relay_domains =",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = reject_unauth_destination",
            "smtp_dns_support_level = disabled",
            "biff = no",
            "in_flow_delay = 0",
            "smtpd_client_connection_rate_limit = 0",
            "smtpd_client_message_rate_limit = 0",
            "smtpd_client_recipient_rate_limit = 0",
            "smtputf8_enable = yes",
        ]
        if self.tls:
            cert, key = self.tls
            lines += [
                "smtpd_tls_security_level = may",
                "smtpd_tls_cert_file = %s" % cert,
                "smtpd_tls_key_file = %s" % key,
                "smtpd_tls_loglevel = 1",
                "smtpd_tls_session_cache_database =",
            ]
        else:
            lines += ["smtpd_tls_security_level ="]
        lines += ["smtp_tls_security_level ="]
        return "\n".join(lines) + "\n"

    def master_cf(self):
        # Reception and the discard agent only: no pickup, no smtp or local
        # client. Nothing chrooted (5th column "n").
        svc = "%s:%d" % (self.host, self.port)
        rows = [
            "%s inet n - n - - smtpd" % svc,
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "anvil unix - - n - 1 anvil",
            "proxymap unix - - n - - proxymap",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "discard unix - - n - - discard",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return "# service type private unpriv chroot wakeup maxproc command\n" + "\n".join(rows) + "\n"

    def write(self):
        for d in (self.conf_dir, self.queue_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.conf_dir, 0o755)
        os.chmod(self.queue_dir, 0o755)
        try:
            shutil.chown(self.data_dir, "postfix")
        except (LookupError, OSError):
            pass
        open(self.log_path, "a").close()
        os.chmod(self.log_path, 0o644)
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(self.master_cf())
        self._postfix("check")

    def _postfix(self, *args, timeout=60):
        r = subprocess.run([POSTFIX, "-c", self.conf_dir] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("postfix %s failed (%d): %s\nlog:\n%s" % (
                " ".join(args), r.returncode, r.stdout.decode(errors="replace"), self.log_tail()))
        return r

    # -- start and stop

    def start(self, timeout=30):
        if not available():
            raise harness.Skip("postfix is not installed (scripts/deps installs it)")
        if not harness.IS_ROOT:
            raise harness.Skip("a private Postfix instance needs root to start")
        self.write()
        self._postfix("start")
        self.started = True
        pidfile = os.path.join(self.queue_dir, "pid", "master.pid")

        def pid():
            with open(pidfile) as f:
                return int(f.read().strip())
        self.master_pid = harness.wait_until(pid, timeout, "postfix master.pid in %s" % pidfile)
        harness.wait_until(self._banner, timeout, "postfix's 220 banner on %s:%d" % (self.host, self.port))
        return self

    def _banner(self):
        if not harness.pid_alive(self.master_pid):
            raise AssertionError("postfix master exited; log:\n" + self.log_tail())
        with socket.create_connection((self.host, self.port), timeout=2) as s:
            f = s.makefile("rb")
            line = f.readline()
            while line[3:4] == b"-":
                line = f.readline()
            if not line.startswith(b"220"):
                return False
            s.sendall(b"QUIT\r\n")
            f.readline()
            return True

    def stop(self, timeout=30):
        if not self.started:
            return
        self.started = False
        kids = [p for p in _tree(self.master_pid)] if self.master_pid else []
        try:
            self._postfix("stop")
        except AssertionError as e:
            harness.note("postfix stop: %s" % e)
        try:
            harness.wait_until(lambda: not any(harness.pid_alive(p) for p in kids), timeout,
                               "the postfix processes %s to exit" % kids)
        except TimeoutError:
            for p in kids:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
            raise

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the log

    def log_text(self):
        return harness.read_text(self.log_path)

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, pattern, timeout=30, what=None):
        rx = re.compile(pattern)

        def find():
            for line in self.log_text().splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        return harness.wait_until(find, timeout, what or ("postfix log line matching %r" % pattern))

    def sent(self, rcpt):
        """[queue id] of the deliveries to rcpt the discard agent logged as
        status=sent."""
        rx = re.compile(r"postfix/discard\[\d+\]: ([0-9A-F]+): to=<%s>,.* status=sent " % re.escape(rcpt))
        return [m.group(1) for m in (rx.search(l) for l in self.log_text().splitlines()) if m]

    def wait_sent(self, rcpt, n=1, timeout=30):
        """Waits until rcpt was received (status=sent) n times; returns the
        queue ids."""
        return harness.wait_until(lambda: len(self.sent(rcpt)) >= n and self.sent(rcpt), timeout,
                                  "postfix to log status=sent for <%s> %d time(s); log:\n%s"
                                  % (rcpt, n, self.log_tail(10)))

    def tls_sessions(self, client_ip=None):
        """Lines saying a TLS session was established from a client."""
        rx = re.compile(r"postfix/smtpd\[\d+\]: (Anonymous|Untrusted|Trusted|Verified) TLS connection "
                        r"established from ([^\[]*)\[([0-9.]+)\]")
        out = []
        for line in self.log_text().splitlines():
            m = rx.search(line)
            if m and (client_ip is None or m.group(3) == client_ip):
                out.append(line)
        return out

    def wait_tls(self, client_ip=None, timeout=30):
        return harness.wait_until(lambda: self.tls_sessions(client_ip), timeout,
                                  "postfix to log a TLS session established%s"
                                  % (" from " + client_ip if client_ip else ""))


def _tree(root):
    """root and its live descendants (from /proc)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = harness.proc_stat(int(d))
            if st and st[1] not in ("Z", "X"):
                parent[int(d)] = st[2]
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        if p != root and p not in parent:
            continue
        out.add(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return sorted(out)


def _selftest():
    """python3 postfixfix.py: starts a receiver on 127.0.0.5, sends one
    message with swaks --tls and checks the log shows TLS and receipt."""
    host = "127.0.0.5"
    with Postfix(host=host, domain="pf.test") as pf:
        r = subprocess.run(["swaks", "--server", host, "--port", str(pf.port), "--tls",
                            "--from", "s@example.com", "--to", "someone@pf.test",
                            "--helo", "client.example", "--timeout", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, out
        ids = pf.wait_sent("someone@pf.test")
        tls = pf.wait_tls()
        print("received: %s\nTLS: %s" % (ids, tls[0]))
        t0 = time.monotonic()
    print("stopped in %.2fs; all good" % (time.monotonic() - t0))
    harness.cleanup()


if __name__ == "__main__":
    _selftest()
