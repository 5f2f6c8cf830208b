/* source.h: one meter's byte source (serial, TCP, file/stdin, simulator) on the event loop, and
 * the decoding of its bytes into readings for the meter registry. */
#ifndef P1D_SOURCE_H
#define P1D_SOURCE_H

#include <stddef.h>

#include "config.h"
#include "loop.h"
#include "meter.h"
#include "sim.h"
#include "source_log.h"

typedef struct source source;

/* Starts reading the source described by cfg (copied) into meter m (borrowed; must outlive the
 * source). A device or host that is not there yet is not an error: the source keeps retrying.
 * Its status lines go through sl (borrowed, shared by all sources, may be NULL: logged at once).
 * stored (NULL none; read during the call only) holds the registers of the meter's newest stored
 * reading: a simulator whose equipment id is the meter's (m->equipment_id) continues from them
 * and from m's latest reading where those are higher than its own start. Other kinds ignore it.
 * Returns NULL with a message in err[cap] only for what retrying cannot fix (out of memory). */
source *source_new(loop *l, source_log *sl, meter *m, const config_source *cfg,
                   const sim_registers *stored, char *err, size_t cap);
/* Stops the source, closes its fd and timers and frees it; accepts NULL. */
void source_free(source *s);
/* The configuration the source runs with (for reload comparisons). */
const config_source *source_config(const source *s);

#endif
