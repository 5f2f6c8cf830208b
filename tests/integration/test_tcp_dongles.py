#!/usr/bin/env python3
"""test_tcp_dongles.py: a tcp: source against the habits of real network P1 dongles: telnet
negotiation bytes (IAC) and a ser2net banner with a '/' in it before the first telegram, a
stream at 9600-baud pace one byte per segment, a WiFi stall of 1.6 s in the middle of a
telegram (the rest then arrives: the telegram is good and must be accepted, not cut at the
one-second quiet time), a close mid-telegram (that one reported, the next one decoded), and
ser2net at the wrong serial speed: bytes that never decode are a warning and the meter's
last_error after detect_timeout, once, cleared by the first telegram that decodes."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, fake_dongle, need_p1d, telegram, tmpdir  # noqa: E402

T = Checks("test_tcp_dongles")
need_p1d(T)

IAC = b"\xff\xfb\x03\xff\xfb\x01\xff\xfd\x03\xff\xfd\x00"
BANNER = b"\r\nser2net port 2001 device /dev/ttyUSB0 [115200 N81] (Debian GNU/Linux)\r\n\r\n"


def counts(p):
    m = p.meter("a")
    return m.get("telegrams", 0), m.get("rejected", 0)


with tmpdir() as d:
    dongle = fake_dongle()
    p = Daemon(["--source", "a=tcp:127.0.0.1:%d:reconnect_min=100ms" % dongle.getsockname()[1],
                "--listen", "127.0.0.1:0"], d)
    conn = None
    try:
        T.check("API up", p.http_port() is not None, p.text())
        conn, _ = dongle.accept()
        conn.sendall(IAC + BANNER)
        time.sleep(0.2)
        conn.sendall(telegram(0))
        T.check("IAC bytes and a banner with a '/' before the first telegram: it is accepted",
                p.wait_meter("a", lambda m: m.get("telegrams", 0) == 1) is not None
                and counts(p) == (1, 0), str(counts(p)))

        for b in telegram(1):  # 9600 baud: about 1 ms a byte, each its own segment
            conn.send(bytes([b]))
            time.sleep(0.001)
        T.check("a telegram one byte at a time at 9600-baud pace is accepted",
                p.wait_meter("a", lambda m: m.get("telegrams", 0) == 2, 5) is not None
                and counts(p) == (2, 0), str(counts(p)))

        t = telegram(2)
        conn.sendall(t[:150])
        time.sleep(1.6)
        conn.sendall(t[150:])
        T.check("a 1.6 s stall mid-telegram, then the rest: the telegram is accepted",
                p.wait_meter("a", lambda m: m.get("telegrams", 0) == 3, 5) is not None
                and counts(p) == (3, 0), "%s\n%s" % (counts(p), p.text()[-600:]))
        conn.sendall(telegram(3))
        T.check("... and so is the next", p.wait_meter("a", lambda m: m.get("telegrams", 0) == 4, 5)
                is not None and counts(p) == (4, 0), str(counts(p)))

        conn.sendall(telegram(4)[:150])
        time.sleep(0.2)
        conn.close()
        T.check("a close mid-telegram reports that telegram as truncated",
                p.wait_log(r"a: rejected telegram at offset \d+: truncated", 5)
                and p.wait_log(r"warn: a: lost .* \(closed by the peer\); reconnecting", 5),
                p.text()[-600:])
        conn, _ = dongle.accept()
        conn.sendall(telegram(5))
        T.check("the next connection's telegram is decoded",
                p.wait_meter("a", lambda m: m.get("telegrams", 0) == 5, 5) is not None
                and counts(p) == (5, 1), str(counts(p)))
    finally:
        if conn:
            conn.close()
        dongle.close()
        T.check("SIGTERM exits 0", p.stop() == 0, p.text())

    # ser2net at 9600 while the meter sends 115200: bytes like these, never a telegram.
    dongle = fake_dongle()
    p = Daemon(["--source", "w=tcp:127.0.0.1:%d:detect_timeout=1s" % dongle.getsockname()[1],
                "--listen", "127.0.0.1:0"], d)
    conn = None
    try:
        p.http_port()
        conn, _ = dongle.accept()
        stop = threading.Event()

        def garbage():
            while not stop.is_set():
                conn.sendall(b"\x00\xff\x80\xfe\xf8\x00\xf8\x80" * 8)
                time.sleep(0.05)
        th = threading.Thread(target=garbage, daemon=True)
        th.start()
        w = p.wait_log(r"warn: w: bytes arrive from 127\.0\.0\.1:\d+ but no telegram decodes "
                       r"\(\d+% not text\): is the dongle's or ser2net's serial speed", 4)
        T.check("wrong speed behind the dongle: a warning after detect_timeout", w is not None,
                p.text()[-600:])
        m = p.meter("w")
        T.check("... last_error says so, still connected",
                "serial speed" in (m.get("last_error") or "") and m.get("state") == "connected",
                str(m))
        time.sleep(1.2)
        stop.set()
        th.join()
        T.check("... warned once", p.text().count("no telegram decodes") == 1, p.text()[-600:])
        conn.sendall(telegram(7))
        m = p.wait_meter("w", lambda m: m.get("telegrams", 0) == 1, 3)
        T.check("a telegram that decodes clears it", m is not None and not m.get("last_error")
                and p.wait_log(r"info: w: telegrams decode on 127\.0\.0\.1:\d+", 2),
                str(p.meter("w")))
    finally:
        if conn:
            conn.close()
        dongle.close()
        T.check("SIGTERM exits 0 (wrong speed)", p.stop() == 0, p.text())
T.done()
