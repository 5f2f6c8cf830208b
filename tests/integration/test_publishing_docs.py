#!/usr/bin/env python3
"""test_publishing_docs.py: the publishing docs followed literally against real peers on
127.0.0.1: docs/PUBLISHING.md's MQTT snippet and field table (what Home Assistant is told), its
InfluxDB 1.x snippet, database creation and Grafana queries, and docs/API.md's Prometheus scrape
job and queries."""
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, ROOT, free_port, need_p1d, tmpdir,  # noqa: E402
                            wait_for)
from mqtt_helpers import MOSQUITTO, Broker, Mqtt  # noqa: E402
from prom_helpers import PROMETHEUS, PROMTOOL, Prometheus  # noqa: E402

C = Checks("test_publishing_docs")
need_p1d(C)
PUBLISHING = os.path.join(ROOT, "docs", "PUBLISHING.md")
API = os.path.join(ROOT, "docs", "API.md")
INFLUXD = shutil.which("influxd")


def section(path, heading):
    """The text of a Markdown file from the line `heading` to the next heading of its level."""
    text = open(path, encoding="utf-8").read()
    start = text.index("\n" + heading + "\n")
    level = heading.split(" ")[0]
    end = text.find("\n" + level + " ", start + len(heading) + 2)
    return text[start:end if end > 0 else len(text)]


def blocks(text, lang):
    """The fenced code blocks of `lang` ("" for plain fences) in text."""
    out, cur, kind = [], None, None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if cur is None:
                cur, kind = [], line[3:].strip()
            else:
                if kind == lang:
                    out.append("".join(cur))
                cur = None
        elif cur is not None:
            cur.append(line)
    return out


def urlget(url, data=None, timeout=5):
    req = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def field_table():
    """PUBLISHING.md's field table: {field: (unit, device_class, state_class)}; '—' = none."""
    out = {}
    for line in section(PUBLISHING, "### Topics").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z0-9_]+)`", cells[0])
        if len(names) == 2 and "…" in cells[0]:  # `power_l1_w` … `power_l3_w`
            a, b = names
            names = [a.replace("l1", "l%d" % i) for i in range(1, 4)]
            if b != names[-1]:
                continue
        for n in names:
            out[n] = tuple(None if c == "—" else c for c in cells[1:4])
    return out


def test_mqtt(tmp):
    """The MQTT snippet as given (host, port and paths made local) with a simulated meter: what
    Home Assistant receives is what the field table promises, retained as the topic table says."""
    port = free_port()
    broker = Broker(tmp, port).start()
    ini = blocks(section(PUBLISHING, "## MQTT"), "ini")[0]
    pw = os.path.join(tmp, "mqtt.pass")
    with open(pw, "w") as f:
        f.write("secret\n")
    ini = re.sub(r"(?m)^host = .*$", "host = 127.0.0.1\nport = %d" % port, ini)
    ini = re.sub(r"(?m)^db = .*$", "db = %s" % os.path.join(tmp, "mqtt.db"), ini)
    ini = re.sub(r"(?m)^password_file = .*$", "password_file = %s" % pw, ini)
    conf = os.path.join(tmp, "mqtt.conf")
    with open(conf, "w") as f:
        f.write(ini + "\n[source home]\nspec = sim\n\n[http]\nlisten = 127.0.0.1:0\n")
    d = Daemon(["--config", conf], tmp)
    sub = None
    try:
        C.check("MQTT snippet: p1d connects", d.wait_log(r"mqtt: connected to", 10) is not None,
                d.text()[-600:])
        d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 2, 10)
        time.sleep(1)
        # a late subscriber sees exactly what the broker retained
        sub = Mqtt(port)
        sub.wait(lambda m: m[1] == "p1d/home/state", 5)
        time.sleep(0.5)
        got = {}
        for _, topic, payload, retain in sub.snapshot():
            got.setdefault(topic, (payload, retain))
        st = got.get("p1d/status")
        C.check("p1d/status is online, retained", st == (b"online", True), str(st))
        state = got.get("p1d/home/state")
        C.check("p1d/home/state is retained JSON", state is not None and state[1] and
                json.loads(state[0]).get("power_net_w") is not None, str(state)[:200])
        configs = {t.split("/")[3]: (json.loads(p), r) for t, (p, r) in got.items()
                   if t.startswith("homeassistant/sensor/p1d_home/") and t.endswith("/config")}
        C.check("discovery is on by default: configs retained", configs and
                all(r for _, r in configs.values()), str(sorted(configs)))
        table = field_table()
        wrong = []
        for field, (cfg, _) in configs.items():
            want = table.get(field)
            have = (cfg.get("unit_of_measurement"), cfg.get("device_class"),
                    cfg.get("state_class"))
            if want != have:
                wrong.append((field, want, have))
        C.check("every announced field has the unit, device_class and state_class of the table",
                configs and not wrong, str(wrong))
        C.check("the Energy dashboard's fields are announced",
                {"energy_import_kwh", "energy_export_kwh", "gas_m3", "power_w"} <= set(configs),
                str(sorted(configs)))
        bad = []
        for field, (cfg, _) in configs.items():
            value = got.get(cfg.get("state_topic"), (b"", False))
            if (cfg.get("unique_id") != "p1d_home_" + field or "value_template" in cfg or
                    cfg.get("state_topic") != "p1d/home/" + field or
                    [a.get("topic") for a in cfg.get("availability") or []] !=
                    ["p1d/status", "p1d/home/availability"] or
                    cfg.get("availability_mode") != "all" or
                    cfg.get("default_entity_id") != "sensor.p1d_home_" + field or
                    not re.fullmatch(rb"-?[0-9]+(\.[0-9]+)?", value[0]) or not value[1]):
                bad.append((field, cfg.get("unique_id"), cfg.get("state_topic"), value))
        C.check("each config: unique_id, plain retained number on its state_topic, availability",
                not bad, str(bad[:3]))
        gas = configs.get("gas_m3", ({}, False))[0].get("device", {})
        C.check("the gas meter is the device the device table describes",
                gas.get("identifiers") == ["p1d_home.gas"] and gas.get("name") ==
                "Gas meter home" and gas.get("via_device") == "p1d_home" and
                gas.get("serial_number"), str(gas))
        # The documented clean-up of a meter's configs, run as written (broker and meter filled
        # in) once p1d is gone.
        d.stop()
        sh = blocks(section(PUBLISHING, "### Home Assistant discovery"), "sh")[0].strip()
        cmd = shlex.split(sh.replace("BROKER", "127.0.0.1 -p %d" % port)
                          .replace("METER", "home"))
        subprocess.run(cmd, capture_output=True, timeout=10)
        late = Mqtt(port, topics=("homeassistant/#",))
        late.wait(lambda m: False, 1)
        left = sorted({m[1] for m in late.snapshot() if m[2]})
        late.close()
        C.check("the documented mosquitto_sub deletes every config of the meter (%d)" %
                len(configs), cmd[0] == "mosquitto_sub" and not left, str(left[:3]))
    finally:
        if sub:
            sub.close()
        d.stop()
        broker.stop()


class Influxd:
    """Debian's influxd 1.x on 127.0.0.1, data in tmp, no authentication."""

    def __init__(self, tmp, auth=False):
        self.port = free_port()
        name = "influx-auth" if auth else "influx"
        conf = os.path.join(tmp, name + ".conf")
        d = os.path.join(tmp, name)
        with open(conf, "w") as f:
            f.write('reporting-disabled = true\nbind-address = "127.0.0.1:%d"\n'
                    '[meta]\n  dir = "%s/meta"\n'
                    '[data]\n  dir = "%s/data"\n  wal-dir = "%s/wal"\n  query-log-enabled = false\n'
                    '[http]\n  enabled = true\n  bind-address = "127.0.0.1:%d"\n'
                    '  auth-enabled = %s\n  log-enabled = false\n'
                    '[monitor]\n  store-enabled = false\n' %
                    (free_port(), d, d, d, self.port, "true" if auth else "false"))
        self.logf = open(os.path.join(tmp, name + ".log"), "ab")
        self.proc = subprocess.Popen([INFLUXD, "-config", conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        ok = wait_for(lambda: self.ping(), 20)
        if not ok:
            raise RuntimeError("influxd did not start")

    def ping(self):
        try:
            return urlget("http://127.0.0.1:%d/ping" % self.port, timeout=1)[0] == 204
        except OSError:
            return False

    def query(self, q, auth=None):
        args = {"db": "p1", "q": q, "epoch": "s"}
        if auth:
            args.update({"u": auth[0], "p": auth[1]})
        url = "http://127.0.0.1:%d/query?%s" % (self.port, urllib.parse.urlencode(args))
        return json.loads(urlget(url)[1])["results"][0]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def test_influx(tmp):
    """The 1.x snippet before and after the documented CREATE DATABASE, the documented point and
    the Grafana queries, with two meters."""
    influx = Influxd(tmp)
    sec = section(PUBLISHING, "## InfluxDB")
    ini = blocks(sec, "ini")[0]
    ini = re.sub(r"(?m)^url = .*$", "url = http://127.0.0.1:%d" % influx.port, ini)
    conf = os.path.join(tmp, "influx.conf")
    with open(conf, "w") as f:
        f.write("[store]\ndb = %s\n\n[source home]\nspec = sim\n\n[source house]\nspec = sim:7\n\n"
                "[http]\nlisten = 127.0.0.1:0\n\n%s" % (os.path.join(tmp, "influx.db"), ini))
    prom_port = None
    d = Daemon(["--config", conf], tmp)
    try:
        line = d.wait_log(r"error: influxdb: .*", 10)
        C.check("no database yet: one error that names it and how to create it",
                line is not None and 'CREATE DATABASE "p1"' in line.group(0), d.text()[-600:])
        pub = wait_for(lambda: [p for p in d.meter("home").get("publishers") or []
                                if p.get("last_error")], 5)
        err = pub[0]["last_error"] if pub else ""
        C.check("no database yet: auth_failed, last_error without a trailing blank",
                pub and pub[0]["state"] == "auth_failed" and err.startswith("HTTP 404") and
                err == err.rstrip(), repr(err))
        d.stop()

        # the documented curl command, pointed at this server
        cmd = re.search(r"`(curl -XPOST http://127\.0\.0\.1:8086/query [^`]*)`", sec).group(1)
        q = re.search(r"'q=([^']*)'", cmd).group(1)
        st, _ = urlget("http://127.0.0.1:%d/query" % influx.port,
                       urllib.parse.urlencode({"q": q}).encode())
        C.check("the documented CREATE DATABASE works", st == 200, str(st))
        d = Daemon(["--config", conf], tmp)
        prom_port = d.http_port()
        ok = wait_for(lambda: "series" in influx.query(
            "SELECT count(power_w) FROM p1 WHERE meter='house'"), 10)
        C.check("after a restart the points arrive", ok, d.text()[-600:])
        time.sleep(2)

        plain = blocks(sec, "")
        example = [b for b in plain if b.startswith("p1,")][0].strip()
        meas, rest = example.split(",", 1)
        tags, fields, _ = rest.split(" ")
        keys = influx.query("SHOW FIELD KEYS FROM p1")
        types = dict(keys["series"][0]["values"]) if "series" in keys else {}
        want = {kv.split("=")[0]: ("integer" if kv.endswith("i") else "float")
                for kv in fields.split(",")}
        C.check("the documented point: measurement p1, tag meter",
                meas == "p1" and tags == "meter=home" and "series" in influx.query(
                    "SELECT * FROM p1 WHERE meter='home' LIMIT 1"), example[:60])
        wrong = {k: (v, types.get(k)) for k, v in want.items()
                 if types.get(k) != v}
        C.check("the documented fields exist with their types (tariff integer, others float)",
                types and not wrong, str(wrong))

        queries = [ln for b in plain for ln in b.splitlines() if ln.startswith("SELECT")]
        queries += re.findall(r"`(SELECT sum[^`]*)`", sec)
        C.check("three Grafana queries documented", len(queries) == 3, str(queries))
        for q in queries[:2]:
            real = q.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "10s")
            res = influx.query(real)
            vals = [v[1] for v in res.get("series", [{}])[0].get("values", []) if v[1] is not None]
            C.check("Grafana query returns values: %s" % q[:40], vals and "error" not in res,
                    str(res)[:300])
        # spread over one meter: at most the meter's own counter change
        res = influx.query(queries[1].replace("$timeFilter", "time > now() - 1h"))
        vals = [v[1] for v in res.get("series", [{}])[0].get("values", []) if v[1] is not None]
        C.check("energy per day of one meter is a small positive number, not two meters mixed",
                vals and 0 <= vals[-1] < 1, str(vals))
        if PROMETHEUS and PROMTOOL:
            test_prometheus(tmp, prom_port)
        else:
            print("SKIP: prometheus or promtool not installed")
        d.stop()

        # another database: only new readings, until the documented DELETE clears the cursor
        influx.query("CREATE DATABASE p1b")
        first = influx.query("SELECT first(power_w) FROM p1 WHERE meter='home'")
        first = first["series"][0]["values"][0][0]
        text = open(conf).read().replace("database = p1", "database = p1b")
        with open(conf, "w") as f:
            f.write(text)

        def first_b():
            r = influx.query("SELECT first(power_w) FROM p1b..p1 WHERE meter='home'")
            return r["series"][0]["values"][0][0] if "series" in r else None
        d = Daemon(["--config", conf], tmp)
        C.check("a new database gets the new readings only", wait_for(first_b, 10) and
                first_b() > first, str((first, first_b())))
        d.stop()
        cmd = [b for b in plain if b.startswith("sqlite3 ")][0].strip()
        sql = re.search(r'"(DELETE FROM outbox_cursor [^"]*)"', cmd).group(1)
        con = sqlite3.connect(os.path.join(tmp, "influx.db"))
        con.execute(sql)
        con.commit()
        con.close()
        d = Daemon(["--config", conf], tmp)
        C.check("after the documented DELETE it gets every stored reading",
                wait_for(lambda: first_b() == first, 10), str((first, first_b())))
    finally:
        d.stop()
        influx.stop()


def test_influx_auth(tmp):
    """The 1.x snippet's username and password_file lines against a server with authentication:
    the right password writes, a wrong one is one clear error."""
    influx = Influxd(tmp, auth=True)
    admin = ("admin", "adm1n")
    try:
        influx.query("CREATE USER admin WITH PASSWORD 'adm1n' WITH ALL PRIVILEGES")
        for q in ("CREATE DATABASE p1", "CREATE USER p1d WITH PASSWORD 's3cret'",
                  "GRANT WRITE ON p1 TO p1d"):
            influx.query(q, admin)
        ini = blocks(section(PUBLISHING, "## InfluxDB"), "ini")[0]
        ini = re.sub(r"(?m)^url = .*$", "url = http://127.0.0.1:%d" % influx.port, ini)
        ini = re.sub(r"(?m)^# (username = .*)$", r"\1", ini)
        for i, pw in enumerate(("s3cret", "Wr0ngPw")):
            path = os.path.join(tmp, "influx-%d.pass" % i)
            with open(path, "w") as f:
                f.write(pw + "\n")
            conf = os.path.join(tmp, "influx-%d.conf" % i)
            with open(conf, "w") as f:
                f.write("[store]\ndb = %s\n\n[source home]\nspec = sim\n\n[http]\n"
                        "listen = 127.0.0.1:0\n\n%s" % (
                            os.path.join(tmp, "influx-%d.db" % i),
                            re.sub(r"(?m)^# password_file = .*$", "password_file = " + path,
                                   ini)))
            d = Daemon(["--config", conf], tmp)
            try:
                if pw == "s3cret":
                    ok = wait_for(lambda: "series" in influx.query(
                        "SELECT count(power_w) FROM p1", admin), 10)
                    C.check("username and password_file: the points arrive", ok, d.text()[-600:])
                else:
                    line = d.wait_log(r"error: influxdb: .*", 10)
                    C.check("a wrong password: one error naming HTTP 401, password not logged",
                            line is not None and "HTTP 401" in line.group(0) and
                            pw not in d.text(), d.text()[-600:])
            finally:
                d.stop()
    finally:
        influx.stop()


class Writes(BaseHTTPRequestHandler):
    """An InfluxDB write endpoint that records each request (path, Authorization, body) and
    answers with the class's status and body."""
    requests = []
    status, reply = 204, b""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).requests.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(self.status)
        if self.reply:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *a):
        pass


class NoBucket(Writes):
    """InfluxDB 2.x's answer to a write into a bucket that does not exist."""
    requests = []
    status, reply = 404, b'{"code":"not found","message":"bucket \\"p1\\" not found"}\n'


class Influx3(Writes):
    """What InfluxDB 3 answers on its 2.x-compatible write endpoint: 204, nothing else (Debian
    has no InfluxDB 3 to run)."""
    requests = []


def snippet_daemon(tmp, k, handler, token, name):
    """p1d on a simulated meter with the k-th ini snippet of the InfluxDB section, its url made
    `handler` on 127.0.0.1 and its token_file one holding `token`: (server, daemon, snippet)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    snippet = ini = blocks(section(PUBLISHING, "## InfluxDB"), "ini")[k]
    tok = os.path.join(tmp, name + ".token")
    with open(tok, "w") as f:
        f.write(token + "\n")
    ini = re.sub(r"(?m)^url = .*$", "url = http://127.0.0.1:%d" % srv.server_address[1], ini)
    ini = re.sub(r"(?m)^token_file = .*$", "token_file = " + tok, ini)
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("[store]\ndb = %s\n\n[source home]\nspec = sim\n\n[http]\n"
                "listen = 127.0.0.1:0\n\n%s" % (os.path.join(tmp, name + ".db"), ini))
    return srv, Daemon(["--config", conf], tmp), snippet


def test_influx_v2(tmp):
    """The 2.x snippet (url made local, token in a file) against a server without the bucket:
    the request is the documented one, the error names the bucket and org."""
    srv, d, _ = snippet_daemon(tmp, 1, NoBucket, "t0ken-v2", "influx-v2")
    try:
        line = d.wait_log(r"error: influxdb: .*", 10)
        req = NoBucket.requests[0][:2] if NoBucket.requests else ("", "")
        C.check("2.x snippet: POST /api/v2/write?org=home&bucket=p1&precision=s with the token",
                req == ("/api/v2/write?org=home&bucket=p1&precision=s", "Token t0ken-v2"),
                str(req))
        C.check("2.x, no such bucket: the error names the bucket and org, no trailing blank",
                line is not None and "does bucket p1 exist in org home?" in line.group(0) and
                '" not found"})' in line.group(0), d.text()[-600:])
    finally:
        d.stop()
        srv.shutdown()


def test_influx_v3(tmp):
    """The InfluxDB 3 snippet (url made local, token in a file): the 2.x write with the token,
    and line protocol points of the meter in its body."""
    srv, d, snippet = snippet_daemon(tmp, 2, Influx3, "apiv3_t0ken", "influx-v3")
    try:
        C.check("3.x snippet is the one for InfluxDB 3", snippet.startswith("# InfluxDB 3"),
                snippet[:40])
        deadline = time.time() + 15
        while time.time() < deadline and not Influx3.requests:
            time.sleep(0.1)
        req = Influx3.requests[0] if Influx3.requests else ("", "", b"")
        C.check("3.x snippet: POST /api/v2/write?org=home&bucket=p1&precision=s with the token",
                req[:2] == ("/api/v2/write?org=home&bucket=p1&precision=s", "Token apiv3_t0ken"),
                str(req[:2]))
        C.check("3.x snippet: the body is line protocol of meter home",
                req[2].startswith(b"p1,meter=home "), req[2][:80])
        C.check("3.x snippet: no error logged", "error: influxdb" not in d.text(), d.text()[-600:])
    finally:
        d.stop()
        srv.shutdown()


def test_azure_down(tmp):
    """Azure unreachable from the start: the failed attempts count as retries of the meter
    (docs/API.md, publishers), as MQTT's and InfluxDB's do."""
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0",
                "--db", os.path.join(tmp, "azure-down.db"),
                "--azure-endpoint", "http://127.0.0.1:%d/devstoreaccount1" % free_port(),
                "--azure-account", "devstoreaccount1", "--azure-key", key], tmp)
    try:
        d.http_port()

        def azure():
            for p in d.meter("home").get("publishers") or []:
                if p.get("name") == "azure" and p.get("retries") and p.get("lag_readings"):
                    return p
            return None
        p = wait_for(azure, 8) or {}
        C.check("Azure down from the start: retrying, the failed attempts count as retries",
                p.get("state") == "retrying" and p.get("retries", 0) >= 1, str(p))
        st, body = urlget("http://127.0.0.1:%d/metrics" % d.port)
        text = body.decode()
        C.check("... and in /metrics", re.search(
            r'p1_publisher_retries_total\{meter="home",publisher="azure"\} [1-9]', text) and
            'p1_publisher_up{publisher="azure"} 0' in text, text[-800:])
    finally:
        d.stop()


def test_prometheus(tmp, port):
    """API.md's scrape job (target made local, scraped every second) and its queries."""
    yml = blocks(section(API, "## GET /metrics — Prometheus"), "yaml")[0]
    yml = yml.replace("192.168.1.20:8080", "127.0.0.1:%d" % port)
    yml = yml.replace("scrape_interval: 10s", "scrape_interval: 1s")
    prom = Prometheus(tmp, yml)
    try:
        r = subprocess.run([PROMTOOL, "check", "config", prom.config], capture_output=True,
                           timeout=20)
        C.check("scrape job: promtool check config", r.returncode == 0, r.stdout + r.stderr)
        up = wait_for(lambda: prom.query('up{job="p1d"} == 1'), 15)
        C.check("Prometheus scrapes p1d: up == 1", up, "")
        text = section(API, "## GET /metrics — Prometheus")
        qs = [q.replace('"house"', '"home"') for q in
              re.findall(r"`((?:p1_|sum by|increase)[^`]*)`",
                         text.split("```yaml")[1].split("### Grafana")[0])]
        C.check("five documented queries", len(qs) == 5, str(qs))
        for q in qs[:3]:
            res = wait_for(lambda: prom.query(q), 6)
            C.check("PromQL %s has a result" % q, res, "")
    finally:
        prom.stop()


def main():
    with tmpdir() as tmp:
        if os.access(MOSQUITTO, os.X_OK):
            test_mqtt(tmp)
        else:
            print("SKIP: mosquitto not installed")
        if INFLUXD:
            test_influx(tmp)
            test_influx_auth(tmp)
        else:
            print("SKIP: influxd not installed")
        test_influx_v2(tmp)
        test_influx_v3(tmp)
        test_azure_down(tmp)
    C.done()


if __name__ == "__main__":
    main()
