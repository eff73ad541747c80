/*
 * privsep.c - resolving accounts and dropping root (privsep.h).
 *
 * The order matters: supplementary groups and the chroot need root, so they
 * come first; setgid before setuid; and afterwards we check that neither uid
 * 0 nor the old groups can be regained, and die if they can.
 */
#include "privsep.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int priv_is_root(void)
{
    return getuid() == 0 || geteuid() == 0;
}

int priv_resolve(const char *spec, struct account *a, char *err, size_t errlen)
{
    const char *colon = strchr(spec, ':');

    memset(a, 0, sizeof(*a));
    str_copy(a->name, spec, sizeof(a->name));
    if (colon) {
        char ubuf[32];
        uint64_t u, g;
        size_t n = (size_t)(colon - spec);
        if (n == 0 || n >= sizeof(ubuf)) {
            snprintf(err, errlen, "bad account \"%s\": expected NAME or UID:GID", spec);
            return -1;
        }
        memcpy(ubuf, spec, n);
        ubuf[n] = 0;
        if (parse_u64(ubuf, &u) < 0 || parse_u64(colon + 1, &g) < 0 || u == 0 || g == 0 ||
            u > 0x7fffffff || g > 0x7fffffff) {
            snprintf(err, errlen, "bad account \"%s\": UID and GID must be non-zero numbers", spec);
            return -1;
        }
        a->uid = (uid_t)u;
        a->gid = (gid_t)g;
        return 0;
    }
    struct passwd *pw = getpwnam(spec);
    if (!pw) {
        snprintf(err, errlen, "unknown account \"%s\": create it (see INSTALL) or use UID:GID", spec);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "account \"%s\" is root: each process needs an unprivileged account", spec);
        return -1;
    }
    a->uid = pw->pw_uid;
    a->gid = pw->pw_gid;
    return 0;
}

void priv_drop(const struct account *a, const char *jail)
{
    if (!priv_is_root())
        return;
    if (setgroups(1, &a->gid) < 0)
        log_fatal("setgroups(%lu): %s", (unsigned long)a->gid, strerror(errno));
    if (jail) {
        if (chroot(jail) < 0)
            log_fatal("chroot(%s): %s", jail, strerror(errno));
        if (chdir("/") < 0)
            log_fatal("chdir(/) in jail %s: %s", jail, strerror(errno));
    }
    if (setresgid(a->gid, a->gid, a->gid) < 0)
        log_fatal("setresgid(%lu): %s", (unsigned long)a->gid, strerror(errno));
    if (setresuid(a->uid, a->uid, a->uid) < 0)
        log_fatal("setresuid(%lu): %s", (unsigned long)a->uid, strerror(errno));

    /* Prove it: none of these may succeed or leave a trace of root. */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        log_fatal("getresuid: %s", strerror(errno));
    if (ru != a->uid || eu != a->uid || su != a->uid || rg != a->gid || eg != a->gid || sg != a->gid)
        log_fatal("privilege drop incomplete (uid %lu/%lu/%lu)", (unsigned long)ru,
                  (unsigned long)eu, (unsigned long)su);
    if (setuid(0) == 0 || seteuid(0) == 0)
        log_fatal("privilege drop failed: root could be regained");
    if (setgid(0) == 0 && a->gid != 0)
        log_fatal("privilege drop failed: group 0 could be regained");
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer inspects the process with ptrace, which the kernel
     * refuses after a uid change unless the process stays dumpable. Only
     * in sanitizer builds: production processes stay undumpable. */
    prctl(PR_SET_DUMPABLE, 1);
#endif
}
