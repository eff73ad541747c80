#!/usr/bin/python3
"""
run.py - runs the integration tests: every `def test_*` in
tests/integration/test_*.py, in file order and definition order.

    /usr/bin/python3 tests/integration/run.py [NAME-FILTER ...]

A filter keeps the tests whose full name (module.function) contains it.
Prints `PASS name`, `FAIL name: reason` (with the traceback and the new lines
of each instance log that grew during the test) or `SKIP name: reason`, and
as its very last line `N passed, N failed`. Exit status 1 if any test failed
or none ran. A test may set `fn.timeout` (seconds, default 120).

With SAN=1 a test also fails when a sanitizer report appeared in any captured
log during it, and the logs are checked once more after the shared
instances are stopped (leak reports are written at exit).
"""

import glob
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 120


class TestTimeout(BaseException):
    """Raised in the main thread when a test runs past its timeout."""


def _on_alarm(signum, frame):
    raise TestTimeout("test did not finish within its timeout")


def discover():
    tests, broken = [], []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        modname = os.path.basename(path)[:-3]
        try:
            mod = importlib.import_module(modname)
        except Exception:  # noqa: BLE001
            broken.append((modname + ".<import>", traceback.format_exc()))
            continue
        for name, obj in list(vars(mod).items()):
            if name.startswith("test_") and callable(obj) and getattr(obj, "__module__", None) == modname:
                tests.append(("%s.%s" % (modname, name), obj))
    return tests, broken


def indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


def log_report(before):
    """New lines of every instance log that grew since `before`."""
    out = []
    for inst in harness.all_instances():
        start = before.get(inst.log_path, 0)
        new = inst.log_since(start)
        if not new.strip():
            continue
        lines = new.splitlines()
        more = " (last 40 of %d)" % len(lines) if len(lines) > 40 else ""
        out.append("    --- log of instance %s, %s%s:" % (inst.name, inst.log_path, more))
        out.append(indent("\n".join(lines[-40:]), "    | "))
    return "\n".join(out)


def short_reason(exc):
    text = str(exc).strip() or exc.__class__.__name__
    first = text.splitlines()[0]
    if not isinstance(exc, AssertionError):
        first = "%s: %s" % (exc.__class__.__name__, first)
    return first[:400]


def main(argv):
    filters = argv[1:]
    signal.signal(signal.SIGALRM, _on_alarm)
    tests, broken = discover()
    if filters:
        tests = [(n, f) for n, f in tests if any(x in n for x in filters)]
        broken = [(n, t) for n, t in broken if any(x in n for x in filters)]
    if not harness.have_binaries():
        harness.note("binaries missing under %s (build first: make); tests that need them will fail" % harness.BIN)
    harness.note("running %d integration tests as %s, BIN=%s%s, temp dir %s"
                 % (len(tests), "root" if harness.IS_ROOT else "uid %d" % os.getuid(),
                    harness.BIN, ", SAN=1" if harness.SAN else "", harness.base_dir()))
    passed = failed = skipped = 0
    t_start = time.monotonic()

    for name, tb in broken:
        failed += 1
        print("FAIL %s: module does not import" % name)
        print(indent(tb))

    for name, fn in tests:
        logs_before = harness.log_offsets()
        t0 = time.monotonic()
        timeout = getattr(fn, "timeout", DEFAULT_TIMEOUT)
        error = None
        skip = None
        tb = ""
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fn()
        except harness.Skip as e:
            skip = str(e)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - TestTimeout too
            error = e
            tb = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if error is None and skip is None and harness.SAN:
            hits = harness.sanitizer_reports(logs_before)
            if hits:
                error = AssertionError("sanitizer report: %s" % hits[0])
                tb = "\n".join(hits[:20])
        dt = time.monotonic() - t0
        if skip is not None:
            skipped += 1
            print("SKIP %s: %s" % (name, skip), flush=True)
        elif error is None:
            passed += 1
            print("PASS %s" % name, flush=True)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, short_reason(error)))
            print(indent(tb))
            print("    (%.1fs)" % dt)
            rep = log_report(logs_before)
            if rep:
                print(rep)
            sys.stdout.flush()

    # Shared instances are stopped here; a master that does not stop cleanly
    # on SIGTERM is a failure of its own.
    logs_before = harness.log_offsets()
    errors = harness.stop_all()
    if errors:
        failed += 1
        print("FAIL run.shutdown: %s" % errors[0])
        for e in errors[1:]:
            print("    " + e)
    if harness.SAN:
        hits = harness.sanitizer_reports(logs_before)
        if hits:
            failed += 1
            print("FAIL run.sanitizer_at_shutdown: %s" % hits[0])
            print(indent("\n".join(hits[:20])))
        else:
            passed += 1
            print("PASS run.sanitizer_at_shutdown")

    keep = failed > 0 or os.environ.get("KEEP") == "1"
    d = harness.cleanup(keep=keep)
    if keep and d:
        harness.note("kept the test directory (logs, configs, spools): %s" % d)
    harness.note("integration tests took %.0fs%s" % (time.monotonic() - t_start,
                                                    ", %d skipped" % skipped if skipped else ""))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    if passed + failed == 0:
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
