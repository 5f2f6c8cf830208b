#!/usr/bin/env python3
"""test_http_security.py: what a p1d on a home LAN without authentication must still refuse or
hide: secrets of the configuration in the API, logs and --check-config."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, http, need_p1d, run, tmpdir  # noqa: E402

T = Checks("test_http_security")
need_p1d(T)

KEY = "000102030405060708090A0B0C0D0E0F"
AK = "FFEEDDCCBBAA99887766554433221100"


def test_spec_secrets(tmp):
    """A decryption key given in the spec (":key=HEX") is a secret like [source] key: /api/meters
    shows the spec as "source", so the key must not be in it, nor in --check-config or errors."""
    spec = "sim:1:key=%s:ak=%s" % (KEY, AK)
    d = Daemon(["--source", "lux=" + spec, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        st, _, b = http(port, "/api/meters")
        T.check("spec secrets: /api/meters answers", st == 200, st)
        src = json.loads(b)[0]["source"] if st == 200 else ""
        T.check("spec secrets: /api/meters has no key", KEY not in src and AK not in src, src)
        T.check("spec secrets: /api/meters shows the rest of the spec",
                src == "sim:1:key=********:ak=********", src)
        st, _, b = http(port, "/api/meters/lux")
        T.check("spec secrets: /api/meters/lux has no key", st == 200 and KEY.encode() not in b, b)
    finally:
        d.stop()
    T.check("spec secrets: the log has no key", KEY not in d.text() and AK not in d.text(),
            d.text()[-2000:])
    code, out, err = run(["--source", "lux=" + spec, "--check-config"])
    T.check("spec secrets: --check-config passes", code == 0, err)
    T.check("spec secrets: --check-config masks the key in the spec",
            KEY not in out and AK not in out and "spec = sim:1:key=********:ak=********" in out,
            out)
    # Errors that quote the spec or the value: a key given twice, a key of the wrong length.
    code, out, err = run(["--source", "lux=sim:key=%s:key=%s" % (KEY, KEY), "--check-config"])
    T.check("spec secrets: an error quoting the spec masks the key",
            code == 2 and KEY not in err and "key=********" in err, err)
    cfg = os.path.join(tmp, "bad-token.conf")
    with open(cfg, "w") as f:
        f.write("[http]\ntoken = %s\n[source a]\nspec = sim\n" % ("t" * 200))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("spec secrets: an over-long token is not echoed in the error",
            code == 2 and "t" * 100 not in err and "token" in err, err)
    cfg = os.path.join(tmp, "bad-key.conf")
    with open(cfg, "w") as f:
        f.write("[source a]\nspec = sim\nkey = %s\n" % ("k" * 300))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("spec secrets: an over-long source key is not echoed in the error",
            code == 2 and "k" * 100 not in err, err)


with tmpdir() as tmp:
    for fn in (test_spec_secrets,):
        try:
            fn(tmp)
        except Exception as e:  # a crash of one test must not hide the others
            T.check(fn.__name__, False, repr(e))
T.done()
