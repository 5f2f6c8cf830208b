#!/usr/bin/env python3
"""test_encrypted.py: p1d with encrypted meters (Luxembourg Smarty, Austria) end to end: frames made
here with AES-128-GCM (python3-cryptography), fed over a TCP dongle and a pty in any split; a frame
cut short followed by good ones."""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, fake_dongle, need_p1d, telegram, tmpdir  # noqa: E402

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


def cut_frame(d):
    """A frame cut short (bytes lost on the line) with the next frames right behind it, as a dongle
    that buffers sends them: the cut one is rejected as truncated, not blamed on the key, and the
    ones after it all decode."""
    dongle = fake_dongle()
    p = Daemon(["--source", "lu=tcp:127.0.0.1:%d:key=%s" % (dongle.getsockname()[1], KEY),
                "--listen", "127.0.0.1:0", "--log-level", "info"], d)
    try:
        p.http_port()
        conn, _ = dongle.accept()
        conn.sendall(lux(0))
        T.check("cut frame: a whole frame decodes",
                p.wait_meter("lu", lambda m: m.get("telegrams") == 1, 5) is not None,
                str(p.meter("lu")))
        stream = lux(1)[:150] + lux(2) + lux(3)
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


with tmpdir() as tmp:
    cut_frame(tmp)

T.done()
