#!/usr/bin/env python3
"""test_http_sse.py: p1d's Server-Sent Events through raw sockets: events and ids, per-meter
streams, Last-Event-ID replay, heartbeats on idle streams, fan-out, dropping a client that does
not read, and clients leaving while suspended."""
import json
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http_api import DAEMON_PROBLEMS, P1D, Daemon, Tally, EXPORT_TELEGRAM  # noqa: E402


class Stream:
    """One SSE client on a raw socket; decodes chunked transfer coding and splits events."""

    def __init__(self, port, path, last_id=None, rcvbuf=None, version="1.1"):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        req = f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if last_id:
            req += f"Last-Event-ID: {last_id}\r\n"
        self.s.sendall((req + "\r\n").encode())
        self.raw = b""
        self.body = b""
        self.status = 0
        self.headers = {}
        self.chunked = False
        self.eof = False

    def _recv(self, timeout):
        self.s.settimeout(max(timeout, 0.01))
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.raw += data
        return True

    def read_headers(self, timeout=5):
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.raw and time.time() < deadline and not self.eof:
            self._recv(deadline - time.time())
        if b"\r\n\r\n" not in self.raw:
            return False
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        return True

    def _dechunk(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while True:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                return
            size = int(self.raw[:nl].split(b";")[0], 16)
            if len(self.raw) < nl + 2 + size + 2:
                return
            self.body += self.raw[nl + 2:nl + 2 + size]
            self.raw = self.raw[nl + 2 + size + 2:]
            if size == 0:
                self.eof = True
                return

    def next_block(self, timeout=5):
        """The next event block (text between blank lines) or None on timeout/EOF."""
        deadline = time.time() + timeout
        while True:
            self._dechunk()
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                return block.decode()
            if self.eof or time.time() >= deadline:
                return None
            self._recv(deadline - time.time())

    def next_event(self, timeout=5):
        """The next reading event as (id, data dict), skipping comments and retry hints."""
        deadline = time.time() + timeout
        while True:
            block = self.next_block(deadline - time.time())
            if block is None:
                return None
            ev = {}
            for line in block.split("\n"):
                if line.startswith(":") or not line:
                    continue
                k, _, v = line.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v
            if ev.get("event") == "reading":
                return ev.get("id"), json.loads(ev["data"])

    def close(self):
        self.s.close()


def seq_of(event_id):
    return int(event_id.rsplit(":", 1)[1])


def metric(d, name):
    body = d.request("GET", "/metrics")[2].decode()
    for line in body.split("\n"):
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_stream(t):
    d = Daemon(["a=sim:speedup=5", "b=sim:2:speedup=5"])
    try:
        s = Stream(d.port, "/api/stream")
        t.check("stream headers", s.read_headers(), s.raw[:200])
        t.check("stream status", s.status == 200, s.status)
        t.check("stream type", s.headers.get("content-type", "").startswith("text/event-stream"),
                s.headers)
        t.check("stream no-cache", "no-cache" in s.headers.get("cache-control", ""), s.headers)
        t.check("stream chunked", s.chunked, s.headers)
        first = s.next_block(5)
        t.check("stream retry hint", first is not None and first.startswith("retry: "), first)
        seen = {"a": [], "b": []}
        deadline = time.time() + 10
        while time.time() < deadline and (len(seen["a"]) < 4 or len(seen["b"]) < 4):
            ev = s.next_event(5)
            if not ev:
                break
            eid, data = ev
            name = eid.rsplit(":", 1)[0]
            t.check("event data matches id", data["meter"] == name and data["seq"] == seq_of(eid),
                    (eid, data.get("meter"), data.get("seq")))
            t.check("event fields", {"received", "received_ms", "reading"} <= set(data), data)
            seen.setdefault(name, []).append(seq_of(eid))
        for name in ("a", "b"):
            q = seen[name]
            t.check(f"stream {name} events", len(q) >= 4, seen)
            t.check(f"stream {name} ids consecutive", q == list(range(q[0], q[0] + len(q))), q)
        s.close()

        # A per-meter stream carries only that meter.
        s = Stream(d.port, "/api/meters/b/stream")
        s.read_headers()
        names = set()
        for _ in range(5):
            ev = s.next_event(5)
            if ev:
                names.add(ev[0].rsplit(":", 1)[0])
        t.check("meter stream only b", names == {"b"}, names)
        last = None
        for _ in range(2):
            ev = s.next_event(5)
            if ev:
                last = ev[0]
        s.close()

        # Last-Event-ID replays the kept readings after it, in order.
        n = seq_of(last)
        r = Stream(d.port, "/api/meters/b/stream", last_id=f"b:{n - 3}")
        r.read_headers()
        ids = []
        for _ in range(5):
            ev = r.next_event(5)
            if ev:
                ids.append(seq_of(ev[0]))
        t.check("replay from last id", ids[:1] == [n - 2], (n, ids))
        t.check("replay consecutive", ids == list(range(n - 2, n - 2 + len(ids))) and len(ids) == 5,
                ids)
        r.close()
        # Too old an id: replay what is kept (at most METER_HISTORY = 8 readings back).
        r = Stream(d.port, "/api/meters/b/stream", last_id="b:1")
        r.read_headers()
        ev = r.next_event(5)
        t.check("replay old id bounded", ev and seq_of(ev[0]) >= ids[-1] - 8 and seq_of(ev[0]) > 1,
                ev and ev[0])
        r.close()
        # Garbage id: no replay, live events only.
        r = Stream(d.port, "/api/stream", last_id="nonsense")
        r.read_headers()
        t.check("garbage last id", r.status == 200 and r.next_event(5) is not None)
        r.close()

        # HTTP/1.0 clients get the stream unchunked.
        s = Stream(d.port, "/api/meters/a/stream", version="1.0")
        s.read_headers()
        t.check("http/1.0 stream", s.status == 200 and not s.chunked and s.next_event(5),
                s.headers)
        s.close()

        status, hdrs, body, _ = d.request("HEAD", "/api/stream")
        t.check("head stream", status == 200 and body == b"" and
                hdrs.get("content-type", "").startswith("text/event-stream"), (status, hdrs))

        # Fan-out: 200 clients all get the same readings.
        many = [Stream(d.port, "/api/meters/a/stream") for _ in range(200)]
        for c in many:
            c.read_headers()
        got = [c.next_event(5) for c in many]
        ok = [g for g in got if g]
        t.check("fan-out 200 clients", len(ok) == 200, len(ok))
        second = [c.next_event(5) for c in many]
        t.check("fan-out next event", all(x and y and seq_of(y[0]) == seq_of(x[0]) + 1
                                          for x, y in zip(got, second)))
        t.check("sse clients metric", metric(d, "p1d_http_sse_clients") >= 200)
        for c in many:
            c.close()
        t.check("alive", d.alive())
    finally:
        d.stop()


def test_slow_client_dropped(t):
    d = Daemon(["fast=sim:speedup=100"])
    try:
        slow = Stream(d.port, "/api/stream", rcvbuf=4096)
        good = Stream(d.port, "/api/stream")
        good.read_headers()
        dropped = 0
        deadline = time.time() + 30
        count = 0
        while time.time() < deadline:
            if good.next_event(2):
                count += 1
            if count % 50 == 0:
                dropped = metric(d, "p1d_http_sse_dropped_total") or 0
                if dropped >= 1:
                    break
        t.check("slow client dropped", dropped >= 1, dropped)
        t.check("good client keeps receiving", count >= 50, count)
        # The dropped client's stream ends once it drains what the kernel holds.
        slow.s.settimeout(5)
        ended = False
        end_by = time.time() + 15
        try:
            while time.time() < end_by:
                if not slow.s.recv(1 << 20):
                    ended = True
                    break
        except OSError:
            ended = True
        t.check("slow client closed", ended)
        slow.close()
        good.close()
        t.check("alive after drop", d.alive())
    finally:
        d.stop()


def test_heartbeat_idle(t):
    # A file source delivers one reading, then nothing: the stream must still see heartbeats, and
    # clients that left while suspended must be noticed (at the latest on the heartbeat).
    tmp = tempfile.mkdtemp(prefix="p1d-http-sse-")
    path = os.path.join(tmp, "one.txt")
    with open(path, "wb") as f:
        f.write(EXPORT_TELEGRAM)
    d = Daemon([f"solar=file:{path}"])
    try:
        gone = [Stream(d.port, "/api/stream") for _ in range(5)]
        for g in gone:
            g.read_headers()
            g.close()
        s = Stream(d.port, "/api/stream", last_id="solar:0")
        s.read_headers()
        ev = s.next_event(5)
        t.check("replay after restart-like id", ev and ev[0] == "solar:1", ev)
        hb = False
        deadline = time.time() + 18
        while time.time() < deadline and not hb:
            block = s.next_block(deadline - time.time())
            if block is None:
                break
            hb = block.strip() == ": hb"
        t.check("heartbeat on idle stream", hb)
        time.sleep(0.5)
        t.check("departed clients released", metric(d, "p1d_http_sse_clients") == 1,
                metric(d, "p1d_http_sse_clients"))
        s.close()
        t.check("alive", d.alive())
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def identify_blocks(s, timeout):
    """The "identify" events that arrive on stream s within timeout s."""
    n = 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        block = s.next_block(deadline - time.time())
        if block is None:
            break
        if "event: identify" in block.split("\n"):
            n += 1
    return n


def test_identify(t):
    """PUT /api/v1/identify (HomeWizard API v1, Home Assistant's Identify button): 200
    {"identify": "ok"}, an "identify" event on every open stream, a log line naming the client;
    the guards of any request that changes state."""
    d = Daemon(["a=sim:speedup=5", "b=sim:2:speedup=5"])
    try:
        all_ = Stream(d.port, "/api/stream")
        one = Stream(d.port, "/api/meters/b/stream")
        t.check("identify: streams open", all_.read_headers() and one.read_headers())
        st, hd, body, _ = d.request("PUT", "/api/v1/identify")
        t.check("identify: PUT answers 200", st == 200, (st, body))
        t.check("identify: body is {\"identify\": \"ok\"}",
                st == 200 and json.loads(body) == {"identify": "ok"}, body)
        t.check("identify: every stream gets the event",
                identify_blocks(all_, 2) == 1 and identify_blocks(one, 1) == 1)
        t.check("identify: logged with the client and the streams told",
                "http: identify requested by 127.0.0.1: 2 open dashboards flash" in d.logtext(),
                d.logtext()[-2000:])
        st, hd, body, _ = d.request("GET", "/api/v1/identify")
        t.check("identify: GET is 405 with Allow: PUT, OPTIONS",
                st == 405 and hd.get("allow") == "PUT, OPTIONS", (st, hd))
        st, hd, _, _ = d.request("OPTIONS", "/api/v1/identify")
        t.check("identify: OPTIONS names PUT", st == 204 and "PUT" in hd.get("allow", ""),
                (st, hd))
        st, _, body, _ = d.request("PUT", "/api/v1/identify", {"Origin": "http://evil.example"})
        t.check("identify: a page of another origin is refused (403)", st == 403, (st, body))
        t.check("identify: the refused one reaches no stream", identify_blocks(all_, 1) == 0)
        all_.close()
        one.close()
        t.check("identify: alive", d.alive())
    finally:
        d.stop()
    # with a token: a PUT without it is refused, one with it is answered
    d = Daemon(["a=sim:speedup=5"], extra=["--token", "s3cret-token-0123456789"],
               wait_reading=False)
    try:
        st, _, _, _ = d.request("PUT", "/api/v1/identify")
        t.check("identify: --token: without it 401", st == 401, st)
        st, _, body, _ = d.request("PUT", "/api/v1/identify",
                                {"Authorization": "Bearer s3cret-token-0123456789"})
        t.check("identify: --token: with it 200", st == 200, (st, body))
    finally:
        d.stop()


def main():
    if not os.access(P1D, os.X_OK):
        print("SKIP: build/p1d not built")
        print("0 passed, 1 failed")
        return 1
    t = Tally()
    for fn in (test_stream, test_slow_client_dropped, test_heartbeat_idle, test_identify):
        try:
            fn(t)
        except Exception as e:
            t.check(fn.__name__, False, repr(e))
    t.check("daemons exited cleanly", not DAEMON_PROBLEMS, DAEMON_PROBLEMS)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
