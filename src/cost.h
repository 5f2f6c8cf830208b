/* cost.h: energy prices (fixed per tariff with validity periods, and dynamic per-hour or
 * per-quarter-hour prices), their CSV/JSON import, their tables in the store's database, and
 * the cost of a step in integer micro-euros. Times are unix seconds (civil.h reads and writes
 * them as text). */
#ifndef P1D_COST_H
#define P1D_COST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct sqlite3;

/* Money and prices are integers: micro-euros (1 EUR = 1,000,000), and micro-euros per kWh, per m3,
 * per day or per month. Prices are parsed from decimals with at most 6 significant fraction
 * digits kept (more are rounded half away from zero); no float is used anywhere. */
#define COST_UNSET INT64_MIN          /* a price that was not given */
#define COST_FOREVER INT64_MAX        /* open end of a validity period */
#define COST_ERR_MAX 256              /* size of the err buffers this API fills */
#define COST_IMPORT_MAX (4u << 20)    /* bytes of one price file or PUT body */
#define COST_ENTRIES_MAX 400000       /* dynamic prices in one import (11 years of 15-min prices) */
#define COST_LINE_MAX 512             /* bytes of one CSV line */

/* ---------------------------------------------------------------------------------------------
 * Prices
 * ------------------------------------------------------------------------------------------- */

/* Which tariff applies when a meter has no tariff registers (only a total): a calendar rule. */
typedef enum cost_rule {
    COST_RULE_NONE = 0, /* the single-tariff price (import / export) */
    COST_RULE_NL,       /* tariff 1 (low) weekdays 23:00-07:00 and weekends, else tariff 2 */
    COST_RULE_BE,       /* tariff 2 (night) weekdays 22:00-07:00 and weekends, else tariff 1 */
} cost_rule;

/* Fixed prices valid in [from, to). At a time t the period with the latest `from` <= t (and t <
 * to) applies. [0] of import/export is the single-tariff price; unset tariff prices fall back
 * to [0], an unset [0] to [1]. Plain data. */
typedef struct cost_fixed {
    int64_t from, to;
    int64_t import_[3];  /* micro-euros per kWh */
    int64_t export_[3];  /* micro-euros per kWh credited */
    int64_t gas;         /* per m3 */
    int64_t daily;       /* per day (accrues pro rata over the day's seconds) */
    int64_t monthly;     /* per month (pro rata over the month's seconds) */
    int rule;            /* cost_rule */
    int64_t capacity;    /* per kW per year of the average monthly peak (BE capacity tariff) */
    /* A dynamic power price P of a sub-step in this period is adjusted (cost_dyn_adjust()):
     * import costs P x dyn_import_factor + dyn_import_add; export without the file's own export
     * value earns P x dyn_export_factor + dyn_export_add, or the adjusted import price when
     * neither export key is set. Factors in millionths, adds per kWh; COST_UNSET = 1 and 0. */
    int64_t dyn_import_factor, dyn_import_add;
    int64_t dyn_export_factor, dyn_export_add;
} cost_fixed;

/* What a dynamic price is for. */
typedef enum cost_kind {
    COST_KIND_POWER = 0, /* electricity: per kWh, usually 1 h or 15 min long */
    COST_KIND_GAS = 1,   /* gas: per m3, usually a day long */
} cost_kind;

/* One dynamic price, valid in [ts, end), as the file gave it. export_ COST_UNSET = export
 * credited at import_ (adjusted by the fixed period in force, see cost_fixed). */
typedef struct cost_dyn {
    int64_t ts, end;
    int64_t import_;
    int64_t export_;
} cost_dyn;

/* A growable list of dynamic prices, sorted by ts, without overlaps. Owns `v`; free with
 * cost_dyns_free(). */
typedef struct cost_dyns {
    cost_dyn *v;
    size_t n, cap;
} cost_dyns;

/* Releases the list; accepts a zeroed or NULL list. */
void cost_dyns_free(cost_dyns *d);

/* Clears f: every price unset, valid forever from the epoch, no rule. */
void cost_fixed_init(cost_fixed *f);
/* Parses a plain decimal price ("0.2345", "-0.01", "12"; no ',' and no exponent) into micro-units,
 * rounding past 6 decimals half away from zero. Returns 0, or -1 (out untouched). */
int cost_parse_price(const char *s, int64_t *out);
/* Sets one fixed price key ("import", "import_t1", "import_t2", "export", "export_t1",
 * "export_t2", "gas", "daily", "monthly", "valid_from", "valid_to", "tariff_rule",
 * "capacity_per_kw_year", "dynamic_import_factor", "dynamic_import_add",
 * "dynamic_export_factor", "dynamic_export_add") from text. An empty value leaves the key as it
 * is. Returns 0, or -1 with a reason in err[cap]. */
int cost_fixed_set(cost_fixed *f, const char *key, const char *value, char *err, size_t cap);
/* Checks the keys of f together: valid_from before valid_to. Returns 0, or -1 with err[cap]. */
int cost_fixed_check(const cost_fixed *f, char *err, size_t cap);
/* Name of fixed price key i (0 <= i < COST_FIXED_KEYS) in the order of the [prices] config
 * section ("import", ..., "tariff_rule", "capacity_per_kw_year", "dynamic_import_factor", ...,
 * "dynamic_export_add"), or NULL past the end. */
#define COST_FIXED_KEYS 17
const char *cost_fixed_key(int i);
/* 1 when any price of f is set (an adjustment of dynamic prices counts). */
int cost_fixed_any(const cost_fixed *f);

#define COST_FACTOR_ONE 1000000      /* a factor of 1 in millionths */
#define COST_FACTOR_MAX 100000000    /* the largest dynamic_*_factor: 100 */
/* A dynamic power price adjusted: price x factor / COST_FACTOR_ONE + add (micro-euros per kWh),
 * computed exactly and rounded once to a whole micro-euro, half away from zero. factor
 * (0..COST_FACTOR_MAX) COST_UNSET = 1, add COST_UNSET = 0. */
int64_t cost_dyn_adjust(int64_t price, int64_t factor, int64_t add);

/* Parses "HH:MM" (00:00 to 23:59) into seconds after midnight: the start of a gas day, for
 * cost_parse_dynamic(). Returns 0, or -1 (out untouched). */
int cost_parse_day_start(const char *s, int *out);

/* Parses a dynamic price file (CSV or JSON, told apart by its first non-blank byte) of `kind`
 * into out (emptied first). A gas time given as a date alone starts `day_start` seconds of
 * local clock time after that date's midnight (06:00 for most Dutch suppliers); 0 = midnight.
 * CSV: "time,price[,export]" per line, optional header, ',' or ';' separators, decimal commas
 * with ';'. JSON: [{"time":..,"price":..[,"export":..]}] or {"prices":[...]};
 * "start"/"from"/"datetime"/"timestamp" and "value"/"import" are also read. Prices are plain
 * decimals; a JSON number may have an exponent, a CSV with ';' decimal commas.
 * Also read: Tibber's GraphQL reply (priceInfo "today"/"tomorrow" of the first home that has
 * them, "total"/"startsAt"), Frank Energie's ("marketPricesElectricity" or "marketPricesGas" by
 * kind; the price is the sum of "marketPrice", "marketPriceTax", "sourcingMarkupPrice" and
 * "energyTaxPrice"), Energy-Charts' columns ("unix_seconds", "price"; a null is a hole),
 * and a JSON "unit" (EUR/kWh, ct/kWh, EUR/MWh; gas EUR/m3, ct/m3) that converts the prices to
 * EUR per kWh or m3. Each price lasts until the next one (at most an hour for power, a day for
 * gas; the last one as long as the one before it). Returns 0, or -1 with "line N: problem" in
 * err[cap] (a JSON reply without prices but with a server's error message: that message). */
int cost_parse_dynamic(const char *text, size_t len, cost_kind kind, int day_start,
                       cost_dyns *out, char *err, size_t cap);

/* The error message of a JSON error reply (GraphQL's "errors": [{"message": ..}], or a top-level
 * "error" or "message") into out[cap]. Returns 1 when found, else 0. */
int cost_reply_message(const char *text, size_t len, char *out, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * The database (tables in the store's SQLite file)
 * ------------------------------------------------------------------------------------------- */

/* Creates the price tables when missing. Returns 0 or -EIO (err[cap] says why). */
int cost_db_init(struct sqlite3 *db, char *err, size_t cap);
/* Records a fixed-price period (replacing the one with the same `from`). Returns 0 or -EIO. */
int cost_db_save_fixed(struct sqlite3 *db, const cost_fixed *f, char *err, size_t cap);
/* Replaces the dynamic prices of `kind` in [first ts, last end) by d, all or nothing (one
 * savepoint). Returns 0, -EBUSY (another program holds the write lock), -ENOSPC (the disk is
 * full) or -EIO with err[cap]. */
int cost_db_save_dynamic(struct sqlite3 *db, cost_kind kind, const cost_dyns *d, char *err,
                         size_t cap);

/* Every price that applies in [from, to), loaded from the database. Owns its arrays; free with
 * cost_prices_free(). */
typedef struct cost_prices {
    cost_fixed *fixed; /* sorted by from */
    size_t nfixed;
    cost_dyns dyn[2];  /* [cost_kind] */
} cost_prices;

/* What a kWh of the dynamic power price d costs (*imp) and earns (*exp), as the costs count it:
 * adjusted by the dynamic_* keys of p's fixed period in force at d's start (none: as stored; an
 * export value of d's own is never adjusted). */
void cost_dyn_effective(const cost_prices *p, const cost_dyn *d, int64_t *imp, int64_t *exp);

/* The electricity prices in force at t, micro-euros per kWh, as the costs count them: the dynamic
 * power price holding t (adjusted, as cost_dyn_effective()), else the fixed prices of the period
 * in force at t for `tariff` (1 or 2: the tariff the meter reports, whose registers the costs
 * price; anything else: the period's tariff_rule at t). *imp and *exp get COST_UNSET when no
 * price applies; *since gets the start of the dynamic price or of the fixed period (COST_UNSET:
 * none applies). */
void cost_price_at(const cost_prices *p, int64_t t, int tariff, int64_t *imp, int64_t *exp,
                   int64_t *since);
/* The first time after t at which a price of p starts or ends (a dynamic power price, a fixed
 * period), or COST_FOREVER: until then cost_price_at() answers from the same prices. */
int64_t cost_price_next_change(const cost_prices *p, int64_t t);

/* Loads the prices for [from, to) into p (zeroed first). Returns 0 or -EIO/-ENOMEM. */
int cost_db_load(struct sqlite3 *db, int64_t from, int64_t to, cost_prices *p, char *err,
                 size_t cap);
/* Releases what p owns; accepts a zeroed or NULL p. */
void cost_prices_free(cost_prices *p);
/* 1 when p holds any price at all. */
int cost_prices_any(const cost_prices *p);

/* ---------------------------------------------------------------------------------------------
 * Costs
 * ------------------------------------------------------------------------------------------- */

/* The cost of one step, micro-euros: energy (import minus export credit), gas, and the daily and
 * monthly charges accrued over the step's seconds. `priced` 0 = no price applied (no data, or no
 * price for it). Energy without a price is not priced at 0: it is left out of energy and gas and
 * counted in unpriced_wh (import plus export, Wh) and unpriced_dm3 (gas). */
typedef struct cost_parts {
    int64_t energy, gas, fixed;
    int64_t unpriced_wh, unpriced_dm3;
    int priced;
} cost_parts;

/* Remembers where the last lookups were, so that steps asked in time order cost O(1). Zero it
 * before the first use with a cost_prices. */
typedef struct cost_cursor {
    size_t dyn[2];
    int64_t day0, day1, mon0, mon1; /* the last local day and month seen (0 0: none) */
} cost_cursor;

/* Prices one step [start, end) of at most a day, holding `energy` (STORE_E_*, Wh and dm3,
 * STORE_NULL when absent). The dynamic price holding `start` wins over the fixed one; with
 * tariff registers the fixed prices follow them, else the calendar rule. A register without any
 * price goes to out->unpriced_*. Each part is rounded to a whole micro-euro once, half away from
 * zero. Fills *out. */
void cost_step(const cost_prices *p, cost_cursor *c, int64_t start, int64_t end,
               const int64_t energy[STORE_E_COUNT], cost_parts *out);

/* ---------------------------------------------------------------------------------------------
 * The Belgian capacity tariff (capaciteitstarief)
 * ------------------------------------------------------------------------------------------- */

#define COST_CAPACITY_MONTHS 12      /* monthly peaks averaged: the billed month and 11 before */
#define COST_CAPACITY_FLOOR_W 2500   /* a monthly peak below 2.5 kW counts as 2.5 kW */
#define COST_CAPACITY_PRICE_MAX 1000000000 /* micro-euros per kW per year (1000 EUR) */

/* The capacity price (micro-euros per kW per year) of the fixed period in force at t, or
 * COST_UNSET. */
int64_t cost_capacity_price(const cost_prices *p, int64_t t);
/* What a monthly peak counts for: at least COST_CAPACITY_FLOOR_W. */
int64_t cost_capacity_counted_w(int64_t peak_w);
/* The capacity charge of one month, micro-euros: price / 12 x the mean of the monthly peaks
 * peaks_w[0..n) (W, n >= 1), each counted at least COST_CAPACITY_FLOOR_W, rounded once half away
 * from zero. *mean_w gets that mean rounded to a whole W. */
int64_t cost_capacity_month(int64_t price, const int64_t *peaks_w, size_t n, int64_t *mean_w);

#endif
