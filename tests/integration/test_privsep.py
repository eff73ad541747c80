"""
Privilege separation, read from /proc: as root, each smtpd worker runs as
user_smtpd chrooted into RUN_DIR/smtpd, queue-mgr as user_queue with root
"/", the master stays root. Without root (also tried from a root run by
starting the master as an unprivileged uid) everything runs as the invoking
user and the log says once that there is no privilege separation.
"""

import os

import harness

UNPRIV = (64010, 64010)     # a uid that owns nothing, for the non-root mode


def _ids(pid):
    st = harness.proc_status(pid)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    groups = [int(x) for x in st.get("Groups", "").split()]
    return uids, gids, groups, st


def _root_of(pid):
    return os.readlink("/proc/%d/root" % pid)


def _jail(inst):
    """Where smtpd's root directory should be: its jail, or "/" in the
    sanitizer runs that turn chroot off (see harness.CHROOT)."""
    if harness.CHROOT:
        return os.path.realpath(os.path.join(inst.run_dir, "smtpd"))
    return "/"


def _check_account(pid, comm, uid, gid, root):
    uids, gids, groups, st = _ids(pid)
    problems = []
    if uids != [uid] * 4:
        problems.append("Uid %s, want %d everywhere" % (uids, uid))
    if gids != [gid] * 4:
        problems.append("Gid %s, want %d everywhere" % (gids, gid))
    if groups not in ([], [gid]):
        problems.append("supplementary groups %s, want none" % groups)
    if int(st.get("CapEff", "0"), 16) != 0 or int(st.get("CapPrm", "0"), 16) != 0:
        problems.append("capabilities left: CapEff %s CapPrm %s" % (st.get("CapEff"), st.get("CapPrm")))
    r = _root_of(pid)
    if r != root:
        problems.append("root directory %r, want %r" % (r, root))
    if problems:
        raise AssertionError("%s[%d]: %s" % (comm, pid, "; ".join(problems)))


def test_privsep_accounts_and_chroot():
    if not harness.IS_ROOT:
        raise harness.Skip("needs root (the unprivileged mode is tested by test_unprivileged_mode)")
    inst = harness.shared()
    kids = inst.children()
    smtpd = [p for p, c in kids if c == "smtpd"]
    qmgr = [p for p, c in kids if c == "queue-mgr"]
    if len(smtpd) != 2:
        raise AssertionError("expected smtpd_processes (2) smtpd children, found %r" % kids)
    if len(qmgr) != 1:
        raise AssertionError("expected one queue-mgr child, found %r" % kids)
    jail = _jail(inst)
    for p in smtpd:
        _check_account(p, "smtpd", harness.ACCOUNTS["smtpd"][0], harness.ACCOUNTS["smtpd"][1], jail)
    _check_account(qmgr[0], "queue-mgr", harness.ACCOUNTS["queue"][0], harness.ACCOUNTS["queue"][1], "/")
    uids, _, _, _ = _ids(inst.pid)
    if uids[0] != 0 or uids[1] != 0:
        raise AssertionError("master runs as %s, should stay root" % uids)
    unknown = [(p, c) for p, c in kids if c not in ("smtpd", "queue-mgr", "resolver", "deliver")]
    for p, c in unknown:
        if _ids(p)[0][1] == 0:
            raise AssertionError("child %s[%d] runs as root" % (c, p))


def test_privsep_smtpd_processes_setting():
    if not harness.IS_ROOT:
        raise harness.Skip("needs root")
    with harness.Instance("three", smtpd_processes="3") as inst:
        # the first worker may answer before the last has dropped root;
        # the master says so once every process has reported ready
        inst.wait_log(r"ready: every process is up", 0, what="the master's readiness line")
        smtpd = inst.pids("smtpd")
        if len(smtpd) != 3:
            raise AssertionError("smtpd_processes = 3 but smtpd children are %r" % inst.children())
        jail = _jail(inst)
        for p in smtpd:
            _check_account(p, "smtpd", harness.ACCOUNTS["smtpd"][0], harness.ACCOUNTS["smtpd"][1], jail)


def test_privsep_directories():
    """spool_dir belongs to the queue account and is not group/world
    writable; the smtpd jail is not writable by smtpd."""
    if not harness.IS_ROOT:
        raise harness.Skip("needs root")
    inst = harness.shared()
    st = os.stat(inst.spool_dir)
    if st.st_uid != harness.ACCOUNTS["queue"][0]:
        raise AssertionError("spool_dir owned by uid %d, want the queue account %d" % (st.st_uid, harness.ACCOUNTS["queue"][0]))
    if st.st_mode & 0o022:
        raise AssertionError("spool_dir mode %o is group/world writable" % (st.st_mode & 0o777))
    jail = os.path.join(inst.run_dir, "smtpd")
    st = os.stat(jail)
    smtpd_uid = harness.ACCOUNTS["smtpd"][0]
    if st.st_uid == smtpd_uid and st.st_mode & 0o200 or st.st_mode & 0o002:
        raise AssertionError("the smtpd jail %s (uid %d, mode %o) is writable by smtpd" % (jail, st.st_uid, st.st_mode & 0o777))


def test_privsep_smtpd_cannot_see_spool_or_key():
    """From inside the smtpd chroot the spool, the config and the TLS key
    are out of reach."""
    if not harness.IS_ROOT:
        raise harness.Skip("needs root")
    if not harness.CHROOT:
        raise harness.Skip("chroot is off in sanitizer runs (SAN_CHROOT=1 turns it on)")
    inst = harness.shared()
    inst.send()
    for p in inst.pids("smtpd"):
        base = "/proc/%d/root" % p
        for path in (inst.spool_dir, inst.conf_path, inst.key, inst.mailbox_dir):
            if os.path.exists(base + path):
                raise AssertionError("smtpd[%d] can see %s from inside its jail" % (p, path))


def _unprivileged_checks(inst, uid, gid):
    kids = inst.children()
    if not any(c == "smtpd" for _, c in kids) or not any(c == "queue-mgr" for _, c in kids):
        raise AssertionError("expected smtpd and queue-mgr children, found %r" % kids)
    for p, c in [(inst.pid, "postern")] + kids:
        uids, gids, _, _ = _ids(p)
        if uids != [uid] * 4 or gids != [gid] * 4:
            raise AssertionError("%s[%d] runs as uid %s gid %s, want the invoking user %d:%d" % (c, p, uids, gids, uid, gid))
        if _root_of(p) != "/":
            raise AssertionError("%s[%d] is chrooted to %r without root" % (c, p, _root_of(p)))
    harness.wait_until(lambda: "not root" in inst.log_text(), 5, "the log to say it runs without root")
    n = sum(1 for line in inst.log_text().splitlines() if "not root" in line)
    if n != 1:
        raise AssertionError("the log should say 'not root' once, says it %d times" % n)


def test_unprivileged_mode():
    if harness.IS_ROOT:
        uid, gid = UNPRIV
        with harness.Instance("unpriv", run_as=UNPRIV) as inst:
            _unprivileged_checks(inst, uid, gid)
            qid = inst.send()
            if qid not in inst.queue_ids():
                raise AssertionError("unprivileged instance did not queue %s" % qid)
    else:
        _unprivileged_checks(harness.shared(), os.getuid(), os.getgid())
