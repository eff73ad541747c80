/*
 * maildir.h - the Maildir store of the local delivery role: one message
 * for one recipient into mailbox_dir/DOMAIN/USER/{tmp,new,cur}, in two
 * steps so that a batch shares its flushes (group commit):
 *
 *   maildir_write()   the message with Return-Path: and Delivered-To:
 *                     added, LF line endings, into tmp/ (not synced)
 *   maildir_sync()    syncfs() once per file system written to, for
 *                     the whole batch: data and inodes are durable
 *   maildir_publish() rename from tmp/ into new/ (unique name ,S=size)
 *   maildir_sync_dirs() the new/ directories concerned made durable,
 *                     each once: an fsync of each, or, where several
 *                     share a file system, one syncfs() of it (one flush
 *                     instead of one per directory)
 *
 * and only then is RCPT_SENT reported. maildir_discard() removes what a
 * failed step left. Paths come only from maps_path_component() of a map
 * key; every directory is opened relative to the mailbox_dir descriptor,
 * one component at a time, with O_NOFOLLOW: no symlink is ever followed.
 */
#ifndef POSTERN_LOCAL_MAILDIR_H
#define POSTERN_LOCAL_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MD_NAME_MAX 360
#define MD_DT_MAX 64                    /* Delivered-To: values remembered per message */

struct md_store;

/* A store on the mailbox_dir descriptor (kept, not closed by the store);
 * host goes into the unique names. NULL on OOM. */
struct md_store *maildir_open(int root_fd, const char *host);
void maildir_close(struct md_store *s);

/* The Delivered-To: values in a message's header (the spool file holds
 * CRLF lines): each lower-cased, at most MD_DT_MAX of them. */
struct md_seen {
    size_t n;
    char v[MD_DT_MAX][257];
};
/* Reads the header of the spool file (bounded); -1 with errno on a read error. */
int maildir_scan_header(int spool_fd, uint64_t size, struct md_seen *seen);
/* Whether addr (compared without regard to case) is among them. */
int maildir_seen(const struct md_seen *seen, const char *addr);

/* One message on its way into one Maildir. */
struct md_item {
    int tmp_fd, new_fd;                 /* the Maildir's tmp/ and new/, the item's own */
    char name[MD_NAME_MAX];             /* in tmp/ */
    char final[MD_NAME_MAX + 32];       /* in new/ */
    uint64_t size;
    int state;                          /* 0 none, 1 in tmp/, 2 in new/ */
};

/* Buffers for copying one message (one per thread that fills). */
struct md_buf {
    char in[64u << 10], out[(64u << 10) + 1024];
};

/*
 * Writes the message of spool_fd (size bytes, CRLF lines) for rcpt into
 * tmp/ of the Maildir at component ("domain/user", from
 * maps_path_component), creating the Maildir on first delivery. 0, or -1
 * with errno (nothing is left behind).
 */
int maildir_write(struct md_store *s, const char *component, int spool_fd, uint64_t size,
                  const char *sender, const char *rcpt, struct md_item *it);
/*
 * maildir_write() in three steps, so that the middle one, where the time
 * goes (a new inode, the copy), can run on several threads at once:
 * maildir_prepare() (the store's thread) opens or makes the Maildir and
 * names the item; maildir_fill() (any thread; touches only the item, b
 * and the spool descriptor) makes and writes the file in tmp/;
 * maildir_finish() (the store's thread) records its file system for
 * maildir_sync. Each returns 0, or -1 with errno: after a failed prepare
 * or fill, maildir_release() the item (nothing is left in tmp/); a failed
 * finish has discarded it. maildir_forget() drops a Maildir from the
 * cache (a fill that found it removed: ENOENT).
 */
int maildir_prepare(struct md_store *s, const char *component, struct md_item *it);
int maildir_fill(struct md_buf *b, struct md_item *it, int spool_fd, uint64_t size, const char *sender,
                 const char *rcpt);
int maildir_finish(struct md_store *s, struct md_item *it);
void maildir_forget(struct md_store *s, const char *component);
/* syncfs() of each file system written to since the last call: 0, or -1
 * with errno (all are tried). */
int maildir_sync(struct md_store *s);
/* tmp/ -> new/: 0, or -1 with errno (the tmp file stays; discard it). */
int maildir_publish(struct md_store *s, struct md_item *it);
/* Every new/ that got a message since the last call made durable (each
 * once, by maildir_sync_plan with MD_SYNCFS_MIN): the renames are durable.
 * 0, or -1 with errno (all are tried). */
int maildir_sync_dirs(struct md_store *s);

/* maildir_sync() and maildir_sync_dirs() in one: a syncfs of every file
 * system written to or renamed in since the last call (so the renames of
 * one batch share the flush of the next batch's data). 0, or -1 with
 * errno (all are tried). */
int maildir_sync_all(struct md_store *s);

/* How n directories, devs[i] the device of each, are made durable:
 * how[i] = MD_FSYNC (fsync of the directory), MD_SYNCFS (one syncfs of
 * its file system, which covers the others there) or MD_COVERED (by
 * that syncfs). A file system with at least syncfs_min of them gets the
 * syncfs (0: never). Pure; for maildir_sync_dirs and its tests. */
enum { MD_FSYNC = 0, MD_SYNCFS = 1, MD_COVERED = 2 };
#define MD_SYNCFS_MIN 2
void maildir_sync_plan(const dev_t *devs, size_t n, size_t syncfs_min, unsigned char *how);
/* Removes the item's file wherever it is, and releases it. */
void maildir_discard(struct md_item *it);
/* Closes the item's descriptors (after publishing, or a discard). */
void maildir_release(struct md_item *it);

/* The delivery status for a failed step: "4.3.0" (disk full, I/O),
 * "4.2.2" (quota), "4.2.0" (permission, not a directory); all deferrals. */
const char *maildir_errno_dsn(int e);

#endif
