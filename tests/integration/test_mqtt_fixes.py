#!/usr/bin/env python3
"""test_mqtt_fixes.py: MQTT publisher regressions found by QA, against a real mosquitto on
127.0.0.1: TLS reconnects without a busy loop (broker down at start, broker restart), clear TLS
and CONNACK errors, a broker that never acknowledges a PUBLISH, retries counted while the broker
is down from the start, a restart with a backlog that keeps the device info of the discovery
configs stable, and a database that cannot record deliveries (a full disk) said once."""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import P1D, Checks, Daemon, fake_dongle, free_port, need_p1d, telegram, tmpdir  # noqa: E402
from mqtt_helpers import (MOSQUITTO, Broker, Mqtt, metric, metrics_text, pub_entry,  # noqa: E402
                          read_packet, wait_pub)

C = Checks("test_mqtt_fixes")
need_p1d(C)
OPENSSL = shutil.which("openssl")
if not os.access(MOSQUITTO, os.X_OK) or not OPENSSL:
    print("SKIP: mosquitto or openssl not installed (tools/setup.sh test)")
    C.done()
TICKS = os.sysconf("SC_CLK_TCK")


def make_certs(tmp, name):
    """A CA and a server certificate for DNS name `name` (and 127.0.0.1 when name is localhost)."""
    d = os.path.join(tmp, "certs-" + name)
    os.mkdir(d)
    p = {k: os.path.join(d, k + ".pem") for k in ("ca", "cakey", "crt", "key", "csr")}
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s%s\n" % (name, ",IP:127.0.0.1" if name == "localhost" else ""))

    def ossl(*args):
        subprocess.run([OPENSSL] + list(args), check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["cakey"], "-out", p["ca"],
         "-days", "2", "-subj", "/CN=p1d test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p["key"], "-out", p["csr"], "-subj",
         "/CN=" + name)
    ossl("x509", "-req", "-in", p["csr"], "-CA", p["ca"], "-CAkey", p["cakey"], "-CAcreateserial",
         "-out", p["crt"], "-days", "2", "-extfile", ext)
    return p


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def logged_line(d, pattern, timeout):
    """The first log line of d matching pattern (waited for), printed; "" when none came."""
    m = d.wait_log(pattern, timeout)
    line = m.group(0) if m else ""
    print("   " + line)
    return line


def tls_reconnects(tmp):
    """Bug: with TLS and no broker, p1d spun at 100% CPU and never connected."""
    certs = make_certs(tmp, "localhost")
    port, tls_port = free_port(), free_port()
    broker = Broker(tmp, port, tls_port, certs, name="tls")
    args = ["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
            "--mqtt-port", str(tls_port), "--mqtt-tls", "true", "--mqtt-ca-file", certs["ca"],
            "--mqtt-reconnect-max", "1s", "--mqtt-rate-power", "0", "--mqtt-state-interval", "0"]
    d = Daemon(args, tmp)
    sub = None
    try:
        d.http_port()
        time.sleep(0.5)
        c0 = cpu_seconds(d.proc.pid)
        time.sleep(3)
        used = cpu_seconds(d.proc.pid) - c0
        C.check("TLS, broker down at start: p1d stays idle (CPU %.2f s in 3 s)" % used, used < 0.5,
                d.text()[-1000:])
        C.check("TLS, broker down at start: one warning, naming the refused connection",
                d.text().count("cannot connect") == 1 and "refused" in d.text(),
                d.text()[-1000:])
        broker.start()
        sub = Mqtt(port)
        C.check("TLS: p1d connects once the broker starts",
                d.wait_log(r"mqtt: connected to 127\.0\.0\.1:\d+ \(TLS\)", 10) is not None,
                d.text()[-1500:])
        C.check("TLS: values arrive", sub.wait(lambda m: m[1] == "p1d/home/power_w", 10) is not None)
        sub.close()
        broker.stop()
        C.check("TLS: broker gone is noticed", d.wait_log(r"mqtt: connection to .* lost", 15)
                is not None, d.text()[-1500:])
        time.sleep(0.5)
        c0 = cpu_seconds(d.proc.pid)
        time.sleep(3)
        used = cpu_seconds(d.proc.pid) - c0
        C.check("TLS, broker restarting: p1d stays idle (CPU %.2f s in 3 s)" % used, used < 0.5,
                d.text()[-1000:])
        broker.start()
        t_back = time.time()
        sub = Mqtt(port)
        C.check("TLS: p1d reconnects after the broker restart",
                d.wait_log(r"mqtt: connected to 127\.0\.0\.1:\d+ \(TLS\)", 10, count=2) is not None,
                d.text()[-1500:])
        C.check("TLS: values flow again after the restart",
                sub.wait(lambda m: m[1] == "p1d/home/power_w" and m[0] >= t_back, 10) is not None)
    finally:
        d.stop()
        if sub:
            sub.close()
        broker.stop()


def tls_and_connack_errors(tmp):
    """Bug: a wrong certificate name said only 'A TLS error occurred.', a garbage ca_file was
    found only when connecting, and a broker without CONNACK gave 'Unknown error.'."""
    certs = make_certs(tmp, "otherhost")
    port, tls_port = free_port(), free_port()
    broker = Broker(tmp, port, tls_port, certs, name="tls-name").start()
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
                "--mqtt-port", str(tls_port), "--mqtt-tls", "true", "--mqtt-ca-file", certs["ca"],
                "--mqtt-reconnect-max", "1s"], tmp)
    try:
        line = logged_line(d, r"mqtt: cannot connect to [^\n]*", 10)
        C.check("TLS, wrong certificate name: the warning names the verify failure and ca_file",
                "TLS handshake failed" in line and "verif" in line and "ca_file" in line and
                "A TLS error occurred" not in line, d.text()[-1000:])
    finally:
        d.stop()
        broker.stop()

    bad = os.path.join(tmp, "garbage.pem")
    with open(bad, "w") as f:
        f.write("this is not a certificate\n")
    p = subprocess.run([P1D, "--check-config", "--source", "home=sim", "--mqtt-host", "127.0.0.1",
                        "--mqtt-tls", "true", "--mqtt-ca-file", bad], capture_output=True,
                       timeout=10)
    err = p.stderr.decode("utf-8", "replace")
    C.check("garbage ca_file: --check-config refuses it (exit 2) and says why",
            p.returncode == 2 and "ca_file" in err and bad in err and "PEM" in err,
            "%d %s" % (p.returncode, err))

    # A broker that accepts TCP and never answers.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    silent_port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
                "--mqtt-port", str(silent_port), "--mqtt-keepalive", "5s",
                "--mqtt-reconnect-max", "1s"], tmp)
    try:
        line = logged_line(d, r"mqtt: cannot connect to [^\n]*", 12)
        C.check("no CONNACK: the warning says so and names the time",
                "no CONNACK within 5 s" in line and "Unknown error" not in line, d.text()[-1000:])
    finally:
        d.stop()
        stop.set()
        for c in held:
            c.close()
        srv.close()


class NoAckBroker:
    """An MQTT broker on 127.0.0.1 that accepts the connection (CONNACK, SUBACK, PINGRESP) and
    takes every PUBLISH without ever acknowledging it; counts connections and publishes."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.connects = []  # [publishes received] per connection
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c = self.srv.accept()[0]
            except OSError:
                continue
            self.conns.append(c)
            self.connects.append(0)
            threading.Thread(target=self._serve, args=(c, len(self.connects) - 1),
                             daemon=True).start()

    def _serve(self, c, k):
        f = c.makefile("rb")

        def readn(n):
            b = f.read(n)
            if len(b) < n:
                raise OSError("closed")
            return b
        try:
            while True:
                head, body = read_packet(readn)
                kind = head & 0xF0
                if kind == 0x10:
                    c.sendall(b"\x20\x02\x00\x00")
                elif kind == 0x80:
                    c.sendall(b"\x90\x03" + body[:2] + b"\x01")
                elif kind == 0xC0:
                    c.sendall(b"\xd0\x00")
                elif kind == 0x30:
                    self.connects[k] += 1
        except OSError:
            return

    def close(self):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.srv.close()


def broker_without_puback(tmp):
    """Bug: a broker that answered PINGREQ but acknowledged no PUBLISH (QoS 1) left p1d
    'sending' for good: no error, no reconnect, the outbox lag growing without end."""
    broker = NoAckBroker()
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
                "--mqtt-port", str(broker.port), "--mqtt-qos", "1", "--mqtt-keepalive", "5s",
                "--mqtt-reconnect-max", "1s", "--mqtt-rate-power", "0",
                "--mqtt-state-interval", "0"], tmp)
    try:
        line = logged_line(d, r"mqtt: connection to [^\n]*lost \([^\n]*", 25)
        C.check("no PUBACK: after 2 x keepalive (10 s) the connection counts as lost, saying why",
                "acknowledged no message (PUBACK) for 1" in line, d.text()[-1500:])
        end = time.time() + 5
        while time.time() < end and not (len(broker.connects) >= 2 and broker.connects[1] > 0):
            time.sleep(0.1)
        C.check("no PUBACK: p1d reconnects and sends again (%s publishes per connection)" %
                broker.connects, len(broker.connects) >= 2 and broker.connects[1] > 0)
        C.check("no PUBACK: the meter is read all along",
                d.proc.poll() is None and d.meter("home").get("telegrams", 0) >= 10)
    finally:
        d.stop()
        broker.close()


def retries_from_start(tmp):
    """Bug: retries stayed 0 while the broker was down from the start."""
    db = os.path.join(tmp, "retries.db")
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db", db, "--mqtt-host",
                "127.0.0.1", "--mqtt-port", str(free_port()), "--mqtt-reconnect-max", "1s"], tmp)
    try:
        d.http_port()
        end = time.time() + 10
        pe = {}
        while time.time() < end:
            pe = pub_entry(d) or {}
            if (pe.get("retries") or 0) >= 2:
                break
            time.sleep(0.2)
        C.check("broker down from the start: /api/meters counts the retries of home",
                (pe.get("retries") or 0) >= 2 and pe.get("state") == "retrying", str(pe))
        mt = metrics_text(d)
        C.check("broker down from the start: p1_publisher_retries_total counts them",
                (metric(mt, "p1_publisher_retries_total", 'meter="home",publisher="mqtt"') or 0) >= 2,
                "\n".join(ln for ln in mt.splitlines() if "retries" in ln))
    finally:
        d.stop()


def backlog_restart(tmp):
    """Bug: a restart that drained a backlog before the meter's first telegram replaced every
    retained discovery config with a placeholder device, then the real one again, and sent a
    reduced state object."""
    db = os.path.join(tmp, "backlog.db")
    port = free_port()
    common = ["--listen", "127.0.0.1:0", "--db", db, "--mqtt-host", "127.0.0.1", "--mqtt-port",
              str(port), "--mqtt-reconnect-max", "1s", "--mqtt-rate-power", "0",
              "--mqtt-state-interval", "0"]
    # 1: p1d delivers, then the broker goes away while p1d reads the meter: a backlog builds up.
    broker = Broker(tmp, port, name="backlog").start()
    d = Daemon(["--source", "home=sim"] + common, tmp)
    try:
        C.check("backlog: p1d delivers before the outage",
                (wait_pub(d, lambda p: (p.get("delivered") or 0) > 0, 15) or {}) != {},
                d.text()[-1000:])
        broker.stop()
        C.check("backlog: readings wait in the outbox",
                (wait_pub(d, lambda p: (p.get("lag_readings") or 0) >= 3, 15) or {}) != {},
                str(pub_entry(d)))
    finally:
        d.stop()
    # 2: the broker is back (without the retained messages: no persistence); p1d restarts before
    # the meter sends anything.
    broker.start()
    sub = Mqtt(port)
    meter_port = free_port()
    d = Daemon(["--source", "home=tcp:127.0.0.1:%d:reconnect_min=100ms:reconnect_max=300ms" %
                meter_port] + common, tmp)
    meter = None
    try:
        C.check("backlog restart: p1d connects", d.wait_log(r"mqtt: connected to", 10) is not None,
                d.text()[-1000:])
        C.check("backlog restart: the backlog's newest values go out on the field topics",
                sub.wait(lambda m: m[1] == "p1d/home/energy_import_kwh", 10) is not None,
                "%s\n%s" % ([m[1] for m in sub.snapshot()][:20], d.text()[-1500:]))
        time.sleep(1.5)
        before = sub.snapshot()
        configs = [m for m in before if m[1].endswith("/config")]
        states = [m for m in before if m[1] == "p1d/home/state"]
        C.check("backlog restart, no telegram yet: no discovery config with a placeholder device",
                not configs, "%d configs, first %s" % (len(configs), configs[:1]))
        C.check("backlog restart, no telegram yet: no reduced state object",
                not states, str(states[:1]))
        # 3: the meter sends telegrams.
        meter = fake_dongle(meter_port)
        conn = meter.accept()[0]
        for i in range(3):
            conn.sendall(telegram(i + 1))
            time.sleep(0.3)
        st = sub.wait(lambda m: m[1] == "p1d/home/state", 10)
        C.check("after the first telegram: the state is the full reading (header, time)",
                st is not None and "header" in json.loads(st[2]) and "time" in json.loads(st[2]),
                str(st and st[2][:200]))
        sub.wait(lambda m: False, 1)
        devices = {}
        for m in sub.snapshot():
            if m[1].endswith("/config"):
                devices[json.dumps(json.loads(m[2]).get("device"), sort_keys=True)] = m[1]
        C.check("after the first telegram: every config carries one device, the meter's own",
                len(devices) == 1 and '"unknown"' not in next(iter(devices)),
                str(list(devices)[:3]))
        conn.close()
    finally:
        d.stop()
        sub.close()
        broker.stop()
        if meter:
            meter.close()


def backlog_first_run(tmp):
    """Bug: a first run that never reached the broker kept its start only in memory, so a restart
    began again at the new "now" and skipped everything that run had stored."""
    db = os.path.join(tmp, "first.db")
    port = free_port()
    common = ["--listen", "127.0.0.1:0", "--db", db, "--mqtt-host", "127.0.0.1", "--mqtt-port",
              str(port), "--mqtt-reconnect-max", "1s", "--mqtt-rate-power", "0",
              "--mqtt-state-interval", "0"]
    d = Daemon(["--source", "home=sim"] + common, tmp)
    try:
        C.check("first run, broker down all along: readings wait in the outbox",
                (wait_pub(d, lambda p: (p.get("lag_readings") or 0) >= 3, 15) or {}) != {},
                str(pub_entry(d)))
    finally:
        d.stop()
    broker = Broker(tmp, port, name="first").start()
    sub = Mqtt(port)
    # the meter sends nothing in the second run: whatever goes out was stored by the first
    d = Daemon(["--source", "home=tcp:127.0.0.1:%d" % free_port()] + common, tmp)
    try:
        C.check("restart: the first run's readings go out",
                sub.wait(lambda m: m[1] == "p1d/home/energy_import_kwh", 10) is not None,
                "%s\n%s" % ([m[1] for m in sub.snapshot()][:20], d.text()[-1500:]))
    finally:
        d.stop()
        sub.close()
        broker.stop()


def block_cursor(db, on):
    """Makes the database refuse to move a delivery cursor, as a full disk does (a trigger)."""
    con = sqlite3.connect(db, timeout=10)
    if on:
        con.execute("CREATE TRIGGER block_upd BEFORE UPDATE ON outbox_cursor BEGIN "
                    "SELECT RAISE(FAIL, 'database or disk is full'); END")
    else:
        con.execute("DROP TRIGGER block_upd")
    con.commit()
    con.close()


def not_recorded(tmp):
    """Bug: while the database refused to record a delivery (a full disk) the log said so every
    second, once per meter (an hour of full disk: 3,600 warnings), and /api/meters kept that
    error after the database took writes again."""
    db = os.path.join(tmp, "norecord.db")
    port = free_port()
    broker = Broker(tmp, port, name="norecord").start()
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db", db, "--mqtt-host",
                "127.0.0.1", "--mqtt-port", str(port), "--mqtt-rate-power", "0"], tmp)
    try:
        C.check("not recorded: p1d delivers",
                wait_pub(d, lambda p: (p.get("delivered") or 0) > 0, 15) is not None,
                d.text()[-1000:])
        block_cursor(db, True)
        C.check("not recorded: /api/meters says why",
                wait_pub(d, lambda p: "outbox" in (p.get("last_error") or ""), 10) is not None,
                str(pub_entry(d)))
        time.sleep(4)
        lines = [ln for ln in d.text().splitlines() if "cannot record" in ln]
        C.check("not recorded: said once, not every second", len(lines) == 1,
                "\n".join(lines[:10]))
        block_cursor(db, False)
        C.check("not recorded: the log says when deliveries are recorded again",
                d.wait_log(r"mqtt: home: deliveries are recorded again", 10) is not None,
                d.text()[-1000:])
        C.check("not recorded: /api/meters clears the error",
                wait_pub(d, lambda p: p.get("last_error") is None, 10) is not None,
                str(pub_entry(d)))
    finally:
        d.stop()
        broker.stop()


def help_texts():
    """Bug: the help said 'online' on PREFIX/status, but PREFIX is topic_prefix elsewhere."""
    p = subprocess.run([P1D, "--print-config-doc"], capture_output=True, timeout=10)
    line = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("| `discovery_prefix`")]
    C.check("discovery_prefix help names DISCOVERY_PREFIX/status (homeassistant/status)",
            line and "DISCOVERY_PREFIX/status" in line[0] and "homeassistant/status" in line[0] and
            " PREFIX/status" not in line[0], str(line))


def main():
    help_texts()
    with tmpdir() as tmp:
        tls_reconnects(tmp)
        tls_and_connack_errors(tmp)
        broker_without_puback(tmp)
        retries_from_start(tmp)
        backlog_restart(tmp)
        backlog_first_run(tmp)
        not_recorded(tmp)
    C.done()


main()
