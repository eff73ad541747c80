/*
 * linereader.c - split a byte stream into LF-terminated lines (linereader.h).
 *
 * Lines that lie wholly inside the caller's input are returned in place; only
 * a line split across reads is copied, into the fixed carry buffer. A line
 * longer than max is never stored whole: its head is kept and the rest only
 * counted, so no input can grow memory.
 */
#include "linereader.h"

#include <string.h>

/* Private scan state lives in the high bits of lr->flags. */
#define LR_PREV_CR (1u << 16)

void lr_init(struct linereader *lr, size_t max)
{
    memset(lr, 0, sizeof(*lr));
    lr_set_max(lr, max);
}

void lr_set_max(struct linereader *lr, size_t max)
{
    lr->max = max > LR_MAX_LINE ? LR_MAX_LINE : max;
    /* A held partial line longer than the new limit is cut to it. */
    if (lr->carry_len > lr->max)
        lr->carry_len = lr->max;
}

void lr_reset(struct linereader *lr)
{
    lr->carry_len = 0;
    lr->seen = 0;
    lr->flags = 0;
}

/* Updates flags for bytes p[0..n); the LF, if any, is the last byte.
 * memchr does the walking: this runs over every byte of every message. */
static void lr_scan(struct linereader *lr, const char *p, size_t n)
{
    unsigned f = lr->flags;
    const char *end = p + n, *cr;

    if (n == 0)
        return;
    /* A CR that ended the previous piece is bare unless this one starts
     * with its LF. */
    if ((f & LR_PREV_CR) && p[0] != '\n')
        f |= LR_BARE_CR;
    f &= ~LR_PREV_CR;
    if (memchr(p, 0, n))
        f |= LR_NUL;
    for (cr = memchr(p, '\r', n); cr; cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
        if (cr + 1 == end) {
            f |= LR_PREV_CR;
            break;
        }
        if (cr[1] != '\n')
            f |= LR_BARE_CR;
    }
    if (end[-1] == '\n' && ((n >= 2 && end[-2] == '\r') || (n == 1 && (lr->flags & LR_PREV_CR))))
        f |= LR_CRLF;
    lr->flags = f;
}

int lr_next(struct linereader *lr, const char **in, size_t *inlen,
            const char **line, size_t *linelen, unsigned *flags)
{
    const char *p = *in;
    size_t n = *inlen, take, room;
    const char *lf;

    if (n == 0)
        return 0;
    lf = memchr(p, '\n', n);
    take = lf ? (size_t)(lf - p) + 1 : n;
    lr_scan(lr, p, take);
    *in = p + take;
    *inlen = n - take;

    if (lr->seen == 0 && lf && take <= lr->max) {
        *line = p;
        *linelen = take;
        *flags = lr->flags & 0xffff;
        lr->flags = 0;
        return 1;
    }
    room = lr->max - lr->carry_len;
    memcpy(lr->carry + lr->carry_len, p, take < room ? take : room);
    lr->carry_len += take < room ? take : room;
    lr->seen += take;
    if (lr->seen > lr->max)
        lr->flags |= LR_TOOLONG;
    if (!lf)
        return 0;
    *line = lr->carry;
    *linelen = lr->carry_len;
    *flags = lr->flags & 0xffff;
    lr->carry_len = 0;
    lr->seen = 0;
    lr->flags = 0;
    return 1;
}
