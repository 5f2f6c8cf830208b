/* test_store.c: the history store: consumption across tariffs, midnight, DST, meter replacement,
 * counter resets, gaps and clock jumps; aggregates against raw sums; migrations; full disk. */
#define _GNU_SOURCE
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

#define MAXPTS 200000

static char dir[64];
static char dbpath[128];
static int dbseq;

static const char *fresh_db(void)
{
    snprintf(dbpath, sizeof dbpath, "%s/t%d.db", dir, ++dbseq);
    return dbpath;
}

/* ---- readings ---- */

typedef struct rd {
    int64_t ts;          /* unix seconds: the meter's clock shows this (CET/CEST) */
    int64_t imp1, imp2;  /* Wh */
    int64_t exp1, exp2;
    int tariff;
    int pw;              /* W, net: positive import */
    int64_t gas;         /* dm3, < 0 none */
    const char *id;
    const char *gas_id;
    int64_t gas_at; /* the gas value's capture time; 0: the 5 minutes before ts */
    int no_time;
} rd;

static void civil(int64_t t, p1_time *out)
{
    if (p1_time_from_unix(t, out) < 0)
        memset(out, 0, sizeof *out);
}

static void mk(p1_reading *r, const rd *d)
{
    p1_reading_init(r);
    if (!d->no_time) {
        civil(d->ts, &r->time);
        r->has_time = 1;
    }
    snprintf(r->equipment_id, sizeof r->equipment_id, "%s", d->id ? d->id : "E0001");
    r->import[1] = d->imp1 * 1000;
    r->import[2] = d->imp2 * 1000;
    r->export_[1] = d->exp1 * 1000;
    r->export_[2] = d->exp2 * 1000;
    r->import_total = r->import[1] + r->import[2];
    r->export_total = r->export_[1] + r->export_[2];
    r->tariff = (int16_t)d->tariff;
    r->power_import = d->pw > 0 ? (int64_t)d->pw * 1000 : 0;
    r->power_export = d->pw < 0 ? -(int64_t)d->pw * 1000 : 0;
    r->nphases = 1;
    r->phase[0].voltage = 230100000 + (d->ts % 7) * 100000;
    r->phase[0].current = (int64_t)(d->pw > 0 ? d->pw : -d->pw) * 1000000 / 230;
    r->phase[0].current -= r->phase[0].current % 10000;
    if (d->gas >= 0) {
        r->mbus[0].present = 1;
        r->mbus[0].type = 3;
        r->mbus[0].medium = P1_MEDIUM_GAS;
        snprintf(r->mbus[0].id, sizeof r->mbus[0].id, "%s", d->gas_id ? d->gas_id : "G0001");
        r->mbus[0].value = d->gas * 1000;
        civil(d->gas_at ? d->gas_at : d->ts - d->ts % 300, &r->mbus[0].time);
        snprintf(r->mbus[0].unit, sizeof r->mbus[0].unit, "m3");
    }
}

static int add(store *s, const char *meter, const rd *d, int64_t sys_ms)
{
    static p1_reading r;
    mk(&r, d);
    if (store_pending(s) >= 3000) /* as the daemon's timer would */
        store_commit(s);
    return store_add(s, meter, &r, sys_ms);
}

/* A simple household: every `dt` seconds, consumption pattern from the step number. Counters
 * advance by the energy of that interval on the active tariff (1 = night before 07:00 local). */
typedef struct house {
    rd d;
    int64_t n;
} house;

static void house_init(house *h, int64_t ts)
{
    memset(h, 0, sizeof *h);
    h->d.ts = ts;
    h->d.imp1 = 100000;
    h->d.imp2 = 200000;
    h->d.exp1 = 3000;
    h->d.exp2 = 4000;
    h->d.gas = 5000000;
    h->d.tariff = 1;
}

static void house_step(house *h, int64_t dt)
{
    p1_time t;
    h->n++;
    h->d.ts += dt;
    civil(h->d.ts, &t);
    h->d.tariff = t.hour < 7 || t.hour >= 23 ? 1 : 2;
    h->d.pw = (int)((h->n * 7919) % 4000) - 1200;
    int64_t wh = (int64_t)h->d.pw * dt / 3600;
    if (wh >= 0) {
        if (h->d.tariff == 1)
            h->d.imp1 += wh;
        else
            h->d.imp2 += wh;
    } else {
        if (h->d.tariff == 1)
            h->d.exp1 -= wh;
        else
            h->d.exp2 -= wh;
    }
    if (h->n % 30 == 0)
        h->d.gas += h->n % 7;
}

/* ---- consistency: every tier's steps against sums over raw points ---- */

typedef struct pts {
    store_point *p;
    size_t n;
} pts;

static int collect(void *u, const store_point *p)
{
    pts *a = u;
    if (a->n < MAXPTS)
        a->p[a->n++] = *p;
    return 0;
}

static int same_stat(const store_stat *a, const store_stat *b)
{
    if (a->n != b->n)
        return 0;
    return !a->n || (a->min == b->min && a->max == b->max && a->sum == b->sum);
}

/* Checks every step of every tier in [from, to) against the raw points; returns steps checked. */
static int64_t check_tiers(store *s, const char *meter, int64_t from, int64_t to)
{
    static store_point rawbuf[MAXPTS], aggbuf[MAXPTS];
    pts raw = {rawbuf, 0}, ag = {aggbuf, 0};
    int64_t checked = 0;
    CHECK_EQ_INT(store_series(s, meter, from - 3 * 86400, to + 3 * 86400, STORE_STEP_RAW, 0,
                              collect, &raw),
                 0);
    for (int step = STORE_STEP_1M; step <= STORE_STEP_1Y; step++) {
        ag.n = 0;
        CHECK_EQ_INT(store_series(s, meter, from, to, (store_step)step, 0, collect, &ag), 0);
        for (size_t i = 0; i < ag.n; i++) {
            const store_point *a = &ag.p[i];
            store_point sum;
            memset(&sum, 0, sizeof sum);
            unsigned ehas = 0;
            for (size_t j = 0; j < raw.n; j++) {
                const store_point *r = &raw.p[j];
                /* from 15 minutes up gas rises go to the step of their capture time (mk(): the
                 * 5 minutes before the reading) when the rise is > 0 and that is at most
                 * STORE_CAPTURE_MAX ago */
                int64_t cap = r->ts - r->ts % 300, gat = r->ts;
                if (step != STORE_STEP_1M && r->energy[STORE_E_GAS] != STORE_NULL &&
                    r->energy[STORE_E_GAS] > 0 && cap > r->ts - STORE_CAPTURE_MAX)
                    gat = cap;
                if (gat != r->ts && gat > a->ts && gat <= a->end) {
                    sum.energy[STORE_E_GAS] += r->energy[STORE_E_GAS];
                    ehas |= 1u << STORE_E_GAS;
                }
                if (r->ts <= a->ts || r->ts > a->end)
                    continue;
                sum.n++;
                for (int e = 0; e < STORE_E_COUNT; e++)
                    if (r->energy[e] != STORE_NULL) {
                        if (e != STORE_E_GAS || r->energy[e] <= 0 || gat == r->ts)
                            sum.energy[e] += r->energy[e];
                        ehas |= 1u << e;
                    }
                for (int q = 0; q < STORE_Q_COUNT; q++) {
                    if (!r->q[q].n)
                        continue;
                    store_stat *st = &sum.q[q];
                    if (!st->n || r->q[q].min < st->min)
                        st->min = r->q[q].min;
                    if (!st->n || r->q[q].max > st->max)
                        st->max = r->q[q].max;
                    st->sum += r->q[q].sum;
                    st->n++;
                }
            }
            int ok = sum.n == a->n;
            for (int e = 0; e < STORE_E_COUNT; e++)
                ok = ok && ((ehas & (1u << e)) ? sum.energy[e] == a->energy[e]
                                               : a->energy[e] == STORE_NULL);
            for (int q = 0; q < STORE_Q_COUNT; q++)
                ok = ok && same_stat(&sum.q[q], &a->q[q]);
            if (!ok)
                fprintf(stderr,
                        "  step %s at %lld: n %lld vs raw %lld, import %lld vs %lld, gas %lld vs "
                        "%lld\n",
                        store_step_name((store_step)step), (long long)a->ts, (long long)a->n,
                        (long long)sum.n, (long long)a->energy[STORE_E_IMPORT],
                        (long long)sum.energy[STORE_E_IMPORT], (long long)a->energy[STORE_E_GAS],
                        (long long)sum.energy[STORE_E_GAS]);
            CHECK(ok);
            checked++;
        }
    }
    return checked;
}

/* Sum of one energy over the steps of a series. */
typedef struct esum {
    int e;
    int64_t sum, steps, gaps, negative;
} esum;

static int sum_energy(void *u, const store_point *p)
{
    esum *a = u;
    a->steps++;
    if (!p->n)
        a->gaps++;
    if (p->energy[a->e] != STORE_NULL) {
        a->sum += p->energy[a->e];
        if (p->energy[a->e] < 0)
            a->negative++;
    }
    return 0;
}

static esum series_sum(store *s, const char *meter, int64_t from, int64_t to, store_step step,
                       int e, unsigned flags)
{
    esum a;
    memset(&a, 0, sizeof a);
    a.e = e;
    CHECK_EQ_INT(store_series(s, meter, from, to, step, flags, sum_energy, &a), 0);
    return a;
}

static store *open_db(const char *path)
{
    char err[STORE_ERR_MAX];
    store *s = store_open(path, NULL, err, sizeof err);
    if (!s)
        fprintf(stderr, "store_open: %s\n", err);
    CHECK(s != NULL);
    return s;
}

/* ---- tests ---- */

#define T_2024_01_15_2000_LOCAL 1705345200LL /* 2024-01-15T19:00:00Z */

static void test_steps(void)
{
    /* 2024-03-31 local day: 23 hours; 2024-10-27: 25 hours; months and years local */
    int64_t d = store_step_floor(STORE_STEP_1D, 1711850400); /* 2024-03-31T02:00Z */
    CHECK_EQ_INT(d, 1711839600);                               /* 2024-03-30T23:00Z */
    CHECK_EQ_INT(store_step_next(STORE_STEP_1D, d) - d, 23 * 3600);
    d = store_step_floor(STORE_STEP_1D, 1729994400); /* 2024-10-27T02:00Z */
    CHECK_EQ_INT(store_step_next(STORE_STEP_1D, d) - d, 25 * 3600);
    CHECK_EQ_INT(store_step_floor(STORE_STEP_1MO, 1709251200), 1709247600); /* 2024-03-01 */
    CHECK_EQ_INT(store_step_next(STORE_STEP_1MO, 1709247600), 1711922400);  /* 2024-04-01+02 */
    CHECK_EQ_INT(store_step_floor(STORE_STEP_1Y, 1720000000), 1704063600);  /* 2024-01-01+01 */
    CHECK_EQ_INT(store_step_floor(STORE_STEP_15M, 1705345199), 1705344300);
    CHECK_EQ_INT(store_step_parse("15m"), STORE_STEP_15M);
    CHECK_EQ_INT(store_step_parse("2m"), -1);
}

static void test_tariff_midnight(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(&h, start);
    CHECK_EQ_INT(add(s, "home", &h.d, 0), 1);
    rd first = h.d;
    for (int i = 0; i < 12 * 360; i++) { /* 12 hours at 10 s: 20:00 .. 08:00, both tariffs */
        house_step(&h, 10);
        CHECK(add(s, "home", &h.d, 0) == 1);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    check_tiers(s, "home", start, h.d.ts + 1);
    /* the whole range adds up to the counter difference exactly, at every step */
    for (int step = STORE_STEP_RAW; step <= STORE_STEP_1D; step++) {
        esum a = series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step,
                            STORE_E_IMPORT_T1, 0);
        CHECK_EQ_INT(a.sum, h.d.imp1 - first.imp1);
        a = series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step,
                       STORE_E_IMPORT, 0);
        CHECK_EQ_INT(a.sum, h.d.imp1 + h.d.imp2 - first.imp1 - first.imp2);
        a = series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step,
                       STORE_E_EXPORT_T2, 0);
        CHECK_EQ_INT(a.sum, h.d.exp2 - first.exp2);
        a = series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step, STORE_E_GAS, 0);
        CHECK_EQ_INT(a.sum, h.d.gas - first.gas);
    }
    /* midnight: the day of the 15th ends at local midnight (23:00Z) */
    esum d15 = series_sum(s, "home", start, start + 4 * 3600, STORE_STEP_1D, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(d15.steps, 1);
    esum h4 = series_sum(s, "home", start, start + 4 * 3600, STORE_STEP_1H, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(h4.steps, 4);
    CHECK_EQ_INT(d15.sum, h4.sum);
    store_close(s);
}

static int count_n(void *u, const store_point *p)
{
    int64_t *a = u;
    a[0]++;
    a[1] += p->n;
    if (p->n && (a[2] == 0 || p->n < a[2]))
        a[2] = p->n;
    if (p->n > a[3])
        a[3] = p->n;
    return 0;
}

static void dst_day(int64_t day_start_utc, int64_t hours)
{
    store *s = open_db(fresh_db());
    house h;
    house_init(&h, day_start_utc - 3600);
    for (int i = 0; i < (int)((hours + 2) * 60); i++) { /* every minute, 1 h either side */
        house_step(&h, 60);
        CHECK(add(s, "home", &h.d, 0) == 1);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    int64_t a[4] = {0, 0, 0, 0};
    int64_t day_end = store_step_next(STORE_STEP_1D, day_start_utc);
    CHECK_EQ_INT(day_end - day_start_utc, hours * 3600);
    store_series(s, "home", day_start_utc, day_end, STORE_STEP_1D, 0, count_n, a);
    CHECK_EQ_INT(a[0], 1);
    CHECK_EQ_INT(a[1], hours * 60); /* no hour created or lost */
    memset(a, 0, sizeof a);
    store_series(s, "home", day_start_utc, day_end, STORE_STEP_1H, STORE_SERIES_GAPS, count_n, a);
    CHECK_EQ_INT(a[0], hours);
    CHECK_EQ_INT(a[2], 60);
    CHECK_EQ_INT(a[3], 60);
    check_tiers(s, "home", day_start_utc - 3600, day_end + 3600);
    store_close(s);
}

static void test_dst(void)
{
    dst_day(1711839600, 23); /* 2024-03-31 local: spring forward */
    dst_day(1729980000, 25); /* 2024-10-27 local: the autumn hour twice (S, then W) */
}

static void test_replacement_and_reset(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(&h, start);
    int64_t used = 0;
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 100; i++) {
        int64_t before = h.d.imp1 + h.d.imp2;
        house_step(&h, 10);
        used += h.d.imp1 + h.d.imp2 - before;
        add(s, "home", &h.d, 0);
    }
    /* meter replaced: new id, counters start near zero */
    h.d.id = "E0002";
    h.d.imp1 = 5;
    h.d.imp2 = 7;
    h.d.exp1 = h.d.exp2 = 0;
    house_step(&h, 10);
    int64_t base = h.d.imp1 + h.d.imp2;
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 100; i++) {
        int64_t before = h.d.imp1 + h.d.imp2;
        house_step(&h, 10);
        used += h.d.imp1 + h.d.imp2 - before;
        add(s, "home", &h.d, 0);
    }
    (void)base;
    /* replaced again by a meter whose counters are higher: the jump is not consumption */
    h.d.id = "E0003";
    h.d.imp1 += 900000;
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 100; i++) {
        int64_t before = h.d.imp1 + h.d.imp2;
        house_step(&h, 10);
        used += h.d.imp1 + h.d.imp2 - before;
        add(s, "home", &h.d, 0);
    }
    /* counter reset on the same meter */
    h.d.imp1 = 1;
    h.d.imp2 = 1;
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 100; i++) {
        int64_t before = h.d.imp1 + h.d.imp2;
        house_step(&h, 10);
        used += h.d.imp1 + h.d.imp2 - before;
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    /* the steps of the replacement/reset readings themselves carry no energy: `used` skips them */
    for (int step = STORE_STEP_RAW; step <= STORE_STEP_1Y; step++) {
        esum a = series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step,
                            STORE_E_IMPORT, 0);
        CHECK_EQ_INT(a.negative, 0);
        CHECK_EQ_INT(a.sum, used);
    }
    store_stats st;
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.segments, 3);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_db(s), "SELECT group_concat(reason) FROM segments", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(q, 0), "device,device,counter");
    sqlite3_finalize(q);
    check_tiers(s, "home", start, h.d.ts + 1);
    store_close(s);
}

/* A reading with tariff registers but no total (p1_reading_end() sums none for a DSMR 2.2
 * telegram accepted without its end line: it may lack tariff 2) must not become a total made of
 * tariff 1 alone: that would drop and come back as phantom use. */
static void test_cut_telegram(void)
{
    store *s = open_db(fresh_db());
    static p1_reading r;
    rd d = {T_2024_01_15_2000_LOCAL, 12345678, 23456789, 0, 0, 2, 670, -1, NULL, NULL, 0, 0};
    mk(&r, &d);
    CHECK_EQ_INT(store_add(s, "home", &r, 0), 1);
    d.ts += 10;
    mk(&r, &d);
    r.import[2] = P1_ABSENT; /* cut after 1-0:1.8.1 */
    r.export_[1] = r.export_[2] = P1_ABSENT;
    r.import_total = r.export_total = P1_ABSENT;
    CHECK_EQ_INT(store_add(s, "home", &r, 0), 1);
    d.ts += 10;
    d.imp2 += 1;
    mk(&r, &d);
    CHECK_EQ_INT(store_add(s, "home", &r, 0), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    esum a = series_sum(s, "home", d.ts - 3600, d.ts + 3600, STORE_STEP_RAW, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(a.negative, 0);
    CHECK_EQ_INT(a.sum, 1); /* the 1 Wh really used, not 23456789 Wh of phantom use */
    store_stats st;
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.segments, 0); /* no counter reset either */
    store_close(s);
}

static void test_gaps_and_clock(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(&h, start);
    rd first = h.d;
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 200; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
    }
    /* a 3-hour gap (p1d down): consumption continues, the first reading after carries it */
    for (int i = 0; i < 1080; i++)
        house_step(&h, 10);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 200; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    esum a = series_sum(s, "home", start, h.d.ts + 1, STORE_STEP_15M, STORE_E_IMPORT,
                        STORE_SERIES_GAPS);
    CHECK_EQ_INT(a.sum, h.d.imp1 + h.d.imp2 - first.imp1 - first.imp2);
    CHECK(a.gaps >= 10);
    a = series_sum(s, "home", start, h.d.ts + 1, STORE_STEP_1M, STORE_E_GAS, 0);
    CHECK_EQ_INT(a.sum, h.d.gas - first.gas);
    check_tiers(s, "home", start, h.d.ts + 1);
    /* the minutes holding readings: every one of the first 2000 s, none in the gap, and the
     * arguments are checked */
    {
        int64_t m0 = start - start % 60, m1 = h.d.ts - h.d.ts % 60 + 60;
        size_t n = (size_t)(m1 - m0) / 60, on = 0, runs = 0;
        uint8_t *bits = malloc((n + 7) / 8), prev = 0;
        CHECK(bits != NULL);
        CHECK_EQ_INT(store_minutes(s, "home", m0, m1, bits, n), 0);
        for (size_t i = 0; i < n; i++) {
            uint8_t b = bits[i / 8] >> (i % 8) & 1;
            on += b;
            runs += b && !prev;
            prev = b;
        }
        CHECK_EQ_INT(runs, 2);                            /* before and after the gap */
        CHECK(on >= 64 && on <= 70);                      /* 2 x 2000 s of readings, 10 s apart */
        CHECK(!(bits[(n / 2) / 8] >> ((n / 2) % 8) & 1)); /* the middle of the gap */
        CHECK_EQ_INT(store_minutes(s, "home", m0 + 1, m1, bits, n), -EINVAL);
        CHECK_EQ_INT(store_minutes(s, "home", m0, m1, bits, n - 1), -EINVAL);
        CHECK_EQ_INT(store_minutes(s, "nobody", m0, m1, bits, n), -ENOENT);
        /* two minutes at once: both before the gap, one in it, the same one twice */
        CHECK_EQ_INT(store_minutes_held(s, "home", m0 + 60, m0 + 600), 1);
        CHECK_EQ_INT(store_minutes_held(s, "home", m0 + 60, m0 + (int64_t)(n / 2) * 60), 0);
        CHECK_EQ_INT(store_minutes_held(s, "home", m0 + 60, m0 + 60), 1);
        CHECK_EQ_INT(store_minutes_held(s, "nobody", m0 + 60, m0 + 600), 0);
        free(bits);
    }

    /* duplicates and a meter clock going back: skipped, nothing counted twice */
    store_stats st0, st1;
    store_get_stats(s, &st0);
    CHECK_EQ_INT(add(s, "home", &h.d, 0), 0);
    rd back = h.d;
    back.ts -= 3600;
    CHECK_EQ_INT(add(s, "home", &back, 0), 0);
    store_get_stats(s, &st1);
    CHECK_EQ_INT(st1.skipped - st0.skipped, 2);

    /* clock=auto: a meter clock an hour off is replaced by ours; a placeholder too */
    CHECK_EQ_INT(store_meter_clock(s, "auto", STORE_CLOCK_AUTO), 0);
    rd d = h.d;
    int64_t sys = d.ts;
    CHECK_EQ_INT(add(s, "auto", &d, sys * 1000), 1); /* agrees: meter time */
    d.ts += 3600;                                   /* meter jumps an hour ahead */
    sys += 1;
    CHECK_EQ_INT(add(s, "auto", &d, sys * 1000 + 500), 1);
    d.ts = sys + 2; /* back in line */
    sys += 2;
    CHECK_EQ_INT(add(s, "auto", &d, sys * 1000), 1);
    d.no_time = 1;
    sys += 1;
    CHECK_EQ_INT(add(s, "auto", &d, sys * 1000), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    int64_t c[4] = {0, 0, 0, 0};
    store_series(s, "auto", sys - 10, sys + 10, STORE_STEP_RAW, 0, count_n, c);
    CHECK_EQ_INT(c[0], 4);
    /* clock=meter: a reading without time falls back to ours; without ours it is skipped */
    CHECK_EQ_INT(store_meter_clock(s, "m", STORE_CLOCK_METER), 0);
    CHECK_EQ_INT(add(s, "m", &d, 0), 0);
    CHECK_EQ_INT(add(s, "m", &d, sys * 1000), 1);
    /* clock=system */
    CHECK_EQ_INT(store_meter_clock(s, "sys", STORE_CLOCK_SYSTEM), 0);
    d.no_time = 0;
    CHECK_EQ_INT(add(s, "sys", &d, 1000), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    c[0] = 0;
    store_series(s, "sys", 0, 10, STORE_STEP_RAW, 0, count_n, c);
    CHECK_EQ_INT(c[0], 1);
    CHECK_EQ_INT(store_series(s, "nobody", 0, 10, STORE_STEP_RAW, 0, count_n, c), -ENOENT);
    store_close(s);
}

/* clock=meter, live: one telegram with a time years ahead is skipped, not stored (every later
 * reading would be "not newer" until then); a clock really put forward is taken from the
 * reading after the jump, and at once when our clock agrees with it. */
static void test_clock_meter_jump(void)
{
    store *s = open_db(fresh_db());
    CHECK_EQ_INT(store_meter_clock(s, "m", STORE_CLOCK_METER), 0);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    int64_t sys = h.d.ts;
    CHECK_EQ_INT(add(s, "m", &h.d, sys * 1000), 1);
    rd glitch = h.d;
    glitch.ts = 1893452400; /* 2030-01-01 */
    CHECK_EQ_INT(add(s, "m", &glitch, (sys + 10) * 1000), 0);
    house_step(&h, 20);
    CHECK_EQ_INT(add(s, "m", &h.d, (sys + 20) * 1000), 1);
    /* put forward an hour, ours not: the first reading after is skipped, the next confirms */
    h.d.ts += 3600;
    house_step(&h, 10);
    CHECK_EQ_INT(add(s, "m", &h.d, (sys + 30) * 1000), 0);
    house_step(&h, 10);
    CHECK_EQ_INT(add(s, "m", &h.d, (sys + 40) * 1000), 1);
    /* a gap (p1d was down) that our clock agrees with: stored at once */
    for (int i = 0; i < 360; i++)
        house_step(&h, 10);
    CHECK_EQ_INT(add(s, "m", &h.d, h.d.ts * 1000), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    int64_t c[4] = {0, 0, 0, 0};
    store_series(s, "m", 0, INT64_MAX / 2, STORE_STEP_RAW, 0, count_n, c);
    CHECK_EQ_INT(c[0], 4);
    c[0] = 0;
    store_series(s, "m", h.d.ts + 1, INT64_MAX / 2, STORE_STEP_RAW, 0, count_n, c);
    CHECK_EQ_INT(c[0], 0); /* nothing after the newest reading: not the one in 2030 */
    store_close(s);
}

/* Raw times of a meter into t[cap]; returns how many. */
typedef struct times {
    int64_t t[4096];
    size_t n;
} times;

static int collect_ts(void *u, const store_point *p)
{
    times *x = u;
    if (x->n < sizeof x->t / sizeof x->t[0])
        x->t[x->n++] = p->ts;
    return 0;
}

/* clock=auto: a meter clock running ahead past the tolerance switches to ours without a run of
 * skipped readings, stays there until the meter's has been in tolerance for a while, and the
 * stored times only ever go forward. */
static void test_clock_hysteresis(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t sys = T_2024_01_15_2000_LOCAL;
    house_init(&h, sys);
    store_stats st0, st1;
    store_get_stats(s, &st0);
    int stored = 0;
    /* One telegram a second; the meter's clock starts 280 s ahead and gains 1 s every 10 s:
     * it leaves the tolerance at i = 210, with 300 s of its time already stored ahead of ours. */
    for (int i = 0; i < 3000; i++) {
        house_step(&h, 1);
        h.d.ts = sys + i + 280 + i / 10;
        stored += add(s, "run", &h.d, (sys + i) * 1000 + 250) == 1;
    }
    /* Half the readings are kept while the time axis catches up (about 600 s), then all. */
    CHECK(stored > 3000 - 300 - 30);
    /* The meter's clock is corrected (100 s behind, within tolerance): ours stays in use for
     * STORE_CLOCK_SETTLE s, then the meter's, reached by the same catch-up. */
    int64_t now = sys + 3000;
    for (int i = 0; i < 900; i++) {
        house_step(&h, 1);
        h.d.ts = now + i - 100;
        stored += add(s, "run", &h.d, (now + i) * 1000) == 1;
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_get_stats(s, &st1);
    CHECK(st1.skipped - st0.skipped < 300 + 100 + 40);
    times *x = calloc(1, sizeof *x);
    CHECK(x != NULL);
    if (!x) {
        store_close(s);
        return;
    }
    store_series(s, "run", sys - 1000, now + 2000, STORE_STEP_RAW, 0, collect_ts, x);
    CHECK_EQ_INT((int64_t)x->n, stored);
    int mono = 1, ours = 0, meters = 0;
    for (size_t i = 1; i < x->n; i++)
        if (x->t[i] <= x->t[i - 1])
            mono = 0;
    for (size_t i = 0; i < x->n; i++) {
        ours += x->t[i] >= now && x->t[i] < now + STORE_CLOCK_SETTLE;
        meters += x->t[i] >= now + 800 - 100 && x->t[i] < now + 900 - 100;
    }
    CHECK(mono);
    CHECK_EQ_INT(ours, STORE_CLOCK_SETTLE); /* every reading of the settling time, at ours */
    CHECK_EQ_INT(meters, 100);              /* the last 100, at the meter's */
    CHECK_EQ_INT(x->t[x->n - 1], now + 899 - 100);

    /* A meter sending every 10 s (DSMR 4) loses no reading at the switch: each is stamped one
     * second after the previous until ours is ahead again (9 s gained per reading). */
    int64_t t1 = now + 3000;
    stored = 0;
    store_get_stats(s, &st0);
    for (int i = 0; i < 600; i++) {
        house_step(&h, 10);
        h.d.ts = t1 + 10 * i + 280 + i / 5;
        stored += add(s, "slow", &h.d, (t1 + 10 * i) * 1000) == 1;
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_get_stats(s, &st1);
    CHECK_EQ_INT(stored, 600);
    CHECK_EQ_INT(st1.skipped - st0.skipped, 0);
    x->n = 0;
    store_series(s, "slow", t1 - 1000, t1 + 7000, STORE_STEP_RAW, 0, collect_ts, x);
    CHECK_EQ_INT((int64_t)x->n, 600);
    mono = 1;
    for (size_t i = 1; i < x->n; i++)
        if (x->t[i] <= x->t[i - 1])
            mono = 0;
    CHECK(mono);
    CHECK_EQ_INT(x->t[x->n - 1], t1 + 10 * 599); /* ours, once caught up */

    /* Flapping at the edge: a meter 299 or 301 s ahead, 10 s each, switches once to ours and
     * stays there; without hysteresis every other 10 s would be lost and times would jump. */
    int64_t t0 = now + 15000;
    stored = 0;
    for (int i = 0; i < 1000; i++) {
        house_step(&h, 1);
        h.d.ts = t0 + i + (i % 20 < 10 ? 299 : 301);
        stored += add(s, "edge", &h.d, (t0 + i) * 1000) == 1;
    }
    CHECK_EQ_INT(store_commit(s), 0);
    x->n = 0;
    store_series(s, "edge", t0 - 1000, t0 + 2000, STORE_STEP_RAW, 0, collect_ts, x);
    CHECK_EQ_INT((int64_t)x->n, stored);
    CHECK(stored > 650);
    CHECK_EQ_INT(x->t[x->n - 1], t0 + 999);
    free(x);
    store_close(s);
}

/* clock=auto while the system clock is unsynchronised (a board without an RTC before NTP): a
 * meter ahead of it is believed, one behind it is not; synchronised, the 5-minute rule holds. */
static void test_clock_unsynced(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t sys = T_2024_01_15_2000_LOCAL, day = 86400;
    house_init(&h, sys);
    store_clock_state cs;
    store_last_clock(s, &cs);
    CHECK_EQ_INT(cs.used, STORE_CLOCK_AUTO);
    store_system_synced(s, 0);
    for (int i = 0; i < 10; i++) {
        house_step(&h, 1);
        h.d.ts = sys + day + i; /* ours restored from the last shutdown, a day behind */
        /* the first is skipped: nothing shows yet that the meter's clock runs with ours */
        CHECK_EQ_INT(add(s, "boot", &h.d, (sys + i) * 1000), i > 0);
    }
    /* a time garbled a year ahead (a line without CRC) is skipped, and the next one, whose
     * offset differs from the garbled one's; the one after is stored */
    house_step(&h, 1);
    h.d.ts = sys + day + 10 + 365 * day;
    CHECK_EQ_INT(add(s, "boot", &h.d, (sys + 10) * 1000), 0);
    store_last_clock(s, &cs);
    CHECK_EQ_INT(cs.used, STORE_CLOCK_AUTO); /* no clock trusted: nothing to report or log */
    for (int i = 11; i < 13; i++) {
        house_step(&h, 1);
        h.d.ts = sys + day + i;
        CHECK_EQ_INT(add(s, "boot", &h.d, (sys + i) * 1000), i == 12);
    }
    store_last_clock(s, &cs);
    CHECK_EQ_INT(cs.used, STORE_CLOCK_METER);
    CHECK_EQ_INT(cs.unsynced, 1);
    CHECK_EQ_INT(cs.offset_s, day);
    /* NTP steps ours a day forward and synchronises it: the two agree, nothing jumps */
    store_system_synced(s, 1);
    for (int i = 13; i < 20; i++) {
        house_step(&h, 1);
        h.d.ts = sys + day + i;
        CHECK_EQ_INT(add(s, "boot", &h.d, (sys + day + i) * 1000 + 400), 1);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    int64_t c[4] = {0, 0, 0, 0};
    store_series(s, "boot", sys, sys + 2 * day, STORE_STEP_RAW, 0, count_n, c);
    CHECK_EQ_INT(c[0], 17); /* 20 but the first, the garbled one and the one after it */
    /* unsynchronised, a meter a day behind ours: ours */
    store_system_synced(s, 0);
    house_step(&h, 1);
    h.d.ts = sys + 100;
    CHECK_EQ_INT(add(s, "behind", &h.d, (sys + 100 + day) * 1000), 1);
    store_last_clock(s, &cs);
    CHECK_EQ_INT(cs.used, STORE_CLOCK_SYSTEM);
    /* synchronised, a meter a day ahead: ours */
    store_system_synced(s, 1);
    h.d.ts = sys + 100 + 2 * day;
    CHECK_EQ_INT(add(s, "ahead", &h.d, (sys + 100 + day) * 1000), 1);
    store_last_clock(s, &cs);
    CHECK_EQ_INT(cs.used, STORE_CLOCK_SYSTEM);
    CHECK_EQ_INT(cs.offset_s, day);
    store_close(s);
}

/* clock=auto on our clock (the meter sends no valid time) when ours is stepped an hour back
 * (NTP corrects it, or a user sets the date): the stored times keep increasing by the catch-up
 * of one reading per STORE_CLOCK_SLEW s, instead of every reading being skipped for the hour
 * until ours passes the old time again. */
static void test_clock_stepped_back(void)
{
    store *s = open_db(fresh_db());
    house h;
    int64_t sys = T_2024_01_15_2000_LOCAL;
    house_init(&h, sys);
    h.d.no_time = 1;
    for (int i = 0; i < 100; i++) {
        house_step(&h, 1);
        CHECK_EQ_INT(add(s, "back", &h.d, (sys + i) * 1000), 1);
    }
    int stored = 0;
    for (int i = 0; i < 100; i++) {
        house_step(&h, 1);
        stored += add(s, "back", &h.d, (sys - 3600 + 100 + i) * 1000) == 1;
    }
    CHECK_EQ_INT(stored, 50);
    CHECK_EQ_INT(store_commit(s), 0);
    times *x = calloc(1, sizeof *x);
    CHECK(x != NULL);
    if (x) {
        store_series(s, "back", sys - 7200, sys + 7200, STORE_STEP_RAW, 0, collect_ts, x);
        CHECK_EQ_INT((int64_t)x->n, 150);
        CHECK_EQ_INT(x->t[x->n - 1], sys + 99 + 50);
        free(x);
    }
    store_close(s);
}

/* 96 readings of a house, an interruption, 900 more: every tier must be as if uninterrupted. The
 * interruption is a restart, or (`forget`) store_forget() with readings still queued, which the
 * next commit writes, and again now and then on the way. Returns the open store, *h at its end. */
static store *interrupted(int forget, house *h)
{
    char p[128];
    snprintf(p, sizeof p, "%s", fresh_db());
    store *s = open_db(p);
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(h, start);
    rd first = h->d;
    add(s, "home", &h->d, 0);
    add(s, "other", &h->d, 0);
    for (int i = 0; i < 95; i++) { /* stop mid-minute, mid-hour */
        house_step(h, 7);
        add(s, "home", &h->d, 0);
    }
    if (forget) {
        CHECK_EQ_INT(store_forget(s, "home"), 0);
        CHECK_EQ_INT(store_forget(s, "never-seen"), 0);
        CHECK_EQ_INT(store_commit(s), 0);
    } else {
        store_close(s);
        s = open_db(p);
    }
    CHECK_EQ_INT(add(s, "home", &h->d, 0), 0); /* already stored */
    for (int i = 0; i < 900; i++) {
        house_step(h, 7);
        add(s, "home", &h->d, 0);
        if (i % 50 == 0)
            CHECK_EQ_INT(store_commit(s), 0);
        if (forget && i % 70 == 0) /* its queue sometimes empty (freed at once), sometimes not */
            CHECK_EQ_INT(store_forget(s, "home"), 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    check_tiers(s, "home", start, h->d.ts + 1);
    esum a = series_sum(s, "home", start, h->d.ts + 1, STORE_STEP_1H, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(a.sum, h->d.imp1 + h->d.imp2 - first.imp1 - first.imp2);
    return s;
}

static void test_restart_and_rebuild(void)
{
    house h;
    store *s = interrupted(0, &h);
    int64_t start = T_2024_01_15_2000_LOCAL;
    /* a rebuild from raw gives the same aggregates */
    static store_point b1[4096], b2[4096];
    pts x = {b1, 0}, y = {b2, 0};
    store_series(s, "home", start - 86400, h.d.ts + 86400, STORE_STEP_1M, 0, collect, &x);
    sqlite3_exec(store_db(s), "UPDATE agg_1m SET import = 999999", NULL, NULL, NULL);
    CHECK_EQ_INT(store_rebuild(s, "home"), 0);
    store_series(s, "home", start - 86400, h.d.ts + 86400, STORE_STEP_1M, 0, collect, &y);
    CHECK_EQ_INT(x.n, y.n);
    int diff = 0;
    for (size_t i = 1; i < x.n && i < y.n; i++) /* the first minute holds the first reading */
        diff += memcmp(&x.p[i], &y.p[i], sizeof x.p[i]) != 0;
    CHECK_EQ_INT(diff, 0);
    store_close(s);
}

/* A gas meter not heard from (its channel sends the placeholder, no value) while p1d restarts:
 * the gas used meanwhile is counted at its next value, as without the restart. Before, the
 * engine took its registers from the last raw block alone, which had no gas: the rise was
 * lost. */
/* n more readings of h as meter home, 10 s apart. */
static void house_steps(store *s, house *h, int n)
{
    for (int i = 0; i < n; i++) {
        house_step(h, 10);
        add(s, "home", &h->d, 0);
    }
}

/* A fresh database (its path in p[cap]) with meter home's first reading of h and n more. */
static store *house_begin(char *p, size_t cap, house *h, int n)
{
    snprintf(p, cap, "%s", fresh_db());
    store *s = open_db(p);
    house_init(h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h->d, 0);
    house_steps(s, h, n);
    return s;
}

static void test_restart_gas_silent(void)
{
    char p[128];
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    store *s = house_begin(p, sizeof p, &h, 0);
    rd first = h.d;
    house_steps(s, &h, 30);
    int64_t gas = h.d.gas;
    h.d.gas = -1; /* three minutes without a gas value */
    house_steps(s, &h, 18);
    store_close(s);
    s = open_db(p);
    h.d.gas = gas + 250;
    house_steps(s, &h, 30);
    CHECK_EQ_INT(store_commit(s), 0);
    for (int step = STORE_STEP_15M; step <= STORE_STEP_1D; step++) {
        esum a =
            series_sum(s, "home", start - 86400, h.d.ts + 86400, (store_step)step, STORE_E_GAS, 0);
        CHECK_EQ_INT(a.sum, h.d.gas - first.gas);
    }
    check_tiers(s, "home", start, h.d.ts + 1);
    store_close(s);
}

/* A meter whose last readings carried its equipment id but no energy register (power alone):
 * at the restart the electricity group is looked for further back, over all six of its
 * registers. That query once outgrew its buffer: cut short, it failed to prepare and no reading
 * of the meter could be stored again (ASan: a stack overflow). */
static void test_restart_power_only(void)
{
    char p[128];
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    store *s = house_begin(p, sizeof p, &h, 0);
    rd first = h.d;
    house_steps(s, &h, 12);
    static p1_reading r;
    for (int i = 0; i < 12; i++) {
        house_step(&h, 10);
        p1_reading_init(&r);
        civil(h.d.ts, &r.time);
        r.has_time = 1;
        snprintf(r.equipment_id, sizeof r.equipment_id, "E0001");
        r.power_import = 500000;
        CHECK_EQ_INT(store_add(s, "home", &r, 0), 1);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);
    s = open_db(p);
    h.d.imp2 += 100;
    house_step(&h, 10);
    CHECK_EQ_INT(add(s, "home", &h.d, 0), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    esum a = series_sum(s, "home", start - 86400, h.d.ts + 86400, STORE_STEP_1H, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(a.sum, h.d.imp1 + h.d.imp2 - first.imp1 - first.imp2);
    store_close(s);
}

/* A meter p1d stops reading lets go of its memory (store_forget): the name used again continues
 * from the database as after a restart. */
static void test_forget(void)
{
    house h;
    store_close(interrupted(1, &h));
}

/* Caps the database at the pages it has: the next commit that needs one more fails as on a full
 * disk (PRAGMA max_page_count = 1000000 gives the space back). */
static void fill_disk(store *s)
{
    int64_t pages = 0;
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_db(s), "PRAGMA page_count", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW)
        pages = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    sqlite3_exec(store_db(s), sql, NULL, NULL, NULL);
}

static void test_full_disk(void)
{
    store_options o;
    store_options_default(&o);
    o.queue_max = 50;
    char err[STORE_ERR_MAX], why[STORE_ERR_MAX];
    store *s = store_open(fresh_db(), &o, err, sizeof err);
    CHECK(s != NULL);
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(&h, start);
    rd first = h.d;
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    fill_disk(s); /* the "disk" is full now */
    int failed = 0;
    for (int i = 0; i < 400; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
        if (i % 10 == 9 && store_commit(s) < 0)
            failed++;
    }
    CHECK(failed > 0);
    CHECK_EQ_INT(store_healthy(s, why, sizeof why), 0);
    CHECK(strstr(why, "queued") != NULL);
    CHECK_EQ_INT(store_pending(s), 50); /* bounded: the oldest were dropped */
    store_stats st;
    store_get_stats(s, &st);
    CHECK(st.dropped > 0);
    sqlite3_exec(store_db(s), "PRAGMA max_page_count = 1000000", NULL, NULL, NULL); /* space */
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK_EQ_INT(store_healthy(s, why, sizeof why), 1);
    /* dropped readings leave a gap but no energy is lost: counters carry it */
    esum a = series_sum(s, "home", start - 86400, h.d.ts + 86400, STORE_STEP_15M, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(a.sum, h.d.imp1 + h.d.imp2 - first.imp1 - first.imp2);
    check_tiers(s, "home", start, h.d.ts + 1);
    store_close(s);
}

/* A counter reset queued while the disk is full is one segment, however many commits fail
 * before it is written: store_stats.segments counted it again at every failed attempt. */
static void test_full_disk_segments(void)
{
    char p[128];
    house h;
    store *s = house_begin(p, sizeof p, &h, 2000);
    CHECK_EQ_INT(store_commit(s), 0);
    house_step(&h, 10);
    h.d.imp1 = h.d.imp2 = 1; /* the first reading of the queue that cannot be written */
    add(s, "home", &h.d, 0);
    fill_disk(s); /* the "disk" is full now */
    int failed = 0;
    for (int i = 0; i < 2000; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
        if (i % 100 == 99 && store_commit(s) < 0)
            failed++;
    }
    CHECK(failed >= 2);
    sqlite3_exec(store_db(s), "PRAGMA max_page_count = 1000000", NULL, NULL, NULL); /* space */
    CHECK_EQ_INT(store_commit(s), 0);
    store_stats st;
    store_get_stats(s, &st);
    int64_t rows = -1;
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM segments", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW)
        rows = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    CHECK_EQ_INT(rows, 1);
    CHECK_EQ_INT(st.segments, 1);
    store_close(s);
}

/* A VFS over the default one whose main database files fail writes while full_db is set: the
 * WAL takes commits, a checkpoint (which writes the database) fails as on a full disk. */
static sqlite3_vfs shim_vfs, *real_vfs;
static sqlite3_io_methods shim_io;
static const sqlite3_io_methods *real_io;
static int full_db;

static int shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    return full_db ? SQLITE_FULL : real_io->xWrite(f, buf, n, off);
}

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    int rc = real_vfs->xOpen(real_vfs, name, f, flags, out);
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_MAIN_DB) && f->pMethods) {
        real_io = f->pMethods;
        shim_io = *real_io;
        shim_io.xWrite = shim_write;
        f->pMethods = &shim_io;
    }
    return rc;
}

/* A checkpoint that failed (disk full) is retried once a commit succeeds: /healthz must not
 * report it for up to a minute after writing works again. */
static void test_checkpoint_recovers(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "test_store_shim";
    shim_vfs.xOpen = shim_open;
    CHECK_EQ_INT(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
    store *s = open_db(fresh_db());
    char why[STORE_ERR_MAX];
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    full_db = 1;
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0); /* the WAL still takes it */
    CHECK(store_maintain(s) >= 0);
    CHECK_EQ_INT(store_healthy(s, why, sizeof why), 0);
    CHECK(strstr(why, "checkpoint") != NULL);
    full_db = 0; /* space again */
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK_EQ_INT(store_healthy(s, why, sizeof why), 1);
    store_close(s);
    CHECK_EQ_INT(sqlite3_vfs_unregister(&shim_vfs), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_vfs_register(real_vfs, 1), SQLITE_OK);
}

static void test_retention(void)
{
    store_options o;
    store_options_default(&o);
    o.raw_keep_s = 3600;
    o.minute_keep_s = 2 * 3600;
    char err[STORE_ERR_MAX];
    store *s = store_open(fresh_db(), &o, err, sizeof err);
    house h;
    int64_t start = T_2024_01_15_2000_LOCAL;
    house_init(&h, start);
    rd first = h.d;
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 5 * 360; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    int r, rounds = 0;
    while ((r = store_maintain(s)) > 0 && rounds < 100)
        rounds++;
    CHECK_EQ_INT(r, 0);
    int64_t c[4] = {0, 0, 0, 0};
    store_series(s, "home", 0, h.d.ts + 1, STORE_STEP_RAW, 0, count_n, c);
    CHECK(c[0] >= 360 && c[0] <= 360 + 12);
    esum a = series_sum(s, "home", 0, h.d.ts + 1, STORE_STEP_1H, STORE_E_IMPORT, 0);
    CHECK_EQ_INT(a.sum, h.d.imp1 + h.d.imp2 - first.imp1 - first.imp2); /* hours stay */
    a = series_sum(s, "home", 0, h.d.ts + 1, STORE_STEP_1M, STORE_E_IMPORT, 0);
    CHECK(a.steps <= 121 && a.steps >= 119);
    store_close(s);
}

/* The minute tiers are cut at whole hours also while a backlog goes in slices: a slice that
 * ended mid-hour (6 hours past an oldest row at :37) left part of an hour, whose cut quarters a
 * summary would price nowhere until the next slice. */
static void test_retention_slices_whole_hours(void)
{
    store_options o;
    store_options_default(&o);
    o.minute_keep_s = 3600;
    char err[STORE_ERR_MAX];
    store *s = store_open(fresh_db(), &o, err, sizeof err);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL + 37 * 60);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 10 * 360; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK(store_maintain(s) > 0); /* the first slice of the backlog */
    static const char *const q[] = {"SELECT min(ts) FROM agg_1m", "SELECT min(ts) FROM agg_15m"};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st;
        int64_t t = -1;
        sqlite3_prepare_v2(store_db(s), q[k], -1, &st, NULL);
        if (sqlite3_step(st) == SQLITE_ROW)
            t = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        CHECK(t > T_2024_01_15_2000_LOCAL + 37 * 60 + 3600);
        CHECK_EQ_INT(t % 3600, 0);
    }
    store_close(s);
}

/* A meter that gets no reading in this run is still kept to the retention. */
static void test_retention_idle_meter(void)
{
    char err[STORE_ERR_MAX], path[128];
    store *s = open_db(fresh_db());
    snprintf(path, sizeof path, "%s", dbpath);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 5 * 360; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);
    store_options o;
    store_options_default(&o);
    o.raw_keep_s = 3600;
    o.minute_keep_s = 2 * 3600;
    s = store_open(path, &o, err, sizeof err);
    CHECK(s != NULL);
    if (!s)
        return;
    int r, rounds = 0;
    while ((r = store_maintain(s)) > 0 && rounds < 100)
        rounds++;
    CHECK_EQ_INT(r, 0);
    CHECK(rounds > 0);
    int64_t c[4] = {0, 0, 0, 0};
    store_series(s, "home", 0, h.d.ts + 1, STORE_STEP_RAW, 0, count_n, c);
    CHECK(c[0] >= 360 && c[0] <= 360 + 12);
    esum a = series_sum(s, "home", 0, h.d.ts + 1, STORE_STEP_1M, STORE_E_IMPORT, 0);
    CHECK(a.steps <= 121 && a.steps >= 119);
    store_close(s);
}

/* One writer: a second writable open with a writer name is refused, naming the holder. */
static void test_writer_lock(void)
{
    char err[STORE_ERR_MAX], want[64], path[128];
    store_options o;
    store_options_default(&o);
    o.writer = "p1d";
    store *a = store_open(fresh_db(), &o, err, sizeof err);
    snprintf(path, sizeof path, "%s", dbpath);
    CHECK(a != NULL);
    o.writer = "p1 import";
    store *b = store_open(path, &o, err, sizeof err);
    CHECK(b == NULL);
    snprintf(want, sizeof want, "in use by p1d pid %ld", (long)getpid());
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, path) != NULL);
    store_close(b);
    o.writer = NULL;
    o.readonly = 1;
    store *r = store_open(path, &o, err, sizeof err); /* readers need no lock */
    CHECK(r != NULL);
    store_close(r);
    store_close(a);
    o.readonly = 0;
    o.writer = "p1 import";
    b = store_open(path, &o, err, sizeof err); /* closed: free again */
    CHECK(b != NULL);
    store_close(b);

    /* another name for the same file: a symlink takes the same lock file, a hard link meets
     * the flock on the database itself */
    char sym[160], hard[160];
    snprintf(sym, sizeof sym, "%s/link.db", dir);
    snprintf(hard, sizeof hard, "%s/hard.db", dir);
    CHECK_EQ_INT(symlink(path, sym), 0);
    CHECK_EQ_INT(link(path, hard), 0);
    o.writer = "p1d";
    a = store_open(path, &o, err, sizeof err);
    CHECK(a != NULL);
    o.writer = "p1 import";
    b = store_open(sym, &o, err, sizeof err);
    CHECK(b == NULL);
    CHECK(strstr(err, want) != NULL);
    store_close(b);
    b = store_open(hard, &o, err, sizeof err);
    CHECK(b == NULL);
    CHECK(strstr(err, "in use by another program") != NULL);
    store_close(b);
    store_close(a);
    a = store_open(sym, &o, err, sizeof err); /* the other way round */
    CHECK(a != NULL);
    b = store_open(path, &o, err, sizeof err);
    CHECK(b == NULL);
    store_close(b);
    b = store_open(hard, &o, err, sizeof err);
    CHECK(b == NULL);
    store_close(b);
    store_close(a);
    b = store_open(hard, &o, err, sizeof err); /* closed: free again */
    CHECK(b != NULL);
    store_close(b);

    /* an SQLite "file:" URI of the same file takes the same lock file, not "file:....lock" */
    char uri[200], stray[220];
    snprintf(uri, sizeof uri, "file://%s?cache=private", path);
    snprintf(stray, sizeof stray, "%s.lock", uri);
    a = store_open(path, &o, err, sizeof err);
    CHECK(a != NULL);
    b = store_open(uri, &o, err, sizeof err);
    CHECK(b == NULL);
    CHECK(strstr(err, "in use by p1 import") != NULL);
    store_close(b);
    store_close(a);
    a = store_open(uri, &o, err, sizeof err);
    CHECK(a != NULL);
    b = store_open(path, &o, err, sizeof err);
    CHECK(b == NULL);
    store_close(b);
    store_close(a);
    CHECK(access(stray, F_OK) != 0);
    /* a database in memory takes no lock file */
    a = store_open(":memory:", &o, err, sizeof err);
    CHECK(a != NULL);
    CHECK(access(":memory:.lock", F_OK) != 0);
    store_close(a);
}

static void test_file_path(void)
{
    static const struct {
        const char *name, *file;
        int rc;
    } cases[] = {
        {"p1d.db", "p1d.db", 1},
        {"/var/lib/p1d/p1d.db", "/var/lib/p1d/p1d.db", 1},
        {"file:y.db", "y.db", 1},
        {"file:/a/b.db?mode=ro&cache=shared", "/a/b.db", 1},
        {"file:///a/b%20c.db", "/a/b c.db", 1},
        {"file://localhost/a/b.db#frag", "/a/b.db", 1},
        {"file:a%3fb.db", "a?b.db", 1},
        {"file:a%zzb.db", "a%zzb.db", 1},
        {"file:a%2", "a%2", 1},
        {"file:x.db?mode=memory&cache=shared", "", 0},
        {"file:x.db?cache=shared&mode=memory", "", 0},
        {"file:x.db?mode=memoryless", "x.db", 1},
        {"file::memory:", "", 0},
        {"file:", "", 0},
        {"file:?cache=shared", "", 0},
        {":memory:", "", 0},
        {"", "", 0},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case = cases[i].name;
        CHECK_EQ_INT(store_file_path(cases[i].name, out, sizeof out), cases[i].rc);
        CHECK_EQ_STR(out, cases[i].file);
    }
    check_case = "too long";
    CHECK_EQ_INT(store_file_path("file:abcdef", out, 4), -1);
    CHECK_EQ_INT(store_file_path("abcdef", out, 4), -1);
    CHECK_EQ_INT(store_file_path("abc", out, 4), 1);
}

static int file_bytes(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (int)n;
}

static void test_migrations(void)
{
    char err[STORE_ERR_MAX];
    char p[128];
    snprintf(p, sizeof p, "%s", fresh_db());
    store *s = open_db(p);
    int64_t v = 0;
    sqlite3_stmt *q;
    sqlite3_prepare_v2(store_db(s), "PRAGMA user_version", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    CHECK_EQ_INT(v, STORE_SCHEMA_VERSION);
    store_close(s);
    s = open_db(p); /* reopening an up-to-date database is fine */
    store_close(s);

    /* a newer version is refused and left byte-identical */
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    static char before[1 << 20], after[1 << 20];
    int nb = file_bytes(p, before, sizeof before);
    CHECK(nb > 0);
    s = store_open(p, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "newer") != NULL);
    int na = file_bytes(p, after, sizeof after);
    CHECK_EQ_INT(na, nb);
    CHECK(na == nb && memcmp(before, after, (size_t)nb) == 0);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", p);
    CHECK(access(wal, F_OK) != 0);

    /* not a database; another application's database; read-only of a missing schema */
    snprintf(p, sizeof p, "%s", fresh_db());
    FILE *f = fopen(p, "w");
    fputs("this is not a database, it is a text file with some words in it\n", f);
    fclose(f);
    s = store_open(p, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "not a usable SQLite database") != NULL);
    snprintf(p, sizeof p, "%s", fresh_db());
    sqlite3_open(p, &db);
    sqlite3_exec(db, "CREATE TABLE x (a)", NULL, NULL, NULL);
    sqlite3_close(db);
    s = store_open(p, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "did not create") != NULL);
    store_options o;
    store_options_default(&o);
    o.readonly = 1;
    s = store_open(fresh_db(), &o, err, sizeof err);
    CHECK(s == NULL);

    /* an old database (version 0, empty) is migrated in place */
    snprintf(p, sizeof p, "%s", fresh_db());
    sqlite3_open(p, &db);
    sqlite3_exec(db, "PRAGMA user_version = 0", NULL, NULL, NULL);
    sqlite3_close(db);
    s = open_db(p);
    CHECK(s != NULL);
    store_close(s);
}

static int meter_info(void *u, const store_meter_info *m)
{
    store_meter_info *out = u;
    if (!strcmp(m->name, "home"))
        *out = *m;
    return 0;
}

static void test_meters(void)
{
    store *s = open_db(fresh_db());
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    for (int i = 0; i < 100; i++) {
        house_step(&h, 7);
        add(s, "home", &h.d, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_meter_info mi;
    memset(&mi, 0, sizeof mi);
    CHECK_EQ_INT(store_meters(s, meter_info, &mi), 0);
    CHECK_EQ_STR(mi.name, "home");
    CHECK_EQ_INT(mi.last, h.d.ts);
    CHECK_EQ_INT(mi.raw_first, T_2024_01_15_2000_LOCAL);
    CHECK(mi.first > 0 && mi.first <= T_2024_01_15_2000_LOCAL);
    CHECK_EQ_INT(store_series_count(s, "home", T_2024_01_15_2000_LOCAL, h.d.ts + 1, STORE_STEP_1M),
                 (h.d.ts + 1 - T_2024_01_15_2000_LOCAL + 59) / 60);
    store_close(s);
}

/* The raw points of meter in s, or store_series()'s error. */
static int64_t raw_points(store *s, const char *meter)
{
    int64_t c[4] = {0, 0, 0, 0};
    int rc = store_series(s, meter, 0, INT64_MAX / 2, STORE_STEP_RAW, 0, count_n, c);
    return rc < 0 ? rc : c[0];
}

/* A reader (store_open_reader(), p1d's history worker) sees each commit of the writer at its
 * next query, a snapshot (store_read_begin()) none until it ends; a database in memory or not in
 * WAL mode has no reader. */
static void test_reader(void)
{
    char err[STORE_ERR_MAX];
    store *s = open_db(fresh_db());
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    store *r = store_open_reader(s, err, sizeof err);
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "store_open_reader: %s\n", err);
        store_close(s);
        return;
    }
    CHECK_EQ_INT(raw_points(r, "home"), 1);
    CHECK_EQ_INT(raw_points(r, "away"), -ENOENT);
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK_EQ_INT(raw_points(r, "home"), 2); /* committed just before: seen */
    CHECK_EQ_INT(store_read_begin(r), 0);
    CHECK_EQ_INT(raw_points(r, "home"), 2);
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0); /* WAL: the writer does not wait for the snapshot */
    CHECK_EQ_INT(raw_points(r, "home"), 2);
    CHECK_EQ_INT(store_series_count(r, "home", 0, INT64_MAX / 2, STORE_STEP_RAW), 2);
    store_read_end(r);
    CHECK_EQ_INT(raw_points(r, "home"), 3);
    store_read_end(r);            /* none open: nothing */
    CHECK(store_maintain(r) < 0); /* read-only */
    store_close(r);
    store_close(s);

    s = store_open(":memory:", NULL, err, sizeof err);
    CHECK(s != NULL);
    err[0] = '\0';
    CHECK(store_open_reader(s, err, sizeof err) == NULL);
    CHECK(strstr(err, "in memory") != NULL);
    store_close(s);
}

/* The equipment id last seen survives a restart, so p1d knows a meter before it speaks. */
static void test_meter_id(void)
{
    const char *path = fresh_db();
    char id[P1_ID_MAX + 1] = "x";
    store *s = open_db(path);
    CHECK_EQ_INT(store_meter_id(s, "home", id), 0);
    CHECK_EQ_STR(id, "");
    CHECK(store_meter_id(s, "", id) == -EINVAL);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    h.d.id = "E0031003315512345";
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_meter_id(s, "home", id), 1); /* queued, not yet committed */
    CHECK_EQ_STR(id, "E0031003315512345");
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);

    s = open_db(path);
    CHECK_EQ_INT(store_meter_id(s, "home", id), 1);
    CHECK_EQ_STR(id, "E0031003315512345");
    CHECK_EQ_INT(store_meter_id(s, "other", id), 0);
    h.d.id = "E0031003315599999"; /* the meter was replaced */
    house_step(&h, 10);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);

    s = open_db(path);
    CHECK_EQ_INT(store_meter_id(s, "home", id), 1);
    CHECK_EQ_STR(id, "E0031003315599999");
    store_close(s);
}

/* The registers of the newest reading, queued or stored, survive a restart: a simulated meter
 * continues from them. */
static void test_meter_registers(void)
{
    const char *path = fresh_db();
    int64_t c[STORE_E_COUNT];
    store *s = open_db(path);
    CHECK_EQ_INT(store_meter_registers(s, "home", c), 0);
    CHECK(store_meter_registers(s, "", c) == -EINVAL);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    const int all = 1 << STORE_E_IMPORT | 1 << STORE_E_IMPORT_T1 | 1 << STORE_E_IMPORT_T2 |
                    1 << STORE_E_EXPORT | 1 << STORE_E_EXPORT_T1 | 1 << STORE_E_EXPORT_T2 |
                    1 << STORE_E_GAS;
    CHECK_EQ_INT(store_meter_registers(s, "home", c), all); /* queued, not yet committed */
    CHECK_EQ_INT(c[STORE_E_IMPORT_T1], 100000);
    CHECK_EQ_INT(c[STORE_E_GAS], 5000000);
    CHECK_EQ_INT(store_commit(s), 0);
    for (int i = 0; i < 50; i++) {
        house_step(&h, 10);
        add(s, "home", &h.d, 0);
        if (i == 20)
            CHECK_EQ_INT(store_commit(s), 0);
    }
    CHECK_EQ_INT(store_meter_registers(s, "home", c), all); /* committed ones and a queue */
    CHECK_EQ_INT(c[STORE_E_IMPORT_T1], h.d.imp1);
    CHECK_EQ_INT(c[STORE_E_IMPORT_T2], h.d.imp2);
    CHECK_EQ_INT(c[STORE_E_EXPORT_T2], h.d.exp2);
    CHECK_EQ_INT(c[STORE_E_GAS], h.d.gas);
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);

    s = open_db(path);
    memset(c, 0, sizeof c);
    CHECK_EQ_INT(store_meter_registers(s, "home", c), all);
    CHECK_EQ_INT(c[STORE_E_IMPORT], h.d.imp1 + h.d.imp2);
    CHECK_EQ_INT(c[STORE_E_EXPORT_T1], h.d.exp1);
    CHECK_EQ_INT(c[STORE_E_GAS], h.d.gas);
    CHECK_EQ_INT(store_meter_registers(s, "other", c), 0);
    store_close(s);
}

static void test_import_marks(void)
{
    store *s = open_db(fresh_db());
    int64_t off = -1, n = -1;
    CHECK_EQ_INT(store_import_get(s, "k1", &off, &n), 0);
    CHECK_EQ_INT(store_import_set(s, "k1", "/x/cap.txt", "home", 1234, 5), 0);
    house h;
    house_init(&h, T_2024_01_15_2000_LOCAL);
    add(s, "home", &h.d, 0);
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK_EQ_INT(store_import_get(s, "k1", &off, &n), 1);
    CHECK_EQ_INT(off, 1234);
    CHECK_EQ_INT(n, 5);
    store_close(s);
}

/* ---- backfill: pieces of a history imported in any order give the database an import in
 * time order gives (store_options.backfill), across many store_flush() batches ---- */

#define BF_PIECES 6
#define BF_READINGS 400

static rd bf_rd[BF_PIECES][BF_READINGS];

/* FNV-1a over every row of a query, column types and values. */
static uint64_t rows_hash(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    uint64_t h = 1469598103934665603ULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            h = (h ^ (uint64_t)sqlite3_column_type(st, i)) * 1099511628211ULL;
            const unsigned char *p = sqlite3_column_blob(st, i);
            for (int k = 0; p && k < sqlite3_column_bytes(st, i); k++)
                h = (h ^ p[k]) * 1099511628211ULL;
        }
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    sqlite3_finalize(st);
    return h;
}

/* path opened as `p1 import` opens it: backfill on, meter home on its own clock; NULL failed. */
static store *bf_open(const char *path)
{
    store_options o;
    char err[STORE_ERR_MAX];
    store_options_default(&o);
    o.backfill = 1;
    store *s = store_open(path, &o, err, sizeof err);
    CHECK(s != NULL);
    if (s)
        store_meter_clock(s, "home", STORE_CLOCK_METER);
    return s;
}

/* Imports piece k into path in one session (an import of its own), batches of flush_every. */
static void bf_import(const char *path, int k, int flush_every, store_stats *st)
{
    static p1_reading r;
    store *s = bf_open(path);
    if (!s)
        return;
    for (int i = 0; i < BF_READINGS; i++) {
        mk(&r, &bf_rd[k][i]);
        CHECK(store_add(s, "home", &r, 0) > 0);
        if ((i + 1) % flush_every == 0)
            CHECK_EQ_INT(store_flush(s), 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    while (store_maintain(s) > 0)
        ;
    if (st)
        store_get_stats(s, st);
    store_close(s);
}

static void test_backfill_orders(void)
{
    static const char *const tables[] = {
        "SELECT * FROM meters", "SELECT * FROM raw ORDER BY ts", "SELECT * FROM agg_1m ORDER BY ts",
        "SELECT * FROM agg_15m ORDER BY ts", "SELECT * FROM agg_1h ORDER BY ts",
        "SELECT * FROM agg_1d ORDER BY ts", "SELECT * FROM segments ORDER BY ts, kind"};
    static const int orders[][BF_PIECES] = {
        {5, 4, 3, 2, 1, 0}, {0, 5, 2, 1, 4, 3}, {3, 0, 5, 1, 4, 2}, {1, 3, 5, 0, 2, 4}};
    uint64_t want[sizeof tables / sizeof tables[0]];
    house h;
    /* pieces of 400 readings 7 s apart (not minute-aligned) with 1000 s gaps; piece 4 is another
     * meter with lower counters (a replacement), piece 5 follows piece 4 without a gap */
    house_init(&h, T_2024_01_15_2000_LOCAL);
    for (int k = 0; k < BF_PIECES; k++) {
        if (k == 4) {
            h.d.id = "E0002";
            h.d.imp1 = 10;
            h.d.imp2 = 20;
        }
        for (int i = 0; i < BF_READINGS; i++) {
            house_step(&h, 7);
            bf_rd[k][i] = h.d;
        }
        if (k != 4) {
            h.d.ts += 1000;
            h.d.imp1 += 300;
        }
    }
    const char *ref = fresh_db();
    char path[128];
    snprintf(path, sizeof path, "%s", ref);
    for (int k = 0; k < BF_PIECES; k++)
        bf_import(path, k, 1000, NULL);
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        want[t] = rows_hash(db, tables[t]);
    sqlite3_close(db);
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        const char *p = fresh_db();
        uint64_t backfilled = 0;
        for (int k = 0; k < BF_PIECES; k++) {
            store_stats st;
            bf_import(p, orders[o][k], 7 + (int)o * 13, &st);
            backfilled = st.backfilled;
        }
        CHECK(o == 1 || backfilled > 0);
        CHECK_EQ_INT(sqlite3_open(p, &db), SQLITE_OK);
        for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
            uint64_t got = rows_hash(db, tables[t]);
            if (got != want[t])
                fprintf(stderr, "order %zu: %s differs\n", o, tables[t]);
            CHECK(got == want[t]);
        }
        sqlite3_close(db);
    }
}

/* ---- gas at its capture time ---- */

#define GC_START    (T_2024_01_15_2000_LOCAL + 2 * 3600 + 1800) /* 22:30 local */
#define GC_READINGS 1100

/* The gas meter's value (dm3) read on the hour h hours after 22:00 local: a different amount
 * each hour, so that an hour booked in the wrong place shows. */
static int64_t gc_value(int64_t h)
{
    return 700000 + 100 * h + 10 * h * h;
}

/* Reading i of a DSMR 4 meter from 22:30 local, 10 s apart: the gas meter is read on the hour
 * and its value shows from 4 minutes past on (captured hh:00:00). p1d is down from 23:44 to
 * 00:06; the last reading comes at 04:30 with a value captured at 02:00 that rose (a gas meter
 * the meter could not read for a while): 2.5 hours old, so it goes to the reading's own hour. */
static rd gc_reading(int i)
{
    rd d;
    memset(&d, 0, sizeof d);
    d.ts = GC_START + 10 * i;
    if (d.ts >= GC_START + 74 * 60) /* 23:44 .. 00:06: nothing */
        d.ts += 22 * 60;
    if (i == GC_READINGS - 1)
        d.ts = GC_START + 6 * 3600; /* 04:30 */
    d.imp1 = 100000 + i;
    d.imp2 = 200000;
    d.tariff = 1;
    d.pw = 360;
    int64_t hour0 = GC_START - 1800; /* 22:00 */
    int64_t h = (d.ts - hour0) / 3600;
    if (d.ts - (hour0 + 3600 * h) < 240)
        h--; /* the new hour's value is not there yet */
    d.gas_at = hour0 + 3600 * h;
    d.gas = gc_value(h);
    if (i == GC_READINGS - 1) {
        d.gas_at = hour0 + 4 * 3600; /* 02:00 */
        d.gas = gc_value(3) + 5;
    }
    return d;
}

/* Stores readings [from, to) of gc_reading() into path (backfill on, one session). */
static void gc_store(const char *path, int from, int to)
{
    static p1_reading r;
    store *s = bf_open(path);
    if (!s)
        return;
    for (int i = from; i < to; i++) {
        rd d = gc_reading(i);
        mk(&r, &d);
        CHECK(store_add(s, "home", &r, 0) > 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    store_close(s);
}

/* The gas of the step of `step` labelled t (STORE_NULL none) and its reading count. */
static int64_t gc_step(store *s, store_step step, int64_t t, int64_t *n)
{
    static store_point buf[4];
    pts got = {buf, 0};
    CHECK_EQ_INT(store_series(s, "home", t, t + 1, step, STORE_SERIES_GAPS, collect, &got), 0);
    *n = got.n ? got.p[0].n : -1;
    return got.n && got.p[0].ts == t ? got.p[0].energy[STORE_E_GAS] : STORE_NULL;
}

/* A DSMR 4 meter's hourly gas arrives minutes after the hour it was used in: it is booked in that
 * hour (its quarter hour, its day); a step p1d has no reading in gets a row for it; the minutes
 * keep it where it arrived; a value captured more than STORE_CAPTURE_MAX before its reading stays
 * with the reading; and a rebuild or storing the readings in another order gives the same rows. */
static void test_gas_capture(void)
{
    static const char *const tables[] = {
        "SELECT * FROM agg_1m ORDER BY ts", "SELECT * FROM agg_15m ORDER BY ts",
        "SELECT * FROM agg_1h ORDER BY ts", "SELECT * FROM agg_1d ORDER BY ts"};
    uint64_t want[4];
    int64_t h22 = GC_START - 1800, n;
    char ref[128];
    snprintf(ref, sizeof ref, "%s", fresh_db());
    gc_store(ref, 0, GC_READINGS);
    store *s = open_db(ref);
    /* 22:00 and 23:00 are the 15th's (local), 00:00 the 16th's */
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1H, h22, &n), gc_value(1) - gc_value(0));
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1H, h22 + 3600, &n), gc_value(2) - gc_value(1));
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1H, h22 + 7200, &n), gc_value(3) - gc_value(2));
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1H, h22 + 10800, &n), 0); /* 01:00: read at 02:00 */
    int64_t d15 = store_step_floor(STORE_STEP_1D, h22);
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1D, d15, &n), gc_value(2) - gc_value(0));
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1D, d15 + 86400, &n), gc_value(3) - gc_value(2) + 5);
    /* the quarter hour before each capture; 23:45 had no reading (p1d down) */
    CHECK_EQ_INT(gc_step(s, STORE_STEP_15M, h22 + 2700, &n), gc_value(1) - gc_value(0));
    CHECK(n > 0);
    CHECK_EQ_INT(gc_step(s, STORE_STEP_15M, h22 + 6300, &n), gc_value(2) - gc_value(1));
    CHECK_EQ_INT(n, 0);
    /* ... and not the quarters the values arrived in */
    CHECK_EQ_INT(gc_step(s, STORE_STEP_15M, h22 + 3600, &n), 0);
    CHECK(n > 0);
    /* the minutes: where the value arrived (23:04, and 00:06 after the outage) */
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1M, h22 + 3540, &n), 0);
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1M, h22 + 3780, &n), gc_value(1) - gc_value(0));
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1M, h22 + 7140, &n), STORE_NULL);
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1M, h22 + 7500, &n), gc_value(2) - gc_value(1));
    /* captured 2.5 h before its reading at 04:30: booked at 04:00-05:00 */
    CHECK_EQ_INT(gc_step(s, STORE_STEP_1H, h22 + 6 * 3600, &n), 5);
    /* the whole range still adds up at every step */
    for (int step = STORE_STEP_1M; step <= STORE_STEP_1D; step++) {
        esum a = series_sum(s, "home", h22 - 86400, h22 + 86400, (store_step)step, STORE_E_GAS, 0);
        CHECK_EQ_INT(a.sum, gc_value(3) - gc_value(0) + 5);
        CHECK_EQ_INT(a.negative, 0);
    }
    store_close(s);
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(ref, &db), SQLITE_OK);
    for (size_t t = 0; t < 4; t++)
        want[t] = rows_hash(db, tables[t]);
    sqlite3_close(db);
    /* a rebuild from the raw readings books the same */
    s = open_db(ref);
    CHECK_EQ_INT(store_rebuild(s, "home"), 0);
    store_close(s);
    CHECK_EQ_INT(sqlite3_open(ref, &db), SQLITE_OK);
    for (size_t t = 0; t < 4; t++)
        CHECK(rows_hash(db, tables[t]) == want[t]);
    sqlite3_close(db);
    /* the readings after the outage first, then those before it (a backfill before the first
     * reading); and the other way round with the middle last (a backfill into a gap) */
    static const int cut[][4] = {{160, GC_READINGS, 0, 160}, {0, 100, 200, GC_READINGS}};
    for (size_t o = 0; o < 2; o++) {
        const char *p = fresh_db();
        gc_store(p, cut[o][0], cut[o][1]);
        gc_store(p, cut[o][2], cut[o][3]);
        if (o == 1)
            gc_store(p, 100, 200);
        CHECK_EQ_INT(sqlite3_open(p, &db), SQLITE_OK);
        for (size_t t = 0; t < 4; t++) {
            uint64_t got = rows_hash(db, tables[t]);
            if (got != want[t])
                fprintf(stderr, "gas capture, order %zu: %s differs\n", o, tables[t]);
            CHECK(got == want[t]);
        }
        sqlite3_close(db);
    }
}

/* A failed backfill commit loads the meter's state from the database again, but keeps its
 * clock: an older reading queued next (with our clock far ahead) still goes by its meter time
 * into the backfill, instead of clock=auto stamping it after the newest. */
static void test_backfill_failure_keeps_clock(void)
{
    static p1_reading r;
    store_options o;
    store_stats st;
    char err[STORE_ERR_MAX];
    house h;
    rd old[2];
    store_options_default(&o);
    o.backfill = 1;
    store *s = store_open(fresh_db(), &o, err, sizeof err);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ_INT(store_meter_clock(s, "home", STORE_CLOCK_METER), 0);
    house_init(&h, T_2024_01_15_2000_LOCAL);
    for (int i = 0; i < 2; i++) {
        house_step(&h, 10);
        old[i] = h.d;
    }
    h.d.ts += 3600;
    house_step(&h, 10);
    mk(&r, &h.d);
    CHECK_EQ_INT(store_add(s, "home", &r, 0), 1);
    CHECK_EQ_INT(store_commit(s), 0);
    CHECK_EQ_INT(sqlite3_exec(store_db(s),
                              "CREATE TEMP TRIGGER fail BEFORE INSERT ON main.raw "
                              "BEGIN SELECT RAISE(ABORT, 'injected'); END",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    mk(&r, &old[0]);
    CHECK_EQ_INT(store_add(s, "home", &r, 0), 2);
    CHECK(store_commit(s) < 0);
    CHECK_EQ_INT(sqlite3_exec(store_db(s), "DROP TRIGGER temp.fail", NULL, NULL, NULL), SQLITE_OK);
    mk(&r, &old[1]);
    CHECK_EQ_INT(store_add(s, "home", &r, (old[1].ts + 86400) * 1000), 2);
    CHECK_EQ_INT(store_commit(s), 0);
    store_get_stats(s, &st);
    CHECK_EQ_INT((int)st.backfilled, 1);
    store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_steps);
    RUN(test_tariff_midnight);
    RUN(test_dst);
    RUN(test_replacement_and_reset);
    RUN(test_cut_telegram);
    RUN(test_gaps_and_clock);
    RUN(test_clock_meter_jump);
    RUN(test_clock_hysteresis);
    RUN(test_clock_unsynced);
    RUN(test_clock_stepped_back);
    RUN(test_restart_and_rebuild);
    RUN(test_restart_gas_silent);
    RUN(test_restart_power_only);
    RUN(test_forget);
    RUN(test_full_disk);
    RUN(test_full_disk_segments);
    RUN(test_checkpoint_recovers);
    RUN(test_retention);
    RUN(test_retention_slices_whole_hours);
    RUN(test_retention_idle_meter);
    RUN(test_writer_lock);
    RUN(test_file_path);
    RUN(test_migrations);
    RUN(test_import_marks);
    RUN(test_meters);
    RUN(test_reader);
    RUN(test_meter_id);
    RUN(test_meter_registers);
    RUN(test_backfill_orders);
    RUN(test_backfill_failure_keeps_clock);
    RUN(test_gas_capture);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!getenv("KEEP") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_store");
}
