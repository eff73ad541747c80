/*
 * httpget.h - the one HTTP request queue-mgr understands: the head of a
 * GET (or HEAD) for the metrics endpoint. Bounded and pure (no I/O), so
 * that a unit test and a fuzzer can feed it anything.
 */
#ifndef POSTERN_QMGR_HTTPGET_H
#define POSTERN_QMGR_HTTPGET_H

#include <stddef.h>

/* Largest request head taken; a longer one is refused. */
#define HTTPGET_MAX 4096

enum httpget_result {
    HTTPGET_MORE = 0,       /* no blank line yet: read more */
    HTTPGET_OK = 1,         /* a GET or HEAD: path filled */
    HTTPGET_BAD = -1,       /* 400: malformed, too long, or has a body */
    HTTPGET_METHOD = -2,    /* 405: another method */
};

/* Parses the request head in p[0..n). *head gets 1 for HEAD. The path
 * (query string cut off) is copied into path when it fits. */
enum httpget_result httpget_parse(const char *p, size_t n, char *path, size_t pathlen, int *head);

#endif
