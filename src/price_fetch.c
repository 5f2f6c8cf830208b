/* price_fetch.c: [prices] fetch_url / fetch_gas_url. Per kind one job: a GET of today's and
 * tomorrow's prices, parsed as PUT /api/prices parses an upload and stored the same way (all or
 * nothing), then a timer for the next one (see price_fetch_next). A failed request, an error
 * page or a reply that is not a price list changes nothing stored and is retried with backoff;
 * the first failure of a run of them is logged, and so is the recovery. */
#define _GNU_SOURCE
#include "price_fetch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "civil.h"
#include "curl_loop.h"
#include "log.h"

static const char *const kind_name[2] = {"power", "gas"};
static const char *const url_key[2] = {"fetch_url", "fetch_gas_url"};
static const char *const header_key[2] = {"fetch_header", "fetch_gas_header"};
static const char *const body_key[2] = {"fetch_body", "fetch_gas_body"};

typedef struct pf_job {
    struct price_fetch *pf;
    cost_kind kind;
    CURL *easy;
    loop_timer *timer;
    char url[2 * PRICE_FETCH_URL_MAX]; /* the template expanded for this request */
    char req[2 * PRICE_FETCH_REQ_MAX]; /* its body, when one is POSTed */
    struct curl_slist *headers;        /* fetch_header, Content-Type of a body */
    char shown[PRICE_FETCH_URL_MAX];   /* for logs: no query (it may hold a token), no password */
    char *body;
    size_t len, cap;
    int too_big; /* the reply passed PRICE_FETCH_BODY_MAX: the transfer was stopped */
    char ctype[64];
    int64_t from, to;           /* the days asked for */
    int64_t due_ms;             /* wall-clock time of the next fetch; 0 = at once */
    int64_t set_wall, set_mono; /* the wall and monotonic clocks when due_ms was set */
    int64_t backoff_ms;
    int failing;            /* the current run of failures was logged */
    uint64_t failures;      /* in the current run */
    int busy;               /* a request is in flight */
    int64_t retry_after_ms; /* the failing reply's Retry-After, for failed() */
    int64_t last_ok, until;
    size_t prices;
    char last_error[PRICE_FETCH_ERR_MAX];
} pf_job;

struct price_fetch {
    loop *l;
    store *s;
    price_fetch_options o;
    const dl_curl *cu;
    curl_loop *cl;
    pf_job job[2];
};

/* "HH:MM" into seconds after midnight; "" gives def. -1 when malformed. */
static int parse_hhmm(const char *s, int def, int *out)
{
    if (!*s) {
        *out = def;
        return 0;
    }
    return cost_parse_day_start(s, out);
}

int price_fetch_options_from_config(const config *c, price_fetch_options *o, char *why, size_t cap)
{
    memset(o, 0, sizeof *o);
    const char *urls[2] = {c->prices_fetch_url, c->prices_fetch_gas_url};
    const char *headers[2] = {c->prices_fetch_header, c->prices_fetch_gas_header};
    const char *bodies[2] = {c->prices_fetch_body, c->prices_fetch_gas_body};
    for (int k = 0; k < 2; k++) {
        const char *u = urls[k];
        if (!*u && (headers[k][0] || bodies[k][0])) {
            snprintf(why, cap, "[prices] %s is set, but %s is empty: set the URL it goes with",
                     headers[k][0] ? header_key[k] : body_key[k], url_key[k]);
            return -1;
        }
        if (!*u)
            continue;
        char what[32];
        snprintf(what, sizeof what, "[prices] %s", header_key[k]);
        if (headers[k][0] && config_http_header_check(headers[k], what, why, cap) < 0)
            return -1;
        char req[2 * PRICE_FETCH_REQ_MAX], eb[128];
        if (bodies[k][0] &&
            price_fetch_expand_body(bodies[k], 0, 86400, req, sizeof req, eb, sizeof eb) < 0) {
            snprintf(why, cap, "[prices] %s: %s", body_key[k], eb);
            return -1;
        }
        snprintf(o->header[k], sizeof o->header[k], "%s", headers[k]);
        snprintf(o->body[k], sizeof o->body[k], "%s", bodies[k]);
        if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) {
            snprintf(why, cap, "[prices] %s: expected an http:// or https:// URL, got '%.200s'",
                     url_key[k], u);
            return -1;
        }
        char out[2 * PRICE_FETCH_URL_MAX], e[128];
        if (price_fetch_expand(u, 0, 86400, out, sizeof out, e, sizeof e) < 0) {
            snprintf(why, cap, "[prices] %s: %s", url_key[k], e);
            return -1;
        }
        snprintf(o->url[k], sizeof o->url[k], "%s", u);
    }
    if (parse_hhmm(c->prices_fetch_after, -1, &o->after) < 0) {
        snprintf(why, cap, "[prices] fetch_after: expected HH:MM such as 13:00, got '%.32s'",
                 c->prices_fetch_after);
        return -1;
    }
    if (parse_hhmm(c->prices_fetch_gas_day_start, 0, &o->gas_day_start) < 0) {
        snprintf(why, cap,
                 "[prices] fetch_gas_day_start: expected HH:MM such as 06:00, got "
                 "'%.32s'",
                 c->prices_fetch_gas_day_start);
        return -1;
    }
    o->timeout_ms = c->prices_fetch_timeout;
    return o->url[0][0] || o->url[1][0];
}

/* Appends s to out[cap] at *n; -1 when it does not fit. */
static int put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len >= cap)
        return -1;
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
    return 0;
}

/* The value of placeholder name for the days [from, to) into v[cap]; -1 for an unknown name. */
static int placeholder(const char *name, int64_t from, int64_t to, char *v, size_t cap)
{
    int is_from = strncmp(name, "from", 4) == 0, is_to = strncmp(name, "to", 2) == 0;
    civil_tm tm;
    if (strcmp(name, "until_date") == 0) { /* the end's own date, for an exclusive end date */
        civil_local(to, &tm);
        snprintf(v, cap, "%04d-%02d-%02d", tm.year, tm.month, tm.day);
        return 0;
    }
    if (!is_from && !is_to)
        return -1;
    int64_t t = is_from ? from : to;
    const char *rest = name + (is_from ? 4 : 2);
    if (strcmp(rest, "") == 0) {
        civil_format_utc(t, v, cap);
    } else if (strcmp(rest, "_local") == 0) {
        civil_format_local(t, v, cap);
    } else if (strcmp(rest, "_date") == 0) {
        civil_local(is_to ? t - 1 : t, &tm); /* to_date: the last day, inclusive */
        snprintf(v, cap, "%04d-%02d-%02d", tm.year, tm.month, tm.day);
    } else if (strcmp(rest, "_unix") == 0) {
        snprintf(v, cap, "%" PRId64, t);
    } else if (strcmp(rest, "_compact") == 0) { /* UTC YYYYMMDDhhmm: ENTSO-E's periodStart */
        civil_utc(t, &tm);
        snprintf(v, cap, "%04d%02d%02d%02d%02d", tm.year, tm.month, tm.day, tm.hour, tm.minute);
    } else {
        return -1;
    }
    return 0;
}

/* URL (body 0): every {name} must be a placeholder, and an offset's '+' is written %2B. Body
 * (body 1): only placeholders are filled; other braces and the '+' stay. */
static int expand(const char *tmpl, int64_t from, int64_t to, char *out, size_t cap, char *why,
                  size_t wcap, int body)
{
    size_t n = 0;
    if (cap)
        out[0] = '\0';
    for (const char *p = tmpl; *p;) {
        if (*p != '{') {
            size_t run = strcspn(p, "{");
            if (put(out, cap, &n, p, run) < 0)
                goto long_;
            p += run;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t len = close ? (size_t)(close - p - 1) : 0;
        char name[17], v[40];
        if (close && len > 0 && len <= 16) {
            memcpy(name, p + 1, len);
            name[len] = '\0';
        }
        if (!close || len == 0 || len > 16 || placeholder(name, from, to, v, sizeof v) < 0) {
            if (body) {
                if (put(out, cap, &n, "{", 1) < 0)
                    goto long_;
                p++;
                continue;
            }
            if (!close || len == 0 || len > 16)
                snprintf(why, wcap, "'{' without a placeholder name and '}' (such as {from})");
            else
                snprintf(why, wcap,
                         "unknown placeholder {%s}: expected {from}, {to}, {from_local}, "
                         "{to_local}, {from_date}, {to_date}, {until_date}, {from_unix}, "
                         "{to_unix}, {from_compact} or {to_compact}",
                         name);
            return -1;
        }
        for (const char *c = v; *c; c++) { /* '+' of an offset: a space in a query, so %2B */
            int enc = *c == '+' && !body;
            if (put(out, cap, &n, enc ? "%2B" : c, enc ? 3 : 1) < 0)
                goto long_;
        }
        p = close + 1;
    }
    return 0;
long_:
    snprintf(why, wcap, "the %s is longer than %zu bytes", body ? "body" : "URL", cap - 1);
    return -1;
}

int price_fetch_expand(const char *tmpl, int64_t from, int64_t to, char *out, size_t cap, char *why,
                       size_t wcap)
{
    return expand(tmpl, from, to, out, cap, why, wcap, 0);
}

int price_fetch_expand_body(const char *tmpl, int64_t from, int64_t to, char *out, size_t cap,
                            char *why, size_t wcap)
{
    return expand(tmpl, from, to, out, cap, why, wcap, 1);
}

/* The unix seconds of `after` seconds of local clock time on the day holding t. */
static int64_t day_at(int64_t t, int after)
{
    civil_tm tm;
    int64_t out;
    civil_local(t, &tm);
    if (civil_local_fields(tm.year, tm.month, tm.day, after / 3600, after % 3600 / 60, 0, &out) < 0)
        return civil_floor(CIVIL_DAY, t) + after; /* a time the spring change skips */
    return out;
}

int price_fetch_after(const price_fetch_options *o)
{
    /* day-ahead prices come out about 13:00 CET: 14:00 on an EET clock */
    return o->after >= 0 ? o->after : 13 * 3600 + civil_zone_lead(civil_zone());
}

int64_t price_fetch_next(int64_t now, int64_t covered, int after)
{
    int64_t tomorrow = civil_next(CIVIL_DAY, now);
    if (covered >= civil_next(CIVIL_DAY, tomorrow))
        return day_at(tomorrow, after);
    int64_t today = day_at(now, after);
    return now < today ? today : now + PRICE_FETCH_POLL_S;
}

/* Wakes the job at least this often to compare the wall clock with its due time: a clock set
 * late (a Raspberry Pi without a real-time clock, before NTP) must not leave the prices of a
 * day unfetched until a monotonic timer of hours runs out. A clock set forward passes the due
 * time; one set back (or a machine that slept) shows as a skew between the two clocks, and p1d
 * fetches at once. */
#define PF_WAKE_MS 15000
#define PF_JUMP_MS (5 * 60 * 1000) /* the wall clock moved this much more than time passed */

static void wake(pf_job *j)
{
    int64_t ms = j->due_ms - loop_wall_ms();
    loop_timer_arm(j->timer, ms < 0 ? 0 : ms < PF_WAKE_MS ? ms : PF_WAKE_MS);
}

/* Fetches again in `ms`, plus up to a quarter of it (at most 5 minutes) of jitter so that many
 * homes do not ask the same server in the same second. */
static void arm(pf_job *j, int64_t ms)
{
    int64_t jitter = ms / 4 > 0 ? (int64_t)(random() % (ms / 4 + 1)) : 0;
    if (jitter > 5 * 60 * 1000)
        jitter = (int64_t)(random() % (5 * 60 * 1000));
    j->set_wall = loop_wall_ms();
    j->set_mono = loop_now_ms();
    j->due_ms = j->set_wall + ms + jitter;
    wake(j);
}

static void failed(pf_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failed(pf_job *j, const char *fmt, ...)
{
    char why[PRICE_FETCH_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    j->backoff_ms =
        j->backoff_ms < PRICE_FETCH_BACKOFF_MIN ? PRICE_FETCH_BACKOFF_MIN : j->backoff_ms * 2;
    if (j->backoff_ms < j->retry_after_ms) /* the server asked for a longer pause */
        j->backoff_ms = j->retry_after_ms;
    j->retry_after_ms = 0;
    if (j->backoff_ms > PRICE_FETCH_BACKOFF_MAX)
        j->backoff_ms = PRICE_FETCH_BACKOFF_MAX;
    j->failures++;
    snprintf(j->last_error, sizeof j->last_error, "%s", why);
    if (j->pf->o.once) {
        log_error("prices: fetching %s prices from %s failed: %s (the prices stored stay as "
                  "they are)",
                  kind_name[j->kind], j->shown, why);
        j->pf->o.once(j->pf->o.once_user, j->kind, 0);
        return;
    }
    log_msg(j->failing ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
            "prices: fetching %s prices from %s failed: %s; trying again in %" PRId64
            " s (the prices stored stay as they are)",
            kind_name[j->kind], j->shown, why, j->backoff_ms / 1000);
    j->failing = 1;
    arm(j, j->backoff_ms);
}

static void on_done(void *user, CURL *easy, CURLcode result);

static void on_timer(void *user)
{
    pf_job *j = user;
    price_fetch *pf = j->pf;
    int64_t now = loop_wall_ms() / 1000;
    char why[128];
    int64_t skew = (loop_wall_ms() - j->set_wall) - (loop_now_ms() - j->set_mono);
    if (loop_wall_ms() < j->due_ms && skew > -PF_JUMP_MS && skew < PF_JUMP_MS) {
        wake(j); /* not due yet, and the clock has not been set meanwhile */
        return;
    }
    j->from = civil_floor(CIVIL_DAY, now);
    j->to = civil_next(CIVIL_DAY, civil_next(CIVIL_DAY, now));
    if (price_fetch_expand(pf->o.url[j->kind], j->from, j->to, j->url, sizeof j->url, why,
                           sizeof why) < 0) {
        failed(j, "%s", why); /* checked at start: only a template at its length limit */
        return;
    }
    if (pf->o.body[j->kind][0] &&
        price_fetch_expand_body(pf->o.body[j->kind], j->from, j->to, j->req, sizeof j->req, why,
                                sizeof why) < 0) {
        failed(j, "%s", why);
        return;
    }
    j->len = 0;
    j->too_big = 0;
    j->ctype[0] = '\0';
    pf->cu->easy_setopt(j->easy, CURLOPT_URL, j->url);
    if (pf->o.body[j->kind][0]) {
        pf->cu->easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(j->req));
        pf->cu->easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->req);
    }
    if (curl_loop_add(pf->cl, j->easy, on_done, j) < 0) {
        failed(j, "cannot start a request");
        return;
    }
    j->busy = 1;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    pf_job *j = user;
    size_t len = size * n;
    if (j->len + len > PRICE_FETCH_BODY_MAX) {
        j->too_big = 1;
        return 0; /* stops the transfer (CURLE_WRITE_ERROR) */
    }
    if (j->len + len + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 16384;
        while (cap < j->len + len + 1)
            cap *= 2;
        char *b = realloc(j->body, cap);
        if (!b)
            return 0;
        j->body = b;
        j->cap = cap;
    }
    memcpy(j->body + j->len, data, len);
    j->len += len;
    j->body[j->len] = '\0';
    return len;
}

/* The start of the reply as one printable line, for an error message. */
static const char *excerpt(pf_job *j, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < j->len && n + 1 < cap && n < 120; i++) {
        unsigned char ch = (unsigned char)j->body[i];
        if (ch < 0x20 || ch == 0x7f)
            ch = ' ';
        if (ch == ' ' && n && out[n - 1] == ' ')
            continue;
        out[n++] = (char)ch;
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return n ? out : "(empty reply)";
}

static void reply(pf_job *j, CURL *easy, CURLcode result);

/* The reply is handled, then its buffer given back: up to 4 MiB between fetches a day apart. */
static void on_done(void *user, CURL *easy, CURLcode result)
{
    pf_job *j = user;
    j->busy = 0;
    reply(j, easy, result);
    free(j->body);
    j->body = NULL;
    j->len = j->cap = 0;
}

/* How far the reply's prices reach into the days asked for, [from, to): the latest end of a
 * price that starts before `to`; 0 when none ends after `from` (a reply for other days). A
 * stray row far ahead does not make tomorrow's prices "in". */
static int64_t reach(const cost_dyns *d, int64_t from, int64_t to)
{
    int64_t r = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].ts < to && d->v[i].end > from && d->v[i].end > r)
            r = d->v[i].end;
    return r;
}

static void reply(pf_job *j, CURL *easy, CURLcode result)
{
    price_fetch *pf = j->pf;
    char ex[128], err[COST_ERR_MAX], a[CIVIL_TIME_MAX], b[CIVIL_TIME_MAX];
    long status = 0;
    char *ct = NULL;
    pf->cu->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    pf->cu->easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct);
    if (j->too_big) {
        failed(j, "the reply is larger than %u MiB: not a price list of two days",
               PRICE_FETCH_BODY_MAX >> 20);
        return;
    }
    if (result != CURLE_OK) {
        failed(j, "%s", pf->cu->easy_strerror(result));
        return;
    }
    if (status < 200 || status > 299) {
        curl_off_t ra = 0; /* a 429 or 503 may say when to come back: not sooner */
        if (pf->cu->easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            j->retry_after_ms =
                ra < PRICE_FETCH_BACKOFF_MAX / 1000 ? (int64_t)ra * 1000 : PRICE_FETCH_BACKOFF_MAX;
        char said[COST_ERR_MAX];
        if (cost_reply_message(j->body, j->len, said, sizeof said)) /* GraphQL, a JSON API */
            failed(j, "HTTP %ld: %s", status, said);
        else
            failed(j, "HTTP %ld: %s", status, excerpt(j, ex, sizeof ex));
        return;
    }
    if (ct && strncasecmp(ct, "text/html", 9) == 0) {
        failed(j, "the reply is a web page (Content-Type %.40s), not prices: %s", ct,
               excerpt(j, ex, sizeof ex));
        return;
    }
    if (j->len == 0) {
        failed(j, "the reply is empty");
        return;
    }
    cost_dyns d = {0};
    int day_start = j->kind == COST_KIND_GAS ? pf->o.gas_day_start : 0;
    if (cost_parse_dynamic(j->body, j->len, j->kind, day_start, &d, err, sizeof err) < 0) {
        failed(j, "the reply is not a price list: %s", err);
        return;
    }
    if (d.n == 0) {
        cost_dyns_free(&d);
        failed(j, "the reply holds no prices");
        return;
    }
    int64_t covered = reach(&d, j->from, j->to);
    if (covered == 0) {
        char f[CIVIL_TIME_MAX], t[CIVIL_TIME_MAX];
        civil_format_local(d.v[0].ts, a, sizeof a);
        civil_format_local(d.v[d.n - 1].end, b, sizeof b);
        civil_format_local(j->from, f, sizeof f);
        civil_format_local(j->to, t, sizeof t);
        failed(j,
               "the reply's %zu price%s, %s to %s, %s for none of the days asked (%s to %s): "
               "not stored; does the URL pass the dates ({from}, {to}, ...)?",
               d.n, d.n == 1 ? "" : "s", a, b, d.n == 1 ? "is" : "are", f, t);
        cost_dyns_free(&d);
        return;
    }
    /* Only the prices of the days asked are stored: a save replaces what is stored over the
     * span of its prices, so one stray row a year off (a source's bug) would wipe the stored
     * prices of that whole year, which past costs are counted with. */
    size_t kept = 0, strays = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (d.v[i].ts < j->to && d.v[i].end > j->from)
            d.v[kept++] = d.v[i];
        else
            strays++;
    }
    d.n = kept;
    if (strays)
        log_warn("prices: the %s prices from %s hold %zu outside the days asked: left out",
                 kind_name[j->kind], j->shown, strays);
    if (cost_db_save_dynamic(store_db(pf->s), j->kind, &d, err, sizeof err) < 0) {
        cost_dyns_free(&d);
        failed(j, "cannot store them: %s", err);
        return;
    }
    store_prices_changed(pf->s); /* /metrics and MQTT show a new price now at once */
    int64_t now = loop_wall_ms() / 1000;
    int64_t next = price_fetch_next(now, covered, price_fetch_after(&pf->o));
    civil_format_local(d.v[0].ts, a, sizeof a);
    civil_format_local(d.v[d.n - 1].end, b, sizeof b);
    char when[CIVIL_TIME_MAX];
    civil_format_local(next, when, sizeof when);
    if (j->failing)
        log_info("prices: fetching %s prices from %s works again (after %" PRIu64 " failure%s)",
                 kind_name[j->kind], j->shown, j->failures, j->failures == 1 ? "" : "s");
    if (pf->o.once) {
        log_info("prices: fetched %zu %s price%s from %s, %s to %s; %s; stored", d.n,
                 kind_name[j->kind], d.n == 1 ? "" : "s", j->shown, a, b,
                 covered >= j->to ? "tomorrow's are in" : "tomorrow's are not out yet");
        cost_dyns_free(&d);
        pf->o.once(pf->o.once_user, j->kind, 1);
        return;
    }
    log_info("prices: fetched %zu %s price%s from %s, %s to %s; %s; next fetch at about %s", d.n,
             kind_name[j->kind], d.n == 1 ? "" : "s", j->shown, a, b,
             covered >= j->to ? "tomorrow's are in" : "tomorrow's are not out yet", when);
    j->last_ok = now;
    j->until = covered;
    j->prices = d.n;
    j->last_error[0] = '\0';
    cost_dyns_free(&d);
    j->failing = 0;
    j->failures = 0;
    j->backoff_ms = 0;
    arm(j, (next - now) * 1000);
}

price_fetch *price_fetch_new(loop *l, store *s, const price_fetch_options *o, char *err, size_t cap)
{
    char dlerr[256];
    const dl_curl *cu = dl_curl_load(dlerr, sizeof dlerr);
    if (!cu) {
        snprintf(err, cap,
                 "[prices] fetch_url: %s; prices are not fetched (upload them with p1 "
                 "prices import or PUT /api/prices)",
                 dlerr);
        errno = ELIBACC;
        return NULL;
    }
    price_fetch *pf = calloc(1, sizeof *pf);
    if (!pf) {
        snprintf(err, cap, "prices: out of memory");
        return NULL;
    }
    pf->l = l;
    pf->s = s;
    pf->o = *o;
    pf->cu = cu;
    pf->cl = curl_loop_new(l, cu);
    if (!pf->cl)
        goto oom;
    for (int k = 0; k < 2; k++) {
        pf_job *j = &pf->job[k];
        j->pf = pf;
        j->kind = (cost_kind)k;
        if (!o->url[k][0])
            continue;
        config_url_shown(o->url[k], j->shown, sizeof j->shown);
        j->easy = cu->easy_init();
        j->timer = loop_timer_new(l, on_timer, j);
        if (!j->easy || !j->timer)
            goto oom;
        const char *body = o->body[k], *hdr = o->header[k];
        if (!body[0]) {
            cu->easy_setopt(j->easy, CURLOPT_HTTPGET, 1L);
        } else if (strncasecmp(hdr, "Content-Type:", 13) != 0) {
            j->headers = cu->slist_append(j->headers, body[0] == '{' || body[0] == '['
                                                          ? "Content-Type: application/json"
                                                          : "Content-Type: "
                                                            "application/x-www-form-urlencoded");
            if (!j->headers)
                goto oom;
        }
        if (hdr[0]) {
            struct curl_slist *h = cu->slist_append(j->headers, hdr);
            if (!h)
                goto oom;
            j->headers = h;
        }
        if (body[0]) {
            struct curl_slist *h = cu->slist_append(j->headers, "Expect:"); /* no 100-continue */
            if (!h)
                goto oom;
            j->headers = h;
        }
        if (j->headers)
            cu->easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
        cu->easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
        cu->easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        cu->easy_setopt(j->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        cu->easy_setopt(j->easy, CURLOPT_FOLLOWLOCATION, 1L);
        cu->easy_setopt(j->easy, CURLOPT_MAXREDIRS, 5L);
        cu->easy_setopt(j->easy, CURLOPT_ACCEPT_ENCODING, "");
        cu->easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
        cu->easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS,
                        (long)(o->timeout_ms < 10000 ? o->timeout_ms : 10000));
        cu->easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
        cu->easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
        cu->easy_setopt(j->easy, CURLOPT_USERAGENT, "p1d/" P1_VERSION);
        int after = price_fetch_after(o), hh = after / 3600, mm = after % 3600 / 60;
        if (o->once)
            log_info("prices: fetching %s prices from %s%s", kind_name[k], j->shown,
                     body[0] ? " (POST)" : "");
        else
            log_info("prices: fetching %s prices from %s%s now, then daily from %02d:%02d "
                     "until tomorrow's are in",
                     kind_name[k], j->shown, body[0] ? " (POST)" : "", hh, mm);
        loop_timer_arm(j->timer, 0);
    }
    return pf;
oom:
    snprintf(err, cap, "prices: out of memory");
    price_fetch_free(pf);
    return NULL;
}

void price_fetch_status_get(const price_fetch *pf, cost_kind kind, price_fetch_status *out)
{
    memset(out, 0, sizeof *out);
    if (!pf || (kind != COST_KIND_POWER && kind != COST_KIND_GAS) || !pf->o.url[kind][0])
        return;
    const pf_job *j = &pf->job[kind];
    out->on = 1;
    out->busy = j->busy;
    snprintf(out->url, sizeof out->url, "%s", j->shown);
    out->last_ok = j->last_ok;
    out->prices = j->prices;
    out->until = j->until;
    out->next = j->busy ? 0 : j->due_ms > 0 ? j->due_ms / 1000 : loop_wall_ms() / 1000;
    out->failures = j->failures;
    snprintf(out->last_error, sizeof out->last_error, "%s", j->last_error);
}

void price_fetch_free(price_fetch *pf)
{
    if (!pf)
        return;
    for (int k = 0; k < 2; k++) {
        pf_job *j = &pf->job[k];
        if (j->easy) {
            curl_loop_remove(pf->cl, j->easy);
            pf->cu->easy_cleanup(j->easy);
        }
        if (j->headers)
            pf->cu->slist_free_all(j->headers);
        loop_timer_del(j->timer);
        free(j->body);
    }
    curl_loop_free(pf->cl);
    free(pf);
}
