/* test_metrics.c: Prometheus exposition of meters (families, labels, escaping, exact numbers). */
#include "../../src/demand.c"
#include "../../src/meter.c"
#include "../../src/metrics.c"

#include "check.h"

static p1_reading reading;

static void on_begin(void *user, const p1_telegram *t)
{
    (void)user;
    p1_reading_begin(&reading, t);
}

static void on_object(void *user, const p1_object *o)
{
    (void)user;
    p1_reading_add(&reading, o);
}

static void on_end(void *user, const p1_telegram *t)
{
    *(int *)user = t->error == P1_ERR_OK;
    p1_reading_end(&reading, t);
}

static int parse(const char *text)
{
    static p1_parser ps;
    int ok = 0;
    p1_reading_init(&reading);
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(&ps, NULL, &cb, &ok);
    p1_execute(&ps, text, strlen(text));
    p1_finish(&ps);
    return ok;
}

static const char TG[] = "/ISK5\\2M550T-1012\r\n\r\n"
                         "1-3:0.2.8(50)\r\n"
                         "0-0:96.1.1(4530303331303033333135353132333435)\r\n"
                         "1-0:1.8.1(012345.678*kWh)\r\n"
                         "1-0:1.8.2(010987.654*kWh)\r\n"
                         "1-0:2.8.1(001234.567*kWh)\r\n"
                         "1-0:2.8.2(002345.678*kWh)\r\n"
                         "0-0:96.14.0(0002)\r\n"
                         "1-0:1.7.0(00.000*kW)\r\n"
                         "1-0:2.7.0(02.345*kW)\r\n"
                         "0-0:96.7.21(00012)\r\n"
                         "1-0:32.32.0(00004)\r\n"
                         "1-0:32.7.0(238.4*V)\r\n"
                         "1-0:31.7.0(010*A)\r\n"
                         "1-0:21.7.0(00.000*kW)\r\n"
                         "1-0:22.7.0(02.345*kW)\r\n"
                         "0-1:24.1.0(003)\r\n"
                         "0-1:24.2.1(240615115500S)(04567.891*m3)\r\n"
                         "!\r\n";

static int has(const char *text, const char *needle)
{
    if (strstr(text, needle))
        return 1;
    fprintf(stderr, "missing: %s\n", needle);
    return 0;
}

static void test_render(void)
{
    meters ms;
    meters_init(&ms);
    meter *a = meters_add(&ms, "house", "sim", "sim");
    meter *b = meters_add(&ms, "idle", "file", "file:/x");
    CHECK(a && b);
    if (!a || !b)
        return;
    CHECK(parse(TG));
    meter_accept(a, &reading, (const uint8_t *)TG, strlen(TG), 1700000000123, 1700000000123);
    meter_reject(a, P1_ERR_CRC_MISMATCH);
    a->reconnects = 3;
    a->idle_reopens = 2;

    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_INT(metrics_render(&ms, 1700000001000, 60, "1.0\"x\\", &text, &len), 0);
    if (!text)
        return;
    CHECK_EQ_INT(strlen(text), len);
    CHECK(has(text, "# TYPE p1_energy_import_kwh_total counter\n"));
    CHECK(has(text, "p1_energy_import_kwh_total{meter=\"house\",tariff=\"1\"} 12345.678\n"));
    CHECK(has(text, "p1_energy_export_kwh_total{meter=\"house\",tariff=\"2\"} 2345.678\n"));
    CHECK(has(text, "p1_power_import_watts{meter=\"house\"} 0\n"));
    CHECK(has(text, "p1_power_export_watts{meter=\"house\"} 2345\n"));
    CHECK(has(text, "p1_power_net_watts{meter=\"house\"} -2345\n"));
    CHECK(has(text, "p1_phase_voltage_volts{meter=\"house\",phase=\"L1\"} 238.4\n"));
    CHECK(has(text, "p1_phase_current_amperes{meter=\"house\",phase=\"L1\"} 10\n"));
    CHECK(has(text, "p1_phase_power_export_watts{meter=\"house\",phase=\"L1\"} 2345\n"));
    CHECK(has(text, "p1_voltage_sags_total{meter=\"house\",phase=\"L1\"} 4\n"));
    CHECK(has(text, "p1_gas_m3_total{meter=\"house\",channel=\"1\"} 4567.891\n"));
    CHECK(has(text, "p1_power_failures_total{meter=\"house\"} 12\n"));
    CHECK(has(text, "p1_telegrams_total{meter=\"house\"} 1\n"));
    CHECK(has(text, "p1_telegrams_total{meter=\"idle\"} 0\n"));
    CHECK(has(text, "p1_crc_errors_total{meter=\"house\"} 1\n"));
    CHECK(has(text, "p1_reconnects_total{meter=\"house\"} 3\n"));
    CHECK(has(text, "# TYPE p1_idle_reopens_total counter\n"));
    CHECK(has(text, "p1_idle_reopens_total{meter=\"house\"} 2\n"));
    CHECK(has(text, "p1_idle_reopens_total{meter=\"idle\"} 0\n"));
    CHECK(has(text, "p1_last_telegram_timestamp_seconds{meter=\"house\"} 1700000000.123\n"));
    CHECK(has(text, "p1_meter_up{meter=\"house\"} 1\n"));
    CHECK(has(text, "p1_meter_up{meter=\"idle\"} 0\n"));
    CHECK(has(text, "p1d_build_info{version=\"1.0\\\"x\\\\\"} 1\n"));
    CHECK(!strstr(text, "p1_long_power_failures_total{"));
    CHECK(!strstr(text, "phase=\"L2\""));
    /* Every family is announced exactly once and every line ends with a newline. */
    CHECK(text[len - 1] == '\n');
    const char *p = text;
    int helps = 0;
    while ((p = strstr(p, "# HELP p1_telegrams_total ")) != NULL) {
        helps++;
        p++;
    }
    CHECK_EQ_INT(helps, 1);
    free(text);

    /* Stale: the meter is down 61 s later. */
    CHECK_EQ_INT(metrics_render(&ms, 1700000061124, 60, NULL, &text, &len), 0);
    if (text)
        CHECK(has(text, "p1_meter_up{meter=\"house\"} 0\n"));
    free(text);
    meters_free(&ms);
}

/* A single-phase meter that sends 12.7.0 / 11.7.0 (Lithuanian ESO): those are L1, as on MQTT and in
 * the history; a three-phase meter's L1 stays its own. */
static void test_single_phase(void)
{
    static const char ONE[] = "/ESO5\\VMM\r\n\r\n"
                              "1-0:1.8.0(000100.000*kWh)\r\n"
                              "1-0:12.7.0(0000.231*kV)\r\n"
                              "1-0:11.7.0(0000.002*kA)\r\n"
                              "!\r\n";
    meters ms;
    meters_init(&ms);
    meter *a = meters_add(&ms, "lt", "sim", "sim");
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK(parse(ONE));
    meter_accept(a, &reading, (const uint8_t *)ONE, strlen(ONE), 1700000000123, 1700000000123);
    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_INT(metrics_render(&ms, 1700000001000, 60, NULL, &text, &len), 0);
    if (text) {
        CHECK(has(text, "p1_phase_voltage_volts{meter=\"lt\",phase=\"L1\"} 231\n"));
        CHECK(has(text, "p1_phase_current_amperes{meter=\"lt\",phase=\"L1\"} 2\n"));
        CHECK(!strstr(text, "phase=\"L2\""));
    }
    free(text);
    meters_free(&ms);
}

/* A fake publisher: meter "house" has an outbox, "idle" has none (lag -ENOENT). */
static int fake_lag(void *impl, const char *meter_name, outbox_lag *out)
{
    (void)impl;
    if (strcmp(meter_name, "house") != 0)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    out->readings = 42;
    out->seconds = 61;
    out->delivered = 7;
    out->retries = 3;
    out->parked = 1;
    return 0;
}

static void fake_status(void *impl, pub_status *out)
{
    memset(out, 0, sizeof *out);
    out->state = *(pub_state *)impl;
    out->requests = 9;
    out->failures = 2;
    out->last_ok_ms = 1700000000500;
}

static void test_pubs(void)
{
    meters ms;
    meters_init(&ms);
    CHECK(meters_add(&ms, "house", "sim", "sim") && meters_add(&ms, "idle", "file", "file:/x"));
    pub_state state = PUB_RETRYING;
    pub fake = {.name = "in\"flux", .impl = &state, .lag = fake_lag, .status = fake_status};
    pub_list pl = {.list = {&fake}, .n = 1};
    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_INT(metrics_render(&ms, 1700000001000, 60, NULL, &text, &len), 0);
    if (!text)
        return;
    size_t base = len;
    CHECK_EQ_INT(metrics_render_pubs(&ms, NULL, &text, &len), 0);
    CHECK_EQ_INT(len, base);
    CHECK_EQ_INT(metrics_render_pubs(&ms, &pl, &text, &len), 0);
    CHECK_EQ_INT(strlen(text), len);
    CHECK(has(text, "# TYPE p1_publisher_up gauge\np1_publisher_up{publisher=\"in\\\"flux\"} 0\n"));
    CHECK(has(text, "p1_publisher_requests_total{publisher=\"in\\\"flux\"} 9\n"));
    CHECK(has(text, "p1_publisher_failures_total{publisher=\"in\\\"flux\"} 2\n"));
    CHECK(has(text, "p1_publisher_last_success_timestamp_seconds{publisher=\"in\\\"flux\"} "
                    "1700000000.5\n"));
    CHECK(has(text, "p1_publisher_lag_readings{meter=\"house\",publisher=\"in\\\"flux\"} 42\n"));
    CHECK(has(text, "p1_publisher_lag_seconds{meter=\"house\",publisher=\"in\\\"flux\"} 61\n"));
    CHECK(has(text, "# TYPE p1_publisher_delivered_total counter\n"));
    CHECK(has(text, "p1_publisher_delivered_total{meter=\"house\",publisher=\"in\\\"flux\"} 7\n"));
    CHECK(has(text, "p1_publisher_retries_total{meter=\"house\",publisher=\"in\\\"flux\"} 3\n"));
    CHECK(has(text, "p1_publisher_parked_total{meter=\"house\",publisher=\"in\\\"flux\"} 1\n"));
    CHECK(!strstr(text, "meter=\"idle\",publisher"));
    free(text);
    state = PUB_IDLE;
    CHECK_EQ_INT(metrics_render(&ms, 1700000001000, 60, NULL, &text, &len), 0);
    CHECK_EQ_INT(metrics_render_pubs(&ms, &pl, &text, &len), 0);
    if (text)
        CHECK(has(text, "p1_publisher_up{publisher=\"in\\\"flux\"} 1\n"));
    free(text);
    meters_free(&ms);
}

static void test_fixed(void)
{
    mbuf b = {0};
    put_fixed(&b, -1500, 3);
    put(&b, " ", 1);
    put_fixed(&b, 1, 6);
    put(&b, " ", 1);
    put_fixed(&b, 0, 6);
    put(&b, " ", 1);
    put_fixed(&b, 2000000, 6);
    CHECK_EQ_STR(b.buf, "-1.5 0.000001 0 2");
    free(b.buf);
}

/* The price in force: exact EUR per kWh, a family left out altogether when no price applies. */
static void test_price(void)
{
    meters ms = {0};
    char *text = NULL;
    size_t len = 0;
    CHECK_EQ_INT(metrics_render(&ms, 1700000001000, 60, NULL, &text, &len), 0);
    if (!text)
        return;
    size_t base = len;
    CHECK_EQ_INT(metrics_render_price(COST_UNSET, COST_UNSET, &text, &len), 0);
    CHECK_EQ_INT(len, base);
    CHECK(!strstr(text, "p1d_price_"));
    CHECK_EQ_INT(metrics_render_price(296446, -32345, &text, &len), 0);
    CHECK_EQ_INT(strlen(text), len);
    CHECK(has(text, "# TYPE p1d_price_import_eur_per_kwh gauge\np1d_price_import_eur_per_kwh "
                    "0.296446\n"));
    CHECK(has(text, "# TYPE p1d_price_export_eur_per_kwh gauge\np1d_price_export_eur_per_kwh "
                    "-0.032345\n"));
    base = len;
    CHECK_EQ_INT(metrics_render_price(250000, COST_UNSET, &text, &len), 0);
    CHECK(has(text + base, "p1d_price_import_eur_per_kwh 0.25\n"));
    CHECK(!strstr(text + base, "p1d_price_export"));
    free(text);
    meters_free(&ms);
}

int main(void)
{
    RUN(test_render);
    RUN(test_single_phase);
    RUN(test_pubs);
    RUN(test_fixed);
    RUN(test_price);
    return check_summary("test_metrics");
}
