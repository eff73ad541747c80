/*
 * hops.c - Received: counting (hops.h). A line-start state machine over
 * blocks, so a header field split across reads is still seen whole; never
 * allocates, never reads past HOPS_SCAN_MAX.
 */
#include "hops.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct hops_state {
    long count;
    size_t col;         /* bytes of the current line seen so far */
    char head[9];       /* its first bytes, to match "received:" */
    int done;           /* the empty line ending the header section */
};

static void feed(struct hops_state *s, const char *p, size_t n, long stop)
{
    for (size_t i = 0; i < n && !s->done && s->count <= stop; i++) {
        char c = p[i];
        if (c == '\n') {
            /* "\r\n" alone, or "\n" alone: the end of the header section */
            if (s->col == 0 || (s->col == 1 && s->head[0] == '\r'))
                s->done = 1;
            s->col = 0;
            continue;
        }
        if (s->col < sizeof(s->head)) {
            s->head[s->col] = c;
            if (s->col == sizeof(s->head) - 1 && strncasecmp(s->head, "received:", 9) == 0)
                s->count++;
        }
        s->col++;
    }
}

long hops_count_buf(const char *p, size_t len, long stop)
{
    struct hops_state s;

    memset(&s, 0, sizeof(s));
    feed(&s, p, len < HOPS_SCAN_MAX ? len : HOPS_SCAN_MAX, stop);
    return s.count;
}

long hops_count_fd(int fd, off_t offset, long stop)
{
    struct hops_state s;
    char blk[16384];
    size_t total = 0;

    memset(&s, 0, sizeof(s));
    while (!s.done && s.count <= stop && total < HOPS_SCAN_MAX) {
        ssize_t n = pread(fd, blk, sizeof(blk), offset + (off_t)total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        feed(&s, blk, (size_t)n, stop);
        total += (size_t)n;
    }
    return s.count;
}
