/* demand.c: the forecast of the current quarter hour's average import power (demand.h). */
#include "demand.h"

p1_micro demand_feed(demand_track *d, int64_t t, p1_micro e, p1_micro p, int64_t *end)
{
    *end = 0;
    if (e == P1_ABSENT || p == P1_ABSENT || e < 0 || p < 0) {
        *d = (demand_track){0};
        return P1_ABSENT;
    }
    if (d->t_prev && (t < d->t_prev || e < d->e_prev))
        *d = (demand_track){0}; /* the clock or the register went back: start over */
    int64_t q = t - ((t % DEMAND_QUARTER_S) + DEMAND_QUARTER_S) % DEMAND_QUARTER_S;
    if (q != d->q) {
        d->q = q;
        d->ok = 0;
        if (t == q) {
            d->e_q = e;
            d->ok = 1;
        } else if (d->t_prev && d->t_prev <= q && q - d->t_prev <= DEMAND_GAP_S) {
            /* the register at q, between the readings on either side of it */
            d->e_q = d->e_prev + (e - d->e_prev) * (q - d->t_prev) / (t - d->t_prev);
            d->ok = 1;
        }
    }
    d->t_prev = t;
    d->e_prev = e;
    if (!d->ok)
        return P1_ABSENT;
    *end = q + DEMAND_QUARTER_S;
    return 4 * (e - d->e_q) + p * (q + DEMAND_QUARTER_S - t) / DEMAND_QUARTER_S;
}
