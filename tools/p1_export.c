/* p1_export.c: `p1 export`: a meter's history from the store as CSV or columnar JSON. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../src/civil.h"
#include "../src/store.h"
#include "p1.h"

#define EXPORT_JSON_POINTS_MAX 2000000 /* JSON is built in memory: bigger asks must use CSV */

static const char export_usage[] =
    "Usage: p1 export [--db PATH] [--meter NAME] --from TIME --to TIME [--step STEP]\n"
    "                 [--format csv|json] [--gaps]\n"
    "Write a meter's history in [from, to) to standard output. TIME is ISO-8601: 2024-01-31,\n"
    "2024-01-31T12:00, 2024-01-31T12:00:00Z or with an offset (+01:00), or unix seconds; without\n"
    "an offset it is local time in the database's calendar (CET/CEST, or EET/EEST for one\n"
    "made on an EET system); from 1970 to 2199 only, as in /api/history.\n"
    "STEP: raw, 1m, 15m, 1h, 1d, 1mo, 1y\n"
    "(default 1h). Options take their value as the next argument or after '=' (--step=1d),\n"
    "once each.\n"
    "Energy is per step, exactly: the counter at its end minus the counter at its start, in\n"
    "kWh, m3 (gas, water) and GJ (heat), with the column names of /api/history (import_kwh,\n"
    "gas_m3, heat_gj, ...). Power is W (mean, min, max), voltage V, current A, per phase. Raw\n"
    "rows add the counters (import_counter_kwh, ..., heat_counter_gj) and the tariff. Times are\n"
    "step starts with the local offset; --from is aligned down to a step start, and a step that\n"
    "--to cuts is listed whole (raw: only readings before --to). docs/STORE.md has more.\n"
    "\n"
    "Options:\n"
    "  --db PATH       database (default p1d.db)\n"
    "  --meter NAME    meter (default: the only one in the database)\n"
    "  --from TIME     start of the range, included (required)\n"
    "  --to TIME       end of the range, not included (required)\n"
    "  --step STEP     raw, 1m, 15m, 1h, 1d, 1mo or 1y (default 1h)\n"
    "  --format FMT    csv (default) or json\n"
    "  --gaps          also list steps without readings (empty values)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0 written (also when the reader stops reading, | head, with SIGPIPE ignored;\n"
    "else the shell's 141, as for any command), 1 database error, unknown meter or output\n"
    "error, 2 usage error (also: several meters and no --meter).\n";

static const char *const energy_names[STORE_E_COUNT] = {
    "import_kwh", "import_t1_kwh", "import_t2_kwh", "export_kwh", "export_t1_kwh",
    "export_t2_kwh", "gas_m3", "water_m3", "heat_gj"}; /* the names of /api/history */
static const char *const counter_names[STORE_E_COUNT] = {
    "import_counter_kwh", "import_t1_counter_kwh", "import_t2_counter_kwh", "export_counter_kwh",
    "export_t1_counter_kwh", "export_t2_counter_kwh", "gas_counter_m3", "water_counter_m3",
    "heat_counter_gj"};
static const char *const q_names[STORE_Q_COUNT] = {
    "power_w", "power_l1_w", "power_l2_w", "power_l3_w", "voltage_l1_v",
    "voltage_l2_v", "voltage_l3_v", "current_l1_a", "current_l2_a", "current_l3_a"};
static const int q_decimals[STORE_Q_COUNT] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};

typedef struct export_ctx {
    FILE *out;
    int json, raw;
    store_point *pts; /* JSON: every point, written column by column at the end */
    size_t n, cap;
    int oom;
    int write_errno; /* errno of a failed write to out */
} export_ctx;

/* Says why reading meter's series failed (rc < 0): no such meter, or SQLite's own words
 * ("database disk image is malformed"), which say more than EIO. */
static void export_read_error(store *s, const char *db, const char *meter, int rc)
{
    int sq = sqlite3_errcode(store_db(s));
    if (rc == -ENOENT)
        fprintf(stderr, "p1 export: %s: no such meter in the database\n", meter);
    else
        fprintf(stderr, "p1 export: %s: reading the database failed: %s\n", db,
                rc == -EIO && sq != SQLITE_OK ? sqlite3_errmsg(store_db(s)) : strerror(-rc));
}

/* Writes v / 10^dec exactly ("-1.234"). */
static void put_fixed(FILE *f, int64_t v, int dec)
{
    static const int64_t pow10[] = {1, 10, 100, 1000};
    if (!dec) {
        fprintf(f, "%" PRId64, v);
        return;
    }
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    fprintf(f, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", a / (uint64_t)pow10[dec], dec,
            a % (uint64_t)pow10[dec]);
}

/* Rounded mean of a stat, half away from zero. */
static int64_t mean(const store_stat *s)
{
    return s->sum >= 0 ? (s->sum + s->n / 2) / s->n : -((-s->sum + s->n / 2) / s->n);
}

/* Column c of point p: 0 time, then readings, energies, stats (mean,min,max), raw extras. */
enum { COL_TIME = 0, COL_N, COL_E, COL_Q = COL_E + STORE_E_COUNT,
       COL_C = COL_Q + 3 * STORE_Q_COUNT, COL_TARIFF = COL_C + STORE_E_COUNT, COL_COUNT };

static void column_name(int c, char *buf, size_t cap)
{
    static const char *const st[3] = {"mean", "min", "max"};
    if (c == COL_TIME)
        snprintf(buf, cap, "time");
    else if (c == COL_N)
        snprintf(buf, cap, "readings");
    else if (c < COL_Q)
        snprintf(buf, cap, "%s", energy_names[c - COL_E]);
    else if (c < COL_C)
        snprintf(buf, cap, "%s_%s", q_names[(c - COL_Q) / 3], st[(c - COL_Q) % 3]);
    else if (c < COL_TARIFF)
        snprintf(buf, cap, "%s", counter_names[c - COL_C]);
    else
        snprintf(buf, cap, "tariff");
}

/* Writes one value; returns 0 when it is null (nothing written). */
static int put_value(FILE *f, const store_point *p, int c, int quote_time)
{
    char t[80];
    if (c == COL_TIME) {
        civil_format_local(p->ts, t, sizeof t);
        fprintf(f, quote_time ? "\"%s\"" : "%s", t);
        return 1;
    }
    if (c == COL_N) {
        fprintf(f, "%" PRId64, p->n);
        return 1;
    }
    if (c < COL_Q) {
        if (p->energy[c - COL_E] == STORE_NULL)
            return 0;
        put_fixed(f, p->energy[c - COL_E], 3);
        return 1;
    }
    if (c < COL_C) {
        int q = (c - COL_Q) / 3, k = (c - COL_Q) % 3;
        const store_stat *s = &p->q[q];
        if (!s->n)
            return 0;
        put_fixed(f, k == 0 ? mean(s) : k == 1 ? s->min : s->max, q_decimals[q]);
        return 1;
    }
    if (c < COL_TARIFF) {
        if (p->counter[c - COL_C] == STORE_NULL)
            return 0;
        put_fixed(f, p->counter[c - COL_C], 3);
        return 1;
    }
    if (p->tariff < 0)
        return 0;
    fprintf(f, "%d", p->tariff);
    return 1;
}

static int on_point(void *user, const store_point *p)
{
    export_ctx *c = user;
    int ncol = c->raw ? COL_COUNT : COL_C;
    if (!c->json) {
        for (int k = 0; k < ncol; k++) {
            if (k)
                fputc(',', c->out);
            put_value(c->out, p, k, 0);
        }
        if (fputc('\n', c->out) == EOF || ferror(c->out)) {
            c->write_errno = errno;
            return -EIO;
        }
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        store_point *np = realloc(c->pts, cap * sizeof *np);
        if (!np) {
            c->oom = 1;
            return -ENOMEM;
        }
        c->pts = np;
        c->cap = cap;
    }
    c->pts[c->n++] = *p;
    return 0;
}

/* The meters of a database, for a missing --meter: the first, and the names for a message. */
struct pick {
    char first[64];
    char names[200]; /* "home, garage, ..." */
    int count;
};

static int pick_meter(void *user, const store_meter_info *mi)
{
    struct pick *p = user;
    size_t n = strlen(p->names);
    if (p->count++ == 0)
        snprintf(p->first, sizeof p->first, "%s", mi->name);
    if (n + strlen(mi->name) + 8 < sizeof p->names)
        snprintf(p->names + n, sizeof p->names - n, "%s%s", n ? ", " : "", mi->name);
    else if (!strstr(p->names, "..."))
        snprintf(p->names + n, sizeof p->names - n, ", ...");
    return 0;
}

/* Parses the value s of option opt (--from, --to) as /api/history does: ISO-8601 or unix
 * seconds, from 1970 to 2199; without a zone, the repeated autumn hour is its later pass, as
 * everywhere in p1d. Eight digits alone are refused: 20240131 is a date without dashes far
 * more often than a time in 1970. Returns 0, or -1 after naming the problem. */
static int export_time(const char *opt, const char *s, int64_t *out)
{
    int rc = strlen(s) == 8 && strspn(s, "0123456789") == 8
                 ? -1
                 : civil_parse(s, CIVIL_PARSE_UNIX | CIVIL_PARSE_EXISTING, out);
    if (rc == 0 && (*out < -86400 || *out >= CIVIL_TIME_END)) {
        fprintf(stderr, "p1 export: %s: out of range: times from 1970 to 2199 only, got '%s'\n",
                opt, s);
        rc = -1;
    } else if (rc == CIVIL_PARSE_GAP) {
        fprintf(stderr, "p1 export: %s: '%s' %s\n", opt, s, civil_gap_why());
    } else if (rc < 0) {
        fprintf(stderr, "p1 export: %s: '%s' is not an ISO-8601 time such as "
                        "2024-01-31T12:00:00Z (dashes and colons written), or unix seconds\n",
                opt, s);
    }
    return rc < 0 ? -1 : 0;
}

int p1_export_main(int argc, char **argv)
{
    const char *db = "p1d.db", *meter = NULL, *from_s = NULL, *to_s = NULL, *step_s = "1h",
               *format = "csv";
    int gaps = 0;
    static const char *const names[] = {"--db", "--meter", "--from", "--to", "--step", "--format"};
    const char **const dsts[] = {&db, &meter, &from_s, &to_s, &step_s, &format};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(export_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--gaps")) {
            gaps = 1;
            continue;
        }
        for (size_t k = 0; !r && k < sizeof names / sizeof names[0]; k++)
            r = p1_opt_value(argv, argc, &i, names[k], dsts[k]);
        if (r == P1_OPT_TWICE)
            return p1_opt_twice("p1 export", a);
        if (r < 0) {
            fprintf(stderr, "p1 export: %s needs a value (try 'p1 export --help')\n", a);
            return 2;
        }
        if (!r && a[0] == '-' && a[1]) {
            static const char *const opts[] = {"--help", "--gaps", "--db",   "--meter",
                                               "--from", "--to",   "--step", "--format"};
            return p1_unknown_option("p1 export", a, opts, sizeof opts / sizeof opts[0]);
        }
        if (!r) {
            fprintf(stderr, "p1 export: unknown argument '%s' (try 'p1 export --help')\n", a);
            return 2;
        }
    }
    int64_t from, to;
    int step = store_step_parse(step_s);
    if (!from_s || !to_s) {
        fprintf(stderr, "p1 export: --from and --to are required (try 'p1 export --help')\n");
        return 2;
    }
    p1_calendar_zone(db);
    if (export_time("--from", from_s, &from) < 0 || export_time("--to", to_s, &to) < 0)
        return 2;
    if (from > to) {
        fprintf(stderr, "p1 export: --from is after --to\n");
        return 2;
    }
    if (step < 0) {
        fprintf(stderr, "p1 export: --step must be raw, 1m, 15m, 1h, 1d, 1mo or 1y, not '%s'\n",
                step_s);
        return 2;
    }
    if (strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(stderr, "p1 export: --format must be csv or json, not '%s'\n", format);
        return 2;
    }
    char err[STORE_ERR_MAX];
    store_options o;
    store_options_default(&o);
    o.readonly = 1;
    store *s = store_open(db, &o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "p1 export: %s\n", err);
        return 1;
    }
    export_ctx c;
    memset(&c, 0, sizeof c);
    c.out = stdout;
    c.json = !strcmp(format, "json");
    c.raw = step == STORE_STEP_RAW;
    struct pick pk;
    memset(&pk, 0, sizeof pk);
    if (!meter) {
        int rc = store_meters(s, pick_meter, &pk);
        if (rc < 0 || pk.count != 1) {
            if (rc < 0)
                export_read_error(s, db, "", rc);
            else if (pk.count)
                fprintf(stderr, "p1 export: %s holds several meters (%s): name one with "
                                "--meter\n", db, pk.names);
            else
                fprintf(stderr, "p1 export: %s holds no meter yet: nothing to export\n", db);
            store_close(s);
            return rc == 0 && pk.count ? 2 : 1;
        }
        meter = pk.first;
    }
    int flags = gaps ? STORE_SERIES_GAPS : 0;
    /* Counting first also finds an unknown meter before the CSV header goes out. */
    int64_t n = store_series_count(s, meter, from, to, (store_step)step);
    if (n < 0) {
        export_read_error(s, db, meter, (int)n);
        store_close(s);
        return 1;
    }
    if (c.json) {
        if (n > EXPORT_JSON_POINTS_MAX) {
            fprintf(stderr, "p1 export: %" PRId64 " points are too many for JSON (at most %d): "
                            "use --format csv, a coarser --step or a shorter range\n",
                    n, EXPORT_JSON_POINTS_MAX);
            store_close(s);
            return 1;
        }
    }
    char name[64];
    int ncol = c.raw ? COL_COUNT : COL_C;
    if (!c.json) {
        for (int k = 0; k < ncol; k++) {
            column_name(k, name, sizeof name);
            fprintf(c.out, "%s%s", k ? "," : "", name);
        }
        fputc('\n', c.out);
    }
    int rc = store_series(s, meter, from, to, (store_step)step, (unsigned)flags, on_point, &c);
    if (rc < 0 && ferror(c.out)) {
        free(c.pts);
        store_close(s);
        return p1_write_error("p1 export", c.write_errno);
    }
    if (rc < 0) {
        export_read_error(s, db, meter, rc);
        free(c.pts);
        store_close(s);
        return 1;
    }
    if (c.json) {
        fprintf(c.out, "{\"meter\":\"%s\",\"step\":\"%s\"", meter, store_step_name((store_step)step));
        for (int k = 0; k < ncol; k++) {
            column_name(k, name, sizeof name);
            fprintf(c.out, ",\n\"%s\":[", name);
            for (size_t i = 0; i < c.n; i++) {
                if (i)
                    fputc(',', c.out);
                if (!put_value(c.out, &c.pts[i], k, 1))
                    fputs("null", c.out);
            }
            fputc(']', c.out);
        }
        fputs("}\n", c.out);
    }
    free(c.pts);
    store_close(s);
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout))
        return p1_write_error("p1 export", errno);
    return 0;
}
