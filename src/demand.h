/* demand.h: Belgium's capacity tariff bills each month's highest quarter-hour average import
 * power. A forecast of the current quarter hour's average, from the meter's import register and
 * its import power now, tells in time whether the quarter heads for a new month peak (so the
 * car charger or the oven can wait). Pure: no I/O, no allocation. */
#ifndef P1D_DEMAND_H
#define P1D_DEMAND_H

#include <stdint.h>

#include "p1/reading.h"

#define DEMAND_QUARTER_S 900 /* the capacity tariff's averaging period */
#define DEMAND_GAP_S     60  /* the reading before a quarter's start may be this old */

/* One meter's quarter hour as followed reading by reading; zero it to start. */
typedef struct demand_track {
    int64_t q;      /* start of the quarter hour followed (unix s); 0 none */
    p1_micro e_q;   /* the import register at q (kWh, micro), interpolated */
    int ok;         /* e_q is known: a reading came at most DEMAND_GAP_S before q */
    int64_t t_prev; /* the previous reading's time (0 none) and import register */
    p1_micro e_prev;
} demand_track;

/* Feeds the reading at t (unix s, the meter's clock) with import register e (kWh, micro) and
 * import power p (kW, micro). Returns the forecast of the quarter hour that holds t: its average
 * import power (kW, micro) if p lasts to its end, that is 4 x (the energy imported since the
 * quarter began + p x the time left); *end gets the quarter's end. P1_ABSENT when it cannot be
 * known: e or p absent, no reading shortly before the quarter began (p1d started in it, the
 * meter was quiet), a clock or register that went back. */
p1_micro demand_feed(demand_track *d, int64_t t, p1_micro e, p1_micro p, int64_t *end);

#endif
