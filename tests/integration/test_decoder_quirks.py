#!/usr/bin/env python3
"""test_decoder_quirks.py: decoder quirks that only show in p1d, end to end.

A DSMR 2.2/3.0 telegram has no CRC, and the meter may stop in the middle of one (request line
dropped, cable pulled, a WiFi gateway that stalls for longer than p1d's one-second quiet time).
p1d then completes it when the line goes quiet. It is accepted, as a DSMR 2.2 telegram without an
end line always was, but it may lack any register after the cut: its import_kwh must not be the
sum of the registers that did arrive (12345.678 kWh of tariff 1 instead of 35802.467 kWh for both),
or /api/now, MQTT and the history see the total drop by a tariff's worth and come back a telegram
later, which Home Assistant books as a meter reset plus phantom use.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, fake_dongle, need_p1d, tmpdir  # noqa: E402


def telegram(t1="12345.678", t2="23456.789"):
    """A DSMR 2.2 telegram as an Iskra MT382 sends it: no meter time, bare '!', no CRC."""
    return (
        "/ISk5\\2MT382-1003\r\n\r\n"
        "0-0:96.1.1(5A4245563030313233343536373839)\r\n"
        "1-0:1.8.1(%s*kWh)\r\n"
        "1-0:1.8.2(%s*kWh)\r\n"
        "1-0:1.7.0(0000.67*kW)\r\n"
        "0-0:96.14.0(0002)\r\n"
        "!\r\n" % (t1, t2)
    ).encode("latin-1")


GOOD1 = telegram()
CUT = GOOD1[:GOOD1.index(b"1-0:1.8.2")]  # stops after tariff 1, then silence
GOOD2 = telegram(t2="23456.790")


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def reading(port):
    try:
        return get(port, "/api/now")["reading"]
    except Exception:
        return {}


def main():
    c = Checks("test_decoder_quirks")
    need_p1d(c)
    with tmpdir() as tmp:
        dongle = fake_dongle()
        d = Daemon(["--source", "home=tcp:127.0.0.1:%d" % dongle.getsockname()[1],
                    "--db", os.path.join(tmp, "m.db"), "--listen", "127.0.0.1:0",
                    "--log-level", "info"], tmp)
        conn = None
        try:
            port = d.http_port()
            conn, _ = dongle.accept()

            conn.sendall(GOOD1)
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
            c.check("first telegram accepted", m is not None, str(d.meter("home")))
            c.check("/api/now import_kwh 35802.467", reading(port).get("import_kwh") == 35802.467,
                    str(reading(port)))

            # The cut telegram: the line goes quiet for more than a second after tariff 1.
            conn.sendall(CUT)
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 2, timeout=10)
            c.check("cut DSMR 2.2 telegram completed by the quiet line, accepted",
                    m is not None and m.get("rejected", 0) == 0, str(d.meter("home")))
            r = reading(port)
            c.check("... its tariff 1 register is shown",
                    r.get("import_tariff_kwh") == {"1": 12345.678}, str(r))
            c.check("... but no import_kwh summed from tariff 1 alone (never 12345.678)",
                    "import_kwh" not in r, str(r))

            time.sleep(1.2)  # the next second: its own raw point in the history
            conn.sendall(GOOD2)
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 3)
            c.check("next telegram accepted", m is not None, str(d.meter("home")))
            c.check("/api/now import_kwh 35802.468", reading(port).get("import_kwh") == 35802.468,
                    str(reading(port)))

            # The history (on p1d's clock, the last 24 h): no step down to 12345.678 and back up.
            q = "/api/history?meter=home&step=raw&fields=import_kwh,import_t1_kwh,import_t2_kwh"
            h = {}
            end = time.time() + 10
            while time.time() < end:
                h = get(port, q)
                if len(h.get("time", [])) >= 3:
                    break
                time.sleep(0.2)
            print("history: %s" % json.dumps(h))
            steps = [x for x in h.get("import_kwh", []) if x is not None]
            c.check("history has no dip (no negative step)", steps and min(steps) >= 0, str(h))
            c.check("history's energy over the three telegrams is the 0.001 kWh used",
                    abs(sum(steps) - 0.001) < 1e-9, str(h))
        finally:
            if conn:
                conn.close()
            d.stop()
            dongle.close()

    # A Holley DTSD545 (Hungary): CRC-16/X-25 in the end line, last month's registers in a block.
    # Both telegrams are accepted with the live registers, and the log says once which CRC it is.
    holley = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                          "hu-holley-block.txt")
    with tmpdir() as tmp:
        d = Daemon(["--source", "hu=file:%s" % holley, "--listen", "127.0.0.1:0",
                    "--log-level", "info"], tmp)
        try:
            port = d.http_port()
            m = d.wait_meter("hu", lambda m: m.get("telegrams", 0) >= 2)
            c.check("Holley: both telegrams accepted (CRC-16/X-25)",
                    m is not None and m.get("rejected") == 0 and m.get("crc_errors") == 0,
                    str(d.meter("hu")))
            r = reading(port)
            c.check("Holley: the live registers, not last month's block",
                    r.get("import_kwh") == 31108.121 and
                    r.get("import_tariff_kwh") == {"1": 25849.897, "2": 5258.224}, str(r))
            c.check("Holley: the log names the CRC once",
                    d.wait_log("hu: the meter's CRC is CRC-16/X-25") and
                    d.text().count("CRC-16/X-25") == 1, d.text()[-2000:])
        finally:
            d.stop()
    c.done()


if __name__ == "__main__":
    main()
