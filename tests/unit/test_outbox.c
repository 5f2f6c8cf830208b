/* test_outbox.c: the outbox over a real store: cursors per publisher and meter, persistence across
 * reopen, at-least-once (no ack = same points again), parking, lag, and the three rate modes. */
#define _GNU_SOURCE
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "outbox.h"
#include "store.h"

#define T0 1738281600LL /* 2025-01-31T00:00:00Z, a whole minute */
#define N  250          /* readings, one per second from T0 */

static char dir[64], dbpath[128];

/* The meter's clock (CET/CEST) showing unix time t. */
static void civil(int64_t t, p1_time *out)
{
    if (p1_time_from_unix(t, out) < 0)
        memset(out, 0, sizeof *out);
}

/* A store with N readings of meter "home" (and 10 of "shed"), one per second from T0. */
static store *fill(void)
{
    static p1_reading r;
    char err[STORE_ERR_MAX];
    unlink(dbpath);
    store *s = store_open(dbpath, NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "store_open: %s\n", err);
        exit(1);
    }
    for (int i = 0; i < N; i++) {
        p1_reading_init(&r);
        civil(T0 + i, &r.time);
        r.has_time = 1;
        snprintf(r.equipment_id, sizeof r.equipment_id, "E0001");
        r.import[1] = (int64_t)(100000 + i) * 1000; /* Wh * 1000 = kWh in micro units */
        r.import_total = r.import[1];
        r.tariff = 1;
        r.power_import = (int64_t)(500 + i) * 1000; /* W * 1000 = kW micro */
        store_add(s, "home", &r, 0);
        if (i < 10)
            store_add(s, "shed", &r, 0);
    }
    CHECK_EQ_INT(store_commit(s), 0);
    return s;
}

static int fetch_ts(outbox *ob, const char *meter, int64_t *ts, size_t max)
{
    static store_point pts[OUTBOX_BATCH_MAX];
    int n = outbox_fetch(ob, meter, pts, max);
    for (int i = 0; i < n; i++)
        ts[i] = pts[i].ts;
    return n;
}

static void test_every(void)
{
    char err[256];
    int64_t ts[OUTBOX_BATCH_MAX];
    store_point pts[OUTBOX_BATCH_MAX];
    outbox_lag lag;
    check_case = "every";
    store *s = fill();
    outbox *ob = outbox_new(s, "azure x/t", OUTBOX_EVERY, 0, 0, err, sizeof err);
    CHECK(ob != NULL);
    CHECK_EQ_STR(outbox_name(ob), "azure x/t");

    int n = fetch_ts(ob, "home", ts, 100);
    CHECK_EQ_INT(n, 100);
    CHECK_EQ_INT(ts[0], T0);
    CHECK_EQ_INT(ts[99], T0 + 99);
    /* not acknowledged: the same points again (at-least-once) */
    n = fetch_ts(ob, "home", ts, 100);
    CHECK_EQ_INT(n, 100);
    CHECK_EQ_INT(ts[0], T0);

    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.readings, N);
    CHECK_EQ_INT(lag.cursor, 0);
    CHECK(lag.seconds > 0);

    CHECK_EQ_INT(outbox_ack(ob, "home", T0 + 99), 0);
    n = fetch_ts(ob, "home", ts, 100);
    CHECK_EQ_INT(n, 100);
    CHECK_EQ_INT(ts[0], T0 + 100);
    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.readings, N - 100);
    CHECK_EQ_INT(lag.cursor, T0 + 99);
    CHECK_EQ_INT(lag.delivered, 100);

    /* several batches in flight: fetch after what was handed out, not after the cursor */
    n = outbox_fetch_after(ob, "home", T0 + 199, pts, 100);
    CHECK_EQ_INT(n, N - 200);
    CHECK_EQ_INT(pts[0].ts, T0 + 200);
    CHECK_EQ_INT(pts[0].counter[STORE_E_IMPORT], 100200);
    CHECK_EQ_INT(pts[0].q[STORE_Q_POWER].sum, 700);
    n = outbox_fetch_after(ob, "home", 0, pts, 5); /* before the cursor: from the cursor */
    CHECK_EQ_INT(pts[0].ts, T0 + 100);

    /* moving backwards is ignored */
    CHECK_EQ_INT(outbox_ack(ob, "home", T0 + 10), 0);
    CHECK_EQ_INT(outbox_cursor(ob, "home"), T0 + 99);

    /* max is clamped to OUTBOX_BATCH_MAX; zero asks for nothing */
    CHECK_EQ_INT(outbox_fetch(ob, "home", pts, 0), 0);

    /* meters are independent; an unknown meter has nothing and no lag */
    n = fetch_ts(ob, "shed", ts, 100);
    CHECK_EQ_INT(n, 10);
    CHECK_EQ_INT(fetch_ts(ob, "nobody", ts, 100), 0);
    CHECK_EQ_INT(outbox_lag_get(ob, "nobody", &lag), 0);
    CHECK_EQ_INT(lag.readings, 0);

    /* parking skips a refused stretch and records it */
    CHECK_EQ_INT(outbox_park(ob, "home", T0 + 149, "HTTP 400 InvalidInput"), 0);
    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.parked, 50);
    CHECK_EQ_INT(lag.readings, N - 150);
    n = fetch_ts(ob, "home", ts, 1);
    CHECK_EQ_INT(ts[0], T0 + 150);
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(store_db(s),
                             "SELECT from_ts, to_ts, points, reason FROM outbox_parked", -1, &st,
                             NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int64(st, 0), T0 + 100);
    CHECK_EQ_INT(sqlite3_column_int64(st, 1), T0 + 149);
    CHECK_EQ_INT(sqlite3_column_int64(st, 2), 50);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 3), "HTTP 400 InvalidInput");
    sqlite3_finalize(st);

    /* a retry is counted */
    outbox_count_retry(ob, "home");
    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.retries, 1);

    /* the cursor survives closing and reopening; other publishers have their own */
    outbox_free(ob);
    store_close(s);
    s = store_open(dbpath, NULL, err, sizeof err);
    CHECK(s != NULL);
    ob = outbox_new(s, "azure x/t", OUTBOX_EVERY, 0, 0, err, sizeof err);
    CHECK_EQ_INT(outbox_cursor(ob, "home"), T0 + 149);
    n = fetch_ts(ob, "home", ts, 1);
    CHECK_EQ_INT(ts[0], T0 + 150);
    outbox *other = outbox_new(s, "mqtt", OUTBOX_EVERY, 0, 0, err, sizeof err);
    n = fetch_ts(other, "home", ts, 1);
    CHECK_EQ_INT(ts[0], T0);
    outbox_free(other);
    /* a new publisher may start later than the oldest point */
    other = outbox_new(s, "late", OUTBOX_EVERY, 0, T0 + 240, err, sizeof err);
    n = fetch_ts(other, "home", ts, 100);
    CHECK_EQ_INT(n, 10);
    CHECK_EQ_INT(ts[0], T0 + 240);
    outbox_free(other);
    outbox_free(ob);
    store_close(s);
}

static void test_interval(void)
{
    char err[256];
    int64_t ts[OUTBOX_BATCH_MAX];
    check_case = "interval";
    store *s = fill();
    outbox *ob = outbox_new(s, "iv", OUTBOX_INTERVAL, 10, 0, err, sizeof err);
    int n = fetch_ts(ob, "home", ts, 100);
    CHECK_EQ_INT(n, N / 10);
    int ok = 1;
    for (int i = 0; i < n; i++)
        ok &= ts[i] == T0 + 10 * i;
    CHECK(ok);
    CHECK_EQ_INT(outbox_ack(ob, "home", T0 + 90), 0);
    n = fetch_ts(ob, "home", ts, 100);
    CHECK_EQ_INT(ts[0], T0 + 100);
    CHECK_EQ_INT(n, N / 10 - 10);
    outbox_lag lag;
    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.delivered, 10);
    CHECK(outbox_new(s, "bad", OUTBOX_INTERVAL, 0, 0, err, sizeof err) == NULL);
    outbox_free(ob);
    store_close(s);
}

static void test_minute(void)
{
    char err[256];
    store_point pts[OUTBOX_BATCH_MAX];
    check_case = "minute";
    store *s = fill();
    outbox *ob = outbox_new(s, "min", OUTBOX_MINUTE, 0, 0, err, sizeof err);
    /* steps hold T < t <= T + 60: T0 - 60 holds T0 alone; T0 + 240 (to T0 + 249) is still open */
    int n = outbox_fetch(ob, "home", pts, 100);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(pts[0].ts, T0 - 60);
    CHECK_EQ_INT(pts[0].n, 1);
    CHECK_EQ_INT(pts[1].ts, T0);
    CHECK_EQ_INT(pts[1].n, 60);
    CHECK_EQ_INT(pts[4].ts, T0 + 180);
    CHECK_EQ_INT(pts[1].energy[STORE_E_IMPORT], 60);
    CHECK_EQ_INT(outbox_ack(ob, "home", T0 + 60), 0);
    n = outbox_fetch(ob, "home", pts, 100);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(pts[0].ts, T0 + 120);
    outbox_lag lag;
    CHECK_EQ_INT(outbox_lag_get(ob, "home", &lag), 0);
    CHECK_EQ_INT(lag.readings, N - 121); /* readings after T0 + 120 */
    CHECK_EQ_INT(lag.delivered, 3);
    outbox_free(ob);
    store_close(s);
}

/* outbox_meters lists what this publisher delivered to, persisted; outbox_forget drops a meter. */
static int names_fn(void *user, const char *meter)
{
    char *out = user;
    size_t len = strlen(out);
    snprintf(out + len, 64 - len, "%s%s", len ? "," : "", meter);
    return 0;
}

static void test_meters_forget(void)
{
    char err[256], names[64] = "";
    check_case = "meters_forget";
    store *s = fill();
    outbox *ob = outbox_new(s, "pub", OUTBOX_EVERY, 0, 0, err, sizeof err);
    outbox *other = outbox_new(s, "other", OUTBOX_EVERY, 0, 0, err, sizeof err);
    CHECK_EQ_INT(outbox_meters(ob, names_fn, names), 0);
    CHECK_EQ_STR(names, ""); /* nothing delivered yet */
    CHECK_EQ_INT(outbox_ack(ob, "shed", T0 + 5), 0);
    CHECK_EQ_INT(outbox_ack(ob, "home", T0 + 5), 0);
    CHECK_EQ_INT(outbox_ack(other, "home", T0 + 7), 0);
    CHECK_EQ_INT(outbox_meters(ob, names_fn, names), 0);
    CHECK_EQ_STR(names, "home,shed");
    CHECK_EQ_INT(outbox_forget(ob, "shed"), 0);
    CHECK_EQ_INT(outbox_cursor(ob, "shed"), 0); /* starts over, like a new meter */
    outbox_free(ob);
    ob = outbox_new(s, "pub", OUTBOX_EVERY, 0, 0, err, sizeof err);
    names[0] = '\0';
    CHECK_EQ_INT(outbox_meters(ob, names_fn, names), 0);
    CHECK_EQ_STR(names, "home"); /* forgotten for good, after a reopen too */
    CHECK_EQ_INT(outbox_cursor(ob, "home"), T0 + 5);
    CHECK_EQ_INT(outbox_cursor(other, "home"), T0 + 7); /* another publisher's cursor untouched */
    outbox_free(ob);
    outbox_free(other);
    store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_outbox.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(dbpath, sizeof dbpath, "%s/o.db", dir);
    test_every();
    test_interval();
    test_minute();
    test_meters_forget();
    char path[160];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", dbpath, sfx[i]);
        unlink(path);
    }
    rmdir(dir);
    return check_summary("test_outbox");
}
