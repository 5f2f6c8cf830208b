#!/usr/bin/env python3
"""test_relay_limits.py: the relay at its limits: a telegram larger than a small [relay] buffer
still reaches a client that is not behind; running out of descriptors pauses accepting
instead of spinning the loop, and clients are served again once descriptors free up; a client
that half-closes (ncat < /dev/null) keeps receiving, yet closed clients never hold the slots;
the log names an IPv4 client of a dual-stack listener by its IPv4 address, an IPv6 one in
brackets; localhost is 127.0.0.1, also where /etc/hosts names ::1 first (Debian)."""
import os
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, build_shim, crc16, free_port, need_p1d,  # noqa: E402
                            run, telegram, tmpdir)

T = Checks("test_relay_limits")
need_p1d(T)


def big_telegram(i, lines):
    """telegram(i) with `lines` extra object lines: about 35 bytes each."""
    t = telegram(i)
    body = t[:t.index(b"!")]
    body += b"".join(b"0-0:96.99.%d(%020d)\r\n" % (k, k) for k in range(lines)) + b"!"
    return body + b"%04X\r\n" % crc16(body)


def recv_exactly(sock, n, timeout=5):
    sock.settimeout(timeout)
    got = b""
    try:
        while len(got) < n:
            b = sock.recv(65536)
            if not b:
                break
            got += b
    except OSError:
        pass
    return got


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(d, conf):
    path = os.path.join(d, "p1d.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = Daemon(["--source", "a=stdin", "--relay", "127.0.0.1:0", "--listen", "127.0.0.1:0",
                "--config", path], d, stdin=subprocess.PIPE)
    m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\)")
    return p, (int(m.group(1)) if m else None)


def test_big_telegram_small_buffer():
    """[relay] buffer = 4096 (its minimum) and a 5.7 KB telegram: the client is not behind at all
    and must get it whole, not be dropped for being "0 bytes behind"."""
    with tmpdir() as d:
        p, port = start(d, "[relay]\nbuffer = 4096\n")
        c = None
        try:
            T.check("relay listening", port is not None, p.text())
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            T.check("client connected", p.wait_log(r"relay: client .* connected", 5))
            sent = big_telegram(1, 150) + big_telegram(2, 150)
            p.proc.stdin.write(sent)
            p.proc.stdin.flush()
            got = recv_exactly(c, len(sent))
            T.check("client got both %d-byte telegrams byte-exact" % (len(sent) // 2), got == sent,
                    "got %d of %d bytes" % (len(got), len(sent)))
            T.check("client not dropped", "dropping client" not in p.text(), p.text())
        finally:
            if c:
                c.close()
            T.check("SIGTERM exits 0", p.stop() == 0, p.text())


def test_out_of_descriptors():
    """RLIMIT_NOFILE 40 and 60 clients at [relay] clients = 200: accept() fails with EMFILE.
    The loop must not spin on the readable listener, must say why once, and must serve again."""
    with tmpdir() as d:
        p, port = start(d, "[relay]\nclients = 200\n")
        socks = []
        try:
            T.check("relay listening", port is not None, p.text())
            resource.prlimit(p.proc.pid, resource.RLIMIT_NOFILE, (40, 40))
            for _ in range(60):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            T.check("running out of descriptors is logged",
                    p.wait_log(r"warn: relay: cannot accept clients \(Too many open files\)", 5),
                    p.text())
            time.sleep(0.5)
            c0 = cpu_seconds(p.proc.pid)
            time.sleep(2)
            used = cpu_seconds(p.proc.pid) - c0
            T.check("no busy loop while descriptors are gone (%.2f s CPU in 2 s)" % used,
                    used < 0.3)
            T.check("said once, not per attempt",
                    p.text().count("cannot accept clients") == 1, p.text())
            for s in socks:
                s.close()
            socks = []
            T.check("accepting again once descriptors free up",
                    p.wait_log(r"info: relay: accepting clients again", 5), p.text())
            # The queued connections closed by now are accepted and go; a new one is served.
            time.sleep(1.5)
            late = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(late)
            T.check("late client connected", p.wait_log(r"relay: client .* connected", 5))
            deadline = time.time() + 5
            got = b""
            late.settimeout(0.3)
            i = 0
            while time.time() < deadline and not got:
                p.proc.stdin.write(telegram(i))
                p.proc.stdin.flush()
                i += 1
                try:
                    got = late.recv(65536)
                except socket.timeout:
                    pass
            T.check("late client receives telegrams", got.startswith(b"/ISk5"), repr(got[:40]))
        finally:
            for s in socks:
                s.close()
            T.check("SIGTERM exits 0", p.stop() == 0, p.text())


def feed(p, *nums):
    data = b"".join(telegram(i) for i in nums)
    p.proc.stdin.write(data)
    p.proc.stdin.flush()
    return data


def test_half_close():
    """[relay] clients = 2. A client that shuts down its sending side is relayed to; one that
    closed for good is let go at the next telegram; a connect/close storm while the meter is
    silent does not lock a new client out."""
    with tmpdir() as d:
        p, port = start(d, "[relay]\nclients = 2\n")
        socks = []
        try:
            T.check("relay listening", port is not None, p.text())
            half = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(half)
            half.shutdown(socket.SHUT_WR)
            T.check("half-closed client connected", p.wait_log(r"relay: client .* connected", 5))
            time.sleep(0.3)
            sent = feed(p, 1, 2)
            got = recv_exactly(half, len(sent))
            T.check("a half-closed client gets the telegrams byte-exact", got == sent,
                    "got %d of %d bytes" % (len(got), len(sent)))
            gone = socket.create_connection(("127.0.0.1", port), timeout=5)
            gport = gone.getsockname()[1]
            T.check("second client connected", p.wait_log(r"relay: client .* connected", 5, count=2))
            gone.close()
            time.sleep(0.3)
            sent = feed(p, 3, 4)
            got = recv_exactly(half, len(sent))
            T.check("... and keeps getting them", got == sent,
                    "got %d of %d bytes" % (len(got), len(sent)))
            T.check("a client that closed for good is let go at the next telegrams",
                    p.wait_log(r"relay: client 127\.0\.0\.1:%d (gone|disconnected)" % gport, 5),
                    p.text())
            for _ in range(5):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            time.sleep(0.5)
            late = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(late)
            time.sleep(0.5)
            sent = feed(p, 5)
            got = recv_exactly(late, len(sent))
            T.check("after a connect/close storm at the limit a new client gets telegrams",
                    got == sent, "got %d of %d bytes\n%s" % (len(got), len(sent), p.text()))
        finally:
            for s in socks:
                s.close()
            T.check("SIGTERM exits 0", p.stop() == 0, p.text())


def test_peer_names():
    """--relay [::]:0 takes IPv4 and IPv6 clients. The log names them 127.0.0.1:PORT and
    [::1]:PORT, the refused one too: not ::ffff:127.0.0.1:PORT, nor ::1:PORT, where the port
    reads as a part of the address."""
    with tmpdir() as d:
        path = os.path.join(d, "p1d.conf")
        with open(path, "w") as f:
            f.write("[relay]\nclients = 2\n")
        p = Daemon(["--source", "a=stdin", "--relay", "[::]:0", "--listen", "127.0.0.1:0",
                    "--config", path], d, stdin=subprocess.PIPE)
        socks = []
        try:
            m = p.wait_log(r"relay: listening on \[::\]:0 \(port (\d+)\)")
            T.check("dual-stack relay listening", m is not None, p.text())
            port = int(m.group(1))
            v4 = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(v4)
            T.check("an IPv4 client is named by its IPv4 address",
                    p.wait_log(r"relay: client 127\.0\.0\.1:%d connected" % v4.getsockname()[1],
                               5), p.text())
            v6 = socket.create_connection(("::1", port), timeout=5)
            socks.append(v6)
            T.check("an IPv6 client is named in brackets",
                    p.wait_log(r"relay: client \[::1\]:%d connected" % v6.getsockname()[1], 5),
                    p.text())
            late = socket.create_connection(("::1", port), timeout=5)
            socks.append(late)
            T.check("a refused IPv6 client is named in brackets",
                    p.wait_log(r"relay: refusing \[::1\]:%d, already 2 clients"
                               % late.getsockname()[1], 5), p.text())
        finally:
            for s in socks:
                s.close()
            T.check("SIGTERM exits 0", p.stop() == 0, p.text())


# getaddrinfo("localhost") as on Debian, whose /etc/hosts names it ::1 and 127.0.0.1: ::1 first.
DEBIAN_LOCALHOST = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *,
                 struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    struct addrinfo *v6 = NULL, *v4 = NULL, *ai;
    if (!node || strcmp(node, "localhost") != 0)
        return real(node, service, hints, res);
    if (real("::1", service, hints, &v6) != 0)
        v6 = NULL;
    if (real("127.0.0.1", service, hints, &v4) != 0)
        v4 = NULL;
    if (!v6 && !v4)
        return EAI_NONAME;
    if (!v6) {
        *res = v4;
        return 0;
    }
    for (ai = v6; ai->ai_next; ai = ai->ai_next)
        ;
    ai->ai_next = v4;
    *res = v6;
    return 0;
}
"""


def test_localhost():
    """--relay localhost:PORT listens on 127.0.0.1, as --listen localhost:PORT does, where
    getaddrinfo() gives ::1 first: IPv4 clients were refused. It takes the HTTP port as
    127.0.0.1:PORT would."""
    with tmpdir() as d:
        so = build_shim(d, "localhost6", DEBIAN_LOCALHOST)
        if not so:
            return
        port = free_port()
        env = {"LD_PRELOAD": so, "ASAN_OPTIONS": "verify_asan_link_order=0"}
        p = Daemon(["--source", "a=sim", "--relay", "localhost:%d" % port, "--listen",
                    "127.0.0.1:0"], d, env=env)
        try:
            T.check("localhost: listening", p.wait_log(r"relay: listening on localhost:%d" % port),
                    p.text())
            got = b""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    got = recv_exactly(s, 1)
            except OSError as e:
                got = repr(e).encode()
            T.check("localhost: an IPv4 client at 127.0.0.1 is relayed to", got[:1] == b"/",
                    got[:80])
        finally:
            T.check("localhost: SIGTERM exits 0", p.stop() == 0, p.text())
        code, _, err = run(["--source", "a=sim", "--listen", "127.0.0.1:%d" % port, "--relay",
                            "localhost:%d" % port, "--check-config"])
        T.check("localhost: the HTTP server's 127.0.0.1 port is refused to the relay",
                code == 2 and "give the relay a port of its own" in err, "%d %s" % (code, err))


def test_any():
    """--relay *:PORT takes IPv4 and IPv6 clients, as --listen *:PORT does (it bound 0.0.0.0)."""
    with tmpdir() as d:
        p = Daemon(["--source", "a=sim", "--relay", "*:0", "--listen", "127.0.0.1:0"], d)
        try:
            m = p.wait_log(r"relay: listening on \*:0 \(port (\d+)\)")
            T.check("*: listening", m is not None, p.text())
            port = int(m.group(1)) if m else 0
            for host in ("127.0.0.1", "::1"):
                got = b""
                try:
                    with socket.create_connection((host, port), timeout=5) as sk:
                        got = recv_exactly(sk, 1)
                except OSError as e:
                    got = repr(e).encode()
                T.check("*: a client at %s is relayed to" % host, got[:1] == b"/", got[:80])
        finally:
            T.check("*: SIGTERM exits 0", p.stop() == 0, p.text())


T.run([test_big_telegram_small_buffer, test_out_of_descriptors, test_half_close, test_peer_names,
       test_localhost, test_any])
T.done()
