#!/usr/bin/env python3
"""test_http_heavy.py: history answers are built whole (a day of raw readings takes a few tenths
of a second, seconds on a Raspberry Pi). Built on p1d's one loop, many asked at once (a Grafana
board with many panels) were all answered in one run of the HTTP server, and for their whole sum
no meter input, no other request and no store commit was served: 30 at once stopped a serial
meter's input for 7.4 s and lost 7 of its telegrams to the UART's buffer. Now they are built on
the worker thread (test_history_worker.py), so a light request sent after a burst of heavy ones
is answered before them, every heavy one still gets its whole answer, and SIGTERM while some
wait ends p1d cleanly (they get 503)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, burst, http, need_p1d, tmpdir  # noqa: E402
from store_helpers import import_sim  # noqa: E402

T = Checks("test_http_heavy")
need_p1d(T)

N = 12
HEAVY = ("/api/history?meter=home&step=raw&from=2025-08-25T00:00&to=2025-08-26T00:00"
         "&format=csv")


def main():
    with tmpdir() as tmp:
        db = os.path.join(tmp, "day.db")
        code, err = import_sim(db, "home", "2025-08-25T00:00", 1, 86400)
        T.check("a day of 1-second readings imported", code == 0, err[-300:])
        d = Daemon(["--db", db, "--listen", "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            T.check("p1d starts", port is not None, d.text()[-500:])
            t0 = time.time()
            code, _, one = http(port, HEAVY, timeout=60)
            single = time.time() - t0
            T.check("one raw day as CSV: 200, 86,400 rows", code == 200 and
                    one.count(b"\n") == 86401, (code, one.count(b"\n")))

            t0, threads, results = burst(port, HEAVY, N)
            time.sleep(0.05)  # the light request comes after the burst
            code, _, _ = http(port, "/api/meters", timeout=120)
            light = time.time() - t0
            for t in threads:
                t.join(300)
            last = max(r[0] for r in results) if results else 0
            T.check("every heavy request of the burst gets its whole answer",
                    len(results) == N and all(r[1].endswith(b"200 OK") and r[2] == one
                                              for r in results),
                    [(r[1], len(r[2])) for r in results])
            # All in one run, the light request waited for all N (light >= last); now it waits
            # for one or two of them. Compared with the burst's own time: no fixed seconds.
            T.check("a light request after the burst is answered between the heavy ones "
                    "(%.2f s; the burst took %.2f s, one heavy %.2f s)" % (light, last, single),
                    code == 200 and light < last / 2, (code, light, last))

            # SIGTERM while most of a burst waits: p1d ends at once and cleanly, the waiting
            # ones answered 503 (or their connection closed), none left hanging.
            t0, threads, results = burst(port, HEAVY, N)
            time.sleep(0.1)
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
            ended = time.time() - t0
            for t in threads:
                t.join(60)
            T.check("SIGTERM during a burst: p1d exits 0 (%.2f s)" % ended,
                    d.proc.returncode == 0, (d.proc.returncode, d.text()[-800:]))
            T.check("... every connection ended", len(results) == N, len(results))
            statuses = sorted(set(r[1] for r in results))
            T.check("... with an answer (one being sent may be cut off by the exit) or closed",
                    all(r[1].endswith(b"200 OK") or b" 503 " in r[1] or r[1] == b""
                        for r in results), statuses)
            T.check("... the ones still waiting answered 503 'p1d is shutting down'",
                    any(b" 503 " in r[1] and b"shutting down" in r[2] for r in results),
                    [(r[1], r[2][:80]) for r in results])
        finally:
            code = d.stop()
        T.check("p1d stopped cleanly", code == 0, code)
    T.done()


if __name__ == "__main__":
    main()
