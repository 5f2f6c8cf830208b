/* fuzz_prices.c: libFuzzer target: the parsers of what PUT /api/prices and `p1 prices import`
 * accept and p1d's own fetch reads (a dynamic price file: CSV, JSON, Tibber's, Frank
 * Energie's, Energy-Charts' and ENTSO-E's (XML) replies; a price server's error message) and of the
 * texts behind /api/history's from/to and the [prices] section (ISO-8601 times, decimal prices, a
 * gas day's start). Any bytes give either a result that keeps the documented promises or an error
 * that says what is wrong, and nothing outside the input is read.
 *
 * The first byte picks the kind (power or gas) and the gas day's start; the rest is the file. */
#include "civil.h"
#include "cost.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_prices: %s (input of %zu bytes)\n", what, size);
    fprintf(stderr, "%.*s\n", (int)(size < 2000 ? size : 2000), (const char *)data);
    abort();
}

/* The dynamic price file: sorted, no overlaps, each price lasts, errors are named. The body is
 * handed over as the HTTP server does: NUL-terminated, its length beside it. */
static void dynamic(const uint8_t *data, size_t size)
{
    cost_kind kind = data[0] & 1 ? COST_KIND_GAS : COST_KIND_POWER;
    int day_start = (data[0] >> 1) % 24 * 3600;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text)
        return;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    cost_dyns d = {0};
    char err[COST_ERR_MAX] = "";
    int rc = cost_parse_dynamic(text, n, kind, day_start, &d, err, sizeof err);
    if (rc == 0) {
        if (d.n == 0)
            fail("a price file accepted without a price", data, size);
        if (d.n > COST_ENTRIES_MAX)
            fail("more prices than COST_ENTRIES_MAX", data, size);
        for (size_t i = 0; i < d.n; i++) {
            const cost_dyn *e = &d.v[i];
            if (e->end <= e->ts)
                fail("a price that ends before it starts", data, size);
            if (i && e->ts < d.v[i - 1].end)
                fail("prices out of order or overlapping", data, size);
            if (e->import_ == COST_UNSET)
                fail("a price without its import price", data, size);
        }
    } else {
        if (rc != -1)
            fail("an error other than -1", data, size);
        if (!err[0] || !memchr(err, '\0', sizeof err))
            fail("an error without a message", data, size);
    }
    cost_dyns_free(&d);
    char said[64] = "x"; /* a price server's error reply, as the fetcher reads it */
    int found = cost_reply_message(text, n, said, sizeof said);
    if (found ? !said[0] || !memchr(said, '\0', sizeof said) : said[0] != '\0')
        fail("cost_reply_message: a found message empty or unterminated, or one not found "
             "left behind",
             data, size);
    free(text);
}

/* The one-line texts: a price, a gas day's start, a time with every flag combination. */
static void texts(const uint8_t *data, size_t size)
{
    size_t n = size - 1;
    if (n > 256)
        n = 256;
    char s[257];
    memcpy(s, data + 1, n);
    s[n] = '\0';

    int64_t price = 12345;
    if (cost_parse_price(s, &price) != 0 && price != 12345)
        fail("cost_parse_price changed its output on failure", data, size);
    int start = 7;
    if (cost_parse_day_start(s, &start) == 0) {
        if (start < 0 || start >= 86400 || start % 60)
            fail("a gas day start outside 00:00-23:59", data, size);
    } else if (start != 7) {
        fail("cost_parse_day_start changed its output on failure", data, size);
    }
    for (unsigned flags = 0; flags < 16; flags++) {
        int64_t t = -77;
        int rc = civil_parse(s, flags, &t);
        if (rc != 0 && t != -77)
            fail("civil_parse changed its output on failure", data, size);
        if (rc != 0 && rc != -1 && rc != CIVIL_PARSE_GAP)
            fail("civil_parse returned an unknown code", data, size);
        if (rc == CIVIL_PARSE_GAP && !(flags & CIVIL_PARSE_EXISTING))
            fail("civil_parse reported a gap it was not asked about", data, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    dynamic(data, size);
    texts(data, size);
    return 0;
}
