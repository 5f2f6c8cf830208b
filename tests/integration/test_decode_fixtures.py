#!/usr/bin/env python3
"""test_decode_fixtures.py: `p1 decode` over every tests/data fixture equals its reviewed expected JSON.

Each fixture X.txt (or encrypted X.bin with X.key.txt) has X.expected.json: one JSON object per
telegram, one per line, exactly what `p1 decode` must print (compared as parsed JSON, so key order
and spacing do not matter). Every fixture is decoded from a file, from a pipe, and from a pipe
written a few bytes at a time; exit code (0 all accepted, 1 any rejected) and the stderr line
naming each rejected telegram ("p1: offset N: <error>: <message>") are checked too. A valgrind
pass over a few fixtures follows when valgrind is installed.
Usage: tests/integration/test_decode_fixtures.py [--update]   (--update rewrites expected files:
review every number, time and text by hand afterwards).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
P1 = os.environ.get("P1") or os.path.join(ROOT, "build", "p1")
DATA = os.path.join(ROOT, "tests", "data")
TIMEOUT = 60

passed = 0
failed = 0


def ok(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)
    return cond


def read_keys(path):
    """Key file lines 'encryption_key=HEX' and 'auth_key(AAD)=HEX' -> decode options."""
    args = []
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k == "encryption_key":
                args += ["--key", v]
            elif k.startswith("auth_key"):
                args += ["--ak", v]
    return args


def fixtures():
    out = []
    for path in sorted(glob.glob(os.path.join(DATA, "*.txt")) + glob.glob(os.path.join(DATA, "*.bin"))):
        if path.endswith(".key.txt") or path.endswith(".expected.txt"):
            continue
        base = path[:-4]
        args = []
        if path.endswith(".bin"):
            if not os.path.exists(base + ".key.txt"):
                continue
            args = read_keys(base + ".key.txt")
        out.append((path, base + ".expected.json", args))
    return out


def parse_lines(text, where):
    objs = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            objs.append(json.loads(line))
        except ValueError as e:
            ok(False, "%s: line %d is not JSON (%s): %r" % (where, i + 1, e, line[:200]))
    return objs


def run(args, stdin_data=None, chunk=None):
    """Runs p1 with args; stdin_data is piped (in chunk-byte writes when chunk is set)."""
    if stdin_data is None:
        p = subprocess.run([P1] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    p = subprocess.Popen([P1] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    if chunk is None:
        out, err = p.communicate(stdin_data, timeout=TIMEOUT)
    else:
        # Small writes so the decoder sees the stream in pieces; outputs are drained by
        # communicate() at the end (fixtures are small enough for the pipe buffers).
        try:
            for i in range(0, len(stdin_data), chunk):
                p.stdin.write(stdin_data[i:i + chunk])
                p.stdin.flush()
        except BrokenPipeError:
            pass
        out, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def stdin_args():
    """How `p1 decode` reads standard input: no file argument, or '-'."""
    rc, _, _ = run(["decode"], stdin_data=b"")
    if rc in (0, 1):
        return []
    return ["-"]


def diff(a, b, path="$"):
    """First difference between two parsed JSON values, as text; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                return "%s.%s: missing in output (expected %r)" % (path, k, b[k])
            if k not in b:
                return "%s.%s: unexpected in output (%r)" % (path, k, a[k])
            d = diff(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d elements, expected %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if a != b or type(a) != type(b):
        return "%s: got %r, expected %r" % (path, a, b)
    return None


def expected_rc(expected, data):
    """0 when every telegram was accepted; 1 when one was rejected or non-empty input had none."""
    if any(not t.get("ok") for t in expected) or (data and not expected):
        return 1
    return 0


def check_output(name, how, rc, out, err, expected, data):
    got = parse_lines(out, "%s (%s)" % (name, how))
    d = diff(got, expected)
    ok(d is None, "%s (%s): output differs: %s" % (name, how, d))
    want_rc = expected_rc(expected, data)
    ok(rc == want_rc, "%s (%s): exit %d, expected %d; stderr: %s" % (name, how, rc, want_rc, err[:300]))
    for t in expected:
        w = t.get("warning")
        if w:
            pat = r"^p1: offset %d: warning: %s: %s; left out, the telegram is accepted" % (
                w["offset"], re.escape(w["error"]), re.escape(w["message"]))
            ok(re.search(pat, err, re.M) is not None,
               "%s (%s): stderr warns of the value left out at offset %d: %r"
               % (name, how, w["offset"], err[:300]))
        if t.get("ok"):
            continue
        pat = r"^p1: offset (%d|%s): %s: " % (t.get("offset", -1), t.get("error_offset", -1),
                                             re.escape(str(t.get("error"))))
        ok(re.search(pat, err, re.M) is not None,
           "%s (%s): stderr does not name the rejected telegram at offset %s (%s): %r"
           % (name, how, t.get("offset"), t.get("error"), err[:300]))


def main():
    update = "--update" in sys.argv[1:]
    if not os.access(P1, os.X_OK):
        print("FAIL: %s not built (make all)" % P1)
        print("0 passed, 1 failed")
        return 1
    fx = fixtures()
    ok(len(fx) >= 25, "only %d fixtures found in tests/data" % len(fx))
    sin = stdin_args()
    for path, exp_path, args in fx:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        rc, out, err = run(["decode"] + args + [path])
        if update:
            with open(exp_path, "w") as f:
                for t in parse_lines(out, name):
                    f.write(json.dumps(t, ensure_ascii=False, sort_keys=False) + "\n")
            print("wrote %s (exit %d)" % (os.path.relpath(exp_path, ROOT), rc))
            continue
        if not ok(os.path.exists(exp_path), "%s: no expected file %s" % (name, exp_path)):
            continue
        with open(exp_path, encoding="utf-8") as f:
            expected = parse_lines(f.read(), exp_path)
        check_output(name, "file", rc, out, err, expected, data)
        rc, out, err = run(["decode"] + args + sin, stdin_data=data)
        check_output(name, "stdin", rc, out, err, expected, data)
        rc, out, err = run(["decode"] + args + sin, stdin_data=data, chunk=3)
        check_output(name, "stdin in 3-byte writes", rc, out, err, expected, data)

    # A 7E1 line (DSMR 2.2/3.0) captured at 8N1 keeps each byte's even-parity bit in bit 7:
    # a hint without --7bit, the same output as the clean capture with it.
    with open(os.path.join(DATA, "dsmr22-gas-nextline.txt"), "rb") as f:
        clean = f.read()
    seven = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in clean)
    rc, out, err = run(["decode"] + sin, stdin_data=seven)
    ok(rc == 1 and "--7bit" in err and "7E1" in err,
       "decode of a 7E1 capture taken at 8N1 hints at --7bit: exit %d, %r" % (rc, err))
    want = run(["decode"] + sin, stdin_data=clean)
    got = run(["decode", "--7bit"] + sin, stdin_data=seven, chunk=5)
    ok(got == want and want[0] == 0, "decode --7bit of that capture = the clean capture's output")
    rc, _, err = run(["decode", "--7bit", "--key", "00" * 16, "-"], stdin_data=b"")
    ok(rc == 2 and "--7bit" in err, "decode --7bit --key is a usage error: exit %d" % rc)

    # Usage errors exit 2.
    rc, _, err = run(["decode", "--no-such-option"])
    ok(rc == 2, "decode --no-such-option: exit %d, expected 2" % rc)
    rc, _, err = run(["decode", os.path.join(DATA, "no-such-file.txt")])
    ok(rc != 0 and err.strip() != "", "decode of a missing file: exit %d, stderr %r" % (rc, err))

    if not update and shutil.which("valgrind") and not os.environ.get("P1"):  # not on ASan builds
        picks = [x for x in fx if os.path.basename(x[0]) in
                 ("dsmr50-3phase-gas.txt", "be-fluvius-emucs.txt", "truncated-then-complete.txt",
                  "lu-encrypted.bin")]
        for path, exp_path, args in picks:
            with open(exp_path, encoding="utf-8") as f:
                expected = parse_lines(f.read(), exp_path)
            with open(path, "rb") as f:
                want_rc = expected_rc(expected, f.read())
            t0 = time.time()
            p = subprocess.run(["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                                "--errors-for-leak-kinds=definite,indirect", P1, "decode"] + args + [path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            ok(p.returncode == want_rc,
               "valgrind p1 decode %s: exit %d (99 = valgrind error), expected %d; %s"
               % (os.path.basename(path), p.returncode, want_rc,
                  p.stderr.decode("utf-8", "replace")[-1500:]))
            print("valgrind %s: exit %d in %.1f s" % (os.path.basename(path), p.returncode, time.time() - t0))
    elif not update and os.environ.get("P1"):
        print("SKIP: valgrind pass (P1 is set: a sanitizer build cannot run under valgrind)")
    elif not update:
        print("SKIP: valgrind not installed")

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
