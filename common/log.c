/*
 * log.c - Postfix-shaped log lines to syslog (LOG_MAIL) or stderr.
 *
 * Must never block the caller for long or allocate: a line is formatted into
 * a fixed buffer and written with one write(2) in foreground mode.
 *
 * log_sanitize() is the one escaper of untrusted text for logs (and for
 * error messages that quote it): whatever it returns holds no control
 * byte, no invalid UTF-8 and nothing that displays as a line break, so a
 * peer or a local user cannot make one log line look like two.
 */
#include "log.h"
#include "utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_ident[64] = "postern";
static int log_stderr = 1;
static int log_debug_on;
static int log_stamp;               /* `postern run`: a syslog-style prefix */
static char log_host[64] = "localhost";

void log_init(const char *proc, int to_stderr)
{
    snprintf(log_ident, sizeof(log_ident), "postern/%s", proc);
    log_stderr = to_stderr;
    /* POSTERN_FOREGROUND is set by `postern run` for itself and every
     * child: the lines then carry the time and host, as a syslog file
     * would, so the log analysers read them unchanged (docs/LOGS.md). */
    log_stamp = to_stderr && getenv("POSTERN_FOREGROUND") != NULL;
    if (log_stamp) {
        char *dot;
        tzset();            /* the zone is read now, before any chroot */
        if (gethostname(log_host, sizeof(log_host) - 1) < 0)
            snprintf(log_host, sizeof(log_host), "localhost");
        log_host[sizeof(log_host) - 1] = 0;
        if ((dot = strchr(log_host, '.')) != NULL)
            *dot = 0;       /* syslog writes the short name */
    }
    if (!to_stderr)
        /* LOG_NDELAY connects now, before any chroot hides /dev/log. */
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_debug(int on)
{
    log_debug_on = on;
}

/* "2026-12-02T01:15:00.123456+00:00 host ", the RFC 3339 time rsyslog
 * writes on Debian (its default high-precision format). */
static void log_timestamp(char *out, size_t outlen)
{
    struct timeval tv;
    struct tm tm;
    char date[64], zone[8];
    size_t zl;

    gettimeofday(&tv, NULL);
    if (!localtime_r(&tv.tv_sec, &tm)) {
        out[0] = 0;
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    zl = strftime(zone, sizeof(zone), "%z", &tm);   /* +0100 -> +01:00 */
    if (zl != 5)
        snprintf(zone, sizeof(zone), "+0000");
    snprintf(out, outlen, "%s.%06ld%.3s:%.2s %s ", date, (long)tv.tv_usec, zone, zone + 3, log_host);
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    static const char *const prefix[] = { "debug: ", "", "warning: ", "error: ", "fatal: " };
    static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT };
    char text[2048];
    int saved = errno;

    if (lvl == LOG_LVL_DEBUG && !log_debug_on)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
    if (log_stderr) {
        char line[2300], stamp[160] = "";
        int n;
        if (log_stamp)
            log_timestamp(stamp, sizeof(stamp));
        n = snprintf(line, sizeof(line), "%s%s[%ld]: %s%s\n", stamp, log_ident, (long)getpid(),
                     prefix[lvl], text);
        if (n > (int)sizeof(line) - 1)
            n = sizeof(line) - 1, line[n - 1] = '\n';
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
            /* nowhere left to report it */
        }
    } else {
        syslog(prio[lvl], "%s%s", prefix[lvl], text);
    }
    errno = saved;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}

/*
 * Characters that would let text in a log line pass for something else: C1
 * controls (U+009B is CSI on some terminals), the Unicode line and
 * paragraph separators, and the bidirectional overrides and isolates that
 * display text in another order than it is stored.
 */
static int deceptive(uint32_t cp)
{
    return utf8_is_c1(cp) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

const char *log_sanitize(const char *in, size_t len, char *out, size_t outlen)
{
    size_t i = 0, o = 0;

    if (out == NULL || outlen == 0)
        return out;
    if (in == NULL)
        len = 0;
    while (i < len && o + 1 < outlen) {
        unsigned char ch = (unsigned char)in[i];
        uint32_t cp;
        size_t n;

        if (ch >= 0x20 && ch < 0x7F) {
            out[o++] = (char)ch;
            i++;
            continue;
        }
        /* UTF-8 is kept: it is text, and SMTPUTF8 addresses need it. */
        n = ch >= 0x80 ? utf8_decode(in + i, len - i, &cp) : 0;
        if (n == 0 || deceptive(cp)) {
            out[o++] = '?';             /* a control byte, or one byte of a bad sequence */
            i += n ? n : 1;
            continue;
        }
        if (o + n >= outlen)
            break;                      /* a character is copied whole or not at all */
        memcpy(out + o, in + i, n);
        o += n;
        i += n;
    }
    out[o] = 0;
    return out;
}
