/*
 * test_utf8.c - CUnit tests for common/utf8.c (the one UTF-8 validator) and
 * for log_sanitize() in common/log.c, which relies on it to keep log lines
 * free of control bytes and invalid UTF-8.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "suites.h"
#include "utf8.h"

static size_t dec(const char *s, size_t len, uint32_t *cp)
{
    return utf8_decode(s, len, cp);
}

static void test_decode_valid(void)
{
    uint32_t cp = 0;

    CU_ASSERT_EQUAL(dec("A", 1, &cp), 1);
    CU_ASSERT_EQUAL(cp, 'A');
    CU_ASSERT_EQUAL(dec("\0", 1, &cp), 1);
    CU_ASSERT_EQUAL(cp, 0);
    CU_ASSERT_EQUAL(dec("\x7f", 1, &cp), 1);
    /* the lowest and highest of each length, and the edges of the gaps */
    CU_ASSERT_EQUAL(dec("\xc2\x80", 2, &cp), 2);
    CU_ASSERT_EQUAL(cp, 0x80);
    CU_ASSERT_EQUAL(dec("\xdf\xbf", 2, &cp), 2);
    CU_ASSERT_EQUAL(cp, 0x7FF);
    CU_ASSERT_EQUAL(dec("\xe0\xa0\x80", 3, &cp), 3);
    CU_ASSERT_EQUAL(cp, 0x800);
    CU_ASSERT_EQUAL(dec("\xed\x9f\xbf", 3, &cp), 3);
    CU_ASSERT_EQUAL(cp, 0xD7FF);
    CU_ASSERT_EQUAL(dec("\xee\x80\x80", 3, &cp), 3);
    CU_ASSERT_EQUAL(cp, 0xE000);
    CU_ASSERT_EQUAL(dec("\xef\xbf\xbf", 3, &cp), 3);
    CU_ASSERT_EQUAL(cp, 0xFFFF);
    CU_ASSERT_EQUAL(dec("\xf0\x90\x80\x80", 4, &cp), 4);
    CU_ASSERT_EQUAL(cp, 0x10000);
    CU_ASSERT_EQUAL(dec("\xf0\x9f\x98\x80", 4, &cp), 4);
    CU_ASSERT_EQUAL(cp, 0x1F600);
    CU_ASSERT_EQUAL(dec("\xf4\x8f\xbf\xbf", 4, &cp), 4);
    CU_ASSERT_EQUAL(cp, 0x10FFFF);
    CU_ASSERT_EQUAL(dec("\xc3\xa9", 2, &cp), 2);
    CU_ASSERT_EQUAL(cp, 0xE9);
    /* cp may be NULL; bytes after the character do not matter */
    CU_ASSERT_EQUAL(dec("\xe2\x82\xac\xff", 4, NULL), 3);
}

static void test_decode_invalid(void)
{
    static const struct { const char *s; size_t len; } bad[] = {
        { "\xc0\xaf", 2 },              /* overlong '/' */
        { "\xc1\xbf", 2 },
        { "\xe0\x80\xaf", 3 },          /* overlong 3-byte */
        { "\xe0\x9f\xbf", 3 },
        { "\xf0\x80\x80\xaf", 4 },      /* overlong 4-byte */
        { "\xf0\x8f\xbf\xbf", 4 },
        { "\xed\xa0\x80", 3 },          /* surrogates */
        { "\xed\xbf\xbf", 3 },
        { "\xf4\x90\x80\x80", 4 },      /* above U+10FFFF */
        { "\xf5\x80\x80\x80", 4 },
        { "\xf8\x88\x80\x80\x80", 5 },  /* 5- and 6-byte forms of old */
        { "\xfc\x84\x80\x80\x80\x80", 6 },
        { "\xfe", 1 }, { "\xff", 1 },
        { "\x80", 1 }, { "\xbf", 1 },   /* lone continuation */
        { "\xc3", 1 },                  /* cut short */
        { "\xe2\x82", 2 },
        { "\xf0\x9f\x98", 3 },
        { "\xc3\x28", 2 },              /* second byte not a continuation */
        { "\xe2\x28\xa1", 3 },
        { "\xe2\x82\x28", 3 },
        { "\xf0\x9f\x98\x28", 4 },
        { "\xc3\xc3", 2 },
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp = 12345;
        CU_ASSERT_EQUAL(dec(bad[i].s, bad[i].len, &cp), 0);
        CU_ASSERT_EQUAL(cp, 12345);
        CU_ASSERT_FALSE(utf8_valid(bad[i].s, bad[i].len));
    }
    /* len bounds the read: a valid character cut by len is invalid */
    CU_ASSERT_EQUAL(dec("\xe2\x82\xac", 2, NULL), 0);
    CU_ASSERT_EQUAL(dec("A", 0, NULL), 0);
}

static void test_valid_strings(void)
{
    const char *greek = "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae";

    CU_ASSERT_TRUE(utf8_valid("", 0));
    CU_ASSERT_TRUE(utf8_valid("plain ascii\r\n", 13));
    CU_ASSERT_TRUE(utf8_valid(greek, strlen(greek)));
    CU_ASSERT_TRUE(utf8_valid("a\0b", 3));
    CU_ASSERT_TRUE(utf8_valid("Jos\xc3\xa9 \xf0\x9f\x98\x80!", 10));
    CU_ASSERT_FALSE(utf8_valid("Jos\xc3\xa9 \xf0\x9f\x98!", 9));
    CU_ASSERT_FALSE(utf8_valid("ok\xc3", 3));
    CU_ASSERT_TRUE(utf8_valid("ok\xc3", 2));
    CU_ASSERT_TRUE(utf8_is_c1(0x85));
    CU_ASSERT_TRUE(utf8_is_c1(0x9B));
    CU_ASSERT_FALSE(utf8_is_c1(0x7F));
    CU_ASSERT_FALSE(utf8_is_c1(0xA0));
}

/* ---- log_sanitize ---- */

static const char *san(const char *in, size_t len, char *out, size_t outlen)
{
    memset(out, 'Z', outlen);
    return log_sanitize(in, len, out, outlen);
}

static void test_sanitize_controls(void)
{
    char out[128];

    CU_ASSERT_STRING_EQUAL(san("hello world", 11, out, sizeof out), "hello world");
    /* a user name with a newline cannot start a second log line */
    CU_ASSERT_STRING_EQUAL(san("bob\npostern/smtpd[1]: fake", 26, out, sizeof out),
                           "bob?postern/smtpd[1]: fake");
    CU_ASSERT_STRING_EQUAL(san("a\r\nb", 4, out, sizeof out), "a??b");
    CU_ASSERT_STRING_EQUAL(san("\t\x1b[31mred\x7f", 10, out, sizeof out), "??[31mred?");
    /* a NUL inside len is a control byte, not the end */
    CU_ASSERT_STRING_EQUAL(san("a\0b", 3, out, sizeof out), "a?b");
    /* every C0 byte and DEL */
    for (int c = 0; c < 0x20; c++) {
        char in[3] = { 'x', (char)c, 'y' };
        CU_ASSERT_STRING_EQUAL(san(in, 3, out, sizeof out), "x?y");
    }
    CU_ASSERT_STRING_EQUAL(san("\x7f", 1, out, sizeof out), "?");
    /* len, not the NUL, ends the input */
    CU_ASSERT_STRING_EQUAL(san("abcdef", 3, out, sizeof out), "abc");
    CU_ASSERT_STRING_EQUAL(san(NULL, 5, out, sizeof out), "");
}

static void test_sanitize_utf8(void)
{
    char out[128];

    /* well-formed UTF-8 is kept */
    CU_ASSERT_STRING_EQUAL(san("Jos\xc3\xa9 \xf0\x9f\x98\x80", 10, out, sizeof out),
                           "Jos\xc3\xa9 \xf0\x9f\x98\x80");
    /* invalid UTF-8: each byte of the bad sequence becomes '?' */
    CU_ASSERT_STRING_EQUAL(san("a\xc0\xafz", 4, out, sizeof out), "a??z");
    CU_ASSERT_STRING_EQUAL(san("\xed\xa0\x80", 3, out, sizeof out), "???");
    CU_ASSERT_STRING_EQUAL(san("\xf4\x90\x80\x80", 4, out, sizeof out), "????");
    CU_ASSERT_STRING_EQUAL(san("\x80x\xff", 3, out, sizeof out), "?x?");
    CU_ASSERT_STRING_EQUAL(san("end\xe2\x82", 5, out, sizeof out), "end??");
    /* a character cut by len is invalid too */
    CU_ASSERT_STRING_EQUAL(san("\xe2\x82\xac", 2, out, sizeof out), "??");
    /* C1 controls (NEL, CSI), line separators and bidi overrides: one '?' */
    CU_ASSERT_STRING_EQUAL(san("a\xc2\x85z", 4, out, sizeof out), "a?z");
    CU_ASSERT_STRING_EQUAL(san("\xc2\x9b" "31m", 5, out, sizeof out), "?31m");
    CU_ASSERT_STRING_EQUAL(san("a\xe2\x80\xa8z\xe2\x80\xa9", 8, out, sizeof out), "a?z?");
    CU_ASSERT_STRING_EQUAL(san("\xe2\x80\xaegnp.exe", 10, out, sizeof out), "?gnp.exe");
    CU_ASSERT_STRING_EQUAL(san("\xe2\x81\xa6x\xe2\x81\xa9", 7, out, sizeof out), "?x?");
    /* U+00A0 and U+2027, next to the refused ranges, are kept */
    CU_ASSERT_STRING_EQUAL(san("\xc2\xa0\xe2\x80\xa7", 5, out, sizeof out),
                           "\xc2\xa0\xe2\x80\xa7");
}

static void test_sanitize_bounds(void)
{
    char out[8];

    /* always terminated, never past outlen */
    CU_ASSERT_STRING_EQUAL(san("0123456789", 10, out, sizeof out), "0123456");
    CU_ASSERT_EQUAL(out[7], 0);
    memset(out, 'Z', sizeof out);
    CU_ASSERT_STRING_EQUAL(log_sanitize("abc", 3, out, 1), "");
    CU_ASSERT_EQUAL(out[1], 'Z');
    /* outlen 0 writes nothing */
    memset(out, 'Z', sizeof out);
    CU_ASSERT_PTR_EQUAL(log_sanitize("abc", 3, out, 0), out);
    CU_ASSERT_EQUAL(out[0], 'Z');
    /* a multi-byte character is left out whole rather than cut */
    CU_ASSERT_STRING_EQUAL(san("abcdef\xc3\xa9", 8, out, sizeof out), "abcdef");
    CU_ASSERT_STRING_EQUAL(san("abcde\xc3\xa9x", 8, out, sizeof out), "abcde\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(san("abcd\xf0\x9f\x98\x80", 8, out, sizeof out), "abcd");
    CU_ASSERT_STRING_EQUAL(san("abc\xf0\x9f\x98\x80", 7, out, sizeof out), "abc\xf0\x9f\x98\x80");
}

/* Every output of every 1- and 2-byte input: no control byte, valid UTF-8. */
static void test_sanitize_exhaustive(void)
{
    char in[3], out[16];
    int bad = 0;

    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            for (int c = 0; c < 256; c += 17) {
                size_t n;
                in[0] = (char)a;
                in[1] = (char)b;
                in[2] = (char)c;
                log_sanitize(in, 3, out, sizeof out);
                n = strlen(out);
                if (!utf8_valid(out, n))
                    bad++;
                for (size_t i = 0; i < n; i++) {
                    unsigned char ch = (unsigned char)out[i];
                    if (ch < 0x20 || ch == 0x7f)
                        bad++;
                    if (ch == 0xc2 && i + 1 < n && (unsigned char)out[i + 1] < 0xa0)
                        bad++;
                }
            }
    CU_ASSERT_EQUAL(bad, 0);
}

void suite_utf8(void)
{
    CU_pSuite s = CU_add_suite("utf8", NULL, NULL);

    CU_add_test(s, "decode: valid characters", test_decode_valid);
    CU_add_test(s, "decode: overlongs, surrogates, range, truncation", test_decode_invalid);
    CU_add_test(s, "validate strings", test_valid_strings);
    CU_add_test(s, "log_sanitize: control bytes", test_sanitize_controls);
    CU_add_test(s, "log_sanitize: UTF-8", test_sanitize_utf8);
    CU_add_test(s, "log_sanitize: output bounds", test_sanitize_bounds);
    CU_add_test(s, "log_sanitize: every short input", test_sanitize_exhaustive);
}
