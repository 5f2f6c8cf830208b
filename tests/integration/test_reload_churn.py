#!/usr/bin/env python3
"""test_reload_churn.py: meters removed, renamed and added back by 20 reloads while everything that
holds a meter is busy: an SSE stream on each meter and two on /api/stream (one that never reads),
a relay client, HTTP requests in flight (some abandoned half-sent), the store, and an MQTT
publisher restarted by [mqtt] changes (rate, discovery off and on, discovery_prefix and
topic_prefix moved twice) while its broker (persistent, as installed) is stopped, started and
frozen. Afterwards: p1d ran through it, every stream of a removed meter ended with its "removed"
event, /api/stream was told of each removal, and the broker holds no retained topic of a removed
meter and no config or value under a prefix p1d left. A compact form of a longer stress; run with
P1D=build/san/p1d for use-after-free."""
import os
import random
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, free_port, need_p1d, tmpdir,  # noqa: E402
                            write_conf)
from mqtt_helpers import need_mosquitto, persistent_broker, retained_now  # noqa: E402

T = Checks("test_reload_churn")
need_p1d(T)
need_mosquitto(T)

PREFIXES = ("homeassistant", "ha2", "ha3")
TOPIC_PREFIXES = ("p1d", "p1e", "p1f")
# One step per reload: meters removed, meters added, [mqtt] changes, what the broker does first.
STEPS = [
    (["b"], ["c", "d"], {}, None),
    (["c"], ["again"], {"rate_power": "1s"}, None),
    (["again", "d"], ["e"], {}, "stop"),
    ([], ["f"], {"discovery_prefix": "ha2", "topic_prefix": "p1e"}, None),  # moved, broker down
    (["e"], [], {"rate_power": "2s"}, None),             # and the publisher restarted again
    ([], ["again"], {}, "start"),
    (["f"], ["g", "h"], {}, None),
    (["again"], [], {}, "freeze"),                       # deleted into a frozen broker
    ([], [], {"rate_power": "0"}, "thaw"),               # ... and the publisher restarted
    (["g"], ["i"], {"discovery": "false"}, None),
    (["h"], ["again"], {}, None),
    ([], ["j"], {"discovery": "true", "discovery_prefix": "ha3", "topic_prefix": "p1f"}, "stop"),
    (["i", "again"], [], {"rate_power": "1s"}, None),
    (["j"], ["k", "l"], {}, "start"),
    (["k"], ["again"], {}, None),
    (["l", "a"], ["m"], {}, None),
    (["again"], ["n"], {"rate_power": "0"}, None),
    (["m"], ["again"], {}, None),
    (["n"], ["o"], {}, None),
    (["o"], [], {}, None),
]


def config(ports, db, names, mq):
    text = ("[http]\nlisten = 127.0.0.1:%d\n[store]\ndb = %s\n[log]\nlevel = info\n[relay]\n"
            "listen = 127.0.0.1:%d\n[mqtt]\nhost = 127.0.0.1\nport = %d\nstate_interval = 0\n"
            "reconnect_max = 1s\n" % (ports["http"], db, ports["relay"], ports["mqtt"]))
    text += "".join("%s = %s\n" % kv for kv in sorted(mq.items()))
    for i, n in enumerate(names):
        text += "[source %s]\nspec = sim:%d:speedup=10\n" % (n, i + 1)
    return text


class Stream(threading.Thread):
    """An SSE client collecting what arrives (or, reading=False, nothing after the headers)."""

    def __init__(self, port, path, reading=True):
        super().__init__(daemon=True)
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if not reading:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        self.s.settimeout(0.2)
        self.data = b""
        self.reading = reading
        self.quit = False
        self.start()

    def run(self):
        while not self.quit and self.reading:
            try:
                b = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not b:
                return
            self.data += b

    def ended(self):
        return self.data.endswith(b"\r\n0\r\n\r\n")

    def close(self):
        self.quit = True
        self.s.close()


class Busy(threading.Thread):
    """HTTP requests on every endpoint and meter name (some never finished or abandoned) and a
    relay client that comes and goes, until stopped."""

    def __init__(self, ports, names):
        super().__init__(daemon=True)
        self.ports = ports
        self.names = names
        self.rnd = random.Random(5)  # its own: the steps above stay fixed
        self.requests = 0
        self.relayed = 0
        self.quit = False
        self.start()

    def request(self, path):
        s = socket.create_connection(("127.0.0.1", self.ports["http"]), timeout=2)
        try:
            req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path.encode()
            how = self.rnd.random()
            if how < 0.15:
                s.sendall(req)  # headers never finished
                return
            s.sendall(req + b"\r\n")
            if how < 0.3:
                return  # gone before the answer
            s.settimeout(0.3 if path.endswith("stream") else 3)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            self.requests += 1
        finally:
            s.close()

    def run(self):
        relay = None
        while not self.quit:
            n = self.rnd.choice(list(self.names) or ["a"])
            path = self.rnd.choice(["/api/meters", "/api/now", "/api/v1/data", "/api/v1/telegram",
                                    "/p1.json", "/metrics", "/api/meters/%s" % n,
                                    "/api/meters/%s/now" % n, "/api/meters/%s/stream" % n,
                                    "/api/history?meter=%s" % n])
            try:
                self.request(path)
                if relay is None:
                    relay = socket.create_connection(("127.0.0.1", self.ports["relay"]), timeout=2)
                    relay.settimeout(0.05)
                try:
                    self.relayed += len(relay.recv(65536))
                except socket.timeout:
                    pass
                if self.rnd.random() < 0.1:
                    relay.close()
                    relay = None
            except OSError:
                relay = None
                time.sleep(0.05)
        if relay:
            relay.close()


def stale_topics(bport, current, mq):
    """Retained topics of meters not configured now, and configs or values under a prefix not used
    now (PREFIX/status stays by design)."""
    out = []
    for t in retained_now(bport, ["%s/#" % p for p in TOPIC_PREFIXES + PREFIXES]):
        parts = t.split("/")
        if parts[0] in TOPIC_PREFIXES and len(parts) > 2 and (
                parts[1] not in current or parts[0] != mq["topic_prefix"]):
            out.append(t)
        elif parts[0] in PREFIXES and len(parts) == 5 and parts[2].startswith("p1d_"):
            if (parts[2][4:] not in current or mq["discovery"] != "true" or
                    parts[0] != mq["discovery_prefix"]):
                out.append(t)
    return sorted(out)


def test_churn(tmp):
    ports = {"http": free_port(), "relay": free_port(), "mqtt": free_port()}
    db = os.path.join(tmp, "p1.db")
    conf = os.path.join(tmp, "p1d.conf")
    broker = persistent_broker(tmp, ports["mqtt"])
    mq = {"rate_power": "0", "discovery": "true", "discovery_prefix": "homeassistant",
          "topic_prefix": "p1d"}
    current = ["keep", "a", "b"]
    write_conf(conf, config(ports, db, current, mq))
    d = Daemon(["--config", conf], tmp)
    names = set(current)
    busy = None
    streams = []  # (stream, meter)
    removed = []
    try:
        T.check("p1d starts", d.http_port() == ports["http"], d.text()[-1500:])
        T.check("its meters deliver", d.wait_meter("b", lambda m: m.get("telegrams", 0) >= 1)
                is not None)
        everything = Stream(ports["http"], "/api/stream")
        stuck = Stream(ports["http"], "/api/stream", reading=False)
        busy = Busy(ports, names)
        for i, (gone, added, change, act) in enumerate(STEPS, 1):
            for n in current:
                streams.append((Stream(ports["http"], "/api/meters/%s/stream" % n), n))
            if act == "stop":
                broker.stop()
            elif act == "start":
                broker = persistent_broker(tmp, ports["mqtt"])
            elif act == "freeze":
                broker.proc.send_signal(signal.SIGSTOP)
            elif act == "thaw":
                time.sleep(1.2)  # the publisher sent its deletions into the frozen broker
            mq.update(change)
            current = [n for n in current if n not in gone] + added
            removed += gone
            write_conf(conf, config(ports, db, current, mq))
            d.signal(signal.SIGHUP)
            if not T.check("reload %d done" % i,
                           d.wait_log(r"reloaded .*\.conf: ", 10, count=i) is not None,
                           d.text()[-1500:]):
                return
            if act == "thaw":
                broker.proc.send_signal(signal.SIGCONT)
            names.clear()
            names.update(current)
            for n in added:
                d.wait_meter(n, lambda m: m.get("telegrams", 0) >= 1, 5)
            time.sleep(0.4)  # the publisher's tick (1 s) comes between some of the reloads
        busy.quit = True
        T.check("p1d ran through %d reloads" % len(STEPS), d.proc.poll() is None,
                d.text()[-2000:])
        T.check("the busy clients got answers (%d requests, %d relayed bytes)"
                % (busy.requests, busy.relayed), busy.requests > 5 and busy.relayed > 0)
        end = time.time() + 5
        while time.time() < end and not all(st.ended() for st, n in streams if n in removed
                                            and n not in current):
            time.sleep(0.1)
        ended = [(st, n) for st, n in streams if n in removed and n not in current]
        told = [n for st, n in ended
                if st.data.endswith(b'event: removed\ndata: {"meter":"%s"}\n\n\r\n0\r\n\r\n'
                                    % n.encode())]
        T.check("each of the %d streams of a meter removed since ended with its \"removed\" "
                "event" % len(ended), len(ended) > 20 and len(told) == len(ended),
                "%d of %d" % (len(told), len(ended)))
        T.check("the all-meters stream was told of each of the %d removals" % len(removed),
                everything.data.count(b"event: removed") == len(removed),
                "%d events" % everything.data.count(b"event: removed"))
        T.check("the meters are the configured ones", sorted(d.meters()) == sorted(current),
                str(sorted(d.meters())))
        end = time.time() + 10
        while True:
            left = stale_topics(ports["mqtt"], current, mq)
            if not left or time.time() > end:
                break
            time.sleep(0.3)
        T.check("the broker holds nothing of a removed meter nor under a prefix left behind",
                not left, "%d, e.g. %s" % (len(left), left[:4]))
        T.check("the meters kept are announced under %s/" % mq["discovery_prefix"],
                all(retained_now(ports["mqtt"], ("%s/#" % mq["discovery_prefix"],)).get(
                    "%s/sensor/p1d_%s/power_w/config" % (mq["discovery_prefix"], n))
                    for n in current))
        everything.close()
        stuck.close()
    finally:
        if busy:
            busy.quit = True
        for st, _ in streams:
            st.close()
        T.check("SIGTERM exits 0", d.stop() == 0, d.text()[-2000:])
        if broker.proc.poll() is None:
            broker.proc.send_signal(signal.SIGCONT)
        broker.stop()


with tmpdir() as tmp:
    T.run([test_churn], tmp)
T.done()
