/* http_sse.h: Server-Sent Events fan-out for the HTTP server: each reading is formatted once into
 * a refcounted event shared by every client's bounded queue; idle clients sit suspended. */
#ifndef P1D_HTTP_SSE_H
#define P1D_HTTP_SSE_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "loop.h"
#include "meter.h"

#define HTTP_SSE_QUEUE_MAX 64        /* events queued per client; one more drops the client */
#define HTTP_SSE_SNDBUF 65536        /* kernel send buffer of a stream connection, bytes */
#define HTTP_SSE_HEARTBEAT_MS 15000  /* ": hb" comment to every client this often */
#define HTTP_SSE_RETRY_MS 3000       /* reconnect delay suggested to clients ("retry:") */
#define HTTP_SSE_ID_MAX (METER_NAME_MAX + 24) /* "<meter>:<seq>" */

typedef struct http_sse http_sse;

/* Asks the owner to run MHD soon: called after connections were resumed. */
typedef void (*http_sse_kick_fn)(void *user);

/* Creates the fan-out with its heartbeat timer on l; `headers` adds the server's common response
 * headers (CORS) to each stream response. Returns NULL on ENOMEM. Free with http_sse_free(). */
http_sse *http_sse_new(loop *l, http_sse_kick_fn kick, void (*headers)(void *user,
                       struct MHD_Response *r), void *user);
/* Frees s; call after MHD_stop_daemon() (which releases every client). Accepts NULL. */
void http_sse_free(http_sse *s);
/* Resumes every suspended client and makes each end its stream: call before MHD_stop_daemon(). */
void http_sse_shutdown(http_sse *s);

/* Queues one reading of meter m (sequence seq; json = the event's data, one line, len bytes) to
 * every client streaming all meters or m; also keeps it for Last-Event-ID replay. Clients whose
 * queue is full are dropped. Returns 0 or -ENOMEM. */
int http_sse_publish(http_sse *s, const meter *m, uint64_t seq, const char *json, size_t len);

/* Meter m leaves the registry: every stream gets a final "removed" event for it, the streams of
 * m alone end after it, and m's kept events go. A stream of m holds a reference to m (meter_ref)
 * until MHD releases its connection. */
void http_sse_remove(http_sse *s, const meter *m);

/* Queues an "identify" event (data {}) to every client, whatever meter it streams: the
 * dashboards flash, as a HomeWizard meter blinks its light on PUT /api/v1/identify. Returns the
 * clients it was queued for. */
size_t http_sse_identify(http_sse *s);

/* Makes the response for a new stream on connection c of meter `only` (NULL = every meter);
 * last_event_id (the request's Last-Event-ID, or NULL) "<meter>:<seq>" replays that meter's kept
 * newer events. Returns a response for MHD_queue_response (the caller destroys its reference)
 * or NULL on ENOMEM. */
struct MHD_Response *http_sse_open(http_sse *s, struct MHD_Connection *c, const meter *only,
                                   const char *last_event_id);

/* Clients currently connected. */
size_t http_sse_clients(const http_sse *s);
/* Clients dropped so far because their queue overflowed. */
uint64_t http_sse_dropped(const http_sse *s);

#endif
