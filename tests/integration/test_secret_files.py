#!/usr/bin/env python3
"""test_secret_files.py: the secrets p1d sends or checks can come from a file of their own (a
systemd credential, LoadCredential=): [http] token_file and basic_pass_file, [prices]
fetch_header_file and fetch_gas_header_file ([alerts] header_file: test_alerts.py).

- The file's first line is the secret: the API takes the token and the password from it, a price
  server receives the header from it, and none of them reaches the log or --check-config (which
  shows ********).
- A config file that every user may read but only names the files draws no warning.
- A reload reads the files again: a new token in the file is in force at once (no restart), the
  old one is refused; an empty file is refused and the running token stays.
- A missing, empty or unreadable file, a first line too long for the key, and a key set both
  ways are refused by --check-config and at the start alike (exit 2, the file and line, the key
  and the path named, the file's text never shown)."""
import base64
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, http, need_p1d, run, tmpdir,  # noqa: E402
                            wait_for, write_conf)
from price_helpers import PriceServer, days  # noqa: E402

T = Checks("test_secret_files")
need_p1d(T)

TOKEN = "api-T0KEN-from-a-file"
PASS = "basic pass w1th spaces"
HEADER_TOKEN = "price-T0KEN-from-a-file"


def secret(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)
    return path


def get(port, token=None, basic=None):
    h = {}
    if token:
        h["Authorization"] = "Bearer " + token
    if basic:
        h["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    return http(port, "/api/meters", headers=h)[0]


def test_token_file(tmp):
    tok = secret(tmp, "token", TOKEN + "\n")
    conf = os.path.join(tmp, "token.conf")
    write_conf(conf, "[http]\ntoken_file = %s\n[source home]\nspec = sim\n" % tok)
    os.chmod(conf, 0o644)
    code, out, err = run(["--config", conf, "--check-config"])
    T.check("--check-config: the token from token_file, shown as ********",
            code == 0 and "token = ********" in out and "token_file = %s" % tok in out and
            TOKEN not in out + err, (code, out[:300], err))
    T.check("--check-config: a world-readable file that only names token_file is not warned of",
            "readable by every user" not in err, err)
    d = Daemon(["--config", conf, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        T.check("the API refuses a request without the token (401)", get(port) == 401)
        T.check("... and takes the token of the file", get(port, TOKEN) == 200)
        T.check("... not a wrong one", get(port, TOKEN + "x") == 401)
        secret(tmp, "token", "N3W-" + TOKEN + "\r\nsecond line ignored\n")
        d.signal(signal.SIGHUP)
        ok = wait_for(lambda: get(d.http_port(0.5) or port, "N3W-" + TOKEN) == 200, 10)
        port = d.port
        T.check("a reload reads token_file again: the new token works (CRLF dropped)", ok,
                d.text()[-800:])
        T.check("... and the old one is refused", get(port, TOKEN) == 401)
        T.check("... logged as in force now, without a restart",
                "reload: [http] token changed; in force now" in d.text() and
                "take effect when p1d restarts" not in d.text(), d.text()[-800:])
        T.check("the tokens never reach the log", TOKEN not in d.text(), d.text()[-1000:])
        secret(tmp, "token", "")
        d.signal(signal.SIGHUP)
        m = d.wait_log(r"reload: [^\n]*token\.conf:2: \[http\] token_file = '[^']*': the first "
                       r"line is empty")
        T.check("a reload with an empty token_file is refused, the old token stays", m and
                get(port, "N3W-" + TOKEN) == 200 and d.proc.poll() is None, d.text()[-800:])
    finally:
        d.stop()


def test_basic_pass_file(tmp):
    pw = secret(tmp, "pass", PASS + "\n")
    d = Daemon(["--source", "home=sim", "--listen", "127.0.0.1:0", "--http-basic-user", "ann",
                "--http-basic-pass-file", pw], tmp)
    try:
        port = d.http_port()
        T.check("basic_pass_file: the password of the file (spaces kept) is taken",
                get(port, basic="ann:" + PASS) == 200, d.text()[-500:])
        T.check("basic_pass_file: another password is refused",
                get(port, basic="ann:" + PASS.strip() + "!") == 401)
        T.check("basic_pass_file: the password is not logged", PASS not in d.text())
    finally:
        d.stop()


def test_fetch_header_file(tmp, srv):
    today, _ = days()  # a reply for the days asked: one for other days is a failed fetch
    body = ("time,price\n%s,0.25\n" % today.isoformat()).encode()
    srv.routes["/p"] = [(200, "text/csv", body)]
    srv.routes["/g"] = [(200, "text/csv", ("time,price\n%s,1.1\n" % today.date()).encode())]
    h = secret(tmp, "hdr", "Authorization: Bearer %s\n" % HEADER_TOKEN)
    g = secret(tmp, "ghdr", "X-Api-Key: gas-%s\n" % HEADER_TOKEN)
    conf = os.path.join(tmp, "fetch.conf")
    write_conf(conf, "[prices]\nfetch_url = %s\nfetch_header_file = %s\nfetch_gas_url = %s\n"
               "fetch_gas_header_file = %s\n" % (srv.url("/p"), h, srv.url("/g"), g))
    code, out, err = run(["--config", conf, "--check-config", "--db", os.path.join(tmp, "f.db")])
    T.check("--check-config: the note names the file's header by name only",
            code == 0 and "(GET, with the header Authorization)" in err and
            "(GET, with the header X-Api-Key)" in err and HEADER_TOKEN not in out + err and
            "fetch_header = ********" in out, (code, err))
    code, out, err = run(["--config", conf, "--db", os.path.join(tmp, "f.db"), "--fetch-prices"],
                         timeout=30)
    calls = {c["path"]: c["headers"] for c in srv.calls}
    T.check("--fetch-prices sends each header of its file",
            code == 0 and calls.get("/p", {}).get("Authorization") == "Bearer " + HEADER_TOKEN
            and calls.get("/g", {}).get("X-Api-Key") == "gas-" + HEADER_TOKEN,
            (code, err, calls))
    T.check("... and never shows it", HEADER_TOKEN not in out + err, err)


def refused(what, args, needles, hidden=None):
    """--check-config and the start: both exit 2 and name every needle, never the hidden text."""
    code, out, err = run(args + ["--check-config"])
    T.check("--check-config refuses %s (exit 2, names %s)" % (what, needles),
            code == 2 and all(n in err for n in needles) and
            (hidden is None or hidden not in out + err), "code %s: %s" % (code, err))
    try:
        code, out, err = run(args + ["--log-level", "error"], timeout=10)
    except subprocess.TimeoutExpired:
        code, err = None, "still running"
    T.check("the start refuses %s the same way" % what,
            code == 2 and all(n in err for n in needles), "code %s: %s" % (code, err))


def test_errors(tmp):
    missing = os.path.join(tmp, "no-such-token")
    conf = os.path.join(tmp, "bad.conf")
    sim = ["--listen", "127.0.0.1:0", "--source", "a=sim"]
    write_conf(conf, "[http]\ntoken_file = %s\n" % missing)
    refused("a missing token_file", ["--config", conf] + sim,
            ["bad.conf:2:", "[http] token_file = '%s'" % missing, "No such file"])
    tok = secret(tmp, "tok2", TOKEN + "\n")
    write_conf(conf, "[http]\ntoken = abc\ntoken_file = %s\n" % tok)
    refused("token and token_file both", ["--config", conf] + sim,
            ["bad.conf:3:", "[http] set token or token_file, not both"], TOKEN)
    long_ = secret(tmp, "long", "L0NG" * 40 + "\n")
    refused("a token longer than 127 bytes", ["--http-token-file", long_] + sim,
            ["--http-token-file", "the first line is longer than 127 bytes"], "L0NG")
    empty = secret(tmp, "empty", "\nsecond\n")
    write_conf(conf, "[prices]\nfetch_url = http://127.0.0.1:1/p\nfetch_header_file = %s\n" % empty)
    refused("an empty fetch_header_file", ["--config", conf, "--db", os.path.join(tmp, "e.db")]
            + sim, ["bad.conf:3:", "[prices] fetch_header_file", "the first line is empty"])
    write_conf(conf, "[prices]\nfetch_url = http://127.0.0.1:1/p\nfetch_gas_header_file = %s\n"
               % tmp)
    refused("a directory as fetch_gas_header_file", ["--config", conf, "--db",
                                                     os.path.join(tmp, "e.db")] + sim,
            ["[prices] fetch_gas_header_file", "Is a directory"])
    bad = secret(tmp, "badhdr", "Authorization Bearer %s\n" % HEADER_TOKEN)
    write_conf(conf, "[prices]\nfetch_url = http://127.0.0.1:1/p\nfetch_header_file = %s\n" % bad)
    refused("a header file that is not Name: value", ["--config", conf, "--db",
                                                      os.path.join(tmp, "e.db")] + sim,
            ["fetch_header: expected one header as Name: value"], HEADER_TOKEN)
    if os.geteuid() != 0:  # root reads any file
        locked = secret(tmp, "locked", TOKEN + "\n")
        os.chmod(locked, 0)
        refused("an unreadable basic_pass_file", ["--http-basic-user", "u",
                                                  "--http-basic-pass-file", locked] + sim,
                ["basic_pass_file", "Permission denied"])


def test_relative_paths(tmp):
    """A relative key_file or token_file is read from p1d's working directory, not from the
    config file's (under systemd /var/lib/p1d): one written next to /etc/p1d.conf passed
    --check-config run in /etc and failed in the service with only 'No such file or
    directory'. A missing one now says where it was looked for; an absolute one says nothing
    more (a helper's CLI walk-through)."""
    etc = os.path.join(tmp, "etc")
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, "lux.key"), "w") as f:
        f.write("00112233445566778899AABBCCDDEEFF\n")
    secret(etc, "web.token", TOKEN + "\n")
    conf = os.path.join(etc, "p1d.conf")
    write_conf(conf, "[http]\ntoken_file = web.token\n[source lux]\nspec = sim\n"
               "key_file = lux.key\n")
    code, out, err = run(["--config", conf, "--check-config"], cwd=etc)
    T.check("relative key_file and token_file: read from the working directory",
            code == 0 and "key = ********" in out, "code %s: %s" % (code, err))
    code, out, err = run(["--config", conf, "--check-config"], cwd=tmp)
    where = "(a relative path is read from p1d's working directory, %s, not from the config " \
        "file's)" % os.path.realpath(tmp)
    T.check("... from elsewhere: each error says where it looked",
            code == 2 and "[source lux] key_file = 'lux.key': No such file or directory " + where
            in err and "[http] token_file = 'web.token': No such file or directory " + where
            in err, "code %s: %s" % (code, err))
    missing = os.path.join(tmp, "no-such.key")
    code, out, err = run(["--source", "a=sim:key_file=" + missing, "--check-config"], cwd=tmp)
    T.check("... an absolute path that is missing: no such note",
            code == 2 and "No such file or directory" in err and "relative path" not in err,
            "code %s: %s" % (code, err))


def main():
    srv = PriceServer()
    try:
        with tmpdir() as tmp:
            T.run([test_token_file, test_basic_pass_file, test_errors, test_relative_paths], tmp)
            T.run([test_fetch_header_file], tmp, srv)
    finally:
        srv.close()
    T.done()


main()
