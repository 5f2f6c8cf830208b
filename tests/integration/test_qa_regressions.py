#!/usr/bin/env python3
"""test_qa_regressions.py: regressions found by QA: HTTP methods and bodies on fixed endpoints
with a history database, unencoded '+' in history times, p1 import/export/backup/prices bad
input, p1 in pipelines and cron (a reader that goes away, a full disk, --opt=value, unix
times, a damaged database), [prices] config errors, and cross-module consistency
(/api/now = p1 decode's reading, /api/v1/data, /metrics and /api/history sums = the meter's
counters), and p1d under a sandbox that refuses setrlimit (dist/p1d.service)."""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, P1D, ROOT, build_shim, http, need_p1d, run,  # noqa: E402
                            stop_process, tmpdir)
from store_helpers import P1, p1  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")


def raw_request(port, data):
    """Sends bytes, returns the status line and whether the server closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    s.close()
    return buf.split(b"\r\n", 1)[0].decode("latin-1"), buf


def test_http_methods(c, tmp):
    """With --db the history routes own /api/*: fixed endpoints must still say 405 and answer
    a GET that carries a body (docs/API.md, Conventions)."""
    d = Daemon(["--source", "home=file:%s" % os.path.join(DATA, "dsmr50-3phase-gas.txt"),
                "--db", os.path.join(tmp, "m.db"), "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            st, h, b = http(port, "/api/now", method, body=b"x")
            ok = st == 405 and h.get("Allow") == "GET, HEAD, OPTIONS" and \
                json.loads(b)["error"]["code"] == "method_not_allowed"
            c.check("%s /api/now with --db is 405 with Allow" % method, ok, "%s %s %s" % (st, h, b))
        st, h, b = http(port, "/api/v1/data", "DELETE")
        c.check("DELETE /api/v1/data is 405", st == 405, "%s %s" % (st, b))
        st, h, b = http(port, "/metrics", "POST", body=b"")
        c.check("POST /metrics is 405", st == 405, "%s %s" % (st, b))
        line, buf = raw_request(port, b"GET /api/now HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                      b"\r\nabc")
        c.check("GET /api/now with a body is answered 200", line.endswith("200 OK"), line)
        c.check("... and carries the reading", b'"reading"' in buf, buf[:200])
        st, h, b = http(port, "/api/history?step=2m", "POST", body=b"x")
        c.check("POST /api/history stays 405", st == 405, "%s %s" % (st, b))
        # an unencoded '+' of a zone offset arrives as a space
        st, h, b = http(port, "/api/history?from=2024-01-15T00:00:00+01:00&to=2024-01-16T00:00+01:00"
                              "&step=1h")
        ok = st == 200 and json.loads(b)["from"] == "2024-01-15T00:00:00+01:00"
        c.check("history accepts an unencoded '+01:00'", ok, "%s %s" % (st, b[:200]))
        st, h, b = http(port, "/api/summary?at=2024-01-15T10:00:00+01:00")
        c.check("summary accepts an unencoded '+01:00'", st == 200, "%s %s" % (st, b[:200]))
        st, h, b = http(port, "/api/history?from=2024-01-15T00:00:00+99:00")
        c.check("a bad offset is still a 400", st == 400 and b"bad_parameter" in b, "%s %s" % (st, b))
        t0 = time.time()
        st, h, b = http(port, "/api/history?step=1y&from=0001-01-01&to=9999-12-31")
        c.check("a ten-millennia 1y range is a quick 400 naming the bound",
                st == 400 and b"out of range" in b and time.time() - t0 < 1, "%s %s" % (st, b))
        st, h, b = http(port, "/api/history?step=1y&from=1970-01-01&to=2199-12-31")
        c.check("1970 to 2199 at 1y is served", st == 200 and json.loads(b)["points"] == 230,
                "%s %s" % (st, b[:200]))
        st, h, b = http(port, "/api/summary?at=1969-06-01")
        c.check("summary before 1970 is a 400", st == 400, "%s %s" % (st, b))
        st, h, b = http(port, "/api/history?from=2024-01-15+x")
        c.check("a stray space is still a 400", st == 400, "%s %s" % (st, b))
    finally:
        c.check("p1d exits 0 on SIGTERM", d.stop() == 0, d.text()[-500:])


def test_import(c, tmp):
    db = os.path.join(tmp, "i.db")
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "wb").close()
    code, out, err = p1(["import", "--db", db, empty])
    c.check("import of an empty file: exit 1 and says so",
             code == 1 and "empty file" in err and "nothing was stored" in err, "%s %s" % (code, err))
    code, out, err = p1(["import", "--db", db, "/dev/null"])
    c.check("import of /dev/null: exit 1, not 'already imported'",
             code == 1 and "already imported" not in err, "%s %s" % (code, err))
    gz = os.path.join(tmp, "cap.txt.gz")
    subprocess.run(["gzip", "-c", os.path.join(DATA, "dsmr50-3phase-gas.txt")],
                   stdout=open(gz, "wb"), check=True)
    code, out, err = p1(["import", "--db", db, tmp])
    c.check("import of a directory: exit 1", code == 1 and "directory" in err, "%s %s" % (code, err))
    code, out, err = p1(["import", "--db", db, "-"], stdin=b"")
    c.check("import of an empty standard input: exit 1, says so",
             code == 1 and "standard input: empty" in err, "%s %s" % (code, err))
    code, out, err = p1(["import", "--db", db, os.path.join(ROOT, "README.md")])
    c.check("import of a text file: exit 1, nothing stored", code == 1 and "nothing was stored" in err,
            err)
    left = [f for f in os.listdir(tmp) if f.startswith(os.path.basename(db))]
    c.check("none of those left a trace: the database they created is gone", left == [], left)
    code, out, err = p1(["import", "--db", db, os.path.join(DATA, "dsmr50-3phase-gas.txt")])
    c.check("a real capture still imports", code == 0, err)
    code, out, err = p1(["import", "--db", db, gz])  # gzip is read: the same capture, known
    c.check("a gzip copy of an imported capture is known", code == 0 and "already imported" in err,
            "%s %s" % (code, err))
    ro = os.path.join(tmp, "nodir", "x.db")
    code, out, err = p1(["import", "--db", ro, os.path.join(DATA, "dsmr50-3phase-gas.txt")])
    c.check("a database in a missing directory names the directory",
            code == 1 and "directory" in err and "No such file" in err, err)
    return db


def test_export_backup(c, tmp, db):
    code, out, err = p1(["export", "--db", db, "--meter", "nope", "--from", "2024-01-01",
                         "--to", "2024-02-01"])
    c.check("export of an unknown meter: exit 1, nothing on stdout",
            code == 1 and out == "" and "no such meter" in err, "%s %r %s" % (code, out[:80], err))
    code, out, err = p1(["export", "--db", db, "--from", "2024-01-01", "--to", "2024-02-01"])
    c.check("export of the known meter still writes CSV", code == 0 and out.startswith("time,"), err)

    code, out, err = p1(["backup", "--db", db, "--force", db])
    c.check("backup onto the database itself is refused", code == 2 and "itself" in err, err)
    link = os.path.join(tmp, "link.db")
    os.symlink(db, link)
    code, out, err = p1(["backup", "--db", db, "--force", link])
    c.check("... also through a symlink", code == 2 and os.path.islink(link), err)
    con = sqlite3.connect(db)
    ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    c.check("the database is untouched", ok == "ok", ok)
    code, out, err = p1(["backup", "--db", db, "--force", tmp])
    c.check("backup onto a directory: usage error", code == 2 and "directory" in err, err)
    code, out, err = p1(["backup", "--db", db, os.path.join(tmp, "nodir", "b.db")])
    c.check("backup into a missing directory: exit 1 with the reason",
            code == 1 and "No such file or directory" in err, err)
    if os.geteuid() == 0:
        rodir = os.path.join(tmp, "ro")
        os.mkdir(rodir, 0o555)
        os.chmod(tmp, 0o755)
        os.chmod(db, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            P1, "backup", "--db", db, os.path.join(rodir, "b.db")],
                           capture_output=True, timeout=30)
        e = p.stderr.decode()
        c.check("backup to an unwritable directory: exit 1, Permission denied",
                p.returncode == 1 and "Permission denied" in e, "%s %s" % (p.returncode, e))
        # a database p1d's user may read but not write (made by `sudo p1 import`): refused at
        # the start, naming the file, instead of a p1d that fails every write from then on
        wdir = os.path.join(tmp, "w")
        os.mkdir(wdir)
        os.chmod(wdir, 0o777)
        rodb = os.path.join(wdir, "root.db")
        shutil.copy(db, rodb)
        os.chmod(rodb, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            P1D, "--source", "a=sim", "--listen", "127.0.0.1:0", "--db", rodb],
                           capture_output=True, timeout=30)
        e = p.stderr.decode()
        c.check("p1d on a database it cannot write: exit 1 naming the file and the permission",
                p.returncode == 1 and "%s: cannot write the database (%s: Permission denied)"
                % (rodb, rodb) in e, "%s %s" % (p.returncode, e[-400:]))
    good = os.path.join(tmp, "good.db")
    code, out, err = p1(["backup", "--db", db, good])
    c.check("a normal backup works", code == 0 and os.path.exists(good), err)

    code, out, err = p1(["prices", "import", "--db", db, tmp])
    c.check("prices import of a directory says so", code == 1 and "Is a directory" in err, err)


def test_config(c, tmp):
    conf = os.path.join(tmp, "p.conf")
    for text, want in (("[source a]\nspec = sim\n[prices]\nimport = abc\n", "import"),
                       ("[source a]\nspec = sim\n[prices]\nvalid_from = 2025-99-01\n", "valid_from")):
        with open(conf, "w") as f:
            f.write(text)
        code, out, err = run(["--check-config", "--config", conf])
        c.check("--check-config: bad [prices] %s is exit 2 naming it" % want,
                code == 2 and want in err and "[prices]" in err, "%s %s" % (code, err))
        code, out, err = run(["--config", conf, "--listen", "127.0.0.1:0",
                              "--db", os.path.join(tmp, "c.db")])
        c.check("start with bad [prices] %s is exit 2" % want, code == 2, "%s %s" % (code, err))
    code, out, err = run(["--check-config", "--source", "a=sim", "--db",
                          os.path.join(tmp, "missing", "p1d.db")])
    c.check("--check-config notes a missing database directory (exit 0)",
            code == 0 and "note:" in err and "missing" in err, "%s %s" % (code, err))
    example = os.path.join(ROOT, "dist", "p1d.conf.example")
    code, out, err = run(["--check-config", "--config", example])
    c.check("dist/p1d.conf.example passes --check-config", code == 0, err)

    # SIGHUP with bad prices keeps the running configuration; good prices are recorded
    db = os.path.join(tmp, "h.db")
    base = "[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n[source a]\nspec = sim\n" % db
    with open(conf, "w") as f:
        f.write(base)
    d = Daemon(["--config", conf], tmp)
    try:
        port = d.http_port()
        with open(conf, "w") as f:
            f.write(base + "[prices]\nimport = abc\n")
        d.signal(1)
        c.check("reload with bad prices keeps running",
                d.wait_log(r"reload: (\S+:\d+: )?\[prices\] import: .*keeping the running")
                is not None,
                d.text()[-400:])
        with open(conf, "w") as f:
            f.write(base + "[prices]\nimport = 0.25\nvalid_from = 2024-01-01\n")
        d.signal(1)
        c.check("reload records new prices", d.wait_log(r"\[prices\] recorded") is not None,
                d.text()[-400:])
        st, h, b = http(port, "/api/prices?from=2024-01-01&to=2024-01-02")
        fixed = json.loads(b).get("fixed", []) if st == 200 else []
        c.check("the reloaded price is served", any(f.get("import") == 0.25 for f in fixed),
                "%s %s" % (st, b[:300]))
    finally:
        c.check("p1d exits 0 after reloads", d.stop() == 0, d.text()[-400:])


def test_consistency(c, tmp):
    """The same telegrams through p1 decode and p1d: identical reading, HomeWizard and Prometheus
    values equal to it, and history steps that add up to the counter difference."""
    for fx in ("dsmr50-3phase-gas", "be-fluvius-emucs", "dsmr22-gas-nextline", "lu-smarty-plain"):
        path = os.path.join(DATA, fx + ".txt")
        dec = subprocess.run([P1, "decode", path], capture_output=True, timeout=30)
        last = json.loads(dec.stdout.decode().strip().splitlines()[-1])
        d = Daemon(["--source", "m=file:%s" % path, "--listen", "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            d.wait_meter("m", lambda m: m.get("state") == "stopped")
            now = json.loads(http(port, "/api/now")[2])
            c.check("%s: /api/now reading == p1 decode reading" % fx,
                    now.get("reading") == last["reading"],
                    json.dumps(now.get("reading"))[:300])
            r = last["reading"]
            hw = json.loads(http(port, "/api/v1/data")[2])
            if "power_net_w" in r:
                c.check("%s: active_power_w == power_net_w" % fx,
                        hw.get("active_power_w") == r["power_net_w"], (hw.get("active_power_w"), r))
            if "import_kwh" in r:
                c.check("%s: total_power_import_kwh == import_kwh" % fx,
                        abs(hw.get("total_power_import_kwh", -1) - r["import_kwh"]) < 1e-9,
                        hw.get("total_power_import_kwh"))
            metrics = http(port, "/metrics")[2].decode()
            if "power_net_w" in r:
                want = 'p1_power_net_watts{meter="m"} %d' % r["power_net_w"]
                c.check("%s: /metrics net power == reading" % fx, want in metrics, want)
            for t, v in (r.get("import_tariff_kwh") or {}).items():
                line = 'p1_energy_import_kwh_total{meter="m",tariff="%s"} ' % t
                got = [float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)]
                c.check("%s: /metrics import tariff %s == reading" % (fx, t), got and
                        abs(got[0] - v) < 1e-9, (got, v))
        finally:
            d.stop()

    cap = os.path.join(tmp, "sim.txt")
    code, out, err = p1(["sim", "--start", "2024-03-30T22:00:00Z", "--interval", "10",
                         "--count", "2000"])
    with open(cap, "w") as f:
        f.write(out)
    dec = subprocess.run([P1, "decode", cap], capture_output=True, timeout=60)
    rs = [json.loads(x)["reading"] for x in dec.stdout.decode().splitlines()]
    first, last = rs[0], rs[-1]
    db = os.path.join(tmp, "sum.db")
    d = Daemon(["--source", "h=file:%s:clock=meter" % cap, "--db", db, "--listen", "127.0.0.1:0"],
               tmp)
    try:
        port = d.http_port()
        d.wait_meter("h", lambda m: m.get("state") == "stopped", timeout=30)
        time.sleep(1.5)  # the store commits once a second
        q = "/api/history?meter=h&from=%d&to=%d" % (first["time_unix"], last["time_unix"] + 1)
        for step in ("15m", "1h", "1d"):
            st, h, b = http(port, q + "&step=" + step)
            js = json.loads(b) if st == 200 else {}
            tot = sum(x for x in js.get("import_kwh", []) if x is not None)
            want = last["import_kwh"] - first["import_kwh"]
            c.check("history step=%s: import sums to the counter difference" % step,
                    abs(tot - want) < 0.0005, "%s %s %s" % (st, tot, want))
            gas = sum(x for x in js.get("gas_m3", []) if x is not None)
            c.check("history step=%s: gas sums to the counter difference" % step,
                    abs(gas - (last["gas_m3"] - first["gas_m3"])) < 0.0005, gas)
    finally:
        d.stop()


def p1_closed_pipe(args):
    """Runs p1 with SIGPIPE ignored (as under systemd, or a parent that ignores it) and its
    standard output a pipe whose reader is already gone; returns (code, stderr)."""
    r, w = os.pipe()
    os.close(r)
    old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        p = subprocess.run([P1] + args, stdout=w, stderr=subprocess.PIPE, timeout=60,
                           restore_signals=False)
    finally:
        signal.signal(signal.SIGPIPE, old)
        os.close(w)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def p1_full(args):
    """Runs p1 with standard output on /dev/full; returns (code, stderr)."""
    with open("/dev/full", "wb") as full:
        p = subprocess.run([P1] + args, stdout=full, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def test_cli_pipelines(c, tmp):
    """p1 as scripts and cron use it: a reader that stops reading (| head with SIGPIPE
    ignored) ends the output quietly, as for p1 sim; a full disk is never exit 0; `--opt=value`
    and unix seconds work in every command; errors name the option, the database and what
    is wrong with it."""
    cap = os.path.join(tmp, "cli.txt")
    code, out, err = p1(["sim", "--start", "2024-11-20T00:00:00Z", "--interval", "10",
                         "--count", "20000"])
    with open(cap, "w") as f:
        f.write(out)
    db = os.path.join(tmp, "cli.db")
    code, out, err = p1(["import", "-q", "--db", db, cap])
    c.check("import of a simulated capture", code == 0, "%s %s" % (code, err))
    db2 = os.path.join(tmp, "cli2.db")
    code, out, err = p1(["import", "-q", "--db=" + db2, "--meter=home", cap])
    c.check("import takes --db=PATH and --meter=NAME", code == 0 and os.path.exists(db2),
            "%s %s" % (code, err))
    rng = ["--from", "2024-11-20", "--to", "2024-11-21"]
    for fmt in ("csv", "json"):
        code, err = p1_closed_pipe(["export", "--db", db, "--step", "raw", "--format", fmt] + rng)
        c.check("export --format %s into a pipe whose reader is gone: exit 0, no error" % fmt,
                code == 0 and err == "", "%s %s" % (code, err))
    code, err = p1_closed_pipe(["decode", cap])
    c.check("decode into a pipe whose reader is gone: exit 0, no error",
            code == 0 and err == "", "%s %s" % (code, err))
    code, err = p1_closed_pipe(["sim", "--count", "1000"])
    c.check("sim into a pipe whose reader is gone: exit 0, no error (as before)",
            code == 0 and err == "", "%s %s" % (code, err))
    prices = os.path.join(tmp, "cli-prices.csv")
    with open(prices, "w") as f:
        f.write("time,price\n2024-11-20T00:00,0.21\n2024-11-20T01:00,0.22\n")
    code, out, err = p1(["prices", "import", "--db", db, prices])
    c.check("prices import", code == 0, "%s %s" % (code, err))
    code, out, err = p1(["prices", "import", "--db=" + db2, "--kind=power", prices])
    c.check("prices import takes --opt=value", code == 0, "%s %s" % (code, err))
    code, out, err = p1(["prices", "import", "--db", db2, "-"], stdin=b"x\n")
    c.check("prices import - names standard input in its error",
            code == 1 and err.startswith("p1 prices: standard input: line 1"), err)
    for args in (["prices", "list", "--db", db] + rng, ["--help"], ["export", "--help"],
                 ["export", "--db", db] + rng, ["decode", cap]):
        code, err = p1_full(args)
        c.check("p1 %s > /dev/full: exit 1 naming the failed write" % " ".join(args[:2]),
                code == 1 and "writing standard output: No space left on device" in err,
                "%s %s" % (code, err))
    code, out, err = p1(["bench", "--seconds=0.05"])
    c.check("bench takes --seconds=S", code == 0 and "telegrams_per_s=" in out,
            "%s %s" % (code, err))
    code, out, err = p1(["help", "nosuchcommand"])
    c.check("p1 help of an unknown command is a usage error",
            code == 2 and "nosuchcommand" in err and out == "", "%s %r %s" % (code, out, err))
    code, out, err = p1(["prices", "list", "--db", db, "--from", "2024-11-20",
                         "--to", "1970-01-01T00:00:00Z"])
    c.check("prices list --to 1970-01-01 (unix 0) is before --from: usage error",
            code == 2 and "before" in err, "%s %s" % (code, out[:200]))
    code, out, err = p1(["prices", "list", "--db=" + db, "--from=2024-11-20", "--to=2024-11-21"])
    c.check("prices list takes --opt=value", code == 0 and ",0.210000," in out,
            "%s %s" % (code, err))

    code, iso, err = p1(["export", "--db", db, "--step", "1h"] + rng)
    c.check("export of the imported day", code == 0 and len(iso.splitlines()) == 25,
            "%s %s" % (code, err))
    code, unix, err = p1(["export", "--db", db, "--step", "1h", "--from", "1732057200",
                          "--to", "1732143600"])
    c.check("export takes unix seconds as /api/history does (same rows)",
            code == 0 and unix == iso, "%s %s" % (code, err))
    code, eq, err = p1(["export", "--db=" + db, "--step=1h", "--from=2024-11-20",
                        "--to=2024-11-21", "--format=csv"])
    c.check("export takes --opt=value (same rows)", code == 0 and eq == iso, "%s %s" % (code, err))
    # an option given twice is refused, as the HTTP API refuses a parameter twice (the last one
    # counted): every command, both spellings
    for args in (["export", "--db", db, "--from", "2024-11-20", "--from=2024-11-19",
                  "--to", "2024-11-21"],
                 ["import", "--db", db, "--meter", "a", "--meter", "b", "nothing.txt"],
                 ["backup", "--db=" + db, "--db", db, os.path.join(tmp, "twice.db")],
                 ["prices", "list", "--db", db, "--to", "2024-11-21", "--to", "2024-11-22"],
                 ["decode", "--crc", "ignore", "--crc=required", "/dev/null"],
                 ["sim", "--seed", "1", "--count", "1", "--seed=2"],
                 ["bench", "--seconds", "0.05", "--seconds=0.05"]):
        opt = [a.split("=")[0] for a in args if a.startswith("--")]
        twice = [o for o in opt if opt.count(o) > 1][0]
        code, out, err = p1(args)
        c.check("p1 %s: %s given twice: usage error" % (args[0], twice),
                code == 2 and "%s given twice" % twice in err and out == "",
                "%s %s" % (code, err))
    # an empty value is none: --db "$UNSET" in a cron script was SQLite's temporary database,
    # deleted at close: the import said it stored everything and exited 0
    prices_csv = os.path.join(tmp, "empty-db-prices.csv")
    with open(prices_csv, "w") as f:
        f.write("time,price\n2024-11-20T00:00,0.21\n")
    for args in (["import", "-q", "--db=", cap], ["import", "-q", "--db", "", cap],
                 ["prices", "import", "--db=", prices_csv], ["prices", "list", "--db", ""],
                 ["export", "--db=", "--from", "2024-11-20", "--to", "2024-11-21"],
                 ["backup", "--db", "", os.path.join(tmp, "empty-db.db")],
                 ["decode", "--crc=", "/dev/null"]):
        opt = [a for a in args if a.startswith("--")][0]
        code, out, err = p1(args)
        c.check("p1 %s %s'': usage error naming it, nothing written" % (args[0], opt),
                code == 2 and opt in err and "value" in err and out == "",
                "%s %r %s" % (code, out, err))
    # a transaction another program left open (sqlite3, a database browser): the import says
    # so ('Device or resource busy' told nothing)
    later = os.path.join(tmp, "cli-later.txt")
    code, out, err = p1(["sim", "--start", "2024-11-25T00:00:00Z", "--count", "30"])
    with open(later, "w") as f:
        f.write(out)
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        code, out, err = p1(["import", "-q", "--db", db, later])
    finally:
        con.execute("ROLLBACK")
        con.close()
    c.check("import while another program holds the write lock: exit 1 saying so",
            code == 1 and "another program holds its write lock" in err, "%s %s" % (code, err))
    # times from 1970 to 2199 only, as /api/history refuses them (they were accepted)
    for frm, to, bad in (("1900-01-01", "2024-11-21", "--from: out of range"),
                         ("2024-11-20", "9999-12-31", "--to: out of range"),
                         ("2024-11-20", "99999999999", "--to: out of range")):
        code, out, err = p1(["export", "--db", db, "--from", frm, "--to", to])
        c.check("export --from %s --to %s: usage error, as /api/history says" % (frm, to),
                code == 2 and bad in err and "times from 1970 to 2199 only" in err and out == "",
                "%s %s" % (code, err))
        code, out, err = p1(["prices", "list", "--db", db, "--from", frm, "--to", to])
        c.check("prices list --from %s --to %s: usage error" % (frm, to),
                code == 2 and bad in err and "times from 1970 to 2199 only" in err and out == "",
                "%s %s" % (code, err))
    code, out, err = p1(["export", "--db", db, "--from", "2024-11-20", "--to", "tomorrow"])
    c.check("export: a bad time names its option", code == 2 and "--to: 'tomorrow'" in err, err)
    p1(["import", "-q", "--db", db2, "--meter", "garage", cap])
    code, out, err = p1(["export", "--db", db2] + rng)
    c.check("export of a database with several meters and no --meter: exit 2 naming them",
            code == 2 and "(garage, home)" in err and out == "", "%s %s" % (code, err))
    code, out, err = p1(["export", "--db", db, "--from", "20241120", "--to", "2024-11-21"])
    c.check("export: 20241120 is a date without dashes, not unix seconds in 1970",
            code == 2 and "--from: '20241120'" in err, "%s %s" % (code, err))

    bk = os.path.join(tmp, "cli-bk.db")
    code, out, err = p1(["backup", "-q", "--db=" + db, bk])
    c.check("backup -q --db=PATH: silent on success (cron)",
            code == 0 and err == "" and out == "" and os.path.exists(bk), "%s %s" % (code, err))
    code, out, err = p1(["backup", "--db", db, "--", os.path.join(tmp, "-dash.db")])
    c.check("backup: -- ends the options", code == 0, "%s %s" % (code, err))
    # DEST "" ("$UNSET" in a cron line) copied to ./.tmp and removed a .tmp found there first
    here = os.path.join(tmp, "cwd")
    os.mkdir(here)
    with open(os.path.join(here, ".tmp"), "w") as f:
        f.write("someone's file\n")
    r = subprocess.run([P1, "backup", "--db", db, ""], cwd=here, capture_output=True, timeout=60)
    c.check("backup to DEST '': usage error, nothing in the working directory touched",
            r.returncode == 2 and b"no DEST given" in r.stderr and
            os.listdir(here) == [".tmp"], "%s %s %s" % (r.returncode, r.stderr, os.listdir(here)))

    bad = os.path.join(tmp, "cli-bad.db")
    shutil.copy(db, bad)
    with open(bad, "r+b") as f:
        size = f.seek(0, 2)
        f.seek(size // 5)
        f.write(b"\xff" * (size // 2))
    code, out, err = p1(["export", "--db", bad, "--step", "raw"] + rng)
    c.check("export of a damaged database names it and says what is wrong",
            code == 1 and bad in err and "malformed" in err, "%s %s" % (code, err))
    dest = os.path.join(tmp, "cli-bad-bk.db")
    code, out, err = p1(["backup", "--db", bad, dest])
    c.check("backup of a damaged database blames the database, leaves no DEST",
            code == 1 and "%s itself is damaged" % bad in err and not os.path.exists(dest) and
            not os.path.exists(dest + ".tmp"), "%s %s" % (code, err))


RLIMIT_SHIM = r"""
/* Test shim: RLIMIT_NOFILE reads 1024 of 65536 and setrlimit() fails with EPERM, as under a
 * seccomp filter that refuses it. Other resources go to the kernel. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
struct lim { unsigned long cur, max; };
int getrlimit(int r, struct lim *l);
int setrlimit(int r, const struct lim *l);
int getrlimit(int r, struct lim *l)
{
    if (r == 7) { l->cur = 1024; l->max = 65536; return 0; }
    return (int)syscall(SYS_prlimit64, 0, r, (void *)0, l);
}
int setrlimit(int r, const struct lim *l)
{
    if (r == 7) { errno = EPERM; return -1; }
    return (int)syscall(SYS_prlimit64, 0, r, l, (void *)0);
}
"""


def test_rlimit(c, tmp):
    """A refused setrlimit (systemd's SystemCallFilter) is one warning, not the end of p1d; the
    unit lets p1d call it (dist/p1d.service)."""
    unit = os.path.join(ROOT, "dist", "p1d.service")
    with open(unit) as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("SystemCall")]
    deny = [i for i, ln in enumerate(lines)
            if ln.startswith("SystemCallFilter=~") and "@resources" in ln]
    allow = [i for i, ln in enumerate(lines) if ln.startswith("SystemCallFilter=") and "~" not in ln
             and "setrlimit" in ln.split("=", 1)[1].split()]
    c.check("p1d.service allows setrlimit after denying @resources",
            bool(allow) and (not deny or max(allow) > max(deny)), "\n".join(lines))
    c.check("p1d.service: a filtered call fails (EPERM) instead of killing p1d",
            "SystemCallErrorNumber=EPERM" in lines, "\n".join(lines))
    if shutil.which("systemd-analyze"):
        copy = os.path.join(tmp, "p1d.service")
        with open(unit) as f, open(copy, "w") as g:
            g.write(f.read().replace("@BINDIR@", os.path.dirname(P1D))
                    .replace("@SYSCONFDIR@", "/etc"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy], capture_output=True,
                           text=True, timeout=60)
        c.check("systemd-analyze verify p1d.service", r.returncode == 0, r.stdout + r.stderr)
    else:
        print("SKIP: systemd-analyze not installed: unit not verified")
    so = build_shim(tmp, "setrlimit", RLIMIT_SHIM)
    if not so:
        return
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0",
                "--http-max-connections", "20000"], tmp,
               env={"LD_PRELOAD": so, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        port = d.http_port()
        st = 0
        end = time.time() + 10
        while port and time.time() < end and st != 200:
            st, _, _ = http(port, "/api/now")
            time.sleep(0.1)
        log = d.text()
        c.check("setrlimit refused: p1d runs and serves", st == 200 and d.proc.poll() is None, log)
        c.check("... with one warning naming the limit it keeps",
                log.count("cannot raise the open-file limit") == 1 and "going on with 1024" in log,
                log)
    finally:
        d.stop()


def test_low_port(c, tmp):
    """Port 80 (what HomeWizard clients use) by a user without CAP_NET_BIND_SERVICE: before, a
    bare "Permission denied"; now the error says what is missing and how to grant it, the unit
    grants it, and with it p1d serves there."""
    unit = os.path.join(ROOT, "dist", "p1d.service")
    with open(unit) as f:
        lines = [ln.strip() for ln in f]
    c.check("p1d.service grants CAP_NET_BIND_SERVICE and nothing else",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in lines and
            "AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines)
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        print("SKIP: the low-port checks need root and setpriv (util-linux)")
        return
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            low = int(f.read())
    except (OSError, ValueError):
        low = 1024
    if low < 2:
        print("SKIP: every port is unprivileged here (ip_unprivileged_port_start = %d)" % low)
        return
    port = None
    for cand in range(min(low, 1024) - 1, 0, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", cand))
            port = cand
            break
        except OSError:
            continue
        finally:
            s.close()
    if port is None:
        print("SKIP: no free port below %d on 127.0.0.1" % low)
        return
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = subprocess.run(drop + ["--inh-caps=-all", "--bounding-set=-all", P1D, "--source",
                               "home=sim", "--listen", "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=20, cwd=tmp)
    c.check("port %d without the capability: p1d stops with an error naming "
            "CAP_NET_BIND_SERVICE and setcap" % port,
            r.returncode != 0 and "CAP_NET_BIND_SERVICE" in r.stderr and
            "setcap cap_net_bind_service=+ep" in r.stderr, r.stderr[-600:])
    log = os.path.join(tmp, "lowport.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(drop + ["--inh-caps=+net_bind_service",
                                        "--ambient-caps=+net_bind_service", P1D, "--source",
                                        "home=sim", "--listen", "127.0.0.1:%d" % port],
                                stdout=subprocess.DEVNULL, stderr=out, cwd=tmp)
    try:
        st = 0
        end = time.time() + 10
        while time.time() < end and st != 200 and proc.poll() is None:
            try:
                st, _, _ = http(port, "/api")
            except OSError:
                pass
            time.sleep(0.1)
        with open(log, errors="replace") as f:
            text = f.read()
        c.check("port %d with CAP_NET_BIND_SERVICE (as the unit grants it): /api answers" % port,
                st == 200, text[-600:])
    finally:
        stop_process(proc)


def main():
    c = Checks("test_qa_regressions")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()
    with tmpdir() as tmp:
        os.chmod(tmp, 0o755)
        test_http_methods(c, tmp)
        db = test_import(c, tmp)
        test_export_backup(c, tmp, db)
        test_cli_pipelines(c, tmp)
        test_config(c, tmp)
        test_consistency(c, tmp)
        test_rlimit(c, tmp)
        test_low_port(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
