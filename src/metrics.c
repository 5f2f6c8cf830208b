/* metrics.c: the meters' state and latest readings as Prometheus text exposition format 0.0.4. */
#include "metrics.h"

#include "cost.h"
#include "pub.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable text buffer bounded by METRICS_MAX; errors stick so callers check once at the end. */
typedef struct mbuf {
    char *buf;
    size_t len, cap;
    int err; /* 0, -ENOMEM or -E2BIG */
} mbuf;

static int reserve(mbuf *b, size_t n)
{
    if (b->err)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    if (b->len + n > METRICS_MAX) {
        b->err = -E2BIG;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    if (cap > METRICS_MAX + 1)
        cap = METRICS_MAX + 1;
    char *p = realloc(b->buf, cap);
    if (!p) {
        b->err = -ENOMEM;
        return -1;
    }
    b->buf = p;
    b->cap = cap;
    return 0;
}

static void put(mbuf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void puts_(mbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Label values escape backslash, double quote and newline (exposition format 0.0.4). */
static void put_label_value(mbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(b, "\\\\", 2);
        else if (*s == '"')
            put(b, "\\\"", 2);
        else if (*s == '\n')
            put(b, "\\n", 2);
        else
            put(b, s, 1);
    }
}

/* mantissa / 10^decimals printed exactly, trailing fractional zeros dropped: no float rounding;
 * decimals 0 to 18. */
static void put_fixed(mbuf *b, int64_t mantissa, int decimals)
{
    char tmp[48];
    /* 6 at most here; bounded, gcc -O1 (the sanitizer builds) sees frac cannot overflow. */
    if (decimals < 0)
        decimals = 0;
    if (decimals > 18)
        decimals = 18;
    uint64_t u = mantissa < 0 ? (uint64_t)0 - (uint64_t)mantissa : (uint64_t)mantissa;
    uint64_t p10 = 1;
    for (int i = 0; i < decimals; i++)
        p10 *= 10;
    uint64_t ip = u / p10, fp = u % p10;
    int n = snprintf(tmp, sizeof tmp, "%s%llu", mantissa < 0 ? "-" : "", (unsigned long long)ip);
    if (fp) {
        char frac[24];
        snprintf(frac, sizeof frac, "%0*llu", decimals, (unsigned long long)fp);
        size_t fl = strlen(frac);
        while (fl > 0 && frac[fl - 1] == '0')
            frac[--fl] = '\0';
        snprintf(tmp + n, sizeof tmp - (size_t)n, ".%s", frac);
    }
    puts_(b, tmp);
}

static void family(mbuf *b, const char *name, const char *type, const char *help)
{
    puts_(b, "# HELP ");
    puts_(b, name);
    put(b, " ", 1);
    puts_(b, help);
    puts_(b, "\n# TYPE ");
    puts_(b, name);
    put(b, " ", 1);
    puts_(b, type);
    put(b, "\n", 1);
}

/* One sample `name{meter="m"[,lname="lval"]} value`. */
static void sample(mbuf *b, const char *name, const meter *m, const char *lname, const char *lval,
                   int64_t mantissa, int decimals)
{
    puts_(b, name);
    puts_(b, "{meter=\"");
    put_label_value(b, m->name);
    put(b, "\"", 1);
    if (lname) {
        put(b, ",", 1);
        puts_(b, lname);
        put(b, "=\"", 2);
        put_label_value(b, lval);
        put(b, "\"", 1);
    }
    puts_(b, "} ");
    put_fixed(b, mantissa, decimals);
    put(b, "\n", 1);
}

static const p1_reading *latest(const meter *m)
{
    const meter_sample *s = meter_latest(m);
    return s ? &s->reading : NULL;
}

/* kW (micro) -> W printed with 3 decimals of W. */
static void sample_kw_as_w(mbuf *b, const char *name, const meter *m, const char *lname,
                           const char *lval, p1_micro kw)
{
    if (kw != P1_ABSENT)
        sample(b, name, m, lname, lval, kw, 3);
}

static void sample_micro(mbuf *b, const char *name, const meter *m, const char *lname,
                         const char *lval, p1_micro v)
{
    if (v != P1_ABSENT)
        sample(b, name, m, lname, lval, v, 6);
}

static void energy(mbuf *b, const meters *ms, int export)
{
    const char *name = export ? "p1_energy_export_kwh_total" : "p1_energy_import_kwh_total";
    family(b, name, "counter",
           export ? "Energy delivered to the grid by tariff register (2.8.t; \"total\" = 2.8.0 "
                    "when the meter has no tariff registers), kWh."
                  : "Energy taken from the grid by tariff register (1.8.t; \"total\" = 1.8.0 "
                    "when the meter has no tariff registers), kWh.");
    for (size_t i = 0; i < ms->n; i++) {
        const meter *m = ms->list[i];
        const p1_reading *r = latest(m);
        if (!r)
            continue;
        const p1_micro *reg = export ? r->export_ : r->import;
        int any = 0;
        for (int t = 1; t <= P1_TARIFFS_MAX; t++) {
            if (reg[t] == P1_ABSENT)
                continue;
            char tl[16];
            snprintf(tl, sizeof tl, "%d", t);
            sample_micro(b, name, m, "tariff", tl, reg[t]);
            any = 1;
        }
        p1_micro total = export ? r->export_total : r->import_total;
        if (!any && total != P1_ABSENT)
            sample_micro(b, name, m, "tariff", "total", total);
    }
}

enum { PW_IMPORT, PW_EXPORT, PW_NET, PW_DEMAND, PW_DEMAND_PEAK, PW_DEMAND_FORECAST };

static p1_micro power_of(const meter_sample *s, int which)
{
    const p1_reading *r = &s->reading;
    return which == PW_IMPORT        ? r->power_import
           : which == PW_EXPORT      ? r->power_export
           : which == PW_NET         ? r->power_net
           : which == PW_DEMAND      ? r->demand_current
           : which == PW_DEMAND_PEAK ? r->demand_peak
                                     : s->demand_forecast;
}

/* A power family; the Belgian demand ones only when a meter has a value (not on every Dutch
 * meter's page). */
static void power(mbuf *b, const meters *ms, const char *name, const char *help, int which)
{
    int any = which < PW_DEMAND;
    for (size_t i = 0; i < ms->n && !any; i++) {
        const meter_sample *s = meter_latest(ms->list[i]);
        any = s && power_of(s, which) != P1_ABSENT;
    }
    if (!any)
        return;
    family(b, name, "gauge", help);
    for (size_t i = 0; i < ms->n; i++) {
        const meter_sample *s = meter_latest(ms->list[i]);
        if (s)
            sample_kw_as_w(b, name, ms->list[i], NULL, NULL, power_of(s, which));
    }
}

enum { PH_VOLTAGE, PH_CURRENT, PH_IMPORT, PH_EXPORT, PH_SAGS, PH_SWELLS };

static void phases(mbuf *b, const meters *ms, const char *name, const char *type, const char *help,
                   int which)
{
    static const char *const label[3] = {"L1", "L2", "L3"};
    family(b, name, type, help);
    for (size_t i = 0; i < ms->n; i++) {
        const meter *m = ms->list[i];
        const p1_reading *r = latest(m);
        if (!r)
            continue;
        for (int p = 0; p < 3; p++) {
            const p1_phase *ph = &r->phase[p];
            switch (which) {
            case PH_VOLTAGE:
                sample_micro(b, name, m, "phase", label[p], p1_phase_voltage(r, p));
                break;
            case PH_CURRENT:
                sample_micro(b, name, m, "phase", label[p], p1_phase_current(r, p));
                break;
            case PH_IMPORT: sample_kw_as_w(b, name, m, "phase", label[p], ph->power_import); break;
            case PH_EXPORT: sample_kw_as_w(b, name, m, "phase", label[p], ph->power_export); break;
            case PH_SAGS:
                if (ph->sags >= 0)
                    sample(b, name, m, "phase", label[p], ph->sags, 0);
                break;
            default:
                if (ph->swells >= 0)
                    sample(b, name, m, "phase", label[p], ph->swells, 0);
                break;
            }
        }
    }
}

static void mbus(mbuf *b, const meters *ms, const char *name, const char *help, p1_medium medium)
{
    family(b, name, "counter", help);
    for (size_t i = 0; i < ms->n; i++) {
        const meter *m = ms->list[i];
        const p1_reading *r = latest(m);
        if (!r)
            continue;
        for (int c = 0; c < P1_MBUS_MAX; c++) {
            const p1_mbus *mb = &r->mbus[c];
            /* Gas and water in m3, heat in GJ; the filler 0 of a channel not heard from would
             * read as a counter reset, and a value in another unit is no reading of these. */
            if (mb->medium != medium)
                continue;
            p1_micro v = p1_mbus_kept(mb);
            if (v == P1_ABSENT)
                continue;
            char cl[16];
            snprintf(cl, sizeof cl, "%d", c + 1);
            sample_micro(b, name, m, "channel", cl, v);
        }
    }
}

static void failures(mbuf *b, const meters *ms, int lng)
{
    const char *name = lng ? "p1_long_power_failures_total" : "p1_power_failures_total";
    family(b, name, "counter",
           lng ? "Long power failures in any phase counted by the meter (0-0:96.7.9)."
               : "Power failures in any phase counted by the meter (0-0:96.7.21).");
    for (size_t i = 0; i < ms->n; i++) {
        const meter *m = ms->list[i];
        const p1_reading *r = latest(m);
        if (!r)
            continue;
        int64_t v = lng ? r->long_power_failures : r->power_failures;
        if (v >= 0)
            sample(b, name, m, NULL, NULL, v, 0);
    }
}

enum { C_TELEGRAMS, C_REJECTED, C_CRC, C_RECONNECTS, C_IDLE_REOPENS, C_BYTES };

static void counter(mbuf *b, const meters *ms, const char *name, const char *help, int which)
{
    family(b, name, "counter", help);
    for (size_t i = 0; i < ms->n; i++) {
        const meter *m = ms->list[i];
        uint64_t v = which == C_TELEGRAMS      ? m->telegrams
                     : which == C_REJECTED     ? m->rejected
                     : which == C_CRC          ? m->crc_errors
                     : which == C_RECONNECTS   ? m->reconnects
                     : which == C_IDLE_REOPENS ? m->idle_reopens
                                               : m->bytes;
        sample(b, name, m, NULL, NULL, (int64_t)(v & INT64_MAX), 0);
    }
}

int metrics_render(const meters *ms, int64_t mono_ms, unsigned stale_s, const char *version,
                   char **out, size_t *len)
{
    mbuf b = {0};
    if (reserve(&b, 16384) < 0)
        return b.err;

    energy(&b, ms, 0);
    energy(&b, ms, 1);
    power(&b, ms, "p1_power_import_watts",
          "Active power taken from the grid (1.7.0; without it 16.7.0 or the phases), W.",
          PW_IMPORT);
    power(&b, ms, "p1_power_export_watts",
          "Active power delivered to the grid (2.7.0; without it 16.7.0 or the phases), W.",
          PW_EXPORT);
    power(&b, ms, "p1_power_net_watts",
          "Net active power, import minus export (negative while exporting), W.", PW_NET);
    power(&b, ms, "p1_demand_watts",
          "Belgian capacity tariff: the current quarter hour's average import power as the meter "
          "reports it (1-0:1.4.0), W.",
          PW_DEMAND);
    power(&b, ms, "p1_demand_peak_watts",
          "Belgian capacity tariff: this month's highest quarter-hour average import power "
          "(1-0:1.6.0), W.",
          PW_DEMAND_PEAK);
    power(&b, ms, "p1_demand_forecast_watts",
          "Belgian capacity tariff: the current quarter hour's average import power if the power "
          "now lasts to its end (from the import register and 1.7.0), W.",
          PW_DEMAND_FORECAST);
    phases(&b, ms, "p1_phase_voltage_volts", "gauge", "Instantaneous voltage per phase, V.",
           PH_VOLTAGE);
    phases(&b, ms, "p1_phase_current_amperes", "gauge", "Instantaneous current per phase, A.",
           PH_CURRENT);
    phases(&b, ms, "p1_phase_power_import_watts", "gauge",
           "Active power taken from the grid per phase (21.7.0, 41.7.0, 61.7.0), W.", PH_IMPORT);
    phases(&b, ms, "p1_phase_power_export_watts", "gauge",
           "Active power delivered to the grid per phase (22.7.0, 42.7.0, 62.7.0), W.", PH_EXPORT);
    phases(&b, ms, "p1_voltage_sags_total", "counter", "Voltage sags per phase counted by the meter.",
           PH_SAGS);
    phases(&b, ms, "p1_voltage_swells_total", "counter",
           "Voltage swells per phase counted by the meter.", PH_SWELLS);
    mbus(&b, ms, "p1_gas_m3_total", "Gas meter reading per M-Bus channel, m3.", P1_MEDIUM_GAS);
    mbus(&b, ms, "p1_water_m3_total", "Water meter reading per M-Bus channel, m3.",
         P1_MEDIUM_WATER);
    mbus(&b, ms, "p1_heat_gj_total", "Heat meter reading per M-Bus channel, GJ.", P1_MEDIUM_HEAT);
    failures(&b, ms, 0);
    failures(&b, ms, 1);

    family(&b, "p1_tariff", "gauge", "Tariff the meter reports as active (0-0:96.14.0).");
    for (size_t i = 0; i < ms->n; i++) {
        const p1_reading *r = latest(ms->list[i]);
        if (r && r->tariff >= 0)
            sample(&b, "p1_tariff", ms->list[i], NULL, NULL, r->tariff, 0);
    }

    counter(&b, ms, "p1_telegrams_total", "Telegrams accepted.", C_TELEGRAMS);
    counter(&b, ms, "p1_telegrams_rejected_total", "Telegrams rejected for any reason.",
            C_REJECTED);
    counter(&b, ms, "p1_crc_errors_total", "Telegrams rejected for a CRC mismatch.", C_CRC);
    counter(&b, ms, "p1_reconnects_total", "Times the source was reopened.", C_RECONNECTS);
    counter(&b, ms, "p1_idle_reopens_total",
            "Times the source was reopened because it sent nothing for idle_timeout.",
            C_IDLE_REOPENS);
    counter(&b, ms, "p1_received_bytes_total", "Bytes read from the source.", C_BYTES);

    family(&b, "p1_last_telegram_timestamp_seconds", "gauge",
           "Wall-clock time the latest accepted telegram completed, seconds since the epoch.");
    for (size_t i = 0; i < ms->n; i++) {
        const meter_sample *s = meter_latest(ms->list[i]);
        if (s)
            sample(&b, "p1_last_telegram_timestamp_seconds", ms->list[i], NULL, NULL,
                   s->received_ms, 3);
    }
    family(&b, "p1_meter_up", "gauge",
           "1 while the meter's latest telegram is younger than the stale limit, else 0.");
    for (size_t i = 0; i < ms->n; i++) {
        const meter_sample *s = meter_latest(ms->list[i]);
        int up = s && mono_ms - s->received_mono_ms <= (int64_t)stale_s * 1000;
        sample(&b, "p1_meter_up", ms->list[i], NULL, NULL, up, 0);
    }

    family(&b, "p1d_build_info", "gauge", "Always 1; the label carries p1d's version.");
    puts_(&b, "p1d_build_info{version=\"");
    put_label_value(&b, version ? version : P1_VERSION);
    puts_(&b, "\"} 1\n");

    if (b.err) {
        free(b.buf);
        return b.err;
    }
    *out = b.buf;
    *len = b.len;
    return 0;
}

/* ---- publishers ----------------------------------------------------------------------------- */

/* One lag per (meter, publisher), fetched once per scrape: every family below reads it. */
typedef struct pub_cell {
    int ok; /* the publisher has an outbox for the meter (lag() returned 0) */
    outbox_lag lag;
} pub_cell;

/* A publisher is "up" while its last attempt did not fail. */
static int pub_up(pub_state s)
{
    return s == PUB_IDLE || s == PUB_SENDING;
}

static void pub_sample(mbuf *b, const char *name, const char *meter_name, const char *pub_name,
                       int64_t mantissa, int decimals)
{
    puts_(b, name);
    put(b, "{", 1);
    if (meter_name) {
        puts_(b, "meter=\"");
        put_label_value(b, meter_name);
        puts_(b, "\",");
    }
    puts_(b, "publisher=\"");
    put_label_value(b, pub_name);
    puts_(b, "\"} ");
    put_fixed(b, mantissa, decimals);
    put(b, "\n", 1);
}

enum { PL_READINGS, PL_SECONDS, PL_DELIVERED, PL_RETRIES, PL_PARKED };

static void pub_family(mbuf *b, const meters *ms, const pub_list *pl, const pub_cell *cells,
                       const char *name, const char *type, const char *help, int which)
{
    family(b, name, type, help);
    for (size_t i = 0; i < ms->n; i++) {
        for (size_t j = 0; j < pl->n; j++) {
            const pub_cell *c = &cells[i * pl->n + j];
            if (!c->ok)
                continue;
            int64_t v = which == PL_READINGS    ? c->lag.readings
                        : which == PL_SECONDS   ? c->lag.seconds
                        : which == PL_DELIVERED ? (int64_t)(c->lag.delivered & INT64_MAX)
                        : which == PL_RETRIES   ? (int64_t)(c->lag.retries & INT64_MAX)
                                                : (int64_t)(c->lag.parked & INT64_MAX);
            pub_sample(b, name, ms->list[i]->name, pl->list[j]->name, v, 0);
        }
    }
}

int metrics_render_pubs(const meters *ms, const pub_list *pl, char **out, size_t *len)
{
    if (!pl || pl->n == 0)
        return 0;
    size_t ncell = ms->n * pl->n;
    pub_cell *cells = calloc(ncell ? ncell : 1, sizeof *cells);
    if (!cells)
        return -ENOMEM;
    for (size_t i = 0; i < ms->n; i++)
        for (size_t j = 0; j < pl->n; j++) {
            const pub *p = pl->list[j];
            pub_cell *c = &cells[i * pl->n + j];
            c->ok = p->lag && p->lag(p->impl, ms->list[i]->name, &c->lag) == 0;
        }
    pub_status st[PUB_MAX];
    for (size_t j = 0; j < pl->n && j < PUB_MAX; j++) {
        memset(&st[j], 0, sizeof st[j]);
        if (pl->list[j]->status)
            pl->list[j]->status(pl->list[j]->impl, &st[j]);
        else
            st[j].state = PUB_STOPPED;
    }
    size_t npub = pl->n < PUB_MAX ? pl->n : PUB_MAX;

    mbuf b = {.buf = *out, .len = *len, .cap = *len + 1};
    family(&b, "p1_publisher_up", "gauge",
           "1 while the publisher's last attempt succeeded (idle or sending), 0 while it retries, "
           "was refused or is stopped.");
    for (size_t j = 0; j < npub; j++)
        pub_sample(&b, "p1_publisher_up", NULL, pl->list[j]->name, pub_up(st[j].state), 0);
    family(&b, "p1_publisher_requests_total", "counter",
           "Requests (or messages) the publisher sent since start.");
    for (size_t j = 0; j < npub; j++)
        pub_sample(&b, "p1_publisher_requests_total", NULL, pl->list[j]->name,
                   (int64_t)(st[j].requests & INT64_MAX), 0);
    family(&b, "p1_publisher_failures_total", "counter",
           "Requests that failed (network, 5xx, garbage replies, 4xx) since start; for MQTT, "
           "failed connections to the broker, which requests_total does not count.");
    for (size_t j = 0; j < npub; j++)
        pub_sample(&b, "p1_publisher_failures_total", NULL, pl->list[j]->name,
                   (int64_t)(st[j].failures & INT64_MAX), 0);
    family(&b, "p1_publisher_last_success_timestamp_seconds", "gauge",
           "Wall-clock time of the publisher's last successful delivery, seconds since the epoch "
           "(absent before the first).");
    for (size_t j = 0; j < npub; j++)
        if (st[j].last_ok_ms > 0)
            pub_sample(&b, "p1_publisher_last_success_timestamp_seconds", NULL, pl->list[j]->name,
                       st[j].last_ok_ms, 3);
    pub_family(&b, ms, pl, cells, "p1_publisher_lag_readings", "gauge",
               "Stored readings of the meter the publisher has not delivered yet.", PL_READINGS);
    pub_family(&b, ms, pl, cells, "p1_publisher_lag_seconds", "gauge",
               "Age of the oldest reading of the meter the publisher has not delivered, s "
               "(0 when caught up).", PL_SECONDS);
    pub_family(&b, ms, pl, cells, "p1_publisher_delivered_total", "counter",
               "Points of the meter the publisher delivered since start.", PL_DELIVERED);
    pub_family(&b, ms, pl, cells, "p1_publisher_retries_total", "counter",
               "Failed delivery attempts for the meter since start (retried later).", PL_RETRIES);
    pub_family(&b, ms, pl, cells, "p1_publisher_parked_total", "counter",
               "Points of the meter refused permanently (4xx) and parked since start.", PL_PARKED);
    free(cells);
    *out = b.buf;
    if (b.err) {
        /* drop the partial families: the exposition stays what metrics_render made */
        b.buf[*len] = '\0';
        return b.err;
    }
    *len = b.len;
    return 0;
}

/* ---- the price in force ------------------------------------------------------------------- */

int metrics_render_price(int64_t import_, int64_t export_, char **out, size_t *len)
{
    static const struct {
        const char *name, *help;
    } fam[2] = {
        {"p1d_price_import_eur_per_kwh",
         "Electricity price in force now, EUR per kWh taken from the grid: the dynamic price "
         "(adjusted by [prices] dynamic_import_*), else the fixed price of the tariff in force."},
        {"p1d_price_export_eur_per_kwh",
         "Electricity price in force now, EUR per kWh delivered to the grid: the dynamic price "
         "(its export value, or adjusted by [prices] dynamic_export_*, or the import price), "
         "else the fixed export price of the tariff in force."},
    };
    const int64_t v[2] = {import_, export_};
    mbuf b = {.buf = *out, .len = *len, .cap = *len + 1};
    for (int i = 0; i < 2; i++) {
        if (v[i] == COST_UNSET)
            continue;
        family(&b, fam[i].name, "gauge", fam[i].help);
        puts_(&b, fam[i].name);
        put(&b, " ", 1);
        put_fixed(&b, v[i], 6);
        put(&b, "\n", 1);
    }
    *out = b.buf;
    if (b.err) {
        b.buf[*len] = '\0';
        return b.err;
    }
    *len = b.len;
    return 0;
}

/* ---- the store ---------------------------------------------------------------------------- */

int metrics_render_store(const metrics_store *st, char **out, size_t *len)
{
    /* each family's value and its decimals (the commit time: microseconds as seconds) */
    const struct {
        const char *name, *type, *help;
        uint64_t v;
        int decimals;
    } fam[] = {
        {"p1d_store_healthy", "gauge",
         "1 while the history store writes (the last commit succeeded), 0 while it keeps the "
         "readings in memory (full disk, another program's write lock, ...).",
         st->healthy != 0, 0},
        {"p1d_store_queued_readings", "gauge", "Readings waiting in memory for a commit.",
         st->queued, 0},
        {"p1d_store_readings_committed_total", "counter", "Readings written since start.",
         st->committed, 0},
        {"p1d_store_readings_skipped_total", "counter",
         "Readings not stored since start: not newer than the meter's last, or without a "
         "usable time.",
         st->skipped, 0},
        {"p1d_store_readings_dropped_total", "counter",
         "Readings dropped from a full queue since start, while commits failed.", st->dropped, 0},
        {"p1d_store_commit_failures_total", "counter", "Failed commits since start.", st->failures,
         0},
        {"p1d_store_last_commit_seconds", "gauge", "How long the last commit took.", st->commit_us,
         6},
    };
    mbuf b = {.buf = *out, .len = *len, .cap = *len + 1};
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        family(&b, fam[i].name, fam[i].type, fam[i].help);
        puts_(&b, fam[i].name);
        put(&b, " ", 1);
        put_fixed(&b, (int64_t)fam[i].v, fam[i].decimals);
        put(&b, "\n", 1);
    }
    *out = b.buf;
    if (b.err) {
        b.buf[*len] = '\0';
        return b.err;
    }
    *len = b.len;
    return 0;
}
