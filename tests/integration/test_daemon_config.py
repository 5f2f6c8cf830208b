#!/usr/bin/env python3
"""test_daemon_config.py: p1d's command line and config file: --help, --version, --check-config,
errors that name the place, key and value and exit 2, flags overriding the file."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, need_p1d, run, tmpdir  # noqa: E402

T = Checks("test_daemon_config")
need_p1d(T)


def write(d, name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


with tmpdir() as d:
    code, out, err = run(["--help"])
    T.check("--help exits 0", code == 0, err)
    T.check("--help lists --source, --listen, --relay, --db, --log-level, --token",
            all(f in out for f in ["--source", "--listen", "--relay", "--db", "--log-level",
                                   "--token", "--key", "--ak", "--config", "--check-config"]))
    T.check("--help lists the source keys", "idle_timeout" in out and "detect_timeout" in out)
    code, out, err = run(["--version"])
    T.check("--version", code == 0 and out.startswith("p1d "), out)
    code, out, err = run(["--print-config-doc"])
    T.check("--print-config-doc prints a table of every section",
            code == 0 and "### [http]" in out and "### [source NAME]" in out and "| `listen` |" in out)

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "CONFIG.md")) as f:
        T.check("docs/CONFIG.md carries the current key reference (p1d --print-config-doc)",
                out.strip() in f.read())

    code, out, err = run([])
    T.check("no source: exit 2 with a hint", code == 2 and "--source NAME=SPEC" in err, err)
    code, out, err = run(["--bogus", "x"])
    T.check("unknown flag: exit 2", code == 2 and "--bogus" in err, err)
    code, out, err = run(["--source", "home=sim", "--listen", "nonsense"])
    T.check("bad --listen names flag, value and expectation",
            code == 2 and "--listen 'nonsense'" in err and "HOST:PORT" in err, err)
    code, out, err = run(["--source", "home=sim", "--log-level", "loud"])
    T.check("bad --log-level lists the choices",
            code == 2 and "'loud'" in err and "error|warn|info|debug" in err, err)
    code, out, err = run(["--source", "home=warp:9"])
    T.check("bad spec", code == 2 and "spec 'warp:9'" in err, err)
    code, out, err = run(["--source", "bad name=sim"])
    T.check("bad source name", code == 2 and "bad name" in err, err)
    code, out, err = run(["--source", "home=sim", "--key", "other=00112233445566778899AABBCCDDEEFF"])
    T.check("--key for an unknown source", code == 2 and "no source named 'other'" in err, err)
    code, out, err = run(["--source", "home=sim", "--key", "home=1234"])
    T.check("--key not 32 hex digits", code == 2 and "32 hex digits" in err, err)
    code, out, err = run(["--source", "home=tcp:127.0.0.1:2001:baud=9600"])
    T.check("a key that does not apply to the kind",
            code == 2 and "'baud' does not apply to a tcp source" in err, err)
    code, out, err = run(["--source", "home=tcp:127.0.0.1:2001:idle_reopen=false"])
    T.check("idle_reopen is for serial sources only",
            code == 2 and "'idle_reopen' does not apply to a tcp source" in err, err)
    code, out, err = run(["--source", "home=serial:/dev/ttyUSB0:idle_reopen=maybe"])
    T.check("idle_reopen takes a boolean",
            code == 2 and "idle_reopen = 'maybe': expected true or false" in err, err)
    code, out, err = run(["--source", "home=tcp:127.0.0.1:2001:idle_timeout=soon"])
    T.check("bad spec option value names key and value",
            code == 2 and "idle_timeout = 'soon'" in err and "duration" in err, err)
    code, out, err = run(["--source", "home=tcp:127.0.0.1:99999"])
    T.check("tcp port out of range", code == 2 and "tcp:127.0.0.1:99999" in err, err)

    good = write(d, "good.conf", """# test config
[http]
listen = 127.0.0.1:18081
token = "s3cret"

[log]
level = warn

[relay]
listen = 127.0.0.1:0

[source home]
spec = serial:/dev/ttyUSB0:9600
crc = required
idle_timeout = 45s

[source net]
spec = tcp:[::1]:2001:reconnect_max=5s
""")
    code, out, err = run(["--config", good, "--check-config"])
    T.check("--check-config on a good file exits 0", code == 0, err)
    T.check("effective config shows file values",
            "listen = 127.0.0.1:18081" in out and "level = warn" in out and "baud = 9600" in out
            and "crc = required" in out and "idle_timeout = 45s" in out, out)
    T.check("spec options are applied", "reconnect_max = 5s" in out, out)
    T.check("secrets are masked", "s3cret" not in out and "********" in out, out)
    code, out, err = run(["--config", good, "--check-config", "--listen", "127.0.0.1:9999",
                          "--log-level", "debug", "--source", "net=sim:5"])
    T.check("flags override the file",
            code == 0 and "listen = 127.0.0.1:9999" in out and "level = debug" in out
            and "seed = 5" in out, err + out)

    cases = [
        ("unknown key", "[http]\nlisten = 127.0.0.1:1\ncolour = blue\n",
         ["bad.conf:3", "unknown key 'colour'"]),
        ("bad value", "[http]\nmax_connections = lots\n",
         ["bad.conf:2", "max_connections = 'lots'", "integer from 1 to 100000"]),
        ("out of bounds", "[relay]\nbuffer = 1\n", ["bad.conf:2", "buffer = '1'", "4096"]),
        ("unknown section", "[mqtt-broker]\nhost = x\n", ["bad.conf:1", "unknown section [mqtt-broker]"]),
        ("key outside a section", "listen = 1\n", ["bad.conf:1", "outside a section"]),
        ("source without spec", "[source a]\ncrc = ignore\n", ["[source a] has no spec"]),
        ("duplicate source", "[source a]\nspec = sim\n[source a]\nspec = sim\n",
         ["bad.conf:3", "defined twice"]),
        ("bad enum in a source", "[source a]\nspec = sim\ncrc = maybe\n",
         ["bad.conf:3", "crc = 'maybe'", "optional|required|ignore"]),
        ("relay meter unknown", "[relay]\nmeter = ghost\n[source a]\nspec = sim\n",
         ["meter = 'ghost'"]),
        ("reconnect_min > max", "[source a]\nspec = tcp:127.0.0.1:1\nreconnect_min = 10s\n"
         "reconnect_max = 1s\n", ["reconnect_min"]),
    ]
    for name, text, needles in cases:
        p = write(d, "bad.conf", text)
        code, out, err = run(["--config", p, "--check-config"])
        T.check("config error (%s): exit 2 and names %s" % (name, needles),
                code == 2 and all(n in err for n in needles), "code %d: %s" % (code, err))
    code, out, err = run(["--config", os.path.join(d, "missing.conf")])
    T.check("missing config file", code == 2 and "missing.conf" in err, err)
    keyf = write(d, "key.txt", "00112233445566778899AABBCCDDEEFF\n")
    p = write(d, "k.conf", "[source lux]\nspec = file:/dev/null\nkey_file = %s\n" % keyf)
    code, out, err = run(["--config", p, "--check-config"])
    T.check("key_file is read", code == 0 and "key = ********" in out, err + out)

    # Regressions found by QA.
    code, out, err = run(["--frob"])
    T.check("--frob alone: unknown option, not missing value",
            code == 2 and "unknown option '--frob'" in err and "missing value" not in err, err)
    code, out, err = run(["--source", "a=sim", "--frob=1"])
    T.check("--frob=1: unknown option", code == 2 and "unknown option '--frob'" in err, err)
    code, out, err = run(["--listen"])
    T.check("a known flag without its value: missing value",
            code == 2 and "--listen: missing value" in err, err)
    code, out, err = run(["--config", d, "--check-config"])
    T.check("--config DIRECTORY: error naming the path",
            code == 2 and d in err and "is a directory" in err, err)
    code, out, err = run(["--source", "a=serial:/dev/ttyUSB0:12345", "--check-config"])
    T.check("serial speed 12345 rejected naming the value and the speeds",
            code == 2 and "'12345'" in err and "115200" in err and "9600" in err, err)
    bypath = "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0"
    code, out, err = run(["--source", "a=serial:" + bypath, "--check-config"])
    T.check("by-path device names with ':' still work",
            code == 0 and "# kind serial, " + bypath in out, err + out)
    code, out, err = run(["--source", "a=serial:" + bypath + ":9600", "--check-config"])
    T.check("by-path device name with a speed",
            code == 0 and "# kind serial, " + bypath + "\n" in out and "baud = 9600" in out,
            err + out)
    p = write(d, "simbaud.conf", "[source x]\nspec = sim\n\nbaud = 9600\n")
    code, out, err = run(["--config", p, "--check-config"])
    T.check("baud on a sim source: error with file:line",
            code == 2 and "simbaud.conf:4:" in err and "'baud' does not apply to a sim source" in err,
            err)
    p = write(d, "simbaud2.conf", "[source x]\nspec = sim:baud=9600\n")
    code, out, err = run(["--config", p, "--check-config"])
    T.check("baud as a spec option of a sim source: error with file:line",
            code == 2 and "simbaud2.conf:2:" in err and "does not apply to a sim source" in err, err)

    # A flag given twice took the last value without a word (--config: the first file was not
    # read at all), where a key given twice in a section is an error (a helper's CLI walk).
    k32 = "00112233445566778899AABBCCDDEEFF"
    other = write(d, "other.conf", "[log]\nlevel = debug\n")
    for args, want in (
            (["--db", "a.db", "--store-db", "b.db"], "--store-db given twice (first as --db)"),
            (["--listen", "127.0.0.1:1", "--listen=127.0.0.1:2"], "--listen given twice"),
            (["--http-timeout", "5s", "--http-timeout", "10s"], "--http-timeout given twice"),
            (["--config", good, "-c", other], "--config given twice: p1d reads one config file"),
            (["--key", "a=" + k32, "--key", "a=" + k32], "--key a given twice"),
            (["--key", "a=" + k32, "--ak", "a=" + k32, "--ak", "a=" + k32],
             "--ak a given twice")):
        code, out, err = run(["--source", "a=sim"] + args + ["--check-config"])
        T.check("%s: usage error: %s" % (" ".join(args), want),
                code == 2 and want in err and out == "", "code %d: %s" % (code, err))
    # key= in a --source spec is applied after --key: the flag was dropped without a word
    code, out, err = run(["--source", "t=tcp:127.0.0.1:2000:key=" + k32, "--key",
                          "t=" + k32.lower(), "--check-config"])
    T.check("--key for a source whose spec has key= too: usage error",
            code == 2 and "--key t given twice (also as key= in the spec of --source)" in err
            and out == "", "code %d: %s" % (code, err))
    code, out, err = run(["--config", good, "--listen", "127.0.0.1:9998", "--key",
                          "net=" + k32, "--check-config"])
    T.check("a flag once still overrides the file",
            code == 0 and "listen = 127.0.0.1:9998" in out, "code %d: %s" % (code, err))
T.done()
