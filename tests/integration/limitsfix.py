"""
limitsfix.py - fixtures for the relay and abuse-limit tests: an SMTP client
whose connection comes from a chosen loopback address (127.0.0.2 and up, so
that one instance sees "outside" clients beside 127.0.0.1), and an
authenticated submission session (skipped while the server offers no AUTH).
"""

import base64
import subprocess

import harness
from harness import expect

USER = "demo@localhost"
PASSWORD = "limits-test-password-7Qx"


def FromClient(port, src, **kw):
    """harness.Client, with the connection coming from source address src."""
    return harness.Client(port, src=src, **kw)


def password_hash(password=PASSWORD):
    """A SHA512-CRYPT hash, as `doveadm pw -s SHA512-CRYPT` writes it."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(), capture_output=True,
                         check=True, timeout=30)
    return "{SHA512-CRYPT}" + out.stdout.decode().strip()


def auth_instance(name, **conf):
    """An instance (start it: `with auth_instance(...) as inst`) whose
    mailboxes_file gives USER a password."""
    inst = harness.Instance(name, **conf)
    with open(inst.mailboxes_file, "w") as f:
        f.write("%s:%s\n" % (USER, password_hash()))
    return inst


def auth_client(inst, src="127.0.0.1"):
    """A session on the submission port from src, after STARTTLS and AUTH
    PLAIN as USER; raises harness.Skip while the server offers no AUTH."""
    c = FromClient(inst.p_sub, src)
    try:
        c.ehlo()
        c.starttls()
        r = c.ehlo()
        if not any(l[4:].upper().startswith("AUTH") for l in r.lines):
            raise harness.Skip("the server offers no AUTH yet")
        cred = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
        expect(c.cmd("AUTH PLAIN " + cred, timeout=20), prefix="235 2.7.0")
    except BaseException:
        c.close()
        raise
    return c
