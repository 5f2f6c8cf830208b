#!/usr/bin/env python3
"""test_daemon_serial.py: p1d reading a serial line through a pty pair: telegrams, garbage and
truncated telegrams, the cable unplugged and back, a missing device at start, a second reader
holding the lock, and the speed/parity auto-detection."""
import fcntl
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Cable, Checks, Daemon, need_p1d, telegram, tmpdir, to_7e1  # noqa: E402

T = Checks("test_daemon_serial")
need_p1d(T)

FAST = "reconnect_min=100ms:reconnect_max=400ms"


def telegrams(cable, start, n, gap=0.05):
    for i in range(start, start + n):
        cable.send(telegram(i))
        time.sleep(gap)


with tmpdir() as d:
    link = os.path.join(d, "ttyP1")

    # 1. Telegrams, garbage, a truncated and a corrupted telegram; then unplug and replug.
    cable = Cable(link)
    p = Daemon(["--source", "home=serial:%s:115200:%s" % (link, FAST), "--listen", "127.0.0.1:0"], d)
    try:
        T.check("opens the tty by its link", p.wait_log(r"home: reading .*ttyP1 at 115200 8N1"), p.text())
        p.http_port()
        telegrams(cable, 0, 5)
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 5)
        T.check("5 telegrams accepted", m is not None, str(p.meter("home")))
        T.check("detected reports the line settings", m and m.get("detected") == "115200 8N1", str(m))
        cable.send(b"\xff\x00garbage\r\n" * 20)
        t5 = telegram(5)
        cable.send(t5[:t5.index(b"1-0:1.8.2")])   # cut off at a line end by the next header
        telegrams(cable, 6, 1)
        cable.send(telegram(7, crc=False))        # CRC mismatch
        telegrams(cable, 8, 2)
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 8)
        T.check("good telegrams around the noise are accepted", m is not None, str(p.meter("home")))
        m = p.meter("home")
        T.check("truncated + CRC error counted as rejected", m.get("rejected", 0) >= 2, str(m))
        T.check("CRC error counted", m.get("crc_errors", 0) == 1, str(m))
        T.check("reject logged", p.wait_log(r"home: rejected telegram at offset \d+: truncated"))

        cable.unplug()
        T.check("unplug is noticed", p.wait_log(r"home: lost .*ttyP1"), p.text())
        T.check("waiting logged once the device is gone",
                p.wait_log(r"home: waiting for .*ttyP1 \(No such file or directory\)", 5))
        time.sleep(1.0)
        T.check("retries do not flood the log", p.text().count("waiting for") == 1, p.text())
        m = p.meter("home")
        T.check("meter state waiting while unplugged", m.get("state") == "waiting", str(m))
        cable.plug()
        T.check("replugged: reopened", p.wait_log(r"home: reading .*ttyP1", 5, count=2), p.text())
        time.sleep(0.2)
        telegrams(cable, 10, 3)
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 11)
        T.check("telegrams after the replug", m is not None, str(p.meter("home")))
        T.check("reconnect counted", m and m.get("reconnects", 0) >= 1, str(m))
        T.check("SIGTERM exits 0", p.stop() == 0, p.text())
        T.check("exit summary logged", "home: " in p.text() and "telegrams, " in p.text())
    finally:
        p.stop()
        cable.close()

    # 2. Missing at start: p1d waits, then picks the device up.
    link2 = os.path.join(d, "ttyLATE")
    p = Daemon(["--source", "late=serial:%s:%s" % (link2, FAST), "--listen", "127.0.0.1:0"], d)
    cable = None
    try:
        T.check("missing device at start: waits",
                p.wait_log(r"late: waiting for .*ttyLATE \(No such file or directory\)"), p.text())
        T.check("still running while waiting", p.proc.poll() is None)
        cable = Cable(link2)
        T.check("device appears: opened", p.wait_log(r"late: reading .*ttyLATE", 5), p.text())
        time.sleep(0.2)
        telegrams(cable, 0, 2)
        T.check("reads once it appeared",
                p.wait_meter("late", lambda m: m.get("telegrams", 0) >= 2) is not None)
    finally:
        p.stop()
        if cable:
            cable.close()

    # 3. Another reader holds the lock: p1d names it and waits.
    cable = Cable(link)
    holder = os.open(link, os.O_RDWR | os.O_NOCTTY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    p = Daemon(["--source", "home=serial:%s:%s" % (link, FAST), "--listen", "127.0.0.1:0"], d)
    try:
        m = p.wait_log(r"home: waiting for .*ttyP1 \(locked by pid (\d+) \((\S+)\)\)")
        T.check("lock holder named", m is not None and int(m.group(1)) == os.getpid(), p.text())
        os.close(holder)
        holder = None
        T.check("lock released: opened", p.wait_log(r"home: reading .*ttyP1", 5), p.text())
    finally:
        if holder is not None:
            os.close(holder)
        p.stop()
        cable.close()

    # 4. Auto-detection: garbage at 115200 makes it try 9600 7E1; text then decodes there.
    cable = Cable(link)
    p = Daemon(["--source", "home=serial:%s:auto:detect_timeout=1s:%s" % (link, FAST),
                "--listen", "127.0.0.1:0"], d)
    try:
        T.check("auto starts at 115200", p.wait_log(r"reading .* at 115200 8N1 \(detecting\)"), p.text())
        end = time.time() + 1.6
        while time.time() < end:
            cable.send(bytes([0x80 | (i * 37 % 127) for i in range(64)]).replace(b"\xaf", b"\x80"))
            time.sleep(0.05)
        T.check("no telegram within the window: switches to 9600 7E1",
                p.wait_log(r"home: no telegram within 1 s at 115200 8N1; trying 9600 7E1", 3), p.text())
        m = p.meter("home")
        T.check("the meter reports the detection in progress",
                "trying 9600 7E1" in (m.get("last_error") or ""), str(m))
        telegrams(cable, 0, 2)
        T.check("text decodes at 9600 7E1", p.wait_log(r"home: telegrams decode at 9600 7E1", 3), p.text())
        m = p.wait_meter("home", lambda m: m.get("detected") == "9600 7E1", 3)
        T.check("detected = 9600 7E1 in the API", m is not None, str(p.meter("home")))
    finally:
        p.stop()
        cable.close()

    # 5. Rejected-only telegrams switch early (lines that do not read, as at a wrong speed; a CRC
    # error alone proves the speed: test_serial_faults.py); a 7E1 sender at 115200 decodes with
    # bit 7 masked.
    cable = Cable(link)
    p = Daemon(["--source", "home=serial:%s:auto:detect_timeout=30s:%s" % (link, FAST),
                "--listen", "127.0.0.1:0"], d)
    try:
        p.wait_log(r"reading .* at 115200 8N1")
        time.sleep(0.2)
        for i in range(3):
            cable.send(b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1)0(\r\n!1234\r\n")
            time.sleep(0.05)
        T.check("three rejects and no accept: switches early",
                p.wait_log(r"home: only rejected telegrams at 115200 8N1; trying 9600 7E1", 3), p.text())
    finally:
        p.stop()
        cable.close()
    cable = Cable(link)
    p = Daemon(["--source", "home=serial:%s:auto:%s" % (link, FAST), "--listen", "127.0.0.1:0"], d)
    try:
        p.wait_log(r"reading .* at 115200 8N1")
        time.sleep(0.2)
        for i in range(3):
            cable.send(to_7e1(telegram(i)))
            time.sleep(0.05)
        T.check("7E1 at 115200 decodes by masking bit 7",
                p.wait_log(r"home: telegrams decode at 115200 7E1", 3), p.text())
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 3, 3)
        T.check("all three 7E1 telegrams accepted", m is not None and m.get("detected") == "115200 7E1",
                str(p.meter("home")))
    finally:
        p.stop()
        cable.close()
T.done()
