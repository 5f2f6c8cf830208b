#!/usr/bin/env python3
"""test_config_strict.py: p1d --check-config and the start agree (regressions found by QA). What
the start refuses, --check-config refuses too, and both exit 2 with the file and line, the key
and the value: listen addresses, the files and keys the publishers read, sections that need
[store] db, [prices] periods, whole seconds, duplicate keys and sections, unterminated quotes,
values given twice in one source spec. Also p1 sim's --count and --seed bounds."""
import base64
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, run, tmpdir  # noqa: E402
from store_helpers import P1, p1  # noqa: E402

KEY64 = base64.b64encode(bytes(range(64))).decode()


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def start(args, timeout=10):
    """Runs p1d for real (not --check-config); a configuration error ends it at once."""
    try:
        return run(args + ["--log-level", "error"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "still running after %d s" % timeout


def both(c, what, args, needles):
    """--check-config and the start: both exit 2 and name every needle."""
    code, out, err = run(args + ["--check-config"])
    c.check("--check-config refuses %s (exit 2, names %s)" % (what, needles),
            code == 2 and all(n in err for n in needles), "code %s: %s" % (code, err))
    code, out, err = start(args)
    c.check("the start refuses %s the same way (exit 2)" % what,
            code == 2 and all(n in err for n in needles), "code %s: %s" % (code, err))


def test_startup_agrees(c, tmp):
    db = os.path.join(tmp, "s.db")
    sim = ["--source", "a=sim"]
    # a listen host that is no address: check-config said OK, the start said exit 1
    both(c, "--listen 999.1.1.1:18081", sim + ["--listen", "999.1.1.1:18081"],
         ["--listen", "listen = '999.1.1.1:18081'"])
    p = write(tmp, "listen.conf", "[http]\nlisten = 999.1.1.1:18081\n[source a]\nspec = sim\n")
    both(c, "[http] listen = 999.1.1.1:18081", ["--config", p],
         ["listen.conf:2:", "'999.1.1.1:18081'"])
    both(c, "-c FILE with a bad listen", ["-c", p], ["listen.conf:2:", "'999.1.1.1:18081'"])
    # [influxdb] needs [store] db
    p = write(tmp, "influx.conf", "[source a]\nspec = sim\n[influxdb]\nurl = http://127.0.0.1:1\n"
              "database = p1\n")
    both(c, "[influxdb] without [store] db", ["--config", p, "--listen", "127.0.0.1:0"],
         ["influx.conf:4:", "[influxdb]", "[store] db"])
    p = write(tmp, "azure-nodb.conf", "[source a]\nspec = sim\n[azure]\nendpoint = "
              "http://127.0.0.1:1/acc\naccount = acc\nkey = %s\n" % KEY64)
    both(c, "[azure] without [store] db", ["--config", p, "--listen", "127.0.0.1:0"],
         ["azure-nodb.conf:4:", "[azure]", "[store] db"])
    # Azure account keys are base64 of 64 bytes
    for key in ("abc", "YWJj", KEY64[:-4]):
        p = write(tmp, "azure.conf", "[source a]\nspec = sim\n[azure]\nendpoint = "
                  "http://127.0.0.1:1/acc\naccount = acc\nkey = %s\n" % key)
        both(c, "[azure] key = %s" % key, ["--config", p, "--listen", "127.0.0.1:0", "--db", db],
             ["azure.conf:6:", "[azure] key", "64 bytes"])
    # files that must exist
    mq = sim + ["--listen", "127.0.0.1:0", "--mqtt-host", "127.0.0.1", "--mqtt-port", "1"]
    missing = os.path.join(tmp, "nope.pass")
    both(c, "a missing --mqtt-password-file", mq + ["--mqtt-password-file", missing],
         ["--mqtt-password-file", "password_file = '%s'" % missing, "No such file"])
    both(c, "a directory as --mqtt-password-file", mq + ["--mqtt-password-file", tmp],
         ["password_file", "Is a directory"])
    p = write(tmp, "mqtt.conf", "[source a]\nspec = sim\n[mqtt]\nhost = 127.0.0.1\nport = 1\n"
              "password_file = %s\n" % missing)
    both(c, "a missing [mqtt] password_file", ["--config", p, "--listen", "127.0.0.1:0"],
         ["mqtt.conf:6:", "password_file", "No such file"])
    both(c, "a missing [mqtt] ca_file with tls", mq + ["--mqtt-tls", "true", "--mqtt-ca-file",
                                                       missing], ["ca_file", "No such file"])
    both(c, "an MQTT wildcard in topic_prefix", mq + ["--mqtt-topic-prefix", "p1d/#"],
         ["topic_prefix = 'p1d/#'", "'+' or '#'"])
    ix = sim + ["--listen", "127.0.0.1:0", "--db", db, "--influxdb-url", "http://127.0.0.1:1",
                "--influxdb-bucket", "b", "--influxdb-org", "o"]
    both(c, "a missing [influxdb] token_file", ix + ["--influxdb-token-file", missing],
         ["token_file = '%s'" % missing, "No such file"])
    both(c, "an [influxdb] url that is not http", ix[:-6] + ["--influxdb-url", "ftp://x",
                                                            "--influxdb-database", "d"],
         ["url = 'ftp://x'", "http://"])
    # an unterminated quote is a parse error naming the line
    for q in ('"', "'"):
        p = write(tmp, "quote.conf", "[http]\nlisten = %s127.0.0.1:18081\n[source a]\nspec = sim\n"
                  % q)
        both(c, "an unterminated %s quote" % q, ["--config", p], ["quote.conf:2:", "unterminated"])
    p = write(tmp, "quoted.conf", "[http]\nlisten = \"127.0.0.1:18081\"\n[source a]\nspec = 'sim'\n")
    code, out, err = run(["--config", p, "--check-config"])
    c.check("closed quotes still work", code == 0 and "listen = 127.0.0.1:18081" in out, err)


def test_duplicates(c, tmp):
    cases = [
        ("a key twice in [http]", "[http]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n"
         "[source a]\nspec = sim\n", ["dup.conf:3:", "[http] listen", "line 2"]),
        ("a section twice", "[log]\nlevel = warn\n[source a]\nspec = sim\n[log]\nlevel = debug\n",
         ["dup.conf:5:", "[log]", "line 1"]),
        ("[mqtt] twice", "[mqtt]\nport = 1\n[source a]\nspec = sim\n[mqtt]\nqos = 1\n",
         ["dup.conf:5:", "[mqtt]", "line 1"]),
        ("a key twice in a source", "[source a]\nspec = sim\ncrc = ignore\n\ncrc = required\n",
         ["dup.conf:5:", "[source a] crc", "line 3"]),
        ("a source twice", "[source a]\nspec = sim\n[source b]\nspec = sim\n[source a]\n"
         "spec = sim\n", ["dup.conf:5:", "[source a] defined twice", "line 1"]),
        ("[prices] twice", "[source a]\nspec = sim\n[prices]\nimport = 0.2\n[prices]\n"
         "gas = 1\n", ["dup.conf:5:", "[prices]", "line 3"]),
    ]
    for what, text, needles in cases:
        p = write(tmp, "dup.conf", text)
        both(c, what, ["--config", p, "--listen", "127.0.0.1:0"], needles)
    p = write(tmp, "many.conf", "[source a]\nspec = sim\n[source b]\nspec = sim:2\n")
    code, out, err = run(["--config", p, "--check-config"])
    c.check("several [source NAME] sections are fine", code == 0 and "[source b]" in out, err)
    p = write(tmp, "override.conf", "[http]\nlisten = 127.0.0.1:1\n[source a]\nspec = sim\n")
    code, out, err = run(["--config", p, "--check-config", "--listen", "127.0.0.1:2"])
    c.check("a flag overriding a file key is no duplicate",
            code == 0 and "listen = 127.0.0.1:2" in out, err)
    both(c, "--source a twice", ["--source", "a=sim", "--source", "a=sim:seed=2",
                                 "--listen", "127.0.0.1:0"],
         ["--source a given twice", "a name of its own"])
    code, out, err = run(["--config", p, "--check-config", "--source", "a=sim:seed=5"])
    c.check("--source a replacing the file's [source a] is no duplicate",
            code == 0 and "seed=5" in out, (err, out))
    # a per-address limit above half of all connections is lowered: said, not silent
    code, out, err = run(["--source", "a=sim", "--http-max-connections", "100",
                          "--http-max-connections-per-ip", "80", "--check-config"])
    c.check("max_connections_per_ip above half of max_connections: a note names what is in force",
            code == 0 and "p1d: note: --http-max-connections-per-ip: [http] max_connections_per_ip "
            "= 80 is more than half of max_connections = 100: 50 will be in force" in err, err)
    code, out, err = run(["--source", "a=sim", "--http-max-connections", "100", "--check-config"])
    c.check("the default per-address limit lowered with max_connections: no note",
            code == 0 and "max_connections_per_ip" not in err, err)


def test_sim_source(c, tmp):
    both(c, "sim interval=1.5s in a spec", ["--source", "a=sim:interval=1.5s"],
         ["interval = '1.5s'", "whole number of seconds"])
    p = write(tmp, "iv.conf", "[source a]\nspec = sim\ninterval = 1500ms\n")
    both(c, "[source] interval = 1500ms", ["--config", p], ["iv.conf:3:", "interval = '1500ms'",
                                                           "whole number of seconds"])
    both(c, "--http-timeout 1.5s", ["--source", "a=sim", "--http-timeout", "1.5s"],
         ["--http-timeout '1.5s'", "whole number of seconds"])
    code, out, err = run(["--source", "a=sim:interval=2s", "--check-config"])
    c.check("sim interval=2s is fine", code == 0 and "interval = 2s" in out, err)
    code, out, err = run(["--source", "a=sim:interval=1m", "--check-config"])
    c.check("sim interval=1m is fine", code == 0 and "interval = 1m" in out, err)
    both(c, "sim:3:seed=4 (the seed twice)", ["--source", "a=sim:3:seed=4"],
         ["sim:3:seed=4", "seed is given twice"])
    both(c, "sim:seed=3:seed=4 (an option twice)", ["--source", "a=sim:seed=3:seed=4"],
         ["option 'seed' given twice"])
    both(c, "serial:DEV:9600:baud=115200 (the speed twice)",
         ["--source", "a=serial:/dev/ttyUSB0:9600:baud=115200"], ["speed is given twice"])
    for spec, seed in (("sim:3", "3"), ("sim:seed=4", "4"), ("sim", "1")):
        code, out, err = run(["--source", "a=" + spec, "--check-config"])
        c.check("%s runs with seed %s" % (spec, seed), code == 0 and "seed = %s\n" % seed in out,
                err + out)
    p = write(tmp, "seed.conf", "[source a]\nspec = sim:3\nseed = 4\n")
    code, out, err = run(["--config", p, "--check-config"])
    c.check("a spec's sim:SEED still wins over the section's seed (documented precedence)",
            code == 0 and "seed = 3\n" in out, err + out)


def test_named_values(c, tmp):
    both(c, "--mqtt-dsmr-meter nope", ["--source", "a=sim", "--source", "b=sim",
                                       "--mqtt-dsmr-meter", "nope"],
         ["dsmr_meter = 'nope'", "(a, b)"])
    p = write(tmp, "dsmr.conf", "[source home]\nspec = sim\n[mqtt]\ndsmr_meter = garage\n")
    both(c, "[mqtt] dsmr_meter = garage", ["--config", p], ["dsmr.conf:4:", "'garage'", "(home)"])
    code, out, err = run(["--source", "a=sim", "--mqtt-dsmr-meter", "a", "--check-config"])
    c.check("--mqtt-dsmr-meter naming a source is fine", code == 0, err)
    both(c, "--relay-meter ghost", ["--source", "a=sim", "--relay-meter", "ghost"],
         ["meter = 'ghost'", "(a)"])
    for frm, to in (("2025-01-01", "2024-01-01"), ("2025-01-01", "2025-01-01")):
        p = write(tmp, "prices.conf", "[source a]\nspec = sim\n[prices]\nvalid_from = %s\n"
                  "import = 0.25\nvalid_to = %s\n" % (frm, to))
        both(c, "[prices] valid_from %s, valid_to %s" % (frm, to),
             ["--config", p, "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "p.db")],
             ["prices.conf:6:", "valid_to = '%s'" % to, "valid_from = '%s'" % frm,
              "prices.conf:4"])
    p = write(tmp, "prices.conf", "[source a]\nspec = sim\n[prices]\nvalid_from = 2024-01-01\n"
              "valid_to = 2025-01-01\nimport = 0.25\n")
    code, out, err = run(["--config", p, "--check-config"])
    c.check("[prices] valid_from before valid_to is fine", code == 0, err)
    p = write(tmp, "prices.conf", "[source a]\nspec = sim\n[prices]\nvalid_from = 2026-03-29T02:30\n"
              "import = 0.25\n")
    both(c, "[prices] valid_from in the spring gap",
         ["--config", p, "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "p.db")],
         ["prices.conf:4:", "'2026-03-29T02:30' does not exist in local time"])
    p = write(tmp, "unknown.conf", "[azur]\nkey = x\n")
    code, out, err = run(["--config", p, "--check-config"])
    c.check("the unknown-section error lists [azure] too",
            code == 2 and "[azur]" in err and "[azure]" in err and "[influxdb]" in err, err)


def test_secret_values(c, tmp):
    """A secret that is refused (too long) is not quoted back: on the command line it is in the
    shell history at most, but the error may go to a journal others read."""
    secret = "S3cr3t" * 30
    for flag in ("--http-token", "--azure-key", "--http-basic-pass"):
        both(c, "%s of 180 bytes" % flag, ["--source", "a=sim", flag, secret],
             [flag, "'********'", "at most"])
        code, out, err = run(["--source", "a=sim", flag, secret, "--check-config"])
        c.check("%s: the error does not quote the secret" % flag, "S3cr3t" not in err, err)


def test_good_config_starts(c, tmp):
    """A configuration --check-config passes (every publisher on, files present) also starts."""
    pw = write(tmp, "mqtt.pass", "secret\n")
    tok = write(tmp, "influx.tok", "token\n")
    db = os.path.join(tmp, "good.db")
    p = write(tmp, "good.conf", "[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n"
              "[azure]\nendpoint = http://127.0.0.1:1/acc\naccount = acc\nkey = %s\n"
              "[mqtt]\nhost = 127.0.0.1\nport = 1\npassword_file = %s\ndsmr_reader = true\n"
              "dsmr_meter = a\n[influxdb]\nurl = http://127.0.0.1:1\nbucket = b\norg = o\n"
              "token_file = %s\n[prices]\nimport = 0.25\nvalid_from = 2024-01-01\n"
              "valid_to = 2030-01-01\n[source a]\nspec = sim:interval=2s\n" % (db, KEY64, pw, tok))
    code, out, err = run(["--config", p, "--check-config"])
    c.check("a full configuration passes --check-config", code == 0, err)
    d = Daemon(["--config", p], tmp)
    try:
        c.check("... and starts", d.http_port() is not None and d.proc.poll() is None,
                d.text()[-600:])
        # SIGHUP with an error kept out by the shared checks: the running configuration stays
        with open(p, "a") as f:
            f.write("[store]\nraw_keep = 1h\n")
        d.signal(signal.SIGHUP)
        c.check("a reload with a duplicate section keeps the running configuration",
                d.wait_log(r"reload: .*section \[store\] given twice.*keeping the running")
                is not None, d.text()[-600:])
    finally:
        c.check("p1d exits 0", d.stop() == 0, d.text()[-400:])


def sim(args):
    """p1 sim ARGS with --fast; a run that does not end by itself counts as exit None."""
    try:
        return p1(["sim", "--fast"] + args, timeout=10)
    except subprocess.TimeoutExpired:
        return None, "", "still running after 10 s"


def test_p1_sim(c):
    code, out, err = sim(["--count", "0"])
    c.check("p1 sim --count 0 is a usage error", code == 2 and "--count" in err, err)
    code, out, err = sim(["--seed", "2147483648", "--count", "1"])
    c.check("p1 sim --seed above 2147483647 is a usage error naming the range",
            code == 2 and "0..2147483647" in err, err)
    code, out, err = sim(["--seed", "2147483647", "--count", "1"])
    c.check("p1 sim --seed 2147483647 works", code == 0 and out.startswith("/"), err)
    code, out, err = sim(["--start", "2026-03-29T02:30", "--count", "1"])
    c.check("p1 sim --start in the spring gap is a usage error saying so",
            code == 2 and "does not exist in local time" in err, err)
    code, out, err = sim(["--start", "2026-03-29T02:30+01:00", "--count", "1"])
    c.check("p1 sim --start with an offset in that hour works", code == 0 and out.startswith("/"),
            err)
    code, out, err = sim(["--start", "2026-10-25T02:30", "--count", "1"])
    c.check("p1 sim --start in the repeated autumn hour is its later (winter) pass, as in the API",
            code == 0 and "0-0:1.0.0(261025023000W)" in out, out[:200] + err)
    code, out, err = sim(["--help"])
    c.check("p1 sim --help states the seed range and what --count takes",
            code == 0 and "0..2147483647" in out and "N >= 1" in out, out)
    code, out, err = run(["--source", "a=sim:2147483647", "--check-config"])
    c.check("p1d takes the same largest seed", code == 0, err)


def main():
    c = Checks("test_config_strict")
    need_p1d(c)
    with tmpdir() as tmp:
        test_startup_agrees(c, tmp)
        test_duplicates(c, tmp)
        test_sim_source(c, tmp)
        test_named_values(c, tmp)
        test_secret_values(c, tmp)
        test_good_config_starts(c, tmp)
        if os.access(P1, os.X_OK):
            test_p1_sim(c)
        else:
            print("SKIP: %s not built (run make)" % P1)
    c.done()


if __name__ == "__main__":
    main()
