#!/usr/bin/env python3
"""test_relay_reload.py: without [relay] meter the relay sends the first source. A reload that
removes that source must not switch the connected clients to another meter's telegrams in
mid-stream: the relay restarts on the new first source, says so, and its clients reconnect. Nor
must a reload that keeps the first source's name but points it elsewhere (another dongle, so
another meter): that too restarts the relay."""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, fake_dongle, need_p1d, telegram, tmpdir  # noqa: E402

T = Checks("test_relay_reload")
need_p1d(T)


def recv_all(sock, timeout):
    """What arrives within timeout seconds, and whether the relay closed the connection."""
    sock.settimeout(0.2)
    got, closed = b"", False
    end = time.time() + timeout
    while time.time() < end:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not b:
            closed = True
            break
        got += b
    return got, closed


with tmpdir() as d:
    dongle = fake_dongle()
    conf = os.path.join(d, "p1d.conf")
    base = ("[http]\nlisten = 127.0.0.1:0\n%s[source b]\nspec = tcp:127.0.0.1:%d\n"
            "[relay]\nlisten = 127.0.0.1:0\n")
    with open(conf, "w") as f:
        f.write(base % ("[source a]\nspec = stdin\n", dongle.getsockname()[1]))
    p = Daemon(["--config", conf], d, stdin=subprocess.PIPE)
    conn = client = None
    try:
        m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\), relaying meter a")
        T.check("relaying meter a (the first source)", m is not None, p.text())
        conn, _ = dongle.accept()
        client = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5)
        T.check("client connected", p.wait_log(r"relay: client .* connected", 5))
        time.sleep(0.2)
        p.proc.stdin.write(telegram(1))
        p.proc.stdin.flush()
        conn.sendall(telegram(2000))
        got, _ = recv_all(client, 1)
        T.check("the client gets meter a's telegram only", got == telegram(1), repr(got[:60]))

        with open(conf, "w") as f:
            f.write(base % ("", dongle.getsockname()[1]))
        p.signal(signal.SIGHUP)
        T.check("reloaded", p.wait_log(r"reloaded .*: 0 sources added, 0 changed, 1 removed", 5),
                p.text())
        m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\), relaying meter b", 5,
                       count=1)
        T.check("the relay says it now relays meter b", m is not None, p.text())
        conn.sendall(telegram(2001))
        got, closed = recv_all(client, 1.5)
        T.check("meter a's client never gets meter b's telegrams", telegram(2001) not in got,
                repr(got[:60]))
        T.check("... it is closed, to reconnect", closed)
        if m:
            c2 = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5)
            time.sleep(0.3)
            conn.sendall(telegram(2002))
            got, _ = recv_all(c2, 1)
            c2.close()
            T.check("a new client gets meter b's telegrams", got == telegram(2002), repr(got[:60]))
    finally:
        for s in (client, conn):
            if s:
                s.close()
        dongle.close()
        T.check("SIGTERM exits 0", p.stop() == 0, p.text())

with tmpdir() as d:
    one, two = fake_dongle(), fake_dongle()
    conf = os.path.join(d, "p1d.conf")
    base = ("[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = tcp:127.0.0.1:%d\n"
            "[relay]\nlisten = 127.0.0.1:0\n")
    with open(conf, "w") as f:
        f.write(base % one.getsockname()[1])
    p = Daemon(["--config", conf], d)
    conns, client = [], None
    try:
        m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\), relaying meter a")
        T.check("spec change: relaying meter a", m is not None, p.text())
        conns.append(one.accept()[0])
        client = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5)
        T.check("spec change: client connected", p.wait_log(r"relay: client .* connected", 5))
        time.sleep(0.2)
        conns[0].sendall(telegram(1))
        got, _ = recv_all(client, 1)
        T.check("spec change: the client gets the first dongle's telegram", got == telegram(1),
                repr(got[:60]))

        with open(conf, "w") as f:
            f.write(base % two.getsockname()[1])
        p.signal(signal.SIGHUP)
        T.check("spec change: reloaded", p.wait_log(r"reloaded .*: 0 sources added, 1 changed", 5),
                p.text())
        m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\), relaying meter a", 5,
                       count=2)
        T.check("spec change: the relay restarts", m is not None, p.text())
        conns.append(two.accept()[0])
        time.sleep(0.2)
        conns[1].sendall(telegram(3001))
        got, closed = recv_all(client, 1.5)
        T.check("spec change: the old client never gets the other dongle's telegrams",
                telegram(3001) not in got, repr(got[:60]))
        T.check("spec change: ... it is closed, to reconnect", closed)
        if m:
            c2 = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5)
            time.sleep(0.3)
            conns[1].sendall(telegram(3002))
            got, _ = recv_all(c2, 1)
            c2.close()
            T.check("spec change: a new client gets the new source's telegrams",
                    got == telegram(3002), repr(got[:60]))
    finally:
        for s in conns + [client]:
            if s:
                s.close()
        one.close()
        two.close()
        T.check("SIGTERM exits 0 (spec change)", p.stop() == 0, p.text())
T.done()
