#!/usr/bin/env python3
"""test_tcp_lookup.py: a tcp: source's host name is looked up off the event loop. A resolver that
takes 2 s (DNS down or slow; here an LD_PRELOAD shim for the name slow.p1d.test) must not freeze
the API, the other meters or the relay, on start or on each reconnect; the name still connects,
an unknown name is reported and retried, and a lookup in flight does not hold up SIGTERM; a
reload that removes the source while its lookup runs leaves nothing behind (run it with
P1D=build/san/p1d: the thread then finishes alone and frees the answer). A name with two
addresses whose first refuses (an IPv6 address first, a dongle listening on IPv4 alone) connects
to the second."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (TWO_ADDR_SHIM, Checks, Daemon, build_shim, fake_dongle, http,  # noqa: E402
                            need_p1d, slow_dns_shim, telegram, tmpdir, worst_latency)

T = Checks("test_tcp_lookup")
need_p1d(T)

SLOW_MS = 2000
SHIM_NAMES = {"slow.p1d.test": (SLOW_MS, "127.0.0.1"), "gone.p1d.test": (SLOW_MS, "EAI_NONAME")}


def serve(dongle, stop, conns):
    """Each connection gets two telegrams and is closed: p1d reconnects (and looks up) again."""
    dongle.settimeout(0.2)
    i = 0
    while not stop.is_set():
        try:
            c, _ = dongle.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        conns.append(1)
        try:
            c.sendall(telegram(i) + telegram(i + 1))
            time.sleep(0.2)
        except OSError:
            pass
        c.close()
        i += 2


def serving_dongle():
    """A fake dongle that serve() runs on a thread: (socket, port, stop event, connections)."""
    dongle = fake_dongle()
    stop = threading.Event()
    conns = []
    threading.Thread(target=serve, args=(dongle, stop, conns), daemon=True).start()
    return dongle, dongle.getsockname()[1], stop, conns


with tmpdir() as d:
    shim = slow_dns_shim(d, SHIM_NAMES)
    if not shim:
        T.done()
    dongle, dport, stop, conns = serving_dongle()
    p = Daemon(["--source", "a=tcp:slow.p1d.test:%d:reconnect_min=100ms:reconnect_max=100ms" % dport,
                "--source", "g=tcp:gone.p1d.test:%d:reconnect_min=100ms:reconnect_max=100ms" % dport,
                "--source", "b=stdin", "--listen", "127.0.0.1:0"], d,
               stdin=subprocess.PIPE,
               env={"LD_PRELOAD": shim, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        hport = p.http_port()
        T.check("API up", hport is not None, p.text())
        p.proc.stdin.write(telegram(1))
        p.proc.stdin.flush()
        worst = worst_latency(hport, 5, step=0.02)
        T.check("API answers while names are looked up (slowest %.2f s, lookups take %.1f s)"
                % (worst, SLOW_MS / 1000), worst < 0.5)
        T.check("the slow name connects and decodes",
                p.wait_meter("a", lambda m: m.get("telegrams", 0) >= 2, 10) is not None,
                p.text())
        T.check("reconnects look the name up again", len(conns) >= 2, "%d connections" % len(conns))
        T.check("an unknown name is reported and retried",
                p.wait_log(r"warn: g: cannot resolve gone.p1d.test \(Name or service not known\); "
                           r"retrying", 5), p.text())
        # stdin meter b is served throughout.
        p.proc.stdin.write(telegram(2))
        p.proc.stdin.flush()
        T.check("the other meter is served",
                p.wait_meter("b", lambda m: m.get("telegrams", 0) >= 2, 5) is not None)
        t0 = time.time()
        code = p.stop()
        took = time.time() - t0
        T.check("SIGTERM during a lookup exits 0 at once (%.2f s)" % took, code == 0 and took < 1.5,
                p.text()[-600:])
    finally:
        stop.set()
        p.stop()
        dongle.close()

    conf = os.path.join(d, "p1d.conf")
    with_a = "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = tcp:slow.p1d.test:1\n"
    with open(conf, "w") as f:
        f.write(with_a + "[source b]\nspec = stdin\n")
    p = Daemon(["--config", conf], d, stdin=subprocess.PIPE,
               env={"LD_PRELOAD": shim, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        T.check("API up (second daemon)", p.http_port() is not None, p.text())
        with open(conf, "w") as f:
            f.write("[http]\nlisten = 127.0.0.1:0\n[source b]\nspec = stdin\n")
        p.signal(signal.SIGHUP)
        T.check("source removed while its name is looked up",
                p.wait_log(r"a: removed from the configuration; stopped", 5), p.text())
        time.sleep(SLOW_MS / 1000 + 0.5)  # the orphaned lookup finishes meanwhile
        with open(conf, "w") as f:
            f.write(with_a + "[source b]\nspec = stdin\n")
        p.signal(signal.SIGHUP)
        T.check("added again, it is looked up and tried",
                p.wait_log(r"warn: a: cannot connect to slow.p1d.test:1 \(Connection refused\)",
                           SLOW_MS / 1000 + 3), p.text())
    finally:
        code = p.stop()
        T.check("SIGTERM exits 0, nothing reported", code == 0 and "Sanitizer" not in p.text(),
                p.text()[-1500:])

    two = build_shim(d, "twoaddr", TWO_ADDR_SHIM)
    dongle, dport, stop, conns = serving_dongle()
    p = Daemon(["--source", "two=tcp:two.p1d.test:%d:reconnect_min=100ms:reconnect_max=200ms"
                % dport, "--listen", "127.0.0.1:0"], d,
               env={"LD_PRELOAD": two, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        T.check("API up (two addresses)", two and p.http_port() is not None, p.text())
        T.check("a name whose first address refuses connects to its second and decodes",
                p.wait_meter("two", lambda m: m.get("telegrams", 0) >= 2, 5) is not None,
                p.text()[-1500:])
    finally:
        stop.set()
        code = p.stop()
        dongle.close()
    T.check("SIGTERM exits 0 (two addresses)", code == 0 and "Sanitizer" not in p.text(),
            p.text()[-1500:])
T.done()
