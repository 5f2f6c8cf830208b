#!/usr/bin/env python3
"""bench_history.py: how long a light request (GET /api/v1/data) waits while a burst of heavy
history answers is built: a day of 1-second readings imported, then N raw-day CSVs asked at
once while /api/v1/data is asked back to back until the last is answered. Prints
    history_burst=N history_single_s=.. history_burst_s=.. light_requests=N light_worst_s=..
Usage: bench/bench_history.py [--burst 30] [--p1d build/p1d] [--db DAY.db]
       (--db: a database with meter home's readings of 2025-08-25 instead of importing them)."""
import argparse
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

HEAVY = ("/api/history?meter=home&step=raw&from=2025-08-25T00:00&to=2025-08-26T00:00"
         "&format=csv")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--burst", type=int, default=30)
    ap.add_argument("--p1d", default=os.path.join(ROOT, "build", "p1d"))
    ap.add_argument("--db")
    a = ap.parse_args()
    os.environ["P1D"] = a.p1d  # read by daemon_helpers at import
    from daemon_helpers import Daemon, burst, http, tmpdir
    from store_helpers import import_sim
    with tmpdir() as tmp:
        db = os.path.join(tmp, "day.db")
        if a.db:
            shutil.copy(a.db, db)
        else:
            code, err = import_sim(db, "home", "2025-08-25T00:00", 1, 86400)
            if code != 0:
                sys.exit("bench_history: p1 import failed: " + err[-300:])
        d = Daemon(["--db", db, "--listen", "127.0.0.1:0", "--source", "live=sim"], tmp)
        try:
            port = d.http_port()
            end = time.time() + 15
            while http(port, "/api/v1/data")[0] != 200 and time.time() < end:
                time.sleep(0.1)
            t0 = time.time()
            code, _, one = http(port, HEAVY, timeout=120)
            single = time.time() - t0
            if code != 200:
                sys.exit("bench_history: the raw day answered %d" % code)
            t0, threads, results = burst(port, HEAVY, a.burst)
            worst, n = 0.0, 0
            while any(t.is_alive() for t in threads):
                t1 = time.time()
                http(port, "/api/v1/data", timeout=120)
                worst = max(worst, time.time() - t1)
                n += 1
                time.sleep(0.01)
            for t in threads:
                t.join()
            whole = sum(r[1].endswith(b"200 OK") and r[2] == one for r in results)
            last = max(r[0] for r in results)
        finally:
            d.stop(30)
    print("one raw day as CSV: %.3f s; %d at once: all answered in %.2f s (%d whole); "
          "%d light requests meanwhile, the slowest %.3f s" % (single, a.burst, last, whole, n,
                                                              worst))
    print("history_burst=%d history_single_s=%.3f history_burst_s=%.2f light_requests=%d "
          "light_worst_s=%.3f" % (a.burst, single, last, n, worst))


if __name__ == "__main__":
    main()
