/* source_log.h: the sources' status lines, summed up when many meters change at once (a switch
 * rebooting drops a hundred dongles): a few lines one by one, the rest one line per message. */
#ifndef P1D_SOURCE_LOG_H
#define P1D_SOURCE_LOG_H

#include "loop.h"

#define SOURCE_LOG_BURST 5        /* meters a second whose status lines are logged one by one */
#define SOURCE_LOG_WINDOW_MS 1000 /* ... the rest summed up at the end of the second */
#define SOURCE_LOG_GROUPS 8       /* distinct messages summed up per second (the last: others) */
#define SOURCE_LOG_NAMES 8        /* meter names one summary line lists */
#define SOURCE_LOG_KEY_MAX 192    /* one message, with its address made generic */

typedef struct source_log source_log;

/* Creates the summing state of all sources on loop l; NULL when out of memory. Free with
 * source_log_free() before the loop. */
source_log *source_log_new(loop *l);
/* Prints the summaries still pending and frees g; accepts NULL. */
void source_log_free(source_log *g);
/* Logs "NAME: msg" at level, or, past SOURCE_LOG_BURST meters within a second (and for a second
 * after a summary), counts meter `name` under `key` (msg with the source's own address replaced by
 * a placeholder, so meters with the same trouble share it) for a line "N meters: KEY: names"
 * at the end of the second; a counted line is still logged at debug. g NULL: logs at once. */
void source_log_status(source_log *g, int level, const char *name, const char *msg,
                       const char *key);

#endif
