/* zeroconf.c: the mDNS/DNS-SD announcer. p1d does not answer multicast DNS itself: it asks the
 * machine's avahi-daemon over D-Bus (libavahi-client, dlopen'ed) to publish its services, so it
 * shares the one responder of the host (port 5353) with everything else there. The client runs
 * on the daemon's own loop through an AvahiPoll made of loop watches and timers. */
#include "zeroconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>

#include "config.h"
#include "dl_avahi.h"
#include "homewizard.h"
#include "log.h"

#define RESTART_MS  1000  /* after avahi-daemon went away or the client failed */
#define RETRY_MS    30000 /* while the system bus cannot be reached */
#define RENAMES_MAX 32    /* collisions in a row before giving up on a name */

struct zeroconf {
    loop *l;
    meters *ms;
    const dl_avahi *av;
    AvahiPoll poll;
    AvahiClient *client;
    AvahiEntryGroup *group;
    loop_timer *restart;
    zeroconf_options o;
    AvahiIfIndex iface; /* where the server is reached (listen_scope) */
    AvahiProtocol proto;
    char serial[HOMEWIZARD_SERIAL_LEN + 1]; /* the one announced (or to be) */
    unsigned renames;
    int waiting_logged; /* "waiting for avahi-daemon" said since the last success */
};

/* ---- AvahiPoll on the daemon's loop ---- */

struct AvahiWatch {
    loop_watch *w;
    AvahiWatchCallback cb;
    void *user;
    AvahiWatchEvent happened; /* during the callback, for watch_get_events */
};

struct AvahiTimeout {
    loop_timer *t;
    AvahiTimeoutCallback cb;
    void *user;
};

static void on_watch(void *user, int fd, uint32_t events)
{
    AvahiWatch *w = user;
    /* AVAHI_WATCH_* are the poll(2) bits, which Linux gives the same values as EPOLL*. */
    w->happened = (AvahiWatchEvent)(events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP));
    w->cb(w, fd, w->happened, w->user); /* may free w */
}

static AvahiWatch *watch_new(const AvahiPoll *api, int fd, AvahiWatchEvent ev,
                             AvahiWatchCallback cb, void *user)
{
    zeroconf *z = api->userdata;
    AvahiWatch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cb = cb;
    w->user = user;
    w->w = loop_watch_add(z->l, fd, (uint32_t)ev, on_watch, w);
    if (!w->w) {
        free(w);
        return NULL;
    }
    return w;
}

static void watch_update(AvahiWatch *w, AvahiWatchEvent ev)
{
    loop_watch_mod(w->w, (uint32_t)ev);
}

static AvahiWatchEvent watch_get_events(AvahiWatch *w)
{
    return w->happened;
}

static void watch_free(AvahiWatch *w)
{
    loop_watch_del(w->w);
    free(w);
}

static void on_timeout(void *user)
{
    AvahiTimeout *t = user;
    t->cb(t, t->user); /* may free t or re-arm it */
}

/* Avahi's times are absolute gettimeofday() times; the loop's timers take a delay. */
static void timeout_update(AvahiTimeout *t, const struct timeval *tv)
{
    if (!tv) {
        loop_timer_disarm(t->t);
        return;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = ((int64_t)tv->tv_sec - now.tv_sec) * 1000000 + (tv->tv_usec - now.tv_usec);
    loop_timer_arm(t->t, us > 0 ? (us + 999) / 1000 : 0);
}

static AvahiTimeout *timeout_new(const AvahiPoll *api, const struct timeval *tv,
                                 AvahiTimeoutCallback cb, void *user)
{
    zeroconf *z = api->userdata;
    AvahiTimeout *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cb = cb;
    t->user = user;
    t->t = loop_timer_new(z->l, on_timeout, t);
    if (!t->t) {
        free(t);
        return NULL;
    }
    timeout_update(t, tv);
    return t;
}

static void timeout_free(AvahiTimeout *t)
{
    loop_timer_del(t->t);
    free(t);
}

/* ---- what is announced ---- */

/* The address [http] listen names: AF_INET or AF_INET6 with its bytes in *a, or AF_UNSPEC for
 * "*:80" and ":80" (every address of both families). */
typedef union listen_addr {
    struct in_addr v4;
    struct in6_addr v6;
} listen_addr;

static int listen_parse(const char *listen, listen_addr *a)
{
    char host[CONFIG_STR_MAX];
    unsigned port;
    if (config_addr_split(listen, host, sizeof host, &port) < 0)
        return AF_UNSPEC;
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    return inet_pton(AF_INET, host, &a->v4) == 1    ? AF_INET
           : inet_pton(AF_INET6, host, &a->v6) == 1 ? AF_INET6
                                                    : AF_UNSPEC;
}

/* ::1, or an IPv4-mapped 127.x address. */
static int listen_loopback6(const struct in6_addr *a)
{
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

int zeroconf_plan(zeroconf_mode mode, const char *listen, unsigned port, int auth,
                  zeroconf_options *o, char *why, size_t cap)
{
    listen_addr a;
    int family = listen_parse(listen, &a);
    int loop_only = family == AF_INET    ? (ntohl(a.v4.s_addr) >> 24) == 127
                    : family == AF_INET6 ? listen_loopback6(&a.v6)
                                         : 0;
    snprintf(o->listen, sizeof o->listen, "%s", listen);
    o->port = port;
    o->homewizard = o->dashboard = 0;
    why[0] = '\0';
    if (mode == ZEROCONF_NO)
        return 0;
    if (mode == ZEROCONF_YES) {
        o->homewizard = o->dashboard = 1;
        if (loop_only)
            snprintf(why, cap,
                     "[http] listen %s is a loopback address, which no other machine "
                     "reaches",
                     listen);
        else if (auth)
            snprintf(why, cap,
                     "HomeWizard clients send no token or password, which [http] "
                     "asks for");
        else if (port != 80)
            snprintf(why, cap,
                     "HomeWizard clients such as Home Assistant's integration talk to "
                     "port 80, not %u",
                     port);
        return 2;
    }
    if (loop_only) {
        snprintf(why, cap,
                 "[http] listen %s is a loopback address (listen on the LAN, e.g. "
                 "0.0.0.0:80, to be found)",
                 listen);
        return 0;
    }
    o->dashboard = 1;
    if (auth)
        snprintf(why, cap,
                 "the HomeWizard API is not announced: HomeWizard clients send no "
                 "token or password, which [http] asks for");
    else if (port != 80)
        snprintf(why, cap,
                 "the HomeWizard API is not announced: HomeWizard clients such as Home "
                 "Assistant's integration talk to port 80 only, and p1d listens on %u",
                 port);
    else
        o->homewizard = 1;
    return o->dashboard + o->homewizard;
}

/* Where a client reaches a server listening on `listen`: a specific address on the interface
 * that holds it and in its family (a client told another address of the host would be refused),
 * 0.0.0.0 over IPv4 on every interface, [::] and * (both families) anywhere. */
static void listen_scope(const char *listen, AvahiIfIndex *iface, AvahiProtocol *proto)
{
    listen_addr a;
    int family = listen_parse(listen, &a);
    size_t alen = family == AF_INET ? sizeof a.v4 : sizeof a.v6;
    *iface = AVAHI_IF_UNSPEC;
    *proto = AVAHI_PROTO_UNSPEC;
    if (family == AF_UNSPEC || (family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a.v6)))
        return; /* both families everywhere */
    *proto = family == AF_INET ? AVAHI_PROTO_INET : AVAHI_PROTO_INET6;
    if (family == AF_INET && a.v4.s_addr == htonl(INADDR_ANY))
        return;
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0)
        return;
    for (const struct ifaddrs *i = list; i; i = i->ifa_next) {
        const struct sockaddr *sa = i->ifa_addr;
        if (!sa || sa->sa_family != family)
            continue;
        const void *have = family == AF_INET
                               ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                               : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (!memcmp(have, &a, alen)) {
            unsigned idx = if_nametoindex(i->ifa_name);
            if (idx)
                *iface = (AvahiIfIndex)idx;
            break;
        }
    }
    freeifaddrs(list);
}

/* The serial GET /api reports: the first meter's last known equipment id, else its name. */
static void current_serial(const zeroconf *z, char out[HOMEWIZARD_SERIAL_LEN + 1])
{
    const meter *m = z->ms->n ? z->ms->list[0] : NULL;
    homewizard_serial(m ? (m->equipment_id[0] ? m->equipment_id : m->name) : "", out);
}

static AvahiStringList *hw_txt(const zeroconf *z)
{
    /* The keys a HomeWizard P1 meter sends and Home Assistant's discovery requires. */
    const dl_avahi *av = z->av;
    AvahiStringList *t = av->string_list_add_pair(NULL, "api_enabled", "1");
    t = t ? av->string_list_add_pair(t, "path", "/api/v1") : NULL;
    t = t ? av->string_list_add_pair(t, "product_name", HOMEWIZARD_PRODUCT_NAME) : NULL;
    t = t ? av->string_list_add_pair(t, "product_type", HOMEWIZARD_PRODUCT_TYPE) : NULL;
    t = t ? av->string_list_add_pair(t, "serial", z->serial) : NULL;
    return t;
}

static void publish(zeroconf *z, AvahiClient *c);

/* Adds one service of type with txt (taken, freed here; NULL: out of memory) to the group. */
static int add_service(zeroconf *z, const char *type, AvahiStringList *txt)
{
    int rc = txt ? z->av->entry_group_add_service_strlst(z->group, z->iface, z->proto, 0, z->o.name,
                                                         type, NULL, NULL, (uint16_t)z->o.port, txt)
                 : AVAHI_ERR_NO_MEMORY;
    z->av->string_list_free(txt);
    return rc;
}

/* Another host announces the name: take Avahi's next one ("p1d on pi #2"). */
static int rename_service(zeroconf *z)
{
    if (++z->renames > RENAMES_MAX) {
        log_error("mdns: every name up to '%s' is taken on the network; not announced", z->o.name);
        return -1;
    }
    char *alt = z->av->alternative_service_name(z->o.name);
    if (!alt) {
        log_error("mdns: out of memory");
        return -1;
    }
    log_warn("mdns: the name '%s' is taken on the network; announcing as '%s'", z->o.name, alt);
    snprintf(z->o.name, sizeof z->o.name, "%s", alt);
    z->av->free(alt);
    return 0;
}

static void on_group(AvahiEntryGroup *g, AvahiEntryGroupState state, void *user)
{
    zeroconf *z = user;
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        z->renames = 0;
        log_info("mdns: announced '%s' on port %u:%s%s%s%s", z->o.name, z->o.port,
                 z->o.homewizard ? " HomeWizard P1 API (" ZEROCONF_HW_TYPE ", serial " : "",
                 z->o.homewizard ? z->serial : "", z->o.homewizard ? ")" : "",
                 z->o.dashboard ? " dashboard (" ZEROCONF_HTTP_TYPE ")" : "");
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        if (rename_service(z) == 0) {
            z->av->entry_group_reset(g);
            publish(z, z->av->entry_group_get_client(g));
        }
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        log_error("mdns: announcing failed: %s",
                  z->av->strerror(z->av->client_errno(z->av->entry_group_get_client(g))));
        break;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING:
        break;
    }
}

/* Adds the services to the (empty) group and commits it; on a local name clash retries under
 * the next name. */
static void publish(zeroconf *z, AvahiClient *c)
{
    const dl_avahi *av = z->av;
    if (!z->group) {
        z->group = av->entry_group_new(c, on_group, z);
        if (!z->group) {
            log_error("mdns: cannot create an entry group: %s", av->strerror(av->client_errno(c)));
            return;
        }
    }
    if (!av->entry_group_is_empty(z->group))
        return;
    if (!z->o.name[0]) {
        const char *host = av->client_get_host_name(c);
        snprintf(z->o.name, sizeof z->o.name, "p1d on %s", host && host[0] ? host : "this host");
    }
    current_serial(z, z->serial);
    for (;;) {
        int rc = z->o.homewizard ? add_service(z, ZEROCONF_HW_TYPE, hw_txt(z)) : 0;
        if (rc == 0 && z->o.dashboard)
            rc = add_service(z, ZEROCONF_HTTP_TYPE, av->string_list_add_pair(NULL, "path", "/"));
        if (rc == 0)
            rc = av->entry_group_commit(z->group);
        if (rc == AVAHI_ERR_COLLISION) {
            av->entry_group_reset(z->group);
            if (rename_service(z) == 0)
                continue;
            return;
        }
        if (rc < 0) {
            log_error("mdns: cannot announce '%s': %s", z->o.name, av->strerror(rc));
            av->entry_group_reset(z->group);
        }
        return;
    }
}

static void on_client(AvahiClient *c, AvahiClientState state, void *user)
{
    /* The first call comes from inside avahi_client_new, before z->client is set: use c. */
    zeroconf *z = user;
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        z->waiting_logged = 0;
        publish(z, c);
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The host's own name changes: withdraw, and publish again once it runs. */
        if (z->group)
            z->av->entry_group_reset(z->group);
        break;
    case AVAHI_CLIENT_CONNECTING:
        if (!z->waiting_logged)
            log_info("mdns: waiting for avahi-daemon (announcing once it runs)");
        z->waiting_logged = 1;
        break;
    case AVAHI_CLIENT_FAILURE:
        /* Not inside its own callback: the restart timer frees this client and makes another,
         * which waits for the daemon to come back (AVAHI_CLIENT_NO_FAIL). */
        if (z->av->client_errno(c) == AVAHI_ERR_DISCONNECTED)
            log_warn("mdns: avahi-daemon went away; announcing again when it is back");
        else
            log_error("mdns: %s; trying again", z->av->strerror(z->av->client_errno(c)));
        z->waiting_logged = 1;
        loop_timer_arm(z->restart, RESTART_MS);
        break;
    }
}

/* Makes the client. Without even the system bus (no D-Bus, so no avahi-daemon either) it tries
 * again every RETRY_MS, and says so once. */
static void start_client(zeroconf *z)
{
    int e = 0;
    z->group = NULL;
    z->client = z->av->client_new(&z->poll, AVAHI_CLIENT_NO_FAIL, on_client, z, &e);
    if (z->client)
        return;
    if (!z->waiting_logged)
        log_info("mdns: cannot reach avahi-daemon (%s); trying again every %d s",
                 z->av->strerror(e), RETRY_MS / 1000);
    z->waiting_logged = 1;
    loop_timer_arm(z->restart, RETRY_MS);
}

static void on_restart(void *user)
{
    zeroconf *z = user;
    if (z->client)
        z->av->client_free(z->client); /* frees the group with it */
    z->client = NULL;
    start_client(z);
}

/* A reading: the HomeWizard serial follows the first meter's equipment id (the serial depends on
 * that meter alone, so the others' readings are passed by). */
static void on_reading(void *user, meter *m, const meter_sample *s, const uint8_t *raw,
                       size_t raw_len)
{
    (void)s, (void)raw, (void)raw_len;
    zeroconf *z = user;
    if (!z->ms->n || m != z->ms->list[0])
        return;
    char now[HOMEWIZARD_SERIAL_LEN + 1];
    current_serial(z, now);
    if (!strcmp(now, z->serial))
        return;
    memcpy(z->serial, now, sizeof now);
    if (!z->group || z->av->entry_group_is_empty(z->group))
        return; /* published with it when the daemon runs */
    AvahiStringList *txt = hw_txt(z);
    int rc = txt ? z->av->entry_group_update_service_txt_strlst(
                       z->group, z->iface, z->proto, 0, z->o.name, ZEROCONF_HW_TYPE, NULL, txt)
                 : AVAHI_ERR_NO_MEMORY;
    z->av->string_list_free(txt);
    if (rc < 0)
        log_warn("mdns: cannot update the HomeWizard serial to %s: %s", now, z->av->strerror(rc));
    else
        log_msg(z->av->entry_group_get_state(z->group) == AVAHI_ENTRY_GROUP_ESTABLISHED
                    ? LOG_LEVEL_INFO
                    : LOG_LEVEL_DEBUG,
                "mdns: HomeWizard serial now %s", now);
}

zeroconf *zeroconf_new(loop *l, meters *ms, const zeroconf_options *o, char *err, size_t cap)
{
    const dl_avahi *av = dl_avahi_load(err, cap);
    if (!av)
        return NULL;
    zeroconf *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    z->l = l;
    z->ms = ms;
    z->av = av;
    z->o = *o;
    z->poll = (AvahiPoll){
        .userdata = z,
        .watch_new = watch_new,
        .watch_update = watch_update,
        .watch_get_events = watch_get_events,
        .watch_free = watch_free,
        .timeout_new = timeout_new,
        .timeout_update = timeout_update,
        .timeout_free = timeout_free,
    };
    listen_scope(o->listen, &z->iface, &z->proto);
    current_serial(z, z->serial);
    z->restart = loop_timer_new(l, on_restart, z);
    if (!z->restart || (o->homewizard && meters_hook(ms, on_reading, z) < 0)) {
        snprintf(err, cap, "out of memory");
        loop_timer_del(z->restart);
        free(z);
        return NULL;
    }
    start_client(z);
    return z;
}

void zeroconf_free(zeroconf *z)
{
    if (!z)
        return;
    meters_unhook(z->ms, on_reading, z);
    loop_timer_del(z->restart);
    if (z->client)
        z->av->client_free(z->client); /* the daemon withdraws the services (goodbye packets) */
    free(z);
}
