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
#include "qclient.h"
#include "qrecord.h"
#include "qstore.h"
#include "util.h"
#include "utf8.h"

#define LIST_TIMEOUT_MS 30000
/* The reason shown for every recipient of a message reconciliation held. */
#define DAMAGED_REASON "queue file missing or damaged; message held (see the queue-mgr log)"

#define L_STRING_FORMAT "%-17s %8s %-19s %s\n"
#define L_SENDER_FORMAT "%-17s %8llu %19.19s %s\n"

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

/* Text for the terminal: what log_sanitize() keeps (printable ASCII and
 * well-formed UTF-8), everything else '?' (Postfix's printable()). */
static const char *printable(const char *s, char *out, size_t outlen)
{
    return log_sanitize(s, strlen(s), out, outlen);
}

/* A JSON string body as postqueue -j writes it: short escapes for common
 * controls, \u00XX for the others and DEL, '"' and '\\' escaped, UTF-8
 * passed through, bytes that are not well-formed UTF-8 made '?'. */
static void json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    size_t n;

    while (*p) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                printf("\\u%04X", *p);
            } else if (*p < 0x80) {
                putchar(*p);
            } else if ((n = utf8_decode(p, strnlen((const char *)p, 4), &cp)) != 0 && !utf8_is_c1(cp)) {
                fwrite(p, 1, n, stdout);
                p += n;
                continue;
            } else {
                putchar('?');
            }
        }
        p++;
    }
}

static int rcpt_done(const struct qrcpt *rc)
{
    return rc->status == RCPT_SENT || rc->status == RCPT_BOUNCED;
}

/* Postfix's queue name for a record, with queue-mgr's in-flight mark. */
static const char *queue_name(const struct qrec *r)
{
    const char *q = qrec_queue_name(r);

    if (strcmp(q, "hold") == 0)
        return q;
    if (cur_active)
        return "active";
    return strcmp(q, "active") == 0 ? "incoming" : q;
}

/* The reason shown for a recipient still to be delivered: its last reply,
 * or why the whole message is held. */
static const struct qrec *cur_rec;
static const char *rcpt_why(const struct qrcpt *rc)
{
    if (cur_rec && (cur_rec->flags & QF_DAMAGED))
        return DAMAGED_REASON;
    return rc->reply ? rc->reply : "";
}

/*
 * Recipients in Postfix's showq order: first those with a reason (Postfix
 * reads them from the defer log), then the others, each still undelivered.
 * Calls fn for each; pass 0 gives the ones with a reason.
 */
typedef void (*rcpt_fn)(const struct qrcpt *rc, void *arg);
static void each_rcpt(const struct qrec *r, rcpt_fn fn, void *arg)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->nrcpt; i++) {
            const struct qrcpt *rc = &r->rcpt[i];
            if (rcpt_done(rc) || (pass == 0) != (rcpt_why(rc)[0] != 0))
                continue;
            fn(rc, arg);
        }
}

/* What asctime() gives, whatever the locale: "Sun Nov  9 07:12:07 2026";
 * the format's %19.19s keeps the first 19 characters, as in Postfix. */
static void arrival_text(uint64_t when, char *out, size_t outlen)
{
    static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = (time_t)when;
    struct tm tm;

    if (when > (uint64_t)INT64_MAX / 2 || !localtime_r(&t, &tm)) {
        str_copy(out, "??", outlen);
        return;
    }
    snprintf(out, outlen, "%.3s %.3s%3d %.2d:%.2d:%.2d %d", day[tm.tm_wday], mon[tm.tm_mon],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

struct text_state {
    char saved_reason[QREC_REPLY_MAX + 1];
};

static void text_rcpt(const struct qrcpt *rc, void *arg)
{
    struct text_state *st = arg;
    char clean[QREC_REPLY_MAX + ADDR_MAX + 8];
    const char *why = rcpt_why(rc);

    /* As showq_compat: a "(reason)" line when the reason changes from the
     * previous recipient's, "(reason unavailable)" when it becomes empty. */
    if (strcmp(st->saved_reason, why) != 0) {
        const char *show;
        int pad;
        str_copy(st->saved_reason, why, sizeof(st->saved_reason));
        show = *why ? printable(why, clean, sizeof(clean)) : "reason unavailable";
        pad = 76 - (int)strlen(show);
        printf("%*s(%s)\n", pad < 0 ? 0 : pad, "", show);
    }
    printf(L_STRING_FORMAT, "", "", "", printable(rc->addr, clean, sizeof(clean)));
}

static void print_text(const struct qrec *r)
{
    const char *q = queue_name(r);
    char id[QID_LEN + 4], when[64], clean[ADDR_MAX + 8];
    struct text_state st = { "" };

    if (nmsg == 0)
        printf(L_STRING_FORMAT, "----Queue ID-----", "--Size--", "---Arrival Time----",
               "--Sender/Recipient------");
    else
        putchar('\n');
    snprintf(id, sizeof(id), "%s%s", r->qid,
             strcmp(q, "active") == 0 ? "*" : strcmp(q, "hold") == 0 ? "!" : "");
    arrival_text(r->arrival, when, sizeof(when));
    printf(L_SENDER_FORMAT, id, (unsigned long long)r->size, when,
           r->sender[0] ? printable(r->sender, clean, sizeof(clean)) : "MAILER-DAEMON");
    each_rcpt(r, text_rcpt, &st);
}

static void json_rcpt(const struct qrcpt *rc, void *arg)
{
    int *n = arg;

    printf("%s{\"address\": \"", (*n)++ ? ", " : "");
    json_str(rc->addr);
    putchar('"');
    if (rcpt_why(rc)[0]) {
        printf(", \"delay_reason\": \"");
        json_str(rcpt_why(rc));
        putchar('"');
    }
    putchar('}');
}

static void print_json(const struct qrec *r)
{
    int n = 0;

    printf("{\"queue_name\": \"");
    json_str(queue_name(r));
    printf("\", \"queue_id\": \"");
    json_str(r->qid);
    printf("\", \"arrival_time\": %llu, \"message_size\": %llu, \"forced_expire\": false, "
           "\"sender\": \"", (unsigned long long)r->arrival, (unsigned long long)r->size);
    json_str(r->sender[0] ? r->sender : "MAILER-DAEMON");
    printf("\", \"recipients\": [");
    each_rcpt(r, json_rcpt, &n);
    printf("]}\n");
}

/* One record from either source. `qid` is the key it was stored under, if known. */
static void show_record(const void *val, size_t len, const char *qid)
{
    struct qrec r;
    char err[256], clean[600];

    if (qrec_decode(val, len, &r, err, sizeof(err)) < 0 || !qid_valid(r.qid) ||
        (qid && strcmp(qid, r.qid) != 0)) {
        if (!err[0])
            str_copy(err, "bad or missing queue id", sizeof(err));
        fprintf(stderr, "mailq: warning: skipping malformed queue record%s%s: %s\n",
                qid ? " " : "", qid ? qid : "", printable(err, clean, sizeof(clean)));
        nbad++;
        qrec_free(&r);
        return;
    }
    size_t left = 0;
    for (size_t i = 0; i < r.nrcpt; i++)
        left += !rcpt_done(&r.rcpt[i]);
    if (left == 0) {
        /* only bounced (kept for the notice) or sent recipients: gone for mailq */
        qrec_free(&r);
        return;
    }
    cur_rec = &r;
    if (json)
        print_json(&r);
    else
        print_text(&r);
    cur_rec = NULL;
    nmsg++;
    total_size += r.size;
    qrec_free(&r);
    if (ferror(stdout)) {
        fprintf(stderr, "mailq: fatal: output write error: %s\n", strerror(errno));
        exit(EX_IOERR);
    }
}

static void finish(void)
{
    if (!json) {
        if (nmsg == 0)
            printf("Mail queue is empty\n");
        else
            printf("\n-- %llu Kbytes in %lu Request%s.\n", total_size / 1024, nmsg,
                   nmsg == 1 ? "" : "s");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mailq: fatal: output write error: %s\n", strerror(errno));
        exit(EX_IOERR);
    }
    exit(nbad ? EX_SOFTWARE : EX_OK);
}

static void __attribute__((noreturn)) fatal_lost(const char *what)
{
    fflush(stdout);
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
        fflush(stdout);
        fprintf(stderr, "mailq: fatal: queue manager: %s\n",
                printable(c->last.text, clean, sizeof(clean)));
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
            fflush(stdout);
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
