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
    ss->tick = loop_timer_new(s->l, on_tick, s);
    if (!ss->tick)
        return -ENOMEM;
    ss->period = (int64_t)o.interval * 1000 / s->cfg.speedup;
    if (ss->period < 1)
        ss->period = 1;
    ss->next = loop_now_ms();
    source_connected(s);
    source_status(s, METER_CONNECTED, LOG_LEVEL_INFO,
                  "simulated meter (seed %lld, one telegram every %lld ms)",
                  (long long)s->cfg.seed, (long long)ss->period);
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
