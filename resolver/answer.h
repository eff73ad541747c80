/*
 * answer.h - turns a libunbound result into a dns_answer (dnsclient.h):
 * status, DNSSEC verdict and the records, each rdata checked. Pure: no I/O,
 * so the unit tests feed it hand-made results, malformed ones included.
 */
#ifndef POSTERN_ANSWER_H
#define POSTERN_ANSWER_H

#include <stdint.h>
#include <unbound.h>

#include "dnsclient.h"

/* err is ub_resolve's error code (0 = result valid). Fills a; a->name is
 * left as the caller set it. A malformed record makes the whole answer a
 * temporary failure; an MX whose well-formed target is no host name (a
 * space, a dot inside a label, over 253 characters) is skipped, and an
 * answer with nothing left is a temporary failure. */
void answer_from_ub(int err, const struct ub_result *res, uint16_t type, struct dns_answer *a);

/* Wire-format name at p (n bytes, uncompressed) into text ("." for the
 * root, "" for a well-formed name that is no host name); returns the bytes
 * used, or -1 if malformed (truncated, a compression pointer, over 255
 * octets). */
int answer_wire_name(const unsigned char *p, size_t n, char *out);

#endif
