/* crc16.h: private to libp1: the CRC-16/ARC 16-byte step, shared by p1_crc16() and the parser,
 * which folds the lines into the CRC while it parses them (crc_fold()). Two ways to take a
 * block: carry-less multiplication (x86-64 with PCLMULQDQ, chosen at run time) and table loads
 * (everywhere else); both give the same CRC for every input (test_crc.c). */
#ifndef P1_LIB_CRC16_H
#define P1_LIB_CRC16_H

#include <stddef.h>
#include <stdint.h>

/* p1_crc16_table[k][b]: the CRC state change of byte b followed by k zero bytes (crc.c). */
extern const uint16_t p1_crc16_table[16][256];

/* The CRC state c after n16 blocks of 16 bytes at p: 16 independent table loads per block
 * (slicing-by-16) instead of 128 dependent shift steps. The state only meets the first two bytes,
 * so the other fourteen loads do not wait for the previous block; each byte is loaded on its
 * own, which costs fewer instructions than shifting it out of a wider word. */
static inline uint32_t crc16_blocks(uint32_t c, const uint8_t *p, size_t n16)
{
    const uint16_t(*t)[256] = p1_crc16_table;

    for (; n16 > 0; n16--, p += 16) {
        uint32_t x = t[13][p[2]] ^ t[12][p[3]] ^ t[11][p[4]] ^ t[10][p[5]] ^ t[9][p[6]] ^
                     t[8][p[7]] ^ t[7][p[8]] ^ t[6][p[9]] ^ t[5][p[10]] ^ t[4][p[11]] ^
                     t[3][p[12]] ^ t[2][p[13]] ^ t[1][p[14]] ^ t[0][p[15]];

        c = x ^ t[15][(p[0] ^ c) & 0xFF] ^ t[14][p[1] ^ (c >> 8)];
    }
    return c;
}

/* The constants of the carry-less path (crc.c explains them; test_crc.c derives them again from
 * the polynomial). P = x^16 + x^15 + x^2 + 1. Each is a polynomial "reflected" into 64 bits as
 * the CRC's bit order wants it: the coefficient of x^i is bit 63 - i. */
#define CRC16_K191 0xCCD0000000000000ULL /* x^191 mod P: folds a block's first half 128 bits on */
#define CRC16_K127 0xC100000000000000ULL /* x^127 mod P: folds its second half */
#define CRC16_K79 0xCCC1000000000000ULL  /* x^79 mod P: the last block's first half, times x^16 */
#define CRC16_K15 0x0001000000000000ULL  /* x^15: its second half, times x^16 */
#define CRC16_K63 0xD101000000000000ULL  /* x^63 mod P: 80 bits down to 64 */
#define CRC16_MU 0xF5FFE7FFDFFF8000ULL   /* x^64 / P (quotient): Barrett's estimate */
#define CRC16_P 0xA001800000000000ULL    /* P itself, all 17 coefficients */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(P1_CRC_TABLES)
#define CRC16_CLMUL 1
/* The same as crc16_blocks() with PCLMULQDQ; only call these when crc16_clmul_ok(). */
uint32_t p1_crc16_clmul(uint32_t c, const uint8_t *p, size_t n16);
/* Folds n16 blocks at p into a 128-bit remainder (start from {0, 0}): no reduction per call, so
 * a buffer taken a line at a time costs the same as one pass. */
void p1_crc16_clmul_fold(uint64_t acc[2], const uint8_t *p, size_t n16);
/* The 16-bit CRC state of the bytes folded into acc. */
uint32_t p1_crc16_clmul_state(const uint64_t acc[2]);
/* 1 when this CPU has PCLMULQDQ. The compiler's run-time library reads CPUID once at start-up,
 * as the C library does to pick its memcpy; the check is a load and a bit test. */
static inline int crc16_clmul_ok(void)
{
    return __builtin_cpu_supports("pclmul");
}
#endif

/* The CRC state c after n16 blocks of 16 bytes at p, the fastest way this CPU has. */
static inline uint32_t crc16_run(uint32_t c, const uint8_t *p, size_t n16)
{
#ifdef CRC16_CLMUL
    if (crc16_clmul_ok())
        return p1_crc16_clmul(c, p, n16);
#endif
    return crc16_blocks(c, p, n16);
}

/* A CRC taken a piece at a time (the parser's lines) in acc, which starts as {0, 0}: with
 * PCLMULQDQ the 128-bit remainder, else the table state in acc[0]. crc16_step_state() gives the
 * CRC state of everything folded in so far. */
static inline void crc16_step(uint64_t acc[2], const uint8_t *p, size_t n16)
{
#ifdef CRC16_CLMUL
    if (crc16_clmul_ok()) {
        p1_crc16_clmul_fold(acc, p, n16);
        return;
    }
#endif
    acc[0] = crc16_blocks((uint32_t)acc[0], p, n16);
}

static inline uint32_t crc16_step_state(const uint64_t acc[2])
{
#ifdef CRC16_CLMUL
    if (crc16_clmul_ok())
        return p1_crc16_clmul_state(acc);
#endif
    return (uint32_t)acc[0];
}

#endif
