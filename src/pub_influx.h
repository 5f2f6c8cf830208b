/* pub_influx.h: the InfluxDB publisher: stored readings as line protocol over HTTP (v1 /write or
 * v2 /api/v2/write), batched, through the durable outbox, on the daemon's loop (libcurl multi). */
#ifndef P1D_PUB_INFLUX_H
#define P1D_PUB_INFLUX_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "outbox.h"
#include "pub.h"
#include "store.h"

#define PUB_INFLUX_STR_MAX         256
#define PUB_INFLUX_BODY_MAX        (16 << 20) /* bytes of one write request; batches stop short */
#define PUB_INFLUX_REPLY_MAX       4096       /* bytes of a reply kept for the log */
#define PUB_INFLUX_BACKOFF_MIN_MS  1000       /* first retry after a 5xx or a network error ... */
#define PUB_INFLUX_BACKOFF_MAX_MS  300000 /* ... doubling with jitter up to 5 minutes */
#define PUB_INFLUX_AUTH_BACKOFF_MS 600000 /* 401/403 or 404 (no such database): wait 10 minutes */
#define PUB_INFLUX_POLL_MS         1000   /* look for new readings this often when caught up */
#define PUB_INFLUX_SHRINK_MS       600000 /* a 413 just after a smaller success: keep that size */

/* Settings, usually from [influxdb]. Plain data; copied by pub_influx_new. */
typedef struct pub_influx_options {
    char url[PUB_INFLUX_STR_MAX]; /* base URL: http://127.0.0.1:8086 */
    char database[128];           /* v1; "" = v2 */
    char bucket[128], org[128];   /* v2 */
    char username[128];           /* v1 basic auth; "" none */
    char password[PUB_INFLUX_STR_MAX];
    char password_file[PUB_INFLUX_STR_MAX];
    char token[PUB_INFLUX_STR_MAX]; /* v2: Authorization: Token ... */
    char token_file[PUB_INFLUX_STR_MAX];
    char measurement[64]; /* "p1" */
    outbox_rate rate;
    int64_t interval_s; /* OUTBOX_INTERVAL */
    int batch;          /* lines per request */
    int64_t timeout_ms;
} pub_influx_options;

/* Fills o from the [influxdb] keys of c. Returns 1 when InfluxDB is configured and enabled,
 * else 0. */
int pub_influx_options_from_config(const config *c, pub_influx_options *o);

/* Checks what o names without connecting: the URL's scheme, database or bucket and org, a
 * measurement line protocol can carry (no control character, no leading '#'), and that
 * password_file and token_file can be read. Returns 0, or -1 with a reason in err[cap]. */
int pub_influx_check(const pub_influx_options *o, char *err, size_t cap);

/* Starts writing every meter of store s (borrowed; must outlive the publisher) on loop l.
 * Returns the publisher (free it with p->free(p->impl)) or NULL with a reason in err[cap]; errno
 * is ELIBACC when libcurl cannot be loaded (InfluxDB stays off, the daemon can run on). */
pub *pub_influx_new(loop *l, store *s, const pub_influx_options *o, char *err, size_t cap);

#endif
