/* p1_prices.c: `p1 prices import FILE` (dynamic prices from CSV, JSON or XML into the history
 * database, all or nothing) and `p1 prices list` (the prices a range uses). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/civil.h"
#include "../src/cost.h"
#include "../src/store.h"
#include "../src/suggest.h"
#include "p1.h"

#define PRICES_DEFAULT_DB "p1d.db"
/* list --kind beside the cost_kind values: fixed periods only, and every kind (no --kind) */
#define PRICES_FIXED 2
#define PRICES_ALL   (-1)

/* The kinds of the list's first column, by cost_kind, then PRICES_FIXED. */
static const char *const prices_kinds[] = {"power", "gas", "fixed"};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: p1 prices import [--db PATH] [--kind power|gas] [--gas-day-start HH:MM]\n"
        "                        [--from TIME] [--to TIME] FILE|-\n"
        "       p1 prices list [--db PATH] [--kind fixed|power|gas] [--from TIME] [--to TIME]\n"
        "\n"
        "import: dynamic prices per hour or quarter-hour (power, EUR/kWh) or per day (gas,\n"
        "        EUR/m3) from CSV (time,price[,export]; header optional; ',' or ';'; decimal\n"
        "        comma with ';') or JSON ([{\"time\":..,\"price\":..}] or {\"prices\":[...]},\n"
        "        also Tibber's, Frank Energie's and Energy-Charts' replies; a \"unit\" such\n"
        "        as EUR/MWh is converted) or ENTSO-E's day-ahead XML (EUR/MWh). Replaces the\n"
        "        stored prices of that span; a bad file changes nothing. With --from or --to,\n"
        "        only the prices that lie wholly in [from, to): the others are skipped and\n"
        "        counted, and the stored prices that start outside the range are kept.\n"
        "list:   fixed price periods and the dynamic prices in [from, to) (default: today and\n"
        "        tomorrow), as one CSV table: kind (fixed, power or gas), from, to, then the\n"
        "        prices in EUR (a power price under import and export, a gas price under gas).\n"
        "  --db PATH    the history database (default %s; import: not :memory:, where\n"
        "               the import would be lost)\n"
        "  --kind KIND  import: power (default) or gas; list: only the rows of that kind,\n"
        "               fixed, power or gas (default: all)\n"
        "  --from TIME  import: skip the prices that start before TIME; list: the range's\n"
        "               start (default: today 00:00)\n"
        "  --to TIME    import: skip the prices that end after TIME; list: the range's end\n"
        "               (default: the end of tomorrow)\n"
        "  --gas-day-start HH:MM\n"
        "               import of gas: a date without a time starts at this local time\n"
        "               (06:00 for most Dutch suppliers; default 00:00)\n"
        "Times: ISO-8601 (2025-01-31, 2025-01-31T10:00, with Z or an offset; no offset = "
        "local time\n"
        "in the database's calendar: CET/CEST, or EET/EEST for one made on an EET system)\n"
        "or unix seconds. Options take their value as the next argument or after '=', once\n"
        "each.\n"
        "Exit status: 0 done, 1 error, 2 usage error.\n",
        PRICES_DEFAULT_DB);
}

/* Reads a whole file (or stdin for "-"), called name in messages, of at most COST_IMPORT_MAX
 * bytes. */
static char *slurp(const char *path, const char *name, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "p1 prices: %s: %s\n", name, strerror(errno));
        return NULL;
    }
    char *buf = malloc(COST_IMPORT_MAX + 1);
    errno = 0;
    size_t n = buf ? fread(buf, 1, COST_IMPORT_MAX + 1, f) : 0;
    int bad = ferror(f), err = errno;
    if (f != stdin)
        fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "p1 prices: %s: %s\n", name,
                buf ? (err ? strerror(err) : "read error") : "out of memory");
        free(buf);
        return NULL;
    }
    if (n > COST_IMPORT_MAX) {
        fprintf(stderr, "p1 prices: %s: larger than %u bytes\n", name, COST_IMPORT_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_price(int64_t v)
{
    if (v == COST_UNSET)
        return;
    int64_t a = v < 0 ? -v : v;
    printf("%s%" PRId64 ".%06" PRId64, v < 0 ? "-" : "", a / 1000000, a % 1000000);
}

#define PRICE_COLUMNS 14 /* import, import_t1, import_t2, export, ..._t2, gas, daily, monthly,
                           capacity_per_kw_year, dynamic_import_factor, ..., dynamic_export_add */

/* One row of `p1 prices list`: kind, from, to, the price columns (empty when unset), the rule. */
static void print_row(const char *kind, const char *from, const char *to,
                      const int64_t v[PRICE_COLUMNS], const char *rule)
{
    printf("%s,%s,%s", kind, from, to);
    for (int k = 0; k < PRICE_COLUMNS; k++) {
        putchar(',');
        print_price(v[k]);
    }
    printf(",%s\n", rule);
}

/* Imports the prices of file ("-": standard input), called name in messages, that lie wholly
 * in [from, to) (INT64_MIN, INT64_MAX: no --from, no --to). */
static int cmd_import(const char *db, cost_kind kind, int day_start, int64_t from, int64_t to,
                      const char *file, const char *name)
{
    size_t len = 0;
    char *text = slurp(file, name, &len);
    if (!text)
        return 1;
    cost_dyns d = {0};
    char err[COST_ERR_MAX];
    if (cost_parse_dynamic(text, len, kind, day_start, &d, err, sizeof err) < 0) {
        fprintf(stderr, "p1 prices: %s: %s; nothing imported\n", name, err);
        free(text);
        return 1;
    }
    free(text);
    /* A price cut to the range would be a price the file does not give: keep whole ones. */
    size_t kept = 0, skipped;
    for (size_t i = 0; i < d.n; i++)
        if (d.v[i].ts >= from && d.v[i].end <= to)
            d.v[kept++] = d.v[i];
    skipped = d.n - kept;
    d.n = kept;
    if (!kept) {
        fprintf(stderr, "p1 prices: %s: all %zu price%s outside --from/--to; nothing imported\n",
                name, skipped, skipped == 1 ? " lies" : "s lie");
        cost_dyns_free(&d);
        return 1;
    }
    char serr[STORE_ERR_MAX];
    store *s = store_open(db, NULL, serr, sizeof serr);
    if (!s) {
        fprintf(stderr, "p1 prices: %s\n", serr);
        cost_dyns_free(&d);
        return 1;
    }
    int rc = cost_db_init(store_db(s), err, sizeof err);
    if (rc == 0)
        rc = cost_db_save_dynamic(store_db(s), kind, &d, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "p1 prices: %s: %s; nothing imported\n", db, err);
    } else {
        char a[CIVIL_TIME_MAX], b[CIVIL_TIME_MAX];
        civil_format_local(d.v[0].ts, a, sizeof a);
        civil_format_local(d.v[d.n - 1].end, b, sizeof b);
        printf("imported %zu %s price%s from %s to %s into %s", d.n, prices_kinds[kind],
               d.n == 1 ? "" : "s", a, b, db);
        if (from != INT64_MIN || to != INT64_MAX)
            printf("; skipped %zu outside --from/--to", skipped);
        putchar('\n');
        /* The prices are committed: a summary that cannot be written is still an error, as for
         * any command (exit 1), but one that must not read as a failed import. */
        errno = 0;
        if ((fflush(stdout) != 0 || ferror(stdout)) && p1_write_error("p1 prices import", errno)) {
            fprintf(stderr, "p1 prices import: the %zu price%s %s stored all the same; only the "
                            "summary line was lost\n",
                    d.n, d.n == 1 ? "" : "s", d.n == 1 ? "is" : "are");
            rc = -1;
        }
    }
    cost_dyns_free(&d);
    store_close(s);
    return rc < 0 ? 1 : 0;
}

/* Lists the rows of kind (a cost_kind, PRICES_FIXED or PRICES_ALL) in [from, to). */
static int cmd_list(const char *db, int kind, int64_t from, int64_t to)
{
    char serr[STORE_ERR_MAX], err[COST_ERR_MAX];
    store_options o;
    store_options_default(&o);
    o.readonly = 1;
    store *s = store_open(db, &o, serr, sizeof serr);
    if (!s) {
        fprintf(stderr, "p1 prices: %s\n", serr);
        return 1;
    }
    cost_prices p;
    if (cost_db_load(store_db(s), from, to, &p, err, sizeof err) < 0) {
        fprintf(stderr, "p1 prices: %s: %s\n", db, err);
        store_close(s);
        return 1;
    }
    /* One table, one header: fixed periods fill the price columns they set; a dynamic power
     * price is in import (and export), a dynamic gas price in gas. */
    char a[CIVIL_TIME_MAX], b[CIVIL_TIME_MAX];
    printf("kind,from,to,import,import_t1,import_t2,export,export_t1,export_t2,gas,daily,monthly,"
           "capacity_per_kw_year,dynamic_import_factor,dynamic_import_add,dynamic_export_factor,"
           "dynamic_export_add,tariff_rule\n");
    static const char *const rules[] = {"none", "nl", "be"};
    for (size_t i = 0; (kind == PRICES_ALL || kind == PRICES_FIXED) && i < p.nfixed; i++) {
        const cost_fixed *f = &p.fixed[i];
        civil_format_local(f->from, a, sizeof a);
        if (f->to == COST_FOREVER)
            b[0] = '\0';
        else
            civil_format_local(f->to, b, sizeof b);
        const int64_t v[] = {f->import_[0], f->import_[1], f->import_[2], f->export_[0],
                             f->export_[1], f->export_[2], f->gas, f->daily, f->monthly,
                             f->capacity, f->dyn_import_factor, f->dyn_import_add,
                             f->dyn_export_factor, f->dyn_export_add};
        print_row("fixed", a, b, v, rules[f->rule >= 0 && f->rule <= 2 ? f->rule : 0]);
    }
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; (kind == PRICES_ALL || kind == k) && i < p.dyn[k].n; i++) {
            const cost_dyn *d = &p.dyn[k].v[i];
            if (d->ts >= to || d->end <= from)
                continue;
            civil_format_local(d->ts, a, sizeof a);
            civil_format_local(d->end, b, sizeof b);
            int64_t v[PRICE_COLUMNS];
            for (int c = 0; c < PRICE_COLUMNS; c++)
                v[c] = COST_UNSET;
            if (k == COST_KIND_GAS) {
                v[6] = d->import_;
            } else {
                v[0] = d->import_;
                v[3] = d->export_;
            }
            print_row(prices_kinds[k], a, b, v, "");
        }
    }
    cost_prices_free(&p);
    store_close(s);
    return 0;
}

/* Reads --from or --to (opt) v into *t as /api/prices does. 0, or 2 after naming the problem. */
static int prices_time(const char *opt, const char *v, int64_t *t)
{
    int rc = civil_parse(v, CIVIL_PARSE_UNIX | CIVIL_PARSE_EXISTING, t);
    if (rc == CIVIL_PARSE_GAP) {
        fprintf(stderr, "p1 prices: %s: '%s' %s\n", opt, v, civil_gap_why());
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "p1 prices: %s: expected an ISO-8601 time, got '%s'\n", opt, v);
        return 2;
    }
    if (*t < -86400 || *t >= CIVIL_TIME_END) { /* as /api/prices */
        fprintf(stderr, "p1 prices: %s: out of range: times from 1970 to 2199 only, got '%s'\n",
                opt, v);
        return 2;
    }
    return 0;
}

int p1_prices_main(int argc, char **argv)
{
    const char *from_s = NULL, *to_s = NULL;
    const char *db = PRICES_DEFAULT_DB, *file = NULL, *cmd = argc > 1 ? argv[1] : NULL;
    int kind = PRICES_ALL, day_start = -1;
    int64_t from = 0, to = 0;
    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(cmd ? stdout : stderr);
        return cmd ? 0 : 2;
    }
    if (strcmp(cmd, "import") != 0 && strcmp(cmd, "list") != 0) {
        /* as p1's own commands: a typo names the command meant (p1.1, EXIT STATUS) */
        static const char *const cmds[] = {"import", "list"};
        const char *hit;
        if (cmd[0] == '-')
            fprintf(stderr, "p1 prices: import or list comes first, then the options: "
                            "p1 prices list %s ...\n", cmd);
        else if ((hit = suggest_closest(cmd, cmds, sizeof cmds / sizeof cmds[0])))
            fprintf(stderr, "p1 prices: unknown command '%s' (did you mean '%s'?)\n", cmd, hit);
        else
            fprintf(stderr, "p1 prices: unknown command '%s' (import or list)\n", cmd);
        return 2;
    }
    int list = strcmp(cmd, "list") == 0, have_from = 0, have_to = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int r = 0;
        static const char *const takes[] = {"--db", "--kind", "--from", "--to", "--gas-day-start"};
        for (size_t k = 0; !r && k < sizeof takes / sizeof takes[0]; k++)
            r = p1_opt_value(argv, argc, &i, takes[k], &v);
        if (r == P1_OPT_TWICE)
            return p1_opt_twice("p1 prices", a);
        if (r < 0) {
            fprintf(stderr, "p1 prices: %s needs a value\n", a);
            return 2;
        }
        if (r > 0) {
            if (a[2] == 'g') {
                if (cost_parse_day_start(v, &day_start) < 0) {
                    fprintf(stderr, "p1 prices: --gas-day-start: expected HH:MM such as 06:00, "
                                    "got '%s'\n", v);
                    return 2;
                }
            } else if (a[2] == 'd') {
                db = v;
            } else if (a[2] == 'k') {
                /* fixed periods are listed, never imported */
                int n = list ? PRICES_FIXED + 1 : PRICES_FIXED;
                kind = 0;
                while (kind < n && strcmp(v, prices_kinds[kind]) != 0)
                    kind++;
                if (kind == n) {
                    fprintf(stderr, "p1 prices %s: --kind: expected %s, got '%s'\n", cmd,
                            list ? "fixed, power or gas" : "power or gas", v);
                    return 2;
                }
            } else {
                *(a[2] == 'f' ? &from_s : &to_s) = v; /* read in the database's calendar */
                have_from |= a[2] == 'f';
                have_to |= a[2] == 't';
            }
        } else if (a[0] == '-' && a[1]) {
            static const char *const opts[] = {"--help", "--db", "--kind",
                                               "--from", "--to", "--gas-day-start"};
            return p1_unknown_option("p1 prices", a, opts, sizeof opts / sizeof opts[0]);
        } else if (!file && !list) {
            file = a;
        } else {
            fprintf(stderr, "p1 prices: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (list && day_start >= 0) {
        fprintf(stderr, "p1 prices list: --gas-day-start is an option of import\n");
        return 2;
    }
    p1_calendar_zone(db);
    int bad = from_s ? prices_time("--from", from_s, &from) : 0;
    if (!bad && to_s)
        bad = prices_time("--to", to_s, &to);
    if (bad)
        return bad;
    /* import: no bound unless given; list: today and tomorrow */
    if (!have_from)
        from = list ? civil_floor(CIVIL_DAY, (int64_t)time(NULL)) : INT64_MIN;
    if (!have_to)
        to = list ? civil_next(CIVIL_DAY, civil_next(CIVIL_DAY, from)) : INT64_MAX;
    if (from >= to && list && !have_from) {
        /* the --from the user did not give is today: say so, as GET /api/prices does */
        char today[CIVIL_TIME_MAX];
        civil_format_local(from, today, sizeof today);
        fprintf(stderr,
                "p1 prices list: --to must be after --from, which is the start of today "
                "(%s) when not given: give --from too\n",
                today);
        return 2;
    }
    if (from >= to) {
        fprintf(stderr, "p1 prices: --from must be before --to\n");
        return 2;
    }
    if (!list) {
        int kept = p1_db_kept("p1 prices import", db);
        if (kept)
            return kept;
        if (!file) {
            fprintf(stderr, "p1 prices import: which file? (FILE or - for stdin)\n");
            return 2;
        }
        if (day_start >= 0 && kind != COST_KIND_GAS) {
            fprintf(stderr, "p1 prices import: --gas-day-start needs --kind gas\n");
            return 2;
        }
        return cmd_import(db, kind == COST_KIND_GAS ? COST_KIND_GAS : COST_KIND_POWER,
                          day_start < 0 ? 0 : day_start, from, to, file,
                          strcmp(file, "-") ? file : "standard input");
    }
    return cmd_list(db, kind, from, to);
}
