/*
 * test_queueid.c - CUnit suite for common/queueid.c: ids are QID_LEN
 * characters of [0-9A-Z], strictly increasing in both stamp and string order
 * (also when the clock steps back), continue after qid_init(last), and
 * qid_valid / qid_stamp agree with the encoding.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queueid.h"
#include "suites.h"

static int qt_charset_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

static uint64_t qt_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void test_qid_format(void)
{
    char id[QID_LEN + 8];
    int i, bad = 0;

    CU_ASSERT_EQUAL(QID_LEN, 12);
    qid_init(NULL);
    for (i = 0; i < 1000; i++) {
        memset(id, 'x', sizeof(id));
        qid_next(id);
        if (id[QID_LEN] != 0 || strlen(id) != QID_LEN || !qt_charset_ok(id) || !qid_valid(id) ||
            id[QID_LEN + 1] != 'x') /* writes exactly QID_LEN + 1 bytes */
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* 100000 ids in a row: each sorts after the previous, as a string and as a stamp. */
static void test_qid_increasing(void)
{
    char prev[QID_LEN + 1], cur[QID_LEN + 1];
    uint64_t before = qt_now_us(), ps, cs;
    int i, not_sorted = 0, not_valid = 0;

    qid_init(NULL);
    qid_next(prev);
    ps = qid_stamp(prev);
    CU_ASSERT(ps >= before);
    for (i = 0; i < 100000; i++) {
        qid_next(cur);
        cs = qid_stamp(cur);
        if (strcmp(prev, cur) >= 0 || cs <= ps)
            not_sorted++;
        if (!qid_valid(cur) || strlen(cur) != QID_LEN || !qt_charset_ok(cur))
            not_valid++;
        memcpy(prev, cur, sizeof(prev));
        ps = cs;
    }
    CU_ASSERT_EQUAL(not_sorted, 0);
    CU_ASSERT_EQUAL(not_valid, 0);
    /* 100000 ids fit in a few seconds of the clock, not far into the future. */
    CU_ASSERT(ps <= qt_now_us() + 100000 + 1);
}

static void test_qid_clock_steps_back(void)
{
    char a[QID_LEN + 1], b[QID_LEN + 1], c[QID_LEN + 1], d[QID_LEN + 1];
    const uint64_t t = 1700000000000000ull;

    qid_init(NULL);
    qid_next_at(t, a);
    CU_ASSERT_EQUAL(qid_stamp(a), t);
    qid_next_at(t - 5000000, b); /* five seconds back */
    CU_ASSERT(strcmp(a, b) < 0);
    CU_ASSERT_EQUAL(qid_stamp(b), t + 1);
    qid_next_at(t, c); /* same reading again */
    CU_ASSERT(strcmp(b, c) < 0);
    CU_ASSERT_EQUAL(qid_stamp(c), t + 2);
    qid_next_at(0, d); /* all the way back */
    CU_ASSERT(strcmp(c, d) < 0);
    CU_ASSERT_EQUAL(qid_stamp(d), t + 3);
    qid_next_at(t + 1000, a); /* the clock catches up: ids follow it again */
    CU_ASSERT(strcmp(d, a) < 0);
    CU_ASSERT_EQUAL(qid_stamp(a), t + 1000);
    /* qid_next after a future id still moves forward. */
    qid_next_at(qt_now_us() + 3600000000ull, b);
    qid_next(c);
    CU_ASSERT(strcmp(b, c) < 0);
    CU_ASSERT_EQUAL(qid_stamp(c), qid_stamp(b) + 1);
}

/* After a restart, ids continue after the newest one in the queue. */
static void test_qid_init_last(void)
{
    char last[QID_LEN + 1], id[QID_LEN + 1], copy[QID_LEN + 1];
    uint64_t future = qt_now_us() + 86400000000ull; /* a day ahead */

    qid_init(NULL);
    qid_next_at(future, last);
    memcpy(copy, last, sizeof(copy));
    qid_init(NULL); /* forget it, as a fresh process would */
    qid_next_at(future - 1, id);
    CU_ASSERT(strcmp(id, last) < 0);

    qid_init(copy);
    qid_next(id);
    CU_ASSERT(strcmp(id, copy) > 0);
    CU_ASSERT_EQUAL(qid_stamp(id), future + 1);
    qid_init(copy);
    qid_next_at(0, id);
    CU_ASSERT_EQUAL(qid_stamp(id), future + 1);
    qid_init(copy);
    qid_next_at(future + 50, id); /* a later clock wins */
    CU_ASSERT_EQUAL(qid_stamp(id), future + 50);

    /* An old `last` does not hold the clock back. */
    qid_init("000000000001");
    qid_next(id);
    CU_ASSERT(qid_stamp(id) >= qt_now_us() - 10000000);
    qid_init(NULL);
}

static void test_qid_valid(void)
{
    char s[QID_LEN + 2];
    const char *good = "0123456789AZ";
    const char edge[] = { '/', ':', '@', '[', '`', '{', 'a', 'z', ' ', '-', '.', '_', '\x80', '\xff' };
    size_t i;

    CU_ASSERT_TRUE(qid_valid("0123456789AB"));
    CU_ASSERT_TRUE(qid_valid("000000000000"));
    CU_ASSERT_TRUE(qid_valid("ZZZZZZZZZZZZ"));
    CU_ASSERT_TRUE(qid_valid(good));
    CU_ASSERT_FALSE(qid_valid(""));
    CU_ASSERT_FALSE(qid_valid("0"));
    CU_ASSERT_FALSE(qid_valid("0123456789A"));   /* 11 */
    CU_ASSERT_FALSE(qid_valid("0123456789ABC")); /* 13 */
    CU_ASSERT_FALSE(qid_valid("0123456789ABCDEFGHIJ"));
    CU_ASSERT_FALSE(qid_valid("0123456789ab"));
    CU_ASSERT_FALSE(qid_valid("0123456789Ab"));
    CU_ASSERT_FALSE(qid_valid("abcdefghijkl"));
    CU_ASSERT_FALSE(qid_valid("01234-6789AB"));
    CU_ASSERT_FALSE(qid_valid("0123456789A."));
    CU_ASSERT_FALSE(qid_valid(" 0123456789A"));
    CU_ASSERT_FALSE(qid_valid("0123456789A\n"));
    CU_ASSERT_FALSE(qid_valid("../../etc/pw"));
    /* Each byte just outside [0-9A-Z], and others, at every position. */
    for (i = 0; i < sizeof(edge); i++)
        for (size_t pos = 0; pos < QID_LEN; pos++) {
            memcpy(s, good, QID_LEN + 1);
            s[pos] = edge[i];
            if (qid_valid(s)) {
                CU_FAIL("qid_valid accepted a bad byte");
                return;
            }
        }
    /* A NUL inside makes it short. */
    memcpy(s, good, QID_LEN + 1);
    s[5] = 0;
    CU_ASSERT_FALSE(qid_valid(s));
    CU_ASSERT_EQUAL(qid_stamp(s), 0);
}

static void test_qid_stamp(void)
{
    static const uint64_t vals[] = { 1, 35, 36, 37, 1295, 1296, 1700000000000000ull,
                                     1700000000123456ull, 4738381338321616895ull /* 36^12 - 1 */ };
    char id[QID_LEN + 1], id2[QID_LEN + 1];
    size_t i;
    uint64_t now;

    qid_init(NULL);
    qid_next_at(1, id);
    CU_ASSERT_STRING_EQUAL(id, "000000000001");
    qid_init(NULL);
    qid_next_at(36, id);
    CU_ASSERT_STRING_EQUAL(id, "000000000010");
    qid_init(NULL);
    qid_next_at(4738381338321616895ull, id);
    CU_ASSERT_STRING_EQUAL(id, "ZZZZZZZZZZZZ");
    CU_ASSERT_EQUAL(qid_stamp("00000000000Z"), 35);
    CU_ASSERT_EQUAL(qid_stamp("000000000100"), 1296);
    CU_ASSERT_EQUAL(qid_stamp("ZZZZZZZZZZZZ"), 4738381338321616895ull);

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        qid_init(NULL);
        qid_next_at(vals[i], id);
        CU_ASSERT_TRUE(qid_valid(id));
        CU_ASSERT_EQUAL(qid_stamp(id), vals[i]);
        /* encode(stamp(id)) == id */
        qid_init(NULL);
        qid_next_at(qid_stamp(id), id2);
        CU_ASSERT_STRING_EQUAL(id, id2);
    }

    /* String order is stamp order for arbitrary pairs. */
    srand(12345);
    for (i = 0; i < 2000; i++) {
        uint64_t x = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) % (4738381338321616895ull - 200) + 1;
        uint64_t y = (i & 1) ? x + (uint64_t)(rand() % 100) : ((uint64_t)rand() << 20 ^ (uint64_t)rand()) + 1;
        int sc, vc;

        qid_init(NULL);
        qid_next_at(x, id);
        qid_init(NULL);
        qid_next_at(y, id2);
        sc = strcmp(id, id2);
        vc = x < y ? -1 : x > y;
        if ((sc < 0) != (vc < 0) || (sc > 0) != (vc > 0) || (sc == 0) != (vc == 0)) {
            CU_FAIL("string order differs from stamp order");
            break;
        }
    }

    /* A real id holds the microsecond clock. */
    qid_init(NULL);
    now = qt_now_us();
    qid_next(id);
    CU_ASSERT(qid_stamp(id) >= now);
    CU_ASSERT(qid_stamp(id) < now + 10000000);

    /* Invalid input gives 0. */
    CU_ASSERT_EQUAL(qid_stamp(""), 0);
    CU_ASSERT_EQUAL(qid_stamp("0123456789ab"), 0);
    CU_ASSERT_EQUAL(qid_stamp("0123456789ABC"), 0);
    CU_ASSERT_EQUAL(qid_stamp("0123456789A"), 0);
    qid_init(NULL);
}

void suite_queueid(void)
{
    CU_pSuite s = CU_add_suite("queueid", NULL, NULL);

    if (!s)
        return;
    CU_add_test(s, "format and charset", test_qid_format);
    CU_add_test(s, "100000 strictly increasing", test_qid_increasing);
    CU_add_test(s, "clock steps back", test_qid_clock_steps_back);
    CU_add_test(s, "qid_init(last) continues", test_qid_init_last);
    CU_add_test(s, "qid_valid", test_qid_valid);
    CU_add_test(s, "qid_stamp round trip and order", test_qid_stamp);
}
