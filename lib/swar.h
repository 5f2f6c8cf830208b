/* swar.h: private to libp1: eight bytes at a time in a uint64_t (SIMD within a register) and the
 * powers of ten, shared by the parser's scanners, the hex decoder and the fixed-point code. */
#ifndef P1_LIB_SWAR_H
#define P1_LIB_SWAR_H

#include <stdint.h>
#include <string.h>

/* 10^0 .. 10^19: every power of ten that fits an unsigned 64-bit integer. */
static const uint64_t swar_pow10[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_HIGH 0x8080808080808080ULL

/* Loads eight bytes from s, the first byte in the low bits on every host. */
static inline uint64_t swar_load(const void *s)
{
    uint64_t v;

    memcpy(&v, s, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Loads four bytes from s, the first byte in the low bits on every host. */
static inline uint32_t swar_load4(const void *s)
{
    uint32_t v;

    memcpy(&v, s, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

/* 0x80 in every byte of x in [lo, hi] (bytes >= 0x80 never are). */
static inline uint64_t swar_range(uint64_t x, unsigned lo, unsigned hi)
{
    uint64_t x7 = x & ~SWAR_HIGH;

    return (x7 + SWAR_ONES * (0x80 - lo)) & ~(x7 + SWAR_ONES * (0x7F - hi)) & ~x & SWAR_HIGH;
}

#endif
