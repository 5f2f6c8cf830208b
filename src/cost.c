/* cost.c: prices (fixed periods, dynamic CSV/JSON imports), their SQLite tables, and the cost
 * of a step in integer micro-euros (calendar arithmetic lives in civil.c). */
#include "cost.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "civil.h"
#include "p1/p1.h"

#define COST_PRICE_ABS_MAX 1000000000000LL /* |price| <= 1,000,000 EUR per unit: anything more is a typo */
/* A dynamic price above these is a file in EUR/MWh (ENTSO-E, EPEX, Nord Pool): day-ahead power
 * is capped at 4 EUR/kWh before taxes, and gas has never come near 20 EUR/m3. */
#define COST_POWER_PLAUSIBLE 10000000LL /* 10 EUR/kWh */
#define COST_GAS_PLAUSIBLE 20000000LL   /* 20 EUR/m3 */
#define COST_DIGITS_MAX 40                 /* significant digits kept while parsing a decimal */
#define COST_FIELD_MAX 128                 /* bytes of one CSV field or JSON scalar */
#define COST_JSON_DEPTH 16                 /* nesting skipped inside a JSON price file */
#define COST_POWER_SPAN 3600               /* an electricity price lasts at most an hour */
#define COST_GAS_SPAN (25 * 3600)          /* a gas price at most a (25-hour) day */

static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---------------------------------------------------------------------------------------------
 * Prices: parsing
 * ------------------------------------------------------------------------------------------- */

void cost_dyns_free(cost_dyns *d)
{
    if (!d)
        return;
    free(d->v);
    memset(d, 0, sizeof *d);
}

void cost_fixed_init(cost_fixed *f)
{
    f->from = 0;
    f->to = COST_FOREVER;
    for (int i = 0; i < 3; i++)
        f->import_[i] = f->export_[i] = COST_UNSET;
    f->gas = f->daily = f->monthly = f->capacity = COST_UNSET;
    f->dyn_import_factor = f->dyn_import_add = f->dyn_export_factor = f->dyn_export_add =
        COST_UNSET;
    f->rule = COST_RULE_NONE;
}

int cost_fixed_check(const cost_fixed *f, char *err, size_t cap)
{
    if (f->to != COST_FOREVER && f->from >= f->to) {
        say(err, cap, "valid_to is not after valid_from: the period is empty");
        return -1;
    }
    return 0;
}

const char *cost_fixed_key(int i)
{
    static const char *const keys[COST_FIXED_KEYS] = {
        "import", "import_t1", "import_t2", "export", "export_t1",  "export_t2",
        "gas",    "daily",     "monthly",   "valid_from", "valid_to", "tariff_rule",
        "capacity_per_kw_year", "dynamic_import_factor", "dynamic_import_add",
        "dynamic_export_factor", "dynamic_export_add"};
    return i >= 0 && i < COST_FIXED_KEYS ? keys[i] : NULL;
}

int cost_fixed_any(const cost_fixed *f)
{
    for (int i = 0; i < 3; i++)
        if (f->import_[i] != COST_UNSET || f->export_[i] != COST_UNSET)
            return 1;
    return f->gas != COST_UNSET || f->daily != COST_UNSET || f->monthly != COST_UNSET ||
           f->capacity != COST_UNSET || f->dyn_import_factor != COST_UNSET ||
           f->dyn_import_add != COST_UNSET || f->dyn_export_factor != COST_UNSET ||
           f->dyn_export_add != COST_UNSET;
}

int64_t cost_dyn_adjust(int64_t price, int64_t factor, int64_t add)
{
    if (factor == COST_UNSET)
        factor = COST_FACTOR_ONE;
    if (add == COST_UNSET)
        add = 0;
    /* factor = q + r / 10^6, so price x factor = price x q + price x r / 10^6 without a product
     * that overflows (no 128-bit integers on 32-bit targets). The exact value is t + fr / 10^6
     * with 0 <= fr < 10^6; rounding it once, half away from zero, depends on the sign of t. */
    int64_t q = factor / COST_FACTOR_ONE, r = factor % COST_FACTOR_ONE;
    int64_t frac = price * r, fq = floor_div(frac, COST_FACTOR_ONE);
    int64_t t = price * q + add + fq, fr = frac - fq * COST_FACTOR_ONE;
    return t + (t >= 0 ? fr >= COST_FACTOR_ONE / 2 : fr > COST_FACTOR_ONE / 2);
}

#define DEC_COMMA 1u    /* ',' may be the decimal point (CSV separated by ';') */
#define DEC_EXPONENT 2u /* an exponent (JSON numbers, which encoders write as 1e-05) */

/* A decimal ("0.123", "-12", ".5"; with `allow`, "0,123" and "1.5e-3") to micro-units, rounding
 * half away from zero past the sixth fraction digit: only the first dropped digit decides, so
 * digits past COST_DIGITS_MAX are read and ignored. Returns 0, or -1 with *why saying what is
 * wrong (NULL: not a number at all). */
static int parse_decimal(const char *s, unsigned allow, int64_t *out, const char **why)
{
    *why = NULL;
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    char dig[COST_DIGITS_MAX];
    int nd = 0, point = -1, any = 0;
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            any = 1;
            if (nd == 0 && *s == '0' && point < 0)
                continue; /* leading zeros of the integer part */
            if (nd < COST_DIGITS_MAX)
                dig[nd++] = *s;
            else if (point < 0)
                return -1;
        } else if ((*s == '.' || (*s == ',' && (allow & DEC_COMMA))) && point < 0) {
            point = nd;
        } else if (*s == ',' && any) {
            *why = "write the decimals after a '.', not a ','";
            return -1;
        } else {
            break;
        }
    }
    if (!any)
        return -1;
    if (point < 0)
        point = nd;
    if ((*s == 'e' || *s == 'E') && !(allow & DEC_EXPONENT)) {
        *why = "write the number out, without an exponent";
        return -1;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        int eneg = 0, e = 0, edig = 0;
        if (*s == '-' || *s == '+')
            eneg = *s++ == '-';
        while (*s >= '0' && *s <= '9') {
            if (e < 1000)
                e = e * 10 + (*s - '0');
            s++;
            edig++;
        }
        if (!edig)
            return -1;
        point += eneg ? -e : e;
    }
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    if (*s)
        return -1;
    /* value = 0.dig * 10^point; micro-units take the digits up to point + 6. */
    int upto = point + 6;
    *why = "out of range: at most 1000000 EUR";
    if (upto > 18)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < upto; i++)
        v = v * 10 + (i >= 0 && i < nd ? dig[i] - '0' : 0);
    if (upto >= 0 && upto < nd && dig[upto] >= '5')
        v++;
    if (upto < 0)
        v = 0;
    if (v > COST_PRICE_ABS_MAX)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

int cost_parse_price(const char *s, int64_t *out)
{
    const char *why;
    return parse_decimal(s, 0, out, &why);
}

int cost_fixed_set(cost_fixed *f, const char *key, const char *value, char *err, size_t cap)
{
    enum { PRICE, CAPACITY, FACTOR };
    static const struct {
        const char *key;
        size_t off;
        int what;
    } prices[] = {
        {"import", offsetof(cost_fixed, import_[0]), PRICE},
        {"import_t1", offsetof(cost_fixed, import_[1]), PRICE},
        {"import_t2", offsetof(cost_fixed, import_[2]), PRICE},
        {"export", offsetof(cost_fixed, export_[0]), PRICE},
        {"export_t1", offsetof(cost_fixed, export_[1]), PRICE},
        {"export_t2", offsetof(cost_fixed, export_[2]), PRICE},
        {"gas", offsetof(cost_fixed, gas), PRICE},
        {"daily", offsetof(cost_fixed, daily), PRICE},
        {"monthly", offsetof(cost_fixed, monthly), PRICE},
        {"capacity_per_kw_year", offsetof(cost_fixed, capacity), CAPACITY},
        {"dynamic_import_factor", offsetof(cost_fixed, dyn_import_factor), FACTOR},
        {"dynamic_import_add", offsetof(cost_fixed, dyn_import_add), PRICE},
        {"dynamic_export_factor", offsetof(cost_fixed, dyn_export_factor), FACTOR},
        {"dynamic_export_add", offsetof(cost_fixed, dyn_export_add), PRICE},
    };
    if (!value || !*value)
        return 0;
    for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++) {
        if (strcmp(key, prices[i].key) != 0)
            continue;
        int64_t v;
        const char *why;
        if (parse_decimal(value, 0, &v, &why) < 0) {
            const char *want = prices[i].what == FACTOR ? "a factor such as 1.21"
                                                        : "a price in EUR such as 0.2345";
            say(err, cap, "%s: expected %s, got '%s'%s%s%s", key, want, value, why ? " (" : "",
                why ? why : "", why ? ")" : "");
            return -1;
        }
        /* a charge per kW of peak demand: a credit or a price per W would be a typing error */
        if (prices[i].what == CAPACITY && (v < 0 || v > COST_CAPACITY_PRICE_MAX)) {
            say(err, cap,
                "%s: expected EUR per kW per year between 0 and %d (such as 48.5), got '%s'", key,
                COST_CAPACITY_PRICE_MAX / 1000000, value);
            return -1;
        }
        /* a multiplier of a price (VAT: 1.21): a negative one would turn a cost into a credit */
        if (prices[i].what == FACTOR && (v < 0 || v > COST_FACTOR_MAX)) {
            say(err, cap, "%s: expected a factor between 0 and %d (such as 1.21), got '%s'", key,
                COST_FACTOR_MAX / COST_FACTOR_ONE, value);
            return -1;
        }
        memcpy((char *)f + prices[i].off, &v, sizeof v);
        return 0;
    }
    if (strcmp(key, "valid_from") == 0 || strcmp(key, "valid_to") == 0) {
        int64_t t;
        int rc = civil_parse(value, CIVIL_PARSE_UNIX | CIVIL_PARSE_EXISTING, &t);
        if (rc == CIVIL_PARSE_GAP) {
            say(err, cap, "%s: '%s' %s", key, value, civil_gap_why());
            return -1;
        }
        if (rc < 0) {
            say(err, cap, "%s: expected an ISO-8601 time such as 2025-01-01, got '%s'", key,
                value);
            return -1;
        }
        if (key[6] == 'f')
            f->from = t;
        else
            f->to = t;
        return 0;
    }
    if (strcmp(key, "tariff_rule") == 0) {
        if (strcmp(value, "none") == 0)
            f->rule = COST_RULE_NONE;
        else if (strcmp(value, "nl") == 0)
            f->rule = COST_RULE_NL;
        else if (strcmp(value, "be") == 0)
            f->rule = COST_RULE_BE;
        else {
            say(err, cap, "tariff_rule: expected none, nl or be, got '%s'", value);
            return -1;
        }
        return 0;
    }
    say(err, cap, "unknown price key '%s'", key);
    return -1;
}

/* One parsed entry before ends are known, with the line it came from. */
typedef struct entry {
    int64_t ts, import_, export_;
    int64_t first; /* ts of the repeated autumn hour's first pass (= ts for any other time) */
    long line;
    int date_only; /* the time was a date alone (YYYY-MM-DD) */
    int64_t len;   /* seconds it lasts where the file says (a column's spacing); 0 = unknown */
} entry;

typedef struct entries {
    entry *v;
    size_t n, cap;
} entries;

static int entries_push(entries *e, const entry *x)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        entry *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return -1;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = *x;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Whether a time field is a date alone ("2025-10-25", blanks around allowed). */
static int is_date_only(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    for (s += 10; *s == ' ' || *s == '\t'; s++)
        ;
    return *s == '\0';
}

int cost_parse_day_start(const char *s, int *out)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *out = h * 3600 + m * 60;
    return 0;
}

/* Field text -> entry values; names the field and line on failure. `allow_p` and `allow_e` say
 * which other spellings of a decimal the file permits for the price and the export (DEC_*). */
static int entry_from(const char *time, const char *price, const char *exp, unsigned allow_p,
                      unsigned allow_e, long line, entry *x, char *err, size_t cap)
{
    const char *why = NULL;
    x->line = line;
    x->export_ = COST_UNSET;
    x->len = 0;
    int rc = civil_parse(time, CIVIL_PARSE_UNIX | CIVIL_PARSE_EXISTING, &x->ts);
    if (rc == CIVIL_PARSE_GAP) {
        /* Read as an hour earlier or later, its price would land on a neighbouring hour. */
        say(err, cap, "line %ld: time: '%s' %s", line, time, civil_gap_why());
        return -1;
    }
    if (rc < 0) {
        say(err, cap, "line %ld: time: expected an ISO-8601 time such as 2025-01-31T10:00+01:00, "
                      "got '%s'", line, time);
        return -1;
    }
    if (x->ts < 0 || x->ts >= CIVIL_TIME_END) {
        say(err, cap, "line %ld: time: out of range: times from 1970 to 2199 only, got '%s'", line,
            time);
        return -1;
    }
    x->first = x->ts;
    civil_parse(time, CIVIL_PARSE_UNIX | CIVIL_PARSE_FIRST, &x->first);
    x->date_only = is_date_only(time);
    if (!price || parse_decimal(price, allow_p, &x->import_, &why) < 0) {
        say(err, cap,
            "line %ld: price: expected a decimal number of EUR such as 0.2345, got '%s'%s%s%s",
            line, price ? price : "", why ? " (" : "", why ? why : "", why ? ")" : "");
        return -1;
    }
    if (exp && *exp && parse_decimal(exp, allow_e, &x->export_, &why) < 0) {
        say(err, cap, "line %ld: export: expected a decimal number of EUR, got '%s'%s%s%s", line,
            exp, why ? " (" : "", why ? why : "", why ? ")" : "");
        return -1;
    }
    return 0;
}

static int name_is(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(s, *names) == 0)
            return 1;
    return 0;
}

static const char *const time_names[] = {"time", "start", "from", "datetime", "timestamp", "date",
                                         "start_time", "readingdate", "valid_from", "startsat",
                                         NULL};
/* tariffusage / tariffreturn: easyEnergy's API ({"Timestamp":..,"TariffUsage":..,
 * "TariffReturn":..}); priceincludingmarkup: Frank Energie's older field. */
/* clang-format off */
static const char *const price_names[] = {
    "price", "value", "import", "price_eur", "eur_kwh", "amount", "tariff", "import_price", "total",
    "tariffusage", "priceincludingmarkup", NULL};
/* clang-format on */
/* Frank Energie gives a price in parts; what a kWh costs is their sum (the market price, its
 * VAT, the supplier's markup and the energy tax with its VAT). */
static const char *const part_names[] = {"marketprice", "marketpricetax", "sourcingmarkupprice",
                                         "energytaxprice", NULL};
static const char *const export_names[] = {"export", "export_price", "feed_in", "feedin",
                                           "tariffreturn", NULL};

/* Splits a CSV line in place; quotes around a field are removed. Returns the field count. */
static int csv_split(char *line, char sep, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            char *q = strchr(p + 1, '"');
            if (q) {
                *q = '\0';
                f[n++] = p + 1;
                p = q + 1;
                char *s2 = strchr(p, sep);
                if (!s2)
                    break;
                p = s2 + 1;
                continue;
            }
        }
        f[n++] = p;
        char *s2 = strchr(p, sep);
        if (!s2)
            break;
        *s2 = '\0';
        p = s2 + 1;
    }
    for (int i = 0; i < n; i++) {
        size_t l = strlen(f[i]);
        while (l && (f[i][l - 1] == ' ' || f[i][l - 1] == '\t' || f[i][l - 1] == '\r'))
            f[i][--l] = '\0';
    }
    return n;
}

static int parse_csv(const char *text, size_t len, entries *out, char *err, size_t cap)
{
    int tcol = 0, pcol = 1, ecol = 2, seen_data = 0, nhead = 0;
    size_t pos = 0;
    long line = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        size_t n = end - pos;
        if (n >= COST_LINE_MAX) {
            say(err, cap, "line %ld: longer than %d bytes", line, COST_LINE_MAX);
            return -1;
        }
        char buf[COST_LINE_MAX];
        memcpy(buf, text + pos, n);
        buf[n] = '\0';
        pos = end + 1;
        if (memchr(buf, '\0', n)) {
            say(err, cap, "line %ld: contains a NUL byte", line);
            return -1;
        }
        char *s = buf;
        if (line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
            (unsigned char)s[2] == 0xBF)
            s += 3; /* UTF-8 byte order mark (spreadsheet exports) */
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '\r' || *s == '#')
            continue;
        char sep = strchr(s, ';') ? ';' : strchr(s, '\t') ? '\t' : ',';
        char *f[8];
        int nf = csv_split(s, sep, f, 8);
        if (!seen_data) {
            int64_t t;
            seen_data = 1;
            if (civil_parse(f[0], CIVIL_PARSE_UNIX, &t) < 0 && nf >= 2) {
                /* A header: find the columns by name, else keep time,price,export. */
                nhead = nf;
                if (nf < 3)
                    ecol = -1;
                for (int i = 0; i < nf; i++) {
                    if (name_is(f[i], time_names))
                        tcol = i;
                    else if (name_is(f[i], price_names))
                        pcol = i;
                    else if (name_is(f[i], export_names))
                        ecol = i;
                }
                continue;
            }
        }
        if (nf <= tcol || nf <= pcol) {
            say(err, cap, "line %ld: expected time%cprice, got '%s'", line, sep, s);
            return -1;
        }
        entry x;
        int used = nf; /* empty trailing fields (a spreadsheet's "0.25,") do not count */
        while (used > nhead && f[used - 1][0] == '\0')
            used--;
        if (nhead && used > nhead) {
            say(err, cap, "line %ld: %d fields, but the header has %d (a decimal comma? write "
                          "0.2345, or separate the fields with ';')", line, used, nhead);
            return -1;
        }
        /* a decimal comma only where ';' separates: with ',' "0,2" would be two fields */
        unsigned allow = sep == ';' ? DEC_COMMA : 0;
        if (entry_from(f[tcol], f[pcol], ecol >= 0 && ecol < nf ? f[ecol] : NULL, allow, allow,
                       line, &x, err, cap) < 0)
            return -1;
        if (out->n >= COST_ENTRIES_MAX) {
            say(err, cap, "line %ld: more than %d prices in one file", line, COST_ENTRIES_MAX);
            return -1;
        }
        if (entries_push(out, &x) < 0) {
            say(err, cap, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* A minimal JSON reader for price files: finds arrays of objects and reads scalar members. */
typedef struct jr {
    const char *s;
    size_t len, pos;
    long line;
    char *err;
    size_t cap;
} jr;

static void jr_ws(jr *r)
{
    while (r->pos < r->len) {
        char c = r->s[r->pos];
        if (c == '\n')
            r->line++;
        else if (c != ' ' && c != '\t' && c != '\r')
            break;
        r->pos++;
    }
}

static int jr_fail(jr *r, const char *what)
{
    say(r->err, r->cap, "line %ld: %s", r->line, what);
    return -1;
}

static int jr_peek(jr *r)
{
    jr_ws(r);
    return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

/* A string (escapes kept simple: \uXXXX becomes '?') into out[COST_FIELD_MAX]; out NULL skips
 * it, however long (a server's licence text). cut: a longer one is cut, not an error (a
 * server's message). */
static int jr_str(jr *r, char *out, int cut)
{
    if (jr_peek(r) != '"')
        return jr_fail(r, "expected a string");
    r->pos++;
    size_t n = 0;
    while (r->pos < r->len) {
        char c = r->s[r->pos++];
        if (c == '"') {
            if (out)
                out[n] = '\0';
            return 0;
        }
        if (c == '\n' || (unsigned char)c < 0x20)
            return jr_fail(r, "control character inside a string");
        if (c == '\\') {
            if (r->pos >= r->len)
                break;
            c = r->s[r->pos++];
            if (c == 'u') {
                if (r->pos + 4 > r->len)
                    break;
                r->pos += 4;
                c = '?';
            } else if (c == 'n' || c == 't' || c == 'r' || c == 'b' || c == 'f') {
                c = ' ';
            }
        }
        if (!out || (cut && n + 1 >= COST_FIELD_MAX))
            continue;
        if (n + 1 >= COST_FIELD_MAX)
            return jr_fail(r, "string too long");
        out[n++] = c;
    }
    return jr_fail(r, "unterminated string");
}

static int jr_string(jr *r, char *out)
{
    return jr_str(r, out, 0);
}

/* A scalar (string, number, true/false/null) as text; null gives "". */
static int jr_scalar(jr *r, char *out, int *is_null)
{
    int c = jr_peek(r);
    *is_null = 0;
    if (c == '"')
        return jr_string(r, out);
    size_t n = 0;
    while (r->pos < r->len) {
        char ch = r->s[r->pos];
        if (!((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' ||
              ch == 'E' || (ch >= 'a' && ch <= 'z')))
            break;
        if (n + 1 >= COST_FIELD_MAX)
            return jr_fail(r, "value too long");
        out[n++] = ch;
        r->pos++;
    }
    out[n] = '\0';
    if (n == 0)
        return jr_fail(r, "expected a value");
    if (strcmp(out, "null") == 0) {
        *is_null = 1;
        out[0] = '\0';
    } else if (!(out[0] == '-' || (out[0] >= '0' && out[0] <= '9')) && strcmp(out, "true") &&
               strcmp(out, "false")) {
        return jr_fail(r, "expected a value");
    }
    return 0;
}

/* Calls each(r, u, key, depth) for every member of the object, or element of the array, that r
 * is at ('{' or '['), with r at the member's value; key is NULL for an array's elements (a key
 * longer than a field is cut: it names nothing p1d reads). Returns 0, or -1 with the error. */
typedef int (*jr_each_fn)(jr *r, void *u, const char *key, int depth);

static int jr_each(jr *r, jr_each_fn each, void *u, int depth)
{
    if (depth > COST_JSON_DEPTH)
        return jr_fail(r, "nested too deeply");
    int c = jr_peek(r);
    char close = c == '{' ? '}' : ']';
    r->pos++;
    if (jr_peek(r) == close) {
        r->pos++;
        return 0;
    }
    for (;;) {
        char key[COST_FIELD_MAX];
        if (c == '{') {
            if (jr_str(r, key, 1) < 0)
                return -1;
            if (jr_peek(r) != ':')
                return jr_fail(r, "expected ':'");
            r->pos++;
        }
        if (each(r, u, c == '{' ? key : NULL, depth + 1) < 0)
            return -1;
        int d = jr_peek(r);
        r->pos++;
        if (d == ',')
            continue;
        if (d == close)
            return 0;
        return jr_fail(r, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int jr_skip(jr *r, int depth);

static int skip_each(jr *r, void *u, const char *key, int depth)
{
    (void)u;
    (void)key;
    return jr_skip(r, depth);
}

/* Any value, skipped. */
static int jr_skip(jr *r, int depth)
{
    int c = jr_peek(r);
    if (c == '{' || c == '[')
        return jr_each(r, skip_each, NULL, depth);
    if (c == '"')
        return jr_string(r, NULL);
    char tmp[COST_FIELD_MAX];
    int dummy;
    return jr_scalar(r, tmp, &dummy);
}

/* What a JSON price file says besides its price objects, gathered while it is read. */
typedef struct jctx {
    entries *out;
    cost_kind kind;            /* Frank Energie's reply holds both kinds' lists */
    int done;                  /* one object's lists were read: later ones are another home's */
    char unit[COST_FIELD_MAX]; /* "unit": "EUR/MWh" where the file names its unit; "" none */
    long unit_line;
    char said[COST_FIELD_MAX]; /* the server's error message ("errors": [{"message": ..}]) */
    int64_t *col[2];           /* Energy-Charts' columns: "unix_seconds" and "price" */
    size_t ncol[2], capcol[2];
    int have_col[2];
    long col_line;
} jctx;

/* Notes the unit a file or a price object names; a second, different one is an error. */
static int jr_unit(jr *r, jctx *x, const char *unit, long line)
{
    if (!x->unit[0]) {
        snprintf(x->unit, sizeof x->unit, "%s", unit);
        x->unit_line = line;
        return 0;
    }
    if (strcasecmp(x->unit, unit) == 0)
        return 0;
    say(r->err, r->cap, "line %ld: unit '%s' differs from '%s' on line %ld", line, unit, x->unit,
        x->unit_line);
    return -1;
}

/* The members of one price object that p1d reads. */
typedef struct jprice {
    char time[COST_FIELD_MAX], price[COST_FIELD_MAX], exp[COST_FIELD_MAX], unit[COST_FIELD_MAX];
    int have_t, have_p, num_p, num_e; /* num_*: a JSON number, not a string */
    int parts;                        /* Frank Energie's parts seen, summed in sum */
    int64_t sum;
} jprice;

/* One of Frank Energie's price parts, added to p->sum. */
static int price_part(jr *r, jprice *p, const char *key)
{
    char v[COST_FIELD_MAX], msg[2 * COST_FIELD_MAX + 64];
    int is_null;
    int64_t n;
    const char *why = NULL;
    if (jr_scalar(r, v, &is_null) < 0)
        return -1;
    if (is_null || parse_decimal(v, DEC_EXPONENT, &n, &why) < 0) {
        snprintf(msg, sizeof msg, "%s: expected a number of EUR, got '%s'%s%s%s", key,
                 is_null ? "null" : v, why ? " (" : "", why ? why : "", why ? ")" : "");
        return jr_fail(r, msg);
    }
    p->sum += n; /* each part is at most COST_PRICE_ABS_MAX: no overflow */
    p->parts++;
    return 0;
}

static int price_each(jr *r, void *u, const char *key, int depth)
{
    jprice *p = u;
    int c = jr_peek(r), is_null;
    if (name_is(key, part_names) && c != '{' && c != '[')
        return price_part(r, p, key);
    char *dst = name_is(key, time_names)       ? (p->have_t = 1, p->time)
                : name_is(key, price_names)    ? (p->have_p = 1, p->price)
                : name_is(key, export_names)   ? p->exp
                : strcasecmp(key, "unit") == 0 ? p->unit
                                               : NULL;
    if (!dst || c == '{' || c == '[')
        return jr_skip(r, depth);
    if (jr_scalar(r, dst, &is_null) < 0)
        return -1;
    if (dst == p->price)
        p->num_p = c != '"';
    else if (dst == p->exp)
        p->num_e = c != '"';
    return 0;
}

/* One price object {"time":..,"price":..}. */
static int jr_price(jr *r, jctx *x, int depth)
{
    jprice p;
    memset(&p, 0, sizeof p);
    if (jr_peek(r) != '{')
        return jr_fail(r, "expected a price object {\"time\": ..., \"price\": ...}");
    long line = r->line; /* after the blanks before it */
    if (jr_each(r, price_each, &p, depth) < 0)
        return -1;
    if (!p.have_p && p.parts) { /* Frank Energie: the sum of the parts */
        const char *sign = p.sum < 0 ? "-" : "";
        int64_t a = p.sum < 0 ? -p.sum : p.sum;
        snprintf(p.price, sizeof p.price, "%s%lld.%06lld", sign, (long long)(a / 1000000),
                 (long long)(a % 1000000));
        p.have_p = 1;
    }
    if (!p.have_t || !p.have_p) {
        say(r->err, r->cap, "line %ld: price object without %s", line,
            p.have_t ? "\"price\"" : "\"time\"");
        return -1;
    }
    if (p.unit[0] && jr_unit(r, x, p.unit, line) < 0)
        return -1;
    entry e;
    if (entry_from(p.time, p.price, p.exp, p.num_p ? DEC_EXPONENT : 0, p.num_e ? DEC_EXPONENT : 0,
                   line, &e, r->err, r->cap) < 0)
        return -1;
    if (x->out->n >= COST_ENTRIES_MAX)
        return jr_fail(r, "too many prices in one file");
    if (entries_push(x->out, &e) < 0)
        return jr_fail(r, "out of memory");
    return 0;
}

static int prices_each(jr *r, void *u, const char *key, int depth)
{
    (void)key;
    return jr_price(r, u, depth);
}

/* One of Energy-Charts' columns: "unix_seconds": [1764543600, ...] or "price": [85.12, null,
 * ...] (null = no price for that slot, COST_UNSET). */
typedef struct jcolumn {
    jctx *x;
    int which; /* 0: unix_seconds, 1: price */
} jcolumn;

static int column_each(jr *r, void *u, const char *key, int depth)
{
    jcolumn *k = u;
    jctx *x = k->x;
    int which = k->which, is_null, c = jr_peek(r);
    char v[COST_FIELD_MAX], msg[COST_FIELD_MAX + 96];
    int64_t n = COST_UNSET;
    const char *why = NULL;
    (void)key;
    (void)depth;
    if (c == '{' || c == '[' || c == '"' || jr_scalar(r, v, &is_null) < 0) {
        snprintf(msg, sizeof msg, "%s: expected a list of numbers", which ? "price" : "unix_seconds");
        return jr_fail(r, msg);
    }
    if (which == 0 && (is_null || civil_parse(v, CIVIL_PARSE_UNIX, &n) < 0)) {
        snprintf(msg, sizeof msg, "unix_seconds: expected unix seconds, got '%s'", v);
        return jr_fail(r, msg);
    }
    if (which == 1 && !is_null && parse_decimal(v, DEC_EXPONENT, &n, &why) < 0) {
        snprintf(msg, sizeof msg, "price: expected a number, got '%s'%s%s%s", v, why ? " (" : "",
                 why ? why : "", why ? ")" : "");
        return jr_fail(r, msg);
    }
    if (x->ncol[which] >= COST_ENTRIES_MAX)
        return jr_fail(r, "too many prices in one file");
    if (x->ncol[which] == x->capcol[which]) {
        size_t cap = x->capcol[which] ? x->capcol[which] * 2 : 256;
        int64_t *p = realloc(x->col[which], cap * sizeof *p);
        if (!p)
            return jr_fail(r, "out of memory");
        x->col[which] = p;
        x->capcol[which] = cap;
    }
    x->col[which][x->ncol[which]++] = n;
    return 0;
}

/* The first "message" string anywhere in a value (GraphQL's "errors": [{"message": ..}], or a
 * plain "error": "...") into x->said; everything else is skipped. */
static int jr_message(jr *r, jctx *x, int depth);

static int message_each(jr *r, void *u, const char *key, int depth)
{
    int c = jr_peek(r);
    if (!key || strcasecmp(key, "message") == 0 || c == '{' || c == '[')
        return jr_message(r, u, depth);
    return jr_skip(r, depth);
}

static int jr_message(jr *r, jctx *x, int depth)
{
    int c = jr_peek(r);
    if (c == '"' && !x->said[0])
        return jr_str(r, x->said, 1);
    if (c == '{' || c == '[')
        return jr_each(r, message_each, x, depth);
    return jr_skip(r, depth);
}

/* An object that may hold price lists: "prices": [...] (also "data", "items", "values"),
 * Tibber's priceInfo "today" and "tomorrow", Frank Energie's list of the kind read, or
 * Energy-Charts' "unix_seconds" and "price" columns, with a "unit". Other objects and arrays are
 * searched in turn (Tibber's lists sit in data.viewer.homes[0].currentSubscription.priceInfo); once
 * an object's lists are read, later ones (a second home's) are skipped. */
typedef struct jobject {
    jctx *x;
    int here; /* this object held a list */
} jobject;

static int jr_find(jr *r, jctx *x, int depth);

static int object_each(jr *r, void *u, const char *key, int depth)
{
    static const char *const list_names[] = {"prices", "data",     "items", "values",
                                             "today",  "tomorrow", NULL};
    /* deeper down, only names that say prices: a nested "values" or "data" may be anything */
    static const char *const deep_names[] = {"prices", "today", "tomorrow", NULL};
    /* Frank Energie: data.marketPricesElectricity and data.marketPricesGas, or
     * data.marketPrices.electricityPrices and .gasPrices; each kind reads its own */
    static const char *const power_names[] = {"marketpriceselectricity", "electricityprices", NULL};
    static const char *const gas_names[] = {"marketpricesgas", "gasprices", NULL};
    jobject *o = u;
    jctx *x = o->x;
    int c = jr_peek(r);
    if (x->done)
        return jr_skip(r, depth);
    if (!key) /* an array's element (Tibber's "homes") */
        return c == '{' ? jr_find(r, x, depth) : jr_skip(r, depth);
    int col = strcasecmp(key, "unix_seconds") == 0 ? 0 : strcasecmp(key, "price") == 0 ? 1 : -1;
    if (c == '[' && (name_is(key, depth == 1 ? list_names : deep_names) ||
                     name_is(key, x->kind == COST_KIND_GAS ? gas_names : power_names))) {
        o->here = 1;
        return jr_each(r, prices_each, x, depth);
    }
    if (c == '[' && col >= 0) {
        jcolumn k = {x, col};
        o->here = 1;
        x->have_col[col] = 1;
        x->col_line = r->line;
        return jr_each(r, column_each, &k, depth);
    }
    if (c == '"' && strcasecmp(key, "unit") == 0) {
        char unit[COST_FIELD_MAX];
        long line = r->line;
        return jr_string(r, unit) < 0 ? -1 : jr_unit(r, x, unit, line);
    }
    if (strcasecmp(key, "errors") == 0 || strcasecmp(key, "error") == 0 ||
        (depth == 1 && strcasecmp(key, "message") == 0))
        return jr_message(r, x, depth);
    return jr_find(r, x, depth);
}

/* Searches a value for price lists: an object's members, an array's objects (Tibber's
 * "homes"); anything else is skipped. */
static int jr_find(jr *r, jctx *x, int depth)
{
    int c = jr_peek(r);
    if (c != '{' && c != '[')
        return jr_skip(r, depth);
    jobject o = {x, 0};
    if (jr_each(r, object_each, &o, depth) < 0)
        return -1;
    if (o.here)
        x->done = 1;
    return 0;
}

/* Energy-Charts' two columns into price entries; a null price leaves its slot a hole. */
static int jr_columns(jctx *x, char *err, size_t cap)
{
    if (!x->have_col[0] || !x->have_col[1]) {
        say(err, cap, "line %ld: \"%s\" without \"%s\"", x->col_line,
            x->have_col[0] ? "unix_seconds" : "price", x->have_col[0] ? "price" : "unix_seconds");
        return -1;
    }
    if (x->ncol[0] != x->ncol[1]) {
        say(err, cap, "line %ld: %zu times in \"unix_seconds\" but %zu prices in \"price\"",
            x->col_line, x->ncol[0], x->ncol[1]);
        return -1;
    }
    for (size_t i = 0; i < x->ncol[0]; i++) {
        if (x->col[1][i] == COST_UNSET)
            continue;
        /* A slot lasts until the next time in the column, a null one's too (the last one as
         * long as the one before it), so a null leaves a hole. */
        int64_t t = x->col[0][i], len = 0;
        if (i + 1 < x->ncol[0])
            len = x->col[0][i + 1] - t;
        else if (i > 0)
            len = t - x->col[0][i - 1];
        entry e = {t, x->col[1][i], COST_UNSET, t, x->col_line, 0, len > 0 ? len : 0};
        if (x->out->n >= COST_ENTRIES_MAX || entries_push(x->out, &e) < 0) {
            say(err, cap, "line %ld: too many prices in one file", x->col_line);
            return -1;
        }
    }
    return 0;
}

static int parse_json(const char *text, size_t len, cost_kind kind, entries *out, char *unit,
                      long *unit_line, char *err, size_t cap)
{
    jr r = {text, len, 0, 1, err, cap};
    jctx x = {.out = out, .kind = kind};
    int rc;
    if (jr_peek(&r) == '[') {
        rc = jr_each(&r, prices_each, &x, 0);
    } else {
        rc = jr_find(&r, &x, 0);
        if (rc == 0 && (x.have_col[0] || x.have_col[1]))
            rc = jr_columns(&x, err, cap);
        if (rc == 0 && !x.done && x.said[0]) {
            say(err, cap, "no prices; the server says: %s", x.said);
            rc = -1;
        } else if (rc == 0 && !x.done) {
            say(err, cap,
                "no price list in the object (expected \"prices\": [...], Tibber's priceInfo "
                "\"today\" and \"tomorrow\", Frank Energie's %s, or Energy-Charts' "
                "\"unix_seconds\" and \"price\")",
                kind == COST_KIND_GAS ? "marketPricesGas" : "marketPricesElectricity");
            rc = -1;
        }
    }
    if (rc == 0 && jr_peek(&r) != -1)
        rc = jr_fail(&r, "unexpected text after the JSON value");
    snprintf(unit, COST_FIELD_MAX, "%s", x.unit);
    *unit_line = x.unit_line;
    free(x.col[0]);
    free(x.col[1]);
    return rc;
}

static int reply_each(jr *r, void *u, const char *key, int depth)
{
    if (strcasecmp(key, "errors") == 0 || strcasecmp(key, "error") == 0 ||
        strcasecmp(key, "message") == 0)
        return jr_message(r, u, depth);
    return jr_skip(r, depth);
}

int cost_reply_message(const char *text, size_t len, char *out, size_t cap)
{
    char err[COST_ERR_MAX];
    jr r = {text, len, 0, 1, err, sizeof err};
    jctx x = {0};
    if (cap)
        out[0] = '\0';
    if (jr_peek(&r) != '{')
        return 0;
    jr_each(&r, reply_each, &x, 0); /* a message found before a flaw in the JSON counts */
    if (!x.said[0])
        return 0;
    snprintf(out, cap, "%s", x.said);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * ENTSO-E's day-ahead prices: the Transparency Platform's API (documentType A44) answers an XML
 * Publication_MarketDocument of TimeSeries (currency_Unit.name EUR, price_Measure_Unit.name
 * MWH, curveType), each of Periods (timeInterval start and end, resolution PT15M, PT30M or
 * PT60M, Points of position 1.. and price.amount). Curve type A03 leaves out a point whose price
 * is the one before it. Where periods of two resolutions cover the same time (as around the move
 * to quarter hours), the finer one is kept; a TimeSeries of another classification sequence
 * than 1 (a second auction's prices for the same zone) is left out. An
 * Acknowledgement_MarketDocument is its answer
 * without data (the Reason's text is the message). Only what that needs of XML is read: tags by
 * their local name (a namespace prefix dropped) and text; attributes, comments, processing
 * instructions and a DOCTYPE without an internal subset are skipped, CDATA is text.
 * ------------------------------------------------------------------------------------------- */

#define XML_DEPTH          16   /* nesting read; deeper is refused */
#define XML_NAME_MAX       64   /* bytes of a local name kept (longer ones match nothing) */
#define ENTSOE_POINTS_MAX  3000 /* points of one Period: a month of quarter hours */
#define ENTSOE_PERIODS_MAX 256  /* periods told apart by resolution */
#define ENTSOE_PRICES_MAX  200000 /* prices of one document (5 years of quarter hours): curve A03
                                  * makes many of few bytes, so the reply's size alone is no bound */

typedef struct entsoe_point {
    long pos, line;
    int64_t price; /* micro-euros per the series' unit (MWh) */
} entsoe_point;

typedef struct entsoe {
    const char *s;
    size_t n, i;
    long line;
    char path[XML_DEPTH][XML_NAME_MAX];
    int depth;
    char text[COST_FIELD_MAX * 2];
    size_t tlen;
    int text_cut; /* the element's text did not fit */
    int is_ack;   /* the root is an Acknowledgement_MarketDocument */
    char reason[COST_FIELD_MAX * 2];
    char currency[16], measure[16];
    int a03;                 /* the series' curveType is A03 */
    int other_sequence;      /* the series is not classification sequence 1: skipped */
    int64_t start, end, res; /* the period's; 0 unknown */
    char pos[24], price[COST_FIELD_MAX];
    long point_line;
    entsoe_point *pt;
    size_t npt;
    struct {
        int64_t start, end, res;
    } per[ENTSOE_PERIODS_MAX];
    size_t nper;
    entries *out;
    char *err;
    size_t cap;
} entsoe;

/* The current element's local name is `name` (and its parent's `parent`, when given). */
static int xml_at(const entsoe *x, const char *name, const char *parent)
{
    return x->depth >= 1 && strcmp(x->path[x->depth - 1], name) == 0 &&
           (!parent || (x->depth >= 2 && strcmp(x->path[x->depth - 2], parent) == 0));
}

/* Appends text (raw: CDATA; else the five named XML entities decoded, others kept as written);
 * text beyond the buffer is dropped and text_cut set. */
static void xml_text(entsoe *x, const char *t, size_t len, int raw)
{
    for (size_t k = 0; k < len; k++) {
        char c = t[k];
        if (c == '\n')
            x->line++;
        if (c == '&' && !raw) {
            static const struct {
                const char *name;
                char c;
            } ents[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
            for (size_t e = 0; e < sizeof ents / sizeof ents[0]; e++) {
                size_t el = strlen(ents[e].name);
                if (len - k - 1 >= el && memcmp(t + k + 1, ents[e].name, el) == 0) {
                    c = ents[e].c;
                    k += el;
                    break;
                }
            }
        }
        if (x->tlen + 1 < sizeof x->text)
            x->text[x->tlen++] = c;
        else
            x->text_cut = 1;
    }
    x->text[x->tlen] = '\0';
}

/* The text trimmed of blanks, in place. */
static char *xml_trimmed(entsoe *x)
{
    char *t = x->text;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' || t[n - 1] == '\n'))
        t[--n] = '\0';
    return t;
}

/* "PT15M", "PT60M", "PT1H" -> seconds; 0 for what is not read. */
static int64_t entsoe_resolution(const char *r)
{
    char *end;
    if (strncmp(r, "PT", 2) != 0 || r[2] < '0' || r[2] > '9')
        return 0;
    long v = strtol(r + 2, &end, 10);
    if (v > 60)
        return 0;
    int64_t s = strcmp(end, "M") == 0 ? v * 60 : strcmp(end, "H") == 0 ? v * 3600 : 0;
    return s == 900 || s == 1800 || s == 3600 ? s : 0;
}

/* A Period ended: its points become entries, one per position (A03: a position left out has the
 * price of the one before it). Returns 0 or -1 with err. */
static int entsoe_period(entsoe *x)
{
    if (!x->start || !x->end || x->end <= x->start) {
        say(x->err, x->cap, "line %ld: Period: without a timeInterval start before its end",
            x->line);
        return -1;
    }
    if (!x->res) {
        say(x->err, x->cap, "line %ld: Period: resolution missing or not PT15M, PT30M or PT60M",
            x->line);
        return -1;
    }
    if ((x->end - x->start) % x->res != 0 || (x->end - x->start) / x->res > ENTSOE_POINTS_MAX) {
        say(x->err, x->cap,
            "line %ld: Period: its timeInterval is not a whole number of %" PRId64
            "-minute steps (at most %d)",
            x->line, x->res / 60, ENTSOE_POINTS_MAX);
        return -1;
    }
    long last = (long)((x->end - x->start) / x->res);
    if (strcmp(x->currency, "EUR") != 0 || strcasecmp(x->measure, "MWH") != 0) {
        say(x->err, x->cap, "line %ld: TimeSeries: prices in %s per %s: expected EUR per MWH",
            x->line, x->currency[0] ? x->currency : "(no currency_Unit.name)",
            x->measure[0] ? x->measure : "(no price_Measure_Unit.name)");
        return -1;
    }
    if (x->nper < ENTSOE_PERIODS_MAX) {
        x->per[x->nper].start = x->start;
        x->per[x->nper].end = x->end;
        x->per[x->nper++].res = x->res;
    }
    for (size_t k = 0; k < x->npt; k++) {
        const entsoe_point *p = &x->pt[k];
        if (k > 0 && p->pos <= x->pt[k - 1].pos) {
            say(x->err, x->cap, "line %ld: Point: position %ld after position %ld", p->line, p->pos,
                x->pt[k - 1].pos);
            return -1;
        }
        if (p->pos > last) {
            say(x->err, x->cap, "line %ld: Point: position %ld beyond the period's %ld steps",
                p->line, p->pos, last);
            return -1;
        }
        /* A03: the positions up to the next point (or the period's end) have this price */
        long upto = !x->a03 ? p->pos : k + 1 < x->npt ? x->pt[k + 1].pos - 1 : last;
        if (upto > last)
            upto = last;
        if (x->out->n + (size_t)(upto - p->pos + 1) > ENTSOE_PRICES_MAX) {
            say(x->err, x->cap, "line %ld: more than %d prices in one reply", p->line,
                ENTSOE_PRICES_MAX);
            return -1;
        }
        for (long pos = p->pos; pos <= upto; pos++) {
            entry e = {0};
            e.ts = e.first = x->start + (pos - 1) * x->res;
            e.import_ = p->price;
            e.export_ = COST_UNSET;
            e.line = p->line;
            e.len = x->res;
            if (entries_push(x->out, &e) < 0) {
                say(x->err, x->cap, "out of memory");
                return -1;
            }
        }
    }
    if (x->a03 && x->npt && x->pt[0].pos != 1) {
        say(x->err, x->cap, "line %ld: Point: curve A03 starts at position %ld, not 1",
            x->pt[0].line, x->pt[0].pos);
        return -1;
    }
    return 0;
}

/* src into dst[cap], cut to fit (the fields read here are short: a cut one is wrong anyway). */
static void xml_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%.*s", (int)(cap - 1), src);
}

/* An element ends (its text in x->text): what it means for the prices. Returns 0 or -1. */
static int entsoe_end(entsoe *x)
{
    char *t = xml_trimmed(x);
    if (x->is_ack) {
        if (xml_at(x, "text", "Reason") && !x->reason[0])
            xml_copy(x->reason, sizeof x->reason, t);
        return 0;
    }
    if (xml_at(x, "currency_Unit.name", "TimeSeries"))
        xml_copy(x->currency, sizeof x->currency, t);
    else if (xml_at(x, "price_Measure_Unit.name", "TimeSeries"))
        xml_copy(x->measure, sizeof x->measure, t);
    else if (xml_at(x, "curveType", "TimeSeries"))
        x->a03 = strcmp(t, "A03") == 0;
    else if (xml_at(x, "classificationSequence_AttributeInstanceComponent.position", "TimeSeries"))
        x->other_sequence = strcmp(t, "1") != 0;
    else if (xml_at(x, "resolution", "Period"))
        x->res = entsoe_resolution(t);
    else if ((xml_at(x, "start", "timeInterval") || xml_at(x, "end", "timeInterval")) &&
             x->depth >= 3 && strcmp(x->path[x->depth - 3], "Period") == 0) {
        int64_t v;
        if (civil_parse(t, CIVIL_PARSE_UNIX, &v) < 0) {
            say(x->err, x->cap,
                "line %ld: timeInterval: expected a UTC time such as "
                "2025-01-31T23:00Z, got '%s'",
                x->line, t);
            return -1;
        }
        if (v < 0 || v >= CIVIL_TIME_END) {
            say(x->err, x->cap,
                "line %ld: timeInterval: out of range: times from 1970 to 2199 only, got '%s'",
                x->line, t);
            return -1;
        }
        *(strcmp(x->path[x->depth - 1], "start") == 0 ? &x->start : &x->end) = v;
    } else if (xml_at(x, "position", "Point") || xml_at(x, "price.amount", "Point")) {
        int pos = x->path[x->depth - 1][0] == 'p' && x->path[x->depth - 1][1] == 'o';
        size_t cap = pos ? sizeof x->pos : sizeof x->price;
        if (x->text_cut || strlen(t) >= cap) {
            say(x->err, x->cap, "line %ld: Point: %s: longer than %zu bytes", x->line,
                x->path[x->depth - 1], cap - 1);
            return -1;
        }
        xml_copy(pos ? x->pos : x->price, cap, t);
    } else if (xml_at(x, "Point", "Period")) {
        char *end;
        const char *why = NULL;
        long pos = strtol(x->pos, &end, 10);
        entsoe_point p = {pos, x->point_line, 0};
        if (!x->pos[0] || *end || pos < 1 || pos > ENTSOE_POINTS_MAX) {
            say(x->err, x->cap, "line %ld: Point: position: expected 1 to %d, got '%s'",
                x->point_line, ENTSOE_POINTS_MAX, x->pos);
            return -1;
        }
        if (parse_decimal(x->price, 0, &p.price, &why) < 0) {
            say(x->err, x->cap,
                "line %ld: Point: price.amount: expected a decimal number, got "
                "'%s'%s%s%s",
                x->point_line, x->price, why ? " (" : "", why ? why : "", why ? ")" : "");
            return -1;
        }
        if (x->npt == ENTSOE_POINTS_MAX) {
            say(x->err, x->cap, "line %ld: Period: more than %d points", x->point_line,
                ENTSOE_POINTS_MAX);
            return -1;
        }
        x->pt[x->npt++] = p;
    } else if (xml_at(x, "Period", "TimeSeries"))
        return x->other_sequence ? 0 : entsoe_period(x);
    return 0;
}

/* An element starts (name: its local name): the state it opens is reset. */
static void entsoe_start(entsoe *x, const char *name)
{
    if (strcmp(name, "TimeSeries") == 0) {
        x->currency[0] = x->measure[0] = '\0';
        x->a03 = x->other_sequence = 0;
    } else if (strcmp(name, "Period") == 0) {
        x->start = x->end = x->res = 0;
        x->npt = 0;
    } else if (strcmp(name, "Point") == 0) {
        x->pos[0] = x->price[0] = '\0';
        x->point_line = x->line;
    }
}

/* Skips to the end of `close` from x->i (counting lines); -1 when it never comes. */
static int xml_skip(entsoe *x, const char *close)
{
    size_t cl = strlen(close);
    for (; x->i + cl <= x->n; x->i++) {
        if (memcmp(x->s + x->i, close, cl) == 0) {
            x->i += cl;
            return 0;
        }
        if (x->s[x->i] == '\n')
            x->line++;
    }
    return -1;
}

/* A tag at x->s[x->i] == '<'. Returns 0, or -1 with err. */
static int xml_tag(entsoe *x)
{
    const char *s = x->s;
    size_t n = x->n, i = x->i;
    if (n - i >= 9 && memcmp(s + i, "<![CDATA[", 9) == 0) {
        const char *end = NULL;
        for (size_t k = i + 9; k + 3 <= n && !end; k++)
            if (memcmp(s + k, "]]>", 3) == 0)
                end = s + k;
        if (!end)
            goto unclosed;
        xml_text(x, s + i + 9, (size_t)(end - (s + i + 9)), 1);
        x->i = (size_t)(end - s) + 3;
        return 0;
    }
    if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
        x->i += 4;
        if (xml_skip(x, "-->") < 0) {
            say(x->err, x->cap, "line %ld: a comment that does not end", x->line);
            return -1;
        }
        return 0;
    }
    if (n - i >= 2 && s[i + 1] == '?') {
        x->i += 2;
        if (xml_skip(x, "?>") < 0) {
            say(x->err, x->cap, "line %ld: '<?' without '?>'", x->line);
            return -1;
        }
        return 0;
    }
    /* a tag: up to its '>' outside quotes */
    size_t k = i + 1;
    char quote = 0;
    long lines = 0;
    for (; k < n && (quote || s[k] != '>'); k++) {
        if (s[k] == '\n')
            lines++;
        if (quote && s[k] == quote)
            quote = 0;
        else if (!quote && (s[k] == '"' || s[k] == '\''))
            quote = s[k];
        else if (!quote && s[k] == '[' && s[i + 1] == '!') {
            say(x->err, x->cap, "line %ld: a DOCTYPE with declarations is not read", x->line);
            return -1;
        }
    }
    if (k >= n)
        goto unclosed;
    x->i = k + 1;
    if (s[i + 1] == '!') { /* DOCTYPE */
        x->line += lines;
        return 0;
    }
    int closing = s[i + 1] == '/';
    int empty = !closing && s[k - 1] == '/';
    /* the name: after '<' or '</', up to a blank, '/' or '>'; a prefix before ':' dropped */
    size_t a = i + 1 + (size_t)closing, b = a;
    while (b < k && s[b] != ' ' && s[b] != '\t' && s[b] != '\r' && s[b] != '\n' && s[b] != '/')
        b++;
    for (size_t c = a; c < b; c++)
        if (s[c] == ':')
            a = c + 1;
    char name[XML_NAME_MAX];
    size_t len = b - a;
    int too_long = len >= sizeof name;
    if (len == 0) {
        say(x->err, x->cap, "line %ld: a tag without a name", x->line);
        return -1;
    }
    if (too_long)
        len = sizeof name - 1;
    memcpy(name, s + a, len);
    name[len] = '\0';
    if (too_long)
        name[0] = '#'; /* matches no name read here, but its own end tag */
    if (closing) {
        if (x->depth == 0 || strcmp(x->path[x->depth - 1], name) != 0) {
            say(x->err, x->cap, "line %ld: </%s> does not close <%s>", x->line, name,
                x->depth ? x->path[x->depth - 1] : "(nothing)");
            return -1;
        }
        int rc = entsoe_end(x);
        x->depth--;
        x->tlen = 0;
        x->text_cut = 0;
        x->text[0] = '\0';
        x->line += lines;
        return rc;
    }
    if (x->depth == XML_DEPTH) {
        say(x->err, x->cap, "line %ld: nested deeper than %d elements", x->line, XML_DEPTH);
        return -1;
    }
    if (x->depth == 0) {
        x->is_ack = strcmp(name, "Acknowledgement_MarketDocument") == 0;
        if (!x->is_ack && strcmp(name, "Publication_MarketDocument") != 0) {
            say(x->err, x->cap,
                "XML is read only as ENTSO-E's day-ahead prices "
                "(Publication_MarketDocument), not <%s>; or JSON or CSV",
                name);
            return -1;
        }
    }
    memcpy(x->path[x->depth++], name, len + 1);
    x->tlen = 0;
    x->text_cut = 0;
    x->text[0] = '\0';
    entsoe_start(x, name);
    x->line += lines;
    if (empty) {
        int rc = entsoe_end(x);
        x->depth--;
        return rc;
    }
    return 0;
unclosed:
    say(x->err, x->cap, "line %ld: a tag that does not end: the reply is cut short", x->line);
    return -1;
}

/* ENTSO-E's XML (from its first '<' at text[i]) into out; 0, or -1 with err. */
static int parse_entsoe(const char *text, size_t len, size_t i, entries *out, char *err, size_t cap)
{
    entsoe *x = calloc(1, sizeof *x);
    entsoe_point *pt = malloc(ENTSOE_POINTS_MAX * sizeof *pt);
    int rc = 0, root_seen = 0;
    if (!x || !pt) {
        free(x);
        free(pt);
        say(err, cap, "out of memory");
        return -1;
    }
    x->s = text;
    x->n = len;
    x->i = i;
    x->line = 1;
    for (size_t k = 0; k < i; k++)
        x->line += text[k] == '\n';
    x->pt = pt;
    x->out = out;
    x->err = err;
    x->cap = cap;
    while (rc == 0 && x->i < x->n) {
        size_t lt = x->i;
        while (lt < x->n && text[lt] != '<')
            lt++;
        if (x->depth > 0)
            xml_text(x, text + x->i, lt - x->i, 0);
        else
            for (size_t k = x->i; k < lt; k++)
                x->line += text[k] == '\n';
        x->i = lt;
        if (lt == x->n)
            break;
        if (root_seen && x->depth == 0 &&
            (lt + 1 == x->n || (text[lt + 1] != '!' && text[lt + 1] != '?'))) {
            say(err, cap, "line %ld: more after the document's end", x->line);
            rc = -1;
            break;
        }
        rc = xml_tag(x);
        root_seen |= x->depth > 0;
    }
    if (rc == 0 && x->depth > 0) {
        say(err, cap, "line %ld: <%s> does not end: the reply is cut short", x->line,
            x->path[x->depth - 1]);
        rc = -1;
    }
    if (rc == 0 && x->is_ack) {
        say(err, cap, "ENTSO-E answered without prices: %s",
            x->reason[0] ? x->reason : "(no reason given)");
        rc = -1;
    }
    /* where a finer period covers a time, a coarser period's price there goes */
    if (rc == 0 && x->nper > 1) {
        size_t keep = 0;
        for (size_t k = 0; k < out->n; k++) {
            int covered = 0;
            for (size_t p = 0; p < x->nper && !covered; p++)
                covered = x->per[p].res < out->v[k].len && x->per[p].start <= out->v[k].ts &&
                          out->v[k].ts < x->per[p].end;
            if (!covered)
                out->v[keep++] = out->v[k];
        }
        out->n = keep;
    }
    free(pt);
    free(x);
    return rc;
}

/* How many of the file's unit make a EUR per kWh (m3 for gas): 1, 100 (cents) or 1000 (per
 * MWh), or -1 for a unit p1d does not read. Case and blanks do not matter; "€" is EUR. */
static int unit_divisor(const char *unit, cost_kind kind)
{
    char u[COST_FIELD_MAX + 8]; /* room for "eur" in front */
    size_t n = 0;
    for (const char *p = unit; *p && n + 4 < COST_FIELD_MAX; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        if ((unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x82 &&
            (unsigned char)p[2] == 0xAC) { /* € */
            memcpy(u + n, "eur", 3);
            n += 3;
            p += 2;
            continue;
        }
        u[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
    }
    u[n] = '\0';
    static const char *const cents[] = {"ct", "cent", "cents", "eurocent", "c", NULL};
    const char *per = kind == COST_KIND_GAS ? "m3" : "kwh";
    char *slash = strchr(u, '/');
    const char *to = u;
    if (slash) {
        *slash = '\0';
        to = slash + 1;
    } else {
        memmove(u + 4, u, n + 1); /* "MWh" alone: EUR per MWh */
        memcpy(u, "eur", 4);
        to = u + 4;
    }
    if (kind == COST_KIND_GAS && strcmp(to, "m\xc2\xb3") == 0) /* m³ */
        to = "m3";
    int base = strcmp(u, "eur") == 0 ? 1 : name_is(u, cents) ? 100 : 0;
    if (!base)
        return -1;
    if (strcmp(to, per) == 0)
        return base;
    if (kind == COST_KIND_POWER && strcmp(to, "mwh") == 0 && base == 1)
        return 1000;
    return -1;
}

/* v / div, rounded half away from zero (COST_UNSET stays). */
static int64_t unit_scale(int64_t v, int div)
{
    if (v == COST_UNSET || div == 1)
        return v;
    int64_t a = v < 0 ? -v : v, q = (a + div / 2) / div;
    return v < 0 ? -q : q;
}

int cost_parse_dynamic(const char *text, size_t len, cost_kind kind, int day_start,
                       cost_dyns *out, char *err, size_t cap)
{
    cost_dyns_free(out);
    if (len > COST_IMPORT_MAX) {
        say(err, cap, "larger than %u bytes", COST_IMPORT_MAX);
        return -1;
    }
    size_t i = 0;
    if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
        (unsigned char)text[2] == 0xBF)
        i = 3;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i < len && text[i] == '<' && kind == COST_KIND_GAS) {
        say(err, cap,
            "XML is read only as ENTSO-E's day-ahead power prices: expected JSON or CSV "
            "for gas");
        return -1;
    }
    entries e = {0};
    char unit[COST_FIELD_MAX] = "";
    long unit_line = 0;
    int rc;
    if (i < len && text[i] == '<') {
        rc = parse_entsoe(text, len, i, &e, err, cap);
        snprintf(unit, sizeof unit, "EUR/MWh"); /* the only unit parse_entsoe() takes */
    } else if (i < len && (text[i] == '[' || text[i] == '{')) {
        rc = parse_json(text, len, kind, &e, unit, &unit_line, err, cap);
    } else {
        rc = parse_csv(text, len, &e, err, cap);
    }
    if (rc == 0 && e.n == 0) {
        say(err, cap, "no prices found");
        rc = -1;
    }
    if (rc == 0 && unit[0]) {
        /* A file that names its unit (Energy-Charts: "EUR / MWh") is converted to EUR/kWh. */
        int div = unit_divisor(unit, kind);
        if (div < 0) {
            say(err, cap, "line %ld: unit: prices in '%s': expected %s", unit_line, unit,
                kind == COST_KIND_GAS ? "EUR/m3 or ct/m3" : "EUR/kWh, ct/kWh or EUR/MWh");
            rc = -1;
        }
        for (size_t k = 0; rc == 0 && k < e.n; k++) {
            e.v[k].import_ = unit_scale(e.v[k].import_, div);
            e.v[k].export_ = unit_scale(e.v[k].export_, div);
        }
    }
    int64_t most = kind == COST_KIND_GAS ? COST_GAS_PLAUSIBLE : COST_POWER_PLAUSIBLE;
    for (size_t k = 0; rc == 0 && k < e.n; k++) {
        int64_t v = e.v[k].import_, x = e.v[k].export_ == COST_UNSET ? 0 : e.v[k].export_;
        if (v < -most || v > most || x < -most || x > most) {
            int64_t bad = v < -most || v > most ? v : x, a = bad < 0 ? -bad : bad;
            char num[48];
            int n = snprintf(num, sizeof num, "%s%" PRId64 ".%06" PRId64, bad < 0 ? "-" : "",
                             a / 1000000, a % 1000000);
            while (n > 0 && num[n - 1] == '0')
                num[--n] = '\0';
            if (n > 0 && num[n - 1] == '.')
                num[--n] = '\0';
            say(err, cap,
                "line %ld: %s: %s EUR per %s is more than any %s price (at most %d): is the file "
                "in EUR/MWh? Divide its prices by 1000",
                e.v[k].line, bad == v ? "price" : "export", num, kind == COST_KIND_GAS ? "m3" : "kWh",
                kind == COST_KIND_GAS ? "gas" : "electricity", (int)(most / 1000000));
            rc = -1;
        }
    }
    if (rc == 0 && kind == COST_KIND_GAS && day_start > 0 && day_start < 86400) {
        /* A date alone is the gas day that starts at day_start local clock time (a date's
         * midnight is never in a DST change, the day_start may be on the other side of it). */
        for (size_t k = 0; k < e.n; k++) {
            if (!e.v[k].date_only)
                continue;
            int64_t t = e.v[k].ts + day_start;
            e.v[k].ts = e.v[k].first = t + p1_unix_utc_offset(e.v[k].ts) - p1_unix_utc_offset(t);
        }
    }
    if (rc == 0) {
        qsort(e.v, e.n, sizeof *e.v, entry_cmp);
        /* A file in local time without offsets lists the repeated autumn hour twice: the
         * earlier line is its first (summer) pass, the later one its second (winter) pass. */
        int moved = 0;
        for (size_t k = 1; k < e.n; k++) {
            if (e.v[k].ts == e.v[k - 1].ts && e.v[k - 1].first != e.v[k - 1].ts &&
                e.v[k].first != e.v[k].ts) {
                e.v[k - 1].ts = e.v[k - 1].first;
                moved = 1;
                k++;
            }
        }
        if (moved)
            qsort(e.v, e.n, sizeof *e.v, entry_cmp);
        for (size_t k = 1; k < e.n; k++) {
            if (e.v[k].ts == e.v[k - 1].ts) {
                char t[CIVIL_TIME_MAX];
                civil_format_local(e.v[k].ts, t, sizeof t);
                say(err, cap, "line %ld: time %s was already given on line %ld", e.v[k].line, t,
                    e.v[k - 1].line);
                rc = -1;
                break;
            }
        }
    }
    if (rc == 0) {
        out->v = malloc(e.n * sizeof *out->v);
        if (!out->v) {
            say(err, cap, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0) {
        /* Each price lasts until the next one, but never longer than its resolution, so holes
         * stay holes. Gas: a day. Power: the spacing to its nearer neighbour (up to an hour), so
         * a file that goes from hourly to quarter-hour prices (EPEX since 1 Oct 2025) keeps
         * full hours before the change; a price without a neighbour within the hour lasts the
         * file's smallest spacing. */
        int64_t span = kind == COST_KIND_GAS ? COST_GAS_SPAN : COST_POWER_SPAN;
        if (kind == COST_KIND_POWER)
            for (size_t k = 1; k < e.n; k++)
                if (e.v[k].ts - e.v[k - 1].ts < span)
                    span = e.v[k].ts - e.v[k - 1].ts;
        for (size_t k = 0; k < e.n; k++) {
            cost_dyn *d = &out->v[k];
            d->ts = e.v[k].ts;
            d->import_ = e.v[k].import_;
            d->export_ = e.v[k].export_;
            int64_t res = span;
            if (kind == COST_KIND_GAS) {
                /* the same wall-clock time the next day (06:00 to 06:00 also over a DST change) */
                res = 86400 + p1_unix_utc_offset(d->ts) - p1_unix_utc_offset(d->ts + 86400);
            } else {
                int64_t prev = k > 0 ? d->ts - e.v[k - 1].ts : INT64_MAX;
                int64_t next = k + 1 < e.n ? e.v[k + 1].ts - d->ts : INT64_MAX;
                int64_t near = prev < next ? prev : next;
                if (e.v[k].len > 0 && e.v[k].len <= COST_POWER_SPAN)
                    res = e.v[k].len;
                else if (near <= COST_POWER_SPAN)
                    res = near;
            }
            if (k + 1 < e.n)
                d->end = e.v[k + 1].ts - d->ts < res ? e.v[k + 1].ts : d->ts + res;
            else
                d->end = d->ts + res;
        }
        out->n = out->cap = e.n;
    }
    free(e.v);
    if (rc < 0)
        cost_dyns_free(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The database
 * ------------------------------------------------------------------------------------------- */

static const char cost_schema[] =
    "CREATE TABLE IF NOT EXISTS price_fixed (valid_from INTEGER PRIMARY KEY, valid_to INTEGER "
    "NOT NULL, import INTEGER, import_t1 INTEGER, import_t2 INTEGER, export INTEGER, export_t1 "
    "INTEGER, export_t2 INTEGER, gas INTEGER, daily INTEGER, monthly INTEGER, rule INTEGER NOT "
    "NULL DEFAULT 0, capacity INTEGER, dyn_import_factor INTEGER, dyn_import_add INTEGER, "
    "dyn_export_factor INTEGER, dyn_export_add INTEGER);"
    "CREATE TABLE IF NOT EXISTS price_dynamic (kind INTEGER NOT NULL, ts INTEGER NOT NULL, "
    "end_ts INTEGER NOT NULL, import INTEGER NOT NULL, export INTEGER, PRIMARY KEY (kind, ts)) "
    "WITHOUT ROWID;";

/* Columns of price_fixed that came after its first version, in table order (from column 12). */
static const char *const cost_added_columns[] = {"capacity", "dyn_import_factor", "dyn_import_add",
                                                 "dyn_export_factor", "dyn_export_add"};

int cost_db_init(sqlite3 *db, char *err, size_t cap)
{
    char *msg = NULL;
    if (sqlite3_exec(db, cost_schema, NULL, NULL, &msg) != SQLITE_OK) {
        say(err, cap, "cannot create the price tables: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -EIO;
    }
    /* Databases from before the capacity tariff and the adjustment of dynamic prices get their
     * columns, in the order a new table has them (NULL: not priced, not adjusted). */
    for (size_t i = 0; i < sizeof cost_added_columns / sizeof cost_added_columns[0]; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "ALTER TABLE price_fixed ADD COLUMN %s INTEGER",
                 cost_added_columns[i]);
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            int had = msg && strstr(msg, "duplicate column") != NULL;
            if (!had)
                say(err, cap, "cannot add the price column %s: %s", cost_added_columns[i],
                    msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            if (!had)
                return -EIO;
        }
        msg = NULL;
    }
    return 0;
}

static void bind_price(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == COST_UNSET)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

int cost_db_save_fixed(sqlite3 *db, const cost_fixed *f, char *err, size_t cap)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO price_fixed VALUES "
                           "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        say(err, cap, "cannot save fixed prices: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, f->from);
    sqlite3_bind_int64(st, 2, f->to);
    for (int i = 0; i < 3; i++) {
        bind_price(st, 3 + i, f->import_[i]);
        bind_price(st, 6 + i, f->export_[i]);
    }
    bind_price(st, 9, f->gas);
    bind_price(st, 10, f->daily);
    bind_price(st, 11, f->monthly);
    sqlite3_bind_int(st, 12, f->rule);
    bind_price(st, 13, f->capacity);
    bind_price(st, 14, f->dyn_import_factor);
    bind_price(st, 15, f->dyn_import_add);
    bind_price(st, 16, f->dyn_export_factor);
    bind_price(st, 17, f->dyn_export_add);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(err, cap, "cannot save fixed prices: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    return 0;
}

int cost_db_save_dynamic(sqlite3 *db, cost_kind kind, const cost_dyns *d, char *err, size_t cap)
{
    if (!d->n)
        return 0;
    /* A savepoint nests inside the store's transaction if one is open, and is a transaction of
     * its own otherwise: all or nothing either way. */
    if (sqlite3_exec(db, "SAVEPOINT cost_import", NULL, NULL, NULL) != SQLITE_OK) {
        say(err, cap, "cannot start the price import: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_stmt *del = NULL, *ins = NULL;
    int ok = sqlite3_prepare_v2(db, "DELETE FROM price_dynamic WHERE kind = ? AND ts >= ? AND "
                                    "ts < ?", -1, &del, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "INSERT INTO price_dynamic VALUES (?,?,?,?,?)", -1, &ins,
                                NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int(del, 1, (int)kind);
        sqlite3_bind_int64(del, 2, d->v[0].ts);
        sqlite3_bind_int64(del, 3, d->v[d->n - 1].end);
        ok = sqlite3_step(del) == SQLITE_DONE;
    }
    for (size_t i = 0; ok && i < d->n; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_int(ins, 1, (int)kind);
        sqlite3_bind_int64(ins, 2, d->v[i].ts);
        sqlite3_bind_int64(ins, 3, d->v[i].end);
        sqlite3_bind_int64(ins, 4, d->v[i].import_);
        bind_price(ins, 5, d->v[i].export_);
        ok = sqlite3_step(ins) == SQLITE_DONE;
    }
    int busy = 0, full = 0;
    if (!ok) {
        int code = sqlite3_extended_errcode(db) & 0xff;
        busy = code == SQLITE_BUSY || code == SQLITE_LOCKED;
        full = code == SQLITE_FULL;
        if (busy)
            say(err, cap,
                "cannot store the prices: another program holds the database's write "
                "lock (a transaction left open in sqlite3 or a database browser)");
        else
            say(err, cap, "cannot store the prices: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    if (!ok) {
        sqlite3_exec(db, "ROLLBACK TO cost_import; RELEASE cost_import", NULL, NULL, NULL);
        return busy ? -EBUSY : full ? -ENOSPC : -EIO;
    }
    /* WAL writes the pages at the commit: that is where a full disk shows */
    if (sqlite3_exec(db, "RELEASE cost_import", NULL, NULL, NULL) != SQLITE_OK) {
        full = (sqlite3_extended_errcode(db) & 0xff) == SQLITE_FULL;
        say(err, cap, "cannot commit the prices: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK TO cost_import; RELEASE cost_import", NULL, NULL, NULL);
        return full ? -ENOSPC : -EIO;
    }
    return 0;
}

static int64_t col_price(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? COST_UNSET : sqlite3_column_int64(st, i);
}

/* A price of column i, which a database from before it lacks (COST_UNSET). */
static int64_t col_added(sqlite3_stmt *st, int i)
{
    return sqlite3_column_count(st) > i ? col_price(st, i) : COST_UNSET;
}

/* A missing table (a database no writer has opened since the price tables came) = no prices. */
static int no_table(sqlite3 *db)
{
    return strstr(sqlite3_errmsg(db), "no such table") != NULL;
}

int cost_db_load(sqlite3 *db, int64_t from, int64_t to, cost_prices *p, char *err, size_t cap)
{
    memset(p, 0, sizeof *p);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT * FROM price_fixed ORDER BY valid_from", -1, &st, NULL) !=
        SQLITE_OK) {
        if (no_table(db))
            return 0;
        say(err, cap, "cannot read prices: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    size_t capf = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (p->nfixed == capf) {
            capf = capf ? capf * 2 : 4;
            cost_fixed *v = realloc(p->fixed, capf * sizeof *v);
            if (!v) {
                sqlite3_finalize(st);
                cost_prices_free(p);
                return -ENOMEM;
            }
            p->fixed = v;
        }
        cost_fixed *f = &p->fixed[p->nfixed++];
        f->from = sqlite3_column_int64(st, 0);
        f->to = sqlite3_column_int64(st, 1);
        for (int i = 0; i < 3; i++) {
            f->import_[i] = col_price(st, 2 + i);
            f->export_[i] = col_price(st, 5 + i);
        }
        f->gas = col_price(st, 8);
        f->daily = col_price(st, 9);
        f->monthly = col_price(st, 10);
        f->rule = sqlite3_column_int(st, 11);
        /* a read-only look at a database from before a column has none */
        f->capacity = col_added(st, 12);
        f->dyn_import_factor = col_added(st, 13);
        f->dyn_import_add = col_added(st, 14);
        f->dyn_export_factor = col_added(st, 15);
        f->dyn_export_add = col_added(st, 16);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(err, cap, "cannot read prices: %s", sqlite3_errmsg(db));
        cost_prices_free(p);
        return -EIO;
    }
    if (sqlite3_prepare_v2(db, "SELECT ts, end_ts, import, export FROM price_dynamic WHERE "
                               "kind = ? AND ts >= ? AND ts < ? ORDER BY ts", -1, &st,
                           NULL) != SQLITE_OK) {
        if (no_table(db))
            return 0;
        say(err, cap, "cannot read prices: %s", sqlite3_errmsg(db));
        cost_prices_free(p);
        return -EIO;
    }
    for (int kind = 0; kind < 2; kind++) {
        cost_dyns *d = &p->dyn[kind];
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, kind);
        sqlite3_bind_int64(st, 2, from - COST_GAS_SPAN);
        sqlite3_bind_int64(st, 3, to);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t ts = sqlite3_column_int64(st, 0), end = sqlite3_column_int64(st, 1);
            /* An upload replaces the prices that start in its span; one that started before
             * it (an hourly price under quarter-hours from :15 on) ends where the newer begin. */
            if (d->n && d->v[d->n - 1].end > ts)
                d->v[d->n - 1].end = ts;
            if (end <= from)
                continue;
            if (d->n == d->cap) {
                size_t c2 = d->cap ? d->cap * 2 : 1024;
                cost_dyn *v = realloc(d->v, c2 * sizeof *v);
                if (!v) {
                    sqlite3_finalize(st);
                    cost_prices_free(p);
                    return -ENOMEM;
                }
                d->v = v;
                d->cap = c2;
            }
            cost_dyn *x = &d->v[d->n++];
            x->ts = ts;
            x->end = end;
            x->import_ = sqlite3_column_int64(st, 2);
            x->export_ = col_price(st, 3);
        }
        if (rc != SQLITE_DONE) {
            say(err, cap, "cannot read prices: %s", sqlite3_errmsg(db));
            sqlite3_finalize(st);
            cost_prices_free(p);
            return -EIO;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

void cost_prices_free(cost_prices *p)
{
    if (!p)
        return;
    free(p->fixed);
    cost_dyns_free(&p->dyn[0]);
    cost_dyns_free(&p->dyn[1]);
    memset(p, 0, sizeof *p);
}

int cost_prices_any(const cost_prices *p)
{
    for (size_t i = 0; i < p->nfixed; i++)
        if (cost_fixed_any(&p->fixed[i]))
            return 1;
    return p->dyn[0].n || p->dyn[1].n;
}

/* ---------------------------------------------------------------------------------------------
 * Costs
 * ------------------------------------------------------------------------------------------- */

static const cost_fixed *fixed_at(const cost_prices *p, int64_t t)
{
    for (size_t i = p->nfixed; i-- > 0;)
        if (p->fixed[i].from <= t && t < p->fixed[i].to)
            return &p->fixed[i];
    return NULL;
}

/* Index of the last dynamic price with ts <= t, or SIZE_MAX; the cursor makes time-ordered
 * lookups O(1). */
static size_t dyn_at(const cost_dyns *d, size_t *hint, int64_t t)
{
    if (!d->n || d->v[0].ts > t)
        return SIZE_MAX;
    size_t i = *hint < d->n && d->v[*hint].ts <= t ? *hint : 0;
    if (i + 8 < d->n && d->v[i + 8].ts <= t) {
        size_t lo = i, hi = d->n; /* v[lo].ts <= t < v[hi].ts */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (d->v[mid].ts <= t)
                lo = mid;
            else
                hi = mid;
        }
        i = lo;
    } else {
        while (i + 1 < d->n && d->v[i + 1].ts <= t)
            i++;
    }
    *hint = i;
    return i;
}

/* The import and export price of one dynamic price, adjusted by the fixed period f (NULL: as
 * given): the file's export value as it is, else the export adjustment of P when f has one, else
 * the (adjusted) import price, as net metering credits what import costs. */
static void dyn_prices(const cost_dyn *v, const cost_fixed *f, int64_t *imp, int64_t *exp)
{
    *imp = f ? cost_dyn_adjust(v->import_, f->dyn_import_factor, f->dyn_import_add) : v->import_;
    if (v->export_ != COST_UNSET)
        *exp = v->export_;
    else if (f && (f->dyn_export_factor != COST_UNSET || f->dyn_export_add != COST_UNSET))
        *exp = cost_dyn_adjust(v->import_, f->dyn_export_factor, f->dyn_export_add);
    else
        *exp = *imp;
}

void cost_dyn_effective(const cost_prices *p, const cost_dyn *d, int64_t *imp, int64_t *exp)
{
    dyn_prices(d, fixed_at(p, d->ts), imp, exp);
}

/* The dynamic price over the part of [start, end) that prices cover, each adjusted by f (NULL:
 * none): weighted over them (a 1-hour step with quarter-hour prices). Returns the seconds
 * covered (0: none, *imp and *exp untouched). */
static int64_t dyn_price(const cost_dyns *d, size_t *hint, const cost_fixed *f, int64_t start,
                         int64_t end, int64_t *imp, int64_t *exp)
{
    size_t i = dyn_at(d, hint, start);
    if (i != SIZE_MAX && d->v[i].end >= end) {
        dyn_prices(&d->v[i], f, imp, exp);
        return end - start;
    }
    int64_t si = 0, se = 0, dur = 0;
    for (size_t k = i == SIZE_MAX ? 0 : i; k < d->n && d->v[k].ts < end; k++) {
        int64_t a = d->v[k].ts > start ? d->v[k].ts : start;
        int64_t b = d->v[k].end < end ? d->v[k].end : end;
        if (b <= a)
            continue;
        int64_t pi, pe;
        dyn_prices(&d->v[k], f, &pi, &pe);
        si += pi * (b - a);
        se += pe * (b - a);
        dur += b - a;
    }
    if (!dur)
        return 0;
    *imp = (si + (si >= 0 ? dur / 2 : -dur / 2)) / dur;
    *exp = (se + (se >= 0 ? dur / 2 : -dur / 2)) / dur;
    return dur;
}

/* The share num/den of an amount of energy (Wh or dm3), rounded half up; STORE_NULL stays. */
static int64_t share(int64_t v, int64_t num, int64_t den)
{
    if (v == STORE_NULL)
        return STORE_NULL;
    return v >= 0 ? (v * num + den / 2) / den : -((-v * num + den / 2) / den);
}

/* The price of tariff t (0 single, 1, 2) with its fallbacks; COST_UNSET when v has none. */
static int64_t tariff_price(const int64_t v[3], int t)
{
    if (v[t] != COST_UNSET)
        return v[t];
    if (v[0] != COST_UNSET)
        return v[0];
    return v[1];
}

/* The tariff of a time by the calendar rule (for meters that send no tariff registers). */
static int rule_tariff(int rule, int64_t t)
{
    if (rule == COST_RULE_NONE)
        return 0;
    civil_tm l;
    civil_local(t, &l);
    int weekend = l.wday == 0 || l.wday == 6;
    int end_hour = rule == COST_RULE_NL ? 23 : 22;
    int peak = !weekend && l.hour >= 7 && l.hour < end_hour;
    if (rule == COST_RULE_NL)
        return peak ? 2 : 1;
    return peak ? 1 : 2;
}

static int64_t val(int64_t v)
{
    return v == STORE_NULL ? 0 : v;
}

/* nano-euros (quantity in Wh or dm3 x micro-euros per kWh or m3 / 1000 ... kept x1000) to
 * micro-euros, half away from zero. */
static int64_t round_milli(int64_t v)
{
    return v >= 0 ? (v + 500) / 1000 : -((-v + 500) / 1000);
}

/* The part of `amount` accrued over [a, b) of periods [P0, P1) split by next(): pro rata per
 * second, as differences of floors so that any partition of a period sums to `amount` exactly. */
static int64_t accrue(int64_t amount, int64_t a, int64_t b, civil_unit u, int64_t *c0,
                      int64_t *c1)
{
    int64_t sum = 0;
    while (a < b) {
        /* The period bounds are cached: consecutive steps mostly share a day and a month. */
        if (!(*c0 <= a && a < *c1)) {
            *c0 = civil_floor(u, a);
            *c1 = civil_next(u, *c0);
        }
        int64_t p0 = *c0, p1 = *c1;
        int64_t e = b < p1 ? b : p1, len = p1 - p0;
        sum += floor_div(amount * (e - p0), len) - floor_div(amount * (a - p0), len);
        a = e;
    }
    return sum;
}

/* Nano-euros of one direction (import or export) at the fixed prices v (NULL: no period in
 * force): the tariff registers reg[0..1] when the meter sends them, else the total at the
 * calendar rule's tariff. Energy without a price goes to out->unpriced_wh: counting it at 0
 * would make a total look complete when it is not. */
static int64_t fixed_side(const int64_t *v, int rule, int64_t t, int64_t total, const int64_t *reg,
                          cost_parts *out)
{
    int64_t nano = 0;
    for (int k = 0; k < 2; k++) {
        int single = reg[0] == STORE_NULL && reg[1] == STORE_NULL;
        if (single && k == 1)
            break;
        int64_t e = single ? total : reg[k];
        if (e == STORE_NULL)
            continue;
        int64_t price = v ? tariff_price(v, single ? rule_tariff(rule, t) : k + 1) : COST_UNSET;
        if (price == COST_UNSET) {
            out->unpriced_wh += e;
        } else {
            nano += e * price;
            out->priced = 1;
        }
    }
    return nano;
}

void cost_price_at(const cost_prices *p, int64_t t, int tariff, int64_t *imp, int64_t *exp,
                   int64_t *since)
{
    const cost_dyns *d = &p->dyn[COST_KIND_POWER];
    size_t hint = 0, i = dyn_at(d, &hint, t);
    const cost_fixed *f = fixed_at(p, t);
    if (i != SIZE_MAX && t < d->v[i].end) {
        dyn_prices(&d->v[i], f, imp, exp);
        *since = d->v[i].ts;
        return;
    }
    if (!f) {
        *imp = *exp = *since = COST_UNSET;
        return;
    }
    /* as cost_step(): the meter's own tariff registers, else the calendar rule */
    int k = tariff == 1 || tariff == 2 ? tariff : rule_tariff(f->rule, t);
    *imp = tariff_price(f->import_, k);
    *exp = tariff_price(f->export_, k);
    *since = *imp == COST_UNSET && *exp == COST_UNSET ? COST_UNSET : f->from;
}

int64_t cost_price_next_change(const cost_prices *p, int64_t t)
{
    int64_t next = COST_FOREVER;
    const cost_dyns *d = &p->dyn[COST_KIND_POWER];
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].ts > t && d->v[i].ts < next)
            next = d->v[i].ts;
        if (d->v[i].end > t && d->v[i].end < next)
            next = d->v[i].end;
    }
    for (size_t i = 0; i < p->nfixed; i++) {
        if (p->fixed[i].from > t && p->fixed[i].from < next)
            next = p->fixed[i].from;
        if (p->fixed[i].to > t && p->fixed[i].to < next)
            next = p->fixed[i].to;
    }
    return next;
}

void cost_step(const cost_prices *p, cost_cursor *c, int64_t start, int64_t end,
               const int64_t energy[STORE_E_COUNT], cost_parts *out)
{
    memset(out, 0, sizeof *out);
    const cost_fixed *f = fixed_at(p, start);
    int64_t nano = 0, pi = 0, pe = 0, len = end - start;
    /* Dynamic prices cover `cov` seconds of the step: that share of the energy (spread evenly
     * over the step) is theirs, the rest goes to the fixed prices or counts as unpriced, so a
     * hole in the prices is never priced at a neighbour's price. */
    int64_t cov = len > 0 ? dyn_price(&p->dyn[COST_KIND_POWER], &c->dyn[COST_KIND_POWER], f,
                                      start, end, &pi, &pe)
                          : 0;
    int64_t rest[STORE_E_COUNT];
    for (int k = 0; k < STORE_E_COUNT; k++)
        rest[k] = cov ? share(energy[k], len - cov, len) : energy[k];
    if (cov) {
        out->priced = 1;
        nano = (val(energy[STORE_E_IMPORT]) - val(rest[STORE_E_IMPORT])) * pi -
               (val(energy[STORE_E_EXPORT]) - val(rest[STORE_E_EXPORT])) * pe;
    }
    if (!cov || cov < len) {
        int rule = f ? f->rule : COST_RULE_NONE;
        nano += fixed_side(f ? f->import_ : NULL, rule, start, rest[STORE_E_IMPORT],
                           &rest[STORE_E_IMPORT_T1], out) -
                fixed_side(f ? f->export_ : NULL, rule, start, rest[STORE_E_EXPORT],
                           &rest[STORE_E_EXPORT_T1], out);
    }
    out->energy = round_milli(nano);
    int64_t gas = energy[STORE_E_GAS];
    if (gas != STORE_NULL) {
        int64_t pg = 0, unused;
        /* the adjustments are of power prices: a gas price counts as given */
        int64_t gcov = len > 0 ? dyn_price(&p->dyn[COST_KIND_GAS], &c->dyn[COST_KIND_GAS], NULL,
                                           start, end, &pg, &unused)
                               : 0;
        int64_t grest = gcov ? share(gas, len - gcov, len) : gas, gn = (gas - grest) * pg;
        if (gcov)
            out->priced = 1;
        if (!gcov || gcov < len) {
            if (f && f->gas != COST_UNSET) {
                out->priced = 1;
                gn += grest * f->gas;
            } else {
                out->unpriced_dm3 = grest;
            }
        }
        out->gas = round_milli(gn);
    }
    if (f) {
        if (f->daily != COST_UNSET) {
            out->priced = 1;
            out->fixed += accrue(f->daily, start, end, CIVIL_DAY, &c->day0, &c->day1);
        }
        if (f->monthly != COST_UNSET) {
            out->priced = 1;
            out->fixed += accrue(f->monthly, start, end, CIVIL_MONTH, &c->mon0, &c->mon1);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The capacity tariff
 * ------------------------------------------------------------------------------------------- */

int64_t cost_capacity_price(const cost_prices *p, int64_t t)
{
    const cost_fixed *f = fixed_at(p, t);
    return f ? f->capacity : COST_UNSET;
}

int64_t cost_capacity_counted_w(int64_t peak_w)
{
    return peak_w > COST_CAPACITY_FLOOR_W ? peak_w : COST_CAPACITY_FLOOR_W;
}

int64_t cost_capacity_month(int64_t price, const int64_t *peaks_w, size_t n, int64_t *mean_w)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += cost_capacity_counted_w(peaks_w[i]);
    int64_t d = (int64_t)n;
    *mean_w = (sum + d / 2) / d;
    /* price x sum / (n x 12 months x 1000 W per kW), split so the product cannot overflow */
    d *= 12 * 1000;
    int64_t q = sum / d, r = sum % d;
    return q * price + (r * price + d / 2) / d;
}
