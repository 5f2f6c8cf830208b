/* relay.h: the raw telegram relay: a TCP listener that sends every accepted telegram of one meter,
 * byte-exact, to each connected client (for tools that want the P1 stream itself). */
#ifndef P1D_RELAY_H
#define P1D_RELAY_H

#include <stddef.h>

#include "loop.h"
#include "meter.h"

typedef struct relay relay;

typedef struct relay_options {
    const char *listen;     /* "127.0.0.1:2323", "[::1]:2323"; port 0 picks a free port */
    const char *meter;      /* name of the meter relayed; NULL or "" = the first registered */
    size_t buffer;          /* output buffer per client (bytes); a client that fills it is dropped */
    size_t max_clients;
} relay_options;

/* Checks a listen address as relay_new reads it (HOST:PORT or [IPV6]:PORT; HOST resolved as
 * for a listening socket) without opening anything. Returns 0, or -1 with the reason in err. */
int relay_listen_check(const char *listen, char *err, size_t cap);
/* Listens on o->listen and hooks into ms (borrowed; must outlive the relay). Returns NULL with
 * errno set and a message in err[cap] when the address is bad or cannot be bound. */
relay *relay_new(loop *l, meters *ms, const relay_options *o, char *err, size_t cap);
/* Closes the listener and every client, unhooks, frees; accepts NULL. */
void relay_free(relay *r);
/* The bound port (useful with port 0). */
unsigned relay_port(const relay *r);

#endif
