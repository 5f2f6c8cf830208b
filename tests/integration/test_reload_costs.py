#!/usr/bin/env python3
"""test_reload_costs.py: regressions found by QA: a SIGHUP that moves the relay to a busy port
keeps the running relay (and a later SIGHUP moves it), a publisher that cannot start on SIGHUP
keeps the running one, [prices] that a full disk keeps out of the store are recorded by the next
SIGHUP, costs with partly priced hours report the unpriced energy instead of
counting it free, and p1 tool nits (prices list header, price syntax, export heat_gj)."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, free_port, need_p1d, telegram, tmpdir  # noqa: E402
from store_helpers import P1  # noqa: E402

T = Checks("test_reload_costs")
need_p1d(T)


def write_conf(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def relay_gets_telegram(p, port, i):
    """Connects to the relay on port, feeds telegram i on p's stdin, returns True when it comes."""
    n = p.text().count("relay: client")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return False
    try:
        end = time.time() + 5
        while time.time() < end and p.text().count("relay: client") == n:
            time.sleep(0.02)
        t = telegram(i)
        p.proc.stdin.write(t)
        p.proc.stdin.flush()
        s.settimeout(3)
        got = b""
        while t not in got:
            b = s.recv(65536)
            if not b:
                break
            got += b
        return t in got
    except OSError:
        return False
    finally:
        s.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_relay_reload(tmp):
    conf = os.path.join(tmp, "relay.conf")
    a = free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    b = busy.getsockname()[1]
    base = "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = stdin\n[relay]\nlisten = 127.0.0.1:%d\n"
    write_conf(conf, base % a)
    p = Daemon(["--config", conf], tmp, stdin=subprocess.PIPE)
    try:
        T.check("relay on port A", p.wait_log(r"relay: listening on 127.0.0.1:%d" % a), p.text())
        T.check("relay on A serves telegrams", relay_gets_telegram(p, a, 1), p.text())
        write_conf(conf, base % b)
        p.signal(signal.SIGHUP)
        m = p.wait_log(r"reload: relay: cannot listen on 127.0.0.1:%d: [^;\n]*; keeping the relay "
                       r"on 127.0.0.1:%d" % (b, a), 5)
        T.check("busy port B: the log names the failure and the relay kept", m, p.text())
        T.check("... and the reload is not logged as done",
                p.wait_log(r"error: reload .*relay.conf: 1 part failed", 5)
                and "reloaded" not in p.text(), p.text())
        T.check("the relay on A still serves telegrams", relay_gets_telegram(p, a, 2), p.text())
        busy.close()
        p.signal(signal.SIGHUP)
        T.check("B free: the next SIGHUP moves the relay",
                p.wait_log(r"relay: listening on 127.0.0.1:%d" % b, 5) and
                p.wait_log(r"reloaded .*relay.conf: 0 sources added", 5), p.text())
        T.check("the relay on B serves telegrams", relay_gets_telegram(p, b, 3), p.text())
        T.check("A is closed", refused(a))
        write_conf(conf, base.replace("[relay]\n", "[relay]\nclients = 3\n") % b)
        p.signal(signal.SIGHUP)
        T.check("a change on the same address restarts the relay there",
                p.wait_log(r"relay: listening on 127.0.0.1:%d" % b, 5, count=2) and
                p.wait_log(r"reloaded .*relay.conf", 5, count=2), p.text())
        T.check("the relay on B still serves telegrams", relay_gets_telegram(p, b, 4), p.text())
        T.check("still running", p.proc.poll() is None, p.text())
    finally:
        busy.close()
        p.proc.stdin.close()
        p.stop()


def test_publisher_reload(tmp):
    """A publisher whose new settings are wrong (a missing password_file) keeps running: the
    reload's own check refuses the file as a whole, like --check-config does."""
    conf = os.path.join(tmp, "pub.conf")
    base = ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n[source a]\nspec = sim:1\n"
            "[influxdb]\nurl = http://127.0.0.1:%d/\ndatabase = p1\n" %
            (os.path.join(tmp, "pub.db"), free_port()))
    write_conf(conf, base)
    p = Daemon(["--config", conf], tmp)
    try:
        p.http_port()
        T.check("influxdb publisher running", p.wait_log(r"influxdb: writing to", 5), p.text())
        missing = os.path.join(tmp, "no-such-file")
        write_conf(conf, base + "password_file = %s\n" % missing)
        p.signal(signal.SIGHUP)
        T.check("a publisher setting that cannot work on SIGHUP: the file and key named, the "
                "running configuration kept",
                p.wait_log(r"error: reload: [^\n]*pub.conf[^\n]*password_file[^\n]*no-such-file[^\n]*"
                           r"keeping the running configuration", 5), p.text())
        T.check("... and not reported as reloaded", "reloaded" not in p.text(), p.text())
        names = [x.get("name") for x in p.meter("a").get("publishers", [])]
        T.check("... and the publisher is still listed", names == ["influxdb"], str(names))
        T.check("... and was never stopped", "influxdb: stopped" not in p.text(), p.text())
    finally:
        p.stop()


def test_prices_not_recorded(tmp):
    """Bug: a reload whose new [prices] the database refused (a full disk; a trigger here) logged a
    warning and 'reloaded', and no later SIGHUP recorded them (the file seemed unchanged): the
    costs went on with the old price until a restart."""
    conf = os.path.join(tmp, "prices.conf")
    db = os.path.join(tmp, "prices.db")
    base = ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n[source a]\nspec = sim:1\n"
            "[prices]\nimport = %s\n")
    write_conf(conf, base % (db, "0.25"))
    p = Daemon(["--config", conf], tmp)
    try:
        port = p.http_port()
        T.check("prices: p1d started", port is not None, p.text())

        def fixed_import():
            st, j = get_json(port, "/api/prices")
            return [f.get("import") for f in j.get("fixed", [])]

        T.check("prices: 0.25 recorded at the start", fixed_import() == [0.25], str(fixed_import()))
        con = sqlite3.connect(db, timeout=10)
        con.execute("CREATE TRIGGER full BEFORE INSERT ON price_fixed BEGIN "
                    "SELECT RAISE(FAIL, 'database or disk is full'); END")
        con.commit()
        write_conf(conf, base % (db, "0.30"))
        p.signal(signal.SIGHUP)
        T.check("prices the database refuses: an error that says the old ones stay in force, "
                "and a part that failed",
                p.wait_log(r"error: reload: prices: cannot save fixed prices: database or disk is "
                           r"full; the prices recorded before stay in force", 5) and
                p.wait_log(r"error: reload [^\n]*prices.conf: 1 part failed", 5), p.text())
        con.execute("DROP TRIGGER full")
        con.commit()
        con.close()
        p.signal(signal.SIGHUP)
        T.check("the next SIGHUP records them, the file unchanged",
                p.wait_log(r"reload: \[prices\] recorded", 5) is not None, p.text())
        T.check("... and they are in force", fixed_import() == [0.30], str(fixed_import()))
    finally:
        p.stop()


def http(port, path, method="GET", body=None, ctype=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method=method,
                                 headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(port, path):
    st, b = http(port, path)
    try:
        return st, json.loads(b)
    except ValueError:
        return st, {}


def test_partial_costs(tmp):
    """Three hours of readings (1 Wh every 10 s), a price for the middle hour only: the cost is
    that hour's, and the other two hours are reported as unpriced instead of free."""
    cap = os.path.join(tmp, "costs.txt")
    with open(cap, "wb") as f:
        for k in range(3 * 360):
            f.write(telegram(k, seconds=9 * 3600 + k * 10))
    d = Daemon(["--source", "home=file:%s:clock=meter" % cap, "--db", os.path.join(tmp, "c.db"),
                "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        d.wait_meter("home", lambda m: m.get("state") == "stopped")
        time.sleep(1.5)  # the store commits once a second
        st, b = http(port, "/api/prices", "PUT", b"time,price\n2024-01-15T10:00:00+01:00,0.25\n",
                     "text/csv")
        T.check("a price for 10:00-11:00 only", st == 200, b)
        st, s = get_json(port, "/api/summary?at=2024-01-15T12:00")
        ce = s.get("cost_eur") or {}
        T.check("summary: the total is the priced hour's (0.36 kWh x 0.25)",
                st == 200 and ce.get("total") == 0.09 and ce.get("energy") == 0.09, s)
        T.check("summary: partial, with the unpriced energy (1.079 - 0.36 kWh)",
                ce.get("partial") is True and ce.get("unpriced_kwh") == 0.719 and
                s.get("import_kwh") == 1.079 and ce.get("unpriced_gas_m3") == 0, s)
        q = "/api/history?from=2024-01-15T09:00&to=2024-01-15T12:00"
        st, h = get_json(port, q + "&step=1h")
        T.check("history 1h: cost only where priced, unpriced_kwh elsewhere (a default field)",
                h.get("cost_eur") == [None, 0.09, None] and
                h.get("unpriced_kwh") == [0.36, 0, 0.359], h)
        st, h = get_json(port, q + "&step=1d&fields=cost_eur,unpriced_kwh")
        T.check("history 1d: cost and unpriced energy of the day",
                h.get("cost_eur") == [0.09] and h.get("unpriced_kwh") == [0.719], h)
        st, h = get_json(port, q + "&step=15m&fields=cost_eur,unpriced_kwh")
        T.check("history 15m: each quarter priced or unpriced",
                h.get("cost_eur", [])[4:8] == [0.0225] * 4 and
                h.get("unpriced_kwh", [])[:4] == [0.09] * 4, h)
        st, h = get_json(port, q + "&step=1h&fields=cost_eur")
        T.check("unpriced_kwh is not added when fields are asked for", "unpriced_kwh" not in h, h)
        # prices are plain decimals: QA's 0,2 and 1e3 were taken
        for body, ctype, want in (
                (b'[{"time":"2024-01-15T09:00","price":"0,2"}]', "application/json",
                 "got '0,2' (write the decimals after a '.', not a ',')"),
                (b"time,price\n2024-01-15T09:00,1e3\n", "text/csv",
                 "got '1e3' (write the number out, without an exponent)"),
                (b"time,price\n2024-01-15T09:00,0,2\n", "text/csv",
                 "line 2: 3 fields, but the header has 2")):
            st, b = http(port, "/api/prices", "PUT", body, ctype)
            T.check("PUT %r is a 400 that says why" % body, st == 400 and want in b.decode(), b)
        st, b = http(port, "/api/prices", "PUT", b'[{"time":"2024-01-15T09:00","price":1e-05}]',
                     "application/json")
        T.check("a JSON number with an exponent is fine", st == 200, b)
        st, s = get_json(port, "/api/summary?at=2024-01-15T12:00")
        T.check("... and the costs follow", (s.get("cost_eur") or {}).get("unpriced_kwh") == 0.359,
                s)
    finally:
        d.stop()


def p1(args):
    r = subprocess.run([P1] + args, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def test_p1_tool(tmp):
    db = os.path.join(tmp, "c.db")  # test_partial_costs filled it
    path = os.path.join(tmp, "one.csv")
    with open(path, "w") as f:
        f.write("time,price,export\n2024-01-16T00:00,0.2,0.05\n")
    code, out, err = p1(["prices", "import", "--db", db, path])
    T.check("p1 prices import: '1 power price' (singular)",
            code == 0 and out.startswith("imported 1 power price from "), out + err)
    path = os.path.join(tmp, "gas.json")
    with open(path, "w") as f:
        f.write('[{"time":"2024-01-16","price":1.25},{"time":"2024-01-17","price":1.3}]')
    code, out, err = p1(["prices", "import", "--db", db, "--kind", "gas", path])
    T.check("... '2 gas prices' (plural)", code == 0 and out.startswith("imported 2 gas prices "),
            out + err)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO price_fixed (valid_from, valid_to, import, daily, rule) "
                "VALUES (1700000000, 1800000000, 250000, 500000, 1)")
    con.commit()
    con.close()
    code, out, err = p1(["prices", "list", "--db", db, "--from", "2024-01-16", "--to", "2024-01-17"])
    lines = out.splitlines()
    T.check("p1 prices list: one CSV with one header",
            code == 0 and len(lines) == 4 and lines[0] ==
            "kind,from,to,import,import_t1,import_t2,export,export_t1,export_t2,gas,daily,"
            "monthly,capacity_per_kw_year,dynamic_import_factor,dynamic_import_add,"
            "dynamic_export_factor,dynamic_export_add,tariff_rule" and sum(1 for x in lines if x.startswith("kind,")) == 1, out + err)
    T.check("... every row has the header's columns",
            all(len(x.split(",")) == 18 for x in lines), out)
    T.check("... a fixed period, a power price (import, export) and a gas price (gas)",
            lines[1:] == ["fixed,2023-11-14T23:13:20+01:00,2027-01-15T09:00:00+01:00,0.250000,,,,,,,"
                          "0.500000,,,,,,,nl",
                          "power,2024-01-16T00:00:00+01:00,2024-01-16T01:00:00+01:00,0.200000,,,"
                          "0.050000,,,,,,,,,,,",
                          "gas,2024-01-16T00:00:00+01:00,2024-01-17T00:00:00+01:00,,,,,,,1.250000,,,,,,,,"],
            out)
    for text, want in (("time,price\n2024-01-16T00:00,1e3\n", "got '1e3' (write the number out"),
                       ("time,price\n2024-01-16T00:00,0,2\n", "3 fields, but the header has 2"),
                       ('[{"time":"2024-01-16","price":"0,2"}]', "got '0,2' (write the decimals")):
        with open(path, "w") as f:
            f.write(text)
        code, out, err = p1(["prices", "import", "--db", db, path])
        T.check("p1 prices import refuses %r with the reason" % text,
                code == 1 and want in err and "nothing imported" in err, out + err)
    code, out, err = p1(["export", "--db", db, "--from", "2024-01-15T09:00", "--to",
                         "2024-01-15T10:00", "--step", "raw"])
    head = out.split("\n", 1)[0].split(",")
    T.check("p1 export names heat as the API does (heat_gj, heat_counter_gj)",
            code == 0 and "heat_gj" in head and "heat_counter_gj" in head and "heat" not in head,
            head)
    cap = os.path.join(tmp, "one.txt")
    with open(cap, "wb") as f:
        f.write(telegram(1, seconds=3600))
    code, out, err = p1(["import", "--db", os.path.join(tmp, "one.db"), cap])
    T.check("p1 import: '1 telegram,' (singular)", code == 0 and ": 1 telegram, 1 stored" in err,
            out + err)
    code, out, err = p1(["import", "--db", os.path.join(tmp, "one.db"), cap])
    T.check("... 'already imported (1 telegram)'", "already imported (1 telegram)" in err, err)


def main():
    with tmpdir() as tmp:
        test_relay_reload(tmp)
        test_publisher_reload(tmp)
        test_prices_not_recorded(tmp)
        test_partial_costs(tmp)
        test_p1_tool(tmp)
    T.done()


if __name__ == "__main__":
    main()
