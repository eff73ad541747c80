"""
The user commands: `mailq` (Postfix's text format, and `-j` with the field
names of Postfix's `postqueue -j`) and `sendmail` (-t, -i/-oi, -f, -F,
recipients on the command line, exit codes 0 / 64 / 75), run like cron
does: stdin from a file, no terminal.
"""

import difflib
import json
import os
import re
import subprocess
import time

import harness
from harness import REMOTE_RCPT, queued_id

EX_OK, EX_USAGE, EX_TEMPFAIL = 0, 64, 75


# -- mailq


# Postfix's showq_compat has two layouts: the classic one for short queue
# ids and the enable_long_queue_ids one. Postern's ids are long ids (12
# characters), so mailq prints the long layout, as Postfix does for them:
#   ----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------
MAILQ_LAYOUT = "long"
LAYOUTS = {
    "short": ("%-11s %7s %-20s %s\n", "%-11s %7ld %20.20s %s\n",
              ("-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")),
    "long": ("%-17s %8s %-19s %s\n", "%-17s %8ld %19.19s %s\n",
             ("----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------")),
}


def postfix_mailq_text(entries, layout=MAILQ_LAYOUT):
    """What Postfix's mailq (showq_compat) prints for these postqueue -j
    objects."""
    string_fmt, sender_fmt, headings = LAYOUTS[layout]
    if not entries:
        return "Mail queue is empty\n"
    out = []
    total = 0
    for i, e in enumerate(entries):
        if i == 0:
            out.append(string_fmt % headings)
        else:
            out.append("\n")
        ids = e["queue_id"]
        if e["queue_name"] == "active":
            ids += "*"
        elif e["queue_name"] == "hold":
            ids += "!"
        if e["forced_expire"]:
            ids += "#"
        arrival = time.asctime(time.localtime(e["arrival_time"]))
        out.append(sender_fmt % (ids, e["message_size"], arrival, e["sender"] or "MAILER-DAEMON"))
        saved = ""
        for r in e["recipients"]:
            why = r.get("delay_reason", "")
            if why != saved:
                saved = why
                show = why or "reason unavailable"
                out.append("%s(%s)\n" % (" " * max(0, 76 - len(show)), show))
            out.append(string_fmt % ("", "", "", r["address"]))
        total += e["message_size"]
    out.append("\n-- %d Kbytes in %d Request%s.\n" % (total // 1024, len(entries), "" if len(entries) == 1 else "s"))
    return "".join(out)


def _check_json_entry(e):
    want = {"queue_name": str, "queue_id": str, "arrival_time": int, "message_size": int,
            "forced_expire": bool, "sender": str, "recipients": list}
    for k, t in want.items():
        if k not in e:
            raise AssertionError("mailq -j object lacks %r: %r" % (k, e))
        if not isinstance(e[k], t) or (t is int and isinstance(e[k], bool)):
            raise AssertionError("mailq -j %r should be %s: %r" % (k, t.__name__, e[k]))
    if e["queue_name"] not in ("incoming", "active", "deferred", "hold"):
        raise AssertionError("queue_name %r" % e["queue_name"])
    if not harness.QID_RE.match(e["queue_id"]):
        raise AssertionError("queue_id %r is not 12+ characters of [0-9A-Z]" % e["queue_id"])
    if abs(e["arrival_time"] - time.time()) > 600:
        raise AssertionError("arrival_time %d is not now" % e["arrival_time"])
    for r in e["recipients"]:
        if not isinstance(r, dict) or not isinstance(r.get("address"), str):
            raise AssertionError("recipient should be {\"address\": ...}: %r" % r)


def _mailq_text(inst):
    r = inst.mailq()
    if r.returncode != 0:
        raise AssertionError("mailq exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode("utf-8", errors="replace")


def _text_matches_json(inst):
    """Polls until mailq and mailq -j agree (a message may change queue
    between the two calls); returns (text, entries)."""
    last = {}

    def agree():
        entries = inst.queue()
        text = _mailq_text(inst)
        last["d"] = (text, entries)
        return text == postfix_mailq_text(entries)
    try:
        harness.wait_until(agree, 5, "mailq and mailq -j to agree")
    except TimeoutError:
        text, entries = last["d"]
        diff = "\n".join(difflib.unified_diff(postfix_mailq_text(entries).splitlines(), text.splitlines(),
                                              "expected (Postfix format from -j)", "mailq", lineterm=""))
        other = [l for l in LAYOUTS if l != MAILQ_LAYOUT and text == postfix_mailq_text(entries, l)]
        hint = (" (it is Postfix's %r layout; the contract is the %r one)" % (other[0], MAILQ_LAYOUT)) if other else ""
        raise AssertionError("mailq text is not Postfix's format%s:\n%s" % (hint, diff))
    return last["d"]


def test_mailq_empty_queue():
    with harness.Instance("mailq-empty") as inst:
        text = _mailq_text(inst)
        if text != "Mail queue is empty\n":
            raise AssertionError("empty queue: mailq printed %r" % text)
        r = inst.mailq("-j")
        if r.returncode != 0 or r.stdout.strip():
            raise AssertionError("mailq -j on an empty queue: exit %d, %r" % (r.returncode, r.stdout))


def test_mailq_text_format():
    with harness.Instance("mailq-text") as inst:
        q1 = inst.send(sender="first@example.com")
        text, entries = _text_matches_json(inst)
        if not text.endswith("in 1 Request.\n"):
            raise AssertionError("one message: last line %r" % text.splitlines()[-1])
        if not text.startswith("----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"):
            raise AssertionError("header line: %r" % text.splitlines()[0])
        if q1 not in text:
            raise AssertionError("queue id %s not listed" % q1)
        # a second message: null sender, two recipients, a bigger body
        with inst.client(ehlo=True) as c:
            c.mail_rcpt("", [REMOTE_RCPT, "other@remote.example"])
            q2 = queued_id(c.data(harness.simple_body("bounce") + (b"z" * 98 + b"\r\n") * 30))
        text, entries = _text_matches_json(inst)
        if len(entries) != 2 or not text.endswith("in 2 Requests.\n"):
            raise AssertionError("two messages: %r" % text.splitlines()[-1])
        m = re.search(r"^-- (\d+) Kbytes in 2 Requests\.$", text, re.M)
        if int(m.group(1)) != sum(e["message_size"] for e in entries) // 1024:
            raise AssertionError("Kbytes %s for sizes %s" % (m.group(1), [e["message_size"] for e in entries]))
        block = [b for b in text.split("\n\n") if q2 in b]
        if not block or "MAILER-DAEMON" not in block[0]:
            raise AssertionError("null sender should show as MAILER-DAEMON: %r" % block)
        for addr in (REMOTE_RCPT, "other@remote.example"):
            indent = len(LAYOUTS[MAILQ_LAYOUT][0] % ("", "", "", ""))
            if not re.search(r"^ {%d}%s$" % (indent - 1, re.escape(addr)), block[0], re.M):
                raise AssertionError("recipient %s not on an indented line: %r" % (addr, block[0]))


def test_mailq_json():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("json")
    with inst.client(ehlo=True) as c:
        c.mail_rcpt(sender, [REMOTE_RCPT, "two@remote.example"])
        body = harness.simple_body(sender)
        qid = queued_id(c.data(body))
    r = inst.mailq("-j")
    if r.returncode != 0:
        raise AssertionError("mailq -j exited %d" % r.returncode)
    lines = [l for l in r.stdout.decode().split("\n") if l]
    import json
    objs = [json.loads(l) for l in lines]        # one object a line
    for e in objs:
        _check_json_entry(e)
    mine = [e for e in objs if e["queue_id"] == qid]
    if len(mine) != 1:
        raise AssertionError("queue id %s listed %d times" % (qid, len(mine)))
    e = mine[0]
    if e["sender"] != sender or sorted(x["address"] for x in e["recipients"]) != sorted([REMOTE_RCPT, "two@remote.example"]):
        raise AssertionError("wrong envelope: %r" % e)
    if e["forced_expire"] is not False:
        raise AssertionError("forced_expire should be false: %r" % e)
    if e["message_size"] <= len(body):
        raise AssertionError("message_size %d smaller than the body %d plus Received:" % (e["message_size"], len(body)))


def test_mailq_default_config_from_env():
    """POSTERN_CONF selects the config like -c does."""
    inst = harness.shared()
    r = inst.run_tool("mailq", ["-j"], env={"POSTERN_CONF": inst.conf_path})
    if r.returncode != 0:
        raise AssertionError("mailq -j with POSTERN_CONF exited %d: %s" % (r.returncode, r.stderr))
    # deliver keeps working on the queue: compare which messages are listed
    # (a message's state may change between the two calls, its id does not)
    def ids(out):
        return {json.loads(l)["queue_id"] for l in out.decode().splitlines() if l.strip()}
    a, b = ids(r.stdout), ids(inst.mailq("-j").stdout)
    if not a or a != b:
        raise AssertionError("POSTERN_CONF and -c give different queues: %r / %r" % (sorted(a)[:5], sorted(b)[:5]))


def test_mailq_while_daemons_down():
    """With queue-mgr down, mailq reads the queue itself (as Postfix's
    showq does in stand-alone mode for root) and still lists it right."""
    inst = harness.Instance("mailq-down")
    inst.start()
    try:
        qid = inst.send(sender="down@example.com")
        # once deliver has tried it (relayhost is a closed port): deferred,
        # with its reason, and not being delivered (no '*')
        harness.wait_until(lambda: "(connect to" in _mailq_text(inst) and qid + "*" not in _mailq_text(inst),
                           20, "the message deferred with its reason")
        up_text = _mailq_text(inst)
    finally:
        inst.stop()
    if harness._unix_connect(os.path.join(inst.run_dir, "queue", "control.sock")):
        raise AssertionError("queue-mgr still answers after stop")
    q = inst.queue()
    if [e["queue_id"] for e in q] != [qid] or q[0]["sender"] != "down@example.com":
        raise AssertionError("mailq -j with the daemons down: %r" % q)
    down_text = _mailq_text(inst)
    if down_text != up_text:
        raise AssertionError("mailq differs with the daemons down:\n%s\nvs\n%s" % (down_text, up_text))


# -- sendmail


def _sendmail(inst, args, message, env=None):
    path = os.path.join(inst.dir, "msg-%s.txt" % harness.token("in"))
    with open(path, "wb") as f:
        f.write(message)
    e = {"POSTERN_CONF": inst.conf_path}
    e.update(env or {})
    with open(path, "rb") as stdin:
        return inst.run_tool("sendmail", args, stdin=stdin, env=e, start_new_session=True)


def _new_entries(inst, before):
    return [e for e in inst.queue() if e["queue_id"] not in before]


def _one_new(inst, before, r):
    if r.returncode != EX_OK:
        raise AssertionError("sendmail exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    new = _new_entries(inst, before)
    if len(new) != 1:
        raise AssertionError("expected one new queued message, got %d" % len(new))
    return new[0]


def _headers(data):
    return data.split(b"\r\n\r\n", 1)[0]


def test_sendmail_recipients_on_command_line():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("sm")
    before = inst.queue_ids()
    r = _sendmail(inst, ["-f", sender, REMOTE_RCPT, "two@remote.example"],
                  b"Subject: from sendmail\nTo: someone@remote.example\n\nline one\nline two\n")
    e = _one_new(inst, before, r)
    if e["sender"] != sender:
        raise AssertionError("sender %r, want %r (from -f)" % (e["sender"], sender))
    rc = sorted(x["address"] for x in e["recipients"])
    if rc != sorted([REMOTE_RCPT, "two@remote.example"]):
        raise AssertionError("recipients %r: the command line ones, not the To: header" % rc)
    if os.access(inst.spool_file(e["queue_id"]), os.R_OK):
        data = inst.read_spool(e["queue_id"])
        if b"\r\nline one\r\nline two\r\n" not in data or re.search(rb"(?<!\r)\n", data):
            raise AssertionError("spool file should hold the message with CRLF lines: %r" % data[-80:])


def test_sendmail_t_reads_recipients_and_removes_bcc():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("smt")
    before = inst.queue_ids()
    msg = (b"From: Someone <" + sender.encode() + b">\n"
           b"To: a@remote.example, \"Bee\" <b@remote.example>\n"
           b"Cc: c@remote.example\n"
           b"Bcc: hidden@remote.example\n"
           b"Subject: -t test\n\nbody\n")
    e = _one_new(inst, before, _sendmail(inst, ["-t", "-f", sender], msg))
    got = sorted(x["address"] for x in e["recipients"])
    want = sorted(["a@remote.example", "b@remote.example", "c@remote.example", "hidden@remote.example"])
    if got != want:
        raise AssertionError("-t recipients %r, want %r" % (got, want))
    if os.access(inst.spool_file(e["queue_id"]), os.R_OK):
        hdr = _headers(inst.read_spool(e["queue_id"]))
        if re.search(rb"(?im)^bcc:", hdr):
            raise AssertionError("Bcc: header not removed: %r" % hdr)
        if b"hidden@remote.example" in hdr:
            raise AssertionError("the Bcc address is visible in the headers: %r" % hdr)
        if not re.search(rb"(?m)^To: a@remote\.example", hdr):
            raise AssertionError("To: header lost: %r" % hdr)


def _dot_test(inst, flag):
    sender = "%s@example.com" % harness.token("smi")
    tok = harness.token("after-dot").encode()
    before = inst.queue_ids()
    args = ([flag] if flag else []) + ["-f", sender, REMOTE_RCPT]
    e = _one_new(inst, before, _sendmail(inst, args, b"Subject: dots\n\nbefore\n.\n" + tok + b"\n"))
    data = inst.read_spool(e["queue_id"]) if os.access(inst.spool_file(e["queue_id"]), os.R_OK) else None
    return e, data, tok


def test_sendmail_i_dot_line_does_not_end_input():
    inst = harness.shared()
    for flag in ("-i", "-oi"):
        e, data, tok = _dot_test(inst, flag)
        if data is not None and (tok not in data or b"\r\nbefore\r\n.\r\n" not in data):
            raise AssertionError("with %s the '.' line and what follows must be kept: %r" % (flag, data[-100:]))
        if data is None and e["message_size"] < 40:
            raise AssertionError("with %s the message was cut" % flag)


def test_sendmail_without_i_dot_line_ends_input():
    inst = harness.shared()
    e, data, tok = _dot_test(inst, None)
    if data is None:
        raise harness.Skip("spool file not readable")
    if tok in data:
        raise AssertionError("without -i a '.' line ends the message, but %r was queued" % tok)
    if not data.endswith(b"\r\nbefore\r\n"):
        raise AssertionError("message should end before the '.' line: %r" % data[-60:])


def test_sendmail_F_full_name():
    inst = harness.shared()
    sender = "%s@example.com" % harness.token("smf")
    before = inst.queue_ids()
    e = _one_new(inst, before, _sendmail(inst, ["-F", "Full Name", "-f", sender, REMOTE_RCPT],
                                         b"Subject: no From header\n\nbody\n"))
    if e["sender"] != sender:
        raise AssertionError("sender %r" % e["sender"])
    if os.access(inst.spool_file(e["queue_id"]), os.R_OK):
        hdr = _headers(inst.read_spool(e["queue_id"]))
        m = re.search(rb"(?m)^From: (.*)$", hdr)
        if not m or b"Full Name" not in m.group(1) or sender.encode() not in m.group(1):
            raise AssertionError("-F: From: header should carry 'Full Name' and %s: %r" % (sender, hdr))


def test_sendmail_no_recipients_is_usage_error():
    inst = harness.shared()
    before = inst.queue_ids()
    r = _sendmail(inst, ["-f", "nobody@example.com"], b"Subject: nobody\n\nbody\n")
    if r.returncode != EX_USAGE:
        raise AssertionError("no recipients: exit %d, want %d (EX_USAGE); stderr %r" % (r.returncode, EX_USAGE, r.stderr))
    if not r.stderr.strip():
        raise AssertionError("no error message on stderr")
    if _new_entries(inst, before):
        raise AssertionError("something was queued")


def test_sendmail_t_without_recipient_headers_is_usage_error():
    inst = harness.shared()
    before = inst.queue_ids()
    r = _sendmail(inst, ["-t", "-f", "nobody@example.com"], b"Subject: nobody\n\nbody\n")
    if r.returncode != EX_USAGE:
        raise AssertionError("-t without To/Cc/Bcc: exit %d, want %d" % (r.returncode, EX_USAGE))
    if _new_entries(inst, before):
        raise AssertionError("something was queued")


def test_sendmail_daemons_stopped_is_tempfail():
    inst = harness.Instance("sendmail-down")
    inst.start()
    inst.stop()
    r = _sendmail(inst, ["-f", "a@example.com", REMOTE_RCPT], b"Subject: x\n\nbody\n")
    if r.returncode != EX_TEMPFAIL:
        raise AssertionError("daemons stopped: exit %d, want %d (EX_TEMPFAIL); stderr %r"
                             % (r.returncode, EX_TEMPFAIL, r.stderr))


def test_sendmail_cron_style():
    """No terminal, stdin a file, own session, cwd "/", minimal env."""
    inst = harness.shared()
    before = inst.queue_ids()
    path = os.path.join(inst.dir, "cron-msg.txt")
    with open(path, "wb") as f:
        f.write(b"Subject: Cron <root@host> run-parts\nContent-Type: text/plain\n\noutput of a job\n")
    with open(path, "rb") as stdin:
        r = subprocess.run([harness.binary("sendmail"), "-FCronDaemon", "-i", "-B8BITMIME", "-oem", REMOTE_RCPT],
                           stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                           env=harness.daemon_env({"POSTERN_CONF": inst.conf_path, "PATH": "/usr/bin:/bin"}),
                           start_new_session=True, timeout=30)
    if r.stderr:
        with open(harness.tools_log(), "ab") as f:
            f.write(b"== sendmail (cron)\n" + r.stderr)
    e = _one_new(inst, before, r)
    if [x["address"] for x in e["recipients"]] != [REMOTE_RCPT]:
        raise AssertionError("recipients %r" % e["recipients"])
    if not e["sender"]:
        raise AssertionError("no sender recorded for a local submission without -f")


def _frame(ftype, fields, reqid=1):
    import struct
    body = b"".join(struct.pack("<HI", tag, len(v)) + v for tag, v in fields)
    return struct.pack("<IHHII", 0x4E545350, ftype, 0, len(body), reqid) + body


def _field(tag, v):
    import struct
    return (tag, struct.pack("<Q", v) if isinstance(v, int) else v)


Q_OPEN, Q_OPENED, Q_COMMIT, Q_COMMITTED, Q_ERROR, Q_DATA = 1, 2, 3, 4, 6, 10
T_QID, T_CODE, T_DATA = 1, 2, 6


class _Pickup:
    """A hand-made pickup client: what any local user can do on the socket."""

    def __init__(self, inst):
        import socket
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(os.path.join(inst.run_dir, "queue", "pickup.sock"))
        self.buf = b""
        self.fds = []

    def send(self, ftype, fields, reqid=1):
        self.s.sendall(_frame(ftype, fields, reqid))

    def frame(self):
        """The next frame: (type, reqid, {tag: value}); descriptors that
        came along are kept in self.fds."""
        import socket
        import struct
        while True:
            if len(self.buf) >= 16:
                _, ftype, _, blen, reqid = struct.unpack("<IHHII", self.buf[:16])
                if len(self.buf) >= 16 + blen:
                    body, self.buf = self.buf[16:16 + blen], self.buf[16 + blen:]
                    fields, i = {}, 0
                    while i + 6 <= len(body):
                        tag, flen = struct.unpack("<HI", body[i:i + 6])
                        fields[tag] = body[i + 6:i + 6 + flen]
                        i += 6 + flen
                    return ftype, reqid, fields
            data, fds, _, _ = socket.recv_fds(self.s, 65536, 4)
            self.fds += fds
            if not data:
                raise AssertionError("queue-mgr closed the pickup connection")
            self.buf += data

    def open(self):
        self.send(Q_OPEN, [])
        ftype, _, f = self.frame()
        if ftype != Q_OPENED:
            raise AssertionError("Q_OPEN answered with type %d: %r" % (ftype, f))
        return f[T_QID].decode()

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.s.close()


def _envelope(qid, sender=b"pickup@example.com", extra=()):
    import struct
    rcpt = struct.pack("<HI", 48, len(b"demo@localhost")) + b"demo@localhost"
    return [_field(16, 1), _field(T_QID, qid.encode()), _field(17, sender)] + list(extra) + [_field(18, rcpt)]


def test_pickup_cannot_claim_a_login_or_a_client():
    """A local user talking to the pickup socket directly sets T_AUTH and
    client fields in its envelope: queue-mgr keeps the message but records
    only what it knows (the uid), never a login the user claimed."""
    import subprocess
    with harness.Instance("pickup-forge", master_service_disable="local") as inst:  # demo@localhost stays queued
        p = _Pickup(inst)
        qid = p.open()
        p.send(Q_DATA, [_field(T_QID, qid.encode()), _field(T_DATA, b"Subject: forged\r\n\r\nbody\r\n")])
        p.send(Q_COMMIT, _envelope(qid, b"forger@example.com",
                                   [_field(23, b"postmaster-login"), _field(24, b"claimed.helo"),
                                    _field(25, b"192.0.2.99")]))
        ftype, _, f = p.frame()
        p.close()
        if ftype != Q_COMMITTED:
            raise AssertionError("commit refused: %d %r" % (ftype, f))
        if qid not in inst.queue_ids():
            raise AssertionError("%s not in the queue" % qid)
        # the main database and every named one, whatever the layout
        out = ""
        for flags in (["-p"], ["-a", "-p"]):
            dump = subprocess.run(["mdb_dump"] + flags + [os.path.join(inst.spool_dir, "index")],
                                  capture_output=True, text=True, timeout=30)
            if dump.returncode != 0:
                raise AssertionError("mdb_dump failed: %s %s" % (dump.returncode, dump.stderr))
            out += dump.stdout
        if "forger@example.com" not in out:
            raise AssertionError("cannot read the record back")
        for claimed in ("postmaster-login", "claimed.helo", "192.0.2.99"):
            if claimed in out:
                raise AssertionError("queue record keeps the client's claim %r" % claimed)


def test_pickup_client_gets_no_descriptor_and_cannot_rewrite_received():
    """Q_OPENED on the pickup socket carries no descriptor; the content is
    streamed and written by queue-mgr after its own Received: line, and the
    spool file is exactly what was committed."""
    with harness.Instance("pickup-stream", master_service_disable="local") as inst:  # demo@localhost stays queued
        p = _Pickup(inst)
        qid = p.open()
        if p.fds:
            raise AssertionError("a pickup client got %d descriptor(s) with Q_OPENED" % len(p.fds))
        body = b"Subject: streamed\r\n\r\n" + b"x" * 100 + b"\r\n"
        # two frames, the way sendmail splits a long message
        p.send(Q_DATA, [_field(T_QID, qid.encode()), _field(T_DATA, body[:10])])
        p.send(Q_DATA, [_field(T_QID, qid.encode()), _field(T_DATA, body[10:])])
        p.send(Q_COMMIT, _envelope(qid))
        ftype, _, f = p.frame()
        if p.fds:
            raise AssertionError("a pickup client got a descriptor with a reply")
        p.close()
        if ftype != Q_COMMITTED:
            raise AssertionError("commit refused: %d %r" % (ftype, f))
        data = inst.read_spool(qid)
        if not data.startswith(b"Received: by ") or not data.endswith(body):
            raise AssertionError("spool file is not our Received: line + the stream: %r" % data[:200])
        e = inst.queue_entry(qid)
        if e is None or e["message_size"] != len(data):
            raise AssertionError("mailq size %r, spool file %d bytes" % (e and e["message_size"], len(data)))


def test_pickup_over_size_stream_is_refused_552():
    """A hand-made client streaming past max_message_size gets 552 5.3.4 at
    commit, and nothing is queued or left in the spool."""
    with harness.Instance("pickup-big", max_message_size=20000) as inst:
        p = _Pickup(inst)
        qid = p.open()
        for _ in range(4):
            p.send(Q_DATA, [_field(T_QID, qid.encode()), _field(T_DATA, b"y" * 8190 + b"\r\n")])
        p.send(Q_COMMIT, _envelope(qid))
        ftype, _, f = p.frame()
        p.close()
        if ftype != Q_ERROR or not f.get(T_CODE, b"").startswith(b"552 5.3.4"):
            raise AssertionError("an over-size stream should get 552 5.3.4, got %d %r" % (ftype, f))
        if qid in inst.queue_ids():
            raise AssertionError("the refused message %s is queued" % qid)
        if os.path.exists(inst.spool_file(qid)):
            raise AssertionError("the refused message left its spool file")


def test_sendmail_over_size_is_refused_and_not_queued():
    with harness.Instance("sendmail-big", max_message_size=20000) as inst:
        before = set(inst.queue_ids())
        msg = b"Subject: big\n\n" + (b"z" * 70 + b"\n") * 400
        r = _sendmail(inst, ["-i", REMOTE_RCPT], msg)
        if r.returncode != 65:
            raise AssertionError("sendmail of an over-size message exited %d (want 65, EX_DATAERR): %s"
                                 % (r.returncode, r.stderr.decode(errors="replace")))
        if set(inst.queue_ids()) != before:
            raise AssertionError("an over-size message was queued")
        left = os.listdir(os.path.join(inst.spool_dir, "msg"))
        if left:
            raise AssertionError("spool files left behind: %r" % left)
