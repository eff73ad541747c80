/*
 * subfix.c - submission header fix-ups and the From: check (subfix.h).
 * Must never keep more than SUBFIX_FROM_MAX bytes of a header, never let
 * an unparsable From: through when the check is on, and never add a
 * field after the header section has ended.
 */
#include "subfix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "rfc5322.h"
#include "util.h"

void subfix_start(struct subfix *f, const char *host, const char *qid, subfix_owned_fn owned, void *arg)
{
    memset(f, 0, sizeof(*f));
    f->in_header = 1;
    buf_init(&f->from, SUBFIX_FROM_MAX);
    f->owned = owned;
    f->owned_arg = arg;
    str_copy(f->host, host, sizeof(f->host));
    str_copy(f->qid, qid, sizeof(f->qid));
}

void subfix_free(struct subfix *f)
{
    buf_free(&f->from);
}

/* Checks every address of the From: fields. */
static void check_from(struct subfix *f)
{
    struct rfc5322_list l;
    struct rfc5322_addr a;
    int r, n = 0;

    if (!f->owned || f->from_fields == 0)
        return; /* no check, or nothing claimed */
    if (f->from_toolong) {
        f->verdict = 1;
        str_copy(f->bad, "(From: too long)", sizeof(f->bad));
        return;
    }
    rfc5322_list_init(&l, buf_head(&f->from), f->from.len);
    while ((r = rfc5322_list_next(&l, &a)) == 1) {
        char mbox[ADDR_MAX + 1], path[ADDR_MAX + 3];
        struct addr ad;
        size_t end;
        int utf8 = 0, o;
        n++;
        if (a.len > ADDR_MAX || rfc5322_mailbox(a.spec, a.len, NULL, ADDR_UTF8, mbox, sizeof(mbox), &utf8) ||
            (size_t)snprintf(path, sizeof(path), "<%s>", mbox) >= sizeof(path) ||
            addr_parse_path(path, strlen(path), ADDR_UTF8, &ad, &end) != ADDR_OK || !ad.domain[0]) {
            f->verdict = 1;
            str_copy(f->bad, "(unparsable From:)", sizeof(f->bad));
            return;
        }
        o = f->owned(f->owned_arg, &ad);
        if (o != 1) {
            f->verdict = o < 0 ? -1 : 1;
            str_copy(f->bad, mbox, sizeof(f->bad));
            return;
        }
    }
    if (r < 0 || n == 0) {
        f->verdict = 1;
        str_copy(f->bad, "(unparsable From:)", sizeof(f->bad));
    }
}

/* The end of the header section: the fields to add. */
static size_t header_end(struct subfix *f, char *add)
{
    char date[64], rnd[8], hex[17];
    size_t n = 0;

    f->in_header = 0;
    check_from(f);
    if (!f->seen_date) {
        format_rfc5322_date(time(NULL), date, sizeof(date));
        n += (size_t)snprintf(add + n, SUBFIX_ADD_MAX - n, "Date: %s\r\n", date);
    }
    if (!f->seen_msgid) {
        if (RAND_bytes((unsigned char *)rnd, sizeof(rnd)) != 1)
            memset(rnd, 0, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)rnd[i]);
        n += (size_t)snprintf(add + n, SUBFIX_ADD_MAX - n, "Message-ID: <%s.%s@%s>\r\n", f->qid, hex, f->host);
    }
    return n < SUBFIX_ADD_MAX ? n : 0;
}

size_t subfix_line(struct subfix *f, const char *line, size_t len, char *add)
{
    size_t body = len, name;

    if (!f->in_header)
        return 0;
    while (body > 0 && (line[body - 1] == '\n' || line[body - 1] == '\r'))
        body--;
    if (body == 0)
        return header_end(f, add);
    if (line[0] == ' ' || line[0] == '\t') {
        if (f->in_from && buf_append(&f->from, line, body) < 0)
            f->from_toolong = 1;
        return 0;
    }
    name = rfc5322_field_name_len(line, body);
    if (name == 0)
        return header_end(f, add); /* the body began without a blank line */
    f->in_from = 0;
    if (name == 4 && !strncasecmp(line, "From", 4)) {
        const char *colon = memchr(line, ':', body);
        f->in_from = 1;
        if (f->from_fields++ && buf_append(&f->from, ",", 1) < 0)
            f->from_toolong = 1;
        if (buf_append(&f->from, colon + 1, body - (size_t)(colon + 1 - line)) < 0)
            f->from_toolong = 1;
    } else if (name == 4 && !strncasecmp(line, "Date", 4)) {
        f->seen_date = 1;
    } else if (name == 10 && !strncasecmp(line, "Message-ID", 10)) {
        f->seen_msgid = 1;
    }
    return 0;
}

const char *subfix_end(struct subfix *f, char *reply, size_t len)
{
    char add[SUBFIX_ADD_MAX];

    if (f->in_header)
        header_end(f, add); /* a message of headers only: the check still counts */
    if (f->verdict == 0)
        return NULL;
    if (f->verdict < 0)
        snprintf(reply, len, "451 4.3.0 Error: temporary failure checking the From: header");
    else
        snprintf(reply, len, "553 5.7.1 <%s>: Sender address rejected: not owned by user", f->bad);
    return reply;
}
