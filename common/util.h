/*
 * util.h - small helpers shared by every process: bounded string copies,
 * number parsing, RFC 5322 dates, monotonic time.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Copies src into dst of size dstlen, always terminating; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t dstlen);
/* ASCII case-insensitive prefix test; returns pointer past the prefix or NULL. */
const char *str_prefix_ci(const char *s, const char *prefix);
/* Parses a whole decimal string into *out; -1 on garbage or overflow. */
int parse_u64(const char *s, uint64_t *out);
/* RFC 5322 date, e.g. "Sun, 29 Nov 2026 07:12:07 +0000" (local time). */
void format_rfc5322_date(time_t t, char *out, size_t outlen);
/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t now_ms(void);
/* Wall-clock milliseconds since the epoch (for times that cross processes,
 * such as D_DISPATCH); now_ms() is monotonic, for intervals. */
uint64_t wall_ms(void);
/* Writes all of buf to a blocking fd, retrying on EINTR; -1 on error. */
int write_all(int fd, const void *buf, size_t len);
/* A delay in seconds as Postfix's delivery lines show it: "0" under 5 ms,
 * then 2, 1 or 0 decimals (0.12, 1.5, 42). */
void format_delay(double seconds, char *out, size_t outlen);
/* Sets O_NONBLOCK (on=1) or clears it; -1 on error. */
int set_nonblock(int fd, int on);

#endif
