#!/usr/bin/env python3
"""test_http_robust.py: malformed and hostile HTTP clients against p1d: garbage, huge headers,
10k headers, long URLs, bad methods, bad percent-encoding, HTTP/0.9, slowloris, idle connection
floods. Each gets a 4xx or a closed connection; the daemon stays up and keeps serving others."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http_api import DAEMON_PROBLEMS, P1D, Daemon, Tally  # noqa: E402


def raw(port, data, timeout=5, chunks=None):
    """Sends data on a fresh connection and returns what came back until close/timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not b:
                break
            out += b
            if chunks is None and b"\r\n\r\n" in out:
                # One response is enough: stop once its body is in.
                head, _, body = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
    finally:
        s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def served(d):
    """A normal request still works, quickly."""
    t0 = time.time()
    try:
        status = d.request("GET", "/api/v1/data", timeout=3)[0]
    except OSError:
        return False, 99
    return status == 200, time.time() - t0


def test_malformed(t, d):
    p = d.port
    cases = [
        ("garbage", b"\x00\x01\x02garbage\xff\xfe\r\n\r\n", (400, 0)),
        ("no request line", b"\r\n\r\n\r\n", (400, 0)),
        ("bad method", b"FOO /api/now HTTP/1.1\r\nHost: x\r\n\r\n", (405, 400, 501)),
        ("lowercase method", b"get /api/now HTTP/1.1\r\nHost: x\r\n\r\n", (405, 400, 501)),
        ("bad percent", b"GET /api/%zz HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        ("truncated percent", b"GET /api/now%4 HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        ("nul percent", b"GET /api/now%00 HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        ("unknown meter", b"GET /api/meters/zz/now HTTP/1.1\r\nHost: x\r\n\r\n", (404,)),
        ("bad version", b"GET /api/now HTTP/7.3\r\nHost: x\r\n\r\n", (505, 400, 0)),
        ("http/0.9", b"GET /api/now\r\n\r\n", (400, 505, 0)),
        ("no host 1.1", b"GET /api/now HTTP/1.1\r\n\r\n", (400,)),
        ("long url", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414,)),
        ("huge url", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414, 0)),
        ("huge header", b"GET /api/now HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 +
         b"\r\n\r\n", (431, 400, 413, 0)),
        ("10k headers", b"GET /api/now HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-%d: y\r\n" % i for i in range(10000)) + b"\r\n", (431, 400, 413, 0)),
        ("200 headers", b"GET /api/now HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", (431,)),
        ("bad header line", b"GET /api/now HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
         (400, 200)),
        ("post with body", b"POST /api/now HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
         (405,)),
        ("huge content-length", b"PUT /api/now HTTP/1.1\r\nHost: x\r\nContent-Length: "
         b"99999999999999999999\r\n\r\n", (405, 400, 413, 0)),
    ]
    for name, data, ok in cases:
        resp = raw(p, data)
        st = status_of(resp)
        t.check("malformed " + name, st in ok, (st, resp[:120]))
        if st == 405:
            t.check("malformed allow " + name, b"\r\nAllow: GET, HEAD, OPTIONS" in resp, resp[:300])
        good, took = served(d)
        t.check("served after " + name, good and took < 1.0, took)
    # JSON error bodies from p1d's own checks.
    resp = raw(p, b"GET /api/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    t.check("400 json body", b'"code":"bad_request"' in resp, resp[-200:])
    resp = raw(p, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    t.check("414 json body", b'"code":"uri_too_long"' in resp, resp[-200:])
    # Pipelined keep-alive requests on one connection are all answered.
    resp = raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3, chunks=True, timeout=2)
    t.check("pipelined", resp.count(b"HTTP/1.1 200") == 3, resp[:300])
    t.check("alive after malformed", d.alive())


def test_slowloris(t, d):
    # Five clients trickle one header byte per second; others must be served promptly, and the
    # trickling ones be cut off (header deadline 10 s).
    results = {}

    def trickle(i):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        s.settimeout(1.5)
        start = time.time()
        req = b"GET /api/now HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
        closed = False
        for byte in req:
            try:
                s.send(bytes([byte]))
                data = s.recv(4096)
                if not data or data:
                    closed = True  # EOF, or an error response then close
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
            if time.time() - start > 25:
                break
        results[i] = (closed, time.time() - start)
        s.close()

    threads = [threading.Thread(target=trickle, args=(i,)) for i in range(5)]
    for th in threads:
        th.start()
    worst = 0
    fails = 0
    t0 = time.time()
    while any(th.is_alive() for th in threads) and time.time() - t0 < 30:
        good, took = served(d)
        worst = max(worst, took)
        fails += not good
        time.sleep(0.2)
    for th in threads:
        th.join(5)
    t.check("others served during slowloris", fails == 0 and worst < 1.0, (fails, worst))
    t.check("slowloris cut off", all(r[0] and r[1] < 20 for r in results.values()) and
            len(results) == 5, results)
    t.check("alive after slowloris", d.alive())


def test_floods(t, d):
    # 300 idle connections that never send: the daemon still serves, and reaps them.
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        except OSError:
            break
    t.check("idle flood connected", len(socks) == 300, len(socks))
    good, took = served(d)
    t.check("served during idle flood", good and took < 1.0, took)
    # Half-open: connections that send a partial request and close.
    for s in socks[:100]:
        try:
            s.sendall(b"GET /api/now HTTP/1.1\r\nHo")
        except OSError:
            pass
        s.close()
    for s in socks[100:]:
        s.close()
    good, took = served(d)
    t.check("served after flood", good and took < 1.0, took)
    # Many quick connections in a row (no keep-alive).
    ok = 0
    for _ in range(300):
        if status_of(raw(d.port, b"GET /healthz HTTP/1.0\r\n\r\n", timeout=2)) == 200:
            ok += 1
    t.check("300 sequential connections", ok == 300, ok)
    t.check("alive after floods", d.alive())


def main():
    if not os.access(P1D, os.X_OK):
        print("SKIP: build/p1d not built")
        print("0 passed, 1 failed")
        return 1
    t = Tally()
    d = None
    try:
        d = Daemon(["house=sim"])
        for fn in (test_malformed, test_slowloris, test_floods):
            try:
                fn(t, d)
            except Exception as e:
                t.check(fn.__name__, False, repr(e))
    except Exception as e:
        t.check("start", False, repr(e))
    finally:
        if d:
            d.stop()
    t.check("daemons exited cleanly", not DAEMON_PROBLEMS, DAEMON_PROBLEMS)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
