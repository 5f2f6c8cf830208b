/* alerts.c: [alerts] (alerts.h). A meters hook compares each reading with the meter's previous
 * one (power failure counters, the text message, the capacity forecast, the phases' currents
 * against the fuse); a 1 s timer notices
 * meters that went silent. Each alert goes into a bounded queue; one POST at a time delivers the
 * oldest, retried with backoff while the server fails (a 4xx other than 408/429 will not get
 * better: that alert is dropped, logged). */
#define _GNU_SOURCE
#include "alerts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "civil.h"
#include "cost.h"
#include "curl_loop.h"
#include "dl_curl.h"
#include "history.h"
#include "json.h"
#include "log.h"

static const struct {
    unsigned bit;
    const char *name;
} event_names[] = {{ALERT_STALE, "stale"},       {ALERT_POWER_FAILURE, "power_failure"},
                   {ALERT_MESSAGE, "message"},   {ALERT_CAPACITY, "capacity"},
                   {ALERT_OVERLOAD, "overload"}, {ALERT_NEGATIVE_PRICE, "negative_price"},
                   {ALERT_DAILY, "daily"}};
#define NEVENTS (sizeof event_names / sizeof event_names[0])

const char *const alerts_event_types[] = {"stale",    "back",     "power_failure",  "message",
                                          "capacity", "overload", "negative_price", "daily",
                                          "test",     NULL};
_Static_assert(sizeof alerts_event_types / sizeof alerts_event_types[0] == NEVENTS + 3,
               "alerts_event_types: every event of event_names, back, test and the NULL");

typedef struct alert {
    uint64_t seq;      /* 1, 2, ... per alerts instance (carried over a reload) */
    const char *event; /* event_names[].name, or "back" */
    char meter[METER_NAME_MAX + 1];
    char title[ALERTS_TITLE_MAX];
    char message[ALERTS_MESSAGE_MAX];
    int64_t at_ms; /* wall clock when it happened */
} alert;

/* What became of a recent alert on one way out. */
enum { WAY_NONE, WAY_WAITING, WAY_DELIVERED, WAY_DROPPED };
static const char *const way_names[] = {NULL, "waiting", "delivered", "dropped"};

/* One of the recent alerts, for /api/alerts. */
typedef struct recent {
    alert x;
    uint8_t url, mqtt; /* WAY_*: WAY_NONE when it was not sent that way */
} recent;

/* What was last seen of one meter. */
typedef struct watched {
    char name[METER_NAME_MAX + 1];
    int seen;             /* a reading came since p1d started watching */
    int silent;           /* the stale alert was sent; waiting for the meter to come back */
    int64_t silent_since; /* wall ms of the newest reading when it went silent */
    int64_t failures, long_failures;
    uint32_t text_hash; /* of the last text message; 0 none */
    uint64_t delivered, retries, dropped; /* this meter's alerts, since start */
    int64_t last_sent;                    /* unix s of its last alert delivered or dropped */
    int64_t capacity_q; /* the quarter (its end, unix s) already alerted */
    /* per phase (L1-L3): since when (monotonic ms, 0 not) it carries more than the fuse, and
     * since when at most the fuse after an overload alert; overloaded: alerted, not re-armed */
    int64_t above_since[3], below_since[3];
    int overloaded[3];
    int64_t daily_day; /* the last day (its local midnight) the daily alert looked at; 0 none */
    int64_t daily_retry; /* unix s its figures of the day under way are read again; 0 none */
    int daily_tries;     /* reads of them that failed */
} watched;

/* A run of dynamic power prices below zero: adjacent slots where a kWh used earns money
 * (import < 0) or a kWh exported costs money (export < 0). */
typedef struct price_run {
    int64_t start, end;       /* unix s */
    int64_t min_imp, min_exp; /* the lowest of each; COST_UNSET: never below zero in the run */
    int64_t imp_at, exp_at;   /* the start of the slot that has it */
} price_run;

struct alerts {
    pub pub; /* what the daemon, /api/meters and /metrics see */
    pub_status st;
    int64_t retry_at; /* loop_now_ms() of the next try after a failure */
    meters *ms;
    store *s;                            /* the dynamic prices (negative_price); NULL none */
    uint64_t price_serial;               /* store_prices_serial() at the last look */
    int64_t price_next;                  /* look again at this loop_now_ms() at the latest */
    int price_failing;                   /* the last look could not read them (logged once) */
    int64_t run_told[ALERTS_PRICE_RUNS]; /* starts of the runs alerted (a ring); 0 free */
    size_t run_next;                     /* the ring's next slot */
    int64_t daily_next;                  /* unix s the next daily run is due; 0 not planned */
    int64_t daily_day;                   /* the day (local midnight) the run under way tells */
    alerts_options o;
    const dl_curl *cu;
    curl_loop *cl;
    CURL *easy;
    struct curl_slist *headers;
    loop_timer *tick;  /* silent meters */
    loop_timer *retry; /* the next POST after a failure */
    watched *w;
    size_t nw, capw;
    alert q[ALERTS_QUEUE_MAX];
    size_t head, n;
    int busy;           /* a POST is in flight */
    int64_t backoff_ms; /* 0 while posts work */
    uint64_t failures;  /* in the current run of failures */
    char body[ALERTS_MESSAGE_MAX * 2 + 512];
    char reply[160]; /* the start of the server's answer, for a failure's log line */
    size_t reply_len;
    char shown[ALERTS_URL_MAX]; /* the URL without its query, for logs */
    alerts_sink_fn sink;        /* [alerts] mqtt */
    void *sink_user;
    char sink_json[ALERTS_MESSAGE_MAX * 2 + 512];
    /* [alerts] mqtt: alerts waiting for the broker (a ring, oldest at shead), published in
     * order once the MQTT publisher is connected again */
    alert sq[ALERTS_QUEUE_MAX];
    size_t shead, sn;
    int sink_waiting; /* the broker was away when the oldest waiting one came (logged once) */
    alerts_test_fn test_fn;     /* p1d --test-alert: told of the first answer, no retries */
    void *test_user;
    /* the last ALERTS_RECENT_MAX alerts (a ring, the newest at rnext - 1), for /api/alerts */
    recent rec[ALERTS_RECENT_MAX];
    size_t rnext, rn;
    uint64_t seq; /* of the newest alert */
    /* the alerts table of store s (NULL: no store, or the table could not be made): each alert
     * and what became of it, for the next start */
    sqlite3 *db;
    int db_failing; /* the last write failed (logged once) */
};

/* One problem of [alerts]: the first goes to why, each (with where its key was set) to errs. */
typedef struct alerts_problems {
    const config *c;
    config_errors *errs;
    char *why;
    size_t cap;
    int n;
} alerts_problems;

static void __attribute__((format(printf, 2, 3))) problem(alerts_problems *ap, const char *fmt, ...)
{
    char msg[CONFIG_ERR_MAX], err[CONFIG_ERR_MAX];
    va_list va;
    va_start(va, fmt);
    vsnprintf(msg, sizeof msg, fmt, va);
    va_end(va);
    if (ap->n++ == 0)
        snprintf(ap->why, ap->cap, "%s", msg);
    if (ap->errs) {
        config_placed(ap->c, msg, err, sizeof err);
        config_errors_add(ap->errs, ap->c->file, err);
    }
}

int alerts_options_from_config(const config *c, alerts_options *o, char *why, size_t cap,
                               config_errors *errs)
{
    alerts_problems ap = {c, errs, why, cap, 0};
    int daily = c->alerts_daily_at[0] != 0;
    memset(o, 0, sizeof *o);
    o->daily_at = -1;
    if (c->alerts_mqtt && (!c->mqtt_host[0] || !c->mqtt_enabled))
        problem(&ap, "[alerts] mqtt = true needs [mqtt] host (and enabled = true): the "
                     "alerts go to its broker");
    if (!c->alerts_url[0] && c->alerts_header[0])
        problem(&ap, "[alerts] header is set, but [alerts] url is empty");
    if (!c->alerts_url[0] && !c->alerts_mqtt) {
        if (!daily)
            return ap.n ? -1 : 0;
        problem(&ap, "[alerts] daily_at is set, but neither [alerts] url nor [alerts] mqtt");
    }
    if (daily) {
        if (cost_parse_day_start(c->alerts_daily_at, &o->daily_at) < 0)
            problem(&ap, "[alerts] daily_at: expected HH:MM such as 07:30, got '%.32s'",
                    c->alerts_daily_at);
        if (!c->store_db[0])
            problem(&ap,
                    "[alerts] daily_at needs [store] db (yesterday's figures are read from it)");
    }
    if (c->alerts_url[0] && strncasecmp(c->alerts_url, "http://", 7) != 0 &&
        strncasecmp(c->alerts_url, "https://", 8) != 0) {
        char shown[ALERTS_URL_MAX];
        config_url_public(c->alerts_url, shown, sizeof shown);
        problem(&ap, "[alerts] url: expected an http:// or https:// URL, got '%.200s'", shown);
    }
    char reason[CONFIG_ERR_MAX];
    if (c->alerts_header[0] &&
        config_http_header_check(c->alerts_header, "[alerts] header", reason, sizeof reason) < 0)
        problem(&ap, "%s", reason);
    /* events: a comma-separated list of names, or "all" */
    char list[sizeof c->alerts_events];
    int unknown = 0;
    snprintf(list, sizeof list, "%s", c->alerts_events);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        size_t i = 0;
        if (strcmp(t, "all") == 0) {
            o->events = ALERT_ALL;
            continue;
        }
        while (i < NEVENTS && strcmp(t, event_names[i].name) != 0)
            i++;
        if (i == NEVENTS) {
            problem(&ap,
                    "[alerts] events: unknown event '%.40s': expected all, or a list of stale, "
                    "power_failure, message, capacity, overload, negative_price and daily",
                    t);
            unknown = 1;
            continue;
        }
        o->events |= event_names[i].bit;
    }
    if (!o->events && !unknown)
        problem(&ap, "[alerts] events: empty: expected all, or a list of stale, "
                     "power_failure, message, capacity, overload, negative_price and daily");
    if (c->alerts_fuse == 0 && o->events != ALERT_ALL && (o->events & ALERT_OVERLOAD))
        problem(&ap, "[alerts] events: overload needs [alerts] fuse (the main fuse per "
                     "phase in A, such as 25)");
    if (!c->store_db[0] && o->events != ALERT_ALL && (o->events & ALERT_NEGATIVE_PRICE))
        problem(&ap, "[alerts] events: negative_price needs [store] db (the prices are "
                     "read from it)");
    if (!daily && o->events != ALERT_ALL && (o->events & ALERT_DAILY))
        problem(&ap, "[alerts] events: daily needs [alerts] daily_at (the time of day to send "
                     "it, such as 07:30)");
    if (daily && o->events && !(o->events & ALERT_DAILY))
        problem(&ap, "[alerts] daily_at is set, but events leaves daily out: add daily to "
                     "events, or remove daily_at");
    if (ap.n)
        return -1;
    if (o->daily_at < 0)
        o->events &= ~(unsigned)ALERT_DAILY; /* "all" without a time: none */
    if (c->alerts_fuse == 0)
        o->events &= ~(unsigned)ALERT_OVERLOAD; /* "all" without a fuse: nothing to compare */
    if (!c->store_db[0])
        o->events &= ~(unsigned)ALERT_NEGATIVE_PRICE; /* nor prices without a store */
    snprintf(o->url, sizeof o->url, "%s", c->alerts_url);
    snprintf(o->header, sizeof o->header, "%s", c->alerts_header);
    o->json = c->alerts_format == 1;
    o->stale_ms = c->http_stale;
    o->fuse_ua = c->alerts_fuse * 1000000;
    o->mqtt = c->alerts_mqtt != 0;
    o->overload_ms = c->alerts_overload_for;
    o->timeout_ms = c->alerts_timeout;
    return 1;
}

void alerts_describe(const alerts_options *o, char *out, size_t cap)
{
    size_t n = 0;
    char shown[ALERTS_URL_MAX];
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < NEVENTS; i++) {
        if (!(o->events & event_names[i].bit) || n >= cap)
            continue;
        char extra[96] = "";
        if (event_names[i].bit == ALERT_STALE)
            snprintf(extra, sizeof extra, " (silent for %" PRId64 " s)", o->stale_ms / 1000);
        else if (event_names[i].bit == ALERT_OVERLOAD)
            snprintf(extra, sizeof extra, " (a phase above %" PRId64 " A for %" PRId64 " s)",
                     o->fuse_ua / 1000000, o->overload_ms / 1000);
        else if (event_names[i].bit == ALERT_DAILY)
            snprintf(extra, sizeof extra, " (at %02d:%02d)", o->daily_at / 3600,
                     o->daily_at % 3600 / 60);
        n +=
            (size_t)snprintf(out + n, cap - n, "%s%s%s", n ? ", " : "", event_names[i].name, extra);
    }
    config_url_shown(o->url, shown, sizeof shown);
    int hn = (int)strcspn(o->header, ":");
    if (n < cap && o->url[0])
        n += (size_t)snprintf(out + n, cap - n, " to %s (%s%s%.*s)", shown,
                              o->json ? "json" : "text", hn ? ", with the header " : "",
                              hn > 40 ? 40 : hn, o->header);
    if (n < cap && o->mqtt)
        snprintf(out + n, cap - n, "%s on MQTT (TOPIC_PREFIX/alerts)", o->url[0] ? " and" : "");
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h ? h : 1;
}

/* The time of day of wall clock ms as the meters keep it (CET/CEST): "14:02:11". */
static void hhmm(int64_t ms, char *out, size_t cap)
{
    civil_tm tm;
    civil_local(ms / 1000, &tm);
    snprintf(out, cap, "%02d:%02d:%02d", tm.hour, tm.minute, tm.second);
}

static void post_next(alerts *a);
static watched *find(alerts *a, const char *name);

/* The head of the queue is done: delivered (1), or dropped (0); counted for its meter. */
static size_t alert_json(const alert *x, char *buf, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * The alerts table: every alert raised while a store is open, and what became of it on each way
 * out, so that a restart keeps the recent ones for /api/alerts and sends those still waiting.
 * One row per alert, written when it is raised and each time a way out is done with it; the
 * newest ALERTS_KEEP_ROWS are kept. A write that fails is logged once and the alert goes out
 * all the same: the table is a memory, never in the way of an alert.
 * ------------------------------------------------------------------------------------------- */

static const char alerts_schema[] =
    "CREATE TABLE IF NOT EXISTS alerts (seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, "
    "event TEXT NOT NULL, meter TEXT NOT NULL, title TEXT NOT NULL, message TEXT NOT NULL, "
    "url TEXT, mqtt TEXT)";
/* The days the daily alert told of each meter ([alerts] daily_at): once per meter and day over
 * restarts, whatever else the alerts table keeps or drops. */
static const char daily_schema[] =
    "CREATE TABLE IF NOT EXISTS alerts_daily (meter TEXT NOT NULL, day INTEGER NOT NULL, "
    "PRIMARY KEY (meter, day)) WITHOUT ROWID";

/* The outcome of a write: a failure is said once, the first success after one too. */
static void db_result(alerts *a, int rc, const char *what)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE) {
        if (a->db_failing)
            log_info("alerts: the store takes the alerts again");
        a->db_failing = 0;
        return;
    }
    if (!a->db_failing)
        log_warn("alerts: cannot %s in the store: %s; alerts are sent all the same, but a restart "
                 "forgets them",
                 what, sqlite3_errmsg(a->db));
    a->db_failing = 1;
}

static void bind_way(sqlite3_stmt *st, int i, int way)
{
    if (way == WAY_NONE)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, way_names[way], -1, SQLITE_STATIC);
}

/* A new alert, with its ways (WAY_*), into the table; the oldest rows beyond ALERTS_KEEP_ROWS
 * go. */
static void db_insert(alerts *a, const recent *r)
{
    sqlite3_stmt *st = NULL;
    if (!a->db)
        return;
    int rc = sqlite3_prepare_v2(a->db,
                                "INSERT INTO alerts (seq, at_ms, event, meter, title, "
                                "message, url, mqtt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r->x.seq);
        sqlite3_bind_int64(st, 2, r->x.at_ms);
        sqlite3_bind_text(st, 3, r->x.event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->x.meter, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->x.title, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, r->x.message, -1, SQLITE_STATIC);
        bind_way(st, 7, r->url);
        bind_way(st, 8, r->mqtt);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc == SQLITE_OK || rc == SQLITE_DONE) && r->x.seq > ALERTS_KEEP_ROWS) {
        rc = sqlite3_prepare_v2(a->db, "DELETE FROM alerts WHERE seq <= ?", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)(r->x.seq - ALERTS_KEEP_ROWS));
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
    }
    db_result(a, rc, "keep an alert");
}

/* Alert seq fared so (WAY_*) on the URL (url) or MQTT (!url). */
static void db_way(alerts *a, uint64_t seq, int url, int state)
{
    sqlite3_stmt *st = NULL;
    if (!a->db)
        return;
    int rc = sqlite3_prepare_v2(a->db,
                                url ? "UPDATE alerts SET url = ? WHERE seq = ?"
                                    : "UPDATE alerts SET mqtt = ? WHERE seq = ?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_way(st, 1, state);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    db_result(a, rc, "note what became of an alert");
}

/* The way named so in the table: WAY_*, or -1 for a name p1d does not write. */
static int way_of(const unsigned char *name)
{
    if (!name)
        return WAY_NONE;
    for (int i = WAY_WAITING; i <= WAY_DROPPED; i++)
        if (strcmp((const char *)name, way_names[i]) == 0)
            return i;
    return -1;
}

/* The event named so, as the static name an alert points to; NULL for one p1d does not raise. */
static const char *event_of(const unsigned char *name)
{
    for (size_t i = 0; name && alerts_event_types[i]; i++)
        if (strcmp((const char *)name, alerts_event_types[i]) == 0)
            return alerts_event_types[i];
    return NULL;
}

/* A row of "SELECT seq, at_ms, event, meter, title, message, url, mqtt" into *r; 0, or -1 for
 * a row p1d did not write (an unknown event or way, a text missing): skipped. */
static int row_recent(sqlite3_stmt *st, recent *r)
{
    const unsigned char *who = sqlite3_column_text(st, 3), *title = sqlite3_column_text(st, 4),
                        *message = sqlite3_column_text(st, 5);
    int url = way_of(sqlite3_column_text(st, 6)), mqtt = way_of(sqlite3_column_text(st, 7));
    memset(r, 0, sizeof *r);
    r->x.event = event_of(sqlite3_column_text(st, 2));
    if (!r->x.event || !who || !title || !message || url < 0 || mqtt < 0 ||
        sqlite3_column_int64(st, 0) <= 0)
        return -1;
    r->x.seq = (uint64_t)sqlite3_column_int64(st, 0);
    r->x.at_ms = sqlite3_column_int64(st, 1);
    snprintf(r->x.meter, sizeof r->x.meter, "%s", (const char *)who);
    snprintf(r->x.title, sizeof r->x.title, "%s", (const char *)title);
    snprintf(r->x.message, sizeof r->x.message, "%s", (const char *)message);
    r->url = (uint8_t)url;
    r->mqtt = (uint8_t)mqtt;
    return 0;
}

/* An alert of meter name ("" for none) delivered (1) or dropped (0): counted. */
static void count(alerts *a, const char *name, int delivered)
{
    watched *w = name[0] ? find(a, name) : NULL;
    if (delivered)
        a->st.delivered++;
    else
        a->st.parked++;
    if (w) {
        if (delivered)
            w->delivered++;
        else
            w->dropped++;
        w->last_sent = loop_wall_ms() / 1000;
    }
}

/* The i-th newest of the recent alerts (i < a->rn). */
static recent *recent_at(alerts *a, size_t i)
{
    return &a->rec[(a->rnext + ALERTS_RECENT_MAX - 1 - i) % ALERTS_RECENT_MAX];
}

/* Alert seq fared so on the URL (url) or MQTT (!url): noted in the table, and in the recent ones
 * when it is still among them. */
static void mark(alerts *a, uint64_t seq, int url, int state)
{
    db_way(a, seq, url, state);
    for (size_t i = 0; i < a->rn; i++) {
        recent *r = recent_at(a, i);
        if (r->x.seq == seq) {
            *(url ? &r->url : &r->mqtt) = (uint8_t)state;
            return;
        }
    }
}

static void done_head(alerts *a, int delivered)
{
    mark(a, a->q[a->head].seq, 1, delivered ? WAY_DELIVERED : WAY_DROPPED);
    count(a, a->q[a->head].meter, delivered);
    a->head = (a->head + 1) % ALERTS_QUEUE_MAX;
    a->n--;
}

/* [alerts] mqtt: why the sink takes nothing now. */
static const char *sink_why(const alerts *a)
{
    return a->sink ? "not connected to the broker" : "no MQTT publisher runs";
}

/* The oldest alert waiting for MQTT is done: published (1) or dropped (0); counted as the
 * alerts publisher's when MQTT is its only way out. */
static void sink_done(alerts *a, int delivered)
{
    const alert *x = &a->sq[a->shead];
    mark(a, x->seq, 0, delivered ? WAY_DELIVERED : WAY_DROPPED);
    if (!a->o.url[0]) {
        a->st.requests++;
        if (delivered)
            a->st.last_ok_ms = loop_wall_ms();
        else
            a->st.failures++;
        count(a, x->meter, delivered);
    }
    a->shead = (a->shead + 1) % ALERTS_QUEUE_MAX;
    a->sn--;
}

/* [alerts] mqtt: the waiting alerts to the sink, oldest first, while it takes them; one kept a
 * day without a broker is dropped (as one the URL's server never took). */
static void sink_flush(alerts *a)
{
    size_t sent = 0;
    while (a->sn) {
        const alert *x = &a->sq[a->shead];
        if (loop_wall_ms() - x->at_ms > ALERTS_KEEP_MS) {
            log_warn("alerts: '%s' could not be published on MQTT for a day (%s); dropped",
                     x->title, sink_why(a));
            sink_done(a, 0);
            continue;
        }
        size_t len = alert_json(x, a->sink_json, sizeof a->sink_json);
        if (!len) { /* cannot happen: the buffer holds the longest title and message */
            log_error("alerts: '%s' does not fit an MQTT message; dropped", x->title);
            sink_done(a, 0);
            continue;
        }
        if (!a->sink || a->sink(a->sink_user, a->sink_json, len) != 0)
            break;
        sink_done(a, 1);
        sent++;
    }
    if (a->sn && !a->sink_waiting) {
        log_warn("alerts: '%s' waits to be published on MQTT: %s; it goes out when the broker "
                 "is back",
                 a->sq[a->shead].title, sink_why(a));
        a->sink_waiting = 1;
    } else if (!a->sn && a->sink_waiting) {
        log_info("alerts: published on MQTT again (%zu waiting alert%s sent)", sent,
                 sent == 1 ? "" : "s");
        a->sink_waiting = 0;
    }
    if (a->o.url[0])
        return; /* the URL's sender owns the publisher's state */
    if (a->sn) {
        a->st.state = PUB_RETRYING;
        snprintf(a->st.last_error, sizeof a->st.last_error, "MQTT: %s; %zu alert%s waiting",
                 sink_why(a), a->sn, a->sn == 1 ? "" : "s");
    } else if (sent) {
        a->st.state = PUB_IDLE;
        a->st.last_error[0] = '\0';
    }
}

/* [alerts] mqtt: the alert joins the ones waiting for the broker (the oldest goes when the wait
 * is full), and all go out if the publisher is connected. */
static void to_sink(alerts *a, const alert *x)
{
    if (a->sn == ALERTS_QUEUE_MAX) {
        log_warn("alerts: %d alerts wait for the MQTT broker; dropping the oldest ('%s')",
                 ALERTS_QUEUE_MAX, a->sq[a->shead].title);
        sink_done(a, 0);
    }
    a->sq[(a->shead + a->sn) % ALERTS_QUEUE_MAX] = *x;
    a->sn++;
    sink_flush(a);
}

/* Queues an alert (the oldest goes when the queue is full) and sends it when nothing is in
 * flight. */
static void raise_alert(alerts *a, const char *event, const char *who, const char *title,
                        const char *message)
{
    alert now;
    now.event = event;
    snprintf(now.meter, sizeof now.meter, "%s", who);
    snprintf(now.title, sizeof now.title, "%s", title);
    snprintf(now.message, sizeof now.message, "%s", message);
    now.at_ms = loop_wall_ms();
    now.seq = ++a->seq;
    log_info("alerts: %s", now.title);
    recent *r = &a->rec[a->rnext];
    r->x = now;
    r->url = a->o.url[0] ? WAY_WAITING : WAY_NONE;
    r->mqtt = a->o.mqtt ? WAY_WAITING : WAY_NONE;
    db_insert(a, r);
    a->rnext = (a->rnext + 1) % ALERTS_RECENT_MAX;
    if (a->rn < ALERTS_RECENT_MAX)
        a->rn++;
    if (a->o.mqtt)
        to_sink(a, &now);
    if (!a->o.url[0])
        return;
    if (a->n == ALERTS_QUEUE_MAX) {
        /* the oldest one not in flight: a POST under way sends the head */
        size_t old = (a->head + (a->busy ? 1 : 0)) % ALERTS_QUEUE_MAX;
        log_warn("alerts: %d alerts wait to be delivered; dropping the oldest ('%s')",
                 ALERTS_QUEUE_MAX, a->q[old].title);
        if (a->busy) { /* the one in flight moves into the dropped one's place */
            alert keep = a->q[a->head];
            a->q[a->head] = a->q[old];
            a->q[old] = keep;
        }
        done_head(a, 0);
    }
    a->q[(a->head + a->n) % ALERTS_QUEUE_MAX] = now;
    a->n++;
    if (!a->busy && !a->backoff_ms)
        post_next(a);
}

/* The meter's state, or NULL before its first reading. */
static watched *lookup(const alerts *a, const char *name)
{
    for (size_t i = 0; i < a->nw; i++)
        if (strcmp(a->w[i].name, name) == 0)
            return &a->w[i];
    return NULL;
}

/* The meter's state, made on first use; NULL out of memory. */
static watched *find(alerts *a, const char *name)
{
    watched *w = lookup(a, name);
    if (w)
        return w;
    if (a->nw == a->capw) {
        size_t cap = a->capw ? a->capw * 2 : 8;
        watched *more = realloc(a->w, cap * sizeof *more);
        if (!more)
            return NULL;
        a->w = more;
        a->capw = cap;
    }
    w = &a->w[a->nw++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    return w;
}

/* A fixed-point kW value (micro) as "3.100". */
static void kw(p1_micro v, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRId64 ".%03" PRId64, v / 1000000, v % 1000000 / 1000);
}

/* What phase p carries in micro-amperes, either way: the meter's current, or else its power over
 * its voltage; P1_ABSENT when the meter says neither. */
static p1_micro phase_amps(const p1_phase *p)
{
    if (p->current != P1_ABSENT)
        return p->current < 0 ? -p->current : p->current;
    p1_micro kw = p->power_import == P1_ABSENT ? p->power_export
                  : p->power_export == P1_ABSENT || p->power_import >= p->power_export
                      ? p->power_import
                      : p->power_export;
    if (kw == P1_ABSENT || p->voltage == P1_ABSENT || p->voltage < 1000000 || kw < 0 ||
        kw > 1000000000) /* no voltage, or beyond 1000 kW: not a house */
        return P1_ABSENT;
    return kw * 1000000 / p->voltage * 1000; /* micro-kW / V = milli-A; to micro-A */
}

/* A phase above [alerts] fuse for overload_for: alerted once, again only after it stayed at or
 * below the fuse as long. */
static void check_overload(alerts *a, watched *w, const meter *m, const meter_sample *s)
{
    const p1_reading *r = &s->reading;
    int64_t now = s->received_mono_ms;
    for (int i = 0; i < 3; i++) {
        p1_micro amps = phase_amps(&r->phase[i]);
        if (i == 0 && amps == P1_ABSENT && r->current != P1_ABSENT) /* single-phase 11.7.0 */
            amps = r->current < 0 ? -r->current : r->current;
        if (amps == P1_ABSENT)
            continue;
        if (amps <= a->o.fuse_ua) {
            w->above_since[i] = 0;
            if (!w->overloaded[i])
                continue;
            if (!w->below_since[i])
                w->below_since[i] = now;
            if (now - w->below_since[i] >= a->o.overload_ms)
                w->overloaded[i] = 0;
            continue;
        }
        w->below_since[i] = 0;
        if (!w->above_since[i])
            w->above_since[i] = now;
        if (w->overloaded[i] || now - w->above_since[i] < a->o.overload_ms)
            continue;
        w->overloaded[i] = 1;
        char title[ALERTS_TITLE_MAX], msg[ALERTS_MESSAGE_MAX], span[32], now_a[32];
        int64_t secs = (now - w->above_since[i]) / 1000;
        if (amps % 1000000 < 100000)
            snprintf(now_a, sizeof now_a, "%" PRId64, amps / 1000000);
        else
            snprintf(now_a, sizeof now_a, "%" PRId64 ".%" PRId64, amps / 1000000,
                     amps % 1000000 / 100000);
        if (secs >= 120)
            snprintf(span, sizeof span, "%" PRId64 " min", secs / 60);
        else
            snprintf(span, sizeof span, "%" PRId64 " s", secs);
        snprintf(title, sizeof title, "p1d: phase L%d overloaded (meter %s)", i + 1, m->name);
        snprintf(msg, sizeof msg,
                 "Phase L%d of meter %s carries %s A, more than its %" PRId64
                 " A fuse, for %s now: switch something off before the fuse trips.",
                 i + 1, m->name, now_a, a->o.fuse_ua / 1000000, span);
        raise_alert(a, "overload", m->name, title, msg);
    }
}

static void on_reading(void *user, meter *m, const meter_sample *s, const uint8_t *raw, size_t len)
{
    alerts *a = user;
    const p1_reading *r = &s->reading;
    char title[ALERTS_TITLE_MAX], msg[ALERTS_MESSAGE_MAX], when[16];
    (void)raw;
    (void)len;
    watched *w = find(a, m->name);
    if (!w)
        return;
    if (w->silent && (a->o.events & ALERT_STALE)) {
        hhmm(w->silent_since, when, sizeof when);
        snprintf(title, sizeof title, "p1d: meter %s sends again", m->name);
        snprintf(msg, sizeof msg, "Meter %s sends telegrams again (silent since %s).", m->name,
                 when);
        raise_alert(a, "back", m->name, title, msg);
    }
    w->silent = 0;
    if (w->seen && (a->o.events & ALERT_POWER_FAILURE) &&
        ((r->power_failures > w->failures && w->failures >= 0) ||
         (r->long_power_failures > w->long_failures && w->long_failures >= 0))) {
        snprintf(title, sizeof title, "p1d: power failure at meter %s", m->name);
        snprintf(msg, sizeof msg,
                 "Meter %s counts a new power failure: %" PRId64 " short and %" PRId64
                 " long ones so far.",
                 m->name, r->power_failures < 0 ? 0 : r->power_failures,
                 r->long_power_failures < 0 ? 0 : r->long_power_failures);
        raise_alert(a, "power_failure", m->name, title, msg);
    }
    w->failures = r->power_failures;
    w->long_failures = r->long_power_failures;
    uint32_t th = r->text[0] ? hash(r->text) : 0;
    if (w->seen && th && th != w->text_hash && (a->o.events & ALERT_MESSAGE)) {
        snprintf(title, sizeof title, "p1d: message from the grid operator (meter %s)", m->name);
        raise_alert(a, "message", m->name, title, r->text);
    }
    w->text_hash = th;
    p1_micro peak = r->demand_peak == P1_ABSENT ? 0 : r->demand_peak;
    if (peak < 2500000)
        peak = 2500000; /* every month counts at least 2.5 kW: below it nothing changes */
    if ((a->o.events & ALERT_CAPACITY) && s->demand_forecast != P1_ABSENT &&
        s->demand_forecast > peak && s->demand_end != w->capacity_q) {
        char f[32], p[32];
        w->capacity_q = s->demand_end;
        hhmm(s->demand_end * 1000, when, sizeof when);
        kw(s->demand_forecast, f, sizeof f);
        kw(peak, p, sizeof p);
        snprintf(title, sizeof title, "p1d: new capacity peak ahead (meter %s)", m->name);
        snprintf(msg, sizeof msg,
                 "This quarter hour heads for %s kW (until %.5s), above this month's peak of %s "
                 "kW.",
                 f, when, p);
        raise_alert(a, "capacity", m->name, title, msg);
    }
    if (a->o.events & ALERT_OVERLOAD)
        check_overload(a, w, m, s);
    w->seen = 1;
}

/* "HH:MM" of unix time t, local; a midnight that ends a day is "24:00". */
static void hm(int64_t t, int end, char *out, size_t cap)
{
    civil_tm tm;
    civil_local(t, &tm);
    if (end && tm.hour == 0 && tm.minute == 0)
        snprintf(out, cap, "24:00");
    else
        snprintf(out, cap, "%02d:%02d", tm.hour, tm.minute);
}

/* Micro-euros as a positive "0.052" (3 decimals, at least 0.001). */
static void eur(int64_t v, char *out, size_t cap)
{
    if (v == COST_UNSET) {
        snprintf(out, cap, "-"); /* not below zero in the run: not in the message */
        return;
    }
    int64_t a = v < 0 ? -v : v, m = (a + 500) / 1000;
    snprintf(out, cap, "%" PRId64 ".%03" PRId64, (m ? m : 1) / 1000, (m ? m : 1) % 1000);
}

static void tell_run(alerts *a, const price_run *r, int64_t now)
{
    char title[ALERTS_TITLE_MAX], msg[ALERTS_MESSAGE_MAX], from[8], to[8], day[32], ia[8], ea[8],
        iv[24], ev[24];
    civil_tm ts, tn;
    civil_local(r->start > now ? r->start : now, &ts);
    civil_local(now, &tn);
    int64_t dd = p1_days_from_civil(ts.year, (unsigned)ts.month, (unsigned)ts.day) -
                 p1_days_from_civil(tn.year, (unsigned)tn.month, (unsigned)tn.day);
    if (dd == 0)
        snprintf(day, sizeof day, "today");
    else if (dd == 1)
        snprintf(day, sizeof day, "tomorrow");
    else
        snprintf(day, sizeof day, "on %04d-%02d-%02d", ts.year, ts.month, ts.day);
    hm(r->start > now ? r->start : now, 0, from, sizeof from);
    hm(r->end, 1, to, sizeof to);
    hm(r->imp_at, 0, ia, sizeof ia);
    hm(r->exp_at, 0, ea, sizeof ea);
    eur(r->min_imp, iv, sizeof iv);
    eur(r->min_exp, ev, sizeof ev);
    snprintf(title, sizeof title, "p1d: negative power prices %s %s-%s", day, from, to);
    if (r->min_imp != COST_UNSET && r->min_exp != COST_UNSET)
        snprintf(msg, sizeof msg,
                 "From %s to %s %s power costs less than nothing: using a kWh earns up to %s EUR "
                 "(at %s), exporting one costs up to %s EUR (at %s). A time to charge the car, "
                 "run the dishwasher and turn the solar inverter down.",
                 from, to, day, iv, ia, ev, ea);
    else if (r->min_exp != COST_UNSET)
        snprintf(msg, sizeof msg,
                 "From %s to %s %s exporting power costs money, up to %s EUR per kWh (at %s): use "
                 "it yourself (charge the car, run the dishwasher) or turn the solar inverter "
                 "down.",
                 from, to, day, ev, ea);
    else
        snprintf(msg, sizeof msg,
                 "From %s to %s %s using power earns money, up to %s EUR per kWh (at %s): a time "
                 "to charge the car or run the dishwasher.",
                 from, to, day, iv, ia);
    raise_alert(a, "negative_price", "", title, msg);
}

/* Dynamic power prices below zero from now on: each run of them is alerted once (a restart of
 * the alerts tells the runs still ahead again). Looked at when the stored prices change, and
 * every minute (a run that starts to lie within the window). */
static void check_prices(alerts *a)
{
    int64_t mono = loop_now_ms();
    uint64_t serial = store_prices_serial(a->s);
    if (serial == a->price_serial && mono < a->price_next)
        return;
    a->price_serial = serial;
    a->price_next = mono + 60000;
    int64_t now = loop_wall_ms() / 1000;
    cost_prices p;
    char err[COST_ERR_MAX] = "";
    if (cost_db_load(store_db(a->s), now, now + ALERTS_PRICE_AHEAD_S, &p, err, sizeof err) < 0) {
        if (!a->price_failing)
            log_warn("alerts: cannot read the prices for negative_price (%s); trying every minute",
                     err[0] ? err : "out of memory");
        a->price_failing = 1;
        return;
    }
    if (a->price_failing)
        log_info("alerts: the prices for negative_price can be read again");
    a->price_failing = 0;
    const cost_dyns *d = &p.dyn[COST_KIND_POWER];
    price_run r = {0};
    int open = 0;
    for (size_t i = 0; i <= d->n; i++) {
        int64_t imp = COST_UNSET, exp = COST_UNSET;
        if (i < d->n)
            cost_dyn_effective(&p, &d->v[i], &imp, &exp);
        int neg = i < d->n && d->v[i].end > now &&
                  ((imp != COST_UNSET && imp < 0) || (exp != COST_UNSET && exp < 0));
        if (open && (!neg || d->v[i].ts != r.end)) { /* the run ends: tell it once */
            size_t k = 0;
            while (k < ALERTS_PRICE_RUNS && a->run_told[k] != r.start)
                k++;
            if (k == ALERTS_PRICE_RUNS) {
                a->run_told[a->run_next++ % ALERTS_PRICE_RUNS] = r.start;
                tell_run(a, &r, now);
            }
            open = 0;
        }
        if (!neg)
            continue;
        if (!open) {
            r = (price_run){d->v[i].ts, d->v[i].end, COST_UNSET, COST_UNSET, 0, 0};
            open = 1;
        }
        r.end = d->v[i].end;
        if (imp != COST_UNSET && imp < 0 && (r.min_imp == COST_UNSET || imp < r.min_imp)) {
            r.min_imp = imp;
            r.imp_at = d->v[i].ts;
        }
        if (exp != COST_UNSET && exp < 0 && (r.min_exp == COST_UNSET || exp < r.min_exp)) {
            r.min_exp = exp;
            r.exp_at = d->v[i].ts;
        }
    }
    cost_prices_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * The daily alert ([alerts] daily_at): at that local time each day, yesterday's energy, gas and
 * costs of each meter, as GET /api/summary counts them, with how much of the day had readings
 * and how the import compares with the days before. A few meters per tick, while the queue has
 * room, so that a fleet's run does not push other alerts out. Once per meter and day: the
 * alerts table says what an earlier run of p1d told.
 * ------------------------------------------------------------------------------------------- */

/* Unix s of daily_at on the local day holding t. A time the spring change skips (02:30 on the
 * last Sunday of March) is an hour later by the clock (03:30), not before it (01:30). */
static int64_t daily_time(int64_t t, int at)
{
    civil_tm tm, back;
    int64_t out;
    civil_local(t, &tm);
    if (civil_local_fields(tm.year, tm.month, tm.day, at / 3600, at % 3600 / 60, 0, &out) < 0)
        return civil_floor(CIVIL_DAY, t) + at;
    civil_local(out, &back);
    if (back.hour != at / 3600) /* read as summer time: before the change by the clock */
        out += 3600;
    return out;
}

/* An earlier p1d (or this one) told meter `name` of day `day` already (alerts_daily). */
static int daily_told(alerts *a, const char *name, int64_t day)
{
    sqlite3_stmt *st = NULL;
    if (!a->db)
        return 0;
    int told = sqlite3_prepare_v2(a->db, "SELECT 1 FROM alerts_daily WHERE meter = ? AND day = ?",
                                  -1, &st, NULL) == SQLITE_OK &&
               sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
               sqlite3_bind_int64(st, 2, day) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return told;
}

/* Notes that meter `name` was told of day `day` (and forgets the days of more than a week
 * before it). */
static void daily_mark(alerts *a, const char *name, int64_t day)
{
    sqlite3_stmt *st = NULL;
    if (!a->db)
        return;
    int rc = sqlite3_prepare_v2(a->db, "INSERT OR IGNORE INTO alerts_daily VALUES (?, ?)", -1, &st,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, day);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_DONE &&
        (rc = sqlite3_prepare_v2(a->db, "DELETE FROM alerts_daily WHERE day < ?", -1, &st, NULL)) ==
            SQLITE_OK) {
        sqlite3_bind_int64(st, 1, day - 8 * 24 * 3600);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    db_result(a, rc, "note a daily alert");
}

/* The hours of a day that had readings, the first and the last. */
typedef struct daily_cover {
    int hours, steps;
    int64_t first, last; /* step starts; 0 none */
} daily_cover;

static int on_daily_hour(void *user, const store_point *p)
{
    daily_cover *c = user;
    c->steps++;
    if (p->n > 0) {
        c->hours++;
        if (!c->first)
            c->first = p->ts;
        c->last = p->end;
    }
    return 0;
}

/* The days before, hour by hour: a day counts toward the mean only when it is whole, i.e. its
 * first and its last hour have readings, so that its import runs from midnight to midnight (a
 * day p1d started or stopped in would pull the mean down). */
typedef struct daily_before {
    int days;          /* whole days with an import */
    int64_t import_wh; /* their import added up */
    /* the day under way */
    int64_t day, wh;
    int first_read, last_read, has_import;
} daily_before;

static void before_close(daily_before *b)
{
    if (b->day && b->first_read && b->last_read && b->has_import) {
        b->days++;
        b->import_wh += b->wh;
    }
}

static int on_before_hour(void *user, const store_point *p)
{
    daily_before *b = user;
    int64_t day = civil_floor(CIVIL_DAY, p->ts);
    if (day != b->day) {
        before_close(b);
        b->day = day;
        b->wh = 0;
        b->has_import = 0;
        b->first_read = p->ts == day && p->n > 0;
    }
    b->last_read = p->n > 0;
    if (p->n > 0 && p->energy[STORE_E_IMPORT] != STORE_NULL) {
        b->wh += p->energy[STORE_E_IMPORT];
        b->has_import = 1;
    }
    return 0;
}

/* v thousandths (Wh, dm3, MJ) as "8.214". */
static void milli(int64_t v, char *out, size_t cap)
{
    int64_t a = v < 0 ? -v : v;
    snprintf(out, cap, "%s%" PRId64 ".%03" PRId64, v < 0 ? "-" : "", a / 1000, a % 1000);
}

/* Micro-euros as "2.85" or "-0.40" (cents, half away from zero). */
static void money(int64_t v, char *out, size_t cap)
{
    int64_t a = v < 0 ? -v : v, c = (a + 5000) / 10000;
    snprintf(out, cap, "%s%" PRId64 ".%02" PRId64, v < 0 && c ? "-" : "", c / 100, c % 100);
}

/* Appends printf text to buf[cap] at *n, as far as it fits. */
static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    if (*n >= cap)
        return;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0)
        *n = *n + (size_t)k < cap ? *n + (size_t)k : cap;
}

/* The daily alert of meter `name` for the local day starting at `day`. Returns 0, or -1 when the
 * store could not be read (logged). */
static int daily_tell(alerts *a, const char *name, int64_t day)
{
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    int64_t end = civil_next(CIVIL_DAY, day);
    cost_prices prices;
    history_totals t;
    daily_cover cover;
    daily_before before;
    char err[COST_ERR_MAX] = "";
    memset(&cover, 0, sizeof cover);
    memset(&before, 0, sizeof before);
    if (cost_db_load(store_db(a->s), day, end, &prices, err, sizeof err) < 0) {
        log_warn("alerts: cannot read the prices for the daily alert of meter %s: %s", name, err);
        return -1;
    }
    int rc = history_totals_of(a->s, name, day, end, STORE_STEP_1D, &prices, &t);
    cost_prices_free(&prices);
    if (rc == -ENOENT || (rc == 0 && !t.have)) {
        log_debug("alerts: no readings of meter %s on the day before; no daily alert", name);
        return 0;
    }
    if (rc == 0)
        rc = store_series(a->s, name, day, end, STORE_STEP_1H, STORE_SERIES_GAPS, on_daily_hour,
                          &cover);
    int64_t week = day;
    for (int i = 0; i < ALERTS_DAILY_BEFORE; i++)
        week = civil_floor(CIVIL_DAY, week - 1);
    if (rc == 0)
        rc = store_series(a->s, name, week, day, STORE_STEP_1H, STORE_SERIES_GAPS, on_before_hour,
                          &before);
    before_close(&before);
    if (rc < 0 && rc != -ENOENT) {
        log_warn("alerts: cannot read the readings of meter %s for the daily alert: %s", name,
                 strerror(-rc));
        return -1;
    }

    const int64_t *e = t.p.energy;
    char title[ALERTS_TITLE_MAX + 192], msg[ALERTS_MESSAGE_MAX], v[32], w[32], x[32];
    size_t n = 0;
    civil_tm tm;
    civil_local(day, &tm);
    int64_t cost = t.cost.energy + t.cost.gas + t.cost.fixed;
    int priced = t.priced && t.cost.priced;

    int has_imp = e[STORE_E_IMPORT] != STORE_NULL;
    int64_t imp = has_imp ? e[STORE_E_IMPORT] : 0;
    /* "yesterday", or the day itself for a run that went on past midnight (a slow server) */
    char when[48];
    int64_t yday = civil_floor(CIVIL_DAY, civil_floor(CIVIL_DAY, loop_wall_ms() / 1000) - 1);
    snprintf(when, sizeof when, "%s %d %s", days[tm.wday], tm.day, months[tm.month - 1]);
    money(cost, w, sizeof w);
    if (has_imp)
        snprintf(x, sizeof x, "%" PRId64 ".%" PRId64 " kWh", (imp + 50) / 1000,
                 (imp + 50) / 100 % 10);
    else if (e[STORE_E_GAS] != STORE_NULL)
        snprintf(x, sizeof x, "%" PRId64 ".%02" PRId64 " m3 gas", (e[STORE_E_GAS] + 5) / 1000,
                 (e[STORE_E_GAS] + 5) / 10 % 100);
    else
        snprintf(x, sizeof x, "readings");
    snprintf(title, sizeof title, "p1d: %s at meter %s: %s%s%s%s", day == yday ? "yesterday" : when,
             name, x, priced ? ", " : "", priced ? w : "", priced ? " EUR" : "");

    add(msg, sizeof msg, &n, "%s at meter %s:", when, name);
    const char *sep = " ";
    if (has_imp) {
        milli(imp, v, sizeof v);
        add(msg, sizeof msg, &n, " %s kWh imported", v);
        sep = ", ";
    }
    if (e[STORE_E_EXPORT] != STORE_NULL && e[STORE_E_EXPORT] != 0) {
        milli(e[STORE_E_EXPORT], v, sizeof v);
        milli(imp - e[STORE_E_EXPORT], x, sizeof x);
        add(msg, sizeof msg, &n, "%s%s kWh exported (net %s kWh)", sep, v, x);
        sep = ", ";
    }
    static const struct {
        int idx;
        const char *unit;
    } more[] = {{STORE_E_GAS, "m3 gas"}, {STORE_E_WATER, "m3 water"}, {STORE_E_HEAT, "GJ heat"}};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (e[more[i].idx] != STORE_NULL) {
            milli(e[more[i].idx], v, sizeof v);
            add(msg, sizeof msg, &n, "%s%s %s", sep, v, more[i].unit);
            sep = ", ";
        }
    add(msg, sizeof msg, &n, ".");
    if (priced) {
        add(msg, sizeof msg, &n, "\nCosts: %s EUR (", w);
        const char *part = "";
        static const char *const names[] = {"energy", "gas", "fixed"};
        const int64_t parts[] = {t.cost.energy, t.cost.gas, t.cost.fixed};
        for (int i = 0; i < 3; i++)
            if (parts[i] || (i == 0 && has_imp)) {
                money(parts[i], v, sizeof v);
                add(msg, sizeof msg, &n, "%s%s %s", part, names[i], v);
                part = ", ";
            }
        add(msg, sizeof msg, &n, ")");
        if (t.cost.unpriced_wh || t.cost.unpriced_dm3) {
            milli(t.cost.unpriced_wh, v, sizeof v);
            milli(t.cost.unpriced_dm3, w, sizeof w);
            add(msg, sizeof msg, &n, "; %s%s%s%s%s had no price and %s left out",
                t.cost.unpriced_wh ? v : "", t.cost.unpriced_wh ? " kWh" : "",
                t.cost.unpriced_wh && t.cost.unpriced_dm3 ? " and " : "",
                t.cost.unpriced_dm3 ? w : "", t.cost.unpriced_dm3 ? " m3 gas" : "",
                t.cost.unpriced_wh && t.cost.unpriced_dm3 ? "are" : "is");
        }
        add(msg, sizeof msg, &n, ".");
    }
    /* The net power's highest is the import peak; a day that exported has its lowest below 0
     * (a sunny day that only exported: both). */
    const store_stat *pw = &t.p.q[STORE_Q_POWER];
    if (pw->n > 0 && pw->min >= 0)
        add(msg, sizeof msg, &n, "\nHighest power: %" PRId64 " W.", pw->max);
    else if (pw->n > 0 && pw->max > 0)
        add(msg, sizeof msg, &n, "\nHighest power: %" PRId64 " W imported, %" PRId64 " W exported.",
            pw->max, -pw->min);
    else if (pw->n > 0)
        add(msg, sizeof msg, &n, "\nHighest power: %" PRId64 " W exported, nothing imported.",
            -pw->min);
    if (before.days > 0 && e[STORE_E_IMPORT] != STORE_NULL) {
        int64_t mean = (before.import_wh + before.days / 2) / before.days;
        milli(mean, v, sizeof v);
        int64_t d = imp - mean, pct = mean > 0 ? ((d < 0 ? -d : d) * 100 + mean / 2) / mean : 0;
        char span[48];
        if (before.days == ALERTS_DAILY_BEFORE)
            snprintf(span, sizeof span, "the %d days before", before.days);
        else
            snprintf(span, sizeof span, "the %d whole day%s of the %d before", before.days,
                     before.days == 1 ? "" : "s", ALERTS_DAILY_BEFORE);
        if (mean <= 0 || pct == 0)
            add(msg, sizeof msg, &n, "\nAs much as %s, which averaged %s kWh imported a day.", span,
                v);
        else
            add(msg, sizeof msg, &n,
                "\nImported %" PRId64 " %% %s than %s, which averaged %s kWh a day.", pct,
                d < 0 ? "less" : "more", span, v);
    }
    if (cover.hours < cover.steps && cover.first) {
        char f[8], l[8];
        hm(cover.first, 0, f, sizeof f);
        hm(cover.last, 1, l, sizeof l);
        add(msg, sizeof msg, &n, "\nReadings cover %d of the day's %d hours (%s to %s).",
            cover.hours, cover.steps, f, l);
    }
    raise_alert(a, "daily", name, title, msg);
    daily_mark(a, name, day);
    return 0;
}

/* On each tick: plans the next run, and goes on with the one under way. A meter whose figures
 * cannot be read (a store error) is tried again after ALERTS_DAILY_RETRY s, twice as long each
 * time, until the next day's run is due: then its day is given up with an error. */
static void check_daily(alerts *a)
{
    int64_t now = loop_wall_ms() / 1000;
    char when[32]; /* the day under way, "2026-11-27", for the log */
    if (!a->daily_day) {
        /* the first tick: today's time, which may have passed; a clock set back by more than a
         * day: planned anew from it */
        if (!a->daily_next || a->daily_next - now > 25 * 3600)
            a->daily_next = daily_time(now, a->o.daily_at);
        if (now < a->daily_next)
            return;
        a->daily_day = civil_floor(CIVIL_DAY, civil_floor(CIVIL_DAY, now) - 1);
        a->daily_next = daily_time(civil_next(CIVIL_DAY, now), a->o.daily_at);
    }
    /* each meter of the registry as it is now (a reload may add or remove some meanwhile) not
     * told of that day yet, a few per tick while the queues have room */
    int told = 0, waiting = 0;
    civil_format_local(a->daily_day, when, sizeof when);
    when[10] = '\0';
    for (size_t i = 0; i < a->ms->n; i++) {
        const meter *m = a->ms->list[i];
        watched *w = find(a, m->name);
        if (!w || w->daily_day == a->daily_day)
            continue;
        if (w->daily_retry && now >= a->daily_next) {
            log_error("alerts: no daily alert of meter %s for %s: its figures could not be read "
                      "(%d tries)",
                      m->name, when, w->daily_tries);
            w->daily_day = a->daily_day;
            w->daily_retry = 0;
            w->daily_tries = 0;
            continue;
        }
        if (w->daily_retry > now) {
            waiting = 1;
            continue;
        }
        if (told == ALERTS_DAILY_TICK || (a->o.url[0] && a->n >= ALERTS_QUEUE_MAX / 2) ||
            (a->o.mqtt && a->sn >= ALERTS_QUEUE_MAX / 2))
            return; /* on at the next tick, when some went out */
        if (daily_told(a, m->name, a->daily_day)) {
            w->daily_day = a->daily_day;
            continue;
        }
        told++;
        if (daily_tell(a, m->name, a->daily_day) < 0) {
            int64_t wait = (int64_t)ALERTS_DAILY_RETRY << (w->daily_tries < 8 ? w->daily_tries : 8);
            if (wait > ALERTS_DAILY_RETRY_MAX)
                wait = ALERTS_DAILY_RETRY_MAX;
            w->daily_tries++;
            w->daily_retry = now + wait;
            waiting = 1;
            log_warn("alerts: the daily alert of meter %s for %s is tried again in %" PRId64 " s",
                     m->name, when, wait);
            continue;
        }
        w->daily_day = a->daily_day;
        w->daily_retry = 0;
        w->daily_tries = 0;
    }
    if (!waiting)
        a->daily_day = 0; /* every meter told */
}

static void on_tick(void *user)
{
    alerts *a = user;
    if (a->sn)
        sink_flush(a);
    if (a->s && (a->o.events & ALERT_NEGATIVE_PRICE))
        check_prices(a);
    if (a->s && (a->o.events & ALERT_DAILY))
        check_daily(a);
    int64_t now = loop_now_ms();
    char title[ALERTS_TITLE_MAX], msg[ALERTS_MESSAGE_MAX], when[16];
    for (size_t i = 0; i < a->ms->n; i++) {
        const meter *m = a->ms->list[i];
        const meter_sample *s = meter_latest(m);
        watched *w = s ? find(a, m->name) : NULL;
        if (!w || w->silent || !w->seen || now - s->received_mono_ms < a->o.stale_ms)
            continue;
        w->silent = 1;
        w->silent_since = s->received_ms;
        if (!(a->o.events & ALERT_STALE))
            continue;
        hhmm(s->received_ms, when, sizeof when);
        snprintf(title, sizeof title, "p1d: meter %s is silent", m->name);
        snprintf(msg, sizeof msg, "No telegram from meter %s since %s (%" PRId64 " s)%s%s.",
                 m->name, when, (now - s->received_mono_ms) / 1000, m->last_error[0] ? ": " : "",
                 m->last_error);
        raise_alert(a, "stale", m->name, title, msg);
    }
    loop_timer_arm(a->tick, 1000);
}

/* The members of an alert's JSON ("event", "meter", "title", "message", "time") into the open
 * object of w. */
static void alert_members(json_w *w, const alert *x)
{
    char at[48];
    time_t t = (time_t)(x->at_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_kv_str(w, "event", x->event);
    if (x->meter[0])
        json_kv_str(w, "meter", x->meter);
    else
        json_kv_null(w, "meter"); /* about no meter: the prices */
    json_kv_str(w, "title", x->title);
    json_kv_str(w, "message", x->message);
    json_kv_str(w, "time", at);
}

/* The alert as JSON ({"event", "meter", "title", "message", "time"}) into buf[cap]; its length,
 * or 0 when it does not fit. */
static size_t alert_json(const alert *x, char *buf, size_t cap)
{
    json_w w;
    json_init_fixed(&w, buf, cap, 0);
    json_obj_begin(&w);
    alert_members(&w, x);
    json_obj_end(&w);
    return json_ok(&w) ? w.len : 0;
}

int alerts_route(pub *p, const http_req *req, http_reply *out)
{
    if (strcmp(req->path, "/api/alerts") != 0)
        return 0;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        out->allow = "GET, HEAD, OPTIONS";
        return http_reply_error(out, 405, "method_not_allowed",
                                "only GET, HEAD and OPTIONS are allowed");
    }
    alerts *a = p ? p->impl : NULL;
    json_w w;
    if (json_init_alloc(&w, 4096, (size_t)ALERTS_RECENT_MAX * (ALERTS_MESSAGE_MAX * 6 + 1024), 0) <
        0)
        return http_reply_error(out, 500, "internal", "out of memory");
    json_obj_begin(&w);
    json_kv_bool(&w, "enabled", a != NULL);
    json_key(&w, "alerts");
    json_arr_begin(&w);
    for (size_t i = 0; a && i < a->rn; i++) {
        const recent *r = recent_at(a, i);
        json_obj_begin(&w);
        alert_members(&w, &r->x);
        if (r->url != WAY_NONE)
            json_kv_str(&w, "url", way_names[r->url]);
        if (r->mqtt != WAY_NONE)
            json_kv_str(&w, "mqtt", way_names[r->mqtt]);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    if (!json_ok(&w)) {
        json_free(&w);
        return http_reply_error(out, 500, "internal", "out of memory");
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = w.buf;
    out->len = w.len;
    return 1;
}

/* The request for the oldest alert: its body and headers. Returns 0, or -1 out of memory. */
static int build(alerts *a, const alert *x)
{
    if (a->headers) {
        a->cu->slist_free_all(a->headers);
        a->headers = NULL;
    }
    char line[ALERTS_TITLE_MAX + 16];
    struct curl_slist *h = NULL;
    if (a->o.json) {
        if (!alert_json(x, a->body, sizeof a->body))
            return -1;
        h = a->cu->slist_append(h, "Content-Type: application/json");
    } else {
        snprintf(a->body, sizeof a->body, "%s", x->message);
        h = a->cu->slist_append(h, "Content-Type: text/plain; charset=utf-8");
        snprintf(line, sizeof line, "Title: %s", x->title); /* ntfy's title */
        if (h)
            h = a->cu->slist_append(h, line);
        /* ntfy's tags (an emoji on the phone) and priority: an overload needs someone now */
        static const struct {
            const char *event, *tag, *priority;
        } look[] = {{"back", "white_check_mark", "default"},
                    {"overload", "zap", "high"},
                    {"negative_price", "moneybag", "default"},
                    {"power_failure", "warning", "high"},
                    {"daily", "bar_chart", "low"}};
        const char *tag = "warning", *prio = "default";
        for (size_t i = 0; i < sizeof look / sizeof look[0]; i++)
            if (strcmp(x->event, look[i].event) == 0) {
                tag = look[i].tag;
                prio = look[i].priority;
            }
        snprintf(line, sizeof line, "Tags: %s", tag);
        if (h)
            h = a->cu->slist_append(h, line);
        snprintf(line, sizeof line, "Priority: %s", prio);
        if (h)
            h = a->cu->slist_append(h, line);
    }
    if (h && a->o.header[0])
        h = a->cu->slist_append(h, a->o.header);
    if (h)
        h = a->cu->slist_append(h, "Expect:");
    if (!h)
        return -1;
    a->headers = h;
    a->cu->easy_setopt(a->easy, CURLOPT_HTTPHEADER, h);
    a->cu->easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
    a->cu->easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
    return 0;
}

/* The server's answer: its start is kept for a failure's log line, the rest read and dropped
 * (libcurl would write it to standard output). */
static size_t on_reply(char *data, size_t size, size_t n, void *user)
{
    alerts *a = user;
    size_t len = size * n;
    for (size_t i = 0; i < len && a->reply_len + 1 < sizeof a->reply; i++) {
        unsigned char c = (unsigned char)data[i];
        a->reply[a->reply_len++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    a->reply[a->reply_len] = '\0';
    return len;
}

static void on_done(void *user, CURL *easy, CURLcode result);

static void post_next(alerts *a)
{
    while (a->n && loop_wall_ms() - a->q[a->head].at_ms > ALERTS_KEEP_MS) {
        log_warn("alerts: '%s' could not be delivered for a day; dropped", a->q[a->head].title);
        done_head(a, 0);
    }
    if (!a->n || a->busy)
        return;
    a->reply_len = 0;
    a->reply[0] = '\0';
    if (build(a, &a->q[a->head]) < 0 || curl_loop_add(a->cl, a->easy, on_done, a) < 0) {
        log_error("alerts: cannot send '%s': out of memory; dropped", a->q[a->head].title);
        done_head(a, 0);
        return;
    }
    a->busy = 1;
    a->st.requests++;
}

static void on_retry(void *user)
{
    alerts *a = user;
    post_next(a);
}

static void on_done(void *user, CURL *easy, CURLcode result)
{
    alerts *a = user;
    long status = 0;
    a->busy = 0;
    a->cu->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    const alert *x = &a->q[a->head];
    int ok = result == CURLE_OK && status >= 200 && status <= 299;
    char why[160] = ""; /* what went wrong: libcurl's words, or the status and the answer */
    if (result != CURLE_OK)
        snprintf(why, sizeof why, "%s", a->cu->easy_strerror(result));
    else if (!ok)
        snprintf(why, sizeof why, "HTTP %ld%s%.100s", status, a->reply[0] ? ": " : "", a->reply);
    if (a->test_fn) {
        alerts_test_fn fn = a->test_fn;
        a->test_fn = NULL;
        done_head(a, ok);
        fn(a->test_user, ok, why);
        return;
    }
    if (ok) {
        if (a->failures)
            log_info("alerts: %s works again (after %" PRIu64 " failure%s)", a->shown, a->failures,
                     a->failures == 1 ? "" : "s");
        a->failures = 0;
        a->backoff_ms = 0;
        a->st.state = PUB_IDLE;
        a->st.last_ok_ms = loop_wall_ms();
        a->st.last_error[0] = '\0';
        done_head(a, 1);
        post_next(a);
        return;
    }
    a->st.failures++;
    if (result == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
        log_error("alerts: %s refused '%s' (%s); dropped: check [alerts] url and header", a->shown,
                  x->title, why);
        snprintf(a->st.last_error, sizeof a->st.last_error, "%s; the alert was dropped", why);
        a->st.state = status == 401 || status == 403 ? PUB_AUTH_FAILED : PUB_IDLE;
        done_head(a, 0);
        post_next(a);
        return;
    }
    snprintf(a->st.last_error, sizeof a->st.last_error, "%s", why);
    a->st.state = PUB_RETRYING;
    watched *w = x->meter[0] ? find(a, x->meter) : NULL;
    if (w)
        w->retries++;
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : ALERTS_RETRY_MIN;
    if (a->backoff_ms > ALERTS_RETRY_MAX)
        a->backoff_ms = ALERTS_RETRY_MAX;
    log_msg(a->failures ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
            "alerts: sending to %s failed: %s; trying again in %" PRId64 " s (%zu waiting)",
            a->shown, why, a->backoff_ms / 1000, a->n);
    a->failures++;
    a->retry_at = loop_now_ms() + a->backoff_ms;
    loop_timer_arm(a->retry, a->backoff_ms);
}

/* pub: the alerts of meter waiting, and what became of its alerts since start. */
static int alerts_lag(void *impl, const char *name, outbox_lag *out)
{
    alerts *a = impl;
    const watched *w = lookup(a, name);
    if (!w)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    int64_t now = loop_wall_ms(), oldest = 0;
    /* waiting on the publisher's way out: the URL, or else MQTT */
    const alert *q = a->o.url[0] ? a->q : a->sq;
    size_t head = a->o.url[0] ? a->head : a->shead, n = a->o.url[0] ? a->n : a->sn;
    for (size_t i = 0; i < n; i++) {
        const alert *x = &q[(head + i) % ALERTS_QUEUE_MAX];
        if (strcmp(x->meter, name) != 0)
            continue;
        out->readings++;
        if (!oldest)
            oldest = x->at_ms;
    }
    out->seconds = oldest && now > oldest ? (now - oldest) / 1000 : 0;
    out->cursor = w->last_sent;
    out->delivered = w->delivered;
    out->retries = w->retries;
    out->parked = w->dropped;
    return 0;
}

static void alerts_status(void *impl, pub_status *out)
{
    alerts *a = impl;
    *out = a->st;
    if (a->busy && a->st.state != PUB_RETRYING)
        out->state = PUB_SENDING;
    if (a->backoff_ms && !a->busy) {
        int64_t left = a->retry_at - loop_now_ms();
        out->retry_in_ms = left > 0 ? left : 0;
    }
}

static void alerts_free(void *impl);

/* Moves old's ring (from, *fhead, *fn) into new's, which is empty (head 0), oldest first. */
static void move_queue(alert *to, size_t *tn, alert *from, size_t *fhead, size_t *fn)
{
    for (; *fn; *fhead = (*fhead + 1) % ALERTS_QUEUE_MAX, (*fn)--)
        to[(*tn)++] = from[*fhead];
}

int alerts_take_over(pub *p, pub *old_pub)
{
    alerts *a = p->impl, *old = old_pub->impl;
    if (old->nw) {
        watched *w = malloc(old->nw * sizeof *w);
        if (!w)
            return -1;
        memcpy(w, old->w, old->nw * sizeof *w);
        free(a->w);
        a->w = w;
        a->nw = a->capw = old->nw;
    }
    memcpy(a->run_told, old->run_told, sizeof a->run_told);
    a->run_next = old->run_next;
    a->st.requests = old->st.requests;
    a->st.failures = old->st.failures;
    a->st.delivered = old->st.delivered;
    a->st.parked = old->st.parked;
    a->st.last_ok_ms = old->st.last_ok_ms;
    memcpy(a->rec, old->rec, sizeof a->rec);
    a->rnext = old->rnext;
    a->rn = old->rn;
    a->seq = old->seq;
    a->db_failing = old->db_failing;
    /* a way p no longer has: what waits there is dropped (the table keeps it waiting: a start
     * without that way marks it dropped then) */
    for (size_t i = 0; i < a->rn; i++) {
        recent *r = &a->rec[i];
        if (r->url == WAY_WAITING && !a->o.url[0])
            r->url = WAY_DROPPED;
        if (r->mqtt == WAY_WAITING && !a->o.mqtt)
            r->mqtt = WAY_DROPPED;
    }
    size_t moved = 0; /* a is new: nothing raised yet, both its queues empty */
    if (a->o.url[0] && old->n) {
        /* the one in flight too: abandoned by old, sent again (at least once) */
        moved += old->n;
        move_queue(a->q, &a->n, old->q, &old->head, &old->n);
    }
    if (a->o.mqtt && old->sn) {
        moved += old->sn;
        move_queue(a->sq, &a->sn, old->sq, &old->shead, &old->sn);
        a->sink_waiting = old->sink_waiting;
    }
    if (moved)
        log_info("alerts: %zu waiting alert%s kept over the reload", moved, moved == 1 ? "" : "s");
    if (a->n && !a->busy)
        post_next(a);
    return 0;
}

/* Puts r, restored from the table, back on its way out on the URL (url) or MQTT (!url) when it
 * waits there, p1d still sends that way and it is less than ALERTS_KEEP_MS old; else marked
 * dropped (mark(): the table and the recent copy). Returns 1 when queued. */
static int requeue(alerts *a, const recent *r, int url, int64_t now)
{
    if ((url ? r->url : r->mqtt) != WAY_WAITING)
        return 0;
    if (!(url ? a->o.url[0] != '\0' : a->o.mqtt) || now - r->x.at_ms > ALERTS_KEEP_MS) {
        mark(a, r->x.seq, url, WAY_DROPPED);
        return 0;
    }
    alert *q = url ? a->q : a->sq;
    size_t *head = url ? &a->head : &a->shead, *n = url ? &a->n : &a->sn;
    if (*n == ALERTS_QUEUE_MAX) { /* more than fit: the oldest goes, as when raised */
        mark(a, q[*head].seq, url, WAY_DROPPED);
        *head = (*head + 1) % ALERTS_QUEUE_MAX;
        (*n)--;
    }
    q[(*head + *n) % ALERTS_QUEUE_MAX] = r->x;
    (*n)++;
    return 1;
}

int alerts_restore(pub *p)
{
    alerts *a = p->impl;
    sqlite3_stmt *st = NULL;
    if (!a->db)
        return 0;
    /* the newest ALERTS_RECENT_MAX rows, then every one still waiting, each oldest first */
    static const char *const sql[] = {
        "SELECT * FROM (SELECT seq, at_ms, event, meter, title, message, url, mqtt FROM alerts "
        "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        "SELECT seq, at_ms, event, meter, title, message, url, mqtt FROM alerts WHERE "
        "url = 'waiting' OR mqtt = 'waiting' ORDER BY seq"};
    int64_t now = loop_wall_ms();
    size_t kept = 0, waiting = 0, skipped = 0;
    int rc = SQLITE_OK;
    for (int pass = 0; pass < 2 && rc == SQLITE_OK; pass++) {
        rc = sqlite3_prepare_v2(a->db, sql[pass], -1, &st, NULL);
        if (rc == SQLITE_OK && pass == 0)
            rc = sqlite3_bind_int(st, 1, ALERTS_RECENT_MAX);
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            recent r;
            rc = SQLITE_OK;
            if (row_recent(st, &r) < 0) {
                skipped += pass == 0;
                continue;
            }
            if (pass == 0) {
                a->rec[a->rnext] = r;
                a->rnext = (a->rnext + 1) % ALERTS_RECENT_MAX;
                if (a->rn < ALERTS_RECENT_MAX)
                    a->rn++;
                kept++;
                continue;
            }
            waiting += (size_t)requeue(a, &r, 1, now) + (size_t)requeue(a, &r, 0, now);
        }
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc != SQLITE_OK) {
        log_warn("alerts: cannot read the alerts of before the start from the store: %s",
                 sqlite3_errmsg(a->db));
        return -1;
    }
    if (skipped)
        log_warn("alerts: %zu row%s of the alerts table not understood; left out", skipped,
                 skipped == 1 ? "" : "s");
    if (waiting)
        log_info("alerts: %zu alert%s waiting from before the start; sending", waiting,
                 waiting == 1 ? "" : "s");
    else if (kept)
        log_debug("alerts: %zu recent alert%s kept from before the start", kept,
                  kept == 1 ? "" : "s");
    if (a->n && !a->busy && a->easy)
        post_next(a);
    if (a->sn)
        sink_flush(a);
    return 0;
}

int alerts_mqtt_before(store *s)
{
    sqlite3_stmt *st = NULL;
    int yes = sqlite3_prepare_v2(store_db(s), "SELECT 1 FROM alerts WHERE mqtt IS NOT NULL LIMIT 1",
                                 -1, &st, NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes; /* no table: never */
}

void alerts_set_sink(pub *p, alerts_sink_fn fn, void *user)
{
    alerts *a = p->impl;
    a->sink = fn;
    a->sink_user = user;
}

void alerts_test(pub *p, alerts_test_fn fn, void *user)
{
    alerts *a = p->impl;
    char host[128] = "this machine";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "this machine");
    host[sizeof host - 1] = '\0';
    char msg[ALERTS_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "A test alert from p1d on %s: its alerts reach you here.", host);
    a->test_fn = fn;
    a->test_user = user;
    raise_alert(a, "test", "", "p1d: test alert", msg);
}

pub *alerts_new(loop *l, meters *ms, store *s, const alerts_options *o, char *err, size_t cap)
{
    char dlerr[256];
    const dl_curl *cu = NULL; /* alerts on MQTT alone need no libcurl */
    if (o->url[0] && !(cu = dl_curl_load(dlerr, sizeof dlerr))) {
        snprintf(err, cap, "[alerts] url: %s; no alerts are sent", dlerr);
        errno = ELIBACC;
        return NULL;
    }
    alerts *a = calloc(1, sizeof *a);
    if (!a)
        goto oom;
    a->pub = (pub){"alerts", a, alerts_lag, alerts_status, alerts_free};
    a->ms = ms;
    a->s = s;
    a->o = *o;
    a->cu = cu;
    config_url_shown(o->url, a->shown, sizeof a->shown);
    if (s) {
        char *msg = NULL;
        sqlite3_stmt *st = NULL;
        /* the numbers go on from the newest kept, so that none is written twice */
        if (sqlite3_exec(store_db(s), alerts_schema, NULL, NULL, &msg) == SQLITE_OK &&
            sqlite3_exec(store_db(s), daily_schema, NULL, NULL, &msg) == SQLITE_OK &&
            sqlite3_prepare_v2(store_db(s), "SELECT max(seq) FROM alerts", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            a->db = store_db(s);
            a->seq = (uint64_t)(sqlite3_column_int64(st, 0) > 0 ? sqlite3_column_int64(st, 0) : 0);
        } else
            log_warn("alerts: cannot make the alerts table in the store: %s; a restart forgets "
                     "the alerts",
                     msg ? msg : sqlite3_errmsg(store_db(s)));
        sqlite3_finalize(st);
        sqlite3_free(msg);
    }
    a->tick = loop_timer_new(l, on_tick, a);
    a->retry = loop_timer_new(l, on_retry, a);
    if (!a->tick || !a->retry || meters_hook(ms, on_reading, a) < 0)
        goto oom;
    if (!cu) {
        loop_timer_arm(a->tick, 1000);
        log_info("alerts: will be published on MQTT only");
        return &a->pub;
    }
    a->cl = curl_loop_new(l, cu);
    a->easy = cu->easy_init();
    if (!a->cl || !a->easy)
        goto oom;
    cu->easy_setopt(a->easy, CURLOPT_URL, o->url);
    cu->easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    cu->easy_setopt(a->easy, CURLOPT_USERAGENT, "p1d/" P1_VERSION);
    cu->easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_reply);
    cu->easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
    loop_timer_arm(a->tick, 1000);
    /* what will happen, not what did: --test-alert logs this before its alert fails */
    log_info("alerts: will be sent to %s%s", a->shown, o->mqtt ? " and published on MQTT" : "");
    return &a->pub;
oom:
    snprintf(err, cap, "alerts: out of memory");
    alerts_free(a);
    return NULL;
}

static void alerts_free(void *impl)
{
    alerts *a = impl;
    if (!a)
        return;
    meters_unhook(a->ms, on_reading, a);
    const char *kept =
        a->db && !a->db_failing ? " yet; the store keeps them for the next start" : "";
    if (a->n)
        log_warn("alerts: %zu alert%s not delivered%s", a->n, a->n == 1 ? "" : "s", kept);
    if (a->sn)
        log_warn("alerts: %zu alert%s not published on MQTT%s", a->sn, a->sn == 1 ? "" : "s", kept);
    if (a->easy) {
        curl_loop_remove(a->cl, a->easy);
        a->cu->easy_cleanup(a->easy);
    }
    if (a->headers)
        a->cu->slist_free_all(a->headers);
    if (a->cl)
        curl_loop_free(a->cl);
    loop_timer_del(a->tick);
    loop_timer_del(a->retry);
    free(a->w);
    free(a);
}
