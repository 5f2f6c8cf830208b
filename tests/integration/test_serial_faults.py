#!/usr/bin/env python3
"""test_serial_faults.py: a P1 cable going wrong the ways it does at home, through ptys: a cable
that does not invert the signal (bytes but never a telegram), the user not in dialout (EACCES),
ModemManager or brltty holding the port (TIOCEXCL, EBUSY), a directory given as the device, the
adapter unplugged and plugged back under a new tty behind the same by-id link (with baud=auto the
speed found is kept), a noisy line whose telegrams fail only their CRC (the speed is right: no
switch), a cable that wedges until its tty is closed and reopened (idle_reopen), a port
that stalls mid-telegram (a radio or network serial port: the rest is waited for), and two cables
that a reload names the other way round. Each time p1d
keeps running, names the problem and what to do in the log and the meter's last_error, retries
without spinning (CPU time measured), and decodes the first good telegram once the cable is
right again."""
import contextlib
import fcntl
import os
import select
import shutil
import signal
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Cable, Checks, Daemon, http, need_p1d, telegram, tmpdir,  # noqa: E402
                            write_conf)

T = Checks("test_serial_faults")
need_p1d(T)

FAST = "reconnect_min=100ms:reconnect_max=400ms"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def cpu_s(p):
    """User + system CPU seconds p1d used so far."""
    with open("/proc/%d/stat" % p.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def on_cable(d, tty, spec, prefix=(), prepare=None, backoff=FAST):
    """A pty under d/tty and p1d reading it as meter home with serial:LINK:spec:backoff;
    prepare(cable) runs before p1d starts. Yields (cable, p1d); stops both."""
    cable = Cable(os.path.join(d, tty))
    if prepare:
        prepare(cable)
    p = Daemon(["--source", "home=serial:%s:%s:%s" % (cable.link, spec, backoff),
                "--listen", "127.0.0.1:0"], d, prefix=prefix)
    try:
        yield cable, p
    finally:
        p.stop()
        cable.close()


def decodes(cable, p, i, n):
    """Sends telegram i; waits until the meter has n telegrams; returns the meter or None."""
    cable.send(telegram(i))
    return p.wait_meter("home", lambda m: m.get("telegrams", 0) >= n, 3)


def send_for(cable, data, seconds, gap=0.05):
    end = time.time() + seconds
    while time.time() < end:
        cable.send(data)
        time.sleep(gap)


def not_inverted(d):
    """Fixed speed: only 0x00/0xFF-style bytes; the warning names the cable; a telegram clears it."""
    with on_cable(d, "ttyRAW", "115200:detect_timeout=1s") as (cable, p):
        p.wait_log(r"home: reading .*ttyRAW")
        p.http_port()
        send_for(cable, b"\xff\x00\xfe\x80\x00\xff" * 40, 2.0)
        w = p.wait_log(r"warn: home: bytes arrive on .*ttyRAW but no telegram decodes "
                       r"\(\d+% not text\): a cable that does not invert the signal", 3)
        T.check("garbage at a fixed speed: a warning names the cable", w is not None, p.text())
        m = p.meter("home")
        T.check("garbage: last_error says so", "does not invert" in (m.get("last_error") or ""), str(m))
        T.check("garbage: still connected, running", m.get("state") == "connected" and
                p.proc.poll() is None, str(m))
        send_for(cable, b"\xff\x00\xfe\x80" * 40, 1.0)
        T.check("garbage: warned once", p.text().count("no telegram decodes") == 1, p.text())
        m = decodes(cable, p, 3, 1)
        T.check("garbage then a good telegram: decoded", m is not None and m.get("telegrams") == 1,
                str(p.meter("home")))
        T.check("good telegram clears last_error", m is not None and not m.get("last_error"), str(m))
        T.check("good telegram logged", p.wait_log(r"info: home: telegrams decode on .*ttyRAW", 2),
                p.text())


def not_inverted_auto(d):
    """baud=auto: the warning comes after both speeds failed and stays while detection goes on."""
    with on_cable(d, "ttyRAW2", "auto:detect_timeout=1s") as (cable, p):
        p.wait_log(r"home: reading .*ttyRAW2")
        p.http_port()
        t0 = time.time()
        send_for(cable, b"\xff\x00\xfe\x80" * 40, 3.5)
        T.check("auto: warned once both speeds were tried",
                p.wait_log(r"trying 9600 7E1[\s\S]*trying 115200 8N1[\s\S]*warn: home: bytes "
                           r"arrive on .*ttyRAW2 but no telegram decodes", 2) is not None, p.text())
        m = p.meter("home")
        T.check("auto: last_error keeps the cable warning over 'trying ...'",
                "does not invert" in (m.get("last_error") or ""), str(m))
        T.check("auto: no CPU spin while garbage arrives", cpu_s(p) < 0.5 * (time.time() - t0),
                "%.2f s" % cpu_s(p))
        send_for(cable, b"\xff\x00\xfe\x80" * 40, 2.5)
        after = p.text().split("no telegram decodes", 1)[-1]
        T.check("auto: no 'trying' line per window once the cable is blamed",
                "trying" not in after, p.text())
        m = decodes(cable, p, 9, 1)
        T.check("auto: detection goes on, a telegram then decodes",
                m is not None and m.get("detected") and not m.get("last_error"), str(p.meter("home")))


def auto_found_at_9600(d):
    """baud=auto, a DSMR 2.2-style start: noise at 115200, the telegram in the 9600 window: no
    cable warning."""
    with on_cable(d, "ttyOLD", "auto:detect_timeout=1s") as (cable, p):
        p.wait_log(r"home: reading .*ttyOLD")
        send_for(cable, b"\xff\x00\xfe\x80" * 40, 1.0)
        T.check("old meter: switched to 9600 7E1", p.wait_log(r"home: .*trying 9600 7E1", 2), p.text())
        time.sleep(0.5)
        cable.send(telegram(4))
        T.check("old meter: decodes at 9600 7E1", p.wait_log(r"home: telegrams decode at 9600 7E1", 2),
                p.text())
        time.sleep(1.5)
        T.check("old meter: no cable warning", "no telegram decodes" not in p.text(), p.text())


def auto_back_to_115200(d):
    """baud=auto, rejects at 9600 switch back to 115200 in the middle of a read, which starts the
    bit-7 twin decoder: it is fed the rest of that read masked, not bytes of the stack (run under
    valgrind when it is installed: it reported the twin's parser reading uninitialised memory)."""
    prefix = ("valgrind", "-q", "--error-exitcode=99") if shutil.which("valgrind") else ()
    with on_cable(d, "ttyBACK", "auto:detect_timeout=10s", prefix=prefix) as (cable, p):
        T.check("back to 115200: p1d reads the line",
                p.wait_log(r"home: reading .*ttyBACK", 30), p.text())
        time.sleep(0.3)
        # three cut telegrams (and a fourth header) in one read: rejected, switched to 9600 7E1
        cable.send(b"".join(telegram(i)[:120] for i in range(4)))
        T.check("back to 115200: rejects switch to 9600 7E1",
                p.wait_log(r"home: only rejected telegrams at 115200 8N1; trying 9600 7E1", 10),
                p.text())
        time.sleep(1.5)
        # three more in the next read: back to 115200 while that read is decoded
        cable.send(b"".join(telegram(i)[:120] for i in range(4, 8)) + b"x" * 2000)
        T.check("back to 115200: rejects at 9600 switch back",
                p.wait_log(r"home: only rejected telegrams at 9600 7E1; trying 115200 8N1", 10),
                p.text())
        time.sleep(1)
        m = decodes(cable, p, 9, 1)
        T.check("back to 115200: the next telegram decodes", m is not None, p.text()[-2000:])
        code = p.stop(30)
        T.check("back to 115200: no memory error (exit %s)" % code, code == 0, p.text()[-3000:])


def auto_crc_errors(d):
    """baud=auto, a noisy line at the right speed: telegrams that read whole but fail their CRC
    prove the speed; p1d keeps it instead of switching to 9600 7E1 after three of them."""
    with on_cable(d, "ttyCRC", "auto:detect_timeout=1s") as (cable, p):
        p.wait_log(r"home: reading .*ttyCRC")
        time.sleep(0.2)
        for i in range(5):
            cable.send(telegram(30 + i, crc=False))
            time.sleep(0.1)
        m = p.wait_meter("home", lambda m: m.get("crc_errors", 0) >= 5, 3)
        T.check("CRC errors only: counted", m is not None, str(p.meter("home")))
        time.sleep(1.3)  # longer than detect_timeout
        m = p.meter("home")
        T.check("CRC errors only: the speed is kept, detected",
                "trying" not in p.text() and m.get("detected") == "115200 8N1", p.text())
        m = decodes(cable, p, 40, 1)
        T.check("CRC errors, then a good telegram: decoded", m is not None, str(p.meter("home")))


def auto_kept_on_replug(d):
    """baud=auto: the speed found is kept when the cable is unplugged and plugged back; bytes that
    do not decode after the reopen do not start detection again (one window, then the warning)."""
    with on_cable(d, "ttyKEEP", "auto:detect_timeout=1s") as (cable, p):
        p.wait_log(r"home: reading .*ttyKEEP")
        p.http_port()
        time.sleep(0.2)
        T.check("replug auto: decodes at 115200 8N1", decodes(cable, p, 50, 1) is not None and
                p.meter("home").get("detected") == "115200 8N1", str(p.meter("home")))
        cable.unplug()
        T.check("replug auto: lost", p.wait_log(r"warn: home: lost .*ttyKEEP", 3), p.text())
        cable.plug()
        T.check("replug auto: reopened at the speed found, not detecting",
                p.wait_log(r"info: home: reading .*ttyKEEP at 115200 8N1\n", 3),
                p.text())
        time.sleep(0.2)
        send_for(cable, b"\xff\x00\xfe\x80" * 40, 1.6)
        T.check("replug auto: no speed switch after the reopen", "trying" not in p.text(), p.text())
        T.check("replug auto: bytes without a telegram are reported after one window",
                p.wait_log(r"warn: home: bytes arrive on .*ttyKEEP but no telegram decodes", 2),
                p.text())
        m = decodes(cable, p, 51, 2)
        T.check("replug auto: decodes again, still 115200 8N1",
                m is not None and m.get("detected") == "115200 8N1", str(p.meter("home")))


def stall(d):
    """A serial port that stalls mid-telegram (a Bluetooth rfcomm tty, a socat pty from a WiFi
    dongle): once telegrams end in "!CRC" the rest is waited for, not cut after one quiet second;
    a telegram really cut off is rejected at the next header, or at idle_timeout."""
    with on_cable(d, "ttySTALL", "115200:idle_timeout=3s:idle_reopen=false") as (cable, p):
        p.wait_log(r"home: reading .*ttySTALL")
        p.http_port()
        time.sleep(0.2)
        T.check("stall: telegrams decode", decodes(cable, p, 60, 1) is not None, p.text())
        t = telegram(61)
        cable.send(t[:150])
        time.sleep(1.6)
        cable.send(t[150:])
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 2, 2)
        T.check("stall: a 1.6 s pause mid-telegram, the telegram is taken",
                m is not None and m.get("rejected") == 0, str(p.meter("home")))
        cable.send(telegram(62)[:150])
        time.sleep(1.6)
        m = decodes(cable, p, 63, 3)
        T.check("stall: cut off, then the next telegram: that one rejected (truncated), the "
                "next taken", m is not None and m.get("rejected") == 1 and
                p.wait_log(r"home: rejected telegram at offset \d+: truncated", 1), str(p.meter("home")))
        cable.send(telegram(64)[:150])
        m = p.wait_meter("home", lambda m: m.get("rejected", 0) >= 2, 5)
        T.check("stall: cut off, then silence: rejected at idle_timeout", m is not None and
                m.get("telegrams") == 3, str(p.meter("home")))


def swapped_on_reload(d):
    """Two cables named the other way round by a reload: each source lets go of its tty before
    either opens the other's, so neither finds its new device locked by p1d itself and waits
    reconnect_min (here 5 s) for it."""
    one, two = Cable(os.path.join(d, "ttySWAP1")), Cable(os.path.join(d, "ttySWAP2"))
    conf = os.path.join(d, "swap.conf")
    text = ("[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = serial:%s:115200\n"
            "reconnect_min = 5s\n[source b]\nspec = serial:%s:115200\nreconnect_min = 5s\n")
    write_conf(conf, text % (one.link, two.link))
    p = Daemon(["--config", conf], d)
    try:
        T.check("swap: both read", p.wait_log(r"b: reading .*ttySWAP2", 5) and p.http_port(),
                p.text())
        time.sleep(0.2)
        write_conf(conf, text % (two.link, one.link))
        p.signal(signal.SIGHUP)
        T.check("swap: reloaded, both changed",
                p.wait_log(r"reloaded .*: 0 sources added, 2 changed", 5), p.text())
        T.check("swap: no source found its new tty locked by p1d", "locked by" not in p.text(),
                p.text())
        time.sleep(0.2)
        one.send(telegram(70))
        two.send(telegram(71))
        ok = p.wait_meter("a", lambda m: m.get("telegrams") == 1, 2)
        ok = ok and p.wait_meter("b", lambda m: m.get("telegrams") == 1, 1)
        T.check("swap: each reads its new cable at once", ok, p.text())
        T.check("swap: a reads the second cable, b the first",
                p.wait_log(r"a: reading .*ttySWAP2", 1) and p.wait_log(r"b: reading .*ttySWAP1", 1),
                p.text())
    finally:
        p.stop()
        one.close()
        two.close()


def slave_open(cable):
    """Whether p1d has the tty open: the master reads a hang-up (POLLHUP, EIO) while no one does."""
    p = select.poll()
    p.register(cable.master, select.POLLIN)
    return not any(ev & select.POLLHUP for _, ev in p.poll(0))


def wait_slave(cable, is_open, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if slave_open(cable) == is_open:
            return True
        time.sleep(0.01)
    return False


def silent(d):
    """idle_reopen=false, the meter stops sending: one idle warning, the port stays open, no
    spinning while silent, data again clears it."""
    with on_cable(d, "ttyQUIET", "115200:idle_timeout=500ms:idle_reopen=false") as (cable, p):
        p.wait_log(r"home: reading .*ttyQUIET")
        time.sleep(0.2)
        cable.send(telegram(5))
        T.check("silent: idle warning", p.wait_log(r"warn: home: no data on .*ttyQUIET for \d+ ms "
                                                   r"\(is the request line powered\?\)", 3), p.text())
        c0 = cpu_s(p)
        stays_open = not wait_slave(cable, False, 2.5)
        T.check("silent, idle_reopen=false: the port stays open", stays_open, p.text())
        T.check("silent: no CPU spin", cpu_s(p) - c0 < 0.2, "%.2f" % (cpu_s(p) - c0))
        T.check("silent: warned once", p.text().count("no data on") == 1, p.text())
        m = p.meter("home")
        T.check("silent: still open, last_error says so", m.get("state") == "connected" and
                "request line" in (m.get("last_error") or ""), str(m))
        m = decodes(cable, p, 6, 2)
        T.check("silent then a telegram: decoded, warning cleared", m is not None and
                not m.get("last_error"), str(p.meter("home")))


def resume(cable, p, i, n):
    """Sends telegrams i, i+1, ... while p1d has the tty open until the meter has n telegrams (p1d
    flushes the input when it opens, and the master may read EIO while no one has the tty open).
    Returns (the meter or None, the next i)."""
    end, m = time.time() + 5, None
    while m is None and time.time() < end:
        if wait_slave(cable, True, 1):
            try:
                cable.send(telegram(i))
                i += 1
            except OSError:
                pass
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= n, 0.2)
    return m, i


def wedged(d):
    """A cable that wedges (a USB glitch, a meter reboot) and delivers again only once its tty is
    closed and reopened: after idle_timeout p1d closes and reopens it, again with a growing pause
    while it stays silent; one warning, not one per reopen; counted in /api/meters and /metrics;
    readings resume once the cable works again. Run as nobody: the pty keeps TIOCEXCL after p1d's
    close, and only CAP_SYS_ADMIN could open it again past that."""
    prefix = NOBODY if os.geteuid() == 0 else ()
    with on_cable(d, "ttyWEDGE", "115200:idle_timeout=500ms", prefix,
                  lambda c: os.chmod(c.path, 0o666)) as (cable, p):
        p.wait_log(r"home: reading .*ttyWEDGE")
        time.sleep(0.2)
        T.check("wedged: decodes before", decodes(cable, p, 10, 1) is not None,
                str(p.meter("home")))
        # Wedged: nothing more until p1d lets go of the tty and opens it again.
        closed = wait_slave(cable, False, 3)
        T.check("wedged: the silent port is closed", closed, p.text())
        T.check("wedged: and opened again", closed and wait_slave(cable, True, 3), p.text())
        T.check("wedged: one warning names the device and the reason",
                p.wait_log(r"warn: home: no data on .*ttyWEDGE for 500 ms \(is the request line "
                           r"powered\?\); reopening it", 2), p.text())
        # Backoff 100, 200, 400 ms (FAST) after each idle_timeout: 3 reopens in about 2.2 s.
        m = p.wait_meter("home", lambda m: m.get("idle_reopens", 0) >= 3, 5)
        T.check("wedged: reopened again while silent, counted in /api/meters", m is not None,
                str(p.meter("home")))
        text = p.text()
        T.check("wedged: warned once, not once per reopen", text.count("no data on") == 1, text)
        T.check("wedged: 'reading' logged once, not once per reopen",
                text.count("home: reading") == 1, text)
        m = p.meter("home")
        T.check("wedged: last_error says it is reopening (connected, or waiting in the pause)",
                m.get("state") in ("connected", "waiting") and
                "reopening" in (m.get("last_error") or ""), str(m))
        _, _, met = http(p.http_port(), "/metrics")
        n = [ln for ln in met.decode().splitlines() if ln.startswith('p1_idle_reopens_total{meter="home"}')]
        T.check("wedged: p1_idle_reopens_total in /metrics",
                n and int(n[0].split()[-1]) >= 3, str(n))
        # The cable delivers again only once it was reopened.
        m, i = resume(cable, p, 11, 2) if closed else (None, 11)
        T.check("wedged: readings resume after the reopen", m is not None, str(p.meter("home")))
        T.check("wedged: data again is logged, last_error cleared",
                p.wait_log(r"info: home: data on .*ttyWEDGE again", 2) is not None and m and
                not m.get("last_error"), p.text())
        c0 = p.meter("home").get("idle_reopens")
        send_for(cable, telegram(i), 1.2, 0.1)  # longer than idle_timeout
        T.check("wedged: no reopen while data flows",
                slave_open(cable) and p.meter("home").get("idle_reopens") == c0, str(p.meter("home")))


def wedged_pause(d):
    """While the silent port is closed for the reopen pause the meter is waiting, as any source
    between reconnects (connected_since null, ?state=waiting lists it); connected again once the
    port is open, the warning kept until bytes arrive. A long pause shows both phases clearly."""
    prefix = NOBODY if os.geteuid() == 0 else ()
    with on_cable(d, "ttyPAUSE", "115200:idle_timeout=500ms", prefix,
                  lambda c: os.chmod(c.path, 0o666),
                  "reconnect_min=1500ms:reconnect_max=1500ms") as (cable, p):
        p.wait_log(r"home: reading .*ttyPAUSE")
        m = p.meter("home")
        T.check("pause: connected while the port is open", m.get("state") == "connected" and
                m.get("connected_since"), str(m))
        closed = wait_slave(cable, False, 3)
        m = p.meter("home")
        T.check("pause: the silent port is closed", closed, p.text())
        T.check("pause: waiting while closed, connected_since null, last_error says why",
                m.get("state") == "waiting" and m.get("connected_since") is None and
                "reopening" in (m.get("last_error") or ""), str(m))
        _, _, body = http(p.http_port(), "/api/meters?state=waiting")
        T.check("pause: ?state=waiting lists it", b'"home"' in body, body)
        opened = closed and wait_slave(cable, True, 3)
        m = p.meter("home")
        T.check("pause: connected again once reopened, the warning kept", opened and
                m.get("state") == "connected" and m.get("connected_since") and
                "reopening" in (m.get("last_error") or ""), str(m))


def wedged_auto(d):
    """baud=auto and a silent spell: the reopen keeps the speed found, and finding it again is
    not logged again at info (one "telegrams decode at" line, not one per recovery)."""
    prefix = NOBODY if os.geteuid() == 0 else ()
    with on_cable(d, "ttyWAUTO", "auto:idle_timeout=500ms", prefix,
                  lambda c: os.chmod(c.path, 0o666)) as (cable, p):
        p.wait_log(r"home: reading .*ttyWAUTO")
        m, i = resume(cable, p, 20, 1)
        T.check("wedged auto: decodes", m is not None and
                p.wait_log(r"info: home: telegrams decode at 115200 8N1", 2), p.text())
        m = p.wait_meter("home", lambda m: m.get("idle_reopens", 0) >= 1, 3)
        T.check("wedged auto: reopened while silent", m is not None, str(p.meter("home")))
        m, i = resume(cable, p, i, 2)
        T.check("wedged auto: readings resume at the same speed",
                m is not None and m.get("detected") == "115200 8N1", str(p.meter("home")))
        T.check("wedged auto: the speed is logged once, not once per recovery",
                p.text().count("telegrams decode at") == 1, p.text())


def permission_denied(d):
    """Not in dialout: EACCES names the group; fixing the mode lets it read without a restart."""
    def root_only(cable):
        os.chown(cable.path, 0, 0)
        os.chmod(cable.path, 0o600)

    with on_cable(d, "ttyPERM", "auto", NOBODY, root_only) as (cable, p):
        w = p.wait_log(r"warn: home: waiting for .*ttyPERM \(permission denied: add the user p1d "
                       r"runs as to the dialout group\)", 5)
        T.check("EACCES: the log names the dialout group", w is not None, p.text())
        m = p.meter("home")
        T.check("EACCES: state waiting, last_error names dialout",
                m.get("state") == "waiting" and "dialout" in (m.get("last_error") or ""), str(m))
        c0, t0 = cpu_s(p), time.time()
        time.sleep(2)
        T.check("EACCES: retries without spinning", cpu_s(p) - c0 < 0.2, "%.2f" % (cpu_s(p) - c0))
        T.check("EACCES: one line, not one per retry", p.text().count("permission denied") == 1,
                p.text())
        os.chmod(cable.path, 0o666)
        T.check("EACCES fixed: opened", p.wait_log(r"home: reading .*ttyPERM", 3), p.text())
        time.sleep(0.2)
        m = decodes(cable, p, 7, 1)
        T.check("EACCES fixed: first telegram decoded", m is not None and not m.get("last_error"),
                str(p.meter("home")))


def exclusive(d):
    """ModemManager/brltty holding the port with TIOCEXCL: EBUSY names them; released, p1d reads."""
    holder = []

    def take(cable):
        os.chmod(cable.path, 0o666)
        holder.append(os.open(cable.path, os.O_RDWR | os.O_NOCTTY))
        fcntl.ioctl(holder[0], termios.TIOCEXCL)

    try:
        with on_cable(d, "ttyEXCL", "auto", NOBODY, take) as (cable, p):
            w = p.wait_log(r"warn: home: waiting for .*ttyEXCL \(in exclusive use by another "
                           r"program: ModemManager or brltty\?\)", 5)
            T.check("EBUSY: the log names ModemManager and brltty", w is not None, p.text())
            m = p.meter("home")
            T.check("EBUSY: last_error names them", "ModemManager" in (m.get("last_error") or ""),
                    str(m))
            fcntl.ioctl(holder[0], termios.TIOCNXCL)
            os.close(holder.pop())
            T.check("EBUSY released: opened", p.wait_log(r"home: reading .*ttyEXCL", 3), p.text())
            time.sleep(0.2)
            T.check("EBUSY released: first telegram decoded", decodes(cable, p, 8, 1) is not None,
                    str(p.meter("home")))
    finally:
        for fd in holder:
            os.close(fd)


def directory(d):
    path = os.path.join(d, "serial")
    os.mkdir(path)
    p = Daemon(["--source", "home=serial:%s:%s" % (path, FAST), "--listen", "127.0.0.1:0"], d)
    try:
        T.check("directory: said in words",
                p.wait_log(r"warn: home: waiting for .*serial \(a directory, not a serial device\)", 5),
                p.text())
        time.sleep(1)
        T.check("directory: still running, one line", p.proc.poll() is None and
                p.text().count("a directory") == 1, p.text())
    finally:
        p.stop()


def replug_new_tty(d):
    """Unplugged: the by-id link dangles; plugged back as another tty behind the same link."""
    with on_cable(d, "by-id-usb-FTDI", "115200") as (cable, p):
        p.wait_log(r"home: reading .*by-id-usb-FTDI")
        p.http_port()
        time.sleep(0.2)
        decodes(cable, p, 1, 1)
        old = cable.path
        os.close(cable.master)  # the adapter vanishes; udev has not removed the link yet
        cable.master = None
        T.check("unplug: lost, 'unplugged?'",
                p.wait_log(r"warn: home: lost .*by-id-usb-FTDI \(.*: unplugged\?\); reopening", 3),
                p.text())
        T.check("unplugged: waiting asks whether the cable is plugged in",
                p.wait_log(r"warn: home: waiting for .*by-id-usb-FTDI \(No such file or directory\): "
                           r"is the cable plugged in\?", 3), p.text())
        c0 = cpu_s(p)
        time.sleep(2.5)
        T.check("unplugged: no CPU spin (backoff)", cpu_s(p) - c0 < 0.2, "%.2f" % (cpu_s(p) - c0))
        m = p.meter("home")
        T.check("unplugged: API says waiting with a reason", m.get("state") == "waiting" and
                m.get("last_error"), str(m))
        keep = []  # hold the old number (other tests open ptys too) so the adapter gets another
        while len(keep) < 20:
            keep.append(os.openpty())
            if os.ttyname(keep[-1][1]) == old:
                break
        cable.plug()
        T.check("replugged under another tty", cable.path != old, cable.path)
        T.check("replugged: reopened", p.wait_log(r"home: reading .*by-id-usb-FTDI", 3, count=2),
                p.text())
        time.sleep(0.2)
        m = decodes(cable, p, 2, 2)
        T.check("replugged: the first telegram is decoded", m is not None and
                m.get("telegrams") == 2 and not m.get("last_error"), str(p.meter("home")))
        for fds in keep:
            os.close(fds[0])
            os.close(fds[1])


with tmpdir() as d:
    os.chmod(d, 0o755)  # setpriv'd p1d (nobody) must reach the links
    tests = [not_inverted, not_inverted_auto, auto_found_at_9600, auto_back_to_115200,
             auto_crc_errors,
             auto_kept_on_replug, directory, replug_new_tty, silent, stall, swapped_on_reload,
             wedged, wedged_pause, wedged_auto]
    if os.geteuid() == 0:
        tests += [permission_denied, exclusive]
    else:
        print("SKIP: permission and TIOCEXCL cases need root (to run p1d as another user)")
    threads = [threading.Thread(target=T.run, args=([t], d)) for t in tests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
T.done()
