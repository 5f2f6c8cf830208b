/* alerts.h: [alerts] url: p1d tells a person when something needs them, by an HTTP POST to a
 * push service (ntfy, Gotify's or Home Assistant's webhooks, anything that takes a POST): a meter
 * that goes silent and comes back, a new power failure the meter counts, a message from the grid
 * operator, (Belgium) a quarter hour heading above the month's capacity peak, and a phase that
 * carries more than the main fuse for a while, and dynamic power prices below zero ahead. Sent
 * on the daemon's loop (libcurl, loaded at run time) from a bounded queue, retried with backoff;
 * never in the way of reading the meter. With [alerts] mqtt also (or only) published on MQTT,
 * held while the broker is away. */
#ifndef P1D_ALERTS_H
#define P1D_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "loop.h"
#include "meter.h"
#include "pub.h"
#include "store.h"

#define ALERTS_URL_MAX     512
#define ALERTS_QUEUE_MAX   64               /* alerts waiting; the oldest is dropped beyond it */
#define ALERTS_RETRY_MIN   10000            /* ms after a failed POST, doubling ... */
#define ALERTS_RETRY_MAX   (10 * 60 * 1000) /* ... up to this */
#define ALERTS_KEEP_MS     (24 * 3600 * 1000LL) /* an alert not delivered by then is dropped */
#define ALERTS_TITLE_MAX   128
#define ALERTS_MESSAGE_MAX 1200
#define ALERTS_PRICE_AHEAD_S (48 * 3600) /* dynamic prices looked at for negative_price */
#define ALERTS_PRICE_RUNS    32          /* negative price runs remembered as alerted */
#define ALERTS_RECENT_MAX    50          /* alerts /api/alerts lists */
#define ALERTS_KEEP_ROWS     1000        /* alerts the store's alerts table keeps, the newest */
#define ALERTS_DAILY_TICK    8           /* meters one tick of a daily run looks at */
#define ALERTS_DAILY_BEFORE  7           /* days before yesterday its mean import is of */
#define ALERTS_DAILY_RETRY   10          /* s: a meter whose figures could not be read, again */
#define ALERTS_DAILY_RETRY_MAX 600       /* ... doubling up to this, until the next day's run */

/* Every "event" an alert carries (the [alerts] events, "back": a silent meter came back, and
 * "test": p1d --test-alert), NULL-terminated; Home Assistant's event entity lists them. */
extern const char *const alerts_event_types[];

/* The events, for [alerts] events. */
enum {
    ALERT_STALE = 1,           /* a meter went silent for [http] stale, and came back */
    ALERT_POWER_FAILURE = 2,   /* the meter's power failure counter (short or long) went up */
    ALERT_MESSAGE = 4,         /* a new text message from the grid operator (0-0:96.13.0) */
    ALERT_CAPACITY = 8,        /* Belgium: the quarter hour's forecast above the month's peak */
    ALERT_OVERLOAD = 16,       /* a phase above [alerts] fuse for overload_for */
    ALERT_NEGATIVE_PRICE = 32, /* dynamic power prices below zero ahead (import or export) */
    ALERT_DAILY = 64,          /* [alerts] daily_at: yesterday's energy, gas and costs */
    ALERT_ALL = 127
};

typedef struct alerts_options {
    char url[ALERTS_URL_MAX];
    char header[512]; /* "Name: value" sent with each POST (a token); "" none */
    int json;         /* format = json: {"event",..}; else text: the message, title in Title: */
    unsigned events;  /* ALERT_* */
    int64_t stale_ms; /* [http] stale */
    int64_t fuse_ua;  /* [alerts] fuse in micro-amperes; 0 = no overload alerts */
    int64_t overload_ms;
    int mqtt; /* [alerts] mqtt: each alert also to the sink (alerts_set_sink); url may be "" */
    int64_t timeout_ms;
    int daily_at; /* [alerts] daily_at: seconds after local midnight; -1 no daily alert */
} alerts_options;

typedef struct alerts alerts;

/* What o sends, for --check-config's note: "stale (silent for 60 s), power_failure, ... to URL
 * (text, with the header NAME)", the URL without its query and the header without its value. */
void alerts_describe(const alerts_options *o, char *out, size_t cap);

/* The options of c's [alerts] keys. Returns 1 (alerts are sent), 0 (no url), or -1 with why[cap]
 * naming the key and the first problem; every problem, with where its key was set, also goes to
 * errs unless it is NULL. */
int alerts_options_from_config(const config *c, alerts_options *o, char *why, size_t cap,
                               config_errors *errs);

/* Starts watching the meters of ms and, for negative_price, the dynamic prices in store s (NULL:
 * none); both borrowed, they must outlive it. The sender is a publisher named "alerts" (pub.h):
 * its state, counters and last error show in /api/meters and /metrics like the others', its lag
 * per meter is that meter's alerts waiting; its free stops watching and drops the alerts still
 * queued (logged; with a store its alerts table keeps them for alerts_restore()). With s, every
 * alert and what became of it is written to the store's alerts table. NULL with err[cap]; errno
 * ELIBACC when libcurl cannot be loaded (the daemon runs on without alerts). */
pub *alerts_new(loop *l, meters *ms, store *s, const alerts_options *o, char *err, size_t cap);

/* A reload replaced old (both from alerts_new()) by p: p goes on from where old was, so that a
 * reload neither loses nor repeats an alert. It takes what old knew of each meter (silent, over
 * the fuse, the last text message and failure counters, its counts), the negative price runs
 * already told and the publisher's counts, and the alerts old had not delivered yet: those for
 * the URL when p has one (the one in flight included: sent again), those for MQTT when p
 * publishes there; the rest old drops when freed (logged). Returns 0, or -1 out of memory
 * (nothing moved). */
int alerts_take_over(pub *p, pub *old);

/* At the start (not after alerts_take_over()): the alerts of before, from the alerts table of
 * the store p was made with (none without one): the newest ALERTS_RECENT_MAX for /api/alerts,
 * and those that were still waiting, sent now on the ways p has (oldest first, ALERTS_QUEUE_MAX
 * per way, each within ALERTS_KEEP_MS of when it happened; the others are marked dropped).
 * Rows p1d did not write are left out, logged. Call after alerts_set_sink(). Returns 0, or -1
 * when the table cannot be read (logged; p runs on without them). */
int alerts_restore(pub *p);

/* 1 when the alerts table of s shows that alerts went out on MQTT before (so this p1d announced
 * their Home Assistant entity, with discovery on), else 0. */
int alerts_mqtt_before(store *s);

/* GET /api/alerts, for http_options.route (p: the running alerts, NULL when they are off):
 * {"enabled": bool, "alerts": [...]}, the last ALERTS_RECENT_MAX alerts, newest first, each as
 * the JSON of format = json with, per way it was sent ("url", "mqtt"), "waiting", "delivered"
 * or "dropped". Returns 0 for another path (not answered), else 1 with *out filled (405 for a
 * method other than GET and HEAD). */
int alerts_route(pub *p, const http_req *req, http_reply *out);

/* Where [alerts] mqtt sends each alert: the JSON of format = json ({"event", "meter", "title",
 * "message", "time"}); returns 0 when it went out, -1 when not (the broker is down, or no MQTT
 * publisher runs): the alert waits, with those after it, and the 1 s tick offers them again in
 * order (ALERTS_QUEUE_MAX of them, each for ALERTS_KEEP_MS at most). */
typedef int (*alerts_sink_fn)(void *user, const char *json, size_t len);
/* Sets p's sink (with [alerts] mqtt); fn NULL: none. */
void alerts_set_sink(pub *p, alerts_sink_fn fn, void *user);

/* Called once when the test alert is done: ok 1 when the server took it (2xx), else 0 with
 * why ("HTTP 401: unauthorized", "Couldn't connect to server"). */
typedef void (*alerts_test_fn)(void *user, int ok, const char *why);
/* Queues a test alert ("p1d: test alert") on p (from alerts_new()) and calls fn when the server
 * answered it, or the attempt failed: it is not tried again. */
void alerts_test(pub *p, alerts_test_fn fn, void *user);

#endif
