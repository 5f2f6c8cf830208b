#!/usr/bin/env python3
"""test_store_disk.py: a full disk (a 2 MiB tmpfs): p1d keeps serving live data, /healthz says
the store is unhealthy, a price upload is told to come back, and when space returns it recovers
without a restart, losing nothing."""
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, tmpdir  # noqa: E402
from store_helpers import export_rows, integrity, iso_unix, p1  # noqa: E402


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:  # connection trouble counts as a failure of the check
        return 0, str(e)


def put_prices(port):
    """PUT /api/prices of two hours of dynamic prices: (status, body)."""
    body = b"2024-01-15T10:00:00+01:00,0.21\n2024-01-15T11:00:00+01:00,0.22\n"
    req = urllib.request.Request("http://127.0.0.1:%d/api/prices" % port, data=body,
                                 method="PUT", headers={"Content-Type": "text/csv"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:  # connection trouble counts as a failure of the check
        return 0, str(e)


def wait_status(port, path, want, timeout):
    end = time.time() + timeout
    code, body = 0, ""
    while time.time() < end:
        code, body = get(port, path)
        if code == want:
            return code, body
        time.sleep(0.25)
    return code, body


def fill(path):
    """Writes until the file system is full; returns bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
        while True:  # the last few bytes of the last block
            try:
                n += f.write(b"\0" * 512)
            except OSError:
                break
    return n


def test_backup_full(c, tmp):
    """p1 backup onto a disk with room for the copy but not for its WAL: exit 1, and neither
    DEST.tmp nor its -wal, -shm or -journal left behind (only DEST.tmp was removed)."""
    src = os.path.join(tmp, "bk-src.db")
    cap = os.path.join(tmp, "bk.txt")
    code, out, err = p1(["sim", "--count", "3000", "--fast", "--seed", "3"])
    with open(cap, "w") as f:
        f.write(out)
    code, out, err = p1(["import", "-q", "--db", src, cap])
    c.check("backup source imported", code == 0, err)
    mnt = os.path.join(tmp, "bkmnt")
    os.mkdir(mnt)
    size = os.path.getsize(src) // 1024 + 8  # the copy fits, its WAL does not
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size, "tmpfs", mnt],
                       capture_output=True)
    if r.returncode != 0:
        print("SKIP: backup onto a full disk: cannot mount a tmpfs")
        return
    try:
        dest = os.path.join(mnt, "b.db")
        code, out, err = p1(["backup", "--db", src, dest])
        left = sorted(os.listdir(mnt))
        c.check("backup onto a full disk: exit 1, nothing left behind",
                code == 1 and left == [], "%d %s %s" % (code, left, err))
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_import_full(c, tmp):
    """p1 import into a new database on a disk with room for its schema but not for the first
    batch of readings: exit 1, and the database it created and stored nothing in is removed
    again with its -wal, -shm and .lock (they were left: the queued readings counted as
    stored)."""
    cap = os.path.join(tmp, "bk.txt")  # test_backup_full's capture
    mnt = os.path.join(tmp, "immnt")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt],
                       capture_output=True)
    if r.returncode != 0:
        print("SKIP: import onto a full disk: cannot mount a tmpfs")
        return
    try:
        code, out, err = p1(["import", "--db", os.path.join(mnt, "i.db"), cap])
        left = sorted(os.listdir(mnt))
        c.check("import onto a full disk: exit 1, says it, the new database removed again",
                code == 1 and "No space left on device" in err and left == [],
                "%d %s %s" % (code, left, err))
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def main():
    c = Checks("test_store_disk")
    need_p1d(c)
    with tmpdir() as tmp:
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            print("SKIP: cannot mount a tmpfs (needs root): %s" % r.stderr.decode().strip())
            c.done()
        test_backup_full(c, tmp)
        test_import_full(c, tmp)
        try:
            db = os.path.join(mnt, "p1d.db")
            filler = os.path.join(mnt, "filler")
            d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db", db], tmp)
            try:
                port = d.http_port()
                c.check("p1d started", port is not None, d.text()[-500:])
                code, _ = wait_status(port, "/healthz", 200, 10)
                c.check("healthy at first", code == 200)
                time.sleep(3)
                before = export_rows(db)
                c.check("readings stored before the disk fills", len(before) >= 2)
                started = iso_unix(before[0]["time"]) if before else 0
                fill(filler)
                code, body = wait_status(port, "/healthz", 503, 60)
                c.check("/healthz 503 with the disk full", code == 503, body)
                c.check("the reason names the store", "store" in body, body)
                code, body = get(port, "/api/now")
                c.check("/api/now still serves live data", code == 200 and "reading" in body, body[:200])
                # Bug: 500 internal, as if p1d were broken, where the client need only wait
                code, body = put_prices(port)
                c.check("a price upload on the full disk: 503 store_full, nothing changed, try "
                        "again", code == 503 and '"store_full"' in body and "full" in body and
                        "try again" in body, "%d %s" % (code, body))
                time.sleep(2)
                os.unlink(filler)
                code, body = wait_status(port, "/healthz", 200, 30)
                c.check("recovers without restart", code == 200, body)
                c.check("the log tells", d.wait_log("store: writing again", 5) is not None,
                        d.text()[-800:])
                time.sleep(1.5)
            finally:
                c.check("p1d exits cleanly", d.stop() == 0)
            c.check("integrity_check ok", integrity(db) == "ok")
            after = export_rows(db)
            times = [iso_unix(r["time"]) for r in after]
            c.check("nothing written before was lost",
                    set(r["time"] for r in before) <= set(r["time"] for r in after))
            gaps = [(a, b) for a, b in zip(times, times[1:]) if b - a > 2]
            c.check("readings queued during the outage were written (no gap)", not gaps, gaps[:5])
            c.check("history spans the outage", times and times[0] == started and
                    times[-1] - started >= 8, "%s..%s" % (times[:1], times[-1:]))
            # stopped while the disk is still full: the readings in memory are lost, and the
            # exit status says so (it was 0, as if all went well)
            d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--db", db], tmp)
            try:
                port = d.http_port()
                c.check("p1d started again", port is not None, d.text()[-500:])
                fill(filler)
                code, body = wait_status(port, "/healthz", 503, 60)
                c.check("... and the disk full again", code == 503, body)
            finally:
                code = d.stop()
                os.unlink(filler)
            c.check("stopped with readings it cannot write: exit 1, the log says how many",
                    code == 1 and re.search(r"store: the last \d+ readings? could not be "
                                            r"written", d.text()), "exit %s: %s" % (
                                                code, d.text()[-600:]))
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    c.done()


if __name__ == "__main__":
    main()
