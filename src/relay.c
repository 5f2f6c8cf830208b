/* relay.c: the raw telegram relay. Writes never block the loop: each client has a bounded
 * buffer, and a client that cannot keep up is dropped rather than slowing everyone down. */
#define _GNU_SOURCE
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "p1/p1.h"

#define RELAY_BACKLOG 64
/* Client lines (connected, gone, refused, dropped) a second; more are counted, not logged. */
#define RELAY_LOG_BURST 5
/* How long the listener rests when accept() fails for want of descriptors or memory. */
#define RELAY_ACCEPT_PAUSE_MS 1000
/* A client as the log shows it: a.b.c.d:PORT or [IPV6]:PORT. */
#define RELAY_PEER_MAX 64

typedef struct relay_client {
    relay *r;
    int fd;
    loop_watch *watch;
    uint8_t *buf;         /* pending bytes buf[head..len) */
    size_t head, len;
    int eof;              /* the client shut down its sending side; it is still relayed to */
    char peer[RELAY_PEER_MAX];
    struct relay_client *next;
} relay_client;

struct relay {
    loop *l;
    meters *ms;
    int fd;
    loop_watch *watch;
    unsigned port;
    char meter[METER_NAME_MAX + 1];
    size_t buffer, max_clients, nclients;
    relay_client *clients;
    loop_timer *log_timer; /* reports the client lines a burst suppressed */
    log_burst burst;
    loop_timer *accept_timer; /* resumes accepting after a pause (RELAY_ACCEPT_PAUSE_MS) */
    int starved;              /* accept() is failing for want of resources; logged once */
};

/* Logs one line about a client. A client that reconnects in a loop, or a crowd refused at the
 * limit, would otherwise write two lines per connection for as long as it goes on. */
__attribute__((format(printf, 3, 4))) static void client_log(relay *r, log_level lv,
                                                             const char *fmt, ...)
{
    int take = log_burst_take(&r->burst, loop_now_ms(), RELAY_LOG_BURST);
    if (take < 0)
        loop_timer_arm(r->log_timer, 1000);
    if (take <= 0)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_msg(lv, "relay: %s", buf);
}

static void on_log_timer(void *user)
{
    relay *r = user;
    unsigned n = log_burst_flush(&r->burst);
    if (n)
        log_warn("relay: %u more client messages suppressed (more than %d per second)", n,
                 RELAY_LOG_BURST);
}

static void client_free(relay_client *c)
{
    relay *r = c->r;
    for (relay_client **p = &r->clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    r->nclients--;
    loop_watch_del(c->watch);
    close(c->fd);
    free(c->buf);
    free(c);
}

static uint32_t client_events(const relay_client *c)
{
    return (c->eof ? 0 : EPOLLIN) | (c->len ? EPOLLOUT : 0);
}

/* Writes what is pending; returns 0, or -1 when the client is gone (and freed). */
static int client_flush(relay_client *c)
{
    while (c->head < c->len) {
        ssize_t n = send(c->fd, c->buf + c->head, c->len - c->head, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            client_log(c->r, LOG_LEVEL_INFO, "client %s gone (%s)", c->peer, strerror(errno));
            client_free(c);
            return -1;
        }
        c->head += (size_t)n;
    }
    if (c->head == c->len)
        c->head = c->len = 0;
    loop_watch_mod(c->watch, client_events(c));
    return 0;
}

static void on_client(void *user, int fd, uint32_t events)
{
    relay_client *c = user;
    if (events & EPOLLIN) {
        /* Clients have nothing to say; read and discard so a chatty one cannot fill our socket
         * buffer, and notice the close. */
        char junk[512];
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n == 0) {
            /* A half-close is "nothing to say" (ncat < /dev/null, nc -N, socat -u), not "gone":
             * keep relaying. A client that closed for good is noticed on the next write (EPIPE,
             * or HUP/ERR after its RST), or sooner when its slot or descriptor is wanted (reap_closed). */
            c->eof = 1;
            loop_watch_mod(c->watch, client_events(c));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            client_log(c->r, LOG_LEVEL_INFO, "client %s disconnected", c->peer);
            client_free(c);
            return;
        }
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        client_log(c->r, LOG_LEVEL_INFO, "client %s disconnected", c->peer);
        client_free(c);
        return;
    }
    if (events & EPOLLOUT)
        client_flush(c);
}

/* Frees the oldest client that closed its side (it may be gone altogether) to make room for a
 * new one; returns 1, or 0 when there is none. The list is newest first. */
static int reap_closed(relay *r)
{
    relay_client *closed = NULL;
    for (relay_client *c = r->clients; c; c = c->next)
        if (c->eof)
            closed = c;
    if (!closed)
        return 0;
    client_log(r, LOG_LEVEL_INFO, "client %s disconnected (it had closed its side; its slot is "
               "wanted)", closed->peer);
    client_free(closed);
    return 1;
}

static void on_accept_timer(void *user)
{
    relay *r = user;
    loop_watch_mod(r->watch, EPOLLIN);
}

static void on_accept(void *user, int fd, uint32_t events)
{
    relay *r = user;
    (void)events;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int cfd = accept4(fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        int e = errno;
        if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
            return;
        if (reap_closed(r))
            return; /* the listener is still readable: the loop calls again */
        /* The connection stays queued and the listener stays readable: without a pause the loop
         * would spin on accept() at full CPU for as long as the descriptors are gone. */
        loop_watch_mod(r->watch, 0);
        loop_timer_arm(r->accept_timer, RELAY_ACCEPT_PAUSE_MS);
        if (!r->starved)
            log_warn("relay: cannot accept clients (%s); waiting clients are queued until "
                     "descriptors free up (raise LimitNOFILE= or lower [relay] clients)",
                     strerror(e));
        r->starved = 1;
        return;
    }
    if (r->starved) {
        r->starved = 0;
        log_info("relay: accepting clients again");
    }
    /* A dual-stack listener ([::]:PORT) sees an IPv4 client as ::ffff:a.b.c.d: shown as
     * a.b.c.d, and an IPv6 address in brackets, so that its port is not read as part of it. */
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    if (sa.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        struct sockaddr_in v4;
        memset(&v4, 0, sizeof v4);
        v4.sin_family = AF_INET;
        v4.sin_port = s6->sin6_port;
        memcpy(&v4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
        memcpy(&sa, &v4, sizeof v4);
        sl = sizeof v4;
    }
    char host[INET6_ADDRSTRLEN] = "?", serv[8] = "?", peer[RELAY_PEER_MAX];
    getnameinfo((struct sockaddr *)&sa, sl, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(peer, sizeof peer, sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    if (r->nclients >= r->max_clients && !reap_closed(r)) {
        client_log(r, LOG_LEVEL_WARN, "refusing %s, already %zu clients", peer, r->nclients);
        close(cfd);
        return;
    }
    relay_client *c = calloc(1, sizeof *c);
    if (c)
        c->buf = malloc(r->buffer);
    if (!c || !c->buf) {
        free(c);
        close(cfd);
        return;
    }
    /* Keep the kernel's share of the backlog small too, so "behind" means what the option says. */
    int sndbuf = r->buffer > 65536 ? 65536 : (int)r->buffer;
    setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    c->r = r;
    c->fd = cfd;
    memcpy(c->peer, peer, sizeof c->peer);
    c->watch = loop_watch_add(r->l, cfd, EPOLLIN, on_client, c);
    if (!c->watch) {
        close(cfd);
        free(c->buf);
        free(c);
        return;
    }
    c->next = r->clients;
    r->clients = c;
    r->nclients++;
    client_log(r, LOG_LEVEL_INFO, "client %s connected", c->peer);
}

static void on_reading(void *user, meter *m, const meter_sample *s, const uint8_t *raw,
                       size_t raw_len)
{
    relay *r = user;
    (void)s;
    if (r->meter[0] == '\0') {
        if (r->ms->n == 0 || r->ms->list[0] != m)
            return;
    } else if (strcmp(m->name, r->meter) != 0) {
        return;
    }
    relay_client *next;
    for (relay_client *c = r->clients; c; c = next) {
        next = c->next;
        if (c->len + raw_len > r->buffer && c->head > 0) {
            memmove(c->buf, c->buf + c->head, c->len - c->head);
            c->len -= c->head;
            c->head = 0;
        }
        if (c->len + raw_len > r->buffer) {
            client_log(r, LOG_LEVEL_WARN, "dropping client %s: it fell %zu bytes behind", c->peer,
                       c->len);
            client_free(c);
            continue;
        }
        memcpy(c->buf + c->len, raw, raw_len);
        c->len += raw_len;
        client_flush(c);
    }
}

/* listen as HOST:PORT -> *res (freeaddrinfo it). Returns 0, or -1 with the reason in err. */
static int resolve_listen(const char *listen, struct addrinfo **res, char *err, size_t cap)
{
    char host[CONFIG_STR_MAX];
    unsigned port;
    if (config_addr_split(listen, host, sizeof host, &port) < 0) {
        snprintf(err, cap, "expected HOST:PORT or [IPV6]:PORT with a port from 0 to 65535");
        return -1;
    }
    char sport[8];
    snprintf(sport, sizeof sport, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    /* The relay binds one address: localhost is 127.0.0.1, as for [http] listen. getaddrinfo()
     * gives ::1 first where /etc/hosts names both (Debian's does): IPv4 clients were refused. */
    const char *node = config_listen_host(host);
    /* "*" is every address, IPv4 and IPv6 as for [http] listen: [::] taking both (relay_new()),
     * or 0.0.0.0 on a system without IPv6. */
    int any = strcmp(host, "*") == 0;
    if (any)
        node = "::";
    int g = getaddrinfo(node, sport, &hints, res);
    if (any && g == 0) {
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            freeaddrinfo(*res);
            g = getaddrinfo("0.0.0.0", sport, &hints, res);
        } else {
            close(probe);
        }
    }
    if (g != 0) {
        snprintf(err, cap, "%s: %s", host, gai_strerror(g));
        return -1;
    }
    return 0;
}

int relay_listen_check(const char *listen, char *err, size_t cap)
{
    struct addrinfo *res;
    if (resolve_listen(listen, &res, err, cap) < 0)
        return -1;
    freeaddrinfo(res);
    return 0;
}

relay *relay_new(loop *l, meters *ms, const relay_options *o, char *err, size_t cap)
{
    struct addrinfo *res;
    char why[CONFIG_ERR_MAX];
    if (resolve_listen(o->listen, &res, why, sizeof why) < 0) {
        snprintf(err, cap, "relay: listen address '%s': %s", o->listen, why);
        errno = EINVAL;
        return NULL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* [::] (and "*") takes IPv4 clients too, whatever net.ipv6.bindv6only says */
    if (fd >= 0 && res->ai_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, RELAY_BACKLOG) < 0) {
        int e = errno;
        snprintf(err, cap, "relay: cannot listen on %s: %s", o->listen, strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        errno = e;
        return NULL;
    }
    freeaddrinfo(res);
    relay *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        snprintf(err, cap, "relay: out of memory");
        errno = ENOMEM;
        return NULL;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        r->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    r->l = l;
    r->ms = ms;
    r->fd = fd;
    r->buffer = o->buffer ? o->buffer : 65536;
    /* A client that is not behind at all must always take the largest telegram whole. */
    if (r->buffer < P1_TELEGRAM_MAX)
        r->buffer = P1_TELEGRAM_MAX;
    r->max_clients = o->max_clients ? o->max_clients : 64;
    snprintf(r->meter, sizeof r->meter, "%s", o->meter ? o->meter : "");
    r->log_timer = loop_timer_new(l, on_log_timer, r);
    r->accept_timer = loop_timer_new(l, on_accept_timer, r);
    r->watch = loop_watch_add(l, fd, EPOLLIN, on_accept, r);
    if (!r->log_timer || !r->accept_timer || !r->watch || meters_hook(ms, on_reading, r) < 0) {
        snprintf(err, cap, "relay: cannot register with the loop");
        relay_free(r);
        errno = ENOMEM;
        return NULL;
    }
    return r;
}

void relay_free(relay *r)
{
    if (!r)
        return;
    meters_unhook(r->ms, on_reading, r);
    while (r->clients)
        client_free(r->clients);
    on_log_timer(r);
    loop_timer_del(r->log_timer);
    loop_timer_del(r->accept_timer);
    loop_watch_del(r->watch);
    close(r->fd);
    free(r);
}

unsigned relay_port(const relay *r)
{
    return r->port;
}
