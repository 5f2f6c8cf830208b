#!/usr/bin/env python3
"""test_import_formats.py: `p1 import` reads captures as other tools leave them: LF-only,
a timestamp or logger tag before every line, serial noise, gzip (logrotate), telegrams with
escaped line ends in a CSV or JSON export, standard input; and resumes such files."""
import glob
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, crc16, tmpdir  # noqa: E402
from store_helpers import P1, require_p1, p1, raw_count  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus"))
N = 120
TELEGRAM_LINE = re.compile(rb"^(/.*|\d+-\d+:\d+\.\d+\.\d+([.*]\d+)?\(.*|\(.*\)|![0-9A-Fa-f]{0,4}|)$")


def telegrams(capture):
    return [b"/" + t for t in capture.split(b"/")[1:]]


def prefixed(tels, stamp):
    """Every line of every telegram behind a prefix, LF line ends, as ts or a logger writes."""
    out = []
    for i, t in enumerate(tels):
        for line in t.replace(b"\r\n", b"\n").split(b"\n")[:-1]:
            out.append(stamp(i) + line)
    return b"\n".join(out) + b"\n"


def retime(t, stamp):
    """Telegram t with meter time stamp (YYMMDDhhmmssX), its CRC recomputed."""
    t = re.sub(rb"0-0:1\.0\.0\(\d{12}[SW]\)", b"0-0:1.0.0(" + stamp + b")", t)
    body = t[:t.index(b"!") + 1]
    return body + b"%04X\r\n" % crc16(body)


def lf_crc(t):
    """Telegram t with LF-only line ends that its CRC covers (a meter or tool that sends them)."""
    body = t[:t.index(b"!") + 1].replace(b"\r\n", b"\n")
    return body + b"%04X\n" % crc16(body)


def sim(start, count=N):
    code, out, err = p1(["sim", "--start", start, "--interval", "10", "--count", str(count)])
    return out.encode()


def import_one(tmp, name, data, query=None):
    """Writes data to tmp/name, imports it into tmp/name.db: (exit code, stderr, db, the first
    value of query or None)."""
    path, db = os.path.join(tmp, name), os.path.join(tmp, name + ".db")
    with open(path, "wb") as f:
        f.write(data)
    code, out, err = p1(["import", "--db", db, path])
    value = None
    if query and os.path.exists(db):
        con = sqlite3.connect(db)
        value = con.execute(query).fetchone()[0]
        con.close()
    return code, err, db, value


def variants(cap):
    tels = telegrams(cap)
    esc = [t.decode().replace("\r", "\\r").replace("\n", "\\n") for t in tels]
    return {
        "lf.txt": cap.replace(b"\r\n", b"\n"),
        "partial.txt": cap[700:],  # starts inside a telegram: that one is lost, not the rest
        "nul.txt": b"\0" * 64 + b"\0".join(tels),
        "noise.txt": b"~x#garbage".join(tels),  # printable noise before a header
        "ts.txt": prefixed(tels, lambda i: b"2024-01-31 12:%02d:%02d.123 " % (i // 60, i % 60)),
        "iso.txt": prefixed(tels, lambda i: b"[2024-01-31T12:00:%02d+01:00] " % (i % 60)),
        "journal.txt": prefixed(tels, lambda i: b"Jan 31 12:00:%02d pi p1reader[812]: " % (i % 60)),
        "export.csv": ("id,timestamp,telegram\n" + "".join(
            '%d,2024-01-31 12:00:00,"%s"\n' % (i, e) for i, e in enumerate(esc))).encode(),
        "export.json": json.dumps([{"telegram": t.decode()} for t in tels]).encode(),
        "export.jsonl": b"".join(json.dumps({"id": i, "telegram": t.decode()}).encode() + b"\n"
                                 for i, t in enumerate(tels)),
        "dsmr22.txt": re.sub(rb"!([0-9A-F]{4})\r?\n", b"!\r\n", cap).replace(b"\r\n", b"\n"),
        "capture.gz": gzip.compress(cap),
        "ts.txt.gz": gzip.compress(prefixed(tels, lambda i: b"%d.5 " % (1706698800 + i))),
    }


def main():
    c = Checks("test_import_formats")
    require_p1(c)
    with tmpdir() as tmp:
        cap = sim("2024-01-31T10:00:00Z")
        c.check("p1 sim wrote a capture", len(telegrams(cap)) == N)
        # ... and with LF-only line ends that the CRC covers (p1 decode and p1d take them; the
        # import made every line end CRLF, so their CRC failed: "no P1 telegram found")
        lfcap = b"".join(lf_crc(t) for t in telegrams(cap))
        every = list(variants(cap).items()) + [("lfcrc-" + k, v)
                                               for k, v in variants(lfcap).items()]
        for name, data in every:
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            db = os.path.join(tmp, name + ".db")
            want = N - 1 if name.endswith("partial.txt") else N
            code, out, err = p1(["import", "--db", db, path])
            got = raw_count(db) if os.path.exists(db) else 0
            c.check("%s: every telegram stored" % name, code == 0 and got == want,
                    "exit %d, %d of %d stored: %s" % (code, got, want, err.strip()[-300:]))
            code, out, err = p1(["import", "--db", db, path])
            c.check("%s: a second import adds nothing and says so" % name,
                    code == 0 and "already imported" in err and raw_count(db) == got,
                    "exit %d: %s" % (code, err.strip()[-300:]))

        # Found by fuzz/fuzz_import.c: a meter's line with a stray CR before its CR LF (in the
        # CRC) was passed on as it was, unless the import's 256 KiB read ended inside it: then
        # the CR was trimmed and that telegram failed its CRC. Every line has one here, so
        # whichever line the read ends in has it; all telegrams must be stored, as decoded.
        def stray_cr(t):
            body = t[:t.index(b"!") + 1].replace(b")\r\n", b")\r\r\n")
            return body + b"%04X\r\n" % crc16(body)
        many = sim("2024-01-31T10:00:00Z", 300)
        cr = b"".join(stray_cr(t) for t in telegrams(many))
        start = cr.rfind(b"\n", 0, 256 * 1024) + 1
        c.check("stray CR: a line crosses the first read's end", start < 256 * 1024 < len(cr) and
                cr[start:cr.find(b"\n", start) + 1].endswith(b")\r\r\n"), cr[start:start + 80])
        code, err, db, _ = import_one(tmp, "stray_cr.txt", cr)
        got = raw_count(db)
        c.check("stray CR: every telegram stored, wherever the reads end", code == 0 and
                got == 300 and "0 rejected" in err, "exit %d, %d stored: %s" % (code, got, err))

        # a logger's file that grows: the import resumes inside it, gzip or not
        ts = variants(cap)["ts.txt"]
        grow, db = os.path.join(tmp, "grow.log"), os.path.join(tmp, "grow.db")
        with open(grow, "wb") as f:
            f.write(ts[:len(ts) // 2])
        code, out, err = p1(["import", "--db", db, grow])
        half = raw_count(db)
        c.check("grown log: first half", code == 0 and 0 < half < N, "%d %s" % (half, err))
        with open(grow, "wb") as f:
            f.write(ts)
        code, out, err = p1(["import", "--db", db, grow])
        c.check("grown log: resumed, every telegram once", code == 0 and raw_count(db) == N and
                "%d telegrams" % (N - half) in err, "%d %s" % (raw_count(db), err))
        with open(grow + ".1.gz", "wb") as f:  # logrotate compressed it: the same file
            f.write(gzip.compress(ts))
        code, out, err = p1(["import", "--db", db, grow + ".1.gz"])
        c.check("rotated and compressed: known, nothing new", code == 0 and
                "already imported" in err and raw_count(db) == N, err)
        con = sqlite3.connect(db)
        nimp = con.execute("SELECT count(*) FROM imports").fetchone()[0]
        con.close()
        c.check("rotated and compressed: one import record", nimp == 1, nimp)

        # plain and prefixed telegrams in one file (a logger started mid-way), cut anywhere:
        # resumed, every telegram once
        tels = telegrams(cap)
        mixed = b"".join(tels[:N // 2]) + prefixed(tels[N // 2:], lambda i: b"%d " % i)
        for cut in (len(mixed) // 3, len(mixed) // 2 + 7, len(mixed) * 4 // 5):
            path = os.path.join(tmp, "mixed%d.log" % cut)
            db = os.path.join(tmp, "mixed%d.db" % cut)
            with open(path, "wb") as f:
                f.write(mixed[:cut])
            code1, out, err1 = p1(["import", "--db", db, path])
            con = sqlite3.connect(db)
            offset = con.execute("SELECT offset FROM imports").fetchone()[0]
            con.close()
            ends = [m.end() for m in re.finditer(rb"![0-9A-F]{4}\r?\n", mixed[:cut])]
            c.check("cut at %d: the offset is the end of the last whole telegram" % cut,
                    offset == ends[-1], "%s != %s" % (offset, ends[-1]))
            with open(path, "wb") as f:
                f.write(mixed)
            code2, out, err2 = p1(["import", "--db", db, path])
            c.check("mixed plain and prefixed, cut at %d: resumed, every telegram once" % cut,
                    code1 == 0 and code2 == 0 and raw_count(db) == N,
                    "%d %s %s" % (raw_count(db), err1, err2))

        # standard input, compressed or not: read, never remembered, duplicates skipped
        db = os.path.join(tmp, "stdin.db")
        code, out, err = p1(["import", "--db", db, "-"], stdin=gzip.compress(ts))
        c.check("stdin: gzip read", code == 0 and raw_count(db) == N, err)
        code, out, err = p1(["import", "--db", db, "-"], stdin=cap)
        c.check("stdin: again adds nothing", code == 0 and raw_count(db) == N and
                "%d skipped" % N in err, err)
        code, out, err = p1(["import", "--db", db, "-", "-"], stdin=cap)
        c.check("stdin twice: usage error", code == 2 and "twice" in err, err)
        code, out, err = p1(["import", "--db", db, "-"], stdin=b"not a capture\n" * 100)
        c.check("stdin without telegrams: exit 1", code == 1 and "no P1 telegram" in err, err)

        # a pipe (<(zcat capture.gz), a named FIFO) is read once, as standard input is: it cannot
        # be read again to find the file's identity (the import failed with an empty message,
        # 'p1 import: /dev/fd/63: ') nor to put several files in order (that read ate its start)
        gzcap = os.path.join(tmp, "piped.txt.gz")
        with open(gzcap, "wb") as f:
            f.write(gzip.compress(cap))
        later = os.path.join(tmp, "piped-later.txt")
        with open(later, "wb") as f:
            f.write(sim("2024-02-01T10:00:00Z", 50))
        db = os.path.join(tmp, "pipe.db")
        r = subprocess.run(["bash", "-c", '"$0" import --db "$1" <(zcat "$2")', P1, db, gzcap],
                           capture_output=True, timeout=60)
        err = r.stderr.decode("utf-8", "replace")
        c.check("a pipe (<(zcat FILE)): imported", r.returncode == 0 and raw_count(db) == N,
                "%d %d %s" % (r.returncode, raw_count(db) if os.path.exists(db) else -1, err))
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        with open(os.path.join(tmp, "piped"), "wb") as f:
            f.write(cap)
        writer = subprocess.Popen(["bash", "-c", 'cat "$0" > "$1"', os.path.join(tmp, "piped"),
                                   fifo])
        db = os.path.join(tmp, "fifo.db")
        try:
            code, out, err = p1(["import", "--db", db, later, fifo], timeout=30)
        except subprocess.TimeoutExpired:  # opened again after its writer left: waits forever
            code, err = -1, "timed out"
        finally:
            if writer.poll() is None:  # p1 never opened the FIFO: the writer waits for it
                writer.kill()
            writer.wait()
        c.check("a named FIFO after a file: both imported whole (the FIFO last)",
                code == 0 and raw_count(db) == N + 50, "%d %d %s" % (code, raw_count(db), err))

        # several files in any order: imported oldest first, nothing lost
        parts = [sim("2024-01-31T09:00:00Z", 50), sim("2024-01-31T10:00:00Z", 50),
                 sim("2024-02-01T10:00:00Z", 50)]
        names = []
        for k, data in enumerate(parts):
            names.append(os.path.join(tmp, "part%d.log" % k))
            with open(names[-1], "wb") as f:
                f.write(data)
        db = os.path.join(tmp, "order.db")
        code, out, err = p1(["import", "--db", db, names[2], names[0], names[1]])
        c.check("files in any order: every reading", code == 0 and raw_count(db) == 150,
                "%d %s" % (raw_count(db), err))
        c.check("files in any order: says they were put in order", "oldest first" in err, err)
        db = os.path.join(tmp, "order2.db")
        p1(["import", "--db", db, names[1]])
        code, out, err = p1(["import", "--db", db, names[0]])
        c.check("an older file later: backfilled, and said so", code == 0 and
                raw_count(db) == 100 and
                "50 readings older than the meter's newest stored one backfilled" in err, err)

        # the meter's clock jumps ahead for one telegram: that one is dropped, not the rest
        tels = telegrams(cap)
        glitch = list(tels)
        glitch[60] = retime(tels[60], b"300101000000W")
        code, err, db, newest = import_one(tmp, "glitch.log", b"".join(glitch),
                                           "SELECT max(ts) FROM raw")
        c.check("clock glitch: every other reading stored", code == 0 and raw_count(db) == N - 1,
                "%d %s" % (raw_count(db), err))
        c.check("clock glitch: no reading in 2030 (retention would drop the real ones)",
                newest is not None and newest < 1800000000, newest)
        c.check("clock glitch: reported", "clock jumped" in err, err)
        # a real gap of days (logger off): kept
        code, err, db, _ = import_one(tmp, "gap.log", parts[0] + parts[2])
        c.check("a real gap in a capture: every reading", code == 0 and raw_count(db) == 100,
                "%d %s" % (raw_count(db), err))
        # the last telegram after a gap: nothing confirms it, so it is not stored, and the file's
        # place stays before it; once the capture grows, the next telegram confirms it
        after = telegrams(parts[2])
        code, err, db, _ = import_one(tmp, "lastjump.log", parts[0] + after[0])
        c.check("a gap before the file's last telegram: held, said", code == 0 and
                raw_count(db) == 50 and "last telegram dropped" in err,
                "%d %s" % (raw_count(db), err))
        code, out, err = p1(["import", "--db", db, os.path.join(tmp, "lastjump.log")])
        c.check("the same file again: still held", code == 0 and raw_count(db) == 50 and
                "last telegram dropped" in err, "%d %s" % (raw_count(db), err))
        with open(os.path.join(tmp, "lastjump.log"), "ab") as f:
            f.write(after[1])
        code, out, err = p1(["import", "--db", db, os.path.join(tmp, "lastjump.log")])
        c.check("the grown file: the next telegram confirms it, both stored", code == 0 and
                raw_count(db) == 52 and "dropped" not in err, "%d %s" % (raw_count(db), err))
        # a clock jump in the file's last telegram (QA: 2030 stored, retention counted from it)
        last = list(tels)
        last[-1] = retime(tels[-1], b"300101000000W")
        code, err, db, newest = import_one(tmp, "lastglitch.log", b"".join(last),
                                           "SELECT max(ts) FROM raw")
        c.check("clock glitch in the last telegram: not stored, said", code == 0 and
                raw_count(db) == N - 1 and newest is not None and newest < 1800000000 and
                "last telegram dropped" in err, "%d %s %s" % (raw_count(db), newest, err))
        code, out, err = p1(["import", "--db", db, os.path.join(tmp, "lastglitch.log")])
        newest = sqlite3.connect(db).execute("SELECT max(ts) FROM raw").fetchone()[0]
        c.check("clock glitch in the last telegram: a second import does not store it either",
                code == 0 and raw_count(db) == N - 1 and newest < 1800000000,
                "%d %s %s" % (raw_count(db), newest, err))
        # ... and in the first, with no history to judge it by: the later of the two is dropped
        first = list(tels)
        first[0] = retime(tels[0], b"300101000000W")
        code, err, db, newest = import_one(tmp, "firstglitch.log", b"".join(first),
                                           "SELECT max(ts) FROM raw")
        c.check("clock glitch in the first telegram: not stored", code == 0 and
                raw_count(db) == N - 1 and newest is not None and newest < 1800000000 and
                "clock jumped" in err, "%d %s %s" % (raw_count(db), newest, err))

        # DSMR 2.2: no meter time, no CRC. A raw capture cannot be placed in time (said, exit 1,
        # nothing recorded); a logger's timestamps (ISO-8601 CET/CEST or unix seconds) can
        v22 = [re.sub(rb"0-0:1\.0\.0\([^)]*\)\r\n", b"", t) for t in tels]
        v22 = [re.sub(rb"!([0-9A-F]{4})\r\n", b"!\r\n", t) for t in v22]
        code, err, db, nimp = import_one(tmp, "v22.log", b"".join(v22),
                                         "SELECT count(*) FROM imports")
        c.check("DSMR 2.2 without timestamps: exit 1, says why, not recorded (no database left)",
                code == 1 and "none with a time" in err and nimp is None and not os.path.exists(db),
                "%d %s %s" % (code, nimp, err))
        for name, stamp, first in (
                ("iso", lambda i: b"2024-01-31 12:%02d:%02d.5 " % (i // 6, i % 6 * 10), 1706698800),
                ("unix", lambda i: b"%d.25 " % (1706698800 + 10 * i), 1706698800)):
            code, err, db, low = import_one(tmp, "v22%s.log" % name, prefixed(v22, stamp),
                                            "SELECT min(ts) FROM raw")
            c.check("DSMR 2.2 with %s timestamps: every telegram, at the line's time" % name,
                    code == 0 and raw_count(db) == N and low == first and
                    "timed by the timestamp of their line" in err,
                    "%d %s %s" % (raw_count(db), low, err))

        # a broken gzip file: the error names it
        bad = os.path.join(tmp, "bad.gz")
        with open(bad, "wb") as f:
            f.write(gzip.compress(cap)[:2000])
        code, out, err = p1(["import", "--db", os.path.join(tmp, "bad.db"), bad])
        c.check("truncated gzip: the telegrams before the cut, and an error",
                code == 1 and "bad.gz" in err, "%d %s" % (code, err))
        # damaged within (a flipped byte): the file is named, not zlib's "<fd:7>"
        z = bytearray(gzip.compress(cap))
        z[len(z) // 2] ^= 0xFF
        code, err, db, _ = import_one(tmp, "damaged.gz", bytes(z))
        c.check("damaged gzip: exit 1, names the file, not zlib's descriptor",
                code == 1 and "damaged.gz: broken gzip data" in err and "<fd:" not in err,
                "%d %s" % (code, err))

        # an encrypted (Smarty) capture, compressed: binary frames are not read as lines
        key = "000102030405060708090A0B0C0D0E0F"
        enc = subprocess.run([P1, "sim", "--start", "2024-01-31T10:00:00Z", "--interval", "10",
                              "--count", "40", "--key", key], capture_output=True).stdout
        code, err, db, _ = import_one(tmp, "smarty.bin.gz", gzip.compress(enc))
        c.check("encrypted .gz without --key: asks for --key", code == 1 and "--key" in err, err)
        code, out, err = p1(["import", "--db", db, "--key", key, os.path.join(tmp, "smarty.bin.gz")])
        c.check("encrypted .gz with --key: every telegram", code == 0 and raw_count(db) == 40, err)

        # p1 decode reads gzip too (file or pipe, several members); a cut stream is exit 1
        gzpath = os.path.join(tmp, "capture.gz")
        code, out, err = p1(["decode", gzpath])
        c.check("decode FILE.gz: every telegram", code == 0 and out.count('"ok":true') == N, err)
        code, out, err = p1(["decode"], stdin=gzip.compress(cap) + gzip.compress(cap))
        c.check("decode of two gzip members on stdin: every telegram of both",
                code == 0 and out.count('"ok":true') == 2 * N, err)
        code, out, err = p1(["decode"], stdin=gzip.compress(cap)[:2500])
        c.check("decode of cut gzip data: exit 1, says so", code == 1 and "ends early" in err and
                out.count('"ok":true') > 0, "%d %s" % (code, err))
        code, out, err = p1(["decode", gzpath, "--max", "3"])
        c.check("decode FILE.gz --max 3: three, exit 0", code == 0 and out.count('"ok":true') == 3,
                err)
        head = b"\x1f\x8b" + cap  # looks like gzip, is not: broken data, named
        code, out, err = p1(["decode"], stdin=head)
        c.check("decode of not-gzip with the magic bytes: exit 1, says so",
                code == 1 and "gzip" in err, err)

        # the help and the man page say what is read
        code, out, err = p1(["import", "--help"])
        c.check("--help names gzip, standard input and prefixes",
                code == 0 and "gzip" in out and "standard input" in out and "prefix" in out, out)
        man = open(os.path.join(ROOT, "dist", "p1.1")).read()
        c.check("p1.1 names gzip and prefixes", "gzip" in man and "prefix" in man)

        # the corpus (telegrams of real meters) behind a timestamp, LF-only: read as p1 decode
        # reads the original
        files = sorted(glob.glob(os.path.join(CORPUS, "**", "*.txt"), recursive=True))[:40]
        if not files:
            print("SKIP: corpus checks: %s absent" % CORPUS)
        checked = 0
        for path in files:
            raw = open(path, "rb").read()
            code, out, err = p1(["decode", path])
            ok = out.count('"ok":true')
            lines = raw.split(b"\r\n")
            if code != 0 or ok == 0 or len(lines) < 3 or not all(
                    TELEGRAM_LINE.match(ln) for ln in lines):
                continue  # only telegrams whose every line can be told from a prefix
            src = os.path.join(tmp, "corpus.log")
            with open(src, "wb") as f:
                f.write(b"".join(b"2024-01-31 12:00:00.000 " + ln + b"\n"
                                 for ln in lines))
            code, out, err = p1(["import", "-q", "--db", os.path.join(tmp, "c%d.db" % checked), src])
            checked += 1
            c.check("corpus %s: prefixed, as decoded" % os.path.basename(path),
                    code == 0 or "no valid time" in err, err.strip()[-200:])
        if files:
            print("corpus: %d captures checked" % checked)
    c.done()


if __name__ == "__main__":
    main()
