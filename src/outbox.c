/* outbox.c: per-publisher, per-meter delivery cursors over the store, persisted in its database,
 * and the rate filters (every reading, one per N seconds, per-minute aggregates). */
#define _GNU_SOURCE
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define OUTBOX_METERS_MAX     4096 /* meters one outbox tracks (the daemon's METERS_MAX) */
#define OUTBOX_NAME_MAX       400  /* publisher (destination) names */
#define OUTBOX_METER_NAME_MAX 64   /* store_meter_info.name */
#define OUTBOX_REASON_MAX     512  /* bytes of a park reason kept */
#define OUTBOX_FAR            253402300800LL /* 10000-01-01: "no upper bound" for store_series */
#define OUTBOX_MINUTE_S       60

/* Tables outbox_cursor and outbox_parked are created by the store's schema migration 1 -> 2
 * (store.c), like every table of the database. */

typedef struct ob_meter {
    char name[OUTBOX_METER_NAME_MAX];
    int loaded;     /* cursor read from the database */
    int64_t cursor; /* last acknowledged (or parked) point; minute mode: step label */
    int64_t first;  /* first reading the store keeps (minute mode start), 0 unknown */
    uint64_t delivered, retries, parked;
} ob_meter;

struct outbox {
    store *s;
    sqlite3 *db;
    char name[OUTBOX_NAME_MAX];
    outbox_rate rate;
    int64_t every_s;
    int64_t start_cursor; /* cursor of a meter this publisher never delivered */
    sqlite3_stmt *get, *put, *park;
    ob_meter *m;
    size_t n, cap;
};

/* One pass over the store: the points after `after` (and <= upto) that the rate lets through. */
typedef struct walk {
    const outbox *ob;
    int64_t after, upto;
    int64_t bucket; /* OUTBOX_INTERVAL: bucket of the last point taken */
    int has_bucket;
    store_point *out; /* NULL: only count */
    size_t max, n;
} walk;

static int64_t fdiv64(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static int walk_fn(void *user, const store_point *p)
{
    walk *w = user;
    if (p->ts <= w->after)
        return 0;
    if (p->ts > w->upto)
        return 1;
    if (w->ob->rate == OUTBOX_INTERVAL) {
        int64_t b = fdiv64(p->ts, w->ob->every_s);
        if (w->has_bucket && b == w->bucket)
            return 0; /* only the first reading of each N-second bucket */
        w->bucket = b;
        w->has_bucket = 1;
    }
    if (w->out)
        w->out[w->n] = *p;
    w->n++;
    return w->n >= w->max;
}

static int first_fn(void *user, const store_point *p)
{
    *(int64_t *)user = p->ts;
    return 1;
}

typedef struct first_q {
    const char *meter;
    int64_t first;
} first_q;

static int meter_first_fn(void *user, const store_meter_info *mi)
{
    first_q *q = user;
    if (strcmp(mi->name, q->meter) != 0)
        return 0;
    q->first = mi->raw_first && mi->raw_first < mi->first ? mi->raw_first : mi->first;
    return 1;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static int sq_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    default:
        return -EIO;
    }
}

outbox *outbox_new(store *s, const char *name, outbox_rate rate, int64_t every_s, int64_t start_ts,
                   char *err, size_t cap)
{
    if (!s || !name || strlen(name) >= OUTBOX_NAME_MAX || (unsigned)rate > OUTBOX_MINUTE ||
        (rate == OUTBOX_INTERVAL && every_s < 1)) {
        snprintf(err, cap, "outbox: invalid arguments");
        return NULL;
    }
    sqlite3 *db = store_db(s);
    outbox *ob = calloc(1, sizeof *ob);
    if (!ob) {
        snprintf(err, cap, "outbox %s: out of memory", name);
        return NULL;
    }
    ob->s = s;
    ob->db = db;
    memcpy(ob->name, name, strlen(name) + 1);
    ob->rate = rate;
    ob->every_s = rate == OUTBOX_INTERVAL ? every_s : 1;
    ob->start_cursor = start_ts > 0 ? start_ts - 1 : 0;
    ob->get = prep(db, "SELECT ts FROM outbox_cursor WHERE publisher = ?1 AND meter = ?2");
    ob->put = prep(db, "INSERT INTO outbox_cursor (publisher, meter, ts, updated) VALUES (?1, ?2, "
                       "?3, ?4) ON CONFLICT (publisher, meter) DO UPDATE SET ts = excluded.ts, "
                       "updated = excluded.updated WHERE excluded.ts > outbox_cursor.ts");
    ob->park = prep(db, "INSERT INTO outbox_parked (publisher, meter, from_ts, to_ts, points, "
                        "reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!ob->get || !ob->put || !ob->park) {
        snprintf(err, cap, "outbox %s: %s", name, sqlite3_errmsg(db));
        outbox_free(ob);
        return NULL;
    }
    return ob;
}

void outbox_free(outbox *ob)
{
    if (!ob)
        return;
    sqlite3_finalize(ob->get);
    sqlite3_finalize(ob->put);
    sqlite3_finalize(ob->park);
    free(ob->m);
    free(ob);
}

const char *outbox_name(const outbox *ob)
{
    return ob->name;
}

static int cursor_write(outbox *ob, ob_meter *m, int64_t ts);

/* The state of `meter`, created (and its cursor loaded) on first use; NULL with *rc set. */
static ob_meter *meter_get(outbox *ob, const char *meter, int *rc)
{
    ob_meter *m = NULL;
    for (size_t i = 0; i < ob->n; i++)
        if (strcmp(ob->m[i].name, meter) == 0)
            m = &ob->m[i];
    if (!m) {
        if (strlen(meter) >= OUTBOX_METER_NAME_MAX) {
            *rc = -EINVAL;
            return NULL;
        }
        if (ob->n >= OUTBOX_METERS_MAX) {
            *rc = -ENOSPC;
            return NULL;
        }
        if (ob->n == ob->cap) {
            size_t ncap = ob->cap ? ob->cap * 2 : 8;
            ob_meter *l = realloc(ob->m, ncap * sizeof *l);
            if (!l) {
                *rc = -ENOMEM;
                return NULL;
            }
            ob->m = l;
            ob->cap = ncap;
        }
        m = &ob->m[ob->n++];
        memset(m, 0, sizeof *m);
        memcpy(m->name, meter, strlen(meter) + 1);
    }
    if (!m->loaded) {
        sqlite3_reset(ob->get);
        sqlite3_bind_text(ob->get, 1, ob->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ob->get, 2, meter, -1, SQLITE_TRANSIENT);
        int r = sqlite3_step(ob->get);
        if (r == SQLITE_ROW) {
            m->cursor = sqlite3_column_int64(ob->get, 0);
        } else if (r == SQLITE_DONE) {
            m->cursor = ob->start_cursor;
        } else {
            *rc = sq_errno(r);
            sqlite3_reset(ob->get);
            return NULL;
        }
        sqlite3_reset(ob->get);
        m->loaded = 1;
        /* A meter this publisher never delivered: its starting point is stored at once, not at
         * the first acknowledgement, so a restart before that (the broker down all along) still
         * delivers from there instead of from the new start. A failed write is retried by the
         * first acknowledgement. */
        if (r == SQLITE_DONE && m->cursor > 0)
            (void)cursor_write(ob, m, m->cursor);
    }
    return m;
}

/* The points of m after `after` (and <= upto) into out[max] (or only counted when out is NULL).
 * Returns the count or a negative errno. */
static int run_walk(outbox *ob, ob_meter *m, int64_t after, int64_t upto, store_point *out,
                    size_t max)
{
    walk w;
    memset(&w, 0, sizeof w);
    w.ob = ob;
    w.after = after;
    w.upto = upto;
    w.out = out;
    w.max = max;
    if (ob->rate == OUTBOX_INTERVAL && after > 0) {
        /* the bucket of the last point handed out is used up */
        w.bucket = fdiv64(after, ob->every_s);
        w.has_bucket = 1;
    }
    store_step step = ob->rate == OUTBOX_MINUTE ? STORE_STEP_1M : STORE_STEP_RAW;
    int64_t from = after + 1;
    if (ob->rate == OUTBOX_MINUTE) {
        /* an aggregate walk visits every step from `from`: start where the history starts */
        if (!m->first) {
            first_q q = {m->name, 0};
            int r = store_meters(ob->s, meter_first_fn, &q);
            if (r < 0)
                return r;
            m->first = q.first;
        }
        if (m->first && from < m->first)
            from = store_step_floor(STORE_STEP_1M, m->first);
    }
    int64_t to = upto < OUTBOX_FAR ? upto + 1 : OUTBOX_FAR;
    if (from >= to)
        return 0;
    int rc = store_series(ob->s, m->name, from, to, step, 0, walk_fn, &w);
    if (rc == -ENOENT)
        return 0; /* the store has no reading of this meter yet */
    if (rc < 0)
        return rc;
    if (ob->rate == OUTBOX_MINUTE && w.n > 0 && out) {
        /* a minute is final once a reading at or after its end exists (steps hold T < t <= T+60) */
        int64_t end = out[w.n - 1].ts + OUTBOX_MINUTE_S, seen = 0;
        rc = store_series(ob->s, m->name, end, OUTBOX_FAR, STORE_STEP_RAW, 0, first_fn, &seen);
        if (rc < 0)
            return rc;
        if (rc == 0)
            w.n--;
    }
    return (int)w.n;
}

int outbox_fetch_after(outbox *ob, const char *meter, int64_t after, store_point *out, size_t max)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    if (!m)
        return rc;
    if (max > OUTBOX_BATCH_MAX)
        max = OUTBOX_BATCH_MAX;
    if (max == 0)
        return 0;
    if (after < m->cursor)
        after = m->cursor;
    return run_walk(ob, m, after, OUTBOX_FAR, out, max);
}

int outbox_fetch(outbox *ob, const char *meter, store_point *out, size_t max)
{
    return outbox_fetch_after(ob, meter, INT64_MIN, out, max);
}

int64_t outbox_cursor(outbox *ob, const char *meter)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    return m ? m->cursor : rc;
}

void outbox_count_retry(outbox *ob, const char *meter)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    if (m)
        m->retries++;
}

/* A one-off statement over this publisher's rows: sql with ?1 = the publisher's name. */
static int stmt_of(outbox *ob, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(ob->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_text(*st, 1, ob->name, -1, SQLITE_STATIC);
    return 0;
}

int outbox_meters(outbox *ob, int (*fn)(void *user, const char *meter), void *user)
{
    sqlite3_stmt *st = NULL;
    int rc =
        stmt_of(ob, "SELECT meter FROM outbox_cursor WHERE publisher = ?1 ORDER BY meter", &st);
    if (rc < 0)
        return rc;
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        if (name)
            stop = fn(user, (const char *)name);
    }
    int out = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_errno(rc);
    sqlite3_finalize(st);
    return out;
}

int outbox_forget(outbox *ob, const char *meter)
{
    for (size_t i = 0; i < ob->n; i++)
        if (strcmp(ob->m[i].name, meter) == 0) {
            ob->m[i] = ob->m[--ob->n];
            break;
        }
    sqlite3_stmt *st = NULL;
    int rc = stmt_of(ob, "DELETE FROM outbox_cursor WHERE publisher = ?1 AND meter = ?2", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

/* Points the rate lets through in (after, ts]: what an acknowledgement or a park covers. */
static int64_t count_between(outbox *ob, ob_meter *m, int64_t after, int64_t ts)
{
    return run_walk(ob, m, after, ts, NULL, INT32_MAX);
}

static int cursor_write(outbox *ob, ob_meter *m, int64_t ts)
{
    sqlite3_reset(ob->put);
    sqlite3_bind_text(ob->put, 1, ob->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ob->put, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ob->put, 3, ts);
    sqlite3_bind_int64(ob->put, 4, wall_s());
    int r = sqlite3_step(ob->put);
    sqlite3_reset(ob->put);
    return r == SQLITE_DONE ? 0 : sq_errno(r);
}

int outbox_ack(outbox *ob, const char *meter, int64_t ts)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    if (!m)
        return rc;
    if (ts <= m->cursor)
        return 0;
    int64_t n = count_between(ob, m, m->cursor, ts);
    rc = cursor_write(ob, m, ts);
    if (rc < 0)
        return rc;
    m->cursor = ts;
    if (n > 0)
        m->delivered += (uint64_t)n;
    return 0;
}

int outbox_park(outbox *ob, const char *meter, int64_t ts, const char *reason)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    if (!m)
        return rc;
    if (ts <= m->cursor)
        return 0;
    int64_t n = count_between(ob, m, m->cursor, ts);
    if (n < 0)
        n = 0;
    char why[OUTBOX_REASON_MAX];
    snprintf(why, sizeof why, "%s", reason ? reason : "");
    /* a savepoint nests inside a transaction the store might have open, and works without one */
    if (sqlite3_exec(ob->db, "SAVEPOINT outbox_park", NULL, NULL, NULL) != SQLITE_OK)
        return sq_errno(sqlite3_errcode(ob->db));
    sqlite3_reset(ob->park);
    sqlite3_bind_text(ob->park, 1, ob->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ob->park, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ob->park, 3, m->cursor + 1);
    sqlite3_bind_int64(ob->park, 4, ts);
    sqlite3_bind_int64(ob->park, 5, n);
    sqlite3_bind_text(ob->park, 6, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ob->park, 7, wall_s());
    int r = sqlite3_step(ob->park);
    sqlite3_reset(ob->park);
    rc = r == SQLITE_DONE ? cursor_write(ob, m, ts) : sq_errno(r);
    if (rc < 0) {
        sqlite3_exec(ob->db, "ROLLBACK TO outbox_park; RELEASE outbox_park", NULL, NULL, NULL);
        return rc;
    }
    if (sqlite3_exec(ob->db, "RELEASE outbox_park", NULL, NULL, NULL) != SQLITE_OK)
        return sq_errno(sqlite3_errcode(ob->db));
    m->cursor = ts;
    m->parked += (uint64_t)n;
    return 0;
}

typedef struct count_q {
    int64_t n;
} count_q;

static int count_fn(void *user, const store_point *p)
{
    (void)p;
    ((count_q *)user)->n++;
    return 0;
}

int outbox_lag_get(outbox *ob, const char *meter, outbox_lag *out)
{
    int rc = 0;
    ob_meter *m = meter_get(ob, meter, &rc);
    if (!m)
        return rc;
    outbox_lag l;
    memset(&l, 0, sizeof l);
    l.cursor = m->cursor;
    l.delivered = m->delivered;
    l.retries = m->retries;
    l.parked = m->parked;
    /* readings the cursor covers: a minute step labelled T holds the readings up to T + 60 */
    int64_t covered = m->cursor + (ob->rate == OUTBOX_MINUTE && m->cursor ? OUTBOX_MINUTE_S : 0);
    int64_t oldest = 0;
    rc = store_series(ob->s, meter, covered + 1, OUTBOX_FAR, STORE_STEP_RAW, 0, first_fn, &oldest);
    if (rc == -ENOENT) {
        *out = l;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (oldest) {
        /* exact count without decoding the whole backlog: walk up to the next whole minute, then
         * let the store count the rest */
        int64_t edge = fdiv64(oldest + OUTBOX_MINUTE_S - 1, OUTBOX_MINUTE_S) * OUTBOX_MINUTE_S;
        if (edge == oldest)
            edge += OUTBOX_MINUTE_S;
        count_q q = {0};
        rc = store_series(ob->s, meter, oldest, edge, STORE_STEP_RAW, 0, count_fn, &q);
        if (rc < 0)
            return rc;
        int64_t rest = store_series_count(ob->s, meter, edge, OUTBOX_FAR, STORE_STEP_RAW);
        if (rest < 0)
            return (int)rest;
        l.readings = q.n + rest;
        int64_t age = wall_s() - oldest;
        l.seconds = age > 0 ? age : 0;
    }
    *out = l;
    return 0;
}
