/* parser.c: the streaming P1 telegram parser: framing, CRC, OBIS objects and values; pure. */
#include <string.h>

#if defined(__SSE2__) && !defined(P1_NO_SIMD)
#include <emmintrin.h>
#define PARSER_SSE2 1
#else
#define PARSER_SSE2 0
#endif

#include "p1/crypt.h"
#include "p1/p1.h"
#include "crc16.h"
#include "swar.h"
#include "timecheck.h"
#include "unit.h"

/* Outer states: what the stream is doing between and around telegrams. */
enum {
    S_HUNT,   /* between telegrams: waiting for '/' (or a binary frame) at a line boundary */
    S_TEXT,   /* inside a text telegram (tstate says where) */
    S_DETECT, /* first bytes of a possible binary frame (0xDB, 0x7E, 0x68) */
    S_FRAME,  /* collecting an encrypted 0xDB frame */
    S_SKIP,   /* skipping an unsupported binary frame already reported */
};

/* Text telegram states. */
enum {
    T_HEADER,     /* in the "/..." identification line */
    T_LINE_START, /* at the first byte of a line: '/', '!', '(' or an object decide here */
    T_LINE,       /* inside an object (or ignored) line */
    T_END,        /* in the end line after '!' */
};

enum {
    F_BOUNDARY = 1 << 0,  /* hunting: the previous byte ended a line (or nothing came yet) */
    F_PENDING = 1 << 1,   /* obj holds an object not yet delivered */
    F_VOPEN = 1 << 2,     /* a value is open across a line end (DSMR 3.0 wrapped text) */
    F_MODERN = 1 << 4,    /* DSMR >= 4 objects seen (1-3:0.2.8, 0-0:1.0.0, BE 0-0:96.1.4) */
    F_ENCRYPTED = 1 << 5, /* the telegram buffer is plain[] (decrypted frame) */
    F_PLAIN = 1 << 6,     /* running the pass over a decrypted frame: results are recorded */
    F_DONE = 1 << 7,      /* ... and that pass completed its telegram */
    F_END_NUL = 1 << 8,   /* end line: the NUL after the CRC was seen */
    F_END_CR = 1 << 9,    /* end line: CR seen, only LF may follow */
    F_HEADER = 1 << 10,   /* the header line is complete */
    F_HAS_END = 1 << 11,  /* the telegram ended with an end line */
    F_BARE = 1 << 12,     /* the pending object is an OBIS code alone on its line: only a
                           * line "(" may follow, which opens a block (obj_end: where its '('
                           * was due, the offset of the error otherwise) */
    F_BLOCK = 1 << 13,    /* inside a block: objects get in_block (obj.block: its object) */
};

#define UNIT_MAX 16      /* longest unit accepted after '*' ("kvarh" is 5) */
#define REPLAY_MAX 32    /* bytes of a rejected frame header re-scanned as stream bytes */
#define FRAME_PREFIX 10  /* 0xDB, 0x08, system title: how all frames of a meter begin */
#define HDLC_MIN_LEN 9   /* HDLC frame format length below which 7E Ax is not a frame */
#define MBUS_MIN_LEN 3   /* M-Bus long frame L field: C, A, CI at least */
#define COPY_AHEAD 1024  /* input bytes copied into the telegram buffer beyond the current line */

/* Byte classes, as const tables so the hot loops cost one load and one test per byte. */
enum { C_STOP = 1, C_DIGIT = 2, C_HEX = 4, C_BAD = 8, C_UNIT = 16 };

#define R10(x) x, x, x, x, x, x, x, x, x, x
static const uint8_t cls[256] = {
    /* control bytes are bad outside values, except TAB; CR and LF stop scans */
    C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, 0, C_BAD | C_STOP,
    C_BAD, C_BAD, C_BAD | C_STOP, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD,
    C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD,
    ['%'] = C_UNIT,
    ['('] = C_STOP,
    [')'] = C_STOP,
    ['*'] = C_STOP,
    ['/'] = C_UNIT,
    ['0'] = C_DIGIT | C_HEX | C_UNIT, ['1'] = C_DIGIT | C_HEX | C_UNIT,
    ['2'] = C_DIGIT | C_HEX | C_UNIT, ['3'] = C_DIGIT | C_HEX | C_UNIT,
    ['4'] = C_DIGIT | C_HEX | C_UNIT, ['5'] = C_DIGIT | C_HEX | C_UNIT,
    ['6'] = C_DIGIT | C_HEX | C_UNIT, ['7'] = C_DIGIT | C_HEX | C_UNIT,
    ['8'] = C_DIGIT | C_HEX | C_UNIT, ['9'] = C_DIGIT | C_HEX | C_UNIT,
    ['A'] = C_HEX | C_UNIT, ['B'] = C_HEX | C_UNIT, ['C'] = C_HEX | C_UNIT,
    ['D'] = C_HEX | C_UNIT, ['E'] = C_HEX | C_UNIT, ['F'] = C_HEX | C_UNIT,
    ['G'] = C_UNIT, ['H'] = C_UNIT, ['I'] = C_UNIT, ['J'] = C_UNIT, ['K'] = C_UNIT,
    ['L'] = C_UNIT, ['M'] = C_UNIT, ['N'] = C_UNIT, ['O'] = C_UNIT, ['P'] = C_UNIT,
    ['Q'] = C_UNIT, ['R'] = C_UNIT, ['S'] = C_UNIT, ['T'] = C_UNIT, ['U'] = C_UNIT,
    ['V'] = C_UNIT, ['W'] = C_UNIT, ['X'] = C_UNIT, ['Y'] = C_UNIT, ['Z'] = C_UNIT,
    ['a'] = C_HEX | C_UNIT, ['b'] = C_HEX | C_UNIT, ['c'] = C_HEX | C_UNIT,
    ['d'] = C_HEX | C_UNIT, ['e'] = C_HEX | C_UNIT, ['f'] = C_HEX | C_UNIT,
    ['g'] = C_UNIT, ['h'] = C_UNIT, ['i'] = C_UNIT, ['j'] = C_UNIT, ['k'] = C_UNIT,
    ['l'] = C_UNIT, ['m'] = C_UNIT, ['n'] = C_UNIT, ['o'] = C_UNIT, ['p'] = C_UNIT,
    ['q'] = C_UNIT, ['r'] = C_UNIT, ['s'] = C_UNIT, ['t'] = C_UNIT, ['u'] = C_UNIT,
    ['v'] = C_UNIT, ['w'] = C_UNIT, ['x'] = C_UNIT, ['y'] = C_UNIT, ['z'] = C_UNIT,
    [127] = C_BAD,
    /* 128..255: not ASCII */
    [128] = R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD),
    R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD), R10(C_BAD), C_BAD, C_BAD,
    C_BAD, C_BAD, C_BAD, C_BAD, C_BAD, C_BAD,
};
#undef R10

/* Where the callbacks' offsets come from: data[0] is at stream offset pos0. done counts the
 * telegrams and frames completed (the return value of p1_execute). */
typedef struct run {
    const uint8_t *data;
    uint64_t pos0;
    size_t done;
} run;

static void feed(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end);

static inline uint64_t run_off(const run *r, const uint8_t *s)
{
    return r->pos0 + (uint64_t)(s - r->data);
}

static inline uint8_t *tbuf(p1_parser *p)
{
    return (p->flags & F_ENCRYPTED) ? p->plain : p->buf;
}

static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ------------------------------------------------------------------------------------------- */
/* Telegram results */

static void tel_fill(p1_parser *p, p1_telegram *t, p1_error err, uint64_t err_off)
{
    uint8_t *tb = tbuf(p);

    memset(t, 0, sizeof *t);
    t->offset = p->start;
    if (p->flags & F_HEADER) {
        t->header = (const char *)tb + 1;
        t->header_len = p->header_len;
    }
    t->raw = tb;
    t->raw_len = p->len;
    t->error = err;
    t->error_offset = err == P1_ERR_OK ? 0 : err_off;
    if (err == P1_ERR_NUMBER_OVERFLOW)
        t->error_obis = p->verr_obis;
    t->crc = (p1_crc_status)p->crc_status;
    t->crc_sent = p->crc_status != P1_CRC_ABSENT ? p->crc_sent : 0;
    t->crc_computed = (p->flags & F_HAS_END) ? p->crc_computed : 0;
    t->crc_x25 = p->crc_x25; /* set only by an end line, cleared with each telegram */
    t->has_end_line = (p->flags & F_HAS_END) ? 1 : 0;
    t->nobjects = p->nobjects;
    if (p->flags & F_ENCRYPTED) {
        t->encrypted = 1;
        t->frame = p->buf;
        t->frame_len = p->frame_len;
        t->security = p->security;
        memcpy(t->system_title, p->system_title, sizeof t->system_title);
        t->frame_counter = p->frame_counter;
    }
}

/* Ends the current telegram: reports it (or, in the pass over a decrypted frame, records the
 * result for the frame to report) and goes back to hunting. boundary: whether the stream is at
 * a line start afterwards, which decides whether a '/' right after may start the next one. */
static void tel_end(p1_parser *p, run *r, p1_error err, uint64_t err_off, int boundary)
{
    p->state = S_HUNT;
    if (err == P1_ERR_OK && p->verr) {
        err = (p1_error)p->verr;
        err_off = p->verr_off;
    }
    if (p->flags & F_PLAIN) {
        p->res_err = (uint8_t)err;
        p->res_off = err_off;
        p->flags |= F_DONE;
        return;
    }
    if (p->cb.on_end) {
        p1_telegram t;

        tel_fill(p, &t, err, err_off);
        p->cb.on_end(p->user, &t);
    }
    r->done++;
    p->flags = boundary ? F_BOUNDARY : 0;
}

/* Reports a binary frame (encrypted or unsupported) that yields no telegram. */
static void frame_report(p1_parser *p, run *r, p1_error err, uint64_t err_off)
{
    if (p->cb.on_end) {
        p1_telegram t;

        memset(&t, 0, sizeof t);
        t.offset = p->start;
        t.frame = p->buf;
        t.frame_len = p->len;
        t.error = err;
        t.error_offset = err_off;
        if (p->frame_hdr) {
            t.encrypted = 1;
            t.security = p->security;
            memcpy(t.system_title, p->system_title, sizeof t.system_title);
            t.frame_counter = p->frame_counter;
        }
        p->cb.on_end(p->user, &t);
    }
    r->done++;
}

/* ------------------------------------------------------------------------------------------- */
/* OBIS codes */

/* One OBIS group: 1-3 digits, at most 255. */
static inline int obis_group(const uint8_t *s, size_t *i, uint8_t *out)
{
    size_t j = *i;
    unsigned v, d;

    if ((d = (unsigned)s[j] - '0') > 9)
        return 0;
    v = d;
    j++;
    if ((d = (unsigned)s[j] - '0') <= 9) {
        v = v * 10 + d;
        j++;
        if ((d = (unsigned)s[j] - '0') <= 9) {
            v = v * 10 + d;
            j++;
            if ((unsigned)s[j] - '0' <= 9 || v > 255)
                return 0;
        }
    }
    *out = (uint8_t)v;
    *i = j;
    return 1;
}

/* Parses A-B:C.D.E with an optional .F or *F, tolerating ':' for the dots after C (spec
 * examples print 1-0:99:97.0). dotted: also accept the bare 4-group form A.B.C.D as A-B:C.D
 * (E = 255 = not sent). s must end in a byte that is not a digit, '-', ':', '.' or '*'. */
static int obis_parse(const uint8_t *s, size_t *i, p1_obis *o, int dotted)
{
    size_t j = *i;

    if (!obis_group(s, &j, &o->a))
        return 0;
    if (s[j] == '-') {
        j++;
        if (!obis_group(s, &j, &o->b) || s[j] != ':')
            return 0;
        j++;
        if (!obis_group(s, &j, &o->c) || (s[j] != '.' && s[j] != ':'))
            return 0;
        j++;
        if (!obis_group(s, &j, &o->d) || (s[j] != '.' && s[j] != ':'))
            return 0;
        j++;
        if (!obis_group(s, &j, &o->e))
            return 0;
        o->f = 255;
        if ((s[j] == '.' || s[j] == '*') && (unsigned)s[j + 1] - '0' <= 9) {
            j++;
            if (!obis_group(s, &j, &o->f))
                return 0;
        }
    } else if (dotted && s[j] == '.') {
        j++;
        if (!obis_group(s, &j, &o->b) || s[j] != '.')
            return 0;
        j++;
        if (!obis_group(s, &j, &o->c) || s[j] != '.')
            return 0;
        j++;
        if (!obis_group(s, &j, &o->d) || s[j] != '(')
            return 0;
        o->e = 255;
        o->f = 255;
    } else {
        return 0;
    }
    *i = j;
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* Values */

/* Fills t from 12 digits YYMMDDhhmmss (digits only: every caller checked them); returns 1 when
 * the fields form a calendar time. Clock-not-set placeholders (year 2000, 1970-01-01 shown as
 * 70-01-01) are times but not valid. */
static const p1_time no_time = {0, 0, 0, 0, 0, 0, P1_DST_NONE, 0, P1_ZONE_CET};

static int time_parse(const uint8_t *s, p1_time *t)
{
    static const uint8_t mdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* the six pairs at once: each byte times 10 plus the byte after it, in the even bytes */
    uint64_t a = swar_load(s) & SWAR_ONES * 0x0F;
    uint32_t b = (uint32_t)(swar_load4(s + 8) & 0x0F0F0F0Fu);
    unsigned yy, mo, dd, hh, mi, ss;
    int ok;

    a = a * 10 + (a >> 8);
    b = b * 10 + (b >> 8);
    yy = (unsigned)(a & 0xFF);
    mo = (unsigned)(a >> 16 & 0xFF);
    dd = (unsigned)(a >> 32 & 0xFF);
    hh = (unsigned)(a >> 48 & 0xFF);
    mi = b & 0xFF;
    ss = b >> 16 & 0xFF;

    t->year = (uint16_t)(2000 + yy);
    t->month = (uint8_t)mo;
    t->day = (uint8_t)dd;
    t->hour = (uint8_t)hh;
    t->minute = (uint8_t)mi;
    t->second = (uint8_t)ss;
    ok = mo >= 1 && mo <= 12 && dd >= 1 && dd <= mdays[mo] && hh <= 23 && mi <= 59 && ss <= 59;
    if (ok && mo == 2 && dd == 29 && (yy % 4) != 0)
        ok = 0;
    t->valid = (uint8_t)(ok && yy != 0 && !(yy == 70 && mo == 1 && dd == 1));
    return ok;
}

/* A COSEM date-time sent as the hex of its 12 octets instead of YYMMDDhhmmss (a meter whose
 * clock 0-0:1.0.0 reads 07E8061C050A2B2B00FF8880): year (2 octets), month, day, weekday, hour,
 * minute, second, hundredths, deviation (2 octets, minutes, 0x8000 not specified), clock status.
 * 0xFF in a field (0xFFFF for the year) is "not specified": a time still, not a valid one. The
 * status's bit 7 (summer time active) is taken as the letter S, else W (no letter when the
 * status is 0xFF); the deviation is checked, not used: the calendar decides the offset as for
 * the letters. Returns 1 for this shape; a text never has it, its octets being above 0x1F where
 * the month is. Kept out of line, as text_time_parse() is: inlined into values_parse() it slowed
 * `p1 bench` by 3 %, for a form that few meters send. */
__attribute__((noinline, cold)) static int cosem_time_parse(const uint8_t *s, p1_time *t)
{
    uint8_t o[12];
    unsigned year;
    int i, dev;

    for (i = 0; i < 12; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return 0;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    year = (unsigned)o[0] << 8 | o[1];
    dev = (int16_t)(uint16_t)(o[9] << 8 | o[10]);
    if (((year < 1970 || year > 2099) && year != 0xFFFF) || o[2] == 0 ||
        (o[2] > 12 && o[2] < 0xFD) || o[3] == 0 || (o[3] > 31 && o[3] < 0xFD) ||
        (o[4] > 7 && o[4] != 0xFF) || (o[5] > 23 && o[5] != 0xFF) || (o[6] > 59 && o[6] != 0xFF) ||
        (o[7] > 59 && o[7] != 0xFF) || (o[8] > 99 && o[8] != 0xFF) ||
        (dev != INT16_MIN && (dev < -720 || dev > 720)))
        return 0;
    t->year = (uint16_t)(year == 0xFFFF ? 0 : year);
    t->month = o[2] > 12 ? 0 : o[2];
    t->day = o[3] > 31 ? 0 : o[3];
    t->hour = o[5];
    t->minute = o[6];
    t->second = o[7];
    t->dst = o[11] == 0xFF ? P1_DST_NONE : (o[11] & 0x80) ? P1_DST_SUMMER : P1_DST_WINTER;
    t->zone = P1_ZONE_CET;
    p1i_time_check(t);
    return 1;
}

/* A clock sent as text, YYYYMMDD hh:mm:ss (17 characters) or YYYY-MM-DD hh:mm:ss (19): no letter,
 * so the calendar decides the offset. Returns 1 for either shape. */
__attribute__((noinline, cold)) static int text_time_parse(const uint8_t *s, size_t n, p1_time *t)
{
    static const char shape17[] = "dddddddd dd:dd:dd", shape19[] = "dddd-dd-dd dd:dd:dd";
    /* where month, day, hour, minute and second start; the year is s[0..3] */
    static const uint8_t at17[5] = {4, 6, 9, 12, 15}, at19[5] = {5, 8, 11, 14, 17};
    const char *shape = n == 17 ? shape17 : shape19;
    const uint8_t *at = n == 17 ? at17 : at19;
    uint8_t f[5];
    size_t i;

    for (i = 0; i < n; i++)
        if (shape[i] == 'd' ? (unsigned)s[i] - '0' > 9 : s[i] != (uint8_t)shape[i])
            return 0;
    for (i = 0; i < 5; i++)
        f[i] = (uint8_t)((s[at[i]] - '0') * 10 + (s[at[i] + 1] - '0'));
    t->year =
        (uint16_t)((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
    t->month = f[0];
    t->day = f[1];
    t->hour = f[2];
    t->minute = f[3];
    t->second = f[4];
    t->dst = P1_DST_NONE;
    t->zone = P1_ZONE_CET;
    p1i_time_check(t);
    return 1;
}

/* Units that may be glued to the digits without '*' ("000123.456kWh", "0.48A"). A closed list,
 * so that hex ids and text ("1234ABC") are never split into a number and a unit. */
static int glued_unit(const uint8_t *u, size_t n)
{
    static const char units[][6] = {"kwh", "wh", "kw", "w", "v", "a", "ma", "m3", "gj",
                                    "mj", "s", "hz", "kvarh", "varh", "kvar", "var", "kvah",
                                    "vah", "kva", "va", "l", "dm3", "mwh", "mw"};
    char low[6];
    size_t i;

    if (n == 0 || n > 5)
        return 0;
    for (i = 0; i < n; i++) {
        if (!(cls[u[i]] & C_UNIT))
            return 0;
        low[i] = (char)(u[i] | (u[i] >= 'A' && u[i] <= 'Z' ? 0x20 : 0));
    }
    low[n] = 0;
    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (memcmp(units[i], low, n + 1) == 0)
            return 1;
    return 0;
}

/* The first LF in [s, end), or NULL: memchr without the call for the short lines of a telegram.
 * SSE2 (every x86-64) looks at 16 bytes per step, loading only inside [s, end); elsewhere, and
 * for the last few bytes, memchr. */
static inline const uint8_t *find_lf(const uint8_t *s, const uint8_t *end)
{
#if PARSER_SSE2
    const __m128i lf = _mm_set1_epi8('\n');

    while (end - s >= 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)s), lf));

        if (m)
            return s + __builtin_ctz(m);
        s += 16;
    }
#endif
    return memchr(s, '\n', (size_t)(end - s));
}

/* The first byte at or after s that is not a hex digit. lim is the line's content end, where a
 * CR or LF (never hex) stops the byte loop; whole words are loaded only below lim. */
static inline const uint8_t *hex_run_end(const uint8_t *s, const uint8_t *lim)
{
    while (lim - s >= 8) {
        uint64_t x = swar_load(s);
        uint64_t bad = ~(swar_range(x, '0', '9') | swar_range(x | SWAR_ONES * 0x20, 'a', 'f')) &
                       SWAR_HIGH;

        if (bad)
            return s + (__builtin_ctzll(bad) >> 3);
        s += 8;
    }
    while (cls[*s] & C_HEX)
        s++;
    return s;
}

/* Exact mantissa of the digits in [d, end) ('.' skipped); 0 when it does not fit int64. */
static int mantissa_exact(const uint8_t *d, const uint8_t *end, uint64_t *out)
{
    uint64_t m = 0;

    for (; d < end; d++) {
        unsigned v = (unsigned)*d - '0';

        if (v > 9)
            continue;
        if (m > (UINT64_MAX - v) / 10)
            return 0;
        m = m * 10 + v;
    }
    if (m > (uint64_t)INT64_MAX)
        return 0;
    *out = m;
    return 1;
}

/* More significant digits in [d, end) than any int64 has ('.' skipped), without reading them
 * all: equipment ids are 34-digit runs. */
static int too_many_digits(const uint8_t *d, const uint8_t *end)
{
    while (d < end && (*d == '0' || *d == '.'))
        d++;
    return end - d > 20;
}

/* Classifies the n characters of one value at s (s[n] is ')' or '*', never a digit). star is
 * the last '*' or NULL; allhex: every character is a hex digit (or -1: unknown, check). Returns
 * P1_ERR_NUMBER_OVERFLOW for a quantity that does not fit, which is still a whole value (flags
 * P1_V_UNIT | P1_V_OVERFLOW, no number). This is the general path; the common shapes are
 * decoded in values_parse() without coming here. */
static p1_error make_value(p1_value *v, const uint8_t *s, size_t n, const uint8_t *star,
                           uint64_t off, int allhex)
{
    const uint8_t *q, *e, *d0;
    size_t rn = n, nint, nfrac = 0, ndig, k;
    unsigned flags = 0, dd;
    uint64_t m = 0;
    int neg = 0, dot = 0;

    v->offset = off;
    v->unit = NULL;
    v->unit_len = 0;
    v->unit_code = P1_UNIT_NONE;
    v->decimals = 0;
    v->number = 0;
    v->time = no_time;
    memset(&v->obis_ref, 0, sizeof v->obis_ref);
    if (star) {
        size_t ul = (size_t)(s + n - star - 1);

        /* spaces after the unit are padding (Holley DTSD545: "00007137.694*kWh ") */
        while (ul > 0 && star[ul] == ' ')
            ul--;
        for (k = 0; k < ul && (cls[star[1 + k]] & C_UNIT); k++)
            ;
        if (ul >= 1 && ul <= UNIT_MAX && k == ul) {
            v->unit = (const char *)star + 1;
            v->unit_len = (uint8_t)ul;
            v->unit_code = unit_classify(star + 1, ul);
            rn = (size_t)(star - s);
            flags |= P1_V_UNIT;
        }
    }
    v->raw = (const char *)s;
    v->raw_len = (uint16_t)rn;
    if (n == 0) {
        v->flags = P1_V_EMPTY;
        return P1_ERR_OK;
    }
    e = s + rn;
    q = s;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    d0 = q;
    while ((dd = (unsigned)*q - '0') <= 9) {
        m = m * 10 + dd;
        q++;
    }
    nint = (size_t)(q - d0);
    if (*q == '.' && q < e) {
        const uint8_t *f0 = ++q;

        dot = 1;
        while ((dd = (unsigned)*q - '0') <= 9) {
            m = m * 10 + dd;
            q++;
        }
        nfrac = (size_t)(q - f0);
    }
    ndig = nint + nfrac;
    if (ndig > 0 && q <= e) {
        int glued = 0;

        if (q != e) {
            if (!neg && !dot && nint == 12 && q + 1 == e &&
                ((*q | 0x20) == 's' || (*q | 0x20) == 'w')) {
                time_parse(s, &v->time);
                v->time.dst = (*q | 0x20) == 's' ? 1 : 0;
                v->flags = (uint8_t)(flags | P1_V_TIME);
                return P1_ERR_OK;
            }
            if (flags & P1_V_UNIT || !glued_unit(q, (size_t)(e - q)))
                goto text;
            /* digits and a lone 'A' (the one unit that is a hex digit too) of even length: of
             * 8 characters or more an octet string (an id or a text whose last byte is 'J',
             * 'Z', ':', ...), never a current */
            if (q + 1 == e && !neg && !dot && (nint & 1) && nint >= 7)
                goto text;
            glued = 1;
        }
        if ((ndig > 18 && (too_many_digits(d0, q) || !mantissa_exact(d0, q, &m))) ||
            nfrac > 127) {
            if (flags & P1_V_UNIT || glued) {
                if (glued) {
                    v->unit = (const char *)q;
                    v->unit_len = (uint8_t)(e - q);
                    v->unit_code = unit_classify(q, (size_t)(e - q));
                    v->raw_len = (uint16_t)(q - s);
                }
                v->flags = P1_V_UNIT | P1_V_OVERFLOW;
                return P1_ERR_NUMBER_OVERFLOW;
            }
            goto text;
        }
        flags |= P1_V_NUMBER;
        v->number = neg ? -(int64_t)m : (int64_t)m;
        v->decimals = (int8_t)nfrac;
        if (glued) {
            v->unit = (const char *)q;
            v->unit_len = (uint8_t)(e - q);
            v->unit_code = unit_classify(q, (size_t)(e - q));
            v->raw_len = (uint16_t)(q - s);
            flags |= P1_V_UNIT;
        } else if (!neg && !dot) {
            if (nint == 12 && time_parse(s, &v->time))
                flags |= P1_V_TIME;
            if (!(nint & 1) && !(flags & P1_V_UNIT))
                flags |= P1_V_HEX;
        }
        v->flags = (uint8_t)flags;
        return P1_ERR_OK;
    }
text:
    if (!(rn & 1) && !(flags & P1_V_UNIT)) {
        if (allhex < 0 || star) {
            for (k = 0; k < rn && (cls[s[k]] & C_HEX); k++)
                ;
            allhex = k == rn;
        }
        if (allhex) {
            flags |= P1_V_HEX;
            if (rn == 24 && cosem_time_parse(s, &v->time))
                flags |= P1_V_TIME;
        }
    } else if ((rn == 17 || rn == 19) && text_time_parse(s, rn, &v->time)) {
        flags |= P1_V_TIME;
    }
    if (cls[s[0]] & C_DIGIT) {
        size_t j = 0;

        if (obis_parse(s, &j, &v->obis_ref, 0) && j == rn)
            flags |= P1_V_OBIS;
        else
            memset(&v->obis_ref, 0, sizeof v->obis_ref);
    }
    v->flags = (uint8_t)flags;
    return P1_ERR_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Object lines */

static inline void deliver(p1_parser *p)
{
    p1_object *o = &p->obj;

    o->line = (const char *)tbuf(p) + p->obj_start;
    o->line_len = p->obj_end - p->obj_start;
    p->flags &= ~(uint32_t)F_PENDING;
    p->nobjects++;
    if (p->cb.on_object)
        p->cb.on_object(p->user, o);
}

/* Scratch space for values joined across line ends: plain[] for a text telegram, the tail of
 * buf[] after the frame for a decrypted one. */
static uint8_t *scratch(p1_parser *p, size_t *cap)
{
    if (p->flags & F_ENCRYPTED) {
        *cap = sizeof p->buf - p->frame_len;
        return p->buf + p->frame_len;
    }
    *cap = sizeof p->plain;
    return p->plain;
}

static p1_error scratch_add(p1_parser *p, const uint8_t *s, size_t n)
{
    size_t cap;
    uint8_t *sc = scratch(p, &cap);

    if (p->scr_len + n + 1 > cap)
        return P1_ERR_TOO_LONG;
    memcpy(sc + p->scr_len, s, n);
    p->scr_len += (uint32_t)n;
    return P1_ERR_OK;
}

/* A value of the pending object overflowed (make_value()): the line and the telegram go on, so
 * that the other values and lines still decode, and the telegram is reported as
 * number_overflow at the first such value (tel_end()) unless it fails otherwise. */
static void value_overflow(p1_parser *p, uint64_t off)
{
    if (!p->verr) {
        p->verr = P1_ERR_NUMBER_OVERFLOW;
        p->verr_off = off;
        p->verr_obis = p->obj.obis;
    }
}

/* Parses values "(..)(..)" from tb[i] up to the line content end ce (tb[ce..] is CR* LF). With
 * F_VOPEN set, tb[i] continues a value opened on an earlier line. *ei gets the index of an
 * error. */
static p1_error values_parse(p1_parser *p, size_t i, size_t ce, size_t *ei)
{
    uint8_t *tb = tbuf(p);
    p1_object *o = &p->obj;
    const uint64_t base = p->base;
    p1_error err;

    if (p->flags & F_VOPEN) {
        size_t j = i, cap, k, n;
        uint8_t *sc, *vs, *star = NULL;

        for (;;) {
            while (!(cls[tb[j]] & C_STOP) || tb[j] == '*')
                j++;
            if (tb[j] == ')' || j >= ce)
                break;
            if (tb[j] == '(') {
                *ei = j;
                return P1_ERR_BAD_SYNTAX;
            }
            j++; /* a CR inside the line */
        }
        if (tb[j] == ')')
            while (tb[j + 1] == ')')
                j++;
        if ((err = scratch_add(p, tb + i, (j < ce ? j : ce) - i)) != P1_ERR_OK) {
            *ei = j;
            return err;
        }
        if (j >= ce)
            return P1_ERR_OK; /* still open */
        sc = scratch(p, &cap);
        vs = sc + p->vopen_scr;
        n = p->scr_len - p->vopen_scr;
        sc[p->scr_len] = ')'; /* the sentinel make_value relies on */
        if (n >= 2 && vs[0] == '(' && vs[n - 1] == ')') {
            vs++;
            n -= 2;
        }
        for (k = n; k > 0 && n - k <= UNIT_MAX;)
            if (vs[--k] == '*') {
                star = vs + k;
                break;
            }
        if (make_value(&o->values[o->nvalues], vs, n, star, p->vopen_off, -1) != P1_ERR_OK)
            value_overflow(p, p->vopen_off);
        p->scr_len++;
        o->nvalues++;
        p->flags &= ~(uint32_t)F_VOPEN;
        i = j + 1;
        p->obj_end = (uint32_t)i;
    }
    /* The value count and the object's end live in registers until the line is done: byte
     * stores through tb would otherwise make the compiler reload them after every store. */
    unsigned nv = o->nvalues;
    size_t oend = p->obj_end;
#define VALUES_RETURN(e)                                                                           \
    do {                                                                                           \
        o->nvalues = (uint16_t)nv;                                                                 \
        p->obj_end = (uint32_t)oend;                                                               \
        return (e);                                                                                \
    } while (0)

    while (i < ce) {
        size_t open, vs;
        const uint8_t *star = NULL;

        if (tb[i] != '(') {
            while (i < ce && (tb[i] == ' ' || tb[i] == '\t'))
                i++;
            if (i < ce) {
                *ei = i;
                VALUES_RETURN((cls[tb[i]] & C_BAD) ? P1_ERR_BAD_BYTE : P1_ERR_BAD_SYNTAX);
            }
            break;
        }
        if (nv >= P1_VALUES_MAX) {
            *ei = i;
            VALUES_RETURN(P1_ERR_TOO_MANY_VALUES);
        }
        open = i++;
        vs = i;
        {
            /* Fast path, one pass for the shapes that make up nearly every telegram:
             * [-]digits[.digits] followed by ")", "*unit)" or (12 digits) "S)"/"W)", and runs of
             * hex digits (equipment ids, text messages). */
            const uint8_t *q = tb + i, *d0, *u;
            uint64_t m = 0;
            unsigned dd;
            size_t nint, nfrac = 0, ndig;
            int neg = 0, dot = 0;
            p1_value *v = &o->values[nv];

            if (*q == '-') {
                neg = 1;
                q++;
            }
            d0 = q;
            while ((dd = (unsigned)*q - '0') <= 9) {
                m = m * 10 + dd;
                q++;
            }
            nint = (size_t)(q - d0);
            if (*q == '.') {
                const uint8_t *f0 = ++q;

                dot = 1;
                while ((dd = (unsigned)*q - '0') <= 9) {
                    m = m * 10 + dd;
                    q++;
                }
                nfrac = (size_t)(q - f0);
            }
            ndig = nint + nfrac;
            if (!neg && !dot && (ndig > 18 || (cls[*q] & C_HEX))) {
                /* A hex run: an equipment id (34 digits), a text message. Not a number: either
                 * too many digits for one or a hex letter that is no glued unit ("48A" is). */
                const uint8_t *x = hex_run_end(q, tb + ce);

                if (*x != ')' || x[1] == ')' || (x == q + 1 && (*q | 0x20) == 'a'))
                    goto general;
                if (x == q && !too_many_digits(d0, q))
                    goto general; /* 19-20 digits may still fit int64 */
                q = x;
                v->offset = base + open;
                v->raw = (const char *)tb + vs;
                v->raw_len = (uint16_t)(q - tb - vs);
                v->unit = NULL;
                v->unit_len = 0;
                v->unit_code = P1_UNIT_NONE;
                v->decimals = 0;
                v->number = 0;
                v->time = no_time;
                memset(&v->obis_ref, 0, sizeof v->obis_ref);
                v->flags = (v->raw_len & 1) ? 0 : P1_V_HEX;
                if (v->raw_len == 24 && cosem_time_parse(tb + vs, &v->time))
                    v->flags |= P1_V_TIME;
                goto fast_done;
            }
            if (ndig == 0 || ndig > 18)
                goto general;
            v->offset = base + open;
            v->raw = (const char *)tb + vs;
            v->decimals = (int8_t)nfrac;
            v->number = neg ? -(int64_t)m : (int64_t)m;
            /* every field is set, as make_value() does, so that a remembered line (line_redo())
             * gives back the very same value */
            v->time = no_time;
            memset(&v->obis_ref, 0, sizeof v->obis_ref);
            if (*q == ')' && q[1] != ')') {
                unsigned fl = P1_V_NUMBER;

                if (!neg && !dot) {
                    if (nint == 12) {
                        if (time_parse(tb + vs, &v->time))
                            fl |= P1_V_TIME;
                    }
                    if (!(nint & 1))
                        fl |= P1_V_HEX;
                }
                v->unit = NULL;
                v->unit_len = 0;
                v->unit_code = P1_UNIT_NONE;
                v->flags = (uint8_t)fl;
            } else if (*q == '*') {
                for (u = q + 1; cls[*u] & C_UNIT; u++)
                    ;
                if (*u != ')' || u[1] == ')' || u == q + 1 || u - q - 1 > UNIT_MAX)
                    goto general;
                v->unit = (const char *)q + 1;
                v->unit_len = (uint8_t)(u - q - 1);
                /* one load for the unit's key: the bytes after it are masked off, and the load
                 * ends inside the buffer's padding at worst */
                v->unit_code = u - q - 1 <= UNIT_KEY_MAX
                                   ? unit_from_key((swar_load(q + 1) | SWAR_ONES * 0x20) &
                                                   ((1ULL << (8 * (u - q - 1))) - 1))
                                   : P1_UNIT_OTHER;
                v->flags = P1_V_NUMBER | P1_V_UNIT;
                v->raw_len = (uint16_t)(q - tb - vs);
                q = u;
                goto fast_done;
            } else if (nint == 12 && !neg && !dot && ((*q | 0x20) == 's' || (*q | 0x20) == 'w') &&
                       q[1] == ')' && q[2] != ')') {
                time_parse(tb + vs, &v->time);
                v->time.dst = (*q | 0x20) == 's' ? 1 : 0;
                v->number = 0;
                v->decimals = 0;
                v->unit = NULL;
                v->unit_len = 0;
                v->unit_code = P1_UNIT_NONE;
                v->flags = P1_V_TIME;
                q++;
            } else {
                goto general;
            }
            v->raw_len = (uint16_t)(q - tb - vs);
        fast_done:
            nv++;
            i = (size_t)(q - tb) + 1;
            oend = i;
            continue;
        }
    general:
        i = vs;
        if (tb[i] == '(')
            i++; /* "((ER11))": a '(' may open the content, nowhere else */
        {
            unsigned acc = C_HEX;
            size_t n;

            for (;;) {
                while (!(cls[tb[i]] & C_STOP))
                    acc &= cls[tb[i++]];
                if (tb[i] == ')')
                    break;
                if (tb[i] == '*') {
                    star = tb + i++;
                    continue;
                }
                if (tb[i] == '(') {
                    *ei = i;
                    VALUES_RETURN(P1_ERR_BAD_SYNTAX);
                }
                if (i >= ce)
                    break;
                i++; /* a CR inside the line: no hex digit */
                acc = 0;
            }
            if (i >= ce) {
                /* The line ended inside the value: DSMR 3.0 wraps long text. Join the pieces
                 * in the scratch area so the raw telegram stays as sent. */
                p->vopen_scr = p->scr_len;
                if ((err = scratch_add(p, tb + vs, ce - vs)) != P1_ERR_OK) {
                    *ei = ce;
                    VALUES_RETURN(err);
                }
                p->vopen_off = base + open;
                p->flags |= F_VOPEN;
                VALUES_RETURN(P1_ERR_OK);
            }
            /* The value runs to the last ')' of the first run, so "(ER13))" keeps its ')'
             * and "((ER11))" is the inner text. */
            while (tb[i + 1] == ')') {
                i++;
                acc = 0;
            }
            n = i - vs;
            if (n >= 2 && tb[vs] == '(' && tb[i - 1] == ')') {
                vs++;
                n -= 2;
                acc = (unsigned)-1;
            }
            if (make_value(&o->values[nv], tb + vs, n, star, base + open,
                           star || acc == (unsigned)-1 ? -1 : (acc & C_HEX) != 0) != P1_ERR_OK)
                value_overflow(p, base + open);
        }
        nv++;
        i++;
        oend = i;
    }
    VALUES_RETURN(P1_ERR_OK);
#undef VALUES_RETURN
}

/* DSMR >= 4 objects (1-3:0.2.8, 0-0:1.0.0, BE 0-0:96.1.4): such telegrams always end in "!CRC". */
static inline int obis_modern(const p1_obis *ob)
{
    return (ob->a == 1 && ob->b == 3 && ob->c == 0 && ob->d == 2 && ob->e == 8) ||
           (ob->a == 0 && ob->b == 0 && ob->c == 96 && ob->d == 1 && ob->e == 4) ||
           (ob->a == 0 && ob->b == 0 && ob->c == 1 && ob->d == 0 && ob->e == 0);
}

/* Meters send the same objects in the same order every time, so the OBIS text of object n is
 * nearly always the one of object n in the previous telegram: two masked 8-byte compares instead
 * of parsing it again. A hit needs every byte through the '(' to match, and obis_parse() reads
 * nothing after a '(', so a hit gives exactly what parsing would. Bytes past the line may be
 * compared, but they are masked off; loads stay inside the buffer. */
static inline int obis_lookup(p1_parser *p, const uint8_t *tb, size_t *i, p1_obis *ob)
{
    p1_obis_seen *e = &p->seen[p->nobjects % P1_OBIS_CACHE];
    size_t ls = *i;

    if (ls + 16 > sizeof p->buf)
        return 0;
    if (((swar_load(tb + ls) ^ e->text[0]) & e->mask[0]) |
        ((swar_load(tb + ls + 8) ^ e->text[1]) & e->mask[1]) || e->len == 0)
        return 0;
    *ob = e->obis;
    *i = ls + e->len - 1;
    return 1;
}

/* Remembers the OBIS text tb[ls..open] (open: its '(') of object n for the next telegram. */
static inline void obis_remember(p1_parser *p, const uint8_t *tb, size_t ls, size_t open,
                                 const p1_obis *ob)
{
    p1_obis_seen *e = &p->seen[p->nobjects % P1_OBIS_CACHE];
    size_t n = open + 1 - ls;

    if (n > 16 || ls + 16 > sizeof p->buf)
        return;
    e->mask[0] = n >= 8 ? ~0ULL : (1ULL << (8 * n)) - 1;
    e->mask[1] = n >= 16 ? ~0ULL : n <= 8 ? 0 : (1ULL << (8 * (n - 8))) - 1;
    e->text[0] = swar_load(tb + ls) & e->mask[0];
    e->text[1] = swar_load(tb + ls + 8) & e->mask[1];
    e->obis = *ob;
    e->len = (uint8_t)n;
}

/* The value of the n (1..8) decimal digits at s, first digit most significant. Eight bytes are
 * loaded (inside the buffer's padding at worst); the digits are moved to the top so that the
 * bytes shifted in count as leading zeros and the bytes after them drop out, then pairs, quads
 * and octets are combined with three multiplications. */
static inline uint64_t digits8(const uint8_t *s, unsigned n)
{
    uint64_t x = (swar_load(s) & SWAR_ONES * 0x0F) << (8 * (8 - n));

    x = (x * (10 * 256 + 1)) >> 8;
    x = ((x & 0x00FF00FF00FF00FFULL) * (100 * 65536 + 1)) >> 16;
    return ((x & 0x0000FFFF0000FFFFULL) * (10000 * 4294967296ULL + 1)) >> 32;
}

/* The value of n (0..16) decimal digits at s. */
static inline uint64_t digits_known(const uint8_t *s, unsigned n)
{
    if (n == 0)
        return 0;
    if (n <= 8)
        return digits8(s, n);
    return digits8(s, n - 8) * 100000000ULL + digits8(s + n - 8, 8);
}

/* How a remembered value is redone from the digits of the new line (p1_line_seen.kind). */
enum {
    K_FIXED,   /* no digit of it may change: the value as parsed, moved to the new line */
    K_SHORT,   /* digits[.digits], 1..8 before and 0..8 after the '.': the new number */
    K_LONG,    /* digits[.digits], at most 16 in all: the new number */
    K_TIME,    /* YYMMDDhhmmss and a fixed S/W: the time fields from the new digits */
    K_TIMENUM, /* 12 digits alone: a number, and a time when the digits make one */
    K_NEG = 0x80, /* with K_SHORT and K_LONG: a '-' before the digits */
};

/* Meters send the same lines every time and only the digits change. A short line (through its
 * LF at most P1_LINE_SEEN_MAX bytes, at most P1_LINE_VALUES values) is remembered by object
 * index: its bytes, which of them are the digits of a number or a time, and its values as
 * parsed. When the line at that index in the next telegram has the same bytes everywhere except
 * at the digit positions, which hold digits again, line_parse() would take exactly the same
 * decisions (each depends only on those bytes and on which of them are digits), so the object
 * is built from the remembered values and the new digits (line_redo()) without finding the line
 * end, the parentheses or the OBIS code. A byte matches when (byte ^ text) <= limit: limit 0
 * asks for the same byte, 9 with text '0' for a digit, 255 for anything (past the line); text
 * and limit of each 16 bytes lie side by side (LINE_TEXT(), LINE_LIMIT()). The caller makes
 * sure that t->need input bytes are there: every block compared, and the eight bytes
 * line_redo() loads at the last digits. */
#define LINE_TEXT(t, i) ((t)->pattern[32 * ((i) / 16) + (i) % 16])
#define LINE_LIMIT(t, i) ((t)->pattern[32 * ((i) / 16) + 16 + (i) % 16])

static inline int line_match(const p1_line_seen *t, const uint8_t *x)
{
#if PARSER_SSE2
#define LINE_BLOCK(k)                                                                              \
    _mm_subs_epu8(                                                                                 \
        _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + 16 * (k))),             \
                      _mm_loadu_si128((const __m128i *)(const void *)(t->pattern + 32 * (k)))),   \
        _mm_loadu_si128((const __m128i *)(const void *)(t->pattern + 32 * (k) + 16)))
    /* two blocks always (t->blocks >= 2), the rest for the long lines */
    __m128i bad = _mm_or_si128(LINE_BLOCK(0), LINE_BLOCK(1));

    for (unsigned k = 2; k < t->blocks; k++)
        bad = _mm_or_si128(bad, LINE_BLOCK(k));
#undef LINE_BLOCK
    return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) == 0xFFFF;
#else
    for (unsigned k = 0; k < t->len; k++)
        if ((uint8_t)(x[k] ^ LINE_TEXT(t, k)) > LINE_LIMIT(t, k))
            return 0;
    return 1;
#endif
}

/* The value of the 8 - sh / 8 (1..8) decimal digits at s: digits8() with the shift known. */
static inline uint64_t digits8_at(const uint8_t *s, unsigned sh)
{
    uint64_t x = (swar_load(s) & SWAR_ONES * 0x0F) << sh;

    x = (x * (10 * 256 + 1)) >> 8;
    x = ((x & 0x00FF00FF00FF00FFULL) * (100 * 65536 + 1)) >> 16;
    return ((x & 0x0000FFFF0000FFFFULL) * (10000 * 4294967296ULL + 1)) >> 32;
}

/* The number of a K_SHORT value whose first digit is at d. */
static inline uint64_t short_number(const p1_line_seen *t, unsigned k, const uint8_t *d)
{
    uint64_t m = digits8_at(d, 8 * (8u - t->nint[k]));

    if (t->nfrac[k])
        m = m * swar_pow10[t->nfrac[k]] + digits8_at(d + t->nint[k] + 1, 8 * (8u - t->nfrac[k]));
    return m;
}

_Static_assert(offsetof(p1_value, offset) - offsetof(p1_value, raw_len) == P1_VALUE_MIDDLE,
               "p1_value: raw_len .. obis_ref must be the P1_VALUE_MIDDLE bytes before offset");
_Static_assert(P1_OBIS_CACHE <= 64, "p1_parser.lines_valid has one bit per remembered line");

/* Value k of remembered line t as it is in the new line, which lies at tl in the telegram buffer
 * and at stream offset off; only the digits are left to redo. */
static inline void value_moved(p1_value *v, const p1_line_seen *t, unsigned k, const uint8_t *tl,
                               uint64_t off)
{
    memcpy((char *)v + offsetof(p1_value, raw_len), t->values[k], P1_VALUE_MIDDLE);
    v->raw = (const char *)tl + t->raw[k];
    v->unit = t->unit[k] ? (const char *)tl + t->unit[k] : NULL;
    v->offset = off + t->open[k];
}

/* The values of remembered line t for the line whose bytes are at x (digits are read there),
 * which lies at tl in the telegram buffer and at stream offset off; into v[0..t->nvalues). */
static void line_redo(const p1_line_seen *t, const uint8_t *x, const uint8_t *tl, uint64_t off,
                      p1_value *v)
{
    unsigned k = 0;

    do {
        const uint8_t *d = x + t->dig[k];
        unsigned kind = t->kind[k], nint = t->nint[k], nfrac = t->nfrac[k];
        uint64_t m;

        value_moved(v, t, k, tl, off);
        switch (kind & ~K_NEG) {
        case K_SHORT:
            m = short_number(t, k, d);
            v->number = kind & K_NEG ? -(int64_t)m : (int64_t)m;
            break;
        case K_LONG:
            m = digits_known(d, nint);
            if (nfrac)
                m = m * swar_pow10[nfrac] + digits_known(d + nint + 1, nfrac);
            v->number = kind & K_NEG ? -(int64_t)m : (int64_t)m;
            break;
        case K_TIME:
            time_parse(d, &v->time);
            break;
        case K_TIMENUM:
            v->number = (int64_t)digits_known(d, 12);
            v->flags = (uint8_t)(P1_V_NUMBER | P1_V_HEX |
                                 (time_parse(d, &v->time) ? P1_V_TIME : 0));
            break;
        }
        v++;
    } while (++k < t->nvalues);
}

static inline void deliver(p1_parser *p);

/* Copies the input ahead of the line being taken into the telegram buffer: the line's missing
 * bytes and a block beyond (one memcpy per block, not per line), never past the limit. ls is the
 * line's index in tb, x its first input byte; returns the new `ahead`. */
static inline const uint8_t *copy_ahead(const p1_parser *p, uint8_t *tb, size_t ls,
                                        const uint8_t *x, size_t n, const uint8_t *ahead,
                                        const uint8_t *end)
{
    size_t want = (size_t)(x + n - ahead) + COPY_AHEAD, room;

    room = (size_t)(end - ahead);
    if (want > room)
        want = room;
    room = p->limit - ls - (size_t)(ahead - x);
    if (want > room)
        want = room;
    memcpy(tb + ls + (ahead - x), ahead, want);
    return ahead + want;
}

/* Folds the whole 16-byte blocks of tb[*pos..len) into the running CRC of tb[0..*pos) (acc:
 * crc16_step()) once at least CRC_FOLD_BLOCKS of them wait: the
 * lines are taken into the CRC while they are in cache, and the CRC's work overlaps the next
 * lines' parsing instead of running as a pass of its own at the end. Folding every 64 bytes
 * rather than every line saves calls; either way end_done() adds the rest through the '!'.
 * Bytes below len never change while a telegram is collected (a restart starts it anew). */
#define CRC_FOLD_BLOCKS 4
static inline void crc_fold(uint64_t acc[2], const uint8_t *tb, uint32_t len, uint32_t *pos)
{
    uint32_t n16 = (len - *pos) / 16;

    if (n16 >= CRC_FOLD_BLOCKS) {
        crc16_step(acc, tb + *pos, n16);
        *pos += 16 * n16;
    }
}

static inline void crc_fold_parser(p1_parser *p, const uint8_t *tb)
{
    crc_fold(p->crc_acc, tb, p->len, &p->crc_pos);
}

/* Takes consecutive lines that match their remembered shape (line_match()), starting at input x
 * with the telegram buffer at p->len: builds each object with line_redo() and delivers the one
 * before, as line_parse() would. The parser's counters stay in registers until the run ends (a
 * callback cannot see the parser). Returns the input after the last line taken; *ahead_io as in
 * text_feed(). */
static const uint8_t *lines_remembered(p1_parser *p, uint8_t *tb, const uint8_t *x,
                                       const uint8_t *end, const uint8_t **ahead_io)
{
    const uint8_t *ahead = *ahead_io;
    uint32_t len = p->len, nobj = p->nobjects, flags = p->flags, ls = len;
    uint32_t obj_start = p->obj_start, obj_end = p->obj_end;
    const uint32_t limit = p->limit;
    const uint64_t base = p->base;
    p1_object *o = &p->obj;
    unsigned idx = (nobj + !!(flags & F_PENDING)) % P1_OBIS_CACHE;
    const p1_line_seen *t = &p->lines[idx];
    const uint64_t valid = p->lines_valid;
    uint32_t crc_pos = p->crc_pos;

    for (;; idx = (idx + 1) % P1_OBIS_CACHE, t = idx ? t + 1 : p->lines) {
        uint32_t n;

        if (!(valid >> idx & 1) || (n = t->len) == 0 || (size_t)(end - x) < t->need ||
            (flags & F_BARE) || !line_match(t, x) || len + n > limit)
            break;
        if (x + n > ahead)
            ahead = copy_ahead(p, tb, len, x, n, ahead, end);
        if (flags & F_PENDING) {
            o->line = (const char *)tb + obj_start;
            o->line_len = obj_end - obj_start;
            nobj++;
            if (p->cb.on_object)
                p->cb.on_object(p->user, o);
        }
        o->obis = t->obis;
        o->nvalues = t->nvalues;
        o->in_block = (flags & F_BLOCK) != 0;
        o->offset = base + len;
        if (t->kind[0] == K_SHORT && t->nvalues == 1) {
            /* most lines: one plain number, done here */
            value_moved(o->values, t, 0, tb + len, base + len);
            o->values[0].number = (int64_t)short_number(t, 0, x + t->dig[0]);
        } else {
            line_redo(t, x, tb + len, base + len, o->values);
        }
        obj_start = len;
        obj_end = len + t->end;
        flags |= F_PENDING | (t->modern ? F_MODERN : 0);
        ls = len;
        len += n;
        x += n;
        crc_fold(p->crc_acc, tb, len, &crc_pos);
    }
    if (len != p->len) {
        p->line_start = ls;
        p->len = len;
        p->nobjects = nobj;
        p->flags = flags;
        p->obj_start = obj_start;
        p->obj_end = obj_end;
        p->crc_pos = crc_pos;
        *ahead_io = ahead;
    }
    return x;
}

static inline int obis_modern(const p1_obis *ob);

/* The fields of a value that p1.h defines for its flags are equal. */
static int value_same(const p1_value *a, const p1_value *b)
{
    if (a->raw != b->raw || a->unit != b->unit || a->raw_len != b->raw_len ||
        a->unit_len != b->unit_len || a->flags != b->flags || a->decimals != b->decimals ||
        a->unit_code != b->unit_code || a->number != b->number || a->offset != b->offset)
        return 0;
    if ((a->flags & P1_V_TIME) &&
        (a->time.year != b->time.year || a->time.month != b->time.month ||
         a->time.day != b->time.day || a->time.hour != b->time.hour ||
         a->time.minute != b->time.minute || a->time.second != b->time.second ||
         a->time.dst != b->time.dst || a->time.valid != b->time.valid))
        return 0;
    return !(a->flags & P1_V_OBIS) || memcmp(&a->obis_ref, &b->obis_ref, sizeof a->obis_ref) == 0;
}

/* Marks the n digits at line index at as digit positions of t. */
static void line_digits(p1_line_seen *t, size_t at, size_t n)
{
    for (size_t i = at; i < at + n; i++) {
        LINE_TEXT(t, i) = '0';
        LINE_LIMIT(t, i) = 9;
    }
}

/* After line_parse() took tb[ls..ls+n) (n: through the LF) as a new object: remembers the line
 * for line_match() when it is short enough and every value is of a kind line_redo() can redo,
 * else forgets the index. As a check of all of this, redoing the line just parsed must give back
 * every value line_parse() built. */
static void line_remember(p1_parser *p, const uint8_t *tb, size_t ls, size_t n)
{
    p1_line_seen *t = &p->lines[p->nobjects % P1_OBIS_CACHE];
    const p1_object *o = &p->obj;
    const uint8_t *r = tb + ls;
    p1_value redo[P1_LINE_VALUES];
    size_t k, i, need = 0;

    t->len = 0;
    p->lines_valid |= 1ULL << (p->nobjects % P1_OBIS_CACHE);
    if (n > P1_LINE_SEEN_MAX || o->nvalues == 0 || o->nvalues > P1_LINE_VALUES ||
        p->obj_start != ls || p->obj_end - ls > n)
        return;
    for (i = 0; i < P1_LINE_SEEN_MAX; i++) {
        LINE_TEXT(t, i) = i < n ? r[i] : 0;
        LINE_LIMIT(t, i) = i < n ? 0 : 0xFF;
    }
    for (k = 0; k < o->nvalues; k++) {
        const p1_value *v = &o->values[k];
        const uint8_t *s = (const uint8_t *)v->raw, *u = (const uint8_t *)v->unit;
        size_t rl = v->raw_len, neg, nint = 0, dot, nfrac = 0;
        unsigned fl = v->flags;
        uint8_t kind = K_FIXED;

        /* values joined in the scratch area lie outside the line; an overflowed value must be
         * parsed again to be reported again */
        if (fl & P1_V_OVERFLOW || v->offset < p->base + ls || v->offset - p->base - ls >= n ||
            s < r || s + rl > r + n || (u && (u <= r || u + v->unit_len > r + n)))
            return;
        neg = rl > 0 && s[0] == '-';
        while (neg + nint < rl && (cls[s[neg + nint]] & C_DIGIT))
            nint++;
        dot = neg + nint < rl && s[neg + nint] == '.';
        while (neg + nint + dot + nfrac < rl && (cls[s[neg + nint + dot + nfrac]] & C_DIGIT))
            nfrac++;
        if (fl == P1_V_TIME && !neg && !dot && nint == 12 && rl == 13) {
            kind = K_TIME;
        } else if ((fl & ~(P1_V_UNIT | P1_V_HEX | P1_V_TIME)) == P1_V_NUMBER &&
                   neg + nint + dot + nfrac == rl && nint + nfrac >= 1 && nint + nfrac <= 16) {
            if (!neg && !dot && nint == 12 && !u)
                kind = K_TIMENUM;
            else if (!(fl & P1_V_TIME))
                kind = (uint8_t)((nint >= 1 && nint <= 8 && nfrac <= 8 ? K_SHORT : K_LONG) |
                                 (neg ? K_NEG : 0));
        }
        if (kind != K_FIXED) {
            line_digits(t, (size_t)(s - r) + neg, nint);
            line_digits(t, (size_t)(s - r) + neg + nint + dot, nfrac);
            /* line_redo() loads eight bytes at the first digit and at the first after the '.' */
            if ((size_t)(s - r) + neg + nint + 1 + 8 > need)
                need = (size_t)(s - r) + neg + nint + 1 + 8;
        }
        memcpy(t->values[k], (const char *)v + offsetof(p1_value, raw_len), P1_VALUE_MIDDLE);
        t->kind[k] = kind;
        t->open[k] = (uint8_t)(v->offset - p->base - ls);
        t->raw[k] = (uint8_t)(s - r);
        t->unit[k] = (uint8_t)(u ? u - r : 0);
        t->dig[k] = (uint8_t)(s - r + neg);
        t->nint[k] = (uint8_t)nint;
        t->nfrac[k] = (uint8_t)nfrac;
    }
    t->obis = o->obis;
    t->nvalues = (uint8_t)o->nvalues;
    t->end = (uint8_t)(p->obj_end - ls);
    t->modern = (uint8_t)obis_modern(&o->obis);
    t->blocks = (uint8_t)(n <= 32 ? 2 : (n + 15) / 16);
    t->need = (uint8_t)(need > 16u * t->blocks ? need : 16u * t->blocks);
    line_redo(t, r, r, p->base + ls, redo);
    for (i = 0; i < o->nvalues; i++)
        if (!value_same(&redo[i], &o->values[i]))
            return;
    t->len = (uint8_t)n;
}

/* Handles one complete body line tb[ls..ce) (tb[ce..] is CR* LF or the finish sentinel). One
 * call of values_parse() so that the compiler inlines it here. */
static p1_error line_parse(p1_parser *p, size_t ls, size_t ce, size_t *ei)
{
    uint8_t *tb = tbuf(p);
    size_t i = ls, j;
    p1_obis ob;
    int hit;

    if (p->flags & F_VOPEN)
        goto values;
    if (p->flags & F_BARE) {
        /* Holley DTSD545: "0-0:98.1.0", then "(" alone opens a block of objects (the last
         * billing period's registers) that a line ")" or the end line closes */
        if (ce - ls != 1 || tb[ls] != '(') {
            *ei = p->obj_end;
            return P1_ERR_BAD_SYNTAX;
        }
        p->flags = (p->flags & ~(uint32_t)F_BARE) | F_BLOCK;
        p->obj.block = p->obj.obis;
        deliver(p);
        return P1_ERR_OK;
    }
    if (ls == ce)
        return P1_ERR_OK; /* blank line: the one after the header, or stray */
    if (tb[ls] == ')' && ce - ls == 1 && (p->flags & F_BLOCK)) {
        if (p->flags & F_PENDING)
            deliver(p);
        p->flags &= ~(uint32_t)F_BLOCK;
        return P1_ERR_OK;
    }
    if (tb[ls] == '(') {
        /* DSMR 2.2/3.0: the value list continues on the next line */
        if (!(p->flags & F_PENDING)) {
            *ei = ls;
            return P1_ERR_BAD_SYNTAX;
        }
        goto values;
    }
    if (p->flags & F_PENDING)
        deliver(p);
    hit = obis_lookup(p, tb, &i, &ob);
    if (hit || obis_parse(tb, &i, &ob, 1)) {
        if (tb[i] != '(') {
            if (i == ce && !(p->flags & F_BLOCK)) {
                /* an OBIS code alone: a block may follow (above), else this is the error */
                p->obj.obis = ob;
                p->obj.nvalues = 0;
                p->obj.in_block = 0;
                p->obj.offset = p->base + ls;
                p->obj_start = (uint32_t)ls;
                p->obj_end = (uint32_t)i;
                p->flags |= F_PENDING | F_BARE;
                return P1_ERR_OK;
            }
            *ei = i;
            return (cls[tb[i]] & C_BAD) && i < ce ? P1_ERR_BAD_BYTE : P1_ERR_BAD_SYNTAX;
        }
        if (!hit)
            obis_remember(p, tb, ls, i, &ob);
        p->obj.obis = ob;
        p->obj.nvalues = 0;
        p->obj.in_block = (p->flags & F_BLOCK) != 0;
        p->obj.offset = p->base + ls;
        p->obj_start = (uint32_t)ls;
        p->obj_end = (uint32_t)i;
        p->flags |= F_PENDING;
        if (obis_modern(&ob))
            p->flags |= F_MODERN;
        goto values;
    }
    /* Not an object. Text without parentheses (modem chatter, "ThisLineIsIgnored") is skipped;
     * a line with parentheses or starting like an OBIS code was meant to be an object. */
    if (cls[tb[ls]] & C_DIGIT) {
        *ei = ls;
        return P1_ERR_BAD_OBIS;
    }
    for (j = ls; j < ce; j++) {
        uint8_t c = tb[j];

        if (c == '(') {
            *ei = ls;
            return P1_ERR_BAD_OBIS;
        }
        if (c == ')') {
            *ei = j;
            return P1_ERR_BAD_SYNTAX;
        }
        if ((cls[c] & C_BAD) && c != '\r') {
            *ei = j;
            return P1_ERR_BAD_BYTE;
        }
    }
    return P1_ERR_OK;
values:
    return values_parse(p, i, ce, ei);
}

/* ------------------------------------------------------------------------------------------- */
/* Text telegrams */

static void text_begin(p1_parser *p, uint64_t off)
{
    p->state = S_TEXT;
    p->tstate = T_HEADER;
    p->flags = 0;
    p->start = off;
    p->base = off;
    p->len = 0;
    p->line_start = 0;
    p->header_len = 0;
    p->nobjects = 0;
    p->scr_len = 0;
    p->crc_digits = 0;
    p->crc_sent = 0;
    p->crc_computed = 0;
    p->crc_pos = 0;
    p->crc_acc[0] = p->crc_acc[1] = 0;
    p->crc_status = P1_CRC_ABSENT;
    p->crc_x25 = 0;
    p->frame_len = 0;
    p->frame_hdr = 0;
    p->verr = 0;
}

static inline int is_alpha(uint8_t c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u;
}

static inline int is_alnum(uint8_t c)
{
    return is_alpha(c) || (cls[c] & C_DIGIT);
}

/* Where a header starts inside tb[from..ce): a '/', a letter, three letters or digits (the
 * manufacturer id and the baud character; "P1D5" of our simulator has a digit), then
 * printable bytes without parentheses up to the line end. Such a line is a telegram cut off by
 * the next one's header (the request line dropped and rose again). 0 when there is none. */
static size_t header_inside(const uint8_t *tb, size_t from, size_t ce)
{
    const uint8_t *x = tb + from, *e = tb + ce;

    while (e - x >= 5 && (x = memchr(x, '/', (size_t)(e - x - 4))) != NULL) {
        const uint8_t *y = x + 5;

        if (is_alpha(x[1]) && is_alnum(x[2]) && is_alnum(x[3]) && is_alnum(x[4])) {
            while (y < e && *y >= 0x20 && *y < 0x7F && *y != '(' && *y != ')')
                y++;
            if (y == e)
                return (size_t)(x - tb);
        }
        x++;
    }
    return 0;
}

static void header_done(p1_parser *p, run *r);

/* The line ending at p->len is broken and holds the next telegram's header at tb[k]: report the
 * current telegram as cut off there and start the next one with the bytes already collected. */
static void restart_at(p1_parser *p, run *r, size_t k)
{
    uint8_t *tb = tbuf(p);
    size_t n = p->len - k;
    uint64_t off = p->base + k;

    p->len = (uint32_t)k;
    tel_end(p, r, P1_ERR_TRUNCATED, off, 1);
    text_begin(p, off);
    memmove(tb, tb + k, n);
    p->len = (uint32_t)n;
    header_done(p, r);
}

static void header_done(p1_parser *p, run *r)
{
    uint8_t *tb = tbuf(p);
    size_t ce = p->len - 1, k;

    while (ce > 1 && tb[ce - 1] == '\r')
        ce--;
    if (ce - 1 == 0 || ce - 1 > P1_HEADER_MAX) {
        tel_end(p, r, P1_ERR_BAD_HEADER, p->base + (ce > P1_HEADER_MAX + 1 ? P1_HEADER_MAX + 1 : 1),
                1);
        return;
    }
    for (k = 1; ce - k >= 8; k += 8) {
        /* eight bytes at a time: none is NUL, CR, DEL or above */
        uint64_t x = swar_load(tb + k), x7 = x & ~SWAR_HIGH;
        uint64_t ok = (x7 + SWAR_ONES * 0x7F) & ((x7 ^ SWAR_ONES * '\r') + SWAR_ONES * 0x7F) &
                      ~(x7 + SWAR_ONES) & ~x & SWAR_HIGH;

        if (ok != SWAR_HIGH)
            break;
    }
    for (; k < ce; k++)
        if (tb[k] == 0 || tb[k] == '\r' || tb[k] >= 0x7F) {
            tel_end(p, r, P1_ERR_BAD_HEADER, p->base + k, 1);
            return;
        }
    if (!(p->flags & F_PLAIN) && (k = header_inside(tb, 1, ce)) != 0) {
        restart_at(p, r, k);
        return;
    }
    p->header_len = (uint32_t)(ce - 1);
    p->flags |= F_HEADER;
    p->tstate = T_LINE_START;
    if (p->cb.on_begin) {
        p1_telegram t;

        tel_fill(p, &t, P1_ERR_OK, 0);
        t.raw_len = 0;
        p->cb.on_begin(p->user, &t);
    }
}

/* The end line is complete (or the stream ended right after it): check the CRC, report. */
static void end_done(p1_parser *p, run *r)
{
    p1_error err = P1_ERR_OK;

    /* the lines are folded in already (crc_fold()); the rest through the '!': its whole blocks
     * into the running CRC, which is then reduced once, and the last few bytes */
    const uint8_t *tb = tbuf(p);
    uint32_t end = p->bang + 1, pos = p->crc_pos;

    if (pos > end) { /* cannot happen: crc_pos <= len, which only grows */
        pos = 0;
        p->crc_acc[0] = p->crc_acc[1] = 0;
    }
    if (end - pos >= 16) {
        crc16_step(p->crc_acc, tb + pos, (end - pos) / 16);
        pos += (end - pos) & ~15u;
    }
    uint32_t crc = crc16_step_state(p->crc_acc);
    p->crc_pos = pos;
    p->crc_computed = p1_crc16((uint16_t)crc, tb + pos, end - pos);
    p->flags |= F_HAS_END;
    if (p->crc_digits == 0) {
        p->crc_status = P1_CRC_ABSENT;
        if (p->settings.crc == P1_CRC_REQUIRED)
            err = P1_ERR_CRC_MISSING;
    } else {
        p->crc_status = p->crc_sent == p->crc_computed ? P1_CRC_VALID : P1_CRC_INVALID;
        if (p->crc_status == P1_CRC_INVALID && p->crc_digits == 4 &&
            p1_crc16_x25(tb, end) == p->crc_sent) {
            /* a meter that computes CRC-16/X-25 (Holley DTSD545): the telegram is intact */
            p->crc_status = P1_CRC_VALID;
            p->crc_x25 = 1;
            p->crc_computed = p->crc_sent;
        }
        if (p->crc_status == P1_CRC_INVALID && p->settings.crc != P1_CRC_IGNORE)
            err = P1_ERR_CRC_MISMATCH;
    }
    tel_end(p, r, err, p->base + p->bang, 1);
}

/* A telegram ends without an end line: at a new header (off = its '/') or at p1_finish(). */
static void text_noend(p1_parser *p, run *r, uint64_t off)
{
    p1_error err = P1_ERR_OK;

    if (p->tstate == T_HEADER) {
        tel_end(p, r, P1_ERR_TRUNCATED, off, 1);
        return;
    }
    if (p->tstate == T_END) {
        end_done(p, r);
        return;
    }
    if (p->tstate == T_LINE) {
        /* The stream stopped inside a line: it counts only if it is a whole object. */
        uint8_t *tb = tbuf(p);
        size_t ls = p->line_start, ce = p->len, ei = 0;

        tb[p->len] = '\n';
        while (ce > ls && tb[ce - 1] == '\r')
            ce--;
        if (ce > ls && (line_parse(p, ls, ce, &ei) != P1_ERR_OK || !(p->flags & F_PENDING) ||
                        p->flags & F_VOPEN)) {
            tel_end(p, r, P1_ERR_TRUNCATED, off, 1);
            return;
        }
    }
    if (p->flags & F_BARE) {
        /* an OBIS code alone as the last line: no block followed */
        tel_end(p, r, P1_ERR_BAD_SYNTAX, p->base + p->obj_end, 1);
        return;
    }
    if (p->flags & F_VOPEN || (p->nobjects == 0 && !(p->flags & F_PENDING)) || p->flags & F_MODERN)
        err = P1_ERR_TRUNCATED; /* DSMR >= 4 always sends "!CRC": this one was cut off */
    else if (p->settings.crc == P1_CRC_REQUIRED)
        err = P1_ERR_CRC_MISSING;
    if (p->flags & F_PENDING && !(p->flags & F_VOPEN))
        deliver(p); /* a whole line: part of what a rejected telegram reports too */
    tel_end(p, r, err, off, 1);
}

/* The end line: '!' [0-4 hex digits] [NUL] [CR] LF. */
static const uint8_t *end_feed(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end)
{
    uint8_t *tb = tbuf(p);

    if (end - s >= 6 && p->crc_digits == 0 && !(p->flags & (F_END_CR | F_END_NUL)) &&
        p->len + 6 <= p->limit && s[4] == '\r' && s[5] == '\n') {
        /* The usual "XXXX\r\n" at once, as the loop below would take it byte by byte. */
        int h0 = hexval(s[0]), h1 = hexval(s[1]), h2 = hexval(s[2]), h3 = hexval(s[3]);

        if ((h0 | h1 | h2 | h3) >= 0) {
            p->crc_sent = (uint16_t)(h0 << 12 | h1 << 8 | h2 << 4 | h3);
            p->crc_digits = 4;
            p->flags |= F_END_CR;
            memcpy(tb + p->len, s, 6);
            p->len += 6;
            end_done(p, r);
            return s + 6;
        }
    }

    while (s < end) {
        uint8_t c = *s;
        int h;

        if (p->flags & F_END_CR && c != '\n') {
            end_done(p, r); /* CR-only line end */
            return s;
        }
        if (c == '/' && !(p->flags & F_END_CR)) {
            end_done(p, r); /* no line end at all before the next telegram */
            return s;
        }
        if (p->len >= p->limit) {
            tel_end(p, r, P1_ERR_TOO_LONG, run_off(r, s), 0);
            return s;
        }
        if (c == '\n') {
            tb[p->len++] = c;
            end_done(p, r);
            return s + 1;
        }
        if (c == '\r') {
            p->flags |= F_END_CR;
        } else if (c == 0 && !(p->flags & F_END_NUL)) {
            p->flags |= F_END_NUL;
        } else if ((h = hexval(c)) >= 0 && p->crc_digits < 4 && !(p->flags & F_END_NUL)) {
            p->crc_sent = (uint16_t)(p->crc_sent << 4 | (unsigned)h);
            p->crc_digits++;
        } else {
            tel_end(p, r, P1_ERR_BAD_END_LINE, run_off(r, s), 0);
            return s;
        }
        tb[p->len++] = c;
        s++;
    }
    return s;
}

/* Collects a text telegram line by line: the input is copied into the telegram buffer ahead of
 * the lines in blocks of COPY_AHEAD bytes (one memcpy per block, not one per line), each line's LF
 * is found with memchr and the line is parsed where it lies in the buffer, cache-hot. Decisions
 * that depend on a line's first byte are taken before that byte counts as collected. `ahead`
 * marks how far the input from s on is already in tb at tb[len..]; anything that rewrites tb
 * (a restart, the end line) resets it. */
static const uint8_t *text_feed(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end)
{
    uint8_t *tb = tbuf(p);
    const int inplace = tb + p->len == s; /* a decrypted frame is parsed where it lies */
    const uint8_t *ahead = inplace ? end : s;

    while (s < end && p->state == S_TEXT) {
        const uint8_t *nl;
        size_t n;
        p1_error err;

        switch (p->tstate) {
        case T_END:
            s = end_feed(p, r, s, end);
            ahead = s;
            continue;
        case T_LINE_START:
            if (*s == '/') {
                if (p->flags & F_PLAIN) {
                    tel_end(p, r, P1_ERR_BAD_PLAINTEXT, run_off(r, s), 1);
                    return s;
                }
                text_noend(p, r, run_off(r, s));
                p->flags |= F_BOUNDARY;
                return s;
            }
            if (*s == '!') {
                if (p->flags & F_VOPEN) {
                    tel_end(p, r, P1_ERR_BAD_SYNTAX, p->vopen_off, 0);
                    return s;
                }
                if (p->len >= p->limit) {
                    tel_end(p, r, P1_ERR_TOO_LONG, run_off(r, s), 0);
                    return s;
                }
                if (p->flags & F_BARE) {
                    tel_end(p, r, P1_ERR_BAD_SYNTAX, p->base + p->obj_end, 0);
                    return s;
                }
                if (p->flags & F_PENDING)
                    deliver(p);
                p->bang = p->len;
                tb[p->len++] = '!';
                p->tstate = T_END;
                s++;
                ahead = inplace ? end : s;
                continue;
            }
            if (!(p->flags & F_VOPEN)) {
                /* The common case in a tight loop: whole body lines, no '/' or '!' at their
                 * start, inside the limit, parsed without error. Anything else leaves the loop
                 * before touching the parser's state and takes the general path below. */
                const uint8_t *x = s;

                for (;;) {
                    size_t ls, ce, ei = 0;

                    x = lines_remembered(p, tb, x, end, &ahead);
                    if (x == end || *x == '/' || *x == '!')
                        break;
                    if ((nl = find_lf(x, end)) == NULL)
                        break;
                    n = (size_t)(nl + 1 - x);
                    ls = p->len;
                    if (ls + n > p->limit)
                        break;
                    if (x + n > ahead)
                        ahead = copy_ahead(p, tb, ls, x, n, ahead, end);
                    p->line_start = (uint32_t)ls;
                    p->len = (uint32_t)(ls + n);
                    x += n;
                    ce = ls + n - 1;
                    if (ce > ls && tb[ce - 1] == '\r') /* CR LF: one test, not a loop */
                        while (--ce > ls && tb[ce - 1] == '\r')
                            ;
                    err = line_parse(p, ls, ce, &ei);
                    if (err != P1_ERR_OK || p->flags & F_VOPEN) {
                        /* as on the general path: a cut-off telegram, an error or a value
                         * that stays open (the next line continues it there) */
                        size_t k = p->flags & F_PLAIN ? 0 : header_inside(tb, ls, ce);

                        if (k) {
                            restart_at(p, r, k);
                            s = x;
                            ahead = inplace ? end : s;
                            goto next;
                        }
                        if (err != P1_ERR_OK) {
                            tel_end(p, r, err, p->base + ei, 1);
                            return x;
                        }
                        break;
                    }
                    if ((p->flags & (F_PENDING | F_BARE)) == F_PENDING && p->obj_start == ls)
                        line_remember(p, tb, ls, n);
                    crc_fold_parser(p, tb);
                    if (x == end || *x == '/' || *x == '!')
                        break;
                }
                if (x != s) {
                    s = x;
                    continue;
                }
            }
            p->line_start = p->len;
            p->tstate = T_LINE;
            /* fall through */
        case T_HEADER:
        case T_LINE:
            nl = memchr(s, '\n', (size_t)(end - s));
            n = nl ? (size_t)(nl + 1 - s) : (size_t)(end - s);
            if (p->len + n > p->limit) {
                size_t fit = p->limit - p->len;

                if (!inplace && s + fit > ahead)
                    memcpy(tb + p->len + (ahead - s), ahead, fit - (size_t)(ahead - s));
                p->len += (uint32_t)fit;
                tel_end(p, r, P1_ERR_TOO_LONG, run_off(r, s) + fit, 0);
                return s + fit;
            }
            if (s + n > ahead) {
                /* Copy this line's missing bytes and a block beyond, never past the limit. */
                size_t want = (size_t)(s + n - ahead) + COPY_AHEAD, room;

                room = (size_t)(end - ahead);
                if (want > room)
                    want = room;
                room = p->limit - p->len - (size_t)(ahead - s);
                if (want > room)
                    want = room;
                memcpy(tb + p->len + (ahead - s), ahead, want);
                ahead += want;
            }
            p->len += (uint32_t)n;
            s += n;
            if (!nl)
                return s;
            if (p->tstate == T_HEADER) {
                header_done(p, r);
                ahead = inplace ? end : s;
            } else {
                size_t ls = p->line_start, ce = p->len - 1, ei = 0;

                while (ce > ls && tb[ce - 1] == '\r')
                    ce--;
                err = line_parse(p, ls, ce, &ei);
                if (err != P1_ERR_OK || p->flags & F_VOPEN) {
                    /* A broken line (or one whose value stays open) may be a telegram cut off
                     * by the next header on the same line. */
                    size_t k = p->flags & F_PLAIN ? 0 : header_inside(tb, ls, ce);

                    if (k) {
                        restart_at(p, r, k);
                        ahead = inplace ? end : s;
                        continue;
                    }
                    if (err != P1_ERR_OK) {
                        tel_end(p, r, err, p->base + ei, 1);
                        return s;
                    }
                }
                p->tstate = T_LINE_START;
            }
            break;
        }
    next:;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------- */
/* Binary frames */

/* Re-scans buf[from..len) as ordinary stream bytes after a would-be frame turned out not to be
 * one. Bounded: only header bytes are ever replayed, and each nested replay is shorter. */
static void replay(p1_parser *p, run *r, size_t from)
{
    uint8_t tmp[REPLAY_MAX];
    size_t n = p->len > from ? p->len - from : 0;
    run r2;

    if (n > sizeof tmp)
        n = sizeof tmp;
    memcpy(tmp, p->buf + from, n);
    r2.data = tmp;
    r2.pos0 = p->start + from;
    r2.done = 0;
    p->state = S_HUNT;
    p->flags = from > 0 && (cls[p->buf[from - 1]] & C_BAD) ? F_BOUNDARY : 0;
    feed(p, &r2, tmp, tmp + n);
    r->done += r2.done;
}

/* The whole encrypted frame is in buf: decrypt it and parse the plaintext as one telegram.
 * Returns 0 when the frame did not decrypt (reported as such), else 1. */
static int frame_done(p1_parser *p, run *r)
{
    size_t out = 0;
    p1_error err;
    const uint8_t *rest, *pe;
    run r2;

    p->frame_len = p->len;
    if (!p->settings.decrypt) {
        frame_report(p, r, P1_ERR_NO_KEY, p->start);
        return 0;
    }
    err = p->settings.decrypt(p->settings.decrypt_user, p->buf, p->len, p->plain,
                              P1_TELEGRAM_MAX, &out);
    if (err != P1_ERR_OK) {
        /* Failing with the next frame's beginning at its end: bytes were lost on the line, not
         * a key problem. */
        if (err == P1_ERR_DECRYPT_FAILED && p->next_at) {
            uint32_t len = p->len;

            p->len = p->next_at;
            frame_report(p, r, P1_ERR_TRUNCATED, p->start + p->next_at);
            p->len = len;
        } else {
            frame_report(p, r, err, p->start);
        }
        return 0;
    }
    if (out == 0 || out > P1_TELEGRAM_MAX || p->plain[0] != '/') {
        frame_report(p, r, P1_ERR_BAD_PLAINTEXT, p->start + p->frame_hdr);
        return 1;
    }
    {
        uint64_t start = p->start;
        uint32_t flen = p->frame_len, fhdr = p->frame_hdr;

        text_begin(p, start + fhdr);
        p->start = start;
        p->frame_len = flen;
        p->frame_hdr = fhdr;
    }
    p->flags = F_ENCRYPTED | F_PLAIN;
    r2.data = p->plain;
    r2.pos0 = p->base;
    r2.done = 0;
    pe = p->plain + out;
    rest = text_feed(p, &r2, p->plain, pe);
    if (!(p->flags & F_DONE)) {
        if (p->state == S_TEXT && p->tstate == T_END)
            end_done(p, &r2);
        else
            tel_end(p, &r2, P1_ERR_BAD_PLAINTEXT, run_off(&r2, pe), 1);
        rest = pe;
    }
    if (p->res_err == P1_ERR_OK)
        for (; rest < pe; rest++)
            if (*rest != '\r' && *rest != '\n' && *rest != 0 && *rest != ' ') {
                p->res_err = P1_ERR_BAD_PLAINTEXT;
                p->res_off = run_off(&r2, rest);
                break;
            }
    p->flags &= ~(uint32_t)F_PLAIN;
    if (p->cb.on_end) {
        p1_telegram t;

        tel_fill(p, &t, (p1_error)p->res_err, p->res_off);
        p->cb.on_end(p->user, &t);
    }
    r->done++;
    return 1;
}

/* The next frame's 0xDB 0x08 and system title arrived inside this frame's body (bytes were lost,
 * or the length field lies): this frame is reported cut off there and the new one collected. */
static void frame_cut(p1_parser *p, run *r)
{
    uint32_t at = p->next_at;

    p->len = at;
    frame_report(p, r, P1_ERR_TRUNCATED, p->start + at);
    memmove(p->buf, p->buf + at, FRAME_PREFIX);
    p->start += at;
    p->len = FRAME_PREFIX;
    p->need = 0;
    p->frame_hdr = 0;
    p->next_at = 0;
}

static const uint8_t *detect_feed(p1_parser *p, run *r, const uint8_t *s)
{
    uint8_t c = *s;

    switch (p->buf[0]) {
    case 0xDB: /* general-glo-ciphering: 0xDB 0x08 system-title ... */
        if (c != 0x08)
            break;
        p->buf[p->len++] = c;
        p->state = S_FRAME;
        p->need = 0;
        return s + 1;
    case 0x7E: /* HDLC: 7E, frame format 0xAx + 11-bit length, ..., 7E */
        if (p->len == 1) {
            if ((c & 0xF0) != 0xA0)
                break;
            p->buf[p->len++] = c;
            return s + 1;
        }
        p->buf[p->len++] = c;
        {
            size_t flen = ((size_t)(p->buf[1] & 0x07) << 8 | c) + 2;

            frame_report(p, r, P1_ERR_HDLC_UNSUPPORTED, p->start);
            if (flen >= HDLC_MIN_LEN + 2) {
                p->state = S_SKIP;
                p->flags = 0;
                p->need = (uint32_t)(flen - p->len);
                return s + 1;
            }
            replay(p, r, 1);
            return s + 1;
        }
    case 0x68: /* M-Bus long frame: 68 L L 68 ... CS 16 */
        if (p->len == 1 && c < MBUS_MIN_LEN)
            break;
        if (p->len == 2 && c != p->buf[1]) {
            replay(p, r, 1);
            return s;
        }
        if (p->len == 3 && c != 0x68) {
            replay(p, r, 1);
            return s;
        }
        p->buf[p->len++] = c;
        if (p->len == 4) {
            frame_report(p, r, P1_ERR_MBUS_UNSUPPORTED, p->start);
            p->state = S_SKIP;
            p->flags = 0;
            p->need = (uint32_t)p->buf[1] + 6 - 4;
        }
        return s + 1;
    }
    /* Not a frame after all: the first byte was junk; look at this byte again. */
    p->state = S_HUNT;
    p->flags = (cls[p->buf[0]] & C_BAD) ? F_BOUNDARY : 0;
    return s;
}

static const uint8_t *frame_feed(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end)
{
    if (p->need == 0) {
        /* Header bytes one at a time, so a bad header is known at its first impossible byte
         * and only those few bytes need re-scanning. */
        p1_crypt_header h;
        p1_error e;

        p->buf[p->len++] = *s++;
        e = p1_crypt_parse_header(p->buf, p->len, &h);
        if (e == P1_ERR_TRUNCATED && p->len < REPLAY_MAX)
            return s;
        if (e != P1_ERR_OK) {
            frame_report(p, r, P1_ERR_BAD_FRAME, p->start);
            replay(p, r, 1);
            return s;
        }
        p->frame_hdr = (uint32_t)h.header_len;
        p->security = h.security;
        memcpy(p->system_title, h.system_title, sizeof p->system_title);
        p->frame_counter = h.frame_counter;
        if (h.total_len > p->limit) {
            frame_report(p, r, P1_ERR_TOO_LONG, p->start + p->limit);
            p->state = S_SKIP;
            p->flags = 0;
            p->need = (uint32_t)(h.total_len - p->len);
            return s;
        }
        p->need = (uint32_t)h.total_len;
        /* A frame cut within its counter reads as a whole header whose counter holds the next
         * frame's first bytes: the body then goes on checking them. */
        for (size_t k = FRAME_PREFIX; k < h.header_len; k++)
            if (p->buf[k] == 0xDB && memcmp(p->buf + k, p->buf, h.header_len - k) == 0) {
                p->next_at = (uint32_t)k;
                break;
            }
    } else {
        /* A meter's frames all begin with the same FRAME_PREFIX bytes, which a body holds by
         * chance with odds of 2^-80: each 0xDB is checked against them as its bytes arrive. */
        while (s < end && p->len < p->need) {
            size_t n = p->need - p->len, k;
            const uint8_t *x;

            if (p->next_at) {
                uint8_t c = *s++;
                size_t i = p->len - p->next_at;

                p->buf[p->len++] = c;
                if (c != p->buf[i])
                    p->next_at = c == 0xDB ? p->len - 1 : 0;
                else if (i + 1 == FRAME_PREFIX) {
                    frame_cut(p, r);
                    return s;
                }
                continue;
            }
            if (n > (size_t)(end - s))
                n = (size_t)(end - s);
            x = memchr(s, 0xDB, n);
            k = x ? (size_t)(x - s) + 1 : n;
            memcpy(p->buf + p->len, s, k);
            p->len += (uint32_t)k;
            s += k;
            if (x)
                p->next_at = p->len - 1;
        }
    }
    if (p->len == p->need) {
        int ok = frame_done(p, r);

        p->state = S_HUNT;
        p->flags = F_BOUNDARY;
        /* A frame that failed may end with the first bytes of the next one: look at them again. */
        if (!ok && p->next_at)
            replay(p, r, p->next_at);
        p->next_at = 0;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------- */
/* The stream */

static const uint8_t *hunt(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end)
{
    while (s < end) {
        uint8_t c = *s;

        if ((p->flags & F_BOUNDARY) && c == '/') {
            text_begin(p, run_off(r, s));
            return s;
        }
        /* 0xDB is never text, so it may begin a frame anywhere: right after junk, or after a
         * frame that failed in the middle of the ciphertext that follows it. */
        if (c == 0xDB || ((p->flags & F_BOUNDARY) && (c == 0x7E || c == 0x68))) {
            p->state = S_DETECT;
            p->start = run_off(r, s);
            p->buf[0] = c;
            p->len = 1;
            p->frame_hdr = 0;
            p->next_at = 0;
            return s + 1;
        }
        /* A byte that cannot be text (line noise, 0xFF padding, a NUL) ends a line too, or a
         * telegram right after it would be lost. */
        p->flags = (cls[c] & C_BAD) ? F_BOUNDARY : 0;
        s++;
    }
    return s;
}

/* Skips the rest of a binary frame already reported. Its length field may lie (a cut frame, line
 * noise that looked like 7E Ax): a '/' right after a CR or LF ends the skip early, so that a text
 * telegram following a bogus frame is not swallowed with it. */
static const uint8_t *skip_feed(p1_parser *p, const uint8_t *s, const uint8_t *end)
{
    size_t n = (size_t)(end - s);
    const uint8_t *e, *x;

    if (n > p->need)
        n = p->need;
    e = s + n;
    for (x = s; (x = memchr(x, '/', (size_t)(e - x))) != NULL; x++) {
        if (x > s ? (x[-1] == '\n' || x[-1] == '\r') : (p->flags & F_BOUNDARY) != 0) {
            p->state = S_HUNT;
            p->flags = F_BOUNDARY;
            return x;
        }
    }
    p->need -= (uint32_t)n;
    p->flags = n > 0 && (e[-1] == '\n' || e[-1] == '\r') ? F_BOUNDARY : (n ? 0 : p->flags);
    if (p->need == 0) {
        p->state = S_HUNT;
        p->flags = F_BOUNDARY;
    }
    return e;
}

static void feed(p1_parser *p, run *r, const uint8_t *s, const uint8_t *end)
{
    while (s < end) {
        switch (p->state) {
        case S_HUNT:
            s = hunt(p, r, s, end);
            break;
        case S_TEXT:
            s = text_feed(p, r, s, end);
            break;
        case S_DETECT:
            s = detect_feed(p, r, s);
            break;
        case S_FRAME:
            s = frame_feed(p, r, s, end);
            break;
        default: /* S_SKIP */
            s = skip_feed(p, s, end);
            break;
        }
    }
}

void p1_parser_init(p1_parser *p, const p1_settings *s, const p1_callbacks *cb, void *user)
{
    /* lines[] is left as it is (lines_valid says which were written): a daemon with a parser
     * per meter then only has the pages of the lines its meters send */
    memset(p, 0, offsetof(p1_parser, lines));
    memset(&p->obj, 0, sizeof p->obj);
    if (s)
        p->settings = *s;
    if (cb)
        p->cb = *cb;
    p->user = user;
    p->limit = (p->settings.telegram_max == 0 || p->settings.telegram_max > P1_TELEGRAM_MAX)
                   ? P1_TELEGRAM_MAX
                   : (uint32_t)p->settings.telegram_max;
    p->state = S_HUNT;
    p->flags = F_BOUNDARY;
}

size_t p1_execute(p1_parser *p, const void *data, size_t len)
{
    run r;

    if (!data || len == 0)
        return 0;
    r.data = data;
    r.pos0 = p->pos;
    r.done = 0;
    feed(p, &r, r.data, r.data + len);
    p->pos += len;
    return r.done;
}

size_t p1_finish(p1_parser *p)
{
    run r;

    r.data = NULL;
    r.pos0 = p->pos;
    r.done = 0;
    if (p->state == S_TEXT)
        text_noend(p, &r, p->pos);
    else if (p->state == S_FRAME)
        frame_report(p, &r, P1_ERR_TRUNCATED, p->pos);
    p->state = S_HUNT;
    p->flags = F_BOUNDARY;
    return r.done;
}

void p1_parser_reset(p1_parser *p)
{
    p->state = S_HUNT;
    p->flags = F_BOUNDARY;
    p->len = 0;
}
