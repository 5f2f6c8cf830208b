#!/usr/bin/env python3
"""test_cli_fixes.py: `p1` commands that said all was well when it was not, or took an option and
did nothing with it: p1 bench of a FILE in which nothing decodes, p1 prices import --from/--to,
p1 prices list --kind, imports into an in-memory database, and p1 prices import whose summary
cannot be written."""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, crc16, tmpdir  # noqa: E402
from store_helpers import P1, require_p1, p1  # noqa: E402

HEADER = b"/ISk5\\2MT382-1000\r\n\r\n"


def telegram(body, crc=None):
    """A telegram of one header and body, with its CRC (crc: another one, a wrong one)."""
    t = HEADER + body + b"!"
    return t + b"%04X\r\n" % (crc16(t) if crc is None else crc)


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_bench_nothing_decoded(c, tmp):
    """p1 bench of a FILE whose every telegram is rejected measured the rejections and exited
    0; it says that nothing decoded, naming the first rejection, and exits 1."""
    good = telegram(b"1-0:1.8.1(000001.000*kWh)\r\n")
    bad = telegram(b"1-0:1.8.1(000001.000*kWh)\r\n", crc=0)
    for name, data, want in (
            ("crc.txt", bad + bad, "all 2 telegrams were rejected, the first at offset %d: "
             "crc_mismatch" % (len(HEADER) + 27)),
            ("value.txt", telegram(b"1-0:1.8.1(00000x.000*kWh)\r\n"),
             "its 1 telegram was rejected, at offset 31: bad_value: 1-0:1.8.1"),
            ("junk.txt", b"hello\n", "no telegram found"),
            ("empty.txt", b"", "no telegram found")):
        path = write(tmp, name, data)
        code, out, err = p1(["bench", "--seconds", "0.05", path])
        c.check("p1 bench %s: exit 1, nothing in it decoded: %s" % (name, want),
                code == 1 and "p1 bench: nothing in %s decoded: " % path in err and want in err
                and out == "", "%d %r %s" % (code, out, err))
    path = write(tmp, "mixed.txt", bad + good)
    code, out, err = p1(["bench", "--seconds", "0.05", path])
    last = out.splitlines()[-1] if out else ""
    c.check("p1 bench of a FILE with one telegram that decodes: exit 0, the machine line last",
            code == 0 and "2 telegrams per pass (1 rejected)" in out and
            last.startswith("telegrams_per_s=") and "allocs_per_telegram=" in last,
            "%d %s %s" % (code, out, err))
    code, out, err = p1(["bench", "--seconds", "0.05", path, path])
    c.check("p1 bench with two FILEs: still a usage error, exit 2", code == 2, "%d %s" % (code, err))


def kinds_and_times(out):
    """(kind, from, price) of each row of `p1 prices list`: import's column, else gas's."""
    rows = [r.split(",") for r in out.splitlines()[1:]]
    return [(r[0], r[1], r[3] or r[9]) for r in rows]


def test_prices_import_range(c, tmp):
    """p1 prices import --from/--to took the range and imported the whole file; it imports the
    prices that lie wholly in [from, to), says how many it skipped and leaves the stored prices
    outside the range as they were."""
    db = os.path.join(tmp, "range.db")
    p1(["prices", "import", "--db", db, write(tmp, "later.csv", b"time,price\n"
                                              b"2025-10-01T03:00,0.99\n")])
    day = write(tmp, "day.csv", b"time,price\n2025-10-01T00:00,0.10\n2025-10-01T01:00,0.11\n"
                b"2025-10-01T02:00,0.12\n2025-10-01T03:00,0.13\n")
    code, out, err = p1(["prices", "import", "--db", db, "--from", "2025-10-01T01:00",
                         "--to=2025-10-01T03:00", day])
    c.check("prices import --from --to: 2 imported, 2 skipped, said so",
            code == 0 and out.startswith("imported 2 power prices from 2025-10-01T01:00:00+02:00 "
                                         "to 2025-10-01T03:00:00+02:00 into ") and
            out.endswith("; skipped 2 outside --from/--to\n"), "%d %r %s" % (code, out, err))
    code, out, err = p1(["prices", "list", "--db", db, "--from", "2025-10-01", "--to",
                         "2025-10-02"])
    got = [(t[11:16], v) for k, t, v in kinds_and_times(out)]
    c.check("... only the range's prices stored, the later price outside it kept",
            got == [("01:00", "0.110000"), ("02:00", "0.120000"), ("03:00", "0.990000")],
            "%d %s %s" % (code, got, err))
    gas = write(tmp, "gas.csv", b"time,price\n2025-09-30T06:00,1.10\n2025-10-01T06:00,1.20\n")
    code, out, err = p1(["prices", "import", "--db", db, "--kind", "gas", "--from", "2025-10-01",
                         gas])
    c.check("prices import --from alone: the gas day that starts before it skipped",
            code == 0 and out.startswith("imported 1 gas price from 2025-10-01T06:00") and
            "skipped 1 outside" in out, "%d %r %s" % (code, out, err))
    code, out, err = p1(["prices", "import", "--db", db, "--to", "2025-09-30", day])
    c.check("prices import of no price in the range: exit 1, nothing imported",
            code == 1 and "all 4 prices lie outside --from/--to; nothing imported" in err and
            out == "", "%d %r %s" % (code, out, err))
    code, out, err = p1(["prices", "import", "--db", db, "--from", "2025-10-02", "--to",
                         "2025-10-01", day])
    c.check("prices import --from after --to: usage error",
            code == 2 and "--from must be before --to" in err, "%d %s" % (code, err))


def test_prices_list_kind(c, tmp):
    """p1 prices list --kind gas listed every kind; it lists the rows of that kind (fixed, power
    or gas), and another kind is a usage error naming those."""
    db = os.path.join(tmp, "kinds.db")
    p1(["prices", "import", "--db", db, write(tmp, "power.csv", b"time,price\n"
                                              b"2025-10-01T00:00,0.10\n2025-10-01T01:00,0.11\n")])
    p1(["prices", "import", "--db", db, "--kind", "gas", write(tmp, "gas.csv", b"time,price\n"
                                                               b"2025-10-01,1.20\n")])
    con = sqlite3.connect(db)  # a fixed period, as p1d records its [prices]
    con.execute("INSERT INTO price_fixed (valid_from, valid_to, import) VALUES "
                "(0, 9223372036854775807, 250000)")
    con.commit()
    con.close()
    rng = ["--from", "2025-10-01", "--to", "2025-10-02"]
    code, out, err = p1(["prices", "list", "--db", db] + rng)
    every = kinds_and_times(out)
    c.check("prices list: every kind", code == 0 and [k for k, t, v in every] ==
            ["fixed", "power", "power", "gas"], "%d %s %s" % (code, every, err))
    for kind in ("fixed", "power", "gas"):
        code, out, err = p1(["prices", "list", "--db", db, "--kind", kind] + rng)
        c.check("prices list --kind %s: its rows only" % kind,
                code == 0 and out.startswith("kind,from,to,") and
                kinds_and_times(out) == [r for r in every if r[0] == kind], "%d %s" % (code, out))
    for args, want in ((["list", "--kind", "import"], "expected fixed, power or gas, got 'import'"),
                       (["import", "--kind=fixed", "x.csv"], "expected power or gas, got 'fixed'"),
                       (["list", "--gas-day-start", "06:00"], "--gas-day-start is an option of "
                        "import")):
        code, out, err = p1(["prices"] + args[:1] + ["--db", db] + args[1:])
        c.check("prices %s: usage error: %s" % (" ".join(args), want),
                code == 2 and want in err and out == "", "%d %r %s" % (code, out, err))


def test_prices_list_to_alone(c, tmp):
    """p1 prices list --to TIME without --from, TIME before today, said '--from must be before
    --to' of a --from never given; it says that --from is today when not given (and which day
    that is), as GET /api/prices does. A --from after --to keeps its message."""
    db = os.path.join(tmp, "to-alone.db")
    p1(["prices", "import", "--db", db, write(tmp, "to-alone.csv", b"time,price\n"
                                              b"2025-10-01T00:00,0.10\n")])
    code, out, err = p1(["prices", "list", "--db", db, "--to", "2001-01-01"])
    c.check("prices list --to in the past alone: usage error naming the --from it defaults to",
            code == 2 and out == "" and "--to must be after --from, which is the start of "
            "today (" in err and "when not given: give --from too" in err and
            "--from must be before --to" not in err, "%d %r %s" % (code, out, err))
    code, out, err = p1(["prices", "list", "--db", db, "--from", "2025-10-03", "--to",
                         "2025-10-02"])
    c.check("prices list --from after --to: still '--from must be before --to'",
            code == 2 and "--from must be before --to" in err, "%d %s" % (code, err))
    code, out, err = p1(["prices", "list", "--db", db, "--from", "2025-10-01", "--to",
                         "2025-10-02"])
    c.check("... and with both in order the price is listed",
            code == 0 and len(kinds_and_times(out)) == 1, "%d %s %s" % (code, out, err))


def test_prices_command_typo(c, tmp):
    """p1 prices lsit said only '(import or list)', where p1's own commands and every option
    name the one meant (p1.1, EXIT STATUS); a typo of import or list now does too."""
    for cmd, want in (("lsit", "unknown command 'lsit' (did you mean 'list'?)"),
                      ("imprt", "unknown command 'imprt' (did you mean 'import'?)"),
                      ("bogus", "unknown command 'bogus' (import or list)")):
        code, out, err = p1(["prices", cmd])
        c.check("p1 prices %s: usage error: %s" % (cmd, want),
                code == 2 and want in err and out == "", "%d %r %s" % (code, out, err))


def test_import_memory_db(c, tmp):
    """p1 import --db :memory: (and p1 prices import) stored everything in a database SQLite
    deletes at exit and said so, exit 0; every name of such a database is a usage error saying
    the import would be lost. A file named :memory: is still one as ./:memory:."""
    cap = write(tmp, "cap.txt", b"".join(
        telegram(b"0-0:1.0.0(2403151400%02dW)\r\n1-0:1.8.1(000001.%03d*kWh)\r\n" % (s, s))
        for s in range(0, 50, 10)))
    prices = write(tmp, "memory-prices.csv", b"time,price\n2025-10-01T00:00,0.10\n")
    cwd = os.getcwd()
    os.chdir(tmp)  # where SQLite would create the files of a name it takes for a file
    try:
        before = sorted(os.listdir(tmp))
        for db in (":memory:", "file::memory:", "file::memory:?cache=shared",
                   "file:h.db?mode=memory", "file:h.db?cache=shared&mode=memory", "file:"):
            for cmd in (["import", "--db", db, cap], ["prices", "import", "--db=" + db, prices]):
                code, out, err = p1(cmd)
                c.check("p1 %s --db %s: usage error, the import would be lost" %
                        (" ".join(a for a in cmd[:2] if a[0] != "-"), db),
                        code == 2 and "--db '%s' is a temporary (in-memory) database" % db in err
                        and "the import would be lost" in err and out == "",
                        "%d %r %s" % (code, out, err))
        c.check("... and nothing was created", sorted(os.listdir(tmp)) == before,
                str(sorted(set(os.listdir(tmp)) - set(before))))
        code, out, err = p1(["import", "--db", "./:memory:", cap])
        c.check("p1 import --db ./:memory: imports into that file",
                code == 0 and "5 stored" in err and os.path.exists(os.path.join(tmp, ":memory:")),
                "%d %s" % (code, err))
    finally:
        os.chdir(cwd)

def test_import_uri_db(c, tmp):
    """p1 import --db file:y.db (an SQLite URI, which Debian's SQLite reads in any name) took its
    writer lock as ./file:y.db.lock, so p1d on y.db and the import did not see each other. It
    takes y.db.lock now; and a run that stores nothing removes only a database it created (it
    decided that from the URI, not the file)."""
    cap = write(tmp, "uri-cap.txt", b"".join(
        telegram(b"0-0:1.0.0(2403151400%02dW)\r\n1-0:1.8.1(000001.%03d*kWh)\r\n" % (s, s))
        for s in range(0, 50, 10)))
    bad = write(tmp, "uri-bad.txt", b"no telegram here\n")
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        code, out, err = p1(["import", "--db", "file:uri.db?cache=private", cap])
        c.check("p1 import --db file:uri.db?cache=private stores into uri.db",
                code == 0 and "5 stored" in err and os.path.exists("uri.db"), "%d %s" % (code, err))
        c.check("... its writer lock is uri.db.lock, next to the file",
                os.path.exists("uri.db.lock") and
                not any(n.startswith("file:") for n in os.listdir(tmp)), str(os.listdir(tmp)))
        code, out, err = p1(["import", "--db", "file:uri.db", bad])
        c.check("nothing to import into an existing database by URI: exit 1, the database kept",
                code == 1 and os.path.exists("uri.db"), "%d %s" % (code, err))
        code, out, err = p1(["import", "--db", "file:uri.db", cap])
        c.check("... with its readings", code == 0 and "already imported (5 telegrams)" in err, "%d %s" % (code, err))
        code, out, err = p1(["import", "--db", "file:fresh%2Ddb.db", bad])
        c.check("a database the run created by URI and stored nothing in is removed again",
                code == 1 and not any(n.startswith("fresh") for n in os.listdir(tmp)),
                str(os.listdir(tmp)))
    finally:
        os.chdir(cwd)


def test_prices_import_unwritable_summary(c, tmp):
    """p1 prices import with standard output closed (>&-) or full stores the prices, then fails
    to write its summary: still exit 1 and a write error, as any Unix tool, but named as p1
    prices import's and saying the prices are stored (it said only 'p1: writing standard
    output: Bad file descriptor', which read as a failed import)."""
    prices = write(tmp, "summary.csv", b"time,price\n2025-10-01T00:00,0.10\n"
                   b"2025-10-01T01:00,0.11\n")
    for name, redirect, why in (("closed", ">&-", "Bad file descriptor"),
                                ("/dev/full", ">/dev/full", "No space left on device")):
        db = os.path.join(tmp, "summary-%s.db" % name.strip("/").replace("/", "-"))
        p = subprocess.run(["sh", "-c", 'exec "$@" ' + redirect, "sh", P1, "prices", "import",
                            "--db", db, prices], capture_output=True, timeout=60)
        err = p.stderr.decode()
        c.check("prices import, standard output %s: exit 1, the write error and that the "
                "prices are stored" % name,
                p.returncode == 1 and err == "p1 prices import: writing standard output: %s\n"
                "p1 prices import: the 2 prices are stored all the same; only the summary line "
                "was lost\n" % why, "%d %s" % (p.returncode, err))
        code, out, err = p1(["prices", "list", "--db", db, "--from", "2025-10-01", "--to",
                             "2025-10-02"])
        c.check("... and they are", code == 0 and len(kinds_and_times(out)) == 2,
                "%d %s %s" % (code, out, err))


def main():
    c = Checks("test_cli_fixes")
    require_p1(c)
    with tmpdir() as tmp:
        c.run([test_bench_nothing_decoded, test_prices_import_range, test_prices_list_kind,
               test_prices_list_to_alone, test_prices_command_typo,
               test_import_memory_db, test_import_uri_db, test_prices_import_unwritable_summary], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
