"""
test_bounce.py - delivery status notifications end to end (issue 8): a
whole Postern delivers into the hermetic internet of test_delivery.py
(NSD for t.test, sinkfix Sinks as the remote servers), the recipients'
server refuses, defers or accepts, and the notice arrives at the sender's
own server (another Sink), where it is parsed with Python's email package
and checked field by field against RFC 3464 / RFC 6522 / RFC 6533.

Names: rcpt.t.test (127.0.0.61) is the recipients' server, snd.t.test
(127.0.0.62) the sender's, pm.t.test (127.0.0.63) the postmaster's for
double bounces. Every wait is for a condition with a deadline.
"""

import email
import email.policy
import os
import re
import signal
import smtplib

import harness
from sinkfix import Sink
from test_delivery import World

ZONE = "rcpt A 127.0.0.61\nsnd A 127.0.0.62\npm A 127.0.0.63\n"
HOSTS = ["127.0.0.61", "127.0.0.62", "127.0.0.63"]
SENDER = "alice@snd.t.test"
NOTICE_RX = r"postern/queue-mgr\[\d+\]: %s: sender non-delivery notification: ([0-9A-Z]+)$"


def world(name, **conf):
    conf.setdefault("bounce_language", "en")
    w = World(name, ZONE, HOSTS, **conf)
    w.nsd.zones["snd.de"] = "@ A 127.0.0.62\n"     # a sender domain in .de
    return w


def body(subject="hello", extra_headers=b"", text=b"the body\r\n"):
    return (b"From: Alice <alice@snd.t.test>\r\nTo: <bob@rcpt.t.test>\r\nSubject: " + subject.encode() +
            b"\r\nMessage-ID: <" + harness.token("m").encode() + b"@snd.t.test>\r\n" + extra_headers +
            b"\r\n" + text)


def send(w, rcpts, data=None, sender=SENDER, mail_options=(), rcpt_options=None):
    """One message over SMTP with DSN parameters; returns its queue id.
    rcpt_options: {rcpt: [options]}."""
    data = body() if data is None else data
    with w.inst.smtplib() as s:
        s.ehlo("client.example")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, list((rcpt_options or {}).get(r, ())))
            assert code == 250, (r, code, text)
        code, text = s.data(data)
        assert code == 250, (code, text)
        m = re.search(rb"queued as ([0-9A-Z]+)", text)
        assert m, text
        return m.group(1).decode()


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def wait_notice(w, qid, timeout=60):
    m = w.inst.wait_log(NOTICE_RX % qid, timeout=timeout, what="the non-delivery notice of %s" % qid)
    return m.group(1)


def report_parts(msg, global_=False):
    """Checks the RFC 6522 frame; returns (human text, per-message block,
    [per-recipient blocks], third part)."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    want = "global-delivery-status" if global_ else "delivery-status"
    assert msg.get_param("report-type") == want, msg.get_param("report-type")
    assert msg["Auto-Submitted"] == "auto-replied", msg["Auto-Submitted"]
    assert msg["From"].addresses[0].username == "MAILER-DAEMON", msg["From"]
    assert not msg.defects, msg.defects
    parts = list(msg.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    human, status, orig = parts
    assert human.get_content_type() == "text/plain", human.get_content_type()
    assert human.get_content_charset() == "utf-8"
    assert human["Content-Transfer-Encoding"] == "quoted-printable"
    raw_human = human.get_payload(decode=False)
    for line in raw_human.splitlines():
        assert len(line) <= 76, "a quoted-printable line of %d characters: %r" % (len(line), line)
    text = human.get_content()
    for line in text.splitlines():
        assert len(line) <= 76, "a long line in the human part: %r" % line
    stype = "message/global-delivery-status" if global_ else "message/delivery-status"
    assert status.get_content_type() == stype, status.get_content_type()
    if global_:
        # the email package takes message/global-delivery-status for one
        # message: its header is the per-message block, its body the rest
        whole = status.get_payload()[0].as_bytes(policy=email.policy.SMTPUTF8).decode("utf-8")
        blocks = [email.message_from_string(b + "\n", policy=email.policy.default)
                  for b in re.split(r"\r?\n\r?\n", whole.strip())]
    else:
        blocks = status.get_payload()
    assert len(blocks) >= 2, blocks
    return text, blocks[0], blocks[1:], orig


def check_message_block(b, qid):
    assert b["Reporting-MTA"] == "dns; " + harness.HOST, b["Reporting-MTA"]
    assert b["X-Postern-Queue-ID"] == qid, b["X-Postern-Queue-ID"]
    assert email.utils.parsedate_to_datetime(b["Arrival-Date"]) is not None


def by_rcpt(blocks):
    return {b["Final-Recipient"].split(";", 1)[1].strip(): b for b in blocks}


def notice_at(sink, n=1, timeout=60):
    got = sink.wait_messages(n, timeout=timeout)
    for g in got:
        assert g.mail_from in ("", "<>"), "a notice must come from <>: %r" % g.mail_from
    return got


# ------------------------------------------------------------ failures

def test_failure_notice_three_recipients_every_field():
    """One message, three recipients refused in one round, one accepted by a
    DSN-capable server: ONE notice with three recipient blocks, ENVID and
    ORCPT round-tripped, the DSN parameters passed on to the server that
    accepted, and no success notice for it (that server reports)."""
    with world("bfail") as w:
        rcpt = {"bob@rcpt.t.test": "550 5.1.1 <bob@rcpt.t.test>: Recipient address rejected",
                "carol@rcpt.t.test": "552 5.2.2 <carol@rcpt.t.test>: mailbox full",
                "dave@rcpt.t.test": "554 5.7.1 <dave@rcpt.t.test>: rejected by policy"}
        with Sink(host="127.0.0.61", port=w.port, rcpt=rcpt, dsn=True) as r, \
                Sink(host="127.0.0.62", port=w.port) as s:
            rcpts = list(rcpt) + ["erin@rcpt.t.test"]
            opts = {"bob@rcpt.t.test": ["ORCPT=rfc822;Bob+40rcpt.t.test"],
                    "erin@rcpt.t.test": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;erin@rcpt.t.test"]}
            qid = send(w, rcpts, mail_options=["RET=FULL", "ENVID=env+2B42"], rcpt_options=opts)
            nqid = wait_notice(w, qid)
            got = notice_at(s)
            assert got[0].rcpt_tos == [SENDER], got[0].rcpt_tos
            msg = parse(got[0].data)
            assert msg["To"].addresses[0].addr_spec == SENDER, msg["To"]
            assert msg["Subject"] == "Undelivered Mail Returned to Sender"
            assert nqid in msg["Message-ID"], (nqid, msg["Message-ID"])
            text, mb, rb, orig = report_parts(msg)
            check_message_block(mb, qid)
            assert mb["Original-Envelope-Id"] == "env+42", mb["Original-Envelope-Id"]
            blocks = by_rcpt(rb)
            assert sorted(blocks) == sorted(rcpt), sorted(blocks)
            for addr, reply in rcpt.items():
                b = blocks[addr]
                assert b["Action"] == "failed", b["Action"]
                assert b["Status"] == reply.split()[1], (b["Status"], reply)
                assert b["Remote-MTA"] == "dns; rcpt.t.test", b["Remote-MTA"]
                diag = re.sub(r"\s+", " ", b["Diagnostic-Code"])
                assert diag == "smtp; " + reply, diag
                assert email.utils.parsedate_to_datetime(b["Last-Attempt-Date"]) is not None
                assert b["Will-Retry-Until"] is None
            assert blocks["bob@rcpt.t.test"]["Original-Recipient"] == "rfc822;Bob@rcpt.t.test"
            # the human part: each recipient, the server's answer, the advice of each kind
            for addr, reply in rcpt.items():
                assert addr in text and reply.split(":")[-1].strip() in text, (addr, text)
            assert "misspelt" in text and "mailbox is full" in text and "its rules" in text, text
            # RET=FULL: the whole original
            assert orig.get_content_type() == "message/rfc822", orig.get_content_type()
            inner = orig.get_payload()[0]
            assert inner["Subject"] == "hello" and "the body" in inner.get_content()
            # the DSN-capable server got the parameters as sent
            acc = r.wait_messages(1)[0]
            assert acc.rcpt_tos == ["erin@rcpt.t.test"], acc.rcpt_tos
            assert acc.dsn_mail.get("RET") == "FULL" and acc.dsn_mail.get("ENVID") == "env+2B42", acc.dsn_mail
            assert acc.dsn_rcpt["erin@rcpt.t.test"].get("NOTIFY") == "SUCCESS,FAILURE", acc.dsn_rcpt
            assert acc.dsn_rcpt["erin@rcpt.t.test"].get("ORCPT") == "rfc822;erin@rcpt.t.test", acc.dsn_rcpt
            # everything reported: the original goes, with no success notice of ours
            w.inst.wait_removed(qid)
            log = w.inst.log_text()
            assert "%s: sender delivery status notification" % qid not in log
            assert len(re.findall(NOTICE_RX % qid, log, re.M)) == 1
            assert qid not in w.inst.queue_ids()
            for addr, reply in rcpt.items():
                d = w.inst.deliveries(qid, addr, "bounced")
                assert d and d[0].dsn == reply.split()[1], (addr, d)


def test_notify_never_and_null_sender_get_no_notice():
    with world("bnever") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": "550 5.1.1 no such user"}) as r, \
                Sink(host="127.0.0.62", port=w.port) as s:
            q1 = send(w, ["no@rcpt.t.test"], rcpt_options={"no@rcpt.t.test": ["NOTIFY=NEVER"]})
            q2 = send(w, ["no@rcpt.t.test"], sender="")
            q3 = send(w, ["no@rcpt.t.test"], rcpt_options={"no@rcpt.t.test": ["NOTIFY=DELAY"]})
            for q in (q1, q2, q3):
                w.bounced(q, "no@rcpt.t.test")
                w.inst.wait_removed(q)
            log = w.inst.log_text()
            for q in (q1, q2, q3):
                assert "%s: sender non-delivery notification" % q not in log, q
            assert "%s: the sender is <>: no notice" % q2 in log
            assert not s.received(), s.received()
            assert not r.received()


def test_ret_hdrs_and_large_original():
    with world("bret") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": "550 5.1.1 no such user"}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            q1 = send(w, ["no@rcpt.t.test"], mail_options=["RET=HDRS"])
            big = body(subject="big", text=(b"x" * 998 + b"\r\n") * 200)      # 200 KB > bounce_size_limit
            q2 = send(w, ["no@rcpt.t.test"], data=big, mail_options=["RET=FULL"])
            q3 = send(w, ["no@rcpt.t.test"], mail_options=["RET=FULL"])
            n = {wait_notice(w, q): q for q in (q1, q2, q3)}
            got = notice_at(s, 3)
            kinds = {}
            for g in got:
                msg = parse(g.data)
                text, mb, rb, orig = report_parts(msg)
                kinds[mb["X-Postern-Queue-ID"]] = (orig.get_content_type(), orig)
                assert len(g.data) < 60000, len(g.data)
            assert kinds[q1][0] == "text/rfc822-headers", kinds[q1][0]
            assert b"Subject: hello" in kinds[q1][1].get_payload(decode=True)
            assert b"the body" not in kinds[q1][1].get_payload(decode=True)
            assert kinds[q2][0] == "text/rfc822-headers", kinds[q2][0]
            assert b"Subject: big" in kinds[q2][1].get_payload(decode=True)
            assert kinds[q3][0] == "message/rfc822", kinds[q3][0]
            assert len(n) == 3


# ------------------------------------------------------------ success and delay

def test_notify_success_relayed_without_dsn():
    """The next hop offers no DSN: our success notice says relayed."""
    with world("bsucc") as w:
        with Sink(host="127.0.0.61", port=w.port, dsn=False) as r, Sink(host="127.0.0.62", port=w.port) as s:
            qid = send(w, ["ok@rcpt.t.test"], rcpt_options={"ok@rcpt.t.test": ["NOTIFY=SUCCESS"]})
            w.sent(qid, "ok@rcpt.t.test")
            w.inst.wait_log(r"%s: sender delivery status notification: [0-9A-Z]+$" % qid, timeout=60)
            msg = parse(notice_at(s)[0].data)
            assert msg["Subject"] == "Successful Mail Delivery Report"
            text, mb, rb, orig = report_parts(msg)
            b = by_rcpt(rb)["ok@rcpt.t.test"]
            assert b["Action"] == "relayed" and b["Status"] == "2.0.0", (b["Action"], b["Status"])
            assert b["Remote-MTA"] == "dns; rcpt.t.test"
            assert orig.get_content_type() == "text/rfc822-headers"
            assert "does not send delivery reports" in text, text
            assert r.wait_messages(1)[0].rcpt_tos == ["ok@rcpt.t.test"]
            w.inst.wait_removed(qid)


def test_delay_warning_once():
    """NOTIFY=DELAY after a shortened delay_warning: one delayed notice with
    the last reason and Will-Retry-Until; NOTIFY=FAILURE gets none."""
    with world("bdelay", delay_warning="1s", queue_lifetime=3600) as w:
        later = "451 4.3.0 <later@rcpt.t.test>: try again later"
        with Sink(host="127.0.0.61", port=w.port, rcpt={"later@rcpt.t.test": later}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            q1 = send(w, ["later@rcpt.t.test"], rcpt_options={"later@rcpt.t.test": ["NOTIFY=DELAY"]})
            q2 = send(w, ["later@rcpt.t.test"], rcpt_options={"later@rcpt.t.test": ["NOTIFY=FAILURE"]})
            w.inst.wait_log(r"%s: sender delay notification: [0-9A-Z]+$" % q1, timeout=60)
            msg = parse(notice_at(s)[0].data)
            assert msg["Subject"] == "Delayed Mail (still being retried)"
            text, mb, rb, orig = report_parts(msg)
            b = by_rcpt(rb)["later@rcpt.t.test"]
            assert b["Action"] == "delayed" and b["Status"] == "4.3.0", (b["Action"], b["Status"])
            assert re.sub(r"\s+", " ", b["Diagnostic-Code"]) == "smtp; " + later
            until = email.utils.parsedate_to_datetime(b["Will-Retry-Until"])
            arrival = email.utils.parsedate_to_datetime(mb["Arrival-Date"])
            assert (until - arrival).total_seconds() == 3600, (until, arrival)
            assert orig.get_content_type() == "text/rfc822-headers"
            assert "no need to send it again" in text, text
            # more deferrals of both, still one warning in all
            harness.wait_until(lambda: len(w.inst.deliveries(q1, "later@rcpt.t.test", "deferred")) >= 4 and
                               len(w.inst.deliveries(q2, "later@rcpt.t.test", "deferred")) >= 4, 60,
                               "more deferrals")
            log = w.inst.log_text()
            assert len(re.findall(r"%s: sender delay notification" % q1, log)) == 1
            assert "%s: sender delay notification" % q2 not in log
            assert len(s.received()) == 1


def test_expiry_bounces_with_the_last_reason():
    with world("bexpire", queue_lifetime=3) as w:
        later = "451 4.3.0 try again later"
        with Sink(host="127.0.0.61", port=w.port, rcpt={"later@rcpt.t.test": later}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            qid = send(w, ["later@rcpt.t.test"])
            wait_notice(w, qid)
            w.inst.wait_log(r"%s: from=<%s>, status=expired, returned to sender" % (qid, SENDER))
            text, mb, rb, orig = report_parts(parse(notice_at(s)[0].data))
            b = by_rcpt(rb)["later@rcpt.t.test"]
            assert b["Action"] == "failed" and b["Status"] == "4.3.0", (b["Action"], b["Status"])
            diag = re.sub(r"\s+", " ", b["Diagnostic-Code"])
            assert re.match(r"X-Postern; message expired after \d+ seconds in the queue; last error: ", diag), diag
            assert later in diag, diag
            assert "as long as it is allowed" in text, text


# ------------------------------------------------------------ languages

def test_german_and_auto():
    with world("bde", bounce_language="auto") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": "550 5.1.1 no such user"}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            q_de = send(w, ["no@rcpt.t.test"], data=body(extra_headers=b"Content-Language: de\r\n"))
            q_en = send(w, ["no@rcpt.t.test"])
            q_tld = send(w, ["no@rcpt.t.test"], sender="bernd@snd.de")
            for q in (q_de, q_en, q_tld):
                wait_notice(w, q)
            got = notice_at(s, 3)
            by = {}
            for g in got:
                msg = parse(g.data)
                text, mb, rb, orig = report_parts(msg)
                by[mb["X-Postern-Queue-ID"]] = (msg, text)
            msg, text = by[q_de]
            assert msg["Subject"] == "Ihre Nachricht konnte nicht zugestellt werden", msg["Subject"]
            assert list(msg.iter_parts())[0]["Content-Language"] == "de"
            # proper umlauts in UTF-8, natural sentences
            for phrase in ("Dies ist eine automatische Nachricht des Mailservers",
                           "konnte an die folgenden Empfänger nicht zugestellt werden",
                           "Es werden keine weiteren Versuche unternommen",
                           "Prüfen Sie sie auf Tippfehler", "Der empfangende Server rcpt.t.test hat die Nachricht abgelehnt"):
                assert phrase in re.sub(r"\s+", " ", text), (phrase, text)
            assert "Ã" not in text          # no double-encoded UTF-8
            assert by[q_en][0]["Subject"] == "Undelivered Mail Returned to Sender"
            assert "misspelt" in by[q_en][1]
            assert by[q_tld][0]["Subject"] == "Ihre Nachricht konnte nicht zugestellt werden"


# ------------------------------------------------------------ double bounce

def test_double_bounce_to_postmaster_then_stop():
    with world("bdouble", double_bounce_recipient="postmaster@pm.t.test") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": "550 5.1.1 no such user"}), \
                Sink(host="127.0.0.62", port=w.port, rcpt={SENDER: "550 5.1.1 sender unknown here"}), \
                Sink(host="127.0.0.63", port=w.port) as pm:
            qid = send(w, ["no@rcpt.t.test"])
            nqid = wait_notice(w, qid)
            w.bounced(nqid, SENDER)
            m = w.inst.wait_log(r"%s: postmaster non-delivery notification: ([0-9A-Z]+)$" % nqid, timeout=60)
            dqid = m.group(1)
            got = pm.wait_messages(1)
            assert got[0].mail_from in ("", "<>") and got[0].rcpt_tos == ["postmaster@pm.t.test"], got
            text, mb, rb, orig = report_parts(parse(got[0].data))
            b = by_rcpt(rb)[SENDER]
            assert b["Action"] == "failed" and b["Status"] == "5.1.1"
            assert mb["X-Postern-Queue-ID"] == nqid
            w.inst.wait_removed(nqid)
            # the double bounce itself fails: dropped, no further notice
            pm.set_rcpt("postmaster@pm.t.test", "550 5.1.1 no postmaster here")
            q2 = send(w, ["no@rcpt.t.test"])
            n2 = wait_notice(w, q2)
            w.bounced(n2, SENDER)
            d2 = w.inst.wait_log(r"%s: postmaster non-delivery notification: ([0-9A-Z]+)$" % n2,
                                 timeout=60).group(1)
            w.bounced(d2, "postmaster@pm.t.test")
            w.inst.wait_log(r"%s: a double bounce that failed: discarded$" % d2, timeout=60)
            w.inst.wait_removed(d2)
            log = w.inst.log_text()
            assert not re.search(r"%s: \w+ non-delivery notification" % d2, log)
            assert len(pm.received()) == 1


# ------------------------------------------------------------ loops

def test_51_received_headers_bounce_5_4_6():
    with world("bhops") as w:
        with Sink(host="127.0.0.61", port=w.port) as r, Sink(host="127.0.0.62", port=w.port) as s:
            hops = b"".join(b"Received: from hop%d.example by hop%d.example; Mon, 1 Dec 2025 00:00:00 +0000\r\n"
                            % (i, i + 1) for i in range(51))
            qid = send(w, ["x@rcpt.t.test"], data=hops + body())
            d = w.bounced(qid, "x@rcpt.t.test")
            assert d.dsn == "5.4.6" and "too many hops" in d.reply, d.line
            wait_notice(w, qid)
            text, mb, rb, orig = report_parts(parse(notice_at(s)[0].data))
            b = by_rcpt(rb)["x@rcpt.t.test"]
            assert b["Status"] == "5.4.6" and b["Remote-MTA"] is None, (b["Status"], b["Remote-MTA"])
            assert "loop" in text
            # 49 of the client's and ours make 50: delivered
            q2 = send(w, ["y@rcpt.t.test"], data=hops[: hops.index(b"Received: from hop49")] + body())
            w.sent(q2, "y@rcpt.t.test")
            assert r.wait_messages(1)[0].rcpt_tos == ["y@rcpt.t.test"]


# ------------------------------------------------------------ crash

def test_kill9_queue_mgr_after_the_bounce_exactly_one_notice():
    """kill -9 of queue-mgr right after deliver logged the bounce, and again
    right after the notice was queued: each message gets exactly one
    notice."""
    with world("bkill") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": "550 5.1.1 no such user"}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            qids = []
            for point in ("bounced", "noticed"):
                old = w.inst.pids("queue-mgr")
                off = w.inst.log_size()
                qid = send(w, ["no@rcpt.t.test"], data=body(subject=point))
                qids.append(qid)
                if point == "bounced":
                    w.inst.wait_log(r"%s: to=<no@rcpt.t.test>.*status=bounced" % qid, since=off, timeout=60)
                else:
                    w.inst.wait_log(NOTICE_RX % qid, since=off, timeout=60)
                os.kill(old[0], signal.SIGKILL)
                harness.wait_until(lambda: w.inst.pids("queue-mgr") and w.inst.pids("queue-mgr") != old, 60,
                                   "queue-mgr restarted")
                w.inst.wait_log(r"postern/queue-mgr\[\d+\]: ready", since=off, timeout=60)
            harness.wait_until(lambda: len(s.received()) >= 2, 90, "two notices")
            # everything settled: the queue is empty (a notice whose commit
            # the kill cut short before its log line was never logged, but
            # its record was durable), and still one notice each
            harness.wait_until(lambda: not w.inst.queue_ids(), 60, "an empty queue")
            harness.wait_until(lambda: not os.listdir(os.path.join(w.inst.spool_dir, "msg")), 60,
                               "no spool file left")
            subjects = []
            for g in s.received():
                text, mb, rb, orig = report_parts(parse(g.data))
                subjects.append(mb["X-Postern-Queue-ID"])
            assert sorted(subjects) == sorted(qids), (subjects, qids)


# ------------------------------------------------------------ bad input

def test_bad_originals_still_yield_valid_notices():
    """Broken MIME, 8-bit headers, a huge header block, no header at all, a
    fake boundary in the body, a remote reply trying to inject: each notice
    parses without defects and has exactly its own three parts."""
    evil = "550 5.1.1 --=_x X-Injected: 1 Content-Type: text/html"
    with world("bbad", bounce_size_limit="100000") as w:
        with Sink(host="127.0.0.61", port=w.port, rcpt={"no@rcpt.t.test": evil}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            cases = {
                "mime": body(extra_headers=b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n",
                             text=b"--b1\r\nContent-Type: text/plain\r\n\r\nunterminated\r\n--b2--\r\n"),
                "8bit": body(subject="gr\xfc\xdfe".encode("latin-1").decode("latin-1"),
                             extra_headers="X-Name: Jürgen Größe\r\n".encode()),
                "huge": body(extra_headers=b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 60) for i in range(3000))),
                "none": b"no header line here at all\r\njust text\r\n",
                "fake": body(text=b"--=_\r\n--=_0000/00000000/x--\r\n\r\n--\r\n"),
            }
            qids = {}
            for name, data in cases.items():
                opts = ["BODY=8BITMIME"] if name == "8bit" else []
                qids[send(w, ["no@rcpt.t.test"], data=data, mail_options=opts)] = name
            for q in qids:
                wait_notice(w, q)
            got = notice_at(s, len(cases))
            seen = set()
            for g in got:
                msg = parse(g.data)
                text, mb, rb, orig = report_parts(msg)
                name = qids[mb["X-Postern-Queue-ID"]]
                seen.add(name)
                for p in msg.walk():
                    assert "X-Injected" not in p, (name, p)
                assert "X-Injected" not in msg
                assert len(rb) == 1 and rb[0]["Status"] == "5.1.1"
                assert re.sub(r"\s+", " ", rb[0]["Diagnostic-Code"]) == "smtp; " + evil
                assert orig.get_content_type() in ("message/rfc822", "text/rfc822-headers"), (name, orig.get_content_type())
                if name == "huge":
                    assert orig.get_content_type() == "text/rfc822-headers"
                    assert len(g.data) < 110000, len(g.data)
                # the last line is the one closing boundary, nothing after it
                boundary = msg.get_boundary()
                assert g.data.rstrip().endswith(("--%s--" % boundary).encode()), (name, g.data[-200:])
                assert g.data.count(("--%s--" % boundary).encode()) == 1
            assert seen == set(cases), seen


def test_smtputf8_mail_gets_global_delivery_status():
    with world("butf8") as w:
        rcpt = "jörg@rcpt.t.test"
        with Sink(host="127.0.0.61", port=w.port, rcpt={rcpt: "550 5.1.1 unknown user"}), \
                Sink(host="127.0.0.62", port=w.port) as s:
            with w.inst.smtplib() as c:
                c.command_encoding = "utf-8"
                c.ehlo("client.example")
                assert c.mail(SENDER, ["SMTPUTF8", "BODY=8BITMIME"])[0] == 250
                assert c.rcpt(rcpt)[0] == 250
                code, text = c.data(("Subject: Grüße\r\nFrom: <%s>\r\n\r\nHallo\r\n" % SENDER).encode())
                assert code == 250, text
                qid = re.search(rb"queued as ([0-9A-Z]+)", text).group(1).decode()
            wait_notice(w, qid)
            msg = parse(notice_at(s)[0].data)
            text, mb, rb, orig = report_parts(msg, global_=True)
            b = rb[0]
            assert b["Final-Recipient"] == "utf-8; " + rcpt, b["Final-Recipient"]
            assert b["Action"] == "failed"
            assert orig.get_content_type() == "message/global", orig.get_content_type()


# ------------------------------------------------------------ templates

def test_bad_template_refused_at_check_and_reload():
    import subprocess

    def postern(inst, *args):
        r = subprocess.run([harness.binary("postern"), "-c", inst.conf_path] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=harness.daemon_env(), timeout=60)
        return r.returncode, r.stdout.decode("utf-8", errors="replace")

    with harness.Instance("btmpl") as inst:
        path = os.path.join(inst.bounce_dir, "de", "failure")
        with open(path) as f:
            good = f.read()
        lines = good.split("\n")
        n = lines.index("[intro]") + 2
        lines[n - 1] = "Ihre Nachricht an {nosuch} kam nicht an."
        with open(path, "w") as f:
            f.write("\n".join(lines))
        rc, out = postern(inst, "check")
        assert rc == 1 and "%s:%d: an unknown variable" % (path, n) in out, (rc, out)
        qm = inst.pids("queue-mgr")
        off = inst.log_size()
        postern(inst, "reload")
        inst.wait_log(r"queue-mgr\[\d+\]: error: reload failed: %s:%d: an unknown variable; keeping the running configuration"
                      % (re.escape(path), n), since=off, timeout=30)
        assert inst.pids("queue-mgr") == qm
        with open(path, "w") as f:
            f.write(good)
        rc, out = postern(inst, "check")
        assert rc == 0, (rc, out)


class LocalWorld(World):
    """World with local mailboxes and an alias, written before the start."""

    def __init__(self, name, mailboxes, aliases, **conf):
        super().__init__(name, ZONE, HOSTS, **conf)
        self.maps = (mailboxes, aliases)

    def __enter__(self):
        from test_maps import _write
        self.nsd.start()
        try:
            self.inst = harness.delivery_instance(self.name, nsd=self.nsd, smtp_port=self.port,
                                                  **self.conf)
            _write(self.inst, *self.maps)
            self.inst.start()
        except BaseException:
            self.nsd.__exit__(None, None, None)
            raise
        return self


def test_notify_success_local_delivered_and_alias_expanded():
    """NOTIFY=SUCCESS to a local mailbox: "delivered"; to an alias with two
    targets: one "expanded" for the alias; to an alias with one target: a
    rewrite, so "delivered"."""
    host = harness.HOST
    boxes = "ann@%s\nbo@%s\n" % (host, host)
    aliases = "two@%s: ann, bo\none@%s: ann\n" % (host, host)
    with LocalWorld("bsuccl", boxes, aliases, bounce_language="en") as w:
        with Sink(host="127.0.0.62", port=w.port) as s:
            succ = {}
            for rcpt in ("ann", "two", "one"):
                addr = "%s@%s" % (rcpt, host)
                qid = send(w, [addr], rcpt_options={addr: ["NOTIFY=SUCCESS"]})
                w.inst.wait_log(r"%s: sender delivery status notification: [0-9A-Z]+$" % qid, timeout=60)
                succ[rcpt] = qid
            got = notice_at(s, 3)
            reported = []
            for g in got:
                msg = parse(g.data)
                assert msg["Subject"] == "Successful Mail Delivery Report", msg["Subject"]
                text, mb, rb, orig = report_parts(msg)
                reported += [(fr.lower(), b["Action"], b["Status"]) for fr, b in by_rcpt(rb).items()]
            # ann and one (a single target: ann) are delivered; two is
            # expanded once, its targets are not reported one by one
            assert sorted(reported) == [("ann@%s" % host, "delivered", "2.0.0"),
                                        ("ann@%s" % host, "delivered", "2.0.0"),
                                        ("two@%s" % host, "expanded", "2.0.0")], reported
            for qid in succ.values():
                w.inst.wait_removed(qid)
