/* http.h: the HTTP API server (libmicrohttpd on the daemon's event loop): JSON, SSE, HomeWizard
 * compatibility, Prometheus metrics and the health check. */
#ifndef P1D_HTTP_H
#define P1D_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "loop.h"
#include "meter.h"

typedef struct http http;
struct pub_list; /* pub.h */

/* Reports whether the store (or any other dependency) is healthy; NULL = always healthy.
 * Writes a short reason into why[cap] when unhealthy. */
typedef int (*http_health_fn)(void *user, char *why, size_t cap);

/* Appends families of its own to the /metrics exposition *out (*len bytes, malloc'd; grown in
 * place, e.g. by metrics_render_price()), with the meters' age limit as http_options.stale_s at
 * the monotonic mono_ms. Returns 0 or a negative errno; *out stays valid either way. */
typedef int (*http_metrics_fn)(void *user, int64_t mono_ms, unsigned stale_s, char **out,
                               size_t *len);

/* A request for a path under /api/ that the server itself does not serve, handed to the route
 * handler of http_options after authorization. Everything is borrowed for the call. */
typedef struct http_req {
    const char *method;       /* "GET", "HEAD", "PUT", ... */
    const char *path;         /* "/api/history", without the query */
    const char *content_type; /* the request's Content-Type, or NULL */
    const char *body;         /* the request body, NUL-terminated, or NULL without one */
    size_t body_len;
    void *conn;               /* the server's connection, for http_req_arg() */
    const struct http_args *args; /* instead of conn: the query copied for the worker thread
                                   * (http_jobs), or NULL */
} http_req;

/* A route handler's answer. body is malloc'd and handed over (the server frees it). */
typedef struct http_reply {
    unsigned status;          /* 200, 204 (no body: none is sent), 400, ... */
    const char *content_type; /* static string; NULL = application/json */
    char *body;
    size_t len;
    char disposition[160];    /* Content-Disposition value, or "" */
    const char *allow;        /* Allow header (with 405), or NULL */
} http_reply;

/* Serves a request (see http_req); returns 1 when it filled *out, 0 when the path is not its own
 * (the server answers 404). */
typedef int (*http_route_fn)(void *user, const http_req *req, http_reply *out);

/* The value of query parameter `name` of a route request (decoded), or NULL when absent. */
const char *http_req_arg(const http_req *req, const char *name);
/* The first of names (a NULL-terminated list) given more than once in the query of a route
 * request ("?step=1h&step=raw"), or NULL: a parameter that takes one value answers 400 then,
 * rather than silently taking the first. */
const char *http_req_repeated(const http_req *req, const char *const *names);
/* http_reply.c (no libmicrohttpd: a fuzz harness links the route handlers without the server).
 * Fills out with status and the JSON {"error": {"code": code, "message": ...}} (the message made
 * from fmt); returns 1, what a route handler returns for a request it answered. */
int http_reply_error(http_reply *out, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* That JSON error into a malloc'd *w (json_init_alloc; free with json_free); 0, or -1 out of
 * memory (nothing to free). */
int http_error_json(json_w *w, const char *code, const char *msg);

#define HTTP_ROUTE_BODY_MAX (4u << 20) /* default bound of a request body to a route handler */

/* Answers built on a worker thread of the server instead of the loop: a GET or HEAD of
 * /api/history or /api/summary is built whole before it is sent (a day of raw readings: 0.25 s
 * here, seconds on a Raspberry Pi), and on the loop it would stop the meters' input, the store,
 * the streams and every other request meanwhile. The server suspends the connection, copies the
 * request (method, path, query; no body), answers it on the worker, and sends the answer from
 * the loop; one whose client has closed its connection before the worker comes to it is not
 * built (the connection is closed). */
typedef struct http_jobs {
    /* On the loop: 1 to answer req on the worker, with *ctx a copy of everything loop-owned the
     * answer needs (one malloc'd block; the server frees it), 0 to answer it on the loop (route).
     * NULL: every answer on the loop. */
    int (*take)(void *user, const http_req *req, void **ctx);
    void *take_user;
    /* On the worker thread: answers req with ctx as route would (0: not its path, 404), using
     * nothing but req, ctx and answer_user, which no other thread uses meanwhile. */
    int (*answer)(void *user, const http_req *req, const void *ctx, http_reply *out);
    void *answer_user;
    /* On the loop when the server stops: makes a running answer end soon (answer_user); or NULL. */
    void (*interrupt)(void *user);
} http_jobs;

typedef struct http_options {
    char listen[128];          /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" */
    char token[128];           /* bearer token required on every request; "" = none */
    char basic_user[64];       /* basic auth; "" = none */
    char basic_pass[128];
    char cors_origin[128];     /* Access-Control-Allow-Origin for GET; default "*" */
    char allowed_hosts[256];   /* Host names besides the built-in ones ("a.b,*.c.d", "*"); "" */
    unsigned max_connections;  /* default 2048 */
    unsigned max_per_ip;       /* connections one client address may hold; 0 = no limit */
    char per_ip_exempt[256];   /* addresses, prefixes not limited so ("::1, 10.0.0.0/8"), "" */
    unsigned timeout_s;        /* idle connection timeout, default 30 */
    unsigned stale_s;          /* /healthz: no telegram for this long = unhealthy; default 60 */
    http_health_fn health;
    void *health_user;
    const char *firmware;      /* reported as firmware_version; default P1_VERSION */
    http_route_fn route;       /* other /api/ paths (history, summary, prices); NULL = 404 */
    void *route_user;
    int history;               /* 1: a store keeps the readings (/api/history and /api/summary
                                * answer); reported as "history" in /api/meters */
    size_t route_body_max;     /* bytes of a request body to route; 0 = HTTP_ROUTE_BODY_MAX */
    /* The daemon's publishers (borrowed, must outlive the server; its entries may change between
     * requests): their state and per-meter lag go into /api/meters and /metrics. NULL = none. */
    const struct pub_list *pubs;
    http_metrics_fn metrics; /* more /metrics families (the price in force); NULL = none */
    void *metrics_user;
    http_jobs jobs; /* answers off the loop; take NULL = none (each heavy one then takes its turn
                     * on the loop: one per run of the server) */
} http_options;

/* Fills o with defaults. */
void http_options_default(http_options *o);
/* Checks a listen address as http_new reads it (IPV4:PORT, [IPV6]:PORT, localhost:PORT, *:PORT
 * or a bare port) without opening anything. Returns 0, or -1 with the reason in err[cap]. */
int http_listen_check(const char *listen, char *err, size_t cap);
/* Checks a list of client addresses and prefixes as http_new reads [http] per_ip_exempt
 * ("127.0.0.0/8, ::1, 192.168.1.5"). Returns 0, or -1 with the reason in err[cap]. */
int http_exempt_check(const char *list, char *err, size_t cap);
/* Starts listening and registers with the loop; returns NULL with errno set (EADDRINUSE, ...)
 * and an explanation in err[errcap]. Reads meters (borrowed; must outlive the server). */
http *http_new(loop *l, meters *ms, const http_options *o, char *err, size_t errcap);
/* Stops listening, answers 503 to the requests still in the worker or waiting for it (the answer
 * being built is interrupted, the thread joined), closes every connection, frees; accepts NULL. */
void http_free(http *h);
/* Replaces the bearer token and the basic-auth user and password (a reload that rotates them):
 * every request from then on needs the new ones; event streams already open stay open. Whether
 * a token or basic auth is set at all should not change this way: what the server allows and
 * announces without them was decided at http_new(). */
void http_set_auth(http *h, const char *token, const char *basic_user, const char *basic_pass);
/* Sets how long a meter may stay silent before /healthz and p1_meter_up count it down (a reload
 * of [http] stale). */
void http_set_stale(http *h, unsigned stale_s);
/* The bound port (useful with port 0 in tests). */
unsigned http_port(const http *h);

#endif
