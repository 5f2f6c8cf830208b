/* test_civil.c: unit tests of src/civil.c (UTC and CET/CEST or EET/EEST fields, local boundaries
 * over DST days, ISO-8601 parsing and formatting, the system's zone). */
#define _GNU_SOURCE
#include "check.h"
#include "civil.h"

#include <p1/p1.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int64_t T(const char *s)
{
    int64_t t = -1;
    if (civil_parse(s, CIVIL_PARSE_UNIX, &t) < 0)
        fprintf(stderr, "cannot parse %s\n", s);
    return t;
}

static void test_parse(void)
{
    CHECK_EQ_INT(T("2025-01-31"), 1738278000); /* local midnight, CET */
    CHECK_EQ_INT(T("2025-01-31T10:00Z"), 1738317600);
    CHECK_EQ_INT(T("2025-01-31t10:00z"), 1738317600);
    CHECK_EQ_INT(T("2025-01-31T10:00:00+01:00"), 1738314000);
    CHECK_EQ_INT(T("2025-01-31 10:00:00.5+0100"), 1738314000);
    CHECK_EQ_INT(T("2025-01-31T10:00:00,999+01"), 1738314000);
    CHECK_EQ_INT(T("2025-01-31T10:00-05:30"), 1738317600 + 5 * 3600 + 1800);
    CHECK_EQ_INT(T(" \t2025-01-31T10:00Z \r"), 1738317600);
    CHECK_EQ_INT(T("2025-07-01T12:00"), 1751364000); /* CEST: 10:00Z */
    CHECK_EQ_INT(T("1738310400"), 1738310400);
    CHECK_EQ_INT(T("0"), 0);
    CHECK_EQ_INT(T("2025-01-31T24:00"), T("2025-02-01"));
    CHECK_EQ_INT(T("2024-02-29"), 1709161200);
    CHECK_EQ_INT(T("1970-01-01T00:00Z"), 0);
    CHECK_EQ_INT(T("1969-12-31T23:00Z"), -3600);
    int64_t t = 5;
    static const char *const bad[] = {
        "yesterday",
        "",
        "   ",
        "2025-13-01",
        "2025-00-10",
        "2025-02-29",
        "2025-04-31",
        "2025-01-00",
        "2025-1-31",
        "25-01-31",
        "2025/01/31",
        "2025-01-31T25:00",
        "2025-01-31T24:01",
        "2025-01-31T10:60",
        "2025-01-31T10:00:60",
        "2025-01-31T10",
        "2025-01-31T10:00:",
        "2025-01-31T10:00:00.",
        "2025-01-31T10:00+1",
        "2025-01-31T10:00+15:00",
        "2025-01-31T10:00+01:60",
        "2025-01-31T10:00+01:0",
        "2025-01-31T10:00+01:", /* a ':' promises the minutes */
        "2025-01-31T10:00:00-00:",
        "2025-01-31T10:00Zulu",
        "2025-01-31X",
        "1234567890123", /* 13 digits: not unix seconds */
        "12a",
        "2025-01-31T10:00:00.000000000000000000000000000000000000000000000000000Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (civil_parse(bad[i], CIVIL_PARSE_UNIX, &t) == 0)
            fprintf(stderr, "accepted '%s'\n", bad[i]);
        CHECK(civil_parse(bad[i], CIVIL_PARSE_UNIX, &t) < 0);
    }
    CHECK(civil_parse(NULL, CIVIL_PARSE_UNIX, &t) < 0);
    CHECK_EQ_INT(t, 5); /* untouched on failure */
    /* unix seconds only when asked for */
    CHECK(civil_parse("1738310400", 0, &t) < 0);
    CHECK(civil_parse("1738310400", CIVIL_PARSE_EXISTING, &t) < 0);
    CHECK_EQ_INT(t, 5);
    CHECK(civil_parse("2025-01-31T10:00:00+01:00", 0, &t) == 0 && t == 1738314000);
}

/* Local times without a zone in the hours the EU rule makes odd, under both resolutions. */
static void test_parse_dst(void)
{
    int64_t t = 0;
    /* the autumn hour that happens twice: its later (winter) pass */
    CHECK(civil_parse("2025-10-26T02:30", 0, &t) == 0 && t == T("2025-10-26T01:30:00Z"));
    /* the spring hour that does not exist: summer offset without EXISTING */
    CHECK(civil_parse("2025-03-30T02:30", 0, &t) == 0 && t == T("2025-03-30T00:30:00Z"));
    /* with EXISTING the spring hour is refused, its edges and an explicit offset are not */
    static const char *const gap[] = {"2025-03-30T02:00", "2025-03-30T02:30",
                                      "2025-03-30 02:59:59", "2026-03-29T02:00:00"};
    for (size_t i = 0; i < sizeof gap / sizeof gap[0]; i++) {
        t = 7;
        CHECK(civil_parse(gap[i], CIVIL_PARSE_EXISTING, &t) == CIVIL_PARSE_GAP && t == 7);
        CHECK(civil_parse(gap[i], CIVIL_PARSE_EXISTING | CIVIL_PARSE_UNIX, &t) ==
                  CIVIL_PARSE_GAP &&
              t == 7);
    }
    CHECK(civil_parse("2025-03-30T01:59:59", CIVIL_PARSE_EXISTING, &t) == 0 &&
          t == T("2025-03-30T00:59:59Z"));
    CHECK(civil_parse("2025-03-30T03:00", CIVIL_PARSE_EXISTING, &t) == 0 &&
          t == T("2025-03-30T01:00:00Z"));
    CHECK(civil_parse("2025-03-30T02:30+01:00", CIVIL_PARSE_EXISTING, &t) == 0 &&
          t == T("2025-03-30T01:30:00Z"));
    CHECK(civil_parse("2025-10-26T02:30", CIVIL_PARSE_EXISTING, &t) == 0 &&
          t == T("2025-10-26T01:30:00Z"));
    CHECK(civil_parse("2025-03-30", CIVIL_PARSE_EXISTING, &t) == 0);
    CHECK(civil_parse("1743298200", CIVIL_PARSE_EXISTING | CIVIL_PARSE_UNIX, &t) == 0);
    CHECK(civil_parse("2025-03-30T02:3x", CIVIL_PARSE_EXISTING, &t) == -1);
    /* everywhere else EXISTING changes nothing */
    static const char *const same[] = {
        "2025-03-30T01:59:59", "2025-03-30T03:00",    "2025-10-26T01:59:59", "2025-10-26T03:00",
        "2025-01-31",          "2025-07-01T12:00:00", "2025-12-31T24:00",    "2024-02-29T23:59"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int64_t a = 1, b = 2;
        CHECK(civil_parse(same[i], 0, &a) == 0 &&
              civil_parse(same[i], CIVIL_PARSE_EXISTING, &b) == 0);
        CHECK_EQ_INT(a, b);
    }
    /* an explicit offset is never reinterpreted */
    CHECK(civil_parse("2025-10-26T02:30+02:00", CIVIL_PARSE_EXISTING, &t) == 0 &&
          t == T("2025-10-26T00:30:00Z"));
    CHECK(civil_parse("2025-10-26T02:30+01:00", 0, &t) == 0 && t == T("2025-10-26T01:30:00Z"));
}

static void test_format(void)
{
    char buf[CIVIL_TIME_MAX];
    CHECK_EQ_INT(civil_format_local(T("2025-03-30T00:59:59Z"), buf, sizeof buf), 25);
    CHECK_EQ_STR(buf, "2025-03-30T01:59:59+01:00");
    civil_format_local(T("2025-03-30T01:00:00Z"), buf, sizeof buf);
    CHECK_EQ_STR(buf, "2025-03-30T03:00:00+02:00");
    civil_format_local(T("2025-10-26T00:30:00Z"), buf, sizeof buf);
    CHECK_EQ_STR(buf, "2025-10-26T02:30:00+02:00");
    civil_format_local(T("2025-10-26T01:30:00Z"), buf, sizeof buf);
    CHECK_EQ_STR(buf, "2025-10-26T02:30:00+01:00");
    CHECK_EQ_INT(civil_format_utc(1738317600, buf, sizeof buf), 20);
    CHECK_EQ_STR(buf, "2025-01-31T10:00:00Z");
    civil_format_utc(0, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1970-01-01T00:00:00Z");
    civil_format_utc(-1, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1969-12-31T23:59:59Z");
    civil_format_utc(951825600, buf, sizeof buf);
    CHECK_EQ_STR(buf, "2000-02-29T12:00:00Z");
    CHECK_EQ_INT(civil_format_utc(0, buf, 20), 0); /* no room for the NUL */
    CHECK_EQ_INT(civil_format_local(0, buf, 10), 0);
    /* what is written reads back as the same instant, both ways, every 47 minutes of 2024..2026 */
    int bad = 0;
    for (int64_t v = 1704067200; v < 1798761600; v += 47 * 60 + 11) {
        int64_t a = 0, b = 0;
        char l[CIVIL_TIME_MAX], u[CIVIL_TIME_MAX];
        civil_format_local(v, l, sizeof l);
        civil_format_utc(v, u, sizeof u);
        if (civil_parse(l, 0, &a) < 0 || a != v || civil_parse(u, 0, &b) < 0 || b != v)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_fields(void)
{
    civil_tm l;
    civil_local(T("2025-03-29T12:00"), &l);
    CHECK(l.wday == 6 && l.offset == 3600 && l.hour == 12 && l.yday == 87);
    civil_local(1711846799, &l); /* 2024-03-31 00:59:59 UTC */
    CHECK(l.hour == 1 && l.minute == 59 && l.second == 59 && l.offset == 3600 && l.wday == 0);
    civil_local(1711846800, &l); /* 01:00 UTC: clocks go 02:00 -> 03:00 */
    CHECK(l.hour == 3 && l.minute == 0 && l.offset == 7200);
    civil_local(1704063600 - 1, &l); /* 2023-12-31 23:59:59 local */
    CHECK(l.year == 2023 && l.month == 12 && l.day == 31 && l.yday == 364 && l.wday == 0);
    civil_tm u;
    civil_utc(951825600, &u); /* 2000-02-29T12:00Z, a Tuesday */
    CHECK(u.year == 2000 && u.month == 2 && u.day == 29 && u.hour == 12 && u.wday == 2 &&
          u.yday == 59 && u.offset == 0);
    civil_utc(-1, &u);
    CHECK(u.year == 1969 && u.month == 12 && u.day == 31 && u.second == 59 && u.wday == 3);
    /* civil_local agrees with libp1's p1_time_from_unix wherever the latter answers */
    int bad = 0;
    for (int64_t v = -3600; v < 4102444800; v += 86400 * 3 + 3599) {
        p1_time p;
        civil_local(v, &l);
        if (p1_time_from_unix(v, &p) < 0 || p.year != l.year || p.month != l.month ||
            p.day != l.day || p.hour != l.hour || p.minute != l.minute || p.second != l.second ||
            (p.dst == P1_DST_SUMMER) != (l.offset == 7200))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_local_to_utc(void)
{
    CHECK_EQ_INT(civil_local_to_utc(1711855800), 1711848600); /* 03:30 local 31 Mar = 01:30Z */
    CHECK_EQ_INT(civil_local_to_utc(1729999800), 1729996200); /* 03:30 local 27 Oct = 02:30Z */
    CHECK_EQ_INT(civil_local_to_utc(1729996200), 1729989000); /* 02:30 local 27 Oct: 00:30Z */
    CHECK_EQ_INT(civil_local_to_utc(1704067200), 1704063600); /* 2024-01-01 local midnight */
    int64_t t = 7;
    CHECK(civil_local_fields(2024, 10, 27, 2, 30, 0, &t) == 0 && t == 1729992600); /* later */
    CHECK(civil_local_fields(2024, 7, 1, 12, 0, 0, &t) == 0 && t == 1719828000);
    t = 7;
    CHECK(civil_local_fields(2024, 2, 30, 0, 0, 0, &t) < 0);
    CHECK(civil_local_fields(2024, 1, 1, 24, 0, 0, &t) < 0);
    CHECK(civil_local_fields(2024, 1, 1, 256, 0, 0, &t) < 0);
    CHECK(civil_local_fields(2024, 13, 1, 0, 0, 0, &t) < 0);
    CHECK(civil_local_fields(10000, 1, 1, 0, 0, 0, &t) < 0);
    CHECK(civil_local_fields(-1, 1, 1, 0, 0, 0, &t) < 0);
    CHECK_EQ_INT(t, 7);
}

static void test_boundaries(void)
{
    int64_t d = T("2025-03-30");
    CHECK_EQ_INT(civil_next(CIVIL_DAY, d) - d, 23 * 3600);
    d = T("2025-10-26");
    CHECK_EQ_INT(civil_next(CIVIL_DAY, d) - d, 25 * 3600);
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, T("2025-10-26T23:59")), d);
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, d), d);
    CHECK_EQ_INT(civil_next(CIVIL_DAY, T("2025-10-26T23:59")), T("2025-10-27"));
    CHECK_EQ_INT(civil_floor(CIVIL_MONTH, T("2025-03-31T12:00")), T("2025-03-01"));
    CHECK_EQ_INT(civil_next(CIVIL_MONTH, T("2025-03-01")), T("2025-04-01"));
    CHECK_EQ_INT(civil_next(CIVIL_MONTH, T("2025-12-01")), T("2026-01-01"));
    CHECK_EQ_INT(civil_next(CIVIL_MONTH, T("2025-12-31T23:59:59")), T("2026-01-01"));
    CHECK_EQ_INT(civil_floor(CIVIL_YEAR, T("2024-07-03T10:00")), T("2024-01-01"));
    CHECK_EQ_INT(civil_floor(CIVIL_YEAR, 1720000000), 1704063600);
    CHECK_EQ_INT(civil_next(CIVIL_YEAR, T("2024-12-31T23:59:59")), T("2025-01-01"));
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, 1711850400), 1711839600);  /* 2024-03-31T02:00Z */
    CHECK_EQ_INT(civil_next(CIVIL_MONTH, 1709247600), 1711922400); /* 2024-04-01+02 */
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, 0), -3600);
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, -3601), -3600 - 86400);
    /* every local day of 2020..2030 is 23, 24 or 25 hours and starts at local midnight */
    int bad = 0, short_days = 0, long_days = 0;
    for (int64_t a = T("2020-01-01"); a < T("2031-01-01");) {
        int64_t b = civil_next(CIVIL_DAY, a);
        civil_tm l;
        civil_local(a, &l);
        if (l.hour || l.minute || l.second || civil_floor(CIVIL_DAY, b - 1) != a)
            bad++;
        short_days += b - a == 23 * 3600;
        long_days += b - a == 25 * 3600;
        if (b - a != 86400 && b - a != 23 * 3600 && b - a != 25 * 3600)
            bad++;
        a = b;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(short_days, 11);
    CHECK_EQ_INT(long_days, 11);
}

/* The calendar of a system that runs on Eastern European Time (Lithuania): the same EU rule an
 * hour later on the clock. */
static void test_eet(void)
{
    char buf[CIVIL_TIME_MAX];
    civil_set_zone(P1_ZONE_EET);
    CHECK_EQ_INT(civil_zone(), P1_ZONE_EET);
    CHECK_EQ_STR(civil_zone_name(), "EET/EEST");
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Vilnius");
    int64_t t;
    CHECK_EQ_INT(civil_parse("2026-01-15", 0, &t), 0);
    CHECK_EQ_INT(t, 1768428000); /* 2026-01-14T22:00:00Z */
    CHECK_EQ_INT(civil_parse("2026-07-01T12:00", 0, &t), 0);
    CHECK_EQ_INT(t, 1782896400); /* 09:00Z */
    CHECK(civil_format_local(t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "2026-07-01T12:00:00+03:00");
    CHECK(civil_format_local(1768428000, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "2026-01-15T00:00:00+02:00");
    /* the spring gap is 03:00-03:59 local; the autumn hour twice is 03:00-03:59 too */
    CHECK_EQ_INT(civil_parse("2026-03-29T03:30", CIVIL_PARSE_EXISTING, &t), CIVIL_PARSE_GAP);
    CHECK_EQ_INT(civil_parse("2026-03-29T02:30", CIVIL_PARSE_EXISTING, &t), 0);
    CHECK_EQ_INT(t, 1774744200); /* 00:30Z, +02:00 */
    CHECK(strstr(civil_gap_why(), "EET/EEST") && strstr(civil_gap_why(), "03:00 to 04:00"));
    CHECK_EQ_INT(civil_parse("2026-10-25T03:30", 0, &t), 0);
    CHECK_EQ_INT(t, 1792891800); /* the later pass: 01:30Z, +02:00 */
    CHECK_EQ_INT(civil_parse("2026-10-25T03:30", CIVIL_PARSE_FIRST, &t), 0);
    CHECK_EQ_INT(t, 1792888200); /* the first: 00:30Z, +03:00 */
    /* days start at midnight in Vilnius: 22:00Z or 21:00Z; the switch days are 23 and 25 h */
    CHECK_EQ_INT(civil_floor(CIVIL_DAY, 1768470000), 1768428000);
    CHECK_EQ_INT(civil_next(CIVIL_DAY, T("2026-03-29")) - T("2026-03-29"), 23 * 3600);
    CHECK_EQ_INT(civil_next(CIVIL_DAY, T("2026-10-25")) - T("2026-10-25"), 25 * 3600);
    CHECK_EQ_INT(civil_floor(CIVIL_MONTH, T("2026-07-31T23:59")), 1782853200); /* 06-30T21Z */
    CHECK_EQ_INT(civil_floor(CIVIL_YEAR, 1767222000), 1767218400); /* 2025-12-31T22:00Z */
    int bad = 0;
    for (int64_t a = T("2020-01-01"); a < T("2031-01-01");) {
        int64_t b = civil_next(CIVIL_DAY, a);
        civil_tm l;
        civil_local(a, &l);
        if (l.hour || l.minute || l.second || civil_floor(CIVIL_DAY, b - 1) != a ||
            (l.offset != 7200 && l.offset != 10800))
            bad++;
        a = b;
    }
    CHECK_EQ_INT(bad, 0);
    /* the simulated (Dutch) meter keeps CET whatever the calendar's zone */
    civil_tm c;
    civil_local_in(P1_ZONE_CET, 1782896400, &c);
    CHECK_EQ_INT(c.hour, 11);
    CHECK_EQ_INT(c.offset, 7200);
    CHECK_EQ_INT(civil_local_to_utc_in(P1_ZONE_CET, 1782907200), 1782900000);
    civil_set_zone(P1_ZONE_CET);
    CHECK_EQ_INT(civil_parse("2026-01-15", 0, &t), 0);
    CHECK_EQ_INT(t, 1768431600);
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Amsterdam");
}

static void test_zone_names(void)
{
    static const struct {
        const char *name;
        int zone;
    } cases[] = {
        {"Europe/Vilnius", P1_ZONE_EET},
        {"Asia/Jerusalem", P1_ZONE_EET},
        {":Europe/Riga", P1_ZONE_EET},
        {"/usr/share/zoneinfo/Europe/Helsinki", P1_ZONE_EET},
        {"posix/Europe/Athens", P1_ZONE_EET},
        {"EET", P1_ZONE_EET},
        {"Europe/Amsterdam", P1_ZONE_CET},
        {"Europe/Brussels", P1_ZONE_CET},
        {"Etc/UTC", P1_ZONE_CET},
        {"UTC", P1_ZONE_CET},
        {"America/New_York", P1_ZONE_CET},
        {"Europe/Vilnius2", P1_ZONE_CET},
        {"", P1_ZONE_CET},
        {NULL, P1_ZONE_CET},
        /* POSIX TZ strings, as embedded systems set TZ and zoneinfo files end */
        {"EET-2EEST,M3.5.0/3,M10.5.0/4", P1_ZONE_EET},
        {"<+02>-02:00<+03>,M3.5.0/3,M10.5.0/4", P1_ZONE_EET},
        {"EET-2EEST", P1_ZONE_EET},
        {"CET-1CEST,M3.5.0,M10.5.0/3", P1_ZONE_CET},
        {"EET-2", P1_ZONE_CET}, /* Kaliningrad: no summer time */
        {"EET-20EEST", P1_ZONE_CET},
        {"EET2EEST", P1_ZONE_CET}, /* west of UTC */
        {"<+03>-3", P1_ZONE_CET},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case = cases[i].name ? cases[i].name : "NULL";
        CHECK_EQ_INT(civil_zone_of(cases[i].name), cases[i].zone);
    }
    check_case = "TZ";
    char name[64];
    setenv("TZ", "Europe/Tallinn", 1);
    CHECK_EQ_INT(civil_system_zone(name, sizeof name), P1_ZONE_EET);
    CHECK_EQ_STR(name, "Europe/Tallinn");
    civil_use_system_zone(name, sizeof name);
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Tallinn");
    CHECK_EQ_INT(civil_zone(), P1_ZONE_EET);
    setenv("TZ", "Europe/Brussels", 1);
    civil_use_system_zone(name, sizeof name);
    CHECK_EQ_INT(civil_zone(), P1_ZONE_CET);
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Amsterdam");
    /* a POSIX TZ string: EET, and the page gets an IANA name, not that string */
    setenv("TZ", "EET-2EEST,M3.5.0/3,M10.5.0/4", 1);
    civil_use_system_zone(name, sizeof name);
    CHECK_EQ_INT(civil_zone(), P1_ZONE_EET);
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Vilnius");
    unsetenv("TZ");
    civil_set_zone(P1_ZONE_CET);
}

/* Copies file from to a new temporary file; its path into out[cap], 0, or -1. */
static int copy_tmp(const char *from, char *out, size_t cap)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return -1;
    snprintf(out, cap, "/tmp/test_civil_zone_XXXXXX");
    int fd = mkstemp(out);
    FILE *o = fd >= 0 ? fdopen(fd, "wb") : NULL;
    char buf[4096];
    size_t n;
    while (o && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, o);
    fclose(in);
    return o && fclose(o) == 0 ? 0 : -1;
}

/* A system whose zoneinfo file is a copy, not a link (a container with /etc/localtime mounted
 * from its host, read here through TZ=":/path" as /etc/localtime is): the zone is in the
 * file's last line. A link names its zone. */
static void test_zone_files(void)
{
    char path[64], name[64], link[80], tz[96];
    if (copy_tmp("/usr/share/zoneinfo/Europe/Vilnius", path, sizeof path) < 0) {
        printf("test_zone_files: no /usr/share/zoneinfo/Europe/Vilnius (tzdata): skipped\n");
        return;
    }

    snprintf(tz, sizeof tz, ":%s", path);
    setenv("TZ", tz, 1);
    check_case = "copy of Europe/Vilnius";
    CHECK_EQ_INT(civil_system_zone(name, sizeof name), P1_ZONE_EET);
    CHECK_EQ_STR(name, "EET-2EEST,M3.5.0/3,M10.5.0/4");
    civil_use_system_zone(name, sizeof name);
    CHECK_EQ_INT(civil_zone(), P1_ZONE_EET);
    CHECK_EQ_STR(civil_zone_tz(), "Europe/Vilnius");
    unlink(path);
    if (copy_tmp("/usr/share/zoneinfo/Europe/Amsterdam", path, sizeof path) == 0) {
        check_case = "copy of Europe/Amsterdam";
        setenv("TZ", path, 1);
        CHECK_EQ_INT(civil_system_zone(name, sizeof name), P1_ZONE_CET);
        unlink(path);
    }
    snprintf(link, sizeof link, "/tmp/test_civil_link_%d", (int)getpid());
    if (symlink("/usr/share/zoneinfo/Europe/Riga", link) == 0) {
        check_case = "link to Europe/Riga";
        snprintf(tz, sizeof tz, ":%s", link);
        setenv("TZ", tz, 1);
        CHECK_EQ_INT(civil_system_zone(name, sizeof name), P1_ZONE_EET);
        CHECK_EQ_STR(name, "Europe/Riga");
        unlink(link);
    }
    unsetenv("TZ");
    civil_set_zone(P1_ZONE_CET);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_parse_dst);
    RUN(test_format);
    RUN(test_fields);
    RUN(test_local_to_utc);
    RUN(test_boundaries);
    RUN(test_eet);
    RUN(test_zone_names);
    RUN(test_zone_files);
    return check_summary("test_civil");
}
