/* fuzz_json.c: libFuzzer target: the decode JSON of any telegram is well-formed, valid UTF-8 JSON. */
#include "json.h"
#include "reading_json.h"

#include <p1/p1.h>
#include <p1/reading.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_OUT_MAX (4u << 20) /* bytes of JSON one telegram may produce */

static void fail(const char *what, const char *buf, size_t len, size_t at)
{
    fprintf(stderr, "fuzz_json: %s at byte %zu of %zu\n", what, at, len);
    if (buf)
        fprintf(stderr, "%.*s\n", (int)(len < 4000 ? len : 4000), buf);
    abort();
}

/* A strict JSON validator (RFC 8259): recursive descent, bounded depth, UTF-8 checked. */
typedef struct jv {
    const unsigned char *s;
    size_t n, i;
    int depth;
} jv;

static int jv_value(jv *p);

static void jv_ws(jv *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int jv_lit(jv *p, const char *lit)
{
    size_t l = strlen(lit);
    if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0)
        return -1;
    p->i += l;
    return 0;
}

static int jv_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence starting at p->i (already known to be >= 0x80); rejects overlongs,
 * surrogates and code points above U+10FFFF. */
static int jv_utf8(jv *p)
{
    unsigned c = p->s[p->i];
    unsigned need, cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (p->n - p->i <= need)
        return -1;
    for (unsigned k = 1; k <= need; k++) {
        unsigned b = p->s[p->i + k];
        if ((b & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    p->i += need + 1;
    return 0;
}

static int jv_string(jv *p)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return -1;
    p->i++;
    while (p->i < p->n) {
        unsigned c = p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++p->i >= p->n)
                return -1;
            c = p->s[p->i];
            if (c == 'u') {
                if (p->n - p->i < 5)
                    return -1;
                for (int k = 1; k <= 4; k++)
                    if (!jv_hex(p->s[p->i + k]))
                        return -1;
                p->i += 5;
            } else if (strchr("\"\\/bfnrt", (int)c) && c != 0) {
                p->i++;
            } else {
                return -1;
            }
        } else if (c >= 0x80) {
            if (jv_utf8(p) != 0)
                return -1;
        } else {
            p->i++;
        }
    }
    return -1;
}

static int jv_digits(jv *p)
{
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start ? 0 : -1;
}

static int jv_number(jv *p)
{
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0') {
        p->i++;
    } else if (jv_digits(p) != 0) {
        return -1;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (jv_digits(p) != 0)
            return -1;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (jv_digits(p) != 0)
            return -1;
    }
    return 0;
}

static int jv_container(jv *p, char close)
{
    if (++p->depth > 64)
        return -1;
    p->i++;
    jv_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
        p->i++;
        p->depth--;
        return 0;
    }
    for (;;) {
        jv_ws(p);
        if (close == '}') {
            if (jv_string(p) != 0)
                return -1;
            jv_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return -1;
            p->i++;
            jv_ws(p);
        }
        if (jv_value(p) != 0)
            return -1;
        jv_ws(p);
        if (p->i >= p->n)
            return -1;
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == (unsigned char)close) {
            p->i++;
            p->depth--;
            return 0;
        }
        return -1;
    }
}

static int jv_value(jv *p)
{
    if (p->i >= p->n)
        return -1;
    switch (p->s[p->i]) {
    case '{':
        return jv_container(p, '}');
    case '[':
        return jv_container(p, ']');
    case '"':
        return jv_string(p);
    case 't':
        return jv_lit(p, "true");
    case 'f':
        return jv_lit(p, "false");
    case 'n':
        return jv_lit(p, "null");
    default:
        return jv_number(p);
    }
}

static void validate(const json_w *w)
{
    jv p = {(const unsigned char *)w->buf, w->len, 0, 0};
    if (!json_ok(w))
        fail("json writer failed (overflow or misuse)", w->buf, w->len, w->len);
    if (strlen(w->buf) != w->len)
        fail("NUL byte inside JSON", w->buf, w->len, strlen(w->buf));
    jv_ws(&p);
    if (jv_value(&p) != 0)
        fail("invalid JSON", w->buf, w->len, p.i);
    jv_ws(&p);
    if (p.i != p.n)
        fail("trailing bytes after JSON", w->buf, w->len, p.i);
}

typedef struct state {
    json_w w;
    p1_reading r;
    int open;
    int flags;
} state;

static void open_telegram(state *s)
{
    json_reset(&s->w);
    json_obj_begin(&s->w);
    json_key(&s->w, "objects");
    json_arr_begin(&s->w);
    s->open = 1;
}

static void on_begin(void *user, const p1_telegram *t)
{
    state *s = user;
    open_telegram(s);
    p1_reading_init(&s->r);
    p1_reading_begin(&s->r, t);
}

static void on_object(void *user, const p1_object *o)
{
    state *s = user;
    if (!s->open)
        return;
    reading_json_object(&s->w, o);
    p1_reading_add(&s->r, o);
    /* Every time-like value also goes through the time writer on its own. */
    for (unsigned i = 0; i < o->nvalues; i++) {
        if (o->values[i].flags & P1_V_TIME) {
            json_w tw;
            char buf[128];
            json_init_fixed(&tw, buf, sizeof buf, 0);
            reading_json_time(&tw, &o->values[i].time);
            validate(&tw);
        }
    }
}

static void on_end(void *user, const p1_telegram *t)
{
    state *s = user;
    int begun = s->open;
    if (!begun) {
        open_telegram(s);
        p1_reading_init(&s->r);
    }
    json_arr_end(&s->w);
    p1_telegram copy; /* the verdict as p1 decode prints it, bad_value included */
    if (begun) {
        p1_reading_end(&s->r, t);
        t = p1_reading_verdict(&s->r, t, &copy);
    }
    reading_json_telegram(&s->w, t, begun ? &s->r : NULL);
    if (begun) {
        json_key(&s->w, "reading");
        reading_json_reading(&s->w, &s->r);
    }
    json_obj_end(&s->w);
    validate(&s->w);
    s->open = 0;
}

static p1_parser parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static state st;
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_settings set;
    if (size == 0)
        return 0;
    memset(&set, 0, sizeof set);
    set.crc = P1_CRC_IGNORE; /* let every telegram through to the reading */
    st.open = 0;
    st.flags = (data[0] & 1) ? JSON_PRETTY : 0;
    if (json_init_alloc(&st.w, 4096, JSON_OUT_MAX, st.flags) != 0)
        return 0;
    p1_parser_init(&parser, &set, &cb, &st);
    p1_execute(&parser, data, size);
    p1_finish(&parser);
    json_free(&st.w);
    return 0;
}
