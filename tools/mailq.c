/*
 * mailq - list the queue, in the exact text format of Postfix's mailq
 * (postqueue -p), or with -j as JSON lines with the fields of postqueue -j.
 *
 *   mailq [-c FILE] [-j]
 *
 * Asks queue-mgr over RUN_DIR/queue/control.sock (Q_LIST) and prints each
 * record as it arrives, so a queue of any size is listed in bounded memory.
 * When queue-mgr is down it reads the LMDB index read-only, as Postfix's
 * showq does in stand-alone mode. Records are validated like any other
 * input (qrec_decode) and printed with control bytes made harmless: mailq
 * must never let a queued address or reply text drive the operator's
 * terminal.
 *
 * Layout: Postfix's long-queue-id one (showq_compat.c, the L_*_FORMAT
 * strings, used when enable_long_queue_ids is on), because our ids are
 * long ids: 12 characters, 13 with the status mark. Header
 * "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------",
 * recipient lines at column 47, as operators see on any Postfix with long
 * queue ids.
 *
 * Marks and queue names as Postfix's: '*' ("active") for a message that
 * queue-mgr is delivering now (T_ACTIVE in its Q_LIST_ITEM), '!' ("hold")
 * for a held one, "deferred" once a delivery was tried, "incoming" before.
 * A deferred recipient's last reason is the "(reason)" line above it,
 * padded to column 76 and never wrapped, as showq_compat prints it. A
 * message with no recipient left to deliver (only bounced ones, kept for
 * the notice) is not listed.
 *
 * Speed (a million messages in well under a second): records are read as
 * views (struct view), pointing into the frame, with the structure, the
 * queue id, the numbers and every printed text checked (no control
 * bytes; printed through log_sanitize or the JSON escaper), but addresses
 * are not parsed again: queue-mgr validated them when it took the mail,
 * and for the terminal only their bytes matter. Output goes through one
 * large buffer written with write(2); arrival times are formatted once a
 * minute, not once a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "qclient.h"
#include "qrecord.h"
#include "qstore.h"
#include "util.h"
#include "utf8.h"

#define LIST_TIMEOUT_MS 30000
/* The reason shown for every recipient of a message reconciliation held. */
#define DAMAGED_REASON "queue file missing or damaged; message held (see the queue-mgr log)"

static struct config cfg;
static int json;
static unsigned long nmsg;
static unsigned long long total_size;
static unsigned long nbad;
static int cur_active;          /* the record shown is being delivered now */

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr, "usage: mailq [-c FILE] [-j]\n");
    exit(EX_USAGE);
}

/* ---- output: one buffer, written whole ---- */

#define OUT_SIZE (1u << 20)
static char obuf[OUT_SIZE];
static size_t olen;

static void __attribute__((noreturn)) write_failed(void)
{
    fprintf(stderr, "mailq: fatal: output write error: %s\n", strerror(errno));
    exit(EX_IOERR);
}

static void out_flush(void)
{
    size_t off = 0;

    while (off < olen) {
        ssize_t n = write(STDOUT_FILENO, obuf + off, olen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            write_failed();
        off += (size_t)n;
    }
    olen = 0;
}

static inline void out_mem(const char *p, size_t n)
{
    if (n == 0)
        return;
    if (olen + n > OUT_SIZE) {
        out_flush();
        while (n > OUT_SIZE) {
            memcpy(obuf, p, OUT_SIZE);
            olen = OUT_SIZE;
            out_flush();
            p += OUT_SIZE;
            n -= OUT_SIZE;
        }
    }
    memcpy(obuf + olen, p, n);
    olen += n;
}

static inline void out_str(const char *s)
{
    out_mem(s, strlen(s));
}

static inline void out_ch(char c)
{
    if (olen == OUT_SIZE)
        out_flush();
    obuf[olen++] = c;
}

static void out_spaces(int n)
{
    static const char sp[] = "                                                                                ";
    while (n > 0) {
        int k = n < (int)sizeof(sp) - 1 ? n : (int)sizeof(sp) - 1;
        out_mem(sp, (size_t)k);
        n -= k;
    }
}

/* s left-aligned in width (printf's %-Ns) */
static void out_left(const char *s, int width)
{
    size_t n = strlen(s);
    out_mem(s, n);
    out_spaces(width - (int)n);
}

static void out_u64(unsigned long long v, int width)
{
    char t[24];
    int n = 0;

    do {
        t[sizeof(t) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_spaces(width - n);
    out_mem(t + sizeof(t) - n, (size_t)n);
}

/* ---- a record as a view into the frame ---- */

struct vstr {
    const char *p;
    size_t n;
};

struct vrcpt {
    struct vstr addr, reply;
    unsigned status, attempts;
};

struct view {
    char qid[QID_LEN + 1];
    struct vstr sender;
    uint64_t arrival, size, flags;
    size_t nrcpt;
    struct vrcpt *rcpt;
};

static struct vrcpt *vr;
static size_t vr_cap;

/* A text field: no NUL or control byte but TAB (ipc_field_str's rule). */
static int vtext(const struct ipc_field *f, struct vstr *out, size_t max)
{
    if (f->len > max)
        return -1;
    for (size_t i = 0; i < f->len; i++) {
        unsigned char c = f->val[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    out->p = (const char *)f->val;
    out->n = f->len;
    return 0;
}

static int vrcpt_decode(const struct ipc_field *f, struct vrcpt *r)
{
    struct ipc_iter it;
    struct ipc_field g;
    uint64_t v;
    int rc, have_addr = 0;

    memset(r, 0, sizeof(*r));
    ipc_iter_init(&it, f->val, f->len);
    while ((rc = ipc_iter_next(&it, &g)) == 1) {
        switch (g.tag) {
        case T_R_ADDR:
            if (vtext(&g, &r->addr, ADDR_MAX) < 0 || g.len == 0)
                return -1;
            have_addr = 1;
            break;
        case T_R_REPLY:
            if (vtext(&g, &r->reply, QREC_REPLY_MAX) < 0)
                return -1;
            break;
        case T_R_STATUS:
            if (ipc_field_u64(&g, &v) < 0 || v > RCPT_BOUNCED)
                return -1;
            r->status = (unsigned)v;
            break;
        case T_R_ATTEMPTS:
            if (ipc_field_u64(&g, &v) < 0 || v > 0xffffffffu)
                return -1;
            r->attempts = (unsigned)v;
            break;
        }
    }
    return rc < 0 || !have_addr ? -1 : 0;
}

static int view_decode(const void *body, size_t len, struct view *w, const char **why)
{
    struct ipc_iter it;
    struct ipc_field f;
    struct vstr q;
    int rc, have_qid = 0;

    memset(w, 0, sizeof(*w));
    *why = "malformed record";
    ipc_iter_init(&it, body, len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_QID:
            if (vtext(&f, &q, QID_LEN) < 0 || q.n != QID_LEN)
                return -1;
            memcpy(w->qid, q.p, QID_LEN);
            w->qid[QID_LEN] = 0;
            if (!qid_valid(w->qid))
                return -1;
            have_qid = 1;
            break;
        case T_SENDER:
            if (vtext(&f, &w->sender, ADDR_MAX) < 0) {
                *why = "bad sender";
                return -1;
            }
            break;
        case T_ARRIVAL:
            if (ipc_field_u64(&f, &w->arrival) < 0)
                return -1;
            break;
        case T_SIZE:
            if (ipc_field_u64(&f, &w->size) < 0)
                return -1;
            break;
        case T_FLAGS:
            if (ipc_field_u64(&f, &w->flags) < 0 || (w->flags & ~(uint64_t)QF_ALL))
                return -1;
            break;
        case T_RCPT:
            if (w->nrcpt == QREC_MAX_RCPT) {
                *why = "too many recipients";
                return -1;
            }
            if (w->nrcpt == vr_cap) {
                size_t nc = vr_cap ? vr_cap * 2 : 64;
                struct vrcpt *n = realloc(vr, nc * sizeof(*n));
                if (!n) {
                    *why = "out of memory";
                    return -1;
                }
                vr = n;
                vr_cap = nc;
            }
            if (vrcpt_decode(&f, &vr[w->nrcpt]) < 0) {
                *why = "bad recipient";
                return -1;
            }
            w->nrcpt++;
            break;
        }
    }
    w->rcpt = vr;
    if (rc < 0)
        return -1;
    if (!have_qid) {
        *why = "bad or missing queue id";
        return -1;
    }
    return 0;
}

/* ---- text helpers ---- */

/* Text for the terminal: what log_sanitize() keeps (printable ASCII and
 * well-formed UTF-8), everything else '?' (Postfix's printable()). */
static void out_printable(const struct vstr *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c < 0x20 || c >= 0x7f)
            break;
    }
    if (i == s->n) {
        out_mem(s->p, s->n); /* the common case: plain ASCII */
        return;
    }
    char clean[QREC_REPLY_MAX + ADDR_MAX + 8];
    log_sanitize(s->p, s->n, clean, sizeof(clean));
    out_str(clean);
}

static size_t printable_len(const struct vstr *s)
{
    char clean[QREC_REPLY_MAX + ADDR_MAX + 8];
    size_t i;

    for (i = 0; i < s->n; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c < 0x20 || c >= 0x7f)
            break;
    }
    if (i == s->n)
        return s->n;
    return strlen(log_sanitize(s->p, s->n, clean, sizeof(clean)));
}

/* A JSON string body as postqueue -j writes it: short escapes for common
 * controls, \u00XX for the others and DEL, '"' and '\\' escaped, UTF-8
 * passed through, bytes that are not well-formed UTF-8 made '?'. */
static void json_mem(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    uint32_t cp;
    size_t n;
    char t[8];

    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            out_mem((const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        switch (*p) {
        case '"': out_mem("\\\"", 2); break;
        case '\\': out_mem("\\\\", 2); break;
        case '\b': out_mem("\\b", 2); break;
        case '\f': out_mem("\\f", 2); break;
        case '\n': out_mem("\\n", 2); break;
        case '\r': out_mem("\\r", 2); break;
        case '\t': out_mem("\\t", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(t, sizeof(t), "\\u%04X", *p);
                out_str(t);
            } else if ((n = utf8_decode(p, (size_t)(end - p) < 4 ? (size_t)(end - p) : 4, &cp)) != 0 &&
                       !utf8_is_c1(cp)) {
                out_mem((const char *)p, n);
                p += n;
                continue;
            } else {
                out_ch('?');
            }
        }
        p++;
    }
}

static void json_str(const char *s)
{
    json_mem(s, strlen(s));
}

static int rcpt_done(const struct vrcpt *rc)
{
    return rc->status == RCPT_SENT || rc->status == RCPT_BOUNCED;
}

/* Postfix's queue name for a record (qrec_queue_name's rule), with
 * queue-mgr's in-flight mark. */
static const char *queue_name(const struct view *w)
{
    if (w->flags & QF_HOLD)
        return "hold";
    if (cur_active)
        return "active";
    for (size_t i = 0; i < w->nrcpt; i++)
        if (w->rcpt[i].attempts > 0 || w->rcpt[i].status == RCPT_DEFERRED)
            return "deferred";
    return "incoming";
}

/* The reason shown for a recipient still to be delivered: its last reply,
 * or why the whole message is held. */
static const struct view *cur_rec;
static struct vstr rcpt_why(const struct vrcpt *rc)
{
    struct vstr d = { DAMAGED_REASON, sizeof(DAMAGED_REASON) - 1 };

    if (cur_rec && (cur_rec->flags & QF_DAMAGED))
        return d;
    return rc->reply;
}

/*
 * Recipients in Postfix's showq order: first those with a reason (Postfix
 * reads them from the defer log), then the others, each still undelivered.
 * Calls fn for each; pass 0 gives the ones with a reason.
 */
typedef void (*rcpt_fn)(const struct vrcpt *rc, void *arg);
static void each_rcpt(const struct view *w, rcpt_fn fn, void *arg)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < w->nrcpt; i++) {
            const struct vrcpt *rc = &w->rcpt[i];
            if (rcpt_done(rc) || (pass == 0) != (rcpt_why(rc).n != 0))
                continue;
            fn(rc, arg);
        }
}

/* What asctime() gives, whatever the locale: "Sun Nov  9 07:12:07"; the
 * first 19 characters, as Postfix's %19.19s keeps. localtime once a
 * minute: a zone's offset changes only on a minute boundary. */
static void arrival_text(uint64_t when, char out[20])
{
    static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    static uint64_t base = UINT64_MAX;
    static char text[20];
    time_t t = (time_t)when;
    struct tm tm;

    if (when > (uint64_t)INT64_MAX / 2) {
        str_copy(out, "??", 20);
        return;
    }
    if (base == UINT64_MAX || when < base || when >= base + 60) {
        if (!localtime_r(&t, &tm)) {
            str_copy(out, "??", 20);
            return;
        }
        base = when - (uint64_t)tm.tm_sec;
        if (tm.tm_sec > 59)
            base = UINT64_MAX; /* a leap second: never cached */
        snprintf(text, sizeof(text), "%.3s %.3s%3d %.2d:%.2d:", day[tm.tm_wday], mon[tm.tm_mon],
                 tm.tm_mday, tm.tm_hour, tm.tm_min);
        if (base == UINT64_MAX) {
            char t2[64];
            snprintf(t2, sizeof(t2), "%s%.2d", text, tm.tm_sec);
            str_copy(out, t2, 20);
            return;
        }
    }
    unsigned sec = (unsigned)(when - base);
    memcpy(out, text, 17);
    out[17] = (char)('0' + sec / 10);
    out[18] = (char)('0' + sec % 10);
    out[19] = 0;
}

struct text_state {
    struct vstr saved;
    int have_saved;
};

static void text_rcpt(const struct vrcpt *rc, void *arg)
{
    struct text_state *st = arg;
    struct vstr why = rcpt_why(rc);

    /* As showq_compat: a "(reason)" line when the reason changes from the
     * previous recipient's, "(reason unavailable)" when it becomes empty. */
    if (!st->have_saved || st->saved.n != why.n || (why.n && memcmp(st->saved.p, why.p, why.n) != 0)) {
        static const struct vstr none = { "reason unavailable", 18 };
        const struct vstr *show = why.n ? &why : &none;
        if (st->have_saved || why.n) {
            out_spaces(76 - (int)printable_len(show));
            out_ch('(');
            out_printable(show);
            out_mem(")\n", 2);
        }
        st->saved = why;
        st->have_saved = 1;
    }
    out_spaces(47);
    out_printable(&rc->addr);
    out_ch('\n');
}

static void print_text(const struct view *w)
{
    const char *q = queue_name(w);
    char id[QID_LEN + 4], when[20];
    struct text_state st = { { "", 0 }, 1 };
    static const struct vstr daemon = { "MAILER-DAEMON", 13 };

    if (nmsg == 0)
        out_str("----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n");
    else
        out_ch('\n');
    snprintf(id, sizeof(id), "%s%s", w->qid,
             strcmp(q, "active") == 0 ? "*" : strcmp(q, "hold") == 0 ? "!" : "");
    arrival_text(w->arrival, when);
    out_left(id, 17);
    out_ch(' ');
    out_u64(w->size, 8);
    out_ch(' ');
    out_left(when, 19);
    out_ch(' ');
    out_printable(w->sender.n ? &w->sender : &daemon);
    out_ch('\n');
    each_rcpt(w, text_rcpt, &st);
}

static void json_rcpt(const struct vrcpt *rc, void *arg)
{
    int *n = arg;
    struct vstr why = rcpt_why(rc);

    out_str((*n)++ ? ", {\"address\": \"" : "{\"address\": \"");
    json_mem(rc->addr.p, rc->addr.n);
    out_ch('"');
    if (why.n) {
        out_str(", \"delay_reason\": \"");
        json_mem(why.p, why.n);
        out_ch('"');
    }
    out_ch('}');
}

static void print_json(const struct view *w)
{
    int n = 0;

    out_str("{\"queue_name\": \"");
    json_str(queue_name(w));
    out_str("\", \"queue_id\": \"");
    json_str(w->qid);
    out_str("\", \"arrival_time\": ");
    out_u64(w->arrival, 0);
    out_str(", \"message_size\": ");
    out_u64(w->size, 0);
    out_str(", \"forced_expire\": false, \"sender\": \"");
    if (w->sender.n)
        json_mem(w->sender.p, w->sender.n);
    else
        json_str("MAILER-DAEMON");
    out_str("\", \"recipients\": [");
    each_rcpt(w, json_rcpt, &n);
    out_str("]}\n");
}

/* One record from either source. `qid` is the key it was stored under, if known. */
static void show_record(const void *val, size_t len, const char *qid)
{
    struct view w;
    const char *why;
    char clean[600];

    if (view_decode(val, len, &w, &why) < 0 || (qid && strcmp(qid, w.qid) != 0)) {
        if (qid && w.qid[0] && strcmp(qid, w.qid) != 0)
            why = "bad or missing queue id";
        out_flush();
        fprintf(stderr, "mailq: warning: skipping malformed queue record%s%s: %s\n",
                qid ? " " : "", qid ? log_sanitize(qid, strlen(qid), clean, sizeof(clean)) : "", why);
        nbad++;
        return;
    }
    size_t left = 0;
    for (size_t i = 0; i < w.nrcpt; i++)
        left += !rcpt_done(&w.rcpt[i]);
    if (left == 0)
        return; /* only bounced (kept for the notice) or sent recipients: gone for mailq */
    cur_rec = &w;
    if (json)
        print_json(&w);
    else
        print_text(&w);
    cur_rec = NULL;
    nmsg++;
    total_size += w.size;
}

static void finish(void)
{
    if (!json) {
        if (nmsg == 0) {
            out_str("Mail queue is empty\n");
        } else {
            char t[96];
            snprintf(t, sizeof(t), "\n-- %llu Kbytes in %lu Request%s.\n", total_size / 1024, nmsg,
                     nmsg == 1 ? "" : "s");
            out_str(t);
        }
    }
    out_flush();
    exit(nbad ? EX_SOFTWARE : EX_OK);
}

static void __attribute__((noreturn)) fatal_lost(const char *what)
{
    out_flush();
    fprintf(stderr, "mailq: fatal: %s\n", what);
    exit(EX_TEMPFAIL);
}

static int list_visit(const void *val, size_t len, void *arg)
{
    struct qc_conn *c = arg;

    cur_active = c->last.active;
    show_record(val, len, NULL);
    cur_active = 0;
    return 0;
}

/* The listing from queue-mgr. */
static void list_from_server(struct qc_conn *c)
{
    char clean[600];
    enum qc_status s = qc_list(c, list_visit, c, NULL);

    if (s == QC_REFUSED) {
        out_flush();
        fprintf(stderr, "mailq: fatal: queue manager: %s\n",
                log_sanitize(c->last.text, strlen(c->last.text), clean, sizeof(clean)));
        exit(EX_TEMPFAIL);
    }
    if (s != QC_OK)
        fatal_lost(qc_status_text(s));
    qc_close(c);
}

static int scan_visit(const char *qid, const void *val, size_t len, void *arg)
{
    (void)arg;
    show_record(val, len, qid);
    return 0;
}
int main(int argc, char **argv)
{
    const char *conf = NULL;
    char err[1200], path[sizeof(cfg.run_dir) + 64];
    struct qstore *q;
    struct qc_conn qc;
    int opt;

    opterr = 0;
    while ((opt = getopt(argc, argv, "+:c:j")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case ':':
            fprintf(stderr, "mailq: option -%c needs an argument\n", optopt);
            usage();
        default:
            if (optopt > 32 && optopt < 127)
                fprintf(stderr, "mailq: unknown option -%c\n", optopt);
            else
                fprintf(stderr, "mailq: unknown option\n");
            usage();
        }
    }
    if (optind != argc)
        usage();
    config_defaults(&cfg);
    if (config_load(&cfg, config_path(conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "mailq: fatal: %s\n", err);
        return EX_CONFIG;
    }
    snprintf(path, sizeof(path), "%s/%s", cfg.run_dir, SOCK_QUEUE_CONTROL);
    if (qc_connect(&qc, cfg.run_dir, SOCK_QUEUE_CONTROL, LIST_TIMEOUT_MS) == QC_OK) {
        list_from_server(&qc);
        finish();
    }
    int cerr = errno;
    if (qstore_open(&q, cfg.spool_dir, 1, err, sizeof(err)) == 0) {
        fprintf(stderr, "mailq: warning: queue manager is down -- accessing queue directly\n");
        if (qstore_scan(q, NULL, scan_visit, NULL) < 0) {
            out_flush();
            fprintf(stderr, "mailq: fatal: cannot read the queue index in %s/%s\n",
                    cfg.spool_dir, QSTORE_DIR);
            return EX_TEMPFAIL;
        }
        qstore_close(q);
        finish();
    }
    fprintf(stderr, "mailq: fatal: queue manager is down (connect %s: %s)\n", path, strerror(cerr));
    return EX_TEMPFAIL;
}
