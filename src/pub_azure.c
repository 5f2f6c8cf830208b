/* pub_azure.c: Azure Table Storage publisher: outbox batches become entity-group transactions
 * (one partition each), sent through curl_loop (libcurl multi on our loop). A batch is sent as
 * Insert operations; one that may already have landed (a retry, or refused with 409
 * EntityAlreadyExists) is sent again as InsertOrReplace, so every reading lands exactly once. */
#define _GNU_SOURCE
#include "pub_azure.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "civil.h"
#include "curl_loop.h"
#include "dl_curl.h"
#include "log.h"

#define AZ_VERSION           "2019-02-02" /* x-ms-version */
#define AZ_PROPS_MAX         252          /* properties per entity (Azure's limit, keys included) */
#define AZ_KEY_MAX           1024         /* bytes of a PartitionKey or RowKey (Azure: 1 KiB) */
#define AZ_ENTITY_MAX        8192         /* bytes of one entity's JSON as we write them */
#define AZ_REASON_MAX        160          /* a parked batch's reason */
#define AZ_METERS_REFRESH_MS 5000         /* re-read the store's meter list this often */
#define AZ_SKEW_TOLERANCE_S  120          /* server clock this far from ours: sign with its time */
#define AZ_NAME_MAX          64           /* store_meter_info.name */

/* What became of a request. */
typedef enum az_outcome {
    AZ_PENDING = 0,
    AZ_OK,
    AZ_RETRY,    /* network, timeout, 5xx, 429, a reply we cannot trust: send again later */
    AZ_PARK,     /* Azure refused the batch itself (4xx with an error code): skip it, logged */
    AZ_AUTH,     /* 403: credentials refused; wait long, keep everything */
    AZ_NO_TABLE, /* 404: create the table, then send again */
    AZ_SPLIT,    /* one operation of a batch refused (a 4xx with Azure's code inside the 202): the
                  * batch wrote nothing; its readings go again one per batch, so only the
                  * refused one is parked */
    AZ_EXISTS,   /* an Insert batch refused with 409 EntityAlreadyExists: nothing of it was
                  * written (a batch is atomic); send it again as InsertOrReplace */
} az_outcome;

typedef struct buf {
    char *p;
    size_t len, cap, max;
    int overflow;
} buf;

/* A batch of one meter in flight or completed out of order, acknowledged strictly in order. */
typedef struct az_slot {
    uint64_t seq;
    int64_t last_ts;
    az_outcome state;
    char reason[AZ_REASON_MAX];
} az_slot;

typedef struct az_meter {
    char name[AZ_NAME_MAX];
    int64_t sent; /* last point handed to a batch (in flight or acknowledged) */
    int have_sent;
    int caught_up;         /* nothing new at the last look; cleared by the poll timer */
    int64_t partial_since; /* monotonic ms a partial batch was first seen waiting, 0 none */
    int rewind;            /* a batch failed: once nothing is in flight, resend from the cursor */
    int64_t upsert_until;  /* batches starting at or before this time may have landed already:
                            * they go as InsertOrReplace (valid when have_upsert) */
    int have_upsert;
    int64_t single_until; /* readings up to this time go one per batch (valid when have_single) */
    int have_single;
    int refused_singles; /* readings sent alone and refused in a row: 2 = Azure refuses them all */
    uint64_t next_seq;
    az_slot fifo[PUB_AZURE_PARALLEL_MAX];
    size_t head, count;
} az_meter;

typedef enum az_kind { AZ_REQ_TABLE, AZ_REQ_BATCH } az_kind;

typedef struct pub_azure pub_azure;

typedef struct az_req {
    pub_azure *az; /* set at allocation */
    CURL *easy;
    struct curl_slist *hdr;
    az_kind kind;
    size_t meter; /* index into az->meters (AZ_REQ_BATCH) */
    uint64_t seq;
    int npoints;
    int upsert; /* InsertOrReplace (PUT) operations instead of Insert (POST) */
    int64_t first_ts, last_ts;
    buf body, resp;
    char err_code[64]; /* x-ms-error-code */
    char date[64];     /* the server's Date header */
    char curl_err[CURL_ERROR_SIZE];
    int64_t sent_ms; /* loop_now_ms() when it went out */
    struct az_req *next;
} az_req;

struct pub_azure {
    pub pub; /* first: &az->pub is what pub_azure_new returns */
    store *s;
    outbox *ob;
    pub_azure_options o;
    unsigned char key[96];
    int keylen;
    char url_path[256]; /* path part of the endpoint ("" or "/devstoreaccount1") */
    const dl_curl *cu;  /* libcurl, loaded when the publisher starts */
    curl_loop *cl;      /* runs the requests, one multi handle per publisher */
    loop_timer *wake;
    az_req *reqs; /* in flight */
    int inflight;
    int table_ready, table_inflight;
    az_meter *meters;
    size_t nmeters, capmeters, rr;
    int64_t meters_at; /* monotonic ms of the last meter list refresh */
    int64_t backoff_until, backoff_ms;
    int64_t backoff_at; /* when the round after the last growth of backoff_ms may start */
    int64_t poll_ms; /* look for new readings this often when caught up */
    int64_t skew_s;  /* server time - our time, when beyond AZ_SKEW_TOLERANCE_S */
    int skew_logged;
    uint64_t rng;
    pub_status st;
    char logged[PUB_ERR_MAX]; /* the last problem logged: each is logged once until it changes */
    int in_trouble;
    int stopping;
};

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

static void buf_init(buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int buf_add(buf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n + 1 > b->max) {
        b->overflow = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->overflow = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_str(buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

static const char *const wday_name[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_name[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 1123 date, fixed English names (no locale). */
static void rfc1123(int64_t t, char *out, size_t cap)
{
    civil_tm u;
    civil_utc(t, &u);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday_name[u.wday], u.day,
             month_name[u.month - 1], u.year, u.hour, u.minute, u.second);
}

/* Parses "Tue, 30 Jan 2025 10:15:00 GMT"; returns 0 and *t, or -1. The fields have at most
 * their digits (a server's Date is anyone's text: no number may overflow) and none is signed. */
static int parse_rfc1123(const char *s, int64_t *t)
{
    char mon[4];
    int d, y, h, mi, se, mo = -1;
    const char *comma = strchr(s, ',');
    if (!comma || strpbrk(comma, "+-") ||
        sscanf(comma + 1, " %2d %3s %4d %2d:%2d:%2d", &d, mon, &y, &h, &mi, &se) != 6)
        return -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, month_name[i]) == 0)
            mo = i + 1;
    if (mo < 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return -1;
    *t = p1_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

static int64_t wall_s(void)
{
    return loop_wall_ms() / 1000;
}

/* xorshift64*: jitter only, no secrecy needed. */
static uint64_t rnd(pub_azure *az)
{
    az->rng ^= az->rng >> 12;
    az->rng ^= az->rng << 25;
    az->rng ^= az->rng >> 27;
    return az->rng * 2685821657736338717ULL;
}

/* Writes v / 10^dec exactly as a decimal number with at least one fractional digit. */
static void fixed(char *out, size_t cap, int64_t v, int dec)
{
    int64_t p = 1;
    for (int i = 0; i < dec; i++)
        p *= 10;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (dec == 0)
        snprintf(out, cap, "%s%" PRIu64 ".0", v < 0 ? "-" : "", a);
    else
        snprintf(out, cap, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", a / (uint64_t)p, dec,
                 a % (uint64_t)p);
}

/* ---------------------------------------------------------------------------------------------
 * Logging: one line per distinct problem, one when it clears
 * ------------------------------------------------------------------------------------------- */

static void trouble(pub_azure *az, log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trouble(pub_azure *az, log_level lvl, const char *fmt, ...)
{
    char msg[PUB_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(az->st.last_error, sizeof az->st.last_error, "%s", msg);
    az->in_trouble = 1;
    if (strcmp(msg, az->logged) == 0) {
        log_debug("azure: %s (again)", msg);
        return;
    }
    snprintf(az->logged, sizeof az->logged, "%s", msg);
    log_msg(lvl, "azure: %s", msg);
}

static void recovered(pub_azure *az)
{
    if (az->in_trouble)
        log_info("azure: delivering again to %s", az->o.endpoint);
    az->in_trouble = 0;
    az->logged[0] = '\0';
    az->st.last_error[0] = '\0'; /* null in /api/meters again */
}

/* ---------------------------------------------------------------------------------------------
 * Signing
 * ------------------------------------------------------------------------------------------- */

static int b64_decode(const char *in, unsigned char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    return len;
}

static int hmac_b64(const unsigned char *key, int keylen, const char *sts, char *out, size_t cap)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), key, keylen, (const unsigned char *)sts, strlen(sts), mac, &maclen))
        return -1;
    if (cap < 4 * ((maclen + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    return 0;
}

int pub_azure_sign(const char *key_b64, const char *sts, char *out, size_t cap)
{
    unsigned char key[96];
    int n = b64_decode(key_b64, key, sizeof key);
    if (n <= 0)
        return -1;
    return hmac_b64(key, n, sts, out, cap);
}

/* ---------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------- */

static int table_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 3 || n > 63 || !isalpha((unsigned char)t[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]))
            return 0;
    return strcasecmp(t, "tables") != 0;
}

int pub_azure_check(const pub_azure_options *o, char *err, size_t cap)
{
    unsigned char key[96];
    const char *e = o->endpoint;
    if (strncmp(e, "https://", 8) != 0 && strncmp(e, "http://", 7) != 0) {
        snprintf(err, cap,
                 "[azure] endpoint = '%s': expected https://ACCOUNT.table.core."
                 "windows.net or an emulator URL such as "
                 "http://127.0.0.1:10002/devstoreaccount1",
                 e);
        return -1;
    }
    if (strchr(e, '?') || strchr(e, '#') || strchr(e, ' ')) {
        /* A pasted SAS URL carries its signature in the query: quote only what comes before. */
        size_t n = strcspn(e, "?#");
        snprintf(err, cap,
                 "[azure] endpoint = '%.*s%s': no query, fragment or spaces (put a SAS "
                 "token in sas)",
                 (int)n, e, e[n] ? "?********" : "");
        return -1;
    }
    if (!o->key[0] && !o->sas[0]) {
        snprintf(err, cap, "[azure] needs key, key_file or sas");
        return -1;
    }
    if (o->key[0] && o->sas[0]) {
        snprintf(err, cap, "[azure] set key (or key_file) or sas, not both");
        return -1;
    }
    if (o->key[0]) {
        if (!o->account[0]) {
            snprintf(err, cap, "[azure] key needs account (the storage account name)");
            return -1;
        }
        /* a storage account key is 64 random bytes; anything else is a paste gone wrong */
        if (b64_decode(o->key, key, sizeof key) != PUB_AZURE_KEY_BYTES) {
            snprintf(err, cap, "[azure] key: expected the base64 account key (%d characters, "
                               "%d bytes), got %zu characters",
                     PUB_AZURE_KEY_B64, PUB_AZURE_KEY_BYTES, strlen(o->key));
            return -1;
        }
    }
    for (const char *p = o->sas; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == '#') {
            snprintf(err, cap, "[azure] sas: expected a URL query string (sv=...&sig=...)");
            return -1;
        }
    }
    for (const char *p = o->account; *p; p++) {
        if (!isalnum((unsigned char)*p)) {
            snprintf(err, cap, "[azure] account = '%s': expected letters and digits", o->account);
            return -1;
        }
    }
    if (!table_name_ok(o->table)) {
        snprintf(err, cap,
                 "[azure] table = '%s': expected a letter followed by 2 to 62 letters "
                 "or digits",
                 o->table);
        return -1;
    }
    if (o->batch < 1 || o->batch > PUB_AZURE_BATCH_MAX || o->parallel < 1 ||
        o->parallel > PUB_AZURE_PARALLEL_MAX || o->timeout_ms < 1000 ||
        (o->rate == OUTBOX_INTERVAL && o->interval_s < 1)) {
        snprintf(err, cap, "[azure] batch, parallel, timeout or interval out of range");
        return -1;
    }
    return 0;
}

int pub_azure_options_from(const config *c, pub_azure_options *o, char *err, size_t cap)
{
    memset(o, 0, sizeof *o);
    if (!c->azure_endpoint[0] || !c->azure_enabled)
        return 0;
    snprintf(o->endpoint, sizeof o->endpoint, "%s", c->azure_endpoint);
    snprintf(o->account, sizeof o->account, "%s", c->azure_account);
    snprintf(o->key, sizeof o->key, "%s", c->azure_key);
    snprintf(o->sas, sizeof o->sas, "%s", c->azure_sas[0] == '?' ? c->azure_sas + 1 : c->azure_sas);
    snprintf(o->table, sizeof o->table, "%s", c->azure_table);
    o->partition_hour = c->azure_partition == 1;
    o->rate = (outbox_rate)c->azure_rate;
    o->interval_s = c->azure_interval / 1000;
    o->batch = (int)c->azure_batch;
    o->parallel = (int)c->azure_parallel;
    o->timeout_ms = c->azure_timeout;
    o->flush_ms = c->azure_flush;
    if (c->azure_key_file[0]) {
        char line[sizeof o->key + 64];
        if (c->azure_key[0]) {
            snprintf(err, cap, "[azure] set key or key_file, not both");
            return -1;
        }
        /* the reader of every *_file secret: a NUL, an empty or a directory are named too */
        if (config_read_secret("[azure] key_file", c->azure_key_file, line, sizeof line, err, cap) <
            0)
            return -1;
        size_t n = strlen(line);
        while (n > 0 && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (n == 0 || n >= sizeof o->key) {
            OPENSSL_cleanse(line, sizeof line);
            snprintf(err, cap,
                     "[azure] key_file = '%s': expected the base64 account key on the "
                     "first line",
                     c->azure_key_file);
            return -1;
        }
        memcpy(o->key, line, n + 1);
        OPENSSL_cleanse(line, sizeof line);
    }
    return pub_azure_check(o, err, cap) < 0 ? -1 : 1;
}

/* ---------------------------------------------------------------------------------------------
 * Entities
 * ------------------------------------------------------------------------------------------- */

/* Azure forbids / \ # ? and control characters in keys; meter names never hold them, but a
 * batch that would carry one is refused here rather than by the service. */
static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > AZ_KEY_MAX)
        return 0;
    for (const char *p = k; *p; p++)
        if (*p == '/' || *p == '\\' || *p == '#' || *p == '?' || (unsigned char)*p < 0x20 ||
            *p == 0x7f || *p == '\'')
            return 0;
    return 1;
}

/* PartitionKey: the meter and its UTC day (or hour), so one transaction never spans two. */
static void partition_key(const pub_azure *az, const char *mname, int64_t ts, char *out, size_t cap)
{
    civil_tm u;
    civil_utc(ts, &u);
    if (az->o.partition_hour)
        snprintf(out, cap, "%s-%04d%02d%02d%02d", mname, u.year, u.month, u.day, u.hour);
    else
        snprintf(out, cap, "%s-%04d%02d%02d", mname, u.year, u.month, u.day);
}

/* RowKey: fixed-width UTC time, so rows sort by time inside the day's partition. */
static void row_key(int64_t ts, char *out, size_t cap)
{
    civil_tm u;
    civil_utc(ts, &u);
    snprintf(out, cap, "%04d%02d%02dT%02d%02d%02dZ", u.year, u.month, u.day, u.hour, u.minute,
             u.second);
}

typedef struct ent {
    buf b;
    int props;
} ent;

static void prop_raw(ent *e, const char *name, const char *json, const char *type)
{
    char tmp[256];
    e->props++;
    snprintf(tmp, sizeof tmp, ",\"%s\":%s", name, json);
    buf_str(&e->b, tmp);
    if (type) {
        snprintf(tmp, sizeof tmp, ",\"%s@odata.type\":\"%s\"", name, type);
        buf_str(&e->b, tmp);
    }
}

/* A number with a non-zero fraction is an Edm.Double by itself (Azure and Azurite alike); a whole
 * one would be taken for an Edm.Int32, so only those carry the annotation. */
static void prop_double(ent *e, const char *name, int64_t v, int dec)
{
    char num[48];
    int64_t p = 1;
    if (v == STORE_NULL)
        return;
    for (int i = 0; i < dec; i++)
        p *= 10;
    fixed(num, sizeof num, v, dec);
    prop_raw(e, name, num, v % p == 0 ? "Edm.Double" : NULL);
}

/* The mean of a stat to 3 more decimals than the unit's own. */
static void prop_mean(ent *e, const char *name, const store_stat *st, int dec)
{
    if (st->n <= 0)
        return;
    __int128 scaled = (__int128)st->sum * 1000 / st->n;
    if (scaled > INT64_MAX || scaled < -INT64_MAX)
        return;
    prop_double(e, name, (int64_t)scaled, dec + 3);
}

static const char *const energy_name[STORE_E_COUNT] = {
    "import", "import_t1", "import_t2", "export", "export_t1", "export_t2", "gas", "water", "heat"};
static const char *const energy_unit[STORE_E_COUNT] = {"kWh", "kWh", "kWh", "kWh", "kWh",
                                                       "kWh", "m3",  "m3",  "GJ"};
static const char *const q_name[STORE_Q_COUNT] = {
    "power_W",      "power_l1_W",   "power_l2_W",   "power_l3_W",   "voltage_l1_V",
    "voltage_l2_V", "voltage_l3_V", "current_l1_A", "current_l2_A", "current_l3_A"};
static const int q_dec[STORE_Q_COUNT] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2}; /* W, dV, cA */

/* The entity of one point as JSON into e. Returns 0 or -1 (too big / too many properties). */
static int entity(pub_azure *az, const char *mname, const store_point *p, ent *e)
{
    char pk[AZ_KEY_MAX + 1], rk[32], t[64], js[2 * AZ_KEY_MAX + 64], name[64];
    partition_key(az, mname, p->ts, pk, sizeof pk);
    row_key(p->ts, rk, sizeof rk);
    if (!key_ok(pk) || !key_ok(rk))
        return -1;
    e->props = 2;
    snprintf(js, sizeof js, "{\"PartitionKey\":\"%s\",\"RowKey\":\"%s\"", pk, rk);
    buf_str(&e->b, js);
    t[0] = '"';
    size_t tn = civil_format_utc(p->ts, t + 1, sizeof t - 2);
    t[tn + 1] = '"';
    t[tn + 2] = '\0';
    prop_raw(e, "Time", t, "Edm.DateTime");
    snprintf(t, sizeof t, "\"%" PRId64 "\"", p->ts);
    prop_raw(e, "Unix", t, "Edm.Int64");
    snprintf(js, sizeof js, "\"%s\"", mname);
    prop_raw(e, "Meter", js, NULL);
    if (az->o.rate != OUTBOX_MINUTE) {
        /* registers: Wh, dm3 and MJ are printed as kWh, m3 and GJ */
        for (int i = 0; i < STORE_E_COUNT; i++) {
            snprintf(name, sizeof name, "%s_%s", energy_name[i], energy_unit[i]);
            prop_double(e, name, p->counter[i], 3);
        }
        for (int i = 0; i < STORE_Q_COUNT; i++)
            if (p->q[i].n > 0)
                prop_double(e, q_name[i], p->q[i].sum, q_dec[i]);
        if (p->tariff >= 0) {
            snprintf(t, sizeof t, "%d", p->tariff);
            prop_raw(e, "tariff", t, "Edm.Int32");
        }
    } else {
        /* a minute: readings in it, energy used in it, power and the others as mean/min/max */
        snprintf(t, sizeof t, "%" PRId64, p->n);
        prop_raw(e, "n", t, "Edm.Int32");
        for (int i = 0; i < STORE_E_COUNT; i++) {
            snprintf(name, sizeof name, "%s_%s", energy_name[i], energy_unit[i]);
            prop_double(e, name, p->energy[i], 3);
        }
        for (int i = 0; i < STORE_Q_COUNT; i++) {
            const store_stat *st = &p->q[i];
            if (st->n <= 0)
                continue;
            prop_mean(e, q_name[i], st, q_dec[i]);
            snprintf(name, sizeof name, "%s_min", q_name[i]);
            prop_double(e, name, st->min, q_dec[i]);
            snprintf(name, sizeof name, "%s_max", q_name[i]);
            prop_double(e, name, st->max, q_dec[i]);
        }
    }
    buf_str(&e->b, "}");
    if (e->b.overflow || e->props > AZ_PROPS_MAX)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    az_req *r = user;
    size_t len = size * n;
    if (buf_add(&r->resp, data, len) < 0)
        return 0; /* too big: curl fails the transfer, we retry */
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    az_req *r = user;
    size_t len = size * n;
    header_value(data, len, "x-ms-error-code", r->err_code, sizeof r->err_code);
    header_value(data, len, "Date", r->date, sizeof r->date);
    return len;
}

static void req_free(az_req *r)
{
    if (!r)
        return;
    if (r->easy)
        r->az->cu->easy_cleanup(r->easy);
    r->az->cu->slist_free_all(r->hdr);
    buf_free(&r->body);
    buf_free(&r->resp);
    free(r);
}

static int add_header(az_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_header(az_req *r, const char *fmt, ...)
{
    char line[PUB_AZURE_URL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct curl_slist *l = r->az->cu->slist_append(r->hdr, line);
    if (!l)
        return -1;
    r->hdr = l;
    return 0;
}

static void on_done(void *user, CURL *easy, CURLcode cc);

/* Signs and starts r: POST {endpoint}{path} with the body and content type given. */
static int req_start(pub_azure *az, az_req *r, const char *path, const char *ctype)
{
    char url[PUB_AZURE_URL_MAX], date[64], sts[1024], sig[128];
    int n = snprintf(url, sizeof url, "%s%s%s%s", az->o.endpoint, path, az->o.sas[0] ? "?" : "",
                     az->o.sas);
    if (n < 0 || (size_t)n >= sizeof url)
        return -ENAMETOOLONG;
    r->easy = az->cu->easy_init();
    if (!r->easy)
        return -ENOMEM;
    /* signed with the current time at every attempt; corrected by the server's clock if ours is
     * off (Azure refuses a Date more than 15 minutes away from its own) */
    rfc1123(wall_s() + az->skew_s, date, sizeof date);
    int bad = add_header(r, "x-ms-date: %s", date) || add_header(r, "Date: %s", date) ||
              add_header(r, "x-ms-version: %s", AZ_VERSION) ||
              add_header(r, "DataServiceVersion: 3.0") ||
              add_header(r, "MaxDataServiceVersion: 3.0;NetFx") ||
              add_header(r, "Accept: application/json;odata=nometadata") ||
              add_header(r, "Content-Type: %s", ctype) || add_header(r, "Expect:");
    if (!bad && r->kind == AZ_REQ_TABLE)
        bad = add_header(r, "Prefer: return-no-content");
    if (!bad && !az->o.sas[0]) {
        /* Table service SharedKey: VERB, Content-MD5, Content-Type, Date, /account/path */
        snprintf(sts, sizeof sts, "POST\n\n%s\n%s\n/%s%s%s", ctype, date, az->o.account,
                 az->url_path, path);
        if (hmac_b64(az->key, az->keylen, sts, sig, sizeof sig) < 0)
            return -EINVAL;
        bad = add_header(r, "Authorization: SharedKey %s:%s", az->o.account, sig);
    }
    if (bad)
        return -ENOMEM;
    CURL *e = r->easy;
    az->cu->easy_setopt(e, CURLOPT_URL, url);
    az->cu->easy_setopt(e, CURLOPT_POST, 1L);
    az->cu->easy_setopt(e, CURLOPT_POSTFIELDS, r->body.p ? r->body.p : "");
    az->cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    az->cu->easy_setopt(e, CURLOPT_HTTPHEADER, r->hdr);
    az->cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    az->cu->easy_setopt(e, CURLOPT_WRITEDATA, r);
    az->cu->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    az->cu->easy_setopt(e, CURLOPT_HEADERDATA, r);
    az->cu->easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    az->cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    az->cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)az->o.timeout_ms);
    az->cu->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                        (long)(az->o.timeout_ms < 10000 ? az->o.timeout_ms : 10000));
    az->cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    az->cu->easy_setopt(e, CURLOPT_USERAGENT, "p1d");
    az->cu->easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1); /* Table: HTTP/1.1 */
    if (curl_loop_add(az->cl, e, on_done, r) < 0)
        return -EIO;
    r->sent_ms = loop_now_ms();
    r->next = az->reqs;
    az->reqs = r;
    az->inflight++;
    az->st.requests++;
    az->st.state = PUB_SENDING;
    return 0;
}

static void schedule(pub_azure *az, int64_t ms);
static void pump(pub_azure *az);

static void create_table(pub_azure *az)
{
    char body[128];
    az_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->az = az;
    r->kind = AZ_REQ_TABLE;
    buf_init(&r->body, 256);
    buf_init(&r->resp, PUB_AZURE_RESPONSE_MAX);
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", az->o.table);
    buf_str(&r->body, body);
    int rc = req_start(az, r, "/Tables", "application/json");
    if (rc < 0) {
        trouble(az, LOG_LEVEL_ERROR, "cannot start a request: %s", strerror(-rc));
        req_free(r);
        schedule(az, PUB_AZURE_BACKOFF_MAX_MS);
        return;
    }
    az->table_inflight = 1;
}

/* Builds and starts the next batch of meter m: up to o.batch points after m->sent, all in the
 * partition (UTC day) of the first. Returns 1 started, 0 nothing to send, negative on error. */
static int send_batch(pub_azure *az, size_t mi, store_point *pts)
{
    az_meter *m = &az->meters[mi];
    int64_t after = m->have_sent ? m->sent : INT64_MIN;
    int single = m->have_single && (m->have_sent ? m->sent : outbox_cursor(az->ob, m->name)) <
                                       m->single_until;
    int n = outbox_fetch_after(az->ob, m->name, after, pts, single ? 1 : (size_t)az->o.batch);
    if (n <= 0) {
        if (n < 0)
            trouble(az, LOG_LEVEL_ERROR, "%s: cannot read the store: %s", m->name, strerror(-n));
        return n;
    }
    char pk0[AZ_KEY_MAX + 1], pk[AZ_KEY_MAX + 1];
    partition_key(az, m->name, pts[0].ts, pk0, sizeof pk0);
    partition_key(az, m->name, pts[n - 1].ts, pk, sizeof pk);
    if (n < az->o.batch && strcmp(pk, pk0) == 0 && az->o.flush_ms > 0 && !single) {
        /* a partial batch waits up to flush_ms for more readings: at one reading a second that
         * is one transaction per minute instead of one per reading (docs/FLEET.md) */
        int64_t now = loop_now_ms();
        if (!m->partial_since)
            m->partial_since = now;
        if (now - m->partial_since < az->o.flush_ms)
            return 0;
    }
    m->partial_since = 0;
    az_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->az = az;
    r->kind = AZ_REQ_BATCH;
    r->meter = mi;
    r->upsert = m->have_upsert && pts[0].ts <= m->upsert_until;
    buf_init(&r->body, PUB_AZURE_BODY_MAX);
    buf_init(&r->resp, PUB_AZURE_RESPONSE_MAX);
    uint64_t tag = rnd(az);
    char batch_b[64], cs_b[64], line[PUB_AZURE_URL_MAX], ctype[96];
    snprintf(batch_b, sizeof batch_b, "batch_%016" PRIx64, tag);
    snprintf(cs_b, sizeof cs_b, "changeset_%016" PRIx64, tag);
    snprintf(line, sizeof line, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n",
             batch_b, cs_b);
    buf_str(&r->body, line);
    ent e;
    buf_init(&e.b, AZ_ENTITY_MAX);
    int used = 0, bad_key = 0;
    for (int i = 0; i < n; i++) {
        partition_key(az, m->name, pts[i].ts, pk, sizeof pk);
        if (strcmp(pk, pk0) != 0)
            break; /* one partition per transaction: the next day goes in the next batch */
        e.b.len = 0;
        e.b.overflow = 0;
        if (e.b.p)
            e.b.p[0] = '\0';
        if (entity(az, m->name, &pts[i], &e) < 0) {
            if (i == 0)
                bad_key = 1;
            break;
        }
        char rk[32];
        row_key(pts[i].ts, rk, sizeof rk);
        size_t mark = r->body.len;
        char op[PUB_AZURE_URL_MAX + 2 * AZ_KEY_MAX];
        int w;
        if (r->upsert) /* InsertOrReplace: PUT to the entity's address */
            w = snprintf(op, sizeof op,
                         "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: "
                         "binary\r\n\r\nPUT %s/%s(PartitionKey='%s',RowKey='%s') HTTP/1.1\r\n"
                         "Content-Type: application/json\r\nAccept: "
                         "application/json;odata=nometadata\r\nDataServiceVersion: 3.0\r\n"
                         "Content-ID: %d\r\n\r\n",
                         cs_b, az->o.endpoint, az->o.table, pk, rk, i + 1);
        else /* Insert: POST to the table, the keys in the body; no entity echoed back */
            w = snprintf(op, sizeof op,
                         "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: "
                         "binary\r\n\r\nPOST %s/%s HTTP/1.1\r\nContent-Type: "
                         "application/json\r\nAccept: application/json;odata=nometadata\r\n"
                         "Prefer: return-no-content\r\nDataServiceVersion: 3.0\r\n"
                         "Content-ID: %d\r\n\r\n",
                         cs_b, az->o.endpoint, az->o.table, i + 1);
        if (w < 0 || (size_t)w >= sizeof op)
            break;
        buf_str(&r->body, op);
        buf_add(&r->body, e.b.p, e.b.len);
        buf_str(&r->body, "\r\n");
        /* keep room for the closing boundaries */
        if (r->body.overflow || r->body.len + 256 > PUB_AZURE_BODY_MAX) {
            r->body.len = mark;
            r->body.overflow = 0;
            break;
        }
        used = i + 1;
    }
    buf_free(&e.b);
    if (used == 0) {
        req_free(r);
        if (bad_key && m->count > 0)
            return 0; /* park only once the batches before it are settled: the cursor moves in order
                       */
        if (bad_key) {
            /* cannot be expressed as an entity at all: park it so the rest can flow; a park that
             * fails (a full disk) is tried again at the next wake, not in a loop now */
            int prc = outbox_park(az->ob, m->name, pts[0].ts, "not representable as an Azure entity");
            if (prc < 0) {
                trouble(az, LOG_LEVEL_ERROR, "%s: cannot park a reading at %" PRId64 ": %s",
                        m->name, pts[0].ts, strerror(-prc));
                return prc;
            }
            az->st.parked++;
            trouble(az, LOG_LEVEL_ERROR, "%s: a reading at %" PRId64 " cannot be an entity; parked",
                    m->name, pts[0].ts);
        }
        return bad_key ? 1 : -EINVAL;
    }
    snprintf(line, sizeof line, "--%s--\r\n--%s--\r\n", cs_b, batch_b);
    buf_str(&r->body, line);
    if (r->body.overflow) {
        req_free(r);
        return -E2BIG;
    }
    r->npoints = used;
    r->first_ts = pts[0].ts;
    r->last_ts = pts[used - 1].ts;
    r->seq = m->next_seq++;
    snprintf(ctype, sizeof ctype, "multipart/mixed; boundary=%s", batch_b);
    int rc = req_start(az, r, "/$batch", ctype);
    if (rc < 0) {
        trouble(az, LOG_LEVEL_ERROR, "cannot start a request: %s", strerror(-rc));
        req_free(r);
        return rc;
    }
    az_slot *sl = &m->fifo[(m->head + m->count) % PUB_AZURE_PARALLEL_MAX];
    memset(sl, 0, sizeof *sl);
    sl->seq = r->seq;
    sl->last_ts = r->last_ts;
    sl->state = AZ_PENDING;
    m->count++;
    m->sent = r->last_ts;
    m->have_sent = 1;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Replies
 * ------------------------------------------------------------------------------------------- */

/* Azure's error code from a JSON ({"odata.error":{"code":"..."}}) or XML (<code>..</code>) body
 * starting at s, into out[cap]; "" when none. */
static void error_code(const char *s, char *out, size_t cap)
{
    const char *p;
    out[0] = '\0';
    if (!s)
        return;
    if ((p = strstr(s, "\"code\"")) != NULL) {
        p += 6;
        while (*p == ' ' || *p == ':')
            p++;
        if (*p != '"')
            return;
        p++;
    } else if ((p = strcasestr(s, "<code>")) != NULL) {
        p += 6;
    } else {
        return;
    }
    size_t n = 0;
    while (p[n] && n + 1 < cap && (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.'))
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

static az_outcome by_status(long status, const char *code)
{
    /* 401 too: Azure answers 403 to a wrong key or SAS, but a missing or unusable one (a
     * gateway, NoAuthenticationInformation) is a 401; never the batch's fault */
    if (status == 401 || status == 403)
        return AZ_AUTH;
    if (status == 404)
        return AZ_NO_TABLE;
    if (status == 408 || status == 429 || status >= 500 || status < 100)
        return AZ_RETRY;
    if (status >= 400)
        return code[0] ? AZ_PARK : AZ_RETRY; /* a 4xx without Azure's code: not Azure talking */
    return AZ_RETRY;
}

/* An Insert batch refused because an entity exists: the batch wrote nothing; resend it as
 * InsertOrReplace. */
static int already_exists(const az_req *r, long status, const char *code)
{
    return !r->upsert && status == 409 && strcmp(code, "EntityAlreadyExists") == 0;
}

/* Judges a $batch reply: 202 with a changeset response holding one 2xx per operation, or the
 * failing operation's status and code. */
static az_outcome judge_batch(az_req *r, long status, char *code, size_t cap, char *why,
                              size_t wcap)
{
    const char *body = r->resp.p ? r->resp.p : "";
    code[0] = '\0';
    if (status != 202) {
        snprintf(code, cap, "%s", r->err_code);
        if (!code[0] && status >= 400)
            error_code(body, code, cap);
        snprintf(why, wcap, "HTTP %ld%s%s", status, code[0] ? " " : "", code);
        if (status >= 200 && status < 300) {
            snprintf(why, wcap, "unexpected reply (HTTP %ld, not 202)", status);
            return AZ_RETRY;
        }
        return already_exists(r, status, code) ? AZ_EXISTS : by_status(status, code);
    }
    int ok = 0;
    const char *p = body;
    while ((p = strstr(p, "HTTP/1.1 ")) != NULL) {
        long st = strtol(p + 9, NULL, 10);
        if (st >= 200 && st < 300) {
            ok++;
        } else {
            error_code(p, code, cap);
            snprintf(why, wcap, "operation refused: HTTP %ld%s%s", st, code[0] ? " " : "", code);
            if (already_exists(r, st, code))
                return AZ_EXISTS;
            az_outcome oc = st >= 100 ? by_status(st, code) : AZ_RETRY;
            return oc == AZ_PARK && r->npoints > 1 ? AZ_SPLIT : oc;
        }
        p += 9;
    }
    /* the reply must close its batch: a truncated one is not a confirmation */
    if (ok != r->npoints || !strstr(body, "--batchresponse") ||
        !strstr(body, "--changesetresponse")) {
        snprintf(why, wcap, "unexpected reply (HTTP 202 confirming %d of %d operations)", ok,
                 r->npoints);
        return AZ_RETRY;
    }
    return AZ_OK;
}

static void note_server_date(pub_azure *az, const az_req *r)
{
    int64_t t;
    if (!r->date[0] || parse_rfc1123(r->date, &t) < 0)
        return;
    int64_t skew = t - wall_s();
    if (skew > AZ_SKEW_TOLERANCE_S || skew < -AZ_SKEW_TOLERANCE_S) {
        if (!az->skew_logged)
            log_warn("azure: our clock is %" PRId64 " s off the server's; signing requests with "
                     "the server's time",
                     -skew);
        az->skew_logged = 1;
        az->skew_s = skew;
    } else {
        az->skew_s = 0;
    }
}

static void backoff(pub_azure *az, int64_t ms)
{
    int64_t now = loop_now_ms();
    if (az->backoff_until < now + ms)
        az->backoff_until = now + ms;
}

/* The next delay after a failure of a request sent at sent_ms: doubling from
 * PUB_AZURE_BACKOFF_MIN_MS, capped, with 50..100% jitter. Once per round: the other requests of
 * [azure] parallel, sent before the wait it set was over, fail for the same reason and add no
 * wait (0). (It grew once per failure of a request sent after the first answer came, which a
 * busy machine does when it starts a round's requests over several turns: 1, 2, then 8 s.) */
static int64_t next_delay(pub_azure *az, int64_t sent_ms)
{
    if (az->backoff_ms && sent_ms < az->backoff_at)
        return 0;
    az->backoff_ms = az->backoff_ms ? az->backoff_ms * 2 : PUB_AZURE_BACKOFF_MIN_MS;
    if (az->backoff_ms > PUB_AZURE_BACKOFF_MAX_MS)
        az->backoff_ms = PUB_AZURE_BACKOFF_MAX_MS;
    int64_t delay = az->backoff_ms / 2 + (int64_t)(rnd(az) % (uint64_t)(az->backoff_ms / 2 + 1));
    az->backoff_at = loop_now_ms() + delay;
    return delay;
}

/* Applies the outcome of a completed batch to its meter, acknowledging in order. Returns the
 * batches whose delivery was recorded now (0: none, such as one finished before an earlier batch
 * of its meter), or the negative errno of a delivery the database did not record (the batch goes
 * out again). */
static int settle(pub_azure *az, az_meter *m, uint64_t seq, az_outcome oc, const char *reason)
{
    int failed = 0, recorded = 0;
    for (size_t k = 0; k < m->count; k++) {
        az_slot *sl = &m->fifo[(m->head + k) % PUB_AZURE_PARALLEL_MAX];
        if (sl->seq == seq) {
            sl->state = oc;
            size_t n = strnlen(reason, sizeof sl->reason - 1); /* the reason is cut to fit */
            memcpy(sl->reason, reason, n);
            sl->reason[n] = '\0';
        }
    }
    while (m->count) {
        az_slot *sl = &m->fifo[m->head];
        if (sl->state == AZ_PENDING)
            break;
        if (!m->rewind) {
            int rc = 0;
            if (sl->state == AZ_OK || sl->state == AZ_PARK) {
                rc = sl->state == AZ_OK ? outbox_ack(az->ob, m->name, sl->last_ts)
                                        : outbox_park(az->ob, m->name, sl->last_ts, sl->reason);
                recorded += rc == 0;
            } else if (sl->state == AZ_EXISTS || sl->state == AZ_SPLIT) {
                m->rewind = 1; /* not a failure: resent at once (as InsertOrReplace, or split) */
            } else {
                m->rewind = 1;
                outbox_count_retry(az->ob, m->name);
            }
            if (rc < 0) {
                trouble(az, LOG_LEVEL_ERROR,
                        "%s: cannot record the delivery in the database: %s; sent again with "
                        "backoff, nothing is dropped",
                        m->name, strerror(-rc));
                m->rewind = 1;
                failed = failed ? failed : rc;
                /* it landed: the resend must not meet its own entities as Insert */
                if (!m->have_upsert || m->upsert_until < m->sent)
                    m->upsert_until = m->sent;
                m->have_upsert = 1;
            }
        }
        m->head = (m->head + 1) % PUB_AZURE_PARALLEL_MAX;
        m->count--;
    }
    if (m->rewind && m->count == 0) {
        m->have_sent = 0; /* resend from the cursor: InsertOrReplace makes repeats harmless */
        m->rewind = 0;
    }
    return failed ? failed : recorded;
}

static int meter_fn(void *user, const store_meter_info *mi);

/* The table request failed: no batch could go out, so it is a failed attempt for every meter
 * with readings waiting (also when Azure was never reached since the start). */
static void count_table_retry(pub_azure *az)
{
    if (store_meters(az->s, meter_fn, az) < 0)
        return;
    for (size_t i = 0; i < az->nmeters; i++) {
        store_point next;
        if (outbox_fetch(az->ob, az->meters[i].name, &next, 1) > 0)
            outbox_count_retry(az->ob, az->meters[i].name);
    }
}

static void finish(pub_azure *az, az_req *r, CURLcode cc)
{
    int settled = 1; /* a table request: nothing to record */
    long status = 0;
    char code[64] = "", why[PUB_ERR_MAX] = "";
    az_outcome oc;
    az->cu->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        curl_off_t total = 0, first = 0;
        az->cu->easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total);
        az->cu->easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
        log_debug("azure: %s of %d: HTTP %ld, first byte after %" PRId64 " us, done after %" PRId64
                  " us, %zu bytes sent",
                  r->kind == AZ_REQ_TABLE ? "create table" : "batch", r->npoints, status,
                  (int64_t)first, (int64_t)total, r->body.len);
    }
    note_server_date(az, r);
    if (cc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", r->curl_err[0] ? r->curl_err : az->cu->easy_strerror(cc));
        oc = AZ_RETRY;
    } else if (r->kind == AZ_REQ_TABLE) {
        snprintf(code, sizeof code, "%s", r->err_code);
        if (!code[0])
            error_code(r->resp.p, code, sizeof code);
        snprintf(why, sizeof why, "creating table %s: HTTP %ld%s%s", az->o.table, status,
                 code[0] ? " " : "", code);
        oc = status == 201 || status == 204 || status == 409 ? AZ_OK : by_status(status, code);
        if (oc == AZ_NO_TABLE || oc == AZ_PARK)
            oc = AZ_RETRY; /* a table we cannot create: nothing to park, wait and retry */
    } else {
        oc = judge_batch(r, status, code, sizeof code, why, sizeof why);
        az_meter *m = &az->meters[r->meter];
        if (oc == AZ_SPLIT && m->refused_singles >= 2)
            oc = AZ_PARK; /* every reading is refused alone too: splitting only multiplies them */
        if (oc == AZ_OK)
            m->refused_singles = 0;
        else if (oc == AZ_PARK && r->npoints == 1 && ++m->refused_singles >= 2)
            m->have_single = 0;
    }

    if (oc == AZ_OK || oc == AZ_PARK)
        az->st.last_ok_ms = oc == AZ_OK ? loop_wall_ms() : az->st.last_ok_ms;
    if (oc != AZ_OK && oc != AZ_EXISTS)
        az->st.failures++;
    if (r->kind == AZ_REQ_TABLE) {
        az->table_inflight = 0;
        if (oc == AZ_OK) {
            az->table_ready = 1;
            log_debug("azure: table %s ready (HTTP %ld)", az->o.table, status);
        } else {
            count_table_retry(az);
        }
    } else {
        az_meter *m = &az->meters[r->meter];
        if (oc != AZ_OK && oc != AZ_PARK) {
            /* a failed batch has waited its flush: it is sent again (from the cursor, with
             * whatever came since) after the backoff, not after another flush */
            int64_t waited = loop_now_ms() - az->o.flush_ms;
            if (!m->partial_since || m->partial_since > waited)
                m->partial_since = waited ? waited : 1;
        }
        if (oc == AZ_OK) {
            az->st.delivered += (uint64_t)r->npoints;
        } else if (oc == AZ_PARK) {
            az->st.parked += (uint64_t)r->npoints;
            trouble(az, LOG_LEVEL_ERROR,
                    "%s: Azure refused %d readings (%s); parked in table outbox_parked, not "
                    "retried",
                    m->name, r->npoints, why);
        } else if (oc == AZ_NO_TABLE) {
            az->table_ready = 0;
        }
        if (oc != AZ_OK && oc != AZ_PARK) {
            /* this batch and every one sent after it may have landed (a lost reply, a 409): they
             * are resent from the cursor, as InsertOrReplace up to the last one handed out */
            if (!m->have_upsert || m->upsert_until < m->sent)
                m->upsert_until = m->sent;
            m->have_upsert = 1;
        }
        if (oc == AZ_SPLIT) {
            trouble(az, LOG_LEVEL_WARN,
                    "%s: Azure refused one entity of a batch of %d (%s); sending those readings "
                    "one per batch so that only the refused one is parked",
                    m->name, r->npoints, why);
            if (!m->have_single || m->single_until < r->last_ts)
                m->single_until = r->last_ts;
            m->have_single = 1;
        }
        if (oc == AZ_EXISTS)
            log_debug("azure: %s: %d readings from %" PRId64 " exist already (%s); sending them "
                      "again as InsertOrReplace",
                      m->name, r->npoints, r->first_ts, why);
        settled = settle(az, m, r->seq, oc, why);
    }
    if (settled < 0 && (oc == AZ_OK || oc == AZ_PARK)) {
        /* Azure took it, the database did not record it (disk full, read-only): resending at
         * once would loop; logged by settle */
        az->st.state = PUB_RETRYING;
        backoff(az, next_delay(az, r->sent_ms));
        return;
    }
    switch (oc) {
    case AZ_OK:
        if (settled == 0)
            break; /* not on record yet (an earlier batch is pending, or failed): no verdict */
        az->backoff_ms = 0;
        recovered(az);
        break;
    case AZ_PARK:
        az->backoff_ms = 0;
        break;
    case AZ_EXISTS:
    case AZ_SPLIT:
        break; /* no backoff: the resend follows at once */
    case AZ_AUTH:
        az->st.state = PUB_AUTH_FAILED;
        trouble(az, LOG_LEVEL_ERROR,
                "authentication failed (%s): check [azure] account and key (or sas); nothing is "
                "dropped, next attempt in %d minutes or on SIGHUP",
                why, PUB_AZURE_AUTH_BACKOFF_MS / 60000);
        backoff(az, PUB_AZURE_AUTH_BACKOFF_MS);
        break;
    case AZ_NO_TABLE:
        log_info("azure: table %s missing (%s); creating it", az->o.table, why);
        backoff(az, next_delay(az, r->sent_ms));
        break;
    default: {
        int64_t d = next_delay(az, r->sent_ms);
        az->st.state = PUB_RETRYING;
        trouble(az, LOG_LEVEL_WARN, "%s %s: %s; retrying (backoff up to %d s), nothing is dropped",
                r->kind == AZ_REQ_TABLE ? "table request to" : "batch to", az->o.endpoint, why,
                PUB_AZURE_BACKOFF_MAX_MS / 1000);
        backoff(az, d);
        break;
    }
    }
}

/* curl_loop reports the end of r's transfer; its easy handle already left the multi handle. */
static void on_done(void *user, CURL *easy, CURLcode cc)
{
    az_req *r = user;
    pub_azure *az = r->az;
    (void)easy;
    for (az_req **pp = &az->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    az->inflight--;
    finish(az, r, cc);
    req_free(r);
    if (az->inflight == 0 && az->st.state == PUB_SENDING)
        az->st.state = PUB_IDLE;
    pump(az);
}

/* ---------------------------------------------------------------------------------------------
 * Scheduling
 * ------------------------------------------------------------------------------------------- */

static void schedule(pub_azure *az, int64_t ms)
{
    loop_timer_arm(az->wake, ms);
}

static int meter_fn(void *user, const store_meter_info *mi)
{
    pub_azure *az = user;
    for (size_t i = 0; i < az->nmeters; i++)
        if (strcmp(az->meters[i].name, mi->name) == 0)
            return 0;
    if (az->nmeters == az->capmeters) {
        size_t cap = az->capmeters ? az->capmeters * 2 : 8;
        az_meter *l = realloc(az->meters, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        az->meters = l;
        az->capmeters = cap;
    }
    az_meter *m = &az->meters[az->nmeters++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", mi->name);
    return 0;
}

static void pump(pub_azure *az)
{
    if (az->stopping)
        return;
    int64_t now = loop_now_ms();
    if (now < az->backoff_until) {
        schedule(az, az->backoff_until - now);
        return;
    }
    if (az->st.state == PUB_AUTH_FAILED || az->st.state == PUB_RETRYING)
        az->st.state = az->inflight ? PUB_SENDING : PUB_IDLE;
    if (!az->table_ready) {
        if (!az->table_inflight && az->inflight == 0)
            create_table(az);
        return;
    }
    if (!az->nmeters || now - az->meters_at >= AZ_METERS_REFRESH_MS) {
        az->meters_at = now;
        int rc = store_meters(az->s, meter_fn, az);
        if (rc < 0)
            trouble(az, LOG_LEVEL_ERROR, "cannot list the store's meters: %s", strerror(-rc));
    }
    store_point *pts = NULL;
    for (size_t k = 0; k < az->nmeters && az->inflight < az->o.parallel; k++) {
        size_t mi = (az->rr + k) % az->nmeters;
        az_meter *m = &az->meters[mi];
        while (az->inflight < az->o.parallel && !m->caught_up && !m->rewind &&
               m->count < (size_t)az->o.parallel && !az->stopping &&
               loop_now_ms() >= az->backoff_until && az->table_ready) {
            if (!pts && !(pts = malloc(sizeof *pts * PUB_AZURE_BATCH_MAX)))
                break;
            int rc = send_batch(az, mi, pts);
            if (rc <= 0) {
                m->caught_up = 1;
                break;
            }
        }
    }
    free(pts);
    if (az->nmeters)
        az->rr = (az->rr + 1) % az->nmeters;
    if (az->inflight == 0 && az->st.state == PUB_SENDING)
        az->st.state = PUB_IDLE;
    schedule(az, az->poll_ms);
}

static void on_wake(void *user)
{
    pub_azure *az = user;
    for (size_t i = 0; i < az->nmeters; i++)
        az->meters[i].caught_up = 0;
    pump(az);
}

/* ---------------------------------------------------------------------------------------------
 * The pub interface
 * ------------------------------------------------------------------------------------------- */

static int az_lag(void *impl, const char *mname, outbox_lag *out)
{
    pub_azure *az = impl;
    return outbox_lag_get(az->ob, mname, out);
}

static void az_status(void *impl, pub_status *out)
{
    pub_azure *az = impl;
    *out = az->st;
    int64_t left = az->backoff_until - loop_now_ms();
    out->retry_in_ms = left > 0 ? left : 0;
}

static void az_free(void *impl)
{
    pub_azure *az = impl;
    if (!az)
        return;
    az->stopping = 1;
    while (az->reqs) {
        az_req *r = az->reqs;
        az->reqs = r->next;
        curl_loop_remove(az->cl, r->easy);
        req_free(r);
    }
    curl_loop_free(az->cl);
    loop_timer_del(az->wake);
    outbox_free(az->ob);
    free(az->meters);
    OPENSSL_cleanse(az->key, sizeof az->key);
    OPENSSL_cleanse(&az->o, sizeof az->o);
    free(az);
}

pub *pub_azure_new(loop *l, store *s, const pub_azure_options *o, char *err, size_t cap)
{
    if (pub_azure_check(o, err, cap) < 0)
        return NULL;
    char dlerr[PUB_ERR_MAX];
    const dl_curl *cu = dl_curl_load(dlerr, sizeof dlerr);
    if (!cu) {
        snprintf(err, cap, "%s; Azure publishing stays off", dlerr);
        errno = ELIBACC;
        return NULL;
    }
    pub_azure *az = calloc(1, sizeof *az);
    if (!az) {
        snprintf(err, cap, "azure: out of memory");
        return NULL;
    }
    az->cu = cu;
    az->s = s;
    az->o = *o;
    /* the endpoint without a trailing slash; its path (emulators: /ACCOUNT) is signed too */
    size_t n = strlen(az->o.endpoint);
    while (n > 0 && az->o.endpoint[n - 1] == '/')
        az->o.endpoint[--n] = '\0';
    const char *host = strstr(az->o.endpoint, "://") + 3;
    const char *path = strchr(host, '/');
    snprintf(az->url_path, sizeof az->url_path, "%s", path ? path : "");
    if (az->o.key[0])
        az->keylen = b64_decode(az->o.key, az->key, sizeof az->key);
    az->rng = (uint64_t)loop_wall_ms() * 6364136223846793005ULL ^ (uint64_t)getpid() ^ 1;
    az->pub.name = "azure";
    az->pub.impl = az;
    az->pub.lag = az_lag;
    az->pub.status = az_status;
    az->pub.free = az_free;
    /* the cursor belongs to the destination: another account or table starts from the oldest
     * reading the store keeps */
    char obname[sizeof az->o.endpoint + sizeof az->o.table + 16];
    snprintf(obname, sizeof obname, "azure %s/%s", az->o.endpoint, az->o.table);
    az->ob = outbox_new(s, obname, o->rate, o->interval_s, 0, err, cap);
    az->cl = curl_loop_new(l, cu);
    az->wake = loop_timer_new(l, on_wake, az);
    if (!az->ob || !az->cl || !az->wake) {
        if (az->ob)
            snprintf(err, cap, "azure: cannot set up libcurl");
        az_free(az);
        return NULL;
    }
    curl_loop_setopt_long(az->cl, CURLMOPT_MAX_HOST_CONNECTIONS, (long)az->o.parallel);
    if (az->o.flush_ms > 0 && az->o.flush_ms < PUB_AZURE_POLL_MS)
        az->poll_ms = az->o.flush_ms;
    else
        az->poll_ms = PUB_AZURE_POLL_MS;
    schedule(az, 0);
    return &az->pub;
}
