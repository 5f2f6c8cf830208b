/* test_crc.c: CRC-16/ARC vectors, split invariance and the table-driven code against bitwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p1/p1.h"
#include "../../lib/crc16.h" /* the two block paths and their constants, private to libp1 */

/* The definition, one bit at a time: the reference the sliced tables must agree with. */
static uint16_t crc_bitwise(uint16_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static const char example_crlf[] = "/XYZ5\\EXAMPLE-METER\r\n\r\n1-3:0.2.8(50)\r\n"
                                   "0-0:1.0.0(240101120000W)\r\n1-0:1.8.1(000123.456*kWh)\r\n"
                                   "1-0:1.7.0(00.500*kW)\r\n!";
static const char example_lf[] = "/XYZ5\\EXAMPLE-METER\n\n1-3:0.2.8(50)\n0-0:1.0.0(240101120000W)\n"
                                 "1-0:1.8.1(000123.456*kWh)\n1-0:1.7.0(00.500*kW)\n!";

static void test_check_value(void)
{
    CHECK_EQ_INT(p1_crc16(0, "123456789", 9), 0xBB3D);
    CHECK_EQ_INT(crc_bitwise(0, (const uint8_t *)"123456789", 9), 0xBB3D);
    CHECK_EQ_INT(p1_crc16(0, "", 0), 0);
    CHECK_EQ_INT(p1_crc16(0x1234, "", 0), 0x1234);
    CHECK_EQ_INT(p1_crc16(0, "/", 1), 0xDC41); /* first step of the NOTES.md worked example */
}

static void test_worked_example(void)
{
    CHECK_EQ_INT(strlen(example_crlf), 114);
    CHECK_EQ_INT(p1_crc16(0, example_crlf, strlen(example_crlf)), 0xE676);
    CHECK_EQ_INT(p1_crc16(0, example_lf, strlen(example_lf)), 0x71E7);
}

static void test_split_invariance(void)
{
    size_t n = strlen(example_crlf);

    for (size_t cut = 0; cut <= n; cut++) {
        uint16_t c = p1_crc16(0, example_crlf, cut);

        CHECK_EQ_INT(p1_crc16(c, example_crlf + cut, n - cut), 0xE676);
    }
}

/* Every length around the 8/16-byte slicing steps and every alignment, against bitwise. */
static void test_against_bitwise(void)
{
    uint8_t buf[300];
    uint32_t x = 12345;
    int bad = 0;

    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len + off <= sizeof buf; len++)
            if (p1_crc16(0x5A5A, buf + off, len) != crc_bitwise(0x5A5A, buf + off, len))
                bad++;
    CHECK_EQ_INT(bad, 0);
}

/* x^k mod P, one shift at a time (P = x^16 + x^15 + x^2 + 1, 0x18005). */
static uint64_t xpow_mod(unsigned k)
{
    uint32_t r = 1;

    while (k--) {
        r <<= 1;
        if (r & 0x10000u)
            r ^= 0x18005u;
    }
    return r;
}

/* A polynomial of degree < 64 in the carry-less path's order: x^i at bit 63 - i. */
static uint64_t reflect64(uint64_t poly)
{
    uint64_t out = 0;

    for (int i = 0; i < 64; i++)
        if (poly >> i & 1)
            out |= 1ULL << (63 - i);
    return out;
}

/* Every constant of the carry-less path, derived again from the polynomial. */
static void test_clmul_constants(void)
{
    CHECK_EQ_INT(CRC16_K191, reflect64(xpow_mod(191)));
    CHECK_EQ_INT(CRC16_K127, reflect64(xpow_mod(127)));
    CHECK_EQ_INT(CRC16_K79, reflect64(xpow_mod(79)));
    CHECK_EQ_INT(CRC16_K15, reflect64(xpow_mod(15)));
    CHECK_EQ_INT(CRC16_K63, reflect64(xpow_mod(63)));
    CHECK_EQ_INT(CRC16_P, reflect64(0x18005u));
    /* x^64 / P by long division; the quotient has degree 48. The remainder is kept as bit 64
     * (hi) and bits 0..63 (lo); P's terms are x^16, x^15, x^2 and 1. */
    static const int pterm[] = {16, 15, 2, 0};
    uint64_t hi = 1, lo = 0, q = 0;
    for (int d = 64; d >= 16; d--) {
        if (!(d == 64 ? hi : lo >> d & 1))
            continue;
        q |= 1ULL << (d - 16);
        for (int k = 0; k < 4; k++) {
            int e = pterm[k] + d - 16;
            if (e == 64)
                hi ^= 1;
            else
                lo ^= 1ULL << e;
        }
    }
    CHECK_EQ_INT(hi, 0);
    CHECK_EQ_INT(CRC16_MU, reflect64(q));
}

/* Both ways of taking 16-byte blocks, and the piecewise fold the parser uses, against bitwise:
 * every alignment, block counts 0..24, several starting states. */
static void test_block_paths(void)
{
    uint8_t buf[16 + 16 * 24];
    uint32_t x = 777;
    static const uint16_t starts[] = {0, 0x5A5A, 0xFFFF, 0x8001, 0x1234};
    int bad_tables = 0, bad_run = 0, bad_clmul = 0, bad_pieces = 0, clmul = 0;

    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
#ifdef CRC16_CLMUL
    clmul = crc16_clmul_ok();
#endif
    for (size_t off = 0; off < 16; off++) {
        for (size_t n16 = 0; n16 <= 24; n16++) {
            for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
                uint16_t want = crc_bitwise(starts[s], buf + off, 16 * n16);

                bad_tables += crc16_blocks(starts[s], buf + off, n16) != want;
                bad_run += crc16_run(starts[s], buf + off, n16) != want;
#ifdef CRC16_CLMUL
                if (clmul)
                    bad_clmul += p1_crc16_clmul(starts[s], buf + off, n16) != want;
#endif
            }
            /* the parser's way: pieces of 1..3 blocks from state 0, then the state */
            uint64_t acc[2] = {0, 0};
            for (size_t done = 0, step = 1; done < n16; done += step, step = step % 3 + 1) {
                if (step > n16 - done)
                    step = n16 - done;
                crc16_step(acc, buf + off + 16 * done, step);
            }
            bad_pieces += crc16_step_state(acc) != crc_bitwise(0, buf + off, 16 * n16);
        }
    }
    CHECK_EQ_INT(bad_tables, 0);
    CHECK_EQ_INT(bad_run, 0);
    CHECK_EQ_INT(bad_clmul, 0);
    CHECK_EQ_INT(bad_pieces, 0);
    if (!clmul)
        printf("SKIP carry-less path: %s; the table path was tested\n",
#ifdef CRC16_CLMUL
               "this CPU has no PCLMULQDQ"
#else
               "not built here (not x86-64, or P1_CRC_TABLES)"
#endif
        );
}

int main(void)
{
    RUN(test_check_value);
    RUN(test_worked_example);
    RUN(test_split_invariance);
    RUN(test_against_bitwise);
    RUN(test_clmul_constants);
    RUN(test_block_paths);
    return check_summary("test_crc");
}
