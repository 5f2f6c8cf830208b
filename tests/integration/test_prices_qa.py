#!/usr/bin/env python3
"""test_prices_qa.py: dynamic prices as Dutch households upload them: a file that goes from hourly
to quarter-hour prices (EPEX since 1 Oct 2025) keeps whole hours before the change, the autumn
DST day in local time without offsets (02:00 listed twice) gets both passes of the repeated hour,
gas prices from 06:00 to 06:00 over the DST change (also per date with gas_day_start), a later
upload ending the older prices it overlaps, Tibber's and EnergyZero's JSON, negative prices, and
/api/summary, /api/history and `p1 prices list` agreeing."""
import json
import os
import subprocess
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, http, need_p1d, tmpdir  # noqa: E402
from store_helpers import P1  # noqa: E402

T = Checks("test_prices_qa")
need_p1d(T)


def put(port, body, kind="power"):
    c, _, b = http(port, "/api/prices?kind=" + kind, "PUT", body.encode(),
                   {"Content-Type": "text/csv"})
    return c, b.decode()


def get(port, path):
    c, _, b = http(port, path)
    return c, json.loads(b) if c == 200 else {}


def main():
    with tmpdir() as tmp:
        cap, db = os.path.join(tmp, "cap.txt"), os.path.join(tmp, "h.db")
        with open(cap, "wb") as f:
            p = subprocess.run([P1, "sim", "--start", "2025-09-29T00:00", "--interval", "60",
                                "--count", "4320"], stdout=f, timeout=60)
        p = subprocess.run([P1, "import", "--db", db, "--meter", "home", cap],
                           capture_output=True, timeout=60)
        T.check("p1 import stored the capture", p.returncode == 0, p.stderr.decode()[-300:])
        # The autumn DST day.
        with open(cap, "wb") as f:
            subprocess.run([P1, "sim", "--start", "2025-10-25T00:00", "--interval", "60",
                            "--count", "4380"], stdout=f, timeout=60)
        p = subprocess.run([P1, "import", "--db", db, "--meter", "home", cap],
                           capture_output=True, timeout=60)
        T.check("p1 import stored the DST capture", p.returncode == 0, p.stderr.decode()[-300:])
        d = Daemon(["--db", db, "--listen", "127.0.0.1:0"], tmp)  # no fixed prices at all
        try:
            port = d.http_port()
            T.check("p1d serves the store", port is not None, d.text()[-500:])
            if port is not None:
                run(port, db)
        finally:
            T.check("p1d exits cleanly", d.stop() == 0, d.text()[-1000:])
    T.done()


def run(port, db):
    # ---- hourly prices on 30 Sep, quarter-hour prices on 1 Oct, in one file ----------------------
    lines = ["time,price"]
    for h in range(24):
        lines.append("2025-09-30T%02d:00,0.%02d" % (h, 10 + h))
    for q in range(96):
        lines.append("2025-10-01T%02d:%02d,%s" % (q // 4, q % 4 * 15,
                                                  "-0.05" if q % 4 == 2 else "0.%02d" % (40 + q % 4)))
    c, b = put(port, "\n".join(lines) + "\n")
    T.check("mixed hourly + quarter-hour upload -> 200, 120 prices",
            c == 200 and json.loads(b).get("imported") == 120, b)
    # only a past `to`: the reason names the default from, not "from must be before to"
    c, _, b = http(port, "/api/prices?to=2025-10-02")
    T.check("/api/prices?to=PAST: 400 saying from is today unless given",
            c == 400 and b"to must be after from, which is the start of today when not given: "
            b"give from too" in b, b)
    c, j = get(port, "/api/prices?from=2025-09-30&to=2025-10-02")
    pw = j.get("power", [])
    T.check("hourly prices before the change last the whole hour",
            len(pw) == 120 and pw[0]["end"] == "2025-09-30T01:00:00+02:00" and
            pw[23]["end"] == "2025-10-01T00:00:00+02:00", str(pw[:2]))
    T.check("quarter-hour prices last 15 minutes",
            len(pw) == 120 and pw[24]["end"] == "2025-10-01T00:15:00+02:00" and
            pw[-1]["end"] == "2025-10-02T00:00:00+02:00", str(pw[-1:]))
    c, j = get(port, "/api/history?from=2025-09-30&to=2025-10-02&step=1h"
               "&fields=cost_eur,unpriced_kwh,import_kwh,export_kwh")
    unp = [v for v in j.get("unpriced_kwh", []) if v]
    T.check("every hour of both days is priced (no unpriced energy)", c == 200 and not unp and
            len(j.get("time", [])) == 48, str(unp[:5]))
    # Quarter-hour prices are used per quarter: the 15m costs follow them exactly.
    c, j = get(port, "/api/history?from=2025-10-01&to=2025-10-02&step=15m"
               "&fields=cost_eur,import_kwh,export_kwh")
    bad = []
    for i, t in enumerate(j.get("time", [])):
        price = Decimal("-0.05") if i % 4 == 2 else Decimal("0.%02d" % (40 + i % 4))
        want = (Decimal(str(j["import_kwh"][i])) - Decimal(str(j["export_kwh"][i]))) * price
        if abs(Decimal(str(j["cost_eur"][i])) - want) > Decimal("0.0000005"):
            bad.append((t, j["cost_eur"][i], str(want)))
    T.check("15m costs on 1 Oct use each quarter's own price (negative ones too)",
            c == 200 and len(j.get("time", [])) == 96 and not bad, str(bad[:3]))
    neg = [j["cost_eur"][i] for i in range(2, 96, 4) if j["import_kwh"][i] > j["export_kwh"][i]]
    T.check("net import at a negative price earns money", neg and all(v < 0 for v in neg), str(neg))

    # An upload of quarter-hours from 10:15 over the hourly prices: the 10:00 price ends at 10:15.
    c, b = put(port, "time,price\n2025-09-30T10:15,0.90\n2025-09-30T10:30,0.90\n"
               "2025-09-30T10:45,0.90\n")
    c, j = get(port, "/api/prices?from=2025-09-30T09:00&to=2025-09-30T12:00")
    got = [(p["time"][11:16], p["end"][11:16], p["price"]) for p in j.get("power", [])]
    T.check("a later upload wins: no stored prices overlap", got == [
        ("09:00", "10:00", 0.19), ("10:00", "10:15", 0.2), ("10:15", "10:30", 0.9),
        ("10:30", "10:45", 0.9), ("10:45", "11:00", 0.9), ("11:00", "12:00", 0.21)], str(got))

    # ---- the autumn DST day in local time without offsets ---------------------------------------
    hours = [0, 1, 2, 2] + list(range(3, 24))
    lines = ["time;price"] + ["2025-10-26T%02d:00;0,%02d" % (h, 10 + i) for i, h in enumerate(hours)]
    c, b = put(port, "\n".join(lines) + "\n")
    T.check("25 local hours with 02:00 twice -> 200, 25 prices",
            c == 200 and json.loads(b).get("imported") == 25, b)
    c, j = get(port, "/api/prices?from=2025-10-26&to=2025-10-27")
    got = [(p["time"], p["price"]) for p in j.get("power", [])]
    T.check("the first 02:00 is summer time, the second winter time",
            ("2025-10-26T02:00:00+02:00", 0.12) in got and ("2025-10-26T02:00:00+01:00", 0.13) in got
            and len(got) == 25, str(got[:6]))
    q = ["2025-10-26T%02d:%02d" % (h, m) for h in hours for m in (0, 15, 30, 45)]
    lines = ["time,price"] + ["%s,0.%03d" % (t, 100 + i) for i, t in enumerate(q)]
    c, b = put(port, "\n".join(lines) + "\n")
    c2, j = get(port, "/api/prices?from=2025-10-26T02:00%2B02:00&to=2025-10-26T03:00%2B01:00")
    T.check("quarter-hours of the repeated hour listed twice -> 100 prices, 8 in 02:00-03:00",
            c == 200 and json.loads(b).get("imported") == 100 and len(j.get("power", [])) == 8 and
            j["power"][3]["price"] == 0.111 and j["power"][4]["price"] == 0.112, b + str(j)[:400])
    c, b = put(port, "time,price\n2025-10-26T02:00,0.1\n2025-10-26T02:00,0.2\n"
               "2025-10-26T02:00,0.3\n")
    T.check("02:00 three times is still a duplicate -> 400 naming the line",
            c == 400 and "line 4" in b, b)

    # ---- a day-ahead file in EUR/MWh (ENTSO-E, EPEX) is not 1000 times the price ---------------
    c, b = put(port, "time,price\n2025-11-01T00:00Z,85.12\n2025-11-01T01:00Z,-3.5\n")
    c2, j = get(port, "/api/prices?from=2025-11-01&to=2025-11-02")
    T.check("a price list in EUR/MWh -> 400 naming line 2 and the unit, nothing stored",
            c == 400 and "line 2: price: 85.12 EUR per kWh" in b and "EUR/MWh" in b and
            j.get("power") == [], b)

    # ---- suppliers' own JSON -------------------------------------------------------------------
    c, _, b = http(port, "/api/prices", "PUT", json.dumps([
        {"total": 0.2514, "energy": 0.0912, "tax": 0.1602, "startsAt": "2025-11-03T00:00:00.000+01:00"},
        {"total": -0.0123, "energy": -0.1, "tax": 0.0877, "startsAt": "2025-11-03T01:00:00.000+01:00"}
    ]).encode(), {"Content-Type": "application/json"})
    T.check("Tibber's priceInfo list (total, startsAt) -> 200, 2 prices",
            c == 200 and json.loads(b).get("imported") == 2, b)
    c, _, b = http(port, "/api/prices", "PUT", json.dumps({"Prices": [
        {"price": 0.1, "readingDate": "2025-11-04T23:00:00Z"}]}).encode(),
        {"Content-Type": "application/json"})
    c2, j = get(port, "/api/prices?from=2025-11-03&to=2025-11-06")
    T.check("EnergyZero's {Prices:[{price, readingDate}]} -> 200; both stored as given",
            c == 200 and [p["price"] for p in j.get("power", [])] == [0.2514, -0.0123, 0.1],
            b.decode() + str(j)[:300])

    # ---- gas from 06:00 to 06:00 ----------------------------------------------------------------
    c, b = put(port, "time,price\n2025-10-20T06:00,1.00\n2025-10-22T06:00,2.00\n"
               "2025-10-25T06:00,3.00\n", "gas")
    c, j = get(port, "/api/prices?from=2025-10-20&to=2025-10-29")
    g = [(p["time"], p["end"]) for p in j.get("gas", [])]
    T.check("a gas price at 06:00 lasts until 06:00 the next day (a missing day stays a hole, "
            "the last price crosses the DST change)",
            g == [("2025-10-20T06:00:00+02:00", "2025-10-21T06:00:00+02:00"),
                  ("2025-10-22T06:00:00+02:00", "2025-10-23T06:00:00+02:00"),
                  ("2025-10-25T06:00:00+02:00", "2025-10-26T06:00:00+01:00")], str(g))

    # Gas prices per date from a supplier whose gas day starts at 06:00.
    body = b"date;price\n2025-11-10;1,10\n2025-11-11;1,20\n"
    c, _, b = http(port, "/api/prices?kind=gas&gas_day_start=06:00", "PUT", body,
                   {"Content-Type": "text/csv"})
    c2, j = get(port, "/api/prices?from=2025-11-10&to=2025-11-13")
    g = [(p["time"], p["end"], p["price"]) for p in j.get("gas", [])]
    T.check("gas_day_start=06:00: a date is the gas day from 06:00 to 06:00",
            c == 200 and g == [("2025-11-10T06:00:00+01:00", "2025-11-11T06:00:00+01:00", 1.1),
                               ("2025-11-11T06:00:00+01:00", "2025-11-12T06:00:00+01:00", 1.2)],
            b.decode() + str(g))
    c, _, b = http(port, "/api/prices?kind=power&gas_day_start=06:00", "PUT", body,
                   {"Content-Type": "text/csv"})
    c2, _, b2 = http(port, "/api/prices?kind=gas&gas_day_start=6", "PUT", body,
                     {"Content-Type": "text/csv"})
    T.check("gas_day_start with kind=power, or not HH:MM -> 400 bad_parameter",
            c == 400 and b"bad_parameter" in b and c2 == 400 and b"HH:MM" in b2, b + b2)
    pf = db + ".gas.csv"
    with open(pf, "w") as f:
        f.write("2025-11-20,1.5\n")
    p = subprocess.run([P1, "prices", "import", "--db", db, "--kind", "gas", "--gas-day-start",
                        "06:00", pf], capture_output=True, timeout=30)
    c, j = get(port, "/api/prices?from=2025-11-20&to=2025-11-22")
    g = [(p["time"], p["end"]) for p in j.get("gas", [])]
    T.check("p1 prices import --gas-day-start 06:00 does the same",
            g == [("2025-11-20T06:00:00+01:00", "2025-11-21T06:00:00+01:00")], str(g))

    # ---- summary, history and p1 prices agree ---------------------------------------------------
    c, s = get(port, "/api/summary?meter=home&period=day&at=2025-10-01T12:00")
    c2, j = get(port, "/api/history?meter=home&from=2025-10-01&to=2025-10-02&step=15m"
                "&fields=cost_eur")
    tot = sum(Decimal(str(v)) for v in j.get("cost_eur", []) if v is not None)
    ce = s.get("cost_eur") or {}
    T.check("summary cost of 1 Oct == sum of its 15m costs", c == 200 and c2 == 200 and
            ce.get("total") is not None and Decimal(str(ce["total"])) == tot,
            "%s vs %s" % (ce, tot))
    T.check("gas without a price that day: summary partial with the m3 named",
            ce.get("partial") is True and ce.get("unpriced_gas_m3", 0) > 0 and
            ce.get("unpriced_kwh") == 0, str(ce))
    p = subprocess.run([P1, "prices", "list", "--db", db, "--from", "2025-10-01", "--to",
                        "2025-10-02"], capture_output=True, timeout=30)
    rows = [r for r in p.stdout.decode().splitlines() if r.startswith("power,")]
    T.check("p1 prices list shows the 96 quarter-hour prices", p.returncode == 0 and
            len(rows) == 96 and ",-0.050000," in rows[2], p.stdout.decode()[:300])


if __name__ == "__main__":
    main()
