/*
 * quota.h - Maildir++ quota usage of one Maildir: its "maildirsize" file
 * (the format Courier, maildrop, Exim and Dovecot's quota=maildir share),
 * read, appended to after a delivery, and recalculated from the Maildir
 * when it cannot be trusted.
 *
 *   line 1      the quota definition ("10485760S,1000C": mapdb_quota_format)
 *   then        "BYTES COUNT" lines, each a change (may be negative); the
 *               sum is the usage
 *
 * It is recalculated (the Maildir summed, the result written in tmp/ and
 * renamed over maildirsize) when the file is missing, 5120 bytes or
 * larger, has a NUL, a malformed line or a negative sum, its definition
 * differs from the map's, or the usage is over quota and the file either
 * has more than one usage line or is older than 15 minutes (as Dovecot's
 * quota-maildir.c decides, so the two agree).
 */
#ifndef POSTERN_LOCAL_QUOTA_H
#define POSTERN_LOCAL_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mapdb.h"
#include "quotaproto.h"

#define MDQ_FILE "maildirsize"
#define MDQ_FILE_MAX 5120               /* at this size or more: recalculated */
#define MDQ_STALE_SECS (15 * 60)

struct mdq_usage {
    uint64_t bytes, msgs;
};

/* The Maildir "domain/user" (maps_path_component) under root_fd, opened
 * one component at a time with O_NOFOLLOW, never created: its
 * descriptor, or -1 with errno (ENOENT: no Maildir yet). */
int mdq_open_maildir(int root_fd, const char *component);

/* Parses the n bytes of a maildirsize file (mtime: its st_mtime) against
 * the map's quota q: 1 with u (the usage can be trusted), 0 when it must
 * be recalculated. Pure; for mdq_read and its tests. */
int mdq_parse(const char *text, size_t n, time_t mtime, time_t now, const struct mapdb_quota *q,
              struct mdq_usage *u);

/* Reads maildirsize in the Maildir md (bounded: MDQ_FILE_MAX + 1 bytes):
 * 1 with u, 0 when it is missing or must be recalculated, -1 with errno. */
int mdq_read(int md, const struct mapdb_quota *q, time_t now, struct mdq_usage *u);

/*
 * Sums new/ and cur/ of the Maildir md and of its Maildir++ folders
 * (".Name/"): sizes from ",S=" in the names, else fstatat. With
 * max_entries (0: no bound), gives up past that many names (-1, E2BIG):
 * the quota server's bound on a huge Maildir. Then writes the result in
 * tmp/ and renames it over maildirsize, unless a directory changed while
 * it counted (then the file is left for the next reader to redo). 0 with
 * u, or -1 with errno.
 */
int mdq_recalc(int md, const struct mapdb_quota *q, size_t max_entries, struct mdq_usage *u);

/* mdq_read, else mdq_recalc: 0 with u, or -1 with errno. */
int mdq_usage(int md, const struct mapdb_quota *q, time_t now, size_t max_entries, struct mdq_usage *u);

/* Appends "BYTES COUNT\n" to an existing maildirsize, name relative to
 * dirfd (MDQ_FILE in the Maildir, or "../" MDQ_FILE from its tmp/): one
 * write, O_APPEND; a missing file is left missing and one of
 * MDQ_FILE_MAX bytes or more left as it is (the next reader recalculates
 * either). 0, or -1 with errno. */
int mdq_add(int dirfd, const char *name, int64_t bytes, int64_t msgs);

/* The verdict for size more bytes and one more message (quotaproto.h). */
enum quota_verdict mdq_verdict(const struct mapdb_quota *q, const struct mdq_usage *u, uint64_t size);

#endif
