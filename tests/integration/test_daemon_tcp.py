#!/usr/bin/env python3
"""test_daemon_tcp.py: p1d as a TCP client of a network P1 dongle (a local python server): telegrams,
a stalled line (idle timeout), a dropped connection and a refused one all end in a reconnect."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, free_port, need_p1d, telegram, tmpdir  # noqa: E402

T = Checks("test_daemon_tcp")
need_p1d(T)


class Dongle:
    """A listener that hands each accepted connection to the test."""

    def __init__(self, port):
        self.port = port
        self.conns = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.listening = False
        self.listen()

    def listen(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.listening = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.listening:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.conns.append(c)
                self.accepted += 1

    def refuse(self):
        self.listening = False
        self.thread.join()
        self.sock.close()

    def wait_conn(self, n, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if self.accepted >= n:
                    return self.conns[n - 1]
            time.sleep(0.02)
        return None

    def close_all(self):
        with self.lock:
            for c in self.conns:
                c.close()


def send(conn, start, n):
    for i in range(start, start + n):
        conn.sendall(telegram(i))
        time.sleep(0.02)


with tmpdir() as d:
    port = free_port()
    dongle = Dongle(port)
    spec = "net=tcp:127.0.0.1:%d:idle_timeout=1s:reconnect_min=100ms:reconnect_max=300ms" % port
    p = Daemon(["--source", spec, "--listen", "127.0.0.1:0"], d)
    try:
        c = dongle.wait_conn(1)
        T.check("connects", c is not None)
        T.check("connect logged", p.wait_log(r"net: connected to 127.0.0.1:%d" % port))
        p.http_port()
        send(c, 0, 5)
        m = p.wait_meter("net", lambda m: m.get("telegrams", 0) >= 5)
        T.check("5 telegrams over TCP", m is not None, str(p.meter("net")))
        T.check("state receiving", m and m.get("state") == "receiving", str(m))
        # A split telegram across segments and a mid-telegram start are fine.
        t = telegram(5)
        c.sendall(t[:50])
        time.sleep(0.1)
        c.sendall(t[50:])
        T.check("telegram split over segments",
                p.wait_meter("net", lambda m: m.get("telegrams", 0) >= 6) is not None)

        # Stall: connected but silent -> idle timeout -> reconnect.
        t0 = time.time()
        c2 = dongle.wait_conn(2, 5)
        T.check("stalled line: reconnects after the idle timeout", c2 is not None)
        T.check("idle reconnect took about idle_timeout (0.8..3 s)", 0.8 <= time.time() - t0 <= 3.0,
                "%.2f s" % (time.time() - t0))
        T.check("idle logged", p.wait_log(r"net: lost 127.0.0.1:%d \(no data for 1000 ms\)" % port))
        send(c2, 6, 2)
        T.check("telegrams on the new connection",
                p.wait_meter("net", lambda m: m.get("telegrams", 0) >= 8) is not None)

        # Drop: the dongle closes the connection.
        dongle.close_all()
        c3 = dongle.wait_conn(3, 5)
        T.check("dropped connection: reconnects", c3 is not None)
        T.check("drop logged", p.wait_log(r"net: lost 127.0.0.1:%d \(closed by the peer\)" % port))
        send(c3, 8, 2)
        T.check("telegrams after the drop",
                p.wait_meter("net", lambda m: m.get("telegrams", 0) >= 10) is not None)

        # Refuse: nobody listens for a while, then the dongle comes back.
        dongle.refuse()
        dongle.close_all()
        before = dongle.accepted
        T.check("refused logged",
                p.wait_log(r"net: cannot connect to 127.0.0.1:%d \(Connection refused\)" % port, 5), p.text())
        m = p.meter("net")
        T.check("state waiting while refused", m.get("state") == "waiting", str(m))
        T.check("last_error says why", "refused" in (m.get("last_error") or ""), str(m))
        time.sleep(1.0)
        T.check("refusals logged once, not per retry", p.text().count("Connection refused") == 1,
                p.text())
        dongle.listen()
        c4 = dongle.wait_conn(before + 1, 5)
        T.check("dongle back: reconnects", c4 is not None)
        send(c4, 10, 2)
        m = p.wait_meter("net", lambda m: m.get("telegrams", 0) >= 12)
        T.check("telegrams after the refusal", m is not None, str(p.meter("net")))
        T.check("reconnects counted (3)", m and m.get("reconnects") == 3, str(m))
        T.check("idle reopens counted (1: the stall)", m and m.get("idle_reopens") == 1, str(m))
        T.check("nothing rejected", m and m.get("rejected") == 0, str(m))
        T.check("SIGTERM exits 0", p.stop() == 0)
    finally:
        p.stop()
        dongle.close_all()
        if dongle.listening:
            dongle.refuse()
T.done()
