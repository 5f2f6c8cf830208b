/* p1.c: the `p1` command: subcommand dispatch, and `p1 decode` (telegrams -> JSON objects). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "p1/crypt.h"
#include "p1/p1.h"
#include "p1/reading.h"

#include "../src/civil.h"
#include "../src/json.h"
#include "../src/reading_json.h"
#include "../src/store.h"
#include "../src/suggest.h"
#include "p1.h"

#define DECODE_READ_CHUNK   (64 * 1024) /* bytes per read(2) */
#define DECODE_JSON_MAX     (8u << 20)  /* bytes of one telegram's JSON; more is reported */
#define DECODE_JSON_INITIAL (64 * 1024)

/* State of one `p1 decode` run, shared by the parser callbacks. */
typedef struct decode_ctx {
    p1_reading reading;
    json_w out;  /* the telegram's whole JSON object */
    json_w objs; /* fragment: the "objects" elements, written as objects arrive */
    int began;   /* on_begin seen for the telegram being collected */
    int done;    /* --max reached: ignore the rest */
    int write_failed;
    int write_errno;    /* errno of that failure */
    int seven_bit;      /* --7bit: clear bit 7 of every byte (a 7E1 line captured as 8N1) */
    int parity_slash;   /* 0xAF seen: '/' with an even-parity bit, for the hint */
    int parity_cr;      /* 0x8D seen: CR with an even-parity bit */
    int gz_short;       /* gzip input that ended inside a member */
    uint64_t max; /* 0 = no limit */
    uint64_t telegrams;
    uint64_t rejected;
} decode_ctx;

static const char decode_usage[] =
    "Usage: p1 decode [OPTIONS] [FILE|-]\n"
    "Decode P1 (DSMR) telegrams from FILE (or standard input) and print one JSON object per\n"
    "telegram, one per line. The input may be any byte stream: a capture, a live serial port,\n"
    "encrypted (0xDB) frames, gzip-compressed input (offsets then count uncompressed bytes).\n"
    "Rejected telegrams are printed too (\"ok\": false) and named on standard error. The\n"
    "format is described in docs/DECODE.md. `p1 import` also reads LF-only and timestamped\n"
    "logs; decode reads the bytes as they are.\n"
    "\n"
    "Options:\n"
    "  --key HEX         decryption key (32 hex digits) for encrypted frames\n"
    "  --ak HEX          authentication key (default " P1_CRYPT_DEFAULT_AK ")\n"
    "  --skip-tag        do not verify the GCM tag; rely on the inner telegram CRC\n"
    "  --crc POLICY      required | optional (default) | ignore\n"
    "  --pretty          indent the JSON (still one object after another)\n"
    "  --max N           stop after N telegrams\n"
    "  --7bit            clear bit 7 of every byte: a capture of a 7E1 line (DSMR 2.2/3.0)\n"
    "                    taken at 8N1 carries the parity bit there\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0 every telegram decoded, 1 a telegram was rejected, no telegram was found in\n"
    "non-empty input, or reading/writing failed, 2 usage error.\n";

static void decode_on_begin(void *user, const p1_telegram *t)
{
    decode_ctx *c = user;
    if (c->done)
        return;
    p1_reading_begin(&c->reading, t);
    json_reset(&c->objs);
    c->began = 1;
}

static void decode_on_object(void *user, const p1_object *o)
{
    decode_ctx *c = user;
    if (c->done)
        return;
    if (!c->began) {
        p1_reading_init(&c->reading);
        json_reset(&c->objs);
        c->began = 1;
    }
    p1_reading_add(&c->reading, o);
    reading_json_object(&c->objs, o);
}

/* The telegram's object: verdict, objects in telegram order, then the named facts. */
static void decode_compose(decode_ctx *c, const p1_telegram *t)
{
    json_w *w = &c->out;
    json_reset(w);
    json_obj_begin(w);
    reading_json_telegram(w, t, &c->reading);
    json_key(w, "objects");
    json_arr_begin(w);
    json_splice(w, c->objs.buf, c->objs.len);
    json_arr_end(w);
    json_key(w, "reading");
    reading_json_reading(w, &c->reading);
    json_obj_end(w);
    if (json_ok(w) && json_ok(&c->objs))
        return;
    /* Only a telegram far beyond P1_TELEGRAM_MAX could get here; say so in valid JSON. */
    json_reset(w);
    json_obj_begin(w);
    reading_json_telegram(w, t, &c->reading);
    json_kv_str(w, "output_error", "JSON output exceeds DECODE_JSON_MAX bytes");
    json_obj_end(w);
}

static void decode_write_failed(decode_ctx *c)
{
    c->write_failed = 1;
    c->write_errno = errno;
}

static void decode_on_end(void *user, const p1_telegram *t)
{
    decode_ctx *c = user;
    if (c->done)
        return;
    if (!c->began) {
        /* frames rejected before a header (bad frame, no key, HDLC) come without on_begin */
        p1_reading_init(&c->reading);
        json_reset(&c->objs);
    }
    /* A bad value of a known object rejects a telegram the parser accepted (DECODE.md). */
    p1_telegram copy;
    p1_reading_end(&c->reading, t);
    t = p1_reading_verdict(&c->reading, t, &copy);
    decode_compose(c, t);
    c->began = 0;
    c->telegrams++;
    if (t->error != P1_ERR_OK) {
        char msg[160];
        c->rejected++;
        fprintf(stderr, "p1: offset %llu: %s: %s\n", (unsigned long long)t->error_offset,
                p1_error_name(t->error), reading_json_message(t, &c->reading, msg, sizeof msg));
    } else {
        char msg[160];
        uint64_t off;
        p1_error w = reading_json_warning(t, &c->reading, &off, msg, sizeof msg);
        if (w != P1_ERR_OK)
            fprintf(stderr,
                    "p1: offset %llu: warning: %s: %s; left out, the telegram is accepted "
                    "(its CRC is valid)\n",
                    (unsigned long long)off, p1_error_name(w), msg);
    }
    if (!c->write_failed &&
        (fwrite(c->out.buf, 1, c->out.len, stdout) != c->out.len || putchar('\n') == EOF))
        decode_write_failed(c);
    if (c->max && c->telegrams >= c->max)
        c->done = 1;
}

int p1_opt_value(char **argv, int argc, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0 || (a[n] != '=' && a[n] != '\0'))
        return 0;
    /* An earlier "--name" is that option too: a value that looks like one is refused below. */
    for (int k = 1; k < *i; k++)
        if (!strncmp(argv[k], name, n) && (argv[k][n] == '=' || argv[k][n] == '\0'))
            return P1_OPT_TWICE;
    /* An empty value is none: --db "$UNSET" would be a temporary database SQLite deletes at
     * close, an import into it stored and gone without a word */
    if (a[n] == '=') {
        *val = a + n + 1;
        return **val ? 1 : -1;
    }
    /* "--db -q": the value was forgotten; an option is not taken as one (a value that starts
     * with a dash and a letter is given as NAME=VALUE; "-" and "-5" are values) */
    const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!next || !*next ||
        (next[0] == '-' && ((next[1] >= 'a' && next[1] <= 'z') ||
                            (next[1] >= 'A' && next[1] <= 'Z') || next[1] == '-')))
        return -1;
    *val = argv[++*i];
    return 1;
}

int p1_opt_twice(const char *cmd, const char *arg)
{
    fprintf(stderr, "%s: %.*s given twice (try '%s --help')\n", cmd, (int)strcspn(arg, "="), arg,
            cmd);
    return 2;
}

int p1_db_kept(const char *cmd, const char *db)
{
    char file[PATH_MAX];
    if (store_file_path(db, file, sizeof file) != 0)
        return 0;
    fprintf(stderr, "%s: --db '%s' is a temporary (in-memory) database, deleted when %s ends: "
                    "the import would be lost; give the database's file (such as p1d.db)\n",
            cmd, db, cmd);
    return 2;
}

void p1_calendar_zone(const char *db)
{
    char tz[64];
    civil_use_system_zone(tz, sizeof tz);
    int z = db ? store_file_zone(db) : -1;
    if (z >= 0)
        civil_set_zone(z);
}

int p1_write_error(const char *cmd, int err)
{
    if (err == EPIPE) {
        clearerr(stdout);
        return 0;
    }
    fprintf(stderr, "%s: writing standard output: %s\n", cmd, err ? strerror(err) : "write error");
    return 1;
}

int p1_unknown_option(const char *cmd, const char *arg, const char *const *opts, size_t n)
{
    const char *hit = suggest_option(arg, opts, n);
    if (hit)
        fprintf(stderr, "%s: unknown option '%s' (did you mean '%s'?)\n", cmd, arg, hit);
    else
        fprintf(stderr, "%s: unknown option '%s' (try '%s --help')\n", cmd, arg, cmd);
    return 2;
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("p1 decode: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (try 'p1 decode --help')\n", stderr);
    return 2;
}

static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return -1;
    *out = v;
    return 0;
}

/* Gives n bytes of the stream to the parser (bit 7 cleared with --7bit, else watched for the
 * parity bits of a 7E1 line read as 8N1). */
static void decode_bytes(p1_parser *p, decode_ctx *c, unsigned char *b, size_t n)
{
    if (c->seven_bit) {
        for (size_t i = 0; i < n; i++)
            b[i] &= 0x7F;
    } else if (!c->parity_slash || !c->parity_cr) {
        c->parity_slash |= memchr(b, 0xAF, n) != NULL;
        c->parity_cr |= memchr(b, 0x8D, n) != NULL;
    }
    p1_execute(p, b, n);
}

/* Reads fd to its end in DECODE_READ_CHUNK pieces through the parser; flushes stdout after each
 * piece so a live port's telegrams show as they come. Input that starts as gzip (a capture
 * logrotate compressed; never a tty, whose noise may start so) is inflated on the way, member
 * after member. Returns bytes read, or
 * -1 on a read error or broken gzip data. */
static long long decode_stream(int fd, p1_parser *p, decode_ctx *c, const char *name)
{
    unsigned char *buf = malloc(DECODE_READ_CHUNK), *plain = NULL;
    long long total = 0;
    z_stream z;
    int gz = 0, gz_end = 0; /* gzip input; at the end of a member */
    memset(&z, 0, sizeof z);
    if (!buf) {
        fprintf(stderr, "p1: out of memory\n");
        return -1;
    }
    while (!c->done && !c->write_failed) {
        ssize_t n = read(fd, buf, DECODE_READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "p1: %s: %s\n", name, strerror(errno));
            total = -1;
            break;
        }
        if (n == 0)
            break;
        if (!total && n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b && !isatty(fd)) {
            plain = malloc(DECODE_READ_CHUNK);
            if (!plain || inflateInit2(&z, 15 + 16) != Z_OK) {
                fprintf(stderr, "p1: out of memory\n");
                total = -1;
                break;
            }
            gz = 1;
        }
        total += n;
        if (!gz) {
            decode_bytes(p, c, buf, (size_t)n);
        } else {
            z.next_in = buf;
            z.avail_in = (uInt)n;
            while (z.avail_in && total >= 0) {
                if (gz_end && inflateReset(&z) != Z_OK)
                    break;
                z.next_out = plain;
                z.avail_out = DECODE_READ_CHUNK;
                int rc = inflate(&z, Z_NO_FLUSH);
                gz_end = rc == Z_STREAM_END;
                if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
                    fprintf(stderr, "p1: %s: broken gzip data: %s\n", name,
                            z.msg ? z.msg : "inflate failed");
                    total = -1;
                }
                decode_bytes(p, c, plain, DECODE_READ_CHUNK - z.avail_out);
            }
            if (total < 0)
                break;
        }
        if (fflush(stdout) != 0)
            decode_write_failed(c);
    }
    if (gz && total >= 0 && !gz_end && !c->done && !c->write_failed) {
        fprintf(stderr, "p1: %s: the gzip data ends early\n", name);
        c->gz_short = 1;
    }
    if (total >= 0 && !c->done && !c->write_failed) {
        p1_finish(p);
        if (fflush(stdout) != 0)
            decode_write_failed(c);
    }
    if (gz)
        inflateEnd(&z);
    free(plain);
    free(buf);
    return total;
}

const char *p1_crypt_options(const char *key, const char *ak, int skip_tag, p1_crypt *crypt,
                             p1_settings *set)
{
    memset(crypt, 0, sizeof *crypt);
    if (!key)
        return ak ? "--ak needs --key" : skip_tag ? "--skip-tag needs --key" : NULL;
    if (p1_crypt_set_keys(crypt, key, ak) != 0)
        return "--key and --ak must be 32 hex digits each";
    crypt->skip_tag = (uint8_t)skip_tag;
    set->decrypt = p1_crypt_decrypt;
    set->decrypt_user = crypt;
    return NULL;
}

int p1_decode_main(int argc, char **argv)
{
    const char *key = NULL, *ak = NULL, *path = NULL, *val = NULL;
    int pretty = 0, skip_tag = 0, only_files = 0, seven_bit = 0;
    uint64_t max = 0;
    p1_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.crc = P1_CRC_OPTIONAL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
            if (path)
                return usage_error("more than one input: '%s'", a);
            path = a;
        } else if (strcmp(a, "--") == 0) {
            only_files = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(decode_usage, stdout);
            return 0;
        } else if (strcmp(a, "--pretty") == 0) {
            pretty = 1;
        } else if (strcmp(a, "--skip-tag") == 0) {
            skip_tag = 1;
        } else if (strcmp(a, "--7bit") == 0) {
            seven_bit = 1;
        } else if ((r = p1_opt_value(argv, argc, &i, "--key", &val)) != 0) {
            if (r == P1_OPT_TWICE)
                return p1_opt_twice("p1 decode", a);
            if (r < 0)
                return usage_error("%s needs a value", a);
            key = val;
        } else if ((r = p1_opt_value(argv, argc, &i, "--ak", &val)) != 0) {
            if (r == P1_OPT_TWICE)
                return p1_opt_twice("p1 decode", a);
            if (r < 0)
                return usage_error("%s needs a value", a);
            ak = val;
        } else if ((r = p1_opt_value(argv, argc, &i, "--crc", &val)) != 0) {
            if (r == P1_OPT_TWICE)
                return p1_opt_twice("p1 decode", a);
            if (r < 0)
                return usage_error("%s needs a value", a);
            if (strcmp(val, "required") == 0)
                settings.crc = P1_CRC_REQUIRED;
            else if (strcmp(val, "optional") == 0)
                settings.crc = P1_CRC_OPTIONAL;
            else if (strcmp(val, "ignore") == 0)
                settings.crc = P1_CRC_IGNORE;
            else
                return usage_error("--crc must be required, optional or ignore, not '%s'", val);
        } else if ((r = p1_opt_value(argv, argc, &i, "--max", &val)) != 0) {
            if (r == P1_OPT_TWICE)
                return p1_opt_twice("p1 decode", a);
            if (r < 0)
                return usage_error("%s needs a value", a);
            if (parse_count(val, &max) != 0)
                return usage_error("--max needs a positive count, not '%s'", val);
        } else {
            static const char *const opts[] = {"--help", "--pretty", "--skip-tag", "--7bit",
                                               "--key",  "--ak",     "--crc",      "--max"};
            return p1_unknown_option("p1 decode", a, opts, sizeof opts / sizeof opts[0]);
        }
    }

    p1_crypt crypt;
    const char *bad = p1_crypt_options(key, ak, skip_tag, &crypt, &settings);
    if (bad)
        return usage_error("%s", bad);
    if (key && seven_bit)
        return usage_error("%s", "--7bit and --key do not go together: encrypted frames use "
                                 "all 8 bits");

    int fd = 0;
    const char *name = "stdin";
    if (path && strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "p1: %s: %s\n", path, strerror(errno));
            return 1;
        }
        name = path;
    }

    decode_ctx *c = calloc(1, sizeof *c);
    p1_parser *p = malloc(sizeof *p);
    int flags = pretty ? JSON_PRETTY : 0;
    if (!c || !p || json_init_alloc(&c->out, DECODE_JSON_INITIAL, DECODE_JSON_MAX, flags) != 0 ||
        json_init_alloc(&c->objs, DECODE_JSON_INITIAL, DECODE_JSON_MAX, flags) != 0) {
        fprintf(stderr, "p1: out of memory\n");
        if (c) {
            json_free(&c->out);
            json_free(&c->objs);
        }
        free(c);
        free(p);
        if (fd > 0)
            close(fd);
        return 1;
    }
    /* objects are spliced into the "objects" array, two levels below the top */
    json_init_fragment(&c->objs, 2, 0);
    c->max = max;
    c->seven_bit = seven_bit;
    p1_callbacks cb = {decode_on_begin, decode_on_object, decode_on_end};
    p1_parser_init(p, &settings, &cb, c);

    long long total = decode_stream(fd, p, c, name);
    int status = 0;
    if (total < 0) {
        status = 1;
    } else if (c->write_failed && p1_write_error("p1", c->write_errno)) {
        status = 1;
    } else if (c->rejected > 0 || c->gz_short) {
        status = 1;
    } else if (total > 0 && c->telegrams == 0) {
        if (c->parity_slash && c->parity_cr && !key)
            fprintf(stderr, "p1: no telegram found; the input looks like a 7E1 line (DSMR "
                            "2.2/3.0) read as 8N1, as '/' and CR arrive as 0xAF and 0x8D: try "
                            "--7bit, or set the port to 7E1 (stty cs7 parenb)\n");
        else
            fprintf(stderr, "p1: no telegram found\n");
        status = 1;
    }
    if (fd > 0)
        close(fd);
    json_free(&c->out);
    json_free(&c->objs);
    free(c);
    free(p);
    return status;
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"decode", p1_decode_main, "decode telegrams (file, stdin, serial capture) into JSON lines"},
    {"sim", p1_sim_main, "simulated DSMR 5 meters streaming to stdout, a pseudo-terminal or TCP"},
    {"bench", p1_bench_main, "measure decoding speed on built-in or given telegrams"},
    {"import", p1_import_main, "import telegram captures into the history database"},
    {"export", p1_export_main, "export history from the database as CSV or JSON"},
    {"backup", p1_backup_main, "copy the history database while p1d runs"},
    {"prices", p1_prices_main, "import dynamic energy prices (CSV, JSON) or list stored prices"},
};

static void usage(FILE *f)
{
    fputs("Usage: p1 COMMAND [ARGS...]\n"
          "p1 " P1_VERSION ": tools for P1 (DSMR) smart-meter telegrams.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'p1 COMMAND --help' for a command's options.\n", f);
}

/* " (did you mean 'decode'?)" for a likely typo of a command, else " (try 'p1 --help')", into
 * out[cap]; returns out. */
static const char *command_hint(const char *cmd, char *out, size_t cap)
{
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        names[i] = commands[i].name;
    const char *hit = suggest_closest(cmd, names, sizeof names / sizeof names[0]);
    if (hit)
        snprintf(out, cap, " (did you mean '%s'?)", hit);
    else
        snprintf(out, cap, " (try 'p1 --help')");
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    char hint[64];
    int status = 2;
    const char *topic = strcmp(cmd, "help") == 0 && argc > 2 ? argv[2] : NULL;
    const command *run = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(topic ? topic : cmd, commands[i].name) == 0)
            run = &commands[i];
    if (run && topic) {
        char *help_argv[] = {argv[2], "--help", NULL};
        status = run->run(2, help_argv);
    } else if (run) {
        status = run->run(argc - 1, argv + 1);
    } else if (topic) {
        fprintf(stderr, "p1: help: unknown command '%s'%s\n", topic,
                command_hint(topic, hint, sizeof hint));
    } else if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        status = 0;
    } else if (strcmp(cmd, "--version") == 0) {
        printf("p1 %s\n", P1_VERSION);
        status = 0;
    } else {
        fprintf(stderr, "p1: unknown command '%s'%s\n", cmd, command_hint(cmd, hint, sizeof hint));
    }
    /* What is still buffered goes out here: a failure not reported yet (`p1 prices list >
     * file` on a full disk, --help into a closed pipe) must not end in exit status 0. */
    errno = 0;
    int flush_failed = fflush(stdout) != 0;
    if ((flush_failed || ferror(stdout)) && status == 0)
        status = p1_write_error("p1", flush_failed ? errno : 0);
    return status;
}
