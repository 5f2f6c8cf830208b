#!/usr/bin/env python3
"""test_mbus_heat.py: a district-heating meter on the M-Bus that counts in kWh (or MWh) instead of
GJ. Home Assistant's heat_gj entity, InfluxDB, Azure and /api/history's heat_gj are in GJ, so p1d
converts (1 kWh = 0.0036 GJ) rather than leave the meter out or store kWh under the GJ name.

One p1d with a history database reads a fake dongle on 127.0.0.1 and publishes to a real
mosquitto."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, http, mbus_telegram, meter_time, need_p1d, tmpdir  # noqa: E402
from mqtt_helpers import MOSQUITTO, tcp_meter  # noqa: E402

C = Checks("test_mbus_heat")
need_p1d(C)


def heat_telegram(i, heat, now):
    """A DSMR 5 telegram numbered i (meter time now) with a heat meter (type 004) on channel 1
    sending the value heat (with its unit)."""
    return mbus_telegram(i, now, "0-1:24.1.0(004)\r\n0-1:96.1.0(3232323241424344313233343536373839)"
                         "\r\n0-1:24.2.1(%s)(%s)\r\n" % (meter_time(now), heat))


def heat_in_kwh(tmp):
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: mosquitto not installed (tools/setup.sh test)")
        return
    args = ["--db", os.path.join(tmp, "p1d.db")]
    with tcp_meter(tmp, "heat", args, topics=("p1d/#", "homeassistant/#")) as (d, conn, sub, _):
        port = d.http_port()
        # 1000 kWh = 3.6 GJ; then +5 kWh twice (the store keeps heat to the MJ, 0.28 kWh); the
        # last one in MWh, as some meters count.
        for i, heat in enumerate(("01000.000*kWh", "01005.000*kWh", "001.010000*MWh")):
            conn.sendall(heat_telegram(i + 1, heat, int(time.time())))
            d.wait_meter("home", lambda m, n=i + 1: m.get("telegrams", 0) >= n, 5)
            time.sleep(1.1)  # past the publisher's tick and the store's one reading a second
        sub.wait(lambda m: m[1] == "p1d/home/heat_gj" and m[2] == b"3.636", 5)
        heat = [m[2] for m in sub.snapshot() if m[1] == "p1d/home/heat_gj"]
        C.check("MQTT heat_gj is the kWh register in GJ: 3.6, 3.618, 3.636 (%s)" % heat,
                heat and heat[-1] == b"3.636" and set(heat) <= {b"3.6", b"3.618", b"3.636"},
                d.text()[-1500:])
        cfg = [m[2] for m in sub.snapshot()
               if m[1] == "homeassistant/sensor/p1d_home/heat_gj/config"]
        doc = json.loads(cfg[-1]) if cfg and cfg[-1] else {}
        C.check("Home Assistant discovery announces the heat meter (GJ, energy, total_increasing)",
                doc.get("unit_of_measurement") == "GJ" and doc.get("device_class") == "energy"
                and doc.get("state_class") == "total_increasing", doc)
        st, _, body = http(port, "/api/history?meter=home&step=raw&fields=heat_gj")
        hist = json.loads(body) if st == 200 else {}
        steps = [v for v in hist.get("heat_gj", []) if v is not None]
        C.check("/api/history step=raw heat_gj: the steps are GJ and add up to 0.036 (%s)" % steps,
                st == 200 and steps and abs(sum(steps) - 0.036) < 1e-9
                and all(0 <= v < 0.05 for v in steps), hist)
        st, _, body = http(port, "/api/now")
        mb = (json.loads(body).get("reading") or {}).get("mbus") or [{}]
        C.check("/api/now keeps the meter's own unit, normalised: 1010 kWh (%s)" % mb[0],
                mb[0].get("unit") == "kWh" and mb[0].get("value") == 1010, mb)


with tmpdir() as tmp:
    C.run((heat_in_kwh,), tmp)
C.done()
