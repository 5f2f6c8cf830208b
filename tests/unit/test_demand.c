/* test_demand.c: the quarter-hour demand forecast of the Belgian capacity tariff (demand.c):
 * exact values, the register at a quarter's start interpolated between two readings, and the
 * cases where it cannot be known. */
#include "check.h"
#include "demand.h"

#define Q 1764543600 /* a quarter hour's start: 2025-12-01T00:00:00+01:00 */

static void test_forecast(void)
{
    demand_track d = {0};
    int64_t end = -1;
    /* p1d starts 5 minutes into a quarter: unknown until the next one */
    CHECK(demand_feed(&d, Q + 300, 1000000000, 2000000, &end) == P1_ABSENT && end == 0);
    CHECK(demand_feed(&d, Q + 899, 1000500000, 2000000, &end) == P1_ABSENT);
    /* 1 s into the next quarter: the register at its start lies between the two readings */
    p1_micro f = demand_feed(&d, Q + 901, 1000502000, 3600000, &end);
    /* e_q = 1000.500 + 0.002 x 1/2 = 1000.501 kWh; since then 0.001 kWh; 3.6 kW for 899 s */
    CHECK_EQ_INT(f, 4 * 1000 + 3600000LL * 899 / 900);
    CHECK_EQ_INT(end, Q + 1800);
    /* 10 minutes in, 0.5 kWh taken: 2 kW so far; 1.2 kW for the 5 minutes left adds 0.4 kW */
    f = demand_feed(&d, Q + 1500, 1001001000, 1200000, &end);
    CHECK_EQ_INT(f, 2000000 + 400000);
    /* the last second: what was taken, times 4 */
    f = demand_feed(&d, Q + 1799, 1001101000, 0, &end);
    CHECK_EQ_INT(f, 2400000);
    /* a quarter that starts exactly on a reading */
    f = demand_feed(&d, Q + 1800, 1001101000, 900000, &end);
    CHECK_EQ_INT(f, 900000);
    CHECK_EQ_INT(end, Q + 2700);
}

static void test_unknown(void)
{
    demand_track d = {0};
    int64_t end;
    /* a reading more than DEMAND_GAP_S before the quarter began: the start is not known */
    CHECK(demand_feed(&d, Q - 61, 5000000, 1000000, &end) == P1_ABSENT);
    CHECK(demand_feed(&d, Q + 10, 5003000, 1000000, &end) == P1_ABSENT);
    CHECK(demand_feed(&d, Q + 20, 5006000, 1000000, &end) == P1_ABSENT);
    /* one 60 s before: known */
    demand_track k = {0};
    CHECK(demand_feed(&k, Q - 60, 5000000, 1000000, &end) == P1_ABSENT);
    CHECK(demand_feed(&k, Q + 60, 5040000, 1000000, &end) != P1_ABSENT);
    /* an absent register or power resets */
    CHECK(demand_feed(&k, Q + 61, P1_ABSENT, 1000000, &end) == P1_ABSENT && k.q == 0);
    CHECK(demand_feed(&k, Q + 62, 5041000, 1000000, &end) == P1_ABSENT);
    /* a clock that goes back, or a register that does: unknown, followed afresh from there */
    demand_track b = {0};
    demand_feed(&b, Q - 1, 7000000, 500000, &end);
    CHECK(demand_feed(&b, Q + 1, 7000500, 500000, &end) != P1_ABSENT);
    CHECK(demand_feed(&b, Q - 5, 7000600, 500000, &end) == P1_ABSENT);
    CHECK_EQ_INT(demand_feed(&b, Q + 30, 7000600, 500000, &end), 500000LL * 870 / 900);
    demand_track r = {0};
    demand_feed(&r, Q - 1, 7000000, 500000, &end);
    CHECK(demand_feed(&r, Q + 1, 6999000, 500000, &end) == P1_ABSENT);
    /* times before 1970 still find their quarter (the modulo of a negative number) */
    demand_track n = {0};
    CHECK(demand_feed(&n, -900, 1000, 0, &end) != P1_ABSENT && end == 0);
}

int main(void)
{
    RUN(test_forecast);
    RUN(test_unknown);
    return check_summary("test_demand");
}
