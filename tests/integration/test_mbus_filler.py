#!/usr/bin/env python3
"""test_mbus_filler.py: a gas meter that drops off the M-Bus for a few telegrams. The electricity
meter then sends 0-1:24.2.1(632525252525S)(00000.000): a placeholder time and a filler 0, with or without a
unit. That 0 is
not a reading: stored, published on MQTT, or shown on a counter (Prometheus, the HomeWizard API),
it reads as a meter reset, and the whole register is counted again when the real value comes back
(Home Assistant's energy dashboard, Prometheus increase(), the history's gas per step).

One p1d with a history database reads a fake dongle on 127.0.0.1; the MQTT broker (a real
mosquitto) starts only after the telegrams, so the MQTT values come from the stored backlog."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, fake_dongle, free_port, http,  # noqa: E402
                            mbus_telegram, meter_time, need_p1d, tmpdir)
from mqtt_helpers import MOSQUITTO, Broker, Mqtt, metric, metrics_text  # noqa: E402

C = Checks("test_mbus_filler")
need_p1d(C)

REAL1 = "0-1:24.2.1(%s)(01234.567*m3)"
FILLER = "0-1:24.2.1(632525252525S)(00000.000)"
FILLER_M3 = "0-1:24.2.1(700101010000W)(00000.000*m3)"  # Iskra: the same, with a unit
REAL2 = "0-1:24.2.1(%s)(01234.600*m3)"


def gas_telegram(i, gas_line, now):
    """A DSMR 5 telegram numbered i (meter time now) whose M-Bus channel 1 (gas) sends gas_line."""
    return mbus_telegram(i, now, "0-1:24.1.0(003)\r\n0-1:96.1.0(4730303339303031363532303530323136)"
                         "\r\n%s\r\n" % gas_line)


def json_get(port, path):
    st, _, body = http(port, path)
    return st, (json.loads(body) if body else None)


def filler(tmp):
    db = os.path.join(tmp, "p1d.db")
    broker_port, meter_port = free_port(), free_port()
    dongle = fake_dongle(meter_port)
    d = Daemon(["--listen", "127.0.0.1:0", "--source", "home=tcp:127.0.0.1:%d" % meter_port,
                "--db", db, "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker_port),
                "--mqtt-state-interval", "0"], tmp)
    conn = broker = sub = None
    try:
        port = d.http_port()
        conn = dongle.accept()[0]
        seen = []
        for i, line in enumerate((REAL1, FILLER, FILLER_M3, REAL2, FILLER_M3)):
            now = int(time.time())
            conn.sendall(gas_telegram(i + 1, line % meter_time(now) if "%" in line else line, now))
            d.wait_meter("home", lambda m, n=i + 1: m.get("telegrams", 0) >= n, 5)
            _, now_doc = json_get(port, "/api/now")
            _, hw = json_get(port, "/api/v1/data")
            gas = metric(metrics_text(d), "p1_gas_m3_total", 'meter="home",channel="1"')
            reading = (now_doc or {}).get("reading") or {}
            seen.append((line[:24], reading.get("gas_m3"), (hw or {}).get("total_gas_m3"), gas))
            time.sleep(1.1)  # one stored reading per second at most
        C.check("the reading the API shows: gas_m3 1234.567, absent while the channel sends "
                "filler, 1234.6 after (%s)" % [s[1] for s in seen],
                [s[1] for s in seen] == [1234.567, None, None, 1234.6, None], seen)
        C.check("HomeWizard /api/v1/data: total_gas_m3 never the filler 0 (%s)"
                % [s[2] for s in seen], [s[2] for s in seen] == [1234.567, None, None, 1234.6, None], seen)
        C.check("Prometheus p1_gas_m3_total never drops to 0, a counter reset (%s)"
                % [s[3] for s in seen], [s[3] for s in seen] == [1234.567, None, None, 1234.6, None], seen)

        # The history: the raw readings' gas column, and the gas per raw step.
        d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 5, 5)
        st, hist = json_get(port, "/api/history?meter=home&step=raw&fields=gas_m3")
        steps = [v for v in (hist or {}).get("gas_m3", []) if v is not None]
        C.check("/api/history step=raw: no step of gas below 0 and none of the whole register "
                "(%s)" % steps, st == 200 and steps and all(0 <= v < 1 for v in steps), hist)
        C.check("/api/history step=raw: the steps add up to the real use, 0.033 m3 (%s)" % steps,
                abs(sum(steps) - 0.033) < 1e-9, hist)
        rows = sqlite3.connect("file:%s?mode=ro" % db, uri=True).execute(
            "SELECT gas FROM agg_1m WHERE gas IS NOT NULL").fetchall()
        # A minute row holds the gas used in that minute (dm3): 0 where the readings of a minute
        # used none, the whole register where the filler was taken for a reset.
        C.check("the store's minute rows add up to the 33 dm3 used, none holds the register (%s)"
                % rows, rows and sum(r[0] for r in rows) == 33 and all(0 <= r[0] <= 33 for r in rows),
                rows)

        # MQTT from the stored backlog: the broker comes up only now.
        if not os.access(MOSQUITTO, os.X_OK):
            print("SKIP: mosquitto not installed (tools/setup.sh test): the MQTT checks")
            return
        broker = Broker(tmp, broker_port, name="filler").start()
        sub = Mqtt(broker_port, topics=("p1d/#",))
        sub.wait(lambda m: m[1] == "p1d/home/energy_import_t1_kwh", 15)
        conn.sendall(gas_telegram(6, FILLER, int(time.time())))
        sub.wait(lambda m: False, 2.5)
        gas = [m[2] for m in sub.snapshot() if m[1] == "p1d/home/gas_m3"]
        energy = [m[2] for m in sub.snapshot() if m[1] == "p1d/home/energy_import_t1_kwh"]
        C.check("MQTT after the broker came back: the stored backlog went out (energy %s)" % energy,
                b"1234.005" in energy, d.text()[-1500:])
        C.check("MQTT: gas_m3 never the filler 0, though the newest stored reading had it (%s)"
                % gas, all(g != b"0" and float(g) > 1234 for g in gas), d.text()[-1500:])
    finally:
        d.stop()
        if conn:
            conn.close()
        dongle.close()
        if sub:
            sub.close()
        if broker:
            broker.stop()
    C.check("p1d logged no error about the filler", " error: " not in d.text(),
            d.text()[-1500:])


with tmpdir() as tmp:
    C.run((filler,), tmp)
C.done()
