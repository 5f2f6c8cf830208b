"""mqtt_helpers.py: shared pieces of the MQTT suites (test_pub_mqtt.py, test_mqtt_fixes.py): a
tiny MQTT 3.1.1 subscriber, a mosquitto broker on 127.0.0.1, p1d's publisher status, and a p1d
reading a fake dongle while it publishes to a broker (tcp_meter)."""
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request

from daemon_helpers import Daemon, fake_dongle, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def read_packet(readn):
    """One MQTT control packet as (first byte, body); readn(n) returns n bytes or raises
    OSError."""
    head = readn(1)[0]
    mult, n = 1, 0
    while True:
        d = readn(1)[0]
        n += (d & 0x7F) * mult
        mult *= 128
        if not d & 0x80:
            break
    return head, readn(n)


class Mqtt:
    """A tiny MQTT 3.1.1 client (stdlib only): subscribes and records every message."""

    def __init__(self, port, topics=("#",), user=None, password=None):
        self.msgs = []  # (time, topic, payload bytes, retain)
        self.lock = threading.Lock()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        flags, payload = 0x02, self._str("pytest-%d-%d" % (os.getpid(), time.time_ns() % 10**9))
        if user:
            flags |= 0x80
            payload += self._str(user)
        if password:
            flags |= 0x40
            payload += self._str(password)
        var = self._str("MQTT") + bytes([4, flags]) + struct.pack(">H", 0)
        self._send(0x10, var + payload)
        head, body = self._read()
        if head & 0xF0 != 0x20 or body[1] != 0:
            raise OSError("CONNACK refused")
        sub = struct.pack(">H", 1) + b"".join(self._str(t) + b"\x00" for t in topics)
        self._send(0x82, sub)
        self.alive = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _str(s):
        b = s.encode() if isinstance(s, str) else s
        return struct.pack(">H", len(b)) + b

    def _send(self, head, body):
        n, rl = len(body), b""
        while True:
            d = n % 128
            n //= 128
            rl += bytes([d | (0x80 if n else 0)])
            if not n:
                break
        self.sock.sendall(bytes([head]) + rl + body)

    def _readn(self, n):
        buf = b""
        while len(buf) < n:
            c = self.sock.recv(n - len(buf))
            if not c:
                raise OSError("closed")
            buf += c
        return buf

    def _read(self):
        return read_packet(self._readn)

    def _run(self):
        self.sock.settimeout(None)
        try:
            while True:
                head, data = self._read()
                if head & 0xF0 != 0x30:
                    continue
                qos = (head >> 1) & 3
                tl = struct.unpack(">H", data[:2])[0]
                topic = data[2:2 + tl].decode("utf-8", "replace")
                rest = data[2 + tl:]
                if qos:
                    mid = rest[:2]
                    rest = rest[2:]
                    self._send(0x40, mid)
                with self.lock:
                    self.msgs.append((time.time(), topic, rest, bool(head & 1)))
        except OSError:
            self.alive = False

    def publish(self, topic, payload, retain=False):
        self._send(0x30 | (1 if retain else 0), self._str(topic) + payload.encode())

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def wait(self, pred, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            for m in self.snapshot():
                if pred(m):
                    return m
            time.sleep(0.05)
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def retained_now(port, topics):
    """The retained messages a subscriber arriving now gets: {topic: payload}."""
    late = Mqtt(port, topics=topics)
    late.wait(lambda m: False, 1)
    out = {m[1]: m[2] for m in late.snapshot() if m[3]}
    late.close()
    return out


class Broker:
    """mosquitto on 127.0.0.1: a plain listener, optionally a password file, and given
    certificates ({"ca", "crt", "key"}) a TLS listener too. start() returns the broker."""

    def __init__(self, tmp, port, tls_port=None, certs=None, passwd=None, name="mosquitto"):
        self.conf = os.path.join(tmp, name + ".conf")
        self.log = os.path.join(tmp, name + ".log")
        self.port = port
        with open(self.conf, "w") as f:
            f.write("persistence false\n")
            if os.geteuid() == 0:
                # As root mosquitto drops to user "mosquitto", who cannot read our temp dir.
                f.write("user root\n")
            if passwd:
                f.write("allow_anonymous false\npassword_file %s\n" % passwd)
            else:
                f.write("allow_anonymous true\n")
            f.write("listener %d 127.0.0.1\n" % port)
            if tls_port:
                f.write("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n" %
                        (tls_port, certs["ca"], certs["crt"], certs["key"]))
        self.proc = None
        self.logf = None

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf, "-v"], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        with open(self.log, "rb") as f:
            tail = f.read()[-400:].decode("utf-8", "replace")
        raise RuntimeError("mosquitto did not start: %s" % tail)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None


def need_mosquitto(checks):
    """Ends the suite (skipped) when mosquitto is not installed."""
    if not os.access(MOSQUITTO, os.X_OK):
        print("SKIP: mosquitto not installed (tools/setup.sh test)")
        checks.done()


def persistent_broker(tmp, port, name="persistent"):
    """A started mosquitto that keeps retained messages over a restart (saved when it stops), as
    an installed one does."""
    b = Broker(tmp, port, name=name)
    with open(b.conf) as f:
        text = f.read()
    with open(b.conf, "w") as f:
        f.write(text.replace("persistence false",
                             "persistence true\npersistence_location %s/" % tmp))
    return b.start()


def pub_entry(d, name="mqtt"):
    """The publisher `name` of meter home in /api/meters, or None."""
    for p in d.meter("home").get("publishers") or []:
        if p.get("name") == name:
            return p
    return None


def metrics_text(d):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.port, timeout=5) as r:
        return r.read().decode("utf-8")


def metric(text, name, labels):
    """The value of sample name{labels} in an exposition, or None."""
    want = name + "{" + labels + "} "
    for line in text.splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    return None


def wait_pub(d, pred, timeout):
    """Waits until pred(the mqtt publisher entry of home) holds; returns the entry or None."""
    end = time.time() + timeout
    while time.time() < end:
        p = pub_entry(d)
        if p and pred(p):
            return p
        time.sleep(0.2)
    return None


@contextlib.contextmanager
def tcp_meter(tmp, name, args, topics=("#",), retained=()):
    """A broker (holding the retained (topic, payload) pairs), a subscriber, a fake P1 dongle and
    p1d reading it as meter home with the extra args: yields (p1d, the dongle's connection, the
    subscriber, the broker's port)."""
    port, meter_port = free_port(), free_port()
    broker = Broker(tmp, port, name=name).start()
    dongle = fake_dongle(meter_port)
    sub = Mqtt(port, topics=topics)
    for topic, payload in retained:
        sub.publish(topic, payload, retain=True)
    if retained:
        sub.wait(lambda m: m[1] == retained[-1][0], 5)
    d = Daemon(["--listen", "127.0.0.1:0", "--source", "home=tcp:127.0.0.1:%d" % meter_port,
                "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), "--mqtt-state-interval",
                "0"] + args, tmp)
    conn = None
    try:
        conn = dongle.accept()[0]
        yield d, conn, sub, port
    finally:
        d.stop()
        if conn:
            conn.close()
        dongle.close()
        sub.close()
        broker.stop()
