/*
 * log.h - logging for every Postern process.
 *
 * Lines go to syslog (facility LOG_MAIL, ident "postern/PROC", with the pid)
 * or, in foreground mode, to stderr in the same shape:
 *     postern/smtpd[123]: warning: text
 * and under `postern run` (POSTERN_FOREGROUND set) with the time and host
 * in front, as a syslog file has them (docs/LOGS.md):
 *     2026-12-02T01:15:00.123456+00:00 mx1 postern/smtpd[123]: warning: text
 * Never log unescaped client data: use log_sanitize() on anything a peer sent.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR, LOG_LVL_FATAL };

/* proc is the short process name ("smtpd"); to_stderr selects foreground mode. */
void log_init(const char *proc, int to_stderr);
void log_set_debug(int on);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...)   log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...)   log_msg(LOG_LVL_ERROR, __VA_ARGS__)
/* Logs and exits with status 1. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copies at most len bytes of untrusted text into out (size outlen, always
 * NUL-terminated; returns out). Printable ASCII and well-formed UTF-8
 * (utf8.h) are kept; every control byte (C0, DEL), every byte of an invalid
 * UTF-8 sequence, and each C1 control, U+2028/U+2029 line separator and
 * bidirectional override becomes '?'. A multi-byte character that does not
 * fit in out is left out whole, never cut.
 */
const char *log_sanitize(const char *in, size_t len, char *out, size_t outlen);

#endif
