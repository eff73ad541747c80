/*
 * qrecord.c - encoding and validation of queue records (qrecord.h).
 *
 * A record reaches qrec_decode() from LMDB, from smtpd or sendmail (Q_COMMIT)
 * and from queue-mgr (Q_LIST_ITEM), so it is parsed as hostile input: every
 * known field is checked for size, range and content, every address goes
 * through the one address parser, duplicated fields and unbounded counts are
 * refused, and nothing is allocated before the recipient count is known to
 * be within QREC_MAX_RCPT. Unknown tags are skipped so that a newer writer's
 * additions do not make the queue unreadable. Never trust a record because
 * it came from another Postern process.
 */
#include "qrecord.h"

#include "dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "util.h"

void qrec_init(struct qrec *r)
{
    memset(r, 0, sizeof(*r));
    r->version = QREC_VERSION;
    r->uid = -1;
    r->rcpt = NULL;
}

void qrcpt_free(struct qrcpt *rc)
{
    free(rc->addr);
    free(rc->orcpt);
    free(rc->reply);
    free(rc->relay);
    free(rc->alias);
    rc->addr = rc->orcpt = rc->reply = rc->relay = rc->alias = NULL;
}

void qrec_free(struct qrec *r)
{
    for (size_t i = 0; i < r->nrcpt; i++)
        qrcpt_free(&r->rcpt[i]);
    free(r->rcpt);
    r->rcpt = NULL;
    r->nrcpt = 0;
}

/*
 * The rcpt array always has room for rcpt_cap(nrcpt) entries: the smallest
 * power of two (at least 4) not below nrcpt. That keeps appends amortised
 * O(1) without a capacity field in struct qrec.
 */
static size_t rcpt_cap(size_t n)
{
    size_t c = 4;

    while (c < n)
        c *= 2;
    return c;
}

static int rcpt_reserve(struct qrec *r, size_t n)
{
    struct qrcpt *p;
    size_t have = r->rcpt ? rcpt_cap(r->nrcpt) : 0, want = rcpt_cap(n);

    if (n > QREC_MAX_RCPT)
        return -1;
    if (want <= have)
        return 0;
    p = realloc(r->rcpt, want * sizeof(*p));
    if (!p)
        return -1;
    r->rcpt = p;
    return 0;
}

int qrec_add_rcpt(struct qrec *r, const char *addr)
{
    struct qrcpt *rc;

    if (strlen(addr) > ADDR_MAX || rcpt_reserve(r, r->nrcpt + 1) < 0)
        return -1;
    rc = &r->rcpt[r->nrcpt];
    memset(rc, 0, sizeof(*rc));
    if (!(rc->addr = strdup(addr)))
        return -1;
    r->nrcpt++;
    return 0;
}

int qrcpt_set(char **field, const char *s, size_t max)
{
    char *copy = NULL;

    if (s && *s) {
        if (strlen(s) > max || !(copy = strdup(s)))
            return -1;
    }
    free(*field);
    *field = copy;
    return 0;
}

/* ---- encoding ---- */

static void out_str_opt(struct ipc_out *m, uint16_t tag, const char *s)
{
    if (*s)
        ipc_out_str(m, tag, s);
}

/* Recipient numbers that are 0 are left out too (0 is what a decoder
 * assumes): a new recipient then costs its address and 12 bytes, so that
 * QREC_MAX_RCPT recipients fit in one IPC_MAX_BODY frame. */
static void out_u64_opt(struct ipc_out *m, uint16_t tag, uint64_t v)
{
    if (v)
        ipc_out_u64(m, tag, v);
}

void qrec_encode_envelope(const struct qrec *r, struct ipc_out *m)
{
    ipc_out_u64(m, T_VERSION, QREC_VERSION);
    out_str_opt(m, T_QID, r->qid);
    /* Always present, even empty: "" is the null reverse-path, not "unknown". */
    ipc_out_str(m, T_SENDER, r->sender);
    out_str_opt(m, T_ENVID, r->envid);
    ipc_out_u64(m, T_RET, r->ret);
    ipc_out_u64(m, T_BODY, r->body);
    ipc_out_u64(m, T_FLAGS, r->flags);
    out_str_opt(m, T_AUTH, r->auth);
    out_str_opt(m, T_HELO, r->helo);
    out_str_opt(m, T_CLIENT_ADDR, r->client_addr);
    out_str_opt(m, T_CLIENT_NAME, r->client_name);
    out_str_opt(m, T_PROTO, r->proto);
    out_str_opt(m, T_ORIGIN, r->origin);
    if (r->uid >= 0)
        ipc_out_u64(m, T_UID, (uint64_t)r->uid);
    ipc_out_u64(m, T_ARRIVAL, r->arrival);
    ipc_out_u64(m, T_SIZE, r->size);
    out_u64_opt(m, T_NOTICE_KIND, r->notice_kind);
}

void qrcpt_encode(const struct qrcpt *rc, struct ipc_out *m)
{
    ipc_out_str(m, T_R_ADDR, rc->addr ? rc->addr : "");
    out_str_opt(m, T_R_ORCPT, rc->orcpt ? rc->orcpt : "");
    out_u64_opt(m, T_R_NOTIFY, rc->notify);
    out_u64_opt(m, T_R_STATUS, rc->status);
    out_u64_opt(m, T_R_ATTEMPTS, rc->attempts);
    out_u64_opt(m, T_R_NEXT_TRY, rc->next_try);
    out_str_opt(m, T_R_DSN, rc->dsn);
    out_str_opt(m, T_R_REPLY, rc->reply ? rc->reply : "");
    out_u64_opt(m, T_R_NOTICE, rc->notice);
    out_str_opt(m, T_R_RELAY, rc->relay ? rc->relay : "");
    out_str_opt(m, T_R_ALIAS, rc->alias ? rc->alias : "");
}

void qrec_encode(const struct qrec *r, struct ipc_out *m)
{
    qrec_encode_envelope(r, m);
    for (size_t i = 0; i < r->nrcpt && !m->failed; i++) {
        struct ipc_out in;

        ipc_body_begin(&in);
        qrcpt_encode(&r->rcpt[i], &in);
        ipc_out_nested(m, T_RCPT, &in);
        ipc_out_free(&in);
    }
}

/* ---- decoding ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *tag_name(uint16_t tag)
{
    switch (tag) {
    case T_VERSION: return "version";
    case T_QID: return "queue id";
    case T_SENDER: return "sender";
    case T_RCPT: return "recipient";
    case T_ENVID: return "envid";
    case T_RET: return "ret";
    case T_BODY: return "body";
    case T_FLAGS: return "flags";
    case T_AUTH: return "auth";
    case T_HELO: return "helo";
    case T_CLIENT_ADDR: return "client address";
    case T_CLIENT_NAME: return "client name";
    case T_PROTO: return "proto";
    case T_UID: return "uid";
    case T_ARRIVAL: return "arrival";
    case T_SIZE: return "size";
    case T_ORIGIN: return "origin";
    case T_R_ADDR: return "recipient address";
    case T_R_ORCPT: return "orcpt";
    case T_R_NOTIFY: return "notify";
    case T_R_STATUS: return "status";
    case T_R_ATTEMPTS: return "attempts";
    case T_R_NEXT_TRY: return "next try";
    case T_R_DSN: return "dsn";
    case T_R_REPLY: return "reply";
    case T_R_NOTICE: return "notice";
    case T_R_RELAY: return "relay";
    case T_NOTICE_KIND: return "notice kind";
    case T_R_ALIAS: return "alias";
    }
    return "field";
}

/* Each known tag may appear once per record (T_RCPT aside) or per recipient. */
static int seen_once(uint64_t *seen, uint16_t tag)
{
    uint64_t bit = (uint64_t)1 << (tag & 63);

    if (*seen & bit)
        return -1;
    *seen |= bit;
    return 0;
}

/*
 * Checks that s is a whole RFC 5321 mailbox as our parser would have stored
 * it: wrapped in <> it parses, to its last byte, with no source route left
 * and no rewriting. Returns NULL or the reason.
 */
static const char *check_mailbox(const char *s, unsigned flags)
{
    char path[ADDR_MAX + 3];
    struct addr a;
    size_t n = strlen(s), end;
    enum addr_error e;

    if (n > ADDR_MAX)
        return "address too long";
    path[0] = '<';
    memcpy(path + 1, s, n);
    path[n + 1] = '>';
    e = addr_parse_path(path, n + 2, flags, &a, &end);
    if (e != ADDR_OK)
        return addr_strerror(e);
    if (end != n + 2)
        return "bad address syntax";
    if (strcmp(a.mailbox, s) != 0 &&
        !(a.domain[0] == 0 && strcasecmp(a.mailbox, s) == 0)) /* <postmaster> */
        return "address not in canonical form";
    return NULL;
}

/* RFC 3463 status "class.subject.detail": 2, 4 or 5, then 1-3 digits each. */
static int valid_dsn(const char *s)
{
    int n;

    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    if (s[1] != '.')
        return 0;
    s += 2;
    for (int part = 0; part < 2; part++) {
        for (n = 0; *s >= '0' && *s <= '9'; s++)
            n++;
        if (n < 1 || n > 3)
            return 0;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == 0;
}

static int get_u64_max(const struct ipc_field *f, uint64_t max, uint64_t *out)
{
    return ipc_field_u64(f, out) < 0 || *out > max ? -1 : 0;
}

/* A text field as a string of its own length; NULL for "". -1 if bad. */
static int field_strdup(const struct ipc_field *f, size_t max, char **out)
{
    char tmp[QREC_REPLY_MAX + 1];

    if (max >= sizeof(tmp) || ipc_field_str(f, tmp, max + 1) < 0)
        return -1;
    return qrcpt_set(out, tmp, max);
}

static int decode_rcpt_fields(const struct ipc_field *outer, size_t idx, struct qrcpt *rc,
                              char *err, size_t errlen);

/* Printable ASCII only (a relay name goes into notices and logs). */
static int text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static int decode_rcpt(const struct ipc_field *outer, size_t idx, struct qrcpt *rc,
                       char *err, size_t errlen)
{
    memset(rc, 0, sizeof(*rc));
    if (decode_rcpt_fields(outer, idx, rc, err, errlen) < 0) {
        qrcpt_free(rc);
        return -1;
    }
    return 0;
}

static int decode_rcpt_fields(const struct ipc_field *outer, size_t idx, struct qrcpt *rc,
                              char *err, size_t errlen)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t seen = 0, v;
    int r;

    ipc_iter_init(&it, outer->val, outer->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        int bad = 0;

        if ((f.tag < T_R_ADDR || f.tag > T_R_REPLY) &&
            (f.tag < T_R_NOTICE || f.tag > T_R_RELAY) && f.tag != T_R_ALIAS)
            continue; /* unknown: skipped */
        if (seen_once(&seen, f.tag) < 0)
            return fail(err, errlen, "recipient %zu: duplicate field: %s", idx, tag_name(f.tag));
        switch (f.tag) {
        case T_R_ADDR:
            bad = field_strdup(&f, ADDR_MAX, &rc->addr);
            break;
        case T_R_ORCPT:
            bad = field_strdup(&f, QREC_ORCPT_MAX, &rc->orcpt) < 0 ||
                  (rc->orcpt && !dsn_orcpt_valid(rc->orcpt, 1));
            break;
        case T_R_NOTIFY:
            bad = get_u64_max(&f, NOTIFY_NEVER | NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY, &v);
            /* NEVER excludes the others (RFC 3461 4.1) */
            if (!bad && (v & NOTIFY_NEVER) && v != NOTIFY_NEVER)
                bad = 1;
            rc->notify = (unsigned)v;
            break;
        case T_R_STATUS:
            bad = get_u64_max(&f, RCPT_BOUNCED, &v);
            rc->status = (unsigned)v;
            break;
        case T_R_ATTEMPTS:
            bad = get_u64_max(&f, 0xffffffffu, &v);
            rc->attempts = (unsigned)v;
            break;
        case T_R_NEXT_TRY:
            bad = ipc_field_u64(&f, &rc->next_try);
            break;
        case T_R_DSN:
            bad = ipc_field_str(&f, rc->dsn, sizeof(rc->dsn)) < 0 ||
                  (rc->dsn[0] && !valid_dsn(rc->dsn));
            break;
        case T_R_REPLY:
            bad = field_strdup(&f, QREC_REPLY_MAX, &rc->reply);
            break;
        case T_R_NOTICE:
            bad = get_u64_max(&f, QN_ALL, &v);
            rc->notice = (unsigned)v;
            break;
        case T_R_RELAY:
            bad = field_strdup(&f, QREC_RELAY_MAX, &rc->relay) < 0 || (rc->relay && !text_ok(rc->relay));
            break;
        case T_R_ALIAS:
            bad = field_strdup(&f, ADDR_MAX, &rc->alias);
            break;
        }
        if (bad)
            return fail(err, errlen, "recipient %zu: bad field: %s", idx, tag_name(f.tag));
    }
    if (r < 0)
        return fail(err, errlen, "recipient %zu: truncated field", idx);
    if (!(seen & ((uint64_t)1 << (T_R_ADDR & 63))) || !rc->addr)
        return fail(err, errlen, "recipient %zu: missing field: recipient address", idx);
    return 0;
}

/* First pass: count the recipients, so that nothing is allocated for a body
 * that claims too many, and the array is allocated once. */
static int count_rcpt(const unsigned char *body, size_t len, size_t *n, char *err, size_t errlen)
{
    struct ipc_iter it;
    struct ipc_field f;
    int r;

    *n = 0;
    ipc_iter_init(&it, body, len);
    while ((r = ipc_iter_next(&it, &f)) == 1)
        if (f.tag == T_RCPT && ++*n > QREC_MAX_RCPT)
            return fail(err, errlen, "too many recipients (over %d)", QREC_MAX_RCPT);
    if (r < 0)
        return fail(err, errlen, "record: truncated field");
    return 0;
}

/* rcpt_ok: recipients may follow (a whole record) or not (an envelope). */
static int decode_fields(const unsigned char *body, size_t len, struct qrec *r, int rcpt_ok,
                         char *err, size_t errlen)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t seen = 0, v;
    int res, seen_kind = 0;

    ipc_iter_init(&it, body, len);
    while ((res = ipc_iter_next(&it, &f)) == 1) {
        int bad = 0;

        if (f.tag == T_RCPT) {
            if (!rcpt_ok)
                return fail(err, errlen, "recipient in an envelope");
            if (decode_rcpt(&f, r->nrcpt + 1, &r->rcpt[r->nrcpt], err, errlen) < 0)
                return -1;
            r->nrcpt++;
            continue;
        }
        if (f.tag == T_NOTICE_KIND) {
            /* outside the bit map of seen_once: its own duplicate check */
            if (seen_kind++ || get_u64_max(&f, NOTICE_DOUBLE, &v))
                return fail(err, errlen, "bad field: %s", tag_name(f.tag));
            r->notice_kind = (unsigned)v;
            continue;
        }
        if (f.tag != T_QID && (f.tag < T_VERSION || f.tag > T_ORIGIN))
            continue; /* unknown (T_CODE, T_TEXT, ... or newer): skipped */
        if (seen_once(&seen, f.tag) < 0)
            return fail(err, errlen, "duplicate field: %s", tag_name(f.tag));
        switch (f.tag) {
        case T_VERSION:
            bad = ipc_field_u64(&f, &v) < 0 || v < 1 || v > QREC_VERSION;
            r->version = (unsigned)v;
            break;
        case T_QID:
            bad = ipc_field_str(&f, r->qid, sizeof(r->qid)) < 0 || !qid_valid(r->qid);
            break;
        case T_SENDER:
            bad = ipc_field_str(&f, r->sender, sizeof(r->sender));
            break;
        case T_ENVID:
            bad = ipc_field_str(&f, r->envid, sizeof(r->envid)) < 0 || (r->envid[0] && !dsn_envid_valid(r->envid));
            break;
        case T_RET:
            bad = get_u64_max(&f, RET_HDRS, &v);
            r->ret = (unsigned)v;
            break;
        case T_BODY:
            bad = get_u64_max(&f, BODY_8BITMIME, &v);
            r->body = (unsigned)v;
            break;
        case T_FLAGS:
            bad = get_u64_max(&f, QF_ALL, &v) ||
                  ((v & QF_DAMAGED) && !(v & QF_HOLD)); /* damaged is always held */
            r->flags = (unsigned)v;
            break;
        case T_AUTH:
            bad = ipc_field_str(&f, r->auth, sizeof(r->auth));
            break;
        case T_HELO:
            bad = ipc_field_str(&f, r->helo, sizeof(r->helo));
            break;
        case T_CLIENT_ADDR:
            bad = ipc_field_str(&f, r->client_addr, sizeof(r->client_addr));
            break;
        case T_CLIENT_NAME:
            bad = ipc_field_str(&f, r->client_name, sizeof(r->client_name));
            break;
        case T_PROTO:
            bad = ipc_field_str(&f, r->proto, sizeof(r->proto));
            break;
        case T_ORIGIN:
            bad = ipc_field_str(&f, r->origin, sizeof(r->origin));
            break;
        case T_UID:
            /* a uid_t, and never (uid_t)-1, which means "no uid" to the kernel */
            bad = get_u64_max(&f, 0xfffffffeu, &v);
            r->uid = (int64_t)v;
            break;
        case T_ARRIVAL:
            bad = ipc_field_u64(&f, &r->arrival);
            break;
        case T_SIZE:
            bad = ipc_field_u64(&f, &r->size);
            break;
        }
        if (bad)
            return fail(err, errlen, "bad field: %s", tag_name(f.tag));
    }
    if (res < 0)
        return fail(err, errlen, "record: truncated field");
    if (!(seen & ((uint64_t)1 << (T_VERSION & 63))))
        return fail(err, errlen, "missing field: version");
    if (!(seen & ((uint64_t)1 << (T_SENDER & 63))))
        return fail(err, errlen, "missing field: sender");
    return 0;
}

int qrec_decode(const unsigned char *body, size_t len, struct qrec *r, char *err, size_t errlen)
{
    unsigned aflags;
    const char *why;
    size_t n;

    qrec_init(r);
    if (errlen)
        err[0] = 0;
    if (count_rcpt(body, len, &n, err, errlen) < 0)
        return -1;
    if (n == 0)
        return fail(err, errlen, "no recipients");
    if (rcpt_reserve(r, n) < 0)
        return fail(err, errlen, "out of memory");
    if (decode_fields(body, len, r, 1, err, errlen) < 0)
        goto bad;

    /* Addresses last: whether UTF-8 is allowed depends on the flags field,
     * wherever it came in the body. */
    aflags = (r->flags & QF_SMTPUTF8) ? ADDR_UTF8 : 0;
    if ((why = check_mailbox(r->sender, aflags | ADDR_ALLOW_EMPTY)) != NULL) {
        fail(err, errlen, "bad sender: %s", why);
        goto bad;
    }
    for (size_t i = 0; i < r->nrcpt; i++) {
        if ((why = check_mailbox(r->rcpt[i].addr, aflags | ADDR_ALLOW_POSTMASTER)) != NULL ||
            (r->rcpt[i].alias && (why = check_mailbox(r->rcpt[i].alias, aflags | ADDR_ALLOW_POSTMASTER)))) {
            fail(err, errlen, "recipient %zu: %s", i + 1, why);
            goto bad;
        }
    }
    return 0;
bad:
    qrec_free(r);
    return -1;
}

int qrec_decode_envelope(const unsigned char *body, size_t len, struct qrec *r, char *err, size_t errlen)
{
    const char *why;

    qrec_init(r);
    if (errlen)
        err[0] = 0;
    if (decode_fields(body, len, r, 0, err, errlen) < 0)
        return -1;
    why = check_mailbox(r->sender, ((r->flags & QF_SMTPUTF8) ? ADDR_UTF8 : 0) | ADDR_ALLOW_EMPTY);
    if (why)
        return fail(err, errlen, "bad sender: %s", why);
    return 0;
}

int qrcpt_decode(const unsigned char *body, size_t len, unsigned rflags, struct qrcpt *rc,
                 char *err, size_t errlen)
{
    struct ipc_field whole = { T_RCPT, body, len };
    const char *why;

    if (errlen)
        err[0] = 0;
    if (decode_rcpt(&whole, 1, rc, err, errlen) < 0)
        return -1;
    why = check_mailbox(rc->addr, ((rflags & QF_SMTPUTF8) ? ADDR_UTF8 : 0) | ADDR_ALLOW_POSTMASTER);
    if (!why && rc->alias)
        why = check_mailbox(rc->alias, ((rflags & QF_SMTPUTF8) ? ADDR_UTF8 : 0) | ADDR_ALLOW_POSTMASTER);
    if (why) {
        qrcpt_free(rc);
        return fail(err, errlen, "recipient: %s", why);
    }
    return 0;
}

int qrec_peek_u64(const unsigned char *body, size_t len, uint16_t tag, uint64_t *out)
{
    struct ipc_iter it;
    struct ipc_field f;
    int r;

    *out = 0;
    ipc_iter_init(&it, body, len);
    while ((r = ipc_iter_next(&it, &f)) == 1)
        if (f.tag == tag)
            return ipc_field_u64(&f, out) < 0 ? -1 : 0;
    return r < 0 ? -1 : 1;
}

/*
 * Postfix queue names, for mailq's status mark and postqueue -j:
 *   "hold"      the operator held the message (QF_HOLD), shown with '!';
 *   "deferred"  some recipient was tried and must be tried again;
 *   "active"    otherwise: the message was never tried yet.
 * Why "active" and not "incoming": in Postfix, incoming holds mail that the
 * queue manager has not yet taken in, and active holds mail it has taken in
 * and is delivering or about to deliver. A Postern record exists only once
 * queue-mgr itself has committed it, and queue-mgr schedules it at that very
 * moment (its log line says "(queue active)", SPEC.md section 6), so a record
 * is never in Postfix's "not yet seen by the queue manager" state. "incoming"
 * is therefore not used; mailq marks such messages with '*' as Postfix does.
 */
const char *qrec_queue_name(const struct qrec *r)
{
    if (r->flags & QF_HOLD)
        return "hold";
    for (size_t i = 0; i < r->nrcpt; i++)
        if (r->rcpt[i].attempts > 0 || r->rcpt[i].status == RCPT_DEFERRED)
            return "deferred";
    return "active";
}
