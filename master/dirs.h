/*
 * dirs.h - the directories Postern writes, their owners and modes
 * (SPEC.md section 4), created when missing and refused when unsafe.
 */
#ifndef POSTERN_MASTER_DIRS_H
#define POSTERN_MASTER_DIRS_H

#include <stddef.h>

#include "config.h"
#include "privsep.h"

/* Who owns what: as root the configured accounts, otherwise the invoking user
 * for all of them. */
struct dir_owners {
    struct account root, smtpd, queue, deliver, resolver, auth, local;
};

/*
 * Checks spool_dir, run_dir, mailbox_dir and the directories inside them.
 * With create, missing ones are made (their parent must exist) with their
 * owner and mode; without, missing ones are skipped (postern check). An
 * existing directory that is group- or world-writable, a symlink where a
 * directory belongs, or (when owners is not NULL) owned by the wrong account
 * is refused: -1 with "PATH (KEY) ...: FIX" in err.
 */
int dirs_prepare(const struct config *c, const struct dir_owners *owners, int create,
                 char *err, size_t errlen);

#endif
