/* price_fetch.h: [prices] fetch_url and fetch_gas_url: p1d downloads the dynamic prices of today
 * and tomorrow by itself (JSON or CSV, as PUT /api/prices takes them) and stores them, so costs
 * and the dashboard's Price now card need no cron job. One GET at a time per kind, on the
 * daemon's loop (libcurl, loaded at run time); a failure is retried with backoff and never
 * touches the prices already stored. */
#ifndef P1D_PRICE_FETCH_H
#define P1D_PRICE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "loop.h"
#include "store.h"

#define PRICE_FETCH_URL_MAX     512              /* [prices] fetch_url as configured */
#define PRICE_FETCH_HEADER_MAX  512              /* [prices] fetch_header */
#define PRICE_FETCH_REQ_MAX     960              /* [prices] fetch_body as configured */
#define PRICE_FETCH_BODY_MAX    (4u << 20)       /* bytes of a reply, as PUT /api/prices */
#define PRICE_FETCH_POLL_S      (30 * 60)        /* while tomorrow's prices are not out yet */
#define PRICE_FETCH_BACKOFF_MIN 10000            /* ms after the first failure, doubling ... */
#define PRICE_FETCH_BACKOFF_MAX (30 * 60 * 1000) /* ... up to this */
#define PRICE_FETCH_ERR_MAX     320

typedef struct price_fetch price_fetch;

typedef struct price_fetch_options {
    char url[2][PRICE_FETCH_URL_MAX]; /* [COST_KIND_POWER], [COST_KIND_GAS]; "" = not fetched */
    char header[2][PRICE_FETCH_HEADER_MAX]; /* "Name: value" sent with it; "" = none */
    char body[2][PRICE_FETCH_REQ_MAX];      /* POSTed (placeholders filled); "" = a GET */
    int gas_day_start;                /* seconds after midnight a date-only gas price starts */
    int after;                        /* seconds after local midnight: tomorrow's prices are due;
                                       * -1: 13:00 CET in the calendar's zone (fetch_after()) */
    int64_t timeout_ms;               /* one request, connect included */
    /* One fetch per kind (p1d --fetch-prices): each kind's first result is reported here (ok 1:
     * stored, 0: failed; the log says what), and nothing is scheduled after it. NULL: the
     * daemon's schedule. */
    void (*once)(void *user, cost_kind kind, int ok);
    void *once_user;
} price_fetch_options;

/* The options of c's [prices] fetch_* keys. Returns 1 (something to fetch), 0 (nothing), or -1
 * with why[cap] naming the key and the problem ("[prices] fetch_url: ..."). */
int price_fetch_options_from_config(const config *c, price_fetch_options *o, char *why, size_t cap);

/* Writes template tmpl with its placeholders filled for the days [from, to) (unix seconds of
 * local midnights) into out[cap]: {from} and {to} as UTC ISO-8601 ("2026-11-26T23:00:00Z"),
 * {from_local} and {to_local} with the local offset (its '+' written %2B, as a query needs),
 * {from_date} and {to_date} as local dates (to_date: the last day, inclusive), {from_unix} and
 * {to_unix} as unix seconds. Returns 0, or -1 with why[wcap] (an unknown or unclosed placeholder,
 * too long). */
int price_fetch_expand(const char *tmpl, int64_t from, int64_t to, char *out, size_t cap, char *why,
                       size_t wcap);

/* Like price_fetch_expand() for a request body: only the placeholders named there are filled
 * (their '+' kept as it is); any other brace (GraphQL, JSON) stays as it is. */
int price_fetch_expand_body(const char *tmpl, int64_t from, int64_t to, char *out, size_t cap,
                            char *why, size_t wcap);

/* When to fetch again after a fetch at `now` that left prices stored up to `covered` (unix
 * seconds): tomorrow's `after` time when they reach the end of tomorrow; else today's `after`
 * time if it is still ahead; else now + PRICE_FETCH_POLL_S. */
int64_t price_fetch_next(int64_t now, int64_t covered, int after);
/* o->after in seconds after local midnight, the default (-1) made concrete for the calendar's
 * zone: 13:00 in CET, 14:00 in EET. */
int price_fetch_after(const price_fetch_options *o);

/* What GET /api/prices tells of one kind's fetching. */
typedef struct price_fetch_status {
    int on;                               /* this kind is fetched */
    int busy;                             /* a request is in flight */
    char url[PRICE_FETCH_URL_MAX];        /* as config_url_shown() shows it */
    int64_t last_ok;                      /* unix seconds of the last list stored; 0 = none yet */
    size_t prices;                        /* prices in it */
    int64_t until;                        /* where it ends (unix seconds) */
    int64_t next;                         /* about when the next fetch starts; 0 while one runs */
    uint64_t failures;                    /* failed fetches since the last one that worked */
    char last_error[PRICE_FETCH_ERR_MAX]; /* why the last one failed; "" after one that worked */
} price_fetch_status;

/* Fills out for `kind` (all zero when f is NULL or does not fetch it). */
void price_fetch_status_get(const price_fetch *f, cost_kind kind, price_fetch_status *out);

/* Starts fetching at once: s (borrowed, must outlive it) stores the prices. NULL with err[cap]
 * on failure; errno ELIBACC when libcurl cannot be loaded (the daemon runs on without it). */
price_fetch *price_fetch_new(loop *l, store *s, const price_fetch_options *o, char *err,
                             size_t cap);
/* Abandons a request in flight and frees f; accepts NULL. */
void price_fetch_free(price_fetch *f);

#endif
