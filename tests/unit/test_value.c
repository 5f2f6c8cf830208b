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

/* Reference decoder for test_text_every_length: one byte at a time, the rules of p1.h. */
static int ref_text(const char *s, size_t len, char *out)
{
    if (len == 0 || (len & 1))
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int b = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            int h = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (h < 0)
                return -1;
            b = b << 4 | h;
        }
        if (b < 0x20 || b == 0x7F)
            return -1;
        out[i] = (char)b;
    }
    out[len / 2] = '\0';
    return (int)(len / 2);
}

/* p1_value_text decodes 16 characters at a step where the host allows (SSE2), then 8, then 2:
 * every length up to past two steps, with one bad character or decoded byte at every place. */
static void test_text_every_length(void)
{
    static const char bad[][3] = {"G", "g", "/", ":", "@", "`", "\x80", "\xff", " "};
    static const char badbyte[][3] = {"00", "1F", "7F", "0A"};
    char raw[80], out[64], ref[64];
    int mismatches = 0;

    for (size_t len = 2; len <= 72; len += 2) {
        for (size_t i = 0; i < len; i += 2) {
            raw[i] = "4567"[i % 4];
            raw[i + 1] = "1A3f"[(i / 2) % 4];
        }
        p1_value v = mkv("", NULL);
        v.raw = raw;
        v.raw_len = (uint16_t)len;
        int n = p1_value_text(&v, out, sizeof out), rn = ref_text(raw, len, ref);
        mismatches += n != rn || (n >= 0 && strcmp(out, ref) != 0);
        for (size_t at = 0; at < len; at++) {
            for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
                char keep = raw[at];
                raw[at] = bad[b][0];
                memset(out, 'x', sizeof out);
                n = p1_value_text(&v, out, sizeof out);
                mismatches += n != -1 || out[0] != 'x'; /* out untouched on failure */
                raw[at] = keep;
            }
        }
        for (size_t at = 0; at + 1 < len; at += 2) {
            for (size_t b = 0; b < sizeof badbyte / sizeof badbyte[0]; b++) {
                char k0 = raw[at], k1 = raw[at + 1];
                raw[at] = badbyte[b][0];
                raw[at + 1] = badbyte[b][1];
                mismatches += p1_value_text(&v, out, sizeof out) != -1;
                raw[at] = k0;
                raw[at + 1] = k1;
            }
            /* bytes >= 0x80 are text (Latin-1, UTF-8) */
            char k0 = raw[at], k1 = raw[at + 1];
            raw[at] = 'C';
            raw[at + 1] = '3';
            n = p1_value_text(&v, out, sizeof out);
            rn = ref_text(raw, len, ref);
            mismatches += n != rn || (n >= 0 && strcmp(out, ref) != 0);
            raw[at] = k0;
            raw[at + 1] = k1;
        }
    }
    CHECK_EQ_INT(mismatches, 0);
}

/* The unit code the parser sets decides the normalisation; 0 (a value built by hand) falls back
 * to the unit string. */
static void test_unit_code(void)
{
    static const struct {
        const char *u;
        int code;
    } units[] = {
        {"kWh", P1_UNIT_KWH},     {"KWH", P1_UNIT_KWH},     {"Wh", P1_UNIT_WH},
        {"kW", P1_UNIT_KW},       {"W", P1_UNIT_W},         {"kvarh", P1_UNIT_KVARH},
        {"VArh", P1_UNIT_VARH},   {"kvar", P1_UNIT_KVAR},   {"VAr", P1_UNIT_VAR},
        {"kVAh", P1_UNIT_KVAH},   {"VAh", P1_UNIT_VAH},     {"kVA", P1_UNIT_KVA},
        {"VA", P1_UNIT_VA},       {"V", P1_UNIT_V},         {"A", P1_UNIT_A},
        {"Hz", P1_UNIT_HZ},       {"m3", P1_UNIT_M3},       {"dm3", P1_UNIT_DM3},
        {"GJ", P1_UNIT_GJ},       {"MJ", P1_UNIT_MJ},       {"s", P1_UNIT_S},
        {"MWh", P1_UNIT_MWH},     {"mwh", P1_UNIT_MWH},     {"MW", P1_UNIT_MW},
        {"Mvarh", P1_UNIT_MVARH}, {"MVAr", P1_UNIT_MVAR},   {"MVAh", P1_UNIT_MVAH},
        {"MVA", P1_UNIT_MVA},     {"kV", P1_UNIT_KV},       {"mA", P1_UNIT_MA},
        {"l", P1_UNIT_L},         {"L", P1_UNIT_L},         {"kJ", P1_UNIT_OTHER},
        {"kA", P1_UNIT_KA},       {"kHz", P1_UNIT_KHZ},     {"KHZ", P1_UNIT_KHZ},
        {"%", P1_UNIT_OTHER},     {"m\x13", P1_UNIT_OTHER}, {"kvarhh", P1_UNIT_OTHER},
        {"", P1_UNIT_NONE},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        CHECK_EQ_INT(p1_unit_code(units[i].u, strlen(units[i].u)), units[i].code);
        /* with the code or without it, the same fixed-point result */
        p1_value v = mkn(1234567, 3, units[i].u[0] ? units[i].u : NULL);
        int64_t a = 0, b = 0;
        int ra = p1_value_fixed(&v, 6, 1, &a);
        v.unit_code = (uint8_t)units[i].code;
        int rb = p1_value_fixed(&v, 6, 1, &b);
        CHECK_EQ_INT(ra, rb);
        CHECK_EQ_INT(a, b);
    }
    CHECK_EQ_INT(p1_unit_code(NULL, 3), P1_UNIT_NONE);
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

    /* the rarer prefixes scale to the reading's units: MWh -> kWh, kV -> V, mA -> A, l -> m3 */
    static const struct {
        int64_t n;
        int dec;
        const char *unit;
        int64_t micro;
    } pre[] = {
        {1234, 3, "MWh", 1234000000}, {1234, 6, "MW", 1234000},  {5, 0, "Mvarh", 5000000000LL},
        {25, 1, "MVAr", 2500000000LL}, {7, 0, "MVAh", 7000000000LL}, {2, 0, "MVA", 2000000000},
        {230, 3, "kV", 230000000},    {1500, 0, "mA", 1500000},  {-20, 0, "mA", -20000},
        {123456, 0, "l", 123456000},  {5, 1, "L", 500},
    };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        v = mkn(pre[i].n, pre[i].dec, pre[i].unit);
        CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
        CHECK_EQ_INT(x, pre[i].micro);
        v.unit_code = (uint8_t)p1_unit_code(pre[i].unit, strlen(pre[i].unit));
        CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), 0);
        CHECK_EQ_INT(x, pre[i].micro);
    }
    v = mkn(9223372036854775LL, 0, "MWh"); /* 10^3 more overflows: an error, not a wrap */
    CHECK_EQ_INT(p1_value_fixed(&v, 6, 1, &x), -1);

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

/* Lithuania keeps Eastern European time: one hour more than CET all year, and the same switch
 * moments in UTC (01:00 UTC: 03:00 -> 04:00 in spring, 04:00 -> 03:00 in autumn, local). */
static p1_time mkt_eet(int y, int mo, int d, int h, int mi, int s, int dst)
{
    p1_time t = mkt(y, mo, d, h, mi, s, dst);
    t.zone = P1_ZONE_EET;
    return t;
}

static void test_time_eet(void)
{
    /* each: the EET clock and its letter (-1 none), the offset and the instant (0: not checked) */
    static const struct {
        int y, mo, d, h, mi, s, dst, offset;
        int64_t unix_s;
    } cases[] = {
        {2024, 1, 1, 12, 0, 0, 0, 7200, 1704103200},  /* 10:00 UTC */
        {2024, 7, 1, 12, 0, 0, 1, 10800, 1719824400}, /* 09:00 UTC */
        /* spring, 31 March 2024: 02:59:59 EET is followed by 04:00:00 EEST */
        {2024, 3, 31, 2, 59, 59, -1, 7200, 1711846799},
        {2024, 3, 31, 4, 0, 0, -1, 10800, 1711846800},
        {2024, 3, 31, 3, 30, 0, -1, 10800, 0}, /* does not exist: summer time */
        {2024, 3, 31, 2, 30, 0, -1, 7200, 0},  /* exists in EET (not in CET) */
        /* autumn, 27 October 2024: 03:00-03:59 happens twice, the letter tells which */
        {2024, 10, 27, 2, 59, 59, -1, 10800, 1729987199},
        {2024, 10, 27, 3, 30, 0, 1, 10800, 1729989000},
        {2024, 10, 27, 3, 30, 0, 0, 7200, 1729992600},
        {2024, 10, 27, 3, 0, 0, -1, 7200, 0},             /* no letter: the later, winter pass */
        {2024, 10, 27, 2, 30, 0, 0, 10800, 0},            /* before the switch in EET */
        {2024, 7, 1, 12, 0, 0, P1_DST_STANDARD, 7200, 0}, /* standard time all year */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p1_time t = mkt_eet(cases[i].y, cases[i].mo, cases[i].d, cases[i].h, cases[i].mi,
                            cases[i].s, cases[i].dst);
        int64_t u = 0;
        CHECK_EQ_INT(p1_time_utc_offset(&t), cases[i].offset);
        CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
        if (cases[i].unix_s)
            CHECK_EQ_INT(u, cases[i].unix_s);
    }
    /* every quarter hour of both switch days: the EET clock (UTC+2, or UTC+3 while the EU
     * rule says summer) with the letter it shows reads back as the instant */
    static const int64_t days[] = {1711843200 - 86400, 1729987200 - 86400};
    for (int k = 0; k < 2; k++) {
        for (int64_t x = days[k]; x < days[k] + 3 * 86400; x += 900) {
            int summer = p1_unix_utc_offset(x) == 7200;
            int64_t local = x + 7200 + (summer ? 3600 : 0), y = 0, back = 0;
            unsigned mo = 0, d = 0;
            p1_civil_from_days(local / 86400, &y, &mo, &d);
            p1_time e = mkt_eet((int)y, (int)mo, (int)d, (int)(local % 86400 / 3600),
                                (int)(local % 3600 / 60), 0, summer);
            CHECK_EQ_INT(p1_time_to_unix(&e, &back), 0);
            CHECK_EQ_INT(back, x);
        }
    }
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

/* Israel keeps UTC+2, and UTC+3 from the Friday before the last Sunday of March 02:00 to the last
 * Sunday of October 02:00 summer time (instants from Python's zoneinfo, Asia/Jerusalem). */
static void test_time_il(void)
{
    static const struct {
        int y, mo, d, h, mi, s, dst, offset;
        int64_t unix_s;
    } cases[] = {
        {2026, 1, 15, 12, 0, 0, 0, 7200, 1768471200},
        {2026, 7, 15, 12, 0, 0, 1, 10800, 1784106000},
        /* Friday 27 March 2026, two days before the EU switch: 01:59:59 then 03:00:00 */
        {2026, 3, 27, 1, 59, 59, -1, 7200, 1774569599},
        {2026, 3, 27, 3, 0, 0, -1, 10800, 1774569600},
        {2026, 3, 27, 2, 30, 0, -1, 10800, 0}, /* does not exist: summer time */
        {2026, 3, 28, 12, 0, 0, 1, 10800, 0},  /* Saturday: summer here, not yet in the EU */
        /* Sunday 25 October 2026: 01:00-01:59 happens twice, the letter tells which */
        {2026, 10, 25, 0, 59, 59, -1, 10800, 1792879199},
        {2026, 10, 25, 1, 30, 0, 1, 10800, 1792881000},
        {2026, 10, 25, 1, 30, 0, 0, 7200, 1792884600},
        {2026, 10, 25, 1, 30, 0, -1, 7200, 1792884600}, /* no letter: the later pass */
        {2026, 10, 25, 2, 0, 0, -1, 7200, 1792886400},
        {2026, 7, 15, 12, 0, 0, P1_DST_STANDARD, 7200, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p1_time t = mkt(cases[i].y, cases[i].mo, cases[i].d, cases[i].h, cases[i].mi, cases[i].s,
                        cases[i].dst);
        t.zone = P1_ZONE_IL;
        int64_t u = 0;
        CHECK_EQ_INT(p1_time_utc_offset(&t), cases[i].offset);
        CHECK_EQ_INT(p1_time_to_unix(&t, &u), 0);
        if (cases[i].unix_s)
            CHECK_EQ_INT(u, cases[i].unix_s);
    }
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

/* The proleptic Gregorian calendar: known day numbers, leap rules, and the inverse everywhere. */
static void test_civil_days(void)
{
    CHECK_EQ_INT(p1_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ_INT(p1_days_from_civil(1969, 12, 31), -1);
    CHECK_EQ_INT(p1_days_from_civil(2000, 3, 1), 11017);
    CHECK_EQ_INT(p1_days_from_civil(2024, 2, 29) + 1, p1_days_from_civil(2024, 3, 1));
    CHECK_EQ_INT(p1_days_from_civil(2025, 2, 29), p1_days_from_civil(2025, 3, 1)); /* counts on */
    CHECK_EQ_INT(p1_days_from_civil(1, 1, 1), -719162);
    CHECK_EQ_INT(p1_days_in_month(2024, 2), 29);
    CHECK_EQ_INT(p1_days_in_month(2025, 2), 28);
    CHECK_EQ_INT(p1_days_in_month(2000, 2), 29);
    CHECK_EQ_INT(p1_days_in_month(2100, 2), 28);
    CHECK_EQ_INT(p1_days_in_month(2025, 4), 30);
    CHECK_EQ_INT(p1_days_in_month(2025, 12), 31);
    CHECK_EQ_INT(p1_days_in_month(2025, 0), 0);
    CHECK_EQ_INT(p1_days_in_month(2025, 13), 0);
    int bad = 0;
    for (int64_t d = p1_days_from_civil(-401, 1, 1); d < p1_days_from_civil(2401, 1, 1); d++) {
        int64_t y;
        unsigned m, dd;
        p1_civil_from_days(d, &y, &m, &dd);
        if (m < 1 || m > 12 || dd < 1 || dd > p1_days_in_month(y, m) ||
            p1_days_from_civil(y, m, dd) != d)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* Local fields of a unix time, checked field by field. */
static int from_unix_is(int64_t u, int y, int mo, int d, int h, int mi, int s, int dst)
{
    p1_time t;
    memset(&t, 0xee, sizeof t);
    return p1_time_from_unix(u, &t) == 0 && t.year == y && t.month == mo && t.day == d &&
           t.hour == h && t.minute == mi && t.second == s && t.dst == dst && t.valid == 1;
}

/* UTC -> local across both EU switches of 2020..2030, and back through p1_time_to_unix(). */
static void test_time_from_unix(void)
{
    /* the last Sundays of March and October, 2020..2030 */
    static const int sundays[][3] = {{2020, 29, 25}, {2021, 28, 31}, {2022, 27, 30}, {2023, 26, 29},
                                     {2024, 31, 27}, {2025, 30, 26}, {2026, 29, 25}, {2027, 28, 31},
                                     {2028, 26, 29}, {2029, 25, 28}, {2030, 31, 27}};
    for (size_t i = 0; i < sizeof sundays / sizeof sundays[0]; i++) {
        int y = sundays[i][0];
        int64_t spring = p1_days_from_civil(y, 3, (unsigned)sundays[i][1]) * 86400 + 3600;
        int64_t autumn = p1_days_from_civil(y, 10, (unsigned)sundays[i][2]) * 86400 + 3600;
        CHECK_EQ_INT(p1_unix_utc_offset(spring - 1), 3600);
        CHECK_EQ_INT(p1_unix_utc_offset(spring), 7200);
        CHECK_EQ_INT(p1_unix_utc_offset(autumn - 1), 7200);
        CHECK_EQ_INT(p1_unix_utc_offset(autumn), 3600);
        CHECK(from_unix_is(spring - 1, y, 3, sundays[i][1], 1, 59, 59, P1_DST_WINTER));
        CHECK(from_unix_is(spring, y, 3, sundays[i][1], 3, 0, 0, P1_DST_SUMMER));
        /* the autumn hour that happens twice: the letter tells the passes apart */
        CHECK(from_unix_is(autumn - 1800, y, 10, sundays[i][2], 2, 30, 0, P1_DST_SUMMER));
        CHECK(from_unix_is(autumn + 1800, y, 10, sundays[i][2], 2, 30, 0, P1_DST_WINTER));
        p1_time t;
        int64_t u = 0;
        CHECK(p1_time_from_unix(autumn - 1800, &t) == 0 && p1_time_to_unix(&t, &u) == 0 &&
              u == autumn - 1800);
        CHECK(p1_time_from_unix(autumn + 1800, &t) == 0 && p1_time_to_unix(&t, &u) == 0 &&
              u == autumn + 1800);
        t.dst = P1_DST_NONE; /* no letter: the later (winter) pass */
        CHECK(p1_time_to_unix(&t, &u) == 0 && u == autumn + 1800);
        int bad = 0;
        for (int64_t v = spring - 7200; v < spring + 7200; v += 59)
            if (p1_time_from_unix(v, &t) < 0 || p1_time_to_unix(&t, &u) < 0 || u != v)
                bad++;
        for (int64_t v = autumn - 7200; v < autumn + 7200; v += 59)
            if (p1_time_from_unix(v, &t) < 0 || p1_time_to_unix(&t, &u) < 0 || u != v)
                bad++;
        CHECK_EQ_INT(bad, 0);
    }
    int bad = 0;
    for (int64_t v = 1577836800; v < 1924992000; v += 3607) { /* 2020..2030, every 1h00m07s */
        p1_time t;
        int64_t u;
        if (p1_time_from_unix(v, &t) < 0 || p1_time_to_unix(&t, &u) < 0 || u != v)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* leap days and year boundaries */
    CHECK(from_unix_is(1709204400, 2024, 2, 29, 12, 0, 0, P1_DST_WINTER));
    CHECK(from_unix_is(4107538800, 2100, 3, 1, 0, 0, 0, P1_DST_WINTER)); /* 2100: no leap day */
    CHECK(from_unix_is(1704063600, 2024, 1, 1, 0, 0, 0, P1_DST_WINTER));
    CHECK(from_unix_is(1704063599, 2023, 12, 31, 23, 59, 59, P1_DST_WINTER));
    CHECK(from_unix_is(951778800, 2000, 2, 29, 0, 0, 0, P1_DST_WINTER));
    /* the range: local 1970-01-01 00:00 .. 9999-12-31 23:59:59 */
    CHECK(from_unix_is(0, 1970, 1, 1, 1, 0, 0, P1_DST_WINTER));
    CHECK(from_unix_is(-3600, 1970, 1, 1, 0, 0, 0, P1_DST_WINTER));
    CHECK(from_unix_is(7258114799, 2199, 12, 31, 23, 59, 59, P1_DST_WINTER));
    CHECK(from_unix_is(7258114800, 2200, 1, 1, 0, 0, 0, P1_DST_WINTER));
    CHECK(from_unix_is(253402297199, 9999, 12, 31, 23, 59, 59, P1_DST_WINTER));
    p1_time t = mkt(2024, 1, 1, 0, 0, 0, 0);
    CHECK_EQ_INT(p1_time_from_unix(-3601, &t), -1);
    CHECK_EQ_INT(p1_time_from_unix(253402297200, &t), -1);
    CHECK_EQ_INT(p1_time_from_unix(INT64_MIN / 2, &t), -1);
    CHECK_EQ_INT(p1_time_from_unix(INT64_MAX / 2, &t), -1);
    CHECK(t.year == 2024 && t.month == 1 && t.dst == 0); /* untouched on failure */
    CHECK_EQ_INT(p1_time_from_unix(0, NULL), -1);
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
    RUN(test_text_every_length);
    RUN(test_unit_code);
    RUN(test_fixed_basic);
    RUN(test_fixed_rounding);
    RUN(test_fixed_units);
    RUN(test_fixed_errors);
    RUN(test_time_letter);
    RUN(test_time_no_letter);
    RUN(test_time_eet);
    RUN(test_time_il);
    RUN(test_time_invalid);
    RUN(test_civil_days);
    RUN(test_time_from_unix);
    RUN(test_obis_format);
    return check_summary("value");
}
