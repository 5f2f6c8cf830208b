/* p1_import.c: `p1 import`: bulk, resumable import of raw telegram captures into the store. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "p1/crypt.h"
#include "p1/p1.h"
#include "p1/reading.h"

#include "../src/civil.h"
#include "../src/store.h"
#include "p1.h"

#define IMPORT_CHUNK (256 * 1024)     /* bytes per read(2) */
#define IMPORT_BATCH 50000            /* readings per transaction */
#define IMPORT_KEY_BYTES 4096         /* a file is known by a hash of its first bytes */
#define IMPORT_SNIFF (4 * 1024 * 1024) /* no telegram in this many bytes: not a capture */
#define IMPORT_PROGRESS_NS 250000000LL
#define IMPORT_LINE_MAX 8192          /* longer lines pass through unchanged */
#define IMPORT_JUMP_S 600             /* meter clock ahead by more: believed when the next agrees */

static const char import_usage[] =
    "Usage: p1 import [--db PATH] [--meter NAME] [--crc POLICY] [--key HEX [--ak HEX]\n"
    "                 [--skip-tag]] [-q] FILE...\n"
    "Import raw P1 telegram captures (for example `cat /dev/ttyUSB0 > capture.txt`, months long)\n"
    "into the history database. FILE may be gzip-compressed (logrotate's .gz), and - reads\n"
    "standard input (plain or gzip; not remembered, duplicates are still skipped), as a pipe\n"
    "is read (<(xzcat capture.xz), a FIFO; after the files). A text capture may have LF-only\n"
    "line ends, a prefix before every line (a timestamp from ts or journalctl, a logger's tag,\n"
    "CSV columns) and telegrams with escaped line ends (\\r\\n in a CSV or JSON export): each\n"
    "telegram is rebuilt as the meter sent it and its CRC checked (LF-only line ends as CRLF,\n"
    "or kept when the CRC covers them so).\n"
    "With --key the file is read as the meter's binary frames.\n"
    "Readings are timed by the meter's clock (0-0:1.0.0); a telegram without one (DSMR 2.2,\n"
    "3.0) takes the time of its line's prefix (ISO-8601, without a zone in the database's\n"
    "calendar: CET/CEST, or EET/EEST; or unix seconds); telegrams with neither are\n"
    "skipped. An import is resumable: the file's place is remembered, and a second import\n"
    "of the same file adds nothing. Readings older than\n"
    "the meter's newest stored one are backfilled when they fall before its first stored\n"
    "reading or into a gap of its last 7 days of raw history (more than 5 minutes without a\n"
    "reading), with the result an import in time order gives; readings at times the history\n"
    "already covers are skipped. A gap is filled in one transaction: all or nothing. Several\n"
    "FILEs are imported oldest first, by the time of their first telegram.\n"
    "A meter time more than 10 minutes ahead of (or behind) the last reading counts only when\n"
    "the next telegram goes on from it: a clock that jumps for one telegram and returns drops\n"
    "that one reading, and so does a jump in a file's last telegram (a grown file confirms it).\n"
    "The database must not be in use by p1d (or another import): stop p1d first.\n"
    "\n"
    "Options:\n"
    "  --db PATH      database (default p1d.db; created when missing, removed\n"
    "                 again when nothing could be stored in it; not :memory:,\n"
    "                 where the import would be lost)\n"
    "  --meter NAME   meter the readings belong to (default home)\n"
    "  --crc POLICY   required | optional (default) | ignore\n"
    "  --key HEX      decryption key of an encrypted meter (Luxembourg, Austria), 32 hex digits\n"
    "  --ak HEX       its authentication key (default " P1_CRYPT_DEFAULT_AK ")\n"
    "  --skip-tag     do not verify the GCM tag; rely on the inner telegram CRC\n"
    "  -q, --quiet    no progress or summary\n"
    "  -h, --help     show this help\n"
    "Options take their value as the next argument or after '=' (--db=PATH), once each; --\n"
    "ends them.\n"
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
    uint64_t committed; /* of stored: written by a commit (a full disk fails the rest) */
    uint64_t no_key, bad_key; /* encrypted frames rejected for want of a key, or by the key */
    int failed;         /* store error: stop */
    uint64_t line_end;  /* file offset after the input line being fed to the parser, or 0 */
    uint64_t fed;       /* bytes given to the parser since p1_parser_init() */
    uint64_t older;     /* of skipped: timed, at a time the meter's history already covers */
    uint64_t backfilled; /* stored although older than the meter's newest reading */
    uint64_t older_queued; /* readings older than the newest handed to the store */
    int probe;          /* only find the first timed telegram: nothing is stored */
    int64_t first_ts;   /* probe: its meter time, 0 while none */
    int64_t last_ts;    /* meter time of the last reading stored, 0 none yet */
    uint64_t glitches;  /* readings whose clock jumped ahead or back and returned: dropped */
    uint64_t untimed;   /* readings without a meter time or a timestamped line: not stored */
    uint64_t prefix_timed; /* readings timed by their line prefix */
    int has_held;       /* held: the reading after a jump, waiting for the next one */
    int held_back;      /* the held one jumped back (a backfill, or a clock set back) */
    int held_first;     /* the held one is the meter's first: nothing before it to judge by */
    uint64_t unconfirmed; /* a file's last reading held at a jump: nothing followed, dropped */
    int64_t held_ts, held_ms;
    uint64_t held_resume; /* file offset after the telegram before the held one */
    p1_reading held;
    int64_t prefix_s;   /* the time in the last line prefix that held one, 0 none */
} import_ctx;

/* Lines of a text capture, rebuilt as the meter sent them before they reach the parser:
 * CRLF line ends (LF-only logs; LF alone where the CRC covers that), no prefix before the
 * telegram's text (timestamps added by ts, journalctl or a logger; CSV columns), and, in an
 * export whose telegrams were written
 * with escaped line ends ("\r\n" in CSV or JSON), those escapes undone. The CRC covers the
 * original bytes, so a rebuilt telegram checks exactly when the rebuild is right. */
typedef struct import_text {
    int escaped;        /* the file holds escaped line ends: undo \r \n \\ \" \/ */
    int lf;             /* the meter's line ends are LF alone (its CRC says so): keep them */
    int esc;            /* the previous byte was an escaping backslash */
    int over;           /* this line outgrew the buffer: passed through as it came */
    size_t len;
    uint8_t line[IMPORT_LINE_MAX];
} import_text;

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

/* Stores one reading; ts is its time (timed) or 0; ms its line prefix's time when the meter
 * sent none (store_add() takes that as the system time), else 0. */
static void take(import_ctx *c, const p1_reading *r, int64_t ts, int timed, int64_t ms)
{
    int rc = store_add(c->s, c->meter, r, ms);
    if (rc > 0) {
        c->stored += rc == 1; /* 2: older than the newest; the commit backfills or skips it */
        c->older_queued += rc == 2;
        c->last_ts = ts;
    } else if (rc == 0) {
        c->skipped++;
        c->older += timed;
    } else {
        c->failed = rc;
    }
}

/* Stores the reading held back at a jump of the meter's clock, if any. */
static void take_held(import_ctx *c)
{
    if (c->has_held)
        take(c, &c->held, c->held_ts, 1, c->held_ms);
    c->has_held = 0;
}

/* At the end of a file: a reading held at a jump has no next telegram to confirm it, so it is
 * not stored (its file place stays before it: a grown capture reads it again). The meter's
 * first reading, with nothing before it to jump from, is stored. */
static void end_held(import_ctx *c)
{
    if (c->has_held && c->held_first)
        take_held(c);
    c->unconfirmed += (uint64_t)c->has_held;
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
    int64_t ts = 0;
    int timed = c->r.has_time && c->r.time.valid && p1_time_to_unix(&c->r.time, &ts) == 0;
    int64_t ms = 0;
    if (!timed && c->prefix_s > 0) { /* DSMR 2.2 sends no time: a logger's timestamp will do */
        ts = c->prefix_s;
        ms = ts * 1000;
        timed = 1;
        c->prefix_timed++;
    }
    if (c->probe) {
        if (timed && !c->first_ts)
            c->first_ts = ts;
        c->accepted++;
        return;
    }
    c->accepted++;
    uint64_t resume_before = c->resume;
    c->resume = c->line_end ? c->line_end : c->base + t->offset + (t->frame ? t->frame_len : t->raw_len);
    /* A meter's clock that jumps ahead for one telegram (a glitch, a clock set wrong and put
     * right) would make every later reading "not newer than the newest" and, through
     * retention, delete the real ones. So a jump of more than IMPORT_JUMP_S is believed only
     * when the next timed telegram goes on from it; one that comes back drops it. A jump back
     * as far is held the same way: it would be backfilled into the history's past (a gap, the
     * time before its first reading), with a counter reset at the reading after it; a next
     * telegram that goes on from it (concatenated or overlapping captures) takes it. The
     * meter's first reading (no history, nothing before it in the run) is held too: when the
     * next is more than IMPORT_JUMP_S behind it, the later of the two is the glitch. The last
     * telegram of a file is judged the same way: held, it is dropped (end_held()). */
    if (timed && c->has_held) {
        if (c->held_first ? ts < c->held_ts - IMPORT_JUMP_S
                          : ts < c->held_ts || (c->held_back && ts >= c->last_ts - IMPORT_JUMP_S)) {
            c->glitches++;
            c->has_held = 0;
        } else {
            take_held(c);
        }
    }
    if (timed && !c->failed &&
        (!c->last_ts || ts > c->last_ts + IMPORT_JUMP_S || ts < c->last_ts - IMPORT_JUMP_S)) {
        c->held_first = !c->last_ts;
        c->held_back = ts < c->last_ts;
        c->held = c->r;
        c->held_ts = ts;
        c->held_ms = ms;
        c->held_resume = resume_before;
        c->has_held = 1;
        return;
    }
    if (!timed)
        c->untimed++;
    take(c, &c->r, ts, timed, ms);
}

static int is_digit(uint8_t b)
{
    return b >= '0' && b <= '9';
}

static int is_alnum(uint8_t b)
{
    return is_digit(b) || ((b | 0x20) >= 'a' && (b | 0x20) <= 'z');
}

static int is_hex(uint8_t b)
{
    return is_digit(b) || ((b | 0x20) >= 'a' && (b | 0x20) <= 'f');
}

/* Length of an OBIS reference followed by '(' at l (A-B:C.D.E( or A-B:C.D.E.F( ), else 0. */
static size_t obis_at(const uint8_t *l, size_t n)
{
    static const char sep[] = "-:..(";
    size_t i = 0;
    for (int part = 0; part < 5; part++) {
        size_t d = i;
        while (i < n && is_digit(l[i]))
            i++;
        if (part == 4 && i > d && i + 1 < n && (l[i] == '.' || l[i] == '*') && is_digit(l[i + 1]))
            for (i++; i < n && is_digit(l[i]);)
                i++;
        if (i == d || i >= n || l[i] != (uint8_t)sep[part])
            return 0;
        i++;
    }
    return i;
}

/* 1 when a header starts at l: '/', three letters or digits (the maker), a digit (the speed). */
static int header_at(const uint8_t *l, size_t n)
{
    return n >= 5 && l[0] == '/' && is_alnum(l[1]) && is_alnum(l[2]) && is_alnum(l[3]) &&
           is_digit(l[4]);
}

/* Length of a telegram's end line at l: '!' with its 4-digit CRC or none (DSMR 2.2), else 0. */
static size_t end_at(const uint8_t *l, size_t n)
{
    if (n < 1 || l[0] != '!')
        return 0;
    if (n >= 5 && is_hex(l[1]) && is_hex(l[2]) && is_hex(l[3]) && is_hex(l[4]) &&
        (n == 5 || !is_alnum(l[5])))
        return 5;
    return n == 1 || !is_alnum(l[1]) ? 1 : 0;
}

static void text_exec(import_ctx *c, p1_parser *p, const uint8_t *b, size_t n)
{
    p1_execute(p, b, n);
    c->fed += n;
}

/* 1 when a line (without its CRLF) starts as one of a telegram does, not with a prefix:
 * '/', '(' or '!', or an OBIS reference's "A-B:" (no timestamp has a '-' after one digit). */
static int text_clean(const uint8_t *l, size_t n)
{
    return !n || l[0] == '/' || l[0] == '(' || l[0] == '!' ||
           (n > 4 && is_digit(l[0]) && l[1] == '-' && is_digit(l[2]) && (l[3] == ':' ||
                                                                        is_digit(l[3])));
}

/* The time in a line's prefix l[0..n): ISO-8601 ("2024-01-31 12:00:00.123", a 'T', a zone or
 * none: the database's calendar, as p1 export reads times) or unix seconds (10 digits, a fraction
 * allowed), where a run of digits starts. 0 when there is none. */
static int64_t prefix_time(const uint8_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(l[i]) || (i && is_digit(l[i - 1])))
            continue;
        size_t e = i;
        while (e < n && is_digit(l[e]))
            e++;
        if (e - i == 10 && (e == n || !is_alnum(l[e]))) {
            int64_t t = 0;
            for (size_t k = i; k < e; k++)
                t = t * 10 + (l[k] - '0');
            if (t >= 946684800) /* 2000 */
                return t;
        }
        if (e - i != 4 || e >= n || l[e] != '-')
            continue;
        char iso[CIVIL_PARSE_MAX];
        size_t m = 0;
        for (e = i; e < n && m + 1 < sizeof iso && (is_digit(l[e]) || strchr("-:.T +Z", l[e]));)
            iso[m++] = (char)l[e++];
        iso[m] = 0;
        int64_t t;
        while (m > 10) { /* "2024-01-31 12:00:00.123 " and shorter, down to the date's length */
            if (civil_parse(iso, 0, &t) == 0 && t > 0)
                return t;
            iso[--m] = 0;
        }
    }
    return 0;
}

/* Feeds one line (no line end) to the parser as the meter sent it: what precedes the
 * telegram's text (a timestamp, a logger's tag, CSV columns) and trails it is cut. */
static void text_line(import_ctx *c, const import_text *x, p1_parser *p, const uint8_t *l, size_t n)
{
    /* A line as the meter sends it goes on as text_feed() passes a run of them, whatever the
     * read boundaries: its one CR and the LF, nothing trimmed (a stray CR before them is the
     * meter's, and the CRC says whether it belongs). */
    if (n && l[n - 1] == '\r' && text_clean(l, n - 1)) {
        text_exec(c, p, l, n);
        text_exec(c, p, (const uint8_t *)"\n", 1);
        return;
    }
    while (n && (l[n - 1] == '\r' || l[n - 1] == '\n'))
        n--;
    size_t from = n, to = n;
    if (text_clean(l, n)) {
        from = 0; /* a line of the telegram as it is: the common case */
    } else {
        for (size_t i = 1; i < n && from == n; i++) {
            size_t e;
            if (header_at(l + i, n - i)) {
                from = i;
            } else if (obis_at(l + i, n - i)) {
                from = i;
                while (to > from && l[to - 1] != ')')
                    to--;
            } else if ((e = end_at(l + i, n - i)) != 0) {
                from = i;
                to = i + e;
            }
        }
        for (size_t i = 1; i + 3 < n && from == n; i++) /* "/Test", after a space or quote */
            if (l[i] == '/' && (l[i - 1] == ' ' || l[i - 1] == '"' || l[i - 1] == ',') &&
                is_alnum(l[i + 1]) && is_alnum(l[i + 2]) && is_alnum(l[i + 3]))
                from = i;
        if (from == n && l[n - 1] == ')') /* a DSMR 2.2 continuation line: "(value)" */
            for (size_t i = n - 1; i-- > 0 && from == n;)
                if (l[i] == '(' && (i == 0 || l[i - 1] == ' '))
                    from = i;
        if (to <= from)
            from = to = n; /* a prefix alone: the empty line after the header */
        int64_t t = prefix_time(l, from);
        if (t)
            c->prefix_s = t;
    }
    text_exec(c, p, l + from, to - from);
    text_exec(c, p, (const uint8_t *)"\r\n" + x->lf, 2 - (size_t)x->lf);
}

/* Feeds n bytes of a text capture starting at file offset pos, line by line. Runs of lines
 * already as the meter sends them (a plain capture: nearly all) go to the parser unchanged in
 * one call, their telegrams' file offsets mapped through c->base. */
static void text_feed(import_ctx *c, import_text *x, p1_parser *p, const uint8_t *b, size_t n,
                      uint64_t pos)
{
    size_t i = 0;
    while (i < n) {
        if (!x->escaped && !x->len && !x->over) {
            size_t run = i;
            const uint8_t *nl;
            while ((nl = memchr(b + i, '\n', n - i)) != NULL) {
                size_t len = (size_t)(nl - (b + i));
                if (x->lf ? len && b[i + len - 1] == '\r'
                          : !len || b[i + len - 1] != '\r' || !text_clean(b + i, len - 1))
                    break;
                if (x->lf && !text_clean(b + i, len))
                    break;
                i += len + 1;
            }
            if (i > run) {
                c->line_end = 0;
                c->base = pos + run - c->fed; /* modulo 2^64: a rebuilt line may have grown */
                text_exec(c, p, b + run, i - run);
            }
            if (i == n)
                break;
        }
        uint8_t ch = b[i++];
        if (x->escaped) {
            if (x->esc) {
                x->esc = 0;
                if (ch == 'r' || ch == 'n')
                    ch = ch == 'r' ? '\r' : '\n';
                else if (ch != '\\' && ch != '"' && ch != '/' && x->len < IMPORT_LINE_MAX)
                    x->line[x->len++] = '\\'; /* not an escape: "/ISK5\2M..." keeps its \ */
            } else if (ch == '\\') {
                x->esc = 1;
                continue;
            }
        }
        if (ch == '\n') {
            c->line_end = pos + i;
            if (x->over)
                text_exec(c, p, (const uint8_t *)"\n", 1);
            else
                text_line(c, x, p, x->line, x->len);
            x->len = 0;
            x->over = 0;
        } else if (x->over) {
            text_exec(c, p, &ch, 1);
        } else if (x->len == IMPORT_LINE_MAX) {
            x->over = 1;
            text_exec(c, p, x->line, x->len);
            text_exec(c, p, &ch, 1);
            x->len = 0;
        } else {
            x->line[x->len++] = ch;
        }
    }
}

/* 1 when the first bytes read hold an encrypted frame's start (0xDB, then the system title's
 * length 8): binary, which the line rebuild would garble. */
static int binary_frames(const uint8_t *b, size_t n)
{
    for (const uint8_t *x = b; n > 1 && (x = memchr(x, 0xDB, n - 1 - (size_t)(x - b))) != NULL;
         x++)
        if (x[1] == 0x08)
            return 1;
    return 0;
}

/* Number of good telegrams in b[0..n) read as text with LF-only line ends kept (lf) or made
 * CRLF. */
static uint64_t text_good(const uint8_t *b, size_t n, const p1_settings *set, int escaped, int lf)
{
    import_ctx *c = calloc(1, sizeof *c);
    p1_parser *p = malloc(sizeof *p);
    import_text *x = calloc(1, sizeof *x);
    uint64_t good = 0;
    if (c && p && x) {
        p1_callbacks cb = {on_begin, on_object, on_end};
        c->probe = 1;
        x->escaped = escaped;
        x->lf = lf;
        p1_parser_init(p, set, &cb, c);
        text_feed(c, x, p, b, n, 0);
        good = c->accepted;
    }
    free(c);
    free(p);
    free(x);
    return good;
}

/* 1 when the first bytes read have LF-only line ends (raw or escaped) and more telegrams check
 * with them kept than made CRLF: a meter (or simulator) whose CRC covers LF alone. A logger
 * that dropped the CRs (the CRC covers CRLF) is read with CRLF, as are ties. */
static int text_lf(const uint8_t *b, size_t n, const p1_settings *set, int escaped)
{
    int bare = 0;
    for (size_t i = 1; i < n && !bare; i++)
        bare = escaped ? b[i] == 'n' && b[i - 1] == '\\' &&
                             (i < 3 || b[i - 2] != 'r' || b[i - 3] != '\\')
                       : b[i] == '\n' && b[i - 1] != '\r';
    return bare && text_good(b, n, set, escaped, 1) > text_good(b, n, set, escaped, 0);
}

/* 1 when the first bytes read show telegrams written with escaped line ends. */
static int text_escaped(const uint8_t *b, size_t n)
{
    static const char *const marks[] = {"\\r\\n", "\\n1-0:", "\\n0-0:", "\\n!"};
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t m = 0; b[i] == '\\' && m < sizeof marks / sizeof marks[0]; m++)
            if (n - i >= strlen(marks[m]) && !memcmp(b + i, marks[m], strlen(marks[m])))
                return 1;
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* FNV-1a over the first bytes of the (uncompressed) capture and the meter name: the file's
 * identity across renames and logrotate's compression (log.1 and log.2.gz are one file). */
static int file_key(gzFile gz, const char *meter, char *key, size_t cap)
{
    uint8_t buf[IMPORT_KEY_BYTES];
    int n = gzread(gz, buf, sizeof buf);
    if (n < 0 || gzrewind(gz) < 0)
        return -1;
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++)
        h = (h ^ buf[i]) * 1099511628211ULL;
    snprintf(key, cap, "fnv1a64:%016" PRIx64 ":%d:%s", h, n, meter);
    return 0;
}

/* Writes the readings queued and the file's place; end 0 (a batch within the file) lets a
 * backfill go on in its transaction, so that a gap is filled all at once or not at all. A
 * reading held back at a jump is not stored yet: the place recorded is before its telegram, so
 * that an import stopped before the next commit reads it again. */
static int commit_batch(import_ctx *c, const char *key, const char *path, int64_t telegrams,
                        int end)
{
    int64_t at = (int64_t)(c->has_held ? c->held_resume : c->resume);
    int rc = key ? store_import_set(c->s, key, path, c->meter, at, telegrams - c->has_held) : 0;
    if (rc == 0)
        rc = end ? store_commit(c->s) : store_flush(c->s);
    if (rc < 0) /* p1d's lock was refused at the start: another SQLite writer holds this one */
        fprintf(stderr, "p1 import: %s: cannot write the database: %s\n", path,
                rc == -EBUSY ? "another program holds its write lock (a transaction left open "
                               "in sqlite3 or a database browser?)"
                             : strerror(-rc));
    return rc;
}

/* Reports the zlib error on gz (or errno) reading path. zlib names a file opened by gzdopen() by
 * its descriptor ("<fd:7>: incorrect data check"): that part goes, path names the file. */
static void gz_report(const char *path, gzFile gz)
{
    int e;
    const char *m = gzerror(gz, &e);
    const char *c = strncmp(m, "<fd:", 4) == 0 ? strstr(m, ": ") : NULL;
    fprintf(stderr, "p1 import: %s: %s%s\n", path, e == Z_DATA_ERROR ? "broken gzip data: " : "",
            e == Z_ERRNO ? strerror(errno)
            : c          ? c + 2
                         : m);
}

static int import_file(import_ctx *c, const char *arg, int quiet, const p1_settings *set,
                       int text)
{
    /* "-" is standard input: read to its end, remembered nowhere (duplicates are still
     * skipped by time), as is a pipe (<(xzcat capture.xz)), which cannot be read twice to find
     * the file's identity; a file's place is kept so a grown or repeated file resumes. */
    int is_stdin = !strcmp(arg, "-");
    const char *path = is_stdin ? "standard input" : arg;
    c->committed = 0;
    int fd = is_stdin ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    char keybuf[160], *key = is_stdin ? NULL : keybuf;
    int64_t offset = 0, before = 0;
    gzFile gz = NULL;
    if (fd < 0 || fstat(fd, &sb) < 0 || (gz = gzdopen(fd, "rb")) == NULL) {
        fprintf(stderr, "p1 import: %s: %s\n", path, fd < 0 ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (!S_ISREG(sb.st_mode))
        key = NULL;
    gzbuffer(gz, IMPORT_CHUNK);
    if (key && file_key(gz, c->meter, key, sizeof keybuf) < 0) {
        gz_report(path, gz);
        gzclose(gz);
        return 1;
    }
    int compressed = !gzdirect(gz);
    int known = key ? store_import_get(c->s, key, &offset, &before) : 0;
    if (known < 0) {
        fprintf(stderr, "p1 import: %s: database: %s\n", path, strerror(-known));
        gzclose(gz);
        return 1;
    }
    if (known && !compressed && offset >= sb.st_size) {
        if (!quiet)
            fprintf(stderr, "p1 import: %s: already imported (%" PRId64 " telegram%s); nothing new\n",
                    path, before, before == 1 ? "" : "s");
        gzclose(gz);
        return 0;
    }
    if (!known)
        offset = 0;
    if (offset && gzseek(gz, (z_off_t)offset, SEEK_SET) != (z_off_t)offset) {
        gz_report(path, gz);
        gzclose(gz);
        return 1;
    }
    p1_parser *p = malloc(sizeof *p);
    uint8_t *buf = malloc(IMPORT_CHUNK);
    import_text *x = calloc(1, sizeof *x);
    if (!p || !buf || !x) {
        fprintf(stderr, "p1 import: out of memory\n");
        free(p);
        free(buf);
        free(x);
        gzclose(gz);
        return 1;
    }
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(p, set, &cb, c);
    c->base = (uint64_t)offset;
    c->resume = (uint64_t)offset;
    c->line_end = 0;
    c->fed = 0;
    c->accepted = c->rejected = c->stored = c->skipped = c->no_key = c->bad_key = c->older = 0;
    c->glitches = c->untimed = c->prefix_timed = c->backfilled = c->older_queued = 0;
    c->unconfirmed = 0;
    c->has_held = 0;
    c->prefix_s = 0;
    store_stats st0, st1;
    store_get_stats(c->s, &st0);
    int tty = !quiet && isatty(2);
    int64_t t0 = now_ns(), last = t0;
    uint64_t pos = (uint64_t)offset, committed = 0; /* readings stored by a commit */
    int status = 0, truncated = 0;
    for (;;) {
        int n = gzread(gz, buf, IMPORT_CHUNK);
        if (n < 0) {
            gz_report(path, gz);
            /* as at a cut: the telegrams before the damage are committed, which also ends a
             * backfill's transaction (store_flush() keeps it open) before retention runs */
            if (c->accepted)
                truncated = 1;
            else
                status = 1;
            break;
        }
        if (n == 0) {
            int e;
            gzerror(gz, &e);
            if (e == Z_BUF_ERROR) { /* still being compressed, or cut short in a copy */
                fprintf(stderr, "p1 import: %s: the compressed data ends early; importing the "
                                "telegrams before the cut\n", path);
                truncated = 1;
            }
            if (text && x->len && !x->over)
                text_line(c, x, p, x->line, x->len); /* a last line without its line end */
            p1_finish(p);
            break;
        }
        if (text && pos == (uint64_t)offset && binary_frames(buf, (size_t)n))
            text = 0; /* encrypted frames without --key: read as they are, to say so */
        if (text && pos == (uint64_t)offset) {
            x->escaped = text_escaped(buf, (size_t)n);
            x->lf = text_lf(buf, (size_t)n, set, x->escaped);
        }
        if (text)
            text_feed(c, x, p, buf, (size_t)n, pos);
        else
            p1_execute(p, buf, (size_t)n);
        pos += (uint64_t)n;
        if (c->failed)
            break;
        if (!c->accepted && pos - (uint64_t)offset >= IMPORT_SNIFF)
            break;
        if (store_pending(c->s) >= IMPORT_BATCH) {
            if (commit_batch(c, key, path, before + (int64_t)c->accepted, 0) < 0) {
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
                uint64_t done = compressed ? (uint64_t)gzoffset(gz) : pos;
                if (S_ISREG(sb.st_mode) && sb.st_size)
                    fprintf(stderr, "\r%s: %3d%%  ", path, (int)(done * 100 / (uint64_t)sb.st_size));
                else
                    fprintf(stderr, "\r%s: ", path);
                fprintf(stderr, "%" PRIu64 " telegrams  %.0f/s   ", c->accepted,
                        secs > 0 ? (double)c->accepted / secs : 0.0);
            }
        }
    }
    if (!c->failed)
        end_held(c); /* the file's last reading: nothing follows to tell */
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
    } else if (!status && c->accepted == 0 && known) {
        /* what follows the last telegram taken (a logger's last line, a telegram still being
         * written) is not a new one */
        if (!quiet)
            fprintf(stderr, "p1 import: %s: already imported (%" PRId64 " telegram%s); nothing new\n",
                    path, before, before == 1 ? "" : "s");
        compressed = -1; /* no summary */
    } else if (!status && c->accepted == 0 && pos > (uint64_t)offset) {
        /* nothing was queued, so nothing is written: a wrong file leaves the database as it was */
        fprintf(stderr,
                "p1 import: %s: no P1 telegram found%s (%" PRIu64 " rejected); %s nothing was "
                "stored\n",
                path, pos - (uint64_t)offset >= IMPORT_SNIFF ? " in the first 4 MiB" : "",
                c->rejected,
                c->no_key      ? "they are encrypted frames: give the meter's key with --key;"
                : c->bad_key   ? "they are encrypted frames that failed authentication: wrong "
                                 "--key or --ak?;"
                               : "is it a capture of a meter's P1 port?");
        status = 1;
    } else if (!status && c->untimed == c->accepted && !c->stored) {
        /* nothing could be placed in the history: the file is not recorded as imported */
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " telegram%s, none with a time: the meter sends no "
                "0-0:1.0.0 (DSMR 2.2 and 3.0 meters do not) and the lines carry no timestamp "
                "(ISO-8601 or unix seconds) to use instead; nothing was stored\n",
                path, c->untimed, c->untimed == 1 ? "" : "s");
        status = 1;
        compressed = -1; /* said: no summary */
    } else if (!status) {
        if (commit_batch(c, key, path, before + (int64_t)c->accepted, 1) < 0)
            status = 1;
        else
            committed = c->stored;
    }
    c->has_held = 0; /* a last reading held (end_held()) was not stored */
    /* the commits decided where the older readings go: into the history, or skipped */
    store_get_stats(c->s, &st1);
    c->backfilled = st1.backfilled - st0.backfilled;
    c->skipped += st1.covered - st0.covered;
    c->older += st1.covered - st0.covered;
    committed = st1.committed - st0.committed; /* a failed backfill rolled back its batches */
    c->committed = committed;
    c->stored += c->backfilled;
    if (status && c->older_queued && !c->backfilled && !quiet)
        fprintf(stderr, "p1 import: %s: the backfill was rolled back as a whole: none of the "
                "older readings is stored\n", path);
    status |= truncated;
    double secs = (double)(now_ns() - t0) / 1e9;
    char lost[64] = ""; /* queued readings whose commit failed were not stored */
    if (c->stored > committed)
        snprintf(lost, sizeof lost, ", %" PRIu64 " not written (see above)", c->stored - committed);
    if (!quiet && compressed >= 0 && c->untimed) {
        fprintf(stderr, "p1 import: %s: %" PRIu64 " telegram%s without a time: not stored\n",
                path, c->untimed, c->untimed == 1 ? "" : "s");
    }
    if (!quiet && compressed >= 0 && c->prefix_timed && !c->probe)
        fprintf(stderr, "p1 import: %s: %" PRIu64 " telegram%s without a meter time, timed by "
                "the timestamp of their line\n", path, c->prefix_timed,
                c->prefix_timed == 1 ? "" : "s");
    if (!quiet && compressed >= 0 && c->glitches)
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " reading%s dropped: the meter's clock jumped more "
                "than %d s ahead or back and returned with the next telegram\n",
                path, c->glitches, c->glitches == 1 ? "" : "s", IMPORT_JUMP_S);
    if (!quiet && compressed >= 0 && c->unconfirmed)
        fprintf(stderr,
                "p1 import: %s: the last telegram dropped: the meter's clock jumped more than "
                "%d s %s from the reading before it, and no telegram follows to confirm it (an "
                "import of the grown capture reads it again)\n",
                path, IMPORT_JUMP_S, c->held_back ? "back" : "ahead");
    if (!quiet && compressed >= 0 && c->backfilled)
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " reading%s older than the meter's newest stored one "
                "backfilled: before its first stored reading or in a gap of its history (over "
                "%d s without a reading), stored as an import in time order would have\n",
                path, c->backfilled, c->backfilled == 1 ? "" : "s", STORE_GAP_MIN);
    if (!quiet && compressed >= 0 && c->older)
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " reading%s at times the meter's history already "
                "covers: already stored, skipped\n",
                path, c->older, c->older == 1 ? "" : "s");
    char bf[48] = ""; /* how many of the stored readings were backfilled */
    if (c->backfilled)
        snprintf(bf, sizeof bf, " (%" PRIu64 " backfilled)", c->backfilled);
    if (!quiet && compressed >= 0 && (c->accepted || !status))
        fprintf(stderr,
                "p1 import: %s: %" PRIu64 " telegram%s, %" PRIu64 " stored%s%s, %" PRIu64
                " skipped (already stored or no valid time), %" PRIu64 " rejected, %.2f s, "
                "%.0f telegrams/s, %.1f MB/s\n",
                path, c->accepted, c->accepted == 1 ? "" : "s", committed,
                bf, lost, c->skipped,
                c->rejected, secs, secs > 0 ? (double)c->accepted / secs : 0.0,
                secs > 0 ? (double)(pos - (uint64_t)offset) / 1e6 / secs : 0.0);
    free(p);
    free(buf);
    free(x);
    gzclose(gz);
    return status;
}

/* The meter time of the first timed telegram in the first IMPORT_SNIFF bytes of path: the
 * key that puts several files in order. 0 when there is none or path cannot be read. */
static int64_t first_time(const char *path, const p1_settings *set, int text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    gzFile gz = fd < 0 ? NULL : gzdopen(fd, "rb");
    import_ctx *c = calloc(1, sizeof *c);
    p1_parser *p = malloc(sizeof *p);
    uint8_t *buf = malloc(IMPORT_CHUNK);
    import_text *x = calloc(1, sizeof *x);
    int64_t ts = 0;
    if (gz && c && p && buf && x) {
        p1_callbacks cb = {on_begin, on_object, on_end};
        c->probe = 1;
        p1_parser_init(p, set, &cb, c);
        int n;
        for (uint64_t pos = 0; !c->first_ts && pos < IMPORT_SNIFF &&
                               (n = gzread(gz, buf, IMPORT_CHUNK)) > 0; pos += (uint64_t)n) {
            if (text && pos == 0 && binary_frames(buf, (size_t)n))
                text = 0;
            if (text && pos == 0) {
                x->escaped = text_escaped(buf, (size_t)n);
                x->lf = text_lf(buf, (size_t)n, set, x->escaped);
            }
            if (text)
                text_feed(c, x, p, buf, (size_t)n, pos);
            else
                p1_execute(p, buf, (size_t)n);
        }
        ts = c->first_ts;
    }
    if (gz)
        gzclose(gz);
    else if (fd >= 0)
        close(fd);
    free(c);
    free(p);
    free(buf);
    free(x);
    return ts;
}

typedef struct import_order {
    const char *path;
    int64_t ts;
    int argi;
} import_order;

static int order_cmp(const void *a, const void *b)
{
    const import_order *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->argi - y->argi; /* stable: equal times keep the command line's order */
}

/* The options that take a value. */
static const char *const import_value_opts[] = {"--db", "--meter", "--crc", "--key", "--ak"};
#define IMPORT_VALUE_OPTS (sizeof import_value_opts / sizeof import_value_opts[0])

/* 1 when option a is followed by its value. */
static int import_takes_value(const char *a)
{
    for (size_t k = 0; k < IMPORT_VALUE_OPTS; k++)
        if (!strcmp(a, import_value_opts[k]))
            return 1;
    return 0;
}

/* p1_opt_value() for each option that takes a value: 1 with *v set, 0 not one of them, -1 its
 * value is missing, P1_OPT_TWICE given before. */
static int import_opt_value(int argc, char **argv, int *i, const char **v)
{
    int r = 0;
    for (size_t k = 0; !r && k < IMPORT_VALUE_OPTS; k++)
        r = p1_opt_value(argv, argc, i, import_value_opts[k], v);
    return r;
}

/* The next FILE argument from argv[*i] on, skipping the options and their values as
 * p1_import_main() parsed them; *rest is set after "--". NULL when there is none. */
static const char *next_file(int argc, char **argv, int *i, int *rest)
{
    while (*i < argc) {
        const char *a = argv[(*i)++];
        if (!*rest && !strcmp(a, "--"))
            *rest = 1;
        else if (!*rest && a[0] == '-' && a[1])
            *i += import_takes_value(a);
        else
            return a;
    }
    return NULL;
}

/* 1 when path is read once, as it comes: standard input, a pipe, a terminal. */
static int streamed(const char *path)
{
    struct stat sb;
    return !strcmp(path, "-") || (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode));
}

/* 0 when path is a file p1 import can read, else the errno that says why not. */
static int file_problem(const char *path)
{
    struct stat sb;
    if (!strcmp(path, "-"))
        return 0;
    /* opened and closed here, a named pipe would end its writer's stream */
    if (stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode))
        return access(path, R_OK) < 0 ? errno : 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : fstat(fd, &sb) < 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    if (fd >= 0)
        close(fd);
    return e;
}

/* Removes the database db and its companions (SQLite's -wal and -shm, the writer's .lock). */
static void remove_created(const char *db)
{
    static const char *const ext[] = {"", "-wal", "-shm", ".lock"};
    char file[PATH_MAX], path[PATH_MAX];

    if (store_file_path(db, file, sizeof file) <= 0)
        return; /* created is 0 for those */
    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++)
        if (snprintf(path, sizeof path, "%s%s", file, ext[k]) < (int)sizeof path)
            unlink(path);
}

/* store_meters() callback: the time of the import's meter's newest reading into last_ts. */
static int newest_of(void *user, const store_meter_info *m)
{
    import_ctx *c = user;
    if (!strcmp(m->name, c->meter))
        c->last_ts = m->last;
    return 0;
}

int p1_import_main(int argc, char **argv)
{
    const char *db = "p1d.db", *meter = "home", *key = NULL, *ak = NULL;
    int quiet = 0, nfiles = 0, nstdin = 0, only_files = 0, skip_tag = 0;
    p1_settings set;
    memset(&set, 0, sizeof set);
    set.crc = P1_CRC_OPTIONAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r = 0;
        if (only_files || a[0] != '-' || !a[1]) {
            nfiles++;
            nstdin += !strcmp(a, "-");
        } else if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(import_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--skip-tag")) {
            skip_tag = 1;
        } else if ((r = import_opt_value(argc, argv, &i, &v)) > 0) {
            if (!strncmp(a, "--db", 4)) {
                db = v;
            } else if (!strncmp(a, "--meter", 7)) {
                meter = v;
            } else if (!strncmp(a, "--key", 5)) {
                key = v;
            } else if (!strncmp(a, "--ak", 4)) {
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
        } else if (r == P1_OPT_TWICE) {
            return p1_opt_twice("p1 import", a);
        } else if (r < 0) {
            fprintf(stderr, "p1 import: missing value for '%s' (try 'p1 import --help')\n", a);
            return 2;
        } else {
            static const char *const opts[] = {"--help",  "--quiet", "--skip-tag", "--db",
                                               "--meter", "--crc",   "--key",      "--ak"};
            return p1_unknown_option("p1 import", a, opts, sizeof opts / sizeof opts[0]);
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
    if (nstdin > 1) {
        fprintf(stderr, "p1 import: standard input (-) given twice (try 'p1 import --help')\n");
        return 2;
    }
    int kept = p1_db_kept("p1 import", db);
    if (kept)
        return kept;
    p1_calendar_zone(db); /* the times of a capture's line prefixes, and the new days */
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
    /* A database this run creates and then stores nothing in is removed again: a mistyped
     * path or a file that is no capture leaves nothing behind to be mistaken for a history. */
    struct stat st;
    char file[PATH_MAX];
    int created =
        store_file_path(db, file, sizeof file) > 0 && stat(file, &st) < 0 && errno == ENOENT;
    char err[STORE_ERR_MAX];
    store_options o;
    store_options_default(&o);
    o.queue_max = IMPORT_BATCH * 2;
    o.writer = "p1 import"; /* p1d keeps open blocks in memory: refuse while it runs */
    o.backfill = 1;         /* older readings fill the history's gaps and its past */
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
    /* the jump guard judges a run's first telegram by the meter's newest stored reading */
    int r = store_meters(c->s, newest_of, c);
    if (r < 0) {
        fprintf(stderr, "p1 import: %s: %s\n", db, strerror(-r));
        store_close(c->s);
        free(c);
        return 1;
    }
    /* Several files go oldest first, by the meter time of their first telegram: in time order
     * every reading is appended, none has to be backfilled (a gap filled is one transaction,
     * and only gaps of the raw tier can be). Standard input and pipes cannot be read twice: they
     * go last. */
    import_order *order = calloc((size_t)nfiles, sizeof *order);
    if (!order) {
        fprintf(stderr, "p1 import: out of memory\n");
        store_close(c->s);
        free(c);
        return 1;
    }
    int n = 0, moved = 0;
    i = 1;
    rest = 0;
    while ((a = next_file(argc, argv, &i, &rest)) != NULL && n < nfiles) {
        order[n] = (import_order){a,
                                  streamed(a)  ? INT64_MAX
                                  : nfiles > 1 ? first_time(a, &set, key == NULL)
                                               : 0,
                                  n};
        n++;
    }
    qsort(order, (size_t)n, sizeof *order, order_cmp);
    for (int k = 0; k < n; k++)
        moved |= order[k].argi != k;
    if (moved && !quiet)
        fprintf(stderr, "p1 import: %d files, imported oldest first\n", n);
    int status = 0;
    uint64_t stored = 0;
    for (int k = 0; k < n; k++) {
        if (import_file(c, order[k].path, quiet, &set, key == NULL) != 0)
            status = 1;
        stored += c->committed;
    }
    free(order);
    /* retention applies to imports too: raw readings older than the newest minus raw_keep go */
    while ((r = store_maintain(c->s)) > 0)
        ;
    if (r < 0) {
        fprintf(stderr, "p1 import: retention: %s\n", strerror(-r));
        status = 1;
    }
    store_close(c->s);
    free(c);
    if (created && stored == 0)
        remove_created(db);
    return status;
}
