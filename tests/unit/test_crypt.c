/* test_crypt.c: unit tests of the 0xDB frame header parser and the AES-128-GCM decryption. */
#define _POSIX_C_SOURCE 200809L /* strtok_r, stat */

#include "p1/crypt.h"
#include "p1/p1.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#define KEY_HEX         "000102030405060708090A0B0C0D0E0F"
#define FRAME_MAX       (P1_TELEGRAM_MAX + 64)
#define TELEGRAM_CAP    4096
#define SHARED_PATH_MAX 512
#define CORPUS_FILE_MAX 8192
#define CHUNK_MAX       64

enum { LEN_AUTO = 0, LEN_SHORT = 1, LEN_81 = 2, LEN_82 = 3 };

static const uint8_t title[8] = {'S', 'A', 'G', 0x67, 0x70, 0x01, 0xBD, 0x54};

/* CRC-16/ARC written here from its definition, so the test does not trust the code under test. */
static uint16_t test_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    size_t i;
    int b;

    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* Appends "!CRC\r\n" to the telegram body (which ends just before '!'); returns the length. */
static size_t finish_telegram(char *t, size_t cap)
{
    size_t n = strlen(t);
    uint16_t crc;

    t[n++] = '!';
    crc = test_crc16((const uint8_t *)t, n);
    snprintf(t + n, cap - n, "%04X\r\n", crc);
    return strlen(t);
}

/* A Luxembourg-style telegram of our own: Smarty header, DSMR 5-like objects and units. The
 * number of filler lines selects the size, so one body serves all three length forms. */
static size_t make_telegram(char *t, size_t cap, int lines)
{
    int i;
    size_t n;

    snprintf(t, cap, "/Lux5\\253833635_D\r\n\r\n1-3:0.2.8(42)\r\n0-0:1.0.0(240115103000W)\r\n");
    for (i = 0; i < lines; i++) {
        n = strlen(t);
        snprintf(t + n, cap - n, "1-0:%d.7.0(%02d.%03d*kW)\r\n", 21 + i % 3, i, i * 7 % 1000);
    }
    n = strlen(t);
    snprintf(t + n, cap - n, "1-0:1.8.0(001234.567*kWh)\r\n");
    return finish_telegram(t, cap);
}

/* Builds a 0xDB frame around plain[n] with the given security byte and length form; encrypts
 * with OpenSSL directly (GCM, AAD = sec || ak for 0x30). Returns the frame length. */
static size_t make_frame(const uint8_t *plain, size_t n, const uint8_t key[16],
                         const uint8_t ak[16], uint32_t fc, uint8_t sec, int lenform, uint8_t *f,
                         size_t cap)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t iv[12], aad[17];
    size_t tag = sec == 0x30 ? 12 : 0, body = 1 + 4 + n + tag, pos = 0;
    int outl = 0, ok;

    if (lenform == LEN_AUTO)
        lenform = body < 0x80 ? LEN_SHORT : body <= 0xFF ? LEN_81 : LEN_82;
    if (!ctx || 10 + 3 + body > cap) {
        EVP_CIPHER_CTX_free(ctx);
        return 0;
    }
    f[pos++] = 0xDB;
    f[pos++] = 8;
    memcpy(f + pos, title, 8);
    pos += 8;
    if (lenform == LEN_82) {
        f[pos++] = 0x82;
        f[pos++] = (uint8_t)(body >> 8);
    } else if (lenform == LEN_81) {
        f[pos++] = 0x81;
    }
    f[pos++] = (uint8_t)body;
    f[pos++] = sec;
    f[pos++] = (uint8_t)(fc >> 24);
    f[pos++] = (uint8_t)(fc >> 16);
    f[pos++] = (uint8_t)(fc >> 8);
    f[pos++] = (uint8_t)fc;
    memcpy(iv, title, 8);
    memcpy(iv + 8, f + pos - 4, 4);
    aad[0] = sec;
    memcpy(aad + 1, ak, 16);
    ok = EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
         EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) == 1;
    if (ok && tag)
        ok = EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)sizeof aad) == 1;
    if (ok)
        ok = EVP_EncryptUpdate(ctx, f + pos, &outl, plain, (int)n) == 1 && (size_t)outl == n;
    pos += n;
    if (ok && tag)
        ok = EVP_EncryptFinal_ex(ctx, f + pos, &outl) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 12, f + pos) == 1;
    pos += tag;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? pos : 0;
}

static uint8_t test_key[16], test_ak[16];
static char tg_small[TELEGRAM_CAP], tg_mid[TELEGRAM_CAP], tg_big[TELEGRAM_CAP];
static size_t tg_small_len, tg_mid_len, tg_big_len;

static void setup(void)
{
    int i;

    for (i = 0; i < 16; i++)
        test_key[i] = (uint8_t)i;
    memcpy(test_ak, "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xAA\xBB\xCC\xDD\xEE\xFF", 16);
    tg_small_len = make_telegram(tg_small, sizeof tg_small, 0);
    tg_mid_len = make_telegram(tg_mid, sizeof tg_mid, 4);
    tg_big_len = make_telegram(tg_big, sizeof tg_big, 24);
}

static void keys(p1_crypt *c)
{
    memset(c, 0, sizeof *c);
    p1_crypt_set_keys(c, KEY_HEX, NULL);
}

static void test_sizes(void)
{
    /* The three telegrams must land in the three length forms for the tests below to mean it. */
    CHECK(1 + 4 + tg_small_len + 12 < 0x80);
    CHECK(1 + 4 + tg_mid_len + 12 >= 0x80 && 1 + 4 + tg_mid_len + 12 <= 0xFF);
    CHECK(1 + 4 + tg_big_len + 12 > 0xFF);
}

static void test_header_forms(void)
{
    static const struct {
        int lenform;
        uint8_t sec;
        size_t header_len;
    } cases[] = {
        {LEN_SHORT, 0x30, 16}, {LEN_81, 0x30, 17}, {LEN_82, 0x30, 18},
        {LEN_SHORT, 0x20, 16}, {LEN_81, 0x20, 17}, {LEN_82, 0x20, 18},
    };
    uint8_t f[FRAME_MAX];
    size_t i, n;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p1_crypt_header h;
        memset(&h, 0xEE, sizeof h);
        n = make_frame((const uint8_t *)tg_small, tg_small_len, test_key, test_ak, 0x0105A8E3,
                       cases[i].sec, cases[i].lenform, f, sizeof f);
        CHECK(n > 0);
        CHECK_EQ_INT(p1_crypt_parse_header(f, n, &h), P1_ERR_OK);
        CHECK_EQ_INT(h.header_len, cases[i].header_len);
        CHECK_EQ_INT(h.total_len, n);
        CHECK_EQ_INT(h.cipher_len, tg_small_len);
        CHECK_EQ_INT(h.tag_len, cases[i].sec == 0x30 ? 12 : 0);
        CHECK_EQ_INT(h.security, cases[i].sec);
        CHECK_EQ_INT(h.frame_counter, 0x0105A8E3);
        CHECK(memcmp(h.system_title, title, 8) == 0);
    }
}

/* Every prefix shorter than the header asks for more bytes; from the header on it is known. */
static void test_header_truncated(void)
{
    uint8_t f[FRAME_MAX];
    size_t n, k;
    int form;

    for (form = LEN_SHORT; form <= LEN_82; form++) {
        p1_crypt_header h;
        n = make_frame((const uint8_t *)tg_small, tg_small_len, test_key, test_ak, 7, 0x30, form, f,
                       sizeof f);
        for (k = 0; k < 15 + (size_t)form; k++) {
            memset(&h, 0x5A, sizeof h);
            CHECK_EQ_INT(p1_crypt_parse_header(f, k, &h), P1_ERR_TRUNCATED);
            CHECK_EQ_INT(h.total_len, 0x5A5A5A5A5A5A5A5AULL); /* untouched */
        }
        for (; k <= n; k++)
            CHECK_EQ_INT(p1_crypt_parse_header(f, k, &h), P1_ERR_OK);
    }
    CHECK_EQ_INT(p1_crypt_parse_header(NULL, 0, NULL), P1_ERR_TRUNCATED);
}

static p1_error header_of(const uint8_t *f, size_t n)
{
    p1_crypt_header h;
    return p1_crypt_parse_header(f, n, &h);
}

static void test_header_bad(void)
{
    uint8_t f[FRAME_MAX], g[FRAME_MAX];
    size_t n;

    n = make_frame((const uint8_t *)tg_big, tg_big_len, test_key, test_ak, 9, 0x30, LEN_82, f,
                   sizeof f);
    memcpy(g, f, n);
    g[0] = 0x00;
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);
    CHECK_EQ_INT(header_of(g, 1), P1_ERR_BAD_FRAME); /* known from the first byte */
    g[0] = '/';
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);
    memcpy(g, f, n);
    g[1] = 7;
    CHECK_EQ_INT(header_of(g, 2), P1_ERR_BAD_FRAME);
    memcpy(g, f, n);
    g[10] = 0x83; /* a 3-byte length would be far beyond P1_TELEGRAM_MAX */
    CHECK_EQ_INT(header_of(g, 11), P1_ERR_BAD_FRAME);
    g[10] = 0x80; /* indefinite length: not A-XDR */
    CHECK_EQ_INT(header_of(g, 11), P1_ERR_BAD_FRAME);
    memcpy(g, f, n);
    g[13] = 0x10; /* unknown security control byte */
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);
    CHECK_EQ_INT(header_of(g, 14), P1_ERR_BAD_FRAME);
    g[13] = 0x31; /* compressed / other suites */
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);
    memcpy(g, f, n);
    g[11] = 0xFF; /* 0x82 FF xx: larger than P1_TELEGRAM_MAX, known before the body arrives */
    CHECK_EQ_INT(header_of(g, 13), P1_ERR_BAD_FRAME);
    g[11] = (uint8_t)(P1_TELEGRAM_MAX >> 8); /* total = 13 + L > max */
    g[12] = (uint8_t)P1_TELEGRAM_MAX;
    CHECK_EQ_INT(header_of(g, 13), P1_ERR_BAD_FRAME);
    /* the largest frame that fits */
    g[11] = (uint8_t)((P1_TELEGRAM_MAX - 13) >> 8);
    g[12] = (uint8_t)(P1_TELEGRAM_MAX - 13);
    CHECK_EQ_INT(header_of(g, n), P1_ERR_OK);
    /* too short to hold security, counter, one byte of data (and the tag for 0x30) */
    memcpy(g, f, n);
    g[11] = 0;
    g[12] = 5;
    CHECK_EQ_INT(header_of(g, 13), P1_ERR_BAD_FRAME);
    g[12] = 6 + 11;
    CHECK_EQ_INT(header_of(g, 13), P1_ERR_TRUNCATED); /* 0x20 would fit: need the byte */
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);  /* 0x30: no room for the tag */
    g[12] = 6 + 12;
    CHECK_EQ_INT(header_of(g, n), P1_ERR_OK);
    g[13] = 0x20;
    g[12] = 6;
    CHECK_EQ_INT(header_of(g, n), P1_ERR_OK);
    g[10] = 0; /* short form zero */
    CHECK_EQ_INT(header_of(g, n), P1_ERR_BAD_FRAME);
}

static void test_decrypt_roundtrip(void)
{
    static const struct {
        const char *t;
        size_t *n;
    } tg[] = {{tg_small, &tg_small_len}, {tg_mid, &tg_mid_len}, {tg_big, &tg_big_len}};
    uint8_t f[FRAME_MAX], out[P1_TELEGRAM_MAX];
    p1_crypt c;
    size_t i, n, out_len;
    int sec, form;

    keys(&c);
    for (i = 0; i < 3; i++) {
        for (sec = 0x20; sec <= 0x30; sec += 0x10) {
            for (form = LEN_AUTO; form <= LEN_82; form++) {
                size_t body = 5 + *tg[i].n + (sec == 0x30 ? 12 : 0);
                if ((form == LEN_SHORT && body >= 0x80) || (form == LEN_81 && body > 0xFF))
                    continue;
                n = make_frame((const uint8_t *)tg[i].t, *tg[i].n, test_key, test_ak,
                               0xFFFFFFF0u + (uint32_t)i, (uint8_t)sec, form, f, sizeof f);
                CHECK(n > 0);
                out_len = 0;
                memset(out, 0, sizeof out);
                CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
                CHECK_EQ_INT(out_len, *tg[i].n);
                CHECK(memcmp(out, tg[i].t, *tg[i].n) == 0);
                /* exactly enough room is enough */
                CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, *tg[i].n, &out_len), P1_ERR_OK);
                CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, *tg[i].n - 1, &out_len),
                             P1_ERR_TOO_LONG);
            }
        }
    }
}

static int all_zero(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i])
            return 0;
    }
    return 1;
}

/* Failing frames leave out without plaintext and *out_len untouched. */
static p1_error decrypt_fails(p1_crypt *c, const uint8_t *f, size_t n)
{
    uint8_t out[P1_TELEGRAM_MAX];
    size_t out_len = 12345;
    p1_error e;

    memset(out, 0, sizeof out);
    e = p1_crypt_decrypt(c, f, n, out, sizeof out, &out_len);
    if (e != P1_ERR_OK) {
        CHECK_EQ_INT(out_len, 12345);
        CHECK(all_zero(out, sizeof out));
    }
    return e;
}

static void test_decrypt_rejects(void)
{
    uint8_t f[FRAME_MAX], g[FRAME_MAX], other[16], out[P1_TELEGRAM_MAX];
    p1_crypt c, wrong;
    size_t n, out_len, i;

    keys(&c);
    n = make_frame((const uint8_t *)tg_big, tg_big_len, test_key, test_ak, 42, 0x30, LEN_82, f,
                   sizeof f);

    memset(&wrong, 0, sizeof wrong);
    CHECK_EQ_INT(p1_crypt_set_keys(&wrong, "000102030405060708090A0B0C0D0E0E", NULL), 0);
    CHECK_EQ_INT(decrypt_fails(&wrong, f, n), P1_ERR_DECRYPT_FAILED);
    wrong.skip_tag = 1; /* wrong key: the inner CRC catches it */
    CHECK_EQ_INT(decrypt_fails(&wrong, f, n), P1_ERR_DECRYPT_FAILED);

    /* every single flipped bit of counter, ciphertext or tag fails authentication */
    for (i = 14; i < n; i++) {
        memcpy(g, f, n);
        g[i] ^= (uint8_t)(1u << (i % 8));
        CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_DECRYPT_FAILED);
    }
    /* the system title is part of the IV */
    memcpy(g, f, n);
    g[5] ^= 0x01;
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_DECRYPT_FAILED);
    /* header bytes that make it no frame at all */
    memcpy(g, f, n);
    g[0] = 0xDC;
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_BAD_FRAME);
    memcpy(g, f, n);
    g[13] = 0x21;
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_BAD_FRAME);
    /* a length that disagrees with the bytes handed over */
    CHECK_EQ_INT(decrypt_fails(&c, f, n - 1), P1_ERR_TRUNCATED);
    CHECK_EQ_INT(decrypt_fails(&c, f, 5), P1_ERR_TRUNCATED);
    memcpy(g, f, n);
    g[n] = '\r';
    CHECK_EQ_INT(decrypt_fails(&c, g, n + 1), P1_ERR_BAD_FRAME);
    CHECK_EQ_INT(p1_crypt_decrypt(&c, NULL, 0, out, sizeof out, &out_len), P1_ERR_BAD_FRAME);

    /* no key */
    CHECK_EQ_INT(decrypt_fails(NULL, f, n), P1_ERR_NO_KEY);
    memset(&wrong, 0, sizeof wrong);
    CHECK_EQ_INT(decrypt_fails(&wrong, f, n), P1_ERR_NO_KEY);
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, NULL, 0, &out_len), P1_ERR_TOO_LONG);
    /* out_len may be NULL */
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, NULL), P1_ERR_OK);

    /* wrong authentication key: tag fails; skip_tag decrypts (the inner CRC vouches) */
    memcpy(other, test_ak, 16);
    other[15] ^= 0x80;
    n = make_frame((const uint8_t *)tg_mid, tg_mid_len, test_key, other, 43, 0x30, LEN_AUTO, f,
                   sizeof f);
    CHECK_EQ_INT(decrypt_fails(&c, f, n), P1_ERR_DECRYPT_FAILED);
    c.skip_tag = 1;
    out_len = 0;
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
    CHECK_EQ_INT(out_len, tg_mid_len);
    CHECK(memcmp(out, tg_mid, tg_mid_len) == 0);
    /* skip_tag with a broken tag decrypts too; with a broken ciphertext byte the CRC fails */
    memcpy(g, f, n);
    g[n - 1] ^= 0xFF;
    CHECK_EQ_INT(p1_crypt_decrypt(&c, g, n, out, sizeof out, &out_len), P1_ERR_OK);
    memcpy(g, f, n);
    g[40] ^= 0x04;
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_DECRYPT_FAILED);
    c.skip_tag = 0;
}

/* 0x20 frames carry no tag: the key is proven only by the inner telegram's CRC. */
static void test_decrypt_unauthenticated(void)
{
    uint8_t f[FRAME_MAX], g[FRAME_MAX], out[P1_TELEGRAM_MAX];
    char t[TELEGRAM_CAP];
    p1_crypt c, wrong;
    size_t n, out_len, tn;

    keys(&c);
    n = make_frame((const uint8_t *)tg_mid, tg_mid_len, test_key, test_ak, 1, 0x20, LEN_AUTO, f,
                   sizeof f);
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
    memset(&wrong, 0, sizeof wrong);
    CHECK_EQ_INT(p1_crypt_set_keys(&wrong, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NULL), 0);
    CHECK_EQ_INT(decrypt_fails(&wrong, f, n), P1_ERR_DECRYPT_FAILED);
    memcpy(g, f, n);
    g[30] ^= 0x01; /* one flipped plaintext bit */
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_DECRYPT_FAILED);
    memcpy(g, f, n);
    g[17] ^= 0x01; /* the counter is part of the IV */
    CHECK_EQ_INT(decrypt_fails(&c, g, n), P1_ERR_DECRYPT_FAILED);

    /* a telegram without CRC, or whose CRC is wrong, cannot vouch for the key */
    tn = (size_t)snprintf(t, sizeof t, "/ABC5\r\n\r\n1-0:1.8.0(000001.000*kWh)\r\n!\r\n");
    n = make_frame((const uint8_t *)t, tn, test_key, test_ak, 2, 0x20, LEN_AUTO, f, sizeof f);
    CHECK_EQ_INT(decrypt_fails(&c, f, n), P1_ERR_DECRYPT_FAILED);
    tn = (size_t)snprintf(t, sizeof t, "/ABC5\r\n\r\n1-0:1.8.0(000001.000*kWh)\r\n!12G4\r\n");
    n = make_frame((const uint8_t *)t, tn, test_key, test_ak, 2, 0x20, LEN_AUTO, f, sizeof f);
    CHECK_EQ_INT(decrypt_fails(&c, f, n), P1_ERR_DECRYPT_FAILED);
    tn = (size_t)snprintf(t, sizeof t, "XABC5\r\n\r\n!0000\r\n");
    n = make_frame((const uint8_t *)t, tn, test_key, test_ak, 2, 0x20, LEN_AUTO, f, sizeof f);
    CHECK_EQ_INT(decrypt_fails(&c, f, n), P1_ERR_DECRYPT_FAILED);
    /* but the same telegram with a tag is fine: the tag vouches (the parser judges the text) */
    n = make_frame((const uint8_t *)t, tn, test_key, test_ak, 2, 0x30, LEN_AUTO, f, sizeof f);
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
    /* lower-case CRC digits and a CRC as the very last bytes are accepted */
    snprintf(t, sizeof t, "/ABC5\r\n\r\n1-0:1.8.0(000001.000*kWh)\r\n");
    tn = finish_telegram(t, sizeof t) - 2;
    t[tn - 1] = (char)(t[tn - 1] >= 'A' ? t[tn - 1] + 32 : t[tn - 1]);
    n = make_frame((const uint8_t *)t, tn, test_key, test_ak, 3, 0x20, LEN_AUTO, f, sizeof f);
    CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
}

static void test_set_keys(void)
{
    p1_crypt c, before;
    static const char *bad[] = {
        "",
        "000102030405060708090A0B0C0D0E0",   /* 31 digits */
        "000102030405060708090A0B0C0D0E0F0", /* 33 digits */
        "000102030405060708090A0B0C0D0E0G",
        "000102030405060708090A0B0C0D0E0 ",
        " 000102030405060708090A0B0C0D0E0F",
        "0x0102030405060708090A0B0C0D0E0F",
    };
    size_t i;

    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(p1_crypt_set_keys(&c, "000102030405060708090a0b0c0d0e0f", NULL), 0);
    CHECK(memcmp(c.key, test_key, 16) == 0);
    CHECK(memcmp(c.ak, test_ak, 16) == 0);
    CHECK_EQ_INT(c.has_key, 1);
    CHECK_EQ_INT(c.skip_tag, 0);
    c.skip_tag = 1;
    CHECK_EQ_INT(p1_crypt_set_keys(&c, KEY_HEX, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"), 0);
    CHECK_EQ_INT(c.ak[0], 0xBB);
    CHECK_EQ_INT(c.ak[15], 0xBB);
    CHECK_EQ_INT(c.skip_tag, 1);

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0x77, sizeof c);
        before = c;
        CHECK_EQ_INT(p1_crypt_set_keys(&c, bad[i], NULL), -1);
        CHECK_EQ_INT(p1_crypt_set_keys(&c, KEY_HEX, bad[i]), -1);
        CHECK(memcmp(&c, &before, sizeof c) == 0);
    }
    CHECK_EQ_INT(p1_crypt_set_keys(&c, NULL, NULL), -1);
    CHECK_EQ_INT(p1_crypt_set_keys(NULL, KEY_HEX, NULL), -1);
}

/* ---- the full path through the streaming parser ---------------------------------------- */

typedef struct sink {
    int ends, ok, encrypted;
    uint32_t frame_counter;
    uint8_t security;
    p1_error error;
    size_t raw_len, frame_len, objects;
    char raw[TELEGRAM_CAP];
} sink;

static void sink_object(void *user, const p1_object *o)
{
    (void)o;
    ((sink *)user)->objects++;
}

static void sink_end(void *user, const p1_telegram *t)
{
    sink *s = user;

    s->ends++;
    s->error = t->error;
    if (t->error == P1_ERR_OK)
        s->ok++;
    s->encrypted = t->encrypted;
    s->frame_counter = t->frame_counter;
    s->security = t->security;
    s->frame_len = t->frame_len;
    s->raw_len = t->raw_len < sizeof s->raw ? t->raw_len : 0;
    if (t->raw && s->raw_len)
        memcpy(s->raw, t->raw, s->raw_len);
}

static p1_parser parser; /* large: keep it off the stack */

/* Feeds bytes in chunks of `chunk` and returns what the callbacks saw. */
static void feed(p1_crypt *c, const uint8_t *data, size_t n, size_t chunk, sink *s)
{
    p1_settings set;
    p1_callbacks cb;
    size_t i;

    memset(&set, 0, sizeof set);
    memset(&cb, 0, sizeof cb);
    memset(s, 0, sizeof *s);
    set.decrypt = p1_crypt_decrypt;
    set.decrypt_user = c;
    cb.on_object = sink_object;
    cb.on_end = sink_end;
    p1_parser_init(&parser, &set, &cb, s);
    for (i = 0; i < n; i += chunk)
        p1_execute(&parser, data + i, n - i < chunk ? n - i : chunk);
    p1_finish(&parser);
}

static void test_parser_path(void)
{
    uint8_t f[FRAME_MAX], two[2 * FRAME_MAX];
    p1_crypt c;
    size_t n, chunk;
    sink s;
    int sec;

    keys(&c);
    for (sec = 0x20; sec <= 0x30; sec += 0x10) {
        n = make_frame((const uint8_t *)tg_big, tg_big_len, test_key, test_ak, 0x00ABCDEF,
                       (uint8_t)sec, LEN_82, f, sizeof f);
        for (chunk = 1; chunk <= CHUNK_MAX; chunk++) {
            feed(&c, f, n, chunk, &s);
            CHECK_EQ_INT(s.ends, 1);
            CHECK_EQ_INT(s.ok, 1);
            CHECK_EQ_INT(s.error, P1_ERR_OK);
            CHECK_EQ_INT(s.encrypted, 1);
            CHECK_EQ_INT(s.security, sec);
            CHECK_EQ_INT(s.frame_counter, 0x00ABCDEF);
            CHECK_EQ_INT(s.frame_len, n);
            CHECK_EQ_INT(s.objects, 2 + 24 + 1);
            CHECK_EQ_INT(s.raw_len, tg_big_len);
            CHECK(memcmp(s.raw, tg_big, tg_big_len) == 0);
        }
        feed(&c, f, n, n, &s);
        CHECK_EQ_INT(s.ok, 1);
    }
    /* two frames back to back, the second one short-form */
    n = make_frame((const uint8_t *)tg_mid, tg_mid_len, test_key, test_ak, 1, 0x30, LEN_AUTO, two,
                   sizeof two);
    n += make_frame((const uint8_t *)tg_small, tg_small_len, test_key, test_ak, 2, 0x30, LEN_AUTO,
                    two + n, sizeof two - n);
    for (chunk = 1; chunk <= CHUNK_MAX; chunk++) {
        feed(&c, two, n, chunk, &s);
        CHECK_EQ_INT(s.ends, 2);
        CHECK_EQ_INT(s.ok, 2);
        CHECK_EQ_INT(s.frame_counter, 2);
    }
    /* wrong key: rejected as decrypt_failed, exactly once */
    CHECK_EQ_INT(p1_crypt_set_keys(&c, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NULL), 0);
    n = make_frame((const uint8_t *)tg_big, tg_big_len, test_key, test_ak, 5, 0x30, LEN_82, f,
                   sizeof f);
    for (chunk = 1; chunk <= CHUNK_MAX; chunk += 7) {
        feed(&c, f, n, chunk, &s);
        CHECK_EQ_INT(s.ends, 1);
        CHECK_EQ_INT(s.ok, 0);
        CHECK_EQ_INT(s.error, P1_ERR_DECRYPT_FAILED);
    }
    /* no key at all */
    c.has_key = 0;
    feed(&c, f, n, 13, &s);
    CHECK_EQ_INT(s.ends, 1);
    CHECK_EQ_INT(s.error, P1_ERR_NO_KEY);
}

/* ---- real frames from other projects' suites (../shared/corpus) ------------------------- */

static char shared_dir[SHARED_PATH_MAX];

/* The shared folder sits next to the repository; tests run from the repository root, but allow
 * P1_SHARED to point elsewhere. */
static int find_shared(void)
{
    const char *env = getenv("P1_SHARED");
    struct stat st;

    snprintf(shared_dir, sizeof shared_dir, "%s", env && *env ? env : "../shared");
    if (stat(shared_dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 1;
    /* __FILE__ is tests/unit/test_crypt.c, relative to the repository or absolute */
    snprintf(shared_dir, sizeof shared_dir, "%s", __FILE__);
    if (strrchr(shared_dir, '/'))
        *strrchr(shared_dir, '/') = '\0';
    else
        snprintf(shared_dir, sizeof shared_dir, ".");
    snprintf(shared_dir + strlen(shared_dir), sizeof shared_dir - strlen(shared_dir),
             "/../../../shared");
    return stat(shared_dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static size_t read_file(const char *rel, uint8_t *buf, size_t cap)
{
    char path[SHARED_PATH_MAX * 2];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof path, "%s/corpus/%s", shared_dir, rel);
    fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* The .key.txt files hold "encryption_key=HEX" and "auth_key(AAD)=HEX" lines. */
static int load_keys(const char *rel, p1_crypt *c)
{
    uint8_t txt[1024];
    char key[33] = "", ak[33] = "";
    size_t n = read_file(rel, txt, sizeof txt - 1);
    char *line, *save = NULL;

    if (!n)
        return -1;
    txt[n] = 0;
    for (line = strtok_r((char *)txt, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (strncmp(line, "encryption_key=", 15) == 0)
            snprintf(key, sizeof key, "%s", line + 15);
        else if (strncmp(line, "auth_key(AAD)=", 14) == 0)
            snprintf(ak, sizeof ak, "%s", line + 14);
    }
    memset(c, 0, sizeof *c);
    return p1_crypt_set_keys(c, key, ak);
}

static void test_corpus(void)
{
    static const struct {
        const char *bin, *key, *plain;
        p1_error expect;
    } cases[] = {
        {"esphome-libs-dsmr_parser/encrypted-packet-sagemcom-t210-d-r.bin",
         "esphome-libs-dsmr_parser/encrypted-packet-sagemcom-t210-d-r.key.txt",
         "esphome-libs-dsmr_parser/encrypted-packet-sagemcom-t210-d-r.decrypted.txt", P1_ERR_OK},
        {"esphome-libs-dsmr_parser/encrypted-packet-corrupted-byte50.bin",
         "esphome-libs-dsmr_parser/encrypted-packet-sagemcom-t210-d-r.key.txt", NULL,
         P1_ERR_DECRYPT_FAILED},
        {"esphome-libs-dsmr_parser/encrypted-packet-corrupted-header.bin",
         "esphome-libs-dsmr_parser/encrypted-packet-sagemcom-t210-d-r.key.txt", NULL,
         P1_ERR_BAD_FRAME},
        {"ndokter-dsmr_parser/sagemcom-t210-d-r-encrypted.bin",
         "ndokter-dsmr_parser/sagemcom-t210-d-r-encrypted.key.txt",
         "ndokter-dsmr_parser/sagemcom-t210-d-r.txt", P1_ERR_OK},
        {"ndokter-dsmr_parser/sagemcom-t210-d-r-encrypted-damaged.bin",
         "ndokter-dsmr_parser/sagemcom-t210-d-r-encrypted.key.txt", NULL, P1_ERR_DECRYPT_FAILED},
    };
    static uint8_t f[CORPUS_FILE_MAX], want[CORPUS_FILE_MAX], out[P1_TELEGRAM_MAX];
    size_t i, n, wn, out_len, chunk;
    p1_crypt c;
    sink s;

    if (!find_shared()) {
        printf("SKIP: test_corpus: ../shared (the conformance corpus) is absent\n");
        return;
    }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case = cases[i].bin;
        n = read_file(cases[i].bin, f, sizeof f);
        CHECK(n > 0);
        CHECK_EQ_INT(load_keys(cases[i].key, &c), 0);
        out_len = 0;
        CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), cases[i].expect);
        if (cases[i].plain) {
            wn = read_file(cases[i].plain, want, sizeof want);
            CHECK(wn > 0);
            CHECK_EQ_INT(out_len, wn);
            CHECK(out_len == wn && memcmp(out, want, wn) == 0);
            for (chunk = 1; chunk <= CHUNK_MAX; chunk++) {
                feed(&c, f, n, chunk, &s);
                CHECK_EQ_INT(s.ok, 1);
                CHECK_EQ_INT(s.encrypted, 1);
                CHECK_EQ_INT(s.frame_counter, 0x10000001);
                CHECK_EQ_INT(s.objects, 18);
            }
        } else {
            feed(&c, f, n, 1, &s);
            CHECK_EQ_INT(s.ok, 0);
        }
        /* a frame with a bad tag but a good inner CRC passes only with skip_tag */
        if (cases[i].expect == P1_ERR_OK) {
            c.ak[0] ^= 1;
            CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len),
                         P1_ERR_DECRYPT_FAILED);
            c.skip_tag = 1;
            CHECK_EQ_INT(p1_crypt_decrypt(&c, f, n, out, sizeof out, &out_len), P1_ERR_OK);
        }
    }
}

/* ---- seed corpus for fuzz/fuzz_crypt.c ------------------------------------------------- */

/* With P1_CRYPT_SEED_DIR set, writes a few of our frames there (key KEY_HEX, default AK). */
static void write_seeds(void)
{
    const char *dir = getenv("P1_CRYPT_SEED_DIR");
    uint8_t f[FRAME_MAX];
    char path[SHARED_PATH_MAX];
    size_t n;
    FILE *fp;
    int i;
    static const struct {
        const char *name;
        int tg, form;
        uint8_t sec;
    } seeds[] = {
        {"short-30.bin", 0, LEN_SHORT, 0x30}, {"81-30.bin", 1, LEN_81, 0x30},
        {"82-30.bin", 2, LEN_82, 0x30},       {"82-20.bin", 2, LEN_82, 0x20},
        {"short-20.bin", 0, LEN_SHORT, 0x20},
    };

    if (!dir || !*dir)
        return;
    for (i = 0; i < (int)(sizeof seeds / sizeof seeds[0]); i++) {
        const char *t = seeds[i].tg == 0 ? tg_small : seeds[i].tg == 1 ? tg_mid : tg_big;
        n = make_frame((const uint8_t *)t, strlen(t), test_key, test_ak, 100 + (uint32_t)i,
                       seeds[i].sec, seeds[i].form, f, sizeof f);
        snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
        fp = fopen(path, "wb");
        CHECK(fp != NULL);
        if (fp) {
            CHECK_EQ_INT(fwrite(f, 1, n, fp), n);
            fclose(fp);
        }
    }
    printf("seeds written to %s\n", dir);
}

int main(void)
{
    setup();
    RUN(test_sizes);
    RUN(test_header_forms);
    RUN(test_header_truncated);
    RUN(test_header_bad);
    RUN(test_decrypt_roundtrip);
    RUN(test_decrypt_rejects);
    RUN(test_decrypt_unauthenticated);
    RUN(test_set_keys);
    RUN(test_parser_path);
    RUN(test_corpus);
    RUN(write_seeds);
    return check_summary("test_crypt");
}
