/*
 * aliases.h - alias expansion at commit time, once for mail from smtpd and
 * from sendmail alike (as Postfix's cleanup applies virtual_alias_maps):
 * a recipient of a local domain that the compiled map (common/mapdb.h,
 * RUN/smtpd/maps.db, read-only) names as an alias is replaced by the
 * alias's members, already fully expanded by the map compiler.
 */
#ifndef POSTERN_QMGR_ALIASES_H
#define POSTERN_QMGR_ALIASES_H

#include <stddef.h>

#include "config.h"
#include "qrecord.h"

/*
 * Expands the aliases among r's recipients in place. Each member keeps the
 * alias's NOTIFY and ORCPT (rfc822;ALIAS when the client gave none) and
 * records the alias in T_R_ALIAS; a member that is already a recipient of
 * the message is not added twice. Returns the number of aliases expanded,
 * or -1 with err (out of memory, too many recipients): the commit is then
 * refused with a temporary error. When the map cannot be opened the
 * recipients stay as they are (the local role defers them) and it is logged.
 */
int aliases_expand(const struct config *cfg, struct qrec *r, char *err, size_t errlen);
/* Closes the map (at exit). */
void aliases_close(void);

#endif
