/* notify.c: sd_notify messages and the watchdog keep-alive, driven by the event loop so a stuck
 * loop stops the keep-alives and systemd restarts the daemon. */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_STATUS_MS 10000 /* how often STATUS= is refreshed */
#define NOTIFY_MSG_MAX   256   /* longest state datagram we send */

struct notify {
    loop *l;
    const meters *ms;
    loop_timer *watchdog;
    loop_timer *status;
    int64_t watchdog_ms; /* keep-alive period: half of WATCHDOG_USEC; 0 = no watchdog */
};

/* The sd_notify protocol (systemd's sd_notify(3), "NOTIFY_SOCKET") is one datagram of
 * newline-separated assignments to the AF_UNIX socket named in $NOTIFY_SOCKET; written here
 * rather than linking libsystemd, whose load-time cost (it and its compression and crypto
 * libraries) was a tenth of p1d's memory for these few sendto() calls. A fresh socket per
 * message, as libsystemd does, so nothing is left open across fork/exec or a socket change. */
static void send_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return;
    size_t plen = strlen(path);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    /* Only absolute paths and '@' (the Linux abstract namespace) are valid; others are ignored. */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, plen);
    socklen_t salen;
    if (path[0] == '@') {
        sa.sun_path[0] = '\0'; /* abstract: the length counts the name, no terminating NUL */
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    } else {
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* Best effort, like sd_notify: a full or vanished socket must never stall the loop. */
    ssize_t r;
    do
        r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
                   salen);
    while (r < 0 && errno == EINTR);
    close(fd);
}

/* sd_watchdog_enabled() semantics: WATCHDOG_USEC is a positive decimal; WATCHDOG_PID, when
 * set, must be our pid (the watchdog was meant for a parent or child otherwise). */
static uint64_t watchdog_usec(void)
{
    const char *s = getenv("WATCHDOG_USEC");
    if (!s || !s[0])
        return 0;
    char *end;
    errno = 0;
    unsigned long long usec = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || usec == 0)
        return 0;
    const char *p = getenv("WATCHDOG_PID");
    if (p && p[0]) {
        errno = 0;
        unsigned long long pid = strtoull(p, &end, 10);
        if (errno || *end || p[0] == '-' || pid != (unsigned long long)getpid())
            return 0;
    }
    return usec;
}

static void send_status(notify *n)
{
    size_t receiving = 0;
    uint64_t telegrams = 0;
    for (size_t i = 0; i < n->ms->n; i++) {
        receiving += n->ms->list[i]->state == METER_RECEIVING;
        telegrams += n->ms->list[i]->telegrams;
    }
    char msg[NOTIFY_MSG_MAX];
    snprintf(msg, sizeof msg, "STATUS=%zu meters, %zu receiving, %" PRIu64 " telegrams", n->ms->n,
             receiving, telegrams);
    send_msg(msg);
}

static void on_watchdog(void *user)
{
    notify *n = user;
    send_msg("WATCHDOG=1");
    loop_timer_arm(n->watchdog, n->watchdog_ms);
}

static void on_status(void *user)
{
    notify *n = user;
    send_status(n);
    loop_timer_arm(n->status, NOTIFY_STATUS_MS);
}

notify *notify_new(loop *l, const meters *ms)
{
    notify *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->l = l;
    n->ms = ms;
    uint64_t usec = watchdog_usec();
    if (usec > 0) {
        n->watchdog_ms = (int64_t)(usec / 2000);
        if (n->watchdog_ms < 1)
            n->watchdog_ms = 1;
        n->watchdog = loop_timer_new(l, on_watchdog, n);
        if (!n->watchdog) {
            free(n);
            return NULL;
        }
        loop_timer_arm(n->watchdog, n->watchdog_ms);
    }
    if (getenv("NOTIFY_SOCKET")) {
        n->status = loop_timer_new(l, on_status, n);
        if (n->status)
            loop_timer_arm(n->status, NOTIFY_STATUS_MS);
    }
    return n;
}

void notify_free(notify *n)
{
    if (!n)
        return;
    loop_timer_del(n->watchdog);
    loop_timer_del(n->status);
    free(n);
}

void notify_ready(notify *n)
{
    send_msg("READY=1");
    send_status(n);
}

void notify_reloading(notify *n, int done)
{
    if (done) {
        send_msg("READY=1");
        send_status(n);
        return;
    }
    /* Type=notify-reload wants the CLOCK_MONOTONIC time of the reload's start alongside. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[NOTIFY_MSG_MAX];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    send_msg(msg);
}

void notify_stopping(notify *n)
{
    (void)n;
    send_msg("STOPPING=1");
}
