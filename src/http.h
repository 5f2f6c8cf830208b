/* http.h: the HTTP API server (libmicrohttpd on the daemon's event loop): JSON, SSE, HomeWizard
 * compatibility, Prometheus metrics and the health check. */
#ifndef P1D_HTTP_H
#define P1D_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "meter.h"

typedef struct http http;

/* Reports whether the store (or any other dependency) is healthy; NULL = always healthy.
 * Writes a short reason into why[cap] when unhealthy. */
typedef int (*http_health_fn)(void *user, char *why, size_t cap);

typedef struct http_options {
    char listen[128];          /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" */
    char token[128];           /* bearer token required on every request; "" = none */
    char basic_user[64];       /* basic auth; "" = none */
    char basic_pass[128];
    char cors_origin[128];     /* Access-Control-Allow-Origin for GET; default "*" */
    unsigned max_connections;  /* default 2048 */
    unsigned timeout_s;        /* idle connection timeout, default 30 */
    unsigned stale_s;          /* /healthz: no telegram for this long = unhealthy; default 60 */
    http_health_fn health;
    void *health_user;
    const char *firmware;      /* reported as firmware_version; default P1_VERSION */
} http_options;

/* Fills o with defaults. */
void http_options_default(http_options *o);
/* Starts listening and registers with the loop; returns NULL with errno set (EADDRINUSE, ...)
 * and an explanation in err[errcap]. Reads meters (borrowed; must outlive the server). */
http *http_new(loop *l, meters *ms, const http_options *o, char *err, size_t errcap);
/* Stops listening, closes every connection, frees; accepts NULL. */
void http_free(http *h);
/* The bound port (useful with port 0 in tests). */
unsigned http_port(const http *h);

#endif
