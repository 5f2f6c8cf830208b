#!/usr/bin/env python3
"""test_mqtt_discovery.py: every Home Assistant discovery config p1d publishes, for every kind of
meter at once (NL DSMR 5 three-phase with gas, BE e-MUCS with water and capacity tariff, DSMR 2.2,
M-Bus water and heat), collected by a real subscriber on a real mosquitto on 127.0.0.1 and checked
against Home Assistant's validation rules, transcribed below as a table of facts; then the life
cycle of the configs and their availability: Home Assistant's birth message, a meter that goes
quiet, a meter removed by a reload, discovery turned off or moved by one, placeholder M-Bus values,
a custom discovery prefix, a broker restart and a fleet of 200 meters."""
import json
import math
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (ROOT, Checks, Daemon, crc16, fake_dongle, free_port,  # noqa: E402
                            need_p1d, run, telegram, tmpdir)
from mqtt_helpers import MOSQUITTO, Broker, Mqtt, retained_now, tcp_meter  # noqa: E402
import daemon_helpers  # noqa: E402

C = Checks("test_mqtt_discovery")
need_p1d(C)
if not os.access(MOSQUITTO, os.X_OK):
    print("SKIP: mosquitto not installed (tools/setup.sh test)")
    C.done()

M3 = "m\u00b3"
# Home Assistant's rules, as facts.
# Units each sensor device class accepts (HA logs "is using native unit of measurement ... which is
# not a valid unit for the device class" and the MQTT sensor schema refuses the config), and the
# state classes it accepts ("state_class ... is not a valid state class for device class"):
#   https://www.home-assistant.io/integrations/sensor/#device-class
#   https://developers.home-assistant.io/docs/core/entity/sensor/#available-device-classes
# Only the classes p1d could use; the unit sets are the ones HA has accepted since 2023 (newer
# releases add more units, never take these away).
HA_DEVICE_CLASSES = {
    "energy": ({"Wh", "kWh", "MWh", "MJ", "GJ"}, {"total", "total_increasing"}),
    "power": ({"W", "kW"}, {"measurement"}),
    "gas": ({M3, "ft\u00b3", "CCF"}, {"total", "total_increasing"}),
    "water": ({M3, "L", "gal", "ft\u00b3", "CCF"}, {"total", "total_increasing"}),
    "voltage": ({"V", "mV"}, {"measurement"}),
    "current": ({"A", "mA"}, {"measurement"}),
    "frequency": ({"Hz", "kHz", "MHz", "GHz"}, {"measurement"}),
    "power_factor": ({"%", None}, {"measurement"}),
}
# State classes of a sensor (developers.home-assistant.io/docs/core/entity/sensor/#available-state-
# classes); last_reset only goes with "total" (developers.home-assistant.io/blog/2021/09/20/
# state_class_total).
HA_STATE_CLASSES = {"measurement", "total", "total_increasing"}
# A sensor's entity_category can only be "diagnostic": "config" is refused for sensors
# (https://www.home-assistant.io/integrations/sensor.mqtt/, entity_category).
HA_SENSOR_CATEGORIES = {"diagnostic"}
# Discovery topic: <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, node_id and
# object_id of [a-zA-Z0-9_-] (https://www.home-assistant.io/integrations/mqtt/#discovery-topic).
HA_DISCOVERY_TOPIC = re.compile(r"^homeassistant/sensor/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")
# A sensor with a unit, a device class or a state class must have a numeric state: HA raises
# "has the non-numeric value" otherwise (developers.home-assistant.io/docs/core/entity/sensor/).
# The Energy dashboard takes grid import/export from energy sensors with state_class total or
# total_increasing, gas from gas (or energy) sensors, water from water sensors
# (https://www.home-assistant.io/docs/energy/electricity-grid/, /docs/energy/gas/,
# /docs/energy/water/, and the statistics rules of /docs/energy/faq/).
ENERGY_ROLES = {
    "energy_import_kwh": "energy", "energy_import_t1_kwh": "energy",
    "energy_import_t2_kwh": "energy", "energy_export_kwh": "energy",
    "energy_export_t1_kwh": "energy", "energy_export_t2_kwh": "energy",
    "gas_m3": "gas", "water_m3": "water", "heat_gj": "energy",
}
# Device blocks (https://www.home-assistant.io/integrations/sensor.mqtt/, device; HA's
# MQTT_ENTITY_DEVICE_INFO_SCHEMA): at least one of identifiers (a list of strings) or connections;
# name, manufacturer, model, sw_version, serial_number and via_device are strings; via_device is
# the identifier of the device that routes this one's messages (a hub, the parent of a
# sub-device). HA's device registry looks via_device up among the devices it knows: one not
# registered yet is logged ("referencing a non existing via_device", refused from 2025.12; HA's
# MQTT integration then makes an empty stand-in device), so the parent's configs must come first.
HA_DEVICE_STRINGS = ("name", "manufacturer", "model", "sw_version", "hw_version", "serial_number",
                     "via_device", "suggested_area")
# The fields whose value comes from one of the meter's M-Bus devices: each such device is a Home
# Assistant device of its own behind the electricity meter, as HA's DSMR integration shows it
# (a "Gas meter" device with the gas meter's own serial number).
MBUS_FIELDS = {"gas_m3": "gas", "water_m3": "water", "heat_gj": "heat"}
# What each meter of the test must announce, at least.
EXPECTED = {
    "nl": {"power_w", "power_import_w", "power_export_w", "energy_import_kwh",
           "energy_import_t1_kwh", "energy_import_t2_kwh", "energy_export_kwh", "power_l1_w",
           "power_l2_w", "power_l3_w", "voltage_l1_v", "voltage_l2_v", "voltage_l3_v",
           "current_l1_a", "current_l2_a", "current_l3_a", "gas_m3", "tariff"},
    "be": {"power_w", "energy_import_kwh", "energy_export_kwh", "power_l3_w", "voltage_l3_v",
           "current_l3_a", "gas_m3", "water_m3", "tariff", "demand_w", "demand_peak_w"},
    "d22": {"power_w", "energy_import_kwh", "energy_export_kwh", "gas_m3", "tariff"},
    "mbus": {"power_w", "energy_import_kwh", "voltage_l1_v", "water_m3", "heat_gj"},
}


def valid_topic(t):
    """MQTT 3.1.1 topic name rules (a name, not a filter): 1..65535 UTF-8 bytes, no NUL, no
    wildcards."""
    return isinstance(t, str) and 0 < len(t.encode()) <= 65535 and not re.search("[+#\x00]", t)


def mbus_telegram():
    """A DSMR 5 telegram with an M-Bus water meter on channel 2 and a heat meter (GJ) on 3."""
    body = ("/ISK5\\2M550E-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(240120174512W)\r\n"
            "0-0:96.1.1(4530303434303037313331363530363138)\r\n"
            "1-0:1.8.1(001234.567*kWh)\r\n1-0:1.8.2(000765.432*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n"
            "1-0:1.7.0(00.345*kW)\r\n1-0:2.7.0(00.000*kW)\r\n1-0:32.7.0(230.1*V)\r\n"
            "1-0:31.7.0(001*A)\r\n1-0:21.7.0(00.345*kW)\r\n1-0:22.7.0(00.000*kW)\r\n"
            "0-2:24.1.0(007)\r\n0-2:96.1.0(3232323241424344313233343536373839)\r\n"
            "0-2:24.2.1(240120174500W)(00123.456*m3)\r\n"
            "0-3:24.1.0(004)\r\n0-3:96.1.0(3333333341424344313233343536373839)\r\n"
            "0-3:24.2.1(240120170000W)(00012.345*GJ)\r\n!").encode()
    return body + b"%04X\r\n" % crc16(body)


def gas_telegram(i, gas_line):
    """A DSMR 5 telegram numbered i whose M-Bus channel 1 (gas) sends gas_line."""
    body = ("/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(2401201745%02dW)\r\n"
            "1-0:1.8.1(001234.%03d*kWh)\r\n1-0:1.8.2(000765.432*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n"
            "1-0:1.7.0(00.345*kW)\r\n1-0:2.7.0(00.000*kW)\r\n0-1:24.1.0(003)\r\n"
            "0-1:96.1.0(4730303339303031363532303530323136)\r\n%s\r\n!"
            % (i, i, gas_line)).encode()
    return body + b"%04X\r\n" % crc16(body)


def configs_of(msgs):
    """{topic: (payload bytes, retain)} of the last message on each discovery topic."""
    out = {}
    for _, topic, payload, retain in msgs:
        if topic.startswith("homeassistant/") and topic.endswith("/config"):
            out[topic] = (payload, retain)
    return out


def last_values(msgs):
    out = {}
    for _, topic, payload, _ in msgs:
        out[topic] = payload
    return out


def validate(topic, payload, values):
    """The problems Home Assistant would have with one discovery config (empty: none)."""
    bad = []
    m = HA_DISCOVERY_TOPIC.match(topic)
    if not m:
        return ["topic %r is not a discovery topic HA subscribes to" % topic]
    try:
        cfg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return ["not UTF-8 JSON: %s" % e]
    if not isinstance(cfg, dict):
        return ["not a JSON object"]
    for k in ("state_topic", "unique_id", "device"):
        if k not in cfg:
            bad.append("no %s" % k)
    if not valid_topic(cfg.get("state_topic")):
        bad.append("state_topic %r" % cfg.get("state_topic"))
    if "availability_topic" in cfg and not valid_topic(cfg["availability_topic"]):
        bad.append("availability_topic %r" % cfg["availability_topic"])
    for a in cfg.get("availability") or []:
        if not valid_topic(a.get("topic")):
            bad.append("availability topic %r" % a)
    if cfg.get("availability_mode", "latest") not in ("all", "any", "latest"):
        bad.append("availability_mode %r" % cfg["availability_mode"])
    if "name" in cfg and not (cfg["name"] is None or isinstance(cfg["name"], str)):
        bad.append("name %r" % cfg["name"])
    if not isinstance(cfg.get("unique_id"), str) or not cfg.get("unique_id"):
        bad.append("unique_id %r" % cfg.get("unique_id"))
    dei = cfg.get("default_entity_id")
    # Home Assistant checks it with cv.entity_id: lower case, digits, single '_' inside
    if dei is not None and not (isinstance(dei, str) and re.fullmatch(
            r"(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)", dei) and
            dei.startswith("sensor.")):
        bad.append("default_entity_id %r is not a valid sensor entity id" % dei)
    if "object_id" in cfg and dei is not None and dei != "sensor." + "_".join(
            p for p in re.split(r"[^a-z0-9]+", cfg["object_id"].lower()) if p):
        bad.append("default_entity_id %r is not object_id %r made an entity id" %
                   (dei, cfg["object_id"]))
    dc, unit, sc = cfg.get("device_class"), cfg.get("unit_of_measurement"), cfg.get("state_class")
    if dc is not None:
        if dc not in HA_DEVICE_CLASSES:
            bad.append("device_class %r unknown here" % dc)
        else:
            units, scs = HA_DEVICE_CLASSES[dc]
            if unit not in units:
                bad.append("unit %r not valid for device_class %s" % (unit, dc))
            if sc is not None and sc not in scs:
                bad.append("state_class %r not valid for device_class %s" % (sc, dc))
    if sc is not None and sc not in HA_STATE_CLASSES:
        bad.append("state_class %r" % sc)
    if "last_reset_value_template" in cfg and sc != "total":
        bad.append("last_reset with state_class %r" % sc)
    if "entity_category" in cfg and cfg["entity_category"] not in HA_SENSOR_CATEGORIES:
        bad.append("entity_category %r is refused for a sensor" % cfg["entity_category"])
    sdp = cfg.get("suggested_display_precision")
    if sdp is not None and not (isinstance(sdp, int) and not isinstance(sdp, bool) and sdp >= 0):
        bad.append("suggested_display_precision %r" % sdp)
    if "expire_after" in cfg and not (isinstance(cfg["expire_after"], int) and
                                      cfg["expire_after"] > 0):
        bad.append("expire_after %r" % cfg["expire_after"])
    if "enabled_by_default" in cfg and not isinstance(cfg["enabled_by_default"], bool):
        bad.append("enabled_by_default %r" % cfg["enabled_by_default"])
    dev = cfg.get("device") or {}
    ids = dev.get("identifiers")
    if not (isinstance(ids, list) and ids and all(isinstance(i, str) and i for i in ids)):
        bad.append("device.identifiers %r" % ids)
    for k in HA_DEVICE_STRINGS:
        if k in dev and not isinstance(dev[k], str):
            bad.append("device.%s %r" % (k, dev[k]))
    # origin: name required when present (https://www.home-assistant.io/integrations/mqtt/,
    # "Adding information about the origin of a discovery message"); HA logs it with every entity
    # it adds or updates, so p1d must send it.
    if not isinstance((cfg.get("origin") or {}).get("name"), str):
        bad.append("no origin with a name")
    # The state HA would get: numeric whenever a unit or a class says so.
    val = values.get(cfg.get("state_topic"))
    if val is None:
        bad.append("no value on %s" % cfg.get("state_topic"))
    elif dc is not None or unit is not None or sc is not None:
        try:
            if not math.isfinite(float(val.decode())):
                raise ValueError
        except (UnicodeDecodeError, ValueError):
            bad.append("non-numeric state %r with a unit or class" % val)
    field = m.group(2)
    role = ENERGY_ROLES.get(field)
    if role and not (dc == role and sc in ("total", "total_increasing") and
                     unit in HA_DEVICE_CLASSES[role][0]):
        bad.append("the Energy dashboard would not offer it as %s (%s/%s/%s)" %
                   (role, dc, unit, sc))
    return bad


def discovery_checks(msgs, retained, label):
    """Validates every config; returns {meter: {field: cfg}}."""
    configs = configs_of(msgs)
    late = {m[1]: m[3] for m in retained}
    values = last_values(msgs)
    problems, uids, eids, by_meter = [], {}, {}, {}
    for topic, (payload, _) in sorted(configs.items()):
        if not payload:
            continue
        for p in validate(topic, payload, values):
            problems.append("%s: %s" % (topic, p))
        if not late.get(topic):
            problems.append("%s: not retained" % topic)
        cfg = json.loads(payload)
        uid, eid = cfg.get("unique_id"), cfg.get("default_entity_id")
        if uid in uids:
            problems.append("%s: unique_id %s also on %s" % (topic, uid, uids[uid]))
        uids[uid] = topic
        if eid in eids:
            problems.append("%s: default_entity_id %s also on %s" % (topic, eid, eids[eid]))
        eids[eid] = topic
        meter = cfg.get("state_topic", "//").split("/")[1]
        by_meter.setdefault(meter, {})[topic.split("/")[3]] = cfg
    C.check("%s: %d discovery configs of %d meters, every one valid by HA's rules" %
            (label, sum(len(v) for v in by_meter.values()), len(by_meter)),
            not problems and len(by_meter) == len(EXPECTED), "\n  " + "\n  ".join(problems[:20]))
    missing = {m: sorted(want - set(by_meter.get(m, {}))) for m, want in EXPECTED.items()}
    missing = {m: f for m, f in missing.items() if f}
    C.check("%s: each meter announces every value it sends" % label, not missing, str(missing))
    # One device per meter and one per M-Bus device, the same block on each of its configs, and
    # no two meters sharing one.
    devices, owners = {}, {}
    for meter, cfgs in by_meter.items():
        for field, c in cfgs.items():
            blocks = devices.setdefault((meter, MBUS_FIELDS.get(field)), set())
            blocks.add(json.dumps(c.get("device"), sort_keys=True))
            for ident in c.get("device", {}).get("identifiers", []):
                owners.setdefault(ident, set()).add(meter)
    C.check("%s: one device block per meter and per M-Bus device, identical on all its configs" %
            label, all(len(b) == 1 for b in devices.values()),
            str({m: len(b) for m, b in devices.items() if len(b) != 1}))
    C.check("%s: no device identifier shared by two meters" % label,
            all(len(o) == 1 for o in owners.values()), str(owners))
    # Gas, water and heat are devices of their own, behind their meter's device.
    order = [m[1] for m in msgs if m[1] in configs and m[2]]
    bad = []
    for (meter, medium), blocks in devices.items():
        if medium is None:
            continue
        dev = json.loads(next(iter(blocks)))
        parent = json.loads(next(iter(devices.get((meter, None), {"{}"}))))
        ids, pids = set(dev.get("identifiers") or []), set(parent.get("identifiers") or [])
        if not ids or ids & pids:
            bad.append("%s %s: identifiers %s shared with the meter's %s" % (meter, medium, ids,
                                                                            pids))
        if dev.get("via_device") not in pids:
            bad.append("%s %s: via_device %r is none of the meter's identifiers %s" %
                       (meter, medium, dev.get("via_device"), pids))
        if medium not in (dev.get("name") or "").lower():
            bad.append("%s %s: device name %r" % (meter, medium, dev.get("name")))
        field = {md: f for f, md in MBUS_FIELDS.items()}[medium]
        first = min((i for i, t in enumerate(order) if t.endswith("p1d_%s/%s/config" %
                                                                   (meter, field))), default=None)
        parent_first = min((i for i, t in enumerate(order) if ("p1d_%s/" % meter) in t and
                            t.split("/")[3] not in MBUS_FIELDS), default=None)
        if first is None or parent_first is None or parent_first > first:
            bad.append("%s %s: its config came before any of the meter's (via_device unknown to "
                       "HA then)" % (meter, medium))
    n_mbus = len([k for k in devices if k[1]])
    C.check("%s: %d M-Bus devices (gas, water, heat), each its own device with via_device the "
            "meter's identifier, announced after the meter" % (label, n_mbus),
            n_mbus == 6 and not bad, "\n  " + "\n  ".join(bad[:10]))
    return by_meter


def removed_by_reload(tmp):
    """Bug: a meter taken out of the configuration by a reload kept its retained discovery configs
    (and values) on the broker for good: Home Assistant went on showing its entities, as
    available, with their last values."""
    port = free_port()
    broker = Broker(tmp, port, name="reload").start()
    conf = os.path.join(tmp, "reload.conf")
    head = ("[http]\nlisten = 127.0.0.1:0\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
            "rate_power = 0\nstate_interval = 0\n[source home]\nspec = sim:7\n" % port)
    gone = "[source garage]\nspec = sim:8\n"
    with open(conf, "w") as f:
        f.write(head + gone)
    sub = Mqtt(port)
    d = Daemon(["--config", conf], tmp)
    try:
        C.check("reload: both meters announced",
                sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_garage/power_w/config", 10)
                and sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_home/power_w/config", 5),
                d.text()[-1500:])
        sub.wait(lambda m: False, 2)
        before = retained_now(port, ("homeassistant/#", "p1d/#"))
        n_garage = len([t for t in before if "p1d_garage/" in t])
        with open(conf, "w") as f:
            f.write(head)
        n0 = len(sub.snapshot())
        d.signal(signal.SIGHUP)
        C.check("reload: garage removed", d.wait_log(r"garage: removed from the configuration",
                                                     10) is not None, d.text()[-1500:])
        sub.wait(lambda m: False, 3)
        after = retained_now(port, ("homeassistant/#", "p1d/#"))
        left = sorted(t for t in after if "p1d_garage/" in t or t.startswith("p1d/garage/"))
        C.check("reload: garage had a retained availability", "p1d/garage/availability" in before,
                str(sorted(t for t in before if t.startswith("p1d/garage/"))))
        C.check("reload: none of garage's %d retained configs and none of its values remain "
                "on the broker" % n_garage, n_garage >= 15 and not left, str(left[:5]))
        emptied = {m[1] for m in sub.snapshot()[n0:] if m[1].endswith("/config") and not m[2]}
        C.check("reload: Home Assistant got an empty config for each of garage's entities",
                len([t for t in emptied if "p1d_garage/" in t]) >= n_garage and
                not [t for t in emptied if "p1d_home/" in t], str(sorted(emptied)[:4]))
        C.check("reload: home's configs stay", len([t for t in after if "p1d_home/" in t]) ==
                len([t for t in before if "p1d_home/" in t]) and
                "homeassistant/sensor/p1d_home/power_w/config" in after)
        # Added again: announced again.
        with open(conf, "w") as f:
            f.write(head + gone)
        n1 = len(sub.snapshot())
        d.signal(signal.SIGHUP)
        C.check("reload: garage added back is announced again",
                sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_garage/power_w/config" and
                         m[2] and sub.snapshot().index(m) >= n1, 10) is not None,
                d.text()[-1500:])
    finally:
        d.stop()
        sub.close()
        broker.stop()


def discovery_off_by_reload(tmp):
    """Bug: discovery turned off by a reload (or its discovery_prefix changed) left every retained
    config on the broker: Home Assistant kept all the entities the user had just turned off, and
    a prefix change left a second, dead copy of them under the old prefix."""
    port = free_port()
    broker = Broker(tmp, port, name="discoff").start()
    conf = os.path.join(tmp, "discoff.conf")
    head = ("[http]\nlisten = 127.0.0.1:0\n[source home]\nspec = sim:7\n[mqtt]\n"
            "host = 127.0.0.1\nport = %d\nrate_power = 0\nstate_interval = 0\n" % port)
    with open(conf, "w") as f:
        f.write(head)
    sub = Mqtt(port)
    d = Daemon(["--config", conf], tmp)
    reloads = [0]

    def configs_under(prefix):
        return sorted(t for t in retained_now(port, (prefix + "/#",)) if "/p1d_home/" in t)

    def reload(extra):
        with open(conf, "w") as f:
            f.write(head + extra)
        n = len(sub.snapshot())
        reloads[0] += 1
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", 10, count=reloads[0])
        sub.wait(lambda m: False, 3)
        return n

    try:
        C.check("discovery off: home announced, gas on a device of its own",
                sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_home/gas_m3/config", 10)
                is not None, d.text()[-1500:])
        sub.wait(lambda m: False, 1.5)
        before = configs_under("homeassistant")
        n0 = reload("discovery = false\n")
        left = configs_under("homeassistant")
        C.check("discovery off by a reload: none of home's %d retained configs remain" %
                len(before), len(before) >= 15 and not left, str(left[:5]))
        emptied = {m[1] for m in sub.snapshot()[n0:] if m[1].endswith("/config") and not m[2]}
        C.check("discovery off: Home Assistant got an empty config for each of them",
                set(before) <= emptied, str(sorted(set(before) - emptied)[:4]))
        C.check("discovery off: the log says so", re.search(
            r"mqtt: Home Assistant discovery under homeassistant/ is off now", d.text())
            is not None, d.text()[-800:])
        C.check("discovery off: the values are still published", sub.wait(
            lambda m: m[1] == "p1d/home/power_w" and sub.snapshot().index(m) >= n0, 5)
            is not None)
        reload("discovery_prefix = ha2\n")
        on2 = configs_under("ha2")
        C.check("discovery on again under ha2: announced there (%d), not under homeassistant" %
                len(on2), len(on2) == len(before) and not configs_under("homeassistant"),
                str(on2[:3]))
        reload("discovery_prefix = ha3\n")
        C.check("discovery_prefix ha2 -> ha3 by a reload: the ha2 configs are deleted, ha3 has "
                "them", not configs_under("ha2") and len(configs_under("ha3")) == len(before),
                str(configs_under("ha2")[:3]))
    finally:
        d.stop()
        sub.close()
        broker.stop()


def topic_prefix_by_reload(tmp):
    """Bug: a reload that changed topic_prefix left every value retained under the old prefix
    (state, fields, availability "online") for good: anything reading p1d/METER/... went on
    seeing the last values as current; a meter removed by the same reload kept its values there
    too, as its retraction went to the new prefix."""
    port = free_port()
    broker = Broker(tmp, port, name="topicmove").start()
    conf = os.path.join(tmp, "topicmove.conf")
    head = ("[http]\nlisten = 127.0.0.1:0\n[source home]\nspec = sim:7\n[mqtt]\n"
            "host = 127.0.0.1\nport = %d\nrate_power = 0\nstate_interval = 0\n" % port)
    garage = "[source garage]\nspec = sim:8\n"
    with open(conf, "w") as f:
        f.write(head + garage)
    sub = Mqtt(port)
    d = Daemon(["--config", conf], tmp)

    def values_under(prefix):
        return sorted(t for t in retained_now(port, (prefix + "/#",))
                      if t.startswith(prefix + "/home/") or t.startswith(prefix + "/garage/"))

    try:
        C.check("topic_prefix: home and garage publish under p1d/",
                sub.wait(lambda m: m[1] == "p1d/garage/state", 10) is not None and
                sub.wait(lambda m: m[1] == "p1d/home/state", 5) is not None, d.text()[-1500:])
        sub.wait(lambda m: False, 1.5)
        before = values_under("p1d")
        with open(conf, "w") as f:
            f.write(head.replace("[mqtt]\n", "[mqtt]\ntopic_prefix = energy/p1\n"))
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", 10)
        sub.wait(lambda m: m[1] == "energy/p1/home/state", 10)
        sub.wait(lambda m: False, 2)
        left = values_under("p1d")
        C.check("topic_prefix p1d -> energy/p1 by a reload: none of the %d values retained under "
                "p1d/ remain (home's and removed garage's)" % len(before),
                len(before) >= 20 and not left, str(left[:6]))
        moved = values_under("energy/p1")
        C.check("topic_prefix: home's values are retained under energy/p1/, garage has none",
                "energy/p1/home/state" in moved and "energy/p1/home/availability" in moved and
                not [t for t in moved if "/garage/" in t], str(moved[:6]))
        cfg = retained_now(port, ("homeassistant/sensor/p1d_home/power_w/config",))
        body = json.loads(cfg.get("homeassistant/sensor/p1d_home/power_w/config") or b"{}")
        C.check("topic_prefix: Home Assistant's config points at the new topics",
                body.get("state_topic", "").startswith("energy/p1/home/"), str(body)[:200])
        C.check("topic_prefix: the log says so", re.search(
            r"mqtt: topic_prefix is energy/p1 now; deleting the values retained under p1d/",
            d.text()) is not None, d.text()[-800:])
        # a later reload that changes something else: those deletions went out, not again
        n0 = len(sub.snapshot())
        with open(conf, "w") as f:
            f.write(head.replace("[mqtt]\n", "[mqtt]\ntopic_prefix = energy/p1\nkeepalive = 30s\n"))
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", 10, count=2)
        sub.wait(lambda m: False, 2.5)
        again = [m[1] for m in sub.snapshot()[n0:] if m[1].startswith("p1d/")]
        C.check("topic_prefix: a later reload deletes nothing under p1d/ again (%d messages)" %
                len(again), not again and len(re.findall(
                    r"deleting the values retained under p1d/", d.text())) == 1, d.text()[-800:])
    finally:
        d.stop()
        sub.close()
        broker.stop()


def quiet_meter(tmp):
    """Bug: every entity's availability was PREFIX/status alone, so a meter that went quiet (cable
    out, dongle hung) stayed available in Home Assistant with its last values for good."""
    avail = "p1d/home/availability"
    args = ["--http-stale", "2s", "--mqtt-rate-power", "0"]
    with tcp_meter(tmp, "quiet", args) as (d, conn, sub, port):
        for i in range(4):
            conn.sendall(telegram(i + 1))
            time.sleep(0.4)
        cfg = sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_home/power_w/config", 5)
        cfg = json.loads(cfg[2]) if cfg else {}
        topics = [a.get("topic") for a in cfg.get("availability") or []]
        C.check("quiet meter: entities are available only while both p1d and the meter are",
                topics == ["p1d/status", avail] and cfg.get("availability_mode") == "all" and
                "availability_topic" not in cfg, str(cfg)[:300])
        C.check("quiet meter: %s online while telegrams arrive" % avail,
                sub.wait(lambda m: m[1] == avail and m[2] == b"online", 5) is not None)
        t_quiet = time.time()
        off = sub.wait(lambda m: m[1] == avail and m[2] == b"offline" and m[0] >= t_quiet, 8)
        C.check("quiet meter: offline once no telegram came for [http] stale (2 s)",
                off is not None and off[0] - t_quiet < 5,
                str([m[1:3] for m in sub.snapshot() if m[1] == avail]))
        C.check("quiet meter: p1d/status stays online meanwhile",
                not [m for m in sub.snapshot() if m[1] == "p1d/status" and m[2] != b"online"])
        ret = retained_now(port, ("p1d/#",))
        C.check("quiet meter: the offline is retained", ret.get(avail) == b"offline", str(ret))
        t_back = time.time()
        conn.sendall(telegram(10))
        C.check("quiet meter: online again with the next telegram",
                sub.wait(lambda m: m[1] == avail and m[2] == b"online" and m[0] >= t_back, 5)
                is not None)


def restart_without_blink(tmp):
    """Bug: right after a (re)start p1d sent offline on every meter's availability before the
    meter's first telegram could arrive, so each restart blinked every entity unavailable in
    Home Assistant (history gaps, automations on 'unavailable')."""
    avail = "p1d/home/availability"
    args = ["--http-stale", "5s"]
    with tcp_meter(tmp, "blink", args, retained=[(avail, "online")]) as (d, conn, sub, _):
        time.sleep(2)  # the meter's first telegram comes 2 s after p1d's start
        t_first = time.time()
        conn.sendall(telegram(1))
        on = sub.wait(lambda m: m[1] == avail and m[2] == b"online" and m[0] >= t_first, 5)
        seen = [m[2] for m in sub.snapshot() if m[1] == avail]
        C.check("restart: no offline before the meter's first telegram, online after it "
                "(availability: %s)" % seen, b"offline" not in seen and on is not None)


def placeholder_gas(tmp):
    """Bug: a telegram whose gas channel had a placeholder capture time and the filler value 0
    (0-1:24.2.1(632525252525S)(00000.000): the gas meter not heard from) was published as
    gas_m3 0: for a total_increasing sensor Home Assistant takes that drop for a new meter and
    counts the whole register as consumption when the real value comes back."""
    with tcp_meter(tmp, "placeholder", [], topics=("p1d/#",)) as (d, conn, sub, _):
        real = "0-1:24.2.1(240120174000W)(01234.567*m3)"
        filler = "0-1:24.2.1(632525252525S)(00000.000)"
        for i, line in enumerate((real, filler, filler, real)):
            conn.sendall(gas_telegram(i + 1, line))
            time.sleep(1.3)  # past the publisher's 1 s tick: each telegram is looked at
        sub.wait(lambda m: False, 1)
        gas = [m[2] for m in sub.snapshot() if m[1] == "p1d/home/gas_m3"]
        energy = [m[2] for m in sub.snapshot() if m[1] == "p1d/home/energy_import_t1_kwh"]
        C.check("placeholder gas: the telegrams in between were published (energy %s)" % energy,
                len(energy) >= 3, d.text()[-1000:])
        C.check("placeholder gas: gas_m3 never drops to the filler 0 (sent: %s)" % gas,
                gas and all(g == b"1234.567" for g in gas), d.text()[-1000:])


def prefix_and_restart(tmp):
    """A custom discovery_prefix (configs under it, HA's birth message on PREFIX/status), meter
    names that cannot break a topic, and a broker restarted without persistence: every config and
    availability is retained on it again."""
    for bad in ("a b", "a/b", "a+b", "a#", "caf\u00e9"):
        code, _, err = run(["--check-config", "--source", "%s=sim" % bad, "--mqtt-host",
                            "127.0.0.1"])
        C.check("meter name %r refused (it would end up in topics)" % bad, code == 2,
                "%d %s" % (code, err[-300:]))
    port = free_port()
    broker = Broker(tmp, port, name="prefix").start()
    sub = Mqtt(port)
    d = Daemon(["--listen", "127.0.0.1:0", "--source", "Site-42_home=sim:3", "--mqtt-host",
                "127.0.0.1", "--mqtt-port", str(port), "--mqtt-discovery-prefix", "ha-test",
                "--mqtt-topic-prefix", "site/p1", "--mqtt-reconnect-max", "1s"], tmp)
    cfg_topic = "ha-test/sensor/p1d_Site-42_home/power_w/config"
    try:
        m = sub.wait(lambda m: m[1] == cfg_topic, 10)
        cfg = json.loads(m[2]) if m else {}
        C.check("discovery_prefix ha-test: configs under it, state under topic_prefix site/p1",
                cfg.get("state_topic") == "site/p1/Site-42_home/power_w" and
                [a["topic"] for a in cfg.get("availability", [])] ==
                ["site/p1/status", "site/p1/Site-42_home/availability"], str(cfg)[:300])
        C.check("discovery_prefix ha-test: the config is valid by HA's rules (topic aside)",
                not [p for p in validate(cfg_topic.replace("ha-test/", "homeassistant/", 1),
                                         m[2] if m else b"", last_values(sub.snapshot()))
                     if "no value" not in p], str(cfg)[:300])
        n0 = len(sub.snapshot())
        sub.publish("ha-test/status", "online")
        C.check("discovery_prefix ha-test: HA's birth on ha-test/status re-sends the configs",
                sub.wait(lambda m: m[1] == cfg_topic and sub.snapshot().index(m) >= n0, 5)
                is not None)
        sub.close()
        broker.stop()
        d.wait_log(r"mqtt: connection to .* lost", 10)
        broker.start()
        C.check("broker restart: p1d reconnects",
                d.wait_log(r"mqtt: connected to", 15, count=2) is not None, d.text()[-1000:])
        time.sleep(1.5)
        ret = retained_now(port, ("ha-test/#", "site/#"))
        n_cfg = len([t for t in ret if t.startswith("ha-test/")])
        C.check("broker restart without persistence: %d configs and the availability are "
                "retained again" % n_cfg, n_cfg >= 15 and
                ret.get("site/p1/Site-42_home/availability") == b"online" and
                ret.get("site/p1/status") == b"online", str(sorted(ret)[:5]))
    finally:
        d.stop()
        sub.close()
        broker.stop()


def fleet(tmp, n=200):
    """n meters on one p1d with the default rates: every config arrives (and again on HA's birth
    message), and the steady traffic stays about one message per meter per second."""
    port = free_port()
    broker = Broker(tmp, port, name="fleet").start()
    conf = os.path.join(tmp, "fleet.conf")
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\n[mqtt]\nhost = 127.0.0.1\nport = %d\n" % port)
        for i in range(n):
            f.write("[source m%03d]\nspec = sim:%d\n" % (i, i + 1))
    sub = Mqtt(port)
    t0 = time.time()
    d = Daemon(["--config", conf], tmp)
    try:
        want = 20 * n  # a simulated meter has 20 fields
        end = time.time() + 20
        cfgs = set()
        while time.time() < end and len(cfgs) < want:
            cfgs = {m[1] for m in sub.snapshot() if m[1].endswith("/config")}
            time.sleep(0.2)
        took = time.time() - t0
        C.check("fleet of %d: all %d configs arrive (%.1f s after the start)" % (n, want, took),
                len(cfgs) == want, "%d of %d" % (len(cfgs), want))
        avail = {m[1] for m in sub.snapshot() if m[1].endswith("/availability") and
                 m[2] == b"online"}
        C.check("fleet of %d: every meter online on its availability topic" % n,
                len(avail) == n, str(len(avail)))
        sub.wait(lambda m: False, 12)
        t1 = time.time()
        sub.wait(lambda m: False, 10)
        steady = [m for m in sub.snapshot() if m[0] >= t1]
        rate = len(steady) / 10.0 / n
        C.check("fleet of %d: steady traffic %.2f messages per meter per second (defaults)" %
                (n, rate), rate < 2, str(len(steady)))
        n0 = len(sub.snapshot())
        sub.publish("homeassistant/status", "online")
        end = time.time() + 15
        again = set()
        while time.time() < end and len(again) < want:
            again = {m[1] for m in sub.snapshot()[n0:] if m[1].endswith("/config")}
            time.sleep(0.2)
        C.check("fleet of %d: HA's birth message brings every config again" % n,
                len(again) == want, "%d of %d" % (len(again), want))
    finally:
        d.stop()
        sub.close()
        broker.stop()


MAIN_P1D = "/work/main/build/p1d"


def same_entities_as_main(tmp, args, by_meter):
    """Runs main's p1d (before M-Bus devices of their own) with args on a broker of its own: the
    differences in the entities it announces (unique_id, default_entity_id, state_topic per
    config topic) from by_meter's; [] none."""
    if not os.access(MAIN_P1D, os.X_OK):
        return ["%s not built" % MAIN_P1D]
    port = free_port()
    broker = Broker(tmp, port, name="main").start()
    sub = Mqtt(port, topics=("homeassistant/#",))
    args = [a if not a.isdigit() or args[i - 1] != "--mqtt-port" else str(port)
            for i, a in enumerate(args)]
    saved, daemon_helpers.P1D = daemon_helpers.P1D, MAIN_P1D
    d = Daemon(args, tmp)
    daemon_helpers.P1D = saved
    want = sum(len(v) for v in by_meter.values())
    try:
        end = time.time() + 10
        while time.time() < end and len(configs_of(sub.snapshot())) < want:
            time.sleep(0.2)
        old = {}
        for topic, (payload, _) in configs_of(sub.snapshot()).items():
            cfg = json.loads(payload)
            old[topic] = (cfg.get("unique_id"), cfg.get("default_entity_id"),
                          cfg.get("state_topic"))
    finally:
        d.stop()
        sub.close()
        broker.stop()
    new = {"homeassistant/sensor/p1d_%s/%s/config" % (m, f):
           (c.get("unique_id"), c.get("default_entity_id"), c.get("state_topic"))
           for m, cfgs in by_meter.items() for f, c in cfgs.items()}
    return [(t, old.get(t), new.get(t)) for t in sorted(set(old) | set(new))
            if old.get(t) != new.get(t)]


def configs_before_values(tmp):
    """With retain = false Home Assistant sees a value only when it already had the field's
    config (it subscribes once it has it): every config of a meter reaches the broker before that
    field's first value, also for a meter with more than 20 fields (libmosquitto held QoS 1
    messages back beyond 20 in flight while the QoS 0 values went out)."""
    port = free_port()
    broker = Broker(tmp, port, name="order").start()
    sub = Mqtt(port)
    be = os.path.join(ROOT, "tests", "data", "be-fluvius-emucs.txt")
    d = Daemon(["--listen", "127.0.0.1:0", "--source", "rr=file:" + be, "--mqtt-host",
                "127.0.0.1", "--mqtt-port", str(port), "--mqtt-topic-prefix", "pr",
                "--mqtt-retain", "false"], tmp)
    try:
        sub.wait(lambda m: m[1] == "pr/rr/state", 10)
        time.sleep(1)
        first_cfg, first_val = {}, {}
        for i, m in enumerate(sub.snapshot()):
            if m[1].startswith("homeassistant/sensor/p1d_rr/") and m[1].endswith("/config"):
                first_cfg.setdefault(m[1].split("/")[-2], i)
            elif m[1].startswith("pr/rr/") and m[1] not in ("pr/rr/state", "pr/rr/availability"):
                first_val.setdefault(m[1].split("/")[-1], i)
        early = sorted(f for f in first_val if f not in first_cfg or first_cfg[f] > first_val[f])
        C.check("retain = false: all %d configs before their fields' values (early: %s)" %
                (len(first_cfg), early), len(first_cfg) > 20 and not early, d.text()[-600:])
    finally:
        d.stop()
        sub.close()
        broker.stop()


def main():
    with tmpdir() as tmp:
        fleet(tmp)
        configs_before_values(tmp)
        prefix_and_restart(tmp)
        placeholder_gas(tmp)
        restart_without_blink(tmp)
        quiet_meter(tmp)
        removed_by_reload(tmp)
        discovery_off_by_reload(tmp)
        topic_prefix_by_reload(tmp)
        mbus = os.path.join(tmp, "mbus.txt")
        with open(mbus, "wb") as f:
            f.write(mbus_telegram())
        data = os.path.join(ROOT, "tests", "data")
        port = free_port()
        broker = Broker(tmp, port).start()
        sub = Mqtt(port)
        args = ["--listen", "127.0.0.1:0", "--source", "nl=sim:7",
                "--source", "be=file:" + os.path.join(data, "be-fluvius-emucs.txt"),
                "--source", "d22=file:" + os.path.join(data, "dsmr22-gas-nextline.txt"),
                "--source", "mbus=file:" + mbus,
                "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), "--mqtt-rate-power", "0",
                "--mqtt-state-interval", "0"]
        d = Daemon(args, tmp)
        try:
            C.check("p1d connects", d.wait_log(r"mqtt: connected to", 10) is not None,
                    d.text()[-1500:])
            sub.wait(lambda m: False, 3)
            late = Mqtt(port, topics=("homeassistant/#",))
            late.wait(lambda m: False, 1)
            retained = late.snapshot()
            late.close()
            by_meter = discovery_checks(sub.snapshot(), retained, "four meters")
            nl = by_meter.get("nl", {})
            dev = (nl.get("power_w") or {}).get("device", {})
            heat = (by_meter.get("mbus", {}).get("heat_gj") or {}).get("state_topic")
            C.check("mbus: the heat meter's 12.345 GJ is published on its state_topic",
                    last_values(sub.snapshot()).get(heat) == b"12.345", str(heat))
            vals = last_values(sub.snapshot())
            C.check("be: capacity tariff: quarter-hour demand 1872 W and this month's peak 4523 W",
                    vals.get("p1d/be/demand_w") == b"1872" and
                    vals.get("p1d/be/demand_peak_w") == b"4523",
                    "%s %s" % (vals.get("p1d/be/demand_w"), vals.get("p1d/be/demand_peak_w")))
            bedev = (by_meter.get("be", {}).get("power_w") or {}).get("device", {})
            C.check("be: device serial_number is the equipment id 0-0:96.1.1 (1SAG1100123456)",
                    bedev.get("serial_number") == "1SAG1100123456", str(bedev))
            C.check("nl: device names the meter's maker, model and DSMR version",
                    dev.get("manufacturer") and dev.get("model") and
                    "DSMR 5.0" in (dev.get("sw_version") or ""), str(dev))
            serials = {(m, f): (by_meter.get(m, {}).get(f) or {}).get("device", {})
                       for m, f in (("mbus", "water_m3"), ("mbus", "heat_gj"), ("be", "gas_m3"),
                                    ("be", "water_m3"))}
            want = {("mbus", "water_m3"): "2222ABCD123456789",
                    ("mbus", "heat_gj"): "3333ABCD123456789",
                    ("be", "gas_m3"): "7FLO2024000123", ("be", "water_m3"): "8SAE0000123456"}
            C.check("M-Bus devices: serial_number is the M-Bus equipment id (0-n:96.1.0/96.1.1), "
                    "no maker or model (the telegram names none)",
                    all(serials[k].get("serial_number") == v and "manufacturer" not in serials[k]
                        and "model" not in serials[k] for k, v in want.items()),
                    str(serials))
            same = same_entities_as_main(tmp, args, by_meter)
            C.check("every unique_id, default_entity_id and state_topic is the one main's p1d "
                    "announces (HA keeps the entities and their history)", same == [],
                    str(same[:5]))

            # Home Assistant restarts: its birth message asks for every config of every meter.
            n0 = len(sub.snapshot())
            sub.publish("homeassistant/status", "online")
            want = sum(len(v) for v in by_meter.values())
            end = time.time() + 10
            again = []
            while time.time() < end:
                again = [m for m in sub.snapshot()[n0:] if m[1].endswith("/config")]
                if len({m[1] for m in again}) >= want:
                    break
                time.sleep(0.1)
            C.check("HA birth message: every config of every meter sent again (%d of %d)" %
                    (len({m[1] for m in again}), want), len({m[1] for m in again}) >= want)
        finally:
            d.stop()
            sub.close()
            broker.stop()
    C.done()


main()
