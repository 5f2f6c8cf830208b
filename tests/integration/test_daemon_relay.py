#!/usr/bin/env python3
"""test_daemon_relay.py: the raw relay sends accepted telegrams byte-exact; a client that never
reads is dropped while a good client keeps receiving every telegram; rejected ones are not sent."""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, telegram, tmpdir  # noqa: E402

T = Checks("test_daemon_relay")
need_p1d(T)

N = 1500  # about 430 KB: far more than the 64 KiB client buffer plus the kernel's buffers


def reader(sock, out, stop):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not b:
            break
        out.append(b)


with tmpdir() as d:
    p = Daemon(["--source", "a=stdin", "--relay", "127.0.0.1:0", "--listen", "127.0.0.1:0"], d,
               stdin=subprocess.PIPE)
    good = slow = None
    stop = threading.Event()
    try:
        m = p.wait_log(r"relay: listening on 127.0.0.1:0 \(port (\d+)\), relaying meter a")
        T.check("relay listening (meter a by default)", m is not None, p.text())
        port = int(m.group(1))
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        good = socket.socket()
        good.connect(("127.0.0.1", port))
        T.check("two clients connected", p.wait_log(r"relay: client .* connected", 5, count=2))
        got = []
        th = threading.Thread(target=reader, args=(good, got, stop), daemon=True)
        th.start()
        sent = bytearray()
        bad = telegram(99999, crc=False)
        for i in range(N):
            t = telegram(i)
            sent += t
            chunk = t + (bad if i == 10 else b"")
            p.proc.stdin.write(chunk)
            if i % 50 == 0:
                p.proc.stdin.flush()
                time.sleep(0.005)
        p.proc.stdin.flush()
        T.check("slow client dropped", p.wait_log(r"relay: dropping client .* behind", 10), p.text())
        end = time.time() + 10
        while time.time() < end and sum(len(b) for b in got) < len(sent):
            time.sleep(0.05)
        data = b"".join(got)
        T.check("good client got every accepted telegram byte-exact (%d bytes)" % len(sent),
                data == bytes(sent), "got %d bytes" % len(data))
        T.check("the rejected telegram was not relayed", bad not in data)
        T.check("daemon still running", p.proc.poll() is None)
        p.proc.stdin.close()
        T.check("end of stdin logged, meter stopped",
                p.wait_log(r"a: end of stdin: %d telegrams, 1 rejected" % N, 5), p.text())
        T.check("still serving after stdin ended", p.proc.poll() is None and p.meter("a").get("state") == "stopped")
        late = socket.create_connection(("127.0.0.1", port), timeout=2)
        T.check("relay still accepts clients", p.wait_log(r"relay: client .* connected", 5, count=3))
        late.close()
    finally:
        stop.set()
        for s in (good, slow):
            if s:
                s.close()
        code = p.stop()
    T.check("SIGTERM exits 0", code == 0, p.text())
T.done()
