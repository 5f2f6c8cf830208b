/* pub_payload.c: published fields of readings and stored points, and the MQTT / Home Assistant /
 * dsmr-reader / InfluxDB payloads built from them. */
#define _GNU_SOURCE
#include "pub_payload.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "civil.h"

#define M3 "m\xc2\xb3" /* HA wants the superscript three (U+00B3), not "m3" */

static const pub_field_info fields[PUB_F_COUNT] = {
    [PUB_F_POWER] = {"power_w", "Power", "W", "power", "measurement", 0, PUB_KIND_POWER},
    [PUB_F_POWER_IMPORT] = {"power_import_w", "Power import", "W", "power", "measurement", 0,
                            PUB_KIND_POWER},
    [PUB_F_POWER_EXPORT] = {"power_export_w", "Power export", "W", "power", "measurement", 0,
                            PUB_KIND_POWER},
    [PUB_F_DEMAND] = {"demand_w", "Demand quarter-hour average", "W", "power", "measurement", 0,
                      PUB_KIND_POWER},
    [PUB_F_DEMAND_PEAK] = {"demand_peak_w", "Demand peak this month", "W", "power", "measurement",
                           0, PUB_KIND_COUNTER},
    [PUB_F_DEMAND_FORECAST] = {"demand_forecast_w", "Demand forecast this quarter hour", "W",
                               "power", "measurement", 0, PUB_KIND_POWER},
    [PUB_F_ENERGY_IMPORT] = {"energy_import_kwh", "Energy import", "kWh", "energy",
                             "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_ENERGY_IMPORT_T1] = {"energy_import_t1_kwh", "Energy import tariff 1", "kWh", "energy",
                                "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_ENERGY_IMPORT_T2] = {"energy_import_t2_kwh", "Energy import tariff 2", "kWh", "energy",
                                "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_ENERGY_EXPORT] = {"energy_export_kwh", "Energy export", "kWh", "energy",
                             "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_ENERGY_EXPORT_T1] = {"energy_export_t1_kwh", "Energy export tariff 1", "kWh", "energy",
                                "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_ENERGY_EXPORT_T2] = {"energy_export_t2_kwh", "Energy export tariff 2", "kWh", "energy",
                                "total_increasing", 3, PUB_KIND_COUNTER},
    [PUB_F_POWER_L1] = {"power_l1_w", "Power L1", "W", "power", "measurement", 0, PUB_KIND_POWER},
    [PUB_F_POWER_L2] = {"power_l2_w", "Power L2", "W", "power", "measurement", 0, PUB_KIND_POWER},
    [PUB_F_POWER_L3] = {"power_l3_w", "Power L3", "W", "power", "measurement", 0, PUB_KIND_POWER},
    [PUB_F_VOLTAGE_L1] = {"voltage_l1_v", "Voltage L1", "V", "voltage", "measurement", 1,
                          PUB_KIND_VOLTAGE},
    [PUB_F_VOLTAGE_L2] = {"voltage_l2_v", "Voltage L2", "V", "voltage", "measurement", 1,
                          PUB_KIND_VOLTAGE},
    [PUB_F_VOLTAGE_L3] = {"voltage_l3_v", "Voltage L3", "V", "voltage", "measurement", 1,
                          PUB_KIND_VOLTAGE},
    [PUB_F_CURRENT_L1] = {"current_l1_a", "Current L1", "A", "current", "measurement", 2,
                          PUB_KIND_CURRENT},
    [PUB_F_CURRENT_L2] = {"current_l2_a", "Current L2", "A", "current", "measurement", 2,
                          PUB_KIND_CURRENT},
    [PUB_F_CURRENT_L3] = {"current_l3_a", "Current L3", "A", "current", "measurement", 2,
                          PUB_KIND_CURRENT},
    [PUB_F_GAS] = {"gas_m3", "Gas", M3, "gas", "total_increasing", 3, PUB_KIND_COUNTER,
                   PUB_MBUS_GAS},
    [PUB_F_WATER] = {"water_m3", "Water", M3, "water", "total_increasing", 3, PUB_KIND_COUNTER,
                     PUB_MBUS_WATER},
    [PUB_F_HEAT] = {"heat_gj", "Heat", "GJ", "energy", "total_increasing", 3, PUB_KIND_COUNTER,
                    PUB_MBUS_HEAT},
    [PUB_F_TARIFF] = {"tariff", "Tariff", NULL, NULL, NULL, 0, PUB_KIND_COUNTER},
};

const pub_field_info *pub_payload_field(pub_field f)
{
    return &fields[f < PUB_F_COUNT ? f : 0];
}

static void set(pub_snapshot *s, pub_field f, int64_t v)
{
    s->has[f] = 1;
    s->v[f] = v;
}

/* micro-units -> the field's scale, rounding half away from zero. */
static int64_t from_micro(p1_micro v, int decimals)
{
    int64_t div = 1;
    for (int i = decimals; i < 6; i++)
        div *= 10;
    return v >= 0 ? (v + div / 2) / div : -((-v + div / 2) / div);
}

static void set_micro(pub_snapshot *s, pub_field f, p1_micro v)
{
    if (v != P1_ABSENT)
        set(s, f, from_micro(v, fields[f].decimals));
}

static void copy_bounded(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* copy_bounded() of the n bytes at src without the spaces around them. */
static void copy_trimmed(char *dst, size_t cap, const char *src, size_t n)
{
    for (; n && *src == ' '; n--)
        src++;
    while (n && src[n - 1] == ' ')
        n--;
    copy_bounded(dst, cap, src, n);
}

/* The header starts with a three-letter flag id (manufacturer), a baud-rate character, and from
 * DSMR 4 on "\2" or similar; the rest is the meter's own model text. A letter after the
 * backslash is the model's own ("/Ene5\T210-D ESMR5.0": the meter reads T210-D). */
static void device_from_header(pub_snapshot *s, const p1_reading *r)
{
    static const struct {
        const char *id, *name;
    } makers[] = {
        {"ISK", "Iskraemeco"}, {"KFM", "Kaifa"},    {"XMX", "Landis+Gyr"}, {"KMP", "Kamstrup"},
        {"SAG", "Sagemcom"},   {"ENE", "Sagemcom"}, {"FLU", "Fluvius"},    {"ZIV", "ZIV"},
        {"EIT", "EasyMeter"},  {"EMH", "EMH"},      {"LGF", "Landis+Gyr"}, {"SMR", "Landis+Gyr"},
        {"ESY", "EasyMeter"},  {"KAM", "Kamstrup"}, {"ADN", "Aidon"},      {"ELS", "Elster"},
    };
    const char *h = r->header;
    size_t n = strnlen(h, sizeof r->header);
    if (n >= 3) {
        char id[4];
        for (int i = 0; i < 3; i++)
            id[i] = (char)(h[i] >= 'a' && h[i] <= 'z' ? h[i] - 32 : h[i]);
        id[3] = '\0';
        copy_bounded(s->manufacturer, sizeof s->manufacturer, id, 3);
        for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++)
            if (strcmp(makers[i].id, id) == 0)
                copy_bounded(s->manufacturer, sizeof s->manufacturer, makers[i].name,
                             strlen(makers[i].name));
        size_t at = n >= 4 ? 4 : n;
        if (at + 1 < n && h[at] == '\\')
            at += h[at + 1] >= '0' && h[at + 1] <= '9' ? 2 : 1;
        /* "/KMP5 ZABF..." has a space where "\2" would be */
        copy_trimmed(s->model, sizeof s->model, h + at, n - at);
    }
    const char *v = r->version;
    size_t vl = strnlen(v, sizeof r->version);
    if (vl == 2 && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9')
        snprintf(s->version, sizeof s->version, "DSMR %c.%c", v[0], v[1]);
    else
        copy_bounded(s->version, sizeof s->version, v, vl);
    /* ids padded with spaces: " 2040123456789" */
    copy_trimmed(s->serial, sizeof s->serial, r->equipment_id,
                 strnlen(r->equipment_id, sizeof r->equipment_id));
}

void pub_payload_set_demand_forecast(pub_snapshot *s, p1_micro kw)
{
    if (kw != P1_ABSENT)
        set(s, PUB_F_DEMAND_FORECAST, from_micro(kw, 3)); /* kW (micro) to W */
}

void pub_payload_from_reading(pub_snapshot *s, const p1_reading *r, int64_t ts)
{
    memset(s, 0, sizeof *s);
    s->ts = ts;
    set_micro(s, PUB_F_ENERGY_IMPORT, r->import_total);
    set_micro(s, PUB_F_ENERGY_IMPORT_T1, r->import[1]);
    set_micro(s, PUB_F_ENERGY_IMPORT_T2, r->import[2]);
    set_micro(s, PUB_F_ENERGY_EXPORT, r->export_total);
    set_micro(s, PUB_F_ENERGY_EXPORT_T1, r->export_[1]);
    set_micro(s, PUB_F_ENERGY_EXPORT_T2, r->export_[2]);
    /* kW (micro) to W is micro / 1000: the field has 0 decimals of W = 3 decimals of kW. */
    if (r->power_net != P1_ABSENT)
        set(s, PUB_F_POWER, from_micro(r->power_net, 3));
    if (r->power_import != P1_ABSENT)
        set(s, PUB_F_POWER_IMPORT, from_micro(r->power_import, 3));
    if (r->power_export != P1_ABSENT)
        set(s, PUB_F_POWER_EXPORT, from_micro(r->power_export, 3));
    /* The Belgian capacity tariff bills the month's peak quarter-hour. */
    if (r->demand_current != P1_ABSENT)
        set(s, PUB_F_DEMAND, from_micro(r->demand_current, 3));
    if (r->demand_peak != P1_ABSENT)
        set(s, PUB_F_DEMAND_PEAK, from_micro(r->demand_peak, 3));
    for (int i = 0; i < 3 && i < r->nphases; i++) {
        const p1_phase *ph = &r->phase[i];
        if (ph->power_import != P1_ABSENT || ph->power_export != P1_ABSENT) {
            p1_micro net = (ph->power_import != P1_ABSENT ? ph->power_import : 0) -
                           (ph->power_export != P1_ABSENT ? ph->power_export : 0);
            set(s, (pub_field)(PUB_F_POWER_L1 + i), from_micro(net, 3));
        }
    }
    for (int i = 0; i < 3; i++) { /* a single-phase meter's 12.7.0 / 11.7.0 as L1's */
        set_micro(s, (pub_field)(PUB_F_VOLTAGE_L1 + i), p1_phase_voltage(r, i));
        set_micro(s, (pub_field)(PUB_F_CURRENT_L1 + i), p1_phase_current(r, i));
    }
    /* Gas and water in m3, heat in GJ (the decoder turns dm3 and litres into m3 and MJ into GJ,
     * and p1_mbus_gj() converts a meter counting in kWh or MWh); a value in another unit is left
     * out rather than sent under a unit it does not have. So is the 0 a meter sends at a
     * placeholder time (632525252525S: the device is not paired, or not heard from): on a
     * total_increasing counter, Home Assistant would take it for a meter reset. */
    int g = p1_reading_mbus_find(r, P1_MEDIUM_GAS);
    if (g >= 0 && p1_mbus_m3(&r->mbus[g]) != P1_ABSENT) {
        set_micro(s, PUB_F_GAS, p1_mbus_m3(&r->mbus[g]));
        int64_t t;
        if (p1_time_to_unix(&r->mbus[g].time, &t) == 0)
            s->gas_ts = t;
    }
    int wi = p1_reading_mbus_find(r, P1_MEDIUM_WATER);
    if (wi >= 0)
        set_micro(s, PUB_F_WATER, p1_mbus_m3(&r->mbus[wi]));
    int hi = p1_reading_mbus_find(r, P1_MEDIUM_HEAT);
    if (hi >= 0)
        set_micro(s, PUB_F_HEAT, p1_mbus_gj(&r->mbus[hi]));
    if (r->tariff >= 0)
        set(s, PUB_F_TARIFF, r->tariff);
    device_from_header(s, r);
    /* The channel's id also with a placeholder value: the device stays the same device. */
    static const p1_medium media[PUB_MBUS_COUNT] = {
        [PUB_MBUS_GAS] = P1_MEDIUM_GAS,
        [PUB_MBUS_WATER] = P1_MEDIUM_WATER,
        [PUB_MBUS_HEAT] = P1_MEDIUM_HEAT,
    };
    for (int k = PUB_MBUS_GAS; k < PUB_MBUS_COUNT; k++) {
        int i = p1_reading_mbus_find(r, media[k]);
        if (i >= 0)
            copy_bounded(s->mbus_id[k], sizeof s->mbus_id[k], r->mbus[i].id,
                         strnlen(r->mbus[i].id, sizeof r->mbus[i].id));
    }
}

static int64_t stat_mean(const store_stat *st)
{
    /* Integer mean rounded half away from zero, like the store's own means. */
    return st->sum >= 0 ? (st->sum + st->n / 2) / st->n : -((-st->sum + st->n / 2) / st->n);
}

void pub_payload_from_point(pub_snapshot *s, const store_point *p)
{
    static const struct {
        int e;
        pub_field f;
    } counters[] = {
        {STORE_E_IMPORT, PUB_F_ENERGY_IMPORT},
        {STORE_E_IMPORT_T1, PUB_F_ENERGY_IMPORT_T1},
        {STORE_E_IMPORT_T2, PUB_F_ENERGY_IMPORT_T2},
        {STORE_E_EXPORT, PUB_F_ENERGY_EXPORT},
        {STORE_E_EXPORT_T1, PUB_F_ENERGY_EXPORT_T1},
        {STORE_E_EXPORT_T2, PUB_F_ENERGY_EXPORT_T2},
        {STORE_E_GAS, PUB_F_GAS},
        {STORE_E_WATER, PUB_F_WATER},
        {STORE_E_HEAT, PUB_F_HEAT},
    };
    static const struct {
        int q;
        pub_field f;
    } quantities[] = {
        {STORE_Q_POWER, PUB_F_POWER},           {STORE_Q_POWER_L1, PUB_F_POWER_L1},
        {STORE_Q_POWER_L2, PUB_F_POWER_L2},     {STORE_Q_POWER_L3, PUB_F_POWER_L3},
        {STORE_Q_VOLTAGE_L1, PUB_F_VOLTAGE_L1}, {STORE_Q_VOLTAGE_L2, PUB_F_VOLTAGE_L2},
        {STORE_Q_VOLTAGE_L3, PUB_F_VOLTAGE_L3}, {STORE_Q_CURRENT_L1, PUB_F_CURRENT_L1},
        {STORE_Q_CURRENT_L2, PUB_F_CURRENT_L2}, {STORE_Q_CURRENT_L3, PUB_F_CURRENT_L3},
    };
    memset(s, 0, sizeof *s);
    s->ts = p->ts;
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        if (p->counter[counters[i].e] != STORE_NULL)
            set(s, counters[i].f, p->counter[counters[i].e]);
    for (size_t i = 0; i < sizeof quantities / sizeof quantities[0]; i++)
        if (p->q[quantities[i].q].n > 0)
            set(s, quantities[i].f, stat_mean(&p->q[quantities[i].q]));
    /* The store keeps net power only; a P1 meter imports or exports at one time, never both. */
    if (s->has[PUB_F_POWER]) {
        int64_t net = s->v[PUB_F_POWER];
        set(s, PUB_F_POWER_IMPORT, net > 0 ? net : 0);
        set(s, PUB_F_POWER_EXPORT, net < 0 ? -net : 0);
    }
    if (p->tariff >= 0)
        set(s, PUB_F_TARIFF, p->tariff);
}

/* Writes v / 10^decimals exactly, without trailing fractional zeros. */
static size_t format_scaled(int64_t v, int decimals, int trim, char *out, size_t cap)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t div = 1;
    for (int i = 0; i < decimals; i++)
        div *= 10;
    uint64_t ip = mag / div, fp = mag % div;
    int n;
    if (decimals == 0 || (trim && fp == 0)) {
        n = snprintf(out, cap, "%s%" PRIu64, v < 0 ? "-" : "", ip);
    } else {
        int d = decimals;
        while (trim && d > 0 && fp % 10 == 0) {
            fp /= 10;
            d--;
        }
        n = snprintf(out, cap, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", ip, d, fp);
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t pub_payload_value(const pub_snapshot *s, pub_field f, char *out, size_t cap)
{
    if (f >= PUB_F_COUNT || !s->has[f] || cap == 0)
        return 0;
    return format_scaled(s->v[f], fields[f].decimals, 1, out, cap);
}

size_t pub_payload_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                   const char *meter, pub_field f)
{
    int n = snprintf(out, cap, "%s/sensor/p1d_%s/%s/config", disc_prefix, meter,
                     pub_payload_field(f)->name);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The electricity meter's device block: what its header and equipment id say. */
static void meter_device(json_w *w, const char *meter, const pub_snapshot *s)
{
    char buf[PUB_TOPIC_MAX];
    json_obj_begin(w);
    json_key(w, "identifiers");
    json_arr_begin(w);
    snprintf(buf, sizeof buf, "p1d_%s", meter);
    json_str(w, buf);
    json_arr_end(w);
    snprintf(buf, sizeof buf, "P1 meter %s", meter);
    json_kv_str(w, "name", buf);
    json_kv_str(w, "manufacturer", s->manufacturer[0] ? s->manufacturer : "unknown");
    snprintf(buf, sizeof buf, "%s (via p1d)", s->model[0] ? s->model : "smart meter");
    json_kv_str(w, "model", buf);
    snprintf(buf, sizeof buf, "%s%sp1d %s", s->version, s->version[0] ? ", " : "", P1_VERSION);
    json_kv_str(w, "sw_version", buf);
    if (s->serial[0])
        json_kv_str(w, "serial_number", s->serial);
    json_obj_end(w);
}

/* Whether s has a value of the electricity meter itself, whose config announces its device. A
 * heat interface's P1 port (Warmtelink) sends its heat meter alone. */
int pub_payload_has_meter_value(const pub_snapshot *s)
{
    for (int f = 0; f < PUB_F_COUNT; f++)
        if (s->has[f] && fields[f].mbus == PUB_MBUS_NONE)
            return 1;
    return 0;
}

/* An M-Bus device's block, as Home Assistant's own DSMR integration shows it: a device of its
 * own behind the electricity meter (when that one is announced: a via_device Home Assistant does
 * not know is an error in its log). The identifier is the meter's name and the medium, never the
 * M-Bus id: a replaced gas meter stays the same Home Assistant device (area, history), with the
 * new serial_number. The telegram names no maker or model of an M-Bus device. */
static void mbus_device(json_w *w, const char *meter, const pub_snapshot *s, pub_mbus k)
{
    static const char *const media[PUB_MBUS_COUNT][2] = {
        [PUB_MBUS_GAS] = {"gas", "Gas meter"},
        [PUB_MBUS_WATER] = {"water", "Water meter"},
        [PUB_MBUS_HEAT] = {"heat", "Heat meter"},
    };
    char buf[PUB_TOPIC_MAX];
    json_obj_begin(w);
    json_key(w, "identifiers");
    json_arr_begin(w);
    snprintf(buf, sizeof buf, "p1d_%s.%s", meter, media[k][0]); /* '.' is never in a name */
    json_str(w, buf);
    json_arr_end(w);
    snprintf(buf, sizeof buf, "%s %s", media[k][1], meter);
    json_kv_str(w, "name", buf);
    if (s->mbus_id[k][0])
        json_kv_str(w, "serial_number", s->mbus_id[k]);
    snprintf(buf, sizeof buf, "p1d_%s", meter);
    if (pub_payload_has_meter_value(s))
        json_kv_str(w, "via_device", buf);
    json_obj_end(w);
}

/* The start of a config: its name, its unique_id uid and the entity id made from it, and its
 * state topic. */
/* label NULL: the entity is named after its device alone. */
static void discovery_head(json_w *w, const char *domain, const char *label, const char *uid,
                           const char *state_topic)
{
    json_obj_begin(w);
    json_kv_str(w, "name", label);
    json_kv_str(w, "unique_id", uid);
    /* Home Assistant 2025.10 replaced object_id with default_entity_id ("sensor.<id>") and
     * ignores object_id from 2026.4; older versions know only object_id, so send both. */
    json_kv_str(w, "object_id", uid);
    /* an entity id as Home Assistant validates it (cv.entity_id): lower case letters, digits
     * and single '_' inside; a meter named "Site-42_Home" gives sensor.p1d_site_42_home_... */
    char eid[PUB_TOPIC_MAX + 40];
    size_t n = (size_t)snprintf(eid, sizeof eid, "%s.", domain), start = n;
    for (const char *c = uid; *c && n + 1 < sizeof eid; c++) {
        char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            eid[n++] = ch;
        else if (n > start && eid[n - 1] != '_')
            eid[n++] = '_';
    }
    while (n > start && eid[n - 1] == '_')
        n--;
    eid[n] = '\0';
    json_kv_str(w, "default_entity_id", eid);
    json_kv_str(w, "state_topic", state_topic);
}

/* Available while both topics say "online" (avail_topic NULL: no availability at all). */
static void discovery_availability(json_w *w, const char *avail_topic, const char *own_topic)
{
    if (!avail_topic)
        return;
    json_key(w, "availability");
    json_arr_begin(w);
    for (int i = 0; i < 2; i++) {
        json_obj_begin(w);
        json_kv_str(w, "topic", i == 0 ? avail_topic : own_topic);
        json_kv_str(w, "payload_available", "online");
        json_kv_str(w, "payload_not_available", "offline");
        json_obj_end(w);
    }
    json_arr_end(w);
    json_kv_str(w, "availability_mode", "all");
}

/* The end of a config: the origin. Home Assistant names the application in its log of
 * discovered and changed entities. */
static void discovery_tail(json_w *w)
{
    json_key(w, "origin");
    json_obj_begin(w);
    json_kv_str(w, "name", "p1d");
    json_kv_str(w, "sw_version", P1_VERSION);
    json_obj_end(w);
    json_obj_end(w);
}

void pub_payload_discovery(json_w *w, const char *prefix, const char *avail_topic,
                           const char *meter, const pub_snapshot *s, pub_field f)
{
    const pub_field_info *fi = pub_payload_field(f);
    char uid[PUB_TOPIC_MAX], buf[PUB_TOPIC_MAX];
    snprintf(uid, sizeof uid, "p1d_%s_%s", meter, fi->name);
    snprintf(buf, sizeof buf, "%s/%s/%s", prefix, meter, fi->name);
    discovery_head(w, "sensor", fi->label, uid, buf);
    if (fi->device_class)
        json_kv_str(w, "device_class", fi->device_class);
    if (fi->unit)
        json_kv_str(w, "unit_of_measurement", fi->unit);
    if (fi->state_class)
        json_kv_str(w, "state_class", fi->state_class);
    if (fi->unit)
        json_kv_int(w, "suggested_display_precision", fi->decimals);
    /* Available while p1d is connected and this meter sends telegrams. */
    snprintf(buf, sizeof buf, "%s/%s/availability", prefix, meter);
    discovery_availability(w, avail_topic, buf);
    json_key(w, "device");
    if (fi->mbus != PUB_MBUS_NONE)
        mbus_device(w, meter, s, fi->mbus);
    else
        meter_device(w, meter, s);
    discovery_tail(w);
}

/* ---- the price in force ------------------------------------------------------------------ */

static const char *const price_names[2] = {"import_eur_kwh", "export_eur_kwh"};

/* The topic prefix as a discovery node id and unique_id part: [A-Za-z0-9_-] ("home/p1d" ->
 * "home_p1d"), so that p1d instances with a prefix each have entities each. */
static void price_node(char *out, size_t cap, const char *prefix)
{
    size_t n = 0;
    for (const char *c = prefix; *c && n + 1 < cap; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '_' || *c == '-';
        out[n++] = ok ? *c : '_';
    }
    out[n] = '\0';
}

/* The device of p1d's own entities under topic prefix `prefix` (node: its id form): identifier
 * "<node>.<what>" ('.' is in no meter's identifier), named "<label> <prefix>". */
static void node_device(json_w *w, const char *node, const char *what, const char *label,
                        const char *prefix, const char *model)
{
    char buf[PUB_TOPIC_MAX + 64];
    json_key(w, "device");
    json_obj_begin(w);
    json_key(w, "identifiers");
    json_arr_begin(w);
    snprintf(buf, sizeof buf, "%s.%s", node, what);
    json_str(w, buf);
    json_arr_end(w);
    snprintf(buf, sizeof buf, "%s %s", label, prefix);
    json_kv_str(w, "name", buf);
    json_kv_str(w, "manufacturer", "p1d");
    json_kv_str(w, "model", model);
    snprintf(buf, sizeof buf, "p1d %s", P1_VERSION);
    json_kv_str(w, "sw_version", buf);
    json_obj_end(w);
}

size_t pub_payload_price_topic(char *out, size_t cap, const char *prefix, int exp)
{
    int n = exp < 0 ? snprintf(out, cap, "%s/price/availability", prefix)
                    : snprintf(out, cap, "%s/price/%s", prefix, price_names[exp != 0]);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t pub_payload_price_value(int64_t micro, char *out, size_t cap)
{
    return cap ? format_scaled(micro, 6, 1, out, cap) : 0;
}

size_t pub_payload_price_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                         const char *prefix, int exp)
{
    char node[PUB_TOPIC_MAX];
    price_node(node, sizeof node, prefix);
    int n = snprintf(out, cap, "%s/sensor/%s_price/%s/config", disc_prefix, node,
                     price_names[exp != 0]);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void pub_payload_price_discovery(json_w *w, const char *prefix, const char *avail_topic, int exp)
{
    char node[PUB_TOPIC_MAX], uid[PUB_TOPIC_MAX + 32], topic[PUB_TOPIC_MAX], avail[PUB_TOPIC_MAX];
    price_node(node, sizeof node, prefix);
    snprintf(uid, sizeof uid, "%s_price_%s", node, price_names[exp != 0]);
    pub_payload_price_topic(topic, sizeof topic, prefix, exp != 0);
    discovery_head(w, "sensor", exp ? "Export price" : "Import price", uid, topic);
    /* No device class: monetary is an amount of money (a currency as the unit, and no state
     * class but "total"), not a price per kWh. As Home Assistant's own price sensors do: a unit
     * of EUR/kWh (what its energy dashboard asks of a price entity) and measurement, so that it
     * keeps long-term statistics (mean, min, max) of the price. */
    json_kv_str(w, "unit_of_measurement", "EUR/kWh");
    json_kv_str(w, "state_class", "measurement");
    json_kv_int(w, "suggested_display_precision", 4);
    /* Available while p1d is connected and a price applies now. */
    pub_payload_price_topic(avail, sizeof avail, prefix, -1);
    discovery_availability(w, avail_topic, avail);
    node_device(w, node, "price", "Electricity price", prefix,
                "Dynamic and fixed prices (via p1d)");
    discovery_tail(w);
}

size_t pub_payload_alerts_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                          const char *prefix)
{
    char node[PUB_TOPIC_MAX];
    price_node(node, sizeof node, prefix);
    int n = snprintf(out, cap, "%s/event/%s_alerts/alerts/config", disc_prefix, node);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void pub_payload_alerts_discovery(json_w *w, const char *prefix, const char *avail_topic,
                                  const char *const *types)
{
    char node[PUB_TOPIC_MAX], uid[PUB_TOPIC_MAX + 32], topic[PUB_TOPIC_MAX + 8];
    price_node(node, sizeof node, prefix);
    snprintf(uid, sizeof uid, "%s_alerts", node);
    snprintf(topic, sizeof topic, "%s/alerts", prefix);
    discovery_head(w, "event", NULL, uid, topic);
    json_key(w, "event_types");
    json_arr_begin(w);
    for (size_t i = 0; types[i]; i++)
        json_str(w, types[i]);
    json_arr_end(w);
    /* An event entity wants {"event_type": ...}; the alert says "event". Its other fields
     * become the event's attributes, for automations and the logbook. */
    json_kv_str(w, "value_template",
                "{{ {'event_type': value_json.event, 'meter': value_json.meter, "
                "'title': value_json.title, 'message': value_json.message, "
                "'time': value_json.time} | to_json }}");
    json_kv_str(w, "icon", "mdi:bell-alert");
    if (avail_topic) {
        json_kv_str(w, "availability_topic", avail_topic);
        json_kv_str(w, "payload_available", "online");
        json_kv_str(w, "payload_not_available", "offline");
    }
    node_device(w, node, "alerts", "Alerts", prefix, "Meter and price alerts (via p1d)");
    discovery_tail(w);
}

/* dsmr-reader publishes power in kW and times as ISO 8601. */
enum { DSMR_KW = 1, DSMR_POS = 2, DSMR_NEG = 4, DSMR_TIME = 8, DSMR_GAS_TIME = 16 };
static const struct {
    const char *name;
    pub_field f;
    int how;
} dsmr[] = {
    {"electricity_delivered_1", PUB_F_ENERGY_IMPORT_T1, 0},
    {"electricity_returned_1", PUB_F_ENERGY_EXPORT_T1, 0},
    {"electricity_delivered_2", PUB_F_ENERGY_IMPORT_T2, 0},
    {"electricity_returned_2", PUB_F_ENERGY_EXPORT_T2, 0},
    {"electricity_currently_delivered", PUB_F_POWER_IMPORT, DSMR_KW},
    {"electricity_currently_returned", PUB_F_POWER_EXPORT, DSMR_KW},
    {"phase_currently_delivered_l1", PUB_F_POWER_L1, DSMR_KW | DSMR_POS},
    {"phase_currently_delivered_l2", PUB_F_POWER_L2, DSMR_KW | DSMR_POS},
    {"phase_currently_delivered_l3", PUB_F_POWER_L3, DSMR_KW | DSMR_POS},
    {"phase_currently_returned_l1", PUB_F_POWER_L1, DSMR_KW | DSMR_NEG},
    {"phase_currently_returned_l2", PUB_F_POWER_L2, DSMR_KW | DSMR_NEG},
    {"phase_currently_returned_l3", PUB_F_POWER_L3, DSMR_KW | DSMR_NEG},
    {"extra_device_timestamp", PUB_F_GAS, DSMR_GAS_TIME},
    {"extra_device_delivered", PUB_F_GAS, 0},
    {"phase_voltage_l1", PUB_F_VOLTAGE_L1, 0},
    {"phase_voltage_l2", PUB_F_VOLTAGE_L2, 0},
    {"phase_voltage_l3", PUB_F_VOLTAGE_L3, 0},
    {"phase_power_current_l1", PUB_F_CURRENT_L1, 0},
    {"phase_power_current_l2", PUB_F_CURRENT_L2, 0},
    {"phase_power_current_l3", PUB_F_CURRENT_L3, 0},
    {"timestamp", PUB_F_COUNT, DSMR_TIME},
};

int pub_payload_dsmr_count(void)
{
    return (int)(sizeof dsmr / sizeof dsmr[0]);
}

size_t pub_payload_dsmr(const pub_snapshot *s, int i, const char **name, char *out, size_t cap)
{
    if (i < 0 || i >= pub_payload_dsmr_count())
        return 0;
    *name = dsmr[i].name;
    int how = dsmr[i].how;
    if (how & DSMR_TIME)
        return s->ts > 0 ? civil_format_utc(s->ts, out, cap) : 0;
    pub_field f = dsmr[i].f;
    if (!s->has[f])
        return 0;
    if (how & DSMR_GAS_TIME)
        return s->gas_ts > 0 ? civil_format_utc(s->gas_ts, out, cap) : 0;
    int64_t v = s->v[f];
    if (how & DSMR_POS)
        v = v > 0 ? v : 0;
    if (how & DSMR_NEG)
        v = v < 0 ? -v : 0;
    if (how & DSMR_KW) /* W with 0 decimals = kW with 3 */
        return format_scaled(v, 3, 0, out, cap);
    return format_scaled(v, fields[f].decimals, 0, out, cap);
}

/* Appends s to the line being built with a backslash before each byte of `special`: line
 * protocol escapes comma and space in a measurement, and comma, '=' and space in tag keys, tag
 * values and field keys. Returns 0, or -1 when it does not fit. */
static int lp_escaped(char *out, size_t cap, size_t *n, const char *s, const char *special)
{
    size_t k = *n;
    for (; *s; s++) {
        if (strchr(special, *s) && k + 1 < cap)
            out[k++] = '\\';
        if (k + 1 >= cap)
            return -1;
        out[k++] = *s;
    }
    out[k] = '\0';
    *n = k;
    return 0;
}

/* Appends ",name=value" (or "name=value" first) to the line being built. */
static int lp_field(char *out, size_t cap, size_t *n, int *first, const char *name, int64_t v,
                    int decimals, int integer)
{
    char val[PUB_VALUE_MAX];
    if (!format_scaled(v, decimals, 1, val, sizeof val))
        return -1;
    size_t m = *n;
    if (lp_escaped(out, cap, &m, *first ? " " : ",", "") < 0 ||
        lp_escaped(out, cap, &m, name, ",= ") < 0)
        return -1;
    int k = snprintf(out + m, cap - m, "=%s%s", val, integer ? "i" : "");
    if (k < 0 || (size_t)k >= cap - m)
        return -1;
    *n = m + (size_t)k;
    *first = 0;
    return 0;
}

int pub_payload_influx(char *out, size_t cap, size_t *len, const char *measurement,
                       const char *meter, const store_point *p)
{
    size_t n = *len;
    int first = 1, rc = 0;
    if (p->n <= 0 || n >= cap)
        return p->n <= 0 ? 0 : -1;
    if (lp_escaped(out, cap, &n, measurement, ", ") < 0 ||
        lp_escaped(out, cap, &n, ",meter=", "") < 0 || lp_escaped(out, cap, &n, meter, ",= ") < 0)
        return -1;
    if (p->n == 1 && p->end == p->ts) {
        pub_snapshot s;
        pub_payload_from_point(&s, p);
        for (int f = 0; f < PUB_F_COUNT && rc == 0; f++)
            if (s.has[f])
                rc = lp_field(out, cap, &n, &first, fields[f].name, s.v[f], fields[f].decimals,
                              f == PUB_F_TARIFF);
    } else {
        /* An aggregate: energy used in the step (kWh, m3) and the means of the quantities. */
        static const char *const e_names[STORE_E_COUNT] = {"energy_import_delta_kwh",
                                                           "energy_import_t1_delta_kwh",
                                                           "energy_import_t2_delta_kwh",
                                                           "energy_export_delta_kwh",
                                                           "energy_export_t1_delta_kwh",
                                                           "energy_export_t2_delta_kwh",
                                                           "gas_delta_m3",
                                                           "water_delta_m3",
                                                           "heat_delta_mj"};
        static const struct {
            const char *name;
            int decimals;
        } q_names[STORE_Q_COUNT] = {
            {"power_w", 0},      {"power_l1_w", 0},   {"power_l2_w", 0},   {"power_l3_w", 0},
            {"voltage_l1_v", 1}, {"voltage_l2_v", 1}, {"voltage_l3_v", 1}, {"current_l1_a", 2},
            {"current_l2_a", 2}, {"current_l3_a", 2},
        };
        for (int e = 0; e < STORE_E_COUNT && rc == 0; e++)
            if (p->energy[e] != STORE_NULL)
                rc = lp_field(out, cap, &n, &first, e_names[e], p->energy[e],
                              e == STORE_E_HEAT ? 0 : 3, 0);
        for (int q = 0; q < STORE_Q_COUNT && rc == 0; q++) {
            if (p->q[q].n <= 0)
                continue;
            rc = lp_field(out, cap, &n, &first, q_names[q].name, stat_mean(&p->q[q]),
                          q_names[q].decimals, 0);
            if (rc == 0 && q == STORE_Q_POWER) {
                rc = lp_field(out, cap, &n, &first, "power_min_w", p->q[q].min, 0, 0);
                if (rc == 0)
                    rc = lp_field(out, cap, &n, &first, "power_max_w", p->q[q].max, 0, 0);
            }
        }
        if (rc == 0)
            rc = lp_field(out, cap, &n, &first, "readings", p->n, 0, 1);
    }
    if (rc < 0)
        return -1;
    if (first) /* no field at all: InfluxDB refuses a line without fields */
        return 0;
    int k = snprintf(out + n, cap - n, " %" PRId64 "\n", p->ts);
    if (k < 0 || (size_t)k >= cap - n)
        return -1;
    *len = n + (size_t)k;
    return 1;
}
