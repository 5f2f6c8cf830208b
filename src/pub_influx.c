/* pub_influx.c: the InfluxDB publisher: outbox batches as line protocol, one request in flight,
 * acknowledged on 204, retried with backoff on 5xx, 3xx and network errors (no sooner than a
 * Retry-After asks), smaller batches on 413, parked on other 4xx. */
#define _GNU_SOURCE
#include "pub_influx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_loop.h"
#include "log.h"
#include "pub_payload.h"

#define PI_NAME_MAX     64 /* store_meter_info.name */
#define PI_BODY_INITIAL (64 << 10)

/* The points of one meter in the request being sent. */
typedef struct pi_part {
    char name[PI_NAME_MAX];
    int64_t last_ts;
    uint64_t points;
} pi_part;

typedef struct pub_influx {
    pub face;
    loop *l;
    store *s;
    outbox *ob;
    pub_influx_options o;
    const dl_curl *cu; /* libcurl, loaded when the publisher starts */
    curl_loop *cl;
    CURL *easy;
    struct curl_slist *headers;
    char url[3 * PUB_INFLUX_STR_MAX + 64];
    char shown[PUB_INFLUX_STR_MAX]; /* o.url for logs: a user:password@ without the password */
    loop_timer *timer;
    int busy; /* a request is in flight */
    char *body;
    size_t len, cap;
    char reply[PUB_INFLUX_REPLY_MAX];
    size_t reply_len;
    pi_part *parts;
    size_t nparts, capparts;
    char (*names)[PI_NAME_MAX]; /* meters of the store, refreshed every batch */
    size_t nnames, capnames;
    size_t next_meter; /* round-robin start, so one meter's backlog cannot starve others */
    store_point *pts;
    int batch;     /* lines per request; halved on 413, doubled per success up to batch_max */
    int batch_max; /* the configured batch */
    int lines;     /* lines in the request in flight */
    int too_large; /* a 413 was logged; cleared when a request of batch_max lines is accepted */
    int good;      /* lines of the last accepted request */
    int ceiling;   /* after a 413: the batch grows no larger than this until ceiling_until */
    int64_t ceiling_until;
    int64_t backoff_ms;
    int failing; /* the current outage was logged */
    char parked_why[PUB_ERR_MAX]; /* the refusal last logged: the same one again is counted ... */
    uint64_t parked_quiet;        /* ... here instead, and summed up when a write is accepted */
    pub_status st;
} pub_influx;

int pub_influx_options_from_config(const config *c, pub_influx_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->url, sizeof o->url, "%s", c->influx_url);
    snprintf(o->database, sizeof o->database, "%s", c->influx_database);
    snprintf(o->bucket, sizeof o->bucket, "%s", c->influx_bucket);
    snprintf(o->org, sizeof o->org, "%s", c->influx_org);
    snprintf(o->username, sizeof o->username, "%s", c->influx_username);
    snprintf(o->password, sizeof o->password, "%s", c->influx_password);
    snprintf(o->password_file, sizeof o->password_file, "%s", c->influx_password_file);
    snprintf(o->token, sizeof o->token, "%s", c->influx_token);
    snprintf(o->token_file, sizeof o->token_file, "%s", c->influx_token_file);
    snprintf(o->measurement, sizeof o->measurement, "%s", c->influx_measurement);
    o->rate = c->influx_rate == 1   ? OUTBOX_INTERVAL
              : c->influx_rate == 2 ? OUTBOX_MINUTE
                                    : OUTBOX_EVERY;
    o->interval_s = c->influx_interval / 1000;
    o->batch = (int)c->influx_batch;
    o->timeout_ms = c->influx_timeout;
    return c->influx_enabled && c->influx_url[0];
}

static void set_error(pub_influx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(pub_influx *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->st.last_error, sizeof p->st.last_error, fmt, ap);
    va_end(ap);
}

static void retry_later(pub_influx *p, int64_t ms)
{
    /* Up to a quarter of jitter so many sites do not retry in lockstep. */
    int64_t jitter = ms / 4 > 0 ? (int64_t)(random() % (ms / 4 + 1)) : 0;
    p->st.retry_in_ms = ms + jitter;
    loop_timer_arm(p->timer, ms + jitter);
}

/* The next delay: doubling from the minimum, but no sooner than the server's Retry-After
 * (retry_after_s, 0 none), capped at the maximum either way. */
static int64_t next_backoff(pub_influx *p, int64_t retry_after_s)
{
    p->backoff_ms =
        p->backoff_ms < PUB_INFLUX_BACKOFF_MIN_MS ? PUB_INFLUX_BACKOFF_MIN_MS : p->backoff_ms * 2;
    if (retry_after_s > 0 && p->backoff_ms < retry_after_s * 1000)
        p->backoff_ms = retry_after_s < PUB_INFLUX_BACKOFF_MAX_MS / 1000
                            ? retry_after_s * 1000
                            : PUB_INFLUX_BACKOFF_MAX_MS;
    if (p->backoff_ms > PUB_INFLUX_BACKOFF_MAX_MS)
        p->backoff_ms = PUB_INFLUX_BACKOFF_MAX_MS;
    return p->backoff_ms;
}

static void backoff(pub_influx *p)
{
    p->st.state = PUB_RETRYING;
    retry_later(p, next_backoff(p, 0));
}

static int meter_cb(void *user, const store_meter_info *m)
{
    pub_influx *p = user;
    if (p->nnames == p->capnames) {
        size_t cap = p->capnames ? p->capnames * 2 : 16;
        void *n = realloc(p->names, cap * sizeof *p->names);
        if (!n)
            return -ENOMEM;
        p->names = n;
        p->capnames = cap;
    }
    snprintf(p->names[p->nnames++], PI_NAME_MAX, "%s", m->name);
    return 0;
}

/* Appends a point's line, growing the body up to PUB_INFLUX_BODY_MAX. 1 added, 0 nothing to
 * send (a gap), -1 full. */
static int append_line(pub_influx *p, const char *meter_name, const store_point *pt)
{
    for (;;) {
        int rc = pub_payload_influx(p->body, p->cap, &p->len, p->o.measurement, meter_name, pt);
        if (rc >= 0)
            return rc;
        if (p->cap >= PUB_INFLUX_BODY_MAX)
            return -1;
        size_t cap = p->cap * 2 > PUB_INFLUX_BODY_MAX ? PUB_INFLUX_BODY_MAX : p->cap * 2;
        char *n = realloc(p->body, cap);
        if (!n)
            return -1;
        p->body = n;
        p->cap = cap;
    }
}

/* Moves the cursors past the parts written. Returns 0, or the negative errno of the first part
 * whose delivery the database did not record (its points are written again later; *bad names
 * its meter). */
static int ack_parts(pub_influx *p, const char **bad)
{
    int first = 0;
    for (size_t i = 0; i < p->nparts; i++) {
        int rc = outbox_ack(p->ob, p->parts[i].name, p->parts[i].last_ts);
        if (rc < 0) {
            if (!first) {
                first = rc;
                *bad = p->parts[i].name;
            }
            continue;
        }
        p->st.delivered += p->parts[i].points;
    }
    return first;
}

/* The database did not record a delivery (disk full, read-only, locked): the points stay in the
 * outbox and go out again with backoff, not at once in a loop; logged once per episode. */
static void not_recorded(pub_influx *p, const char *name, int rc)
{
    set_error(p, "%s: cannot record the delivery in the database: %s", name, strerror(-rc));
    if (!p->failing)
        log_error("influxdb: %s: cannot record the delivery in the database: %s; the points are "
                  "written again with backoff (no duplicates), nothing is lost",
                  name, strerror(-rc));
    p->failing = 1;
    backoff(p);
}

/* A write failed and its points stay in the outbox: one more attempt for every meter in it. */
static void count_retries(pub_influx *p)
{
    for (size_t i = 0; i < p->nparts; i++)
        outbox_count_retry(p->ob, p->parts[i].name);
}

/* Fills the body with up to `batch` lines from the meters' outboxes. Returns the lines. */
static int build_batch(pub_influx *p)
{
    p->len = 0;
    p->nparts = 0;
    p->nnames = 0;
    if (store_meters(p->s, meter_cb, p) < 0)
        return 0;
    int lines = 0;
    for (size_t k = 0; k < p->nnames && lines < p->batch; k++) {
        const char *name = p->names[(p->next_meter + k) % p->nnames];
        size_t max = (size_t)(p->batch - lines);
        if (max > OUTBOX_BATCH_MAX)
            max = OUTBOX_BATCH_MAX;
        int n = outbox_fetch(p->ob, name, p->pts, max);
        if (n <= 0)
            continue;
        if (p->nparts == p->capparts) {
            size_t cap = p->capparts ? p->capparts * 2 : 16;
            pi_part *np = realloc(p->parts, cap * sizeof *np);
            if (!np)
                break;
            p->parts = np;
            p->capparts = cap;
        }
        pi_part *part = &p->parts[p->nparts];
        int taken = 0;
        for (int i = 0; i < n; i++) {
            int rc = append_line(p, name, &p->pts[i]);
            if (rc < 0)
                break;
            lines += rc;
            taken++;
        }
        if (taken == 0)
            break;
        snprintf(part->name, sizeof part->name, "%s", name);
        part->last_ts = p->pts[taken - 1].ts;
        part->points = (uint64_t)taken;
        p->nparts++;
        if (taken < n)
            break; /* the body is full */
    }
    if (p->nnames)
        p->next_meter = (p->next_meter + 1) % p->nnames;
    return lines;
}

static void on_done(void *user, CURL *easy, CURLcode result);

static void on_timer(void *user)
{
    pub_influx *p = user;
    if (p->busy)
        return;
    p->st.retry_in_ms = 0;
    int lines = build_batch(p);
    if (p->nparts == 0) {
        if (p->st.state != PUB_AUTH_FAILED)
            p->st.state = PUB_IDLE;
        loop_timer_arm(p->timer, PUB_INFLUX_POLL_MS);
        return;
    }
    if (lines == 0) { /* only gaps: nothing to write, just move on */
        const char *bad = NULL;
        int rc = ack_parts(p, &bad);
        p->nparts = 0;
        if (rc < 0)
            not_recorded(p, bad, rc);
        else
            loop_timer_arm(p->timer, 0);
        return;
    }
    p->reply_len = 0;
    p->reply[0] = '\0';
    p->cu->easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
    p->cu->easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->len);
    if (curl_loop_add(p->cl, p->easy, on_done, p) < 0) {
        set_error(p, "cannot start a request");
        backoff(p);
        return;
    }
    p->busy = 1;
    p->lines = lines;
    p->st.requests++;
    if (p->st.state != PUB_AUTH_FAILED)
        p->st.state = PUB_SENDING;
}

/* One line of the reply for the log: InfluxDB answers {"error":"..."}. */
static const char *reply_text(pub_influx *p)
{
    for (size_t i = 0; i < p->reply_len; i++)
        if (p->reply[i] == '\n' || p->reply[i] == '\r' || (unsigned char)p->reply[i] < 0x20)
            p->reply[i] = ' ';
    if (p->reply_len > 200)
        p->reply_len = 200;
    /* InfluxDB ends its JSON with a newline: no trailing blank in the log and last_error */
    while (p->reply_len > 0 && p->reply[p->reply_len - 1] == ' ')
        p->reply_len--;
    p->reply[p->reply_len] = '\0';
    return p->reply_len ? p->reply : "(empty reply)";
}

static void on_done(void *user, CURL *easy, CURLcode result)
{
    pub_influx *p = user;
    long status = 0;
    p->busy = 0;
    p->cu->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK && status == 204) {
        p->st.last_ok_ms = loop_wall_ms();
        p->good = p->lines;
        int limit = p->batch_max;
        if (p->ceiling && loop_now_ms() < p->ceiling_until)
            limit = p->ceiling;
        else
            p->ceiling = 0;
        if (p->batch < limit) /* after a 413: grow back, doubling per success */
            p->batch = p->batch > limit / 2 ? limit : p->batch * 2;
        if (p->too_large && p->lines >= p->batch_max) {
            log_info("influxdb: requests of %d lines are accepted again", p->lines);
            p->too_large = 0;
        }
        const char *bad = NULL;
        int rc = ack_parts(p, &bad);
        p->nparts = 0;
        if (rc < 0) {
            not_recorded(p, bad, rc);
            return;
        }
        if (p->failing)
            log_info("influxdb: writing again");
        p->failing = 0;
        if (p->parked_quiet)
            log_info("influxdb: %" PRIu64 " more points were refused (%s) and parked before "
                     "this write was accepted",
                     p->parked_quiet, p->parked_why);
        p->parked_quiet = 0;
        p->parked_why[0] = '\0';
        p->backoff_ms = 0;
        p->st.state = PUB_SENDING;
        p->st.last_error[0] = '\0';
        loop_timer_arm(p->timer, 0);
        return;
    }
    p->st.failures++;
    if (result != CURLE_OK) {
        count_retries(p);
        set_error(p, "%s", p->cu->easy_strerror(result));
        if (!p->failing)
            log_warn("influxdb: write to %s failed: %s; retrying with backoff, nothing is lost",
                     p->shown, p->cu->easy_strerror(result));
        p->failing = 1;
        backoff(p);
        return;
    }
    const char *why = reply_text(p);
    set_error(p, "HTTP %ld: %.200s", status, why);
    if (status == 401 || status == 403 || status == 404) {
        /* Credentials or the database/bucket are wrong: an operator must act; no retry storm.
         * p1d never creates the database or bucket, so a 404 names the one to create. */
        char hint[2 * sizeof p->o.database + 64] = "";
        if (status == 404 && p->o.database[0])
            snprintf(hint, sizeof hint, "; does database %s exist? (CREATE DATABASE \"%s\")",
                     p->o.database, p->o.database);
        else if (status == 404)
            snprintf(hint, sizeof hint, "; does bucket %s exist in org %s?", p->o.bucket, p->o.org);
        if (p->st.state != PUB_AUTH_FAILED)
            log_error("influxdb: %s refused the write (HTTP %ld: %s)%s; retrying every %d min, "
                      "nothing is lost meanwhile",
                      p->shown, status, why, hint, PUB_INFLUX_AUTH_BACKOFF_MS / 60000);
        p->st.state = PUB_AUTH_FAILED;
        p->failing = 1;
        count_retries(p);
        retry_later(p, PUB_INFLUX_AUTH_BACKOFF_MS);
        return;
    }
    if (status >= 300 && status < 400) {
        /* InfluxDB never redirects a write; a proxy or a wrong url does (http:// of an https://
         * server). Not the points' fault, and curl would resend a POST as a GET: not followed. */
        char *to = NULL;
        p->cu->easy_getinfo(easy, CURLINFO_REDIRECT_URL, &to);
        set_error(p, "HTTP %ld: redirected to %.200s", status, to ? to : "(no Location)");
        if (!p->failing)
            log_error("influxdb: %s redirects the write (HTTP %ld) to %s; p1d does not follow "
                      "redirects: set url to the address that takes the writes; retrying with "
                      "backoff, nothing is lost",
                      p->shown, status, to ? to : "(no Location)");
        p->failing = 1;
        count_retries(p);
        backoff(p);
        return;
    }
    if (status >= 500 || status == 429 || status == 408 || status < 400) {
        /* A 2xx other than 204 is no InfluxDB reply (a proxy's page): not delivered. A 429 or
         * 503 may say when to come back (Retry-After, seconds or a date): not sooner. */
        curl_off_t ra = 0;
        if (p->cu->easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra < 0)
            ra = 0;
        p->st.state = PUB_RETRYING;
        int64_t ms = next_backoff(p, (int64_t)ra);
        if (!p->failing && ra > 0)
            log_warn("influxdb: write to %s failed (HTTP %ld: %s); the server asks for a pause "
                     "(Retry-After): trying again in %" PRId64 " s, nothing is lost",
                     p->shown, status, why, ms / 1000);
        else if (!p->failing)
            log_warn("influxdb: write to %s failed (HTTP %ld: %s); retrying with backoff", p->shown,
                     status, why);
        p->failing = 1;
        count_retries(p);
        retry_later(p, ms);
        return;
    }
    if (status == 413) {
        /* Too large is never the points' fault: they stay in the outbox. Halve at once while
         * that can help; a single line refused is the server's limit, retried with backoff. */
        count_retries(p);
        if (p->lines > 1) {
            /* Refused just after a success at half this size: the server's limit lies between,
             * so stay at the size that worked for a while instead of failing every other
             * request. */
            if (p->good < p->lines && p->good >= p->lines / 2) {
                p->ceiling = p->good;
                p->ceiling_until = loop_now_ms() + PUB_INFLUX_SHRINK_MS;
            }
            p->batch = p->lines / 2;
            if (!p->too_large)
                log_warn("influxdb: %s refused %d lines as too large (HTTP 413); halving the "
                         "batch until the server accepts it",
                         p->shown, p->lines);
            p->too_large = 1;
            loop_timer_arm(p->timer, 0);
            return;
        }
        p->batch = 1;
        set_error(p, "HTTP 413 even for one line: the server's request size limit is too small");
        if (!p->failing)
            log_error("influxdb: %s answers HTTP 413 even for one line: the server's request size "
                      "limit is too small; retrying with backoff, nothing is lost",
                      p->shown);
        p->failing = 1;
        backoff(p);
        return;
    }
    /* Any other 4xx: InfluxDB refuses these points for good (bad line, type conflict; in a
     * 1.x "partial write" it wrote the batch's other points). A refusal that goes on (a type
     * conflict refuses every batch) is logged once, not once per request. */
    char reason[PUB_ERR_MAX];
    snprintf(reason, sizeof reason, "HTTP %ld: %.200s", status, why);
    int again = strcmp(reason, p->parked_why) == 0;
    for (size_t i = 0; i < p->nparts; i++) {
        int rc = outbox_park(p->ob, p->parts[i].name, p->parts[i].last_ts, reason);
        if (rc < 0) {
            p->nparts = 0;
            not_recorded(p, p->parts[i].name, rc);
            return;
        }
        p->st.parked += p->parts[i].points;
        if (again) {
            p->parked_quiet += p->parts[i].points;
            log_debug("influxdb: %s: %" PRIu64 " more refused (%s); parked", p->parts[i].name,
                      p->parts[i].points, reason);
            continue;
        }
        log_warn("influxdb: %s: %" PRIu64 " point%s up to %" PRId64 " refused (%s); parked in "
                 "table outbox_parked, not retried%s",
                 p->parts[i].name, p->parts[i].points, p->parts[i].points == 1 ? "" : "s",
                 p->parts[i].last_ts, reason,
                 i + 1 == p->nparts ? "; more refusals for this reason are counted, not logged "
                                      "one by one"
                                    : "");
    }
    snprintf(p->parked_why, sizeof p->parked_why, "%s", reason);
    p->nparts = 0;
    loop_timer_arm(p->timer, 0);
}

static size_t on_reply(char *data, size_t size, size_t n, void *user)
{
    pub_influx *p = user;
    size_t len = size * n, room = sizeof p->reply - 1 - p->reply_len;
    size_t take = len < room ? len : room;
    memcpy(p->reply + p->reply_len, data, take);
    p->reply_len += take;
    p->reply[p->reply_len] = '\0';
    return len; /* the rest is dropped, never an error */
}

static int influx_lag(void *impl, const char *meter_name, outbox_lag *out)
{
    pub_influx *p = impl;
    return outbox_lag_get(p->ob, meter_name, out);
}

static void influx_status(void *impl, pub_status *out)
{
    pub_influx *p = impl;
    *out = p->st;
}

static void influx_free(void *impl)
{
    pub_influx *p = impl;
    if (!p)
        return;
    if (p->cl && p->easy)
        curl_loop_remove(p->cl, p->easy);
    curl_loop_free(p->cl);
    if (p->easy)
        p->cu->easy_cleanup(p->easy);
    p->cu->slist_free_all(p->headers);
    loop_timer_del(p->timer);
    outbox_free(p->ob);
    free(p->body);
    free(p->parts);
    free(p->names);
    free(p->pts);
    free(p);
}

int pub_influx_check(const pub_influx_options *o, char *err, size_t cap)
{
    char secret[PUB_INFLUX_STR_MAX], url[PUB_INFLUX_STR_MAX];
    config_url_public(o->url, url, sizeof url);
    int rc = 0;
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        snprintf(err, cap, "[influxdb] url = '%s': expected http://HOST:PORT or https://...",
                 url);
        return -1;
    }
    if (!o->database[0] && !(o->bucket[0] && o->org[0])) {
        snprintf(err, cap, "[influxdb] url = '%s': expected database (InfluxDB 1.x) or bucket "
                           "and org (2.x) as well",
                 url);
        return -1;
    }
    /* Line protocol cannot escape a newline or other control byte; a line that starts with
     * '#' is a comment InfluxDB drops without a word; and a backslash escapes what follows it
     * (at the end: the comma before the meter tag, which is lost), with no escape of its own
     * that every InfluxDB version reads back the same. */
    for (const char *m = o->measurement; *m; m++)
        if ((unsigned char)*m < 0x20 || *m == 0x7f || *m == '\\' ||
            (m == o->measurement && *m == '#')) {
            snprintf(err, cap, "[influxdb] measurement = '%s': %s", o->measurement,
                     *m == '#' ? "a measurement cannot start with '#' (a comment in line protocol)"
                     : *m == '\\'
                         ? "a backslash cannot be written in line protocol so that InfluxDB "
                           "reads it back (it escapes what follows it)"
                         : "a control character (a newline, a tab) cannot be written in "
                           "line protocol");
            return -1;
        }
    if (o->password_file[0])
        rc = config_read_secret("[influxdb] password_file", o->password_file, secret, sizeof secret,
                                err, cap);
    if (rc == 0 && o->token_file[0])
        rc = config_read_secret("[influxdb] token_file", o->token_file, secret, sizeof secret, err,
                                cap);
    explicit_bzero(secret, sizeof secret);
    return rc;
}

static int build_url(pub_influx *p, char *err, size_t cap)
{
    char base[PUB_INFLUX_STR_MAX];
    snprintf(base, sizeof base, "%s", p->o.url); /* curl takes user:password@ from it */
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        snprintf(err, cap, "influxdb: url '%s': expected http://HOST:PORT or https://...",
                 p->shown);
        return -1;
    }
    int n;
    if (p->o.database[0]) {
        char *db = p->cu->easy_escape(p->easy, p->o.database, 0);
        n = db ? snprintf(p->url, sizeof p->url, "%s/write?db=%s&precision=s", base, db) : -1;
        p->cu->free(db);
    } else {
        char *org = p->cu->easy_escape(p->easy, p->o.org, 0);
        char *bucket = p->cu->easy_escape(p->easy, p->o.bucket, 0);
        n = org && bucket
                ? snprintf(p->url, sizeof p->url, "%s/api/v2/write?org=%s&bucket=%s&precision=s",
                           base, org, bucket)
                : -1;
        p->cu->free(org);
        p->cu->free(bucket);
    }
    if (n < 0 || (size_t)n >= sizeof p->url) {
        snprintf(err, cap, "influxdb: url too long");
        return -1;
    }
    return 0;
}

pub *pub_influx_new(loop *l, store *s, const pub_influx_options *o, char *err, size_t cap)
{
    char dlerr[PUB_ERR_MAX];
    if (pub_influx_check(o, err, cap) < 0) {
        errno = EINVAL;
        return NULL;
    }
    const dl_curl *cu = dl_curl_load(dlerr, sizeof dlerr);
    if (!cu) {
        snprintf(err, cap, "[influxdb] %s; InfluxDB publishing stays off", dlerr);
        errno = ELIBACC;
        return NULL;
    }
    pub_influx *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, cap, "influxdb: out of memory");
        return NULL;
    }
    p->cu = cu;
    p->l = l;
    p->s = s;
    p->o = *o;
    config_url_public(o->url, p->shown, sizeof p->shown);
    p->face.name = "influxdb";
    p->face.impl = p;
    p->face.lag = influx_lag;
    p->face.status = influx_status;
    p->face.free = influx_free;
    p->batch = o->batch > 0 ? o->batch : 5000;
    p->batch_max = p->batch;
    if (!p->o.measurement[0])
        snprintf(p->o.measurement, sizeof p->o.measurement, "p1");
    if (!p->o.database[0] && !(p->o.bucket[0] && p->o.org[0])) {
        snprintf(err, cap, "influxdb: expected database (1.x) or bucket and org (2.x)");
        goto fail;
    }
    if (p->o.password_file[0] &&
        config_read_secret("[influxdb] password_file", p->o.password_file, p->o.password,
                           sizeof p->o.password, err, cap) < 0)
        goto fail;
    if (p->o.token_file[0] && config_read_secret("[influxdb] token_file", p->o.token_file,
                                                 p->o.token, sizeof p->o.token, err, cap) < 0)
        goto fail;
    p->cl = curl_loop_new(l, cu);
    p->easy = p->cl ? p->cu->easy_init() : NULL;
    p->timer = loop_timer_new(l, on_timer, p);
    p->pts = calloc(OUTBOX_BATCH_MAX, sizeof *p->pts);
    p->body = malloc(PI_BODY_INITIAL);
    p->cap = PI_BODY_INITIAL;
    if (!p->cl || !p->easy || !p->timer || !p->pts || !p->body) {
        snprintf(err, cap, "influxdb: out of memory");
        goto fail;
    }
    if (build_url(p, err, cap) < 0)
        goto fail;
    char auth[PUB_INFLUX_STR_MAX + 32];
    p->headers = p->cu->slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    p->headers = p->headers ? p->cu->slist_append(p->headers, "Expect:") : NULL;
    if (p->headers && !p->o.database[0] && p->o.token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Token %s", p->o.token);
        p->headers = p->cu->slist_append(p->headers, auth);
    }
    if (!p->headers) {
        snprintf(err, cap, "influxdb: out of memory");
        goto fail;
    }
    p->cu->easy_setopt(p->easy, CURLOPT_URL, p->url);
    p->cu->easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    p->cu->easy_setopt(p->easy, CURLOPT_POST, 1L);
    p->cu->easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    p->cu->easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    p->cu->easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->o.timeout_ms);
    p->cu->easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS,
                       (long)(p->o.timeout_ms < 10000 ? p->o.timeout_ms : 10000));
    p->cu->easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_reply);
    p->cu->easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
    p->cu->easy_setopt(p->easy, CURLOPT_USERAGENT, "p1d/" P1_VERSION);
    if (p->o.database[0] && p->o.username[0]) {
        p->cu->easy_setopt(p->easy, CURLOPT_USERNAME, p->o.username);
        p->cu->easy_setopt(p->easy, CURLOPT_PASSWORD, p->o.password);
    }
    char why[STORE_ERR_MAX];
    p->ob = outbox_new(s, "influxdb", o->rate, o->interval_s, 0, why, sizeof why);
    if (!p->ob) {
        snprintf(err, cap, "influxdb: outbox: %s", why);
        goto fail;
    }
    p->st.state = PUB_IDLE;
    log_info("influxdb: writing to %s (%s %s), measurement %s", p->shown,
             p->o.database[0] ? "database" : "bucket",
             p->o.database[0] ? p->o.database : p->o.bucket, p->o.measurement);
    loop_timer_arm(p->timer, 0);
    return &p->face;
fail:
    influx_free(p);
    return NULL;
}
