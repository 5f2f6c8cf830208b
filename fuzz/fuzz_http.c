/* fuzz_http.c: libFuzzer target: p1d's HTTP server as a client reaches it. The input is sent as
 * it is over a TCP connection on 127.0.0.1 to the real server (libmicrohttpd driven by the
 * daemon's loop, p1d's routing, Host and Origin checks, the JSON, HomeWizard, Prometheus and SSE
 * endpoints, and the history endpoints over a real SQLite store), which runs in a thread of this
 * process, so that its code is what the fuzzer measures and ASan watches. That server builds the
 * history and summary answers on its worker thread, as p1d does with a database in a file
 * (suspend, copy of the request, resume, reply).
 *
 * Every request gets either an HTTP/1.x status line with a status p1d or libmicrohttpd sends,
 * or the connection closed; and the server answers a plain GET /api/now with 200 afterwards
 * (checked every 64 inputs and after any input that got no status line). The first byte of an
 * input may pick another way in (it is not sent):
 *   0x01  a second server that asks for a bearer token or basic auth and lists its hosts and CORS
 *         origin: it never answers 200 to a request that holds neither credential;
 *   0x02  a third server without the worker, which answers history on the loop, one per run of
 *         libmicrohttpd (as p1d with --db :memory:);
 *   0x03  the first server, the input sent on BURST connections at once: more than its worker
 *         takes (the others wait suspended), half of the clients gone, some before their answer
 *         is built, some while it is (a reset, as a closed browser tab); every one kept gets a
 *         known status line or none;
 *   0x04  the same burst to the third server. */
#define _GNU_SOURCE
#include "history.h"
#include "http.h"
#include "loop.h"
#include "meter.h"
#include "sim_history.h"
#include "store.h"

#include <p1/p1.h>
#include <p1/reading.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX (1u << 20) /* bytes of reply read per input; the rest is dropped */
#define QUIET_MS  150        /* a reply that stops coming for this long is taken as complete */
#define FIRST_MS  500        /* no byte of a reply for this long: the input got none */
/* At most this long per exchange, and what the check that the server still serves waits for
 * its first byte: a history query under ASan on a loaded machine may take seconds. */
#define INPUT_MS 8000
/* Connections of a burst (0x03, 0x04): more than the worker's queue (HTTP_JOBS_MAX, 16). */
#define BURST 20

static void fail(const char *what, const uint8_t *data, size_t size, const char *reply, size_t n)
{
    fprintf(stderr, "fuzz_http: %s (input of %zu bytes)\n", what, size);
    fprintf(stderr, "--- request\n%.*s\n", (int)(size < 2000 ? size : 2000), (const char *)data);
    if (reply)
        fprintf(stderr, "--- reply\n%.*s\n", (int)(n < 2000 ? n : 2000), reply);
    abort();
}

/* ------------------------------------------------------------------------------------------ */
/* The server: one meter with a reading, a history store, in a thread running the loop.        */

static loop *lp;
static meters ms;
static store *db;
static history *hist;
static http *srv;     /* history answers on the worker thread */
static http *guarded; /* a token, basic auth, listed hosts, one CORS origin */
static http *onloop;  /* no worker: history answers on the loop */
static unsigned port, guarded_port, onloop_port;

/* The last telegram of the history, as the live meter's latest. */
static meter *live;
static void to_live(const p1_reading *r, const char *raw, size_t len)
{
    meter_accept(live, r, (const uint8_t *)raw, len, loop_wall_ms(), loop_now_ms());
}

static void *serve(void *arg)
{
    (void)arg;
    loop_run(lp);
    return NULL;
}

static void setup(void)
{
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    db = sim_history_open("fuzzhttp");
    lp = loop_new();
    if (!lp) {
        fprintf(stderr, "fuzz_http: no loop\n");
        abort();
    }
    meters_init(&ms);
    meter *m = meters_add(&ms, "home", "sim", "sim");
    if (!m)
        abort();
    live = m;
    /* a day, a telegram every 5 minutes from 2026-03-28 00:00 CET */
    sim_history_fill(db, "home", 1, 1774652400, 300, 288, to_live);
    hist = history_new(db, &ms, err, sizeof err);
    if (!hist) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    http_options o;
    http_options_default(&o);
    snprintf(o.listen, sizeof o.listen, "127.0.0.1:0");
    o.timeout_s = 2;
    o.route = history_route;
    o.route_user = hist;
    o.history = 1;
    onloop = http_new(lp, &ms, &o, err, sizeof err);
    if (!onloop) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    onloop_port = http_port(onloop);
    if (history_jobs(hist, &o.jobs, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_http: no worker: %s\n", err);
        abort();
    }
    srv = http_new(lp, &ms, &o, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    port = http_port(srv);
    memset(&o.jobs, 0, sizeof o.jobs);
    snprintf(o.token, sizeof o.token, "fuzz-token");
    snprintf(o.basic_user, sizeof o.basic_user, "user");
    snprintf(o.basic_pass, sizeof o.basic_pass, "pass");
    snprintf(o.cors_origin, sizeof o.cors_origin, "http://dash.example");
    snprintf(o.allowed_hosts, sizeof o.allowed_hosts, "p1d.example,*.home.example");
    guarded = http_new(lp, &ms, &o, err, sizeof err);
    if (!guarded) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    guarded_port = http_port(guarded);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, NULL) != 0)
        abort();
    pthread_detach(t);
}

/* ------------------------------------------------------------------------------------------ */
/* The client.                                                                                 */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new connection to the server on port `to` (TCP_NODELAY); -1 when none could be made. */
static int dial(unsigned to)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Sends the rest of req[0..n) (from sent) on fd, closes its sending side after it when
 * half_close, else once the reply begins (then a history request that waits for the worker reads
 * as its client gone, and is closed unanswered, in the first case always, in the second when
 * pipelined after the first), reads the reply into reply[cap] until the server closes, sends
 * nothing for first_ms at first or for QUIET_MS once it began, or INPUT_MS pass. Returns the bytes
 * read; leaves fd open. */
static size_t talk(int fd, const void *req, size_t n, size_t sent, int half_close, char *reply,
                   size_t cap, int first_ms)
{
    if (sent == n && half_close)
        shutdown(fd, SHUT_WR);
    size_t got = 0;
    int64_t start = now_ms(), last = start;
    struct pollfd p = {.fd = fd};
    while (now_ms() - start < INPUT_MS) {
        p.events = POLLIN | (sent < n ? POLLOUT : 0);
        if (poll(&p, 1, QUIET_MS) == 0) {
            if (sent == n && now_ms() - last >= (got > 0 ? QUIET_MS : first_ms))
                break;
            continue;
        }
        if ((p.revents & POLLOUT) && sent < n) {
            ssize_t w = send(fd, (const char *)req + sent, n - sent, MSG_NOSIGNAL);
            if (w < 0) {
                sent = n; /* the server closed: read what it said */
            } else {
                sent += (size_t)w;
            }
            if (sent == n && half_close)
                shutdown(fd, SHUT_WR);
            last = now_ms();
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char sink[4096];
            char *to = got < cap ? reply + got : sink;
            size_t room = got < cap ? cap - got : sizeof sink;
            ssize_t r = recv(fd, to, room, 0);
            if (r <= 0)
                break;
            if (!got && !half_close && sent == n)
                shutdown(fd, SHUT_WR); /* the server closes once it has answered */
            if (got < cap)
                got += (size_t)r;
            last = now_ms();
        }
    }
    return got;
}

/* 0 when req[0..n) starts with a GET or HEAD whose headers end in it: that client keeps its
 * sending side open until the reply begins, as one waiting for its answer does (talk()); any other
 * input closes it at once, so that the server does not wait for more. */
static int half_close_at_once(const void *req, size_t n)
{
    const char *r = req;
    int get = (n >= 4 && memcmp(r, "GET ", 4) == 0) || (n >= 5 && memcmp(r, "HEAD ", 5) == 0);
    return !get || !memmem(r, n, "\r\n\r\n", 4);
}

/* Sends req[0..n) on a new connection and reads the reply (talk()). Returns the bytes read, or
 * -1 when no connection could be made. */
static ssize_t exchange(unsigned to, const void *req, size_t n, char *reply, size_t cap,
                        int first_ms)
{
    int fd = dial(to);
    if (fd < 0)
        return -1;
    size_t got = talk(fd, req, n, 0, half_close_at_once(req, n), reply, cap, first_ms);
    close(fd);
    return (ssize_t)got;
}

/* Closes fd with a reset (SO_LINGER 0), as a browser tab closed mid-request. */
static void reset(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* 1 when reply starts with "HTTP/1.x NNN " and NNN is a status p1d or libmicrohttpd sends. */
static int status_line(const char *reply, size_t n, unsigned *status)
{
    if (n < 13 || memcmp(reply, "HTTP/1.", 7) != 0 || (reply[7] != '0' && reply[7] != '1') ||
        reply[8] != ' ' || reply[12] != ' ')
        return 0;
    *status = 0;
    for (int i = 9; i < 12; i++) {
        if (reply[i] < '0' || reply[i] > '9')
            return 0;
        *status = *status * 10 + (unsigned)(reply[i] - '0');
    }
    static const unsigned known[] = {100, 200, 204, 206, 301, 304, 400, 401, 403,
                                     404, 405, 406, 408, 411, 413, 414, 415, 416,
                                     417, 422, 429, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (*status == known[i])
            return 1;
    return 0;
}

/* The server still serves: a plain request for the meter's reading answers 200. */
static void still_serving(const uint8_t *data, size_t size)
{
    static const char probe[] = "GET /api/now HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Connection: close\r\n\r\n";
    static char reply[65536];
    unsigned status = 0;
    ssize_t n = exchange(port, probe, sizeof probe - 1, reply, sizeof reply, INPUT_MS);
    if (n < 0 || !status_line(reply, (size_t)n, &status) || status != 200)
        fail("the server stopped answering GET /api/now after this input", data, size, reply,
             n > 0 ? (size_t)n : 0);
}

/* 1 when req holds the guarded server's token or password somewhere (a 200 needs one of
 * them, except for the paths p1d keeps open: /healthz). */
static int credentials(const uint8_t *req, size_t n)
{
    static const char *const proofs[] = {"fuzz-token", "dXNlcjpwYXNz" /* user:pass */, "/healthz"};
    for (size_t i = 0; i < sizeof proofs / sizeof proofs[0]; i++)
        if (memmem(req, n, proofs[i], strlen(proofs[i])))
            return 1;
    return 0;
}

static char reply[REPLY_MAX];
static unsigned long inputs;

/* A known status line or nothing: what every reply must be. */
static int check_reply(const uint8_t *data, size_t size, size_t n, unsigned *status)
{
    int answered = n > 0 && status_line(reply, n, status);
    if (n > 0 && !answered)
        fail("a reply that does not start with a known HTTP status line", data, size, reply, n);
    return answered;
}

/* req[0..n) on BURST connections to port `to` at once: the odd ones are reset, half of them at
 * once and half once the first reply is in (their answers queued or being built); the others
 * read in turn, their sending side closed as talk() does. */
static void burst(unsigned to, const uint8_t *req, size_t n, const uint8_t *data, size_t size)
{
    int fd[BURST];
    size_t sent[BURST];
    for (int i = 0; i < BURST; i++) {
        fd[i] = dial(to);
        if (fd[i] < 0)
            fail("no connection to the server", data, size, NULL, 0);
        ssize_t w = n ? send(fd[i], req, n, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
        sent[i] = w > 0 ? (size_t)w : 0;
    }
    for (int i = 1; i < BURST; i += 4)
        reset(fd[i]);
    for (int i = 0; i < BURST; i += 2) {
        unsigned status = 0;
        size_t got = talk(fd[i], req, n, sent[i], half_close_at_once(req, n), reply, sizeof reply,
                          i ? QUIET_MS : FIRST_MS);
        close(fd[i]);
        check_reply(data, size, got, &status);
        if (i == 0)
            for (int k = 3; k < BURST; k += 4)
                reset(fd[k]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        setup();
    unsigned way = size > 0 && data[0] >= 0x01 && data[0] <= 0x04 ? data[0] : 0;
    const uint8_t *req = way ? data + 1 : data;
    size_t len = way ? size - 1 : size;
    if (way == 0x03 || way == 0x04) {
        burst(way == 0x03 ? port : onloop_port, req, len, data, size);
        still_serving(data, size);
        return 0;
    }
    unsigned to = way == 0x01 ? guarded_port : way == 0x02 ? onloop_port : port;
    ssize_t n = exchange(to, req, len, reply, sizeof reply, FIRST_MS);
    if (n < 0)
        fail("no connection to the server", data, size, NULL, 0);
    unsigned status = 0;
    int answered = check_reply(data, size, (size_t)n, &status);
    if (way == 0x01 && answered && status == 200 && !credentials(req, len))
        fail("the guarded server answered 200 without the token or the password", data, size, reply,
             (size_t)n);
    if (!answered || ++inputs % 64 == 0)
        still_serving(data, size);
    return 0;
}
