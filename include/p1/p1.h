/* p1.h: libp1, a streaming, allocation-free decoder for P1 (DSMR) smart-meter telegrams. */
#ifndef P1_P1_H
#define P1_P1_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define P1_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------------
 * Limits. Every one is a named maximum; reaching it is an error code, never undefined behaviour.
 * Each may be overridden at compile time (-DP1_TELEGRAM_MAX=32768); the library and its users
 * must be built with the same values because they size the public structs.
 * ------------------------------------------------------------------------------------------- */
#ifndef P1_TELEGRAM_MAX
#define P1_TELEGRAM_MAX 16384 /* bytes of one telegram, '/' through the end line, or one frame */
#endif
#ifndef P1_VALUES_MAX
#define P1_VALUES_MAX 64 /* values of one object: BE 98.1.0 with 13 months needs 41 */
#endif
#ifndef P1_HEADER_MAX
#define P1_HEADER_MAX 128 /* bytes of the identification line after '/' */
#endif

/* ---------------------------------------------------------------------------------------------
 * Errors. One X-macro list makes the enum, p1_error_name() and p1_error_message().
 * X(ENUM_SUFFIX, "name", "message"). New codes go at the end; names are a public contract
 * (they appear in `p1 decode` output and in the daemon's API).
 * ------------------------------------------------------------------------------------------- */
#define P1_STR_(x) #x
#define P1_STR(x)  P1_STR_(x) /* a limit's value in a message */
#define P1_ERRORS(X)                                                                               \
    X(OK, "ok", "no error")                                                                        \
    X(TRUNCATED, "truncated", "telegram cut off: a new header or idle line came before its end")   \
    X(TOO_LONG, "too_long",                                                                        \
      "telegram longer than " P1_STR(P1_TELEGRAM_MAX) " bytes (or the parser's lower limit)")      \
    X(CRC_MISMATCH, "crc_mismatch", "CRC in the end line does not match the telegram")             \
    X(CRC_MISSING, "crc_missing", "CRC is required but the end line has none")                     \
    X(BAD_END_LINE, "bad_end_line", "end line is not '!' followed by 0-4 hex digits")              \
    X(BAD_HEADER, "bad_header", "identification line is empty, too long or not text")              \
    X(BAD_OBIS, "bad_obis", "object line does not start with an OBIS code A-B:C.D.E")              \
    X(BAD_SYNTAX, "bad_syntax", "unbalanced or misplaced parenthesis in an object line")           \
    X(TOO_MANY_VALUES, "too_many_values", "object has more than " P1_STR(P1_VALUES_MAX) " values") \
    X(NUMBER_OVERFLOW, "number_overflow", "numeric value with a unit does not fit 64 bits")        \
    X(BAD_BYTE, "bad_byte", "control or non-ASCII byte outside a value")                           \
    X(BAD_FRAME, "bad_frame", "encrypted frame header is malformed")                               \
    X(NO_KEY, "no_key", "encrypted frame but no decryption key is configured")                     \
    X(DECRYPT_FAILED, "decrypt_failed", "encrypted frame failed authentication (wrong key?)")      \
    X(HDLC_UNSUPPORTED, "hdlc_unsupported", "binary HDLC/DLMS frame (0x7E): not a P1 text meter")  \
    X(MBUS_UNSUPPORTED, "mbus_unsupported", "binary M-Bus frame (0x68): not a P1 text meter")      \
    X(BAD_PLAINTEXT, "bad_plaintext", "decrypted frame does not hold one P1 text telegram")        \
    X(BAD_VALUE, "bad_value", "value of a known object is not the number it must be")              \
    X(BAD_UNIT, "bad_unit", "value of a known object is in the unit of another quantity")

typedef enum p1_error {
#define P1_X_ENUM(e, name, msg) P1_ERR_##e,
    P1_ERRORS(P1_X_ENUM)
#undef P1_X_ENUM
        P1_ERR__COUNT
} p1_error;

/* Short machine name of an error ("crc_mismatch"); "unknown" for out-of-range values. Static. */
const char *p1_error_name(p1_error e);
/* One-sentence human message for an error. Static string. */
const char *p1_error_message(p1_error e);

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

/* A meter timestamp as sent: calendar fields in the meter's local time plus the DST letter. */
typedef struct p1_time {
    uint16_t year; /* full year: 2000 + YY */
    uint8_t month, day, hour, minute, second;
    int8_t dst;    /* P1_DST_*: the letter sent, or the reading's verdict for the zone */
    uint8_t valid; /* 0 for placeholders (632525252525, 000101000000, month 34, ...) */
    uint8_t zone;  /* P1_ZONE_*: the meter's zone; the parser leaves CET, the reading decides */
} p1_time;

/* p1_time.zone values: the standard time of the meter's country. CET and EET follow the EU
 * summer-time rule (from the last Sunday of March to that of October, switching at 01:00 UTC);
 * Israel its own (from the Friday before the last Sunday of March, 02:00, to the last Sunday of
 * October, 02:00 summer time: 01:00-01:59 happens twice). */
#define P1_ZONE_CET 0 /* UTC+1, summer UTC+2: NL, BE, LU, AT, SE, HU, ... */
#define P1_ZONE_EET 1 /* UTC+2, summer UTC+3: Lithuania (ESO meters) */
#define P1_ZONE_IL  2 /* UTC+2, summer UTC+3: Israel (Kaifa meters) */

/* p1_time.dst values. */
#define P1_DST_NONE -1    /* no letter sent (DSMR 2.2/3.0, Iskra IE5T) */
#define P1_DST_WINTER 0   /* 'W' */
#define P1_DST_SUMMER 1   /* 'S' */
#define P1_DST_STANDARD 2 /* normal time all year (Swedish meters); set by p1_reading_end() */

/* What a value's characters can be read as; several bits may be set (a 12-digit run is both a
 * number and a time). Decided by syntax alone, without knowledge of the OBIS code. */
enum {
    P1_V_EMPTY = 1 << 0,    /* "()" */
    P1_V_NUMBER = 1 << 1,   /* [-]digits[.digits], fits int64: see number/decimals */
    P1_V_TIME = 1 << 2,     /* YYMMDDhhmmss with optional S/W: see time (check time.valid) */
    P1_V_HEX = 1 << 3,      /* even count of hex digits: p1_value_text() may decode it */
    P1_V_OBIS = 1 << 4,     /* an OBIS reference such as "0-0:96.7.19": see obis_ref */
    P1_V_UNIT = 1 << 5,     /* a unit was attached, after '*' or glued to the digits */
    P1_V_OVERFLOW = 1 << 6, /* digits with a unit that do not fit int64: no P1_V_NUMBER, number
                             * 0; the telegram is reported as P1_ERR_NUMBER_OVERFLOW */
};

/* An OBIS code A-B:C.D.E[.F]; f is 255 when no F group was sent. */
typedef struct p1_obis {
    uint8_t a, b, c, d, e, f;
} p1_obis;

/* p1_value.unit_code: the unit classified once by the parser (ASCII case ignored, so "VArh" is
 * P1_UNIT_VARH), so that readers need no string work. A value built by hand may leave it
 * P1_UNIT_UNKNOWN (0): p1_value_fixed() then looks at the unit string itself. */
enum {
    P1_UNIT_UNKNOWN = 0, /* not classified: look at unit/unit_len */
    P1_UNIT_NONE,        /* no unit was sent */
    P1_UNIT_OTHER,       /* a unit not listed here ("%", "kJ", ...): see unit */
    P1_UNIT_KWH,
    P1_UNIT_WH,
    P1_UNIT_KW,
    P1_UNIT_W,
    P1_UNIT_KVARH,
    P1_UNIT_VARH,
    P1_UNIT_KVAR,
    P1_UNIT_VAR,
    P1_UNIT_KVAH,
    P1_UNIT_VAH,
    P1_UNIT_KVA,
    P1_UNIT_VA,
    P1_UNIT_V,
    P1_UNIT_A,
    P1_UNIT_HZ,
    P1_UNIT_M3,
    P1_UNIT_DM3,
    P1_UNIT_GJ,
    P1_UNIT_MJ,
    P1_UNIT_S,
    /* Other prefixes, which meters rarely send. Case is ignored, and no meter counts in mWh, mW,
     * MA or mV, so "mwh" is MWh and "ma" is mA. */
    P1_UNIT_MWH,   /* MWh */
    P1_UNIT_MW,    /* MW */
    P1_UNIT_MVARH, /* Mvarh */
    P1_UNIT_MVAR,  /* Mvar */
    P1_UNIT_MVAH,  /* MVAh */
    P1_UNIT_MVA,   /* MVA */
    P1_UNIT_KV,    /* kV */
    P1_UNIT_MA,    /* mA */
    P1_UNIT_L,     /* litre (l, L) */
    P1_UNIT_KA,    /* kA (Lithuanian ESO meters, 2023: currents as 0000.003*kA) */
    P1_UNIT_KHZ,   /* kHz (the same meters: frequency as 0.050*kHz) */
    P1_UNIT__COUNT
};

/* One value between parentheses. Pointers borrow the parser's telegram buffer and live until
 * the on_end callback of the same telegram returns. raw, raw_len, flags, offset, unit, unit_len,
 * unit_code, number and decimals are always set (NULL / 0 when they do not apply); time means
 * something only when flags has P1_V_TIME and obis_ref only with P1_V_OBIS (otherwise they are
 * filled too, the same way for the same bytes, but carry nothing to rely on). */
typedef struct p1_value {
    const char *raw; /* characters between the parentheses, unit (and its '*') removed */
    const char *unit;   /* unit as sent ("kWh", "m3", "kvar"), or NULL */
    uint16_t raw_len;
    uint8_t unit_len;
    uint8_t flags;      /* P1_V_* */
    int8_t decimals;    /* number = mantissa / 10^decimals */
    uint8_t unit_code;  /* P1_UNIT_*: unit classified (P1_UNIT_NONE without unit) */
    int64_t number;     /* mantissa, valid when flags & P1_V_NUMBER */
    p1_time time;       /* valid when flags & P1_V_TIME */
    p1_obis obis_ref;   /* valid when flags & P1_V_OBIS */
    uint64_t offset;    /* stream offset of the '(' (of the outer '(' for "((x))") */
} p1_value;

/* One object line (plus its continuation lines): OBIS code and all of its values. */
typedef struct p1_object {
    p1_obis obis;
    uint16_t nvalues;
    /* 1: the object stands inside a block that another object opened with an OBIS line alone
     * followed by a line "(" (Holley DTSD545: 0-0:98.1.0, the registers at the end of the last
     * billing period), up to a line ")" or the end line; block is that object's code. The
     * opening object itself has no values. A reading takes nothing from a block. */
    uint8_t in_block;
    p1_obis block;
    uint64_t offset;  /* stream offset of the object's first byte */
    const char *line; /* the object's bytes as sent, from the OBIS code to the last ')' */
    size_t line_len;
    p1_value values[P1_VALUES_MAX];
} p1_object;

/* Writes "A-B:C.D.E" (and ".F" when f != 255) with a NUL into out[cap >= 24]; returns length. */
size_t p1_obis_format(const p1_obis *o, char *out, size_t cap);
/* Packs A-B:C.D.E (F ignored) into one integer for switch statements; see P1_OBIS(). */
#define P1_OBIS(a, b, c, d, e)                                                                     \
    (((uint64_t)(a) << 32) | ((uint64_t)(b) << 24) | ((uint64_t)(c) << 16) | ((uint64_t)(d) << 8) | \
     (uint64_t)(e))
static inline uint64_t p1_obis_key(const p1_obis *o)
{
    return P1_OBIS(o->a, o->b, o->c, o->d, o->e);
}

/* Decodes a hex octet-string value into text when every byte is printable (space..'~' or
 * Latin-1/UTF-8 text bytes); writes a NUL-terminated string into out[cap]. Returns the text
 * length, or -1 when the value is not hex, not printable, or does not fit. */
int p1_value_text(const p1_value *v, char *out, size_t cap);

/* The value as a fixed-point integer with `scale` decimals (scale 0..9), rounding half away
 * from zero, with the unit normalised (Wh and MWh->kWh, W and MW->kW, varh and Mvarh->kvarh, var and
 * Mvar->kvar, VAh and MVAh->kVAh, VA and MVA->kVA, kV->V, mA->A, dm3 and l->m3, MJ->GJ) when
 * `normalise` is set. Returns 0 and sets *out, or -1 when not a number or on overflow.
 * *out is untouched on failure. */
int p1_value_fixed(const p1_value *v, int scale, int normalise, int64_t *out);
/* Classifies a unit string (ASCII case ignored) into a P1_UNIT_* code: P1_UNIT_NONE for NULL or
 * an empty unit, P1_UNIT_OTHER for units not listed. */
int p1_unit_code(const char *unit, size_t len);

/* Seconds since 1970-01-01 UTC of a meter time. The meter's zone is t->zone (Central European
 * Time unless the reading said otherwise) and its summer-time rule decides the offset (pure
 * arithmetic, no time-zone database): for CET UTC+2 in summer, UTC+1 in winter; for EET and
 * Israel one hour more. The S/W letter decides only the autumn hour that happens twice (real meters
 * send letters that contradict the calendar elsewhere, e.g. December 'S'); P1_DST_STANDARD means
 * the zone's standard time all year. Returns 0 and sets *out, or -1 for an invalid time. */
int p1_time_to_unix(const p1_time *t, int64_t *out);
/* The UTC offset in seconds that p1_time_to_unix() applies to t (CET: 3600 or 7200; EET and
 * Israel: 7200 or 10800). */
int p1_time_utc_offset(const p1_time *t);
/* Central European local time of unix seconds: calendar fields, dst P1_DST_SUMMER or
 * P1_DST_WINTER by the EU rule, valid 1 (so p1_time_to_unix() gives unix_s back). Returns 0, or
 * -1 when the local year is outside 1970..9999 (*out untouched). */
int p1_time_from_unix(int64_t unix_s, p1_time *out);
/* The UTC offset in seconds (7200 in EU summer time, else 3600) in force at unix seconds
 * unix_s: summer time from the last Sunday of March to that of October, 01:00 UTC both. */
int p1_unix_utc_offset(int64_t unix_s);
/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day 1..31; a day past the
 * month's end counts on into the next). Exact for |y| < 2^40. */
int64_t p1_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The proleptic Gregorian date of a day count since 1970-01-01 (|days| < 2^50); the inverse of
 * p1_days_from_civil(). All outputs are required. */
void p1_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* Days in month 1..12 of a proleptic Gregorian year; 0 for another month. */
unsigned p1_days_in_month(int64_t year, unsigned month);

/* ---------------------------------------------------------------------------------------------
 * Telegrams and the parser
 * ------------------------------------------------------------------------------------------- */

typedef enum p1_crc_policy {
    P1_CRC_OPTIONAL = 0, /* verify when sent; a telegram without CRC (DSMR <= 3.0) is accepted */
    P1_CRC_REQUIRED,     /* a telegram without a CRC is rejected with P1_ERR_CRC_MISSING */
    P1_CRC_IGNORE,       /* never reject on CRC; the verdict is still reported */
} p1_crc_policy;

typedef enum p1_crc_status {
    P1_CRC_ABSENT = 0, /* the end line carried no CRC (or there was no end line) */
    P1_CRC_VALID,
    P1_CRC_INVALID,
} p1_crc_status;

/* The whole telegram, passed to on_begin (partly filled) and on_end (complete). Pointers borrow
 * the parser's buffer and live until the callback returns. */
typedef struct p1_telegram {
    uint64_t offset;       /* stream offset of the '/' (or of the 0xDB of an encrypted frame) */
    const char *header;    /* identification after '/', without line end ("ISk5\2MT382-1000"):
                            * bytes as sent, never NUL, CR, DEL or >= 0x80 (bad_header), but
                            * other control bytes are kept: escape them before printing */
    size_t header_len;
    const uint8_t *raw;    /* the plaintext telegram from '/' through the end line's line end */
    size_t raw_len;        /* 0 in on_begin; in on_end of a rejected telegram, what was kept */
    const uint8_t *frame;  /* encrypted: the whole frame as received; NULL for plain text */
    size_t frame_len;
    p1_error error;        /* P1_ERR_OK when accepted */
    uint64_t error_offset; /* stream offset where the error was found */
    p1_obis error_obis;    /* P1_ERR_NUMBER_OVERFLOW: the object whose value it was; else 0s */
    p1_crc_status crc;
    uint16_t crc_sent;     /* the CRC in the end line (when crc != ABSENT) */
    uint16_t crc_computed; /* CRC-16/ARC over '/'..'!' (when an end line was seen); the X-25
                            * one when crc_x25 */
    uint8_t crc_x25;       /* 1: crc_sent is no CRC-16/ARC but CRC-16/X-25 of the same bytes
                            * (Holley DTSD545): crc is P1_CRC_VALID */
    uint8_t has_end_line;  /* 0: completed by the next header or p1_finish() (DSMR 2.2) */
    uint8_t encrypted;     /* 1: decrypted from a 0xDB general-glo-ciphering frame */
    uint8_t security;      /* encrypted: the security control byte (0x30 or 0x20) */
    uint8_t system_title[8];
    uint32_t frame_counter;
    uint32_t nobjects;     /* objects delivered through on_object for this telegram */
} p1_telegram;

/* Decryption hook for 0xDB frames, supplied by the caller (libp1's own p1_crypt_decrypt() in
 * <p1/crypt.h> uses OpenSSL). Decrypts `frame[len]` into out[cap], sets *out_len and returns
 * P1_ERR_OK, or returns an error code (P1_ERR_NO_KEY, P1_ERR_DECRYPT_FAILED, P1_ERR_BAD_FRAME). */
typedef p1_error (*p1_decrypt_fn)(void *decrypt_user, const uint8_t *frame, size_t len,
                                  uint8_t *out, size_t cap, size_t *out_len);

/* Callbacks; any may be NULL. They run inside p1_execute()/p1_finish() and must not call back
 * into the same parser. Objects of a telegram are delivered before its CRC verdict is known:
 * keep them provisional until on_end reports error == P1_ERR_OK. */
typedef struct p1_callbacks {
    void (*on_begin)(void *user, const p1_telegram *t);  /* header line complete */
    void (*on_object)(void *user, const p1_object *o);   /* one complete object */
    void (*on_end)(void *user, const p1_telegram *t);    /* accepted or rejected; always once */
} p1_callbacks;

typedef struct p1_settings {
    p1_crc_policy crc;
    size_t telegram_max;        /* 0 = P1_TELEGRAM_MAX; smaller values lower the limit */
    p1_decrypt_fn decrypt;      /* NULL: encrypted frames are rejected with P1_ERR_NO_KEY */
    void *decrypt_user;
} p1_settings;

/* The parser. Caller-allocated (about P1_TELEGRAM_MAX * 2 bytes + one p1_object + 30 KiB);
 * fields are private and may change between versions. The struct holds no pointers into itself,
 * so it may be copied between telegrams. */
#define P1_PARSER_PAD 8 /* spare bytes after each buffer: room for a line-end sentinel */
#define P1_OBIS_CACHE 64 /* object lines whose OBIS text the parser remembers (private) */
typedef struct p1_obis_seen {
    uint64_t text[2], mask[2]; /* the OBIS code's bytes through its '(' as loaded, and which */
    p1_obis obis;
    uint8_t len;               /* 0: empty */
} p1_obis_seen;
#define P1_LINE_SEEN_MAX 96 /* longest object line (through its LF) remembered whole (private) */
#define P1_LINE_VALUES 6    /* most values of a remembered line (private) */
#define P1_VALUE_MIDDLE 32  /* bytes of a p1_value from raw_len up to offset (private) */
typedef struct p1_line_seen {
    /* what every line taken reads first, together */
    uint8_t len;                     /* 0: empty; else bytes through the LF */
    uint8_t blocks, need;            /* 16-byte blocks compared (2..); input bytes read at most */
    uint8_t nvalues, end, modern;    /* values; index after the last ')'; DSMR >= 4 object */
    p1_obis obis;
    uint8_t kind[P1_LINE_VALUES];    /* how a value is redone from the new digits */
    uint8_t dig[P1_LINE_VALUES];     /* index of its first digit */
    uint8_t nint[P1_LINE_VALUES], nfrac[P1_LINE_VALUES]; /* digits before and after the '.' */
    uint8_t open[P1_LINE_VALUES];    /* index of the value's '(' */
    uint8_t raw[P1_LINE_VALUES];     /* index of the value's first character */
    uint8_t unit[P1_LINE_VALUES];    /* index of its unit, 0 for none */
    /* per 16 bytes of the line: the bytes ('0' where a digit goes), then their limits; a byte
     * matches when (byte ^ text) <= limit: 0 the same byte, 9 a digit, 255 past the line */
    uint8_t pattern[2 * P1_LINE_SEEN_MAX];
    /* each value as parsed: the bytes of its p1_value from raw_len up to offset (raw, unit and
     * offset are redone per line) */
    uint8_t values[P1_LINE_VALUES][P1_VALUE_MIDDLE];
} p1_line_seen;
typedef struct p1_parser {
    p1_settings settings;
    p1_callbacks cb;
    void *user;
    uint64_t pos;          /* stream offset of the next byte */
    uint64_t start;        /* stream offset of the telegram's '/' or the frame's first byte */
    uint64_t base;         /* stream offset of the telegram buffer's first byte */
    uint64_t vopen_off;    /* stream offset of the '(' of a value still open at a line end */
    uint64_t res_off;      /* encrypted: error offset found by the plaintext pass */
    uint32_t state;        /* hunting, text telegram, binary detection, frame, skipping */
    uint32_t tstate;       /* in a text telegram: header, line start, line, end line */
    uint32_t flags;
    uint32_t limit;        /* effective telegram_max */
    uint32_t len;          /* bytes in the telegram buffer (buf, or plain when encrypted) */
    uint32_t line_start;   /* index of the line being collected */
    uint32_t need;         /* frame: total length once known; skipping: bytes left */
    uint32_t obj_start;    /* index of the pending object's first byte */
    uint32_t obj_end;      /* index after the pending object's last ')' */
    uint32_t bang;         /* index of the end line's '!' */
    uint32_t header_len;
    uint32_t frame_len;
    uint32_t frame_hdr;    /* encrypted: bytes before the ciphertext */
    uint32_t next_at;      /* encrypted: index of a 0xDB in the body that may begin the next
                            * frame (this one cut short); 0 = none */
    uint32_t scr_len;      /* scratch bytes used by values joined across line ends */
    uint32_t vopen_scr;    /* scratch index of the open value's text */
    uint32_t nobjects;
    uint32_t frame_counter;
    uint16_t crc_sent;
    uint16_t crc_computed;
    uint32_t crc_pos;
    uint64_t crc_acc[2];   /* CRC of tb[0..crc_pos), folded in while the lines are parsed: a
                            * 128-bit remainder where the CPU multiplies, else the state (crc.c) */
    uint8_t crc_digits;
    uint8_t crc_x25; /* the end line's CRC matched as CRC-16/X-25 (p1_telegram) */
    uint8_t crc_status;
    uint8_t res_err;       /* encrypted: result of the plaintext pass */
    uint8_t security;
    uint8_t system_title[8];
    uint8_t verr; /* P1_ERR_NUMBER_OVERFLOW once a value overflowed: the telegram is
                   * parsed to its end and reported with that error (verr_off, _obis) */
    p1_obis verr_obis;
    uint64_t verr_off;
    uint64_t lines_valid;  /* bit n: lines[n] was written (lines[] is not cleared up front) */
    p1_obis_seen seen[P1_OBIS_CACHE]; /* by object index: last telegram's OBIS texts */
    p1_line_seen lines[P1_OBIS_CACHE]; /* by object index: last telegram's short lines */
    uint8_t buf[P1_TELEGRAM_MAX + P1_PARSER_PAD];   /* the telegram, or the encrypted frame */
    uint8_t plain[P1_TELEGRAM_MAX + P1_PARSER_PAD]; /* decrypted telegram; else joined values */
    p1_object obj;         /* the object being collected, delivered through on_object */
} p1_parser;

/* Initialises p (all fields); settings and callbacks are copied, NULL means defaults/none.
 * `user` is passed to every callback. Never fails. */
void p1_parser_init(p1_parser *p, const p1_settings *s, const p1_callbacks *cb, void *user);
/* Feeds len bytes of the stream; any split of the stream gives identical callbacks. Returns the
 * number of telegrams completed (accepted or rejected) by these bytes. Never fails: errors are
 * reported per telegram through on_end. */
size_t p1_execute(p1_parser *p, const void *data, size_t len);
/* Tells the parser the line went idle or the stream ended: a telegram still being collected is
 * completed now (accepted if it is a complete DSMR 2.2 telegram without end line, else rejected
 * as P1_ERR_TRUNCATED). Returns the number of telegrams completed (0 or 1). */
size_t p1_finish(p1_parser *p);
/* Drops any partial telegram without reporting it, keeps settings, callbacks and the stream
 * offset. Use after reopening a source. */
void p1_parser_reset(p1_parser *p);

/* CRC-16/ARC (poly 0x8005 reflected, init 0) over data, continuing from crc (start with 0). */
uint16_t p1_crc16(uint16_t crc, const void *data, size_t len);
/* CRC-16/X-25 (poly 0x1021 reflected, init and final XOR 0xFFFF; "123456789" gives 0x906E),
 * which some meters send instead of DSMR's CRC-16/ARC. Bit by bit: for the rare telegram whose
 * CRC-16/ARC did not match. */
uint16_t p1_crc16_x25(const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
