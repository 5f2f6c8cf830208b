/* fuzz_parser.c: libFuzzer target: any split of the input gives the same parser callbacks. */
#include <p1/crypt.h>
#include <p1/p1.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over everything a callback reports, so two runs can be compared with one number. */
typedef struct digest {
    uint64_t h;
    size_t begins, objects, ends;
} digest;

static void mix(digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        d->h ^= b[i];
        d->h *= 1099511628211ULL;
    }
}

static void mix_u64(digest *d, uint64_t v)
{
    mix(d, &v, sizeof v);
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_parser: invariant broken: %s\n", what);
    abort();
}

static void mix_telegram(digest *d, const p1_telegram *t, int end)
{
    mix_u64(d, t->offset);
    if (t->header_len > P1_HEADER_MAX)
        fail("header_len > P1_HEADER_MAX");
    mix_u64(d, t->header_len);
    if (t->header_len)
        mix(d, t->header, t->header_len);
    if (!end)
        return;
    if ((unsigned)t->error >= P1_ERR__COUNT)
        fail("error code out of range");
    if (t->raw_len > P1_TELEGRAM_MAX)
        fail("raw_len > P1_TELEGRAM_MAX");
    int keep_raw = 1;
#ifdef FUZZ_PARSER_SKIP_REJECTED_RAW
    /* Debugging knob: ignore what a rejected telegram kept, to look past that difference. */
    keep_raw = t->error == P1_ERR_OK;
#endif
    if (keep_raw) {
        mix_u64(d, t->raw_len);
        if (t->raw_len)
            mix(d, t->raw, t->raw_len);
    }
    mix_u64(d, (uint64_t)t->error);
    mix_u64(d, t->error_offset);
    mix_u64(d, (uint64_t)t->crc);
    if (t->crc != P1_CRC_ABSENT)
        mix_u64(d, t->crc_sent);
    mix_u64(d, t->has_end_line);
    if (t->has_end_line)
        mix_u64(d, t->crc_computed);
    mix_u64(d, t->encrypted);
    if (t->encrypted) {
        mix_u64(d, t->frame_counter);
        mix(d, t->system_title, sizeof t->system_title);
        mix_u64(d, t->frame_len);
    }
    mix_u64(d, t->nobjects);
    /* Names and messages exist for every code the parser reports. */
    if (!p1_error_name(t->error) || !p1_error_message(t->error))
        fail("error without name");
}

static void on_begin(void *user, const p1_telegram *t)
{
    digest *d = user;
    d->begins++;
    mix_u64(d, 0xB1);
    mix_telegram(d, t, 0);
}

static void on_object(void *user, const p1_object *o)
{
    digest *d = user;
    char text[256], obis[32];
    d->objects++;
    mix_u64(d, 0x0B);
    mix(d, &o->obis, sizeof o->obis);
    mix_u64(d, o->offset);
    mix_u64(d, o->line_len);
    if (o->line_len)
        mix(d, o->line, o->line_len);
    if (o->nvalues > P1_VALUES_MAX)
        fail("nvalues > P1_VALUES_MAX");
    if (p1_obis_format(&o->obis, obis, sizeof obis) >= sizeof obis)
        fail("p1_obis_format overflow");
    mix(d, obis, strlen(obis));
    for (unsigned i = 0; i < o->nvalues; i++) {
        const p1_value *v = &o->values[i];
        int64_t fixed = 0, t = 0;
        mix_u64(d, v->raw_len);
        if (v->raw_len)
            mix(d, v->raw, v->raw_len);
        mix_u64(d, v->unit_len);
        if (v->unit_len)
            mix(d, v->unit, v->unit_len);
        mix_u64(d, v->flags);
        mix_u64(d, v->offset);
        if (v->flags & P1_V_NUMBER) {
            mix_u64(d, (uint64_t)v->number);
            mix_u64(d, (uint64_t)(int64_t)v->decimals);
        }
        if (v->flags & P1_V_TIME) {
            mix(d, &v->time, sizeof v->time);
            if (p1_time_to_unix(&v->time, &t) == 0)
                mix_u64(d, (uint64_t)t);
            if (v->time.valid) {
                int off = p1_time_utc_offset(&v->time);
                if (off != 3600 && off != 7200)
                    fail("utc offset not 1 or 2 hours");
            }
        }
        if (v->flags & P1_V_OBIS)
            mix(d, &v->obis_ref, sizeof v->obis_ref);
        for (int scale = 0; scale <= 9; scale += 3) {
            if (p1_value_fixed(v, scale, scale & 1, &fixed) == 0)
                mix_u64(d, (uint64_t)fixed);
        }
        int n = p1_value_text(v, text, sizeof text);
        if (n >= (int)sizeof text || n < -1)
            fail("p1_value_text length out of range");
        if (n >= 0) {
            if (text[n] != '\0')
                fail("p1_value_text not NUL-terminated");
            mix(d, text, (size_t)n);
        }
    }
}

static void on_end(void *user, const p1_telegram *t)
{
    digest *d = user;
    d->ends++;
    mix_u64(d, 0xE0);
    mix_telegram(d, t, 1);
}

/* Stand-in for decryption: the "plaintext" is the frame's ciphertext as is, so the fuzzer can
 * reach the parsing of decrypted telegrams without forging GCM tags. */
static p1_error identity_decrypt(void *user, const uint8_t *frame, size_t len, uint8_t *out,
                                 size_t cap, size_t *out_len)
{
    p1_crypt_header h;
    (void)user;
    p1_error e = p1_crypt_parse_header(frame, len, &h);
    if (e != P1_ERR_OK)
        return e;
    if (h.total_len != len)
        return P1_ERR_BAD_FRAME;
    if (h.cipher_len > cap)
        return P1_ERR_TOO_LONG;
    memcpy(out, frame + h.header_len, h.cipher_len);
    *out_len = h.cipher_len;
    return P1_ERR_OK;
}

static p1_parser parser; /* too big for the stack of every fuzzing thread */

static void run(const uint8_t *data, size_t size, size_t chunk, const p1_settings *s, digest *d)
{
    p1_callbacks cb = {on_begin, on_object, on_end};
    size_t done = 0;
    memset(d, 0, sizeof *d);
    d->h = 1469598103934665603ULL;
    p1_parser_init(&parser, s, &cb, d);
    for (size_t i = 0; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        done += p1_execute(&parser, data + i, n);
    }
    done += p1_finish(&parser);
    if (done != d->ends)
        fail("p1_execute/p1_finish counts differ from on_end calls");
    if (parser.pos != size)
        fail("stream offset is not the number of bytes fed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    digest whole, split;
    p1_settings s;
    if (size == 0)
        return 0;
    memset(&s, 0, sizeof s);
    s.crc = (p1_crc_policy)((data[0] >> 3) % 3);
    s.telegram_max = (data[0] & 0x20) ? 512 : 0;
    s.decrypt = (data[0] & 0x40) ? identity_decrypt : NULL;
    size_t chunk = (size_t)(data[0] % 7) + 1;

    run(data, size, size, &s, &whole);
    run(data, size, chunk, &s, &split);
    if (whole.h != split.h || whole.begins != split.begins || whole.objects != split.objects ||
        whole.ends != split.ends) {
        fprintf(stderr, "whole: %zu/%zu/%zu %016llx, chunk %zu: %zu/%zu/%zu %016llx\n",
                whole.begins, whole.objects, whole.ends, (unsigned long long)whole.h, chunk,
                split.begins, split.objects, split.ends, (unsigned long long)split.h);
        fail("callbacks differ between whole input and small chunks");
    }
    return 0;
}
