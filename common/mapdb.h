/*
 * mapdb.h - the compiled local-recipient map: the rules that turn an
 * address into a map key and into a mailbox path, and the read-only
 * look-up (smtpd at RCPT/VRFY/EXPN, deliver later).
 *
 * The map is one LMDB file (MDB_NOSUBDIR) that the master compiles from
 * mailboxes_file and aliases_file (common/maps.h) and renames into place;
 * nobody writes it afterwards, so readers open it MDB_RDONLY|MDB_NOLOCK and
 * keep one read transaction for its life. A reload brings a new file
 * (a new inode); an open handle keeps reading the old one.
 *
 * Keys are "local@domain" with the domain and the ASCII letters of the
 * local part in lower case (as Postfix's postmap folds keys): "Demo@X"
 * and "demo@x" are one mailbox. Non-ASCII (SMTPUTF8) bytes are compared
 * as they are.
 */
#ifndef POSTERN_MAPDB_H
#define POSTERN_MAPDB_H

#include <stddef.h>
#include <stdint.h>

struct addr;

#define MAPDB_FILE "maps.db"            /* in RUN/smtpd (the smtpd jail) */
#define MAPDB_VERSION "1"
#define MAPDB_MEMBERS_MAX 1000          /* addresses an alias expands to */
#define MAPDB_KEY_MAX 321               /* 64 + '@' + 255 + NUL */

/* Key prefixes in the one (unnamed) database. */
#define MAPDB_K_MAILBOX 'M'             /* 'M' key -> "" */
#define MAPDB_K_ALIAS 'A'               /* 'A' key -> members, NUL-separated, fully expanded */
#define MAPDB_K_META '#'                /* "#version" -> MAPDB_VERSION */
#define MAPDB_K_HASH 'H'                /* the auth map only: 'H' key -> password hash */

/*
 * The local part local[0..len) (unquoted) as it appears in a key: 1 to 64
 * bytes of ASCII letters, digits and "-_.+=&'~", or well-formed UTF-8 of no
 * control character; no leading or trailing dot, no "..". Anything else
 * (a '/', '%', '!', '@', a NUL, a control character, a local part that is
 * only dots) can never be a mailbox: -1. ASCII letters are lower-cased.
 */
int maps_local_key(const char *local, size_t len, char *out, size_t outlen);

/*
 * The map key of a parsed address (quotes and quoted-pairs removed first, so
 * "\"john\"@x" is john@x and "\"u@remote\"@x" a local part that is never a
 * mailbox): 0, or -1 when no mailbox can have this address.
 */
int maps_addr_key(const struct addr *a, char *out, size_t outlen);

/*
 * The path below mailbox_dir for a key "local@domain": "domain/local".
 * Checks everything again (the caller may hold a key from anywhere): one
 * path component each, no '/', no NUL, nothing starting with '.', no
 * control character, lengths bounded. 0, or -1 (never a path) when unsafe.
 */
int maps_path_component(const char *key, char *out, size_t outlen);

/* "user+tag@d" -> "user@d" in place (the first of the delimiter
 * characters after the first byte); 1 if something was cut, else 0. */
int maps_strip_extension(char *key, const char *delims);

struct mapdb;

/* Opens the compiled map read-only. -1 with the reason in err. */
int mapdb_open(struct mapdb **db, const char *path, char *err, size_t errlen);
void mapdb_close(struct mapdb *db);

enum mapdb_kind { MAPDB_ERROR = -1, MAPDB_NONE = 0, MAPDB_MAILBOX = 1, MAPDB_ALIAS = 2 };

/*
 * Looks up the key as it is. For an alias, *members (may be NULL) points at
 * its expansion, NUL-separated, *mlen bytes, valid until mapdb_close.
 */
enum mapdb_kind mapdb_get(struct mapdb *db, const char *key, const char **members, size_t *mlen);

/* Whether the key itself is a mailbox ('M'), whatever alias of that name
 * there is (an alias naming itself means its mailbox): 1, 0, or -1. */
int mapdb_mailbox(struct mapdb *db, const char *key);

/*
 * The RCPT question for an address of a local domain: its key, else (with a
 * delimiter of delims in the local part, Postfix's recipient_delimiter) the
 * key without the extension ("user+tag@d" -> "user@d"). found gets the key
 * that matched. MAPDB_NONE when no mailbox can have the address.
 */
enum mapdb_kind mapdb_find(struct mapdb *db, const struct addr *a, const char *delims, char *found, size_t foundlen,
                           const char **members, size_t *mlen);

/*
 * Mailbox quotas (issue 7). A mailbox's 'M' record holds "" (no quota) or
 * its quota as a Maildir++ quota definition, the text that starts a
 * "maildirsize" file: "10485760S", "1000C" or "10485760S,1000C" (bytes S,
 * messages C; the compiler writes them in that order).
 */
struct mapdb_quota {
    uint64_t bytes, msgs;               /* 0: no limit of that kind */
};
/* Parses a Maildir++ quota definition of n bytes: 0, or -1 when malformed
 * (an empty one is no quota: 0 with both zero). */
int mapdb_quota_parse(const char *s, size_t n, struct mapdb_quota *q);
/* Writes q as a quota definition ("" for none): its length, or -1 when
 * it does not fit in len. */
int mapdb_quota_format(const struct mapdb_quota *q, char *out, size_t len);
/* The quota of the mailbox key: 1 (a limit is set), 0 (none, or no such
 * mailbox), -1 when the map cannot be read or the record is malformed. */
int mapdb_quota(struct mapdb *db, const char *key, struct mapdb_quota *q);

/*
 * Sender binding (submission): may the user whose mailbox key is owner use
 * the address a as a sender? Yes when a (or a without its extension) is
 * that mailbox, or an alias whose expansion holds it. 1 yes, 0 no,
 * -1 when the map cannot be read.
 */
int mapdb_owned_by(struct mapdb *db, const struct addr *a, const char *delims, const char *owner);

#endif
