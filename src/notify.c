/* notify.c: sd_notify messages and the watchdog keep-alive, driven by the event loop so a stuck
 * loop stops the keep-alives and systemd restarts the daemon. */
#define _GNU_SOURCE
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#define NOTIFY_STATUS_MS 10000 /* how often STATUS= is refreshed */

struct notify {
    loop *l;
    const meters *ms;
    loop_timer *watchdog;
    loop_timer *status;
    int64_t watchdog_ms; /* keep-alive period: half of WATCHDOG_USEC; 0 = no watchdog */
};

static void send_status(notify *n)
{
    size_t receiving = 0;
    uint64_t telegrams = 0;
    for (size_t i = 0; i < n->ms->n; i++) {
        receiving += n->ms->list[i]->state == METER_RECEIVING;
        telegrams += n->ms->list[i]->telegrams;
    }
    sd_notifyf(0, "STATUS=%zu meters, %zu receiving, %llu telegrams", n->ms->n, receiving,
               (unsigned long long)telegrams);
}

static void on_watchdog(void *user)
{
    notify *n = user;
    sd_notify(0, "WATCHDOG=1");
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
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
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
    sd_notify(0, "READY=1");
    send_status(n);
}

void notify_reloading(notify *n, int done)
{
    sd_notify(0, done ? "READY=1" : "RELOADING=1");
    if (done)
        send_status(n);
}

void notify_stopping(notify *n)
{
    (void)n;
    sd_notify(0, "STOPPING=1");
}
