/* value.c: reading one P1 value as text, as a fixed-point quantity or as a UTC time; OBIS text. */
#include <p1/p1.h>

#include <string.h>

#include "swar.h"
#include "timecheck.h"
#include "unit.h"

/* Hex digit values; 0x80 marks a byte that is not a hex digit. A table because 0-0:96.13.0
 * messages are decoded on every telegram of the daemon's hot path. */
/* clang-format off */
#define X 0x80
static const uint8_t value_hex[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X
/* clang-format on */

#define VALUE_TEXT_FAST 256 /* decoded bytes handled by the one-pass path */

/* Decodes 8 hex characters into 4 bytes (low 32 bits, first byte lowest); *bad gets nonzero bits
 * when a character is not a hex digit or a decoded byte is a control byte or DEL. */
static inline uint32_t value_hex8(uint64_t x, uint64_t *bad)
{
    uint64_t hex = swar_range(x, '0', '9') | swar_range(x | SWAR_ONES * 0x20, 'a', 'f');
    *bad |= ~hex & SWAR_HIGH;
    /* nibble = low 4 bits, + 9 for letters (bit 6 set) */
    uint64_t nib = (x & SWAR_ONES * 0x0F) + ((x >> 6) & SWAR_ONES) * 9;
    uint64_t t = ((nib & 0x00FF00FF00FF00FFULL) << 4 | (nib >> 8)) & 0x00FF00FF00FF00FFULL;
    t = (t | t >> 8) & 0x0000FFFF0000FFFFULL;
    t = (t | t >> 16) & 0xFFFFFFFFULL;
    /* control bytes: high bit clear and below 0x20; DEL: 0x7F */
    uint64_t lt20 = ~((t & 0x7F7F7F7FULL) + 0x60606060ULL) & ~t & 0x80808080ULL;
    uint64_t del = t ^ 0x7F7F7F7FULL;
    del = (del - 0x01010101ULL) & ~del & 0x80808080ULL;
    *bad |= lt20 | del;
    return (uint32_t)t;
}

#if defined(__SSE2__) && !defined(P1_NO_SIMD)
#define VALUE_SSE2 1
#include <emmintrin.h>

/* Decodes 16 hex characters into 8 bytes at out; returns nonzero when a character is not a hex
 * digit or a decoded byte is a control byte or DEL. SSE2 is in every x86-64; other hosts (the
 * Raspberry Pi) take the SWAR loop below. */
static inline uint64_t value_hex16_sse2(const unsigned char *s, unsigned char *out)
{
    const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    const __m128i low = _mm_or_si128(x, _mm_set1_epi8(0x20));
    /* signed compares: bytes >= 0x80 are negative and so never in range */
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(low, _mm_set1_epi8('a' - 1)),
                                  _mm_cmplt_epi8(low, _mm_set1_epi8('f' + 1)));
    unsigned ok = (unsigned)_mm_movemask_epi8(_mm_or_si128(digit, alpha));
    /* nibble: low 4 bits, + 9 for letters ('a' and 'A' end in 1) */
    __m128i nib = _mm_add_epi8(_mm_and_si128(x, _mm_set1_epi8(0x0F)),
                               _mm_and_si128(alpha, _mm_set1_epi8(9)));
    /* 16-bit lanes hold (first, second): first << 4 | second in the low byte */
    __m128i pair = _mm_or_si128(_mm_and_si128(_mm_slli_epi16(nib, 4), _mm_set1_epi16(0xF0)),
                                _mm_srli_epi16(nib, 8));
    __m128i b = _mm_packus_epi16(pair, pair);
    __m128i ctl = _mm_and_si128(_mm_cmpgt_epi8(b, _mm_set1_epi8(-1)),
                                _mm_cmplt_epi8(b, _mm_set1_epi8(0x20)));
    ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(b, _mm_set1_epi8(0x7F)));
    _mm_storel_epi64((__m128i *)(void *)out, b);
    return (ok ^ 0xFFFFu) | ((unsigned)_mm_movemask_epi8(ctl) & 0xFFu);
}
#else
#define VALUE_SSE2 0
#endif

int p1_value_text(const p1_value *v, char *out, size_t cap)
{
    if (!v || !out || !v->raw || v->raw_len == 0 || (v->raw_len & 1u))
        return -1;
    size_t n = v->raw_len / 2;
    if (n + 1 > cap)
        return -1;
    const unsigned char *s = (const unsigned char *)v->raw;
    if (n <= VALUE_TEXT_FAST) {
        /* One pass, 8 characters at a time, into a local buffer: out stays untouched on
         * failure. The text message is decoded on every telegram of the daemon's hot path. */
        unsigned char tmp[VALUE_TEXT_FAST + 8];
        uint64_t bad = 0;
        size_t i = 0;
#if VALUE_SSE2
        for (; i + 8 <= n; i += 8)
            bad |= value_hex16_sse2(s + 2 * i, tmp + i);
#endif
        for (; i + 4 <= n; i += 4) {
            uint32_t w = value_hex8(swar_load(s + 2 * i), &bad);
            tmp[i] = (unsigned char)w;
            tmp[i + 1] = (unsigned char)(w >> 8);
            tmp[i + 2] = (unsigned char)(w >> 16);
            tmp[i + 3] = (unsigned char)(w >> 24);
        }
        for (; i < n; i++) {
            unsigned hi = value_hex[s[2 * i]], lo = value_hex[s[2 * i + 1]];
            unsigned b = (hi << 4 | lo) & 0xFF;
            bad |= (hi | lo) & 0x80;
            bad |= (b < 0x20) | (b == 0x7F);
            tmp[i] = (unsigned char)b;
        }
        if (bad)
            return -1;
        memcpy(out, tmp, n);
        out[n] = '\0';
        return (int)n;
    }
    /* Validate everything first so that out stays untouched on failure (callers decode straight
     * into their own fields and fall back to the raw characters). Control bytes and DEL mean the
     * octets are binary (a serial number, a key), not text; bytes >= 0x80 are let through because
     * meters put Latin-1 or UTF-8 text in 0-0:96.13.0 messages. */
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned hi = value_hex[s[2 * i]], lo = value_hex[s[2 * i + 1]];
        unsigned b = (hi << 4 | lo) & 0xFF;
        bad |= (hi | lo) & 0x80;
        bad |= (b < 0x20) | (b == 0x7F);
    }
    if (bad)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(value_hex[s[2 * i]] << 4 | value_hex[s[2 * i + 1]]);
    out[n] = '\0';
    return (int)n;
}

int p1_unit_code(const char *unit, size_t len)
{
    return unit ? unit_classify((const unsigned char *)unit, len) : P1_UNIT_NONE;
}


int p1_value_fixed(const p1_value *v, int scale, int normalise, int64_t *out)
{
    if (!v || !out || !(v->flags & P1_V_NUMBER) || scale < 0 || scale > 9)
        return -1;
    int k = scale - v->decimals;
    if (normalise) {
        if (v->unit_code != P1_UNIT_UNKNOWN && v->unit_code < P1_UNIT__COUNT)
            k += unit_shift[v->unit_code];
        else
            k += unit_shift[p1_unit_code(v->unit, v->unit_len)];
    }
    int neg = v->number < 0;
    uint64_t m = neg ? 0 - (uint64_t)v->number : (uint64_t)v->number;
    /* The limit is symmetric so that no result equals INT64_MIN, which readers use as "absent". */
    const uint64_t limit = (uint64_t)INT64_MAX;
    uint64_t r;
    if (m == 0) {
        r = 0;
    } else if (k >= 0) {
        if (k > 19)
            return -1;
        if (__builtin_mul_overflow(m, swar_pow10[k], &r)) /* no division on the hot path */
            return -1;
    } else if (k >= -19) {
        uint64_t p = swar_pow10[-k];
        r = m / p;
        if (m % p >= p / 2) /* half away from zero: the magnitude rounds up */
            r++;
    } else {
        r = 0; /* |mantissa| < 2^63 < 10^19 / 2: below half a unit */
    }
    if (r > limit)
        return -1;
    *out = neg ? -(int64_t)r : (int64_t)r;
    return 0;
}

/* Floor division: the calendar needs days that start at midnight before 1970 too. */
static int64_t value_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* H. Hinnant's days_from_civil: eras of 400 years (146097 days) make the arithmetic exact. */
int64_t p1_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* H. Hinnant's civil_from_days, the inverse of p1_days_from_civil(). */
void p1_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    const int64_t z = days + 719468;
    const int64_t era = value_floor_div(z, 146097);
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int value_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned p1_days_in_month(int64_t year, unsigned month)
{
    static const uint8_t mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    return mdays[month - 1] + (month == 2 && value_leap(year));
}

static int value_time_fields_ok(const p1_time *t)
{
    if (t->month < 1 || t->month > 12 || t->day < 1 || t->hour > 23 || t->minute > 59 ||
        t->second > 59)
        return 0;
    return t->day <= p1_days_in_month(t->year, t->month);
}

int p1i_time_check(p1_time *t)
{
    unsigned y = t->year;
    int ok = value_time_fields_ok(t) && y >= 1 && y <= 9999;
    if (!ok)
        t->month = 0;
    t->valid =
        (uint8_t)(ok && y > 2000 && y <= 2099 && !(y == 2070 && t->month == 1 && t->day == 1));
    return ok;
}

/* Day (25..31) of the last Sunday of a 31-day month. 1970-01-01 was a Thursday. */
static unsigned value_last_sunday(int64_t year, unsigned month)
{
    int64_t days = p1_days_from_civil(year, month, 31);
    int64_t dow = ((days % 7) + 7 + 4) % 7; /* 0 = Sunday */
    return (unsigned)(31 - dow);
}

int p1_unix_utc_offset(int64_t unix_s)
{
    /* Both switches happen at 01:00 UTC on the last Sunday of March and October, so the UTC
     * calendar date and second of the day decide, with no local time involved. */
    int64_t days = value_floor_div(unix_s, 86400), sec = unix_s - days * 86400;
    int64_t y;
    unsigned m, d;
    p1_civil_from_days(days, &y, &m, &d);
    if (m < 3 || m > 10)
        return 3600;
    if (m > 3 && m < 10)
        return 7200;
    unsigned ls = value_last_sunday(y, m);
    int after = d > ls || (d == ls && sec >= 3600);
    if (m == 3)
        return after ? 7200 : 3600;
    return after ? 3600 : 7200;
}

int p1_time_from_unix(int64_t unix_s, p1_time *out)
{
    if (!out)
        return -1;
    int off = p1_unix_utc_offset(unix_s);
    int64_t local = unix_s + off;
    int64_t days = value_floor_div(local, 86400), sec = local - days * 86400;
    int64_t y;
    unsigned m, d;
    p1_civil_from_days(days, &y, &m, &d);
    if (y < 1970 || y > 9999)
        return -1;
    out->year = (uint16_t)y;
    out->month = (uint8_t)m;
    out->day = (uint8_t)d;
    out->hour = (uint8_t)(sec / 3600);
    out->minute = (uint8_t)(sec / 60 % 60);
    out->second = (uint8_t)(sec % 60);
    out->dst = off == 7200 ? P1_DST_SUMMER : P1_DST_WINTER;
    out->valid = 1;
    return 0;
}

int p1_time_utc_offset(const p1_time *t)
{
    /* the zone's standard time: CET UTC+1, EET and Israel UTC+2 */
    int std = t && t->zone != P1_ZONE_CET ? 7200 : 3600, summer = std + 3600;
    if (!t || t->dst == P1_DST_STANDARD || !value_time_fields_ok(t))
        return std;
    /* The EU rule: summer time runs from the last Sunday of March 01:00 UTC (02:00 CET, 03:00
     * EET) to the last Sunday of October 01:00 UTC (03:00 CEST, 04:00 EEST), compared in local
     * wall-clock minutes. Israel's (since 2013): from the Friday before the last Sunday of March
     * 02:00 to the last Sunday of October 02:00 summer time, so 01:00-01:59 happens twice. The
     * calendar wins over the letter because real meters send 'S' in December (Fluvius 98.1.0
     * month starts, Iskra IE5); the letter only resolves the autumn hour that happens twice (no
     * letter: the later, winter one) and the spring hour that does not exist. */
    if (t->month < 3 || t->month > 10)
        return std;
    if (t->month > 3 && t->month < 10)
        return summer;
    unsigned ls = value_last_sunday(t->year, t->month);
    unsigned minute_of_month = ((unsigned)t->day * 24u + t->hour) * 60u + t->minute;
    unsigned switch_at = (ls * 24u + 1u + (unsigned)std / 3600u) * 60u; /* the odd hour */
    if (t->zone == P1_ZONE_IL)
        switch_at = t->month == 3 ? ((ls - 2u) * 24u + 2u) * 60u : (ls * 24u + 1u) * 60u;
    if (minute_of_month >= switch_at && minute_of_month < switch_at + 60u)
        return t->dst == P1_DST_SUMMER   ? summer
               : t->dst == P1_DST_WINTER ? std
               : t->month == 3           ? summer
                                         : std;
    if (t->month == 3)
        return minute_of_month >= switch_at ? summer : std;
    return minute_of_month < switch_at ? summer : std;
}

int p1_time_to_unix(const p1_time *t, int64_t *out)
{
    if (!t || !out || !t->valid || !value_time_fields_ok(t))
        return -1;
    int64_t days = p1_days_from_civil(t->year, t->month, t->day);
    int64_t s = days * 86400 + (int64_t)t->hour * 3600 + (int64_t)t->minute * 60 + t->second;
    *out = s - p1_time_utc_offset(t);
    return 0;
}

static size_t value_put_u8(char *p, unsigned v)
{
    size_t n = 0;
    if (v >= 100)
        p[n++] = (char)('0' + v / 100);
    if (v >= 10)
        p[n++] = (char)('0' + v / 10 % 10);
    p[n++] = (char)('0' + v % 10);
    return n;
}

size_t p1_obis_format(const p1_obis *o, char *out, size_t cap)
{
    char buf[24]; /* "255-255:255.255.255.255" + NUL */
    size_t n = 0;
    n += value_put_u8(buf + n, o->a);
    buf[n++] = '-';
    n += value_put_u8(buf + n, o->b);
    buf[n++] = ':';
    n += value_put_u8(buf + n, o->c);
    buf[n++] = '.';
    n += value_put_u8(buf + n, o->d);
    buf[n++] = '.';
    n += value_put_u8(buf + n, o->e);
    if (o->f != 255) {
        buf[n++] = '.';
        n += value_put_u8(buf + n, o->f);
    }
    buf[n] = '\0';
    /* A short buffer gets a truncated, still terminated string (snprintf's contract). */
    if (cap > 0) {
        size_t c = n < cap ? n : cap - 1;
        memcpy(out, buf, c);
        out[c] = '\0';
    }
    return n;
}
