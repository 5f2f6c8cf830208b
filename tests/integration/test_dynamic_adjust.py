#!/usr/bin/env python3
"""test_dynamic_adjust.py: [prices] dynamic_import_factor/_add and dynamic_export_factor/_add, the
end of Dutch net metering (2027): a file of bare spot prices is adjusted per kWh to what import
costs (spot x 1.21 + taxes) and what export earns (spot - a fee), to the micro-euro in
/api/history and /api/summary: without keys as before, import only (export at the adjusted import
price), export only, both, a file with an export column (used as it is); the keys belong to the
fixed period (a reload with the same valid_from re-prices all, a later valid_from only what
follows), are listed by /api/prices and `p1 prices list`, and --check-config names a bad one."""
import datetime
import json
import os
import signal
import subprocess
import sys
import zoneinfo
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, crc16, http, meter_time, need_p1d, run,  # noqa: E402
                            start_replay, tmpdir, write_conf)
from store_helpers import P1  # noqa: E402

T = Checks("test_dynamic_adjust")
need_p1d(T)

ZONE = zoneinfo.ZoneInfo("Europe/Amsterdam")
DAY = "2026-01-15"
HOURS = (10, 11, 12)
SPOT = (123457, -12345, 87654)  # micro-euros per kWh: a negative spot price in the middle hour
RATE = ((20, 0), (5, 15), (12, 8))  # Wh imported and exported per minute in each hour
SPOT_CSV = "time,price\n" + "".join("%sT%02d:00,%s\n" % (DAY, h, Decimal(p) / 1000000)
                                    for h, p in zip(HOURS, SPOT))
EXPORT_COL = (45678, -1000, 0)  # the export column of the second file
EXPORT_CSV = "time,price,export\n" + "".join(
    "%sT%02d:00,%s,%s\n" % (DAY, h, Decimal(p) / 1000000, Decimal(x) / 1000000)
    for h, p, x in zip(HOURS, SPOT, EXPORT_COL))


def telegram(when, imp, exp):
    """A DSMR 5 telegram at unix time `when` with imp and exp Wh on the tariff 2 registers."""
    body = ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
            "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
            "1-0:1.8.1(000100.000*kWh)\r\n1-0:1.8.2(%06d.%03d*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(%06d.%03d*kWh)\r\n"
            "0-0:96.14.0(0002)\r\n1-0:1.7.0(00.000*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
            % (meter_time(when), 200 + imp // 1000, imp % 1000, 10 + exp // 1000, exp % 1000))
    return body.encode() + b"%04X\r\n" % crc16(body.encode())


def capture(path):
    """A reading each minute from 10:00 to 13:00 on DAY, each hour at its RATE."""
    t0 = int(datetime.datetime(2026, 1, 15, 10, 0, tzinfo=ZONE).timestamp())
    imp = exp = 0
    with open(path, "wb") as f:
        for m in range(181):
            f.write(telegram(t0 + 60 * m, imp, exp))
            if m < 180:
                imp += RATE[m // 60][0]
                exp += RATE[m // 60][1]


def half_away(num, den):
    """num / den rounded to an integer, half away from zero."""
    q = (abs(num) * 2 + den) // (2 * den)
    return q if num >= 0 else -q


def adjusted(p, factor=None, add=None):
    """What p1d's docs promise: P x factor + add, once rounded to a micro-euro per kWh."""
    f = 1000000 if factor is None else factor
    return half_away(p * f + (add or 0) * 1000000, 1000000)


def expected(keys, export_col=None):
    """Micro-euros per quarter-hour (12 of them, 10:00 to 13:00) for the [prices] keys (a dict of
    micro-units) and the file's export column (None: no column)."""
    out = []
    for k, p in enumerate(SPOT):
        pi = adjusted(p, keys.get("dynamic_import_factor"), keys.get("dynamic_import_add"))
        if export_col is not None:
            pe = export_col[k]
        elif "dynamic_export_factor" in keys or "dynamic_export_add" in keys:
            pe = adjusted(p, keys.get("dynamic_export_factor"), keys.get("dynamic_export_add"))
        else:
            pe = pi
        imp, exp = RATE[k][0] * 15, RATE[k][1] * 15
        out += [half_away(imp * pi - exp * pe, 1000)] * 4
    return out


def eur(micro):
    return Decimal(micro) / 1000000


def get(port, path):
    c, _, b = http(port, path)
    return c, json.loads(b, parse_float=Decimal) if c == 200 else {}


def put(port, body):
    c, _, b = http(port, "/api/prices?kind=power", "PUT", body.encode(),
                   {"Content-Type": "text/csv"})
    return c, b.decode()


def costs_are(port, what, want):
    """/api/history (15m, 1h, 1d) and /api/summary of DAY against the quarter-hour costs want."""
    q = "/api/history?from=%sT10:00&to=%sT13:00&fields=cost_eur,unpriced_kwh" % (DAY, DAY)
    c, h15 = get(port, q + "&step=15m")
    c1, h1 = get(port, q + "&step=1h")
    c2, s = get(port, "/api/summary?period=day&at=" + DAY)
    hours = [sum(want[4 * k:4 * k + 4]) for k in range(3)]
    ce = s.get("cost_eur") or {}
    T.check(what + ": /api/history 15m to the micro-euro",
            c == 200 and h15.get("cost_eur") == [eur(x) for x in want] and
            h15.get("unpriced_kwh") == [0] * 12, (h15, [eur(x) for x in want]))
    T.check(what + ": /api/history 1h, the sum of its quarter-hours",
            c1 == 200 and h1.get("cost_eur") == [eur(x) for x in hours], (h1, hours))
    T.check(what + ": /api/summary energy and total %s EUR" % eur(sum(want)),
            c2 == 200 and ce.get("energy") == eur(sum(want)) and
            ce.get("total") == eur(sum(want)) and not ce.get("partial") and
            s.get("import_kwh") == Decimal("2.22") and s.get("export_kwh") == Decimal("1.38"), s)


def start(tmp, name, prices):
    cap = os.path.join(tmp, name + ".txt")
    capture(cap)
    return start_replay(T, tmp, name, "[prices]\n" + prices, cap,
                        "%s: p1d starts with [prices] %r" % (name, prices))


def reload(d, conf, prices, n):
    """Writes [prices] `prices` to conf, SIGHUPs d and waits for the n-th recording of prices."""
    write_conf(conf, "[prices]\n" + prices)
    d.signal(signal.SIGHUP)
    return d.wait_log(r"reload: \[prices\] recorded", 5, count=n)


def test_costs(tmp):
    d, port, conf = start(tmp, "adj", "")
    try:
        if port is None:
            return
        c, b = put(port, SPOT_CSV)
        T.check("the hourly spot prices upload", c == 200, b)
        c, h = get(port, "/api/history?from=%sT10:00&to=%sT13:00&step=1h"
                   "&fields=import_kwh,export_kwh" % (DAY, DAY))
        T.check("the capture: 1.2/0, 0.3/0.9 and 0.72/0.48 kWh in the three hours",
                h.get("import_kwh") == [Decimal("1.2"), Decimal("0.3"), Decimal("0.72")] and
                h.get("export_kwh") == [0, Decimal("0.9"), Decimal("0.48")], h)
        want = expected({})
        # 10:00: 300 Wh x 0.123457; 11:00: (75 - 225) Wh x -0.012345; 12:00: 60 Wh x 0.087654
        T.check("no keys: the file's prices, export at the same price (the arithmetic)",
                want == [37037] * 4 + [1852] * 4 + [5259] * 4, want)
        costs_are(port, "no keys (as before)", want)

        imp = "dynamic_import_factor = 1.21\ndynamic_import_add = 0.147063\n"
        T.check("reload: import adjustment", reload(d, conf, imp, 1), d.text()[-2000:])
        want = expected({"dynamic_import_factor": 1210000, "dynamic_import_add": 147063})
        # 10:00: 0.29644597 -> 0.296446 x 300 Wh; 11:00: 0.13212555 -> 0.132126 x -150 Wh;
        # 12:00: 0.25312434 -> 0.253124 x 60 Wh
        T.check("import only: export at the adjusted import price (the arithmetic)",
                want == [88934] * 4 + [-19819] * 4 + [15187] * 4, want)
        costs_are(port, "import adjusted", want)

        exp = "dynamic_export_add = -0.02\n"
        T.check("reload: export adjustment only", reload(d, conf, exp, 2), d.text()[-2000:])
        want = expected({"dynamic_export_add": -20000})
        # 11:00: 75 Wh x -0.012345 - 225 Wh x -0.032345 (exporting at a negative price costs);
        # 12:00: 180 Wh x 0.087654 - 120 Wh x 0.067654
        T.check("export only: import at the file's price, export at spot - 0.02",
                want == [37037] * 4 + [6352] * 4 + [7659] * 4, want)
        costs_are(port, "export adjusted", want)

        both = imp + "dynamic_export_factor = 0.5\ndynamic_export_add = -0.02\n"
        T.check("reload: both", reload(d, conf, both, 3), d.text()[-2000:])
        keys = {"dynamic_import_factor": 1210000, "dynamic_import_add": 147063,
                "dynamic_export_factor": 500000, "dynamic_export_add": -20000}
        want = expected(keys)
        # 12:00: 180 Wh x 0.253124 - 120 Wh x (0.043827 - 0.02): export from the file's price
        T.check("both: export from the file's price, not the adjusted import price",
                want[8] == 42703, want)
        costs_are(port, "both adjusted", want)

        c, b = put(port, EXPORT_CSV)
        T.check("a file with an export column replaces the prices", c == 200, b)
        want = expected(keys, EXPORT_COL)
        T.check("export column: its values as they are (12:00: 180 Wh x 0.253124 - 0)",
                want[8] == 45562, want)
        costs_are(port, "export column", want)

        c, p = get(port, "/api/prices?from=%s&to=2026-01-16" % DAY)
        f = (p.get("fixed") or [{}])[-1]
        T.check("/api/prices lists the keys of the period",
                c == 200 and f.get("dynamic_import_factor") == Decimal("1.21") and
                f.get("dynamic_import_add") == Decimal("0.147063") and
                f.get("dynamic_export_factor") == Decimal("0.5") and
                f.get("dynamic_export_add") == Decimal("-0.02") and f.get("import") is None and
                [x.get("price") for x in p.get("power", [])] ==
                [Decimal(x) / 1000000 for x in SPOT], p)
        T.check("/api/prices: each hour's import_price and export_price as the costs count "
                "them (the file's export column as it is)",
                [(x.get("import_price"), x.get("export_price")) for x in p.get("power", [])] ==
                [(eur(adjusted(sp, keys.get("dynamic_import_factor"),
                               keys.get("dynamic_import_add"))), eur(EXPORT_COL[k]))
                 for k, sp in enumerate(SPOT)], p.get("power"))

        # A later period: its keys price what follows its valid_from, the earlier period keeps
        # the earlier hours.
        c, b = put(port, SPOT_CSV)
        later = "valid_from = %sT12:00\ndynamic_import_factor = 2\n" % DAY
        T.check("reload: a period from 12:00 with other keys", reload(d, conf, later, 4),
                d.text()[-2000:])
        want = expected(keys)[:8] + expected({"dynamic_import_factor": 2000000})[8:]
        T.check("the later period: import x 2, export at that (net metering): 60 Wh x 0.175308",
                want[8:] == [10518] * 4, want)
        costs_are(port, "two periods", want)
        c, p = get(port, "/api/prices?from=%s&to=2026-01-16" % DAY)
        T.check("/api/prices: hours before 12:00 adjusted by the first period, from 12:00 by "
                "the later one; export without a column at the adjusted import price there",
                [(x.get("import_price"), x.get("export_price")) for x in p.get("power", [])] ==
                [(eur(adjusted(sp, keys.get("dynamic_import_factor"),
                               keys.get("dynamic_import_add"))),
                  eur(adjusted(sp, keys.get("dynamic_export_factor"),
                               keys.get("dynamic_export_add")))) for sp in SPOT[:2]] +
                [(eur(adjusted(SPOT[2], 2000000)), eur(adjusted(SPOT[2], 2000000)))],
                p.get("power"))
        T.check("/api/prices: both periods, each with its own keys",
                [(x.get("dynamic_import_factor"), x.get("dynamic_export_add"))
                 for x in p.get("fixed", [])] == [(Decimal("1.21"), Decimal("-0.02")),
                                                  (2, None)], p)
        write_conf(conf, "[prices]\ndynamic_import_factor = -1.21\n")
        d.signal(signal.SIGHUP)
        T.check("reload with a negative factor: refused naming the key, prices kept",
                d.wait_log(r"dynamic_import_factor: expected a factor between 0 and 100", 5),
                d.text()[-2000:])
        costs_are(port, "after the refused reload", want)
    finally:
        d.stop()
    r = subprocess.run([P1, "prices", "list", "--db", os.path.join(tmp, "adj.db")],
                       capture_output=True, timeout=30)
    lines = r.stdout.decode().splitlines()
    head = lines[0].split(",") if lines else []
    rows = [x.split(",") for x in lines[1:3]]
    cols = ["dynamic_import_factor", "dynamic_import_add", "dynamic_export_factor",
            "dynamic_export_add"]
    T.check("p1 prices list: the four columns of each period",
            r.returncode == 0 and all(c in head for c in cols) and len(rows) == 2 and
            [rows[0][head.index(c)] for c in cols] ==
            ["1.210000", "0.147063", "0.500000", "-0.020000"] and
            [rows[1][head.index(c)] for c in cols] == ["2.000000", "", "", ""], lines[:3])


def test_start(tmp):
    """Keys given at start-up (no other price at all) are recorded and price the costs."""
    d, port, conf = start(tmp, "start", "dynamic_import_factor = 1.21\n"
                          "dynamic_import_add = 0.147063\ndynamic_export_add = -0.02\n")
    try:
        if port is None:
            return
        c, b = put(port, SPOT_CSV)
        T.check("start: the spot prices upload", c == 200, b)
        costs_are(port, "keys from the start", expected(
            {"dynamic_import_factor": 1210000, "dynamic_import_add": 147063,
             "dynamic_export_add": -20000}))
    finally:
        d.stop()


def test_config(tmp):
    p = os.path.join(tmp, "bad.conf")
    for key, value, want in (
            ("dynamic_import_factor", "-1", "expected a factor between 0 and 100 (such as 1.21), "
             "got '-1'"),
            ("dynamic_export_factor", "101", "expected a factor between 0 and 100"),
            ("dynamic_import_factor", "1,21", "expected a factor such as 1.21, got '1,21' (write "
             "the decimals after a '.', not a ',')"),
            ("dynamic_import_add", "abc", "expected a price in EUR such as 0.2345, got 'abc'"),
            ("dynamic_export_add", "-2e-2", "expected a price in EUR such as 0.2345, got '-2e-2' "
             "(write the number out, without an exponent)"),
            ("dynamic_export_add", "-2000000", "expected a price in EUR such as 0.2345, got "
             "'-2000000' (out of range: at most 1000000 EUR)")):
        with open(p, "w") as f:
            f.write("[source a]\nspec = sim\n[prices]\n%s = %s\n" % (key, value))
        code, out, err = run(["--config", p, "--check-config"])
        T.check("%s = %s: exit 2 naming the file, line, key and why" % (key, value),
                code == 2 and "bad.conf:4" in err and "[prices] %s: %s" % (key, want) in err,
                (code, err))
    with open(p, "w") as f:
        f.write("[source a]\nspec = sim\n[prices]\ndynamic_import_factor = 1.21\n"
                "dynamic_import_add = 0.147063\ndynamic_export_factor = 0\n"
                "dynamic_export_add = -0.02\n")
    code, out, err = run(["--config", p, "--check-config"])
    T.check("good values pass --check-config", code == 0, err)
    code, out, err = run(["--source", "a=sim", "--prices-dynamic-import-factor", "-3",
                          "--check-config"])
    T.check("the flag: exit 2 naming it", code == 2 and "dynamic_import_factor" in err, err)
    code, out, err = run(["--print-config-doc"])
    T.check("--print-config-doc documents the four keys",
            code == 0 and all("| `dynamic_%s` |" % k in out for k in
                              ("import_factor", "import_add", "export_factor", "export_add")),
            err)


def main():
    with tmpdir() as tmp:
        T.run([test_config, test_costs, test_start], tmp)
    T.done()


if __name__ == "__main__":
    main()
