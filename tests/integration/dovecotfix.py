"""
dovecotfix.py - Debian's Dovecot (dovecot-imapd, dovecot-lmtpd) as a test
peer: the IMAP server that reads Postern's Maildirs, and the LMTP server
Postern's deliver hands local mail to.

    with dovecotfix.Dovecot(users={"alice@example.test": "secret"}) as dc:
        dc.maildir("alice@example.test")     # mailbox_dir/example.test/alice
        dc.imap("alice@example.test")        # an imaplib.IMAP4, logged in
        dc.lmtp_port, dc.lmtp_unix            # where LMTP listens

What the instance is:
  - its own configuration file (dovecot -c FILE: no /etc/dovecot file is
    read), its own base_dir (sockets, pid), state_dir and log file, all in
    a temporary directory; the system's Dovecot is never started or
    touched;
  - listeners on loopback only, on free ports: IMAP (plain LOGIN allowed:
    loopback only) and LMTP over TCP; no TLS, or with tls=True STARTTLS on
    both with the harness's test certificate; optionally LMTP on a UNIX
    socket at a path the test chooses (lmtp_unix=PATH, mode 0666: the
    directory it lies in, such as deliver's jail, is what limits it);
  - passdb and userdb: one passwd-file listing the users (USER@DOMAIN,
    password, the mail uid/gid, optional userdb extra fields such as a
    quota rule), so an unknown user is refused at RCPT (550 5.1.1);
  - mail_location = maildir:MAILBOX_DIR/%d/%n, the layout Postern's local
    role writes (mailbox_dir/DOMAIN/USER/{tmp,new,cur}), INBOX being the
    Maildir itself; the quota plugin is loaded (quota = maildir), and a
    user's quota_rule (users={"u@d": ("pw", {"quota_rule": "*:storage=1k"})})
    makes its LMTP delivery fail after DATA (552 5.2.2) while others pass.
The mail processes run as the uid/gid given (default 64010, numeric, no
passwd entry needed); the Maildirs under mailbox_dir belong to it.

start() needs root (the Dovecot master drops to its own users) and the
packages; otherwise it raises harness.Skip. It waits for the IMAP greeting
and the LMTP greeting (and the UNIX socket's) with deadlines; stop() sends
SIGTERM to the master and waits for every Dovecot process of it to exit.
"""

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import harness
from postfixfix import _tree

DOVECOT = "/usr/sbin/dovecot"
MAIL_UID = 64010


def available():
    return (os.access(DOVECOT, os.X_OK) and os.path.exists("/usr/lib/dovecot/imap")
            and os.path.exists("/usr/lib/dovecot/lmtp"))


def _greeting(family, addr, prefix, timeout=2):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        f = s.makefile("rb")
        line = f.readline()
        return line.startswith(prefix)


class Dovecot:
    """A private Dovecot (see the module docstring)."""

    def __init__(self, users=None, mailbox_dir=None, uid=MAIL_UID, gid=None, lmtp_unix=None,
                 tls=False, name="dovecot"):
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=harness.base_dir())
        os.chmod(self.dir, 0o755)
        self.uid = uid
        self.gid = gid if gid is not None else uid
        self.mailbox_dir = mailbox_dir or os.path.join(self.dir, "mail")
        self.users = {}
        for u, v in (users or {}).items():
            self.users[u.lower()] = v if isinstance(v, tuple) else (v, {})
        self.lmtp_unix = lmtp_unix
        self.tls = tls
        self.imap_port = harness.free_port()
        self.lmtp_port = harness.free_port()
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.passwd_path = os.path.join(self.dir, "users")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        harness.register_log(self.log_path)

    # -- configuration

    def config_text(self):
        unix = ""
        if self.lmtp_unix:
            unix = """
  unix_listener %s {
    mode = 0666
  }""" % self.lmtp_unix
        if self.tls:
            cert, key = harness.tls_files()
            ssl = "ssl = yes\nssl_cert = <%s\nssl_key = <%s\nssl_min_protocol = TLSv1.2" % (cert, key)
        else:
            ssl = "ssl = no"
        return """# Private test peer written by tests/integration/dovecotfix.py
base_dir = {base}
state_dir = {state}
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
instance_name = postern-test-{port}
protocols = imap lmtp
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%d/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_plugins = quota
lmtp_rcpt_check_quota = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {passwd}
  default_fields = uid={uid} gid={gid} home={mail}/%d/%n
}}
plugin {{
  quota = maildir:User quota
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}{unix}
}}
service anvil {{
  chroot =
}}
""".format(base=self.base_dir, state=self.state_dir, log=self.log_path, port=self.imap_port,
           mail=self.mailbox_dir, uid=self.uid, gid=self.gid, passwd=self.passwd_path,
           imap=self.imap_port, lmtp=self.lmtp_port, unix=unix, ssl=ssl)

    def write_users(self):
        lines = []
        for u, (pw, extra) in self.users.items():
            fields = " ".join("userdb_%s=%s" % (k, v) for k, v in extra.items())
            lines.append("%s:{PLAIN}%s:%d:%d::%s/%s::%s" % (
                u, pw, self.uid, self.gid, self.mailbox_dir, self.maildir_rel(u), fields))
        tmp = self.passwd_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.passwd_path)

    @staticmethod
    def maildir_rel(user):
        local, domain = user.rsplit("@", 1)
        return "%s/%s" % (domain.lower(), local.lower())

    def maildir(self, user):
        """mailbox_dir/DOMAIN/USER: the Maildir Postern writes and Dovecot reads."""
        return os.path.join(self.mailbox_dir, self.maildir_rel(user))

    def make_maildir(self, user):
        """Creates the user's Maildir (tmp, new, cur) owned by the mail uid."""
        d = self.maildir(user)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.chown_tree(self.mailbox_dir)
        return d

    def chown_tree(self, top):
        for root, dirs, files in os.walk(top):
            os.chown(root, self.uid, self.gid)
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.uid, self.gid)

    # -- start and stop

    def start(self, timeout=30):
        if not available():
            raise harness.Skip("dovecot-imapd and dovecot-lmtpd are not installed (scripts/deps installs them)")
        if not harness.IS_ROOT:
            raise harness.Skip("a private Dovecot needs root to start (its master drops to its own users)")
        os.makedirs(self.mailbox_dir, exist_ok=True)
        os.chmod(self.mailbox_dir, 0o755)
        os.chown(self.mailbox_dir, self.uid, self.gid)
        os.makedirs(self.state_dir, exist_ok=True)
        open(self.log_path, "a").close()
        self.write_users()
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        os.chmod(self.conf_path, 0o644)
        self.out = open(os.path.join(self.dir, "dovecot.out"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited with %s: %s\n%s" % (
                    self.proc.returncode, harness.read_text(os.path.join(self.dir, "dovecot.out"))[-2000:],
                    self.log_tail()))
            ok = _greeting(socket.AF_INET, ("127.0.0.1", self.imap_port), b"* OK") and \
                _greeting(socket.AF_INET, ("127.0.0.1", self.lmtp_port), b"220 ")
            if ok and self.lmtp_unix:
                ok = _greeting(socket.AF_UNIX, self.lmtp_unix, b"220 ")
            return ok
        harness.wait_until(up, timeout, "dovecot's IMAP and LMTP greetings", final=(AssertionError,))
        return self

    def stop(self, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return
        kids = _tree(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            harness.wait_until(lambda: not any(harness.pid_alive(p) for p in kids), timeout,
                               "the dovecot processes %s to exit" % kids)
        except (subprocess.TimeoutExpired, TimeoutError):
            for p in list(_tree(self.proc.pid)) + kids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait(10)
            raise
        finally:
            self.out.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- clients and the log

    def imap(self, user):
        """An IMAP session logged in as user (plain LOGIN over loopback)."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=20)
        m.login(user, self.users[user.lower()][0])
        return m

    def log_text(self):
        return harness.read_text(self.log_path)

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


def _selftest():
    """python3 dovecotfix.py: starts Dovecot, delivers one message over LMTP
    by hand and fetches it over IMAP."""
    with Dovecot(users={"alice@example.test": "secret"}) as dc:
        with socket.create_connection(("127.0.0.1", dc.lmtp_port), timeout=10) as s:
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            for cmd in (b"LHLO client.test", b"MAIL FROM:<s@example.org>", b"RCPT TO:<alice@example.test>",
                        b"DATA"):
                s.sendall(cmd + b"\r\n")
                line = f.readline()
                while line[3:4] == b"-":
                    line = f.readline()
                print(cmd.decode(), "->", line.decode().strip())
            s.sendall(b"Subject: hi\r\n\r\nhello\r\n.\r\n")
            print("dot ->", f.readline().decode().strip())
        m = dc.imap("alice@example.test")
        m.select("INBOX")
        print(m.search(None, "ALL"))
        m.logout()
    print("stopped; all good")
    shutil.rmtree(dc.dir, ignore_errors=True)
    harness.cleanup()


if __name__ == "__main__":
    _selftest()
