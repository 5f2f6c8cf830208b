/* civil.c: calendar time for the daemon and the tools (UTC and local fields in CET/CEST or
 * EET/EEST, local boundaries, ISO-8601 text), built on libp1's calendar and EU summer-time rule. */
#define _GNU_SOURCE
#include "civil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p1/p1.h"

#define CIVIL_DAY_S           86400
#define CIVIL_UNIX_DIGITS_MAX 12 /* unix seconds up to the year 33658: no overflow, no dates */

/* The local calendar's zone (civil_set_zone()) and its IANA name for the page. */
static int civil_zone_v = P1_ZONE_CET;
static char civil_tz[40] = "Europe/Amsterdam";

int civil_zone_lead(int zone)
{
    return zone == P1_ZONE_EET ? 3600 : 0;
}

void civil_set_zone(int zone)
{
    civil_zone_v = zone == P1_ZONE_EET ? P1_ZONE_EET : P1_ZONE_CET;
    snprintf(civil_tz, sizeof civil_tz, "%s",
             civil_zone_v == P1_ZONE_EET ? "Europe/Vilnius" : "Europe/Amsterdam");
}

const char *civil_zone_tz(void)
{
    return civil_tz;
}

int civil_zone(void)
{
    return civil_zone_v;
}

const char *civil_zone_name(void)
{
    return civil_zone_v == P1_ZONE_EET ? "EET/EEST" : "CET/CEST";
}

/* The zones of the EU whose standard time is UTC+2 (and their neighbours that keep the EU's
 * rule, and Israel, the nearest fit for an Israeli meter's days). */
static const char *const eet_names[] = {
    "Europe/Vilnius",  "Europe/Riga",   "Europe/Tallinn",   "Europe/Helsinki",
    "Europe/Mariehamn", "Europe/Sofia", "Europe/Bucharest", "Europe/Athens",
    "Asia/Nicosia",    "Asia/Famagusta", "Europe/Nicosia",  "Europe/Kyiv",
    "Europe/Kiev",     "Europe/Chisinau", "Europe/Uzhgorod", "Europe/Zaporozhye",
    "EET",
    /* Israel: UTC+2 too; its summer time starts two days earlier and ends two hours earlier.
     * EET's days are right all year but those hours (CET's never) */
    "Asia/Jerusalem", "Asia/Tel_Aviv", "Israel",
};

/* A zone's name as the zoneinfo database has it: TZ's leading ':', a path up to "zoneinfo/"
 * (/usr/share/zoneinfo/Europe/Riga) and the "posix/" or "right/" variants dropped. */
static const char *zone_basename(const char *name)
{
    if (*name == ':')
        name++;
    const char *z = strstr(name, "zoneinfo/");
    if (z)
        name = z + 9;
    if (strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0)
        name += 6;
    return name;
}

/* Whether name (a zoneinfo name, already through zone_basename()) is one of eet_names. */
static int eet_listed(const char *name)
{
    for (size_t i = 0; i < sizeof eet_names / sizeof eet_names[0]; i++)
        if (strcmp(name, eet_names[i]) == 0)
            return 1;
    return 0;
}

/* The end of a POSIX TZ zone abbreviation at s ("EET", "<+02>"), or NULL when there is none. */
static const char *posix_abbr(const char *s)
{
    const char *p = s;
    if (*p == '<') {
        p = strchr(p, '>');
        return p && p - s > 1 ? p + 1 : NULL;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* Whether s is a POSIX TZ string of a zone two hours east of UTC with summer time
 * ("EET-2EEST,M3.5.0/3,M10.5.0/4", the rule an embedded system's TZ and the last line of every
 * zoneinfo file of an EET zone hold). */
static int posix_eet(const char *s)
{
    const char *p = posix_abbr(s);
    if (!p || *p++ != '-')
        return 0;
    if (p[0] == '0')
        p++;
    if (p[0] != '2' || (p[1] >= '0' && p[1] <= '9'))
        return 0;
    p++;
    if (strncmp(p, ":00", 3) == 0)
        p += 3;
    if (strncmp(p, ":00", 3) == 0)
        p += 3;
    return posix_abbr(p) != NULL; /* summer time follows; its rule is the EU's in the EU */
}

int civil_zone_of(const char *name)
{
    if (!name)
        return P1_ZONE_CET;
    name = zone_basename(name);
    return eet_listed(name) || posix_eet(name) ? P1_ZONE_EET : P1_ZONE_CET;
}

#define ZONEINFO_FOOTER_MAX 128 /* the POSIX TZ line that ends a TZif file, and its newlines */

/* The zone of a zoneinfo file at path into name[cap]: the name a symbolic link points to
 * (/etc/localtime -> /usr/share/zoneinfo/Europe/Vilnius), else the POSIX TZ string on the last
 * line of a copy (TZif version 2 and later), as a container gets /etc/localtime bind-mounted
 * from its host. 0, or -1 when it tells neither. */
static int zone_file(const char *path, char *name, size_t cap)
{
    char buf[512];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        snprintf(name, cap, "%s", zone_basename(buf));
        return 0;
    }
    FILE *f = fopen(path, "rbe");
    if (!f)
        return -1;
    char head[5] = "";
    size_t got = 0;
    long size = -1;
    int ok = fread(head, 1, 5, f) == 5 && memcmp(head, "TZif", 4) == 0 && head[4] >= '2' &&
             fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 &&
             fseek(f, size > ZONEINFO_FOOTER_MAX ? size - ZONEINFO_FOOTER_MAX : 0, SEEK_SET) == 0;
    if (ok)
        got = fread(buf, 1, ZONEINFO_FOOTER_MAX, f);
    fclose(f);
    if (!ok || got < 2 || buf[got - 1] != '\n')
        return -1;
    buf[got - 1] = '\0';
    char *line = memrchr(buf, '\n', got - 1);
    if (!line || !line[1] || strlen(line + 1) != got - 2 - (size_t)(line - buf))
        return -1; /* no footer, or a byte 0 in it */
    snprintf(name, cap, "%s", line + 1);
    return 0;
}

int civil_system_zone(char *name, size_t cap)
{
    char buf[512];
    const char *tz = getenv("TZ");
    if (tz && *tz) {
        /* ":/path" or "/path": a zoneinfo file, read as /etc/localtime is */
        const char *file = tz + (*tz == ':');
        if (*file != '/' || civil_zone_of(file) == P1_ZONE_EET || zone_file(file, name, cap) < 0)
            snprintf(name, cap, "%s", tz);
        return civil_zone_of(name);
    }
    FILE *f = fopen("/etc/timezone", "re"); /* Debian's name of it */
    if (!f || !fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    if (f)
        fclose(f);
    buf[strcspn(buf, " \t\r\n")] = '\0';
    /* /etc/localtime decides; /etc/timezone names it when it is a copy of that zone's file
     * (a stale /etc/timezone, Etc/UTC in a container image, does not overrule it) */
    if (zone_file("/etc/localtime", name, cap) == 0 &&
        (!strchr(name, ',') || !buf[0] || civil_zone_of(buf) != civil_zone_of(name)))
        return civil_zone_of(name);
    snprintf(name, cap, "%s", buf);
    return civil_zone_of(name);
}

void civil_use_system_zone(char *name, size_t cap)
{
    civil_set_zone(civil_system_zone(name, cap));
    /* an EET zone's own name (its abbreviations, for the page) when it is one of the list: not
     * a POSIX TZ string, which a browser does not take */
    const char *n = zone_basename(name);
    if (civil_zone_v == P1_ZONE_EET && eet_listed(n) && strchr(n, '/') &&
        strlen(n) < sizeof civil_tz)
        snprintf(civil_tz, sizeof civil_tz, "%s", n);
}

const char *civil_gap_why(void)
{
    if (civil_zone_v == P1_ZONE_EET)
        return "does not exist in local time (EET/EEST): the clocks go from 03:00 to 04:00 that "
               "day; give an offset (+02:00 or +03:00)";
    return "does not exist in local time (CET/CEST): the clocks go from 02:00 to 03:00 that day; "
           "give an offset (+01:00 or +02:00)";
}

/* The local UTC offset at unix seconds t. */
static int local_offset(int64_t t)
{
    return p1_unix_utc_offset(t) + civil_zone_lead(civil_zone_v);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void civil_utc(int64_t t, civil_tm *out)
{
    int64_t days = floor_div(t, CIVIL_DAY_S), sec = t - days * CIVIL_DAY_S, y;
    unsigned m, d;
    p1_civil_from_days(days, &y, &m, &d);
    out->year = (int)y;
    out->month = (int)m;
    out->day = (int)d;
    out->hour = (int)(sec / 3600);
    out->minute = (int)(sec / 60 % 60);
    out->second = (int)(sec % 60);
    out->wday = (int)((days % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    out->yday = (int)(days - p1_days_from_civil(y, 1, 1));
    out->offset = 0;
}

void civil_local_in(int zone, int64_t t, civil_tm *out)
{
    int off = p1_unix_utc_offset(t) + civil_zone_lead(zone);
    civil_utc(t + off, out);
    out->offset = off;
}

void civil_local(int64_t t, civil_tm *out)
{
    civil_local_in(civil_zone_v, t, out);
}

int64_t civil_local_to_utc_in(int zone, int64_t local)
{
    int lead = civil_zone_lead(zone);
    int64_t summer = local - 7200 - lead;
    return p1_unix_utc_offset(summer) == 7200 ? summer : local - 3600 - lead;
}

int64_t civil_local_to_utc(int64_t local)
{
    return civil_local_to_utc_in(civil_zone_v, local);
}

int civil_local_fields(int year, int month, int day, int hour, int minute, int second, int64_t *out)
{
    /* checked before the narrowing into p1_time, which would wrap 256 into 0 */
    if (year < 0 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 ||
        hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59)
        return -1;
    p1_time t = {(uint16_t)year,  (uint8_t)month,  (uint8_t)day, (uint8_t)hour,
                 (uint8_t)minute, (uint8_t)second, P1_DST_NONE,  1,
                 (uint8_t)civil_zone_v};
    return p1_time_to_unix(&t, out);
}

/* Whether the local wall-clock time (seconds since 1970-01-01 local) happens: as winter time
 * (CET UTC+1) or as summer time (CET UTC+2), an hour more in EET. Only the hour the spring change
 * skips is neither. */
static int local_exists(int64_t wall)
{
    wall -= civil_zone_lead(civil_zone_v);
    return p1_unix_utc_offset(wall - 3600) == 3600 || p1_unix_utc_offset(wall - 7200) == 7200;
}

/* Local midnight is never inside a switch hour (01:00 UTC), so civil_local_to_utc() is exact. */
static int64_t local_midnight(int64_t local_day)
{
    return civil_local_to_utc(local_day * CIVIL_DAY_S);
}

int64_t civil_floor(civil_unit u, int64_t t)
{
    int64_t local_day = floor_div(t + local_offset(t), CIVIL_DAY_S), y;
    unsigned m, d;
    if (u == CIVIL_DAY)
        return local_midnight(local_day);
    p1_civil_from_days(local_day, &y, &m, &d);
    return local_midnight(p1_days_from_civil(y, u == CIVIL_YEAR ? 1 : m, 1));
}

int64_t civil_next(civil_unit u, int64_t t)
{
    int64_t local_day = floor_div(t + local_offset(t), CIVIL_DAY_S), y;
    unsigned m, d;
    if (u == CIVIL_DAY)
        return local_midnight(local_day + 1);
    p1_civil_from_days(local_day, &y, &m, &d);
    if (u == CIVIL_YEAR || m == 12)
        return local_midnight(p1_days_from_civil(y + 1, 1, 1));
    return local_midnight(p1_days_from_civil(y, m + 1, 1));
}

static size_t fit(int n, size_t cap)
{
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t civil_format_local(int64_t t, char *out, size_t cap)
{
    civil_tm l;
    civil_local(t, &l);
    return fit(snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d+%02d:00", l.year, l.month, l.day,
                        l.hour, l.minute, l.second, l.offset / 3600),
               cap);
}

size_t civil_format_utc(int64_t t, char *out, size_t cap)
{
    civil_tm u;
    civil_utc(t, &u);
    return fit(snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", u.year, u.month, u.day, u.hour,
                        u.minute, u.second),
               cap);
}

/* Exactly n digits at *p; advances *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int civil_parse(const char *s, unsigned flags, int64_t *out)
{
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (len == 0 || len >= CIVIL_PARSE_MAX)
        return -1;
    char buf[CIVIL_PARSE_MAX];
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *p = buf;
    /* Unix seconds are digits only (a date always has dashes). */
    if ((flags & CIVIL_PARSE_UNIX) && strspn(p, "0123456789") == len) {
        if (len > CIVIL_UNIX_DIGITS_MAX)
            return -1;
        int64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (p[i] - '0');
        *out = v;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > p1_days_in_month(y, (unsigned)mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) < 0)
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                if (*p < '0' || *p > '9')
                    return -1;
                while (*p >= '0' && *p <= '9')
                    p++; /* fractions of a second are dropped: times here are whole seconds */
            }
        }
        if (h > 24 || mi > 59 || sec > 59 || (h == 24 && (mi || sec)))
            return -1;
    }
    int zone = 0, has_zone = 0;
    if (*p == 'Z' || *p == 'z') {
        has_zone = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, zh, zm = 0;
        p++;
        if (digits(&p, 2, &zh) < 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &zm) < 0)
                return -1; /* "+01:" promises the minutes */
        } else if (*p && digits(&p, 2, &zm) < 0) {
            return -1;
        }
        if (zh > 14 || zm > 59)
            return -1;
        zone = sign * (zh * 3600 + zm * 60);
        has_zone = 1;
    }
    if (*p)
        return -1;
    int64_t days = p1_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t wall = days * CIVIL_DAY_S + h * 3600 + mi * 60 + sec; /* 24:00 is the next midnight */
    if (has_zone) {
        *out = wall - zone;
        return 0;
    }
    if ((flags & CIVIL_PARSE_EXISTING) && !local_exists(wall))
        return CIVIL_PARSE_GAP;
    /* Midnight is never a switch hour, so 24:00 needs no rule of its own. */
    int64_t v;
    if (h == 24)
        v = local_midnight(days + 1);
    else if (flags & CIVIL_PARSE_FIRST)
        v = civil_local_to_utc(wall);
    else if (civil_local_fields(y, mo, d, h, mi, sec, &v) < 0)
        return -1;
    *out = v;
    return 0;
}
