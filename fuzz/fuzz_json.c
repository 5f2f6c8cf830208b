/* fuzz_json.c: libFuzzer target: the decode JSON of any telegram is well-formed, valid UTF-8 JSON. */
#include "json.h"
#include "json_check.h"
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

static void validate(const json_w *w)
{
    if (!json_ok(w))
        fail("json writer failed (overflow or misuse)", w->buf, w->len, w->len);
    if (strlen(w->buf) != w->len)
        fail("NUL byte inside JSON", w->buf, w->len, strlen(w->buf));
    ssize_t bad = json_check(w->buf, w->len);
    if (bad >= 0)
        fail("invalid JSON", w->buf, w->len, (size_t)bad);
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
