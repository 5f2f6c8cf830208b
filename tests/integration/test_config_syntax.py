#!/usr/bin/env python3
"""test_config_syntax.py: the config file's syntax from a user's side. Comments are lines of their
own: a '#' or ';' that would start a comment after a value (or after a section's ']', or a
closing quote) is an error naming FILE:LINE and the key, never silently part of the value; one
inside a word is the value's, and a quoted value keeps both; --check-config prints such a value so
that it reads back. A file that is not text (a NUL byte) or goes on past 1 MiB is refused with
FILE:LINE, at the start and on a reload (which keeps the running configuration), instead of
cutting the value at the NUL or reading forever. Sections, keys and values are UTF-8 without control
characters: a Latin-1 byte, an escape sequence, a lone CR, a no-break or zero-width space or a
byte-order mark past the start is an error naming FILE:LINE and the column; comments may hold
anything (but a NUL)."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import P1D, Checks, Daemon, need_p1d, run, tmpdir, write_conf  # noqa: E402


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, 0o600)  # secrets in it: no warning about the mode
    return path


def error_lines(err, prefix="p1d: "):
    return [ln[len(prefix):] for ln in err.splitlines() if ln.startswith(prefix)]


def check_file(tmp, text):
    path = write(tmp, "syntax.conf", text)
    code, out, err = run(["--config", path, "--check-config"])
    return path, code, out, err


def test_inline_comments(c, tmp):
    # (section and key line, words of its error)
    cases = [
        ("[http]\nlisten = 127.0.0.1:8080   # the dashboard\n",
         ":2: [http] listen: '# the dashboard' after the value looks like a comment"),
        ("[http]\nlisten = 127.0.0.1:8080 ; the dashboard\n",
         ":2: [http] listen: '; the dashboard' after the value looks like a comment"),
        # a string key took the comment into its value: host 'localhost   # broker'
        ("[mqtt]\nhost = localhost   # broker\n",
         ":2: [mqtt] host: '# broker' after the value looks like a comment"),
        ("[mqtt]\nhost = localhost\t# broker\n", ":2: [mqtt] host: '# broker'"),
        ("[http]\nannounce_name = kitchen ; the Pi\n", ":2: [http] announce_name: '; the Pi'"),
        ("[source b]\nspec = sim:seed=3 # the simulator\n",
         ":2: [source b] spec: '# the simulator' after the value"),
        ("[mqtt]\nhost = \"localhost\" # broker\n",
         ":2: [mqtt] host: a comment after the value: comments go on a line of their own"),
        ("[mqtt] # the broker\nhost = x\n",
         ":1: '[mqtt] # the broker': a comment after the section"),
        ("[mqtt]\nhost = # set later\n", ":2: [mqtt] host: a value that starts with '#' is "
         "written in quotes"),
    ]
    for text, words in cases:
        path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n" + text)
        lines = error_lines(err)
        # the lines of `text` are 2 further down
        want = words.replace(":1:", ":3:", 1).replace(":2:", ":4:", 1)
        c.check("%r: one error, %r (exit 2)" % (text, want),
                code == 2 and len(lines) == 1 and lines[0].startswith(path + want)
                and "comments go on a line of their own" in lines[0], err)
    # a secret's text is never quoted, not even the part after the space
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[mqtt]\nhost = x\n"
                                      "password = s3cr3t #hunter2\n")
    c.check("a password with ' #': an error that names the key and quotes none of it",
            code == 2 and ":5: [mqtt] password: a ' #' in the value looks like a comment" in err
            and "hunter2" not in err and "s3cr3t" not in err, err)
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[mqtt]\nhost = x\n"
                                      "password = \"s3cr3t #hunter2\n")
    c.check("an unterminated quote of a password does not show it",
            code == 2 and ":5: [mqtt] password = ********: unterminated quote" in err
            and "hunter2" not in err, err)
    # text after a closed quote: said as such (it was "unterminated quote"), a secret's not shown
    path, code, out, err = check_file(tmp, "[source a]\nspec = \"sim\"x\n[mqtt]\nhost = x\n"
                                      "password = \"s3cr3t\"hunter2\n")
    c.check("text after a closing quote is named as that, not as an unterminated quote",
            code == 2 and ":2: [source a] spec: text after the closing \" of the value (x)" in err
            and ":5: [mqtt] password: text after the closing \" of the value (********)" in err
            and "unterminated" not in err and "hunter2" not in err and "s3cr3t" not in err, err)
    # a spec in error is reported once: the source is not checked further ("has no spec")
    path, code, out, err = check_file(tmp, "[source a]\nspec = \"sim\n")
    c.check("an unterminated quote in spec is the source's only error",
            code == 2 and len(error_lines(err)) == 1 and "unterminated quote" in err, err)


def test_hash_in_values(c, tmp):
    """'#' and ';' inside a word are the value's; quotes keep any value as it is."""
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[store]\ndb = %s\n"
                                      "[prices]\nfetch_url = https://example.com/p;v=1#today\n"
                                      "[http]\nannounce_name = \"meter #2 \"\n"
                                      "cors_origin = '#x;y'\n"
                                      % os.path.join(tmp, "p1d.db"))
    c.check("a URL with ';' and a fragment, quoted '#' values: taken (exit 0)", code == 0, err)
    c.check("... as written", "fetch_url = https://example.com/p;v=1#today" in out
            and 'announce_name = "meter #2 "' in out and 'cors_origin = "#x;y"' in out, out)
    # the printed configuration reads back to itself
    again = write(tmp, "printed.conf", out)
    code, out2, err2 = run(["--config", again, "--check-config"])
    c.check("--check-config's output loads as the same configuration",
            code == 0 and out2.split("\n", 1)[1] == out.split("\n", 1)[1], err2 + out2)


def test_not_text(c, tmp):
    # the value after a NUL was dropped without a word: level 'debug', host 'ab'
    for text, col in ((b"[source a]\nspec = sim\n[log]\nlevel = debug\0junk\n", 14),
                      (b"[source a]\nspec = sim\n[mqtt]\nhost = ab\0cd\n", 10),
                      (b"[source a]\nspec = sim\n[mqtt]\nhost = \xc3\xa9\0cd\n", 9)):
        path, code, out, err = check_file(tmp, text)
        c.check("%r: 'FILE:4: a NUL byte (column %d)' (exit 2)" % (text, col),
                code == 2 and error_lines(err) == [
                    "%s:4: a NUL byte (column %d): a config file is text (the rest of the file "
                    "is not read)" % (path, col)], err)
    # a NUL at the start of a line made it a blank line: its key was skipped
    path, code, out, err = check_file(tmp, b"[source a]\nspec = sim\n\0[log]\nlevel = loud\n")
    c.check("a line that starts with a NUL is no blank line", code == 2
            and error_lines(err)[:1] == ["%s:3: a NUL byte (column 1): a config file is text "
                                         "(the rest of the file is not read)" % path], err)
    # a program given as the config file: one error, not 20 lines of its bytes
    code, out, err = run(["--config", P1D, "--check-config"])
    c.check("--config build/p1d: one error naming the NUL (exit 2)",
            code == 2 and len(error_lines(err)) == 1 and "a NUL byte" in err, err)
    # /dev/zero never ended: p1d hung at the start
    try:
        code, out, err = run(["--config", "/dev/zero", "--check-config"], timeout=20)
        ok = code == 2 and "/dev/zero:1: a NUL byte (column 1)" in err
    except subprocess.TimeoutExpired:
        ok, err = False, "hung"
    c.check("--config /dev/zero: an error, not a hang", ok, err)
    # an endless stream of text stops at 1 MiB
    try:
        p = subprocess.run(["bash", "-c", "exec %s --config <(yes '[source a]') --check-config"
                            % P1D], capture_output=True, timeout=30)
        code, err = p.returncode, p.stderr.decode("utf-8", "replace")
        ok = code == 2 and "more errors" in err
    except subprocess.TimeoutExpired:
        ok, err = False, "hung"
    c.check("--config <(yes): refused after 1 MiB, not a hang", ok, err[-500:])
    path = write(tmp, "big.conf", "[source a]\nspec = sim\n" + "\n" * (1024 * 1024 - 22))
    code, out, err = run(["--config", path, "--check-config"])
    c.check("a file of 1 MiB is read", code == 0, err)
    path = write(tmp, "big.conf", "[source a]\nspec = sim\n" + "\n" * (1024 * 1024 - 21))
    code, out, err = run(["--config", path, "--check-config"])
    c.check("one byte more is refused", code == 2 and error_lines(err) == [
        "%s:1048557: the file goes on past 1048576 bytes: not a config file (the rest is not "
        "read)" % path], err)


def test_encoding(c, tmp):
    # each was taken into the value as it is (a Latin-1 'e' reached the API and mDNS as another
    # character, ESC coloured the terminal of --check-config); a CR-only file was one line
    cases = [
        (b"[mqtt]\nhost = caf\xe9\n", ":4: byte 0xE9 (column 11) is not UTF-8: save the file as "
         "UTF-8"),
        (b"[http]\nannounce_name = \xc0\xaf\n", ":4: byte 0xC0 (column 17) is not UTF-8"),
        (b"[lo\xe9g]\n", ":3: byte 0xE9 (column 4) is not UTF-8"),
        (b"[mqtt]\nhost = a\x01b\n", ":4: control character 0x01 (column 9): expected text"),
        (b"[mqtt]\nhost = a\x1b[31mb\n", ":4: control character 0x1B (column 9)"),
        (b"[mqtt]\nhost = a\x7fb\n", ":4: control character 0x7F (column 9)"),
        # columns count characters as an editor shows them, not bytes ("caf\u00e9" is 4)
        (b"[mqtt]\nhost = caf\xc3\xa9\x01\n", ":4: control character 0x01 (column 12)"),
        (b"[http]\nannounce_name = Zo\xc3\xab\xc2\xa0\n", ":4: U+00A0, a no-break space "
         "(column 20)"),
        (b"[log]\rlevel = debug\r", ":3: a CR (column 6) inside the line: lines end in LF or "
         "CRLF"),
        # pasted from a web page: the host was '\u00a0broker', the listen error showed nothing
        (b"[mqtt]\nhost =\xc2\xa0broker\n", ":4: U+00A0, a no-break space (column 7): expected a "
         "plain space or nothing"),
        (b"[http]\nlisten = 127.0.0.1:8080\xe2\x80\x8b\n", ":4: U+200B, an invisible character "
         "or a space of another width (column 24)"),
        (b"[http]\nannounce_name = x\xc2\x85y\n", ":4: U+0085, a control character (column 18)"),
        # two files joined: the second one's BOM hid its first section ('[log]': expected key =
        # value), and its keys were reported as keys of the section before
        (b"\xef\xbb\xbf[log]\nlevel = debug\n", ":3: U+FEFF, a byte-order mark (column 1): only "
         "the start of the file may hold one (files joined into one?)"),
    ]
    for text, words in cases:
        path, code, out, err = check_file(tmp, b"[source a]\nspec = sim\n" + text)
        lines = error_lines(err)
        c.check("%r: one error, %r (exit 2)" % (text, words),
                code == 2 and len(lines) == 1 and lines[0].startswith(path + words), err)
    path, code, out, err = check_file(tmp, b"[source a]\rspec = sim\r" + b"# x\r" * 400)
    c.check("a long file of CR line ends: the long line says why", code == 2 and
            "%s:1: line longer than 1024 bytes (it holds CRs: lines end in LF or CRLF)" % path
            in err, err)
    # UTF-8 values, tabs, CRLF, and comments in any encoding are taken
    text = ("[source a]\r\nspec = sim\r\n# caf\xe9 \x01\x1b comment\r\n\t\r\n[http]\r\n"
            "announce_name = caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\t\r\n"
            "\tlisten\t=\t127.0.0.1:8081\t\r\n").encode("latin-1")
    path, code, out, err = check_file(tmp, text)
    c.check("UTF-8 values, tabs and comments in Latin-1 with control characters: taken",
            code == 0 and "announce_name = caf\u00e9 \u20ac \U0001f600\n" in out
            and "listen = 127.0.0.1:8081\n" in out, err + out[:300])


def test_secret_file_nul(c, tmp):
    # the token was cut at the NUL without a word: 'abc'
    tok = write(tmp, "token", b"abc\0def\n")
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[http]\ntoken_file = %s\n"
                                      % tok)
    c.check("a token_file with a NUL in its first line: FILE:4 names it (exit 2)",
            code == 2 and error_lines(err) == ["%s:4: [http] token_file = '%s': the first line "
                                               "holds a NUL byte: expected text" % (path, tok)],
            err)
    tok = write(tmp, "token", b"abc\r\n\0")
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[http]\ntoken_file = %s\n"
                                      % tok)
    c.check("... but not one after it (only the first line is read)", code == 0, err)
    # [azure] key_file had a reader of its own that cut at the NUL
    key = write(tmp, "azkey", b"abc\0def\n")
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[azure]\naccount = acct\n"
                                      "key_file = %s\nendpoint = http://127.0.0.1:1/acct\n" % key)
    c.check("an [azure] key_file with a NUL: FILE:5 names it, as for the other secret files",
            code == 2 and error_lines(err) == ["%s:5: [azure] key_file = '%s': the first line "
                                               "holds a NUL byte: expected text" % (path, key)],
            err)


def test_empty_values(c, tmp):
    # a number, choice or address left empty is refused; so is an MQTT prefix left empty, which
    # made every topic start with '/' (/home/state, discovery under /sensor/...)
    cases = [
        ("[http]\nmax_connections =\n", ":4: [http] max_connections = '': expected an integer"),
        ("[http]\nannounce =\n", ":4: [http] announce = '': expected one of auto|yes|no"),
        ("[http]\nlisten =\n", ":4: [http] listen = '': expected HOST:PORT"),
        ("[mqtt]\nhost = x\ntopic_prefix =\n", ":5: [mqtt] topic_prefix = '': expected a topic "
         "such as 'p1d' (empty, every topic would start with '/')"),
        ("[mqtt]\nhost = x\ndiscovery_prefix = \"\"\n", ":5: [mqtt] discovery_prefix = '': "
         "expected a topic such as 'homeassistant'"),
        ("[mqtt]\nhost = x\ntopic_prefix = p1d/\n", ":5: [mqtt] topic_prefix = 'p1d/': expected "
         "a topic without a '/' at its end or '//'"),
        ("[mqtt]\nhost = x\ndiscovery_prefix = home//assistant\n", ":5: [mqtt] discovery_prefix "
         "= 'home//assistant': expected a topic without a '/' at its end or '//'"),
    ]
    for text, words in cases:
        path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n" + text)
        lines = error_lines(err)
        c.check("%r: %r (exit 2)" % (text, words),
                code == 2 and len(lines) == 1 and lines[0].startswith(path + words), err)
    # an empty string is the key's "off" where the reference says so
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[mqtt]\nhost =\n"
                                      "topic_prefix =\n[relay]\nlisten =\n")
    c.check("host, relay listen empty: off, and an empty prefix of an MQTT that is off is no "
            "error", code == 0, err)
    path, code, out, err = check_file(tmp, "[source a]\nspec = sim\n[mqtt]\nhost = x\n"
                                      "topic_prefix = /home/p1\ndiscovery_prefix = ha/disc\n")
    c.check("topic prefixes with levels, and a leading '/', are taken", code == 0, err)


def test_reload_not_text(c, tmp):
    path = os.path.join(tmp, "reload.conf")
    write_conf(path, "[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\n")
    d = Daemon(["--config", path], tmp)
    try:
        c.check("p1d starts", d.http_port() is not None, d.text()[-600:])
        with open(path, "wb") as f:
            f.write(b"[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\n[source b]\n"
                    b"spec = sim\0:seed=9\n")
        d.signal(signal.SIGHUP)
        c.check("a reload of a file with a NUL logs FILE:LINE and keeps the running configuration",
                d.wait_log(r"reload: \S+reload.conf:6: a NUL byte \(column 11\).*keeping the "
                           r"running configuration") is not None, d.text()[-800:])
        c.check("... and nothing else of the part not read ([source b] has no spec)",
                "has no spec" not in d.text(), d.text()[-800:])
        c.check("... and its meters", d.proc.poll() is None and list(d.meters()) == ["a"],
                d.text()[-400:])
    finally:
        c.check("p1d exits 0", d.stop() == 0, d.text()[-400:])


def main():
    c = Checks("test_config_syntax")
    need_p1d(c)
    with tmpdir() as tmp:
        c.run([test_inline_comments, test_hash_in_values, test_not_text, test_encoding,
               test_secret_file_nul, test_empty_values, test_reload_not_text], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
