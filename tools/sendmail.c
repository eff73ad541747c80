/*
 * sendmail - local submission with the Sendmail/Postfix command line that
 * cron, PHP and scripts use:
 *
 *   sendmail [-t] [-i] [-oi] [-f SENDER] [-F NAME] [-C FILE] [-bm]
 *            [-B 7BIT|8BITMIME] [-N DSN] [-R full|hdrs] [-V ENVID]
 *            [-o X, -odi, -oem, -U, -v, ... accepted and ignored] [--] [RCPT...]
 *   sendmail -bp            the queue, as mailq
 *   sendmail -q[Rsite|Iid]  posternctl flush [site|id]; -qINTERVAL does nothing
 *   sendmail -bs            SMTP on standard input/output (sendmail_bs.c)
 *
 * Reads the message from standard input (never from /dev/tty), makes every
 * line end in CRLF, adds From:, Date: and Message-Id: when missing, removes
 * Bcc:, and hands the message to queue-mgr over RUN_DIR/queue/pickup.sock
 * with common/qclient: Q_OPEN gives a queue id (queue-mgr writes the
 * Received: line itself), the message goes in Q_DATA frames (we never hold
 * a descriptor of a queue file), then Q_COMMIT with the envelope.
 * queue-mgr records our uid from SO_PEERCRED and validates everything
 * again, the size too; nothing here is trusted by it.
 *
 * Compatibility notes:
 *  - Without -i (or -oi) a line consisting of a single "." ends the input,
 *    as in Sendmail; with -i it is an ordinary line.
 *  - With -t the recipients of To:, Cc: and Bcc: (or, when the message has
 *    Resent- headers, of Resent-To:, Resent-Cc: and Resent-Bcc:) are ADDED to
 *    those on the command line. This is Postfix's behaviour; Sendmail would
 *    instead remove command-line recipients from the list.
 *  - Bcc: and Resent-Bcc: headers are always removed from the stored message.
 *  - Addresses without a domain get "@hostname" (Postfix: @myorigin).
 *  - Line endings: LF, CRLF and a bare CR each end a line and become CRLF
 *    (CR CR LF counts as one), so no bare CR or LF reaches the queue (SMTP
 *    smuggling). A NUL byte makes the whole message refused (exit 65).
 *
 * Exit status (sysexits.h): 0 queued; 64 usage or bad address; 65 bad
 * message data or message refused for good; 67 unknown user; 74 read error;
 * 75 queue manager down or temporary failure; 78 configuration error.
 *
 * Never builds a shell command or a path from the message or the envelope.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "dsn.h"
#include "log.h"
#include "paths.h"
#include "proto.h" /* PROTO_DATA_MAX */
#include "qclient.h"
#include "qrecord.h"
#include "rfc5322.h"
#include "sendmail_bs.h"
#include "util.h"

#define IO_TIMEOUT_MS 60000
#define HDR_SECTION_MAX (1u << 20)  /* header section held in memory */
#define FULLNAME_MAX 200
static struct config cfg;

/* What must be undone when we give up after Q_OPEN. */
static struct qc_conn *g_conn;
static char g_qid[QID_LEN + 1];

/* ---- errors ---- */

static void abort_open(void)
{
    if (!g_conn || !g_qid[0])
        return;
    /* queue-mgr removes the file anyway when we disconnect; say it first. */
    g_conn->timeout_ms = 5000;
    qc_abort(g_conn, g_qid);
    g_qid[0] = 0;
}

static void __attribute__((noreturn, format(printf, 2, 3))) die(int code, const char *fmt, ...)
{
    va_list ap;

    abort_open();
    fputs("sendmail: fatal: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* Same, with the exact wording given (no "fatal:"), for messages that
 * scripts grep for. */
static void __attribute__((noreturn)) die_plain(int code, const char *text)
{
    abort_open();
    fprintf(stderr, "sendmail: %s\n", text);
    exit(code);
}

static void __attribute__((noreturn)) usage(const char *why)
{
    if (why)
        fprintf(stderr, "sendmail: fatal: %s\n", why);
    fprintf(stderr, "usage: sendmail [-t] [-i] [-f sender] [-F fullname] [-C config] "
                    "[-B 7BIT|8BITMIME] [-N dsn] [-R full|hdrs] [-V envid] [recipient ...]\n");
    exit(EX_USAGE);
}

/* Untrusted text for an error message: control bytes become '?'. */
static const char *clean(const char *s, size_t len, char *out, size_t outlen)
{
    return log_sanitize(s, len, out, outlen);
}

/* ---- reading standard input ---- */

struct input {
    unsigned char buf[65536];
    size_t pos, len;
    int eof;
    size_t empty_lines;     /* still to return, from a run of bare CRs */
};

static int in_fill(struct input *in)
{
    ssize_t n;

    if (in->pos < in->len)
        return 1;
    if (in->eof)
        return 0;
    do
        n = read(STDIN_FILENO, in->buf, sizeof(in->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        die(EX_IOERR, "error reading the message from standard input: %s", strerror(errno));
    in->pos = 0;
    in->len = (size_t)n;
    if (n == 0)
        in->eof = 1;
    return n > 0;
}

enum { PIECE_EOF, PIECE_LINE, PIECE_PART };

/*
 * Reads the next piece of the current line, without its line ending, into
 * out (up to max bytes). PIECE_LINE: the line ended here (at LF, CRLF, a
 * bare CR, or the end of input after some bytes); PIECE_PART: max bytes read
 * and the line goes on; PIECE_EOF: no more input.
 *
 * Line endings: LF, CR LF, and CR CR... LF (a broken CRLF) each end one
 * line; a run of k CRs followed by anything else ends k lines (old Mac
 * text). So no CR or LF is ever left inside a line.
 */
static int read_piece(struct input *in, char *out, size_t max, size_t *n)
{
    *n = 0;
    if (in->empty_lines) {
        in->empty_lines--;
        return PIECE_LINE;
    }
    for (;;) {
        unsigned char c;

        if (!in_fill(in))
            return *n ? PIECE_LINE : PIECE_EOF;
        c = in->buf[in->pos];
        if (c == '\n') {
            in->pos++;
            return PIECE_LINE;
        }
        if (c == '\r') {
            size_t more = 0;
            in->pos++;
            while (in_fill(in) && in->buf[in->pos] == '\r') {
                in->pos++;
                more++;
            }
            if (in_fill(in) && in->buf[in->pos] == '\n')
                in->pos++;
            else
                in->empty_lines = more;
            return PIECE_LINE;
        }
        if (c == 0)
            die_plain(EX_DATAERR, "message contains a NUL byte");
        if (*n == max)
            return PIECE_PART;
        out[(*n)++] = (char)c;
        in->pos++;
    }
}

/* ---- streaming the message to queue-mgr ---- */

struct output {
    struct qc_conn *conn;
    char buf[PROTO_DATA_MAX];
    size_t len;
    uint64_t total, max;
};

static void send_data(struct output *o, const void *p, size_t n)
{
    enum qc_status s = qc_data(o->conn, g_qid, p, n);

    if (s != QC_OK)
        die(EX_TEMPFAIL, "%s (sending the message); message not sent", qc_status_text(s));
}

static void out_flush(struct output *o)
{
    if (o->len)
        send_data(o, o->buf, o->len);
    o->len = 0;
}

static void out_write(struct output *o, const void *p, size_t n)
{
    o->total += n;
    if (o->total > o->max)
        die(EX_DATAERR, "message too large (max_message_size is %llu bytes)",
            (unsigned long long)o->max);
    if (n > sizeof(o->buf) - o->len) {
        out_flush(o);
        if (n > sizeof(o->buf)) {
            send_data(o, p, n);
            return;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_str(struct output *o, const char *s)
{
    out_write(o, s, strlen(s));
}

/* ---- addresses ---- */

/*
 * Turns what a user wrote into a checked mailbox: "@hostname" appended when
 * there is no domain, UTF-8 allowed (*utf8 set when used), the canonical
 * form (domain lower-cased) in out. NULL, or the reason it is no address.
 */
static const char *normalize_addr(const char *s, size_t n, int allow_empty, char *out,
                                  size_t outlen, int *utf8)
{
    return rfc5322_mailbox(s, n, cfg.hostname, ADDR_UTF8 | (allow_empty ? ADDR_ALLOW_EMPTY : 0),
                           out, outlen, utf8);
}

/* A set of recipients already added, so that each is queued once. */
struct rcpt_set {
    size_t *slot;       /* index + 1 into rec->rcpt, 0 = empty */
    size_t size;        /* power of two */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void add_rcpt(struct qrec *rec, struct rcpt_set *set, const char *s, size_t n,
                     const char *written, const char *where)
{
    char addr[ADDR_MAX + 1];
    const char *why;
    int utf8 = 0;
    size_t i;

    if ((why = normalize_addr(s, n, 0, addr, sizeof(addr), &utf8)) != NULL)
        die(EX_USAGE, "bad recipient address \"%s\" %s: %s", written, where, why);
    if (rec->nrcpt + 1 > set->size / 2) {
        size_t nsize = set->size ? set->size * 2 : 64;
        size_t *ns = calloc(nsize, sizeof(*ns));
        if (!ns)
            die(EX_TEMPFAIL, "out of memory");
        for (i = 0; i < set->size; i++) {
            if (!set->slot[i])
                continue;
            size_t j = hash_str(rec->rcpt[set->slot[i] - 1].addr) & (nsize - 1);
            while (ns[j])
                j = (j + 1) & (nsize - 1);
            ns[j] = set->slot[i];
        }
        free(set->slot);
        set->slot = ns;
        set->size = nsize;
    }
    for (i = hash_str(addr) & (set->size - 1); set->slot[i]; i = (i + 1) & (set->size - 1))
        if (strcmp(rec->rcpt[set->slot[i] - 1].addr, addr) == 0)
            return;
    if (qrec_add_rcpt(rec, addr) < 0)
        die(EX_USAGE, "too many recipients (at most %d)", QREC_MAX_RCPT);
    set->slot[i] = rec->nrcpt;
    if (utf8)
        rec->flags |= QF_SMTPUTF8;
}

/*
 * Adds every address of an RFC 5322 address list (common/rfc5322.h: groups,
 * comments and display names dropped). `where` says where the list was
 * found, for messages.
 */
static void add_rcpt_list(struct qrec *rec, struct rcpt_set *set, const char *s, size_t n,
                          const char *where)
{
    struct rfc5322_list l;
    struct rfc5322_addr a;
    char tmp[2 * ADDR_MAX];
    int r;

    rfc5322_list_init(&l, s, n);
    while ((r = rfc5322_list_next(&l, &a)) != 0) {
        if (r < 0 && l.err == RFC5322_EANGLE)
            die(EX_USAGE, "bad recipient address list %s: missing \">\"", where);
        clean(s + a.off, a.tlen, tmp, sizeof(tmp));
        if (r < 0)
            die(EX_USAGE, "bad recipient address \"%s\" %s: %s", tmp, where, rfc5322_strerror(l.err));
        add_rcpt(rec, set, a.spec, a.len, tmp, where);
    }
}

/* ---- the header section (common/rfc5322.h) ---- */

enum hend { H_EOF, H_DOT, H_BLANK, H_BODYLINE, H_OVERFLOW };

/*
 * Reads header lines until the blank line, the end of input, a lone "."
 * (without -i), a line that is not a header, or HDR_SECTION_MAX. What ended
 * the section is returned; the first body line or piece, if any, is in
 * h->buf at h->len, *bodylen bytes long.
 */
static enum hend read_headers(struct input *in, struct rfc5322_headers *h, int ignore_dots,
                              size_t *bodylen)
{
    for (;;) {
        size_t n;
        int k, r = read_piece(in, h->buf + h->len, HDR_SECTION_MAX - h->len, &n);
        const char *l = h->buf + h->len;

        *bodylen = n;
        if (r == PIECE_EOF)
            return H_EOF;
        if (r == PIECE_PART)
            return H_OVERFLOW;
        if (!ignore_dots && n == 1 && l[0] == '.')
            return H_DOT;
        if (n == 0)
            return H_BLANK;
        if ((k = rfc5322_hdr_line(h, h->len, n)) < 0)
            die(EX_TEMPFAIL, "out of memory");
        if (k == 0)
            return H_BODYLINE;
        h->len += n;
    }
}

/* ---- the sender and the From: line ---- */

static const struct passwd *me(void)
{
    static const struct passwd *pw;
    static int looked;

    if (!looked) {
        looked = 1;
        errno = 0;
        pw = getpwuid(getuid());
    }
    return pw;
}

/*
 * The sender's full name for From: -F, else $NAME, else the GECOS field up
 * to its first comma with '&' standing for the capitalised login (as
 * Sendmail and Postfix do). Control bytes become spaces so a name can never
 * start a new header line.
 */
static void full_name(const char *opt, char *out, size_t outlen)
{
    const struct passwd *pw;
    const char *src = opt;
    char gecos[FULLNAME_MAX + 1];
    size_t o = 0, i;

    out[0] = 0;
    if (!src || !*src)
        src = getenv("NAME");
    if ((!src || !*src) && (pw = me()) != NULL && pw->pw_gecos) {
        for (i = 0; pw->pw_gecos[i] && pw->pw_gecos[i] != ',' && o + 1 < sizeof(gecos); i++) {
            if (pw->pw_gecos[i] == '&') {
                for (size_t k = 0; pw->pw_name[k] && o + 1 < sizeof(gecos); k++)
                    gecos[o++] = k ? pw->pw_name[k] : (char)toupper((unsigned char)pw->pw_name[k]);
            } else {
                gecos[o++] = pw->pw_gecos[i];
            }
        }
        gecos[o] = 0;
        src = gecos;
        o = 0;
    }
    if (!src)
        return;
    for (i = 0; src[i] && o + 1 < outlen && o < FULLNAME_MAX; i++) {
        unsigned char c = (unsigned char)src[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    /* trim */
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = 0;
    i = strspn(out, " ");
    memmove(out, out + i, o - i + 1);
}

/* ---- options ---- */

struct opts {
    int extract;            /* -t */
    int ignore_dots;        /* -i, -oi */
    const char *sender;     /* -f, -r; NULL = the login name */
    const char *fullname;   /* -F */
    const char *conf;       /* -C */
    unsigned body;          /* -B */
    unsigned ret;           /* -R */
    unsigned notify;        /* -N */
    char envid[QREC_ENVID_MAX + 1]; /* -V, as xtext */
    int mode;               /* 0 submit; 'p' -bp, 's' -bs, 'q' -q (sendmail_bs.h) */
    const char *qarg;       /* -q's argument: "Rsite", an interval, or NULL */
};

static unsigned parse_notify(const char *s)
{
    unsigned v = 0;
    char buf[128], *tok, *save = NULL;

    if (strlen(s) >= sizeof(buf))
        usage("bad -N argument (never, or success, failure, delay)");
    str_copy(buf, s, sizeof(buf));
    for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcasecmp(tok, "never") == 0)
            v |= NOTIFY_NEVER;
        else if (strcasecmp(tok, "success") == 0)
            v |= NOTIFY_SUCCESS;
        else if (strcasecmp(tok, "failure") == 0)
            v |= NOTIFY_FAILURE;
        else if (strcasecmp(tok, "delay") == 0)
            v |= NOTIFY_DELAY;
        else
            usage("bad -N argument (never, or success, failure, delay)");
    }
    if (!v || ((v & NOTIFY_NEVER) && v != NOTIFY_NEVER))
        usage("bad -N argument (never, or success, failure, delay)");
    return v;
}

/* -V: the envelope id, printable ASCII, sent as RFC 3461 xtext. */
static void parse_envid(const char *s, char *out, size_t outlen)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            usage("bad -V argument: the envelope id must be printable ASCII");
    if (xtext_encode(s, strlen(s), out, outlen) < 0 || !dsn_envid_valid(out))
        usage("bad -V argument: the envelope id is too long");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    opterr = 0;
    /* '+': options end at the first recipient, as with Sendmail. */
    while ((c = getopt(argc, argv, "+:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx")) != -1) {
        switch (c) {
        case 'B':
            if (strcasecmp(optarg, "8BITMIME") == 0)
                o->body = BODY_8BITMIME;
            else if (strcasecmp(optarg, "7BIT") == 0)
                o->body = BODY_7BIT;
            else
                usage("-B needs 7BIT or 8BITMIME");
            break;
        case 'C':
            o->conf = optarg;
            break;
        case 'F':
            o->fullname = optarg;
            break;
        case 'N':
            o->notify = parse_notify(optarg);
            break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                o->ret = RET_FULL;
            else if (strcasecmp(optarg, "hdrs") == 0)
                o->ret = RET_HDRS;
            else
                usage("-R needs full or hdrs");
            break;
        case 'V':
            parse_envid(optarg, o->envid, sizeof(o->envid));
            break;
        case 'b':
            switch (optarg[0]) {
            case 'm':
                break;
            case 'p':
                o->mode = 'p';
                break;
            case 'i':
                usage("-bi (newaliases) is not supported");
            case 's':
                o->mode = 's';
                break;
            default:
                usage("unsupported -b mode; only -bm (deliver mail) is");
            }
            break;
        case 'f':
        case 'r':
            o->sender = optarg;
            break;
        case 'i':
            o->ignore_dots = 1;
            break;
        case 'o':
            /* -oi as in Sendmail; every other -oX is about Sendmail's own
             * delivery and error modes (-odi, -odb, -oem, -oee ...): ignored */
            if (optarg[0] == 'i' && optarg[1] == 0)
                o->ignore_dots = 1;
            break;
        case 'q':
            o->mode = 'q';
            o->qarg = optarg;
            break;
        case 'I':
            usage("-I (newaliases) is not supported");
        case 't':
            o->extract = 1;
            break;
        case 'G': case 'L': case 'O': case 'U': case 'X': case 'c': case 'e':
        case 'h': case 'm': case 'n': case 'p': case 'v': case 'x':
            break;  /* accepted for compatibility, no effect */
        case ':':
            {
                char why[64];
                if (optopt == 'q') {
                    o->mode = 'q';
                    break;
                }
                snprintf(why, sizeof(why), "option -%c needs an argument", optopt);
                usage(why);
            }
        default:
            {
                char why[64];
                if (isprint(optopt))
                    snprintf(why, sizeof(why), "unknown option -%c", optopt);
                else
                    snprintf(why, sizeof(why), "unknown option");
                usage(why);
            }
        }
    }
    return optind;
}

/* ---- talking to queue-mgr (common/qclient) ---- */

/* Exits for a failed call; `fate` says what became of the message. */
static void __attribute__((noreturn)) qc_die(const struct qc_conn *c, enum qc_status s,
                                             const char *stage, const char *fate)
{
    char tmp[600];

    if (s == QC_REFUSED) {
        g_qid[0] = 0; /* queue-mgr already dropped the file */
        die(c->last.code[0] == '5' ? EX_DATAERR : EX_TEMPFAIL, "%s",
            clean(c->last.text, strlen(c->last.text), tmp, sizeof(tmp)));
    }
    die(EX_TEMPFAIL, "%s (%s); %s", qc_status_text(s), stage, fate);
}

/* ---- main ---- */

/* What the header section holds that decides what we add. */
struct hinfo {
    int resent;         /* Resent- headers: add and extract the Resent- ones */
    int have_from, have_date, have_msgid;
};

/* The envelope sender: -f (or -r) as given, "<>" or "" for the null
 * sender, else login@hostname for the real uid. */
static void set_sender(struct qrec *rec, const char *opt)
{
    char tmp[600];
    const char *why;
    int utf8 = 0;

    if (opt) {
        const char *s = opt;
        size_t n = strlen(s);
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
            s++, n -= 2;
        why = normalize_addr(s, n, 1, rec->sender, sizeof(rec->sender), &utf8);
        if (why)
            die(EX_USAGE, "bad sender address \"%s\": %s", clean(s, n, tmp, sizeof(tmp)), why);
    } else {
        const struct passwd *pw = me();
        char local[ADDR_MAX + 1];
        if (!pw)
            die(EX_NOUSER, "no login name found for user ID %lu", (unsigned long)getuid());
        if (rfc5322_quote_local(pw->pw_name, local, sizeof(local)) < 0)
            why = addr_strerror(ADDR_ETOOLONG);
        else
            why = normalize_addr(local, strlen(local), 0, rec->sender, sizeof(rec->sender), &utf8);
        if (why)
            die(EX_USAGE, "cannot make a sender address from login name \"%s\": %s",
                clean(pw->pw_name, strlen(pw->pw_name), tmp, sizeof(tmp)), why);
    }
    if (utf8)
        rec->flags |= QF_SMTPUTF8;
}

/* Notes what is there, marks Bcc: for removal and, with -t, extracts the
 * recipients. */
static void scan_headers(struct rfc5322_headers *h, int extract, struct qrec *rec,
                         struct rcpt_set *set, struct hinfo *hi)
{
    memset(hi, 0, sizeof(*hi));
    hi->resent = rfc5322_hdr_resent(h);
    for (size_t i = 0; i < h->nline; i++) {
        int bcc = rfc5322_hdr_is(h, i, "Bcc"), rbcc = rfc5322_hdr_is(h, i, "Resent-Bcc");

        if (!h->line[i].start)
            continue;
        hi->have_from |= rfc5322_hdr_is(h, i, hi->resent ? "Resent-From" : "From");
        hi->have_date |= rfc5322_hdr_is(h, i, hi->resent ? "Resent-Date" : "Date");
        hi->have_msgid |= rfc5322_hdr_is(h, i, hi->resent ? "Resent-Message-ID" : "Message-ID");
        if (extract && rfc5322_hdr_is_rcpt(h, i, hi->resent)) {
            const char *name = h->buf + h->line[i].off;
            size_t vlen, nl = rfc5322_field_name_len(name, h->line[i].len);
            char *v = rfc5322_hdr_value(h, i, &vlen), where[80];
            if (!v)
                die(EX_TEMPFAIL, "out of memory");
            snprintf(where, sizeof(where), "in the %.*s: header", (int)nl, name);
            add_rcpt_list(rec, set, v, vlen, where);
            free(v);
        }
        if (bcc || rbcc)
            rfc5322_hdr_drop(h, i);
    }
}

/* Q_OPEN on the pickup socket: a queue id, and no descriptor. */
static void open_queue_file(struct qc_conn *conn, struct qrec *rec)
{
    enum qc_status st;
    int fd;

    if (qc_connect(conn, cfg.run_dir, SOCK_QUEUE_PICKUP, IO_TIMEOUT_MS) != QC_OK)
        die(EX_TEMPFAIL, "queue manager is down (connect %s/%s: %s); message not sent", cfg.run_dir,
            SOCK_QUEUE_PICKUP, strerror(errno));
    g_conn = conn;
    st = qc_open(conn, rec->qid, &fd);
    if (st != QC_OK)
        qc_die(conn, st, "open", "message not sent");
    if (fd >= 0) {
        /* Not what the pickup socket does: do not write through it. */
        close(fd);
        die(EX_TEMPFAIL, "unexpected descriptor from the queue manager; message not sent");
    }
    str_copy(g_qid, rec->qid, sizeof(g_qid));
}

/* From:, Date: and Message-Id: (or their Resent- forms) when missing, in
 * the forms Postfix's cleanup gives them. */
static void write_added_headers(struct output *out, const struct hinfo *hi, const struct qrec *rec,
                                const char *fullname_opt)
{
    char tmp[600];

    if (!hi->have_msgid) {
        time_t now = time(NULL);
        struct tm tm;
        char stamp[32];
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        snprintf(tmp, sizeof(tmp), "%s: <%s.%s@%s>\r\n",
                 hi->resent ? "Resent-Message-Id" : "Message-Id", stamp, rec->qid, cfg.hostname);
        out_str(out, tmp);
    }
    if (!hi->have_date) {
        char date[64];
        format_rfc5322_date(time(NULL), date, sizeof(date));
        snprintf(tmp, sizeof(tmp), "%s: %s\r\n", hi->resent ? "Resent-Date" : "Date", date);
        out_str(out, tmp);
    }
    if (!hi->have_from) {
        char name[FULLNAME_MAX + 1], quoted[2 * FULLNAME_MAX + 3], daemon[300];
        const char *from = rec->sender;
        if (!from[0]) {
            snprintf(daemon, sizeof(daemon), "MAILER-DAEMON@%s", cfg.hostname);
            from = daemon;
            name[0] = 0;
        } else {
            full_name(fullname_opt, name, sizeof(name));
        }
        out_str(out, hi->resent ? "Resent-From: " : "From: ");
        if (name[0]) {
            if (rfc5322_phrase(name, quoted, sizeof(quoted)) < 0)
                die(EX_SOFTWARE, "full name too long");
            out_str(out, quoted);
            out_str(out, " <");
            out_str(out, from);
            out_str(out, ">\r\n");
        } else {
            out_str(out, from);
            out_str(out, "\r\n");
        }
    }
}

/* The kept header lines, then the body as it streams in. */
static void write_message(struct output *out, const struct rfc5322_headers *h, enum hend hend,
                          size_t bodylen, struct input *in, int ignore_dots)
{
    int line_start = 1;
    char piece[8192];
    size_t i, n;

    for (i = 0; i < h->nline; i++) {
        if (h->line[i].drop)
            continue;
        out_write(out, h->buf + h->line[i].off, h->line[i].len);
        out_str(out, "\r\n");
    }
    if (hend == H_EOF || hend == H_DOT)
        return;
    /* The blank line, also when the body began without one. */
    out_str(out, "\r\n");
    if (hend == H_BODYLINE) {
        out_write(out, h->buf + h->len, bodylen);
        out_str(out, "\r\n");
    } else if (hend == H_OVERFLOW) {
        out_write(out, h->buf + h->len, bodylen);
        line_start = 0;
    }
    for (;;) {
        int r = read_piece(in, piece, sizeof(piece), &n);
        if (r == PIECE_EOF)
            break;
        if (r == PIECE_LINE && line_start && !ignore_dots && n == 1 && piece[0] == '.')
            break;
        out_write(out, piece, n);
        if (r == PIECE_LINE)
            out_str(out, "\r\n");
        line_start = r == PIECE_LINE;
    }
}

/* Q_COMMIT with the envelope; queue-mgr sets arrival, size, uid, origin. */
static void commit(struct qc_conn *conn, const struct qrec *rec)
{
    char fate[128];
    enum qc_status st;

    /* From here on the outcome is queue-mgr's: no Q_ABORT could undo a
     * commit already under way, so none is sent. */
    g_qid[0] = 0;
    snprintf(fate, sizeof(fate), "the message may or may not have been queued as %s", rec->qid);
    st = qc_commit(conn, rec);
    if (st != QC_OK)
        qc_die(conn, st, "commit", fate);
}

int main(int argc, char **argv)
{
    static struct rfc5322_headers h;
    static struct input in;
    static struct output out;
    struct opts o;
    struct qrec rec;
    struct rcpt_set set = { NULL, 0 };
    struct hinfo hi;
    struct qc_conn conn;
    char err[1200];
    enum hend hend;
    size_t bodylen;
    int first;

    first = parse_args(argc, argv, &o);
    /* -bp and -q are mailq and posternctl flush, as in Postfix */
    if (o.mode == 'p')
        return sendmail_exec_tool("mailq", o.conf, NULL);
    if (o.mode == 'q') {
        const char *fl[] = { "flush", NULL, NULL };
        if (o.qarg && (o.qarg[0] == 'R' || o.qarg[0] == 'I') && o.qarg[1])
            fl[1] = o.qarg + 1;     /* -qRsite, -qIqueueid */
        else if (o.qarg)
            return EX_OK;           /* -qINTERVAL: a daemon's run interval, no meaning here */
        return sendmail_exec_tool("posternctl", o.conf, fl);
    }
    config_defaults(&cfg);
    if (config_load(&cfg, config_path(o.conf), err, sizeof(err)) < 0) {
        fprintf(stderr, "sendmail: fatal: %s\n", err);
        return EX_CONFIG;
    }
    if (o.mode == 's')
        return sendmail_bs(&cfg);

    qrec_init(&rec);
    rec.body = o.body;
    rec.ret = o.ret;
    str_copy(rec.envid, o.envid, sizeof(rec.envid));
    str_copy(rec.origin, "pickup", sizeof(rec.origin));
    str_copy(rec.proto, "sendmail", sizeof(rec.proto));
    set_sender(&rec, o.sender);

    /* Command-line recipients; without -t they are all there is, and an
     * empty list is refused before reading any input. */
    for (int k = first; k < argc; k++)
        add_rcpt_list(&rec, &set, argv[k], strlen(argv[k]), "on the command line");
    if (!o.extract && rec.nrcpt == 0)
        die_plain(EX_USAGE, "no recipients specified");

    /* The header section, to learn what to add, remove and extract. */
    h.buf = malloc(HDR_SECTION_MAX);
    if (!h.buf)
        die(EX_TEMPFAIL, "out of memory");
    hend = read_headers(&in, &h, o.ignore_dots, &bodylen);
    scan_headers(&h, o.extract, &rec, &set, &hi);
    if (rec.nrcpt == 0)
        die_plain(EX_USAGE, "no recipients specified");
    for (size_t i = 0; i < rec.nrcpt; i++)
        rec.rcpt[i].notify = o.notify;

    /* Will the envelope fit in one frame? Better to know before queueing. */
    if (!qc_commit_fits(&rec))
        die(EX_USAGE, "too many recipients for one message");

    /* The hand-off. Headers we add go first, after queue-mgr's Received:. */
    open_queue_file(&conn, &rec);
    out.conn = &conn;
    out.max = cfg.max_message_size;
    write_added_headers(&out, &hi, &rec, o.fullname);
    write_message(&out, &h, hend, bodylen, &in, o.ignore_dots);
    out_flush(&out);
    commit(&conn, &rec);

    g_conn = NULL;
    qc_close(&conn);
    qrec_free(&rec);
    free(set.slot);
    free(h.buf);
    free(h.line);
    return EX_OK;
}
