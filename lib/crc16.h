/* crc16.h: private to libp1: the CRC-16/ARC tables and the 16-byte step, shared by p1_crc16()
 * and the parser, which folds each line into the CRC right after parsing it (crc_fold()). */
#ifndef P1_LIB_CRC16_H
#define P1_LIB_CRC16_H

#include <stddef.h>
#include <stdint.h>

#include "swar.h"

/* p1_crc16_table[k][b]: the CRC state change of byte b followed by k zero bytes (crc.c). */
extern const uint16_t p1_crc16_table[16][256];

/* The CRC state c after n16 blocks of 16 bytes at p: 16 independent table loads per block
 * (slicing-by-16) instead of 128 dependent shift steps. */
static inline uint32_t crc16_blocks(uint32_t c, const uint8_t *p, size_t n16)
{
    const uint16_t(*t)[256] = p1_crc16_table;

    for (; n16 > 0; n16--, p += 16) {
        uint64_t a = swar_load(p) ^ c, b = swar_load(p + 8);

        c = t[15][a & 0xFF] ^ t[14][(a >> 8) & 0xFF] ^ t[13][(a >> 16) & 0xFF] ^
            t[12][(a >> 24) & 0xFF] ^ t[11][(a >> 32) & 0xFF] ^ t[10][(a >> 40) & 0xFF] ^
            t[9][(a >> 48) & 0xFF] ^ t[8][a >> 56] ^ t[7][b & 0xFF] ^ t[6][(b >> 8) & 0xFF] ^
            t[5][(b >> 16) & 0xFF] ^ t[4][(b >> 24) & 0xFF] ^ t[3][(b >> 32) & 0xFF] ^
            t[2][(b >> 40) & 0xFF] ^ t[1][(b >> 48) & 0xFF] ^ t[0][b >> 56];
    }
    return c;
}

#endif
