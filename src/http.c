/* http.c: the HTTP API server: libmicrohttpd driven by the daemon's epoll loop, routing, auth,
 * CORS, per-reading response caches and every endpoint (the SSE fan-out lives in http_sse.c). */
#define _GNU_SOURCE /* gmtime_r, accept4-era socket flags */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <microhttpd.h>

#include "civil.h"
#include "homewizard.h"
#include "http_sse.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pub.h"
#include "reading_json.h"
#include "web.h"
#include "worker.h"

#define HTTP_URL_MAX 2048              /* bytes of a request target; longer is 414 */
#define HTTP_HEADERS_MAX 100           /* request header fields; more is 431 */
#define HTTP_CONN_MEMORY (32 * 1024)   /* MHD's per-connection pool: bounds request line+headers */
#define HTTP_HEADER_DEADLINE_MS 10000  /* a request's headers must arrive within this (slowloris) */
#define HTTP_BODY_MIN_RATE 1000       /* bytes/s a request body must average after that (R-U-D-Y) */
#define HTTP_SWEEP_MS 1000             /* how often connections are checked against the deadline */
#define HTTP_BACKLOG 1024              /* listen() backlog: bursts of SSE clients reconnecting */
#define HTTP_JSON_MAX (4u << 20)       /* bytes of one generated JSON body */
#define HTTP_FD_RESERVE 256u           /* descriptors beyond max_connections: sources, store, ... */
#define HTTP_LOG_BURST 5               /* MHD log lines per second before they are counted only */
#define HTTP_STREAM_RESERVE 64         /* connections streams leave to other requests (at most half) */
#define HTTP_EXEMPT_MAX 16             /* entries of [http] per_ip_exempt */
#define HTTP_IP_BUCKETS_MAX (1u << 17) /* hash buckets of the per-address connection counts */

/* History and summary answers in the worker at once (http_jobs); more wait, suspended. */
#define HTTP_JOBS_MAX 16

/* One TCP connection, tracked to cut off clients that send their headers too slowly: MHD's own
 * timeout only measures idleness, and one byte a second is never idle. */
typedef struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    int64_t since_ms;  /* start of the current wait for request headers, or of the body */
    size_t got;        /* bytes of the request body received so far */
    uint8_t waiting;   /* 1 between requests (or before the first), 0 while one is handled */
    uint8_t body;      /* 1 while a request body is received (a route's upload) */
    uint8_t counted;   /* 1: counted in its address's http_ip (max_connections_per_ip) */
    unsigned char addr[16]; /* the client's address when counted (see addr16()) */
    struct http_job *job;   /* its request's answer in the worker or back from it, or NULL */
} http_conn;

/* A client address with connections open, for [http] max_connections_per_ip; in the bucket of its
 * hash, freed when its last connection closes. */
typedef struct http_ip {
    struct http_ip *next;
    unsigned char a[16];
    unsigned n;
} http_ip;

/* An entry of [http] per_ip_exempt: an address and how many of its leading bits must match. */
typedef struct http_prefix {
    unsigned char a[16];
    unsigned bits;
} http_prefix;

/* Per-meter bodies built once per reading; requests then only copy or share them. */
typedef struct http_cache {
    const meter *m;
    uint64_t now_seq;  /* reading the event JSON below was built from; 0 none */
    char *now;         /* {"meter","seq","received","received_ms","reading"}: the SSE data */
    size_t now_len;
    size_t now_split;  /* offset of "reading": where /api/now inserts "age_s" */
    uint64_t hw_seq;
    struct MHD_Response *hw;  /* GET /api/v1/data, shared by every request until the next reading */
    uint64_t p1_seq;
    struct MHD_Response *p1;  /* GET /p1.json */
    uint64_t tg_seq;
    struct MHD_Response *tg;  /* GET /api/v1/telegram */
} http_cache;

struct http {
    loop *l;
    meters *ms;
    http_options o;
    struct MHD_Daemon *d;
    int listen_fd;
    loop_watch *watch;
    loop_timer *timer;   /* MHD's next timeout, or 0 ms after a resume */
    loop_timer *sweep;
    unsigned port;
    int running;         /* inside MHD_run() */
    int kicked;          /* a resume happened while running: run again at once */
    int hooked;          /* 1: the reading hook is registered, 2: the gone hook too */
    http_sse *sse;
    http_cache *cache;
    size_t ncache, capcache;
    http_conn *conns;
    char bearer[sizeof ((http_options *)0)->token + 8];          /* "Bearer <token>" */
    char basic[((sizeof ((http_options *)0)->basic_user +
                 sizeof ((http_options *)0)->basic_pass) * 4) / 3 + 16]; /* "Basic <base64>" */
    char mark_bad, mark_long;  /* addresses returned by the URI logger to flag a request */
    char mark_seen;            /* a request whose headers were seen; answered on the next call */
    log_burst burst; /* MHD's own lines; the count left out is reported by on_sweep() */
    char hostname[256];        /* gethostname(), lowercased: always an allowed Host */
    char refused_host[64];     /* the last Host logged as refused: logged once in a row */
    log_burst refused;         /* refused-Host lines; the count left out: on_sweep() */
    unsigned nconns;           /* connections open */
    http_ip **ips;             /* per-address counts (max_per_ip set); ipmask + 1 buckets */
    size_t ipmask;
    uint32_t ipseed;           /* random: a client cannot pick addresses that share a bucket */
    http_prefix exempt[HTTP_EXEMPT_MAX];
    size_t nexempt;
    unsigned char refused_ip[16]; /* the last address refused by max_per_ip: logged once in a row */
    log_burst refused_conn;    /* its lines; the count left out: on_sweep() */
    log_burst identify;        /* PUT /api/v1/identify lines; the count left out: on_sweep() */
    uint64_t refused_total;    /* connections refused by max_per_ip (/metrics) */
    int at_limit;              /* max_connections reached and logged; reset at 90 % */
    /* libmicrohttpd ran out of descriptors (EMFILE). 1: it took its listening socket out of its
     * epoll set until a connection closes, and puts it back only in a later MHD_run(), which no
     * event would bring once the last connection is gone: run each second until it accepts.
     * 2: it had no connection to wait for and leaves the socket in, readable: its epoll is not
     * watched for a second (watch_off), or the loop would spin on the refused accept(). */
    int accept_paused;
    int watch_off;
    /* A history or summary answer is built whole before it is sent (0.25 s for a day of raw
     * readings here, seconds on a Raspberry Pi). With o.jobs it is built on the worker thread
     * (jobs): its connection is suspended meanwhile (http_conn.job), and when the worker holds
     * HTTP_JOBS_MAX the next ones wait suspended (deferred) until one comes back. Without, on
     * the loop, many asked at once (a Grafana board) would stop the meters' input for their
     * sum, so one is answered per MHD_run(); the others wait suspended (deferred) and are
     * resumed at the next run, 0 ms later, after the loop has served the other descriptors. */
    worker *jobs;                     /* NULL: answered on the loop */
    int heavy_ran;                    /* one was answered in this MHD_run() */
    int stopping;                     /* http_free(): deferred ones get 503 */
    struct MHD_Connection **deferred; /* suspended until the next run */
    size_t ndeferred, capdeferred;
};

/* The query of a request copied for the worker thread (http_req.args): n pairs in the order
 * libmicrohttpd keeps them (value NULL: a key without '='). */
struct http_args {
    size_t n;
    char **key, **value;
};

/* A request answered on the worker thread: a copy of it (one block with its strings), taken
 * from the loop's connection c, which stays suspended until the answer is back. */
typedef struct http_job {
    worker_job wj; /* first: what the worker hands back */
    http *h;
    struct MHD_Connection *c;
    int (*answer)(void *user, const http_req *req, const void *ctx, http_reply *out);
    void *answer_user;
    void *ctx; /* http_jobs.take()'s copy of loop state; freed when the job is back */
    struct http_args args;
    http_req req; /* method, path and args point into the block */
    http_reply out;
    int fd;       /* the connection's socket, or -1: the worker looks whether the client left */
    int answered; /* answer() answered (else: not its path, 404) */
    int gone;     /* the client had left when the worker came to it: not built, closed */
    int back;     /* 1: handed back answered; 0 in the worker, or dropped unrun at the stop */
} http_job;

enum route {
    R_NONE,
    R_HW_DEVICE,
    R_HW_DATA,
    R_HW_TELEGRAM,
    R_HW_IDENTIFY,
    R_NOW,
    R_STREAM,
    R_METERS,
    R_METER,
    R_P1JSON,
    R_METRICS,
    R_HEALTHZ,
};

void http_options_default(http_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->listen, sizeof o->listen, "127.0.0.1:8080");
    snprintf(o->cors_origin, sizeof o->cors_origin, "*");
    o->max_connections = 2048;
    o->max_per_ip = 64;
    snprintf(o->per_ip_exempt, sizeof o->per_ip_exempt, "127.0.0.0/8, ::1");
    o->timeout_s = 30;
    o->stale_s = 60;
    o->firmware = P1_VERSION;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* "2024-01-01T11:00:00.123Z" from wall-clock milliseconds. */
static void iso_utc(int64_t ms, char out[48])
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, 48, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Compares a client-supplied credential with the expected one in time independent of where they
 * differ (the loop runs over the expected length whatever the input). */
/* The first port an unprivileged process may bind (net.ipv4.ip_unprivileged_port_start, which
 * also applies to IPv6); 1024 when the kernel does not say. */
static int unprivileged_port_start(void)
{
    int v = 1024;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || v < 0 || v > 65536)
            v = 1024;
        fclose(f);
    }
    return v;
}

static int ct_equal(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned char d = (unsigned char)(gl != el);
    for (size_t i = 0; i < el; i++)
        d |= (unsigned char)((i < gl ? given[i] : 0) ^ expected[i]);
    return d == 0;
}

/* in[0..n) into out[n + 1], ASCII letters lowercased (host names compare without case). */
static void lower_copy(char *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[n] = '\0';
}

static void base64(const char *in, size_t n, char *out, size_t cap)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static const meter *first_meter(const http *h)
{
    return h->ms->n ? h->ms->list[0] : NULL;
}

static http_cache *cache_for(http *h, const meter *m)
{
    for (size_t i = 0; i < h->ncache; i++)
        if (h->cache[i].m == m)
            return &h->cache[i];
    if (h->ncache == h->capcache) {
        size_t cap = h->capcache ? h->capcache * 2 : 4;
        http_cache *c = realloc(h->cache, cap * sizeof *c);
        if (!c)
            return NULL;
        h->cache = c;
        h->capcache = cap;
    }
    http_cache *k = &h->cache[h->ncache++];
    memset(k, 0, sizeof *k);
    k->m = m;
    return k;
}

/* Frees what a cache entry holds; requests still sending a shared body keep their reference. */
static void cache_clear(http_cache *k)
{
    free(k->now);
    if (k->hw)
        MHD_destroy_response(k->hw);
    if (k->p1)
        MHD_destroy_response(k->p1);
    if (k->tg)
        MHD_destroy_response(k->tg);
}

/* ---- responses ---------------------------------------------------------------------------- */

/* Headers of every API response. nosniff: error messages quote the request (a meter name), and
 * a browser must never take a body for HTML or script whatever it holds. */
static void add_common(void *user, struct MHD_Response *r)
{
    http *h = user;
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (h->o.cors_origin[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, h->o.cors_origin);
}

static enum MHD_Result queue_once(struct MHD_Connection *c, unsigned status,
                                  struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A response owning the malloc'd body (MHD frees it), with the common headers. */
static struct MHD_Response *body_response(http *h, char *body, size_t len, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_common(h, r);
    return r;
}

static enum MHD_Result reply_error(http *h, struct MHD_Connection *c, unsigned status,
                                   const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 204 No Content, not cached: the answer of /api/now while p1d reads no meter, and of
 * /api/history and /api/summary while it has no meter, live or stored. */
static enum MHD_Result reply_no_meter(http *h, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_common(h, r);
    return queue_once(c, MHD_HTTP_NO_CONTENT, r);
}

/* The JSON error {"error":{"code","message"}}; allow (or NULL) is the Allow header. */
static enum MHD_Result reply_msg(http *h, struct MHD_Connection *c, unsigned status,
                                 const char *allow, const char *code, const char *msg)
{
    json_w w;
    if (http_error_json(&w, code, msg) < 0)
        return MHD_NO;
    struct MHD_Response *r = body_response(h, w.buf, w.len, "application/json");
    if (!r)
        return MHD_NO;
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED) {
        if (h->bearer[0])
            MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"p1d\"");
        if (h->basic[0])
            MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Basic realm=\"p1d\", charset=\"UTF-8\"");
    }
    return queue_once(c, status, r);
}

static enum MHD_Result reply_error(http *h, struct MHD_Connection *c, unsigned status,
                                   const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *allow = status == MHD_HTTP_METHOD_NOT_ALLOWED ? "GET, HEAD, OPTIONS" : NULL;
    return reply_msg(h, c, status, allow, code, msg);
}

/* Sends what w holds as the JSON body (w's buffer is handed to MHD), or 500 if it overflowed. */
static enum MHD_Result reply_json(http *h, struct MHD_Connection *c, unsigned status, json_w *w)
{
    if (!json_ok(w)) {
        json_free(w);
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                           "response too large");
    }
    return queue_once(c, status, body_response(h, w->buf, w->len, "application/json"));
}

static int json_start(json_w *w, size_t initial)
{
    return json_init_alloc(w, initial, HTTP_JSON_MAX, 0);
}

/* ---- per-reading caches ------------------------------------------------------------------- */

/* Builds the event JSON of sample s once: the SSE data and, with "age_s" spliced in, /api/now. */
static int cache_now(http_cache *k, const meter *m, const meter_sample *s)
{
    if (k->now && k->now_seq == s->seq)
        return 0;
    json_w w;
    if (json_start(&w, 8192) < 0)
        return -ENOMEM;
    char when[48];
    iso_utc(s->received_ms, when);
    json_obj_begin(&w);
    json_kv_str(&w, "meter", m->name);
    json_key(&w, "seq");
    json_uint(&w, s->seq);
    json_kv_str(&w, "received", when);
    json_kv_int(&w, "received_ms", s->received_ms);
    size_t split = w.len + 1; /* past the ',' that json_key() writes next */
    json_key(&w, "reading");
    reading_json_reading(&w, &s->reading);
    if (s->reading.demand_current != P1_ABSENT || s->reading.demand_peak != P1_ABSENT) {
        json_key(&w, "demand_forecast"); /* Belgium's capacity tariff (demand.h) */
        if (s->demand_forecast == P1_ABSENT) {
            json_null(&w);
        } else {
            json_obj_begin(&w);
            json_kv_fixed_trim(&w, "kw", s->demand_forecast, 6);
            iso_utc(s->demand_end * 1000, when);
            json_kv_str(&w, "quarter_end", when);
            json_obj_end(&w);
        }
    }
    json_obj_end(&w);
    if (!json_ok(&w)) {
        json_free(&w);
        return -E2BIG;
    }
    free(k->now);
    k->now = w.buf;
    k->now_len = w.len;
    k->now_split = split;
    k->now_seq = s->seq;
    return 0;
}

/* Replaces a cached shared response; MHD keeps the old one alive for connections still sending
 * it (MHD_queue_response holds its own reference). */
static void cache_set(struct MHD_Response **slot, uint64_t *seq_slot, struct MHD_Response *r,
                      uint64_t seq)
{
    if (*slot)
        MHD_destroy_response(*slot);
    *slot = r;
    *seq_slot = seq;
}

/* The Netduino-compatible /p1.json: NL tariff 2 = "high" (normal), tariff 1 = "low". */
static void p1json(json_w *w, const p1_reading *r)
{
    struct {
        const char *key;
        p1_micro v;
    } f[] = {
        {"usageHighkWh", r->import[2]},    {"usageLowkWh", r->import[1]},
        {"productionHighkWh", r->export_[2]}, {"productionLowkWh", r->export_[1]},
        {"currentUsagekW", r->power_import}, {"currentProductionkW", r->power_export},
    };
    json_obj_begin(w);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].v == P1_ABSENT)
            continue;
        json_key(w, f[i].key);
        json_fixed(w, f[i].v / 1000, 3);
    }
    json_obj_end(w);
}

enum { BODY_HW, BODY_P1, BODY_TG };

/* The shared response of one per-reading body, rebuilt when the meter has a newer reading. */
static struct MHD_Response *cached(http *h, const meter *m, int which)
{
    const meter_sample *s = meter_latest(m);
    http_cache *k = s ? cache_for(h, m) : NULL;
    if (!k)
        return NULL;
    struct MHD_Response **slot = which == BODY_HW ? &k->hw : which == BODY_P1 ? &k->p1 : &k->tg;
    uint64_t *seq = which == BODY_HW ? &k->hw_seq : which == BODY_P1 ? &k->p1_seq : &k->tg_seq;
    if (*slot && *seq == s->seq)
        return *slot;
    struct MHD_Response *r;
    if (which == BODY_TG) {
        char *copy = malloc(m->raw_len ? m->raw_len : 1);
        if (!copy)
            return NULL;
        memcpy(copy, m->raw, m->raw_len);
        r = body_response(h, copy, m->raw_len, "text/plain; charset=us-ascii");
    } else {
        json_w w;
        if (json_start(&w, 4096) < 0)
            return NULL;
        if (which == BODY_HW)
            homewizard_data(&w, &s->reading, m->raw, m->raw_len);
        else
            p1json(&w, &s->reading);
        if (!json_ok(&w)) {
            json_free(&w);
            return NULL;
        }
        r = body_response(h, w.buf, w.len, "application/json");
    }
    if (!r)
        return NULL;
    cache_set(slot, seq, r, s->seq);
    return r;
}

/* Every accepted reading: format it once, keep it for /api/now, fan it out to SSE clients. */
static void on_reading(void *user, meter *m, const meter_sample *s, const uint8_t *raw,
                       size_t raw_len)
{
    (void)raw;
    (void)raw_len;
    http *h = user;
    http_cache *k = cache_for(h, m);
    if (!k || cache_now(k, m, s) < 0) {
        log_warn("http: meter %s: reading %" PRIu64 " not published (out of memory)", m->name,
                 s->seq);
        return;
    }
    if (http_sse_publish(h->sse, m, s->seq, k->now, k->now_len) < 0)
        log_warn("http: meter %s: reading %" PRIu64 " not streamed", m->name, s->seq);
}

/* A meter left the registry: its streams end with a "removed" event and its cached bodies go
 * (requests still sending one keep their own MHD reference). */
static void on_gone(void *user, meter *m)
{
    http *h = user;
    for (size_t i = 0; i < h->ncache; i++) {
        http_cache *k = &h->cache[i];
        if (k->m != m)
            continue;
        cache_clear(k);
        *k = h->cache[--h->ncache];
        break;
    }
    http_sse_remove(h->sse, m);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

static enum MHD_Result no_reading(http *h, struct MHD_Connection *c, const meter *m)
{
    return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "no_reading",
                       "meter %s has not delivered a telegram yet", m->name);
}

static enum MHD_Result ep_now(http *h, struct MHD_Connection *c, const meter *m)
{
    const meter_sample *s = meter_latest(m);
    if (!s)
        return no_reading(h, c, m);
    http_cache *k = cache_for(h, m);
    if (!k || cache_now(k, m, s) < 0)
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    int64_t age = loop_now_ms() - s->received_mono_ms;
    if (age < 0)
        age = 0;
    char ins[48];
    int n = snprintf(ins, sizeof ins, "\"age_s\":%" PRId64 ".%03d,", age / 1000, (int)(age % 1000));
    size_t len = k->now_len + (size_t)n;
    char *body = malloc(len + 1);
    if (!body)
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    memcpy(body, k->now, k->now_split);
    memcpy(body + k->now_split, ins, (size_t)n);
    memcpy(body + k->now_split + (size_t)n, k->now + k->now_split, k->now_len - k->now_split);
    body[len] = '\0';
    return queue_once(c, MHD_HTTP_OK, body_response(h, body, len, "application/json"));
}

/* "publishers": per publisher its state (shared by every meter) and this meter's lag and counters;
 * the per-meter numbers are null when the publisher has no outbox for the meter (MQTT without a
 * store). */
static void publishers_json(const http *h, json_w *w, const meter *m)
{
    char when[48];
    const pub_list *pl = h->o.pubs;
    json_key(w, "publishers");
    json_arr_begin(w);
    for (size_t i = 0; pl && i < pl->n && i < PUB_MAX; i++) {
        const pub *p = pl->list[i];
        pub_status st;
        memset(&st, 0, sizeof st);
        st.state = PUB_STOPPED;
        if (p->status)
            p->status(p->impl, &st);
        outbox_lag lag;
        int have = p->lag && p->lag(p->impl, m->name, &lag) == 0;
        json_obj_begin(w);
        json_kv_str(w, "name", p->name);
        json_kv_str(w, "state", pub_state_name(st.state));
        if (have) {
            json_kv_int(w, "lag_readings", lag.readings);
            json_kv_int(w, "lag_seconds", lag.seconds);
            json_key(w, "cursor");
            if (lag.cursor > 0) {
                iso_utc(lag.cursor * 1000, when);
                json_str(w, when);
            } else {
                json_null(w);
            }
            json_key(w, "delivered");
            json_uint(w, lag.delivered);
            json_key(w, "retries");
            json_uint(w, lag.retries);
            json_key(w, "parked");
            json_uint(w, lag.parked);
        } else {
            json_kv_null(w, "lag_readings");
            json_kv_null(w, "lag_seconds");
            json_kv_null(w, "cursor");
            json_kv_null(w, "delivered");
            json_kv_null(w, "retries");
            json_kv_null(w, "parked");
        }
        json_key(w, "last_ok");
        if (st.last_ok_ms > 0) {
            iso_utc(st.last_ok_ms, when);
            json_str(w, when);
        } else {
            json_null(w);
        }
        json_key(w, "retry_in_s");
        if (st.retry_in_ms > 0)
            json_fixed(w, st.retry_in_ms, 3);
        else
            json_null(w);
        st.last_error[sizeof st.last_error - 1] = '\0';
        json_key(w, "last_error");
        if (st.last_error[0])
            json_str(w, st.last_error);
        else
            json_null(w);
        json_obj_end(w);
    }
    json_arr_end(w);
}

/* Why the history is not being written now (the store's commits fail), into why[cap]; NULL
 * while it is, or without a store. The same for every meter: asked once per answer. */
static const char *history_error(const http *h, char *why, size_t cap)
{
    if (h->o.history && h->o.health && !h->o.health(h->o.health_user, why, cap))
        return why;
    return NULL;
}

static void meter_json(const http *h, json_w *w, const meter *m, int64_t now,
                       const char *history_err)
{
    char when[48];
    const meter_sample *s = meter_latest(m);
    json_obj_begin(w);
    json_kv_str(w, "name", m->name);
    json_kv_str(w, "source", m->source);
    json_kv_str(w, "kind", m->kind);
    /* which physical meter this is (0-0:96.1.1): an installer's list of names to meters */
    json_key(w, "equipment_id");
    if (m->equipment_id[0])
        json_str(w, m->equipment_id);
    else
        json_null(w);
    json_kv_str(w, "state", meter_state_name(m->state));
    json_key(w, "history");
    json_bool(w, h->o.history);
    json_key(w, "history_error");
    if (history_err)
        json_str(w, history_err);
    else
        json_null(w);
    json_kv_str(w, "time_zone", civil_zone_tz());
    json_key(w, "connected_since");
    int64_t since = meter_connected_since(m);
    if (since > 0) {
        iso_utc(since, when);
        json_str(w, when);
    } else {
        json_null(w);
    }
    json_key(w, "last_telegram");
    if (s) {
        iso_utc(s->received_ms, when);
        json_str(w, when);
        json_key(w, "age_s");
        json_fixed(w, now > s->received_mono_ms ? now - s->received_mono_ms : 0, 3);
    } else {
        json_null(w);
        json_kv_null(w, "age_s");
    }
    json_key(w, "seq");
    json_uint(w, m->seq);
    json_key(w, "telegrams");
    json_uint(w, m->telegrams);
    json_key(w, "rejected");
    json_uint(w, m->rejected);
    json_key(w, "crc_errors");
    json_uint(w, m->crc_errors);
    json_key(w, "reconnects");
    json_uint(w, m->reconnects);
    json_key(w, "idle_reopens");
    json_uint(w, m->idle_reopens);
    json_key(w, "bytes");
    json_uint(w, m->bytes);
    json_key(w, "detected");
    if (m->detected[0])
        json_str(w, m->detected);
    else
        json_null(w);
    json_key(w, "last_error");
    if (m->last_error[0])
        json_str(w, m->last_error);
    else
        json_null(w);
    json_key(w, "clock");
    if (m->clock_used) {
        json_obj_begin(w);
        json_kv_str(w, "used", m->clock_used == 1 ? "meter" : "system");
        json_key(w, "meter_offset_s");
        if (m->clock_has_offset)
            json_int(w, m->clock_offset_s);
        else
            json_null(w);
        json_key(w, "system_synced");
        if (m->clock_synced >= 0)
            json_bool(w, m->clock_synced);
        else
            json_null(w);
        json_obj_end(w);
    } else {
        json_null(w);
    }
    publishers_json(h, w, m);
    json_obj_end(w);
}

/* Whether meter m counts against /healthz: no telegram within stale_s, or stopped before its
 * first telegram (a file that cannot be opened); a file replay at its end after delivering some
 * is finished, not failed. 1 with the reason in why[cap], else 0. */
static int meter_unhealthy(const http *h, const meter *m, int64_t now, char *why, size_t cap)
{
    const meter_sample *s = meter_latest(m);
    if (m->state == METER_STOPPED) {
        if (s)
            return 0;
        snprintf(why, cap, "meter %s: stopped without a telegram%s%s", m->name,
                 m->last_error[0] ? ": " : "", m->last_error);
        return 1;
    }
    if (!s) {
        snprintf(why, cap, "meter %s: no telegram yet%s%s", m->name, m->last_error[0] ? ": " : "",
                 m->last_error);
        return 1;
    }
    if (now - s->received_mono_ms > (int64_t)h->o.stale_s * 1000) {
        /* last_error is cleared by every accepted telegram: what went wrong since */
        snprintf(why, cap, "meter %s: no telegram for %" PRId64 " s%s%s", m->name,
                 (now - s->received_mono_ms) / 1000, m->last_error[0] ? ": " : "", m->last_error);
        return 1;
    }
    return 0;
}

/* What /api/meters?state=LIST&healthy=BOOL asks for (docs/API.md): a bit per meter_state
 * listed (0: any), healthy 1, 0 or -1 (any); bad != 0 with the message in why[cap]. */
typedef struct meters_query {
    unsigned states;
    int healthy;
    int bad;
    char *why;
    size_t cap;
} meters_query;

/* One state=LIST: every item must name a state (an empty one is a mistake, not "any"). */
static int meters_query_states(meters_query *q, const char *list)
{
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int k = METER_WAITING; n && k <= METER_STOPPED; k++) {
            const char *name = meter_state_name((meter_state)k);
            if (strlen(name) == n && strncmp(p, name, n) == 0) {
                q->states |= 1u << k;
                found = 1;
            }
        }
        if (!n) {
            snprintf(q->why, q->cap, "state: '%.64s' has an empty item (a comma too many)", list);
            return -1;
        }
        if (!found) {
            snprintf(q->why, q->cap, "state: '%.*s' is not a meter state: give waiting, "
                     "connected, receiving or stopped, comma-separated", (int)(n < 64 ? n : 64), p);
            return -1;
        }
        p += n;
        if (!*p)
            return 0;
    }
}

static int meters_query_healthy(meters_query *q, const char *v)
{
    int want;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        want = 1;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        want = 0;
    } else {
        snprintf(q->why, q->cap, "healthy: expected true or false, got '%.64s'", v);
        return -1;
    }
    if (q->healthy >= 0 && q->healthy != want) {
        snprintf(q->why, q->cap, "healthy: given as both true and false");
        return -1;
    }
    q->healthy = want;
    return 0;
}

/* Every state= and healthy= of the query, repeated ones too (MHD_lookup_connection_value sees
 * only the first): ?state=waiting&state=stopped lists both, as ?state=waiting,stopped does. */
static enum MHD_Result meters_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    meters_query *q = cls;
    (void)kind;
    if (!value || !*value)
        return MHD_YES; /* ?state= or ?healthy=: no filter */
    if (strcmp(key, "state") == 0 && meters_query_states(q, value) < 0)
        q->bad = 1;
    else if (strcmp(key, "healthy") == 0 && meters_query_healthy(q, value) < 0)
        q->bad = 1;
    return q->bad ? MHD_NO : MHD_YES;
}

/* Fills q from the request's query; 0, or -1 with the message for a bad_parameter in why[cap]. */
static int meters_filter(struct MHD_Connection *c, meters_query *q, char *why, size_t cap)
{
    *q = (meters_query){0, -1, 0, why, cap};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, meters_query_arg, q);
    return q->bad ? -1 : 0;
}

static enum MHD_Result ep_meters(http *h, struct MHD_Connection *c, const meter *one)
{
    json_w w;
    meters_query q = {0, -1, 0, NULL, 0};
    char why[320];
    if (!one && meters_filter(c, &q, why, sizeof why) < 0)
        return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_parameter", "%s", why);
    if (json_start(&w, 4096) < 0)
        return MHD_NO;
    int64_t now = loop_now_ms(); /* ages: monotonic, as received_mono_ms */
    char store_why[512];
    const char *herr = history_error(h, store_why, sizeof store_why);
    if (one) {
        meter_json(h, &w, one, now, herr);
    } else {
        json_arr_begin(&w);
        for (size_t i = 0; i < h->ms->n; i++) {
            const meter *m = h->ms->list[i];
            if (q.states && !(q.states & (1u << m->state)))
                continue;
            if (q.healthy >= 0 &&
                (meter_unhealthy(h, m, now, why, sizeof why) ? 0 : 1) != q.healthy)
                continue;
            meter_json(h, &w, m, now, herr);
        }
        json_arr_end(&w);
    }
    return reply_json(h, c, MHD_HTTP_OK, &w);
}

static enum MHD_Result ep_hw_device(http *h, struct MHD_Connection *c, const meter *m)
{
    /* The last known equipment id (seeded from the store before the first telegram), so the
     * serial Home Assistant files its device under does not change when the meter speaks. */
    const char *id = m->equipment_id[0] ? m->equipment_id : m->name;
    json_w w;
    if (json_start(&w, 512) < 0)
        return MHD_NO;
    homewizard_device(&w, id, h->o.firmware);
    return reply_json(h, c, MHD_HTTP_OK, &w);
}

static enum MHD_Result ep_cached(http *h, struct MHD_Connection *c, const meter *m, int which)
{
    if (!meter_latest(m))
        return no_reading(h, c, m);
    struct MHD_Response *r = cached(h, m, which);
    if (!r)
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    return MHD_queue_response(c, MHD_HTTP_OK, r);
}

static enum MHD_Result ep_metrics(http *h, struct MHD_Connection *c)
{
    char *text;
    size_t len;
    int rc = metrics_render(h->ms, loop_now_ms(), h->o.stale_s, h->o.firmware, &text, &len);
    if (rc < 0)
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                           "cannot render metrics: %s", strerror(-rc));
    rc = metrics_render_pubs(h->ms, h->o.pubs, &text, &len);
    if (rc < 0) {
        free(text);
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                           "cannot render publisher metrics: %s", strerror(-rc));
    }
    if (h->o.metrics &&
        (rc = h->o.metrics(h->o.metrics_user, loop_now_ms(), h->o.stale_s, &text, &len)) < 0) {
        free(text);
        return reply_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                           "cannot render store and price metrics: %s", strerror(-rc));
    }
    char extra[1024];
    int n = snprintf(extra, sizeof extra,
                     "# HELP p1d_http_sse_clients Server-Sent Events clients connected.\n"
                     "# TYPE p1d_http_sse_clients gauge\n"
                     "p1d_http_sse_clients %zu\n"
                     "# HELP p1d_http_sse_dropped_total SSE clients dropped for reading too "
                     "slowly.\n"
                     "# TYPE p1d_http_sse_dropped_total counter\n"
                     "p1d_http_sse_dropped_total %" PRIu64 "\n"
                     "# HELP p1d_http_connections HTTP connections open.\n"
                     "# TYPE p1d_http_connections gauge\n"
                     "p1d_http_connections %u\n"
                     "# HELP p1d_http_connections_refused_total Connections closed at once because "
                     "their address held [http] max_connections_per_ip.\n"
                     "# TYPE p1d_http_connections_refused_total counter\n"
                     "p1d_http_connections_refused_total %" PRIu64 "\n",
                     http_sse_clients(h->sse), http_sse_dropped(h->sse), h->nconns,
                     h->refused_total);
    char *grown = realloc(text, len + (size_t)n + 1);
    if (grown) {
        memcpy(grown + len, extra, (size_t)n + 1);
        text = grown;
        len += (size_t)n;
    }
    return queue_once(c, MHD_HTTP_OK, body_response(h, text, len, METRICS_CONTENT_TYPE));
}

/* Healthy while no meter is unhealthy and the health callback (the store) agrees; why[cap] gets
 * the first problem. *bad counts the unhealthy meters. */
static int healthy(http *h, char *why, size_t cap, size_t *bad)
{
    int64_t now = loop_now_ms();
    char other[320];
    *bad = 0;
    for (size_t i = 0; i < h->ms->n; i++)
        if (meter_unhealthy(h, h->ms->list[i], now, *bad ? other : why, *bad ? sizeof other : cap))
            (*bad)++;
    if (*bad)
        return 0;
    if (h->o.health && !h->o.health(h->o.health_user, why, cap))
        return 0;
    return 1;
}

static enum MHD_Result ep_healthz(http *h, struct MHD_Connection *c)
{
    char why[320] = "unhealthy"; /* a meter name and its last_error fit */
    size_t bad;
    int ok = healthy(h, why, sizeof why, &bad);
    json_w w;
    if (json_start(&w, 256) < 0)
        return MHD_NO;
    json_obj_begin(&w);
    json_kv_str(&w, "status", ok ? "ok" : "unhealthy");
    if (!ok) {
        json_kv_str(&w, "reason", why);
        /* with many meters the first reason is one of many: /api/meters?healthy=false lists them */
        json_key(&w, "unhealthy_meters");
        json_int(&w, (int64_t)bad);
    }
    json_obj_end(&w);
    return reply_json(h, c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &w);
}

static enum MHD_Result ep_stream(http *h, struct MHD_Connection *c, const meter *only, int head)
{
    if (head) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        add_common(h, r);
        return queue_once(c, MHD_HTTP_OK, r);
    }
    /* Streams stay open and are exempt from the timeouts: without a cap, clients that open
     * many would hold every connection and starve the dashboard's and other clients' requests. */
    unsigned max = h->o.max_connections;
    size_t streams_max = max > 2 * HTTP_STREAM_RESERVE ? max - HTTP_STREAM_RESERVE : max / 2;
    if (http_sse_clients(h->sse) >= streams_max)
        return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "%zu streams are open, the most max_connections (%u) leaves room for; "
                           "try again later",
                           streams_max, max);
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    struct MHD_Response *r = http_sse_open(h->sse, c, only, last);
    if (!r)
        return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "cannot open a stream now");
    return queue_once(c, MHD_HTTP_OK, r);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* Maps a path to a route; for /api/meters/{name}[/now|/stream] copies the name. */
static enum route route_of(const char *url, char *name, size_t cap)
{
    static const struct {
        const char *path;
        enum route r;
    } fixed[] = {
        {"/api/v1/data", R_HW_DATA},
        {"/api", R_HW_DEVICE},
        {"/api/v1/telegram", R_HW_TELEGRAM},
        {"/api/v1/identify", R_HW_IDENTIFY},
        {"/api/now", R_NOW},
        {"/api/stream", R_STREAM},
        {"/api/meters", R_METERS},
        {"/p1.json", R_P1JSON},
        {"/metrics", R_METRICS},
        {"/healthz", R_HEALTHZ},
    };
    name[0] = '\0';
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0)
            return fixed[i].r;
    static const char pre[] = "/api/meters/";
    if (strncmp(url, pre, sizeof pre - 1) != 0)
        return R_NONE;
    const char *p = url + sizeof pre - 1;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= cap)
        return R_NONE;
    memcpy(name, p, n);
    name[n] = '\0';
    if (!slash)
        return R_METER;
    if (strcmp(slash, "/now") == 0)
        return R_NOW;
    if (strcmp(slash, "/stream") == 0)
        return R_STREAM;
    return R_NONE;
}

/* The credentials of an Authorization header value when its scheme is `scheme`, else NULL. The
 * scheme is matched without regard to case (RFC 7235: "bearer" is "Bearer"). */
static const char *auth_credentials(const char *a, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncasecmp(a, scheme, n) != 0 || a[n] != ' ')
        return NULL;
    a += n;
    while (*a == ' ')
        a++;
    return a;
}

typedef struct arg_find {
    const char *name;
    const char *value;
} arg_find;

static enum MHD_Result find_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    arg_find *a = cls;
    (void)kind;
    if (strcmp(key, a->name) != 0)
        return MHD_YES;
    a->value = value;
    return MHD_NO;
}

/* The value of the first query parameter named exactly name, or NULL (also for "?name" without
 * '='). Names are case-sensitive (docs/API.md): MHD_lookup_connection_value() would also take
 * ?STEP= for step, a parameter that arg_repeated() does not count as the same. */
static const char *arg_value(struct MHD_Connection *c, const char *name)
{
    arg_find a = {name, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, find_arg, &a);
    return a.value;
}

/* The bearer token also comes as ?access_token= on GET and HEAD: a browser's EventSource cannot
 * send an Authorization header. Compared in constant time; p1d logs no request targets. */
static int authorized(http *h, struct MHD_Connection *c, const char *method)
{
    if (!h->bearer[0] && !h->basic[0])
        return 1;
    if (h->bearer[0] && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                         strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)) {
        const char *q = arg_value(c, "access_token");
        if (q && ct_equal(q, h->bearer + 7))
            return 1;
    }
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a)
        return 0;
    const char *p;
    int ok = 0;
    if (h->bearer[0] && (p = auth_credentials(a, "Bearer")))
        ok |= ct_equal(p, h->bearer + 7);
    if (h->basic[0] && (p = auth_credentials(a, "Basic")))
        ok |= ct_equal(p, h->basic + 6);
    return ok;
}

/* Into out[cap], lowercased: the "host[:port]" of an origin or URL ("http://Pi:8080/x" ->
 * "pi:8080"), without the scheme's default port; *https tells the scheme. -1 when url is no
 * http(s) URL ("null", a file: page). */
static int url_authority(const char *url, char *out, size_t cap, int *https)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        *https = 0;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        *https = 1;
    } else {
        return -1;
    }
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= cap)
        return -1;
    lower_copy(out, p, n);
    const char *dflt = *https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (n > dl && strcmp(out + n - dl, dflt) == 0)
        out[n - dl] = '\0';
    return 0;
}

/* A request that changes state (PUT, POST) sent by a browser for a page of another origin is
 * cross-site request forgery: any web page the user visits could send one to the LAN address
 * (a form or fetch() with text/plain needs no preflight, and basic auth rides along). Browsers
 * name the page in Origin (else Referer): it must be p1d's own origin (the Host the request was
 * sent to) or the one [http] cors_origin names explicitly. Clients without either header (curl,
 * scripts) are no browser and pass. Returns 1 to go on, else answers 403 into *ret. */
static int same_origin_write(http *h, struct MHD_Connection *c, const char *method,
                             const char *hh, enum MHD_Result *ret)
{
    const char *from = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!from)
        from = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_REFERER);
    if (!from)
        return 1;
    char origin[256], host[256], allowed[256];
    int https = 0, https2 = 0;
    if (url_authority(from, origin, sizeof origin, &https) == 0) {
        char url[300];
        snprintf(url, sizeof url, "%s://%s", https ? "https" : "http", hh ? hh : "");
        if (hh && url_authority(url, host, sizeof host, &https2) == 0 && strcmp(origin, host) == 0)
            return 1;
        if (strcmp(h->o.cors_origin, "*") != 0 &&
            url_authority(h->o.cors_origin, allowed, sizeof allowed, &https2) == 0 &&
            https2 == https && strcmp(origin, allowed) == 0)
            return 1;
    }
    char shown[64];
    snprintf(shown, sizeof shown, "%.*s", (int)strcspn(from, "?#"), from);
    *ret = reply_error(h, c, MHD_HTTP_FORBIDDEN, "cross_origin",
                       "%s from a page of another origin (%s) refused; name that origin in "
                       "[http] cors_origin to allow it",
                       method, shown);
    return 0;
}

/* 1 when name is in list, a comma- or space-separated list of names, "*.domain" (its
 * subdomains) and "*" (anything); without regard to case. */
static int name_listed(const char *name, const char *list)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        p += strspn(p, ", ");
        size_t n = strcspn(p, ", ");
        if (n == 1 && p[0] == '*')
            return 1;
        if (n > 2 && p[0] == '*' && p[1] == '.' && nl > n - 1 &&
            strncasecmp(name + nl - (n - 1), p + 1, n - 1) == 0)
            return 1;
        if (n && n == nl && strncasecmp(name, p, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    *(unsigned *)cls += strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0;
    return MHD_YES;
}

/* The request's Host into out[cap], without the trailing whitespace MHD leaves on a field value.
 * Returns 1 with it, 0 when there is none, -1 when there are two or more or it is no
 * host[:port]: RFC 9112 (3.2) asks for a 400 then, and a proxy in front may have read another
 * Host than p1d's guard. */
static int request_host(struct MHD_Connection *c, char *out, size_t cap)
{
    const char *v;
    size_t n;
    if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST,
                                      sizeof MHD_HTTP_HEADER_HOST - 1, &v, &n) != MHD_YES || !v)
        return 0;
    unsigned count = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_host, &count);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (count > 1 || n >= cap)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t name;
    if (out[0] == '[') {
        /* an IP literal: "[::1]", "[fe80::1%25eth0]", "[v1.x]" */
        name = 1;
        while (out[name] && (strchr(alnum, out[name]) || strchr(":.%-_~", out[name])))
            name++;
        if (out[name++] != ']')
            return -1;
    } else {
        /* a reg-name or IPv4 address (RFC 3986: unreserved, sub-delims, pct-encoded) */
        name = 0;
        while (out[name] && (strchr(alnum, out[name]) || strchr("-._~!$&'()*+,;=%", out[name])))
            name++;
    }
    if (out[name] == '\0')
        return 1;
    const char *port = out + name + 1;
    return out[name] == ':' && strspn(port, "0123456789") == strlen(port) ? 1 : -1;
}

/* DNS rebinding: a page of a name the attacker controls, whose address then changes to p1d's,
 * reads the API as its own origin (and passes the Origin check of uploads). Its requests carry
 * that name as Host. Names that public DNS cannot hand out (IP addresses, names without a dot,
 * local-only domains), the machine's own name and allowed_hosts are taken; others refused.
 * host has passed request_host(). */
static int host_allowed(const http *h, const char *host)
{
    char name[256];
    struct in6_addr a6;
    struct in_addr a4;
    if (host[0] == '[') {
        size_t n = strcspn(host + 1, "]");
        if (host[1 + n] != ']' || n >= sizeof name)
            return 0;
        memcpy(name, host + 1, n);
        name[n] = '\0';
        return inet_pton(AF_INET6, name, &a6) == 1;
    }
    size_t n = strcspn(host, ":");
    if (n >= sizeof name)
        return 0;
    lower_copy(name, host, n);
    if (n && name[n - 1] == '.')
        name[--n] = '\0'; /* "p1d.local." is "p1d.local" */
    /* inet_aton: also 127.1 and 0x7f.0.0.1, which curl and Python send as typed; a name whose
     * last label is a number is an IPv4 address to browsers too, never a DNS name. */
    if ((strspn(name, "0123456789abcdefx.") == n && inet_aton(name, &a4)) || !strchr(name, '.'))
        return 1;
    /* Domains public DNS does not serve; fritz.box is AVM's, which its routers answer for the
     * LAN (raspberrypi.fritz.box), so no one else can point a name under it anywhere. */
    return name_listed(name, "*.localhost, *.local, *.lan, *.home, *.localdomain, *.home.arpa, "
                             "*.internal, *.fritz.box") ||
           (h->hostname[0] && strcmp(name, h->hostname) == 0) ||
           name_listed(name, h->o.allowed_hosts);
}

/* methods: what the path takes, for Access-Control-Allow-Methods and Allow. */
static enum MHD_Result preflight(http *h, struct MHD_Connection *c, const char *methods)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    add_common(h, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", methods);
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Last-Event-ID, Cache-Control");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, methods);
    return queue_once(c, MHD_HTTP_NO_CONTENT, r);
}

/* A request body for the route handler, collected across MHD's calls (bounded). */
typedef struct http_body {
    char *buf;
    size_t len, cap;
    int too_big; /* over route_body_max: the rest is read and dropped, then 413 */
} http_body;

static int is_body(const http *h, void *req)
{
    return req && req != &h->mark_seen && req != &h->mark_long && req != &h->mark_bad;
}

static int route_path(const http *h, const char *url)
{
    return h->o.route && strncmp(url, "/api/", 5) == 0;
}

const char *http_req_arg(const http_req *req, const char *name)
{
    if (req->args) {
        /* the first of exactly that name, as arg_value() finds it */
        for (size_t i = 0; i < req->args->n; i++)
            if (strcmp(req->args->key[i], name) == 0)
                return req->args->value[i];
        return NULL;
    }
    return arg_value((struct MHD_Connection *)req->conn, name);
}

typedef struct arg_count {
    const char *name;
    unsigned n;
} arg_count;

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    arg_count *a = cls;
    (void)kind;
    (void)value;
    a->n += strcmp(key, a->name) == 0;
    return a->n > 1 ? MHD_NO : MHD_YES;
}

/* Whether query parameter name comes more than once (MHD_lookup_connection_value would take the
 * first and hide the rest). */
static int arg_repeated(struct MHD_Connection *c, const char *name)
{
    arg_count a = {name, 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, &a);
    return a.n > 1;
}

/* arg_repeated() over a copied query. */
static int args_repeated(const struct http_args *a, const char *name)
{
    unsigned n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += strcmp(a->key[i], name) == 0;
    return n > 1;
}

const char *http_req_repeated(const http_req *req, const char *const *names)
{
    for (; *names; names++)
        if (req->args ? args_repeated(req->args, *names) : arg_repeated(req->conn, *names))
            return *names;
    return NULL;
}

/* 400 for a repeated ?access_token= while a token is set: which of them would count? */
static int token_repeated(const http *h, struct MHD_Connection *c)
{
    return h->bearer[0] && arg_repeated(c, "access_token");
}

static int addr16(const struct sockaddr *sa, unsigned char out[16]);
static void addr16_text(const unsigned char a[16], char *out, size_t cap);

/* PUT /api/v1/identify: a HomeWizard meter blinks its status light so the user can tell which
 * one it is (Home Assistant's Identify button). p1d has no light: every open dashboard flashes
 * (http_sse_identify()) and the log names who asked. Same guards as any request that changes
 * state: credentials and, from a browser, p1d's own origin. */
static enum MHD_Result ep_hw_identify(http *h, struct MHD_Connection *c, const char *method)
{
    enum MHD_Result refused;
    char hostv[256];
    int has_host = request_host(c, hostv, sizeof hostv);

    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return preflight(h, c, "PUT, OPTIONS");
    if (strcmp(method, MHD_HTTP_METHOD_PUT) != 0)
        return reply_msg(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "PUT, OPTIONS", "method_not_allowed",
                         "/api/v1/identify takes only PUT (and OPTIONS)");
    if (!same_origin_write(h, c, method, has_host > 0 ? hostv : NULL, &refused))
        return refused;
    if (token_repeated(h, c))
        return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_parameter", "access_token given twice");
    if (!authorized(h, c, method))
        return reply_error(h, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                           "missing or wrong credentials");
    size_t told = http_sse_identify(h->sse);
    if (log_burst_take(&h->identify, loop_now_ms(), HTTP_LOG_BURST) > 0) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char a[16];
        char text[INET6_ADDRSTRLEN] = "?";
        if (ci && ci->client_addr && addr16(ci->client_addr, a) == 0)
            addr16_text(a, text, sizeof text);
        log_info("http: identify requested by %s: %zu open dashboard%s flash", text, told,
                 told == 1 ? "" : "s");
    }
    json_w w;
    if (json_start(&w, 64) < 0)
        return MHD_NO;
    json_obj_begin(&w);
    json_kv_str(&w, "identify", "ok");
    json_obj_end(&w);
    return reply_json(h, c, MHD_HTTP_OK, &w);
}

/* A GET (or HEAD) of the history or the summaries, answered in one piece on the loop. */
static int heavy_route(const char *url, const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return 0;
    return strncmp(url, "/api/history", 12) == 0 || strncmp(url, "/api/summary", 12) == 0;
}

/* Suspends c until resume_deferred(); 1, or 0 when it cannot be noted (then it is answered now:
 * slower, not lost). */
static int defer(http *h, struct MHD_Connection *c)
{
    if (h->ndeferred == h->capdeferred) {
        size_t cap = h->capdeferred ? 2 * h->capdeferred : 16;
        struct MHD_Connection **n = realloc(h->deferred, cap * sizeof *n);
        if (!n)
            return 0;
        h->deferred = n;
        h->capdeferred = cap;
    }
    h->deferred[h->ndeferred++] = c;
    MHD_suspend_connection(c);
    return 1;
}

/* When a heavy route was already answered in this MHD_run(), suspends c until the next run
 * (a 0 ms timer) and returns 1; else notes that one runs now and returns 0. */
static int defer_heavy(http *h, struct MHD_Connection *c)
{
    if (!h->heavy_ran) {
        h->heavy_ran = 1;
        return 0;
    }
    if (!defer(h, c))
        return 0;
    h->kicked = 1; /* rearm(): the next run at once, after the loop's other descriptors */
    return 1;
}

/* Sends a route handler's answer (its body handed over). */
static enum MHD_Result send_reply(http *h, struct MHD_Connection *c, http_reply *out)
{
    if (out->status == MHD_HTTP_NO_CONTENT) {
        free(out->body);
        return reply_no_meter(h, c);
    }
    struct MHD_Response *r = body_response(
        h, out->body, out->len, out->content_type ? out->content_type : "application/json");
    if (!r)
        return MHD_NO;
    if (out->disposition[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, out->disposition);
    if (out->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, out->allow);
    return queue_once(c, out->status ? out->status : MHD_HTTP_OK, r);
}

/* ---- answers on the worker thread (http_options.jobs) ------------------------------------- */

static void job_free(http_job *j)
{
    if (!j)
        return;
    free(j->out.body);
    free(j->ctx);
    free(j);
}

typedef struct args_copy {
    size_t n, bytes;     /* counted by args_measure() */
    struct http_args *a; /* filled by args_fill() */
    char *p;             /* where the next string goes */
} args_copy;

static enum MHD_Result args_measure(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    args_copy *ac = cls;
    (void)kind;
    ac->n++;
    ac->bytes += strlen(key) + 1 + (value ? strlen(value) + 1 : 0);
    return MHD_YES;
}

static char *copy_str(args_copy *ac, const char *str)
{
    size_t n = strlen(str) + 1;
    char *to = memcpy(ac->p, str, n);
    ac->p += n;
    return to;
}

static enum MHD_Result args_fill(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    args_copy *ac = cls;
    struct http_args *a = ac->a;
    (void)kind;
    if (a->n == ac->n) /* as counted: the query does not change between the two walks */
        return MHD_NO;
    a->key[a->n] = copy_str(ac, key);
    a->value[a->n] = value ? copy_str(ac, value) : NULL;
    a->n++;
    return MHD_YES;
}

/* A copy of rq (method, path, query) of connection c for the worker, in one block; NULL when out
 * of memory. */
static http_job *job_new(http *h, struct MHD_Connection *c, const http_req *rq)
{
    args_copy ac = {0, 0, NULL, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, args_measure, &ac);
    size_t lm = strlen(rq->method) + 1, lp = strlen(rq->path) + 1;
    http_job *j = calloc(1, sizeof *j + 2 * ac.n * sizeof(char *) + ac.bytes + lm + lp);
    if (!j)
        return NULL;
    j->args.key = (char **)(j + 1);
    j->args.value = j->args.key + ac.n;
    ac.a = &j->args;
    ac.p = (char *)(j->args.value + ac.n);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, args_fill, &ac);
    j->req.method = copy_str(&ac, rq->method);
    j->req.path = copy_str(&ac, rq->path);
    j->req.args = &j->args;
    j->h = h;
    j->c = c;
    j->answer = h->o.jobs.answer;
    j->answer_user = h->o.jobs.answer_user;
    return j;
}

/* 1 when the client of socket fd has closed or reset its connection: its end of the stream is
 * there to read (a client sends nothing more while it waits for an answer; a pipelined request
 * reads as data, not as the end). Only peeks: MHD reads nothing of a suspended connection. */
static int client_gone(int fd)
{
    char b;
    if (fd < 0)
        return 0;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* On the worker thread: touches the job alone (and what answer_user holds for this thread), and
 * peeks at its suspended connection's socket, which MHD does not use or close meanwhile. A
 * client gone by now (a closed tab, a reloaded dashboard, a timed-out Grafana panel) gets no
 * answer: on a Raspberry Pi each takes seconds, and the ones still waiting would wait for them. */
static void job_run(worker_job *wj)
{
    http_job *j = (http_job *)wj;
    if (client_gone(j->fd)) {
        j->gone = 1;
        return;
    }
    j->answered = j->answer(j->answer_user, &j->req, j->ctx, &j->out);
}

static void kick(void *user);
static http_conn *conn_of(struct MHD_Connection *c);

/* Back on the loop: the connection, still suspended, is resumed and its next call of
 * on_request() sends the answer (route_call()). */
static void job_done(worker_job *wj, int ran)
{
    http_job *j = (http_job *)wj;
    j->back = ran;
    free(j->ctx);
    j->ctx = NULL;
    MHD_resume_connection(j->c);
    if (!j->h->stopping)
        kick(j->h); /* also lets the deferred ones try again: there is room now */
}

/* Hands the heavy request rq of c to the worker: 1 when it went (c suspended until it is
 * back) or waits for room (c deferred), 0 to answer it on the loop. */
static int job_start(http *h, struct MHD_Connection *c, const http_req *rq)
{
    http_conn *hc = conn_of(c);
    if (!hc)
        return 0;
    if (worker_full(h->jobs))
        return defer(h, c);
    void *ctx = NULL;
    if (!h->o.jobs.take(h->o.jobs.take_user, rq, &ctx))
        return 0;
    http_job *j = job_new(h, c, rq);
    if (!j) {
        free(ctx);
        return 0;
    }
    j->ctx = ctx;
    j->fd = hc->fd;
    j->wj.run = job_run;
    j->wj.done = job_done;
    hc->job = j;
    MHD_suspend_connection(c);
    worker_submit(h->jobs, &j->wj); /* cannot fail: not full */
    return 1;
}

/* The answer of job j, back from the worker, for its connection c; frees j. */
static enum MHD_Result job_reply(http *h, struct MHD_Connection *c, http_job *j)
{
    http_reply out = j->out;
    int back = j->back, answered = j->answered, gone = j->gone;
    j->out.body = NULL;
    job_free(j);
    if (back && gone)
        return MHD_NO; /* the client left before its answer was built: close the connection */
    if (!back || !answered) {
        free(out.body);
        return back ? reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint")
                    : reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                  "p1d is shutting down");
    }
    return send_reply(h, c, &out);
}

/* Hands a request under /api/ that no fixed route serves to the route handler. */
static enum MHD_Result route_call(http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, const http_body *b)
{
    /* /api/prices takes uploads (history.c), so a page of one's own can PUT prices. */
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return preflight(h, c, strcmp(url, "/api/prices") == 0
                                   ? "GET, HEAD, PUT, POST, OPTIONS"
                                   : "GET, HEAD, OPTIONS");
    if (token_repeated(h, c))
        return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_parameter", "access_token given twice");
    if (!authorized(h, c, method))
        return reply_error(h, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                           "missing or wrong credentials");
    http_req rq = {method,
                   url,
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                   b ? b->buf : NULL,
                   b ? b->len : 0,
                   c,
                   NULL};
    if (heavy_route(url, method)) {
        /* resumed with the answer from the worker, or never handed over */
        http_conn *hc = conn_of(c);
        http_job *j = hc ? hc->job : NULL;
        if (j)
            hc->job = NULL;
        if (h->stopping) {
            job_free(j);
            return reply_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                               "p1d is shutting down");
        }
        if (j)
            return job_reply(h, c, j);
        if (h->jobs && job_start(h, c, &rq))
            return MHD_YES;
        if (defer_heavy(h, c))
            return MHD_YES;
    }
    http_reply out;
    memset(&out, 0, sizeof out);
    if (!h->o.route(h->o.route_user, &rq, &out))
        return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    return send_reply(h, c, &out);
}

static http_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The path of an absolute-form target ("GET http://host/api/now", as sent to a proxy and by
 * some small HTTP clients): a server must take it as the same resource (RFC 9112, 3.2.2). */
static const char *origin_path(const char *url)
{
    const char *p = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8;
    if (!p)
        return url;
    const char *slash = strchr(p, '/');
    return slash ? slash : "/";
}

/* 403 for a Host name host_allowed() refuses; logged once per name in a row, bounded. */
static enum MHD_Result refuse_host(http *h, struct MHD_Connection *c, const char *host)
{
    char name[sizeof h->refused_host];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(host, ":"), host);
    for (char *p = name; *p; p++) /* the client's bytes go into the log: no control codes */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    if (host[0] == '[' || strcmp(name, h->refused_host) != 0) {
        if (log_burst_take(&h->refused, loop_now_ms(), HTTP_LOG_BURST) > 0)
            log_warn("http: refused a request for Host '%s' (DNS-rebinding guard): if that "
                     "name is p1d's, add it to [http] allowed_hosts",
                     name);
        snprintf(h->refused_host, sizeof h->refused_host, "%s", name);
    }
    return reply_error(h, c, MHD_HTTP_FORBIDDEN, "host_not_allowed",
                       "Host '%s' is not a name of this p1d; add it to [http] allowed_hosts "
                       "(a guard against DNS rebinding while no token is set)",
                       name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req)
{
    (void)upload;
    http *h = cls;
    url = origin_path(url);
    if (is_body(h, *req)) {
        /* A route's request body, piece by piece; the last call (no data) answers it. */
        http_body *b = *req;
        size_t max = h->o.route_body_max ? h->o.route_body_max : HTTP_ROUTE_BODY_MAX;
        http_conn *bc = conn_of(c);
        if (bc)
            bc->got += *upload_size;
        if (!*upload_size && bc)
            bc->body = 0;
        if (*upload_size && (b->too_big || b->len + *upload_size > max)) {
            /* MHD cannot answer in the middle of an upload: drop the rest, answer at the end. */
            free(b->buf);
            b->buf = NULL;
            b->len = b->cap = 0;
            b->too_big = 1;
            *upload_size = 0;
            return MHD_YES;
        }
        if (*upload_size) {
            if (b->len + *upload_size + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + *upload_size + 1)
                    cap *= 2;
                char *nb = realloc(b->buf, cap);
                if (!nb)
                    return MHD_NO;
                b->buf = nb;
                b->cap = cap;
            }
            memcpy(b->buf + b->len, upload, *upload_size);
            b->len += *upload_size;
            b->buf[b->len] = '\0';
            *upload_size = 0;
            return MHD_YES;
        }
        if (b->too_big)
            return reply_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                               "request body larger than %zu bytes", max);
        return route_call(h, c, url, method, b);
    }
    if (*req == &h->mark_seen) {
        /* Second call: the request is complete (a GET without body); answer it below. */
        if (*upload_size) {
            *upload_size = 0;
            return MHD_YES;
        }
    } else {
        http_conn *hc = conn_of(c);
        if (hc)
            hc->waiting = 0;
        /* Answers given here, on the first call, make MHD close the connection afterwards:
         * right for errors and for requests with a body (no endpoint takes one). */
        if (*req == &h->mark_long)
            return reply_error(h, c, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                               "request target longer than %d bytes", HTTP_URL_MAX);
        if (*req == &h->mark_bad)
            return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "malformed percent-encoding in the request target");
        if (MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL) > HTTP_HEADERS_MAX)
            return reply_error(h, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                               "too_many_headers", "more than %d header fields", HTTP_HEADERS_MAX);
        char hostv[256];
        int has_host = request_host(c, hostv, sizeof hostv);
        const char *host = has_host > 0 ? hostv : NULL;
        if (has_host < 0)
            return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "more than one Host header, or one that is no host[:port]");
        if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && !host)
            return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "HTTP/1.1 request without Host header");
        if (host && !h->bearer[0] && !h->basic[0] && !host_allowed(h, host))
            return refuse_host(h, c, host);
        int bodyless = (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                        strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ||
                        strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) &&
                       !MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_LENGTH) &&
                       !MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (bodyless) {
            /* Answering on the next call keeps the connection alive for the next request. */
            *req = &h->mark_seen;
            return MHD_YES;
        }
        char fixed_name[METER_NAME_MAX + 1];
        /* Only paths no fixed endpoint serves go to the route handler with their body: a POST
         * to /api/now is a 405 and a GET with a body is answered, as for p1d without --db. */
        if (route_path(h, url) && route_of(url, fixed_name, sizeof fixed_name) == R_NONE) {
            enum MHD_Result refused;
            if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
                strcmp(method, MHD_HTTP_METHOD_HEAD) != 0 &&
                strcmp(method, MHD_HTTP_METHOD_OPTIONS) != 0 &&
                !same_origin_write(h, c, method, host, &refused))
                return refused;
            const char *cl =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            size_t max = h->o.route_body_max ? h->o.route_body_max : HTTP_ROUTE_BODY_MAX;
            if (cl && strtoull(cl, NULL, 10) > max)
                return reply_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                   "request body larger than %zu bytes", max);
            http_body *b = calloc(1, sizeof *b);
            if (!b)
                return MHD_NO;
            *req = b;
            if (hc) {
                hc->body = 1;
                hc->got = 0;
                hc->since_ms = loop_now_ms();
            }
            return MHD_YES;
        }
    }

    char name[METER_NAME_MAX + 1];
    enum route rt = route_of(url, name, sizeof name);
    if (rt == R_NONE && route_path(h, url))
        return route_call(h, c, url, method, NULL);
    if (rt == R_NONE) {
        /* The dashboard's embedded files (web.c), behind the same credentials as the API. */
        enum MHD_Result wr;
        if (web_find(url) && strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return reply_msg(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD", "method_not_allowed",
                             "the dashboard's files take only GET and HEAD");
        /* With basic auth the browser asks once and sends it for every request. A bearer
         * token it cannot send for a page or script, so with a token alone the files (code,
         * no data) are served to anyone and the page asks for the token on its first 401. */
        if (web_find(url) && h->basic[0] && !authorized(h, c, method))
            return reply_error(h, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                               "missing or wrong credentials");
        if (web_serve(c, url, method, &wr))
            return wr;
        return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    }
    if (rt == R_HW_IDENTIFY)
        return ep_hw_identify(h, c, method);
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return preflight(h, c, "GET, HEAD, OPTIONS");
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                           "only GET, HEAD and OPTIONS are allowed");
    if (token_repeated(h, c))
        return reply_error(h, c, MHD_HTTP_BAD_REQUEST, "bad_parameter", "access_token given twice");
    if (!authorized(h, c, method))
        return reply_error(h, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                           "missing or wrong credentials");

    const meter *m = NULL;
    if (name[0]) {
        m = meters_find(h->ms, name);
        if (!m)
            return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no meter named '%s'",
                               name);
    } else if (rt == R_NOW || rt == R_HW_DEVICE || rt == R_HW_DATA || rt == R_HW_TELEGRAM ||
               rt == R_P1JSON) {
        m = first_meter(h);
        /* /api/now with no meter (a history-only p1d, every meter reloaded away) is a state, not
         * a mistake: a 404 would be a console error in a page that asks before it knows the
         * meters. The HomeWizard and p1.json clients keep their 404. */
        if (!m && rt == R_NOW)
            return reply_no_meter(h, c);
        if (!m)
            return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no meter configured");
    }

    switch (rt) {
    case R_HW_DATA: return ep_cached(h, c, m, BODY_HW);
    case R_HW_TELEGRAM: return ep_cached(h, c, m, BODY_TG);
    case R_P1JSON: return ep_cached(h, c, m, BODY_P1);
    case R_HW_DEVICE: return ep_hw_device(h, c, m);
    case R_NOW: return ep_now(h, c, m);
    case R_STREAM: return ep_stream(h, c, m, head);
    case R_METERS: return ep_meters(h, c, NULL);
    case R_METER: return ep_meters(h, c, m);
    case R_METRICS: return ep_metrics(h, c);
    case R_HEALTHZ: return ep_healthz(h, c);
    default: break;
    }
    return reply_error(h, c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

static int hexval(char ch)
{
    return (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'f');
}

/* Sees the raw request target before MHD unescapes it (MHD leaves bad escapes as they are):
 * flags over-long targets and malformed or NUL percent-escapes for on_request(). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    http *h = cls;
    size_t n = 0;
    for (const char *p = uri; *p; p++, n++) {
        if (n >= HTTP_URL_MAX)
            return &h->mark_long;
        if (*p == '%') {
            if (!hexval(p[1]) || !hexval(p[2]) || (p[1] == '0' && p[2] == '0'))
                return &h->mark_bad;
        }
    }
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req,
                         enum MHD_RequestTerminationCode toe)
{
    http *h = cls;
    (void)toe;
    if (is_body(h, *req)) {
        http_body *b = *req;
        free(b->buf);
        free(b);
        *req = NULL;
    }
    http_conn *hc = conn_of(c);
    if (hc) {
        /* An answer back from the worker that was not sent (the request got another answer on
         * its resumed call: a 401 after a reload changed the token) must not go to the next. */
        job_free(hc->job);
        hc->job = NULL;
        hc->waiting = 1;
        hc->body = 0;
        hc->since_ms = loop_now_ms();
    }
}

/* ---- connections per client address ------------------------------------------------------- */

/* The client address of sa as 16 bytes, IPv4 mapped into ::ffff:0:0/96 (as a dual-stack socket
 * reports it), so one prefix list and one table serve both families. -1 for other families. */
static int addr16(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    return -1;
}

/* "192.0.2.7" or "2001:db8::7" for the log; an IPv4-mapped address as IPv4. */
static void addr16_text(const unsigned char a[16], char *out, size_t cap)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0 ? !inet_ntop(AF_INET, a + 12, out, (socklen_t)cap)
                                   : !inet_ntop(AF_INET6, a, out, (socklen_t)cap))
        snprintf(out, cap, "?");
}

/* Parses "192.168.1.5", "10.0.0.0/8", "::1" or "fd00::/8" (s[0..n)) into *p. Returns 0 or -1. */
static int parse_prefix(const char *s, size_t n, http_prefix *p)
{
    char text[64];
    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1))
            return -1;
        bits = strtol(slash + 1, &end, 10);
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        if (bits > 32)
            return -1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = a4};
        addr16((const struct sockaddr *)&sa, p->a);
        p->bits = bits < 0 ? 128 : 96 + (unsigned)bits;
        return 0;
    }
    if (inet_pton(AF_INET6, text, p->a) == 1 && bits <= 128) {
        p->bits = bits < 0 ? 128 : (unsigned)bits;
        return 0;
    }
    return -1;
}

/* Parses a comma- or space-separated list of prefixes into out[HTTP_EXEMPT_MAX]. */
static int parse_exempt(const char *list, http_prefix *out, size_t *nout, char *err, size_t cap)
{
    size_t k = 0;
    for (const char *p = list; *(p += strspn(p, ", ")); p += strcspn(p, ", ")) {
        size_t n = strcspn(p, ", ");
        if (k == HTTP_EXEMPT_MAX) {
            snprintf(err, cap, "more than %d addresses", HTTP_EXEMPT_MAX);
            return -1;
        }
        if (parse_prefix(p, n, &out[k]) < 0) {
            snprintf(err, cap, "'%.*s' is no IP address or prefix (192.168.1.5, 10.0.0.0/8, ::1, "
                               "fd00::/8)", (int)(n > 64 ? 64 : n), p);
            return -1;
        }
        k++;
    }
    *nout = k;
    return 0;
}

int http_exempt_check(const char *list, char *err, size_t cap)
{
    http_prefix tmp[HTTP_EXEMPT_MAX];
    size_t n;
    return parse_exempt(list, tmp, &n, err, cap);
}

static int exempt(const http *h, const unsigned char a[16])
{
    for (size_t i = 0; i < h->nexempt; i++) {
        const http_prefix *p = &h->exempt[i];
        unsigned whole = p->bits / 8, rest = p->bits % 8;
        if (memcmp(a, p->a, whole) == 0 &&
            (!rest || ((a[whole] ^ p->a[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0))
            return 1;
    }
    return 0;
}

/* The link that points at a's entry, or at the NULL that ends its bucket. */
static http_ip **ip_link(http *h, const unsigned char a[16])
{
    uint32_t x = h->ipseed ^ 2166136261u; /* FNV-1a, seeded */
    for (int i = 0; i < 16; i++)
        x = (x ^ a[i]) * 16777619u;
    http_ip **l = &h->ips[x & h->ipmask];
    while (*l && memcmp((*l)->a, a, 16) != 0)
        l = &(*l)->next;
    return l;
}

/* MHD asks before it takes a connection: one address may hold at most max_per_ip, so a single
 * client (a script that never closes, a flood of streams, slowloris) cannot take all of
 * max_connections. Refusing here closes the socket at once, before it holds a slot. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
    http *h = cls;
    unsigned char a[16];
    (void)len;
    if (h->accept_paused) {
        h->accept_paused = 0;
        log_info("http: accepting connections again (%u open)", h->nconns);
    }
    if (!h->ips || addr16(sa, a) < 0 || exempt(h, a))
        return MHD_YES;
    const http_ip *e = *ip_link(h, a);
    if (!e || e->n < h->o.max_per_ip)
        return MHD_YES;
    h->refused_total++;
    if (memcmp(a, h->refused_ip, 16) != 0) {
        if (log_burst_take(&h->refused_conn, loop_now_ms(), HTTP_LOG_BURST) > 0) {
            char text[INET6_ADDRSTRLEN];
            addr16_text(a, text, sizeof text);
            log_warn("http: refused a connection from %s: it has %u open, the most [http] "
                     "max_connections_per_ip allows",
                     text, e->n);
        }
        memcpy(h->refused_ip, a, 16);
    }
    return MHD_NO;
}

/* Counts a new connection against its address (when limited). Without memory for a new entry
 * it goes uncounted: the limit is a guard, not worth refusing a client over. */
static void ip_count(http *h, struct MHD_Connection *c, http_conn *hc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!h->ips || !ci || addr16(ci->client_addr, hc->addr) < 0 || exempt(h, hc->addr))
        return;
    http_ip **l = ip_link(h, hc->addr);
    if (!*l) {
        http_ip *e = calloc(1, sizeof *e);
        if (!e)
            return;
        memcpy(e->a, hc->addr, 16);
        *l = e;
    }
    (*l)->n++;
    hc->counted = 1;
}

static void ip_uncount(http *h, http_conn *hc)
{
    if (!hc->counted)
        return;
    http_ip **l = ip_link(h, hc->addr);
    http_ip *e = *l;
    if (e && --e->n == 0) {
        *l = e->next;
        free(e);
    }
    hc->counted = 0;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sctx,
                          enum MHD_ConnectionNotificationCode code)
{
    http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        http_conn *hc = calloc(1, sizeof *hc);
        if (!hc)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc->fd = ci ? ci->connect_fd : -1;
        hc->since_ms = loop_now_ms();
        hc->waiting = 1;
        hc->next = h->conns;
        if (h->conns)
            h->conns->prev = hc;
        h->conns = hc;
        *sctx = hc;
        ip_count(h, c, hc);
        /* At the limit MHD stops accepting: further clients wait in the listen backlog, with
         * no answer, until a connection closes. Say so once, or the wait has no explanation. */
        if (++h->nconns >= h->o.max_connections && !h->at_limit) {
            h->at_limit = 1;
            log_warn("http: %u connections open, the most [http] max_connections allows: new "
                     "clients wait until one closes",
                     h->nconns);
        }
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_conn *hc = *sctx;
        if (!hc)
            return;
        if (hc->prev)
            hc->prev->next = hc->next;
        else
            h->conns = hc->next;
        if (hc->next)
            hc->next->prev = hc->prev;
        ip_uncount(h, hc);
        job_free(hc->job); /* a suspended connection never closes: this one is back or NULL */
        free(hc);
        *sctx = NULL;
        h->nconns--;
        if (h->at_limit && h->nconns < h->o.max_connections - h->o.max_connections / 10) {
            h->at_limit = 0;
            log_info("http: %u connections open, below max_connections again", h->nconns);
        }
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void rearm(http *h)
{
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (h->kicked) {
        h->kicked = 0;
        loop_timer_arm(h->timer, 0);
    } else if (MHD_get_timeout(h->d, &t) == MHD_YES) {
        int64_t cap = h->accept_paused ? 1000 : 60000;
        loop_timer_arm(h->timer, (int64_t)t > cap ? cap : (int64_t)t);
    } else if (h->accept_paused) {
        loop_timer_arm(h->timer, 1000);
    } else {
        loop_timer_disarm(h->timer);
    }
}

/* Resumes the connections deferred by defer_heavy(): the next MHD_run() answers them (one of
 * them heavy, the rest deferred again). */
static void resume_deferred(http *h)
{
    for (size_t i = 0; i < h->ndeferred; i++)
        MHD_resume_connection(h->deferred[i]);
    h->ndeferred = 0;
}

static void run(http *h)
{
    if (h->watch_off && loop_watch_mod(h->watch, EPOLLIN) == 0) {
        h->watch_off = 0;
        h->accept_paused = 1; /* 2 again if this run's accept() fails the same way */
    }
    /* With the worker, those deferred wait for room in it (job_done() kicks). */
    if (!h->jobs || !worker_full(h->jobs))
        resume_deferred(h);
    h->heavy_ran = 0;
    h->running = 1;
    MHD_run(h->d);
    h->running = 0;
    if (h->accept_paused == 2 && !h->watch_off && loop_watch_mod(h->watch, 0) == 0)
        h->watch_off = 1;
    rearm(h);
}

static void on_ready(void *user, int fd, uint32_t events)
{
    (void)fd;
    (void)events;
    run(user);
}

static void on_timer(void *user)
{
    run(user);
}

static void kick(void *user)
{
    http *h = user;
    if (h->running)
        h->kicked = 1;
    else
        loop_timer_arm(h->timer, 0);
}

/* Cuts off connections that have not completed a request's headers in time: shutting the
 * socket down makes MHD see the end of the stream and close it at its next run. */
static void on_sweep(void *user)
{
    http *h = user;
    unsigned quiet = log_burst_flush(&h->burst);
    if (quiet)
        log_warn("http: %u more libmicrohttpd messages suppressed", quiet);
    quiet = log_burst_flush(&h->refused);
    if (quiet)
        log_warn("http: %u more refused Host names not logged", quiet);
    quiet = log_burst_flush(&h->refused_conn);
    if (quiet)
        log_warn("http: %u more refused connections not logged", quiet);
    quiet = log_burst_flush(&h->identify);
    if (quiet)
        log_info("http: %u more identify requests not logged", quiet);
    int64_t now = loop_now_ms();
    int64_t limit = HTTP_HEADER_DEADLINE_MS;
    if ((int64_t)h->o.timeout_s * 1000 < limit)
        limit = (int64_t)h->o.timeout_s * 1000;
    for (http_conn *hc = h->conns; hc; hc = hc->next) {
        /* A body must keep up an average rate too, or one byte every few seconds holds the
         * connection for ever: MHD's timeout only measures idleness. */
        int64_t body_limit = limit + (int64_t)(hc->got / HTTP_BODY_MIN_RATE) * 1000;
        if (hc->fd >= 0 && ((hc->waiting && now - hc->since_ms > limit) ||
                            (hc->body && now - hc->since_ms > body_limit))) {
            shutdown(hc->fd, SHUT_RDWR);
            hc->since_ms = now;
        }
    }
    loop_timer_arm(h->sweep, HTTP_SWEEP_MS);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http *h = cls;
    char buf[256];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    /* Ending a stream on purpose (a dropped SSE client, shutdown) and a client that resets its
     * connection (a closed browser tab) are no server problem: debug, and not counted against the
     * burst when debug is off, so they cannot cause a "suppressed" warning either. */
    log_level lv = LOG_LEVEL_WARN;
    if (strstr(buf, "application error generating response") ||
        strstr(buf, "closed by remote peer"))
        lv = LOG_LEVEL_DEBUG;
    if (strstr(buf, "suspending accept()") || strstr(buf, "at FIRST connection")) {
        /* its advice (MHD_OPTION_CONNECTION_LIMIT, busy waiting) is ours to give, in our words,
         * once */
        if (!h->accept_paused)
            log_warn("http: out of file descriptors at %u connections: new ones wait until "
                     "descriptors are free (raise LimitNOFILE= or lower [http] max_connections)",
                     h->nconns);
        h->accept_paused = strstr(buf, "FIRST") ? 2 : 1;
        lv = LOG_LEVEL_DEBUG;
    } else if (h->accept_paused && strstr(buf, "Error accepting connection")) {
        lv = LOG_LEVEL_DEBUG; /* tried again each second meanwhile: said once above */
    }
    if (!log_enabled(lv))
        return;
    if (log_burst_take(&h->burst, loop_now_ms(), HTTP_LOG_BURST) > 0)
        log_msg(lv, "http: %s", buf);
}

/* ---- setup -------------------------------------------------------------------------------- */

/* Parses "127.0.0.1:8080", "[::1]:8080", "[::]:80", "*:80", "localhost:80" or a bare port. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, int *v6,
                        int *dual)
{
    char host[64] = "";
    const char *port;
    memset(ss, 0, sizeof *ss);
    *v6 = *dual = 0;
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
        *v6 = 1;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon) {
            if ((size_t)(colon - spec) >= sizeof host)
                return -1;
            memcpy(host, spec, (size_t)(colon - spec));
            host[colon - spec] = '\0';
            port = colon + 1;
        } else {
            port = spec;
        }
        if (!host[0] || strcmp(host, "*") == 0) {
            snprintf(host, sizeof host, "::");
            *v6 = 1;
        } else if (strcmp(host, "localhost") == 0) {
            snprintf(host, sizeof host, "127.0.0.1");
        }
    }
    if (!*port || strlen(port) > 5)
        return -1;
    unsigned p = 0;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return -1;
        p = p * 10 + (unsigned)(*q - '0');
    }
    if (p > 65535)
        return -1;
    if (*v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -1;
        *dual = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return -1;
        *len = sizeof *a;
    }
    return 0;
}

int http_listen_check(const char *listen, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int v6, dual;
    if (parse_listen(listen, &ss, &len, &v6, &dual) < 0) {
        snprintf(err, cap, "expected IPV4:PORT, [IPV6]:PORT, localhost:PORT or *:PORT with a "
                           "numeric address and a port from 0 to 65535");
        return -1;
    }
    return 0;
}

/* Binds the listening socket ourselves so failures come back with a real errno (EADDRINUSE). */
static int open_listener(const http_options *o, unsigned *port, int *v6, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int dual;
    if (parse_listen(o->listen, &ss, &len, v6, &dual) < 0) {
        snprintf(err, errcap, "listen address '%s' is not host:port, [v6]:port or a port",
                 o->listen);
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "listen %s: socket: %s", o->listen, strerror(e));
        errno = e;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (*v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
        int e = errno;
        int low = unprivileged_port_start();
        uint16_t want = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                       : ((struct sockaddr_in *)&ss)->sin_port);
        if (e == EACCES && want > 0 && want < low) /* port 80 for HomeWizard clients, say */
            snprintf(err, errcap,
                     "listen %s: %s: a port below %d needs the CAP_NET_BIND_SERVICE capability "
                     "(the shipped p1d.service grants it; for p1d run by hand: sudo setcap "
                     "cap_net_bind_service=+ep $(command -v p1d)), or use a port from %d up",
                     o->listen, strerror(e), low, low);
        else
            snprintf(err, errcap, "listen %s: %s", o->listen, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
        *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

/* Each connection is a descriptor: make sure the soft limit admits max_connections of them.
 * Failing is not fatal (a sandbox may refuse setrlimit): one warning, and p1d goes on with the
 * limit it has; connections beyond it are refused by accept() (EMFILE), not by a crash. */
static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t have = rl.rlim_cur;
    rlim_t cap = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (cap > have) {
        rl.rlim_cur = cap;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            have = cap;
        else
            log_warn("http: cannot raise the open-file limit from %llu to %llu: %s; going on "
                     "with %llu",
                     (unsigned long long)have, (unsigned long long)cap, strerror(errno),
                     (unsigned long long)have);
    }
    if (have < want)
        log_warn("http: the open-file limit (%llu) admits about %llu connections, fewer than "
                 "max_connections (%u); raise LimitNOFILE= or lower max_connections",
                 (unsigned long long)have,
                 (unsigned long long)(have > HTTP_FD_RESERVE ? have - HTTP_FD_RESERVE : 0),
                 want - HTTP_FD_RESERVE);
}

void http_set_auth(http *h, const char *token, const char *basic_user, const char *basic_pass)
{
    snprintf(h->o.token, sizeof h->o.token, "%s", token);
    snprintf(h->o.basic_user, sizeof h->o.basic_user, "%s", basic_user);
    snprintf(h->o.basic_pass, sizeof h->o.basic_pass, "%s", basic_pass);
    explicit_bzero(h->bearer, sizeof h->bearer);
    explicit_bzero(h->basic, sizeof h->basic);
    if (h->o.token[0])
        snprintf(h->bearer, sizeof h->bearer, "Bearer %s", h->o.token);
    if (h->o.basic_user[0]) {
        char up[sizeof h->o.basic_user + sizeof h->o.basic_pass + 2];
        int n = snprintf(up, sizeof up, "%s:%s", h->o.basic_user, h->o.basic_pass);
        memcpy(h->basic, "Basic ", 6);
        base64(up, (size_t)n, h->basic + 6, sizeof h->basic - 6);
        explicit_bzero(up, sizeof up);
    }
}

void http_set_stale(http *h, unsigned stale_s)
{
    h->o.stale_s = stale_s ? stale_s : 60;
}

http *http_new(loop *l, meters *ms, const http_options *o, char *err, size_t errcap)
{
    http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errcap, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    h->l = l;
    h->ms = ms;
    h->o = *o;
    h->listen_fd = -1;
    if (!h->o.max_connections)
        h->o.max_connections = 2048;
    if (!h->o.timeout_s)
        h->o.timeout_s = 30;
    if (!h->o.stale_s)
        h->o.stale_s = 60;
    if (!h->o.firmware)
        h->o.firmware = P1_VERSION;
    http_set_auth(h, o->token, o->basic_user, o->basic_pass);
    if (parse_exempt(h->o.per_ip_exempt, h->exempt, &h->nexempt, err, errcap) < 0) {
        free(h);
        errno = EINVAL;
        return NULL;
    }
    /* More than half of max_connections would let one client lock the others out after all. */
    if (h->o.max_per_ip > h->o.max_connections / 2)
        h->o.max_per_ip = h->o.max_connections > 1 ? h->o.max_connections / 2 : 1;
    if (h->o.max_per_ip) {
        size_t nb = 64;
        while (nb < h->o.max_connections && nb < HTTP_IP_BUCKETS_MAX)
            nb *= 2;
        h->ips = calloc(nb, sizeof *h->ips);
        if (!h->ips) {
            snprintf(err, errcap, "out of memory");
            free(h);
            errno = ENOMEM;
            return NULL;
        }
        h->ipmask = nb - 1;
        if (getrandom(&h->ipseed, sizeof h->ipseed, GRND_NONBLOCK) != sizeof h->ipseed)
            h->ipseed = (uint32_t)loop_now_ms();
    }
    char me[sizeof h->hostname] = "";
    if (gethostname(me, sizeof me - 1) == 0)
        lower_copy(h->hostname, me, strlen(me));
    raise_fd_limit(h->o.max_connections + HTTP_FD_RESERVE);

    int v6 = 0;
    h->listen_fd = open_listener(&h->o, &h->port, &v6, err, errcap);
    if (h->listen_fd < 0) {
        int e = errno;
        free(h->ips);
        free(h);
        errno = e;
        return NULL;
    }
    h->sse = http_sse_new(l, kick, add_common, h);
    h->timer = loop_timer_new(l, on_timer, h);
    h->sweep = loop_timer_new(l, on_sweep, h);
    if (!h->sse || !h->timer || !h->sweep) {
        snprintf(err, errcap, "out of memory");
        goto fail_nomem;
    }

    unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, h->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        h->o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errcap, "listen %s: libmicrohttpd failed to start", h->o.listen);
        /* MHD may or may not have closed the socket it was given. */
        if (fcntl(h->listen_fd, F_GETFD) != -1)
            close(h->listen_fd);
        h->listen_fd = -1;
        errno = EIO;
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di) {
        snprintf(err, errcap, "libmicrohttpd has no epoll descriptor");
        errno = EIO;
        goto fail;
    }
    h->watch = loop_watch_add(l, di->epoll_fd, EPOLLIN, on_ready, h);
    if (!h->watch) {
        int e = errno;
        snprintf(err, errcap, "cannot watch the HTTP server: %s", strerror(e));
        errno = e;
        goto fail;
    }
    if (meters_hook(ms, on_reading, h) < 0) {
        snprintf(err, errcap, "too many reading hooks");
        errno = ENOSPC;
        goto fail;
    }
    h->hooked = 1;
    if (meters_hook_gone(ms, on_gone, h) < 0) {
        snprintf(err, errcap, "too many meter hooks");
        errno = ENOSPC;
        goto fail;
    }
    h->hooked = 2;
    if (h->o.jobs.take && h->o.jobs.answer) {
        h->jobs = worker_new(l, HTTP_JOBS_MAX);
        if (!h->jobs)
            log_warn("http: cannot start the worker thread (%s): history and summary answers "
                     "are built on the loop, one at a time",
                     strerror(errno));
    }
    loop_timer_arm(h->sweep, HTTP_SWEEP_MS);
    rearm(h);
    return h;

fail_nomem:
    errno = ENOMEM;
fail:;
    int e = errno;
    http_free(h);
    errno = e;
    return NULL;
}

void http_free(http *h)
{
    if (!h)
        return;
    /* The answer being built is cut short, the ones waiting never start: all are answered 503
     * below, once their connections are resumed (done), as MHD_stop_daemon() needs. */
    h->stopping = 1;
    if (h->jobs) {
        worker_stop(h->jobs);
        if (h->o.jobs.interrupt)
            h->o.jobs.interrupt(h->o.jobs.answer_user);
        worker_free(h->jobs);
        h->jobs = NULL;
    }
    if (h->hooked)
        meters_unhook(h->ms, on_reading, h);
    if (h->hooked > 1)
        meters_unhook_gone(h->ms, on_gone, h);
    loop_watch_del(h->watch);
    loop_timer_del(h->timer);
    loop_timer_del(h->sweep);
    /* Suspended connections must be resumed before MHD_stop_daemon(). */
    http_sse_shutdown(h->sse);
    resume_deferred(h);
    if (h->d) {
        MHD_run(h->d);
        MHD_stop_daemon(h->d);
    } else if (h->listen_fd >= 0) {
        close(h->listen_fd);
    }
    http_sse_free(h->sse);
    for (size_t i = 0; i < h->ncache; i++)
        cache_clear(&h->cache[i]);
    free(h->cache);
    free(h->deferred);
    while (h->conns) {
        http_conn *hc = h->conns;
        h->conns = hc->next;
        ip_uncount(h, hc);
        job_free(hc->job);
        free(hc);
    }
    for (size_t i = 0; h->ips && i <= h->ipmask; i++)
        while (h->ips[i]) {
            http_ip *e = h->ips[i];
            h->ips[i] = e->next;
            free(e);
        }
    free(h->ips);
    free(h);
}

unsigned http_port(const http *h)
{
    return h ? h->port : 0;
}
