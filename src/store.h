/* store.h: the history store: readings of every meter in one SQLite database (WAL), raw at full
 * rate plus 1-minute, 15-minute, hourly and daily aggregates, with retention and queries. */
#ifndef P1D_STORE_H
#define P1D_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "p1/reading.h"

/* Ownership: a store is created by store_open() and freed by store_close(); every pointer handed
 * to a store function is borrowed for the duration of the call only. One process writes through
 * one store at a time from one thread (the daemon's loop, or `p1 import`); other processes, and
 * other threads through a store of their own (store_open_reader()), may read the same database
 * concurrently (WAL). A store is used by one thread at a time. */
typedef struct store store;

#define STORE_SCHEMA_VERSION 2   /* PRAGMA user_version this code writes; newer ones are refused */
#define STORE_NULL INT64_MIN     /* "no value" in store_point */
#define STORE_ERR_MAX 256        /* size of the err buffers this API fills */
#define STORE_QUEUE_DEFAULT 3600 /* readings per meter kept in memory while the disk refuses them */
#define STORE_CLOCK_TOLERANCE 300 /* clock=auto: the meter's time is used within 5 min of ours */
#define STORE_CLOCK_SETTLE 600    /* clock=auto: back to the meter's after 10 min in tolerance */
#define STORE_CLOCK_SLEW 2       /* catching up: at most one reading per this many s of ours */
#define STORE_CLOCK_STEADY 10     /* unsynchronised: the meter's offset from ours moves less */
#define STORE_CLOCK_JUMP      600 /* clock=meter: further ahead is believed when the next agrees */
#define STORE_GAP_MIN 300        /* backfill: stored readings further apart than this are a gap */
/* From 15-minute steps up, an M-Bus rise measured at most this long (s) before its reading is
 * booked in the step of its capture time (docs/STORE.md) */
#define STORE_CAPTURE_MAX 7200

/* Which clock gives a reading its time. The values are the order of the `clock` config choices. */
typedef enum store_clock {
    STORE_CLOCK_AUTO = 0, /* the meter's, unless it is a placeholder or > 5 minutes off ours */
    STORE_CLOCK_METER,    /* the meter's (0-0:1.0.0); ours only when the meter sent none */
    STORE_CLOCK_SYSTEM,   /* ours, when the telegram completed */
} store_clock;

typedef struct store_options {
    int64_t raw_keep_s;    /* raw readings kept this long behind the meter's newest; 0 = forever */
    int64_t minute_keep_s; /* 1-minute and 15-minute aggregates; 0 = forever */
    size_t queue_max;      /* readings per meter queued in memory; oldest dropped beyond it */
    int readonly;          /* open for reading only (export, HTTP readers in other processes) */
    const char *writer;    /* not NULL (and not readonly): hold the writer lock, a flock on
                            * "<path>.lock" naming this program and its pid, until store_close() */
    int backfill;          /* store_add() queues readings not newer than the meter's newest too;
                            * a commit stores those before its first reading or in a gap of its
                            * raw history (stored readings > STORE_GAP_MIN apart) as an in-order
                            * import would have, and skips the others (`p1 import`) */
} store_options;

/* Fills o with the defaults: raw 7 days, 1m/15m 2 years, queue STORE_QUEUE_DEFAULT. */
void store_options_default(store_options *o);

/* Opens (creating when missing, unless readonly) the database at path and migrates its schema
 * to STORE_SCHEMA_VERSION. Returns NULL with a one-line reason in err[cap] (a newer schema, not a
 * database, cannot create, in use by another writer, ...); a database it refuses is left
 * untouched. o NULL = defaults. readonly also reads a database in a directory it may not write
 * (where SQLite cannot create PATH-shm) when no PATH-wal is there. */
store *store_open(const char *path, const store_options *o, char *err, size_t cap);
/* Commits what is queued (when writable) and closes; accepts NULL. */
void store_close(store *s);
/* The zone of the database's calendar (P1_ZONE_CET or P1_ZONE_EET): its day steps, and the
 * months and years summed from them, are written in the local days of the zone it was created
 * in (civil_zone() then; CET for a database from before that was recorded). The caller runs
 * its calendar in it (civil_set_zone()). */
int store_zone(const store *s);
/* The same, read from the database file at path without opening it as a store (no lock, no
 * change): CET for one without a zone recorded that holds readings; -1 when it is not there or
 * is empty without a zone recorded. */
int store_file_zone(const char *path);
/* The file SQLite keeps the database `name` in: name itself, or the path of a "file:" URI
 * (authority and query dropped, %XX decoded) into out[cap]. Returns 1, 0 for a database kept in
 * memory or in a temporary file (":memory:", "", "file:", "mode=memory"; out is ""), or -1 when
 * out is too small. */
int store_file_path(const char *name, char *out, size_t cap);
/* Opens a second, read-only connection to the database of s, for the read side on another
 * thread (one store is used by one thread at a time): it sees every commit of s made before
 * each query. Returns NULL with the reason in err[cap] when the database cannot be shared so
 * (in memory, not in WAL mode). Close it with store_close() before s. */
store *store_open_reader(store *s, char *err, size_t cap);
/* Holds one snapshot of the database for the queries up to store_read_end(), so that they
 * agree (a history answer's count and its series): commits made meanwhile are not seen. Keep
 * it short: WAL checkpoints cannot pass it. Returns 0 or a negative errno. */
int store_read_begin(store *s);
/* Ends the snapshot of store_read_begin() (none: nothing). */
void store_read_end(store *s);
/* Makes the query running on s (on another thread) end soon with an error; any thread. */
void store_interrupt(store *s);

/* ---------------------------------------------------------------------------------------------
 * Write side
 * ------------------------------------------------------------------------------------------- */

/* Copies the equipment id (p1_reading.equipment_id) last seen for `meter` into out: the newest
 * queued or, before any, the one the database recorded. Returns 1, 0 when none is known (out is
 * ""), or a negative errno (-EINVAL bad name, -ENOMEM, -EBUSY, -EIO) with out untouched. */
int store_meter_id(store *s, const char *meter, char out[P1_ID_MAX + 1]);
/* Sets the clock policy of a meter (default STORE_CLOCK_AUTO). Returns 0 or -ENOMEM/-EINVAL. */
int store_meter_clock(store *s, const char *meter, store_clock clock);
/* Lets go of the memory kept for `meter` (a meter p1d no longer reads); its rows stay. Freed at
 * once when nothing of it is queued, else after the commit that writes its queue; using the name
 * again first keeps it. Returns 0. */
int store_forget(store *s, const char *meter);
/* Tells the store whether the system clock is synchronised (loop_wall_synced; default yes).
 * While it is not, clock=auto takes a meter time ahead of the system's by more than the
 * tolerance: such a clock lags after a boot without a real-time clock, until NTP steps it. */
void store_system_synced(store *s, int synced);

/* How a reading got its time (store_last_clock). */
typedef struct store_clock_state {
    store_clock policy; /* the meter's clock setting */
    store_clock used;   /* STORE_CLOCK_METER or STORE_CLOCK_SYSTEM (see store_last_clock) */
    int unsynced;       /* the system clock was unsynchronised then (store_system_synced) */
    int has_offset;     /* offset_s is known: the reading had a valid meter time and ours */
    int64_t offset_s;   /* the meter's time minus ours, s */
} store_clock_state;
/* How the reading of the latest store_add() call got its time, stored or skipped; `used` is
 * STORE_CLOCK_AUTO when no clock was trusted (the reading was skipped: clock=auto, ours
 * unsynchronised and the meter's not steady), the call failed, or none was made. */
void store_last_clock(const store *s, store_clock_state *out);
/* Queues one accepted reading of `meter` (created on first use). system_ms is our wall clock when
 * it arrived, 0 when unknown (imports: meter time only). Returns 1 queued, 0 skipped (no usable
 * time, or not newer than the meter's last reading: no duplicates), 2 queued although not newer
 * (store_options.backfill: the commit backfills it or skips it, see store_stats), or a negative
 * errno. */
int store_add(store *s, const char *meter, const p1_reading *r, int64_t system_ms);
/* Writes everything queued in one transaction. Returns 0, or a negative errno (-ENOSPC full disk,
 * -EIO, -EBUSY) with the queue kept for a later retry; see store_healthy(). A backfill that
 * fails is rolled back as a whole: the queue is dropped and the database is as before it. */
int store_commit(store *s);
/* As store_commit(), but while a backfill into one gap is under way its transaction stays open
 * (the gap is filled in one transaction; the next store_commit() ends it): for the batches of
 * a bulk import. Returns 0 or a negative errno. */
int store_flush(store *s);
/* Readings queued and not yet committed, over all meters. */
size_t store_pending(const store *s);
/* Readings of meter name queued and not committed yet (0 for a meter the store does not know). */
size_t store_queued(const store *s, const char *name);
/* Retention: deletes raw blocks and 1m/15m rows older than the options allow (measured from each
 * meter's newest reading, or from the system clock's now when that is earlier), a bounded amount
 * per call (call every minute or so; again at once while it returns > 0), and checkpoints the
 * WAL. Returns the rows deleted or a negative errno. */
int store_maintain(store *s);
/* 1 healthy, 0 not (the last commit failed; why[cap] says what and how much is queued/dropped). */
int store_healthy(store *s, char *why, size_t cap);
/* How long a statement waits for a lock another program holds (a write transaction left open
 * in sqlite3) before it fails with -EBUSY: STORE_BUSY_MS after store_open(). p1d's loop waits
 * STORE_LIVE_BUSY_MS, so that a held lock never stops it for seconds. */
#define STORE_BUSY_MS 5000
void store_busy_wait(store *s, int ms);

/* Counters for /metrics and logs. */
typedef struct store_stats {
    uint64_t committed;   /* readings written */
    uint64_t skipped;     /* not newer than the meter's last reading, or without a usable time */
    uint64_t dropped;     /* dropped from a full queue while the disk refused writes */
    uint64_t failures;    /* failed commits */
    uint64_t segments;    /* new segments (device replaced, counter went down) */
    uint64_t backfilled;  /* of committed: older than the newest, stored into a gap or before
                           * the first reading (store_options.backfill) */
    uint64_t covered;     /* of skipped: older than the newest, at a time already covered */
    uint64_t commit_us;   /* how long the last commit that wrote or failed took, microseconds */
} store_stats;
/* Copies the counters into *out. */
void store_get_stats(const store *s, store_stats *out);

/* Import bookkeeping, for resumable `p1 import`: a file is known by a key (its identity); the
 * offset is where the next import continues. store_import_get returns 1 and the offset when the
 * key is known, 0 when not, negative errno on error. store_import_set stages the new offset; the
 * next store_commit() writes it in the same transaction as the readings before it. */
int store_import_get(store *s, const char *key, int64_t *offset, int64_t *telegrams);
int store_import_set(store *s, const char *key, const char *path, const char *meter,
                     int64_t offset, int64_t telegrams);

/* Recomputes the aggregates of `meter` from its raw readings, for every step that starts at or
 * after the first raw reading kept (older steps stay as they are). Returns 0 or negative errno. */
int store_rebuild(store *s, const char *meter);

/* ---------------------------------------------------------------------------------------------
 * Read side
 * ------------------------------------------------------------------------------------------- */

typedef enum store_step {
    STORE_STEP_RAW = 0, /* every reading */
    STORE_STEP_1M,
    STORE_STEP_15M,
    STORE_STEP_1H,
    STORE_STEP_1D,  /* local (CET/CEST) calendar days: 23, 24 or 25 hours */
    STORE_STEP_1MO, /* local calendar months, summed from the daily tier */
    STORE_STEP_1Y,  /* local calendar years, summed from the daily tier */
    STORE_STEP_COUNT
} store_step;

/* Energy per step (or, for raw points, since the previous reading). Units: Wh; gas and water
 * dm3 (litres); heat MJ. */
enum store_energy {
    STORE_E_IMPORT = 0, /* all import registers (1.8.0, or the sum of the tariffs) */
    STORE_E_IMPORT_T1,  /* 1.8.1 */
    STORE_E_IMPORT_T2,  /* 1.8.2 */
    STORE_E_EXPORT,
    STORE_E_EXPORT_T1,
    STORE_E_EXPORT_T2,
    STORE_E_GAS,
    STORE_E_WATER,
    STORE_E_HEAT,
    STORE_E_COUNT
};

/* Instantaneous quantities kept as min/max/mean. Power is net (import - export) in W, negative
 * while exporting; voltage in dV (2301 = 230.1 V); current in cA (1234 = 12.34 A). */
enum store_quantity {
    STORE_Q_POWER = 0,
    STORE_Q_POWER_L1,
    STORE_Q_POWER_L2,
    STORE_Q_POWER_L3,
    STORE_Q_VOLTAGE_L1,
    STORE_Q_VOLTAGE_L2,
    STORE_Q_VOLTAGE_L3,
    STORE_Q_CURRENT_L1,
    STORE_Q_CURRENT_L2,
    STORE_Q_CURRENT_L3,
    STORE_Q_COUNT
};

/* min/max/sum over the n readings that carried the quantity; mean = sum / n (every reading
 * weighs the same). n == 0: no value. */
typedef struct store_stat {
    int64_t n, min, max, sum;
} store_stat;

/* One step of a series (or one raw reading). Plain data. */
typedef struct store_point {
    int64_t ts;     /* step start, unix seconds UTC; raw: the reading's time */
    int64_t end;    /* step end (exclusive label of the next step); raw: == ts */
    int64_t n;      /* readings in the step; 0 = none: a gap (every energy STORE_NULL, every
                     * stat n 0), or a step that holds only a gas, water or heat rise measured
                     * in it that arrived in a later one (STORE_CAPTURE_MAX) */
    int64_t energy[STORE_E_COUNT];  /* STORE_NULL when the meter sent no such register */
    store_stat q[STORE_Q_COUNT];
    int64_t counter[STORE_E_COUNT]; /* raw only: the register values (Wh, dm3, MJ); else NULL */
    int tariff;                     /* raw only: 0-0:96.14.0, -1 absent */
    unsigned segment;               /* raw only: STORE_SEG_* bits of a segment starting here */
    int64_t prev;                   /* raw only: the reading before this one (its energy is
                                     * since then), unix s; 0 none */
} store_point;

/* Segment kinds (bits): a device id change or a counter going down starts a new segment. */
enum {
    STORE_SEG_ELECTRICITY = 1 << 0,
    STORE_SEG_GAS = 1 << 1,
    STORE_SEG_WATER = 1 << 2,
    STORE_SEG_HEAT = 1 << 3,
};

/* Called once per point, in time order; return non-zero to stop early (store_series returns it). */
typedef int (*store_point_fn)(void *user, const store_point *p);

enum {
    STORE_SERIES_GAPS = 1 << 0, /* also report steps without readings (n == 0) and nothing
                                 * booked into them */
};

/* Reports the points of `meter` in [from, to) (unix seconds UTC) at `step`. A step labelled T
 * holds the readings with T < time <= T + step: the energy of a step is the counter at its end
 * minus the counter at its start (the last reading at or before each boundary), so the steps of
 * a range add up exactly. From 15 minutes up a gas, water or heat rise goes to the step of its
 * capture time instead when that is at most STORE_CAPTURE_MAX before its reading (raw points and
 * minutes: to the reading). `from` is aligned down to a step boundary. Returns 0, the callback's
 * non-zero value, -ENOENT (unknown meter), -EINVAL or -EIO. */
int store_series(store *s, const char *meter, int64_t from, int64_t to, store_step step,
                 unsigned flags, store_point_fn fn, void *user);
/* Marks the minutes of `meter` in [from, to) that hold readings, from the 1-minute tier: bit i
 * (has[i / 8] & 1 << i % 8) for the minute step labelled from + 60 * i; from is a minute
 * boundary, has holds n bits, (n + 7) / 8 bytes, cleared first. A quarter-hour's energy is its
 * own only where the minutes before its start and before its end hold readings (a step after a
 * gap holds the whole gap's energy). Returns 0, -ENOENT (unknown meter), -EINVAL or -EIO. */
int store_minutes(store *s, const char *meter, int64_t from, int64_t to, uint8_t *has, size_t n);
/* 1 when the minute steps labelled t1 and t2 of `meter` both hold readings, 0 when not (or the
 * meter is unknown), or a negative errno: store_minutes() for two minutes. */
int store_minutes_held(store *s, const char *meter, int64_t t1, int64_t t2);
/* Number of steps store_series would report with STORE_SERIES_GAPS (to bound a response before
 * asking); raw: the readings in range. Returns the count or a negative errno. */
int64_t store_series_count(store *s, const char *meter, int64_t from, int64_t to, store_step step);

/* The step start at or before t (the label of the step holding time t + 1), and the next one;
 * days, months and years are local (CET/CEST, see civil.h). */
int64_t store_step_floor(store_step step, int64_t t);
int64_t store_step_next(store_step step, int64_t start);
/* Name of a step ("raw", "1m", "15m", "1h", "1d", "1mo", "1y") and the reverse (-1 unknown). */
const char *store_step_name(store_step step);
int store_step_parse(const char *name);

/* A meter known to the store and the span of its history. */
typedef struct store_meter_info {
    char name[64];
    int64_t first;         /* unix seconds: the start of the oldest step kept in any tier; 0 none */
    int64_t last;          /* the newest reading (committed); 0 none */
    int64_t raw_first;     /* first raw reading kept; 0 none */
} store_meter_info;
/* Calls fn for every meter in name order; returns 0, fn's non-zero value or a negative errno. */
int store_meters(store *s, int (*fn)(void *user, const store_meter_info *m), void *user);

/* Copies the register values of the newest reading of `meter` into c, indexed by store_energy
 * (Wh; gas and water dm3; heat MJ): the newest queued or, before any, the database's (each
 * register as last seen). Returns the bits (1 << STORE_E_*) set, 0 when none is known, or a
 * negative errno (-EINVAL bad name, -ENOMEM, -EBUSY, -EIO) with c untouched. */
int store_meter_registers(store *s, const char *meter, int64_t c[STORE_E_COUNT]);

/* The underlying connection, for `p1 backup` and tests (borrowed; do not close it). */
struct sqlite3 *store_db(store *s);

/* The price tables (cost.h) share the store's database: whoever writes them calls
 * store_prices_changed(), so that the caches of them (price_now.h) load them again at once. */
void store_prices_changed(store *s);
/* A number that changes with each store_prices_changed() on s and each commit of another
 * process to its database (a cache compares it with its own). */
uint64_t store_prices_serial(const store *s);

#endif
