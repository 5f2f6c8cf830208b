/* pub_mqtt.c: the MQTT publisher: libmosquitto driven by our epoll loop (never its own thread or
 * blocking calls), per-field rate limits, Home Assistant discovery, outbox acknowledgements. */
#define _GNU_SOURCE
#include "pub_mqtt.h"
#include "reading_json.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "alerts.h"
#include "cost.h"
#include "dl_mosquitto.h"
#include "log.h"
#include "lookup.h"
#include "outbox.h"
#include "price_now.h"

#define PM_FETCH_ROUNDS   16    /* outbox batches skimmed per meter per tick while catching up */
#define PM_BACKOFF_MIN_MS 1000  /* first reconnect delay */
#define PM_FLUSH_MS       500   /* how long shutdown waits to hand "offline" to the broker */
#define PM_ACK_MIN_MS     10000 /* least wait for a PUBACK before the connection counts as dead */
#define PM_OLD_PREFIXES   4     /* retired discovery (and topic) prefixes one publisher clears */

/* Per meter: the newest values, what the broker last got, and the outbox acknowledgement state. */
typedef struct pm_meter {
    meter *m; /* registry entry; NULL once the meter left it (retraction pending) */
    char name[METER_NAME_MAX + 1];
    pub_snapshot cur; /* newest values known */
    int have_cur;
    int have_device;   /* cur's device facts come from a live reading (a stored point has none) */
    uint64_t live_seq; /* seq of the live sample cur came from; 0 = from the store */
    uint8_t dirty[PUB_F_COUNT];    /* changed since last sent, waiting for its rate limit */
    uint8_t sent_has[PUB_F_COUNT]; /* sent since this connection started */
    int64_t sent_v[PUB_F_COUNT];
    int64_t sent_ms[PUB_F_COUNT]; /* monotonic time it was sent */
    uint8_t discovered[PUB_F_COUNT];
    uint32_t device_hash;   /* of the device block the discovery configs carry */
    int retracted;          /* m left the registry: its retained configs and values were cleared */
    int retract_logged;     /* ... and the log said so (once per removal) */
    int old_cleared;        /* its configs under every retired discovery prefix: cleared */
    int old_values_cleared; /* its retained values under every retired topic prefix: cleared */
    int avail;              /* PREFIX/METER/availability sent this connection: -1 none, 0, 1 */
    int64_t since_ms;       /* monotonic: publishing for this meter began (or began again) */
    int state_dirty;
    int64_t state_ms;        /* last state message, monotonic; 0 none this connection */
    int64_t ack_ts;          /* newest point taken from the outbox */
    int64_t acked_ts;        /* newest point acknowledged */
    uint64_t unacked_points; /* points taken from the outbox and not acknowledged yet */
    unsigned inflight;       /* QoS 1 messages of this meter awaiting PUBACK */
    int ack_failing;         /* the database refused to record a delivery (logged once) */
} pm_meter;

typedef struct pm_inflight {
    int mid;
    pm_meter *pm;
} pm_inflight;

typedef struct pub_mqtt {
    pub face;
    loop *l;
    meters *ms;
    outbox *ob; /* NULL without a store: live readings only */
    pub_mqtt_options o;
    const dl_mosquitto *mq; /* libmosquitto, loaded when the publisher starts */
    struct mosquitto *mosq;
    loop_watch *watch;
    int watch_fd;
    uint32_t watch_ev;
    loop_timer *tick;
    int connected;       /* CONNACK accepted */
    int attempted;       /* mosquitto_connect_async was called once */
    /* o.host is a name, not a numeric address: libmosquitto's connect would look it up on
     * the loop (getaddrinfo(), the resolver's whole timeout while DNS does not answer), so it
     * is looked up off the loop first (lookup.h) */
    int by_name;
    lookup *lookup;      /* the lookup running, or NULL */
    int lookup_done;     /* lookup_addr / lookup_error hold the answer for the next attempt */
    int lookup_error;    /* getaddrinfo()'s result */
    unsigned addr_turn;  /* which of the name's addresses the next attempt takes (of a failed
                          * attempt: the next; an AAAA record first and a broker on IPv4 alone) */
    char lookup_addr[NI_MAXHOST];
    int refused;         /* the last CONNACK refused us (credentials) */
    int down_logged;     /* the current outage has been logged */
    int retry_planned;   /* conn_down ran; cleared by the next attempt */
    int no_ack;          /* this connection is dropped because the broker acknowledges nothing */
    int64_t ack_wait_ms; /* monotonic: since when QoS 1 messages wait with no PUBACK coming */
    int64_t backoff_ms;
    int64_t next_connect_ms; /* monotonic */
    char status_topic[PUB_TOPIC_MAX];
    char ha_status_topic[PUB_TOPIC_MAX];
    /* With discovery on, [alerts] mqtt off and a store whose alerts table shows that this p1d
     * published alerts on MQTT before: the alerts entity's config topic, looked at on each
     * connection; a config retained there is one an earlier run announced (p1d does not
     * remember that over a restart) and is deleted. "" otherwise. */
    char alerts_sweep[PUB_TOPIC_MAX];
    /* Discovery prefixes earlier publishers announced under and this one does not: their configs
     * are deleted, once per connection. */
    char old_prefix[PM_OLD_PREFIXES][PUB_MQTT_STR_MAX];
    size_t nold;
    int old_logged;
    /* Topic prefixes earlier publishers published under and this one does not: the values
     * retained there (old_topic_retain: the values were; the availability always is) are
     * deleted, once per connection. PREFIX/status stays: another p1d may share the prefix. */
    char old_topic[PM_OLD_PREFIXES][PUB_MQTT_STR_MAX];
    int old_topic_retain[PM_OLD_PREFIXES];
    size_t nold_topic;
    int old_topic_logged;
    char lib_err[160]; /* libmosquitto's error lines of this attempt, short, joined by ", " */
    pm_meter **pm;
    size_t npm, cappm;
    pm_inflight *infl;
    size_t ninfl;
    store_point *pts;
    char *buf; /* PUB_PAYLOAD_MAX */
    pub_status st;
    int gone_hooked; /* on_gone is registered with ms */
    int swept;       /* the outbox's meters were compared with the registry */
    /* The price in force (PREFIX/price/...), with a store; NULL without one. */
    price_now *price;
    int price_state; /* this connection: -1 nothing said, 0 "none applies", 1 prices sent */
    price_now_value price_sent; /* what price_state 1 sent */
    uint8_t price_discovered[2];
    int price_ever;     /* prices were published (by this publisher or one it took over from) */
    int price_old_done; /* this connection: the price topics under retired prefixes deleted */
    /* [alerts] mqtt's event entity: announced this connection; announced by this publisher or
     * one it took over from; this connection, its configs no longer announced were deleted */
    int alerts_discovered, alerts_ever, alerts_old_done;
    int alert_mid; /* of the last alert published; 0 none waiting for the broker */
    pub_mqtt_alert_fn alert_sent;
    void *alert_user;
} pub_mqtt;

void pub_mqtt_options_default(pub_mqtt_options *o)
{
    memset(o, 0, sizeof *o);
    o->keepalive_ms = 60000;
    snprintf(o->topic_prefix, sizeof o->topic_prefix, "p1d");
    o->discovery = 1;
    snprintf(o->discovery_prefix, sizeof o->discovery_prefix, "homeassistant");
    o->retain = 1;
    o->rate_ms[PUB_KIND_POWER] = 10000;
    o->rate_ms[PUB_KIND_VOLTAGE] = 10000;
    o->rate_ms[PUB_KIND_CURRENT] = 10000;
    o->rate_ms[PUB_KIND_COUNTER] = 0;
    o->state_ms = 10000;
    o->reconnect_max_ms = 60000;
    o->stale_ms = 60000;
}

int pub_mqtt_options_from_config(const config *c, pub_mqtt_options *o)
{
    pub_mqtt_options_default(o);
    snprintf(o->host, sizeof o->host, "%s", c->mqtt_host);
    o->port = (unsigned)c->mqtt_port;
    snprintf(o->username, sizeof o->username, "%s", c->mqtt_username);
    snprintf(o->password, sizeof o->password, "%s", c->mqtt_password);
    snprintf(o->password_file, sizeof o->password_file, "%s", c->mqtt_password_file);
    snprintf(o->client_id, sizeof o->client_id, "%s", c->mqtt_client_id);
    o->keepalive_ms = c->mqtt_keepalive;
    o->tls = (int)c->mqtt_tls;
    o->tls_insecure = (int)c->mqtt_tls_insecure;
    snprintf(o->ca_file, sizeof o->ca_file, "%s", c->mqtt_ca_file);
    snprintf(o->topic_prefix, sizeof o->topic_prefix, "%s", c->mqtt_topic_prefix);
    o->discovery = (int)c->mqtt_discovery;
    snprintf(o->discovery_prefix, sizeof o->discovery_prefix, "%s", c->mqtt_discovery_prefix);
    o->qos = (int)c->mqtt_qos;
    o->retain = (int)c->mqtt_retain;
    o->rate_ms[PUB_KIND_POWER] = c->mqtt_rate_power;
    o->rate_ms[PUB_KIND_VOLTAGE] = c->mqtt_rate_voltage;
    o->rate_ms[PUB_KIND_CURRENT] = c->mqtt_rate_current;
    o->rate_ms[PUB_KIND_COUNTER] = c->mqtt_rate_counter;
    o->state_ms = c->mqtt_state_interval;
    o->dsmr_reader = (int)c->mqtt_dsmr_reader;
    snprintf(o->dsmr_meter, sizeof o->dsmr_meter, "%s", c->mqtt_dsmr_meter);
    o->reconnect_max_ms = c->mqtt_reconnect_max;
    o->stale_ms = c->http_stale; /* one meaning of a silent meter: /healthz's */
    o->alerts = (int)c->alerts_mqtt;
    return c->mqtt_enabled && c->mqtt_host[0];
}

static void set_error(pub_mqtt *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(pub_mqtt *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->st.last_error, sizeof p->st.last_error, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------
 * The socket on our loop
 * ------------------------------------------------------------------------------------------- */

static void on_fd(void *user, int fd, uint32_t events);
static pm_meter *pm_get(pub_mqtt *p, meter *m);

/* libmosquitto opens and closes its socket by itself (connect, reconnect, errors): follow it
 * after every call into the library, and ask for EPOLLOUT only while it has bytes queued. */
static void sync_watch(pub_mqtt *p)
{
    /* While a retry is planned the library may still hold the dead socket (a TLS connect that
     * failed keeps it until the next attempt): watching it would report EPOLLHUP forever. */
    int fd = p->retry_planned ? -1 : p->mq->socket(p->mosq);
    if (fd != p->watch_fd) {
        loop_watch_del(p->watch);
        p->watch = NULL;
        p->watch_fd = -1;
    }
    if (fd < 0)
        return;
    uint32_t ev = EPOLLIN | (p->mq->want_write(p->mosq) ? EPOLLOUT : 0);
    if (!p->watch) {
        p->watch = loop_watch_add(p->l, fd, ev, on_fd, p);
        if (p->watch) {
            p->watch_fd = fd;
            p->watch_ev = ev;
        }
    } else if (ev != p->watch_ev && loop_watch_mod(p->watch, ev) == 0) {
        p->watch_ev = ev;
    }
}

static void schedule_reconnect(pub_mqtt *p)
{
    int64_t now = loop_now_ms();
    if (p->refused) {
        p->backoff_ms = p->o.reconnect_max_ms;
    } else if (p->backoff_ms < PM_BACKOFF_MIN_MS) {
        p->backoff_ms = PM_BACKOFF_MIN_MS;
    }
    /* Up to a quarter of jitter so many p1d instances do not reconnect in lockstep. */
    int64_t jitter = p->backoff_ms / 4 > 0 ? (int64_t)(random() % (p->backoff_ms / 4 + 1)) : 0;
    p->next_connect_ms = now + p->backoff_ms + jitter;
    p->st.retry_in_ms = p->backoff_ms + jitter;
    if (!p->refused) {
        p->backoff_ms *= 2;
        if (p->backoff_ms > p->o.reconnect_max_ms)
            p->backoff_ms = p->o.reconnect_max_ms;
    }
}

/* Why the connection went down or never came up, in words: libmosquitto's own strings say "A TLS
 * error occurred." or "Unknown error." for the cases a user most needs to tell apart. */
static void down_reason(const pub_mqtt *p, int rc, int err, int was, char *out, size_t cap)
{
    if (p->no_ack) {
        snprintf(out, cap, "the broker acknowledged no message (PUBACK) for %" PRId64 " s",
                 (loop_now_ms() - p->ack_wait_ms) / 1000);
    } else if (rc == MOSQ_ERR_TLS || (p->o.tls && !was && p->lib_err[0])) {
        snprintf(out, cap,
                 "TLS handshake failed: %s; check ca_file and the name in the broker's "
                 "certificate",
                 p->lib_err[0] ? p->lib_err : p->mq->strerror(rc));
    } else if (rc == MOSQ_ERR_NO_CONN && !was) {
        snprintf(out, cap, "no TCP connection: refused, or the host is unreachable");
    } else if (rc == MOSQ_ERR_EAI && p->lookup_error != 0) {
        snprintf(out, cap, "cannot look up %.160s: %s", p->o.host,
                 gai_strerror(p->lookup_error));
    } else if (rc == MOSQ_ERR_KEEPALIVE) {
        if (was)
            snprintf(out, cap, "no answer from the broker within %" PRId64 " s (keepalive)",
                     p->o.keepalive_ms / 1000);
        else
            snprintf(out, cap, "the broker accepted TCP but sent no CONNACK within %" PRId64 " s",
                     p->o.keepalive_ms / 1000);
    } else if (rc == MOSQ_ERR_ERRNO && err != 0) {
        snprintf(out, cap, "%s", strerror(err));
    } else {
        snprintf(out, cap, "%s", p->mq->strerror(rc));
    }
}

/* The connection is gone (or never came up): forget what is in flight (never acknowledged, so it
 * is sent again) and plan the next attempt. Idempotent. */
static void conn_down(pub_mqtt *p, int rc)
{
    int err = errno; /* of the failed call, before the outbox below touches it */
    if (p->retry_planned)
        return;
    p->retry_planned = 1;
    sync_watch(p); /* stop watching the socket before the next attempt closes it */
    int was = p->connected;
    p->connected = 0;
    p->st.failures++;
    if (!was)
        p->addr_turn++; /* a lost connection tries its address again first */
    /* every meter, not only those published so far: a broker down from the start counts too */
    for (size_t i = 0; i < p->ms->n; i++) {
        pm_meter *pm = pm_get(p, p->ms->list[i]);
        store_point next;
        if (!pm)
            continue;
        /* a meter with points the broker does not have yet (one past the cursor is enough to
         * know): this attempt failed for it too */
        if (p->ob && (pm->inflight > 0 || outbox_fetch(p->ob, pm->name, &next, 1) > 0))
            outbox_count_retry(p->ob, pm->name);
        pm->inflight = 0;
    }
    for (size_t i = 0; i < p->npm; i++) /* the removed ones waiting for their retraction too */
        p->pm[i]->inflight = 0;
    p->ninfl = 0;
    char why[PUB_ERR_MAX];
    down_reason(p, rc, err, was, why, sizeof why);
    if (was || !p->down_logged) {
        if (p->refused) {
            /* logged once by on_connect */
        } else if (was) {
            log_warn("mqtt: connection to %s:%u lost (%s); reconnecting", p->o.host, p->o.port,
                     why);
        } else {
            log_warn("mqtt: cannot connect to %s:%u (%s); retrying with backoff", p->o.host,
                     p->o.port, why);
        }
        p->down_logged = 1;
    }
    if (!p->refused)
        set_error(p, "%s", why);
    p->st.state = p->refused ? PUB_AUTH_FAILED : PUB_RETRYING;
    schedule_reconnect(p);
}

static void connect_attempt(pub_mqtt *p);

static void on_lookup(void *user, int error, struct addrinfo *res)
{
    pub_mqtt *p = user;
    p->lookup = NULL;
    p->lookup_error = error;
    p->lookup_addr[0] = '\0';
    /* libmosquitto's non-blocking connect takes one address (the first of its own lookup):
     * each failed attempt takes the next of ours, so that every address gets its turn */
    if (error == 0) {
        unsigned n = 0;
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            n++;
        const struct addrinfo *ai = res;
        for (unsigned i = p->addr_turn % n; i > 0; i--)
            ai = ai->ai_next;
        p->lookup_error = getnameinfo(ai->ai_addr, ai->ai_addrlen, p->lookup_addr,
                                      sizeof p->lookup_addr, NULL, 0, NI_NUMERICHOST);
    }
    if (res)
        freeaddrinfo(res);
    p->lookup_done = 1;
    connect_attempt(p);
}

static void connect_attempt(pub_mqtt *p)
{
    int rc;
    if (p->lookup)
        return; /* the name is being looked up: on_lookup() comes back here */
    if (p->by_name && !p->lookup_done) {
        char port[8];
        snprintf(port, sizeof port, "%u", p->o.port);
        p->lookup = lookup_start(p->l, p->o.host, port, on_lookup, p);
        if (p->lookup)
            return;
        /* no thread: look it up on the loop, as libmosquitto would */
        p->lookup_done = 1;
        p->lookup_error = 0;
        snprintf(p->lookup_addr, sizeof p->lookup_addr, "%s", p->o.host);
    }
    p->retry_planned = 0;
    p->no_ack = 0;
    p->lib_err[0] = '\0';
    if (p->by_name) {
        p->lookup_done = 0; /* every attempt looks the name up again */
        if (p->lookup_error != 0) {
            errno = 0;
            conn_down(p, MOSQ_ERR_EAI);
            sync_watch(p);
            return;
        }
        /* The address found, so that libmosquitto has nothing to look up; with TLS the name
         * itself, which the broker's certificate must carry: libmosquitto then looks it up
         * once more on the loop (glibc keeps no cache; a DNS server that just answered
         * usually answers again at once, one that stopped answering in between stalls). */
        p->attempted = 1;
        rc = p->mq->connect_async(p->mosq, p->o.tls ? p->o.host : p->lookup_addr,
                                  (int)p->o.port, (int)(p->o.keepalive_ms / 1000));
    } else if (!p->attempted) {
        p->attempted = 1;
        rc = p->mq->connect_async(p->mosq, p->o.host, (int)p->o.port,
                                  (int)(p->o.keepalive_ms / 1000));
    } else {
        rc = p->mq->reconnect_async(p->mosq);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        p->refused = 0;
        conn_down(p, rc);
    }
    sync_watch(p);
}

static void on_fd(void *user, int fd, uint32_t events)
{
    pub_mqtt *p = user;
    int rc = MOSQ_ERR_SUCCESS, soerr = 0;
    socklen_t len = sizeof soerr;
    /* A failed connect (refused, unreachable) shows as a hang-up with the reason on the socket.
     * With TLS the library's first handshake write has already taken that reason: all that is
     * left is a socket that never got a peer. */
    if ((events & (EPOLLERR | EPOLLHUP)) && !p->connected) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
            errno = soerr;
            rc = MOSQ_ERR_ERRNO;
        } else if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 && errno == ENOTCONN) {
            rc = MOSQ_ERR_NO_CONN;
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            conn_down(p, rc);
            sync_watch(p);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        rc = p->mq->loop_read(p->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (events & EPOLLOUT) && p->mq->socket(p->mosq) >= 0)
        rc = p->mq->loop_write(p->mosq, 1);
    /* Any error, or a hang-up the read did not turn into one, ends this connection: waiting for
     * the library to close the socket itself would spin on a level-triggered EPOLLHUP. */
    if (rc != MOSQ_ERR_SUCCESS || (events & (EPOLLERR | EPOLLHUP)))
        conn_down(p, rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_CONN_LOST);
    sync_watch(p);
}

/* ---------------------------------------------------------------------------------------------
 * Publishing
 * ------------------------------------------------------------------------------------------- */

/* A new entry for the meter named name, without its registry entry yet; NULL when out of memory. */
static pm_meter *pm_new(pub_mqtt *p, const char *name)
{
    if (p->npm == p->cappm) {
        size_t cap = p->cappm ? p->cappm * 2 : 8;
        pm_meter **n = realloc(p->pm, cap * sizeof *n);
        if (!n)
            return NULL;
        p->pm = n;
        p->cappm = cap;
    }
    pm_meter *pm = calloc(1, sizeof *pm);
    if (!pm)
        return NULL;
    snprintf(pm->name, sizeof pm->name, "%s", name);
    pm->avail = -1;
    pm->since_ms = loop_now_ms();
    p->pm[p->npm++] = pm;
    return pm;
}

static pm_meter *pm_get(pub_mqtt *p, meter *m)
{
    for (size_t i = 0; i < p->npm; i++)
        if (p->pm[i]->m == m)
            return p->pm[i];
    /* A name removed and added again: the new meter takes over what the broker was told, so a
     * retraction still pending cannot delete what is announced now. */
    for (size_t i = 0; i < p->npm; i++) {
        pm_meter *pm = p->pm[i];
        if (pm->m || strcmp(pm->name, m->name) != 0)
            continue;
        pm->m = m;
        pm->retracted = 0;
        pm->retract_logged = 0;
        pm->live_seq = 0; /* the new meter counts from 1 again */
        pm->since_ms = loop_now_ms();
        return pm;
    }
    pm_meter *pm = pm_new(p, m->name);
    if (pm)
        pm->m = m;
    return pm;
}

/* mid_out (NULL: none) gets the message id before libmosquitto may write the message and call
 * on_publish (at QoS 0 from inside this call). */
static int publish_mid(pub_mqtt *p, pm_meter *track, const char *topic, const char *payload,
                       size_t len, int qos, int retain, int *mid_out)
{
    int mid = 0;
    int rc = p->mq->publish(p->mosq, mid_out ? mid_out : &mid, topic, (int)len, payload, qos,
                            retain != 0);
    if (mid_out)
        mid = *mid_out;
    p->st.requests++;
    if (rc != MOSQ_ERR_SUCCESS) {
        p->st.failures++;
        set_error(p, "publish %s: %s", topic, p->mq->strerror(rc));
        log_debug("mqtt: publish %s: %s", topic, p->mq->strerror(rc));
        return -1;
    }
    if (qos > 0 && track && p->ninfl < PUB_MQTT_INFLIGHT_MAX) {
        if (p->ninfl == 0)
            p->ack_wait_ms = loop_now_ms();
        p->infl[p->ninfl].mid = mid;
        p->infl[p->ninfl].pm = track;
        p->ninfl++;
        track->inflight++;
    }
    return 0;
}

static int publish(pub_mqtt *p, pm_meter *track, const char *topic, const char *payload, size_t len,
                   int qos, int retain)
{
    return publish_mid(p, track, topic, payload, len, qos, retain, NULL);
}

static uint32_t device_hash(const pub_snapshot *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const char *parts[4 + PUB_MBUS_COUNT] = {s->manufacturer, s->model, s->version, s->serial};
    for (int k = 0; k < PUB_MBUS_COUNT; k++)
        parts[4 + k] = s->mbus_id[k];
    for (int i = 0; i < 4 + PUB_MBUS_COUNT; i++)
        for (const char *c = parts[i]; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
    /* the M-Bus devices name the meter's as via_device only once it has values of its own */
    h = (h ^ (uint8_t)pub_payload_has_meter_value(s)) * 16777619u;
    return h;
}

static int send_discovery(pub_mqtt *p, pm_meter *pm, pub_field f)
{
    char topic[PUB_TOPIC_MAX];
    json_w w;
    if (!pub_payload_discovery_topic(topic, sizeof topic, p->o.discovery_prefix, pm->name, f))
        return -1;
    json_init_fixed(&w, p->buf, PUB_PAYLOAD_MAX, 0);
    pub_payload_discovery(&w, p->o.topic_prefix, p->status_topic, pm->name, &pm->cur, f);
    if (!json_ok(&w))
        return -1;
    if (publish(p, NULL, topic, w.buf, w.len, 1, 1) < 0)
        return -1;
    pm->discovered[f] = 1;
    return 0;
}

static const meter_sample *live_sample(const pm_meter *pm)
{
    const meter_sample *s = meter_latest(pm->m);
    return s && s->seq == pm->live_seq ? s : NULL;
}

static int send_state(pub_mqtt *p, pm_meter *pm)
{
    char topic[PUB_TOPIC_MAX];
    json_w w;
    const meter_sample *live = live_sample(pm);
    /* The state is /api/now's reading; a stored point (a backlog drained before the meter's first
     * telegram) has only some of it, so it goes out on the field topics alone. */
    if (live) {
        json_init_fixed(&w, p->buf, PUB_PAYLOAD_MAX, 0);
        reading_json_reading(&w, &live->reading);
        snprintf(topic, sizeof topic, "%s/%s/state", p->o.topic_prefix, pm->name);
        if (json_ok(&w) && publish(p, pm, topic, w.buf, w.len, p->o.qos, p->o.retain) < 0)
            return -1;
    }
    int is_dsmr =
        p->o.dsmr_reader && (p->o.dsmr_meter[0] ? strcmp(p->o.dsmr_meter, pm->name) == 0
                                                : p->ms->n > 0 && p->ms->list[0] == pm->m);
    for (int i = 0; is_dsmr && i < pub_payload_dsmr_count(); i++) {
        const char *name;
        char val[PUB_VALUE_MAX];
        size_t n = pub_payload_dsmr(&pm->cur, i, &name, val, sizeof val);
        if (n == 0)
            continue;
        snprintf(topic, sizeof topic, "dsmr/reading/%s", name);
        if (publish(p, pm, topic, val, n, p->o.qos, p->o.retain) < 0)
            return -1;
    }
    return 0;
}

/* Sends what changed and whose rate limit allows it (the trailing value of a held field goes out
 * once its interval has passed, even when no newer reading comes). Returns 0 or -1. */
static int publish_dirty(pub_mqtt *p, pm_meter *pm, int64_t now)
{
    char topic[PUB_TOPIC_MAX], val[PUB_VALUE_MAX];
    if (!pm->have_cur)
        return 0;
    uint32_t dh = device_hash(&pm->cur);
    if (dh != pm->device_hash) {
        memset(pm->discovered, 0, sizeof pm->discovered);
        pm->device_hash = dh;
    }
    /* Announce only once a telegram told who the meter is: a config sent from a stored point
     * would carry a placeholder device and replace the retained one until the next telegram. */
    for (int f = 0; f < PUB_F_COUNT && p->o.discovery && pm->have_device; f++)
        if (pm->cur.has[f] && !pm->discovered[f] && send_discovery(p, pm, (pub_field)f) < 0)
            return -1;
    for (int f = 0; f < PUB_F_COUNT; f++) {
        if (!pm->dirty[f])
            continue;
        if (!pm->cur.has[f]) {
            pm->dirty[f] = 0;
            continue;
        }
        const pub_field_info *fi = pub_payload_field((pub_field)f);
        if (pm->sent_has[f] && now - pm->sent_ms[f] < p->o.rate_ms[fi->kind])
            continue;
        size_t n = pub_payload_value(&pm->cur, (pub_field)f, val, sizeof val);
        snprintf(topic, sizeof topic, "%s/%s/%s", p->o.topic_prefix, pm->name, fi->name);
        if (n && publish(p, pm, topic, val, n, p->o.qos, p->o.retain) < 0)
            return -1;
        pm->sent_has[f] = 1;
        pm->sent_v[f] = pm->cur.v[f];
        pm->sent_ms[f] = now;
        pm->dirty[f] = 0;
    }
    if (pm->state_dirty && (pm->state_ms == 0 || now - pm->state_ms >= p->o.state_ms)) {
        if (send_state(p, pm) < 0)
            return -1;
        pm->state_dirty = 0;
        pm->state_ms = now;
    }
    return 0;
}

static void merge(pm_meter *pm, const pub_snapshot *s)
{
    for (int f = 0; f < PUB_F_COUNT; f++)
        if (s->has[f] && (!pm->sent_has[f] || pm->sent_v[f] != s->v[f]))
            pm->dirty[f] = 1;
    /* A stored point carries no device facts; keep the ones a live reading gave. */
    if (!s->manufacturer[0] && pm->have_cur) {
        pub_snapshot keep = *s;
        memcpy(keep.manufacturer, pm->cur.manufacturer, sizeof keep.manufacturer);
        memcpy(keep.model, pm->cur.model, sizeof keep.model);
        memcpy(keep.version, pm->cur.version, sizeof keep.version);
        memcpy(keep.serial, pm->cur.serial, sizeof keep.serial);
        memcpy(keep.mbus_id, pm->cur.mbus_id, sizeof keep.mbus_id);
        pm->cur = keep;
    } else {
        pm->cur = *s;
    }
    pm->have_cur = 1;
    pm->state_dirty = 1;
}

static void try_ack(pub_mqtt *p, pm_meter *pm)
{
    if (!p->ob || pm->inflight > 0 || pm->ack_ts <= pm->acked_ts)
        return;
    int rc = outbox_ack(p->ob, pm->name, pm->ack_ts);
    if (rc < 0) {
        /* A full disk refuses it every second until space returns: said once per episode. */
        set_error(p, "outbox: %s", strerror(-rc));
        if (!pm->ack_failing)
            log_warn("mqtt: %s: cannot record the delivery: %s; tried again every second, "
                     "nothing is lost",
                     pm->name, strerror(-rc));
        pm->ack_failing = 1;
        return;
    }
    if (pm->ack_failing) {
        log_info("mqtt: %s: deliveries are recorded again", pm->name);
        if (strncmp(p->st.last_error, "outbox: ", 8) == 0)
            p->st.last_error[0] = '\0'; /* null in /api/meters again */
    }
    pm->ack_failing = 0;
    pm->acked_ts = pm->ack_ts;
    p->st.delivered += pm->unacked_points;
    pm->unacked_points = 0;
    p->st.last_ok_ms = loop_wall_ms();
}

static int64_t sample_ts(const meter_sample *s)
{
    int64_t t;
    if (s->reading.has_time && s->reading.time.valid && p1_time_to_unix(&s->reading.time, &t) == 0)
        return t;
    return s->received_ms / 1000;
}

/* Empty retained messages on the discovery config topic of every field of pm under disc_prefix:
 * Home Assistant removes those entities, and a device once it has none left. Also the fields this
 * run never sent: a run before a restart may have. track: pm when its acknowledgements are waited
 * for (a removed meter), or NULL. Returns 0 or -1. */
static int clear_configs(pub_mqtt *p, pm_meter *pm, const char *disc_prefix, pm_meter *track)
{
    char topic[PUB_TOPIC_MAX];
    for (int f = 0; f < PUB_F_COUNT; f++)
        if (pub_payload_discovery_topic(topic, sizeof topic, disc_prefix, pm->name, (pub_field)f) &&
            publish(p, track, topic, "", 0, 1, 1) < 0)
            return -1;
    return 0;
}

/* Empty retained messages on pm's topics under topic_prefix: every field and the state (where
 * they were retained) and the availability (always retained). track as for clear_configs().
 * Returns 0 or -1. */
static int clear_values(pub_mqtt *p, pm_meter *pm, const char *topic_prefix, int retained,
                        pm_meter *track)
{
    char topic[PUB_TOPIC_MAX];
    for (int f = 0; retained && f < PUB_F_COUNT; f++) {
        snprintf(topic, sizeof topic, "%s/%s/%s", topic_prefix, pm->name,
                 pub_payload_field((pub_field)f)->name);
        if (publish(p, track, topic, "", 0, p->o.qos, 1) < 0)
            return -1;
    }
    snprintf(topic, sizeof topic, "%s/%s/state", topic_prefix, pm->name);
    if (retained && publish(p, track, topic, "", 0, p->o.qos, 1) < 0)
        return -1;
    snprintf(topic, sizeof topic, "%s/%s/availability", topic_prefix, pm->name);
    return publish(p, track, topic, "", 0, 1, 1);
}

/* The topic prefix changed by a reload: pm's values retained under every old one are deleted,
 * once per connection, so nothing reads them there as current. Returns 0 or -1. */
static int clear_old_values(pub_mqtt *p, pm_meter *pm, pm_meter *track)
{
    if (!p->nold_topic || pm->old_values_cleared)
        return 0;
    for (size_t i = 0; i < p->nold_topic; i++)
        if (clear_values(p, pm, p->old_topic[i], p->old_topic_retain[i], track) < 0)
            return -1;
    pm->old_values_cleared = 1;
    for (size_t i = 0; i < p->nold_topic && !p->old_topic_logged; i++)
        log_info("mqtt: topic_prefix is %s now; deleting the values retained under %s/",
                 p->o.topic_prefix, p->old_topic[i]);
    p->old_topic_logged = 1;
    return 0;
}

/* Empty retained messages on pm's configs under every retired prefix. Returns 0 or -1. */
static int clear_old_configs(pub_mqtt *p, pm_meter *pm, pm_meter *track)
{
    for (size_t i = 0; i < p->nold; i++)
        if (clear_configs(p, pm, p->old_prefix[i], track) < 0)
            return -1;
    return 0;
}

/* A meter removed by a reload: its discovery configs and its retained values are deleted, once per
 * connection. Each QoS 1 deletion counts in pm->inflight: pm is owed until the broker has them all
 * (a publisher restarted before then takes it over). Returns 0 or -1. */
static int retract(pub_mqtt *p, pm_meter *pm)
{
    if (p->o.discovery && clear_configs(p, pm, p->o.discovery_prefix, pm) < 0)
        return -1;
    if (clear_values(p, pm, p->o.topic_prefix, p->o.retain, pm) < 0)
        return -1;
    pm->avail = -1;
    if (!pm->retract_logged)
        log_info("mqtt: %s: removed from the configuration; its Home Assistant entities and "
                 "retained values are deleted",
                 pm->name);
    pm->retract_logged = 1;
    pm->retracted = 1;
    memset(pm->discovered, 0, sizeof pm->discovered);
    memset(pm->sent_has, 0, sizeof pm->sent_has);
    return 0;
}

/* PREFIX/METER/availability: "online" while the meter's newest telegram is younger than stale_ms,
 * so Home Assistant shows a meter that went quiet (cable out, dongle gone, replay finished) as
 * unavailable instead of its last values. Retained, QoS 1, sent when it changes. */
static int send_availability(pub_mqtt *p, pm_meter *pm)
{
    const meter_sample *s = meter_latest(pm->m);
    int live = s && loop_wall_ms() - s->received_ms < p->o.stale_ms;
    /* A meter has stale_ms for its first telegram: restarting p1d must not blink every entity
     * unavailable (the retained online of the last run stands until then). */
    if (!s && loop_now_ms() - pm->since_ms < p->o.stale_ms)
        return 0;
    if (live == pm->avail)
        return 0;
    char topic[PUB_TOPIC_MAX];
    snprintf(topic, sizeof topic, "%s/%s/availability", p->o.topic_prefix, pm->name);
    if (publish(p, NULL, topic, live ? "online" : "offline", live ? 6 : 7, 1, 1) < 0)
        return -1;
    pm->avail = live;
    return 0;
}

/* Takes the newest point of m from the outbox (skimming a backlog: for MQTT only the newest value
 * of each field matters) and the newest live reading, and publishes what changed. */
static void process(pub_mqtt *p, meter *m, int64_t now)
{
    pm_meter *pm = pm_get(p, m);
    if (!pm)
        return;
    /* Discovery turned off (or moved to another prefix) by a reload: the configs the publisher
     * before this one announced would stay retained, and Home Assistant would keep showing the
     * entities. Deleted once per connection. */
    if (p->nold && !pm->old_cleared) {
        if (clear_old_configs(p, pm, NULL) < 0)
            return;
        pm->old_cleared = 1;
        for (size_t i = 0; i < p->nold && !p->old_logged; i++)
            log_info("mqtt: Home Assistant discovery under %s/ is off now; deleting the configs "
                     "announced there",
                     p->old_prefix[i]);
        p->old_logged = 1;
    }
    if (clear_old_values(p, pm, NULL) < 0)
        return;
    if (send_availability(p, pm) < 0)
        return;
    int have_point = 0;
    store_point newest;
    for (int round = 0; p->ob && round < PM_FETCH_ROUNDS; round++) {
        int n = outbox_fetch(p->ob, m->name, p->pts, OUTBOX_BATCH_MAX);
        if (n <= 0)
            break;
        newest = p->pts[n - 1];
        have_point = 1;
        if (newest.ts > pm->ack_ts) {
            pm->ack_ts = newest.ts;
            pm->unacked_points += (uint64_t)n;
        }
        if (n < OUTBOX_BATCH_MAX)
            break;
        /* A full batch: everything but its newest point is superseded; acknowledge it to see
         * further (the newest stays unacknowledged until the broker has it). */
        if (outbox_ack(p->ob, m->name, p->pts[n - 2].ts) < 0)
            break;
        p->st.delivered += (uint64_t)n - 1;
        pm->unacked_points -= pm->unacked_points >= (uint64_t)n - 1 ? (uint64_t)n - 1 : 0;
        pm->acked_ts = p->pts[n - 2].ts;
    }
    const meter_sample *live = meter_latest(m);
    pub_snapshot s;
    if (live && live->seq != pm->live_seq) {
        pub_payload_from_reading(&s, &live->reading, sample_ts(live));
        pub_payload_set_demand_forecast(&s, live->demand_forecast);
        pm->live_seq = live->seq;
        merge(pm, &s);
        pm->have_device = 1;
    } else if (!live && have_point && (!pm->have_cur || newest.ts > pm->cur.ts)) {
        pub_payload_from_point(&s, &newest);
        merge(pm, &s);
    }
    if (publish_dirty(p, pm, now) == 0)
        try_ack(p, pm);
}

/* The price topics under the prefixes earlier publishers used and this one does not, when one of
 * them published prices: the configs of every topic prefix under every discovery prefix (the node
 * id is the topic prefix's) and the values and availability under each retired topic prefix are
 * deleted, once per connection. Returns 0 or -1. */
enum { NODE_PRICE, NODE_ALERTS }; /* p1d's own entities, named after the topic prefix */

/* Empty retained configs for p1d's own entities `what` (the two prices, or the alerts) on every
 * pair of discovery prefix and topic prefix, retired or current, that does not announce them
 * now (announced: the current pair does, with discovery on). Returns 0 or -1. */
static int clear_node_configs(pub_mqtt *p, int what, int announced)
{
    char topic[PUB_TOPIC_MAX];
    for (size_t d = 0; d <= p->nold; d++) {
        const char *disc = d < p->nold ? p->old_prefix[d] : p->o.discovery_prefix;
        for (size_t t = 0; t <= p->nold_topic; t++) {
            const char *node = t < p->nold_topic ? p->old_topic[t] : p->o.topic_prefix;
            if (d == p->nold && (!p->o.discovery || (t == p->nold_topic && announced)))
                continue; /* nothing was announced there, or it is now */
            for (int e = 0; e < (what == NODE_PRICE ? 2 : 1); e++) {
                size_t n =
                    what == NODE_PRICE
                        ? pub_payload_price_discovery_topic(topic, sizeof topic, disc, node, e)
                        : pub_payload_alerts_discovery_topic(topic, sizeof topic, disc, node);
                if (n && publish(p, NULL, topic, "", 0, 1, 1) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static int clear_old_price(pub_mqtt *p)
{
    char topic[PUB_TOPIC_MAX];
    if (!p->price_ever || p->price_old_done || (!p->nold && !p->nold_topic))
        return 0;
    if (clear_node_configs(p, NODE_PRICE, 1) < 0)
        return -1;
    for (size_t t = 0; t < p->nold_topic; t++)
        for (int e = -1; e < 2; e++) /* the availability is always retained, values by retain */
            if ((e < 0 || p->old_topic_retain[t]) &&
                pub_payload_price_topic(topic, sizeof topic, p->old_topic[t], e) &&
                publish(p, NULL, topic, "", 0, 1, 1) < 0)
                return -1;
    p->price_old_done = 1;
    return 0;
}

/* The price in force on PREFIX/price/...: each value when it changed or its slot began, after its
 * discovery config, then "online" on PREFIX/price/availability; when none applies, "offline" there
 * and the values deleted, once (nothing at all while the tables hold no price: a p1d without
 * prices says nothing of them). Returns 0 or -1. */
static int publish_price(pub_mqtt *p)
{
    char topic[PUB_TOPIC_MAX], val[PUB_VALUE_MAX];
    json_w w;
    price_now_value v;
    if (!p->price)
        return 0; /* no store, no prices */
    if (clear_old_price(p) < 0)
        return -1;
    int tariff = price_now_tariff(p->ms, loop_now_ms(), p->o.stale_ms);
    if (!price_now_get(p->price, loop_wall_ms() / 1000, tariff, &v)) {
        if (p->price_state == 0 || (p->price_state < 0 && !v.known && !p->price_ever))
            return 0;
        if (!pub_payload_price_topic(topic, sizeof topic, p->o.topic_prefix, -1) ||
            publish(p, NULL, topic, "offline", 7, 1, 1) < 0)
            return -1;
        for (int e = 0; e < 2 && p->o.retain; e++)
            if (pub_payload_price_topic(topic, sizeof topic, p->o.topic_prefix, e) &&
                publish(p, NULL, topic, "", 0, p->o.qos, 1) < 0)
                return -1;
        p->price_state = 0;
        return 0;
    }
    const int64_t now_v[2] = {v.import_, v.export_};
    const int64_t sent_v[2] = {p->price_sent.import_, p->price_sent.export_};
    /* a new slot, or nothing told yet on this connection: every value goes out */
    int fresh = p->price_state != 1 || v.since != p->price_sent.since;
    for (int e = 0; e < 2; e++) {
        if (!pub_payload_price_topic(topic, sizeof topic, p->o.topic_prefix, e))
            return -1;
        if (now_v[e] == COST_UNSET) {
            /* a fixed period without an export price: the value sent before no longer holds */
            if (p->price_state == 1 && sent_v[e] != COST_UNSET && p->o.retain &&
                publish(p, NULL, topic, "", 0, p->o.qos, 1) < 0)
                return -1;
            continue;
        }
        if (p->o.discovery && !p->price_discovered[e]) {
            char ctopic[PUB_TOPIC_MAX];
            json_init_fixed(&w, p->buf, PUB_PAYLOAD_MAX, 0);
            pub_payload_price_discovery(&w, p->o.topic_prefix, p->status_topic, e);
            if (!pub_payload_price_discovery_topic(ctopic, sizeof ctopic, p->o.discovery_prefix,
                                                   p->o.topic_prefix, e) ||
                !json_ok(&w) || publish(p, NULL, ctopic, w.buf, w.len, 1, 1) < 0)
                return -1;
            p->price_discovered[e] = 1;
        }
        if (!fresh && sent_v[e] == now_v[e])
            continue;
        size_t n = pub_payload_price_value(now_v[e], val, sizeof val);
        if (!n || publish(p, NULL, topic, val, n, p->o.qos, p->o.retain) < 0)
            return -1;
    }
    if (p->price_state != 1 &&
        (!pub_payload_price_topic(topic, sizeof topic, p->o.topic_prefix, -1) ||
         publish(p, NULL, topic, "online", 6, 1, 1) < 0))
        return -1;
    p->price_state = 1;
    p->price_sent = v;
    p->price_ever = 1;
    return 0;
}

/* [alerts] mqtt's event entity: its config under the discovery prefix, once per connection
 * (with discovery and alerts on MQTT), and, when an earlier publisher announced it, an empty
 * retained config on every pair of discovery and topic prefix that does not announce it now
 * (alerts or discovery turned off, either prefix moved). Returns 0 or -1. */
static int publish_alerts_entity(pub_mqtt *p)
{
    char topic[PUB_TOPIC_MAX];
    int on = p->o.alerts && p->o.discovery;
    if (p->alerts_ever && !p->alerts_old_done) {
        if (clear_node_configs(p, NODE_ALERTS, on) < 0)
            return -1;
        p->alerts_old_done = 1;
    }
    if (!on || p->alerts_discovered)
        return 0;
    json_w w;
    json_init_fixed(&w, p->buf, PUB_PAYLOAD_MAX, 0);
    pub_payload_alerts_discovery(&w, p->o.topic_prefix, p->status_topic, alerts_event_types);
    if (!pub_payload_alerts_discovery_topic(topic, sizeof topic, p->o.discovery_prefix,
                                            p->o.topic_prefix) ||
        !json_ok(&w) || publish(p, NULL, topic, w.buf, w.len, 1, 1) < 0)
        return -1;
    p->alerts_discovered = 1;
    p->alerts_ever = 1;
    return 0;
}

/* Meters that left the registry: retract each (again after a reconnect that came before the
 * broker acknowledged it all), then forget it once nothing of it is in flight. */
static void retire(pub_mqtt *p)
{
    for (size_t i = 0; i < p->npm && p->connected;) {
        pm_meter *pm = p->pm[i];
        if (pm->m) {
            i++;
            continue;
        }
        if (!pm->retracted) {
            if (p->ninfl + (p->nold + p->nold_topic + 2) * PUB_F_COUNT + 32 >
                PUB_MQTT_INFLIGHT_MAX)
                break; /* the broker is slow to acknowledge; the rest waits for the next tick */
            /* the configs the publishers before this one announced under other prefixes */
            if (p->nold && !pm->old_cleared && clear_old_configs(p, pm, pm) == 0)
                pm->old_cleared = 1;
            /* and its values under the topic prefixes the publishers before this one used */
            if (clear_old_values(p, pm, pm) < 0)
                break;
            retract(p, pm);
        }
        if (!pm->retracted || pm->inflight > 0) {
            i++;
            continue;
        }
        /* Done with it for good: the next start has nothing of it to retract. */
        int rc = p->ob ? outbox_forget(p->ob, pm->name) : 0;
        if (rc < 0)
            log_warn("mqtt: %s: cannot forget its delivery cursor: %s", pm->name, strerror(-rc));
        free(pm);
        p->pm[i] = p->pm[--p->npm];
    }
}

/* A meter leaves the registry: its topics are retracted by the next ticks, also when this run
 * never published it (a run before a restart may have). */
static void on_gone(void *user, meter *m)
{
    pub_mqtt *p = user;
    pm_meter *pm = pm_get(p, m);
    if (!pm) {
        log_warn("mqtt: %s: out of memory; its Home Assistant entities stay", m->name);
        return;
    }
    pm->m = NULL;
    pm->retracted = 0;
    pm->retract_logged = 0;
}

/* A meter this p1d published in an earlier run (its outbox cursor says so) that is not in the
 * registry now: removed from the configuration while p1d was stopped, or its retraction was still
 * owed at the last shutdown. Nobody else would delete its Home Assistant entities. */
static int sweep_fn(void *user, const char *name)
{
    pub_mqtt *p = user;
    if (meters_find(p->ms, name))
        return 0;
    for (size_t k = 0; k < p->npm; k++)
        if (strcmp(p->pm[k]->name, name) == 0)
            return 0; /* already retracting it (taken over from the publisher before) */
    if (!pm_new(p, name))
        log_warn("mqtt: %s: out of memory; its Home Assistant entities stay", name);
    return 0;
}

/* Once, at the first tick (the registry holds the configured meters by then). */
static void sweep(pub_mqtt *p)
{
    if (p->swept || !p->ob)
        return;
    p->swept = 1;
    int rc = outbox_meters(p->ob, sweep_fn, p);
    if (rc < 0)
        log_warn("mqtt: cannot list the meters published before: %s", strerror(-rc));
}

static void reset_session(pub_mqtt *p)
{
    p->price_state = -1;
    memset(p->price_discovered, 0, sizeof p->price_discovered);
    p->price_old_done = 0;
    p->alerts_discovered = 0;
    p->alerts_old_done = 0;
    for (size_t i = 0; i < p->npm; i++) {
        pm_meter *pm = p->pm[i];
        memset(pm->discovered, 0, sizeof pm->discovered);
        memset(pm->sent_has, 0, sizeof pm->sent_has);
        pm->state_ms = 0;
        pm->retracted = 0;
        pm->old_cleared = 0;
        pm->old_values_cleared = 0;
        pm->avail = -1;
        if (pm->have_cur) {
            for (int f = 0; f < PUB_F_COUNT; f++)
                pm->dirty[f] = pm->cur.has[f];
            pm->state_dirty = 1;
        }
    }
}

static void on_tick(void *user)
{
    pub_mqtt *p = user;
    int64_t now = loop_now_ms();
    sweep(p);
    if (!p->retry_planned && p->mq->socket(p->mosq) >= 0) {
        int rc = p->mq->loop_misc(p->mosq);
        if (rc != MOSQ_ERR_SUCCESS)
            conn_down(p, rc);
    } else if (now >= p->next_connect_ms) {
        connect_attempt(p);
    }
    /* A broker that answers PINGREQ but acknowledges no PUBLISH (overloaded, a broken bridge)
     * would hold the outbox forever while everything looks connected: drop the connection so
     * that the reconnect sends the messages again and the log and last_error say why. */
    int64_t ack_limit =
        2 * p->o.keepalive_ms > PM_ACK_MIN_MS ? 2 * p->o.keepalive_ms : PM_ACK_MIN_MS;
    if (p->connected && !p->no_ack && p->ninfl > 0 && now - p->ack_wait_ms > ack_limit &&
        p->mq->socket(p->mosq) >= 0) {
        p->no_ack = 1;
        shutdown(p->mq->socket(p->mosq), SHUT_RDWR); /* the read that follows ends it */
    }
    if (p->connected && !p->no_ack && p->o.passing) {
        p->st.retry_in_ms = 0; /* it only carries alerts.c's */
    } else if (p->connected && !p->no_ack) {
        p->st.retry_in_ms = 0;
        for (size_t i = 0; i < p->ms->n && p->connected; i++) {
            if (p->ninfl + PUB_F_COUNT + 32 > PUB_MQTT_INFLIGHT_MAX)
                break; /* the broker is slow to acknowledge; the rest waits for the next tick */
            process(p, p->ms->list[i], now);
        }
        retire(p);
        if (p->connected)
            publish_price(p);
        if (p->connected)
            publish_alerts_entity(p);
    } else if (p->next_connect_ms > now) {
        p->st.retry_in_ms = p->next_connect_ms - now;
    }
    sync_watch(p);
    loop_timer_arm(p->tick, PUB_MQTT_TICK_MS);
}

/* ---------------------------------------------------------------------------------------------
 * libmosquitto callbacks (called from inside mosquitto_loop_read/write/misc)
 * ------------------------------------------------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *user, int rc)
{
    pub_mqtt *p = user;
    (void)mosq;
    if (rc != 0) {
        if (!p->refused)
            log_error("mqtt: %s:%u refused the connection (%s); retrying every %" PRId64
                      " s, nothing is lost meanwhile",
                      p->o.host, p->o.port, p->mq->connack_string(rc),
                      p->o.reconnect_max_ms / 1000);
        set_error(p, "%s", p->mq->connack_string(rc));
        p->refused = 1;
        p->down_logged = 1;
        p->st.state = PUB_AUTH_FAILED;
        return;
    }
    log_info("mqtt: connected to %s:%u%s", p->o.host, p->o.port, p->o.tls ? " (TLS)" : "");
    p->connected = 1;
    p->refused = 0;
    p->down_logged = 0;
    p->backoff_ms = PM_BACKOFF_MIN_MS;
    p->st.state = PUB_SENDING;
    p->st.last_error[0] = '\0';
    if (!p->o.passing)
        publish(p, NULL, p->status_topic, "online", 6, 1, 1);
    if (p->o.discovery && !p->o.passing)
        p->mq->subscribe(p->mosq, NULL, p->ha_status_topic, 1);
    if (p->alerts_sweep[0])
        p->mq->subscribe(p->mosq, NULL, p->alerts_sweep, 1);
    reset_session(p);
    loop_timer_arm(p->tick, 0);
}

static void on_disconnect(struct mosquitto *mosq, void *user, int rc)
{
    pub_mqtt *p = user;
    (void)mosq;
    conn_down(p, rc);
}

static void on_publish(struct mosquitto *mosq, void *user, int mid)
{
    pub_mqtt *p = user;
    (void)mosq;
    if (p->alert_mid && mid == p->alert_mid) {
        p->alert_mid = 0;
        if (p->alert_sent)
            p->alert_sent(p->alert_user);
    }
    for (size_t i = 0; i < p->ninfl; i++) {
        if (p->infl[i].mid != mid)
            continue;
        pm_meter *pm = p->infl[i].pm;
        p->infl[i] = p->infl[--p->ninfl];
        p->ack_wait_ms = loop_now_ms();
        if (pm->inflight > 0 && --pm->inflight == 0)
            try_ack(p, pm);
        return;
    }
}

/* libmosquitto says why a TLS connection failed only here (OpenSSL's reason, an unreadable
 * ca_file): collect the error lines of this attempt, shortened, for conn_down's message. */
static void on_log(struct mosquitto *mosq, void *user, int level, const char *str)
{
    pub_mqtt *p = user;
    (void)mosq;
    log_debug("mqtt: libmosquitto: %s", str);
    if (!(level & MOSQ_LOG_ERR))
        return;
    /* "Error: host name verification failed." -> "host name verification failed";
     * "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed" -> its reason */
    const char *why = str;
    if (strncmp(why, "Error: ", 7) == 0)
        why += 7;
    if (strncmp(str, "OpenSSL Error", 13) == 0 && strrchr(str, ':'))
        why = strrchr(str, ':') + 1;
    size_t n = strlen(why);
    while (n > 0 && why[n - 1] == '.')
        n--;
    size_t used = strlen(p->lib_err);
    if (n == 0 || strstr(p->lib_err, why) || used + n + 3 > sizeof p->lib_err)
        return;
    snprintf(p->lib_err + used, sizeof p->lib_err - used, "%s%.*s", used ? ", " : "", (int)n, why);
}

static void on_message(struct mosquitto *mosq, void *user, const struct mosquitto_message *msg)
{
    pub_mqtt *p = user;
    (void)mosq;
    if (strcmp(msg->topic, p->ha_status_topic) == 0 && msg->payloadlen == 6 &&
        memcmp(msg->payload, "online", 6) == 0) {
        log_info("mqtt: Home Assistant is online; sending discovery and states again");
        reset_session(p);
        loop_timer_arm(p->tick, 0);
        return;
    }
    /* the entity of an earlier run, which p1d forgot over its restart: only a retained config
     * is that (not one another publisher sends now), and deleting it comes back empty */
    if (p->alerts_sweep[0] && strcmp(msg->topic, p->alerts_sweep) == 0 && msg->retain &&
        msg->payloadlen > 0 && publish(p, NULL, msg->topic, "", 0, 1, 1) == 0)
        log_info("mqtt: Home Assistant's alerts entity of an earlier run deleted: [alerts] mqtt "
                 "is off");
}

/* ---------------------------------------------------------------------------------------------
 * The pub face
 * ------------------------------------------------------------------------------------------- */

static int mqtt_lag(void *impl, const char *meter_name, outbox_lag *out)
{
    pub_mqtt *p = impl;
    return p->ob ? outbox_lag_get(p->ob, meter_name, out) : -ENOENT;
}

static void mqtt_status(void *impl, pub_status *out)
{
    pub_mqtt *p = impl;
    *out = p->st;
}

/* Says goodbye properly: "offline" on the status topic (a clean DISCONNECT discards the will), then
 * DISCONNECT, waiting at most PM_FLUSH_MS for the socket. */
static void flush_goodbye(pub_mqtt *p)
{
    if (!p->connected)
        return;
    if (!p->o.passing) /* the daemon's own client says that */
        publish(p, NULL, p->status_topic, "offline", 7, 1, 1);
    p->connected = 0;
    p->retry_planned = 1; /* the disconnect callback must not plan a reconnect */
    p->mq->disconnect(p->mosq);
    int64_t end = loop_now_ms() + PM_FLUSH_MS;
    while (p->mq->socket(p->mosq) >= 0 && p->mq->want_write(p->mosq) && loop_now_ms() < end) {
        struct pollfd pfd = {.fd = p->mq->socket(p->mosq), .events = POLLOUT};
        if (poll(&pfd, 1, 50) > 0 && p->mq->loop_write(p->mosq, 1) != MOSQ_ERR_SUCCESS)
            break;
    }
}

static void mqtt_free(void *impl)
{
    pub_mqtt *p = impl;
    if (!p)
        return;
    if (p->gone_hooked)
        meters_unhook_gone(p->ms, on_gone, p);
    lookup_cancel(p->lookup);
    p->lookup = NULL;
    if (p->mosq) {
        flush_goodbye(p);
        loop_watch_del(p->watch);
        p->mq->destroy(p->mosq);
        p->mq->lib_cleanup();
    }
    loop_timer_del(p->tick);
    outbox_free(p->ob);
    price_now_free(p->price);
    for (size_t i = 0; i < p->npm; i++)
        free(p->pm[i]);
    free(p->pm);
    free(p->infl);
    free(p->pts);
    free(p->buf);
    free(p);
}

/* MQTT topic names carry no wildcards: libmosquitto refuses such a will or publish. */
static int topic_part_ok(const char *t)
{
    return strpbrk(t, "+#") == NULL;
}

/* An empty level inside or at the end ("p1d/", "a//b"): every topic would hold "//". A leading
 * '/' is a topic some brokers' users choose. */
static int topic_levels_ok(const char *t)
{
    size_t n = strlen(t);
    return strstr(t, "//") == NULL && (n == 0 || t[n - 1] != '/');
}

int pub_mqtt_check(const pub_mqtt_options *o, char *err, size_t cap)
{
    char secret[PUB_MQTT_STR_MAX];
    if (o->password_file[0]) {
        int rc = config_read_secret("[mqtt] password_file", o->password_file, secret, sizeof secret,
                                    err, cap);
        explicit_bzero(secret, sizeof secret);
        if (rc < 0)
            return -1;
    }
    if (o->tls && o->ca_file[0]) {
        FILE *f = fopen(o->ca_file, "re");
        if (!f) {
            snprintf(err, cap, "[mqtt] ca_file = '%s': %s", o->ca_file, strerror(errno));
            return -1;
        }
        /* libmosquitto loads it only when connecting and then says just "A TLS error occurred" */
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        int e = errno;
        fclose(f);
        ERR_clear_error();
        if (!x) {
            snprintf(err, cap, "[mqtt] ca_file = '%s': %s", o->ca_file,
                     e == EISDIR ? strerror(e) : "expected PEM certificates (BEGIN CERTIFICATE)");
            return -1;
        }
        X509_free(x);
    }
    /* Empty, every topic would start with '/': "/METER/state", "/sensor/..." for discovery. */
    if (!o->topic_prefix[0] || !o->discovery_prefix[0]) {
        snprintf(err, cap,
                 "[mqtt] %s = '': expected a topic such as '%s' (empty, every topic "
                 "would start with '/')",
                 o->topic_prefix[0] ? "discovery_prefix" : "topic_prefix",
                 o->topic_prefix[0] ? "homeassistant" : "p1d");
        return -1;
    }
    if (!topic_part_ok(o->topic_prefix)) {
        snprintf(err, cap, "[mqtt] topic_prefix = '%s': expected a topic without '+' or '#'",
                 o->topic_prefix);
        return -1;
    }
    if (!topic_part_ok(o->discovery_prefix)) {
        snprintf(err, cap, "[mqtt] discovery_prefix = '%s': expected a topic without '+' or '#'",
                 o->discovery_prefix);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        const char *t = i ? o->discovery_prefix : o->topic_prefix;
        if (!topic_levels_ok(t)) {
            snprintf(err, cap,
                     "[mqtt] %s = '%s': expected a topic without a '/' at its end or '//' (an "
                     "empty level: every topic would hold '//', as in '%s/sensor')",
                     i ? "discovery_prefix" : "topic_prefix", t, t);
            return -1;
        }
    }
    return 0;
}

/* Adds prefix to the retired ones unless p announces there or has it already. */
static void retire_prefix(pub_mqtt *p, const char *prefix)
{
    if (p->o.discovery && strcmp(prefix, p->o.discovery_prefix) == 0)
        return; /* still announced there */
    for (size_t i = 0; i < p->nold; i++)
        if (strcmp(p->old_prefix[i], prefix) == 0)
            return;
    if (p->nold == PM_OLD_PREFIXES) {
        log_warn("mqtt: more than %d discovery prefixes retired at once; the configs under %s/ "
                 "stay",
                 PM_OLD_PREFIXES, p->old_prefix[0]);
        memmove(p->old_prefix[0], p->old_prefix[1],
                (PM_OLD_PREFIXES - 1) * sizeof p->old_prefix[0]);
        p->nold--;
    }
    snprintf(p->old_prefix[p->nold++], sizeof p->old_prefix[0], "%s", prefix);
}

/* Adds topic prefix t (values retained there when retained) to the retired ones unless p
 * publishes there or has it already. */
static void retire_topic(pub_mqtt *p, const char *t, int retained)
{
    if (strcmp(t, p->o.topic_prefix) == 0)
        return; /* still published there */
    for (size_t i = 0; i < p->nold_topic; i++) {
        if (strcmp(p->old_topic[i], t) == 0) {
            p->old_topic_retain[i] |= retained;
            return;
        }
    }
    if (p->nold_topic == PM_OLD_PREFIXES) {
        log_warn("mqtt: more than %d topic prefixes retired at once; the values under %s/ stay",
                 PM_OLD_PREFIXES, p->old_topic[0]);
        memmove(p->old_topic[0], p->old_topic[1], (PM_OLD_PREFIXES - 1) * sizeof p->old_topic[0]);
        memmove(&p->old_topic_retain[0], &p->old_topic_retain[1],
                (PM_OLD_PREFIXES - 1) * sizeof p->old_topic_retain[0]);
        p->nold_topic--;
    }
    snprintf(p->old_topic[p->nold_topic], sizeof p->old_topic[0], "%s", t);
    p->old_topic_retain[p->nold_topic++] = retained;
}

int pub_mqtt_alert(pub *pb, const char *json, size_t len)
{
    pub_mqtt *p = pb->impl;
    char topic[PUB_TOPIC_MAX];
    if (!p->connected)
        return -1;
    if (snprintf(topic, sizeof topic, "%s/alerts", p->o.topic_prefix) >= (int)sizeof topic)
        return -1;
    /* QoS 1 whatever [mqtt] qos says, as discovery: libmosquitto keeps the alert until the
     * broker's PUBACK and sends it again after a reconnect; at QoS 0 one written just before
     * the connection dropped was gone, though counted as delivered */
    if (publish_mid(p, NULL, topic, json, len, 1, 0, &p->alert_mid) < 0) {
        p->alert_mid = 0;
        return -1;
    }
    sync_watch(p); /* called from outside libmosquitto's callbacks: ask to write it now */
    return 0;
}

void pub_mqtt_on_alert_sent(pub *pb, pub_mqtt_alert_fn fn, void *user)
{
    pub_mqtt *p = pb->impl;
    p->alert_sent = fn;
    p->alert_user = user;
}

/* o, connected, has deleted all its publishers before it left under the prefixes they retired:
 * every meter's configs and values, the price and alerts entities. What o handed to the client
 * goes out when o is freed (flush_goodbye()); the next publisher need not delete it again. */
static int old_cleared_all(const pub_mqtt *o)
{
    if (!o->connected)
        return 0;
    for (size_t i = 0; i < o->npm; i++)
        if ((o->nold && !o->pm[i]->old_cleared) || (o->nold_topic && !o->pm[i]->old_values_cleared))
            return 0;
    if (o->price_ever && (o->nold || o->nold_topic) && !o->price_old_done)
        return 0;
    return !o->alerts_ever || o->alerts_old_done;
}

void pub_mqtt_take_over(pub *pb, const pub *old)
{
    pub_mqtt *p = pb->impl;
    const pub_mqtt *o = old->impl;
    /* the prefixes o still had to delete under (it may never have connected), then its own */
    int done = old_cleared_all(o);
    for (size_t i = 0; i < o->nold && !done; i++)
        retire_prefix(p, o->old_prefix[i]);
    if (o->o.discovery)
        retire_prefix(p, o->o.discovery_prefix);
    /* the same for the topic prefixes the values were published under */
    for (size_t i = 0; i < o->nold_topic && !done; i++)
        retire_topic(p, o->old_topic[i], o->old_topic_retain[i]);
    retire_topic(p, o->o.topic_prefix, o->o.retain);
    p->price_ever |= o->price_ever;
    p->alerts_ever |= o->alerts_ever;
    for (size_t i = 0; i < o->npm; i++) {
        const pm_meter *om = o->pm[i];
        if (om->m || meters_find(p->ms, om->name))
            continue; /* in the registry (again): announced, not retracted */
        size_t k;
        for (k = 0; k < p->npm && strcmp(p->pm[k]->name, om->name) != 0; k++)
            ;
        if (k < p->npm)
            continue;
        if (!pm_new(p, om->name))
            log_warn("mqtt: %s: out of memory; its Home Assistant entities stay", om->name);
    }
}

pub *pub_mqtt_new(loop *l, meters *ms, store *s, const pub_mqtt_options *o, char *err, size_t cap)
{
    char dlerr[PUB_ERR_MAX];
    if (pub_mqtt_check(o, err, cap) < 0) {
        errno = EINVAL;
        return NULL;
    }
    const dl_mosquitto *mq = dl_mosquitto_load(dlerr, sizeof dlerr);
    if (!mq) {
        snprintf(err, cap, "[mqtt] %s; MQTT publishing stays off", dlerr);
        errno = ELIBACC;
        return NULL;
    }
    pub_mqtt *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, cap, "mqtt: out of memory");
        return NULL;
    }
    p->mq = mq;
    p->l = l;
    p->ms = ms;
    p->o = *o;
    p->watch_fd = -1;
    p->face.name = "mqtt";
    p->face.impl = p;
    p->face.lag = mqtt_lag;
    p->face.status = mqtt_status;
    p->face.free = mqtt_free;
    p->st.state = PUB_RETRYING;
    if (p->o.port == 0)
        p->o.port = p->o.tls ? 8883 : 1883;
    struct addrinfo *numeric = NULL;
    p->by_name = lookup_numeric(p->o.host, "1883", &numeric) != 0;
    if (numeric)
        freeaddrinfo(numeric);
    if (p->o.qos < 0 || p->o.qos > 1)
        p->o.qos = 1;
    snprintf(p->status_topic, sizeof p->status_topic, "%s/status", p->o.topic_prefix);
    snprintf(p->ha_status_topic, sizeof p->ha_status_topic, "%s/status", p->o.discovery_prefix);
    if (p->o.password_file[0] &&
        config_read_secret("[mqtt] password_file", p->o.password_file, p->o.password,
                           sizeof p->o.password, err, cap) < 0)
        goto fail;
    p->infl = calloc(PUB_MQTT_INFLIGHT_MAX, sizeof *p->infl);
    p->buf = malloc(PUB_PAYLOAD_MAX);
    p->pts = s ? calloc(OUTBOX_BATCH_MAX, sizeof *p->pts) : NULL;
    p->tick = loop_timer_new(l, on_tick, p);
    if (!p->infl || !p->buf || (s && !p->pts) || !p->tick) {
        snprintf(err, cap, "mqtt: out of memory");
        goto fail;
    }
    if (meters_hook_gone(ms, on_gone, p) < 0) {
        snprintf(err, cap, "mqtt: too many meter hooks");
        goto fail;
    }
    p->gone_hooked = 1;
    if (s) {
        char why[STORE_ERR_MAX];
        p->ob = outbox_new(s, "mqtt", OUTBOX_EVERY, 0, loop_wall_ms() / 1000, why, sizeof why);
        if (!p->ob) {
            snprintf(err, cap, "mqtt: outbox: %s", why);
            goto fail;
        }
        p->price = price_now_new(s, "mqtt");
        if (!p->price) {
            snprintf(err, cap, "mqtt: out of memory");
            goto fail;
        }
    }
    if (s && p->o.discovery && !p->o.alerts && !p->o.passing && alerts_mqtt_before(s) &&
        !pub_payload_alerts_discovery_topic(p->alerts_sweep, sizeof p->alerts_sweep,
                                            p->o.discovery_prefix, p->o.topic_prefix))
        p->alerts_sweep[0] = '\0';
    p->mq->lib_init();
    char id[PUB_MQTT_STR_MAX];
    if (p->o.client_id[0]) {
        snprintf(id, sizeof id, "%.*s%s", PUB_MQTT_STR_MAX - 6, p->o.client_id,
                 p->o.passing ? "-test" : "");
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(id, sizeof id, "p1d-%s-%ld", host, (long)getpid());
    }
    p->mosq = p->mq->create(id, true, p);
    if (!p->mosq) {
        snprintf(err, cap, "mqtt: cannot create the client: %s", strerror(errno));
        p->mq->lib_cleanup();
        goto fail;
    }
    p->mq->int_option(p->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* libmosquitto holds QoS 1 messages back beyond 20 unacknowledged while QoS 0 ones go out
     * at once: a meter's 21st config would reach the broker after its value, which Home
     * Assistant (subscribing once it has the config) then misses with retain = false. Everything
     * goes out in the order published. */
    p->mq->int_option(p->mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
    p->mq->connect_callback_set(p->mosq, on_connect);
    p->mq->disconnect_callback_set(p->mosq, on_disconnect);
    p->mq->publish_callback_set(p->mosq, on_publish);
    p->mq->message_callback_set(p->mosq, on_message);
    p->mq->log_callback_set(p->mosq, on_log);
    int rc = p->o.passing ? MOSQ_ERR_SUCCESS
                          : p->mq->will_set(p->mosq, p->status_topic, 7, "offline", 1, true);
    if (rc == MOSQ_ERR_SUCCESS && p->o.username[0])
        rc =
            p->mq->username_pw_set(p->mosq, p->o.username, p->o.password[0] ? p->o.password : NULL);
    if (rc == MOSQ_ERR_SUCCESS && p->o.tls) {
        rc = p->mq->tls_set(p->mosq, p->o.ca_file[0] ? p->o.ca_file : NULL,
                            p->o.ca_file[0] ? NULL : "/etc/ssl/certs", NULL, NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = p->mq->tls_insecure_set(p->mosq, p->o.tls_insecure != 0);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, cap, "mqtt: %s", p->mq->strerror(rc));
        goto fail;
    }
    if (p->o.passing)
        log_info("mqtt: connecting to %s:%u for the test alert", p->o.host, p->o.port);
    else
        log_info("mqtt: publishing to %s:%u under %s/METER/...%s%s%s", p->o.host, p->o.port,
                 p->o.topic_prefix,
                 p->ob ? " through the outbox" : " (live readings only, no --db)",
                 p->o.discovery ? ", Home Assistant discovery under " : "",
                 p->o.discovery ? p->o.discovery_prefix : "");
    loop_timer_arm(p->tick, 0);
    return &p->face;
fail:
    mqtt_free(p);
    return NULL;
}
