/*
 * ubsetup.c - the libunbound context from postern.conf (ubsetup.h).
 *
 * Everything libunbound will ever read from the file system (the trust
 * anchor) is read here, before the chroot: the context is finalized by a
 * first, local look-up. It must never read /etc/resolv.conf or /etc/hosts:
 * DNS goes to dns_forwarders, dns_stub_zones, or the root.
 */
#include "ubsetup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define DEFAULT_ANCHOR "/usr/share/dns/root.key"

static int set_opt(struct ub_ctx *ctx, const char *opt, const char *val, char *err, size_t errlen)
{
    int r = ub_ctx_set_option(ctx, opt, val);
    if (r != 0) {
        snprintf(err, errlen, "libunbound option %s %s: %s", opt, val, ub_strerror(r));
        return -1;
    }
    return 0;
}

/* "zone=addr[@port]": a stub zone. */
static int add_stub(struct ub_ctx *ctx, const char *spec, char *err, size_t errlen)
{
    char zone[DNS_NAME_MAX + 1], raw[DNS_NAME_MAX + 2];
    const char *eq = strchr(spec, '=');
    size_t zl;
    int r;

    if (!eq || (zl = (size_t)(eq - spec)) >= sizeof raw) {
        snprintf(err, errlen, "dns_stub_zones: bad entry \"%s\"", spec);
        return -1;
    }
    memcpy(raw, spec, zl);
    raw[zl] = '\0';
    if (dns_name_normalize(raw, zl, zone) < 0) {
        snprintf(err, errlen, "dns_stub_zones: bad zone \"%s\"", raw);
        return -1;
    }
    r = ub_ctx_set_stub(ctx, zone, eq + 1, 0);
    if (r != 0) {
        snprintf(err, errlen, "dns_stub_zones %s: %s", spec, ub_strerror(r));
        return -1;
    }
    /* A private zone has no chain of trust from the root: without this its
     * answers would all be bogus. A trust anchor for the zone itself (in
     * dnssec_trust_anchor_file) still makes it secure. */
    return set_opt(ctx, "domain-insecure:", zone, err, errlen);
}

static int unhide_stub(struct ub_ctx *ctx, const char *spec, char *err, size_t errlen)
{
    char zone[DNS_NAME_MAX + 1], fq[DNS_NAME_MAX + 2];
    const char *eq = strchr(spec, '='), *p;
    int r;

    if (!eq || dns_name_normalize(spec, (size_t)(eq - spec), zone) < 0)
        return 0;   /* add_stub refused it already */
    for (p = zone; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL) {
        snprintf(fq, sizeof fq, "%s.", p);
        if ((r = ub_ctx_zone_remove(ctx, fq)) != 0) {
            snprintf(err, errlen, "dns_stub_zones %s: cannot unhide %s: %s", spec, fq, ub_strerror(r));
            return -1;
        }
    }
    return 0;
}

/* The trust anchor: an explicit file must be readable (a clear start-up
 * error otherwise); the default is used when it exists. */
static int add_anchor(struct ub_ctx *ctx, const char *file, const char **used, char *err,
                      size_t errlen)
{
    int fd, r;

    *used = NULL;
    if (!file[0])
        return 0;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && strcmp(file, DEFAULT_ANCHOR) == 0) {
            log_warning("no DNSSEC trust anchor: %s is missing (Debian package dns-root-data); "
                        "every answer is insecure", file);
            return 0;
        }
        snprintf(err, errlen, "dnssec_trust_anchor_file %s: cannot read: %s", file, strerror(errno));
        return -1;
    }
    close(fd);
    r = ub_ctx_add_ta_file(ctx, file);
    if (r != 0) {
        snprintf(err, errlen, "dnssec_trust_anchor_file %s: %s", file, ub_strerror(r));
        return -1;
    }
    *used = file;
    return 0;
}

struct ub_ctx *ubsetup_create(const struct config *c, char *err, size_t errlen)
{
    struct ub_ctx *ctx = ub_ctx_create();
    struct ub_result *res = NULL;
    const char *anchor;
    struct rlimit rl;
    unsigned range = 8192;
    char num[16];
    int r;

    if (!ctx) {
        snprintf(err, errlen, "libunbound: cannot create a context (out of memory?)");
        return NULL;
    }
    /* Many queries in flight need as many UDP sockets: take the descriptors
     * the system allows and size libunbound's port range to them. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < range + 512)
            range = rl.rlim_cur > 768 ? (unsigned)rl.rlim_cur - 512 : 256;
    }
    snprintf(num, sizeof num, "%u", range);
    if (set_opt(ctx, "num-queries-per-thread:", "8192", err, errlen) < 0 ||
        set_opt(ctx, "outgoing-range:", num, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < c->dns_forwarders.n; i++) {
        if ((r = ub_ctx_set_fwd(ctx, c->dns_forwarders.v[i])) != 0) {
            snprintf(err, errlen, "dns_forwarders %s: %s", c->dns_forwarders.v[i], ub_strerror(r));
            goto fail;
        }
    }
    for (size_t i = 0; i < c->dns_stub_zones.n; i++)
        if (add_stub(ctx, c->dns_stub_zones.v[i], err, errlen) < 0)
            goto fail;
    if (add_anchor(ctx, c->dnssec_trust_anchor_file, &anchor, err, errlen) < 0)
        goto fail;
    if ((r = ub_ctx_async(ctx, 1)) != 0) {
        snprintf(err, errlen, "libunbound: threads: %s", ub_strerror(r));
        goto fail;
    }
    /* libunbound answers RFC 6761 names ("test", "invalid", "localhost"
     * ...) itself, from default local zones: one at or above a stub zone
     * would hide it. Removing them finalizes the context. */
    for (size_t i = 0; i < c->dns_stub_zones.n; i++)
        if (unhide_stub(ctx, c->dns_stub_zones.v[i], err, errlen) < 0)
            goto fail;
    /* Finalize now, while the files are reachable: "localhost" is one of
     * libunbound's local zones, answered without any network traffic. */
    r = ub_resolve(ctx, "localhost.", DNS_T_A, 1, &res);
    if (res)
        ub_resolve_free(res);
    if (r != 0) {
        snprintf(err, errlen, "libunbound set-up failed: %s%s%s%s", ub_strerror(r),
                 anchor ? " (is dnssec_trust_anchor_file " : "", anchor ? anchor : "",
                 anchor ? " a zone file of DS or DNSKEY records?)" : "");
        goto fail;
    }
    log_info("DNS: %s%s%s, %zu stub zone(s); DNSSEC %s%s",
             c->dns_forwarders.n ? "forwarding to " : "full recursion",
             c->dns_forwarders.n ? c->dns_forwarders.v[0] : "", c->dns_forwarders.n > 1 ? " ..." : "",
             c->dns_stub_zones.n, anchor ? "trust anchor " : "off (no trust anchor)", anchor ? anchor : "");
    return ctx;
fail:
    ub_ctx_delete(ctx);
    return NULL;
}
