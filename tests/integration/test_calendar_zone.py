#!/usr/bin/env python3
"""test_calendar_zone.py: on a system that runs on Eastern European Time (a Lithuanian home,
TZ=Europe/Vilnius) p1d's calendar is EET/EEST: days run from midnight in Vilnius in
/api/summary, /api/history and p1 export, times without a zone are read in it, /api/meters
names it; anywhere else (UTC here) the calendar stays CET/CEST. A database keeps the calendar
it was created in (its day sums are written in it), whatever the system's zone later."""
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import P1D, Checks, Daemon, crc16, http, need_p1d, tmpdir  # noqa: E402
from store_helpers import P1, require_p1  # noqa: E402

VILNIUS = {"TZ": "Europe/Vilnius"}
UTC = {"TZ": "Etc/UTC"}


def p1_env(args, env):
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run([P1] + args, capture_output=True, timeout=120, env=e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def get(port, path):
    code, _, body = http(port, path)
    try:
        return code, json.loads(body)
    except ValueError:
        return code, {"raw": body[:300]}


def build_db(c, tmp, env, name):
    """Three days of a simulated meter, one telegram a minute, from 2026-01-10 00:00 EET, into
    a new database made with the system's zone env."""
    cap = os.path.join(tmp, "days.txt")
    db = os.path.join(tmp, name)
    code, out, err = p1_env(["sim", "--start", "2026-01-09T22:00:00Z", "--interval", "60",
                             "--count", str(3 * 24 * 60), "--fast"], UTC)
    c.check("p1 sim wrote three days", code == 0 and out.startswith("/"), err)
    with open(cap, "w") as f:
        f.write(out)
    code, _, err = p1_env(["import", "--db", db, "--meter", "home", cap], env)
    c.check("p1 import stored them into %s (%s)" % (name, env["TZ"]),
            code == 0 and " 0 rejected" in err, err)
    return db


def hours_sum(port, frm, to):
    code, h = get(port, "/api/history?meter=home&step=1h&fields=import_kwh&from=%s&to=%s"
                  % (frm, to))
    vals = h.get("import_kwh") if code == 200 else None
    return round(sum(v for v in vals if v is not None), 3) if vals else None


def test_vilnius(c, tmp, db):
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "live=sim"], tmp,
               env=VILNIUS)
    try:
        port = d.http_port()
        c.check("p1d starts with TZ=Europe/Vilnius", port is not None, d.text()[-500:])
        c.check("the log names the calendar's zone",
                "calendar: days, months and times without a zone are in EET/EEST (the system's "
                "time zone is Europe/Vilnius)" in d.text(), d.text()[-800:])
        code, ms = get(port, "/api/meters")
        c.check("/api/meters: time_zone Europe/Vilnius",
                code == 200 and isinstance(ms, list) and ms and
                all(m.get("time_zone") == "Europe/Vilnius" for m in ms), json.dumps(ms)[:400])
        code, s = get(port, "/api/summary?meter=home&period=day&at=2026-01-11T12:00")
        c.check("/api/summary: the day runs from midnight in Vilnius",
                code == 200 and s.get("from") == "2026-01-11T00:00:00+02:00"
                and s.get("to") == "2026-01-12T00:00:00+02:00", json.dumps(s)[:300])
        want = hours_sum(port, "2026-01-10T22:00:00Z", "2026-01-11T22:00:00Z")
        c.check("... its import is that of 22:00Z to 22:00Z",
                want is not None and abs((s.get("import_kwh") or -1) - want) < 0.002,
                (s.get("import_kwh"), want))
        code, h = get(port, "/api/history?meter=home&step=1h&fields=import_kwh"
                            "&from=2026-01-11&to=2026-01-12")
        times = h.get("time") or []
        c.check("/api/history: a day without a zone is 24 hours from 00:00+02:00",
                code == 200 and len(times) == 24 and times[0] == "2026-01-11T00:00:00+02:00",
                json.dumps(h)[:300])
        code, m = get(port, "/api/summary?meter=home&period=month&at=2026-01-11")
        c.check("/api/summary month: from 1 January 00:00+02:00",
                code == 200 and m.get("from") == "2026-01-01T00:00:00+02:00", json.dumps(m)[:300])
        code, e = get(port, "/api/history?meter=home&from=2026-03-29T03:30&to=2026-03-30")
        msg = ((e.get("error") or {}).get("message") or "") if code == 400 else ""
        c.check("a time the spring change skips in Vilnius (03:30) is a 400 naming EET",
                "does not exist in local time (EET/EEST)" in msg, (code, json.dumps(e)[:300]))
        code, _ = get(port, "/api/history?meter=home&from=2026-03-29T02:30&to=2026-03-30")
        c.check("... 02:30 that day exists there", code == 200, code)
    finally:
        c.check("p1d stops cleanly", d.stop() == 0)
    code, out, err = p1_env(["export", "--db", db, "--meter", "home", "--from", "2026-01-11",
                             "--to", "2026-01-12", "--step", "1d", "--format", "csv"], VILNIUS)
    rows = [r for r in out.splitlines() if r and not r.startswith("time")]
    c.check("p1 export with TZ=Europe/Vilnius: the day from 00:00+02:00",
            code == 0 and len(rows) == 1 and rows[0].startswith("2026-01-11T00:00:00+02:00"),
            "%d %s %s" % (code, out[:300], err))


def test_kept(c, tmp, db, env, tz, offset, made):
    """A database made in one zone, opened on a system in the other: the database's calendar,
    and a warning that says so."""
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "live=sim"], tmp, env=env)
    try:
        port = d.http_port()
        c.check("p1d starts with TZ=%s on a database made in %s" % (env["TZ"], made),
                port is not None, d.text()[-500:])
        c.check("... a warning names the database's calendar and the system's zone",
                "calendar: days, months and times without a zone are in %s, the calendar %s was "
                "created in; the system's time zone is %s now" % (made, db, env["TZ"])
                in d.text(), d.text()[-800:])
        code, ms = get(port, "/api/meters")
        c.check("... /api/meters: time_zone %s" % tz,
                code == 200 and ms and ms[0].get("time_zone") == tz, json.dumps(ms)[:300])
        code, s = get(port, "/api/summary?meter=home&period=day&at=2026-01-11T12:00")
        c.check("... /api/summary: the day from 00:00%s" % offset,
                code == 200 and s.get("from") == "2026-01-11T00:00:00" + offset,
                json.dumps(s)[:300])
    finally:
        c.check("p1d stops cleanly", d.stop() == 0)
    code, out, err = p1_env(["export", "--db", db, "--meter", "home", "--from", "2026-01-11",
                             "--to", "2026-01-12", "--step", "1d", "--format", "csv"], env)
    rows = [r for r in out.splitlines() if r and not r.startswith("time")]
    c.check("p1 export with TZ=%s: the database's day, from 00:00%s" % (env["TZ"], offset),
            code == 0 and len(rows) == 1 and rows[0].startswith("2026-01-11T00:00:00" + offset),
            "%d %s %s" % (code, out[:300], err))


def test_legacy(c, tmp, db):
    """A database from before the zone was recorded (no settings table) is CET, recorded so at
    the first write; while another program holds its write lock that cannot be, and the import
    says why."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DROP TABLE settings")
    con.execute("BEGIN IMMEDIATE")
    try:
        code, _, err = p1_env(["import", "--db", db, "--meter", "home",
                               os.path.join(tmp, "days.txt")], VILNIUS)
    finally:
        con.execute("ROLLBACK")
        con.close()
    c.check("a database from before, locked: p1 import exits 1 naming the lock",
            code == 1 and "another program holds its write lock" in err, "%d %s" % (code, err))
    code, _, err = p1_env(["import", "--db", db, "--meter", "home",
                           os.path.join(tmp, "days.txt")], VILNIUS)
    con = sqlite3.connect(db)
    row = con.execute("SELECT value FROM settings WHERE key = 'calendar'").fetchone()
    con.close()
    c.check("... unlocked: it records CET (its days were written in CET), whatever the system",
            code == 0 and row == ("CET",), "%d %s %s" % (code, row, err))


def test_legacy_days(c, tmp, db):
    """A database from before the zone was recorded that holds readings has CET days: the p1
    commands on an EET system must run their calendar in CET before the row is made (p1 export
    opens it read-only and makes none), not in the system's zone."""
    legacy = os.path.join(tmp, "legacy.db")
    src = sqlite3.connect(db)
    dst = sqlite3.connect(legacy)
    src.backup(dst)
    src.close()
    dst.execute("DROP TABLE settings")
    dst.commit()
    dst.close()
    code, out, err = p1_env(["export", "--db", legacy, "--meter", "home", "--from", "2026-01-11",
                             "--to", "2026-01-12", "--step", "1d", "--format", "csv"], VILNIUS)
    rows = [r for r in out.splitlines() if r and not r.startswith("time")]
    c.check("a database from before, TZ=Europe/Vilnius: p1 export's day is CET's, 00:00+01:00",
            code == 0 and len(rows) == 1 and rows[0].startswith("2026-01-11T00:00:00+01:00"),
            "%d %s %s" % (code, out[:300], err))
    cap = os.path.join(tmp, "more.txt")
    code, out, err = p1_env(["sim", "--start", "2026-01-12T23:00:00Z", "--interval", "60",
                             "--count", str(2 * 24 * 60), "--fast"], UTC)
    with open(cap, "w") as f:
        f.write(out)
    code, _, err = p1_env(["import", "--db", legacy, "--meter", "home", cap], VILNIUS)
    con = sqlite3.connect(legacy)
    row = con.execute("SELECT value FROM settings WHERE key = 'calendar'").fetchone()
    starts = sorted({t % 86400 for (t,) in con.execute("SELECT ts FROM agg_1d")})
    con.close()
    c.check("... p1 import of two more days records CET and writes its days at CET midnight "
            "(23:00Z), as the days before",
            code == 0 and row == ("CET",) and starts == [23 * 3600],
            "%d %s %s %s" % (code, row, starts, err))


def lt_telegram(stamp):
    body = ("/ESO5\\VMM00201\r\n\r\n0-0:1.0.0(%s)\r\n1-0:1.8.0(004567.000*kWh)\r\n!"
            % stamp).encode()
    return body + b"%04X\r\n" % crc16(body)


def test_lt_letters(c):
    """A Lithuanian meter's letter states Eastern European time: S +03:00, W +02:00, in its
    reading also where the clock is a placeholder (not set), as for a set clock."""
    stamps = ("000101000000S", "000101000000W", "260715120000S", "260115120000W")
    p = subprocess.run([P1, "decode", "-"], input=b"".join(lt_telegram(s) for s in stamps),
                       capture_output=True, timeout=30)
    times = [json.loads(l).get("reading", {}).get("time") for l in p.stdout.decode().splitlines()]
    c.check("p1 decode, profile lt: reading times with EET offsets, placeholders too",
            times == ["2000-01-01T00:00:00+03:00", "2000-01-01T00:00:00+02:00",
                      "2026-07-15T12:00:00+03:00", "2026-01-15T12:00:00+02:00"], times)


def test_zone_copy(c, tmp):
    """A container with its host's /etc/localtime mounted has a copy of the zone's file, not a
    link naming it (TZ=:/path reads a file as /etc/localtime is read): the zone is in the
    file's last line, EET-2EEST,..., and the page gets an IANA name of that zone."""
    src = "/usr/share/zoneinfo/Europe/Vilnius"
    if not os.path.exists(src):
        print("skip: no %s" % src)
        return
    copy = os.path.join(tmp, "localtime")
    with open(src, "rb") as f, open(copy, "wb") as g:
        g.write(f.read())
    d = Daemon(["--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "copy.db"),
                "--source", "live=sim"], tmp, env={"TZ": ":" + copy})
    try:
        port = d.http_port()
        c.check("TZ=:a copy of Europe/Vilnius: the calendar is EET/EEST",
                "calendar: days, months and times without a zone are in EET/EEST (the system's "
                "time zone is EET-2EEST,M3.5.0/3,M10.5.0/4)" in d.text(), d.text()[-800:])
        code, ms = get(port, "/api/meters")
        c.check("... /api/meters: time_zone Europe/Vilnius",
                code == 200 and ms and ms[0].get("time_zone") == "Europe/Vilnius",
                json.dumps(ms)[:300])
    finally:
        c.check("p1d stops cleanly", d.stop() == 0)


def test_help(c):
    """The tools' help says times without a zone are in the database's calendar, not CET."""
    for cmd in ("export", "import", "prices"):
        code, out, err = p1_env([cmd, "--help"], UTC)
        text = " ".join((out + err).split())
        c.check("p1 %s --help: a time without a zone is in the database's calendar, CET/CEST or "
                "EET/EEST" % cmd,
                code == 0 and "database's calendar" in text and "EET/EEST" in text, text[:600])


def test_fetch_after(c, tmp):
    """Day-ahead prices come out about 13:00 CET: without [prices] fetch_after p1d expects
    tomorrow's at 13:00 in a CET calendar and at 14:00 in an EET one (it asked an hour early
    every day, then every 30 minutes); a fetch_after that is set stays as set."""
    conf = os.path.join(tmp, "fetch.conf")
    for name, env, extra, want in (("Vilnius", VILNIUS, "", "14:00"), ("UTC", UTC, "", "13:00"),
                                   ("Vilnius, set", VILNIUS, "fetch_after = 13:30\n", "13:30")):
        with open(conf, "w") as f:
            f.write("[store]\ndb = %s\n[prices]\nfetch_url = http://127.0.0.1:9/p?d={from_date}\n%s"
                    % (os.path.join(tmp, "fetch.db"), extra))
        e = dict(os.environ)
        e.update(env)
        p = subprocess.run([P1D, "--config", conf, "--check-config"], capture_output=True,
                           timeout=60, env=e)
        err = p.stderr.decode("utf-8", "replace")
        c.check("%s: tomorrow's prices are expected from %s" % (name, want),
                p.returncode == 0 and "then daily from %s until tomorrow's are in" % want in err,
                err[-600:])


def test_default(c, tmp, db):
    d = Daemon(["--listen", "127.0.0.1:0", "--db", db, "--source", "live=sim"], tmp, env=UTC)
    try:
        port = d.http_port()
        c.check("p1d starts with TZ=Etc/UTC", port is not None, d.text()[-500:])
        c.check("no calendar line: CET is the default", "calendar:" not in d.text(),
                d.text()[-800:])
        code, ms = get(port, "/api/meters")
        c.check("/api/meters: time_zone Europe/Amsterdam",
                code == 200 and ms and ms[0].get("time_zone") == "Europe/Amsterdam",
                json.dumps(ms)[:300])
        code, s = get(port, "/api/summary?meter=home&period=day&at=2026-01-11T12:00")
        c.check("/api/summary: the day runs from midnight CET",
                code == 200 and s.get("from") == "2026-01-11T00:00:00+01:00", json.dumps(s)[:300])
        want = hours_sum(port, "2026-01-10T23:00:00Z", "2026-01-11T23:00:00Z")
        c.check("... its import is that of 23:00Z to 23:00Z",
                want is not None and abs((s.get("import_kwh") or -1) - want) < 0.002,
                (s.get("import_kwh"), want))
    finally:
        c.check("p1d stops cleanly", d.stop() == 0)


def main():
    c = Checks("test_calendar_zone")
    need_p1d(c)
    require_p1(c)
    test_lt_letters(c)
    test_help(c)
    with tmpdir() as tmp:
        eet = build_db(c, tmp, VILNIUS, "eet.db")
        cet = build_db(c, tmp, UTC, "cet.db")
        test_vilnius(c, tmp, eet)
        test_default(c, tmp, cet)
        test_kept(c, tmp, eet, UTC, "Europe/Vilnius", "+02:00", "EET/EEST")
        test_kept(c, tmp, cet, VILNIUS, "Europe/Amsterdam", "+01:00", "CET/CEST")
        test_legacy_days(c, tmp, cet)
        test_zone_copy(c, tmp)
        test_fetch_after(c, tmp)
        test_legacy(c, tmp, cet)
    c.done()


if __name__ == "__main__":
    main()
