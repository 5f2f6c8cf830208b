#!/usr/bin/env python3
"""test_relay_reload.py: without [relay] meter the relay sends the first source. A reload that
removes that source must not switch the connected clients to another meter's telegrams in
mid-stream: the relay restarts on the new first source, says so, and its clients reconnect. Nor
must a reload that keeps the first source's name but points it elsewhere (another dongle, so
another meter): that too restarts the relay. A reload that moves the relay to another address
on the same port (127.0.0.1 written as localhost, 0.0.0.0 narrowed to 127.0.0.1) listens there,
not "Address already in use" against p1d's own listener; when another program has the new
address, the old one is kept."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, fake_dongle, free_port, need_p1d, telegram,  # noqa: E402
                            tmpdir, write_conf)

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


def loopback_spellings():
    """(literal, name, family): the address localhost resolves to for a listener first (as the
    relay binds it), written as a number and as the name."""
    fam, _, _, _, sa = socket.getaddrinfo("localhost", 0, 0, socket.SOCK_STREAM, 0,
                                          socket.AI_PASSIVE)[0]
    return ("[%s]" % sa[0] if fam == socket.AF_INET6 else sa[0]), "localhost", fam


def relays_on(host, fam, port):
    """Whether a client at host:port is sent a telegram within 5 s (the simulated meter)."""
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((host, port))
            return s.recv(64).startswith(b"/")
    except OSError:
        return False


def same_port_moves(d):
    """The relay moves between spellings of one address on one port, and back, by SIGHUP."""
    literal, name, fam = loopback_spellings()
    host = literal.strip("[]")
    port = free_port()
    conf = os.path.join(d, "same-port.conf")
    base = "[http]\nlisten = 127.0.0.1:0\n[source s]\nspec = sim\n[relay]\nlisten = %s:%d\n"
    write_conf(conf, base % (literal, port))
    p = Daemon(["--config", conf], d)
    other = None
    try:
        T.check("same port: relaying", p.wait_log(r"relay: listening on \S+:%d " % port, 5) and
                relays_on(host, fam, port), p.text())
        for n, spelling in enumerate((name, literal), 1):
            write_conf(conf, base % (spelling, port))
            p.signal(signal.SIGHUP)
            T.check("same port: reload to %s:%d listens there" % (spelling, port),
                    p.wait_log(r"relay: listening on %s:%d " % (re.escape(spelling), port), 5), p.text())
            T.check("same port: reload to %s: reloaded, nothing failed" % spelling,
                    p.wait_log(r"info: reloaded ", 5, count=n) and "part failed" not in p.text(),
                    p.text())
            T.check("same port: %s: a client is relayed to" % spelling, relays_on(host, fam, port))
        # another program has the new address: the relay stays where it was
        other = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        other.bind(("::1", port))
        other.listen(1)
        write_conf(conf, base % ("[::1]", port))
        p.signal(signal.SIGHUP)
        T.check("same port, taken elsewhere: says so and keeps the old address",
                p.wait_log(r"error: reload: relay: cannot listen on \[::1\]:%d: Address already in "
                           r"use; keeping the relay on %s:%d" % (port, re.escape(literal), port), 5),
                p.text())
        T.check("same port, taken elsewhere: still relayed to", relays_on(host, fam, port))
    finally:
        if other:
            other.close()
        T.check("same port: SIGTERM exits 0", p.stop() == 0, p.text())


with tmpdir() as d:
    same_port_moves(d)
T.done()
