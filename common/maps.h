/*
 * maps.h - the map compiler: mailboxes_file and aliases_file (SPEC.md
 * section 3) into the LMDB file of mapdb.h. Run by the master, which
 * parses operator files only, at start, on reload and for `postern check`.
 *
 * mailboxes_file: "user@domain" a line, optionally ":HASH" (a password
 * hash for AUTH). The hash is checked for shape and then left out: the map
 * smtpd reads never holds a password hash (the auth process of a later
 * issue compiles its own). The file may be Dovecot's passwd-file too:
 * "user@domain:HASH:uid:gid:gecos:home:shell:extra fields", the hash
 * empty for a user without AUTH, fields 3-7 ignored, and of the extra
 * fields (space-separated key=value, the rest of the line) the quota rules
 * of the whole mailbox understood: [userdb_]quota_rule[N]=*:storage=N
 * (kilobytes without a unit), *:bytes=N, *:messages=N, units b k M G T,
 * several limits joined with ':'. A rule this cannot honour (another
 * folder, "ignore", '+', '%') is an error; other fields are left alone.
 * The quota goes into the mailbox's 'M' record (mapdb.h).
 *
 * aliases_file: "alias: target, target" (continued on lines that start
 * with white space); alias is "name@domain" or a bare "name" (in every
 * local domain); a target is an address, or a bare name in the alias's
 * domain. Nested aliases are expanded at compile time; a loop is an error,
 * except that an alias naming itself (or an alias it is part of) delivers
 * to the mailbox of that name ("john: john, john@elsewhere"); otherwise an
 * alias of a mailbox's name takes its mail (as Postfix's virtual_alias_maps
 * come before the mailboxes). A local target must be a mailbox or an
 * alias (a typo is an error here, not a bounce later). postmaster@
 * and abuse@ exist in every local domain: when neither file defines them
 * they go to postmaster_address (a mailbox in its own right when it is
 * postmaster@ of a local domain). Pipes, files and :include: are refused.
 */
#ifndef POSTERN_MAPS_H
#define POSTERN_MAPS_H

#include <stddef.h>

struct config;

struct maps_stats {
    unsigned mailboxes;                 /* keys that are mailboxes */
    unsigned aliases;                   /* keys that are aliases, defaults included */
    unsigned hashes;                    /* mailboxes with a password hash (not stored) */
};

/*
 * Reads and checks both files of c. With out set, writes the map to
 * "OUT.NEW" (mode 0644), syncs it and renames it over out, so a reader sees
 * the old map or the new one whole; an error leaves out untouched. Returns
 * 0, or -1 with "FILE:LINE: message" (or "FILE: message") in err. A file
 * that does not exist is an empty one.
 */
int maps_compile(const struct config *c, const char *out, struct maps_stats *st, char *err, size_t errlen);

/*
 * The same, and with auth_out set also the password map of the auth
 * process: "H" + mailbox key -> the hash as written, one record for each
 * mailbox that has one, in "AUTH_OUT.NEW" (mode 0440, owner and group
 * auth_owner when given: root and user_auth's group), renamed over
 * auth_out after out.
 */
struct maps_owner { unsigned uid, gid; };
int maps_compile_auth(const struct config *c, const char *out, const char *auth_out, const struct maps_owner *auth_owner,
                      struct maps_stats *st, char *err, size_t errlen);

#endif
