#!/usr/bin/env python3
"""test_decode_units.py: `p1 decode` on telegram bytes with the units and number forms real meters
send (../shared/dsmr/NOTES.md 2.4, Q-LN-10..12, 5.4): every spelling is scaled to the reading's
unit, rounding is half away from zero, a value too large after scaling is reported and never
wrapped, an unknown unit is kept as sent and never scaled, and the M-Bus channel quirks give the
gas_m3 / water_m3 / heat_gj that p1d stores and publishes."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, crc16  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
P1 = os.environ.get("P1", os.path.join(ROOT, "build", "p1"))
C = Checks("test_decode_units")


def telegram(lines, header="ISK5\\2M550T-1012", crc=True):
    body = ("/%s\r\n\r\n%s!" % (header, "".join(l + "\r\n" for l in lines))).encode("latin-1")
    return body + (b"%04X\r\n" % crc16(body) if crc else b"\r\n")


def decode(data):
    """The decoded telegrams of data, and p1's standard error."""
    p = subprocess.run([P1, "decode", "-"], input=data, capture_output=True, timeout=30)
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l], p.stderr.decode()


def one(lines, **kw):
    out, err = decode(telegram(["1-3:0.2.8(50)"] + lines, **kw))
    return (out[0] if out else {}), err


# (object line, reading member (or phase 1 member with "phases."), value) for every spelling in
# NOTES and the corpus, and the prefixes p1d scales
SPELLINGS = [
    ("1-0:1.8.1(001234.567*kWh)", "import_tariff_kwh.1", 1234.567),
    ("1-0:1.8.1(001234.567*kwh)", "import_tariff_kwh.1", 1234.567),
    ("1-0:1.8.1(001234.567*KWH)", "import_tariff_kwh.1", 1234.567),
    ("1-0:1.8.1(006545766*Wh)", "import_tariff_kwh.1", 6545.766),
    ("1-0:1.8.1(0012.345678*MWh)", "import_tariff_kwh.1", 12345.678),
    ("1-0:1.8.1(00052185.7825309*kWh)", "import_tariff_kwh.1", 52185.782531),
    ("1-0:1.7.0(01.193*kW)", "power_import_kw", 1.193),
    ("1-0:1.7.0(001193*W)", "power_import_kw", 1.193),
    ("1-0:1.7.0(0.001193*MW)", "power_import_kw", 1.193),
    ("1-0:3.8.0(00001.5*kvarh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.8.0(00001.5*kVArh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.8.0(00001.5*kVarh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.8.0(1500*varh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.8.0(1500*VArh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.8.0(0.0015*Mvarh)", "reactive_import_kvarh", 1.5),
    ("1-0:3.7.0(00.250*kvar)", "reactive_import_kvar", 0.25),
    ("1-0:3.7.0(00.250*kVAr)", "reactive_import_kvar", 0.25),
    ("1-0:3.7.0(00.250*Kvar)", "reactive_import_kvar", 0.25),
    ("1-0:3.7.0(00.250*kVar)", "reactive_import_kvar", 0.25),
    ("1-0:3.7.0(250*var)", "reactive_import_kvar", 0.25),
    ("1-0:3.7.0(250*VAr)", "reactive_import_kvar", 0.25),
    ("1-0:9.7.0(00.300*kVA)", "apparent_import_kva", 0.3),
    ("1-0:9.7.0(300*VA)", "apparent_import_kva", 0.3),
    ("1-0:14.7.0(49.98*Hz)", "frequency_hz", 49.98),
    ("1-0:32.7.0(230.1*V)", "phases.voltage_v", 230.1),
    ("1-0:32.7.0(230.1*v)", "phases.voltage_v", 230.1),
    ("1-0:32.7.0(0.2301*kV)", "phases.voltage_v", 230.1),
    ("1-0:31.7.0(004.9*A)", "phases.current_a", 4.9),
    ("1-0:31.7.0(0.48A)", "phases.current_a", 0.48),
    ("1-0:31.7.0(-063*mA)", "phases.current_a", -0.063),
    ("1-0:31.7.0(000.27*a)", "phases.current_a", 0.27),
]


def member(r, path):
    if path.startswith("phases."):
        return ((r.get("phases") or [{}])[0]).get(path[7:])
    v = r
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v


def spellings():
    bad = []
    for line, path, want in SPELLINGS:
        t, err = one([line])
        got = member(t.get("reading", {}), path)
        if not t.get("ok") or got != want:
            bad.append((line, got, err.strip()))
    C.check("%d unit spellings (NOTES 2.4, Q-LN-10, prefixes) scaled to the reading's unit"
            % len(SPELLINGS), not bad, bad)


def objects_as_sent():
    t, _ = one(["1-0:1.8.1(0012.345678*MWh)", "1-0:31.7.0(-00.48A)", "0-1:24.1.0(003)",
                "0-1:24.2.1(241120101000W)(0012345*l)"])
    vals = {o["obis"]: o["values"][-1] for o in t.get("objects", [])}
    C.check("objects[]: raw without the unit, number with the meter's digits, unit as sent",
            vals.get("1-0:1.8.1") == {"raw": "0012.345678", "number": 12.345678, "unit": "MWh"}
            and vals.get("1-0:31.7.0") == {"raw": "-00.48", "number": -0.48, "unit": "A"}
            and vals.get("0-1:24.2.1") == {"raw": "0012345", "number": 12345, "unit": "l"}, vals)


def rounding():
    cases = [("0.0000005*kWh", 0.000001), ("0.0000004999*kWh", 0), ("-0.0000005*kWh", -0.000001),
             ("-0.0000015*kWh", -0.000002), ("0.0000015*Wh", 0), ("0.0005*Wh", 0.000001),
             ("-0.0005*Wh", -0.000001), ("0.0000004999999*MWh", 0.0005)]
    got = []
    for v, want in cases:
        t, _ = one(["1-0:1.8.1(%s)" % v, "1-0:1.8.2(000000.000*kWh)"])
        got.append((v, member(t.get("reading", {}), "import_tariff_kwh.1"), want))
    C.check("more decimals than 6: rounded half away from zero, the same for both signs",
            all(g == w for _, g, w in got), got)


def overflow():
    out = []
    for v in ("4000000000000*kWh", "4000000000.000000*MWh", "-4000000000*MWh",
              "4000000000000.000001*kWh", "4000000000.0000001*MWh", "9223372036854.775807*kWh",
              "9223372036.854775*MWh", "99999999999999999*MWh", "99999999999999999999*kWh"):
        t, err = one(["1-0:1.8.1(%s)" % v, "1-0:1.8.2(000000.000*kWh)"])
        out.append((v, t.get("ok"), t.get("error"),
                    member(t.get("reading", {}), "import_tariff_kwh.1")))
    C.check("a register up to 4e12 kWh is exact; one beyond after scaling is a bad_value (its "
            "rounding and sums would overflow downstream: no wrapped or clipped number); too many "
            "digits is number_overflow (%s)" % out,
            out == [("4000000000000*kWh", True, None, 4000000000000),
                    ("4000000000.000000*MWh", True, None, 4000000000000),
                    ("-4000000000*MWh", True, None, -4000000000000),
                    ("4000000000000.000001*kWh", False, "bad_value", None),
                    ("4000000000.0000001*MWh", False, "bad_value", None),
                    ("9223372036854.775807*kWh", False, "bad_value", None),
                    ("9223372036.854775*MWh", False, "bad_value", None),
                    ("99999999999999999*MWh", False, "bad_value", None),
                    ("99999999999999999999*kWh", False, "number_overflow", None)], out)
    # the same bound on an M-Bus meter's value (a total) and on a sum of tariffs
    t, _ = one(["0-1:24.1.0(003)", "0-1:24.2.1(241120101000W)(9223372036854.775807*m3)"])
    C.check("an M-Bus value beyond 4e12 m3 is a bad_value", t.get("error") == "bad_value",
            t.get("reading"))
    t, _ = one(["1-0:1.8.1(3000000000000*kWh)", "1-0:1.8.2(3000000000000*kWh)"])
    C.check("tariffs summing beyond 4e12 kWh give no import_kwh, never a wrapped one",
            t.get("ok") and "import_kwh" not in t.get("reading", {}), t.get("reading"))
    # a power with a valid CRC is left out (not a total), never wrapped
    t, _ = one(["1-0:1.7.0(99999999999999.9*MW)"])
    C.check("a power too large after scaling is left out, the telegram kept (valid CRC)",
            t.get("ok") and "power_import_kw" not in t.get("reading", {}), t.get("reading"))


def unknown_unit():
    t, _ = one(["1-0:1.8.1(000012.500*kWh)", "0-1:24.1.0(003)",
                "0-1:24.2.1(241120101000W)(00012.500*ft3)", "0-2:24.1.0(007)",
                "0-2:24.2.1(241120101000W)(00012.500*Nm3)"])
    r = t.get("reading", {})
    mb = {m["channel"]: (m.get("medium"), m.get("value"), m.get("unit")) for m in r.get("mbus", [])}
    C.check("an unknown unit is kept as sent and not scaled, and gives no m3 reading (%s)" % mb,
            t.get("ok") and mb == {1: ("gas", 12.5, "ft3"), 2: ("water", 12.5, "Nm3")}
            and "gas_m3" not in r and "water_m3" not in r, r)


def mbus_quirks():
    # Q-MB-1: channel 1 left empty, gas on channel 2
    t, _ = one(["0-1:24.1.0(003)", "0-1:96.1.0()", "0-1:24.2.1(700101010000W)(00000000)",
                "0-2:24.1.0(003)", "0-2:96.1.0(4730303339303031363532303530323136)",
                "0-2:24.2.1(241120101000W)(01234.567*m3)"])
    r = t.get("reading", {})
    C.check("Q-MB-1: gas on channel 2 behind an empty channel 1: gas_m3 1234.567 from channel 2",
            r.get("gas_m3") == 1234.567 and r.get("gas_channel") == 2, r)
    # Q-MB-3 and Q-MB-5: a filler channel, heat in GJ on channel 3 (NWA Warmtelink)
    t, _ = one(["0-1:24.1.0(003)", "0-1:24.2.1(632525252525S)(00000.000)", "0-3:24.1.0(004)",
                "0-3:24.2.1(241120101000W)(00012.345*GJ)"])
    r = t.get("reading", {})
    C.check("Q-MB-3: the filler 0 gives no gas_m3; Q-MB-5: heat 12.345 GJ on channel 3",
            "gas_m3" not in r and r.get("heat_gj") == 12.345 and r.get("heat_channel") == 3, r)
    # Q-MB-4: Belgian gas on 24.2.3, water on 24.2.1
    t, _ = one(["0-1:24.1.0(003)", "0-1:24.2.3(241120101000W)(00112.384*m3)", "0-2:24.1.0(007)",
                "0-2:24.2.1(241120101000W)(00872.234*m3)"], header="FLU5\\253769484_A")
    r = t.get("reading", {})
    C.check("Q-MB-4: Belgian gas on 24.2.3 and water on 24.2.1",
            r.get("gas_m3") == 112.384 and r.get("water_m3") == 872.234, r)
    # DSMR 2.2/3.0 profile with the value on the next line, no CRC
    profile = "0-1:24.3.0(121030140000)(00)(60)(1)(0-1:24.2.1)(m3)"
    out, _ = decode(telegram(["0-1:24.1.0(3)", profile, "(00124.477)"],
                             header="ISk5\\2MT382-1000", crc=False))
    r = (out[0] if out else {}).get("reading", {})
    C.check("DSMR 2.2 24.3.0: the value on the next line, unit from (m3): gas_m3 124.477",
            r.get("gas_m3") == 124.477, r)
    # a value at a placeholder time (meter clock not set) is a reading
    t, _ = one(["0-1:24.1.0(003)", "0-1:24.2.1(000101000000W)(00042.000*m3)"])
    C.check("a non-zero value at a placeholder time is a reading (clock not set)",
            t.get("reading", {}).get("gas_m3") == 42, t.get("reading"))
    # no device type: litres are water (before: gas, since the decoder turns litres into m3)
    t, _ = one(["0-1:24.2.1(241120101000W)(0012345*l)"])
    r = t.get("reading", {})
    C.check("no 24.1.0 and a value in litres: a water meter, not gas (%s)" % r.get("mbus"),
            r.get("water_m3") == 12.345 and "gas_m3" not in r
            and (r.get("mbus") or [{}])[0].get("medium") == "water", r)
    # a channel that changes device type from one telegram to the next
    a = telegram(["1-3:0.2.8(50)", "0-1:24.1.0(003)", "0-1:24.2.1(241120101000W)(01234.567*m3)"])
    b = telegram(["1-3:0.2.8(50)", "0-1:24.1.0(007)", "0-1:24.2.1(241120101500W)(00012.345*m3)"])
    out, _ = decode(a + b)
    rs = [o.get("reading", {}) for o in out]
    C.check("a channel that turns from gas into water: gas_m3 then water_m3, no stale gas",
            len(rs) == 2 and rs[0].get("gas_m3") == 1234.567 and "water_m3" not in rs[0]
            and rs[1].get("water_m3") == 12.345 and "gas_m3" not in rs[1], rs)


def stored_values():
    # an F group other than 255: a billing period's stored value, not the live register
    t, _ = one(["1-0:1.8.1(000100.000*kWh)", "1-0:1.8.1*1(000090.000*kWh)",
                "1-0:1.8.0.2(000080.000*kWh)", "1-0:1.7.0*255(00.250*kW)"])
    r = t.get("reading", {})
    C.check("1-0:1.8.1*1 and 1-0:1.8.0.2 fill nothing (import 100 kWh, no sent total), *255 does",
            t.get("ok") and r.get("import_tariff_kwh") == {"1": 100} and r.get("import_kwh") == 100
            and r.get("power_import_w") == 250 and r.get("unknown") == 2
            and [o["obis"] for o in t.get("objects", [])][2:4] == ["1-0:1.8.1.1", "1-0:1.8.0.2"],
            (r, t.get("objects")))
    # a Belgian month without a peak yet carries placeholder times: said so per entry
    t, _ = one(["0-0:96.1.4(50217)", "0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(230101000000W)"
                "(221218174500W)(05.123*kW)(230201000000W)(632525252525W)(00.000*kW)"])
    months = t.get("reading", {}).get("demand_months") or []
    C.check("demand_months: month_valid and peak_time_valid, false for a placeholder (%s)" % months,
            [(m.get("month_valid"), m.get("peak_time_valid")) for m in months]
            == [(True, True), (True, False)], months)



def failure_durations():
    # a failure log entry whose duration cannot be read: null, not the -1 libp1 marks it with
    t, _ = one(["1-0:99.97.0(2)(0-0:96.7.19)(241201120000W)(0000000240*s)"
                "(241202120000W)(abc*s)"])
    log = t.get("reading", {}).get("failure_log") or []
    C.check("failure_log: a duration that cannot be read is null (%s)" % log,
            [e.get("duration_s", "missing") for e in log] == [240, None], log)


C.run((spellings, objects_as_sent, rounding, overflow, unknown_unit, mbus_quirks, stored_values,
       failure_durations))
C.done()
