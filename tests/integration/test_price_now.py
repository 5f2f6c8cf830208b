#!/usr/bin/env python3
"""test_price_now.py: the electricity price in force now, for home automations: the gauges
p1d_price_import_eur_per_kwh and p1d_price_export_eur_per_kwh on /metrics and the retained
PREFIX/price/... topics with their Home Assistant discovery configs on a real mosquitto on
127.0.0.1. Dynamic prices uploaded with PUT /api/prices in slots of a few seconds around now,
adjusted by [prices] dynamic_import_factor/_add and dynamic_export_add, to the micro-euro: absent
without prices and with a file that stops before now, each slot in turn when it starts, absent
again (unavailable in Home Assistant, the values deleted) once the last slot ended. Fixed prices
per tariff follow the tariff the meter reports."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, crc16, free_port, http, meter_time,  # noqa: E402
                            need_p1d, tmpdir, wait_for, write_conf)
from mqtt_helpers import Broker, Mqtt, metrics_text, need_mosquitto, retained_now  # noqa: E402
from mqtt_helpers import tcp_meter  # noqa: E402
from store_helpers import P1  # noqa: E402

C = Checks("test_price_now")
need_p1d(C)
need_mosquitto(C)

GAUGES = ("p1d_price_import_eur_per_kwh", "p1d_price_export_eur_per_kwh")
TOPICS = ("p1d/price/import_eur_kwh", "p1d/price/export_eur_kwh")
AVAIL = "p1d/price/availability"
CONFIGS = ("homeassistant/sensor/p1d_price/import_eur_kwh/config",
           "homeassistant/sensor/p1d_price/export_eur_kwh/config")
ADJUST = ("[prices]\ndynamic_import_factor = 1.21\ndynamic_import_add = 0.147063\n"
          "dynamic_export_add = -0.02\n")
SPOT = ("0.123457", "-0.012345", "0.087654")  # EUR per kWh, one per slot
# spot x 1.21 + 0.147063, rounded half away from zero to a micro-euro: 0.29644597, 0.13212555,
# 0.25312434; export spot - 0.02 (the import adjustment does not touch it)
IMPORT = ("0.296446", "0.132126", "0.253124")
EXPORT = ("0.103457", "-0.032345", "0.067654")
SLOT = 12  # seconds of each slot


def gauges(port):
    """{name: value text} of the price gauges on /metrics, and whether any HELP/TYPE of them is
    there without its sample."""
    text = http(port, "/metrics")[2].decode()
    vals = {}
    for line in text.splitlines():
        for g in GAUGES:
            if line.startswith(g + " "):
                vals[g] = line[len(g) + 1:]
    heads = [ln for ln in text.splitlines() if ln.startswith("#") and "p1d_price_" in ln]
    return vals, len(heads) != 2 * len(vals)


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def put_prices(port, rows):
    body = "time,price\n" + "".join("%s,%s\n" % (utc(t), p) for t, p in rows)
    c, _, b = http(port, "/api/prices?kind=power", "PUT", body.encode(),
                   {"Content-Type": "text/csv"})
    return c, b.decode()


def price_msgs(sub, since=0):
    return [m for m in sub.snapshot() if m[0] >= since and
            (m[1].startswith("p1d/price/") or "_price/" in m[1])]


def last_on(sub, topic):
    vals = [m[2] for m in sub.snapshot() if m[1] == topic]
    return vals[-1].decode() if vals else None


def check_config(topic, payload, which):
    """The problems Home Assistant would have with the price's discovery config (empty: none)."""
    bad = []
    try:
        cfg = json.loads(payload.decode("utf-8"))
    except ValueError as e:
        return ["not JSON: %s" % e]
    uid = "p1d_price_%s_eur_kwh" % which
    want = {"unique_id": uid, "object_id": uid, "default_entity_id": "sensor." + uid,
            "state_topic": "p1d/price/%s_eur_kwh" % which, "state_class": "measurement",
            "unit_of_measurement": "EUR/kWh", "availability_mode": "all",
            "name": "%s price" % which.capitalize()}
    for k, v in want.items():
        if cfg.get(k) != v:
            bad.append("%s = %r, want %r" % (k, cfg.get(k), v))
    # HA: monetary is an amount of money (a currency unit, and no state class but "total": "is
    # using state class 'measurement' which is impossible considering device class
    # ('monetary')"); a price per kWh is none, so no device class and statistics as measurement.
    if "device_class" in cfg:
        bad.append("device_class %r on a price per kWh" % cfg["device_class"])
    if [a.get("topic") for a in cfg.get("availability") or []] != ["p1d/status", AVAIL]:
        bad.append("availability %r" % cfg.get("availability"))
    dev = cfg.get("device") or {}
    if dev.get("identifiers") != ["p1d.price"] or not isinstance(dev.get("name"), str):
        bad.append("device %r" % dev)
    if (cfg.get("origin") or {}).get("name") != "p1d":
        bad.append("origin %r" % cfg.get("origin"))
    sdp = cfg.get("suggested_display_precision")
    if not (isinstance(sdp, int) and sdp >= 0):
        bad.append("suggested_display_precision %r" % sdp)
    return bad


def test_dynamic(tmp):
    port = free_port()
    broker = Broker(tmp, port, name="dyn").start()
    sub = Mqtt(port)
    conf = os.path.join(tmp, "dyn-p1d.conf")
    write_conf(conf, ADJUST)
    d = Daemon(["--config", conf, "--source", "home=sim:7", "--listen", "127.0.0.1:0", "--db",
                os.path.join(tmp, "dyn.db"), "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port),
                "--mqtt-state-interval", "0"], tmp)
    try:
        hp = d.http_port()
        C.check("p1d starts with a store, MQTT and the [prices] dynamic_* keys",
                hp is not None and d.wait_log(r"mqtt: connected", 10) is not None, d.text()[-2000:])
        if hp is None:
            return
        sub.wait(lambda m: m[1] == "p1d/home/power_w", 10)
        time.sleep(1.5)  # a few publisher ticks
        vals, heads = gauges(hp)
        C.check("no prices: no price gauge on /metrics (not even its HELP)", not vals and not heads,
                vals)
        C.check("no prices: nothing on p1d/price/ nor a price config", not price_msgs(sub),
                price_msgs(sub))

        # A file that stops before now: accepted, and still no price applies.
        n = int(time.time())
        c, b = put_prices(hp, [(n - 7200 - 3600 * k, "0.3") for k in range(3)])
        C.check("a price file that stops an hour before now uploads", c == 200, b)
        vals, heads = gauges(hp)
        C.check("a price file that stops before now: no price gauge", not vals and not heads, vals)
        off = sub.wait(lambda m: m[1] == AVAIL, 5)
        time.sleep(1.2)
        C.check("... and MQTT says unavailable (p1d/price/availability offline), no values",
                off is not None and off[2] == b"offline" and off[3] is False and
                not [m for m in price_msgs(sub) if m[1] in TOPICS and m[2]] and
                not [m for m in price_msgs(sub) if m[1] in CONFIGS], price_msgs(sub))
        r = retained_now(port, ("p1d/price/#",))
        C.check("... retained: offline and no value", r == {AVAIL: b"offline"}, r)

        # Three slots of SLOT seconds, the first holding now.
        n = int(time.time())
        t0 = n - SLOT // 2
        c, b = put_prices(hp, [(t0 + SLOT * k, SPOT[k]) for k in range(3)])
        t_put = time.time()
        C.check("three slots of %d s around now upload" % SLOT, c == 200, b)
        for k in range(3):
            if k:
                time.sleep(max(0, t0 + SLOT * k + 0.3 - time.time()))
            vals, _ = gauges(hp)
            inside = time.time() < t0 + SLOT * (k + 1)
            C.check("slot %d: /metrics import %s export %s (spot %s adjusted)" %
                    (k, IMPORT[k], EXPORT[k], SPOT[k]),
                    inside and vals == {GAUGES[0]: IMPORT[k], GAUGES[1]: EXPORT[k]}, (vals, inside))
            got = wait_for(lambda: last_on(sub, TOPICS[0]) == IMPORT[k] and
                           last_on(sub, TOPICS[1]) == EXPORT[k] and
                           last_on(sub, AVAIL) == "online", 3, 0.05)
            C.check("slot %d: MQTT p1d/price/import_eur_kwh %s, export_eur_kwh %s, online" %
                    (k, IMPORT[k], EXPORT[k]), got and time.time() < t0 + SLOT * (k + 1),
                    price_msgs(sub, t_put))
            if k == 0:
                r = retained_now(port, ("p1d/price/#", "homeassistant/sensor/p1d_price/#"))
                C.check("slot 0: the values, the availability and both configs are retained",
                        r.get(TOPICS[0]) == IMPORT[0].encode() and
                        r.get(TOPICS[1]) == EXPORT[0].encode() and r.get(AVAIL) == b"online" and
                        all(r.get(t) for t in CONFIGS), r)
                for t, which in zip(CONFIGS, ("import", "export")):
                    bad = check_config(t, r.get(t, b""), which)
                    C.check("%s: valid by Home Assistant's rules" % t, not bad, bad)
        # Once the last slot ended: nothing applies any more.
        time.sleep(max(0, t0 + SLOT * 3 + 0.3 - time.time()))
        vals, heads = gauges(hp)
        C.check("after the last slot: the gauges are gone", not vals and not heads, vals)
        C.check("after the last slot: MQTT says offline",
                wait_for(lambda: last_on(sub, AVAIL) == "offline", 3, 0.05), price_msgs(sub, t_put))
        r = retained_now(port, ("p1d/price/#",))
        C.check("after the last slot: the retained values are deleted, offline stays",
                r == {AVAIL: b"offline"}, r)
        C.check("one MQTT value per slot and price (sent when its slot starts)",
                [m[2].decode() for m in price_msgs(sub, t_put) if m[1] == TOPICS[0]] ==
                list(IMPORT) + [""], price_msgs(sub, t_put))
        C.check("no price error logged", "cannot load the price" not in d.text(), d.text()[-2000:])
    finally:
        d.stop()
        sub.close()
        broker.stop()


def test_db_error(tmp):
    """A price table that cannot be read (a column renamed behind p1d's back): logged once, the
    gauges left out, the scrape still answered."""
    db = os.path.join(tmp, "broken.db")
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        hp = d.http_port()
        if not C.check("p1d starts with a store and no meter", hp is not None, d.text()[-2000:]):
            return
        n = int(time.time())
        c, b = put_prices(hp, [(n - 6, "0.1"), (n + 6, "0.2")])
        vals, _ = gauges(hp)
        C.check("two slots upload; the first one's price is served",
                c == 200 and vals.get(GAUGES[0]) == "0.1", (c, b, vals))
        con = sqlite3.connect(db, timeout=5)
        con.execute("ALTER TABLE price_dynamic RENAME COLUMN end_ts TO gone")
        con.commit()
        con.close()
        time.sleep(max(0, n + 6.3 - time.time()))  # the slot ends: the prices are read again
        seen = []
        for _ in range(5):
            c, _, body = http(hp, "/metrics")
            seen.append((c, "p1d_price_" in body.decode()))
            time.sleep(0.2)
        C.check("the prices cannot be read: /metrics answers without the gauges",
                seen == [(200, False)] * 5, seen)
        logged = re.findall(r"metrics: cannot load the price in force now \(([^)]*)\)", d.text())
        C.check("... and says why once", len(logged) == 1 and "end_ts" in logged[0],
                d.text()[-1500:])
    finally:
        d.stop()


def telegram(tariff, imp):
    """A DSMR 5 telegram now, meter reporting tariff `tariff`, imp Wh on its register."""
    body = ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
            "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
            "1-0:1.8.1(000100.%03d*kWh)\r\n1-0:1.8.2(000200.000*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n"
            "0-0:96.14.0(%04d)\r\n1-0:1.7.0(00.100*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
            % (meter_time(int(time.time())), imp, tariff)).encode()
    return body + b"%04X\r\n" % crc16(body)


def test_fixed_tariff(tmp):
    conf = os.path.join(tmp, "fixed-p1d.conf")
    write_conf(conf, "[prices]\nimport_t1 = 0.21\nimport_t2 = 0.25\nexport = 0.07\n")
    args = ["--config", conf, "--db", os.path.join(tmp, "fixed.db")]
    with tcp_meter(tmp, "fixed", args) as (d, conn, sub, _):
        hp = d.http_port()
        conn.sendall(telegram(2, 1))
        C.check("fixed prices, the meter on tariff 2: import_t2 0.25 and export 0.07",
                wait_for(lambda: gauges(hp)[0] == {GAUGES[0]: "0.25", GAUGES[1]: "0.07"}, 5),
                gauges(hp))
        C.check("... and on MQTT",
                wait_for(lambda: last_on(sub, TOPICS[0]) == "0.25" and
                         last_on(sub, TOPICS[1]) == "0.07", 5), price_msgs(sub))
        conn.sendall(telegram(1, 2))
        C.check("the meter switches to tariff 1: import_t1 0.21",
                wait_for(lambda: gauges(hp)[0] == {GAUGES[0]: "0.21", GAUGES[1]: "0.07"}, 5),
                gauges(hp))
        C.check("... and on MQTT", wait_for(lambda: last_on(sub, TOPICS[0]) == "0.21", 5),
                price_msgs(sub))
        n = len([m for m in price_msgs(sub) if m[1] == TOPICS[1]])
        C.check("an unchanged export price is not sent again", n == 1, price_msgs(sub))
        write_conf(conf, "[prices]\nimport_t1 = 0.23\nimport_t2 = 0.25\nexport = 0.07\n")
        d.signal(signal.SIGHUP)
        C.check("a reload that changes [prices]: the new price at once, not after a minute",
                wait_for(lambda: gauges(hp)[0].get(GAUGES[0]) == "0.23", 3), gauges(hp))
        C.check("... and on MQTT", wait_for(lambda: last_on(sub, TOPICS[0]) == "0.23", 3),
                price_msgs(sub))
        # Another process (a cron job's `p1 prices import`) writes dynamic prices into the
        # database p1d has open: they are in force at once, not after the minute's reload.
        hour = int(time.time()) // 3600 * 3600
        csv = os.path.join(tmp, "cron.csv")
        with open(csv, "w") as f:
            f.write("time,price\n%d,0.3141\n%d,0.3141\n" % (hour, hour + 3600))
        r = subprocess.run([P1, "prices", "import", "--db", os.path.join(tmp, "fixed.db"), csv],
                           capture_output=True, text=True, timeout=30)
        C.check("p1 prices import by another process: in force on /metrics within 3 s",
                r.returncode == 0 and
                wait_for(lambda: gauges(hp)[0].get(GAUGES[0]) == "0.3141", 3),
                (r.returncode, r.stderr, gauges(hp)))
        C.check("... and on MQTT", wait_for(lambda: last_on(sub, TOPICS[0]) == "0.3141", 3),
                price_msgs(sub))


def main():
    with tmpdir() as tmp:
        C.run([test_dynamic, test_fixed_tariff, test_db_error], tmp)
    C.done()


if __name__ == "__main__":
    main()
