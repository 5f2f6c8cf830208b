/* civil.h: calendar time for the daemon and the tools: unix seconds <-> UTC and local calendar
 * fields, local day/month/year boundaries, ISO-8601 parsing and formatting. Local is Central
 * European Time (CET/CEST), or Eastern European Time (EET/EEST: Lithuania's meters, and the
 * system's zone there) after civil_set_zone(). Pure arithmetic on top of libp1's EU summer-time
 * rule; no time-zone database, no locale. */
#ifndef P1D_CIVIL_H
#define P1D_CIVIL_H

#include <stddef.h>
#include <stdint.h>

#define CIVIL_TIME_MAX  32 /* "2025-03-30T03:00:00+02:00" with its NUL, and room */
#define CIVIL_PARSE_MAX 64 /* bytes of a time civil_parse() accepts, blanks around it included */

/* Calendar fields of a unix time, in UTC or in the meters' zone. */
typedef struct civil_tm {
    int year, month, day, hour, minute, second;
    int wday;   /* 0 = Sunday .. 6 = Saturday */
    int yday;   /* 0-based day of the year */
    int offset; /* seconds east of UTC: 0 (civil_utc), 3600 or 7200 (CET), 7200 or 10800 (EET) */
} civil_tm;

/* Sets the local zone of every function below: P1_ZONE_CET (the default) or P1_ZONE_EET. Called
 * once at start, before any other thread runs. */
void civil_set_zone(int zone);
/* The local zone (P1_ZONE_CET or P1_ZONE_EET) and its name ("CET/CEST", "EET/EEST"). */
int civil_zone(void);
const char *civil_zone_name(void);
/* The family of a time-zone name (TZ's syntax: "Europe/Vilnius", ":Europe/Riga", a zoneinfo
 * path): P1_ZONE_EET for the zones of UTC+2 that keep the EU's summer time, else P1_ZONE_CET
 * (also for names it does not know, NULL or ""). */
int civil_zone_of(const char *name);
/* How far zone's (P1_ZONE_*) standard time is ahead of CET's, in seconds: 3600 for EET. */
int civil_zone_lead(int zone);
/* The system's time zone: $TZ, else the target of /etc/localtime, else /etc/timezone; its name
 * into name[cap] ("" when none is set) and its family as civil_zone_of() says. */
int civil_system_zone(char *name, size_t cap);
/* civil_set_zone() with the system's zone (its name into name[cap], as above). */
void civil_use_system_zone(char *name, size_t cap);
/* An IANA name of the local zone for a browser's Intl API: the system's own for an EET zone,
 * else "Europe/Vilnius" (EET) or "Europe/Amsterdam" (CET). */
const char *civil_zone_tz(void);

/* Splits unix seconds t into UTC calendar fields (offset 0). */
void civil_utc(int64_t t, civil_tm *out);
/* Splits unix seconds t into local calendar fields (offset as above). */
void civil_local(int64_t t, civil_tm *out);
/* The same in a given zone (P1_ZONE_*), whatever the local one is: the simulated meter's. */
void civil_local_in(int zone, int64_t t, civil_tm *out);

/* Unix seconds of a local wall-clock time given as seconds since 1970-01-01 local: the EU rule
 * applied at summer time's offset, so the autumn hour that happens twice is its first (summer)
 * pass and a spring time that does not exist reads as winter time. */
int64_t civil_local_to_utc(int64_t local);
int64_t civil_local_to_utc_in(int zone, int64_t local);
/* Unix seconds of local calendar fields (year 0..9999) by p1_time_to_unix()'s rule: the repeated
 * autumn hour is its later (winter) pass. Returns 0 and sets *out, or -1 for invalid fields. */
int civil_local_fields(int year, int month, int day, int hour, int minute, int second,
                       int64_t *out);

/* 2200-01-01T00:00:00Z: times the API, the store and the price files take end before it. */
#define CIVIL_TIME_END 7258118400LL

/* Local calendar units for civil_floor() and civil_next(). */
typedef enum civil_unit { CIVIL_DAY, CIVIL_MONTH, CIVIL_YEAR } civil_unit;
/* Unix seconds of the local midnight that starts the day / month / year holding t. */
int64_t civil_floor(civil_unit u, int64_t t);
/* Unix seconds of the local midnight that starts the day / month / year after the one holding t
 * (23, 24 or 25 hours after a day's start). */
int64_t civil_next(civil_unit u, int64_t t);

/* Writes t as local ISO-8601 with its offset ("2025-03-30T03:00:00+02:00") into out[cap];
 * returns the length, or 0 when it does not fit (out then holds a truncated string or nothing). */
size_t civil_format_local(int64_t t, char *out, size_t cap);
/* Writes t as UTC ISO-8601 ("2025-03-30T01:00:00Z") into out[cap]; returns as above. */
size_t civil_format_utc(int64_t t, char *out, size_t cap);

/* civil_parse() flags. UNIX: a run of up to 12 digits alone is unix seconds. EXISTING: a time
 * without a zone inside the spring gap (02:00 to 03:00 on the last Sunday of March) is refused
 * with CIVIL_PARSE_GAP instead of being moved by an hour. A time without a zone in the repeated
 * autumn hour is its later pass (as civil_local_fields() resolves it); with FIRST, its first
 * (summer) pass. */
#define CIVIL_PARSE_UNIX     1u
#define CIVIL_PARSE_EXISTING 4u
#define CIVIL_PARSE_FIRST    8u

#define CIVIL_PARSE_GAP (-2) /* civil_parse(): a local time the spring change skips */
/* What to tell a user about a CIVIL_PARSE_GAP time, after "'<the time>' ": "does not exist in
 * local time (CET/CEST): the clocks go from 02:00 to 03:00 that day; give an offset (+01:00 or
 * +02:00)", or the same of EET. */
const char *civil_gap_why(void);

/* Parses ISO-8601 "2025-01-31" or "2025-01-31T10:00[:00[.fff]]" ('t' or ' ' for 'T', 24:00 for
 * the next midnight) with "Z", "+01:00", "+0100" or "+01" (or '-'), blanks around ignored; a time
 * without a zone is local (CET/CEST, or EET/EEST). Returns 0 and sets *out, or -1 for malformed text, or
 * CIVIL_PARSE_GAP (with CIVIL_PARSE_EXISTING) for a local time that does not exist; *out is
 * untouched on failure. */
int civil_parse(const char *s, unsigned flags, int64_t *out);

#endif
