/* unit.h: private to libp1: classifies a unit string into a P1_UNIT_* code without string calls. */
#ifndef P1_LIB_UNIT_H
#define P1_LIB_UNIT_H

#include <stddef.h>
#include <stdint.h>

#include "p1/p1.h"

#define UNIT_KEY_MAX 5 /* longest unit with a code of its own ("kvarh") */

/* A unit of up to UNIT_KEY_MAX characters in lower case, packed first-byte-lowest. Units hold no
 * NUL, so "w" and "wh" differ without the length. */
#define UNIT_K(a, b, c, d, e)                                                                      \
    ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16 | (uint64_t)(d) << 24 |              \
     (uint64_t)(e) << 32)

/* The P1_UNIT_* code of a key made by unit_classify() or the parser (bytes folded with | 0x20,
 * which is exact for letters, digits, '%' and '/'). One switch: the compiler makes a short
 * compare tree of it, no indirect jump. */
static inline uint8_t unit_from_key(uint64_t k)
{
    switch (k) {
    case UNIT_K('k', 'w', 'h', 0, 0):
        return P1_UNIT_KWH;
    case UNIT_K('k', 'w', 0, 0, 0):
        return P1_UNIT_KW;
    case UNIT_K('v', 0, 0, 0, 0):
        return P1_UNIT_V;
    case UNIT_K('a', 0, 0, 0, 0):
        return P1_UNIT_A;
    case UNIT_K('m', '3', 0, 0, 0):
        return P1_UNIT_M3;
    case UNIT_K('s', 0, 0, 0, 0):
        return P1_UNIT_S;
    case UNIT_K('w', 'h', 0, 0, 0):
        return P1_UNIT_WH;
    case UNIT_K('w', 0, 0, 0, 0):
        return P1_UNIT_W;
    case UNIT_K('k', 'v', 'a', 'r', 'h'):
        return P1_UNIT_KVARH;
    case UNIT_K('v', 'a', 'r', 'h', 0):
        return P1_UNIT_VARH;
    case UNIT_K('k', 'v', 'a', 'r', 0):
        return P1_UNIT_KVAR;
    case UNIT_K('v', 'a', 'r', 0, 0):
        return P1_UNIT_VAR;
    case UNIT_K('k', 'v', 'a', 'h', 0):
        return P1_UNIT_KVAH;
    case UNIT_K('v', 'a', 'h', 0, 0):
        return P1_UNIT_VAH;
    case UNIT_K('k', 'v', 'a', 0, 0):
        return P1_UNIT_KVA;
    case UNIT_K('v', 'a', 0, 0, 0):
        return P1_UNIT_VA;
    case UNIT_K('h', 'z', 0, 0, 0):
        return P1_UNIT_HZ;
    case UNIT_K('d', 'm', '3', 0, 0):
        return P1_UNIT_DM3;
    case UNIT_K('g', 'j', 0, 0, 0):
        return P1_UNIT_GJ;
    case UNIT_K('m', 'j', 0, 0, 0):
        return P1_UNIT_MJ;
    case UNIT_K('m', 'w', 'h', 0, 0):
        return P1_UNIT_MWH;
    case UNIT_K('m', 'w', 0, 0, 0):
        return P1_UNIT_MW;
    case UNIT_K('m', 'v', 'a', 'r', 'h'):
        return P1_UNIT_MVARH;
    case UNIT_K('m', 'v', 'a', 'r', 0):
        return P1_UNIT_MVAR;
    case UNIT_K('m', 'v', 'a', 'h', 0):
        return P1_UNIT_MVAH;
    case UNIT_K('m', 'v', 'a', 0, 0):
        return P1_UNIT_MVA;
    case UNIT_K('k', 'v', 0, 0, 0):
        return P1_UNIT_KV;
    case UNIT_K('m', 'a', 0, 0, 0):
        return P1_UNIT_MA;
    case UNIT_K('l', 0, 0, 0, 0):
        return P1_UNIT_L;
    case UNIT_K('k', 'a', 0, 0, 0):
        return P1_UNIT_KA;
    case UNIT_K('k', 'h', 'z', 0, 0):
        return P1_UNIT_KHZ;
    default:
        return P1_UNIT_OTHER;
    }
}

/* The P1_UNIT_* code of any n bytes at u (ASCII case ignored; only letters are folded, so a
 * control byte never passes for a digit). */
static inline uint8_t unit_classify(const uint8_t *u, size_t n)
{
    uint64_t k = 0;

    if (n == 0)
        return P1_UNIT_NONE;
    if (n > UNIT_KEY_MAX)
        return P1_UNIT_OTHER;
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];

        if (c == 0)
            return P1_UNIT_OTHER;
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        k |= (uint64_t)c << (8 * i);
    }
    return unit_from_key(k);
}

/* The power of ten that takes a value in unit code c to its normalised unit: -3 for the units
 * without the "k" (Wh, W, varh, var, VAh, VA), for MJ (-> GJ), dm3 and l (-> m3) and mA (-> A);
 * +3 for the mega ones (MWh, MW, Mvarh, Mvar, MVAh, MVA), kV (-> V), kA (-> A) and kHz
 * (-> Hz); 0 for everything else
 * (kWh, kW, kvarh, kvar, kVA, V, A, m3, GJ, Hz, s, unknown units). The parser classified the unit
 * once, so the reading's dozens of quantities per telegram cost one table load each (value.c and
 * reading.c's inline path share this table). */
static const int8_t unit_shift[P1_UNIT__COUNT] = {
    [P1_UNIT_WH] = -3,  [P1_UNIT_W] = -3,  [P1_UNIT_VARH] = -3, [P1_UNIT_VAR] = -3,
    [P1_UNIT_VAH] = -3, [P1_UNIT_VA] = -3, [P1_UNIT_DM3] = -3,  [P1_UNIT_MJ] = -3,
    [P1_UNIT_MWH] = 3,  [P1_UNIT_MW] = 3,  [P1_UNIT_MVARH] = 3, [P1_UNIT_MVAR] = 3,
    [P1_UNIT_MVAH] = 3, [P1_UNIT_MVA] = 3, [P1_UNIT_KV] = 3,    [P1_UNIT_MA] = -3,
    [P1_UNIT_L] = -3,   [P1_UNIT_KA] = 3,  [P1_UNIT_KHZ] = 3,
};

#endif
