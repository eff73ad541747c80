/*
 * command.c - the SMTP command layer (command.h): RFC 5321 with
 * PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING and STARTTLS.
 *
 * Each command checks all its preconditions, replying to the first that
 * fails, and only then acts. Must never process input behind a command
 * that is waiting for another process (session_suspend), and never answer
 * 250 to DATA before queue-mgr said Q_COMMITTED.
 */
#include "command.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "authcmd.h"
#include "localrcpt.h"
#include "log.h"
#include "mapdb.h"
#include "policy.h"
#include "proto.h"
#include "qclient.h"
#include "qlink.h"
#include "qtlink.h"
#include "rcptquota.h"
#include "received.h"
#include "session.h"
#include "throttle.h"
#include "tls.h"
#include "util.h"

static const char *const cmd_names[CMD_COUNT] = {
    "helo", "ehlo", "mail", "rcpt", "data", "bdat", "rset", "vrfy", "expn",
    "noop", "quit", "help", "starttls", "auth", "unknown",
};

static const struct rcpt_checker *rcpt_checker;

#define CFG session_config()

const char *command_summary(const struct session *s, char *out, size_t outlen)
{
    size_t o = 0;
    unsigned total_ok = 0, total = 0;

    out[0] = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        if (!s->cnt_all[i])
            continue;
        total += s->cnt_all[i];
        total_ok += s->cnt_ok[i];
        if (s->cnt_ok[i] == s->cnt_all[i])
            o += (size_t)snprintf(out + o, outlen - o, " %s=%u", cmd_names[i], s->cnt_all[i]);
        else
            o += (size_t)snprintf(out + o, outlen - o, " %s=%u/%u", cmd_names[i], s->cnt_ok[i], s->cnt_all[i]);
        if (o >= outlen)
            return out;
    }
    if (total_ok == total)
        snprintf(out + o, outlen - o, " commands=%u", total);
    else
        snprintf(out + o, outlen - o, " commands=%u/%u", total_ok, total);
    return out;
}

const char *command_state_name(const struct session *s)
{
    switch (s->state) {
    case ST_DATA: return "DATA";
    case ST_BDAT: return "BDAT";
    case ST_TLS: return "STARTTLS";
    case ST_AUTH: return "AUTH";
    default: return s->txn.active ? (s->txn.env.nrcpt ? "RCPT" : "MAIL") : s->helo_kind ? "EHLO" : "CONNECT";
    }
}

/* RFC 3848 (and RFC 6531 for UTF8): S for TLS, A for AUTH. */
static const char *protocol_name(const struct session *s)
{
    static const char *const names[2][2][2] = {
        { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
        { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
    };
    int utf8 = (s->txn.env.flags & QF_SMTPUTF8) != 0;

    if (s->helo_kind == 1)
        return "SMTP";
    return names[utf8][s->c.tls_active != 0][s->auth_user != NULL];
}

/* ---- the message: queue hand-off ---- */

/* A refusal from queue-mgr, as Postfix words it: a complete phrase
 * ("452 4.3.1 Insufficient system storage") as it is, a lower-case
 * description ("queue file write error") behind "Error: ". */
static void queue_refusal(struct session *s, const char *code, const char *text)
{
    session_reply(s, "%s %s%s", code, islower((unsigned char)text[0]) ? "Error: " : "", text);
}

static void on_committed(void *arg, const struct ipc_msg *m)
{
    struct session *s = arg;
    struct txn *t = &s->txn;
    struct qc_reply r;

    if (!m || qc_parse_reply(m, m->reqid, Q_COMMITTED, &r) < 0) {
        str_copy(r.code, "451 4.3.0", sizeof(r.code));
        str_copy(r.text, "queue file write error", sizeof(r.text));
        r.type = Q_ERROR;
    }
    if (r.type == Q_COMMITTED) {
        session_reply(s, "250 2.0.0 Ok: queued as %s", t->qid);
        s->cnt_ok[t->via_bdat ? CMD_BDAT : CMD_DATA]++;
    } else {
        log_warning("%s: queue-mgr refused message from %s: %s %s", t->qid, s->name, r.code, r.text);
        queue_refusal(s, r.code, r.text);
    }
    t->qid[0] = 0; /* committed or refused by queue-mgr: nothing to abort */
    txn_reset(t);
    session_resume(s);
}

/* The end of the message: refuse it, or hand it to queue-mgr for commit. */
static void message_end(struct session *s)
{
    struct txn *t = &s->txn;
    const char *why, *refusal = txn_data_end(t, &why);
    uint32_t id;

    s->state = ST_CMD;
    if (refusal) {
        log_warning("%s: %s from %s; message not queued", t->qid, why, s->name);
        session_reply(s, "%s", refusal);
        txn_reset(t);
        return;
    }
    if (t->spool_gen != qlink_generation() || !qlink_up()) {
        log_warning("%s: queue-mgr restarted during the transaction from %s", t->qid, s->name);
        session_reply(s, "451 4.3.0 Error: queue file write error");
        t->qid[0] = 0;
        txn_reset(t);
        return;
    }
    str_copy(t->env.qid, t->qid, sizeof(t->env.qid));
    str_copy(t->env.helo, s->helo, sizeof(t->env.helo));
    str_copy(t->env.client_addr, s->addr, sizeof(t->env.client_addr));
    str_copy(t->env.client_name, "unknown", sizeof(t->env.client_name));
    str_copy(t->env.proto, protocol_name(s), sizeof(t->env.proto));
    str_copy(t->env.auth, s->auth_user ? s->auth_user : "", sizeof(t->env.auth));
    id = qlink_commit(&t->env, on_committed, s);
    if (!id) {
        session_reply(s, "451 4.3.0 Error: queue file write error");
        txn_reset(t);
        return;
    }
    session_suspend(s, qlink_cancel, id);
}

static void bdat_chunk_done(struct session *s)
{
    struct txn *t = &s->txn;

    if (t->bdat_discard) {
        t->bdat_discard = 0;
        s->state = ST_CMD;
        return;
    }
    if (!t->bdat_last) {
        if (t->poison != P_NONE) {
            message_end(s); /* replies with the reason and resets */
            return;
        }
        session_reply(s, "250 2.0.0 Ok: %llu octets", (unsigned long long)t->bdat_chunk);
        s->state = ST_CMD;
        return;
    }
    txn_bdat_finish(t);
    message_end(s);
}

/* The From: check of submission: the sender binding's rule. */
static int from_owned(void *arg, const struct addr *a)
{
    return authcmd_sender_owned(arg, a);
}

static void on_opened(void *arg, const struct ipc_msg *m)
{
    struct session *s = arg;
    struct txn *t = &s->txn;
    struct qc_reply q;
    char hdr[1400], tls[200];
    struct received_smtp r;
    int n;

    if (!m || m->fd < 0 || qc_parse_reply(m, m->reqid, Q_OPENED, &q) < 0 || q.type != Q_OPENED) {
        int refused = m && m->fd < 0 && qc_parse_reply(m, m->reqid, Q_OPENED, &q) == 0 && q.type == Q_ERROR;

        if (m && m->fd >= 0)
            close(m->fd);
        if (!m && !t->open_retried) {
            /* sent on a link that was up, and the link went while the
             * request was out (queue-mgr died before smtpd saw its end of
             * the socket close): asked again, it waits up to
             * QLINK_WAIT_MS for the restarted queue-mgr */
            uint32_t id;
            t->open_retried = 1;
            if ((id = qlink_open(on_opened, s)) != 0) {
                session_suspend(s, qlink_cancel, id);
                return;
            }
        }
        if (refused) {
            log_warning("no queue file for %s: queue-mgr refused: %s %s", s->name, q.code, q.text);
            queue_refusal(s, q.code, q.text);
        } else {
            log_warning("no queue file for %s: queue-mgr %s", s->name, m ? "refused" : "unavailable");
            session_reply(s, "451 4.3.0 Error: queue file write error");
        }
        if (t->via_bdat)
            t->bdat_discard = 1, s->state = ST_BDAT, t->active = 0;
        else
            s->state = ST_CMD;
        session_resume(s);
        return;
    }
    if (s->auth_user)
        log_info("%s: client=%s, sasl_method=%s, sasl_username=%s", q.qid, s->name, s->auth_mech, s->auth_user);
    else
        log_info("%s: client=%s", q.qid, s->name);
    if (s->c.tls_active)
        conn_tls_describe(&s->c, tls, sizeof(tls));
    r = (struct received_smtp){
        .helo = s->helo, .addr = s->addr, .tls = s->c.tls_active ? tls : NULL, .host = CFG->hostname,
        .proto = protocol_name(s), .qid = q.qid, .rcpt = t->env.nrcpt == 1 ? t->env.rcpt[0].addr : NULL,
        .when = time(NULL), .hide_addr = s->port != PORT_SMTP && CFG->submission_hide_client,
    };
    n = received_smtp(hdr, sizeof(hdr), &r);
    txn_spool_open(t, q.qid, m->fd, qlink_generation(), hdr, n > 0 ? (size_t)n : 0);
    if (s->port != PORT_SMTP)
        txn_submission(t, CFG->hostname, CFG->submission_check_from ? from_owned : NULL, s);
    if (t->via_bdat) {
        s->state = ST_BDAT;
    } else {
        session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
        s->state = ST_DATA;
        lr_set_max(&s->lr, CFG->smtpd_max_line);
    }
    session_resume(s);
}

static int message_begin(struct session *s)
{
    uint32_t id;

    /* asked while the link is down, the request waits for it already: no
     * second try after that wait (on_opened) */
    s->txn.open_retried = !qlink_up();
    id = qlink_open(on_opened, s);

    if (!id) {
        log_warning("queue-mgr unavailable; refusing message from %s", s->name);
        session_reply(s, "451 4.3.0 Error: queue file write error");
        return -1;
    }
    session_suspend(s, qlink_cancel, id);
    return 0;
}

/* ---- commands ---- */

static void cmd_helo(struct session *s, int kind, const char *arg)
{
    char clean[256];

    if (!*arg) {
        session_reply(s, "501 5.5.4 Syntax: %s hostname", kind == CMD_EHLO ? "EHLO" : "HELO");
        return;
    }
    log_sanitize(arg, strlen(arg), clean, sizeof(clean));
    /* A HELO name goes into Received:, so no spaces or parentheses. */
    for (char *p = clean; *p; p++)
        if (*p == ' ' || *p == '(' || *p == ')' || *p == '\t')
            *p = '?';
    txn_reset(&s->txn);
    str_copy(s->helo, clean, sizeof(s->helo));
    s->helo_kind = kind == CMD_EHLO ? 2 : 1;
    if (kind == CMD_HELO) {
        session_reply(s, "250 %s", CFG->hostname);
    } else {
        buf_printf(&s->c.out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n"
                   "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n",
                   CFG->hostname, (unsigned long long)CFG->max_message_size);
        if (!s->c.tls_active && tls_available())
            buf_printf(&s->c.out, "250-STARTTLS\r\n");
        if (authcmd_offered(s))
            buf_printf(&s->c.out, "250-AUTH PLAIN LOGIN\r\n");
        session_reply(s, "250 CHUNKING");
    }
    s->cnt_ok[kind]++;
}

static int need_helo(struct session *s)
{
    if (!s->helo_kind) {
        session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return 1;
    }
    return 0;
}

/* "FROM:<path> params" or "TO:<path> params": the path into a, and the
 * parameters that follow it; NULL after replying. */
static char *parse_path(struct session *s, char *arg, const char *prefix, unsigned flags, struct addr *a,
                        const char *syntax, const char *bad)
{
    const char *rest = str_prefix_ci(arg, prefix);
    size_t end;

    if (!rest) {
        session_reply(s, "%s", syntax);
        return NULL;
    }
    while (*rest == ' ')
        rest++;
    if (addr_parse_path(rest, strlen(rest), flags, a, &end) != ADDR_OK || (rest[end] != 0 && rest[end] != ' ')) {
        session_reply(s, "%s", bad);
        return NULL;
    }
    return (char *)rest + end;
}

static void cmd_mail(struct session *s, char *arg)
{
    struct addr a;
    char err[TXN_REPLY_MAX], *params;
    const char *why;
    int utf8, owned;
    uint64_t size;

    if (need_helo(s))
        return;
    if ((why = authcmd_mail_refusal(s))) {
        session_reply(s, "%s", why);
        return;
    }
    if (s->txn.active) {
        session_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    params = parse_path(s, arg, "FROM:", ADDR_ALLOW_EMPTY | ADDR_UTF8, &a, "501 5.5.4 Syntax: MAIL FROM:<address>",
                        "501 5.1.7 Bad sender address syntax");
    if (!params)
        return;
    /* sender binding: an authenticated user sends only as themselves */
    if (s->auth_user && (owned = authcmd_sender_owned(s, &a)) != 1) {
        if (owned < 0) {
            session_reply(s, "451 4.3.0 <%s>: Sender address rejected: Temporary lookup failure", a.mailbox);
            return;
        }
        log_info("NOQUEUE: reject: MAIL from %s: 553 5.7.1 <%s>: Sender address rejected: not owned by user %s; "
                 "from=<%s> proto=%s helo=<%s>", s->name, a.mailbox, s->auth_user, a.mailbox, protocol_name(s), s->helo);
        session_reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user", a.mailbox);
        return;
    }
    txn_reset(&s->txn);
    if (txn_mail_params(&s->txn, params, &size, &utf8, err, sizeof(err)) < 0) {
        session_reply(s, "%s", err);
        return;
    }
    if (a.is_utf8 && !utf8) {
        session_reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
        return;
    }
    if (size > CFG->max_message_size) {
        log_info("NOQUEUE: reject: MAIL from %s: 552 5.3.4 Message size exceeds fixed limit; size=%llu",
                 s->name, (unsigned long long)size);
        session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    if (throttle_mail(s, err, sizeof(err)) < 0) {
        session_reply(s, "%s", err);
        return;
    }
    txn_mail(&s->txn, a.mailbox, utf8, CFG->max_message_size);
    s->cnt_ok[CMD_MAIL]++;
    session_reply(s, "250 2.1.0 Ok");
}

/* A refused recipient: the Postfix-shaped log line, then the reply. */
static void rcpt_reject(struct session *s, const char *mailbox, const char *refusal)
{
    log_info("NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
             s->name, refusal, s->txn.env.sender, mailbox, protocol_name(s), s->helo);
    session_reply(s, "%s", refusal);
}

/* The recipient just added is a mailbox with a quota: refused at once when
 * SIZE= alone exceeds it, else the local role is asked (the session waits
 * for command_quota_answer). 1 when it replied or suspended, 0 to go on. */
static int rcpt_quota(struct session *s, const char *mailbox, const char *key, const struct mapdb_quota *q)
{
    char refusal[TXN_REPLY_MAX + ADDR_MAX];
    uint32_t id;

    if (rcptquota_at_rcpt(q, s->txn.size_param, mailbox, refusal, sizeof(refusal)) == RQ_REFUSE) {
        txn_drop_last_rcpt(&s->txn);
        rcpt_reject(s, mailbox, refusal);
        return 1;
    }
    if (q->bytes && txn_set_rcpt_quota(&s->txn, q->bytes) < 0)
        log_warning("out of memory: the quota of <%s> is not checked at the end of DATA", mailbox);
    id = qtlink_ask(key, s->txn.size_param, s);
    if (!id)
        return 0; /* no answer to wait for: accepted, delivery enforces */
    session_suspend(s, qtlink_cancel, id);
    return 1;
}

void command_quota_answer(void *arg, const struct quota_answer *qa)
{
    struct session *s = arg;
    char refusal[TXN_REPLY_MAX + ADDR_MAX];
    const char *mailbox = s->txn.env.nrcpt ? s->txn.env.rcpt[s->txn.env.nrcpt - 1].addr : "";
    const char *r = rcptquota_answer(qa, mailbox, refusal, sizeof(refusal));

    if (r) {
        rcpt_reject(s, mailbox, r);
        txn_drop_last_rcpt(&s->txn);
    } else {
        s->cnt_ok[CMD_RCPT]++;
        session_reply(s, "250 2.1.5 Ok");
    }
    session_resume(s);
}

static void cmd_rcpt(struct session *s, char *arg)
{
    struct addr a;
    char *params, orcpt[QREC_ORCPT_MAX + 1], err[TXN_REPLY_MAX];
    char refusal[TXN_REPLY_MAX + ADDR_MAX], key[MAPDB_KEY_MAX];
    struct mapdb_quota quota;
    int has_quota = 0;
    unsigned notify;
    enum policy_verdict verdict;

    if (need_helo(s))
        return;
    if (!s->txn.active) {
        session_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    params = parse_path(s, arg, "TO:", ADDR_ALLOW_POSTMASTER | ADDR_UTF8, &a, "501 5.5.4 Syntax: RCPT TO:<address>",
                        "501 5.1.3 Bad recipient address syntax");
    if (!params)
        return;
    if (txn_rcpt_params(params, &notify, orcpt, sizeof(orcpt), err, sizeof(err)) < 0) {
        session_reply(s, "%s", err);
        return;
    }
    if (a.is_utf8 && !(s->txn.env.flags & QF_SMTPUTF8)) {
        session_reply(s, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8");
        return;
    }
    if (s->txn.env.nrcpt >= CFG->max_recipients) {
        session_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (throttle_rcpt(s, err, sizeof(err)) < 0) {
        session_reply(s, "%s", err);
        return;
    }
    verdict = policy_rcpt(CFG, policy_trusted(CFG, (const struct sockaddr *)&s->peer, s->auth_user), s->c.fd, &a);
    if (verdict == POLICY_DENIED || verdict == POLICY_LOOP) {
        if (verdict == POLICY_DENIED)
            snprintf(refusal, sizeof(refusal), "554 5.7.1 <%s>: Relay access denied", a.mailbox);
        else
            snprintf(refusal, sizeof(refusal), "550 5.4.6 <%s>: Recipient address rejected: mail for %s loops back to myself",
                     a.mailbox, a.domain);
        rcpt_reject(s, a.mailbox, refusal);
        return;
    }
    if (verdict == POLICY_LOCAL && a.domain[0]) {
        if (localrcpt_check(CFG, &a, refusal, sizeof(refusal))) {
            rcpt_reject(s, a.mailbox, refusal);
            return;
        }
        has_quota = localrcpt_quota(CFG, &a, key, sizeof(key), &quota);
        if (has_quota < 0)
            log_warning("the quota of <%s> cannot be read from the map; checked at delivery only", a.mailbox);
    }
    if (txn_add_rcpt(&s->txn, a.mailbox, notify, orcpt, CFG->max_recipients, err, sizeof(err)) < 0) {
        session_reply(s, "%s", err);
        return;
    }
    if (has_quota > 0 && rcpt_quota(s, a.mailbox, key, &quota))
        return;
    if (rcpt_checker) {
        /* Held as added; command_rcpt_checked() takes it back if refused. */
        uint32_t id = rcpt_checker->start(s, a.mailbox);
        if (!id) {
            txn_drop_last_rcpt(&s->txn);
            session_reply(s, "451 4.3.0 Error: recipient check unavailable");
            return;
        }
        session_suspend(s, rcpt_checker->cancel, id);
        return;
    }
    s->cnt_ok[CMD_RCPT]++;
    session_reply(s, "250 2.1.5 Ok");
}

void command_set_rcpt_checker(const struct rcpt_checker *c)
{
    rcpt_checker = c;
}

void command_rcpt_checked(struct session *s, const char *refusal)
{
    if (refusal) {
        txn_drop_last_rcpt(&s->txn);
        session_reply(s, "%s", refusal);
    } else {
        s->cnt_ok[CMD_RCPT]++;
        session_reply(s, "250 2.1.5 Ok");
    }
    session_resume(s);
}

/* The address of VRFY or EXPN: 0 local, 1 remote, -1 after a 501. */
static int vrfy_expn_arg(struct session *s, const char *verb, const char *arg, struct addr *a)
{
    int r;

    if (!*arg) {
        session_reply(s, "501 5.5.4 Syntax: %s address", verb);
        return -1;
    }
    r = localrcpt_parse_arg(CFG, arg, a);
    if (r < 0)
        session_reply(s, "501 5.1.3 Bad recipient address syntax");
    return r;
}

/* VRFY: 252 revealing nothing, or with vrfy = reveal 250/550 for local
 * addresses (252 for others: they cannot be verified here). */
static void cmd_vrfy(struct session *s, const char *arg)
{
    char refusal[TXN_REPLY_MAX + ADDR_MAX];
    struct addr a;
    int r;

    if (CFG->vrfy != CONF_VRFY_REVEAL) {
        if (!*arg) {
            session_reply(s, "501 5.5.4 Syntax: VRFY address");
            return;
        }
        s->cnt_ok[CMD_VRFY]++;
        session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
        return;
    }
    r = vrfy_expn_arg(s, "VRFY", arg, &a);
    if (r < 0)
        return;
    if (r > 0) {
        s->cnt_ok[CMD_VRFY]++;
        session_reply(s, "252 2.0.0 <%s>: cannot verify a remote address, but will accept message and attempt delivery",
                      a.mailbox);
        return;
    }
    if (localrcpt_check(CFG, &a, refusal, sizeof(refusal))) {
        session_reply(s, "%s", refusal);
        return;
    }
    s->cnt_ok[CMD_VRFY]++;
    session_reply(s, "250 2.0.0 <%s>", a.mailbox);
}

/* EXPN: 502, or with expn = relay_networks, to those clients, an alias's
 * members (multi-line 250) or a mailbox's own address. */
static void cmd_expn(struct session *s, const char *arg)
{
    char key[MAPDB_KEY_MAX];
    const char *mem = NULL;
    size_t mlen = 0;
    struct addr a;
    int r;

    if (CFG->expn != CONF_EXPN_RELAY || !cidr_list_match(&CFG->relay_networks, (const struct sockaddr *)&s->peer)) {
        session_reply(s, "502 5.5.1 Error: EXPN not available");
        return;
    }
    r = vrfy_expn_arg(s, "EXPN", arg, &a);
    if (r < 0)
        return;
    if (r > 0) {
        session_reply(s, "252 2.0.0 <%s>: cannot expand a remote address", a.mailbox);
        return;
    }
    r = localrcpt_expand(CFG, &a, key, sizeof(key), &mem, &mlen);
    if (r == MAPDB_NONE) {
        session_reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", a.mailbox);
        return;
    }
    if (r < 0) {
        session_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", a.mailbox);
        return;
    }
    s->cnt_ok[CMD_EXPN]++;
    if (r == MAPDB_MAILBOX || mlen == 0) {
        session_reply(s, "250 2.1.5 <%s>", key);
        return;
    }
    /* members: NUL-terminated strings, each already an address the
     * compiler checked */
    for (size_t o = 0; o < mlen;) {
        const char *m = mem + o, *end = memchr(m, 0, mlen - o);
        if (!end)
            break;
        o = (size_t)(end - mem) + 1;
        if (o < mlen)
            buf_printf(&s->c.out, "250-2.1.5 <%s>\r\n", m);
        else
            session_reply(s, "250 2.1.5 <%s>", m);
    }
}

static int txn_ready(struct session *s)
{
    if (need_helo(s))
        return 0;
    if (!s->txn.active) {
        session_reply(s, "503 5.5.1 Error: need RCPT command");
        return 0;
    }
    if (s->txn.env.nrcpt == 0) {
        session_reply(s, "554 5.5.1 Error: no valid recipients");
        return 0;
    }
    return 1;
}

static void cmd_data(struct session *s, const char *arg)
{
    if (*arg) {
        session_reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (s->txn.via_bdat) {
        session_reply(s, "503 5.5.1 Error: DATA after BDAT in the same transaction");
        return;
    }
    if (!txn_ready(s))
        return;
    message_begin(s);
}

/* Returns 0 to go on, -1 when the connection must close. */
static int cmd_bdat(struct session *s, const char *arg)
{
    struct txn *t = &s->txn;
    char tmp[64], *last;
    uint64_t size;

    if (strlen(arg) >= sizeof(tmp))
        goto syntax;
    str_copy(tmp, arg, sizeof(tmp));
    last = strchr(tmp, ' ');
    if (last) {
        *last++ = 0;
        while (*last == ' ')
            last++;
        if (strcasecmp(last, "LAST") != 0)
            goto syntax;
    }
    if (parse_u64(tmp, &size) < 0 || strlen(tmp) > 18)
        goto syntax;
    t->bdat_left = size;
    t->bdat_chunk = size;
    t->bdat_last = last != NULL;
    s->state = ST_BDAT;
    if (t->via_bdat)
        return 0; /* a further chunk of the open transaction */
    /* Refused chunks are still read, so their bytes are never commands. */
    if (!txn_ready(s)) {
        t->bdat_discard = 1;
        return 0;
    }
    t->via_bdat = 1;
    t->bdat_lr = malloc(sizeof(*t->bdat_lr));
    if (!t->bdat_lr) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        txn_reset(t);
        t->bdat_discard = 1;
        return 0;
    }
    lr_init(t->bdat_lr, CFG->smtpd_max_line);
    if (message_begin(s) < 0) {
        txn_reset(t);
        t->bdat_discard = 1;
    }
    return 0;
syntax:
    /* Without a size we cannot tell data from commands: stop here. */
    session_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
    s->state = ST_CLOSE;
    return -1;
}

static void cmd_starttls(struct session *s, const char *arg)
{
    if (*arg) {
        session_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (s->c.tls_active) {
        session_reply(s, "554 5.5.1 Error: TLS already active");
        return;
    }
    if (!tls_available()) {
        session_reply(s, "454 4.7.0 TLS not available");
        return;
    }
    session_reply(s, "220 2.0.0 Ready to start TLS");
    s->cnt_ok[CMD_STARTTLS]++;
    s->tls_start_pending = 1;
    s->state = ST_TLS;
}

/* The command table: verb, id. */
static const struct { const char *name; size_t len; int id; } verbs[] = {
#define VERB(n, id) { n, sizeof(n) - 1, id }
    VERB("HELO", CMD_HELO), VERB("EHLO", CMD_EHLO), VERB("MAIL", CMD_MAIL), VERB("RCPT", CMD_RCPT),
    VERB("DATA", CMD_DATA), VERB("BDAT", CMD_BDAT), VERB("RSET", CMD_RSET), VERB("VRFY", CMD_VRFY),
    VERB("EXPN", CMD_EXPN), VERB("NOOP", CMD_NOOP), VERB("QUIT", CMD_QUIT), VERB("HELP", CMD_HELP),
    VERB("STARTTLS", CMD_STARTTLS), VERB("AUTH", CMD_AUTH),
#undef VERB
};

static void command(struct session *s, const char *line, size_t len, unsigned flags)
{
    char buf[CMD_LINE_MAX_EXT + 1], *arg;
    size_t n = len, vlen;
    int id = CMD_UNKNOWN;

    /* Strip the line end; never more than the buffer (the reader's limit
     * in command mode is CMD_LINE_MAX_EXT, this is belt and braces). */
    if (n > CMD_LINE_MAX_EXT)
        n = CMD_LINE_MAX_EXT;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    memcpy(buf, line, n);
    buf[n] = 0;
    for (vlen = 0; vlen < n && buf[vlen] != ' '; vlen++)
        ;
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (vlen == verbs[i].len && !strncasecmp(buf, verbs[i].name, vlen))
            id = verbs[i].id;
    s->cnt_all[id]++;
    if (flags & LR_TOOLONG || (len > CMD_LINE_MAX && id != CMD_MAIL && id != CMD_RCPT && id != CMD_AUTH)) {
        log_warning("command line too long from %s", s->name);
        session_reply(s, "500 5.5.2 Error: command line too long");
        return;
    }
    if (flags & (LR_NUL | LR_BARE_CR)) {
        log_warning("bad character in command from %s", s->name);
        session_reply(s, "500 5.5.2 Error: bad character in command");
        return;
    }
    arg = buf + vlen;
    while (*arg == ' ')
        arg++;
    switch (id) {
    case CMD_HELO:
    case CMD_EHLO: cmd_helo(s, id, arg); break;
    case CMD_MAIL: cmd_mail(s, arg); break;
    case CMD_RCPT: cmd_rcpt(s, arg); break;
    case CMD_DATA: cmd_data(s, arg); break;
    case CMD_BDAT: cmd_bdat(s, arg); break;
    case CMD_RSET:
        txn_reset(&s->txn);
        s->cnt_ok[id]++;
        session_reply(s, "250 2.0.0 Ok");
        break;
    case CMD_NOOP:
        s->cnt_ok[id]++;
        session_reply(s, "250 2.0.0 Ok");
        break;
    case CMD_VRFY: cmd_vrfy(s, arg); break;
    case CMD_EXPN: cmd_expn(s, arg); break;
    case CMD_HELP:
        s->cnt_ok[id]++;
        session_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET VRFY EXPN NOOP QUIT HELP STARTTLS AUTH");
        break;
    case CMD_QUIT:
        s->cnt_ok[id]++;
        session_reply(s, "221 2.0.0 Bye");
        s->state = ST_CLOSE;
        break;
    case CMD_STARTTLS: cmd_starttls(s, arg); break;
    case CMD_AUTH: authcmd_command(s, arg); break;
    default: {
        char clean[64];
        log_warning("unknown command \"%s\" from %s", log_sanitize(buf, n < 40 ? n : 40, clean, sizeof(clean)), s->name);
        session_reply(s, "502 5.5.2 Error: command not recognized");
    }
    }
}

/* ---- input, by state ---- */

size_t command_input(struct session *s, const char *data, size_t n)
{
    struct txn *t = &s->txn;
    const char *p = data, *line;
    size_t left = n, len;
    unsigned flags;

    while (!session_paused(s)) {
        if (s->state == ST_AUTH) {
            size_t used = left ? authcmd_input(s, p, left) : 0;
            if (used == 0)
                break;
            p += used;
            left -= used;
            continue;
        }
        if (s->state == ST_BDAT) {
            size_t take;
            if (t->bdat_left == 0) {
                bdat_chunk_done(s); /* always leaves ST_BDAT */
                continue;
            }
            if (left == 0)
                break;
            take = left < t->bdat_left ? left : (size_t)t->bdat_left;
            txn_bdat_bytes(t, p, take);
            p += take;
            left -= take;
            t->bdat_left -= take;
            continue;
        }
        if (left == 0 || lr_next(&s->lr, &p, &left, &line, &len, &flags) == 0)
            break;
        if (s->state != ST_DATA)
            command(s, line, len, flags);
        else if (txn_data_line(t, line, len, flags)) {
            lr_set_max(&s->lr, CMD_LINE_MAX_EXT);
            message_end(s);
        }
    }
    return n - left;
}
