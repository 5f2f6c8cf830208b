#!/usr/bin/env python3
"""test_store_import.py: `p1 import` (resumable, no duplicates, refuses non-telegrams),
`p1 export` (exact sums, CSV and JSON), `p1 backup` while p1d serves the history alone."""
import json
import os
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, P1D, tmpdir  # noqa: E402
from store_helpers import require_p1, export_rows, integrity, p1, raw_count  # noqa: E402

START = "2024-03-30T22:00:00Z"  # crosses the spring DST switch of 2024-03-31


def kwh(s):
    return round(float(s) * 1000) if s else 0


def main():
    c = Checks("test_store_import")
    require_p1(c)
    with tmpdir() as tmp:
        db = os.path.join(tmp, "h.db")
        cap = os.path.join(tmp, "cap.txt")
        code, out, err = p1(["sim", "--start", START, "--interval", "5", "--count", "6000"])
        c.check("p1 sim wrote a capture", code == 0 and len(out) > 100000, err)
        lines = out.encode()
        # the first 5000 telegrams; the file grows to 6000 later
        cut = 0
        for _ in range(5000):
            cut = lines.index(b"/", cut + 1) if cut or lines[0:1] != b"/" else lines.index(b"/", 1)
        with open(cap, "wb") as f:
            f.write(lines[:cut])

        code, out, err = p1(["import", "--db", db, "--meter", "home", cap])
        c.check("import exits 0", code == 0, err)
        c.check("import stores every telegram", raw_count(db) == 5000, raw_count(db))
        code, out, err = p1(["import", "--db", db, "--meter", "home", cap])
        c.check("second import exits 0", code == 0, err)
        c.check("second import adds nothing", raw_count(db) == 5000, raw_count(db))
        c.check("second import says so", "already imported" in err, err)
        renamed = os.path.join(tmp, "renamed.txt")
        shutil.copy(cap, renamed)
        code, out, err = p1(["import", "--db", db, renamed])
        c.check("a renamed copy adds nothing", code == 0 and raw_count(db) == 5000, err)

        with open(cap, "wb") as f:  # the capture grew: the import resumes where it stopped
            f.write(lines)
        code, out, err = p1(["import", "--db", db, cap])
        c.check("resumed import adds only the new telegrams", code == 0 and raw_count(db) == 6000,
                "%s %s" % (raw_count(db), err))
        con = sqlite3.connect(db)
        offset = con.execute("SELECT offset FROM imports ORDER BY updated DESC").fetchone()[0]
        nimports = con.execute("SELECT count(*) FROM imports").fetchone()[0]
        con.close()
        c.check("the file's offset is remembered", offset == len(lines), offset)

        junk = os.path.join(tmp, "junk.txt")
        with open(junk, "w") as f:
            for i in range(20000):
                f.write("line %d: this is not a telegram / at all (%d)\n" % (i, i * 7))
        code, out, err = p1(["import", "--db", db, junk])
        c.check("non-telegram file: exit 1", code == 1, err)
        c.check("non-telegram file: says so", "no P1 telegram found" in err, err)
        con = sqlite3.connect(db)
        n2 = con.execute("SELECT count(*) FROM imports").fetchone()[0]
        con.close()
        c.check("non-telegram file: nothing stored", raw_count(db) == 6000 and n2 == nimports)
        fresh = os.path.join(tmp, "fresh.db")
        code, out, err = p1(["import", "--db", fresh, junk])
        left = [f for f in os.listdir(tmp) if f.startswith("fresh.db")]
        c.check("non-telegram file into a new database: exit 1, no database left behind",
                code == 1 and left == [], "%d %s" % (code, left))

        # export: raw counters vs steps, every step adds up to the counter difference
        raw = export_rows(db, "raw")
        c.check("export raw: every reading", len(raw) == 6000, len(raw))
        first, last = raw[0], raw[-1]
        want = kwh(last["import_counter_kwh"]) - kwh(first["import_counter_kwh"])
        want_gas = kwh(last["gas_counter_m3"]) - kwh(first["gas_counter_m3"])
        for step in ("1m", "15m", "1h", "1d"):
            rows = export_rows(db, step)
            # the first reading's delta is 0; steps hold (start, end]
            got = sum(kwh(r["import_kwh"]) for r in rows)
            c.check("export %s: import adds up to the counter difference" % step, got == want,
                    "%d != %d" % (got, want))
            gas = sum(kwh(r["gas_m3"]) for r in rows)
            c.check("export %s: gas adds up" % step, gas == want_gas, "%d != %d" % (gas, want_gas))
            c.check("export %s: readings add up" % step, sum(int(r["readings"]) for r in rows) == 6000)
        hours = export_rows(db, "1h", "2024-03-31T00:00:00+01:00", "2024-03-31T05:00:00+02:00")
        c.check("DST: 02:00 local does not exist", [r["time"][11:16] for r in hours] ==
                ["00:00", "01:00", "03:00", "04:00"], [r["time"] for r in hours])
        code, out, err = p1(["export", "--db", db, "--from", "2024-03-31", "--to", "2024-04-01",
                             "--step", "1h", "--format", "json", "--gaps"])
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        c.check("export json: columnar", code == 0 and j.get("step") == "1h" and
                len(j.get("time", [])) == 23 and len(j.get("import_kwh", [])) == 23, out[:300])
        c.check("export json: null for gaps", None in j.get("import_kwh", [0]))
        code, out, err = p1(["export", "--db", db, "--from", "yesterday", "--to", "2024-04-01"])
        c.check("export: bad time is a usage error", code == 2 and "ISO-8601" in err, err)
        code, out, err = p1(["export", "--db", db, "--from", "2024-03-31T02:30", "--to",
                             "2024-04-01"])
        c.check("export: a --from in the spring gap is a usage error saying so",
                code == 2 and "--from: '2024-03-31T02:30' does not exist" in err, err)
        code, out, err = p1(["prices", "list", "--db", db, "--to", "2024-03-31T02:00"])
        c.check("prices list: a --to in the spring gap is a usage error saying so",
                code == 2 and "--to: '2024-03-31T02:00' does not exist" in err, err)
        code, out, err = p1(["export", "--db", db, "--meter", "nope", "--from", "2024-03-31",
                             "--to", "2024-04-01"])
        c.check("export: unknown meter", code == 1 and "no such meter" in err, err)

        # p1d with --db and no source serves the stored history; p1 backup while it runs
        if os.access(P1D, os.X_OK):
            d = Daemon(["--listen", "127.0.0.1:0", "--db", db], tmp)
            try:
                c.check("p1d starts with --db and no source", d.http_port() is not None,
                        d.text()[-400:])
                dest = os.path.join(tmp, "backup.db")
                code, out, err = p1(["backup", "--db", db, dest])
                c.check("backup exits 0", code == 0, err)
                c.check("backup passes integrity_check", os.path.exists(dest) and
                        integrity(dest) == "ok")
                c.check("backup holds every reading", os.path.exists(dest) and
                        raw_count(dest) == 6000)
                code, out, err = p1(["backup", "--db", db, dest])
                c.check("backup refuses to overwrite", code == 1 and "exists" in err, err)
            finally:
                c.check("p1d exits cleanly", d.stop() == 0)
        else:
            print("SKIP: %s not built: p1d and backup checks" % P1D)

        # a database from a newer version is refused, not modified
        newer = os.path.join(tmp, "newer.db")
        shutil.copy(db, newer)
        con = sqlite3.connect(newer)
        con.execute("PRAGMA journal_mode = DELETE")
        con.execute("PRAGMA user_version = 99")
        con.close()
        before = open(newer, "rb").read()
        code, out, err = p1(["import", "--db", newer, cap])
        c.check("newer schema refused", code == 1 and "newer" in err, err)
        c.check("newer schema untouched", open(newer, "rb").read() == before and
                not os.path.exists(newer + "-wal"))
    c.done()


if __name__ == "__main__":
    main()
