#!/usr/bin/env python3
"""test_encrypted.py: p1d with encrypted meters (Luxembourg Smarty, Austria) end to end: frames made
here with AES-128-GCM (python3-cryptography), fed over a TCP dongle and a pty in any split, reach
/api/now, /api/meters, HomeWizard, SSE, the relay (as plaintext) and the history store; the key
never shows in the API, the log, --check-config or an error message; a frame cut short followed
by good ones; a damaged frame; Austrian meters (own ak, skip_tag, 0x20); frame counters
that repeat or go back."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (ROOT, Cable, Checks, Daemon, fake_dongle, free_port, http,  # noqa: E402
                            need_p1d, run, telegram, tmpdir)
from mqtt_helpers import MOSQUITTO, Broker, Mqtt  # noqa: E402

T = Checks("test_encrypted")
need_p1d(T)
try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    print("SKIP: python3-cryptography is not installed (tools/setup.sh test installs it)")
    T.done()

KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
AK = "00112233445566778899AABBCCDDEEFF"
TITLE = b"SAG" + bytes.fromhex("6770BD5401")


def frame(plain, counter, key=KEY, ak=AK, security=0x30):
    """A general-glo-ciphering frame as a Smarty (0x30: tag, AAD = security byte || ak) or an
    Austrian meter without tag (0x20: the GCM keystream, i.e. AES-CTR from IV || 00000002) sends."""
    iv = TITLE + counter.to_bytes(4, "big")
    if security == 0x30:
        out = AESGCM(bytes.fromhex(key)).encrypt(iv, plain, bytes([security]) + bytes.fromhex(ak))
        body = out[:-16] + out[-16:-4]
    else:
        enc = Cipher(algorithms.AES(bytes.fromhex(key)), modes.CTR(iv + b"\0\0\0\2")).encryptor()
        body = enc.update(plain) + enc.finalize()
    length = 1 + 4 + len(body)
    return (b"\xdb\x08" + TITLE + b"\x82" + length.to_bytes(2, "big") + bytes([security]) +
            counter.to_bytes(4, "big") + body)


def lux(i, **kw):
    """Frame i of a meter: telegram i inside, frame counter 5000 + i."""
    return frame(telegram(i), 5000 + i, **kw)


def send_split(sock, data, rng):
    """Sends data in pieces of 1 to 97 bytes, as a dongle's reads arrive."""
    i = 0
    while i < len(data):
        n = rng.randint(1, 97)
        sock.sendall(data[i:i + n])
        i += n


def sse_open(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /api/stream HTTP/1.0\r\nHost: x\r\n\r\n")
    return sock


def sse_events(sock, n, timeout=5.0):
    """Reads an open /api/stream until n reading events arrived; returns their data objects."""
    buf, end, events = b"", time.time() + timeout, []
    try:
        while len(events) < n and time.time() < end:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            events = [json.loads(line[6:]) for line in buf.decode("utf-8", "replace").split("\n")
                      if line.startswith("data: ")]
    except socket.timeout:
        pass
    sock.close()
    return events


def secret_free(what, text):
    """The key in neither case, nor its first 8 digits (a cut-off echo)."""
    low = text.lower()
    T.check("secrets: %s holds no key" % what, KEY.lower()[:8] not in low, text[-2000:])


def end_to_end(d):
    """A Luxembourg meter on a TCP dongle with its key in the spec (command line), and one on a
    pty with its key from a key_file (lower case, CRLF) in the config file, frames split anyhow."""
    dongle = fake_dongle()
    cable = Cable(os.path.join(d, "ttyLux"))
    relay = free_port()
    with open(os.path.join(d, "lu.key"), "w") as f:
        f.write(KEY.lower() + "\r\n")
    conf = os.path.join(d, "p1d.conf")
    with open(conf, "w") as f:
        f.write("[relay]\nlisten = 127.0.0.1:%d\nmeter = lu\n[store]\ndb = %s\n"
                "[source lu]\nspec = serial:%s:115200\nkey_file = %s\nclock = meter\n" %
                (relay, os.path.join(d, "p1d.db"), cable.link, os.path.join(d, "lu.key")))
    spec = "tcp:127.0.0.1:%d:key=%s:ak=%s" % (dongle.getsockname()[1], KEY, AK)
    args = ["-c", conf, "--source", "net=" + spec, "--listen", "127.0.0.1:0", "--log-level",
            "debug"]
    broker = sub = None
    if os.access(MOSQUITTO, os.X_OK):
        broker = Broker(d, free_port()).start()
        sub = Mqtt(broker.port)
        args += ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port)]
    else:
        print("SKIP: MQTT part, mosquitto not installed")
    code, out, err = run(args + ["--check-config"])
    T.check("--check-config passes", code == 0, err)
    secret_free("--check-config", out + err)
    p = Daemon(args, d)
    try:
        port = p.http_port()
        conn, _ = dongle.accept()
        # the relay listens just after the HTTP server announced itself
        p.wait_log(r"relay: listening on 127\.0\.0\.1:%d" % relay, 10)
        rc = socket.create_connection(("127.0.0.1", relay), timeout=5)
        sse = sse_open(port)
        time.sleep(0.3)
        rng = random.Random(1)
        for i in range(6):
            f = lux(i)
            send_split(conn, f, rng)
            i_ = 0
            while i_ < len(f):
                k = rng.randint(1, 97)
                cable.send(f[i_:i_ + k])
                i_ += k
        ms = {}
        for name in ("lu", "net"):
            ms[name] = p.wait_meter(name, lambda m: m.get("telegrams") == 6, 5) or p.meter(name)
            T.check("%s: 6 telegrams, none rejected" % name,
                    ms[name].get("telegrams") == 6 and ms[name].get("rejected") == 0, str(ms[name]))
        T.check("lu: serial speed detected", ms["lu"].get("detected") == "115200 8N1", str(ms["lu"]))
        st, _, body = http(port, "/api/meters/lu/now")
        now = json.loads(body)
        T.check("/api/now: the decrypted reading", st == 200 and now["seq"] == 6 and
                round(now["reading"].get("import_kwh", 0), 3) == 556.794, body)
        st, _, body = http(port, "/api/v1/data")
        T.check("HomeWizard /api/v1/data: the reading",
                st == 200 and json.loads(body).get("total_power_import_t1_kwh") == 100.005, body)
        st, _, body = http(port, "/api/v1/telegram")
        T.check("/api/v1/telegram: the plaintext", body == telegram(5), body[:80])
        events = sse_events(sse, 12)
        T.check("SSE: the 12 readings of the encrypted meters",
                sorted((e["meter"], e["seq"]) for e in events) ==
                sorted((m, i) for m in ("lu", "net") for i in range(1, 7)), str(events)[:300])
        relayed = b""
        try:
            while len(relayed) < 6 * len(telegram(0)):
                chunk = rc.recv(65536)
                if not chunk:
                    break
                relayed += chunk
        except socket.timeout:
            pass
        rc.close()
        T.check("relay: clients get the decrypted telegrams as plain DSMR text",
                relayed == b"".join(telegram(i) for i in range(6)), relayed[:60])
        for path in ("/api/meters", "/api", "/metrics", "/api/now", "/healthz", "/api/v1/data"):
            secret_free(path, http(port, path)[2].decode("utf-8", "replace"))
        st, _, body = http(port, "/api/meters/net")
        T.check("/api/meters: a key given in the spec is masked in source",
                json.loads(body).get("source", "").endswith(":key=********:ak=********"), body)
        if sub:
            got = sub.wait(lambda m: m[1].startswith("p1d/lu/") and b"556.794" in m[2], 10)
            T.check("MQTT: the decrypted reading is published", got is not None,
                    str([m[1] for m in sub.snapshot()][:20]))
            secret_free("MQTT", "".join(m[1] + m[2].decode("utf-8", "replace")
                                        for m in sub.snapshot()))
        conn.close()
    finally:
        p.stop()
        cable.close()
        dongle.close()
        if sub:
            sub.close()
        if broker:
            broker.stop()
    secret_free("the log", p.text())
    code, out, err = run_p1(["export", "--db", os.path.join(d, "p1d.db"), "--meter", "lu",
                             "--from", "2024-01-14", "--to", "2024-01-16", "--step", "raw"])
    rows = [r for r in out.splitlines()[1:] if r.strip()]
    T.check("store: the 6 decrypted readings are history", code == 0 and len(rows) == 6, out + err)


def bad_keys(d):
    """Config errors about keys never quote the key."""
    spec = "lu=tcp:127.0.0.1:9:key=%s" % KEY
    code, out, err = run(["--source", spec + ":key=" + KEY, "--check-config"])
    T.check("a key given twice in the spec is an error", code == 2, err)
    secret_free("the 'given twice' error", err)
    code, out, err = run(["--key", KEY, "--check-config"])
    T.check("--key without NAME= is an error", code == 2 and "NAME=HEX" in err, err)
    secret_free("the --key NAME=HEX error", err)


def key_forms(d):
    """A key that is not 32 hex digits: exit 2, and the error says which key, where it was set and
    what is wrong, without quoting it."""
    lower = KEY.lower()
    forms = [  # (key as written, what the error must say)
        (KEY[:30], "has 30 hex digits, expected 32 hex digits"),
        (KEY + "AB", "has 34 hex digits, expected 32 hex digits"),
        ("0x" + KEY, "starts with 0x"),
        (" ".join(KEY[i:i + 4] for i in range(0, 32, 4)), "character 5 is a separator"),
        ("-".join(KEY[i:i + 2] for i in range(0, 32, 2)), "character 3 is a separator"),
        (KEY[:31] + "G", "character 32 is not a hex digit"),
    ]
    for key, says in forms:
        conf = os.path.join(d, "bad.conf")
        with open(conf, "w") as f:
            f.write("[source lu]\nspec = tcp:127.0.0.1:9\n\nkey = %s\n" % key)
        code, _, err = run(["-c", conf, "--check-config"])
        T.check("key '%s...' in a file: exit 2, file:line, the problem" % key[:6],
                code == 2 and "bad.conf:4: [source lu] key: " in err and says in err, err)
        secret_free("the error about key '%s...'" % key[:6], err)
    code, _, err = run(["--source", "lu=tcp:127.0.0.1:9", "--key", "lu=" + KEY, "--ak",
                        "lu=" + AK[:8], "--check-config"])
    T.check("--ak too short: names ak and the command line",
            code == 2 and "ak (command line): has 8 hex digits" in err, err)
    key_file = os.path.join(d, "bad.key")
    with open(key_file, "w") as f:
        f.write("encryption_key=%s\n" % KEY)
    code, _, err = run(["--source", "lu=tcp:127.0.0.1:9:key_file=" + key_file, "--check-config"])
    T.check("key_file with a label: names the file and its first line",
            code == 2 and "key_file = '%s': the key (first line): character 2 is not" % key_file
            in err, err)
    secret_free("the key_file error", err)
    for spec, says in (("serial:/dev/ttyP1:9600", "baud = 9600 reads 7 data bits"),
                       ("serial:/dev/ttyP1:parity=even", "parity = even reads 7 data bits")):
        code, _, err = run(["--source", "lu=" + spec, "--key", "lu=" + KEY, "--check-config"])
        T.check("key with %s: a config error (7E1 drops bit 7 of every frame byte)" % spec,
                code == 2 and says in err and "115200 8N1" in err, err)
    code, _, err = run(["--source", "lu=serial:/dev/ttyP1:9600:parity=none", "--key",
                        "lu=" + KEY, "--check-config"])
    T.check("key with 9600 8N1: fine", code == 0, err)
    for key in (lower, KEY):
        code, _, err = run(["--source", "lu=tcp:127.0.0.1:9", "--key", "lu=" + key,
                            "--check-config"])
        T.check("a key in %s case is fine" % ("lower" if key == lower else "upper"), code == 0,
                err)


def reload_keys(d):
    """A meter with a wrong key next to a plain one; a reload with a malformed key is refused (the
    log says why, nothing restarts); a reload with the right key makes it decode, and the plain
    meter runs on untouched."""
    lux_dongle, plain_dongle = fake_dongle(), fake_dongle()
    conf = os.path.join(d, "reload.conf")

    def write(key):
        with open(conf, "w") as f:
            f.write("[source plain]\nspec = tcp:127.0.0.1:%d\n[source lu]\nspec = tcp:127.0.0.1:%d\n"
                    "key = %s\n" % (plain_dongle.getsockname()[1], lux_dongle.getsockname()[1],
                                    key))
    write("00" * 16)
    p = Daemon(["-c", conf, "--listen", "127.0.0.1:0", "--log-level", "info"], d)
    try:
        p.http_port()
        plain, _ = plain_dongle.accept()
        lux_conn, _ = lux_dongle.accept()
        for i in range(3):
            plain.sendall(telegram(i))
            lux_conn.sendall(lux(i))
            time.sleep(0.05)
        m = p.wait_meter("lu", lambda m: m.get("rejected") == 3, 5) or p.meter("lu")
        T.check("wrong key: rejected, last_error says so",
                "decryption failed" in (m.get("last_error") or ""), str(m))
        write(KEY[:31])
        p.signal(signal.SIGHUP)
        line = p.wait_log(r"error: reload: .*", 5)
        T.check("reload with a malformed key: refused with file:line and the problem",
                line is not None and "reload.conf:5: [source lu] key: has 31 hex digits" in
                line.group(0), p.text()[-1500:])
        write(KEY)
        p.signal(signal.SIGHUP)
        p.wait_log(r"info: reloaded ", 5)
        lux_conn, _ = lux_dongle.accept()  # the changed source reconnects
        for i in range(3, 6):
            plain.sendall(telegram(i))
            lux_conn.sendall(lux(i))
            time.sleep(0.05)
        m = p.wait_meter("lu", lambda m: m.get("telegrams") == 3, 5) or p.meter("lu")
        T.check("reload with the right key: the meter decodes, its key problem is gone",
                m.get("telegrams") == 3 and not m.get("last_error"), str(m))
        m = p.wait_meter("plain", lambda m: m.get("telegrams") == 6, 5) or p.meter("plain")
        T.check("reload: the plain meter kept its connection and counters",
                m.get("telegrams") == 6 and m.get("seq") == 6 and m.get("reconnects") == 0, str(m))
        secret_free("the log", p.text())
    finally:
        p.stop()
        lux_dongle.close()
        plain_dongle.close()


def damaged_frame(d):
    """Once the key has decrypted frames, one frame failing authentication is damage on the line:
    rejected and logged like a CRC error, not blamed on the key. Three in a row (the grid operator
    changed the key) are."""
    p, dongle, conn = lux_meter(d)
    try:
        flipped = bytearray(lux(2))
        flipped[100] ^= 0x04
        for f in (lux(0), lux(1), bytes(flipped), lux(3), lux(4)):
            conn.sendall(f)
            time.sleep(0.05)
        m = p.wait_meter("lu", lambda m: m.get("telegrams") == 4, 5) or p.meter("lu")
        T.check("damaged frame: the others decode, it is rejected",
                m.get("telegrams") == 4 and m.get("rejected") == 1, str(m))
        T.check("damaged frame: no key problem on the meter", not m.get("last_error"), str(m))
        text = p.text()
        T.check("damaged frame: logged as a rejected telegram, the key not blamed",
                "rejected telegram at offset %d: decrypt_failed" % (2 * len(lux(0))) in text and
                "decryption failed" not in text, text)
        new_key = "A5" * 16
        for i in range(5, 7):
            conn.sendall(lux(i, key=new_key))
            time.sleep(0.05)
        m = p.wait_meter("lu", lambda m: m.get("rejected") == 3, 5) or p.meter("lu")
        T.check("changed key: two failures are not blamed on it yet",
                not m.get("last_error") and "decryption failed" not in p.text(), str(m))
        conn.sendall(lux(7, key=new_key))
        m = p.wait_meter("lu", lambda m: m.get("rejected") == 4, 5) or p.meter("lu")
        T.check("changed key: the third in a row is (last_error and one warning)",
                "decryption failed" in (m.get("last_error") or "") and
                p.text().count("warn: lu: decryption failed") == 1, str(m) + p.text())
        conn.close()
    finally:
        p.stop()
        dongle.close()


def austrian(d):
    """An Austrian meter whose authentication key is its own and unknown: rejected until
    skip_tag = true, then its telegrams decode (their CRC proves the key); a wrong key still
    fails. A meter sending 0x20 frames (no tag) decodes whatever ak says."""
    own_ak = "A1" * 16
    dongles = {n: fake_dongle() for n in ("strict", "skip", "wrong", "notag")}
    conf = os.path.join(d, "at.conf")
    keys = {"strict": "key = %s\n" % KEY, "skip": "key = %s\nskip_tag = true\n" % KEY,
            "wrong": "key = %s\nskip_tag = yes\n" % ("5A" * 16),
            "notag": "key = %s\nak = %s\n" % (KEY, "C3" * 16)}
    with open(conf, "w") as f:
        for n, dg in dongles.items():
            f.write("[source %s]\nspec = tcp:127.0.0.1:%d\n%s" % (n, dg.getsockname()[1], keys[n]))
    p = Daemon(["-c", conf, "--listen", "127.0.0.1:0"], d)
    try:
        if not T.check("skip_tag is a source key: p1d starts", p.http_port() is not None,
                       p.text()):
            return
        conns = {n: dg.accept()[0] for n, dg in dongles.items()}
        for i in range(3):
            for n, c in conns.items():
                c.sendall(lux(i, security=0x20) if n == "notag" else lux(i, ak=own_ak))
            time.sleep(0.05)
        ms = {n: p.wait_meter(n, lambda m: m.get("telegrams", 0) + m.get("rejected", 0) == 3, 5)
              or p.meter(n) for n in conns}
        T.check("own ak, tag checked: rejected, the key or ak blamed",
                ms["strict"].get("rejected") == 3 and
                "decryption failed" in (ms["strict"].get("last_error") or ""), str(ms["strict"]))
        T.check("own ak, skip_tag = true: the telegrams decode",
                ms["skip"].get("telegrams") == 3 and not ms["skip"].get("last_error"),
                str(ms["skip"]))
        T.check("skip_tag with a wrong key: rejected, the key blamed",
                ms["wrong"].get("rejected") == 3 and
                "decryption failed" in (ms["wrong"].get("last_error") or ""), str(ms["wrong"]))
        T.check("0x20 frames: decode, the ak is not used", ms["notag"].get("telegrams") == 3,
                str(ms["notag"]))
        for c in conns.values():
            c.close()
    finally:
        p.stop()
        for dg in dongles.values():
            dg.close()
    code, _, err = run(["--source", "at=tcp:127.0.0.1:9:skip_tag=true", "--check-config"])
    T.check("skip_tag without key: a config error", code == 2 and "skip_tag is set but key is not"
            in err, err)


def counters(d):
    """Frame counters are not checked (docs/CONFIG.md): a frame received twice and one whose
    counter went back are accepted; the history keeps only the newer reading."""
    db = os.path.join(d, "counters.db")
    p, dongle, conn = lux_meter(d, ":clock=meter", ["--db", db])
    try:
        for f in (lux(5), lux(5), lux(3)):
            conn.sendall(f)
            time.sleep(0.1)
        m = p.wait_meter("lu", lambda m: m.get("telegrams") == 3, 5) or p.meter("lu")
        T.check("counters: a repeated and a backward counter are accepted",
                m.get("telegrams") == 3 and m.get("rejected") == 0, str(m))
        now = json.loads(http(p.port, "/api/meters/lu/now")[2])
        T.check("counters: /api/now serves the last frame received",
                now["reading"].get("time", "").endswith("00:00:03+01:00"), str(now)[:300])
        conn.close()
    finally:
        p.stop()
        dongle.close()
    code, out, err = run_p1(["export", "--db", db, "--meter", "lu", "--from", "2024-01-14",
                             "--to", "2024-01-16", "--step", "raw"])
    rows = [r for r in out.splitlines()[1:] if r.strip()]
    T.check("counters: the history holds the one reading, once", code == 0 and len(rows) == 1,
            out + err)


def no_flood(d):
    """A wrong key on a meter sending as fast as a TCP peer can: every frame rejected and counted,
    the log holds one warning and at most a few rejects; a key on a plain meter is harmless."""
    dongle, plain_dongle = fake_dongle(), fake_dongle()
    p = Daemon(["--source", "lu=tcp:127.0.0.1:%d:key=%s" % (dongle.getsockname()[1], "5A" * 16),
                "--source", "plain=tcp:127.0.0.1:%d:key=%s" % (plain_dongle.getsockname()[1], KEY),
                "--listen", "127.0.0.1:0", "--log-level", "info"], d)
    try:
        p.http_port()
        conn, _ = dongle.accept()
        plain, _ = plain_dongle.accept()
        conn.sendall(b"".join(lux(i) for i in range(300)))
        plain.sendall(b"".join(telegram(i) for i in range(3)))
        m = p.wait_meter("lu", lambda m: m.get("rejected") == 300, 10) or p.meter("lu")
        T.check("wrong key, 300 frames: all rejected", m.get("rejected") == 300, str(m))
        lines = [ln for ln in p.text().splitlines() if " lu: " in ln]
        T.check("wrong key, 300 frames: one warning, at most 3 log lines",
                len(lines) <= 3 and sum("warn: lu: decryption failed" in ln for ln in lines) == 1,
                "\n".join(lines[:10]))
        m = p.wait_meter("plain", lambda m: m.get("telegrams") == 3, 5) or p.meter("plain")
        T.check("a key on a plain meter: its telegrams decode", m.get("telegrams") == 3 and
                not m.get("last_error"), str(m))
        conn.close()
        plain.close()
    finally:
        p.stop()
        dongle.close()
        plain_dongle.close()


def import_capture(d):
    """p1 import of a capture of an encrypted meter (cat /dev/ttyUSB0 > capture.bin): without the
    key it stores nothing and asks for --key, a wrong key is named as such, with the key all
    readings are stored; the key may come before or after the file."""
    capture = os.path.join(d, "lux.bin")
    with open(capture, "wb") as f:
        f.write(b"".join(lux(i) for i in range(8)))
    db = os.path.join(d, "import.db")
    code, _, err = run_p1(["import", "--db", db, "--meter", "lu", capture])
    T.check("import without --key: exit 1, asks for --key", code == 1 and "--key" in err, err)
    code, _, err = run_p1(["import", "--db", db, "--meter", "lu", "--key", "5A" * 16, capture])
    T.check("import with a wrong key: exit 1, says authentication failed",
            code == 1 and "failed authentication" in err, err)
    code, _, err = run_p1(["import", "--db", db, "--meter", "lu", capture, "--key", KEY.lower()])
    T.check("import with --key: the 8 readings are stored", code == 0 and " 8 stored" in err, err)
    code, _, err = run_p1(["import", "--db", db, "--ak", AK, capture])
    T.check("import --ak without --key: a usage error", code == 2 and "--ak needs --key" in err,
            err)
    secret_free("p1 import's messages", err)


def simulated(d):
    """p1 sim --key sends Smarty frames: p1 decode with the key reads them (counters 1, 2, 3),
    and p1d decodes them from p1 sim's TCP port."""
    sim = subprocess.run([os.path.join(ROOT, "build", "p1"), "sim", "--count", "3", "--key", KEY],
                         capture_output=True, timeout=30).stdout
    T.check("p1 sim --key: encrypted frames", sim[:2] == b"\xdb\x08", sim[:20])
    dec = subprocess.run([os.path.join(ROOT, "build", "p1"), "decode", "--key", KEY], input=sim,
                         capture_output=True, timeout=30).stdout.decode()
    objs = [json.loads(ln) for ln in dec.splitlines()]
    T.check("p1 sim --key | p1 decode --key: 3 telegrams, frame counters 1, 2, 3",
            [(o["ok"], o["frame_counter"]) for o in objs] == [(True, 1), (True, 2), (True, 3)],
            dec[:300])
    port = free_port()
    proc = subprocess.Popen([os.path.join(ROOT, "build", "p1"), "sim", "--key", KEY, "--out",
                             "tcp:127.0.0.1:%d" % port], stderr=subprocess.DEVNULL)
    p = Daemon(["--source", "lu=tcp:127.0.0.1:%d:key=%s:reconnect_min=100ms" % (port, KEY),
                "--listen", "127.0.0.1:0"], d)
    try:
        m = p.wait_meter("lu", lambda m: m.get("telegrams", 0) >= 2, 10) or p.meter("lu")
        T.check("p1d decodes p1 sim --key over TCP", m.get("telegrams", 0) >= 2 and
                m.get("rejected") == 0, str(m))
    finally:
        p.stop()
        proc.terminate()
        proc.wait(10)


def run_p1(args):
    p = subprocess.run([os.path.join(ROOT, "build", "p1")] + args, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lux_meter(d, options="", args=()):
    """p1d with one meter "lu" (the key, then options) on a fake dongle; returns (p1d, the dongle,
    its connection). Stop p1d and close the dongle in a finally."""
    dongle = fake_dongle()
    p = Daemon(["--source", "lu=tcp:127.0.0.1:%d:key=%s%s" % (dongle.getsockname()[1], KEY, options),
                "--listen", "127.0.0.1:0", "--log-level", "info"] + list(args), d)
    try:
        p.http_port()
        conn, _ = dongle.accept()
    except OSError:
        p.stop()
        dongle.close()
        raise
    return p, dongle, conn


def cut_frame(d):
    """A frame cut short (bytes lost on the line) with the next frames right behind it, as a dongle
    that buffers sends them, 0xFF, NUL and text junk between two: the cut one is rejected as
    truncated, not blamed on the key, and the ones after it all decode."""
    p, dongle, conn = lux_meter(d)
    try:
        conn.sendall(lux(0))
        T.check("cut frame: a whole frame decodes",
                p.wait_meter("lu", lambda m: m.get("telegrams") == 1, 5) is not None,
                str(p.meter("lu")))
        stream = lux(1)[:150] + lux(2) + b"\xff" * 16 + b"\x00" * 4 + b"noise" + lux(3)
        long_len = bytearray(lux(4))
        long_len[12] += 40  # a length field 40 bytes too long
        stream += bytes(long_len) + lux(5) + lux(6)
        send_split(conn, stream, random.Random(7))
        m = p.wait_meter("lu", lambda m: m.get("telegrams") == 5, 5)
        T.check("cut frame: the 4 frames after the cut ones decode", m is not None,
                str(p.meter("lu")))
        m = p.meter("lu")
        T.check("cut frame: the 2 cut ones are rejected", m.get("rejected") == 2, str(m))
        T.check("cut frame: no key problem on the meter", not m.get("last_error"), str(m))
        text = p.text()
        T.check("cut frame: the log blames no key", "decryption failed" not in text, text)
        T.check("cut frame: the log says truncated", "truncated" in text, text)
        conn.close()
    finally:
        p.stop()
        dongle.close()


def paced_replay(d):
    """A capture of encrypted frames replayed at the recorded pace: every frame is a telegram, also
    frames without a '\n' byte in them (the pace mode fed the input line by line, and a piece
    with two whole frames in it kept only the second)."""
    frames = []
    counter = 7000
    while len(frames) < 6:
        f = frame(telegram(len(frames)), counter)
        counter += 1
        if b"\n" not in f:
            frames.append(f)
    path = os.path.join(d, "paced.bin")
    with open(path, "wb") as f:
        f.write(b"".join(frames))
    p = Daemon(["--source", "lu=file:%s:key=%s:pace=recorded:speedup=100" % (path, KEY),
                "--listen", "127.0.0.1:0"], d)
    try:
        m = p.wait_meter("lu", lambda m: m.get("state") == "stopped", 10)
        T.check("paced replay of frames without a line end: all 6 decode",
                m is not None and m.get("telegrams") == 6 and m.get("rejected") == 0,
                str(p.meter("lu")))
    finally:
        p.stop()


with tmpdir() as tmp:
    end_to_end(tmp)
    paced_replay(tmp)
    bad_keys(tmp)
    key_forms(tmp)
    reload_keys(tmp)
    cut_frame(tmp)
    damaged_frame(tmp)
    austrian(tmp)
    counters(tmp)
    no_flood(tmp)
    import_capture(tmp)
    simulated(tmp)

T.done()
