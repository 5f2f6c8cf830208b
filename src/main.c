/* main.c: p1d, the daemon: configuration, the one event loop, sources, HTTP, relay, signals
 * (SIGTERM/SIGINT exit, SIGHUP reload) and systemd supervision. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "civil.h"
#include "config.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "meter.h"
#include "notify.h"
#include "p1/p1.h"
#include "pub.h"
#include "pub_azure.h"
#include "price_fetch.h"
#include "alerts.h"
#include "pub_influx.h"
#include "pub_mqtt.h"
#include "relay.h"
#include "source.h"
#include "store.h"
#include "store_live.h"
#include "zeroconf.h"

#define EXIT_USAGE 2

/* The daemon's one context. */
typedef struct p1d {
    int argc;
    char **argv;
    config cfg;
    loop *l;
    meters ms;
    source **src;      /* src[i] reads into ms.list[i]; NULL when its source could not start */
    source_log *srclog; /* the sources' status lines, summed up when many change at once */
    size_t capsrc;
    http *http;
    zeroconf *zeroconf; /* mDNS announcements, or NULL */
    relay *relay;
    notify *notify;
    int sigfd;
    loop_watch *sigwatch;
    store *store;      /* NULL without --db */
    store_live *store_live;
    history *history;  /* /api/history, /api/summary, /api/prices; NULL without --db */
    pub_list pubs;     /* running publishers (Azure, MQTT, InfluxDB) */
    pub *azure;        /* in pubs, or NULL */
    pub_azure_options azure_opts; /* what azure runs with */
    pub *mqtt;         /* in pubs, or NULL */
    pub_mqtt_options mqtt_opts;
    pub *influx;       /* in pubs, or NULL */
    pub_influx_options influx_opts;
    price_fetch *fetch; /* [prices] fetch_url, fetch_gas_url; or NULL */
    price_fetch_options fetch_opts;
    pub *alerts; /* [alerts] url: in pubs, or NULL */
    alerts_options alerts_opts;
    int prices_unrecorded; /* the store refused [prices] (a full disk): the next reload retries */
} p1d;

/* A new meter starts with the equipment id the store last recorded for it, so its identity (the
 * HomeWizard serial) is the same before its first telegram as after it and across restarts. */
static void recall_id(p1d *d, meter *m)
{
    if (!d->store)
        return;
    int rc = store_meter_id(d->store, m->name, m->equipment_id);
    if (rc < 0)
        log_warn("%s: store: cannot read the meter's last equipment id: %s; until its first "
                 "telegram /api reports a serial made from its name",
                 m->name, strerror(-rc));
}

/* The registers of the meter's newest stored reading, for a simulated meter to continue from
 * (a real one never steps back, and the store would record a counter reset). Returns reg, or
 * NULL without a store, for other kinds, or when the store knows none. */
static const sim_registers *recall_registers(p1d *d, const config_source *cs, meter *m,
                                             sim_registers *reg)
{
    int64_t c[STORE_E_COUNT];
    if (!d->store || cs->kind != CONFIG_SIM)
        return NULL;
    int rc = store_meter_registers(d->store, m->name, c);
    if (rc < 0)
        log_warn("%s: store: cannot read the meter's last registers: %s; the simulator starts "
                 "from its own",
                 m->name, strerror(-rc));
    if (rc <= 0)
        return NULL;
    memset(reg, 0, sizeof *reg);
    static const int im[2] = {STORE_E_IMPORT_T1, STORE_E_IMPORT_T2};
    static const int ex[2] = {STORE_E_EXPORT_T1, STORE_E_EXPORT_T2};
    for (int k = 0; k < 2; k++) {
        reg->import_wh[k] = (rc & (1 << im[k])) ? c[im[k]] : 0;
        reg->export_wh[k] = (rc & (1 << ex[k])) ? c[ex[k]] : 0;
    }
    reg->gas_l = (rc & (1 << STORE_E_GAS)) ? c[STORE_E_GAS] : 0;
    return reg;
}

/* Starts the source of cs into its meter (created on first use), in place of its running
 * source, or of was: the settings of one already stopped (NULL: none). Returns 0 or -1 (logged). */
static int start_source(p1d *d, const config_source *cs, const config_source *was)
{
    char err[CONFIG_ERR_MAX];
    sim_registers reg;
    meter *m = meters_find(&d->ms, cs->name);
    size_t i;
    if (!m) {
        char spec[CONFIG_STR_MAX];
        config_spec_public(cs->spec, spec, sizeof spec);
        m = meters_add(&d->ms, cs->name, config_kind_name(cs->kind), spec);
        if (!m) {
            log_error("%s: cannot add the meter: %s", cs->name, strerror(errno));
            return -1;
        }
        recall_id(d, m);
    }
    for (i = 0; i < d->ms.n && d->ms.list[i] != m; i++)
        ;
    if (i >= d->capsrc) {
        size_t cap = d->capsrc ? d->capsrc * 2 : 8;
        while (cap <= i)
            cap *= 2;
        source **n = realloc(d->src, cap * sizeof *n);
        if (!n) {
            log_error("%s: out of memory", cs->name);
            return -1;
        }
        memset(n + d->capsrc, 0, (cap - d->capsrc) * sizeof *n);
        d->src = n;
        d->capsrc = cap;
    }
    /* A serial port is opened exclusively, so the old source must close before the new one
     * opens; when the new one fails, the old one is started again with its own settings. */
    config_source old;
    int had = d->src[i] != NULL || was;
    if (had)
        old = d->src[i] ? *source_config(d->src[i]) : *was;
    source_free(d->src[i]);
    d->src[i] =
        source_new(d->l, d->srclog, m, cs, recall_registers(d, cs, m, &reg), err, sizeof err);
    if (!d->src[i] && had) {
        char err2[CONFIG_ERR_MAX];
        d->src[i] = source_new(d->l, d->srclog, m, &old, recall_registers(d, &old, m, &reg), err2,
                               sizeof err2);
        if (d->src[i]) {
            log_error("%s; keeping the running source", err);
            return -1;
        }
    }
    if (!d->src[i]) {
        log_error("%s", err);
        m->state = METER_STOPPED;
        size_t n = strnlen(err, sizeof m->last_error - 1);
        memcpy(m->last_error, err, n);
        m->last_error[n] = '\0';
        return -1;
    }
    return 0;
}

/* The meter the relay of c sends: [relay] meter, else the first configured source ("" none). */
static const char *relay_meter_of(const config *c)
{
    return c->relay_meter[0] ? c->relay_meter : c->nsources ? c->sources[0].name : "";
}

static void relay_options_from(const config *c, relay_options *o)
{
    o->listen = c->relay_listen;
    o->meter = relay_meter_of(c);
    o->buffer = (size_t)c->relay_buffer;
    o->max_clients = (size_t)c->relay_clients;
}

/* Opens the relay that c describes; NULL with the reason in err[cap]. */
static relay *open_relay(p1d *d, const config *c, char *err, size_t cap)
{
    relay_options o;
    relay_options_from(c, &o);
    relay *r = relay_new(d->l, &d->ms, &o, err, cap);
    if (r)
        log_info("relay: listening on %s (port %u), relaying meter %s", c->relay_listen,
                 relay_port(r), o.meter[0] ? o.meter : d->ms.n ? d->ms.list[0]->name : "(none)");
    return r;
}

static int start_relay(p1d *d)
{
    char err[CONFIG_ERR_MAX];
    if (!d->cfg.relay_listen[0])
        return 0;
    d->relay = open_relay(d, &d->cfg, err, sizeof err);
    if (!d->relay) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* SIGHUP: moves the relay to the settings of nc. The old relay keeps serving until the new one
 * listens; when the new one cannot, the old settings are copied back into nc, so that the next
 * SIGHUP tries again. Returns 0, or -1 (logged) when the running relay was kept. */
static int reload_relay(p1d *d, config *nc)
{
    char err[CONFIG_ERR_MAX], err2[CONFIG_ERR_MAX];
    config *oc = &d->cfg;
    /* Without [relay] meter the first source is relayed: when a reload removes or reorders it,
     * the clients must not be switched to another meter's telegrams mid-stream. Nor when the
     * relayed source keeps its name but reads elsewhere now (another device, host or file). */
    const config_source *os = config_find_source(oc, relay_meter_of(oc));
    const config_source *ns = config_find_source(nc, relay_meter_of(nc));
    int source_same = os && ns ? config_source_equal(os, ns) : !os && !ns;
    if (!strcmp(nc->relay_listen, oc->relay_listen) &&
        !strcmp(relay_meter_of(nc), relay_meter_of(oc)) && source_same &&
        nc->relay_buffer == oc->relay_buffer && nc->relay_clients == oc->relay_clients &&
        (d->relay || !nc->relay_listen[0]))
        return 0;
    /* A port cannot be bound twice, whatever the address is called (127.0.0.1 and localhost,
     * or 0.0.0.0 narrowed to 127.0.0.1): on the old relay's port it must let go first. */
    char host[CONFIG_STR_MAX];
    unsigned port;
    int same = d->relay && nc->relay_listen[0] &&
               config_addr_split(nc->relay_listen, host, sizeof host, &port) == 0 && port != 0 &&
               port == relay_port(d->relay);
    if (same) {
        relay_free(d->relay);
        d->relay = NULL;
    }
    relay *r = NULL;
    if (nc->relay_listen[0]) {
        r = open_relay(d, nc, err, sizeof err);
        if (!r) {
            if (same && !(d->relay = open_relay(d, oc, err2, sizeof err2)))
                log_error("reload: %s; the relay is off (%s)", err, err2);
            else if (d->relay)
                log_error("reload: %s; keeping the relay on %s", err, oc->relay_listen);
            else
                log_error("reload: %s; the relay stays off", err);
            memcpy(nc->relay_listen, oc->relay_listen, sizeof nc->relay_listen);
            memcpy(nc->relay_meter, oc->relay_meter, sizeof nc->relay_meter);
            nc->relay_buffer = oc->relay_buffer;
            nc->relay_clients = oc->relay_clients;
            return -1;
        }
    }
    if (d->relay && !r)
        log_info("relay: stopped");
    relay_free(d->relay);
    d->relay = r;
    return 0;
}

/* Opens the history store (--db) and hooks it to the meters; 0 without --db. */
static int start_store(p1d *d)
{
    char err[STORE_ERR_MAX];
    store_options o;
    if (!d->cfg.store_db[0])
        return 0;
    store_options_default(&o);
    o.raw_keep_s = d->cfg.store_raw_keep / 1000;
    o.minute_keep_s = d->cfg.store_minute_keep / 1000;
    o.writer = "p1d";
    d->store = store_open(d->cfg.store_db, &o, err, sizeof err);
    if (!d->store) {
        log_error("%s", err);
        return -1;
    }
    if (store_zone(d->store) != civil_zone()) { /* created since p1d looked */
        civil_set_zone(store_zone(d->store));
        log_warn("calendar: %s keeps its days in %s", d->cfg.store_db, civil_zone_name());
    }
    for (size_t i = 0; i < d->cfg.nsources; i++)
        store_meter_clock(d->store, d->cfg.sources[i].name, (store_clock)d->cfg.sources[i].clock);
    d->store_live = store_live_new(d->store, d->l, &d->ms);
    if (!d->store_live) {
        log_error("store: %s", strerror(errno));
        return -1;
    }
    log_info("store: history in %s", d->cfg.store_db);
    return 0;
}

_Static_assert(sizeof ((config *)0)->prices / sizeof ((config *)0)->prices[0] == COST_FIXED_KEYS,
               "config.prices[] holds one value per cost_fixed_key()");

/* [prices] values are parsed by cost.c: a wrong one is a configuration error (exit 2, also for
 * --check-config; on SIGHUP the running configuration stays). Fills f; 0, or -1 with the error in
 * err, and with errs every error there. */
static int prices_parse(const config *c, cost_fixed *f, char *err, size_t cap, config_errors *errs)
{
    char e[CONFIG_ERR_MAX], where[CONFIG_STR_MAX + 32];
    int bad = 0;
    cost_fixed_init(f);
    for (int i = 0; i < COST_FIXED_KEYS; i++) {
        if (cost_fixed_set(f, cost_fixed_key(i), c->prices[i], e, sizeof e) < 0) {
            config_where(c, "prices", cost_fixed_key(i), where, sizeof where);
            snprintf(err, cap, "%.200s: [prices] %.280s", where, e);
            if (!errs)
                return -1;
            config_errors_add(errs, c->file, err); /* each key of the file on its own */
            bad = 1;
        }
    }
    if (bad)
        return -1;
    if (cost_fixed_check(f, e, sizeof e) < 0) {
        char from_where[CONFIG_STR_MAX + 32];
        config_where(c, "prices", "valid_to", where, sizeof where);
        config_where(c, "prices", "valid_from", from_where, sizeof from_where);
        snprintf(err, cap,
                 "%.150s: [prices] valid_to = '%.63s' is not after valid_from = '%.63s' "
                 "(%.150s): the period is empty",
                 where, c->prices[10], c->prices[9], from_where);
        if (errs)
            config_errors_add(errs, c->file, err);
        return -1;
    }
    return 0;
}

/* The history endpoints over the store, and the [prices] of the configuration recorded in it. */
static int start_history(p1d *d)
{
    char err[CONFIG_ERR_MAX];
    d->history = history_new(d->store, &d->ms, err, sizeof err);
    if (!d->history) {
        log_error("history: %s", err);
        return -1;
    }
    cost_fixed f;
    if (prices_parse(&d->cfg, &f, err, sizeof err, NULL) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (cost_fixed_any(&f) && cost_db_save_fixed(store_db(d->store), &f, err, sizeof err) < 0) {
        log_warn("prices: %s; the prices recorded before stay in force until a reload (SIGHUP) "
                 "records these",
                 err);
        d->prices_unrecorded = 1;
    }
    return 0;
}

/* Removes publisher *slot from d->pubs and frees it; accepts *slot NULL. */
static void drop_pub(p1d *d, pub **slot)
{
    for (size_t i = 0; *slot && i < d->pubs.n; i++) {
        if (d->pubs.list[i] == *slot) {
            d->pubs.list[i] = d->pubs.list[--d->pubs.n];
            log_info("%s: stopped", (*slot)->name);
            (*slot)->free((*slot)->impl);
            *slot = NULL;
        }
    }
}

/* [azure]: starts, restarts (settings changed, e.g. a fixed key on SIGHUP) or stops the Azure
 * publisher to match c. Returns 0, or -1 (logged) when the settings are wrong. */
static int apply_azure(p1d *d, const config *c)
{
    char err[CONFIG_ERR_MAX];
    pub_azure_options o;
    int on = pub_azure_options_from(c, &o, err, sizeof err);
    if (on > 0 && !d->store) {
        snprintf(err, sizeof err, "[azure] needs [store] db: readings are published from it");
        on = -1;
    }
    if (on < 0) {
        log_error("%s", err);
        return -1;
    }
    if (d->azure && on && memcmp(&o, &d->azure_opts, sizeof o) == 0)
        return 0;
    if (!on) {
        drop_pub(d, &d->azure);
        return 0;
    }
    if (!d->azure && d->pubs.n >= PUB_MAX)
        return 0;
    /* The new publisher is made before the running one goes, so a failure keeps the old. */
    pub *p = pub_azure_new(d->l, d->store, &o, err, sizeof err);
    if (!p) {
        int e = errno; /* ELIBACC: libcurl missing; logged, the daemon runs on without it */
        log_error("azure: %s%s", err, d->azure ? "; keeping the running publisher" : "");
        return e == ELIBACC ? 0 : -1;
    }
    drop_pub(d, &d->azure);
    d->azure = p;
    d->azure_opts = o;
    d->pubs.list[d->pubs.n++] = d->azure;
    log_info("azure: publishing to %s, table %s", o.endpoint, o.table);
    return 0;
}

/* [mqtt]: starts, restarts (settings changed on SIGHUP) or stops the MQTT publisher to match c.
 * Without [store] db it publishes live readings only. Returns 0, or -1 (logged). */
static int apply_mqtt(p1d *d, const config *c)
{
    char err[CONFIG_ERR_MAX];
    pub_mqtt_options o;
    int on = pub_mqtt_options_from_config(c, &o);
    if (d->mqtt && on && memcmp(&o, &d->mqtt_opts, sizeof o) == 0)
        return 0;
    if (!on) {
        drop_pub(d, &d->mqtt);
        return 0;
    }
    if (!d->mqtt && d->pubs.n >= PUB_MAX)
        return 0;
    pub *p = pub_mqtt_new(d->l, &d->ms, d->store, &o, err, sizeof err);
    if (!p) {
        int e = errno; /* ELIBACC: libmosquitto missing; logged, the daemon runs on without it */
        log_error("%s%s", err, d->mqtt ? "; keeping the running publisher" : "");
        return e == ELIBACC ? 0 : -1;
    }
    /* Discovery turned off or moved, the topic prefix moved (values retained under the old one
     * would read as current), by this or an earlier reload, and meters removed that the old
     * publisher has not retracted yet (broker down, or before its next tick): nobody else would
     * delete those retained messages. */
    if (d->mqtt)
        pub_mqtt_take_over(p, d->mqtt);
    drop_pub(d, &d->mqtt);
    d->mqtt = p;
    d->mqtt_opts = o;
    d->pubs.list[d->pubs.n++] = d->mqtt;
    return 0;
}

/* [influxdb]: like apply_mqtt; needs the store (every stored point is written). */
static int apply_influx(p1d *d, const config *c)
{
    char err[CONFIG_ERR_MAX];
    pub_influx_options o;
    int on = pub_influx_options_from_config(c, &o);
    if (on && !d->store) {
        log_error("[influxdb] needs [store] db: readings are written from it");
        return -1;
    }
    if (d->influx && on && memcmp(&o, &d->influx_opts, sizeof o) == 0)
        return 0;
    if (!on) {
        drop_pub(d, &d->influx);
        return 0;
    }
    if (!d->influx && d->pubs.n >= PUB_MAX)
        return 0;
    pub *p = pub_influx_new(d->l, d->store, &o, err, sizeof err);
    if (!p) {
        int e = errno; /* ELIBACC: libcurl missing; logged, the daemon runs on without it */
        log_error("%s%s", err, d->influx ? "; keeping the running publisher" : "");
        return e == ELIBACC ? 0 : -1;
    }
    drop_pub(d, &d->influx);
    d->influx = p;
    d->influx_opts = o;
    d->pubs.list[d->pubs.n++] = d->influx;
    return 0;
}

/* [prices] fetch_url / fetch_gas_url: (re)started when its options change, so a reload that
 * changes the URL fetches at once; unchanged, the running one keeps its schedule. Without
 * libcurl it logs why and p1d runs on (prices can still be uploaded). */
static int apply_fetch(p1d *d, const config *c)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX];
    price_fetch_options o;
    int on = price_fetch_options_from_config(c, &o, why, sizeof why);
    if (on < 0) {
        log_error("%s", why); /* config_ready() refused it before */
        return -1;
    }
    if (on && !d->store)
        return 0; /* config_ready() refused it: fetched prices are stored */
    if (d->fetch && on && memcmp(&o, &d->fetch_opts, sizeof o) == 0)
        return 0;
    if (!on) {
        if (d->fetch)
            log_info("prices: no longer fetched");
        price_fetch_free(d->fetch);
        d->fetch = NULL;
        return 0;
    }
    price_fetch *f = price_fetch_new(d->l, d->store, &o, err, sizeof err);
    if (!f) {
        int e = errno;
        log_error("%s%s", err, d->fetch ? "; keeping the running fetch" : "");
        return e == ELIBACC ? 0 : -1;
    }
    price_fetch_free(d->fetch);
    d->fetch = f;
    d->fetch_opts = o;
    return 0;
}

/* [alerts] mqtt: an alert to the MQTT publisher running now (a reload may have replaced it). */
static int alert_to_mqtt(void *user, const char *json, size_t len)
{
    p1d *d = user;
    return d->mqtt ? pub_mqtt_alert(d->mqtt, json, len) : -1;
}

/* [alerts]: (re)started when its options change; without libcurl it logs why and p1d runs on. */
static int apply_alerts(p1d *d, const config *c)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX];
    alerts_options o;
    int on = alerts_options_from_config(c, &o, why, sizeof why, NULL);
    if (on < 0) {
        log_error("%s", why); /* config_ready() refused it before */
        return -1;
    }
    if (d->alerts && on && memcmp(&o, &d->alerts_opts, sizeof o) == 0)
        return 0;
    if (!on) {
        drop_pub(d, &d->alerts);
        return 0;
    }
    if (!d->alerts && d->pubs.n >= PUB_MAX)
        return 0;
    pub *a = alerts_new(d->l, &d->ms, d->store, &o, err, sizeof err);
    if (!a) {
        int e = errno;
        log_error("%s%s", err, d->alerts ? "; keeping the running alerts" : "");
        return e == ELIBACC ? 0 : -1;
    }
    if (o.mqtt) /* before the take-over, which may send */
        alerts_set_sink(a, alert_to_mqtt, d);
    if (!d->alerts)
        alerts_restore(a); /* the alerts of before the start, or of before [alerts] was off */
    else if (alerts_take_over(a, d->alerts) < 0)
        log_warn("alerts: out of memory; the reload starts the alerts afresh");
    drop_pub(d, &d->alerts);
    d->alerts = a;
    d->alerts_opts = o;
    d->pubs.list[d->pubs.n++] = d->alerts;
    return 0;
}

/* What [http] announce publishes for the HTTP server of c on `port` (zeroconf_plan), with the
 * name asked for; the number of services. */
static int announce_plan(const config *c, unsigned port, zeroconf_options *o, char *why,
                         size_t cap)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", c->http_announce_name);
    return zeroconf_plan((zeroconf_mode)c->http_announce, c->http_listen, port,
                         c->http_token[0] || c->http_basic_user[0], o, why, cap);
}

/* [http] announce: what a LAN client can use, through avahi-daemon. Never fatal: p1d serves the
 * same without it, and says why it is not announced. */
static void start_zeroconf(p1d *d)
{
    zeroconf_options o;
    char why[256], err[CONFIG_ERR_MAX];
    zeroconf_mode mode = (zeroconf_mode)d->cfg.http_announce;
    int n = announce_plan(&d->cfg, http_port(d->http), &o, why, sizeof why);
    if (mode == ZEROCONF_YES && why[0])
        log_warn("mdns: announcing as asked ([http] announce = yes), but %s", why);
    else if (why[0])
        log_msg(n ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, "mdns: %s", why); /* loopback: by choice */
    if (!n)
        return;
    d->zeroconf = zeroconf_new(d->l, &d->ms, &o, err, sizeof err);
    if (!d->zeroconf)
        log_msg(mode == ZEROCONF_YES ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "mdns: not announced: %s",
                err);
}

/* history_fetch_fn over the daemon's fetcher, which a reload may replace or remove. */
static void fetch_status(void *user, cost_kind kind, price_fetch_status *out)
{
    price_fetch *const *f = user;
    price_fetch_status_get(*f, kind, out);
}

/* http_options.route: /api/alerts, then the history's paths (without a store they say that
 * history needs one). */
static int daemon_route(void *user, const http_req *req, http_reply *out)
{
    p1d *d = user;
    return alerts_route(d->alerts, req, out) || history_route(d->history, req, out);
}

/* [http] max_connections_per_ip above half of max_connections is lowered to that half (one
 * client could lock out the others after all): what a value set so becomes, or 0 when it stands
 * as set (or is the default, lowered with a small max_connections without a word). */
static unsigned per_ip_lowered(const config *c)
{
    char where[CONFIG_STR_MAX + 32];
    unsigned half = c->http_max_connections > 1 ? (unsigned)c->http_max_connections / 2 : 1;
    if (!strcmp(config_where(c, "http", "max_connections_per_ip", where, sizeof where), "default"))
        return 0;
    return (unsigned)c->http_max_per_ip > half ? half : 0;
}

static int start_http(p1d *d)
{
    char err[CONFIG_ERR_MAX], host[CONFIG_STR_MAX];
    unsigned port;
    http_options o;
    http_options_default(&o);
    snprintf(o.listen, sizeof o.listen, "%s", d->cfg.http_listen);
    snprintf(o.token, sizeof o.token, "%s", d->cfg.http_token);
    snprintf(o.basic_user, sizeof o.basic_user, "%s", d->cfg.http_basic_user);
    snprintf(o.basic_pass, sizeof o.basic_pass, "%s", d->cfg.http_basic_pass);
    snprintf(o.cors_origin, sizeof o.cors_origin, "%s", d->cfg.http_cors_origin);
    snprintf(o.allowed_hosts, sizeof o.allowed_hosts, "%s", d->cfg.http_allowed_hosts);
    o.max_connections = (unsigned)d->cfg.http_max_connections;
    o.max_per_ip = (unsigned)d->cfg.http_max_per_ip;
    if (per_ip_lowered(&d->cfg))
        log_warn("[http] max_connections_per_ip = %" PRId64 " is more than half of "
                 "max_connections = %" PRId64 ": "
                 "%u is in force",
                 d->cfg.http_max_per_ip, d->cfg.http_max_connections, per_ip_lowered(&d->cfg));
    snprintf(o.per_ip_exempt, sizeof o.per_ip_exempt, "%s", d->cfg.http_per_ip_exempt);
    o.timeout_s = (unsigned)(d->cfg.http_timeout / 1000);
    o.stale_s = (unsigned)(d->cfg.http_stale / 1000);
    o.health = d->store ? store_live_health : NULL;
    o.health_user = d->store;
    o.pubs = &d->pubs; /* read at request time, so publishers (re)started later show up too */
    if (d->store && start_history(d) < 0)
        return -1;
    history_set_fetch(d->history, fetch_status, &d->fetch);
    o.route = daemon_route;
    o.route_user = d;
    o.history = d->history != NULL;
    o.metrics = d->history ? history_metrics : NULL; /* the price in force now */
    o.metrics_user = d->history;
    if (d->history && history_jobs(d->history, &o.jobs, err, sizeof err) < 0)
        log_info("history: answered on the loop, one at a time: %s", err);
    d->http = http_new(d->l, &d->ms, &o, err, sizeof err);
    if (!d->http) {
        log_error("cannot start the HTTP server on %s: %s", o.listen, err);
        return -1;
    }
    if (config_addr_split(o.listen, host, sizeof host, &port) < 0)
        snprintf(host, sizeof host, "127.0.0.1");
    int v6 = strchr(host, ':') != NULL;
    log_info("dashboard and API at http://%s%s%s:%u/", v6 ? "[" : "", host, v6 ? "]" : "",
             http_port(d->http));
    start_zeroconf(d);
    return 0;
}

/* Whether two serial paths name the same device: the same path, or (when both exist) the same
 * character device or file, so a symlink such as /dev/serial/by-id/... matches its target. */
static int same_device(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return 1;
    if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
        return 0;
    if (S_ISCHR(sa.st_mode) && S_ISCHR(sb.st_mode))
        return sa.st_rdev == sb.st_rdev;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Two sources on one input: two serial sources on one device (the second would wait forever for
 * the lock the first holds), or two on standard input. */
static int sources_shared(const config *c, char *err, size_t cap)
{
    for (size_t i = 0; i < c->nsources; i++) {
        const config_source *a = &c->sources[i];
        for (size_t j = i + 1; a->kind == CONFIG_STDIN && j < c->nsources; j++)
            if (c->sources[j].kind == CONFIG_STDIN) {
                /* two readers of one stream would each get pieces of it */
                snprintf(err, cap,
                         "sources '%.63s' and '%.63s' both read standard input; it can feed only "
                         "one source",
                         a->name, c->sources[j].name);
                return -1;
            }
        if (a->kind != CONFIG_SERIAL)
            continue;
        for (size_t j = i + 1; j < c->nsources; j++) {
            const config_source *b = &c->sources[j];
            if (b->kind != CONFIG_SERIAL || !same_device(a->target, b->target))
                continue;
            snprintf(err, cap,
                     "sources '%.63s' (%.127s) and '%.63s' (%.127s) read the same serial device; "
                     "a device can feed only one source",
                     a->name, a->target, b->name, b->target);
            return -1;
        }
    }
    return 0;
}

/* "HOST:PORT", "[V6]:PORT", "*:PORT" or ":PORT": its host (no brackets) and port; -1 when there is
 * no port after the last ':'. */
static int listen_split(const char *l, char *host, size_t hcap, long *port)
{
    const char *colon = strrchr(l, ':');
    char *end;
    if (!colon || !colon[1])
        return -1;
    *port = strtol(colon + 1, &end, 10);
    if (*end)
        return -1;
    const char *h = l;
    size_t n = (size_t)(colon - l);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    snprintf(host, hcap, "%.*s", (int)n, h);
    return 0;
}

/* Two listen addresses that cannot both be bound: the same port on the same host, or on the
 * wildcard and any host. */
static int listens_clash(const char *a, const char *b)
{
    char ha[128], hb[128];
    long pa, pb;
    if (listen_split(a, ha, sizeof ha, &pa) < 0 || listen_split(b, hb, sizeof hb, &pb) < 0 ||
        pa != pb || pa == 0)
        return 0;
    static const char *const any[] = {"", "*", "0.0.0.0", "::"};
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++)
        if (strcmp(ha, any[i]) == 0 || strcmp(hb, any[i]) == 0)
            return 1;
    return strcmp(config_listen_host(ha), config_listen_host(hb)) == 0;
}

/* Everything about c that can be checked without the network or the database: listen addresses,
 * [prices], the files the publishers read, key formats, a serial device named by two sources and
 * what needs [store] db. The start, --check-config and SIGHUP all run it, so a configuration
 * --check-config passes fails at the start only for reasons of the moment (a port in use, a
 * directory missing). Fills prices; adds every problem to errs and returns -1 when it found one. */
static int config_ready(const config *c, cost_fixed *prices, config_errors *errs)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX], where[CONFIG_STR_MAX + 32];
    const size_t cap = sizeof err;
    size_t before = errs->total;
    /* Each check reports on its own: a file with several problems shows all of them. */
    if (c->nsources == 0 && !c->store_db[0] && !c->test_alert && !c->fetch_prices) {
        /* also on a reload: an emptied or cut-off file must not stop every meter */
        snprintf(err, cap,
                 "%.200s%sno source configured: add --source NAME=SPEC (for example --source "
                 "home=serial:/dev/ttyUSB0) or a [source NAME] section",
                 c->file, c->file[0] ? ": " : "");
        config_errors_add(errs, c->file, err);
    }
    if (sources_shared(c, err, cap) < 0)
        config_errors_add(errs, c->file, err);
    if (http_listen_check(c->http_listen, why, sizeof why) < 0) {
        snprintf(err, cap, "%.150s: [http] listen = '%.127s': %.200s",
                 config_where(c, "http", "listen", where, sizeof where), c->http_listen, why);
        config_errors_add(errs, c->file, err);
    }
    if (http_exempt_check(c->http_per_ip_exempt, why, sizeof why) < 0) {
        snprintf(err, cap, "%.150s: [http] per_ip_exempt: %.200s",
                 config_where(c, "http", "per_ip_exempt", where, sizeof where), why);
        config_errors_add(errs, c->file, err);
    }
    if (c->relay_listen[0] && relay_listen_check(c->relay_listen, why, sizeof why) < 0) {
        snprintf(err, cap, "%.150s: [relay] listen = '%.127s': %.200s",
                 config_where(c, "relay", "listen", where, sizeof where), c->relay_listen, why);
        config_errors_add(errs, c->file, err);
    } else if (c->relay_listen[0] && listens_clash(c->http_listen, c->relay_listen)) {
        snprintf(err, cap,
                 "%.150s: [relay] listen = '%.127s' takes the port of [http] listen = '%.127s': "
                 "give the relay a port of its own",
                 config_where(c, "relay", "listen", where, sizeof where), c->relay_listen,
                 c->http_listen);
        config_errors_add(errs, c->file, err);
    }
    prices_parse(c, prices, err, cap, errs);
    pub_azure_options ao;
    int on = pub_azure_options_from(c, &ao, why, sizeof why);
    explicit_bzero(&ao, sizeof ao);
    if (on < 0) {
        config_placed(c, why, err, cap);
        config_errors_add(errs, c->file, err);
    }
    if (on > 0 && !c->store_db[0]) {
        snprintf(err, cap,
                 "%.150s: [azure] endpoint = '%.255s' needs [store] db: readings are "
                 "published from it",
                 config_where(c, "azure", "endpoint", where, sizeof where), c->azure_endpoint);
        config_errors_add(errs, c->file, err);
    }
    pub_mqtt_options mo;
    if (pub_mqtt_options_from_config(c, &mo) && pub_mqtt_check(&mo, why, sizeof why) < 0) {
        config_placed(c, why, err, cap);
        config_errors_add(errs, c->file, err);
    }
    alerts_options alo;
    alerts_options_from_config(c, &alo, why, sizeof why, errs);
    price_fetch_options fo;
    int fetch = price_fetch_options_from_config(c, &fo, why, sizeof why);
    if (fetch < 0) {
        config_placed(c, why, err, cap);
        config_errors_add(errs, c->file, err);
    } else if (fetch && !c->store_db[0]) {
        const char *key = c->prices_fetch_url[0] ? "fetch_url" : "fetch_gas_url";
        snprintf(err, cap, "%.150s: [prices] %s needs [store] db: fetched prices are stored there",
                 config_where(c, "prices", key, where, sizeof where), key);
        config_errors_add(errs, c->file, err);
    }
    pub_influx_options io;
    if (pub_influx_options_from_config(c, &io)) {
        if (!c->store_db[0]) {
            snprintf(err, cap,
                     "%.150s: [influxdb] url = '%.255s' needs [store] db: readings are "
                     "written from it",
                     config_where(c, "influxdb", "url", where, sizeof where), c->influx_url);
            config_errors_add(errs, c->file, err);
        } else if (pub_influx_check(&io, why, sizeof why) < 0) {
            config_placed(c, why, err, cap);
            config_errors_add(errs, c->file, err);
        }
    }
    return errs->total > before ? -1 : 0;
}

/* Like ssh and mosquitto: a config file every local user can read must not hold passwords or
 * keys. A warning, not an error: the file may be readable on purpose (DynamicUser=yes). */
static void warn_readable_secrets(const config *c)
{
    struct stat st;
    char names[256];
    if (!c->file[0] || stat(c->file, &st) != 0 || !(st.st_mode & S_IROTH) ||
        config_file_secrets(c, names, sizeof names) == 0)
        return;
    log_warn("%s is readable by every user (mode %04o) and holds secrets (%s): make it "
             "chmod o-r, or move them to their *_file keys (token_file, password_file, key_file...; "
             "under systemd: LoadCredential=, see docs/CONFIG.md)",
             c->file, (unsigned)(st.st_mode & 07777), names);
}

/* The meters whose source nc no longer has. Stage 0 stops their sources (first, so that a serial
 * device is free for a source added by the same reload); stage 1 takes them out of the registry,
 * after the publishers were applied, so that one this reload restarted retracts them too.
 * Returns how many. */
static unsigned drop_removed(p1d *d, const config *nc, int stage)
{
    unsigned n = 0;
    for (size_t i = 0; i < d->ms.n;) {
        meter *m = d->ms.list[i];
        if (config_find_source(nc, m->name)) {
            i++;
            continue;
        }
        n++;
        if (stage == 0) {
            if (i < d->capsrc) {
                source_free(d->src[i]);
                d->src[i] = NULL;
            }
            m->state = METER_STOPPED;
            log_info("%s: removed from the configuration; stopped", m->name);
            i++;
            continue;
        }
        /* d->src runs parallel to the registry, which keeps its order; meters past capsrc have
         * no source */
        if (i < d->capsrc) {
            memmove(&d->src[i], &d->src[i + 1], (d->capsrc - i - 1) * sizeof d->src[0]);
            d->src[d->capsrc - 1] = NULL;
        }
        meters_remove(&d->ms, m);
    }
    return n;
}

/* The running source that nc changes for the meter of cs, its index in *at; NULL when there is
 * none or it is kept. */
static source *changed_source(p1d *d, const config_source *cs, size_t *at)
{
    meter *m = meters_find(&d->ms, cs->name);
    size_t i = 0;
    if (!m)
        return NULL;
    while (d->ms.list[i] != m)
        i++;
    if (i >= d->capsrc || !d->src[i] || config_source_equal(source_config(d->src[i]), cs))
        return NULL;
    *at = i;
    return d->src[i];
}

/* Serial ports are opened exclusively: every changed serial source lets go of its device before
 * any source opens one, or two sources that swap devices (two cables named the other way round)
 * would each find the other's still locked by p1d itself, and wait. Returns the settings of the
 * sources stopped, by their index in nc (name "" for the others), for start_source(); NULL when
 * there was no memory for them (then they restart one by one, as before). Free it. */
static config_source *stop_changed_serial(p1d *d, const config *nc)
{
    config_source *was = calloc(nc->nsources ? nc->nsources : 1, sizeof *was);
    for (size_t j = 0; was && j < nc->nsources; j++) {
        size_t i;
        source *s = changed_source(d, &nc->sources[j], &i);
        if (!s || source_config(s)->kind != CONFIG_SERIAL)
            continue;
        was[j] = *source_config(s);
        source_free(s);
        d->src[i] = NULL;
    }
    return was;
}

/* A reload that failed: one error on one line as before; several each on its own line, then
 * how many. */
static void log_reload_errors(const config_errors *errs)
{
    if (errs->total == 1) {
        log_error("reload: %s; keeping the running configuration", errs->msg[0]);
        return;
    }
    for (size_t i = 0; i < errs->n; i++)
        log_error("reload: %s", errs->msg[i]);
    if (errs->total > errs->n)
        log_error("reload: ... and %zu more errors", errs->total - errs->n);
    log_error("reload: %zu errors; keeping the running configuration", errs->total);
}

/* SIGHUP: re-reads the configuration; applies the log level and the sources live. */
static void reload(p1d *d)
{
    config nc;
    config_errors errs;
    char err[CONFIG_ERR_MAX];
    notify_reloading(d->notify, 0);
    cost_fixed prices;
    int bad = config_load(&nc, d->argc, d->argv, &errs) < 0;
    if (!bad)
        warn_readable_secrets(&nc);
    if (bad || config_ready(&nc, &prices, &errs) < 0) {
        log_reload_errors(&errs);
        config_free(&nc);
        notify_reloading(d->notify, 1);
        return;
    }
    log_set_level((log_level)nc.log_level);
    unsigned added = 0, changed = 0, kept = 0, failed = 0;
    unsigned removed = drop_removed(d, &nc, 0);
    config_source *was = stop_changed_serial(d, &nc);
    for (size_t j = 0; j < nc.nsources; j++) {
        const config_source *cs = &nc.sources[j];
        const config_source *stopped = was && was[j].name[0] ? &was[j] : NULL;
        meter *m = meters_find(&d->ms, cs->name);
        size_t i = 0;
        if (m)
            while (d->ms.list[i] != m)
                i++;
        if (m && d->src[i] && config_source_equal(source_config(d->src[i]), cs)) {
            kept++;
            continue;
        }
        if (m && (d->src[i] || stopped)) {
            log_info("%s: source changed; restarting it", cs->name);
            changed++;
        } else {
            added++;
        }
        if (start_source(d, cs, stopped) < 0)
            failed++;
    }
    free(was);
    if (reload_relay(d, &nc) < 0)
        failed++;
    /* A new token or password (token_file rewritten by a rotation) is in force at once; setting
     * or removing one changes what is allowed and announced without it: at the next start. */
    int tok = strcmp(nc.http_token, d->cfg.http_token) != 0;
    int basic = strcmp(nc.http_basic_user, d->cfg.http_basic_user) ||
                strcmp(nc.http_basic_pass, d->cfg.http_basic_pass);
    int auth_changed = tok || basic;
    int auth_same_kind = !nc.http_token[0] == !d->cfg.http_token[0] &&
                         !nc.http_basic_user[0] == !d->cfg.http_basic_user[0];
    if (auth_changed && auth_same_kind && d->http) {
        http_set_auth(d->http, nc.http_token, nc.http_basic_user, nc.http_basic_pass);
        log_info("reload: [http] %s changed; in force now",
                 tok && basic ? "token and basic auth" : tok ? "token" : "basic auth");
    }
    if (nc.http_stale != d->cfg.http_stale && d->http) {
        /* as the MQTT availability and the stale alert, restarted with it below */
        http_set_stale(d->http, (unsigned)(nc.http_stale / 1000));
        log_info("reload: [http] stale changed; in force now");
    }
    if (strcmp(nc.http_listen, d->cfg.http_listen) || (auth_changed && !auth_same_kind) ||
        strcmp(nc.http_cors_origin, d->cfg.http_cors_origin) ||
        strcmp(nc.http_allowed_hosts, d->cfg.http_allowed_hosts) ||
        nc.http_max_connections != d->cfg.http_max_connections ||
        nc.http_max_per_ip != d->cfg.http_max_per_ip ||
        strcmp(nc.http_per_ip_exempt, d->cfg.http_per_ip_exempt) ||
        nc.http_timeout != d->cfg.http_timeout || nc.http_announce != d->cfg.http_announce ||
        strcmp(nc.http_announce_name, d->cfg.http_announce_name))
        log_warn("reload: [http] settings changed; they take effect when p1d restarts");
    if (strcmp(nc.store_db, d->cfg.store_db) || nc.store_raw_keep != d->cfg.store_raw_keep ||
        nc.store_minute_keep != d->cfg.store_minute_keep)
        log_warn("reload: [store] settings changed; they take effect when p1d restarts");
    int prices_changed = 0;
    for (int i = 0; i < COST_FIXED_KEYS; i++)
        prices_changed |= strcmp(nc.prices[i], d->cfg.prices[i]) != 0;
    if ((prices_changed || d->prices_unrecorded) && d->store && cost_fixed_any(&prices)) {
        /* as at start: recorded as the period starting at valid_from; a failure is a part that
         * failed, and the next reload tries again, although the file then seems unchanged */
        if (cost_db_save_fixed(store_db(d->store), &prices, err, sizeof err) < 0) {
            log_error("reload: prices: %s; the prices recorded before stay in force (the next "
                      "reload tries again)",
                      err);
            d->prices_unrecorded = 1;
            failed++;
        } else {
            d->prices_unrecorded = 0;
            store_prices_changed(d->store); /* /metrics and MQTT show the new price at once */
            log_info("reload: [prices] recorded");
        }
    } else if (!cost_fixed_any(&prices)) {
        d->prices_unrecorded = 0;
    }
    for (size_t j = 0; d->store && j < nc.nsources; j++)
        store_meter_clock(d->store, nc.sources[j].name, (store_clock)nc.sources[j].clock);
    failed += (apply_azure(d, &nc) < 0) + (apply_mqtt(d, &nc) < 0) + (apply_influx(d, &nc) < 0) +
              (apply_fetch(d, &nc) < 0) + (apply_alerts(d, &nc) < 0);
    drop_removed(d, &nc, 1);
    if (failed)
        log_error("reload%s%s: %u part%s failed (see above) and kept the running configuration; "
                  "%u source%s added, %u changed, %u removed, %u unchanged; log level %s",
                  nc.file[0] ? " " : "", nc.file, failed, failed == 1 ? "" : "s", added,
                  added == 1 ? "" : "s", changed, removed, kept,
                  log_level_name((log_level)nc.log_level));
    else
        log_info("reloaded%s%s: %u source%s added, %u changed, %u removed, %u unchanged; "
                 "log level %s",
                 nc.file[0] ? " " : "", nc.file, added, added == 1 ? "" : "s", changed, removed,
                 kept, log_level_name((log_level)nc.log_level));
    config_free(&d->cfg);
    d->cfg = nc;
    notify_reloading(d->notify, 1);
}

static void on_signal(void *user, int fd, uint32_t events)
{
    p1d *d = user;
    struct signalfd_siginfo si;
    (void)events;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: reloading the configuration");
            reload(d);
        } else {
            log_info("%s: shutting down", strsignal((int)si.ssi_signo));
            loop_stop(d->l);
        }
    }
}

static int setup_signals(p1d *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->sigfd < 0)
        return -errno;
    d->sigwatch = loop_watch_add(d->l, d->sigfd, EPOLLIN, on_signal, d);
    return d->sigwatch ? 0 : -errno;
}

/* A meter's counters, or a fleet's sums of them. */
typedef struct counters {
    uint64_t telegrams, rejected, crc_errors, reconnects, bytes;
} counters;

static void log_counters(log_level l, const char *name, const counters *c)
{
    log_msg(l,
            "%s: %" PRIu64 " telegram%s, %" PRIu64 " rejected (%" PRIu64 " CRC error%s), %" PRIu64
            " reconnect%s, %" PRIu64 " bytes",
            name, c->telegrams, c->telegrams == 1 ? "" : "s", c->rejected, c->crc_errors,
            c->crc_errors == 1 ? "" : "s", c->reconnects, c->reconnects == 1 ? "" : "s", c->bytes);
}

/* Returns -1 when readings still in memory could not be written (exit status 1), else 0. */
static int shutdown_all(p1d *d)
{
    /* The sources first, and the status lines they still have summed up pending: the log then
     * reads in order, what happened to the meters before their totals. */
    for (size_t i = 0; i < d->capsrc; i++)
        source_free(d->src[i]);
    free(d->src);
    source_log_free(d->srclog);
    /* A fleet's restart logs one line of sums, not one per meter (those at debug). */
    int fleet = d->ms.n > SOURCE_LOG_BURST;
    counters sum = {0};
    for (size_t i = 0; i < d->ms.n; i++) {
        const meter *m = d->ms.list[i];
        counters c = {m->telegrams, m->rejected, m->crc_errors, m->reconnects, m->bytes};
        log_counters(fleet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, m->name, &c);
        sum.telegrams += c.telegrams;
        sum.rejected += c.rejected;
        sum.crc_errors += c.crc_errors;
        sum.reconnects += c.reconnects;
        sum.bytes += c.bytes;
    }
    if (fleet) {
        char name[32];
        snprintf(name, sizeof name, "%zu meters", d->ms.n);
        log_counters(LOG_LEVEL_INFO, name, &sum);
    }
    relay_free(d->relay);
    zeroconf_free(d->zeroconf);
    http_free(d->http);
    price_fetch_free(d->fetch);
    history_free(d->history);
    for (size_t i = 0; i < d->pubs.n; i++)
        d->pubs.list[i]->free(d->pubs.list[i]->impl);
    int lost = store_live_free(d->store_live);
    store_close(d->store);
    notify_free(d->notify);
    loop_watch_del(d->sigwatch);
    if (d->sigfd >= 0)
        close(d->sigfd);
    meters_free(&d->ms);
    loop_free(d->l);
    config_free(&d->cfg);
    return lost;
}

/* --check-config: the database is created at start, so a missing or unwritable directory is
 * worth a note (the systemd unit creates /var/lib/p1d itself: StateDirectory=p1d). */
static void check_db_dir(const char *db)
{
    if (!db[0])
        return;
    char dir[CONFIG_STR_MAX];
    const char *slash = strrchr(db, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == db ? 1 : slash - db), db);
    if (access(dir, W_OK | X_OK) != 0)
        fprintf(stderr,
                "p1d: note: [store] db = %s: directory %s: %s; p1d cannot create the database "
                "there as this user (under systemd, StateDirectory=p1d creates /var/lib/p1d)\n",
                db, dir, strerror(errno));
}

/* --check-config: what [http] announce will publish on the LAN, so a Home Assistant that does
 * not discover p1d has its reason before p1d even runs (nothing for a loopback address unless
 * announce = yes asked for it). */
static void check_announce(const config *c)
{
    char host[CONFIG_STR_MAX], why[256];
    unsigned port = 0;
    if (config_addr_split(c->http_listen, host, sizeof host, &port) < 0)
        port = 0;
    zeroconf_options o;
    if (!announce_plan(c, port, &o, why, sizeof why))
        return;
    fprintf(stderr, "p1d: note: [http] announce: %s%s%s over mDNS (when avahi-daemon runs)%s%s\n",
            o.homewizard ? "the HomeWizard P1 API (" ZEROCONF_HW_TYPE ")" : "",
            o.homewizard && o.dashboard ? " and " : "",
            o.dashboard ? "the dashboard (" ZEROCONF_HTTP_TYPE ") announced" : " announced",
            why[0] ? "; " : "", why);
}

/* --check-config: what [prices] fetch_* will fetch, and when. */
static void check_fetch(const config *c)
{
    price_fetch_options o;
    char why[CONFIG_ERR_MAX], shown[PRICE_FETCH_URL_MAX];
    if (price_fetch_options_from_config(c, &o, why, sizeof why) <= 0)
        return;
    for (int k = 0; k < 2; k++) {
        if (!o.url[k][0])
            continue;
        config_url_shown(o.url[k], shown, sizeof shown);
        char how[96] = ""; /* the header's name only: its value is a token */
        int hn = (int)strcspn(o.header[k], ":");
        if (o.body[k][0] || o.header[k][0])
            snprintf(how, sizeof how, " (%s%s%.*s)", o.body[k][0] ? "POST" : "GET",
                     hn ? ", with the header " : "", hn > 40 ? 40 : hn, o.header[k]);
        int after = price_fetch_after(&o);
        fprintf(stderr,
                "p1d: note: [prices] %s: %s prices fetched from %s%s at start, then daily "
                "from %02d:%02d until tomorrow's are in\n",
                k ? "fetch_gas_url" : "fetch_url", k ? "gas" : "power", shown, how, after / 3600,
                after % 3600 / 60);
    }
}

/* --check-config: which alerts go where; an event that "all" cannot include says why. */
static void check_http(const config *c)
{
    char where[CONFIG_STR_MAX + 32];
    if (per_ip_lowered(c))
        fprintf(stderr,
                "p1d: note: %s: [http] max_connections_per_ip = %" PRId64 " is more than half "
                "of max_connections = %" PRId64 ": %u will be in force\n",
                config_where(c, "http", "max_connections_per_ip", where, sizeof where),
                c->http_max_per_ip, c->http_max_connections, per_ip_lowered(c));
}

static void check_alerts(const config *c)
{
    alerts_options o;
    char why[CONFIG_ERR_MAX], what[1024];
    if (alerts_options_from_config(c, &o, why, sizeof why, NULL) <= 0)
        return;
    alerts_describe(&o, what, sizeof what);
    int all = strstr(c->alerts_events, "all") != NULL; /* no event's name holds "all" */
    fprintf(stderr, "p1d: note: [alerts] url: %s%s%s\n", what,
            all && !c->alerts_fuse ? "; no overload alerts without [alerts] fuse" : "",
            all && !c->store_db[0] ? "; no negative_price alerts without [store] db" : "");
}

/* p1d --fetch-prices: one fetch per configured kind, now, into the store; the log (stderr) says
 * what came. 0 when every fetch stored its prices, 1 when one failed. */
typedef struct fetch_once {
    loop *l;
    int left, failed;
} fetch_once;

static void fetched_once(void *user, cost_kind kind, int ok)
{
    fetch_once *f = user;
    (void)kind;
    f->failed |= !ok;
    if (--f->left == 0)
        loop_stop(f->l);
}

/* p1d --test-alert: one alert, now, to [alerts] url and, with [alerts] mqtt, on MQTT through a
 * client of its own beside the daemon's; 0 when every way took it, 1 when one did not. */
#define TEST_ALERT_MQTT_MS 15000 /* for the broker to take the connection and the alert */

typedef struct test_alert_state {
    loop *l;
    pub *alerts, *mqtt; /* mqtt: NULL without [alerts] mqtt */
    loop_timer *check;
    int64_t give_up; /* loop_now_ms() */
    int raised;      /* the alert was raised (MQTT connected, or given up on) */
    int mqtt_done;
    int left; /* ways not done yet */
    int ok;   /* none failed */
} test_alert_state;

static void test_alert_way_done(test_alert_state *t, int ok)
{
    t->ok &= ok;
    if (--t->left == 0)
        loop_stop(t->l);
}

static void test_alert_done(void *user, int ok, const char *why)
{
    test_alert_state *t = user;
    if (ok)
        log_info("alerts: the test alert was delivered");
    else
        log_error("alerts: the test alert was not delivered: %s", why);
    test_alert_way_done(t, ok);
}

static void test_alert_sent(void *user)
{
    test_alert_state *t = user;
    if (t->mqtt_done)
        return;
    t->mqtt_done = 1;
    log_info("alerts: the test alert was published on MQTT");
    test_alert_way_done(t, 1);
}

static int test_alert_to_mqtt(void *user, const char *json, size_t len)
{
    test_alert_state *t = user;
    return pub_mqtt_alert(t->mqtt, json, len);
}

/* Every 100 ms: the alert goes once the MQTT client is connected (at once without one); the
 * MQTT way fails when the connection fails (nobody listening, TLS, refused credentials: a test
 * says so at once rather than retry) or the broker has not taken the alert in time. */
static void test_alert_check(void *user)
{
    test_alert_state *t = user;
    pub_status st;
    memset(&st, 0, sizeof st);
    if (t->mqtt)
        t->mqtt->status(t->mqtt->impl, &st);
    int failed = t->mqtt && !t->mqtt_done &&
                 (st.state == PUB_AUTH_FAILED || (st.state == PUB_RETRYING && st.last_error[0]) ||
                  loop_now_ms() >= t->give_up);
    if (!t->raised && (!t->mqtt || st.state == PUB_SENDING || failed)) {
        t->raised = 1;
        alerts_test(t->alerts, test_alert_done, t);
    }
    if (failed) {
        t->mqtt_done = 1;
        log_error("alerts: the test alert was not published on MQTT: %s",
                  st.last_error[0] ? st.last_error : "the broker did not take it in time");
        test_alert_way_done(t, 0);
        return;
    }
    if (!t->mqtt_done)
        loop_timer_arm(t->check, 100);
}

static int test_alert(const config *c)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX];
    alerts_options o; /* config_ready() refused a bad one */
    if (alerts_options_from_config(c, &o, why, sizeof why, NULL) <= 0) {
        fprintf(stderr,
                "p1d: --test-alert: nothing to send to: set [alerts] url or [alerts] mqtt\n");
        return EXIT_USAGE;
    }
    meters ms;
    meters_init(&ms);
    test_alert_state t = {.l = loop_new(), .left = (o.url[0] != 0) + (o.mqtt != 0), .ok = 1};
    if (!t.l) {
        log_error("cannot create the event loop: %s", strerror(errno));
        t.ok = 0;
        goto out;
    }
    if (o.mqtt) {
        pub_mqtt_options mo;
        pub_mqtt_options_from_config(c, &mo);
        mo.passing = 1;
        if (!(t.mqtt = pub_mqtt_new(t.l, &ms, NULL, &mo, err, sizeof err))) {
            log_error("%s", err);
            t.ok = 0;
            goto out;
        }
        pub_mqtt_on_alert_sent(t.mqtt, test_alert_sent, &t);
    }
    if (!(t.alerts = alerts_new(t.l, &ms, NULL, &o, err, sizeof err)) ||
        !(t.check = loop_timer_new(t.l, test_alert_check, &t))) {
        log_error("%s", t.alerts ? "out of memory" : err);
        t.ok = 0;
        goto out;
    }
    if (t.mqtt)
        alerts_set_sink(t.alerts, test_alert_to_mqtt, &t);
    t.give_up = loop_now_ms() + TEST_ALERT_MQTT_MS;
    loop_timer_arm(t.check, 0);
    loop_run(t.l);
out:
    loop_timer_del(t.check);
    if (t.alerts)
        t.alerts->free(t.alerts->impl);
    if (t.mqtt)
        t.mqtt->free(t.mqtt->impl);
    meters_free(&ms);
    loop_free(t.l);
    return t.ok ? 0 : 1;
}

static int fetch_prices(const config *c)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX];
    price_fetch_options o; /* config_ready() refused a bad one, and one without [store] db */
    if (price_fetch_options_from_config(c, &o, why, sizeof why) <= 0) {
        fprintf(stderr, "p1d: --fetch-prices: nothing to fetch: set [prices] fetch_url or "
                        "fetch_gas_url\n");
        return EXIT_USAGE;
    }
    char serr[STORE_ERR_MAX]; /* no writer lock: the running p1d holds it (as p1 prices import) */
    store *s = store_open(c->store_db, NULL, serr, sizeof serr);
    if (!s) {
        log_error("%s", serr);
        return 1;
    }
    fetch_once f = {loop_new(), !!o.url[COST_KIND_POWER][0] + !!o.url[COST_KIND_GAS][0], 0};
    price_fetch *pf = NULL;
    o.once = fetched_once;
    o.once_user = &f;
    if (!f.l)
        log_error("cannot create the event loop: %s", strerror(errno));
    else if (cost_db_init(store_db(s), err, sizeof err) < 0)
        log_error("store: %s", err);
    else if (!(pf = price_fetch_new(f.l, s, &o, err, sizeof err)))
        log_error("%s", err);
    else
        loop_run(f.l);
    int rc = !pf || f.failed;
    price_fetch_free(pf);
    loop_free(f.l);
    store_close(s);
    return rc;
}

int main(int argc, char **argv)
{
    p1d d;
    memset(&d, 0, sizeof d);
    d.argc = argc;
    d.argv = argv;
    d.sigfd = -1;
    log_init();
    /* The calendar (days, months, times given without a zone) is the system's zone's: CET/CEST,
     * or EET/EEST where the system runs on it (Lithuania). Before the configuration, which
     * holds such times too. */
    char tz[64];
    civil_use_system_zone(tz, sizeof tz);
    config_errors errs;
    if (config_load(&d.cfg, argc, argv, &errs) < 0) {
        config_errors_print(&errs, stderr, "p1d: ");
        config_free(&d.cfg);
        return EXIT_USAGE;
    }
    if (d.cfg.help || d.cfg.version || d.cfg.print_doc) {
        if (d.cfg.help)
            config_usage(stdout);
        else if (d.cfg.version)
            printf("p1d %s\n", P1_VERSION);
        else
            config_print_doc(stdout);
        config_free(&d.cfg);
        return 0;
    }
    warn_readable_secrets(&d.cfg);
    /* A history keeps the calendar it was created in (store_zone()): before the prices, whose
     * times without a zone are read in it. */
    int sysz = civil_zone(), dbz = d.cfg.store_db[0] ? store_file_zone(d.cfg.store_db) : -1;
    if (dbz >= 0)
        civil_set_zone(dbz);
    cost_fixed prices;
    if (config_ready(&d.cfg, &prices, &errs) < 0) {
        config_errors_print(&errs, stderr, "p1d: ");
        config_free(&d.cfg);
        return EXIT_USAGE;
    }
    if (d.cfg.test_alert) {
        log_set_level((log_level)d.cfg.log_level);
        int rc = test_alert(&d.cfg);
        config_free(&d.cfg);
        return rc;
    }
    if (d.cfg.fetch_prices) {
        log_set_level((log_level)d.cfg.log_level);
        int rc = fetch_prices(&d.cfg);
        config_free(&d.cfg);
        return rc;
    }
    if (d.cfg.check) {
        config_print(&d.cfg, stdout);
        check_db_dir(d.cfg.store_db);
        check_http(&d.cfg);
        check_announce(&d.cfg);
        check_fetch(&d.cfg);
        check_alerts(&d.cfg);
        config_free(&d.cfg);
        return 0;
    }
    log_set_level((log_level)d.cfg.log_level);
    /* random() only spreads retries (sources, MQTT, InfluxDB): seeded per process, so sites that
     * restart together (a power cut) do not retry in lockstep either. */
    unsigned seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (unsigned)getpid() ^ (unsigned)loop_wall_ms();
    srandom(seed);
    meters_init(&d.ms);
    d.l = loop_new();
    if (!d.l) {
        log_error("cannot create the event loop: %s", strerror(errno));
        config_free(&d.cfg);
        return 1;
    }
    d.srclog = source_log_new(d.l);
    if (!d.srclog) {
        log_error("out of memory");
        shutdown_all(&d);
        return 1;
    }
    int rc = setup_signals(&d);
    if (rc < 0) {
        log_error("cannot set up signal handling: %s", strerror(-rc));
        shutdown_all(&d);
        return 1;
    }
    log_info("p1d %s starting: %zu source%s", P1_VERSION, d.cfg.nsources,
             d.cfg.nsources == 1 ? "" : "s");
    if (civil_zone() != sysz)
        log_warn("calendar: days, months and times without a zone are in %s, the calendar %s was "
                 "created in; the system's time zone is %s now",
                 civil_zone_name(), d.cfg.store_db, tz[0] ? tz : "not set");
    else if (civil_zone() != P1_ZONE_CET)
        log_info("calendar: days, months and times without a zone are in %s (the system's time "
                 "zone is %s)", civil_zone_name(), tz);
    if (start_store(&d) < 0 || apply_azure(&d, &d.cfg) < 0 || apply_mqtt(&d, &d.cfg) < 0 ||
        apply_influx(&d, &d.cfg) < 0) {
        shutdown_all(&d);
        return 1;
    }
    for (size_t i = 0; i < d.cfg.nsources; i++)
        start_source(&d, &d.cfg.sources[i], NULL);
    if (start_http(&d) < 0 || start_relay(&d) < 0 || apply_fetch(&d, &d.cfg) < 0 ||
        apply_alerts(&d, &d.cfg) < 0) {
        shutdown_all(&d);
        return 1;
    }
    d.notify = notify_new(d.l, &d.ms);
    if (!d.notify) {
        log_error("out of memory");
        shutdown_all(&d);
        return 1;
    }
    notify_ready(d.notify);
    rc = loop_run(d.l);
    notify_stopping(d.notify);
    if (rc < 0)
        log_error("event loop failed: %s", strerror(-rc));
    /* readings lost at the end (the disk still full) fail the run, as systemd should show */
    int lost = shutdown_all(&d);
    return rc < 0 || lost < 0 ? 1 : 0;
}
