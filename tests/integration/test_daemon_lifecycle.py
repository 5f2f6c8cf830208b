#!/usr/bin/env python3
"""test_daemon_lifecycle.py: file and stdin replay (fast and at the recorded pace), the simulator,
SIGHUP reload (sources added, changed, removed; log level; a bad file keeps the old config),
SIGTERM/SIGINT exit 0, and a busy HTTP port failing the start."""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, telegram, tmpdir  # noqa: E402

T = Checks("test_daemon_lifecycle")
need_p1d(T)

with tmpdir() as d:
    rec = os.path.join(d, "rec.txt")
    with open(rec, "wb") as f:
        for i in range(200):
            f.write(telegram(i))
        f.write(telegram(200, crc=False))
    paced = os.path.join(d, "paced.txt")
    with open(paced, "wb") as f:
        for i in range(4):  # recorded 10 s apart
            f.write(telegram(i, seconds=36000 + 10 * i))

    one = os.path.join(d, "one.txt")
    with open(one, "wb") as f:
        f.write(telegram(0))

    # File replay (fast) + paced replay + stdin from a regular file + simulator, in one process.
    stdin = open(rec, "rb")
    p = Daemon(["--source", "fast=file:" + rec, "--source", "paced=file:%s:pace=recorded:speedup=20" % paced,
                "--source", "in=-", "--source", "sim=sim:3:speedup=20", "--source", "one=file:" + one, "--listen", "127.0.0.1:0"],
               d, stdin=stdin)
    try:
        t0 = time.time()
        p.http_port()
        m = p.wait_meter("fast", lambda m: m.get("state") == "stopped", 5)
        T.check("fast replay: every telegram, then stopped",
                m is not None and m["telegrams"] == 200 and m["rejected"] == 1, str(p.meter("fast")))
        T.check("end of file logged", p.wait_log(r"fast: end of .*rec.txt: 200 telegrams, 1 rejected"))
        m = p.wait_meter("in", lambda m: m.get("state") == "stopped", 5)
        T.check("stdin (a regular file) replayed", m is not None and m["telegrams"] == 200, str(p.meter("in")))
        m = p.meter("paced")
        T.check("paced replay: not all at once", m.get("telegrams", 0) < 4, str(m))
        m = p.wait_meter("paced", lambda m: m.get("state") == "stopped", 5)
        took = time.time() - t0
        T.check("paced replay: all 4 telegrams", m is not None and m["telegrams"] == 4, str(p.meter("paced")))
        T.check("paced replay: 30 s recorded / speedup 20 = about 1.5 s (%.2f s)" % took, 1.2 <= took <= 3.5)
        m = p.wait_meter("sim", lambda m: m.get("telegrams", 0) >= 10, 5)
        T.check("simulator at speedup 20", m is not None and m["rejected"] == 0, str(p.meter("sim")))
        T.check("daemon keeps serving after replays end", p.proc.poll() is None)
        p.signal(signal.SIGINT)
        p.proc.wait(5)
        T.check("SIGINT exits 0", p.proc.returncode == 0, p.text())
        T.check("one telegram is logged in the singular",
                re.search(r"one: end of .*one.txt: 1 telegram, 0 rejected", p.text()) is not None and
                re.search(r"one: 1 telegram, 0 rejected \(0 CRC errors\), 0 reconnects", p.text()) is not None,
                p.text()[-2000:])
    finally:
        p.stop()
        stdin.close()

    # SIGHUP reload.
    conf = os.path.join(d, "p1d.conf")

    def write_conf(text):
        with open(conf + ".tmp", "w") as f:
            f.write(text)
        os.replace(conf + ".tmp", conf)

    write_conf("[http]\nlisten = 127.0.0.1:0\n[log]\nlevel = info\n"
               "[source one]\nspec = sim:1:speedup=10\n[source two]\nspec = sim:2:speedup=10\n")
    p = Daemon(["--config", conf], d)
    try:
        p.http_port()
        T.check("two sources from the config file",
                p.wait_meter("two", lambda m: m.get("telegrams", 0) >= 2) is not None)
        write_conf("[http]\nlisten = 127.0.0.1:0\ntoken = later\n[log]\nlevel = debug\n"
                   "[source two]\nspec = sim:2:speedup=20\n[source three]\nspec = file:%s\n" % rec)
        p.signal(signal.SIGHUP)
        T.check("reload logged with what changed",
                p.wait_log(r"reloaded .*p1d.conf: 1 source added, 1 changed, 1 removed, 0 unchanged; "
                           r"log level debug", 5), p.text())
        T.check("an [http] change is not applied live, and p1d says so",
                p.wait_log(r"warn: reload: \[http\] settings changed; they take effect when p1d restarts")
                and p.meter("two") != {})
        m = p.wait_meter("three", lambda m: m.get("telegrams", 0) == 200, 5)
        T.check("added source runs", m is not None, str(p.meter("three")))
        T.check("removed source stopped, its meter gone from /api/meters",
                p.meter("one") == {} and p.wait_log(r"one: removed from the configuration; stopped")
                is not None, str(p.meter("one")))
        T.check("changed source restarted", p.wait_log(r"two: source changed; restarting it"))
        T.check("log level now debug", p.wait_log(r"debug: ", 5), p.text()[-2000:])
        write_conf("[http]\nlisten = 127.0.0.1:0\n[source two]\nspec = sim\ncrc = sometimes\n")
        p.signal(signal.SIGHUP)
        T.check("bad config on reload: logged, old config kept",
                p.wait_log(r"reload: .*p1d.conf:5: \[source two\] crc = 'sometimes'.*keeping the running "
                           r"configuration", 5), p.text())
        T.check("still running after a bad reload", p.proc.poll() is None)
        before = p.meter("two").get("telegrams", 0)
        time.sleep(0.5)
        T.check("sources still running after a bad reload", p.meter("two").get("telegrams", 0) > before)
        T.check("SIGTERM exits 0", p.stop() == 0, p.text())
    finally:
        p.stop()

    # systemd manners: READY, STATUS, WATCHDOG at half of WATCHDOG_USEC, RELOADING, STOPPING, and
    # journald-style lines (priority prefix, no time) when JOURNAL_STREAM is set.
    nsock_path = os.path.join(d, "notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.settimeout(0.1)
    msgs = []

    def drain(seconds):
        end = time.time() + seconds
        while time.time() < end:
            try:
                msgs.append((time.time(), nsock.recv(4096).decode()))
            except socket.timeout:
                pass

    p = Daemon(["--source", "a=sim:1:speedup=10", "--listen", "127.0.0.1:0"], d,
               env={"NOTIFY_SOCKET": nsock_path, "WATCHDOG_USEC": "400000", "JOURNAL_STREAM": "8:1234"})
    try:
        drain(1.2)
        texts = [m for _, m in msgs]
        T.check("READY=1 sent", any("READY=1" in m for m in texts), str(texts))
        T.check("STATUS= sent", any(m.startswith("STATUS=") and "meters" in m for m in texts), str(texts))
        wd = [t for t, m in msgs if m == "WATCHDOG=1"]
        T.check("WATCHDOG=1 about every 200 ms (%d in 1.2 s)" % len(wd), 4 <= len(wd) <= 8, str(texts))
        p.signal(signal.SIGHUP)
        drain(0.5)
        texts = [m for _, m in msgs]
        T.check("RELOADING=1 on SIGHUP", any("RELOADING=1" in m for m in texts), str(texts))
        p.signal(signal.SIGTERM)
        p.proc.wait(5)
        drain(0.3)
        texts = [m for _, m in msgs]
        T.check("STOPPING=1 on SIGTERM", any("STOPPING=1" in m for m in texts), str(texts))
        lines = [ln for ln in p.text().splitlines() if ln]
        T.check("journald format: priority prefix, no time stamp",
                lines and all(ln.startswith("<") for ln in lines) and lines[0].startswith("<6>info: "),
                "\n".join(lines[:3]))
    finally:
        p.stop()
        nsock.close()

    # A busy HTTP port is a runtime failure (exit 1), not a hang.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    p = Daemon(["--source", "a=sim", "--listen", "127.0.0.1:%d" % busy], d)
    try:
        p.proc.wait(5)
        T.check("busy HTTP port: exit 1 with a message",
                p.proc.returncode == 1 and "cannot start the HTTP server" in p.text(), p.text())
    finally:
        p.stop()
        s.close()
T.done()
