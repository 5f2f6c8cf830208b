/* test_json.c: unit tests of src/json.c (escaping, exact numbers, nesting, bounds). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/json.h"
#include "check.h"

/* Writes one string value into a fresh fixed writer and returns the JSON text. */
static const char *str_json(char *buf, size_t cap, const char *s, size_t n)
{
    json_w w;
    json_init_fixed(&w, buf, cap, 0);
    json_strn(&w, s, n);
    return json_ok(&w) ? buf : "(failed)";
}

static const char *fixed_json(char *buf, size_t cap, int64_t m, int d, int trim)
{
    json_w w;
    json_init_fixed(&w, buf, cap, 0);
    if (trim)
        json_fixed_trim(&w, m, d);
    else
        json_fixed(&w, m, d);
    return json_ok(&w) ? buf : "(failed)";
}

static void test_escape_basic(void)
{
    char b[256];
    CHECK_EQ_STR(str_json(b, sizeof b, "abc", 3), "\"abc\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "", 0), "\"\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "a\"b", 3), "\"a\\\"b\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "ISk5\\2MT382", 11), "\"ISk5\\\\2MT382\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "/x/", 3), "\"/x/\"");
}

static void test_escape_control(void)
{
    char b[256];
    CHECK_EQ_STR(str_json(b, sizeof b, "a\r\nb\t", 5), "\"a\\r\\nb\\t\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "a\0b", 3), "\"a\\u0000b\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\b\f", 2), "\"\\u0008\\u000c\"");
}

static void test_escape_utf8(void)
{
    char b[256];
    /* valid UTF-8 passes through unchanged: 2, 3 and 4 byte forms */
    CHECK_EQ_STR(str_json(b, sizeof b, "caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xe2\x82\xac", 3), "\"\xe2\x82\xac\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xf4\x8f\xbf\xbf", 4), "\"\xf4\x8f\xbf\xbf\"");
}

static void test_escape_invalid_utf8(void)
{
    char b[256];
    /* a stray Latin-1 byte and 0xFF padding */
    CHECK_EQ_STR(str_json(b, sizeof b, "caf\xe9", 4), "\"caf\\u00e9\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xff\xff", 2), "\"\\u00ff\\u00ff\"");
    /* lone continuation byte, truncated sequence at the end, truncated before ASCII */
    CHECK_EQ_STR(str_json(b, sizeof b, "\x80", 1), "\"\\u0080\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "a\xe2\x82", 3), "\"a\\u00e2\\u0082\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xc3x", 2), "\"\\u00c3x\"");
    /* overlong '/', surrogate U+D800, above U+10FFFF, C0/C1, F5 */
    CHECK_EQ_STR(str_json(b, sizeof b, "\xc0\xaf", 2), "\"\\u00c0\\u00af\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xe0\x80\xaf", 3), "\"\\u00e0\\u0080\\u00af\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xed\xa0\x80", 3), "\"\\u00ed\\u00a0\\u0080\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xf4\x90\x80\x80", 4), "\"\\u00f4\\u0090\\u0080\\u0080\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xf5", 1), "\"\\u00f5\"");
    CHECK_EQ_STR(str_json(b, sizeof b, "\xf0\x8f\xbf\xbf", 4), "\"\\u00f0\\u008f\\u00bf\\u00bf\"");
}

static void test_escape_all_bytes(void)
{
    /* every byte value once: the output must stay printable ASCII with only legal escapes */
    char in[256], out[2048];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    json_w w;
    json_init_fixed(&w, out, sizeof out, 0);
    json_strn(&w, in, sizeof in);
    CHECK(json_ok(&w));
    int clean = 1;
    for (size_t i = 0; i < w.len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            clean = 0;
    CHECK(clean);
    CHECK_EQ_INT(out[0], '"');
    CHECK_EQ_INT(out[w.len - 1], '"');
}

static void test_numbers(void)
{
    char b[256];
    CHECK_EQ_STR(fixed_json(b, sizeof b, 0, 0, 0), "0");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 0, 3, 0), "0.000");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 0, 3, 1), "0");
    CHECK_EQ_STR(fixed_json(b, sizeof b, -24, 3, 0), "-0.024");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 123456789, 3, 0), "123456.789");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 123450, 3, 0), "123.450");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 123450, 3, 1), "123.45");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 2000000, 6, 1), "2");
    CHECK_EQ_STR(fixed_json(b, sizeof b, -1500000, 6, 1), "-1.5");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 5, 0, 0), "5");
    CHECK_EQ_STR(fixed_json(b, sizeof b, -5, 0, 0), "-5");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 1, 7, 0), "0.0000001");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 12, -3, 0), "12000");
    CHECK_EQ_STR(fixed_json(b, sizeof b, INT64_MAX, 0, 0), "9223372036854775807");
    CHECK_EQ_STR(fixed_json(b, sizeof b, INT64_MIN, 0, 0), "-9223372036854775808");
    CHECK_EQ_STR(fixed_json(b, sizeof b, INT64_MIN, 6, 0), "-9223372036854.775808");
    CHECK_EQ_STR(fixed_json(b, sizeof b, INT64_MIN, 19, 0), "-0.9223372036854775808");
    CHECK_EQ_STR(fixed_json(b, sizeof b, INT64_MIN, 20, 0), "-0.09223372036854775808");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 1, JSON_FIXED_DECIMALS_MAX + 1, 0), "(failed)");
    /* every number the parser reads (up to 127 decimals, found by fuzz_json) can be written */
    CHECK_EQ_STR(fixed_json(b, sizeof b, 4763764344672976136, 41, 0),
                 "0.00000000000000000000004763764344672976136");
    CHECK_EQ_STR(fixed_json(b, sizeof b, -4763764344672976136, 41, 1),
                 "-0.00000000000000000000004763764344672976136");
    CHECK_EQ_STR(fixed_json(b, sizeof b, 0, 127, 1), "0");
    {
        char want[160] = "0.";
        memset(want + 2, '0', 126);
        want[128] = '1';
        want[129] = '\0';
        CHECK_EQ_STR(fixed_json(b, sizeof b, 1, 127, 0), want);
        CHECK_EQ_STR(fixed_json(b, sizeof b, 10, -10, 0), "100000000000");
        CHECK_EQ_INT(strlen(fixed_json(b, sizeof b, INT64_MIN, -127, 0)), 20 + 127);
        CHECK_EQ_INT(strlen(fixed_json(b, sizeof b, INT64_MIN, 127, 0)), 3 + 127);
    }

    json_w w;
    json_init_fixed(&w, b, sizeof b, 0);
    json_arr_begin(&w);
    json_int(&w, INT64_MIN);
    json_uint(&w, UINT64_MAX);
    json_int(&w, 0);
    json_arr_end(&w);
    CHECK(json_ok(&w));
    CHECK_EQ_STR(b, "[-9223372036854775808,18446744073709551615,0]");
}

static void test_structure(void)
{
    char b[256];
    json_w w;
    json_init_fixed(&w, b, sizeof b, 0);
    json_obj_begin(&w);
    json_kv_str(&w, "a", "x");
    json_kv_null(&w, "b");
    json_kv_bool(&w, "c", 1);
    json_key(&w, "d");
    json_arr_begin(&w);
    json_arr_end(&w);
    json_key(&w, "e");
    json_obj_begin(&w);
    json_obj_end(&w);
    json_kv_str(&w, "f", NULL);
    json_obj_end(&w);
    CHECK(json_ok(&w));
    CHECK_EQ_STR(b, "{\"a\":\"x\",\"b\":null,\"c\":true,\"d\":[],\"e\":{},\"f\":null}");
    CHECK_EQ_INT(w.len, strlen(b));

    json_init_fixed(&w, b, sizeof b, JSON_PRETTY);
    json_obj_begin(&w);
    json_key(&w, "a");
    json_arr_begin(&w);
    json_int(&w, 1);
    json_int(&w, 2);
    json_arr_end(&w);
    json_kv_bool(&w, "b", 0);
    json_obj_end(&w);
    CHECK(json_ok(&w));
    CHECK_EQ_STR(b, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": false\n}");
}

static void test_misuse(void)
{
    char b[64];
    json_w w;
    /* value without key inside an object */
    json_init_fixed(&w, b, sizeof b, 0);
    json_obj_begin(&w);
    json_int(&w, 1);
    CHECK(!json_ok(&w));
    /* key inside an array, unbalanced end, key twice */
    json_init_fixed(&w, b, sizeof b, 0);
    json_arr_begin(&w);
    json_key(&w, "k");
    CHECK(!json_ok(&w));
    json_init_fixed(&w, b, sizeof b, 0);
    json_arr_end(&w);
    CHECK(!json_ok(&w));
    json_init_fixed(&w, b, sizeof b, 0);
    json_obj_begin(&w);
    json_key(&w, "k");
    json_key(&w, "k");
    CHECK(!json_ok(&w));
    /* too deep */
    char big[256];
    json_init_fixed(&w, big, sizeof big, 0);
    for (int i = 0; i <= JSON_DEPTH_MAX; i++)
        json_arr_begin(&w);
    CHECK(!json_ok(&w));
    /* reset clears the failure */
    json_reset(&w);
    CHECK(json_ok(&w));
    CHECK_EQ_INT(w.len, 0);
}

static void test_bounds_fixed(void)
{
    /* a fixed buffer is never overrun: fill it with strings until it fails */
    char b[16 + 8];
    memset(b, 'Z', sizeof b);
    json_w w;
    json_init_fixed(&w, b, 16, 0);
    json_str(&w, "0123456789012"); /* 15 bytes with quotes: fits with the NUL */
    CHECK(json_ok(&w));
    CHECK_EQ_INT(w.len, 15);
    json_str(&w, "x");
    CHECK(!json_ok(&w));
    CHECK(w.len <= 15);
    for (size_t i = 16; i < sizeof b; i++)
        CHECK_EQ_INT(b[i], 'Z');
    /* escapes count too: 5 control bytes need 30 bytes */
    json_init_fixed(&w, b, 16, 0);
    json_strn(&w, "\x01\x02\x03\x04\x05", 5);
    CHECK(!json_ok(&w));
    for (size_t i = 16; i < sizeof b; i++)
        CHECK_EQ_INT(b[i], 'Z');
    /* a failed writer stays failed; later writes change nothing */
    size_t len = w.len;
    json_int(&w, 1);
    CHECK_EQ_INT(w.len, len);
    /* zero-size and NULL buffers fail cleanly */
    json_init_fixed(&w, b, 0, 0);
    json_int(&w, 1);
    CHECK(!json_ok(&w));
    json_init_fixed(&w, NULL, 0, 0);
    json_int(&w, 1);
    CHECK(!json_ok(&w));
    /* the number formatter checks its bound as well */
    char nb[8];
    json_init_fixed(&w, nb, sizeof nb, 0);
    json_int(&w, INT64_MIN);
    CHECK(!json_ok(&w));
}

static void test_bounds_alloc(void)
{
    json_w w;
    CHECK_EQ_INT(json_init_alloc(&w, 1, 100, 0), 0);
    json_arr_begin(&w);
    for (int i = 0; i < 20; i++)
        json_int(&w, 12345);
    json_arr_end(&w);
    CHECK(!json_ok(&w)); /* 20 * 6 > 100 */
    CHECK(w.len <= 100);
    json_free(&w);

    CHECK_EQ_INT(json_init_alloc(&w, 16, 1 << 20, 0), 0);
    json_arr_begin(&w);
    for (int i = 0; i < 10000; i++)
        json_str(&w, "grow");
    json_arr_end(&w);
    CHECK(json_ok(&w));
    CHECK_EQ_INT(w.len, 2 + 10000 * 6 + 9999);
    CHECK_EQ_INT(w.buf[w.len], '\0');
    json_free(&w);
    json_free(&w); /* twice is harmless */
    json_free(NULL);
}

static void test_fragment_splice(void)
{
    char fb[256], ob[512];
    json_w frag, w;
    for (int pretty = 0; pretty <= 1; pretty++) {
        int flags = pretty ? JSON_PRETTY : 0;
        json_init_fixed(&frag, fb, sizeof fb, flags);
        json_init_fragment(&frag, 2, 0);
        json_obj_begin(&frag);
        json_kv_int(&frag, "n", 1);
        json_obj_end(&frag);
        json_obj_begin(&frag);
        json_kv_int(&frag, "n", 2);
        json_obj_end(&frag);
        CHECK(json_ok(&frag));
        /* a fragment cannot close the container it is spliced into */
        json_w bad = frag;
        json_arr_end(&bad);
        CHECK(!json_ok(&bad));

        json_init_fixed(&w, ob, sizeof ob, flags);
        json_obj_begin(&w);
        json_kv_bool(&w, "ok", 1);
        json_key(&w, "objects");
        json_arr_begin(&w);
        json_splice(&w, frag.buf, frag.len);
        json_arr_end(&w);
        json_obj_end(&w);
        CHECK(json_ok(&w));
        if (pretty)
            CHECK_EQ_STR(ob, "{\n  \"ok\": true,\n  \"objects\": [\n    {\n      \"n\": 1\n    },\n"
                             "    {\n      \"n\": 2\n    }\n  ]\n}");
        else
            CHECK_EQ_STR(ob, "{\"ok\":true,\"objects\":[{\"n\":1},{\"n\":2}]}");
        /* reset returns the fragment to its base depth, empty */
        json_reset(&frag);
        CHECK_EQ_INT(frag.len, 0);
        CHECK_EQ_INT(frag.depth, 2);
    }
    /* an empty fragment leaves an empty array */
    json_init_fixed(&w, ob, sizeof ob, 0);
    json_arr_begin(&w);
    json_splice(&w, "", 0);
    json_arr_end(&w);
    CHECK_EQ_STR(ob, "[]");
}

static void test_top_level_lines(void)
{
    char b[64];
    json_w w;
    json_init_fixed(&w, b, sizeof b, 0);
    json_int(&w, 1);
    json_str(&w, "x");
    CHECK(json_ok(&w));
    CHECK_EQ_STR(b, "1\n\"x\"");
}

int main(void)
{
    RUN(test_escape_basic);
    RUN(test_escape_control);
    RUN(test_escape_utf8);
    RUN(test_escape_invalid_utf8);
    RUN(test_escape_all_bytes);
    RUN(test_numbers);
    RUN(test_structure);
    RUN(test_misuse);
    RUN(test_bounds_fixed);
    RUN(test_bounds_alloc);
    RUN(test_fragment_splice);
    RUN(test_top_level_lines);
    return check_summary("test_json");
}
