/* bench_store.c: the store's size per raw reading, the steady-state size of a year at 1 Hz, query
 * times, and `p1 import` speed. The last line is machine-readable (see docs/STORE.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p1/p1.h"
#include "p1/reading.h"
#include "sim.h"
#include "store.h"

#define BENCH_DAYS 10              /* simulated at 1 Hz; raw keeps 7 of them (steady state) */
#define BENCH_IMPORT_TELEGRAMS 1000000
#define BENCH_START 1704067200LL   /* 2024-01-01T00:00:00Z */
#define BENCH_PATH_MAX 512

typedef struct feed {
    store *s;
    p1_reading r;
    uint64_t n;
} feed;

static void on_begin(void *u, const p1_telegram *t)
{
    p1_reading_begin(&((feed *)u)->r, t);
}

static void on_object(void *u, const p1_object *o)
{
    p1_reading_add(&((feed *)u)->r, o);
}

static void on_end(void *u, const p1_telegram *t)
{
    feed *f = u;
    if (t->error != P1_ERR_OK)
        return;
    p1_reading_end(&f->r, t);
    if (store_add(f->s, "home", &f->r, 0) > 0)
        f->n++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes of the b-tree pages of one table (dbstat), and its rows. */
static int64_t table_bytes(sqlite3 *db, const char *table)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "SELECT sum(pgsize) FROM dbstat WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int count_point(void *u, const store_point *p)
{
    (void)p;
    (*(int64_t *)u)++;
    return 0;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/bench_store.XXXXXX", path[BENCH_PATH_MAX], cap[BENCH_PATH_MAX],
         cmd[4 * BENCH_PATH_MAX], err[STORE_ERR_MAX];
    (void)argc;
    if (!mkdtemp(dir)) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/size.db", dir);

    /* 1. size: BENCH_DAYS of a DSMR 5 meter (3 phases, gas, solar) at 1 Hz, default retention */
    store_options o;
    store_options_default(&o);
    o.queue_max = 100000;
    store *s = store_open(path, &o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    static sim sm;
    static p1_parser p;
    static feed f;
    sim_options so;
    sim_options_default(&so);
    so.start = BENCH_START;
    sim_init(&sm, &so);
    f.s = s;
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(&p, NULL, &cb, &f);
    char out[SIM_OUT_MAX];
    double t0 = now_s();
    for (int64_t i = 0; i < (int64_t)BENCH_DAYS * 86400; i++) {
        size_t n = sim_next(&sm, out, sizeof out);
        p1_execute(&p, out, n);
        if (store_pending(s) >= 50000 && store_commit(s) < 0) {
            fprintf(stderr, "bench_store: commit failed\n");
            return 1;
        }
    }
    store_commit(s);
    while (store_maintain(s) > 0)
        ;
    double feed_s = now_s() - t0;
    sqlite3 *db = store_db(s);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    int64_t raw_readings = scalar(db, "SELECT sum(n) FROM raw");
    int64_t raw_b = table_bytes(db, "raw");
    int64_t b1m = table_bytes(db, "agg_1m"), b15 = table_bytes(db, "agg_15m");
    int64_t b1h = table_bytes(db, "agg_1h"), b1d = table_bytes(db, "agg_1d");
    int64_t n1m = scalar(db, "SELECT count(*) FROM agg_1m"), n15 = scalar(db, "SELECT count(*) FROM agg_15m");
    int64_t n1h = scalar(db, "SELECT count(*) FROM agg_1h"), n1d = scalar(db, "SELECT count(*) FROM agg_1d");
    int64_t pages = scalar(db, "PRAGMA page_count"), freep = scalar(db, "PRAGMA freelist_count");
    int64_t psize = scalar(db, "PRAGMA page_size");

    /* query times on this database */
    int64_t cnt = 0, last = BENCH_START + (int64_t)BENCH_DAYS * 86400;
    double q0 = now_s();
    store_series(s, "home", last - 86400, last, STORE_STEP_RAW, 0, count_point, &cnt);
    double q_raw_day = (now_s() - q0) * 1000;
    int64_t cnt_raw = cnt;
    cnt = 0;
    q0 = now_s();
    store_series(s, "home", last - 365 * 86400, last, STORE_STEP_1D, STORE_SERIES_GAPS,
                 count_point, &cnt);
    double q_year_day = (now_s() - q0) * 1000;
    cnt = 0;
    q0 = now_s();
    store_series(s, "home", last - 365 * 86400, last, STORE_STEP_1H, STORE_SERIES_GAPS,
                 count_point, &cnt);
    double q_year_hour = (now_s() - q0) * 1000;
    store_close(s);

    /* Steady state of a year: 7 days of raw, a year of each aggregate tier (measured bytes per
     * row), plus a fixed allowance for the schema and the WAL (journal_size_limit 4 MiB). */
    double per_raw = (double)raw_b / (double)raw_readings;
    double r1m = (double)b1m / (double)n1m, r15 = (double)b15 / (double)n15;
    double r1h = (double)b1h / (double)n1h, r1d = (double)b1d / (double)n1d;
    double year = per_raw * 7 * 86400 + r1m * 525600 + r15 * 35040 + r1h * 8760 + r1d * 365 +
                  4 * 1048576.0 + 16 * 4096.0;
    double year2 = per_raw * 7 * 86400 + 2 * (r1m * 525600 + r15 * 35040) + r1h * 8760 +
                   r1d * 365 + 4 * 1048576.0 + 16 * 4096.0;
    printf("simulated %d days at 1 Hz in %.1f s (%.0f readings/s through parser + store)\n",
           BENCH_DAYS, feed_s, (double)BENCH_DAYS * 86400 / feed_s);
    printf("raw: %" PRId64 " readings kept in %" PRId64 " bytes = %.1f bytes/reading\n",
           raw_readings, raw_b, per_raw);
    printf("agg_1m %.1f B/row (%" PRId64 "), agg_15m %.1f (%" PRId64 "), agg_1h %.1f (%" PRId64
           "), agg_1d %.1f (%" PRId64 ")\n",
           r1m, n1m, r15, n15, r1h, n1h, r1d, n1d);
    printf("file: %" PRId64 " pages of %" PRId64 " (%" PRId64 " free)\n", pages, psize, freep);
    printf("steady state: first year %.1f MB, from the third year on (2 years of 1m/15m) %.1f MB "
           "+ %.2f MB per further year\n",
           year / 1e6, year2 / 1e6, (r1h * 8760 + r1d * 365) / 1e6);
    printf("queries: a day of raw (%" PRId64 " points) %.1f ms, a year daily %.2f ms, a year "
           "hourly %.1f ms\n",
           cnt_raw, q_raw_day, q_year_day, q_year_hour);

    /* 2. import speed: a capture from `p1 sim --count N`, imported by `p1 import` */
    char p1[BENCH_PATH_MAX];
    const char *slash = strrchr(argv[0], '/');
    snprintf(p1, sizeof p1, "%.*sp1", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    snprintf(cap, sizeof cap, "%s/capture.txt", dir);
    snprintf(cmd, sizeof cmd, "%s sim --start 2024-01-01T00:00:00Z --count %d > %s", p1,
             BENCH_IMPORT_TELEGRAMS, cap);
    double ips = 0;
    if (system(cmd) == 0) {
        snprintf(cmd, sizeof cmd, "%s import --quiet --db %s/import.db %s", p1, dir, cap);
        q0 = now_s();
        int rc = system(cmd);
        double dt = now_s() - q0;
        if (rc == 0)
            ips = BENCH_IMPORT_TELEGRAMS / dt;
        printf("import: %d telegrams in %.2f s\n", BENCH_IMPORT_TELEGRAMS, dt);
    } else {
        fprintf(stderr, "bench_store: cannot run %s sim; import speed not measured\n", p1);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_store: could not remove %s\n", dir);
    printf("store_bytes_per_raw_reading=%.1f store_year_mb=%.1f store_2year_mb=%.1f "
           "import_telegrams_per_s=%.0f query_day_raw_ms=%.1f query_year_1d_ms=%.2f\n",
           per_raw, year / 1e6, year2 / 1e6, ips, q_raw_day, q_year_day);
    return 0;
}
