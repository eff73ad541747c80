"""
dnsfix.py - a hermetic DNS for the integration tests: NSD (Debian's
package) on a free loopback port serving zones the test writes, plus a
"silent" UDP/TCP port that reads queries and never answers (a time-out).

    with dnsfix.Nsd({"t.test": ZONE_TEXT}) as ns:
        conf["dns_stub_zones"] = ns.stub_zones()   # "t.test=127.0.0.1@PORT"

Zone text is an ordinary zone file body; the fixture adds $ORIGIN, $TTL
and a SOA/NS pair when the text has no SOA. Zones named in `signed` are
signed with ldns-signzone (ldnsutils): "good" gives valid signatures,
"expired" signatures that expired long ago (a bogus zone); anchor_file()
writes their DS records, for dnssec_trust_anchor_file. NSD runs in the foreground
with its own config, pid file, zone list and state files in a temporary
directory, without chroot, privilege drop or remote control: it never
touches /etc/nsd, /var/lib/nsd or a system NSD.
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

import harness

NSD = "/usr/sbin/nsd"


def available():
    return os.access(NSD, os.X_OK)


def free_udp_tcp_port():
    """A loopback port free for both UDP and TCP right now."""
    for _ in range(100):
        port = harness.free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((harness.LOCALHOST, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free UDP+TCP loopback port")


def dns_query(name, qtype, port, addr=harness.LOCALHOST, timeout=1.0):
    """One UDP query; returns (rcode, answer count, flags) or raises."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, (addr, port))
        data, _ = s.recvfrom(65535)
    finally:
        s.close()
    rid, flags, _qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        raise RuntimeError("reply id mismatch")
    return flags & 0xF, an, flags


def _zone_text(zone, body):
    head = "$ORIGIN %s.\n$TTL 300\n" % zone
    if " SOA " not in body:
        head += ("@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60\n"
                 "@ IN NS ns.%s.\n" % (zone, zone, zone))
        if "\nns " not in "\n" + body:
            head += "ns IN A 127.0.0.1\n"
    return head + body + "\n"


class Nsd:
    """NSD serving `zones` ({name: zone file body}) on 127.0.0.1:port."""

    def __init__(self, zones, name="nsd", signed=None):
        self.zones = dict(zones)
        self.signed = dict(signed or {})
        self.ds = []
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=harness.base_dir())
        os.chmod(self.dir, 0o755)
        self.port = free_udp_tcp_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "nsd.log")
        self.conf_path = os.path.join(self.dir, "nsd.conf")
        harness.register_log(self.log_path)

    def _write(self):
        conf = [
            "server:",
            "    ip-address: %s@%d" % (harness.LOCALHOST, self.port),
            "    do-ip6: no",
            "    server-count: 1",
            "    reuseport: no",
            "    rrl-ratelimit: 0",     # no response rate limiting: the tests burst
            "    username: \"\"",
            "    chroot: \"\"",
            "    zonesdir: \"%s\"" % self.dir,
            "    database: \"\"",
            "    zonelistfile: \"%s/zone.list\"" % self.dir,
            "    xfrdfile: \"%s/xfrd.state\"" % self.dir,
            "    xfrdir: \"%s\"" % self.dir,
            "    pidfile: \"%s/nsd.pid\"" % self.dir,
            "    logfile: \"%s\"" % self.log_path,
            "    verbosity: 1",
            "    hide-version: yes",
            "remote-control:",
            "    control-enable: no",
        ]
        for zone, body in self.zones.items():
            fn = os.path.join(self.dir, zone + ".zone")
            with open(fn, "w") as f:
                f.write(_zone_text(zone, body))
            if zone in self.signed:
                fn = self._sign(zone, fn, self.signed[zone])
            conf += ["zone:", "    name: \"%s\"" % zone, "    zonefile: \"%s\"" % fn]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        r = subprocess.run(["nsd-checkconf", self.conf_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise AssertionError("nsd-checkconf: " + r.stdout.decode(errors="replace"))

    def _run(self, argv):
        r = subprocess.run(argv, cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace")))
        return r.stdout.decode().strip()

    def _sign(self, zone, fn, how):
        if not os.access("/usr/bin/ldns-signzone", os.X_OK):
            raise harness.Skip("ldnsutils is not installed (scripts/deps installs it)")
        key = self._run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone])
        argv = ["ldns-signzone"]
        if how == "expired":
            argv += ["-i", "20200101000000", "-e", "20200201000000"]
        self._run(argv + ["-f", fn + ".signed", fn, key])
        with open(os.path.join(self.dir, key + ".ds")) as f:
            self.ds.append(f.read().strip())
        return fn + ".signed"

    def anchor_file(self):
        """A trust anchor file with the DS records of the signed zones."""
        path = os.path.join(self.dir, "anchors.ds")
        with open(path, "w") as f:
            f.write("\n".join(self.ds) + "\n")
        os.chmod(path, 0o644)
        return path

    def start(self):
        if not available():
            raise harness.Skip("nsd is not installed (scripts/deps installs it)")
        self._write()
        self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf_path],
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        zone = next(iter(self.zones))

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("nsd exited with %s: %s" % (self.proc.returncode, self.log_tail()))
            rcode, an, _ = dns_query(zone, 6, self.port, timeout=0.3)
            return rcode == 0 and an == 1
        harness.wait_until(ready, 20, "nsd to serve %s on port %d" % (zone, self.port))
        return self

    def stub_zones(self, extra=()):
        """dns_stub_zones value: every zone here, plus (zone, port) extras."""
        items = ["%s=%s@%d" % (z, harness.LOCALHOST, self.port) for z in self.zones]
        items += ["%s=%s@%d" % (z, harness.LOCALHOST, p) for z, p in extra]
        return ", ".join(items)

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Silent:
    """A loopback port that takes DNS queries over UDP and TCP and never
    answers: what a dead or filtered name server looks like."""

    def __init__(self):
        self.port = free_udp_tcp_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((harness.LOCALHOST, self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((harness.LOCALHOST, self.port))
        self.tcp.listen(64)
        self.queries = 0
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.0)
        while not self.stopping:
            try:
                self.udp.recvfrom(65535)
                self.queries += 1
            except (socket.timeout, OSError):
                pass
            try:
                c, _ = self.tcp.accept()
                self.conns.append(c)    # held open, never answered
            except (BlockingIOError, OSError):
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        for s in [self.udp, self.tcp] + self.conns:
            s.close()

