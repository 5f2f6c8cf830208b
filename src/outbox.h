/* outbox.h: durable, at-least-once delivery of stored readings to publishers: each publisher has
 * its own persisted cursor per meter over the store, so restarts resume where delivery stopped. */
#ifndef P1D_OUTBOX_H
#define P1D_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Ownership: an outbox is created by outbox_new() over a borrowed store (which must outlive it)
 * and freed by outbox_free(). Cursors live in the store's database (table outbox_cursor), written
 * in their own small transactions so an acknowledgement survives a crash. */
typedef struct outbox outbox;

/* What a publisher sends: every reading, one reading per `every_s` seconds, or per-minute
 * aggregates (store step 1m). */
typedef enum outbox_rate {
    OUTBOX_EVERY = 0,
    OUTBOX_INTERVAL,
    OUTBOX_MINUTE,
} outbox_rate;

#define OUTBOX_BATCH_MAX 1000 /* points handed out by one outbox_fetch() */

typedef struct outbox_lag {
    int64_t readings; /* readings stored after what the cursor covers (raw, whatever the rate) */
    int64_t seconds;  /* age of the oldest unacknowledged point (0 when none) */
    int64_t cursor;   /* unix seconds of the last acknowledged point (0 none) */
    uint64_t delivered, retries, parked; /* counters since start */
} outbox_lag;

/* Creates the outbox of publisher `name` over s. The name identifies the destination (the Azure
 * publisher uses "azure ENDPOINT/TABLE", so a new table or account starts from the beginning);
 * at most 399 bytes. Returns NULL with
 * a reason in err[cap]. A new publisher starts at `start_ts` (0 = the oldest point kept). */
outbox *outbox_new(store *s, const char *name, outbox_rate rate, int64_t every_s, int64_t start_ts,
                   char *err, size_t cap);
/* Frees ob; accepts NULL. Cursors already acknowledged stay in the database. */
void outbox_free(outbox *ob);
/* Copies up to max (<= OUTBOX_BATCH_MAX) points of `meter` after its cursor, oldest first, into
 * out[]. Returns the count (0 = nothing new) or a negative errno. Does not move the cursor. */
int outbox_fetch(outbox *ob, const char *meter, store_point *out, size_t max);
/* Like outbox_fetch, but after time `after` instead of the cursor: lets a publisher keep several
 * batches of one meter in flight (it acknowledges them in order). after < cursor = the cursor. */
int outbox_fetch_after(outbox *ob, const char *meter, int64_t after, store_point *out, size_t max);
/* The persisted cursor of `meter` (unix seconds of the last acknowledged or parked point; for
 * OUTBOX_MINUTE the label of the last minute step); 0 none. Negative errno on error. */
int64_t outbox_cursor(outbox *ob, const char *meter);
/* Counts one failed attempt (retried later) of `meter` in lag.retries. */
void outbox_count_retry(outbox *ob, const char *meter);
/* Acknowledges delivery of every point of `meter` up to and including time ts (unix seconds);
 * persists the cursor. Returns 0 or a negative errno. Moving backwards is ignored. */
int outbox_ack(outbox *ob, const char *meter, int64_t ts);
/* Skips (parks) points of `meter` up to ts that were refused permanently (a 4xx); they are
 * counted in lag.parked and recorded in table outbox_parked with the reason. */
int outbox_park(outbox *ob, const char *meter, int64_t ts, const char *reason);
/* Lag of `meter` for this publisher; returns 0 or a negative errno. */
int outbox_lag_get(outbox *ob, const char *meter, outbox_lag *out);
/* Calls fn for every meter this publisher has a persisted cursor of (it delivered to it in this
 * or an earlier run), in name order, until fn returns nonzero. Returns 0 or a negative errno. */
int outbox_meters(outbox *ob, int (*fn)(void *user, const char *meter), void *user);
/* Deletes the cursor of `meter` (a meter this publisher is done with for good): a meter of that
 * name delivered later starts like a new one. Returns 0 or a negative errno. */
int outbox_forget(outbox *ob, const char *meter);
/* Name of the publisher. */
const char *outbox_name(const outbox *ob);

#endif
