/* homewizard.c: the HomeWizard P1 meter local API v1 mapped from a reading. */
#include "homewizard.h"

#include <stdio.h>
#include <string.h>

void homewizard_serial(const char *id, char out[HOMEWIZARD_SERIAL_LEN + 1])
{
    /* FNV-1a: stable across builds and platforms, so Home Assistant keeps its device entry. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)(id ? id : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = HOMEWIZARD_SERIAL_LEN - 1; i >= 0; i--) {
        out[i] = hex[h & 15];
        h >>= 4;
    }
    out[HOMEWIZARD_SERIAL_LEN] = '\0';
}

void homewizard_device(json_w *w, const char *id, const char *firmware)
{
    char serial[HOMEWIZARD_SERIAL_LEN + 1];
    homewizard_serial(id, serial);
    json_obj_begin(w);
    json_kv_str(w, "product_type", HOMEWIZARD_PRODUCT_TYPE);
    json_kv_str(w, "product_name", HOMEWIZARD_PRODUCT_NAME);
    json_kv_str(w, "serial", serial);
    json_kv_str(w, "firmware_version", firmware ? firmware : P1_VERSION);
    json_kv_str(w, "api_version", "v1");
    json_obj_end(w);
}

int64_t homewizard_timestamp(const p1_time *t)
{
    if (!t->valid)
        return -1;
    return (int64_t)(t->year % 100) * 10000000000ll + (int64_t)t->month * 100000000ll +
           (int64_t)t->day * 1000000ll + (int64_t)t->hour * 10000ll + (int64_t)t->minute * 100ll +
           (int64_t)t->second;
}

/* The first value of the object whose line starts with `obis` + '(' as sent (hex ids stay hex,
 * which is what HomeWizard reports); the length, or -1 when absent, empty or too long. */
static int raw_value(const uint8_t *raw, size_t len, const char *obis, char *out, size_t cap)
{
    size_t ol = strlen(obis);
    for (size_t i = 0; raw && i + ol < len; i++) {
        if ((i != 0 && raw[i - 1] != '\n') || memcmp(raw + i, obis, ol) != 0 || raw[i + ol] != '(')
            continue;
        size_t s = i + ol + 1, e = s;
        while (e < len && raw[e] != ')' && raw[e] != '\r' && raw[e] != '\n')
            e++;
        if (e >= len || raw[e] != ')' || e == s || e - s >= cap)
            return -1;
        memcpy(out, raw + s, e - s);
        out[e - s] = '\0';
        return (int)(e - s);
    }
    return -1;
}

/* An id as HomeWizard shows it into buf[cap]: the hex as sent, else the decoded text hex-encoded
 * again. Returns its length, 0 when the meter sends no id. */
static size_t id_text(const uint8_t *raw, size_t raw_len, const char *obis1, const char *obis2,
                      const char *decoded, char *buf, size_t cap)
{
    int n = raw_value(raw, raw_len, obis1, buf, cap);
    if (n <= 0 && obis2)
        n = raw_value(raw, raw_len, obis2, buf, cap);
    if (n > 0)
        return (size_t)n;
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)decoded; *p && k + 2 < cap; p++) {
        buf[k++] = hex[*p >> 4];
        buf[k++] = hex[*p & 15];
    }
    buf[k] = '\0';
    return k;
}

static void put_id(json_w *w, const char *key, const uint8_t *raw, size_t raw_len,
                   const char *obis1, const char *obis2, const char *decoded)
{
    char buf[2 * P1_ID_MAX + 2];
    if (id_text(raw, raw_len, obis1, obis2, decoded, buf, sizeof buf) > 0)
        json_kv_str(w, key, buf);
}

/* Rounds a micro quantity to `keep` decimals (half away from zero). */
static int64_t round_micro(p1_micro v, int keep)
{
    int64_t d = 1;
    for (int i = keep; i < 6; i++)
        d *= 10;
    return v >= 0 ? (v + d / 2) / d : -((-v + d / 2) / d);
}

/* The direction of a phase's power: 1 import, -1 export, 0 neither known nor flowing. */
static int phase_sign(const p1_phase *ph)
{
    if (ph->power_import == P1_ABSENT && ph->power_export == P1_ABSENT)
        return 0;
    p1_micro net = (ph->power_import == P1_ABSENT ? 0 : ph->power_import) -
                   (ph->power_export == P1_ABSENT ? 0 : ph->power_export);
    return (net > 0) - (net < 0);
}

/* A micro quantity with 3 decimals, as HomeWizard prints energy, volume, voltage, current. */
static void kv3(json_w *w, const char *key, p1_micro v)
{
    if (v == P1_ABSENT)
        return;
    json_key(w, key);
    json_fixed(w, round_micro(v, 3), 3);
}

/* kW (micro) as whole watts. */
static void kv_watts(json_w *w, const char *key, p1_micro kw)
{
    if (kw == P1_ABSENT)
        return;
    json_kv_int(w, key, round_micro(kw, 3));
}

/* kW (micro) as watts with 3 decimals (HomeWizard's average and peak demand: "45.000"). */
static void kv_watts3(json_w *w, const char *key, p1_micro kw)
{
    if (kw == P1_ABSENT)
        return;
    json_key(w, key);
    json_fixed(w, kw, 3);
}

static void kv_count(json_w *w, const char *key, int64_t v)
{
    if (v >= 0)
        json_kv_int(w, key, v);
}

static void kv_time(json_w *w, const char *key, const p1_time *t)
{
    int64_t v = homewizard_timestamp(t);
    if (v >= 0)
        json_kv_int(w, key, v);
}

/* HomeWizard's external device types from the EN 13757-3 device type, else from the medium. */
static const char *external_type(const p1_mbus *mb)
{
    switch (mb->type) {
    case 3: return "gas_meter";
    case 4: return "heat_meter";
    case 6: return "warm_water_meter";
    case 7: return "water_meter";
    case 12: return "inlet_heat_meter";
    default: break;
    }
    switch (mb->medium) {
    case P1_MEDIUM_GAS: return "gas_meter";
    case P1_MEDIUM_WATER: return "water_meter";
    case P1_MEDIUM_HEAT: return "heat_meter";
    default: return NULL;
    }
}

/* smr_version is a number: "50" -> 50, "42" -> 42, Belgian "50217" -> 50 (its DSMR base). */
static int smr_version(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || n > 6)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    return (v[0] - '0') * 10 + (v[1] - '0');
}

static void mbus_ids(int ch, char *o0, char *o1, size_t cap)
{
    snprintf(o0, cap, "0-%d:96.1.0", ch);
    snprintf(o1, cap, "0-%d:96.1.1", ch);
}

void homewizard_data(json_w *w, const p1_reading *r, const uint8_t *raw, size_t raw_len)
{
    char key[48];
    json_obj_begin(w);
    int v = smr_version(r->version);
    if (v >= 0)
        json_kv_int(w, "smr_version", v);
    if (r->header[0])
        json_kv_str(w, "meter_model", r->header);
    put_id(w, "unique_id", raw, raw_len, "0-0:96.1.1", "0-0:96.1.0", r->equipment_id);
    /* Israel's meters count in the registers 11, 12, 13: HomeWizard's clients know tariffs 1..4
     * only (Home Assistant's active_tariff is a choice of "1" .. "4"), so these are t1..t3. */
    int base =
        r->profile == P1_PROFILE_IL && r->import[1] == P1_ABSENT && r->export_[1] == P1_ABSENT ? 10
                                                                                               : 0;
    int tariff = r->tariff > base ? r->tariff - base : r->tariff;
    if (base ? tariff >= 1 && tariff <= 4 : tariff >= 0)
        json_kv_int(w, "active_tariff", tariff);

    kv3(w, "total_power_import_kwh", r->import_total);
    for (int t = 1; t <= 4 && base + t <= P1_TARIFFS_MAX; t++) {
        snprintf(key, sizeof key, "total_power_import_t%d_kwh", t);
        kv3(w, key, r->import[base + t]);
    }
    kv3(w, "total_power_export_kwh", r->export_total);
    for (int t = 1; t <= 4 && base + t <= P1_TARIFFS_MAX; t++) {
        snprintf(key, sizeof key, "total_power_export_t%d_kwh", t);
        kv3(w, key, r->export_[base + t]);
    }

    kv_watts(w, "active_power_w", r->power_net);
    for (int p = 0; p < 3; p++) {
        const p1_phase *ph = &r->phase[p];
        if (ph->power_import == P1_ABSENT && ph->power_export == P1_ABSENT)
            continue;
        p1_micro net = (ph->power_import == P1_ABSENT ? 0 : ph->power_import) -
                       (ph->power_export == P1_ABSENT ? 0 : ph->power_export);
        snprintf(key, sizeof key, "active_power_l%d_w", p + 1);
        kv_watts(w, key, net);
    }
    for (int p = 0; p < 3; p++) {
        snprintf(key, sizeof key, "active_voltage_l%d_v", p + 1);
        kv3(w, key, r->phase[p].voltage);
    }
    if (r->phase[0].voltage == P1_ABSENT)
        kv3(w, "active_voltage_v", r->voltage);

    /* Phase currents as HomeWizard gives them: negative while the phase exports (the meter
     * sends them unsigned); active_current_a is the sum of their absolute values. */
    p1_micro sum = 0, cur[3];
    int any = 0, nphases = 0;
    for (int p = 0; p < 3; p++)
        nphases += r->phase[p].current != P1_ABSENT;
    for (int p = 0; p < 3; p++) {
        cur[p] = r->phase[p].current;
        if (cur[p] == P1_ABSENT)
            continue;
        p1_micro mag = cur[p] < 0 ? -cur[p] : cur[p];
        int sign = phase_sign(&r->phase[p]);
        if (!sign && nphases == 1 && r->power_net != P1_ABSENT)
            sign = (r->power_net > 0) - (r->power_net < 0);
        if (sign)
            cur[p] = sign < 0 ? -mag : mag;
        sum += mag;
        any = 1;
    }
    if (!any && r->current != P1_ABSENT) {
        sum = r->current < 0 ? -r->current : r->current;
        any = 1;
    }
    if (any)
        kv3(w, "active_current_a", sum);
    for (int p = 0; p < 3; p++) {
        snprintf(key, sizeof key, "active_current_l%d_a", p + 1);
        kv3(w, key, cur[p]);
    }
    kv3(w, "active_frequency_hz", r->frequency);

    for (int p = 0; p < 3; p++) {
        snprintf(key, sizeof key, "voltage_sag_l%d_count", p + 1);
        kv_count(w, key, r->phase[p].sags);
    }
    for (int p = 0; p < 3; p++) {
        snprintf(key, sizeof key, "voltage_swell_l%d_count", p + 1);
        kv_count(w, key, r->phase[p].swells);
    }
    kv_count(w, "any_power_fail_count", r->power_failures);
    kv_count(w, "long_power_fail_count", r->long_power_failures);

    /* Belgian capacity tariff; HomeWizard spells "montly" (sic) and clients expect that. */
    kv_watts3(w, "active_power_average_w", r->demand_current);
    kv_watts3(w, "montly_power_peak_w", r->demand_peak);
    if (r->demand_peak != P1_ABSENT)
        kv_time(w, "montly_power_peak_timestamp", &r->demand_peak_time);

    char o0[24], o1[24];
    int gas = p1_reading_mbus_find(r, P1_MEDIUM_GAS);
    /* not a placeholder channel's 0, nor a value in another unit than m3 */
    if (gas >= 0 && p1_mbus_m3(&r->mbus[gas]) != P1_ABSENT) {
        const p1_mbus *mb = &r->mbus[gas];
        kv3(w, "total_gas_m3", p1_mbus_m3(mb));
        kv_time(w, "gas_timestamp", &mb->time);
        mbus_ids(gas + 1, o0, o1, sizeof o0);
        put_id(w, "gas_unique_id", raw, raw_len, o0, o1, mb->id);
    }

    json_key(w, "external");
    json_arr_begin(w);
    for (int c = 0; c < P1_MBUS_MAX; c++) {
        const p1_mbus *mb = &r->mbus[c];
        const char *type = external_type(mb);
        char id[2 * P1_ID_MAX + 2];
        /* heat in GJ, the rest in m3, as everywhere else in p1d; a placeholder channel's 0 or a
         * value in another unit is left out */
        p1_micro value = p1_mbus_kept(mb);
        if (!type || value == P1_ABSENT)
            continue;
        /* HomeWizard's clients key a device by its id and parse its time: python-homewizard-
         * energy fails the whole answer on an entry without either. Only a placeholder channel
         * (an empty id, a 700101010000W or 000000000000W time) lacks them, so it is left out. */
        mbus_ids(c + 1, o0, o1, sizeof o0);
        int64_t ts = homewizard_timestamp(&mb->time);
        if (id_text(raw, raw_len, o0, o1, mb->id, id, sizeof id) == 0 || ts < 0)
            continue;
        json_obj_begin(w);
        json_kv_str(w, "unique_id", id);
        json_kv_str(w, "type", type);
        json_kv_int(w, "timestamp", ts);
        json_key(w, "value");
        json_fixed(w, round_micro(value, 3), 3);
        json_kv_str(w, "unit", mb->medium == P1_MEDIUM_HEAT ? "GJ" : "m3");
        json_obj_end(w);
    }
    json_arr_end(w);
    json_obj_end(w);
}
