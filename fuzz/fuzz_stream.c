/* fuzz_stream.c: libFuzzer target: a byte stream in random chunks, readings built, invariants held. */
#include <p1/crypt.h>
#include <p1/p1.h>
#include <p1/reading.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct state {
    p1_reading reading;
    p1_crc_policy policy;
    size_t fed;           /* bytes given to the parser so far */
    int in_telegram;      /* on_begin seen, on_end not yet */
    uint32_t objects;     /* on_object calls since on_begin */
    uint64_t last_offset; /* offset of the previous telegram */
    int have_last;
    size_t ends;
} state;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_stream: invariant broken: %s\n", what);
    abort();
}

/* Every string field of a reading is NUL-terminated inside its array. */
#define CHECK_STR(field)                                                                           \
    do {                                                                                           \
        if (memchr((field), '\0', sizeof(field)) == NULL)                                          \
            fail("unterminated string " #field);                                                  \
    } while (0)

static void check_reading(const p1_reading *r)
{
    CHECK_STR(r->header);
    CHECK_STR(r->version);
    CHECK_STR(r->equipment_id);
    CHECK_STR(r->tariff_text);
    CHECK_STR(r->limiter_unit);
    CHECK_STR(r->text);
    CHECK_STR(r->text_code);
    for (int i = 0; i < P1_MBUS_MAX; i++) {
        CHECK_STR(r->mbus[i].id);
        CHECK_STR(r->mbus[i].unit);
        if (r->mbus[i].medium > P1_MEDIUM_OTHER)
            fail("mbus medium out of range");
    }
    if (r->nphases > 3)
        fail("nphases > 3");
    if (r->nfailures > P1_FAILURES_MAX)
        fail("nfailures > P1_FAILURES_MAX");
    if (r->ndemand_months > P1_DEMAND_MONTHS_MAX)
        fail("ndemand_months > P1_DEMAND_MONTHS_MAX");
    if (r->profile > P1_PROFILE_OTHER || r->tariff_scheme > P1_TARIFFS_BE)
        fail("enum out of range");
    if (r->nunknown > r->nobjects)
        fail("more unknown objects than objects");
    for (int m = P1_MEDIUM_UNKNOWN; m <= P1_MEDIUM_OTHER; m++) {
        int i = p1_reading_mbus_find(r, (p1_medium)m);
        if (i < -1 || i >= P1_MBUS_MAX)
            fail("p1_reading_mbus_find out of range");
        if (!p1_medium_name((p1_medium)m))
            fail("medium without name");
    }
    if (!p1_profile_name(r->profile))
        fail("profile without name");
    if (r->power_import != P1_ABSENT && r->power_export != P1_ABSENT &&
        r->power_net == P1_ABSENT)
        fail("power_net absent although import and export are present");
    int64_t u;
    if (r->has_time)
        (void)p1_time_to_unix(&r->time, &u);
}

static void on_begin(void *user, const p1_telegram *t)
{
    state *s = user;
    if (s->in_telegram)
        fail("two on_begin without on_end");
    if (t->offset >= s->fed)
        fail("on_begin offset beyond the bytes fed");
    s->in_telegram = 1;
    s->objects = 0;
    p1_reading_init(&s->reading);
    p1_reading_begin(&s->reading, t);
}

static void on_object(void *user, const p1_object *o)
{
    state *s = user;
    if (!s->in_telegram)
        fail("on_object outside a telegram");
    if (o->nvalues > P1_VALUES_MAX)
        fail("nvalues > P1_VALUES_MAX");
    for (unsigned i = 0; i < o->nvalues; i++) {
        const p1_value *v = &o->values[i];
        if (v->offset < o->offset || v->offset >= s->fed)
            fail("value offset outside its object");
        if ((v->flags & P1_V_UNIT) && v->unit_len == 0)
            fail("P1_V_UNIT without unit");
        if ((v->flags & P1_V_EMPTY) && v->raw_len != 0)
            fail("P1_V_EMPTY with characters");
    }
    if (o->offset >= s->fed)
        fail("object offset beyond the bytes fed");
    s->objects++;
    p1_reading_add(&s->reading, o);
}

static void on_end(void *user, const p1_telegram *t)
{
    state *s = user;
    s->ends++;
    if ((unsigned)t->error >= P1_ERR__COUNT)
        fail("on_end with an invalid error code");
    if (s->have_last && t->offset < s->last_offset)
        fail("telegram offsets not monotonic");
    if (t->offset > s->fed)
        fail("telegram offset beyond the bytes fed");
    s->last_offset = t->offset;
    s->have_last = 1;
    if (t->error != P1_ERR_OK && (t->error_offset < t->offset || t->error_offset > s->fed))
        fail("error_offset outside the telegram");
    if (t->error == P1_ERR_OK) {
        if (!s->in_telegram)
            fail("accepted telegram without on_begin");
        if (t->crc == P1_CRC_INVALID && s->policy != P1_CRC_IGNORE)
            fail("accepted with an invalid CRC");
        if (s->policy == P1_CRC_REQUIRED && t->crc != P1_CRC_VALID)
            fail("accepted without CRC although required");
        if (t->raw_len == 0 || t->raw_len > P1_TELEGRAM_MAX)
            fail("accepted telegram with raw_len out of range");
        if (t->raw[0] != '/')
            fail("accepted telegram does not start with '/'");
    }
    if (t->has_end_line) {
        /* the CRC the parser folded in line by line equals one taken afresh over '/'..'!' */
        size_t bang = t->raw_len;
        while (bang > 0 && t->raw[bang - 1] != '!')
            bang--;
        /* ... or, for a meter that sends CRC-16/X-25, that one, which then is the CRC sent */
        if (bang == 0 ||
            (t->crc_x25 ? p1_crc16_x25(t->raw, bang) : p1_crc16(0, t->raw, bang)) !=
                t->crc_computed ||
            (t->crc_x25 && t->crc_sent != t->crc_computed))
            fail("crc_computed differs from the CRC of the raw telegram");
    }
    if (s->in_telegram && t->nobjects != s->objects)
        fail("nobjects differs from on_object calls");
    if (s->in_telegram) {
        p1_reading_end(&s->reading, t);
        check_reading(&s->reading);
    }
    s->in_telegram = 0;
}

static p1_parser parser;
static p1_crypt keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static state st;
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_settings set;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    size_t done = 0;

    if (size == 0)
        return 0;
    /* The chunk sizes come from a generator seeded by the input, so a crash reproduces. */
    for (size_t i = 0; i < size && i < 16; i++)
        rng = (rng ^ data[i]) * 0x100000001B3ULL;
    memset(&st, 0, sizeof st);
    memset(&set, 0, sizeof set);
    set.crc = (p1_crc_policy)(data[size - 1] % 3);
    st.policy = set.crc;
    if (data[size - 1] & 0x80) {
        memset(&keys, 0, sizeof keys);
        if (p1_crypt_set_keys(&keys, "000102030405060708090A0B0C0D0E0F", NULL) != 0)
            fail("p1_crypt_set_keys rejected a valid key");
        keys.skip_tag = (data[size - 1] >> 6) & 1;
        set.decrypt = p1_crypt_decrypt;
        set.decrypt_user = &keys;
    }
    p1_parser_init(&parser, &set, &cb, &st);
    for (size_t i = 0; i < size;) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t n = (rng & 3) == 0 ? (size_t)(rng >> 8) % 4096 + 1 : (size_t)(rng >> 8) % 16 + 1;
        if (n > size - i)
            n = size - i;
        st.fed += n;
        done += p1_execute(&parser, data + i, n);
        i += n;
        if (((rng >> 40) & 63) == 0) {
            /* An idle line now and then: whatever is collected is completed or dropped. */
            done += p1_finish(&parser);
            if (st.in_telegram)
                fail("telegram still open after p1_finish");
        }
    }
    done += p1_finish(&parser);
    if (st.in_telegram)
        fail("telegram still open after p1_finish");
    if (done != st.ends)
        fail("returned counts differ from on_end calls");
    return 0;
}
