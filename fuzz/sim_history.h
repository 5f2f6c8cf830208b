/* sim_history.h: for the fuzz targets that need a history to query: telegrams of the simulated
 * meter (src/sim.c), decoded by libp1 and stored as p1d stores them. */
#ifndef P1_FUZZ_SIM_HISTORY_H
#define P1_FUZZ_SIM_HISTORY_H

#include "sim.h"
#include "store.h"

#include <p1/p1.h>
#include <p1/reading.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Called with the last reading stored and its telegram (to hand it to a live meter). */
typedef void (*sim_history_last_fn)(const p1_reading *r, const char *raw, size_t len);

typedef struct sim_history {
    p1_reading r;
    store *s;
    const char *meter;
} sim_history;

static void sim_history_begin(void *user, const p1_telegram *t)
{
    p1_reading_begin(&((sim_history *)user)->r, t);
}

static void sim_history_object(void *user, const p1_object *o)
{
    p1_reading_add(&((sim_history *)user)->r, o);
}

static void sim_history_end(void *user, const p1_telegram *t)
{
    sim_history *f = user;
    if (p1_reading_end(&f->r, t) == P1_ERR_OK)
        store_add(f->s, f->meter, &f->r, 0);
}

/* n telegrams of the simulated meter `seed`, one every `interval` seconds from `start`, into
 * the store as meter `meter`, committed; the last one also to last (may be NULL). Aborts when
 * the store fails: a fuzz target without its history would test nothing. */
static void sim_history_fill(store *s, const char *meter, uint64_t seed, int64_t start,
                             uint32_t interval, int n, sim_history_last_fn last)
{
    static char out[SIM_OUT_MAX];
    static sim sm;
    static p1_parser p;
    static sim_history f;
    f.s = s;
    f.meter = meter;
    sim_options o;
    sim_options_default(&o);
    o.seed = seed;
    o.start = start;
    o.interval = interval;
    if (sim_init(&sm, &o) != 0)
        abort();
    p1_callbacks cb = {sim_history_begin, sim_history_object, sim_history_end};
    p1_parser_init(&p, NULL, &cb, &f);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        len = sim_next(&sm, out, sizeof out);
        p1_execute(&p, out, len);
        if (i % 1000 == 999 && store_commit(s) != 0)
            abort();
    }
    if (store_commit(s) != 0)
        abort();
    if (last && n > 0)
        last(&f.r, out, len);
}

static char sim_history_dir[64], sim_history_path[96];

/* Removes the database sim_history_open() made, with its -wal, -shm and .lock, and its
 * directory (for atexit(), after the store is closed or the process ends). */
static void sim_history_remove(void)
{
    static const char *const ext[] = {"", "-wal", "-shm", ".lock"};
    char path[128];
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        snprintf(path, sizeof path, "%s%s", sim_history_path, ext[i]);
        unlink(path);
    }
    rmdir(sim_history_dir);
}

/* A new, empty history in a directory of its own under $TMPDIR (tag names it), removed at
 * exit. Aborts when it cannot be made. */
static store *sim_history_open(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(sim_history_dir, sizeof sim_history_dir, "%s/p1-%s.XXXXXX",
             tmp && strlen(tmp) < 30 ? tmp : "/tmp", tag);
    if (!mkdtemp(sim_history_dir))
        abort();
    snprintf(sim_history_path, sizeof sim_history_path, "%s/p1d.db", sim_history_dir);
    atexit(sim_history_remove);
    char err[256];
    store *s = store_open(sim_history_path, NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s: %s\n", tag, err);
        abort();
    }
    return s;
}

#endif
