/* zeroconf.h: announces p1d on the local network over mDNS/DNS-SD through the machine's
 * avahi-daemon: the HomeWizard P1 API (_hwenergy._tcp, which Home Assistant's HomeWizard
 * integration discovers) and the dashboard (_http._tcp). */
#ifndef P1D_ZEROCONF_H
#define P1D_ZEROCONF_H

#include <stddef.h>

#include "loop.h"
#include "meter.h"

typedef struct zeroconf zeroconf;

/* [http] announce */
typedef enum zeroconf_mode {
    ZEROCONF_AUTO = 0, /* what a client on the LAN can use (zeroconf_plan) */
    ZEROCONF_YES = 1,  /* both services, whatever the address, port or credentials */
    ZEROCONF_NO = 2,   /* nothing; no D-Bus connection at all */
} zeroconf_mode;

#define ZEROCONF_HW_TYPE   "_hwenergy._tcp"
#define ZEROCONF_HTTP_TYPE "_http._tcp"
#define ZEROCONF_NAME_MAX  63 /* bytes of a DNS-SD instance name (one DNS label) */

typedef struct zeroconf_options {
    char name[ZEROCONF_NAME_MAX + 1]; /* instance name; "" = "p1d on HOSTNAME" */
    char listen[128];                 /* [http] listen: where the services are announced */
    unsigned port;                    /* the HTTP server's port */
    int homewizard;                   /* announce _hwenergy._tcp */
    int dashboard;                    /* announce _http._tcp */
} zeroconf_options;

/* Decides what `[http] announce = mode` announces for a server on `listen` (as configured),
 * bound to `port`, with (auth 1) or without a token or basic auth; fills o->listen, port,
 * homewizard and dashboard. Returns the number of services (0: nothing to announce). Writes into
 * why[cap] what is left out and why, or "" when nothing is: auto: nothing on a loopback address (no
 * other machine reaches it); the dashboard otherwise; the HomeWizard API only on port 80 without
 * credentials, as HomeWizard clients need; yes:  both (why then warns what will not work); no:
 * nothing. */
int zeroconf_plan(zeroconf_mode mode, const char *listen, unsigned port, int auth,
                  zeroconf_options *o, char *why, size_t cap);

/* Starts announcing o's services (o->homewizard or o->dashboard set) through avahi-daemon on the
 * loop, where the server is reached: a specific listen address on its interface and address
 * family only, 0.0.0.0 over IPv4 only, [::] and *: everywhere; the HomeWizard serial follows the
 * first meter of ms (its equipment id, else its name) as readings come. Waits for avahi-daemon (and
 * D-Bus) when it is not (yet) running and announces again after it restarts. Returns NULL with
 * err[cap] set when libavahi-client cannot be loaded, or without memory. */
zeroconf *zeroconf_new(loop *l, meters *ms, const zeroconf_options *o, char *err, size_t cap);
/* Withdraws the services (avahi-daemon sends the goodbyes) and frees z; accepts NULL. */
void zeroconf_free(zeroconf *z);

#endif
