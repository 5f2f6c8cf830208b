#!/usr/bin/env python3
"""bench_sse.py: 1,000 Server-Sent Events clients on p1d from one process (selectors, non-blocking
sockets); measures per-reading delivery latency from the event's "received_ms" (server wall clock
when the telegram completed) to receipt, and prints
    sse_clients=N events=N p50_ms=.. p99_ms=.. max_ms=..
Usage: bench/bench_sse.py [--clients 1000] [--seconds 10] [--p1d build/p1d] [--port N]
       (--port: measure an already running p1d instead of starting one)."""
import argparse
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECEIVED = re.compile(rb'"received_ms":(\d+)')


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.sent = False
        self.raw = b""
        self.body = b""
        self.headers_done = False
        self.chunked = False
        self.events = 0

    def feed(self, data, now_ms, lat):
        self.raw += data
        if not self.headers_done:
            if b"\r\n\r\n" not in self.raw:
                return
            head, self.raw = self.raw.split(b"\r\n\r\n", 1)
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError("stream refused: " + head.decode(errors="replace")[:200])
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.headers_done = True
        if self.chunked:
            while True:
                nl = self.raw.find(b"\r\n")
                if nl < 0:
                    break
                size = int(self.raw[:nl].split(b";")[0], 16)
                if len(self.raw) < nl + 4 + size:
                    break
                self.body += self.raw[nl + 2:nl + 2 + size]
                self.raw = self.raw[nl + 4 + size:]
        else:
            self.body += self.raw
            self.raw = b""
        while b"\n\n" in self.body:
            block, self.body = self.body.split(b"\n\n", 1)
            m = RECEIVED.search(block)
            if m:
                self.events += 1
                lat.append(now_ms - int(m.group(1)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ok(url, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--p1d", default=os.path.join(ROOT, "build", "p1d"))
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.clients + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard > 0 else want, hard))

    proc = None
    tmp = None
    port = a.port
    if not port:
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="p1d-bench-sse-")
        log = open(os.path.join(tmp, "p1d.log"), "wb")
        proc = subprocess.Popen([a.p1d, "--source", "x=sim", "--listen", f"127.0.0.1:{port}",
                                 "--log-level", "warn"], cwd=tmp, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        if not wait_ok(f"http://127.0.0.1:{port}/api/now"):
            print("bench_sse: p1d did not deliver a reading", file=sys.stderr)
            return 1
        sel = selectors.DefaultSelector()
        clients = []
        req = (f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
        for _ in range(a.clients):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            c = Client(s)
            clients.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
        lat = []
        warm = []  # events that arrive while clients are still connecting are not counted
        start = time.time()
        measuring = False
        end = start + a.seconds + 30
        while time.time() < end:
            if not measuring and all(c.headers_done for c in clients):
                measuring = True
                end = time.time() + a.seconds
            for key, ev in sel.select(timeout=0.5):
                c = key.data
                if ev & selectors.EVENT_WRITE and not c.sent:
                    try:
                        c.sock.send(req)
                    except OSError as e:
                        print(f"bench_sse: send: {e}", file=sys.stderr)
                        sel.unregister(c.sock)
                        continue
                    c.sent = True
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                now_ms = time.time() * 1000.0
                if not data:
                    sel.unregister(c.sock)
                    continue
                c.feed(data, now_ms, lat if measuring else warm)
        connected = sum(1 for c in clients if c.headers_done)
        receiving = sum(1 for c in clients if c.events > 0)
        for c in clients:
            c.sock.close()
        lat.sort()
        print(f"sse_clients={receiving} connected={connected} events={len(lat)} "
              f"p50_ms={pct(lat, 50):.1f} p99_ms={pct(lat, 99):.1f} "
              f"max_ms={(lat[-1] if lat else 0):.1f}")
        return 0 if receiving == a.clients and lat else 1
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
