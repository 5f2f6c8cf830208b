/* p1_import.c: `p1 import`: bulk, resumable import of raw telegram captures into the store. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p1/crypt.h"
#include "p1/p1.h"
#include "p1/reading.h"

#include "../src/store.h"
#include "p1.h"

#define IMPORT_CHUNK (256 * 1024)     /* bytes per read(2) */
#define IMPORT_BATCH 50000            /* readings per transaction */
#define IMPORT_KEY_BYTES 4096         /* a file is known by a hash of its first bytes */
#define IMPORT_SNIFF (4 * 1024 * 1024) /* no telegram in this many bytes: not a capture */
#define IMPORT_PROGRESS_NS 250000000LL

static const char import_usage[] =
    "Usage: p1 import [--db PATH] [--meter NAME] [--crc POLICY] [--key HEX [--ak HEX]\n"
    "                 [--skip-tag]] FILE...\n"
    "Import raw P1 telegram captures (for example `cat /dev/ttyUSB0 > capture.txt`, months long)\n"
    "into the history database. Readings are timed by the meter's clock (0-0:1.0.0); telegrams\n"
    "without a valid time are skipped. An import is resumable: the file's place is remembered,\n"
    "and a second import of the same file adds nothing (readings not newer than the meter's\n"
    "newest stored one are skipped). Import files of one meter in chronological order.\n"
    "The database must not be in use by p1d (or another import): stop p1d first.\n"
    "\n"
    "Options:\n"
    "  --db PATH      database (default p1d.db; created when missing)\n"
    "  --meter NAME   meter the readings belong to (default home)\n"
    "  --crc POLICY   required | optional (default) | ignore\n"
    "  --key HEX      decryption key of an encrypted meter (Luxembourg, Austria), 32 hex digits\n"
    "  --ak HEX       its authentication key (default " P1_CRYPT_DEFAULT_AK ")\n"
    "  --skip-tag     do not verify the GCM tag; rely on the inner telegram CRC\n"
    "  -q, --quiet    no progress or summary\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exit status: 0 imported, 1 a file could not be read or holds no telegrams, or the database\n"
    "failed, 2 usage error.\n";

typedef struct import_ctx {
    store *s;
    const char *meter;
    p1_reading r;
    uint64_t base;      /* file offset of the parser's stream offset 0 */
    uint64_t resume;    /* file offset after the last accepted telegram */
    uint64_t accepted, rejected, stored, skipped;
    uint64_t no_key, bad_key; /* encrypted frames rejected for want of a key, or by the key */
    int failed;         /* store error: stop */
} import_ctx;

static void on_begin(void *user, const p1_telegram *t)
{
    import_ctx *c = user;
    p1_reading_begin(&c->r, t);
}

static void on_object(void *user, const p1_object *o)
{
    import_ctx *c = user;
    p1_reading_add(&c->r, o);
}

static void on_end(void *user, const p1_telegram *t)
{
    import_ctx *c = user;
    if (p1_reading_end(&c->r, t) != P1_ERR_OK) {
        c->rejected++;
        c->no_key += t->error == P1_ERR_NO_KEY;
        c->bad_key += t->error == P1_ERR_DECRYPT_FAILED;
        return;
    }
    c->accepted++;
    c->resume = c->base + t->offset + (t->frame ? t->frame_len : t->raw_len);
    int rc = store_add(c->s, c->meter, &c->r, 0);
    if (rc > 0)
        c->stored++;
    else if (rc == 0)
        c->skipped++;
    else
        c->failed = rc;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* FNV-1a over the file's first bytes and the meter name: the file's identity across renames. */
static int file_key(int fd, const char *meter, char *key, size_t cap)
{
    uint8_t buf[IMPORT_KEY_BYTES];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n < 0)
        return -1;
    uint64_t h = 1469598103934665603ULL;
    for (ssize_t i = 0; i < n; i++)
        h = (h ^ buf[i]) * 1099511628211ULL;
    snprintf(key, cap, "fnv1a64:%016" PRIx64 ":%zd:%s", h, n, meter);
    return 0;
}

static int commit_batch(import_ctx *c, const char *key, const char *path, int64_t telegrams)
{
    int rc = store_import_set(c->s, key, path, c->meter, (int64_t)c->resume, telegrams);
    if (rc == 0)
        rc = store_commit(c->s);
    if (rc < 0)
        fprintf(stderr, "p1 import: %s: cannot write the database: %s\n", path, strerror(-rc));
    return rc;
}

static int import_file(import_ctx *c, const char *path, int quiet, const p1_settings *set)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    char key[160];
    int64_t offset = 0, before = 0;
    if (fd < 0 || fstat(fd, &sb) < 0 || file_key(fd, c->meter, key, sizeof key) < 0) {
        fprintf(stderr, "p1 import: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    int known = store_import_get(c->s, key, &offset, &before);
    if (known < 0) {
        fprintf(stderr, "p1 import: %s: database: %s\n", path, strerror(-known));
        close(fd);
        return 1;
    }
    if (known && offset >= sb.st_size) {
        if (!quiet)
            fprintf(stderr, "p1 import: %s: already imported (%" PRId64 " telegram%s); nothing new\n",
                    path, before, before == 1 ? "" : "s");
        close(fd);
        return 0;
    }
    if (!known)
        offset = 0;
    if (offset && lseek(fd, offset, SEEK_SET) < 0) {
        fprintf(stderr, "p1 import: %s: %s\n", path, strerror(errno));
        close(fd);
        return 1;
    }
    p1_parser *p = malloc(sizeof *p);
    uint8_t *buf = malloc(IMPORT_CHUNK);
    if (!p || !buf) {
        fprintf(stderr, "p1 import: out of memory\n");
        free(p);
        free(buf);
        close(fd);
        return 1;
    }
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(p, set, &cb, c);
    c->base = (uint64_t)offset;
    c->resume = (uint64_t)offset;
    c->accepted = c->rejected = c->stored = c->skipped = c->no_key = c->bad_key = 0;
    int tty = !quiet && isatty(2);
    int64_t t0 = now_ns(), last = t0;
    uint64_t pos = (uint64_t)offset, committed = 0; /* readings stored by a commit */
    int status = 0, gzipped = 0;
    for (;;) {
        ssize_t n = read(fd, buf, IMPORT_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "p1 import: %s: %s\n", path, strerror(errno));
            status = 1;
            break;
        }
        if (n == 0) {
            p1_finish(p);
            break;
        }
        if (pos == 0 && n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
            gzipped = 1;
        p1_execute(p, buf, (size_t)n);
        pos += (uint64_t)n;
        if (c->failed)
            break;
        if (!c->accepted && pos - (uint64_t)offset >= IMPORT_SNIFF)
            break;
        if (store_pending(c->s) >= IMPORT_BATCH) {
            if (commit_batch(c, key, path, before + (int64_t)c->accepted) < 0) {
                status = 1;
                break;
            }
            committed = c->stored;
        }
        if (tty) {
            int64_t t = now_ns();
            if (t - last >= IMPORT_PROGRESS_NS) {
                last = t;
                double secs = (double)(t - t0) / 1e9;
                fprintf(stderr, "\r%s: %3d%%  %" PRIu64 " telegrams  %.0f/s   ", path,
                        sb.st_size ? (int)(pos * 100 / (uint64_t)sb.st_size) : 100, c->accepted,
                        secs > 0 ? (double)c->accepted / secs : 0.0);
            }
        }
    }
    if (tty)
        fputs("\r\033[K", stderr);
    if (c->failed) {
        fprintf(stderr, "p1 import: %s: %s\n", path, strerror(-c->failed));
        status = 1;
    } else if (!status && c->accepted == 0 && pos == 0) {
        /* An empty file (or /dev/null) is not a capture; recording it would also make every
         * other empty file look "already imported" (they share the identity hash). */
        fprintf(stderr, "p1 import: %s: empty file: no P1 telegram; nothing was stored\n", path);
        status = 1;
    } else if (!status && c->accepted == 0 && pos > (uint64_t)offset) {
        /* nothing was queued, so nothing is written: a wrong file leaves the database as it was */
        fprintf(stderr,
                "p1 import: %s: no P1 telegram found%s (%" PRIu64 " rejected); %s nothing was "
                "stored\n",
                path, pos - (uint64_t)offset >= IMPORT_SNIFF ? " in the first 4 MiB" : "",
                c->rejected,
                gzipped        ? "it is gzip-compressed: import the output of zcat instead;"
                : c->no_key    ? "they are encrypted frames: give the meter's key with --key;"
                : c->bad_key   ? "they are encrypted frames that failed authentication: wrong "
                                 "--key or --ak?;"
                               : "is it a capture of a meter's P1 port?");
        status = 1;
    } else if (!status) {
        if (commit_batch(c, key, path, before + (int64_t)c->accepted) < 0)
            status = 1;
        else
            committed = c->stored;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    char lost[64] = ""; /* queued readings whose commit failed were not stored */
    if (c->stored > committed)
        snprintf(lost, sizeof lost, ", %" PRIu64 " not written (see above)", c->stored - committed);
    if (!quiet && (c->accepted || !status))
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " telegram%s, %" PRIu64 " stored%s, %" PRIu64
                " skipped (already stored or no valid time), %" PRIu64 " rejected, %.2f s, "
                "%.0f telegrams/s\n",
                path, c->accepted, c->accepted == 1 ? "" : "s", committed, lost, c->skipped,
                c->rejected, secs, secs > 0 ? (double)c->accepted / secs : 0.0);
    free(p);
    free(buf);
    close(fd);
    return status;
}

/* 1 when option a is followed by its value. */
static int import_takes_value(const char *a)
{
    return !strcmp(a, "--db") || !strcmp(a, "--meter") || !strcmp(a, "--crc") ||
           !strcmp(a, "--key") || !strcmp(a, "--ak");
}

/* The next FILE argument from argv[*i] on, skipping the options and their values as
 * p1_import_main() parsed them; *rest is set after "--". NULL when there is none. */
static const char *next_file(int argc, char **argv, int *i, int *rest)
{
    while (*i < argc) {
        const char *a = argv[(*i)++];
        if (!*rest && !strcmp(a, "--"))
            *rest = 1;
        else if (!*rest && a[0] == '-')
            *i += import_takes_value(a);
        else
            return a;
    }
    return NULL;
}

/* 0 when path is a file p1 import can read, else the errno that says why not. */
static int file_problem(const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : fstat(fd, &sb) < 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    if (fd >= 0)
        close(fd);
    return e;
}

int p1_import_main(int argc, char **argv)
{
    const char *db = "p1d.db", *meter = "home", *key = NULL, *ak = NULL;
    int quiet = 0, nfiles = 0, only_files = 0, skip_tag = 0;
    p1_settings set;
    memset(&set, 0, sizeof set);
    set.crc = P1_CRC_OPTIONAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-') {
            nfiles++;
        } else if (!strcmp(a, "-")) {
            fprintf(stderr, "p1 import: cannot import standard input: an import is resumable "
                            "and needs a file; save the capture to a file first\n");
            return 2;
        } else if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(import_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--skip-tag")) {
            skip_tag = 1;
        } else if (import_takes_value(a) && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--db")) {
                db = v;
            } else if (!strcmp(a, "--meter")) {
                meter = v;
            } else if (!strcmp(a, "--key")) {
                key = v;
            } else if (!strcmp(a, "--ak")) {
                ak = v;
            } else if (!strcmp(v, "required")) {
                set.crc = P1_CRC_REQUIRED;
            } else if (!strcmp(v, "optional")) {
                set.crc = P1_CRC_OPTIONAL;
            } else if (!strcmp(v, "ignore")) {
                set.crc = P1_CRC_IGNORE;
            } else {
                fprintf(stderr, "p1 import: --crc must be required, optional or ignore, not '%s' "
                                "(try 'p1 import --help')\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "p1 import: %s '%s' (try 'p1 import --help')\n",
                    import_takes_value(a) ? "missing value for" : "unknown option", a);
            return 2;
        }
    }
    p1_crypt crypt;
    const char *bad = p1_crypt_options(key, ak, skip_tag, &crypt, &set);
    if (bad) {
        fprintf(stderr, "p1 import: %s (try 'p1 import --help')\n", bad);
        return 2;
    }
    if (!nfiles) {
        fprintf(stderr, "p1 import: no FILE given (try 'p1 import --help')\n");
        return 2;
    }
    size_t ml = strlen(meter);
    if (!ml || ml > 63 || strspn(meter, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789_-") != ml) {
        fprintf(stderr, "p1 import: --meter must be 1-63 of A-Z a-z 0-9 _ -, not '%s'\n", meter);
        return 2;
    }
    /* Files first: when none can be read, a typo must not leave a new, empty database. */
    int i = 1, rest = 0, readable = 0;
    const char *a;
    while (!readable && (a = next_file(argc, argv, &i, &rest)) != NULL)
        readable = file_problem(a) == 0;
    if (!readable) {
        i = 1;
        rest = 0;
        while ((a = next_file(argc, argv, &i, &rest)) != NULL)
            fprintf(stderr, "p1 import: %s: %s\n", a, strerror(file_problem(a)));
        fprintf(stderr, "p1 import: no FILE could be read; %s was not touched\n", db);
        return 1;
    }
    char err[STORE_ERR_MAX];
    store_options o;
    store_options_default(&o);
    o.queue_max = IMPORT_BATCH * 2;
    o.writer = "p1 import"; /* p1d keeps open blocks in memory: refuse while it runs */
    import_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "p1 import: out of memory\n");
        return 1;
    }
    c->s = store_open(db, &o, err, sizeof err);
    if (!c->s) {
        fprintf(stderr, "p1 import: %s\n", err);
        free(c);
        return 1;
    }
    c->meter = meter;
    store_meter_clock(c->s, meter, STORE_CLOCK_METER);
    int status = 0;
    i = 1;
    rest = 0;
    while ((a = next_file(argc, argv, &i, &rest)) != NULL) {
        if (import_file(c, a, quiet, &set) != 0)
            status = 1;
    }
    /* retention applies to imports too: raw readings older than the newest minus raw_keep go */
    int r;
    while ((r = store_maintain(c->s)) > 0)
        ;
    if (r < 0) {
        fprintf(stderr, "p1 import: retention: %s\n", strerror(-r));
        status = 1;
    }
    store_close(c->s);
    free(c);
    return status;
}
