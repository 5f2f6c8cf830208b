#!/usr/bin/env python3
"""test_bad_value.py: a garbled register value in a telegram without CRC is rejected by p1d
(bad_value), like a CRC error: counted on the meter, logged with the object's OBIS, never shown by
/api/now, stored in the history, or relayed. Before, the register was dropped and import_kwh fell
to the sum of the other tariffs for one telegram, which Home Assistant books as a meter reset."""
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, crc16, fake_dongle, free_port, need_p1d,  # noqa: E402
                            tmpdir)


def telegram(second, t1, t2="23456.789"):
    """A telegram without CRC (bare '!', as DSMR 2.2/3.0 meters send), with a meter time."""
    return (
        "/ISk5\\2MT382-1003\r\n\r\n"
        "0-0:1.0.0(240115120%03dW)\r\n"
        "1-0:1.8.1(%s*kWh)\r\n"
        "1-0:1.8.2(%s*kWh)\r\n"
        "1-0:1.7.0(0000.67*kW)\r\n"
        "!\r\n" % (second, t1, t2)
    ).encode("latin-1")


def crc_telegram(second, power):
    """A DSMR 5 telegram with its CRC at 12:02:second whose power is sent as given."""
    body = ("/ISk5\\2MT382-1003\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(2401151202%02dW)\r\n"
            "1-0:1.8.1(12345.680*kWh)\r\n1-0:1.8.2(23456.789*kWh)\r\n1-0:1.7.0(%s)\r\n!"
            % (second, power)).encode("latin-1")
    return body + b"%04X\r\n" % crc16(body)


GOOD1 = telegram(1, "12345.678")
BAD = telegram(2, "0O12345.678")  # 'O' for '0': line noise without a CRC to catch it
GOOD2 = telegram(3, "12345.679")


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def import_kwh(port):
    try:
        return get(port, "/api/now")["reading"].get("import_kwh")
    except Exception:
        return None


def recv_all(sock, want, timeout=5.0):
    """Reads from the relay until want bytes came or the time is up."""
    buf = b""
    end = time.time() + timeout
    sock.settimeout(0.2)
    while len(buf) < want and time.time() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    return buf


def main():
    c = Checks("test_bad_value")
    need_p1d(c)
    with tmpdir() as tmp:
        dongle = fake_dongle()
        relay_port = free_port()
        # clock=meter: the history is kept on the telegrams' own (2024) times
        d = Daemon(["--source", "home=tcp:127.0.0.1:%d:clock=meter" % dongle.getsockname()[1],
                    "--db", os.path.join(tmp, "m.db"), "--listen", "127.0.0.1:0",
                    "--relay", "127.0.0.1:%d" % relay_port, "--log-level", "info"], tmp)
        conn = relay = None
        try:
            port = d.http_port()
            conn, _ = dongle.accept()
            relay = None
            end = time.time() + 10
            while relay is None and time.time() < end:
                try:
                    relay = socket.create_connection(("127.0.0.1", relay_port), timeout=5)
                except OSError:
                    time.sleep(0.1)
            c.check("relay client connected", relay is not None)
            time.sleep(0.2)

            conn.sendall(GOOD1)
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
            c.check("first telegram accepted", m is not None, str(d.meter("home")))
            c.check("/api/now import_kwh 35802.467", import_kwh(port) == 35802.467,
                    str(import_kwh(port)))

            conn.sendall(BAD)
            m = d.wait_meter("home", lambda m: m.get("rejected", 0) >= 1)
            c.check("garbled telegram rejected (meter rejected 1)", m is not None and
                    m.get("rejected") == 1 and m.get("telegrams") == 1, str(d.meter("home")))
            c.check("... not counted as a CRC error", m is not None and m.get("crc_errors") == 0,
                    str(m))
            c.check("/api/now still shows 35802.467, never the dipped 23456.789",
                    import_kwh(port) == 35802.467, str(import_kwh(port)))
            line = d.wait_log(r"home: rejected telegram at offset (\d+): bad_value 1-0:1\.8\.1 ")
            c.check("log names bad_value, the OBIS and the value's offset",
                    line is not None and int(line.group(1)) == len(GOOD1) + BAD.index(b"0O"),
                    d.text()[-600:])

            conn.sendall(GOOD2)
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 2)
            c.check("next telegram accepted", m is not None and m.get("rejected") == 1,
                    str(d.meter("home")))
            c.check("/api/now import_kwh 35802.468", import_kwh(port) == 35802.468,
                    str(import_kwh(port)))

            got = recv_all(relay, len(GOOD1) + len(GOOD2))
            c.check("relay sent only the two accepted telegrams", got == GOOD1 + GOOD2,
                    repr(got[:300]))

            # The store commits once a second; raw points carry the energy since the last one.
            q = ("/api/history?meter=home&step=raw&fields=import_kwh,import_t1_kwh"
                 "&from=2024-01-15T12:00:00%2B01:00&to=2024-01-15T12:01:00%2B01:00")
            h = {}
            end = time.time() + 10
            while time.time() < end:
                h = get(port, q)
                if "2024-01-15T12:00:03+01:00" in h.get("time", []):
                    break
                time.sleep(0.2)
            c.check("history holds the two accepted readings only",
                    h.get("time") == ["2024-01-15T12:00:01+01:00", "2024-01-15T12:00:03+01:00"],
                    str(h))
            deltas = [x for x in h.get("import_kwh", []) if x is not None]
            c.check("history has no dip (no negative step)", deltas and min(deltas) >= 0, str(h))
            c.check("history's last step is the 0.001 kWh really used",
                    h.get("import_kwh", [None])[-1] == 0.001, str(h))

            # A power in kWh under a valid CRC: the meter sends it so. The telegram is taken
            # without that value, and the log says why it is missing, once.
            left = [crc_telegram(1, "00.670*kWh"), crc_telegram(2, "00.680*kWh")]
            conn.sendall(left[0] + left[1])
            m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 4)
            c.check("telegrams with a power in kWh and a valid CRC are accepted",
                    m is not None and m.get("rejected") == 1, str(d.meter("home")))
            now = get(port, "/api/now")["reading"]
            c.check("... their import is taken, the power left out",
                    now.get("import_kwh") == 35802.469 and "power_import_w" not in now, str(now))
            off = len(GOOD1) + len(BAD) + len(GOOD2) + left[0].index(b"00.670*kWh")
            line = d.wait_log(r"home: bad_unit: 1-0:1\.7\.0: value of a known object is in the "
                              r"unit of another quantity \(kWh\) at offset (\d+); that value is "
                              r"left out, the rest of its telegrams is taken")
            c.check("a warning names the object, the unit and the offset",
                    line is not None and int(line.group(1)) == off, d.text()[-800:])
            c.check("... once, not for every telegram",
                    d.text().count("that value is left out") == 1, d.text()[-800:])
        finally:
            for s in (conn, relay):
                if s:
                    s.close()
            d.stop()
            dongle.close()
    c.done()


if __name__ == "__main__":
    main()
