#!/usr/bin/env python3
"""test_mqtt_lookup.py: the MQTT broker's host name is looked up off the event loop.
libmosquitto's connect looks the name up itself with getaddrinfo(), which blocks for the
resolver's whole timeout (10 s with one DNS server that does not answer: a router that is
down); on p1d's one loop that froze the serial input, the API and the store at every reconnect
(measured: 4 stalls of 10 s in 40 s, 18 of 43 telegrams of a 115200 baud meter lost to the
UART's 4 KiB buffer). An LD_PRELOAD shim makes the names slow: slow.p1d.test takes 3 s and
fails, good.p1d.test takes 300 ms and is 127.0.0.1, where a mosquitto listens. The API must
answer throughout; the good name still connects and publishes; the failing one is reported with
the resolver's reason; SIGTERM during a lookup exits at once."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (TWO_ADDR_SHIM, Checks, Daemon, build_shim, free_port,  # noqa: E402
                            http, need_p1d, slow_dns_shim, tmpdir, worst_latency)
from mqtt_helpers import Broker, Mqtt, need_mosquitto  # noqa: E402

T = Checks("test_mqtt_lookup")
need_p1d(T)
need_mosquitto(T)

SLOW_MS = 3000
SHIM_NAMES = {"slow.p1d.test": (SLOW_MS, "EAI_AGAIN"), "good.p1d.test": (300, "127.0.0.1")}


with tmpdir() as d:
    shim = slow_dns_shim(d, SHIM_NAMES)
    if not shim:
        T.done()
    env = {"LD_PRELOAD": shim, "ASAN_OPTIONS": "verify_asan_link_order=0"}

    # 1. A broker name the resolver never answers for: the loop keeps running.
    p = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db",
                os.path.join(d, "a.db"), "--mqtt-host", "slow.p1d.test",
                "--mqtt-reconnect-max", "1s"], d, env=env)
    try:
        hport = p.http_port()
        T.check("API up", hport is not None, p.text())
        worst = worst_latency(hport, 8)
        T.check("API answers while the broker's name is looked up (slowest %.2f s, a lookup "
                "takes %.1f s)" % (worst, SLOW_MS / 1000), worst < 1.0)
        T.check("the failed lookup is reported with the resolver's reason",
                p.wait_log(r"warn: mqtt: cannot connect to slow.p1d.test:1883 \(cannot look up "
                           r"slow.p1d.test: Temporary failure in name resolution\)", 5), p.text())
        m = p.wait_meter("home", lambda m: m.get("telegrams", 0) >= 8, 5)
        T.check("the simulator kept its pace (%s telegrams in ~10 s)"
                % (m or p.meter("home")).get("telegrams"), m is not None)
        t0 = time.time()
        code = p.stop()
        took = time.time() - t0
        T.check("SIGTERM during a lookup exits 0 at once (%.2f s)" % took,
                code == 0 and took < 2.0, p.text()[-600:])
    finally:
        p.stop()

    # 2. A name that resolves (slowly) still connects and publishes.
    bport = free_port()
    broker = Broker(d, bport).start()
    sub = None
    p = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "good.p1d.test",
                "--mqtt-port", str(bport)], d, env=env)
    try:
        T.check("API up (second daemon)", p.http_port() is not None, p.text())
        T.check("connects to the broker by its name",
                p.wait_log(r"info: mqtt: connected to good.p1d.test:%d" % bport, 10), p.text())
        sub = Mqtt(bport, topics=("p1d/#",))
        got = sub.wait(lambda m: m[1].startswith("p1d/home/"), 15)
        T.check("readings are published", got, str(sub.snapshot())[:400])
        # the broker restarts: the reconnect looks the name up again and gets through
        broker.stop()
        T.check("the loss is noticed", p.wait_log(r"mqtt: connection to good.p1d.test:%d lost"
                                                  % bport, 10), p.text())
        broker.start()
        T.check("reconnects by its name",
                p.wait_log(r"info: mqtt: connected to good.p1d.test:%d" % bport, 20, count=2),
                p.text())
        T.check("SIGTERM exits 0", p.stop() == 0, p.text()[-600:])
    finally:
        if sub:
            sub.close()
        p.stop()
        broker.stop()

    # 3. A name whose first address refuses (an AAAA record first, a broker on IPv4 alone): the
    # next attempt takes its second address. libmosquitto tries one address per connect; p1d
    # gave it the first every time and never connected.
    two = build_shim(d, "twoaddr", TWO_ADDR_SHIM)
    bport = free_port()
    broker = Broker(d, bport).start()
    p = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "two.p1d.test",
                "--mqtt-port", str(bport), "--mqtt-reconnect-max", "1s"], d,
               env={"LD_PRELOAD": two, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        T.check("API up (two addresses)", two and p.http_port() is not None, p.text())
        T.check("a broker name whose first address refuses connects at its second",
                p.wait_log(r"info: mqtt: connected to two.p1d.test:%d" % bport, 10), p.text())
        T.check("SIGTERM exits 0 (two addresses)", p.stop() == 0, p.text()[-600:])
    finally:
        p.stop()
        broker.stop()

T.done()
