/* test_price_fetch.c: unit tests of src/price_fetch.c's pure parts: the URL and body placeholders
 * and the schedule (when to fetch again), over the days the clocks change. */
#include "check.h"
#include "civil.h"
#include "price_fetch.h"

#include <p1/p1.h>

static int64_t T(const char *s)
{
    int64_t t = -1;
    if (civil_parse(s, 0, &t) < 0)
        fprintf(stderr, "cannot parse %s\n", s);
    return t;
}

static const char *expand(const char *tmpl, const char *from, const char *to, char *out, size_t cap)
{
    char why[160];
    if (price_fetch_expand(tmpl, T(from), T(to), out, cap, why, sizeof why) < 0)
        snprintf(out, cap, "ERROR %s", why);
    return out;
}

static void test_expand(void)
{
    char out[512];
    CHECK_EQ_STR(expand("https://x/p?f={from}&t={to}", "2026-11-27", "2026-11-29", out, sizeof out),
                 "https://x/p?f=2026-11-26T23:00:00Z&t=2026-11-28T23:00:00Z");
    /* the spring day: 23 hours; its local midnight is still +01:00 */
    CHECK_EQ_STR(expand("{from_local}/{to_local}", "2026-03-29", "2026-03-31", out, sizeof out),
                 "2026-03-29T00:00:00%2B01:00/2026-03-31T00:00:00%2B02:00");
    CHECK_EQ_STR(expand("{from_date}..{to_date}", "2026-10-25", "2026-10-27", out, sizeof out),
                 "2026-10-25..2026-10-26");
    /* until_date: the end's own date (an exclusive end date, as Frank Energie's endDate) */
    CHECK_EQ_STR(expand("{from_date}/{until_date}", "2026-10-25", "2026-10-27", out, sizeof out),
                 "2026-10-25/2026-10-27");
    CHECK_EQ_STR(expand("{until_date}", "2026-12-31", "2027-01-02", out, sizeof out), "2027-01-02");
    CHECK(strncmp(expand("{until}", "2026-01-01", "2026-01-03", out, sizeof out),
                  "ERROR unknown placeholder {until}", 32) == 0);
    CHECK_EQ_STR(expand("{from_unix}-{to_unix}", "2026-01-01", "2026-01-03", out, sizeof out),
                 "1767222000-1767394800");
    /* ENTSO-E's periodStart and periodEnd: UTC, minutes; summer days start at 22:00 UTC */
    CHECK_EQ_STR(
        expand("s={from_compact}&e={to_compact}", "2026-01-01", "2026-01-03", out, sizeof out),
        "s=202512312300&e=202601022300");
    CHECK_EQ_STR(expand("{from_compact}", "2026-07-01", "2026-07-03", out, sizeof out),
                 "202606302200");
    CHECK_EQ_STR(expand("no placeholders", "2026-01-01", "2026-01-03", out, sizeof out),
                 "no placeholders");
    CHECK(strncmp(expand("x{day}", "2026-01-01", "2026-01-03", out, sizeof out),
                  "ERROR unknown placeholder {day}", 30) == 0);
    CHECK(strncmp(expand("x{from", "2026-01-01", "2026-01-03", out, sizeof out),
                  "ERROR '{' without", 17) == 0);
    CHECK(strncmp(expand("x{}", "2026-01-01", "2026-01-03", out, sizeof out), "ERROR '{' without",
                  17) == 0);
    CHECK(strncmp(expand("x{fromage}", "2026-01-01", "2026-01-03", out, sizeof out),
                  "ERROR unknown placeholder {fromage}", 35) == 0);
    char small[24];
    CHECK(strncmp(expand("https://x/{from}", "2026-01-01", "2026-01-03", small, sizeof small),
                  "ERROR the URL is", 16) == 0);
}

/* A request body (Tibber's GraphQL query): the placeholders are filled, '+' kept, every other
 * brace left as it is. */
static void test_expand_body(void)
{
    char out[512], why[160];
    const char *q = "{\"query\":\"{viewer{homes{currentSubscription{priceInfo{range(from: "
                    "\\\"{from_local}\\\"){nodes{total startsAt}}}}}}}\",\"x\":\"{day}{to_date}\"}";
    CHECK(price_fetch_expand_body(q, T("2026-11-27"), T("2026-11-29"), out, sizeof out, why,
                                  sizeof why) == 0);
    CHECK_EQ_STR(out, "{\"query\":\"{viewer{homes{currentSubscription{priceInfo{range(from: "
                      "\\\"2026-11-27T00:00:00+01:00\\\"){nodes{total startsAt}}}}}}}\","
                      "\"x\":\"{day}2026-11-28\"}");
    CHECK(price_fetch_expand_body("a={from_unix}&b={", T("2026-01-01"), T("2026-01-03"), out,
                                  sizeof out, why, sizeof why) == 0);
    CHECK_EQ_STR(out, "a=1767222000&b={");
    char small[8];
    CHECK(price_fetch_expand_body("{{{{{{{{{{", 0, 86400, small, sizeof small, why, sizeof why) <
          0);
    CHECK(strncmp(why, "the body is longer than 7 bytes", 31) == 0);
}

static void test_next(void)
{
    const int after = 13 * 3600;
    /* tomorrow's prices in: tomorrow at 13:00 */
    CHECK_EQ_INT(price_fetch_next(T("2026-11-27T14:10"), T("2026-11-29"), after),
                 T("2026-11-28T13:00"));
    /* not in, before 13:00: today at 13:00; after it: in 30 minutes */
    CHECK_EQ_INT(price_fetch_next(T("2026-11-27T09:00"), T("2026-11-28"), after),
                 T("2026-11-27T13:00"));
    CHECK_EQ_INT(price_fetch_next(T("2026-11-27T13:05"), T("2026-11-28"), after),
                 T("2026-11-27T13:35"));
    CHECK_EQ_INT(price_fetch_next(T("2026-11-27T23:50"), T("2026-11-28T23:00"), after),
                 T("2026-11-28T00:20"));
    /* over the clock changes: 13:00 local, not 24 hours later */
    CHECK_EQ_INT(price_fetch_next(T("2026-03-28T14:00"), T("2026-03-30"), after),
                 T("2026-03-29T13:00+02:00"));
    CHECK_EQ_INT(price_fetch_next(T("2026-10-24T14:00"), T("2026-10-26"), after),
                 T("2026-10-25T13:00+01:00"));
    /* fetch_after 02:30 on the spring day (a time that does not exist): still that morning */
    int64_t n = price_fetch_next(T("2026-03-28T14:00"), T("2026-03-30"), 2 * 3600 + 1800);
    CHECK(n >= T("2026-03-29T01:00") && n <= T("2026-03-29T04:00"));
}

int main(void)
{
    RUN(test_expand);
    RUN(test_expand_body);
    RUN(test_next);
    return check_summary("test_price_fetch");
}
