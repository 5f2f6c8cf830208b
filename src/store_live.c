/* store_live.c: the store on p1d's loop: a meters hook queues readings, a timer commits them
 * in one transaction per second, and a slower timer applies retention. */
#define _GNU_SOURCE
#include "store_live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct store_live {
    store *s;
    loop *l;
    meters *ms;
    loop_timer *commit, *maintain;
    int failing;       /* logged once per outage */
    int busy_retry_ms; /* the next retry's delay while another program holds the lock */
    int synced;        /* loop_wall_synced() as last read */
    int64_t synced_at; /* loop_now_ms() of that read; 0 never */
};

#define STORE_LIVE_SYNC_MS 1000 /* the kernel's clock state is read at most this often */

/* The system clock's sync state for the store, read once a second at most; a kernel (or seccomp
 * filter) that will not tell leaves clock=auto as it was before it knew: ours is trusted. */
static void sync_state(store_live *sl)
{
    int64_t now = loop_now_ms();
    if (sl->synced_at && now - sl->synced_at < STORE_LIVE_SYNC_MS)
        return;
    int was = sl->synced_at ? sl->synced : 1;
    sl->synced = loop_wall_synced();
    sl->synced_at = now;
    if (sl->synced < 0 && was >= 0)
        log_info("store: cannot read the system clock's sync state (adjtimex: %s); clock=auto "
                 "trusts the system clock", strerror(-sl->synced));
    store_system_synced(sl->s, sl->synced != 0);
}

/* How far the meter's clock is off (meter minus system, s), as a person reads it: "5.2 years
 * behind", "12 minutes ahead". */
static void clock_offset_words(int64_t off, char *buf, size_t cap)
{
    double a = off < 0 ? -(double)off : (double)off;
    const char *dir = off < 0 ? "behind" : "ahead";
    if (a < 120)
        snprintf(buf, cap, "%.0f seconds %s", a, dir);
    else if (a < 7200)
        snprintf(buf, cap, "%.0f minutes %s", a / 60, dir);
    else if (a < 2 * 86400)
        snprintf(buf, cap, "%.1f hours %s", a / 3600, dir);
    else if (a < 90 * 86400)
        snprintf(buf, cap, "%.1f days %s", a / 86400, dir);
    else
        snprintf(buf, cap, "%.1f years %s", a / (365.25 * 86400), dir);
}

/* Keeps the meter's clock fields for the API and says when clock=auto changes clocks: judged by
 * readings with a valid meter time only, so a meter that mixes in placeholder times is quiet. */
static void clock_report(store_live *sl, meter *m)
{
    store_clock_state cs;
    store_last_clock(sl->s, &cs);
    if (cs.used == STORE_CLOCK_AUTO)
        return;
    m->clock_used = cs.used == STORE_CLOCK_METER ? 1 : 2;
    m->clock_synced = (int8_t)(sl->synced < 0 ? -1 : sl->synced);
    m->clock_has_offset = (uint8_t)cs.has_offset;
    m->clock_offset_s = cs.offset_s;
    if (cs.policy != STORE_CLOCK_AUTO || !cs.has_offset)
        return;
    /* 3: the meter's clock only because ours is unsynchronised and behind it */
    uint8_t st = m->clock_used == 1 && cs.unsynced && cs.offset_s > STORE_CLOCK_TOLERANCE
                     ? 3
                     : m->clock_used;
    uint8_t was = m->clock_logged;
    m->clock_logged = st;
    if (st == was || (!was && st == 1))
        return;
    if (st == 3)
        log_warn("%s: the system clock is not synchronised and %lld s behind the meter's: "
                 "history uses the meter's clock", m->name, (long long)cs.offset_s);
    else if (st == 1 && was == 3)
        log_info("%s: the system clock is %s now, %lld s off the meter's: history keeps the "
                 "meter's clock", m->name, cs.unsynced ? "still unsynchronised but set" :
                 "synchronised", (long long)-cs.offset_s);
    else if (st == 1)
        log_info("%s: history uses the meter's clock again", m->name);
    else {
        char words[48];
        clock_offset_words(cs.offset_s, words, sizeof words);
        log_warn("%s: the meter's clock is %lld s off the system's (%s): history uses the "
                 "system clock",
                 m->name, (long long)cs.offset_s, words);
    }
}

static void on_reading(void *user, meter *m, const meter_sample *smp, const uint8_t *raw,
                       size_t raw_len)
{
    store_live *sl = user;
    (void)raw;
    (void)raw_len;
    sync_state(sl);
    int rc = store_add(sl->s, m->name, &smp->reading, smp->received_ms);
    if (rc < 0)
        log_warn("%s: store: cannot queue a reading: %s; ignoring it", m->name, strerror(-rc));
    else
        clock_report(sl, m);
    m->store_backlog = store_queued(sl->s, m->name);
    if (m->store_backlog >= STORE_LIVE_BATCH && !sl->failing)
        loop_timer_arm(sl->commit, 0);
}

/* A meter p1d no longer reads: the store keeps its rows, not its per-meter memory. */
static void on_gone(void *user, meter *m)
{
    store_live *sl = user;
    store_forget(sl->s, m->name);
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
        /* A lock is mostly held for a moment (a query in a database browser): retry after 1 s,
         * then less often, so that a lock left held costs the loop its short wait every 5 s
         * only. A full or broken disk does not clear that soon. */
        int delay = STORE_LIVE_RETRY_MS;
        if (rc == -EBUSY) {
            delay = sl->busy_retry_ms ? sl->busy_retry_ms : STORE_LIVE_COMMIT_MS;
            sl->busy_retry_ms = delay * 2 < STORE_LIVE_RETRY_MS ? delay * 2 : STORE_LIVE_RETRY_MS;
        }
        loop_timer_arm(sl->commit, delay);
        return;
    }
    sl->busy_retry_ms = 0;
    size_t pending = store_pending(sl->s); /* 0 after a whole commit: no search per meter */
    for (size_t i = 0; i < sl->ms->n; i++)
        sl->ms->list[i]->store_backlog = pending ? store_queued(sl->s, sl->ms->list[i]->name) : 0;
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
    if (rc == 0 && (rc = meters_hook_gone(ms, on_gone, sl)) < 0)
        meters_unhook(ms, on_reading, sl);
    if (rc < 0) {
        loop_timer_del(sl->commit);
        loop_timer_del(sl->maintain);
        free(sl);
        errno = -rc;
        return NULL;
    }
    /* Everything p1d does with the store runs on its one loop: a write lock another program
     * holds (a transaction left open in sqlite3 or a database browser) would stop serial input,
     * HTTP and the publishers for the whole busy timeout, again at each retry. So the loop waits
     * briefly; a commit that cannot have the lock keeps its readings queued (store_healthy()). */
    store_busy_wait(s, STORE_LIVE_BUSY_MS);
    loop_timer_arm(sl->commit, STORE_LIVE_COMMIT_MS);
    loop_timer_arm(sl->maintain, 5000);
    return sl;
}

int store_live_free(store_live *sl)
{
    if (!sl)
        return 0;
    meters_unhook(sl->ms, on_reading, sl);
    meters_unhook_gone(sl->ms, on_gone, sl);
    loop_timer_del(sl->commit);
    loop_timer_del(sl->maintain);
    /* the last commit: waiting no longer holds anything up */
    store_busy_wait(sl->s, STORE_BUSY_MS);
    int rc = store_commit(sl->s);
    if (rc < 0) {
        size_t n = store_pending(sl->s);
        log_error("store: the last %zu reading%s could not be written: %s", n, n == 1 ? "" : "s",
                  strerror(-rc));
    }
    free(sl);
    return rc < 0 ? -1 : 0;
}

int store_live_health(void *user, char *why, size_t cap)
{
    return store_healthy(user, why, cap);
}
