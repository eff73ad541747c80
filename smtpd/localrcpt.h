/*
 * localrcpt.h - smtpd's view of the local recipients: the compiled map
 * (common/mapdb.h) opened read-only inside the jail, and the answers to
 * RCPT, VRFY and EXPN for addresses of local_domains. Synchronous: an
 * LMDB read costs microseconds, so replies stay in command order without
 * suspending the session.
 */
#ifndef POSTERN_SMTPD_LOCALRCPT_H
#define POSTERN_SMTPD_LOCALRCPT_H

#include <stddef.h>

#include "addr.h"
#include "config.h"
#include "mapdb.h"

/* Opens the map at path (retried by localrcpt_tick while it fails). */
void localrcpt_init(const char *path);
void localrcpt_tick(void);
void localrcpt_free(void);

/* Is a (of a local domain, not a literal) a recipient here? NULL to accept,
 * else the refusal reply written into reply: 550 5.1.1 unknown, 451 4.3.0
 * when the map cannot be read. postmaster@ is always accepted, and so is
 * everything before localrcpt_init() (no map configured). */
const char *localrcpt_check(const struct config *cfg, const struct addr *a, char *reply, size_t len);

/*
 * The quota of the mailbox that a (accepted by localrcpt_check) resolves
 * to, directly or without its +tag, when the local role stores mail in
 * Maildirs: 1 with the limits in q and the mailbox key in key, 0 when
 * there is none to check (no quota, an alias: its members are checked at
 * delivery, postmaster, LMTP storage), -1 when the record cannot be read.
 */
int localrcpt_quota(const struct config *cfg, const struct addr *a, char *key, size_t keylen,
                    struct mapdb_quota *q);

/*
 * The argument of VRFY or EXPN ("<a@d>", "a@d", or a bare name in the
 * default local domain) parsed into a: 0 local, 1 not local, -1 bad syntax.
 */
int localrcpt_parse_arg(const struct config *cfg, const char *arg, struct addr *a);

/* An alias's members (NUL-separated, *mlen bytes) for EXPN, or a mailbox's
 * own key in key: the mapdb_find() kind. */
int localrcpt_expand(const struct config *cfg, const struct addr *a, char *key, size_t keylen, const char **members,
                     size_t *mlen);

/* Sender binding: may the user of mailbox key owner send as a? 1 yes,
 * 0 no (a is not local, or is another's), -1 the map cannot be read. */
int localrcpt_owned(const struct config *cfg, const struct addr *a, const char *owner);

#endif
