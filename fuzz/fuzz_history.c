/* fuzz_history.c: libFuzzer target: the history endpoints of p1d (GET /api/history, GET
 * /api/summary, GET/PUT /api/prices) over a real SQLite history, with any query and any body.
 * Every request gets an answer: a status the API documents, and a body that is valid JSON (or
 * CSV for format=csv) with an error code and message on every 4xx.
 *
 * Input: byte 0 picks the path and method, byte 1 the Content-Type; then the query string (as a
 * browser sends it, percent-encoded) up to the first '\n'; the rest is the body. The history is
 * built once: two meters of the simulated meter, three days around the spring clock change,
 * one telegram a minute, with fixed prices. */
#include "history.h"
#include "json_check.h"
#include "sim_history.h"
#include "store.h"

#include <p1/p1.h>
#include <p1/reading.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGS_MAX 64

static void fail(const char *what, const uint8_t *data, size_t size, const http_reply *r)
{
    fprintf(stderr, "fuzz_history: %s (input of %zu bytes, status %u)\n", what, size,
            r ? r->status : 0);
    fprintf(stderr, "request: %.*s\n", (int)(size < 2000 ? size : 2000), (const char *)data);
    if (r && r->body)
        fprintf(stderr, "reply: %.*s\n", (int)(r->len < 2000 ? r->len : 2000), r->body);
    abort();
}

/* ------------------------------------------------------------------------------------------ */
/* The query of one request, decoded as libmicrohttpd decodes it for http_req_arg().           */

typedef struct fuzz_query {
    size_t n;
    char *key[ARGS_MAX];
    char *value[ARGS_MAX];
} fuzz_query;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Decodes s in place: %XX, '+' for a blank. A NUL that %00 makes ends the text, as in C. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* Splits q (writable, NUL-terminated) at '&' and '='; a key without '=' has the value "". */
static void query_split(fuzz_query *fq, char *q)
{
    fq->n = 0;
    while (*q && fq->n < ARGS_MAX) {
        char *amp = strchr(q, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(q, '=');
        if (eq)
            *eq = '\0';
        unescape(q);
        fq->key[fq->n] = q;
        if (eq) {
            unescape(eq + 1);
            fq->value[fq->n] = eq + 1;
        } else {
            fq->value[fq->n] = q + strlen(q); /* "" */
        }
        fq->n++;
        if (!amp)
            break;
        q = amp + 1;
    }
}

/* The server's http_req_arg() and http_req_repeated(), over the fuzz query: the first value of a
 * key, as libmicrohttpd's lookup gives it. */
const char *http_req_arg(const http_req *req, const char *name)
{
    const fuzz_query *fq = req->conn;
    for (size_t i = 0; i < fq->n; i++)
        if (strcmp(fq->key[i], name) == 0)
            return fq->value[i];
    return NULL;
}

const char *http_req_repeated(const http_req *req, const char *const *names)
{
    const fuzz_query *fq = req->conn;
    for (; *names; names++) {
        int seen = 0;
        for (size_t i = 0; i < fq->n; i++)
            seen += strcmp(fq->key[i], *names) == 0;
        if (seen > 1)
            return *names;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The history: built once, in a directory removed at exit.                                    */

static store *db;
static history *hist;

static void cleanup(void)
{
    history_free(hist);
    store_close(db);
}

/* A fixed price list, set as a user would through the API. */
static void put_prices(void)
{
    static const char csv[] = "time,price,export\n"
                              "2026-03-28T00:00:00+01:00,0.21,0.07\n"
                              "2026-03-28T01:00:00+01:00,0.19,0.06\n"
                              "2026-03-29T03:00:00+02:00,0.25,\n";
    fuzz_query fq = {0};
    char q[] = "kind=power";
    query_split(&fq, q);
    http_req rq = {"PUT", "/api/prices", "text/csv", csv, sizeof csv - 1, &fq};
    http_reply r = {0};
    if (!history_route(hist, &rq, &r) || r.status != 200)
        fail("the seed prices were refused", (const uint8_t *)csv, sizeof csv - 1, &r);
    free(r.body);
}

static void setup(void)
{
    char err[256];
    db = sim_history_open("fuzzhist");
    atexit(cleanup); /* runs before the removal, which was registered first */
    /* 2026-03-28 00:00 CET, through the spring change to 2026-03-31 */
    sim_history_fill(db, "home", 1, 1774652400, 60, 3 * 1440, NULL);
    sim_history_fill(db, "shed", 7, 1774652400 + 3600, 300, 400, NULL);
    hist = history_new(db, NULL, err, sizeof err);
    if (!hist) {
        fprintf(stderr, "fuzz_history: %s\n", err);
        abort();
    }
    put_prices();
}

/* ------------------------------------------------------------------------------------------ */

static const char *const paths[] = {"/api/history", "/api/summary", "/api/prices", "/api/now"};
static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
static const char *const types[] = {NULL, "text/csv", "application/json", "text/plain",
                                    "application/x-www-form-urlencoded"};

/* The statuses the API documents for these endpoints. */
static int status_known(unsigned s)
{
    return s == 200 || s == 204 || s == 400 || s == 404 || s == 405 || s == 413 || s == 415 ||
           s == 422 || s == 500 || s == 503;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        setup();
    if (size < 2)
        return 0;
    const uint8_t *nl = memchr(data + 2, '\n', size - 2);
    size_t qlen = nl ? (size_t)(nl - data) - 2 : size - 2;
    char *q = malloc(qlen + 1);
    const uint8_t *b = nl ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - b);
    char *body = malloc(blen + 1);
    if (!q || !body)
        abort();
    memcpy(q, data + 2, qlen);
    q[qlen] = '\0';
    memcpy(body, b, blen);
    body[blen] = '\0';

    fuzz_query fq;
    query_split(&fq, q);
    const char *path = paths[data[0] % 4];
    const char *method = methods[(data[0] >> 2) % 5];
    int with_body = strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
    http_req rq = {method, path, types[data[1] % 5], with_body ? body : NULL, with_body ? blen : 0,
                   &fq};
    http_reply r = {0};
    int served = history_route(hist, &rq, &r);
    if (strcmp(path, "/api/now") == 0) {
        if (served)
            fail("a path that is not the history's was served", data, size, &r);
    } else {
        if (served != 1)
            fail("a history path was not served", data, size, &r);
        if (!status_known(r.status))
            fail("a status the API does not document", data, size, &r);
        if (r.len && !r.body)
            fail("a length without a body", data, size, &r);
        if (r.status == 405 && !r.allow)
            fail("405 without an Allow header", data, size, &r);
        int json = r.content_type == NULL || strncmp(r.content_type, "application/json", 16) == 0;
        if (json && r.body) {
            ssize_t bad = json_check(r.body, r.len);
            if (bad >= 0)
                fail("a reply that is not valid JSON", data, size, &r);
        } else if (json && r.status != 204) {
            fail("a JSON reply without a body", data, size, &r);
        }
        if (r.status >= 400 &&
            (!json || !r.body || !strstr(r.body, "\"error\"") || !strstr(r.body, "\"message\"")))
            fail("an error reply without an error code and message", data, size, &r);
    }
    free(r.body);
    free(q);
    free(body);
    return 0;
}
