/* source_tcp.c: a TCP client for network P1 dongles and ser2net raw ports: host names looked up
 * off the loop, non-blocking connect with timeout, idle detection, and reconnecting with backoff. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "lookup.h"
#include "source_impl.h"

typedef struct tcp {
    int fd;
    int connecting;
    lookup *lookup;          /* the name's lookup running (lookup.h), or NULL */
    /* While connecting: the lookup's answer and the address after the one being tried, so that
     * an address that refuses or times out (a name's IPv6 address first, a dongle listening on
     * IPv4 alone) is followed by the next one, not by the backoff and the same address again. */
    struct addrinfo *addrs;
    struct addrinfo *next_addr;
    loop_watch *watch;
    loop_timer *retry;   /* next connect attempt */
    loop_timer *timer;   /* connect timeout while connecting; quiet/idle once connected */
    int64_t last_byte;   /* monotonic ms */
    uint64_t got;        /* bytes read on this connection */
    int empty;           /* connections in a row the peer closed without sending a byte */
    char host[CONFIG_STR_MAX];
    char port[8];
} tcp;

static void tcp_connect(source *s);
static int tcp_connect_next(source *s, int *err);

static void tcp_forget_addrs(tcp *t)
{
    if (t->addrs)
        freeaddrinfo(t->addrs);
    t->addrs = t->next_addr = NULL;
}

/* The next reconnect delay, drawn from 50-100 % of the backoff: dongles that dropped together
 * (a switch rebooting, a router losing power) are not all called again in the same millisecond,
 * and their log lines and connection attempts spread out instead of coming in waves. */
static int64_t retry_delay(source *s)
{
    int64_t d = source_backoff(s);
    return d / 2 + (int64_t)(random() % (d / 2 + 1));
}

static void tcp_close(tcp *t)
{
    if (t->fd < 0)
        return;
    loop_watch_del(t->watch);
    t->watch = NULL;
    close(t->fd);
    t->fd = -1;
    t->connecting = 0;
    loop_timer_disarm(t->timer);
}

/* Closes and schedules the next attempt; `fmt` says why, logged once per distinct reason. */
static void tcp_retry(source *s, int level, const char *why)
{
    tcp *t = s->impl;
    int was_connected = t->fd >= 0 && !t->connecting;
    if (was_connected)
        source_finish(s);
    tcp_close(t);
    source_status(s, METER_WAITING, level, "%s %s (%s); reconnecting",
                  was_connected ? "lost" : "cannot connect to", s->cfg.target, why);
    loop_timer_arm(t->retry, retry_delay(s));
}

/* Bytes but no telegram for detect_timeout (source_garbage): behind a dongle or ser2net that is
 * mostly a serial speed that does not match the meter's (binary-looking bytes), else noise. */
static void check_garbage(source *s)
{
    int pct = source_garbage(s, s->cfg.detect_timeout);
    if (pct < 0)
        return;
    if (pct >= 50)
        source_status(s, METER_CONNECTED, LOG_LEVEL_WARN,
                      "bytes arrive from %s but no telegram decodes (%d%% not text): is the "
                      "dongle's or ser2net's serial speed the meter's (115200 8N1, or 9600 7E1 "
                      "for DSMR 2.2/3.0)?",
                      s->cfg.target, pct);
    else
        source_status(s, METER_CONNECTED, LOG_LEVEL_WARN,
                      "text arrives from %s but no telegram decodes: the wrong serial speed at "
                      "the dongle or ser2net, or noise?",
                      s->cfg.target);
}

static void on_data(void *user, int fd, uint32_t events)
{
    source *s = user;
    tcp *t = s->impl;
    uint8_t buf[SOURCE_READ_MAX];
    if (t->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0 && (events & (EPOLLERR | EPOLLHUP)))
            err = ECONNREFUSED;
        if (err) {
            tcp_close(t);
            if (tcp_connect_next(s, &err) == 0)
                tcp_retry(s, LOG_LEVEL_WARN, strerror(err));
            return;
        }
        tcp_forget_addrs(t);
        t->connecting = 0;
        loop_watch_mod(t->watch, EPOLLIN);
        source_connected(s);
        source_undecoded_reset(s);
        t->got = 0;
        /* A peer that keeps closing at once is reported once (in tcp_retry), not per cycle. */
        if (t->empty) {
            s->m->state = METER_CONNECTED;
            log_debug("%s: connected to %s", s->m->name, s->cfg.target);
        } else {
            source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "connected to %s", s->cfg.target);
        }
        t->last_byte = loop_now_ms();
        loop_timer_arm(t->timer, SOURCE_QUIET_MS);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        t->last_byte = loop_now_ms();
        if (t->empty) {
            t->empty = 0;
            source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "connected to %s", s->cfg.target);
        }
        t->got += (uint64_t)n;
        source_feed(s, buf, (size_t)n);
        check_garbage(s);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n == 0 && t->got == 0 && ++t->empty >= 2) {
        tcp_retry(s, LOG_LEVEL_WARN,
                  "it closes every connection at once; is another client using it?");
        return;
    }
    if (t->got)
        t->empty = 0;
    tcp_retry(s, LOG_LEVEL_WARN, n == 0 ? "closed by the peer" : strerror(errno));
}

static void on_timer(void *user)
{
    source *s = user;
    tcp *t = s->impl;
    if (t->connecting) {
        int err = ETIMEDOUT;
        tcp_close(t);
        if (tcp_connect_next(s, &err) == 0)
            tcp_retry(s, LOG_LEVEL_WARN, err == ETIMEDOUT ? "connect timed out" : strerror(err));
        return;
    }
    /* The timer fires about once per quiet period rather than being pushed back on every read;
     * with a thousand meters that keeps the timer heap quiet. */
    int64_t idle = loop_now_ms() - t->last_byte;
    int64_t quiet = s->cfg.idle_timeout < SOURCE_QUIET_MS ? s->cfg.idle_timeout : SOURCE_QUIET_MS;
    if (idle >= s->cfg.idle_timeout) {
        char why[64];
        snprintf(why, sizeof why, "no data for %lld ms", (long long)s->cfg.idle_timeout);
        s->m->idle_reopens++;
        tcp_retry(s, LOG_LEVEL_WARN, why);
        return;
    }
    /* The quiet time completes telegrams that have no end line (DSMR 2.2). A dongle whose
     * telegrams end in "!CRC" can stall for seconds mid-telegram (WiFi retransmits) and then send
     * the rest: cutting it here would reject a good telegram. A telegram really cut off is
     * reported at the next header, at idle_timeout or when the connection drops. */
    if (idle >= quiet && !s->end_lines)
        source_finish(s);
    loop_timer_arm(t->timer, idle >= quiet ? s->cfg.idle_timeout - idle : quiet - idle);
}

static void on_retry(void *user)
{
    tcp_connect(user);
}

/* Starts connecting to the next address of the lookup's answer that takes a socket; *err is why
 * the address before failed (0 none), and is updated. Returns 1 when a connect is under way; 0
 * when none is left (the answer is freed; the caller reports *err and retries after the
 * backoff). */
static int tcp_connect_next(source *s, int *err)
{
    tcp *t = s->impl;
    for (struct addrinfo *ai = t->next_addr; ai; ai = ai->ai_next) {
        if (*err)
            log_debug("%s: cannot connect to an address of %s (%s); trying the next one",
                      s->m->name, s->cfg.target, strerror(*err));
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            *err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            *err = errno;
            close(fd);
            continue;
        }
        t->watch = loop_watch_add(s->l, fd, EPOLLOUT | EPOLLIN, on_data, s);
        if (!t->watch) {
            *err = errno;
            close(fd);
            continue;
        }
        t->fd = fd;
        t->connecting = 1;
        t->next_addr = ai->ai_next;
        loop_timer_arm(t->timer, s->cfg.connect_timeout);
        return 1;
    }
    tcp_forget_addrs(t);
    return 0;
}

/* Connects to the addresses of res in turn, given getaddrinfo()'s result g; takes res. */
static void tcp_connect_to(source *s, int g, struct addrinfo *res)
{
    tcp *t = s->impl;
    if (g != 0) {
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "cannot resolve %s (%s); retrying", t->host,
                      gai_strerror(g));
        loop_timer_arm(t->retry, retry_delay(s));
        return;
    }
    int err = 0;
    tcp_forget_addrs(t);
    t->addrs = t->next_addr = res;
    if (tcp_connect_next(s, &err))
        return;
    source_status(s, METER_WAITING, LOG_LEVEL_WARN, "cannot connect to %s (%s); reconnecting",
                  s->cfg.target, strerror(err ? err : EHOSTUNREACH));
    loop_timer_arm(t->retry, retry_delay(s));
}

static void on_lookup(void *user, int error, struct addrinfo *res)
{
    source *s = user;
    tcp *t = s->impl;
    t->lookup = NULL;
    tcp_connect_to(s, error, res);
}

static void tcp_connect(source *s)
{
    tcp *t = s->impl;
    struct addrinfo *res = NULL;
    int g = lookup_numeric(t->host, t->port, &res);
    if (g == EAI_NONAME) {
        t->lookup = lookup_start(s->l, t->host, t->port, on_lookup, s);
        if (t->lookup)
            return;
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "cannot look up %s (%s); retrying", t->host,
                      strerror(errno));
        loop_timer_arm(t->retry, retry_delay(s));
        return;
    }
    tcp_connect_to(s, g, res);
}

static int tcp_start(source *s)
{
    tcp *t = calloc(1, sizeof *t);
    unsigned port;
    if (!t)
        return -ENOMEM;
    s->impl = t;
    t->fd = -1;
    if (config_addr_split(s->cfg.target, t->host, sizeof t->host, &port) < 0)
        return -EINVAL;
    snprintf(t->port, sizeof t->port, "%u", port);
    t->retry = loop_timer_new(s->l, on_retry, s);
    t->timer = loop_timer_new(s->l, on_timer, s);
    if (!t->retry || !t->timer)
        return -ENOMEM;
    tcp_connect(s);
    return 0;
}

static void tcp_stop(source *s)
{
    tcp *t = s->impl;
    if (!t)
        return;
    tcp_close(t);
    tcp_forget_addrs(t);
    lookup_cancel(t->lookup);
    t->lookup = NULL;
    loop_timer_del(t->retry);
    loop_timer_del(t->timer);
    free(t);
    s->impl = NULL;
}

const source_ops source_tcp_ops = {tcp_start, tcp_stop, NULL};
