/* store_live.c: the store on p1d's loop: a meters hook queues readings, a timer commits them
 * in one transaction per second, and a slower timer applies retention. */
#define _GNU_SOURCE
#include "store_live.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct store_live {
    store *s;
    loop *l;
    meters *ms;
    loop_timer *commit, *maintain;
    int failing; /* logged once per outage */
};

static void on_reading(void *user, meter *m, const meter_sample *smp, const uint8_t *raw,
                       size_t raw_len)
{
    store_live *sl = user;
    (void)raw;
    (void)raw_len;
    int rc = store_add(sl->s, m->name, &smp->reading, smp->received_ms);
    if (rc < 0)
        log_warn("%s: store: cannot queue a reading: %s; ignoring it", m->name, strerror(-rc));
}

static void on_commit(void *user)
{
    store_live *sl = user;
    int rc = store_commit(sl->s);
    if (rc < 0) {
        if (!sl->failing) {
            char why[STORE_ERR_MAX];
            store_healthy(sl->s, why, sizeof why);
            log_error("%s; live data keeps flowing, readings are kept in memory", why);
        }
        sl->failing = 1;
        loop_timer_arm(sl->commit, STORE_LIVE_RETRY_MS);
        return;
    }
    if (sl->failing) {
        store_stats st;
        store_get_stats(sl->s, &st);
        log_info("store: writing again; %llu readings were dropped during the outage",
                 (unsigned long long)st.dropped);
        sl->failing = 0;
    }
    loop_timer_arm(sl->commit, STORE_LIVE_COMMIT_MS);
}

static void on_maintain(void *user)
{
    store_live *sl = user;
    int rc = 0;
    if (!sl->failing) {
        rc = store_maintain(sl->s);
        if (rc < 0)
            log_warn("store: retention/checkpoint failed: %s; retrying later", strerror(-rc));
    }
    /* a backlog (a lowered keep, a meter back after months) goes in slices a second apart */
    loop_timer_arm(sl->maintain, rc > 0 ? STORE_LIVE_MAINTAIN_AGAIN_MS : STORE_LIVE_MAINTAIN_MS);
}

store_live *store_live_new(store *s, loop *l, meters *ms)
{
    store_live *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    sl->s = s;
    sl->l = l;
    sl->ms = ms;
    sl->commit = loop_timer_new(l, on_commit, sl);
    sl->maintain = loop_timer_new(l, on_maintain, sl);
    int rc = sl->commit && sl->maintain ? meters_hook(ms, on_reading, sl) : -ENOMEM;
    if (rc < 0) {
        loop_timer_del(sl->commit);
        loop_timer_del(sl->maintain);
        free(sl);
        errno = -rc;
        return NULL;
    }
    loop_timer_arm(sl->commit, STORE_LIVE_COMMIT_MS);
    loop_timer_arm(sl->maintain, 5000);
    return sl;
}

void store_live_free(store_live *sl)
{
    if (!sl)
        return;
    meters_unhook(sl->ms, on_reading, sl);
    loop_timer_del(sl->commit);
    loop_timer_del(sl->maintain);
    int rc = store_commit(sl->s);
    if (rc < 0)
        log_error("store: the last %zu readings could not be written: %s", store_pending(sl->s),
                  strerror(-rc));
    free(sl);
}

int store_live_health(void *user, char *why, size_t cap)
{
    return store_healthy(user, why, cap);
}
