#!/usr/bin/env python3
"""test_docs_examples.py: the commands and files users copy from the docs still do what the docs
say: README's capture-to-export example, the config path of README, the unit and the man page,
dist/p1d.conf.example under --check-config with every key documented in docs/CONFIG.md, the
restore steps of docs/STORE.md, the option lists of `p1 COMMAND --help` against dist/p1.1, the
exit status of `p1 decode`, and the readers (export, backup, prices list) on a database in a
directory they may not write."""
import base64
import csv
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import Checks, Daemon, P1D, ROOT, need_p1d, run, tmpdir  # noqa: E402
from store_helpers import P1, p1  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def code_blocks(text):
    """The lines of every ``` block of a Markdown text, one list per block."""
    return [b.split("\n") for b in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)]


def shell(line, cwd):
    """Runs a documented command line with build/ pointing at this tree; (code, out, err)."""
    line = line.split("  #")[0].strip()
    line = re.sub(r"(^| )build/", r"\1" + os.path.join(ROOT, "build") + "/", line)
    p = subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_readme_capture(c, tmp):
    """README, "Decoding a capture": sim a day, import it, export it, as written."""
    block = [b for b in code_blocks(read("README.md")) if any("p1 import" in x for x in b)]
    if not c.check("README has the capture example", len(block) == 1):
        return
    lines = {}
    for x in block[0]:
        m = re.match(r"build/p1 (sim|import|export|decode) ", x)
        if m and m.group(1) not in lines:
            lines[m.group(1)] = x
    work = os.path.join(tmp, "readme")
    os.mkdir(work)
    code, out, err = shell(lines["sim"], work)
    c.check("README: p1 sim ... > day.txt", code == 0 and os.path.getsize(
        os.path.join(work, "day.txt")) > 0, err)
    code, out, err = shell(lines["import"], work)
    c.check("README: p1 import --db p1d.db day.txt", code == 0, err)
    code, out, err = shell(lines["export"], work)
    rows = list(csv.DictReader(io.StringIO(out))) if code == 0 else []
    full = [r for r in rows if r.get("readings") not in (None, "", "0")]
    c.check("README: p1 export prints the imported day (rows with readings)",
            code == 0 and len(full) >= 20, "%d %s %s" % (code, err, out[:300]))
    shutil.copy(os.path.join(DATA, "dsmr50-3phase-gas.txt"), os.path.join(work, "capture.txt"))
    code, out, err = shell(lines["decode"], work)
    c.check("README: p1 decode capture.txt", code == 0 and out.startswith('{"ok":true'), err)


def test_config_paths(c):
    """README, the unit, CONFIG.md and p1d.8 name one configuration file, where make install
    puts it."""
    sysconfdir = re.search(r"^SYSCONFDIR \?= (\S+)", read("Makefile"), re.M).group(1)
    unit = read("dist/p1d.service").replace("@SYSCONFDIR@", sysconfdir)
    m = re.search(r"^ExecStart=\S+ --config (\S+)", unit, re.M)
    path = m.group(1) if m else None
    c.check("the unit reads SYSCONFDIR/p1d.conf, where make install puts it (/etc/p1d.conf)",
            path == "/etc/p1d.conf", str(path))
    for doc in ("README.md", "docs/CONFIG.md", "dist/p1d.8"):
        text = read(doc).replace("\\-", "-")
        named = set(re.findall(r"--config (/etc/\S+)", text))
        c.check("%s names the unit's config file" % doc, named == {path}, str(named))


def test_install_paths(c, tmp):
    """make install with another SYSCONFDIR: the installed unit reads the config it installed
    (it read /etc/p1d.conf whatever SYSCONFDIR was)."""
    dest = os.path.join(tmp, "install")
    p = subprocess.run(["make", "-s", "install", "DESTDIR=" + dest, "PREFIX=/usr",
                        "SYSCONFDIR=/opt/p1d/etc"], cwd=ROOT, capture_output=True, timeout=600)
    if not c.check("make install DESTDIR=... SYSCONFDIR=/opt/p1d/etc", p.returncode == 0,
                   p.stderr.decode()[-2000:]):
        return
    with open(os.path.join(dest, "usr", "lib", "systemd", "system", "p1d.service")) as f:
        unit = f.read()
    c.check("... the unit runs /usr/bin/p1d --config /opt/p1d/etc/p1d.conf",
            "ExecStart=/usr/bin/p1d --config /opt/p1d/etc/p1d.conf\n" in unit, unit[:600])
    c.check("... and that file is installed",
            os.path.exists(os.path.join(dest, "opt", "p1d", "etc", "p1d.conf")))


def test_example_config(c, tmp):
    """dist/p1d.conf.example passes --check-config as shipped; every key it shows, also the
    commented-out ones, is in docs/CONFIG.md's reference."""
    ex = os.path.join(ROOT, "dist", "p1d.conf.example")
    code, out, err = run(["--config", ex, "--check-config"])
    c.check("p1d.conf.example passes --check-config as shipped", code == 0, err)
    doc = read("docs/CONFIG.md")
    ref = {}
    section = None
    for line in doc.split("\n"):
        m = re.match(r"### \[(.+?)\]", line)
        if m:
            section = m.group(1).split()[0]
            ref[section] = set()
        m = re.match(r"\| `([a-z_0-9]+)` \|", line)
        if m and section:
            ref[section].add(m.group(1))
    missing = []
    section = None
    for line in read("dist/p1d.conf.example").split("\n"):
        s = line.lstrip("#; ").strip()
        m = re.match(r"\[(\w+)( \w+)?\]$", s)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"([a-z_0-9]+) =", s)
        if m and section and m.group(1) not in ref.get(section, ()):
            missing.append("[%s] %s" % (section, m.group(1)))
    c.check("every key of p1d.conf.example is in docs/CONFIG.md", not missing, str(missing))


def uncomment(text):
    """A config text with every `# key = value` line and `# [section]` turned on, as a user
    would."""
    return re.sub(r"^[#;] ?([a-z_0-9]+ =|\[[a-z]+( [a-z]+)?\]$)", r"\1", text, flags=re.M)


def secret_file(tmp, name):
    """A stand-in for /etc/p1d/NAME with content of the kind the key expects."""
    path = os.path.join(tmp, "secret-" + name)
    if name == "azure.key":
        content = base64.b64encode(bytes(range(64))).decode()
    elif name.endswith(".key"):
        content = "0123456789ABCDEF0123456789ABCDEF"
    elif name.endswith(".header"):
        content = "Authorization: Bearer secret"
    else:
        content = "secret"
    with open(path, "w") as f:
        f.write(content + "\n")
    return path


def test_ini_snippets(c, tmp):
    """Every ```ini block of docs/ and dist/p1d.conf.example passes --check-config as written,
    and still parses with its commented-out keys switched on (a comment after a value is part
    of the value: the syntax has comments on their own line only)."""
    texts = [("dist/p1d.conf.example", read("dist/p1d.conf.example"))]
    for doc in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if doc.endswith(".md"):
            for i, b in enumerate(re.findall(r"```ini\n(.*?)```", read("docs/" + doc), re.S)):
                if not b.startswith("[Service]"):  # a systemd drop-in, not p1d's
                    texts.append(("docs/%s block %d" % (doc, i + 1), b))
    for name, text in texts:
        for label, t in (("", text), (", keys uncommented", uncomment(text))):
            t = t.replace("/var/lib/p1d/", tmp + "/")
            t = re.sub(r"(?:/etc/p1d|/run/credentials/p1d\.service)/([a-z.]+)",
                       lambda m: secret_file(tmp, m.group(1)), t)
            ttys = iter(range(100))
            t = re.sub(r"(?m)^spec = serial:[^:\s]+",
                       lambda m: "spec = serial:%s/tty%d" % (tmp, next(ttys)), t)
            t = re.sub(r"(?m)^ca_file = \S+", "ca_file =", t)
            path = os.path.join(tmp, "snippet.conf")
            with open(path, "w") as f:
                f.write(t)
            extra = [] if "[source " in t else ["--source", "docs=sim"]
            if "[store]" not in t:  # a fragment; the text around it asks for [store] db
                extra += ["--db", os.path.join(tmp, "snippet.db")]
            code, out, err = run(["--config", path, "--check-config"] + extra)
            c.check("%s%s passes --check-config" % (name, label), code == 0, err)


def test_restore(c, tmp):
    """docs/STORE.md: back up while p1d runs, then restore with the documented commands."""
    block = [b for b in code_blocks(read("docs/STORE.md")) if any("systemctl stop" in x for x in b)]
    if not c.check("STORE.md has the restore steps", len(block) == 1):
        return
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    db = os.path.join(state, "p1d.db")
    d = Daemon(["--source", "home=file:%s" % os.path.join(DATA, "dsmr50-3phase-gas.txt"),
                "--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        d.http_port()
        d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
        end = time.time() + 10
        before = ""
        while time.time() < end and len(before.split("\n")) <= 2:  # committed within a second
            time.sleep(0.2)
            code, before, err = p1(["export", "--db", db, "--from", "2000-01-01", "--to",
                                    "2100-01-01", "--step", "raw"])
        backup = os.path.join(tmp, "p1d-2026-11-01.db")
        code, _, err = p1(["backup", "--db", db, backup])
        c.check("p1 backup while p1d runs", code == 0, err)
    finally:
        d.stop()
    with open(db, "wb") as f:
        f.write(b"a database gone bad")
    steps = []
    for x in block[0]:
        if x.startswith("systemctl") or not x.strip():
            continue
        x = x.replace("/var/lib/p1d", state).replace("/backup/", tmp + "/")
        steps.append(x.split("  #")[0])
    code, out, err = shell(" ; ".join(steps), tmp)
    c.check("the restore commands run", code == 0, err)
    c.check("... and keep the old database aside",
            os.path.exists(os.path.join(state, "old", "p1d.db")), str(os.listdir(state)))
    d = Daemon(["--source", "home=file:%s" % os.path.join(DATA, "dsmr50-3phase-gas.txt"),
                "--db", db, "--listen", "127.0.0.1:0"], tmp)
    try:
        c.check("p1d starts on the restored database", d.http_port() is not None, d.text())
        d.wait_meter("home", lambda m: m.get("telegrams", 0) >= 1)
    finally:
        d.stop()
    code, after, err = p1(["export", "--db", db, "--from", "2000-01-01", "--to", "2100-01-01",
                           "--step", "raw"])
    c.check("the restored database holds the backed-up readings",
            code == 0 and len(before.split("\n")) > 2 and after.startswith(before),
            "%s\nbefore %r\nafter %r" % (err, before[-400:], after[-400:]))


def test_help_options(c):
    """Every option the man page's synopsis gives a command is listed by its --help."""
    man = read("dist/p1.1").replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
    for cmd in ("decode", "sim", "bench", "import", "export", "backup", "prices"):
        m = re.search(r"^\.B p1 %s\n(.*?)(?=^\.br|^\.SH)" % cmd, man, re.M | re.S)
        opts = set(re.findall(r"--[a-z][a-z-]*", m.group(1))) if m else set()
        code, out, err = p1([cmd, "--help"])
        lacking = sorted(o for o in opts if not re.search(r"^ +(-\w, )?%s\b" % o, out, re.M))
        c.check("p1 %s --help explains every option of its synopsis" % cmd,
                code == 0 and not lacking, "%d %s" % (code, lacking))
    code, out, err = p1(["export", "--help"])
    for o in ("--from", "--to", "--step", "--format"):
        c.check("p1 export --help lists %s" % o, re.search(r"^ +%s\b|; %s " % (o, o), out, re.M)
                is not None, out)
    code, out, err = p1(["prices", "--help"])
    c.check("p1 prices --help lists --kind", re.search(r"^ +--kind\b", out, re.M) is not None,
            out)


def test_missing_values(c):
    """An option given without its value is named as such, like every other command does."""
    for args, want in ((["backup", "--db"], "--db needs a value"),
                       (["bench", "--seconds"], "'--seconds' needs a value"),
                       (["backup", "--bogus", "x.db"], "unknown option '--bogus'")):
        code, out, err = p1(args)
        c.check("p1 %s: exit 2, %s" % (" ".join(args), want), code == 2 and want in err,
                "%d %s" % (code, err))


def test_export_no_meter(c, tmp):
    """p1 export of a database without readings (prices only) says there is nothing to export;
    it told the user to name a meter with --meter, which cannot help."""
    db = os.path.join(tmp, "prices-only.db")
    prices = os.path.join(tmp, "prices-only.csv")
    with open(prices, "w") as f:
        f.write("time,price\n2026-01-01T00:00:00+01:00,0.25\n")
    p1(["prices", "import", "--db", db, prices])
    code, out, err = p1(["export", "--db", db, "--from", "2026-01-01", "--to", "2026-01-02"])
    c.check("p1 export of a database without meters: exit 1, nothing to export",
            code == 1 and "holds no meter yet: nothing to export" in err, "%d %s" % (code, err))


def test_import_typo(c, tmp):
    """p1 import of files that cannot be read (a typo) exits 1 and leaves no new database
    behind; it created an empty one before finding out."""
    db = os.path.join(tmp, "typo.db")
    code, out, err = p1(["import", "--db", db, os.path.join(tmp, "no-such-capture.txt"), tmp])
    c.check("p1 import of unreadable files: exit 1, each named, no database created",
            code == 1 and "no-such-capture.txt: No such file or directory" in err and
            "Is a directory" in err and not os.path.exists(db) and
            not os.path.exists(db + ".lock"), "%d %s %s" % (code, err, os.listdir(tmp)))


def test_decode_status(c, tmp):
    """p1.1 EXIT STATUS: decode exits 0 on empty input, 1 on input without a telegram."""
    empty = os.path.join(tmp, "empty.txt")
    junk = os.path.join(tmp, "junk.txt")
    open(empty, "w").close()
    with open(junk, "w") as f:
        f.write("hello\n")
    man = read("dist/p1.1").replace("\\-", "-")
    c.check("p1.1 says empty input decodes with status 0", "also for empty input" in man)
    code, _, err = p1(["decode", empty])
    c.check("p1 decode of an empty file: 0", code == 0, err)
    code, _, err = p1(["decode", junk])
    c.check("p1 decode of a file without telegrams: 1", code == 1, err)


def as_reader(args):
    """Runs p1 as a user that may not write the test directory: nobody when we are root."""
    pre = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            return None
        pre = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    p = subprocess.run(pre + [P1] + args, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_readonly_dir(c, tmp):
    """STORE.md: readers need no lock. A reader that may read the database but not write its
    directory (a copy on read-only media, p1d's own directory) must still read it: SQLite
    cannot create the -shm file there. A writer is told what it may not write."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        print("SKIP: read-only directory checks need setpriv when run as root")
        return
    capture = os.path.join(tmp, "ro-capture.txt")
    code, out, err = p1(["sim", "--count", "600", "--start", "2026-01-01T00:00:00Z"])
    with open(capture, "w") as f:
        f.write(out)
    rodir = os.path.join(tmp, "ro")
    os.mkdir(rodir)
    db = os.path.join(rodir, "p1d.db")
    code, _, err = p1(["import", "-q", "--db", db, capture])
    c.check("import into the directory before it is made read-only", code == 0, err)
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)
    os.chmod(db, 0o644)
    os.chmod(rodir, 0o555)
    try:
        r = as_reader(["export", "--db", db, "--from", "2026-01-01", "--to", "2026-01-02",
                       "--step", "1m"])
        c.check("p1 export reads a database in a read-only directory",
                r[0] == 0 and len(r[1].split("\n")) > 5, str(r))
        r = as_reader(["backup", "--db", db, os.path.join(outdir, "b.db")])
        c.check("p1 backup copies a database in a read-only directory", r[0] == 0, str(r))
        r = as_reader(["prices", "list", "--db", db, "--from", "2026-01-01", "--to",
                       "2026-01-02"])
        c.check("p1 prices list reads a database in a read-only directory",
                r[0] == 0 and r[1].startswith("kind,"), str(r))
        prices = os.path.join(outdir, "prices.csv")
        with open(prices, "w") as f:
            f.write("time,price\n2026-01-01T00:00:00+01:00,0.25\n")
        r = as_reader(["prices", "import", "--db", db, prices])
        c.check("p1 prices import into a file it may not write names the file",
                r[0] == 1 and "cannot write the database" in r[2] and
                "%s: Permission denied" % db in r[2], str(r))
        open(db + "-wal", "w").close()
        r = as_reader(["export", "--db", db, "--from", "2026-01-01", "--to", "2026-01-02"])
        c.check("with a -wal left behind, p1 export names the directory it cannot write",
                r[0] == 1 and "directory %s: Permission denied" % rodir in r[2], str(r))
    finally:
        os.chmod(rodir, 0o755)


def test_damaged_db(c, tmp):
    """A damaged table is an error (exit 1 with SQLite's words), not an empty range: p1 export
    printed the header and exit 0 when the 15-minute tier's first page was garbage."""
    capture = os.path.join(tmp, "dmg-capture.txt")
    code, out, err = p1(["sim", "--count", "3600", "--start", "2026-01-01T00:00:00Z"])
    with open(capture, "w") as f:
        f.write(out)
    db = os.path.join(tmp, "damaged.db")
    code, _, err = p1(["import", "-q", "--db", db, capture])
    con = sqlite3.connect(db)
    root = con.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'agg_15m'").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xde\xad" * (size // 2))
    for fmt in ("csv", "json"):
        code, out, err = p1(["export", "--db", db, "--from", "2026-01-01", "--to", "2026-01-02",
                             "--step", "15m", "--format", fmt])
        c.check("p1 export --format %s of a damaged tier: exit 1, says so" % fmt,
                code == 1 and "reading the database failed: database disk image is malformed"
                in err, "%d %s %s" % (code, err, out[:100]))
    code, out, err = p1(["export", "--db", db, "--from", "2026-01-01", "--to", "2026-01-02",
                         "--step", "1h"])
    c.check("... an undamaged tier of it still exports", code == 0 and len(out.split("\n")) > 2,
            err)
    dest = os.path.join(tmp, "damaged-copy.db")
    code, out, err = p1(["backup", "--db", db, dest])
    c.check("p1 backup of a damaged database: exit 1, no copy left",
            code == 1 and not os.path.exists(dest) and not os.path.exists(dest + ".tmp"), err)


def test_full_disk(c, tmp):
    """A full disk: p1 export says it cannot write its output (it blamed the meter: 'home:
    Input/output error'); p1 import's summary counts only what a commit stored (it said '7200
    stored' after 'cannot write the database')."""
    capture = os.path.join(tmp, "full-capture.txt")
    code, out, err = p1(["sim", "--count", "7200", "--start", "2026-01-01T00:00:00Z"])
    with open(capture, "w") as f:
        f.write(out)
    db = os.path.join(tmp, "full-src.db")
    p1(["import", "-q", "--db", db, capture])
    if os.path.exists("/dev/full"):
        with open("/dev/full", "wb") as full:
            p = subprocess.run([P1, "export", "--db", db, "--from", "2026-01-01", "--to",
                                "2026-01-02", "--step", "raw"], stdout=full,
                               stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode()
        c.check("p1 export > /dev/full: exit 1, 'writing standard output: No space left'",
                p.returncode == 1 and "writing standard output: No space left on device" in err,
                "%d %s" % (p.returncode, err))
    mnt = os.path.join(tmp, "full")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", mnt],
                       capture_output=True)
    if r.returncode != 0:
        print("SKIP: cannot mount a tmpfs (needs root): %s" % r.stderr.decode().strip())
        return
    try:
        code, out, err = p1(["import", "--db", os.path.join(mnt, "i.db"), capture])
        c.check("p1 import onto a full disk: exit 1, nothing counted as stored",
                code == 1 and "cannot write the database: No space left on device" in err and
                "7200 telegrams, 0 stored, 7200 not written" in err, "%d %s" % (code, err))
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_lock_of_root(c, tmp):
    """STORE.md: stop p1d, run p1 import (as root, on the service's database), start p1d. The
    import leaves PATH.lock behind, root's and 0644; p1d under the unit's own user must still
    take the lock (a flock needs no write access) instead of failing to start."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("SKIP: a lock file of another user needs root and setpriv")
        return
    capture = os.path.join(tmp, "lock-capture.txt")
    code, out, err = p1(["sim", "--count", "60", "--start", "2026-01-01T00:00:00Z"])
    with open(capture, "w") as f:
        f.write(out)
    state = os.path.join(tmp, "lockstate")
    os.mkdir(state)
    db = os.path.join(state, "p1d.db")
    code, _, err = p1(["import", "-q", "--db", db, capture])
    c.check("root imports into the service's database", code == 0 and
            os.stat(db + ".lock").st_uid == 0, err)
    os.chown(state, 65534, 65534)
    os.chown(db, 65534, 65534)
    log = os.path.join(tmp, "lock-p1d.log")
    with open(log, "wb") as lf:
        proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 P1D, "--source", "home=sim", "--db", db, "--listen",
                                 "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=lf)
    try:
        end = time.time() + 10
        text = ""
        while time.time() < end and "dashboard and API at" not in text and proc.poll() is None:
            time.sleep(0.1)
            with open(log) as f:
                text = f.read()
        c.check("p1d as another user starts on it (root's lock file left in place)",
                proc.poll() is None and "dashboard and API at" in text, text)
        code, _, err = p1(["import", "--db", db, capture])
        c.check("... and still holds the lock: p1 import is refused",
                code == 1 and "in use by" in err, "%d %s" % (code, err))
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    c = Checks("test_docs_examples")
    need_p1d(c)
    if not os.access(P1, os.X_OK):
        print("SKIP: %s not built (run make)" % P1)
        c.done()
    with tmpdir() as tmp:
        os.chmod(tmp, 0o755)
        test_readme_capture(c, tmp)
        test_config_paths(c)
        test_install_paths(c, tmp)
        test_example_config(c, tmp)
        test_ini_snippets(c, tmp)
        test_restore(c, tmp)
        test_help_options(c)
        test_missing_values(c)
        test_decode_status(c, tmp)
        test_export_no_meter(c, tmp)
        test_import_typo(c, tmp)
        test_readonly_dir(c, tmp)
        test_damaged_db(c, tmp)
        test_full_disk(c, tmp)
        test_lock_of_root(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
