/* json.h: a small bounded JSON writer: appends to a fixed or growable buffer, escapes any bytes. */
#ifndef P1D_JSON_H
#define P1D_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX          32 /* nesting of objects/arrays; deeper is an error */
#define JSON_FIXED_DECIMALS_MAX 127 /* |decimals| accepted by json_fixed(): p1_value's int8_t range */

enum {
    JSON_PRETTY = 1 << 0, /* newline + two-space indent per level, ": " after keys */
};

/* Writer state. Caller-allocated; either borrows a fixed buffer (json_init_fixed) or owns a
 * malloc'd one (json_init_alloc, released by json_free). Writes never exceed `max` bytes: a
 * write that does not fit (or any misuse: too deep, value without key, unbalanced end) sets
 * `failed`, which sticks until json_reset(); the bytes written so far are then not valid JSON. */
typedef struct json_w {
    char *buf;
    size_t len; /* bytes written; buf[len] is NUL whenever buf != NULL */
    size_t cap; /* allocated bytes, including room for the NUL */
    size_t max; /* hard bound on len */
    int flags;  /* JSON_* */
    int depth;  /* open containers */
    int base;   /* depth json_reset() returns to (see json_init_fragment) */
    uint8_t growable;
    uint8_t failed;
    uint8_t after_key;                 /* a key was written; the next value follows it */
    uint8_t empty[JSON_DEPTH_MAX + 1]; /* [d] = 1 while the container at depth d has no member */
    uint8_t is_obj[JSON_DEPTH_MAX + 1];
} json_w;

/* Writes into buf[cap] (cap >= 1; at most cap - 1 bytes of JSON plus a NUL). Never allocates. */
void json_init_fixed(json_w *w, char *buf, size_t cap, int flags);
/* Writes into a malloc'd buffer that starts at `initial` bytes and grows up to `max` bytes of
 * JSON. Returns 0, or -1 when the first allocation fails. Free with json_free(). */
int json_init_alloc(json_w *w, size_t initial, size_t max, int flags);
/* Releases a buffer owned by the writer (no-op for fixed buffers); accepts NULL. */
void json_free(json_w *w);
/* Forgets everything written (len 0, not failed), keeping buffer and flags. */
void json_reset(json_w *w);
/* Makes w a fragment: members written to it are formatted as elements of an array (or members
 * of an object when `object` is set) open at `depth`, for splicing with json_splice(). */
void json_init_fragment(json_w *w, int depth, int object);
/* 1 when every write so far fit and was well-formed, else 0. */
int json_ok(const json_w *w);

/* Containers. Inside an object every value must be preceded by json_key(). */
void json_obj_begin(json_w *w);
void json_obj_end(json_w *w);
void json_arr_begin(json_w *w);
void json_arr_end(json_w *w);
/* Writes a member name (escaped like a string) and its separator; the next call writes a value. */
void json_key(json_w *w, const char *key);

/* Values. Strings may hold any bytes: '"', '\\' and control bytes are escaped, valid UTF-8 passes
 * through, each byte that is not part of valid UTF-8 is taken as Latin-1 and written as \u00XX. */
/* Length of the valid UTF-8 sequence of 2 to 4 bytes at s[0..n), or 0 when the bytes there are
 * not one (ASCII included): overlong forms, surrogates and code points above U+10FFFF are
 * rejected (RFC 3629). */
size_t json_utf8_len(const unsigned char *s, size_t n);
void json_str(json_w *w, const char *s);            /* NUL-terminated; NULL writes null */
void json_strn(json_w *w, const char *s, size_t n); /* n bytes, NUL bytes included */
void json_null(json_w *w);
void json_bool(json_w *w, int b);
void json_int(json_w *w, int64_t v);
void json_uint(json_w *w, uint64_t v);
/* The exact decimal mantissa / 10^decimals (decimals may be negative: trailing zeros), e.g.
 * (-24, 3) -> -0.024, (123456789, 3) -> 123456.789, (5, 0) -> 5; keeps trailing zeros. */
void json_fixed(json_w *w, int64_t mantissa, int decimals);
/* Like json_fixed() but drops trailing fractional zeros: (1500000, 6) -> 1.5, (2000000, 6) -> 2. */
void json_fixed_trim(json_w *w, int64_t mantissa, int decimals);
/* Appends the members written to a fragment (see json_init_fragment; s = its buf, n = its len)
 * into the container open in w at the fragment's depth, adding a comma when needed. */
void json_splice(json_w *w, const char *s, size_t n);

/* Key + value shorthands. */
void json_kv_str(json_w *w, const char *key, const char *s);
void json_kv_strn(json_w *w, const char *key, const char *s, size_t n);
void json_kv_int(json_w *w, const char *key, int64_t v);
void json_kv_bool(json_w *w, const char *key, int b);
void json_kv_null(json_w *w, const char *key);
void json_kv_fixed_trim(json_w *w, const char *key, int64_t mantissa, int decimals);

#endif
