#!/usr/bin/env python3
"""make_fixtures.py: writes our own P1 test telegrams (tests/data/*.txt, *.bin) with correct CRCs.

Every telegram here is composed by us from protocol facts (OBIS codes, value forms, meter quirks);
none is copied from another project. Re-running it rewrites the same bytes (deterministic).
The encrypted fixture needs python3-cryptography; without it the .bin files are left as they are.
Usage: python3 tests/data/make_fixtures.py [outdir]
"""
import os
import random
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def crc16(data, crc=0):
    """CRC-16/ARC: poly 0x8005 reflected (0xA001), init 0, no final xor."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


assert crc16(b"123456789") == 0xBB3D


def crc16_x25(data):
    """CRC-16/X-25: reflected poly 0x8408, init and final XOR 0xFFFF ("123456789" = 0x906E)."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


assert crc16_x25(b"123456789") == 0x906E


def hexs(text):
    """Octet-string value: the text's bytes as upper-case hex."""
    if isinstance(text, str):
        text = text.encode("latin-1")
    return text.hex().upper()


def telegram(header, lines, eol=b"\r\n", blank=True, crc="upper", after_crc=b""):
    """Builds '/header' EOL [EOL] lines... '!' + CRC + after_crc + EOL.
    crc: 'upper' (4 digits), 'lower', 'nopad' (no zero padding), 'none' (bare '!'), 'x25'
    (CRC-16/X-25 instead of CRC-16/ARC, 4 digits), or an int/str to send a fixed (wrong) value."""
    body = b"/" + header.encode("latin-1") + eol
    if blank:
        body += eol
    for ln in lines:
        body += (ln.encode("latin-1") if isinstance(ln, str) else ln) + eol
    body += b"!"
    c = crc16(body)
    if crc == "upper":
        tail = b"%04X" % c
    elif crc == "lower":
        tail = b"%04x" % c
    elif crc == "nopad":
        tail = b"%X" % c
    elif crc == "none":
        tail = b""
    elif crc == "x25":
        tail = b"%04X" % crc16_x25(body)
    else:
        tail = crc.encode() if isinstance(crc, str) else b"%04X" % crc
    return body + tail + after_crc + eol


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


# --- NL DSMR 5.0, three phases, gas on channel 1 (the `make run` sample) ----------------------
NL5_LINES = [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240315143005W)",
    "0-0:96.1.1(%s)" % hexs("E0031003315512345"),
    "1-0:1.8.1(012345.678*kWh)",
    "1-0:1.8.2(010987.654*kWh)",
    "1-0:2.8.1(001234.567*kWh)",
    "1-0:2.8.2(002345.678*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(01.234*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00012)",
    "0-0:96.7.9(00003)",
    "1-0:99.97.0(2)(0-0:96.7.19)(230708150312S)(0000000542*s)(240110061545W)(0000004207*s)",
    "1-0:32.32.0(00004)",
    "1-0:52.32.0(00002)",
    "1-0:72.32.0(00001)",
    "1-0:32.36.0(00000)",
    "1-0:52.36.0(00001)",
    "1-0:72.36.0(00000)",
    "0-0:96.13.0(%s)" % hexs("Storing gepland op 20-03 tussen 09:00 en 12:00"),
    "1-0:32.7.0(231.4*V)",
    "1-0:52.7.0(229.8*V)",
    "1-0:72.7.0(232.1*V)",
    "1-0:31.7.0(003*A)",
    "1-0:51.7.0(001*A)",
    "1-0:71.7.0(002*A)",
    "1-0:21.7.0(00.712*kW)",
    "1-0:41.7.0(00.198*kW)",
    "1-0:61.7.0(00.324*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.000*kW)",
    "1-0:62.7.0(00.000*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(%s)" % hexs("G0059003412345678"),
    "0-1:24.2.1(240315143000W)(04567.891*m3)",
]
NL5 = telegram("ISK5\\2M550T-1012", NL5_LINES)
write("dsmr50-3phase-gas.txt", NL5)

# --- NL DSMR 4.2 Kaifa (single phase MA105; 115200 7E1 era): empty failure-log slots, >2^31 s ---
write("dsmr42-kaifa.txt", telegram("KFM5KAIFA-METER", [
    "1-3:0.2.8(42)",
    "0-0:1.0.0(230914213507S)",
    "0-0:96.1.1(%s)" % hexs("E0026000012345678"),
    "1-0:1.8.1(004321.098*kWh)",
    "1-0:1.8.2(005432.109*kWh)",
    "1-0:2.8.1(000000.000*kWh)",
    "1-0:2.8.2(000000.000*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(00.456*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00005)",
    "0-0:96.7.9(00002)",
    "1-0:99.97.0(3)(0-0:96.7.19)(210612093012S)(0000003725*s)(000101000001W)(2147483647*s)"
    "(000101000001W)(2317482647*s)",
    "1-0:32.32.0(00000)",
    "1-0:32.36.0(00000)",
    "0-0:96.13.1()",
    "0-0:96.13.0()",
    "1-0:31.7.0(002*A)",
    "1-0:21.7.0(00.456*kW)",
    "1-0:22.7.0(00.000*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(%s)" % hexs("G0026003498765432"),
    "0-1:24.2.1(230914210000S)(01234.567*m3)",
]))

# --- NL DSMR 2.2 (Iskra MT382 style): no CRC, gas 24.3.0 with its value on the next line ---------
write("dsmr22-gas-nextline.txt", telegram("ISk5\\2MT382-1003", [
    "0-0:96.1.1(%s)" % hexs("ZBEV001234567890"),
    "1-0:1.8.1(12345.678*kWh)",
    "1-0:1.8.2(23456.789*kWh)",
    "1-0:2.8.1(00012.345*kWh)",
    "1-0:2.8.2(00123.456*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(0000.67*kW)",
    "1-0:2.7.0(0000.00*kW)",
    "0-0:17.0.0(0999.00*kW)",
    "0-0:96.3.10(1)",
    "0-0:96.13.1()",
    "0-0:96.13.0()",
    "0-1:24.1.0(3)",
    "0-1:96.1.0(%s)" % hexs("28011008306412345"),
    "0-1:24.3.0(121030140000)(00)(60)(1)(0-1:24.2.1)(m3)",
    "(01234.567)",
    "0-1:24.4.0(1)",
], crc="none"))

# --- NL DSMR 3.0: gas value on the same line as 24.3.0, long text wrapped over three lines -------
TEXT30 = "Geachte klant, op 12 maart werken wij aan het net. U kunt kort zonder stroom zitten."
h = hexs(TEXT30)
wrapped = "0-0:96.13.0(" + h[:64] + "\r\n" + h[64:128] + "\r\n" + h[128:] + ")"
write("dsmr30-gas-sameline-wrapped-text.txt", telegram("KMP5 ZABF001587312345", [
    "0-0:96.1.1(%s)" % hexs(" 2040123456789"),
    "1-0:1.8.1(01234.567*kWh)",
    "1-0:1.8.2(02345.678*kWh)",
    "1-0:2.8.1(00000.000*kWh)",
    "1-0:2.8.2(00000.000*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(0000.43*kW)",
    "1-0:2.7.0(0000.00*kW)",
    "0-0:17.0.0(999*A)",
    "0-0:96.3.10(1)",
    "0-0:96.13.1(%s)" % hexs("01 61 81"),
    wrapped,
    "0-1:24.1.0(3)",
    "0-1:96.1.0(%s)" % hexs("28101E6170123456"),
    "0-1:24.3.0(120517020000)(08)(60)(1)(0-1:24.2.1)(m3)(00124.477)",
    "0-1:24.4.0(1)",
], crc="none"))

# --- BE Fluvius e-MUCS: 1.4.0, 1.6.0, 98.1.0 with 13 months, gas 24.2.3 (ch 1), water (ch 2) -----
months = []
peaks = ["221218174500W", "230123181500W", "230214190000W", "230328183000S", "230418073000S",
         "230522201500S", "230619121500S", "230717190000S", "230829184500S", "230912181500S",
         "231024191500S", "231127174500W", "231218180000W"]
kw = ["05.123", "04.876", "04.512", "03.998", "03.101", "02.845", "02.530", "02.611", "02.904",
      "03.377", "04.012", "04.788", "05.301"]
for i in range(13):
    y, m = 2023 + (i // 12), (i % 12) + 1
    letter = "S" if 4 <= m <= 10 else "W"
    months.append("(%02d%02d01000000%s)(%s)(%s*kW)" % (y % 100, m, letter, peaks[i], kw[i]))
write("be-fluvius-emucs.txt", telegram("FLU5\\253769123_A", [
    "0-0:96.1.4(50217)",
    "0-0:96.1.1(%s)" % hexs("1SAG1100123456"),
    "0-0:1.0.0(240120174512W)",
    "1-0:1.8.1(001234.567*kWh)",
    "1-0:1.8.2(002345.678*kWh)",
    "1-0:2.8.1(000456.789*kWh)",
    "1-0:2.8.2(000123.456*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.4.0(01.872*kW)",
    "1-0:1.6.0(240112183000W)(04.523*kW)",
    "0-0:98.1.0(13)(1-0:1.6.0)(1-0:1.6.0)" + "".join(months),
    "1-0:1.7.0(01.650*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:21.7.0(00.650*kW)",
    "1-0:41.7.0(00.400*kW)",
    "1-0:61.7.0(00.600*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.000*kW)",
    "1-0:62.7.0(00.000*kW)",
    "1-0:32.7.0(232.0*V)",
    "1-0:52.7.0(231.5*V)",
    "1-0:72.7.0(233.1*V)",
    "1-0:31.7.0(002.85*A)",
    "1-0:51.7.0(001.74*A)",
    "1-0:71.7.0(002.61*A)",
    "0-0:96.3.10(1)",
    "0-0:17.0.0(999.9*kW)",
    "1-0:31.4.0(999*A)",
    "0-0:96.13.0()",
    "0-1:24.1.0(003)",
    "0-1:96.1.1(%s)" % hexs("7FLO2024000123"),
    "0-1:24.4.0(1)",
    "0-1:24.2.3(240120174000W)(01234.567*m3)",
    "0-2:24.1.0(007)",
    "0-2:96.1.1(%s)" % hexs("8SAE0000123456"),
    "0-2:24.2.1(240120174500W)(00123.456*m3)",
]))

# --- BE Iskra IE5T: 1-0:1.6.0 sends (value)(time) with a time that has no S/W letter -----------
write("be-iskra-ie5t.txt", telegram("ISK5\\2MIE5T-200", [
    "1-0:0.0.0(00000000)",
    "0-0:96.1.0(%s)" % hexs("2ISK0012345678"),
    "0-0:96.1.4(%s)" % hexs("21110"),
    "0-0:1.0.0(260103081512W)",
    "1-0:1.8.1(000812.345*kWh)",
    "1-0:1.8.2(000543.210*kWh)",
    "1-0:1.8.3(000000.000*kWh)",
    "1-0:2.8.1(000101.010*kWh)",
    "1-0:2.8.2(000020.202*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.4.0(00.512*kW)",
    "1-0:1.6.0(08.796*kW)(260102010000)",
    "1-0:1.7.0(00.487*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:32.7.0(229.4*V)",
    "1-0:31.7.0(002.31*A)",
    "0-0:96.3.10(1)",
    "0-0:96.13.0()",
]))

# --- LU Smarty plaintext (what an encrypted frame decrypts to) ----------------------------------
LU_LINES = [
    "1-3:0.2.8(42)",
    "0-0:1.0.0(240612101530S)",
    "0-0:42.0.0(%s)" % hexs("SAG1030712345678"),
    "1-0:1.8.0(003456.789*kWh)",
    "1-0:2.8.0(000123.456*kWh)",
    "1-0:3.8.0(000234.567*kvarh)",
    "1-0:4.8.0(000345.678*kvarh)",
    "1-0:1.7.0(00.875*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:3.7.0(00.000)",
    "1-0:4.7.0(00.112*kvar)",
    "0-0:17.0.0(77.376)",
    "1-1:31.4.0(080*A)(-040*A)",
    "1-0:9.7.0(00.882*kVA)",
    "1-0:10.7.0(00.000*kVA)",
    "0-0:96.3.10(1)",
    "0-1:96.3.10(0)",
    "0-0:96.7.21(00004)",
    "1-0:32.32.0(00001)",
    "1-0:32.36.0(00000)",
    "0-0:96.13.0()",
    "1-0:32.7.0(233.8*V)",
    "1-0:31.7.0(004*A)",
    "1-0:21.7.0(00.875*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:23.7.0(00.000*kvar)",
    "1-0:24.7.0(00.112*kvar)",
]
LU = telegram("Lux5\\253851234_D", LU_LINES)
write("lu-smarty-plain.txt", LU)

# --- AT Energienetze Steiermark: integer Wh / W / varh / var units -------------------------------
write("at-est-wh.txt", telegram("EST5\\253712345_A", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240202073010W)",
    "0-0:96.1.0(%s)" % hexs("EST0012345678"),
    "1-0:1.8.0(007123456*Wh)",
    "1-0:1.8.1(004000001*Wh)",
    "1-0:1.8.2(003123455*Wh)",
    "1-0:2.8.0(000234567*Wh)",
    "1-0:2.8.1(000200000*Wh)",
    "1-0:2.8.2(000034567*Wh)",
    "1-0:3.8.0(000012345*varh)",
    "1-0:4.8.0(000543210*varh)",
    "1-0:1.7.0(000001234*W)",
    "1-0:2.7.0(000000000*W)",
    "1-0:3.7.0(000000000*var)",
    "1-0:4.7.0(000000166*var)",
]))

# --- rarer unit prefixes: MWh, MW, Mvarh, kV, mA, and an M-Bus heat meter in MWh, water in litres --
write("unit-prefixes.txt", telegram("XMX5LGF0000012345", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(241120101500W)",
    "1-0:1.8.0(0012.345678*MWh)",
    "1-0:2.8.0(0000.001500*MWh)",
    "1-0:3.8.0(00001.5*Mvarh)",
    "1-0:1.7.0(0.002345*MW)",
    "1-0:32.7.0(0.2314*kV)",
    "1-0:31.7.0(01520*mA)",
    "1-0:51.7.0(0000.003*kA)",
    "1-0:14.7.0(0.050*kHz)",
    "0-1:24.1.0(004)",
    "0-1:96.1.0(%s)" % hexs("HEAT0001"),
    "0-1:24.2.1(241120101000W)(0012.345*MWh)",
    "0-2:24.1.0(007)",
    "0-2:96.1.0(%s)" % hexs("WATER002"),
    "0-2:24.2.1(241120101000W)(00123456*l)",
]))

# --- SE (H1 / Aidon style): totals only, kVArh / kVAr, signed currents -----------------------------
write("se-h1.txt", telegram("ADN9 6534", [
    "0-0:1.0.0(240405120000S)",
    "1-0:1.8.0(00012345.678*kWh)",
    "1-0:2.8.0(00000012.345*kWh)",
    "1-0:3.8.0(00000234.567*kVArh)",
    "1-0:4.8.0(00000345.678*kVArh)",
    "1-0:1.7.0(0001.234*kW)",
    "1-0:2.7.0(0000.000*kW)",
    "1-0:3.7.0(0000.000*kVAr)",
    "1-0:4.7.0(0000.321*kVAr)",
    "1-0:21.7.0(0000.734*kW)",
    "1-0:22.7.0(0000.000*kW)",
    "1-0:41.7.0(0000.300*kW)",
    "1-0:42.7.0(0000.000*kW)",
    "1-0:61.7.0(0000.200*kW)",
    "1-0:62.7.0(0000.000*kW)",
    "1-0:32.7.0(230.1*V)",
    "1-0:52.7.0(229.7*V)",
    "1-0:72.7.0(231.0*V)",
    "1-0:31.7.0(003.2*A)",
    "1-0:51.7.0(-001.3*A)",
    "1-0:71.7.0(000.9*A)",
]))

# --- LT (ESO): frequency, signed power factor and averages, firmware ids, neutral current ----------
write("lt-eso.txt", telegram("ESO5\\VMM00201", [
    "0-0:1.0.0(240815093000S)",
    "0-0:96.1.1(%s)" % hexs("LT0001234567"),
    "1-0:0.2.0(02.21)",
    "1-0:0.2.8(1EA43311)",
    "1-0:1.8.0(004567.891*kWh)",
    "1-0:1.8.1(002000.000*kWh)",
    "1-0:1.8.2(002567.891*kWh)",
    "1-0:2.8.0(000000.010*kWh)",
    "1-0:1.7.0(00.412*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:14.7.0(50.01*Hz)",
    "1-0:13.7.0(-0.998)",
    "1-0:33.7.0(0.975)",
    "1-0:16.24.0(-00.024*kW)",
    "1-0:12.7.0(231.2*V)",
    "1-0:32.24.0(230.9*V)",
    "1-0:11.7.0(001.78*A)",
    "1-0:91.7.0(000.52*A)",
    "1-0:0.8.2(00900*s)",
]))

# --- LT (ESO), "maximum" profile: phases only, no 1.7.0/2.7.0: the meter's power is their net sum --
write("lt-eso-phases.txt", telegram("ESO5\\000000000_A", [
    "0-0:1.0.0(250122184500W)",
    "1-0:1.8.0(001234.567*kWh)",
    "1-0:2.8.0(000089.012*kWh)",
    "1-0:21.7.0(00.850*kW)",
    "1-0:41.7.0(00.000*kW)",
    "1-0:61.7.0(00.120*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(01.310*kW)",
    "1-0:62.7.0(00.000*kW)",
    "1-0:32.7.0(236.1*V)",
    "1-0:52.7.0(238.4*V)",
    "1-0:72.7.0(235.9*V)",
    "1-0:31.7.0(003.6*A)",
    "1-0:51.7.0(005.5*A)",
    "1-0:71.7.0(000.5*A)",
    "1-0:15.7.0(02.280*kW)",
    "1-0:16.24.0(-00.310*kW)",
    "1-0:14.7.0(49.98*Hz)",
]))

# --- HU E.ON (Sagemcom): text message with raw 0xFF / Latin-1 bytes, Q1..Q4 reactive energy -------
write("hu-eon-ff-text.txt", telegram("SAG5SAG-METER", [
    "0-0:1.0.0(231105101500W)",
    "0-0:42.0.0(%s)" % hexs("SAG1234567890123"),
    "0-0:96.1.0(%s)" % hexs("901234567890123"),
    "0-0:96.14.0(0001)",
    "0-0:96.3.10(1)",
    "0-0:17.0.0(90.000*kW)",
    "1-0:1.8.0(000273.640*kWh)",
    "1-0:1.8.1(000147.719*kWh)",
    "1-0:1.8.2(000125.921*kWh)",
    "1-0:2.8.0(000027.177*kWh)",
    "1-0:5.8.0(000001.668*kvarh)",
    "1-0:6.8.0(000000.071*kvarh)",
    "1-0:7.8.0(000060.487*kvarh)",
    "1-0:8.8.0(000043.346*kvarh)",
    "1-0:14.7.0(50.00*Hz)",
    "1-0:13.7.0(0.956)",
    "1-0:32.7.0(230.4*V)",
    b"0-0:96.13.0(Tisztelt \xe9gyf\xe9l\xff\xff)",
]))

# --- EasyMeter Q3D via COM-1: '*255' OBIS suffix, W units, no CRC, junk after '!' ----------------
write("easymeter-q3d-junk.txt", telegram("ESY5Q3DB1024 V3.04", [
    "1-0:0.0.0*255(1ESY1161234567)",
    "1-0:1.8.0*255(00012345.6789012*kWh)",
    "1-0:2.8.0*255(00000123.4567890*kWh)",
    "1-0:21.7.0*255(000123.45*W)",
    "1-0:41.7.0*255(000045.67*W)",
    "1-0:61.7.0*255(000089.01*W)",
    "1-0:1.7.0*255(000258.13*W)",
    "1-0:96.5.5*255(80)",
    "0-0:96.1.255(1ESY1161234567)",
], crc="none") + b"\xff\xff\xffGATEWAY OK\r\n\xff")

# --- Gas moved to channel 2; channel 1 left empty with a 1970 placeholder value without unit -----
write("gas-channel2-empty-ch1.txt", telegram("ISK5\\2M550T-1012", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240701120000S)",
    "1-0:1.8.1(000111.111*kWh)",
    "1-0:1.8.2(000222.222*kWh)",
    "1-0:1.7.0(00.150*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0()",
    "0-1:24.2.1(700101010000W)(00000000)",
    "0-2:24.1.0(003)",
    "0-2:96.1.0(%s)" % hexs("G0039001900123456"),
    "0-2:24.2.1(240701115500S)(00246.138*m3)",
]))

# --- Placeholder / invalid timestamps -------------------------------------------------------------
write("placeholder-times.txt", telegram("Ene5\\T211 ESMR 5.0", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(000000000000W)",
    "1-0:99.97.0(2)(0-0:96.7.19)(000101000001W)(2147483647*s)(632525252525W)(0000000000*s)",
    "0-1:24.1.0(003)",
    "0-1:24.2.1(632525252525S)(00000.000)",
    "0-2:24.1.0(003)",
    "0-2:24.2.1(243412120000W)(00001.000*m3)",
    "0-3:24.1.0(007)",
    "0-3:24.2.1(000101000000W)(00000.000*m3)",
]))


# --- Clocks sent in other forms than YYMMDDhhmmssX ---------------------------------------------------
# A COSEM date-time as the hex of its 12 octets: 07E8 (2024) 06 1C (28 June) 05 (Friday) 0A 2B 2B
# (10:43:43) 00 (hundredths) FF88 (deviation -120 min) 80 (status: summer time). Then December with
# status 00, a clock whose every field is "not specified" (FF), and the two text forms. The equipment
# id is 12 octets of ASCII as well (24 hex digits): it stays text.
def clock_telegram(clock, gas_time="240628104000S"):
    return telegram("ESR5\\2CLOCK-TEST", [
        "1-3:0.2.8(50)",
        "0-0:1.0.0(%s)" % clock,
        "0-0:96.1.1(%s)" % hexs("E00310037252"),
        "1-0:1.8.1(000557.193*kWh)",
        "1-0:1.8.2(001982.038*kWh)",
        "1-0:1.7.0(00.118*kW)",
        "1-0:2.7.0(00.000*kW)",
        "0-1:24.1.0(003)",
        "0-1:24.2.1(%s)(01420.156*m3)" % gas_time,
    ])


write("clock-forms.txt", clock_telegram("07E8061C050A2B2B00FF8880") +
      clock_telegram("07E80C1C050A2B2B00FFC400", "241228104000W") +
      clock_telegram("FFFFFFFFFFFFFFFFFF800000") +
      clock_telegram("2024-06-28 10:44:43") + clock_telegram("20241228 10:44:43", "241228104000W"))

# --- HU Holley DTSD545: a block of last billing period's registers, spaces after units -----------
# After 0-0:98.1.0 alone on its line and "(" alone, the meter repeats its clock (letter T) and its
# registers as they stood at the end of the last billing period, up to ")". Those must not replace
# the live registers. One unit is followed by a space, one is in lower case with two spaces.
HOLLEY = [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(250513214120S)",
    "1-0:1.8.0(031108.121*kWh)",
    "1-0:1.8.1(025849.897*kWh)",
    "1-0:1.8.2(005258.224*kWh)",
    "1-0:2.8.0(046953.449*kWh)",
    "1-0:2.8.1(016837.615*kWh)",
    "1-0:2.8.2(030115.834*kWh)",
    "1-0:15.8.0(035940.415*kWh )",
    "1-0:32.7.0(219.2*V)",
    "1-0:31.7.0(001*A)",
    "1-0:14.7.0(49.98*HZ)",
    "1-0:1.7.0(00.797*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.1.0(%s)" % hexs("6002220001063"),
    "0-0:96.14.0(0002)",
    "0-0:98.1.0",
    "(",
    "0-0:1.0.0(250501000000T)",
    "1-0:1.8.0(030924.550*kWh)",
    "1-0:1.8.1(025849.897*kWh)",
    "1-0:1.8.2(005074.653*kwh  )",
    "1-0:2.8.0(046059.525*kWh)",
    "1-0:2.8.1(016837.615*kWh)",
    "1-0:2.8.2(029221.910*kWh)",
    ")",
]
write("hu-holley-block.txt", telegram("HLY5\\D545-METER", HOLLEY, crc="x25") +
      telegram("HLY5\\D545-METER", HOLLEY, crc="x25"))

# --- A clock as 1-0:0.9.2 (date YYMMDD) and 1-0:0.9.1 (time hhmmss), no 0-0:1.0.0 -----------------
# An Iskra AM550 layout (firmware ids in double parentheses, error registers 25.1.0/25.6.0): the
# reading's time comes from the two; February has no summer time (+01:00), July has (+02:00).
def local_clock(date, time_):
    return telegram("ISk5\\2M550T-2006", [
        "1-0:0.9.1(%s)" % time_,
        "1-0:0.9.2(%s)" % date,
        "0-0:96.1.0(77516706)",
        "1-0:0.2.0((ER11))",
        "0-0:25.1.0(ER23)",
        "1-0:1.8.0(069428.255*kWh)",
        "1-0:2.8.0(000000.000*kWh)",
        "1-0:1.7.0(03.932*kW)",
        "1-0:2.7.0(00.000*kW)",
        "1-0:31.7.0(004*A)",
        "1-0:32.7.0(229.2*V)",
    ])


write("iskra-local-clock.txt", local_clock("260205", "174939") + local_clock("260705", "080102"))

# --- Israel: Kaifa meters with tariff registers 11..13 and 0-0:96.14.1 ------------------------------
# Israel's meters send the Dutch Kaifa header and 1-3:0.2.8(50), but count in 1.8.11 .. 1.8.13 and
# name the active one in 0-0:96.14.1 as 01 .. 03. Israel keeps UTC+2 (W) and UTC+3 (S), so a summer
# clock is +03:00, not the Dutch +02:00. 1-0:99.1.0 is the last interval's energy profile. The
# second telegram is winter time, one phase, tariff 01.
def israel(clock, tariff, regs, three_phase):
    lines = [
        "1-3:0.2.8(50)",
        "0-0:1.0.0(%s)" % clock,
        "0-0:96.1.1(K71408)",
    ]
    for c in (1, 2):
        for t, kwh in zip((11, 12, 13), regs[c - 1]):
            lines.append("1-0:%d.8.%d(%010.3f*kWh)" % (c, t, kwh))
    lines += ["0-0:96.14.1(%s)" % tariff, "1-0:1.7.0(01.274*kW)", "1-0:2.7.0(00.000*kW)"]
    if three_phase:
        lines += ["1-0:21.7.0(00.512*kW)", "1-0:22.7.0(00.000*kW)",
                  "1-0:41.7.0(00.641*kW)", "1-0:42.7.0(00.000*kW)",
                  "1-0:61.7.0(00.121*kW)", "1-0:62.7.0(00.000*kW)"]
    lines += ["0-0:96.13.0()", "1-0:32.7.0(229.0*V)", "1-0:31.7.0(002.6*A)",
              "1-0:99.1.0(1)(0-0:96.10.7)(1-0:1.29.0)(1-0:2.29.0)(%s)(00)(000000.311*kWh)"
              "(000000.000*kWh)" % (clock[:8] + "1500" + clock[-1])]
    return telegram("KFM5KAIFA-METER", lines)


write("il-kaifa.txt",
      israel("260714201733S", "03", ((4021.733, 610.050, 15870.418), (12.5, 0.0, 3.75)), True) +
      israel("261215091502W", "01", ((4312.902, 655.117, 16940.006), (0.0, 0.0, 0.0)), False))

def find_crc(pred, build):
    """Varies a counter in a telegram until its CRC satisfies pred; returns the bytes."""
    for i in range(10000):
        t = build(i)
        body = t[:t.rindex(b"!") + 1]
        if pred(crc16(body)):
            return t
    raise SystemExit("no CRC found")


def small(i, crc="upper", after=b"", eol=b"\r\n", blank=True):
    return telegram("XYZ5\\TESTMETER", [
        "1-3:0.2.8(50)",
        "0-0:1.0.0(240101120000W)",
        "1-0:1.8.1(%06d.%03d*kWh)" % (100 + i // 1000, i % 1000),
        "1-0:1.7.0(00.500*kW)",
    ], eol=eol, blank=blank, crc=crc, after_crc=after)


# CRC printed with 3 digits (no zero padding, NWA Warmtelink style); and in lower case.
write("crc-3digit.txt", find_crc(lambda c: 0x100 <= c < 0x1000, lambda i: small(i, crc="nopad")))
write("crc-lowercase.txt", find_crc(lambda c: all(ch in "abcdef" for ch in ("%04x" % c)[:2]),
                                    lambda i: small(i, crc="lower")))
write("nul-after-crc.txt", small(7, after=b"\x00"))
write("lf-only.txt", small(8, eol=b"\n"))
write("no-blank-line.txt", small(9, blank=False))

# Junk and 0xFF before, between and after two telegrams.
write("junk-around.txt", b"\xff\xff\x00\xfeNO CARRIER\r\n\xff" + small(10) +
      b"\xff\xff\xff\r\n+++ATH0\r\n" + small(11) + b"\xff\x00\xff")

# A telegram cut off in mid-line by the next header, then the complete telegram.
full = small(12)
cut = full[:full.index(b"1-0:1.7.0") + len(b"1-0:1.7.0(00.5")]
write("truncated-then-complete.txt", cut + b"\r\n" + full)

# '/' inside a plain-text message value must not start a new telegram.
write("slash-in-text.txt", telegram("ISk5\\2MT382-1000", [
    "1-3:0.2.8(42)",
    "0-0:1.0.0(240101120000W)",
    "0-0:96.13.0(onderhoud 12/03 - zie www.example.nl/storing)",
    "1-0:1.8.1(000321.000*kWh)",
]))

# Wrong CRC (valid telegram with its CRC changed), followed by a good one: resync.
bad = small(13)
write("bad-crc.txt", bad[:bad.rindex(b"!") + 1] + b"%04X" % (crc16(bad[:bad.rindex(b"!") + 1]) ^ 0x0101)
      + b"\r\n" + small(14))

# Longer than P1_TELEGRAM_MAX (16 KiB), then a good telegram: the parser must recover.
long_lines = ["1-0:1.8.1(%06d.000*kWh)" % i for i in range(700)]
write("too-long.txt", telegram("XYZ5\\TOOLONG", long_lines) + small(15))

# Random bytes without any '/', 0xDB, 0x7E or 0x68: no telegram, no output, exit 0.
rnd = random.Random(20240101)
junk = bytes(b for b in (rnd.randrange(256) for _ in range(6000)) if b not in (0x2F, 0xDB, 0x7E, 0x68))
write("random-bytes.txt", junk)

# A binary HDLC frame start (0x7E) where a telegram could start; then a good telegram.
write("hdlc-then-text.txt", b"\x7e\xa0\x8b\xce\xff\x03\x13\x12\x8b\xe6\xe7\x00\xdb\x08\x7e\r\n" + small(16))

# Three telegrams back to back: DSMR 5 with CRC, DSMR 3 style bare '!', DSMR 5 again.
write("stream-three.txt", small(17) + small(18, crc="none") + small(19))

# A garbled register value is never dropped quietly (the total would become the sum of the other
# tariffs): without a CRC it rejects the telegram (bad_value); a valid CRC vouches for any value
# but a total. Good, 'O' for '0' in 1.8.1, a NUL in 1.8.2, DSMR 5 with a garbled power (accepted),
# DSMR 5 with a garbled gas total, good again.
def nl22(t1, t2):
    return telegram("ISk5\\2MT382-1003", [
        "0-0:96.1.1(%s)" % hexs("ZBEV001234567890"),
        b"1-0:1.8.1(" + t1 + b"*kWh)",
        b"1-0:1.8.2(" + t2 + b"*kWh)",
        "1-0:1.7.0(0000.67*kW)",
    ], crc="none")


def nl5(power, gas):
    return telegram("ISK5\\2M550T-1012", [
        "1-3:0.2.8(50)",
        "0-0:1.0.0(240101120000W)",
        "1-0:1.8.1(012345.678*kWh)",
        "1-0:1.8.2(023456.789*kWh)",
        b"1-0:1.7.0(" + power + b"*kW)",
        "0-1:24.1.0(003)",
        b"0-1:24.2.1(240101115500W)(" + gas + b"*m3)",
    ])


write("bad-value.txt", nl22(b"12345.678", b"23456.789") + nl22(b"0O12345.678", b"23456.789") +
      nl22(b"12345.678", b"234\x0056.789") + nl5(b"0O.670", b"01234.567") +
      nl5(b"00.670", b"0123A.567") + nl22(b"12345.679", b"23456.789"))

# A DSMR 2.2 telegram cut off after 1-0:1.8.1 (request line dropped, cable pulled, a gap longer
# than the idle timeout) lacks its end line and every register after the cut. Accepted as before,
# but import_kwh/export_kwh are not summed from the registers that arrived: the sum would drop
# by the missing tariff and come back with the next telegram. Cut telegram, complete telegram,
# and a cut one at the end of the input (p1_finish).
dsmr22_full = nl22(b"12345.678", b"23456.789")
dsmr22_cut = dsmr22_full[:dsmr22_full.index(b"1-0:1.8.2")]
write("dsmr22-cut-no-end-line.txt", dsmr22_cut + dsmr22_full + dsmr22_cut)

# A text message longer than P1_TEXT_MAX (1024 decoded bytes; meters exceed the spec's lengths):
# the reading holds its first 1024 bytes of text, less the 2-byte UTF-8 character cut in half,
# never the hex digits. 1001 ASCII bytes, then 'e-acute' x 40 (2 bytes each) = 1081 bytes: the
# 12th 'e-acute' takes bytes 1023-1024, so the cut after byte 1024 halves it and 1023 remain.
overlong = ("Onderhoud " * 100 + "!").encode() + ("\u00e9" * 40).encode("utf-8")
write("text-overlong.txt", telegram("ISK5\\2M550T-1012", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240101120000W)",
    "1-0:1.8.1(000123.456*kWh)",
    "0-0:96.13.0(%s)" % hexs(overlong),
]))

# Swedish meters of Dutch manufacturers: Kaifa MA304 ("/KFM5KAIFA-METER") and Kamstrup OMNIA
# ("/KAM5") in the Swedish H1 layout (1.8.0/2.8.0 totals, kVArh, no tariff registers, no
# 1-3:0.2.8). They keep Swedish normal time (UTC+1) all year and send W in May: 09:42:10 is
# 08:42:10 UTC, not 07:42:10. Profile se, like Aidon, Ellevio and Landis+Gyr.
SE_LINES = [
    "0-0:1.0.0(210524094210W)",
    "1-0:1.8.0(00000424.413*kWh)",
    "1-0:2.8.0(00000000.000*kWh)",
    "1-0:3.8.0(00000002.116*kVArh)",
    "1-0:4.8.0(00000170.745*kVArh)",
    "1-0:1.7.0(0000.182*kW)",
    "1-0:2.7.0(0000.000*kW)",
    "1-0:21.7.0(0000.053*kW)",
    "1-0:32.7.0(230.7*V)",
    "1-0:31.7.0(000.4*A)",
]
write("se-kaifa-kamstrup.txt", telegram("KFM5KAIFA-METER", SE_LINES) + telegram("KAM5", SE_LINES))

# Control bytes in the identification line: an Iskra IE5 sample carries STX (0x02) there with a
# valid CRC, so control bytes other than CR are kept as sent, and escaped in the JSON like in any
# string (ESC as \u001b, BEL as \u0007, TAB as \t): nothing raw reaches a terminal or a log. A
# byte of 0x80 and above (8N1 capture of a 7E1 meter, Latin-1) or DEL is bad_header at that byte;
# the telegram after it is found again.
HDR_LINES = ["1-3:0.2.8(50)", "1-0:1.8.1(000123.456*kWh)"]
write("header-control-bytes.txt",
      telegram("ISK5\\2M550T\x1b[31m-1012\x07\t", HDR_LINES) +
      telegram("ISK5\\2M550T-10\xe912", HDR_LINES) +
      telegram("ISK5\\2M550T-1012\x7f", HDR_LINES) +
      telegram("ISK5\\2M550T-1012", HDR_LINES))

# A value whose digits exceed 64 bits is number_overflow, at its '(' and naming its object, and
# the rest of the telegram is still decoded (the tariff register after it, the gas line, the CRC);
# the same telegram again (the parser remembers lines) and a good one after it.
OVF = telegram("ISK5\\2M550T-1012", [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240101120000W)",
    "1-0:1.8.1(99999999999999999999*kWh)(000123.456*kWh)",
    "1-0:1.8.2(000100.000*kWh)",
    "0-1:24.1.0(003)",
    "0-1:24.2.1(240101115500W)(12785.123*m3)",
])
write("number-overflow.txt", OVF + OVF + nl5(b"00.670", b"12785.124"))

# A number in the unit of another quantity is a bad_unit (judged as a bad_value): an energy
# register in m3 without CRC, the same in kW with a valid CRC (a total: rejected all the same),
# a power in kWh with a valid CRC (accepted, the power left out), a gas channel in kWh (no gas_m3,
# never a bad unit), then good.
def nl5_unit(old, new):
    """nl5() with one line's unit changed before its CRC is computed."""
    lines = [b"1-3:0.2.8(50)", b"0-0:1.0.0(240101120000W)", b"1-0:1.8.1(012345.678*kWh)",
             b"1-0:1.8.2(023456.789*kWh)", b"1-0:1.7.0(00.670*kW)", b"0-1:24.1.0(003)",
             b"0-1:24.2.1(240101115500W)(12785.123*m3)"]
    return telegram("ISK5\\2M550T-1012", [ln.replace(old, new) for ln in lines])


write("bad-unit.txt", nl22(b"12345.678", b"23456.789").replace(b"1-0:1.8.1(12345.678*kWh)",
                                                               b"1-0:1.8.1(12345.678*m3)") +
      nl5_unit(b"023456.789*kWh", b"023456.789*kW") +
      nl5_unit(b"00.670*kW", b"00.670*kWh") +
      nl5_unit(b"12785.123*m3", b"12785.123*kWh") +
      nl22(b"12345.678", b"23456.789"))

# --- Encrypted LU frame (0xDB general-glo-ciphering, AES-128-GCM, 12-byte tag) ------------------
KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
AK = "00112233445566778899AABBCCDDEEFF"
try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    AESGCM = None
if AESGCM is not None:
    title = b"SAG" + bytes.fromhex("1122334455")
    fc = 0x0005A8E3
    iv = title + fc.to_bytes(4, "big")
    aad = b"\x30" + bytes.fromhex(AK)
    out = AESGCM(bytes.fromhex(KEY)).encrypt(iv, LU, aad)
    ct, tag = out[:-16], out[-16:-4]
    L = 1 + 4 + len(ct) + 12
    frame = (b"\xdb\x08" + title + b"\x82" + L.to_bytes(2, "big") + b"\x30" +
             fc.to_bytes(4, "big") + ct + tag)
    write("lu-encrypted.bin", frame)
    write("lu-encrypted.key.txt", ("encryption_key=%s\nauth_key(AAD)=%s\n" % (KEY, AK)).encode())
    # Same frame, but the key file holds a wrong key: must be rejected as decrypt_failed.
    write("lu-encrypted-wrongkey.bin", frame)
    write("lu-encrypted-wrongkey.key.txt",
          ("encryption_key=%s\nauth_key(AAD)=%s\n" % (KEY[:-2] + "00", AK)).encode())
    # One tag byte flipped.
    damaged = bytearray(frame)
    damaged[-3] ^= 0x40
    write("lu-encrypted-badtag.bin", bytes(damaged))
    write("lu-encrypted-badtag.key.txt", ("encryption_key=%s\nauth_key(AAD)=%s\n" % (KEY, AK)).encode())
