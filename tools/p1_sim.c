/* p1_sim.c: `p1 sim`, simulated DSMR 5 meters streaming to stdout, a pseudo-terminal or TCP. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../src/civil.h"
#include "../src/sim.h"
#include "p1.h"
#include "p1/crypt.h"

#define SIM_FRAME_HEAD    18 /* 0xDB 0x08, system title, 0x82 + length, security byte, counter */
#define SIM_FRAME_TAG     12 /* GCM tag bytes (security 0x30) */
#define SIM_FRAME_MAX     (SIM_OUT_MAX + SIM_FRAME_HEAD + SIM_FRAME_TAG) /* one sim_emit() */
#define SIM_METERS_MAX    4096              /* --meters: one listener each */
#define SIM_CLIENTS_MAX   64                /* connected clients per meter */
#define SIM_CLIENT_BUF    (4 * SIM_FRAME_MAX) /* a client further behind than this is dropped */
#define SIM_DRAIN_MS      2000 /* after --count: how long clients may take to read the rest */
#define SIM_STAGGER_SLOTS 100  /* meters send in up to this many groups spread over a second */
#define SIM_HOST_MAX      255
#define SIM_SEED_MAX      2147483647 /* as p1d's sim:SEED, so each household runs in both */

/* The only global: set by SIGINT/SIGTERM, read by the loops, which then exit cleanly. */
static volatile sig_atomic_t sim_stop;

static void on_signal(int sig)
{
    (void)sig;
    sim_stop = 1;
}

typedef enum out_kind { OUT_STDOUT, OUT_PTY, OUT_TCP } out_kind;

typedef struct cli {
    sim_options so;
    uint64_t count; /* 0 = unbounded */
    int realtime;   /* -1 = the output's default */
    out_kind out;
    char host[SIM_HOST_MAX + 1];
    unsigned port;
    unsigned meters;
    char meter_id[SIM_ID_MAX + 1];
    int encrypt;    /* --key: every telegram goes out in an encrypted frame */
    p1_crypt crypt; /* its keys */
} cli;

static const char usage_text[] =
    "usage: p1 sim [options]\n"
    "Simulates a DSMR 5.0 three-phase Dutch household meter with gas and solar panels and writes\n"
    "its telegrams (CRC-16 checked, meter time in CET/CEST) to stdout, a pty or TCP clients.\n"
    "\n"
    "  --seed N            household, ids and counters follow from N, 0..2147483647 (default\n"
    "                      1; p1d's sim:N is the same household)\n"
    "  --start TIME|now    time of the first telegram: ISO-8601 (2024-06-01T12:00:00Z, +02:00,\n"
    "                      no zone = meter time CET/CEST), @UNIXSECONDS or now (default)\n"
    "  --interval S        simulated seconds between telegrams (default 1)\n"
    "  --count N           stop after N telegrams (per meter), N >= 1; without it: run until\n"
    "                      interrupted\n"
    "  --realtime          pace telegrams at the interval (default for pty and tcp)\n"
    "  --fast              as fast as possible (default for stdout)\n"
    "  --faults LIST       crc=R,truncate=R,garbage=R: per-telegram probability, R as 0.01 or 1%\n"
    "  --out -|pty|tcp:ADDR:PORT\n"
    "                      stdout (default); a new pseudo-terminal (its path is printed on\n"
    "                      stderr); or a TCP listener, every client gets the stream from the\n"
    "                      moment it connects (PORT 0 picks a free port, printed on stderr)\n"
    "  --meters N          with tcp: N meters on ports PORT..PORT+N-1, each with seed SEED+i\n"
    "  --phases 1|3        single- or three-phase meter (default 3)\n"
    "  --no-gas            no gas meter on M-Bus channel 1\n"
    "  --no-solar          no solar panels\n"
    "  --meter-id ID       equipment id (printable ASCII, up to 32 characters)\n"    "  --key HEX           send every telegram encrypted, as a Luxembourg Smarty meter does: a\n"
    "                      0xDB frame (AES-128-GCM with a tag, security byte 0x30), system title\n"
    "                      SIM + the seed, frame counter 1, 2, ...; HEX is 32 hex digits; --faults\n"
    "                      apply to the telegram inside the frame\n"
    "  --ak HEX            authentication key of the frames (default " P1_CRYPT_DEFAULT_AK ")\n"
    "  --help              this text\n"
    "Exit status: 0 done or interrupted, 1 runtime error, 2 usage error.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "p1 sim: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try 'p1 sim --help')\n");
    return 2;
}

/* ---- argument parsing -------------------------------------------------------------------- */

/* Every option, for the suggestion of an unknown one. */
static const char *const sim_opts[] = {"--help",     "--seed",     "--start",  "--interval",
                                       "--count",    "--realtime", "--fast",   "--faults",
                                       "--out",      "--meters",   "--phases", "--no-gas",
                                       "--no-solar", "--meter-id", "--key",    "--ak"};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* ISO-8601 as civil_parse() reads it, "@unix" or "now". A time without a zone is the meter's
 * own (CET/CEST); the autumn hour that happens twice is its later pass, as everywhere in p1d,
 * and one in the spring gap is CIVIL_PARSE_GAP. */
static int parse_start(const char *s, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = (int64_t)time(NULL);
        return 0;
    }
    if (s[0] == '@') {
        uint64_t v;
        if (parse_u64(s + 1, (uint64_t)INT64_MAX, &v) < 0)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    return civil_parse(s, CIVIL_PARSE_EXISTING, out);
}

/* A probability "0.05", "1", "5%" or "0.5%" as parts per million. */
static int parse_rate(const char *s, uint32_t *out)
{
    uint64_t ip = 0, frac = 0;
    int nfrac = 0, any = 0;
    for (; *s >= '0' && *s <= '9'; s++, any = 1) {
        ip = ip * 10 + (uint64_t)(*s - '0');
        if (ip > 100)
            return -1;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, any = 1) {
            if (nfrac < 6) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                nfrac++;
            }
        }
    }
    for (; nfrac < 6; nfrac++)
        frac *= 10;
    if (!any)
        return -1;
    uint64_t micro = ip * 1000000 + frac;
    if (*s == '%') {
        s++;
        micro /= 100;
    }
    if (*s || micro > SIM_RATE_ONE)
        return -1;
    *out = (uint32_t)micro;
    return 0;
}

static int parse_faults(const char *s, sim_options *o)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        uint32_t *dst = strcmp(item, "crc") == 0        ? &o->fault_crc
                        : strcmp(item, "truncate") == 0 ? &o->fault_truncate
                        : strcmp(item, "garbage") == 0  ? &o->fault_garbage
                                                        : NULL;
        if (!dst || parse_rate(eq + 1, dst) < 0)
            return -1;
    }
    return 0;
}

/* "-", "pty", "tcp:HOST:PORT" or "tcp:[V6]:PORT". */
static int parse_out(const char *s, cli *c)
{
    if (strcmp(s, "-") == 0 || strcmp(s, "stdout") == 0) {
        c->out = OUT_STDOUT;
        return 0;
    }
    if (strcmp(s, "pty") == 0) {
        c->out = OUT_PTY;
        return 0;
    }
    if (strncmp(s, "tcp:", 4) != 0)
        return -1;
    s += 4;
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl > SIM_HOST_MAX)
        return -1;
    uint64_t port;
    if (parse_u64(colon + 1, 65535, &port) < 0)
        return -1;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = (unsigned)port;
    c->out = OUT_TCP;
    return 0;
}

/* Returns 0, 1 when --help was printed, or 2 on a usage error (already reported). */
static int parse_args(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof *c);
    sim_options_default(&c->so);
    c->so.start = (int64_t)time(NULL);
    c->realtime = -1;
    c->meters = 1;
    const char *key = NULL, *ak = NULL;
    char seen[16][32]; /* the options with a value given so far: each takes one */
    size_t nseen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name)
            return p1_unknown_option("p1 sim", a, sim_opts, sizeof sim_opts / sizeof sim_opts[0]);
        memcpy(name, a, nl);
        name[nl] = '\0';
        int takes = strcmp(name, "--seed") == 0 || strcmp(name, "--start") == 0 ||
                    strcmp(name, "--interval") == 0 || strcmp(name, "--count") == 0 ||
                    strcmp(name, "--faults") == 0 || strcmp(name, "--out") == 0 ||
                    strcmp(name, "--meters") == 0 || strcmp(name, "--phases") == 0 ||
                    strcmp(name, "--meter-id") == 0 || strcmp(name, "--key") == 0 ||
                    strcmp(name, "--ak") == 0;
        for (size_t k = 0; takes && k < nseen; k++)
            if (strcmp(seen[k], name) == 0)
                return p1_opt_twice("p1 sim", name);
        if (takes && nseen < sizeof seen / sizeof seen[0])
            memcpy(seen[nseen++], name, nl + 1);
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage_error("option '%s' needs a value", name);
        } else if (eq) {
            return usage_error("option '%s' takes no value", name);
        }
        uint64_t u;
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        } else if (strcmp(name, "--seed") == 0) {
            if (parse_u64(val, SIM_SEED_MAX, &u) < 0)
                return usage_error("--seed: '%s' is not a whole number 0..2147483647", val);
            c->so.seed = u;
        } else if (strcmp(name, "--start") == 0) {
            int rc = parse_start(val, &c->so.start);
            if (rc == CIVIL_PARSE_GAP)
                /* the simulated meter is Dutch: its local time is CET whatever the calendar */
                return usage_error("--start: '%s' does not exist in local time (CET/CEST): the "
                                   "clocks go from 02:00 to 03:00 that day; give an offset "
                                   "(+01:00 or +02:00)",
                                   val);
            if (rc < 0)
                return usage_error("--start: '%s' is not now, @SECONDS or an ISO-8601 time", val);
        } else if (strcmp(name, "--interval") == 0) {
            if (parse_u64(val, SIM_INTERVAL_MAX, &u) < 0 || u == 0)
                return usage_error("--interval: '%s' is not a whole number of seconds 1..86400",
                                   val);
            c->so.interval = (uint32_t)u;
        } else if (strcmp(name, "--count") == 0) {
            if (parse_u64(val, UINT64_MAX, &u) < 0 || u == 0)
                return usage_error("--count: '%s' is not a whole number of telegrams from 1 (leave "
                                   "--count out to run until interrupted)",
                                   val);
            c->count = u;
        } else if (strcmp(name, "--realtime") == 0) {
            c->realtime = 1;
        } else if (strcmp(name, "--fast") == 0) {
            c->realtime = 0;
        } else if (strcmp(name, "--faults") == 0) {
            if (parse_faults(val, &c->so) < 0)
                return usage_error("--faults: '%s' is not crc=R,truncate=R,garbage=R with R a "
                                   "probability such as 0.01 or 1%%",
                                   val);
        } else if (strcmp(name, "--out") == 0) {
            if (parse_out(val, c) < 0)
                return usage_error("--out: '%s' is not -, pty or tcp:ADDR:PORT", val);
        } else if (strcmp(name, "--meters") == 0) {
            if (parse_u64(val, SIM_METERS_MAX, &u) < 0 || u == 0)
                return usage_error("--meters: '%s' is not a number 1..4096", val);
            c->meters = (unsigned)u;
        } else if (strcmp(name, "--phases") == 0) {
            if (strcmp(val, "1") != 0 && strcmp(val, "3") != 0)
                return usage_error("--phases: '%s' is not 1 or 3", val);
            c->so.phases = (uint8_t)(val[0] - '0');
        } else if (strcmp(name, "--no-gas") == 0) {
            c->so.gas = 0;
        } else if (strcmp(name, "--no-solar") == 0) {
            c->so.solar = 0;
        } else if (strcmp(name, "--meter-id") == 0) {
            size_t n = strlen(val);
            int ok = n > 0 && n <= SIM_ID_MAX;
            for (size_t k = 0; ok && k < n; k++)
                ok = val[k] >= ' ' && val[k] <= '~';
            if (!ok)
                return usage_error("--meter-id: '%s' is not 1-32 printable ASCII characters", val);
            memcpy(c->meter_id, val, n + 1);
            c->so.meter_id = c->meter_id;
        } else if (strcmp(name, "--key") == 0) {
            key = val;
        } else if (strcmp(name, "--ak") == 0) {
            ak = val;
        } else {
            return p1_unknown_option("p1 sim", a, sim_opts, sizeof sim_opts / sizeof sim_opts[0]);
        }
    }
    p1_settings unused;
    const char *bad = p1_crypt_options(key, ak, 0, &c->crypt, &unused);
    if (bad)
        return usage_error("%s", bad);
    c->encrypt = key != NULL;
    if (c->so.start < SIM_START_MIN || c->so.start >= SIM_START_MAX)
        return usage_error("--start: %s", "the meter prints two-digit years: use 2000..2099");
    if (c->meters > 1 && c->out != OUT_TCP)
        return usage_error("--meters: %s", "needs --out tcp:ADDR:PORT");
    if (c->meters > 1 && c->port == 0)
        return usage_error("--meters: %s", "needs a fixed PORT (consecutive ports from it)");
    if (c->meters > 1 && c->port + c->meters - 1 > 65535)
        return usage_error("--meters: %s", "PORT+N-1 exceeds 65535");
    if (c->meters > 1 && c->so.meter_id)
        return usage_error("--meter-id: %s", "cannot give one id to several meters");
    if (c->realtime < 0)
        c->realtime = c->out != OUT_STDOUT;
    return 0;
}

/* ---- time --------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps until the monotonic deadline (ms) or a signal; returns -1 when asked to stop. */
static int sleep_until(int64_t deadline)
{
    while (!sim_stop) {
        int64_t now = mono_ms();
        if (now >= deadline)
            return 0;
        struct timespec ts = {(time_t)((deadline - now) / 1000),
                              (long)((deadline - now) % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- encryption --------------------------------------------------------------------------- */

/* Wraps plain[n] in a general-glo-ciphering frame as a Smarty meter sends it: system title "SIM"
 * + the seed + 0x01, security 0x30 (AES-128-GCM, AAD = 0x30 || ak, 12-byte tag), into
 * out[SIM_FRAME_MAX]. Returns the frame's length, or 0 when OpenSSL fails. */
static size_t sim_encrypt(const p1_crypt *k, uint32_t seed, uint32_t counter, const char *plain,
                          size_t n, uint8_t *out)
{
    size_t body = 1 + 4 + n + SIM_FRAME_TAG;
    uint8_t iv[12], aad[1 + sizeof k->ak], *ct = out + SIM_FRAME_HEAD;
    uint8_t head[SIM_FRAME_HEAD] = {0xDB, 0x08, 'S', 'I', 'M', (uint8_t)(seed >> 24),
                                    (uint8_t)(seed >> 16), (uint8_t)(seed >> 8), (uint8_t)seed,
                                    0x01, 0x82, (uint8_t)(body >> 8), (uint8_t)body, 0x30,
                                    (uint8_t)(counter >> 24), (uint8_t)(counter >> 16),
                                    (uint8_t)(counter >> 8), (uint8_t)counter};
    int len = 0;
    memcpy(out, head, sizeof head);
    memcpy(iv, head + 2, 8);
    memcpy(iv + 8, head + 14, 4);
    aad[0] = 0x30;
    memcpy(aad + 1, k->ak, sizeof k->ak);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)sizeof iv, NULL) == 1 &&
             EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, iv) == 1 &&
             EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)sizeof aad) == 1 &&
             EVP_EncryptUpdate(ctx, ct, &len, (const uint8_t *)plain, (int)n) == 1 &&
             EVP_EncryptFinal_ex(ctx, ct + len, &len) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SIM_FRAME_TAG, ct + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? SIM_FRAME_HEAD + n + SIM_FRAME_TAG : 0;
}

/* The next telegram of s into out[SIM_FRAME_MAX], in frame number seq (0-based) with --key. */
static size_t sim_emit(const cli *c, sim *s, uint32_t seed, uint64_t seq, char *out)
{
    static char plain[SIM_OUT_MAX];
    if (!c->encrypt)
        return sim_next(s, out, SIM_OUT_MAX);
    size_t n = sim_next(s, plain, sizeof plain);
    return sim_encrypt(&c->crypt, seed, (uint32_t)(seq + 1), plain, n, (uint8_t *)out);
}

/* ---- stdout ------------------------------------------------------------------------------- */

static int run_stdout(const cli *c, sim *s)
{
    static char buf[SIM_FRAME_MAX];
    int64_t t0 = mono_ms();
    int64_t step = (int64_t)c->so.interval * 1000;
    for (uint64_t k = 0; !sim_stop && (c->count == 0 || k < c->count); k++) {
        if (c->realtime && sleep_until(t0 + (int64_t)k * step) < 0)
            break;
        size_t n = sim_emit(c, s, (uint32_t)c->so.seed, k, buf);
        if (fwrite(buf, 1, n, stdout) != n || (c->realtime && fflush(stdout) != 0))
            break;
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return p1_write_error("p1 sim", errno);
    return 0;
}

/* ---- pty ---------------------------------------------------------------------------------- */

static int run_pty(const cli *c, sim *s)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        fprintf(stderr, "p1 sim: cannot create a pseudo-terminal: %s\n", strerror(errno));
        if (m >= 0)
            close(m);
        return 1;
    }
    const char *name = ptsname(m);
    struct termios tio;
    /* raw 115200 8N1 like the real port, so the line discipline leaves CR LF alone */
    if (name && tcgetattr(m, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B115200);
        cfsetospeed(&tio, B115200);
        tcsetattr(m, TCSANOW, &tio);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    fprintf(stderr, "p1 sim: pty %s\n", name ? name : "?");
    static char buf[SIM_FRAME_MAX];
    int64_t t0 = mono_ms();
    int64_t step = (int64_t)c->so.interval * 1000;
    for (uint64_t k = 0; !sim_stop && (c->count == 0 || k < c->count); k++) {
        if (c->realtime && sleep_until(t0 + (int64_t)k * step) < 0)
            break;
        size_t n = sim_emit(c, s, (uint32_t)c->so.seed, k, buf);
        /* POLLHUP: nobody has the other end open; drop the telegram and anything queued so the
         * next reader starts with a fresh stream instead of stale telegrams */
        struct pollfd pf = {m, POLLOUT, 0};
        if (poll(&pf, 1, 0) >= 0 && (pf.revents & POLLHUP)) {
            tcflush(m, TCIOFLUSH);
            continue;
        }
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(m, buf + off, n - off);
            if (w <= 0)
                break; /* full (reader too slow) or hung up: the rest of this telegram is lost */
            off += (size_t)w;
        }
    }
    if (c->count)
        sleep_until(mono_ms() + 200); /* let the last telegram reach the reader before closing */
    close(m);
    return 0;
}

/* ---- tcp ---------------------------------------------------------------------------------- */

typedef struct client {
    int fd;
    size_t off, len; /* pending bytes buf[off..len) */
    char buf[SIM_CLIENT_BUF];
} client;

typedef struct tmeter {
    sim s;
    const cli *c;
    uint32_t seed;
    int lfd;
    unsigned port;
    int64_t next_ms;
    uint64_t made;
    client *clients[SIM_CLIENTS_MAX];
    size_t nclients;
} tmeter;

static void client_drop(tmeter *tm, size_t i)
{
    close(tm->clients[i]->fd);
    free(tm->clients[i]);
    tm->clients[i] = tm->clients[--tm->nclients];
}

/* Writes what the socket takes now; returns -1 when the client is gone. */
static int client_flush(client *cl)
{
    while (cl->off < cl->len) {
        ssize_t w = send(cl->fd, cl->buf + cl->off, cl->len - cl->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        cl->off += (size_t)w;
    }
    cl->off = cl->len = 0;
    return 0;
}

static int listen_on(const char *host, unsigned port, unsigned *bound)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "p1 sim: tcp:%s:%u: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "p1 sim: cannot listen on tcp:%s:%u: %s\n", host, port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

/* Lets --meters 1000 have its 1000 listeners and their clients. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void meter_emit(tmeter *tm, char *buf)
{
    size_t n = sim_emit(tm->c, &tm->s, tm->seed, tm->made, buf);
    tm->made++;
    for (size_t i = 0; i < tm->nclients;) {
        client *cl = tm->clients[i];
        if (cl->len + n > SIM_CLIENT_BUF) {
            fprintf(stderr, "p1 sim: port %u: dropping a client that does not keep up\n", tm->port);
            client_drop(tm, i);
            continue;
        }
        memcpy(cl->buf + cl->len, buf, n);
        cl->len += n;
        if (client_flush(cl) < 0) {
            client_drop(tm, i);
            continue;
        }
        i++;
    }
}

static void meter_accept(tmeter *tm)
{
    for (;;) {
        int fd = accept4(tm->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error such as EMFILE: try again next time */
        if (tm->nclients == SIM_CLIENTS_MAX) {
            close(fd);
            continue;
        }
        client *cl = malloc(sizeof *cl);
        if (!cl) {
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->off = cl->len = 0;
        tm->clients[tm->nclients++] = cl;
    }
}

static int run_tcp(const cli *c)
{
    raise_fd_limit();
    tmeter *ms = calloc(c->meters, sizeof *ms);
    struct pollfd *pfd = NULL;
    struct slot {
        tmeter *m;
        client *cl; /* NULL: the listener */
    } *slots = NULL;
    size_t maxfds = (size_t)c->meters * (1 + SIM_CLIENTS_MAX);
    pfd = calloc(maxfds, sizeof *pfd);
    slots = calloc(maxfds, sizeof *slots);
    int rc = 0;
    unsigned opened = 0;
    if (!ms || !pfd || !slots) {
        fprintf(stderr, "p1 sim: out of memory for %u meters\n", c->meters);
        rc = 1;
        goto done;
    }
    int64_t step = (int64_t)c->so.interval * 1000;
    int64_t t0 = mono_ms();
    int v6 = strchr(c->host, ':') != NULL;
    for (unsigned i = 0; i < c->meters; i++, opened++) {
        tmeter *tm = &ms[i];
        sim_options o = c->so;
        o.seed = c->so.seed + i;
        tm->c = c;
        tm->seed = (uint32_t)o.seed;
        if (sim_init(&tm->s, &o) < 0) {
            fprintf(stderr, "p1 sim: invalid simulator options\n");
            rc = 1;
            goto done;
        }
        tm->lfd = listen_on(c->host, c->port ? c->port + i : 0, &tm->port);
        if (tm->lfd < 0) {
            rc = 1;
            goto done;
        }
        /* spread the meters over the interval in groups, as real meters are not in step */
        unsigned slots_n = c->meters < SIM_STAGGER_SLOTS ? c->meters : SIM_STAGGER_SLOTS;
        tm->next_ms = t0 + (int64_t)(i % slots_n) * step / slots_n;
        if (c->meters <= 16)
            fprintf(stderr, "p1 sim: listening on tcp:%s%s%s:%u (meter %s)\n", v6 ? "[" : "",
                    c->host, v6 ? "]" : "", tm->port, tm->s.meter_id);
    }
    if (c->meters > 16)
        fprintf(stderr, "p1 sim: listening on tcp:%s%s%s:%u..%u (%u meters)\n", v6 ? "[" : "",
                c->host, v6 ? "]" : "", c->port, c->port + c->meters - 1, c->meters);

    static char buf[SIM_FRAME_MAX];
    int64_t drain_until = 0;
    while (!sim_stop) {
        int64_t now = mono_ms();
        int64_t next = INT64_MAX;
        int pending = 0;
        for (unsigned i = 0; i < c->meters; i++) {
            tmeter *tm = &ms[i];
            if (c->count && tm->made >= c->count)
                continue;
            while (now >= tm->next_ms && !(c->count && tm->made >= c->count)) {
                meter_emit(tm, buf);
                tm->next_ms += step;
                if (now - tm->next_ms > 10 * step)
                    tm->next_ms = now; /* suspended for a long time: do not send a burst */
            }
            if (!(c->count && tm->made >= c->count) && tm->next_ms < next)
                next = tm->next_ms;
        }
        size_t n = 0;
        for (unsigned i = 0; i < c->meters; i++) {
            tmeter *tm = &ms[i];
            pfd[n] = (struct pollfd){tm->lfd, POLLIN, 0};
            slots[n++] = (struct slot){tm, NULL};
            for (size_t k = 0; k < tm->nclients; k++) {
                client *cl = tm->clients[k];
                pending |= cl->len > 0;
                pfd[n] = (struct pollfd){cl->fd, (short)(POLLIN | (cl->len ? POLLOUT : 0)), 0};
                slots[n++] = (struct slot){tm, cl};
            }
        }
        if (next == INT64_MAX) { /* --count reached everywhere: drain, then leave */
            if (!drain_until)
                drain_until = now + SIM_DRAIN_MS;
            if (!pending || now >= drain_until)
                break;
            next = drain_until;
        }
        int timeout = next - now > 1000 ? 1000 : (int)(next - now);
        int r = poll(pfd, n, timeout < 0 ? 0 : timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "p1 sim: poll: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        for (size_t k = 0; r > 0 && k < n; k++) {
            if (!pfd[k].revents)
                continue;
            tmeter *tm = slots[k].m;
            client *cl = slots[k].cl;
            if (!cl) {
                meter_accept(tm);
                continue;
            }
            size_t idx = 0;
            while (idx < tm->nclients && tm->clients[idx] != cl)
                idx++;
            if (idx == tm->nclients)
                continue;
            int gone = (pfd[k].revents & (POLLERR | POLLNVAL)) != 0;
            if (!gone && (pfd[k].revents & (POLLIN | POLLHUP))) {
                char junk[512]; /* clients have nothing to say; EOF means they left */
                ssize_t got = recv(cl->fd, junk, sizeof junk, 0);
                gone = got == 0 ||
                       (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
            }
            if (!gone && (pfd[k].revents & POLLOUT))
                gone = client_flush(cl) < 0;
            if (gone)
                client_drop(tm, idx);
        }
    }
done:
    if (ms) {
        for (unsigned i = 0; i < opened; i++) {
            while (ms[i].nclients)
                client_drop(&ms[i], 0);
            if (ms[i].lfd >= 0)
                close(ms[i].lfd);
        }
    }
    free(ms);
    free(pfd);
    free(slots);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

int p1_sim_main(int argc, char **argv)
{
    cli c;
    int r = parse_args(argc, argv, &c);
    if (r == 1)
        return 0;
    if (r)
        return r;
    sim_stop = 0;
    install_signals();
    if (c.out == OUT_TCP)
        return run_tcp(&c);
    sim s;
    if (sim_init(&s, &c.so) < 0) {
        fprintf(stderr, "p1 sim: invalid simulator options\n");
        return 2;
    }
    return c.out == OUT_PTY ? run_pty(&c, &s) : run_stdout(&c, &s);
}
