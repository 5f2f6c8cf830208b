/* source_impl.h: what the source kinds (source_serial.c, source_tcp.c, source_file.c,
 * source_sim.c) share with the common decoding code in source.c. Not used outside source*.c. */
#ifndef P1D_SOURCE_IMPL_H
#define P1D_SOURCE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "p1/crypt.h"
#include "p1/p1.h"
#include "p1/reading.h"
#include "source.h"

#define SOURCE_READ_MAX 16384   /* bytes taken from an fd per readiness event */
#define SOURCE_MSG_MAX 160      /* one status message (= sizeof meter.last_error) */
#define SOURCE_REJECT_LOG_EVERY 100 /* after the first, one log line per this many rejects */
#define SOURCE_REJECT_LOG_MS 10000  /* ... and at most one per this long */
#define SOURCE_WARN_REPEAT_MS 3600000 /* a value left out, logged again at most this often */
#define SOURCE_QUIET_MS 1000    /* a line quiet this long ends a telegram that has no end line */
#define SOURCE_KEY_FAILS 3      /* frames in a row failing a key that worked before it is blamed */
/* Equipment id changes logged one by one; later ones once per SOURCE_WARN_REPEAT_MS. */
#define SOURCE_ID_LOG_LOUD 2

/* A parser and the reading it builds. A serial line with parity=auto runs a second one on the
 * bytes with bit 7 cleared until one of them decodes a telegram. */
typedef struct source_decoder {
    p1_parser parser;
    p1_reading reading;
    source *s;
    int masked;
} source_decoder;

/* Kind-specific operations. start() runs once from source_new, stop() once from source_free. */
typedef struct source_ops {
    int (*start)(source *s);
    void (*stop)(source *s);
    /* Called after each telegram the active decoder completed (ok = accepted); may be NULL.
     * When rejected, s->key_reject says whether only the key failed on a whole frame, and
     * s->reject_error why it was rejected. */
    void (*telegram)(source *s, int ok);
} source_ops;

struct source {
    loop *l;
    source_log *log;         /* shared by every source, borrowed */
    meter *m;
    config_source cfg;
    const sim_registers *stored; /* source_new's, during start() only; NULL otherwise */
    p1_crypt crypt;
    const source_ops *ops;
    void *impl;              /* the kind's own state, owned by the kind */
    source_decoder *dec;     /* active decoder */
    source_decoder *twin;    /* bit-7-masked candidate (serial parity=auto), or NULL */
    int mask;                /* clear bit 7 of every byte before decoding (7E1 read as 8N1) */
    int twin_won;            /* set during feeding when the twin decoded first */
    int primary_won;
    int64_t backoff_ms;      /* next reconnect delay */
    int connected_before;    /* a later connect counts as a reconnect */
    char logged[SOURCE_MSG_MAX]; /* last status logged: log once per change */
    int64_t reject_logged_ms;    /* loop_now_ms() of the last reject logged at info, 0 none */
    char warned[SOURCE_MSG_MAX]; /* the last value left out of an accepted telegram, logged */
    int64_t warned_ms;           /* loop_now_ms() when it was logged */
    p1_error key_error;      /* NO_KEY or DECRYPT_FAILED until a telegram decodes, else OK */
    int key_reject;          /* the last telegram was a whole encrypted frame the key failed */
    p1_error reject_error;   /* why the last telegram was rejected, P1_ERR_OK when accepted */
    int key_worked;          /* a frame decrypted with this key since the source started */
    int x25_told;            /* the log said once that the meter's CRC is CRC-16/X-25 */
    unsigned unit_told; /* bit per p1_medium: the log said its M-Bus value's unit is unusable */
    int end_lines;           /* the last accepted telegram ended in "!CRC": telegrams end by
                              * themselves, so a quiet line mid-telegram is a pause, not an end */
    int key_fails;           /* frames failing authentication in a row */
    int id_seen;             /* a telegram with an equipment id arrived since the start */
    uint64_t id_changes;     /* the meter's equipment id changed this often since the start */
    int64_t id_logged_ms;    /* loop_now_ms() when such a change was last logged, 0 never */
    /* Bytes since the last telegram that decoded or source_undecoded_reset(): a line that
     * delivers but never decodes (source_garbage). */
    int64_t undecoded_ms; /* loop_now_ms() of the first of them, 0 none */
    uint64_t undecoded;
    uint64_t binary;      /* ... of which neither printable ASCII nor CR/LF */
    int garbage_reported; /* source_garbage() said so; cleared by a telegram that decodes */
    /* pace=recorded: an accepted telegram is held here until the kind releases it. */
    int hold;
    int held;
    p1_reading *held_reading;
    uint8_t *held_raw;
    size_t held_len;
};

/* Feeds bytes read from the source to the decoder(s); counts them on the meter. */
void source_feed(source *s, const uint8_t *buf, size_t n);
/* The line went quiet or ended: completes a telegram still being collected. */
void source_finish(source *s);
/* Drops any partial telegram (after reopening or changing line settings). */
void source_reset(source *s);
/* Starts or stops the bit-7-masked twin decoder. Returns 0 or -ENOMEM. */
int source_twin(source *s, int on);
/* Sets the meter's state (and last_error to msg for warnings, "" otherwise) and logs msg at
 * `level` when it differs from the last message logged: a retry loop logs once per change. */
void source_status(source *s, meter_state st, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The current reconnect delay; doubles it for next time, up to reconnect_max. */
int64_t source_backoff(source *s);
/* Resets the reconnect delay to reconnect_min. */
void source_backoff_reset(source *s);
/* Records a successful (re)connect on the meter. */
void source_connected(source *s);
/* Forgets the bytes counted as undecoded (after a (re)open or connect). */
void source_undecoded_reset(source *s);
/* Bytes have arrived for `window` ms and not one telegram decoded, and no key problem explains
 * it: returns the percentage of them that is not text (a cable that does not invert, the wrong
 * speed: mostly binary) for the kind to word its warning, once until a telegram decodes (which
 * logs "telegrams decode on TARGET"); -1 otherwise. */
int source_garbage(source *s, int64_t window);
/* pace=recorded: hands the held telegram to the meter. */
void source_release(source *s);

extern const source_ops source_serial_ops;
extern const source_ops source_tcp_ops;
extern const source_ops source_file_ops;
extern const source_ops source_sim_ops;

#endif
