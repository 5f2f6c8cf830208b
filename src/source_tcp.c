/* source_tcp.c: a TCP client for network P1 dongles and ser2net raw ports: non-blocking connect
 * with timeout, idle detection, and reconnecting with backoff. */
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
#include "source_impl.h"

typedef struct tcp {
    int fd;
    int connecting;
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
    loop_timer_arm(t->retry, source_backoff(s));
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
            tcp_retry(s, LOG_LEVEL_WARN, strerror(err));
            return;
        }
        t->connecting = 0;
        loop_watch_mod(t->watch, EPOLLIN);
        source_connected(s);
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
        tcp_retry(s, LOG_LEVEL_WARN, "connect timed out");
        return;
    }
    /* The timer fires about once per quiet period rather than being pushed back on every read;
     * with a thousand meters that keeps the timer heap quiet. */
    int64_t idle = loop_now_ms() - t->last_byte;
    int64_t quiet = s->cfg.idle_timeout < SOURCE_QUIET_MS ? s->cfg.idle_timeout : SOURCE_QUIET_MS;
    if (idle >= s->cfg.idle_timeout) {
        char why[64];
        snprintf(why, sizeof why, "no data for %lld ms", (long long)s->cfg.idle_timeout);
        tcp_retry(s, LOG_LEVEL_WARN, why);
        return;
    }
    if (idle >= quiet)
        source_finish(s);
    loop_timer_arm(t->timer, idle >= quiet ? s->cfg.idle_timeout - idle : quiet - idle);
}

static void on_retry(void *user)
{
    tcp_connect(user);
}

static void tcp_connect(source *s)
{
    tcp *t = s->impl;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* Synchronous: instant for numeric addresses; a host name costs one resolver round trip per
     * (re)connect, which the docs point out. */
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g != 0) {
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "cannot resolve %s (%s); retrying",
                      t->host, gai_strerror(g));
        loop_timer_arm(t->retry, source_backoff(s));
        return;
    }
    int err = EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        t->watch = loop_watch_add(s->l, fd, EPOLLOUT | EPOLLIN, on_data, s);
        if (!t->watch) {
            err = errno;
            close(fd);
            continue;
        }
        t->fd = fd;
        t->connecting = 1;
        loop_timer_arm(t->timer, s->cfg.connect_timeout);
        freeaddrinfo(res);
        return;
    }
    freeaddrinfo(res);
    source_status(s, METER_WAITING, LOG_LEVEL_WARN, "cannot connect to %s (%s); reconnecting",
                  s->cfg.target, strerror(err));
    loop_timer_arm(t->retry, source_backoff(s));
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
    loop_timer_del(t->retry);
    loop_timer_del(t->timer);
    free(t);
    s->impl = NULL;
}

const source_ops source_tcp_ops = {tcp_start, tcp_stop, NULL};
