/* json.c: a small bounded JSON writer: appends to a fixed or growable buffer, escapes any bytes. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

void json_init_fixed(json_w *w, char *buf, size_t cap, int flags)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    w->max = cap ? cap - 1 : 0;
    w->flags = flags;
    if (buf && cap)
        buf[0] = '\0';
    else
        w->failed = 1;
}

int json_init_alloc(json_w *w, size_t initial, size_t max, int flags)
{
    memset(w, 0, sizeof *w);
    if (initial < 64)
        initial = 64;
    if (initial > max + 1)
        initial = max + 1;
    w->buf = malloc(initial);
    if (!w->buf) {
        w->failed = 1;
        return -1;
    }
    w->buf[0] = '\0';
    w->cap = initial;
    w->max = max;
    w->flags = flags;
    w->growable = 1;
    return 0;
}

void json_free(json_w *w)
{
    if (!w)
        return;
    if (w->growable)
        free(w->buf);
    w->buf = NULL;
    w->cap = w->len = 0;
    w->growable = 0;
    w->failed = 1;
}

void json_reset(json_w *w)
{
    w->len = 0;
    if (w->buf && w->cap)
        w->buf[0] = '\0';
    w->failed = (w->buf == NULL || w->cap == 0);
    w->after_key = 0;
    w->depth = w->base;
    w->empty[w->base] = 1;
}

void json_init_fragment(json_w *w, int depth, int object)
{
    if (depth < 0 || depth > JSON_DEPTH_MAX) {
        w->failed = 1;
        return;
    }
    w->base = depth;
    w->is_obj[depth] = (uint8_t)(object != 0);
    json_reset(w);
}

int json_ok(const json_w *w)
{
    return !w->failed;
}

/* Makes room for n more bytes plus the NUL; growable buffers double so appends stay amortised
 * O(1), and nothing ever goes past max. */
static int reserve(json_w *w, size_t n)
{
    if (w->failed)
        return 0;
    if (n > w->max - w->len) {
        w->failed = 1;
        return 0;
    }
    size_t need = w->len + n + 1;
    if (need <= w->cap)
        return 1;
    if (!w->growable) {
        w->failed = 1;
        return 0;
    }
    size_t cap = w->cap;
    while (cap < need)
        cap = cap > (w->max + 1) / 2 ? w->max + 1 : cap * 2;
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->failed = 1;
        return 0;
    }
    w->buf = p;
    w->cap = cap;
    return 1;
}

static void put(json_w *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void putc1(json_w *w, char c)
{
    if (!reserve(w, 1))
        return;
    w->buf[w->len++] = c;
    w->buf[w->len] = '\0';
}

static void newline_indent(json_w *w, int depth)
{
    static const char spaces[] = "                                                                ";
    putc1(w, '\n');
    size_t n = (size_t)depth * 2;
    while (n > 0 && !w->failed) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        put(w, spaces, k);
        n -= k;
    }
}

/* Everything a value or key needs before it: the comma between members and, when pretty, the
 * line break. A value inside an object must come right after its key. */
static int before_item(json_w *w, int is_key)
{
    if (w->failed)
        return 0;
    if (w->after_key) {
        if (is_key) {
            w->failed = 1;
            return 0;
        }
        w->after_key = 0;
        return 1;
    }
    if (w->depth == 0) {
        /* top level: one value, or several separated by newlines (a JSON Lines stream) */
        if (is_key) {
            w->failed = 1;
            return 0;
        }
        if (w->len > 0)
            putc1(w, '\n');
        return !w->failed;
    }
    if (w->is_obj[w->depth] != is_key) {
        w->failed = 1;
        return 0;
    }
    if (!w->empty[w->depth])
        putc1(w, ',');
    w->empty[w->depth] = 0;
    if (w->flags & JSON_PRETTY)
        newline_indent(w, w->depth);
    return !w->failed;
}

static void open_container(json_w *w, char c, int is_obj)
{
    if (!before_item(w, 0))
        return;
    if (w->depth >= JSON_DEPTH_MAX) {
        w->failed = 1;
        return;
    }
    putc1(w, c);
    w->depth++;
    w->empty[w->depth] = 1;
    w->is_obj[w->depth] = (uint8_t)is_obj;
}

static void close_container(json_w *w, char c, int is_obj)
{
    if (w->failed)
        return;
    if (w->depth <= w->base || w->is_obj[w->depth] != is_obj || w->after_key) {
        w->failed = 1;
        return;
    }
    int was_empty = w->empty[w->depth];
    w->depth--;
    if ((w->flags & JSON_PRETTY) && !was_empty)
        newline_indent(w, w->depth);
    putc1(w, c);
}

void json_obj_begin(json_w *w)
{
    open_container(w, '{', 1);
}

void json_obj_end(json_w *w)
{
    close_container(w, '}', 1);
}

void json_arr_begin(json_w *w)
{
    open_container(w, '[', 0);
}

void json_arr_end(json_w *w)
{
    close_container(w, ']', 0);
}

size_t json_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static void put_escaped(json_w *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    putc1(w, '"');
    size_t i = 0;
    while (i < n && !w->failed) {
        /* copy the run of bytes that need no escaping in one go */
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x7F && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            put(w, (const char *)s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = s[i];
        char esc[6];
        switch (c) {
        case '"':
            put(w, "\\\"", 2);
            break;
        case '\\':
            put(w, "\\\\", 2);
            break;
        case '\n':
            put(w, "\\n", 2);
            break;
        case '\r':
            put(w, "\\r", 2);
            break;
        case '\t':
            put(w, "\\t", 2);
            break;
        default:
            if (c >= 0x80) {
                size_t len = json_utf8_len(s + i, n - i);
                if (len) {
                    put(w, (const char *)s + i, len);
                    i += len;
                    continue;
                }
            }
            /* control bytes, DEL and stray non-UTF-8 bytes (read as Latin-1) */
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(w, esc, 6);
            break;
        }
        i++;
    }
    putc1(w, '"');
}

void json_key(json_w *w, const char *key)
{
    if (!before_item(w, 1))
        return;
    put_escaped(w, key, strlen(key));
    if (w->flags & JSON_PRETTY)
        put(w, ": ", 2);
    else
        putc1(w, ':');
    w->after_key = 1;
}

void json_strn(json_w *w, const char *s, size_t n)
{
    if (!before_item(w, 0))
        return;
    put_escaped(w, s, n);
}

void json_str(json_w *w, const char *s)
{
    if (!s) {
        json_null(w);
        return;
    }
    json_strn(w, s, strlen(s));
}

void json_null(json_w *w)
{
    if (before_item(w, 0))
        put(w, "null", 4);
}

void json_bool(json_w *w, int b)
{
    if (before_item(w, 0))
        put(w, b ? "true" : "false", b ? 4 : 5);
}

/* Digits of v into the end of out[20]; returns the start. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void json_uint(json_w *w, uint64_t v)
{
    char tmp[24];
    if (!before_item(w, 0))
        return;
    char *p = u64_digits(v, tmp + sizeof tmp);
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

void json_int(json_w *w, int64_t v)
{
    json_fixed(w, v, 0);
}

/* Formats mantissa / 10^decimals exactly with integer arithmetic only; the magnitude is taken as
 * uint64 so INT64_MIN needs no special case. */
static void put_fixed(json_w *w, int64_t mantissa, int decimals, int trim)
{
    char tmp[24];
    char out[24 + JSON_FIXED_DECIMALS_MAX + 4];
    size_t o = 0;
    if (decimals > JSON_FIXED_DECIMALS_MAX || decimals < -JSON_FIXED_DECIMALS_MAX) {
        w->failed = 1;
        return;
    }
    uint64_t mag = mantissa < 0 ? (uint64_t)0 - (uint64_t)mantissa : (uint64_t)mantissa;
    char *d = u64_digits(mag, tmp + sizeof tmp);
    size_t nd = (size_t)(tmp + sizeof tmp - d);
    if (mantissa < 0)
        out[o++] = '-';
    if (mag == 0) {
        out[o++] = '0';
        if (!trim && decimals > 0) {
            out[o++] = '.';
            for (int i = 0; i < decimals; i++)
                out[o++] = '0';
        }
        put(w, out, o);
        return;
    }
    if (decimals <= 0) {
        memcpy(out + o, d, nd);
        o += nd;
        for (int i = 0; i < -decimals; i++)
            out[o++] = '0';
        put(w, out, o);
        return;
    }
    size_t dec = (size_t)decimals;
    if (nd <= dec) {
        out[o++] = '0';
        out[o++] = '.';
        for (size_t i = nd; i < dec; i++)
            out[o++] = '0';
        memcpy(out + o, d, nd);
        o += nd;
    } else {
        memcpy(out + o, d, nd - dec);
        o += nd - dec;
        out[o++] = '.';
        memcpy(out + o, d + nd - dec, dec);
        o += dec;
    }
    if (trim) {
        while (out[o - 1] == '0')
            o--;
        if (out[o - 1] == '.')
            o--;
    }
    put(w, out, o);
}

void json_fixed(json_w *w, int64_t mantissa, int decimals)
{
    if (before_item(w, 0))
        put_fixed(w, mantissa, decimals, 0);
}

void json_fixed_trim(json_w *w, int64_t mantissa, int decimals)
{
    if (before_item(w, 0))
        put_fixed(w, mantissa, decimals, 1);
}

void json_splice(json_w *w, const char *s, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (w->depth == 0 || w->after_key) {
        w->failed = 1;
        return;
    }
    if (!w->empty[w->depth])
        putc1(w, ',');
    w->empty[w->depth] = 0;
    put(w, s, n);
}

void json_kv_str(json_w *w, const char *key, const char *s)
{
    json_key(w, key);
    json_str(w, s);
}

void json_kv_strn(json_w *w, const char *key, const char *s, size_t n)
{
    json_key(w, key);
    json_strn(w, s, n);
}

void json_kv_int(json_w *w, const char *key, int64_t v)
{
    json_key(w, key);
    json_int(w, v);
}

void json_kv_bool(json_w *w, const char *key, int b)
{
    json_key(w, key);
    json_bool(w, b);
}

void json_kv_null(json_w *w, const char *key)
{
    json_key(w, key);
    json_null(w);
}

void json_kv_fixed_trim(json_w *w, const char *key, int64_t mantissa, int decimals)
{
    json_key(w, key);
    json_fixed_trim(w, mantissa, decimals);
}
