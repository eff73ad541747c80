/*
 * listeners.c - binds the listening sockets smtpd serves (listeners.h).
 *
 * Runs as root in the master. It must never accept, read or write on these
 * sockets: the master parses no network input. Descriptors stay
 * close-on-exec here; the spawn code moves the ones a child needs to fds
 * 3, 4, ... and only those survive the exec.
 */
#include "listeners.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

const char *listener_kind_name(unsigned kind)
{
    switch (kind) {
    case LK_SMTP:       return "smtp";
    case LK_SUBMISSION: return "submission";
    case LK_SMTPS:      return "smtps";
    default:            return "?";
    }
}

static const char *listener_key(unsigned kind)
{
    switch (kind) {
    case LK_SMTP:       return "listen_smtp";
    case LK_SUBMISSION: return "listen_submission";
    default:            return "listen_smtps";
    }
}

/* Same family, address and port (the text may differ: "*:25" = "0.0.0.0:25"). */
static int same_addr(const struct listen_addr *a, const struct listen_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

int listeners_plan(struct listeners *l, const struct config *c, int log, char *err, size_t errlen)
{
    const struct listen_list *lists[] = { &c->listen_smtp, &c->listen_submission, &c->listen_smtps };
    const unsigned kinds[] = { LK_SMTP, LK_SUBMISSION, LK_SMTPS };
    int tls = c->tls_cert_file[0] != '\0';

    l->n = 0;
    if (!tls && log && (c->listen_submission.n > 0 || c->listen_smtps.n > 0))
        log_info("no tls_cert_file: the submission and smtps listeners stay closed");
    for (size_t k = 0; k < 3; k++) {
        if (kinds[k] != LK_SMTP && !tls)
            continue;
        for (size_t i = 0; i < lists[k]->n && i < CONF_MAX_LIST; i++) {
            const struct listen_addr *la = &lists[k]->v[i];
            for (size_t j = 0; j < l->n; j++) {
                if (same_addr(&l->v[j].la, la)) {
                    snprintf(err, errlen, "%s: %s is listed twice (%s and %s)", c->path, la->text,
                             listener_key(l->v[j].kind), listener_key(kinds[k]));
                    return -1;
                }
            }
            l->v[l->n].la = *la;
            l->v[l->n].kind = kinds[k];
            l->v[l->n].fd = -1;
            l->n++;
        }
    }
    return 0;
}

static int find_fd(const struct listeners *l, const struct listen_addr *la)
{
    if (!l)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].fd >= 0 && same_addr(&l->v[i].la, la))
            return l->v[i].fd;
    return -1;
}

static int is_reused(const struct listeners *cur, int fd)
{
    if (!cur)
        return 0;
    for (size_t i = 0; i < cur->n; i++)
        if (cur->v[i].fd == fd)
            return 1;
    return 0;
}

int listeners_open(struct listeners *next, const struct listeners *cur, const struct config *c,
                   char *err, size_t errlen)
{
    if (listeners_plan(next, c, 1, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < next->n; i++) {
        struct listener *li = &next->v[i];
        li->fd = find_fd(cur, &li->la);
        if (li->fd >= 0)
            continue;
        li->fd = net_listen(&li->la, err, errlen);
        if (li->fd < 0) {
            for (size_t j = 0; j < i; j++) {
                if (!is_reused(cur, next->v[j].fd))
                    close(next->v[j].fd);
                next->v[j].fd = -1;
            }
            return -1;
        }
        log_info("listening on %s (%s)", li->la.text, listener_kind_name(li->kind));
    }
    return 0;
}

void listeners_retire(const struct listeners *old, const struct listeners *next)
{
    for (size_t i = 0; i < old->n; i++) {
        if (old->v[i].fd < 0 || is_reused(next, old->v[i].fd))
            continue;
        log_info("no longer listening on %s", old->v[i].la.text);
        close(old->v[i].fd);
    }
}

void listeners_close(struct listeners *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].fd >= 0)
            close(l->v[i].fd);
        l->v[i].fd = -1;
    }
}
