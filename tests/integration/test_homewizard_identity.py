#!/usr/bin/env python3
"""test_homewizard_identity.py: the HomeWizard serial of GET /api is the same before a meter's
first telegram and after it, and across restarts, when --db knows the meter; without --db it is
made from the meter's name until the first telegram (docs/API.md, GET /api)."""
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, free_port, need_p1d, telegram, tmpdir  # noqa: E402

# daemon_helpers.telegram() sends 0-0:96.1.1(4530303034303031353934373534343134).
EQUIPMENT_ID = "E0004001594754414"


def fnv_serial(text):
    """homewizard_serial(): FNV-1a 64 of the text, the low 48 bits as 12 hex digits."""
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%012x" % (h & 0xFFFFFFFFFFFF)


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Quiet:
    """A TCP P1 dongle on 127.0.0.1 that accepts p1d and sends nothing until told to."""

    def __init__(self):
        self.port = free_port()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(4)
        self.srv.settimeout(10)
        self.conn = None
        self.ready = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            self.conn, _ = self.srv.accept()
        except OSError:
            pass
        self.ready.set()

    def wait_conn(self, timeout=10.0):
        self.ready.wait(timeout)
        return self.conn

    def close(self):
        for s in (self.conn, self.srv):
            if s:
                s.close()


def serial(port):
    status, dev = get(port, "/api")
    return status, dev.get("serial")


def test_with_db(c, tmp):
    db = os.path.join(tmp, "hw.db")
    path = os.path.join(tmp, "first.txt")
    with open(path, "wb") as f:
        for i in range(3):
            f.write(telegram(i))
    # First run: a file source stores the meter's readings and its equipment id.
    d = Daemon(["--source", "home=file:" + path, "--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 3)
        c.check("first run reads the file", m is not None, d.text()[-2000:])
        status, first = serial(port)
        c.check("first run: /api serial is made from the equipment id",
                status == 200 and first == fnv_serial(EQUIPMENT_ID), (status, first))
    finally:
        c.check("first run exits cleanly", d.stop() == 0, d.text()[-2000:])

    # Second run: the same db, a dongle that says nothing yet.
    dongle = Quiet()
    d = Daemon(["--source", "home=tcp:127.0.0.1:%d" % dongle.port, "--db", db,
                "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        conn = dongle.wait_conn()
        c.check("second run connects to the quiet dongle", conn is not None, d.text()[-2000:])
        c.check("... and has no telegram yet", d.meter("home").get("telegrams") == 0,
                d.meter("home"))
        status, before = serial(port)
        c.check("before the first telegram /api gives the serial of the first run",
                status == 200 and before == first, (status, before, first))
        status, err = get(port, "/api/v1/data")
        c.check("... while /api/v1/data is 503 no_reading",
                status == 503 and err.get("error", {}).get("code") == "no_reading", (status, err))
        if conn:
            conn.sendall(telegram(100))
        m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
        c.check("the first telegram arrives", m is not None, d.text()[-2000:])
        status, after = serial(port)
        c.check("after the first telegram the serial is unchanged",
                status == 200 and after == first, (status, after, first))
        status, data = get(port, "/api/v1/data")
        c.check("... and /api/v1/data answers with the meter's unique_id",
                status == 200 and data.get("unique_id") == "4530303034303031353934373534343134",
                (status, data))
    finally:
        c.check("second run exits cleanly", d.stop() == 0, d.text()[-2000:])
        dongle.close()


def test_without_db(c, tmp):
    dongle = Quiet()
    d = Daemon(["--source", "home=tcp:127.0.0.1:%d" % dongle.port, "--listen", "127.0.0.1:0"],
               tmp)
    try:
        port = d.http_port()
        conn = dongle.wait_conn()
        c.check("without --db: connects to the quiet dongle", conn is not None, d.text()[-2000:])
        status, before = serial(port)
        c.check("without --db: /api answers 200 with a serial made from the meter's name",
                status == 200 and before == fnv_serial("home"), (status, before))
        if conn:
            conn.sendall(telegram(0))
        m = d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
        c.check("without --db: the first telegram arrives", m is not None, d.text()[-2000:])
        status, after = serial(port)
        c.check("without --db: then the serial is made from the equipment id",
                status == 200 and after == fnv_serial(EQUIPMENT_ID), (status, after))
    finally:
        c.check("without --db: exits cleanly", d.stop() == 0, d.text()[-2000:])
        dongle.close()


def main():
    c = Checks("test_homewizard_identity")
    need_p1d(c)
    with tmpdir() as tmp:
        test_with_db(c, tmp)
        test_without_db(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
