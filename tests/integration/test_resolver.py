"""
The resolver against a hermetic DNS (dnsfix.py: NSD on loopback, reached
only through dns_stub_zones): look-ups of every type, the RFC 5321 next-hop
rules (preference order, equal preferences shuffled, implicit MX, null MX,
loops, CNAMEs, SERVFAIL and time-outs as temporary failures, NXDOMAIN),
the DNSSEC verdict, start-up errors, privileges, and hostile requests.
The resolver binary is started directly from a temporary config (the master
does not start it yet).
"""

import os
import signal
import socket
import struct
import subprocess
import time

import dnsfix
import harness

MAGIC = 0x4E545350
R_LOOKUP, R_ANSWER, R_NEXTHOPS, R_HOPS, R_ERROR = 80, 81, 82, 83, 84
T_CODE, T_TEXT = 2, 3
(T_DNS_NAME, T_DNS_TYPE, T_DNS_STATUS, T_DNS_SECURITY, T_DNS_RR, T_DNS_HOP, T_DNS_PREF,
 T_DNS_HOST, T_DNS_ADDR, T_DNS_DATA, T_DNS_TTL, T_DNS_CANON, T_DNS_DSN, T_DNS_IMPLICIT) = range(80, 94)
STATUS = ["ok", "nodata", "nxdomain", "tempfail", "permfail"]
SECURITY = ["insecure", "secure", "bogus"]
A, MX, TXT, AAAA, TLSA = 1, 15, 16, 28, 52

SELF = "self.t.test"
TLSA_HEX = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"

ZONE_T = """
pref        MX 20 mx-b.pref
pref        MX 10 mx-a.pref
pref        MX 30 mx-c.pref
mx-a.pref   A 127.0.0.11
mx-a.pref   AAAA 2001:db8::11
mx-b.pref   A 127.0.0.12
mx-c.pref   AAAA 2001:db8::13
equal       MX 10 e1.equal
equal       MX 10 e2.equal
equal       MX 10 e3.equal
equal       MX 10 e4.equal
equal       MX 5 first.equal
e1.equal    A 127.0.1.1
e2.equal    A 127.0.1.2
e3.equal    A 127.0.1.3
e4.equal    A 127.0.1.4
first.equal A 127.0.1.5
implicit    A 127.0.0.21
implicit    AAAA 2001:db8::21
noaddr      TXT "no address, no MX"
nullmx      MX 0 .
loop        MX 10 self.t.test.
loop2       MX 20 self.t.test.
loop2       MX 10 good.loop2
loop2       MX 30 worse.loop2
loop2       MX 20 same.loop2
good.loop2  A 127.0.0.31
worse.loop2 A 127.0.0.32
same.loop2  A 127.0.0.33
self        A 127.0.0.1
cname       CNAME cname2
cname2      CNAME real
real        MX 10 mx-a.pref
mxcname     MX 10 alias.mxcname
alias.mxcname CNAME mx-a.pref
deadmx      MX 10 nowhere.t.test.
halfdead    MX 10 nowhere.t.test.
halfdead    MX 20 mx-b.pref
brokenmx    MX 10 mx.refused.test.
slowmx      MX 10 mx.silent.test.
txt         TXT "v=spf1 " "-all"
*.wild      MX 10 mx-a.pref
_25._tcp.mx-a.pref TLSA 3 1 1 %s
""" % TLSA_HEX


# ------------------------------------------------------------ the wire format

def frame(mtype, fields, reqid=1):
    body = b"".join(struct.pack("<HI", t, len(v)) + v for t, v in fields)
    return struct.pack("<IHHII", MAGIC, mtype, 0, len(body), reqid) + body


def f_str(tag, s):
    return (tag, s.encode() if isinstance(s, str) else s)


def f_u64(tag, v):
    return (tag, struct.pack("<Q", v))


def parse_fields(body):
    out, pos = [], 0
    while pos < len(body):
        tag, ln = struct.unpack_from("<HI", body, pos)
        pos += 6
        out.append((tag, body[pos:pos + ln]))
        pos += ln
    assert pos == len(body), "field runs past the body"
    return out


def u64(v):
    return struct.unpack("<Q", v)[0]


def decode(mtype, body):
    """A reply as a dict: scalars by name, lists of records or hops."""
    d = {"type": mtype, "rr": [], "hops": []}
    for tag, v in parse_fields(body):
        if tag == T_DNS_STATUS:
            d["status"] = STATUS[u64(v)]
        elif tag == T_DNS_SECURITY:
            d["security"] = SECURITY[u64(v)]
        elif tag in (T_DNS_NAME, T_DNS_CANON, T_DNS_DSN, T_TEXT, T_CODE):
            d[{T_DNS_NAME: "name", T_DNS_CANON: "canon", T_DNS_DSN: "dsn", T_TEXT: "text",
               T_CODE: "code"}[tag]] = v.decode()
        elif tag == T_DNS_RR:
            rr = {}
            for t2, v2 in parse_fields(v):
                if t2 == T_DNS_PREF:
                    rr["pref"] = u64(v2) if len(v2) == 8 else v2
                elif t2 == T_DNS_HOST:
                    rr["host"] = v2.decode()
                elif t2 == T_DNS_ADDR:
                    rr["addr"] = v2.decode()
                elif t2 == T_DNS_DATA:
                    rr["data"] = v2
            d["rr"].append(rr)
        elif tag == T_DNS_HOP:
            hop = {"addrs": []}
            for t2, v2 in parse_fields(v):
                if t2 == T_DNS_HOST:
                    hop["host"] = v2.decode()
                elif t2 == T_DNS_PREF:
                    hop["pref"] = u64(v2)
                elif t2 == T_DNS_IMPLICIT:
                    hop["implicit"] = u64(v2)
                elif t2 == T_DNS_STATUS:
                    hop["status"] = STATUS[u64(v2)]
                elif t2 == T_DNS_SECURITY:
                    hop["security"] = SECURITY[u64(v2)]
                elif t2 == T_DNS_ADDR:
                    hop["addrs"].append(v2.decode())
            d["hops"].append(hop)
    return d


class Conn:
    def __init__(self, path, timeout=40):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv(self):
        """(type, reqid, body) of the next frame; None on EOF."""
        while True:
            if len(self.buf) >= 16:
                magic, mtype, _fl, ln, reqid = struct.unpack_from("<IHHII", self.buf)
                assert magic == MAGIC, "bad magic from the resolver"
                if len(self.buf) >= 16 + ln:
                    body = self.buf[16:16 + ln]
                    self.buf = self.buf[16 + ln:]
                    return mtype, reqid, body
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def ask(self, mtype, fields, reqid=1):
        self.send(frame(mtype, fields, reqid))
        r = self.recv()
        assert r is not None, "resolver closed the connection"
        assert r[1] == reqid, "answer for request %d, expected %d" % (r[1], reqid)
        return decode(r[0], r[2])

    def lookup(self, name, rtype, reqid=1):
        return self.ask(R_LOOKUP, [f_str(T_DNS_NAME, name), f_u64(T_DNS_TYPE, rtype)], reqid)

    def hops(self, domain, reqid=1):
        return self.ask(R_NEXTHOPS, [f_str(T_DNS_NAME, domain)], reqid)

    def close(self):
        self.s.close()


# ------------------------------------------------------------ the resolver

class Resolver:
    """The resolver binary from an Instance's config (the master is not started)."""

    def __init__(self, name="resolver", run_as=None, **conf):
        conf.setdefault("hostname", SELF)
        conf.setdefault("dnssec_trust_anchor_file", "")
        self.run_as = run_as
        self.inst = harness.Instance(name=name, tls=False, run_as=run_as, **conf)
        self.sock = os.path.join(self.inst.run_dir, "resolver", "resolver.sock")
        self.proc = None

    def start(self, wait=True):
        os.makedirs(self.inst.run_dir, exist_ok=True)
        os.chmod(self.inst.run_dir, 0o755)
        self.logf = open(self.inst.log_path, "ab")
        env = harness.daemon_env({"POSTERN_FOREGROUND": "1"})
        kw = {}
        if self.run_as:
            os.chown(self.inst.run_dir, *self.run_as)
            kw.update(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
        exe = harness.public_binary("resolver") if self.run_as else harness.binary("resolver")
        self.proc = subprocess.Popen([exe, "-c", self.inst.conf_path],
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, **kw)
        if wait:
            harness.wait_until(self._ready, 20, "the resolver to be ready")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("resolver exited with %s: %s" % (self.proc.returncode, self.log()))
        return "ready on" in self.log()

    def log(self):
        with open(self.inst.log_path, errors="replace") as f:
            return f.read()

    def conn(self):
        return Conn(self.sock)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("resolver did not stop on SIGTERM")
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        self.logf.close()
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _world():
    """NSD with the test zones, and the stub-zone setting that reaches it:
    t.test (served), refused.test (not served: NSD says REFUSED, the resolver
    sees SERVFAIL) and silent.test (a port that never answers)."""
    ns = dnsfix.Nsd({"t.test": ZONE_T})
    silent = dnsfix.Silent()
    return ns, silent


def _hops_summary(h):
    return [(p["host"], p["pref"]) for p in h["hops"]]


# ------------------------------------------------------------ tests

def test_resolver_lookups_and_next_hops():
    ns, silent = _world()
    with ns, silent:
        stubs = ns.stub_zones(extra=[("refused.test", ns.port), ("silent.test", silent.port)])
        with Resolver(dns_stub_zones=stubs) as r:
            c = r.conn()
            # --- plain look-ups
            a = c.lookup("mx-a.pref.t.test", A)
            assert a["type"] == R_ANSWER and a["status"] == "ok", a
            assert [x["addr"] for x in a["rr"]] == ["127.0.0.11"], a
            assert a["security"] == "insecure", a
            a = c.lookup("MX-A.Pref.T.Test.", AAAA)
            assert a["status"] == "ok" and [x["addr"] for x in a["rr"]] == ["2001:db8::11"], a
            a = c.lookup("pref.t.test", MX)
            assert sorted((x["pref"], x["host"]) for x in a["rr"]) == [
                (10, "mx-a.pref.t.test"), (20, "mx-b.pref.t.test"), (30, "mx-c.pref.t.test")], a
            a = c.lookup("txt.t.test", TXT)
            assert a["status"] == "ok" and a["rr"][0]["data"] == b"v=spf1 -all", a
            a = c.lookup("_25._tcp.mx-a.pref.t.test", TLSA)
            assert a["status"] == "ok", a
            assert a["rr"][0]["pref"] == b"\x03\x01\x01" and a["rr"][0]["data"].hex() == TLSA_HEX, a
            a = c.lookup("nosuch.t.test", A)
            assert a["status"] == "nxdomain", a
            a = c.lookup("noaddr.t.test", A)
            assert a["status"] == "nodata" and not a["rr"], a
            a = c.lookup("cname.t.test", MX)
            assert a["status"] == "ok" and a.get("canon") == "real.t.test", a
            a = c.lookup("x.refused.test", A)
            assert a["status"] == "tempfail", a

            # --- next hops: preference order, both families per host
            h = c.hops("pref.t.test")
            assert h["type"] == R_HOPS and h["status"] == "ok", h
            assert _hops_summary(h) == [("mx-a.pref.t.test", 10), ("mx-b.pref.t.test", 20),
                                        ("mx-c.pref.t.test", 30)], h
            assert h["hops"][0]["addrs"] == ["2001:db8::11", "127.0.0.11"], h
            assert h["hops"][1]["addrs"] == ["127.0.0.12"], h
            assert h["hops"][2]["addrs"] == ["2001:db8::13"], h
            assert all(p["status"] == "ok" and not p["implicit"] for p in h["hops"]), h

            # equal preferences: the lower one first, the four tens shuffled
            orders = set()
            for i in range(40):
                h = c.hops("equal.t.test", reqid=100 + i)
                assert h["status"] == "ok" and h["hops"][0]["host"] == "first.equal.t.test", h
                assert sorted(p["host"] for p in h["hops"][1:]) == [
                    "e%d.equal.t.test" % k for k in range(1, 5)], h
                orders.add(tuple(p["host"] for p in h["hops"][1:]))
            assert len(orders) >= 3, "equal preferences are not shuffled: %s" % orders

            # implicit MX: the domain's own addresses
            h = c.hops("implicit.t.test")
            assert h["status"] == "ok" and len(h["hops"]) == 1, h
            p = h["hops"][0]
            assert p["host"] == "implicit.t.test" and p["implicit"] == 1, h
            assert p["addrs"] == ["2001:db8::21", "127.0.0.21"], h

            # no MX and no address: permanent
            h = c.hops("noaddr.t.test")
            assert h["status"] == "permfail" and h["dsn"] == "5.4.4", h

            # null MX (RFC 7505)
            h = c.hops("nullmx.t.test")
            assert h["status"] == "permfail" and h["dsn"] == "5.1.10" and not h["hops"], h

            # NXDOMAIN
            h = c.hops("nosuch.t.test")
            assert h["status"] == "permfail" and h["dsn"] == "5.1.2", h

            # an MX naming this host, alone: a loop
            h = c.hops("loop.t.test")
            assert h["status"] == "permfail" and h["dsn"] == "5.4.6", h
            # ... beside others: only the better ones stay
            h = c.hops("loop2.t.test")
            assert h["status"] == "ok" and _hops_summary(h) == [("good.loop2.t.test", 10)], h

            # CNAMEs: for the domain and for the MX host
            h = c.hops("cname.t.test")
            assert h["status"] == "ok" and h["hops"][0]["host"] == "mx-a.pref.t.test", h
            assert h["hops"][0]["addrs"] == ["2001:db8::11", "127.0.0.11"], h
            h = c.hops("mxcname.t.test")
            assert h["status"] == "ok" and h["hops"][0]["addrs"] == ["2001:db8::11", "127.0.0.11"], h

            # MX hosts without addresses
            h = c.hops("deadmx.t.test")
            assert h["status"] == "permfail" and h["dsn"] == "5.4.4", h
            h = c.hops("halfdead.t.test")
            assert h["status"] == "ok" and h["hops"][0]["status"] == "nxdomain", h
            assert h["hops"][1]["addrs"] == ["127.0.0.12"], h

            # SERVFAIL (REFUSED upstream) defers, for the domain or its MX host
            h = c.hops("x.refused.test")
            assert h["status"] == "tempfail" and h["dsn"].startswith("4."), h
            h = c.hops("brokenmx.t.test")
            assert h["status"] == "tempfail" and h["dsn"].startswith("4."), h
            c.close()
            assert r.proc.poll() is None, "resolver died"


test_resolver_lookups_and_next_hops.timeout = 180


def test_resolver_timeout_defers_and_reload_drains():
    """A name server that never answers: the look-up ends as a temporary
    failure within the resolver's deadline, never a bounce, and other
    look-ups are answered meanwhile. SIGHUP while it waits: the listener
    closes, the look-ups in flight are still answered, then the process
    exits 0 (the master has started a new one)."""
    ns, silent = _world()
    with ns, silent:
        stubs = ns.stub_zones(extra=[("silent.test", silent.port)])
        r = Resolver(dns_stub_zones=stubs)
        r.start()
        c = r.conn()
        t0 = time.monotonic()
        c.send(frame(R_NEXTHOPS, [f_str(T_DNS_NAME, "x.silent.test")], 7))
        c.send(frame(R_NEXTHOPS, [f_str(T_DNS_NAME, "slowmx.t.test")], 8))
        a = c.lookup("mx-a.pref.t.test", A, reqid=9)   # not held up by the others
        assert a["status"] == "ok", a
        assert time.monotonic() - t0 < 5, "a look-up waited for a stalled one"
        harness.wait_until(lambda: silent.queries > 0, 10, "the stalled queries to go out")
        r.proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: "draining: 2 look-up(s) in flight" in r.log(), 10, "draining")
        harness.wait_until(lambda: not os.path.exists(r.sock) or _refused(r.sock), 10,
                           "the listener to close")
        assert r.proc.poll() is None, "exited with look-ups in flight"
        got = {}
        for _ in range(2):
            mtype, reqid, body = c.recv()
            got[reqid] = decode(mtype, body)
        assert time.monotonic() - t0 < 40
        for reqid in (7, 8):
            h = got[reqid]
            assert h["status"] == "tempfail" and h["dsn"].startswith("4."), h
        assert r.proc.wait(10) == 0
        c.close()
        r.logf.close()


test_resolver_timeout_defers_and_reload_drains.timeout = 90


def _refused(path):
    try:
        Conn(path, timeout=2).close()
    except OSError:
        return True
    return False


def test_resolver_bad_requests():
    """Garbage, oversize names, wrong types: an error or a closed connection,
    never a crash; the resolver still answers afterwards."""
    with dnsfix.Nsd({"t.test": ZONE_T}) as ns:
        with Resolver(dns_stub_zones=ns.stub_zones()) as r:
            c = r.conn()
            bad = [
                [f_str(T_DNS_NAME, "a" * 300 + ".t.test"), f_u64(T_DNS_TYPE, A)],   # too long
                [f_str(T_DNS_NAME, ("a" * 64) + ".t.test"), f_u64(T_DNS_TYPE, A)],  # label > 63
                [f_str(T_DNS_NAME, "a..t.test"), f_u64(T_DNS_TYPE, A)],
                [f_str(T_DNS_NAME, "a b.t.test"), f_u64(T_DNS_TYPE, A)],
                [f_str(T_DNS_NAME, "a\x00b.t.test"), f_u64(T_DNS_TYPE, A)],
                [f_str(T_DNS_NAME, ""), f_u64(T_DNS_TYPE, A)],
                [f_str(T_DNS_NAME, "x.t.test"), f_u64(T_DNS_TYPE, 255)],             # ANY
                [f_str(T_DNS_NAME, "x.t.test"), (T_DNS_TYPE, b"\x01")],              # bad u64
                [f_str(T_DNS_NAME, "x.t.test")],                                     # no type
                [f_u64(T_DNS_TYPE, A)],                                              # no name
                [f_str(T_DNS_NAME, "x.t.test"), f_str(T_DNS_NAME, "y.t.test"), f_u64(T_DNS_TYPE, A)],
            ]
            for i, fields in enumerate(bad):
                a = c.ask(R_LOOKUP, fields, reqid=500 + i)
                assert a["type"] == R_ERROR and a["code"].startswith("501"), (i, a)
            a = c.ask(R_NEXTHOPS, [f_str(T_DNS_NAME, "-" * 254)], reqid=600)
            assert a["type"] == R_ERROR, a
            a = c.ask(1, [], reqid=601)             # a queue-mgr message type
            assert a["type"] == R_ERROR, a
            # a field running past the body, inside a valid header
            body = struct.pack("<HI", T_DNS_NAME, 1000) + b"abc"
            c.send(struct.pack("<IHHII", MAGIC, R_LOOKUP, 0, len(body), 602) + body)
            a = c.recv()
            assert a is not None and a[0] == R_ERROR, a
            a = c.lookup("mx-a.pref.t.test", A, reqid=603)
            assert a["status"] == "ok", a
            c.close()

            # framing errors: the connection is cut, the resolver lives on
            for junk in (b"GET / HTTP/1.0\r\n\r\n" + b"x" * 100,
                         struct.pack("<IHHII", MAGIC, R_LOOKUP, 0, 1 << 20, 1),   # over the limit
                         struct.pack("<IHHII", MAGIC, 999, 0, 0, 1)):              # unknown type
                c = r.conn()
                c.send(junk)
                assert c.recv() is None, "connection kept after a framing error"
                c.close()
            # a client that vanishes with look-ups in flight
            c = r.conn()
            for i in range(50):
                c.send(frame(R_NEXTHOPS, [f_str(T_DNS_NAME, "pref.t.test")], 700 + i))
            c.close()
            c = r.conn()
            a = c.lookup("mx-b.pref.t.test", A)
            assert a["status"] == "ok" and a["rr"][0]["addr"] == "127.0.0.12", a
            c.close()
            assert r.proc.poll() is None, "resolver died"
            assert "bad request" in r.log()


def _burst(c, domains, first_id):
    """Writes a next-hop request for each domain at once; returns
    ({reqid: answer}, seconds until the last answer)."""
    t0 = time.monotonic()
    c.send(b"".join(frame(R_NEXTHOPS, [f_str(T_DNS_NAME, d)], first_id + i)
                    for i, d in enumerate(domains)))
    seen = {}
    while len(seen) < len(domains):
        mtype, reqid, body = c.recv()
        seen[reqid] = decode(mtype, body)
    return seen, time.monotonic() - t0


def test_resolver_many_in_flight():
    """Thousands of requests written at once, answered out of order by
    request id, all of them right; the cache serves the repeats."""
    with dnsfix.Nsd({"t.test": ZONE_T}) as ns:
        with Resolver(dns_stub_zones=ns.stub_zones()) as r:
            c = r.conn()
            names = ["pref.t.test", "implicit.t.test", "nullmx.t.test", "cname.t.test"]
            want = ["ok", "ok", "permfail", "ok"]
            n = 600
            seen, dt = _burst(c, [names[i % 4] for i in range(n)], 1000)
            for i in range(n):
                assert seen[1000 + i]["status"] == want[i % 4], (names[i % 4], seen[1000 + i])
            harness.note("resolver: %d next-hop requests answered in %.2fs" % (n, dt))

            # distinct names: each one a query to NSD, all in flight together
            n = 2000
            seen, dt = _burst(c, ["d%d.wild.t.test" % i for i in range(n)], 5000)
            bad = [h for h in seen.values() if h["status"] != "ok" or
                   h["hops"][0]["addrs"] != ["2001:db8::11", "127.0.0.11"]]
            assert not bad, "%d of %d wrong, e.g. %s" % (len(bad), n, bad[0])
            harness.note("resolver: %d distinct domains (an MX query each) answered in %.2fs" % (n, dt))
            c.close()


def test_resolver_startup_errors():
    """An unreadable trust anchor is a clear start-up error; so is one that
    is not a zone file; without the key, Debian's root key is used."""
    d = harness.base_dir()
    bad = os.path.join(d, "anchor-unreadable.key")
    with open(bad, "w") as f:
        f.write(". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
    os.chmod(bad, 0)
    # root reads any file: then the resolver runs as an unprivileged user
    r = Resolver(name="anchor-bad", run_as=(64010, 64010) if harness.IS_ROOT else None,
                 dnssec_trust_anchor_file=bad)
    r.start(wait=False)
    rc = r.proc.wait(20)
    assert rc != 0, "resolver started with an unreadable trust anchor"
    assert "dnssec_trust_anchor_file %s: cannot read: Permission denied" % bad in r.log(), r.log()
    r.logf.close()

    garbage = os.path.join(d, "anchor-garbage.key")
    with open(garbage, "w") as f:
        f.write("this is not a zone file\n")
    os.chmod(garbage, 0o644)
    r = Resolver(name="anchor-garbage", dnssec_trust_anchor_file=garbage)
    r.start(wait=False)
    rc = r.proc.wait(20)
    assert rc != 0, "resolver started with a garbage trust anchor"
    assert "fatal: libunbound set-up failed" in r.log() and garbage in r.log(), r.log()
    r.logf.close()

    # the key not set: Debian's root key (no network needed to start)
    r = Resolver(name="anchor-default", dnssec_trust_anchor_file=None)
    with r:
        if os.path.exists("/usr/share/dns/root.key"):
            assert "DNSSEC trust anchor /usr/share/dns/root.key" in r.log(), r.log()
        else:
            assert "no DNSSEC trust anchor" in r.log(), r.log()


ZONE_SEC = """
@           MX 10 mx
mx          A 127.0.0.41
mx          AAAA 2001:db8::41
_25._tcp.mx TLSA 3 1 1 %s
""" % TLSA_HEX

ZONE_BOGUS = """
@           MX 10 mx
mx          A 127.0.0.51
"""


def test_resolver_dnssec():
    """Answers say whether they were validated: a signed zone under a trust
    anchor is secure, an unsigned one insecure, one with expired signatures
    bogus, and a bogus MX answer defers instead of being used."""
    zones = {"t.test": ZONE_T, "sec.test": ZONE_SEC, "bogus.test": ZONE_BOGUS}
    with dnsfix.Nsd(zones, signed={"sec.test": "good", "bogus.test": "expired"}) as ns:
        with Resolver(dns_stub_zones=ns.stub_zones(), dnssec_trust_anchor_file=ns.anchor_file()) as r:
            c = r.conn()
            a = c.lookup("mx.sec.test", A)
            assert a["status"] == "ok" and a["security"] == "secure", a
            a = c.lookup("_25._tcp.mx.sec.test", TLSA)
            assert a["status"] == "ok" and a["security"] == "secure", a
            h = c.hops("sec.test")
            assert h["status"] == "ok" and h["security"] == "secure", h
            assert h["hops"][0]["security"] == "secure", h
            assert h["hops"][0]["addrs"] == ["2001:db8::41", "127.0.0.41"], h
            a = c.lookup("mx-a.pref.t.test", A)
            assert a["status"] == "ok" and a["security"] == "insecure", a
            a = c.lookup("mx.bogus.test", A)
            assert a["status"] == "tempfail" and a["security"] == "bogus", a
            assert "DNSSEC" in a.get("text", ""), a
            h = c.hops("bogus.test")
            assert h["status"] == "tempfail" and h["security"] == "bogus" and h["dsn"].startswith("4."), h
            c.close()


test_resolver_dnssec.timeout = 120


def _connect_as(path, uid):
    """Connects from a child running as uid; returns what it read: b"" when
    the resolver closed the connection at once, else the first bytes."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            c = Conn(path, timeout=10)
            c.send(frame(R_LOOKUP, [f_str(T_DNS_NAME, "mx-a.pref.t.test"), f_u64(T_DNS_TYPE, A)], 5))
            got = c.recv()
            os.write(wfd, b"answer" if got else b"closed")
        except (ConnectionResetError, BrokenPipeError):
            os.write(wfd, b"closed")
        except Exception as e:  # noqa: BLE001
            os.write(wfd, ("error %r" % e).encode())
        os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        chunk = os.read(rfd, 1000)
        if not chunk:
            break
        out += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return out.decode()


def test_resolver_privileges_and_peers():
    """As root: runs as user_resolver, chrooted into RUN/resolver (when the
    tests use chroot), no capabilities; serves deliver's account, refuses
    others."""
    if not harness.IS_ROOT:
        raise harness.Skip("needs root")
    with dnsfix.Nsd({"t.test": ZONE_T}) as ns:
        with Resolver(dns_stub_zones=ns.stub_zones(), chroot="yes" if harness.CHROOT else "no") as r:
            st = harness.proc_status(r.proc.pid)
            uid, gid = harness.ACCOUNTS["resolver"]
            assert [int(x) for x in st["Uid"].split()] == [uid] * 4, st["Uid"]
            assert [int(x) for x in st["Gid"].split()] == [gid] * 4, st["Gid"]
            assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
            root = os.readlink("/proc/%d/root" % r.proc.pid)
            want = os.path.realpath(os.path.join(r.inst.run_dir, "resolver")) if harness.CHROOT else "/"
            assert root == want, (root, want)
            jail = os.stat(os.path.join(r.inst.run_dir, "resolver"))
            assert jail.st_uid == 0 and not jail.st_mode & 0o022, oct(jail.st_mode)
            # the answers still come, from the jail
            c = r.conn()
            a = c.lookup("mx-a.pref.t.test", A)
            assert a["status"] == "ok", a
            c.close()
            assert _connect_as(r.sock, harness.ACCOUNTS["deliver"][0]) == "answer"
            assert _connect_as(r.sock, 64010) == "closed"
            assert "refused connection from uid 64010" in r.log()


def test_resolver_forwarders():
    """dns_forwarders: every question goes to the forwarder (here NSD, which
    answers its own zone and refuses the rest); nothing else is asked."""
    zone = """
@     MX 10 mx
mx    A 127.0.0.61
"""
    with dnsfix.Nsd({"fwd.example": zone}) as ns:
        with Resolver(dns_forwarders="%s@%d" % (harness.LOCALHOST, ns.port)) as r:
            assert "DNS: forwarding to 127.0.0.1@%d" % ns.port in r.log(), r.log()
            c = r.conn()
            h = c.hops("fwd.example")
            assert h["status"] == "ok" and h["hops"][0]["host"] == "mx.fwd.example", h
            assert h["hops"][0]["addrs"] == ["127.0.0.61"], h
            a = c.lookup("elsewhere.example", A)
            assert a["status"] == "tempfail", a     # REFUSED by the forwarder
            c.close()


def test_resolver_cache_kept():
    """Answers are cached across requests and clients: with NSD gone, what
    was asked before is still answered; what was not defers."""
    with dnsfix.Nsd({"t.test": ZONE_T}) as ns:
        with Resolver(dns_stub_zones=ns.stub_zones()) as r:
            c = r.conn()
            first = c.hops("pref.t.test")
            assert first["status"] == "ok", first
            c.close()
            ns.stop()
            c = r.conn()
            again = c.hops("pref.t.test", reqid=2)
            assert again["status"] == "ok" and again["hops"] == first["hops"], again
            a = c.lookup("implicit.t.test", A, reqid=3)
            assert a["status"] == "tempfail", a
            c.close()


test_resolver_cache_kept.timeout = 90


def test_resolver_client_limit():
    """One client with thousands of stalled look-ups hits its own limit
    (451 R_ERROR for the excess) and does not starve another client."""
    ns, silent = _world()
    with ns, silent:
        stubs = ns.stub_zones(extra=[("silent.test", silent.port)])
        with Resolver(dns_stub_zones=stubs) as r:
            greedy = r.conn()
            n = 2200
            greedy.send(b"".join(frame(R_LOOKUP, [f_str(T_DNS_NAME, "q%d.silent.test" % i),
                                                  f_u64(T_DNS_TYPE, A)], 10000 + i)
                                 for i in range(n)))
            # the excess is refused at once; a stalled look-up that libunbound
            # gives up early frees a slot, so count those answers too
            errors = answered = 0
            while errors + answered < n - 2048:
                mtype, reqid, body = greedy.recv()
                d = decode(mtype, body)
                if mtype == R_ANSWER:
                    assert d["status"] == "tempfail", d
                    answered += 1
                else:
                    assert mtype == R_ERROR and d["code"].startswith("451"), d
                    errors += 1
            assert errors > 0
            other = r.conn()
            t0 = time.monotonic()
            a = other.lookup("mx-a.pref.t.test", A)
            assert a["status"] == "ok", a
            assert time.monotonic() - t0 < 5, "another client waited behind the greedy one"
            other.close()
            greedy.close()
            assert r.proc.poll() is None
