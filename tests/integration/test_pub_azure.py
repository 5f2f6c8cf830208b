#!/usr/bin/env python3
"""test_pub_azure.py: p1d's Azure Table publisher against a real Azurite on 127.0.0.1: a day of
readings lands as one entity each with the store's values, an emulator restart and a p1d kill -9
lose and duplicate nothing, batches sent as Insert that meet existing entities (a lost reply, a
stale entity) are resent as InsertOrReplace and land exactly once, a wrong key gives one error
and no retry storm, and hostile replies never mark readings delivered."""
import re
import base64
import email.utils
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
P1D = os.environ.get("P1D_BIN") or os.path.join(ROOT, "build", "p1d")
P1 = os.path.join(ROOT, "build", "p1")
AZURITE = os.path.join(ROOT, "tests", "azurite", "node_modules", ".bin", "azurite-table")
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DAY_START = 1738281600  # 2025-01-31T00:00:00Z

passed = failed = 0
RUNNING = []  # every p1d started, stopped at the end whatever happened


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail)[:600] if detail else ""))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


wait_until = wait_for  # the shared poller of daemon_helpers


def wait_port(port, timeout=20):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    return wait_until(up, timeout)


class Azurite:
    """azurite-table on 127.0.0.1:port, in memory or persisted in `location`."""

    def __init__(self, tmp, port, location=None):
        self.port, self.location, self.tmp, self.proc = port, location, tmp, None

    def start(self):
        args = [AZURITE, "--tableHost", "127.0.0.1", "--tablePort", str(self.port),
                "--disableTelemetry", "--skipApiVersionCheck"]
        args += ["--location", self.location] if self.location else ["--inMemoryPersistence"]
        self.log = open(os.path.join(self.tmp, "azurite-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(args, cwd=self.tmp, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_port(self.port):
            raise RuntimeError("azurite did not start on port %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # graceful: Azurite saves its database
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


def sign(method, path, ctype=""):
    date = email.utils.formatdate(usegmt=True)
    sts = "%s\n\n%s\n%s\n/%s%s" % (method, ctype, date, ACCOUNT, path)
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest())
    return {"x-ms-date": date, "x-ms-version": "2019-02-02", "DataServiceVersion": "3.0",
            "Accept": "application/json;odata=nometadata",
            "Authorization": "SharedKey %s:%s" % (ACCOUNT, sig.decode())}


def query(port, table):
    """Every entity of the table (follows continuation tokens); [] when the table is missing."""
    out, cont = [], {}
    while True:
        path = "/%s/%s()" % (ACCOUNT, table)
        url = path + ("?" + urllib.parse.urlencode(cont) if cont else "")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", url, headers=sign("GET", path))
        r = c.getresponse()
        body = r.read()
        if r.status == 404:
            return []
        if r.status != 200:
            raise RuntimeError("query %s: HTTP %d %s" % (table, r.status, body[:200]))
        out += json.loads(body)["value"]
        np_, nr = r.getheader("x-ms-continuation-NextPartitionKey"), r.getheader(
            "x-ms-continuation-NextRowKey")
        c.close()
        if not np_:
            return out
        cont = {"NextPartitionKey": np_}
        if nr:
            cont["NextRowKey"] = nr


def make_db(tmp, name, count, interval):
    """A store holding `count` simulated readings from DAY_START, `interval` s apart."""
    data = os.path.join(tmp, "%s.txt" % name)
    with open(data, "wb") as f:
        subprocess.run([P1, "sim", "--count", str(count), "--interval", str(interval), "--fast",
                        "--start", "@%d" % DAY_START], stdout=f, check=True)
    db = os.path.join(tmp, "%s.db" % name)
    subprocess.run([P1, "import", "-q", "--db", db, "--meter", "home", data], check=True)
    return db


class P1d:
    def __init__(self, tmp, db, conf_lines, extra=()):
        self.tmp, self.db = tmp, db
        self.conf = os.path.join(tmp, "p1d-%d.conf" % free_port())
        with open(self.conf, "w") as f:
            f.write("\n".join(conf_lines) + "\n")
        os.chmod(self.conf, 0o600)  # it holds the account key: p1d warns about a readable one
        self.errpath = self.conf + ".err"
        self.args = [P1D, "--config", self.conf, "--db", db, "--listen", "127.0.0.1:0"] + list(extra)
        self.proc = None

    def start(self):
        self.err = open(self.errpath, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        RUNNING.append(self)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")


def cursor(db):
    """The azure publisher's cursor for meter home, or 0."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            row = con.execute("SELECT max(ts) FROM outbox_cursor WHERE publisher LIKE 'azure %' "
                              "AND meter = 'home'").fetchone()
        finally:
            con.close()
        return row[0] if row and row[0] else 0
    except sqlite3.Error:
        return 0


def parked(db):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM outbox_parked").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def azure_conf(port, table, key=KEY, extra=()):
    lines = ["[azure]", "endpoint = http://127.0.0.1:%d/%s" % (port, ACCOUNT),
             "account = %s" % ACCOUNT, "table = %s" % table, "flush = 1s"]
    if key is not None:
        lines.append("key = %s" % key)
    return lines + list(extra)


def export(db):
    out = subprocess.run([P1, "export", "--db", db, "--meter", "home", "--step", "raw", "--from",
                          "2025-01-30T00:00:00Z", "--to", "2025-02-02T00:00:00Z", "--format",
                          "json"], capture_output=True, check=True).stdout
    return json.loads(out)


FIELDS = [("import_kWh", "import_counter_kwh"), ("import_t1_kWh", "import_t1_counter_kwh"),
          ("import_t2_kWh", "import_t2_counter_kwh"), ("export_kWh", "export_counter_kwh"),
          ("export_t1_kWh", "export_t1_counter_kwh"), ("export_t2_kWh", "export_t2_counter_kwh"),
          ("gas_m3", "gas_counter_m3"), ("power_W", "power_w_mean"),
          ("power_l1_W", "power_l1_w_mean"), ("power_l2_W", "power_l2_w_mean"),
          ("power_l3_W", "power_l3_w_mean"), ("voltage_l1_V", "voltage_l1_v_mean"),
          ("voltage_l2_V", "voltage_l2_v_mean"), ("voltage_l3_V", "voltage_l3_v_mean"),
          ("current_l1_A", "current_l1_a_mean"), ("current_l2_A", "current_l2_a_mean"),
          ("current_l3_A", "current_l3_a_mean"), ("tariff", "tariff")]


def compare(db, ents, count):
    """Differences between the table's entities and the store's readings ([] when equal)."""
    ex = export(db)
    by_unix = {int(e["Unix"]): e for e in ents}
    bad = []
    for i, t in enumerate(ex["time"]):
        u = int(datetime.fromisoformat(t).timestamp())
        e = by_unix.get(u)
        if e is None:
            bad.append(("missing", t))
            continue
        if e["RowKey"] != time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(u)):
            bad.append(("rowkey", e["RowKey"], t))
        for ef, xf in FIELDS:
            xv = ex[xf][i]
            if xv is None:
                if ef in e:
                    bad.append((ef, "present", t))
            elif ef not in e or abs(float(e[ef]) - float(xv)) > 1e-9:
                bad.append((ef, e.get(ef), xv, t))
        if len(bad) > 5:
            break
    if len(ex["time"]) != count:
        bad.append(("store readings", len(ex["time"]), count))
    return bad


def test_day(tmp, port):
    db = make_db(tmp, "day", 8640, 10)
    last = DAY_START + 8639 * 10
    d = P1d(tmp, db, azure_conf(port, "day"))
    d.start()
    t0 = time.time()
    done = wait_until(lambda: cursor(db) == last, 120)
    took = time.time() - t0
    check("a day of 10-second readings (8640) is delivered (%.1f s)" % took, done, cursor(db))
    ents = query(port, "day")
    check("exactly one entity per reading", len(ents) == 8640 and
          len({(e["PartitionKey"], e["RowKey"]) for e in ents}) == 8640, len(ents))
    check("PartitionKey is meter + UTC day", {e["PartitionKey"] for e in ents} == {"home-20250131"},
          {e["PartitionKey"] for e in ents})
    bad = compare(db, ents, 8640)
    check("every entity's values equal the store's (8640 readings compared)", not bad, bad[:5])
    # typed properties: Azurite echoes the EDM types with minimal metadata
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    path = "/%s/day(PartitionKey='home-20250131',RowKey='20250131T000000Z')" % ACCOUNT
    h = sign("GET", path)
    h["Accept"] = "application/json;odata=minimalmetadata"
    c.request("GET", path, headers=h)
    e = json.loads(c.getresponse().read())
    check("typed properties: Time Edm.DateTime, Unix Edm.Int64, power_W Edm.Double",
          e.get("Time@odata.type") == "Edm.DateTime" and e.get("Unix@odata.type") == "Edm.Int64"
          and e.get("Unix") == str(DAY_START) and (e.get("power_W@odata.type") == "Edm.Double" or
                                                   isinstance(e.get("power_W"), float)), e)
    rc = d.stop()
    check("p1d exits cleanly after delivering", rc == 0, d.stderr()[-800:])

    # rate = interval: the first reading of each minute
    d = P1d(tmp, db, azure_conf(port, "perminute", extra=["rate = interval", "interval = 60s"]))
    d.start()
    ok = wait_until(lambda: len(query(port, "perminute")) >= 1440, 60, 0.5)
    time.sleep(1.5)
    ents = query(port, "perminute")
    check("rate = interval 60s: one entity per minute (1440)",
          ok and len(ents) == 1440 and all(int(e["Unix"]) % 60 == 0 for e in ents), len(ents))
    d.stop()


def test_azurite_restart(tmp):
    port = free_port()
    loc = tempfile.mkdtemp(prefix="azurite-", dir=tmp)
    az = Azurite(tmp, port, loc)
    az.start()
    db = make_db(tmp, "restart", 8640, 10)
    last = DAY_START + 8639 * 10
    d = P1d(tmp, db, azure_conf(port, "restart", extra=["batch = 20", "parallel = 1"]))
    d.start()
    started = wait_until(lambda: cursor(db) > DAY_START, 30)
    az.stop()
    mid = cursor(db)
    time.sleep(4)
    check("Azurite down: p1d keeps running and the cursor stays", d.proc.poll() is None and
          cursor(db) == mid and mid < last, (mid, cursor(db)))
    az.start()
    done = wait_until(lambda: cursor(db) == last, 120)
    ents = query(port, "restart")
    check("Azurite stopped mid-run and restarted: every reading delivered, no duplicates",
          started and done and len(ents) == 8640 and
          len({e["RowKey"] for e in ents}) == 8640, (started, done, len(ents)))
    err = d.stderr()
    check("the outage is logged as a retry, once per kind of failure",
          "retrying" in err and err.count("retrying") <= 4, err[-1200:])
    d.stop()
    az.stop()
    shutil.rmtree(loc, ignore_errors=True)


def forward(handler, target, method, body):
    """Sends the request `handler` received on to 127.0.0.1:target; returns (status, headers,
    body) of the reply."""
    hdrs = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
    c = http.client.HTTPConnection("127.0.0.1", target, timeout=30)
    c.request(method, handler.path, body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheaders(), data


def relay_reply(handler, status, headers, data):
    """Answers `handler` with a reply from forward()."""
    handler.send_response(status)
    for k, v in headers:
        if k.lower() not in ("content-length", "transfer-encoding", "connection"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def serve(obj, handler_class):
    """Runs handler_class on an ephemeral 127.0.0.1 port in a thread; sets obj.srv, obj.port."""
    obj.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    obj.srv.daemon_threads = True
    obj.port = obj.srv.server_address[1]
    threading.Thread(target=obj.srv.serve_forever, daemon=True).start()


class Served:
    """A local HTTP server started with serve(); close() stops it."""

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def read_body(handler):
    """The request body of handler (b"" without one)."""
    n = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(n) if n else b""


class CountingProxy(Served):
    """Forwards HTTP requests to 127.0.0.1:target and counts them."""

    def __init__(self, target):
        self.count = 0
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self, method):
                proxy.count += 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                relay_reply(self, *forward(self, target, method, body))

            def do_POST(self):
                self.handle_one("POST")

            def do_GET(self):
                self.handle_one("GET")

            def log_message(self, *a):
                pass

        serve(self, H)


class BatchProxy(Served):
    """Forwards requests to Azurite on 127.0.0.1:target and records every $batch as (verb of its
    operations, status of its first operation's reply, Azure's error code or ""). While `drop` is
    above zero, a batch is forwarded (it lands) but its reply is lost: the connection closes
    without one, and `dropped` is set; with `hold_after_drop`, `hold` is set too. While `hold` is
    set, requests wait for `release` and are then dropped unforwarded."""

    def __init__(self, target):
        self.batches, self.drop, self.dropped = [], 0, threading.Event()
        self.hold, self.hold_after_drop, self.release = False, False, threading.Event()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = read_body(self)
                if proxy.hold:
                    proxy.release.wait(30)
                    self.close_connection = True
                    return
                status, headers, data = forward(self, target, "POST", body)
                if "$batch" in self.path:
                    verbs = set(re.findall(rb"\r\n\r\n(POST|PUT|MERGE|DELETE) ", body))
                    st = re.search(rb"HTTP/1.1 (\d+)", data)
                    code = re.search(rb'"code":"(\w+)"', data)
                    proxy.batches.append((b",".join(sorted(verbs)).decode(),
                                          int(st.group(1)) if st else status,
                                          code.group(1).decode() if code else ""))
                    if proxy.drop > 0:
                        proxy.drop -= 1
                        proxy.hold = proxy.hold_after_drop
                        proxy.dropped.set()
                        self.close_connection = True
                        return
                relay_reply(self, status, headers, data)

            def log_message(self, *a):
                pass

        serve(self, H)


def insert_entity(port, table, entity):
    """Creates the table if needed and inserts one entity directly (no p1d)."""
    for path, body in [("/%s/Tables" % ACCOUNT, {"TableName": table}),
                       ("/%s/%s" % (ACCOUNT, table), entity)]:
        h = sign("POST", path, "application/json")
        h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", path, body=json.dumps(body), headers=h)
        r = c.getresponse()
        r.read()
        c.close()
        if r.status not in (201, 204, 409):
            raise RuntimeError("insert into %s: HTTP %d" % (path, r.status))


def test_insert_first(tmp, port):
    """Batches go as Insert (cheaper for Azurite); one that meets an existing entity is refused
    whole with 409 EntityAlreadyExists and resent as InsertOrReplace, a lost reply is resent as
    InsertOrReplace: every reading lands once with the store's values."""
    last = DAY_START + 299 * 10

    def drain(db, conf, table, args=None):
        """Runs p1d until the 300 readings of db are acknowledged; returns (p1d, done, the
        table's entities, mismatches against the store)."""
        d = P1d(tmp, db, conf, args or ())
        d.start()
        done = wait_until(lambda: cursor(db) == last, 30)
        d.stop()
        ents = query(port, table)
        return d, done, ents, compare(db, ents, 300)

    # a stale entity in the middle of the second batch: the Insert batch fails atomically
    db = make_db(tmp, "stale", 300, 10)
    stale_ts = DAY_START + 150 * 10
    insert_entity(port, "stale", {
        "PartitionKey": "home-20250131", "RowKey": time.strftime("%Y%m%dT%H%M%SZ",
                                                                 time.gmtime(stale_ts)),
        "Unix": str(stale_ts), "Unix@odata.type": "Edm.Int64", "power_W": -1.5, "stale": "yes"})
    proxy = BatchProxy(port)
    d, done, ents, bad = drain(db, azure_conf(proxy.port, "stale"), "stale",
                               ["--log-level", "debug"])
    b = proxy.batches
    fell_back = any(v == "POST" and st == 409 and code == "EntityAlreadyExists"
                    for v, st, code in b)
    i409 = next((i for i, x in enumerate(b) if x[1] == 409), len(b))
    check("an existing entity: the Insert batch gets 409 EntityAlreadyExists, then "
          "InsertOrReplace lands it", fell_back and any(v == "PUT" and st == 204
                                                        for v, st, _ in b[i409:]), b)
    check("... every reading once, the stale entity replaced by the store's values",
          done and len(ents) == 300 and not bad and not any("stale" in e for e in ents)
          and parked(db) == 0, (done, len(ents), bad[:3], parked(db)))
    err = d.stderr()
    check("... not a failure: nothing logged above debug",
          not re.search(r"p1d: (warn|error)", err) and "as InsertOrReplace" in err, err[-800:])
    proxy.close()

    # a reply lost after the batch landed, p1d killed before its retry: the restarted p1d sends
    # the batch again as Insert, gets 409 and lands it as InsertOrReplace
    db = make_db(tmp, "lost", 300, 10)
    proxy = BatchProxy(port)
    proxy.drop, proxy.hold_after_drop = 1, True  # nothing more gets through until p1d is dead
    conf = azure_conf(proxy.port, "lost", extra=["parallel = 1", "batch = 50"])
    d = P1d(tmp, db, conf)
    d.start()
    got = proxy.dropped.wait(20)
    d.stop(signal.SIGKILL)
    proxy.hold = False
    proxy.release.set()
    landed = len(query(port, "lost"))
    check("a batch landed but its reply was lost, p1d killed: not acknowledged",
          got and landed == 50 and cursor(db) == 0, (got, landed, cursor(db)))
    d, done, ents, bad = drain(db, conf, "lost")
    b = proxy.batches
    # (libcurl may send the Insert twice, getting 409 twice, when a reused connection closes
    # without a reply, as in the next case)
    after = [x for x in b[1:] if x[:2] != ("POST", 409)]
    check("restarted: the redelivered batch gets 409, lands as InsertOrReplace, once",
          done and len(ents) == 300 and not bad and b[1][:2] == ("POST", 409)
          and after[:1] and after[0][:2] == ("PUT", 204), (done, len(ents), bad[:3], b[:4]))

    # lost replies while p1d runs: the retry goes out as InsertOrReplace (libcurl itself resends
    # once, unchanged, when a reused connection closes without a reply: that gets the 409)
    db = make_db(tmp, "retry", 300, 10)
    proxy.batches, proxy.drop, proxy.hold_after_drop = [], 2, False
    proxy.dropped.clear()
    d, done, ents, bad = drain(db, azure_conf(proxy.port, "retry",
                                              extra=["parallel = 1", "batch = 50"]), "retry")
    b = proxy.batches
    check("lost replies: the retry is an InsertOrReplace and lands once, later batches Insert",
          done and len(ents) == 300 and not bad and b[0][0] == "POST" and ("PUT", 204, "") in b
          and b[-1][0] == "POST" and sum(st == 409 for _, st, _ in b) <= 1 and parked(db) == 0,
          (done, len(ents), bad[:3], b))
    proxy.close()


def test_wrong_key(tmp, port):
    db = make_db(tmp, "wrongkey", 300, 10)
    last = DAY_START + 299 * 10
    proxy = CountingProxy(port)
    keyfile = os.path.join(tmp, "azure.key")
    with open(keyfile, "w") as f:
        f.write(base64.b64encode(os.urandom(64)).decode() + "\n")
    lines = ["[azure]", "endpoint = http://127.0.0.1:%d/%s" % (proxy.port, ACCOUNT),
             "account = %s" % ACCOUNT, "table = wrongkey", "key_file = %s" % keyfile]
    d = P1d(tmp, db, lines)
    d.start()
    time.sleep(8)
    err = d.stderr()
    auth_lines = [l for l in err.splitlines() if "authentication failed" in l]
    check("wrong key: one clear error line", len(auth_lines) == 1 and "error" in auth_lines[0]
          and "key" in auth_lines[0], err[-1000:])
    check("wrong key: no retry storm (%d requests in 8 s)" % proxy.count, proxy.count <= 3)
    check("wrong key: nothing marked delivered or parked", cursor(db) == 0 and parked(db) == 0,
          (cursor(db), parked(db)))
    with open(keyfile, "w") as f:
        f.write(KEY + "\n")
    d.proc.send_signal(signal.SIGHUP)
    done = wait_until(lambda: cursor(db) == last, 30)
    ents = query(port, "wrongkey")
    check("key fixed + SIGHUP: everything delivered", done and len(ents) == 300, len(ents))
    d.stop()
    proxy.close()


class BusyProxy(Served):
    """Forwards requests to Azurite on 127.0.0.1:target, noting when each came; while `busy`,
    answers every one 503 ServerBusy instead."""

    def __init__(self, target):
        self.busy, self.times = False, []
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = read_body(self)
                proxy.times.append(time.monotonic())
                if proxy.busy:
                    data = b'{"odata.error":{"code":"ServerBusy"}}'
                    relay_reply(self, 503, [("Content-Type", "application/json")], data)
                    return
                relay_reply(self, *forward(self, target, "POST", body))

            def log_message(self, *a):
                pass

        serve(self, H)


def api_port(d, timeout=10):
    """p1d's HTTP port, from its log."""
    found = []

    def up():
        m = re.search(r"dashboard and API at http://127\.0\.0\.1:(\d+)/", d.stderr())
        if m:
            found.append(int(m.group(1)))
        return bool(found)
    wait_until(up, timeout)
    return found[0] if found else 0


def azure_status(hp):
    """p1d's /api/meters/home and its azure publishers' entries."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/meters/home" % hp, timeout=5) as r:
            st = json.loads(r.read())
    except Exception as e:
        st = {"error": repr(e)}
    return st, [p for p in st.get("publishers") or [] if p.get("name", "").startswith("azure")]


def test_busy(tmp, port):
    """A server that answers 503 for a while: the wait doubles once per round of [azure] parallel
    requests (FLEET.md: 1 s doubling to 5 min), not once per failed request, which had the
    retries minutes apart after a few seconds; and last_error clears when delivery recovers."""
    db = make_db(tmp, "busy", 2000, 10)
    last = DAY_START + 1999 * 10
    proxy = BusyProxy(port)
    # a meter home that sends nothing (the store has its readings): /api/meters/home lists it
    dongle = socket.socket()
    dongle.bind(("127.0.0.1", 0))
    dongle.listen(1)
    d = P1d(tmp, db, azure_conf(proxy.port, "busy", extra=["batch = 2", "parallel = 4"]),
            ["--source", "home=tcp:127.0.0.1:%d" % dongle.getsockname()[1]])
    d.start()
    up = wait_until(lambda: cursor(db) > 0, 20)
    proxy.busy = True
    t0 = time.monotonic()
    time.sleep(22)
    times = sorted(t - t0 for t in proxy.times if t > t0 + 0.05)
    rounds = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 0.3]
    check("busy: 503 for 22 s: at least 4 rounds of retries, the last one 7 s in or later "
          "(rounds at %s)" % ["%.1f" % t for t in rounds],
          up and len(rounds) >= 4 and rounds[-1] >= 7, times)
    hp = api_port(d)
    st, pubs = azure_status(hp)
    check("busy: /api/meters says what is wrong meanwhile",
          pubs and "ServerBusy" in (pubs[0].get("last_error") or ""), st)
    proxy.busy = False
    done = wait_until(lambda: cursor(db) == last, 60)
    st, pubs = azure_status(hp)
    check("busy: once it answers again everything is delivered and last_error is null",
          done and pubs and pubs[0].get("last_error") is None, (done, st))
    d.stop()
    proxy.close()
    dongle.close()


def test_sas(tmp, port):
    """An account SAS instead of the key: no Authorization header, the token on every URL."""
    db = make_db(tmp, "sas", 300, 10)
    last = DAY_START + 299 * 10
    se = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    f = {"sv": "2019-02-02", "ss": "t", "srt": "sco", "sp": "rwdlacu", "se": se,
         "spr": "https,http"}
    sts = "\n".join([ACCOUNT, f["sp"], f["ss"], f["srt"], "", se, "", f["spr"], f["sv"], ""])
    f["sig"] = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(),
                                         hashlib.sha256).digest()).decode()
    lines = ["[azure]", "endpoint = http://127.0.0.1:%d/%s" % (port, ACCOUNT), "table = sas",
             "sas = %s" % urllib.parse.urlencode(f), "flush = 1s"]
    d = P1d(tmp, db, lines)
    d.start()
    done = wait_until(lambda: cursor(db) == last, 30)
    ents = query(port, "sas")
    check("SAS token instead of a key: everything delivered", done and len(ents) == 300,
          (len(ents), d.stderr()[-600:]))
    d.stop()


def test_kill9(tmp, port):
    db = make_db(tmp, "kill9", 8640, 10)
    last = DAY_START + 8639 * 10
    conf = azure_conf(port, "kill9", extra=["batch = 10", "parallel = 1"])
    d = P1d(tmp, db, conf)
    d.start()
    mid = wait_until(lambda: DAY_START < cursor(db) < last - 3000 and cursor(db), 60, 0.05)
    d.stop(signal.SIGKILL)
    check("p1d killed (-9) mid-backlog", bool(mid) and cursor(db) < last, (mid, cursor(db)))
    d = P1d(tmp, db, azure_conf(port, "kill9"))
    d.start()
    done = wait_until(lambda: cursor(db) == last, 120)
    ents = query(port, "kill9")
    want = {time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(DAY_START + 10 * i)) for i in range(8640)}
    check("restarted p1d resumes: no gaps, no duplicates",
          done and len(ents) == 8640 and {e["RowKey"] for e in ents} == want, len(ents))
    d.stop()


class Hostile(Served):
    """A fake table endpoint: /Tables succeeds, every $batch gets the reply of `mode`."""

    def __init__(self):
        self.mode = "html200"
        self.batches = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, status, body, ctype="text/html", close=False):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                if self.path.split("?")[0].endswith("/Tables"):
                    self.reply(201, b"", "application/json")
                    return
                outer.batches += 1
                m = outer.mode
                if m == "html200":
                    self.reply(200, b"<html><body>Please log in to the proxy</body></html>")
                elif m == "html502":
                    self.reply(502, b"<html><body>Bad gateway</body></html>")
                elif m == "html400":
                    self.reply(400, b"<html><body>Bad request (proxy)</body></html>")
                elif m == "garbage200":
                    self.reply(200, b"\x00\xff\xfe garbage", "application/json")
                elif m == "truncjson":
                    self.reply(200, b'{"odata.error":{"code":"Inter', "application/json")
                elif m == "trunc202":
                    body = (b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary="
                            b"changesetresponse_2\r\n\r\n--changesetresponse_2\r\nContent-Type: "
                            b"application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
                    self.reply(202, body, "multipart/mixed; boundary=batchresponse_1")
                elif m == "short":
                    self.send_response(202)
                    self.send_header("Content-Length", "5000")
                    self.end_headers()
                    self.wfile.write(b"--batchresponse_1\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                elif m == "azure400":
                    self.reply(400, b'{"odata.error":{"code":"InvalidInput","message":{"lang":'
                               b'"en-US","value":"One of the request inputs is not valid."}}}',
                               "application/json;odata=nometadata")
                elif m == "hang":
                    time.sleep(30)
                    self.close_connection = True
                elif m == "exists409":  # even for InsertOrReplace, which cannot conflict
                    body = (b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary="
                            b"changesetresponse_2\r\n\r\n--changesetresponse_2\r\nContent-Type: "
                            b"application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                            b"HTTP/1.1 409 Conflict\r\nContent-ID: 1\r\nContent-Type: "
                            b"application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
                            b'{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":'
                            b'"en-US","value":"0:The specified entity already exists."}}}\r\n'
                            b"--changesetresponse_2--\r\n--batchresponse_1--\r\n")
                    self.reply(202, body, "multipart/mixed; boundary=batchresponse_1")

            def log_message(self, *a):
                pass

        serve(self, H)


def test_hostile(tmp):
    db = make_db(tmp, "hostile", 200, 10)
    h = Hostile()
    for mode in ["html200", "html502", "html400", "garbage200", "truncjson", "trunc202", "short",
                 "hang"]:
        h.mode = mode
        h.batches = 0
        d = P1d(tmp, db, azure_conf(h.port, "hostile", extra=["timeout = 2s"]))
        d.start()
        wait_until(lambda: h.batches > 0, 10)
        time.sleep(3 if mode != "hang" else 4)
        alive = d.proc.poll() is None
        rc = d.stop()
        check("hostile reply '%s': p1d alive, nothing marked delivered or parked" % mode,
              alive and rc == 0 and h.batches > 0 and cursor(db) == 0 and parked(db) == 0,
              (alive, rc, h.batches, cursor(db), parked(db), d.stderr()[-600:]))
    def refused(db, mode, code, batches, what, parks=2, logged=1):
        """A server refusing every batch with `code`: both batches parked (in `parks` entries)
        after `batches` requests (at most, when parks is None), the refusal in `logged` lines
        at most."""
        h.mode = mode
        h.batches = 0
        # a timeout well above the server's answer time, also on a busy machine (a batch is sent
        # again after a timeout, and here each may be sent once), and short enough for the stop
        # not to wait long on one in flight
        d = P1d(tmp, db, azure_conf(h.port, "hostile", extra=["timeout = 5s"]))
        d.start()
        done = wait_until(lambda: cursor(db) == DAY_START + 199 * 10, 15)
        time.sleep(2)
        d.stop()
        lines = [l for l in d.stderr().splitlines() if code in l]
        check(what, done and (parked(db) == parks if parks else parked(db) >= 2) and
              (h.batches == batches if parks else h.batches <= batches) and
              1 <= len(lines) <= logged, (done, parked(db), h.batches, lines))

    # Azure itself refusing a batch (a 4xx with its error code): logged once, parked, not retried
    refused(db, "azure400", "InvalidInput", 2,
            "Azure's 4xx with an error code: batches parked, logged once, not retried")
    # 409 EntityAlreadyExists: an Insert batch is resent once as InsertOrReplace; a server that
    # refuses that too (an operation refused inside the changeset) gets the readings tried one
    # per batch, and once two of them are refused alone as well the batches are parked whole:
    # a bounded number of requests, no tight loop, a few lines (the split, single and whole-batch
    # refusals alternate in an order that depends on which of the parallel batches answers
    # first; each distinct line is logged once in a row, so at most 8 here, not one per request)
    refused(make_db(tmp, "hostile409", 200, 10), "exists409", "EntityAlreadyExists", 14,
            "409 EntityAlreadyExists on every operation: resent as InsertOrReplace, two "
            "readings tried alone, then parked whole, a few lines", parks=None, logged=8)
    h.close()


def main():
    if not (os.path.exists(P1D) and os.path.exists(P1)):
        print("SKIP: build/p1d or build/p1 missing (run make)")
        print("0 passed, 0 failed")
        return 0
    if not os.path.exists(AZURITE) or not shutil.which("node"):
        print("SKIP: Azurite not installed (tools/setup.sh test runs npm ci in tests/azurite)")
        print("0 passed, 0 failed")
        return 0
    # a SIGTERM (a timeout) still runs the cleanup below: Azurite runs in its own session
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="p1d-azure-")
    port = free_port()
    az = Azurite(tmp, port)
    try:
        az.start()
        for name, fn, args in [("day", test_day, (tmp, port)),
                               ("wrong key", test_wrong_key, (tmp, port)),
                               ("busy", test_busy, (tmp, port)),
                               ("sas", test_sas, (tmp, port)),
                               ("kill -9", test_kill9, (tmp, port)),
                               ("insert first", test_insert_first, (tmp, port)),
                               ("hostile", test_hostile, (tmp,)),
                               ("azurite restart", test_azurite_restart, (tmp,))]:
            try:
                fn(*args)
            except Exception as e:  # a crashed scenario is a failure, the others still run
                check("%s scenario ran" % name, False, repr(e))
    finally:
        for d in RUNNING:
            d.stop(signal.SIGKILL)
        az.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
