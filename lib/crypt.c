/* crypt.c: decrypts DLMS general-glo-ciphering (0xDB) frames with OpenSSL's AES-128-GCM. */
#include "p1/crypt.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define CRYPT_KEY_LEN      16
#define CRYPT_KEY_HEX      (2 * CRYPT_KEY_LEN)
#define CRYPT_IV_LEN       12 /* system title (8) || frame counter (4) */
#define CRYPT_TAG_LEN      12
#define CRYPT_SEC_AUTH_ENC 0x30
#define CRYPT_CRC_DIGITS   4

static int crypt_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Exactly CRYPT_KEY_HEX digits and nothing after: a key with a stray character is a typo the
 * user must see at startup, not a frame that silently never authenticates. */
static int crypt_parse_key(const char *hex, uint8_t out[CRYPT_KEY_LEN])
{
    size_t i;

    for (i = 0; i < CRYPT_KEY_HEX; i++) {
        if (crypt_hex_digit(hex[i]) < 0)
            return -1;
    }
    if (hex[CRYPT_KEY_HEX] != '\0')
        return -1;
    for (i = 0; i < CRYPT_KEY_LEN; i++)
        out[i] = (uint8_t)(crypt_hex_digit(hex[2 * i]) << 4 | crypt_hex_digit(hex[2 * i + 1]));
    return 0;
}

int p1_crypt_set_keys(p1_crypt *c, const char *key_hex, const char *ak_hex)
{
    uint8_t key[CRYPT_KEY_LEN], ak[CRYPT_KEY_LEN];

    if (!c || !key_hex)
        return -1;
    if (crypt_parse_key(key_hex, key) < 0 ||
        crypt_parse_key(ak_hex ? ak_hex : P1_CRYPT_DEFAULT_AK, ak) < 0) {
        OPENSSL_cleanse(key, sizeof key);
        return -1;
    }
    memcpy(c->key, key, sizeof key);
    memcpy(c->ak, ak, sizeof ak);
    c->has_key = 1;
    OPENSSL_cleanse(key, sizeof key);
    return 0;
}

/* Without a tag nothing proves the key was right, so the plaintext must prove it: a telegram
 * '/'...'!' whose own CRC-16 matches. Random bytes from a wrong key pass with odds 2^-16 at most,
 * and only after also starting with '/' and holding a '!' followed by four hex digits. */
static int crypt_plaintext_ok(const uint8_t *p, size_t n)
{
    size_t bang, i;
    unsigned sent = 0;

    if (n < 1 || p[0] != '/')
        return 0;
    for (bang = n; bang > 0 && p[bang - 1] != '!'; bang--)
        ;
    if (bang == 0 || n - bang < CRYPT_CRC_DIGITS)
        return 0;
    for (i = 0; i < CRYPT_CRC_DIGITS; i++) {
        int d = crypt_hex_digit((char)p[bang + i]);
        if (d < 0)
            return 0;
        sent = sent << 4 | (unsigned)d;
    }
    return p1_crc16(0, p, bang) == sent;
}

/* One GCM pass does both modes: for 0x20 (no tag, no AAD) the GCM keystream equals AES-CTR from
 * IV||00000002, which is what those meters use; for 0x30 the AAD is security byte || AK. Returns
 * 1 when the tag verified, 0 when it did not or there was none, -1 on an OpenSSL failure. */
static int crypt_gcm(const p1_crypt *c, const p1_crypt_header *h, const uint8_t *frame,
                     uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t iv[CRYPT_IV_LEN], aad[1 + CRYPT_KEY_LEN], tag[CRYPT_TAG_LEN];
    int n = 0, ok, verified = 0;

    if (!ctx)
        return -1;
    memcpy(iv, h->system_title, sizeof h->system_title);
    iv[8] = (uint8_t)(h->frame_counter >> 24);
    iv[9] = (uint8_t)(h->frame_counter >> 16);
    iv[10] = (uint8_t)(h->frame_counter >> 8);
    iv[11] = (uint8_t)h->frame_counter;
    aad[0] = h->security;
    memcpy(aad + 1, c->ak, CRYPT_KEY_LEN);

    ok = EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPT_IV_LEN, NULL) == 1 &&
         EVP_DecryptInit_ex(ctx, NULL, NULL, c->key, iv) == 1;
    if (ok && h->tag_len)
        ok = EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)sizeof aad) == 1;
    if (ok)
        ok = EVP_DecryptUpdate(ctx, out, &n, frame + h->header_len, (int)h->cipher_len) == 1 &&
             (size_t)n == h->cipher_len;
    if (ok && h->tag_len == CRYPT_TAG_LEN) {
        memcpy(tag, frame + h->header_len + h->cipher_len, CRYPT_TAG_LEN);
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_LEN, tag) == 1;
        /* Final only compares the tag (GCM is a stream mode): it writes no bytes. */
        if (ok)
            verified = EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(aad, sizeof aad);
    return ok ? verified : -1;
}

p1_error p1_crypt_decrypt(void *decrypt_user, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t cap, size_t *out_len)
{
    const p1_crypt *c = decrypt_user;
    p1_crypt_header h;
    p1_error e;
    int r;

    if (!frame)
        return P1_ERR_BAD_FRAME;
    e = p1_crypt_parse_header(frame, len, &h);
    if (e != P1_ERR_OK)
        return e;
    if (len < h.total_len)
        return P1_ERR_TRUNCATED;
    if (len > h.total_len)
        return P1_ERR_BAD_FRAME;
    if (!c || !c->has_key)
        return P1_ERR_NO_KEY;
    if (!out || h.cipher_len > cap)
        return P1_ERR_TOO_LONG;

    r = crypt_gcm(c, &h, frame, out);
    if (r == 1 ||
        (r == 0 && (h.tag_len == 0 || c->skip_tag) && crypt_plaintext_ok(out, h.cipher_len))) {
        if (out_len)
            *out_len = h.cipher_len;
        return P1_ERR_OK;
    }
    OPENSSL_cleanse(out, h.cipher_len);
    return P1_ERR_DECRYPT_FAILED;
}
