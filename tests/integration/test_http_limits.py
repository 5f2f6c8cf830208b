#!/usr/bin/env python3
"""test_http_limits.py: one client must not lock the others out of the HTTP server: a request
body that trickles in is cut off like slow headers."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, tmpdir  # noqa: E402

T = Checks("test_http_limits")
need_p1d(T)

REQ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connect(port, src="127.0.0.1"):
    """A connection to p1d on 127.0.0.1 from the loopback address src (127.0.0.2 is another
    client to p1d; Linux routes all of 127/8 to lo)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def answer(s, request=REQ):
    """The status line p1d answers on s, b"" when it closed the connection without one."""
    try:
        s.sendall(request)
        data = s.recv(4096)
    except OSError:
        data = b""
    return data.split(b"\r\n")[0]


def test_slow_body(tmp):
    """A body sent a byte at a time never leaves MHD idle, so only a deadline ends it."""
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--http-timeout", "2s", "--db",
                os.path.join(tmp, "slow.db")], tmp)
    try:
        port = d.http_port()
        s = connect(port)
        s.sendall(b"PUT /api/prices?kind=power HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\ntime,price\n")
        start, alive = time.time(), True
        while alive and time.time() - start < 8:
            time.sleep(0.5)
            try:
                s.sendall(b"1")
            except OSError:
                alive = False
                break
            s.settimeout(0.01)
            try:
                alive = s.recv(1) != b""
            except socket.timeout:
                pass
            except OSError:
                alive = False
        s.close()
        took = time.time() - start
        T.check("slow body: a body of 2 bytes a second is cut off (%.1f s)" % took,
                not alive and took < 6, took)
        body = b"time,price\n2030-01-01T10:00,0.25\n" * 1 + b"\n" * 3000
        s = connect(port)
        s.sendall(b"PUT /api/prices?kind=power HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  b"text/csv\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        for i in range(0, len(body), 1000):  # 3 kB over 1.5 s, above the minimum rate
            s.sendall(body[i:i + 1000])
            time.sleep(0.5)
        T.check("slow body: a body that keeps coming is taken",
                answer(s, b"") == b"HTTP/1.1 200 OK", "cut off")
        s.close()
    finally:
        d.stop()


with tmpdir() as tmp:
    T.run((test_slow_body,), tmp)
T.done()
