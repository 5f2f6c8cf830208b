/* reading.c: folds a telegram's objects into named facts (p1_reading), using only the public API */
#include <p1/reading.h>

#include <stddef.h>
#include <string.h>

#include "swar.h"
#include "timecheck.h"
#include "unit.h"

#if defined(__GNUC__)
#define READING_COLD __attribute__((noinline))
#define READING_INLINE inline __attribute__((always_inline))
#else
#define READING_COLD
#define READING_INLINE inline
#endif

/* Bits of r->seen: objects whose presence (not value) decides the profile in p1_reading_end. */
enum {
    SEEN_VERSION = 1u << 0,    /* 1-3:0.2.8 */
    SEEN_BE_VERSION = 1u << 1, /* 0-0:96.1.4 */
    SEEN_LDN = 1u << 2,        /* 0-0:42.0.0 logical device name */
    SEEN_METER_ID = 1u << 3,   /* 0-0:96.1.0 (E-meter id on channel 0: HU, Iskra IE) */
    SEEN_ID_0_0_0 = 1u << 4,   /* 1-0:0.0.0 (Iskra IE, EasyMeter) */
    SEEN_TARIFF_REG = 1u << 5, /* any 1.8.t / 2.8.t with t >= 1 */
    SEEN_TOTAL_REG = 1u << 6,  /* 1.8.0 / 2.8.0 */
    SEEN_BE_DEMAND = 1u << 7,  /* 1-0:1.4.0, 1-0:1.6.0, BE-layout 0-0:98.1.0 */
    SEEN_IL_TARIFF = 1u << 8,  /* 0-0:96.14.1 (Israel's active tariff) */
};

/* Bits of r->dirty: the large, rarely sent parts of a reading that a telegram wrote. Only
 * p1_reading_add() and p1_reading_end() write them, and only where they set these bits, so that
 * p1_reading_begin() clears them only when needed instead of all ~4 KiB every telegram. */
enum {
    DIRTY_FAILURES = 1u << 0, /* failures[] */
    DIRTY_DEMAND = 1u << 1,   /* demand_months[] */
    DIRTY_TEXT = 1u << 2,     /* text[] */
    DIRTY_MBUS = 1u << 3,     /* mbus[n] is DIRTY_MBUS << n */
};
#define DIRTY_MBUS_ALL (((1u << P1_MBUS_MAX) - 1) * DIRTY_MBUS)
#define READING_CLEARED 0x70317231u /* r->cleared of a reading set up by p1_reading_init() */

/* Rank of the objects that may carry the meter's equipment id; a higher rank wins. */
static int reading_id_rank(const p1_obis *o)
{
    switch (p1_obis_key(o)) {
    case P1_OBIS(0, 0, 96, 1, 1):
        return 5;
    case P1_OBIS(0, 0, 96, 1, 0):
        return 4;
    case P1_OBIS(0, 0, 42, 0, 0):
        return 3;
    case P1_OBIS(1, 0, 0, 0, 0):
        return 2;
    case P1_OBIS(0, 0, 96, 1, 255):
        return 1;
    default: /* and 0-0:0.0.0, a Swiss Sagemcom XT211's serial: the last resort */
        return 0;
    }
}

/* The fields of one M-Bus channel that are not zero when cleared. */
static void reading_mbus_absent(p1_mbus *m)
{
    m->type = -1;
    m->value = P1_ABSENT;
    m->valve = -1;
}

/* Everything outside the large arrays that is not zero in a cleared reading. The quantities from
 * import[] to current_neutral are one run of p1_micro (a static assert below keeps it so) and
 * are set in one loop the compiler turns into wide stores. */
static void reading_absent(p1_reading *r)
{
    enum {
        RUN = (offsetof(p1_reading, current_neutral) - offsetof(p1_reading, import)) /
                  sizeof(p1_micro) + 1
    };
    _Static_assert(RUN == 2 * (P1_TARIFFS_MAX + 1) + 2 + 4 + 12,
                   "p1_reading: import[] .. current_neutral must stay one run of p1_micro");
    p1_micro *run = r->import;
    for (int i = 0; i < RUN; i++)
        run[i] = P1_ABSENT;
    r->tariff = r->tariff_alt = -1;
    r->import_total = r->export_total = P1_ABSENT;
    for (int i = 0; i < 3; i++) {
        p1_phase *p = &r->phase[i];
        p->voltage = p->voltage_avg = p->current = P1_ABSENT;
        p->power_import = p->power_export = P1_ABSENT;
        p->reactive_import = p->reactive_export = P1_ABSENT;
        p->apparent_import = p->apparent_export = P1_ABSENT;
        p->power_factor = p->current_limit = p->current_avg = P1_ABSENT;
        p->power_sum = P1_ABSENT;
        p->sags = p->swells = -1;
    }
    r->power_failures = r->long_power_failures = r->failure_log_count = -1;
    r->demand_current = r->demand_peak = P1_ABSENT;
    r->power_sum = P1_ABSENT;
    r->breaker = -1;
    r->limiter = r->fuse_limit = r->fuse_limit_export = P1_ABSENT;
    r->cleared = READING_CLEARED;
}
_Static_assert(offsetof(p1_reading, cleared) < offsetof(p1_reading, failures) &&
                   offsetof(p1_reading, failures) < offsetof(p1_reading, demand_months) &&
                   offsetof(p1_reading, demand_months) < offsetof(p1_reading, text) &&
                   offsetof(p1_reading, text) < offsetof(p1_reading, mbus),
               "p1_reading: the large arrays must come last, after every small field");

void p1_reading_init(p1_reading *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < P1_MBUS_MAX; i++)
        reading_mbus_absent(&r->mbus[i]);
    reading_absent(r);
}

void p1_reading_begin(p1_reading *r, const p1_telegram *t)
{
    if (r->cleared != READING_CLEARED) {
        p1_reading_init(r);
    } else {
        /* the fields before the large arrays, then the arrays the last telegram wrote */
        uint32_t dirty = r->dirty;
        memset(r, 0, offsetof(p1_reading, failures));
        if (dirty & DIRTY_FAILURES)
            memset(r->failures, 0, sizeof r->failures);
        if (dirty & DIRTY_DEMAND)
            memset(r->demand_months, 0, sizeof r->demand_months);
        if (dirty & DIRTY_TEXT)
            memset(r->text, 0, sizeof r->text);
        for (int i = 0; i < P1_MBUS_MAX; i++) {
            if (dirty & (DIRTY_MBUS << i)) {
                memset(&r->mbus[i], 0, sizeof r->mbus[i]);
                reading_mbus_absent(&r->mbus[i]);
            }
        }
        reading_absent(r);
    }
    if (t && t->header) {
        size_t n = t->header_len < P1_HEADER_MAX ? t->header_len : P1_HEADER_MAX;
        memcpy(r->header, t->header, n);
        r->header[n] = '\0';
    }
}

/* ----------------------------------------------------------------------------------------------
 * Value helpers. Every one leaves its destination untouched when the value does not fit.
 * -------------------------------------------------------------------------------------------- */

/* Kinds of bad value (index into r->bad_offset, bit in r->bad). A total is an energy register
 * or an M-Bus meter's value: what is summed, stored and published as a growing total. */
enum { BAD_TOTAL = 0, BAD_OTHER = 1 };

static size_t reading_copy(char *dst, size_t cap, const char *s, size_t n);

/* Records that o's value v could not be read as what o must be (unit: because its unit is that
 * of another quantity); the first of each kind counts. "()" is no value at all: only a total
 * must never be empty (its tariff would drop out of the sum), any other object is then just
 * absent, as the meters with empty slots send it. */
READING_COLD static void reading_bad(p1_reading *r, const p1_object *o, const p1_value *v, int kind,
                                     int unit)
{
    if (kind == BAD_OTHER && (v->flags & P1_V_EMPTY))
        return;
    if (r->bad & (1u << kind))
        return;
    r->bad |= (uint8_t)(1u << kind);
    r->bad_offset[kind] = v->offset + 1;
    r->bad_obis[kind] = o->obis;
    r->bad_code[kind] = (uint8_t)(unit ? P1_ERR_BAD_UNIT : P1_ERR_BAD_VALUE);
    reading_copy(r->bad_unit[kind], sizeof r->bad_unit[kind], unit ? v->unit : NULL, v->unit_len);
}

/* The units a quantity may be sent in (bit n: P1_UNIT_* n): those of its own quantity with any
 * prefix, none (meters leave units out) and units the decoder does not know (kept as sent). A
 * unit of another quantity (kWh for a power, m3 for an energy register) is no such quantity:
 * taken, the number would be stored under a unit it is not in. P1_UNIT_UNKNOWN is never in a
 * set: such a value is classified by its unit string first (reading_q_general()), and so the
 * set is all reading_q_fast() has to test. */
#define U_BIT(u) (UINT64_C(1) << (u))
#define U_FREE   (U_BIT(P1_UNIT_NONE) | U_BIT(P1_UNIT_OTHER))
enum { Q_ANY, Q_KWH, Q_KW, Q_KVARH, Q_KVAR, Q_KVA, Q_V, Q_A, Q_HZ, Q_PF };
static const uint64_t q_units[] = {
    [Q_ANY] = ~U_BIT(P1_UNIT_UNKNOWN),
    [Q_KWH] = U_FREE | U_BIT(P1_UNIT_KWH) | U_BIT(P1_UNIT_WH) | U_BIT(P1_UNIT_MWH),
    [Q_KW] = U_FREE | U_BIT(P1_UNIT_KW) | U_BIT(P1_UNIT_W) | U_BIT(P1_UNIT_MW),
    [Q_KVARH] = U_FREE | U_BIT(P1_UNIT_KVARH) | U_BIT(P1_UNIT_VARH) | U_BIT(P1_UNIT_MVARH),
    [Q_KVAR] = U_FREE | U_BIT(P1_UNIT_KVAR) | U_BIT(P1_UNIT_VAR) | U_BIT(P1_UNIT_MVAR),
    [Q_KVA] = U_FREE | U_BIT(P1_UNIT_KVA) | U_BIT(P1_UNIT_VA) | U_BIT(P1_UNIT_MVA),
    [Q_V] = U_FREE | U_BIT(P1_UNIT_V) | U_BIT(P1_UNIT_KV),
    [Q_A] = U_FREE | U_BIT(P1_UNIT_A) | U_BIT(P1_UNIT_MA) | U_BIT(P1_UNIT_KA),
    [Q_HZ] = U_FREE | U_BIT(P1_UNIT_HZ) | U_BIT(P1_UNIT_KHZ),
    [Q_PF] = U_FREE, /* a ratio */
};
_Static_assert(P1_UNIT__COUNT <= 64, "q_units[] has one bit per unit code");

/* reading_q() for what its inline part does not take: p1_value_fixed() does it all. Returns -2
 * for a number in a unit that is not in `units` (q_units[]), -1 for any other value that is no
 * such quantity. */
READING_COLD static int reading_q_general(p1_micro *dst, const p1_value *v, int weak,
                                          uint64_t units)
{
    int64_t x;
    unsigned code = v->unit_code != P1_UNIT_UNKNOWN && v->unit_code < P1_UNIT__COUNT
                        ? v->unit_code
                        : (unsigned)p1_unit_code(v->unit, v->unit_len);
    if ((v->flags & P1_V_NUMBER) && !(units >> code & 1))
        return -2;
    if (p1_value_fixed(v, 6, 1, &x) != 0 || x < -P1_MICRO_MAX || x > P1_MICRO_MAX)
        return -1;
    if (!weak || *dst == P1_ABSENT)
        *dst = x;
    return 0;
}

/* The common case of reading_q() inline: a classified unit and a scale-up by 10^0..10^9, the
 * same result as p1_value_fixed(v, 6, 1, ...) without the call (a telegram has dozens of
 * quantities). Returns 1 when done, 0 when p1_value_fixed() must decide (also on overflow). */
static inline int reading_q_fast(p1_micro *dst, const p1_value *v, int weak, uint64_t units)
{
    if ((v->flags & P1_V_NUMBER) && v->unit_code < P1_UNIT__COUNT && (units >> v->unit_code & 1)) {
        int k = 6 - v->decimals + unit_shift[v->unit_code];
        int64_t x;
        if (k >= 0 && k <= 9 && !__builtin_mul_overflow(v->number, (int64_t)swar_pow10[k], &x) &&
            x >= -P1_MICRO_MAX && x <= P1_MICRO_MAX) {
            if (!weak || *dst == P1_ABSENT)
                *dst = x;
            return 1;
        }
    }
    return 0;
}

/* A quantity in micro units, sent in one of `units`; returns -2 (dst untouched) for a number in
 * another quantity's unit, -1 when v is no number or does not fit. `weak` (B=1 electricity
 * objects) only fills an absent field, so that 1-0:x wins over 1-1:x whatever the order; the
 * value is still checked. */
static inline int reading_q(p1_micro *dst, const p1_value *v, int weak, uint64_t units)
{
    if (reading_q_fast(dst, v, weak, units))
        return 0;
    return reading_q_general(dst, v, weak, units);
}

/* reading_q() for object o, recording a bad value (or unit) of the given kind. */
static READING_INLINE void reading_qo(p1_reading *r, const p1_object *o, p1_micro *dst,
                                      const p1_value *v, int weak, int kind, uint64_t units)
{
    int e = reading_q(dst, v, weak, units);
    if (e != 0)
        reading_bad(r, o, v, kind, e == -2);
}

/* A count or enum (rounded to an integer); returns 0 and sets *out. */
static int reading_int(const p1_value *v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t x;
    if ((v->flags & P1_V_NUMBER) && v->decimals == 0)
        x = v->number; /* an integer as sent: p1_value_fixed(v, 0, 0) gives it unchanged */
    else if (p1_value_fixed(v, 0, 0, &x) != 0)
        return -1;
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int reading_count(int64_t *dst, const p1_value *v)
{
    return reading_int(v, 0, INT64_MAX, dst);
}

/* A count of object o; an unreadable one is a bad value. */
static void reading_count_o(p1_reading *r, const p1_object *o, int64_t *dst, const p1_value *v)
{
    if (reading_count(dst, v) != 0)
        reading_bad(r, o, v, BAD_OTHER, 0);
}

/* A small number (M-Bus device type, valve state) of object o; -1 when it is no such number. */
static int reading_small(int16_t *dst, const p1_value *v)
{
    int64_t x;
    if (reading_int(v, 0, INT16_MAX, &x) != 0)
        return -1;
    *dst = (int16_t)x;
    return 0;
}

/* A timestamp into *dst when v is one. Anything else is left out and is no bad value: a time is
 * never summed, p1d stamps a reading without one by its own clock, and a Landis+Gyr meter sends
 * a code where its Belgian gas line's capture time would be ("0-1:24.2.3(1234ABC)(...)"). */
static int reading_time(p1_time *dst, const p1_value *v)
{
    if (v->flags & P1_V_TIME) {
        *dst = v->time;
        return 1;
    }
    return 0;
}

/* 1-0:0.9.2 (date, YYMMDD) or 1-0:0.9.1 (time, hhmmss), six digits, into r->time while no
 * 0-0:1.0.0 is there; p1_reading_end() keeps the two together when 0-0:1.0.0 never came. */
static int reading_clock_part(p1_reading *r, const p1_value *v, int date)
{
    if (!(v->flags & P1_V_NUMBER) || v->raw_len != 6 || v->decimals != 0 || v->number < 0)
        return 0;
    if (r->has_time)
        return 1; /* 0-0:1.0.0 came first: it wins */
    unsigned a = (unsigned)(v->number / 10000), b = (unsigned)(v->number / 100 % 100),
             c = (unsigned)(v->number % 100);
    if (date) {
        r->time.year = (uint16_t)(2000 + a);
        r->time.month = (uint8_t)b;
        r->time.day = (uint8_t)c;
    } else {
        r->time.hour = (uint8_t)a;
        r->time.minute = (uint8_t)b;
        r->time.second = (uint8_t)c;
    }
    r->clock_parts |= (uint8_t)(date ? 1 : 2);
    return 1;
}

/* Copies up to cap-1 raw characters, never cutting a UTF-8 sequence in half; returns length. */
static size_t reading_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return 0;
    if (!s)
        n = 0;
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
    return n;
}

/* p1_value_text() for a hex text longer than dst[cap]: its first cap-1 decoded bytes, less a
 * UTF-8 sequence cut at the end (as reading_copy() does with raw characters), when the whole
 * value is text that p1_value_text() would decode had dst been large enough; else -1. Meters
 * exceed the spec's lengths (NOTES Q-LN-7, Q-LN-9): a message longer than P1_TEXT_MAX must
 * read as the start of its text, not as its hex digits. Only overlong values come here. */
READING_COLD static int reading_text_cut(const p1_value *v, char *dst, size_t cap)
{
    if (cap < 2 || !v->raw || (v->raw_len & 1u) || (size_t)v->raw_len / 2 + 1 <= cap)
        return -1;
    size_t n = cap - 1;
    char chunk[65];
    unsigned char next = 0;
    /* the bytes past the cut must be text too, checked as p1_value_text() checks them */
    for (size_t i = 2 * n; i < v->raw_len; i += 2 * (sizeof chunk - 1)) {
        p1_value part = *v;
        size_t len =
            v->raw_len - i < 2 * (sizeof chunk - 1) ? v->raw_len - i : 2 * (sizeof chunk - 1);
        part.raw = v->raw + i;
        part.raw_len = (uint16_t)len;
        if (p1_value_text(&part, chunk, sizeof chunk) != (int)(len / 2))
            return -1;
        if (i == 2 * n)
            next = (unsigned char)chunk[0];
    }
    p1_value head = *v;
    head.raw_len = (uint16_t)(2 * n);
    if (p1_value_text(&head, dst, cap) != (int)n)
        return -1;
    while (n > 0 && (next & 0xC0) == 0x80)
        next = (unsigned char)dst[--n];
    dst[n] = '\0';
    return (int)n;
}

/* p1_value_text() of a value padded with NUL octets at its end (a ZIV meter sends its id
 * "E006900070" in 17 octets, 4530..3030 and seven 00): the text before them; else -1. */
READING_COLD static int reading_text_nul(const p1_value *v, char *dst, size_t cap)
{
    size_t len = v->raw_len;
    if (!v->raw || (len & 1u))
        return -1;
    while (len >= 2 && v->raw[len - 2] == '0' && v->raw[len - 1] == '0')
        len -= 2;
    if (len == v->raw_len || len == 0)
        return -1;
    p1_value head = *v;
    head.raw_len = (uint16_t)len;
    return p1_value_text(&head, dst, cap);
}

/* Text of an octet-string object: hex decoded when it is hex and printable, else the characters
 * as sent (meters send plain text too: "(TARIFF 1)", "(test-/-test)"). `ascii` additionally
 * rejects decoded bytes >= 0x80: identifiers are ASCII, so such a run is a binary id. */
static size_t reading_text(char *dst, size_t cap, const p1_value *v, int ascii)
{
    int n = p1_value_text(v, dst, cap);
    if (n < 0)
        n = reading_text_cut(v, dst, cap);
    if (n < 0)
        n = reading_text_nul(v, dst, cap);
    if (n >= 0) {
        uint64_t high = 0;
        int i = 0;
        for (; ascii && i + 8 <= n; i += 8)
            high |= swar_load(dst + i);
        for (; ascii && i < n; i++)
            high |= (unsigned char)dst[i];
        if (!(high & SWAR_HIGH))
            return (size_t)n;
    }
    return reading_copy(dst, cap, v->raw, v->raw_len);
}

/* Concatenated text of all values (a DSMR 3.0 message may come wrapped into several), each
 * less the 0xFF octets that pad it to its field's length (E.ON Hungary's meters): no text ends
 * in them (Latin-1 'y' with diaeresis; never in UTF-8). */
static void reading_text_all(char *dst, size_t cap, const p1_object *o)
{
    size_t len = 0;
    dst[0] = '\0';
    for (unsigned i = 0; i < o->nvalues && len + 1 < cap; i++) {
        size_t start = len;
        len += reading_text(dst + len, cap - len, &o->values[i], 0);
        while (len > start && (unsigned char)dst[len - 1] == 0xFF)
            len--;
        dst[len] = '\0';
    }
}

static int reading_lower_eq(const char *s, size_t n, const char *lower)
{
    size_t i = 0;
    for (; i < n && lower[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return 0;
    }
    return i == n && lower[i] == '\0';
}

/* The canonical name of a unit after p1_value_fixed's normalisation; unknown units as sent.
 * code is the value's unit_code; a value built by hand (P1_UNIT_UNKNOWN) is classified here. */
static void reading_unit(char *dst, size_t cap, const char *u, size_t n, unsigned code)
{
    static const char canon[P1_UNIT__COUNT][6] = {
        [P1_UNIT_KWH] = "kWh",   [P1_UNIT_WH] = "kWh",      [P1_UNIT_KW] = "kW",
        [P1_UNIT_W] = "kW",      [P1_UNIT_KVARH] = "kvarh", [P1_UNIT_VARH] = "kvarh",
        [P1_UNIT_KVAR] = "kvar", [P1_UNIT_VAR] = "kvar",    [P1_UNIT_KVAH] = "kVAh",
        [P1_UNIT_VAH] = "kVAh",  [P1_UNIT_KVA] = "kVA",     [P1_UNIT_VA] = "kVA",
        [P1_UNIT_V] = "V",       [P1_UNIT_A] = "A",         [P1_UNIT_HZ] = "Hz",
        [P1_UNIT_M3] = "m3",     [P1_UNIT_DM3] = "m3",      [P1_UNIT_GJ] = "GJ",
        [P1_UNIT_MJ] = "GJ",     [P1_UNIT_S] = "s",         [P1_UNIT_MWH] = "kWh",
        [P1_UNIT_MW] = "kW",     [P1_UNIT_MVARH] = "kvarh", [P1_UNIT_MVAR] = "kvar",
        [P1_UNIT_MVAH] = "kVAh", [P1_UNIT_MVA] = "kVA",     [P1_UNIT_KV] = "V",
        [P1_UNIT_MA] = "A",      [P1_UNIT_L] = "m3",        [P1_UNIT_KA] = "A",
        [P1_UNIT_KHZ] = "Hz",
    };
    if (!u || n == 0) {
        dst[0] = '\0';
        return;
    }
    if (code == P1_UNIT_UNKNOWN || code >= P1_UNIT__COUNT)
        code = (unsigned)p1_unit_code(u, n);
    if (canon[code][0])
        reading_copy(dst, cap, canon[code], strlen(canon[code]));
    else
        reading_copy(dst, cap, u, n);
}

/* ----------------------------------------------------------------------------------------------
 * Objects with structure
 * -------------------------------------------------------------------------------------------- */

static void reading_id(p1_reading *r, const p1_object *o)
{
    int rank = reading_id_rank(&o->obis);
    if (r->equipment_id[0] && reading_id_rank(&r->equipment_id_obis) > rank)
        return;
    if (o->nvalues == 0 || o->values[0].raw_len == 0)
        return; /* "()" carries no id; keep a lower-ranked one */
    reading_text(r->equipment_id, sizeof r->equipment_id, &o->values[0], 1);
    r->equipment_id_obis = o->obis;
}

/* 0-0:96.1.4: plain digits ("50217") or, on Iskra IE5T, hex ("3231313130" = "21110"). Decoded
 * only when the result looks like a version string, because "50" would decode to "P". */
static void reading_be_version(p1_reading *r, const p1_value *v)
{
    char buf[P1_SHORT_MAX];
    int n = v->raw_len >= 6 ? p1_value_text(v, buf, sizeof buf) : -1;
    for (int i = 0; i < n; i++) {
        char c = buf[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '.' || c == '-' || c == '_')) {
            n = -1;
            break;
        }
    }
    if (n > 0)
        memcpy(r->version, buf, (size_t)n + 1);
    else
        reading_copy(r->version, sizeof r->version, v->raw, v->raw_len);
}

/* The tariff of a text: its digits, after a word "TARIFF" and spaces when sent so (E.ON's
 * Hungarian Wasion meters: "TARIFF 1"). 1, or 0 when it is no such text. */
static int reading_tariff_text(const char *s, size_t n, int16_t *out)
{
    static const char word[] = "tariff";
    size_t i = 0;
    int64_t t = 0;
    while (i < 6 && i < n && (s[i] | 0x20) == word[i])
        i++;
    if (i == 6)
        while (i < n && s[i] == ' ')
            i++;
    else
        i = 0;
    if (i == n)
        return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || t > 3276)
            return 0;
        t = t * 10 + (s[i] - '0');
    }
    *out = (int16_t)t;
    return 1;
}

static void reading_tariff(p1_reading *r, const p1_value *v)
{
    int64_t x;
    if (v->raw_len == 0)
        return; /* "()" names no tariff, nor takes the text of 0-0:96.14.1 in either order */
    reading_copy(r->tariff_text, sizeof r->tariff_text, v->raw, v->raw_len);
    if (v->decimals == 0 && reading_int(v, 0, INT16_MAX, &x) == 0) {
        r->tariff = (int16_t)x;
        return;
    }
    /* Not a plain number: text ("TARIFF 1"), or hex-coded text ("TARIFF 1" or "0001" sent as
     * octets). */
    char buf[P1_SHORT_MAX];
    int n = p1_value_text(v, buf, sizeof buf);
    if (n <= 0) {
        reading_tariff_text(v->raw, v->raw_len, &r->tariff);
        return;
    }
    memcpy(r->tariff_text, buf, (size_t)n + 1);
    reading_tariff_text(buf, (size_t)n, &r->tariff);
}

static void reading_breaker(p1_reading *r, const p1_value *v)
{
    int64_t x;
    if (reading_int(v, 0, INT16_MAX, &x) == 0)
        r->breaker = (int16_t)x;
    else if (reading_lower_eq(v->raw, v->raw_len, "on")) /* E.ON HU sends text */
        r->breaker = 1;
    else if (reading_lower_eq(v->raw, v->raw_len, "off"))
        r->breaker = 0;
}

/* 1-0:99.97.0 (count)(0-0:96.7.19) then pairs (TST end)(duration[*s]). */
static void reading_failures(p1_reading *r, const p1_object *o)
{
    unsigned n = o->nvalues, i = 1;
    r->dirty |= DIRTY_FAILURES;
    r->nfailures = 0;
    r->failure_log_count = -1;
    if (n == 0)
        return;
    if (o->values[0].flags & P1_V_EMPTY)
        r->failure_log_count = 0;
    else
        reading_count_o(r, o, &r->failure_log_count, &o->values[0]);
    while (i < n && (o->values[i].flags & P1_V_OBIS))
        i++;
    for (; i + 1 < n && r->nfailures < P1_FAILURES_MAX; i += 2) {
        p1_failure *f = &r->failures[r->nfailures++];
        memset(f, 0, sizeof *f);
        reading_time(&f->end, &o->values[i]);
        f->duration_s = -1;
        reading_count_o(r, o, &f->duration_s, &o->values[i + 1]);
    }
}

/* 1-0:1.6.0 is (TST)(kW) on Fluvius and (kW)(TST) on Iskra IE5T: the unit (or a number that is
 * no timestamp) marks the peak, whatever the order. */
static void reading_peak(p1_reading *r, const p1_object *o, int weak)
{
    if (weak && r->demand_peak != P1_ABSENT)
        return;
    int have_peak = 0, have_time = 0;
    for (unsigned i = 0; i < o->nvalues; i++) {
        const p1_value *v = &o->values[i];
        if (!have_peak && (v->flags & P1_V_NUMBER) &&
            ((v->flags & P1_V_UNIT) || !(v->flags & P1_V_TIME))) {
            reading_qo(r, o, &r->demand_peak, v, 0, BAD_OTHER, q_units[Q_KW]);
            have_peak = 1;
        } else if (!have_time && (v->flags & P1_V_TIME)) {
            r->demand_peak_time = v->time;
            have_time = 1;
        } else if (!(v->flags & (P1_V_NUMBER | P1_V_TIME))) {
            reading_bad(r, o, v, BAD_OTHER, 0); /* neither the peak nor its time */
        }
    }
}

/* 0-0:98.1.0. Belgian history: (n)(1-0:1.6.0)(1-0:1.6.0) then n x (TST month)(TST peak)(kW); an
 * unused month has the placeholder time 632525252525 (kept, with time.valid = 0). The Hungarian
 * object of the same code is a billing snapshot starting with a timestamp, not a count: unknown.
 * Returns 0 when the object is not the Belgian layout. */
static int reading_history(p1_reading *r, const p1_object *o)
{
    unsigned n = o->nvalues, i = 1;
    if (n == 0)
        return 0;
    const p1_value *c = &o->values[0];
    if (!(c->flags & P1_V_NUMBER) || (c->flags & (P1_V_TIME | P1_V_UNIT)))
        return 0;
    while (i < n && (o->values[i].flags & P1_V_OBIS))
        i++;
    r->dirty |= DIRTY_DEMAND;
    r->ndemand_months = 0;
    for (; i + 2 < n && r->ndemand_months < P1_DEMAND_MONTHS_MAX; i += 3) {
        p1_demand_month *m = &r->demand_months[r->ndemand_months++];
        memset(m, 0, sizeof *m);
        reading_time(&m->month, &o->values[i]);
        reading_time(&m->peak_time, &o->values[i + 1]);
        m->peak = P1_ABSENT;
        reading_qo(r, o, &m->peak, &o->values[i + 2], 0, BAD_OTHER, q_units[Q_KW]);
    }
    r->seen |= SEEN_BE_DEMAND;
    return 1;
}

/* ----------------------------------------------------------------------------------------------
 * M-Bus channels (0-n:..., n = 1..P1_MBUS_MAX)
 * -------------------------------------------------------------------------------------------- */

/* The channel's meter value; returns -1 when it is no number or does not fit. */
static int reading_mbus_value(p1_mbus *m, const p1_value *v, const char *unit, size_t unit_len,
                              uint8_t e)
{
    int64_t x;
    p1_value tmp;
    if (!v->unit && unit && unit_len > 0 && unit_len <= 255) {
        /* DSMR 2.2/3.0 profile: the unit is a separate value; lend it to the number. */
        tmp = *v;
        tmp.unit = unit;
        tmp.unit_len = (uint8_t)unit_len;
        tmp.unit_code = (uint8_t)p1_unit_code(unit, unit_len);
        v = &tmp;
    }
    if (p1_value_fixed(v, 6, 1, &x) != 0 || x < -P1_MICRO_MAX || x > P1_MICRO_MAX)
        return -1;
    m->value = x;
    m->value_e = e;
    m->unit_code = v->unit_code != P1_UNIT_UNKNOWN && v->unit_code < P1_UNIT__COUNT
                       ? v->unit_code
                       : (uint8_t)p1_unit_code(v->unit, v->unit_len);
    reading_unit(m->unit, sizeof m->unit, v->unit, v->unit_len, v->unit_code);
    return 0;
}

/* Returns 0 for objects of the channel that are not mapped (relay states, EANs, ...). The meter
 * value is a total (it is stored and published as one); its capture time, the device type and
 * the valve state are other known values. */
static int reading_mbus(p1_reading *r, p1_mbus *m, const p1_object *o)
{
    unsigned n = o->nvalues;
    const p1_value *v = n ? &o->values[0] : NULL;
    switch (P1_OBIS(0, 0, o->obis.c, o->obis.d, o->obis.e)) {
    case P1_OBIS(0, 0, 24, 1, 0):
        m->type = -1;
        if (v && reading_small(&m->type, v) != 0)
            reading_bad(r, o, v, BAD_OTHER, 0);
        break;
    case P1_OBIS(0, 0, 96, 1, 0):
    case P1_OBIS(0, 0, 96, 1, 1):
        if (v && v->raw_len)
            reading_text(m->id, sizeof m->id, v, 1);
        break;
    case P1_OBIS(0, 0, 24, 2, 1):
    case P1_OBIS(0, 0, 24, 2, 3):
        /* (TST)(value*unit); the last value is the reading, a leading timestamp its time. */
        if (!v)
            break;
        if (n >= 2)
            reading_time(&m->time, v);
        if (reading_mbus_value(m, &o->values[n - 1], NULL, 0, o->obis.e) != 0)
            reading_bad(r, o, &o->values[n - 1], BAD_TOTAL, 0);
        break;
    case P1_OBIS(0, 0, 24, 3, 0):
        /* (TST12)(status)(period)(count)(capture obis)(unit) then (value), joined by the parser. */
        if (v)
            reading_time(&m->time, v);
        if (n >= 7) {
            const p1_value *u = &o->values[5];
            const char *us = NULL;
            size_t ul = 0;
            if (u->unit && u->unit_len) {
                us = u->unit;
                ul = u->unit_len;
            } else if (!(u->flags & (P1_V_NUMBER | P1_V_EMPTY))) {
                us = u->raw;
                ul = u->raw_len;
            }
            if (reading_mbus_value(m, &o->values[n - 1], us, ul, 0) != 0)
                reading_bad(r, o, &o->values[n - 1], BAD_TOTAL, 0);
        }
        break;
    case P1_OBIS(0, 0, 24, 4, 0):
        if (v && reading_small(&m->valve, v) != 0)
            reading_bad(r, o, v, BAD_OTHER, 0);
        break;
    default:
        return 0;
    }
    m->present = 1;
    return 1;
}

/* EN 13757-3 device type (sent in decimal) -> medium. */
static p1_medium reading_medium(int type)
{
    switch (type) {
    case 2:
        return P1_MEDIUM_ELECTRICITY;
    case 3:
        return P1_MEDIUM_GAS;
    case 4:  /* heat, outlet */
    case 12: /* heat, inlet */
    case 13: /* heat / cooling load meter */
        return P1_MEDIUM_HEAT;
    case 6:  /* warm water */
    case 7:  /* water */
    case 21: /* hot water */
    case 22: /* cold water */
    case 23: /* dual register water */
        return P1_MEDIUM_WATER;
    case 10: /* cooling load meter, outlet */
    case 11: /* cooling load meter, inlet */
        return P1_MEDIUM_COLD;
    default:
        return P1_MEDIUM_OTHER;
    }
}

/* ----------------------------------------------------------------------------------------------
 * Per-phase electricity objects: C = 21..40 (L1), 41..60 (L2), 61..80 (L3)
 * -------------------------------------------------------------------------------------------- */

/* The per-phase object at1[] does not hold: 31.4.0 (51.4.0, 71.4.0), the current limit of the
 * fuse supervision (BE); LU 1-1:31.4.0 sends (import)(export) limits of the whole meter, not of
 * phase 1. (A Lithuanian meter's is an average: p1_reading_end() moves it.) */
static int reading_phase(p1_reading *r, const p1_object *o, int weak)
{
    unsigned ph = (o->obis.c - 21u) / 20u, base = o->obis.c - 20u * ph;
    const p1_value *v = &o->values[0];
    if (base != 31 || o->obis.d != 4 || o->obis.e != 0)
        return 0;
    if (ph == 0 && o->obis.b == 1) {
        /* LU: the meter's import and export thresholds, a bad value flagged as any other */
        reading_qo(r, o, &r->fuse_limit, v, weak, BAD_OTHER, q_units[Q_A]);
        if (o->nvalues >= 2)
            reading_qo(r, o, &r->fuse_limit_export, &o->values[1], weak, BAD_OTHER, q_units[Q_A]);
        return 1;
    }
    if (ph == 0)
        reading_q(&r->fuse_limit, v, weak, q_units[Q_A]);
    reading_qo(r, o, &r->phase[ph].current_limit, v, weak, BAD_OTHER, q_units[Q_A]);
    if (r->nphases < ph + 1)
        r->nphases = (uint8_t)(ph + 1);
    return 1;
}

/* ----------------------------------------------------------------------------------------------
 * Dispatch. The plain electricity quantities (most of a telegram) through one table lookup, the
 * rest through one switch on the packed A-B:C.D.E key: no string work for numeric objects.
 * -------------------------------------------------------------------------------------------- */

/* at1[C][dslot[D]] for the A=1 objects C.D.0 that only store one value: the field's offset in
 * p1_reading / 8 (bits 0-9), how it is stored (bits 10-11), the phase 1..3 (bits 12-13) whose
 * objects make r->nphases and the quantity's units (q_units[] index, bits 16-19). 0: not in the
 * table (handled below, or unknown). */
enum { AT_Q = 1 /* reading_q() */, AT_COUNT = 2 /* reading_count() */ };
enum { D7 = 1, D8, D24, D32, D36, DSLOTS };
static const uint8_t dslot[256] = {[7] = D7, [8] = D8, [24] = D24, [32] = D32, [36] = D36};
#define AT1(c, d, field, how, ph, q)                                                               \
    [c][d] = (uint32_t)(offsetof(p1_reading, field) / 8 | (how) << 10 | (ph) << 12 | (q) << 16)
#define AT1_PHASE(n)                                                                               \
    AT1(21 + 20 * (n), D7, phase[n].power_import, AT_Q, (n) + 1, Q_KW),                            \
        AT1(22 + 20 * (n), D7, phase[n].power_export, AT_Q, (n) + 1, Q_KW),                        \
        AT1(23 + 20 * (n), D7, phase[n].reactive_import, AT_Q, (n) + 1, Q_KVAR),                   \
        AT1(24 + 20 * (n), D7, phase[n].reactive_export, AT_Q, (n) + 1, Q_KVAR),                   \
        AT1(29 + 20 * (n), D7, phase[n].apparent_import, AT_Q, (n) + 1, Q_KVA),                    \
        AT1(30 + 20 * (n), D7, phase[n].apparent_export, AT_Q, (n) + 1, Q_KVA),                    \
        AT1(31 + 20 * (n), D7, phase[n].current, AT_Q, (n) + 1, Q_A),                              \
        AT1(32 + 20 * (n), D7, phase[n].voltage, AT_Q, (n) + 1, Q_V),                              \
        AT1(33 + 20 * (n), D7, phase[n].power_factor, AT_Q, (n) + 1, Q_PF),                        \
        AT1(36 + 20 * (n), D7, phase[n].power_sum, AT_Q, (n) + 1, Q_KW),                           \
        AT1(32 + 20 * (n), D24, phase[n].voltage_avg, AT_Q, (n) + 1, Q_V),                         \
        AT1(32 + 20 * (n), D32, phase[n].sags, AT_COUNT, (n) + 1, Q_ANY),                          \
        AT1(32 + 20 * (n), D36, phase[n].swells, AT_COUNT, (n) + 1, Q_ANY)
static const uint32_t at1[100][DSLOTS] = {
    AT1(1, D7, power_import, AT_Q, 0, Q_KW),
    AT1(2, D7, power_export, AT_Q, 0, Q_KW),
    AT1(3, D7, reactive_import_power, AT_Q, 0, Q_KVAR),
    AT1(4, D7, reactive_export_power, AT_Q, 0, Q_KVAR),
    AT1(9, D7, apparent_import_power, AT_Q, 0, Q_KVA),
    AT1(10, D7, apparent_export_power, AT_Q, 0, Q_KVA),
    AT1(11, D7, current, AT_Q, 0, Q_A),
    AT1(12, D7, voltage, AT_Q, 0, Q_V),
    AT1(13, D7, power_factor, AT_Q, 0, Q_PF),
    AT1(14, D7, frequency, AT_Q, 0, Q_HZ),
    AT1(91, D7, current_neutral, AT_Q, 0, Q_A),
    AT1(3, D8, reactive_import_energy, AT_Q, 0, Q_KVARH),
    AT1(4, D8, reactive_export_energy, AT_Q, 0, Q_KVARH),
    AT1(5, D8, reactive_q_energy[0], AT_Q, 0, Q_KVARH),
    AT1(6, D8, reactive_q_energy[1], AT_Q, 0, Q_KVARH),
    AT1(7, D8, reactive_q_energy[2], AT_Q, 0, Q_KVARH),
    AT1(8, D8, reactive_q_energy[3], AT_Q, 0, Q_KVARH),
    AT1_PHASE(0),
    AT1_PHASE(1),
    AT1_PHASE(2),
};
_Static_assert(offsetof(p1_reading, phase) + sizeof(p1_phase) * 3 < 8 * 1024,
               "p1_reading: at1[] holds the quantities' offsets / 8 in 10 bits");

/* What p1_reading_add() does not finish inline for a table entry `at`: the general conversion,
 * and the verdict on a value that is none. The energy registers in the table (3.8.0 .. 8.8.0)
 * are totals, the rest other known values. */
READING_COLD static void reading_at1(p1_reading *r, const p1_object *o, unsigned at, int weak)
{
    const p1_value *v = &o->values[0];
    void *field = (char *)r + (at & 0x3FFu) * 8;
    if ((at >> 10 & 3u) == AT_Q) {
        int e = reading_q_general(field, v, weak, q_units[at >> 16]);
        if (e != 0)
            reading_bad(r, o, v, o->obis.d == 8 ? BAD_TOTAL : BAD_OTHER, e == -2);
    } else {
        int64_t *count = field, x;
        if (reading_count(&x, v) != 0)
            reading_bad(r, o, v, BAD_OTHER, 0);
        else if (!weak || *count < 0)
            *count = x;
    }
}

/* Everything p1_reading_add() does not take through at1[]. Kept out of line, so that the common
 * case there needs no stack frame. */
READING_COLD static void reading_add_other(p1_reading *r, const p1_object *o)
{
    const p1_obis *ob = &o->obis;
    r->nobjects++;
    /* An F group other than 255 (sent as ".255" or "*255", or not at all) names a stored value
     * (F = billing period: `1-0:1.8.0*1` is the total at the last one), not the live register. */
    if (o->nvalues == 0 || ob->f != 255 || o->in_block) {
        r->nunknown++; /* ... as are the registers of a block (Holley's last billing period) */
        return;
    }
    const p1_value *v = &o->values[0];

    if (ob->a == 0 && ob->b >= 1 && ob->b <= P1_MBUS_MAX) {
        r->dirty |= DIRTY_MBUS << (ob->b - 1);
        if (!reading_mbus(r, &r->mbus[ob->b - 1], o))
            r->nunknown++;
        return;
    }
    /* B=1 electricity registers (Sagemcom XT211, LU 1-1:31.4.0) stand in for 1-0 ones when the
     * meter does not send those; `weak` makes a 1-0 value win in either order. */
    int weak = ob->a == 1 && ob->b == 1;
    if (ob->a == 1 && ob->b <= 1) {
        if (ob->c >= 21 && ob->c <= 80) {
            if (!reading_phase(r, o, weak))
                r->nunknown++;
            return;
        }
        if ((ob->c == 1 || ob->c == 2) && ob->d == 8 && ob->e >= 1 && ob->e <= P1_TARIFFS_MAX) {
            reading_qo(r, o, ob->c == 1 ? &r->import[ob->e] : &r->export_[ob->e], v, weak,
                       BAD_TOTAL, q_units[Q_KWH]);
            if (r->tariff_top[ob->c - 1] < ob->e)
                r->tariff_top[ob->c - 1] = ob->e;
            r->seen |= SEEN_TARIFF_REG;
            return;
        }
    }
    uint64_t key = weak ? P1_OBIS(1, 0, ob->c, ob->d, ob->e) : p1_obis_key(ob);
    switch (key) {
    case P1_OBIS(1, 3, 0, 2, 8):
        reading_copy(r->version, sizeof r->version, v->raw, v->raw_len);
        r->seen |= SEEN_VERSION;
        break;
    case P1_OBIS(0, 0, 96, 1, 4):
        reading_be_version(r, v);
        r->seen |= SEEN_BE_VERSION;
        break;
    case P1_OBIS(0, 0, 1, 0, 0):
        if (reading_time(&r->time, v))
            r->has_time = 1;
        break;
    case P1_OBIS(1, 0, 16, 7, 0):
        reading_qo(r, o, &r->power_sum, v, weak, BAD_OTHER, q_units[Q_KW]);
        break;
    case P1_OBIS(1, 0, 0, 9, 1): /* local time hhmmss and date yymmdd (an Iskra ME382-like */
    case P1_OBIS(1, 0, 0, 9, 2): /* layout: 1-0:0.9.1(174939), 1-0:0.9.2(260205)) */
        if (!reading_clock_part(r, v, ob->e == 2))
            r->nunknown++;
        break;
    case P1_OBIS(0, 0, 96, 1, 0):
        r->seen |= SEEN_METER_ID;
        reading_id(r, o);
        break;
    case P1_OBIS(0, 0, 42, 0, 0):
        r->seen |= SEEN_LDN;
        reading_id(r, o);
        break;
    case P1_OBIS(1, 0, 0, 0, 0):
        r->seen |= SEEN_ID_0_0_0;
        reading_id(r, o);
        break;
    case P1_OBIS(0, 0, 96, 1, 1):
    case P1_OBIS(0, 0, 96, 1, 255):
        reading_id(r, o);
        break;
    case P1_OBIS(0, 0, 0, 0, 0):
        /* the serial on a Swiss XT211; an Iskra MT382 sent a clock with its letter there */
        if ((v->flags & P1_V_TIME) && v->time.valid && v->time.dst >= 0)
            r->nunknown++;
        else
            reading_id(r, o);
        break;
    case P1_OBIS(1, 0, 1, 8, 0):
        reading_qo(r, o, &r->import_total, v, weak && r->import_total_sent, BAD_TOTAL,
                   q_units[Q_KWH]);
        r->import_total_sent = r->import_total != P1_ABSENT;
        r->seen |= SEEN_TOTAL_REG;
        break;
    case P1_OBIS(1, 0, 2, 8, 0):
        reading_qo(r, o, &r->export_total, v, weak && r->export_total_sent, BAD_TOTAL,
                   q_units[Q_KWH]);
        r->export_total_sent = r->export_total != P1_ABSENT;
        r->seen |= SEEN_TOTAL_REG;
        break;
    case P1_OBIS(0, 0, 96, 7, 21):
        reading_count_o(r, o, &r->power_failures, v);
        break;
    case P1_OBIS(0, 0, 96, 7, 9):
        reading_count_o(r, o, &r->long_power_failures, v);
        break;
    case P1_OBIS(1, 0, 99, 97, 0):
    case P1_OBIS(0, 0, 99, 97, 0):
        if (!(weak && r->failure_log_count >= 0))
            reading_failures(r, o);
        break;
    case P1_OBIS(1, 0, 1, 4, 0):
        reading_qo(r, o, &r->demand_current, v, weak, BAD_OTHER, q_units[Q_KW]);
        r->seen |= SEEN_BE_DEMAND;
        break;
    case P1_OBIS(1, 0, 1, 6, 0):
        reading_peak(r, o, weak);
        r->seen |= SEEN_BE_DEMAND;
        break;
    case P1_OBIS(0, 0, 98, 1, 0):
        if (!reading_history(r, o))
            r->nunknown++;
        break;
    case P1_OBIS(0, 0, 96, 3, 10):
    case P1_OBIS(0, 0, 24, 4, 0): /* DSMR 2.2 spec's breaker code */
        reading_breaker(r, v);
        break;
    case P1_OBIS(0, 0, 96, 50, 68): /* Hungarian meters' breaker state, (ON) or (OFF) only */
        if (reading_lower_eq(v->raw, v->raw_len, "on") ||
            reading_lower_eq(v->raw, v->raw_len, "off"))
            reading_breaker(r, v);
        else
            r->nunknown++;
        break;
    case P1_OBIS(0, 0, 17, 0, 0):
        reading_qo(r, o, &r->limiter, v, 0, BAD_OTHER, q_units[Q_ANY]); /* kW, A or kVA */
        if (r->limiter != P1_ABSENT)
            reading_unit(r->limiter_unit, sizeof r->limiter_unit, v->unit, v->unit_len,
                             v->unit_code);
        break;
    case P1_OBIS(0, 0, 96, 13, 0):
        r->dirty |= DIRTY_TEXT;
        reading_text_all(r->text, sizeof r->text, o);
        break;
    case P1_OBIS(0, 0, 96, 13, 1):
        reading_text_all(r->text_code, sizeof r->text_code, o);
        break;
    case P1_OBIS(0, 0, 96, 14, 0):
        reading_tariff(r, v);
        break;
    case P1_OBIS(0, 0, 96, 14, 1): {
        /* Israel's Kaifa meters: "03" while register 1.8.13 counts; kept aside until the end of
         * the telegram, where it stands in for 0-0:96.14.0 if that gave no number */
        int64_t x;
        if (v->decimals == 0 && reading_int(v, 0, INT16_MAX - 10, &x) == 0)
            r->tariff_alt = (int16_t)x;
        if (!r->tariff_text[0])
            reading_copy(r->tariff_text, sizeof r->tariff_text, v->raw, v->raw_len);
        r->seen |= SEEN_IL_TARIFF;
        break;
    }
    default:
        r->nunknown++;
        break;
    }
}

void p1_reading_add(p1_reading *r, const p1_object *o)
{
    const p1_obis *ob = &o->obis;
    uint32_t at;
    if (o->nvalues && !o->in_block && ob->a == 1 && ob->b <= 1 && ob->e == 0 && ob->f == 255 &&
        ob->c < 100 && (at = at1[ob->c][dslot[ob->d]]) != 0) {
        /* Inline: the quantity and the plain count that most lines are; the rest (and every
         * value that is no number) in reading_at1(). */
        const p1_value *v = &o->values[0];
        void *field = (char *)r + (at & 0x3FFu) * 8;
        unsigned ph = at >> 12 & 3u;
        int weak = ob->b == 1;
        r->nobjects++;
        if (r->nphases < ph)
            r->nphases = (uint8_t)ph;
        if ((at >> 10 & 3u) == AT_Q) {
            if (reading_q_fast(field, v, weak, q_units[at >> 16]))
                return;
        } else if ((v->flags & P1_V_NUMBER) && v->decimals == 0 && v->number >= 0) {
            int64_t *count = field;
            if (!weak || *count < 0)
                *count = v->number;
            return;
        }
        reading_at1(r, o, at, weak);
        return;
    }
    reading_add_other(r, o);
}

/* ----------------------------------------------------------------------------------------------
 * End of telegram: derived facts
 * -------------------------------------------------------------------------------------------- */

/* A power import/export pair from what the meter sent: the positive and negative parts of a net
 * power (`sum`: 16.7.0, 36.7.0 ..) when neither is sent, and a negative import with no export (an
 * EasyMeter Q3DA signs its 1.7.0 and 21.7.0: -116.77 W while it delivers) as that export. */
static void reading_split(p1_micro *import, p1_micro *export_, p1_micro sum)
{
    if (*import == P1_ABSENT && *export_ == P1_ABSENT && sum != P1_ABSENT) {
        *import = sum > 0 ? sum : 0;
        *export_ = sum < 0 ? -sum : 0;
    } else if (*import != P1_ABSENT && *import < 0 && *export_ == P1_ABSENT) {
        *export_ = -*import;
        *import = 0;
    }
}

/* Whether the phases' net powers (36.7.0, 56.7.0, 76.7.0) can be taken as signed: they add up to
 * the net power 16.7.0 (within 2 W and 1 %) or that is not sent. A meter that sends their sizes
 * (an eBZ DD3 telegram: phases +344.88 W and +114.02 W, 16.7.0 -458.90 W) would otherwise show
 * a phase importing while it delivers. */
static int reading_phase_sums_agree(const p1_reading *r)
{
    int64_t sum = 0;
    int any = 0;
    for (int i = 0; i < 3; i++)
        if (r->phase[i].power_sum != P1_ABSENT) {
            sum += r->phase[i].power_sum; /* each within P1_MICRO_MAX: no overflow */
            any = 1;
        }
    if (!any || r->power_sum == P1_ABSENT)
        return any;
    int64_t d = sum - r->power_sum, total = r->power_sum < 0 ? -r->power_sum : r->power_sum;
    return (d < 0 ? -d : d) <= 2000 + total / 100;
}

/* The meter's power from its phases' (21.7.0/22.7.0, 41/42, 61/62), for a meter that sends no
 * total at all (1.7.0, 2.7.0, 16.7.0: Lithuanian ESO meters send the phases, 15.7.0 |+A|+|-A|
 * and averages only): their net sum, split into import and export as a meter nets its phases.
 * Only for a whole telegram without a bad value (the caller's check): one cut off after 21.7.0,
 * or with a garbled 41.7.0 left out, would give too little. A sum that leaves +-P1_MICRO_MAX is
 * left out. */
static void reading_phase_total(p1_reading *r)
{
    if (r->power_import != P1_ABSENT || r->power_export != P1_ABSENT || r->power_sum != P1_ABSENT)
        return;
    /* a meter that sends both directions of a phase sends them for every phase: one without
     * its pair had a value left empty (41.7.0()), which would leave it out of the sum */
    int pairs = 0, singles = 0;
    for (int i = 0; i < 3; i++) {
        int n = (r->phase[i].power_import != P1_ABSENT) + (r->phase[i].power_export != P1_ABSENT);
        pairs += n == 2;
        singles += n == 1;
    }
    if (pairs && singles)
        return;
    int64_t net = 0;
    int any = 0;
    for (int i = 0; i < 6; i++) {
        p1_micro v = i % 2 ? r->phase[i / 2].power_export : r->phase[i / 2].power_import;
        if (v == P1_ABSENT)
            continue;
        net += i % 2 ? -v : v; /* both within P1_MICRO_MAX: no overflow */
        if (net < -P1_MICRO_MAX || net > P1_MICRO_MAX)
            return;
        any = 1;
    }
    if (any)
        reading_split(&r->power_import, &r->power_export, net);
}

/* The sum of tariff registers 1..top; unless `whole`, only when each of 1..max(top, 2) is there.
 * P1_ABSENT when none is present or the sum leaves +-P1_MICRO_MAX (each register is within it, so
 * the running sum never overflows). */
static p1_micro reading_sum(const p1_micro *reg, unsigned top, int whole)
{
    p1_micro s = P1_ABSENT;
    if (!whole && top < 2)
        return P1_ABSENT;
    for (unsigned t = 1; t <= top; t++) {
        if (reg[t] == P1_ABSENT) {
            if (!whole)
                return P1_ABSENT;
            continue;
        }
        if (s == P1_ABSENT)
            s = reg[t];
        else if ((s += reg[t]) < -P1_MICRO_MAX || s > P1_MICRO_MAX)
            return P1_ABSENT;
    }
    return s;
}

/* The lowest tariff register sent, import or export; 0 when none is. */
static unsigned reading_first_tariff(const p1_reading *r)
{
    unsigned top = r->tariff_top[0] > r->tariff_top[1] ? r->tariff_top[0] : r->tariff_top[1];
    for (unsigned t = 1; t <= top; t++)
        if (r->import[t] != P1_ABSENT || r->export_[t] != P1_ABSENT)
            return t;
    return 0;
}

static int reading_mfr(const p1_reading *r, const char *m)
{
    return memcmp(r->header, m, 3) == 0;
}

/* The profile, first match wins:
 *   BE  header FLU, or 0-0:96.1.4 (e-MUCS version; Iskra IE5T in Belgium has another header),
 *       or Iskra's IE.5 header "ISk5\2MIE5T" (its early firmware sent no 0-0:96.1.4)
 *   LU  header Lux
 *   AT  header EST (Energienetze Steiermark)
 *   HU  header SAG without 1-3:0.2.8 (E.ON "/SAG5SAG-METER"; Sagemcom's Dutch MT212,
 *       "/SAG5\2MT212 SMR5.5", sends 1-3:0.2.8), or 0-0:42.0.0 together with 0-0:96.1.0
 *   IL  tariff registers that start at 11 (1.8.11 .. 1.8.13), or 0-0:96.14.1 without tariff
 *       registers: Israel's Kaifa meters, which send the Dutch header "/KFM5KAIFA-METER" and
 *       1-3:0.2.8 (a telegram with 1.8.1 and 1.8.11 .. 13 and 0-0:96.14.1, as a test of all
 *       fields has them, stays Dutch: a wrong guess moves every time by an hour)
 *   LU  0-0:42.0.0 with 1.8.0/2.8.0 and no tariff registers (Smarty behind another header)
 *   LT  header ESO
 *   SE  header ADN (Aidon), ELL (Ellevio), LGF (Landis+Gyr) with 1.8.0/2.8.0 but no tariffs;
 *       or KFM (Kaifa) / KAM (Kamstrup OMNIA) in the Swedish layout: 1.8.0/2.8.0 without tariff
 *       registers, 1-3:0.2.8 or a channel-0 id (a Dutch Kaifa always sends 1.8.1/1.8.2 and
 *       1-3:0.2.8; a Swedish Kaifa MA304 sends "/KFM5KAIFA-METER" with "(210524094210W)" in May)
 *   NL  1-3:0.2.8 (DSMR >= 4; LU and AT sending it were caught above), or a Dutch DSMR
 *       manufacturer (ISk ISK KFM XMX Ene KMP MCS KAM) without a channel-0 meter id
 *       (0-0:96.1.0 or 1-0:0.0.0 mark Iskra's IE meters and the like, not DSMR)
 *   OTHER anything else that had a header or objects; UNKNOWN an empty reading. */
static p1_profile reading_profile(const p1_reading *r)
{
    uint32_t s = r->seen;
    if (reading_mfr(r, "FLU") || (s & SEEN_BE_VERSION) ||
        (reading_mfr(r, "ISk") && strstr(r->header, "MIE5")))
        return P1_PROFILE_BE;
    if (reading_mfr(r, "Lux"))
        return P1_PROFILE_LU;
    if (reading_mfr(r, "EST"))
        return P1_PROFILE_AT;
    if ((reading_mfr(r, "SAG") && !(s & SEEN_VERSION)) || ((s & SEEN_LDN) && (s & SEEN_METER_ID)))
        return P1_PROFILE_HU;
    unsigned first = reading_first_tariff(r);
    if (first >= 11 || ((s & SEEN_IL_TARIFF) && first == 0))
        return P1_PROFILE_IL;
    if ((s & SEEN_LDN) && (s & SEEN_TOTAL_REG) && !(s & SEEN_TARIFF_REG))
        return P1_PROFILE_LU;
    if (reading_mfr(r, "ESO"))
        return P1_PROFILE_LT;
    if ((reading_mfr(r, "ADN") || reading_mfr(r, "ELL") || reading_mfr(r, "LGF")) &&
        !(s & SEEN_TARIFF_REG))
        return P1_PROFILE_SE;
    if ((reading_mfr(r, "KFM") || reading_mfr(r, "KAM")) && (s & SEEN_TOTAL_REG) &&
        !(s & (SEEN_TARIFF_REG | SEEN_VERSION | SEEN_METER_ID | SEEN_ID_0_0_0 | SEEN_LDN)))
        return P1_PROFILE_SE;
    if (s & SEEN_VERSION)
        return P1_PROFILE_NL;
    static const char nl[][4] = {"ISk", "ISK", "KFM", "XMX", "Ene", "KMP", "MCS", "KAM"};
    if (!(s & (SEEN_METER_ID | SEEN_ID_0_0_0)))
        for (size_t i = 0; i < sizeof nl / sizeof nl[0]; i++)
            if (reading_mfr(r, nl[i]))
                return P1_PROFILE_NL;
    if (r->header[0] || r->nobjects)
        return P1_PROFILE_OTHER;
    return P1_PROFILE_UNKNOWN;
}

/* Sets the zone of every time of r, and with `standard` marks them P1_DST_STANDARD (standard
 * time all year, whatever letter was sent). */
static void reading_zone(p1_reading *r, uint8_t zone, int standard)
{
    p1_time *t[1 + P1_MBUS_MAX + 1 + P1_FAILURES_MAX + 2 * P1_DEMAND_MONTHS_MAX];
    size_t n = 0;
    t[n++] = &r->time;
    r->dirty |= DIRTY_MBUS_ALL;
    for (int i = 0; i < P1_MBUS_MAX; i++)
        t[n++] = &r->mbus[i].time;
    if (r->demand_peak != P1_ABSENT)
        t[n++] = &r->demand_peak_time;
    for (int i = 0; i < r->nfailures; i++) /* those written: already marked dirty */
        t[n++] = &r->failures[i].end;
    for (int i = 0; i < r->ndemand_months; i++) {
        t[n++] = &r->demand_months[i].month;
        t[n++] = &r->demand_months[i].peak_time;
    }
    for (size_t i = 0; i < n; i++) {
        t[i]->zone = zone;
        if (standard)
            t[i]->dst = P1_DST_STANDARD;
    }
}

p1_error p1_reading_end(p1_reading *r, const p1_telegram *t)
{
    if (!r->header[0] && t && t->header) {
        size_t n = t->header_len < P1_HEADER_MAX ? t->header_len : P1_HEADER_MAX;
        memcpy(r->header, t->header, n);
        r->header[n] = '\0';
    }
    /* A telegram accepted without an end line (a DSMR 2.2/3.0 one completed by the next header,
     * an idle line or the end of the input) may have been cut off after any line, and some
     * DSMR 2.2 meters never send one. Its total is summed only when every tariff register from
     * 1 up to the highest sent (at least 2, as DSMR meters send) is there: a sum of tariff 1
     * alone from a cut telegram is a total that drops and comes back, booked downstream as a
     * meter reset and phantom use. So is a telegram cut off by a new header or rejected as
     * too long, and one with a bad value in a register (left out of the reading): `p1 decode`
     * shows a rejected telegram's reading, which must not hold such a sum either. */
    int whole = (!t || t->has_end_line) && !(r->bad & (1u << BAD_TOTAL));
    if (!r->import_total_sent)
        r->import_total = reading_sum(r->import, r->tariff_top[0], whole);
    if (!r->export_total_sent)
        r->export_total = reading_sum(r->export_, r->tariff_top[1], whole);

    /* only a net power (16.7.0, 36.7.0 ..): at one connection import and export never both flow */
    reading_split(&r->power_import, &r->power_export, r->power_sum);
    int signed_phases = reading_phase_sums_agree(r);
    for (int i = 0; i < 3; i++)
        reading_split(&r->phase[i].power_import, &r->phase[i].power_export,
                      signed_phases ? r->phase[i].power_sum : P1_ABSENT);
    if (whole && !(r->bad & (1u << BAD_OTHER)))
        reading_phase_total(r);
    if (r->power_import != P1_ABSENT || r->power_export != P1_ABSENT) {
        p1_micro in = r->power_import != P1_ABSENT ? r->power_import : 0;
        p1_micro out = r->power_export != P1_ABSENT ? r->power_export : 0;
        p1_micro net;
        /* both within P1_MICRO_MAX: no overflow, the result only has to stay within it too */
        net = in - out;
        r->power_net = net < -P1_MICRO_MAX || net > P1_MICRO_MAX ? P1_ABSENT : net;
    }

    for (int i = 0; i < P1_MBUS_MAX; i++) {
        p1_mbus *m = &r->mbus[i];
        if (!m->present)
            continue;
        /* Without 24.1.0 the unit decides. Litres are water: the decoder turns them into m3 as
         * it does dm3, but gas meters count m3 (dm3 at most), water meters litres too. */
        if (m->type >= 0)
            m->medium = reading_medium(m->type);
        else if (m->unit_code == P1_UNIT_L)
            m->medium = P1_MEDIUM_WATER;
        else if (strcmp(m->unit, "m3") == 0)
            m->medium = P1_MEDIUM_GAS;
        else if (strcmp(m->unit, "GJ") == 0)
            m->medium = P1_MEDIUM_HEAT;
        else
            m->medium = P1_MEDIUM_UNKNOWN;
    }

    if (!r->has_time && r->clock_parts == 3) {
        /* a clock sent as 1-0:0.9.2 and 1-0:0.9.1: no letter, the calendar gives the offset */
        r->time.dst = P1_DST_NONE;
        r->time.zone = P1_ZONE_CET;
        r->has_time = (uint8_t)p1i_time_check(&r->time);
    }
    r->profile = reading_profile(r);
    /* Swedish meters keep normal time (UTC+1) all year; their letter only says whether summer
     * time is in force elsewhere. Lithuanian meters keep Lithuania's time: Eastern European,
     * UTC+2 and in summer UTC+3; Israeli meters Israel's. Mark the times so that p1_time_to_unix()
     * gives the instants. */
    if (r->profile == P1_PROFILE_SE)
        reading_zone(r, P1_ZONE_CET, 1);
    else if (r->profile == P1_PROFILE_LT)
        reading_zone(r, P1_ZONE_EET, 0);
    if (r->profile == P1_PROFILE_LU && r->limiter != P1_ABSENT && !r->limiter_unit[0])
        memcpy(r->limiter_unit, "kVA", 4); /* Smarty's 0-0:17.0.0 is SMAX, kVA, sent bare */
    if (r->profile == P1_PROFILE_LT) {
        /* ESO's 31.4.0 is below the live current (3 A while 31.7.0 says 5 A): an average, as
         * its 1.4.0 .. 10.4.0 are, not a fuse threshold */
        for (int i = 0; i < 3; i++)
            if (r->phase[i].current_limit != P1_ABSENT) { /* so a second call changes nothing */
                r->phase[i].current_avg = r->phase[i].current_limit;
                r->phase[i].current_limit = P1_ABSENT;
            }
        r->fuse_limit = r->fuse_limit_export = P1_ABSENT;
    } else if (r->profile == P1_PROFILE_IL)
        reading_zone(r, P1_ZONE_IL, 0); /* UTC+2, summer UTC+3 by Israel's own rule */
    if (r->tariff < 0 && r->tariff_alt >= 0) {
        /* 0-0:96.14.1 counts 1, 2, 3 for the registers 11, 12, 13 */
        int k = r->tariff_alt;
        if (k >= 1 && k <= 9 && k + 10 <= P1_TARIFFS_MAX &&
            (reading_first_tariff(r) >= 11 || r->import[k + 10] != P1_ABSENT ||
             r->export_[k + 10] != P1_ABSENT))
            k += 10;
        r->tariff = (int16_t)k;
    }
    r->tariff_scheme = r->profile == P1_PROFILE_NL   ? P1_TARIFFS_NL
                       : r->profile == P1_PROFILE_BE ? P1_TARIFFS_BE
                                                     : P1_TARIFFS_UNKNOWN;

    /* A bad total always rejects: a total without one of its tariffs, or a gas total that
     * vanishes, is booked downstream as a meter reset and phantom use, and the next telegram
     * comes seconds later. Any other bad value only rejects when no valid CRC vouched for the
     * bytes (DSMR 2.2/3.0 send none; crc = ignore): then it is most likely line noise, while
     * with a valid CRC the meter really sent that form, and the rest of its telegram is good. */
    int kind = -1;
    if (r->bad & (1u << BAD_OTHER) && !(t && t->crc == P1_CRC_VALID))
        kind = BAD_OTHER;
    if (r->bad & (1u << BAD_TOTAL) &&
        (kind < 0 || r->bad_offset[BAD_TOTAL] < r->bad_offset[BAD_OTHER]))
        kind = BAD_TOTAL;
    if (kind >= 0) {
        r->error = (p1_error)r->bad_code[kind];
        r->error_offset = r->bad_offset[kind];
        r->error_obis = r->bad_obis[kind];
        memcpy(r->error_unit, r->bad_unit[kind], sizeof r->error_unit);
    }
    return t && t->error != P1_ERR_OK ? t->error : r->error;
}

p1_error p1_reading_warning(const p1_reading *r, p1_obis *obis, uint64_t *offset, char *unit,
                            size_t unit_cap)
{
    if (r->error != P1_ERR_OK || !(r->bad & (1u << BAD_OTHER)))
        return P1_ERR_OK;
    const char *u = r->bad_unit[BAD_OTHER];
    size_t n = 0;
    while (n < sizeof r->bad_unit[BAD_OTHER] && u[n])
        n++;
    *obis = r->bad_obis[BAD_OTHER];
    *offset = r->bad_offset[BAD_OTHER];
    reading_copy(unit, unit_cap, u, n);
    return (p1_error)r->bad_code[BAD_OTHER];
}

const p1_telegram *p1_reading_verdict(const p1_reading *r, const p1_telegram *t,
                                      p1_telegram *copy)
{
    if (t->error != P1_ERR_OK || r->error == P1_ERR_OK)
        return t;
    *copy = *t;
    copy->error = r->error;
    copy->error_offset = r->error_offset;
    return copy;
}

/* Orders two capture times; an invalid time is older than any valid one. */
static int reading_newer(const p1_time *a, const p1_time *b)
{
    int64_t ua, ub;
    int va = p1_time_to_unix(a, &ua) == 0, vb = p1_time_to_unix(b, &ub) == 0;
    if (va != vb)
        return va > vb;
    return va && ua > ub;
}

int p1_mbus_has_value(const p1_mbus *m)
{
    return m && m->present && m->value != P1_ABSENT && (m->value != 0 || m->time.valid);
}

p1_micro p1_mbus_gj(const p1_mbus *m)
{
    if (!p1_mbus_has_value(m))
        return P1_ABSENT;
    if (!m->unit[0] || strcmp(m->unit, "GJ") == 0)
        return m->value;
    if (strcmp(m->unit, "kWh") != 0)
        return P1_ABSENT;
    /* x kWh = x * 36 / 10000 GJ, rounded half away from zero; |value| < 2^63 / 36 holds for any
     * register a meter can show (2.5e11 kWh), a larger one is no reading. */
    const int64_t lim = INT64_MAX / 36;
    if (m->value > lim || m->value < -lim)
        return P1_ABSENT;
    int64_t x = m->value * 36;
    return x >= 0 ? (x + 5000) / 10000 : -((-x + 5000) / 10000);
}

p1_micro p1_mbus_m3(const p1_mbus *m)
{
    if (!p1_mbus_has_value(m))
        return P1_ABSENT;
    return !m->unit[0] || strcmp(m->unit, "m3") == 0 ? m->value : P1_ABSENT;
}

p1_micro p1_mbus_kept(const p1_mbus *m)
{
    return m && m->medium == P1_MEDIUM_HEAT ? p1_mbus_gj(m) : p1_mbus_m3(m);
}

static p1_micro phase_or_single(const p1_reading *r, int p, p1_micro v, p1_micro single)
{
    return p == 0 && v == P1_ABSENT && r->nphases <= 1 ? single : v;
}

p1_micro p1_phase_voltage(const p1_reading *r, int p)
{
    return phase_or_single(r, p, r->phase[p].voltage, r->voltage);
}

p1_micro p1_phase_current(const p1_reading *r, int p)
{
    return phase_or_single(r, p, r->phase[p].current, r->current);
}

int p1_reading_mbus_find(const p1_reading *r, p1_medium medium)
{
    int best = -1;
    for (int i = 0; i < P1_MBUS_MAX; i++) {
        const p1_mbus *m = &r->mbus[i];
        if (!m->present || m->medium != medium)
            continue;
        if (best < 0) {
            best = i;
            continue;
        }
        const p1_mbus *b = &r->mbus[best];
        int mval = p1_mbus_has_value(m), bval = p1_mbus_has_value(b);
        if (mval != bval) {
            if (mval)
                best = i;
            continue;
        }
        int mid = m->id[0] != '\0', bid = b->id[0] != '\0';
        if (mid != bid) {
            if (mid)
                best = i;
            continue;
        }
        if (reading_newer(&m->time, &b->time))
            best = i;
    }
    return best;
}

const char *p1_medium_name(p1_medium m)
{
    switch (m) {
    case P1_MEDIUM_GAS:
        return "gas";
    case P1_MEDIUM_WATER:
        return "water";
    case P1_MEDIUM_HEAT:
        return "heat";
    case P1_MEDIUM_COLD:
        return "cold";
    case P1_MEDIUM_ELECTRICITY:
        return "electricity";
    case P1_MEDIUM_OTHER:
        return "other";
    case P1_MEDIUM_UNKNOWN:
    default:
        return "unknown";
    }
}

const char *p1_profile_name(p1_profile p)
{
    switch (p) {
    case P1_PROFILE_NL:
        return "nl";
    case P1_PROFILE_BE:
        return "be";
    case P1_PROFILE_LU:
        return "lu";
    case P1_PROFILE_AT:
        return "at";
    case P1_PROFILE_SE:
        return "se";
    case P1_PROFILE_LT:
        return "lt";
    case P1_PROFILE_HU:
        return "hu";
    case P1_PROFILE_IL:
        return "il";
    case P1_PROFILE_OTHER:
        return "other";
    case P1_PROFILE_UNKNOWN:
    default:
        return "unknown";
    }
}
