#!/usr/bin/env python3
"""test_store_backfill.py: `p1 import` of readings older than the meter's newest (before its
first reading, or into a gap) gives the database an import in time order gives: the oracle
imports the same captures both ways and compares every table row by row."""
import gzip
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, crc16, tmpdir  # noqa: E402
from store_helpers import require_p1, integrity, p1  # noqa: E402

# At a minute boundary, so the pieces below (multiples of 6 telegrams at 10 s) start minutes:
# a raw block never spans two minutes, and an import starts a new block, so pieces that start
# minutes give byte-identical blocks whichever order they came in. Crosses the DST switch.
START = "2024-03-30T20:00:00Z"
START_S = 1711828800


def capture(c, count, interval=10, seed=1, start=START, extra=()):
    code, out, err = p1(["sim", "--start", start, "--interval", str(interval), "--count",
                         str(count), "--seed", str(seed)] + list(extra), timeout=300)
    tg = re.findall(rb"/.*?![0-9A-F]{4}\r\n", out.encode(), re.S)
    c.check("p1 sim wrote %d telegrams" % count, code == 0 and len(tg) == count,
            "%s %d" % (err, len(tg)))
    return tg


def write(path, telegrams):
    with open(path, "wb") as f:
        f.write(b"".join(telegrams))
    return path


def dump(db):
    """Every table's rows, sorted; imports without their wall-clock `updated`."""
    con = sqlite3.connect(db)
    out = {}
    try:
        for (t,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'"):
            if t == "imports":
                q = "SELECT file_key, path, meter, offset, telegrams FROM imports"
            else:
                q = "SELECT * FROM %s" % t
            out[t] = sorted(con.execute(q).fetchall(), key=repr)
    finally:
        con.close()
    return out


def imports(c, db, files):
    errs = []
    for f in files:
        code, out, err = p1(["import", "--db", db, f], timeout=300)
        c.check("import %s into %s" % (os.path.basename(f), os.path.basename(db)), code == 0, err)
        errs.append(err)
    return errs


def same(c, what, db1, db2, skip=()):
    d1, d2 = dump(db1), dump(db2)
    bad = []
    for t in sorted((set(d1) | set(d2)) - set(skip)):
        r1, r2 = d1.get(t, []), d2.get(t, [])
        if r1 != r2:
            only1 = [r for r in r1 if r not in r2][:2]
            only2 = [r for r in r2 if r not in r1][:2]
            bad.append("%s: %d vs %d rows; in order only %r; backfilled only %r"
                       % (t, len(r1), len(r2), only1, only2))
    c.check("%s: every table equals the in-order import" % what, not bad, "\n".join(bad)[:3000])
    c.check("%s: integrity" % what, integrity(db2) == "ok")
    return d2


def oracle(c, tmp, name, in_order, backfill_order):
    """Imports in_order into one database and backfill_order into another; compares them."""
    db1 = os.path.join(tmp, name + "-inorder.db")
    db2 = os.path.join(tmp, name + "-backfill.db")
    imports(c, db1, in_order)
    errs = imports(c, db2, backfill_order)
    return same(c, name, db1, db2), errs


def pieces(c, tmp, name, count, cuts):
    """Files of telegrams [lo:hi) for each (lo, hi) in cuts, of one capture of count."""
    t = capture(c, count)
    return [write(os.path.join(tmp, "%s-%d.txt" % (name, k)), t[lo:hi])
            for k, (lo, hi) in enumerate(cuts)]


def test_before(c, tmp):
    a, b = pieces(c, tmp, "before", 3000, [(0, 1200), (1200, 3000)])
    d, errs = oracle(c, tmp, "A before B", [a, b], [b, a])
    c.check("A before B: every reading stored", sum(r[2] for r in d["raw"]) == 3000)
    c.check("A before B: the gas channel is there",
            sum(r[9] or 0 for r in d["agg_1h"]) > 0 and all(r[9] is not None for r in d["agg_1h"]))
    last = errs[-1]
    c.check("the summary counts the backfilled readings and says so",
            re.search(r"1200 readings older than the meter's newest stored one backfilled", last)
            and "3000" not in last and "(1200 backfilled)" in last
            and "1200 stored (1200 backfilled)" in last, last)
    c.check("no reading counted as already stored", "already stored, skipped" not in last, last)


def test_repeats(c, tmp):
    """Telegrams repeated in the older capture near its end are skipped, as in time order, and
    the backfill goes on up to the first stored reading."""
    t = capture(c, 1800)
    a = write(os.path.join(tmp, "repeat-a.txt"), t[:1190] + t[1185:1190] + t[1190:1200])
    b = write(os.path.join(tmp, "repeat-b.txt"), t[1200:])
    d, errs = oracle(c, tmp, "repeated telegrams in A", [a, b], [b, a])
    c.check("repeats: every reading once", sum(r[2] for r in d["raw"]) == 1800)
    c.check("repeats: 1200 backfilled, the 5 repeats skipped", "(1200 backfilled), 5 skipped"
            in errs[-1], errs[-1])


def test_overlap(c, tmp):
    a, b = pieces(c, tmp, "overlap", 2400, [(0, 1500), (1200, 2400)])
    d, errs = oracle(c, tmp, "A overlapping B", [a, b], [b, a])
    c.check("overlap: no duplicates", sum(r[2] for r in d["raw"]) == 2400)
    c.check("overlap: the overlap is skipped as already stored",
            "300 readings at times the meter's history already covers" in errs[-1]
            and "(1200 backfilled)" in errs[-1], errs[-1])


def test_gap(c, tmp):
    # the filling C overlaps both sides of the gap
    a, g, b = pieces(c, tmp, "gap", 3000, [(0, 900), (840, 2160), (2100, 3000)])
    d, errs = oracle(c, tmp, "gap filled later", [a, g, b], [a, b, g])
    c.check("gap: every reading once", sum(r[2] for r in d["raw"]) == 3000)
    c.check("gap: the gap is backfilled, both overlaps skipped",
            "(1200 backfilled)" in errs[-1]
            and "120 readings at times the meter's history already covers" in errs[-1], errs[-1])


def test_long_b(c, tmp):
    """B longer than raw retention: its first reading is gone from the raw tier when A comes."""
    t = capture(c, 12 * 1440, interval=60)
    a = write(os.path.join(tmp, "longb-a.txt"), t[:2 * 1440])
    b = write(os.path.join(tmp, "longb-b.txt"), t[2 * 1440:])
    d, errs = oracle(c, tmp, "A before a B longer than raw retention", [a, b], [b, a])
    c.check("long B: raw keeps only the last 7 days",
            min(r[1] for r in d["raw"]) > START_S + 4 * 86400, min(r[1] for r in d["raw"]))


def test_long_a(c, tmp):
    t = capture(c, 12 * 1440, interval=60)
    a = write(os.path.join(tmp, "longa-a.txt"), t[:10 * 1440])
    b = write(os.path.join(tmp, "longa-b.txt"), t[10 * 1440:])
    oracle(c, tmp, "an A longer than raw retention before B", [a, b], [b, a])


def test_replaced(c, tmp):
    """Another meter (other ids, other counters) before: a segment at B's first reading."""
    a = write(os.path.join(tmp, "repl-a.txt"), capture(c, 600, seed=7))
    b = write(os.path.join(tmp, "repl-b.txt"),
              capture(c, 600, seed=1, start="@%d" % (START_S + 6000)))
    d, _ = oracle(c, tmp, "meter replaced between A and B", [a, b], [b, a])
    c.check("replaced: the replacement is a segment at B's first reading",
            any(r[1] == START_S + 6000 and r[3] == "device" for r in d["segments"]),
            d["segments"])


def test_atomic(c, tmp):
    """A backfill that fails in its second batch of 50,000 leaves the database as it was."""
    t = capture(c, 60600)
    a = write(os.path.join(tmp, "atomic-a.txt"), t[:60000])
    b = write(os.path.join(tmp, "atomic-b.txt"), t[60000:])
    db = os.path.join(tmp, "atomic.db")
    imports(c, db, [b])
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON raw WHEN NEW.ts > %d "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END" % (START_S + 55000 * 10))
    con.commit()
    con.close()
    before = dump(db)
    code, out, err = p1(["import", "--db", db, a], timeout=300)
    c.check("atomic: the failed backfill exits 1 and says it was rolled back",
            code == 1 and "the backfill was rolled back as a whole" in err, err)
    c.check("atomic: the database is as it was", dump(db) == before,
            {k: len(v) for k, v in dump(db).items()})
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER fail")
    con.commit()
    con.close()
    imports(c, db, [a])
    db1 = os.path.join(tmp, "atomic-inorder.db")
    imports(c, db1, [a, b])
    same(c, "atomic: imported again", db1, db)


def test_damaged_gz(c, tmp):
    """A .gz damaged after its first batch of 50,000 during a backfill: the telegrams before the
    damage are stored (the gap's transaction ends with them, as at a cut), the summary counts
    them, retention runs, exit 1."""
    t = capture(c, 60600)
    b = write(os.path.join(tmp, "damaged-b.txt"), t[60000:])
    a = os.path.join(tmp, "damaged-a.txt.gz")
    with open(a, "wb") as f:
        f.write(gzip.compress(b"".join(t[:60000]), 6))
    with open(a, "r+b") as f:
        data = bytearray(f.read())
        cut = len(data) * 9 // 10
        data[cut:cut + 64] = bytes(64)  # not an end: a data error, not a short file
        f.seek(0)
        f.write(data)
    db = os.path.join(tmp, "damaged.db")
    imports(c, db, [b])
    code, out, err = p1(["import", "--db", db, a], timeout=300)
    stored = sum(r[2] for r in dump(db)["agg_1d"]) - 600  # raw: retention ran
    m = re.search(r"(\d+) stored \((\d+) backfilled\)", err)
    c.check("damaged .gz: exit 1, a read error, no retention error",
            code == 1 and "retention" not in err, err)
    c.check("damaged .gz: the readings before the damage are backfilled and counted",
            stored >= 50000 and m and int(m.group(1)) == stored == int(m.group(2)),
            "%d stored; %s" % (stored, err))
    c.check("damaged .gz: integrity", integrity(db) == "ok")


def retime(telegram, ts):
    """The telegram with meter time ts (CET, as the simulator's in March) and a valid CRC."""
    stamp = time.strftime("%y%m%d%H%M%S", time.gmtime(ts + 3600)).encode() + b"W"
    t = re.sub(rb"0-0:1\.0\.0\(\d{12}[SW]\)", b"0-0:1.0.0(" + stamp + b")", telegram, count=1)
    body = t[:t.index(b"!") + 1]
    return body + b"%04X\r\n" % crc16(body)


def test_clock_back(c, tmp):
    """A meter clock set back for one telegram (CRC intact) would be backfilled before the first
    reading or into a gap, with a counter segment at the reading after it: it is dropped, as a
    jump ahead is. Captures concatenated newest first still go in whole."""
    t = capture(c, 1800)
    clean = write(os.path.join(tmp, "back-clean.txt"), t[:1000] + t[1001:])
    bad = write(os.path.join(tmp, "back-bad.txt"),
                t[:1000] + [retime(t[1000], START_S - 86400)] + t[1001:])
    db1, db2 = os.path.join(tmp, "back-clean.db"), os.path.join(tmp, "back-bad.db")
    imports(c, db1, [clean])
    err = imports(c, db2, [bad])[-1]
    same(c, "clock back a day for one telegram", db1, db2, skip=("imports",))
    c.check("clock back: the reading is dropped and reported", "1 reading dropped" in err, err)
    a = write(os.path.join(tmp, "back-a.txt"), t[:300])
    b = write(os.path.join(tmp, "back-b.txt"), t[900:1200])
    clean = write(os.path.join(tmp, "back-c.txt"), t[1200:1250] + t[1251:1300])
    bad = write(os.path.join(tmp, "back-cbad.txt"),
                t[1200:1250] + [retime(t[1250], START_S + 5000)] + t[1251:1300])
    db1, db2 = os.path.join(tmp, "back-gap-clean.db"), os.path.join(tmp, "back-gap-bad.db")
    imports(c, db1, [a, b, clean])
    imports(c, db2, [a, b, bad])
    same(c, "clock back into a gap for one telegram", db1, db2, skip=("imports",))
    ba = write(os.path.join(tmp, "back-ba.txt"), t[900:1200] + t[:300])
    db1, db2 = os.path.join(tmp, "back-ab.db"), os.path.join(tmp, "back-ba.db")
    imports(c, db1, [a, b])
    imports(c, db2, [ba])
    same(c, "captures concatenated newest first", db1, db2, skip=("imports",))


def prefix_timed(telegram, ts):
    """A DSMR 2.2-like telegram: no meter time, no CRC, every line prefixed with unix seconds."""
    lines = [ln for ln in telegram[:telegram.index(b"!")].split(b"\r\n")
             if not ln.startswith(b"0-0:1.0.0")] + [b"!"]
    return b"".join(b"%d " % ts + ln + b"\n" for ln in lines)


def test_after_failure(c, tmp):
    """A failed backfill forgets what the store knew of the meter (the rollback took more than
    the queue), but not its clock: a next FILE of the same command, timed by its line prefixes,
    is still backfilled at those times, not stamped after the newest reading one second apart."""
    t = capture(c, 1800)
    a = write(os.path.join(tmp, "fail-a.txt"), t[:600])
    g = write(os.path.join(tmp, "fail-g.txt"),
              [prefix_timed(x, START_S + 10 * (900 + i)) for i, x in enumerate(t[900:1200])])
    b = write(os.path.join(tmp, "fail-b.txt"), t[1500:])
    db = os.path.join(tmp, "fail.db")
    imports(c, db, [b])
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON raw WHEN NEW.ts < %d "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END" % (START_S + 6000))
    con.commit()
    con.close()
    code, out, err = p1(["import", "--db", db, a, g], timeout=300)
    con = sqlite3.connect(db)
    got = con.execute("SELECT min(ts), sum(n) FROM raw").fetchone()  # ts: a block's first
    con.close()
    c.check("after a failed backfill: the next file is backfilled at its own times",
            code == 1 and got == (START_S + 9000, 600)
            and "(300 backfilled)" in err, "%r %s" % (got, err))


def test_held_at_commit(c, tmp):
    """A reading held back at a jump of the meter's clock (a gap in the capture), still held
    when a batch of 50,000 commits, is read again by an import that stops before the next
    commit: the file's place is recorded before its telegram. Before, it was recorded after it,
    and the rerun never saw that reading."""
    chunk, batch = 256 * 1024, 50000  # tools/p1_import.c: IMPORT_CHUNK, IMPORT_BATCH
    a_all = capture(c, batch + 400)
    jump = START_S + 10 * len(a_all) + 3600
    b = capture(c, 300, start="@%d" % jump)
    ends, off = [], 0
    for t in a_all:
        off += len(t)
        ends.append(off)
    # A[:n] then B: B's first telegram must be the last one a read of the import completes
    # while 50,000 readings wait (and not before: no commit at an earlier read)
    n = None
    for k in range(batch, len(a_all)):
        end_b0 = ends[k - 1] + len(b[0])
        read_end = -(-end_b0 // chunk) * chunk
        earlier = sum(1 for e in ends[:k] if e <= read_end - chunk)
        if read_end < end_b0 + len(b[1]) and earlier < batch:
            n = k
            break
    c.check("held at a commit: a capture whose jump ends a read at the commit", n is not None)
    if n is None:
        return
    path = write(os.path.join(tmp, "held.txt"), a_all[:n] + b)
    home_n = "SELECT sum(n) FROM raw JOIN meters ON meters.id = raw.meter WHERE name = 'home'"
    db = os.path.join(tmp, "held.db")
    code, out, err = p1(["import", "--db", db, path], timeout=300)  # creates the database
    c.check("held at a commit: the whole capture imports", code == 0, err)
    con = sqlite3.connect(db)
    whole = con.execute(home_n).fetchone()[0]
    con.close()
    os.remove(db)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    # the same import, failing at the batch after the first commit (a full disk, a kill); the
    # database is made first by a capture of another meter
    setup = write(os.path.join(tmp, "held-setup.txt"), a_all[:6])
    code, out, err = p1(["import", "--db", db, "--meter", "setup", setup], timeout=60)
    c.check("held at a commit: the database made", code == 0, err)
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER fail BEFORE INSERT ON raw WHEN NEW.ts >= %d "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END" % jump)
    con.commit()
    con.close()
    code, out, err = p1(["import", "--db", db, path], timeout=300)
    con = sqlite3.connect(db)
    first = con.execute(home_n).fetchone()[0]
    con.execute("DROP TRIGGER fail")
    con.commit()
    con.close()
    c.check("held at a commit: the import fails after its first batch", code == 1 and
            first == n, "exit %d, %r stored: %s" % (code, first, err[-300:]))
    code, out, err = p1(["import", "--db", db, path], timeout=300)
    con = sqlite3.connect(db)
    again = con.execute(home_n).fetchone()[0]
    held = con.execute("SELECT count(*) FROM raw WHERE ts = ?", (jump,)).fetchone()[0]
    con.close()
    c.check("held at a commit: the rerun stores every reading, the held one too",
            code == 0 and again == whole == n + len(b) and held == 1,
            "exit %d, %r of %r (%d + %d), held %d: %s" % (code, again, whole, n, len(b), held,
                                                          err[-300:]))


def test_counter_reset(c, tmp):
    """The same electricity meter id with other counters before: whatever in-order import makes
    of the boundary (a counter segment, a jump), the backfill makes too."""
    ids = ["--meter-id", "E0000000000000001"]
    a = write(os.path.join(tmp, "reset-a.txt"), capture(c, 600, seed=7, extra=ids))
    b = write(os.path.join(tmp, "reset-b.txt"),
              capture(c, 600, seed=1, start="@%d" % (START_S + 6000), extra=ids))
    oracle(c, tmp, "counters reset between A and B", [a, b], [b, a])


def test_gap_segment_moves(c, tmp):
    """A (one meter), a gap, B (another): the segment sits at B's first reading until the gap
    is filled with the new meter's readings, then at their first; B's goes, with its flag."""
    a = write(os.path.join(tmp, "move-a.txt"), capture(c, 300, seed=7))
    t = capture(c, 1200, seed=1, start="@%d" % (START_S + 6000))
    g = write(os.path.join(tmp, "move-c.txt"), t[:600])
    b = write(os.path.join(tmp, "move-b.txt"), t[600:])
    d, _ = oracle(c, tmp, "a meter replaced in a gap", [a, g, b], [a, b, g])
    c.check("segment moves: at the first reading of the new meter only",
            sorted({r[1] for r in d["segments"]}) == [START_S + 6000], d["segments"])


def main():
    c = Checks("test_store_backfill")
    require_p1(c)
    with tmpdir() as tmp:
        c.run([test_before, test_repeats, test_overlap, test_gap, test_replaced, test_counter_reset,
               test_gap_segment_moves, test_long_a, test_long_b, test_atomic,
               test_damaged_gz, test_clock_back, test_after_failure, test_held_at_commit], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
