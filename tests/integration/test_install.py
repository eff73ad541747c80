"""
make install / make uninstall (issue 10, part 1).

- `make install DESTDIR=T PREFIX=/usr` builds the expected tree: the
  process binaries in lib/postern, postern and posternctl in sbin, mailq,
  sendmail and newaliases in bin, /usr/sbin/sendmail, the example config
  (never overwritten on a second install), the unit, logrotate and rsyslog
  snippets, the spool and mail directories; `systemd-analyze verify`
  accepts the unit; `make uninstall DESTDIR=T` takes it all away again but
  keeps the queue, the mailboxes and a configuration the operator changed.
- As root, a real install into a fresh root: a private mount namespace
  (`unshare -m`) with a copy of /etc and empty /usr/local, /var/spool,
  /var/mail and /run, so the accounts, the files and the directories are
  really made by the script, and nothing leaks to the host. There the
  installed `postern run` starts under the installed configuration (plus
  the loopback ports of the test) and delivers a mail to a sink on
  loopback; then `postern stop` and `make uninstall`.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

REPO = harness.REPO


def _script_table(name):
    """A table of scripts/install (ROLES, ACCOUNTS, ...), as the words of its
    one line: a new role added there is tested here without an edit."""
    text = open(os.path.join(REPO, "scripts", "install")).read()
    m = re.search(r'^%s="([^"]*)"$' % name, text, re.M)
    assert m, "scripts/install has no %s line" % name
    return m.group(1).split()


ACCOUNTS = _script_table("ACCOUNTS")
ROLES = _script_table("ROLES")


def _make(target, env_extra, timeout=300):
    env = dict(os.environ)
    env.update(env_extra)
    args = ["make", "-s", "-C", REPO, target]
    if harness.SAN:
        args.append("SAN=1")        # the tree the tests run (BIN = build/asan/bin)
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


def _mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_install_destdir_tree():
    t = tempfile.mkdtemp(prefix="destdir.", dir=harness.base_dir())
    rc, out = _make("install", {"DESTDIR": t, "PREFIX": "/usr"})
    assert rc == 0, "make install DESTDIR=%s: %s" % (t, out)
    p = lambda rel: os.path.join(t, rel.lstrip("/"))   # noqa: E731
    assert {"postern", "smtpd", "queue-mgr", "resolver", "deliver"} <= set(ROLES), ROLES
    for b in ROLES + ["posternctl", "mailq", "sendmail"]:
        f = p("/usr/lib/postern/" + b)
        assert os.path.isfile(f) and _mode(f) == 0o755, "%s missing or not 0755" % f
    links = {"/usr/sbin/postern": "postern", "/usr/sbin/posternctl": "posternctl", "/usr/bin/mailq": "mailq",
             "/usr/bin/sendmail": "sendmail", "/usr/sbin/sendmail": "sendmail"}
    for l, target in links.items():
        assert os.path.islink(p(l)), "%s is not a link" % l
        assert os.readlink(p(l)) == "../lib/postern/" + target, "%s -> %s" % (l, os.readlink(p(l)))
        assert os.path.realpath(p(l)) == p("/usr/lib/postern/" + target), "%s does not resolve inside the tree" % l
    na = open(p("/usr/bin/newaliases")).read()
    assert "exec /usr/lib/postern/posternctl reload-maps" in na and _mode(p("/usr/bin/newaliases")) == 0o755, na
    for f, mode in (("/etc/postern/postern.conf", 0o644), ("/etc/postern/postern.conf.example", 0o644),
                    ("/etc/postern/mailboxes", 0o600), ("/etc/postern/aliases", 0o644),
                    ("/etc/systemd/system/postern.service", 0o644), ("/etc/logrotate.d/postern", 0o644),
                    ("/etc/rsyslog.d/30-postern.conf", 0o644), ("/usr/share/doc/postern/INSTALL", 0o644)):
        assert os.path.isfile(p(f)) and _mode(p(f)) == mode, "%s missing or mode %o" % (f, _mode(p(f)))
    for dname in ("/var/spool/postern", "/var/mail/postern"):
        assert os.path.isdir(p(dname)) and _mode(p(dname)) == 0o700, "%s missing or not 0700" % dname
    if os.path.isdir(os.path.join(REPO, "etc", "bounce")):
        assert os.path.isdir(p("/etc/postern/bounce")), "etc/bounce not installed"
    unit = open(p("/etc/systemd/system/postern.service")).read()
    for line in ("Type=notify", "ExecStart=/usr/sbin/postern run", "ExecReload=/usr/sbin/postern reload",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "ReadWritePaths=-/var/spool/postern -/var/mail/postern", "RuntimeDirectory=postern"):
        assert re.search(r"^%s$" % re.escape(line), unit, re.M), "unit lacks %r" % line
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    assert "CAP_NET_BIND_SERVICE" in caps and "CAP_SYS_ADMIN" not in caps and "CAP_SYS_PTRACE" not in caps, caps
    # accounts are not made into a DESTDIR tree
    assert not os.path.exists(p("/etc/passwd"))

    # a second install keeps the operator's configuration
    with open(p("/etc/postern/postern.conf"), "a") as f:
        f.write("hostname = mx.example.org\n")
    with open(p("/var/spool/postern/keep-me"), "w") as f:
        f.write("queue\n")
    rc, out = _make("install", {"DESTDIR": t, "PREFIX": "/usr"})
    assert rc == 0, out
    assert "hostname = mx.example.org" in open(p("/etc/postern/postern.conf")).read(), "install overwrote the config"

    # the unit is valid for systemd (paths pointed into the tree)
    if shutil.which("systemd-analyze"):
        u = os.path.join(t, "postern.service")
        with open(u, "w") as f:
            f.write(unit.replace("/usr/sbin/postern", p("/usr/sbin/postern")))
        r = subprocess.run(["systemd-analyze", "verify", u], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        text = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "postern.service" not in text, "systemd-analyze verify: %s" % text
        os.unlink(u)
    else:
        harness.note("systemd-analyze not installed: the unit was not verified")

    rc, out = _make("uninstall", {"DESTDIR": t, "PREFIX": "/usr"})
    assert rc == 0, out
    left = []
    for dirpath, dirs, files in os.walk(t):
        for f in files:
            left.append(os.path.relpath(os.path.join(dirpath, f), t))
    # the changed configuration, the queue: kept; everything else: gone
    assert sorted(left) == ["etc/postern/postern.conf", "var/spool/postern/keep-me"], "left behind: %r" % left
    assert os.path.isdir(p("/var/mail/postern"))


test_install_destdir_tree.timeout = 300


# ---------------------------------------------------------------- fresh root

def _inside(work, sink_port, smtp_port):
    """Runs in the private mount namespace: returns a dict for the test."""
    res = {"steps": []}

    def step(what, args, env=None, ok=(0,)):
        e = dict(os.environ)
        e.update(env or {})
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=300)
        out = r.stdout.decode(errors="replace")
        res["steps"].append({"what": what, "rc": r.returncode, "out": out[-3000:]})
        if r.returncode not in ok:
            raise RuntimeError("%s: exit %d: %s" % (what, r.returncode, out[-3000:]))
        return out

    def mount(*args):
        step("mount " + " ".join(args), ["mount"] + list(args))

    # a fresh root for everything install touches; the repository stays visible
    shutil.copytree("/etc", os.path.join(work, "etc"), symlinks=True)
    mount("--make-rprivate", "/")
    mount("--bind", os.path.join(work, "etc"), "/etc")
    for d in ("/usr/local", "/var/spool", "/var/mail", "/run"):
        os.makedirs(d, exist_ok=True)
        mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", d)
    for u in ACCOUNTS:
        assert subprocess.run(["id", u], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0, \
            "account %s exists before the install" % u
    make = ["make", "-s", "-C", REPO]
    if harness.SAN:
        make.append("SAN=1")
    out1 = step("make install", make + ["install"], {"PREFIX": "/usr/local"})
    out2 = step("make install (again)", make + ["install"], {"PREFIX": "/usr/local"})
    res["created_first"] = out1.count("created account")
    res["created_again"] = out2.count("created account")
    res["accounts"] = {}
    for u in ACCOUNTS:
        line = step("getent " + u, ["getent", "passwd", u]).strip().split(":")
        res["accounts"][u] = {"uid": int(line[2]), "home": line[5], "shell": line[6]}
    res["spool_owner"] = os.stat("/var/spool/postern").st_uid
    conf = "/etc/postern/postern.conf"
    with open(conf, "a") as f:
        f.write("\n# the test's loopback ports\n"
                "hostname = fresh.postern.invalid\n"
                "listen_smtp = 127.0.0.1:%d\nlisten_submission =\nlisten_smtps =\n"
                "relayhost = [127.0.0.1]:%d\n"
                "dns_forwarders = 127.0.0.1@%d\ndnssec_trust_anchor_file =\n" % (smtp_port, sink_port, smtp_port))
    step("postern check", ["/usr/local/sbin/postern", "check"])
    log_path = os.path.join(work, "postern.log")
    logf = open(log_path, "wb")
    master = subprocess.Popen(["/usr/local/sbin/postern", "run"], stdin=subprocess.DEVNULL, stdout=logf,
                              stderr=logf, start_new_session=True)
    try:
        def log():
            return open(log_path, errors="replace").read()
        harness.wait_until(lambda: "ready: every process is up" in log() or master.poll() is not None, 60,
                           "the installed postern to be ready")
        assert master.poll() is None, "postern run exited: " + log()[-3000:]
        import smtplib
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.ehlo("client.example")
            s.sendmail("someone@client.example", ["rcpt@remote.example"],
                       b"From: someone@client.example\r\nSubject: fresh root\r\n\r\nfrom the fresh root\r\n")
        harness.wait_until(lambda: re.search(r"to=<rcpt@remote\.example>, relay=.*status=sent", log()), 60,
                           "the delivery to the sink")
        res["exe"] = os.readlink("/proc/%d/exe" % master.pid)
        step("postern stop", ["/usr/local/sbin/postern", "stop"])
        master.wait(60)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
        logf.close()
    res["log"] = open(log_path, errors="replace").read()[-4000:]
    step("make uninstall", make + ["uninstall"], {"PREFIX": "/usr/local"})
    res["after"] = {p: os.path.lexists(p) for p in (
        "/usr/local/sbin/postern", "/usr/local/lib/postern", "/usr/local/bin/mailq", "/usr/local/bin/newaliases",
        "/etc/systemd/system/postern.service", "/etc/logrotate.d/postern", "/var/spool/postern/index",
        "/var/mail/postern", conf)}
    res["accounts_after"] = subprocess.run(["id", "postern-queue"], stdout=subprocess.DEVNULL).returncode == 0
    return res


def test_install_fresh_root_delivers():
    if not harness.IS_ROOT:
        raise harness.Skip("needs root: a real install makes accounts and a mount namespace")
    if harness.SAN:
        raise harness.Skip("the installed configuration chroots, which the sanitizer runs cannot (harness.CHROOT)")
    harness.need_deliver()
    if not shutil.which("unshare"):
        raise harness.Skip("no unshare(1)")
    probe = subprocess.run(["unshare", "-m", "true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if probe.returncode != 0:
        raise harness.Skip("no mount namespaces here: %s" % probe.stdout.decode(errors="replace").strip())
    import sinkfix
    if not sinkfix.HAVE_AIOSMTPD:
        raise harness.Skip("python3-aiosmtpd is missing (scripts/deps)")
    work = tempfile.mkdtemp(prefix="freshroot.", dir=harness.base_dir())
    smtp_port = harness.free_port()
    with sinkfix.Sink(host="127.0.0.1") as sink:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                            "--inside", work, str(sink.port), str(smtp_port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=540,
                           env=harness.daemon_env({"BIN": harness.BIN}))
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, "inside the fresh root: exit %d\n%s\n%s" % (
            r.returncode, out[-6000:], r.stderr.decode(errors="replace")[-4000:])
        res = json.loads(out.strip().splitlines()[-1])
        got = sink.wait_messages(1, timeout=10)
    assert res["created_first"] == len(ACCOUNTS) and res["created_again"] == 0, \
        "accounts created %d then %d times (want %d then 0)" % (res["created_first"], res["created_again"],
                                                               len(ACCOUNTS))
    for u, a in res["accounts"].items():
        assert a["shell"].endswith("nologin") or a["shell"] == "/bin/false", "%s has shell %s" % (u, a["shell"])
        assert a["home"] == "/nonexistent" and 0 < a["uid"] < 1000, "%s: %r" % (u, a)
    assert res["spool_owner"] == res["accounts"]["postern-queue"]["uid"], "spool not owned by postern-queue"
    assert res["exe"] == "/usr/local/lib/postern/postern", "the master ran from %s" % res["exe"]
    assert any(b"from the fresh root" in m.data for m in got), "the sink did not get the mail: %r" % got
    gone = [p for p, there in res["after"].items() if there and not p.startswith(("/var/", "/etc/postern/"))]
    assert not gone, "make uninstall left %r" % gone
    assert res["after"]["/var/spool/postern/index"] and res["after"]["/var/mail/postern"], \
        "make uninstall took the queue or the mailboxes: %r" % res["after"]
    assert res["after"]["/etc/postern/postern.conf"], "uninstall removed a configuration the operator changed"
    assert res["accounts_after"], "uninstall removed the accounts that own the queue"
    # nothing leaked to the host
    assert not os.path.exists("/usr/local/lib/postern") or os.environ.get("POSTERN_INSTALLED_HERE")
    assert subprocess.run(["id", "postern-queue"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0 or os.environ.get("POSTERN_INSTALLED_HERE"), \
        "the fresh-root install created an account on the host"


test_install_fresh_root_delivers.timeout = 600


# ------------------------------------------------- the unit's capabilities

def _unit_caps():
    text = open(os.path.join(REPO, "etc", "postern.service.in")).read()
    m = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert m, "the unit has no CapabilityBoundingSet"
    assert re.search(r"^NoNewPrivileges=yes$", text, re.M), "the unit lacks NoNewPrivileges=yes"
    return [c.lower()[4:] for c in m.group(1).split()]


def _low_port():
    """A free port below 1024 on loopback (binding it needs NET_BIND_SERVICE)."""
    import socket
    for port in range(700, 1000):
        with socket.socket() as sk:
            try:
                sk.bind((harness.LOCALHOST, port))
                return port
            except OSError:
                continue
    raise harness.Skip("no free port below 1024")


def _run_with_caps(caps, low_port):
    """Starts the master under setpriv with exactly caps in its bounding set
    and no_new_privs, as the unit does. Returns (None, inst) when every
    process came up, mail was queued, a reload and a stop worked; else
    (reason, inst)."""
    inst = harness.Instance("caps", listen_smtp="%s:%d" % (harness.LOCALHOST, low_port))
    inst.logf = open(inst.log_path, "ab")
    inst.proc = subprocess.Popen(
        ["setpriv", "--no-new-privs", "--inh-caps", "-all", "--bounding-set",
         "-all," + ",".join("+" + c for c in caps), harness.binary("postern"), "-c", inst.conf_path, "run"],
        stdin=subprocess.DEVNULL, stdout=inst.logf, stderr=inst.logf, cwd=inst.dir, env=harness.daemon_env(),
        start_new_session=True)
    try:
        def state():
            t = inst.log_text()
            if "ready: every process is up" in t:
                return "up"
            m = re.search(r"(fatal: .*)", t)
            if m:
                return m.group(1)
            if inst.proc.poll() is not None:
                return "the master exited %d" % inst.proc.returncode
            return None
        st = harness.wait_until(state, 60, "the master under setpriv to come up or fail")
        if st != "up":
            return st, inst
        with harness.Client(low_port) as c:
            c.send_message("a@client.example", [harness.REMOTE_RCPT])
        r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path, "reload"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            return "reload: " + r.stdout.decode(errors="replace"), inst
        inst.proc.send_signal(15)
        try:
            inst.proc.wait(20)
        except subprocess.TimeoutExpired:
            return "the master did not stop within 20 s (it cannot signal its children?)", inst
        if inst.proc.returncode != 0:
            return "the master stopped with %d" % inst.proc.returncode, inst
        return None, inst
    finally:
        if inst.proc.poll() is None:
            inst._kill([p for p, _ in inst.children()])
        kids = [p for p, _ in inst.children()] if inst.proc.poll() is None else []
        inst._kill(kids)
        inst.logf.close()
        inst.logf = None


def test_unit_capabilities_exactly_enough():
    """The unit's CapabilityBoundingSet with NoNewPrivileges: the master
    runs, binds a port below 1024, chroots and drops its children, takes
    mail, reloads and stops; and without any one of those capabilities it
    cannot (so none is there for nothing)."""
    if not harness.IS_ROOT:
        raise harness.Skip("needs root")
    if harness.SAN or not harness.CHROOT:
        raise harness.Skip("chroot is off in sanitizer runs (harness.CHROOT)")
    harness.need_deliver()
    if not shutil.which("setpriv"):
        raise harness.Skip("no setpriv(1) (util-linux)")
    caps = _unit_caps()
    port = _low_port()
    why, inst = _run_with_caps(caps, port)
    assert why is None, "with the unit's capabilities %s: %s\n%s" % (caps, why, inst.log_tail(20))
    for c in caps:
        why, inst = _run_with_caps([x for x in caps if x != c], _low_port())
        assert why is not None, "the master works without CAP_%s: drop it from the unit" % c.upper()
        harness.note("without CAP_%s: %s" % (c.upper(), why[:160]))


test_unit_capabilities_exactly_enough.timeout = 400


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--inside":
    try:
        result = _inside(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    except Exception as e:  # noqa: BLE001 - reported to the test
        import traceback
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps(result))
