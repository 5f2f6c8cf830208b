#!/usr/bin/env python3
"""test_store_crash.py: kill -9 p1d again and again while telegrams flow: the database always
opens clean and at most the readings of the last seconds are missing."""
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, tmpdir  # noqa: E402
from store_helpers import export_rows, integrity, iso_unix  # noqa: E402

ROUNDS = 10
MAX_MISSING_S = 3  # commit every second + one telegram interval + whole-second rounding


def main():
    c = Checks("test_store_crash")
    need_p1d(c)
    rnd = random.Random(4)
    with tmpdir() as tmp:
        db = os.path.join(tmp, "p1d.db")
        prev_count = 0
        for i in range(ROUNDS):
            d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db", db], tmp)
            try:
                port = d.http_port()
                if not c.check("round %d: p1d started" % i, port is not None, d.text()[-500:]):
                    break
                got = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 2, timeout=10)
                c.check("round %d: telegrams flow" % i, got is not None)
                time.sleep(rnd.uniform(1.5, 3.0))
                killed_at = time.time()
                d.proc.send_signal(signal.SIGKILL)
                d.proc.wait()
            finally:
                d.stop()
            c.check("round %d: integrity_check ok" % i, integrity(db) == "ok")
            rows = export_rows(db)
            c.check("round %d: readings stored" % i, len(rows) > prev_count,
                    "%d <= %d" % (len(rows), prev_count))
            if rows:
                last = iso_unix(rows[-1]["time"])
                c.check("round %d: at most the last %d s missing" % (i, MAX_MISSING_S),
                        last >= int(killed_at) - MAX_MISSING_S,
                        "last stored %d, killed at %.1f" % (last, killed_at))
                times = [iso_unix(r["time"]) for r in rows]
                c.check("round %d: strictly increasing, no duplicates" % i,
                        all(b > a for a, b in zip(times, times[1:])))
            prev_count = len(rows)
    c.done()


if __name__ == "__main__":
    main()
