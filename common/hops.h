/*
 * hops.h - counts the Received: header fields of a queued message, for the
 * max_hops loop check (RFC 5321 6.3: 5.4.6). Shared by every delivery
 * agent: deliver counts before it connects, so mail from smtpd and from
 * pickup bounces alike. Reads the file with pread(); never writes it.
 */
#ifndef POSTERN_HOPS_H
#define POSTERN_HOPS_H

#include <stddef.h>
#include <sys/types.h>

/* Received: fields in the header section of the content at fd from offset
 * (up to the first empty line, at most HOPS_SCAN_MAX bytes), counting stops
 * past `stop`. -1 on a read error. */
#define HOPS_SCAN_MAX ((size_t)4 << 20)
long hops_count_fd(int fd, off_t offset, long stop);
/* The same for a buffer (unit tests, and callers that hold the header). */
long hops_count_buf(const char *p, size_t len, long stop);

#endif
