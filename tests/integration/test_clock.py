#!/usr/bin/env python3
"""test_clock.py: which clock p1d's history uses (clock=auto) when the system clock is not
synchronised, as on a Raspberry Pi without a real-time clock before NTP answers, and what a system
clock stepped while p1d runs does to its timers.

The kernel's sync state (adjtimex) comes from a small LD_PRELOAD shim that reads it from a file,
so a test can flip it while p1d runs; the system clock itself is moved with libfaketime (those
parts skip, visibly, when faketime is not installed). Telegrams come over a real TCP socket (a
fake dongle), readings go into a real SQLite database, read back with `p1 export`."""
import json
import os
import sqlite3
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, build_shim, crc16, fake_dongle, http,  # noqa: E402
                            need_p1d, telegram, tmpdir)
from store_helpers import P1, ROOT, export_rows, iso_unix, p1, raw_count  # noqa: E402

FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1"]

# adjtimex() answers from the file named by P1D_TEST_SYNC: "1" synchronised (TIME_OK), "0" not
# (TIME_ERROR, STA_UNSYNC), "e" refused (EPERM, as under a seccomp filter).
SYNC_SHIM = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
int adjtimex(struct timex *t)
{
    char c = '1';
    const char *p = getenv("P1D_TEST_SYNC");
    FILE *f = p ? fopen(p, "r") : NULL;
    if (f) {
        c = (char)fgetc(f);
        fclose(f);
    }
    if (c == 'e') {
        errno = EPERM;
        return -1;
    }
    memset(t, 0, sizeof *t);
    t->status = c == '0' ? STA_UNSYNC : STA_PLL;
    return c == '0' ? TIME_ERROR : TIME_OK;
}
int ntp_adjtime(struct timex *t)
{
    return adjtimex(t);
}
"""


def faketime_lib():
    for p in FAKETIME_LIBS:
        if os.path.exists(p):
            return p
    return None


def set_file(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def meter_json(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/meters/home" % port, timeout=5) as r:
            return json.loads(r.read())
    except Exception:
        return {}


def raw_times(db):
    return [iso_unix(r["time"]) for r in export_rows(db, "raw")]


class Run:
    """p1d with one tcp: meter (clock=auto) on a fake dongle, the shim, and maybe faketime."""

    def __init__(self, tmp, so, sync, fake=None, extra=()):
        self.sync = os.path.join(tmp, "sync")
        set_file(self.sync, sync)
        self.db = os.path.join(tmp, "h%d.db" % int(time.time() * 1000))
        self.dongle = fake_dongle()
        env = {"LD_PRELOAD": so, "P1D_TEST_SYNC": self.sync,
               "ASAN_OPTIONS": "verify_asan_link_order=0"}
        if fake:
            lib, stamp = fake
            env.update({"LD_PRELOAD": lib + " " + so, "FAKETIME_TIMESTAMP_FILE": stamp,
                        "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_RESET": "1",
                        "FAKETIME_DONT_FAKE_MONOTONIC": "1"})  # as NTP: CLOCK_REALTIME only
        self.d = Daemon(["--source", "home=tcp:127.0.0.1:%d" % self.dongle.getsockname()[1],
                         "--db", self.db, "--listen", "127.0.0.1:0", "--log-level", "info"]
                        + list(extra), tmp, env=env)
        self.port = self.d.http_port()
        self.conn, _ = self.dongle.accept()
        self.i = 0

    def send(self, unix):
        self.i += 1
        self.conn.sendall(telegram(self.i, when=unix))

    def finish(self, n):
        """Waits for the n-th telegram, stops p1d; returns /api/meters' entry of the meter from
        before the stop and the stored raw times."""
        self.wait_seq(n)
        m = meter_json(self.port)
        self.stop()
        return m, raw_times(self.db)

    def paced(self, shift, n=3):
        """n telegrams a second apart, the meter's clock `shift` s off the real time; returns
        the real time span they were sent in, and finish()'s."""
        start = time.time()
        for i in range(n):
            self.send(int(start) + shift + i)
            # a second apart as p1d sees them, however late a busy machine lets it read one
            self.wait_seq(i + 1)
            time.sleep(1.05)
        return (start, time.time()) + self.finish(n)

    def wait_seq(self, n, timeout=10):
        return self.d.wait_meter("home", lambda m: m.get("seq", 0) >= n, timeout)

    def stop(self):
        if self.conn:
            self.conn.close()
        self.dongle.close()
        self.d.stop()


def test_unsynced_boot(c, tmp, so):
    """The system clock 3 days behind the meter's (the last shutdown's time, restored without an
    RTC), the kernel says it is unsynchronised: the history takes the meter's time, once the
    meter's clock is seen to run with ours (the first reading is skipped). A time garbled a year
    ahead is skipped, and so is the reading after it, not stored a year ahead."""
    r = Run(tmp, so, "0")
    try:
        ahead = 3 * 86400
        t0 = int(time.time()) + ahead
        shifts = [0, 0, 0, 0, 0, 365 * 86400, 0, 0]
        for i, shift in enumerate(shifts):
            r.send(t0 + i + shift)
            time.sleep(0.05)
        m, times = r.finish(len(shifts))
        c.check("unsynced, meter 3 days ahead: readings stored at the meter's times, but the "
                "first, the garbled one and the one after it",
                times == [t0 + i for i in (1, 2, 3, 4, 7)], "%s vs %d" % (times, t0))
        cl = m.get("clock") or {}
        c.check("/api/meters: clock used meter, system_synced false, offset about 3 days",
                cl.get("used") == "meter" and cl.get("system_synced") is False
                and abs((cl.get("meter_offset_s") or 0) - ahead) < 30, json.dumps(m))
        log = r.d.text()
        c.check("one warning: the system clock is not synchronised, the meter's is used",
                log.count("the system clock is not synchronised") == 1, log[-2000:])
    finally:
        r.stop()


def lt_telegram(i, unix):
    """A Lithuanian ESO meter's telegram at unix seconds: its clock keeps Vilnius time."""
    import datetime
    import zoneinfo
    lt = datetime.datetime.fromtimestamp(unix, zoneinfo.ZoneInfo("Europe/Vilnius"))
    body = ("/ESO5\\VMM00201\r\n\r\n0-0:1.0.0(%s%s)\r\n"
            "0-0:96.1.1(4C5430303031323334353637)\r\n"
            "1-0:1.8.0(%06d.%03d*kWh)\r\n1-0:2.8.0(000000.000*kWh)\r\n"
            "1-0:1.7.0(00.412*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
            % (lt.strftime("%y%m%d%H%M%S"), "S" if lt.dst() else "W", 4567 + i // 1000,
               i % 1000)).encode()
    return body + b"%04X\r\n" % crc16(body)


def test_lithuanian_meter(c, tmp, so):
    """A Lithuanian meter's clock keeps Eastern European time, an hour ahead of a Dutch one: its
    time is that instant, not an hour later, so with our clock unsynchronised the history takes
    its times as they are, and /api/meters shows no offset."""
    r = Run(tmp, so, "0")
    try:
        t0 = int(time.time()) + 86400  # as after a boot without RTC: the meter's clock wins
        n = 6
        for i in range(n):
            r.conn.sendall(lt_telegram(i, t0 + i))
            time.sleep(0.05)
        r.wait_seq(n)
        code, _, body = http(r.port, "/api/meters/home/now")
        now = json.loads(body) if code == 200 else {}
        m, times = r.finish(n)
        c.check("Lithuanian meter, unsynced: stored at the meter's instants (its first skipped)",
                times == [t0 + i for i in range(1, n)], "%s vs %d" % (times, t0))
        cl = m.get("clock") or {}
        c.check("/api/meters: the meter's clock used, about a day ahead of ours, not a day and "
                "an hour", cl.get("used") == "meter" and
                abs((cl.get("meter_offset_s") or 0) - 86400) < 30, json.dumps(m))
        c.check("/api/meters/home/now: the meter's time with +02:00 or +03:00",
                str((now.get("reading") or {}).get("time", "")).endswith(("+02:00", "+03:00")),
                json.dumps(now)[:600])
    finally:
        r.stop()


def test_synced_keeps_rule(c, tmp, so):
    """A synchronised system clock still overrules a meter 3 days ahead (the 5-minute rule), and a
    meter 2 years behind is not believed just because ours is unsynchronised."""
    for sync, shift, what, words in (("1", 3 * 86400, "synced, meter 3 days ahead", "3.0 days ahead"),
                                     ("0", -2 * 365 * 86400, "unsynced, meter 2 years behind",
                                      "2.0 years behind")):
        r = Run(tmp, so, sync)
        try:
            start, end, m, times = r.paced(shift)
            c.check(what + ": stored at the system's times",
                    len(times) == 3 and all(start - 1 <= t <= end + 1 for t in times),
                    "%s start %d" % (times, start))
            cl = m.get("clock") or {}
            c.check(what + ": /api/meters clock used system, system_synced " + sync,
                    cl.get("used") == "system" and cl.get("system_synced") is (sync == "1"),
                    json.dumps(m))
            log = r.d.text()
            c.check(what + ": one warning that the meter's clock is off, in words too",
                    log.count("history uses the system clock") == 1 and
                    "off the system's (%s)" % words in log, log[-2000:])
        finally:
            r.stop()


def test_sync_unknown(c, tmp, so):
    """adjtimex refused (a seccomp filter): the system clock is trusted as before, said once."""
    r = Run(tmp, so, "e")
    try:
        start, end, m, times = r.paced(86400)
        c.check("sync state unknown: the system's times", len(times) == 3
                and all(start - 1 <= t <= end + 1 for t in times), str(times))
        cl = m.get("clock") or {}
        c.check("sync state unknown: system_synced null", "system_synced" in cl
                and cl["system_synced"] is None and cl.get("used") == "system", json.dumps(m))
        log = r.d.text()
        c.check("sync state unknown: said once",
                log.count("cannot read the system clock's sync state") == 1, log[-2000:])
    finally:
        r.stop()


def test_ntp_step(c, tmp, so, ft):
    """The boot without an RTC end to end: p1d's clock 2 days behind and unsynchronised; then
    NTP steps it to the right time and marks it synchronised. Every reading is stored at the
    meter's (right) time, in order, none at the old time, none lost."""
    stamp = os.path.join(tmp, "faketime")
    set_file(stamp, "-2d")
    r = Run(tmp, so, "0", fake=(ft, stamp))
    try:
        sent = []
        for i in range(6):
            t = int(time.time())
            r.send(t)
            sent.append(t)
            time.sleep(1.02)
        r.wait_seq(6)
        set_file(stamp, "+0")  # NTP steps the clock ...
        set_file(r.sync, "1")  # ... and the kernel calls it synchronised
        time.sleep(1.2)  # the store reads the sync state at most once a second
        for i in range(6):
            t = int(time.time())
            r.send(t)
            sent.append(t)
            time.sleep(1.02)
        m, times = r.finish(12)
        c.check("NTP step: every reading but the first stored at the meter's time",
                times == sent[1:], "stored %s\nsent   %s" % (times, sent))
        cl = m.get("clock") or {}
        c.check("NTP step: /api/meters clock used meter, system_synced true",
                cl.get("used") == "meter" and cl.get("system_synced") is True, json.dumps(m))
        log = r.d.text()
        c.check("NTP step: the switch to the meter's clock and back to synchronised are logged",
                "the system clock is not synchronised" in log
                and "the system clock is synchronised now" in log, log[-2000:])
    finally:
        r.stop()


def test_stale_steps(c, tmp, so, ft):
    """/healthz, p1_meter_up and age_s measure the age of the newest telegram. A system clock
    stepped forward (NTP after a boot without RTC) must not make a meter that just spoke stale,
    and one stepped back (a correction, a date set by hand) must not keep a silent meter fresh
    for the length of the step."""
    stamp = os.path.join(tmp, "faketime-stale")
    set_file(stamp, "+0")
    r = Run(tmp, so, "1", fake=(ft, stamp), extra=("--http-stale", "3s"))
    try:
        r.send(int(time.time()))
        r.wait_seq(1)
        set_file(stamp, "+1h")  # forward: the telegram of a moment ago is not an hour old
        st, _, body = http(r.port, "/healthz")
        m = meter_json(r.port)
        c.check("clock stepped 1 h forward: /healthz still 200", st == 200, body[:300])
        c.check("... and age_s under a second", (m.get("age_s") or 99) < 1.5, json.dumps(m))
        _, _, met = http(r.port, "/metrics")
        c.check("... and p1_meter_up 1", b'p1_meter_up{meter="home"} 1' in met,
                met.decode()[-600:])
        r.send(int(time.time()))
        r.wait_seq(2)
        set_file(stamp, "-1h")  # back two hours; then the meter falls silent
        time.sleep(4.5)
        st, _, body = http(r.port, "/healthz")
        m = meter_json(r.port)
        c.check("clock stepped back, meter silent 4.5 s: /healthz 503", st == 503, body[:300])
        c.check("... and age_s about 4.5", 3.5 < (m.get("age_s") or 0) < 8, json.dumps(m))
        _, _, met = http(r.port, "/metrics")
        c.check("... and p1_meter_up 0", b'p1_meter_up{meter="home"} 0' in met,
                met.decode()[-600:])
    finally:
        r.stop()


def test_future_retention(c, tmp):
    """Retention keeps raw readings 7 days behind a meter's newest. One telegram stamped a year
    ahead (clock=meter and a garbled digit) is not stored: the next one did not go on from it.
    A meter clock put a year ahead for good (two telegrams that agree) is stored, and must not
    make the past year "older than 7 days" and delete it: the newest counts up to the system
    clock's now."""
    now = int(time.time())
    cap = os.path.join(tmp, "two-days.txt")
    with open(cap, "wb") as f:
        for i in range(2 * 24 * 60):
            f.write(telegram(i, when=now - 2 * 86400 + 60 * i))
    db = os.path.join(tmp, "future.db")
    code, out, err = p1(["import", "--db", db, "--meter", "home", cap])
    before = raw_count(db)
    c.check("imported two days of readings", code == 0 and before == 2880, out + err)
    dongle = fake_dongle()
    d = Daemon(["--source", "home=tcp:127.0.0.1:%d:clock=meter" % dongle.getsockname()[1],
                "--db", db, "--listen", "127.0.0.1:0"], tmp)
    conn = None
    try:
        d.http_port()
        conn, _ = dongle.accept()
        conn.sendall(telegram(5000, when=now + 365 * 86400))
        d.wait_meter("home", lambda m: m.get("seq", 0) >= 1)
        conn.sendall(telegram(5001, when=now + 30))
        d.wait_meter("home", lambda m: m.get("seq", 0) >= 2)
        conn.sendall(telegram(5002, when=now + 400 * 86400))
        d.wait_meter("home", lambda m: m.get("seq", 0) >= 3)
        conn.sendall(telegram(5003, when=now + 400 * 86400 + 10))
        d.wait_meter("home", lambda m: m.get("seq", 0) >= 4)
        time.sleep(7)  # the first retention pass runs 5 s after the start
    finally:
        if conn:
            conn.close()
        dongle.close()
        d.stop()
    after = raw_count(db)
    con = sqlite3.connect(db)
    glitch = con.execute("SELECT ts FROM raw WHERE ts BETWEEN ? AND ?",
                         (now + 300 * 86400, now + 390 * 86400)).fetchall()
    con.close()
    # stored before: the first telegram a year ahead, which made the one after it "not newer"
    c.check("one telegram a year ahead, the next back: that one skipped, the next stored; a "
            "clock a year ahead for good: stored; the two days of raw readings are kept",
            after == 2882 and not glitch, "raw readings %d, before %d, %s" %
            (after, before, glitch))


def test_autumn_history(c, tmp):
    """A meter sending S then W times across the autumn change (2026-10-25, 02:00-02:59 twice),
    a telegram every 10 s, one of them twice: /api/history has the hour twice (+02:00, +01:00),
    a 25-hour day, no reading counted twice and no energy lost."""
    import datetime
    start = int(datetime.datetime(2026, 10, 24, 23, 30, tzinfo=datetime.timezone.utc).timestamp())
    cap = os.path.join(tmp, "autumn.txt")
    with open(cap, "wb") as f:
        for i in range(3 * 360):  # 23:30Z .. 02:30Z: 01:30 CEST .. 03:30 CET
            f.write(telegram(i, when=start + 10 * i))
            if i == 500:
                f.write(telegram(i, when=start + 10 * i))  # the same telegram again
    db = os.path.join(tmp, "autumn.db")
    code, out, err = p1(["import", "--db", db, "--meter", "home", cap])
    c.check("autumn capture imported, the repeated telegram skipped",
            code == 0 and raw_count(db) == 1080, out + err)
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        q = "/api/history?meter=home&fields=import_kwh&step="
        _, _, b = http(port, q + "1h&from=2026-10-25T01:00:00%2B02:00&to=2026-10-25T04:00:00%2B01:00")
        h = json.loads(b)
        c.check("1h: 02:00 twice, first summer then winter time",
                h.get("time", [])[:4] == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00",
                                          "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"],
                str(h)[:600])
        # the import register moves 1 Wh per telegram: 360 per full hour, none counted twice
        c.check("1h: 360 Wh in each of the two 02:00 hours",
                h.get("import_kwh", [])[1:3] == [0.36, 0.36], str(h.get("import_kwh")))
        _, _, b = http(port, q + "1d&from=2026-10-25T00:00:00%2B02:00&to=2026-10-26T00:00:00%2B01:00")
        day = json.loads(b)
        c.check("1d: one day holding every reading's energy (1079 Wh)",
                day.get("import_kwh") == [1.079], str(day)[:400])
    finally:
        d.stop()


def test_unit(c):
    """The shipped unit lets p1d read the sync state: no ProtectClock=yes (it refuses adjtimex
    even for reading), and adjtimex allowed after @privileged (which holds it) is denied."""
    with open(os.path.join(ROOT, "dist", "p1d.service")) as f:
        lines = [ln.strip() for ln in f if not ln.lstrip().startswith("#")]
    deny = [i for i, ln in enumerate(lines)
            if ln.startswith("SystemCallFilter=~") and "@privileged" in ln]
    allow = [i for i, ln in enumerate(lines) if ln.startswith("SystemCallFilter=")
             and "~" not in ln and "adjtimex" in ln.split("=", 1)[1].split()]
    c.check("p1d.service: no ProtectClock=yes", "ProtectClock=yes" not in lines,
            "\n".join(lines))
    c.check("p1d.service allows adjtimex after denying @privileged",
            bool(allow) and (not deny or max(allow) > max(deny)), "\n".join(lines))
    bounding = [ln for ln in lines if ln.startswith("CapabilityBoundingSet=")]
    c.check("p1d.service: no CAP_SYS_TIME (the clock cannot be set)",
            bounding and not any("CAP_SYS_TIME" in ln or "~" in ln for ln in bounding),
            "\n".join(lines))


def main():
    c = Checks("test_clock")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()
        return
    with tmpdir() as tmp:
        so = build_shim(tmp, "adjtimex", SYNC_SHIM)
        if not so:
            c.done()
            return
        test_unit(c)
        test_future_retention(c, tmp)
        test_autumn_history(c, tmp)
        test_unsynced_boot(c, tmp, so)
        test_lithuanian_meter(c, tmp, so)
        test_synced_keeps_rule(c, tmp, so)
        test_sync_unknown(c, tmp, so)
        ft = faketime_lib()
        if not ft:
            print("SKIP: libfaketime not installed (apt-get install faketime): the system clock "
                  "steps are not tested")
        else:
            test_ntp_step(c, tmp, so, ft)
            test_stale_steps(c, tmp, so, ft)
    c.done()


if __name__ == "__main__":
    main()
