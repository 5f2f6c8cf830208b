/* price_now.h: the electricity price in force now, for /metrics and MQTT: read from the store's
 * price tables (cost.h) and cached, so that asking every second or on every scrape costs no
 * query. */
#ifndef P1D_PRICE_NOW_H
#define P1D_PRICE_NOW_H

#include <stdint.h>

#include "meter.h"
#include "store.h"

#define PRICE_NOW_RELOAD_S 60 /* the longest loaded prices are used: uploads show within it */
#define PRICE_NOW_AHEAD_S                                                                          \
    3601                         /* prices loaded past now: the next slot after the current one (a \
                                  * power price lasts at most an hour) */
#define PRICE_NOW_BEHIND_S 86400 /* and before it: prices that ended within a day are "known" */

/* The import and export price in force, micro-euros per kWh (COST_UNSET: none applies), and the
 * start of the slot they belong to (the dynamic price's start, or the fixed period's). */
typedef struct price_now_value {
    int64_t import_, export_;
    int64_t since;
    int known; /* the tables hold electricity prices: a fixed period with an import or export
                * price, or a dynamic price within PRICE_NOW_BEHIND_S before now or after it */
} price_now_value;

/* Ownership: created by price_now_new(), freed by price_now_free(). It borrows the store, which
 * must outlive it, and is used from the daemon's loop thread only. */
typedef struct price_now price_now;

/* A cache of the prices of store s; `who` ("metrics", "mqtt": static) names it in the log.
 * Returns NULL when out of memory. */
price_now *price_now_new(store *s, const char *who);
/* Frees; accepts NULL. */
void price_now_free(price_now *pn);

/* The prices in force at unix time t for `tariff` (see cost_price_at()) into *out. The prices are
 * loaded again once PRICE_NOW_RELOAD_S passed, when a price starts or ends, or after
 * store_prices_changed(); a failed load is logged once and counts as no price until one succeeds.
 * Returns 1 when an import or an export price applies, else 0. */
int price_now_get(price_now *pn, int64_t t, int tariff, price_now_value *out);

/* The tariff the fixed prices follow now: 0-0:96.14.0 of the first meter in ms whose latest
 * telegram came less than stale_ms before now_ms (loop_now_ms(): monotonic), or 0 (none: the
 * calendar rule). */
int price_now_tariff(const meters *ms, int64_t now_ms, int64_t stale_ms);

#endif
