/* lookup.h: a host name looked up off p1d's loop. getaddrinfo() blocks for the resolver's whole
 * timeout (5 s per try and server) while DNS does not answer; on the loop that would stop every
 * meter, the API and the store at each reconnect. So the name is looked up on a thread of its
 * own, which writes one byte to a socketpair when the answer is in; the loop then calls back.
 * The lookup is shared by the thread and its owner (refs): whichever lets go last frees it, so
 * an owner stopped meanwhile (reload, SIGTERM) leaks nothing and never waits. Used by the tcp:
 * sources and the MQTT publisher. */
#ifndef P1D_LOOKUP_H
#define P1D_LOOKUP_H

#include <netdb.h>

#include "loop.h"

typedef struct lookup lookup;

/* The answer, on the loop: error is getaddrinfo()'s result (EAI_SYSTEM when the thread's byte
 * never came), res its addresses (NULL on error), which fn owns and frees with freeaddrinfo().
 * The lookup is over when fn runs: it must not be cancelled then. */
typedef void (*lookup_fn)(void *user, int error, struct addrinfo *res);

/* getaddrinfo() of host when it is a numeric address (IPv4 or IPv6), which needs no lookup:
 * 0 with *res (TCP, numeric service port), EAI_NONAME for a name to look up. */
int lookup_numeric(const char *host, const char *port, struct addrinfo **res);
/* Starts looking up host (TCP, any family) with the numeric service port on a thread; fn is
 * called once on l with the answer, unless lookup_cancel() comes first. NULL with errno when
 * no thread could be started (nothing is left running). */
lookup *lookup_start(loop *l, const char *host, const char *port, lookup_fn fn, void *user);
/* Lets go of q (NULL: nothing): fn is not called; the thread finishes on its own. */
void lookup_cancel(lookup *q);

#endif
