/*
 * route.h - where a job goes and what to do after each attempt: the
 * destination as queue-mgr wrote it ("domain", or the relayhost as
 * "[host]:port", "host:port", "host", or local_transport's LMTP forms
 * "lmtp:unix:PATH", "lmtp:[host]:port", "lmtp:host:port"), and the MX
 * iteration decisions (next host, plain-text retry, finish). Pure: no I/O,
 * no DNS.
 */
#ifndef POSTERN_DELIVER_ROUTE_H
#define POSTERN_DELIVER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "dnsclient.h"
#include "smtpc.h"

struct route {
    char host[DNS_NAME_MAX + 1];    /* domain, host name, or an IP literal */
    unsigned port;
    int no_mx;                      /* "[host]": addresses only */
    int literal;                    /* host is a numeric IP address */
    int relay;                      /* this is the configured relayhost */
    int lmtp;                       /* "lmtp:...": LMTP (RFC 2033), never MX */
    char unix_path[108];            /* "lmtp:unix:PATH": the socket (a relative
                                       PATH is deliver's working directory's,
                                       RUN/deliver); "" for TCP */
};

#define ROUTE_LMTP_PORT 24          /* "lmtp:host" without a port (as Postfix) */

/* Parses dest; relayhost is the configured one ("" for none) and
 * default_port remote_smtp_port (LMTP's default is ROUTE_LMTP_PORT). An
 * LMTP destination by name gets address look-ups only, as "[host]" does.
 * -1 when dest is malformed. */
int route_parse(const char *dest, const char *relayhost, unsigned default_port, struct route *r);

enum mx_action {
    MX_FINISH,          /* the results stand */
    MX_NEXT,            /* try the next host (it->hop moved on) */
    MX_RETRY_PLAIN,     /* a host whose TLS failed, again without STARTTLS (once every host was tried) */
};

struct mxiter {
    size_t nhop, hop;   /* hosts in order; the one being tried */
    int plain;          /* this attempt is the plain-text retry */
    int reached;        /* some session got past the greeting */
    int connected;      /* some connection was made */
    int no_smtputf8;    /* the last attempt ended for lack of SMTPUTF8 */
    uint64_t tls_failed; /* hops (the first 64) whose TLS handshake failed */
};

void mx_init(struct mxiter *it, size_t nhop);
/* After an attempt with outcome o; connected / greeted as the session says. */
enum mx_action mx_after(struct mxiter *it, enum smtpc_outcome o, int connected, int greeted);
/* At the end: recipients still deferred for lack of SMTPUTF8 (4.6.7) are
 * bounced 5.6.7 when the last host tried lacked it. */
void mx_finish(const struct mxiter *it, struct smtpc_msg *m);
/* D_F_* flags for the result. */
unsigned mx_flags(const struct mxiter *it);

#endif
