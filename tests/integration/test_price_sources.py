#!/usr/bin/env python3
"""test_price_sources.py: p1d's own price fetch ([prices] fetch_url) from the services users have
besides EnergyZero, each imitated by a real HTTP server on 127.0.0.1:

- Tibber: a GraphQL POST (fetch_body) with an API token (fetch_header). The query is sent as
  configured with its placeholders filled, the token goes in the header and never into the log,
  GET /api/prices or --check-config; the prices sit deep in the reply (data.viewer.homes[..].
  currentSubscription.priceInfo.today/tomorrow) and the first home with a subscription counts.
  A GraphQL error ("invalid token", with HTTP 200 or 400) is logged in the server's words
  (its message, not the JSON around it) and the prices stored stay. A reload that changes only the token fetches at once with the new one.
- Energy-Charts (day-ahead prices for Belgium, the Netherlands, Germany...): unix seconds and
  prices in EUR/MWh in two columns, "unit": "EUR / MWh"; p1d converts them to EUR/kWh, a null
  slot stays a hole, and the [prices] adjustment applies.
- Frank Energie: a GraphQL POST without a token; each hour's price comes in four parts whose sum
  is stored; one reply holding both lists loads the power list as power and the gas list as gas;
  {from_date} and {until_date} (an end date not included) are filled in the body.
- ENTSO-E's Transparency Platform: XML in EUR/MWh, asked for with {from_compact} and
  {to_compact} (UTC YYYYMMDDhhmm); curve A03 leaves out a point whose price is the one before,
  a day may be hourly and the next in quarter hours; an answer without data (an
  Acknowledgement_MarketDocument) is logged with its reason.
- --check-config refuses a header or body without its URL and a header that is not Name: value,
  without showing the header's value.
- p1d --fetch-prices fetches once into the store (also while a p1d runs on it, which uses the
  prices at once) and exits 0, or 1 with the reason, or 2 when there is nothing to fetch."""
import datetime
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, http, need_p1d, run, tmpdir,  # noqa: E402
                            wait_for, write_conf)
from price_helpers import PriceServer, days  # noqa: E402

T = Checks("test_price_sources")
need_p1d(T)

TOKEN = "tibber-T0KEN-5ecret"
QUERY = ('{"query":"{viewer{homes{currentSubscription{priceInfo{today{total startsAt} '
         'tomorrow{total startsAt}}}}}}","variables":{"day":"{from_date}"}}')


def slots(f, t, step):
    """Local aware datetimes from f to t (exclusive) every step minutes."""
    out, x = [], f.astimezone(datetime.timezone.utc)
    while x < t.astimezone(datetime.timezone.utc):
        out.append(x.astimezone(f.tzinfo))
        x += datetime.timedelta(minutes=step)
    return out


def total(i):
    return round(0.21 + 0.011 * (i % 24), 4) if i != 5 else -0.0123


def tibber_reply(f, t):
    """Tibber's priceInfo for today and tomorrow, in a second home (the first has no
    subscription); a third home with other prices must be left alone."""
    hours = slots(f, t, 60)
    mid = len(slots(f, f + datetime.timedelta(days=1), 60))

    def rows(part, base):
        return [{"total": total(base + i), "energy": 0.1, "tax": 0.05,
                 "startsAt": h.isoformat(timespec="milliseconds")} for i, h in enumerate(part)]
    home = {"id": "h2", "currentSubscription": {"priceInfo": {
        "current": {"total": 9.99, "startsAt": hours[0].isoformat()},
        "today": rows(hours[:mid], 0), "tomorrow": rows(hours[mid:], mid)}}}
    other = {"id": "h3", "currentSubscription": {"priceInfo": {
        "today": [{"total": 7.77, "startsAt": hours[0].isoformat()}], "tomorrow": []}}}
    return json.dumps({"data": {"viewer": {"homes": [
        {"id": "h1", "currentSubscription": None}, home, other]}}}).encode()


def start(tmp, name, conf, args=()):
    path = os.path.join(tmp, name + ".conf")
    write_conf(path, conf)
    d = Daemon(["--config", path, "--db", os.path.join(tmp, name + ".db"),
                "--listen", "127.0.0.1:0"] + list(args), tmp)
    return d, d.http_port(), path


def prices(port):
    s, _, b = http(port, "/api/prices")
    return json.loads(b) if s == 200 else None


def tibber_conf(srv, token=TOKEN):
    return ("[prices]\nfetch_url = %s\nfetch_header = Authorization: Bearer %s\n"
            "fetch_body = %s\n" % (srv.url("/v1-beta/gql"), token, QUERY))


def test_tibber(tmp, srv):
    f, t = days()
    srv.routes["/v1-beta/gql"] = [lambda q: (200, "application/json", tibber_reply(f, t))]
    d, port, conf = start(tmp, "tibber", tibber_conf(srv))
    try:
        m = d.wait_log(r"prices: fetched (\d+) power prices from (\S+), \S+ to \S+; "
                       r"tomorrow's are in")
        T.check("tibber: fetched, and tomorrow's are in", m is not None, d.text()[-2000:])
        calls = [c for c in srv.calls if c["path"] == "/v1-beta/gql"]
        c = calls[0] if calls else {}
        T.check("tibber: one POST", len(calls) == 1 and c.get("method") == "POST", repr(calls))
        h = {k.lower(): v for k, v in c.get("headers", {}).items()}
        T.check("tibber: the token in the Authorization header",
                h.get("authorization") == "Bearer " + TOKEN, repr(h))
        T.check("tibber: a JSON body", h.get("content-type") == "application/json", repr(h))
        want = QUERY.replace("{from_date}", f.date().isoformat())
        T.check("tibber: the query as configured, {from_date} filled, GraphQL's braces kept",
                c.get("body", b"").decode() == want, repr(c.get("body")))
        hours = len(slots(f, t, 60))
        if m:
            T.check("tibber: every hour of today and tomorrow of the first home with prices",
                    int(m.group(1)) == hours, m.group(0))
        p = wait_for(lambda: prices(port), 5) or {}
        rows = p.get("power") or []
        T.check("tibber: GET /api/prices lists Tibber's totals as they are",
                len(rows) == hours and all(abs(r["price"] - total(i)) < 1e-9
                                           for i, r in enumerate(rows)) and
                rows[0]["time"] == f.isoformat(), json.dumps(rows[:3]))
        pw = (p.get("fetch") or {}).get("power") or {}
        T.check("tibber: the fetch status names the URL and is ok",
                pw.get("state") == "ok" and pw.get("url") == srv.url("/v1-beta/gql"), json.dumps(pw))
        s, _, b = http(port, "/api/prices")
        T.check("tibber: the token is in neither the log nor GET /api/prices",
                TOKEN not in d.text() and TOKEN.encode() not in b, d.text()[-1500:])
        T.check("tibber: the start is logged as a POST",
                re.search(r"prices: fetching power prices from \S+/v1-beta/gql \(POST\) now",
                          d.text()) is not None, d.text()[-1500:])
        # A new token alone: the fetcher restarts, and asks with the new one at once.
        write_conf(conf, tibber_conf(srv, "N3W-T0KEN"))
        d.signal(signal.SIGHUP)
        ok = wait_for(lambda: any(x["headers"].get("Authorization") == "Bearer N3W-T0KEN"
                                  for x in srv.calls), 10)
        T.check("tibber: a reload with a new token fetches at once with it", ok,
                repr([x["headers"].get("Authorization") for x in srv.calls]))
        T.check("tibber: the new token is not logged either", "N3W-T0KEN" not in d.text(),
                d.text()[-1500:])
    finally:
        d.stop()


def test_tibber_errors(tmp, srv):
    """Tibber's errors in its own words; what was stored before stays."""
    f, _ = days()
    gql = {"errors": [{"message": "Context creation failed: invalid token",
                       "extensions": {"code": "UNAUTHENTICATED"}}], "data": None}
    cases = [
        ("/gql200", (200, "application/json", json.dumps(gql).encode()),
         r"the reply is not a price list: no prices; the server says: Context creation failed: "
         r"invalid token"),
        ("/gql400", (400, "application/json", json.dumps(gql).encode()),
         r"HTTP 400: Context creation failed: invalid token"),
        ("/nohome", (200, "application/json", b'{"data":{"viewer":{"homes":[]}}}'),
         r"the reply is not a price list: no price list in the object \(expected"),
    ]
    upload = ("time,price\n%s,0.4321\n" % f.replace(hour=5).isoformat()).encode()
    for path, answer, why in cases:
        srv.routes[path] = [answer]
        d, port, _ = start(tmp, "err" + path[1:], "[prices]\nfetch_url = %s\nfetch_header = "
                           "Authorization: Bearer %s\nfetch_body = {\"query\":\"{viewer{homes{id}}}\"}\n"
                           % (srv.url(path), TOKEN))
        try:
            s, _, _ = http(port, "/api/prices", "PUT", upload, {"Content-Type": "text/csv"})
            m = d.wait_log(r"prices: fetching power prices from \S+ failed: (%s)" % why, 10)
            T.check("tibber error %s: logged in the server's words" % path, m, d.text()[-1500:])
            p = prices(port) or {}
            rows = p.get("power") or []
            pw = (p.get("fetch") or {}).get("power") or {}
            T.check("tibber error %s: the upload stays, p1d serves on, the status says why" % path,
                    s == 200 and len(rows) == 1 and rows[0]["price"] == 0.4321 and
                    pw.get("state") == "failing" and pw.get("failures", 0) >= 1 and
                    re.search(why, pw.get("last_error") or "") is not None,
                    json.dumps(p)[:1500])
            T.check("tibber error %s: the token stays out of the log" % path,
                    TOKEN not in d.text(), d.text()[-1000:])
        finally:
            d.stop()


def energy_charts(f, t):
    """Energy-Charts' answer: 15-minute slots, EUR/MWh, slot 7 null, slot 3 negative."""
    q = slots(f, t, 15)
    price = [None if i == 7 else (-12.5 if i == 3 else round(80 + 0.37 * i, 2))
             for i in range(len(q))]
    body = {"license_info": "CC BY 4.0 (creativecommons.org/licenses/by/4.0) from "
            "Bundesnetzagentur | SMARD.de; this licence line is longer than a price field",
            "unix_seconds": [int(x.timestamp()) for x in q], "price": price,
            "unit": "EUR / MWh", "deprecated": False}
    return q, price, json.dumps(body).encode()


def test_energy_charts(tmp, srv):
    f, t = days()
    q, price, body = energy_charts(f, t)
    srv.routes["/price"] = [(200, "application/json", body)]
    d, port, _ = start(tmp, "ec", "[prices]\nfetch_url = %s\ndynamic_import_factor = 1.21\n"
                       "dynamic_import_add = 0.15\n"
                       % srv.url("/price?bzn=BE&start={from_unix}&end={to_unix}"))
    try:
        m = d.wait_log(r"prices: fetched (\d+) power prices from \S+, \S+ to \S+; "
                       r"tomorrow's are in")
        T.check("energy-charts: fetched", m is not None, d.text()[-1500:])
        hits = srv.hits("/price")
        qs = hits[0][1] if hits else {}
        T.check("energy-charts: asked for the bidding zone and today and tomorrow in unix seconds",
                qs.get("bzn") == ["BE"] and qs.get("start") == [str(int(f.timestamp()))] and
                qs.get("end") == [str(int(t.timestamp()))], repr(qs))
        n = len(q) - 1
        if m:
            T.check("energy-charts: every slot with a price (the null one left out)",
                    int(m.group(1)) == n, m.group(0))
        rows = (wait_for(lambda: prices(port), 5) or {}).get("power") or []
        T.check("energy-charts: one price per slot that has one", len(rows) == n, len(rows))
        if len(rows) == n:
            want = [(x, p) for x, p in zip(q, price) if p is not None]
            T.check("energy-charts: EUR/MWh divided by 1000, each at its quarter hour",
                    all(abs(r["price"] - p / 1000) < 1e-9 and r["time"] == x.isoformat()
                        for r, (x, p) in zip(rows, want)), json.dumps(rows[:4]))
            T.check("energy-charts: a negative price stays negative",
                    rows[3]["price"] == -0.0125, json.dumps(rows[3]))
            T.check("energy-charts: the null slot is a hole, not the slot before stretched",
                    rows[6]["end"] == q[7].isoformat() and rows[7]["time"] == q[8].isoformat(),
                    json.dumps(rows[6:8]))
            T.check("energy-charts: the [prices] adjustment applies (x 1.21 + 0.15)",
                    abs(rows[0]["import_price"] - round(0.08 * 1.21 + 0.15, 6)) < 1e-9,
                    json.dumps(rows[0]))
    finally:
        d.stop()


FRANK_PARTS = "from till marketPrice marketPriceTax sourcingMarkupPrice energyTaxPrice"


def frank_body(field):
    return ('{"query":"{%s(startDate:\\"{from_date}\\",endDate:\\"{until_date}\\")'
            '{%s}}"}' % (field, FRANK_PARTS))


def frank_parts(i, gas):
    """Frank Energie's parts of hour i: market price, its VAT, markup, energy tax."""
    m = (0.31 + 0.004 * i) if gas else (0.095 + 0.003 * (i % 24) if i != 4 else -0.021)
    return {"marketPrice": round(m, 6), "marketPriceTax": round(m * 0.21, 6),
            "sourcingMarkupPrice": 0.0182 if not gas else 0.0763,
            "energyTaxPrice": 0.1228661 if not gas else 0.697}


def frank_reply(f, t):
    def rows(hours, gas):
        out = []
        for i, h in enumerate(hours):
            e = h + datetime.timedelta(hours=1)
            z = datetime.timezone.utc
            out.append(dict({"from": h.astimezone(z).isoformat(timespec="milliseconds")
                             .replace("+00:00", "Z"),
                             "till": e.astimezone(z).isoformat(timespec="milliseconds")
                             .replace("+00:00", "Z")}, **frank_parts(i, gas)))
        return out
    gas = slots(f + datetime.timedelta(hours=6), t + datetime.timedelta(hours=6), 60)
    return json.dumps({"data": {"marketPricesGas": rows(gas, True),
                                "marketPricesElectricity": rows(slots(f, t, 60), False)}}).encode()


def test_frank(tmp, srv):
    f, t = days()
    srv.routes["/graphql"] = [(200, "application/json", frank_reply(f, t))]
    conf = ("[prices]\nfetch_url = %s\nfetch_body = %s\nfetch_gas_url = %s\nfetch_gas_body = %s\n"
            % (srv.url("/graphql"), frank_body("marketPricesElectricity"), srv.url("/graphql"),
               frank_body("marketPricesGas")))
    d, port, _ = start(tmp, "frank", conf)
    try:
        ok = d.wait_log(r"prices: fetched \d+ gas prices") and d.wait_log(
            r"prices: fetched \d+ power prices")
        T.check("frank: both kinds fetched", ok is not None, d.text()[-1500:])
        bodies = sorted(c["body"].decode() for c in srv.calls if c["path"] == "/graphql")
        want = sorted(frank_body(k).replace("{from_date}", f.date().isoformat())
                      .replace("{until_date}", t.date().isoformat())
                      for k in ("marketPricesElectricity", "marketPricesGas"))
        T.check("frank: the bodies as configured, {from_date} and {until_date} filled",
                bodies == want, repr(bodies))
        p = wait_for(lambda: prices(port), 5) or {}
        power, gas = p.get("power") or [], p.get("gas") or []
        hours = slots(f, t, 60)
        T.check("frank: every hour's power price is the sum of its four parts",
                len(power) == len(hours) and
                all(abs(r["price"] - round(sum(frank_parts(i, False).values()), 6)) < 1e-9 and
                    r["time"] == h.isoformat() for i, (r, h) in enumerate(zip(power, hours))),
                json.dumps(power[:3]))
        T.check("frank: a negative market price lowers the sum",
                len(power) > 4 and abs(power[4]["price"] - round(-0.021 * 1.21 + 0.0182 +
                                                                 0.1228661, 6)) < 1e-9,
                json.dumps(power[4:5]))
        T.check("frank: the gas list of the same reply is stored as gas, from 06:00",
                len(gas) > 0 and abs(gas[0]["price"] - round(sum(frank_parts(0, True).values()),
                                                            6)) < 1e-9 and
                gas[0]["time"] == (f + datetime.timedelta(hours=6)).isoformat(),
                json.dumps(gas[:2]))
    finally:
        d.stop()


def entsoe_xml(f, t):
    """ENTSO-E's day-ahead answer for the days [f, t): one TimeSeries (curve A03: a point whose
    price is the one before is left out) with a Period per day, today hourly, tomorrow in quarter
    hours; returns (the slots' starts, their prices in EUR/MWh, the XML)."""
    z = datetime.timezone.utc
    slots, price, periods = [], [], []
    mid = f + datetime.timedelta(days=1)
    for a, b, step in ((f, mid, 3600), (mid, t, 900)):
        a, b = a.astimezone(z), b.astimezone(z)
        n = int((b - a).total_seconds()) // step
        pts = []
        for pos in range(1, n + 1):
            p = round(50 + 30 * ((pos * 7) % 11) / 10 - (90 if pos == 3 else 0), 2)
            if pos in (5, 6):  # A03: the same as position 4, left out
                p = price[-1]
            else:
                pts.append("<Point><position>%d</position><price.amount>%s</price.amount>"
                           "</Point>" % (pos, p))
            slots.append(a + datetime.timedelta(seconds=(pos - 1) * step))
            price.append(p)
        periods.append("<Period><timeInterval><start>%s</start><end>%s</end></timeInterval>"
                       "<resolution>PT%dM</resolution>%s</Period>"
                       % (a.strftime("%Y-%m-%dT%H:%MZ"), b.strftime("%Y-%m-%dT%H:%MZ"),
                          step // 60, "\n".join(pts)))
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<Publication_MarketDocument xmlns="urn:'
           'iec62325.351:tc57wg16:451-3:publicationdocument:7:3">\n<mRID>x</mRID><type>A44'
           '</type>\n<TimeSeries><mRID>1</mRID><currency_Unit.name>EUR</currency_Unit.name>'
           '<price_Measure_Unit.name>MWH</price_Measure_Unit.name><curveType>A03</curveType>\n'
           '%s\n</TimeSeries>\n</Publication_MarketDocument>\n' % "\n".join(periods))
    return slots, price, xml.encode()


def test_entsoe(tmp, srv):
    f, t = days()
    slots, price, body = entsoe_xml(f, t)
    srv.routes["/api"] = [(200, "text/xml", body)]
    d, port, _ = start(tmp, "entsoe", "[prices]\nfetch_url = %s\n" % srv.url(
        "/api?documentType=A44&in_Domain=10YNL----------L&out_Domain=10YNL----------L"
        "&periodStart={from_compact}&periodEnd={to_compact}&securityToken=ABC"))
    try:
        m = d.wait_log(r"prices: fetched (\d+) power prices from \S+, \S+ to \S+; "
                       r"tomorrow's are in")
        T.check("entso-e: the XML fetched and read", m is not None and
                int(m.group(1)) == len(slots), d.text()[-1500:])
        hits = srv.hits("/api")
        qs = hits[0][1] if hits else {}
        z = datetime.timezone.utc
        T.check("entso-e: periodStart and periodEnd in UTC YYYYMMDDhhmm",
                qs.get("periodStart") == [f.astimezone(z).strftime("%Y%m%d%H%M")] and
                qs.get("periodEnd") == [t.astimezone(z).strftime("%Y%m%d%H%M")], repr(qs))
        T.check("entso-e: the query's token is not logged", "securityToken" not in d.text() and
                "ABC" not in d.text(), d.text()[-1000:])
        rows = (wait_for(lambda: prices(port), 5) or {}).get("power") or []
        T.check("entso-e: every slot of both days, hourly then quarter-hourly",
                [r["time"] for r in rows] == [x.astimezone(f.tzinfo).isoformat() for x in slots]
                and rows[0]["end"] == slots[1].astimezone(f.tzinfo).isoformat() and
                rows[-1]["end"] == t.isoformat(), json.dumps(rows[:2] + rows[-1:]))
        T.check("entso-e: EUR/MWh divided by 1000; the points left out (A03) take the price "
                "before them; a negative one stays negative",
                len(rows) == len(slots) and all(abs(r["price"] - p / 1000) < 1e-9
                                                for r, p in zip(rows, price)) and
                rows[4]["price"] == rows[3]["price"] and rows[2]["price"] < 0,
                json.dumps(rows[:6]))
    finally:
        d.stop()
    srv.routes["/api"] = [(200, "application/xml", b'<?xml version="1.0" encoding="UTF-8"?>\n'
                           b'<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451'
                           b'-1:acknowledgementdocument:7:0"><mRID>1</mRID><Reason><code>999'
                           b'</code><text>No matching data found for Data item Day-ahead Prices '
                           b'[12.1.D]</text></Reason></Acknowledgement_MarketDocument>')]
    d, port, _ = start(tmp, "entsoe-none", "[prices]\nfetch_url = %s\n"
                       % srv.url("/api?securityToken=ABC&documentType=A44"))
    try:
        T.check("entso-e without data: its reason is logged, the fetch tried again later",
                d.wait_log(r"failed: the reply is not a price list: ENTSO-E answered without "
                           r"prices: No matching data found for Data item Day-ahead Prices "
                           r"\[12\.1\.D\]; trying again in 10 s") is not None, d.text()[-1500:])
    finally:
        d.stop()


def test_check_config(tmp):
    db = os.path.join(tmp, "c.db")
    cases = [
        ("fetch_header = Authorization: Bearer %s" % TOKEN,
         r"\[prices\] fetch_header is set, but fetch_url is empty"),
        ("fetch_gas_body = x=1", r"\[prices\] fetch_gas_body is set, but fetch_gas_url is empty"),
        ("fetch_url = http://127.0.0.1/x\nfetch_header = Authorization Bearer %s" % TOKEN,
         r"fetch_header: expected one header as Name: value"),
        ("fetch_url = http://127.0.0.1/x\nfetch_header = X-Token:   ",
         r"fetch_header: the header 'X-Token' has no value"),
    ]
    path = os.path.join(tmp, "check.conf")
    for text, want in cases:
        write_conf(path, "[prices]\n%s\n" % text)
        code, out, err = run(["--check-config", "--config", path, "--db", db])
        T.check("--check-config: %s" % text.replace(TOKEN, "TOKEN").replace("\n", " / "),
                code != 0 and re.search(want, err) and TOKEN not in out + err,
                "%d %s" % (code, err))
    write_conf(path, tibber_conf_for_check())
    os.chmod(path, 0o644)
    code, out, err = run(["--check-config", "--config", path, "--db", db])
    T.check("--check-config: a note says POST and names the header, not its value",
            code == 0 and "fetched from https://api.tibber.com/v1-beta/gql (POST, with the "
            "header Authorization) at start" in err and TOKEN not in out + err and
            "fetch_header = ********" in out, "%d %s %s" % (code, out, err))
    d = Daemon(["--config", path, "--db", db, "--listen", "127.0.0.1:0", "--check-config"], tmp)
    d.proc.wait(10)
    T.check("a config file every user can read with a token: warned",
            re.search(r"readable by every user .*\[prices\] fetch_header", d.text()) is not None
            and TOKEN not in d.text(), d.text())


def test_fetch_once(tmp, srv):
    """p1d --fetch-prices: one fetch now into the store, also while a p1d runs on it; its exit
    status says whether it worked."""
    f, t = days()
    q, _, _ = energy_charts(f, t)
    price = [round(90 + 0.5 * i, 2) for i in range(len(q))]  # no hole: some slot is now
    body = json.dumps({"unix_seconds": [int(x.timestamp()) for x in q], "price": price,
                       "unit": "EUR/MWh"}).encode()
    srv.routes["/once"] = [(200, "application/json", body)]
    srv.routes["/down"] = [(503, "text/plain", b"maintenance until 14:00")]
    db = os.path.join(tmp, "once.db")
    d = Daemon(["--db", db, "--listen", "127.0.0.1:0", "--prices-import", "0.5"], tmp)
    try:
        port = d.http_port()
        code, out, err = run(["--db", db, "--prices-fetch-url",
                              srv.url("/once?start={from_unix}&end={to_unix}"),
                              "--fetch-prices"], timeout=30)
        n = len(price)
        T.check("--fetch-prices: exit 0, and says what it stored",
                code == 0 and re.search(r"prices: fetched %d power prices from \S+/once, \S+ to "
                                        r"\S+; tomorrow's are in; stored" % n, err), (code, err))
        rows = (prices(port) or {}).get("power") or []
        T.check("--fetch-prices: the running p1d serves the stored prices", len(rows) == n,
                len(rows))
        t = time.time()
        cur = [r["import_price"] for r in rows
               if datetime.datetime.fromisoformat(r["time"]).timestamp() <= t <
               datetime.datetime.fromisoformat(r["end"]).timestamp()]
        line = re.search(r"^p1d_price_import_eur_per_kwh (\S+)$",
                         http(port, "/metrics")[2].decode(), re.M) if port else None
        T.check("--fetch-prices: the running p1d's price in force is the fetched one at once",
                line is not None and cur and abs(float(line.group(1)) - cur[0]) < 1e-9,
                (line and line.group(0), cur))
        code, out, err = run(["--db", db, "--prices-fetch-url", srv.url("/down"),
                              "--fetch-prices"], timeout=30)
        T.check("--fetch-prices from a server that fails: exit 1, the reason, nothing changed",
                code == 1 and "failed: HTTP 503: maintenance until 14:00" in err and
                len((prices(port) or {}).get("power") or []) == n, (code, err))
        code, out, err = run(["--db", db, "--fetch-prices"], timeout=30)
        T.check("--fetch-prices without a fetch_url: exit 2, says what to set",
                code == 2 and "nothing to fetch: set [prices] fetch_url" in err, (code, err))
        code, out, err = run(["--prices-fetch-url", srv.url("/once"), "--fetch-prices",
                              "--source", "a=sim"], timeout=30)
        T.check("--fetch-prices without a store: exit 2", code == 2 and "[store] db" in err,
                (code, err))
        for args, want in ((["--fetch-prices"], "nothing to fetch"),
                           (["--fetch-prices", "--prices-fetch-url", srv.url("/once")],
                            "fetch_url needs [store] db")):
            code, out, err = run(args, timeout=30)
            T.check("%s without a source: says what is missing, not that no source is "
                    "configured" % " ".join(args[:2]),
                    code == 2 and want in err and "no source" not in err, (code, err))
    finally:
        d.stop()


def tibber_conf_for_check():
    return ("[prices]\nfetch_url = https://api.tibber.com/v1-beta/gql\n"
            "fetch_header = Authorization: Bearer %s\nfetch_body = %s\n" % (TOKEN, QUERY))


def main():
    srv = PriceServer()
    try:
        with tmpdir() as tmp:
            T.run([test_tibber, test_tibber_errors, test_frank, test_energy_charts, test_entsoe,
                   test_fetch_once], tmp, srv)
            T.run([test_check_config], tmp)
    finally:
        srv.close()
    T.done()


main()
