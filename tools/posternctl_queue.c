/*
 * posternctl_queue.c - the queue commands of posternctl (posternctl_queue.h):
 *
 *   show ID              the envelope, each recipient's state and last
 *                        reason, then the message (control bytes made '?')
 *   delete ID...|ALL|-s SENDER|-r RECIPIENT|-
 *   hold ID...|-         held ('!' in mailq): not delivered until released
 *   release ID...|-      back to the schedule, looked at at once
 *   requeue ID...|-      every recipient still to deliver due now, its
 *                        destinations revived
 *   stats [-p]           queue-mgr's figures; -p the Prometheus text as is
 *
 * "-" reads ids from standard input, one a line (mailq's '*' or '!' mark
 * after an id is ignored, so `mailq -j | jq -r .queue_id` and mailq's own
 * text both work), sent QCTL_IDS_MAX a request. Messages like postsuper's
 * ("Deleted: N messages"). Exit: 0; EX_DATAERR when an id was not queued
 * (the others are still acted on); EX_NOPERM, EX_UNAVAILABLE, EX_TEMPFAIL
 * as flush. queue-mgr decides who may; nothing here is trusted for that,
 * and everything it sends back is printed made harmless.
 */
#include "posternctl_queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "qctl.h"
#include "qrecord.h"
#include "util.h"

#define CTL_TIMEOUT_MS 60000

static const char *const commands[] = { "show", "delete", "hold", "release", "requeue", "stats", NULL };

int ctlq_is_command(const char *word)
{
    for (size_t i = 0; commands[i]; i++)
        if (strcmp(commands[i], word) == 0)
            return 1;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: %s", CTLQ_USAGE + 7);
    return EX_USAGE;
}

static const char *clean(const char *s, char *out, size_t outlen)
{
    return log_sanitize(s, strlen(s), out, outlen);
}

/* The exit code and message for a failed call. */
static int failed(struct qc_conn *c, const char *what, enum qc_status s)
{
    char t[600];

    if (s == QC_REFUSED) {
        fprintf(stderr, "posternctl: %s refused: %s %s\n", what, c->last.code,
                clean(c->last.text, t, sizeof(t)));
        if (strstr(c->last.text, "permission"))
            return EX_NOPERM;
        return c->last.code[0] == '5' ? EX_DATAERR : EX_TEMPFAIL;
    }
    fprintf(stderr, "posternctl: fatal: %s: %s\n", what, qc_status_text(s));
    return EX_TEMPFAIL;
}

/* ---- show ---- */

static const char *status_word(unsigned s)
{
    static const char *const w[] = { "pending", "deferred", "sent", "bounced" };
    return s <= RCPT_BOUNCED ? w[s] : "?";
}

static void show_time(const char *label, uint64_t t)
{
    char when[64] = "?";
    time_t tt = (time_t)t;
    struct tm tm;

    if (t < (uint64_t)INT64_MAX / 2 && localtime_r(&tt, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
    printf("%-12s %s (%llu)\n", label, when, (unsigned long long)t);
}

static int show_bad;

static void show_rec(const void *rec, size_t len, int active, void *arg)
{
    struct qrec r;
    char err[256], a[1200], b[1200];

    (void)arg;
    if (qrec_decode(rec, len, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: malformed queue record: %s\n", clean(err, a, sizeof(a)));
        show_bad = 1;
        return;
    }
    printf("%-12s %s\n", "Queue ID:", r.qid);
    const char *q = qrec_queue_name(&r);
    if (strcmp(q, "hold") != 0 && active)
        q = "active";
    else if (strcmp(q, "active") == 0)
        q = "incoming"; /* as mailq: "active" only while a delivery is in flight */
    printf("%-12s %s%s\n", "Queue:", q,
           (r.flags & QF_DAMAGED) ? " (queue file missing or damaged)" : "");
    show_time("Arrival:", r.arrival);
    printf("%-12s %llu\n", "Size:", (unsigned long long)r.size);
    printf("%-12s <%s>\n", "Sender:", clean(r.sender, a, sizeof(a)));
    if (r.envid[0])
        printf("%-12s %s\n", "Envelope ID:", clean(r.envid, a, sizeof(a)));
    printf("%-12s %s%s\n", "Return:", r.ret == RET_FULL ? "FULL" : r.ret == RET_HDRS ? "HDRS" : "default",
           r.body == BODY_8BITMIME ? ", BODY=8BITMIME" : r.body == BODY_7BIT ? ", BODY=7BIT" : "");
    if (strcmp(r.origin, "pickup") == 0)
        printf("%-12s pickup, uid %lld\n", "Origin:", (long long)r.uid);
    else
        printf("%-12s %s[%s] helo=%s proto=%s%s%s\n", "Origin:", clean(r.client_name, a, sizeof(a)),
               clean(r.client_addr, b, sizeof(b)), r.helo[0] ? r.helo : "-", r.proto[0] ? r.proto : "-",
               r.auth[0] ? " auth=" : "", r.auth[0] ? r.auth : "");
    printf("Recipients:  %zu\n", r.nrcpt);
    for (size_t i = 0; i < r.nrcpt; i++) {
        const struct qrcpt *rc = &r.rcpt[i];
        printf("  <%s> %s attempts=%u", clean(rc->addr, a, sizeof(a)), status_word(rc->status), rc->attempts);
        if ((rc->status == RCPT_PENDING || rc->status == RCPT_DEFERRED) && rc->next_try)
            printf(" next_try=%llu", (unsigned long long)rc->next_try);
        if (rc->dsn[0])
            printf(" dsn=%s", rc->dsn);
        if (rc->orcpt)
            printf(" orcpt=%s", clean(rc->orcpt, b, sizeof(b)));
        if (rc->reply)
            printf("\n      (%s)", clean(rc->reply, b, sizeof(b)));
        putchar('\n');
    }
    printf("-- message --\n");
    qrec_free(&r);
}

/* Message bytes for the terminal: CRLF as LF, other control bytes '?'. */
static void show_data(const void *p, size_t n, void *arg)
{
    static int cr;
    const unsigned char *s = p;

    (void)arg;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (cr && ch != '\n')
            putchar('?');
        cr = ch == '\r';
        if (cr)
            continue;
        putchar(ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f) ? ch : '?');
    }
}

static int cmd_show(struct qc_conn *c, int argc, char **argv)
{
    enum qc_status s;

    if (argc != 2 || !qid_valid(argv[1]))
        return usage();
    s = qctl_show(c, argv[1], show_rec, show_data, NULL);
    fflush(stdout);
    if (s != QC_OK)
        return failed(c, "show", s);
    return show_bad ? EX_SOFTWARE : EX_OK;
}

/* ---- ids ---- */

struct idrun {
    struct qc_conn *c;
    uint16_t type;
    char ids[QCTL_IDS_MAX][QID_LEN + 1];
    size_t n;
    uint64_t done, missing, bad;
    int rc;
};

static int id_flush(struct idrun *r)
{
    struct qctl_done d;
    enum qc_status s;

    if (!r->n)
        return 0;
    s = qctl_ids(r->c, r->type, r->ids, r->n, &d);
    r->n = 0;
    if (s != QC_OK) {
        r->rc = failed(r->c, "request", s);
        return -1;
    }
    r->done += d.count;
    r->missing += d.missing;
    return 0;
}

/* One id as typed or piped: mailq's mark after it is dropped. */
static int id_add(struct idrun *r, const char *word)
{
    char id[64], t[128];
    size_t n = strlen(word);

    while (n && (word[n - 1] == '*' || word[n - 1] == '!' || word[n - 1] == '\r' || word[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0;
    if (n >= sizeof(id) || (memcpy(id, word, n), id[n] = 0, !qid_valid(id))) {
        fprintf(stderr, "posternctl: warning: %s is not a queue id; skipped\n", clean(word, t, sizeof(t)));
        r->bad++;
        return 0;
    }
    memcpy(r->ids[r->n++], id, QID_LEN + 1);
    return r->n == QCTL_IDS_MAX ? id_flush(r) : 0;
}

static int read_ids(struct idrun *r)
{
    char line[256];

    while (fgets(line, sizeof(line), stdin)) {
        char *nl = strchr(line, '\n'), *p = line;
        if (nl)
            *nl = 0;
        else if (!feof(stdin)) {
            int ch;
            while ((ch = getchar()) != EOF && ch != '\n')
                ;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (id_add(r, p) < 0)
            return -1;
    }
    return 0;
}

static const char *done_word(uint16_t type)
{
    switch (type) {
    case Q_DELETE: return "Deleted";
    case Q_HOLD: return "Placed on hold";
    case Q_RELEASE: return "Released from hold";
    default: return "Requeued";
    }
}

static int report(uint16_t type, uint64_t done, uint64_t missing, uint64_t bad)
{
    printf("posternctl: %s: %llu message%s\n", done_word(type), (unsigned long long)done, done == 1 ? "" : "s");
    if (missing)
        fprintf(stderr, "posternctl: warning: %llu id(s) not in the queue\n", (unsigned long long)missing);
    return missing || bad ? EX_DATAERR : EX_OK;
}

static int cmd_ids(struct qc_conn *c, uint16_t type, int argc, char **argv)
{
    static struct idrun r;

    if (argc < 2)
        return usage();
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.type = type;
    for (int i = 1; i < argc; i++) {
        int rc = strcmp(argv[i], "-") == 0 ? read_ids(&r) : id_add(&r, argv[i]);
        if (rc < 0)
            return r.rc;
    }
    if (id_flush(&r) < 0)
        return r.rc;
    return report(type, r.done, r.missing, r.bad);
}

static int cmd_delete(struct qc_conn *c, int argc, char **argv)
{
    struct qctl_done d;
    enum qc_status s;

    if (argc == 2 && strcmp(argv[1], "ALL") == 0)
        s = qctl_delete_sel(c, 1, NULL, NULL, &d);
    else if (argc == 3 && strcmp(argv[1], "-s") == 0)
        s = qctl_delete_sel(c, 0, argv[2], NULL, &d);
    else if (argc == 3 && strcmp(argv[1], "-r") == 0 && argv[2][0])
        s = qctl_delete_sel(c, 0, NULL, argv[2], &d);
    else if (argc >= 2 && argv[1][0] == '-' && argv[1][1])
        return usage();
    else
        return cmd_ids(c, Q_DELETE, argc, argv);
    if (s != QC_OK)
        return failed(c, "delete", s);
    return report(Q_DELETE, d.count, 0, 0);
}

/* ---- stats ---- */

/* The text as a table: one figure a line, without the HELP/TYPE comments
 * and the histogram buckets (their _sum and _count stay). */
static void stats_table(const char *text)
{
    const char *p = text;

    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *sp = memrchr(p, ' ', n);
        if (n && p[0] != '#' && sp && !memmem(p, n, "_bucket{", 8))
            printf("%-72.*s %.*s\n", (int)(sp - p), p, (int)(p + n - sp - 1), sp + 1);
        p += n + (e != NULL);
    }
}

static int cmd_stats(struct qc_conn *c, int argc, char **argv)
{
    struct buf text;
    enum qc_status s;
    int raw = argc == 2 && strcmp(argv[1], "-p") == 0;

    if (argc > 2 || (argc == 2 && !raw))
        return usage();
    buf_init(&text, QCTL_STATS_MAX + 1);
    s = qctl_stats(c, &text);
    if (s != QC_OK || buf_append(&text, "", 1) < 0) {
        buf_free(&text);
        return failed(c, "stats", s);
    }
    if (raw)
        fputs(buf_head(&text), stdout);
    else
        stats_table(buf_head(&text));
    buf_free(&text);
    return EX_OK;
}

int ctlq_main(const char *conf, int argc, char **argv)
{
    struct config cfg;
    struct qc_conn qc;
    char err[1200];
    int rc;

    config_defaults(&cfg);
    if (config_load(&cfg, config_path(conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "posternctl: fatal: %s\n", err);
        config_free(&cfg);
        return EX_CONFIG;
    }
    if (qc_connect(&qc, cfg.run_dir, SOCK_QUEUE_CONTROL, CTL_TIMEOUT_MS) != QC_OK) {
        fprintf(stderr, "posternctl: fatal: queue manager is down (connect %s/%s: %s)\n",
                cfg.run_dir, SOCK_QUEUE_CONTROL, strerror(errno));
        config_free(&cfg);
        return EX_UNAVAILABLE;
    }
    config_free(&cfg);
    if (strcmp(argv[0], "show") == 0)
        rc = cmd_show(&qc, argc, argv);
    else if (strcmp(argv[0], "delete") == 0)
        rc = cmd_delete(&qc, argc, argv);
    else if (strcmp(argv[0], "hold") == 0)
        rc = cmd_ids(&qc, Q_HOLD, argc, argv);
    else if (strcmp(argv[0], "release") == 0)
        rc = cmd_ids(&qc, Q_RELEASE, argc, argv);
    else if (strcmp(argv[0], "requeue") == 0)
        rc = cmd_ids(&qc, Q_REQUEUE, argc, argv);
    else
        rc = cmd_stats(&qc, argc, argv);
    qc_close(&qc);
    if (fflush(stdout) != 0 && rc == EX_OK)
        rc = EX_IOERR;
    return rc;
}
