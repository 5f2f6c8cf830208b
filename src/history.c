/* history.c: GET /api/history (columnar JSON or CSV per step), GET /api/summary, GET/PUT
 * /api/prices: parameters, bounds, costs per step from quarter-hour sub-steps, output. */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "civil.h"
#include "demand.h"
#include "json.h"
#include "metrics.h"
#include "price_now.h"

#define HISTORY_FIELDS_ARG_MAX 1024 /* bytes of the fields= parameter */

struct history {
    store *s;
    const meters *ms;
    history_fetch_fn fetch; /* what the [prices] fetcher did, or NULL */
    void *fetch_user;
    price_now *now; /* the price in force, for /metrics */
    store *reader;  /* history_jobs(): the worker thread's own connection, or NULL */
};

/* What a history or summary answer needs of the live meters (the loop's registry), copied when
 * the answer starts: on the loop, or at the hand-off to the server's worker thread (job_take()),
 * which then reads nothing of the loop's. */
typedef struct history_live {
    char first[METER_NAME_MAX + 1]; /* the first live meter (the default meter=), "" none */
    int asked_live;                 /* the meter= given is a live meter */
    p1_micro peak;                  /* the demand peak (1-0:1.6.0) in the latest telegram of the
                                     * meter answered for (meter=, else the first); P1_ABSENT */
    p1_time peak_time;
} history_live;

/* ---------------------------------------------------------------------------------------------
 * Replies
 * ------------------------------------------------------------------------------------------- */

static int reply_json(http_reply *out, unsigned status, json_w *w)
{
    if (!json_ok(w)) {
        json_free(w);
        return -1;
    }
    out->status = status;
    out->content_type = "application/json";
    out->body = w->buf;
    out->len = w->len;
    return 0;
}

static int bad_param(http_reply *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_param(http_reply *out, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return http_reply_error(out, 400, "bad_parameter", "%s", msg);
}

/* "from" and "to" as local ISO-8601 times. */
static void kv_range(json_w *w, int64_t from, int64_t to)
{
    char t[CIVIL_TIME_MAX];
    civil_format_local(from, t, sizeof t);
    json_kv_str(w, "from", t);
    civil_format_local(to, t, sizeof t);
    json_kv_str(w, "to", t);
}

static int internal(http_reply *out, const char *what, int rc)
{
    return http_reply_error(out, 500, "internal", "%s: %s", what, strerror(rc < 0 ? -rc : rc));
}

/* ---------------------------------------------------------------------------------------------
 * A growable text buffer (bounded by HISTORY_BODY_MAX)
 * ------------------------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = cap <= HISTORY_BODY_MAX ? realloc(b->p, cap) : NULL;
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* mantissa / 10^decimals, exactly, trailing fractional zeros dropped; decimals 0 to 18. */
static size_t fmt_fixed(char *out, int64_t m, int decimals)
{
    char tmp[32];
    /* The fields have 3 at most; bounded, gcc -O1 (the sanitizer builds) sees f cannot overflow. */
    if (decimals < 0)
        decimals = 0;
    if (decimals > 18)
        decimals = 18;
    uint64_t a = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    uint64_t pow = 1;
    for (int i = 0; i < decimals; i++)
        pow *= 10;
    uint64_t ip = a / pow, fp = a % pow;
    int n = snprintf(tmp, sizeof tmp, "%s%" PRIu64, m < 0 ? "-" : "", ip);
    if (fp) {
        char f[24];
        snprintf(f, sizeof f, "%0*" PRIu64, decimals, fp);
        int fl = decimals;
        while (fl > 0 && f[fl - 1] == '0')
            fl--;
        f[fl] = '\0';
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%s", f);
    }
    memcpy(out, tmp, (size_t)n + 1);
    return (size_t)n;
}

static int64_t rdiv(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

/* ---------------------------------------------------------------------------------------------
 * Fields
 * ------------------------------------------------------------------------------------------- */

enum { F_ENERGY, F_NET, F_STAT, F_COST, F_UNPRICED, F_DEMAND };
enum { ST_MEAN, ST_MIN, ST_MAX };

typedef struct field {
    const char *name;
    int kind;
    int idx;      /* STORE_E_* or STORE_Q_* */
    int stat;     /* ST_* */
    int decimals; /* of the stored integer in the field's unit */
} field;

#define QF(prefix, q, dec)                                                                         \
    {prefix "_mean", F_STAT, q, ST_MEAN, dec}, {prefix "_min", F_STAT, q, ST_MIN, dec},            \
        {prefix "_max", F_STAT, q, ST_MAX, dec}

static const field fields[] = {
    {"import_kwh", F_ENERGY, STORE_E_IMPORT, 0, 3},
    {"import_t1_kwh", F_ENERGY, STORE_E_IMPORT_T1, 0, 3},
    {"import_t2_kwh", F_ENERGY, STORE_E_IMPORT_T2, 0, 3},
    {"export_kwh", F_ENERGY, STORE_E_EXPORT, 0, 3},
    {"export_t1_kwh", F_ENERGY, STORE_E_EXPORT_T1, 0, 3},
    {"export_t2_kwh", F_ENERGY, STORE_E_EXPORT_T2, 0, 3},
    {"net_kwh", F_NET, 0, 0, 3},
    {"gas_m3", F_ENERGY, STORE_E_GAS, 0, 3},
    {"water_m3", F_ENERGY, STORE_E_WATER, 0, 3},
    {"heat_gj", F_ENERGY, STORE_E_HEAT, 0, 3},
    QF("power_w", STORE_Q_POWER, 0),
    QF("power_l1_w", STORE_Q_POWER_L1, 0),
    QF("power_l2_w", STORE_Q_POWER_L2, 0),
    QF("power_l3_w", STORE_Q_POWER_L3, 0),
    QF("voltage_l1_v", STORE_Q_VOLTAGE_L1, 1),
    QF("voltage_l2_v", STORE_Q_VOLTAGE_L2, 1),
    QF("voltage_l3_v", STORE_Q_VOLTAGE_L3, 1),
    QF("current_l1_a", STORE_Q_CURRENT_L1, 2),
    QF("current_l2_a", STORE_Q_CURRENT_L2, 2),
    QF("current_l3_a", STORE_Q_CURRENT_L3, 2),
    {"cost_eur", F_COST, 0, 0, 6},
    {"unpriced_kwh", F_UNPRICED, 0, 0, 3},    /* Wh */
    {"unpriced_gas_m3", F_UNPRICED, 1, 0, 3}, /* dm3 */
    {"demand_kw", F_DEMAND, 0, 0, 3},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static int field_find(const char *name, size_t n)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strlen(fields[i].name) == n && memcmp(fields[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Sub-steps: costs and quarter-hour demand of coarse steps
 * ------------------------------------------------------------------------------------------- */

/* The minutes of a range that hold readings (store_minutes), to tell which quarter-hours hold
 * their own energy: after a gap the first step holds all of it, and x4 it is no average. */
typedef struct minutes {
    uint8_t *bits;
    int64_t t0; /* the minute of bit 0 */
    size_t n;
} minutes;

/* Loads the minutes of [from - 60, to) (from a quarter boundary). 0 or a negative errno. */
static int minutes_load(store *s, const char *mname, int64_t from, int64_t to, minutes *m)
{
    m->t0 = from - 60;
    m->n = to > m->t0 ? (size_t)((to - m->t0) / 60 + 1) : 1;
    m->bits = malloc((m->n + 7) / 8);
    if (!m->bits)
        return -ENOMEM;
    int rc = store_minutes(s, mname, m->t0, m->t0 + (int64_t)m->n * 60, m->bits, m->n);
    return rc == -ENOENT ? 0 : rc;
}

static int minute_has(const minutes *m, int64_t t)
{
    if (t < m->t0)
        return 0;
    size_t i = (size_t)((t - m->t0) / 60);
    return i < m->n && (m->bits[i / 8] >> (i % 8) & 1);
}

/* The quarter labelled q, (q, q + 15 min], holds its own energy: the readings that bound it came
 * within the minute before its start and the minute before its end (demand.h's DEMAND_GAP_S).
 * subs asks store_minutes_held() the same for the few quarters that would be a new peak. */
static int quarter_whole(const minutes *m, int64_t q)
{
    return minute_has(m, q - DEMAND_GAP_S) && minute_has(m, q + DEMAND_QUARTER_S - DEMAND_GAP_S);
}

/* Costs and peaks gathered per output step from 15-minute sub-steps (1-hour ones where the
 * 15-minute tier has no data, e.g. past its retention). */
typedef struct subs {
    const int64_t *starts; /* output step starts, ascending */
    size_t n;
    size_t at;             /* cursor into starts */
    cost_parts *cost;      /* [n], or NULL */
    int64_t *peak;         /* [n] highest quarter-hour import in Wh, -1 none; or NULL */
    int64_t *peak_ts;      /* [n] start of that quarter-hour, or NULL */
    const cost_prices *prices;
    cost_cursor cur;
    int64_t hour0;
    uint8_t *has15;        /* [nhours] */
    size_t nhours;
    store *s; /* with peak: to ask which quarters hold their own energy */
    const char *mname;
} subs;

static size_t subs_locate(subs *x, int64_t ts)
{
    if (x->at >= x->n || x->starts[x->at] > ts)
        x->at = 0;
    while (x->at + 1 < x->n && x->starts[x->at + 1] <= ts)
        x->at++;
    return x->at;
}

static void parts_add(cost_parts *a, const cost_parts *b)
{
    a->energy += b->energy;
    a->gas += b->gas;
    a->fixed += b->fixed;
    a->unpriced_wh += b->unpriced_wh;
    a->unpriced_dm3 += b->unpriced_dm3;
    a->priced |= b->priced;
}

/* A step without readings and without energy: a gap. A step without readings can still hold a
 * gas, water or heat rise measured in it that arrived later (store.h, STORE_CAPTURE_MAX). */
static int point_empty(const store_point *p)
{
    if (p->n)
        return 0;
    for (int e = 0; e < STORE_E_COUNT; e++)
        if (p->energy[e] != STORE_NULL)
            return 0;
    return 1;
}

static int on_sub15(void *user, const store_point *p)
{
    subs *x = user;
    if (point_empty(p) || p->ts < x->starts[0])
        return 0;
    size_t i = subs_locate(x, p->ts);
    size_t h = (size_t)((p->ts - x->hour0) / 3600);
    if (h < x->nhours)
        x->has15[h] = 1;
    if (x->cost) {
        cost_parts c;
        cost_step(x->prices, &x->cur, p->ts, p->end, p->energy, &c);
        parts_add(&x->cost[i], &c);
    }
    if (x->peak && p->energy[STORE_E_IMPORT] != STORE_NULL &&
        p->energy[STORE_E_IMPORT] > x->peak[i]) {
        /* a new highest: asked only then, so a year costs a few lookups, not a scan */
        int whole = store_minutes_held(x->s, x->mname, p->ts - DEMAND_GAP_S,
                                       p->ts + DEMAND_QUARTER_S - DEMAND_GAP_S);
        if (whole <= 0)
            return whole;
        x->peak[i] = p->energy[STORE_E_IMPORT];
        if (x->peak_ts)
            x->peak_ts[i] = p->ts;
    }
    return 0;
}

static int on_sub1h(void *user, const store_point *p)
{
    subs *x = user;
    if (point_empty(p) || p->ts < x->starts[0])
        return 0;
    size_t h = (size_t)((p->ts - x->hour0) / 3600);
    if (h < x->nhours && x->has15[h])
        return 0;
    size_t i = subs_locate(x, p->ts);
    cost_parts c;
    cost_step(x->prices, &x->cur, p->ts, p->end, p->energy, &c);
    parts_add(&x->cost[i], &c);
    return 0;
}

/* Fills x->cost / x->peak for [starts[0], to). Returns 0 or a negative errno. */
static int subs_run(store *s, const char *mname, int64_t to, subs *x)
{
    x->hour0 = store_step_floor(STORE_STEP_1H, x->starts[0]);
    x->nhours = (size_t)((to - x->hour0) / 3600 + 2);
    x->has15 = calloc(x->nhours, 1);
    if (!x->has15)
        return -ENOMEM;
    memset(&x->cur, 0, sizeof x->cur);
    x->at = 0;
    x->s = s;
    x->mname = mname;
    int rc = store_series(s, mname, x->starts[0], to, STORE_STEP_15M, 0, on_sub15, x);
    if (rc == 0 && x->cost) {
        memset(&x->cur, 0, sizeof x->cur);
        x->at = 0;
        rc = store_series(s, mname, x->starts[0], to, STORE_STEP_1H, 0, on_sub1h, x);
    }
    free(x->has15);
    x->has15 = NULL;
    return rc == -ENOENT ? 0 : rc;
}

/* ---------------------------------------------------------------------------------------------
 * Parameters
 * ------------------------------------------------------------------------------------------- */

typedef struct meter_pick {
    char name[64];
    int found;
} meter_pick;

static int first_meter_cb(void *user, const store_meter_info *m)
{
    meter_pick *p = user;
    snprintf(p->name, sizeof p->name, "%s", m->name);
    p->found = 1;
    return 1;
}

/* Copies into lv what an answer to req needs of the live meters ms (NULL: none). On the loop. */
static void live_copy(const meters *ms, const http_req *req, history_live *lv)
{
    const char *m = http_req_arg(req, "meter");
    const meter *pick = NULL;
    memset(lv, 0, sizeof *lv);
    lv->peak = P1_ABSENT;
    if (ms && m && *m) {
        pick = meters_find(ms, m);
        lv->asked_live = pick != NULL;
    } else if (ms && ms->n) {
        pick = ms->list[0];
        snprintf(lv->first, sizeof lv->first, "%s", pick->name);
    }
    const meter_sample *ls = pick ? meter_latest(pick) : NULL;
    if (ls) {
        lv->peak = ls->reading.demand_peak;
        lv->peak_time = ls->reading.demand_peak_time;
    }
}

/* The meter= parameter or the first meter (live, else stored). Returns 1 when a reply was made
 * (204 without any meter). */
static int pick_meter(store *s, const history_live *lv, const http_req *req, http_reply *out,
                      char *name, size_t cap, int *live)
{
    const char *m = http_req_arg(req, "meter");
    *live = 0;
    if (m && *m) {
        if (strlen(m) >= cap || !meter_name_valid(m))
            return bad_param(out, "meter: '%s' is not a meter name", m);
        snprintf(name, cap, "%s", m);
        *live = lv->asked_live;
        return 0;
    }
    if (lv->first[0]) {
        snprintf(name, cap, "%s", lv->first);
        *live = 1;
        return 0;
    }
    meter_pick p = {"", 0};
    int rc = store_meters(s, first_meter_cb, &p);
    if (rc < 0 && rc != 1)
        return internal(out, "store", rc);
    /* Nothing to show yet, as /api/now answers while p1d reads no meter: a state, not a mistake
     * (the dashboard of a history-only p1d cannot know it before asking). */
    if (!p.found) {
        out->status = 204;
        return 1;
    }
    snprintf(name, cap, "%s", p.name);
    return 0;
}

static int parse_time_arg(const http_req *req, http_reply *out, const char *key, int64_t *t,
                          int *given)
{
    const char *v = http_req_arg(req, key);
    *given = v && *v;
    if (!*given)
        return 0;
    const unsigned flags = CIVIL_PARSE_UNIX | CIVIL_PARSE_EXISTING;
    int rc = civil_parse(v, flags, t);
    const char *sp = strrchr(v, ' ');
    if (rc == -1 && sp && sp > v && strlen(v) < 64) {
        /* An unencoded '+' of a zone offset (?from=2025-01-31T10:00+01:00) arrives as a space
         * (form encoding); a space there means nothing else, so read it as the '+'. */
        char fix[64];
        snprintf(fix, sizeof fix, "%s", v);
        fix[sp - v] = '+';
        rc = civil_parse(fix, flags, t);
    }
    /* Moving such a time by an hour would answer for a range the caller did not ask for. */
    if (rc == CIVIL_PARSE_GAP)
        return bad_param(out,
                         "%s: '%.64s' %s or a time outside that hour", key, v,
                         civil_gap_why());
    /* No meter data exists before 1970; the bound also keeps a "1y over ten millennia" walk
     * from holding the event loop for a second. */
    if (rc == 0 && (*t < -86400 || *t >= CIVIL_TIME_END))
        return bad_param(out, "%s: out of range: times from 1970 to 2199 only, got '%.64s'", key,
                         v);
    if (rc < 0)
        return bad_param(out,
                         "%s: expected an ISO-8601 time (2025-01-31, 2025-01-31T10:00, "
                         "2025-01-31T10:00:00+01:00) or unix seconds, got '%.64s'",
                         key, v);
    return 0;
}

static int64_t step_len(store_step st)
{
    static const int64_t len[STORE_STEP_COUNT] = {1, 60, 900, 3600, 86400, 30 * 86400,
                                                  365 * 86400};
    return len[st];
}

store_step history_auto_step(int64_t from, int64_t to)
{
    int64_t r = to - from;
    if (r <= 2 * 3600)
        return STORE_STEP_RAW;
    if (r <= 2000 * 60)
        return STORE_STEP_1M;
    if (r <= 2000 * 900)
        return STORE_STEP_15M;
    if (r <= 2000 * 3600)
        return STORE_STEP_1H;
    if (r <= 2000 * 86400LL)
        return STORE_STEP_1D;
    if (r <= 2000 * 30 * 86400LL)
        return STORE_STEP_1MO;
    return STORE_STEP_1Y;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/history
 * ------------------------------------------------------------------------------------------- */

typedef struct run {
    store_step step;
    int csv;
    int presence;                 /* first pass: which fields have data */
    const field *sel[NFIELDS];
    size_t nsel;
    uint8_t present[NFIELDS];
    uint8_t nonzero[NFIELDS];
    buf cols[NFIELDS + 1];        /* JSON: [0] time, [1 + i] field i of sel */
    buf out;                      /* CSV */
    size_t npoints;
    size_t idx;                   /* output step index */
    const int64_t *starts;
    size_t nstarts;
    subs *sub;                    /* coarse steps: costs and peaks by index */
    minutes mins;                 /* 15m steps with demand_kw: quarters holding their own energy */
    const cost_prices *prices;    /* fine steps: priced per point */
    cost_cursor cur;
    int64_t prev_ts;              /* raw: the previous reading's time */
} run;

/* The value of field f at point p (output index i): 1 and *v (in f's decimals), or 0 = null. */
static int field_value(run *r, const field *f, const store_point *p, int64_t *v)
{
    if (point_empty(p) && f->kind != F_COST && f->kind != F_UNPRICED && f->kind != F_DEMAND)
        return 0;
    switch (f->kind) {
    case F_ENERGY:
        if (p->energy[f->idx] == STORE_NULL)
            return 0;
        *v = p->energy[f->idx];
        return 1;
    case F_NET: {
        int64_t i = p->energy[STORE_E_IMPORT], e = p->energy[STORE_E_EXPORT];
        if (i == STORE_NULL && e == STORE_NULL)
            return 0;
        *v = (i == STORE_NULL ? 0 : i) - (e == STORE_NULL ? 0 : e);
        return 1;
    }
    case F_STAT: {
        const store_stat *s = &p->q[f->idx];
        if (s->n <= 0)
            return 0;
        *v = f->stat == ST_MIN ? s->min : f->stat == ST_MAX ? s->max : rdiv(s->sum, s->n);
        return 1;
    }
    case F_COST:
    case F_UNPRICED: {
        cost_parts c;
        if (!r->prices)
            return 0;
        if (r->sub) {
            c = r->sub->cost[r->idx];
        } else {
            if (point_empty(p))
                return 0;
            int64_t start = r->step == STORE_STEP_RAW ? r->prev_ts : p->ts;
            int64_t end = r->step == STORE_STEP_RAW ? p->ts : p->end;
            cost_step(r->prices, &r->cur, start, end, p->energy, &c);
        }
        if (f->kind == F_COST) {
            if (!c.priced)
                return 0;
            *v = c.energy + c.gas + c.fixed;
            return 1;
        }
        if (point_empty(p) && !c.priced)
            return 0;
        *v = f->idx ? c.unpriced_dm3 : c.unpriced_wh;
        return 1;
    }
    case F_DEMAND:
        if (r->step == STORE_STEP_15M) {
            if (p->n == 0 || p->energy[STORE_E_IMPORT] == STORE_NULL ||
                !quarter_whole(&r->mins, p->ts))
                return 0;
            *v = p->energy[STORE_E_IMPORT] * 4; /* W = kW with 3 decimals */
            return 1;
        }
        if (r->sub && r->sub->peak && r->sub->peak[r->idx] >= 0) {
            *v = r->sub->peak[r->idx] * 4;
            return 1;
        }
        return 0;
    default: return 0;
    }
}

/* Default fields: those with data, plus import/export (charts expect them) and cost_eur when
 * prices exist; unpriced_* where some energy had no price. */
static int keep_field(const run *r, const field *f)
{
    if (f->kind == F_UNPRICED)
        return r->nonzero[f - fields];
    return r->present[f - fields] ||
           (f->kind == F_ENERGY && (f->idx == STORE_E_IMPORT || f->idx == STORE_E_EXPORT)) ||
           (f->kind == F_COST && r->prices);
}

static int on_point(void *user, const store_point *p)
{
    run *r = user;
    char num[40], t[CIVIL_TIME_MAX];
    if (r->step != STORE_STEP_RAW && r->starts) {
        /* The output index of this step (the store reports every step, gaps included). */
        if (r->idx >= r->nstarts || r->starts[r->idx] > p->ts)
            r->idx = 0;
        while (r->idx + 1 < r->nstarts && r->starts[r->idx + 1] <= p->ts)
            r->idx++;
    }
    if (r->step == STORE_STEP_RAW && r->npoints == 0)
        r->prev_ts = p->prev ? p->prev : p->ts; /* its energy, and the fixed charge, since then */
    if (!r->presence) {
        civil_format_local(p->ts, t, sizeof t);
        if (r->csv) {
            buf_str(&r->out, t);
        } else {
            buf_str(&r->cols[0], r->npoints ? ",\"" : "\"");
            buf_str(&r->cols[0], t);
            buf_add(&r->cols[0], "\"", 1);
        }
    }
    for (size_t i = 0; i < r->nsel; i++) {
        const field *f = r->sel[i];
        int64_t v;
        int ok = field_value(r, f, p, &v);
        if (ok)
            r->present[f - fields] = 1;
        if (ok && v)
            r->nonzero[f - fields] = 1;
        if (r->presence)
            continue;
        buf *b = r->csv ? &r->out : &r->cols[1 + i];
        if (r->csv || r->npoints)
            buf_add(b, ",", 1);
        if (ok) {
            size_t n = fmt_fixed(num, v, f->decimals);
            buf_add(b, num, n);
        } else if (!r->csv) {
            buf_add(b, "null", 4);
        }
    }
    if (r->csv && !r->presence)
        buf_add(&r->out, "\r\n", 2);
    r->npoints++;
    r->prev_ts = p->ts;
    return 0;
}

/* A meter known live but not yet in the store: its steps are all gaps. */
static int gaps_only(run *r, int64_t from, int64_t to)
{
    if (r->step == STORE_STEP_RAW)
        return 0;
    for (int64_t t = store_step_floor(r->step, from); t < to; t = store_step_next(r->step, t)) {
        store_point p;
        memset(&p, 0, sizeof p);
        p.ts = t;
        p.end = store_step_next(r->step, t);
        for (int i = 0; i < STORE_E_COUNT; i++)
            p.energy[i] = p.counter[i] = STORE_NULL;
        p.tariff = -1;
        on_point(r, &p);
    }
    return 0;
}

static int run_series(store *s, run *r, const char *mname, int64_t from, int64_t to, int live)
{
    r->npoints = 0;
    r->idx = 0;
    memset(&r->cur, 0, sizeof r->cur);
    int rc = store_series(s, mname, from, to, r->step, STORE_SERIES_GAPS, on_point, r);
    if (rc == -ENOENT && live)
        rc = gaps_only(r, from, to);
    return rc;
}

static int parse_fields(const char *arg, run *r, http_reply *out)
{
    const char *p = arg;
    if (strlen(arg) > HISTORY_FIELDS_ARG_MAX)
        return bad_param(out, "fields: longer than %d bytes", HISTORY_FIELDS_ARG_MAX);
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            if (!(n == 4 && memcmp(p, "time", 4) == 0)) {
                int i = field_find(p, n);
                if (i < 0)
                    return bad_param(out,
                                     "fields: unknown field '%.*s' (known: import_kwh, "
                                     "export_kwh, net_kwh, gas_m3, power_w_mean, cost_eur, ...; "
                                     "see docs/API.md)",
                                     (int)(n > 64 ? 64 : n), p);
                int dup = 0;
                for (size_t k = 0; k < r->nsel; k++)
                    dup |= r->sel[k] == &fields[i];
                if (!dup)
                    r->sel[r->nsel++] = &fields[i];
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int ep_history(store *s, const history_live *lv, const http_req *req, http_reply *out)
{
    char mname[64];
    int live, given;
    if (pick_meter(s, lv, req, out, mname, sizeof mname, &live))
        return 1;
    int64_t now = (int64_t)time(NULL), to = now, from;
    if (parse_time_arg(req, out, "to", &to, &given))
        return 1;
    from = to - 86400;
    if (parse_time_arg(req, out, "from", &from, &given))
        return 1;
    if (from >= to)
        return bad_param(out, "from must be before to");
    const char *sa = http_req_arg(req, "step");
    store_step step;
    if (!sa || !*sa || strcmp(sa, "auto") == 0) {
        step = history_auto_step(from, to);
    } else {
        int st = store_step_parse(sa);
        if (st < 0)
            return bad_param(out, "step: expected auto, raw, 1m, 15m, 1h, 1d, 1mo or 1y, got '%.32s'",
                             sa);
        step = (store_step)st;
    }
    const char *fa = http_req_arg(req, "format");
    int csv = 0;
    if (fa && *fa) {
        if (strcmp(fa, "csv") == 0)
            csv = 1;
        else if (strcmp(fa, "json") != 0)
            return bad_param(out, "format: expected json or csv, got '%.32s'", fa);
    }

    /* Bound the response before reading anything. */
    int64_t count = store_series_count(s, mname, from, to, step);
    if (count == -ENOENT) {
        if (!live)
            return http_reply_error(out, 404, "not_found", "no meter named '%s'", mname);
        count = step == STORE_STEP_RAW ? 0 : (to - from) / step_len(step) + 1;
    } else if (count < 0) {
        return internal(out, "store", (int)count);
    }
    if (count > HISTORY_POINTS_MAX) {
        store_step better = STORE_STEP_1Y;
        for (int st = STORE_STEP_1M; st < STORE_STEP_COUNT; st++)
            if ((to - from) / step_len((store_step)st) + 1 <= HISTORY_POINTS_MAX) {
                better = (store_step)st;
                break;
            }
        return bad_param(out,
                         "range too large: %" PRId64 " points at step=%s (at most %d); use "
                         "step=%s or a shorter range",
                         count, store_step_name(step), HISTORY_POINTS_MAX,
                         store_step_name(better > step ? better : STORE_STEP_1Y));
    }

    run *r = calloc(1, sizeof *r);
    if (!r)
        return internal(out, "history", -ENOMEM);
    r->step = step;
    r->csv = csv;
    int explicit_fields = 0;
    const char *fl = http_req_arg(req, "fields");
    if (fl && *fl) {
        explicit_fields = 1;
        if (parse_fields(fl, r, out)) {
            free(r);
            return 1;
        }
    } else {
        for (size_t i = 0; i < NFIELDS; i++)
            r->sel[r->nsel++] = &fields[i];
    }

    /* Bound the size too: every field of 84,000 daily steps would be 18 MB of JSON. With the
     * default fields the count is an upper bound (fields without data are left out later). */
    size_t ncols = r->nsel + 1;
    int64_t cells = count * (int64_t)ncols;
    if (cells > HISTORY_CELLS_MAX) {
        int64_t fit = HISTORY_CELLS_MAX / (count ? count : 1) - 1;
        free(r);
        return bad_param(out,
                         "response too large: %" PRId64 " points x %zu columns (time and "
                         "fields) is %" PRId64 " values (at most %d); ask for fewer fields "
                         "(fields=import_kwh,power_w_mean,...: %" PRId64 " fit at this step "
                         "and range), a larger step or a shorter range",
                         count, ncols, cells, HISTORY_CELLS_MAX, fit > 0 ? fit : 0);
    }

    int want_cost = 0, want_demand = 0, rc = 0;
    for (size_t i = 0; i < r->nsel; i++) {
        want_cost |= r->sel[i]->kind == F_COST || r->sel[i]->kind == F_UNPRICED;
        want_demand |= r->sel[i]->kind == F_DEMAND;
    }
    int64_t from_al = store_step_floor(step, from);
    /* a step that `to` cuts is reported whole, as the store gives it: so are its costs */
    int64_t to_end = step == STORE_STEP_RAW || to <= from_al
                         ? to
                         : store_step_next(step, store_step_floor(step, to - 1));
    cost_prices prices;
    memset(&prices, 0, sizeof prices);
    char err[COST_ERR_MAX] = "";
    if (want_cost) {
        rc = cost_db_load(store_db(s), from_al, to_end, &prices, err, sizeof err);
        if (rc < 0) {
            free(r);
            return http_reply_error(out, 500, "internal", "%s", err);
        }
        if (cost_prices_any(&prices))
            r->prices = &prices;
    }
    int64_t *starts = NULL;
    size_t nstarts = 0;
    subs sub;
    memset(&sub, 0, sizeof sub);
    int coarse = step >= STORE_STEP_1H;
    if (step != STORE_STEP_RAW && (count > 0 || live)) {
        starts = malloc((size_t)(count + 1) * sizeof *starts);
        if (!starts) {
            rc = -ENOMEM;
            goto done;
        }
        for (int64_t t = from_al; t < to && nstarts < (size_t)count + 1;
             t = store_step_next(step, t))
            starts[nstarts++] = t;
        r->starts = starts;
        r->nstarts = nstarts;
    }
    if (coarse && nstarts && ((want_cost && r->prices) || want_demand)) {
        sub.starts = starts;
        sub.n = nstarts;
        sub.prices = r->prices;
        if (want_cost && r->prices)
            sub.cost = calloc(nstarts, sizeof *sub.cost);
        if (want_demand) {
            sub.peak = malloc(nstarts * sizeof *sub.peak);
            if (sub.peak)
                for (size_t i = 0; i < nstarts; i++)
                    sub.peak[i] = -1;
        }
        if ((want_cost && r->prices && !sub.cost) || (want_demand && !sub.peak)) {
            rc = -ENOMEM;
            goto done;
        }
        rc = subs_run(s, mname, to_end, &sub);
        if (rc < 0)
            goto done;
        r->sub = &sub;
        if (!sub.cost)
            r->prices = NULL; /* cost_eur stays null where sub-steps are not priced */
    }
    if (step == STORE_STEP_15M && want_demand) {
        rc = minutes_load(s, mname, from_al, to_end, &r->mins);
        if (rc < 0)
            goto done;
    }

    if (!explicit_fields && csv) {
        r->presence = 1;
        rc = run_series(s, r, mname, from, to, live);
        if (rc < 0)
            goto done;
        r->presence = 0;
    }
    if (!explicit_fields && csv) {
        size_t k = 0;
        for (size_t i = 0; i < r->nsel; i++)
            if (keep_field(r, r->sel[i]))
                r->sel[k++] = r->sel[i];
        r->nsel = k;
    }
    if (csv) {
        buf_str(&r->out, "time");
        for (size_t i = 0; i < r->nsel; i++) {
            buf_add(&r->out, ",", 1);
            buf_str(&r->out, r->sel[i]->name);
        }
        buf_add(&r->out, "\r\n", 2);
    }
    rc = run_series(s, r, mname, from, to, live);
    if (rc < 0)
        goto done;

    if (csv) {
        if (r->out.failed) {
            rc = -E2BIG;
            goto done;
        }
        out->status = 200;
        out->content_type = "text/csv; charset=utf-8";
        out->body = r->out.p;
        out->len = r->out.len;
        r->out.p = NULL;
        civil_tm l;
        civil_local(from_al, &l);
        snprintf(out->disposition, sizeof out->disposition,
                 "attachment; filename=\"p1d-%s-%s-%04d%02d%02d.csv\"", mname, store_step_name(step),
                 l.year, l.month, l.day);
    } else {
        buf o = {0};
        char t[CIVIL_TIME_MAX];
        buf_str(&o, "{\"meter\":\"");
        buf_str(&o, mname); /* meter names are [A-Za-z0-9_-]: nothing to escape */
        buf_str(&o, "\",\"step\":\"");
        buf_str(&o, store_step_name(step));
        buf_str(&o, "\",\"from\":\"");
        civil_format_local(from_al, t, sizeof t);
        buf_str(&o, t);
        buf_str(&o, "\",\"to\":\"");
        civil_format_local(to, t, sizeof t);
        buf_str(&o, t);
        char num[32];
        snprintf(num, sizeof num, "\",\"points\":%zu", r->npoints);
        buf_str(&o, num);
        buf_str(&o, ",\"time\":[");
        buf_add(&o, r->cols[0].p ? r->cols[0].p : "", r->cols[0].len);
        buf_add(&o, "]", 1);
        for (size_t i = 0; i < r->nsel; i++) {
            const field *f = r->sel[i];
            if (!explicit_fields && !keep_field(r, f))
                continue;
            buf_str(&o, ",\"");
            buf_str(&o, f->name);
            buf_str(&o, "\":[");
            buf_add(&o, r->cols[1 + i].p ? r->cols[1 + i].p : "", r->cols[1 + i].len);
            buf_add(&o, "]", 1);
            if (r->cols[1 + i].failed)
                o.failed = 1;
        }
        buf_str(&o, "}");
        if (o.failed || r->cols[0].failed) {
            free(o.p);
            rc = -E2BIG;
            goto done;
        }
        out->status = 200;
        out->content_type = "application/json";
        out->body = o.p;
        out->len = o.len;
    }

done:
    for (size_t i = 0; i <= NFIELDS; i++)
        free(r->cols[i].p);
    free(r->out.p);
    free(r->mins.bits);
    free(r);
    free(starts);
    free(sub.cost);
    free(sub.peak);
    cost_prices_free(&prices);
    if (rc == -E2BIG)
        return http_reply_error(
            out, 400, "bad_parameter",
            "response larger than %u bytes; ask for fewer fields, a larger step "
            "or a shorter range",
            HISTORY_BODY_MAX);
    if (rc < 0)
        return internal(out, "store", rc);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/summary
 * ------------------------------------------------------------------------------------------- */

typedef struct total {
    store_point p;
    int have;
} total;

static int on_total(void *user, const store_point *p)
{
    total *t = user;
    if (point_empty(p))
        return 0;
    if (!t->have) {
        t->p = *p;
        t->have = 1;
        return 0;
    }
    /* More than one step (should not happen for the period's own step): add them up. */
    for (int i = 0; i < STORE_E_COUNT; i++)
        if (p->energy[i] != STORE_NULL)
            t->p.energy[i] = (t->p.energy[i] == STORE_NULL ? 0 : t->p.energy[i]) + p->energy[i];
    for (int q = 0; q < STORE_Q_COUNT; q++) {
        store_stat *a = &t->p.q[q];
        const store_stat *b = &p->q[q];
        if (!b->n)
            continue;
        if (!a->n || b->min < a->min)
            a->min = b->min;
        if (!a->n || b->max > a->max)
            a->max = b->max;
        a->n += b->n;
        a->sum += b->sum;
    }
    t->p.n += p->n;
    return 0;
}

static void kv_fixed_or_null(json_w *w, const char *key, int64_t v, int decimals)
{
    if (v == STORE_NULL)
        json_kv_null(w, key);
    else
        json_kv_fixed_trim(w, key, v, decimals);
}

/* The Belgian capacity tariff of the months of a summary: each month that has readings and a
 * capacity price in force at its start is billed price / 12 x the mean of its own and the 11
 * months before's peaks (those with readings: a new connection has fewer). */
#define CAP_SPAN (COST_CAPACITY_MONTHS - 1 + 12) /* the months a year's bills look at */

/* The bill of one month. */
typedef struct capacity_bill {
    int64_t price; /* per kW per year, micro-euros; COST_UNSET: the month is not billed */
    int64_t mean;  /* W: the mean of the peaks used */
    int64_t eur;   /* micro-euros */
    size_t k;      /* peaks used */
} capacity_bill;

typedef struct capacity {
    int64_t starts[CAP_SPAN + 1]; /* month starts; [n] = the end of the last */
    int64_t peak[CAP_SPAN];       /* highest quarter-hour import, Wh; -1 = no readings */
    int64_t peak_ts[CAP_SPAN];
    capacity_bill bill[CAP_SPAN]; /* from `first` on */
    size_t n, first;              /* months looked at; index of the first billed one */
    int64_t total;                /* micro-euros of all bills */
    int bills;                    /* months billed */
} capacity;

/* Bills month i of c: unbilled (price COST_UNSET) without readings or a capacity price in force
 * at its start. */
static void capacity_month(capacity *c, const cost_prices *p, size_t i)
{
    capacity_bill *b = &c->bill[i];
    int64_t w[COST_CAPACITY_MONTHS];
    b->price = cost_capacity_price(p, c->starts[i]);
    if (b->price == COST_UNSET || c->peak[i] < 0) {
        b->price = COST_UNSET;
        return;
    }
    b->k = 0;
    for (size_t j = i + 1 - COST_CAPACITY_MONTHS; j <= i; j++)
        if (c->peak[j] >= 0)
            w[b->k++] = c->peak[j] * 4;
    b->eur = cost_capacity_month(b->price, w, b->k, &b->mean);
    c->total += b->eur;
    c->bills++;
}

/* Fills c for the months of [from, to). Returns 0 or a negative errno. */
static int capacity_run(store *s, const char *mname, const cost_prices *p, int64_t from, int64_t to,
                        capacity *c)
{
    memset(c, 0, sizeof *c);
    int64_t m = from;
    for (int i = 0; i < COST_CAPACITY_MONTHS - 1; i++)
        m = civil_floor(CIVIL_MONTH, m - 1);
    c->first = COST_CAPACITY_MONTHS - 1;
    for (; m < to && c->n < CAP_SPAN; m = civil_next(CIVIL_MONTH, m)) {
        c->starts[c->n] = m;
        c->peak[c->n++] = -1;
    }
    c->starts[c->n] = m;
    subs sub;
    memset(&sub, 0, sizeof sub);
    sub.starts = c->starts;
    sub.n = c->n;
    sub.peak = c->peak;
    sub.peak_ts = c->peak_ts;
    sub.prices = p;
    int rc = subs_run(s, mname, to, &sub);
    if (rc < 0)
        return rc;
    for (size_t i = c->first; i < c->n; i++)
        capacity_month(c, p, i);
    return 0;
}

static void month_label(int64_t t, char *out, size_t cap)
{
    civil_tm tm;
    civil_local(t, &tm);
    snprintf(out, cap, "%04d-%02d", tm.year, tm.month);
}

/* "capacity_tariff": the bills of c and the peaks they used. */
static void capacity_json(json_w *w, const capacity *c, int64_t now)
{
    char t[CIVIL_TIME_MAX];
    json_obj_begin(w);
    json_kv_fixed_trim(w, "eur", c->total, 6);
    json_key(w, "months");
    json_arr_begin(w);
    for (size_t i = c->first; i < c->n; i++) {
        const capacity_bill *b = &c->bill[i];
        if (b->price == COST_UNSET)
            continue;
        json_obj_begin(w);
        month_label(c->starts[i], t, sizeof t);
        json_kv_str(w, "month", t);
        json_kv_fixed_trim(w, "price_per_kw_year", b->price, 6);
        json_kv_fixed_trim(w, "average_kw", b->mean, 3);
        json_kv_int(w, "months_used", (int64_t)b->k);
        json_kv_bool(w, "complete", c->starts[i + 1] <= now);
        json_kv_fixed_trim(w, "eur", b->eur, 6);
        json_obj_end(w);
    }
    json_arr_end(w);
    json_key(w, "peaks");
    json_arr_begin(w);
    for (size_t i = 0; i < c->n; i++) {
        json_obj_begin(w);
        month_label(c->starts[i], t, sizeof t);
        json_kv_str(w, "month", t);
        if (c->peak[i] < 0) {
            json_kv_null(w, "kw");
            json_kv_null(w, "counted_kw");
            json_kv_null(w, "time");
        } else {
            int64_t pw = c->peak[i] * 4;
            json_kv_fixed_trim(w, "kw", pw, 3);
            json_kv_fixed_trim(w, "counted_kw", cost_capacity_counted_w(pw), 3);
            civil_format_local(c->peak_ts[i], t, sizeof t);
            json_kv_str(w, "time", t);
        }
        json_obj_end(w);
    }
    json_arr_end(w);
    json_obj_end(w);
}

int history_totals_of(store *s, const char *mname, int64_t from, int64_t to, store_step step,
                      const cost_prices *prices, history_totals *out)
{
    total tot;
    memset(&tot, 0, sizeof tot);
    memset(out, 0, sizeof *out);
    out->peak15 = -1;
    int rc = store_series(s, mname, from, to, step, 0, on_total, &tot);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    int missing = rc == -ENOENT;
    out->priced = prices && cost_prices_any(prices);
    int64_t start = from;
    subs sub;
    memset(&sub, 0, sizeof sub);
    sub.starts = &start;
    sub.n = 1;
    sub.cost = out->priced ? &out->cost : NULL;
    sub.peak = &out->peak15;
    sub.peak_ts = &out->peak15_ts;
    sub.prices = prices;
    rc = subs_run(s, mname, to, &sub);
    if (rc < 0)
        return rc;
    out->have = tot.have;
    out->p = tot.p;
    return missing ? -ENOENT : 0;
}

static int ep_summary(store *s, const history_live *lv, const http_req *req, http_reply *out)
{
    char mname[64];
    int live, given;
    if (pick_meter(s, lv, req, out, mname, sizeof mname, &live))
        return 1;
    int64_t at = (int64_t)time(NULL);
    if (parse_time_arg(req, out, "at", &at, &given))
        return 1;
    const char *pa = http_req_arg(req, "period");
    store_step step = STORE_STEP_1D;
    if (pa && *pa) {
        if (strcmp(pa, "day") == 0)
            step = STORE_STEP_1D;
        else if (strcmp(pa, "month") == 0)
            step = STORE_STEP_1MO;
        else if (strcmp(pa, "year") == 0)
            step = STORE_STEP_1Y;
        else
            return bad_param(out, "period: expected day, month or year, got '%.32s'", pa);
    }
    int64_t from = store_step_floor(step, at), to = store_step_next(step, from);
    cost_prices prices;
    char err[COST_ERR_MAX] = "";
    int rc = cost_db_load(store_db(s), from, to, &prices, err, sizeof err);
    if (rc < 0)
        return http_reply_error(out, 500, "internal", "%s", err);
    history_totals tot;
    rc = history_totals_of(s, mname, from, to, step, &prices, &tot);
    if (rc == -ENOENT && !live) {
        cost_prices_free(&prices);
        return http_reply_error(out, 404, "not_found", "no meter named '%s'", mname);
    }
    if (rc == -ENOENT)
        rc = 0;
    int priced = tot.priced;
    const cost_parts parts = tot.cost;
    int64_t peak = tot.peak15, peak_ts = tot.peak15_ts;
    /* The capacity tariff is billed per month: month and year summaries carry it. */
    capacity cap;
    memset(&cap, 0, sizeof cap);
    if (rc == 0 && priced && step != STORE_STEP_1D)
        rc = capacity_run(s, mname, &prices, from, to, &cap);
    if (rc < 0) {
        cost_prices_free(&prices);
        return internal(out, "store", rc);
    }

    json_w w;
    if (json_init_alloc(&w, 2048, 65536, 0) < 0) {
        cost_prices_free(&prices);
        return internal(out, "summary", -ENOMEM);
    }
    char t[CIVIL_TIME_MAX];
    json_obj_begin(&w);
    json_kv_str(&w, "meter", mname);
    json_kv_str(&w, "period", step == STORE_STEP_1D ? "day" : step == STORE_STEP_1MO ? "month"
                                                                                      : "year");
    kv_range(&w, from, to);
    const int64_t *e = tot.p.energy;
    int64_t none[STORE_E_COUNT];
    for (int i = 0; i < STORE_E_COUNT; i++)
        none[i] = STORE_NULL;
    if (!tot.have)
        e = none;
    static const struct {
        const char *key;
        int idx;
    } en[] = {
        {"import_kwh", STORE_E_IMPORT}, {"import_t1_kwh", STORE_E_IMPORT_T1},
        {"import_t2_kwh", STORE_E_IMPORT_T2}, {"export_kwh", STORE_E_EXPORT},
        {"export_t1_kwh", STORE_E_EXPORT_T1}, {"export_t2_kwh", STORE_E_EXPORT_T2},
        {"gas_m3", STORE_E_GAS}, {"water_m3", STORE_E_WATER}, {"heat_gj", STORE_E_HEAT},
    };
    for (size_t i = 0; i < sizeof en / sizeof en[0]; i++) {
        kv_fixed_or_null(&w, en[i].key, e[en[i].idx], 3);
        if (en[i].idx == STORE_E_EXPORT_T2) {
            int64_t im = e[STORE_E_IMPORT], ex = e[STORE_E_EXPORT];
            kv_fixed_or_null(&w, "net_kwh",
                             im == STORE_NULL && ex == STORE_NULL
                                 ? STORE_NULL
                                 : (im == STORE_NULL ? 0 : im) - (ex == STORE_NULL ? 0 : ex),
                             3);
        }
    }
    json_key(&w, "cost_eur");
    if (priced && (parts.priced || cap.bills)) {
        json_obj_begin(&w);
        json_kv_fixed_trim(&w, "total", parts.energy + parts.gas + parts.fixed + cap.total, 6);
        json_kv_fixed_trim(&w, "energy", parts.energy, 6);
        json_kv_fixed_trim(&w, "gas", parts.gas, 6);
        json_kv_fixed_trim(&w, "fixed", parts.fixed, 6);
        if (cap.bills)
            json_kv_fixed_trim(&w, "capacity", cap.total, 6);
        else
            json_kv_null(&w, "capacity");
        /* energy without a price is left out of total, never counted as free */
        json_kv_bool(&w, "partial", parts.unpriced_wh != 0 || parts.unpriced_dm3 != 0);
        json_kv_fixed_trim(&w, "unpriced_kwh", parts.unpriced_wh, 3);
        json_kv_fixed_trim(&w, "unpriced_gas_m3", parts.unpriced_dm3, 3);
        json_obj_end(&w);
    } else {
        json_null(&w);
    }
    /* The highest net power, and the highest export (a solar home's feed-in peak: the lowest net
     * power, turned positive; 0 for a period that never exported). */
    const store_stat *pw = &tot.p.q[STORE_Q_POWER];
    json_key(&w, "peak_power_w");
    if (tot.have && pw->n > 0)
        json_int(&w, pw->max);
    else
        json_null(&w);
    json_key(&w, "peak_export_w");
    if (tot.have && pw->n > 0)
        json_int(&w, pw->min < 0 ? -pw->min : 0);
    else
        json_null(&w);
    /* The month's highest quarter-hour: the meter's own 1.6.0 when it sent one for this month
     * (live), else computed from the 15-minute import. */
    json_key(&w, "capacity_peak");
    int64_t mt = 0;
    if (step == STORE_STEP_1MO && live && lv->peak != P1_ABSENT &&
        p1_time_to_unix(&lv->peak_time, &mt) == 0 && mt >= from && mt < to) {
        json_obj_begin(&w);
        json_kv_fixed_trim(&w, "kw", lv->peak, 6);
        civil_format_local(mt, t, sizeof t);
        json_kv_str(&w, "time", t);
        json_kv_str(&w, "source", "meter");
        json_obj_end(&w);
    } else if (peak >= 0) {
        json_obj_begin(&w);
        json_kv_fixed_trim(&w, "kw", peak * 4, 3);
        civil_format_local(peak_ts, t, sizeof t);
        json_kv_str(&w, "time", t);
        json_kv_str(&w, "source", "computed");
        json_obj_end(&w);
    } else {
        json_null(&w);
    }
    json_key(&w, "capacity_tariff");
    if (cap.bills)
        capacity_json(&w, &cap, (int64_t)time(NULL));
    else
        json_null(&w);
    json_obj_end(&w);
    cost_prices_free(&prices);
    if (reply_json(out, 200, &w) < 0)
        return internal(out, "summary", -E2BIG);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * GET and PUT /api/prices
 * ------------------------------------------------------------------------------------------- */

static void kv_price(json_w *w, const char *key, int64_t v)
{
    if (v == COST_UNSET)
        json_kv_null(w, key);
    else
        json_kv_fixed_trim(w, key, v, 6);
}

static int parse_kind(const http_req *req, http_reply *out, cost_kind *kind)
{
    const char *k = http_req_arg(req, "kind");
    *kind = COST_KIND_POWER;
    if (!k || !*k || strcmp(k, "power") == 0 || strcmp(k, "electricity") == 0)
        return 0;
    if (strcmp(k, "gas") == 0) {
        *kind = COST_KIND_GAS;
        return 0;
    }
    return bad_param(out, "kind: expected power or gas, got '%.32s'", k);
}

static void kv_time(json_w *w, const char *key, int64_t t)
{
    char s[CIVIL_TIME_MAX];
    if (!t) {
        json_kv_null(w, key);
        return;
    }
    civil_format_local(t, s, sizeof s);
    json_kv_str(w, key, s);
}

/* "fetch": per kind what [prices] fetch_url / fetch_gas_url did last and does next (null: not
 * fetched), so a missing price has its reason without reading the log. */
static void fetch_json(json_w *w, const history *h)
{
    static const char *const kinds[] = {"power", "gas"};
    json_key(w, "fetch");
    json_obj_begin(w);
    for (int k = 0; k < 2; k++) {
        price_fetch_status st;
        memset(&st, 0, sizeof st);
        if (h->fetch)
            h->fetch(h->fetch_user, (cost_kind)k, &st);
        if (!st.on) {
            json_kv_null(w, kinds[k]);
            continue;
        }
        json_key(w, kinds[k]);
        json_obj_begin(w);
        json_kv_str(w, "url", st.url);
        const char *state = st.busy       ? "fetching"
                            : st.failures ? "failing"
                            : st.last_ok  ? "ok"
                                          : "waiting";
        json_kv_str(w, "state", state);
        kv_time(w, "last_ok", st.last_ok);
        json_kv_int(w, "prices", (int64_t)st.prices);
        kv_time(w, "until", st.until);
        kv_time(w, "next", st.next);
        json_kv_int(w, "failures", (int64_t)st.failures);
        if (st.last_error[0])
            json_kv_str(w, "last_error", st.last_error);
        else
            json_kv_null(w, "last_error");
        json_obj_end(w);
    }
    json_obj_end(w);
}

static int ep_prices_get(history *h, const http_req *req, http_reply *out)
{
    int given, from_given;
    int64_t from = civil_floor(CIVIL_DAY, (int64_t)time(NULL)), to;
    if (parse_time_arg(req, out, "from", &from, &from_given))
        return 1;
    to = civil_next(CIVIL_DAY, civil_next(CIVIL_DAY, from));
    if (parse_time_arg(req, out, "to", &to, &given))
        return 1;
    if (from >= to && !from_given)
        return bad_param(out, "to must be after from, which is the start of today when not "
                              "given: give from too");
    if (from >= to)
        return bad_param(out, "from must be before to");
    cost_prices p;
    char err[COST_ERR_MAX] = "";
    if (cost_db_load(store_db(h->s), from, to, &p, err, sizeof err) < 0)
        return http_reply_error(out, 500, "internal", "%s", err);
    if (p.dyn[0].n + p.dyn[1].n > HISTORY_PRICES_MAX) {
        cost_prices_free(&p);
        return bad_param(out, "range too large: more than %d prices; use a shorter range",
                         HISTORY_PRICES_MAX);
    }
    json_w w;
    if (json_init_alloc(&w, 4096, HISTORY_BODY_MAX, 0) < 0) {
        cost_prices_free(&p);
        return internal(out, "prices", -ENOMEM);
    }
    char t[CIVIL_TIME_MAX];
    json_obj_begin(&w);
    kv_range(&w, from, to);
    json_key(&w, "fixed");
    json_arr_begin(&w);
    static const char *const rules[] = {"none", "nl", "be"};
    for (size_t i = 0; i < p.nfixed; i++) {
        const cost_fixed *f = &p.fixed[i];
        json_obj_begin(&w);
        civil_format_local(f->from, t, sizeof t);
        json_kv_str(&w, "valid_from", t);
        if (f->to == COST_FOREVER) {
            json_kv_null(&w, "valid_to");
        } else {
            civil_format_local(f->to, t, sizeof t);
            json_kv_str(&w, "valid_to", t);
        }
        kv_price(&w, "import", f->import_[0]);
        kv_price(&w, "import_t1", f->import_[1]);
        kv_price(&w, "import_t2", f->import_[2]);
        kv_price(&w, "export", f->export_[0]);
        kv_price(&w, "export_t1", f->export_[1]);
        kv_price(&w, "export_t2", f->export_[2]);
        kv_price(&w, "gas", f->gas);
        kv_price(&w, "daily", f->daily);
        kv_price(&w, "monthly", f->monthly);
        kv_price(&w, "capacity_per_kw_year", f->capacity);
        kv_price(&w, "dynamic_import_factor", f->dyn_import_factor);
        kv_price(&w, "dynamic_import_add", f->dyn_import_add);
        kv_price(&w, "dynamic_export_factor", f->dyn_export_factor);
        kv_price(&w, "dynamic_export_add", f->dyn_export_add);
        json_kv_str(&w, "tariff_rule", rules[f->rule >= 0 && f->rule <= 2 ? f->rule : 0]);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    static const char *const kinds[] = {"power", "gas"};
    for (int k = 0; k < 2; k++) {
        json_key(&w, kinds[k]);
        json_arr_begin(&w);
        for (size_t i = 0; i < p.dyn[k].n; i++) {
            const cost_dyn *d = &p.dyn[k].v[i];
            if (d->ts >= to || d->end <= from)
                continue;
            json_obj_begin(&w);
            civil_format_local(d->ts, t, sizeof t);
            json_kv_str(&w, "time", t);
            civil_format_local(d->end, t, sizeof t);
            json_kv_str(&w, "end", t);
            json_kv_fixed_trim(&w, "price", d->import_, 6);
            kv_price(&w, "export", d->export_);
            if (k == COST_KIND_POWER) {
                /* what the costs count: the [prices] dynamic_* keys of the period applied */
                int64_t imp, exp;
                cost_dyn_effective(&p, d, &imp, &exp);
                json_kv_fixed_trim(&w, "import_price", imp, 6);
                json_kv_fixed_trim(&w, "export_price", exp, 6);
            }
            json_obj_end(&w);
        }
        json_arr_end(&w);
    }
    fetch_json(&w, h);
    json_obj_end(&w);
    cost_prices_free(&p);
    if (reply_json(out, 200, &w) < 0)
        return internal(out, "prices", -E2BIG);
    return 1;
}

/* What the media type of a prices upload declares: PT_CSV, PT_JSON or PT_XML; PT_SNIFF for none or
 * the generic types curl and file pickers send (the body decides); -1 anything else (415: an
 * image is no price list). Type names are compared without regard to case (RFC 9110, 8.3.1). */
enum { PT_SNIFF, PT_CSV, PT_JSON, PT_XML };
static int prices_ctype(const char *ct)
{
    static const struct {
        const char *name;
        int type;
    } known[] = {
        {"text/csv", PT_CSV},
        {"application/csv", PT_CSV},
        {"text/plain", PT_CSV},
        {"application/json", PT_JSON},
        {"application/xml", PT_XML},
        {"text/xml", PT_XML},
        {"application/x-www-form-urlencoded", PT_SNIFF},
        {"application/octet-stream", PT_SNIFF},
    };
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 0)
        return PT_SNIFF;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].name) == n && strncasecmp(ct, known[i].name, n) == 0)
            return known[i].type;
    return -1;
}

static int ep_prices_put(history *h, const http_req *req, http_reply *out)
{
    cost_kind kind;
    if (parse_kind(req, out, &kind))
        return 1;
    int day_start = 0;
    const char *ds = http_req_arg(req, "gas_day_start");
    if (ds && *ds) {
        if (kind != COST_KIND_GAS)
            return bad_param(out, "gas_day_start: only with kind=gas");
        if (cost_parse_day_start(ds, &day_start) < 0)
            return bad_param(out, "gas_day_start: expected HH:MM such as 06:00, got '%.32s'", ds);
    }
    if (!req->body || !req->body_len)
        return http_reply_error(
            out, 400, "bad_prices",
            "empty body: send CSV (time,price) or JSON [{\"time\":..,\"price\":..}]");
    /* The Content-Type says CSV, JSON or XML; without one, the first byte decides (cost.c). */
    const char *ct = req->content_type ? req->content_type : "";
    int ctype = prices_ctype(ct);
    if (ctype < 0)
        return http_reply_error(out, 415, "unsupported_media_type",
                                "Content-Type '%.64s': expected text/csv, application/json, "
                                "application/xml or text/plain",
                                ct);
    size_t i = 0;
    while (i < req->body_len && (req->body[i] == ' ' || req->body[i] == '\n' ||
                                 req->body[i] == '\r' || req->body[i] == '\t'))
        i++;
    int looks_json = i < req->body_len && (req->body[i] == '[' || req->body[i] == '{');
    if (ctype == PT_JSON && !looks_json)
        return http_reply_error(out, 400, "bad_prices",
                                "line 1: Content-Type is JSON but the body is not a JSON array or "
                                "object");
    if (ctype == PT_XML && (i >= req->body_len || req->body[i] != '<'))
        return http_reply_error(out, 400, "bad_prices",
                                "line 1: Content-Type is XML but the body does not start with '<'");
    if (ctype == PT_CSV && looks_json)
        return http_reply_error(out, 400, "bad_prices",
                                "line 1: Content-Type is CSV but the body looks like JSON");
    cost_dyns d = {0};
    char err[COST_ERR_MAX];
    if (cost_parse_dynamic(req->body, req->body_len, kind, day_start, &d, err, sizeof err) < 0)
        return http_reply_error(out, 400, "bad_prices", "%s", err);
    int rc = cost_db_save_dynamic(store_db(h->s), kind, &d, err, sizeof err);
    if (rc < 0) {
        cost_dyns_free(&d);
        /* a lock another program holds passes: 503 asks the client to come back */
        if (rc == -EBUSY)
            return http_reply_error(out, 503, "store_busy", "%s; try again", err);
        /* nor is a full disk the client's fault or p1d's: it comes back once there is room */
        if (rc == -ENOSPC)
            return http_reply_error(out, 503, "store_full",
                                    "%s; nothing was changed: try again once there is space (the "
                                    "readings wait in memory meanwhile, /healthz)",
                                    err);
        return http_reply_error(out, 500, "internal", "%s", err);
    }
    store_prices_changed(h->s); /* /metrics and MQTT show a new price now at once */
    json_w w;
    if (json_init_alloc(&w, 256, 4096, 0) < 0) {
        cost_dyns_free(&d);
        return internal(out, "prices", -ENOMEM);
    }
    json_obj_begin(&w);
    json_kv_str(&w, "kind", kind == COST_KIND_GAS ? "gas" : "power");
    json_kv_int(&w, "imported", (int64_t)d.n);
    kv_range(&w, d.v[0].ts, d.v[d.n - 1].end);
    json_obj_end(&w);
    cost_dyns_free(&d);
    if (reply_json(out, 200, &w) < 0)
        return internal(out, "prices", -E2BIG);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/prices/cheapest: the cheapest run of `hours` in the dynamic power prices
 * ------------------------------------------------------------------------------------------- */

#define CHEAPEST_HOURS_MAX 24           /* the longest run asked for */
#define CHEAPEST_RANGE_MAX (31 * 86400) /* the widest from..to searched */

/* One slot of import and export price (adjusted as the costs count them) in [a, z). */
typedef struct cheap_slot {
    int64_t a, z, imp, exp;
} cheap_slot;

/* num / den rounded half away from zero (den > 0). */
static int64_t div_round(int64_t num, int64_t den)
{
    int64_t q = (num < 0 ? -num : num) * 2 / den;
    q = (q + 1) / 2;
    return num < 0 ? -q : q;
}

/* hours=: a decimal such as 2 or 1.5, more than 0 and at most CHEAPEST_HOURS_MAX; to whole
 * seconds. Returns 0, or -1. */
static int parse_hours(const char *v, int64_t *secs)
{
    char *end;
    errno = 0;
    double h = strtod(v, &end);
    if (end == v || *end || errno || !(h > 0) || h > CHEAPEST_HOURS_MAX || strchr(v, 'e') ||
        strchr(v, 'E') || strchr(v, 'x') || strchr(v, 'X') || strchr(v, 'n') || strchr(v, 'N'))
        return -1;
    *secs = (int64_t)(h * 3600 + 0.5);
    return *secs > 0 ? 0 : -1;
}

/* The sums of price x seconds of the `dur` seconds from `start` in slots[k..n), the slot k
 * holding start: 0, or -1 when a hole or the end of the slots comes first. */
static int run_sum(const cheap_slot *s, size_t n, size_t k, int64_t start, int64_t dur, int64_t *si,
                   int64_t *se)
{
    int64_t t = start, need = dur;
    *si = *se = 0;
    for (; k < n && need > 0 && s[k].a <= t && t < s[k].z; k++) {
        int64_t take = s[k].z - t < need ? s[k].z - t : need;
        *si += s[k].imp * take;
        *se += s[k].exp * take;
        need -= take;
        t += take;
    }
    return need == 0 ? 0 : -1;
}

/* The cheapest `dur` seconds without a hole in slots[0..n) (sorted, without overlaps; the first
 * clipped to `from`): the mean of a piecewise constant price over a window of fixed length is
 * least with the window starting or ending at a slot boundary, so those are the candidates. Its
 * start into *start and the sums of price x seconds, or -1 when no run is long enough. The
 * earliest of equal runs. */
static int cheapest_run(const cheap_slot *s, size_t n, int64_t dur, int64_t *start,
                        int64_t *sum_imp, int64_t *sum_exp)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        for (int end = 0; end < 2; end++) {
            int64_t c = end ? s[i].z - dur : s[i].a, si, se;
            size_t k = end ? 0 : i;
            if (end) { /* the slot holding c: at or before i */
                if (c < s[0].a)
                    continue;
                k = i;
                while (k > 0 && s[k].a > c)
                    k--;
            }
            if (run_sum(s, n, k, c, dur, &si, &se) < 0)
                continue;
            if (!found || si < *sum_imp || (si == *sum_imp && c < *start)) {
                found = 1;
                *start = c;
                *sum_imp = si;
                *sum_exp = se;
            }
        }
    }
    return found ? 0 : -1;
}

static int ep_prices_cheapest(history *h, const http_req *req, http_reply *out)
{
    int given, from_given;
    int64_t now = (int64_t)time(NULL), from = now, to, dur = 3600;
    if (parse_time_arg(req, out, "from", &from, &from_given))
        return 1;
    to = civil_next(CIVIL_DAY, civil_next(CIVIL_DAY, from));
    if (parse_time_arg(req, out, "to", &to, &given))
        return 1;
    const char *hv = http_req_arg(req, "hours");
    if (hv && *hv && parse_hours(hv, &dur) < 0)
        return bad_param(out,
                         "hours: expected a number of hours more than 0 and at most %d, "
                         "such as 2 or 1.5, got '%.32s'",
                         CHEAPEST_HOURS_MAX, hv);
    if (from >= to && !from_given)
        return bad_param(out, "to must be after from, which is now when not given: give from "
                              "too");
    if (from >= to)
        return bad_param(out, "from must be before to");
    if (to - from > CHEAPEST_RANGE_MAX)
        return bad_param(out, "range too large: at most %d days from from to to",
                         CHEAPEST_RANGE_MAX / 86400);
    cost_prices p;
    char err[COST_ERR_MAX] = "";
    if (cost_db_load(store_db(h->s), from, to, &p, err, sizeof err) < 0)
        return http_reply_error(out, 500, "internal", "%s", err);
    const cost_dyns *d = &p.dyn[COST_KIND_POWER];
    cheap_slot *s = d->n ? calloc(d->n, sizeof *s) : NULL;
    if (d->n && !s) {
        cost_prices_free(&p);
        return internal(out, "prices", -ENOMEM);
    }
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const cost_dyn *r = &d->v[i];
        if (r->ts >= to || r->end <= from)
            continue;
        cheap_slot *c = &s[n++];
        c->a = r->ts > from ? r->ts : from;
        c->z = r->end < to ? r->end : to;
        cost_dyn_effective(&p, r, &c->imp, &c->exp);
    }
    cost_prices_free(&p);
    int64_t si = 0, se = 0, start = 0;
    int found = cheapest_run(s, n, dur, &start, &si, &se) == 0;
    json_w w;
    if (json_init_alloc(&w, 512, 4096, 0) < 0) {
        free(s);
        return internal(out, "prices", -ENOMEM);
    }
    char t[CIVIL_TIME_MAX];
    json_obj_begin(&w);
    kv_range(&w, from, to);
    json_kv_fixed_trim(&w, "hours", div_round(dur * 10000, 3600), 4);
    if (!found) {
        json_kv_null(&w, "start");
        json_kv_null(&w, "end");
        json_kv_null(&w, "import_price");
        json_kv_null(&w, "export_price");
    } else {
        civil_format_local(start, t, sizeof t);
        json_kv_str(&w, "start", t);
        civil_format_local(start + dur, t, sizeof t);
        json_kv_str(&w, "end", t);
        json_kv_fixed_trim(&w, "import_price", div_round(si, dur), 6);
        json_kv_fixed_trim(&w, "export_price", div_round(se, dur), 6);
    }
    json_obj_end(&w);
    free(s);
    if (reply_json(out, 200, &w) < 0)
        return internal(out, "prices", -E2BIG);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Routing
 * ------------------------------------------------------------------------------------------- */

/* The query parameters of each endpoint; each takes one value (given twice: 400). */
static const char *const history_args[] = {"meter", "from", "to", "step", "format", "fields", NULL};
static const char *const summary_args[] = {"meter", "at", "period", NULL};
static const char *const prices_get_args[] = {"from", "to", NULL};
static const char *const prices_put_args[] = {"kind", "gas_day_start", NULL};
static const char *const cheapest_args[] = {"from", "to", "hours", NULL};

/* 1 with a 400 in out when a parameter of args comes twice (the first would be taken silently). */
static int repeated(const http_req *req, http_reply *out, const char *const *args)
{
    const char *twice = http_req_repeated(req, args);
    if (!twice)
        return 0;
    if (strcmp(twice, "fields") == 0)
        return bad_param(out, "fields given twice: give one comma-separated list");
    return bad_param(out, "%s given twice", twice);
}

/* A GET of /api/history or /api/summary (path), from store s and lv: the store and whatever
 * else it reads are the calling thread's. */
static int answer_read(store *s, const history_live *lv, const http_req *req, http_reply *out)
{
    if (req->path[5] == 'h')
        return repeated(req, out, history_args) || ep_history(s, lv, req, out);
    return repeated(req, out, summary_args) || ep_summary(s, lv, req, out);
}

int history_route(void *user, const http_req *req, http_reply *out)
{
    history *h = user;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int ours = strcmp(req->path, "/api/history") == 0 || strcmp(req->path, "/api/summary") == 0 ||
               strcmp(req->path, "/api/prices") == 0 ||
               strcmp(req->path, "/api/prices/cheapest") == 0;
    if (!ours)
        return 0;
    if (!h)
        return http_reply_error(
            out, 404, "no_database",
            "%s needs a history database: start p1d with --db PATH or set [store] db", req->path);
    /* The messages name the methods of the Allow header, OPTIONS included. */
    if (strcmp(req->path, "/api/history") == 0 || strcmp(req->path, "/api/summary") == 0 ||
        strcmp(req->path, "/api/prices/cheapest") == 0) {
        if (!get) {
            out->allow = "GET, HEAD, OPTIONS";
            return http_reply_error(out, 405, "method_not_allowed",
                                    "only GET, HEAD and OPTIONS are allowed");
        }
        if (req->path[5] == 'p')
            return repeated(req, out, cheapest_args) || ep_prices_cheapest(h, req, out);
        history_live lv;
        live_copy(h->ms, req, &lv);
        return answer_read(h->s, &lv, req, out);
    }
    if (strcmp(req->path, "/api/prices") == 0) {
        if (get)
            return repeated(req, out, prices_get_args) || ep_prices_get(h, req, out);
        if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0)
            return repeated(req, out, prices_put_args) || ep_prices_put(h, req, out);
        out->allow = "GET, HEAD, PUT, POST, OPTIONS";
        return http_reply_error(out, 405, "method_not_allowed",
                                "only GET, HEAD, PUT, POST and OPTIONS are allowed");
    }
    return 0;
}

history *history_new(store *s, const meters *ms, char *err, size_t cap)
{
    history *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    h->s = s;
    h->ms = ms;
    h->now = price_now_new(s, "metrics");
    if (!h->now) {
        snprintf(err, cap, "out of memory");
        free(h);
        return NULL;
    }
    /* A read-only store cannot create tables; cost_db_load then treats them as empty. */
    char why[COST_ERR_MAX];
    if (cost_db_init(store_db(s), why, sizeof why) < 0 &&
        !strstr(why, "readonly") && !strstr(why, "read-only")) {
        snprintf(err, cap, "%s", why);
        history_free(h);
        return NULL;
    }
    return h;
}

/* http_jobs.take: the history and summary GETs go to the worker, with a copy of the live
 * meters' part of the answer. */
static int job_take(void *user, const http_req *req, void **ctx)
{
    const history *h = user;
    if (strcmp(req->path, "/api/history") != 0 && strcmp(req->path, "/api/summary") != 0)
        return 0;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return 0;
    history_live *lv = malloc(sizeof *lv);
    if (!lv)
        return 0; /* answered on the loop: slower, not lost */
    live_copy(h->ms, req, lv);
    *ctx = lv;
    return 1;
}

/* http_jobs.answer, on the worker thread: user is its own connection (h->reader). One snapshot
 * for the whole answer, as on the loop, where no commit comes between its queries; ended at
 * once, so that it holds no checkpoint back and the next answer sees the latest commits. */
static int job_answer(void *user, const http_req *req, const void *ctx, http_reply *out)
{
    store *r = user;
    int rc = store_read_begin(r);
    if (rc < 0)
        return internal(out, "store", rc);
    rc = answer_read(r, ctx, req, out);
    store_read_end(r);
    return rc;
}

static void job_interrupt(void *user)
{
    store_interrupt(user);
}

int history_jobs(history *h, http_jobs *out, char *why, size_t cap)
{
    if (!h->reader)
        h->reader = store_open_reader(h->s, why, cap);
    if (!h->reader)
        return -1;
    memset(out, 0, sizeof *out);
    out->take = job_take;
    out->take_user = h;
    out->answer = job_answer;
    out->answer_user = h->reader;
    out->interrupt = job_interrupt;
    return 0;
}

void history_set_fetch(history *h, history_fetch_fn fn, void *user)
{
    if (!h)
        return;
    h->fetch = fn;
    h->fetch_user = user;
}

void history_free(history *h)
{
    if (!h)
        return;
    price_now_free(h->now);
    store_close(h->reader);
    free(h);
}

int history_metrics(void *user, int64_t mono_ms, unsigned stale_s, char **out, size_t *len)
{
    history *h = user;
    store_stats st;
    char why[STORE_ERR_MAX];
    store_get_stats(h->s, &st);
    metrics_store ms = {.healthy = store_healthy(h->s, why, sizeof why),
                        .queued = store_pending(h->s),
                        .committed = st.committed,
                        .skipped = st.skipped,
                        .dropped = st.dropped,
                        .failures = st.failures,
                        .commit_us = st.commit_us};
    int rc = metrics_render_store(&ms, out, len);
    price_now_value v;
    int tariff = price_now_tariff(h->ms, mono_ms, (int64_t)stale_s * 1000);
    if (rc < 0 || !price_now_get(h->now, (int64_t)time(NULL), tariff, &v))
        return rc;
    return metrics_render_price(v.import_, v.export_, out, len);
}
