#!/usr/bin/env python3
"""test_reload_memory.py: a meter removed by a reload (SIGHUP) gives its memory back. Fifty reloads
add and remove sim meters (new names each time, and one name removed and added again) with the
history store and an MQTT broker; a stream of a removed meter ends with a "removed" event, an
all-meters stream stays open and is told; the RSS stays bounded (before: about 70 KB kept per
removed meter, for good); the removed meters' rows stay in the store; a name added again is a new
meter. Run with P1D=build/san/p1d for use-after-free (the RSS bound is skipped there: ASan holds
freed memory in quarantine). RELOAD_CYCLES=N runs N reloads instead of 50."""
import os
import signal
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import P1D, Checks, Daemon, free_port, need_p1d, tmpdir  # noqa: E402
from mqtt_helpers import MOSQUITTO, Broker, Mqtt, retained_now  # noqa: E402

T = Checks("test_reload_memory")
need_p1d(T)

CYCLES = int(os.environ.get("RELOAD_CYCLES", "50"))
CHURN = 4            # meters added and removed per reload, each under a new name
WARMUP = 10          # reloads before the first RSS reading: SQLite's cache and malloc settle
RSS_GROWTH_MAX_KB = 3000  # over the last 40 reloads; keeping each removed meter is ~11,000 KB
SAN = "/san/" in P1D
RESTART_MQTT = 25    # the reload that also changes [mqtt]


def write_conf(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stream:
    """A raw SSE client on 127.0.0.1: collects what arrives, tells a clean end (the chunked
    terminator) from a reset."""

    def __init__(self, port, path):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                       % path.encode())
        self.s.setblocking(False)
        self.data = b""
        self.closed = None  # None open, "eof" the peer closed, "reset"

    def poll(self):
        while self.closed is None:
            try:
                b = self.s.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self.closed = "reset"
                return
            if not b:
                self.closed = "eof"
                return
            self.data += b

    def wait(self, pred, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            self.poll()
            if pred(self):
                return True
            time.sleep(0.02)
        self.poll()
        return pred(self)

    def ended_cleanly(self):
        return self.data.endswith(b"0\r\n\r\n")

    def close(self):
        self.s.close()


def meter_of(topic):
    """The meter of p1d/METER/... and homeassistant/COMPONENT/p1d_METER/FIELD/config."""
    parts = topic.split("/")
    if parts[0] == "p1d" and len(parts) > 2:
        return parts[1]
    if len(parts) == 5 and parts[2].startswith("p1d_"):
        return parts[2][4:]
    return None


def config(port, db, broker_port, names, rate="0"):
    text = ("[http]\nlisten = 127.0.0.1:%d\n[store]\ndb = %s\n[log]\nlevel = info\n"
            "[source keep]\nspec = sim:1:speedup=10\n" % (port, db))
    if broker_port:
        text += ("[mqtt]\nhost = 127.0.0.1\nport = %d\nrate_power = %s\nstate_interval = 0\n"
                 % (broker_port, rate))
    for i, n in enumerate(names):
        text += "[source %s]\nspec = sim:%d:speedup=10\n" % (n, 2 + i)
    return text


def churn(tmp):
    port = free_port()
    db = os.path.join(tmp, "p1.db")
    conf = os.path.join(tmp, "p1d.conf")
    broker = sub = None
    broker_port = 0
    if os.access(MOSQUITTO, os.X_OK):
        broker_port = free_port()
        broker = Broker(tmp, broker_port, name="reload-memory").start()
        sub = Mqtt(broker_port, topics=("homeassistant/#",))
    write_conf(conf, config(port, db, broker_port, ["again"]))
    d = Daemon(["--config", conf], tmp)
    all_stream = None
    streams = []  # (stream, meter name) of meters about to be removed
    done = []     # (data, how it closed, meter name) of those that ended, closed by us
    rss = {}
    removed_names = []
    announced = False
    try:
        T.check("p1d starts", d.http_port() == port, d.text()[-1500:])
        T.check("the first meters deliver",
                d.wait_meter("again", lambda m: m.get("telegrams", 0) >= 1) is not None)
        all_stream = Stream(port, "/api/stream")
        current = ["again"]
        for cycle in range(1, CYCLES + 1):
            # every 5th reload: a stream on each meter that the next reload removes
            if cycle % 5 == 0:
                for n in current:
                    streams.append((Stream(port, "/api/meters/%s/stream" % n), n))
                for st, n in streams:
                    st.wait(lambda s: b"event: reading" in s.data, 5)
                    all_stream.poll()
            names = ["c%d_%d" % (cycle, j) for j in range(CHURN)]
            if cycle % 2 == 0:
                names.append("again")  # removed by the odd reloads, added by the even ones
            removed_names += [n for n in current if n not in names]
            # reload 25 also restarts the MQTT publisher: the new one must retract c24_*
            write_conf(conf, config(port, db, broker_port, names,
                                    "1s" if cycle >= RESTART_MQTT else "0"))
            d.signal(signal.SIGHUP)
            if not d.wait_log(r"reloaded .*p1d.conf: ", 10, count=cycle):
                T.check("reload %d logged" % cycle, False, d.text()[-1500:])
                return
            current = names
            # each new meter delivers a reading: its ring, caches, SSE ring and store state exist
            for n in names:
                d.wait_meter(n, lambda m: m.get("telegrams", 0) >= 1, 5)
            all_stream.poll()
            if sub and cycle == RESTART_MQTT - 1:
                announced = sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_c%d_0/power_w/"
                                     "config" % cycle and m[2], 5) is not None
            # a client hangs up once its stream ended, as EventSource does (its reconnect: 404)
            end = time.time() + 3
            for st, n in list(streams):
                if n in names:
                    continue
                ended = st.wait(lambda s: s.closed or s.ended_cleanly(), max(0, end - time.time()))
                done.append((st.data, st.closed if ended else "open", n))
                st.close()
                streams.remove((st, n))
            if cycle == WARMUP:
                rss["warm"] = rss_kb(d.proc.pid)
            if cycle % 10 == 0:
                print("note: reload %d: RSS %d KB" % (cycle, rss_kb(d.proc.pid)))
        rss["end"] = rss_kb(d.proc.pid)
        T.check("p1d survived %d reloads with streams open" % CYCLES, d.proc.poll() is None,
                d.text()[-2000:])
        meters = d.meters()
        T.check("removed meters are gone from /api/meters",
                sorted(meters) == sorted(["keep"] + current), str(sorted(meters)))
        T.check("each reload logged its removals",
                d.text().count("removed from the configuration; stopped") == len(removed_names),
                "%d != %d" % (d.text().count("removed from the configuration; stopped"),
                              len(removed_names)))
        # the streams of removed meters: a final event, then a clean end
        ended = [n for _, how, n in done if how != "open"]
        T.check("%d streams of removed meters ended" % len(done), len(done) >= 10 and
                len(ended) == len(done), "%d of %d" % (len(ended), len(done)))
        told = [n for data, _, n in done
                if data.endswith(b'event: removed\ndata: {"meter":"%s"}\n\n\r\n0\r\n\r\n'
                                 % n.encode())]
        T.check("each got a final \"removed\" event naming its meter, then the end of the "
                "chunked body (no reset)", len(told) == len(done),
                "%d of %d; e.g. %r" % (len(told), len(done), done[0][0][-120:] if done else b""))
        all_stream.poll()
        T.check("the all-meters stream stays open and was told of every removal",
                all_stream.closed is None and
                all_stream.data.count(b"event: removed") == len(removed_names),
                "%s, %d events of %d" % (all_stream.closed,
                                         all_stream.data.count(b"event: removed"),
                                         len(removed_names)))
        # the name removed and added again is a new meter that works
        a = d.wait_meter("again", lambda m: m.get("telegrams", 0) >= 2, 5)
        T.check("a meter added again under a removed name delivers", a is not None,
                str(d.meter("again")))
        st = Stream(port, "/api/meters/again/stream")
        T.check("... and streams", st.wait(lambda s: b"id: again:" in s.data, 5), st.data[-200:])
        st.close()
        if sub:
            # every removed meter's retained configs and values go (sent on the next ticks)
            gone = set(removed_names) - set(current)
            end = time.time() + 10
            while True:
                left = sorted(t for t in retained_now(broker_port, ("homeassistant/#", "p1d/#"))
                              if meter_of(t) in gone)
                if not left or time.time() > end:
                    break
            T.check("mqtt: none of the %d removed meters' retained configs and values remain"
                    % len(gone), not left, str(left[:5]))
            T.check("mqtt: c%d_*, announced and then removed by the reload that restarted the "
                    "publisher, were deleted too" % (RESTART_MQTT - 1), announced and
                    not [t for t in left if "c%d_" % (RESTART_MQTT - 1) in t], str(announced))
            T.check("mqtt: the meter added again is announced after its last removal",
                    retained_now(broker_port, ("homeassistant/#",)).get(
                        "homeassistant/sensor/p1d_again/power_w/config"))
        if SAN:
            print("note: RSS %d KB after reload %d, %d KB after %d (ASan: no bound)"
                  % (rss.get("warm", 0), WARMUP, rss["end"], CYCLES))
        else:
            grown = rss["end"] - rss["warm"]
            per = grown * 1.0 / ((CYCLES - WARMUP) * (CHURN + 0.5))
            print("note: RSS %d KB after reload %d, %d KB after %d: %+d KB, %.1f KB per removed "
                  "meter" % (rss["warm"], WARMUP, rss["end"], CYCLES, grown, per))
            T.check("RSS stays bounded over %d reloads that removed %d meters (grew %d KB, at "
                    "most %d)" % (CYCLES - WARMUP, len(removed_names), grown, RSS_GROWTH_MAX_KB),
                    grown <= RSS_GROWTH_MAX_KB, str(rss))
    finally:
        for st, _ in streams:
            st.close()
        if all_stream:
            all_stream.close()
        T.check("SIGTERM exits 0", d.stop() == 0, d.text()[-2000:])
        if sub:
            sub.close()
        if broker:
            broker.stop()
    # nothing stored is lost: every removed meter keeps its rows
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        have = {r[0] for r in con.execute(
            "SELECT name FROM meters m WHERE EXISTS (SELECT 1 FROM raw r WHERE r.meter = m.id)")}
    finally:
        con.close()
    missing = sorted(set(removed_names) - have)
    T.check("the store keeps the rows of all %d removed meters" % len(set(removed_names)),
            not missing, str(missing[:5]))


with tmpdir() as tmp:
    T.run([churn], tmp)
T.done()
