/* reading_json.c: a telegram's verdict, objects and p1_reading as JSON (p1 decode, /api/now). */
#include "reading_json.h"

#include <stdio.h>
#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

static void put_hex16(json_w *w, const char *key, uint16_t v)
{
    char s[4] = {hexdig[v >> 12], hexdig[(v >> 8) & 15], hexdig[(v >> 4) & 15], hexdig[v & 15]};
    json_kv_strn(w, key, s, sizeof s);
}

static const char *crc_name(p1_crc_status c)
{
    switch (c) {
    case P1_CRC_VALID:
        return "valid";
    case P1_CRC_INVALID:
        return "invalid";
    default:
        return "absent";
    }
}

/* "OBIS: message" of code, with " (unit)" for a bad_unit, into out[cap]. */
static void bad_message(p1_error code, const p1_obis *o, const char *unit, size_t unit_cap,
                        char *out, size_t cap)
{
    char obis[24];
    p1_obis_format(o, obis, sizeof obis);
    if (code == P1_ERR_BAD_UNIT)
        snprintf(out, cap, "%s: %s (%.*s)", obis, p1_error_message(code), (int)unit_cap, unit);
    else
        snprintf(out, cap, "%s: %s", obis, p1_error_message(code));
}

const char *reading_json_message(const p1_telegram *t, const p1_reading *r, char *out, size_t cap)
{
    char obis[24];
    if ((t->error == P1_ERR_BAD_VALUE || t->error == P1_ERR_BAD_UNIT) && r &&
        r->error == t->error && r->error_offset == t->error_offset) {
        bad_message(t->error, &r->error_obis, r->error_unit, sizeof r->error_unit, out, cap);
    } else if (t->error == P1_ERR_NUMBER_OVERFLOW) {
        p1_obis_format(&t->error_obis, obis, sizeof obis);
        snprintf(out, cap, "%s: %s", obis, p1_error_message(t->error));
    } else {
        snprintf(out, cap, "%s", p1_error_message(t->error));
    }
    return out;
}

p1_error reading_json_warning(const p1_telegram *t, const p1_reading *r, uint64_t *offset,
                              char *out, size_t cap)
{
    p1_obis o;
    char unit[P1_SHORT_MAX];
    p1_error code;
    if (!r || t->error != P1_ERR_OK ||
        (code = p1_reading_warning(r, &o, offset, unit, sizeof unit)) == P1_ERR_OK)
        return P1_ERR_OK;
    bad_message(code, &o, unit, sizeof unit, out, cap);
    return code;
}

void reading_json_telegram(json_w *w, const p1_telegram *t, const p1_reading *r)
{
    int ok = t->error == P1_ERR_OK;
    char msg[160];
    json_kv_bool(w, "ok", ok);
    json_kv_str(w, "error", ok ? NULL : p1_error_name(t->error));
    json_kv_str(w, "message", ok ? NULL : reading_json_message(t, r, msg, sizeof msg));
    json_key(w, "offset");
    json_uint(w, t->offset);
    json_key(w, "error_offset");
    if (ok)
        json_null(w);
    else
        json_uint(w, t->error_offset);
    uint64_t woff = 0;
    p1_error warn = reading_json_warning(t, r, &woff, msg, sizeof msg);
    json_key(w, "warning");
    if (warn == P1_ERR_OK) {
        json_null(w);
    } else {
        json_obj_begin(w);
        json_kv_str(w, "error", p1_error_name(warn));
        json_kv_str(w, "message", msg);
        json_key(w, "offset");
        json_uint(w, woff);
        json_obj_end(w);
    }
    json_kv_str(w, "crc", crc_name(t->crc));
    if (t->crc != P1_CRC_ABSENT)
        put_hex16(w, "crc_sent", t->crc_sent);
    else
        json_kv_null(w, "crc_sent");
    if (t->has_end_line)
        put_hex16(w, "crc_computed", t->crc_computed);
    else
        json_kv_null(w, "crc_computed");
    if (t->crc_x25)
        json_kv_str(w, "crc_algorithm", "CRC-16/X-25");
    json_kv_bool(w, "end_line", t->has_end_line);
    if (t->header)
        json_kv_strn(w, "header", t->header, t->header_len);
    else
        json_kv_null(w, "header");
    json_kv_bool(w, "encrypted", t->encrypted);
    if (t->encrypted) {
        json_kv_int(w, "frame_counter", t->frame_counter);
        char title[16];
        for (int i = 0; i < 8; i++) {
            title[2 * i] = hexdig[t->system_title[i] >> 4];
            title[2 * i + 1] = hexdig[t->system_title[i] & 15];
        }
        json_kv_strn(w, "system_title", title, sizeof title);
    } else {
        json_kv_null(w, "frame_counter");
        json_kv_null(w, "system_title");
    }
}

void reading_json_time(json_w *w, const p1_time *t)
{
    if (t->day < 1 || t->day > p1_days_in_month(t->year, t->month) || t->hour > 23 ||
        t->minute > 59 || t->second > 59 || t->year > 9999) {
        json_null(w);
        return;
    }
    /* a valid time gets the offset libp1 computes (it knows the EU rule); a placeholder only
     * gets the offset its letter states, since no rule applies to a clock that is not set: in
     * the meter's zone (a Lithuanian or Israeli reading's 'S' is +03:00) */
    int off = -1;
    if (t->valid)
        off = p1_time_utc_offset(t);
    else if (t->dst >= 0) {
        p1_time std = *t; /* the zone's standard time, as libp1 knows it, and the letter's hour */
        std.dst = P1_DST_STANDARD;
        off = p1_time_utc_offset(&std) + (t->dst == P1_DST_SUMMER ? 3600 : 0);
    }
    char s[40];
    int n = snprintf(s, sizeof s, "%04u-%02u-%02uT%02u:%02u:%02u", (unsigned)t->year,
                     (unsigned)t->month, (unsigned)t->day, (unsigned)t->hour, (unsigned)t->minute,
                     (unsigned)t->second);
    if (off >= 0 && n > 0 && (size_t)n < sizeof s - 8) {
        unsigned h = (unsigned)off / 3600, m = (unsigned)off % 3600 / 60;
        n += snprintf(s + n, sizeof s - (size_t)n, "+%02u:%02u", h % 100, m);
    }
    if (n <= 0 || (size_t)n >= sizeof s) {
        json_null(w);
        return;
    }
    json_strn(w, s, (size_t)n);
}

/* Objects whose values are octet strings by definition (identifiers, text messages, tariff). */
static int is_octet_object(const p1_obis *o)
{
    if (o->a != 0)
        return 0;
    if (o->c == 96 && o->d == 1)
        return 1; /* 0-n:96.1.x equipment identifiers */
    if (o->b != 0)
        return 0;
    return (o->c == 96 && o->d == 13) || (o->c == 42 && o->d == 0 && o->e == 0) ||
           (o->c == 96 && o->d == 14 && o->e == 0);
}

static int long_hex_with_letter(const p1_value *v)
{
    if (v->raw_len < 8)
        return 0;
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            return 1;
    }
    return 0;
}

static void write_value(json_w *w, const p1_obis *obis, const p1_value *v)
{
    json_obj_begin(w);
    json_kv_strn(w, "raw", v->raw ? v->raw : "", v->raw ? v->raw_len : 0);
    if (v->flags & P1_V_NUMBER) {
        json_key(w, "number");
        json_fixed(w, v->number, v->decimals);
    }
    if ((v->flags & P1_V_UNIT) && v->unit)
        json_kv_strn(w, "unit", v->unit, v->unit_len);
    if (v->flags & P1_V_TIME) {
        json_key(w, "time");
        reading_json_time(w, &v->time);
        json_kv_bool(w, "time_valid", v->time.valid);
    }
    if ((v->flags & P1_V_HEX) && v->raw) {
        char text[P1_TELEGRAM_MAX / 2 + 1];
        int n = p1_value_text(v, text, sizeof text);
        if (n >= 0 &&
            (is_octet_object(obis) || long_hex_with_letter(v) || !(v->flags & P1_V_NUMBER)))
            json_kv_strn(w, "text", text, (size_t)n);
    }
    if (v->flags & P1_V_OBIS) {
        char ref[32];
        size_t n = p1_obis_format(&v->obis_ref, ref, sizeof ref);
        json_kv_strn(w, "obis_ref", ref, n < sizeof ref ? n : 0);
    }
    json_obj_end(w);
}

void reading_json_object(json_w *w, const p1_object *o)
{
    char obis[32];
    size_t n = p1_obis_format(&o->obis, obis, sizeof obis);
    json_obj_begin(w);
    json_kv_strn(w, "obis", obis, n < sizeof obis ? n : 0);
    if (o->in_block) {
        char block[32];
        size_t b = p1_obis_format(&o->block, block, sizeof block);
        json_kv_strn(w, "block", block, b < sizeof block ? b : 0);
    }
    json_key(w, "values");
    json_arr_begin(w);
    for (unsigned i = 0; i < o->nvalues && i < P1_VALUES_MAX; i++)
        write_value(w, &o->obis, &o->values[i]);
    json_arr_end(w);
    json_obj_end(w);
}

/* Micro-unit quantities: six decimals, trailing zeros dropped. */
static void kv_micro(json_w *w, const char *key, p1_micro v)
{
    if (v != P1_ABSENT)
        json_kv_fixed_trim(w, key, v, 6);
}

/* Active power in kW and in W (micro-kW are milli-W, so the W figure stays exact). */
static void kv_power(json_w *w, const char *kw_key, const char *w_key, p1_micro v)
{
    if (v == P1_ABSENT)
        return;
    json_kv_fixed_trim(w, kw_key, v, 6);
    json_kv_fixed_trim(w, w_key, v, 3);
}

static void kv_count(json_w *w, const char *key, int64_t v)
{
    if (v >= 0)
        json_kv_int(w, key, v);
}

static void kv_text(json_w *w, const char *key, const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    size_t n = nul ? (size_t)(nul - s) : cap;
    if (n > 0)
        json_kv_strn(w, key, s, n);
}

static int time_set(const p1_time *t)
{
    return t->year || t->month || t->day || t->hour || t->minute || t->second;
}

static void kv_time(json_w *w, const char *key, const char *valid_key, const p1_time *t)
{
    json_key(w, key);
    reading_json_time(w, t);
    if (valid_key)
        json_kv_bool(w, valid_key, t->valid);
}

static void write_phase(json_w *w, int n, const p1_phase *p)
{
    json_obj_begin(w);
    json_kv_int(w, "phase", n);
    kv_micro(w, "voltage_v", p->voltage);
    kv_micro(w, "voltage_avg_v", p->voltage_avg);
    kv_micro(w, "current_a", p->current);
    kv_power(w, "power_import_kw", "power_import_w", p->power_import);
    kv_power(w, "power_export_kw", "power_export_w", p->power_export);
    kv_micro(w, "reactive_import_kvar", p->reactive_import);
    kv_micro(w, "reactive_export_kvar", p->reactive_export);
    kv_micro(w, "apparent_import_kva", p->apparent_import);
    kv_micro(w, "apparent_export_kva", p->apparent_export);
    kv_micro(w, "power_factor", p->power_factor);
    kv_micro(w, "current_limit_a", p->current_limit);
    kv_micro(w, "current_avg_a", p->current_avg);
    kv_count(w, "sags", p->sags);
    kv_count(w, "swells", p->swells);
    json_obj_end(w);
}

static void write_mbus(json_w *w, int channel, const p1_mbus *m)
{
    json_obj_begin(w);
    json_kv_int(w, "channel", channel);
    if (m->type >= 0)
        json_kv_int(w, "type", m->type);
    json_kv_str(w, "medium", p1_medium_name(m->medium));
    kv_text(w, "id", m->id, sizeof m->id);
    if (time_set(&m->time))
        kv_time(w, "time", "time_valid", &m->time);
    if (m->value != P1_ABSENT) {
        kv_micro(w, "value", m->value);
        kv_text(w, "unit", m->unit, sizeof m->unit);
        json_kv_str(w, "value_obis",
                    m->value_e == 0   ? "24.3.0"
                    : m->value_e == 3 ? "24.2.3"
                                      : "24.2.1");
    }
    if (m->valve >= 0)
        json_kv_int(w, "valve", m->valve);
    json_obj_end(w);
}

static void write_tariffs(json_w *w, const char *key, const p1_micro *regs)
{
    int any = 0;
    for (int t = 1; t <= P1_TARIFFS_MAX; t++)
        any |= regs[t] != P1_ABSENT;
    if (!any)
        return;
    json_key(w, key);
    json_obj_begin(w);
    for (int t = 1; t <= P1_TARIFFS_MAX; t++) {
        if (regs[t] == P1_ABSENT)
            continue;
        char name[16];
        snprintf(name, sizeof name, "%d", t);
        kv_micro(w, name, regs[t]);
    }
    json_obj_end(w);
}

void reading_json_reading(json_w *w, const p1_reading *r)
{
    json_obj_begin(w);
    kv_text(w, "header", r->header, sizeof r->header);
    kv_text(w, "version", r->version, sizeof r->version);
    if (r->equipment_id[0]) {
        char obis[32];
        size_t n = p1_obis_format(&r->equipment_id_obis, obis, sizeof obis);
        kv_text(w, "equipment_id", r->equipment_id, sizeof r->equipment_id);
        if (n > 0 && n < sizeof obis)
            json_kv_strn(w, "equipment_id_obis", obis, n);
    }
    json_kv_str(w, "profile", p1_profile_name(r->profile));
    if (r->tariff_scheme == P1_TARIFFS_NL)
        json_kv_str(w, "tariff_scheme", "nl");
    else if (r->tariff_scheme == P1_TARIFFS_BE)
        json_kv_str(w, "tariff_scheme", "be");
    if (r->has_time) {
        kv_time(w, "time", "time_valid", &r->time);
        int64_t unix_s;
        if (r->time.valid && p1_time_to_unix(&r->time, &unix_s) == 0)
            json_kv_int(w, "time_unix", unix_s);
    }
    if (r->tariff >= 0)
        json_kv_int(w, "tariff", r->tariff);
    kv_text(w, "tariff_text", r->tariff_text, sizeof r->tariff_text);

    kv_micro(w, "import_kwh", r->import_total);
    if (r->import_total != P1_ABSENT)
        json_kv_bool(w, "import_total_sent", r->import_total_sent);
    kv_micro(w, "export_kwh", r->export_total);
    if (r->export_total != P1_ABSENT)
        json_kv_bool(w, "export_total_sent", r->export_total_sent);
    write_tariffs(w, "import_tariff_kwh", r->import);
    write_tariffs(w, "export_tariff_kwh", r->export_);
    kv_micro(w, "reactive_import_kvarh", r->reactive_import_energy);
    kv_micro(w, "reactive_export_kvarh", r->reactive_export_energy);
    static const char *const q_keys[4] = {"reactive_q1_kvarh", "reactive_q2_kvarh",
                                          "reactive_q3_kvarh", "reactive_q4_kvarh"};
    for (int q = 0; q < 4; q++)
        kv_micro(w, q_keys[q], r->reactive_q_energy[q]);

    kv_power(w, "power_import_kw", "power_import_w", r->power_import);
    kv_power(w, "power_export_kw", "power_export_w", r->power_export);
    kv_power(w, "power_net_kw", "power_net_w", r->power_net);
    kv_micro(w, "reactive_import_kvar", r->reactive_import_power);
    kv_micro(w, "reactive_export_kvar", r->reactive_export_power);
    kv_micro(w, "apparent_import_kva", r->apparent_import_power);
    kv_micro(w, "apparent_export_kva", r->apparent_export_power);
    kv_micro(w, "frequency_hz", r->frequency);
    kv_micro(w, "power_factor", r->power_factor);
    kv_micro(w, "voltage_v", r->voltage);
    kv_micro(w, "current_a", r->current);
    kv_micro(w, "current_neutral_a", r->current_neutral);
    if (r->nphases > 0) {
        json_key(w, "phases");
        json_arr_begin(w);
        for (int i = 0; i < r->nphases && i < 3; i++)
            write_phase(w, i + 1, &r->phase[i]);
        json_arr_end(w);
    }

    kv_count(w, "power_failures", r->power_failures);
    kv_count(w, "long_power_failures", r->long_power_failures);
    kv_count(w, "failure_log_count", r->failure_log_count);
    if (r->nfailures > 0) {
        json_key(w, "failure_log");
        json_arr_begin(w);
        for (int i = 0; i < r->nfailures && i < P1_FAILURES_MAX; i++) {
            json_obj_begin(w);
            kv_time(w, "end", "end_valid", &r->failures[i].end);
            if (r->failures[i].duration_s >= 0)
                json_kv_int(w, "duration_s", r->failures[i].duration_s);
            else /* a duration that could not be read: no number to show */
                json_kv_null(w, "duration_s");
            json_obj_end(w);
        }
        json_arr_end(w);
    }

    kv_micro(w, "demand_current_kw", r->demand_current);
    kv_micro(w, "demand_peak_kw", r->demand_peak);
    if (r->demand_peak != P1_ABSENT && time_set(&r->demand_peak_time))
        kv_time(w, "demand_peak_time", "demand_peak_time_valid", &r->demand_peak_time);
    if (r->ndemand_months > 0) {
        json_key(w, "demand_months");
        json_arr_begin(w);
        for (int i = 0; i < r->ndemand_months && i < P1_DEMAND_MONTHS_MAX; i++) {
            const p1_demand_month *m = &r->demand_months[i];
            json_obj_begin(w);
            kv_time(w, "month", "month_valid", &m->month);
            kv_time(w, "peak_time", "peak_time_valid", &m->peak_time);
            kv_micro(w, "peak_kw", m->peak);
            json_obj_end(w);
        }
        json_arr_end(w);
    }

    if (r->breaker >= 0)
        json_kv_int(w, "breaker", r->breaker);
    if (r->limiter != P1_ABSENT) {
        kv_micro(w, "limiter", r->limiter);
        kv_text(w, "limiter_unit", r->limiter_unit, sizeof r->limiter_unit);
    }
    kv_micro(w, "fuse_limit_a", r->fuse_limit);
    kv_micro(w, "fuse_limit_export_a", r->fuse_limit_export);
    kv_text(w, "text", r->text, sizeof r->text);
    kv_text(w, "text_code", r->text_code, sizeof r->text_code);

    /* The values history, metrics and publishers use: gas and water in m3, heat in GJ. */
    int gas = p1_reading_mbus_find(r, P1_MEDIUM_GAS);
    if (gas >= 0 && gas < P1_MBUS_MAX && p1_mbus_m3(&r->mbus[gas]) != P1_ABSENT) {
        kv_micro(w, "gas_m3", p1_mbus_m3(&r->mbus[gas]));
        if (time_set(&r->mbus[gas].time))
            kv_time(w, "gas_time", NULL, &r->mbus[gas].time);
        json_kv_int(w, "gas_channel", gas + 1);
    }
    int water = p1_reading_mbus_find(r, P1_MEDIUM_WATER);
    if (water >= 0 && water < P1_MBUS_MAX && p1_mbus_m3(&r->mbus[water]) != P1_ABSENT) {
        kv_micro(w, "water_m3", p1_mbus_m3(&r->mbus[water]));
        json_kv_int(w, "water_channel", water + 1);
    }
    int heat = p1_reading_mbus_find(r, P1_MEDIUM_HEAT);
    if (heat >= 0 && heat < P1_MBUS_MAX && p1_mbus_gj(&r->mbus[heat]) != P1_ABSENT) {
        kv_micro(w, "heat_gj", p1_mbus_gj(&r->mbus[heat]));
        json_kv_int(w, "heat_channel", heat + 1);
    }
    int any_mbus = 0;
    for (int i = 0; i < P1_MBUS_MAX; i++)
        any_mbus |= r->mbus[i].present;
    if (any_mbus) {
        json_key(w, "mbus");
        json_arr_begin(w);
        for (int i = 0; i < P1_MBUS_MAX; i++)
            if (r->mbus[i].present)
                write_mbus(w, i + 1, &r->mbus[i]);
        json_arr_end(w);
    }
    json_kv_int(w, "objects", r->nobjects);
    json_kv_int(w, "unknown", r->nunknown);
    json_obj_end(w);
}
