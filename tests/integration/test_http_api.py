#!/usr/bin/env python3
"""test_http_api.py: every p1d HTTP endpoint through a real HTTP client: JSON API, HomeWizard v1
compatibility, /p1.json, Prometheus /metrics (checked by promtool), /healthz, CORS, auth, errors.

Also the shared helpers (Daemon, Tally, telegram composition) of the other test_http_*.py files."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
P1D = os.path.abspath(os.environ.get("P1D") or os.path.join(ROOT, "build", "p1d"))


class Tally:
    """Counts checks; prints failures as they happen and the summary line at the end."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}".rstrip(), flush=True)
        return bool(cond)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def telegram(header, lines):
    """A DSMR telegram with CRLF line ends and a correct CRC."""
    body = ("/" + header + "\r\n\r\n" + "".join(l + "\r\n" for l in lines) + "!").encode()
    return body + b"%04X\r\n" % crc16(body)


# One-phase NL meter exporting 2.345 kW, without gas, failure counters or Belgian demand.
EXPORT_TELEGRAM = telegram("ISK5\\2M550T-1012", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240615120000S)",
    "0-0:96.1.1(4530303331303033333135353132333435)",
    "1-0:1.8.1(012345.678*kWh)",
    "1-0:1.8.2(010987.654*kWh)",
    "1-0:2.8.1(001234.567*kWh)",
    "1-0:2.8.2(002345.678*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(00.000*kW)",
    "1-0:2.7.0(02.345*kW)",
    "1-0:32.7.0(238.4*V)",
    "1-0:31.7.0(010*A)",
    "1-0:21.7.0(00.000*kW)",
    "1-0:22.7.0(02.345*kW)",
])


# Problems seen when daemons stopped (exit status, sanitizer reports); checked at the end.
DAEMON_PROBLEMS = []
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "Assertion", "Segmentation")


class Daemon:
    """build/p1d (or $P1D) on 127.0.0.1:<free port> in a temporary directory; stop() ends it
    with SIGTERM and records an unclean exit or a sanitizer report in DAEMON_PROBLEMS."""

    def __init__(self, sources, extra=(), wait_reading=True, listen="127.0.0.1:{port}",
                 host="127.0.0.1"):
        self.tmp = tempfile.mkdtemp(prefix="p1d-http-")
        self.port = free_port()
        self.host = host
        self.log = open(os.path.join(self.tmp, "p1d.log"), "wb")
        args = [P1D, "--listen", listen.format(port=self.port)]
        for s in sources:
            args += ["--source", s]
        args += list(extra)
        self.proc = subprocess.Popen(args, cwd=self.tmp, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_started(wait_reading)
        except Exception:
            self.stop()
            raise

    def _wait_started(self, wait_reading):
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"p1d exited with {self.proc.returncode}: {self.logtext()}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("p1d did not start listening: " + self.logtext())
                time.sleep(0.05)
        if wait_reading:
            self.wait_reading()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def logtext(self):
        self.log.flush()
        with open(os.path.join(self.tmp, "p1d.log"), "rb") as f:
            return f.read().decode(errors="replace")[-20000:]

    def request(self, method, path, headers=None, timeout=5):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body, r.msg
        finally:
            c.close()

    def get_json(self, path, headers=None):
        status, hdrs, body, _ = self.request("GET", path, headers)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        return status, hdrs, doc

    def wait_reading(self, path="/api/now", timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.request("GET", path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("no reading within %ss: %s" % (timeout, self.logtext()))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        text = self.logtext()
        if self.proc.returncode != 0 or any(m in text for m in SANITIZER_MARKS):
            DAEMON_PROBLEMS.append((self.proc.returncode, text[-1500:]))
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def no_nulls(doc):
    if doc is None:
        return False
    if isinstance(doc, dict):
        return all(no_nulls(v) for v in doc.values())
    if isinstance(doc, list):
        return all(no_nulls(v) for v in doc)
    return True


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_sim(t):
    d = Daemon(["house=sim"])
    try:
        status, hdrs, now = d.get_json("/api/now")
        t.check("now status", status == 200, status)
        t.check("now content-type", hdrs.get("content-type", "").startswith("application/json"))
        t.check("now cors", hdrs.get("access-control-allow-origin") == "*", hdrs)
        t.check("now keys", now and {"meter", "received", "age_s", "seq", "reading"} <= set(now),
                now)
        if now:
            t.check("now meter", now["meter"] == "house")
            t.check("now received", ISO_UTC.match(now["received"]), now["received"])
            t.check("now age", isinstance(now["age_s"], (int, float)) and 0 <= now["age_s"] < 30)
            t.check("now seq", isinstance(now["seq"], int) and now["seq"] >= 1)
            t.check("now reading", isinstance(now["reading"], dict) and len(now["reading"]) > 3)
        status, _, now2 = d.get_json("/api/meters/house/now")
        t.check("meter now", status == 200 and now2["meter"] == "house", status)
        status, _, err = d.get_json("/api/meters/nope/now")
        t.check("unknown meter 404", status == 404 and err["error"]["code"] == "not_found", err)
        status, _, err = d.get_json("/api/meters/nope/stream")
        t.check("unknown meter stream 404", status == 404, status)

        status, _, ms = d.get_json("/api/meters")
        keys = {"name", "source", "kind", "state", "connected_since", "last_telegram", "age_s",
                "telegrams", "rejected", "crc_errors", "reconnects", "idle_reopens", "bytes",
                "detected", "last_error"}
        t.check("meters", status == 200 and isinstance(ms, list) and len(ms) == 1, ms)
        if ms:
            m = ms[0]
            t.check("meters keys", keys <= set(m), set(m) ^ keys)
            t.check("meters values", m["name"] == "house" and m["kind"] == "sim" and
                    m["state"] == "receiving" and m["telegrams"] >= 1, m)
            t.check("meters equipment_id: the meter's own id, as its reading has it",
                    m.get("equipment_id") and m.get("equipment_id") ==
                    (now.get("reading") or {}).get("equipment_id"),
                    (m.get("equipment_id"), (now.get("reading") or {}).get("equipment_id")))
            t.check("meters last_telegram", ISO_UTC.match(m["last_telegram"] or ""), m)
            t.check("meters history false without --db (the dashboard asks no history)",
                    m.get("history") is False, m)
        status, _, one = d.get_json("/api/meters/house")
        t.check("meter object", status == 200 and one["name"] == "house", one)

        status, _, dev = d.get_json("/api")
        t.check("hw device", status == 200 and dev == {
            "product_type": "HWE-P1", "product_name": "P1 meter", "serial": dev.get("serial"),
            "firmware_version": dev.get("firmware_version"), "api_version": "v1"}, dev)
        t.check("hw serial", re.match(r"^[0-9a-f]{12}$", dev.get("serial", "")), dev)
        status, _, dev2 = d.get_json("/api")
        t.check("hw serial stable", dev2.get("serial") == dev.get("serial"))

        status, hdrs, data = d.get_json("/api/v1/data")
        t.check("hw data", status == 200 and isinstance(data, dict), status)
        t.check("hw data no nulls", no_nulls(data), data)
        for k in ("total_power_import_kwh", "total_power_import_t1_kwh",
                  "total_power_import_t2_kwh", "total_power_export_kwh"):
            t.check("hw " + k, isinstance(data.get(k), (int, float)), data.get(k))
        t.check("hw active_power_w int", isinstance(data.get("active_power_w"), int), data)
        t.check("hw external list", isinstance(data.get("external"), list), data)
        t.check("hw smr_version", isinstance(data.get("smr_version"), int), data)
        t.check("hw unique_id hex", re.match(r"^[0-9A-Fa-f]+$", data.get("unique_id", "")), data)
        t.check("hw no wifi", "wifi_ssid" not in data)

        status, hdrs, body, _ = d.request("HEAD", "/api/v1/data")
        t.check("head status", status == 200 and body == b"", (status, body[:40]))
        t.check("head length", int(hdrs.get("content-length", "-1")) > 10, hdrs)

        status, hdrs, body, _ = d.request("GET", "/api/v1/telegram")
        t.check("telegram", status == 200 and body.startswith(b"/") and
                re.search(rb"\r\n![0-9A-F]{4}\r\n$", body), body[-20:])
        t.check("telegram type", hdrs.get("content-type", "").startswith("text/plain"), hdrs)

        status, _, p1 = d.get_json("/p1.json")
        t.check("p1.json", status == 200 and isinstance(p1, dict) and
                {"usageHighkWh", "usageLowkWh", "currentUsagekW"} <= set(p1), p1)

        status, hdrs, body, _ = d.request("GET", "/metrics")
        t.check("metrics status", status == 200, status)
        t.check("metrics type", hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
                hdrs)
        text = body.decode()
        for needle in ('p1_telegrams_total{meter="house"}', 'p1_meter_up{meter="house"} 1',
                       "p1_energy_import_kwh_total{", "p1d_build_info{version="):
            t.check("metrics has " + needle, needle in text)
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                               timeout=30)
            t.check("promtool check metrics", p.returncode == 0,
                    (p.stdout + p.stderr).decode()[:800])
        else:
            print("SKIP: promtool not installed")

        status, _, h = d.get_json("/healthz")
        t.check("healthz ok", status == 200 and h == {"status": "ok"}, (status, h))

        status, hdrs, body, _ = d.request("OPTIONS", "/api/now",
                                          {"Origin": "http://x", "Access-Control-Request-Method": "GET"})
        t.check("preflight", status == 204 and "GET" in hdrs.get("access-control-allow-methods", "")
                and hdrs.get("access-control-allow-origin") == "*", (status, hdrs))
        status, hdrs, body, _ = d.request("POST", "/api/now")
        t.check("post 405", status == 405 and "GET" in hdrs.get("allow", ""), (status, hdrs))
        t.check("post 405 json", json.loads(body)["error"]["code"] == "method_not_allowed", body)
        status, hdrs, body, _ = d.request("DELETE", "/metrics")
        t.check("delete 405", status == 405, status)
        # QA: a non-GET on a dashboard file was a 404
        for method, path in (("POST", "/"), ("PUT", "/app.js"), ("DELETE", "/index.html")):
            status, hdrs, body, _ = d.request(method, path)
            t.check("%s %s -> 405 Allow: GET, HEAD" % (method, path),
                    status == 405 and hdrs.get("allow") == "GET, HEAD" and
                    json.loads(body)["error"]["code"] == "method_not_allowed", (status, hdrs))
        status, hdrs, body, _ = d.request("POST", "/nope")
        t.check("POST to an unknown path stays 404", status == 404, status)
        status, _, err = d.get_json("/nope")
        t.check("unknown path 404", status == 404 and err["error"]["code"] == "not_found", err)

        # Caching: a new reading gives a new /api/v1/data, /api/now seq moves on.
        first = d.get_json("/api/now")[2]["seq"]
        deadline = time.time() + 5
        while time.time() < deadline and d.get_json("/api/now")[2]["seq"] == first:
            time.sleep(0.1)
        t.check("seq advances", d.get_json("/api/now")[2]["seq"] > first)
        t.check("alive", d.alive())
    finally:
        d.stop()


def test_export_file(t):
    tmp = tempfile.mkdtemp(prefix="p1d-http-tg-")
    path = os.path.join(tmp, "export.txt")
    with open(path, "wb") as f:
        f.write(EXPORT_TELEGRAM)
    d = Daemon([f"solar=file:{path}"])
    try:
        status, _, data = d.get_json("/api/v1/data")
        t.check("export status", status == 200, status)
        expect = {
            "smr_version": 50, "meter_model": "ISK5\\2M550T-1012",
            "unique_id": "4530303331303033333135353132333435", "active_tariff": 2,
            "total_power_import_kwh": 23333.332, "total_power_import_t1_kwh": 12345.678,
            "total_power_import_t2_kwh": 10987.654, "total_power_export_kwh": 3580.245,
            "total_power_export_t1_kwh": 1234.567, "total_power_export_t2_kwh": 2345.678,
            "active_power_w": -2345, "active_power_l1_w": -2345, "active_voltage_l1_v": 238.4,
            "active_current_a": 10.0, "active_current_l1_a": -10.0, "external": [],
        }
        t.check("export fields exact", data == expect,
                {k: (data.get(k), expect.get(k)) for k in set(data) | set(expect)
                 if data.get(k) != expect.get(k)})
        for absent in ("total_gas_m3", "gas_timestamp", "active_power_l2_w", "montly_power_peak_w",
                       "any_power_fail_count", "voltage_sag_l1_count", "wifi_ssid"):
            t.check("export absent " + absent, absent not in data)
        status, _, p1 = d.get_json("/p1.json")
        t.check("p1.json mapping", p1 == {
            "usageHighkWh": 10987.654, "usageLowkWh": 12345.678, "productionHighkWh": 2345.678,
            "productionLowkWh": 1234.567, "currentUsagekW": 0, "currentProductionkW": 2.345}, p1)
        status, _, body, _ = d.request("GET", "/api/v1/telegram")
        t.check("telegram byte-exact", body == EXPORT_TELEGRAM, body[-30:])
        status, _, body, _ = d.request("GET", "/metrics")
        t.check("metrics net negative", 'p1_power_net_watts{meter="solar"} -2345' in body.decode())
        status, _, ms = d.get_json("/api/meters")
        t.check("file meter stopped", ms[0]["state"] == "stopped", ms)
        # A stopped meter does not make the daemon unhealthy.
        status, _, h = d.get_json("/healthz")
        t.check("healthz stopped meter", status == 200, (status, h))
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_no_reading(t):
    # A TCP source that never connects: no reading, unhealthy.
    dead = free_port()
    d = Daemon([f"grid=tcp:127.0.0.1:{dead}"], wait_reading=False)
    try:
        for path in ("/api/now", "/api/v1/data", "/api/v1/telegram", "/p1.json",
                     "/api/meters/grid/now"):
            status, _, err = d.get_json(path)
            t.check("no reading 503 " + path, status == 503 and
                    err["error"]["code"] == "no_reading", (status, err))
        status, _, h = d.get_json("/healthz")
        t.check("healthz 503", status == 503 and h["status"] != "ok" and "grid" in h["reason"],
                (status, h))
        status, _, dev = d.get_json("/api")
        t.check("hw device without reading", status == 200 and len(dev["serial"]) == 12, dev)
        status, _, body, _ = d.request("GET", "/metrics")
        t.check("metrics without reading", status == 200 and
                'p1_meter_up{meter="grid"} 0' in body.decode(), body[:200])
    finally:
        d.stop()


def test_auth(t):
    d = Daemon(["house=sim"], extra=["--token", "s3cret"], wait_reading=False)
    try:
        status, hdrs, err = d.get_json("/api/now")
        t.check("token missing 401", status == 401 and err["error"]["code"] == "unauthorized",
                status)
        t.check("token www-authenticate", hdrs.get("www-authenticate", "").startswith("Bearer"),
                hdrs)
        status, _, _ = d.get_json("/api/now", {"Authorization": "Bearer s3crex"})
        t.check("token wrong 401", status == 401, status)
        status, _, _ = d.get_json("/api/now", {"Authorization": "Bearer s3cret!"})
        t.check("token longer 401", status == 401, status)
        deadline = time.time() + 10
        status = 0
        while time.time() < deadline and status != 200:
            status, _, _ = d.get_json("/api/now", {"Authorization": "Bearer s3cret"})
            time.sleep(0.05)
        t.check("token right 200", status == 200, status)
        status, _, _, _ = d.request("OPTIONS", "/api/now")
        t.check("preflight without token", status == 204, status)
        # QA: the dashboard's EventSource cannot send a header: ?access_token= on GET/HEAD
        status, _, _ = d.get_json("/api/now?access_token=s3cret")
        t.check("access_token right 200", status == 200, status)
        status, _, _ = d.get_json("/api/now?access_token=s3crex")
        t.check("access_token wrong 401", status == 401, status)
        status, _, _ = d.get_json("/api/now?access_token=s3cre")
        t.check("access_token shorter 401", status == 401, status)
        status, _, _ = d.get_json("/api/now?access_token=")
        t.check("access_token empty 401", status == 401, status)
        status, _, _, _ = d.request("GET", "/")
        t.check("dashboard files without the token 200 (code only; the page asks for it)",
                status == 200, status)
        status, _, _, _ = d.request("GET", "/app.js")
        t.check("app.js without the token 200", status == 200, status)
        log = d.logtext()
        t.check("the token is never logged", "s3cret" not in log, log[-500:])
    finally:
        d.stop()
    d = Daemon(["house=sim"], extra=["--http-basic-user", "ann", "--http-basic-pass", "pw:x"],
               wait_reading=False)
    try:
        status, hdrs, _ = d.get_json("/metrics")
        t.check("basic missing 401", status == 401 and
                hdrs.get("www-authenticate", "").startswith("Basic"), (status, hdrs))
        import base64
        good = "Basic " + base64.b64encode(b"ann:pw:x").decode()
        bad = "Basic " + base64.b64encode(b"ann:pw:y").decode()
        t.check("basic right", d.request("GET", "/metrics", {"Authorization": good})[0] == 200)
        t.check("basic wrong", d.request("GET", "/metrics", {"Authorization": bad})[0] == 401)
        t.check("basic: the dashboard's files need it too", d.request("GET", "/")[0] == 401)
        t.check("basic: access_token is no way around it",
                d.request("GET", "/metrics?access_token=pw:x")[0] == 401)
    finally:
        d.stop()


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_listen(t):
    if not ipv6_available():
        print("SKIP: no IPv6 loopback; [::1] and [::] listen tests")
    else:
        d = Daemon(["house=sim"], listen="[::1]:{port}", host="::1")
        try:
            t.check("listen [::1]", d.request("GET", "/healthz")[0] == 200)
        finally:
            d.stop()
        d = Daemon(["house=sim"], listen="[::]:{port}", host="::1")
        try:
            t.check("dual stack v6", d.request("GET", "/healthz")[0] == 200)
            d.host = "127.0.0.1"
            t.check("dual stack v4", d.request("GET", "/healthz")[0] == 200)
        finally:
            d.stop()
    # A port in use: p1d exits non-zero and says why.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        p = subprocess.run([P1D, "--source", "x=sim", "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, timeout=10)
        err = (p.stdout + p.stderr).decode(errors="replace")
        t.check("address in use exits", p.returncode != 0, p.returncode)
        t.check("address in use message", "in use" in err, err[-300:])
    finally:
        busy.close()
    p = subprocess.run([P1D, "--source", "x=sim", "--listen", "nonsense:port"],
                       capture_output=True, timeout=10)
    t.check("bad listen address exits", p.returncode != 0, p.returncode)


def main():
    if not os.access(P1D, os.X_OK):
        print("SKIP: build/p1d not built")
        print("0 passed, 1 failed")
        return 1
    t = Tally()
    for fn in (test_sim, test_export_file, test_no_reading, test_auth, test_listen):
        try:
            fn(t)
        except Exception as e:  # a crash in one group must not hide the others
            t.check(fn.__name__, False, repr(e))
    t.check("daemons exited cleanly", not DAEMON_PROBLEMS, DAEMON_PROBLEMS)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
