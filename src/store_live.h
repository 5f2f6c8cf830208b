/* store_live.h: the store inside p1d: queues every accepted reading through a meters hook,
 * commits once a second on the loop, retries while the disk refuses, prunes by retention. */
#ifndef P1D_STORE_LIVE_H
#define P1D_STORE_LIVE_H

#include <stddef.h>

#include "loop.h"
#include "meter.h"
#include "store.h"

#define STORE_LIVE_COMMIT_MS 1000    /* readings reach the disk within about this long */
/* A meter with this many readings queued is committed at once, not at the next second: a file
 * replayed fast (file:, pace=fast) delivers thousands a second and waits for them meanwhile
 * (FILE_BACKLOG_MAX); the queue holds STORE_QUEUE_DEFAULT while the disk refuses. */
#define STORE_LIVE_BATCH 2000
/* After a failed commit (a full disk) the store is retried this often; after another program's
 * lock, after 1, 2 and 4 s, then this often. */
#define STORE_LIVE_RETRY_MS 5000
#define STORE_LIVE_BUSY_MS 200       /* the longest the loop waits for another program's lock */
#define STORE_LIVE_MAINTAIN_MS 60000 /* retention and WAL checkpoint */
#define STORE_LIVE_MAINTAIN_AGAIN_MS 1000 /* the next slice, while a pass still deleted rows */

typedef struct store_live store_live;

/* Hooks the store s (borrowed; must outlive the result) into the meters ms and the loop l.
 * Returns NULL with errno set. */
store_live *store_live_new(store *s, loop *l, meters *ms);
/* Unhooks, commits what is queued, frees; the store stays open. Accepts NULL. Returns -1 when
 * that last commit failed (the readings in memory are lost; logged), else 0. */
int store_live_free(store_live *sl);
/* http_health_fn for /healthz: user is the store. 1 healthy, 0 with a reason in why[cap]. */
int store_live_health(void *user, char *why, size_t cap);

#endif
