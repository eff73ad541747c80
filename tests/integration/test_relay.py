"""
Relay control: an instance whose relay_networks excludes 127.0.0.1 must
refuse remote recipients (554 5.7.1) and accept local ones; classic tricks
to sneak a remote address past the local-domain check get no 2xx either.
"""

import re

import harness
from harness import LOCAL_RCPT, expect, queued_id


def norelay():
    return harness.shared("norelay", relay_networks="10.255.255.0/24")


def _denied(addr):
    return "554 5.7.1 <%s>: Relay access denied" % addr


def test_relay_denied_remote_domain():
    inst = norelay()
    off = inst.log_size()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<victim@remote.example>"), exact=_denied("victim@remote.example"))
        expect(c.cmd("RCPT TO:<%s>" % LOCAL_RCPT), exact="250 2.1.5 Ok")
    # SMTP.md asks for a "warning:" line naming the client; Postfix's own
    # shape is "NOQUEUE: reject: RCPT from unknown[IP]: ..." - either will do
    inst.wait_log(r"(warning: .*|reject: .*)127\.0\.0\.1.*Relay access denied|"
                  r"(warning: .*|reject: .*)Relay access denied.*127\.0\.0\.1", off,
                  what="a warning:/reject: log line naming the client and the relay refusal")


def test_relay_denied_then_local_message_queued():
    inst = norelay()
    off = inst.log_size()
    sender = "%s@example.com" % harness.token("relay")
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<other@remote.example>"), exact=_denied("other@remote.example"))
        expect(c.cmd("RCPT TO:<%s>" % LOCAL_RCPT), exact="250 2.1.5 Ok")
        qid = queued_id(c.data(harness.simple_body(sender)))
    # local mail may already be delivered, so check the queue-mgr log line
    inst.wait_log(r"%s: from=<%s>, size=\d+, nrcpt=1 \(queue active\)" % (qid, re.escape(sender)), off)


def test_relay_local_domains_any_case():
    inst = norelay()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<demo@LocalHost>"), exact="250 2.1.5 Ok")


def test_relay_only_remote_recipients_no_data():
    inst = norelay()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<x@remote.example>"), exact=_denied("x@remote.example"))
        expect(c.cmd("DATA"), exact="554 5.5.1 Error: no valid recipients")


TRICKS = [
    "@localhost:victim@remote.example",          # source route (dropped: the target is remote)
    "@localhost,@test.postern.invalid:victim@remote.example",
    "victim@remote.example.",                    # trailing dot
    "victim@remote.example@localhost",           # two @
    "\"victim@remote.example\"",                 # quoted, no domain
    "victim@[192.0.2.1]",                        # address literal elsewhere
    "victim@localhost.remote.example",           # local domain as a prefix
    "victim@remote.example localhost",           # space inside
]


def test_relay_tricks_refused():
    inst = norelay()
    bad = []
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        for t in TRICKS:
            r = c.cmd("RCPT TO:<%s>" % t)
            if r.code < 500:
                bad.append("%s -> %s" % (t, r))
        # the session is still fine
        expect(c.cmd("RCPT TO:<%s>" % LOCAL_RCPT), exact="250 2.1.5 Ok")
    if bad:
        raise AssertionError("relay tricks not refused: %s" % "; ".join(bad))


def test_relay_source_route_names_target():
    inst = norelay()
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<@localhost:victim@remote.example>"), exact=_denied("victim@remote.example"))


def test_relay_allowed_from_relay_networks():
    inst = harness.shared()          # relay_networks = 127.0.0.0/8
    with inst.client(ehlo=True) as c:
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<victim@remote.example>"), exact="250 2.1.5 Ok")


# -- the classic tricks from an outside client (issue 9, part 4): the
# client connects from 127.0.0.2, relay_networks is 127.0.0.1/32 only, so
# one instance has an outside client and a relay client side by side.

import limitsfix  # noqa: E402
from limitsfix import FromClient, auth_client, auth_instance  # noqa: E402

OUTSIDE = "127.0.0.2"


def outside_instance():
    return harness.shared("relay-outside", relay_networks="127.0.0.1/32", smtpd_greet_pause="0",
                          local_domains="localhost, " + harness.HOST, local_address_literals="127.0.0.9")


# each trick, and the remote address it aims at
CLASSIC = [
    ("victim%remote.example@localhost", "victim@remote.example"),          # percent hack
    ("VICTIM%REMOTE.EXAMPLE@LOCALHOST", "VICTIM@REMOTE.EXAMPLE"),
    ("@localhost:victim@remote.example", "victim@remote.example"),         # source route
    ("@LOCALHOST,@localhost:VICTIM@REMOTE.EXAMPLE", "VICTIM@REMOTE.EXAMPLE"),
    ("remote.example!victim@localhost", "victim@remote.example"),          # bang path
    ("REMOTE.EXAMPLE!VICTIM@LOCALHOST", "VICTIM@REMOTE.EXAMPLE"),
    ('"victim@remote.example"@localhost', "victim@remote.example"),        # quoted
    ('"VICTIM@REMOTE.EXAMPLE"@LOCALHOST', "VICTIM@REMOTE.EXAMPLE"),
    ('"victim%remote.example"@localhost', "victim@remote.example"),
    ("victim@[127.0.0.1]", None),                                          # literals of this host
    ("victim@[127.0.0.2]", None),
    ("victim@[IPv6:::1]", None),
    ("victim@[IPV6:::FFFF:127.0.0.1]", None),
    ("victim@[0.0.0.0]", None),
    ("victim@[192.0.2.1]", "victim@[192.0.2.1]"),                          # literal elsewhere
    ("victim@localhost.", None),                                           # trailing dots
    ("victim@LOCALHOST.", None),
    ("victim@remote.example.", "victim@remote.example"),
    ("VICTIM@REMOTE.EXAMPLE", "VICTIM@REMOTE.EXAMPLE"),                    # plain, upper case
    ("victim@remote.example", "victim@remote.example"),
]


def test_relay_classic_tricks_from_outside():
    """Every trick from 127.0.0.2 gets a 5xx (the routing ones and the
    literals: 554 5.7.1 Relay access denied, trailing dots 501), and a log
    line names the client; local mail from the same client is accepted."""
    inst = outside_instance()
    off = inst.log_size()
    bad = []
    with FromClient(inst.p_smtp, OUTSIDE) as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@example.com>"), exact="250 2.1.0 Ok")
        for trick, _ in CLASSIC:
            r = c.cmd("RCPT TO:<%s>" % trick)
            if trick.endswith("."):
                want = "501 5.1.3 Bad recipient address syntax"
            else:
                shown = r.last[len("554 5.7.1 <"):].split(">:")[0] if r.last.startswith("554 5.7.1 <") else trick
                want = "554 5.7.1 <%s>: Relay access denied" % shown
            if r.last != want:
                bad.append("%s -> %r (want %r)" % (trick, r.last, want))
        expect(c.cmd("RCPT TO:<%s>" % harness.LOCAL_RCPT), exact="250 2.1.5 Ok")
        expect(c.cmd("RCPT TO:<demo@[127.0.0.9]>"), exact="250 2.1.5 Ok")      # configured literal
    if bad:
        raise AssertionError("tricks from an outside client: %s" % "; ".join(bad))
    inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 <victim%remote\.example@localhost>: "
                  r"Relay access denied", off, what="the refusal of the percent hack, naming the client")


def _accepted_from_trusted(c, sender="a@example.com"):
    bad = []
    expect(c.cmd("MAIL FROM:<%s>" % sender), exact="250 2.1.0 Ok")
    targets = sorted(set(t for _, t in CLASSIC if t))
    for t in targets:
        r = c.cmd("RCPT TO:<%s>" % t)
        if r.last != "250 2.1.5 Ok":
            bad.append("%s -> %r" % (t, r.last))
    # routing in a local part is never routed, for anyone: an unknown user
    expect(c.cmd("RCPT TO:<victim%remote.example@localhost>"),
           exact="550 5.1.1 <victim%remote.example@localhost>: Recipient address rejected: User unknown")
    # a literal of this host would loop
    expect(c.cmd("RCPT TO:<victim@[127.0.0.1]>"),
           exact="550 5.4.6 <victim@[127.0.0.1]>: Recipient address rejected: mail for [127.0.0.1] loops back to myself")
    if bad:
        raise AssertionError("remote addresses refused to a trusted client: %s" % "; ".join(bad))
    return targets


def test_relay_same_targets_accepted_from_relay_networks():
    """The remote addresses the tricks aim at, from 127.0.0.1 (in
    relay_networks): accepted, and queued as given."""
    inst = outside_instance()
    sender = "%s@example.com" % harness.token("relayok")
    with inst.client(ehlo=True) as c:
        targets = _accepted_from_trusted(c)
        qid = queued_id(c.data(harness.simple_body(sender)))
    e = inst.queue_entry(qid)
    if e is None:
        raise AssertionError("message %s not queued" % qid)
    got = sorted(r["address"] for r in e["recipients"])
    if got != sorted(targets):
        raise AssertionError("queued recipients %r, expected %r" % (got, sorted(targets)))


def test_relay_same_targets_accepted_when_authenticated():
    """An authenticated user from the outside address may send to any
    remote address (skipped until the server offers AUTH)."""
    with auth_instance("relay-auth", relay_networks="127.0.0.1/32", smtpd_greet_pause="0") as inst:
        c = auth_client(inst, OUTSIDE)
        try:
            # an authenticated user sends as one of their own addresses
            _accepted_from_trusted(c, limitsfix.USER)
        finally:
            c.close()
        with FromClient(inst.p_sub, OUTSIDE) as c:
            c.ehlo()
            c.starttls()
            c.ehlo()
            r = c.cmd("MAIL FROM:<a@example.com>")
            if r.code == 250:
                expect(c.cmd("RCPT TO:<victim@remote.example>"), code=554)
