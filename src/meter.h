/* meter.h: one metered source (its name, connection state, counters and latest reading), and the
 * registry of all meters with a hook list that fans each accepted reading out to consumers. */
#ifndef P1D_METER_H
#define P1D_METER_H

#include <stddef.h>
#include <stdint.h>

#include "demand.h"
#include "p1/p1.h"
#include "p1/reading.h"

#define METER_NAME_MAX 63       /* [A-Za-z0-9_-], unique */
#define METER_HISTORY 8         /* recent readings kept for SSE Last-Event-ID replay */
#define METERS_MAX 4096

typedef enum meter_state {
    METER_WAITING = 0,   /* not connected yet / device absent, retrying */
    METER_CONNECTED,     /* connected, bytes may flow */
    METER_RECEIVING,     /* telegrams arriving */
    METER_STOPPED,       /* source finished (file replay done) */
} meter_state;

/* One accepted telegram as kept by the meter. Plain data; copied, never shared. */
typedef struct meter_sample {
    uint64_t seq;             /* per-meter sequence number, 1-based; the SSE event id */
    int64_t received_ms;      /* wall clock when the telegram completed */
    int64_t received_mono_ms; /* monotonic clock then (loop_now_ms): its age, which a stepped
                               * wall clock must not stretch or shrink */
    p1_reading reading;
    /* Belgian meters (a demand register sent): the forecast of the current quarter hour's average
     * import power (demand.h), kW micro, P1_ABSENT when unknown; the quarter's end (unix s). */
    p1_micro demand_forecast;
    int64_t demand_end;
} meter_sample;

typedef struct meter {
    char name[METER_NAME_MAX + 1];
    char source[256];         /* the spec as configured ("serial:/dev/ttyUSB0:auto"), secrets masked */
    char kind[16];            /* "serial", "tcp", "file", "stdin", "sim" */
    meter_state state;
    char detected[32];        /* serial settings found ("115200 8N1"), or "" */
    char last_error[160];     /* last problem reported by the source, or "" */
    uint8_t removed;          /* taken out of the registry by a reload (meters_remove) */
    unsigned refs;            /* the registry's one plus meter_ref()s; meter_unref() frees at 0 */
    int64_t connected_ms;     /* wall clock of the last connect, 0 never; meter_connected_since() */
    uint64_t telegrams;       /* accepted */
    uint64_t rejected;        /* rejected for any reason */
    uint64_t crc_errors;
    uint64_t reconnects;
    uint64_t idle_reopens;    /* reopened because it sent nothing for idle_timeout */
    uint64_t bytes;
    uint64_t seq;             /* last sample's seq, 0 none */
    /* The equipment id (0-0:96.1.1, decoded) last known: from the newest reading that had one,
     * before the first one from the store (main seeds it); "" none. The HomeWizard serial. */
    char equipment_id[P1_ID_MAX + 1];
    /* How the history store stamped the newest reading (store_live; all 0 without a store). */
    uint8_t clock_used;       /* 0 none yet, 1 the meter's clock, 2 the system's */
    int8_t clock_synced;      /* the system clock: 1 synchronised, 0 not, -1 cannot tell */
    uint8_t clock_has_offset; /* clock_offset_s is known */
    int64_t clock_offset_s;   /* the meter's time minus the system's at that reading, s */
    uint8_t clock_logged;     /* store_live: the clock=auto choice last logged (1, 2, 3) */
    size_t store_backlog;     /* store_live: its readings queued for the database, not yet
                               * written (a file replayed fast waits while there are many) */
    demand_track demand;      /* the quarter hour followed for demand_forecast */
    meter_sample history[METER_HISTORY]; /* ring: history[seq % METER_HISTORY] */
    uint8_t raw[P1_TELEGRAM_MAX];        /* last accepted telegram, byte-exact (plaintext) */
    size_t raw_len;
    struct meters *owner;     /* NULL once removed */
} meter;

/* Called for every accepted reading of any meter, after the meter's state was updated. */
typedef void (*meters_hook_fn)(void *user, meter *m, const meter_sample *s, const uint8_t *raw,
                               size_t raw_len);

/* Called when meter m leaves the registry (meters_remove), before the registry's reference goes:
 * holders of m drop it or take a reference (meter_ref) for what must finish first. */
typedef void (*meters_gone_fn)(void *user, meter *m);

#define METERS_HOOKS_MAX 16

typedef struct meters {
    meter **list;
    size_t n;
    size_t cap;
    struct meters_hook {
        meters_hook_fn fn;   /* a reading hook, or NULL */
        meters_gone_fn gone; /* a gone hook, or NULL */
        void *user;
    } hooks[METERS_HOOKS_MAX];
    size_t nhooks;
} meters;

/* Initialises an empty registry. */
void meters_init(meters *ms);
/* Drops the registry's reference to every meter (meters still referenced elsewhere live on until
 * their last meter_unref); accepts an initialised, empty or NULL registry. */
void meters_free(meters *ms);
/* Adds a meter; returns it, or NULL with errno EEXIST (name taken), EINVAL (bad name),
 * ENOSPC (METERS_MAX) or ENOMEM. The registry holds its one reference. */
meter *meters_add(meters *ms, const char *name, const char *kind, const char *source);
/* Takes m out of the registry (the others keep their order): marks it removed and stopped, calls
 * the gone hooks, drops the registry's reference. m is freed now unless a holder took a
 * reference; its name is free for a new meter at once. The caller stops its source first. */
void meters_remove(meters *ms, meter *m);
/* Takes a reference to m, which then outlives its removal until meter_unref; returns m. The count
 * is bookkeeping, not the meter's state, so a const pointer may take one. */
const meter *meter_ref(const meter *m);
/* Drops a reference; the last one frees m. Accepts NULL. */
void meter_unref(const meter *m);
/* Finds a meter by name; NULL if none. */
meter *meters_find(const meters *ms, const char *name);
/* Registers a hook for accepted readings; returns 0 or -ENOSPC. */
int meters_hook(meters *ms, meters_hook_fn fn, void *user);
/* Removes the hook registered with the same fn and user; returns 0 or -ENOENT. Safe in a hook. */
int meters_unhook(meters *ms, meters_hook_fn fn, void *user);
/* Registers a hook for meters leaving the registry; returns 0 or -ENOSPC. */
int meters_hook_gone(meters *ms, meters_gone_fn fn, void *user);
/* Removes the gone hook registered with the same fn and user; returns 0 or -ENOENT. */
int meters_unhook_gone(meters *ms, meters_gone_fn fn, void *user);
/* 1 when name is a valid meter name: 1..METER_NAME_MAX of [A-Za-z0-9_-]. */
int meter_name_valid(const char *name);
/* Updates the kind and source spec a meter reports (after a reload changed its source). */
void meter_set_source(meter *m, const char *kind, const char *source);
/* Records an accepted telegram that completed at wall clock now_ms and monotonic mono_ms: copies
 * reading and raw bytes (and its equipment id, when it has one), bumps counters, calls hooks. */
void meter_accept(meter *m, const p1_reading *r, const uint8_t *raw, size_t raw_len,
                  int64_t now_ms, int64_t mono_ms);
/* Records a rejected telegram (counts CRC errors separately). */
void meter_reject(meter *m, p1_error err);
/* The latest sample, or NULL when none yet. */
const meter_sample *meter_latest(const meter *m);
/* The sample with sequence `seq` if still kept, else NULL. */
const meter_sample *meter_sample_at(const meter *m, uint64_t seq);
/* Wall clock of the current connection's start while the meter is connected or receiving; 0 while
 * it waits for its source or has stopped (connected_ms keeps the last connect either way). */
int64_t meter_connected_since(const meter *m);
/* Name of a state ("waiting", "connected", "receiving", "stopped"). */
const char *meter_state_name(meter_state s);

#endif
