/* notify.h: systemd supervision: READY/STATUS/RELOADING/STOPPING and the watchdog keep-alive. */
#ifndef P1D_NOTIFY_H
#define P1D_NOTIFY_H

#include "loop.h"
#include "meter.h"

typedef struct notify notify;

/* Starts the watchdog timer when systemd asked for one (WATCHDOG_USEC), and a periodic STATUS
 * line summarising ms (borrowed). Returns NULL only when out of memory. Harmless outside systemd. */
notify *notify_new(loop *l, const meters *ms);
/* Stops the timers and frees; accepts NULL. */
void notify_free(notify *n);
/* Tells systemd the daemon is up (READY=1) with a first STATUS. */
void notify_ready(notify *n);
/* Tells systemd a reload started (RELOADING=1) or finished (READY=1). */
void notify_reloading(notify *n, int done);
/* Tells systemd the daemon is shutting down (STOPPING=1). */
void notify_stopping(notify *n);

#endif
