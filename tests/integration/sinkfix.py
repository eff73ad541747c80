"""
sinkfix.py - receiving SMTP servers for delivery tests, on loopback only.

    Sink(host="127.0.0.2", ...)   a well-behaved server (aiosmtpd) that can be
                                  told, per recipient, to answer 250, 4xx or
                                  5xx; to leave out EHLO keywords (8BITMIME,
                                  SMTPUTF8, PIPELINING, DSN, SIZE, STARTTLS);
                                  to greet with 421; to offer STARTTLS; and
                                  that records every transaction it accepts
                                  (envelope, parameters, data, TLS or not).
    BadServer(mode, host=...)     a misbehaving server, one behaviour per mode
                                  (see BadServer.MODES), for the "broken or
                                  malicious remote server" cases.

Both run in a thread of the test process, listen on a free port of the given
127.0.0.x address and stop with stop() (or as context managers). Nothing here
ever connects anywhere: they only accept.

Waiting is always for a condition with a deadline (wait_messages,
wait_connections), never a sleep.
"""

import asyncio
import os
import socket
import ssl
import threading
import time

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
    HAVE_AIOSMTPD = True
except ImportError:  # scripts/deps installs python3-aiosmtpd
    HAVE_AIOSMTPD = False


def free_port(host):
    """A TCP port on host that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


class Received:
    """One transaction a Sink accepted."""

    def __init__(self, session, envelope, dsn_mail, dsn_rcpt):
        self.peer = session.peer
        self.helo = session.host_name
        self.tls = session.ssl is not None
        self.mail_from = envelope.mail_from
        self.mail_options = list(envelope.mail_options)
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.rcpt_options = list(envelope.rcpt_options)
        self.dsn_mail = dict(dsn_mail)          # RET=, ENVID= as sent
        self.dsn_rcpt = dict(dsn_rcpt)          # rcpt -> {"NOTIFY": .., "ORCPT": ..}
        self.data = envelope.original_content or b""
        self.session_id = id(session)
        self.session_started = getattr(session, "started", None)   # time.monotonic()
        self.at = time.monotonic()

    def __repr__(self):
        return "<Received from=%s to=%s %d bytes%s>" % (
            self.mail_from, self.rcpt_tos, len(self.data), " TLS" if self.tls else "")


if HAVE_AIOSMTPD:
    class _SinkSMTP(SMTP):
        """aiosmtpd's server plus the DSN parameters (RFC 3461), which it
        does not know: they are taken off the command, remembered, and the
        rest goes to aiosmtpd as usual."""

        def __init__(self, handler, sink, **kw):
            super().__init__(handler, **kw)
            self._sink = sink

        def connection_made(self, transport):
            super().connection_made(transport)
            self.session.started = time.monotonic()

        @staticmethod
        def _strip(arg, keys):
            kept, taken = [], {}
            for tok in arg.split(" "):
                k, _, v = tok.partition("=")
                if k.upper() in keys and _:
                    taken[k.upper()] = v
                else:
                    kept.append(tok)
            return " ".join(kept), taken

        async def smtp_MAIL(self, arg):
            self._dsn_mail = {}
            self._dsn_rcpt = {}
            if arg and self._sink.dsn:
                arg, self._dsn_mail = self._strip(arg, ("RET", "ENVID"))
            return await super().smtp_MAIL(arg)

        async def smtp_RCPT(self, arg):
            taken = {}
            if arg and self._sink.dsn:
                arg, taken = self._strip(arg, ("NOTIFY", "ORCPT"))
            self._pending_dsn = taken
            return await super().smtp_RCPT(arg)

    class _Handler:
        def __init__(self, sink):
            self.sink = sink

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            out = []
            for line in responses:
                kw = line[4:].split(" ")[0].upper()
                if kw in self.sink.hide:
                    continue
                out.append(line)
            # aiosmtpd takes pipelined commands but does not say so
            if "PIPELINING" not in self.sink.hide:
                out.insert(len(out) - 1, "250-PIPELINING")
            if self.sink.dsn:
                out.insert(len(out) - 1, "250-DSN")
            # the last line must be "250 " and the others "250-"
            out = ["250-" + l[4:] for l in out]
            out[-1] = "250 " + out[-1][4:]
            return out

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            reply = self.sink.mail_reply(address)
            if reply.startswith("250"):
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
            return reply

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            reply = self.sink.rcpt_reply(address)
            if reply == "DROP":
                server.transport.close()
                return "421 4.4.2 closing"
            if reply == "STALL":
                await asyncio.sleep(3600)
            if reply.startswith("250"):
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(rcpt_options)
                dsn = getattr(server, "_pending_dsn", {})
                if dsn:
                    server._dsn_rcpt[address] = dsn
            return reply

        async def handle_DATA(self, server, session, envelope):
            if self.sink.data_reply == "DROP":
                server.transport.close()
                return "421 4.4.2 closing"
            if self.sink.data_reply == "STALL":
                await asyncio.sleep(3600)
            if self.sink.data_reply.startswith("250"):
                rec = Received(session, envelope, getattr(server, "_dsn_mail", {}),
                               getattr(server, "_dsn_rcpt", {}))
                with self.sink.lock:
                    self.sink.messages.append(rec)
            return self.sink.data_reply

    class _Controller(Controller):
        def __init__(self, sink, **kw):
            self._sinkref = sink
            super().__init__(_Handler(sink), **kw)

        def factory(self):
            s = self._sinkref
            kw = dict(hostname=s.hostname, enable_SMTPUTF8="SMTPUTF8" not in s.hide,
                      data_size_limit=s.size_limit, decode_data=False,
                      require_starttls=s.require_tls)
            if s.tls_context is not None and "STARTTLS" not in s.hide:
                kw["tls_context"] = s.tls_context
            return _SinkSMTP(self.handler, s, **kw)

        def _trigger_server(self):
            # the base class connects to itself to check it is up; over TLS
            # or with a 421 greeting that check would fail, so it is plain
            with socket.create_connection((self.hostname, self.port), timeout=5) as c:
                c.recv(1024)


class Sink:
    """A scriptable receiving SMTP server (see the module docstring).

    rcpt:     dict address -> reply ("550 5.1.1 no such user", "451 4.3.0 later",
              "DROP" to close the connection, "STALL" to never answer); others 250.
    hide:     EHLO keywords not to offer: "8BITMIME", "SMTPUTF8", "PIPELINING",
              "SIZE", "STARTTLS".
    dsn:      offer DSN and record NOTIFY/ORCPT/RET/ENVID per transaction.
    tls:      (certfile, keyfile) to offer STARTTLS.
    greeting: e.g. "421 4.3.2 busy" to refuse every session at once.
    """

    def __init__(self, host="127.0.0.1", port=None, rcpt=None, mail=None, data_reply="250 2.0.0 Ok",
                 hide=(), dsn=False, tls=None, require_tls=False, greeting=None,
                 hostname="sink.test", size_limit=33554432):
        if not HAVE_AIOSMTPD:
            raise RuntimeError("python3-aiosmtpd is not installed (scripts/deps installs it)")
        self.host = host
        self.port = port or free_port(host)
        self.rcpt = dict(rcpt or {})
        self.mail = dict(mail or {})
        self.data_reply = data_reply
        self.hide = {h.upper() for h in hide}
        self.dsn = dsn
        self.require_tls = require_tls
        self.greeting = greeting
        self.hostname = hostname
        self.size_limit = size_limit
        self.tls_context = None
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            self.tls_context = ctx
        self.lock = threading.Lock()
        self.messages = []
        self._ctl = None
        self._greeter = None

    # replies, changeable while running (e.g. 4xx first, then 250)
    def rcpt_reply(self, addr):
        with self.lock:
            return self.rcpt.get(addr, "250 2.1.5 Ok")

    def mail_reply(self, addr):
        with self.lock:
            return self.mail.get(addr, "250 2.1.0 Ok")

    def set_rcpt(self, addr, reply):
        with self.lock:
            if reply is None:
                self.rcpt.pop(addr, None)
            else:
                self.rcpt[addr] = reply

    def start(self):
        if self.greeting:
            self._greeter = BadServer("greeting", host=self.host, port=self.port, text=self.greeting)
            self._greeter.start()
            return self
        self._ctl = _Controller(self, hostname=self.host, port=self.port)
        self._ctl.start()
        return self

    def stop(self):
        if self._ctl:
            self._ctl.stop()
            self._ctl = None
        if self._greeter:
            self._greeter.stop()
            self._greeter = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def received(self):
        with self.lock:
            return list(self.messages)

    def wait_messages(self, n, timeout=30):
        _wait(lambda: len(self.received()) >= n, timeout,
              "%d message(s) at the sink %s:%d (have %d)" % (n, self.host, self.port, len(self.received())))
        return self.received()

    def rcpts(self):
        """Every recipient accepted so far, in arrival order (repeats kept)."""
        return [r for m in self.received() for r in m.rcpt_tos]


class BadServer:
    """A server that misbehaves in one way per connection (mode):

    greeting       sends `text` (default "421 4.3.2 go away") and closes
    silent         accepts and never says anything
    endless        a multi-line greeting that never ends ("220-..." forever)
    nocrlf         the greeting and replies end in bare LF
    huge           a 10 MB single reply line instead of a greeting
    badcode        a greeting whose code is not three digits ("22 hello")
    stall_data     a normal server until DATA's final dot, then silence
    tls_garbage    offers STARTTLS, answers 220 to it, then sends garbage
    drop_data      closes the connection right after the end of DATA

    connections counts the sessions accepted.
    """

    MODES = ("greeting", "silent", "endless", "nocrlf", "huge", "badcode",
             "stall_data", "tls_garbage", "drop_data")

    def __init__(self, mode, host="127.0.0.1", port=None, text="421 4.3.2 go away"):
        if mode not in self.MODES:
            raise ValueError("unknown BadServer mode %r" % mode)
        self.mode = mode
        self.host = host
        self.port = port or free_port(host)
        self.text = text
        self.connections = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = None
        self._thread = None
        self._conns = []

    def start(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
        if self._sock:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_connections(self, n, timeout=30):
        _wait(lambda: self.connections >= n, timeout, "%d connection(s) to %s" % (n, self.mode))

    def _serve(self):
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            self._conns.append(c)
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _send(self, c, data):
        try:
            c.sendall(data)
            return True
        except OSError:
            return False

    def _lines(self, c):
        buf = b""
        c.settimeout(0.5)
        while not self._stop.is_set():
            try:
                d = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not d:
                return
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.rstrip(b"\r")

    def _session(self, c):
        m = self.mode
        if m == "greeting":
            self._send(c, self.text.encode() + b"\r\n")
            c.close()
            return
        if m == "silent":
            self._stop.wait()
            return
        if m == "endless":
            while not self._stop.is_set() and self._send(c, b"220-still going\r\n" * 64):
                pass
            return
        if m == "huge":
            self._send(c, b"220 " + b"x" * (10 << 20) + b"\r\n")
            self._stop.wait()
            return
        if m == "badcode":
            self._send(c, b"22 hello\r\n")
            for _ in self._lines(c):
                self._send(c, b"2x0 what\r\n")
            return
        eol = b"\n" if m == "nocrlf" else b"\r\n"
        self._send(c, b"220 bad.test ESMTP" + eol)
        in_data = False
        for line in self._lines(c):
            if in_data:
                if line == b".":
                    in_data = False
                    if m == "stall_data":
                        self._stop.wait()
                        return
                    if m == "drop_data":
                        c.close()
                        return
                    self._send(c, b"250 2.0.0 Ok" + eol)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                caps = b"250-bad.test" + eol + b"250-PIPELINING" + eol
                if m == "tls_garbage":
                    caps += b"250-STARTTLS" + eol
                self._send(c, caps + b"250 8BITMIME" + eol)
            elif verb == b"STAR" and m == "tls_garbage":
                self._send(c, b"220 2.0.0 go ahead" + eol)
                self._send(c, os.urandom(4096))
                c.close()
                return
            elif verb == b"DATA":
                in_data = True
                self._send(c, b"354 go on" + eol)
            elif verb == b"QUIT":
                self._send(c, b"221 bye" + eol)
                c.close()
                return
            else:
                self._send(c, b"250 Ok" + eol)
