/* test_value.c: unit tests of lib/value.c (text, fixed point, meter time, OBIS formatting). */
#include <p1/p1.h>

#include "check.h"

/* A value with raw characters and an optional unit; number fields set when given. */
static p1_value mkv(const char *raw, const char *unit)
{
    p1_value v;
    memset(&v, 0, sizeof v);
    v.raw = raw;
    v.raw_len = (uint16_t)strlen(raw);
    if (unit) {
        v.unit = unit;
        v.unit_len = (uint8_t)strlen(unit);
        v.flags |= P1_V_UNIT;
    }
    return v;
}

static p1_value mkn(int64_t mantissa, int decimals, const char *unit)
{
    p1_value v = mkv("", unit);
    v.flags |= P1_V_NUMBER;
    v.number = mantissa;
    v.decimals = (int8_t)decimals;
    return v;
}

static p1_time mkt(int y, int mo, int d, int h, int mi, int s, int dst)
{
    p1_time t;
    memset(&t, 0, sizeof t);
    t.year = (uint16_t)y;
    t.month = (uint8_t)mo;
    t.day = (uint8_t)d;
    t.hour = (uint8_t)h;
    t.minute = (uint8_t)mi;
    t.second = (uint8_t)s;
    t.dst = (int8_t)dst;
    t.valid = 1;
    return t;
}

static void test_text(void)
{
    char out[64];
    p1_value v = mkv("4530303534303037363432313534323230", NULL);
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 17);
    CHECK_EQ_STR(out, "E0054007642154220");

    v = mkv("3031203631203831", NULL);
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 8);
    CHECK_EQ_STR(out, "01 61 81");

    v = mkv("6162", NULL); /* lower-case letters are text too */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 2);
    CHECK_EQ_STR(out, "ab");
    v = mkv("4a4B", NULL); /* lower-case hex digits */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 2);
    CHECK_EQ_STR(out, "JK");

    v = mkv("C3A9", NULL); /* UTF-8 "é" passes */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 2);
    CHECK_EQ_STR(out, "\xC3\xA9");
    v = mkv("E9", NULL); /* Latin-1 "é" passes as well */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), 1);

    strcpy(out, "keep");
    v = mkv("453", NULL); /* odd */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("45G0", NULL); /* not hex */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("TARIFF 1", NULL);
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("4100", NULL); /* NUL byte */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("410A", NULL); /* control byte */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("417F", NULL); /* DEL */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("0000000000000000", NULL); /* an all-zero id is binary, not text */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    v = mkv("", NULL); /* empty value: no text */
    CHECK_EQ_INT(p1_value_text(&v, out, sizeof out), -1);
    CHECK_EQ_STR(out, "keep"); /* untouched by every failure */

    v = mkv("41424344", NULL);
    CHECK_EQ_INT(p1_value_text(&v, out, 4), -1); /* needs 5 with the NUL */
    CHECK_EQ_STR(out, "keep");
    CHECK_EQ_INT(p1_value_text(&v, out, 5), 4);
    CHECK_EQ_STR(out, "ABCD");
    CHECK_EQ_INT(p1_value_text(&v, out, 0), -1);
    CHECK_EQ_INT(p1_value_text(NULL, out, sizeof out), -1);
}

static void test_fixed_basic(void)
{
    int64_t x = 42;
    p1_value v = mkn(123456, 3, "kWh");
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 123456000);
    CHECK_EQ_INT(p1_value_fixed(&v, 3, 1, &x), 0);
    CHECK_EQ_INT(x, 123456);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 1, &x), 0);
    CHECK_EQ_INT(x, 123);
    CHECK_EQ_INT(p1_value_fixed(&v, 9, 1, &x), 0);
    CHECK_EQ_INT(x, 123456000000LL);

    v = mkn(-63, 0, "A");
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, -63000000);

    v = mkn(0, 3, NULL); /* no unit is fine */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 0);

    v = mkn(521857825309LL, 7, "kWh"); /* EasyMeter: 7 decimals */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 52185782531LL);
    v = mkn(-1000, 3, NULL); /* LT power factor (-1.000) */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, -1000000);
    v = mkn(5, -2, NULL); /* a negative exponent multiplies */
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 500);
}

static void test_fixed_rounding(void)
{
    int64_t x;
    p1_value v = mkn(25, 1, NULL); /* 2.5 */
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 3);
    v = mkn(-25, 1, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, -3);
    v = mkn(24999, 4, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 2);
    v = mkn(-5, 1, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, -1);
    v = mkn(-4, 1, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 0);
    v = mkn(1234565, 6, NULL); /* 1.234565 -> 1.23457 */
    CHECK_EQ_INT(p1_value_fixed(&v, 5, 0, &x), 0);
    CHECK_EQ_INT(x, 123457);
    v = mkn(5, 7, "W"); /* 0.0000005 W = 5e-10 kW */
    CHECK_EQ_INT(p1_value_fixed(&v, 9, 1, &x), 0);
    CHECK_EQ_INT(x, 1);
    v = mkn(INT64_MAX, 19, NULL); /* 0.92 rounds to 1 */
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 1);
    v = mkn(INT64_MAX, 25, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 0);
}

static void test_fixed_units(void)
{
    int64_t x;
    p1_value v = mkn(6545766, 0, "Wh");
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 6545766000LL);
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 0, &x), 0); /* not normalised */
    CHECK_EQ_INT(x, 6545766000000LL);
    v = mkn(286, 0, "W");
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 286000);
    v = mkn(55729, 2, "W"); /* 557.29 W */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
    CHECK_EQ_INT(x, 557290);

    static const char *const kilo[] = {"varh", "var", "VArh", "VAr", "VAh", "VA", "wh", "w",
                                       "VARH", "Var", "vah",  "va",  "MJ",  "mj", "dm3"};
    for (size_t i = 0; i < sizeof kilo / sizeof kilo[0]; i++) {
        v = mkn(1500, 0, kilo[i]);
        x = 0;
        CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
        if (x != 1500000)
            fprintf(stderr, "unit %s\n", kilo[i]);
        CHECK_EQ_INT(x, 1500000);
    }
    static const char *const same[] = {
        "kWh", "kW", "kvarh", "kvar", "kVArh", "kVarh", "Kvar", "kVAr", "kVA", "kVAh",
        "V",   "A",  "m3",    "M3",   "GJ",    "Hz",    "s",    "kwh",  "KW",  "v",
        "a",   "x",  "Whh",   "vax",  "VArhh", "Vx",    "mx",   "dm",   "dm4"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        v = mkn(1500, 0, same[i]);
        x = 0;
        CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
        if (x != 1500000000)
            fprintf(stderr, "unit %s\n", same[i]);
        CHECK_EQ_INT(x, 1500000000);
    }
}

static void test_fixed_errors(void)
{
    int64_t x = 77;
    p1_value v = mkv("abc", NULL); /* not a number */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), -1);
    v = mkn(INT64_MAX, 0, "kWh");
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), -1);
    v = mkn(INT64_MIN, 0, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), -1); /* INT64_MIN is reserved for "absent" */
    v = mkn(-9223372036854775LL, 0, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 4, 0, &x), -1);
    CHECK_EQ_INT(p1_value_fixed(&v, 3, 0, &x), 0);
    CHECK_EQ_INT(x, -9223372036854775000LL);
    x = 77;
    v = mkn(9223372036854776LL, 0, NULL); /* one more than fits at scale 3 */
    CHECK_EQ_INT(p1_value_fixed(&v, 3, 0, &x), -1);
    v = mkn(1, 0, NULL);
    CHECK_EQ_INT(p1_value_fixed(&v, 10, 0, &x), -1);
    CHECK_EQ_INT(p1_value_fixed(&v, -1, 0, &x), -1);
    v = mkn(1, -30, NULL); /* 10^30 */
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), -1);
    CHECK_EQ_INT(x, 77);   /* untouched by every failure */
    v = mkn(0, -30, NULL); /* zero stays zero at any exponent */
    CHECK_EQ_INT(p1_value_fixed(&v, 0, 0, &x), 0);
    CHECK_EQ_INT(x, 0);
    CHECK_EQ_INT(p1_value_fixed(NULL, 0, 0, &x), -1);
}

static void test_time_letter(void)
{
    int64_t u = 0;
    p1_time t = mkt(2024, 1, 1, 12, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1704106800);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 7, 1, 12, 0, 0, 1);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1719828000);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    /* The letter wins over the calendar: the doubled autumn hour is told apart by it. */
    t = mkt(2024, 10, 27, 2, 30, 0, 1);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1729989000);
    t = mkt(2024, 10, 27, 2, 30, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1729992600);
    t = mkt(2000, 1, 1, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 946681200);
    t = mkt(2099, 12, 31, 23, 59, 59, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 4102441199LL);
    t = mkt(2024, 2, 29, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1709161200);
}

static void test_time_no_letter(void)
{
    int64_t u = 0;
    /* 2024: summer time from 31 March to 27 October; 2025: 30 March to 26 October. */
    p1_time t = mkt(2024, 3, 31, 1, 59, 59, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1711846799);
    t = mkt(2024, 3, 31, 3, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1711846800);        /* one second after 01:59:59 winter time */
    t = mkt(2024, 3, 31, 2, 30, 0, -1); /* does not exist: read as summer time */
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    t = mkt(2024, 3, 30, 23, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 10, 27, 1, 59, 59, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1729987199);
    t = mkt(2024, 10, 27, 2, 0, 0, -1); /* ambiguous: winter time */
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1729990800);
    t = mkt(2024, 10, 27, 2, 59, 59, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 10, 27, 3, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 10, 26, 12, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    t = mkt(2024, 7, 15, 12, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    t = mkt(2024, 12, 15, 12, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 2, 15, 12, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);

    t = mkt(2025, 3, 30, 1, 59, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2025, 3, 30, 3, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1743296400);
    t = mkt(2025, 3, 29, 12, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2025, 3, 31, 0, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    t = mkt(2025, 10, 26, 1, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1761433200);
    t = mkt(2025, 10, 26, 2, 0, 0, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
    CHECK_EQ_INT(u, 1761440400);
    t = mkt(2025, 10, 25, 23, 59, 59, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 7200);
    t = mkt(2025, 10, 31, 23, 59, 59, -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
}

static void test_time_invalid(void)
{
    int64_t u = 5;
    p1_time t = mkt(2024, 1, 1, 0, 0, 0, 0);
    t.valid = 0;
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    t = mkt(2063, 25, 25, 25, 25, 25, 0); /* 632525252525W with valid wrongly set */
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    t = mkt(2023, 2, 29, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    t = mkt(2024, 4, 31, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    t = mkt(2024, 0, 1, 0, 0, 0, -1);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    CHECK_EQ_INT(p1_time_utc_offset(&t), 3600);
    t = mkt(2024, 1, 0, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    t = mkt(2024, 1, 1, 0, 60, 0, 0);
    CHECK_EQ_INT(p1_time_to_unix(&t, &u), -1);
    CHECK_EQ_INT(u, 5);
    CHECK_EQ_INT(p1_time_to_unix(NULL, &u), -1);
    CHECK_EQ_INT(p1_time_utc_offset(NULL), 3600);
}

static void test_obis_format(void)
{
    char out[24];
    p1_obis o = {1, 0, 1, 8, 1, 255};
    CHECK_EQ_INT(p1_obis_format(&o, out, sizeof out), 9);
    CHECK_EQ_STR(out, "1-0:1.8.1");
    o = (p1_obis){0, 0, 96, 1, 255, 255};
    CHECK_EQ_INT(p1_obis_format(&o, out, sizeof out), 12);
    CHECK_EQ_STR(out, "0-0:96.1.255");
    o = (p1_obis){1, 0, 21, 7, 0, 0};
    CHECK_EQ_INT(p1_obis_format(&o, out, sizeof out), 12);
    CHECK_EQ_STR(out, "1-0:21.7.0.0");
    o = (p1_obis){255, 255, 255, 255, 255, 254};
    CHECK_EQ_INT(p1_obis_format(&o, out, sizeof out), 23);
    CHECK_EQ_STR(out, "255-255:255.255.255.254");
    o = (p1_obis){0, 1, 24, 2, 1, 255};
    CHECK_EQ_INT(p1_obis_format(&o, out, 5), 10); /* full length, truncated copy */
    CHECK_EQ_STR(out, "0-1:");
    CHECK_EQ_INT(p1_obis_format(&o, out, 0), 10);
    CHECK_EQ_INT(p1_obis_key(&o), P1_OBIS(0, 1, 24, 2, 1));
}

int main(void)
{
    RUN(test_text);
    RUN(test_fixed_basic);
    RUN(test_fixed_rounding);
    RUN(test_fixed_units);
    RUN(test_fixed_errors);
    RUN(test_time_letter);
    RUN(test_time_no_letter);
    RUN(test_time_invalid);
    RUN(test_obis_format);
    return check_summary("value");
}
