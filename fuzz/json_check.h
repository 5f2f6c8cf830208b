/* json_check.h: a strict JSON validator (RFC 8259) for the fuzz targets that check what p1 and
 * p1d write: recursive descent, depth bounded at 64, UTF-8 checked. json_check() returns the
 * offset of the first byte that is wrong, or -1 when buf[0..n) is one valid JSON text. */
#ifndef P1_FUZZ_JSON_CHECK_H
#define P1_FUZZ_JSON_CHECK_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

typedef struct jv {
    const unsigned char *s;
    size_t n, i;
    int depth;
} jv;

static int jv_value(jv *p);

static void jv_ws(jv *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int jv_lit(jv *p, const char *lit)
{
    size_t l = strlen(lit);
    if (p->n - p->i < l || memcmp(p->s + p->i, lit, l) != 0)
        return -1;
    p->i += l;
    return 0;
}

static int jv_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence starting at p->i (already known to be >= 0x80); rejects overlongs,
 * surrogates and code points above U+10FFFF. */
static int jv_utf8(jv *p)
{
    unsigned c = p->s[p->i];
    unsigned need, cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (p->n - p->i <= need)
        return -1;
    for (unsigned k = 1; k <= need; k++) {
        unsigned b = p->s[p->i + k];
        if ((b & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    p->i += need + 1;
    return 0;
}

static int jv_string(jv *p)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return -1;
    p->i++;
    while (p->i < p->n) {
        unsigned c = p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++p->i >= p->n)
                return -1;
            c = p->s[p->i];
            if (c == 'u') {
                if (p->n - p->i < 5)
                    return -1;
                for (int k = 1; k <= 4; k++)
                    if (!jv_hex(p->s[p->i + k]))
                        return -1;
                p->i += 5;
            } else if (strchr("\"\\/bfnrt", (int)c) && c != 0) {
                p->i++;
            } else {
                return -1;
            }
        } else if (c >= 0x80) {
            if (jv_utf8(p) != 0)
                return -1;
        } else {
            p->i++;
        }
    }
    return -1;
}

static int jv_digits(jv *p)
{
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start ? 0 : -1;
}

static int jv_number(jv *p)
{
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0') {
        p->i++;
    } else if (jv_digits(p) != 0) {
        return -1;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (jv_digits(p) != 0)
            return -1;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (jv_digits(p) != 0)
            return -1;
    }
    return 0;
}

static int jv_container(jv *p, char close)
{
    if (++p->depth > 64)
        return -1;
    p->i++;
    jv_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
        p->i++;
        p->depth--;
        return 0;
    }
    for (;;) {
        jv_ws(p);
        if (close == '}') {
            if (jv_string(p) != 0)
                return -1;
            jv_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return -1;
            p->i++;
            jv_ws(p);
        }
        if (jv_value(p) != 0)
            return -1;
        jv_ws(p);
        if (p->i >= p->n)
            return -1;
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == (unsigned char)close) {
            p->i++;
            p->depth--;
            return 0;
        }
        return -1;
    }
}

static int jv_value(jv *p)
{
    if (p->i >= p->n)
        return -1;
    switch (p->s[p->i]) {
    case '{':
        return jv_container(p, '}');
    case '[':
        return jv_container(p, ']');
    case '"':
        return jv_string(p);
    case 't':
        return jv_lit(p, "true");
    case 'f':
        return jv_lit(p, "false");
    case 'n':
        return jv_lit(p, "null");
    default:
        return jv_number(p);
    }
}

static ssize_t json_check(const char *buf, size_t n)
{
    jv p = {(const unsigned char *)buf, n, 0, 0};
    jv_ws(&p);
    if (jv_value(&p) != 0)
        return (ssize_t)p.i;
    jv_ws(&p);
    return p.i == p.n ? -1 : (ssize_t)p.i;
}

#endif
