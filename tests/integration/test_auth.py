"""
SMTP AUTH (RFC 4954) on 587 and 465: PLAIN and LOGIN with Python's smtplib
and swaks, hashes from mkpasswd and Dovecot's doveadm, AUTH refused before
STARTTLS and on port 25, wrong passwords, cancels and bad input (each a
clean 501/535 and one escaped log line), TLS versions with openssl
s_client, the brute-force throttle (per address and per user), posternctl
passwd, the certificate reload, and no password ever in the log.
"""

import os
import re
import shutil
import smtplib
import subprocess
import time

import authfix
import harness
from authfix import b64, password, plain
from harness import REMOTE_RCPT, expect, queued_id


def _inst():
    return authfix.shared("auth")


def _secrets():
    out = []
    for u, (pw, _) in authfix.USERS.items():
        out += [pw, plain(u, pw), b64(pw)]
    return out


def test_smtplib_starttls_login_587():
    inst = _inst()
    s = authfix.submission(inst)
    try:
        if "PLAIN" not in s.esmtp_features.get("auth", "") or "LOGIN" not in s.esmtp_features.get("auth", ""):
            raise AssertionError("AUTH PLAIN LOGIN not offered after STARTTLS on 587: %r" % s.esmtp_features)
        code, msg = s.login("john@localhost", password("john@localhost"))
        if code != 235 or not msg.startswith(b"2.7.0"):
            raise AssertionError("login: %d %r" % (code, msg))
        s.sendmail("john@localhost", [REMOTE_RCPT], b"Subject: smtplib 587\r\n\r\nhello\r\n")
    finally:
        s.quit()


def test_smtp_ssl_465_login_mechanism():
    """Implicit TLS on 465, and the LOGIN mechanism (two 334 steps)."""
    inst = _inst()
    s = authfix.smtps(inst)
    try:
        s.user, s.password = "mary@localhost", password("mary@localhost")
        code, msg = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        if code != 235:
            raise AssertionError("AUTH LOGIN on 465: %d %r" % (code, msg))
        s.sendmail("mary@localhost", [REMOTE_RCPT], b"Subject: smtps\r\n\r\nhello\r\n")
    finally:
        s.quit()


def test_login_with_initial_response():
    inst = _inst()
    with inst.client(port=inst.p_smtps, tls=True) as c:
        c.ehlo()
        expect(c.cmd("AUTH LOGIN " + b64("bob@localhost")), exact="334 UGFzc3dvcmQ6")
        expect(c.cmd(b64(password("bob@localhost"))), exact="235 2.7.0 Authentication successful")
        expect(c.cmd("AUTH PLAIN " + plain("bob@localhost", "x")), exact="503 5.5.1 Error: already authenticated")


def test_hash_schemes_of_the_operator_tools():
    """yescrypt from mkpasswd, {SHA512-CRYPT} and {BLF-CRYPT} from doveadm
    pw, a bare $6$ from mkpasswd: each accepted with its password, and
    refused with another's."""
    inst = _inst()
    for user in authfix.USERS:
        s = authfix.submission(inst)
        try:
            code, msg = authfix.auth_plain(s, user, "not-" + password(user))
            if code != 535:
                raise AssertionError("%s (%s) with a wrong password: %d %s" % (user, authfix.USERS[user][1], code, msg))
            code, msg = authfix.auth_plain(s, user, password(user))
            if code != 235:
                raise AssertionError("%s (%s) refused: %d %s" % (user, authfix.USERS[user][1], code, msg))
        finally:
            s.close()


def test_swaks_plain_and_login():
    if not shutil.which("swaks"):
        raise harness.Skip("swaks is not installed")
    inst = _inst()
    for mech, port, tls in (("PLAIN", inst.p_sub, "--tls"), ("LOGIN", inst.p_sub, "--tls"),
                            ("PLAIN", inst.p_smtps, "--tls-on-connect")):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port, tls, "--auth", mech,
                            "--auth-user", "john@localhost", "--auth-password", password("john@localhost"),
                            "--from", "john@localhost", "--to", REMOTE_RCPT, "--helo", "client.example",
                            "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0 or "<~  235 2.7.0" not in out or not re.search(r"<~  250 2\.0\.0 Ok: queued as", out):
            raise AssertionError("swaks %s --auth %s on %d failed (exit %d):\n%s" % (tls, mech, port, r.returncode, out[-1500:]))


def test_auth_needs_tls_and_submission():
    inst = _inst()
    with inst.client(port=inst.p_sub) as c:
        r = c.ehlo()
        if any(l[4:].startswith("AUTH") for l in r.lines):
            raise AssertionError("AUTH offered before STARTTLS: %r" % str(r))
        expect(c.cmd("AUTH PLAIN " + plain("john@localhost", password("john@localhost"))),
               exact="530 5.7.0 Must issue a STARTTLS command first")
        expect(c.cmd("MAIL FROM:<john@localhost>"), exact="530 5.7.0 Must issue a STARTTLS command first")
        c.starttls()
        c.ehlo()
        expect(c.cmd("MAIL FROM:<john@localhost>"), exact="530 5.7.0 Authentication required")
    # port 25, even under TLS: no AUTH at all
    with inst.client() as c:
        c.ehlo()
        c.starttls()
        r = c.ehlo()
        if any(l[4:].startswith("AUTH") for l in r.lines):
            raise AssertionError("AUTH offered on port 25: %r" % str(r))
        expect(c.cmd("AUTH PLAIN " + plain("john@localhost", password("john@localhost"))),
               exact="503 5.5.1 Error: authentication not enabled")
    authfix.log_has_no(inst, _secrets())


def test_wrong_password_is_slow_and_535():
    inst = _inst()
    with inst.client(port=inst.p_smtps, tls=True) as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.cmd("AUTH PLAIN " + plain("john@localhost", "wrong-password-xyz"), timeout=30)
        took = time.monotonic() - t0
        expect(r, exact="535 5.7.8 Error: authentication failed")
        # smtpd_auth_failure_delay_ms is 1000 by default
        if took < 0.9:
            raise AssertionError("535 came after %.3fs, before the failure delay of 1s" % took)
        # the session goes on and may try again
        expect(c.cmd("AUTH PLAIN " + plain("john@localhost", password("john@localhost"))),
               exact="235 2.7.0 Authentication successful")
    inst.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: user=<john@localhost>$")
    authfix.log_has_no(inst, ["wrong-password-xyz", plain("john@localhost", "wrong-password-xyz")])


def test_unknown_user_is_a_plain_535():
    inst = _inst()
    with inst.client(port=inst.p_smtps, tls=True) as c:
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + plain("nobody@localhost", "whatever"), timeout=30),
               exact="535 5.7.8 Error: authentication failed")


def test_cancel_and_syntax():
    inst = _inst()
    with inst.client(port=inst.p_smtps, tls=True) as c:
        expect(c.cmd("AUTH PLAIN"), exact="503 5.5.1 Error: send HELO/EHLO first")
        c.ehlo()
        expect(c.cmd("AUTH"), exact="501 5.5.4 Syntax: AUTH mechanism")
        expect(c.cmd("AUTH CRAM-MD5"), exact="504 5.5.4 Unrecognized authentication type")
        expect(c.cmd("AUTH PLAIN"), exact="334 ")
        expect(c.cmd("*"), exact="501 5.7.0 Authentication aborted")
        expect(c.cmd("AUTH LOGIN"), exact="334 VXNlcm5hbWU6")
        expect(c.cmd(b64("john@localhost")), exact="334 UGFzc3dvcmQ6")
        expect(c.cmd("*"), exact="501 5.7.0 Authentication aborted")
        # the session is usable after the cancels
        expect(c.cmd("AUTH PLAIN " + plain("john@localhost", password("john@localhost"))),
               exact="235 2.7.0 Authentication successful")


def test_bad_input_clean_replies_one_escaped_line():
    inst = _inst()
    since = inst.log_size()
    with inst.client(port=inst.p_smtps, tls=True, timeout=30) as c:
        c.ehlo()
        # malformed base64
        expect(c.cmd("AUTH PLAIN am9obkBsb2NhbGhvc3Q=x="), exact="501 5.5.2 Cannot decode response")
        expect(c.cmd("AUTH PLAIN"), exact="334 ")
        expect(c.cmd("not base64 at all!"), exact="501 5.5.2 Cannot decode response")
        # a response over 12,288 octets
        expect(c.cmd("AUTH PLAIN"), exact="334 ")
        expect(c.cmd("QUFB" * 3073), exact="500 5.5.6 Authentication exchange line is too long")
        # exactly 12,288 octets is still read (and is not a valid message)
        expect(c.cmd("AUTH PLAIN"), exact="334 ")
        expect(c.cmd("QUFB" * 3072), exact="501 5.5.2 Invalid authentication message")
        # a NUL inside the user name: PLAIN then has three NULs
        expect(c.cmd("AUTH PLAIN " + b64("\0jo\0hn@localhost\0pw")), exact="501 5.5.2 Invalid authentication message")
        # LOGIN: a NUL and a newline inside the user name
        expect(c.cmd("AUTH LOGIN " + b64("jo\0hn@localhost")), exact="535 5.7.8 Error: authentication failed")
        expect(c.cmd("AUTH LOGIN " + b64("john@localhost\nfake: log line")),
               exact="535 5.7.8 Error: authentication failed")
        expect(c.cmd("QUIT"), exact="221 2.0.0 Bye")
    log = inst.log_since(since)
    nul = [l for l in log.splitlines() if 'bad user name "jo?hn@localhost"' in l]
    nl = [l for l in log.splitlines() if 'bad user name "john@localhost?fake: log line"' in l]
    if len(nul) != 1 or len(nl) != 1:
        raise AssertionError("expected one escaped log line for each bad name; got %r / %r\n%s" % (nul, nl, log))
    if any(l.startswith("fake: log line") for l in log.splitlines()):
        raise AssertionError("a newline in a user name made a log line of its own")
    if "base64" not in log or "longer than 12288" not in log:
        raise AssertionError("malformed base64 / an over-long response not logged:\n" + log)


def test_tls_versions_openssl_s_client():
    inst = _inst()
    for port, starttls in ((inst.p_smtps, []), (inst.p_sub, ["-starttls", "smtp"])):
        for ver in ("-tls1", "-tls1_1"):
            r = authfix.openssl(["s_client", "-connect", "127.0.0.1:%d" % port, ver, "-cipher", "DEFAULT@SECLEVEL=0",
                                 "-brief"] + starttls, stdin=b"QUIT\r\n")
            out = r.stdout.decode(errors="replace")
            if r.returncode == 0 or "Protocol version: TLSv1\n" in out or "Protocol version: TLSv1.1" in out:
                raise AssertionError("%s accepted on port %d:\n%s" % (ver, port, out))
        for ver, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            r = authfix.openssl(["s_client", "-connect", "127.0.0.1:%d" % port, ver, "-brief"] + starttls,
                                stdin=b"QUIT\r\n")
            out = r.stdout.decode(errors="replace")
            if "Protocol version: " + name not in out:
                raise AssertionError("%s refused on port %d:\n%s" % (ver, port, out))


def _cert_fingerprint(port):
    r = authfix.openssl(["s_client", "-connect", "127.0.0.1:%d" % port, "-showcerts"], stdin=b"")
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    if not pem:
        return None
    f = authfix.openssl(["x509", "-noout", "-fingerprint", "-sha256"], stdin=pem.group(0))
    return f.stdout.decode().strip()


def test_certificate_reloaded_on_reload():
    inst = authfix.auth_instance("certreload", start=False)
    cert, key = os.path.join(inst.dir, "c.pem"), os.path.join(inst.dir, "k.pem")
    shutil.copy(inst.cert, cert)
    shutil.copy(inst.key, key)
    os.chmod(key, 0o600)
    inst.write_config(tls_cert_file=cert, tls_key_file=key)
    with inst:
        before = _cert_fingerprint(inst.p_smtps)
        if not before:
            raise AssertionError("no certificate from port %d" % inst.p_smtps)
        r = authfix.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                             "/CN=" + harness.HOST, "-keyout", key + ".new", "-out", cert + ".new"])
        if r.returncode != 0:
            raise AssertionError("openssl req: %s" % r.stdout)
        os.rename(key + ".new", key)
        os.rename(cert + ".new", cert)
        subprocess.run([harness.binary("postern"), "-c", inst.conf_path, "reload"], check=True,
                       stdout=subprocess.PIPE, timeout=30)
        after = harness.wait_until(lambda: (lambda f: f if f and f != before else None)(_cert_fingerprint(inst.p_smtps)),
                                   30, "the new certificate on port %d after postern reload" % inst.p_smtps)
        if after == before:
            raise AssertionError("certificate unchanged after reload")
        s = authfix.logged_in(inst, "john@localhost", port="smtps")
        s.quit()


def _try(inst, user, pw, source=None):
    """One AUTH PLAIN on a fresh 465 connection: (code, seconds, closed)."""
    s = authfix.smtps(inst, source)
    t0 = time.monotonic()
    try:
        code, _ = authfix.auth_plain(s, user, pw)
    except smtplib.SMTPServerDisconnected:
        return None, time.monotonic() - t0, True
    took = time.monotonic() - t0
    closed = False
    if code == 421:
        try:
            s.noop()
        except (smtplib.SMTPServerDisconnected, OSError):
            closed = True
    try:
        s.close()
    except OSError:
        pass
    return code, took, closed


def test_brute_force_throttled_then_blocked_other_address_still_works():
    if not authfix.second_address_ok():
        raise harness.Skip("cannot bind 127.0.0.2")
    inst = authfix.auth_instance("brute", smtpd_auth_failure_delay_ms="40", smtpd_auth_failure_limit="10",
                                 smtpd_auth_block_time="10m")
    try:
        results = [_try(inst, "john@localhost", "guess-%d" % i) for i in range(50)]
        codes = [r[0] for r in results]
        if codes[:10] != [535] * 10:
            raise AssertionError("the first 10 wrong passwords should get 535: %r" % codes)
        if any(c != 421 for c in codes[10:]):
            raise AssertionError("after 10 failures every try should get 421: %r" % codes)
        if not all(r[2] for r in results[10:]):
            raise AssertionError("a 421 must close the connection")
        # slower answers: 40, 80, 160, then 320 ms each
        if results[0][1] < 0.035 or any(r[1] < 0.3 for r in results[3:10]):
            raise AssertionError("535 delays not growing: %r" % [round(r[1], 3) for r in results[:10]])
        # the right password from the blocked address: still 421
        code, _, _ = _try(inst, "john@localhost", password("john@localhost"))
        if code != 421:
            raise AssertionError("the blocked address got %r for the right password" % code)
        # the same user from another address gets in at once
        s = authfix.logged_in(inst, "john@localhost", source="127.0.0.2")
        s.sendmail("john@localhost", [REMOTE_RCPT], b"Subject: from .2\r\n\r\nhi\r\n")
        s.quit()
        inst.wait_log(r"AUTH: 10 failures from 127\.0\.0\.1: blocked for 600 s")
        authfix.log_has_no(inst, ["guess-%d" % i for i in range(50)] + _secrets())
    finally:
        inst.stop()


test_brute_force_throttled_then_blocked_other_address_still_works.timeout = 240


def test_per_user_limit_blocks_only_the_failing_addresses():
    if not authfix.second_address_ok():
        raise harness.Skip("cannot bind 127.0.0.2")
    inst = authfix.auth_instance("peruser", smtpd_auth_failure_delay_ms="10", smtpd_auth_failure_limit="100",
                                 smtpd_auth_user_failure_limit="5")
    try:
        codes = [_try(inst, "mary@localhost", "nope-%d" % i)[0] for i in range(5)]
        if codes != [535] * 5:
            raise AssertionError("5 failures for mary: %r" % codes)
        # mary from the address that failed: blocked
        code, _, closed = _try(inst, "mary@localhost", password("mary@localhost"))
        if code != 421 or not closed:
            raise AssertionError("mary from the failing address after her limit: %r" % code)
        # the address itself is not blocked for other users
        s = authfix.logged_in(inst, "john@localhost")
        s.quit()
        # mary from a clean address gets in
        s = authfix.logged_in(inst, "mary@localhost", source="127.0.0.2")
        s.quit()
    finally:
        inst.stop()


def test_posternctl_passwd_sets_a_yescrypt_hash():
    inst = authfix.auth_instance("passwd")
    try:
        st = os.stat(inst.mailboxes_file)
        since = inst.log_size()
        newpw = "brand-New-pass-7"
        r = subprocess.run([harness.binary("posternctl"), "-c", inst.conf_path, "passwd", "John@localhost"],
                           input=(newpw + "\n").encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise AssertionError("posternctl passwd exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
        text = open(inst.mailboxes_file).read()
        line = [l for l in text.splitlines() if l.startswith("john@localhost:")]
        if len(line) != 1 or not line[0].split(":", 1)[1].startswith("$y$"):
            raise AssertionError("mailboxes file after passwd: %r" % text)
        if "mary@localhost:{SHA512-CRYPT}" not in text:
            raise AssertionError("other lines changed: %r" % text)
        st2 = os.stat(inst.mailboxes_file)
        if (st2.st_mode, st2.st_uid, st2.st_gid) != (st.st_mode, st.st_uid, st.st_gid):
            raise AssertionError("mode/owner changed: %o %d:%d -> %o %d:%d" % (st.st_mode, st.st_uid, st.st_gid,
                                                                                st2.st_mode, st2.st_uid, st2.st_gid))
        if newpw.encode() in r.stdout + r.stderr:
            raise AssertionError("posternctl printed the password")
        inst.wait_log(r"postern/auth\[\d+\]: reload: password map .* read again", since=since, timeout=90)

        def new_works():
            s = authfix.submission(inst)
            try:
                return authfix.auth_plain(s, "john@localhost", newpw)[0] == 235
            finally:
                s.close()
        harness.wait_until(new_works, 90, "the new password to work after posternctl passwd")
        s = authfix.submission(inst)
        try:
            code, _ = authfix.auth_plain(s, "john@localhost", password("john@localhost"))
            if code != 535:
                raise AssertionError("the old password still works: %d" % code)
        finally:
            s.close()
        # unknown mailbox: refused, nothing written
        r = subprocess.run([harness.binary("posternctl"), "-c", inst.conf_path, "passwd", "ghost@localhost"],
                           input=b"x\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode == 0 or open(inst.mailboxes_file).read() != text:
            raise AssertionError("passwd for a mailbox that does not exist: exit %d" % r.returncode)
        authfix.log_has_no(inst, [newpw, plain("john@localhost", newpw)])
    finally:
        inst.stop()


def test_password_never_in_the_log():
    """Runs last on the shared instance: every password and response used
    above is absent from its whole log."""
    inst = _inst()
    authfix.log_has_no(inst, _secrets() + ["wrong-password-xyz", "not-john-Secret-1"])


def test_delayed_535_does_not_block_other_sessions():
    """One smtpd worker: while a session waits out its 535 delay, another
    session on the same worker is served at once."""
    inst = authfix.auth_instance("delay", smtpd_processes="1", smtpd_auth_failure_delay_ms="3000")
    try:
        with inst.client(port=inst.p_smtps, tls=True, timeout=30) as a, \
                inst.client(port=inst.p_smtps, tls=True, timeout=30) as b:
            a.ehlo()
            b.ehlo()
            t0 = time.monotonic()
            a.send("AUTH PLAIN " + plain("john@localhost", "wrong") + "\r\n")
            # a's check is answered by the auth process first, then its delay runs
            inst.wait_log(r"SASL PLAIN authentication failed: user=<john@localhost>", timeout=20)
            t1 = time.monotonic()
            expect(b.cmd("NOOP"), exact="250 2.0.0 Ok")
            expect(b.cmd("AUTH PLAIN " + plain("mary@localhost", password("mary@localhost"))), code=235)
            if time.monotonic() - t1 > 2.0:
                raise AssertionError("the other session waited for the delayed one")
            expect(a.reply(timeout=20), exact="535 5.7.8 Error: authentication failed")
            if time.monotonic() - t0 < 2.9:
                raise AssertionError("the 535 came before its 3 s delay")
    finally:
        inst.stop()


def test_auth_process_privileges_and_maps():
    """The auth process runs as user_auth, chrooted into RUN/auth; the
    hashes are in RUN/auth/passwd.db (0440, root's, group user_auth's:
    readable, never writable, by the auth process) and nowhere in smtpd's
    map."""
    inst = _inst()
    pids = inst.pids("auth")
    if len(pids) != 1:
        raise AssertionError("expected one auth process, got %r" % inst.children())
    db = os.path.join(inst.run_dir, "auth", "passwd.db")
    st = os.stat(db)
    if st.st_mode & 0o777 != 0o440:
        raise AssertionError("passwd.db mode %o" % (st.st_mode & 0o777))
    smap = open(os.path.join(inst.run_dir, "smtpd", "maps.db"), "rb").read()
    for line in authfix.mailboxes_text().splitlines()[1:]:
        h = line.split(":", 1)[1]
        if h.encode() in smap:
            raise AssertionError("a password hash is in smtpd's map")
        if h.encode() not in open(db, "rb").read():
            raise AssertionError("a hash is missing from the auth map")
    if harness.IS_ROOT:
        uid = harness.ACCOUNTS["auth"][0]
        status = harness.proc_status(pids[0])
        if status["Uid"].split()[0] != str(uid):
            raise AssertionError("auth runs as %s, expected uid %d" % (status["Uid"], uid))
        if st.st_uid != 0 or st.st_gid != harness.ACCOUNTS["auth"][1]:
            raise AssertionError("passwd.db owned by %d:%d, expected 0:%d" % (st.st_uid, st.st_gid,
                                                                             harness.ACCOUNTS["auth"][1]))
        if harness.CHROOT:
            root = os.readlink("/proc/%d/root" % pids[0])
            if root != os.path.join(inst.run_dir, "auth"):
                raise AssertionError("auth is chrooted into %r" % root)
        for p in inst.pids("smtpd"):
            if os.readlink("/proc/%d/root" % p) == os.path.join(inst.run_dir, "auth"):
                raise AssertionError("smtpd shares the auth jail")


def test_posternctl_passwd_from_the_terminal():
    """No echo, asked twice; different answers change nothing."""
    import pty
    import select
    inst = authfix.auth_instance("passwdtty", start=False)
    before = open(inst.mailboxes_file).read()

    def run(answers):
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(harness.binary("posternctl"), ["posternctl", "-c", inst.conf_path, "passwd", "eve@localhost"])
        out = b""
        deadline = time.monotonic() + 30
        pending = list(answers)
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
                if pending and (out.endswith(b"password: ") or out.endswith(b"Again: ")):
                    os.write(fd, pending.pop(0).encode() + b"\n")
        r = os.waitpid(pid, os.WNOHANG)
        if r == (0, 0):
            os.kill(pid, 9)
            r = os.waitpid(pid, 0)
        status = r[1]
        os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace")

    code, out = run(["tty-Secret-9", "tty-Secret-X"])
    if code == 0 or "differ" not in out or open(inst.mailboxes_file).read() != before:
        raise AssertionError("different answers: exit %d, %r" % (code, out))
    code, out = run(["tty-Secret-9", "tty-Secret-9"])
    if code != 0 or "tty-Secret-9" in out:
        raise AssertionError("passwd on a terminal: exit %d, output %r (the password must not echo)" % (code, out))
    if "New password: " not in out or "Again: " not in out:
        raise AssertionError("no prompts: %r" % out)
    line = [l for l in open(inst.mailboxes_file).read().splitlines() if l.startswith("eve@localhost:")]
    if not line or not line[0].split(":", 1)[1].startswith("$y$"):
        raise AssertionError("no yescrypt hash for eve: %r" % line)
    with inst:
        s = authfix.submission(inst)
        try:
            if authfix.auth_plain(s, "eve@localhost", "tty-Secret-9")[0] != 235:
                raise AssertionError("the password set on the terminal does not work")
        finally:
            s.close()
