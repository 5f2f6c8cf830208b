/* test_cost.c: prices (parsing, periods, dynamic vs fixed), exact micro-euro costs over DST
 * days, and the price tables in SQLite (calendar arithmetic: test_civil.c). */
#include <sqlite3.h>
#include <stdlib.h>

#include "check.h"
#include "civil.h"
#include "cost.h"

static int64_t T(const char *s)
{
    int64_t t = -1;
    if (civil_parse(s, CIVIL_PARSE_UNIX, &t) < 0)
        fprintf(stderr, "cannot parse %s\n", s);
    return t;
}

static void energy_none(int64_t e[STORE_E_COUNT])
{
    for (int i = 0; i < STORE_E_COUNT; i++)
        e[i] = STORE_NULL;
}

static void test_price_parse(void)
{
    int64_t v = 0;
    CHECK(cost_parse_price("0.2345", &v) == 0 && v == 234500);
    CHECK(cost_parse_price("-0.01", &v) == 0 && v == -10000);
    CHECK(cost_parse_price("12", &v) == 0 && v == 12000000);
    CHECK(cost_parse_price(" 1.5 ", &v) == 0 && v == 1500000);
    CHECK(cost_parse_price("1.2345675", &v) == 0 && v == 1234568);   /* half away from zero */
    CHECK(cost_parse_price("-1.2345675", &v) == 0 && v == -1234568);
    CHECK(cost_parse_price("1.2345674999", &v) == 0 && v == 1234567);
    /* digits past the 40 kept cannot change the rounding: they are read, not refused */
    CHECK(cost_parse_price("0.12345649999999999999999999999999999999999999999999", &v) == 0 &&
          v == 123456);
    CHECK(cost_parse_price("0.12345650000000000000000000000000000000000000000001", &v) == 0 &&
          v == 123457);
    CHECK(cost_parse_price("0.0000004", &v) == 0 && v == 0);
    CHECK(cost_parse_price(".5", &v) == 0 && v == 500000);
    v = 7;
    CHECK(cost_parse_price("abc", &v) < 0 && v == 7);
    CHECK(cost_parse_price("", &v) < 0);
    CHECK(cost_parse_price("1.2.3", &v) < 0);
    CHECK(cost_parse_price("1e", &v) < 0);
    CHECK(cost_parse_price("99999999999999", &v) < 0);
    /* only plain decimals (QA: 1e3 and 0,2 were taken) */
    CHECK(cost_parse_price("0,2345", &v) < 0);
    CHECK(cost_parse_price("1e3", &v) < 0);
    CHECK(cost_parse_price("2.5E-2", &v) < 0);
    CHECK(cost_parse_price("1,000.5", &v) < 0);
    CHECK(v == 7);
    cost_fixed f;
    char err[COST_ERR_MAX] = "";
    cost_fixed_init(&f);
    CHECK(cost_fixed_set(&f, "import", "0,2", err, sizeof err) < 0);
    CHECK(strstr(err, "import: expected a price in EUR such as 0.2345, got '0,2' (write the "
                      "decimals after a '.', not a ',')") != NULL);
    CHECK(cost_fixed_set(&f, "gas", "1e3", err, sizeof err) < 0);
    CHECK(strstr(err, "got '1e3' (write the number out, without an exponent)") != NULL);
    CHECK(cost_fixed_set(&f, "daily", "2000000", err, sizeof err) < 0);
    CHECK(strstr(err, "(out of range: at most 1000000 EUR)") != NULL);
    CHECK(cost_fixed_set(&f, "daily", "abc", err, sizeof err) < 0);
    CHECK(strstr(err, "daily: expected a price in EUR such as 0.2345, got 'abc'") != NULL);
    CHECK(f.import_[0] == COST_UNSET && f.gas == COST_UNSET && f.daily == COST_UNSET);
}

static void test_dst_days(void)
{
    /* A daily charge accrues exactly over the quarter-hours of 23- and 25-hour days. */
    cost_prices p = {0};
    cost_fixed f;
    cost_fixed_init(&f);
    CHECK(cost_fixed_set(&f, "daily", "0.777777", NULL, 0) == 0);
    CHECK(cost_fixed_set(&f, "monthly", "5.03", NULL, 0) == 0);
    p.fixed = &f;
    p.nfixed = 1;
    int64_t e[STORE_E_COUNT];
    energy_none(e);
    const char *days[] = {"2025-03-30", "2025-10-26", "2025-06-01"};
    for (int k = 0; k < 3; k++) {
        int64_t a = T(days[k]), b = civil_next(CIVIL_DAY, a), sum = 0, n = 0;
        cost_cursor c = {{0, 0}, 0, 0, 0, 0};
        for (int64_t t = a; t < b; t += 900, n++) {
            cost_parts cp;
            cost_step(&p, &c, t, t + 900, e, &cp);
            sum += cp.fixed;
        }
        /* A day's share of the month, plus the daily charge, to the micro-euro (floors). */
        int64_t m0 = civil_floor(CIVIL_MONTH, a), m1 = civil_next(CIVIL_MONTH, m0);
        int64_t month_part = 5030000 * (b - m0) / (m1 - m0) - 5030000 * (a - m0) / (m1 - m0);
        CHECK_EQ_INT(sum, 777777 + month_part);
        CHECK_EQ_INT(n, k == 0 ? 92 : k == 1 ? 100 : 96);
    }
    /* And the month's quarters add up to the monthly charge exactly. */
    int64_t a = T("2025-03-01"), b = T("2025-04-01"), sum = 0;
    cost_fixed g;
    cost_fixed_init(&g);
    cost_fixed_set(&g, "monthly", "5.03", NULL, 0);
    p.fixed = &g;
    cost_cursor c = {{0, 0}, 0, 0, 0, 0};
    for (int64_t t = a; t < b; t += 900) {
        cost_parts cp;
        cost_step(&p, &c, t, t + 900, e, &cp);
        sum += cp.fixed;
    }
    CHECK_EQ_INT(sum, 5030000);
}

/* Dynamic prices that cover only part of a step (a 1-hour step beyond the 15-minute tier's
 * retention, with a quarter-hour price missing) price only that part of its energy: the rest
 * goes to the fixed prices or counts as unpriced, never at a neighbouring price. */
static void test_partial_cover(void)
{
    cost_dyn q[3] = {{T("2025-10-01T10:00Z"), T("2025-10-01T10:15Z"), 400000, COST_UNSET},
                     {T("2025-10-01T10:15Z"), T("2025-10-01T10:30Z"), 200000, COST_UNSET},
                     {T("2025-10-01T10:45Z"), T("2025-10-01T11:00Z"), 600000, COST_UNSET}};
    cost_prices p = {0};
    p.dyn[COST_KIND_POWER].v = q;
    p.dyn[COST_KIND_POWER].n = 3;
    int64_t e[STORE_E_COUNT];
    energy_none(e);
    e[STORE_E_IMPORT] = 1000;
    cost_cursor c = {{0, 0}, 0, 0, 0, 0};
    cost_parts cp;
    cost_step(&p, &c, T("2025-10-01T10:00Z"), T("2025-10-01T11:00Z"), e, &cp);
    CHECK_EQ_INT(cp.energy, 300000); /* 750 Wh at the mean 0.40 of the quarters priced */
    CHECK_EQ_INT(cp.unpriced_wh, 250);
    /* The first quarter missing, a fixed price for the rest: 750 Wh at 0.20, 250 Wh at 0.30. */
    cost_dyn r[1] = {{T("2025-10-01T10:15Z"), T("2025-10-01T11:00Z"), 200000, COST_UNSET}};
    cost_fixed f;
    cost_fixed_init(&f);
    cost_fixed_set(&f, "import", "0.30", NULL, 0);
    cost_fixed_set(&f, "gas", "1.00", NULL, 0);
    p.fixed = &f;
    p.nfixed = 1;
    p.dyn[COST_KIND_POWER].v = r;
    p.dyn[COST_KIND_POWER].n = 1;
    /* Gas: a day price from 10:30 on covers half the hour, the fixed price the other half. */
    cost_dyn g[1] = {{T("2025-10-01T10:30Z"), T("2025-10-02T10:30Z"), 2000000, COST_UNSET}};
    p.dyn[COST_KIND_GAS].v = g;
    p.dyn[COST_KIND_GAS].n = 1;
    e[STORE_E_GAS] = 100;
    cost_cursor c2 = {{0, 0}, 0, 0, 0, 0};
    cost_step(&p, &c2, T("2025-10-01T10:00Z"), T("2025-10-01T11:00Z"), e, &cp);
    CHECK_EQ_INT(cp.energy, 225000);
    CHECK_EQ_INT(cp.unpriced_wh, 0);
    CHECK_EQ_INT(cp.gas, 150000);
    CHECK_EQ_INT(cp.unpriced_dm3, 0);
}

static void test_csv(void)
{
    cost_dyns d = {0};
    char err[COST_ERR_MAX] = "";
    const char *csv = "time,price\n"
                      "2025-01-31T10:00:00+01:00,0.25\n"
                      "2025-01-31T10:15:00+01:00,0.26\n"
                      "\n"
                      "# comment\n"
                      "2025-01-31T10:30:00+01:00,0.27\n";
    CHECK(cost_parse_dynamic(csv, strlen(csv), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_EQ_INT(d.v[0].ts, T("2025-01-31T09:00Z"));
        CHECK_EQ_INT(d.v[0].end - d.v[0].ts, 900); /* quarter-hour resolution */
        CHECK_EQ_INT(d.v[2].end - d.v[2].ts, 900);
        CHECK_EQ_INT(d.v[1].import_, 260000);
        CHECK(d.v[1].export_ == COST_UNSET);
    }
    /* ';' with decimal commas, no header, out of order, an export column, CRLF. */
    const char *semi = "2025-01-31 11:00;0,31;0,05\r\n2025-01-31 10:00;0,30;0,04\r\n";
    CHECK(cost_parse_dynamic(semi, strlen(semi), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 2);
    if (d.n == 2) {
        CHECK_EQ_INT(d.v[0].import_, 300000);
        CHECK_EQ_INT(d.v[0].export_, 40000);
        CHECK_EQ_INT(d.v[0].end - d.v[0].ts, 3600);
        CHECK_EQ_INT(d.v[1].end - d.v[1].ts, 3600);
    }
    /* Named columns in another order. */
    const char *named = "price;start\n0,1;2025-01-31T00:00Z\n";
    CHECK(cost_parse_dynamic(named, strlen(named), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == 100000 && d.v[0].ts == T("2025-01-31T00:00Z"));

    /* Bad files name the line and change nothing in out. */
    const char *bad1 = "time,price\n2025-01-31T10:00Z,0.25\n2025-01-31T11:00Z,abc\n";
    CHECK(cost_parse_dynamic(bad1, strlen(bad1), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 3: price", 13) == 0);
    CHECK(d.n == 0 && d.v == NULL);
    const char *bad2 = "2025-01-31T10:00Z,0.25\nyesterday,0.25\n";
    CHECK(cost_parse_dynamic(bad2, strlen(bad2), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 2: time", 12) == 0);
    const char *bad3 = "2025-01-31T10:00Z,0.25\n2025-01-31T10:00Z,0.26\n";
    CHECK(cost_parse_dynamic(bad3, strlen(bad3), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 2") && strstr(err, "line 1"));
    /* times outside 1970-2199, which no other part of p1d can ask for (a typo, seconds as ms) */
    const char *far[] = {
        "time,price\n2025-01-31T10:00Z,0.25\n0001-01-01T00:00,0.1\n",
        "time,price\n2025-01-31T10:00Z,0.25\n1969-12-31T00:00Z,0.1\n",
        "time,price\n2025-01-31T10:00Z,0.25\n9999-12-31T00:00,0.1\n",
        "[{\"time\":1738317600,\"price\":0.1},{\"time\":99999999999,\"price\":0.1}]"};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        CHECK(cost_parse_dynamic(far[i], strlen(far[i]), COST_KIND_POWER, 0, &d, err, sizeof err) <
              0);
        CHECK(strstr(err, "time: out of range: times from 1970 to 2199 only") != NULL);
        CHECK(d.n == 0 && d.v == NULL);
    }
    /* A local time the spring change skips would price a neighbouring hour: refused. */
    const char *gap = "time,price\n2025-03-30T01:00,0.2\n2025-03-30T02:00,0.3\n"
                      "2025-03-30T03:00,0.4\n";
    CHECK(cost_parse_dynamic(gap, strlen(gap), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 3: time: '2025-03-30T02:00' does not exist in local time", 61) == 0);
    CHECK(d.n == 0 && d.v == NULL);
    const char *gap_off = "2025-03-30T02:00+01:00,0.3\n2025-03-30T04:00,0.4\n";
    CHECK(cost_parse_dynamic(gap_off, strlen(gap_off), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].ts == T("2025-03-30T01:00Z"));
    cost_dyns_free(&d);
    const char *bad4 = "2025-01-31T10:00Z\n";
    CHECK(cost_parse_dynamic(bad4, strlen(bad4), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 1:", 7) == 0);
    CHECK(cost_parse_dynamic("time,price\n", 11, COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "no prices") != NULL);
    /* A decimal comma where ',' separates is two fields, not a price of 0 and an export of 2. */
    const char *comma = "time,price\n2025-01-31T10:00Z,0,2\n";
    CHECK(cost_parse_dynamic(comma, strlen(comma), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 2: 3 fields, but the header has 2") != NULL);
    const char *trail = "time,price\n2025-01-31T10:00Z,0.2,\n";
    CHECK(cost_parse_dynamic(trail, strlen(trail), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == 200000 && d.v[0].export_ == COST_UNSET);
    const char *expo = "time,price\n2025-01-31T10:00Z,1e3\n";
    CHECK(cost_parse_dynamic(expo, strlen(expo), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 2: price: expected a decimal number of EUR such as 0.2345, got '1e3' "
                      "(write the number out, without an exponent)") != NULL);
    const char *expo2 = "2025-01-31T10:00Z;1e-3\n";
    CHECK(cost_parse_dynamic(expo2, strlen(expo2), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    const char *exp3 = "time,price,export\n2025-01-31T10:00Z,0.2,0,05\n";
    CHECK(cost_parse_dynamic(exp3, strlen(exp3), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(d.n == 0);
    cost_dyns_free(&d);
}

/* Gas prices per date: a gas day from 06:00, also over the autumn DST change. */
static void test_gas_day_start(void)
{
    int ds = -1;
    CHECK(cost_parse_day_start("06:00", &ds) == 0 && ds == 21600);
    CHECK(cost_parse_day_start("00:00", &ds) == 0 && ds == 0);
    CHECK(cost_parse_day_start("24:00", &ds) < 0 && ds == 0);
    CHECK(cost_parse_day_start("6:00", &ds) < 0);
    CHECK(cost_parse_day_start("06:60", &ds) < 0);
    CHECK(cost_parse_day_start("", &ds) < 0);
    char err[COST_ERR_MAX];
    cost_dyns d = {0};
    const char *g = "date;price\n2025-10-25;1,10\n2025-10-26;1,20\n2025-10-27T00:00;1,30\n";
    CHECK(cost_parse_dynamic(g, strlen(g), COST_KIND_GAS, 21600, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_EQ_INT(d.v[0].ts, T("2025-10-25T06:00+02:00"));
        CHECK_EQ_INT(d.v[0].end, T("2025-10-26T06:00+01:00"));
        CHECK_EQ_INT(d.v[1].ts, T("2025-10-26T06:00+01:00"));
        CHECK_EQ_INT(d.v[1].end, T("2025-10-27T00:00+01:00")); /* the next price, given a time */
        CHECK_EQ_INT(d.v[2].ts, T("2025-10-27T00:00+01:00"));
    }
    /* A price list in EUR/MWh is refused, naming the line. */
    const char *mwh = "time,price\n2025-10-28T00:00,0.1\n2025-10-28T01:00,85.12\n";
    CHECK(cost_parse_dynamic(mwh, strlen(mwh), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 3: price: 85.12 EUR per kWh is more than any electricity price") !=
          NULL);
    CHECK(d.n == 0);
    const char *neg = "time,price,export\n2025-10-28T00:00,0.1,-480\n";
    CHECK(cost_parse_dynamic(neg, strlen(neg), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 2: export: -480 EUR per kWh") != NULL);
    const char *ok = "time,price\n2025-10-28T00:00,9.99\n2025-10-28T01:00,-4\n";
    CHECK(cost_parse_dynamic(ok, strlen(ok), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    const char *gas = "time,price\n2025-10-28,35.2\n";
    CHECK(cost_parse_dynamic(gas, strlen(gas), COST_KIND_GAS, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "line 2: price: 35.2 EUR per m3 is more than any gas price (at most 20)") !=
          NULL);
    /* Power ignores it; 0 keeps midnight. */
    CHECK(cost_parse_dynamic(g, strlen(g), COST_KIND_GAS, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 3 && d.v[0].ts == T("2025-10-25T00:00+02:00"));
    CHECK(cost_parse_dynamic(g, strlen(g), COST_KIND_POWER, 21600, &d, err, sizeof err) == 0);
    CHECK(d.n == 3 && d.v[0].ts == T("2025-10-25T00:00+02:00"));
    cost_dyns_free(&d);
}

static void test_json(void)
{
    cost_dyns d = {0};
    char err[COST_ERR_MAX] = "";
    const char *arr = "[{\"time\": \"2025-01-31T10:00:00+01:00\", \"price\": 0.25},\n"
                      " {\"time\": \"2025-01-31T11:00:00+01:00\", \"price\": \"0.26\", "
                      "\"export\": 0.1, \"extra\": [1, {\"a\": null}]}]";
    CHECK(cost_parse_dynamic(arr, strlen(arr), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[1].import_ == 260000 && d.v[1].export_ == 100000);
    const char *obj = "{\"source\": \"x\", \"prices\": [{\"start\": 1738314000, \"value\": "
                      "2.5e-1}], \"unit\": \"EUR/kWh\"}";
    CHECK(cost_parse_dynamic(obj, strlen(obj), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].ts == 1738314000 && d.v[0].import_ == 250000);
    /* easyEnergy's API: TariffUsage is the import price, TariffReturn the export price. */
    const char *easy = "[{\"Timestamp\":\"2025-01-31T09:00:00+00:00\",\"SupplierId\":0,"
                       "\"TariffUsage\":0.1534,\"TariffReturn\":0.1268},"
                       "{\"Timestamp\":\"2025-01-31T10:00:00+00:00\",\"SupplierId\":0,"
                       "\"TariffUsage\":0.1611,\"TariffReturn\":0.1331}]";
    CHECK(cost_parse_dynamic(easy, strlen(easy), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].ts == 1738314000 && d.v[0].import_ == 153400 &&
          d.v[0].export_ == 126800 && d.v[1].end == 1738321200 && d.v[1].export_ == 133100);
    /* Gas: a day per price, 23 hours on the spring DST day. */
    const char *gas = "[{\"time\":\"2025-03-29\",\"price\":1.2},{\"time\":\"2025-03-30\","
                      "\"price\":1.3}]";
    CHECK(cost_parse_dynamic(gas, strlen(gas), COST_KIND_GAS, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].end == d.v[1].ts && d.v[1].end - d.v[1].ts == 23 * 3600);

    const char *bad1 = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": 0.25},\n"
                       " {\"time\": \"2025-01-31T11:00Z\", \"price\": \"x\"}]";
    CHECK(cost_parse_dynamic(bad1, strlen(bad1), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 2: price", 13) == 0);
    const char *bad2 = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": 0.25}\n\n"
                       " {\"time\": \"2025-01-31T11:00Z\"}]";
    CHECK(cost_parse_dynamic(bad2, strlen(bad2), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strncmp(err, "line 3:", 7) == 0);
    const char *bad3 = "[{\"time\": \"2025-01-31T10:00Z\"}]";
    CHECK(cost_parse_dynamic(bad3, strlen(bad3), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "without \"price\"") != NULL);
    const char *bad4 = "{\"data\": 5}";
    CHECK(cost_parse_dynamic(bad4, strlen(bad4), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    const char *bad5 = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": 0.25}] x";
    CHECK(cost_parse_dynamic(bad5, strlen(bad5), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(d.n == 0);
    /* JSON numbers may have exponents (encoders write 1e-05); strings are plain decimals. */
    const char *small = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": -1e-05, \"export\": 5E-6}]";
    CHECK(cost_parse_dynamic(small, strlen(small), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == -10 && d.v[0].export_ == 5);
    const char *sc = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": \"0,2\"}]";
    CHECK(cost_parse_dynamic(sc, strlen(sc), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "got '0,2' (write the decimals after a '.', not a ',')") != NULL);
    const char *se = "[{\"time\": \"2025-01-31T10:00Z\", \"price\": \"1e3\"}]";
    CHECK(cost_parse_dynamic(se, strlen(se), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    cost_dyns_free(&d);
}

static void test_fixed_keys(void)
{
    cost_fixed f;
    char err[COST_ERR_MAX];
    cost_fixed_init(&f);
    CHECK(!cost_fixed_any(&f));
    CHECK(cost_fixed_set(&f, "import_t1", "0.20", err, sizeof err) == 0);
    CHECK(cost_fixed_set(&f, "valid_from", "2025-01-01", err, sizeof err) == 0);
    CHECK(cost_fixed_set(&f, "tariff_rule", "nl", err, sizeof err) == 0);
    CHECK(cost_fixed_set(&f, "gas", "", err, sizeof err) == 0 && f.gas == COST_UNSET);
    CHECK(cost_fixed_set(&f, "import", "cheap", err, sizeof err) < 0 && strstr(err, "import"));
    CHECK(cost_fixed_set(&f, "valid_to", "soon", err, sizeof err) < 0);
    CHECK(cost_fixed_set(&f, "tariff_rule", "fr", err, sizeof err) < 0);
    CHECK(cost_fixed_set(&f, "nonsense", "1", err, sizeof err) < 0);
    CHECK(cost_fixed_any(&f) && f.import_[1] == 200000 && f.from == T("2025-01-01"));
    CHECK_EQ_STR(cost_fixed_key(0), "import");
    CHECK_EQ_STR(cost_fixed_key(11), "tariff_rule");
    CHECK_EQ_STR(cost_fixed_key(12), "capacity_per_kw_year");
    CHECK_EQ_STR(cost_fixed_key(13), "dynamic_import_factor");
    CHECK_EQ_STR(cost_fixed_key(COST_FIXED_KEYS - 1), "dynamic_export_add");
    CHECK(cost_fixed_key(COST_FIXED_KEYS) == NULL);
    /* a period must not end before it starts (or be empty); open ends are fine */
    CHECK(cost_fixed_check(&f, err, sizeof err) == 0);
    CHECK(cost_fixed_set(&f, "valid_to", "2026-01-01", err, sizeof err) == 0);
    CHECK(cost_fixed_check(&f, err, sizeof err) == 0);
    CHECK(cost_fixed_set(&f, "valid_to", "2024-06-01", err, sizeof err) == 0);
    CHECK(cost_fixed_check(&f, err, sizeof err) < 0 && strstr(err, "valid_to"));
    CHECK(cost_fixed_set(&f, "valid_to", "2025-01-01", err, sizeof err) == 0);
    CHECK(cost_fixed_check(&f, err, sizeof err) < 0);
}

/* Fixed periods, tariff registers, the calendar rule, dynamic prices winning, exact money. */
static void test_costs(void)
{
    cost_fixed f[2];
    cost_fixed_init(&f[0]);
    cost_fixed_init(&f[1]);
    cost_fixed_set(&f[0], "import_t1", "0.20", NULL, 0);
    cost_fixed_set(&f[0], "import_t2", "0.30", NULL, 0);
    cost_fixed_set(&f[0], "export", "0.07", NULL, 0);
    cost_fixed_set(&f[0], "gas", "1.234567", NULL, 0);
    cost_fixed_set(&f[1], "valid_from", "2025-02-01", NULL, 0);
    cost_fixed_set(&f[1], "import", "0.2345", NULL, 0);
    cost_fixed_set(&f[1], "tariff_rule", "nl", NULL, 0);
    cost_fixed_set(&f[1], "import_t1", "0.21", NULL, 0);
    cost_fixed_set(&f[1], "import_t2", "0.31", NULL, 0);
    cost_prices p = {0};
    p.fixed = f;
    p.nfixed = 2;
    cost_cursor c = {{0, 0}, 0, 0, 0, 0};
    cost_parts cp;
    int64_t e[STORE_E_COUNT];
    energy_none(e);
    e[STORE_E_IMPORT] = 1234;
    e[STORE_E_IMPORT_T1] = 1000;
    e[STORE_E_IMPORT_T2] = 234;
    e[STORE_E_EXPORT] = 100;
    e[STORE_E_GAS] = 321; /* dm3 */
    int64_t t = T("2025-01-15T10:00");
    cost_step(&p, &c, t, t + 900, e, &cp);
    /* 1000 Wh x 0.20 + 234 Wh x 0.30 - 100 Wh x 0.07 = 0.2 + 0.0702 - 0.007 EUR */
    CHECK_EQ_INT(cp.energy, 263200);
    /* 321 dm3 x 1.234567 EUR/m3 = 0.396296007 -> 0.396296 */
    CHECK_EQ_INT(cp.gas, 396296);
    CHECK(cp.priced && cp.fixed == 0);

    /* The second period: no tariff registers -> the NL calendar rule (a Saturday: tariff 1). */
    e[STORE_E_IMPORT_T1] = e[STORE_E_IMPORT_T2] = STORE_NULL;
    e[STORE_E_EXPORT] = STORE_NULL;
    e[STORE_E_GAS] = STORE_NULL;
    t = T("2025-02-01T10:00"); /* Saturday */
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 1234 * 210); /* 0.25914 EUR */
    t = T("2025-02-03T10:00");           /* Monday, day: tariff 2 */
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 1234 * 310);
    t = T("2025-02-03T23:15"); /* Monday night: tariff 1 */
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 1234 * 210);

    /* Dynamic prices win where they exist; export at the same price unless given. */
    cost_dyn dv[2] = {{T("2025-02-03T10:00"), T("2025-02-03T10:15"), -12345, COST_UNSET},
                      {T("2025-02-03T10:15"), T("2025-02-03T10:30"), 300000, 50000}};
    p.dyn[COST_KIND_POWER].v = dv;
    p.dyn[COST_KIND_POWER].n = 2;
    e[STORE_E_EXPORT] = 10;
    memset(&c, 0, sizeof c);
    t = T("2025-02-03T10:00");
    cost_step(&p, &c, t, t + 900, e, &cp);
    /* (1234 - 10) Wh x -0.012345 = -0.01511028 -> -0.01511 */
    CHECK_EQ_INT(cp.energy, -15110);
    cost_step(&p, &c, t + 900, t + 1800, e, &cp);
    CHECK_EQ_INT(cp.energy, 1234 * 300 - 10 * 50);
    cost_step(&p, &c, t + 1800, t + 2700, e, &cp); /* past the dynamic prices: fixed, tariff 2 */
    CHECK_EQ_INT(cp.energy, 1234 * 310);
    /* An hour over two quarter-hour prices (the hourly fallback): the time-weighted mean. */
    memset(&c, 0, sizeof c);
    e[STORE_E_EXPORT] = STORE_NULL;
    cost_step(&p, &c, t, t + 1800, e, &cp);
    CHECK_EQ_INT(cp.energy, (1234 * 143828 + 500) / 1000);
    p.dyn[COST_KIND_POWER].v = NULL;
    p.dyn[COST_KIND_POWER].n = 0;

    /* Before every period: nothing priced. */
    t = T("1969-12-31T00:00Z");
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK(!cp.priced && cp.energy == 0);
}

/* Energy without a price is reported apart, never priced at 0 (QA: a day with 1 of 24 hours
 * priced cost as much as that hour). */
static void test_unpriced(void)
{
    cost_dyn dv[1] = {{T("2025-02-03T10:00"), T("2025-02-03T11:00"), 200000, COST_UNSET}};
    cost_prices p = {0};
    p.dyn[COST_KIND_POWER].v = dv;
    p.dyn[COST_KIND_POWER].n = 1;
    cost_cursor c = {{0, 0}, 0, 0, 0, 0};
    cost_parts cp;
    int64_t e[STORE_E_COUNT];
    energy_none(e);
    e[STORE_E_IMPORT] = 1000;
    e[STORE_E_EXPORT] = 200;
    e[STORE_E_GAS] = 50;
    int64_t t = T("2025-02-03T10:00");
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK(cp.priced && cp.energy == 800 * 200 && cp.unpriced_wh == 0);
    CHECK(cp.gas == 0 && cp.unpriced_dm3 == 50); /* no gas price at all */
    /* The next hour has no price: all of its energy is unpriced, none of it is free. */
    cost_step(&p, &c, t + 3600, t + 4500, e, &cp);
    CHECK(!cp.priced && cp.energy == 0);
    CHECK_EQ_INT(cp.unpriced_wh, 1200);
    CHECK_EQ_INT(cp.unpriced_dm3, 50);

    /* A fixed period with an import price only: export has no price. */
    cost_fixed f;
    cost_fixed_init(&f);
    cost_fixed_set(&f, "import", "0.25", NULL, 0);
    p.fixed = &f;
    p.nfixed = 1;
    memset(&c, 0, sizeof c);
    cost_step(&p, &c, t + 3600, t + 4500, e, &cp);
    CHECK(cp.priced && cp.energy == 1000 * 250);
    CHECK_EQ_INT(cp.unpriced_wh, 200);
    /* Tariff registers: tariff 2 falls back to the single price, so everything is priced. */
    e[STORE_E_IMPORT_T1] = 600;
    e[STORE_E_IMPORT_T2] = 400;
    e[STORE_E_EXPORT_T1] = 0;
    e[STORE_E_EXPORT_T2] = 200;
    cost_fixed_set(&f, "export_t2", "0.05", NULL, 0);
    cost_fixed_set(&f, "gas", "1.5", NULL, 0);
    cost_step(&p, &c, t + 3600, t + 4500, e, &cp);
    CHECK(cp.priced && cp.energy == 1000 * 250 - 200 * 50 && cp.unpriced_wh == 0);
    CHECK(cp.gas == 75000 && cp.unpriced_dm3 == 0);
    /* Only a gas price and a daily charge: the electricity is unpriced. */
    cost_fixed_init(&f);
    cost_fixed_set(&f, "gas", "1.5", NULL, 0);
    cost_fixed_set(&f, "daily", "0.96", NULL, 0);
    cost_step(&p, &c, t + 3600, t + 4500, e, &cp);
    CHECK(cp.priced && cp.energy == 0 && cp.gas == 75000 && cp.fixed == 10000);
    CHECK_EQ_INT(cp.unpriced_wh, 1200);
}

static void test_db(void)
{
    sqlite3 *db = NULL;
    char err[COST_ERR_MAX] = "";
    CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
    cost_prices p;
    /* Before the tables exist: no prices, no error. */
    CHECK(cost_db_load(db, 0, 1, &p, err, sizeof err) == 0 && !cost_prices_any(&p));
    CHECK(cost_db_init(db, err, sizeof err) == 0);
    CHECK(cost_db_init(db, err, sizeof err) == 0);
    cost_fixed f;
    cost_fixed_init(&f);
    cost_fixed_set(&f, "import", "0.25", NULL, 0);
    cost_fixed_set(&f, "daily", "0.5", NULL, 0);
    cost_fixed_set(&f, "capacity_per_kw_year", "41.25", NULL, 0);
    CHECK(cost_db_save_fixed(db, &f, err, sizeof err) == 0);
    cost_fixed_set(&f, "import", "0.26", NULL, 0); /* same start: replaced */
    CHECK(cost_db_save_fixed(db, &f, err, sizeof err) == 0);
    cost_fixed_set(&f, "valid_from", "2025-06-01", NULL, 0);
    cost_fixed_set(&f, "import", "0.27", NULL, 0);
    CHECK(cost_db_save_fixed(db, &f, err, sizeof err) == 0);

    const char *csv = "2025-01-31T10:00Z,0.1\n2025-01-31T11:00Z,0.2\n2025-01-31T12:00Z,0.3\n";
    cost_dyns d = {0};
    CHECK(cost_parse_dynamic(csv, strlen(csv), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(cost_db_save_dynamic(db, COST_KIND_POWER, &d, err, sizeof err) == 0);
    /* A re-import of part of the span at quarter-hour resolution replaces that part. */
    const char *q = "2025-01-31T11:00Z,0.5\n2025-01-31T11:15Z,0.6\n2025-01-31T11:30Z,0.7\n"
                    "2025-01-31T11:45Z,0.8\n";
    CHECK(cost_parse_dynamic(q, strlen(q), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(cost_db_save_dynamic(db, COST_KIND_POWER, &d, err, sizeof err) == 0);
    cost_dyns_free(&d);

    CHECK(cost_db_load(db, T("2025-01-01"), T("2025-12-31"), &p, err, sizeof err) == 0);
    CHECK_EQ_INT(p.nfixed, 2);
    if (p.nfixed == 2) {
        CHECK_EQ_INT(p.fixed[0].import_[0], 260000);
        CHECK_EQ_INT(p.fixed[1].import_[0], 270000);
        CHECK(p.fixed[0].gas == COST_UNSET && p.fixed[0].daily == 500000);
        CHECK_EQ_INT(p.fixed[1].capacity, 41250000);
    }
    CHECK_EQ_INT(p.dyn[COST_KIND_POWER].n, 6);
    if (p.dyn[COST_KIND_POWER].n == 6) {
        CHECK_EQ_INT(p.dyn[0].v[0].import_, 100000);
        CHECK_EQ_INT(p.dyn[0].v[1].import_, 500000);
        CHECK_EQ_INT(p.dyn[0].v[4].import_, 800000);
        CHECK_EQ_INT(p.dyn[0].v[5].import_, 300000);
    }
    CHECK_EQ_INT(p.dyn[COST_KIND_GAS].n, 0);
    cost_prices_free(&p);
    cost_prices_free(&p); /* idempotent */
    /* A range outside every dynamic price: only the fixed ones. */
    CHECK(cost_db_load(db, T("2025-03-01"), T("2025-03-02"), &p, err, sizeof err) == 0);
    CHECK(p.dyn[0].n == 0 && p.nfixed == 2);
    cost_prices_free(&p);
    /* Quarter-hours from 12:15 on over the hourly 12:00 price: that price ends at 12:15. */
    const char *q2 = "2025-01-31T12:15Z,0.9\n2025-01-31T12:30Z,0.9\n";
    CHECK(cost_parse_dynamic(q2, strlen(q2), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(cost_db_save_dynamic(db, COST_KIND_POWER, &d, err, sizeof err) == 0);
    cost_dyns_free(&d);
    CHECK(cost_db_load(db, T("2025-01-31T12:00Z"), T("2025-01-31T13:00Z"), &p, err,
                       sizeof err) == 0);
    CHECK_EQ_INT(p.dyn[0].n, 3);
    if (p.dyn[0].n == 3) {
        CHECK_EQ_INT(p.dyn[0].v[0].end, T("2025-01-31T12:15Z"));
        CHECK_EQ_INT(p.dyn[0].v[2].end, T("2025-01-31T12:45Z"));
    }
    cost_prices_free(&p);
    sqlite3_close(db);
}

/* The capacity tariff: its key, the 2.5 kW floor, the mean of the months given, one rounding. */
static void test_capacity(void)
{
    cost_fixed f;
    char err[COST_ERR_MAX];
    cost_fixed_init(&f);
    CHECK(cost_fixed_set(&f, "capacity_per_kw_year", "-1", err, sizeof err) < 0 &&
          strstr(err, "between 0 and 1000"));
    CHECK(cost_fixed_set(&f, "capacity_per_kw_year", "1000.000001", err, sizeof err) < 0);
    CHECK(cost_fixed_set(&f, "capacity_per_kw_year", "48,5", err, sizeof err) < 0);
    CHECK(!cost_fixed_any(&f));
    CHECK(cost_fixed_set(&f, "capacity_per_kw_year", "40.4", err, sizeof err) == 0 &&
          f.capacity == 40400000 && cost_fixed_any(&f));
    int64_t mean;
    /* 2 kW counts as 2.5: (2.5 + 3.333 + 4.001) / 3 = 3.278 kW; 40.4 x 9.834 / 36 */
    const int64_t w[] = {2000, 3333, 4001};
    CHECK_EQ_INT(cost_capacity_month(40400000, w, 3, &mean), 11035933);
    CHECK_EQ_INT(mean, 3278);
    /* a lone month below the floor: 48.5 / 12 x 2.5 = 10.1041666.. */
    const int64_t low[] = {0};
    CHECK_EQ_INT(cost_capacity_month(48500000, low, 1, &mean), 10104167);
    CHECK_EQ_INT(mean, 2500);
    const int64_t year[12] = {3000, 3000, 3000, 3000, 3000, 3000,
                              3000, 3000, 3000, 3000, 3000, 9000};
    CHECK_EQ_INT(cost_capacity_month(48000000, year, 12, &mean), 14000000); /* 48/12 x 3.5 */
    CHECK_EQ_INT(mean, 3500);
    /* the price in force at a time; none before the first period */
    cost_fixed per[2];
    cost_fixed_init(&per[0]);
    cost_fixed_init(&per[1]);
    per[0].from = T("2025-01-01");
    per[0].capacity = 40000000;
    per[1].from = T("2026-01-01");
    cost_prices p;
    memset(&p, 0, sizeof p);
    p.fixed = per;
    p.nfixed = 2;
    CHECK(cost_capacity_price(&p, T("2024-12-31")) == COST_UNSET);
    CHECK_EQ_INT(cost_capacity_price(&p, T("2025-06-01")), 40000000);
    CHECK(cost_capacity_price(&p, T("2026-02-01")) == COST_UNSET);
}

/* P x factor + add, exact and rounded once half away from zero, also for negative spot prices
 * and without overflow at the extremes. */
static void test_dyn_adjust(void)
{
    /* NL 2027: (spot + 0.10154 energy tax + 0.02 markup) x 1.21 = spot x 1.21 + 0.147063 */
    CHECK_EQ_INT(cost_dyn_adjust(123457, 1210000, 147063), 296446); /* 0.29644597 */
    CHECK_EQ_INT(cost_dyn_adjust(-12345, 1210000, 147063), 132126); /* 0.13212555: half up */
    CHECK_EQ_INT(cost_dyn_adjust(-12345, 1210000, COST_UNSET), -14937); /* -0.01493745 */
    CHECK_EQ_INT(cost_dyn_adjust(-500000, 1210000, 0), -605000);
    CHECK_EQ_INT(cost_dyn_adjust(-400000, 1210000, 147063), -336937); /* still negative */
    /* ties go away from zero on both sides; just below and above a tie do not */
    CHECK_EQ_INT(cost_dyn_adjust(5, 1100000, 0), 6);   /* 5.5 */
    CHECK_EQ_INT(cost_dyn_adjust(-5, 1100000, 0), -6); /* -5.5 */
    CHECK_EQ_INT(cost_dyn_adjust(-5, 1100000, 1), -5); /* -4.5 */
    CHECK_EQ_INT(cost_dyn_adjust(-5, 1100000, 10), 5); /* 4.5 */
    CHECK_EQ_INT(cost_dyn_adjust(1, 500000, 0), 1);    /* 0.5 */
    CHECK_EQ_INT(cost_dyn_adjust(-1, 500000, 0), -1);  /* -0.5 */
    CHECK_EQ_INT(cost_dyn_adjust(-1, 400000, 0), 0);   /* -0.4 */
    CHECK_EQ_INT(cost_dyn_adjust(-1, 600000, 0), -1);  /* -0.6 */
    CHECK_EQ_INT(cost_dyn_adjust(-3, 499999, 1), 0);   /* -0.499997 */
    CHECK_EQ_INT(cost_dyn_adjust(7, 1, 0), 0);         /* 0.000007 */
    /* unset = factor 1, add 0: the price as given */
    CHECK_EQ_INT(cost_dyn_adjust(-12345, COST_UNSET, COST_UNSET), -12345);
    CHECK_EQ_INT(cost_dyn_adjust(234567, COST_UNSET, -20000), 214567);
    CHECK_EQ_INT(cost_dyn_adjust(234567, 0, 50000), 50000);
    /* the extremes fit in 64 bits: 1,000,000 EUR x 99.999999 and 10 EUR x 100 */
    CHECK_EQ_INT(cost_dyn_adjust(1000000000000LL, 99999999, 0), 99999999000000LL);
    CHECK_EQ_INT(cost_dyn_adjust(-1000000000000LL, 99999999, -1000000000000LL),
                 -100999999000000LL);
    CHECK_EQ_INT(cost_dyn_adjust(10000000, COST_FACTOR_MAX, 0), 1000000000);

    cost_fixed f;
    char err[COST_ERR_MAX];
    cost_fixed_init(&f);
    CHECK(cost_fixed_set(&f, "dynamic_import_factor", "-1", err, sizeof err) < 0);
    CHECK_EQ_STR(err, "dynamic_import_factor: expected a factor between 0 and 100 (such as 1.21), "
                      "got '-1'");
    CHECK(cost_fixed_set(&f, "dynamic_export_factor", "100.000001", err, sizeof err) < 0 &&
          strstr(err, "dynamic_export_factor: expected a factor between 0 and 100"));
    CHECK(cost_fixed_set(&f, "dynamic_import_factor", "1,21", err, sizeof err) < 0);
    CHECK_EQ_STR(err, "dynamic_import_factor: expected a factor such as 1.21, got '1,21' (write "
                      "the decimals after a '.', not a ',')");
    CHECK(cost_fixed_set(&f, "dynamic_import_add", "0.1e-3", err, sizeof err) < 0);
    CHECK_EQ_STR(err, "dynamic_import_add: expected a price in EUR such as 0.2345, got '0.1e-3' "
                      "(write the number out, without an exponent)");
    CHECK(cost_fixed_set(&f, "dynamic_export_add", "2000000", err, sizeof err) < 0 &&
          strstr(err, "dynamic_export_add") && strstr(err, "at most 1000000 EUR"));
    CHECK(!cost_fixed_any(&f));
    CHECK(cost_fixed_set(&f, "dynamic_import_factor", "1.2100005", err, sizeof err) == 0 &&
          f.dyn_import_factor == 1210001); /* 6 decimals, half away from zero */
    CHECK(cost_fixed_any(&f));
    CHECK(cost_fixed_set(&f, "dynamic_import_factor", "100", err, sizeof err) == 0 &&
          f.dyn_import_factor == COST_FACTOR_MAX);
    CHECK(cost_fixed_set(&f, "dynamic_export_factor", "0", err, sizeof err) == 0 &&
          f.dyn_export_factor == 0);
    CHECK(cost_fixed_set(&f, "dynamic_import_add", "0.147063", err, sizeof err) == 0 &&
          f.dyn_import_add == 147063);
    CHECK(cost_fixed_set(&f, "dynamic_export_add", "-0.02", err, sizeof err) == 0 &&
          f.dyn_export_add == -20000);
}

/* The adjustments in cost_step: import, export with and without its own keys, an export value
 * of the file as it is, a mean over quarter-hours of adjusted prices, fixed prices and gas as
 * they are. */
static void test_dyn_adjust_costs(void)
{
    cost_fixed f;
    cost_fixed_init(&f);
    cost_fixed_set(&f, "import", "0.30", NULL, 0);
    cost_fixed_set(&f, "export", "0.10", NULL, 0);
    cost_fixed_set(&f, "dynamic_import_factor", "1.21", NULL, 0);
    cost_fixed_set(&f, "dynamic_import_add", "0.147063", NULL, 0);
    int64_t t = T("2027-01-15T10:00");
    cost_dyn dv[3] = {{t, t + 900, -12345, COST_UNSET},
                      {t + 900, t + 1800, 123457, COST_UNSET},
                      {t + 1800, t + 2700, 123457, 45678}};
    cost_dyn gv[1] = {{T("2027-01-15"), T("2027-01-16"), 1234567, COST_UNSET}};
    cost_prices p = {0};
    p.fixed = &f;
    p.nfixed = 1;
    p.dyn[COST_KIND_POWER].v = dv;
    p.dyn[COST_KIND_POWER].n = 3;
    p.dyn[COST_KIND_GAS].v = gv;
    p.dyn[COST_KIND_GAS].n = 1;
    cost_cursor c;
    memset(&c, 0, sizeof c);
    cost_parts cp;
    int64_t e[STORE_E_COUNT];
    energy_none(e);
    e[STORE_E_IMPORT] = 400;
    e[STORE_E_EXPORT] = 100;
    e[STORE_E_GAS] = 100;
    /* import only: export earns the adjusted import price (net metering), 0.132126 */
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 300 * 132126 / 1000 + (300 * 132126 % 1000 >= 500)); /* 39.6378 */
    CHECK_EQ_INT(cp.gas, 123457); /* 100 dm3 x 1.234567, not adjusted */
    /* the export keys: export at spot x 1 - 0.02 = -0.032345 (exporting costs) */
    cost_fixed_set(&f, "dynamic_export_add", "-0.02", NULL, 0);
    cost_step(&p, &c, t, t + 900, e, &cp);
    /* 400 x 0.132126 + 100 x 0.032345 = 52.8504 + 3.2345 = 56.0849 -> 56.085 (milli) */
    CHECK_EQ_INT(cp.energy, 56085);
    cost_fixed_set(&f, "dynamic_export_factor", "0.5", NULL, 0);
    cost_step(&p, &c, t + 900, t + 1800, e, &cp);
    /* 400 x 0.296446 - 100 x (0.0617285 -> 0.061729 - 0.02 = 0.041729) = 118.5784 - 4.1729 */
    CHECK_EQ_INT(cp.energy, 114406);
    /* an export value of the file is used as it is */
    cost_step(&p, &c, t + 1800, t + 2700, e, &cp);
    CHECK_EQ_INT(cp.energy, 114011); /* 400 x 0.296446 - 100 x 0.045678 = 114.0106 milli */
    /* an hour over the three quarter-hours and a hole: the mean of the adjusted prices */
    memset(&c, 0, sizeof c);
    e[STORE_E_EXPORT] = STORE_NULL;
    cost_step(&p, &c, t, t + 3600, e, &cp);
    /* 3/4 of 400 Wh at (0.132126 + 0.296446 x 2) / 3 = 0.241672667 -> 0.241673; 100 Wh at 0.30 */
    CHECK_EQ_INT(cp.energy, (300 * 241673 + 500) / 1000 + 30000);
    /* a sub-step past the dynamic prices: the fixed price as it is */
    cost_step(&p, &c, t + 3600, t + 4500, e, &cp);
    CHECK_EQ_INT(cp.energy, 400 * 300);
    /* docs/API.md's 2027 example: spot 0.08, 500 Wh in, 250 Wh out; spot -0.05, 100 in, 1000 out */
    cost_fixed_init(&f);
    cost_fixed_set(&f, "dynamic_import_factor", "1.21", NULL, 0);
    cost_fixed_set(&f, "dynamic_import_add", "0.147063", NULL, 0);
    dv[0].import_ = 80000;
    dv[1].import_ = -50000;
    e[STORE_E_IMPORT] = 500;
    e[STORE_E_EXPORT] = 250;
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 60966); /* net metering: 250 Wh x 0.243863 */
    cost_fixed_set(&f, "dynamic_export_add", "-0.02", NULL, 0);
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, 106932);
    e[STORE_E_IMPORT] = 100;
    e[STORE_E_EXPORT] = 1000;
    cost_step(&p, &c, t + 900, t + 1800, e, &cp);
    CHECK_EQ_INT(cp.energy, 78656);
    e[STORE_E_IMPORT] = 400;
    e[STORE_E_EXPORT] = STORE_NULL;
    dv[0].import_ = -12345;
    /* no period in force: the file's prices as they are */
    f.from = t + 86400;
    cost_step(&p, &c, t, t + 900, e, &cp);
    CHECK_EQ_INT(cp.energy, -(400 * 12345 + 500) / 1000);
}

/* The adjustments are stored with their period, and a table from before them (or before the
 * capacity column) gets the columns in the order of a new one. */
static void test_dyn_adjust_db(void)
{
    static const char *const old[] = {
        "CREATE TABLE price_fixed (valid_from INTEGER PRIMARY KEY, valid_to INTEGER NOT NULL, "
        "import INTEGER, import_t1 INTEGER, import_t2 INTEGER, export INTEGER, export_t1 INTEGER, "
        "export_t2 INTEGER, gas INTEGER, daily INTEGER, monthly INTEGER, rule INTEGER NOT NULL "
        "DEFAULT 0)",
        "CREATE TABLE price_fixed (valid_from INTEGER PRIMARY KEY, valid_to INTEGER NOT NULL, "
        "import INTEGER, import_t1 INTEGER, import_t2 INTEGER, export INTEGER, export_t1 INTEGER, "
        "export_t2 INTEGER, gas INTEGER, daily INTEGER, monthly INTEGER, rule INTEGER NOT NULL "
        "DEFAULT 0, capacity INTEGER)",
        NULL};
    for (int k = 0; k < 3; k++) {
        sqlite3 *db = NULL;
        char err[COST_ERR_MAX] = "";
        CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
        if (old[k])
            CHECK(sqlite3_exec(db, old[k], NULL, NULL, NULL) == SQLITE_OK);
        CHECK(cost_db_init(db, err, sizeof err) == 0);
        CHECK(cost_db_init(db, err, sizeof err) == 0);
        cost_fixed f;
        cost_fixed_init(&f);
        cost_fixed_set(&f, "dynamic_import_factor", "1.21", NULL, 0);
        cost_fixed_set(&f, "dynamic_import_add", "0.147063", NULL, 0);
        cost_fixed_set(&f, "dynamic_export_add", "-0.02", NULL, 0);
        cost_fixed_set(&f, "capacity_per_kw_year", "40", NULL, 0);
        CHECK(cost_db_save_fixed(db, &f, err, sizeof err) == 0);
        cost_prices p;
        CHECK(cost_db_load(db, 0, 1, &p, err, sizeof err) == 0 && cost_prices_any(&p));
        CHECK_EQ_INT(p.nfixed, 1);
        if (p.nfixed == 1) {
            CHECK_EQ_INT(p.fixed[0].dyn_import_factor, 1210000);
            CHECK_EQ_INT(p.fixed[0].dyn_import_add, 147063);
            CHECK(p.fixed[0].dyn_export_factor == COST_UNSET);
            CHECK_EQ_INT(p.fixed[0].dyn_export_add, -20000);
            CHECK_EQ_INT(p.fixed[0].capacity, 40000000);
            CHECK(p.fixed[0].import_[0] == COST_UNSET);
        }
        cost_prices_free(&p);
        sqlite3_close(db);
    }
}

/* The price in force at a time (/metrics and MQTT): the dynamic price adjusted, else the fixed
 * price of the meter's tariff or the calendar rule, and when the answer changes next. */
static void test_price_at(void)
{
    cost_fixed f[2];
    cost_fixed_init(&f[0]);
    cost_fixed_init(&f[1]);
    cost_fixed_set(&f[0], "import_t1", "0.21", NULL, 0);
    cost_fixed_set(&f[0], "import_t2", "0.25", NULL, 0);
    cost_fixed_set(&f[0], "export", "0.07", NULL, 0);
    cost_fixed_set(&f[0], "tariff_rule", "nl", NULL, 0);
    cost_fixed_set(&f[0], "dynamic_import_factor", "1.21", NULL, 0);
    cost_fixed_set(&f[0], "dynamic_import_add", "0.147063", NULL, 0);
    cost_fixed_set(&f[0], "valid_to", "2027-02-01", NULL, 0);
    cost_fixed_set(&f[1], "valid_from", "2027-02-01", NULL, 0);
    cost_fixed_set(&f[1], "gas", "1.1", NULL, 0); /* no electricity price */
    /* a Friday: NL tariff 2 by the rule */
    int64_t t = T("2027-01-15T10:00");
    cost_dyn dv[2] = {{t, t + 900, 123457, COST_UNSET}, {t + 900, t + 1800, -12345, 45678}};
    cost_prices p = {0};
    p.fixed = f;
    p.nfixed = 2;
    p.dyn[COST_KIND_POWER].v = dv;
    p.dyn[COST_KIND_POWER].n = 2;
    int64_t imp, exp, since;
    cost_price_at(&p, t + 10, 1, &imp, &exp, &since);
    /* 0.123457 x 1.21 + 0.147063 = 0.29644597; export at the adjusted import price */
    CHECK(imp == 296446 && exp == 296446 && since == t);
    cost_price_at(&p, t + 900, 0, &imp, &exp, &since);
    CHECK(imp == 132126 && exp == 45678 && since == t + 900); /* the file's export as it is */
    CHECK_EQ_INT(cost_price_next_change(&p, t + 10), t + 900);
    CHECK_EQ_INT(cost_price_next_change(&p, t + 900), t + 1800);
    /* after the dynamic prices: the fixed ones, by the meter's tariff or else the rule */
    cost_price_at(&p, t + 1800, 1, &imp, &exp, &since);
    CHECK(imp == 210000 && exp == 70000 && since == f[0].from);
    cost_price_at(&p, t + 1800, 2, &imp, &exp, &since);
    CHECK(imp == 250000 && exp == 70000);
    cost_price_at(&p, t + 1800, 0, &imp, &exp, &since);
    CHECK(imp == 250000);
    cost_price_at(&p, T("2027-01-16T10:00"), -1, &imp, &exp, &since); /* Saturday: tariff 1 */
    CHECK(imp == 210000);
    CHECK_EQ_INT(cost_price_next_change(&p, t + 1800), T("2027-02-01"));
    /* a period without an electricity price, and before every period: none applies */
    cost_price_at(&p, T("2027-03-01"), 1, &imp, &exp, &since);
    CHECK(imp == COST_UNSET && exp == COST_UNSET && since == COST_UNSET);
    CHECK_EQ_INT(cost_price_next_change(&p, T("2027-03-01")), COST_FOREVER);
    p.nfixed = 0;
    cost_price_at(&p, t + 1800, 1, &imp, &exp, &since);
    CHECK(imp == COST_UNSET && exp == COST_UNSET && since == COST_UNSET);
}

/* The price lists of services p1d fetches from: Tibber's GraphQL reply (the lists sit deep in
 * it; the first home with prices counts), Energy-Charts' columns in EUR/MWh, a unit a file names,
 * a server's error message, and XML. */
static void test_json_sources(void)
{
    cost_dyns d = {0};
    char err[COST_ERR_MAX] = "";
    const char *tibber =
        "{\"data\":{\"viewer\":{\"homes\":[{\"currentSubscription\":null},"
        "{\"id\":\"a\",\"currentSubscription\":{\"priceInfo\":{"
        "\"current\":{\"total\":0.9,\"startsAt\":\"2025-01-31T10:00:00.000+01:00\"},"
        "\"today\":[{\"total\":0.2512,\"energy\":0.08,\"tax\":0.1712,"
        "\"startsAt\":\"2025-01-31T10:00:00.000+01:00\"},{\"total\":0.2613,"
        "\"startsAt\":\"2025-01-31T11:00:00.000+01:00\"}],"
        "\"tomorrow\":[{\"total\":-0.01,\"startsAt\":\"2025-02-01T00:00:00.000+01:00\"}]}}},"
        "{\"currentSubscription\":{\"priceInfo\":{\"today\":[{\"total\":9,"
        "\"startsAt\":\"2025-01-31T10:00:00.000+01:00\"}],\"tomorrow\":[]}}}]}}}";
    CHECK(cost_parse_dynamic(tibber, strlen(tibber), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 3 && d.v[0].ts == T("2025-01-31T10:00+01:00") && d.v[0].import_ == 251200 &&
          d.v[1].import_ == 261300 && d.v[2].import_ == -10000 &&
          d.v[2].ts == T("2025-02-01T00:00+01:00"));
    /* a nested "values" or "data" list is not taken for prices; the top-level "prices" is */
    const char *meta = "{\"meta\":{\"values\":[1,2],\"data\":[\"x\"]},\"prices\":[{\"time\":"
                       "1738314000,\"price\":0.3}]}";
    CHECK(cost_parse_dynamic(meta, strlen(meta), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == 300000);
    const char *empty = "{\"data\":{\"viewer\":{\"homes\":[]}}}";
    CHECK(cost_parse_dynamic(empty, strlen(empty), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "no price list in the object") != NULL);
    const char *gql = "{\"errors\":[{\"message\":\"Context creation failed: invalid token\","
                      "\"extensions\":{\"code\":\"UNAUTHENTICATED\"}}],\"data\":null}";
    CHECK(cost_parse_dynamic(gql, strlen(gql), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strcmp(err, "no prices; the server says: Context creation failed: invalid token") == 0);
    char err400[COST_ERR_MAX];
    CHECK(cost_reply_message(gql, strlen(gql), err400, sizeof err400) == 1 &&
          strcmp(err400, "Context creation failed: invalid token") == 0);
    const char *nested = "{\"status\":400,\"error\":{\"code\":7,\"message\":\"Bad zone: "
                         "the bidding zone XX is not one of AT, BE, CH, CZ, DE-LU, DK1, DK2, FR, "
                         "HU, IT-NORTH, NL, NO2, PL, SE4 or SI, so no prices can be given\"}}";
    CHECK(cost_reply_message(nested, strlen(nested), err400, sizeof err400) == 1 &&
          strncmp(err400, "Bad zone: the bidding zone XX", 29) == 0 && strlen(err400) == 127);
    CHECK(cost_reply_message("[1]", 3, err400, sizeof err400) == 0 && err400[0] == '\0');
    CHECK(cost_reply_message("{\"a\":1}", 7, err400, sizeof err400) == 0);
    CHECK(cost_reply_message("<html>", 6, err400, sizeof err400) == 0);
    const char *msg = "{\"message\":\"API rate limit exceeded\"}";
    CHECK(cost_parse_dynamic(msg, strlen(msg), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "the server says: API rate limit exceeded") != NULL);

    /* Frank Energie: the price is the sum of its parts; each kind reads its own list. */
    const char *frank =
        "{\"data\":{\"marketPricesGas\":[{\"from\":\"2025-01-31T05:00:00.000Z\","
        "\"marketPrice\":0.31,\"marketPriceTax\":0.0651,\"sourcingMarkupPrice\":0.0763,"
        "\"energyTaxPrice\":0.697}],\"marketPricesElectricity\":[{\"from\":"
        "\"2025-01-31T09:00:00.000Z\",\"till\":\"2025-01-31T10:00:00.000Z\",\"marketPrice\":"
        "0.0912,\"marketPriceTax\":0.019152,\"sourcingMarkupPrice\":0.0182,\"energyTaxPrice\":"
        "0.1228661,\"perUnit\":\"KWH\"},{\"from\":\"2025-01-31T10:00:00.000Z\",\"marketPrice\":"
        "-0.5,\"marketPriceTax\":-0.105}]}}";
    CHECK(cost_parse_dynamic(frank, strlen(frank), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].ts == T("2025-01-31T10:00+01:00") && d.v[0].import_ == 251418 &&
          d.v[1].import_ == -605000);
    CHECK(cost_parse_dynamic(frank, strlen(frank), COST_KIND_GAS, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].ts == T("2025-01-31T06:00+01:00") && d.v[0].import_ == 1148400);
    const char *older = "{\"data\":{\"marketPricesElectricity\":[{\"from\":\"2025-01-31T09:00:"
                        "00Z\",\"marketPrice\":0.09,\"priceIncludingMarkup\":0.2713}]}}";
    CHECK(cost_parse_dynamic(older, strlen(older), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == 271300);
    const char *gasless = "{\"data\":{\"marketPricesElectricity\":[]}}";
    CHECK(cost_parse_dynamic(gasless, strlen(gasless), COST_KIND_GAS, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "Frank Energie's marketPricesGas") != NULL);
    const char *hole = "{\"data\":{\"marketPricesElectricity\":[{\"from\":\"2025-01-31T09:00:"
                       "00Z\",\n\"marketPrice\":null}]}}";
    CHECK(cost_parse_dynamic(hole, strlen(hole), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strcmp(err, "line 2: marketPrice: expected a number of EUR, got 'null'") == 0);
    const char *word = "[{\"from\":\"2025-01-31T09:00:00Z\",\"energyTaxPrice\":\"n/a\"}]";
    CHECK(cost_parse_dynamic(word, strlen(word), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "energyTaxPrice: expected a number of EUR, got 'n/a'") != NULL);

    /* Energy-Charts: unix seconds and EUR/MWh side by side; null = no price for that slot. */
    const char *ec = "{\"license_info\":\"CC BY 4.0 (creativecommons.org/licenses/by/4.0) from "
                     "Bundesnetzagentur | SMARD.de: a licence line that is longer than the 128 "
                     "bytes of a price field, which is skipped\",\n"
                     "\"unix_seconds\":[1738314000,1738314900,1738315800,1738316700],\n"
                     "\"price\":[85.12,null,-3.4565,1e2],\"unit\":\"EUR / MWh\","
                     "\"deprecated\":false}";
    CHECK(cost_parse_dynamic(ec, strlen(ec), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 3 && d.v[0].ts == 1738314000 && d.v[0].end == 1738314900 &&
          d.v[0].import_ == 85120 && d.v[1].ts == 1738315800 && d.v[1].import_ == -3457 &&
          d.v[2].import_ == 100000 && d.v[0].export_ == COST_UNSET);
    const char *uneven = "{\"unix_seconds\":[1738314000,1738314900],\"price\":[85.12]}";
    CHECK(cost_parse_dynamic(uneven, strlen(uneven), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "2 times in \"unix_seconds\" but 1 prices in \"price\"") != NULL);
    const char *half = "{\"unix_seconds\":[1738314000]}";
    CHECK(cost_parse_dynamic(half, strlen(half), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "\"unix_seconds\" without \"price\"") != NULL);
    const char *badt = "{\"unix_seconds\":[\"soon\"],\"price\":[1]}";
    CHECK(cost_parse_dynamic(badt, strlen(badt), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "unix_seconds: expected a list of numbers") != NULL);
    const char *badp = "{\"unix_seconds\":[1738314000],\"price\":[true]}";
    CHECK(cost_parse_dynamic(badp, strlen(badp), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "price: expected a number, got 'true'") != NULL);
    /* Without a unit, EUR/MWh numbers are refused as implausible, as before. */
    const char *nounit = "{\"unix_seconds\":[1738314000],\"price\":[85.12]}";
    CHECK(cost_parse_dynamic(nounit, strlen(nounit), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "EUR/MWh?") != NULL);

    /* A unit a file names: cents, euros, per MWh; "€" and blanks; case. */
    static const struct {
        const char *unit;
        cost_kind kind;
        int64_t want; /* of a price written 2.5; 0 = refused */
    } units[] = {
        {"EUR/kWh", COST_KIND_POWER, 2500000},
        {"ct/kWh", COST_KIND_POWER, 25000},
        {"\xe2\x82\xac / MWh", COST_KIND_POWER, 2500},
        {"MWh", COST_KIND_POWER, 2500},
        {"cent/kwh", COST_KIND_POWER, 25000},
        {"EUR/m3", COST_KIND_GAS, 2500000},
        {"ct/m\xc2\xb3", COST_KIND_GAS, 25000},
        {"EUR/MWh", COST_KIND_GAS, 0},
        {"NOK/kWh", COST_KIND_POWER, 0},
        {"EUR/GJ", COST_KIND_POWER, 0},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char f[256];
        snprintf(f, sizeof f, "{\"prices\":[{\"time\":1738314000,\"price\":2.5}],\"unit\":\"%s\"}",
                 units[i].unit);
        int rc = cost_parse_dynamic(f, strlen(f), units[i].kind, 0, &d, err, sizeof err);
        CHECK(units[i].want ? rc == 0 && d.n == 1 && d.v[0].import_ == units[i].want
                            : rc < 0 && strstr(err, "unit: prices in '") != NULL);
        if (units[i].want ? rc != 0 : rc == 0)
            fprintf(stderr, "unit %s: rc %d, %s\n", units[i].unit, rc, err);
    }
    /* A unit per price object; export values are converted too; two units are an error. */
    const char *per = "[{\"time\":1738314000,\"price\":85,\"export\":-2,\"unit\":\"EUR/MWh\"},"
                      "{\"time\":1738317600,\"price\":90,\"unit\":\"EUR/MWh\"}]";
    CHECK(cost_parse_dynamic(per, strlen(per), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].import_ == 85000 && d.v[0].export_ == -2000 &&
          d.v[1].import_ == 90000);
    const char *mixed = "[{\"time\":1738314000,\"price\":85,\"unit\":\"EUR/MWh\"},\n"
                        "{\"time\":1738317600,\"price\":0.09,\"unit\":\"EUR/kWh\"}]";
    CHECK(cost_parse_dynamic(mixed, strlen(mixed), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strcmp(err, "line 2: unit 'EUR/kWh' differs from 'EUR/MWh' on line 1") == 0);

    const char *xml = "\n<?xml version=\"1.0\"?><Publication_MarketDocument/>";
    CHECK(cost_parse_dynamic(xml, strlen(xml), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strcmp(err, "no prices found") == 0);
    /* Deep nesting is refused, not followed without end. */
    char deep[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{\"a\":");
    CHECK(cost_parse_dynamic(deep, strlen(deep), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "nested too deeply") != NULL);
    cost_dyns_free(&d);
}

/* ENTSO-E's day-ahead XML around one TimeSeries (curve A01 or A03) of one Period. */
static const char *entsoe_doc(char *buf, size_t cap, const char *curve, const char *start,
                              const char *end, const char *res, const char *points)
{
    snprintf(buf, cap,
             "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
             "<Publication_MarketDocument xmlns=\"urn:iec62325.351:tc57wg16:451-3:"
             "publicationdocument:7:3\">\n"
             "  <mRID>p1d-test</mRID>\n  <type>A44</type>\n"
             "  <period.timeInterval><start>%s</start><end>%s</end></period.timeInterval>\n"
             "  <TimeSeries>\n    <mRID>1</mRID>\n"
             "    <in_Domain.mRID codingScheme=\"A01\">10YNL----------L</in_Domain.mRID>\n"
             "    <currency_Unit.name>EUR</currency_Unit.name>\n"
             "    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>\n"
             "    <curveType>%s</curveType>\n"
             "    <Period>\n      <timeInterval>\n        <start>%s</start>\n"
             "        <end>%s</end>\n      </timeInterval>\n"
             "      <resolution>%s</resolution>\n%s    </Period>\n  </TimeSeries>\n"
             "</Publication_MarketDocument>\n",
             start, end, curve, start, end, res, points);
    return buf;
}

static void test_entsoe(void)
{
    cost_dyns d = {0};
    char err[COST_ERR_MAX] = "", doc[8192], pts[4096];
    /* A01, hourly, three hours: EUR/MWh to EUR/kWh, a negative price, each an hour. */
    const char *a01 =
        entsoe_doc(doc, sizeof doc, "A01", "2025-01-31T23:00Z", "2025-02-01T02:00Z", "PT60M",
                   "      <Point><position>1</position>"
                   "<price.amount>85.12</price.amount></Point>\n"
                   "      <Point>\n        <position>2</position>\n"
                   "        <price.amount>-0.5</price.amount>\n      </Point>\n"
                   "      <Point><position>3</position>"
                   "<price.amount>100</price.amount></Point>\n");
    CHECK(cost_parse_dynamic(a01, strlen(a01), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_EQ_INT(d.v[0].ts, T("2025-01-31T23:00Z"));
        CHECK_EQ_INT(d.v[0].import_, 85120);
        CHECK_EQ_INT(d.v[1].import_, -500);
        CHECK_EQ_INT(d.v[2].import_, 100000);
        CHECK_EQ_INT(d.v[2].end, T("2025-02-01T02:00Z"));
        CHECK(d.v[0].export_ == COST_UNSET);
    }
    /* A03, quarter hours: positions 2, 3 and 5 left out repeat the price before them, up to the
     * period's end (8 quarter hours). */
    const char *a03 =
        entsoe_doc(doc, sizeof doc, "A03", "2025-10-01T22:00Z", "2025-10-02T00:00Z", "PT15M",
                   "<Point><position>1</position><price.amount>70</price.amount>"
                   "</Point><Point><position>4</position><price.amount>72.5"
                   "</price.amount></Point><Point><position>6</position>"
                   "<price.amount>60</price.amount></Point>");
    CHECK(cost_parse_dynamic(a03, strlen(a03), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 8);
    if (d.n == 8) {
        const int64_t want[8] = {70000, 70000, 70000, 72500, 72500, 60000, 60000, 60000};
        for (int i = 0; i < 8; i++) {
            CHECK_EQ_INT(d.v[i].ts, T("2025-10-01T22:00Z") + i * 900);
            CHECK_EQ_INT(d.v[i].import_, want[i]);
            CHECK_EQ_INT(d.v[i].end - d.v[i].ts, 900);
        }
    }
    /* A01 with a point missing: a hole, not the price before. */
    const char *hole =
        entsoe_doc(doc, sizeof doc, "A01", "2025-01-31T23:00Z", "2025-02-01T02:00Z", "PT60M",
                   "<Point><position>1</position><price.amount>1</price.amount>"
                   "</Point><Point><position>3</position><price.amount>3"
                   "</price.amount></Point>");
    CHECK(cost_parse_dynamic(hole, strlen(hole), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.v[0].end == T("2025-02-01T00:00Z") && d.v[1].ts == T("2025-02-01T01:00Z"));
    /* Two series of one day, hourly and quarter-hourly (as around the move to quarter hours):
     * the quarter hours are kept where both say something; comments, CDATA and a prefix. */
    snprintf(pts, sizeof pts,
             "<?xml version=\"1.0\"?><!-- a comment <Point> -->\n"
             "<m:Publication_MarketDocument xmlns:m=\"x\">"
             "<m:TimeSeries><m:currency_Unit.name>EUR</m:currency_Unit.name>"
             "<m:price_Measure_Unit.name>MWH</m:price_Measure_Unit.name>"
             "<m:curveType>A01</m:curveType><m:Period><m:timeInterval>"
             "<m:start>2025-10-01T22:00Z</m:start><m:end>2025-10-02T00:00Z</m:end>"
             "</m:timeInterval><m:resolution>PT60M</m:resolution>"
             "<m:Point><m:position>1</m:position><m:price.amount>50</m:price.amount></m:Point>"
             "<m:Point><m:position>2</m:position><m:price.amount>55</m:price.amount></m:Point>"
             "</m:Period></m:TimeSeries>\n"
             "<m:TimeSeries><m:currency_Unit.name>EUR</m:currency_Unit.name>"
             "<m:price_Measure_Unit.name>MWH</m:price_Measure_Unit.name>"
             "<m:curveType>A01</m:curveType><m:Period><m:timeInterval>"
             "<m:start>2025-10-01T23:00Z</m:start><m:end>2025-10-01T23:30Z</m:end>"
             "</m:timeInterval><m:resolution>PT15M</m:resolution>"
             "<m:Point><m:position>1</m:position><m:price.amount><![CDATA[40]]></m:price.amount>"
             "</m:Point><m:Point><m:position>2</m:position><m:price.amount>41</m:price.amount>"
             "</m:Point></m:Period></m:TimeSeries></m:Publication_MarketDocument>\n");
    CHECK(cost_parse_dynamic(pts, strlen(pts), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 3);
    if (d.n == 3) {
        CHECK(d.v[0].ts == T("2025-10-01T22:00Z") && d.v[0].import_ == 50000 &&
              d.v[0].end == T("2025-10-01T23:00Z"));
        CHECK(d.v[1].ts == T("2025-10-01T23:00Z") && d.v[1].import_ == 40000 &&
              d.v[1].end - d.v[1].ts == 900);
        CHECK(d.v[2].import_ == 41000 && d.v[2].end == T("2025-10-01T23:30Z"));
    }
    /* A second series for the same hours, of classification sequence 2: left out. */
    const char *seq2 =
        "<Publication_MarketDocument><TimeSeries><currency_Unit.name>EUR</currency_Unit.name>"
        "<price_Measure_Unit.name>MWH</price_Measure_Unit.name>"
        "<classificationSequence_AttributeInstanceComponent.position>1"
        "</classificationSequence_AttributeInstanceComponent.position><Period><timeInterval>"
        "<start>2025-01-31T23:00Z</start><end>2025-02-01T00:00Z</end></timeInterval>"
        "<resolution>PT60M</resolution><Point><position>1</position><price.amount>10"
        "</price.amount></Point></Period></TimeSeries><TimeSeries><currency_Unit.name>EUR"
        "</currency_Unit.name><price_Measure_Unit.name>MWH</price_Measure_Unit.name>"
        "<classificationSequence_AttributeInstanceComponent.position>2"
        "</classificationSequence_AttributeInstanceComponent.position><Period><timeInterval>"
        "<start>2025-01-31T23:00Z</start><end>2025-02-01T00:00Z</end></timeInterval>"
        "<resolution>PT60M</resolution><Point><position>1</position><price.amount>99"
        "</price.amount></Point></Period></TimeSeries></Publication_MarketDocument>";
    CHECK(cost_parse_dynamic(seq2, strlen(seq2), COST_KIND_POWER, 0, &d, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.v[0].import_ == 10000);
    /* ENTSO-E's answer without data: its reason is the message. */
    const char *ack = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Acknowledgement_MarketDocument "
                      "xmlns=\"urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0\">\n"
                      "<mRID>1</mRID><Reason><code>999</code><text>No matching data found for "
                      "Data item Day-ahead Prices [12.1.D] &amp; more</text></Reason>"
                      "</Acknowledgement_MarketDocument>";
    CHECK(cost_parse_dynamic(ack, strlen(ack), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK_EQ_STR(err, "ENTSO-E answered without prices: No matching data found for Data item "
                      "Day-ahead Prices [12.1.D] & more");
    /* What is wrong is named, with its line. */
    static const struct {
        const char *points, *res, *curve, *want;
    } bad[] = {
        {"<Point><position>1</position><price.amount>8,5</price.amount></Point>", "PT60M", "A01",
         "line 18: Point: price.amount: expected a decimal number, got '8,5' (write the decimals "
         "after a '.', not a ',')"},
        {"<Point><position>0</position><price.amount>1</price.amount></Point>", "PT60M", "A01",
         "line 18: Point: position: expected 1 to 3000, got '0'"},
        {"<Point><position>2</position><price.amount>1</price.amount></Point>"
         "<Point><position>1</position><price.amount>1</price.amount></Point>",
         "PT60M", "A01", "line 18: Point: position 1 after position 2"},
        {"<Point><position>2</position><price.amount>1</price.amount></Point>", "PT60M", "A03",
         "line 18: Point: curve A03 starts at position 2, not 1"},
        {"", "P1D", "A01", "line 18: Period: resolution missing or not PT15M, PT30M or PT60M"},
        {"<Point><position>4</position><price.amount>1</price.amount></Point>", "PT60M", "A01",
         "line 18: Point: position 4 beyond the period's 3 steps"},
        {"", "PT9223372036854775807M", "A01", /* found by fuzz_prices: no overflow */
         "line 18: Period: resolution missing or not PT15M, PT30M or PT60M"},
        {"<Point><position>1</position><price.amount>1</price.amount></Point>", "PT45M", "A01",
         "line 18: Period: resolution missing or not PT15M, PT30M or PT60M"},
        {"<Point><position>1</position><price.amount>1</price.amount></Point></Point>", "PT60M",
         "A01", "line 18: </Point> does not close <Period>"},
        {"<Point><position>1</position><price.amount>1.0000000000000000000000000000000000000000"
         "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "00000000000000000000000000000000000000000000000000000001</price.amount></Point>",
         "PT60M", "A01", "line 18: Point: price.amount: longer than 127 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *b = entsoe_doc(doc, sizeof doc, bad[i].curve, "2025-01-31T23:00Z",
                                   "2025-02-01T02:00Z", bad[i].res, bad[i].points);
        CHECK(cost_parse_dynamic(b, strlen(b), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
        CHECK_EQ_STR(err, bad[i].want);
        CHECK(d.n == 0);
    }
    /* cut short anywhere: refused, never a crash (ASan watches the reads) */
    const char *full =
        entsoe_doc(doc, sizeof doc, "A01", "2025-01-31T23:00Z", "2025-02-01T02:00Z", "PT60M",
                   "<Point><position>1</position><price.amount>1"
                   "</price.amount></Point>");
    size_t flen = strlen(full), refused = 0;
    for (size_t cut = 1; cut < flen - 1; cut++) {
        char *part = malloc(cut);
        memcpy(part, full, cut);
        refused += cost_parse_dynamic(part, cut, COST_KIND_POWER, 0, &d, err, sizeof err) < 0;
        free(part);
    }
    CHECK_EQ_INT(refused, flen - 2);
    /* a small reply that would make too many prices (A03: one point fills a month) */
    {
        size_t cap = 200 * 400 + 512, n = 0;
        char *big = malloc(cap);
        n += (size_t)snprintf(big + n, cap - n,
                              "<Publication_MarketDocument><TimeSeries><currency_Unit.name>EUR"
                              "</currency_Unit.name><price_Measure_Unit.name>MWH"
                              "</price_Measure_Unit.name><curveType>A03</curveType>");
        for (int m = 0; m < 70; m++) /* 70 periods of 31 days of quarter hours: 208,320 */
            n += (size_t)snprintf(big + n, cap - n,
                                  "<Period><timeInterval><start>%04d-01-01T00:00Z</start>"
                                  "<end>%04d-02-01T00:00Z</end></timeInterval><resolution>"
                                  "PT15M</resolution><Point><position>1</position>"
                                  "<price.amount>1</price.amount></Point></Period>",
                                  2000 + m, 2000 + m);
        snprintf(big + n, cap - n, "</TimeSeries></Publication_MarketDocument>");
        CHECK(cost_parse_dynamic(big, strlen(big), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
        CHECK(strstr(err, "more than 200000 prices in one reply") != NULL);
        free(big);
    }
    /* other currencies, gas, other documents, DTDs */
    const char *usd = "<Publication_MarketDocument><TimeSeries><currency_Unit.name>USD"
                      "</currency_Unit.name><price_Measure_Unit.name>MWH"
                      "</price_Measure_Unit.name><Period><timeInterval><start>2025-01-31T23:00Z"
                      "</start><end>2025-02-01T00:00Z</end></timeInterval><resolution>PT60M"
                      "</resolution></Period></TimeSeries></Publication_MarketDocument>";
    CHECK(cost_parse_dynamic(usd, strlen(usd), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK_EQ_STR(err, "line 1: TimeSeries: prices in USD per MWH: expected EUR per MWH");
    CHECK(cost_parse_dynamic(a01, strlen(a01), COST_KIND_GAS, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "expected JSON or CSV for gas") != NULL);
    const char *html = "<!DOCTYPE html><html><body>login</body></html>";
    CHECK(cost_parse_dynamic(html, strlen(html), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "not <html>") != NULL);
    const char *dtd = "<!DOCTYPE x [<!ENTITY a \"b\">]><Publication_MarketDocument/>";
    CHECK(cost_parse_dynamic(dtd, strlen(dtd), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "DOCTYPE with declarations") != NULL);
    char deep[1024] = "<Publication_MarketDocument>";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    CHECK(cost_parse_dynamic(deep, strlen(deep), COST_KIND_POWER, 0, &d, err, sizeof err) < 0);
    CHECK(strstr(err, "nested deeper than 16") != NULL);
    cost_dyns_free(&d);
}

int main(void)
{
    RUN(test_price_parse);
    RUN(test_dst_days);
    RUN(test_csv);
    RUN(test_json);
    RUN(test_json_sources);
    RUN(test_entsoe);
    RUN(test_gas_day_start);
    RUN(test_fixed_keys);
    RUN(test_costs);
    RUN(test_unpriced);
    RUN(test_partial_cover);
    RUN(test_db);
    RUN(test_capacity);
    RUN(test_dyn_adjust);
    RUN(test_dyn_adjust_costs);
    RUN(test_dyn_adjust_db);
    RUN(test_price_at);
    return check_summary("test_cost");
}
