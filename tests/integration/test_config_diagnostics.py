#!/usr/bin/env python3
"""test_config_diagnostics.py: a config file with several mistakes names all of them in one run
(--check-config, the start and a SIGHUP reload), each as FILE:LINE: message in file order, at
most 20 lines and a count of the rest; an unknown key, section or option suggests the close one
("did you mean"), the section a key belongs to, or where other P1 tools' words go in p1d, and
suggests nothing for an unrelated word. Also the options of every p1 subcommand."""
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, need_p1d, run, tmpdir, write_conf  # noqa: E402
from store_helpers import P1, p1  # noqa: E402

# One of each kind of mistake; the line numbers are those of the file.
MANY = """\
oops = 1
[source home]
spec = tcp:127.0.0.1:1
buad = 12
baud = 9600
crc = maybe
device = /dev/ttyUSB0
[http]
listen = abc
port = 3
keepalive = 5
max_connections = 10
max_connections = 11
token = "open
[htpp]
x = 1
[mqtt]
retian = true
colour = blue
zebra
[relay]
meter = ghost
"""

# (line, words the message of that line has), in file order. Line 5 is a check across keys (baud
# on a TCP source), line 22 one across sections (a relay meter no source defines).
EXPECTED = [
    (1, ["key 'oops' outside a section"]),
    (4, ["[source home] unknown key 'buad'", "(did you mean 'baud'?)"]),
    (5, ["[source home] key 'baud' does not apply to a tcp source"]),
    (6, ["[source home] crc = 'maybe'", "optional|required|ignore"]),
    (7, ["unknown key 'device'", "spec = serial:/dev/ttyUSB0"]),
    (9, ["[http] listen = 'abc'", "HOST:PORT"]),
    (10, ["[http] unknown key 'port'", "listen = ADDR:PORT"]),
    (11, ["[http] unknown key 'keepalive'", "a key of [mqtt]"]),
    (13, ["[http] max_connections given twice (first on line 12)"]),
    (14, ["unterminated quote"]),
    (15, ["unknown section [htpp]", "(did you mean [http]?)"]),
    (18, ["[mqtt] unknown key 'retian'", "(did you mean 'retain'?)"]),
    (19, ["[mqtt] unknown key 'colour'"]),
    (20, ["'zebra': expected key = value"]),
    (22, ["[relay] meter = 'ghost'", "configured source"]),
]


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def error_lines(err, prefix="p1d: "):
    return [ln[len(prefix):] for ln in err.splitlines() if ln.startswith(prefix)]


def check_many(c, what, lines, path):
    """lines: the error messages; they must be EXPECTED, one each, in order."""
    c.check("%s: one line per error (%d)" % (what, len(EXPECTED)), len(lines) == len(EXPECTED),
            "\n".join(lines))
    for (line, words), msg in zip(EXPECTED, lines):
        c.check("%s: line %d is named with its problem %s" % (what, line, words),
                msg.startswith("%s:%d: " % (path, line)) and all(w in msg for w in words), msg)
    # the line 16 key of the unknown section is not an error of its own
    c.check("%s: keys of an unknown section are not reported one by one" % what,
            not any("%s:16:" % path in m for m in lines), "\n".join(lines))


def test_all_errors(c, tmp):
    path = write(tmp, "many.conf", MANY)
    code, out, err = run(["--config", path, "--check-config"])
    c.check("--check-config of a file with many mistakes exits 2", code == 2, err)
    check_many(c, "--check-config", error_lines(err), path)
    code, out, err = run(["--config", path, "--listen", "127.0.0.1:0"])
    c.check("the start refuses it with exit 2", code == 2, err)
    check_many(c, "the start", error_lines(err), path)

    # the brief's example: all four mistakes, not only the first
    path = write(tmp, "bad.conf", "[source home]\ndevice = /dev/ttyUSB0\nbuad = 12\nfoo = 1\n"
                 "[http]\nlisten = abc\nport = 3\n")
    code, out, err = run(["--config", path, "--check-config"])
    lines = error_lines(err)
    for line in (2, 3, 4, 6, 7):
        c.check("bad.conf: line %d is reported" % line,
                any(m.startswith("%s:%d: " % (path, line)) for m in lines), err)
    c.check("bad.conf: a source without spec is still named",
            any("[source home] has no spec" in m for m in lines), err)

    # the checks made after reading the file (listen addresses, [prices]) report all, too
    path = write(tmp, "ready.conf", "[http]\nlisten = 999.1.1.1:1\nper_ip_exempt = zz\n"
                 "[prices]\nimport = abc\n[source a]\nspec = sim\n")
    code, out, err = run(["--config", path, "--check-config"])
    lines = error_lines(err)
    c.check("checks after the file: listen, per_ip_exempt and [prices] in one run (exit 2)",
            code == 2 and len(lines) == 3 and lines[0].startswith(path + ":2: ")
            and lines[1].startswith(path + ":3: ") and lines[2].startswith(path + ":5: "), err)
    # ... also several in [prices] (one a run before)
    path = write(tmp, "prices.conf", "[source a]\nspec = sim\n[prices]\nimport = 0,23\n"
                 "gas = 1e3\ndaily = x\n")
    code, out, err = run(["--config", path, "--check-config"])
    lines = error_lines(err)
    c.check("[prices]: three bad values in one run (exit 2)",
            code == 2 and [m.split(": ")[0] for m in lines] ==
            ["%s:%d" % (path, n) for n in (4, 5, 6)], err)


# The checks across a source's keys, one source each: the line they name, and words of the message.
ACROSS = """\
[source a]
spec = sim
key_file = /nonexistent/p1d.key
[source b]
spec = sim
skip_tag = true
[source c]
spec = sim
key = 0123456789ABCDEF0123456789ABCDEF
key_file = %(keyfile)s
[source d]
spec = serial:/dev/null:9600
key = 0123456789ABCDEF0123456789ABCDEF
[source e]
spec = tcp:127.0.0.1:1:reconnect_min=5s
reconnect_max = 2s
[source f]
spec = sim
key_file = %(empty)s
"""
ACROSS_EXPECTED = [
    (3, ["[source a] key_file = '/nonexistent/p1d.key': No such file or directory"]),
    (6, ["[source b] skip_tag is set but key is not"]),
    (10, ["[source c] set key or key_file, not both"]),
    (13, ["[source d] key: encrypted frames need all 8 bits", "baud = 9600"]),
    (15, ["[source e] reconnect_min (5000 ms) is larger than reconnect_max (2000 ms)"]),
    (19, ["[source f] key_file = ", "expected the key (32 hex digits) on the first line"]),
]


def test_across_source_keys(c, tmp):
    """The checks across a source's keys (key_file, key with 7E1, reconnect_min above
    reconnect_max, ...) name FILE:LINE as every other error does (a reload: test_reload); they
    named the source alone."""
    keyfile = write(tmp, "lux.key", "0123456789ABCDEF0123456789ABCDEF\n")
    empty = write(tmp, "empty.key", "# the key goes here\n")
    path = write(tmp, "across.conf", ACROSS % {"keyfile": keyfile, "empty": empty})
    code, out, err = run(["--config", path, "--check-config"])
    lines = error_lines(err)
    c.check("across keys: one error per source, exit 2", code == 2 and
            len(lines) == len(ACROSS_EXPECTED), err)
    for (line, words), msg in zip(ACROSS_EXPECTED, lines):
        c.check("across keys: line %d is named with its problem %s" % (line, words),
                msg.startswith("%s:%d: " % (path, line)) and all(w in msg for w in words), msg)
    # on the command line there is no line to name: the message is as before
    code, out, err = run(["--source", "a=tcp:127.0.0.1:1:reconnect_min=5s:reconnect_max=2s",
                          "--check-config"])
    c.check("across keys, command line: named by the source alone",
            code == 2 and error_lines(err) == ["[source a] reconnect_min (5000 ms) is larger "
                                               "than reconnect_max (2000 ms)"], err)


def test_cap(c, tmp):
    # a line longer than the limit is one error; the lines after it keep their numbers
    text = "[http]\n# " + "x" * 3000 + "\n" + "".join("bogus%d = 1\n" % i for i in range(30))
    path = write(tmp, "long.conf", text)
    code, out, err = run(["--config", path, "--check-config"])
    lines = error_lines(err)
    c.check("30 errors and a long line: 20 lines, then '... and 11 more errors'",
            code == 2 and len(lines) == 21 and lines[-1] == "... and 11 more errors", err)
    c.check("the long line is one error on its own line number",
            lines and lines[0].startswith(path + ":2: ") and "longer than" in lines[0], err)
    c.check("the keys after it keep their line numbers",
            len(lines) > 1 and lines[1].startswith(path + ":3: [http] unknown key 'bogus0'"), err)


def test_hints(c, tmp):
    cases = [
        ("[source a]\nspec = sim\nSEED = 3\n", "did you mean 'seed'?"),
        ("[source a]\nspec = sim\nclokc = auto\n", "did you mean 'clock'?"),
        ("[source a]\nspec = sim\nserial = /dev/ttyUSB0\n", "spec = serial:/dev/ttyUSB0"),
        ("[source a]\nspec = sim\nport = /dev/ttyUSB0\n", "spec = serial:/dev/ttyUSB0"),
        ("[source a]\nspec = sim\nlevel = debug\n", "'level' is a key of [log]"),
        ("[http]\nbaud = 9600\n", "'baud' is a key of [source NAME]"),
        ("[mqtt]\nhots = x\n", "did you mean 'host'?"),
        ("[influxdb]\nbukcet = x\n", "did you mean 'bucket'?"),
        ("[http]\nlisen = 127.0.0.1:1\n", "did you mean 'listen'?"),
        ("[influx]\nurl = x\n", "did you mean [influxdb]?"),
        ("[sorce a]\nspec = sim\n", "did you mean [source a]?"),
        ("[serial]\ndevice = /dev/ttyUSB0\n", "a meter is [source NAME] with spec = serial:"),
        # an option inside the spec gets the same help as a key of its own
        ("[source a]\nspec = serial:/dev/ttyUSB0:buad=9600\n", "did you mean 'baud'?"),
        ("[source a]\nspec = tcp:127.0.0.1:2000:reconect_max=5s\n", "did you mean 'reconnect_max'?"),
    ]
    for text, hint in cases:
        path = write(tmp, "hint.conf", text)
        code, out, err = run(["--config", path, "--check-config"])
        c.check("%r suggests %r" % (text.strip(), hint), code == 2 and hint in err, err)
    code, out, err = run(["--source", "a=serial:/dev/ttyUSB0:buad=9600", "--check-config"])
    c.check("--source a=serial:...:buad=9600 suggests 'baud', once",
            code == 2 and err.count("did you mean 'baud'?") == 1, err)
    path = write(tmp, "hint.conf", "[source a]\nspec = sim\nbuad = 1\n")
    code, out, err = run(["--config", path, "--check-config"])
    c.check("a mistyped key of a source is suggested once", err.count("did you mean") == 1, err)
    # unrelated words get no suggestion
    for text in ("[http]\nzebra = 1\n", "[source a]\nspec = sim\nfoo = 1\n",
                 "[mqtt]\nwhatever = 1\n", "[garden]\n", "[log]\nx = 1\n"):
        path = write(tmp, "plain.conf", text)
        code, out, err = run(["--config", path, "--check-config"])
        c.check("%r: an error without a suggestion" % text.strip(),
                code == 2 and "did you mean" not in err and "is a key of" not in err
                and "unknown" in err, err)


def test_valid_unchanged(c, tmp):
    path = write(tmp, "good.conf", "# comment\n[http]\nlisten = 127.0.0.1:0\n[log]\n"
                 "level = warn\n[source a]\nspec = sim:interval=2s\ncrc = required\n")
    code, out, err = run(["--config", path, "--check-config"])
    c.check("a valid file still passes with nothing on stderr",
            code == 0 and err == "" and "level = warn" in out and "crc = required" in out,
            err + out)


def test_file_forms(c, tmp):
    """A UTF-8 byte-order mark (Windows Notepad) is skipped; a line may hold 1024 bytes besides its
    line end, LF or CRLF; one more is refused, and the lines after it are read on."""
    path = os.path.join(tmp, "bom.conf")
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf[source a]\nspec = sim\n")
    code, out, err = run(["--config", path, "--check-config"])
    c.check("a file that starts with a UTF-8 BOM is read", code == 0 and err == "", err)
    for end in ("\n", "\r\n"):
        with open(path, "wb") as f:
            f.write(("[source a]%sspec = sim%s# %s%s" % (end, end, "x" * 1022, end)).encode())
        code, out, err = run(["--config", path, "--check-config"])
        c.check("a line of 1024 bytes and %r is taken" % end, code == 0 and err == "", err)
    with open(path, "wb") as f:
        f.write(("[source a]\nspec = sim\n# %s\n[log]\nlevel = loud\n" % ("x" * 1023)).encode())
    code, out, err = run(["--config", path, "--check-config"])
    c.check("a line of 1025 bytes is refused, the next ones read on",
            code == 2 and "%s:3: line longer than 1024 bytes" % path in err and
            "%s:5: [log] level" % path in err, err)


def test_reload(c, tmp):
    path = os.path.join(tmp, "reload.conf")
    write_conf(path, "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\n")
    d = Daemon(["--config", path], tmp)
    try:
        c.check("p1d starts", d.http_port() is not None, d.text()[-600:])
        write_conf(path, "[http]\nlisten = 127.0.0.1:0\nlisen = x\n[source a]\nspec = sim\n"
                   "crc = maybe\n[source b]\nspec = sim\nbuad = 9600\n")
        d.signal(signal.SIGHUP)
        done = d.wait_log(r"reload: 3 errors; keeping the running configuration")
        text = d.text()
        c.check("a reload with 3 mistakes says so and keeps the running configuration",
                done is not None, text[-1500:])
        for line, words in ((3, "unknown key 'lisen' (did you mean 'listen'?)"),
                            (6, "crc = 'maybe'"),
                            (9, "unknown key 'buad' (did you mean 'baud'?)")):
            c.check("the reload logs line %d: %s" % (line, words),
                    re.search(r"reload: %s:%d: .*%s" % (re.escape(path), line, re.escape(words)),
                              text) is not None, text[-1500:])
        c.check("p1d keeps running on the old configuration",
                d.proc.poll() is None and "a" in d.meters() and "b" not in d.meters(),
                text[-600:])
        # a single error keeps its one-line form
        write_conf(path, "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\ncrc = maybe\n")
        d.signal(signal.SIGHUP)
        c.check("a reload with one mistake logs it on one line as before",
                d.wait_log(r"reload: \S+:5: \[source a\] crc = 'maybe'.*keeping the running "
                           r"configuration") is not None, d.text()[-800:])
        # a check across a source's keys names its line too (it named the source alone)
        write_conf(path, "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\n"
                   "key_file = /nonexistent/p1d.key\n")
        d.signal(signal.SIGHUP)
        c.check("a reload with a key_file that is not there names its file and line",
                d.wait_log(r"error: reload: %s:5: \[source a\] key_file = '/nonexistent/p1d.key': "
                           r"No such file or directory; keeping the running configuration"
                           % re.escape(path)) is not None and "a" in d.meters(), d.text()[-800:])
        # a file emptied or cut off before its sources (an editor crash, > instead of >>): no
        # source and no store is refused, as at a start, instead of stopping every meter
        for n, what, text in ((3, "sources commented out", "[http]\nlisten = 127.0.0.1:0\n"
                               "# [source a]\n"), (4, "an empty file", "")):
            write_conf(path, text)
            d.signal(signal.SIGHUP)
            c.check("a reload of a file without sources (%s) is refused" % what,
                    d.wait_log(r"reload: \S+: no source configured.*keeping the running "
                               r"configuration", count=n - 2) is not None and "a" in d.meters(),
                    d.text()[-800:])
    finally:
        c.check("p1d exits 0", d.stop() == 0, d.text()[-400:])


def test_p1d_options(c):
    for args, hint in ((["--lisen", "127.0.0.1:0"], "unknown option '--lisen' (did you mean "
                                                     "'--listen'?)"),
                       (["--check-confg"], "(did you mean '--check-config'?)"),
                       (["--mqtt-hots=x"], "(did you mean '--mqtt-host'?)"),
                       (["-listen", "x"], "(did you mean '--listen'?)"),
                       (["--baud", "9600"], "--source NAME=SPEC:baud=VALUE"),
                       (["--device", "/dev/ttyUSB0"], "--source NAME=serial:/dev/ttyUSB0")):
        code, out, err = run(args)
        c.check("p1d %s: %s (exit 2)" % (" ".join(args), hint), code == 2 and hint in err, err)
    code, out, err = run(["--zebra"])
    c.check("p1d --zebra: no suggestion", code == 2 and "unknown option '--zebra'" in err
            and "did you mean" not in err, err)
    for relay, clash in (("127.0.0.1:18444", True), ("0.0.0.0:18444", True),
                         ("127.0.0.1:18445", False), ("127.0.0.2:18444", False)):
        code, out, err = run(["--source", "a=sim", "--listen", "127.0.0.1:18444", "--relay", relay,
                              "--check-config"])
        c.check("--relay %s beside --listen 127.0.0.1:18444: %s" % (
            relay, "refused by --check-config" if clash else "fine"),
            (code == 2 and "takes the port of [http] listen" in err) if clash else code == 0, err)
    code, out, err = run(["--key", "a=00112233445566778899AABBCCDDEEFF", "--source", "a=sim",
                          "--check-config"])
    c.check("--key before the --source it names is taken (flags in any order)",
            code == 0 and "key = ********" in out, "%s %s" % (err, out[-300:]))
    code, out, err = run(["--source", "a=stdin", "--source", "b=-", "--check-config"])
    c.check("two sources on standard input are refused (each would get pieces of it)",
            code == 2 and "sources 'a' and 'b' both read standard input" in err, err)
    # a forgotten value: the next option is not taken as one (p1d made a database named
    # "--check-config" and started)
    with tempfile.TemporaryDirectory() as d:
        code, out, err = run(["--source", "a=sim", "--listen", "127.0.0.1:0", "--db",
                              "--check-config"], cwd=d)
        c.check("p1d --db --check-config: --db is missing its value (exit 2, no file made)",
                code == 2 and "--db: missing value: the next argument, --check-config, is an "
                "option" in err and not os.listdir(d), "%s %s %s" % (code, err, os.listdir(d)))


def test_p1_options(c):
    cases = [
        (["decode", "--prety"], "p1 decode: unknown option '--prety' (did you mean '--pretty'?)"),
        (["sim", "--cout", "3"], "p1 sim: unknown option '--cout' (did you mean '--count'?)"),
        (["bench", "--second=1"], "(did you mean '--seconds'?)"),
        (["import", "--meterr", "x", "f"], "(did you mean '--meter'?)"),
        (["export", "--formt", "csv"], "(did you mean '--format'?)"),
        (["backup", "--forse", "x.db"], "(did you mean '--force'?)"),
        (["prices", "list", "--kindd", "gas"], "(did you mean '--kind'?)"),
        (["decod"], "p1: unknown command 'decod' (did you mean 'decode'?)"),
    ]
    for args, hint in cases:
        try:
            code, out, err = p1(args, timeout=20, stdin=b"")
        except subprocess.TimeoutExpired:
            code, err = None, "timed out"
        c.check("p1 %s: %s (exit 2)" % (" ".join(args), hint), code == 2 and hint in err, err)
    with tempfile.TemporaryDirectory() as d:
        code, out, err = p1(["import", "--db", "-q", os.path.join(d, "none.txt")], timeout=20)
        c.check("p1 import --db -q FILE: --db is missing its value (exit 2)",
                code == 2 and "missing value for '--db'" in err and not os.path.exists("-q"),
                err)
    for args in (["decode", "--zebra"], ["sim", "--zebra"], ["zebra"]):
        code, out, err = p1(args, timeout=20, stdin=b"")
        c.check("p1 %s: no suggestion" % " ".join(args),
                code == 2 and "zebra" in err and "did you mean" not in err, err)


def main():
    c = Checks("test_config_diagnostics")
    need_p1d(c)
    with tmpdir() as tmp:
        c.run([test_all_errors, test_cap, test_hints, test_valid_unchanged, test_file_forms,
               test_reload, test_across_source_keys], c, tmp)
        c.run([test_p1d_options], c)
        if os.access(P1, os.X_OK):
            c.run([test_p1_options], c)
        else:
            print("SKIP: %s not built (run make)" % P1)
    c.done()


if __name__ == "__main__":
    main()
