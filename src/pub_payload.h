/* pub_payload.h: what the MQTT and InfluxDB publishers send: the published fields of a reading or
 * a stored point (names, units, Home Assistant classes, values) and the payloads built from them.
 */
#ifndef P1D_PUB_PAYLOAD_H
#define P1D_PUB_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "p1/reading.h"
#include "store.h"

/* Everything here is pure: no I/O, no allocation, no logging; callers own every buffer. */

/* The published fields, in topic order. Values are integers scaled by 10^decimals of the field
 * (the store's resolution: Wh, W, dV, cA, dm3, MJ), so a reading and its stored point agree. */
typedef enum pub_field {
    PUB_F_POWER = 0, /* net power, W, negative while exporting */
    PUB_F_POWER_IMPORT,
    PUB_F_POWER_EXPORT,
    PUB_F_DEMAND,          /* BE 1-0:1.4.0: this quarter-hour's average import power so far, W */
    PUB_F_DEMAND_PEAK,     /* BE 1-0:1.6.0: this month's highest quarter-hour average, W */
    PUB_F_DEMAND_FORECAST, /* BE: this quarter hour's average if the power now lasts, W */
    PUB_F_ENERGY_IMPORT,   /* kWh, all tariffs */
    PUB_F_ENERGY_IMPORT_T1,
    PUB_F_ENERGY_IMPORT_T2,
    PUB_F_ENERGY_EXPORT,
    PUB_F_ENERGY_EXPORT_T1,
    PUB_F_ENERGY_EXPORT_T2,
    PUB_F_POWER_L1, /* net power per phase, W */
    PUB_F_POWER_L2,
    PUB_F_POWER_L3,
    PUB_F_VOLTAGE_L1,
    PUB_F_VOLTAGE_L2,
    PUB_F_VOLTAGE_L3,
    PUB_F_CURRENT_L1,
    PUB_F_CURRENT_L2,
    PUB_F_CURRENT_L3,
    PUB_F_GAS,   /* m3 */
    PUB_F_WATER, /* m3 */
    PUB_F_HEAT,  /* GJ, an M-Bus heat meter */
    PUB_F_TARIFF,
    PUB_F_COUNT
} pub_field;

/* How a field is rate-limited (the [mqtt] rate_* keys). */
typedef enum pub_kind {
    PUB_KIND_POWER = 0,
    PUB_KIND_VOLTAGE,
    PUB_KIND_CURRENT,
    PUB_KIND_COUNTER, /* energy, gas, water, tariff: on change */
    PUB_KIND_COUNT
} pub_kind;

/* Where a field's value comes from: the electricity meter itself or one of its M-Bus devices
 * (each of those is its own Home Assistant device, linked to the meter by via_device). */
typedef enum pub_mbus {
    PUB_MBUS_NONE = 0, /* the electricity meter */
    PUB_MBUS_GAS,
    PUB_MBUS_WATER,
    PUB_MBUS_HEAT,
    PUB_MBUS_COUNT
} pub_mbus;

typedef struct pub_field_info {
    const char *name;         /* topic and InfluxDB field name: "power_w" */
    const char *label;        /* Home Assistant entity name: "Power" */
    const char *unit;         /* unit_of_measurement, NULL none */
    const char *device_class; /* Home Assistant device class, NULL none */
    const char *state_class;  /* Home Assistant state class, NULL none */
    int decimals;             /* the value is scaled by 10^decimals */
    pub_kind kind;
    pub_mbus mbus; /* the device the value comes from */
} pub_field_info;

#define PUB_DEVICE_MAX  64    /* manufacturer / model text */
#define PUB_VALUE_MAX   32    /* a value as text */
#define PUB_TOPIC_MAX   512   /* a topic */
#define PUB_PAYLOAD_MAX 16384 /* the largest payload built here (state JSON of a full reading) */

/* The latest values of one meter, from a live reading or a stored raw point. Plain data. */
typedef struct pub_snapshot {
    int64_t ts;                        /* unix seconds of the reading */
    uint8_t has[PUB_F_COUNT];          /* 1 when v[f] is set */
    int64_t v[PUB_F_COUNT];            /* scaled by 10^decimals */
    int64_t gas_ts;                    /* capture time of the gas value, unix seconds; 0 unknown */
    char manufacturer[PUB_DEVICE_MAX]; /* from the header's flag id; "" unknown */
    char model[PUB_DEVICE_MAX];        /* the header after the flag id; "" unknown */
    char version[P1_SHORT_MAX];        /* "DSMR 5.0" or the version as sent; "" unknown */
    char serial[P1_ID_MAX + 1];        /* equipment id (0-0:96.1.1), decoded; "" unknown */
    /* [PUB_MBUS_GAS..]: the M-Bus device's equipment id (0-n:96.1.0), decoded; "" unknown */
    char mbus_id[PUB_MBUS_COUNT][P1_ID_MAX + 1];
} pub_snapshot;

/* The description of field f (f < PUB_F_COUNT). */
const pub_field_info *pub_payload_field(pub_field f);
/* Fills s from a live reading whose time is ts (unix seconds). */
void pub_payload_from_reading(pub_snapshot *s, const p1_reading *r, int64_t ts);
/* Sets the quarter-hour demand forecast (meter_sample.demand_forecast, kW micro; P1_ABSENT
 * leaves it out). */
void pub_payload_set_demand_forecast(pub_snapshot *s, p1_micro kw);
/* Fills s from a stored raw point (device fields stay empty: the store keeps no header). */
void pub_payload_from_point(pub_snapshot *s, const store_point *p);
/* Whether s has a value of the electricity meter itself (not only of its M-Bus devices): the
 * M-Bus devices' discovery names the meter's device as via_device only then. */
int pub_payload_has_meter_value(const pub_snapshot *s);
/* Writes the value of f as text ("1234", "230.1", "0.05") into out[cap]. Returns its length, or
 * 0 when s has no such value or it does not fit. */
size_t pub_payload_value(const pub_snapshot *s, pub_field f, char *out, size_t cap);

/* "<disc_prefix>/sensor/p1d_<meter>/<field>/config" into out[cap]; returns the length or 0. */
size_t pub_payload_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                   const char *meter, pub_field f);
/* The Home Assistant discovery config of field f of meter: unique_id, object_id and
 * default_entity_id ("sensor.<object_id>"), name, state_topic "<prefix>/<meter>/<field>", classes
 * and unit, availability (all of: avail_topic and "<prefix>/<meter>/availability"; avail_topic
 * NULL: none), the device block (the meter's "p1d_<meter>", or for a gas, water or heat value its
 * M-Bus device "p1d_<meter>.<medium>" with via_device "p1d_<meter>") and the origin (p1d and its
 * version). */
void pub_payload_discovery(json_w *w, const char *prefix, const char *avail_topic,
                           const char *meter, const pub_snapshot *s, pub_field f);

/* The price in force now (price_now.h), published beside the meters. exp: 0 the import price, 1
 * the export price. "<prefix>/price/import_eur_kwh" or ".../export_eur_kwh" (exp -1:
 * "<prefix>/price/availability") into out[cap]; returns the length or 0. */
size_t pub_payload_price_topic(char *out, size_t cap, const char *prefix, int exp);
/* A price in micro-euros per kWh as EUR per kWh text ("0.296446", "-0.01"). Returns its length, or
 * 0 when it does not fit. */
size_t pub_payload_price_value(int64_t micro, char *out, size_t cap);
/* "<disc_prefix>/sensor/<node>_price/<import|export>_eur_kwh/config", node being prefix with
 * every byte outside [A-Za-z0-9_-] made '_', into out[cap]; returns the length or 0. */
size_t pub_payload_price_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                         const char *prefix, int exp);
/* The Home Assistant discovery config of a price: unique_id and object_id "<node>_price_<name>",
 * default_entity_id, name, state_topic, unit EUR/kWh with state_class measurement (no device class),
 * availability (all of: avail_topic and "<prefix>/price/availability"; avail_topic NULL: none),
 * the device "<node>.price" ("Electricity price <prefix>") and the origin. */
void pub_payload_price_discovery(json_w *w, const char *prefix, const char *avail_topic, int exp);

/* [alerts] mqtt's event entity: its config topic "<disc_prefix>/event/<node>_alerts/alerts/config"
 * (node: the topic prefix with every character but [A-Za-z0-9_-] as '_'); length or 0. */
size_t pub_payload_alerts_discovery_topic(char *out, size_t cap, const char *disc_prefix,
                                          const char *prefix);
/* Its config: unique_id "<node>_alerts", default_entity_id "event.<node>_alerts", no name of its
 * own, state_topic "<prefix>/alerts", the event types `types` (NULL-terminated), a value_template
 * that turns the alert's "event" into Home Assistant's "event_type" and keeps the rest as
 * attributes, availability avail_topic (NULL: none), the device "<node>.alerts" ("Alerts
 * <prefix>") and the origin. */
void pub_payload_alerts_discovery(json_w *w, const char *prefix, const char *avail_topic,
                                  const char *const *types);

/* dsmr-reader's topic layout (dsmr/reading/<name>): the number of names, and the i-th value of s
 * as dsmr-reader writes it (kW for power, ISO 8601 UTC for times). Returns the value's length
 * and sets *name, or 0 when s has no such value. */
int pub_payload_dsmr_count(void);
size_t pub_payload_dsmr(const pub_snapshot *s, int i, const char **name, char *out, size_t cap);

/* Appends one InfluxDB line-protocol line (with '\n') for point p of meter to out[cap] at
 * *len: raw points carry the published fields, aggregates (n > 1 or end > ts) their means and
 * energy deltas. Returns 1 appended, 0 nothing to send (a gap), -1 does not fit (*len kept). */
int pub_payload_influx(char *out, size_t cap, size_t *len, const char *measurement,
                       const char *meter, const store_point *p);

#endif
