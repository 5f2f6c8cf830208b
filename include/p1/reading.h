/* reading.h: the named facts of one telegram (energy, power, phases, gas, ...), built from objects. */
#ifndef P1_READING_H
#define P1_READING_H

#include "p1.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Quantities are int64 fixed-point with 6 decimals ("micro") in a canonical unit: kWh, kW, V, A,
 * kvarh, kvar, kVA, Hz, m3, GJ, s. Meter units are normalised (Wh and MWh -> kWh, W and MW -> kW,
 * kV -> V, mA -> A, dm3 and l -> m3, MJ -> GJ, ...; see p1_value_fixed()).
 * P1_ABSENT marks a quantity the telegram did not carry. */
typedef int64_t p1_micro;
#define P1_ABSENT INT64_MIN
#define P1_MICRO 1000000
/* Every quantity of a reading lies within +-P1_MICRO_MAX: 4e12 in its unit (4,000,000,000,000
 * kWh). A value beyond cannot be read (a bad value, see p1_reading_end), a total summed beyond it
 * is absent; so a sum or difference of two quantities, rounded, always fits int64. */
#define P1_MICRO_MAX INT64_C(4000000000000000000)

#ifndef P1_TARIFFS_MAX
#define P1_TARIFFS_MAX 16 /* tariff registers 1.8.1 .. 1.8.16 (DSMR >= 4 allows 16) */
#endif
#ifndef P1_FAILURES_MAX
#define P1_FAILURES_MAX 16 /* entries of the power-failure log kept (spec: 10) */
#endif
#ifndef P1_DEMAND_MONTHS_MAX
#define P1_DEMAND_MONTHS_MAX 13 /* Belgian 0-0:98.1.0 months kept */
#endif
#ifndef P1_MBUS_MAX
#define P1_MBUS_MAX 4 /* M-Bus channels 1..4 */
#endif
#ifndef P1_TEXT_MAX
#define P1_TEXT_MAX 1024 /* decoded bytes of the 0-0:96.13.0 text message */
#endif
#define P1_ID_MAX 96     /* decoded bytes of an equipment identifier */
#define P1_SHORT_MAX 32  /* version strings, tariff codes, units */

/* How the meter's tariff numbers map to day/night: data, not a silent guess. */
typedef enum p1_tariff_scheme {
    P1_TARIFFS_UNKNOWN = 0,
    P1_TARIFFS_NL, /* 1 = low (night/weekend), 2 = normal (day) */
    P1_TARIFFS_BE, /* 1 = day (peak), 2 = night (off-peak) */
} p1_tariff_scheme;

/* Country/profile the telegram looks like, from the header's manufacturer id and its objects. */
typedef enum p1_profile {
    P1_PROFILE_UNKNOWN = 0,
    P1_PROFILE_NL, /* DSMR 2.2 .. 5.0 */
    P1_PROFILE_BE, /* Fluvius e-MUCS */
    P1_PROFILE_LU, /* Smarty */
    P1_PROFILE_AT, /* Austrian DSMR-like (EST) */
    P1_PROFILE_SE, /* Swedish H1 */
    P1_PROFILE_LT, /* ESO */
    P1_PROFILE_HU, /* E.ON */
    P1_PROFILE_IL, /* Israel (Kaifa): tariff registers 1.8.11 .. 1.8.13, 0-0:96.14.1 */
    P1_PROFILE_OTHER,
} p1_profile;

/* M-Bus medium from 0-n:24.1.0 (EN 13757-3 device type). */
typedef enum p1_medium {
    P1_MEDIUM_UNKNOWN = 0,
    P1_MEDIUM_GAS,
    P1_MEDIUM_WATER,
    P1_MEDIUM_HEAT,
    P1_MEDIUM_COLD,
    P1_MEDIUM_ELECTRICITY,
    P1_MEDIUM_OTHER,
} p1_medium;

typedef struct p1_phase {
    p1_micro voltage;          /* 32.7.0 / 52.7.0 / 72.7.0, V */
    p1_micro voltage_avg;      /* 32.24.0 ..., V */
    p1_micro current;          /* 31.7.0 ..., A (signed where the meter signs it) */
    p1_micro power_import;     /* 21.7.0 ..., kW */
    p1_micro power_export;     /* 22.7.0 ..., kW */
    p1_micro reactive_import;  /* 23.7.0 ..., kvar */
    p1_micro reactive_export;  /* 24.7.0 ..., kvar */
    p1_micro apparent_import;  /* 29.7.0 ..., kVA */
    p1_micro apparent_export;  /* 30.7.0 ..., kVA */
    p1_micro power_factor;     /* 33.7.0 ... (no unit) */
    p1_micro current_limit;    /* 31.4.0 ..., A (fuse supervision threshold) */
    p1_micro current_avg;      /* 31.4.0 ... of a Lithuanian ESO meter: the current's average
                                * (demand, as its 1-0:1.4.0 is), A; it is no limit there */
    p1_micro power_sum;        /* 36.7.0, 56.7.0, 76.7.0 kW: the phase's net active power
                                * (signed; German eBZ meters); power_import/_export come from it
                                * when neither 21.7.0 nor 22.7.0 (41/42, 61/62) is sent */
    int64_t sags;              /* 32.32.0 ..., count; -1 absent */
    int64_t swells;            /* 32.36.0 ..., count; -1 absent */
} p1_phase;

typedef struct p1_failure {
    p1_time end;               /* end of the failure (meter time) */
    int64_t duration_s;        /* seconds; -1 when it could not be read */
} p1_failure;

typedef struct p1_demand_month {
    p1_time month;             /* start of the month */
    p1_time peak_time;         /* when the peak occurred */
    p1_micro peak;             /* kW */
} p1_demand_month;

typedef struct p1_mbus {
    uint8_t present;           /* any object of this channel was sent */
    int16_t type;              /* 24.1.0 device type; -1 absent or empty */
    p1_medium medium;
    char id[P1_ID_MAX + 1];    /* 96.1.0 / 96.1.1, decoded when hex */
    p1_time time;              /* capture time of value */
    p1_micro value;            /* 24.2.1 / 24.2.3 / 24.3.0 value in its unit (m3, GJ, kWh) */
    char unit[P1_SHORT_MAX];   /* the value's unit as normalised ("m3", "GJ", "kWh"), "" if none */
    uint8_t value_e;           /* OBIS group E of the value: 1 (24.2.1), 3 (24.2.3), 0 (24.3.0) */
    uint8_t unit_code;         /* P1_UNIT_* of the value's unit as sent (P1_UNIT_L for litres) */
    int16_t valve;             /* 24.4.0; -1 absent */
} p1_mbus;

/* One telegram's facts. Plain data, caller-allocated (about 6 KiB), no pointers inside. */
typedef struct p1_reading {
    char header[P1_HEADER_MAX + 1];  /* identification line after '/' */
    char version[P1_SHORT_MAX];      /* 1-3:0.2.8 or BE 0-0:96.1.4, as sent ("50", "50217") */
    char equipment_id[P1_ID_MAX + 1];/* 0-0:96.1.1 (or 0-0:96.1.0 / 0-0:42.0.0), decoded */
    p1_obis equipment_id_obis;       /* the object equipment_id came from (valid when set) */
    p1_profile profile;
    p1_tariff_scheme tariff_scheme;
    p1_time time; /* 0-0:1.0.0 (SE: normal time, so dst is set to 0); from
                   * 1-0:0.9.2 date and 1-0:0.9.1 time when it is not sent */
    uint8_t has_time;
    uint8_t clock_parts;             /* 1: 1-0:0.9.2 read into time, 2: 1-0:0.9.1 */
    int16_t tariff;                  /* 0-0:96.14.0 as a number; -1 absent or not numeric. Else
                                      * from 0-0:96.14.1 (Israel): the register that counts now,
                                      * "03" is 13 when 1.8.13 is sent */
    int16_t tariff_alt;              /* private: 0-0:96.14.1 as a number; -1 absent */
    char tariff_text[P1_SHORT_MAX];  /* 0-0:96.14.0 as sent (else 0-0:96.14.1 as sent) */

    p1_micro import_total;           /* 1.8.0 if sent, else the sum of the tariff registers (no
                                      * sum in a telegram accepted without end line unless tariffs
                                      * 1..max(highest, 2) are all there: it may have been cut) */
    p1_micro export_total;           /* 2.8.0 if sent, else the sum (idem) */
    uint8_t import_total_sent, export_total_sent; /* 1: the meter sent 1.8.0 / 2.8.0 itself */
    p1_micro import[P1_TARIFFS_MAX + 1];  /* [t] = 1.8.t kWh, t = 1..P1_TARIFFS_MAX; [0] unused */
    p1_micro export_[P1_TARIFFS_MAX + 1]; /* [t] = 2.8.t kWh */
    p1_micro reactive_import_energy; /* 3.8.0 kvarh */
    p1_micro reactive_export_energy; /* 4.8.0 kvarh */
    p1_micro reactive_q_energy[4];   /* 5.8.0 .. 8.8.0 kvarh (Q1..Q4) */

    p1_micro power_import;           /* 1.7.0 kW */
    p1_micro power_export;           /* 2.7.0 kW */
    p1_micro power_net;              /* import - export, kW (negative when exporting) */
    p1_micro reactive_import_power;  /* 3.7.0 kvar */
    p1_micro reactive_export_power;  /* 4.7.0 kvar */
    p1_micro apparent_import_power;  /* 9.7.0 kVA */
    p1_micro apparent_export_power;  /* 10.7.0 kVA */
    p1_micro frequency;              /* 14.7.0 Hz */
    p1_micro power_factor;           /* 13.7.0 */
    p1_micro voltage;                /* 12.7.0 V (single-value meters) */
    p1_micro current;                /* 11.7.0 A */
    p1_micro current_neutral;        /* 91.7.0 A */
    uint8_t nphases;                 /* highest phase seen (1..3), 0 none */
    p1_phase phase[3];
    p1_micro power_sum; /* 16.7.0 kW: net active power, import - export (signed);
                         * power_import/_export come from it when neither 1.7.0
                         * nor 2.7.0 is sent (Swiss Sagemcom XT211) */

    int64_t power_failures;          /* 0-0:96.7.21; -1 absent */
    int64_t long_power_failures;     /* 0-0:96.7.9; -1 absent */
    uint8_t nfailures;
    int64_t failure_log_count;       /* count announced by 99.97.0 (may exceed entries); -1 */

    p1_micro demand_current;         /* BE 1-0:1.4.0 kW: current quarter-hour average */
    p1_micro demand_peak;            /* BE 1-0:1.6.0 kW: this month's peak */
    p1_time demand_peak_time;
    uint8_t ndemand_months;

    int16_t breaker;                 /* 0-0:96.3.10: 0 off, 1 on, 2 ready; -1 absent */
    p1_micro limiter;                /* 0-0:17.0.0 in limiter_unit */
    char limiter_unit[P1_SHORT_MAX]; /* "kW", "A", "kVA" or "" */
    p1_micro fuse_limit;             /* BE 1-0:31.4.0 or LU 1-1:31.4.0 first value, A (not LT's:
                                      * that is phase[0].current_avg) */
    p1_micro fuse_limit_export;      /* LU 1-1:31.4.0 second value, A (signed) */

    char text_code[P1_SHORT_MAX * 2];/* 0-0:96.13.1, decoded */

    /* P1_ERR_BAD_VALUE when a known object's value could not be read as the number that
     * object must hold, P1_ERR_BAD_UNIT when it is a number in the unit of another quantity
     * (see p1_reading_end), else P1_ERR_OK. A garbled register is never dropped quietly: a
     * total made of the remaining tariffs would be wrong. */
    p1_error error;
    uint64_t error_offset;           /* stream offset of the bad value's first character */
    p1_obis error_obis;              /* the object whose value it was */
    char error_unit[P1_SHORT_MAX];   /* P1_ERR_BAD_UNIT: the unit as sent ("m3"); else "" */
    uint8_t bad;                     /* private: which kinds of bad value were seen */
    uint8_t bad_code[2];             /* private: P1_ERR_BAD_VALUE or _BAD_UNIT of each kind */
    uint64_t bad_offset[2];          /* private: first bad value of each kind */
    p1_obis bad_obis[2];
    char bad_unit[2][P1_SHORT_MAX]; /* private: its unit, for P1_ERR_BAD_UNIT */

    uint32_t nobjects;               /* objects seen */
    uint32_t nunknown;               /* objects not mapped to a field above */
    uint32_t seen;                   /* private to reading.c: objects that decide the profile */
    uint32_t dirty;                  /* private: large parts written since the last clear */
    uint8_t tariff_top[2];           /* private: highest tariff register sent, import / export */
    uint32_t cleared;                /* private: marks a reading p1_reading_init() has set up */

    /* The large arrays come last: p1_reading_begin() clears them only when written. */
    p1_failure failures[P1_FAILURES_MAX];                 /* nfailures entries */
    p1_demand_month demand_months[P1_DEMAND_MONTHS_MAX]; /* BE 0-0:98.1.0, ndemand_months */
    char text[P1_TEXT_MAX + 1];      /* 0-0:96.13.0, decoded (a longer text: its start) */
    p1_mbus mbus[P1_MBUS_MAX];       /* [n-1] = channel n */
} p1_reading;

/* Clears r: every quantity P1_ABSENT, every count -1, strings empty. */
void p1_reading_init(p1_reading *r);
/* Clears r (as p1_reading_init) and copies the header of t into it; call from on_begin. A reading
 * that went through p1_reading_init() or an earlier p1_reading_begin() is cleared cheaply: the
 * large arrays (text, failure log, demand history, M-Bus channels) only when the last telegram
 * wrote them. Any other memory (zeroed, uninitialised) is cleared whole. Fields written by hand
 * between telegrams need p1_reading_init(). */
void p1_reading_begin(p1_reading *r, const p1_telegram *t);
/* Folds one object into r; call from on_object. Unknown objects only count in r->nunknown. */
void p1_reading_add(p1_reading *r, const p1_object *o);
/* Derives totals, net power (import/export from a net or signed power), profile, tariff scheme,
 * the times' zone, the tariff from Israel's 0-0:96.14.1 and a Lithuanian meter's average
 * currents; call from on_end (a second call changes nothing). Totals are summed from
 * the tariff registers; a telegram without end line (t->has_end_line 0) gets a sum only when
 * every tariff from 1 up to the highest sent, and at least 1 and 2, is there. Returns the verdict:
 * t->error when the parser rejected the telegram; else P1_ERR_BAD_VALUE (also set in r->error,
 * with r->error_offset and r->error_obis) when a known object's value was unreadable, or
 * P1_ERR_BAD_UNIT (r->error_unit too) when it was a number in another quantity's unit (a power
 * in kWh, an energy register in m3; a unit left out or one the decoder does not know is none):
 * an energy register or M-Bus meter value always, any other known object (power, voltage,
 * counters) only when no valid CRC vouched for the telegram; else P1_ERR_OK. Such a value is
 * left out of r either way. A caller treats a non-OK
 * verdict like a rejected telegram. t may be NULL (then only the reading's own verdict counts). */
p1_error p1_reading_end(p1_reading *r, const p1_telegram *t);
/* After p1_reading_end() accepted the telegram (P1_ERR_OK): P1_ERR_BAD_VALUE or P1_ERR_BAD_UNIT
 * when a known object's value was left out of r all the same (not a total: a power, voltage or
 * counter that no number could be read from, or sent in another quantity's unit, while a valid
 * CRC vouched for the telegram, so the meter really sends it so), the first such value's object,
 * stream offset and unit as sent ("" but for P1_ERR_BAD_UNIT) in *obis, *offset, unit (unit_cap
 * bytes, NUL-terminated); else P1_ERR_OK, and the outputs are left alone. A caller says so, as
 * nothing else tells a user why a value the meter sends is missing. */
p1_error p1_reading_warning(const p1_reading *r, p1_obis *obis, uint64_t *offset, char *unit,
                            size_t unit_cap);
/* The telegram as the caller must treat it after p1_reading_end(): t itself when the reading
 * adds nothing, else *copy = *t with error and error_offset taken from r (a bad value in a
 * telegram the parser accepted). Returns t or copy; copy is caller-allocated. */
const p1_telegram *p1_reading_verdict(const p1_reading *r, const p1_telegram *t,
                                      p1_telegram *copy);

/* Index of the first M-Bus channel carrying `medium`, preferring one with a value
 * (p1_mbus_has_value), then a non-empty id, then the newest valid capture time (real meters leave
 * a stale channel 1 when gas moved to 2); -1 if none. */
int p1_reading_mbus_find(const p1_reading *r, p1_medium medium);
/* Whether M-Bus channel m carries a meter reading: a value was sent and it is not the filler of
 * a channel that is not paired or not heard from (0 captured at a placeholder time such as
 * 632525252525S or 700101010000W). A non-zero value at a placeholder time (a meter whose clock is
 * not set) is a reading. Consumers that store or publish a counter (history, MQTT, Prometheus)
 * use this: the filler 0 on a total would read as a meter reset. */
int p1_mbus_has_value(const p1_mbus *m);
/* A heat (or cold) meter's reading in GJ, micro: its value when it counts in GJ (or MJ, which the
 * decoder already turned into GJ) or sends no unit, converted when it counts in kWh (or Wh, MWh:
 * 1 kWh = 0.0036 GJ, rounded to the micro-GJ); P1_ABSENT without a value (p1_mbus_has_value) or
 * in any other unit. Heat meters count in either; history and publishers keep one unit. */
p1_micro p1_mbus_gj(const p1_mbus *m);
/* A gas or water meter's reading in m3, micro: its value when it counts in m3 (or dm3, litres,
 * which the decoder already turned into m3) or sends no unit (m3 is the only unit DSMR gives gas
 * and water); P1_ABSENT without a value (p1_mbus_has_value) or in any other unit ("kWh"), which
 * is never taken for m3. History, API, metrics and publishers all read gas and water through it. */
p1_micro p1_mbus_m3(const p1_mbus *m);
/* The reading of M-Bus channel m in the unit its medium is kept in everywhere: p1_mbus_gj() for
 * a heat meter, p1_mbus_m3() for any other (gas, water). */
p1_micro p1_mbus_kept(const p1_mbus *m);
/* Phase p's (0..2) voltage and current; a single-phase meter's 12.7.0 / 11.7.0 are L1's. The
 * history, MQTT and /metrics show them so. */
p1_micro p1_phase_voltage(const p1_reading *r, int p);
p1_micro p1_phase_current(const p1_reading *r, int p);
/* Name of a medium ("gas", "water", "heat", "cold", "electricity", "unknown", "other"). */
const char *p1_medium_name(p1_medium m);
/* Name of a profile ("nl", "be", "lu", "at", "se", "lt", "hu", "il", "other", "unknown"). */
const char *p1_profile_name(p1_profile p);

#ifdef __cplusplus
}
#endif
#endif
