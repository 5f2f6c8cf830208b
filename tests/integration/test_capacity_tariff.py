#!/usr/bin/env python3
"""test_capacity_tariff.py: the Belgian capacity tariff ([prices] capacity_per_kw_year) in the
month and year summaries: each billed month costs price / 12 x the mean of its own and the 11
months before's quarter-hour peaks, each counted at least 2.5 kW, over the months with history
(a partial year uses fewer); the key is validated like the other prices and listed."""
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, need_p1d, run, start_replay, telegram,  # noqa: E402
                            tmpdir)
from store_helpers import P1  # noqa: E402

T = Checks("test_capacity_tariff")
need_p1d(T)

ZONE = zoneinfo.ZoneInfo("Europe/Brussels")

# month -> Wh imported in one quarter-hour of that month (peak kW = Wh x 4 / 1000); 2025-01 and
# 2025-05 have no readings at all, 2024-06 is 13 months before 2025-06 (outside its window).
PEAKS = [((2024, 6), 2500),   # 10 kW
         ((2025, 2), 500),    # 2 kW: counted as 2.5
         ((2025, 3), 1000),   # 4 kW
         ((2025, 4), 750),    # 3 kW
         ((2025, 6), 1250)]   # 5 kW


def capture(path):
    """Three readings per month, 30 s before, 10 s and 14 min 50 s into 10 March's (etc.) 12:00
    quarter-hour: the import moves by the month's Wh in the quarter and never between months.
    The quarter counts because readings bound it (within the minute before its start and its
    end: a quarter after a gap holds the whole gap's energy and has no demand)."""
    wh = 0
    with open(path, "wb") as f:
        for (y, m), x in PEAKS:
            t0 = int(datetime.datetime(y, m, 10, 12, 0, tzinfo=ZONE).timestamp())
            f.write(telegram(wh, when=t0 - 30))
            f.write(telegram(wh, when=t0 + 10))
            wh += x
            f.write(telegram(wh, when=t0 + 890))


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, json.loads(r.read())


def start(tmp, name, prices, what):
    """p1d with [prices] `prices` over the capture, once the store has it: (daemon, port or
    None, checked as `what`)."""
    cap = os.path.join(tmp, name + ".txt")
    capture(cap)
    d, port, _ = start_replay(T, tmp, name, "[prices]\n" + prices, cap, what)
    return d, port


def test_summaries(tmp):
    d, port = start(tmp, "cap", "import = 0.2\ncapacity_per_kw_year = 48\n",
                    "p1d starts with capacity_per_kw_year")
    try:
        if port is None:
            return
        st, s = get_json(port, "/api/summary?period=month&at=2025-06-15")
        ct = s.get("capacity_tariff") or {}
        months = ct.get("months") or [{}]
        # window 2024-07 .. 2025-06: Feb 2.5 (2 kW floored), Mar 4, Apr 3, Jun 5 = 14.5 / 4
        T.check("June: 4 months of history, mean (2.5 + 4 + 3 + 5) / 4 = 3.625 kW",
                st == 200 and months[0].get("month") == "2025-06" and
                months[0].get("months_used") == 4 and months[0].get("average_kw") == 3.625 and
                months[0].get("price_per_kw_year") == 48 and months[0].get("complete") is True, s)
        T.check("June: 48 / 12 x 3.625 = 14.5 EUR, in cost_eur.capacity and the total "
                "(+ 1.25 kWh x 0.2)",
                ct.get("eur") == 14.5 and months[0].get("eur") == 14.5 and
                (s.get("cost_eur") or {}).get("capacity") == 14.5 and
                (s.get("cost_eur") or {}).get("total") == 14.75, s)
        peaks = ct.get("peaks") or []
        T.check("June: the 12 months of the window, without history as null, 2 kW counted 2.5",
                [p.get("month") for p in peaks] == ["2024-%02d" % m for m in range(7, 13)] +
                ["2025-%02d" % m for m in range(1, 7)] and
                [p.get("kw") for p in peaks] == [None] * 7 + [2, 4, 3, None, 5] and
                [p.get("counted_kw") for p in peaks] == [None] * 7 + [2.5, 4, 3, None, 5] and
                peaks[7].get("time") == "2025-02-10T12:00:00+01:00", peaks)
        st, s = get_json(port, "/api/summary?period=month&at=2025-05-15")
        T.check("May (no readings): not billed", st == 200 and s.get("capacity_tariff") is None
                and s.get("cost_eur") is None, s)
        st, s = get_json(port, "/api/summary?period=day&at=2025-06-10")
        T.check("a day summary carries no capacity charge (billed per month)",
                st == 200 and s.get("capacity_tariff") is None and
                (s.get("cost_eur") or {}).get("capacity") is None and
                (s.get("cost_eur") or {}).get("total") == 0.25, s)
        st, s = get_json(port, "/api/summary?period=year&at=2025-06-15")
        ct = s.get("capacity_tariff") or {}
        got = [(m.get("month"), m.get("months_used"), m.get("average_kw"), m.get("eur"))
               for m in ct.get("months") or []]
        # Feb: 10 (2024-06) and 2.5 -> 6.25 kW, 25 EUR; Mar: +4 -> 5.5, 22; Apr: +3 -> 4.875,
        # 19.5; Jun: 2024-06 left the window -> 3.625, 14.5
        T.check("year: the months with readings billed, each on its own 12-month window",
                got == [("2025-02", 2, 6.25, 25), ("2025-03", 3, 5.5, 22),
                        ("2025-04", 4, 4.875, 19.5), ("2025-06", 4, 3.625, 14.5)], got)
        T.check("year: 81 EUR of capacity in the total (+ 3.5 kWh x 0.2)",
                ct.get("eur") == 81 and (s.get("cost_eur") or {}).get("capacity") == 81 and
                (s.get("cost_eur") or {}).get("total") == 81.7 and
                len(ct.get("peaks") or []) == 23, s)
        st, s = get_json(port, "/api/summary?period=month&at=2024-06-15")
        ct = s.get("capacity_tariff") or {}
        T.check("a first month alone: 10 kW, 40 EUR",
                (ct.get("months") or [{}])[0].get("months_used") == 1 and ct.get("eur") == 40, s)
        st, p = get_json(port, "/api/prices?from=2025-06-01&to=2025-06-02")
        T.check("/api/prices lists capacity_per_kw_year",
                (p.get("fixed") or [{}])[0].get("capacity_per_kw_year") == 48, p)
    finally:
        d.stop()
    r = subprocess.run([P1, "prices", "list", "--db", os.path.join(tmp, "cap.db")],
                       capture_output=True, timeout=30)
    lines = r.stdout.decode().splitlines()
    T.check("p1 prices list: a capacity_per_kw_year column",
            r.returncode == 0 and lines and "capacity_per_kw_year" in lines[0].split(",") and
            lines[1].split(",")[lines[0].split(",").index("capacity_per_kw_year")] == "48.000000",
            lines)


def test_without_key(tmp):
    """Without the key nothing changes: no capacity_tariff, cost_eur.capacity null."""
    d, port = start(tmp, "nocap", "import = 0.2\n", "p1d starts without capacity_per_kw_year")
    try:
        if port is None:
            return
        st, s = get_json(port, "/api/summary?period=month&at=2025-06-15")
        T.check("no key: capacity_tariff null, capacity null, total the energy only",
                st == 200 and "capacity_tariff" in s and s["capacity_tariff"] is None and
                (s.get("cost_eur") or {}).get("capacity", 0) is None and
                (s.get("cost_eur") or {}).get("total") == 0.25, s)
    finally:
        d.stop()


def test_old_database(tmp):
    """A database whose price table predates the capacity column gets it at start."""
    db = os.path.join(tmp, "old.db")
    conf = os.path.join(tmp, "old.conf")
    with open(conf, "w") as f:
        f.write("[prices]\nimport = 0.3\nvalid_to = 2025-01-01\n")
    d = Daemon(["--config", conf, "--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        d.http_port()
    finally:
        d.stop()
    con = sqlite3.connect(db)
    try:
        con.execute("ALTER TABLE price_fixed DROP COLUMN capacity")
        con.commit()
    except sqlite3.OperationalError as e:
        T.check("p1d's price table has a capacity column", False, e)
        return
    finally:
        con.close()
    conf = os.path.join(tmp, "old.conf")
    with open(conf, "w") as f:
        f.write("[prices]\nimport = 0.2\ncapacity_per_kw_year = 41.25\nvalid_from = 2025-01-01\n")
    d = Daemon(["--config", conf, "--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        T.check("p1d starts on a database from before the capacity column", port is not None,
                d.text())
        if port is None:
            return
        st, p = get_json(port, "/api/prices?from=2024-12-31&to=2025-01-02")
        T.check("... the old period has no capacity price, the new one has",
                [f.get("capacity_per_kw_year") for f in p.get("fixed") or []] == [None, 41.25], p)
    finally:
        d.stop()


def test_config(tmp):
    for value, want in (("-1", "between 0 and 1000"), ("abc", "expected a price in EUR"),
                        ("1001", "between 0 and 1000"), ("48,5", "capacity_per_kw_year")):
        p = os.path.join(tmp, "bad.conf")
        with open(p, "w") as f:
            f.write("[source a]\nspec = sim\n[prices]\ncapacity_per_kw_year = %s\n" % value)
        code, out, err = run(["--config", p, "--check-config"])
        T.check("capacity_per_kw_year = %s: exit 2 naming the file, line and why" % value,
                code == 2 and "bad.conf:4" in err and want in err, (code, err))
    with open(p, "w") as f:
        f.write("[source a]\nspec = sim\n[prices]\ncapacity_per_kw_year = 48.53\n")
    code, out, err = run(["--config", p, "--check-config"])
    T.check("capacity_per_kw_year = 48.53 is fine", code == 0, err)
    code, out, err = run(["--print-config-doc"])
    T.check("--print-config-doc documents capacity_per_kw_year",
            code == 0 and "capacity_per_kw_year" in out, err)


def main():
    with tmpdir() as tmp:
        test_config(tmp)
        test_summaries(tmp)
        test_without_key(tmp)
        test_old_database(tmp)
    T.done()


if __name__ == "__main__":
    main()
