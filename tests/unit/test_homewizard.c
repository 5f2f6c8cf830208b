/* test_homewizard.c: HomeWizard API v1 mapping (field names, units, signs, absent fields). */
#include "../../src/homewizard.c"
#include "../../src/json.c"

#include <stdlib.h>

#include "check.h"

typedef struct parsed {
    p1_reading r;
    int done;
    p1_error err;
} parsed;

static void on_begin(void *user, const p1_telegram *t)
{
    p1_reading_begin(&((parsed *)user)->r, t);
}

static void on_object(void *user, const p1_object *o)
{
    p1_reading_add(&((parsed *)user)->r, o);
}

static void on_end(void *user, const p1_telegram *t)
{
    parsed *p = user;
    p1_reading_end(&p->r, t);
    p->done = 1;
    p->err = t->error;
}

/* Parses one telegram (no CRC needed) into *out; returns 0 when accepted. */
static int parse(const char *text, parsed *out)
{
    p1_parser *ps = malloc(sizeof *ps);
    if (!ps)
        return -1;
    memset(out, 0, sizeof *out);
    p1_reading_init(&out->r);
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(ps, NULL, &cb, out);
    p1_execute(ps, text, strlen(text));
    p1_finish(ps);
    free(ps);
    return out->done && out->err == P1_ERR_OK ? 0 : -1;
}

static const char NL_EXPORT[] = "/ISK5\\2M550T-1012\r\n\r\n"
                                "1-3:0.2.8(50)\r\n"
                                "0-0:1.0.0(240615120000S)\r\n"
                                "0-0:96.1.1(4530303331303033333135353132333435)\r\n"
                                "1-0:1.8.1(012345.678*kWh)\r\n"
                                "1-0:1.8.2(010987.654*kWh)\r\n"
                                "1-0:2.8.1(001234.567*kWh)\r\n"
                                "1-0:2.8.2(002345.678*kWh)\r\n"
                                "0-0:96.14.0(0002)\r\n"
                                "1-0:1.7.0(00.000*kW)\r\n"
                                "1-0:2.7.0(02.345*kW)\r\n"
                                "0-0:96.7.21(00012)\r\n"
                                "0-0:96.7.9(00003)\r\n"
                                "1-0:32.32.0(00004)\r\n"
                                "1-0:32.36.0(00000)\r\n"
                                "1-0:32.7.0(238.4*V)\r\n"
                                "1-0:31.7.0(010*A)\r\n"
                                "1-0:21.7.0(00.000*kW)\r\n"
                                "1-0:22.7.0(02.345*kW)\r\n"
                                "0-1:24.1.0(003)\r\n"
                                "0-1:96.1.0(4730303539303033343132333435363738)\r\n"
                                "0-1:24.2.1(240615115500S)(04567.891*m3)\r\n"
                                "!\r\n";

static const char BE[] = "/FLU5\\253769123_A\r\n\r\n"
                         "0-0:96.1.4(50217)\r\n"
                         "0-0:96.1.1(3153414731313030313233343536)\r\n"
                         "0-0:1.0.0(240120174512W)\r\n"
                         "1-0:1.8.1(001234.567*kWh)\r\n"
                         "1-0:1.8.2(002345.678*kWh)\r\n"
                         "1-0:2.8.1(000456.789*kWh)\r\n"
                         "1-0:2.8.2(000123.456*kWh)\r\n"
                         "0-0:96.14.0(0001)\r\n"
                         "1-0:1.4.0(01.872*kW)\r\n"
                         "1-0:1.6.0(240112183000W)(04.523*kW)\r\n"
                         "1-0:1.7.0(01.650*kW)\r\n"
                         "1-0:2.7.0(00.000*kW)\r\n"
                         "1-0:21.7.0(00.650*kW)\r\n"
                         "1-0:41.7.0(00.400*kW)\r\n"
                         "1-0:61.7.0(00.600*kW)\r\n"
                         "1-0:22.7.0(00.000*kW)\r\n"
                         "1-0:42.7.0(00.000*kW)\r\n"
                         "1-0:62.7.0(00.000*kW)\r\n"
                         "1-0:32.7.0(232.0*V)\r\n"
                         "1-0:52.7.0(231.5*V)\r\n"
                         "1-0:72.7.0(233.1*V)\r\n"
                         "1-0:31.7.0(002.85*A)\r\n"
                         "1-0:51.7.0(001.74*A)\r\n"
                         "1-0:71.7.0(002.61*A)\r\n"
                         "0-1:24.1.0(003)\r\n"
                         "0-1:96.1.1(37464C4F32303234303030313233)\r\n"
                         "0-1:24.2.3(240120174000W)(01234.567*m3)\r\n"
                         "0-2:24.1.0(007)\r\n"
                         "0-2:96.1.1(3853414530303030313233343536)\r\n"
                         "0-2:24.2.1(240120174500W)(00123.456*m3)\r\n"
                         "!\r\n";

static const char MINIMAL[] = "/XMX5XMXABCE000018914\r\n\r\n"
                              "1-0:1.8.1(000001.000*kWh)\r\n"
                              "1-0:1.7.0(00.100*kW)\r\n"
                              "!\r\n";

static int has(const char *json, const char *needle)
{
    if (strstr(json, needle))
        return 1;
    fprintf(stderr, "missing %s in %s\n", needle, json);
    return 0;
}

static void render(const char *tg, char *buf, size_t cap)
{
    parsed *p = malloc(sizeof *p);
    buf[0] = '\0';
    if (!p)
        return;
    CHECK(parse(tg, p) == 0);
    json_w w;
    json_init_fixed(&w, buf, cap, 0);
    homewizard_data(&w, &p->r, (const uint8_t *)tg, strlen(tg));
    CHECK(json_ok(&w));
    free(p);
}

static void test_nl_export(void)
{
    char buf[8192];
    render(NL_EXPORT, buf, sizeof buf);
    CHECK(has(buf, "\"smr_version\":50,"));
    CHECK(has(buf, "\"meter_model\":\"ISK5\\\\2M550T-1012\""));
    CHECK(has(buf, "\"unique_id\":\"4530303331303033333135353132333435\""));
    CHECK(has(buf, "\"active_tariff\":2,"));
    CHECK(has(buf, "\"total_power_import_kwh\":23333.332,"));
    CHECK(has(buf, "\"total_power_import_t1_kwh\":12345.678,"));
    CHECK(has(buf, "\"total_power_import_t2_kwh\":10987.654,"));
    CHECK(has(buf, "\"total_power_export_kwh\":3580.245,"));
    CHECK(has(buf, "\"total_power_export_t2_kwh\":2345.678,"));
    CHECK(has(buf, "\"active_power_w\":-2345,"));
    CHECK(has(buf, "\"active_power_l1_w\":-2345,"));
    CHECK(has(buf, "\"active_voltage_l1_v\":238.400,"));
    CHECK(has(buf, "\"active_current_a\":10.000,"));
    CHECK(has(buf, "\"active_current_l1_a\":-10.000,")); /* exporting: negative, as HW does */
    CHECK(has(buf, "\"voltage_sag_l1_count\":4,"));
    CHECK(has(buf, "\"voltage_swell_l1_count\":0,"));
    CHECK(has(buf, "\"any_power_fail_count\":12,"));
    CHECK(has(buf, "\"long_power_fail_count\":3,"));
    CHECK(has(buf, "\"total_gas_m3\":4567.891,"));
    CHECK(has(buf, "\"gas_timestamp\":240615115500,"));
    CHECK(has(buf, "\"gas_unique_id\":\"4730303539303033343132333435363738\""));
    CHECK(has(buf, "\"external\":[{\"unique_id\":\"4730303539303033343132333435363738\","
                   "\"type\":\"gas_meter\",\"timestamp\":240615115500,\"value\":4567.891,"
                   "\"unit\":\"m3\"}]}"));
    /* A one-phase meter: no l2/l3 fields, no tariffs 3/4, no Belgian demand, no null anywhere. */
    CHECK(!strstr(buf, "_l2_"));
    CHECK(!strstr(buf, "_t3_"));
    CHECK(!strstr(buf, "montly"));
    CHECK(!strstr(buf, "null"));
    CHECK(!strstr(buf, "wifi"));
}

static void test_be(void)
{
    char buf[8192];
    render(BE, buf, sizeof buf);
    CHECK(has(buf, "\"smr_version\":50,"));
    CHECK(has(buf, "\"active_tariff\":1,"));
    CHECK(has(buf, "\"active_power_w\":1650,"));
    CHECK(has(buf, "\"active_power_l2_w\":400,"));
    CHECK(has(buf, "\"active_current_a\":7.200,"));
    CHECK(has(buf, "\"active_power_average_w\":1872.000,"));
    CHECK(has(buf, "\"montly_power_peak_w\":4523.000,"));
    CHECK(has(buf, "\"montly_power_peak_timestamp\":240112183000,"));
    CHECK(has(buf, "\"total_gas_m3\":1234.567,"));
    CHECK(has(buf, "\"gas_unique_id\":\"37464C4F32303234303030313233\""));
    CHECK(has(buf, "\"type\":\"water_meter\",\"timestamp\":240120174500,\"value\":123.456"));
}

/* Phase currents carry the sign of their phase's power (HomeWizard: negative when exporting);
 * the total is the sum of their sizes. */
static const char MIXED[] = "/ISK5\\2M550T-1012\r\n\r\n"
                            "1-0:1.7.0(00.500*kW)\r\n"
                            "1-0:2.7.0(02.000*kW)\r\n"
                            "1-0:21.7.0(00.000*kW)\r\n"
                            "1-0:22.7.0(02.000*kW)\r\n"
                            "1-0:41.7.0(00.500*kW)\r\n"
                            "1-0:42.7.0(00.000*kW)\r\n"
                            "1-0:61.7.0(00.000*kW)\r\n"
                            "1-0:62.7.0(00.000*kW)\r\n"
                            "1-0:31.7.0(009*A)\r\n"
                            "1-0:51.7.0(002*A)\r\n"
                            "1-0:71.7.0(001*A)\r\n"
                            "!\r\n";
/* A meter that signs its currents itself and sends no phase powers (Swedish layout). */
static const char SIGNED[] = "/ADN9 6534\r\n\r\n"
                             "1-0:1.7.0(0000.400*kW)\r\n"
                             "1-0:31.7.0(003.2*A)\r\n"
                             "1-0:51.7.0(-001.3*A)\r\n"
                             "1-0:71.7.0(000.9*A)\r\n"
                             "!\r\n";

static void test_current_sign(void)
{
    char buf[4096];
    render(MIXED, buf, sizeof buf);
    CHECK(has(buf, "\"active_power_l1_w\":-2000,"));
    CHECK(has(buf, "\"active_current_a\":12.000,"));
    CHECK(has(buf, "\"active_current_l1_a\":-9.000,"));
    CHECK(has(buf, "\"active_current_l2_a\":2.000,"));
    CHECK(has(buf, "\"active_current_l3_a\":1.000,")); /* no power either way: as sent */
    render(SIGNED, buf, sizeof buf);
    CHECK(has(buf, "\"active_current_a\":5.400,"));
    CHECK(has(buf, "\"active_current_l2_a\":-1.300,"));
}

static void test_minimal(void)
{
    char buf[4096];
    render(MINIMAL, buf, sizeof buf);
    CHECK(has(buf, "\"total_power_import_t1_kwh\":1.000,"));
    CHECK(has(buf, "\"active_power_w\":100,"));
    CHECK(has(buf, "\"external\":[]}"));
    CHECK(!strstr(buf, "unique_id"));
    CHECK(!strstr(buf, "gas"));
    CHECK(!strstr(buf, "smr_version"));
}

/* Israel: registers 11..13 and 0-0:96.14.1(03) are HomeWizard's t1..t3 and active_tariff 3 (its
 * clients know tariffs 1..4 only). */
static const char ISRAEL[] = "/KFM5KAIFA-METER\r\n\r\n"
                             "1-3:0.2.8(50)\r\n"
                             "0-0:1.0.0(260714201733S)\r\n"
                             "1-0:1.8.11(004021.733*kWh)\r\n"
                             "1-0:1.8.12(000610.050*kWh)\r\n"
                             "1-0:1.8.13(015870.418*kWh)\r\n"
                             "1-0:2.8.11(000012.500*kWh)\r\n"
                             "0-0:96.14.1(03)\r\n"
                             "1-0:1.7.0(01.274*kW)\r\n"
                             "!\r\n";

static void test_israel(void)
{
    char buf[4096];
    render(ISRAEL, buf, sizeof buf);
    CHECK(has(buf, "\"active_tariff\":3,"));
    CHECK(has(buf, "\"total_power_import_kwh\":20502.201,"));
    CHECK(has(buf, "\"total_power_import_t1_kwh\":4021.733,"));
    CHECK(has(buf, "\"total_power_import_t2_kwh\":610.050,"));
    CHECK(has(buf, "\"total_power_import_t3_kwh\":15870.418,"));
    CHECK(has(buf, "\"total_power_export_t1_kwh\":12.500,"));
    CHECK(!strstr(buf, "_t4_kwh"));
    CHECK(!strstr(buf, "total_power_export_t2_kwh"));

    /* active_tariff is 1..4 or left out, whatever the meter names */
    static const struct {
        const char *lines, *want;
    } cases[] = {
        {"1-0:1.8.11(000001.000*kWh)\r\n1-0:1.8.12(000002.000*kWh)\r\n0-0:96.14.1(03)",
         "\"active_tariff\":3,"},
        {"1-0:1.8.13(000001.000*kWh)\r\n0-0:96.14.0(0002)\r\n0-0:96.14.1(03)",
         "\"active_tariff\":2,"},
        {"1-0:1.8.11(000001.000*kWh)\r\n1-0:1.8.15(000002.000*kWh)\r\n0-0:96.14.1(05)", NULL},
    };
    static char tg[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(tg, sizeof tg, "/KFM5KAIFA-METER\r\n\r\n1-3:0.2.8(50)\r\n%s\r\n!\r\n",
                 cases[i].lines);
        render(tg, buf, sizeof buf);
        if (cases[i].want)
            CHECK(has(buf, cases[i].want));
        else
            CHECK(!strstr(buf, "active_tariff"));
    }
}

/* Gas moved to channel 2: channel 1 is a placeholder (empty id, 1970 time, a bare 0). */
static const char MOVED_GAS[] = "/ISK5\\2M550T-1012\r\n\r\n"
                                "1-3:0.2.8(50)\r\n"
                                "0-0:1.0.0(240701120000S)\r\n"
                                "1-0:1.8.1(000111.111*kWh)\r\n"
                                "0-1:24.1.0(003)\r\n"
                                "0-1:96.1.0()\r\n"
                                "0-1:24.2.1(700101010000W)(00000000)\r\n"
                                "0-2:24.1.0(003)\r\n"
                                "0-2:96.1.0(4730303339303031393030313233343536)\r\n"
                                "0-2:24.2.1(240701115500S)(00246.138*m3)\r\n"
                                "0-3:24.1.0(007)\r\n"
                                "0-3:96.1.0(3853414530303030313233343536)\r\n"
                                "0-3:24.2.1(000000000000W)(00001.000*m3)\r\n"
                                "!\r\n";

/* Every external entry has a unique_id and a timestamp: HomeWizard's clients need both. */
static void test_external_placeholder(void)
{
    char buf[4096];
    render(MOVED_GAS, buf, sizeof buf);
    CHECK(has(buf, "\"external\":[{\"unique_id\":\"4730303339303031393030313233343536\","
                   "\"type\":\"gas_meter\",\"timestamp\":240701115500,\"value\":246.138,"
                   "\"unit\":\"m3\"}]}"));
    CHECK(has(buf, "\"total_gas_m3\":246.138,\"gas_timestamp\":240701115500,"));
}

static void test_serial_device(void)
{
    char a[HOMEWIZARD_SERIAL_LEN + 1], b[HOMEWIZARD_SERIAL_LEN + 1];
    homewizard_serial("E0031003315512345", a);
    homewizard_serial("E0031003315512345", b);
    CHECK_EQ_STR(a, b);
    CHECK_EQ_INT(strlen(a), 12);
    CHECK(strspn(a, "0123456789abcdef") == 12);
    homewizard_serial("other", b);
    CHECK(strcmp(a, b) != 0);
    char buf[512];
    json_w w;
    json_init_fixed(&w, buf, sizeof buf, 0);
    homewizard_device(&w, "E0031003315512345", "1.2.3");
    CHECK(json_ok(&w));
    CHECK(has(buf, "{\"product_type\":\"HWE-P1\",\"product_name\":\"P1 meter\",\"serial\":\""));
    CHECK(has(buf, "\"firmware_version\":\"1.2.3\",\"api_version\":\"v1\"}"));
    p1_time t = {2023, 1, 2, 8, 0, 10, 0, 1, P1_ZONE_CET};
    CHECK_EQ_INT(homewizard_timestamp(&t), 230102080010ll);
    t.valid = 0;
    CHECK_EQ_INT(homewizard_timestamp(&t), -1);
}

int main(void)
{
    RUN(test_nl_export);
    RUN(test_be);
    RUN(test_minimal);
    RUN(test_current_sign);
    RUN(test_external_placeholder);
    RUN(test_serial_device);
    RUN(test_israel);
    return check_summary("test_homewizard");
}
