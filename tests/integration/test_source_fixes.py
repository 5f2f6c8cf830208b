#!/usr/bin/env python3
"""test_source_fixes.py: source regressions found by QA: a serial meter sending encrypted frames
without a key or with a wrong one (the speed counts as detected, the key problem is a warning and
the meter's last_error, /healthz names it), speed detection on a silent line (no switching, the
real window in the message), a TCP dongle that closes every connection at once (one line per
change, not per cycle), two sources on one serial device (a configuration error), and a file:
source on a named pipe without a writer (it froze the daemon at start and on reload; now it waits
for a writer, and for the next one when a writer closes)."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (ROOT, Cable, Checks, Daemon, free_port, need_p1d, run, telegram,  # noqa: E402
                            tmpdir, write_conf)

T = Checks("test_source_fixes")
need_p1d(T)

DATA = os.path.join(ROOT, "tests", "data")
KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
WRONG_KEY = "0F1E2D3C4B5A69788796A5B4C3D2E100"
AK = "00112233445566778899AABBCCDDEEFF"
FAST = "reconnect_min=100ms:reconnect_max=400ms"

with open(os.path.join(DATA, "lu-encrypted.bin"), "rb") as f:
    FRAME = f.read()


def feeder(line, data, seconds, gap):
    """Writes data every gap seconds for seconds, in a thread; returns it (join() it)."""
    def go():
        end = time.time() + seconds
        while time.time() < end:
            try:
                line.send(data)
            except (OSError, TypeError):  # the test closed the line (master None) first
                return
            time.sleep(gap)
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def encrypted_no_key(d):
    line = Cable(os.path.join(d, "ttyNoKey"))
    p = Daemon(["--source", "lu=serial:%s:auto:detect_timeout=1s:%s" % (line.link, FAST),
                "--listen", "127.0.0.1:0", "--log-level", "info"], d)
    try:
        T.check("no key: opens the line", p.wait_log(r"lu: reading .*ttyNoKey"), p.text())
        p.http_port()
        feeder(line, FRAME, 4.0, 0.25).join()
        m = p.meter("lu")
        text = p.text()
        T.check("no key: the speed is never switched", "trying" not in text, text)
        T.check("no key: the speed counts as detected", m.get("detected") == "115200 8N1", str(m))
        T.check("no key: last_error asks for a key", "no key" in (m.get("last_error") or ""),
                str(m))
        T.check("no key: one warning names the missing key",
                text.count("warn: lu: encrypted telegrams but no key") == 1, text)
    finally:
        p.stop()
        line.close()


def encrypted_wrong_key(d):
    line = Cable(os.path.join(d, "ttyWrong"))
    port = free_port()
    p = Daemon(["--source", "lu=serial:%s:auto:detect_timeout=1s:key=%s:ak=%s:%s" %
                (line.link, WRONG_KEY, AK, FAST), "--listen", "127.0.0.1:%d" % port,
                "--log-level", "warn"], d)
    p.port = port
    try:
        time.sleep(0.5)
        feeder(line, FRAME, 3.0, 0.25).join()
        m = p.meter("lu")
        text = p.text()
        T.check("wrong key: rejects are counted", m.get("rejected", 0) >= 5, str(m))
        T.check("wrong key: last_error says decryption failed",
                "decryption failed" in (m.get("last_error") or ""), str(m))
        T.check("wrong key: one warning at --log-level warn",
                text.count("warn: lu: decryption failed") == 1, text)
        T.check("wrong key: the speed counts as detected", m.get("detected") == "115200 8N1",
                str(m))
        st, body = healthz(port)
        T.check("wrong key: /healthz reason names the key problem",
                st == 503 and "decryption failed" in body, "%s %s" % (st, body))
    finally:
        p.stop()
        line.close()
    # The right key still decodes at once over the same kind of line.
    line = Cable(os.path.join(d, "ttyRight"))
    p = Daemon(["--source", "lu=serial:%s:auto:detect_timeout=1s:key=%s:ak=%s:%s" %
                (line.link, KEY, AK, FAST), "--listen", "127.0.0.1:0"], d)
    try:
        p.http_port()
        feeder(line, FRAME, 1.5, 0.25).join()
        m = p.wait_meter("lu", lambda m: m.get("telegrams", 0) >= 1, 5)
        T.check("right key: telegrams decode", m is not None and not m.get("last_error"),
                str(p.meter("lu")))
    finally:
        p.stop()
        line.close()


def silent_line(d):
    line = Cable(os.path.join(d, "ttySilent"))
    # debug: once both speeds failed on these bytes the cable is blamed (test_serial_faults.py) and
    # the later "trying" lines, whose window this checks, drop to debug.
    p = Daemon(["--source", "q=serial:%s:auto:detect_timeout=1s:%s" % (line.link, FAST),
                "--listen", "127.0.0.1:0", "--log-level", "debug"], d)
    try:
        T.check("silent: opens the line", p.wait_log(r"q: reading .*ttySilent"), p.text())
        time.sleep(3.5)
        T.check("silent: no speed switch without a byte", "trying" not in p.text(), p.text())
        # Bytes that never form a telegram: the windows are 1 s, 1 s, then 2 s.
        feeder(line, b"xxxxxxxx", 6.0, 0.1)
        T.check("silent: switches once bytes arrive",
                p.wait_log(r"q: no telegram within 1 s at", 5), p.text())
        T.check("silent: the message names the real (grown) window",
                p.wait_log(r"q: no telegram within 2 s at", 8), p.text())
    finally:
        p.stop()
        line.close()


def closing_dongle(d):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    p = Daemon(["--source", "net=tcp:127.0.0.1:%d:reconnect_min=50ms:reconnect_max=100ms" % port,
                "--listen", "127.0.0.1:0"], d)
    try:
        p.http_port()
        m = p.wait_meter("net", lambda m: m.get("reconnects", 0) >= 10, 10)
        text = p.text()
        T.check("closing dongle: reconnects are counted", m is not None, str(p.meter("net")))
        T.check("closing dongle: 'connected' is not logged per cycle",
                text.count("net: connected to") <= 2, text)
        T.check("closing dongle: 'lost' is not logged per cycle",
                text.count("net: lost ") <= 2, text)
        T.check("closing dongle: one line says it closes every connection",
                text.count("closes every connection at once") == 1, text)
    finally:
        p.stop()
        stop.set()
        th.join()
        srv.close()


def same_device(d):
    line = Cable(os.path.join(d, "ttyShared"))
    try:
        args = ["--source", "a=serial:%s" % line.link, "--source", "b=serial:%s" % line.path,
                "--listen", "127.0.0.1:0"]
        code, _, err = run(args + ["--check-config"])
        T.check("same device: --check-config refuses it", code == 2, "%d %s" % (code, err))
        T.check("same device: the error names both sources",
                "'a'" in err and "'b'" in err and "same serial device" in err, err)
        try:
            code, _, err = run(args, timeout=5)
        except subprocess.TimeoutExpired:
            code, err = -1, "still running after 5 s"
        T.check("same device: the start refuses it", code == 2 and "'a'" in err and "'b'" in err,
                "%d %s" % (code, err))
        code, _, err = run(["--source", "a=serial:%s" % line.link, "--source",
                            "b=serial:%s" % os.path.join(d, "ttyOther"), "--check-config"])
        T.check("different devices are accepted", code == 0, "%d %s" % (code, err))
    finally:
        line.close()


def write_fifo(path, data):
    """One writer: opens the FIFO (p1d must be reading it: at most 5 s), writes, closes."""
    end = time.time() + 5
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: no reader yet
            if time.time() > end:
                raise
            time.sleep(0.05)
    os.set_blocking(fd, True)
    os.write(fd, data)
    os.close(fd)


def fifo(d):
    path = os.path.join(d, "p1.fifo")
    os.mkfifo(path)
    conf = os.path.join(d, "fifo.conf")
    write_conf(conf, "[source a]\nspec = sim\n")
    p = Daemon(["--config", conf, "--source", "f=file:%s" % path, "--listen", "127.0.0.1:0"], d)
    try:
        T.check("fifo without a writer: the API opens", p.http_port(5) is not None, p.text())
        m = p.wait_meter("f", lambda m: m.get("state") == "waiting", 3)
        T.check("fifo: waiting for a writer, last_error says so",
                m is not None and "waiting for a writer" in (m.get("last_error") or ""),
                str(p.meter("f")))
        write_fifo(path, telegram(1) + telegram(2))
        m = p.wait_meter("f", lambda m: m.get("telegrams") == 2 and m.get("state") == "waiting", 3)
        T.check("fifo: a writer's telegrams decode; when it closes, p1d waits for the next",
                m is not None and "waiting for a writer" in (m.get("last_error") or ""),
                str(p.meter("f")))
        write_fifo(path, telegram(3))
        m = p.wait_meter("f", lambda m: m.get("telegrams") == 3, 3)
        T.check("fifo: the next writer's telegrams decode too, counted as a reconnect",
                m is not None and m.get("reconnects") == 1, str(p.meter("f")))
        path2 = os.path.join(d, "p1b.fifo")
        os.mkfifo(path2)
        write_conf(conf, "[source a]\nspec = sim\n[source g]\nspec = file:%s\n" % path2)
        p.signal(signal.SIGHUP)
        T.check("fifo added by a reload: the reload completes",
                p.wait_log(r"reloaded .*: 1 source added", 3), p.text())
        T.check("... and the API still answers",
                p.wait_meter("g", lambda m: m.get("state") == "waiting", 3) is not None,
                str(p.meter("g")))
        t0 = time.time()
        code = p.stop(5)
        T.check("fifo: SIGTERM exits 0 at once", code == 0 and time.time() - t0 < 3,
                "%s after %.1f s" % (code, time.time() - t0))
    finally:
        p.stop()


def tty_file(d):
    """file: on a tty: read as a stream (no blocking open, not made the controlling terminal)."""
    line = Cable(os.path.join(d, "ttyFile"))
    tty.setraw(line.master)  # file: leaves the line settings alone: no CR/LF translation
    p = Daemon(["--source", "t=file:%s" % line.link, "--listen", "127.0.0.1:0"], d)
    try:
        T.check("file: on a tty: the API opens", p.http_port(5) is not None, p.text())
        time.sleep(0.2)
        line.send(telegram(4))
        T.check("file: on a tty: telegrams decode",
                p.wait_meter("t", lambda m: m.get("telegrams") == 1, 3) is not None,
                str(p.meter("t")))
    finally:
        p.stop()
        line.close()


with tmpdir() as tmp:
    fifo(tmp)
    tty_file(tmp)
    encrypted_no_key(tmp)
    encrypted_wrong_key(tmp)
    silent_line(tmp)
    closing_dongle(tmp)
    same_device(tmp)

T.done()
