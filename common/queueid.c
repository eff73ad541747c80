/*
 * queueid.c - queue ids (queueid.h): 12 base-36 digits of a strictly
 * increasing microsecond stamp. Fixed width and ASCII order of [0-9A-Z] make
 * string order equal arrival order, which the LMDB index relies on.
 */
#include "queueid.h"

#include <string.h>
#include <time.h>

static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static uint64_t qid_last;

static void qid_encode(uint64_t v, char out[QID_LEN + 1])
{
    for (int i = QID_LEN - 1; i >= 0; i--) {
        out[i] = digits[v % 36];
        v /= 36;
    }
    out[QID_LEN] = 0;
}

int qid_valid(const char *s)
{
    size_t i;

    for (i = 0; i < QID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return s[QID_LEN] == 0;
}

uint64_t qid_stamp(const char *s)
{
    uint64_t v = 0;

    if (!qid_valid(s))
        return 0;
    for (int i = 0; i < QID_LEN; i++)
        v = v * 36 + (uint64_t)(strchr(digits, s[i]) - digits);
    return v;
}

void qid_init(const char *last)
{
    qid_last = last ? qid_stamp(last) : 0;
}

void qid_next_at(uint64_t now_us, char out[QID_LEN + 1])
{
    /* A clock that steps back must not produce an id twice. */
    qid_last = now_us > qid_last ? now_us : qid_last + 1;
    qid_encode(qid_last, out);
}

void qid_next(char out[QID_LEN + 1])
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    qid_next_at((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000, out);
}
