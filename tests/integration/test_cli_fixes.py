#!/usr/bin/env python3
"""test_cli_fixes.py: `p1` commands that said all was well when it was not: p1 bench of a FILE in
which nothing decodes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, crc16, tmpdir  # noqa: E402
from store_helpers import require_p1, p1  # noqa: E402

HEADER = b"/ISk5\\2MT382-1000\r\n\r\n"


def telegram(body, crc=None):
    """A telegram of one header and body, with its CRC (crc: another one, a wrong one)."""
    t = HEADER + body + b"!"
    return t + b"%04X\r\n" % (crc16(t) if crc is None else crc)


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_bench_nothing_decoded(c, tmp):
    """p1 bench of a FILE whose every telegram is rejected measured the rejections and exited
    0; it says that nothing decoded, naming the first rejection, and exits 1."""
    good = telegram(b"1-0:1.8.1(000001.000*kWh)\r\n")
    bad = telegram(b"1-0:1.8.1(000001.000*kWh)\r\n", crc=0)
    for name, data, want in (
            ("crc.txt", bad + bad, "all 2 telegrams were rejected, the first at offset %d: "
             "crc_mismatch" % (len(HEADER) + 27)),
            ("value.txt", telegram(b"1-0:1.8.1(00000x.000*kWh)\r\n"),
             "its 1 telegram was rejected, at offset 31: bad_value: 1-0:1.8.1"),
            ("junk.txt", b"hello\n", "no telegram found"),
            ("empty.txt", b"", "no telegram found")):
        path = write(tmp, name, data)
        code, out, err = p1(["bench", "--seconds", "0.05", path])
        c.check("p1 bench %s: exit 1, nothing in it decoded: %s" % (name, want),
                code == 1 and "p1 bench: nothing in %s decoded: " % path in err and want in err
                and out == "", "%d %r %s" % (code, out, err))
    path = write(tmp, "mixed.txt", bad + good)
    code, out, err = p1(["bench", "--seconds", "0.05", path])
    last = out.splitlines()[-1] if out else ""
    c.check("p1 bench of a FILE with one telegram that decodes: exit 0, the machine line last",
            code == 0 and "2 telegrams per pass (1 rejected)" in out and
            last.startswith("telegrams_per_s=") and "allocs_per_telegram=" in last,
            "%d %s %s" % (code, out, err))
    code, out, err = p1(["bench", "--seconds", "0.05", path, path])
    c.check("p1 bench with two FILEs: still a usage error, exit 2", code == 2, "%d %s" % (code, err))


def main():
    c = Checks("test_cli_fixes")
    require_p1(c)
    with tmpdir() as tmp:
        c.run([test_bench_nothing_decoded], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
