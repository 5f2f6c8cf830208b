#!/usr/bin/env python3
"""test_store_fixes.py: one writer per database (a second p1d and `p1 import` are refused while
p1d runs, a kill -9 leaves no stale lock, backup and export still work) and retention of meters
that get no reading in this run, and another program's write lock, held long or for a moment."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import P1D, Checks, Daemon, http, need_p1d, tmpdir  # noqa: E402
from store_helpers import P1, export_rows, integrity, iso_unix, p1  # noqa: E402


def one_query(db, sql):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def meter_names(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return [r[0] for r in con.execute("SELECT name FROM meters")]
    finally:
        con.close()


def run_p1d(args, timeout=8):
    """Runs p1d to completion; (None, stderr) when it was still running after timeout."""
    p = subprocess.Popen([P1D] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = p.communicate(timeout=timeout)[1]
        return p.returncode, err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=10)[1]
        return None, err.decode("utf-8", "replace")


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_one_writer(c, tmp):
    db = os.path.join(tmp, "two.db")
    cap = os.path.join(tmp, "cap.txt")
    code, out, err = p1(["sim", "--count", "120", "--fast", "--seed", "7"])
    c.check("p1 sim wrote a capture", code == 0 and out.startswith("/"), err)
    with open(cap, "w") as f:
        f.write(out)
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "a=sim"], tmp)
    try:
        c.check("the first p1d starts", d.http_port() is not None, d.text()[-500:])
        c.check("the first p1d stores readings",
                wait_for(lambda: os.path.exists(db) and "a" in meter_names(db), 10))
        code, err = run_p1d(["--listen", "127.0.0.1:0", "--db", db, "--source", "a=sim:2"])
        c.check("a second p1d on the same --db exits 1", code == 1, (code, err[-500:]))
        c.check("... saying which file and which pid holds it",
                db in err and "in use by p1d pid %d" % d.proc.pid in err, err[-500:])
        c.check("the first p1d keeps running", d.proc.poll() is None)

        code, out, err = p1(["import", "--db", db, "--meter", "imp", cap])
        c.check("p1 import while p1d runs exits 1", code == 1, (code, err))
        c.check("... saying p1d holds it and to stop it first",
                "in use by p1d pid %d" % d.proc.pid in err and "stop it first" in err, err)
        c.check("... and stores nothing", "imp" not in meter_names(db), meter_names(db))
        # another name for the database: a symlink (the lock file of its real path) or a hard
        # link (a flock on the file itself) is refused the same way
        sym, hard = os.path.join(tmp, "sym.db"), os.path.join(tmp, "hard.db")
        os.symlink(db, sym)
        os.link(db, hard)
        code, out, err = p1(["import", "--db", sym, "--meter", "imp", cap])
        c.check("p1 import by a symlink while p1d runs: refused, naming p1d",
                code == 1 and "in use by p1d pid %d" % d.proc.pid in err, (code, err))
        code, out, err = p1(["import", "--db", hard, "--meter", "imp", cap])
        c.check("p1 import by a hard link while p1d runs: refused",
                code == 1 and "in use by another program" in err, (code, err))
        code, err = run_p1d(["--listen", "127.0.0.1:0", "--db", sym, "--source", "a=sim:2"])
        c.check("a second p1d by a symlink exits 1", code == 1 and "in use by p1d" in err,
                (code, err[-500:]))
        c.check("... and nothing was stored by them", "imp" not in meter_names(db),
                meter_names(db))

        dest = os.path.join(tmp, "backup.db")
        code, out, err = p1(["backup", "--db", db, dest])
        c.check("p1 backup works while p1d runs", code == 0 and os.path.exists(dest), err)
        c.check("... and the copy is sound", os.path.exists(dest) and integrity(dest) == "ok")
        rows = export_rows(db, meter="a")
        c.check("p1 export works while p1d runs", len(rows) > 0, len(rows))
        times = [r["time"] for r in rows]
        c.check("stored times only increase", all(a < b for a, b in zip(times, times[1:])))

        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
    finally:
        d.stop()
    lock = db + ".lock"
    c.check("the lock file names the killed p1d", os.path.exists(lock)
            and open(lock).read().startswith("%d p1d" % d.proc.pid))
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "a=sim"], tmp)
    try:
        c.check("after kill -9 a new p1d starts on the same --db",
                d.http_port() is not None and d.wait_log(r"store: history in") is not None,
                d.text()[-500:])
    finally:
        code = d.stop()
    c.check("... and stops cleanly", code == 0, code)
    code, out, err = p1(["import", "--db", db, "--meter", "imp", cap])
    c.check("p1 import works once p1d has stopped", code == 0 and "imp" in meter_names(db), err)
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "a=sim"], tmp)
    try:
        c.check("p1d starts again after the import", d.http_port() is not None, d.text()[-500:])
    finally:
        d.stop()


def test_retention_idle_meter(c, tmp):
    db = os.path.join(tmp, "ret.db")
    cap = os.path.join(tmp, "home.txt")
    start = int(time.time()) - 4 * 86400
    code, out, err = p1(["sim", "--start", "@%d" % start, "--interval", "10",
                         "--count", "30240", "--fast"])  # 3.5 days
    c.check("p1 sim wrote 3.5 days", code == 0 and len(out) > 1000000, err)
    with open(cap, "w") as f:
        f.write(out)
    code, out, err = p1(["import", "-q", "--db", db, "--meter", "home", cap])
    c.check("import stored them", code == 0, err)
    hours = one_query(db, "SELECT count(*) FROM agg_1h")[0]
    first, last = one_query(db, "SELECT min(ts), max(ts) FROM raw")
    c.check("the raw tier spans 3.5 days", last - first > 3 * 86400, (first, last))
    newest = last + 60
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "other=sim:3",
                "--store-raw-keep", "1h", "--store-minute-keep", "2h"], tmp)
    try:
        c.check("p1d starts", d.http_port() is not None, d.text()[-500:])

        def pruned():
            raw = one_query(db, "SELECT min(ts) FROM raw r JOIN meters m ON r.meter = m.id "
                                "WHERE m.name = 'home'")[0]
            m1 = one_query(db, "SELECT min(ts) FROM agg_1m a JOIN meters m ON a.meter = m.id "
                               "WHERE m.name = 'home'")[0]
            m15 = one_query(db, "SELECT min(ts) FROM agg_15m a JOIN meters m ON a.meter = m.id "
                                "WHERE m.name = 'home'")[0]
            cut = (last - 7200) // 3600 * 3600  # minute tiers: at a whole hour
            return (raw is not None and raw >= newest - 3600 - 180 and m1 is not None
                    and m1 >= cut and m15 is not None and m15 >= cut)
        c.check("raw, 1m and 15m of a meter without a source are cut to their keep",
                wait_for(pruned, 45),
                one_query(db, "SELECT min(ts), max(ts), count(*) FROM raw"))
        c.check("... keeping the newest hour of raw",
                one_query(db, "SELECT max(ts) FROM raw r JOIN meters m ON r.meter = m.id "
                              "WHERE m.name = 'home'")[0] == last)
        c.check("... and every hourly row", one_query(db, "SELECT count(*) FROM agg_1h")[0]
                >= hours, hours)
    finally:
        code = d.stop()
    c.check("p1d stops cleanly", code == 0, code)
    c.check("the database is sound", integrity(db) == "ok")


def prom(port):
    """The p1d_store_* samples of /metrics, name -> number."""
    code, _, body = http(port, "/metrics", timeout=20)
    out = {}
    for line in body.decode().splitlines() if code == 200 else []:
        if line.startswith("p1d_store_"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def storing_daemon(c, tmp, name):
    """p1d on a simulated meter, storing into tmp/name: (db, daemon, port) once it stores."""
    db = os.path.join(tmp, name)
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "a=sim:5"], tmp)
    port = d.http_port()
    c.check("p1d starts", port is not None, d.text()[-500:])
    c.check("p1d stores readings",
            wait_for(lambda: os.path.exists(db) and "a" in meter_names(db), 10))
    return db, d, port


def test_foreign_lock(c, tmp):
    """Another program's write transaction (sqlite3, a database browser) on p1d's database: p1d
    keeps serving while it waits, queues the readings and writes them all once the lock goes."""
    db, d, port = storing_daemon(c, tmp, "lock.db")
    try:
        con = sqlite3.connect(db, isolation_level=None, timeout=0)
        con.execute("BEGIN IMMEDIATE")
        t0 = time.time()
        slowest, health, upload, metrics_locked = 0.0, None, None, {}
        while time.time() < t0 + 12:
            s = time.time()
            code, _, _ = http(port, "/api/v1/data", timeout=20)
            slowest = max(slowest, time.time() - s)
            if health is None and time.time() > t0 + 3:
                health = http(port, "/healthz", timeout=20)
                metrics_locked = prom(port)
                s = time.time()
                csv_body = b"time,price\n2030-01-01T00:00:00Z,0.25\n2030-01-01T01:00:00Z,0.26\n"
                upload = http(port, "/api/prices?kind=power", "PUT", csv_body,
                              {"Content-Type": "text/csv"}, timeout=20) + (time.time() - s,)
            time.sleep(0.1)
        t1 = time.time()
        # Without the loop's short wait, each commit held it for SQLite's 5 s busy timeout.
        c.check("while the lock is held, p1d answers within 2.5 s every time",
                slowest < 2.5, slowest)
        c.check("/healthz says 503 naming the lock another program holds",
                health is not None and health[0] == 503 and
                b"another program holds the database's write lock" in health[2],
                health and health[2][:300])
        c.check("a price upload answers 503 store_busy at once, saying to try again",
                upload is not None and upload[0] == 503 and b'"store_busy"' in upload[2] and
                b"try again" in upload[2] and upload[3] < 2.5,
                upload and (upload[0], upload[2][:300], upload[3]))
        c.check("/metrics: p1d_store_healthy 0, readings queued, failed commits counted",
                metrics_locked.get("p1d_store_healthy") == 0
                and metrics_locked.get("p1d_store_queued_readings", 0) > 0
                and metrics_locked.get("p1d_store_commit_failures_total", 0) >= 1,
                metrics_locked)
        c.check("the log says it once, naming the lock",
                d.text().count("another program holds the database's write lock") == 1,
                d.text()[-800:])
        con.execute("ROLLBACK")
        con.close()
        c.check("once the lock goes: 'writing again', nothing dropped",
                d.wait_log(r"store: writing again; 0 readings were dropped", 15),
                d.text()[-800:])
        code, _, body = http(port, "/healthz")
        c.check("/healthz is 200 again", code == 200, body[:300])
        m = prom(port)
        c.check("/metrics: healthy again, nothing queued or dropped, the readings committed",
                m.get("p1d_store_healthy") == 1 and m.get("p1d_store_queued_readings") == 0
                and m.get("p1d_store_readings_dropped_total") == 0
                and m.get("p1d_store_readings_committed_total", 0) >= 12
                and 0 <= m.get("p1d_store_last_commit_seconds", -1) < 1, m)
    finally:
        code = d.stop()
    c.check("p1d stops cleanly", code == 0, code)
    times = [iso_unix(r["time"]) for r in export_rows(db, meter="a")]
    held = [t for t in times if t0 + 1 <= t <= t1 - 1]
    c.check("every reading of the locked seconds is stored (one per second)",
            len(held) >= int(t1 - t0) - 4, (len(held), t1 - t0))
    c.check("the database is sound", integrity(db) == "ok")


def test_brief_lock(c, tmp):
    """A lock another program holds for a moment: p1d is writing again within about a second of
    its release, not at the next 5 s retry."""
    db, d, port = storing_daemon(c, tmp, "brief.db")
    try:
        con = sqlite3.connect(db, isolation_level=None, timeout=0)
        con.execute("BEGIN IMMEDIATE")
        seen = wait_for(lambda: http(port, "/healthz")[0] == 503, 5, 0.05)
        con.execute("ROLLBACK")
        con.close()
        released = time.time()
        c.check("the held lock shows on /healthz", seen, d.text()[-500:])
        back = wait_for(lambda: http(port, "/healthz")[0] == 200, 10, 0.05)
        took = time.time() - released
        # The first retry comes 1 s after the failed commit (it was 5 s).
        c.check("/healthz is 200 within 2 s of the lock's release", back and took < 2.0,
                (back, round(took, 2)))
        c.check("'writing again', nothing dropped",
                d.wait_log(r"store: writing again; 0 readings were dropped", 5), d.text()[-800:])
    finally:
        code = d.stop()
    c.check("p1d stops cleanly", code == 0, code)


def test_fast_replay(c, tmp):
    """A capture replayed fast (file:, pace=fast) delivers thousands of readings a second; the
    store queues 3,600 per meter between its once-a-second commits, and pushed the oldest out:
    of 12,000 only 3,600 were stored (the rest counted as dropped). Now the store commits at once
    from 2,000 queued and the replay waits while that many wait, also while another program holds
    the database's write lock: every reading is stored, none dropped."""
    db = os.path.join(tmp, "replay.db")
    cap = os.path.join(tmp, "replay.txt")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 4 * 3600))
    code, out, err = p1(["sim", "--count", "12000", "--fast", "--seed", "3", "--start", start])
    c.check("replay: p1 sim wrote 12,000 telegrams", code == 0 and out.count("\n!") == 12000,
            err)
    with open(cap, "w") as f:
        f.write(out)
    # the database exists and is locked by another program before the replay starts
    d0 = Daemon(["--listen", "127.0.0.1:0", "--db", db], tmp)
    c.check("replay: an empty database made", d0.http_port() is not None, d0.text()[-300:])
    d0.stop()
    con = sqlite3.connect(db, timeout=10, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source",
                "r=file:%s:clock=meter" % cap], tmp)
    try:
        port = d.http_port()
        time.sleep(2)
        locked = prom(port)
        c.check("replay: while the lock is held, the replay waits (nothing dropped, at most "
                "3,600 queued)", locked.get("p1d_store_readings_dropped_total") == 0 and
                "end of" not in d.text(), (locked, d.text()[-300:]))
        con.execute("ROLLBACK")
        con.close()
        c.check("replay: the file is read to its end once the lock is gone",
                d.wait_log(r"r: end of .*: 12000 telegrams, 0 rejected", timeout=60) is not None,
                d.text()[-500:])
        done = wait_for(lambda: prom(port).get("p1d_store_readings_committed_total") == 12000,
                        20)
        m = prom(port)
        c.check("replay: all 12,000 readings stored, none dropped",
                done and m.get("p1d_store_readings_dropped_total") == 0, m)
    finally:
        d.stop()
    c.check("replay: 12,000 raw readings in the database",
            one_query(db, "SELECT count(*) FROM raw")[0] > 0 and
            iso_rows(db) == 12000, iso_rows(db))


def iso_rows(db):
    """Readings in the raw tier, from its blocks' counts."""
    try:
        return one_query(db, "SELECT sum(n) FROM raw")[0]
    except sqlite3.Error as e:
        return str(e)


def main():
    c = Checks("test_store_fixes")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()
    with tmpdir() as tmp:
        test_one_writer(c, tmp)
        test_retention_idle_meter(c, tmp)
        test_foreign_lock(c, tmp)
        test_brief_lock(c, tmp)
        test_fast_replay(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
