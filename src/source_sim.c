/* source_sim.c: the built-in simulated DSMR 5 meter, one telegram per interval in real time (or
 * `speedup` times faster), fed through libp1 like any other line. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim.h"
#include "source_impl.h"

typedef struct sim_src {
    sim sim;
    loop_timer *tick;
    int64_t next;    /* monotonic ms of the next telegram: no drift from callback latency */
    int64_t period;  /* wall ms between telegrams */
    char out[SIM_OUT_MAX];
} sim_src;

static void on_tick(void *user)
{
    source *s = user;
    sim_src *ss = s->impl;
    size_t n = sim_next(&ss->sim, ss->out, sizeof ss->out);
    source_feed(s, (const uint8_t *)ss->out, n);
    int64_t now = loop_now_ms();
    ss->next += ss->period;
    if (ss->next < now - ss->period)
        ss->next = now; /* the loop was stalled: skip ahead instead of bursting */
    loop_timer_arm(ss->tick, ss->next - now);
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
    ss->period = (int64_t)o.interval * 1000 / s->cfg.speedup;
    if (ss->period < 1)
        ss->period = 1;
    ss->next = loop_now_ms();
    source_connected(s);
    source_status(s, METER_CONNECTED, LOG_LEVEL_INFO,
                  "simulated meter (seed %lld, one telegram every %lld ms)%s",
                  (long long)s->cfg.seed, (long long)ss->period,
                  resumed ? ", continuing from the registers it showed last" : "");
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
