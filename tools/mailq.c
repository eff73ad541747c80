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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "paths.h"
#include "qclient.h"
#include "qrecord.h"
#include "qstore.h"
#include "qstore_stub.h" /* QF_DAMAGED; DELETE AT MERGE */
#include "util.h"

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

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr, "usage: mailq [-c FILE] [-j]\n");
    exit(EX_USAGE);
}

/*
 * Length of the well-formed UTF-8 character at p (2..4), or 0: overlongs,
 * surrogates, code points past U+10FFFF and C1 controls (U+0080..U+009F,
 * among them the 8-bit CSI that some terminals obey) are refused.
 */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = 0, k;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f) ||
        (p[0] == 0xc2 && p[1] < 0xa0))
        return 0;
    return n;
}

/* Copies s into out with every byte that is not printable ASCII or part of
 * a well-formed UTF-8 character replaced by '?' (Postfix's printable()).
 * out needs strlen(s) + 1 bytes; longer input is cut. */
static const char *printable(const char *s, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, n;

    while (*p && o + 1 < outlen) {
        if (*p >= 0x20 && *p < 0x7f) {
            out[o++] = (char)*p++;
        } else if ((n = utf8_len(p)) != 0 && o + n < outlen) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        } else {
            out[o++] = '?';
            p++;
        }
    }
    out[o] = 0;
    return out;
}

/* A JSON string body as postqueue -j writes it: short escapes for common
 * controls, \u00XX for the others and DEL, '"' and '\\' escaped, UTF-8
 * passed through, bytes that are not well-formed UTF-8 made '?'. */
static void json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
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
            } else if ((n = utf8_len(p)) != 0) {
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
    const char *q = qrec_queue_name(r);
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
    json_str(qrec_queue_name(r));
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
    (void)arg;
    show_record(val, len, NULL);
    return 0;
}

/* The listing from queue-mgr. */
static void list_from_server(struct qc_conn *c)
{
    char clean[600];
    enum qc_status s = qc_list(c, list_visit, NULL, NULL);

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
