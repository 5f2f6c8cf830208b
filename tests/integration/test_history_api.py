#!/usr/bin/env python3
"""test_history_api.py: /api/history, /api/summary and /api/prices over a store filled with
simulated telegrams across the spring DST change: every step, exact sums (15m == 1h == day ==
counter difference), gaps, bad parameters, bounded ranges, CSV, price uploads and costs."""
import csv
import datetime
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, mbus_telegram, meter_time, need_p1d,  # noqa: E402
                            tmpdir)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
P1 = os.environ.get("P1", os.path.join(ROOT, "build", "p1"))
TOKEN = "s3cret"


def req(port, path, method="GET", body=None, ctype=None, token=TOKEN):
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method=method)
    if token:
        r.add_header("Authorization", "Bearer " + token)
    if ctype:
        r.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
    except Exception as e:  # connection trouble counts as a failed check
        return 0, {}, str(e)


def get_json(port, path):
    code, _, body = req(port, path)
    try:
        return code, json.loads(body)
    except ValueError:
        return code, {"raw": body}


def raw_status(port, rest):
    """Status of a PUT /api/prices sent as raw bytes (headers end in `rest`)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(b"PUT /api/prices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Type: text/csv\r\nConnection: close\r\n" % TOKEN.encode() + rest)
        data = b""
        while b"\r\n" not in data:
            got = s.recv(4096)
            if not got:
                break
            data += got
        m = re.match(rb"HTTP/1\.[01] (\d+)", data)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0
    finally:
        s.close()


def raw_put(port, body):
    """PUT /api/prices with no Content-Type header at all: (status, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("PUT", "/api/prices")
        conn.putheader("Authorization", "Bearer " + TOKEN)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except OSError as e:
        return 0, str(e)
    finally:
        conn.close()


def unix(iso):
    return int(datetime.datetime.fromisoformat(iso).timestamp())


def wh(v):
    """kWh/m3 decimal from JSON (exact: parsed as Decimal) to Wh/dm3 integer; None stays None."""
    return None if v is None else int(Decimal(str(v)) * 1000)


def counters(path):
    """(unix, import Wh, export Wh, gas dm3) of every telegram in a capture, from the text."""
    out = []
    rx_t = re.compile(rb"0-0:1\.0\.0\((\d{12})([SW])\)")
    rx = {k: re.compile(p) for k, p in {
        "i1": rb"1-0:1\.8\.1\((\d+\.\d+)\*kWh\)", "i2": rb"1-0:1\.8\.2\((\d+\.\d+)\*kWh\)",
        "e1": rb"1-0:2\.8\.1\((\d+\.\d+)\*kWh\)", "e2": rb"1-0:2\.8\.2\((\d+\.\d+)\*kWh\)",
        "g": rb"0-\d:24\.2\.1\(\d{12}[SW]\)\((\d+\.\d+)\*m3\)"}.items()}
    data = open(path, "rb").read()
    for tg in data.split(b"\r\n!")[:-1]:
        m = rx_t.search(tg)
        if not m:
            continue
        s = m.group(1).decode()
        local = datetime.datetime(2000 + int(s[0:2]), int(s[2:4]), int(s[4:6]), int(s[6:8]),
                                  int(s[8:10]), int(s[10:12]))
        off = 2 if m.group(2) == b"S" else 1
        t = int((local - datetime.timedelta(hours=off)).replace(
            tzinfo=datetime.timezone.utc).timestamp())
        v = {k: int(Decimal(r.search(tg).group(1).decode()) * 1000) for k, r in rx.items()}
        out.append((t, v["i1"] + v["i2"], v["e1"] + v["e2"], v["g"]))
    return out


def powers(path):
    """(unix, net power W) of every telegram in a capture: 1-0:1.7.0 minus 1-0:2.7.0."""
    out = []
    rx_t = re.compile(rb"0-0:1\.0\.0\((\d{12})([SW])\)")
    rx_i = re.compile(rb"1-0:1\.7\.0\((\d+\.\d+)\*kW\)")
    rx_e = re.compile(rb"1-0:2\.7\.0\((\d+\.\d+)\*kW\)")
    for tg in open(path, "rb").read().split(b"\r\n!")[:-1]:
        m = rx_t.search(tg)
        if not m:
            continue
        s = m.group(1).decode()
        t = unix("20%s-%s-%sT%s:%s:%s%s" % (s[0:2], s[2:4], s[4:6], s[6:8], s[8:10], s[10:12],
                                             "+02:00" if m.group(2) == b"S" else "+01:00"))
        out.append((t, int(Decimal(rx_i.search(tg).group(1).decode()) * 1000) -
                    int(Decimal(rx_e.search(tg).group(1).decode()) * 1000)))
    return out


def counter_at(rows, t, col):
    """The counter of the last reading at or before t."""
    last = None
    for r in rows:
        if r[0] <= t:
            last = r[col]
        else:
            break
    return last


def round_half_away(num, den):
    q = (abs(num) + den // 2) // den
    return q if num >= 0 else -q


def main():
    c = Checks("test_history_api")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built" % P1)
        c.done()
    with tmpdir() as tmp:
        empty_store_checks(c, tmp)
        gap_checks(c, tmp)
        gas_capture_checks(c, tmp)
        minute_keep_checks(c, tmp)
        cap = os.path.join(tmp, "cap.txt")
        db = os.path.join(tmp, "h.db")
        with open(cap, "wb") as f:
            p = subprocess.run([P1, "sim", "--start", "2025-03-29T00:00", "--interval", "10",
                                "--count", "30000", "--fast"], stdout=f, timeout=120)
        c.check("p1 sim wrote the capture", p.returncode == 0 and os.path.getsize(cap) > 0)
        p = subprocess.run([P1, "import", "--db", db, "--meter", "home", cap],
                           capture_output=True, timeout=300)
        c.check("p1 import stored the capture", p.returncode == 0, p.stderr.decode()[-500:])
        rows = counters(cap)
        c.check("capture parsed", len(rows) == 30000, str(len(rows)))

        conf = os.path.join(tmp, "p1d.conf")
        with open(conf, "w") as f:
            f.write("[prices]\nimport_t1 = 0.21\nimport_t2 = 0.31\nexport = 0.05\n"
                    "gas = 1.25\ndaily = 0.5\nvalid_from = 2025-01-01\n")
        d = Daemon(["--config", conf, "--db", db, "--listen", "127.0.0.1:0", "--token", TOKEN],
                   tmp)
        try:
            port = d.http_port()
            c.check("p1d serves stored history alone (--db, no source)", port is not None,
                    d.text()[-1000:])
            if port is None:
                c.done()
            run_checks(c, port, rows, tmp)
        finally:
            code = d.stop()
            c.check("p1d exits cleanly", code == 0, "exit %s: %s" % (code, d.text()[-1500:]))
    c.done()


def gap_checks(c, tmp):
    """A quarter-hour after a gap in the readings holds the whole gap's energy: x4 it is no
    quarter-hour average, so demand_kw is null there and the capacity peak skips it. A quarter
    is whole when readings came within the minute before its start and before its end (gaps
    inside it do not matter: its energy is still the counter difference)."""
    db = os.path.join(tmp, "gap.db")
    # one meter from 00:00 to 14:30 with the readings of 05:00-08:00 (a 3-hour gap), 13:00-13:07
    # and 13:17-13:29 (gaps inside a quarter and across a boundary) cut out
    p = subprocess.run([P1, "sim", "--start", "2026-06-10T00:00", "--interval", "10", "--count",
                        str(87 * 60)], capture_output=True, timeout=60)
    cuts = [(unix("2026-06-10T%s:00+02:00" % a), unix("2026-06-10T%s:00+02:00" % b))
            for a, b in (("05:00", "08:00"), ("13:00", "13:07"), ("13:17", "13:29"))]
    rx_t = re.compile(rb"0-0:1\.0\.0\((\d{12})S\)")
    kept = []
    for tg in p.stdout.split(b"/")[1:]:
        m = rx_t.search(tg)
        st = m.group(1).decode() if m else "000000000000"
        t = unix("20%s-%s-%sT%s:%s:%s+02:00" % (st[0:2], st[2:4], st[4:6], st[6:8], st[8:10],
                                                 st[10:12]))
        if not any(a < t < b for a, b in cuts):
            kept.append(b"/" + tg)
    cap = os.path.join(tmp, "gaps.txt")
    with open(cap, "wb") as f:
        f.write(b"".join(kept))
    p = subprocess.run([P1, "import", "--db", db, "--meter", "gappy", cap],
                       capture_output=True, timeout=120)
    c.check("gaps: p1 import stored the capture with its gaps",
            p.returncode == 0 and 3000 < len(kept) < 5000, p.stderr.decode())
    rows = counters(cap)
    times = [r[0] for r in rows]

    def whole(q):
        return any(q - 60 < t <= q for t in times) and any(q + 840 < t <= q + 900 for t in times)

    day0 = unix("2026-06-10T00:00:00+02:00")
    expect = {}
    for q in range(day0, day0 + 86400, 900):
        e = counter_at(rows, q + 900, 1), counter_at(rows, q, 1)
        if whole(q) and None not in e:
            expect[q] = (e[0] - e[1]) * 4
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0", "--token", TOKEN,
                "--config", os.devnull], tmp)
    try:
        port = d.http_port()
        c.check("gaps: p1d serves the store", port is not None, d.text()[-1000:])
        if port is None:
            return
        code, j = get_json(port, "/api/history?meter=gappy&step=15m&from=2026-06-10&"
                                 "to=2026-06-11&fields=demand_kw,import_kwh")
        got = {unix(t): v for t, v in zip(j.get("time", []), j.get("demand_kw", []))}
        imp = dict(zip(j.get("time", []), j.get("import_kwh", [])))
        closing = "2026-06-10T07:45:00+02:00"  # holds the energy of 05:00-08:00
        gap_wh = counter_at(rows, unix("2026-06-10T08:00:00+02:00"), 1) - counter_at(
            rows, unix("2026-06-10T05:00:00+02:00"), 1)
        c.check("gaps: the quarter closing a 3-hour gap holds its energy but has no demand_kw",
                code == 200 and wh(imp.get(closing)) == gap_wh > 0 and got.get(unix(closing), 0)
                is None, "%s %s %s" % (imp.get(closing), gap_wh, got.get(unix(closing))))
        bad = [(q, got.get(q), expect.get(q)) for q in range(day0, day0 + 86400, 900)
               if (None if got.get(q) is None else wh(got[q])) != expect.get(q)]
        c.check("gaps: demand_kw of every quarter is import x 4 where readings bound it, else "
                "null (%d whole quarters)" % len(expect), code == 200 and len(got) == 96 and
                not bad and len(expect) > 30, str(bad[:5]))
        c.check("gaps: quarters with gaps inside or across a boundary are whole",
                unix("2026-06-10T13:00:00+02:00") in expect and
                unix("2026-06-10T13:15:00+02:00") in expect)
        peak = max(expect.values()) if expect else None
        code, j = get_json(port, "/api/history?meter=gappy&step=1d&from=2026-06-10&"
                                 "to=2026-06-11&fields=demand_kw")
        c.check("gaps: the day's demand_kw is its highest whole quarter",
                code == 200 and j.get("demand_kw") and wh(j["demand_kw"][0]) == peak,
                "%s vs %s" % (j, peak))
        code, s = get_json(port, "/api/summary?meter=gappy&period=month&at=2026-06-10")
        cp = s.get("capacity_peak") or {}
        c.check("gaps: the month's capacity peak is the highest whole quarter, not the gap's "
                "energy x 4, and no more than the highest power",
                code == 200 and wh(cp.get("kw")) == peak and peak is not None and
                peak <= s.get("peak_power_w", 0), str(s)[:400])
    finally:
        code = d.stop()
        c.check("gaps: p1d exits cleanly", code == 0, "exit %s" % code)


def gas_capture_checks(c, tmp):
    """A DSMR 4 meter reads its gas meter on the hour and sends the value from 4 minutes past:
    /api/history puts each hour's gas in the hour (and quarter hour, and day) it was used in, also
    the quarter hour p1d read nothing in, and the day's summary and gas cost count it there
    (docs/API.md, Gas, water and heat in the step they were measured in)."""
    db = os.path.join(tmp, "gas4.db")
    h22 = unix("2026-06-10T22:00:00+02:00")

    def value(h):  # m3 read on the hour h hours after 22:00: another amount each hour
        return 1234.5 + 0.1 * h + 0.01 * h * h

    tgs = []
    t = h22 + 1800
    i = 0
    while t < h22 + 3 * 3600 + 1800:  # 22:30 .. 01:30, p1d down 23:44 .. 00:06
        if not (h22 + 6240 <= t < h22 + 7560):
            h = (t - h22) // 3600
            if t - (h22 + 3600 * h) < 240:
                h -= 1
            mb = ("0-1:24.1.0(003)\r\n0-1:96.1.0(4730303339303031363532303530323136)\r\n"
                  "0-1:24.2.1(%s)(%09.3f*m3)\r\n" % (meter_time(h22 + 3600 * h), value(h)))
            tgs.append(mbus_telegram(i % 1000, t, mb))
            i += 1
        t += 10
    cap = os.path.join(tmp, "gas4.txt")
    with open(cap, "wb") as f:
        f.write(b"".join(tgs))
    p = subprocess.run([P1, "import", "--db", db, "--meter", "g4", cap], capture_output=True,
                       timeout=120)
    c.check("gas capture: p1 import stored the DSMR 4 capture", p.returncode == 0,
            p.stderr.decode()[-500:])
    conf = os.path.join(tmp, "gas4.conf")
    with open(conf, "w") as f:
        f.write("[prices]\ngas = 1.25\nvalid_from = 2026-01-01\n")
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0", "--token", TOKEN, "--config", conf], tmp)
    try:
        port = d.http_port()
        c.check("gas capture: p1d serves the store", port is not None, d.text()[-1000:])
        if port is None:
            return
        used = [round(value(h + 1) - value(h), 3) for h in range(3)]
        code, j = get_json(port, "/api/history?meter=g4&step=1h&from=2026-06-10T22:00%2B02:00&"
                                 "to=2026-06-11T02:00%2B02:00&fields=gas_m3")
        c.check("gas capture: each hour holds the gas used in it, not the hour after",
                code == 200 and j.get("gas_m3") == used + [0], str(j)[:300])
        code, j = get_json(port, "/api/history?meter=g4&step=15m&from=2026-06-10T23:30%2B02:00&"
                                 "to=2026-06-11T00:15%2B02:00&fields=gas_m3,import_kwh")
        got = dict(zip(j.get("time", []), zip(j.get("gas_m3", []), j.get("import_kwh", []))))
        c.check("gas capture: the quarter before midnight, without a reading (p1d down), holds "
                "its gas and no import",
                code == 200 and got.get("2026-06-10T23:45:00+02:00") == (used[1], None) and
                got.get("2026-06-11T00:00:00+02:00", (None,))[0] in (0, None), str(j)[:400])
        code, j = get_json(port, "/api/summary?meter=g4&period=day&at=2026-06-10")
        cost = (j.get("cost_eur") or {}).get("gas")
        c.check("gas capture: the day holds its own gas, the last hour's included, and its cost",
                code == 200 and j.get("gas_m3") == round(used[0] + used[1], 3) and
                cost == round((used[0] + used[1]) * 1.25, 6), str(j)[:400])
        code, j = get_json(port, "/api/summary?meter=g4&period=day&at=2026-06-11")
        c.check("gas capture: the next day only its own", code == 200 and
                j.get("gas_m3") == used[2], str(j)[:300])
    finally:
        code = d.stop()
        c.check("gas capture: p1d exits cleanly", code == 0, "exit %s" % code)


def minute_keep_checks(c, tmp):
    """Retention of the 15-minute tier (minute_keep) cuts at a whole hour: a summary takes an
    hour's quarters where they start and the hourly row before them, so a cut at 10:21:40 left
    the quarters 10:30 and 10:45 and priced neither those before them nor the hour's row."""
    db = os.path.join(tmp, "keep.db")
    sim = subprocess.Popen([P1, "sim", "--start", "2025-06-10T00:00:00+02:00", "--interval", "10",
                            "--count", "8651", "--fast"], stdout=subprocess.PIPE)
    p = subprocess.run([P1, "import", "-q", "--db", db, "--meter", "home", "-"],
                       stdin=sim.stdout, capture_output=True, timeout=120)
    sim.stdout.close()
    sim.wait(60)
    c.check("minute_keep: p1 import stored a simulated day", p.returncode == 0,
            p.stderr.decode()[-500:])
    conf = os.path.join(tmp, "keep.conf")
    with open(conf, "w") as f:  # the newest reading is 00:01:40: the cut is at 10:21:40
        f.write("[store]\nminute_keep = 49200s\n[prices]\nimport = 0.25\nexport = 0.25\n"
                "valid_from = 2025-01-01\n")
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0", "--token", TOKEN, "--config", conf], tmp)
    try:
        port = d.http_port()
        c.check("minute_keep: p1d serves the store", port is not None, d.text()[-1000:])
        if port is None:
            return
        first = None
        for _ in range(100):  # retention runs 5 s after the start, 6 hours a slice
            con = sqlite3.connect(db, timeout=10)
            try:
                first = con.execute("SELECT min(ts) FROM agg_15m").fetchone()[0]
            finally:
                con.close()
            if first and first >= unix("2025-06-10T10:00:00+02:00"):
                break
            time.sleep(0.2)
        c.check("minute_keep: the quarter hours before the cut are gone",
                first is not None and first >= unix("2025-06-10T10:00:00+02:00"), str(first))
        code, s = get_json(port, "/api/summary?meter=home&period=day&at=2025-06-10")
        net = Decimal(str(s.get("import_kwh"))) - Decimal(str(s.get("export_kwh")))
        got = Decimal(str((s.get("cost_eur") or {}).get("energy")))
        c.check("minute_keep: the day's energy cost is its net energy at the price",
                code == 200 and got == (net * Decimal("0.25")).quantize(Decimal("0.000001")),
                "%s vs net %s kWh" % (got, net))
    finally:
        code = d.stop()
        c.check("minute_keep: p1d exits cleanly", code == 0, "exit %s" % code)


def empty_store_checks(c, tmp):
    """A history-only p1d whose store is new: nothing to show is 204, as /api/now says it."""
    d = Daemon(["--db", os.path.join(tmp, "empty.db"), "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        c.check("p1d on an empty store starts", port is not None, d.text()[-1000:])
        if port is None:
            return
        for path in ("/api/history", "/api/history?step=1h&format=csv", "/api/summary?period=month"):
            code, hdrs, body = req(port, path, token=None)
            c.check("empty store, no meter: %s is 204 without a body" % path,
                    code == 204 and body == "" and "Content-Type" not in hdrs,
                    "%s %s %s" % (code, hdrs.get("Content-Type"), body[:200]))
        code, j = get_json(port, "/api/history?meter=garage")
        c.check("empty store: an unknown meter is still 404 not_found",
                code == 404 and j.get("error", {}).get("code") == "not_found", "%s %s" % (code, j))
    finally:
        code = d.stop()
        c.check("p1d on an empty store exits cleanly", code == 0, "exit %s" % code)


def run_checks(c, port, rows, tmp):
    # ---- every step -------------------------------------------------------------------------
    steps = {"raw": ("2025-03-30T01:00", "2025-03-30T04:00"), "1m": ("2025-03-30", "2025-03-31"),
             "15m": ("2025-03-30", "2025-03-31"), "1h": ("2025-03-29", "2025-04-02"),
             "1d": ("2025-03-01", "2025-04-05"), "1mo": ("2025-01-01", "2025-06-01"),
             "1y": ("2024-01-01", "2027-01-01")}
    got = {}
    for step, (frm, to) in steps.items():
        code, j = get_json(port, "/api/history?meter=home&from=%s&to=%s&step=%s" % (frm, to, step))
        ok = code == 200 and j.get("step") == step and isinstance(j.get("time"), list)
        lens = {k: len(v) for k, v in j.items() if isinstance(v, list)}
        ok = ok and len(set(lens.values())) == 1 and j.get("points") == len(j["time"])
        c.check("GET history step=%s: 200, columns of equal length" % step, ok,
                "%s %s" % (code, str(j)[:300]))
        got[step] = j
    c.check("raw over the DST jump: 3 h local = 2 h of readings (720 at 10 s)",
            got["raw"].get("points") in (719, 720, 721), str(got["raw"].get("points")))
    c.check("15m on the 23-hour day: 92 steps", len(got["15m"].get("time", [])) == 92)
    c.check("1m on the 23-hour day: 1380 steps", len(got["1m"].get("time", [])) == 1380)
    c.check("times carry offsets (+01:00 then +02:00)",
            got["15m"]["time"][0] == "2025-03-30T00:00:00+01:00" and
            got["15m"]["time"][-1] == "2025-03-30T23:45:00+02:00", str(got["15m"]["time"][-1:]))
    c.check("1d steps are local days (the DST day starts at +01:00, the next at +02:00)",
            "2025-03-30T00:00:00+01:00" in got["1d"]["time"] and
            "2025-03-31T00:00:00+02:00" in got["1d"]["time"])

    # ---- exact sums ---------------------------------------------------------------------------
    day0, day1 = unix("2025-03-30T00:00:00+01:00"), unix("2025-03-31T00:00:00+02:00")
    q = got["15m"]
    h = [x for x in zip(got["1h"]["time"], got["1h"]["import_kwh"], got["1h"]["export_kwh"],
                        got["1h"]["gas_m3"]) if day0 <= unix(x[0]) < day1]
    dd = [x for x in zip(got["1d"]["time"], got["1d"]["import_kwh"], got["1d"]["export_kwh"],
                         got["1d"]["gas_m3"]) if unix(x[0]) == day0]
    for k, col, idx in (("import_kwh", 1, 1), ("export_kwh", 2, 2), ("gas_m3", 3, 3)):
        s15 = sum(wh(v) or 0 for v in q[k])
        s1h = sum(wh(x[idx]) or 0 for x in h)
        sday = wh(dd[0][idx]) if dd else None
        diff = counter_at(rows, day1, col) - counter_at(rows, day0, col)
        c.check("%s on 2025-03-30: 15m sum == 1h sum == day == counter difference (%s)"
                % (k, diff), s15 == s1h == sday == diff, "%s %s %s %s" % (s15, s1h, sday, diff))
    c.check("1h on the DST day: 23 hours", len(h) == 23, str(len(h)))
    m1d = [wh(v) or 0 for t, v in zip(got["1d"]["time"], got["1d"]["import_kwh"])
           if unix(t) < unix("2025-04-01T00:00:00+02:00")]
    march = [wh(v) for t, v in zip(got["1mo"]["time"], got["1mo"]["import_kwh"])
             if t.startswith("2025-03")]
    c.check("sum of March's days == the 1mo step", march and sum(m1d) == march[0],
            "%s %s" % (sum(m1d), march))
    y = [wh(v) or 0 for v in got["1y"]["import_kwh"]]
    c.check("the 1y steps add up to the months", sum(y) == sum(wh(v) or 0 for v in
                                                                got["1mo"]["import_kwh"]))

    # ---- gaps and empty ranges ----------------------------------------------------------------
    code, j = get_json(port, "/api/history?from=2024-01-01&to=2024-01-02&step=1h")
    c.check("a range without data: 200, 24 steps of nulls",
            code == 200 and len(j.get("time", [])) == 24 and
            all(v is None for v in j.get("import_kwh", [0])), str(j)[:300])
    code, j = get_json(port, "/api/history?from=2025-03-28T21:00&to=2025-03-29T02:00&step=1h")
    c.check("steps before the first reading are null gaps",
            code == 200 and j["import_kwh"][:2] == [None, None] and j["import_kwh"][-1] is not None,
            str(j.get("import_kwh")))
    code, j = get_json(port, "/api/history?from=2025-03-30T10:00&to=2025-03-30T10:10&step=raw"
                              "&fields=import_kwh,power_w_mean")
    c.check("raw with fields=: only time and the fields asked",
            code == 200 and set(k for k, v in j.items() if isinstance(v, list)) ==
            {"time", "import_kwh", "power_w_mean"} and len(j["time"]) in (59, 60, 61), str(j)[:200])
    code, j = get_json(port, "/api/history?to=2025-03-30T12:00")
    c.check("defaults: first meter, 24 h before to, step=auto (1m)",
            code == 200 and j.get("meter") == "home" and j.get("step") == "1m" and
            len(j["time"]) == 1440, str(j)[:200])
    code, j = get_json(port, "/api/history?from=2025-03-29&to=2025-04-02&fields=import_kwh")
    c.check("step=auto for 4 days: 15m", code == 200 and j.get("step") == "15m", str(j)[:200])
    code, j = get_json(port, "/api/history?from=2025-03-30T00:00Z&to=1743300000&step=auto")
    c.check("unix seconds and Z accepted; auto picks raw for <= 2 h", code == 200 and
            j.get("step") == "raw", str(j)[:200])

    # ---- bad parameters and huge ranges -------------------------------------------------------
    bad = [("from=yesterday", "from:"), ("to=2025-13-01", "to:"), ("step=2h", "step:"),
           ("fields=import_kwh,bogus", "'bogus'"), ("format=xml", "format:"),
           ("from=2025-03-30&to=2025-03-29", "before"), ("meter=bad%20name", "meter:")]
    for qs, needle in bad:
        code, j = get_json(port, "/api/history?" + qs)
        e = j.get("error", {})
        c.check("bad %s -> 400 naming it" % qs, code == 400 and e.get("code") == "bad_parameter"
                and needle in e.get("message", ""), "%s %s" % (code, j))
    code, j = get_json(port, "/api/history?meter=nope")
    c.check("unknown meter -> 404", code == 404 and j.get("error", {}).get("code") == "not_found",
            str(j))
    code, j = get_json(port, "/api/history?from=2015-01-01&to=2025-01-01&step=1m")
    msg = j.get("error", {}).get("message", "")
    c.check("huge range -> 400 that says how to ask", code == 400 and "use step=" in msg and
            "shorter range" in msg, msg)
    code, j = get_json(port, "/api/history?from=2015-01-01&to=2025-01-01&step=1d&fields=import_kwh")
    c.check("10 years at 1d is fine", code == 200 and len(j.get("time", [])) > 3600)
    # every field over 96,000 quarter-hours would be a ~25 MB response: a 400 that says how to ask
    code, hd, body = req(port, "/api/history?from=2020-01-01&to=2022-09-27&step=15m")
    try:
        msg = json.loads(body).get("error", {}).get("message", "")
    except ValueError:
        msg = body[:200]
    c.check("all fields x 96,000 steps -> 400 naming fields, step and range, small body",
            code == 400 and "fewer fields" in msg and "larger step" in msg and "shorter range"
            in msg and len(body) < 2000, "%s %s" % (code, msg))
    code, j = get_json(port, "/api/history?from=1970-01-02&to=2199-12-31&step=1d"
                             "&fields=import_kwh,export_kwh,gas_m3")
    c.check("three fields over the same range are fine", code == 200 and
            len(j.get("time", [])) > 80000, str(code))
    code, _, _ = req(port, "/api/history", token=None)
    c.check("history needs the token", code == 401)
    code, hd, _ = req(port, "/api/history", method="POST", body=b"x")
    c.check("POST /api/history -> 405", code == 405 and "GET" in hd.get("Allow", ""), str(hd))

    # ---- CSV ----------------------------------------------------------------------------------
    code, hd, body = req(port, "/api/history?from=2025-03-30&to=2025-03-31&step=1h&format=csv"
                               "&fields=import_kwh,export_kwh,gas_m3")
    rws = list(csv.reader(io.StringIO(body)))
    c.check("CSV: 200 text/csv with a file name", code == 200 and
            hd.get("Content-Type", "").startswith("text/csv") and
            ".csv" in hd.get("Content-Disposition", ""), str(hd))
    c.check("CSV: header + 23 rows of 4 columns",
            rws and rws[0] == ["time", "import_kwh", "export_kwh", "gas_m3"] and len(rws) == 24
            and all(len(r) == 4 for r in rws), str(rws[:2]))
    c.check("CSV values equal the JSON ones",
            [wh(r[1]) for r in rws[1:]] == [wh(x[1]) for x in h], "")
    code, hd, body = req(port, "/api/history?from=2024-01-01&to=2024-01-01T03:00&step=1h&format=csv")
    rws = list(csv.reader(io.StringIO(body)))
    c.check("CSV of a range without data: rows with empty cells",
            code == 200 and len(rws) == 4 and rws[1][1:] and all(v == "" for v in rws[1][1:]),
            str(rws))

    # ---- prices -------------------------------------------------------------------------------
    code, j = get_json(port, "/api/prices?from=2025-03-29&to=2025-04-02")
    c.check("GET prices: the configured fixed period",
            code == 200 and len(j.get("fixed", [])) == 1 and j["fixed"][0]["import_t1"] == 0.21 and
            j["fixed"][0]["daily"] == 0.5 and j.get("power") == [], str(j)[:300])
    # Hourly dynamic prices for 2025-03-30 (23 hours), in UTC times.
    prices = {}
    lines = ["time;price"]
    t = day0
    i = 0
    while t < day1:
        p = Decimal("0.%02d" % (5 + (i * 7) % 40)) + Decimal("0.000123")
        if i == 5:
            p = Decimal("-0.012")  # negative prices happen
        prices[t] = int(p * 1000000)
        lines.append("%s;%s" % (datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
                                .strftime("%Y-%m-%dT%H:%M:%SZ"), str(p).replace(".", ",")))
        t += 3600
        i += 1
    good = ("\n".join(lines) + "\n").encode()
    bad_csv = good.replace(b"0,12", b"0,1x2", 1) if b"0,12" in good else good + b"2025-03-31T00:00Z;x\n"
    code, _, body = req(port, "/api/prices", method="PUT", body=bad_csv, ctype="text/csv")
    err = json.loads(body).get("error", {}) if code == 400 else {}
    c.check("PUT bad CSV -> 400 naming the line", code == 400 and
            re.match(r"line \d+: price", err.get("message", "")) is not None, body)
    code, j = get_json(port, "/api/prices?from=2025-03-29&to=2025-04-02")
    c.check("... and nothing changed", code == 200 and j.get("power") == [], str(j)[:200])
    code, _, body = req(port, "/api/prices", method="PUT", body=b'[{"time":"2025-03-30","price":1}',
                        ctype="application/json")
    c.check("PUT bad JSON -> 400 naming the line", code == 400 and "line 1" in body, body)
    code, _, body = req(port, "/api/prices", method="PUT", body=good, ctype="application/json")
    c.check("PUT CSV labelled JSON -> 400", code == 400, body)
    code, _, _ = req(port, "/api/prices", method="PUT", body=good, ctype="text/csv", token="wrong")
    c.check("PUT without the right token -> 401", code == 401)
    c.check("PUT announcing 5 MB -> 413 before the body", raw_status(
        port, b"Content-Length: %d\r\n\r\n" % (5 << 20)) == 413)
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(80)) + b"0\r\n\r\n"
    c.check("PUT of 5 MB chunked -> 413", raw_status(
        port, b"Transfer-Encoding: chunked\r\n\r\n" + body) == 413)
    code, j = get_json(port, "/api/prices?from=2025-03-29&to=2025-04-02")
    c.check("... still nothing changed", code == 200 and j.get("power") == [])
    code, _, body = req(port, "/api/prices", method="PUT", body=good, ctype="text/csv")
    c.check("PUT good CSV -> 200 with the count", code == 200 and
            json.loads(body).get("imported") == 23, body)
    code, j = get_json(port, "/api/prices?from=2025-03-30&to=2025-03-31")
    c.check("GET prices lists them", code == 200 and len(j.get("power", [])) == 23 and
            j["power"][5]["price"] == -0.012, str(j)[:300])
    code, _, body = req(port, "/api/prices?kind=gas", method="PUT",
                        body=b'{"prices":[{"time":"2025-03-31","price":"1.5"}]}',
                        ctype="application/json")
    c.check("PUT gas JSON {\"prices\":[...]} -> 200", code == 200, body)
    # QA: any Content-Type was parsed; an image is no price list
    code, hd, body = req(port, "/api/prices", method="PUT", body=good, ctype="image/png")
    c.check("PUT image/png -> 415 JSON naming the type", code == 415 and "image/png" in body and
            json.loads(body).get("error", {}).get("code") == "unsupported_media_type", body)
    xml = (b'<?xml version="1.0" encoding="utf-8"?>\n<Publication_MarketDocument xmlns="urn:x">'
           b'<TimeSeries><currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>'
           b'MWH</price_Measure_Unit.name><curveType>A03</curveType><Period><timeInterval><start>'
           b'2025-04-01T22:00Z</start><end>2025-04-02T00:00Z</end></timeInterval><resolution>PT15M'
           b'</resolution><Point><position>1</position><price.amount>80</price.amount></Point>'
           b'<Point><position>5</position><price.amount>-12.5</price.amount></Point></Period>'
           b'</TimeSeries></Publication_MarketDocument>')
    code, _, body = req(port, "/api/prices", method="PUT", body=xml, ctype="application/xml")
    code2, j = get_json(port, "/api/prices?from=2025-04-02&to=2025-04-03")
    p = j.get("power", [])
    c.check("PUT ENTSO-E's XML -> 200; EUR/MWh per kWh, the points left out filled (A03)",
            code == 200 and json.loads(body).get("imported") == 8 and code2 == 200 and
            [x["price"] for x in p[:8]] == [0.08] * 4 + [-0.0125] * 4 and
            p[0]["time"] == "2025-04-02T00:00:00+02:00", body + str(p)[:300])
    code, _, body = req(port, "/api/prices", method="PUT", body=good, ctype="text/xml")
    c.check("PUT text/xml with a CSV body -> 400 naming the mismatch",
            code == 400 and "Content-Type is XML" in body, body)
    # media type names have no case (RFC 9110, 8.3.1): the mismatch is the same in capitals
    far = b'[{"time":"2031-01-01T00:00Z","price":0.1}]'
    for ctype, b, said in (("Text/XML", good, "Content-Type is XML"),
                           ("Application/JSON", good, "Content-Type is JSON"),
                           ("TEXT/CSV; charset=utf-8", far, "Content-Type is CSV")):
        code, _, body = req(port, "/api/prices", method="PUT", body=b, ctype=ctype)
        c.check("PUT %s with a body of another type -> 400 naming the mismatch" % ctype,
                code == 400 and said in body, body)
    code, _, body = req(port, "/api/prices", method="PUT", body=good,
                        ctype="Text/Plain; charset=utf-8")
    c.check("PUT text/plain; charset=utf-8 -> 200", code == 200, body)
    code, _, body = req(port, "/api/prices", method="PUT", body=good)
    c.check("PUT with urllib's default type (form-urlencoded) is sniffed -> 200", code == 200, body)
    code, body = raw_put(port, good)
    c.check("PUT without Content-Type is sniffed -> 200", code == 200, body)
    code, hd, _ = req(port, "/api/prices", method="OPTIONS", token=None)
    c.check("CORS preflight of /api/prices allows PUT and Content-Type",
            code == 204 and "PUT" in hd.get("Access-Control-Allow-Methods", "") and
            "Content-Type" in hd.get("Access-Control-Allow-Headers", ""), str(hd))
    code, hd, _ = req(port, "/api/history", method="OPTIONS", token=None)
    c.check("... other paths do not", code == 204 and
            "PUT" not in hd.get("Access-Control-Allow-Methods", "PUT"), str(hd))

    # ---- costs --------------------------------------------------------------------------------
    code, j15 = get_json(port, "/api/history?from=2025-03-30&to=2025-03-31&step=15m"
                               "&fields=import_kwh,export_kwh,gas_m3,cost_eur")
    code2, j1h = get_json(port, "/api/history?from=2025-03-30&to=2025-03-31&step=1h"
                                "&fields=cost_eur")
    code3, s = get_json(port, "/api/summary?meter=home&period=day&at=2025-03-30T12:00")
    energy = gas = 0
    for tt, imp, exp, g in zip(j15["time"], j15["import_kwh"], j15["export_kwh"], j15["gas_m3"]):
        hour = unix(tt) - unix(tt) % 3600
        pr = prices[hour]
        energy += round_half_away(wh(imp) * pr - wh(exp) * pr, 1000)
        gas += round_half_away(wh(g) * 1250000, 1000)
    fixed = 500000  # the daily charge, pro rata over 92 quarter-hours with data = all of it
    ce = s.get("cost_eur") or {}
    c.check("summary: energy cost == hand computation from 15m steps and hourly prices",
            code3 == 200 and wh(ce.get("energy")) is not None and
            int(Decimal(str(ce["energy"])) * 1000000) == energy,
            "%s vs %s" % (ce.get("energy"), Decimal(energy) / 1000000))
    c.check("summary: gas at the fixed price, fixed = the daily charge",
            int(Decimal(str(ce.get("gas", 0))) * 1000000) == gas and
            int(Decimal(str(ce.get("fixed", 0))) * 1000000) == fixed, str(ce))
    c.check("summary: total = energy + gas + fixed",
            int(Decimal(str(ce.get("total", 0))) * 1000000) == energy + gas + fixed, str(ce))
    sum15 = sum(Decimal(str(v)) for v in j15["cost_eur"] if v is not None)
    sum1h = sum(Decimal(str(v)) for v in j1h["cost_eur"] if v is not None)
    c.check("cost: sum of 15m == sum of 1h == the summary total (exact)",
            code == 200 and code2 == 200 and sum15 == sum1h == Decimal(str(ce.get("total"))),
            "%s %s %s" % (sum15, sum1h, ce.get("total")))
    c.check("summary: energy per tariff and net", s.get("import_kwh") == float(dd_val(s)) and
            "net_kwh" in s and s.get("peak_power_w") is not None, str(s)[:400])
    day = [p for t, p in powers(os.path.join(tmp, "cap.txt"))
           if unix("2025-03-30T00:00:00+01:00") <= t < unix("2025-03-31T00:00:00+02:00")]
    c.check("summary: peak_power_w is the day's highest net power, peak_export_w its highest "
            "export (the lowest net power, turned positive)",
            day and min(day) < 0 and s.get("peak_power_w") == max(day) and
            s.get("peak_export_w") == -min(day), "%s %s %s" % (
                s.get("peak_power_w"), s.get("peak_export_w"), day and (max(day), min(day))))
    # a step that `to` cuts is whole: its energy (as the store gives it) and its cost alike
    for step, cut, whole in (("1h", "T10:20", "T11:00"), ("1d", "T06:00", ""),
                             ("15m", "T10:00:25", "T10:15")):
        base = "/api/history?from=2025-03-30T10:00&step=%s&fields=import_kwh,gas_m3,cost_eur&to=" \
            % step
        if step == "1d":
            base = base.replace("T10:00", "")
        code, jc = get_json(port, base + "2025-03-30" + cut)
        code2, jw = get_json(port, base + ("2025-03-30" + whole if whole else "2025-03-31"))
        c.check("history step %s, to cutting the step: energy and cost of the whole step" % step,
                code == code2 == 200 and jc.get("time") == jw.get("time") and
                jc.get("import_kwh") == jw.get("import_kwh") and jc.get("gas_m3") == jw.get(
                    "gas_m3") and jc.get("cost_eur") == jw.get("cost_eur") and
                jc.get("cost_eur", [None])[0] is not None, "%s vs %s" % (jc, jw))
    # a raw point's cost is that of its energy since the reading before it, also the first
    # point of a response (it used to lack its share of the daily charge)
    code, wide = get_json(port, "/api/history?from=2025-03-30T10:00&to=2025-03-30T10:30&step=raw"
                                "&fields=import_kwh,cost_eur")
    t1 = wide.get("time", [None, None])[1] if code == 200 else None
    code2, narrow = get_json(port, "/api/history?from=%s&to=2025-03-30T10:30&step=raw"
                                   "&fields=import_kwh,cost_eur" % urllib.parse.quote(t1 or ""))
    c.check("raw: the first point of a response costs what it costs in a wider one",
            t1 and code2 == 200 and narrow.get("time", [None])[0] == t1 and
            narrow["cost_eur"][0] == wide["cost_eur"][1] and wide["cost_eur"][1] is not None,
            "%s vs %s" % (str(wide)[:300], str(narrow)[:300]))
    code, s = get_json(port, "/api/summary?period=month&at=2025-03-15")
    cp = s.get("capacity_peak") or {}
    c.check("summary month: capacity peak (computed from quarter-hours)",
            code == 200 and cp.get("source") == "computed" and cp.get("kw", 0) > 0 and
            cp.get("time", "").startswith("2025-03"), str(s)[:400])
    code, s = get_json(port, "/api/summary?period=year&at=2025-06-01")
    c.check("summary year: 200 with costs", code == 200 and s.get("cost_eur") is not None and
            s.get("from") == "2025-01-01T00:00:00+01:00", str(s)[:300])
    code, s = get_json(port, "/api/summary?period=week")
    c.check("summary period=week -> 400", code == 400 and "period" in str(s))
    code, j = get_json(port, "/api/history?from=2025-03-29&to=2025-04-02&step=1d&fields=cost_eur,"
                             "demand_kw")
    c.check("1d with cost_eur and demand_kw", code == 200 and all(
        v is not None for v in j.get("cost_eur", [None])) and all(
        v is not None and v > 0 for v in j.get("demand_kw", [None])), str(j)[:300])

    # ---- p1 prices on the same database -------------------------------------------------------
    pf = os.path.join(tmp, "bad.csv")
    with open(pf, "w") as f:
        f.write("2025-04-01T00:00Z,0.1\n2025-04-01T01:00Z,zero\n")
    p = subprocess.run([P1, "prices", "import", "--db", os.path.join(tmp, "h.db"), pf],
                       capture_output=True, timeout=30)
    c.check("p1 prices import of a bad file: exit 1 naming line 2",
            p.returncode == 1 and b"line 2" in p.stderr, p.stderr.decode())
    with open(pf, "w") as f:
        f.write('[{"time":"2025-04-01T00:00Z","price":0.1},{"time":"2025-04-01T01:00Z","price":0.2}]')
    p = subprocess.run([P1, "prices", "import", "--db", os.path.join(tmp, "h.db"), pf],
                       capture_output=True, timeout=30)
    c.check("p1 prices import while p1d runs", p.returncode == 0 and b"imported 2" in p.stdout,
            p.stderr.decode())
    p = subprocess.run([P1, "prices", "list", "--db", os.path.join(tmp, "h.db"), "--from",
                        "2025-04-01", "--to", "2025-04-02"], capture_output=True, timeout=30)
    c.check("p1 prices list shows them", p.returncode == 0 and
            b"power,2025-04-01T03:00:00+02:00,2025-04-01T04:00:00+02:00,0.200000" in p.stdout,
            p.stdout.decode()[-500:])


def dd_val(s):
    return s.get("import_kwh")


if __name__ == "__main__":
    main()
