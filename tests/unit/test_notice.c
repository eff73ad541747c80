/*
 * test_notice.c - CUnit suite for the notice composer (queue-mgr/notice.c)
 * and the templates it reads (common/btmpl.c): the shipped templates load,
 * bad ones are refused with FILE:LINE, the three parts come out with their
 * types and fields, the human part is quoted-printable UTF-8 with short
 * lines, nothing from the original or a remote reply can add a header
 * field or a boundary, RET and bounce_size_limit choose the third part,
 * and the language is picked as bounce_language = auto says.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "btmpl.h"
#include "config.h"
#include "../../queue-mgr/bounce.h"
#include "../../queue-mgr/notice.h"
#include "suites.h"

static struct btmpl *tmpl;

static int nt_init(void)
{
    char err[512];

    if (btmpl_load("etc/bounce", &tmpl, err, sizeof(err)) < 0) {
        fprintf(stderr, "templates: %s\n", err);
        return -1;
    }
    return 0;
}

static int nt_clean(void)
{
    btmpl_free(tmpl);
    tmpl = NULL;
    return 0;
}

static const char ORIG[] =
    "Received: from client.example (client.example [192.0.2.1])\r\n"
    "\tby mx.example.org with ESMTP id 00000000000A\r\n"
    "From: Alice <alice@example.com>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "Body line one\r\n"
    "Body line two\r\n";

static void base(struct notice_msg *m, struct notice_rcpt *r, size_t nr)
{
    memset(m, 0, sizeof(*m));
    m->kind = BT_FAILURE;
    m->lang = BT_EN;
    m->tmpl = tmpl;
    m->hostname = "mx.example.org";
    m->postmaster = "postmaster@example.org";
    m->orig_qid = "00000000000A";
    m->notice_qid = "00000000000B";
    m->orig_sender = "alice@example.com";
    m->to = "alice@example.com";
    m->envid = "";
    m->arrival = 1764633600;   /* 2025-12-02 00:00 UTC */
    m->now = 1764637200;
    m->retry_until = 1765065600;
    m->rcpt = r;
    m->nrcpt = nr;
    m->orig = ORIG;
    m->orig_len = m->orig_size = sizeof(ORIG) - 1;
    m->full = 1;
    m->size_limit = 50000;
    m->seed = 7;
}

static char *compose(const struct notice_msg *m)
{
    struct buf b;
    char err[256], *s;
    int eight = -1;

    buf_init(&b, NOTICE_MAX);
    if (notice_compose(m, &b, &eight, err, sizeof(err)) < 0) {
        fprintf(stderr, "compose: %s\n", err);
        buf_free(&b);
        return NULL;
    }
    CU_ASSERT(eight == 0 || eight == 1);
    s = malloc(b.len + 1);
    if (s) {
        memcpy(s, buf_head(&b), b.len);
        s[b.len] = 0;
    }
    buf_free(&b);
    /* NOTICE_DUMP=DIR keeps every notice composed, to read them */
    static int seq;
    const char *dump = getenv("NOTICE_DUMP");
    if (dump && s) {
        char path[512];
        snprintf(path, sizeof(path), "%s/notice-%02d.eml", dump, ++seq);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(s, f);
            fclose(f);
        }
    }
    return s;
}

/* The boundary parameter of the top Content-Type. */
static void boundary_of(const char *s, char *out, size_t len)
{
    const char *p = strstr(s, "boundary=\"");
    out[0] = 0;
    if (!p)
        return;
    p += 10;
    const char *e = strchr(p, '"');
    if (e && (size_t)(e - p) < len) {
        memcpy(out, p, (size_t)(e - p));
        out[e - p] = 0;
    }
}

/* Lines of the top header section (up to the first empty line) that
 * start with name. */
static int top_header_count(const char *s, const char *name)
{
    const char *end = strstr(s, "\r\n\r\n");
    int n = 0;

    for (const char *p = s; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
        if (strncmp(p, name, strlen(name)) == 0)
            n++;
    return n;
}

/* Every line ends in CRLF and is at most max bytes. */
static int lines_ok(const char *s, size_t max)
{
    for (const char *p = s; *p;) {
        const char *e = strstr(p, "\r\n");
        if (!e || (size_t)(e - p) > max)
            return 0;
        for (const char *q = p; q < e; q++)
            if (*q == '\r' || *q == '\n')
                return 0;
        p = e + 2;
    }
    return 1;
}

static void test_templates_shipped(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(tmpl);
    CU_ASSERT_STRING_EQUAL(btmpl_text(tmpl, BT_EN, BT_FAILURE, "subject"), "Undelivered Mail Returned to Sender");
    CU_ASSERT_PTR_NOT_NULL(btmpl_text(tmpl, BT_DE, BT_DELAY, "remote"));
    CU_ASSERT_PTR_NOT_NULL(btmpl_text(tmpl, BT_DE, BT_SUCCESS, "relayed"));
    CU_ASSERT_PTR_NULL(btmpl_text(tmpl, BT_EN, BT_SUCCESS, "advice-address"));
    CU_ASSERT_PTR_NOT_NULL(strstr(btmpl_text(tmpl, BT_DE, BT_FAILURE, "advice-address"), "Prüfen"));
}

/* Writes DIR/{en,de}/{failure,delay,success} from the shipped ones, with
 * `file` replaced by text; returns the load's result and its error. */
static int load_with(const char *file, const char *text, char *err, size_t errlen)
{
    char dir[] = "/tmp/postern-tmpl.XXXXXX", path[256];
    static const char *const langs[] = { "en", "de" }, *const kinds[] = { "failure", "delay", "success" };
    struct btmpl *t = NULL;
    int rc;

    if (!mkdtemp(dir))
        return -2;
    for (int l = 0; l < 2; l++) {
        snprintf(path, sizeof(path), "%s/%s", dir, langs[l]);
        mkdir(path, 0700);
        for (int k = 0; k < 3; k++) {
            char src[128], rel[32], buf[65536];
            snprintf(rel, sizeof(rel), "%s/%s", langs[l], kinds[k]);
            snprintf(src, sizeof(src), "etc/bounce/%s", rel);
            snprintf(path, sizeof(path), "%s/%s", dir, rel);
            FILE *in = fopen(src, "r"), *out = fopen(path, "w");
            size_t n = in ? fread(buf, 1, sizeof(buf), in) : 0;
            if (out) {
                if (strcmp(rel, file) == 0)
                    fputs(text, out);
                else
                    fwrite(buf, 1, n, out);
                fclose(out);
            }
            if (in)
                fclose(in);
        }
    }
    rc = btmpl_load(dir, &t, err, errlen);
    btmpl_free(t);
    for (int l = 0; l < 2; l++) {
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof(path), "%s/%s/%s", dir, langs[l], kinds[k]);
            unlink(path);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, langs[l]);
        rmdir(path);
    }
    rmdir(dir);
    return rc;
}

static void test_templates_refused(void)
{
    char err[512];
    const char *ok = "[subject]\nS\n[intro]\nI {hostname}\n[remote]\n{reply}\n[local]\nL\n[closing]\nC\n";

    CU_ASSERT_EQUAL(load_with("en/delay", ok, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(load_with("en/delay", "[subject]\nS\n[intro]\nI {nosuch}\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/en/delay:4: an unknown variable"));
    CU_ASSERT_EQUAL(load_with("de/delay", "[subject]\nS\n[bogus]\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/de/delay:3: unknown section"));
    CU_ASSERT_EQUAL(load_with("en/delay", "[subject]\nS\n[intro]\nTo {recipient}\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":4: a recipient's variable outside"));
    CU_ASSERT_EQUAL(load_with("en/delay", "[subject]\nS\n[intro]\n\xc3(\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":4: not valid UTF-8"));
    CU_ASSERT_EQUAL(load_with("en/delay", "[subject]\nS\n[intro]\nI\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "section [remote] missing"));
    char longl[200];
    memset(longl, 'x', 77);
    snprintf(longl + 77, sizeof(longl) - 77, "\n");
    char text[400];
    snprintf(text, sizeof(text), "[subject]\nS\n[intro]\n%s", longl);
    CU_ASSERT_EQUAL(load_with("en/success", text, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/en/success:4: line longer than 76"));
    CU_ASSERT_EQUAL(load_with("en/delay", "[subject]\nS\n[intro]\nI\n[remote]\nsaid {reply}\n", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":6: {reply} must stand alone"));
}

static void test_failure_three_parts(void)
{
    struct notice_rcpt r[3] = {
        { "bob@remote.example", "rfc822;Bob+40remote.example", NA_FAILED, "5.1.1",
          "550 5.1.1 <bob@remote.example>: Recipient address rejected", "mx.remote.example", 1764636000 },
        { "carol@remote.example", NULL, NA_FAILED, "5.2.2", "552 5.2.2 mailbox full", "mx.remote.example", 1764636000 },
        { "dave@remote.example", NULL, NA_FAILED, "4.4.7",
          "message expired after 5 days in the queue; last error: connect refused", NULL, 1764636000 },
    };
    struct notice_msg m;
    char b[100];

    base(&m, r, 3);
    m.envid = "QQ+2B1";
    char *s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(lines_ok(s, 998));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "To: <alice@example.com>\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Auto-Submitted: auto-replied\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: message/delivery-status\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: message/rfc822\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Original-Envelope-Id: QQ+1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Reporting-MTA: dns; mx.example.org\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Arrival-Date: Tue, 02 Dec 2025 00:00:00 +0000\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Original-Recipient: rfc822;Bob@remote.example\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Final-Recipient: rfc822; bob@remote.example\r\nAction: failed\r\n"
                                     "Status: 5.1.1\r\nRemote-MTA: dns; mx.remote.example\r\n"
                                     "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: Recipient address\r\n"
                                     " rejected\r\nLast-Attempt-Date: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Status: 4.4.7\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Diagnostic-Code: X-Postern; message expired"));
    /* the human part: each kind of advice once */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Transfer-Encoding: quoted-printable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "probably misspelt"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "mailbox is full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "as long as it is allowed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "The receiving server mx.remote.example refused"));
    /* the original whole, then the closing boundary */
    boundary_of(s, b, sizeof(b));
    CU_ASSERT(strlen(b) > 10 && strlen(b) <= 70);
    char close[160];
    snprintf(close, sizeof(close), "Body line two\r\n\r\n--%s--\r\n", b);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, close));
    free(s);
}

static void test_human_part_short_lines(void)
{
    char longreply[2000];
    struct notice_rcpt r = { "bob@remote.example", NULL, NA_FAILED, "5.7.1", longreply, "mx.remote.example", 0 };
    struct notice_msg m;

    memset(longreply, 0, sizeof(longreply));
    for (int i = 0; i < 150; i++)
        strcat(longreply, "word ");
    base(&m, &r, 1);
    m.lang = BT_DE;
    char *s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* quoted-printable: no line above 76, umlauts as UTF-8 escapes */
    const char *h = strstr(s, "quoted-printable\r\n\r\n"), *e = h ? strstr(h, "\r\n--") : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    for (const char *p = h + 20; p < e;) {
        const char *n = strstr(p, "\r\n");
        CU_ASSERT(n - p <= 76);
        p = n + 2;
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Empf=C3=A4nger"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Language: de\r\n"));
    /* the reply is bounded: 600 bytes quoted at most */
    CU_ASSERT(strlen(s) < 9000);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Subject: Ihre Nachricht konnte nicht zugestellt werden\r\n"));
    free(s);
    /* a subject with umlauts is an RFC 2047 word */
    m.kind = BT_DELAY;
    r.action = NA_DELAYED;
    s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Subject: =?UTF-8?Q?Verz=C3=B6gerte_Zustellung_Ihrer_Nachricht?=\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Will-Retry-Until: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Action: delayed\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: text/rfc822-headers\r\n")); /* delays: headers only */
    free(s);
}

static void test_no_injection(void)
{
    const char *evil = "550 5.1.1 no\r\nX-Injected: 1\r\n\r\n--=_00000000000B\r\nContent-Type: text/html";
    struct notice_rcpt r = { "bob@remote.example", "rfc822;a+0D+0AX-Injected:+201", NA_FAILED, "5.1.1", evil,
                             "mx.remote.example", 0 };
    struct notice_msg m;
    char b[100];

    base(&m, &r, 1);
    m.envid = "E+0D+0AX-Injected:+201";
    char *s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(lines_ok(s, 998));
    /* no line anywhere starts with the injected field */
    CU_ASSERT_PTR_NULL(strstr(s, "\r\nX-Injected"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Original-Envelope-Id: E+0D+0AX-Injected:+201\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Original-Recipient: rfc822;a+0D+0AX-Injected:+201\r\n"));
    boundary_of(s, b, sizeof(b));
    free(s);

    /* an original holding the boundary that would have been chosen */
    char orig[4096];
    snprintf(orig, sizeof(orig), "Subject: x\r\n\r\n--%s\r\nContent-Type: text/plain\r\n\r\nfake\r\n--%s--\r\n", b, b);
    m.orig = orig;
    m.orig_len = m.orig_size = strlen(orig);
    s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char b2[100];
    boundary_of(s, b2, sizeof(b2));
    CU_ASSERT(strcmp(b, b2) != 0);
    CU_ASSERT_PTR_NULL(strstr(orig, b2));
    CU_ASSERT_EQUAL(top_header_count(s, "Content-Type:"), 1);
    free(s);
}

static void test_original_part(void)
{
    struct notice_rcpt r = { "bob@remote.example", NULL, NA_FAILED, "5.1.1", "550 no", "mx", 0 };
    struct notice_msg m;
    static const char nohdr[] = "just a body line\r\nand another\r\n";
    static const char eight[] = "Subject: gr\xc3\xbc\xc3\x9f\r\n\r\n\xff body\r\n";
    int sep;

    base(&m, &r, 1);
    /* RET=HDRS */
    m.full = 0;
    char *s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
    CU_ASSERT_PTR_NULL(strstr(s, "Body line one"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Subject: hello\r\n"));
    free(s);
    /* larger than bounce_size_limit: headers only */
    m.full = 1;
    m.size_limit = 20;
    s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
    free(s);
    /* no header at all: a valid message/rfc822 with an empty header */
    m.size_limit = 50000;
    m.orig = nohdr;
    m.orig_len = m.orig_size = sizeof(nohdr) - 1;
    CU_ASSERT_EQUAL(notice_header_len(nohdr, sizeof(nohdr) - 1, &sep), 0);
    s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: message/rfc822\r\n\r\n\r\njust a body line\r\n"));
    free(s);
    /* 8-bit headers and body: 8bit transfer encoding, SMTPUTF8 types */
    m.orig = eight;
    m.orig_len = m.orig_size = sizeof(eight) - 1;
    m.utf8 = 1;
    s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "report-type=global-delivery-status"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: message/global-delivery-status\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n"));
    free(s);
    /* a header cut by the read limit ends at its last whole line */
    CU_ASSERT_EQUAL(notice_header_len("A: 1\r\nB: 2", 11, &sep), 6);
    CU_ASSERT_EQUAL(sep, 0);
    CU_ASSERT_EQUAL(notice_header_len("A: 1\r\n folded\r\n\r\nbody", 22, &sep), 15);
    CU_ASSERT_EQUAL(sep, 1);
}

static void test_success_actions(void)
{
    struct notice_rcpt r[3] = {
        { "a@local.example", NULL, NA_DELIVERED, "2.0.0", NULL, NULL, 1 },
        { "b@remote.example", NULL, NA_RELAYED, "2.0.0", "250 ok", "mx.remote.example", 1 },
        { "list@local.example", NULL, NA_EXPANDED, "2.0.0", NULL, NULL, 0 },
    };
    struct notice_msg m;

    base(&m, r, 3);
    m.kind = BT_SUCCESS;
    char *s = compose(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Action: delivered\r\nStatus: 2.0.0\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.remote.example\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Action: expanded\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Subject: Successful Mail Delivery Report\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
    free(s);
}

static void test_language_and_advice(void)
{
    static const char cl[] = "Subject: x\r\nContent-Language: de-DE\r\n\r\nb\r\n";
    static const char al[] = "Subject: x\r\nAccept-Language: en-US, de;q=0.5\r\n\r\nb\r\n";
    static const char none[] = "Subject: x\r\n\r\nContent-Language: de\r\n";

    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, cl, sizeof(cl) - 1, "a@example.com"), BT_DE);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, al, sizeof(al) - 1, "a@example.de"), BT_EN);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, none, sizeof(none) - 1, "a@example.com"), BT_EN);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, none, sizeof(none) - 1, "a@example.CH"), BT_DE);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, none, sizeof(none) - 1, "a@example.at"), BT_DE);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_AUTO, none, sizeof(none) - 1, ""), BT_EN);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_DE, none, sizeof(none) - 1, ""), BT_DE);
    CU_ASSERT_EQUAL(notice_language(CONF_BOUNCE_EN, cl, sizeof(cl) - 1, ""), BT_EN);
    CU_ASSERT_STRING_EQUAL(notice_advice("5.1.1", "550 no"), "advice-address");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.2.2", "552"), "advice-mailbox");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.0.0", "552 over quota"), "advice-mailbox");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.3.4", "552 too big"), "advice-size");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.7.1", "554 spam"), "advice-policy");
    CU_ASSERT_STRING_EQUAL(notice_advice("4.4.7", "expired"), "advice-expired");
    CU_ASSERT_STRING_EQUAL(notice_advice("4.4.1", "message expired after 5 days in the queue; last error: x"),
                           "advice-expired");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.4.6", "loop"), "advice-loop");
    CU_ASSERT_STRING_EQUAL(notice_advice("5.0.0", "554 go away"), "advice-refused");
    CU_ASSERT_STRING_EQUAL(notice_advice("x", NULL), "advice-other");
}

/* ---- bounce_plan (queue-mgr/bounce.c), pure ---- */

static void plan_rec(struct qrec *r, const char *sender, unsigned kind, size_t n)
{
    qrec_init(r);
    snprintf(r->qid, sizeof(r->qid), "00000000000A");
    snprintf(r->sender, sizeof(r->sender), "%s", sender);
    r->arrival = 1000;
    r->notice_kind = kind;
    for (size_t i = 0; i < n; i++) {
        char a[32];
        snprintf(a, sizeof(a), "r%zu@x.example", i);
        CU_ASSERT_FATAL(qrec_add_rcpt(r, a) == 0);
    }
}

static void test_bounce_plan(void)
{
    struct bounce_policy pol = { 60, 3600, "postmaster@here.example" };
    struct bounce_plan p;
    struct qrec r;

    /* two bounced (one NOTIFY=NEVER), one still deferred */
    plan_rec(&r, "a@s.example", NOTICE_NONE, 3);
    r.rcpt[0].status = RCPT_BOUNCED;
    r.rcpt[1].status = RCPT_BOUNCED;
    r.rcpt[1].notify = NOTIFY_NEVER;
    r.rcpt[2].status = RCPT_DEFERRED;
    r.rcpt[2].attempts = 1;
    CU_ASSERT_EQUAL_FATAL(bounce_plan(&r, &pol, 1010, &p), 0);
    CU_ASSERT_EQUAL(p.kind, BT_FAILURE);
    CU_ASSERT_EQUAL(p.notice, 1);
    CU_ASSERT_STRING_EQUAL(p.to, "a@s.example");
    CU_ASSERT_EQUAL(p.n, 2);
    CU_ASSERT_EQUAL(p.report[0], 1);
    CU_ASSERT_EQUAL(p.report[1], 0);
    CU_ASSERT_EQUAL(p.mark[1], QN_FAILURE);
    CU_ASSERT_EQUAL(p.remove_orig, 0);
    CU_ASSERT_EQUAL(bounce_waits(&r), 1);
    bounce_plan_free(&p);
    /* once marked: the delay warning is next, after delay_warning only */
    r.rcpt[0].notice = r.rcpt[1].notice = QN_FAILURE;
    CU_ASSERT_EQUAL(bounce_waits(&r), 0);
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1030, &p), 0);
    CU_ASSERT_EQUAL(p.kind, -1);
    bounce_plan_free(&p);
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1060, &p), 0);
    CU_ASSERT_EQUAL(p.kind, BT_DELAY);
    CU_ASSERT_EQUAL(p.n, 1);
    CU_ASSERT_EQUAL(p.idx[0], 2);
    CU_ASSERT_EQUAL(p.action[0], NA_DELAYED);
    bounce_plan_free(&p);
    r.rcpt[2].notify = NOTIFY_FAILURE; /* excludes DELAY */
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1060, &p), 0);
    CU_ASSERT_EQUAL(p.kind, -1);
    bounce_plan_free(&p);
    /* the last one sent with NOTIFY=SUCCESS through a hop without DSN */
    r.rcpt[2].status = RCPT_SENT;
    r.rcpt[2].notify = NOTIFY_SUCCESS;
    r.rcpt[2].notice = QN_RELAYED;
    CU_ASSERT_EQUAL(bounce_waits(&r), 1);
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1060, &p), 0);
    CU_ASSERT_EQUAL(p.kind, BT_SUCCESS);
    CU_ASSERT_EQUAL(p.action[0], NA_RELAYED);
    CU_ASSERT_EQUAL(p.remove_orig, 1);
    bounce_plan_free(&p);
    qrec_free(&r);

    /* mail from <>: marks, no notice; our notice: a double bounce; a
     * double bounce: dropped */
    plan_rec(&r, "", NOTICE_NONE, 1);
    r.rcpt[0].status = RCPT_BOUNCED;
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1010, &p), 0);
    CU_ASSERT_EQUAL(p.kind, BT_FAILURE);
    CU_ASSERT_EQUAL(p.notice, 0);
    CU_ASSERT_EQUAL(p.remove_orig, 1);
    bounce_plan_free(&p);
    r.notice_kind = NOTICE_DSN;
    r.rcpt[0].notify = NOTIFY_NEVER;
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1010, &p), 0);
    CU_ASSERT_EQUAL(p.notice, 1);
    CU_ASSERT_EQUAL(p.notice_kind, NOTICE_DOUBLE);
    CU_ASSERT_STRING_EQUAL(p.to, "postmaster@here.example");
    bounce_plan_free(&p);
    r.notice_kind = NOTICE_DOUBLE;
    CU_ASSERT_EQUAL(bounce_plan(&r, &pol, 1010, &p), 0);
    CU_ASSERT_EQUAL(p.notice, 0);
    CU_ASSERT_PTR_NOT_NULL(p.why);
    bounce_plan_free(&p);
    qrec_free(&r);

    char host[64];
    CU_ASSERT_EQUAL(bounce_remote_host("mx.x.example[192.0.2.1]:25", host, sizeof(host)), 0);
    CU_ASSERT_STRING_EQUAL(host, "mx.x.example");
    CU_ASSERT_EQUAL(bounce_remote_host("none", host, sizeof(host)), -1);
}

void suite_notice(void)
{
    CU_pSuite s = CU_add_suite("notice", nt_init, nt_clean);

    if (!s)
        return;
    CU_add_test(s, "shipped templates load", test_templates_shipped);
    CU_add_test(s, "bad templates refused with FILE:LINE", test_templates_refused);
    CU_add_test(s, "failure: three parts, every field", test_failure_three_parts);
    CU_add_test(s, "human part: QP, short lines, German, bounded reply", test_human_part_short_lines);
    CU_add_test(s, "nothing injects headers or boundaries", test_no_injection);
    CU_add_test(s, "the original: RET, size limit, no header, 8-bit", test_original_part);
    CU_add_test(s, "success: delivered, relayed, expanded", test_success_actions);
    CU_add_test(s, "language and advice", test_language_and_advice);
    CU_add_test(s, "bounce_plan: which notice, to whom, what is marked", test_bounce_plan);
}
