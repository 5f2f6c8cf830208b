#!/usr/bin/env python3
"""test_http_limits.py: one client must not lock the others out of the HTTP server: a client
address holds at most [http] max_connections_per_ip connections (idle ones, streams, a script
that never closes), loopback (a reverse proxy on the machine, the benchmarks) excepted; a
request body that trickles in is cut off like slow headers; and running out of file descriptors
neither stops the server for good nor spins the loop."""
import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, run, tmpdir  # noqa: E402

T = Checks("test_http_limits")
need_p1d(T)

REQ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STREAM = b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connect(port, src="127.0.0.1"):
    """A connection to p1d on 127.0.0.1 from the loopback address src (127.0.0.2 is another
    client to p1d; Linux routes all of 127/8 to lo)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def answer(s, request=REQ):
    """The status line p1d answers on s, b"" when it closed the connection without one."""
    try:
        s.sendall(request)
        data = s.recv(4096)
    except OSError:
        data = b""
    return data.split(b"\r\n")[0]


def closed(s, within=3.0):
    """True when p1d closes s (EOF or reset) within the time, without sending anything."""
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def start(tmp, what, *args):
    """A simulated meter's p1d with args; None (and a failed check) when it does not start."""
    listen = [] if "--listen" in args else ["--listen", "127.0.0.1:0"]  # once: twice is an error
    d = Daemon(["--source", "s=sim"] + listen + list(args), tmp)
    if d.http_port() is None:
        T.check("%s: the daemon starts" % what, False, d.text()[-800:])
        d.stop()
        return None
    return d


def stop(d, socks):
    """Closes the test's connections, then the daemon."""
    for s in socks:
        s.close()
    d.stop()


def test_per_ip(tmp):
    d = start(tmp, "per ip", "--http-max-connections", "200", "--http-max-connections-per-ip", "8",
              "--http-per-ip-exempt", "")
    if not d:
        return
    held = []
    try:
        port = d.port
        held = [connect(port) for _ in range(8)]
        time.sleep(0.3)
        extra = connect(port)
        T.check("per ip: the 9th connection of one address is closed at once", closed(extra),
                "still open")
        extra.close()
        T.check("per ip: the refusal is logged with the address and the key",
                d.wait_log(r"warn: http: refused a connection from 127\.0\.0\.1: it has 8 open, "
                           r"the most \[http\] max_connections_per_ip allows", 3) is not None,
                d.text()[-800:])
        other = connect(port, "127.0.0.2")
        T.check("per ip: another address is still served", answer(other) == b"HTTP/1.1 200 OK",
                "no answer")
        other.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        with other.makefile("rb") as f:  # Connection: close: read to the end
            text = f.read()
        other.close()
        T.check("per ip: /metrics counts the refusal and the connections open (8 + its own)",
                b"\np1d_http_connections_refused_total 1\n" in text and
                b"\np1d_http_connections 9\n" in text, text[-600:])
        T.check("per ip: the 8 connections held are served",
                all(answer(s) == b"HTTP/1.1 200 OK" for s in held[:2]), "no answer")
        # Streams count too: 8 streams take the address's share, the 9th never gets an answer.
        for s in held:
            s.close()
        time.sleep(0.5)
        held = [connect(port) for _ in range(8)]
        ok = sum(answer(s, STREAM) == b"HTTP/1.1 200 OK" for s in held)
        T.check("per ip: 8 streams of one address open", ok == 8, ok)
        extra = connect(port)
        T.check("per ip: a 9th stream is refused", answer(extra, STREAM) == b"", "answered")
        extra.close()
        held.pop().close()  # one stream ends: p1d sees it at its next event (1 s)
        end, st = time.time() + 5, b""
        while st != b"HTTP/1.1 200 OK" and time.time() < end:
            time.sleep(0.3)
            again = connect(port)
            st = answer(again, STREAM)
            held.append(again)
        T.check("per ip: a closed connection gives its place back", st == b"HTTP/1.1 200 OK", st)
    finally:
        stop(d, held)


def test_lockout(tmp):
    """A script that opens connections and never sends anything (slowloris, or a bug) used to be
    able to hold every connection: other clients then waited unanswered in the listen backlog."""
    d = start(tmp, "lockout", "--http-max-connections", "40", "--http-per-ip-exempt", "")
    if not d:
        return
    held = []
    try:
        port = d.port
        for _ in range(60):
            try:
                held.append(connect(port))
            except OSError:
                break
        time.sleep(0.5)
        other = connect(port, "127.0.0.2")
        T.check("lockout: with 60 idle connections of one address another client is answered",
                answer(other) == b"HTTP/1.1 200 OK", "no answer")
        other.close()
        T.check("lockout: the default limit is half of max_connections (20 of 40 kept open)",
                sum(not closed(s, 0.05) for s in held) == 20, "")
    finally:
        stop(d, held)


def test_loopback_exempt(tmp):
    """Loopback is not limited by default: a reverse proxy on the machine brings every client
    from 127.0.0.1, and the benchmarks open 1000 streams from there."""
    d = start(tmp, "loopback", "--http-max-connections", "300")
    if not d:
        return
    held = []
    try:
        port = d.port
        for src in ("127.0.0.1", "127.0.0.2"):
            socks = [connect(port, src) for _ in range(80)]
            held += socks
            ok = sum(answer(s, STREAM) == b"HTTP/1.1 200 OK" for s in socks)
            T.check("loopback: 80 streams from %s (above the default 64 per address)" % src,
                    ok == 80, ok)
    finally:
        stop(d, held)
    d = start(tmp, "exempt list", "--http-max-connections", "100", "--http-max-connections-per-ip",
              "4", "--http-per-ip-exempt", "127.0.0.2")
    if not d:
        return
    held = []
    try:
        port = d.port
        socks = [connect(port, "127.0.0.2") for _ in range(10)]
        held += socks
        ok = sum(answer(s) == b"HTTP/1.1 200 OK" for s in socks)
        T.check("exempt list: a listed address (a proxy) holds 10 with a limit of 4", ok == 10, ok)
        socks = [connect(port, "127.0.0.1") for _ in range(5)]
        held += socks
        ok = sum(answer(s) == b"HTTP/1.1 200 OK" for s in socks)
        T.check("exempt list: an address not listed holds 4", ok == 4, ok)
    finally:
        stop(d, held)


def test_config(tmp):
    for bad in ("localhost", "10.0.0.0/33", "::1/129", "1.2.3.4/", "fd00::/x"):
        code, _, err = run(["--source", "s=sim", "--http-per-ip-exempt", bad, "--check-config"])
        T.check("config: per_ip_exempt = %s is refused" % bad,
                code == 2 and "per_ip_exempt" in err and "no IP address or prefix" in err, err)
    code, out, err = run(["--source", "s=sim", "--http-per-ip-exempt",
                          "192.168.1.5, 10.0.0.0/8 fd00::/64,::1", "--check-config"])
    T.check("config: a list of addresses and prefixes passes", code == 0, err)
    code, out, err = run(["--source", "s=sim", "--check-config"])
    T.check("config: the defaults are 64 and loopback",
            "max_connections_per_ip = 64" in out and "per_ip_exempt = 127.0.0.0/8, ::1" in out,
            out[-1500:])


def test_slow_body(tmp):
    """A body sent a byte at a time never leaves MHD idle, so only a deadline ends it."""
    d = start(tmp, "slow body", "--http-timeout", "2s", "--db", os.path.join(tmp, "slow.db"))
    if not d:
        return
    try:
        port = d.port
        s = connect(port)
        s.sendall(b"PUT /api/prices?kind=power HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\ntime,price\n")
        t0, alive = time.time(), True
        while alive and time.time() - t0 < 8:
            time.sleep(0.5)
            try:
                s.sendall(b"1")
            except OSError:
                alive = False
                break
            s.settimeout(0.01)
            try:
                alive = s.recv(1) != b""
            except socket.timeout:
                pass
            except OSError:
                alive = False
        s.close()
        took = time.time() - t0
        T.check("slow body: a body of 2 bytes a second is cut off (%.1f s)" % took,
                not alive and took < 6, took)
        body = b"time,price\n2030-01-01T10:00,0.25\n" * 1 + b"\n" * 3000
        s = connect(port)
        s.sendall(b"PUT /api/prices?kind=power HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  b"text/csv\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        for i in range(0, len(body), 1000):  # 3 kB over 1.5 s, above the minimum rate
            s.sendall(body[i:i + 1000])
            time.sleep(0.5)
        T.check("slow body: a body that keeps coming is taken",
                answer(s, b"") == b"HTTP/1.1 200 OK", "cut off")
        s.close()
    finally:
        d.stop()


def test_dual_stack(tmp):
    """On a dual-stack listener ([::]) IPv4 clients arrive as ::ffff:a.b.c.d: they are counted
    and matched against per_ip_exempt by their IPv4 address, IPv6 ones by theirs."""
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        print("SKIP: no IPv6")
        return
    for exempt, free, limited in (("::1", "::1", "127.0.0.1"), ("127.0.0.0/8", "127.0.0.1", "::1")):
        d = start(tmp, "dual stack", "--listen", "[::]:0", "--http-max-connections-per-ip", "2",
                  "--http-per-ip-exempt", exempt)
        if not d:
            return
        held = []
        try:
            for addr, want in ((free, 3), (limited, 2)):
                for _ in range(3):
                    s = socket.create_connection((addr, d.port), timeout=3)
                    held.append(s)
                    time.sleep(0.1)  # in order: the third is the one over the limit
                ok = sum(answer(s) == b"HTTP/1.1 200 OK" for s in held[-3:])
                T.check("dual stack, per_ip_exempt = %s: %s holds %d of 3" % (exempt, addr, want),
                        ok == want, ok)
        finally:
            stop(d, held)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served_again(port, within):
    """True when a new connection to port gets a 200 within the time."""
    end = time.time() + within
    while time.time() < end:
        try:
            s = connect(port)
            try:
                if answer(s) == b"HTTP/1.1 200 OK":
                    return True
            finally:
                s.close()
        except OSError:
            pass
        time.sleep(0.2)
    return False


def test_out_of_descriptors(tmp):
    """Bug: out of file descriptors (RLIMIT_NOFILE 40), libmicrohttpd takes its listening socket
    out of its epoll set until a connection closes and puts it back only in a later run, which
    nothing brought once the last connection had gone: the API and dashboard never answered again
    until a restart. And with no HTTP connection to wait for (the descriptors held by relay
    clients) it leaves the socket readable, and the loop spun at 100 % CPU meanwhile."""
    d = start(tmp, "out of descriptors, HTTP clients", "--http-max-connections", "200")
    if not d:
        return
    held = []
    try:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (40, 40))
        for _ in range(60):
            held.append(socket.create_connection(("127.0.0.1", d.port), timeout=3))
        T.check("out of descriptors: said once, in p1d's words",
                d.wait_log(r"warn: http: out of file descriptors at \d+ connections", 5) and
                "MHD_OPTION" not in d.text(), d.text()[-1500:])
        for s in held:
            s.close()
        held = []
        T.check("out of descriptors, every connection closed: served again",
                served_again(d.port, 10), d.text()[-1500:])
        T.check("... and the log says so", d.wait_log(r"http: accepting connections again", 5),
                d.text()[-1500:])
    finally:
        stop(d, held)
    relay = socket.socket()
    relay.bind(("127.0.0.1", 0))
    rport = relay.getsockname()[1]
    relay.close()
    d = start(tmp, "out of descriptors, relay clients", "--relay", "127.0.0.1:%d" % rport,
              "--relay-clients", "200")
    if not d:
        return
    try:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (40, 40))
        for _ in range(60):
            held.append(socket.create_connection(("127.0.0.1", rport), timeout=3))
        d.wait_log(r"relay: cannot accept clients", 5)
        h = connect(d.port)
        held.append(h)
        h.sendall(REQ)
        T.check("no HTTP connection, no descriptor: said once",
                d.wait_log(r"warn: http: out of file descriptors at 0 connections", 5),
                d.text()[-1500:])
        time.sleep(0.5)
        c0 = cpu_seconds(d.proc.pid)
        time.sleep(2)
        used = cpu_seconds(d.proc.pid) - c0
        T.check("... no busy loop meanwhile (%.2f s CPU in 2 s)" % used, used < 0.3)
        for s in held[:-1]:
            s.close()
        held = [h]
        h.settimeout(5)
        try:
            got = h.recv(4096)
        except OSError:
            got = b""
        T.check("... the waiting request is answered once descriptors are free",
                got.startswith(b"HTTP/1.1 200 OK"), repr(got[:60]))
    finally:
        stop(d, held)


with tmpdir() as tmp:
    T.run((test_per_ip, test_lockout, test_loopback_exempt, test_dual_stack, test_config,
           test_slow_body, test_out_of_descriptors), tmp)
T.done()
