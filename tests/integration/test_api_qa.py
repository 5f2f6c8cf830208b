#!/usr/bin/env python3
"""test_api_qa.py: regressions found by the QA pass over the HTTP API: local times that do not
exist (the spring gap) or happen twice (the autumn hour) in /api/history, /api/summary and
/api/prices, and what the documentation promises about the endpoints."""
import datetime
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, ROOT, http, need_p1d, tmpdir  # noqa: E402
from store_helpers import P1, p1  # noqa: E402


def error_of(body):
    try:
        e = json.loads(body)["error"]
        return e["code"], e["message"]
    except (ValueError, KeyError, TypeError):
        return None, None


def test_local_times(c, port):
    """2026-03-29 02:00..02:59:59 does not happen in CET/CEST: a 400 naming the parameter. The
    repeated autumn hour is its later (winter) pass; an explicit offset always decides."""
    gap = [("/api/history?from=2026-03-29T02:30&to=2026-03-29T04:00&step=1h", "from"),
           ("/api/history?from=2026-03-29T01:00&to=2026-03-29T02:00", "to"),
           ("/api/history?from=2026-03-29%2002:59:59&to=2026-03-29T05:00", "from"),
           ("/api/summary?at=2026-03-29T02:30", "at"),
           ("/api/prices?from=2026-03-29T02:15", "from"),
           ("/api/prices?from=2026-03-29&to=2026-03-29T02:00:00", "to")]
    for path, key in gap:
        st, _, b = http(port, path)
        code, msg = error_of(b)
        c.check("%s is a 400 naming '%s'" % (path, key),
                st == 400 and code == "bad_parameter" and msg.startswith(key + ": ") and
                "does not exist in local time" in msg, "%s %s" % (st, b))
    # the edges of the gap exist
    st, _, b = http(port, "/api/history?from=2026-03-29T01:59:59&to=2026-03-29T03:00&step=raw"
                          "&fields=import_kwh")
    ok = st == 200 and json.loads(b)["to"] == "2026-03-29T03:00:00+02:00"
    c.check("01:59:59 and 03:00 on the spring day are served", ok, "%s %s" % (st, b[:300]))
    # an offset names the instant: no refusal, either offset
    for off, want in (("%2B01:00", "2026-03-29T03:00:00+02:00"),
                      ("%2B02:00", "2026-03-29T01:00:00+01:00")):
        st, _, b = http(port, "/api/history?from=2026-03-29T02:30%s&to=2026-03-29T05:00"
                              "&step=1h&fields=import_kwh" % off)
        ok = st == 200 and json.loads(b)["from"] == want
        c.check("02:30%s in the gap is taken as given" % off, ok, "%s %s" % (st, b[:300]))
    st, _, b = http(port, "/api/summary?at=2026-03-29T02:30Z")
    c.check("summary at 02:30Z is a 200", st == 200, "%s %s" % (st, b[:200]))
    # the autumn hour: without an offset the later (winter, +01:00) pass
    st, _, b = http(port, "/api/history?from=2026-10-25T02:30&to=2026-10-25T02:45&step=raw"
                          "&fields=import_kwh")
    ok = st == 200 and json.loads(b)["from"] == "2026-10-25T02:30:00+01:00"
    c.check("autumn 02:30 without an offset is the winter pass", ok, "%s %s" % (st, b[:300]))
    st, _, b = http(port, "/api/history?from=2026-10-25T02:30%2B02:00&to=2026-10-25T02:45%2B02:00"
                          "&step=raw&fields=import_kwh")
    ok = st == 200 and json.loads(b)["from"] == "2026-10-25T02:30:00+02:00"
    c.check("autumn 02:30+02:00 is the summer pass", ok, "%s %s" % (st, b[:300]))
    st, _, b = http(port, "/api/prices?from=2026-10-25T02:30&to=2026-10-25T03:30")
    ok = st == 200 and json.loads(b)["from"] == "2026-10-25T02:30:00+01:00"
    c.check("prices: autumn 02:30 is the winter pass too", ok, "%s %s" % (st, b[:300]))
    # an uploaded price at a skipped local time would land on a neighbouring hour
    body = b"time,price\n2026-03-29T01:00,0.2\n2026-03-29T02:00,0.3\n2026-03-29T03:00,0.4\n"
    st, _, b = http(port, "/api/prices?kind=power", "PUT", body=body,
                    headers={"Content-Type": "text/csv"})
    code, msg = error_of(b)
    c.check("PUT /api/prices with 02:00 on the spring day is a 400 naming the line",
            st == 400 and code == "bad_prices" and
            (msg or "").startswith("line 3: time: '2026-03-29T02:00' does not exist"),
            "%s %s" % (st, b))
    st, _, b = http(port, "/api/prices?from=2026-03-29&to=2026-03-30")
    c.check("... and stores nothing", st == 200 and json.loads(b)["power"] == [], b)
    body = b'[{"time":"2026-03-29T02:30","price":0.3}]'
    st, _, b = http(port, "/api/prices?kind=power", "PUT", body=body,
                    headers={"Content-Type": "application/json"})
    c.check("... the same for JSON", st == 400 and b"does not exist in local time" in b,
            "%s %s" % (st, b))
    body = b"time,price\n2026-03-29T02:00+01:00,0.3\n2026-03-29T04:00,0.4\n"
    st, _, b = http(port, "/api/prices?kind=power", "PUT", body=body,
                    headers={"Content-Type": "text/csv"})
    ok = st == 200 and json.loads(b)["from"] == "2026-03-29T03:00:00+02:00"
    c.check("... with an offset the upload is taken", ok, "%s %s" % (st, b))
    # unix seconds never have a gap
    st, _, b = http(port, "/api/summary?at=1774747800")
    c.check("summary at unix seconds inside the local gap is a 200", st == 200, "%s %s" % (st, b))


def hw_time_ok(v):
    """HomeWizard's YYMMDDhhmmss number, as python-homewizard-energy parses it."""
    try:
        datetime.datetime.strptime(str(v), "%y%m%d%H%M%S")
        return True
    except ValueError:
        return False


def test_homewizard_external(c, tmp):
    """A placeholder M-Bus channel (empty id, 1970 time; gas moved to channel 2) and a channel
    without a valid time are left out of `external`: python-homewizard-energy (Home Assistant)
    fails the whole /api/v1/data answer on an entry without unique_id or timestamp."""
    for name, want in (("gas-channel2-empty-ch1.txt", 1), ("placeholder-times.txt", 0),
                       ("dsmr50-3phase-gas.txt", 1), ("be-fluvius-emucs.txt", 2)):
        d = Daemon(["--source", "m=file:%s" % os.path.join(ROOT, "tests", "data", name),
                    "--listen", "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            d.wait_meter("m", lambda m: m.get("telegrams", 0) >= 1)
            st, h, b = http(port, "/api/v1/data")
            j = json.loads(b) if st == 200 else {}
            ext = j.get("external")
            ok = isinstance(ext, list) and len(ext) == want and all(
                isinstance(e.get("unique_id"), str) and e["unique_id"] and
                hw_time_ok(e.get("timestamp")) and isinstance(e.get("value"), (int, float)) and
                e.get("type") in ("gas_meter", "water_meter", "heat_meter", "warm_water_meter",
                                  "inlet_heat_meter") for e in ext)
            c.check("%s: %d external entries, each with unique_id and timestamp" % (name, want),
                    ok, "%s %s" % (st, b))
            ok = all(hw_time_ok(j[k]) for k in ("gas_timestamp", "montly_power_peak_timestamp")
                     if k in j)
            c.check("%s: gas_timestamp and montly_power_peak_timestamp parse" % name, ok, b)
        finally:
            d.stop()


def load_openapi():
    try:
        import yaml
    except ImportError:
        return None
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def validate(spec, schema, v, where="$", strict=True):
    """Problems of value v against an OpenAPI 3.0 schema (the subset docs/openapi.yaml uses)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if v is None:
        return [] if schema.get("nullable") else ["%s: null" % where]
    probs = []
    for sub in schema.get("allOf", []):
        probs += validate(spec, sub, v, where, False)
    if "oneOf" in schema:
        if all(validate(spec, sub, v, where) for sub in schema["oneOf"]):
            probs.append("%s: matches no oneOf" % where)
    t = schema.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t == "number":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    else:
        ok = t is None or isinstance(v, kinds[t])
    if not ok:
        return probs + ["%s: %r is not %s" % (where, v, t)]
    if "enum" in schema and v not in schema["enum"]:
        probs.append("%s: %r not in %s" % (where, v, schema["enum"]))
    if isinstance(v, dict):
        props = dict(schema.get("properties", {}))
        for sub in schema.get("allOf", []):
            if "$ref" in sub:
                sub = spec["components"]["schemas"][sub["$ref"].rsplit("/", 1)[1]]
            props.update(sub.get("properties", {}))
        for k in schema.get("required", []):
            if k not in v:
                probs.append("%s: missing %s" % (where, k))
        extra = schema.get("additionalProperties")
        for k, x in v.items():
            if k in schema.get("properties", {}):
                probs += validate(spec, props[k], x, where + "." + k)
            elif isinstance(extra, dict):
                probs += validate(spec, extra, x, where + "." + k)
            elif strict and k not in props and extra is not True:
                probs.append("%s: undocumented key %s" % (where, k))
    if isinstance(v, list) and "items" in schema:
        for i, x in enumerate(v):
            probs += validate(spec, schema["items"], x, "%s[%d]" % (where, i))
    return probs


def response_schema(spec, path, status, ctype="application/json", method="get"):
    op = spec["paths"][path][method]
    r = op["responses"][str(status)]
    if "$ref" in r:
        r = spec["components"]["responses"][r["$ref"].rsplit("/", 1)[1]]
    return r["content"][ctype]["schema"]


def test_openapi(c, port):
    """Answers of a p1d with a history database against docs/openapi.yaml."""
    spec = load_openapi()
    if spec is None:
        print("SKIP: PyYAML not installed (tools/setup.sh test installs python3-yaml), openapi.yaml not checked")
        return
    cases = [("/api/now", "/api/now", 200), ("/api/meters", "/api/meters", 200),
             ("/api/meters/home", "/api/meters/{name}", 200),
             ("/api/meters/home/now", "/api/meters/{name}/now", 200), ("/api", "/api", 200),
             ("/api/v1/data", "/api/v1/data", 200), ("/p1.json", "/p1.json", 200),
             ("/healthz", "/healthz", 200),
             ("/api/history?from=2026-03-29&to=2026-03-30&step=1h", "/api/history", 200),
             ("/api/history?from=2026-03-29T02:30", "/api/history", 400),
             ("/api/summary?at=2026-03-29", "/api/summary", 200),
             ("/api/summary?period=month&at=2026-03-29", "/api/summary", 200),
             ("/api/summary?at=2026-03-29T02:30", "/api/summary", 400),
             ("/api/prices?from=2026-03-29&to=2026-03-30", "/api/prices", 200),
             ("/api/prices/cheapest?from=2026-03-29&hours=2", "/api/prices/cheapest", 200),
             ("/api/prices/cheapest?from=2026-03-29&hours=99", "/api/prices/cheapest", 400),
             ("/api/meters/nope", "/api/meters/{name}", 404),
             ("/api/history?meter=nope", "/api/history", 404)]
    for url, path, want in cases:
        st, h, b = http(port, url)
        probs = ["status %s, documented %s" % (st, want)] if st != want else []
        if not probs:
            try:
                probs = validate(spec, response_schema(spec, path, st), json.loads(b))
            except (ValueError, KeyError) as e:
                probs = ["%r" % e]
        c.check("openapi: GET %s is a %d as documented" % (url, want), not probs,
                "%s %s" % (probs[:5], b[:300]))
    st, h, b = http(port, "/api/now", "DELETE")
    c.check("openapi: the Error schema holds for a 405",
            st == 405 and not validate(spec, spec["components"]["schemas"]["Error"],
                                       json.loads(b)), b)


def raw_get(port, target):
    """GET with a literal request target; returns (status line, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode("latin-1"), body


def test_absolute_form(c, port):
    """RFC 9112 3.2.2: a server accepts a target in absolute form (GET http://host/path)."""
    line, b = raw_get(port, b"http://127.0.0.1/api/now")
    c.check("GET http://host/api/now is served", line.endswith("200 OK") and b'"reading"' in b,
            "%s %s" % (line, b[:200]))
    line, b = raw_get(port, b"HTTP://p1d.local:8080/api/meters/home")
    c.check("... also with an upper-case scheme and a port",
            line.endswith("200 OK") and json.loads(b)["name"] == "home", "%s %s" % (line, b[:200]))
    line, b = raw_get(port, b"http://x/api/summary?at=2026-03-29T02:30")
    c.check("... and history routes keep their query", line.endswith("400 Bad Request") and
            b"at: '2026-03-29T02:30' does not exist" in b, "%s %s" % (line, b[:200]))
    line, b = raw_get(port, b"http://x/nope")
    c.check("... an unknown path stays a 404", line.endswith("404 Not Found"), line)
    line, b = raw_get(port, b"/api/meters")
    c.check("/api/meters says the history is kept (--db): \"history\": true",
            line.endswith("200 OK") and all(m["history"] is True for m in json.loads(b)),
            "%s %s" % (line, b[:300]))


def test_query_rules(c, port):
    """docs/API.md, Query parameters: unknown ignored (repeated or not), a repeated one that takes
    one value is a 400 naming it, an empty value is the default."""
    base = "/api/history?from=2026-03-29&to=2026-03-29T06:00&fields=import_kwh"
    st, _, b = http(port, base + "&step=1h&bogus=1&bogus=2")
    c.check("unknown ignored, repeated or not",
            st == 200 and json.loads(b)["step"] == "1h", "%s %s" % (st, b[:200]))
    st, _, b = http(port, base + "&step=1h&step=raw")
    c.check("repeated step: 400 naming it", st == 400 and
            json.loads(b)["error"]["message"] == "step given twice", "%s %s" % (st, b[:200]))
    st, _, b = http(port, base + "&step=&format=")
    c.check("empty step and format are the defaults",
            st == 200 and json.loads(b)["step"] == "1m", "%s %s" % (st, b[:200]))
    st, _, b = http(port, "/api/history?meter=home&meter=nope&step=1h&fields=import_kwh")
    c.check("repeated meter: 400 naming it", st == 400 and
            json.loads(b)["error"]["message"] == "meter given twice", "%s %s" % (st, b[:200]))


def main():
    c = Checks("test_api_qa")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()
    with tmpdir() as tmp:
        db = os.path.join(tmp, "h.db")
        sim = os.path.join(tmp, "sim.txt")
        code, out, err = p1(["sim", "--start", "2026-03-28T00:00", "--interval", "60",
                             "--count", "4320"])
        with open(sim, "w") as f:
            f.write(out)
        code, out, err = p1(["import", "--db", db, "--meter", "home", sim])
        c.check("p1 import of the spring days", code == 0, err)
        d = Daemon(["--source", "home=sim", "--db", db, "--listen", "127.0.0.1:0"], tmp)
        try:
            port = d.http_port()
            d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
            test_local_times(c, port)
            test_openapi(c, port)
            test_absolute_form(c, port)
            test_query_rules(c, port)
        finally:
            d.stop()
        test_homewizard_external(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
