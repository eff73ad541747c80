/*
 * job.c - D_JOB parsing and D_RESULT building (job.h).
 *
 * Everything in a D_JOB came from another process: each field is checked
 * for type, length and content (addresses with addr.h, the QID's form, the
 * sizes and counts); an unknown field is ignored, a malformed one refuses
 * the job. Must never trust the descriptor either (job_check_fd).
 */
#include "job.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "proto.h"
#include "qrecord.h"
#include "util.h"

/* An address in canonical form ("" allowed for the sender only). */
static int check_mailbox(const char *s, unsigned flags)
{
    char path[ADDR_MAX + 3];
    struct addr a;
    size_t n = strlen(s), end;

    if (n > ADDR_MAX)
        return -1;
    path[0] = '<';
    memcpy(path + 1, s, n);
    path[n + 1] = '>';
    if (addr_parse_path(path, n + 2, flags, &a, &end) != ADDR_OK || end != n + 2)
        return -1;
    if (n && a.domain[0] == '\0')
        return -1;          /* a remote recipient has a domain */
    return 0;
}

static void notify_text(uint64_t bits, char *out, size_t outlen)
{
    out[0] = '\0';
    if (bits & NOTIFY_NEVER) {
        str_copy(out, "NEVER", outlen);
        return;
    }
    if (bits & NOTIFY_SUCCESS)
        strncat(out, "SUCCESS", outlen - strlen(out) - 1);
    if (bits & NOTIFY_FAILURE)
        strncat(out, out[0] ? ",FAILURE" : "FAILURE", outlen - strlen(out) - 1);
    if (bits & NOTIFY_DELAY)
        strncat(out, out[0] ? ",DELAY" : "DELAY", outlen - strlen(out) - 1);
}

static int parse_rcpt(const struct ipc_field *f, struct job_rcpt *r, unsigned aflags,
                      char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field g;
    int rc, have_index = 0;
    uint64_t v;

    memset(r, 0, sizeof *r);
    ipc_iter_init(&it, f->val, f->len);
    while ((rc = ipc_iter_next(&it, &g)) == 1) {
        switch (g.tag) {
        case T_R_INDEX:
            if (ipc_field_u64(&g, &r->index) < 0 || r->index >= QREC_MAX_RCPT)
                goto bad;
            have_index = 1;
            break;
        case T_R_ADDR:
            if (ipc_field_str(&g, r->addr, sizeof r->addr) < 0 || !r->addr[0] ||
                check_mailbox(r->addr, aflags) < 0) {
                snprintf(why, whylen, "recipient address invalid");
                return -1;
            }
            break;
        case T_R_ORCPT:
            if (ipc_field_str(&g, r->orcpt, sizeof r->orcpt) < 0 || !strchr(r->orcpt, ';') ||
                strpbrk(r->orcpt, " \t"))
                goto bad;
            break;
        case T_R_NOTIFY:
            if (ipc_field_u64(&g, &v) < 0 || v > 0xf)
                goto bad;
            notify_text(v, r->notify, sizeof r->notify);
            break;
        case T_R_ATTEMPTS:
            if (ipc_field_u64(&g, &r->attempts) < 0)
                goto bad;
            break;
        default:
            break;
        }
    }
    if (rc < 0 || !have_index || !r->addr[0])
        goto bad;
    return 0;
bad:
    snprintf(why, whylen, "malformed recipient (field %u)", (unsigned)g.tag);
    return -1;
}

int job_parse(const struct ipc_msg *m, struct job *j, int *has_id, char *why, size_t whylen)
{
    struct ipc_iter it;
    struct ipc_field f;
    int rc, seen_id = 0, seen_qid = 0, seen_dest = 0;
    size_t nr = 0, cap = 0;
    unsigned aflags;

    memset(j, 0, sizeof *j);
    j->msg.fd = -1;
    *has_id = 0;
    if (m->type != D_JOB) {
        snprintf(why, whylen, "unexpected message type %u", (unsigned)m->type);
        return -1;
    }
    /* first pass: the scalars (FLAGS decides how addresses are checked) */
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        uint64_t *u = NULL;
        switch (f.tag) {
        case T_D_JOB: u = &j->id; seen_id = 1; break;
        case T_RET: u = &j->ret; break;
        case T_BODY: u = &j->body; break;
        case T_FLAGS: u = &j->flags; break;
        case T_ARRIVAL: u = &j->arrival; break;
        case T_SIZE: u = &j->size; break;
        case T_D_DISPATCH: u = &j->dispatch_ms; break;
        case T_QID:
            if (ipc_field_str(&f, j->qid, sizeof j->qid) < 0 || !qid_valid(j->qid)) {
                snprintf(why, whylen, "bad QID");
                return -1;
            }
            seen_qid = 1;
            continue;
        case T_D_DEST:
            if (ipc_field_str(&f, j->dest, sizeof j->dest) < 0 || !j->dest[0]) {
                snprintf(why, whylen, "bad destination");
                return -1;
            }
            seen_dest = 1;
            continue;
        case T_SENDER:
            if (ipc_field_str(&f, j->sender, sizeof j->sender) < 0) {
                snprintf(why, whylen, "bad sender");
                return -1;
            }
            continue;
        case T_ENVID:
            if (ipc_field_str(&f, j->envid, sizeof j->envid) < 0 || strpbrk(j->envid, " \t")) {
                snprintf(why, whylen, "bad ENVID");
                return -1;
            }
            continue;
        case T_RCPT:
            nr++;
            continue;
        default:
            continue;
        }
        if (ipc_field_u64(&f, u) < 0) {
            snprintf(why, whylen, "malformed field %u", (unsigned)f.tag);
            return -1;
        }
    }
    if (rc < 0) {
        snprintf(why, whylen, "malformed frame body");
        return -1;
    }
    if (!seen_id || !seen_qid) {
        snprintf(why, whylen, "job without %s", seen_id ? "QID" : "job id");
        return -1;
    }
    *has_id = 1;
    if (!seen_dest) {
        snprintf(why, whylen, "job without destination");
        return -1;
    }
    if (j->ret > RET_HDRS || j->body > BODY_8BITMIME || (j->flags & ~(uint64_t)QF_ALL)) {
        snprintf(why, whylen, "bad RET, BODY or FLAGS");
        return -1;
    }
    if (j->size == 0 || j->size > ((uint64_t)1 << 40)) {
        snprintf(why, whylen, "bad SIZE %llu", (unsigned long long)j->size);
        return -1;
    }
    if (nr == 0 || nr > JOB_MAX_RCPT) {
        snprintf(why, whylen, "%zu recipients (1..%u allowed)", nr, JOB_MAX_RCPT);
        return -1;
    }
    aflags = ADDR_ALLOW_EMPTY | ((j->flags & QF_SMTPUTF8) ? ADDR_UTF8 : 0);
    if (check_mailbox(j->sender, aflags) < 0) {
        snprintf(why, whylen, "sender address invalid");
        return -1;
    }
    cap = nr;
    j->jr = calloc(cap, sizeof *j->jr);
    j->rc = calloc(cap, sizeof *j->rc);
    if (!j->jr || !j->rc) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    /* second pass: the recipients */
    ipc_iter_init(&it, m->body, m->len);
    while (ipc_iter_next(&it, &f) == 1) {
        if (f.tag != T_RCPT)
            continue;
        if (parse_rcpt(&f, &j->jr[j->nrcpt], aflags & ~ADDR_ALLOW_EMPTY, why, whylen) < 0)
            return -1;
        for (size_t k = 0; k < j->nrcpt; k++)
            if (j->jr[k].index == j->jr[j->nrcpt].index) {
                snprintf(why, whylen, "recipient index %llu twice",
                         (unsigned long long)j->jr[k].index);
                return -1;
            }
        j->nrcpt++;
    }
    return 0;
}

void job_free(struct job *j)
{
    free(j->jr);
    free(j->rc);
    j->jr = NULL;
    j->rc = NULL;
    j->nrcpt = 0;
}

int job_check_fd(int fd, uint64_t size, char *why, size_t whylen)
{
    struct stat st;
    int fl;

    if (fd < 0) {
        snprintf(why, whylen, "no spool descriptor");
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "spool descriptor is not a regular file");
        return -1;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || (fl & O_ACCMODE) != O_RDONLY) {
        snprintf(why, whylen, "spool descriptor is not read-only");
        return -1;
    }
    if ((uint64_t)st.st_size < size) {
        snprintf(why, whylen, "spool file is shorter (%lld) than its size (%llu)",
                 (long long)st.st_size, (unsigned long long)size);
        return -1;
    }
    return 0;
}

void job_bind(struct job *j, int fd)
{
    static const char *const ret[] = { NULL, "FULL", "HDRS" };

    memset(&j->msg, 0, sizeof j->msg);
    j->msg.fd = fd;
    j->msg.offset = 0;
    j->msg.size = j->size;
    j->msg.sender = j->sender;
    j->msg.body_8bit = j->body == BODY_8BITMIME;
    j->msg.smtputf8 = (j->flags & QF_SMTPUTF8) != 0;
    j->msg.ret = ret[j->ret];
    j->msg.envid = j->envid[0] ? j->envid : NULL;
    for (size_t i = 0; i < j->nrcpt; i++) {
        memset(&j->rc[i], 0, sizeof j->rc[i]);
        j->rc[i].addr = j->jr[i].addr;
        j->rc[i].notify = j->jr[i].notify[0] ? j->jr[i].notify : NULL;
        j->rc[i].orcpt = j->jr[i].orcpt[0] ? j->jr[i].orcpt : NULL;
    }
    j->msg.rcpt = j->rc;
    j->msg.nrcpt = j->nrcpt;
}

void job_fail_all(struct job *j, enum smtpc_status st, const char *dsn, const char *reply)
{
    for (size_t i = 0; i < j->nrcpt; i++) {
        j->rc[i].addr = j->jr[i].addr;
        j->rc[i].status = st;
        str_copy(j->rc[i].dsn, dsn, sizeof j->rc[i].dsn);
        str_copy(j->rc[i].reply, reply, sizeof j->rc[i].reply);
    }
}

uint64_t job_status_code(enum smtpc_status st)
{
    return st == SMTPC_SENT ? RCPT_SENT : st == SMTPC_BOUNCED ? RCPT_BOUNCED : RCPT_DEFERRED;
}

int job_result_encode(const struct job *j, unsigned dflags, struct ipc_out *out)
{
    ipc_out_begin(out, D_RESULT, 0);
    ipc_out_u64(out, T_D_JOB, j->id);
    ipc_out_str(out, T_QID, j->qid);
    ipc_out_u64(out, T_D_FLAGS, dflags);
    if (j->msg.relay[0] && strcmp(j->msg.relay, "none") != 0)
        ipc_out_str(out, T_D_RELAY, j->msg.relay);
    if (j->msg.dsn_offered)
        ipc_out_u64(out, T_D_HOP_DSN, 1);
    for (size_t i = 0; i < j->nrcpt; i++) {
        struct ipc_out r;
        const struct smtpc_rcpt *rc = &j->rc[i];
        ipc_body_begin(&r);
        ipc_out_u64(&r, T_R_INDEX, j->jr[i].index);
        ipc_out_u64(&r, T_R_STATUS, job_status_code(rc->status));
        ipc_out_str(&r, T_R_DSN, rc->dsn[0] ? rc->dsn : (rc->status == SMTPC_SENT ? "2.0.0" : "4.0.0"));
        ipc_out_str(&r, T_R_REPLY, rc->reply);
        ipc_out_nested(out, T_RCPT, &r);
        ipc_out_free(&r);
    }
    if (ipc_out_finish(out) < 0) {
        ipc_out_free(out);
        return -1;
    }
    return 0;
}
