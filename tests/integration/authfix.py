"""
authfix.py - fixtures for the submission and AUTH tests: users whose
password hashes come from the tools operators use (mkpasswd -m yescrypt,
Dovecot's doveadm pw -s SHA512-CRYPT / BLF-CRYPT), an instance serving
them, and SMTP clients on 587 (STARTTLS) and 465 (implicit TLS), from
127.0.0.1 or another loopback address.
"""

import base64
import shutil
import smtplib
import subprocess

import harness

USERS = {
    # user: (password, how its hash is made)
    "john@localhost": ("john-Secret-1", "yescrypt"),
    "mary@localhost": ("mary-Secret-2", "doveadm-sha512"),
    "bob@localhost": ("bob-Secret-3", "doveadm-blf"),
    "eve@localhost": ("eve-Secret-4", "sha512crypt"),
}
ALIASES = (
    "johnny@localhost: john@localhost\n"
    "team@localhost: john@localhost, mary@localhost\n"
)


def have(tool):
    return shutil.which(tool) is not None


def make_hash(kind, password):
    """A hash of password made by the operator's tool."""
    if kind in ("yescrypt", "sha512crypt"):
        if not have("mkpasswd"):
            raise harness.Skip("mkpasswd (Debian package whois) is not installed")
        r = subprocess.run(["mkpasswd", "-m", kind, "--stdin"], input=password + "\n",
                           capture_output=True, text=True, timeout=30)
        out = r.stdout.strip()
        if r.returncode != 0 or not out.startswith("$"):
            raise AssertionError("mkpasswd -m %s failed: %s" % (kind, r.stderr))
        return out
    if not have("doveadm"):
        raise harness.Skip("doveadm (Debian package dovecot-core) is not installed")
    scheme = {"doveadm-sha512": "SHA512-CRYPT", "doveadm-blf": "BLF-CRYPT"}[kind]
    r = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password], capture_output=True, text=True, timeout=30)
    out = r.stdout.strip()
    if r.returncode != 0 or not out.startswith("{" + scheme + "}"):
        raise AssertionError("doveadm pw -s %s failed: %s %s" % (scheme, out, r.stderr))
    return out


_hashes = {}


def mailboxes_text(users=USERS):
    lines = [harness.LOCAL_RCPT]
    for u, (pw, kind) in users.items():
        key = (u, pw, kind)
        if key not in _hashes:
            _hashes[key] = make_hash(kind, pw)
        lines.append("%s:%s" % (u, _hashes[key]))
    return "\n".join(lines) + "\n"


def auth_instance(name, start=True, **conf):
    """An instance with the users above (submission and smtps on)."""
    inst = harness.Instance(name, **conf)
    with open(inst.mailboxes_file, "w") as f:
        f.write(mailboxes_text())
    with open(inst.aliases_file, "w") as f:
        f.write(ALIASES)
    if start:
        inst.start()
    return inst


_shared = {}


def shared(key="auth", **conf):
    """One auth instance per key for the tests of a file; restarted when
    it is no longer healthy."""
    inst = _shared.get(key)
    if inst is not None and inst.alive():
        try:
            if inst.is_ready():
                return inst
        except Exception:  # noqa: BLE001
            pass
        inst.stop()
    inst = auth_instance(key, **conf)
    _shared[key] = inst
    return inst


def password(user):
    return USERS[user][0]


def submission(inst, source=None, timeout=20):
    """smtplib on 587 after STARTTLS and EHLO."""
    s = smtplib.SMTP(harness.LOCALHOST, inst.p_sub, local_hostname="client.example", timeout=timeout,
                     source_address=(source, 0) if source else None)
    s.ehlo()
    s.starttls(context=harness.client_tls_context())
    s.ehlo()
    return s


def smtps(inst, source=None, timeout=20):
    s = smtplib.SMTP_SSL(harness.LOCALHOST, inst.p_smtps, local_hostname="client.example", timeout=timeout,
                         context=harness.client_tls_context(), source_address=(source, 0) if source else None)
    s.ehlo()
    return s


def plain(user, pw, authz=""):
    """An AUTH PLAIN response (RFC 4616)."""
    return base64.b64encode(("%s\0%s\0%s" % (authz, user, pw)).encode()).decode()


def b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


def auth_plain(s, user, pw):
    """One AUTH PLAIN with an initial response: (code, text)."""
    code, msg = s.docmd("AUTH", "PLAIN " + plain(user, pw))
    return code, msg.decode(errors="replace")


def logged_in(inst, user, source=None, port="sub"):
    s = submission(inst, source) if port == "sub" else smtps(inst, source)
    code, msg = auth_plain(s, user, password(user))
    if code != 235:
        s.close()
        raise AssertionError("AUTH as %s from %s: %d %s" % (user, source or "127.0.0.1", code, msg))
    return s


def spool_text(inst, qid):
    return inst.read_spool(qid).decode("utf-8", errors="replace")


def log_has_no(inst, secrets):
    """Asserts that none of the secrets appears anywhere in the log."""
    text = inst.log_text()
    for sec in secrets:
        if sec and sec in text:
            raise AssertionError("the log of %s holds the secret %r" % (inst.name, sec))


def second_address_ok():
    """127.0.0.2 is routed to lo on Linux; check that we can bind it."""
    import socket
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def openssl(args, stdin=b"", timeout=30):
    return subprocess.run(["openssl"] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)

