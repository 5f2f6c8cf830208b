/* test_pub_mqtt.c: the payload builders of the MQTT and InfluxDB publishers (pub_payload.c):
 * fields from a parsed telegram and from a stored point, Home Assistant discovery, dsmr-reader
 * topics, state JSON and InfluxDB line protocol. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p1/p1.h"
#include "p1/reading.h"
#include "pub_payload.h"
#include "reading_json.h"

/* A DSMR 5 telegram composed for this test (no CRC: the parser accepts it under "optional"). */
static const char telegram[] = "/ISk5\\2MT382-1000\r\n\r\n"
                               "1-3:0.2.8(50)\r\n"
                               "0-0:1.0.0(240115120000W)\r\n"
                               "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
                               "1-0:1.8.1(001234.567*kWh)\r\n"
                               "1-0:1.8.2(002000.001*kWh)\r\n"
                               "1-0:2.8.1(000010.000*kWh)\r\n"
                               "1-0:2.8.2(000000.250*kWh)\r\n"
                               "0-0:96.14.0(0002)\r\n"
                               "1-0:1.7.0(00.000*kW)\r\n"
                               "1-0:2.7.0(01.234*kW)\r\n"
                               "1-0:32.7.0(231.4*V)\r\n"
                               "1-0:52.7.0(229.0*V)\r\n"
                               "1-0:72.7.0(230.0*V)\r\n"
                               "1-0:31.7.0(005*A)\r\n"
                               "1-0:51.7.0(000*A)\r\n"
                               "1-0:71.7.0(001*A)\r\n"
                               "1-0:21.7.0(00.000*kW)\r\n"
                               "1-0:41.7.0(00.100*kW)\r\n"
                               "1-0:61.7.0(00.000*kW)\r\n"
                               "1-0:22.7.0(01.334*kW)\r\n"
                               "1-0:42.7.0(00.000*kW)\r\n"
                               "1-0:62.7.0(00.000*kW)\r\n"
                               "0-1:24.1.0(003)\r\n"
                               "0-1:96.1.0(4730303339303031363532303530323136)\r\n"
                               "0-1:24.2.1(240115115500W)(01234.567*m3)\r\n"
                               "!\r\n";

typedef struct ctx {
    p1_reading r;
    int ok;
} ctx;

static void on_begin(void *user, const p1_telegram *t)
{
    p1_reading_begin(&((ctx *)user)->r, t);
}
static void on_object(void *user, const p1_object *o)
{
    p1_reading_add(&((ctx *)user)->r, o);
}
static void on_end(void *user, const p1_telegram *t)
{
    ctx *c = user;
    p1_reading_end(&c->r, t);
    c->ok = t->error == P1_ERR_OK;
}

static p1_parser parser; /* large: static storage */

static void parse(ctx *c)
{
    p1_settings s;
    p1_callbacks cb = {on_begin, on_object, on_end};
    memset(&s, 0, sizeof s);
    memset(c, 0, sizeof *c);
    s.crc = P1_CRC_OPTIONAL;
    p1_parser_init(&parser, &s, &cb, c);
    p1_execute(&parser, telegram, strlen(telegram));
    p1_finish(&parser);
}

static const char *value(const pub_snapshot *s, pub_field f)
{
    static char buf[PUB_VALUE_MAX];
    if (!pub_payload_value(s, f, buf, sizeof buf))
        return "(none)";
    return buf;
}

static void test_from_reading(void)
{
    ctx c;
    pub_snapshot s;
    parse(&c);
    CHECK(c.ok);
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_IMPORT), "3234.568");
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_IMPORT_T1), "1234.567");
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_IMPORT_T2), "2000.001");
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_EXPORT), "10.25");
    CHECK_EQ_STR(value(&s, PUB_F_POWER), "-1234");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_IMPORT), "0");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_EXPORT), "1234");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_L1), "-1334");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_L2), "100");
    CHECK_EQ_STR(value(&s, PUB_F_VOLTAGE_L1), "231.4");
    CHECK_EQ_STR(value(&s, PUB_F_VOLTAGE_L3), "230");
    CHECK_EQ_STR(value(&s, PUB_F_CURRENT_L1), "5");
    CHECK_EQ_STR(value(&s, PUB_F_GAS), "1234.567");
    CHECK_EQ_STR(value(&s, PUB_F_TARIFF), "2");
    CHECK_EQ_STR(value(&s, PUB_F_WATER), "(none)");
    CHECK_EQ_STR(value(&s, PUB_F_HEAT), "(none)");
    CHECK_EQ_STR(s.manufacturer, "Iskraemeco");
    CHECK_EQ_STR(s.model, "MT382-1000");
    CHECK_EQ_STR(s.version, "DSMR 5.0");
    CHECK_EQ_INT(s.gas_ts, 1705316100); /* 11:55 CET */

    /* a space where "\2" would be, an id padded with spaces, a maker by its other flag id */
    snprintf(c.r.header, sizeof c.r.header, "KMP5 ZABF001587312345 ");
    snprintf(c.r.equipment_id, sizeof c.r.equipment_id, " 2040123456789 ");
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(s.manufacturer, "Kamstrup");
    CHECK_EQ_STR(s.model, "ZABF001587312345");
    CHECK_EQ_STR(s.serial, "2040123456789");
    snprintf(c.r.header, sizeof c.r.header, "ESY5Q3DA1024 V3.04");
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(s.manufacturer, "EasyMeter");
    CHECK_EQ_STR(s.model, "Q3DA1024 V3.04");
    /* Sagemcom's model starts right after the backslash: T210-D, XS210 (not 210-D, S210) */
    snprintf(c.r.header, sizeof c.r.header, "Ene5\\T210-D ESMR5.0");
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(s.manufacturer, "Sagemcom");
    CHECK_EQ_STR(s.model, "T210-D ESMR5.0");
    snprintf(c.r.header, sizeof c.r.header, "Ene5\\XS210 ESMR 5.0");
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(s.model, "XS210 ESMR 5.0");

    /* a single-phase meter's 1-0:12.7.0 and 1-0:11.7.0 (Lithuania): L1's voltage and current */
    p1_reading_init(&c.r);
    c.r.voltage = 231200000;
    c.r.current = 1780000;
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK_EQ_STR(value(&s, PUB_F_VOLTAGE_L1), "231.2");
    CHECK_EQ_STR(value(&s, PUB_F_CURRENT_L1), "1.78");
    CHECK_EQ_STR(value(&s, PUB_F_VOLTAGE_L2), "(none)");
}

static void test_from_point(void)
{
    store_point p;
    pub_snapshot s;
    memset(&p, 0, sizeof p);
    p.ts = p.end = 1705316400;
    p.n = 1;
    for (int e = 0; e < STORE_E_COUNT; e++)
        p.energy[e] = p.counter[e] = STORE_NULL;
    p.counter[STORE_E_IMPORT] = 3234568;
    p.counter[STORE_E_GAS] = 1234567;
    p.counter[STORE_E_HEAT] = 12345; /* MJ */
    p.q[STORE_Q_POWER] = (store_stat){1, -1234, -1234, -1234};
    p.q[STORE_Q_VOLTAGE_L1] = (store_stat){1, 2314, 2314, 2314};
    p.q[STORE_Q_CURRENT_L1] = (store_stat){1, 505, 505, 505};
    p.tariff = 1;
    pub_payload_from_point(&s, &p);
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_IMPORT), "3234.568");
    CHECK_EQ_STR(value(&s, PUB_F_GAS), "1234.567");
    CHECK_EQ_STR(value(&s, PUB_F_HEAT), "12.345");
    CHECK_EQ_STR(value(&s, PUB_F_POWER), "-1234");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_IMPORT), "0");
    CHECK_EQ_STR(value(&s, PUB_F_POWER_EXPORT), "1234");
    CHECK_EQ_STR(value(&s, PUB_F_VOLTAGE_L1), "231.4");
    CHECK_EQ_STR(value(&s, PUB_F_CURRENT_L1), "5.05");
    CHECK_EQ_STR(value(&s, PUB_F_TARIFF), "1");
    CHECK_EQ_STR(value(&s, PUB_F_ENERGY_EXPORT), "(none)");
    CHECK_EQ_STR(s.manufacturer, "");

    char buf[1024];

    /* Line protocol: every field a float except the tariff; seconds timestamp. */
    size_t len = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "p1", "home", &p), 1);
    CHECK_EQ_STR(buf, "p1,meter=home power_w=-1234,power_import_w=0,power_export_w=1234,"
                      "energy_import_kwh=3234.568,voltage_l1_v=231.4,current_l1_a=5.05,"
                      "gas_m3=1234.567,heat_gj=12.345,tariff=1i 1705316400\n");
    /* Too small a buffer: -1 and nothing appended. */
    size_t small = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, 40, &small, "p1", "home", &p), -1);
    CHECK_EQ_INT(small, 0);
    /* A gap: nothing to send. */
    p.n = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "p1", "home", &p), 0);
}

static void test_aggregate_line(void)
{
    store_point p;
    char buf[1024];
    size_t len = 0;
    memset(&p, 0, sizeof p);
    p.ts = 1705316400;
    p.end = 1705316460;
    p.n = 60;
    for (int e = 0; e < STORE_E_COUNT; e++)
        p.energy[e] = p.counter[e] = STORE_NULL;
    p.energy[STORE_E_IMPORT] = 5;
    p.q[STORE_Q_POWER] = (store_stat){60, 200, 400, 60 * 300};
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "p1", "home", &p), 1);
    CHECK_EQ_STR(buf, "p1,meter=home energy_import_delta_kwh=0.005,power_w=300,power_min_w=200,"
                      "power_max_w=400,readings=60i 1705316400\n");
}

/* Line protocol escapes comma and space in the measurement, and comma, '=' and space in a tag
 * value; unescaped, InfluxDB refuses the line (400) and the points are parked. */
static void test_influx_escape(void)
{
    store_point p;
    char buf[1024];
    size_t len = 0;
    memset(&p, 0, sizeof p);
    p.ts = 1705316400;
    p.end = p.ts;
    p.n = 1;
    for (int e = 0; e < STORE_E_COUNT; e++)
        p.energy[e] = p.counter[e] = STORE_NULL;
    p.q[STORE_Q_POWER] = (store_stat){1, 250, 250, 250};
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "p1 power,x", "my home,a=b", &p), 1);
    CHECK_EQ_STR(buf, "p1\\ power\\,x,meter=my\\ home\\,a\\=b power_w=250,power_import_w=250,"
                      "power_export_w=0,tariff=0i 1705316400\n");
    /* An '=' in the measurement needs no escape; a backslash stays as it is. */
    len = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "a=b\\c", "home", &p), 1);
    CHECK(strncmp(buf, "a=b\\c,meter=home power_w=250,", 29) == 0);
    /* The escapes count towards the room: one byte short of the line is -1, nothing kept. */
    len = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, sizeof buf, &len, "p 1", "h", &p), 1);
    size_t need = len, small = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, need, &small, "p 1", "h", &p), -1);
    CHECK_EQ_INT(small, 0);
    small = 0;
    CHECK_EQ_INT(pub_payload_influx(buf, need + 1, &small, "p 1", "h", &p), 1);
    CHECK_EQ_INT(small, need);
}

static void test_discovery(void)
{
    ctx c;
    pub_snapshot s;
    char buf[4096], topic[PUB_TOPIC_MAX];
    json_w w;
    parse(&c);
    pub_payload_from_reading(&s, &c.r, 1705316400);
    CHECK(pub_payload_discovery_topic(topic, sizeof topic, "homeassistant", "home", PUB_F_GAS));
    CHECK_EQ_STR(topic, "homeassistant/sensor/p1d_home/gas_m3/config");
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_discovery(&w, "p1d", "p1d/status", "home", &s, PUB_F_GAS);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "\"unique_id\":\"p1d_home_gas_m3\"") != NULL);
    CHECK(strstr(buf, "\"object_id\":\"p1d_home_gas_m3\"") != NULL);
    CHECK(strstr(buf, "\"default_entity_id\":\"sensor.p1d_home_gas_m3\"") != NULL);
    CHECK(strstr(buf, "\"state_topic\":\"p1d/home/gas_m3\"") != NULL);
    CHECK(strstr(buf, "\"device_class\":\"gas\"") != NULL);
    CHECK(strstr(buf, "\"unit_of_measurement\":\"m\xc2\xb3\"") != NULL); /* U+00B3 */
    CHECK(strstr(buf, "\"state_class\":\"total_increasing\"") != NULL);
    /* available while p1d is connected and the meter is not silent */
    CHECK(strstr(buf, "\"availability\":[{\"topic\":\"p1d/status\",\"payload_available\":"
                      "\"online\",\"payload_not_available\":\"offline\"},{\"topic\":"
                      "\"p1d/home/availability\",") != NULL);
    CHECK(strstr(buf, "\"availability_mode\":\"all\"") != NULL);
    CHECK(strstr(buf, "\"availability_topic\"") == NULL); /* HA refuses both forms at once */
    /* the gas meter is a device of its own behind the electricity meter, its serial_number the
     * M-Bus id 0-1:96.1.0 */
    CHECK(strstr(buf, "\"device\":{\"identifiers\":[\"p1d_home.gas\"],\"name\":\"Gas meter "
                      "home\",\"serial_number\":\"G0039001652050216\",\"via_device\":"
                      "\"p1d_home\"}") != NULL);
    CHECK(strstr(buf, "\"manufacturer\"") == NULL); /* the telegram names no M-Bus maker */
    CHECK(strstr(buf, "\"origin\":{\"name\":\"p1d\",\"sw_version\":\"" P1_VERSION "\"}") != NULL);

    /* the electricity meter's own device */
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_discovery(&w, "p1d", "p1d/status", "home", &s, PUB_F_ENERGY_IMPORT);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "\"unique_id\":\"p1d_home_energy_import_kwh\"") != NULL);
    CHECK(strstr(buf, "\"identifiers\":[\"p1d_home\"]") != NULL);
    CHECK(strstr(buf, "\"manufacturer\":\"Iskraemeco\"") != NULL);
    CHECK(strstr(buf, "\"serial_number\":\"E0004001594754414\"") != NULL); /* 0-0:96.1.1 */
    CHECK(strstr(buf, "\"via_device\"") == NULL);

    /* a stored point knows no M-Bus id: the gas device then has no serial_number */
    memset(s.mbus_id, 0, sizeof s.mbus_id);
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_discovery(&w, "p1d", "p1d/status", "home", &s, PUB_F_GAS);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "\"device\":{\"identifiers\":[\"p1d_home.gas\"],\"name\":\"Gas meter "
                      "home\",\"via_device\":\"p1d_home\"}") != NULL);

    /* Every field: the classes HA's Energy dashboard accepts. */
    for (int f = 0; f < PUB_F_COUNT; f++) {
        const pub_field_info *fi = pub_payload_field((pub_field)f);
        if (!fi->device_class)
            continue;
        if (!strcmp(fi->device_class, "energy")) /* electricity in kWh, heat in GJ */
            CHECK((!strcmp(fi->unit, "kWh") || !strcmp(fi->unit, "GJ")) &&
                  !strcmp(fi->state_class, "total_increasing"));
        else if (!strcmp(fi->device_class, "power"))
            CHECK(!strcmp(fi->unit, "W") && !strcmp(fi->state_class, "measurement"));
        else if (!strcmp(fi->device_class, "voltage"))
            CHECK(!strcmp(fi->unit, "V") && !strcmp(fi->state_class, "measurement"));
        else if (!strcmp(fi->device_class, "current"))
            CHECK(!strcmp(fi->unit, "A") && !strcmp(fi->state_class, "measurement"));
        else if (!strcmp(fi->device_class, "gas") || !strcmp(fi->device_class, "water"))
            CHECK(!strcmp(fi->unit, "m\xc2\xb3") && !strcmp(fi->state_class, "total_increasing"));
        else
            CHECK(0);
    }

    /* A heat interface's P1 port (Warmtelink) sends its heat meter alone: no config announces
     * the meter's device, so the heat device names no via_device (Home Assistant logs one it
     * does not know as an error) */
    memset(&s, 0, sizeof s);
    s.ts = 1705316400;
    s.has[PUB_F_HEAT] = 1;
    s.v[PUB_F_HEAT] = 24466;
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_discovery(&w, "p1d", "p1d/status", "home", &s, PUB_F_HEAT);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "\"identifiers\":[\"p1d_home.heat\"]") != NULL);
    CHECK(strstr(buf, "\"via_device\"") == NULL);
}

/* The price in force: its topics (a topic prefix with '/' gives node ids of [A-Za-z0-9_-]),
 * exact values, and a config in EUR/kWh with state_class measurement and no device class (HA's
 * monetary is an amount of money: a currency unit, and no state class but "total"). */
static void test_price(void)
{
    char buf[4096], topic[PUB_TOPIC_MAX];
    json_w w;
    CHECK(pub_payload_price_topic(topic, sizeof topic, "p1d", 0));
    CHECK_EQ_STR(topic, "p1d/price/import_eur_kwh");
    CHECK(pub_payload_price_topic(topic, sizeof topic, "home/p1d", 1));
    CHECK_EQ_STR(topic, "home/p1d/price/export_eur_kwh");
    CHECK(pub_payload_price_topic(topic, sizeof topic, "p1d", -1));
    CHECK_EQ_STR(topic, "p1d/price/availability");
    CHECK(!pub_payload_price_topic(topic, 8, "p1d", 0));
    CHECK(pub_payload_price_discovery_topic(topic, sizeof topic, "homeassistant", "home/p1d.x", 0));
    CHECK_EQ_STR(topic, "homeassistant/sensor/home_p1d_x_price/import_eur_kwh/config");
    CHECK(pub_payload_price_value(296446, buf, sizeof buf) == 8 && !strcmp(buf, "0.296446"));
    CHECK(pub_payload_price_value(-32345, buf, sizeof buf) && !strcmp(buf, "-0.032345"));
    CHECK(pub_payload_price_value(250000, buf, sizeof buf) && !strcmp(buf, "0.25"));
    CHECK(pub_payload_price_value(0, buf, sizeof buf) && !strcmp(buf, "0"));
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_price_discovery(&w, "p1d", "p1d/status", 1);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "\"name\":\"Export price\",\"unique_id\":\"p1d_price_export_eur_kwh\","
                      "\"object_id\":\"p1d_price_export_eur_kwh\",\"default_entity_id\":"
                      "\"sensor.p1d_price_export_eur_kwh\",\"state_topic\":"
                      "\"p1d/price/export_eur_kwh\",\"unit_of_measurement\":\"EUR/kWh\","
                      "\"state_class\":\"measurement\"") != NULL);
    CHECK(strstr(buf, "\"device_class\"") == NULL);
    CHECK(strstr(buf, "{\"topic\":\"p1d/price/availability\",") != NULL);
    CHECK(strstr(buf, "\"device\":{\"identifiers\":[\"p1d.price\"],\"name\":"
                      "\"Electricity price p1d\",") != NULL);
    CHECK(strstr(buf, "\"origin\":{\"name\":\"p1d\"") != NULL);
}

static void test_alerts_entity(void)
{
    char buf[4096], topic[PUB_TOPIC_MAX];
    json_w w;
    static const char *const types[] = {"stale", "back", NULL};
    CHECK(pub_payload_alerts_discovery_topic(topic, sizeof topic, "homeassistant", "home/p1d.x"));
    CHECK_EQ_STR(topic, "homeassistant/event/home_p1d_x_alerts/alerts/config");
    CHECK(!pub_payload_alerts_discovery_topic(topic, 20, "homeassistant", "p1d"));
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_alerts_discovery(&w, "home/p1d", "home/p1d/status", types);
    CHECK(json_ok(&w));
    CHECK(strstr(buf, "{\"name\":null,\"unique_id\":\"home_p1d_alerts\",\"object_id\":"
                      "\"home_p1d_alerts\",\"default_entity_id\":\"event.home_p1d_alerts\","
                      "\"state_topic\":\"home/p1d/alerts\",\"event_types\":[\"stale\","
                      "\"back\"],\"value_template\":\"{{ {'event_type': value_json.event,") == buf);
    CHECK(strstr(buf, "\"availability_topic\":\"home/p1d/status\"") != NULL);
    CHECK(strstr(buf, "\"device\":{\"identifiers\":[\"home_p1d.alerts\"],\"name\":"
                      "\"Alerts home/p1d\",") != NULL);
    CHECK(strstr(buf, "\"origin\":{\"name\":\"p1d\"") != NULL);
    json_init_fixed(&w, buf, sizeof buf, 0);
    pub_payload_alerts_discovery(&w, "p1d", NULL, types);
    CHECK(json_ok(&w) && strstr(buf, "availability") == NULL);
}

static void test_dsmr(void)
{
    ctx c;
    pub_snapshot s;
    char val[PUB_VALUE_MAX];
    const char *name;
    int seen = 0;
    parse(&c);
    pub_payload_from_reading(&s, &c.r, 1705316400);
    static const struct {
        const char *name, *want;
    } expect[] = {
        {"electricity_currently_returned", "1.234"},
        {"electricity_currently_delivered", "0.000"},
        {"phase_currently_returned_l1", "1.334"},
        {"phase_currently_delivered_l2", "0.100"},
        {"electricity_delivered_1", "1234.567"},
        {"extra_device_delivered", "1234.567"},
        {"phase_voltage_l1", "231.4"},
        {"timestamp", "2024-01-15T11:00:00Z"},
        {"extra_device_timestamp", "2024-01-15T10:55:00Z"},
    };
    for (int i = 0; i < pub_payload_dsmr_count(); i++) {
        size_t n = pub_payload_dsmr(&s, i, &name, val, sizeof val);
        for (size_t k = 0; n && k < sizeof expect / sizeof expect[0]; k++) {
            if (strcmp(name, expect[k].name) == 0) {
                CHECK_EQ_STR(val, expect[k].want);
                seen++;
            }
        }
    }
    CHECK_EQ_INT(seen, 9);
    CHECK_EQ_INT(pub_payload_dsmr(&s, -1, &name, val, sizeof val), 0);
    CHECK_EQ_INT(pub_payload_dsmr(&s, pub_payload_dsmr_count(), &name, val, sizeof val), 0);
}

static void test_state_reading(void)
{
    ctx c;
    pub_snapshot s;
    json_w w;
    static char buf[PUB_PAYLOAD_MAX];
    parse(&c);
    pub_payload_from_reading(&s, &c.r, 1705316400);
    json_init_fixed(&w, buf, sizeof buf, 0);
    reading_json_reading(&w, &c.r);
    CHECK(json_ok(&w));
    CHECK(buf[0] == '{' && strchr(buf, '\n') == NULL); /* compact */
    CHECK(strstr(buf, "\"header\":\"ISk5\\\\2MT382-1000\"") != NULL);
    CHECK(strstr(buf, "\"power_export_w\":1234") != NULL);
}

int main(void)
{
    RUN(test_from_reading);
    RUN(test_from_point);
    RUN(test_influx_escape);
    RUN(test_aggregate_line);
    RUN(test_discovery);
    RUN(test_price);
    RUN(test_alerts_entity);
    RUN(test_dsmr);
    RUN(test_state_reading);
    return check_summary("test_pub_mqtt");
}
