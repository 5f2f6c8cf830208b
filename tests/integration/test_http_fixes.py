#!/usr/bin/env python3
"""test_http_fixes.py: HTTP fixes found by QA: a dropped SSE client's connection is closed at
once, /api/meters connected_since is null while a source is disconnected, /healthz fails when a
meter stopped before its first telegram, 405 messages name the methods of their Allow header,
history paths without a database say so, the Authorization scheme is matched without case, and
a query parameter that takes one value is refused when given twice, and parameter names are
case-sensitive."""
import base64
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, ROOT, free_port, http, need_p1d, telegram, tmpdir  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")
T = Checks("test_http_fixes")
need_p1d(T)


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


def test_healthz_stale(tmp):
    """A meter that went quiet: /healthz names how long and what went wrong since its last
    telegram (here the dongle refusing connections)."""
    port = free_port()
    dongle = Dongle(port)
    dongle.listen()
    spec = "net=tcp:127.0.0.1:%d:reconnect_min=100ms:reconnect_max=200ms" % port
    d = Daemon(["--source", spec, "--listen", "127.0.0.1:0", "--http-stale", "1s"], tmp)
    try:
        hp = d.http_port()
        c = dongle.accept()
        c.sendall(telegram(0))
        d.wait_meter("net", lambda m: m.get("telegrams", 0) >= 1)
        dongle.refuse()
        c.close()
        m = d.wait_meter("net", lambda m: m.get("state") == "waiting" and m.get("last_error"), 5)
        time.sleep(1.5)
        st, j = healthz(hp)
        reason = j.get("reason", "")
        T.check("healthz: a stale meter is 503 and the reason gives its last error",
                st == 503 and "no telegram for" in reason and m is not None and
                ("cannot connect" in reason or "lost" in reason), "%s %s / %s" % (st, j, m))
    finally:
        d.stop()


def test_healthz_stale_reload(tmp):
    """A reload that shortens [http] stale is in force at once for /healthz and p1_meter_up, as
    it is for the MQTT availability and the stale alert (restarted with it); it once waited for
    a restart while those two took it at once."""
    port = free_port()
    dongle = Dongle(port)
    dongle.listen()
    conf = os.path.join(tmp, "stale.conf")
    body = "[http]\nstale = %s\n\n[source net]\nspec = tcp:127.0.0.1:%d\n"
    with open(conf, "w") as f:
        f.write(body % ("60s", port))
    d = Daemon(["--config", conf, "--listen", "127.0.0.1:0"], tmp)
    try:
        hp = d.http_port()
        c = dongle.accept()
        c.sendall(telegram(0))
        d.wait_meter("net", lambda m: m.get("telegrams", 0) >= 1)
        time.sleep(1.5)  # silent, but within 60 s
        st, j = healthz(hp)
        T.check("healthz: a meter silent for 1.5 s is fine with stale = 60s", st == 200,
                "%s %s" % (st, j))
        with open(conf, "w") as f:
            f.write(body % ("1s", port))
        d.signal(signal.SIGHUP)
        T.check("healthz: the reload says the new stale is in force",
                d.wait_log(r"\[http\] stale changed; in force now", 5) and
                not re.search(r"\[http\] settings changed", d.text()), d.text()[-800:])
        st, j = healthz(hp)
        T.check("healthz: ... and /healthz takes it: 503, no telegram for", st == 503 and
                "no telegram for" in j.get("reason", ""), "%s %s" % (st, j))
        T.check("healthz: ... and p1_meter_up is 0", metric(hp, 'p1_meter_up{meter="net"}') == 0,
                metric(hp, 'p1_meter_up{meter="net"}'))
        c.close()
    finally:
        d.stop()


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


def allow_agrees(h, body):
    """The methods named in a 405's message are the methods of its Allow header."""
    allow = {x.strip() for x in h.get("Allow", "").split(",") if x.strip()}
    msg = json.loads(body)["error"]["message"]
    named = set(re.findall(r"\b(GET|HEAD|OPTIONS|PUT|POST|DELETE|PATCH)\b", msg))
    return allow and allow == named, "Allow %s, message %r" % (sorted(allow), msg)


def test_405_messages(tmp):
    d = Daemon(["--source", "home=file:%s" % os.path.join(DATA, "dsmr50-3phase-gas.txt"),
                "--db", os.path.join(tmp, "m.db"), "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        for path, method in (("/api/history", "POST"), ("/api/summary", "DELETE"),
                             ("/api/prices", "DELETE"), ("/api/now", "POST"), ("/", "DELETE")):
            st, h, b = http(port, path, method, body=b"x" if method == "POST" else None)
            ok, why = allow_agrees(h, b) if st == 405 else (False, "%s %s" % (st, b))
            T.check("405 %s %s: message and Allow name the same methods" % (method, path), ok, why)
    finally:
        d.stop()


def test_no_database(tmp):
    d = Daemon(["--source", "s=sim:speedup=10", "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        for path in ("/api/history", "/api/summary?period=day", "/api/prices"):
            st, _, b = http(port, path)
            err = json.loads(b).get("error", {})
            T.check("without --db GET %s is 404 no_database" % path,
                    st == 404 and err.get("code") == "no_database" and
                    "--db" in err.get("message", ""), "%s %s" % (st, b))
        st, _, b = http(port, "/api/prices?kind=power", "PUT", body=b"time,price\n",
                        headers={"Content-Type": "text/csv"})
        T.check("without --db PUT /api/prices is 404 no_database",
                st == 404 and b"no_database" in b, "%s %s" % (st, b))
        st, _, b = http(port, "/api/nothing")
        T.check("an unknown /api/ path is still 404 not_found",
                st == 404 and json.loads(b)["error"]["code"] == "not_found", "%s %s" % (st, b))
    finally:
        d.stop()


def test_auth_scheme(tmp):
    d = Daemon(["--source", "s=sim:speedup=10", "--listen", "127.0.0.1:0", "--token", "s3cret",
                "--http-basic-user", "ann", "--http-basic-pass", "pw"], tmp)
    try:
        port = d.http_port()
        basic = base64.b64encode(b"ann:pw").decode()
        for value, want in (("Bearer s3cret", 200), ("bearer s3cret", 200),
                            ("BEARER s3cret", 200), ("bEaReR  s3cret", 200),
                            ("basic " + basic, 200), ("BASIC " + basic, 200),
                            ("bearer S3CRET", 401), ("bearers3cret", 401),
                            ("Bearer", 401), ("bearer wrong", 401)):
            st, _, _ = http(port, "/api/meters", headers={"Authorization": value})
            T.check("Authorization %r is %d" % (value, want), st == want, st)
    finally:
        d.stop()


def test_no_meter(tmp):
    """p1d with a store and no source: /api/now is 204 No Content (a state, not an error: the
    dashboard asks for it before it knows the meters); the HomeWizard paths keep their 404."""
    d = Daemon(["--db", os.path.join(tmp, "nometer.db"), "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        st, _, b = http(port, "/api/meters")
        T.check("no meter: /api/meters is []", st == 200 and json.loads(b) == [], "%s %s" % (st, b))
        for method in ("GET", "HEAD"):
            st, h, b = http(port, "/api/now", method)
            T.check("no meter: %s /api/now is 204, no body, not cached" % method,
                    st == 204 and b == b"" and h.get("Cache-Control") == "no-store",
                    "%s %s %s" % (st, h, b))
        for path in ("/api/v1/data", "/api/v1/telegram", "/p1.json", "/api/meters/home/now"):
            st, _, b = http(port, path)
            T.check("no meter: %s is still 404 not_found" % path,
                    st == 404 and b"not_found" in b, "%s %s" % (st, b))
    finally:
        d.stop()


def token_daemon(tmp, what):
    """A simulated meter's p1d with a store and token s3cret, once it has a first reading: (the
    daemon, its port, the Authorization header)."""
    d = Daemon(["--source", "s=sim:speedup=10", "--listen", "127.0.0.1:0", "--token", "s3cret",
                "--db", os.path.join(tmp, what + ".db")], tmp)
    auth = {"Authorization": "Bearer s3cret"}
    port = d.http_port()
    T.check("%s: a first reading" % what,
            wait_for(lambda: http(port, "/api/now", headers=auth)[0] == 200, 10), "")
    return d, port, auth


def test_repeated_params(tmp):
    """A parameter that takes one value given twice is a 400 naming it, not the first taken
    silently; /api/meters' state and healthy still merge, parameters an endpoint does not take
    are still ignored (repeated or not), and the HomeWizard endpoints answer as before."""
    d, port, auth = token_daemon(tmp, "repeated")
    try:
        for path, name in (("/api/history?step=1h&step=raw", "step"),
                           ("/api/history?meter=s&meter=other", "meter"),
                           ("/api/history?from=2026-01-01&to=2026-01-02&from=2025-01-01", "from"),
                           ("/api/history?format=json&format=csv", "format"),
                           ("/api/history?fields=import_kwh&fields=gas_m3", "fields"),
                           ("/api/summary?period=day&period=month", "period"),
                           ("/api/summary?at=2026-01-01&at=2026-01-02", "at"),
                           ("/api/prices?to=2026-01-03&to=2026-01-04", "to"),
                           ("/api/now?access_token=s3cret&access_token=s3cret", "access_token"),
                           ("/api/history?access_token=s3cret&access_token=x", "access_token")):
            st, _, b = http(port, path, headers=None if "access_token" in path else auth)
            err = json.loads(b).get("error", {}) if b.startswith(b"{") else {}
            T.check("repeated: GET %s is 400 '%s given twice'" % (path, name),
                    st == 400 and err.get("code") == "bad_parameter" and
                    err.get("message", "").startswith(name + " given twice"), "%s %s" % (st, b))
        st, _, b = http(port, "/api/prices?kind=gas&kind=power", "PUT",
                        body=b"time,price\n2026-01-01T00:00,0.5\n",
                        headers=dict(auth, **{"Content-Type": "text/csv"}))
        T.check("repeated: PUT /api/prices?kind=gas&kind=power is 400",
                st == 400 and b"kind given twice" in b, "%s %s" % (st, b))
        for path in ("/api/meters?state=waiting&state=receiving", "/api/history?step=1h&x=1&x=2",
                     "/api/v1/data?x=1&x=2", "/api/now?access_token=s3cret"):
            st, _, b = http(port, path, headers=None if "access_token" in path else auth)
            T.check("repeated: GET %s still 200" % path, st == 200, "%s %s" % (st, b[:200]))
    finally:
        d.stop()


def test_param_names_case(tmp):
    """Query parameter names are case-sensitive (docs/API.md): ?STEP= is no step=, so it is
    ignored like any unknown parameter, and step=1h&STEP=raw is step=1h, not a second value
    hidden behind the first; on the worker (history) and on the loop (prices, access_token)."""
    d, port, auth = token_daemon(tmp, "case")
    try:
        rng = "from=2026-01-01T00:00Z&to=2026-01-01T06:00Z&fields=import_kwh"
        for q, step in (("STEP=raw", "1m"), ("step=1h&STEP=raw", "1h"), ("Step=raw&step=1h", "1h")):
            st, _, b = http(port, "/api/history?%s&%s" % (rng, q), headers=auth)
            got = json.loads(b).get("step") if st == 200 else None
            T.check("case: /api/history?%s is step %s" % (q, step), st == 200 and got == step,
                    "%s %s" % (st, b[:200]))
        st, _, b = http(port, "/api/prices?TO=2000-01-01", headers=auth)
        T.check("case: /api/prices?TO= is ignored (200)", st == 200, "%s %s" % (st, b[:200]))
        st, _, b = http(port, "/api/now?ACCESS_TOKEN=s3cret")
        T.check("case: ?ACCESS_TOKEN= is no access_token (401)", st == 401, "%s %s" % (st, b[:200]))
        st, _, b = http(port, "/api/now?access_token=s3cret&ACCESS_TOKEN=x")
        T.check("case: ?access_token= beside ?ACCESS_TOKEN= counts (200)", st == 200,
                "%s %s" % (st, b[:200]))
    finally:
        d.stop()


with tmpdir() as tmp:
    T.run((test_sse_drop_closes, test_connected_since, test_healthz, test_healthz_stale, test_healthz_stale_reload,
           test_405_messages, test_no_database, test_auth_scheme, test_no_meter,
           test_repeated_params, test_param_names_case), tmp)
T.done()
