/* pub_mqtt.h: the MQTT publisher (libmosquitto on the daemon's loop): a JSON state topic and one
 * topic per field per meter, Home Assistant discovery, availability by last will, dsmr-reader's
 * topic layout on request, fed through the durable outbox. */
#ifndef P1D_PUB_MQTT_H
#define P1D_PUB_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "meter.h"
#include "pub.h"
#include "pub_payload.h"
#include "store.h"

#define PUB_MQTT_STR_MAX      256  /* host, credentials, paths, topic prefixes */
#define PUB_MQTT_INFLIGHT_MAX 4096 /* QoS 1 messages awaiting PUBACK; publishing pauses beyond */
#define PUB_MQTT_TICK_MS      1000 /* outbox poll, keepalive and rate-limit clock */

/* What the [mqtt] section configures. Durations in milliseconds. Plain data. */
typedef struct pub_mqtt_options {
    char host[PUB_MQTT_STR_MAX];
    unsigned port; /* 0 = 1883, or 8883 with tls */
    char username[PUB_MQTT_STR_MAX];
    char password[PUB_MQTT_STR_MAX];
    char password_file[PUB_MQTT_STR_MAX]; /* first line is the password; wins over password */
    char client_id[PUB_MQTT_STR_MAX];     /* "" = "p1d-<hostname>" */
    int64_t keepalive_ms;
    int tls, tls_insecure;
    char ca_file[PUB_MQTT_STR_MAX];          /* "" = the system's CA store */
    char topic_prefix[PUB_MQTT_STR_MAX];     /* "p1d" */
    int discovery;                           /* Home Assistant discovery on/off */
    char discovery_prefix[PUB_MQTT_STR_MAX]; /* "homeassistant" */
    int qos;                                 /* state and field topics: 0 or 1 (discovery: 1) */
    int retain;                              /* state and field topics retained */
    int64_t rate_ms[PUB_KIND_COUNT];         /* per field kind: at most one message per this long */
    int64_t state_ms;                        /* the JSON state topic */
    int dsmr_reader;                         /* also publish dsmr/reading/<name> */
    char dsmr_meter[METER_NAME_MAX + 1];     /* whose readings; "" = the first meter */
    int alerts; /* [alerts] mqtt: alerts go to PREFIX/alerts; with discovery, an event entity */
    /* Not from the config: a passing client (p1d --test-alert) beside the daemon's own. It uses
     * a client id of its own (client_id + "-test"), sets no will and never says "online" or
     * "offline" on PREFIX/status, announces nothing to Home Assistant and publishes no meter. */
    int passing;
    int64_t reconnect_max_ms; /* backoff cap; also the wait after refused credentials */
    int64_t stale_ms;         /* a meter without a telegram for this long is offline */
} pub_mqtt_options;

/* Fills o with the defaults (the [mqtt] defaults of docs/CONFIG.md). */
void pub_mqtt_options_default(pub_mqtt_options *o);

/* Fills o from the [mqtt] keys of c. Returns 1 when MQTT is configured and enabled, else 0. */
int pub_mqtt_options_from_config(const config *c, pub_mqtt_options *o);

/* Checks what o names without connecting: password_file readable, ca_file (with tls) readable,
 * prefixes without MQTT wildcards. Returns 0, or -1 with a reason naming the key in err[cap]. */
int pub_mqtt_check(const pub_mqtt_options *o, char *err, size_t cap);

/* Starts the publisher on loop l for the meters ms (both borrowed, must outlive it). With a store
 * s (borrowed) every meter's readings come through the outbox "mqtt" and delivery survives restarts
 * and broker outages; without one, live readings only. Connects in the background and keeps
 * reconnecting. Returns the pub (free with its ->free) or NULL with a reason in err[cap]; errno is
 * ELIBACC when libmosquitto cannot be loaded (MQTT stays off, the daemon can run on). */
pub *pub_mqtt_new(loop *l, meters *ms, store *s, const pub_mqtt_options *o, char *err, size_t cap);

/* Tells p (from pub_mqtt_new) what old, the publisher it replaces, still owes the broker: the
 * Home Assistant configs under old's discovery prefix and under those old itself retired (unless p
 * announces there: p deletes the configs of every field of every meter there), the values
 * retained under old's topic prefix and those old retired (unless p publishes there: p deletes
 * each meter's retained messages there; PREFIX/status stays, another p1d may share the prefix),
 * both once per connection, and the meters removed from the registry whose retained configs and
 * values old may not have deleted yet (p deletes them once connected, unless the name is in the
 * registry again). old is only read. */
void pub_mqtt_take_over(pub *p, const pub *old);

/* An alert ([alerts] mqtt): the JSON on TOPIC_PREFIX/alerts, at the configured QoS, never
 * retained (an old alert must not greet every new subscriber). Returns 0 when handed to the
 * broker's connection, -1 while not connected (alerts.c keeps it for later). */
int pub_mqtt_alert(pub *p, const char *json, size_t len);

/* Called when the broker has the last alert p published (its PUBACK; at QoS 0 once written). */
typedef void (*pub_mqtt_alert_fn)(void *user);
void pub_mqtt_on_alert_sent(pub *p, pub_mqtt_alert_fn fn, void *user);

#endif
