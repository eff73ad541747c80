/*
 * sendmail_bs.c - sendmail -bp, -q and -bs (sendmail_bs.h).
 *
 * -bp and -q run mailq and posternctl from sendmail's own directory with
 * execv (never a shell, never a path from the environment). -bs speaks
 * SMTP on standard input and output: HELO, EHLO (PIPELINING, 8BITMIME,
 * SIZE, SMTPUTF8, ENHANCEDSTATUSCODES), MAIL, RCPT, DATA, RSET, NOOP, VRFY
 * (252), HELP, QUIT. Each message goes to queue-mgr over the pickup socket
 * (Q_OPEN, Q_DATA, Q_COMMIT), so queue-mgr records the caller's uid from
 * SO_PEERCRED and validates everything again; nothing here is trusted by
 * it. Lines are read with a bound (command 1024, text smtpd_max_line);
 * never echoes a byte of input unescaped; never builds a shell command.
 */
#include "sendmail_bs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "qclient.h"
#include "qrecord.h"
#include "rfc5322.h"
#include "util.h"

#define BS_TIMEOUT_MS 60000
#define CMD_MAX 1024
#define TEXT_MAX 2048

int sendmail_exec_tool(const char *tool, const char *conf, const char *const *args)
{
    char self[4096], path[4200];
    const char *argv[16];
    size_t n = 0;
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (len <= 0) {
        fprintf(stderr, "sendmail: fatal: cannot find my own directory: %s\n", strerror(errno));
        return EX_UNAVAILABLE;
    }
    self[len] = 0;
    slash = strrchr(self, '/');
    if (!slash)
        return EX_UNAVAILABLE;
    *slash = 0;
    snprintf(path, sizeof(path), "%s/%s", self, tool);
    argv[n++] = tool;
    if (conf) {
        argv[n++] = "-c";
        argv[n++] = conf;
    }
    for (size_t i = 0; args && args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    execv(path, (char *const *)argv);
    fprintf(stderr, "sendmail: fatal: cannot run %s: %s\n", path, strerror(errno));
    return EX_UNAVAILABLE;
}

/* ---- the -bs session ---- */

static const struct config *cfg;
static struct qc_conn conn;
static int connected;
static struct qrec rec;
static int have_mail;
static char inbuf[8192];
static size_t inlen, inpos;
static int in_eof;

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\r\n", stdout);
}

/* Buffered output is flushed when the client would wait for it: before
 * each read that would block (PIPELINING, RFC 2920). */
static int fill(void)
{
    ssize_t n;

    if (in_eof)
        return -1;
    if (inpos > 0) {
        memmove(inbuf, inbuf + inpos, inlen - inpos);
        inlen -= inpos;
        inpos = 0;
    }
    fflush(stdout);
    do
        n = read(STDIN_FILENO, inbuf + inlen, sizeof(inbuf) - inlen);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        in_eof = 1;
        return -1;
    }
    inlen += (size_t)n;
    return 0;
}

/* One line without its CRLF (or LF) into out; 1 a line, 0 too long
 * (skipped to its end), -1 EOF. */
static int read_line(char *out, size_t max, size_t *len)
{
    size_t n = 0;
    int over = 0;

    for (;;) {
        while (inpos < inlen) {
            char c = inbuf[inpos++];
            if (c == '\n') {
                if (n && out[n - 1] == '\r')
                    n--;
                out[n] = 0;
                *len = n;
                return over ? 0 : 1;
            }
            if (n + 1 < max)
                out[n++] = c;
            else
                over = 1;
        }
        if (fill() < 0)
            return -1;
    }
}

static void reset(void)
{
    qrec_free(&rec);
    qrec_init(&rec);
    have_mail = 0;
}

static const char *arg_after(const char *line, const char *verb)
{
    size_t n = strlen(verb);

    if (strncasecmp(line, verb, n) != 0)
        return NULL;
    line += n;
    while (*line == ' ')
        line++;
    return line;
}

/* "<path>" and its parameters; the mailbox into out (""=null sender). */
static const char *path_arg(const char *s, int allow_empty, char *out, size_t outlen, const char **params)
{
    struct addr a;
    size_t end;
    enum addr_error e = addr_parse_path(s, strlen(s), ADDR_UTF8 | (allow_empty ? ADDR_ALLOW_EMPTY : 0), &a, &end);

    if (e != ADDR_OK)
        return addr_strerror(e);
    if (!a.mailbox[0] && !allow_empty)
        return "empty address";
    str_copy(out, a.mailbox, outlen);
    if (a.mailbox[0] && !strchr(a.mailbox, '@')) {
        /* a bare local part (Postmaster) gets our domain */
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "@%s", cfg->hostname);
    }
    *params = s + end;
    return NULL;
}

static void cmd_mail(const char *arg)
{
    char box[ADDR_MAX + 1], tmp[600];
    const char *params, *why;

    if (have_mail) {
        reply("503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (!arg || (why = path_arg(arg, 1, box, sizeof(box), &params)) != NULL) {
        reply("501 5.1.7 Bad sender address syntax");
        return;
    }
    reset();
    str_copy(rec.sender, box, sizeof(rec.sender));
    str_copy(rec.origin, "pickup", sizeof(rec.origin));
    str_copy(rec.proto, "ESMTP", sizeof(rec.proto));
    for (const char *p = params; *p;) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            break;
        if (n == 13 && strncasecmp(p, "BODY=8BITMIME", 13) == 0)
            rec.body = BODY_8BITMIME;
        else if (n == 9 && strncasecmp(p, "BODY=7BIT", 9) == 0)
            rec.body = BODY_7BIT;
        else if (n == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0)
            rec.flags |= QF_SMTPUTF8;
        else if (!(n > 5 && strncasecmp(p, "SIZE=", 5) == 0)) {
            reply("555 5.5.4 Unsupported option: %s", log_sanitize(p, n, tmp, sizeof(tmp)));
            return;
        }
        p += n;
    }
    have_mail = 1;
    reply("250 2.1.0 Ok");
}

static void cmd_rcpt(const char *arg)
{
    char box[ADDR_MAX + 1];
    const char *params;

    if (!have_mail) {
        reply("503 5.5.1 Error: need MAIL command");
        return;
    }
    if (!arg || path_arg(arg, 0, box, sizeof(box), &params) != NULL) {
        reply("501 5.1.3 Bad recipient address syntax");
        return;
    }
    if (rec.nrcpt >= cfg->max_recipients) {
        reply("452 4.5.3 Error: too many recipients");
        return;
    }
    if (qrec_add_rcpt(&rec, box) < 0) {
        reply("452 4.3.0 Error: out of memory");
        return;
    }
    reply("250 2.1.5 Ok");
}

static void drop_conn(void)
{
    if (connected)
        qc_close(&conn);
    connected = 0;
}

/* The message from the client into queue-mgr; returns the reply sent. */
static void cmd_data(void)
{
    static char line[TEXT_MAX + 3], chunk[PROTO_DATA_MAX];
    size_t clen = 0, n;
    enum qc_status s;
    int fd, r, failed = 0;

    if (!have_mail) {
        reply("503 5.5.1 Error: need MAIL command");
        return;
    }
    if (!rec.nrcpt) {
        reply("554 5.5.1 Error: no valid recipients");
        return;
    }
    if (!connected) {
        if (qc_connect(&conn, cfg->run_dir, SOCK_QUEUE_PICKUP, BS_TIMEOUT_MS) != QC_OK) {
            reply("451 4.3.0 Error: queue manager is down");
            return;
        }
        connected = 1;
    }
    if ((s = qc_open(&conn, rec.qid, &fd)) != QC_OK) {
        reply("451 4.3.0 Error: %s", qc_status_text(s));
        drop_conn();
        return;
    }
    if (fd >= 0) {
        close(fd);
        qc_abort(&conn, rec.qid);
        reply("451 4.3.0 Error: unexpected descriptor from the queue manager");
        return;
    }
    reply("354 End data with <CR><LF>.<CR><LF>");
    for (;;) {
        r = read_line(line, sizeof(line) - 2, &n);
        if (r < 0) {
            qc_abort(&conn, rec.qid);
            reset();
            return; /* EOF in DATA: nothing queued */
        }
        if (r == 0)
            failed = 1; /* too long a line: refused at the end */
        if (n == 1 && line[0] == '.')
            break;
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t k = line[0] == '.' ? n - 1 : n;
        if (clen + k + 2 > sizeof(chunk)) {
            if (!failed && qc_data(&conn, rec.qid, chunk, clen) != QC_OK)
                failed = 2;
            clen = 0;
        }
        memcpy(chunk + clen, p, k);
        clen += k;
        chunk[clen++] = '\r';
        chunk[clen++] = '\n';
    }
    if (!failed && clen && qc_data(&conn, rec.qid, chunk, clen) != QC_OK)
        failed = 2;
    if (failed == 1) {
        qc_abort(&conn, rec.qid);
        reply("500 5.5.0 Error: message line too long");
    } else if (failed || (s = qc_commit(&conn, &rec)) == QC_LOST || s == QC_TIMEOUT || s == QC_PROTO) {
        reply("451 4.3.0 Error: queue manager: %s", qc_status_text(failed ? QC_LOST : s));
        drop_conn();
    } else if (s == QC_REFUSED) {
        char tmp[600];
        reply("%s %s", conn.last.code, log_sanitize(conn.last.text, strlen(conn.last.text), tmp, sizeof(tmp)));
    } else {
        reply("250 2.0.0 Ok: queued as %s", rec.qid);
    }
    reset();
}

int sendmail_bs(const struct config *c)
{
    static char line[CMD_MAX + 1];
    size_t n;
    int r, errors = 0;

    cfg = c;
    qrec_init(&rec);
    reply("220 %s ESMTP Postern", cfg->hostname);
    while ((r = read_line(line, sizeof(line), &n)) >= 0) {
        const char *a;
        if (r == 0) {
            reply("500 5.5.2 Error: line too long");
        } else if (strncasecmp(line, "EHLO", 4) == 0 && (line[4] == ' ' || !line[4])) {
            reset();
            printf("250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n",
                   cfg->hostname, (unsigned long long)cfg->max_message_size);
            reply("250 ENHANCEDSTATUSCODES");
        } else if (strncasecmp(line, "HELO", 4) == 0 && (line[4] == ' ' || !line[4])) {
            reset();
            reply("250 %s", cfg->hostname);
        } else if ((a = arg_after(line, "MAIL FROM:")) != NULL) {
            cmd_mail(a);
        } else if ((a = arg_after(line, "RCPT TO:")) != NULL) {
            cmd_rcpt(a);
        } else if (strcasecmp(line, "DATA") == 0) {
            cmd_data();
        } else if (strcasecmp(line, "RSET") == 0) {
            reset();
            reply("250 2.0.0 Ok");
        } else if (strncasecmp(line, "NOOP", 4) == 0 && (line[4] == ' ' || !line[4])) {
            reply("250 2.0.0 Ok");
        } else if (strncasecmp(line, "VRFY", 4) == 0) {
            reply("252 2.0.0 Cannot VRFY user, but will accept message");
        } else if (strncasecmp(line, "HELP", 4) == 0) {
            reply("214 2.0.0 See RFC 5321");
        } else if (strcasecmp(line, "QUIT") == 0) {
            reply("221 2.0.0 Bye");
            break;
        } else {
            reply("502 5.5.2 Error: command not recognized");
            if (++errors >= 20) {
                reply("421 4.7.0 %s Error: too many errors", cfg->hostname);
                break;
            }
        }
    }
    fflush(stdout);
    drop_conn();
    qrec_free(&rec);
    return EX_OK;
}
