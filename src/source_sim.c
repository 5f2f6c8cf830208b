/* source_sim.c: the built-in simulated DSMR 5 meter, one telegram per interval in real time (or
 * `speedup` times faster), fed through libp1 like any other line. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim.h"
#include "source_impl.h"

#define SIM_SRC_BURST 100 /* telegrams at most per timer tick: speedup 100000 at 1 s */

typedef struct sim_src {
    sim sim;
    loop_timer *tick;
    /* Telegram k is due at t0 + k * span / speedup ms (monotonic): computed from the start, not
     * added up per telegram, so a period that is no whole number of ms (speedup=60: 16.7 ms)
     * keeps the rate asked for, and a period under 1 ms sends several telegrams a tick. */
    int64_t t0;
    int64_t sent; /* telegrams sent since t0 */
    int64_t span; /* simulated ms between telegrams (the interval) */
    int64_t speedup;
    char out[SIM_OUT_MAX];
} sim_src;

/* How many telegrams are due by monotonic ms now (telegrams 0 .. result-1). */
static int64_t sim_due(const sim_src *ss, int64_t now)
{
    return now < ss->t0 ? 0 : (now - ss->t0) * ss->speedup / ss->span + 1;
}

static void on_tick(void *user)
{
    source *s = user;
    sim_src *ss = s->impl;
    int64_t now = loop_now_ms();
    for (int n = 0; n < SIM_SRC_BURST && ss->sent < sim_due(ss, now); n++) {
        size_t len = sim_next(&ss->sim, ss->out, sizeof ss->out);
        source_feed(s, (const uint8_t *)ss->out, len);
        ss->sent++;
    }
    /* Still more behind than a millisecond's telegrams (one, below speedup 1000) after this
     * tick's burst of at most SIM_SRC_BURST: the loop was stalled, or p1d cannot keep up; skip
     * ahead rather than send the rest at once. */
    now = loop_now_ms();
    int64_t per_ms = (ss->speedup + ss->span - 1) / ss->span;
    if (sim_due(ss, now) - ss->sent > per_ms) {
        ss->t0 = now;
        ss->sent = 0;
    }
    /* the first ms at which telegram `sent` is due: ceil(sent * span / speedup) after t0 */
    int64_t at = ss->t0 + (ss->sent * ss->span + ss->speedup - 1) / ss->speedup;
    loop_timer_arm(ss->tick, at > now ? at - now : 0);
}

/* p1_micro kWh or m3 -> whole Wh or litres; 0 when absent. */
static int64_t milli(p1_micro v)
{
    return v == P1_ABSENT || v < 0 ? 0 : v / 1000;
}

/* The registers a reading shows, in what the simulator counts. */
static void registers_of(const p1_reading *r, sim_registers *out)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < 2; k++) {
        out->import_wh[k] = milli(r->import[k + 1]);
        out->export_wh[k] = milli(r->export_[k + 1]);
    }
    int g = p1_reading_mbus_find(r, P1_MEDIUM_GAS);
    if (g >= 0)
        out->gas_l = milli(p1_mbus_m3(&r->mbus[g]));
    for (int i = 0; i < 3; i++) {
        out->sags[i] = r->phase[i].sags;
        out->swells[i] = r->phase[i].swells;
    }
}

/* A real meter never steps back: when the meter's last known equipment id is this simulator's,
 * it continues from what the history store holds of it and from the meter's latest reading (a
 * reload restarting the source), wherever those are higher than its own start. Returns how many
 * registers that raised. */
static int resume(source *s, sim *sm)
{
    if (strcmp(s->m->equipment_id, sm->meter_id) != 0)
        return 0;
    const meter_sample *ls = meter_latest(s->m);
    int raised = s->stored ? sim_resume(sm, s->stored) : 0;
    if (ls) {
        sim_registers r;
        registers_of(&ls->reading, &r);
        raised += sim_resume(sm, &r);
    }
    return raised;
}

static int sim_src_start(source *s)
{
    sim_src *ss = calloc(1, sizeof *ss);
    if (!ss)
        return -ENOMEM;
    s->impl = ss;
    sim_options o;
    sim_options_default(&o);
    o.seed = (uint64_t)s->cfg.seed;
    o.interval = (uint32_t)(s->cfg.interval / 1000);
    if (o.interval == 0)
        o.interval = 1;
    o.start = loop_wall_ms() / 1000;
    if (o.start < SIM_START_MIN || o.start > SIM_START_MAX)
        o.start = SIM_START_MIN;
    if (sim_init(&ss->sim, &o) < 0)
        return -EINVAL;
    int resumed = resume(s, &ss->sim);
    ss->tick = loop_timer_new(s->l, on_tick, s);
    if (!ss->tick)
        return -ENOMEM;
    ss->span = (int64_t)o.interval * 1000;
    ss->speedup = s->cfg.speedup > 0 ? s->cfg.speedup : 1;
    ss->t0 = loop_now_ms();
    int64_t us = ss->span * 1000 / ss->speedup; /* the period, shown to the microsecond */
    char period[32];
    if (us % 1000)
        snprintf(period, sizeof period, "%lld.%03lld", (long long)(us / 1000),
                 (long long)(us % 1000));
    else
        snprintf(period, sizeof period, "%lld", (long long)(us / 1000));
    source_connected(s);
    source_status(s, METER_CONNECTED, LOG_LEVEL_INFO,
                  "simulated meter (seed %lld, one telegram every %s ms)%s", (long long)s->cfg.seed,
                  period, resumed ? ", continuing from the registers it showed last" : "");
    loop_timer_arm(ss->tick, 0);
    return 0;
}

static void sim_src_stop(source *s)
{
    sim_src *ss = s->impl;
    if (!ss)
        return;
    loop_timer_del(ss->tick);
    free(ss);
    s->impl = NULL;
}

const source_ops source_sim_ops = {sim_src_start, sim_src_stop, NULL};
