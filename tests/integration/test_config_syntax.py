#!/usr/bin/env python3
"""test_config_syntax.py: the config file's syntax from a user's side. Comments are lines of their
own: a '#' or ';' that would start a comment after a value (or after a section's ']', or a
closing quote) is an error naming FILE:LINE and the key, never silently part of the value; one
inside a word is the value's, and a quoted value keeps both; --check-config prints such a value so
that it reads back."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, need_p1d, run, tmpdir  # noqa: E402


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


def main():
    c = Checks("test_config_syntax")
    need_p1d(c)
    with tmpdir() as tmp:
        c.run([test_inline_comments, test_hash_in_values], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
