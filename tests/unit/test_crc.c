/* test_crc.c: CRC-16/ARC vectors, split invariance and the table-driven code against bitwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p1/p1.h"

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

int main(void)
{
    RUN(test_check_value);
    RUN(test_worked_example);
    RUN(test_split_invariance);
    RUN(test_against_bitwise);
    return check_summary("test_crc");
}
