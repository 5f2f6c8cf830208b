"""store_helpers.py: shared pieces of the test_store_*.py suites: p1 export parsing, raw times."""
import csv
import io
import os
import subprocess
import sqlite3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
P1 = os.path.abspath(os.environ.get("P1", os.path.join(ROOT, "build", "p1")))


def require_p1(c):
    """Ends suite c, skipped, when build/p1 is not built."""
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()


def p1(args, timeout=120, stdin=None):
    """Runs build/p1; returns (code, stdout, stderr)."""
    p = subprocess.run([P1] + args, capture_output=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def export_rows(db, step="raw", frm="2000-01-01T00:00:00Z", to="2100-01-01T00:00:00Z",
                meter=None):
    """Rows of `p1 export --format csv` as dicts (empty list on failure)."""
    args = ["export", "--db", db, "--from", frm, "--to", to, "--step", step]
    if meter:
        args += ["--meter", meter]
    code, out, err = p1(args)
    if code != 0:
        print("p1 export failed: %s" % err.strip())
        return []
    return list(csv.DictReader(io.StringIO(out)))


def import_sim(db, meter, start, interval, count, timeout=300):
    """`p1 sim --start START --interval S --count N --fast | p1 import` into db as meter: the
    simulated household's readings; returns p1 import's (code, stderr)."""
    sim = subprocess.Popen([P1, "sim", "--start", start, "--interval", str(interval), "--count",
                            str(count), "--fast"], stdout=subprocess.PIPE)
    imp = subprocess.run([P1, "import", "-q", "--db", db, "--meter", meter, "-"],
                         stdin=sim.stdout, capture_output=True, timeout=timeout)
    sim.stdout.close()
    sim.wait(60)
    return imp.returncode, imp.stderr.decode("utf-8", "replace")


def iso_unix(s):
    """Unix seconds of "2024-01-01T12:00:00+01:00"."""
    import datetime
    return int(datetime.datetime.fromisoformat(s).timestamp())


def integrity(db):
    """PRAGMA integrity_check through Python's sqlite3 (a second, independent reader)."""
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def raw_count(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT coalesce(sum(n), 0) FROM raw").fetchone()[0]
    finally:
        con.close()
