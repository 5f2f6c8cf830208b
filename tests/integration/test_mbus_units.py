#!/usr/bin/env python3
"""test_mbus_units.py: one telegram's gas, water and heat meters, read by every consumer of p1d.
The M-Bus values come in the units meters send: gas without a unit (as Smarty and L+G send some
values), water in litres, heat in MWh, heat without a unit, and a gas channel counting in kWh.
/api/now, the HomeWizard API, /metrics, MQTT and the history must show the same number in the
same unit (gas and water m3, heat GJ) or, for a unit that is no m3, leave it out everywhere.

Two p1d runs (one per set of units), each with a history database, reading a fake dongle on
127.0.0.1 and publishing to a real mosquitto."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, http, mbus_telegram, meter_time, need_p1d, tmpdir  # noqa: E402
from mqtt_helpers import MOSQUITTO, metric, metrics_text, tcp_meter  # noqa: E402
from store_helpers import export_rows  # noqa: E402

C = Checks("test_mbus_units")
need_p1d(C)

IDS = ("4730303339303031363532303530323136", "5730303339303031363532303530323136",
       "4830303339303031363532303530323136")


def telegram(i, values, now):
    """A DSMR 5 telegram numbered i (meter time now); values: (device type, value) of M-Bus
    channels 1, 2, 3 (the value with its unit)."""
    return mbus_telegram(i, now, "".join(
        "0-%d:24.1.0(%03d)\r\n0-%d:96.1.0(%s)\r\n0-%d:24.2.1(%s)(%s)\r\n"
        % (c + 1, t, c + 1, IDS[c], c + 1, meter_time(now), v) for c, (t, v) in enumerate(values)))


def get_json(port, path):
    st, _, body = http(port, path)
    return json.loads(body) if st == 200 and body else {}


def consumers(d, sub, db):
    """What each consumer shows: {name: (gas, water, heat)} plus the HomeWizard external list."""
    port = d.http_port()
    now = get_json(port, "/api/now").get("reading") or {}
    hw = get_json(port, "/api/v1/data")
    ext = {e.get("type"): (e.get("value"), e.get("unit")) for e in hw.get("external", [])}
    text = metrics_text(d)
    last = {}
    for m in sub.snapshot():
        last[m[1]] = m[2]

    def mq(name):
        v = last.get("p1d/home/" + name)
        return float(v) if v else None

    rows = [r for r in export_rows(db, meter="home") if r.get("gas_counter_m3") is not None]
    row = rows[-1] if rows else {}

    def ex(name):
        v = row.get(name)
        return float(v) if v else None

    return {
        "/api/now": (now.get("gas_m3"), now.get("water_m3"), now.get("heat_gj")),
        "/api/v1/data": (hw.get("total_gas_m3"), (ext.get("water_meter") or (None,))[0],
                         (ext.get("heat_meter") or (None,))[0]),
        "/metrics": tuple(metric(text, n, 'meter="home",channel="%d"' % (c + 1))
                          for c, n in enumerate(("p1_gas_m3_total", "p1_water_m3_total",
                                                 "p1_heat_gj_total"))),
        "mqtt": (mq("gas_m3"), mq("water_m3"), mq("heat_gj")),
        "history": (ex("gas_counter_m3"), ex("water_counter_m3"), ex("heat_counter_gj")),
    }, ext, now


def run(tmp, name, sets):
    """Sends the telegrams of sets (one list of channel values each); returns what the consumers
    show after the last one, the /api/history steps and the p1d log."""
    db = os.path.join(tmp, name + ".db")
    with tcp_meter(tmp, name, ["--db", db], topics=("p1d/#",)) as (d, conn, sub, _):
        for i, values in enumerate(sets):
            conn.sendall(telegram(i + 1, values, int(time.time())))
            d.wait_meter("home", lambda m, n=i + 1: m.get("telegrams", 0) >= n, 5)
            time.sleep(1.1)  # the store keeps one reading a second; the publisher's tick
        sub.wait(lambda m: m[1] == "p1d/home/energy_import_t1_kwh" and m[2] == b"1234.%03d"
                 % len(sets), 5)
        seen, ext, now = consumers(d, sub, db)
        hist = get_json(d.http_port(),
                        "/api/history?meter=home&step=raw&fields=gas_m3,water_m3,heat_gj")
        return seen, ext, now, hist, d.text()


def same(seen, want):
    bad = {k: v for k, v in seen.items() if v != want}
    return not bad, bad


def units_converted(tmp):
    """Gas without a unit, water in litres, heat in MWh: m3, m3 and GJ everywhere."""
    seen, ext, now, hist, log = run(tmp, "conv", [
        [(3, "01234.567"), (7, "0123456*l"), (4, "001.500000*MWh")],
        [(3, "01234.600"), (7, "0123466*l"), (4, "001.505000*MWh")],
    ])
    want = (1234.6, 123.466, 5.418)  # 1505 kWh x 0.0036 GJ
    ok, bad = same(seen, want)
    C.check("gas (no unit) 1234.6 m3, water 123466 l = 123.466 m3, heat 1.505 MWh = 5.418 GJ "
            "on /api/now, /api/v1/data, /metrics, MQTT and the history", ok, bad)
    C.check("HomeWizard external: water in m3, heat in GJ (%s)" % ext,
            ext.get("water_meter", (0, 0))[1] == "m3" and ext.get("heat_meter", (0, 0))[1] == "GJ",
            ext)
    mb = {m.get("channel"): (m.get("value"), m.get("unit")) for m in now.get("mbus", [])}
    C.check("/api/now mbus keeps each channel's normalised unit (%s)" % mb,
            mb == {1: (1234.6, None), 2: (123.466, "m3"), 3: (1505, "kWh")}, mb)
    steps = {k: [v for v in hist.get(k, []) if v is not None]
             for k in ("gas_m3", "water_m3", "heat_gj")}
    C.check("/api/history step=raw: gas 0.033 m3, water 0.01 m3, heat 0.018 GJ used (%s)" % steps,
            [round(sum(v), 6) for v in steps.values()] == [0.033, 0.01, 0.018], steps)
    C.check("p1d logged no error", " error: " not in log, log[-1500:])


def units_foreign(tmp):
    """Heat without a unit is GJ; a gas channel counting in kWh is no m3 reading anywhere."""
    seen, ext, now, _, log = run(tmp, "foreign", [
        [(3, "01234.567*kWh"), (7, "00123.456*m3"), (4, "00012.345")],
    ])
    ok, bad = same(seen, (None, 123.456, 12.345))
    C.check("gas in kWh left out, water 123.456 m3, heat (no unit) 12.345 GJ on /api/now, "
            "/api/v1/data, /metrics, MQTT and the history", ok, bad)
    C.check("HomeWizard external: the heat meter without unit in GJ, not m3 (%s)" % ext,
            ext.get("heat_meter") == (12.345, "GJ"), ext)
    mb = {m.get("channel"): (m.get("value"), m.get("unit")) for m in now.get("mbus", [])}
    C.check("/api/now mbus still shows the kWh gas channel as sent (%s)" % mb,
            mb.get(1) == (1234.567, "kWh"), mb)
    C.check("p1d logged no error", " error: " not in log, log[-1500:])
    said = "home: the gas meter on M-Bus channel 1 counts in kWh, not m3: its value is left out"
    C.check("... and says once why the gas is left out", log.count(said) == 1, log[-1500:])
    C.check("... and nothing of the water and heat meters", "water meter on M-Bus" not in log and
            "heat meter on M-Bus" not in log, log[-1500:])


def huge_values(tmp):
    """A gas meter and a register at 9223372036854.775807 (2^63 - 1 millionths): the store, MQTT
    and the HomeWizard API add half a unit to round them (signed overflow, UBSan stops p1d). They
    are no readings; the telegram is rejected and the next one is used."""
    db = os.path.join(tmp, "huge.db")
    with tcp_meter(tmp, "huge", ["--db", db], topics=("p1d/#",)) as (d, conn, sub, _):
        now = int(time.time())
        conn.sendall(mbus_telegram(1, now, "1-0:3.8.0(9223372036854.775807*kvarh)\r\n"
                                   "0-1:24.1.0(003)\r\n0-1:24.2.1(%s)(9223372036854.775807*m3)\r\n"
                                   % meter_time(now)))
        m = d.wait_meter("home", lambda m: m.get("telegrams", 0) + m.get("rejected", 0) >= 1, 5)
        time.sleep(1.1)
        conn.sendall(telegram(2, [(3, "01234.567*m3")], int(time.time())))
        m2 = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1, 5)
        time.sleep(1.1)
        sub.wait(lambda m: m[1] == "p1d/home/gas_m3", 5)
        seen, _, _ = consumers(d, sub, db)
        C.check("a gas value and a register of 2^63 - 1 millionths: the telegram is rejected "
                "(bad_value), p1d runs on (%s, %s)" % (m, m2),
                m and m.get("rejected") == 1 and m2 and d.proc.poll() is None, d.text()[-1500:])
        C.check("the next telegram's gas 1234.567 m3 everywhere (%s)" % seen,
                all(v[0] == 1234.567 for v in seen.values()), seen)


if not os.access(MOSQUITTO, os.X_OK):
    print("SKIP: mosquitto not installed (tools/setup.sh test)")
    sys.exit(0)
with tmpdir() as tmp:
    C.run((units_converted, units_foreign, huge_values), tmp)
C.done()
