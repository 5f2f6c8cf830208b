/* p1_bench.c: `p1 bench`: decoding speed (parser + reading, as in the daemon) vs frame+CRC only. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p1/p1.h"
#include "p1/reading.h"

#include "p1.h"
#include "../lib/crc16.h" /* only to say which CRC path this CPU takes */
#include "../src/reading_json.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BENCH_STREAM_BYTES    (1u << 20)   /* built-in stream: about 1 MiB of telegrams */
#define BENCH_TELEGRAMS       10           /* distinct built-in telegrams */
#define BENCH_FILE_MAX        (256u << 20) /* largest FILE read into memory */
#define BENCH_CHUNK           (64 * 1024)  /* bytes per p1_execute(), like p1 decode's reads */
#define BENCH_SECONDS_DEFAULT 2.0
#define BENCH_SECONDS_MAX     600.0

/* Allocation counter. build/p1 is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * so every allocation made by code linked into p1 (libp1 included) passes through these; libc's
 * own internal allocations do not. A process-wide counter is the only place such a hook can
 * report to, hence the one static here. */
static unsigned long long bench_allocs;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    bench_allocs++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    bench_allocs++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    bench_allocs++;
    return __real_realloc(p, n);
}

typedef struct bench_ctx {
    p1_reading reading;
    uint64_t ok;
    uint64_t rejected;
    int64_t sink; /* folds every reading in, so the work cannot be optimised away */
    /* the first rejection: its code, stream offset and message */
    p1_error first_error;
    uint64_t first_offset;
    char first_msg[160];
} bench_ctx;

static void bench_on_begin(void *user, const p1_telegram *t)
{
    bench_ctx *c = user;
    p1_reading_begin(&c->reading, t);
}

static void bench_on_object(void *user, const p1_object *o)
{
    bench_ctx *c = user;
    p1_reading_add(&c->reading, o);
}

static void bench_on_end(void *user, const p1_telegram *t)
{
    bench_ctx *c = user;
    if (p1_reading_end(&c->reading, t) != P1_ERR_OK) {
        c->rejected++;
        if (c->first_error == P1_ERR_OK) {
            p1_telegram copy;
            const p1_telegram *v = p1_reading_verdict(&c->reading, t, &copy);
            c->first_error = v->error;
            c->first_offset = v->error_offset;
            reading_json_message(v, &c->reading, c->first_msg, sizeof c->first_msg);
        }
        return;
    }
    c->ok++;
    const p1_reading *r = &c->reading;
    c->sink += (r->import_total != P1_ABSENT ? r->import_total : 0) +
               (r->power_net != P1_ABSENT ? r->power_net : 0) + r->nobjects + t->crc_computed;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 2 < cap; s++) {
        out[o++] = hex[(unsigned char)*s >> 4];
        out[o++] = hex[(unsigned char)*s & 15];
    }
    out[o] = '\0';
}

/* One realistic DSMR 5.0 three-phase telegram with gas, a failure log and a text message; `i`
 * varies the values. Returns its length (CRC and CR LF included), 0 if cap is too small. */
static size_t compose_telegram(char *out, size_t cap, int i)
{
    static const char *const texts[] = {
        "Onderhoud aan het net gepland op zaterdag tussen 09:00 en 12:00 uur.",
        "Uw meter is op afstand uitgelezen. Er is geen actie nodig.",
        "Storing verholpen. Excuses voor het ongemak, uw netbeheerder.",
    };
    char text[160], texthex[320];
    snprintf(text, sizeof text, "%s #%d", texts[i % 3], i);
    hex_encode(text, texthex, sizeof texthex);
    int imp1 = 12345678 + i * 1913, imp2 = 9876543 + i * 2711;
    int exp1 = 1234567 + i * 377, exp2 = 2345678 + i * 1009;
    int p1w = 321 + i * 97, p2w = 1200 + i * 13, p3w = 40 + i * 211;
    int n = snprintf(
        out, cap,
        "/ISk5\\2MT382-1000\r\n"
        "\r\n"
        "1-3:0.2.8(50)\r\n"
        "0-0:1.0.0(2403151423%02dW)\r\n"
        "0-0:96.1.1(4530303334303031353937333736353132)\r\n"
        "1-0:1.8.1(%06d.%03d*kWh)\r\n"
        "1-0:1.8.2(%06d.%03d*kWh)\r\n"
        "1-0:2.8.1(%06d.%03d*kWh)\r\n"
        "1-0:2.8.2(%06d.%03d*kWh)\r\n"
        "0-0:96.14.0(%04d)\r\n"
        "1-0:1.7.0(%02d.%03d*kW)\r\n"
        "1-0:2.7.0(00.000*kW)\r\n"
        "0-0:96.7.21(%05d)\r\n"
        "0-0:96.7.9(%05d)\r\n"
        "1-0:99.97.0(2)(0-0:96.7.19)(230112091530W)(0000000240*s)(230804160207S)(%010d*s)\r\n"
        "1-0:32.32.0(%05d)\r\n"
        "1-0:52.32.0(00001)\r\n"
        "1-0:72.32.0(00000)\r\n"
        "1-0:32.36.0(00000)\r\n"
        "1-0:52.36.0(%05d)\r\n"
        "1-0:72.36.0(00000)\r\n"
        "0-0:96.13.0(%s)\r\n"
        "1-0:32.7.0(%03d.%d*V)\r\n"
        "1-0:52.7.0(%03d.%d*V)\r\n"
        "1-0:72.7.0(%03d.%d*V)\r\n"
        "1-0:31.7.0(%03d*A)\r\n"
        "1-0:51.7.0(%03d*A)\r\n"
        "1-0:71.7.0(%03d*A)\r\n"
        "1-0:21.7.0(%02d.%03d*kW)\r\n"
        "1-0:41.7.0(%02d.%03d*kW)\r\n"
        "1-0:61.7.0(%02d.%03d*kW)\r\n"
        "1-0:22.7.0(00.000*kW)\r\n"
        "1-0:42.7.0(00.000*kW)\r\n"
        "1-0:62.7.0(00.000*kW)\r\n"
        "0-1:24.1.0(003)\r\n"
        "0-1:96.1.0(4730303132333435363738393031323334)\r\n"
        "0-1:24.2.1(2403151420%02dW)(%05d.%03d*m3)\r\n"
        "!",
        10 + i, imp1 / 1000, imp1 % 1000, imp2 / 1000, imp2 % 1000, exp1 / 1000, exp1 % 1000,
        exp2 / 1000, exp2 % 1000, 1 + i % 2, (p1w + p2w + p3w) / 1000, (p1w + p2w + p3w) % 1000,
        4 + i, 2 + i / 3, 7200 + i * 61, i % 4, i % 3, texthex, 229 + i % 4, i % 10, 230 - i % 3,
        (i * 7) % 10, 231 + i % 2, (i * 3) % 10, 1 + i % 3, 5 + i % 2, i % 2, p1w / 1000,
        p1w % 1000, p2w / 1000, p2w % 1000, p3w / 1000, p3w % 1000, i * 5, 12785 + i * 3,
        (i * 123) % 1000);
    if (n < 0 || (size_t)n + 7 > cap)
        return 0;
    uint16_t crc = p1_crc16(0, out, (size_t)n);
    int m = snprintf(out + n, cap - (size_t)n, "%04X\r\n", crc);
    return (size_t)n + (size_t)m;
}

/* Built-in stream: the BENCH_TELEGRAMS telegrams repeated up to about BENCH_STREAM_BYTES. */
static unsigned char *build_stream(size_t *len, size_t *avg)
{
    char tel[BENCH_TELEGRAMS][2048];
    size_t tlen[BENCH_TELEGRAMS], sum = 0;
    for (int i = 0; i < BENCH_TELEGRAMS; i++) {
        tlen[i] = compose_telegram(tel[i], sizeof tel[i], i);
        if (tlen[i] == 0)
            return NULL;
        sum += tlen[i];
    }
    *avg = sum / BENCH_TELEGRAMS;
    unsigned char *buf = malloc(BENCH_STREAM_BYTES + sizeof tel[0]);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (int i = 0; o < BENCH_STREAM_BYTES; i = (i + 1) % BENCH_TELEGRAMS) {
        memcpy(buf + o, tel[i], tlen[i]);
        o += tlen[i];
    }
    *len = o;
    return buf;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "p1 bench: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= BENCH_FILE_MAX) {
                fprintf(stderr, "p1 bench: %s: larger than %u MiB\n", path, BENCH_FILE_MAX >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            unsigned char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "p1 bench: %s: %s\n", path, strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

/* One full pass: parser + reading over the whole buffer, fed in BENCH_CHUNK pieces. */
static void decode_pass(p1_parser *p, const unsigned char *buf, size_t len)
{
    for (size_t o = 0; o < len; o += BENCH_CHUNK)
        p1_execute(p, buf + o, len - o < BENCH_CHUNK ? len - o : BENCH_CHUNK);
    p1_finish(p);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The least any decoder must do: find '/' at a line start and the "\n!" end line with memchr,
 * CRC '/'..'!' and compare with the hex after '!'. Returns the frames found; *good counts those
 * whose CRC matched. */
static uint64_t crc_pass(const unsigned char *buf, size_t len, uint64_t *good)
{
    uint64_t frames = 0;
    size_t o = 0;
    while (o < len) {
        const unsigned char *s = memchr(buf + o, '/', len - o);
        if (!s)
            break;
        size_t start = (size_t)(s - buf);
        if (start > 0 && buf[start - 1] != '\n') {
            o = start + 1;
            continue;
        }
        size_t e = start + 1;
        const unsigned char *bang = NULL;
        while (e < len) {
            bang = memchr(buf + e, '!', len - e);
            if (!bang || buf[bang - buf - 1] == '\n')
                break;
            e = (size_t)(bang - buf) + 1;
            bang = NULL;
        }
        if (!bang)
            break;
        size_t end = (size_t)(bang - buf);
        uint16_t crc = p1_crc16(0, buf + start, end - start + 1);
        unsigned sent = 0;
        int digits = 0, h;
        while (digits < 4 && end + 1 + (size_t)digits < len &&
               (h = hexval(buf[end + 1 + (size_t)digits])) >= 0) {
            sent = sent << 4 | (unsigned)h;
            digits++;
        }
        frames++;
        if (digits > 0 && sent == crc)
            (*good)++;
        o = end + 1;
    }
    return frames;
}

/* The structure of the bytes and nothing more: every line end and every '(' found, 16 bytes per
 * step with SSE2 (a byte at a time elsewhere), and the byte after each one read. A decoder must
 * at least do this for every object, so crc_pass() plus this scan is a floor under any full
 * decode. The bytes read are folded into *sink. */
static void structure_scan(const unsigned char *buf, size_t len, uint64_t *sink)
{
    uint64_t acc = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i lf = _mm_set1_epi8('\n'), open = _mm_set1_epi8('(');

    for (; len - i > 16; i += 16) { /* > 16: the byte after a hit is always inside buf */
        __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(d, lf), _mm_cmpeq_epi8(d, open)));

        for (; m; m &= m - 1)
            acc += buf[i + (size_t)__builtin_ctz(m) + 1];
    }
#endif
    for (; i + 1 < len; i++)
        if (buf[i] == '\n' || buf[i] == '(')
            acc += buf[i + 1];
    *sink += acc;
}

static const char bench_usage[] =
    "Usage: p1 bench [--seconds S] [FILE]\n"
    "Decode FILE (or a built-in ~1 MiB stream of DSMR 5 three-phase telegrams with gas, a failure\n"
    "log and a text message) from memory for about S seconds (default 2): parser, CRC check and\n"
    "reading, as the daemon runs them, without JSON. Then time a frame+CRC-only pass over the\n"
    "same bytes for half as long, and the same pass plus a scan that finds every line end and\n"
    "every '(' and decodes nothing: a floor under any decoder. The last line is machine-readable:\n"
    "  telegrams_per_s=N mb_per_s=N crc_only_telegrams_per_s=N ratio=R allocs_per_telegram=A\n"
    "ratio = telegrams_per_s / crc_only_telegrams_per_s (1.00: decoding costs no more than the\n"
    "CRC); allocs_per_telegram counts malloc/calloc/realloc calls during the decode (libp1: 0).\n"
    "\n"
    "Options:\n"
    "  --seconds S   time the full decode for about S seconds, 0 < S <= 600 (default 2)\n"
    "  -h, --help    show this help\n"
    "\n"
    "Exit status: 0 measured, 1 FILE unreadable or nothing in it decoded (no telegram, or every\n"
    "one rejected: the first rejection is named with its offset), 2 usage error.\n";

int p1_bench_main(int argc, char **argv)
{
    const char *path = NULL;
    double seconds = BENCH_SECONDS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int r;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(bench_usage, stdout);
            return 0;
        } else if ((r = p1_opt_value(argv, argc, &i, "--seconds", &val)) > 0) {
            char *end;
            seconds = strtod(val, &end);
            if (!*val || *end || !(seconds > 0 && seconds <= BENCH_SECONDS_MAX)) {
                fprintf(stderr, "p1 bench: --seconds needs a number in (0, 600], not '%s' (try "
                                "'p1 bench --help')\n", val);
                return 2;
            }
        } else if (r == P1_OPT_TWICE) {
            return p1_opt_twice("p1 bench", argv[i]);
        } else if (r < 0) {
            fprintf(stderr, "p1 bench: option '--seconds' needs a value (try 'p1 bench --help')\n");
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            static const char *const opts[] = {"--help", "--seconds"};
            return p1_unknown_option("p1 bench", argv[i], opts, sizeof opts / sizeof opts[0]);
        } else if (path) {
            fprintf(stderr, "p1 bench: more than one FILE: '%s' (try 'p1 bench --help')\n",
                    argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }

    size_t len = 0, avg = 0;
    unsigned char *buf = path ? read_file(path, &len) : build_stream(&len, &avg);
    if (!buf) {
        if (!path)
            fprintf(stderr, "p1 bench: cannot build the built-in stream\n");
        return 1;
    }
    bench_ctx *c = calloc(1, sizeof *c);
    p1_parser *p = malloc(sizeof *p);
    if (!c || !p) {
        fprintf(stderr, "p1 bench: out of memory\n");
        free(c);
        free(p);
        free(buf);
        return 1;
    }

    /* the allocation counter must be live, or "0 allocs" would mean nothing */
    unsigned long long before = bench_allocs;
    void *(*volatile alloc)(size_t) = malloc; /* an indirect call gcc cannot elide */
    void *probe = alloc(16);
    int counting = bench_allocs != before;
    free(probe);

    p1_settings settings = {.crc = P1_CRC_OPTIONAL};
    p1_callbacks cb = {bench_on_begin, bench_on_object, bench_on_end};
    p1_parser_init(p, &settings, &cb, c);

    /* warm-up pass, which also tells how many telegrams one pass holds */
    decode_pass(p, buf, len);
    uint64_t per_pass = c->ok + c->rejected, rejected_per_pass = c->rejected;
    if (c->ok == 0) {
        /* timing a parser that only rejects measures nothing a user wants to know */
        const char *what = path ? path : "the stream";
        if (per_pass == 0)
            fprintf(stderr, "p1 bench: nothing in %s decoded: no telegram found\n", what);
        else
            fprintf(stderr, "p1 bench: nothing in %s decoded: %s%llu telegram%s rejected, %s "
                            "offset %llu: %s: %s\n",
                    what, per_pass == 1 ? "its " : "all ", (unsigned long long)per_pass,
                    per_pass == 1 ? " was" : "s were", per_pass == 1 ? "at" : "the first at",
                    (unsigned long long)c->first_offset, p1_error_name(c->first_error),
                    c->first_msg);
        free(c);
        free(p);
        free(buf);
        return 1;
    }

    c->ok = c->rejected = 0;
    unsigned long long allocs0 = bench_allocs;
    uint64_t passes = 0;
    double t0 = now_s(), t1;
    do {
        decode_pass(p, buf, len);
        passes++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    unsigned long long allocs = bench_allocs - allocs0;
    double full_s = t1 - t0;
    uint64_t telegrams = c->ok + c->rejected;

    uint64_t crc_good = 0, crc_passes = 0, crc_telegrams = 0;
    double c0 = now_s(), c1;
    do {
        crc_telegrams += crc_pass(buf, len, &crc_good);
        crc_passes++;
        c1 = now_s();
    } while (c1 - c0 < seconds / 2);
    double crc_s = c1 - c0;

    uint64_t floor_passes = 0, floor_sink = 0, lines = 0;
    for (const unsigned char *q = buf; (q = memchr(q, '\n', len - (size_t)(q - buf))); q++)
        lines++;
    double f0 = now_s(), f1;
    do {
        crc_pass(buf, len, &floor_sink);
        structure_scan(buf, len, &floor_sink);
        floor_passes++;
        f1 = now_s();
    } while (f1 - f0 < seconds / 2);
    double floor_s = f1 - f0;

    double tps = (double)telegrams / full_s;
    double mbps = (double)len * (double)passes / full_s / 1e6;
    double crc_tps = (double)crc_telegrams / crc_s;
    double ratio = crc_tps > 0 ? tps / crc_tps : 0;
    volatile int64_t sink = c->sink + (int64_t)crc_good + (int64_t)floor_sink;
    /* the floor per telegram, and what ratio 0.5 would leave a decoder beyond it */
    double floor_us = floor_s * 1e6 / ((double)floor_passes * (double)per_pass);
    double crc_us = crc_tps > 0 ? 1e6 / crc_tps : 0;
    double lines_per_telegram = (double)lines / (double)per_pass;
    double left_ns = (2 * crc_us - floor_us) * 1e3;

    printf("input: %s, %zu bytes, %llu telegrams per pass (%llu rejected)\n",
           path ? path : "built-in DSMR 5.0 stream", len, (unsigned long long)per_pass,
           (unsigned long long)rejected_per_pass);
    if (!path)
        printf("built-in telegrams: %d distinct, %zu bytes on average\n", BENCH_TELEGRAMS, avg);
    printf("full decode (parser + CRC + reading): %llu passes in %.3f s, %.0f telegrams/s, %.1f "
           "MB/s, %.2f us/telegram\n",
           (unsigned long long)passes, full_s, tps, mbps, 1e6 / tps);
    int clmul = 0;
#ifdef CRC16_CLMUL
    clmul = crc16_clmul_ok();
#endif
    printf("frame + CRC only: %llu passes in %.3f s, %.0f telegrams/s (%llu CRC matches)\n",
           (unsigned long long)crc_passes, crc_s, crc_tps, (unsigned long long)crc_good);
    printf("CRC path, in all passes: %s\n",
           clmul ? "carry-less multiplication (PCLMULQDQ)" : "table loads (slicing-by-16)");
    printf("floor: frame + CRC + finding every line end and '(' (%s), nothing decoded: %.3f "
           "us/telegram, ratio %.2f\n",
#ifdef __SSE2__
           "16 bytes per step",
#else
           "a byte at a time",
#endif
           floor_us, floor_us > 0 ? crc_us / floor_us : 0);
    printf("at ratio 0.50 a decoder would have %.0f ns per telegram beyond the floor, %.1f ns for "
           "each of its %.1f lines\n",
           left_ns, lines_per_telegram > 0 ? left_ns / lines_per_telegram : 0, lines_per_telegram);
    printf("allocations during the decode: %s%llu (checksum %lld)\n",
           counting ? "" : "not counted (link without --wrap=malloc), ", allocs, (long long)sink);
    char allocs_s[32];
    if (!counting)
        snprintf(allocs_s, sizeof allocs_s, "-1");
    else if (allocs == 0)
        snprintf(allocs_s, sizeof allocs_s, "0");
    else
        snprintf(allocs_s, sizeof allocs_s, "%.3f", (double)allocs / (double)telegrams);
    printf("telegrams_per_s=%.0f mb_per_s=%.0f crc_only_telegrams_per_s=%.0f ratio=%.2f "
           "allocs_per_telegram=%s\n",
           tps, mbps, crc_tps, ratio, allocs_s);
    free(c);
    free(p);
    free(buf);
    return 0;
}
