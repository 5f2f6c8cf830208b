/* fuzz_crypt.c: libFuzzer target for 0xDB frame parsing, decryption and the parser's frame path. */
// Build: clang -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_crypt.c lib/*.c -lcrypto
// Run:   ./a.out -max_total_time=60 fuzz/corpus/crypt
// The seeds in fuzz/corpus/crypt are frames under the key below and the default (LU) AK, written
// by `P1_CRYPT_SEED_DIR=fuzz/corpus/crypt build/tests/test_crypt`.
// Each input is used twice: as raw stream bytes (header parser, decrypt, streaming parser), and
// as the plaintext of a frame this target encrypts itself, so the fuzzer also reaches the code
// behind a verified tag. Invariants are checked with __builtin_trap().
#include "p1/crypt.h"
#include "p1/p1.h"

#include <string.h>

#include <openssl/evp.h>

#define FUZZ_KEY_HEX   "000102030405060708090A0B0C0D0E0F"
#define FUZZ_ENDS_MAX  64
#define FUZZ_FRAME_MAX (P1_TELEGRAM_MAX + 32)

typedef struct fuzz_log {
    size_t ends;
    uint8_t err[FUZZ_ENDS_MAX];
    uint64_t off[FUZZ_ENDS_MAX];
    uint32_t fc[FUZZ_ENDS_MAX];
} fuzz_log;

static void fuzz_on_end(void *user, const p1_telegram *t)
{
    fuzz_log *l = user;

    if (l->ends < FUZZ_ENDS_MAX) {
        l->err[l->ends] = (uint8_t)t->error;
        l->off[l->ends] = t->offset;
        l->fc[l->ends] = t->frame_counter;
    }
    l->ends++;
    if (t->error == P1_ERR_OK && t->raw_len > P1_TELEGRAM_MAX)
        __builtin_trap();
}

static p1_parser fuzz_parser; /* large: keep it off the stack */

/* Feeds data in chunks of `chunk` bytes (0 = all at once) to a parser that decrypts with c. */
static void fuzz_feed(p1_crypt *c, const uint8_t *data, size_t size, size_t chunk, fuzz_log *l)
{
    p1_settings s;
    p1_callbacks cb;
    size_t i;

    memset(&s, 0, sizeof s);
    memset(&cb, 0, sizeof cb);
    memset(l, 0, sizeof *l);
    s.decrypt = p1_crypt_decrypt;
    s.decrypt_user = c;
    cb.on_end = fuzz_on_end;
    p1_parser_init(&fuzz_parser, &s, &cb, l);
    if (chunk == 0)
        chunk = size ? size : 1;
    for (i = 0; i < size; i += chunk)
        p1_execute(&fuzz_parser, data + i, size - i < chunk ? size - i : chunk);
    p1_finish(&fuzz_parser);
}

/* Any split of the stream must give the same telegrams. */
static void fuzz_stream(p1_crypt *c, const uint8_t *data, size_t size, size_t chunk)
{
    static fuzz_log whole, split;

    fuzz_feed(c, data, size, 0, &whole);
    fuzz_feed(c, data, size, chunk, &split);
    if (whole.ends != split.ends || memcmp(whole.err, split.err, sizeof whole.err) != 0 ||
        memcmp(whole.off, split.off, sizeof whole.off) != 0 ||
        memcmp(whole.fc, split.fc, sizeof whole.fc) != 0)
        __builtin_trap();
}

static void fuzz_raw(p1_crypt *c, const uint8_t *data, size_t size)
{
    static uint8_t out[P1_TELEGRAM_MAX];
    p1_crypt_header h, h2;
    size_t out_len;
    p1_error e, e2;

    memset(&h, 0, sizeof h);
    e = p1_crypt_parse_header(data, size, &h);
    if (e == P1_ERR_OK) {
        if (h.header_len + h.cipher_len + h.tag_len != h.total_len ||
            h.total_len > P1_TELEGRAM_MAX || h.cipher_len == 0 || h.header_len > size)
            __builtin_trap();
        /* the verdict is known exactly when the header is complete */
        if (p1_crypt_parse_header(data, h.header_len, &h2) != P1_ERR_OK ||
            p1_crypt_parse_header(data, h.header_len - 1, &h2) != P1_ERR_TRUNCATED)
            __builtin_trap();
    } else if (e != P1_ERR_TRUNCATED && e != P1_ERR_BAD_FRAME) {
        __builtin_trap();
    }

    out_len = 0;
    e = p1_crypt_decrypt(c, data, size, out, sizeof out, &out_len);
    if (e == P1_ERR_OK && out_len != h.cipher_len)
        __builtin_trap();
    /* skip_tag accepts everything the tag accepts, and otherwise only a telegram */
    c->skip_tag = 1;
    e2 = p1_crypt_decrypt(c, data, size, out, sizeof out, &out_len);
    c->skip_tag = 0;
    if ((e == P1_ERR_OK && e2 != P1_ERR_OK) ||
        (e != P1_ERR_OK && e2 == P1_ERR_OK && (out_len == 0 || out[0] != '/')))
        __builtin_trap();

    fuzz_stream(c, data, size, size ? 1 + data[0] % 17 : 1);
}

/* Wraps plain[n] into a frame under c's keys; returns its length, 0 when it cannot. */
static size_t fuzz_encrypt(const p1_crypt *c, const uint8_t *plain, size_t n, uint8_t sec,
                           uint32_t fc, uint8_t *f)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t aad[17];
    size_t tag = sec == 0x30 ? 12 : 0, body = 5 + n + tag, pos = 0;
    int outl = 0, ok;

    if (n == 0 || 13 + body > P1_TELEGRAM_MAX)
        return 0;
    f[pos++] = 0xDB;
    f[pos++] = 8;
    memcpy(f + pos, "FUZZ\x01\x02\x03\x04", 8);
    pos += 8;
    if (body > 0xFF) {
        f[pos++] = 0x82;
        f[pos++] = (uint8_t)(body >> 8);
    } else if (body >= 0x80) {
        f[pos++] = 0x81;
    }
    f[pos++] = (uint8_t)body;
    f[pos++] = sec;
    f[pos++] = (uint8_t)(fc >> 24);
    f[pos++] = (uint8_t)(fc >> 16);
    f[pos++] = (uint8_t)(fc >> 8);
    f[pos++] = (uint8_t)fc;
    aad[0] = sec;
    memcpy(aad + 1, c->ak, 16);
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return 0;
    /* IV = the 8 title bytes and the 4 counter bytes, which are not contiguous in f */
    {
        uint8_t iv[12];
        memcpy(iv, f + 2, 8);
        memcpy(iv + 8, f + pos - 4, 4);
        ok = EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
             EVP_EncryptInit_ex(ctx, NULL, NULL, c->key, iv) == 1;
    }
    if (ok && tag)
        ok = EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)sizeof aad) == 1;
    if (ok)
        ok = EVP_EncryptUpdate(ctx, f + pos, &outl, plain, (int)n) == 1;
    pos += n;
    if (ok && tag)
        ok = EVP_EncryptFinal_ex(ctx, f + pos, &outl) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 12, f + pos) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? pos + tag : 0;
}

static void fuzz_wrapped(p1_crypt *c, const uint8_t *data, size_t size)
{
    static uint8_t frame[FUZZ_FRAME_MAX], out[P1_TELEGRAM_MAX];
    uint8_t sec = (size & 1) ? 0x30 : 0x20;
    size_t n = fuzz_encrypt(c, data, size, sec, (uint32_t)size * 2654435761u, frame);
    size_t out_len = 0;
    p1_error e;

    if (n == 0)
        return;
    e = p1_crypt_decrypt(c, frame, n, out, sizeof out, &out_len);
    /* with a tag the round trip must hold; without one only if the text carries its CRC */
    if ((sec == 0x30 && e != P1_ERR_OK) || (e != P1_ERR_OK && e != P1_ERR_DECRYPT_FAILED))
        __builtin_trap();
    if (e == P1_ERR_OK && (out_len != size || memcmp(out, data, size) != 0))
        __builtin_trap();
    fuzz_stream(c, frame, n, 1 + size % 23);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    p1_crypt c;

    memset(&c, 0, sizeof c);
    if (p1_crypt_set_keys(&c, FUZZ_KEY_HEX, NULL) != 0)
        __builtin_trap();
    fuzz_raw(&c, data, size);
    fuzz_wrapped(&c, data, size);
    return 0;
}
