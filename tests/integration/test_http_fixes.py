#!/usr/bin/env python3
"""test_http_fixes.py: HTTP fixes found by QA: a dropped SSE client's connection is closed at
once, /api/meters connected_since is null while a source is disconnected, and /healthz fails
when a meter stopped before its first telegram."""
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import ROOT, Checks, Daemon, free_port, need_p1d, telegram, tmpdir  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")
T = Checks("test_http_fixes")
need_p1d(T)


def http(port, path, method="GET", body=None, headers=None):
    """Returns (status, headers, body) without raising on HTTP errors."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metric(port, name):
    body = http(port, "/metrics")[2].decode()
    for line in body.split("\n"):
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def tcp_state(s):
    """The kernel's TCP state of socket s (1 = established, 7 = closed)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def wait_for(pred, timeout, step=0.05):
    """Polls pred() until it returns a true value or timeout seconds pass; returns the last value."""
    end = time.time() + timeout
    v = pred()
    while not v and time.time() < end:
        time.sleep(step)
        v = pred()
    return v


def open_stream(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    return s


class Drain(threading.Thread):
    """Reads a socket as fast as it can and counts the bytes (a client that keeps up)."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s = s
        self.bytes = 0
        self.eof = False
        self.stop = False

    def run(self):
        self.s.settimeout(0.2)
        while not self.stop:
            try:
                data = self.s.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.eof = True
                return
            self.bytes += len(data)


def test_sse_drop_closes(tmp):
    """A client that never reads is dropped when its queue overflows; its connection must end
    then, not after MHD's idle timeout (30 s), and the daemon keeps serving the others."""
    d = Daemon(["--source", "fast=sim:speedup=1000", "--listen", "127.0.0.1:0"], tmp)
    good = None
    try:
        port = d.http_port()
        slow = open_stream(port, rcvbuf=4096)
        good = Drain(open_stream(port))
        good.start()
        dropped = wait_for(lambda: metric(port, "p1d_http_sse_dropped_total"), 20, 0.1)
        T.check("sse: the client that does not read is dropped", dropped and dropped >= 1, dropped)
        t0 = time.time()
        gone = wait_for(lambda: metric(port, "p1d_http_sse_clients") == 1, 3)
        T.check("sse: the server releases the dropped client within 3 s", gone,
                "clients %s after %.1f s" % (metric(port, "p1d_http_sse_clients"), time.time() - t0))
        closed = wait_for(lambda: tcp_state(slow) != 1, 3)
        T.check("sse: the dropped client's socket is closed without reading it", closed,
                "tcp state %d" % tcp_state(slow))
        ended = False
        slow.settimeout(1)
        end = time.time() + 5
        try:
            while time.time() < end:
                if not slow.recv(1 << 20):
                    ended = True
                    break
        except OSError:
            ended = True
        T.check("sse: reading the dropped client's socket ends (EOF or reset)", ended)
        slow.close()
        before = good.bytes
        T.check("sse: the client that keeps up still receives",
                wait_for(lambda: good.bytes > before + 10000, 3) and not good.eof,
                "%d -> %d bytes, eof %s" % (before, good.bytes, good.eof))
        st, _, _ = http(port, "/api/now")
        T.check("sse: /api/now still answers", st == 200, st)
    finally:
        if good:
            good.stop = True
            good.join(2)
            good.s.close()
        d.stop()


class Dongle:
    """A network P1 dongle: a listener whose connections the test controls."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def listen(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(4)
        self.sock.settimeout(10)

    def accept(self):
        c, _ = self.sock.accept()
        return c

    def refuse(self):
        self.sock.close()


def test_connected_since(tmp):
    """connected_since is the time of the current connection: null while the source is lost,
    a new time after it reconnects."""
    port = free_port()
    dongle = Dongle(port)
    dongle.listen()
    spec = "net=tcp:127.0.0.1:%d:reconnect_min=100ms:reconnect_max=200ms" % port
    d = Daemon(["--source", spec, "--listen", "127.0.0.1:0"], tmp)
    try:
        d.http_port()
        c = dongle.accept()
        c.sendall(telegram(0))
        m = d.wait_meter("net", lambda m: m.get("telegrams", 0) >= 1)
        first = m and m.get("connected_since")
        T.check("connected_since set while connected", first, str(m))
        dongle.refuse()
        c.close()
        m = d.wait_meter("net", lambda m: m.get("state") == "waiting", 5)
        T.check("tcp: the loss is seen (state waiting)", m is not None, str(d.meter("net")))
        T.check("connected_since is null after the loss", m and m.get("connected_since") is None,
                str(m))
        time.sleep(0.3)  # at least one refused attempt
        m = d.meter("net")
        T.check("connected_since stays null while refused",
                m.get("state") == "waiting" and m.get("connected_since") is None, str(m))
        time.sleep(0.01)
        dongle.listen()
        c = dongle.accept()
        c.sendall(telegram(1))
        m = d.wait_meter("net", lambda m: m.get("telegrams", 0) >= 2)
        again = m and m.get("connected_since")
        T.check("connected_since is a new time after reconnecting",
                again and first and again > first, "%s -> %s" % (first, again))
        c.close()
        dongle.refuse()
    finally:
        d.stop()


def healthz(port):
    st, _, body = http(port, "/healthz")
    try:
        return st, json.loads(body)
    except ValueError:
        return st, {}


def test_healthz(tmp):
    missing = os.path.join(tmp, "no-such-file.txt")
    d = Daemon(["--source", "house=file:%s" % missing, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        d.wait_meter("house", lambda m: m.get("state") == "stopped")
        st, j = healthz(port)
        T.check("healthz: a file that cannot be opened is 503", st == 503, "%s %s" % (st, j))
        T.check("healthz: ... and says why", j.get("status") == "unhealthy" and
                "house" in j.get("reason", "") and "cannot open" in j.get("reason", ""), j)
    finally:
        d.stop()

    # A replay that reached its end normally is finished, not broken.
    d = Daemon(["--source", "home=file:%s" % os.path.join(DATA, "dsmr50-3phase-gas.txt"),
                "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        m = d.wait_meter("home", lambda m: m.get("state") == "stopped" and m.get("telegrams"))
        T.check("healthz: the replay ended", m is not None, str(d.meter("home")))
        st, j = healthz(port)
        T.check("healthz: a file replayed to its end is 200 ok", st == 200 and
                j.get("status") == "ok", "%s %s" % (st, j))
    finally:
        d.stop()

    # Two meters, one broken: unhealthy; a reload that removes the broken one makes it healthy.
    conf = os.path.join(tmp, "p1d.conf")
    with open(conf, "w") as f:
        f.write("[source sim]\nspec = sim:speedup=10\n\n[source broken]\nspec = file:%s\n" % missing)
    d = Daemon(["--config", conf, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        d.wait_meter("sim", lambda m: m.get("telegrams", 0) >= 1)
        st, j = healthz(port)
        T.check("healthz: one broken meter of two is 503", st == 503 and
                "broken" in j.get("reason", ""), "%s %s" % (st, j))
        with open(conf, "w") as f:
            f.write("[source sim]\nspec = sim:speedup=10\n")
        d.signal(signal.SIGHUP)
        T.check("healthz: reload logged", d.wait_log(r"reloaded.*1 removed", 5), d.text()[-500:])
        st, j = healthz(port)
        T.check("healthz: after the broken meter was removed it is 200", st == 200,
                "%s %s" % (st, j))
    finally:
        d.stop()


with tmpdir() as tmp:
    for fn in (test_sse_drop_closes, test_connected_since, test_healthz):
        try:
            fn(tmp)
        except Exception as e:  # a crash of one test must not hide the others
            T.check(fn.__name__, False, repr(e))
T.done()
