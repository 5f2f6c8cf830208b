#!/usr/bin/env python3
"""test_prices_cheapest.py: GET /api/prices/cheapest, the cheapest run of `hours` in the dynamic
power prices (when to start the dishwasher): exact means of the adjusted import price, windows that
start or end at a slot boundary (1.5 h may start half-way into an hour), quarter-hour prices, a
hole in the prices that no window may span, from/to clipping, no window long enough (null), and
bad requests (hours 0, 25, abc, inf, given twice; from after to; a range of more than 31 days;
POST; p1d without a store)."""
import datetime
import json
import os
import sys
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, http, need_p1d, tmpdir  # noqa: E402

T = Checks("test_prices_cheapest")
need_p1d(T)

# 2030-01-15, local time (CET): a spot price per hour, one negative; adjusted x 1.21 by the config
HOURS = (0.30, 0.10, 0.20, 0.05, 0.40, -0.02, 0.50)
CSV = "time,price\n" + "".join("2030-01-15T%02d:00,%.2f\n" % (h, p) for h, p in enumerate(HOURS))
# the next day in quarter hours, with a hole from 02:00 to 03:00
QUARTERS = [(q, 0.2 + 0.01 * ((q * 7) % 11)) for q in range(24) if not 8 <= q < 12]
CSV_Q = "time,price\n" + "".join("2030-01-16T%02d:%02d,%.4f\n" % (q // 4, q % 4 * 15, p)
                                 for q, p in QUARTERS)


def ask(port, query):
    s, _, b = http(port, "/api/prices/cheapest?" + query)
    try:
        return s, json.loads(b)
    except ValueError:
        return s, {"raw": b[:200]}


def want(port, query, start, end, imp, what):
    s, j = ask(port, query)
    T.check(what, s == 200 and j.get("start") == start and j.get("end") == end and
            j.get("import_price") == imp, "%s %s" % (s, j))


def brute(prices, step, dur, factor=1.21):
    """The cheapest window of dur seconds starting on any minute, over [(start s, price)] slots of
    `step` seconds with holes: (start, mean import price rounded to 6 decimals)."""
    per = {}
    for t, p in prices:
        for m in range(0, step, 60):
            per[t + m] = p * factor
    best = None
    for c in sorted(per):
        mins = [per.get(c + m) for m in range(0, dur, 60)]
        if None in mins:
            continue
        mean = sum(mins) / len(mins)
        if best is None or mean < best[1] - 1e-12:
            best = (c, mean)
    return best


def main():
    with tmpdir() as tmp:
        conf = os.path.join(tmp, "p1d.conf")
        with open(conf, "w") as f:
            f.write("[prices]\ndynamic_import_factor = 1.21\n")
        d = Daemon(["--config", conf, "--db", os.path.join(tmp, "p.db"), "--listen",
                    "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            s, _, b = http(port, "/api/prices/cheapest?from=2030-01-15&hours=2")
            T.check("no prices: 200 with a null window", s == 200 and
                    json.loads(b)["start"] is None, b)
            for body in (CSV, CSV_Q):
                s, _, b = http(port, "/api/prices", "PUT", body.encode(), {"Content-Type": "text/csv"})
                T.check("prices uploaded", s == 200, b)
            day = "from=2030-01-15&to=2030-01-16"
            want(port, day + "&hours=2", "2030-01-15T02:00:00+01:00", "2030-01-15T04:00:00+01:00",
                 0.15125, "2 h: 02:00-04:00, mean (0.20 + 0.05) / 2 x 1.21 = 0.15125")
            want(port, day + "&hours=1", "2030-01-15T05:00:00+01:00", "2030-01-15T06:00:00+01:00",
                 -0.0242, "1 h: the negative hour, -0.02 x 1.21")
            want(port, day, "2030-01-15T05:00:00+01:00", "2030-01-15T06:00:00+01:00",
                 -0.0242, "hours defaults to 1")
            want(port, day + "&hours=1.5", "2030-01-15T02:30:00+01:00",
                 "2030-01-15T04:00:00+01:00", 0.121,
                 "1.5 h: starts half-way into 02:00 and ends with the cheap 03:00 hour (0.121)")
            want(port, day + "&hours=7", "2030-01-15T00:00:00+01:00", "2030-01-15T07:00:00+01:00",
                 0.264471, "7 h: all of them, 1.53 / 7 x 1.21 rounded to 0.264471")
            s, j = ask(port, day + "&hours=7.01")
            T.check("7.01 h: longer than the prices, a null window", s == 200 and
                    j.get("start") is None and j.get("import_price") is None and
                    j.get("hours") == 7.01, j)
            want(port, "from=2030-01-15T02:30&to=2030-01-15T05:00&hours=2",
                 "2030-01-15T02:30:00+01:00", "2030-01-15T04:30:00+01:00", 0.21175,
                 "from and to clip the slots: 02:30-04:30")
            # quarter hours with a hole: compare with a minute-by-minute search
            zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
            qs = [(int(datetime.datetime(2030, 1, 16, q // 4, q % 4 * 15, tzinfo=zone).timestamp()),
                   p) for q, p in QUARTERS]
            for hours in (0.25, 0.75, 1, 1.25, 2, 2.5):
                s, j = ask(port, "from=2030-01-16&to=2030-01-17&hours=%s" % hours)
                b = brute(qs, 900, int(hours * 3600))
                got = (datetime.datetime.fromisoformat(j["start"]).timestamp()
                       if j.get("start") else None)
                T.check("quarter hours with a hole, %s h: the cheapest of every minute's window"
                        % hours, s == 200 and got == b[0] and abs(j["import_price"] - b[1]) < 1e-6,
                        "%s %s, brute %s" % (s, j, b))
            s, j = ask(port, "from=2030-01-16&to=2030-01-17&hours=16")
            T.check("no window spans the hole (02:00-03:00): 16 h has none", s == 200 and
                    j.get("start") is None, j)
            for q, why in (("hours=0", "hours: expected a number of hours more than 0"),
                           ("hours=25", "at most 24"), ("hours=abc", "got 'abc'"),
                           ("hours=inf", "got 'inf'"), ("hours=1&hours=2", "hours given twice"),
                           ("from=2030-01-16&to=2030-01-15", "from must be before to"),
                           ("to=2020-01-15", "to must be after from, which is now when not "
                            "given: give from too"),
                           ("from=2030-01-01&to=2030-03-01", "at most 31 days")):
                s, j = ask(port, q)
                T.check("400 for %s" % q, s == 400 and j.get("error", {}).get("code") ==
                        "bad_parameter" and why in j["error"]["message"], "%s %s" % (s, j))
            s, _, b = http(port, "/api/prices/cheapest", "POST", b"x")
            T.check("POST: 405", s == 405, b)
        finally:
            d.stop()
        d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            s, _, b = http(port, "/api/prices/cheapest")
            T.check("without a store: 404 no_database", s == 404 and b"no_database" in b, b)
        finally:
            d.stop()
    T.done()


main()
