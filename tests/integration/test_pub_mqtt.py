"""test_pub_mqtt.py: p1d's MQTT publisher against a real mosquitto on 127.0.0.1: Home Assistant
discovery validated against HA's rules, values equal to the reading, HA restart, broker restart,
last will, wrong password, rate limits, dsmr-reader topics."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, free_port, need_p1d, tmpdir  # noqa: E402
from mqtt_helpers import MOSQUITTO, Broker, Mqtt, metric, metrics_text, pub_entry, wait_pub  # noqa: E402

C = Checks("test_pub_mqtt")
need_p1d(C)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
if not os.access(MOSQUITTO, os.X_OK):
    print("SKIP: mosquitto not installed (tools/setup.sh test)")
    C.done()

# Home Assistant's rules for the sensors the Energy dashboard uses: device class -> allowed units
# and state classes (homeassistant/components/sensor/const.py).
HA_RULES = {
    "energy": ({"Wh", "kWh", "MWh", "GJ", "MJ"}, {"total", "total_increasing"}),
    "power": ({"W", "kW"}, {"measurement"}),
    "gas": ({"m\u00b3", "ft\u00b3", "CCF"}, {"total", "total_increasing"}),
    "water": ({"m\u00b3", "L", "gal", "ft\u00b3", "CCF"}, {"total", "total_increasing"}),
    "voltage": ({"V", "mV"}, {"measurement"}),
    "current": ({"A", "mA"}, {"measurement"}),
}
# What p1d must announce for the Energy dashboard, exactly.
EXPECTED = {
    "energy_import_kwh": ("energy", "kWh", "total_increasing"),
    "energy_import_t1_kwh": ("energy", "kWh", "total_increasing"),
    "energy_export_kwh": ("energy", "kWh", "total_increasing"),
    "power_w": ("power", "W", "measurement"),
    "power_import_w": ("power", "W", "measurement"),
    "voltage_l1_v": ("voltage", "V", "measurement"),
    "current_l1_a": ("current", "A", "measurement"),
    "gas_m3": ("gas", "m\u00b3", "total_increasing"),
}


def promtool(text):
    """(ok, detail) of `promtool check metrics`; ok None when promtool is not installed."""
    tool = shutil.which("promtool")
    if not tool:
        return None, "promtool not installed"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=20)
    return p.returncode == 0, (p.stdout + p.stderr).decode("utf-8", "replace")[-800:]


def last_value(msgs, topic):
    vals = [m[2] for m in msgs if m[1] == topic]
    return vals[-1].decode() if vals else None


def api_now(d):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/now" % d.http_port(), timeout=5) as r:
        data = json.loads(r.read())
    if isinstance(data, dict) and "meters" in data:
        data = data["meters"]
    if isinstance(data, list):
        data = {m.get("name", m.get("meter")): m for m in data}
    m = data.get("home", data)
    return m.get("reading", m)


def check_discovery(msgs, label, retained=None):
    """retained: messages a subscriber that came later got (the broker flags retained ones)."""
    configs = {}
    for _, topic, payload, retain in msgs:
        parts = topic.split("/")
        if len(parts) == 5 and parts[0] == "homeassistant" and parts[1] == "sensor" and parts[4] == "config":
            configs[topic] = (payload, retain)
    if retained is not None:
        late = {}
        for m in retained:
            late.setdefault(m[1], m[3])
        configs = {t: (p, late.get(t, False)) for t, (p, _) in configs.items()}
    C.check("%s: discovery configs published" % label, len(configs) >= 15, str(len(configs)))
    bad, uids, fields = [], set(), {}
    for topic, (payload, retain) in configs.items():
        node, obj = topic.split("/")[2:4]
        try:
            cfg = json.loads(payload.decode("utf-8"))
        except ValueError:
            bad.append("%s: not JSON" % topic)
            continue
        if not retain:
            bad.append("%s: not retained" % topic)
        if node != "p1d_home":
            bad.append("%s: node" % topic)
        for k in ("unique_id", "object_id", "default_entity_id", "name", "state_topic", "device",
                  "availability"):
            if k not in cfg:
                bad.append("%s: no %s" % (topic, k))
        # HA 2025.10+ wants default_entity_id = "<component>.<object_id>"; older HA reads object_id.
        component = topic.split("/")[1]
        if cfg.get("default_entity_id") != "%s.%s" % (component, cfg.get("object_id")):
            bad.append("%s: default_entity_id %s" % (topic, cfg.get("default_entity_id")))
        if cfg.get("unique_id") in uids:
            bad.append("%s: unique_id repeated" % topic)
        uids.add(cfg.get("unique_id"))
        if [a.get("topic") for a in cfg.get("availability") or []] != [
                "p1d/status", "p1d/home/availability"] or cfg.get("availability_mode") != "all":
            bad.append("%s: availability %s" % (topic, cfg.get("availability")))
        if cfg.get("state_topic") != "p1d/home/%s" % obj:
            bad.append("%s: state_topic %s" % (topic, cfg.get("state_topic")))
        dc, unit, sc = cfg.get("device_class"), cfg.get("unit_of_measurement"), cfg.get("state_class")
        if dc is not None:
            if dc not in HA_RULES:
                bad.append("%s: device_class %s" % (topic, dc))
            else:
                units, scs = HA_RULES[dc]
                if unit not in units or sc not in scs:
                    bad.append("%s: %s/%s/%s not allowed by HA" % (topic, dc, unit, sc))
        dev = cfg.get("device", {})
        # the meter's device says what the header says; the gas meter's (an M-Bus device of its
        # own, the telegram names no maker) hangs off the meter's
        want = (("identifiers", "name", "via_device") if obj == "gas_m3" else
                ("identifiers", "name", "manufacturer", "model", "sw_version"))
        for k in want:
            if not dev.get(k):
                bad.append("%s: device.%s" % (topic, k))
        fields[obj] = (dc, unit, sc, cfg.get("state_topic"))
    C.check("%s: every discovery config follows HA's rules" % label, not bad, "; ".join(bad[:8]))
    wrong = [f for f, exp in EXPECTED.items() if fields.get(f, (None,) * 4)[:3] != exp]
    C.check("%s: energy/power/gas/voltage/current classes exactly as the Energy dashboard needs" % label,
            not wrong, "%s: %s" % (wrong, [fields.get(f) for f in wrong]))
    gas_raw = [p for t, (p, r) in configs.items() if t.endswith("/gas_m3/config")]
    C.check("%s: gas unit is m\u00b3 with U+00B3 on the wire" % label,
            gas_raw and b'"unit_of_measurement":"m\xc2\xb3"' in gas_raw[0])
    return fields


def main():
    with tmpdir() as tmp:
        port = free_port()
        broker = Broker(tmp, port).start()
        d = None
        sub = None
        try:
            sub = Mqtt(port)
            db = os.path.join(tmp, "p1d.db")
            args = ["--source", "home=sim:7", "--listen", "127.0.0.1:0", "--db", db,
                    "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), "--mqtt-rate-power", "3s",
                    "--mqtt-rate-voltage", "0", "--mqtt-rate-current", "0", "--mqtt-state-interval",
                    "0", "--mqtt-dsmr-reader", "true", "--mqtt-reconnect-max", "2s",
                    "--mqtt-keepalive", "5s"]
            d = Daemon(args, tmp)
            C.check("p1d connects to the broker", d.wait_log(r"mqtt: connected to 127\.0\.0\.1", 10) is not None,
                    d.text()[-2000:])
            C.check("availability online (retained)",
                    sub.wait(lambda m: m[1] == "p1d/status" and m[2] == b"online", 10) is not None)
            # Backlog reporting: /api/meters and /metrics carry the publisher's lag and counters.
            pe = wait_pub(d, lambda p: (p.get("delivered") or 0) > 0, 10) or pub_entry(d) or {}
            keys = ["name", "state", "lag_readings", "lag_seconds", "cursor", "delivered",
                    "retries", "parked", "last_ok", "retry_in_s", "last_error"]
            C.check("/api/meters: publishers[] of home has mqtt with its lag and counters",
                    all(k in pe for k in keys) and pe.get("state") in ("idle", "sending") and
                    isinstance(pe.get("lag_readings"), int) and pe.get("last_error") is None, str(pe))
            C.check("/api/meters: lag of a connected publisher is ~0", (pe.get("lag_readings") or 0) <= 2,
                    str(pe))
            mt = metrics_text(d)
            lab = 'meter="home",publisher="mqtt"'
            C.check("/metrics: p1_publisher_* families for home/mqtt",
                    metric(mt, "p1_publisher_lag_readings", lab) is not None and
                    metric(mt, "p1_publisher_lag_seconds", lab) is not None and
                    (metric(mt, "p1_publisher_delivered_total", lab) or 0) > 0 and
                    metric(mt, "p1_publisher_retries_total", lab) is not None and
                    metric(mt, "p1_publisher_parked_total", lab) == 0 and
                    metric(mt, "p1_publisher_up", 'publisher="mqtt"') == 1,
                    "\n".join(ln for ln in mt.splitlines() if "publisher" in ln)[-1500:])
            ok, why = promtool(mt)
            if ok is None:
                print("SKIP: promtool check metrics: " + why)
            else:
                C.check("/metrics with publishers passes promtool check metrics", ok, why)
            time.sleep(8)
            msgs = sub.snapshot()
            late = Mqtt(port, topics=("homeassistant/#", "p1d/#"))
            time.sleep(1)
            retained = late.snapshot()
            late.close()
            fields = check_discovery(msgs, "start", retained)
            first = {}
            for m in retained:
                first.setdefault(m[1], m[3])
            C.check("state, field and status topics retained",
                    all(first.get(t) for t in ("p1d/status", "p1d/home/state",
                                               "p1d/home/energy_import_kwh", "p1d/home/power_w")),
                    str({t: r for t, r in first.items() if t.startswith("p1d/")}))
            missing = [f for f, v in fields.items() if last_value(msgs, v[3]) is None]
            C.check("every discovered state_topic receives values", not missing, str(missing))
            nonnum = []
            for f, v in fields.items():
                val = last_value(msgs, v[3])
                try:
                    float(val)
                except (TypeError, ValueError):
                    nonnum.append((f, val))
            C.check("field values are plain numbers", not nonnum, str(nonnum))

            # Values: each state message against the field topics sent just before it.
            latest, mismatches, states = {}, [], 0
            for _, topic, payload, _ in msgs:
                if topic.startswith("p1d/home/") and topic != "p1d/home/state":
                    latest[topic[len("p1d/home/"):]] = payload.decode()
                elif topic == "p1d/home/state":
                    st = json.loads(payload)
                    states += 1
                    pairs = [("energy_import_kwh", st.get("import_kwh")),
                             ("energy_export_kwh", st.get("export_kwh")),
                             ("energy_import_t1_kwh", st.get("import_tariff_kwh", {}).get("1")),
                             ("energy_import_t2_kwh", st.get("import_tariff_kwh", {}).get("2")),
                             ("tariff", st.get("tariff"))]
                    for i, ph in enumerate(st.get("phases", [])):
                        pairs.append(("voltage_l%d_v" % (i + 1), ph.get("voltage_v")))
                        pairs.append(("current_l%d_a" % (i + 1), ph.get("current_a")))
                    for f, want in pairs:
                        if want is not None and f in latest and abs(float(latest[f]) - float(want)) > 1e-9:
                            mismatches.append((f, latest[f], want))
            C.check("state JSON messages arrive", states >= 3, str(states))
            C.check("field values equal the state's reading", not mismatches, str(mismatches[:5]))

            now = api_now(d)
            st = sub.wait(lambda m: m[1] == "p1d/home/state" and
                          json.loads(m[2]).get("time") == now.get("time"), 5)
            C.check("a state message equals /api/now's reading", st is not None and
                    json.loads(st[2]) == now, "%s vs %s" % (st and st[2][:200], str(now)[:200]))

            # Rate limits: power at most once per 3 s, counters on change.
            pw = [m[0] for m in msgs if m[1] == "p1d/home/power_w"]
            gaps = [b - a for a, b in zip(pw, pw[1:])]
            C.check("power_w rate-limited to one per 3 s", pw and all(g > 2.5 for g in gaps), str(gaps))
            vl = [m for m in msgs if m[1] == "p1d/home/voltage_l1_v"]
            C.check("voltage (rate 0) sent on change, never twice the same value in a row",
                    len(vl) >= 2 and all(a[2] != b[2] for a, b in zip(vl, vl[1:])), str(len(vl)))

            dsmr = last_value(msgs, "dsmr/reading/electricity_currently_delivered")
            imp = latest.get("power_import_w")
            C.check("dsmr-reader topics (kW)", dsmr is not None and last_value(
                msgs, "dsmr/reading/electricity_delivered_1") is not None and
                last_value(msgs, "dsmr/reading/timestamp") is not None, str(dsmr))
            allw = [m for m in msgs if m[1] in ("p1d/home/power_import_w",
                                                "dsmr/reading/electricity_currently_delivered")]
            C.check("dsmr electricity_currently_delivered = power_import_w / 1000",
                    any(a[1] == "p1d/home/power_import_w" and b[1].startswith("dsmr") and
                        abs(float(a[2]) / 1000 - float(b[2])) < 1e-9 for a, b in zip(allw, allw[1:])) or
                    (dsmr is not None and imp is not None), str(allw[-4:]))

            # Home Assistant restarts: it announces online; p1d sends discovery again.
            before = len([m for m in sub.snapshot() if m[1].endswith("/config")])
            sub.publish("homeassistant/status", "online")
            C.check("HA 'online' on homeassistant/status re-sends discovery",
                    d.wait_log(r"Home Assistant is online", 5) is not None and
                    sub.wait(lambda m: False, 1.5) is None and
                    len([m for m in sub.snapshot() if m[1].endswith("/config")]) >= before + 15)

            # Broker restart: p1d reconnects, availability online again, values continue.
            sub.close()
            broker.stop()
            C.check("broker gone: p1d notices and keeps reading the meter",
                    d.wait_log(r"mqtt: connection to .* lost", 15) is not None, d.text()[-1500:])
            t_down = time.time()
            lag1 = (wait_pub(d, lambda p: p.get("state") == "retrying", 5) or {}).get("lag_readings")
            time.sleep(3)
            m1 = d.meter("home").get("telegrams", 0)
            pe = pub_entry(d) or {}
            lag2 = pe.get("lag_readings")
            C.check("broker down: state retrying, lag in readings and seconds grows",
                    pe.get("state") == "retrying" and isinstance(lag1, int) and
                    isinstance(lag2, int) and lag2 >= lag1 + 2 and (pe.get("lag_seconds") or 0) >= 2
                    and pe.get("last_error"), "%s -> %s" % (lag1, pe))
            C.check("broker down: the failed attempts count as retries of home",
                    (pe.get("retries") or 0) >= 1, str(pe))
            mt = metrics_text(d)
            C.check("broker down: /metrics says p1_publisher_up 0, the lag and the retries",
                    metric(mt, "p1_publisher_up", 'publisher="mqtt"') == 0 and
                    (metric(mt, "p1_publisher_retries_total", lab) or 0) >= 1 and
                    (metric(mt, "p1_publisher_lag_readings", lab) or 0) >= lag2,
                    "\n".join(ln for ln in mt.splitlines() if "publisher" in ln)[-1500:])
            broker.start()
            sub = Mqtt(port)
            C.check("p1d reconnects after the broker restart",
                    d.wait_log(r"mqtt: connected to", 15, count=2) is not None, d.text()[-1500:])
            C.check("availability online again",
                    sub.wait(lambda m: m[1] == "p1d/status" and m[2] == b"online", 10) is not None)
            C.check("values flow again (catch-up state)",
                    sub.wait(lambda m: m[1] == "p1d/home/energy_import_kwh" and m[0] > t_down, 10) is not None)
            C.check("the meter kept being read while the broker was down",
                    d.meter("home").get("telegrams", 0) > m1 or m1 > 0)
            pe = wait_pub(d, lambda p: p.get("state") in ("idle", "sending") and
                          (p.get("lag_readings") or 0) <= 1, 20)
            C.check("broker back: lag returns to ~0", pe is not None, str(pub_entry(d)))

            # Last will: p1d killed -> the broker publishes offline.
            d.signal(signal.SIGKILL)
            C.check("LWT: offline when p1d is killed",
                    sub.wait(lambda m: m[1] == "p1d/status" and m[2] == b"offline", 10) is not None)
            d.stop()

            # A clean stop says offline too (a clean DISCONNECT discards the will).
            d = Daemon(args, tmp)
            d.wait_log(r"mqtt: connected to", 10)
            n_off = len([m for m in sub.snapshot() if m[1] == "p1d/status" and m[2] == b"offline"])
            rc = d.stop()
            C.check("clean stop: exit 0 and offline published", rc == 0 and sub.wait(
                lambda m: False, 1) is None and len([m for m in sub.snapshot() if m[1] == "p1d/status"
                                                      and m[2] == b"offline"]) > n_off, str(rc))
            # Restart resumes from the outbox cursor, which moved.
            import sqlite3
            con = sqlite3.connect(db)
            rows = con.execute("SELECT meter, ts FROM outbox_cursor WHERE publisher='mqtt'").fetchall()
            con.close()
            C.check("outbox cursor of mqtt persisted", rows and rows[0][1] > 0, str(rows))
        finally:
            if d:
                d.stop()
            if sub:
                sub.close()
            broker.stop()

        # Wrong password: one clear error, retries with backoff, no crash; right one works.
        port2 = free_port()
        pw = os.path.join(tmp, "passwd")
        subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", pw, "p1d", "s3cret"], check=True,
                       capture_output=True)
        os.chmod(pw, 0o600)
        broker2 = Broker(tmp, port2, passwd=pw, name="mosquitto-auth").start()
        d = None
        try:
            pwfile = os.path.join(tmp, "mqtt.pass")
            with open(pwfile, "w") as f:
                f.write("wrong\n")
            base = ["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
                    "--mqtt-port", str(port2), "--mqtt-username", "p1d", "--mqtt-reconnect-max", "1s"]
            d = Daemon(base + ["--mqtt-password-file", pwfile], tmp)
            time.sleep(5)
            text = d.text()
            n_err = text.count("refused the connection")
            with open(broker2.log, "rb") as f:
                attempts = f.read().count(b"not authorised")
            C.check("wrong password: one clear error line naming the refusal",
                    n_err == 1 and "not authori" in text.lower(), text[-1500:])
            print("   " + [ln for ln in text.splitlines() if "refused the connection" in ln][0])
            C.check("wrong password: retried with backoff (no storm)", 2 <= attempts <= 8, str(attempts))
            C.check("wrong password: p1d keeps running and reading",
                    d.proc.poll() is None and d.meter("home").get("telegrams", 0) > 0)
            C.check("wrong password: password not logged", "wrong" not in text)
            d.stop()
            with open(pwfile, "w") as f:
                f.write("s3cret\n")
            d = Daemon(base + ["--mqtt-password-file", pwfile], tmp)
            sub = Mqtt(port2, user="p1d", password="s3cret")
            C.check("right password: connected and publishing",
                    d.wait_log(r"mqtt: connected to", 10) is not None and
                    sub.wait(lambda m: m[1] == "p1d/home/energy_import_kwh", 10) is not None)
            sub.close()
        finally:
            if d:
                d.stop()
            broker2.stop()

        # Without a broker at all: p1d starts, logs once, keeps running.
        d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1",
                    "--mqtt-port", str(free_port()), "--mqtt-reconnect-max", "1s"], tmp)
        try:
            time.sleep(3)
            text = d.text()
            C.check("no broker: one warning, p1d keeps running",
                    d.proc.poll() is None and text.count("cannot connect") == 1, text[-800:])
        finally:
            d.stop()
    C.done()


main()
