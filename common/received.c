/*
 * received.c - Received: lines (received.h). Must never emit a line the
 * caller cannot write whole: a result that does not fit is -1, not a
 * truncated header.
 */
#include "received.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static int fits(int n, size_t outlen)
{
    return n > 0 && (size_t)n < outlen ? n : -1;
}

int received_smtp(char *out, size_t outlen, const struct received_smtp *r)
{
    char date[64], client[128];
    int one = r->rcpt != NULL;

    format_rfc5322_date(r->when, date, sizeof(date));
    if (r->hide_addr)
        client[0] = 0;
    else
        snprintf(client, sizeof(client), " (unknown [%s%s])", strchr(r->addr, ':') ? "IPv6:" : "", r->addr);
    return fits(snprintf(out, outlen,
                         "Received: from %s%s\r\n%s%s%s\tby %s (Postern) with %s id %s%s%s%s; %s\r\n",
                         r->helo, client,
                         r->tls ? "\t(using " : "", r->tls ? r->tls : "", r->tls ? ")\r\n" : "",
                         r->host, r->proto, r->qid, one ? "\r\n\tfor <" : "", one ? r->rcpt : "",
                         one ? ">" : "", date), outlen);
}

int received_local(char *out, size_t outlen, const char *host, unsigned long uid, const char *qid, time_t when)
{
    char date[64];

    format_rfc5322_date(when, date, sizeof(date));
    return fits(snprintf(out, outlen, "Received: by %s (Postern, from userid %lu)\r\n\tid %s; %s\r\n",
                         host, uid, qid, date), outlen);
}
