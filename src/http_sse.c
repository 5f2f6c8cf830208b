/* http_sse.c: Server-Sent Events fan-out: one refcounted event per reading shared by all clients. */
#include "http_sse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define SSE_BLOCK 8192 /* bytes MHD asks the reader for at most, per call */

/* One formatted event ("id: ...\nevent: reading\ndata: ...\n\n"), shared by reference. */
typedef struct sse_event {
    unsigned refs;
    size_t len;
    char text[];
} sse_event;

/* The last METER_HISTORY events of one meter, kept for Last-Event-ID replay. */
typedef struct sse_ring {
    const meter *m;
    uint64_t seq[METER_HISTORY];
    sse_event *ev[METER_HISTORY];
} sse_ring;

typedef struct sse_client {
    struct sse_client *prev, *next;
    http_sse *s;
    struct MHD_Connection *c;
    int fd;                        /* the connection's socket */
    loop_watch *gone;              /* while suspended: notices the peer closing */
    const meter *only;             /* NULL: every meter; else a reference (meter_ref) */
    sse_event *q[HTTP_SSE_QUEUE_MAX];
    unsigned head, count;
    size_t off;                    /* bytes of q[head] already handed to MHD */
    uint8_t suspended;             /* we suspended it; only then may it be resumed */
    uint8_t closing;               /* end the stream at the next reader call */
    uint8_t ending;                /* end the stream cleanly once the queue is sent */
} sse_client;

struct http_sse {
    loop *l;
    loop_timer *hb;
    http_sse_kick_fn kick;
    void (*headers)(void *user, struct MHD_Response *r);
    void *user;
    sse_client *clients;
    size_t nclients;
    uint64_t dropped;
    sse_event *preamble;           /* "retry: N\n\n", queued first to each client */
    sse_ring *rings;
    size_t nrings, caprings;
    uint8_t shutting_down;
};

static sse_event *event_new(const char *a, size_t alen, const char *b, size_t blen, const char *c,
                            size_t clen)
{
    sse_event *e = malloc(sizeof *e + alen + blen + clen + 1);
    if (!e)
        return NULL;
    e->refs = 1;
    e->len = alen + blen + clen;
    memcpy(e->text, a, alen);
    if (blen)
        memcpy(e->text + alen, b, blen);
    if (clen)
        memcpy(e->text + alen + blen, c, clen);
    e->text[e->len] = '\0';
    return e;
}

static void event_unref(sse_event *e)
{
    if (e && --e->refs == 0)
        free(e);
}

static void client_resume(sse_client *cl)
{
    loop_watch_del(cl->gone);
    cl->gone = NULL;
    if (cl->suspended) {
        cl->suspended = 0;
        MHD_resume_connection(cl->c);
    }
}

/* Ends the connection of a client that stopped reading. MHD only asks the reader for more while
 * the socket takes data, so `closing` alone would wait for MHD's idle timeout (30 s). Shutting the
 * socket down makes MHD see a hang-up and close it at its next run; no linger makes that close
 * reset the connection instead of leaving the kernel to push the unread backlog. */
static void client_drop(sse_client *cl)
{
    cl->closing = 1;
    cl->s->dropped++;
    if (cl->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        shutdown(cl->fd, SHUT_RDWR);
    }
}

/* Queues e for cl, or drops cl when its queue is full: a slow reader must never make the daemon
 * wait or buffer without bound. Returns 1 when cl was resumed or dropped: MHD must run. */
static int client_push(sse_client *cl, sse_event *e)
{
    if (cl->closing || cl->ending)
        return 0;
    if (cl->count >= HTTP_SSE_QUEUE_MAX) {
        client_drop(cl);
        client_resume(cl);
        return 1;
    }
    e->refs++;
    cl->q[(cl->head + cl->count) % HTTP_SSE_QUEUE_MAX] = e;
    cl->count++;
    int was = cl->suspended;
    client_resume(cl);
    return was;
}

static void heartbeat(void *user)
{
    http_sse *s = user;
    static const char hb[] = ": hb\n\n";
    sse_event *e = event_new(hb, sizeof hb - 1, NULL, 0, NULL, 0);
    int resumed = 0;
    if (e) {
        for (sse_client *cl = s->clients; cl; cl = cl->next)
            resumed |= client_push(cl, e);
        event_unref(e);
    }
    if (resumed && s->kick)
        s->kick(s->user);
    loop_timer_arm(s->hb, HTTP_SSE_HEARTBEAT_MS);
}

http_sse *http_sse_new(loop *l, http_sse_kick_fn kick,
                       void (*headers)(void *user, struct MHD_Response *r), void *user)
{
    http_sse *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->l = l;
    s->kick = kick;
    s->headers = headers;
    s->user = user;
    char pre[64];
    int n = snprintf(pre, sizeof pre, "retry: %d\n\n", HTTP_SSE_RETRY_MS);
    s->preamble = event_new(pre, (size_t)n, NULL, 0, NULL, 0);
    s->hb = loop_timer_new(l, heartbeat, s);
    if (!s->preamble || !s->hb) {
        http_sse_free(s);
        return NULL;
    }
    loop_timer_arm(s->hb, HTTP_SSE_HEARTBEAT_MS);
    return s;
}

void http_sse_shutdown(http_sse *s)
{
    if (!s)
        return;
    s->shutting_down = 1;
    for (sse_client *cl = s->clients; cl; cl = cl->next) {
        cl->closing = 1;
        client_resume(cl);
    }
}

void http_sse_free(http_sse *s)
{
    if (!s)
        return;
    /* MHD_stop_daemon() released every client through free_client(); detach any left anyway so a
     * late callback cannot reach freed memory. */
    for (sse_client *cl = s->clients; cl; cl = cl->next)
        cl->s = NULL;
    for (size_t i = 0; i < s->nrings; i++)
        for (int k = 0; k < METER_HISTORY; k++)
            event_unref(s->rings[i].ev[k]);
    free(s->rings);
    event_unref(s->preamble);
    loop_timer_del(s->hb);
    free(s);
}

static sse_ring *ring_for(http_sse *s, const meter *m, int create)
{
    for (size_t i = 0; i < s->nrings; i++)
        if (s->rings[i].m == m)
            return &s->rings[i];
    if (!create)
        return NULL;
    if (s->nrings == s->caprings) {
        size_t cap = s->caprings ? s->caprings * 2 : 4;
        sse_ring *r = realloc(s->rings, cap * sizeof *r);
        if (!r)
            return NULL;
        s->rings = r;
        s->caprings = cap;
    }
    sse_ring *r = &s->rings[s->nrings++];
    memset(r, 0, sizeof *r);
    r->m = m;
    return r;
}

int http_sse_publish(http_sse *s, const meter *m, uint64_t seq, const char *json, size_t len)
{
    char head[HTTP_SSE_ID_MAX + 48];
    int hn = snprintf(head, sizeof head, "id: %s:%" PRIu64 "\nevent: reading\ndata: ", m->name, seq);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return -EINVAL;
    sse_event *e = event_new(head, (size_t)hn, json, len, "\n\n", 2);
    if (!e)
        return -ENOMEM;
    sse_ring *r = ring_for(s, m, 1);
    if (r) {
        unsigned k = (unsigned)(seq % METER_HISTORY);
        event_unref(r->ev[k]);
        r->ev[k] = e;
        r->seq[k] = seq;
        e->refs++;
    }
    int resumed = 0;
    for (sse_client *cl = s->clients; cl; cl = cl->next)
        if (!cl->only || cl->only == m)
            resumed |= client_push(cl, e);
    event_unref(e);
    if (resumed && s->kick)
        s->kick(s->user);
    return 0;
}

void http_sse_remove(http_sse *s, const meter *m)
{
    for (size_t i = 0; i < s->nrings; i++) {
        if (s->rings[i].m != m)
            continue;
        for (int k = 0; k < METER_HISTORY; k++)
            event_unref(s->rings[i].ev[k]);
        s->rings[i] = s->rings[--s->nrings];
        break;
    }
    char text[METER_NAME_MAX + 64];
    int n = snprintf(text, sizeof text, "event: removed\ndata: {\"meter\":\"%s\"}\n\n", m->name);
    sse_event *e = n > 0 ? event_new(text, (size_t)n, NULL, 0, NULL, 0) : NULL;
    int resumed = 0;
    for (sse_client *cl = s->clients; cl; cl = cl->next) {
        if (cl->only && cl->only != m)
            continue;
        if (e)
            resumed |= client_push(cl, e);
        if (cl->only) {
            /* a suspended one must run to see its end */
            cl->ending = 1;
            resumed |= cl->suspended;
            client_resume(cl);
        }
    }
    event_unref(e);
    if (resumed && s->kick)
        s->kick(s->user);
}

size_t http_sse_identify(http_sse *s)
{
    static const char text[] = "event: identify\ndata: {}\n\n";
    sse_event *e = event_new(text, sizeof text - 1, NULL, 0, NULL, 0);
    size_t told = 0;
    int resumed = 0;
    for (sse_client *cl = s->clients; e && cl; cl = cl->next) {
        if (cl->closing || cl->ending)
            continue;
        resumed |= client_push(cl, e);
        told += !cl->closing; /* a full queue drops the client instead */
    }
    event_unref(e);
    if (resumed && s->kick)
        s->kick(s->user);
    return told;
}

/* MHD does not watch a suspended connection, so a client that went away would only be noticed
 * when a later write fails; our own watch for the peer's FIN ends the stream at once. */
static void on_peer_gone(void *user, int fd, uint32_t events)
{
    (void)fd;
    (void)events;
    sse_client *cl = user;
    cl->closing = 1;
    client_resume(cl);
    if (cl->s && cl->s->kick)
        cl->s->kick(cl->s->user);
}

/* MHD asks for stream bytes: hand over queued events, or suspend until there are some. */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_client *cl = cls;
    if (cl->closing || !cl->s)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = 0;
    while (cl->count > 0 && n < max) {
        sse_event *e = cl->q[cl->head];
        size_t take = e->len - cl->off;
        if (take > max - n)
            take = max - n;
        memcpy(buf + n, e->text + cl->off, take);
        n += take;
        cl->off += take;
        if (cl->off == e->len) {
            event_unref(e);
            cl->q[cl->head] = NULL;
            cl->head = (cl->head + 1) % HTTP_SSE_QUEUE_MAX;
            cl->count--;
            cl->off = 0;
        }
    }
    if (n == 0 && cl->ending)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == 0) {
        /* Nothing to send: returning 0 alone would make MHD poll us in a busy loop. */
        cl->suspended = 1;
        MHD_suspend_connection(cl->c);
        if (cl->fd >= 0 && cl->s)
            cl->gone = loop_watch_add(cl->s->l, cl->fd, EPOLLRDHUP, on_peer_gone, cl);
    }
    return (ssize_t)n;
}

static void free_client(void *cls)
{
    sse_client *cl = cls;
    loop_watch_del(cl->gone);
    while (cl->count > 0) {
        event_unref(cl->q[cl->head]);
        cl->head = (cl->head + 1) % HTTP_SSE_QUEUE_MAX;
        cl->count--;
    }
    http_sse *s = cl->s;
    if (s) {
        if (cl->prev)
            cl->prev->next = cl->next;
        else
            s->clients = cl->next;
        if (cl->next)
            cl->next->prev = cl->prev;
        s->nclients--;
    }
    meter_unref(cl->only);
    free(cl);
}

/* Parses "<meter>:<seq>"; returns 0 and fills name/seq, or -1. */
static int parse_id(const char *id, char *name, size_t cap, uint64_t *seq)
{
    const char *colon = strrchr(id, ':');
    if (!colon || colon == id || (size_t)(colon - id) >= cap || !colon[1])
        return -1;
    uint64_t v = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    memcpy(name, id, (size_t)(colon - id));
    name[colon - id] = '\0';
    *seq = v;
    return 0;
}

/* Queues the kept events of the meter named in last_event_id that are newer than its seq. A seq
 * beyond the newest kept one means p1d restarted and numbering began again: replay all kept. */
static void replay(http_sse *s, sse_client *cl, const char *last_event_id)
{
    char name[METER_NAME_MAX + 1];
    uint64_t last;
    if (parse_id(last_event_id, name, sizeof name, &last) < 0)
        return;
    sse_ring *r = NULL;
    for (size_t i = 0; i < s->nrings; i++)
        if (strcmp(s->rings[i].m->name, name) == 0)
            r = &s->rings[i];
    if (!r || (cl->only && cl->only != r->m))
        return;
    uint64_t newest = 0;
    for (int k = 0; k < METER_HISTORY; k++)
        if (r->ev[k] && r->seq[k] > newest)
            newest = r->seq[k];
    if (last > newest)
        last = 0;
    uint64_t from = newest >= METER_HISTORY ? newest - METER_HISTORY + 1 : 1;
    if (from <= last)
        from = last + 1;
    for (uint64_t q = from; q <= newest; q++) {
        unsigned k = (unsigned)(q % METER_HISTORY);
        if (r->ev[k] && r->seq[k] == q)
            client_push(cl, r->ev[k]);
    }
}

struct MHD_Response *http_sse_open(http_sse *s, struct MHD_Connection *c, const meter *only,
                                   const char *last_event_id)
{
    if (s->shutting_down)
        return NULL;
    sse_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->s = s;
    cl->c = c;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    cl->fd = ci ? ci->connect_fd : -1;
    /* Linux grows a socket's send buffer up to 4 MiB: a client that never reads would pin that
     * much kernel memory, minutes of events, before its queue fills. A small one keeps "behind"
     * close to what the queue says, as the relay does. */
    if (cl->fd >= 0) {
        int sndbuf = HTTP_SSE_SNDBUF;
        setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, read_events, cl, free_client);
    if (!resp) {
        free(cl);
        return NULL;
    }
    cl->only = only ? meter_ref(only) : NULL;
    cl->next = s->clients;
    if (s->clients)
        s->clients->prev = cl;
    s->clients = cl;
    s->nclients++;
    client_push(cl, s->preamble);
    if (last_event_id && *last_event_id)
        replay(s, cl, last_event_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    if (s->headers)
        s->headers(s->user, resp);
    return resp;
}

size_t http_sse_clients(const http_sse *s)
{
    return s ? s->nclients : 0;
}

uint64_t http_sse_dropped(const http_sse *s)
{
    return s ? s->dropped : 0;
}
