/* sim.c: a simulated DSMR 5.0 household meter: appliances, solar, heating, tariffs and faults. */
#include "sim.h"

#include <errno.h>
#include <string.h>

#include "civil.h"
#include "p1/p1.h"

/* Integer arithmetic only: the stream must be byte-identical for a seed on every machine, and
 * the registers must integrate power exactly (joules in, watt-hours out) so they never drift.
 * Appliance schedules and weather are pure functions of (seed, time) so that a day simulated
 * at 1 s and at 10 s intervals shows the same household; only the measurement noise comes from
 * the running generator. */

#define DAY           86400
#define GAS_CAPTURE_S 300        /* DSMR 5: M-Bus values are captured every 5 minutes */
#define SIM_EPOCH     1420070400 /* 2015-01-01T00:00:00Z: the registers count from here */

enum {
    SALT_BASE = 1,
    SALT_FRIDGE,
    SALT_LUNCH,
    SALT_DINNER,
    SALT_COOK_LEVEL,
    SALT_WASHER,
    SALT_DISHWASHER,
    SALT_KETTLE_AM,
    SALT_KETTLE_PM,
    SALT_SMALL,
    SALT_EVENING,
    SALT_CLOUD_DAY,
    SALT_CLOUD,
    SALT_HEAT,
    SALT_SHOWER,
    SALT_VOLT,
    SALT_ID,
    SALT_COUNTERS,
    SALT_FAILURES,
};

/* ---- deterministic randomness ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: a good avalanche for hashing (seed, salt, time slot) */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash3(uint64_t seed, uint64_t salt, int64_t k)
{
    return mix64(seed ^ mix64((salt << 40) ^ (uint64_t)k ^ 0x9e3779b97f4a7c15ULL));
}

/* A value in lo..hi drawn from (seed, salt, k). */
static int64_t hrange(const sim *s, uint64_t salt, int64_t k, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(hash3(s->opt.seed, salt, k) % (uint64_t)(hi - lo + 1));
}

/* Smooth noise 0..1000: random values at every `block` seconds, linearly interpolated. */
static int64_t hsmooth(const sim *s, uint64_t salt, int64_t t, int64_t block)
{
    int64_t k = t / block, r = t % block;
    int64_t a = hrange(s, salt, k, 0, 1000), b = hrange(s, salt, k + 1, 0, 1000);
    return a + (b - a) * r / block;
}

/* xorshift64*: the running generator for measurement noise and fault decisions. */
static uint64_t rng_next(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static int64_t rng_range(uint64_t *st, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(st) % (uint64_t)(hi - lo + 1));
}

/* ---- calendar, CET/CEST ---------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void sim_local_time(int64_t t, sim_tm *out)
{
    civil_tm l;
    civil_local_in(P1_ZONE_CET, t, &l); /* a Dutch meter, wherever p1d runs */
    out->year = l.year;
    out->month = l.month;
    out->day = l.day;
    out->hour = l.hour;
    out->minute = l.minute;
    out->second = l.second;
    out->weekday = l.wday;
    out->yday = l.yday;
    out->dst = l.offset == 7200;
}

int64_t sim_unix_time(int year, int month, int day, int hour, int minute, int second, int dst)
{
    int64_t local = p1_days_from_civil(year, (unsigned)month, (unsigned)day) * DAY + hour * 3600 +
                    minute * 60 + second;
    if (dst == 1)
        return local - 7200;
    if (dst == 0)
        return local - 3600;
    return civil_local_to_utc_in(P1_ZONE_CET, local);
}

int64_t sim_time(const sim *s)
{
    return s->t;
}

/* ---- the household ---------------------------------------------------------------------- */

/* Summer factor 0..1000: 1000 at the June solstice, 0 at the December one (smoothstep). */
static int64_t summer_factor(int yday)
{
    int64_t d = yday - 171;
    if (d < 0)
        d = -d;
    if (d > 182)
        d = 365 - d;
    if (d < 0)
        d = 0;
    int64_t u = d * 1000 / 183; /* 0..1000 */
    int64_t smooth = (3 * u * u * 1000 - 2 * u * u * u) / 1000000;
    return 1000 - smooth;
}

/* Where a running program is: elapsed seconds since today's start, or -1 when not running. */
static int64_t elapsed(int64_t sod, int64_t start, int64_t duration)
{
    return (sod >= start && sod < start + duration) ? sod - start : -1;
}

typedef struct household {
    int64_t phase_load[3]; /* W per phase (before solar) */
    int64_t solar;
    int64_t gas_lph;
} household;

/* Cooking power at this moment (0 when nobody cooks); lunch some days, dinner most days. */
static int64_t cooking_w(const sim *s, int64_t t, int64_t lday, int64_t sod)
{
    int64_t peak = 0;
    if (hrange(s, SALT_LUNCH, lday, 0, 99) < 60) {
        int64_t st = 11 * 3600 + 45 * 60 + hrange(s, SALT_LUNCH, lday + 1000000, 0, 2700);
        int64_t dur = 900 + hrange(s, SALT_LUNCH, lday + 2000000, 0, 900);
        if (elapsed(sod, st, dur) >= 0)
            peak = 1500 + hrange(s, SALT_LUNCH, lday + 3000000, 0, 1000);
    }
    if (hrange(s, SALT_DINNER, lday, 0, 99) < 92) {
        int64_t st = 17 * 3600 + 30 * 60 + hrange(s, SALT_DINNER, lday + 1000000, 0, 3600);
        int64_t dur = 1800 + hrange(s, SALT_DINNER, lday + 2000000, 0, 900);
        if (elapsed(sod, st, dur) >= 0)
            peak = 2000 + hrange(s, SALT_DINNER, lday + 3000000, 0, 1500);
    }
    if (peak == 0)
        return 0;
    /* induction zones switch between power levels every 20 s or so */
    return peak * hrange(s, SALT_COOK_LEVEL, t / 20, 400, 1000) / 1000;
}

static int64_t washer_w(const sim *s, int64_t lday, int64_t sod)
{
    if (hrange(s, SALT_WASHER, lday, 0, 6) >= 3)
        return 0;
    int64_t e = elapsed(sod, 9 * 3600 + hrange(s, SALT_WASHER, lday + 1000000, 0, 10 * 3600), 5400);
    if (e < 0)
        return 0;
    if (e < 180)
        return 60; /* filling */
    if (e < 1080)
        return 2000; /* heating the water */
    if (e < 4500)
        return (e / 30) % 2 ? 300 : 80; /* tumbling */
    if (e < 5100)
        return 500; /* spinning */
    return 5;
}

static int64_t dishwasher_w(const sim *s, int64_t lday, int64_t sod)
{
    if (hrange(s, SALT_DISHWASHER, lday, 0, 6) >= 4)
        return 0;
    int64_t e = elapsed(sod, 20 * 3600 + hrange(s, SALT_DISHWASHER, lday + 1000000, 0, 5400), 5400);
    if (e < 0)
        return 0;
    if (e < 300)
        return 80;
    if (e < 1200)
        return 2000;
    if (e < 3000)
        return 120;
    if (e < 3900)
        return 2000;
    return 30; /* drying */
}

static int64_t kettle_w(const sim *s, int64_t lday, int64_t sod)
{
    int64_t w = 0;
    if (elapsed(sod, 6 * 3600 + 50 * 60 + hrange(s, SALT_KETTLE_AM, lday, 0, 3600), 150) >= 0)
        w = 2000;
    if (hrange(s, SALT_KETTLE_PM, lday, 0, 1) &&
        elapsed(sod, 15 * 3600 + hrange(s, SALT_KETTLE_PM, lday + 1000000, 0, 7200), 150) >= 0)
        w = 2000;
    return w;
}

/* Solar production: a bell around solar noon (11:40 UTC in the Netherlands), wider and higher
 * in summer, times a cloud factor that is steady on clear days and erratic on mixed ones. */
static int64_t solar_w(const sim *s, int64_t t, int64_t summer)
{
    int64_t sod = t - floor_div(t, DAY) * DAY;
    int64_t half = 14040 + 15480 * summer / 1000; /* 3.9 h .. 8.2 h */
    int64_t x = (sod - 42000) * 1000 / half;      /* -1000..1000 in daylight */
    if (x <= -1000 || x >= 1000)
        return 0;
    int64_t one_minus = 1000 - x * x / 1000;
    int64_t bell = one_minus * one_minus / 1000; /* (1 - x^2)^2 */
    int64_t peak = 800 + 2900 * summer / 1000;
    int64_t uday = floor_div(t, DAY);
    int64_t kind = hrange(s, SALT_CLOUD_DAY, uday, 0, 9);
    int64_t cloud; /* 0..1000 */
    if (kind < 4)
        cloud = 920 + hsmooth(s, SALT_CLOUD, t, 600) / 12; /* clear */
    else if (kind < 8)
        cloud = 250 + hsmooth(s, SALT_CLOUD, t, 90) * 3 / 4; /* passing clouds */
    else
        cloud = 150 + hsmooth(s, SALT_CLOUD, t, 900) / 4; /* overcast */
    return peak * bell / 1000 * cloud / 1000;
}

/* Gas flow in litres per hour: central heating by a thermostat schedule scaled by the season,
 * a morning shower and the gas hob while cooking. */
static int64_t gas_lph(const sim *s, int64_t t, int64_t lday, int64_t sod, int weekday,
                       int64_t summer, int cooking)
{
    int64_t winter = 1000 - summer;
    int64_t heat;
    if (sod < 6 * 3600 + 1800)
        heat = 80;
    else if (sod < 8 * 3600 + 1800)
        heat = 1100;
    else if (sod < 17 * 3600)
        heat = 350;
    else if (sod < 22 * 3600 + 1800)
        heat = 750;
    else
        heat = 80;
    heat = heat * winter / 1000 * (420 + hsmooth(s, SALT_HEAT, t, 600) * 56 / 100) / 1000;
    if (heat < 40)
        heat = 0; /* the boiler does not modulate that low; in summer it stays off */
    int64_t start = (weekday == 0 || weekday == 6) ? 9 * 3600 : 6 * 3600 + 2700;
    if (elapsed(sod, start + hrange(s, SALT_SHOWER, lday, 0, 3600), 540) >= 0)
        heat += 1800;
    if (cooking)
        heat += 200;
    return heat;
}

static void simulate(sim *s, const sim_tm *tm, household *h)
{
    int64_t t = s->t;
    int64_t lday = p1_days_from_civil(tm->year, (unsigned)tm->month, (unsigned)tm->day);
    int64_t sod = tm->hour * 3600 + tm->minute * 60 + tm->second;
    int64_t summer = summer_factor(tm->yday);
    int64_t base = 150 + hsmooth(s, SALT_BASE, t, 900) / 10; /* 150..250 W */
    int64_t fridge = (t + s->fridge_phase) % s->fridge_period < 1200 ? 100 : 0;
    int64_t cook = cooking_w(s, t, lday, sod);
    int64_t evening = 0;
    if (sod >= 19 * 3600 && sod < 23 * 3600 + 1800)
        evening = 120 + hsmooth(s, SALT_EVENING, t, 300) * 80 / 1000; /* lights, TV */
    else if (sod >= 6 * 3600 + 1800 && sod < 8 * 3600)
        evening = 60 + 60 * (1000 - summer) / 1000; /* morning lights */
    int64_t small = 0, small_phase = 0;
    int64_t blk = t / 600;
    if (hrange(s, SALT_SMALL, blk, 0, 99) < 12 && sod >= 7 * 3600 && sod < 23 * 3600) {
        int64_t off = hrange(s, SALT_SMALL, blk + 1000000000, 0, 420);
        int64_t dur = hrange(s, SALT_SMALL, blk + 2000000000, 60, 300);
        int64_t in = t - blk * 600;
        if (in >= off && in < off + dur) {
            small = hrange(s, SALT_SMALL, blk + 3000000000LL, 600, 1500); /* microwave, toaster */
            small_phase = hrange(s, SALT_SMALL, blk + 4000000000LL, 0, 2);
        }
    }
    h->gas_lph = s->opt.gas ? gas_lph(s, t, lday, sod, tm->weekday, summer, cook > 0) : 0;
    int64_t pump = h->gas_lph > 100 ? 60 : 0;
    h->solar = s->opt.solar ? solar_w(s, t, summer) : 0;

    int64_t *p = h->phase_load;
    p[0] = base * 40 / 100 + washer_w(s, lday, sod) + kettle_w(s, lday, sod) + pump;
    p[1] = base * 35 / 100 + fridge + cook / 2 + evening;
    p[2] =
        base - base * 40 / 100 - base * 35 / 100 + (cook - cook / 2) + dishwasher_w(s, lday, sod);
    p[small_phase] += small;
    for (int i = 0; i < 3; i++)
        p[i] += rng_range(&s->rng, -12, 12); /* everything else that hums */
    if (s->opt.phases == 1) {
        p[0] += p[1] + p[2];
        p[1] = p[2] = 0;
    }
}

/* ---- the telegram ----------------------------------------------------------------------- */

typedef struct wbuf {
    char *p;
    size_t len, cap;
    int overflow;
} wbuf;

static void put(wbuf *w, const char *str, size_t n)
{
    if (w->len + n > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, str, n);
    w->len += n;
}

static void puts_(wbuf *w, const char *str)
{
    put(w, str, strlen(str));
}

/* Unsigned decimal with leading zeros to `width` digits (more digits when needed). */
static void put_uint(wbuf *w, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width && n < (int)sizeof tmp)
        tmp[sizeof tmp - 1 - n++] = '0';
    put(w, tmp + sizeof tmp - n, (size_t)n);
}

/* A fixed-point number `v / 10^dec` printed as F(int_digits, dec), e.g. 01.234. */
static void put_fixed(wbuf *w, int64_t v, int int_digits, int dec)
{
    uint64_t scale = 1;
    for (int i = 0; i < dec; i++)
        scale *= 10;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    put_uint(w, u / scale, int_digits);
    put(w, ".", 1);
    put_uint(w, u % scale, dec);
}

static void put_tst(wbuf *w, int64_t t)
{
    sim_tm tm;
    sim_local_time(t, &tm);
    put_uint(w, (uint64_t)(tm.year % 100), 2);
    put_uint(w, (uint64_t)tm.month, 2);
    put_uint(w, (uint64_t)tm.day, 2);
    put_uint(w, (uint64_t)tm.hour, 2);
    put_uint(w, (uint64_t)tm.minute, 2);
    put_uint(w, (uint64_t)tm.second, 2);
    put(w, tm.dst ? "S" : "W", 1);
}

static void put_hex_text(wbuf *w, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        char pair[2] = {hex[*c >> 4], hex[*c & 15]};
        put(w, pair, 2);
    }
}

static void put_obj(wbuf *w, const char *obis)
{
    puts_(w, obis);
    put(w, "(", 1);
}

static void put_end(wbuf *w)
{
    puts_(w, ")\r\n");
}

/* "1-0:1.8.1(000123.456*kWh)": joules shown as kWh with 3 decimals (whole Wh, truncated). */
static void put_kwh(wbuf *w, const char *obis, int64_t joules)
{
    put_obj(w, obis);
    put_fixed(w, joules / 3600 % 1000000000, 6, 3);
    puts_(w, "*kWh");
    put_end(w);
}

static void put_kw(wbuf *w, const char *obis, int64_t watts)
{
    put_obj(w, obis);
    put_fixed(w, watts > 99999 ? 99999 : watts, 2, 3);
    puts_(w, "*kW");
    put_end(w);
}

static void put_count(wbuf *w, const char *obis, uint32_t n)
{
    put_obj(w, obis);
    put_uint(w, n % 100000, 5);
    put_end(w);
}

static const char *const obis_volt[3] = {"1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0"};
static const char *const obis_amp[3] = {"1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0"};
static const char *const obis_pimp[3] = {"1-0:21.7.0", "1-0:41.7.0", "1-0:61.7.0"};
static const char *const obis_pexp[3] = {"1-0:22.7.0", "1-0:42.7.0", "1-0:62.7.0"};
static const char *const obis_sag[3] = {"1-0:32.32.0", "1-0:52.32.0", "1-0:72.32.0"};
static const char *const obis_swell[3] = {"1-0:32.36.0", "1-0:52.36.0", "1-0:72.36.0"};

static void format_telegram(const sim *s, wbuf *w)
{
    const sim_sample *m = &s->last;
    int np = s->opt.phases == 1 ? 1 : 3;
    puts_(w, "/P1D5\\2SIM-ESMR5.0\r\n\r\n");
    puts_(w, "1-3:0.2.8(50)\r\n");
    put_obj(w, "0-0:1.0.0");
    put_tst(w, s->t);
    put_end(w);
    put_obj(w, "0-0:96.1.1");
    put_hex_text(w, s->meter_id);
    put_end(w);
    put_kwh(w, "1-0:1.8.1", s->import_j[0]);
    put_kwh(w, "1-0:1.8.2", s->import_j[1]);
    put_kwh(w, "1-0:2.8.1", s->export_j[0]);
    put_kwh(w, "1-0:2.8.2", s->export_j[1]);
    puts_(w, m->tariff == 2 ? "0-0:96.14.0(0002)\r\n" : "0-0:96.14.0(0001)\r\n");
    put_kw(w, "1-0:1.7.0", m->import_w);
    put_kw(w, "1-0:2.7.0", m->export_w);
    put_count(w, "0-0:96.7.21", s->failures);
    put_count(w, "0-0:96.7.9", s->long_failures);
    put_obj(w, "1-0:99.97.0");
    put_uint(w, s->long_failures, 1);
    puts_(w, ")(0-0:96.7.19");
    for (uint32_t i = 0; i < s->long_failures && i < 2; i++) {
        puts_(w, ")(");
        put_tst(w, s->failure_end[i]);
        puts_(w, ")(");
        put_uint(w, s->failure_s[i], 10);
        puts_(w, "*s");
    }
    put_end(w);
    for (int i = 0; i < np; i++)
        put_count(w, obis_sag[i], s->sags[i]);
    for (int i = 0; i < np; i++)
        put_count(w, obis_swell[i], s->swells[i]);
    put_obj(w, "0-0:96.13.0");
    /* a message from the grid operator on a few telegrams a day */
    if (s->t % 21600 >= 1800 && s->t % 21600 < 1860)
        put_hex_text(w, "p1d simulated meter: all is well");
    put_end(w);
    for (int i = 0; i < np; i++) {
        put_obj(w, obis_volt[i]);
        put_fixed(w, m->voltage_dv[i], 3, 1);
        puts_(w, "*V");
        put_end(w);
    }
    for (int i = 0; i < np; i++) {
        put_obj(w, obis_amp[i]);
        put_uint(w, (uint64_t)m->current_a[i], 3);
        puts_(w, "*A");
        put_end(w);
    }
    for (int i = 0; i < np; i++)
        put_kw(w, obis_pimp[i], m->phase_w[i] > 0 ? m->phase_w[i] : 0);
    for (int i = 0; i < np; i++)
        put_kw(w, obis_pexp[i], m->phase_w[i] < 0 ? -m->phase_w[i] : 0);
    if (s->opt.gas) {
        puts_(w, "0-1:24.1.0(003)\r\n");
        put_obj(w, "0-1:96.1.0");
        put_hex_text(w, s->gas_id);
        put_end(w);
        put_obj(w, "0-1:24.2.1");
        put_tst(w, s->gas_capture);
        puts_(w, ")(");
        put_fixed(w, s->gas_shown_l % 100000000, 5, 3);
        puts_(w, "*m3");
        put_end(w);
    }
    put(w, "!", 1);
    if (w->overflow)
        return;
    static const char hex[] = "0123456789ABCDEF";
    uint16_t crc = p1_crc16(0, w->p, w->len);
    char end[6] = {
        hex[crc >> 12], hex[(crc >> 8) & 15], hex[(crc >> 4) & 15], hex[crc & 15], '\r', '\n'};
    put(w, end, sizeof end);
}

/* ---- the public functions ------------------------------------------------------------- */

void sim_options_default(sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->start = 1704067200; /* 2024-01-01T00:00:00Z */
    o->interval = 1;
    o->phases = 3;
    o->gas = 1;
    o->solar = 1;
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SIM_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] < ' ' || id[i] > '~')
            return 0;
    return 1;
}

/* "E0053" + 12 digits: the shape of real Dutch equipment ids (gas meters start with G). */
static void make_id(char *out, char kind, uint64_t h)
{
    out[0] = kind;
    memcpy(out + 1, "0053", 4);
    for (int i = 0; i < 12; i++) {
        out[5 + i] = (char)('0' + h % 10);
        h /= 10;
    }
    out[17] = '\0';
}

int sim_init(sim *s, const sim_options *o)
{
    sim_options def;
    if (!o) {
        sim_options_default(&def);
        o = &def;
    }
    if ((o->phases != 1 && o->phases != 3) || o->interval < 1 || o->interval > SIM_INTERVAL_MAX ||
        o->start < SIM_START_MIN || o->start >= SIM_START_MAX || o->fault_crc > SIM_RATE_ONE ||
        o->fault_truncate > SIM_RATE_ONE || o->fault_garbage > SIM_RATE_ONE || o->gas > 1 ||
        o->solar > 1 || (o->meter_id && !id_ok(o->meter_id)))
        return -EINVAL;
    memset(s, 0, sizeof *s);
    s->opt = *o;
    if (o->meter_id) {
        memcpy(s->meter_id, o->meter_id, strlen(o->meter_id) + 1);
    } else {
        make_id(s->meter_id, 'E', hash3(o->seed, SALT_ID, 0));
    }
    s->opt.meter_id = s->meter_id;
    make_id(s->gas_id, 'G', hash3(o->seed, SALT_ID, 1));
    s->t = o->start;
    s->rng = mix64(o->seed ^ 0x5157a11ce5eedULL) | 1;
    s->frng = mix64(o->seed ^ 0xfa017fa017ULL) | 1;
    /* The registers hold what the household used since it moved in (2015, at about the
     * simulation's own yearly average, rounded up), so a restart at a later start continues
     * from a plausible, usually higher value instead of starting over. */
    int64_t years = o->start > SIM_EPOCH ? o->start - SIM_EPOCH : 0; /* in seconds */
    s->import_j[0] = hrange(s, SALT_COUNTERS, 0, 1000000, 5000000) * 3600 + years * 155;
    s->import_j[1] = hrange(s, SALT_COUNTERS, 1, 1000000, 5000000) * 3600 + years * 160;
    s->export_j[0] =
        o->solar ? hrange(s, SALT_COUNTERS, 2, 100000, 900000) * 3600 + years * 105 : 0;
    s->export_j[1] =
        o->solar ? hrange(s, SALT_COUNTERS, 3, 100000, 900000) * 3600 + years * 265 : 0;
    if (o->gas) {
        /* 170 L/h on average: mL*s/h grows by 170000 per second */
        s->gas_acc = hrange(s, SALT_COUNTERS, 4, 500000, 3000000) * 3600 * 1000 + years * 170000;
        s->gas_shown_l = s->gas_acc / 3600 / 1000;
        s->gas_capture = floor_div(o->start, GAS_CAPTURE_S) * GAS_CAPTURE_S;
    }
    s->long_failures = (uint32_t)hrange(s, SALT_FAILURES, 0, 1, 2);
    s->failures = s->long_failures + (uint32_t)hrange(s, SALT_FAILURES, 1, 2, 9);
    for (int i = 0; i < 2; i++) {
        s->failure_end[i] = o->start - hrange(s, SALT_FAILURES, 2 + i, 20, 400) * DAY -
                            hrange(s, SALT_FAILURES, 4 + i, 0, DAY - 1);
        s->failure_s[i] = (uint32_t)hrange(s, SALT_FAILURES, 6 + i, 181, 20000);
        if (s->failure_end[i] < SIM_START_MIN)
            s->failure_end[i] = SIM_START_MIN; /* two-digit years cannot show the 1990s */
    }
    if (s->failure_end[0] < s->failure_end[1]) { /* the log lists the newest failure first */
        int64_t te = s->failure_end[0];
        uint32_t ts = s->failure_s[0];
        s->failure_end[0] = s->failure_end[1];
        s->failure_s[0] = s->failure_s[1];
        s->failure_end[1] = te;
        s->failure_s[1] = ts;
    }
    for (int i = 0; i < 3; i++) {
        s->sags[i] = (uint32_t)hrange(s, SALT_FAILURES, 10 + i, 0, 6);
        s->swells[i] = (uint32_t)hrange(s, SALT_FAILURES, 13 + i, 0, 2);
    }
    s->fridge_period = (int32_t)hrange(s, SALT_FRIDGE, 0, 3300, 3900);
    s->fridge_phase = (int32_t)hrange(s, SALT_FRIDGE, 1, 0, 3600);
    return 0;
}

/* The largest values the telegram prints (F9(3) kWh, F8(3) m3, F5 counts): anything larger came
 * from another meter's registers, not from a simulated one, and is ignored. */
#define SIM_WH_MAX    999999999LL
#define SIM_LITRE_MAX 99999999LL
#define SIM_COUNT_MAX 99999LL

static int raise_j(int64_t *joules, int64_t wh)
{
    if (wh <= 0 || wh > SIM_WH_MAX || *joules >= wh * 3600)
        return 0;
    *joules = wh * 3600;
    return 1;
}

static int raise_count(uint32_t *n, int64_t floor)
{
    if (floor <= 0 || floor > SIM_COUNT_MAX || *n >= floor)
        return 0;
    *n = (uint32_t)floor;
    return 1;
}

int sim_resume(sim *s, const sim_registers *r)
{
    int raised = 0;
    for (int k = 0; k < 2; k++) {
        raised += raise_j(&s->import_j[k], r->import_wh[k]);
        raised += raise_j(&s->export_j[k], r->export_wh[k]);
    }
    /* The gas value shown is the 5-minute capture at or before the start (sim_init): raising the
     * register raises that capture with it, and the next capture counts on from there. */
    if (s->opt.gas && r->gas_l > 0 && r->gas_l <= SIM_LITRE_MAX &&
        s->gas_acc < r->gas_l * 3600 * 1000) {
        s->gas_acc = r->gas_l * 3600 * 1000;
        s->gas_shown_l = s->gas_acc / 3600 / 1000;
        raised++;
    }
    for (int i = 0; i < 3; i++) {
        raised += raise_count(&s->sags[i], r->sags[i]);
        raised += raise_count(&s->swells[i], r->swells[i]);
    }
    return raised;
}

size_t sim_next(sim *s, char *out, size_t cap)
{
    if (cap < SIM_OUT_MAX)
        return 0;
    sim_tm tm;
    sim_local_time(s->t, &tm);
    household h;
    simulate(s, &tm, &h);

    sim_sample *m = &s->last;
    memset(m, 0, sizeof *m);
    m->time = s->t;
    m->tariff = (tm.weekday >= 1 && tm.weekday <= 5 && tm.hour >= 7 && tm.hour < 23) ? 2 : 1;
    int64_t load = 0, net = 0;
    int np = s->opt.phases == 1 ? 1 : 3;
    for (int i = 0; i < np; i++) {
        int64_t pw = h.phase_load[i] < 0 ? 0 : h.phase_load[i];
        load += pw;
        if (i == 0)
            pw -= h.solar; /* the inverter feeds L1 */
        m->phase_w[i] = (int32_t)pw;
        net += pw;
        /* the grid sags under our own load and rises when we export */
        int64_t v = 2300 + (hsmooth(s, SALT_VOLT + (uint64_t)i * 100, s->t, 60) - 500) / 20 +
                    rng_range(&s->rng, -3, 3) - pw / 50;
        v = v < 2100 ? 2100 : v > 2500 ? 2500 : v;
        m->voltage_dv[i] = (int32_t)v;
        int64_t a = (pw < 0 ? -pw : pw) * 10;
        m->current_a[i] = (int32_t)((a + v / 2) / v);
        /* rare grid events: a sag every few days, a swell every few weeks */
        if (rng_range(&s->rng, 0, 4 * DAY - 1) < s->opt.interval)
            s->sags[i]++;
        if (rng_range(&s->rng, 0, 20 * DAY - 1) < s->opt.interval)
            s->swells[i]++;
    }
    m->load_w = (int32_t)load;
    m->solar_w = (int32_t)h.solar;
    m->import_w = (int32_t)(net > 0 ? net : 0);
    m->export_w = (int32_t)(net < 0 ? -net : 0);
    m->gas_lph = (int32_t)h.gas_lph;

    /* faults: always draw all three numbers so a rate change does not reshuffle the others */
    uint64_t rg = rng_next(&s->frng) % SIM_RATE_ONE, rt = rng_next(&s->frng) % SIM_RATE_ONE;
    uint64_t rc = rng_next(&s->frng) % SIM_RATE_ONE, rpos = rng_next(&s->frng);
    unsigned faults = 0;
    if (rg < s->opt.fault_garbage)
        faults |= SIM_FAULT_GARBAGE;
    if (rt < s->opt.fault_truncate)
        faults |= SIM_FAULT_TRUNCATE;
    else if (rc < s->opt.fault_crc)
        faults |= SIM_FAULT_CRC;

    wbuf w = {out, 0, SIM_OUT_MAX, 0};
    if (faults & SIM_FAULT_GARBAGE) {
        size_t n = 1 + (size_t)(rpos % (SIM_GARBAGE_MAX - 8));
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s->frng);
            unsigned char c = (r & 3) == 0 ? 0xFF : (unsigned char)(r >> 8);
            /* never a byte that starts a frame: '/' text, 0xDB encrypted, 0x7E HDLC, 0x68 M-Bus */
            if (c == '/' || c == 0xDB || c == 0x7E || c == 0x68)
                c = 0xFF;
            put(&w, (const char *)&c, 1);
        }
        /* a line end closes the noise, as a meter starts every telegram on a fresh line */
        put(&w, "\r\n", 2);
    }
    size_t tstart = w.len;
    wbuf tw = {out + tstart, 0, SIM_TELEGRAM_MAX, 0};
    format_telegram(s, &tw);
    if (tw.overflow)
        return 0; /* cannot happen: SIM_TELEGRAM_MAX bounds the longest telegram we write */
    char *tg = out + tstart;
    size_t tlen = tw.len;
    if (faults & SIM_FAULT_CRC) {
        static const char hex[] = "0123456789ABCDEF";
        char *d = tg + tlen - 6 + (rpos >> 8) % 4;
        const char *at = strchr(hex, *d);
        *d = hex[((at ? at - hex : 0) + 1 + (int)((rpos >> 16) % 15)) % 16];
    }
    if (faults & SIM_FAULT_TRUNCATE) {
        /* cut somewhere after the header, before the '!', never right after a line end */
        size_t lo = 40, hi = tlen - 7;
        size_t pos = lo + (size_t)((rpos >> 24) % (hi - lo));
        while (pos > lo && (tg[pos - 1] == '\r' || tg[pos - 1] == '\n'))
            pos--;
        tlen = pos;
    }
    s->last_faults = faults;

    /* integrate the power of this telegram over the interval, then move the clock */
    int64_t dt = s->opt.interval;
    int tix = m->tariff - 1;
    s->import_j[tix] += m->import_w * dt;
    s->export_j[tix] += m->export_w * dt;
    if (s->opt.gas) {
        int64_t before = s->gas_acc;
        s->gas_acc += h.gas_lph * 1000 * dt;
        int64_t b = floor_div(s->t + dt, GAS_CAPTURE_S) * GAS_CAPTURE_S;
        if (b > s->t) {
            s->gas_shown_l = (before + h.gas_lph * 1000 * (b - s->t)) / 3600000;
            s->gas_capture = b;
        }
    }
    s->t += dt;
    s->telegrams++;
    return tstart + tlen;
}
