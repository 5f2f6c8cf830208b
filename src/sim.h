/* sim.h: a deterministic simulated DSMR 5.0 meter (three-phase household with gas and solar). */
#ifndef P1D_SIM_H
#define P1D_SIM_H

#include <stddef.h>
#include <stdint.h>

/* Every buffer handed to sim_next() must hold SIM_OUT_MAX bytes: one telegram (at most
 * SIM_TELEGRAM_MAX) plus up to SIM_GARBAGE_MAX bytes of injected line noise. */
#define SIM_TELEGRAM_MAX 1792
#define SIM_GARBAGE_MAX  48
#define SIM_OUT_MAX      (SIM_TELEGRAM_MAX + SIM_GARBAGE_MAX)
#define SIM_ID_MAX       32       /* ASCII characters of an equipment id (sent hex-encoded) */
#define SIM_RATE_ONE     1000000u /* fault rates: per-telegram probability in parts per million */
#define SIM_INTERVAL_MAX 86400    /* seconds */
#define SIM_START_MIN    946684800LL  /* 2000-01-01T00:00:00Z: the meter prints two-digit years */
#define SIM_START_MAX    4102444800LL /* 2100-01-01T00:00:00Z */

/* Fault bits reported in sim.last_faults. */
enum {
    SIM_FAULT_CRC = 1 << 0,      /* one CRC digit was changed */
    SIM_FAULT_TRUNCATE = 1 << 1, /* the telegram was cut in the middle of a line */
    SIM_FAULT_GARBAGE = 1 << 2,  /* noise bytes (0xFF and others, never '/') precede the '/' */
};

/* Options of one simulated meter. Fill with sim_options_default() and change what you need. */
typedef struct sim_options {
    uint64_t seed;        /* everything (ids, counters, weather, appliances) follows from it */
    int64_t start;        /* unix seconds of the first telegram, SIM_START_MIN..SIM_START_MAX */
    uint32_t interval;    /* simulated seconds between telegrams, 1..SIM_INTERVAL_MAX */
    const char *meter_id; /* printable ASCII equipment id, NULL = derived from the seed */
    uint32_t fault_crc;   /* per-telegram probability of a wrong CRC, 0..SIM_RATE_ONE */
    uint32_t fault_truncate;
    uint32_t fault_garbage;
    uint8_t phases; /* 1 or 3 */
    uint8_t gas;    /* 1: an M-Bus gas meter on channel 1 */
    uint8_t solar;  /* 1: solar panels on L1 */
} sim_options;

/* What a meter showed last, for a simulated meter that continues from it (sim_resume): whole Wh
 * and litres as the telegram prints them, counts; 0 (or less) = not known. Plain data. */
typedef struct sim_registers {
    int64_t import_wh[2]; /* 1-0:1.8.1, 1-0:1.8.2 */
    int64_t export_wh[2]; /* 1-0:2.8.1, 1-0:2.8.2 */
    int64_t gas_l;        /* 0-1:24.2.1 */
    int64_t sags[3];      /* 1-0:32.32.0, 52.32.0, 72.32.0 */
    int64_t swells[3];    /* 1-0:32.36.0, 52.36.0, 72.36.0 */
} sim_registers;

/* Broken-down meter-local time (CET/CEST by the EU summer-time rule). */
typedef struct sim_tm {
    int year, month, day, hour, minute, second;
    int weekday; /* 0 = Sunday .. 6 = Saturday */
    int yday;    /* 0-based day of the year */
    int dst;     /* 1 = summer time ('S', UTC+2), 0 = winter time ('W', UTC+1) */
} sim_tm;

/* What the meter measured for the last telegram; whole watts, decivolts, litres. */
typedef struct sim_sample {
    int64_t time;          /* unix seconds */
    int tariff;            /* 1 = low, 2 = normal */
    int32_t load_w;        /* household consumption, all phases */
    int32_t solar_w;       /* solar production */
    int32_t import_w;      /* 1-0:1.7.0 */
    int32_t export_w;      /* 1-0:2.7.0 */
    int32_t phase_w[3];    /* net power per phase, positive = import */
    int32_t voltage_dv[3]; /* 2301 = 230.1 V */
    int32_t current_a[3];
    int32_t gas_lph; /* gas flow in litres per hour */
} sim_sample;

/* One simulated meter. Caller-allocated (a few hundred bytes), plain data: copy it to fork the
 * stream. Fields are private except last and last_faults, which describe the last telegram. */
typedef struct sim {
    sim_options opt; /* opt.meter_id points into meter_id below */
    char meter_id[SIM_ID_MAX + 1];
    char gas_id[SIM_ID_MAX + 1];
    int64_t t;           /* unix seconds of the next telegram */
    uint64_t rng;        /* measurement noise */
    uint64_t frng;       /* fault decisions, separate so that faults leave the physics alone */
    int64_t import_j[2]; /* energy registers in joules (W*s), tariff 1 and 2: exact, no drift */
    int64_t export_j[2];
    int64_t gas_acc;     /* gas register in millilitre-seconds per hour (mL*s/h) */
    int64_t gas_shown_l; /* the gas value of the last 5-minute capture, litres */
    int64_t gas_capture; /* unix seconds of that capture */
    uint32_t failures, long_failures;
    int64_t failure_end[2];
    uint32_t failure_s[2];
    uint32_t sags[3], swells[3];
    int32_t fridge_period, fridge_phase;
    uint64_t telegrams;   /* telegrams produced */
    unsigned last_faults; /* SIM_FAULT_* bits of the last sim_next() */
    sim_sample last;
} sim;

/* Fills o with the defaults: seed 1, start 2024-01-01T00:00:00Z, interval 1 s, three phases,
 * gas and solar on, no faults, id derived from the seed. */
void sim_options_default(sim_options *o);

/* Initialises s from o (NULL = defaults; the meter id is copied). Returns 0, or -EINVAL when an
 * option is out of range (phases, interval, start, rates, id length or characters). The energy
 * and gas registers start at a seed-dependent value plus an average use since 2015, so a later
 * start usually shows higher registers; within one sim they never decrease (and sim_resume
 * continues from what an earlier run showed). */
int sim_init(sim *s, const sim_options *o);

/* Raises every register of s to at least what r says the meter showed last, as a real meter
 * that was off for a while continues where it stopped: never lower than before (a history store
 * would see a counter reset). Call after sim_init(), before the first sim_next(). Returns how
 * many registers it raised. Pure. */
int sim_resume(sim *s, const sim_registers *r);

/* Writes the next telegram (with any injected fault) into out[cap] and advances the simulated
 * clock by the interval. Returns the byte count (no NUL is added), or 0 when cap < SIM_OUT_MAX
 * (nothing written, state unchanged). Pure: no I/O, no clock, no globals. */
size_t sim_next(sim *s, char *out, size_t cap);

/* Unix seconds of the telegram the next sim_next() call writes. */
int64_t sim_time(const sim *s);

/* Converts unix seconds to the meter's local time (CET/CEST, EU rule: summer time from the last
 * Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC). Pure arithmetic. */
void sim_local_time(int64_t t, sim_tm *out);

/* Unix seconds of a meter-local time with its DST letter (1 'S', 0 'W'), or dst -1 to let the EU
 * rule decide (the repeated autumn hour resolves to its first, summer-time, pass). Pure. */
int64_t sim_unix_time(int year, int month, int day, int hour, int minute, int second, int dst);

#endif
