/*
 * txn.c - the mail transaction (txn.h). Must never let a message through
 * that is not exactly what arrived: the end of DATA is <CRLF>.<CRLF> and
 * nothing else, and a bare CR, bare LF or NUL anywhere refuses the whole
 * message. Spool writes are batched in SPOOL_BUF, one buffer per message,
 * never one per line.
 */
#include "txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dsn.h"
#include "log.h"
#include "qlink.h"
#include "rcptquota.h"
#include "util.h"

#define SPOOL_BUF 32768

void txn_init(struct txn *t)
{
    memset(t, 0, sizeof(*t));
    qrec_init(&t->env);
    t->spool_fd = -1;
}

static void spool_close(struct txn *t)
{
    if (t->spool_fd >= 0) {
        close(t->spool_fd);
        t->spool_fd = -1;
        if (t->qid[0])
            qlink_abort(t->qid, t->spool_gen);
    }
    buf_free(&t->spool_buf);
}

void txn_reset(struct txn *t)
{
    spool_close(t);
    qrec_free(&t->env);
    qrec_init(&t->env);
    t->active = 0;
    t->qid[0] = 0;
    t->msg_size = 0;
    t->poison = P_NONE;
    t->via_bdat = 0;
    t->open_retried = 0;
    t->size_param = 0;
    free(t->rcpt_quota);
    t->rcpt_quota = NULL;
    t->rcpt_quota_cap = 0;
    free(t->bdat_lr);
    t->bdat_lr = NULL;
    if (t->sub) {
        subfix_free(t->sub);
        free(t->sub);
        t->sub = NULL;
    }
}

/* Splits the next "KEY[=VALUE]" parameter off *p; 0 at the end. */
static int next_param(char **p, char **key, char **val)
{
    char *q = *p;

    while (*q == ' ')
        q++;
    if (!*q)
        return 0;
    *key = q;
    while (*q && *q != ' ')
        q++;
    if (*q)
        *q++ = 0;
    *p = q;
    *val = strchr(*key, '=');
    if (*val)
        *(*val)++ = 0;
    return 1;
}

static int refuse(char *err, size_t errlen, const char *text)
{
    str_copy(err, text, errlen);
    return -1;
}

static int unsupported(char *err, size_t errlen, const char *key)
{
    char clean[64];

    snprintf(err, errlen, "555 5.5.4 Unsupported option: %s", log_sanitize(key, strlen(key), clean, sizeof(clean)));
    return -1;
}

int txn_mail_params(struct txn *t, char *p, uint64_t *size, int *utf8, char *err, size_t errlen)
{
    char *key, *val;
    int seen_size = 0, seen_body = 0, seen_ret = 0, seen_envid = 0;

    *size = 0;
    *utf8 = 0;
    while (next_param(&p, &key, &val) == 1) {
        if (!strcasecmp(key, "SIZE") && val && !seen_size++) {
            if (parse_u64(val, size) < 0)
                return refuse(err, errlen, "501 5.5.4 Bad SIZE parameter syntax");
            t->size_param = *size;
        } else if (!strcasecmp(key, "BODY") && val && !seen_body++) {
            if (!strcasecmp(val, "7BIT"))
                t->env.body = BODY_7BIT;
            else if (!strcasecmp(val, "8BITMIME"))
                t->env.body = BODY_8BITMIME;
            else
                return refuse(err, errlen, "501 5.5.4 Bad BODY parameter syntax");
        } else if (!strcasecmp(key, "SMTPUTF8") && !val && !*utf8) {
            *utf8 = 1;
        } else if (!strcasecmp(key, "RET") && val && !seen_ret++) {
            if (dsn_parse_ret(val, &t->env.ret) < 0)
                return refuse(err, errlen, "501 5.5.4 Bad RET parameter syntax");
        } else if (!strcasecmp(key, "ENVID") && val && !seen_envid++) {
            if (!dsn_envid_valid(val) || strlen(val) >= sizeof(t->env.envid))
                return refuse(err, errlen, "501 5.5.4 Bad ENVID parameter syntax");
            str_copy(t->env.envid, val, sizeof(t->env.envid));
        } else {
            return unsupported(err, errlen, key);
        }
    }
    return 0;
}

void txn_mail(struct txn *t, const char *sender, int utf8, uint64_t max_size)
{
    if (utf8)
        t->env.flags |= QF_SMTPUTF8;
    str_copy(t->env.sender, sender, sizeof(t->env.sender));
    t->max_size = max_size;
    t->active = 1;
}

int txn_rcpt_params(char *p, unsigned *notify, char *orcpt, size_t orcptlen, char *err, size_t errlen)
{
    char *key, *val;

    *notify = 0;
    orcpt[0] = 0;
    while (next_param(&p, &key, &val) == 1) {
        if (!strcasecmp(key, "NOTIFY") && val && !*notify) {
            if (dsn_parse_notify(val, notify) < 0)
                return refuse(err, errlen, "501 5.5.4 Bad NOTIFY parameter syntax");
        } else if (!strcasecmp(key, "ORCPT") && val && !orcpt[0]) {
            if (!dsn_orcpt_valid(val, 0) || strlen(val) >= orcptlen)
                return refuse(err, errlen, "501 5.5.4 Bad ORCPT parameter syntax");
            str_copy(orcpt, val, orcptlen);
        } else {
            return unsupported(err, errlen, key);
        }
    }
    return 0;
}

int txn_add_rcpt(struct txn *t, const char *mailbox, unsigned notify, const char *orcpt, unsigned max,
                 char *err, size_t errlen)
{
    struct qrcpt *r;

    if (t->env.nrcpt >= max || qrec_add_rcpt(&t->env, mailbox) < 0)
        return refuse(err, errlen, "452 4.5.3 Error: too many recipients");
    r = &t->env.rcpt[t->env.nrcpt - 1];
    if (t->env.nrcpt <= t->rcpt_quota_cap)
        t->rcpt_quota[t->env.nrcpt - 1] = 0;
    r->notify = notify;
    if (qrcpt_set(&r->orcpt, orcpt, QREC_ORCPT_MAX) < 0) {
        txn_drop_last_rcpt(t);
        return refuse(err, errlen, "452 4.3.1 Error: out of memory");
    }
    return 0;
}

void txn_drop_last_rcpt(struct txn *t)
{
    struct qrcpt *r;

    if (t->env.nrcpt == 0)
        return;
    if (t->env.nrcpt <= t->rcpt_quota_cap)
        t->rcpt_quota[t->env.nrcpt - 1] = 0;
    r = &t->env.rcpt[--t->env.nrcpt]; /* qrec_free frees only counted recipients */
    free(r->addr);
    free(r->orcpt);
    free(r->reply);
    memset(r, 0, sizeof(*r));
}

int txn_set_rcpt_quota(struct txn *t, uint64_t bytes)
{
    unsigned i;

    if (t->env.nrcpt == 0)
        return -1;
    i = t->env.nrcpt - 1;
    if (i >= t->rcpt_quota_cap) {
        unsigned cap = t->rcpt_quota_cap ? t->rcpt_quota_cap : 8;
        uint64_t *p;
        while (cap <= i)
            cap *= 2;
        if (!(p = realloc(t->rcpt_quota, (size_t)cap * sizeof(*p))))
            return -1;
        memset(p + t->rcpt_quota_cap, 0, (size_t)(cap - t->rcpt_quota_cap) * sizeof(*p));
        t->rcpt_quota = p;
        t->rcpt_quota_cap = cap;
    }
    t->rcpt_quota[i] = bytes;
    return 0;
}

/* ---- the spool file ---- */

/* A failed write of the spool file: a full file system is "452 4.3.1
 * Insufficient system storage" (try later, as Postfix says), anything else
 * a write error. */
static void spool_failed(struct txn *t)
{
    int e = errno;

    log_error("%s: spool file write error: %s", t->qid, strerror(e));
    t->poison = e == ENOSPC || e == EDQUOT ? P_NOSPACE : P_IO;
}

static void spool_write(struct txn *t, const char *p, size_t n)
{
    if (t->poison != P_NONE)
        return;
    t->msg_size += n;
    if (t->msg_size > t->max_size) {
        t->poison = P_SIZE;
        return;
    }
    if (t->spool_buf.len + n > SPOOL_BUF && t->spool_buf.len > 0) {
        if (write_all(t->spool_fd, buf_head(&t->spool_buf), t->spool_buf.len) < 0) {
            spool_failed(t);
            return;
        }
        buf_reset(&t->spool_buf);
    }
    if (n > SPOOL_BUF) {
        if (write_all(t->spool_fd, p, n) < 0)
            spool_failed(t);
        return;
    }
    if (buf_append(&t->spool_buf, p, n) < 0)
        t->poison = P_IO;
}

void txn_spool_open(struct txn *t, const char *qid, int fd, unsigned gen, const char *received, size_t len)
{
    str_copy(t->qid, qid, sizeof(t->qid));
    t->spool_fd = fd;
    t->spool_gen = gen;
    buf_init(&t->spool_buf, SPOOL_BUF);
    t->prev_crlf = 1;
    if (received && len > 0) {
        uint64_t before = t->msg_size;
        spool_write(t, received, len);
        t->msg_size = before; /* the trace line does not count against SIZE */
    }
}

void txn_submission(struct txn *t, const char *host, subfix_owned_fn owned, void *arg)
{
    if (!(t->sub = malloc(sizeof(*t->sub))))
        return; /* out of memory: no fix-ups, and no From: check -> refuse */
    subfix_start(t->sub, host, t->qid, owned, arg);
}

/* A submission message's line while its header section is open: the
 * fields that must go before it, then the line. */
static void header_line(struct txn *t, const char *line, size_t len)
{
    char add[SUBFIX_ADD_MAX];
    size_t n = subfix_line(t->sub, line, len, add);

    if (n)
        spool_write(t, add, n);
    spool_write(t, line, len);
}

int txn_data_line(struct txn *t, const char *line, size_t len, unsigned flags)
{
    int crlf = (flags & LR_CRLF) != 0;

    if (t->prev_crlf && crlf && len == 3 && line[0] == '.' && !(flags & (LR_TOOLONG | LR_BARE_CR | LR_NUL))) {
        if (t->sub && subfix_in_header(t->sub))
            header_line(t, "", 0); /* headers only: the fields go at their end */
        return 1;
    }
    t->prev_crlf = crlf;
    if (flags & LR_TOOLONG) {
        if (t->poison == P_NONE)
            t->poison = P_TOOLONG;
        return 0;
    }
    if (!crlf || (flags & (LR_BARE_CR | LR_NUL))) {
        if (t->poison == P_NONE || t->poison == P_SIZE)
            t->poison = P_BARE;
        return 0;
    }
    if (line[0] == '.')
        line++, len--; /* undo dot-stuffing */
    if (t->sub && subfix_in_header(t->sub))
        header_line(t, line, len);
    else
        spool_write(t, line, len);
    return 0;
}

void txn_bdat_bytes(struct txn *t, const char *p, size_t n)
{
    const char *q = p, *line;
    size_t qn = n, len;
    unsigned flags;

    if (t->bdat_discard)
        return;
    /* The bytes go to the spool as they are; the checker only looks.
     * While a submission's header section is open, whole lines are
     * spooled one by one (fields may go before the blank line). */
    while (lr_next(t->bdat_lr, &q, &qn, &line, &len, &flags) == 1) {
        if ((flags & LR_TOOLONG) && t->poison == P_NONE)
            t->poison = P_TOOLONG;
        else if ((!(flags & LR_CRLF) || (flags & (LR_BARE_CR | LR_NUL))) &&
                 (t->poison == P_NONE || t->poison == P_SIZE))
            t->poison = P_BARE;
        if (t->sub && subfix_in_header(t->sub)) {
            header_line(t, line, len);
            p = q;
            n = qn;
        }
    }
    if (t->sub && subfix_in_header(t->sub))
        return; /* a partial header line waits in the checker */
    spool_write(t, p, n);
}

void txn_bdat_finish(struct txn *t)
{
    if (t->bdat_lr && lr_pending(t->bdat_lr) > 0)
        txn_bdat_bytes(t, "\r\n", 2);
    if (t->sub && subfix_in_header(t->sub))
        header_line(t, "", 0); /* headers only: the fields go at their end */
}

const char *txn_data_end(struct txn *t, const char **why)
{
    static const char *const reply[] = {
        [P_BARE] = "550 5.5.2 Error: bare CR, bare LF or NUL in message data; not accepted",
        [P_TOOLONG] = "500 5.5.2 Error: line too long; message not accepted",
        [P_SIZE] = "552 5.3.4 Message size exceeds fixed limit",
        [P_IO] = "451 4.3.0 Error: queue file write error",
        [P_NOSPACE] = "452 4.3.1 Insufficient system storage",
    };
    static const char *const reason[] = {
        [P_BARE] = "bare CR, bare LF or NUL in data",
        [P_TOOLONG] = "over-long data line",
        [P_SIZE] = "message too large",
        [P_IO] = "write error",
        [P_NOSPACE] = "no space for the queue file",
    };

    if (t->poison == P_NONE && t->spool_buf.len > 0 &&
        write_all(t->spool_fd, buf_head(&t->spool_buf), t->spool_buf.len) < 0)
        spool_failed(t);
    buf_free(&t->spool_buf);
    if (t->poison != P_NONE) {
        *why = reason[t->poison];
        return reply[t->poison];
    }
    /* advice with a sure outcome: every recipient would bounce it 5.2.2 */
    if (t->env.nrcpt <= t->rcpt_quota_cap && rcptquota_none_fits(t->rcpt_quota, t->env.nrcpt, t->msg_size)) {
        *why = "message exceeds the mailbox quota of every recipient";
        return RQ_REPLY_DATA;
    }
    if (t->sub && subfix_end(t->sub, t->sub_reply, sizeof(t->sub_reply))) {
        *why = "From: header not the user's";
        return t->sub_reply;
    }
    close(t->spool_fd);
    t->spool_fd = -1;
    *why = NULL;
    return NULL;
}
