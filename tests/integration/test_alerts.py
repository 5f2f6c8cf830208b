#!/usr/bin/env python3
"""test_alerts.py: [alerts] url. p1d POSTs an alert to a push service (here a real HTTP server on
127.0.0.1 answering as ntfy or a webhook would) when a meter, fed over TCP by a fake dongle:

- counts a new power failure (0-0:96.7.21 or 0-0:96.7.9 goes up; the first reading only sets the
  baseline);
- brings a new text message from the grid operator (0-0:96.13.0);
- goes silent for [http] stale, and comes back;
- (Belgium) heads for a quarter hour above the month's peak, once per quarter hour;
- carries more than [alerts] fuse on a phase for overload_for (by its current, or its power over
  its voltage), once until the phase was back at or below the fuse as long;

and when the stored dynamic power prices go below zero ahead (negative_price, once per run);
with [alerts] mqtt the alerts go as JSON to p1d/alerts on a real broker (mosquitto) too, or only
there;

as ntfy takes it (the message as the body, the title in a Title header) or as JSON for webhooks,
with the configured header (a token that never reaches the log; also read from header_file, again
on reload). A server that fails (503) gets
the alert again later, in order; one that refuses it (401) drops it with a clear log line; p1d
reads on meanwhile. --check-config refuses an unknown event, a non-http URL, a header without a
URL."""
import datetime
import json
import os
import re
import signal
import sqlite3
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (CLOCK_SHIM, Checks, Daemon, be_telegram, build_shim, crc16,  # noqa: E402
                            fake_dongle, free_port, http, meter_time, need_p1d, run, tmpdir,
                            wait_for, write_conf)
from store_helpers import p1  # noqa: E402
from price_helpers import PriceServer  # noqa: E402
from mqtt_helpers import MOSQUITTO, Broker, Mqtt, pub_entry, retained_now, tcp_meter  # noqa: E402

T = Checks("test_alerts")
need_p1d(T)

TOKEN = "alert-T0KEN-s3cret"


def nl_telegram(t, failures=4, long_failures=2, text=""):
    body = ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
            "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
            "1-0:1.8.1(000100.000*kWh)\r\n1-0:1.8.2(000200.000*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n"
            "0-0:96.14.0(0002)\r\n1-0:1.7.0(00.100*kW)\r\n1-0:2.7.0(00.000*kW)\r\n"
            "0-0:96.7.21(%05d)\r\n0-0:96.7.9(%05d)\r\n0-0:96.13.0(%s)\r\n!"
            % (meter_time(t), failures, long_failures, text.encode().hex().upper())).encode()
    return body + b"%04X\r\n" % crc16(body)


def posts(srv, path):
    return [c for c in srv.calls if c["path"] == path and c["method"] == "POST"]


def header(c, name):
    return {k.lower(): v for k, v in c["headers"].items()}.get(name.lower())


def start(tmp, name, srv, path, extra=(), header=None):
    """header: the [alerts] line of the header (default: header = the token)."""
    dongle = fake_dongle()
    conf = os.path.join(tmp, name + ".conf")
    write_conf(conf, "[alerts]\nurl = %s\n%s\n" % (
        srv.url(path), header or "header = Authorization: Bearer %s" % TOKEN))
    d = Daemon(["--config", conf, "--listen", "127.0.0.1:0", "--http-stale", "2s",
                "--source", "home=tcp:127.0.0.1:%d" % dongle.getsockname()[1]] + list(extra), tmp)
    conn = dongle.accept()[0]
    return d, dongle, conn


def test_ntfy(tmp, srv):
    srv.routes["/p1d-alerts"] = [(200, "application/json", b'{"id":"x"}')]
    d, dongle, conn = start(tmp, "ntfy", srv, "/p1d-alerts")
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 3) + nl_telegram(now - 2))
        time.sleep(1.0)
        T.check("the first readings only set the baseline: no alert",
                not posts(srv, "/p1d-alerts"), repr(posts(srv, "/p1d-alerts")))
        conn.sendall(nl_telegram(now - 1, failures=5))
        got = wait_for(lambda: len(posts(srv, "/p1d-alerts")) >= 1, 5)
        c = posts(srv, "/p1d-alerts")[0] if got else {"headers": {}, "body": b""}
        T.check("a new power failure: POSTed as ntfy takes it (body, Title header)",
                c["body"] == b"Meter home counts a new power failure: 5 short and 2 long ones "
                b"so far." and header(c, "Title") == "p1d: power failure at meter home" and
                (header(c, "Content-Type") or "").startswith("text/plain"), repr(c))
        T.check("... with the configured header", header(c, "Authorization") ==
                "Bearer " + TOKEN, repr(c.get("headers")))
        T.check("... and ntfy's tag and a high priority for a power failure",
                header(c, "Tags") == "warning" and header(c, "Priority") == "high",
                repr(c.get("headers")))
        text = "Onderhoud aan het net op 3 december tussen 9 en 12 uur"
        conn.sendall(nl_telegram(now, failures=5, text=text))
        conn.sendall(nl_telegram(now + 1, failures=5, text=text))
        got = wait_for(lambda: len(posts(srv, "/p1d-alerts")) >= 2, 5)
        c = posts(srv, "/p1d-alerts")[1] if got else {"headers": {}, "body": b""}
        T.check("a new message from the grid operator: its text, once",
                c["body"] == text.encode() and
                header(c, "Title") == "p1d: message from the grid operator (meter home)",
                repr(c))
        got = wait_for(lambda: len(posts(srv, "/p1d-alerts")) >= 3, 8)
        c = posts(srv, "/p1d-alerts")[2] if got else {"headers": {}, "body": b""}
        T.check("silent for [http] stale (2 s): 'meter home is silent'",
                header(c, "Title") == "p1d: meter home is silent" and
                c["body"].startswith(b"No telegram from meter home since "), repr(c))
        conn.sendall(nl_telegram(now + 5, failures=5, text=text))
        got = wait_for(lambda: len(posts(srv, "/p1d-alerts")) >= 4, 5)
        c = posts(srv, "/p1d-alerts")[3] if got else {"headers": {}, "body": b""}
        T.check("... and when it sends again: 'sends again'",
                header(c, "Title") == "p1d: meter home sends again" and
                header(c, "Tags") == "white_check_mark" and header(c, "Priority") == "default",
                repr(c))
        time.sleep(0.5)
        T.check("no other alert (the repeated message is not sent twice)",
                len(posts(srv, "/p1d-alerts")) == 4,
                [header(x, "Title") for x in posts(srv, "/p1d-alerts")])
        T.check("the log names each alert, never the token",
                d.wait_log(r"alerts: p1d: power failure at meter home") is not None and
                TOKEN not in d.text(), d.text()[-1500:])
        st, _, body = http(d.http_port(), "/api/alerts")
        got = json.loads(body) if st == 200 else {}
        lst = got.get("alerts") or []
        T.check("/api/alerts: the 4 alerts, newest first, each delivered to the url (no mqtt "
                "member: not sent there)",
                got.get("enabled") is True and
                [x.get("event") for x in lst] == ["back", "stale", "message", "power_failure"] and
                all(x.get("url") == "delivered" and "mqtt" not in x and x.get("meter") == "home"
                    for x in lst) and lst[-1].get("title") == "p1d: power failure at meter home"
                and lst[1].get("message", "").startswith("No telegram from meter home since ") and
                all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", x.get("time", ""))
                    for x in lst), got)
        st, _, body = http(d.http_port(), "/api/alerts", method="POST")
        T.check("/api/alerts: POST is 405 with a JSON error",
                st == 405 and b'"method_not_allowed"' in body, (st, body))
    finally:
        d.stop()
        conn.close()
        dongle.close()


def test_json_capacity(tmp, srv):
    """format = json, events = capacity: a Belgian quarter hour heading above the month's peak,
    once per quarter hour; the other events are not sent."""
    srv.routes["/hook"] = [(200, "text/plain", b"ok")]
    q = (int(time.time()) // 900 - 2) * 900
    # 4 x 0.001 kWh since the start (interpolated) + 5 kW x 899/900 = 4.998 kW, until q + 900
    until = datetime.datetime.fromtimestamp(q + 900, zoneinfo.ZoneInfo("Europe/Amsterdam"))
    until = until.strftime("%H:%M")
    d, dongle, conn = start(tmp, "json", srv, "/hook",
                            ["--alerts-format", "json", "--alerts-events", "capacity"])
    try:
        conn.sendall(be_telegram(q - 1, 500000, 5.0, peak_kw=4.321) +
                     be_telegram(q + 1, 500002, 5.0, peak_kw=4.321) +
                     be_telegram(q + 2, 500003, 5.0, peak_kw=4.321))
        got = wait_for(lambda: posts(srv, "/hook"), 5)
        c = posts(srv, "/hook")[0] if got else {"headers": {}, "body": b"{}"}
        body = json.loads(c["body"] or b"{}")
        T.check("capacity: JSON with event, meter, title, message and time",
                body.get("event") == "capacity" and body.get("meter") == "home" and
                body.get("title") == "p1d: new capacity peak ahead (meter home)" and
                re.fullmatch(r"This quarter hour heads for 4\.998 kW \(until %s\), above "
                             r"this month's peak of 4\.321 kW\." % until, body.get("message", "")) and
                re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body.get("time", "")) and
                header(c, "Content-Type") == "application/json", repr(c))
        time.sleep(3.5)  # past [http] stale: but events = capacity only
        T.check("once per quarter hour, and no other event (stale is not asked for)",
                len(posts(srv, "/hook")) == 1, [x["body"] for x in posts(srv, "/hook")])
    finally:
        d.stop()
        conn.close()
        dongle.close()


def test_server_trouble(tmp, srv):
    """503: retried after 10 s, in order, p1d reading on; 401: dropped, logged."""
    srv.routes["/busy"] = [(503, "text/plain", b"down"), (200, "text/plain", b"ok")]
    d, dongle, conn = start(tmp, "busy", srv, "/busy")
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 2) + nl_telegram(now - 1, failures=5) +
                     nl_telegram(now, failures=6))
        T.check("a failing server: logged with the retry",
                d.wait_log(r"alerts: sending to \S+/busy failed: HTTP 503: down; trying again in "
                           r"10 s \(2 waiting\)") is not None, d.text()[-1500:])
        port = d.http_port()
        pe = pub_entry(d, "alerts") or {}
        T.check("... /api/meters shows the alerts retrying: why, when next, what waits",
                pe.get("state") == "retrying" and pe.get("last_error") == "HTTP 503: down" and
                pe.get("lag_readings") == 2 and 0 < (pe.get("retry_in_s") or 0) <= 10 and
                pe.get("retries") == 1 and pe.get("delivered") == 0, pe)
        m = http(port, "/metrics")[2].decode()
        T.check("... and /metrics: p1_publisher_up{publisher=\"alerts\"} 0, one failure",
                re.search(r'^p1_publisher_up\{publisher="alerts"\} 0$', m, re.M) and
                re.search(r'^p1_publisher_failures_total\{publisher="alerts"\} 1$', m, re.M),
                "\n".join(x for x in m.split("\n") if "alerts" in x))
        T.check("... p1d reads on meanwhile", http(port, "/api/now")[0] == 200)
        got = wait_for(lambda: len(posts(srv, "/busy")) >= 3, 20)
        bodies = [x["body"] for x in posts(srv, "/busy")]
        T.check("... then both alerts arrive, in order", got and bodies[1:3] == [
            b"Meter home counts a new power failure: 5 short and 2 long ones so far.",
            b"Meter home counts a new power failure: 6 short and 2 long ones so far."], bodies)
        T.check("... and the recovery is logged",
                d.wait_log(r"alerts: \S+/busy works again \(after 1 failure\)") is not None,
                d.text()[-800:])
        # the stale alert (2 s after the last telegram) may be on its way: wait for it to land
        wait_for(lambda: (pub_entry(d, "alerts") or {}).get("state") == "idle", 10)
        pe = pub_entry(d, "alerts") or {}
        T.check("... /api/meters: idle again, both delivered (and the stale one), nothing waits, no error",
                pe.get("state") == "idle" and pe.get("delivered", 0) >= 2 and
                pe.get("lag_readings") == 0 and pe.get("last_error") is None and
                pe.get("last_ok") is not None and pe.get("cursor") is not None, pe)
    finally:
        d.stop()
        conn.close()
        dongle.close()
    srv.routes["/denied"] = [(401, "text/plain", b"unauthorized")]
    d, dongle, conn = start(tmp, "denied", srv, "/denied")
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 1) + nl_telegram(now, failures=5))
        T.check("a server that refuses (401): the alert is dropped with a clear line",
                d.wait_log(r"alerts: \S+/denied refused 'p1d: power failure at meter home' "
                           r"\(HTTP 401: unauthorized\); dropped: check \[alerts\] url and "
                           r"header") is not None,
                d.text()[-800:])
        pe = pub_entry(d, "alerts") or {}
        T.check("... /api/meters: auth_failed, the alert counted as parked, the reason",
                pe.get("state") == "auth_failed" and pe.get("parked") == 1 and
                pe.get("last_error") == "HTTP 401: unauthorized; the alert was dropped", pe)
    finally:
        d.stop()
        conn.close()
        dongle.close()


def test_reload_keeps(tmp, srv):
    """A reload that changes [alerts] keeps the alerts not delivered yet and what it knew of the
    meters (it used to drop the queue and start afresh)."""
    srv.routes["/reload"] = [(503, "text/plain", b"down"), (200, "text/plain", b"ok")]
    d, dongle, conn = start(tmp, "reload", srv, "/reload")
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 2) + nl_telegram(now - 1, failures=5))
        d.wait_log(r"alerts: sending to \S+/reload failed: HTTP 503: down; trying again in 10 s")
        write_conf(os.path.join(tmp, "reload.conf"), "[alerts]\nurl = %s\nheader = "
                   "Authorization: Bearer %s\ntimeout = 9s\n" % (srv.url("/reload"), TOKEN))
        d.signal(signal.SIGHUP)
        T.check("reload: the waiting alert is kept, logged",
                d.wait_log(r"alerts: 1 waiting alert kept over the reload", 10) is not None,
                d.text()[-800:])
        got = wait_for(lambda: len(posts(srv, "/reload")) >= 2, 8)
        bodies = [x["body"] for x in posts(srv, "/reload")]
        T.check("reload: the new sender delivers it at once, not after the old one's backoff",
                got and bodies == [bodies[0]] * 2 and b"5 short" in bodies[0], bodies)
        pe = wait_for(lambda: (pub_entry(d, "alerts") or {}).get("delivered") == 1 and
                      pub_entry(d, "alerts"), 5) or {}
        T.check("reload: the counts go on (1 delivered, the failure before the reload counted)",
                pe.get("delivered") == 1 and pe.get("state") == "idle" and
                "not delivered" not in d.text(), pe)
        srv.routes["/reload"] = [(200, "text/plain", b"ok")]
        conn.sendall(nl_telegram(now, failures=6))
        got = wait_for(lambda: len(posts(srv, "/reload")) >= 3, 8)
        T.check("reload: the meter's counters are remembered: 6 after 5 is alerted (the first "
                "reading after a fresh start would only set the baseline)",
                got and b"6 short" in posts(srv, "/reload")[2]["body"],
                [x["body"] for x in posts(srv, "/reload")])
    finally:
        d.stop()
        conn.close()
        dongle.close()


def alert_rows(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT seq, event, meter, message, url, mqtt FROM alerts "
                         "ORDER BY seq").fetchall()


def test_restart_keeps(tmp, srv):
    """With a store, the alerts outlive a restart: /api/alerts lists those of before, one still
    waiting is sent at the next start (one a day old is dropped, a row p1d did not write is left
    out), the numbering goes on, and the table keeps the newest 1000."""
    db = os.path.join(tmp, "keep.db")
    srv.routes["/keep"] = [(200, "text/plain", b"ok")]
    d, dongle, conn = start(tmp, "keep", srv, "/keep", ["--db", db])
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 3) + nl_telegram(now - 2, failures=5))
        wait_for(lambda: len(posts(srv, "/keep")) >= 1, 8)
        srv.routes["/keep"] = [(503, "text/plain", b"down")]
        conn.sendall(nl_telegram(now - 1, failures=6))
        T.check("restart: an alert the server does not take waits",
                d.wait_log(r"alerts: sending to \S+/keep failed: HTTP 503") is not None,
                d.text()[-800:])
    finally:
        code = d.stop()
        conn.close()
        dongle.close()
    T.check("restart: at the stop, the log says the store keeps the waiting alert",
            code == 0 and "alerts: 1 alert not delivered yet; the store keeps them for the next "
            "start" in d.text(), d.text()[-800:])
    rows = alert_rows(db)
    T.check("restart: the alerts table has both, delivered and waiting",
            [(r[0], r[1], r[2], r[4], r[5]) for r in rows] ==
            [(1, "power_failure", "home", "delivered", None),
             (2, "power_failure", "home", "waiting", None)] and "6 short" in rows[1][3], rows)
    day_old = (int(time.time()) - 2 * 86400) * 1000
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO alerts VALUES (3, ?, 'message', 'home', 'p1d: old', 'two days', "
                  "'waiting', NULL)", (day_old,))
        c.execute("INSERT INTO alerts VALUES (4, ?, 'fire', 'home', 'p1d: ?', 'not ours', "
                  "'waiting', NULL)", (day_old,))
    srv.routes["/keep"] = [(200, "text/plain", b"ok")]
    d, dongle, conn = start(tmp, "keep", srv, "/keep", ["--db", db])
    try:
        T.check("restart: the waiting alert is sent at the start, logged",
                d.wait_log(r"alerts: 1 alert waiting from before the start; sending") is not None,
                d.text()[-800:])
        got = wait_for(lambda: len(posts(srv, "/keep")) >= 3, 8)
        bodies = [x["body"] for x in posts(srv, "/keep")]
        T.check("restart: ... and delivered; the one two days old is not",
                got and len(bodies) == 3 and b"6 short" in bodies[2], bodies)
        T.check("restart: the row p1d did not write is left out, said",
                d.wait_log(r"warn: alerts: 1 row of the alerts table not understood; left out",
                           3) is not None, d.text()[-800:])
        port = d.http_port()
        lst = wait_for(lambda: (lambda j: j if j["alerts"] and j["alerts"][1]["url"] ==
                                "delivered" else None)(json.loads(http(port, "/api/alerts")[2])),
                       5) or json.loads(http(port, "/api/alerts")[2])
        T.check("restart: /api/alerts lists the alerts of before, newest first, as they fared",
                [(x["message"], x.get("url")) for x in lst["alerts"]] ==
                [("two days", "dropped"),
                 ("Meter home counts a new power failure: 6 short and 2 long ones so far.",
                  "delivered"),
                 ("Meter home counts a new power failure: 5 short and 2 long ones so far.",
                  "delivered")], lst)
        now = int(time.time())
        conn.sendall(nl_telegram(now - 1, failures=6) + nl_telegram(now, failures=7))
        wait_for(lambda: len(posts(srv, "/keep")) >= 4, 8)
        rows = wait_for(lambda: (lambda r: r if len(r) == 5 and r[-1][4] == "delivered" else None)(
            alert_rows(db)), 5) or alert_rows(db)
        T.check("restart: the table learnt what became of them; the next alert is number 5",
                [(r[0], r[4]) for r in rows] == [(1, "delivered"), (2, "delivered"),
                                                 (3, "dropped"), (4, "waiting"),
                                                 (5, "delivered")] and "7 short" in rows[4][3],
                rows)
    finally:
        d.stop()
        conn.close()
        dongle.close()
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO alerts VALUES (?, 0, 'stale', 'home', 't', 'm', 'delivered', "
                      "NULL)", [(i,) for i in range(6, 1011)])
    d, dongle, conn = start(tmp, "keep", srv, "/keep", ["--db", db])
    try:
        lst = json.loads(http(d.http_port(), "/api/alerts")[2])
        T.check("restart: /api/alerts lists the newest 50 of the 1010 kept",
                len(lst["alerts"]) == 50 and lst["alerts"][0]["event"] == "stale", len(lst["alerts"]))
        now = int(time.time())
        conn.sendall(nl_telegram(now - 1, failures=7) + nl_telegram(now, failures=8))
        wait_for(lambda: len(posts(srv, "/keep")) >= 5, 8)
        with sqlite3.connect(db) as c:
            n, lo, hi = c.execute("SELECT count(*), min(seq), max(seq) FROM alerts").fetchone()
        T.check("restart: a new alert, number 1011, and the table keeps the newest 1000",
                (n, lo, hi) == (1000, 12, 1011), (n, lo, hi))
    finally:
        d.stop()
        conn.close()
        dongle.close()


def phase_telegram(t, amps):
    """A three-phase DSMR 5 telegram; amps[i] is phase i's current in A, or a number of kW (a
    float) for a meter that sends the phase's power and voltage (230.0 V) but no current."""
    lines = ["/ISk5\\2MT382-1000", "", "1-3:0.2.8(50)", "0-0:1.0.0(%s)" % meter_time(t),
             "0-0:96.1.1(4530303034303031353934373534343134)",
             "1-0:1.8.1(000100.000*kWh)", "1-0:1.8.2(000200.000*kWh)",
             "1-0:2.8.1(000000.000*kWh)", "1-0:2.8.2(000000.000*kWh)", "0-0:96.14.0(0002)",
             "1-0:1.7.0(05.000*kW)", "1-0:2.7.0(00.000*kW)"]
    for i, a in enumerate(amps):
        obis = (31, 51, 71)[i]
        if isinstance(a, float):
            lines += ["1-0:%d.7.0(230.0*V)" % (obis + 1),
                      "1-0:%d.7.0(%06.3f*kW)" % ((21, 41, 61)[i], a)]
        else:
            lines.append("1-0:%d.7.0(%03d*A)" % (obis, a))
    body = ("\r\n".join(lines) + "\r\n!").encode()
    return body + b"%04X\r\n" % crc16(body)


def test_overload(tmp, srv):
    """[alerts] fuse = 25, overload_for = 2s: a phase above 25 A for 2 s raises one alert; it
    is raised again only after the phase stayed at or below the fuse for 2 s. A meter without
    currents is judged by power over voltage (7.36 kW at 230 V = 32 A)."""
    srv.routes["/fuse"] = [(200, "text/plain", b"ok")]
    d, dongle, conn = start(tmp, "fuse", srv, "/fuse",
                            ["--alerts-fuse", "25", "--alerts-overload-for", "2s",
                             "--alerts-events", "overload"])

    def feed(seconds, amps):
        end = time.time() + seconds
        while time.time() < end:
            conn.sendall(phase_telegram(int(time.time()), amps))
            time.sleep(0.25)
    try:
        feed(1.0, (5, 30, 7.36))
        T.check("overload: not before overload_for", not posts(srv, "/fuse"),
                [x["body"] for x in posts(srv, "/fuse")])
        feed(2.0, (5, 30, 7.36))
        got = wait_for(lambda: len(posts(srv, "/fuse")) >= 2, 5)
        by = {header(x, "Title"): x["body"].decode() for x in posts(srv, "/fuse")}
        T.check("overload: L2 above the fuse for 2 s, with the current and the fuse",
                got and re.fullmatch(r"Phase L2 of meter home carries 30 A, more than its 25 A "
                                     r"fuse, for [23] s now: switch something off before the "
                                     r"fuse trips\.",
                                     by.get("p1d: phase L2 overloaded (meter home)", "")), by)
        T.check("overload: ntfy's zap tag and a high priority",
                got and all(header(x, "Tags") == "zap" and header(x, "Priority") == "high"
                            for x in posts(srv, "/fuse")),
                [x["headers"] for x in posts(srv, "/fuse")])
        T.check("overload: L3 judged by power over voltage (32 A)",
                re.match(r"Phase L3 of meter home carries 32 A,",
                         by.get("p1d: phase L3 overloaded (meter home)", "")), by)
        feed(1.0, (5, 30, 7.36))
        T.check("overload: once while it lasts; L1 (5 A) never",
                len(posts(srv, "/fuse")) == 2, [x["body"] for x in posts(srv, "/fuse")])
        feed(1.0, (5, 25, 1.0))
        feed(1.0, (5, 30, 1.0))
        T.check("overload: not again after less than overload_for at the fuse",
                len(posts(srv, "/fuse")) == 2, [x["body"] for x in posts(srv, "/fuse")])
        feed(2.5, (5, 20, 1.0))
        feed(2.5, (5, 31, 1.0))
        got = wait_for(lambda: len(posts(srv, "/fuse")) >= 3, 5)
        T.check("overload: again after 2 s at or below the fuse",
                got and posts(srv, "/fuse")[2]["body"].startswith(
                    b"Phase L2 of meter home carries 31 A"),
                [x["body"] for x in posts(srv, "/fuse")])
    finally:
        d.stop()
        conn.close()
        dongle.close()


def test_negative_price(tmp, srv):
    """events = negative_price: each run of dynamic power prices below zero ahead (import or
    export, as the costs count them) is alerted once, with its span and lowest prices; runs in
    the past are not; uploading the same prices again alerts nothing new."""
    srv.routes["/neg"] = [(200, "text/plain", b"ok")]
    zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
    now = datetime.datetime.now(zone)
    day = (now + datetime.timedelta(days=1)).date()

    def at(h):
        return datetime.datetime(day.year, day.month, day.day, h, tzinfo=zone)
    rows = []
    past = (now - datetime.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    rows.append((past, 0.25, -0.5))  # over: never alerted
    exp = {11: -0.03, 12: -0.052, 13: -0.04, 14: -0.01, 20: -0.005}
    for h in range(24):
        rows.append((at(h), -0.011 if h == 13 else 0.25, exp.get(h, 0.08)))
    csv = "time,price,export\n" + "".join("%s,%s,%s\n" % (t.isoformat(), p, x)
                                          for t, p, x in rows)
    conf = os.path.join(tmp, "neg.conf")
    write_conf(conf, "[alerts]\nurl = %s\nformat = json\nevents = negative_price\n"
               % srv.url("/neg"))
    d = Daemon(["--config", conf, "--db", os.path.join(tmp, "neg.db"), "--listen", "127.0.0.1:0",
                "--source", "home=sim"], tmp)
    try:
        port = d.http_port()
        s, _, b = http(port, "/api/prices", "PUT", csv.encode(), {"Content-Type": "text/csv"})
        T.check("negative_price: the prices are stored", s == 200, b[:300])
        got = wait_for(lambda: len(posts(srv, "/neg")) >= 2, 10)
        time.sleep(1.5)
        bodies = [json.loads(x["body"]) for x in posts(srv, "/neg")]
        T.check("negative_price: one alert per run ahead, none for the past one",
                got and len(bodies) == 2 and
                [x["title"] for x in bodies] == [
                    "p1d: negative power prices tomorrow 11:00-15:00",
                    "p1d: negative power prices tomorrow 20:00-21:00"], bodies)
        if len(bodies) == 2:
            T.check("negative_price: both ways below zero: the lowest of each and when",
                    bodies[0]["message"] == "From 11:00 to 15:00 tomorrow power costs less than "
                    "nothing: using a kWh earns up to 0.011 EUR (at 13:00), exporting one costs "
                    "up to 0.052 EUR (at 12:00). A time to charge the car, run the dishwasher and "
                    "turn the solar inverter down." and bodies[0]["meter"] is None and
                    bodies[0]["event"] == "negative_price", bodies[0])
            T.check("negative_price: export alone below zero",
                    bodies[1]["message"].startswith("From 20:00 to 21:00 tomorrow exporting power "
                                                    "costs money, up to 0.005 EUR per kWh (at "
                                                    "20:00)"), bodies[1])
        s, _, _ = http(port, "/api/prices", "PUT", csv.encode(), {"Content-Type": "text/csv"})
        time.sleep(2.5)
        T.check("negative_price: the same prices again: no new alert",
                s == 200 and len(posts(srv, "/neg")) == 2, len(posts(srv, "/neg")))
    finally:
        d.stop()


def test_header_file(tmp, srv):
    """[alerts] header_file: the header is the file's first line (a systemd credential); a
    reload reads the file again."""
    srv.routes["/filed"] = [(200, "text/plain", b"ok")]
    path = os.path.join(tmp, "alert-header")
    with open(path, "w") as f:
        f.write("Authorization: Bearer file-%s\n" % TOKEN)
    os.chmod(path, 0o600)
    d, dongle, conn = start(tmp, "filed", srv, "/filed", header="header_file = %s" % path)
    try:
        now = int(time.time())
        conn.sendall(nl_telegram(now - 2) + nl_telegram(now - 1, failures=5))
        got = wait_for(lambda: posts(srv, "/filed"), 5)
        c = posts(srv, "/filed")[0] if got else {"headers": {}}
        T.check("header_file: the alert carries the file's header",
                header(c, "Authorization") == "Bearer file-" + TOKEN, repr(c.get("headers")))
        with open(path + ".tmp", "w") as f:
            f.write("Authorization: Bearer rotated-%s\n" % TOKEN)
        os.replace(path + ".tmp", path)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded ")
        conn.sendall(nl_telegram(now, failures=6))
        got = wait_for(lambda: len(posts(srv, "/filed")) >= 2, 5)
        c = posts(srv, "/filed")[1] if got else {"headers": {}}
        T.check("header_file: after a reload the new header of the file is sent",
                header(c, "Authorization") == "Bearer rotated-" + TOKEN, repr(c.get("headers")))
        T.check("header_file: the token is never logged", TOKEN not in d.text(), d.text()[-800:])
    finally:
        d.stop()
        conn.close()
        dongle.close()


def test_test_alert(tmp, srv):
    """p1d --test-alert: one alert now, to try a URL and a token; the exit status says whether
    the server took it (it is not tried again)."""
    srv.routes["/try"] = [(200, "application/json", b'{"id":"t"}')]
    srv.routes["/nope"] = [(401, "text/plain", b"unauthorized")]
    code, out, err = run(["--alerts-url", srv.url("/try"), "--alerts-header",
                          "Authorization: Bearer " + TOKEN, "--test-alert"], timeout=30)
    c = posts(srv, "/try")[0] if posts(srv, "/try") else {"headers": {}, "body": b""}
    T.check("--test-alert: exit 0, the alert with its title, the header sent, not shown",
            code == 0 and "alerts: the test alert was delivered" in err and
            header(c, "Title") == "p1d: test alert" and
            c["body"].startswith(b"A test alert from p1d on ") and
            header(c, "Authorization") == "Bearer " + TOKEN and TOKEN not in err, (code, err, c))
    code, out, err = run(["--alerts-url", srv.url("/nope"), "--test-alert"], timeout=30)
    T.check("--test-alert to a server that refuses it: exit 1, the reason, one attempt",
            code == 1 and "the test alert was not delivered: HTTP 401: unauthorized" in err and
            len(posts(srv, "/nope")) == 1, (code, err))
    url = "http://127.0.0.1:%d/x" % free_port()
    code, out, err = run(["--alerts-url", url, "--test-alert"], timeout=30)
    T.check("--test-alert to nobody listening: exit 1, why",
            code == 1 and "the test alert was not delivered: Couldn't connect" in err, (code, err))
    T.check("... and the log said where alerts will be sent, not that it was 'sent to' the url "
            "before it failed", "alerts: will be sent to %s\n" % url in err and
            "alerts: sent to" not in err, err)
    code, out, err = run(["--test-alert", "--source", "a=sim"], timeout=30)
    T.check("--test-alert without [alerts] url: exit 2, says what to set",
            code == 2 and "nothing to send to: set [alerts] url or [alerts] mqtt" in err,
            (code, err))


def test_mqtt(tmp, srv):
    """[alerts] mqtt = true without a url: each alert as JSON on p1d/alerts, not retained,
    through a real broker (mosquitto on 127.0.0.1); counted as the alerts publisher's."""
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: mqtt alerts: mosquitto not installed (tools/setup.sh test)")
        return
    with tcp_meter(tmp, "alerts-mqtt", ["--alerts-mqtt", "true", "--alerts-events",
                                        "power_failure,message", "--mqtt-client-id", "p1d-home"],
                   topics=("p1d/alerts", "p1d/status")) as (d, conn, sub, port):
        T.check("mqtt alerts: started without a url",
                d.wait_log(r"alerts: will be published on MQTT only") is not None, d.text()[-800:])
        d.wait_log(r"mqtt: connected")
        now = int(time.time())
        conn.sendall(nl_telegram(now - 1))
        time.sleep(1.0)
        conn.sendall(nl_telegram(now, failures=5))
        m = sub.wait(lambda x: x[1] == "p1d/alerts", 8)
        body = json.loads(m[2]) if m else {}
        T.check("mqtt alerts: the power failure as JSON on p1d/alerts, not retained",
                m is not None and not m[3] and body.get("event") == "power_failure" and
                body.get("meter") == "home" and
                body.get("title") == "p1d: power failure at meter home" and
                body.get("message", "").startswith("Meter home counts a new power failure: 5") and
                re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body.get("time", "")),
                repr(m))
        with open(os.path.join(tmp, "alerts-mqtt.log"), "rb") as f:
            blog = f.read().decode("utf-8", "replace")
        T.check("mqtt alerts: published at QoS 1 though [mqtt] qos is 0 (one written just before "
                "a connection drops is sent again, not lost)",
                re.search(r"Received PUBLISH from p1d-home \(d0, q1, r0, m\d+, 'p1d/alerts'",
                          blog), blog[-800:])
        pe = pub_entry(d, "alerts") or {}
        T.check("mqtt alerts: counted as delivered for the meter", pe.get("delivered") == 1 and
                pe.get("state") == "idle" and pe.get("last_error") is None, pe)
        # --test-alert beside the running daemon, with the same client id in the config
        n = len(sub.snapshot())
        mqtt_args = ["--source", "a=sim", "--alerts-mqtt", "true", "--mqtt-host", "127.0.0.1",
                     "--mqtt-port", str(port), "--mqtt-client-id", "p1d-home"]
        code, out, err = run(["--test-alert"] + mqtt_args, timeout=30)
        m = sub.wait(lambda x: x[1] == "p1d/alerts" and sub.snapshot().index(x) >= n, 5)
        body = json.loads(m[2]) if m else {}
        T.check("--test-alert on MQTT: exit 0, the test alert on p1d/alerts",
                code == 0 and "alerts: the test alert was published on MQTT" in err and
                body.get("event") == "test" and body.get("title") == "p1d: test alert" and
                body.get("meter") is None, (code, err[-600:], m))
        time.sleep(0.5)
        T.check("--test-alert on MQTT: the daemon's connection and status stay (own client id, "
                "no will, no offline)",
                d.wait_log(r"mqtt: connection to .* lost", 0.5) is None and
                not [x for x in sub.snapshot()[n:] if x[1] == "p1d/status"] and
                retained_now(port, ("p1d/status",)).get("p1d/status") == b"online",
                [x[1:3] for x in sub.snapshot()[n:]])
        srv.routes["/both"] = [(200, "application/json", b"{}")]
        code, out, err = run(["--test-alert", "--source", "a=sim", "--alerts-mqtt", "true",
                              "--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_port()),
                              "--alerts-url", srv.url("/both")], timeout=30)
        T.check("--test-alert to a url and a broker nobody runs: exit 1, the url took it, MQTT "
                "says why at once",
                code == 1 and "alerts: the test alert was delivered" in err and
                re.search(r"the test alert was not published on MQTT: .*(refused|connect)", err)
                is not None, (code, err[-800:]))
    code, out, err = run(["--check-config", "--source", "a=sim", "--alerts-mqtt", "true"])
    T.check("--check-config: [alerts] mqtt without [mqtt] host is refused",
            code == 2 and "[alerts] mqtt = true needs [mqtt] host" in err, (code, err))
    code, out, err = run(["--check-config", "--source", "a=sim", "--alerts-mqtt", "true",
                          "--mqtt-host", "127.0.0.1", "--alerts-url", "https://ntfy.sh/p1d"])
    T.check("--check-config: the note names both ways",
            code == 0 and " to https://ntfy.sh/p1d (text) and on MQTT (TOPIC_PREFIX/alerts)" in err,
            (code, err))


def test_mqtt_broker_away(tmp, srv):
    """[alerts] mqtt with Home Assistant discovery: an event entity announces the alerts; alerts
    raised while the broker is down wait and go out in order once it is back (they used to be
    dropped); a reload that turns [alerts] mqtt off deletes the entity's config."""
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: mqtt alerts, broker away: mosquitto not installed (tools/setup.sh test)")
        return
    port, meter_port = free_port(), free_port()
    broker = Broker(tmp, port, name="alerts-away").start()
    dongle = fake_dongle(meter_port)
    conf = os.path.join(tmp, "p1d-alerts-away.conf")
    head = ("[http]\nlisten = 127.0.0.1:0\n[source home]\nspec = tcp:127.0.0.1:%d\n"
            "[mqtt]\nhost = 127.0.0.1\nport = %d\nstate_interval = 0\nreconnect_max = 1s\n"
            % (meter_port, port))
    write_conf(conf, head + "[alerts]\nmqtt = true\nevents = power_failure,message\n")
    config_topic = "homeassistant/event/p1d_alerts/alerts/config"
    sub = Mqtt(port, topics=("p1d/alerts", config_topic))
    d = Daemon(["--config", conf], tmp)
    conn = None
    try:
        conn = dongle.accept()[0]
        m = sub.wait(lambda x: x[1] == config_topic and x[2], 10)
        cfg = json.loads(m[2]) if m else {}
        T.check("alerts entity: an event entity on the broker, retained, for p1d/alerts",
                m is not None and config_topic in retained_now(port, (config_topic,)) and
                cfg.get("state_topic") == "p1d/alerts" and
                cfg.get("unique_id") == "p1d_alerts" and
                cfg.get("default_entity_id") == "event.p1d_alerts" and
                cfg.get("availability_topic") == "p1d/status" and
                cfg.get("device", {}).get("identifiers") == ["p1d.alerts"], repr(m))
        T.check("alerts entity: every event an alert carries is an event type",
                cfg.get("event_types") == ["stale", "back", "power_failure", "message", "capacity",
                                           "overload", "negative_price", "daily", "test"],
                cfg.get("event_types"))
        T.check("alerts entity: the template turns the alert's event into event_type",
                "'event_type': value_json.event" in cfg.get("value_template", "") and
                "| to_json" in cfg.get("value_template", ""), cfg.get("value_template"))
        now = int(time.time())
        conn.sendall(nl_telegram(now - 2))
        time.sleep(1.0)
        broker.stop()
        sub.close()
        T.check("broker away: p1d notices", d.wait_log(r"mqtt: connection to .* lost", 10)
                is not None, d.text()[-600:])
        conn.sendall(nl_telegram(now - 1, failures=5))
        time.sleep(0.5)
        conn.sendall(nl_telegram(now, failures=5, text="Storing"))
        T.check("broker away: the alert waits, logged once",
                d.wait_log(r"alerts: 'p1d: power failure at meter home' waits to be published "
                           r"on MQTT: not connected to the broker; it goes out when the broker is "
                           r"back", 10) is not None, d.text()[-800:])
        def alerts_pub(pred):
            return wait_for(lambda: [e for e in [pub_entry(d, "alerts") or {}] if pred(e)], 10)

        pe = (alerts_pub(lambda e: "2 alerts waiting" in (e.get("last_error") or "")) or [{}])[0]
        T.check("broker away: the alerts publisher says what waits",
                pe.get("state") == "retrying" and pe.get("last_error") ==
                "MQTT: not connected to the broker; 2 alerts waiting" and
                pe.get("delivered") == 0, pe)
        lst = json.loads(http(d.http_port(), "/api/alerts")[2]).get("alerts") or []
        T.check("broker away: /api/alerts lists both as waiting for MQTT",
                [(x.get("event"), x.get("mqtt"), "url" in x) for x in lst] ==
                [("message", "waiting", False), ("power_failure", "waiting", False)], lst)
        write_conf(conf, head + "[alerts]\nmqtt = true\nevents = power_failure,message,stale\n")
        d.signal(signal.SIGHUP)
        T.check("broker away, [alerts] changed by a reload: the waiting alerts are kept",
                d.wait_log(r"alerts: 2 waiting alerts kept over the reload", 10) is not None,
                d.text()[-600:])
        broker.start()
        sub = Mqtt(port, topics=("p1d/alerts", config_topic))
        def published():
            return [json.loads(x[2]) for x in sub.snapshot() if x[1] == "p1d/alerts"]

        got = wait_for(lambda: len(published()) >= 2 and published(), 15) or published()
        T.check("broker back: both alerts published, in order",
                [g.get("event") for g in got] == ["power_failure", "message"] and
                got[1].get("message") == "Storing", got)
        T.check("broker back: the log says they went out", d.wait_log(
            r"alerts: published on MQTT again \(2 waiting alerts sent\)", 5) is not None,
            d.text()[-600:])
        pe = (alerts_pub(lambda e: e.get("delivered") == 2) or [{}])[0]
        T.check("broker back: counted as delivered, the publisher idle again",
                pe.get("state") == "idle" and pe.get("last_error") is None, pe)
        lst = json.loads(http(d.http_port(), "/api/alerts")[2]).get("alerts") or []
        T.check("broker back: /api/alerts says both were delivered on MQTT (kept over the reload)",
                [(x.get("event"), x.get("mqtt")) for x in lst] ==
                [("message", "delivered"), ("power_failure", "delivered")], lst)
        T.check("broker back: the entity announced again on the new broker",
                sub.wait(lambda x: x[1] == config_topic and x[2], 10) is not None)
        n = len(sub.snapshot())
        write_conf(conf, head)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", 10, count=2)
        T.check("alerts off by a reload: /api/alerts says so, with no list",
                json.loads(http(d.http_port(), "/api/alerts")[2]) ==
                {"enabled": False, "alerts": []})
        T.check("[alerts] mqtt off by a reload: the entity's config is deleted",
                sub.wait(lambda x: x[1] == config_topic and not x[2] and x[3] is not None and
                         sub.snapshot().index(x) >= n, 10) is not None and
                config_topic not in retained_now(port, (config_topic,)),
                [x[:3] for x in sub.snapshot()[n:]])
    finally:
        d.stop()
        if conn:
            conn.close()
        dongle.close()
        sub.close()
        broker.stop()


def test_mqtt_restart(tmp, srv):
    """[alerts] mqtt with a store: an alert raised while the broker is away outlives a restart of
    p1d and is published once p1d is connected again."""
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: mqtt alerts over a restart: mosquitto not installed (tools/setup.sh test)")
        return
    port, meter_port = free_port(), free_port()
    db = os.path.join(tmp, "mqtt-keep.db")
    dongle = fake_dongle(meter_port)
    conf = os.path.join(tmp, "p1d-mqtt-keep.conf")
    write_conf(conf, "[http]\nlisten = 127.0.0.1:0\n[source home]\nspec = tcp:127.0.0.1:%d\n"
               "[store]\ndb = %s\n[mqtt]\nhost = 127.0.0.1\nport = %d\nstate_interval = 0\n"
               "reconnect_max = 1s\n[alerts]\nmqtt = true\nevents = power_failure\n"
               % (meter_port, db, port))
    d = Daemon(["--config", conf], tmp)
    broker = sub = None
    try:
        conn = dongle.accept()[0]
        now = int(time.time())
        conn.sendall(nl_telegram(now - 1) + nl_telegram(now, failures=5))
        T.check("no broker yet: the alert waits",
                d.wait_log(r"alerts: 'p1d: power failure at meter home' waits to be published "
                           r"on MQTT", 10) is not None, d.text()[-800:])
        code = d.stop()
        conn.close()
        T.check("stopped: the table keeps it waiting for MQTT",
                code == 0 and [(r[1], r[4], r[5]) for r in alert_rows(db)] ==
                [("power_failure", None, "waiting")], alert_rows(db))
        broker = Broker(tmp, port, name="alerts-keep").start()
        sub = Mqtt(port, topics=("p1d/alerts",))
        d = Daemon(["--config", conf], tmp)
        conn = dongle.accept()[0]
        m = sub.wait(lambda x: x[1] == "p1d/alerts", 15)
        got = json.loads(m[2]) if m else {}
        T.check("restarted with the broker there: the alert of before is published",
                got.get("event") == "power_failure" and "5 short" in got.get("message", ""), m)
        rows = wait_for(lambda: (lambda r: r if r and r[0][5] == "delivered" else None)(
            alert_rows(db)), 5) or alert_rows(db)
        T.check("... and the table says delivered", [r[5] for r in rows] == ["delivered"], rows)
        conn.close()
        topic = "homeassistant/event/p1d_alerts/alerts/config"
        T.check("... the alerts entity is announced",
                wait_for(lambda: topic in retained_now(port, (topic,)), 10))
        d.stop()
        with open(conf) as f:
            text = f.read()
        write_conf(conf, text[:text.index("[alerts]")])
        d = Daemon(["--config", conf], tmp)
        conn = dongle.accept()[0]
        T.check("restarted without [alerts] mqtt: the entity this p1d announced before (its "
                "alerts table says so) is deleted, logged",
                d.wait_log(r"info: mqtt: Home Assistant's alerts entity of an earlier run "
                           r"deleted: \[alerts\] mqtt is off", 10) is not None and
                wait_for(lambda: topic not in retained_now(port, (topic,)), 5), d.text()[-600:])
        conn.close()
    finally:
        d.stop()
        dongle.close()
        if sub:
            sub.close()
        if broker:
            broker.stop()


def test_mqtt_entity_after_restart(tmp, srv):
    """Without a store p1d cannot know whether the alerts entity on the broker is its own (another
    p1d may share the topic prefix): a start without [alerts] mqtt leaves it; a start with it
    announces it again."""
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: alerts entity over a restart: mosquitto not installed (tools/setup.sh test)")
        return
    port = free_port()
    broker = Broker(tmp, port, name="alerts-entity").start()
    conf = os.path.join(tmp, "p1d-alerts-entity.conf")
    head = ("[http]\nlisten = 127.0.0.1:0\n[source home]\nspec = sim\n[mqtt]\nhost = 127.0.0.1\n"
            "port = %d\nstate_interval = 0\n" % port)
    topic = "homeassistant/event/p1d_alerts/alerts/config"
    d = None
    try:
        write_conf(conf, head + "[alerts]\nmqtt = true\n")
        d = Daemon(["--config", conf], tmp)
        wait_for(lambda: topic in retained_now(port, (topic,)), 10)
        d.stop()
        write_conf(conf, head)
        d = Daemon(["--config", conf], tmp)
        d.wait_log(r"mqtt: connected to", 10)
        time.sleep(1.5)
        T.check("no store, restart without [alerts] mqtt: the entity on the broker is left alone",
                topic in retained_now(port, (topic,)) and "alerts entity of an earlier run"
                not in d.text(), d.text()[-600:])
    finally:
        if d:
            d.stop()
        broker.stop()


AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")


def local_midnight(t, days_back=0):
    """Unix s of the Dutch local midnight days_back days before the day holding t."""
    d = datetime.datetime.fromtimestamp(t, AMS).date() - datetime.timedelta(days=days_back)
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=AMS).timestamp())


def daily_capture(path, now, first=None):
    """A DSMR 5 telegram every 15 minutes from 8 days before today (or from `first`) until now,
    with gas: 0.125 kWh per quarter hour before yesterday, 0.1 yesterday (9.6 kWh on a day of 24
    hours), 0.05 today; yesterday 0.02 kWh exported per quarter from 10:00 to 14:00 (0.32 kWh,
    the readings then at 0.08 kW of export) and 4.21 kW at 18:00; 0.01 m3 gas per quarter
    hour."""
    y0, t0 = local_midnight(now, 1), local_midnight(now)
    t = first or local_midnight(now, 8)
    imp, exp, gas, out = 1000.0, 0.0, 500.0, []
    while t < now - 60:
        lt = datetime.datetime.fromtimestamp(t, AMS)
        imp += 0.125 if t <= y0 else 0.1 if t <= t0 else 0.05
        yday = y0 < t <= t0
        exporting = yday and 10 <= lt.hour < 14
        if exporting:
            exp += 0.02
        gas += 0.01
        body = ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
                "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
                "1-0:1.8.1(%010.3f*kWh)\r\n1-0:1.8.2(000000.000*kWh)\r\n"
                "1-0:2.8.1(%010.3f*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n"
                "0-0:96.14.0(0001)\r\n1-0:1.7.0(%06.3f*kW)\r\n1-0:2.7.0(%06.3f*kW)\r\n"
                "0-1:24.1.0(003)\r\n0-1:96.1.0(4730303339303031363532303530323136)\r\n"
                "0-1:24.2.1(%s)(%09.3f*m3)\r\n!"
                % (meter_time(t), imp, exp, 4.21 if yday and (lt.hour, lt.minute) == (18, 0)
                   else 0 if exporting else 0.5, 0.08 if exporting else 0, meter_time(t),
                   gas)).encode()
        out.append(body + b"%04X\r\n" % crc16(body))
        t += 900
    with open(path, "wb") as f:
        f.write(b"".join(out))


def near_midnight(what, now):
    """True (and a visible skip) within 5 minutes of the Dutch midnight, where "yesterday" of a
    daily test could change under it."""
    if local_midnight(now + 300) != local_midnight(now) or now - local_midnight(now) < 300:
        T.check("%s: skipped within 5 minutes of midnight (Europe/Amsterdam)" % what, True)
        return True
    return False


def daily_import(tmp, db, meter, now, first=None, what="daily"):
    """daily_capture() of meter imported into db with p1 import."""
    path = os.path.join(tmp, "%s-%s.txt" % (os.path.basename(db), meter))
    daily_capture(path, now, first)
    code, out, err = p1(["import", "--db", db, "--meter", meter, path])
    T.check("%s: %s's capture imported" % (what, meter), code == 0, err)


DAILY_PRICES = ("[prices]\nvalid_from = 2020-01-01\nimport_t1 = 0.30\nimport_t2 = 0.30\n"
                "export_t1 = 0.10\nexport_t2 = 0.10\ngas = 1.20\ndaily = 0.50\n")


def test_daily(tmp, srv):
    """[alerts] daily_at: yesterday's energy, gas and costs of each meter, as /api/summary has
    them, with the days before compared; sent at the start when the time of today has passed
    (once: not again after a reload or a restart), and a meter whose readings cover part of the
    day says so. A meter without readings that day gets none."""
    now = int(time.time())
    if near_midnight("daily", now):
        return
    db = os.path.join(tmp, "daily.db")
    daily_import(tmp, db, "home", now)
    # garage: from yesterday 15:05 on
    daily_import(tmp, db, "garage", now, local_midnight(now, 1) + 15 * 3600 + 300)
    # cabin: from noon 5 days before on: that day is not whole and stays out of the mean
    daily_import(tmp, db, "cabin", now, local_midnight(now, 5) + 12 * 3600)
    srv.routes["/daily"] = [(200, "application/json", b'{"id":"x"}')]
    conf = os.path.join(tmp, "daily.conf")
    write_conf(conf, DAILY_PRICES + "[alerts]\nurl = %s\nformat = json\ndaily_at = 00:00\n"
               "events = daily\n" % srv.url("/daily"))
    dongles = [fake_dongle() for _ in range(4)]
    args = ["--config", conf, "--db", db, "--listen", "127.0.0.1:0"]
    for m, dg in zip(("home", "garage", "shed", "cabin"), dongles):
        args += ["--source", "%s=tcp:127.0.0.1:%d" % (m, dg.getsockname()[1])]
    d = Daemon(args, tmp)
    try:
        port = d.http_port()
        got = wait_for(lambda: len(posts(srv, "/daily")) >= 3, 10)
        bodies = {}
        for c in posts(srv, "/daily"):
            j = json.loads(c["body"])
            bodies[j["meter"]] = j
        home, garage = bodies.get("home", {}), bodies.get("garage", {})
        y = datetime.datetime.fromtimestamp(local_midnight(now, 1), AMS)
        day = "%s %d %s" % (y.strftime("%A"), y.day, y.strftime("%B"))
        T.check("daily: at the start (daily_at passed), one alert for each meter with readings",
                got and sorted(bodies) == ["cabin", "garage", "home"] and
                home.get("event") == "daily",
                bodies)
        T.check("daily: the title has yesterday's import and costs",
                home.get("title") == "p1d: yesterday at meter home: 9.6 kWh, 4.50 EUR",
                home.get("title"))
        s, _, b = http(port, "/api/summary?meter=home&period=day&at=%s"
                       % y.replace(hour=12).isoformat())
        summ = json.loads(b) if s == 200 else {}
        T.check("daily: /api/summary agrees (9.6 kWh, 0.32 exported, 0.96 m3, 4.50 EUR)",
                summ.get("import_kwh") == 9.6 and summ.get("export_kwh") == 0.32 and
                summ.get("gas_m3") == 0.96 and summ.get("cost_eur", {}).get("total") == 4.5,
                b[:400])
        T.check("daily: the message tells the day, the energy, gas and costs, the peak and the "
                "days before",
                home.get("message") ==
                "%s at meter home: 9.600 kWh imported, 0.320 kWh exported (net 9.280 kWh), "
                "0.960 m3 gas.\nCosts: 4.50 EUR (energy 2.85, gas 1.15, fixed 0.50).\n"
                "Highest power: 4210 W imported, 80 W exported.\nImported 20 %% less than the "
                "7 days before, which "
                "averaged 12.000 kWh a day." % day, home.get("message"))
        T.check("daily: a meter with readings for part of the day says which hours",
                "Readings cover 9 of the day's 24 hours (15:00 to 24:00)." in
                garage.get("message", "") and "days before" not in garage.get("message", "")
                if local_midnight(now) - local_midnight(now, 1) == 86400 else True,
                garage.get("message"))
        T.check("daily: the mean of the days before leaves out a day p1d had readings of only "
                "from noon on (12 kWh, not 10.5 with that day's 6)",
                "\nImported 20 % less than the 3 whole days of the 7 before, which averaged "
                "12.000 kWh a day." in bodies.get("cabin", {}).get("message", "")
                if local_midnight(now, 1) - local_midnight(now, 5) == 4 * 86400 else True,
                bodies.get("cabin", {}).get("message"))
        T.check("daily: a meter without readings yesterday gets no daily alert",
                "shed" not in bodies, bodies)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload", 5)
        time.sleep(2.5)
        T.check("daily: a reload does not send it again", len(posts(srv, "/daily")) == 3,
                len(posts(srv, "/daily")))
    finally:
        d.stop()
    rows = sqlite3.connect(db).execute(
        "SELECT meter, url FROM alerts WHERE event = 'daily' ORDER BY meter").fetchall()
    T.check("daily: both are in the alerts table, delivered",
            rows == [("cabin", "delivered"), ("garage", "delivered"), ("home", "delivered")], rows)
    # the alerts table keeps the newest 1000 alerts: a fleet's run pushes its own first rows
    # out, and the days told must not go with them (each re-sent alert pushed out the next)
    for what in ("the alerts_daily table says it went out",
                 "also after the alerts table lost those rows"):
        d = Daemon(args, tmp)
        try:
            d.http_port()
            time.sleep(2.5)
            T.check("daily: a restart does not send it again: %s" % what,
                    len(posts(srv, "/daily")) == 3, len(posts(srv, "/daily")))
        finally:
            d.stop()
        con = sqlite3.connect(db)
        days = con.execute("SELECT meter, day FROM alerts_daily ORDER BY meter").fetchall()
        con.execute("DELETE FROM alerts")
        con.commit()
        con.close()
    T.check("daily: alerts_daily holds the day told of each meter",
            days == [("cabin", local_midnight(now, 1)), ("garage", local_midnight(now, 1)),
                     ("home", local_midnight(now, 1))], days)
    for dg in dongles:
        dg.close()


def daily_daemon(tmp, srv, path, db, alerts, env):
    """p1d on db with the daily prices and [alerts] url = srv's path plus the alerts lines, meter
    home on a silent fake dongle, env for LD_PRELOAD; returns (daemon, dongle): stop both."""
    srv.routes[path] = [(200, "application/json", b'{"id":"x"}')]
    conf = os.path.join(tmp, path.strip("/") + ".conf")
    write_conf(conf, DAILY_PRICES + "[alerts]\nurl = %s\n%s" % (srv.url(path), alerts))
    dongle = fake_dongle()
    d = Daemon(["--config", conf, "--db", db, "--listen", "127.0.0.1:0", "--source",
                "home=tcp:127.0.0.1:%d" % dongle.getsockname()[1]], tmp, env=env)
    return d, dongle


def test_daily_scheduled(tmp, srv):
    """The daily alert goes out at daily_at, not before: p1d starts (its clock moved by a shim)
    3 s before that minute; the alert comes with it, as ntfy takes it (low priority)."""
    so = build_shim(tmp, "dailyclock", CLOCK_SHIM)
    if not so:
        return
    now = int(time.time())
    at = (now + 120) // 60 * 60
    if local_midnight(at) != local_midnight(now) or now - local_midnight(now) < 300:
        T.check("daily scheduled: skipped within 5 minutes of midnight (Europe/Amsterdam)", True)
        return
    db = os.path.join(tmp, "daily2.db")
    daily_import(tmp, db, "home", now, what="daily scheduled")
    off = os.path.join(tmp, "daily-offset")
    with open(off, "w") as fh:
        fh.write(str(at - 3 - int(time.time())))
    lt = datetime.datetime.fromtimestamp(at, AMS)
    d, dongle = daily_daemon(tmp, srv, "/daily2", db,
                             "daily_at = %02d:%02d\n" % (lt.hour, lt.minute),
                             {"LD_PRELOAD": so, "P1D_TEST_OFFSET": off})
    try:
        d.http_port()
        early = len(posts(srv, "/daily2"))
        got = wait_for(lambda: len(posts(srv, "/daily2")) >= 1, 10)
        c = posts(srv, "/daily2")[0] if got else {}
        T.check("daily scheduled: nothing before daily_at, the alert at it",
                early == 0 and got and header(c, "Title") ==
                "p1d: yesterday at meter home: 9.6 kWh, 4.50 EUR", (early, c))
        T.check("daily scheduled: as ntfy takes it: low priority, a chart",
                header(c, "Priority") == "low" and header(c, "Tags") == "bar_chart" and
                c.get("body", b"").startswith(b"%s %d " % (
                    datetime.datetime.fromtimestamp(local_midnight(now, 1), AMS)
                    .strftime("%A").encode(),
                    datetime.datetime.fromtimestamp(local_midnight(now, 1), AMS).day)), c)
    finally:
        d.stop()
        dongle.close()


# Fails every read of the fixed prices (the first thing the daily alert reads) with an I/O error
# while the file named by P1D_TEST_FAIL exists.
FAIL_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
typedef struct sqlite3_stmt sqlite3_stmt;
const char *sqlite3_sql(sqlite3_stmt *st);
int sqlite3_step(sqlite3_stmt *st)
{
    static int (*real)(sqlite3_stmt *);
    const char *flag = getenv("P1D_TEST_FAIL"), *sql = sqlite3_sql(st);
    if (!real)
        real = (int (*)(sqlite3_stmt *))dlsym(RTLD_NEXT, "sqlite3_step");
    if (flag && sql && strstr(sql, "FROM price_fixed") && access(flag, F_OK) == 0)
        return 10; /* SQLITE_IOERR */
    return real(st);
}
"""


def test_daily_retry(tmp, srv):
    """A daily alert whose figures cannot be read (the store fails) is not lost: p1d says when it
    tries again (10 s, then longer) and sends it once the store reads again, once."""
    so = build_shim(tmp, "dailyfail", FAIL_SHIM)
    if not so:
        return
    now = int(time.time())
    if near_midnight("daily retry", now):
        return
    db = os.path.join(tmp, "daily3.db")
    daily_import(tmp, db, "home", now, what="daily retry")
    flag = os.path.join(tmp, "daily-fail")
    open(flag, "w").close()
    d, dongle = daily_daemon(tmp, srv, "/daily3", db,
                             "format = json\ndaily_at = 00:00\nevents = daily\n",
                             {"LD_PRELOAD": so, "P1D_TEST_FAIL": flag})
    try:
        d.http_port()
        said = d.wait_log(r"the daily alert of meter home for \d{4}-\d\d-\d\d is tried again "
                          r"in 10 s", 15)
        T.check("daily retry: a failed read is logged with when it is tried again",
                said and len(posts(srv, "/daily3")) == 0, d.text()[-600:])
        T.check("daily retry: the next wait is longer (20 s)",
                d.wait_log(r"is tried again in 20 s", 20), d.text()[-600:])
        os.unlink(flag)
        got = wait_for(lambda: len(posts(srv, "/daily3")) >= 1, 30)
        c = json.loads(posts(srv, "/daily3")[0]["body"]) if got else {}
        T.check("daily retry: sent once the store reads again",
                got and c.get("event") == "daily" and c.get("meter") == "home" and
                c.get("title") == "p1d: yesterday at meter home: 9.6 kWh, 4.50 EUR", c)
        time.sleep(2)
        T.check("daily retry: sent once", len(posts(srv, "/daily3")) == 1,
                len(posts(srv, "/daily3")))
        T.check("daily retry: p1d kept serving", d.meters() is not None)
    finally:
        d.stop()
        dongle.close()


def test_check_config(tmp):
    path = os.path.join(tmp, "check.conf")
    cases = [
        ("url = ftp://example.org/x", r"\[alerts\] url: expected an http:// or https:// URL"),
        ("url = https://ntfy.sh/x\nevents = stale, fire",
         r"\[alerts\] events: unknown event 'fire'"),
        ("header = Authorization: Bearer %s" % TOKEN, r"\[alerts\] header is set, but \[alerts\] "
         r"url is empty"),
        ("url = https://ntfy.sh/x\nformat = xml", r"format"),
        ("url = https://ntfy.sh/x\nevents = stale,overload",
         r"\[alerts\] events: overload needs \[alerts\] fuse"),
        ("url = https://ntfy.sh/x\nfuse = 1001", r"fuse"),
        ("url = https://ntfy.sh/x\nevents = negative_price",
         r"\[alerts\] events: negative_price needs \[store\] db"),
        ("url = https://ntfy.sh/x\nevents = daily",
         r"\[alerts\] events: daily needs \[alerts\] daily_at"),
        ("url = https://ntfy.sh/x\ndaily_at = 07:30",
         r"\[alerts\] daily_at needs \[store\] db"),
        ("daily_at = 07:30", r"\[alerts\] daily_at is set, but neither \[alerts\] url nor "
         r"\[alerts\] mqtt"),
        ("url = https://ntfy.sh/x\ndaily_at = 7.30",
         r"\[alerts\] daily_at: expected HH:MM such as 07:30, got '7.30'"),
        ("url = https://ntfy.sh/x\nevents = stale\ndaily_at = 07:30\n[store]\ndb = %s"
         % os.path.join(tmp, "check.db"),
         r"\[alerts\] daily_at is set, but events leaves daily out"),
    ]
    for text, want in cases:
        write_conf(path, "[alerts]\n%s\n" % text)
        code, out, err = run(["--check-config", "--config", path, "--source", "a=sim"])
        T.check("--check-config: %s" % text.replace(TOKEN, "TOKEN").replace("\n", " / "),
                code == 2 and re.search(want, err) and TOKEN not in out + err, (code, err))
    # every problem of [alerts] in one run, each with its line, like every other section's
    write_conf(path, "[alerts]\nurl = ftp://example.org/x\nevents = stale, fire, smoke, daily\n"
               "daily_at = 7h30\n")
    code, out, err = run(["--check-config", "--config", path, "--source", "a=sim"])
    want = [r":2: \[alerts\] url: expected an http:// or https:// URL",
            r":3: \[alerts\] events: unknown event 'fire'",
            r":3: \[alerts\] events: unknown event 'smoke'",
            r":4: \[alerts\] daily_at: expected HH:MM such as 07:30, got '7h30'",
            r":4: \[alerts\] daily_at needs \[store\] db"]
    lines = err.splitlines()
    T.check("--check-config: five problems of [alerts] in one run, in file order",
            code == 2 and len(lines) == len(want) and all(
                re.search(w, l) for w, l in zip(want, lines)), (code, err))
    write_conf(path, "[alerts]\nurl = https://ntfy.sh/p1d\nheader = Authorization: Bearer %s\n"
               "events = stale,capacity\n" % TOKEN)
    code, out, err = run(["--check-config", "--config", path, "--source", "a=sim"])
    T.check("--check-config: a valid [alerts], the header masked",
            code == 0 and "header = ********" in out and TOKEN not in out + err and
            "events = stale,capacity" in out, (code, out[-400:], err))
    T.check("--check-config: a note says which alerts go where, the header by name only",
            "p1d: note: [alerts] url: stale (silent for 60 s), capacity to https://ntfy.sh/p1d "
            "(text, with the header Authorization)\n" in err, err)
    write_conf(path, "[alerts]\nurl = https://ntfy.sh/p1d?auth=%s\n" % TOKEN)
    code, out, err = run(["--check-config", "--config", path, "--source", "a=sim"])
    T.check("--check-config: events = all without fuse and store: the note says what is left out",
            code == 0 and "p1d: note: [alerts] url: stale (silent for 60 s), power_failure, "
            "message, capacity to https://ntfy.sh/p1d (text); no overload alerts without "
            "[alerts] fuse; no negative_price alerts without [store] db" in err and
            TOKEN not in err, err)


def main():
    srv = PriceServer()
    try:
        with tmpdir() as tmp:
            T.run([test_ntfy, test_json_capacity, test_server_trouble, test_reload_keeps,
                   test_restart_keeps, test_header_file,
                   test_overload, test_negative_price, test_test_alert, test_mqtt,
                   test_mqtt_broker_away, test_mqtt_restart, test_mqtt_entity_after_restart,
                   test_daily, test_daily_scheduled, test_daily_retry],
                  tmp, srv)
            T.run([test_check_config], tmp)
    finally:
        srv.close()
    T.done()


main()
