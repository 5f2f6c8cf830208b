#!/usr/bin/env python3
"""test_grafana_dashboard.py: dist/grafana/p1d.json imports cleanly (a ${DS_PROMETHEUS} input, a
multi-select meter variable, unique panel ids, only metrics p1d has) and every panel query works:
p1d with two simulated meters, a Belgian meter's capture and an InfluxDB publisher that cannot connect (so the publisher
families exist) and fixed prices (so the price gauges exist), Debian's prometheus scraping it
every second, each target's PromQL asked of
Prometheus with Grafana's variables filled in. P1D_DASHBOARD=PATH checks another file."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, ROOT, be_telegram, free_port, http,  # noqa: E402
                            need_p1d, tmpdir, wait_for)
from prom_helpers import PROMETHEUS, Prometheus  # noqa: E402

C = Checks("test_grafana_dashboard")
need_p1d(C)
DASHBOARD = os.environ.get("P1D_DASHBOARD", os.path.join(ROOT, "dist", "grafana", "p1d.json"))
API = os.path.join(ROOT, "docs", "API.md")
SIMULATED = ("home", "shed")
METERS = SIMULATED + ("be",)  # be: a Belgian meter's capture, so the capacity panel has data
METRIC = re.compile(r"\bp1d?_[a-z0-9_]+")
# Grafana's built-in intervals as concrete durations ($__interval: the panel's own when it has
# one); Prometheus scrapes every second, so a minute holds enough samples for rate().
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def all_panels(panels):
    """Every panel, those inside collapsed rows included."""
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def targets(dash):
    """(panel, target) for every query of the dashboard."""
    return [(p, t) for p in all_panels(dash.get("panels", [])) for t in p.get("targets", [])]


def seconds(duration):
    """A Prometheus duration of one unit (15s, 1d) in seconds."""
    m = re.fullmatch(r"(\d+)([smhdw])", duration)
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def fill(expr, panel, values):
    """expr with Grafana's variables replaced: $name, ${name} and [[name]]."""
    vals = dict(BUILTINS, **values)
    if panel.get("interval"):
        vals["__interval"] = panel["interval"]

    def sub(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return vals.get(name, m.group(0))
    return re.sub(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)", sub, expr)


def check_static(dash):
    """What Dashboards > Import needs, without a Prometheus."""
    inputs = dash.get("__inputs", [])
    C.check("a datasource input DS_PROMETHEUS for a Prometheus is declared",
            any(i.get("name") == "DS_PROMETHEUS" and i.get("type") == "datasource" and
                i.get("pluginId") == "prometheus" for i in inputs), str(inputs))
    C.check("schemaVersion of Grafana 10/11 (36..41)", 36 <= dash.get("schemaVersion", 0) <= 41,
            str(dash.get("schemaVersion")))
    C.check("no fixed dashboard id (import assigns one), a uid", dash.get("id") is None and
            dash.get("uid"), str((dash.get("id"), dash.get("uid"))))
    panels = list(all_panels(dash.get("panels", [])))
    ids = [p.get("id") for p in panels]
    C.check("%d panels, ids unique integers" % len(ids),
            len(ids) > 10 and len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids),
            str(ids))
    ds = [p.get("datasource") for p in panels if p.get("type") != "row"]
    ds += [t.get("datasource") for _, t in targets(dash)]
    C.check("every panel and query uses ${DS_PROMETHEUS}",
            all(d == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for d in ds), str(ds))
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    meter = variables.get("meter", {})
    q = meter.get("query", {})
    q = q.get("query", "") if isinstance(q, dict) else q
    C.check("meter variable: multi-select, from label_values(p1_..., meter)",
            meter.get("type") == "query" and meter.get("multi") is True and
            meter.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}" and
            re.fullmatch(r"label_values\(p1_[a-z_]+, *meter\)", q or ""), str(meter))
    unfiltered = [e for e in (t.get("expr", "") for _, t in targets(dash))
                  if not ('meter=~"$meter"' in e or "p1_publisher_" in e or "vector(" in e or
                          "p1d_price_" in e or "p1d_store_" in e)]
    C.check("every query filters by $meter or is a publisher-wide, price, store or constant "
            "series",
            not unfiltered, str(unfiltered))
    refs = [(p.get("id"), t.get("refId")) for p, t in targets(dash)]
    C.check("refIds unique within each panel", len(set(refs)) == len(refs), str(refs))
    return variables, q


def check_metric_names(dash, exposition, api_text):
    """Every metric name in the dashboard is one p1d exposes (this run) or documents."""
    text = json.dumps([t.get("expr", "") for _, t in targets(dash)] +
                      [json.dumps(dash.get("templating", {}))])
    names = sorted(set(METRIC.findall(text)))
    families = set(re.findall(r"(?m)^# TYPE (\S+)", exposition))
    unknown = [n for n in names if n not in families and "`%s`" % n not in api_text]
    C.check("the %d metric names used exist in /metrics or docs/API.md" % len(names),
            names and not unknown, "unknown: %s" % unknown)
    return families


def check_queries(dash, prom, variables, families):
    """Every target's PromQL: no error, and a result when p1d exposes all its metrics."""
    values = {"meter": "(%s)" % "|".join(METERS)}
    for name, v in variables.items():
        if name != "meter":
            cur = v.get("current", {}).get("value")
            values[name] = cur[0] if isinstance(cur, list) else cur
    for p, t in targets(dash):
        expr = t.get("expr", "")
        q = fill(expr, p, values)
        what = "%s/%s" % (p.get("title"), t.get("refId"))
        if not C.check("%s: every variable filled in" % what, "$" not in q and "[[" not in q, q):
            continue
        # the newest point Grafana asks for: now, or with a step of the panel's own (a day) the
        # last step boundary, which Grafana aligns the range to
        now = time.time()
        step = seconds(p["interval"]) if p.get("interval") else 5
        at = now - now % step if p.get("interval") else now
        reply = prom.api("query", {"query": q, "time": "%.3f" % at})
        ok = reply.get("status") == "success"
        C.check("%s: Prometheus accepts %s" % (what, q), ok, str(reply)[:300])
        produced = all(n in families for n in METRIC.findall(q))
        # and the range query the panel sends: its steps up to now
        rng = prom.api("query_range", {"query": q, "start": "%.3f" % min(at, now - 30),
                                       "end": "%.3f" % now, "step": step})
        C.check("%s: ... and as a range query" % what, rng.get("status") == "success" and (
            rng["data"]["result"] or not produced), str(rng)[:300])
        if ok and produced:
            res = reply["data"]["result"]
            C.check("%s: has a result" % what, res, q)
            metered = [r["metric"]["meter"] for r in res if "meter" in r.get("metric", {})]
            C.check("%s: only the selected meters" % what, set(metered) <= set(METERS),
                    str(metered))
        elif ok:
            print("info %s: %s is not exposed by this p1d run: an empty result is fine" % (
                what, [n for n in METRIC.findall(q) if n not in families]))


def check_meter_values(prom, query):
    """The meter variable's label_values() query, as Grafana asks it (/api/v1/label/.../values)."""
    m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", query)
    reply = prom.api("label/%s/values" % m.group(2), {"match[]": m.group(1)}) if m else {}
    C.check("meter variable lists every meter", sorted(reply.get("data", [])) == sorted(METERS),
            str(reply))


def run_live(tmp, dash, variables, meter_query, api_text):
    """p1d and Prometheus on 127.0.0.1: the metric names and every panel query."""
    sources = sum([["--source", "%s=sim:%d" % (m, i + 1)] for i, m in enumerate(SIMULATED)], [])
    q = (int(time.time()) // 900 - 2) * 900  # two readings across a quarter hour's start
    be = os.path.join(tmp, "be.txt")
    with open(be, "wb") as f:
        f.write(be_telegram(q - 1, 500000, 2.0) + be_telegram(q + 1, 500001, 2.0))
    sources += ["--source", "be=file:%s" % be]
    # fixed prices, so the price gauges exist and the price panels must show them
    d = Daemon(sources + ["--db", os.path.join(tmp, "p1d.db"), "--listen", "127.0.0.1:0",
                          "--influxdb-url", "http://127.0.0.1:%d" % free_port(),
                          "--influxdb-database", "p1", "--prices-import", "0.2512",
                          "--prices-export", "0.07"], tmp)
    prom = None
    try:
        port = d.http_port()
        if not C.check("p1d serves HTTP", port, d.text()[-500:]):
            return

        def metrics():
            return http(port, "/metrics")[2].decode()
        wait_for(lambda: "p1_publisher_lag_readings{" in metrics(), 10)
        families = check_metric_names(dash, metrics(), api_text)
        if not PROMETHEUS:
            print("SKIP: prometheus not installed (apt-get install prometheus): the panel "
                  "queries were not run")
            return
        prom = Prometheus(tmp, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                               "scrape_configs:\n  - job_name: p1d\n    static_configs:\n"
                               "      - targets: ['127.0.0.1:%d']\n" % port)
        # rate() and increase() need two samples of each series in their window
        enough = wait_for(lambda: prom.query(
            'count(count_over_time(p1_telegrams_total[1m]) >= 3) == %d' % len(METERS)), 30, 0.5)
        C.check("Prometheus holds 3 samples of each meter", enough,
                open(os.path.join(tmp, "prometheus.log"), errors="replace").read()[-800:])
        check_meter_values(prom, meter_query)
        check_queries(dash, prom, variables, families)
    finally:
        if prom:
            prom.stop()
        d.stop()


def main():
    try:
        with open(DASHBOARD, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        C.check("%s is valid JSON" % DASHBOARD, False, repr(e))
        C.done()
    C.check("%s is valid JSON" % DASHBOARD, isinstance(dash, dict))
    variables, meter_query = check_static(dash)
    api_text = open(API, encoding="utf-8").read()
    C.check("docs/API.md says how to import dist/grafana/p1d.json",
            "dist/grafana/p1d.json" in api_text and "Import" in api_text)
    with tmpdir() as tmp:
        run_live(tmp, dash, variables, meter_query, api_text)
    C.done()


if __name__ == "__main__":
    main()
