/* pub.h: the common face of the publishers (Azure Table Storage, MQTT, InfluxDB, and the alerts'
 * sender) that the daemon starts and stops and that /api/meters, /metrics and the dashboard read
 * their state through. */
#ifndef P1D_PUB_H
#define P1D_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

#define PUB_MAX     8   /* publishers one daemon runs at once */
#define PUB_ERR_MAX 256 /* size of pub_status.last_error */

/* A publisher's connection state, for humans and monitoring. */
typedef enum pub_state {
    PUB_IDLE = 0,    /* caught up, or nothing to send yet */
    PUB_SENDING,     /* requests in flight / connected and publishing */
    PUB_RETRYING,    /* the last attempt failed (network, 5xx, 429); waiting out a backoff */
    PUB_AUTH_FAILED, /* the peer refused our credentials; waiting long, nothing is dropped */
    PUB_STOPPED,     /* disabled or shut down */
} pub_state;

/* A snapshot of one publisher. Plain data. */
typedef struct pub_status {
    pub_state state;
    int64_t last_ok_ms;           /* wall clock of the last successful delivery, 0 never */
    int64_t retry_in_ms;          /* time left of the current backoff, 0 none */
    uint64_t requests;            /* requests (or messages) sent since start */
    uint64_t failures;            /* of which failed (network, 5xx, garbage replies, 4xx) */
    uint64_t delivered;           /* points delivered since start, over all meters */
    uint64_t parked;              /* points refused permanently (4xx) and parked, over all meters */
    char last_error[PUB_ERR_MAX]; /* "" none */
} pub_status;

/* One running publisher. Its module creates it (pub_azure_new(), pub_mqtt_new(), ...) and the
 * daemon keeps it in a pub_list; every function pointer takes `impl`. Ownership: `free` stops the
 * publisher (in-flight requests are abandoned; they were never acknowledged, so nothing is lost)
 * and frees impl and the pub itself; it accepts NULL via pub_list users checking first. */
typedef struct pub {
    const char *name; /* "azure", "mqtt", "influxdb", "alerts": the outbox and metrics label */
    void *impl;
    /* Lag of `meter` for this publisher (see outbox_lag); returns 0 or a negative errno
     * (-ENOENT when the publisher has no outbox for that meter yet). */
    int (*lag)(void *impl, const char *meter, outbox_lag *out);
    /* Fills *out with the publisher's current state. */
    void (*status)(void *impl, pub_status *out);
    /* Stops and frees the publisher (and the struct pub that holds this pointer). */
    void (*free)(void *impl);
} pub;

/* The daemon's publishers. Plain data: the daemon fills list[] in main and passes the struct to
 * the HTTP server and the metrics writer, which only read it. */
typedef struct pub_list {
    pub *list[PUB_MAX];
    size_t n;
} pub_list;

/* Name of a state ("idle", "sending", "retrying", "auth_failed", "stopped"); inline so readers
 * of the list need no extra object. */
static inline const char *pub_state_name(pub_state s)
{
    switch (s) {
    case PUB_IDLE:
        return "idle";
    case PUB_SENDING:
        return "sending";
    case PUB_RETRYING:
        return "retrying";
    case PUB_AUTH_FAILED:
        return "auth_failed";
    case PUB_STOPPED:
        return "stopped";
    }
    return "unknown";
}

#endif
