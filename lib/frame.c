/* frame.c: parses the header of a DLMS general-glo-ciphering (0xDB) frame; pure, no OpenSSL. */
#include "p1/crypt.h"

#define FRAME_TAG          0xDB /* general-glo-ciphering */
#define FRAME_TITLE_LEN    8    /* the only system-title length DLMS defines */
#define FRAME_TITLE_AT     2    /* offset of the system title */
#define FRAME_LEN_AT       10   /* offset of the A-XDR length field */
#define FRAME_SEC_AUTH_ENC 0x30 /* suite 0, authenticated and encrypted */
#define FRAME_SEC_ENC      0x20 /* suite 0, encrypted only */
#define FRAME_TAG_LEN      12   /* GCM tag bytes with FRAME_SEC_AUTH_ENC */
#define FRAME_COUNTER_LEN  4

/* The checks run in stream order and each returns as soon as the bytes it needs are missing, so
 * a streaming caller learns "not a frame" at the first impossible byte instead of waiting for a
 * length that will never come. Nothing is written to *h unless the whole header is good. */
p1_error p1_crypt_parse_header(const uint8_t *data, size_t len, p1_crypt_header *h)
{
    size_t lf, body, sec_at, tag_len, total, i;
    uint8_t sec;

    if (len < 1)
        return P1_ERR_TRUNCATED;
    if (data[0] != FRAME_TAG)
        return P1_ERR_BAD_FRAME;
    if (len < 2)
        return P1_ERR_TRUNCATED;
    if (data[1] != FRAME_TITLE_LEN)
        return P1_ERR_BAD_FRAME;
    if (len < FRAME_LEN_AT + 1)
        return P1_ERR_TRUNCATED;

    /* A-XDR/BER length: short form below 0x80, else 0x81/0x82 and one or two length bytes.
     * Longer forms cannot describe a frame within P1_TELEGRAM_MAX. */
    if (data[FRAME_LEN_AT] < 0x80) {
        lf = 1;
        body = data[FRAME_LEN_AT];
    } else if (data[FRAME_LEN_AT] == 0x81) {
        lf = 2;
        if (len < FRAME_LEN_AT + lf)
            return P1_ERR_TRUNCATED;
        body = data[FRAME_LEN_AT + 1];
    } else if (data[FRAME_LEN_AT] == 0x82) {
        lf = 3;
        if (len < FRAME_LEN_AT + lf)
            return P1_ERR_TRUNCATED;
        body = (size_t)data[FRAME_LEN_AT + 1] << 8 | data[FRAME_LEN_AT + 2];
    } else {
        return P1_ERR_BAD_FRAME;
    }
    sec_at = FRAME_LEN_AT + lf;
    total = sec_at + body;
    /* At least security byte, counter and one byte of ciphertext; the tag is checked below. */
    if (body < 1 + FRAME_COUNTER_LEN + 1 || total > P1_TELEGRAM_MAX)
        return P1_ERR_BAD_FRAME;

    if (len < sec_at + 1)
        return P1_ERR_TRUNCATED;
    sec = data[sec_at];
    if (sec == FRAME_SEC_AUTH_ENC)
        tag_len = FRAME_TAG_LEN;
    else if (sec == FRAME_SEC_ENC)
        tag_len = 0;
    else
        return P1_ERR_BAD_FRAME;
    if (body < 1 + FRAME_COUNTER_LEN + 1 + tag_len)
        return P1_ERR_BAD_FRAME;

    if (len < sec_at + 1 + FRAME_COUNTER_LEN)
        return P1_ERR_TRUNCATED;

    for (i = 0; i < FRAME_TITLE_LEN; i++)
        h->system_title[i] = data[FRAME_TITLE_AT + i];
    h->security = sec;
    h->frame_counter = (uint32_t)data[sec_at + 1] << 24 | (uint32_t)data[sec_at + 2] << 16 |
                       (uint32_t)data[sec_at + 3] << 8 | (uint32_t)data[sec_at + 4];
    h->header_len = sec_at + 1 + FRAME_COUNTER_LEN;
    h->total_len = total;
    h->tag_len = tag_len;
    h->cipher_len = total - h->header_len - tag_len;
    return P1_ERR_OK;
}
