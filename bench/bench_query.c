/* bench_query.c: history query times on a year of synthetic readings (a reading a minute, the last
 * day at 1 Hz) with a year of hourly dynamic prices; the last line is machine-readable. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "civil.h"
#include "cost.h"
#include "p1/p1.h"
#include "p1/reading.h"
#include "store.h"

#define BENCH_START 1704067200LL /* 2024-01-01T00:00:00Z */
#define BENCH_DAYS 365
#define BENCH_COARSE_S 60        /* reading interval before the last day */
#define BENCH_RUNS 5             /* each query is timed this many times; the best counts */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void meter_time(int64_t t, p1_time *out)
{
    if (p1_time_from_unix(t, out) < 0)
        memset(out, 0, sizeof *out);
}

/* A household: a base load with a daily rhythm, some solar export by day, gas hourly. */
static void synth(p1_reading *r, int64_t t, int64_t *imp_mwh, int64_t *exp_mwh, int64_t dt)
{
    civil_tm l;
    civil_local(t, &l);
    int64_t w_in = 150 + (l.hour >= 7 && l.hour < 23 ? 300 : 0) + (t / 60 % 17) * 20;
    int64_t w_out = l.hour >= 10 && l.hour < 16 ? 800 + (t / 300 % 7) * 50 : 0;
    int64_t net = w_in - w_out;
    if (net > 0)
        *imp_mwh += net * dt * 1000 / 3600; /* p1_micro of kWh: milli-Wh */
    else
        *exp_mwh += -net * dt * 1000 / 3600;
    p1_reading_init(r);
    r->has_time = 1;
    meter_time(t, &r->time);
    int low = l.hour < 7 || l.hour >= 23 || l.wday == 0 || l.wday == 6;
    r->tariff = low ? 1 : 2;
    /* Tariff 1 and 2 registers: a fixed share keeps this cheap and monotonic. */
    r->import[1] = *imp_mwh / 3 / 1000 * 1000;
    r->import[2] = *imp_mwh / 1000 * 1000 - r->import[1];
    r->import_total = r->import[1] + r->import[2];
    r->export_[1] = *exp_mwh / 2 / 1000 * 1000;
    r->export_[2] = *exp_mwh / 1000 * 1000 - r->export_[1];
    r->export_total = r->export_[1] + r->export_[2];
    r->power_import = net > 0 ? net * 1000 : 0;
    r->power_export = net < 0 ? -net * 1000 : 0;
    r->power_net = net * 1000;
    r->nphases = 1;
    r->phase[0].voltage = (2290 + t % 20) * 100000;
    r->phase[0].current = (net > 0 ? net : -net) * 1000000 / 230;
    r->mbus[0].present = 1;
    r->mbus[0].medium = P1_MEDIUM_GAS;
    r->mbus[0].value = (t - BENCH_START) / 3600 * 150000; /* 0.15 m3 an hour */
    meter_time(t - t % 3600, &r->mbus[0].time);
    snprintf(r->mbus[0].unit, sizeof r->mbus[0].unit, "m3");
}

typedef struct sink {
    int64_t n, sum;
    const cost_prices *prices;
    cost_cursor cur;
    int64_t cost;
} sink;

static int count_point(void *u, const store_point *p)
{
    sink *k = u;
    k->n++;
    k->sum += p->energy[STORE_E_IMPORT] == STORE_NULL ? 0 : p->energy[STORE_E_IMPORT];
    return 0;
}

static int cost_point(void *u, const store_point *p)
{
    sink *k = u;
    k->n++;
    if (p->n == 0)
        return 0;
    cost_parts c;
    cost_step(k->prices, &k->cur, p->ts, p->end, p->energy, &c);
    k->cost += c.energy + c.gas + c.fixed;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/p1d-bench-query-XXXXXX", path[256], err[STORE_ERR_MAX];
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_query: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/q.db", dir);
    store_options o;
    store_options_default(&o);
    o.raw_keep_s = 0; /* keep the 1 Hz day whatever its age */
    o.queue_max = 200000;
    store *s = store_open(path, &o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_query: %s\n", err);
        return 1;
    }
    static p1_reading r;
    int64_t imp = 10000000000LL, exp = 0, end = BENCH_START + BENCH_DAYS * 86400LL;
    int64_t last_day = end - 86400;
    double t0 = now_ms();
    int64_t n = 0;
    for (int64_t t = BENCH_START; t < end; n++) {
        int64_t dt = t < last_day ? BENCH_COARSE_S : 1;
        synth(&r, t, &imp, &exp, dt);
        if (store_add(s, "home", &r, 0) < 0) {
            fprintf(stderr, "bench_query: store_add failed\n");
            return 1;
        }
        if (store_pending(s) >= 50000 && store_commit(s) < 0) {
            fprintf(stderr, "bench_query: commit failed\n");
            return 1;
        }
        t += dt;
    }
    store_commit(s);
    double fill_ms = now_ms() - t0;

    /* A year of hourly dynamic prices, plus fixed prices for the rest. */
    char errc[COST_ERR_MAX];
    cost_dyns d = {0};
    size_t hours = (size_t)(end - BENCH_START) / 3600;
    d.v = malloc(hours * sizeof *d.v);
    if (!d.v || cost_db_init(store_db(s), errc, sizeof errc) < 0)
        return 1;
    for (size_t i = 0; i < hours; i++) {
        d.v[i].ts = BENCH_START + (int64_t)i * 3600;
        d.v[i].end = d.v[i].ts + 3600;
        d.v[i].import_ = 100000 + (int64_t)(i * 7919 % 200000);
        d.v[i].export_ = COST_UNSET;
    }
    d.n = d.cap = hours;
    cost_fixed f;
    cost_fixed_init(&f);
    cost_fixed_set(&f, "gas", "1.25", NULL, 0);
    cost_fixed_set(&f, "daily", "0.85", NULL, 0);
    if (cost_db_save_dynamic(store_db(s), COST_KIND_POWER, &d, errc, sizeof errc) < 0 ||
        cost_db_save_fixed(store_db(s), &f, errc, sizeof errc) < 0) {
        fprintf(stderr, "bench_query: %s\n", errc);
        return 1;
    }
    cost_dyns_free(&d);

    double best_daily = 1e9, best_raw = 1e9, best_cost = 1e9;
    sink k;
    int64_t raw_points = 0, daily_points = 0, cost_points = 0, total_cost = 0;
    for (int run = 0; run < BENCH_RUNS; run++) {
        memset(&k, 0, sizeof k);
        double q = now_ms();
        store_series(s, "home", BENCH_START, end, STORE_STEP_1D, STORE_SERIES_GAPS, count_point,
                     &k);
        double dt = now_ms() - q;
        best_daily = dt < best_daily ? dt : best_daily;
        daily_points = k.n;

        memset(&k, 0, sizeof k);
        q = now_ms();
        store_series(s, "home", last_day, end, STORE_STEP_RAW, 0, count_point, &k);
        dt = now_ms() - q;
        best_raw = dt < best_raw ? dt : best_raw;
        raw_points = k.n;

        /* A year of hourly costs: load the prices, price every hour of the year. */
        memset(&k, 0, sizeof k);
        q = now_ms();
        cost_prices p;
        if (cost_db_load(store_db(s), BENCH_START, end, &p, errc, sizeof errc) < 0) {
            fprintf(stderr, "bench_query: %s\n", errc);
            return 1;
        }
        k.prices = &p;
        /* As /api/history does: price the quarter-hours, then read the hours (the fallback for
         * hours without quarter-hour data). */
        store_series(s, "home", BENCH_START, end, STORE_STEP_15M, 0, cost_point, &k);
        sink hk;
        memset(&hk, 0, sizeof hk);
        store_series(s, "home", BENCH_START, end, STORE_STEP_1H, STORE_SERIES_GAPS, count_point,
                     &hk);
        k.n = hk.n;
        cost_prices_free(&p);
        dt = now_ms() - q;
        best_cost = dt < best_cost ? dt : best_cost;
        cost_points = k.n;
        total_cost = k.cost;
    }
    store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_query: could not remove %s\n", dir);

    printf("filled %" PRId64 " readings (a year at %d s, the last day at 1 s) in %.1f s\n", n,
           BENCH_COARSE_S, fill_ms / 1000);
    printf("a year daily: %" PRId64 " points in %.2f ms (target <= 10)\n", daily_points,
           best_daily);
    printf("a day raw: %" PRId64 " points in %.1f ms (target <= 150)\n", raw_points, best_raw);
    printf("a year of hourly costs with dynamic prices (from quarter-hours): %" PRId64 " hours, %" PRId64
           ".%06" PRId64 " EUR, in %.1f ms (target <= 100)\n",
           cost_points, total_cost / 1000000, (total_cost < 0 ? -total_cost : total_cost) % 1000000,
           best_cost);
    printf("query_year_daily_ms=%.2f query_day_raw_ms=%.1f query_year_hourly_cost_ms=%.1f\n",
           best_daily, best_raw, best_cost);
    return 0;
}
