"""
Jails (issue 10, part 2): each chrooted role (smtpd, deliver, the resolver, auth)
holds exactly what it needs, and a process in it can do nothing else.

The proof has two halves. From outside, the live process: /proc/PID/root
is its jail, Uid/Gid are its account (all four ids), CapEff and CapPrm are
0, and the jail holds only the entries of master/audit.c's table (postern
check finds nothing). From inside: tests/tools/jailprobe enters the same
jail through the daemons' own privilege drop (common/privsep.c priv_drop,
the same calls in the same order) as the same uid and gid, and tries to
read /etc/passwd, climb out, write anywhere, chroot again, regain root, and
signal and ptrace the master, queue-mgr and the other roles. Everything
must be denied. (Two processes of the same role share an account, so one
smtpd worker may signal another, as in Postfix; ptrace is still refused,
the processes are not dumpable.)

Then `postern check` on planted faults: a world-writable directory in a
jail and an extra file in one are each reported with their fix.
"""

import os
import re
import stat
import subprocess

import harness

JAILPROBE = os.path.join(harness.REPO, os.path.dirname(os.environ.get("UNIT", "build/release/unit-tests")),
                         "jailprobe")
JAILED = {"smtpd": "smtpd", "deliver": "deliver", "resolver": "resolver", "auth": "auth"}   # comm -> account key


def _need_root_jails():
    if not harness.IS_ROOT:
        raise harness.Skip("needs root: jails exist only when the master runs as root")
    if not harness.CHROOT:
        raise harness.Skip("chroot is off in sanitizer runs (harness.CHROOT); the release run covers the jails")
    harness.need_deliver()
    if not os.access(JAILPROBE, os.X_OK):
        raise AssertionError("%s is missing: make builds it" % JAILPROBE)


def _status(pid):
    st = harness.proc_status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            int(st["CapEff"], 16), int(st["CapPrm"], 16))


def _check(inst):
    ret = subprocess.run([harness.binary("postern"), "-c", inst.conf_path, "check"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return ret.returncode, ret.stdout.decode(errors="replace"), ret.stderr.decode(errors="replace")


def test_jail_roles_confined():
    _need_root_jails()
    inst = harness.shared()
    # the instance answers SMTP before deliver is up: wait for every role
    inst.wait_log(r"postern/master\[\d+\]: ready: every process is up", timeout=60)
    kids = inst.children()
    by = {}
    for pid, comm in kids:
        by.setdefault(comm, []).append(pid)
    for comm in JAILED:
        if not by.get(comm):
            raise AssertionError("no %s process among the master's children %r" % (comm, kids))
    uid_of = {}
    for comm, acct in JAILED.items():
        uid, gid = harness.ACCOUNTS[acct]
        jail = os.path.realpath(os.path.join(inst.run_dir, comm))
        for pid in by[comm]:
            root = os.readlink("/proc/%d/root" % pid)
            uids, gids, capeff, capprm = _status(pid)
            assert root == jail, "%s[%d] has root %r, want its jail %r" % (comm, pid, root, jail)
            assert uids == [uid] * 4 and gids == [gid] * 4, \
                "%s[%d] runs as uid %s gid %s, want %d:%d" % (comm, pid, uids, gids, uid, gid)
            assert capeff == 0 and capprm == 0, "%s[%d] keeps capabilities %x/%x" % (comm, pid, capeff, capprm)
            uid_of[pid] = uid
        # from inside, as that account in that jail, by the same drop
        targets = [str(inst.pid)] + [str(p) for p, c in kids if c != comm] + \
            ["p%d" % p for p, c in kids if c == comm]
        r = subprocess.run([JAILPROBE, jail, str(uid), str(gid)] + targets,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        allowed = [line for line in out.splitlines() if line.startswith("ALLOWED")]
        assert r.returncode == 0 and not allowed, "in the %s jail, allowed:\n%s" % (comm, out)
        for what in ("open /etc/passwd", "create file /.jailprobe-file", "chroot(\"..\")", "setuid(0)",
                     "kill(%d" % inst.pid, "ptrace(PTRACE_ATTACH, %d)" % inst.pid):
            assert ("denied: " + what) in out, "%s probe did not try %r:\n%s" % (comm, what, out)
        for p in by[comm]:      # a sibling of the same account: ptrace refused too
            assert "denied: ptrace(PTRACE_ATTACH, %d)" % p in out, "%s probe did not try ptrace on %d:\n%s" % (comm, p, out)
        m = re.search(r"^status: CapEff:\s*([0-9a-f]+)", out, re.M)
        assert m and int(m.group(1), 16) == 0, "the probe kept capabilities:\n%s" % out
        # the probe's identity is the live daemon's
        m = re.search(r"^status: Uid:\s*(\d+)", out, re.M)
        assert m and int(m.group(1)) == uid, out
    # the jails hold nothing else: postern check's audit finds nothing
    rc, out, err = _check(inst)
    assert rc == 0, "postern check on a running instance failed:\n%s%s" % (out, err)
    for comm in JAILED:
        jail = os.path.join(inst.run_dir, comm)
        for dirpath, dirs, files in os.walk(jail):
            for name in files + dirs:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if stat.S_ISSOCK(st.st_mode):
                    continue        # connecting takes write permission: the role's job
                assert not (st.st_mode & 0o002), "%s is world-writable" % p
                assert st.st_uid != harness.ACCOUNTS[comm][0] or not os.path.isdir(p) or \
                    not (st.st_mode & 0o200), "%s in the %s jail is writable by %s" % (p, comm, comm)


test_jail_roles_confined.timeout = 180


def test_jail_check_finds_planted_faults():
    """A world-writable directory and an extra file in a jail: each is a
    finding with its fix, and check exits 1; removed, check passes."""
    if not harness.IS_ROOT:
        raise harness.Skip("needs root (jail owners)")
    inst = harness.Instance("jailcheck")
    inst.start()
    try:
        inst.stop()
        rc, out, err = _check(inst)
        assert rc == 0, "check before planting: %s%s" % (out, err)
        wdir = os.path.join(inst.run_dir, "smtpd", "tmp")
        os.mkdir(wdir)
        os.chmod(wdir, 0o777)
        extra = os.path.join(inst.run_dir, "resolver", "busybox")
        with open(extra, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(extra, 0o755)
        rc, out, err = _check(inst)
        assert rc == 1, "check with planted faults exited %d:\n%s%s" % (rc, out, err)
        assert re.search(r"postern check: %s: directory in the smtpd jail that smtpd does not need.*; fix: rm -r %s$"
                         % (re.escape(wdir), re.escape(wdir)), err, re.M), err
        assert re.search(r"postern check: %s: writable by .*; fix: chmod go-w %s" % (re.escape(wdir), re.escape(wdir)),
                         err, re.M), err
        assert re.search(r"postern check: %s: file in the resolver jail that resolver does not need.*; fix: rm %s$"
                         % (re.escape(extra), re.escape(extra)), err, re.M), err
        assert re.search(r"\b3 finding\(s\)", err), err
        # the start refuses nothing of this (the jail is root's), but check says it; fix and pass
        os.rmdir(wdir)
        os.unlink(extra)
        # a world-writable directory the master owns is refused by check (and by start)
        q = os.path.join(inst.run_dir, "smtpd", "queue")
        os.chmod(q, 0o777)
        rc, out, err = _check(inst)
        assert rc == 1 and "chmod 755 %s" % q in err, "world-writable %s not reported:\n%s" % (q, err)
        os.chmod(q, 0o755)
        rc, out, err = _check(inst)
        assert rc == 0, "check after the fixes: %s%s" % (out, err)
    finally:
        if inst.alive():
            inst.stop()
