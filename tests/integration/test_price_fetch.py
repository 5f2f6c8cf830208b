#!/usr/bin/env python3
"""test_price_fetch.py: [prices] fetch_url and fetch_gas_url. p1d downloads today's and
tomorrow's dynamic prices from a price server (here a real HTTP server on 127.0.0.1 that answers
as EnergyZero's REST API and as a CSV service do) and stores them, as an upload would:

- the placeholders ({from}, {to}, {from_local}, {from_date}, {to_date}, {from_unix}, ...) are
  filled with today's local midnight and the day after tomorrow's, in the forms the docs promise;
- the schedule: tomorrow's fetch_after when tomorrow's prices are in, every 30 minutes while they
  are not; gas with fetch_gas_day_start;
- bad replies (an HTTP error, a web page, prices in EUR/MWh, a reply over 4 MiB, no server, a
  server that never answers) are logged with their reason, retried with backoff (the retry that
  works is logged too), p1d keeps serving and the prices already stored stay;
- an API token in the URL's query never reaches the log;
- SIGHUP with a new URL fetches at once, an unchanged one does not;
- a system clock set while p1d runs (a Raspberry Pi without a real-time clock that starts with
  last shutdown's time until NTP answers; a clock set back) is noticed within 15 s and the right
  days are fetched then, not a day later (the clock is moved by an LD_PRELOAD shim);
- --check-config refuses a bad URL, an unknown placeholder, a bad time, a fetch without a store."""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (CLOCK_SHIM, Checks, Daemon, build_shim, free_port, http, need_p1d,  # noqa: E402
                            run, tmpdir, wait_for, write_conf)
from price_helpers import ZONE, PriceServer, days, utc  # noqa: E402
from store_helpers import P1  # noqa: E402

T = Checks("test_price_fetch")
need_p1d(T)


def spot(i):
    """The test's spot price of hour i (EUR/kWh): varied, one negative."""
    return -0.01234 if i == 3 else round(0.05 + 0.0123 * (i % 24), 5)


def energyzero(f, t, hours=None):
    """An EnergyZero-style reply: {"Prices":[{"price":..,"readingDate":..Z}]} for [f, t)."""
    rows, x, i = [], f.astimezone(datetime.timezone.utc), 0
    end = t.astimezone(datetime.timezone.utc)
    while x < end and (hours is None or i < hours):
        rows.append({"price": spot(i), "readingDate": x.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
        x += datetime.timedelta(hours=1)
        i += 1
    return json.dumps({"Prices": rows, "intervalType": 4}).encode()


def ez_answer(q):
    """EnergyZero's answer for the fromDate/tillDate the request asks for."""
    f = datetime.datetime.fromisoformat(q["fromDate"][0].replace("Z", "+00:00"))
    t = datetime.datetime.fromisoformat(q["tillDate"][0].replace("Z", "+00:00"))
    return 200, "application/json; charset=utf-8", energyzero(f, t)


EZ_QUERY = "?fromDate={from}&tillDate={to}&interval=4&usageType=1&inclBtw=false"


def start(tmp, name, conf, args=()):
    path = os.path.join(tmp, name + ".conf")
    write_conf(path, conf)
    d = Daemon(["--config", path, "--db", os.path.join(tmp, name + ".db"),
                "--listen", "127.0.0.1:0"] + list(args), tmp)
    port = d.http_port()
    return d, port, path


def power_rows(port):
    s, _, b = http(port, "/api/prices")
    return json.loads(b)["power"] if s == 200 else None


def test_energyzero(tmp, srv):
    """The common case: EnergyZero's REST API, today and tomorrow in one request."""
    srv.routes["/v1/energyprices"] = [ez_answer]
    d, port, _ = start(tmp, "ez", "[prices]\nfetch_url = %s\ndynamic_import_factor = 1.21\n"
                       % srv.url("/v1/energyprices" + EZ_QUERY))
    try:
        f, t = days()
        m = d.wait_log(r"prices: fetched (\d+) power prices from (\S+), (\S+) to (\S+); "
                       r"tomorrow's are in; next fetch at about (\S+)")
        T.check("energyzero: fetched at start, and says tomorrow's are in", m is not None, d.text())
        hits = srv.hits("/v1/energyprices")
        T.check("energyzero: one request", len(hits) == 1, repr(hits))
        if hits:
            q = hits[0][1]
            T.check("energyzero: {from} is today's local midnight in UTC",
                    q.get("fromDate") == [utc(f)], repr(q))
            T.check("energyzero: {to} is the day after tomorrow's local midnight in UTC",
                    q.get("tillDate") == [utc(t)], repr(q))
            T.check("energyzero: the rest of the query as written",
                    q.get("interval") == ["4"] and q.get("inclBtw") == ["false"], repr(q))
        hours = int((t - f).total_seconds() // 3600)
        if m:
            T.check("energyzero: the log counts every hour of today and tomorrow",
                    int(m.group(1)) == hours, m.group(0))
            T.check("energyzero: the log names the server without the query",
                    m.group(2) == srv.url("/v1/energyprices"), m.group(2))
            tomorrow = f.date() + datetime.timedelta(days=1)
            T.check("energyzero: the next fetch is tomorrow at 13:00 local",
                    m.group(5) == datetime.datetime(tomorrow.year, tomorrow.month, tomorrow.day,
                                                    13, tzinfo=ZONE).isoformat(), m.group(5))
        rows = wait_for(lambda: power_rows(port), 5)
        T.check("energyzero: GET /api/prices lists them all", rows and len(rows) == hours,
                "%d rows" % len(rows or []))
        if rows and len(rows) == hours:
            T.check("energyzero: each price as the server gave it, from local midnight",
                    all(abs(r["price"] - spot(i)) < 1e-9 for i, r in enumerate(rows)) and
                    rows[0]["time"] == f.isoformat(), json.dumps(rows[:4]))
            T.check("energyzero: the [prices] adjustment applies to fetched prices (x 1.21)",
                    rows[3]["import_price"] == round(-0.01234 * 1.21, 6) and
                    rows[1]["import_price"] == round(spot(1) * 1.21, 6), json.dumps(rows[:4]))
            now = time.time()
            cur = [r for r in rows if datetime.datetime.fromisoformat(r["time"]).timestamp() <=
                   now < datetime.datetime.fromisoformat(r["end"]).timestamp()]
            line = re.search(r"^p1d_price_import_eur_per_kwh (\S+)$",
                             http(port, "/metrics")[2].decode(), re.M)
            T.check("energyzero: /metrics has the fetched price in force now, adjusted",
                    cur and line and abs(float(line.group(1)) - cur[0]["import_price"]) < 1e-9,
                    (cur, line and line.group(0)))
        s, _, b = http(port, "/api/prices")
        fe = json.loads(b).get("fetch") if s == 200 else None
        pw = (fe or {}).get("power") or {}
        T.check("energyzero: GET /api/prices says what was fetched, from where, and when next",
                pw.get("state") == "ok" and pw.get("prices") == hours and
                pw.get("until") == t.isoformat() and pw.get("url") == srv.url("/v1/energyprices")
                and pw.get("failures") == 0 and pw.get("last_error") is None and
                m is not None and pw.get("next", "")[:13] == m.group(5)[:13] and
                fe.get("gas") is None, json.dumps(fe))
    finally:
        d.stop()


def test_placeholders_csv(tmp, srv):
    """Every placeholder, and a CSV price list in local time."""
    got = {}

    def answer(q):
        got.update({k: v[0] for k, v in q.items()})
        f, t = days()
        lines, x = ["time;price"], f
        while x < t:
            lines.append("%s;%s" % (x.strftime("%Y-%m-%dT%H:%M"),
                                    ("%.4f" % 0.2).replace(".", ",")))
            x = (x.astimezone(datetime.timezone.utc) + datetime.timedelta(hours=1)).astimezone(ZONE)
        return 200, "text/csv", ("\n".join(lines) + "\n").encode()

    srv.routes["/csv"] = [answer]
    url = srv.url("/csv?a={from}&b={to}&c={from_local}&d={to_local}&e={from_date}&f={to_date}"
                  "&g={from_unix}&h={to_unix}")
    d, port, _ = start(tmp, "csv", "[prices]\nfetch_url = %s\n" % url)
    try:
        ok = d.wait_log(r"prices: fetched \d+ power prices") is not None
        T.check("placeholders: a CSV list with decimal commas is fetched", ok, d.text())
        f, t = days()
        last = (t - datetime.timedelta(hours=12)).date()
        want = {"a": utc(f), "b": utc(t), "c": f.isoformat(), "d": t.isoformat(),
                "e": f.date().isoformat(), "f": last.isoformat(),
                "g": str(int(f.timestamp())), "h": str(int(t.timestamp()))}
        for k, v in want.items():
            T.check("placeholders: %s is %s" % (k, v), got.get(k) == v, repr(got.get(k)))
    finally:
        d.stop()


def test_not_out_yet(tmp, srv):
    """Only today's prices (tomorrow's are not published yet): stored, and polled again in 30 min
    (fetch_after 00:00 is always past)."""
    def today_only(q):
        f, _ = days()
        return 200, "application/json", energyzero(f, f + datetime.timedelta(hours=24), 20)

    srv.routes["/today"] = [today_only]
    d, port, _ = start(tmp, "today", "[prices]\nfetch_url = %s\nfetch_after = 00:00\n"
                       % srv.url("/today"))
    try:
        t0 = datetime.datetime.now(ZONE)
        m = d.wait_log(r"prices: fetched 20 power prices .*; tomorrow's are not out yet; next "
                       r"fetch at about (\S+)")
        T.check("not out yet: the log says so", m is not None, d.text())
        if m:
            nxt = datetime.datetime.fromisoformat(m.group(1))
            mins = (nxt - t0).total_seconds() / 60
            T.check("not out yet: asked again in about 30 minutes", 29 <= mins <= 31, "%.1f" % mins)
        rows = wait_for(lambda: power_rows(port), 5)
        T.check("not out yet: today's 20 hours stored", rows is not None and len(rows) == 20,
                repr(len(rows or [])))
    finally:
        d.stop()


def test_wrong_days(tmp, srv):
    """A reply for other days than those asked (a URL that ignores the dates) is a failure, and
    nothing of it is stored; a stray row far ahead among today's prices does not make tomorrow's
    "in" (p1d would stop asking until tomorrow afternoon)."""
    def last_week(q):
        f, _ = days()
        return 200, "application/json", energyzero(f - datetime.timedelta(days=7),
                                                    f - datetime.timedelta(days=6))

    def stray(q):
        f, _ = days()
        rows = json.loads(energyzero(f, f + datetime.timedelta(hours=24), 20))
        rows["Prices"].append({"price": 0.5, "readingDate": "2030-01-01T00:00:00.000Z"})
        return 200, "application/json", json.dumps(rows).encode()

    srv.routes["/lastweek"] = [last_week]
    d, port, _ = start(tmp, "lastweek", "[prices]\nfetch_url = %s\n" % srv.url("/lastweek"))
    try:
        m = d.wait_log(r"prices: fetching power prices from \S+ failed: the reply's 24 prices, "
                       r"\S+ to \S+, are for none of the days asked \((\S+) to (\S+)\): not "
                       r"stored; does the URL pass the dates")
        f, t = days()
        T.check("wrong days: a failure naming the days asked", m is not None and
                datetime.datetime.fromisoformat(m.group(1)) == f and
                datetime.datetime.fromisoformat(m.group(2)) == t, d.text()[-1500:])
        s, _, b = http(port, "/api/prices")
        pw = (json.loads(b).get("fetch") or {}).get("power") or {} if s == 200 else {}
        T.check("wrong days: /api/prices says failing, and why", pw.get("state") == "failing" and
                "none of the days asked" in (pw.get("last_error") or ""), json.dumps(pw))
        p = subprocess.run([P1, "prices", "list", "--db", os.path.join(tmp, "lastweek.db"),
                            "--from", (f - datetime.timedelta(days=8)).date().isoformat()],
                           capture_output=True, timeout=10)
        T.check("wrong days: nothing stored", b"power," not in p.stdout,
                p.stdout.decode()[-300:] + p.stderr.decode())
    finally:
        d.stop()
    # a price stored before for a day between today and the stray row's (uploaded by hand)
    kept = os.path.join(tmp, "kept.csv")
    with open(kept, "w") as fh:
        fh.write("2029-06-01T12:00+02:00,0.123\n")
    p = subprocess.run([P1, "prices", "import", "--db", os.path.join(tmp, "stray.db"), kept],
                       capture_output=True, timeout=10)
    T.check("stray row: a price of 2029 stored first", p.returncode == 0, p.stderr.decode())
    srv.routes["/stray"] = [stray]
    d, port, _ = start(tmp, "stray", "[prices]\nfetch_url = %s\nfetch_after = 00:00\n"
                       % srv.url("/stray"))
    try:
        m = d.wait_log(r"prices: fetched 20 power prices .* to \S+; tomorrow's are not out "
                       r"yet; next fetch at about")
        T.check("stray row: tomorrow's are not out yet", m is not None, d.text()[-1500:])
        T.check("stray row: left out, and said so (stored, its span would have replaced every "
                "price stored up to 2030)",
                re.search(r"warn: prices: the power prices from \S+ hold 1 outside the days "
                          r"asked: left out", d.text()) and m and "2030-" not in m.group(0),
                d.text()[-1500:])
    finally:
        d.stop()
    p = subprocess.run([P1, "prices", "list", "--db", os.path.join(tmp, "stray.db"), "--kind",
                        "power", "--from", "2029-06-01", "--to", "2029-06-02"],
                       capture_output=True, timeout=10)
    T.check("stray row: the price stored for 2029 is still there",
            b"0.123" in p.stdout, p.stdout.decode() + p.stderr.decode())


def test_gas(tmp, srv):
    """Gas: one price per day by date alone, starting at fetch_gas_day_start."""
    def gas(q):
        f, _ = days()
        d0 = f.date()
        body = "date,price\n%s,1.2345\n%s,1.3\n" % (d0, d0 + datetime.timedelta(days=1))
        return 200, "text/csv", body.encode()

    srv.routes["/gas"] = [gas]
    d, port, _ = start(tmp, "gas", "[prices]\nfetch_gas_url = %s\nfetch_gas_day_start = 06:00\n"
                       % srv.url("/gas"))
    try:
        ok = d.wait_log(r"prices: fetched 2 gas prices") is not None
        T.check("gas: fetched", ok, d.text())
        s, _, b = http(port, "/api/prices")
        g = json.loads(b).get("gas", []) if s == 200 else []
        f, _ = days()
        six = f.replace(hour=6)
        T.check("gas: the day's price starts at 06:00 local and lasts to 06:00 the next day",
                len(g) >= 1 and g[0]["time"] == six.isoformat() and g[0]["price"] == 1.2345,
                json.dumps(g))
    finally:
        d.stop()


def test_failures(tmp, srv):
    """A 503, then a good answer: the failure is logged with its reason, retried after 10 s, the
    recovery logged; the price uploaded before stays meanwhile."""
    srv.routes["/flaky"] = [(503, "text/plain", b"maintenance until 14:00\n"), ez_answer]
    # a price stored before p1d starts (p1 prices import), for an hour the server leaves out
    f, _ = days()
    before = os.path.join(tmp, "before.csv")
    with open(before, "w") as fh:
        fh.write("time,price\n%s,0.4321\n" % (f - datetime.timedelta(hours=2)).isoformat())
    p = subprocess.run([P1, "prices", "import", "--db", os.path.join(tmp, "flaky.db"), before],
                       capture_output=True, timeout=10)
    T.check("failure: a price stored beforehand", p.returncode == 0, p.stderr.decode())
    d, port, conf = start(tmp, "flaky", "[prices]\nfetch_url = %s\n" % srv.url("/flaky" + EZ_QUERY))
    try:
        m = d.wait_log(r"prices: fetching power prices from (\S+) failed: HTTP 503: maintenance "
                       r"until 14:00; trying again in 10 s \(the prices stored stay as they are\)")
        T.check("failure: an HTTP error is logged with the server's words and the retry", m,
                d.text())
        q = "/api/prices?from=%s&to=%s" % (urllib.parse.quote((f - datetime.timedelta(hours=2))
                                                               .isoformat()), urllib.parse.quote(
                                                                   f.isoformat()))
        s, _, b = http(port, "/api/prices")
        pw = (json.loads(b).get("fetch") or {}).get("power") or {} if s == 200 else {}
        T.check("failure: GET /api/prices says it fails, and why",
                pw.get("state") == "failing" and pw.get("failures") == 1 and
                pw.get("last_error") == "HTTP 503: maintenance until 14:00" and
                pw.get("last_ok") is None, json.dumps(pw))
        s, _, b = http(port, q)
        T.check("failure: p1d serves on, with the price stored before",
                s == 200 and [r["price"] for r in json.loads(b)["power"]] == [0.4321],
                "%s %s" % (s, b[:300]))
        ok = d.wait_log(r"prices: fetching power prices from \S+ works again \(after 1 failure\)",
                        timeout=25)
        T.check("failure: retried by itself, and the recovery logged", ok, d.text())
        s, _, b = http(port, "/api/prices")
        pw = (json.loads(b).get("fetch") or {}).get("power") or {} if s == 200 else {}
        T.check("failure: after the retry GET /api/prices says it works, the error cleared",
                pw.get("state") == "ok" and pw.get("failures") == 0 and
                pw.get("last_error") is None and pw.get("last_ok"), json.dumps(pw))
        T.check("failure: two requests in all", len(srv.hits("/flaky")) == 2,
                repr(len(srv.hits("/flaky"))))
        s, _, b = http(port, q)
        T.check("failure: the fetch keeps the earlier price it does not cover",
                s == 200 and [r["price"] for r in json.loads(b)["power"]] == [0.4321],
                "%s %s" % (s, b[:300]))
    finally:
        d.stop()


def big(q):
    return 200, "application/json", b"[" + b" " * (5 << 20) + b"]"


def test_bad_replies(tmp, srv):
    """Each bad reply: its reason in the log; the prices stored before it stay; p1d serves on."""
    closed = free_port()
    cases = [
        ("/html", [(200, "text/html; charset=utf-8", b"<html><body>Log in to the Wi-Fi</body>")],
         r"the reply is a web page \(Content-Type text/html; charset=utf-8\), not prices: "
         r"<html><body>Log in"),
        ("/mwh", [(200, "application/json",
                   json.dumps([{"time": "2026-01-01T00:00Z", "price": 85.12}]).encode())],
         r"the reply is not a price list: .*85\.12 EUR per kWh .*EUR/MWh"),
        ("/empty", [(200, "application/json", b'{"Prices":[]}')], r"the reply holds no prices|"
         r"the reply is not a price list: .*no price"),
        ("/big", [big], r"the reply is larger than 4 MiB"),
        ("/junk", [(200, "application/json", b'{"Prices":[{"price":')],
         r"the reply is not a price list: line 1"),
        ("/404", [(404, "application/json", b'{"error":"not found"}')],
         r"HTTP 404: not found;"),  # a JSON error reply: its message
    ]
    f, _ = days()
    upload = ("time,price\n%s,0.4321\n" % f.replace(hour=5).isoformat()).encode()
    for path, answers, why in cases:
        srv.routes[path] = answers
        d, port, _ = start(tmp, "bad" + path[1:], "[prices]\nfetch_url = %s\n" % srv.url(path))
        try:
            m = d.wait_log(r"prices: fetching power prices from \S+ failed: (%s)" % why, 10)
            T.check("bad reply %s: logged with its reason" % path, m, d.text()[-1500:])
            s, _, _ = http(port, "/api/prices", "PUT", upload, {"Content-Type": "text/csv"})
            rows = power_rows(port)
            T.check("bad reply %s: p1d serves on and takes uploads" % path,
                    s == 200 and rows and rows[0]["price"] == 0.4321, repr((s, rows)))
        finally:
            d.stop()
    d, port, _ = start(tmp, "refused", "[prices]\nfetch_url = http://127.0.0.1:%d/x\n" % closed)
    try:
        T.check("no server: the connection error is logged",
                d.wait_log(r"prices: fetching power prices from \S+ failed: (Couldn't connect "
                           r"to server|Could not connect)") is not None, d.text())
    finally:
        d.stop()
    srv.routes["/hang"] = [("hang", "", 4)]
    d, port, _ = start(tmp, "hang", "[prices]\nfetch_url = %s\nfetch_timeout = 1s\n"
                       % srv.url("/hang"))
    try:
        T.check("a server that never answers: a timeout after fetch_timeout",
                d.wait_log(r"prices: fetching power prices from \S+ failed: Timeout") is not None,
                d.text())
        s, _, _ = http(port, "/api/prices")
        T.check("a server that never answers: p1d serves meanwhile", s == 200, str(s))
    finally:
        d.stop()


def test_retry_after(tmp, srv):
    """A 429 with Retry-After: p1d waits that long, not its own 10 s."""
    srv.routes["/busy"] = [(429, "text/plain", b"slow down", {"Retry-After": "120"})]
    d, port, _ = start(tmp, "busy", "[prices]\nfetch_url = %s\n" % srv.url("/busy"))
    try:
        T.check("Retry-After: the pause the server asks for is kept",
                d.wait_log(r"failed: HTTP 429: slow down; trying again in 120 s") is not None,
                d.text())
    finally:
        d.stop()


def test_token_hidden(tmp, srv):
    srv.routes["/secret"] = [ez_answer]
    d, port, _ = start(tmp, "secret", "[prices]\nfetch_url = %s&token=S3CRET-T0KEN\n"
                       % srv.url("/secret" + EZ_QUERY))
    try:
        ok = d.wait_log(r"prices: fetched") is not None
        T.check("token: fetched with the token in the query",
                ok and srv.hits("/secret") and srv.hits("/secret")[0][1].get("token") ==
                ["S3CRET-T0KEN"], d.text())
        T.check("token: the log never shows it", "S3CRET" not in d.text(), d.text())
    finally:
        d.stop()


def test_reload(tmp, srv):
    srv.routes["/one"] = [ez_answer]
    srv.routes["/two"] = [ez_answer]
    d, port, conf = start(tmp, "reload", "[prices]\nfetch_url = %s\n" % srv.url("/one" + EZ_QUERY))
    try:
        d.wait_log(r"prices: fetched")
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", 10)
        time.sleep(0.5)
        T.check("reload: an unchanged URL is not fetched again", len(srv.hits("/one")) == 1,
                repr(len(srv.hits("/one"))))
        write_conf(conf, "[prices]\nfetch_url = %s\n" % srv.url("/two" + EZ_QUERY))
        d.signal(signal.SIGHUP)
        ok = d.wait_log(r"prices: fetched \d+ power prices from %s" % re.escape(srv.url("/two")))
        T.check("reload: a new URL is fetched at once", ok is not None, d.text())
        write_conf(conf, "[prices]\n")
        d.signal(signal.SIGHUP)
        T.check("reload: without fetch_url the fetching stops",
                d.wait_log(r"prices: no longer fetched") is not None, d.text())
        s, _, b = http(port, "/api/prices")
        T.check("reload: then GET /api/prices has no fetch for either kind",
                s == 200 and json.loads(b).get("fetch") == {"power": None, "gas": None},
                b[-200:])
    finally:
        d.stop()


def test_clock_set(tmp, srv):
    """The clock is set while p1d runs: forward (a Pi that started with last shutdown's time) and
    back; either way the days of the clock now are fetched within 15 s."""
    so = build_shim(tmp, "clockshim", CLOCK_SHIM)
    if not so:
        return
    srv.routes["/clock"] = [ez_answer]
    off = os.path.join(tmp, "offset")
    for name, start_offset in (("set forward", -3 * 86400), ("set back", 3 * 86400)):
        with open(off, "w") as fh:
            fh.write(str(start_offset))
        n0 = len(srv.hits("/clock"))
        path = os.path.join(tmp, "clock.conf")
        write_conf(path, "[prices]\nfetch_url = %s\n" % srv.url("/clock" + EZ_QUERY))
        d = Daemon(["--config", path, "--db", os.path.join(tmp, "clock-%d.db" % start_offset),
                    "--listen", "127.0.0.1:0"], tmp,
                   env={"LD_PRELOAD": so, "P1D_TEST_OFFSET": off})
        try:
            ok = d.wait_log(r"prices: fetched \d+ power prices") is not None
            f, _ = days()
            wrong = utc(f + datetime.timedelta(seconds=start_offset))
            hits = srv.hits("/clock")[n0:]
            T.check("clock %s: the first fetch asks for the days of the clock then" % name,
                    ok and hits and hits[0][1].get("fromDate") == [wrong],
                    repr([h[1].get("fromDate") for h in hits]) + d.text()[-600:])
            with open(off + ".tmp", "w") as fh:
                fh.write("0")
            os.replace(off + ".tmp", off)
            t0 = time.time()
            ok = d.wait_log(r"prices: fetched \d+ power prices", timeout=25, count=2)
            took = time.time() - t0
            hits = srv.hits("/clock")[n0:]
            T.check("clock %s: today's prices are fetched within 15 s of the clock being set"
                    % name, ok and len(hits) == 2 and hits[1][1].get("fromDate") == [utc(f)] and
                    took < 17, "%.1f s %r" % (took, [h[1].get("fromDate") for h in hits]))
        finally:
            d.stop()


def test_check_config(tmp):
    cases = [
        ("fetch_url = ftp://example.org/prices", r"fetch_url: expected an http:// or https:// URL"),
        ("fetch_url = http://127.0.0.1/x?d={day}", r"unknown placeholder \{day\}"),
        ("fetch_url = http://127.0.0.1/x?d={from", r"'\{' without a placeholder name"),
        ("fetch_after = 25:00", r"fetch_after: expected HH:MM such as 13:00, got '25:00'"),
        ("fetch_gas_day_start = 6", r"fetch_gas_day_start: expected HH:MM"),
    ]
    for line, want in cases:
        path = os.path.join(tmp, "check.conf")
        write_conf(path, "[prices]\n%s\n" % line)
        code, _, err = run(["--check-config", "--config", path, "--db", os.path.join(tmp, "c.db")])
        T.check("--check-config: %s" % line, code != 0 and re.search(want, err) and
                re.search(r"check\.conf:2", err), "%d %s" % (code, err))
    write_conf(path, "[prices]\nfetch_url = https://me:pw@prices.example/day?token=T0K3N\n"
               "fetch_after = 14:15\n")
    code, out, err = run(["--check-config", "--config", path, "--db", os.path.join(tmp, "c.db")])
    T.check("--check-config: a note says what is fetched and when, without password or token",
            code == 0 and "note: [prices] fetch_url: power prices fetched from "
            "https://me:********@prices.example/day at start, then daily from 14:15" in err and
            "T0K3N" not in err and "pw@" not in out + err, "%d %s %s" % (code, out, err))
    write_conf(path, "[prices]\nfetch_url = http://127.0.0.1/x\n")
    code, _, err = run(["--check-config", "--config", path, "--source", "a=sim"])
    T.check("--check-config: fetch_url needs a store", code != 0 and
            "[prices] fetch_url needs [store] db" in err, "%d %s" % (code, err))


def main():
    srv = PriceServer()
    try:
        with tmpdir() as tmp:
            T.run([test_energyzero, test_placeholders_csv, test_not_out_yet, test_wrong_days, test_gas,
                   test_failures, test_bad_replies, test_retry_after, test_token_hidden, test_reload, test_clock_set],
                  tmp, srv)
            T.run([test_check_config], tmp)
    finally:
        srv.close()
    T.done()


main()
