/* metrics.h: the meters' state and latest readings as Prometheus text exposition format 0.0.4. */
#ifndef P1D_METRICS_H
#define P1D_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "meter.h"

struct pub_list; /* pub.h */

#define METRICS_MAX (8u << 20) /* bytes of one exposition; more is -E2BIG */

/* The Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Renders every meter of ms into a malloc'd text (*out, caller frees; *len bytes, NUL-terminated).
 * A meter is "up" when its latest telegram is younger than stale_s at mono_ms (loop_now_ms:
 * received_mono_ms is compared, so a stepped wall clock does not change it).
 * Returns 0, -ENOMEM, or -E2BIG past METRICS_MAX; *out is untouched on failure. */
int metrics_render(const meters *ms, int64_t mono_ms, unsigned stale_s, const char *version,
                   char **out, size_t *len);

/* Appends the publisher families (p1_publisher_*: state per publisher, lag and counters per meter
 * and publisher) to the exposition *out (*len bytes, malloc'd by metrics_render; grown in place).
 * pl NULL or empty appends nothing. Returns 0, -ENOMEM or -E2BIG; *out stays valid either way. */
int metrics_render_pubs(const meters *ms, const struct pub_list *pl, char **out, size_t *len);

/* Appends the price families p1d_price_import_eur_per_kwh and p1d_price_export_eur_per_kwh
 * (the price in force now, micro-euros per kWh; COST_UNSET of cost.h leaves a family out
 * altogether) to the exposition *out (*len bytes, malloc'd by metrics_render; grown in place).
 * Returns 0, -ENOMEM or -E2BIG; *out stays valid either way. */
int metrics_render_price(int64_t import_, int64_t export_, char **out, size_t *len);

/* The store's figures for /metrics (store_stats of store.h, and what store_pending() and
 * store_healthy() say). */
typedef struct metrics_store {
    int healthy;   /* 1: the last commit (and WAL checkpoint) succeeded */
    size_t queued; /* readings waiting in memory for a commit */
    uint64_t committed, skipped, dropped, failures;
    uint64_t commit_us; /* the last commit's duration */
} metrics_store;

/* Appends the p1d_store_* families to the exposition *out (*len bytes, malloc'd by
 * metrics_render; grown in place). Returns 0, -ENOMEM or -E2BIG; *out stays valid either way. */
int metrics_render_store(const metrics_store *st, char **out, size_t *len);

#endif
