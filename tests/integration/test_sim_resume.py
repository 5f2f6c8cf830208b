#!/usr/bin/env python3
"""test_sim_resume.py: a simulated meter with a history store never steps back. Restarting p1d on
the same database, and a reload that restarts the sim source, continue from the registers the
meter showed last: no register goes down and the store records no new segment."""
import json
import os
import signal
import sqlite3
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, tmpdir, write_conf  # noqa: E402
from store_helpers import export_rows, require_p1  # noqa: E402

T = Checks("test_sim_resume")
need_p1d(T)
require_p1(T)

# One telegram per simulated minute, 50 a second: a run of a second or two covers an hour or
# more of simulated use, far above the average-rate growth sim_init adds for the seconds the
# restart takes. clock=system stores one reading per second of ours.
REGISTERS = ["import_t1_counter_kwh", "import_t2_counter_kwh", "export_t1_counter_kwh",
             "export_t2_counter_kwh", "gas_counter_m3"]


def conf_text(db, speedup):
    return ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n[source demo]\nspec = sim:7\n"
            "interval = 60s\nspeedup = %d\nclock = system\n" % (db, speedup))


def now_registers(p):
    """The registers of the meter's latest reading (/api/meters/demo/now), or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/meters/demo/now" % p.port,
                                    timeout=5) as r:
            rd = json.loads(r.read())["reading"]
    except Exception:
        return None
    return {"import_t1_counter_kwh": rd["import_tariff_kwh"]["1"],
            "import_t2_counter_kwh": rd["import_tariff_kwh"]["2"],
            "export_t1_counter_kwh": rd["export_tariff_kwh"]["1"],
            "export_t2_counter_kwh": rd["export_tariff_kwh"]["2"],
            "gas_counter_m3": rd.get("gas_m3"),
            "sags": [ph["sags"] for ph in rd["phases"]]}


def lower(after, before):
    """The registers of after that are lower than before's (sags per phase), or ["?"] when
    either is unknown."""
    if not after or not before:
        return ["?"]
    low = [k for k in REGISTERS if after.get(k) is not None and before.get(k) is not None and
           after[k] < before[k]]
    if after.get("sags") and before.get("sags"):
        low += ["sags L%d" % (i + 1) for i, (a, b) in enumerate(zip(after["sags"], before["sags"]))
                if a < b]
    return low


def stored(db):
    """The registers of every stored reading, oldest first (p1 export, raw)."""
    rows = export_rows(db)
    return [{k: float(r[k]) for k in REGISTERS if r.get(k)} for r in rows]


with tmpdir() as d:
    db = os.path.join(d, "p1d.db")
    conf = os.path.join(d, "p1d.conf")
    write_conf(conf, conf_text(db, 3000))

    # Run 1: a simulated hour or two, then a clean stop (the queue is committed).
    p = Daemon(["--config", conf], d)
    try:
        p.http_port()
        T.check("run 1: the simulator runs",
                p.wait_meter("demo", lambda m: m.get("telegrams", 0) >= 75, 10) is not None,
                str(p.meter("demo")))
        T.check("run 1: SIGTERM exits 0", p.stop() == 0, p.text()[-2000:])
    finally:
        p.stop()
    first = stored(db)
    T.check("run 1 stored readings", len(first) >= 1, str(first))

    # Run 2 on the same database continues from the newest stored registers.
    p = Daemon(["--config", conf], d)
    try:
        p.http_port()
        m = p.wait_meter("demo", lambda m: m.get("telegrams", 0) >= 1, 10)
        start = now_registers(p)
        T.check("run 2 starts", m is not None and start is not None, p.text()[-2000:])
        low = lower(start, first[-1] if first else None)
        T.check("run 2 starts at or above the newest stored registers", not low,
                "%s: stored %s, now %s" % (low, first[-1] if first else None, start))
        T.check("run 2 says it continues",
                p.wait_log(r"demo: simulated meter \(seed 7, .*\), continuing from the registers it "
                           r"showed last", 2),
                p.text()[-2000:])
        p.wait_meter("demo", lambda m: m.get("telegrams", 0) >= 75, 10)

        # A reload that restarts the source (a new speedup) continues too.
        before = now_registers(p)
        write_conf(conf, conf_text(db, 2000))
        p.signal(signal.SIGHUP)
        T.check("reload restarts the source", p.wait_log(r"demo: source changed; restarting it", 5),
                p.text()[-2000:])
        n = p.meter("demo").get("telegrams", 0)  # the new source's first telegram comes after
        p.wait_meter("demo", lambda m: m.get("telegrams", 0) >= n + 1, 5)
        after = now_registers(p)
        low = lower(after, before)
        T.check("after the reload no register is below what the meter showed before it", not low,
                "%s: before %s, after %s" % (low, before, after))
        n = p.meter("demo").get("telegrams", 0)
        p.wait_meter("demo", lambda m: m.get("telegrams", 0) >= n + 60, 10)
        T.check("run 2: SIGTERM exits 0", p.stop() == 0, p.text()[-2000:])
    finally:
        p.stop()

    rows = stored(db)
    T.check("both runs stored readings", len(rows) >= len(first) + 2, "%d %d" % (len(first), len(rows)))
    down = [(i, k, rows[i - 1][k], rows[i][k]) for i in range(1, len(rows)) for k in REGISTERS
            if k in rows[i] and k in rows[i - 1] and rows[i][k] < rows[i - 1][k]]
    T.check("no stored register went down", not down, str(down[:5]))
    with sqlite3.connect(db) as c:
        segs = c.execute("SELECT ts, kind, reason FROM segments").fetchall()
    T.check("no new segment was recorded", not segs, str(segs))

T.done()
