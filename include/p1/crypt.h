/* crypt.h: decryption of encrypted P1 frames (DLMS general-glo-ciphering, AES-128-GCM) via OpenSSL. */
#ifndef P1_CRYPT_H
#define P1_CRYPT_H

#include "p1.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Luxembourg (Smarty) authentication key, used when none is configured. */
#define P1_CRYPT_DEFAULT_AK "00112233445566778899AABBCCDDEEFF"

/* Keys of one meter. Caller-allocated; plain data. */
typedef struct p1_crypt {
    uint8_t key[16];    /* encryption key (GUEK) */
    uint8_t ak[16];     /* authentication key (GAK); AAD = security byte || ak */
    uint8_t has_key;
    uint8_t skip_tag;   /* 1: do not verify the GCM tag; rely on the inner telegram CRC */
} p1_crypt;

/* Header fields of a 0xDB frame, as parsed by p1_crypt_parse_header(). */
typedef struct p1_crypt_header {
    uint8_t system_title[8];
    uint8_t security;         /* 0x30 authenticated+encrypted, 0x20 encrypted only */
    uint32_t frame_counter;
    size_t header_len;        /* bytes before the ciphertext */
    size_t total_len;         /* bytes of the whole frame */
    size_t cipher_len;        /* bytes of ciphertext (= plaintext) */
    size_t tag_len;           /* 12 for 0x30, 0 for 0x20 */
} p1_crypt_header;

/* Sets key, ak and has_key from hex strings (32 hex digits each, either case); ak_hex NULL =
 * P1_CRYPT_DEFAULT_AK; skip_tag is left as is (zero the struct first). Returns 0, or -1 when a
 * string is not 32 hex digits (c untouched). */
int p1_crypt_set_keys(p1_crypt *c, const char *key_hex, const char *ak_hex);
/* Parses the frame header in data[len] (which may be only the frame's first bytes). Returns
 * P1_ERR_OK and fills *h once the header_len bytes are there; P1_ERR_TRUNCATED when more bytes are
 * needed; P1_ERR_BAD_FRAME as soon as a byte rules out a frame (not 0xDB, title length != 8,
 * length form/value impossible, total > P1_TELEGRAM_MAX, unknown security byte). *h untouched on
 * error. Pure: no OpenSSL; libp1's parser uses it to find the frame's end. */
p1_error p1_crypt_parse_header(const uint8_t *data, size_t len, p1_crypt_header *h);
/* A p1_decrypt_fn: decrypt_user is a p1_crypt *. Decrypts the whole frame frame[len] into out[cap]
 * and sets *out_len. Errors: P1_ERR_BAD_FRAME (header, or len != the frame's length),
 * P1_ERR_TRUNCATED (len shorter than the frame), P1_ERR_NO_KEY, P1_ERR_TOO_LONG (cap too small),
 * P1_ERR_DECRYPT_FAILED (tag mismatch; or, when there is no tag to check (0x20 or skip_tag), the
 * plaintext is not '/'...'!' with a matching CRC). On error out holds no plaintext. */
p1_error p1_crypt_decrypt(void *decrypt_user, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
