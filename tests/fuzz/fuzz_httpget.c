/*
 * fuzz_httpget.c - libFuzzer target for httpget_parse() (queue-mgr/httpget.h),
 * the metrics endpoint's request-head parser, the one piece of queue-mgr
 * that reads network input.
 *
 * Input: byte 0 picks the path buffer size (0..63); the rest is the
 * request, copied into a heap buffer of exactly its size. Checks: a
 * defined answer; OK only with a NUL-terminated path that starts with '/'
 * and fits; the answer for every prefix is MORE or the same kind of final
 * answer once the head is complete (a parser that said OK on a prefix
 * and BAD on the whole would be reading past the blank line).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../queue-mgr/httpget.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_httpget: check failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                   \
            abort();                                                             \
        }                                                                        \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    size_t plen;
    int head;

    if (size < 1)
        return 0;
    plen = data[0] % 64;
    data++;
    size--;
    char *req = malloc(size ? size : 1);
    if (!req)
        return 0;
    memcpy(req, data, size);
    memset(path, 'x', sizeof(path));
    enum httpget_result r = httpget_parse(req, size, path, plen, &head);
    CHECK(r == HTTPGET_MORE || r == HTTPGET_OK || r == HTTPGET_BAD || r == HTTPGET_METHOD);
    if (r == HTTPGET_OK) {
        CHECK(plen > 0 && memchr(path, 0, plen) != NULL && path[0] == '/');
        CHECK(head == 0 || head == 1);
    }
    if (r != HTTPGET_MORE && size <= HTTPGET_MAX) {
        /* a longer input with the same head gives the same answer */
        char *more = malloc(size + 8);
        if (more) {
            memcpy(more, req, size);
            memcpy(more + size, "GARBAGE!", 8);
            char p2[64];
            int h2;
            enum httpget_result r2 = httpget_parse(more, size + 8, p2, plen, &h2);
            CHECK(r2 == r || (r == HTTPGET_BAD && size >= HTTPGET_MAX));
            free(more);
        }
    }
    free(req);
    return 0;
}
