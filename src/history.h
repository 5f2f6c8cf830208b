/* history.h: the HTTP endpoints over the history store: GET /api/history (columnar JSON for
 * charts, or CSV), GET /api/summary (a day, month or year with costs and peaks), and GET/PUT
 * /api/prices (fixed and dynamic prices). */
#ifndef P1D_HISTORY_H
#define P1D_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "cost.h"
#include "http.h"
#include "meter.h"
#include "price_fetch.h"
#include "store.h"

#define HISTORY_POINTS_MAX 100000       /* points of one /api/history response */
#define HISTORY_CELLS_MAX 4000000       /* points x (fields + time): a raw day, every field */
#define HISTORY_BODY_MAX (64u << 20)    /* bytes of one generated response (a backstop: cells
                                         * bound /api/history to about 50 MB) */
#define HISTORY_PRICES_MAX 100000       /* dynamic prices listed by one GET /api/prices */
#define HISTORY_ERR_MAX 256

/* Ownership: created by history_new(), freed by history_free(). It borrows the store and the
 * meter registry, which must outlive it; it is used from the daemon's loop thread only, but for
 * the answers it hands to the server's worker thread (history_jobs()). */
typedef struct history history;

/* Creates the endpoints over store s (creating the price tables when the store is writable) and
 * the live meters ms (for the default meter and the meters' own demand peaks; may be NULL).
 * Returns NULL with a reason in err[cap]. */
history *history_new(store *s, const meters *ms, char *err, size_t cap);
/* Fills out with what the price fetcher did for `kind` (all zero: that kind is not fetched). */
typedef void (*history_fetch_fn)(void *user, cost_kind kind, price_fetch_status *out);
/* GET /api/prices reports on the price fetcher through fn(user, ...) (fn NULL: none); a function,
 * so that the history endpoints do not link the fetcher and libcurl's loop. */
void history_set_fetch(history *h, history_fetch_fn fn, void *user);
/* Frees (and closes history_jobs()'s connection: after http_free()); accepts NULL. */
void history_free(history *h);
/* The GET and HEAD answers of /api/history and /api/summary built on the server's worker thread
 * (http_options.jobs), so that one (a day of raw readings: 0.25 s here, seconds on a Raspberry
 * Pi) never stops the loop: opens the worker's own read-only connection to the store
 * (store_open_reader(): it sees every reading committed before the request) and fills out; the
 * live meters' part of an answer (the default meter, the meter's own demand peak) is copied on
 * the loop when it is handed over. Returns 0, or -1 with the reason in why[cap] when the database
 * cannot be shared so (in memory): then they are answered on the loop, by history_route(). */
int history_jobs(history *h, http_jobs *out, char *why, size_t cap);
/* The http_route_fn for http_options.route: serves /api/history, /api/summary and /api/prices;
 * returns 0 for any other path. user is the history, or NULL without a database: then those
 * paths get a 404 "no_database" that says how to start p1d with one. */
int history_route(void *user, const http_req *req, http_reply *out);

/* The http_metrics_fn for http_options.metrics (user: the history): the store's figures
 * (p1d_store_*), and the price in force now (price_now.h; the tariff of the meters' latest
 * telegram younger than stale_s) as p1d_price_import_eur_per_kwh and
 * p1d_price_export_eur_per_kwh, those only when a price applies. */
int history_metrics(void *user, int64_t mono_ms, unsigned stale_s, char **out, size_t *len);

/* What GET /api/summary counts of one meter over [from, to), one step of `step` (a day, a month
 * or a year). */
typedef struct history_totals {
    int have;                  /* readings in the range; else p is zero */
    store_point p;             /* the sums of the energy registers (STORE_NULL: none), the
                                * power, voltage and current statistics */
    int priced;                /* prices were given: cost holds the costs */
    cost_parts cost;           /* energy, gas and fixed; what no price covered */
    int64_t peak15, peak15_ts; /* the highest quarter hour's import in Wh (-1 none), its start */
} history_totals;
/* Fills out for meter mname of store s, priced with `prices` (cost_db_load(); NULL or empty:
 * not priced). Returns 0, -ENOENT when the store has no readings of mname at all (out as for an
 * empty range), or a negative errno. */
int history_totals_of(store *s, const char *mname, int64_t from, int64_t to, store_step step,
                      const cost_prices *prices, history_totals *out);

/* The step `step=auto` picks for [from, to): at most about 2,000 points (raw up to 2 hours). */
store_step history_auto_step(int64_t from, int64_t to);

#endif
