/* store.c: the history store: schema and migrations, the incremental aggregation engine, batched
 * commits that survive a full disk, retention, and the series queries. */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "civil.h"

/* ---------------------------------------------------------------------------------------------
 * Limits and layout
 * ------------------------------------------------------------------------------------------- */

#define STORE_APP_ID 0x70316400      /* PRAGMA application_id: "p1d\0" */
#define STORE_BLOCK_MAX 900          /* bytes of one raw block: stays below SQLite's ~1000-byte
                                      * local payload limit of index b-trees (no overflow pages) */
#define STORE_RECORD_MAX 320         /* bytes of one encoded reading, worst case */
#define STORE_BLOCK_SPAN 60          /* a raw block never spans two UTC minutes */
#define STORE_STATS_MAX (5 + STORE_Q_COUNT * 40) /* bytes of an encoded stats blob, worst case */
#define STORE_PRUNE_SLICE (6 * 3600) /* seconds of history deleted per tier per maintain call */
#define STORE_NDEV 4                 /* device ids tracked: electricity, gas, water, heat */
#define NTIERS 4                     /* 1m, 15m, 1h, 1d */

/* Fields of a raw reading, in storage order. Integers: Wh, W, dV, cA, dm3, unix seconds. */
enum {
    F_IMP1, F_IMP2, F_IMP, F_EXP1, F_EXP2, F_EXP, F_TARIFF, F_PIMP, F_PEXP,
    F_U1, F_U2, F_U3, F_I1, F_I2, F_I3,
    F_PIMP1, F_PIMP2, F_PIMP3, F_PEXP1, F_PEXP2, F_PEXP3,
    F_GAS, F_GAS_T, F_WATER, F_WATER_T, F_HEAT, F_HEAT_T,
    F_COUNT
};
#define BIT(i) (1u << (i))

/* One reading as the store keeps it. Plain data. */
typedef struct sample {
    int64_t ts;
    uint32_t mask;  /* BIT(F_*) present */
    uint32_t flags; /* STORE_SEG_* bits: a new device id starts here */
    int64_t v[F_COUNT];
    uint32_t devh[STORE_NDEV]; /* backfill candidates: hashes of the device ids (0 none) */
} sample;

/* A step's aggregate row being built. */
typedef struct agg {
    int64_t ts; /* step label; meaningful when n > 0 */
    int64_t n;
    int64_t e[STORE_E_COUNT];
    unsigned ehas;
    store_stat q[STORE_Q_COUNT];
} agg;

/* Counter state that turns readings into energy deltas (shared by the engine and raw reads). */
typedef struct fold {
    int64_t c[STORE_E_COUNT];
    unsigned has;
} fold;

/* The per-meter aggregation engine. Plain data, so a commit can snapshot and restore it. */
typedef struct engine {
    int64_t last_ts;
    fold f;
    int64_t bts, bprev_ts; /* open raw block: key (0 = none) and its last reading's time */
    uint32_t bmask;
    uint32_t bn;
    int64_t bprev[F_COUNT];
    size_t blen;
    uint8_t buf[STORE_BLOCK_MAX];
    int bdirty;
    agg cur[NTIERS];
    int cdirty[NTIERS];
    int64_t floor[NTIERS]; /* steps before this are never written (rebuild) */
    int merge;             /* a backfill: steps are added to the rows already stored */
} engine;

/* What a failed commit restores of a meter. */
typedef struct snapshot {
    engine e;
    int64_t id;
    int dev_dirty;
} snapshot;

typedef struct smeter {
    int64_t id; /* 0 until the meters row exists */
    char name[64];
    store_clock clock;
    char dev[STORE_NDEV][P1_ID_MAX + 1]; /* last device ids seen (queue side) */
    int dev_dirty;
    int64_t q_last_ts; /* newest time queued or stored: later readings must be newer */
    int64_t q_last_sys; /* our clock (s) when the newest reading was queued */
    int clock_off;      /* clock=auto: the meter's clock is judged off, ours is used */
    int64_t clock_ok_since; /* clock_off: since when (our s) the meter's is in tolerance; 0 not */
    int64_t last_off;       /* the meter's time minus ours at the previous reading with both */
    int has_last_off;
    int64_t jump_ts;   /* clock=meter: a time that jumped ahead, skipped; 0 none */
    sample *q;         /* ring of queued readings */
    size_t qcap, qhead, qlen;
    int forget;        /* store_forget(): free this state once its queue is committed */
    int stale;         /* a failed backfill rolled back more than the queue: load again */
    struct backfill *bf; /* store_options.backfill: the gap being filled; NULL until needed */
    engine e;
} smeter;

struct store {
    sqlite3 *db;
    int lock_fd; /* the writer lock (<path>.lock), -1 when not held */
    int db_fd;   /* with it, a flock on the database file itself (a hard link), -1 none */
    store_options o;
    smeter **m;
    size_t nm, capm;
    struct snapshot *snap; /* commit snapshots, one per meter */
    size_t capsnap;
    sqlite3_stmt *raw_put, *agg_put[NTIERS], *agg_get[NTIERS], *seg_put, *meter_ins, *meter_id,
        *meter_upd, *minute_n;
    store_stats st;
    int failing;      /* the last commit failed */
    int fail_rc;      /* its SQLite code */
    int ckpt_failing; /* the last checkpoint failed */
    int unsynced;     /* the system clock is not synchronised (store_system_synced) */
    store_clock_state last_clock; /* how the latest store_add() chose its time */
    char import_key[160], import_path[512], import_meter[64];
    int64_t import_offset, import_telegrams;
    int import_pending;
    int txn_held;   /* store_flush() left a backfill's transaction open */
    store_stats st_begin; /* the counters when the transaction began */
    int bf_touched; /* this commit classified or stored older readings */
    /* store_prices_changed() calls */
    uint64_t prices_serial;
    int zone; /* P1_ZONE_*: the calendar of the day steps (calendar_load()) */
};

static const store_step tier_step[NTIERS] = {STORE_STEP_1M, STORE_STEP_15M, STORE_STEP_1H,
                                             STORE_STEP_1D};
static const char *const tier_table[NTIERS] = {"agg_1m", "agg_15m", "agg_1h", "agg_1d"};

/* Which segment group each energy belongs to. */
static const unsigned energy_group[STORE_E_COUNT] = {
    STORE_SEG_ELECTRICITY, STORE_SEG_ELECTRICITY, STORE_SEG_ELECTRICITY,
    STORE_SEG_ELECTRICITY, STORE_SEG_ELECTRICITY, STORE_SEG_ELECTRICITY,
    STORE_SEG_GAS,         STORE_SEG_WATER,       STORE_SEG_HEAT};
static const char *const group_name[STORE_NDEV] = {"electricity", "gas", "water", "heat"};

/* ---------------------------------------------------------------------------------------------
 * Schema. migrations[i] takes user_version i to i + 1; append, never edit a shipped one.
 * ------------------------------------------------------------------------------------------- */

#define AGG_COLUMNS                                                                                \
    "(meter INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER NOT NULL, import INTEGER, "          \
    "import_t1 INTEGER, import_t2 INTEGER, export INTEGER, export_t1 INTEGER, export_t2 INTEGER, " \
    "gas INTEGER, water INTEGER, heat INTEGER, stats BLOB, PRIMARY KEY (meter, ts)) WITHOUT ROWID;"

static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE meters (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
    "electricity_id TEXT, gas_id TEXT, water_id TEXT, heat_id TEXT);"
    "CREATE TABLE raw (meter INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER NOT NULL, "
    "data BLOB NOT NULL, PRIMARY KEY (meter, ts)) WITHOUT ROWID;"
    "CREATE TABLE agg_1m " AGG_COLUMNS "CREATE TABLE agg_15m " AGG_COLUMNS
    "CREATE TABLE agg_1h " AGG_COLUMNS "CREATE TABLE agg_1d " AGG_COLUMNS
    "CREATE TABLE segments (meter INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, "
    "reason TEXT NOT NULL, PRIMARY KEY (meter, ts, kind)) WITHOUT ROWID;"
    "CREATE TABLE imports (file_key TEXT PRIMARY KEY, path TEXT NOT NULL, meter TEXT NOT NULL, "
    "offset INTEGER NOT NULL, telegrams INTEGER NOT NULL, updated INTEGER NOT NULL);",
    /* 1 -> 2: the publishers' delivery cursors and parked batches (src/outbox.c); IF NOT EXISTS
     * because builds before this version created them on first use */
    "CREATE TABLE IF NOT EXISTS outbox_cursor (publisher TEXT NOT NULL, meter TEXT NOT NULL, "
    "ts INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (publisher, meter)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outbox_parked (id INTEGER PRIMARY KEY, publisher TEXT NOT NULL, "
    "meter TEXT NOT NULL, from_ts INTEGER NOT NULL, to_ts INTEGER NOT NULL, points INTEGER NOT "
    "NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(NMIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

/* ---------------------------------------------------------------------------------------------
 * Small helpers: errors, integer codecs, civil time (pure arithmetic, no time-zone calls)
 * ------------------------------------------------------------------------------------------- */

static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (!err || !cap)
        return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* SQLite's "unable to open database file" hides why; returns "" or "(<what the file system
 * says>)" for the message, into buf. */
static const char *open_reason(const char *path, int readonly, char *buf, size_t cap)
{
    struct stat sb;
    buf[0] = '\0';
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            snprintf(buf, cap, " (%s is a directory)", path);
        else if (access(path, readonly ? R_OK : R_OK | W_OK) != 0)
            snprintf(buf, cap, " (%s)", strerror(errno));
        return buf;
    }
    if (errno != ENOENT || readonly) {
        snprintf(buf, cap, " (%s)", strerror(errno));
        return buf;
    }
    const char *slash = strrchr(path, '/');
    char dir[STORE_ERR_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    if (access(dir, W_OK | X_OK) != 0)
        snprintf(buf, cap, " (directory %.200s: %s)", dir, strerror(errno));
    return buf;
}

/* SQLite's "attempt to write a readonly database" does not say what may not be written: the
 * file itself (unless we only read), or its directory, where SQLite creates PATH-wal and
 * PATH-shm. Returns "" or " (<reason>)", into buf. */
static const char *write_reason(const char *path, int readonly, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    char dir[STORE_ERR_MAX];
    buf[0] = '\0';
    if (access(path, readonly ? R_OK : R_OK | W_OK) != 0) {
        snprintf(buf, cap, " (%s: %s)", path, strerror(errno));
        return buf;
    }
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    if (access(dir, W_OK | X_OK) != 0)
        snprintf(buf, cap, " (directory %.120s: %s; SQLite keeps its -wal and -shm files there)",
                 dir, strerror(errno));
    return buf;
}

/* A reader of a WAL database must create PATH-shm next to it; in a directory it may not write
 * (a backup on read-only media, a database owned by p1d's user) the first read fails although
 * the file is readable. Without PATH-wal no writer has the database open (the writer keeps the
 * WAL while it runs), so the file alone is the whole database: reopen it as SQLite's
 * "immutable", which needs no -shm and takes no locks. 1 reopened, 0 not applicable. */
static int reopen_immutable(store *s, const char *path, int rc)
{
    char wal[4096], uri[4096 * 3 + 32];
    struct stat sb;
    int ec = rc & 0xff;
    if (!s->o.readonly || (ec != SQLITE_READONLY && ec != SQLITE_CANTOPEN))
        return 0;
    if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal || stat(wal, &sb) == 0)
        return 0;
    size_t n = (size_t)snprintf(uri, sizeof uri, "file:");
    for (const char *c = path; *c; c++) { /* the characters a URI path must escape */
        if (*c == '%' || *c == '?' || *c == '#')
            n += (size_t)snprintf(uri + n, sizeof uri - n, "%%%02X", (unsigned char)*c);
        else
            uri[n++] = *c;
    }
    snprintf(uri + n, sizeof uri - n, "?immutable=1");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_close(s->db);
    s->db = db;
    return 1;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Also the URI forms, which an SQLite built with URIs on (Debian's) reads in any name; a query
 * value ends at '&', '#' or the end (https://sqlite.org/uri.html, inmemorydb.html). */
int store_file_path(const char *name, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!name[0] || strcmp(name, ":memory:") == 0)
        return 0;
    if (strncmp(name, "file:", 5) != 0) {
        if (strlen(name) >= cap)
            return -1;
        memcpy(out, name, strlen(name) + 1);
        return 1;
    }
    const char *p = name + 5;
    if (strncmp(p, "//", 2) == 0) /* an authority (empty or localhost), then the path */
        p += 2 + strcspn(p + 2, "/?#");
    size_t len = strcspn(p, "?#");
    for (const char *q = p + len; *q == '?' || *q == '&'; q += strcspn(q + 1, "&#") + 1)
        if (strncmp(q + 1, "mode=memory", 11) == 0 && (q[12] == '\0' || strchr("&#", q[12])))
            return 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        if (n + 1 >= cap)
            return -1;
        int hi, lo;
        if (p[i] == '%' && i + 2 < len && (hi = hex_digit(p[i + 1])) >= 0 &&
            (lo = hex_digit(p[i + 2])) >= 0) {
            out[n] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n] = p[i];
        }
    }
    out[n] = '\0';
    if (n == 0 || strcmp(out, ":memory:") == 0) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

/* Takes the writer lock: an exclusive flock on "<file>.lock", a file of its own because SQLite
 * uses POSIX locks on the database, which a flock must not disturb. The kernel drops the lock
 * when the holder exits in any way (kill -9 too), so a stale file never blocks. The holder
 * writes "PID PROGRAM" into it so that the next one can say who. <file> is the database file's
 * real path (store_file_path(), then realpath(): a "file:" URI or a symlink to it takes the
 * same lock file); a flock on the database file itself also stops a writer that comes by a
 * hard link. A database in memory takes none. 0, or -1 with err. */
static int writer_lock(store *s, const char *path, char *err, size_t cap)
{
    char lock[STORE_ERR_MAX], real[PATH_MAX], file[PATH_MAX];
    int kind = store_file_path(path, file, sizeof file);
    if (kind < 0) {
        say(err, cap, "%s: the path is too long", path);
        return -1;
    }
    if (kind == 0)
        return 0; /* in memory or a temporary file: no other program can open it */
    const char *db = realpath(file, real) ? real : file;
    /* flock and SQLite's POSIX locks do not meet on Linux, but closing any descriptor of the
     * file drops the process's POSIX locks on it: this one stays open until after sqlite3_close()
     * (store_close()). */
    s->db_fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int n = snprintf(lock, sizeof lock, "%s.lock", db);
    if (n < 0 || (size_t)n >= sizeof lock) {
        say(err, cap, "%s: the path is too long", path);
        return -1;
    }
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644), named = 1;
    if (fd < 0 && errno == EACCES) {
        /* Left by another user (root ran p1 import on the service's database): a flock needs
         * no write access, so lock it all the same, only without our name in it. */
        fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        named = 0;
        if (fd < 0)
            errno = EACCES;
    }
    if (fd < 0) {
        say(err, cap, "%s: cannot open the lock file %s: %s", path, lock, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[96] = "", who[32] = "another program";
        long pid = 0;
        ssize_t got = e == EWOULDBLOCK ? pread(fd, buf, sizeof buf - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK) {
            say(err, cap, "%s: cannot lock %s: %s", path, lock, strerror(e));
            return -1;
        }
        buf[got > 0 ? got : 0] = '\0';
        if (sscanf(buf, "%ld %31[^\n]", &pid, who) < 1)
            pid = 0;
        if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            pid = 0; /* a name left by an earlier holder: the holder could not write its own */
        if (pid > 0)
            say(err, cap, "%s: in use by %s pid %ld (it holds %s); one writer at a time: stop it "
                          "first, or use another database",
                path, who, pid, lock);
        else
            say(err, cap, "%s: in use by another program (it holds %s); one writer at a time: "
                          "stop it first, or use another database",
                path, lock);
        return -1;
    }
    s->lock_fd = fd;
    if (s->db_fd >= 0 && flock(s->db_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        say(err, cap,
            "%s: in use by another program (it holds the database file by another "
            "name: a hard link); one writer at a time: stop it first, or use another "
            "database",
            path);
        return -1;
    }
    char line[96];
    n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), s->o.writer);
    if (named && (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)) {
        say(err, cap, "%s: cannot write the lock file %s: %s", path, lock, strerror(errno));
        return -1;
    }
    return 0;
}

static int sq_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_READONLY: return -EROFS;
    default: return -EIO;
    }
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzz(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Wrapping difference: deltas of any two int64 values round-trip through the codec. */
static int64_t wsub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Rounds v / d half away from zero (d > 0). */
static int64_t rdiv(int64_t v, int64_t d)
{
    return v >= 0 ? (v + d / 2) / d : -((-v + d / 2) / d);
}

/* ---------------------------------------------------------------------------------------------
 * Steps
 * ------------------------------------------------------------------------------------------- */

static int64_t step_seconds(store_step step)
{
    switch (step) {
    case STORE_STEP_1M: return 60;
    case STORE_STEP_15M: return 900;
    case STORE_STEP_1H: return 3600;
    default: return 0;
    }
}

int64_t store_step_floor(store_step step, int64_t t)
{
    int64_t s = step_seconds(step);
    if (s)
        return fdiv(t, s) * s;
    switch (step) {
    case STORE_STEP_RAW: return t;
    case STORE_STEP_1D: return civil_floor(CIVIL_DAY, t);
    case STORE_STEP_1MO: return civil_floor(CIVIL_MONTH, t);
    default: return civil_floor(CIVIL_YEAR, t);
    }
}

int64_t store_step_next(store_step step, int64_t start)
{
    int64_t s = step_seconds(step);
    if (s)
        return start + s;
    switch (step) {
    case STORE_STEP_RAW: return start + 1;
    case STORE_STEP_1D: return civil_floor(CIVIL_DAY, start + 26 * 3600);
    case STORE_STEP_1MO: return civil_next(CIVIL_MONTH, start);
    default: return civil_next(CIVIL_YEAR, start);
    }
}

static const char *const step_names[STORE_STEP_COUNT] = {"raw", "1m", "15m", "1h",
                                                         "1d",  "1mo", "1y"};

const char *store_step_name(store_step step)
{
    return (unsigned)step < STORE_STEP_COUNT ? step_names[step] : "unknown";
}

int store_step_parse(const char *name)
{
    for (int i = 0; i < STORE_STEP_COUNT; i++)
        if (name && strcmp(name, step_names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Samples: a p1_reading in the store's units; counters, quantities and energy deltas
 * ------------------------------------------------------------------------------------------- */

static void set_micro(sample *x, int f, p1_micro v, int64_t div)
{
    if (v == P1_ABSENT)
        return;
    x->v[f] = rdiv(v, div);
    x->mask |= BIT(f);
}

static void set_mbus(sample *x, const p1_reading *r, p1_medium medium, int fv, int ft)
{
    int i = p1_reading_mbus_find(r, medium);
    int64_t t;
    if (i < 0)
        return;
    /* Gas and water are kept in m3, heat in GJ, whatever the meter counts in; a unit that cannot
     * be turned into those is not stored under their name, and a placeholder channel's filler 0
     * is no reading (both give P1_ABSENT). */
    p1_micro v = p1_mbus_kept(&r->mbus[i]);
    if (v == P1_ABSENT)
        return;
    set_micro(x, fv, v, 1000); /* m3 -> dm3, GJ -> MJ */
    if (r->mbus[i].time.valid && p1_time_to_unix(&r->mbus[i].time, &t) == 0) {
        x->v[ft] = t;
        x->mask |= BIT(ft);
    }
}

/* The reading's values (time and flags are set by the caller). */
static void sample_from(sample *x, const p1_reading *r)
{
    memset(x, 0, sizeof *x);
    set_micro(x, F_IMP1, r->import[1], 1000);
    set_micro(x, F_IMP2, r->import[2], 1000);
    set_micro(x, F_EXP1, r->export_[1], 1000);
    set_micro(x, F_EXP2, r->export_[2], 1000);
    /* A total is kept only when it says more than the sum of tariffs 1 and 2 (1.8.0 sent, or
     * tariffs beyond 2): otherwise it is derived, which saves its bytes in every raw reading. */
    for (int k = 0; k < 2; k++) {
        p1_micro tot = k ? r->export_total : r->import_total;
        int ft = k ? F_EXP : F_IMP, f1 = k ? F_EXP1 : F_IMP1, f2 = k ? F_EXP2 : F_IMP2;
        uint8_t sent = k ? r->export_total_sent : r->import_total_sent;
        if (tot == P1_ABSENT) {
            /* No total while tariff registers are there: the reading would not vouch for a sum
             * (a DSMR 2.2 telegram cut off without its end line may lack tariff 2). The total
             * derived below from tariff 1 alone would drop and come back as phantom use, so
             * this reading keeps no register of this direction. */
            x->mask &= ~(BIT(f1) | BIT(f2));
            continue;
        }
        int64_t sum = 0;
        int any = 0;
        if (x->mask & BIT(f1))
            sum += x->v[f1], any = 1;
        if (x->mask & BIT(f2))
            sum += x->v[f2], any = 1;
        if (sent || !any || rdiv(tot, 1000) != sum)
            set_micro(x, ft, tot, 1000);
    }
    if (r->tariff >= 0) {
        x->v[F_TARIFF] = r->tariff;
        x->mask |= BIT(F_TARIFF);
    }
    set_micro(x, F_PIMP, r->power_import, 1000);
    set_micro(x, F_PEXP, r->power_export, 1000);
    for (int i = 0; i < 3; i++) {
        const p1_phase *ph = &r->phase[i];
        set_micro(x, F_U1 + i, p1_phase_voltage(r, i), 100000); /* 12.7.0 as L1's */
        set_micro(x, F_I1 + i, p1_phase_current(r, i), 10000);
        set_micro(x, F_PIMP1 + i, ph->power_import, 1000);
        set_micro(x, F_PEXP1 + i, ph->power_export, 1000);
    }
    set_mbus(x, r, P1_MEDIUM_GAS, F_GAS, F_GAS_T);
    set_mbus(x, r, P1_MEDIUM_WATER, F_WATER, F_WATER_T);
    set_mbus(x, r, P1_MEDIUM_HEAT, F_HEAT, F_HEAT_T);
}

/* The register values of x by store_energy; returns the bits present. */
static unsigned sample_counters(const sample *x, int64_t c[STORE_E_COUNT])
{
    static const int direct[STORE_E_COUNT] = {-1, F_IMP1, F_IMP2, -1, F_EXP1, F_EXP2,
                                              F_GAS, F_WATER, F_HEAT};
    unsigned has = 0;
    for (int e = 0; e < STORE_E_COUNT; e++) {
        if (direct[e] >= 0) {
            if (x->mask & BIT(direct[e])) {
                c[e] = x->v[direct[e]];
                has |= BIT(e);
            }
            continue;
        }
        int ft = e == STORE_E_IMPORT ? F_IMP : F_EXP;
        int f1 = e == STORE_E_IMPORT ? F_IMP1 : F_EXP1, f2 = f1 + 1;
        if (x->mask & BIT(ft)) {
            c[e] = x->v[ft];
            has |= BIT(e);
        } else if (x->mask & (BIT(f1) | BIT(f2))) {
            c[e] = ((x->mask & BIT(f1)) ? x->v[f1] : 0) + ((x->mask & BIT(f2)) ? x->v[f2] : 0);
            has |= BIT(e);
        }
    }
    return has;
}

/* The instantaneous quantities of x by store_quantity; returns the bits present. */
static unsigned sample_quantities(const sample *x, int64_t q[STORE_Q_COUNT])
{
    unsigned has = 0;
    for (int i = 0; i < 4; i++) {
        int fi = i ? F_PIMP1 + i - 1 : F_PIMP, fe = i ? F_PEXP1 + i - 1 : F_PEXP;
        if (x->mask & (BIT(fi) | BIT(fe))) {
            q[STORE_Q_POWER + i] = ((x->mask & BIT(fi)) ? x->v[fi] : 0) -
                                   ((x->mask & BIT(fe)) ? x->v[fe] : 0);
            has |= BIT(STORE_Q_POWER + i);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (x->mask & BIT(F_U1 + i)) {
            q[STORE_Q_VOLTAGE_L1 + i] = x->v[F_U1 + i];
            has |= BIT(STORE_Q_VOLTAGE_L1 + i);
        }
        if (x->mask & BIT(F_I1 + i)) {
            q[STORE_Q_CURRENT_L1 + i] = x->v[F_I1 + i];
            has |= BIT(STORE_Q_CURRENT_L1 + i);
        }
    }
    return has;
}

/* Folds one reading (registers c with bits chas, device flags) into the counter state: sets
 * de[] (energy since the previous reading, 0 at a segment start, never negative) with *dhas, and
 * returns the STORE_SEG_* groups that start a new segment here; *device gets the groups whose
 * reason is a new device id. */
static unsigned fold_counters(fold *f, const int64_t c[STORE_E_COUNT], unsigned chas,
                              uint32_t flags, int64_t de[STORE_E_COUNT], unsigned *dhas,
                              unsigned *device)
{
    unsigned seg = 0;
    *dhas = 0;
    *device = 0;
    for (int e = 0; e < STORE_E_COUNT; e++) {
        unsigned g = energy_group[e];
        if ((chas & BIT(e)) && (f->has & BIT(e)) && c[e] < f->c[e])
            seg |= g;
    }
    for (int e = 0; e < STORE_E_COUNT; e++) {
        unsigned g = energy_group[e];
        if ((chas & BIT(e)) && (f->has & BIT(e)) && (flags & g))
            seg |= g, *device |= g;
    }
    for (int e = 0; e < STORE_E_COUNT; e++) {
        if (!(chas & BIT(e)))
            continue;
        de[e] = ((f->has & BIT(e)) && !(seg & energy_group[e])) ? c[e] - f->c[e] : 0;
        *dhas |= BIT(e);
        f->c[e] = c[e];
        f->has |= BIT(e);
    }
    return seg;
}

/* fold_counters() for the registers and device flags of reading x. */
static unsigned fold_step(fold *f, const sample *x, int64_t de[STORE_E_COUNT], unsigned *dhas,
                          unsigned *device)
{
    int64_t c[STORE_E_COUNT];
    unsigned chas = sample_counters(x, c);
    return fold_counters(f, c, chas, x->flags, de, dhas, device);
}

static void stat_add(store_stat *s, int64_t v)
{
    if (s->n == 0 || v < s->min)
        s->min = v;
    if (s->n == 0 || v > s->max)
        s->max = v;
    s->sum += v;
    s->n++;
}

static void stat_merge(store_stat *a, const store_stat *b)
{
    if (!b->n)
        return;
    if (!a->n || b->min < a->min)
        a->min = b->min;
    if (!a->n || b->max > a->max)
        a->max = b->max;
    a->sum += b->sum;
    a->n += b->n;
}

static void agg_add(agg *a, const int64_t de[STORE_E_COUNT], unsigned dhas, const sample *x)
{
    int64_t q[STORE_Q_COUNT];
    unsigned qhas = sample_quantities(x, q);
    a->n++;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (dhas & BIT(e)) {
            a->e[e] += de[e];
            a->ehas |= BIT(e);
        }
    for (int i = 0; i < STORE_Q_COUNT; i++)
        if (qhas & BIT(i))
            stat_add(&a->q[i], q[i]);
}

static void agg_merge(agg *a, const agg *b)
{
    a->n += b->n;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (b->ehas & BIT(e)) {
            a->e[e] += b->e[e];
            a->ehas |= BIT(e);
        }
    for (int i = 0; i < STORE_Q_COUNT; i++)
        stat_merge(&a->q[i], &b->q[i]);
}

/* Stats blob: varint mask, then per quantity n, zigzag min, max - min, sum - n * min. */
static size_t stats_encode(const agg *a, uint8_t *out)
{
    unsigned mask = 0;
    size_t n = 0;
    for (int i = 0; i < STORE_Q_COUNT; i++)
        if (a->q[i].n)
            mask |= BIT(i);
    n += put_varint(out + n, mask);
    for (int i = 0; i < STORE_Q_COUNT; i++) {
        const store_stat *s = &a->q[i];
        if (!s->n)
            continue;
        n += put_varint(out + n, (uint64_t)s->n);
        n += put_varint(out + n, zz(s->min));
        n += put_varint(out + n, (uint64_t)wsub(s->max, s->min));
        n += put_varint(out + n, (uint64_t)wsub(s->sum, (int64_t)((uint64_t)s->n * (uint64_t)s->min)));
    }
    return n;
}

static int stats_decode(agg *a, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t mask, n, mn, range, extra;
    memset(a->q, 0, sizeof a->q);
    if (len == 0)
        return 0;
    if (get_varint(&p, end, &mask) < 0)
        return -1;
    for (int i = 0; i < STORE_Q_COUNT; i++) {
        if (!(mask & BIT(i)))
            continue;
        if (get_varint(&p, end, &n) < 0 || get_varint(&p, end, &mn) < 0 ||
            get_varint(&p, end, &range) < 0 || get_varint(&p, end, &extra) < 0)
            return -1;
        store_stat *s = &a->q[i];
        s->n = (int64_t)n;
        s->min = unzz(mn);
        s->max = wadd(s->min, (int64_t)range);
        s->sum = wadd((int64_t)(n * (uint64_t)s->min), (int64_t)extra);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Raw blocks: readings of one meter within one UTC minute, delta-encoded. Per reading:
 * varint(dt << 2 | mask_changed << 1 | has_flags) [varint mask] [varint flags], then for every
 * field in the mask zigzag(value - the field's previous value in the block).
 * ------------------------------------------------------------------------------------------- */

typedef struct block_reader {
    const uint8_t *p, *end;
    int64_t ts;
    uint32_t mask;
    int64_t prev[F_COUNT];
} block_reader;

static size_t record_encode(const engine *e, const sample *x, uint8_t *out)
{
    int mc = x->mask != e->bmask, hf = x->flags != 0;
    size_t n = put_varint(out, ((uint64_t)(x->ts - e->bprev_ts) << 2) | (unsigned)(mc << 1) |
                                   (unsigned)hf);
    if (mc)
        n += put_varint(out + n, x->mask);
    if (hf)
        n += put_varint(out + n, x->flags);
    for (int f = 0; f < F_COUNT; f++)
        if (x->mask & BIT(f))
            n += put_varint(out + n, zz(wsub(x->v[f], e->bprev[f])));
    return n;
}

static void block_reader_init(block_reader *b, int64_t ts, const void *data, size_t len)
{
    memset(b, 0, sizeof *b);
    b->p = data;
    b->end = b->p + len;
    b->ts = ts;
}

/* Decodes the next reading; returns 1, 0 at the end, -1 when the block is corrupt. */
static int block_next(block_reader *b, sample *x)
{
    uint64_t head, v;
    if (b->p >= b->end)
        return 0;
    if (get_varint(&b->p, b->end, &head) < 0)
        return -1;
    b->ts += (int64_t)(head >> 2);
    memset(x, 0, sizeof *x);
    x->ts = b->ts;
    if (head & 2) {
        if (get_varint(&b->p, b->end, &v) < 0)
            return -1;
        b->mask = (uint32_t)v;
    }
    if (head & 1) {
        if (get_varint(&b->p, b->end, &v) < 0)
            return -1;
        x->flags = (uint32_t)v;
    }
    x->mask = b->mask;
    for (int f = 0; f < F_COUNT; f++) {
        if (!(b->mask & BIT(f)))
            continue;
        if (get_varint(&b->p, b->end, &v) < 0)
            return -1;
        b->prev[f] = wadd(b->prev[f], unzz(v));
        x->v[f] = b->prev[f];
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------------------------- */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int put_block(store *s, int64_t meter, const engine *e)
{
    sqlite3_stmt *st = s->raw_put;
    sqlite3_bind_int64(st, 1, meter);
    sqlite3_bind_int64(st, 2, e->bts);
    sqlite3_bind_int64(st, 3, e->bn);
    sqlite3_bind_blob(st, 4, e->buf, (int)e->blen, SQLITE_STATIC);
    return step_done(st);
}

static int put_agg(store *s, int k, int64_t meter, const agg *a)
{
    sqlite3_stmt *st = s->agg_put[k];
    uint8_t blob[STORE_STATS_MAX];
    size_t bl = stats_encode(a, blob);
    sqlite3_bind_int64(st, 1, meter);
    sqlite3_bind_int64(st, 2, a->ts);
    sqlite3_bind_int64(st, 3, a->n);
    for (int e = 0; e < STORE_E_COUNT; e++) {
        if (a->ehas & BIT(e))
            sqlite3_bind_int64(st, 4 + e, a->e[e]);
        else
            sqlite3_bind_null(st, 4 + e);
    }
    sqlite3_bind_blob(st, 4 + STORE_E_COUNT, blob, (int)bl, SQLITE_TRANSIENT);
    return step_done(st);
}

/* Reads one aggregate row (columns n, energies, stats starting at column `col`) into *a. */
static int row_agg(sqlite3_stmt *st, int col, agg *a)
{
    a->n = sqlite3_column_int64(st, col);
    a->ehas = 0;
    for (int e = 0; e < STORE_E_COUNT; e++) {
        if (sqlite3_column_type(st, col + 1 + e) == SQLITE_NULL) {
            a->e[e] = 0;
        } else {
            a->e[e] = sqlite3_column_int64(st, col + 1 + e);
            a->ehas |= BIT(e);
        }
    }
    const void *b = sqlite3_column_blob(st, col + 1 + STORE_E_COUNT);
    int bl = sqlite3_column_bytes(st, col + 1 + STORE_E_COUNT);
    return stats_decode(a, b, (size_t)bl);
}

/* ---------------------------------------------------------------------------------------------
 * The engine: one reading in, raw block and every tier's open step updated; finished blocks and
 * steps are written as they close (inside the caller's transaction).
 * ------------------------------------------------------------------------------------------- */

static void engine_init(engine *e)
{
    memset(e, 0, sizeof *e);
    for (int k = 0; k < NTIERS; k++)
        e->floor[k] = INT64_MIN;
}

static void block_reset(engine *e, int64_t ts)
{
    e->bts = ts;
    e->bprev_ts = ts;
    e->bmask = 0;
    e->bn = 0;
    e->blen = 0;
    memset(e->bprev, 0, sizeof e->bprev);
}

/* Records that segment group g starts a new segment at ts, for a new device or a counter reset. */
static int put_segment(store *s, int64_t meter, int64_t ts, int g, unsigned device)
{
    sqlite3_bind_int64(s->seg_put, 1, meter);
    sqlite3_bind_int64(s->seg_put, 2, ts);
    sqlite3_bind_text(s->seg_put, 3, group_name[g], -1, SQLITE_STATIC);
    sqlite3_bind_text(s->seg_put, 4, device ? "device" : "counter", -1, SQLITE_STATIC);
    return step_done(s->seg_put);
}

/* Appends x to the open raw block, writing the block first when x cannot join it. */
static int raw_append(store *s, int64_t meter, engine *e, const sample *x)
{
    uint8_t rec[STORE_RECORD_MAX];
    size_t n = 0;
    int rc;
    if (e->bts)
        n = record_encode(e, x, rec);
    if (!e->bts || fdiv(x->ts, STORE_BLOCK_SPAN) != fdiv(e->bts, STORE_BLOCK_SPAN) ||
        e->blen + n > STORE_BLOCK_MAX) {
        if (e->bts && e->bn && (rc = put_block(s, meter, e)) != SQLITE_OK)
            return rc;
        block_reset(e, x->ts);
        n = record_encode(e, x, rec);
    }
    memcpy(e->buf + e->blen, rec, n);
    e->blen += n;
    e->bn++;
    e->bprev_ts = x->ts;
    e->bmask = x->mask;
    for (int f = 0; f < F_COUNT; f++)
        if (x->mask & BIT(f))
            e->bprev[f] = x->v[f];
    e->bdirty = 1;
    return SQLITE_OK;
}

/* Writes a step of engine e: as it is, or (a backfill) added to the row already stored. */
static int put_step(store *s, int k, int64_t meter, const engine *e, const agg *a)
{
    if (!e->merge)
        return put_agg(s, k, meter, a);
    agg row = *a, old;
    sqlite3_stmt *g = s->agg_get[k];
    sqlite3_bind_int64(g, 1, meter);
    sqlite3_bind_int64(g, 2, a->ts);
    int rc = sqlite3_step(g);
    if (rc == SQLITE_ROW && row_agg(g, 0, &old) == 0)
        agg_merge(&row, &old);
    sqlite3_reset(g);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    return put_agg(s, k, meter, &row);
}

static int get_agg(store *s, int k, int64_t id, int64_t t, agg *a, int *found);

/* The capture time field of M-Bus energy e (gas, water, heat), -1 for the electricity. */
static int capture_field(int e)
{
    return e == STORE_E_GAS     ? F_GAS_T
           : e == STORE_E_WATER ? F_WATER_T
           : e == STORE_E_HEAT  ? F_HEAT_T
                                : -1;
}

/* The step of tier k that the rise of energy e in reading x belongs to. An M-Bus device is read
 * at its capture time and its value reaches the telegrams later: a DSMR 4 meter's hourly gas
 * some minutes after the hour it was used in, a DSMR 5 meter's every 5 minutes. In the 15-minute
 * tier and up its rise goes to the step holding the second before the capture when that is at
 * most STORE_CAPTURE_MAX before the reading; anything else to the reading's own step. The
 * 1-minute tier keeps every rise in the minute it arrived in: a minute is final (publishers with
 * rate = minute deliver it) once a later reading exists, and must not change after that. The
 * rule looks at x alone, so every order of storing the same readings books the same way (a
 * backfill, store_rebuild()). */
static int64_t book_step(int k, const sample *x, int e)
{
    int f = capture_field(e);
    int64_t at = x->ts;
    if (k > 0 && f >= 0 && (x->mask & BIT(f)) && x->v[f] <= x->ts &&
        x->v[f] > x->ts - STORE_CAPTURE_MAX)
        at = x->v[f];
    return store_step_floor(tier_step[k], at - 1);
}

/* Adds v of energy e to the stored step `step` of tier k: a rise booked before the step the
 * engine has open. A step without a row gets one with no reading in it (n 0): p1d read nothing
 * then, but the device measured what it says. Steps below e's floor are left as stored (a
 * rebuild starts at its floor; what was booked below it stays there). */
static int book_back(store *s, int k, int64_t meter, const engine *en, int64_t step, int e,
                     int64_t v)
{
    agg a;
    int found, rc;
    if (step < en->floor[k])
        return SQLITE_OK;
    if ((rc = get_agg(s, k, meter, step, &a, &found)) != SQLITE_OK)
        return rc;
    if (!found)
        memset(&a, 0, sizeof a);
    a.ts = step;
    a.e[e] = (a.ehas & BIT(e)) ? a.e[e] + v : v;
    a.ehas |= BIT(e);
    if (a.n == 0 && a.e[e] == 0) {
        /* a backfill took back what the reading after its gap had booked here: a step without
         * readings holds only what was booked into it, as if this never had been */
        a.ehas &= ~BIT(e);
        if (!a.ehas) {
            char sql[128];
            snprintf(sql, sizeof sql, "DELETE FROM %s WHERE meter = %" PRId64 " AND ts = %" PRId64,
                     tier_table[k], meter, step);
            return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        }
    }
    return put_agg(s, k, meter, &a);
}

static int engine_apply(store *s, int64_t meter, engine *e, const sample *x, int write_raw)
{
    int64_t de[STORE_E_COUNT];
    unsigned dhas, device;
    int rc;
    unsigned seg = fold_step(&e->f, x, de, &dhas, &device);
    if (seg && write_raw) {
        for (int g = 0; g < STORE_NDEV; g++) {
            if (!(seg & BIT(g)))
                continue;
            s->st.segments++;
            if ((rc = put_segment(s, meter, x->ts, g, device & BIT(g))) != SQLITE_OK)
                return rc;
        }
    }
    if (write_raw && (rc = raw_append(s, meter, e, x)) != SQLITE_OK)
        return rc;
    for (int k = 0; k < NTIERS; k++) {
        agg *a = &e->cur[k];
        int64_t t = store_step_floor(tier_step[k], x->ts - 1);
        if (a->n && a->ts != t) {
            if (a->ts >= e->floor[k] && (rc = put_step(s, k, meter, e, a)) != SQLITE_OK)
                return rc;
            a->n = 0;
        }
        if (!a->n) {
            memset(a, 0, sizeof *a);
            a->ts = t;
        }
        int64_t own[STORE_E_COUNT];
        memcpy(own, de, sizeof own);
        for (int g = STORE_E_GAS; g <= STORE_E_HEAT; g++) {
            int64_t b;
            if (!(dhas & BIT(g)) || !de[g] || (b = book_step(k, x, g)) == t)
                continue;
            own[g] = 0; /* the reading's step still says the device was there */
            if ((rc = book_back(s, k, meter, e, b, g, de[g])) != SQLITE_OK)
                return rc;
        }
        agg_add(a, own, dhas, x);
        e->cdirty[k] = 1;
    }
    e->last_ts = x->ts;
    return SQLITE_OK;
}

/* Writes the open block and open steps (they are rewritten until they close). */
static int engine_flush(store *s, int64_t meter, engine *e)
{
    int rc;
    if (e->bdirty && e->bn) {
        if ((rc = put_block(s, meter, e)) != SQLITE_OK)
            return rc;
    }
    e->bdirty = 0;
    for (int k = 0; k < NTIERS; k++) {
        if (e->cdirty[k] && e->cur[k].n && e->cur[k].ts >= e->floor[k]) {
            if ((rc = put_step(s, k, meter, e, &e->cur[k])) != SQLITE_OK)
                return rc;
        }
        e->cdirty[k] = 0;
    }
    return SQLITE_OK;
}

static const char *const energy_column[STORE_E_COUNT] = {
    "import", "import_t1", "import_t2", "export", "export_t1", "export_t2", "gas", "water", "heat"};

/* The energies (1 << STORE_E_*) of segment group g (electricity, gas, water, heat). */
static unsigned group_energies(int g)
{
    unsigned m = 0;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (energy_group[e] == BIT(g))
            m |= BIT(e);
    return m;
}

/* Folds into f the registers of segment group g from the newest raw reading that carried any
 * of them, in the minute step labelled `upto` or before: found by the 1-minute tier (a step
 * holds a register's energy when a reading in it carried it), looked for no further back than
 * the raw tier. None found: f stays. */
static int fold_group_back(store *s, int64_t meter, int g, int64_t upto, fold *f)
{
    /* electricity's six registers make the longest: 272 bytes */
    char sql[384];
    unsigned mine = group_energies(g);
    int n = snprintf(sql, sizeof sql,
                     "SELECT max(ts) FROM agg_1m WHERE meter = ?1 AND ts <= ?2 AND ts >= "
                     "(SELECT min(ts) FROM raw WHERE meter = ?1) - %d AND (0",
                     STORE_BLOCK_SPAN);
    for (int e = 0; e < STORE_E_COUNT && n < (int)sizeof sql; e++)
        if (mine & BIT(e))
            n += snprintf(sql + n, sizeof sql - (size_t)n, " OR %s IS NOT NULL", energy_column[e]);
    if (n >= (int)sizeof sql || snprintf(sql + n, sizeof sql - (size_t)n, ")") != 1)
        return SQLITE_TOOBIG;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, meter);
    sqlite3_bind_int64(st, 2, upto);
    int64_t t = 0;
    int found = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        t = sqlite3_column_int64(st, 0);
        found = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (!found)
        return SQLITE_OK;
    /* the minute labelled t holds the readings in (t, t + 60]: the blocks keyed t to t + 60 */
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT ts, data FROM raw WHERE meter = ?1 AND ts >= ?2 AND ts <= ?3 "
                            "ORDER BY ts",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, meter);
    sqlite3_bind_int64(st, 2, t);
    sqlite3_bind_int64(st, 3, t + 60);
    int64_t c[STORE_E_COUNT], last[STORE_E_COUNT];
    unsigned lhas = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        block_reader b;
        sample x;
        block_reader_init(&b, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1));
        while (block_next(&b, &x) > 0) {
            unsigned has = sample_counters(&x, c) & mine;
            if (x.ts <= t || x.ts > t + 60 || !has)
                continue;
            memcpy(last, c, sizeof last);
            lhas = has;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (lhas & BIT(e)) {
            f->c[e] = last[e];
            f->has |= BIT(e);
        }
    return SQLITE_OK;
}

/* Restores a meter's engine from the database: counters from its last raw block, open steps
 * from the tiers. The next reading starts a new block. A group of `groups` (STORE_SEG_* bits:
 * those with a device id known) whose registers the last block lacks (a gas meter not heard
 * from then) gets them from the reading that last carried them, so that the rise since then is
 * counted as it is without a restart. */
static int engine_load(store *s, int64_t meter, engine *e, unsigned groups)
{
    sqlite3_stmt *st;
    int rc;
    engine_init(e);
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT ts, data FROM raw WHERE meter = ?1 ORDER BY ts DESC LIMIT 1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, meter);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        block_reader b;
        sample x;
        int64_t de[STORE_E_COUNT];
        unsigned dhas, device;
        block_reader_init(&b, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1));
        while (block_next(&b, &x) > 0) {
            fold_step(&e->f, &x, de, &dhas, &device);
            e->last_ts = x.ts;
        }
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || !e->last_ts)
        return rc;
    for (int g = 0; g < STORE_NDEV; g++) {
        if ((groups & BIT(g)) && !(e->f.has & group_energies(g)) &&
            (rc = fold_group_back(s, meter, g, store_step_floor(STORE_STEP_1M, e->last_ts - 1),
                                  &e->f)) != SQLITE_OK)
            return rc;
    }
    for (int k = 0; k < NTIERS; k++) {
        int64_t t = store_step_floor(tier_step[k], e->last_ts - 1);
        sqlite3_stmt *g = s->agg_get[k];
        sqlite3_bind_int64(g, 1, meter);
        sqlite3_bind_int64(g, 2, t);
        rc = sqlite3_step(g);
        if (rc == SQLITE_ROW) {
            row_agg(g, 0, &e->cur[k]);
            e->cur[k].ts = t;
        }
        sqlite3_reset(g);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Opening, migrations
 * ------------------------------------------------------------------------------------------- */

void store_options_default(store_options *o)
{
    memset(o, 0, sizeof *o);
    o->raw_keep_s = 7 * 86400;
    o->minute_keep_s = 730 * 86400;
    o->queue_max = STORE_QUEUE_DEFAULT;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The zone a database's day steps (agg_1d, and the months and years summed from them) are
 * written in is the one it was created in: a calendar is no setting to change under a history.
 * The settings table is made here, not by a migration, so that older builds still open the
 * database; a database from before it was recorded was always written in CET. */
#define CALENDAR_SQL "SELECT value FROM settings WHERE key = 'calendar'"
/* Whether the database holds readings: one without a recorded zone then has CET days. */
#define CALENDAR_HELD_SQL "EXISTS (SELECT 1 FROM agg_1d) OR EXISTS (SELECT 1 FROM raw)"

/* The zone recorded in db (P1_ZONE_*), or -1 when none is (no table or no row). */
static int calendar_query(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int zone = -1;
    if (sqlite3_prepare_v2(db, CALENDAR_SQL, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        zone = v && strcmp(v, "EET") == 0 ? P1_ZONE_EET : P1_ZONE_CET;
    }
    sqlite3_finalize(st);
    return zone;
}

/* The recorded zone into s->zone: 1, or 0 when none is. */
static int calendar_read(store *s)
{
    int zone = calendar_query(s->db);
    if (zone >= 0)
        s->zone = zone;
    return zone >= 0;
}

static int calendar_load(store *s, const char *path, char *err, size_t cap)
{
    s->zone = P1_ZONE_CET;
    if (calendar_read(s) || s->o.readonly)
        return 0; /* read only, from before the table: CET */
    char sql[400], *msg = NULL;
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) "
             "WITHOUT ROWID; INSERT OR IGNORE INTO settings VALUES ('calendar', CASE "
             "WHEN " CALENDAR_HELD_SQL " THEN 'CET' ELSE '%s' END)",
             civil_zone() == P1_ZONE_EET ? "EET" : "CET");
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        say(err, cap, "%s: cannot record the calendar's zone: %s", path,
            sq_errno(rc) == -EBUSY
                ? "another program holds its write lock (a transaction left open in sqlite3 "
                  "or a database browser); try again once it is closed"
            : msg ? msg
                  : "error");
        sqlite3_free(msg);
        return -1;
    }
    calendar_read(s);
    return 0;
}

int store_zone(const store *s)
{
    return s->zone;
}

int store_file_zone(const char *path)
{
    sqlite3 *db = NULL;
    int zone = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) == SQLITE_OK)
        zone = calendar_query(db);
    /* A database from before the zone was recorded is CET, as calendar_load() records it: the
     * caller must not run a read-only store (p1 export), nor the days an import writes before
     * the row is made, in the system's zone. */
    sqlite3_stmt *st = NULL;
    if (zone < 0 && db &&
        sqlite3_prepare_v2(db, "SELECT " CALENDAR_HELD_SQL, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0))
        zone = P1_ZONE_CET;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return zone;
}

static int migrate(store *s, const char *path, char *err, size_t cap)
{
    int64_t v = 0;
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA user_version", &v); /* again: someone may have migrated */
    if (rc != SQLITE_OK) {
        say(err, cap, "%s: cannot start the schema migration: %s", path, sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (; v < STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            say(err, cap, "%s: schema migration %" PRId64 " -> %" PRId64 " failed: %s", path, v,
                v + 1, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
             STORE_SCHEMA_VERSION, STORE_APP_ID);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        say(err, cap, "%s: schema migration failed: %s", path, sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int prepare_all(store *s)
{
    char sql[256];
    int rc = sqlite3_prepare_v3(s->db, "INSERT OR REPLACE INTO raw VALUES (?1, ?2, ?3, ?4)", -1,
                                SQLITE_PREPARE_PERSISTENT, &s->raw_put, NULL);
    for (int k = 0; k < NTIERS && rc == SQLITE_OK; k++) {
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO %s VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                 "?12, ?13)",
                 tier_table[k]);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->agg_put[k], NULL);
        if (rc != SQLITE_OK)
            break;
        snprintf(sql, sizeof sql,
                 "SELECT n, import, import_t1, import_t2, export, export_t1, export_t2, gas, "
                 "water, heat, stats FROM %s WHERE meter = ?1 AND ts = ?2",
                 tier_table[k]);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->agg_get[k], NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, "INSERT OR IGNORE INTO segments VALUES (?1, ?2, ?3, ?4)",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->seg_put, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, "INSERT OR IGNORE INTO meters (name) VALUES (?1)", -1,
                                SQLITE_PREPARE_PERSISTENT, &s->meter_ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db,
                                "SELECT id, electricity_id, gas_id, water_id, heat_id FROM meters "
                                "WHERE name = ?1",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->meter_id, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db,
                                "UPDATE meters SET electricity_id = ?2, gas_id = ?3, water_id = ?4, "
                                "heat_id = ?5 WHERE id = ?1",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->meter_upd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db,
                                "SELECT count(*) FROM agg_1m WHERE meter = ?1 AND ts IN (?2, ?3) "
                                "AND n > 0",
                                -1, SQLITE_PREPARE_PERSISTENT, &s->minute_n, NULL);
    return rc;
}

static void meter_free(smeter *m)
{
    if (m) {
        free(m->bf);
        free(m->q);
        free(m);
    }
}

/* Loads what the database knows of meter m (by its name) into its engine, id and ids. */
static int meter_load(store *s, smeter *m)
{
    engine_init(&m->e);
    sqlite3_stmt *st = s->meter_id;
    sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        m->id = sqlite3_column_int64(st, 0);
        for (int d = 0; d < STORE_NDEV; d++) {
            const unsigned char *t = sqlite3_column_text(st, 1 + d);
            snprintf(m->dev[d], sizeof m->dev[d], "%s", t ? (const char *)t : "");
        }
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    unsigned groups = 0;
    for (int d = 0; d < STORE_NDEV; d++)
        if (m->dev[d][0])
            groups |= BIT(d);
    if (rc == SQLITE_OK && m->id)
        rc = engine_load(s, m->id, &m->e, groups);
    m->q_last_ts = m->e.last_ts;
    return rc;
}

/* Finds the meter state, creating it (and loading what the database knows) when missing. */
static smeter *meter_get(store *s, const char *name, int *rc_out)
{
    *rc_out = SQLITE_OK;
    for (size_t i = 0; i < s->nm; i++) {
        smeter *m = s->m[i];
        if (strcmp(m->name, name) == 0) {
            if (m->stale && (*rc_out = meter_load(s, m)) != SQLITE_OK)
                return NULL;
            m->stale = 0;
            m->forget = 0; /* in use again */
            return m;
        }
    }
    if (!name[0] || strlen(name) >= sizeof s->m[0]->name) {
        *rc_out = SQLITE_MISUSE;
        return NULL;
    }
    if (s->nm == s->capm) {
        size_t cap = s->capm ? s->capm * 2 : 4;
        smeter **n = realloc(s->m, cap * sizeof *n);
        if (!n) {
            *rc_out = SQLITE_NOMEM;
            return NULL;
        }
        s->m = n;
        s->capm = cap;
    }
    smeter *m = calloc(1, sizeof *m);
    if (!m) {
        *rc_out = SQLITE_NOMEM;
        return NULL;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    int rc = meter_load(s, m);
    if (rc != SQLITE_OK) {
        meter_free(m);
        *rc_out = rc;
        return NULL;
    }
    s->m[s->nm++] = m;
    return m;
}

/* store_open(); reader: a second connection of this process (store_open_reader()), which must
 * see the writer's commits, so never SQLite's "immutable" (see reopen_immutable()). */
static store *open_store(const char *path, const store_options *o, int reader, char *err,
                         size_t cap)
{
    store *s = calloc(1, sizeof *s);
    int64_t v = 0, app = 0, tables = 0;
    int rc;
    if (!s) {
        say(err, cap, "out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    s->db_fd = -1;
    if (o)
        s->o = *o;
    else
        store_options_default(&s->o);
    if (!s->o.queue_max)
        s->o.queue_max = STORE_QUEUE_DEFAULT;
    int flags = s->o.readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (!s->o.readonly && strncmp(path, "file:", 5) != 0 && strcmp(path, ":memory:") != 0) {
        /* A new history is the household's daily routine: not for every local user (SQLite would
         * create it 0644 under the usual umask). Its -wal and -shm files take this mode. The
         * umask still applies, so the unit's UMask=0027 gives the same 0640. */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0)
            close(fd);
    }
    rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        char why[STORE_ERR_MAX];
        say(err, cap, "%s: cannot open the database: %s%s", path,
            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
            open_reason(path, s->o.readonly, why, sizeof why));
        goto fail;
    }
    if (!s->o.readonly && sqlite3_db_readonly(s->db, "main") == 1) {
        /* SQLite opens a file it may not write read-only without a word; every write would
         * then fail later (a database made by `sudo p1 import` for p1d's own user) */
        char why[STORE_ERR_MAX];
        say(err, cap, "%s: cannot write the database%s: give p1d's user write access to it", path,
            write_reason(path, 0, why, sizeof why));
        goto fail;
    }
    if (!s->o.readonly && s->o.writer && writer_lock(s, path, err, cap) < 0)
        goto fail;
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    sqlite3_extended_result_codes(s->db, 1);
    /* Look before touching anything: a database we refuse must stay byte-identical. */
    rc = query_int(s->db, "PRAGMA user_version", &v);
    if (rc != SQLITE_OK && !reader && reopen_immutable(s, path, rc)) {
        sqlite3_extended_result_codes(s->db, 1);
        rc = query_int(s->db, "PRAGMA user_version", &v);
    }
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "SELECT count(*) FROM sqlite_schema", &tables);
    if (rc != SQLITE_OK && ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN)) {
        char why[STORE_ERR_MAX];
        say(err, cap, "%s: cannot use the database: %s%s", path, sqlite3_errmsg(s->db),
            write_reason(path, s->o.readonly, why, sizeof why));
        goto fail;
    }
    if (rc != SQLITE_OK) {
        say(err, cap, "%s: not a usable SQLite database: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (app != 0 && app != STORE_APP_ID) {
        say(err, cap, "%s: an SQLite database of another application (application_id %" PRId64
                      "); refusing to use it",
            path, app);
        goto fail;
    }
    if (v > STORE_SCHEMA_VERSION) {
        say(err, cap,
            "%s: the database has schema version %" PRId64
            ", newer than this program's %d (written by a newer p1d); refusing to use it, "
            "nothing was changed: upgrade p1d or use another --db",
            path, v, STORE_SCHEMA_VERSION);
        goto fail;
    }
    if (v == 0 && tables > 0) {
        say(err, cap, "%s: an SQLite database that p1d did not create (it has tables but no "
                      "p1d schema version); refusing to use it",
            path);
        goto fail;
    }
    if (s->o.readonly) {
        if (v < STORE_SCHEMA_VERSION) {
            say(err, cap, "%s: %s; open it once with p1d (or p1 import) to create or upgrade it",
                path, v ? "the database needs a schema upgrade" : "not a p1d database yet");
            goto fail;
        }
    } else {
        char *msg = NULL;
        rc = sqlite3_exec(s->db,
                          "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                          "PRAGMA secure_delete = OFF; PRAGMA journal_size_limit = 4194304",
                          NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            say(err, cap, "%s: cannot set up the database: %s", path, msg ? msg : "error");
            sqlite3_free(msg);
            goto fail;
        }
        if (v < STORE_SCHEMA_VERSION && migrate(s, path, err, cap) < 0)
            goto fail;
    }
    if (calendar_load(s, path, err, cap) < 0)
        goto fail;
    rc = prepare_all(s);
    if (rc != SQLITE_OK) {
        say(err, cap, "%s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    return s;
fail:
    store_close(s);
    errno = EINVAL;
    return NULL;
}

store *store_open(const char *path, const store_options *o, char *err, size_t cap)
{
    return open_store(path, o, 0, err, cap);
}

store *store_open_reader(store *s, char *err, size_t cap)
{
    const char *file = sqlite3_db_filename(s->db, "main");
    char mode[16] = "";
    sqlite3_stmt *st = NULL;
    if (!sqlite3_threadsafe()) {
        say(err, cap, "this SQLite library is built without thread support");
        return NULL;
    }
    if (!file || !file[0]) {
        say(err, cap, "the database is in memory, which a second connection cannot share");
        return NULL;
    }
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    /* Only WAL lets a reader run beside the writer's commits without blocking either. */
    if (strcmp(mode, "wal") != 0) {
        say(err, cap, "the database is not in WAL mode (journal_mode %s)", mode[0] ? mode : "?");
        return NULL;
    }
    store_options o;
    store_options_default(&o);
    o.readonly = 1;
    return open_store(file, &o, 1, err, cap);
}

int store_read_begin(store *s)
{
    return sq_errno(sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL));
}

void store_read_end(store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

void store_interrupt(store *s)
{
    sqlite3_interrupt(s->db);
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->db && !s->o.readonly && s->raw_put)
        store_commit(s);
    sqlite3_finalize(s->raw_put);
    for (int k = 0; k < NTIERS; k++) {
        sqlite3_finalize(s->agg_put[k]);
        sqlite3_finalize(s->agg_get[k]);
    }
    sqlite3_finalize(s->seg_put);
    sqlite3_finalize(s->meter_ins);
    sqlite3_finalize(s->meter_id);
    sqlite3_finalize(s->meter_upd);
    sqlite3_finalize(s->minute_n);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* the file stays: removing it would race with the next opener */
    if (s->db_fd >= 0)
        close(s->db_fd); /* after sqlite3_close(): see writer_lock() */
    for (size_t i = 0; i < s->nm; i++)
        meter_free(s->m[i]);
    free(s->m);
    free(s->snap);
    free(s);
}

struct sqlite3 *store_db(store *s)
{
    return s->db;
}

void store_prices_changed(store *s)
{
    s->prices_serial++;
}

uint64_t store_prices_serial(const store *s)
{
    /* SQLite's data_version changes when another connection commits: prices that `p1 prices
     * import` (or any other process) wrote show at once too. */
    sqlite3_stmt *st = NULL;
    uint64_t dv = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        dv = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return dv << 32 ^ s->prices_serial;
}

/* ---------------------------------------------------------------------------------------------
 * Write side
 * ------------------------------------------------------------------------------------------- */

int store_meter_clock(store *s, const char *meter, store_clock clock)
{
    int rc;
    if ((unsigned)clock > STORE_CLOCK_SYSTEM)
        return -EINVAL;
    smeter *m = meter_get(s, meter, &rc);
    if (!m)
        return rc == SQLITE_MISUSE ? -EINVAL : sq_errno(rc);
    m->clock = clock;
    return 0;
}

int store_meter_id(store *s, const char *meter, char out[P1_ID_MAX + 1])
{
    int rc;
    smeter *m = meter_get(s, meter, &rc);
    if (!m)
        return rc == SQLITE_MISUSE ? -EINVAL : sq_errno(rc);
    snprintf(out, P1_ID_MAX + 1, "%s", m->dev[0]);
    return out[0] != '\0';
}

int store_meter_registers(store *s, const char *meter, int64_t c[STORE_E_COUNT])
{
    int rc;
    smeter *m = meter_get(s, meter, &rc);
    if (!m)
        return rc == SQLITE_MISUSE ? -EINVAL : sq_errno(rc);
    /* The engine's fold holds what was committed; the queue is newer, oldest first (but for
     * older readings queued for a backfill). */
    fold f = m->e.f;
    int64_t last = m->e.last_ts;
    for (size_t i = 0; i < m->qlen; i++) {
        int64_t de[STORE_E_COUNT];
        unsigned dhas, device;
        const sample *x = &m->q[(m->qhead + i) % m->qcap];
        if (x->ts <= last)
            continue;
        last = x->ts;
        fold_step(&f, x, de, &dhas, &device);
    }
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (f.has & BIT(e))
            c[e] = f.c[e];
    return (int)f.has;
}

/* The equipment ids of r by segment group ("" none). */
static void device_ids(const p1_reading *r, const char *ids[STORE_NDEV])
{
    static const p1_medium media[STORE_NDEV] = {P1_MEDIUM_UNKNOWN, P1_MEDIUM_GAS,
                                                P1_MEDIUM_WATER, P1_MEDIUM_HEAT};
    ids[0] = r->equipment_id;
    for (int d = 1; d < STORE_NDEV; d++) {
        int i = p1_reading_mbus_find(r, media[d]);
        ids[d] = i >= 0 ? r->mbus[i].id : "";
    }
}

/* FNV-1a of an equipment id; 0 for none. */
static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    if (!id[0])
        return 0;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h ? h : 1;
}

static void device_flags(smeter *m, const p1_reading *r, sample *x)
{
    const char *ids[STORE_NDEV];
    device_ids(r, ids);
    for (int d = 0; d < STORE_NDEV; d++) {
        if (!ids[d][0] || strcmp(ids[d], m->dev[d]) == 0)
            continue;
        if (m->dev[d][0])
            x->flags |= BIT(d);
        snprintf(m->dev[d], sizeof m->dev[d], "%s", ids[d]);
        m->dev_dirty = 1;
    }
}

/* clock=auto with hysteresis: once the meter's clock is off by more than the tolerance, ours
 * is used until the meter's has been back within it for STORE_CLOCK_SETTLE s, so a clock near
 * the edge does not flip-flop (each flip jumps the time axis by minutes). *used says which. */
static int64_t auto_time(smeter *m, int mvalid, int64_t mt, int64_t sys, int unsynced,
                         store_clock *used)
{
    *used = STORE_CLOCK_SYSTEM;
    if (!sys) {
        *used = STORE_CLOCK_METER;
        return mvalid ? mt : 0;
    }
    if (!mvalid)
        return sys; /* a placeholder time says nothing about the meter's clock */
    int64_t off = mt - sys;
    int steady = m->has_last_off && off - m->last_off <= STORE_CLOCK_STEADY &&
                 m->last_off - off <= STORE_CLOCK_STEADY;
    m->last_off = off;
    m->has_last_off = 1;
    /* Without a real-time clock ours starts from the last shutdown (fake-hwclock), a build date
     * or 1970 and lags until NTP steps it; the grid operator keeps the meter's set. So while
     * the kernel calls ours unsynchronised, a meter ahead of it is right. A meter behind it is
     * judged as usual: that is not how an unsynchronised clock goes wrong. Nothing vouches for
     * the meter's time then but its running with ours: a time off by other than the previous
     * reading's offset (the first, or a digit garbled on a line without CRC) is skipped, since
     * a reading stored years ahead would stop the history until then. */
    if (unsynced && off > STORE_CLOCK_TOLERANCE) {
        m->clock_off = 0;
        m->clock_ok_since = 0;
        *used = steady ? STORE_CLOCK_METER : STORE_CLOCK_AUTO; /* AUTO: neither is trusted */
        return steady ? mt : 0;
    }
    int within = mt - sys <= STORE_CLOCK_TOLERANCE && sys - mt <= STORE_CLOCK_TOLERANCE;
    if (!m->clock_off) {
        if (within) {
            *used = STORE_CLOCK_METER;
            return mt;
        }
        m->clock_off = 1;
        m->clock_ok_since = 0;
        return sys;
    }
    if (!within) {
        m->clock_ok_since = 0;
        return sys;
    }
    if (!m->clock_ok_since || sys < m->clock_ok_since) /* the settling restarts at a step back */
        m->clock_ok_since = sys;
    if (sys - m->clock_ok_since < STORE_CLOCK_SETTLE)
        return sys;
    m->clock_off = 0;
    m->clock_ok_since = 0;
    *used = STORE_CLOCK_METER;
    return mt;
}

/* clock=meter: 1 when the meter's time mt jumped more than STORE_CLOCK_JUMP ahead of the newest
 * reading and of ours (sys, 0 unknown), and the previous reading did not jump with it. One
 * telegram with a time years ahead (a glitch, a digit garbled without CRC) stored would stop
 * the history until then; a clock really put forward is taken from the reading after it.
 * p1 import (backfill) holds such a reading itself and stores both when the next confirms it. */
static int meter_jumped(smeter *m, int64_t mt, int64_t sys)
{
    int64_t prev = m->jump_ts;
    m->jump_ts = 0;
    if (!m->q_last_ts || mt <= m->q_last_ts + STORE_CLOCK_JUMP ||
        (sys && mt <= sys + STORE_CLOCK_TOLERANCE))
        return 0;
    if (prev && mt >= prev && mt - prev <= STORE_CLOCK_JUMP)
        return 0;
    m->jump_ts = mt;
    return 1;
}

void store_system_synced(store *s, int synced)
{
    s->unsynced = !synced;
}

void store_last_clock(const store *s, store_clock_state *out)
{
    *out = s->last_clock;
}

int store_add(store *s, const char *meter, const p1_reading *r, int64_t system_ms)
{
    int rc;
    s->last_clock.used = STORE_CLOCK_AUTO;
    smeter *m = meter_get(s, meter, &rc);
    if (!m)
        return rc == SQLITE_MISUSE ? -EINVAL : sq_errno(rc);
    int64_t mt = 0, sys = system_ms > 0 ? system_ms / 1000 : 0, ts = 0;
    int mvalid = r->has_time && r->time.valid && p1_time_to_unix(&r->time, &mt) == 0;
    store_clock used;
    switch (m->clock) {
    case STORE_CLOCK_METER:
        ts = mvalid ? mt : sys;
        used = mvalid ? STORE_CLOCK_METER : STORE_CLOCK_SYSTEM;
        if (mvalid && !s->o.backfill && meter_jumped(m, mt, sys))
            ts = 0;
        break;
    case STORE_CLOCK_SYSTEM:
        ts = sys ? sys : (mvalid ? mt : 0);
        used = sys ? STORE_CLOCK_SYSTEM : STORE_CLOCK_METER;
        break;
    default:
        ts = auto_time(m, mvalid, mt, sys, s->unsynced, &used);
        /* A switch of clocks (or a meter clock set back) lands before the newest stored time.
         * Skipping until that time comes round again loses minutes of readings; stamping
         * each at last + 1 s never catches up with one telegram a second. So slew: one
         * reading per STORE_CLOCK_SLEW s of ours at last + 1 s, until the clock is ahead. Ours
         * behind its value at the last queued reading was stepped back (NTP, a date set by
         * hand): that counts as time passed, or nothing would be stored until it caught up. */
        if (ts > 0 && ts <= m->q_last_ts && m->q_last_ts > 0 && sys &&
            (sys - m->q_last_sys >= STORE_CLOCK_SLEW || sys < m->q_last_sys))
            ts = m->q_last_ts + 1;
        break;
    }
    s->last_clock = (store_clock_state){.policy = m->clock, .used = used, .unsynced = s->unsynced,
                                        .has_offset = mvalid && sys > 0,
                                        .offset_s = mvalid && sys > 0 ? mt - sys : 0};
    if (ts <= 0 || (ts <= m->q_last_ts && !s->o.backfill)) {
        s->st.skipped++;
        return 0;
    }
    /* Not newer, with backfill on: the commit sees where it falls in the stored history. Its
     * device ids are kept as hashes: they are compared with the gap's neighbours, not with the
     * newest reading's ids, which stay the meter's. */
    int older = ts <= m->q_last_ts;
    sample x;
    sample_from(&x, r);
    x.ts = ts;
    if (older) {
        const char *ids[STORE_NDEV];
        device_ids(r, ids);
        for (int d = 0; d < STORE_NDEV; d++)
            x.devh[d] = id_hash(ids[d]);
    } else {
        device_flags(m, r, &x);
    }
    if (m->qlen == m->qcap && m->qcap < s->o.queue_max) {
        size_t cap = m->qcap ? m->qcap * 2 : 16;
        if (cap > s->o.queue_max)
            cap = s->o.queue_max;
        sample *n = malloc(cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i < m->qlen; i++)
            n[i] = m->q[(m->qhead + i) % m->qcap];
        free(m->q);
        m->q = n;
        m->qcap = cap;
        m->qhead = 0;
    }
    if (m->qlen == m->qcap) {
        /* Full while the disk refuses: drop the oldest. Energy is not lost (the next reading's
         * delta covers it); a new-device mark is carried over to the next reading. */
        uint32_t fl = m->q[m->qhead].flags;
        m->qhead = (m->qhead + 1) % m->qcap;
        m->qlen--;
        if (m->qlen)
            m->q[m->qhead].flags |= fl;
        else
            x.flags |= fl;
        s->st.dropped++;
    }
    m->q[(m->qhead + m->qlen) % m->qcap] = x;
    m->qlen++;
    if (older)
        return 2;
    m->q_last_ts = ts;
    m->q_last_sys = sys;
    return 1;
}

size_t store_queued(const store *s, const char *name)
{
    for (size_t i = 0; i < s->nm; i++)
        if (strcmp(s->m[i]->name, name) == 0)
            return s->m[i]->qlen;
    return 0;
}

size_t store_pending(const store *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nm; i++)
        n += s->m[i]->qlen;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Backfill (store_options.backfill): readings older than the meter's newest, stored before its
 * first reading or into a gap of its raw history, with the result an import in time order
 * would have given. The readings of one gap go through an engine of their own that starts from
 * the counters before the gap (none before the first reading): raw blocks of their own, steps
 * added to the rows already there (sums, counts, min/max compose). At the end the reading
 * after the gap, whose step held the energy of the whole gap, is re-folded against the last
 * backfilled reading instead: its steps get the difference, its segment rows and device flags
 * follow. One gap is one transaction (store_flush() keeps it open).
 * ------------------------------------------------------------------------------------------- */

typedef struct backfill {
    int open;                   /* a gap is being filled */
    int64_t hi;                 /* its readings are before this time */
    int next_raw;               /* the reading after the gap is in the raw tier (time exact) */
    int64_t nts;                /* its time (next_raw) */
    int64_t nc[STORE_E_COUNT];  /* its registers (reconstructed when !next_raw) */
    unsigned nhas;
    uint32_t nflags;            /* its stored device flags */
    uint32_t ndev[STORE_NDEV];  /* hashes of its device ids, 0 unknown */
    int64_t step[NTIERS];       /* the label of the step holding it, INT64_MIN none */
    sample nx;                  /* it (next_raw), for the steps its M-Bus rises go to */
    fold f0;                    /* the counters before the gap (empty: before the first reading) */
    uint32_t devh[STORE_NDEV];  /* device id hashes of the last reading filled in, 0 unknown */
    uint32_t devnot[STORE_NDEV]; /* devh unknown: the id before the gap is known not to be this */
    engine e;                   /* the readings filled in */
    int64_t cov_lo, cov_hi;     /* readings in [cov_lo, cov_hi] are at times already covered */
} backfill;

/* min(ts) of the rows of a table for a meter that hold readings into *out (0 none): a step with
 * only an M-Bus rise booked into it (book_back()) may come before the first reading. */
static int min_ts(store *s, const char *table, int64_t id, int64_t *out)
{
    char sql[96];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT min(ts) FROM %s WHERE meter = ?1 AND n > 0", table);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    *out = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Reads the aggregate row of tier k at label t into *a; *found says whether there is one. */
static int get_agg(store *s, int k, int64_t id, int64_t t, agg *a, int *found)
{
    sqlite3_stmt *g = s->agg_get[k];
    sqlite3_bind_int64(g, 1, id);
    sqlite3_bind_int64(g, 2, t);
    int rc = sqlite3_step(g);
    *found = rc == SQLITE_ROW && row_agg(g, 0, a) == 0;
    sqlite3_reset(g);
    a->ts = t;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Hashes of the meter's current device ids, 0 for a group whose device changed after time t
 * (its id at t is not known). */
static int dev_at(store *s, smeter *m, int64_t t, uint32_t out[STORE_NDEV])
{
    sqlite3_stmt *st;
    for (int d = 0; d < STORE_NDEV; d++)
        out[d] = id_hash(m->dev[d]);
    int rc = sqlite3_prepare_v2(s->db, "SELECT kind FROM segments WHERE meter = ?1 AND ts > ?2 "
                                       "AND reason = 'device'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_int64(st, 2, t);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int d = 0; d < STORE_NDEV; d++)
            if (!strcmp((const char *)sqlite3_column_text(st, 0), group_name[d]))
                out[d] = 0;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Decodes the raw block of a meter with the greatest key <= t (op "<=") or the least key > t
 * (op ">") into xs[cap]; *n readings, *key its key (0 none). */
static int raw_block_at(store *s, int64_t id, int64_t t, const char *op, sample *xs, size_t cap,
                        size_t *n, int64_t *key)
{
    char sql[128];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT ts, data FROM raw WHERE meter = ?1 AND ts %s ?2 ORDER BY ts "
                              "%s LIMIT 1", op, op[0] == '<' ? "DESC" : "");
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, t);
    *n = 0;
    *key = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        block_reader b;
        *key = sqlite3_column_int64(st, 0);
        block_reader_init(&b, *key, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        while (*n < cap && block_next(&b, &xs[*n]) > 0)
            (*n)++;
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Starts filling the gap before the stored reading at nts (in the raw tier; p, the reading
 * before the gap, NULL before the first), whose counters start from f0. */
static int bf_begin_raw(store *s, smeter *m, const fold *f0, const sample *p, int64_t nts)
{
    backfill *b = m->bf;
    sample xs[STORE_BLOCK_SPAN + 1];
    size_t n;
    int64_t key;
    int rc = raw_block_at(s, m->id, nts, "<=", xs, 1, &n, &key);
    if (rc != SQLITE_OK)
        return rc;
    if (!n || key != nts)
        return SQLITE_CORRUPT;
    b->next_raw = 1;
    b->nts = nts;
    b->nx = xs[0];
    b->nhas = sample_counters(&xs[0], b->nc);
    b->nflags = xs[0].flags;
    for (int k = 0; k < NTIERS; k++)
        b->step[k] = store_step_floor(tier_step[k], nts - 1);
    if ((rc = dev_at(s, m, nts, b->ndev)) != SQLITE_OK)
        return rc;
    memset(b->devh, 0, sizeof b->devh);
    memset(b->devnot, 0, sizeof b->devnot);
    if (p && (rc = dev_at(s, m, p->ts, b->devh)) != SQLITE_OK)
        return rc;
    /* A device changed since the reading before the gap: the one after it says whether its id
     * was the same (no flag) or another (flagged) */
    for (int d = 0; p && d < STORE_NDEV; d++) {
        if (b->devh[d] || !b->ndev[d])
            continue;
        if (b->nflags & BIT(d))
            b->devnot[d] = b->ndev[d];
        else
            b->devh[d] = b->ndev[d];
    }
    b->f0 = *f0;
    b->hi = nts;
    engine_init(&b->e);
    b->e.merge = 1;
    b->e.f = *f0;
    b->e.last_ts = p ? p->ts : 0;
    b->open = 1;
    return SQLITE_OK;
}

/* Starts filling before the first reading when it has left the raw tier: readings up to the
 * label of the oldest stored step `bound`. Its registers follow from the newest ones less the
 * energy of every hour since (unknown for a group with a segment since: its energy across the
 * boundary is not counted); its time is not known, so a boundary segment is not recorded. */
static int bf_begin_pruned(store *s, smeter *m, int64_t bound, const int64_t first[NTIERS])
{
    backfill *b = m->bf;
    sqlite3_stmt *st;
    agg h;
    int found;
    unsigned unknown = 0;
    memset(b->nc, 0, sizeof b->nc);
    b->nhas = m->e.f.has;
    int rc = sqlite3_prepare_v2(s->db, "SELECT sum(import), sum(import_t1), sum(import_t2), "
                                       "sum(export), sum(export_t1), sum(export_t2), sum(gas), "
                                       "sum(water), sum(heat) FROM agg_1h WHERE meter = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, m->id);
    rc = sqlite3_step(st);
    for (int e = 0; rc == SQLITE_ROW && e < STORE_E_COUNT; e++) {
        if (sqlite3_column_type(st, e) == SQLITE_NULL)
            b->nhas &= ~BIT(e);
        b->nc[e] = wsub(m->e.f.c[e], sqlite3_column_int64(st, e));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    rc = sqlite3_prepare_v2(s->db, "SELECT DISTINCT kind FROM segments WHERE meter = ?1", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, m->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int d = 0; d < STORE_NDEV; d++)
            if (!strcmp((const char *)sqlite3_column_text(st, 0), group_name[d]))
                unknown |= BIT(d);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc;
    if ((rc = get_agg(s, 2, m->id, first[2], &h, &found)) != SQLITE_OK)
        return rc;
    b->nhas &= found ? h.ehas : 0;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (unknown & energy_group[e])
            b->nhas &= ~BIT(e);
    /* the oldest row of a tier holds the first reading unless retention cut that tier there */
    for (int k = 0; k < NTIERS; k++)
        b->step[k] = first[k] && (k >= 2 || first[k] < first[2] + 3600) ? first[k] : INT64_MIN;
    b->next_raw = 0;
    b->nts = 0;
    b->nflags = 0;
    memset(b->ndev, 0, sizeof b->ndev);
    memset(b->devh, 0, sizeof b->devh);
    memset(b->devnot, 0, sizeof b->devnot);
    memset(&b->f0, 0, sizeof b->f0);
    b->hi = bound + 1;
    engine_init(&b->e);
    b->e.merge = 1;
    b->open = 1;
    return SQLITE_OK;
}

/* Where a reading at ts (not newer than the newest) falls: before the first reading or in a gap
 * of the raw tier (a run begins), or at a time already covered (cov_lo..cov_hi is set). */
static int bf_classify(store *s, smeter *m, int64_t ts)
{
    backfill *b = m->bf;
    int64_t id = m->id, first, tfirst[NTIERS];
    int rc = engine_flush(s, id, &m->e); /* the queries below see what is queued before */
    if (rc == SQLITE_OK)
        rc = min_ts(s, "raw", id, &first);
    for (int k = 0; k < NTIERS && rc == SQLITE_OK; k++)
        rc = min_ts(s, tier_table[k], id, &tfirst[k]);
    if (rc != SQLITE_OK)
        return rc;
    b->cov_lo = b->cov_hi = ts;
    /* Is the first raw reading the meter's first? Its minute step must be the oldest one and
     * count no reading that raw retention took. */
    int exact = 0;
    if (first && tfirst[0] == store_step_floor(STORE_STEP_1M, first - 1)) {
        agg a;
        int found;
        sample xs[STORE_BLOCK_SPAN + 1];
        size_t n, cnt = 0;
        int64_t key;
        if ((rc = get_agg(s, 0, id, tfirst[0], &a, &found)) != SQLITE_OK)
            return rc;
        for (int64_t t = tfirst[0]; rc == SQLITE_OK && t <= tfirst[0] + 60;) {
            rc = raw_block_at(s, id, t, ">", xs, STORE_BLOCK_SPAN + 1, &n, &key);
            if (!key || key > tfirst[0] + 60)
                break;
            for (size_t i = 0; i < n; i++)
                cnt += xs[i].ts <= tfirst[0] + 60;
            t = key;
        }
        if (rc != SQLITE_OK)
            return rc;
        exact = found && (int64_t)cnt == a.n;
    }
    fold none;
    memset(&none, 0, sizeof none);
    if (exact && ts < first)
        return bf_begin_raw(s, m, &none, NULL, first);
    if (!exact) {
        int64_t bound = tfirst[0] && tfirst[0] < tfirst[2] + 3600 ? tfirst[0] : tfirst[2];
        if (!tfirst[2]) {
            b->cov_hi = INT64_MAX; /* no history to place it in */
            return SQLITE_OK;
        }
        if (ts <= bound)
            return bf_begin_pruned(s, m, bound, tfirst);
        if (!first || ts < first) {
            b->cov_lo = bound + 1;
            b->cov_hi = first ? first - 1 : INT64_MAX;
            return SQLITE_OK;
        }
    }
    /* In the raw tier: the readings around ts, p at or before it and the next one. */
    sample xs[STORE_BLOCK_SPAN + 1];
    size_t n;
    int64_t key, nts = 0;
    fold f;
    memset(&f, 0, sizeof f);
    if ((rc = raw_block_at(s, id, ts, "<=", xs, STORE_BLOCK_SPAN + 1, &n, &key)) != SQLITE_OK)
        return rc;
    if (!n)
        return SQLITE_CORRUPT;
    size_t pi = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t de[STORE_E_COUNT];
        unsigned dhas, device;
        if (xs[i].ts > ts) {
            nts = xs[i].ts;
            break;
        }
        pi = i;
        fold_step(&f, &xs[i], de, &dhas, &device);
    }
    int64_t pts = xs[pi].ts, bkey = key, blast = xs[n - 1].ts;
    if (!nts) {
        sample next;
        size_t nn;
        if ((rc = raw_block_at(s, id, key, ">", &next, 1, &nn, &nts)) != SQLITE_OK)
            return rc;
        if (nts && pts < ts && nts - pts > STORE_GAP_MIN)
            return bf_begin_raw(s, m, &f, &xs[pi], nts);
    }
    /* Covered: the span goes on over blocks closer than a gap, so that the readings after
     * this one need no query (a bounded walk: a few days of blocks). */
    b->cov_lo = pts;
    b->cov_hi = INT64_MAX; /* up to the newest */
    if (!nts)
        return SQLITE_OK;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db, "SELECT ts FROM raw WHERE meter = ?1 AND ts > ?2 ORDER BY ts "
                                   "LIMIT 8192", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, bkey);
    int64_t prev = bkey, last = blast; /* a block's key and its last reading (or a bound) */
    int exact_last = 1, rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0);
        rows++;
        if (k - last > STORE_GAP_MIN && !exact_last) {
            rc = raw_block_at(s, id, prev, "<=", xs, STORE_BLOCK_SPAN + 1, &n, &key);
            if (rc != SQLITE_OK)
                break;
            last = n ? xs[n - 1].ts : prev;
        }
        if (k - last > STORE_GAP_MIN) {
            b->cov_hi = last;
            rc = SQLITE_DONE;
            break;
        }
        prev = last = k;
        exact_last = 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc;
    if (rows == 8192 && b->cov_hi == INT64_MAX)
        b->cov_hi = prev;
    return SQLITE_OK;
}

/* Rewrites the raw blocks of the UTC minute of the reading at nts (the first of its block)
 * with its device flags set to flags. */
static int raw_reflag(store *s, smeter *m, int64_t nts, uint32_t flags)
{
    sample xs[STORE_BLOCK_SPAN + 1];
    size_t nx = 0, n;
    int64_t key, t = nts - 1, end = (fdiv(nts, STORE_BLOCK_SPAN) + 1) * STORE_BLOCK_SPAN;
    int rc;
    for (;;) {
        rc = raw_block_at(s, m->id, t, ">", xs + nx, STORE_BLOCK_SPAN + 1 - nx, &n, &key);
        if (rc != SQLITE_OK || !key || key >= end)
            break;
        nx += n;
        t = key;
    }
    if (rc != SQLITE_OK)
        return rc;
    if (!nx || xs[0].ts != nts)
        return SQLITE_CORRUPT;
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM raw WHERE meter = %" PRId64 " AND ts >= %" PRId64
                              " AND ts < %" PRId64, m->id, nts, end);
    if ((rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
        return rc;
    xs[0].flags = flags;
    engine *e = malloc(sizeof *e);
    if (!e)
        return SQLITE_NOMEM;
    engine_init(e);
    for (size_t i = 0; i < nx && rc == SQLITE_OK; i++)
        rc = raw_append(s, m->id, e, &xs[i]);
    if (rc == SQLITE_OK && e->bn)
        rc = put_block(s, m->id, e);
    free(e);
    if (m->e.bts >= nts && m->e.bts < end) {
        m->e.bts = 0; /* its open block was one of them: the next reading starts a new one */
        m->e.bdirty = 0;
    }
    return rc;
}

/* Ends the run: writes its open block and steps, re-folds the reading after the gap. */
static int bf_end(store *s, smeter *m)
{
    backfill *b = m->bf;
    int64_t id = m->id;
    int rc;
    b->open = 0;
    b->cov_lo = 1;
    b->cov_hi = 0;
    for (int k = 0; k < NTIERS; k++)
        b->e.cdirty[k] = 1;
    b->e.bdirty = 1;
    if ((rc = engine_flush(s, id, &b->e)) != SQLITE_OK)
        return rc;
    uint32_t flags = b->nflags;
    for (int d = 0; d < STORE_NDEV && b->next_raw; d++) {
        if (!b->ndev[d] || !b->devh[d])
            continue;
        if (b->ndev[d] != b->devh[d])
            flags |= BIT(d);
        else
            flags &= ~BIT(d);
    }
    int64_t deo[STORE_E_COUNT], den[STORE_E_COUNT];
    unsigned ho, hn, dvo, dvn;
    fold fo = b->f0, fn = b->e.f;
    unsigned so = fold_counters(&fo, b->nc, b->nhas, b->nflags, deo, &ho, &dvo);
    unsigned sn = fold_counters(&fn, b->nc, b->nhas, flags, den, &hn, &dvn);
    for (int k = 0; k < NTIERS; k++) {
        agg a;
        int found, changed = 0;
        if (b->step[k] == INT64_MIN)
            continue;
        if ((rc = get_agg(s, k, id, b->step[k], &a, &found)) != SQLITE_OK)
            return rc;
        for (int e = 0; e < STORE_E_COUNT; e++) {
            if (!(hn & BIT(e)) || den[e] == deo[e])
                continue;
            /* an M-Bus rise went to the step of its capture (book_step()), so does the change */
            int64_t at = b->next_raw ? book_step(k, &b->nx, e) : b->step[k];
            if (at != b->step[k]) {
                if ((rc = book_back(s, k, id, &b->e, at, e, den[e] - deo[e])) != SQLITE_OK)
                    return rc;
            } else if (found) {
                a.e[e] += den[e] - deo[e];
                changed = 1;
            }
        }
        if (changed && (rc = put_agg(s, k, id, &a)) != SQLITE_OK)
            return rc;
    }
    if (b->next_raw && (so || sn)) {
        for (int g = 0; g < STORE_NDEV; g++) {
            char sql[160];
            if (!((so | sn) & BIT(g)))
                continue;
            snprintf(sql, sizeof sql, "DELETE FROM segments WHERE meter = %" PRId64 " AND ts = %"
                     PRId64 " AND kind = '%s'", id, b->nts, group_name[g]);
            if ((rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
                return rc;
            if (!(sn & BIT(g)))
                continue;
            s->st.segments += !(so & BIT(g));
            if ((rc = put_segment(s, id, b->nts, g, dvn & BIT(g))) != SQLITE_OK)
                return rc;
        }
    }
    if (b->next_raw && flags != b->nflags && (rc = raw_reflag(s, m, b->nts, flags)) != SQLITE_OK)
        return rc;
    /* the meter's open steps may be rows the run added to: continue from the stored ones */
    for (int k = 0; k < NTIERS; k++) {
        int found;
        if (m->e.cur[k].n && (rc = get_agg(s, k, id, m->e.cur[k].ts, &m->e.cur[k], &found)) !=
                                 SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* One queued reading not newer than the meter's newest: fills the gap being filled, starts
 * filling another, or is skipped as already covered. */
static int bf_take(store *s, smeter *m, const sample *x)
{
    int rc;
    s->bf_touched = 1;
    if (!m->bf && !(m->bf = calloc(1, sizeof *m->bf)))
        return SQLITE_NOMEM;
    backfill *b = m->bf;
    /* not newer than the last reading filled in (a duplicate): skipped, as in time order */
    if (b->open && x->ts <= b->e.last_ts) {
        s->st.skipped++;
        s->st.covered++;
        return SQLITE_OK;
    }
    if (b->open && x->ts >= b->hi && (rc = bf_end(s, m)) != SQLITE_OK)
        return rc;
    if (!b->open && !(x->ts >= b->cov_lo && x->ts <= b->cov_hi) &&
        (rc = bf_classify(s, m, x->ts)) != SQLITE_OK)
        return rc;
    if (!b->open || x->ts <= b->e.last_ts || x->ts >= b->hi) {
        s->st.skipped++;
        s->st.covered++;
        return SQLITE_OK;
    }
    sample y = *x;
    y.flags = 0;
    for (int d = 0; d < STORE_NDEV; d++) {
        if (!y.devh[d])
            continue;
        if (b->devh[d] ? b->devh[d] != y.devh[d] : b->devnot[d] == y.devh[d])
            y.flags |= BIT(d);
        b->devh[d] = y.devh[d];
    }
    s->st.backfilled++;
    return engine_apply(s, m->id, &b->e, &y, 1);
}

static int commit_meter(store *s, smeter *m)
{
    int rc;
    if (!m->id) {
        sqlite3_bind_text(s->meter_ins, 1, m->name, -1, SQLITE_STATIC);
        if ((rc = step_done(s->meter_ins)) != SQLITE_OK)
            return rc;
        sqlite3_bind_text(s->meter_id, 1, m->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s->meter_id);
        if (rc == SQLITE_ROW)
            m->id = sqlite3_column_int64(s->meter_id, 0);
        sqlite3_reset(s->meter_id);
        sqlite3_clear_bindings(s->meter_id);
        if (!m->id)
            return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_ERROR : rc;
        m->dev_dirty = 1;
    }
    if (m->dev_dirty) {
        sqlite3_bind_int64(s->meter_upd, 1, m->id);
        for (int d = 0; d < STORE_NDEV; d++)
            sqlite3_bind_text(s->meter_upd, 2 + d, m->dev[d], -1, SQLITE_STATIC);
        if ((rc = step_done(s->meter_upd)) != SQLITE_OK)
            return rc;
    }
    for (size_t i = 0; i < m->qlen; i++) {
        const sample *x = &m->q[(m->qhead + i) % m->qcap];
        if (x->ts <= m->e.last_ts) { /* only with store_options.backfill */
            rc = bf_take(s, m, x);
        } else {
            if (m->bf && m->bf->open && (rc = bf_end(s, m)) != SQLITE_OK)
                return rc;
            if (m->bf) { /* the history grows: what was known to be covered is looked up again */
                m->bf->cov_lo = 1;
                m->bf->cov_hi = 0;
            }
            rc = engine_apply(s, m->id, &m->e, x, 1);
        }
        if (rc != SQLITE_OK)
            return rc;
    }
    return engine_flush(s, m->id, &m->e);
}

static int write_import(store *s)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT OR REPLACE INTO imports VALUES (?1, ?2, ?3, ?4, ?5, "
                                "CAST(strftime('%s', 'now') AS INTEGER))",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, s->import_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->import_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->import_meter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, s->import_offset);
    sqlite3_bind_int64(st, 5, s->import_telegrams);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Frees the state of meters store_forget() let go of, once nothing of theirs waits for a commit:
 * the database then holds all of it, and meter_get() loads it again as at a start. */
static void forget_done(store *s)
{
    for (size_t i = 0; i < s->nm;) {
        smeter *m = s->m[i];
        if (!m->forget || m->qlen || m->dev_dirty || (m->bf && m->bf->open)) {
            i++;
            continue;
        }
        memmove(&s->m[i], &s->m[i + 1], (s->nm - i - 1) * sizeof s->m[0]);
        s->nm--;
        meter_free(m);
    }
}

int store_forget(store *s, const char *meter)
{
    for (size_t i = 0; i < s->nm; i++) {
        if (strcmp(s->m[i]->name, meter) == 0) {
            s->m[i]->forget = 1;
            forget_done(s);
            break;
        }
    }
    return 0;
}

/* After a failed commit that had backfilled (or held its transaction over earlier batches):
 * the rollback took more than this commit's queue, so the memory of every meter goes, its
 * queue with it, and is loaded again from the database at its next use. What the caller set
 * (its name, store_meter_clock(), store_forget()) stays. */
static void commit_reset(store *s)
{
    for (size_t i = 0; i < s->nm; i++) {
        smeter *m = s->m[i];
        char name[sizeof m->name];
        store_clock clock = m->clock;
        int forget = m->forget;
        s->st.dropped += m->qlen;
        memcpy(name, m->name, sizeof name);
        free(m->bf);
        free(m->q);
        memset(m, 0, sizeof *m);
        memcpy(m->name, name, sizeof name);
        m->clock = clock;
        m->forget = forget;
        m->stale = 1;
    }
    s->import_pending = 0;
}

/* Copies the WAL into the database as far as no reader holds it back; a failure (a full disk)
 * is what store_healthy() reports until a checkpoint succeeds again. */
static void checkpoint(store *s)
{
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    s->ckpt_failing = rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED;
}

/* Writes the queue in one transaction; end_runs 0 leaves a backfill run, and the transaction,
 * open (store_flush). */
static int commit_run(store *s, int end_runs)
{
    int rc = SQLITE_OK;
    size_t n = 0;
    if (s->o.readonly)
        return -EROFS;
    for (size_t i = 0; i < s->nm; i++) {
        smeter *m = s->m[i];
        n += m->qlen;
    }
    if (!n && !s->import_pending && !(end_runs && s->txn_held))
        return 0;
    if (s->capsnap < s->nm) {
        snapshot *sn = realloc(s->snap, s->nm * sizeof *sn);
        if (!sn)
            return -ENOMEM;
        s->snap = sn;
        s->capsnap = s->nm;
    }
    for (size_t i = 0; i < s->nm; i++) {
        s->snap[i].e = s->m[i]->e;
        s->snap[i].id = s->m[i]->id;
        s->snap[i].dev_dirty = s->m[i]->dev_dirty;
    }
    uint64_t covered = s->st.covered, segments = s->st.segments;
    int held = s->txn_held, keep = 0;
    s->bf_touched = 0;
    if (sqlite3_get_autocommit(s->db)) {
        s->st_begin = s->st;
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    }
    for (size_t i = 0; i < s->nm && rc == SQLITE_OK; i++)
        if (s->m[i]->qlen || s->m[i]->dev_dirty)
            rc = commit_meter(s, s->m[i]);
    for (size_t i = 0; i < s->nm && rc == SQLITE_OK; i++) {
        smeter *m = s->m[i];
        if (m->bf && m->bf->open && end_runs)
            rc = bf_end(s, m);
        else if (m->bf && m->bf->open)
            keep = 1;
    }
    if (rc == SQLITE_OK && s->import_pending)
        rc = write_import(s);
    if (rc == SQLITE_OK && !keep)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->txn_held = 0;
        s->failing = 1;
        s->fail_rc = rc;
        s->st.failures++;
        if (held || s->bf_touched) {
            /* what the transaction counted did not happen */
            store_stats now = s->st;
            s->st = s->st_begin;
            s->st.failures = now.failures;
            s->st.dropped = now.dropped;
            commit_reset(s);
            return sq_errno(rc);
        }
        for (size_t i = 0; i < s->nm; i++) {
            s->m[i]->e = s->snap[i].e;
            s->m[i]->id = s->snap[i].id;
            s->m[i]->dev_dirty = s->snap[i].dev_dirty;
        }
        s->st.segments = segments; /* rolled back: counted again when the retry writes them */
        return sq_errno(rc);
    }
    s->txn_held = keep;
    for (size_t i = 0; i < s->nm; i++) {
        smeter *m = s->m[i];
        m->qlen = 0;
        m->qhead = 0;
        m->dev_dirty = 0;
        if (s->failing && m->qcap > 64) {
            /* give back the memory an outage grew */
            free(m->q);
            m->q = NULL;
            m->qcap = 0;
        }
    }
    s->import_pending = 0;
    s->st.committed += n - (s->st.covered - covered);
    s->failing = 0;
    if (s->ckpt_failing && !keep)
        checkpoint(s); /* writing again: /healthz need not wait for store_maintain() */
    forget_done(s);
    return 0;
}

/* commit_run(), timed (store_stats.commit_us) when it wrote readings or failed. */
static int commit_all(store *s, int end_runs)
{
    struct timespec a, b;
    uint64_t committed = s->st.committed, failures = s->st.failures;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = commit_run(s, end_runs);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (s->st.committed != committed || s->st.failures != failures)
        s->st.commit_us =
            (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
    return rc;
}

int store_commit(store *s)
{
    return commit_all(s, 1);
}

int store_flush(store *s)
{
    return commit_all(s, 0);
}

int store_import_get(store *s, const char *key, int64_t *offset, int64_t *telegrams)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT offset, telegrams FROM imports WHERE file_key = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW;
    if (found) {
        *offset = sqlite3_column_int64(st, 0);
        *telegrams = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return found ? 1 : rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

int store_import_set(store *s, const char *key, const char *path, const char *meter,
                     int64_t offset, int64_t telegrams)
{
    if (strlen(key) >= sizeof s->import_key || strlen(path) >= sizeof s->import_path ||
        strlen(meter) >= sizeof s->import_meter)
        return -ENAMETOOLONG;
    snprintf(s->import_key, sizeof s->import_key, "%s", key);
    snprintf(s->import_path, sizeof s->import_path, "%s", path);
    snprintf(s->import_meter, sizeof s->import_meter, "%s", meter);
    s->import_offset = offset;
    s->import_telegrams = telegrams;
    s->import_pending = 1;
    return 0;
}

/* Deletes rows of one table older than cutoff, at most STORE_PRUNE_SLICE seconds past the oldest
 * row per call so the loop is never blocked for long; `hourly`: a slice ends at a whole hour too
 * (the minute tiers: store_maintain()). Returns rows deleted or a negative errno. */
static int64_t prune(store *s, const char *table, int64_t meter, int64_t cutoff, int hourly)
{
    char sql[160];
    int64_t oldest = INT64_MAX;
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT min(ts) FROM %s WHERE meter = ?1", table);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_int64(st, 1, meter);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        oldest = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (oldest >= cutoff)
        return 0;
    if (cutoff > oldest + STORE_PRUNE_SLICE) {
        cutoff = oldest + STORE_PRUNE_SLICE; /* more than an hour: its floor is past oldest */
        if (hourly)
            cutoff = store_step_floor(STORE_STEP_1H, cutoff);
    }
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE meter = ?1 AND ts < ?2", table);
    rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_int64(st, 1, meter);
    sqlite3_bind_int64(st, 2, cutoff);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_errno(rc);
    return sqlite3_changes(s->db);
}

static int64_t raw_last(store *s, int64_t id);

/* Newest reading of a meter: the engine's when this process has it loaded, else the database's
 * (a meter without a source this run still has its history to keep in bounds). 0 when none. */
static int64_t meter_newest(store *s, int64_t id)
{
    for (size_t i = 0; i < s->nm; i++)
        if (s->m[i]->id == id && s->m[i]->e.last_ts)
            return s->m[i]->e.last_ts;
    int64_t last = raw_last(s, id);
    if (!last) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "SELECT max(ts) FROM agg_1m WHERE meter = ?1", -1, &st,
                               NULL) != SQLITE_OK)
            return 0;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            last = sqlite3_column_int64(st, 0) + 60; /* the end of the newest minute */
        sqlite3_finalize(st);
    }
    return last;
}

int store_maintain(store *s)
{
    int64_t deleted = 0;
    if (s->o.readonly)
        return -EROFS;
    if (s->txn_held)
        return -EBUSY; /* a backfill's transaction is open: store_commit() first */
    /* every meter in the database, not only those with readings this run */
    sqlite3_stmt *st;
    int64_t *ids = NULL;
    size_t nids = 0, capids = 0;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id FROM meters ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nids == capids) {
            size_t cap = capids ? capids * 2 : 16;
            int64_t *n = realloc(ids, cap * sizeof *n);
            if (!n) {
                rc = SQLITE_NOMEM;
                break;
            }
            ids = n;
            capids = cap;
        }
        ids[nids++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(ids);
        return sq_errno(rc);
    }
    /* Measured from the newest reading, but not from later than now: a reading stamped in the
     * future (clock=meter with a meter clock gone wrong) must not make the past "old". A clock
     * still at 1970 only deletes less. */
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < nids; i++) {
        int64_t last = meter_newest(s, ids[i]), r = 0;
        if (!last)
            continue;
        if (now > 0 && last > now)
            last = now;
        if (s->o.raw_keep_s > 0) {
            /* a block may hold up to a minute after its key: keep the one straddling the cut */
            r = prune(s, "raw", ids[i], last - s->o.raw_keep_s - STORE_BLOCK_SPAN, 0);
            if (r >= 0)
                deleted += r;
        }
        /* whole hours: where the quarter hours of an hour start, the costs and peaks of a
         * summary take them instead of its hourly row (history.c), so a part of an hour kept
         * would lose the energy of the quarters cut */
        for (int k = 0; k < 2 && r >= 0 && s->o.minute_keep_s > 0; k++) {
            r = prune(s, tier_table[k], ids[i],
                      store_step_floor(STORE_STEP_1H, last - s->o.minute_keep_s), 1);
            if (r >= 0)
                deleted += r;
        }
        if (r < 0) {
            free(ids);
            return (int)r;
        }
    }
    free(ids);
    checkpoint(s);
    return deleted > INT32_MAX ? INT32_MAX : (int)deleted;
}

void store_busy_wait(store *s, int ms)
{
    sqlite3_busy_timeout(s->db, ms);
}

int store_healthy(store *s, char *why, size_t cap)
{
    if (!s->failing && !s->ckpt_failing)
        return 1;
    if (s->failing && sq_errno(s->fail_rc) == -EBUSY)
        say(why, cap,
            "store: another program holds the database's write lock (a transaction left open "
            "in sqlite3 or a database browser): %zu readings queued in memory, %" PRIu64
            " dropped; retrying",
            store_pending(s), s->st.dropped);
    else if (s->failing)
        say(why, cap,
            "store: cannot write the database (%s): %zu readings queued in memory, %" PRIu64
            " dropped; retrying",
            sqlite3_errstr(s->fail_rc), store_pending(s), s->st.dropped);
    else
        say(why, cap, "store: WAL checkpoint failed (disk full?)");
    return 0;
}

void store_get_stats(const store *s, store_stats *out)
{
    *out = s->st;
}

/* ---------------------------------------------------------------------------------------------
 * Rebuild: replay the raw readings through a fresh engine
 * ------------------------------------------------------------------------------------------- */

int store_rebuild(store *s, const char *meter)
{
    int rc = store_commit(s), src;
    if (rc < 0)
        return rc;
    smeter *m = meter_get(s, meter, &src);
    if (!m)
        return src == SQLITE_MISUSE ? -EINVAL : sq_errno(src);
    if (!m->id)
        return -ENOENT;
    int64_t first = 0;
    char sql[160];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql, "SELECT min(ts) FROM raw WHERE meter = %" PRId64, m->id);
    if ((src = query_int(s->db, sql, &first)) != SQLITE_OK)
        return sq_errno(src);
    if (!first)
        return 0;
    engine *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    engine_init(e);
    src = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (int k = 0; k < NTIERS && src == SQLITE_OK; k++) {
        /* steps labelled at or after the first raw reading hold only readings whose deltas the
         * raw tier can give (the reading before each is kept too) */
        int64_t f = store_step_floor(tier_step[k], first);
        if (f < first)
            f = store_step_next(tier_step[k], f);
        e->floor[k] = f;
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE meter = %" PRId64 " AND ts >= %" PRId64,
                 tier_table[k], m->id, f);
        src = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    }
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(s->db, "SELECT ts, data FROM raw WHERE meter = ?1 ORDER BY ts",
                                 -1, &st, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, m->id);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            block_reader b;
            sample x;
            block_reader_init(&b, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                              (size_t)sqlite3_column_bytes(st, 1));
            while (src == SQLITE_ROW && block_next(&b, &x) > 0)
                if (x.ts > e->last_ts && engine_apply(s, m->id, e, &x, 0) != SQLITE_OK)
                    src = SQLITE_ERROR;
            if (src != SQLITE_ROW)
                break;
        }
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
        sqlite3_finalize(st);
    }
    if (src == SQLITE_OK) {
        for (int k = 0; k < NTIERS; k++)
            e->cdirty[k] = 1;
        src = engine_flush(s, m->id, e);
    }
    if (src == SQLITE_OK)
        src = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (src == SQLITE_OK) {
        /* continue from the rebuilt open steps (those the rebuild could cover) */
        for (int k = 0; k < NTIERS; k++)
            if (e->cur[k].n && e->cur[k].ts >= e->floor[k])
                m->e.cur[k] = e->cur[k];
    }
    free(e);
    return sq_errno(src);
}

/* ---------------------------------------------------------------------------------------------
 * Read side
 * ------------------------------------------------------------------------------------------- */

static int meter_lookup(store *s, const char *name, int64_t *id)
{
    int rc;
    *id = 0;
    sqlite3_bind_text(s->meter_id, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->meter_id);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s->meter_id, 0);
    sqlite3_reset(s->meter_id);
    sqlite3_clear_bindings(s->meter_id);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_errno(rc);
    return *id ? 0 : -ENOENT;
}

static void point_from_agg(store_point *p, int64_t ts, int64_t end, const agg *a)
{
    memset(p, 0, sizeof *p);
    p->ts = ts;
    p->end = end;
    p->n = a ? a->n : 0;
    p->tariff = -1;
    for (int e = 0; e < STORE_E_COUNT; e++) {
        p->energy[e] = a && (a->ehas & BIT(e)) ? a->e[e] : STORE_NULL;
        p->counter[e] = STORE_NULL;
    }
    if (a)
        memcpy(p->q, a->q, sizeof p->q);
}

static int series_raw(store *s, int64_t id, int64_t from, int64_t to, store_point_fn fn,
                      void *user)
{
    sqlite3_stmt *st;
    /* start at the block holding the last reading before `from`: its counters give the first
     * delta in range */
    int rc = sqlite3_prepare_v2(
        s->db,
        "SELECT ts, data FROM raw WHERE meter = ?1 AND ts >= coalesce((SELECT max(ts) FROM raw "
        "WHERE meter = ?1 AND ts < ?2), ?2) AND ts < ?3 ORDER BY ts",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    fold f;
    memset(&f, 0, sizeof f);
    int ret = 0;
    int64_t prev = 0; /* the reading before, also one before `from` */
    while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        block_reader b;
        sample x;
        int r;
        block_reader_init(&b, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1));
        while (!ret && (r = block_next(&b, &x)) > 0) {
            int64_t de[STORE_E_COUNT], q[STORE_Q_COUNT];
            unsigned dhas, device;
            unsigned seg = fold_step(&f, &x, de, &dhas, &device);
            int64_t before = prev;
            prev = x.ts;
            if (x.ts < from || x.ts >= to)
                continue;
            store_point p;
            memset(&p, 0, sizeof p);
            p.ts = p.end = x.ts;
            p.prev = before;
            p.n = 1;
            p.segment = seg;
            p.tariff = (x.mask & BIT(F_TARIFF)) ? (int)x.v[F_TARIFF] : -1;
            unsigned chas = sample_counters(&x, p.counter);
            for (int e = 0; e < STORE_E_COUNT; e++) {
                if (!(chas & BIT(e)))
                    p.counter[e] = STORE_NULL;
                p.energy[e] = (dhas & BIT(e)) ? de[e] : STORE_NULL;
            }
            unsigned qhas = sample_quantities(&x, q);
            for (int i = 0; i < STORE_Q_COUNT; i++)
                if (qhas & BIT(i))
                    p.q[i].n = 1, p.q[i].min = p.q[i].max = p.q[i].sum = q[i];
            ret = fn(user, &p);
        }
        if (!ret && r < 0)
            ret = -EIO;
    }
    sqlite3_finalize(st);
    if (ret)
        return ret;
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_errno(rc);
}

static int series_agg(store *s, int64_t id, int64_t from, int64_t to, store_step step,
                      unsigned flags, store_point_fn fn, void *user)
{
    int k = step <= STORE_STEP_1D ? (int)step - STORE_STEP_1M : NTIERS - 1;
    char sql[200];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql,
             "SELECT ts, n, import, import_t1, import_t2, export, export_t1, export_t2, gas, "
             "water, heat, stats FROM %s WHERE meter = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
             tier_table[k]);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    int64_t t = store_step_floor(step, from);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, t);
    sqlite3_bind_int64(st, 3, to);
    int ret = 0, have = 0;
    agg row, acc;
    int64_t row_ts = 0;
    store_point p;
    memset(&acc, 0, sizeof acc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        have = 1;
        row_ts = sqlite3_column_int64(st, 0);
        if (row_agg(st, 1, &row) < 0)
            ret = -EIO;
    } else if (rc != SQLITE_DONE) {
        ret = sq_errno(rc); /* a damaged table is an error, not an empty range */
    }
    /* walk the steps; rows of the daily tier are summed into months and years */
    while (!ret && t < to) {
        int64_t next = store_step_next(step, t);
        memset(&acc, 0, sizeof acc);
        while (!ret && have && row_ts < next) {
            if (row_ts >= t)
                agg_merge(&acc, &row);
            rc = sqlite3_step(st);
            have = rc == SQLITE_ROW;
            if (have) {
                row_ts = sqlite3_column_int64(st, 0);
                if (row_agg(st, 1, &row) < 0)
                    ret = -EIO;
            } else if (rc != SQLITE_DONE) {
                ret = sq_errno(rc);
            }
        }
        if (ret)
            break;
        /* a step without readings may still hold an M-Bus rise measured in it (book_back()) */
        if (acc.n || acc.ehas || (flags & STORE_SERIES_GAPS)) {
            point_from_agg(&p, t, next, acc.n || acc.ehas ? &acc : NULL);
            ret = fn(user, &p);
        }
        if (!have && !(flags & STORE_SERIES_GAPS))
            break;
        t = next;
    }
    sqlite3_finalize(st);
    return ret;
}

int store_series(store *s, const char *meter, int64_t from, int64_t to, store_step step,
                 unsigned flags, store_point_fn fn, void *user)
{
    int64_t id;
    if ((unsigned)step >= STORE_STEP_COUNT || !fn || from > to)
        return -EINVAL;
    int rc = meter_lookup(s, meter, &id);
    if (rc < 0)
        return rc;
    if (step == STORE_STEP_RAW)
        return series_raw(s, id, from, to, fn, user);
    return series_agg(s, id, from, to, step, flags, fn, user);
}

int store_minutes(store *s, const char *meter, int64_t from, int64_t to, uint8_t *has, size_t n)
{
    int64_t id;
    if (from % 60 || to < from || (uint64_t)(to - from) / 60 > n)
        return -EINVAL;
    memset(has, 0, (n + 7) / 8);
    int rc = meter_lookup(s, meter, &id);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT ts FROM agg_1m WHERE meter = ?1 AND ts >= ?2 AND "
                            "ts < ?3 AND n > 0",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0);
        if (ts % 60 == 0 && (uint64_t)(ts - from) / 60 < n)
            has[(ts - from) / 60 / 8] |= (uint8_t)(1u << (ts - from) / 60 % 8);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

int store_minutes_held(store *s, const char *meter, int64_t t1, int64_t t2)
{
    int64_t id, n = 0;
    int rc = meter_lookup(s, meter, &id);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    sqlite3_stmt *g = s->minute_n;
    sqlite3_bind_int64(g, 1, id);
    sqlite3_bind_int64(g, 2, t1);
    sqlite3_bind_int64(g, 3, t2);
    rc = sqlite3_step(g);
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(g, 0);
    sqlite3_reset(g);
    if (rc != SQLITE_ROW)
        return sq_errno(rc);
    return n == (t1 == t2 ? 1 : 2);
}

int64_t store_series_count(store *s, const char *meter, int64_t from, int64_t to, store_step step)
{
    int64_t id, n = 0;
    if ((unsigned)step >= STORE_STEP_COUNT || from > to)
        return -EINVAL;
    int rc = meter_lookup(s, meter, &id);
    if (rc < 0)
        return rc;
    if (step == STORE_STEP_RAW) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(sum(n), 0) FROM raw WHERE meter = %" PRId64 " AND ts >= %" PRId64
                 " AND ts < %" PRId64,
                 id, from, to);
        rc = query_int(s->db, sql, &n);
        return rc == SQLITE_OK ? n : sq_errno(rc);
    }
    int64_t sec = step_seconds(step), t = store_step_floor(step, from);
    if (sec)
        return (to - t + sec - 1) / sec;
    for (; t < to; t = store_step_next(step, t))
        n++;
    return n;
}

/* Time of the newest raw reading of a meter (decodes its last block); 0 when none. */
static int64_t raw_last(store *s, int64_t id)
{
    sqlite3_stmt *st;
    int64_t last = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT ts, data FROM raw WHERE meter = ?1 ORDER BY ts DESC "
                                  "LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        block_reader b;
        sample x;
        block_reader_init(&b, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 0 + 1),
                          (size_t)sqlite3_column_bytes(st, 1));
        while (block_next(&b, &x) > 0)
            last = x.ts;
    }
    sqlite3_finalize(st);
    return last;
}

int store_meters(store *s, int (*fn)(void *user, const store_meter_info *m), void *user)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        s->db,
        "SELECT name, id, (SELECT min(ts) FROM raw WHERE meter = id), (SELECT min(ts) FROM agg_1d "
        "WHERE meter = id), (SELECT max(ts) FROM agg_1m WHERE meter = id) FROM meters ORDER BY "
        "name",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_errno(rc);
    int ret = 0;
    while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_meter_info mi;
        memset(&mi, 0, sizeof mi);
        snprintf(mi.name, sizeof mi.name, "%s", (const char *)sqlite3_column_text(st, 0));
        mi.raw_first = sqlite3_column_int64(st, 2);
        int64_t day_first = sqlite3_column_int64(st, 3), min_last = sqlite3_column_int64(st, 4);
        mi.first = day_first ? day_first : mi.raw_first;
        if (mi.raw_first && (!mi.first || mi.raw_first < mi.first))
            mi.first = mi.raw_first;
        mi.last = raw_last(s, sqlite3_column_int64(st, 1));
        if (!mi.last && min_last)
            mi.last = min_last + 60; /* raw pruned entirely: the end of the newest minute */
        ret = fn(user, &mi);
    }
    sqlite3_finalize(st);
    if (ret)
        return ret;
    return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}
