#!/usr/bin/env python3
"""test_demand_forecast.py: Belgium's capacity tariff bills the month's highest quarter-hour
average import power. p1d forecasts the current quarter hour's average from the meter's import
register and its import power now (what it will be if that power lasts to the quarter's end), so
the car charger can wait before a new month peak is set. A Fluvius-style meter sends telegrams
over TCP (a real socket) with its own clock around a quarter hour's start:

- started in the middle of a quarter: the forecast is null (the energy before p1d started is not
  known), not a guess;
- across the start: the register at 00:00 is interpolated between the readings either side, and
  the forecast is exact (4 x the kWh since the start + the power now x the time left / 900 s);
- /api/now (and the SSE event, the same JSON), /metrics (p1_demand_forecast_watts with the
  meter's own p1_demand_watts and p1_demand_peak_watts) and MQTT (demand_forecast_w, with a Home
  Assistant power sensor) say the same;
- a Dutch meter (no demand registers) has no forecast anywhere."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, be_telegram, crc16, http, meter_time, need_p1d,  # noqa: E402
                            tmpdir, wait_for)
from mqtt_helpers import need_mosquitto, tcp_meter  # noqa: E402

C = Checks("test_demand_forecast")
need_p1d(C)
need_mosquitto(C)

Q = (int(time.time()) // 900 - 4) * 900  # a quarter hour's start an hour ago (meter clock)


def nl_telegram(t):
    body = ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
            "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
            "1-0:1.8.1(000100.000*kWh)\r\n1-0:1.8.2(000200.000*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n"
            "0-0:96.14.0(0002)\r\n1-0:1.7.0(00.100*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
            % meter_time(t)).encode()
    return body + b"%04X\r\n" % crc16(body)


def now_json(port):
    s, _, b = http(port, "/api/now")
    return json.loads(b) if s == 200 else {}


def seq_is(port, n):
    return now_json(port).get("seq") == n


def gauge(port, name):
    m = re.search(r'^%s\{meter="home"\} (\S+)$' % name, http(port, "/metrics")[2].decode(), re.M)
    return m.group(1) if m else None


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def test_belgian(tmp):
    with tcp_meter(tmp, "be", []) as (d, conn, sub, _):
        port = d.http_port()
        conn.sendall(be_telegram(Q - 300, 1000000 - 300, 1.0))
        ok = wait_for(lambda: seq_is(port, 1), 5)
        n = now_json(port)
        C.check("started in the middle of a quarter: demand_forecast is null, not a guess",
                ok and "demand_forecast" in n and n["demand_forecast"] is None, json.dumps(n)[:600])
        C.check("... and /metrics has no forecast, but the meter's own demand and month peak",
                gauge(port, "p1_demand_forecast_watts") is None and
                gauge(port, "p1_demand_watts") == "1500" and
                gauge(port, "p1_demand_peak_watts") == "4321",
                [gauge(port, g) for g in ("p1_demand_forecast_watts", "p1_demand_watts",
                                          "p1_demand_peak_watts")])
        conn.sendall(be_telegram(Q - 2, 1000000, 1.0))
        conn.sendall(be_telegram(Q + 2, 1000004, 3.6))
        wait_for(lambda: seq_is(port, 3), 5)
        f = now_json(port).get("demand_forecast") or {}
        # the register at Q: 1000.000 + 0.004 x 2/4 = 1000.002 kWh; 0.002 kWh since, x 4 = 0.008;
        # 3.6 kW for the 898 s left: 3.592; together 3.6 kW
        C.check("2 s into the quarter: the start interpolated, 0.008 + 3.6 x 898/900 = 3.6 kW",
                f.get("kw") == 3.6 and f.get("quarter_end") == iso(Q + 900), json.dumps(f))
        conn.sendall(be_telegram(Q + 450, 1000302, 2.0))
        wait_for(lambda: seq_is(port, 4), 5)
        f = now_json(port).get("demand_forecast") or {}
        C.check("half-way: 4 x 0.3 kWh + 2 kW x 450/900 = 2.2 kW",
                f.get("kw") == 2.2 and f.get("quarter_end") == iso(Q + 900), json.dumps(f))
        C.check("/metrics: p1_demand_forecast_watts 2200",
                gauge(port, "p1_demand_forecast_watts") == "2200",
                gauge(port, "p1_demand_forecast_watts"))
        got = sub.wait(lambda m: m[1] == "p1d/home/demand_forecast_w" and m[2] == b"2200", 15)
        C.check("MQTT: p1d/home/demand_forecast_w 2200", got is not None,
                [m[1:3] for m in sub.snapshot() if "demand" in m[1]])
        cfg = sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_home/demand_forecast_w/config",
                       10)
        c = json.loads(cfg[2]) if cfg else {}
        C.check("Home Assistant: a power sensor in W, state_class measurement",
                c.get("device_class") == "power" and c.get("unit_of_measurement") == "W" and
                c.get("state_class") == "measurement" and
                c.get("state_topic") == "p1d/home/demand_forecast_w", json.dumps(c))
        conn.sendall(be_telegram(Q + 1799, 1000902, 0.0))
        wait_for(lambda: seq_is(port, 5), 5)
        n = now_json(port)
        C.check("the next quarter with no reading within 60 s before its start (the meter was "
                "quiet): null",
                "demand_forecast" in n and n["demand_forecast"] is None, json.dumps(n)[:400])


def test_dutch(tmp):
    with tcp_meter(tmp, "nl", []) as (d, conn, sub, _):
        port = d.http_port()
        conn.sendall(nl_telegram(Q))
        conn.sendall(nl_telegram(Q + 1))
        ok = wait_for(lambda: seq_is(port, 2), 5)
        n = now_json(port)
        C.check("a Dutch meter: no demand_forecast key in /api/now",
                ok and "demand_forecast" not in n, json.dumps(n)[:300])
        C.check("... nor demand gauges on /metrics, not even their HELP",
                b"p1_demand" not in http(port, "/metrics")[2], http(port, "/metrics")[2][:200])
        time.sleep(1.5)
        C.check("... nor a demand_forecast_w topic",
                not [m for m in sub.snapshot() if "demand" in m[1]],
                [m[1] for m in sub.snapshot() if "demand" in m[1]])


def main():
    with tmpdir() as tmp:
        C.run([test_belgian, test_dutch], tmp)
    C.done()


main()
