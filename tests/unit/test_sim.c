/* test_sim.c: unit tests of the simulated meter: determinism, CRC, registers, time, faults. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/sim.h"
#include "check.h"
#include "p1/p1.h"

static char out[SIM_OUT_MAX + 1];

/* The values of one telegram we look at, parsed with plain string functions (independent of
 * libp1's parser, which is checked separately below). Numbers are in their last printed digit:
 * Wh, W, dV, A, litres. */
typedef struct facts {
    int64_t time; /* 0-0:1.0.0 converted with its S/W offset */
    int hour, minute, dst;
    int64_t imp[2], exp[2];
    int tariff;
    int64_t pimp, pexp;
    int64_t gas_l, gas_time;
    int64_t sags;
    int has_gas;
    int has_l2;
} facts;

/* The digits of the idx-th value of an object, '.' removed; -1 when absent. */
static int64_t num(const char *tg, const char *obis, int idx)
{
    char key[32];
    snprintf(key, sizeof key, "\n%s(", obis);
    const char *p = strstr(tg, key);
    if (!p)
        return -1;
    p += strlen(key) - 1;
    for (int i = 0; i < idx; i++) {
        p = strchr(p + 1, '(');
        if (!p)
            return -1;
    }
    int64_t v = 0;
    for (p++; *p && *p != ')' && *p != '*' && *p != 'S' && *p != 'W'; p++)
        if (*p >= '0' && *p <= '9')
            v = v * 10 + (*p - '0');
    return v;
}

/* Unix seconds of a YYMMDDhhmmssX value, by its own S/W letter. */
static int64_t tst(const char *tg, const char *obis, int idx, int *hour, int *minute, int *dst)
{
    char key[32];
    snprintf(key, sizeof key, "\n%s(", obis);
    const char *p = strstr(tg, key);
    if (!p)
        return -1;
    p += strlen(key) - 1;
    for (int i = 0; i < idx; i++)
        p = strchr(p + 1, '(');
    p++;
    int f[6];
    for (int i = 0; i < 6; i++)
        f[i] = (p[2 * i] - '0') * 10 + (p[2 * i + 1] - '0');
    int d = p[12] == 'S';
    if (hour)
        *hour = f[3];
    if (minute)
        *minute = f[4];
    if (dst)
        *dst = d;
    return sim_unix_time(2000 + f[0], f[1], f[2], f[3], f[4], f[5], d);
}

static void read_facts(const char *tg, facts *f)
{
    memset(f, 0, sizeof *f);
    f->time = tst(tg, "0-0:1.0.0", 0, &f->hour, &f->minute, &f->dst);
    f->imp[0] = num(tg, "1-0:1.8.1", 0);
    f->imp[1] = num(tg, "1-0:1.8.2", 0);
    f->exp[0] = num(tg, "1-0:2.8.1", 0);
    f->exp[1] = num(tg, "1-0:2.8.2", 0);
    f->tariff = (int)num(tg, "0-0:96.14.0", 0);
    f->pimp = num(tg, "1-0:1.7.0", 0);
    f->pexp = num(tg, "1-0:2.7.0", 0);
    f->has_gas = strstr(tg, "\n0-1:24.2.1(") != NULL;
    if (f->has_gas) {
        f->gas_l = num(tg, "0-1:24.2.1", 1);
        f->gas_time = tst(tg, "0-1:24.2.1", 0, NULL, NULL, NULL);
    }
    f->sags = num(tg, "1-0:32.32.0", 0);
    f->has_l2 = strstr(tg, "\n1-0:52.7.0(") != NULL;
}

/* Next telegram as a NUL-terminated string. */
static size_t next(sim *s)
{
    size_t n = sim_next(s, out, SIM_OUT_MAX);
    out[n] = '\0';
    return n;
}

static void opts(sim_options *o, uint64_t seed, int64_t start, uint32_t interval)
{
    sim_options_default(o);
    o->seed = seed;
    o->start = start;
    o->interval = interval;
}

static int crc_ok(const char *tg, size_t n)
{
    const char *bang = memchr(tg, '!', n);
    if (!bang || (size_t)(bang - tg) + 7 != n || tg[n - 2] != '\r' || tg[n - 1] != '\n')
        return 0;
    unsigned sent = (unsigned)strtoul(bang + 1, NULL, 16);
    return sent == p1_crc16(0, tg, (size_t)(bang - tg) + 1);
}

static void test_calendar(void)
{
    sim_tm tm;
    sim_local_time(1711846799, &tm); /* 2024-03-31 00:59:59 UTC */
    CHECK(tm.hour == 1 && tm.minute == 59 && tm.second == 59 && tm.dst == 0);
    sim_local_time(1711846800, &tm); /* 01:00 UTC: clocks go 02:00 -> 03:00 */
    CHECK(tm.hour == 3 && tm.minute == 0 && tm.dst == 1);
    CHECK_EQ_INT(tm.weekday, 0);
    CHECK_EQ_INT(tm.yday, 90);
    sim_local_time(1729990799, &tm); /* 2024-10-27 00:59:59 UTC */
    CHECK(tm.hour == 2 && tm.minute == 59 && tm.dst == 1);
    sim_local_time(1729990800, &tm);
    CHECK(tm.hour == 2 && tm.minute == 0 && tm.dst == 0);
    sim_local_time(1704067200, &tm); /* 2024-01-01T00:00Z, a Monday */
    CHECK(tm.year == 2024 && tm.month == 1 && tm.day == 1 && tm.hour == 1 && tm.weekday == 1);
    sim_local_time(951825600, &tm); /* 2000-02-29T12:00Z */
    CHECK(tm.year == 2000 && tm.month == 2 && tm.day == 29 && tm.hour == 13);
    CHECK_EQ_INT(sim_unix_time(2024, 10, 27, 2, 30, 0, 1), 1729989000);
    CHECK_EQ_INT(sim_unix_time(2024, 10, 27, 2, 30, 0, 0), 1729992600);
    CHECK_EQ_INT(sim_unix_time(2024, 10, 27, 2, 30, 0, -1), 1729989000);
    CHECK_EQ_INT(sim_unix_time(2024, 7, 1, 12, 0, 0, -1), 1719828000);
    CHECK_EQ_INT(sim_unix_time(2024, 1, 1, 1, 0, 0, -1), 1704067200);
    /* every instant of a few years round-trips through the local fields */
    int bad = 0;
    for (int64_t t = 1704067200; t < 1704067200 + 3 * 366 * 86400LL; t += 1777) {
        sim_local_time(t, &tm);
        if (sim_unix_time(tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second, tm.dst) != t)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_options(void)
{
    sim s;
    sim_options o;
    sim_options_default(&o);
    CHECK_EQ_INT(sim_init(&s, &o), 0);
    CHECK_EQ_INT(sim_init(&s, NULL), 0);
    o.phases = 2;
    CHECK_EQ_INT(sim_init(&s, &o), -EINVAL);
    sim_options_default(&o);
    o.interval = 0;
    CHECK_EQ_INT(sim_init(&s, &o), -EINVAL);
    sim_options_default(&o);
    o.start = SIM_START_MAX;
    CHECK_EQ_INT(sim_init(&s, &o), -EINVAL);
    sim_options_default(&o);
    o.fault_crc = SIM_RATE_ONE + 1;
    CHECK_EQ_INT(sim_init(&s, &o), -EINVAL);
    sim_options_default(&o);
    o.meter_id = "bad\nid";
    CHECK_EQ_INT(sim_init(&s, &o), -EINVAL);
    o.meter_id = "E0099000000000001";
    CHECK_EQ_INT(sim_init(&s, &o), 0);
    next(&s);
    CHECK(strstr(out, "0-0:96.1.1(4530303939303030303030303030303031)\r\n") != NULL);
    /* a short buffer is refused without advancing */
    char small[64];
    int64_t t = sim_time(&s);
    CHECK_EQ_INT(sim_next(&s, small, sizeof small), 0);
    CHECK_EQ_INT(sim_time(&s), t);
    /* single phase, no gas, no solar */
    sim_options_default(&o);
    o.phases = 1;
    o.gas = 0;
    o.solar = 0;
    o.start = 1719828000;
    CHECK_EQ_INT(sim_init(&s, &o), 0);
    facts f;
    int64_t exported = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = next(&s);
        CHECK(crc_ok(out, n));
        read_facts(out, &f);
        exported += f.pexp;
    }
    CHECK(!f.has_gas && !f.has_l2);
    CHECK(strstr(out, "\n1-0:32.7.0(") && strstr(out, "\n1-0:21.7.0("));
    CHECK_EQ_INT(exported, 0);
}

static void test_determinism(void)
{
    static char a[SIM_OUT_MAX], b[SIM_OUT_MAX];
    sim s1, s2, s3;
    sim_options o;
    opts(&o, 42, 1717236000, 1);
    o.fault_crc = o.fault_garbage = o.fault_truncate = 50000;
    sim_init(&s1, &o);
    sim_init(&s2, &o);
    o.seed = 43;
    sim_init(&s3, &o);
    int same = 1, differ = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n1 = sim_next(&s1, a, sizeof a), n2 = sim_next(&s2, b, sizeof b);
        same &= n1 == n2 && memcmp(a, b, n1) == 0;
        size_t n3 = sim_next(&s3, b, sizeof b);
        differ |= n1 != n3 || memcmp(a, b, n1) != 0;
    }
    CHECK(same);
    CHECK(differ);
}

static void test_crc_and_shape(void)
{
    sim s;
    sim_options o;
    opts(&o, 7, 1704067200, 37);
    sim_init(&s, &o);
    int bad = 0, texts = 0;
    size_t maxlen = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = next(&s);
        if (n > maxlen)
            maxlen = n;
        if (!crc_ok(out, n) || strncmp(out, "/P1D5\\2SIM-ESMR5.0\r\n\r\n1-3:0.2.8(50)\r\n", 37))
            bad++;
        if (!strstr(out, "0-0:96.13.0()"))
            texts++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(texts > 0);
    CHECK(maxlen < SIM_TELEGRAM_MAX);
}

/* A day at `interval` seconds: registers only grow and match the integrated power exactly. */
static void day_registers(int64_t start, uint32_t interval)
{
    sim s;
    sim_options o;
    opts(&o, 3, start, interval);
    sim_init(&s, &o);
    facts first, prev, f;
    next(&s);
    read_facts(out, &first);
    prev = first;
    int64_t joules_imp[2] = {0, 0}, joules_exp[2] = {0, 0};
    int mono = 1, steps = 1, time_ok = 1;
    int64_t last_p_imp = first.pimp, last_p_exp = first.pexp, last_tariff = first.tariff;
    for (int64_t t = interval; t <= 86400; t += interval, steps++) {
        joules_imp[last_tariff - 1] += last_p_imp * interval;
        joules_exp[last_tariff - 1] += last_p_exp * interval;
        next(&s);
        read_facts(out, &f);
        for (int k = 0; k < 2; k++)
            mono &= f.imp[k] >= prev.imp[k] && f.exp[k] >= prev.exp[k];
        mono &= f.gas_l >= prev.gas_l && f.sags >= prev.sags;
        mono &= !(f.pimp > 0 && f.pexp > 0);
        time_ok &= f.time == prev.time + interval;
        last_p_imp = f.pimp;
        last_p_exp = f.pexp;
        last_tariff = f.tariff;
        prev = f;
    }
    CHECK(mono);
    CHECK(time_ok);
    /* the registers show whole Wh of an exact joule count: within 1 Wh of the power integral */
    for (int k = 0; k < 2; k++) {
        int64_t di = prev.imp[k] - first.imp[k], de = prev.exp[k] - first.exp[k];
        CHECK(llabs(di * 3600 - joules_imp[k]) < 3600);
        CHECK(llabs(de * 3600 - joules_exp[k]) < 3600);
    }
    CHECK(prev.imp[0] + prev.imp[1] - first.imp[0] - first.imp[1] > 2000); /* > 2 kWh a day */
    CHECK(prev.gas_l > first.gas_l);
}

static void test_registers(void)
{
    day_registers(1706742000, 1); /* 2024-02-01 00:00 CET, winter weekday */
    day_registers(1706742000, 10);
    day_registers(1719784800, 1); /* 2024-07-01 00:00 CEST, summer */
    day_registers(1719784800, 10);
    day_registers(1719784800, 7);
}

static void test_tariff(void)
{
    sim s;
    sim_options o;
    facts f;
    /* Monday 2024-06-03 */
    static const struct {
        int h, m, sec, tariff;
    } cases[] = {{6, 59, 59, 1}, {7, 0, 0, 2}, {22, 59, 59, 2}, {23, 0, 0, 1}, {3, 0, 0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opts(&o, 5, sim_unix_time(2024, 6, 3, cases[i].h, cases[i].m, cases[i].sec, -1), 1);
        sim_init(&s, &o);
        next(&s);
        read_facts(out, &f);
        CHECK_EQ_INT(f.hour, cases[i].h);
        CHECK_EQ_INT(f.tariff, cases[i].tariff);
    }
    /* a weekend is all low tariff; a weekday switches exactly twice */
    opts(&o, 5, sim_unix_time(2024, 6, 8, 0, 0, 0, -1), 60);
    sim_init(&s, &o);
    int high = 0;
    for (int i = 0; i < 2 * 1440; i++) {
        next(&s);
        read_facts(out, &f);
        high += f.tariff == 2;
    }
    CHECK_EQ_INT(high, 0);
    opts(&o, 5, sim_unix_time(2024, 6, 3, 0, 0, 0, -1), 60);
    sim_init(&s, &o);
    int switches = 0, last = 1;
    for (int i = 0; i < 1440; i++) {
        next(&s);
        read_facts(out, &f);
        switches += f.tariff != last;
        last = f.tariff;
        CHECK_EQ_INT(f.tariff, (f.hour >= 7 && f.hour < 23) ? 2 : 1);
    }
    CHECK_EQ_INT(switches, 2);
}

/* Around a DST switch every second of meter time appears once, with the right letter. */
static void dst_day(int64_t start, int autumn)
{
    sim s;
    sim_options o;
    facts f;
    opts(&o, 9, start, 1);
    sim_init(&s, &o);
    int ok_time = 1, seen2 = 0, seen2w = 0, seen2s = 0, letters = 1;
    for (int i = 0; i < 5 * 3600; i++) {
        int64_t t = sim_time(&s);
        next(&s);
        read_facts(out, &f);
        ok_time &= f.time == t;
        sim_tm tm;
        sim_local_time(t, &tm);
        letters &= tm.dst == f.dst && tm.hour == f.hour;
        if (f.hour == 2) {
            seen2++;
            seen2w += !f.dst;
            seen2s += f.dst;
        }
    }
    CHECK(ok_time);
    CHECK(letters);
    if (autumn) {
        CHECK_EQ_INT(seen2s, 3600);
        CHECK_EQ_INT(seen2w, 3600);
    } else {
        CHECK_EQ_INT(seen2, 0);
    }
}

static void test_dst(void)
{
    dst_day(1711836000, 0); /* 2024-03-31 00:00 CET */
    dst_day(1729980000, 1); /* 2024-10-27 00:00 CEST */
    dst_day(sim_unix_time(2025, 3, 30, 0, 0, 0, 0), 0);
    dst_day(sim_unix_time(2025, 10, 26, 0, 0, 0, 1), 1);
}

static void gas_day(int64_t start, uint32_t interval)
{
    sim s;
    sim_options o;
    facts f;
    opts(&o, 11, start, interval);
    sim_init(&s, &o);
    next(&s);
    read_facts(out, &f);
    int64_t prev_l = f.gas_l, prev_cap = f.gas_time, first_l = f.gas_l;
    int ok = 1, changes = 0;
    for (int64_t t = interval; t < 86400; t += interval) {
        int64_t now = sim_time(&s);
        next(&s);
        read_facts(out, &f);
        ok &= f.gas_time == now - now % 300;               /* the last 5-minute boundary */
        ok &= f.gas_l == prev_l || f.gas_time != prev_cap; /* changes only with a new capture */
        changes += f.gas_l != prev_l;
        prev_l = f.gas_l;
        prev_cap = f.gas_time;
    }
    CHECK(ok);
    CHECK(changes > 20);
    CHECK(f.gas_l - first_l > 2000); /* a winter day burns a few m3 */
}

static void test_gas(void)
{
    gas_day(1706742000, 1);
    gas_day(1706742000, 7);
    gas_day(1706742000, 450);
}

static int same_registers(const sim *a, const sim *b)
{
    return memcmp(a->import_j, b->import_j, sizeof a->import_j) == 0 &&
           memcmp(a->export_j, b->export_j, sizeof a->export_j) == 0 && a->gas_acc == b->gas_acc &&
           a->gas_shown_l == b->gas_shown_l && a->gas_capture == b->gas_capture &&
           memcmp(a->sags, b->sags, sizeof a->sags) == 0 &&
           memcmp(a->swells, b->swells, sizeof a->swells) == 0;
}

/* A run that stops and starts again a minute later continues where it left off: the evening's
 * use lies above the average-rate start sim_init picks, and sim_resume raises the registers to
 * what the first run showed (gas with its 5-minute capture), never lowering any. */
static void test_resume(void)
{
    sim a, b, c;
    sim_options o;
    facts last, f;
    opts(&o, 5, 1706806800, 10); /* 2024-02-01 18:00 CET: cooking, heating */
    sim_init(&a, &o);
    for (int i = 0; i < 720; i++) /* two hours */
        next(&a);
    read_facts(out, &last);
    opts(&o, 5, sim_time(&a) - 7140, 10); /* started a minute after the first run */
    sim_init(&b, &o);
    c = b;
    next(&b);
    read_facts(out, &f);
    CHECK(f.imp[1] < last.imp[1]); /* what the fix is for: without it the register steps back */
    CHECK(f.gas_l < last.gas_l);

    sim_registers none;
    memset(&none, 0, sizeof none);
    b = c;
    CHECK_EQ_INT(sim_resume(&b, &none), 0); /* nothing known: nothing changes */
    CHECK(same_registers(&b, &c));

    sim_registers r = {.import_wh = {last.imp[0], last.imp[1]},
                       .export_wh = {last.exp[0], last.exp[1]},
                       .gas_l = last.gas_l,
                       .sags = {last.sags}};
    b = c;
    CHECK(sim_resume(&b, &r) >= 2);
    int64_t start = sim_time(&b);
    next(&b);
    read_facts(out, &f);
    CHECK_EQ_INT(f.imp[1], last.imp[1]);
    CHECK(f.imp[0] >= last.imp[0] && f.exp[0] >= last.exp[0] && f.exp[1] >= last.exp[1]);
    CHECK_EQ_INT(f.gas_l, last.gas_l);
    CHECK_EQ_INT(f.gas_time, start - start % 300);
    CHECK(f.sags >= last.sags);
    /* from there on every register only grows, the gas value with each new capture */
    facts prev = f;
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        next(&b);
        read_facts(out, &f);
        for (int k = 0; k < 2; k++)
            ok &= f.imp[k] >= prev.imp[k] && f.exp[k] >= prev.exp[k];
        ok &= f.gas_l >= prev.gas_l && f.gas_time >= prev.gas_time;
        ok &= f.gas_l == prev.gas_l || f.gas_time != prev.gas_time;
        prev = f;
    }
    CHECK(ok);
    CHECK(f.gas_l > last.gas_l);

    /* lower values, and values no telegram can print, leave the registers alone */
    b = c;
    sim_registers low = {.import_wh = {1, 1}, .export_wh = {1, 1}, .gas_l = 1};
    CHECK_EQ_INT(sim_resume(&b, &low), 0);
    sim_registers huge = {
        .import_wh = {INT64_MAX, 1000000000}, .gas_l = 100000000, .sags = {100000}};
    CHECK_EQ_INT(sim_resume(&b, &huge), 0);
    CHECK(same_registers(&b, &c));
}

static void test_solar(void)
{
    sim s;
    sim_options o;
    facts f;
    /* a summer week and a winter week at 1-minute steps */
    static const struct {
        int64_t start;
        int first_hour, last_hour; /* export allowed in [first, last) local time */
    } weeks[] = {{1719784800, 5, 22}, {1734217200, 8, 17}};
    for (int w = 0; w < 2; w++) {
        opts(&o, 13, weeks[w].start, 60);
        sim_init(&s, &o);
        int64_t night = 0, day = 0, solar_night = 0;
        for (int i = 0; i < 7 * 1440; i++) {
            next(&s);
            read_facts(out, &f);
            int in_day = f.hour >= weeks[w].first_hour && f.hour < weeks[w].last_hour;
            if (in_day)
                day += f.pexp;
            else {
                night += f.pexp;
                solar_night += s.last.solar_w;
            }
        }
        CHECK_EQ_INT(night, 0);
        CHECK_EQ_INT(solar_night, 0);
        CHECK(day > 0);
    }
}

static void test_faults(void)
{
    sim s;
    sim_options o;
    opts(&o, 17, 1704067200, 1);
    o.fault_crc = 50000;      /* 5% */
    o.fault_truncate = 20000; /* 2% */
    o.fault_garbage = 100000; /* 10% */
    sim_init(&s, &o);
    int n_crc = 0, n_trunc = 0, n_garb = 0, wrong = 0;
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        size_t n = next(&s);
        unsigned fl = s.last_faults;
        const char *tg = out;
        if (fl & SIM_FAULT_GARBAGE) {
            n_garb++;
            tg = memchr(out, '/', n);
            wrong += tg == NULL || tg == out || tg[-1] != '\n';
            if (!tg)
                continue;
            n -= (size_t)(tg - out);
        } else {
            wrong += out[0] != '/';
        }
        if (fl & SIM_FAULT_TRUNCATE) {
            n_trunc++;
            wrong += memchr(tg, '!', n) != NULL || tg[n - 1] == '\n' || tg[n - 1] == '\r';
        } else if (fl & SIM_FAULT_CRC) {
            n_crc++;
            wrong += crc_ok(tg, n) || memchr(tg, '!', n) == NULL;
        } else {
            wrong += !crc_ok(tg, n);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    /* binomial: mean N*p, sd sqrt(N*p*(1-p)); allow 4 sd */
    CHECK(n_garb > 2000 - 170 && n_garb < 2000 + 170);
    CHECK(n_trunc > 400 - 80 && n_trunc < 400 + 80);
    CHECK(n_crc > 980 - 125 && n_crc < 980 + 125);
    /* faults do not disturb the physics: the same seed without faults measures the same */
    sim a, b;
    opts(&o, 17, 1704067200, 1);
    sim_init(&a, &o);
    o.fault_crc = o.fault_truncate = o.fault_garbage = SIM_RATE_ONE / 2;
    sim_init(&b, &o);
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        next(&a);
        next(&b);
        same &= memcmp(&a.last, &b.last, sizeof a.last) == 0;
    }
    CHECK(same);
}

/* ---- decoding with libp1's parser ------------------------------------------------------- */

typedef struct tally {
    int ok, crc, truncated, other;
} tally;

static void on_end(void *user, const p1_telegram *t)
{
    tally *ty = user;
    if (t->error == P1_ERR_OK)
        ty->ok++;
    else if (t->error == P1_ERR_CRC_MISMATCH)
        ty->crc++;
    else if (t->error == P1_ERR_TRUNCATED)
        ty->truncated++;
    else
        ty->other++;
}

static void test_parser(void)
{
    static p1_parser p;
    tally ty = {0, 0, 0, 0};
    p1_callbacks cb = {NULL, NULL, on_end};
    p1_settings st = {P1_CRC_REQUIRED, 0, NULL, NULL};
    p1_parser_init(&p, &st, &cb, &ty);
    sim s;
    sim_options o;
    opts(&o, 19, 1711836000, 13);
    sim_init(&s, &o);
    uint64_t r = 12345;
    for (int i = 0; i < 3000; i++) {
        size_t n = next(&s);
        /* feed in random pieces: the parser must not care */
        for (size_t off = 0; off < n;) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t k = 1 + (size_t)((r >> 33) % 300);
            if (k > n - off)
                k = n - off;
            p1_execute(&p, out + off, k);
            off += k;
        }
    }
    p1_finish(&p);
    CHECK_EQ_INT(ty.ok, 3000);
    CHECK_EQ_INT(ty.crc + ty.truncated + ty.other, 0);

    /* with faults: every CRC fault is a crc_mismatch; garbage costs nothing */
    memset(&ty, 0, sizeof ty);
    p1_parser_init(&p, &st, &cb, &ty);
    opts(&o, 23, 1704067200, 1);
    o.fault_crc = 100000;
    o.fault_garbage = 200000;
    sim_init(&s, &o);
    int crc_faults = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = next(&s);
        crc_faults += (s.last_faults & SIM_FAULT_CRC) != 0;
        p1_execute(&p, out, n);
    }
    p1_finish(&p);
    CHECK(crc_faults > 200);
    CHECK_EQ_INT(ty.crc, crc_faults);
    CHECK_EQ_INT(ty.ok, 3000 - crc_faults);
    CHECK_EQ_INT(ty.truncated + ty.other, 0);

    /* truncation: the cut telegram is rejected; the stream recovers */
    memset(&ty, 0, sizeof ty);
    p1_parser_init(&p, &st, &cb, &ty);
    opts(&o, 29, 1704067200, 1);
    o.fault_truncate = 50000;
    sim_init(&s, &o);
    int cuts = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = next(&s);
        cuts += (s.last_faults & SIM_FAULT_TRUNCATE) != 0;
        p1_execute(&p, out, n);
    }
    p1_finish(&p);
    CHECK(cuts > 80);
    CHECK(ty.ok >= 3000 - 2 * cuts);
    CHECK(ty.ok < 3000);
    printf("sim: %d cuts -> ok %d, truncated %d, crc %d, other %d\n", cuts, ty.ok, ty.truncated,
           ty.crc, ty.other);
}

int main(void)
{
    RUN(test_calendar);
    RUN(test_options);
    RUN(test_determinism);
    RUN(test_crc_and_shape);
    RUN(test_registers);
    RUN(test_tariff);
    RUN(test_dst);
    RUN(test_gas);
    RUN(test_resume);
    RUN(test_solar);
    RUN(test_faults);
    RUN(test_parser);
    return check_summary("test_sim");
}
